//! The routing table: longest-prefix match (RFC 1812 §5.2.4.3).
//!
//! Routes are kept in 33 ordered maps, one per prefix length, plus a bit
//! mask of the lengths in use. A lookup tries the lengths in use from the
//! longest down and stops at the first hit, so a host with a connected
//! network and a default route does two small map probes, and a table of
//! many thousands of routes costs at most 33 `O(log n)` probes.
//!
//! A route is identified by its network and its metric, as in Linux: two
//! routes to the same prefix with different metrics coexist and the lower
//! metric wins; adding a route with the same prefix and metric replaces
//! the gateway.

use crate::wire::Ipv4Cidr;
use core::fmt;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// One entry of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Route {
    /// The destination network, always normalised (host bits cleared).
    pub cidr: Ipv4Cidr,
    /// The next router, or `None` when the network is on-link (the
    /// destination itself is resolved with ARP).
    pub gateway: Option<Ipv4Addr>,
    /// Preference among routes to the same prefix: lower wins.
    pub metric: u32,
}

impl Route {
    /// The address to resolve on the link for a packet to `dst`: the
    /// gateway, or `dst` itself when on-link (RFC 1122 §3.3.1.1).
    pub fn next_hop(&self, dst: Ipv4Addr) -> Ipv4Addr {
        self.gateway.unwrap_or(dst)
    }
}

impl fmt::Display for Route {
    /// `10.0.0.0/8 via 192.168.1.1 metric 0`, or `... dev` when on-link,
    /// in the spirit of `ip route`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.gateway {
            Some(gw) => write!(f, "{} via {} metric {}", self.cidr, gw, self.metric),
            None => write!(f, "{} on-link metric {}", self.cidr, self.metric),
        }
    }
}

/// Why a route was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RouteError {
    /// The gateway can never be a host on the link: unspecified, loopback
    /// (RFC 1122 §3.2.1.3 (g)), multicast or class E / limited broadcast.
    InvalidGateway(Ipv4Addr),
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::InvalidGateway(gw) => {
                write!(f, "`{gw}` cannot be a gateway: it is not a unicast address of a host on a link")
            }
        }
    }
}

impl std::error::Error for RouteError {}

/// Prefix lengths 0 through 32.
const LENGTHS: usize = 33;

/// The netmask of a prefix length as bits.
const fn mask(prefix_len: u8) -> u32 {
    if prefix_len == 0 { 0 } else { u32::MAX << (32 - prefix_len as u32) }
}

fn valid_gateway(gw: Ipv4Addr) -> bool {
    // 240.0.0.0/4 covers class E and the limited broadcast address.
    !(gw.is_unspecified() || gw.is_loopback() || gw.is_multicast() || gw.octets()[0] >= 240)
}

/// A routing table with longest-prefix match.
#[derive(Clone, Debug)]
pub struct Routes {
    /// `by_len[n]`: the routes of prefix length `n`, keyed by
    /// `(network bits, metric)` so that the lowest metric comes first.
    by_len: [BTreeMap<(u32, u32), Route>; LENGTHS],
    /// Bit `n` is set when `by_len[n]` is not empty.
    in_use: u64,
    len: usize,
}

impl Default for Routes {
    fn default() -> Self {
        Self::new()
    }
}

impl Routes {
    pub fn new() -> Self {
        Routes { by_len: core::array::from_fn(|_| BTreeMap::new()), in_use: 0, len: 0 }
    }

    /// Adds a route with metric 0; see [`Routes::add_with_metric`].
    pub fn add(&mut self, cidr: Ipv4Cidr, gateway: Option<Ipv4Addr>) -> Result<(), RouteError> {
        self.add_with_metric(cidr, gateway, 0)
    }

    /// Adds the default route `0.0.0.0/0 via gateway`, metric 0.
    pub fn add_default(&mut self, gateway: Ipv4Addr) -> Result<(), RouteError> {
        self.add(Ipv4Cidr::new(Ipv4Addr::UNSPECIFIED, 0), Some(gateway))
    }

    /// Adds a route to `cidr`'s network (host bits are cleared, so
    /// `10.1.2.3/8` means `10.0.0.0/8`). A route with the same prefix and
    /// metric is replaced.
    pub fn add_with_metric(
        &mut self,
        cidr: Ipv4Cidr,
        gateway: Option<Ipv4Addr>,
        metric: u32,
    ) -> Result<(), RouteError> {
        if let Some(gw) = gateway
            && !valid_gateway(gw)
        {
            return Err(RouteError::InvalidGateway(gw));
        }
        let cidr = cidr.network();
        let n = cidr.prefix_len();
        let route = Route { cidr, gateway, metric };
        if self.by_len[n as usize].insert((cidr.address().to_bits(), metric), route).is_none() {
            self.len += 1;
        }
        self.in_use |= 1 << n;
        Ok(())
    }

