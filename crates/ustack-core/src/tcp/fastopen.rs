//! TCP Fast Open (RFC 7413): a client that holds a cookie from an earlier
//! connection sends its first data in the SYN, and the server takes it at
//! once and may answer before the handshake ends, saving a round trip.
//!
//! The client's side remembers each server's cookie and MSS ([`Peers`]),
//! and its `connect_with_data` puts the first data in the SYN; a plain
//! retransmitted SYN and the data sent again after the handshake cover
//! servers and paths that do not take it.
//!
//! The cookie (§4.1.2) is a MAC under the stack's key of the client's and
//! the server's addresses, 8 bytes of SipHash-2-4: checking one needs
//! nothing stored per client. A forged or stale cookie only costs the
//! client its round trip: the SYN is then answered as any other, its data
//! left for the client to send again, with a good cookie in the SYN-ACK.
//! How many connections a listener may hold in SYN-RECEIVED on the
//! strength of a cookie is bounded (`TcpConfig::fast_open`, Linux's
//! TCP_FASTOPEN queue length), since their data took buffer space before
//! the client proved it can receive at its address (§5.1).

use super::isn::SipHasher24;
use crate::wire::FastOpenCookie;
use std::net::Ipv4Addr;

/// Bytes in the cookies ustack gives (Linux gives 8 too).
pub const COOKIE_LEN: usize = 8;

/// Servers whose cookies a stack remembers at most (the client's side).
pub const MAX_PEERS: usize = 1024;

/// How long a client sends no data in its SYNs to a server after a SYN
/// with data to it timed out (RFC 7413 §4.1.3.1; Linux's first
/// `tcp_fastopen_blackhole_timeout_sec` was an hour too).
pub const FALLBACK: crate::time::Duration = crate::time::Duration::from_secs(3600);

/// What a client remembers of a server that gave it a cookie (RFC 7413
/// §4.1.3): the cookie, the MSS its SYN-ACK announced, which bounds the
/// data a SYN may carry, and when a SYN with data to it last timed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    pub cookie: FastOpenCookie,
    pub mss: u16,
    pub syn_data_failed_at: Option<crate::time::Instant>,
}

/// The cookies a stack's clients were given, by server address. Ordered,
/// so that which one goes when it is full does not depend on a hash seed.
#[derive(Clone, Debug, Default)]
pub struct Peers {
    peers: std::collections::BTreeMap<Ipv4Addr, Peer>,
}

impl Peers {
    pub fn get(&self, server: Ipv4Addr) -> Option<Peer> {
        self.peers.get(&server).copied()
    }
    /// A cookie (and MSS) from `server`'s SYN-ACK; what is known of a
    /// failure of SYN data to it stays.
    pub fn remember(&mut self, server: Ipv4Addr, cookie: FastOpenCookie, mss: u16) {
        if let Some(p) = self.peers.get_mut(&server) {
            p.cookie = cookie;
            p.mss = mss;
            return;
        }
        if self.peers.len() >= MAX_PEERS {
            self.peers.pop_first();
        }
        self.peers.insert(server, Peer { cookie, mss, syn_data_failed_at: None });
    }

    /// A SYN with data to `server` timed out at `now`.
    pub fn syn_data_failed(&mut self, server: Ipv4Addr, now: crate::time::Instant) {
        if let Some(p) = self.peers.get_mut(&server) {
            p.syn_data_failed_at = Some(now);
        }
    }
    pub fn len(&self) -> usize {
        self.peers.len()
    }
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }
}

/// What a connection made from a listener's SYN does about Fast Open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FastOpen {
    /// An ordinary passive open.
    #[default]
    Off,
    /// The client asked for a cookie or showed a wrong one: the SYN-ACK
    /// carries a good one.
    GiveCookie,
    /// The SYN's data was taken with a good cookie: the connection waits
    /// for `accept` from SYN-RECEIVED on, and may send before the
    /// handshake ends (§4.2.2).
    TookData,
}