    /// Removes every route to `cidr`'s network, whatever its metric.
    /// Returns whether there was one.
    pub fn remove(&mut self, cidr: Ipv4Cidr) -> bool {
        let cidr = cidr.network();
        let n = cidr.prefix_len();
        let net = cidr.address().to_bits();
        let map = &mut self.by_len[n as usize];
        let before = map.len();
        map.retain(|&(k, _), _| k != net);
        let removed = before - map.len();
        self.len -= removed;
        if map.is_empty() {
            self.in_use &= !(1 << n);
        }
        removed > 0
    }

    /// Removes every route.
    pub fn clear(&mut self) {
        *self = Routes::new();
    }

    /// The route for `dst`: the longest matching prefix, and among routes
    /// to that prefix the lowest metric (RFC 1812 §5.2.4.3).
    pub fn lookup(&self, dst: Ipv4Addr) -> Option<&Route> {
        let bits = dst.to_bits();
        let mut lengths = self.in_use;
        while lengths != 0 {
            let n = 63 - lengths.leading_zeros();
            lengths &= !(1u64 << n);
            let net = bits & mask(n as u8);
            if let Some((_, route)) = self.by_len[n as usize].range((net, 0)..=(net, u32::MAX)).next() {
                return Some(route);
            }
        }
        None
    }

    /// The address to resolve on the link for a packet to `dst`: the
    /// gateway of its route, or `dst` itself when on-link. `None` when no
    /// route matches (the caller answers EHOSTUNREACH / ENETUNREACH).
    pub fn next_hop(&self, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        self.lookup(dst).map(|r| r.next_hop(dst))
    }

    /// Every route, longest prefix first, then by network and metric.
    pub fn iter(&self) -> impl Iterator<Item = &Route> + '_ {
        self.by_len.iter().rev().flat_map(|m| m.values())
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rand::Rng;

    fn cidr(s: &str) -> Ipv4Cidr {
        s.parse().unwrap()
    }
    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn empty_table_has_no_route() {
        let r = Routes::new();
        assert!(r.is_empty());
        assert_eq!(r.lookup(ip("1.2.3.4")), None);
        assert_eq!(r.next_hop(ip("1.2.3.4")), None);
    }

    #[test]
    fn longest_prefix_wins_over_overlapping_routes() {
        let mut r = Routes::new();
        r.add_default(ip("192.168.1.1")).unwrap();
        r.add(cidr("10.0.0.0/8"), Some(ip("192.168.1.2"))).unwrap();
        r.add(cidr("10.1.0.0/16"), Some(ip("192.168.1.3"))).unwrap();
        r.add(cidr("10.1.2.0/24"), None).unwrap();
        r.add(cidr("10.1.2.77/32"), Some(ip("192.168.1.4"))).unwrap();
        assert_eq!(r.len(), 5);

        assert_eq!(r.next_hop(ip("8.8.8.8")), Some(ip("192.168.1.1")));
        assert_eq!(r.next_hop(ip("10.200.0.1")), Some(ip("192.168.1.2")));
        assert_eq!(r.next_hop(ip("10.1.200.1")), Some(ip("192.168.1.3")));
        // On-link: the destination itself is the next hop.
        assert_eq!(r.next_hop(ip("10.1.2.9")), Some(ip("10.1.2.9")));
        assert_eq!(r.next_hop(ip("10.1.2.77")), Some(ip("192.168.1.4")));
        assert_eq!(r.lookup(ip("10.1.2.9")).unwrap().cidr, cidr("10.1.2.0/24"));
    }

    #[test]
    fn default_route_matches_everything() {
        let mut r = Routes::new();
        r.add_default(ip("10.0.0.1")).unwrap();
        for a in ["0.0.0.0", "255.255.255.255", "10.0.0.1", "172.16.5.4"] {
            assert_eq!(r.next_hop(ip(a)), Some(ip("10.0.0.1")), "{a}");
        }
        assert_eq!(r.lookup(ip("1.1.1.1")).unwrap().cidr, cidr("0.0.0.0/0"));
    }