/// The stack's key for Fast Open cookies.
#[derive(Clone, Copy)]
pub struct FastOpenKey {
    prf: SipHasher24,
}

/// The key is secret: it is not printed.
impl std::fmt::Debug for FastOpenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FastOpenKey(..)")
    }
}

impl FastOpenKey {
    /// A key derived from the stack's secret (as the SYN cookie key is).
    pub fn derive(secret: [u8; 16]) -> Self {
        let prf = SipHasher24::new(secret);
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&prf.hash(b"ustack tcp fast open key, half 1").to_le_bytes());
        key[8..].copy_from_slice(&prf.hash(b"ustack tcp fast open key, half 2").to_le_bytes());
        FastOpenKey { prf: SipHasher24::new(key) }
    }

    /// The cookie for `client` talking to our address `server`.
    pub fn cookie(&self, client: Ipv4Addr, server: Ipv4Addr) -> FastOpenCookie {
        let mut input = [0u8; 8];
        input[..4].copy_from_slice(&client.octets());
        input[4..].copy_from_slice(&server.octets());
        let mac = self.prf.hash(&input).to_le_bytes();
        FastOpenCookie::new(&mac[..COOKIE_LEN]).expect("8 bytes is a valid cookie length")
    }

    /// Whether `shown` is the cookie this key gives `client` for `server`.
    pub fn check(&self, shown: &FastOpenCookie, client: Ipv4Addr, server: Ipv4Addr) -> bool {
        let good = self.cookie(client, server);
        let (a, b) = (shown.as_bytes(), good.as_bytes());
        // Compared in full whatever differs first: the time taken tells
        // nothing about how much of a guess was right.
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_is_for_one_pair_of_addresses_under_one_key() {
        let (c1, c2, s) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 3), Ipv4Addr::new(10, 0, 0, 2));
        let k = FastOpenKey::derive([7; 16]);
        let cookie = k.cookie(c1, s);
        assert_eq!(cookie.as_bytes().len(), COOKIE_LEN);
        assert!(k.check(&cookie, c1, s));
        assert!(!k.check(&cookie, c2, s), "another client");
        assert!(!k.check(&cookie, c1, c2), "another server address");
        assert!(!FastOpenKey::derive([8; 16]).check(&cookie, c1, s), "another stack's key");
        let mut bytes = cookie.as_bytes().to_vec();
        bytes[7] ^= 1;
        assert!(!k.check(&FastOpenCookie::new(&bytes).unwrap(), c1, s));
        assert!(!k.check(&FastOpenCookie::new(&cookie.as_bytes()[..4]).unwrap(), c1, s), "a prefix");
        assert!(!k.check(&FastOpenCookie::REQUEST, c1, s));
    }

    #[test]
    fn a_client_remembers_a_bounded_number_of_servers() {
        let mut peers = Peers::default();
        let cookie = FastOpenCookie::new(&[1; 8]).unwrap();
        for i in 0..MAX_PEERS as u32 + 10 {
            peers.remember(Ipv4Addr::from(0x0a00_0000 + i), cookie, 1460);
        }
        assert_eq!(peers.len(), MAX_PEERS);
        assert_eq!(peers.get(Ipv4Addr::from(0x0a00_0000)), None, "the first went");
        let last = Ipv4Addr::from(0x0a00_0000 + MAX_PEERS as u32 + 9);
        assert_eq!(peers.get(last).map(|p| p.mss), Some(1460));
        let at = crate::time::Instant::from_secs(5);
        peers.syn_data_failed(last, at);
        peers.remember(last, cookie, 536);
        assert_eq!((peers.len(), peers.get(last).map(|p| p.mss)), (MAX_PEERS, Some(536)), "replaced in place");
        assert_eq!(peers.get(last).and_then(|p| p.syn_data_failed_at), Some(at), "the failure is kept");
    }
}