    #[test]
    fn host_bits_are_cleared_and_same_prefix_replaces() {
        let mut r = Routes::new();
        r.add(cidr("10.1.2.3/8"), Some(ip("192.168.0.1"))).unwrap();
        let route = *r.lookup(ip("10.9.9.9")).unwrap();
        assert_eq!(route.cidr.address(), ip("10.0.0.0"));
        assert_eq!(route.cidr.prefix_len(), 8);
        r.add(cidr("10.0.0.0/8"), Some(ip("192.168.0.2"))).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r.next_hop(ip("10.9.9.9")), Some(ip("192.168.0.2")));
    }

    #[test]
    fn ties_go_to_the_lowest_metric() {
        let mut r = Routes::new();
        r.add_with_metric(cidr("10.0.0.0/8"), Some(ip("192.168.0.9")), 100).unwrap();
        r.add_with_metric(cidr("10.0.0.0/8"), Some(ip("192.168.0.5")), 5).unwrap();
        r.add_with_metric(cidr("10.0.0.0/8"), Some(ip("192.168.0.7")), 50).unwrap();
        assert_eq!(r.len(), 3);
        let best = r.lookup(ip("10.3.3.3")).unwrap();
        assert_eq!(best.metric, 5);
        assert_eq!(best.gateway, Some(ip("192.168.0.5")));
        // A longer prefix beats any metric.
        r.add_with_metric(cidr("10.3.0.0/16"), None, 1000).unwrap();
        assert_eq!(r.lookup(ip("10.3.3.3")).unwrap().metric, 1000);
    }

    #[test]
    fn remove_takes_every_metric_and_falls_back() {
        let mut r = Routes::new();
        r.add_default(ip("10.0.0.1")).unwrap();
        r.add_with_metric(cidr("10.1.0.0/16"), None, 1).unwrap();
        r.add_with_metric(cidr("10.1.0.0/16"), None, 2).unwrap();
        assert!(r.remove(cidr("10.1.77.0/16")));
        assert_eq!(r.len(), 1);
        assert!(!r.remove(cidr("10.1.0.0/16")));
        assert_eq!(r.next_hop(ip("10.1.0.5")), Some(ip("10.0.0.1")));
        assert!(r.remove(cidr("0.0.0.0/0")));
        assert!(r.is_empty());
        assert_eq!(r.lookup(ip("10.1.0.5")), None);
    }

    #[test]
    fn invalid_gateways_are_refused() {
        let mut r = Routes::new();
        for gw in ["0.0.0.0", "127.0.0.1", "224.0.0.1", "240.0.0.1", "255.255.255.255"] {
            assert_eq!(r.add_default(ip(gw)), Err(RouteError::InvalidGateway(ip(gw))), "{gw}");
        }
        assert!(r.is_empty());
        assert!(RouteError::InvalidGateway(ip("0.0.0.0")).to_string().contains("0.0.0.0"));
    }

    #[test]
    fn iter_lists_longest_prefix_first() {
        let mut r = Routes::new();
        r.add_default(ip("10.0.0.1")).unwrap();
        r.add(cidr("10.0.0.0/24"), None).unwrap();
        r.add(cidr("10.0.0.5/32"), None).unwrap();
        r.add(cidr("9.0.0.0/24"), None).unwrap();
        let lens: Vec<u8> = r.iter().map(|r| r.cidr.prefix_len()).collect();
        assert_eq!(lens, [32, 24, 24, 0]);
        assert_eq!(r.iter().nth(1).unwrap().cidr, cidr("9.0.0.0/24"));
        assert_eq!(r.iter().next().unwrap().to_string(), "10.0.0.5/32 on-link metric 0");
        r.clear();
        assert_eq!(r.iter().count(), 0);
    }

    /// A big random table agrees with a brute-force scan.
    #[test]
    fn ten_thousand_routes_match_brute_force() {
        let mut rng = Rng::new(0x5eed);
        let mut r = Routes::new();
        let mut all: Vec<Route> = Vec::new();
        while all.len() < 10_000 {
            // Cluster addresses in 10.0.0.0/12 so prefixes overlap a lot.
            let addr = Ipv4Addr::from_bits(0x0a00_0000 | (rng.next_u32() >> 12));
            let len = 8 + rng.below(25) as u8;
            let c = Ipv4Cidr::new(addr, len).network();
            let metric = rng.below(4) as u32;
            let gw = Some(Ipv4Addr::from_bits(0xc0a8_0000 | rng.below(65536) as u32));
            r.add_with_metric(c, gw, metric).unwrap();
            all.retain(|x| !(x.cidr == c && x.metric == metric));
            all.push(Route { cidr: c, gateway: gw, metric });
        }
        assert_eq!(r.len(), all.len());
        for _ in 0..5_000 {
            let dst = Ipv4Addr::from_bits(0x0a00_0000 | (rng.next_u32() >> 12));
            let expect =
                all.iter().filter(|x| x.cidr.contains(dst)).min_by_key(|x| (u8::MAX - x.cidr.prefix_len(), x.metric));
            assert_eq!(r.lookup(dst), expect, "{dst}");
        }
    }
}
