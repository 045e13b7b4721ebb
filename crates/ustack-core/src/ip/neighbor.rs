//! The ARP neighbour cache (RFC 826; RFC 1122 §2.3.2.1-2.3.2.2).
//!
//! Maps on-link IPv4 addresses to hardware addresses. An address being
//! resolved holds the packets waiting for it (RFC 1122 §2.3.2.2: "SHOULD
//! save (rather than discard) at least one ... packet"); the cache tells
//! the caller when to send an ARP request and when to give up. It never
//! builds or sends a frame itself.
//!
//! How the stack drives it:
//!
//! ```text
//! send(pkt to next_hop):
//!     match cache.lookup(now, next_hop) {
//!         Some(hw) => transmit(hw, pkt),
//!         None => match cache.enqueue(now, next_hop, pkt) {
//!             Enqueued::SendRequest => send ARP request for next_hop,
//!             Enqueued::Queued | Enqueued::DroppedOldest => {}
//!             Enqueued::Resolved(hw, pkt) => transmit(hw, pkt),
//!         },
//!     }
//! ARP packet in (RFC 826 "Packet Reception"), sender (spa, sha):
//!     queued = if target is us { cache.learn(now, spa, sha) }
//!              else { cache.update_if_present(now, spa, sha).unwrap_or_default() };
//!     transmit each of queued to sha, in order
//! timers:
//!     wake at cache.poll_timeout(); then cache.handle_timeout(now):
//!     send an ARP request for each of `requests`; for each of `failed`
//!     report EHOSTUNREACH (and ICMP host unreachable if forwarding).
//! ```
//!
//! Entries leave by timeout only (RFC 1122 §2.3.2.1 option (1)), or earlier
//! by [`NeighborCache::confirm`] keeping them alive on higher-layer advice
//! (option (4)). An expired entry is simply removed; the next packet
//! re-resolves.
//!
//! Timers live in a binary heap of `(deadline, address)` with lazy
//! deletion: each entry remembers the deadline it is armed for, a popped
//! heap item that no longer matches is skipped, and a deadline that moved
//! later is re-armed when the old one fires. So `poll_timeout` is a heap
//! peek, refreshing an entry pushes nothing, and the heap stays within a
//! constant factor of the number of entries (it is rebuilt if stale items
//! pile up).

use crate::time::{Duration, Instant};
use core::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::net::Ipv4Addr;

/// An Ethernet (MAC) address. The stack converts to and from the wire type.
pub type HardwareAddr = [u8; 6];

/// Tunables of the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeighborConfig {
    /// How long a learned mapping stays valid (RFC 1122 §2.3.2.1). 60 s.
    pub reachable_time: Duration,
    /// Time between ARP requests while resolving; at most one request per
    /// address per interval (RFC 1122 §2.3.2.1, "prevent ARP flooding"). 1 s.
    pub retransmit_interval: Duration,
    /// Requests sent (the first included) before giving up. 3, treated as
    /// at least 1.
    pub max_requests: u32,
    /// Packets held per address while resolving; the oldest is dropped when
    /// full (RFC 1122 §2.3.2.2 asks for at least one). 101, Linux's default
    /// `unres_qlen` since 3.3: the old default of 3 lost all but the last 3
    /// fragments of a large datagram sent to a fresh neighbour (a 64 KiB UDP
    /// datagram is 45 fragments at MTU 1500).
    pub max_queued_per_entry: usize,
    /// Learned entries (resolving or reachable) at most; static entries do
    /// not count. 1024, treated as at least 1.
    pub max_entries: usize,
}

impl Default for NeighborConfig {
    fn default() -> Self {
        NeighborConfig {
            reachable_time: Duration::from_secs(60),
            retransmit_interval: Duration::from_secs(1),
            max_requests: 3,
            max_queued_per_entry: 101,
            max_entries: 1024,
        }
    }
}

/// The state of one cache entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NeighborState {
    /// Being resolved: `requests_sent` ARP requests are out, the next is due
    /// (or resolution fails) at `next_request_at`; `queue` holds the
    /// packets waiting, oldest first.
    Incomplete { requests_sent: u32, next_request_at: Instant, queue: VecDeque<Vec<u8>> },
    /// Resolved; valid until `expires_at` (exclusive).
    Reachable { hw: HardwareAddr, expires_at: Instant },
    /// Configured by hand: never expires, never overwritten by ARP.
    Static { hw: HardwareAddr },
}

impl NeighborState {
    /// When this entry next needs attention, if ever.
    fn deadline(&self) -> Option<Instant> {
        match self {
            NeighborState::Incomplete { next_request_at, .. } => Some(*next_request_at),
            NeighborState::Reachable { expires_at, .. } => Some(*expires_at),
            NeighborState::Static { .. } => None,
        }
    }
}

/// What [`NeighborCache::enqueue`] did with a packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Enqueued {
    /// A new resolution started and holds the packet: the caller must send
    /// an ARP request for the address now.
    SendRequest,
    /// A resolution is under way (its request already sent); the packet waits.
    Queued,
    /// The queue was full: the oldest waiting packet was dropped (and
    /// counted) to make room for this one.
    DroppedOldest,
    /// The address is already resolved: nothing was queued, the packet is
    /// handed back for the caller to send to this hardware address.
    Resolved(HardwareAddr, Vec<u8>),
}

/// What the caller must do after [`NeighborCache::handle_timeout`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimeoutActions {
    /// Send an ARP request for each of these (a retransmission).
    pub requests: Vec<Ipv4Addr>,
    /// Resolution gave up on these after `max_requests` requests; the entry
    /// is gone and this many queued packets were dropped. The caller reports
    /// the failure (EHOSTUNREACH to sockets waiting on it).
    pub failed: Vec<(Ipv4Addr, usize)>,
}

impl TimeoutActions {
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty() && self.failed.is_empty()
    }
}

/// Counters, for `netstat`-like display.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NeighborStats {
    /// Resolutions started (each sent a first ARP request).
    pub resolutions_started: u64,
    /// ARP requests retransmitted by timeouts.
    pub requests_retransmitted: u64,
    /// Resolutions that gave up after `max_requests`.
    pub resolution_failures: u64,
    /// Queued packets dropped: queue overflow, failed resolution, eviction
    /// or removal.
    pub queue_drops: u64,
    /// Entries evicted to stay within `max_entries`.
    pub evictions: u64,
    /// Mappings refused because an address was not a unicast one
    /// (RFC 1812 §3.3.2: never believe a broadcast or multicast link
    /// address for a host).
    pub rejected: u64,
}

#[derive(Clone, Debug)]
struct Entry {
    state: NeighborState,
    /// When this entry was created (or last restarted resolving).
    created_at: Instant,
    /// The deadline of this entry's live item in the timer heap, if any.
    armed: Option<Instant>,
}

/// The ARP cache. See the [module documentation](self) for how to drive it.
#[derive(Clone, Debug)]
pub struct NeighborCache {
    config: NeighborConfig,
    /// Ordered for deterministic iteration and eviction.
    entries: BTreeMap<Ipv4Addr, Entry>,
    timers: BinaryHeap<Reverse<(Instant, Ipv4Addr)>>,
    /// Entries that are not static.
    dynamic: usize,
    stats: NeighborStats,
}

impl Default for NeighborCache {
    fn default() -> Self {
        Self::new(NeighborConfig::default())
    }
}

/// Whether `hw` may name a single host: not all zeros, group bit clear.
fn unicast_hw(hw: &HardwareAddr) -> bool {
    hw[0] & 1 == 0 && *hw != [0; 6]
}

/// Whether `ip` may name a single on-link host.
fn unicast_ip(ip: Ipv4Addr) -> bool {
    !(ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast())
}

impl NeighborCache {
    pub fn new(config: NeighborConfig) -> Self {
        NeighborCache {
            config,
            entries: BTreeMap::new(),
            timers: BinaryHeap::new(),
            dynamic: 0,
            stats: NeighborStats::default(),
        }
    }

    pub fn config(&self) -> &NeighborConfig {
        &self.config
    }

    pub fn stats(&self) -> NeighborStats {
        self.stats
    }

    /// Entries of every kind, static ones included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The state of `ip`'s entry, for display and tests.
    pub fn get(&self, ip: Ipv4Addr) -> Option<&NeighborState> {
        self.entries.get(&ip).map(|e| &e.state)
    }

    /// Every entry by address, in address order (`ip neigh`).
    pub fn iter(&self) -> impl Iterator<Item = (Ipv4Addr, &NeighborState)> + '_ {
        self.entries.iter().map(|(ip, e)| (*ip, &e.state))
    }

    /// The hardware address of `ip` if it is known and fresh: a static
    /// entry or a reachable one not yet expired at `now`.
    pub fn lookup(&self, now: Instant, ip: Ipv4Addr) -> Option<HardwareAddr> {
        match self.entries.get(&ip)?.state {
            NeighborState::Static { hw } => Some(hw),
            NeighborState::Reachable { hw, expires_at } if now < expires_at => Some(hw),
            _ => None,
        }
    }

    /// Holds `packet` until `ip` is resolved, starting the resolution if
    /// none is under way. Meant to be called after [`lookup`](Self::lookup)
    /// returned `None`; if the address is in fact resolved the packet comes
    /// back in [`Enqueued::Resolved`].
    ///
    /// The caller is responsible for `ip` being an on-link unicast address
    /// (broadcast and multicast map to link addresses without ARP).
    pub fn enqueue(&mut self, now: Instant, ip: Ipv4Addr, packet: Vec<u8>) -> Enqueued {
        let limit = self.config.max_queued_per_entry;
        let expired = match self.entries.get_mut(&ip) {
            None => false,
            Some(entry) => match &mut entry.state {
                NeighborState::Static { hw } => return Enqueued::Resolved(*hw, packet),
                NeighborState::Reachable { hw, expires_at } if now < *expires_at => {
                    return Enqueued::Resolved(*hw, packet);
                }
                NeighborState::Reachable { .. } => true,
                NeighborState::Incomplete { queue, .. } => {
                    if queue.len() < limit {
                        queue.push_back(packet);
                        return Enqueued::Queued;
                    }
                    // RFC 1122 §2.3.2.2: keep the newest packets.
                    self.stats.queue_drops += 1;
                    if queue.pop_front().is_some() {
                        queue.push_back(packet);
                    }
                    return Enqueued::DroppedOldest;
                }
            },
        };
        let state = self.new_incomplete(now, packet);
        match self.entries.get_mut(&ip) {
            Some(entry) if expired => {
                // Expired but not yet collected: resolve afresh in place.
                entry.state = state;
                entry.created_at = now;
                self.arm(ip);
            }
            _ => {
                self.make_room(now);
                self.insert_dynamic(now, ip, state);
            }
        }
        Enqueued::SendRequest
    }

    /// A fresh `Incomplete` state holding `packet`, its first request sent
    /// by the caller now; counts the resolution.
    fn new_incomplete(&mut self, now: Instant, packet: Vec<u8>) -> NeighborState {
        self.stats.resolutions_started += 1;
        let mut queue = VecDeque::new();
        if self.config.max_queued_per_entry > 0 {
            queue.push_back(packet);
        } else {
            self.stats.queue_drops += 1;
        }
        NeighborState::Incomplete { requests_sent: 1, next_request_at: now + self.retransmit_interval(), queue }
    }

    /// Records that `ip` is at `hw`: creates the entry or refreshes it for
    /// another `reachable_time`, as RFC 826 does when we are the target of
    /// an ARP packet. Returns the packets that were waiting for this
    /// address, oldest first; the caller sends them to `hw`.
    ///
    /// Static entries are left alone. A non-unicast `ip` or `hw` is refused
    /// and counted (RFC 1812 §3.3.2).
    pub fn learn(&mut self, now: Instant, ip: Ipv4Addr, hw: HardwareAddr) -> Vec<Vec<u8>> {
        if !unicast_ip(ip) || !unicast_hw(&hw) {
            self.stats.rejected += 1;
            return Vec::new();
        }
        if let Some(flushed) = self.refresh(now, ip, hw) {
            return flushed;
        }
        self.make_room(now);
        let state = NeighborState::Reachable { hw, expires_at: now + self.config.reachable_time };
        self.insert_dynamic(now, ip, state);
        Vec::new()
    }

    /// Like [`learn`](Self::learn), but only if `ip` already has an entry:
    /// RFC 826's merge step for ARP packets not addressed to us, which must
    /// not fill the cache with every sender on the link. `None` when there
    /// was no entry (or the mapping was refused); otherwise the packets
    /// that were waiting, to send to `hw`.
    pub fn update_if_present(&mut self, now: Instant, ip: Ipv4Addr, hw: HardwareAddr) -> Option<Vec<Vec<u8>>> {
        if !self.entries.contains_key(&ip) {
            return None;
        }
        if !unicast_ip(ip) || !unicast_hw(&hw) {
            self.stats.rejected += 1;
            return None;
        }
        self.refresh(now, ip, hw)
    }

    /// Marks an existing entry reachable at `hw` from `now`; `None` if
    /// there is no entry.
    fn refresh(&mut self, now: Instant, ip: Ipv4Addr, hw: HardwareAddr) -> Option<Vec<Vec<u8>>> {
        let expires_at = now + self.config.reachable_time;
        let entry = self.entries.get_mut(&ip)?;
        if let NeighborState::Static { .. } = entry.state {
            return Some(Vec::new());
        }
        let old = core::mem::replace(&mut entry.state, NeighborState::Reachable { hw, expires_at });
        let flushed = match old {
            NeighborState::Incomplete { queue, .. } => Vec::from(queue),
            NeighborState::Reachable { .. } | NeighborState::Static { .. } => Vec::new(),
        };
        self.arm(ip);
        Some(flushed)
    }

    /// Higher-layer advice that `ip` is still reachable (RFC 1122 §2.3.2.1
    /// (4)), e.g. TCP saw new data acknowledged: extends a reachable entry
    /// by `reachable_time` from `now`. Returns whether there was one.
    pub fn confirm(&mut self, now: Instant, ip: Ipv4Addr) -> bool {
        let expires = now + self.config.reachable_time;
        match self.entries.get_mut(&ip) {
            Some(Entry { state: NeighborState::Reachable { expires_at, .. }, .. }) if now < *expires_at => {
                *expires_at = (*expires_at).max(expires);
                true
            }
            _ => false,
        }
    }

    /// Sets a permanent mapping, replacing any entry for `ip`. Returns the
    /// packets that were waiting for it, for the caller to send to `hw`.
    pub fn insert_static(&mut self, ip: Ipv4Addr, hw: HardwareAddr) -> Vec<Vec<u8>> {
        let state = NeighborState::Static { hw };
        match self.entries.get_mut(&ip) {
            Some(entry) => {
                let old = core::mem::replace(&mut entry.state, state);
                let flushed = match old {
                    NeighborState::Static { .. } => return Vec::new(),
                    NeighborState::Incomplete { queue, .. } => Vec::from(queue),
                    NeighborState::Reachable { .. } => Vec::new(),
                };
                self.dynamic -= 1;
                flushed
            }
            None => {
                self.entries.insert(ip, Entry { state, created_at: Instant::ZERO, armed: None });
                Vec::new()
            }
        }
    }

    /// Forgets `ip`'s entry of any kind; its queued packets are dropped and
    /// counted. Returns whether there was one.
    pub fn remove(&mut self, ip: Ipv4Addr) -> bool {
        self.remove_entry(ip).is_some()
    }

    /// Removes an entry, keeping `dynamic` and the drop counter right;
    /// returns how many queued packets it held. Its timer item goes stale.
    fn remove_entry(&mut self, ip: Ipv4Addr) -> Option<usize> {
        let entry = self.entries.remove(&ip)?;
        let dropped = match entry.state {
            NeighborState::Static { .. } => return Some(0),
            NeighborState::Incomplete { queue, .. } => queue.len(),
            NeighborState::Reachable { .. } => 0,
        };
        self.dynamic -= 1;
        self.stats.queue_drops += dropped as u64;
        Some(dropped)
    }

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout)
    /// has work: a request to retransmit, a resolution to fail, an entry to
    /// expire. It may be a little early (a deadline that moved later or an
    /// entry already gone), never late. `None` when nothing is pending.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// Does the work due at `now`: retransmits requests for resolutions
    /// still under way, gives up on those that sent `max_requests` (the
    /// entry and its queue go), and removes expired reachable entries.
    pub fn handle_timeout(&mut self, now: Instant) -> TimeoutActions {
        let mut actions = TimeoutActions::default();
        // Deadlines set here are armed after the loop, so that each entry is
        // handled at most once per call whatever the configured intervals.
        let mut rearm = Vec::new();
        let max_requests = self.config.max_requests.max(1);
        let next_request_at = now + self.retransmit_interval();
        while let Some(&Reverse((at, ip))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(entry) = self.entries.get_mut(&ip) else {
                continue;
            };
            if entry.armed != Some(at) {
                continue; // stale: superseded by an earlier deadline
            }
            entry.armed = None;
            match entry.state.deadline() {
                None => continue,
                Some(deadline) if deadline > now => {
                    rearm.push(ip); // moved later since it was armed
                    continue;
                }
                Some(_) => {}
            }
            match &mut entry.state {
                NeighborState::Incomplete { requests_sent, next_request_at: next, .. } => {
                    if *requests_sent >= max_requests {
                        // RFC 1122 §2.3.2.1: give up after a bounded number
                        // of requests; the waiting packets are dropped.
                        let dropped = self.remove_entry(ip).unwrap_or(0);
                        self.stats.resolution_failures += 1;
                        actions.failed.push((ip, dropped));
                    } else {
                        *requests_sent += 1;
                        *next = next_request_at;
                        self.stats.requests_retransmitted += 1;
                        actions.requests.push(ip);
                        rearm.push(ip);
                    }
                }
                NeighborState::Reachable { .. } => {
                    self.remove_entry(ip);
                }
                NeighborState::Static { .. } => {}
            }
        }
        for ip in rearm {
            self.arm(ip);
        }
        actions
    }

    fn retransmit_interval(&self) -> Duration {
        // Never zero, so a retransmission is always strictly later.
        self.config.retransmit_interval.max(Duration::from_nanos(1))
    }

    /// Inserts a new learned entry (room already made) and arms its timer.
    fn insert_dynamic(&mut self, now: Instant, ip: Ipv4Addr, state: NeighborState) {
        self.entries.insert(ip, Entry { state, created_at: now, armed: None });
        self.dynamic += 1;
        self.arm(ip);
    }

    /// Makes sure `ip`'s entry has a heap item no later than its deadline.
    /// A later deadline needs no new item: the old one fires first and
    /// re-arms (see `handle_timeout`).
    fn arm(&mut self, ip: Ipv4Addr) {
        let Some(entry) = self.entries.get_mut(&ip) else {
            return;
        };
        let Some(deadline) = entry.state.deadline() else {
            return;
        };
        if entry.armed.is_none_or(|armed| deadline < armed) {
            entry.armed = Some(deadline);
            self.timers.push(Reverse((deadline, ip)));
            if self.timers.len() > 2 * self.entries.len() + 64 {
                self.rebuild_timers();
            }
        }
    }

    /// Drops the stale heap items: one item per entry with a deadline.
    fn rebuild_timers(&mut self) {
        let mut items = Vec::with_capacity(self.entries.len());
        for (ip, entry) in &mut self.entries {
            entry.armed = entry.state.deadline();
            if let Some(at) = entry.armed {
                items.push(Reverse((at, *ip)));
            }
        }
        self.timers = BinaryHeap::from(items);
    }

    /// Evicts one learned entry if the table of learned entries is full.
    /// The victim, in order of preference: an expired reachable entry, the
    /// oldest resolution under way, the reachable entry closest to expiry;
    /// ties go to the lowest address. Static entries are never evicted.
    fn make_room(&mut self, now: Instant) {
        if self.dynamic < self.config.max_entries.max(1) {
            return;
        }
        // The scan is O(n), only when full; n is bounded by max_entries.
        let victim = self
            .entries
            .iter()
            .filter_map(|(ip, e)| {
                let rank = match &e.state {
                    NeighborState::Reachable { expires_at, .. } if *expires_at <= now => (0u8, *expires_at),
                    NeighborState::Incomplete { .. } => (1, e.created_at),
                    NeighborState::Reachable { expires_at, .. } => (2, *expires_at),
                    NeighborState::Static { .. } => return None,
                };
                Some((rank, *ip))
            })
            .min()
            .map(|(_, ip)| ip);
        if let Some(ip) = victim {
            self.remove_entry(ip);
            self.stats.evictions += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HW_A: HardwareAddr = [0x02, 0, 0, 0, 0, 0xa];
    const HW_B: HardwareAddr = [0x02, 0, 0, 0, 0, 0xb];

    fn ip(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, last)
    }
    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }
    fn pkt(n: u8) -> Vec<u8> {
        vec![n; 4]
    }

    #[test]
    fn enqueue_starts_a_resolution_then_queues() {
        let mut c = NeighborCache::default();
        assert_eq!(c.lookup(t(0), ip(1)), None);
        assert_eq!(c.enqueue(t(0), ip(1), pkt(1)), Enqueued::SendRequest);
        assert_eq!(c.enqueue(t(10), ip(1), pkt(2)), Enqueued::Queued);
        assert_eq!(c.lookup(t(10), ip(1)), None);
        assert_eq!(c.poll_timeout(), Some(t(1000)));
        assert_eq!(c.stats().resolutions_started, 1);
        match c.get(ip(1)).unwrap() {
            NeighborState::Incomplete { requests_sent, queue, .. } => {
                assert_eq!(*requests_sent, 1);
                assert_eq!(queue.len(), 2);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn retries_every_second_then_fails_dropping_the_queue() {
        let mut c = NeighborCache::default();
        c.enqueue(t(0), ip(1), pkt(1));
        c.enqueue(t(0), ip(1), pkt(2));
        assert!(c.handle_timeout(t(999)).is_empty());

        let a = c.handle_timeout(t(1000));
        assert_eq!(a.requests, [ip(1)]);
        assert!(a.failed.is_empty());
        assert_eq!(c.poll_timeout(), Some(t(2000)));

        let a = c.handle_timeout(t(2000));
        assert_eq!(a.requests, [ip(1)]);
        assert_eq!(c.poll_timeout(), Some(t(3000)));

        // Three requests sent (0 s, 1 s, 2 s): give up at 3 s.
        let a = c.handle_timeout(t(3000));
        assert!(a.requests.is_empty());
        assert_eq!(a.failed, [(ip(1), 2)]);
        assert!(c.is_empty());
        assert_eq!(c.poll_timeout(), None);
        let s = c.stats();
        assert_eq!(s.requests_retransmitted, 2);
        assert_eq!(s.resolution_failures, 1);
        assert_eq!(s.queue_drops, 2);
        // The next packet starts over.
        assert_eq!(c.enqueue(t(3001), ip(1), pkt(3)), Enqueued::SendRequest);
    }

    #[test]
    fn a_late_wake_up_handles_each_entry_once() {
        let mut c = NeighborCache::default();
        c.enqueue(t(0), ip(1), pkt(1));
        // Woken far too late: one retransmission, not a burst or a failure.
        let a = c.handle_timeout(t(10_000));
        assert_eq!(a.requests, [ip(1)]);
        assert_eq!(c.poll_timeout(), Some(t(11_000)));
    }

    #[test]
    fn learn_flushes_the_queue_in_order() {
        let mut c = NeighborCache::default();
        c.enqueue(t(0), ip(1), pkt(1));
        c.enqueue(t(0), ip(1), pkt(2));
        c.enqueue(t(0), ip(1), pkt(3));
        assert_eq!(c.learn(t(500), ip(1), HW_A), [pkt(1), pkt(2), pkt(3)]);
        assert_eq!(c.lookup(t(500), ip(1)), Some(HW_A));
        // The request timer that was armed fires harmlessly.
        assert!(c.handle_timeout(t(1000)).is_empty());
        assert_eq!(c.poll_timeout(), Some(t(60_500)));
        assert_eq!(c.enqueue(t(600), ip(1), pkt(4)), Enqueued::Resolved(HW_A, pkt(4)));
    }

    #[test]
    fn a_full_queue_drops_the_oldest() {
        let mut c = NeighborCache::new(NeighborConfig { max_queued_per_entry: 3, ..Default::default() });
        assert_eq!(c.enqueue(t(0), ip(1), pkt(1)), Enqueued::SendRequest);
        assert_eq!(c.enqueue(t(0), ip(1), pkt(2)), Enqueued::Queued);
        assert_eq!(c.enqueue(t(0), ip(1), pkt(3)), Enqueued::Queued);
        assert_eq!(c.enqueue(t(0), ip(1), pkt(4)), Enqueued::DroppedOldest);
        assert_eq!(c.enqueue(t(0), ip(1), pkt(5)), Enqueued::DroppedOldest);
        assert_eq!(c.stats().queue_drops, 2);
        assert_eq!(c.learn(t(1), ip(1), HW_A), [pkt(3), pkt(4), pkt(5)]);
    }

    #[test]
    fn zero_queue_length_drops_every_packet() {
        let mut c = NeighborCache::new(NeighborConfig { max_queued_per_entry: 0, ..Default::default() });
        assert_eq!(c.enqueue(t(0), ip(1), pkt(1)), Enqueued::SendRequest);
        assert_eq!(c.enqueue(t(0), ip(1), pkt(2)), Enqueued::DroppedOldest);
        assert_eq!(c.stats().queue_drops, 2);
        assert!(c.learn(t(1), ip(1), HW_A).is_empty());
    }

    #[test]
    fn reachable_entries_expire() {
        let mut c = NeighborCache::default();
        assert!(c.learn(t(0), ip(1), HW_A).is_empty());
        assert_eq!(c.lookup(t(59_999), ip(1)), Some(HW_A));
        assert_eq!(c.lookup(t(60_000), ip(1)), None);
        assert_eq!(c.poll_timeout(), Some(t(60_000)));
        assert!(c.handle_timeout(t(60_000)).is_empty());
        assert!(c.is_empty());
        assert_eq!(c.poll_timeout(), None);
    }

    #[test]
    fn an_expired_entry_is_resolved_afresh_on_use() {
        let mut c = NeighborCache::default();
        c.learn(t(0), ip(1), HW_A);
        // Expired but not yet collected by handle_timeout.
        assert_eq!(c.enqueue(t(60_000), ip(1), pkt(1)), Enqueued::SendRequest);
        assert_eq!(c.stats().resolutions_started, 1);
        // The expiry item fires and re-arms for the request timer.
        assert!(c.handle_timeout(t(60_000)).is_empty());
        assert_eq!(c.poll_timeout(), Some(t(61_000)));
        assert_eq!(c.handle_timeout(t(61_000)).requests, [ip(1)]);
        assert_eq!(c.learn(t(61_500), ip(1), HW_B), [pkt(1)]);
    }

    #[test]
    fn refresh_and_confirm_extend_without_growing_the_heap() {
        let mut c = NeighborCache::default();
        c.learn(t(0), ip(1), HW_A);
        for s in 1..=10_000u64 {
            c.learn(t(s * 10), ip(1), HW_A);
        }
        assert!(c.timers.len() <= 2, "{}", c.timers.len());
        // Last refresh at 100 s: valid until 160 s. The first item (60 s)
        // fires early and re-arms.
        assert!(c.handle_timeout(t(60_000)).is_empty());
        assert_eq!(c.poll_timeout(), Some(t(160_000)));
        assert!(c.confirm(t(150_000), ip(1)));
        assert!(!c.confirm(t(150_000), ip(2)));
        assert_eq!(c.lookup(t(209_999), ip(1)), Some(HW_A));
        c.handle_timeout(t(160_000));
        assert_eq!(c.poll_timeout(), Some(t(210_000)));
        c.handle_timeout(t(210_000));
        assert!(c.is_empty());
    }

    #[test]
    fn learning_a_new_address_changes_the_mapping() {
        let mut c = NeighborCache::default();
        c.learn(t(0), ip(1), HW_A);
        c.learn(t(1), ip(1), HW_B);
        assert_eq!(c.lookup(t(1), ip(1)), Some(HW_B));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn update_if_present_never_creates() {
        let mut c = NeighborCache::default();
        assert_eq!(c.update_if_present(t(0), ip(1), HW_A), None);
        assert!(c.is_empty());
        c.enqueue(t(0), ip(1), pkt(7));
        assert_eq!(c.update_if_present(t(5), ip(1), HW_A), Some(vec![pkt(7)]));
        assert_eq!(c.lookup(t(5), ip(1)), Some(HW_A));
        assert_eq!(c.update_if_present(t(6), ip(1), HW_B), Some(vec![]));
        assert_eq!(c.lookup(t(6), ip(1)), Some(HW_B));
    }

    #[test]
    fn non_unicast_mappings_are_refused() {
        let mut c = NeighborCache::default();
        c.learn(t(0), ip(1), [0xff; 6]);
        c.learn(t(0), ip(1), [0x01, 0, 0x5e, 0, 0, 1]);
        c.learn(t(0), ip(1), [0; 6]);
        c.learn(t(0), Ipv4Addr::BROADCAST, HW_A);
        c.learn(t(0), Ipv4Addr::UNSPECIFIED, HW_A);
        c.learn(t(0), Ipv4Addr::new(224, 0, 0, 1), HW_A);
        assert!(c.is_empty());
        c.learn(t(0), ip(1), HW_A);
        assert_eq!(c.update_if_present(t(0), ip(1), [0xff; 6]), None);
        assert_eq!(c.lookup(t(0), ip(1)), Some(HW_A));
        assert_eq!(c.stats().rejected, 7);
    }

    #[test]
    fn static_entries_never_expire_nor_change() {
        let mut c = NeighborCache::default();
        c.enqueue(t(0), ip(1), pkt(1));
        assert_eq!(c.insert_static(ip(1), HW_A), [pkt(1)]);
        assert_eq!(c.lookup(t(1_000_000_000), ip(1)), Some(HW_A));
        assert!(c.learn(t(5), ip(1), HW_B).is_empty());
        assert_eq!(c.update_if_present(t(5), ip(1), HW_B), Some(vec![]));
        assert_eq!(c.lookup(t(5), ip(1)), Some(HW_A));
        assert!(c.handle_timeout(t(1_000_000)).is_empty());
        assert_eq!(c.poll_timeout(), None);
        assert_eq!(c.enqueue(t(6), ip(1), pkt(2)), Enqueued::Resolved(HW_A, pkt(2)));
        assert_eq!(c.get(ip(1)), Some(&NeighborState::Static { hw: HW_A }));
        assert!(c.remove(ip(1)));
        assert!(!c.remove(ip(1)));
        assert_eq!(c.lookup(t(6), ip(1)), None);
    }

    #[test]
    fn full_table_evicts_incomplete_then_earliest_expiry() {
        let mut c = NeighborCache::new(NeighborConfig { max_entries: 3, ..Default::default() });
        c.insert_static(ip(100), HW_A); // does not count, never evicted
        c.learn(t(0), ip(1), HW_A);
        c.learn(t(10), ip(2), HW_A);
        c.enqueue(t(20), ip(3), pkt(3));
        // Full: the resolution under way goes first, with its packet.
        c.learn(t(30), ip(4), HW_B);
        assert!(c.get(ip(3)).is_none());
        assert_eq!(c.stats().evictions, 1);
        assert_eq!(c.stats().queue_drops, 1);
        // Then the reachable entry closest to expiry.
        assert_eq!(c.enqueue(t(40), ip(5), pkt(5)), Enqueued::SendRequest);
        assert!(c.get(ip(1)).is_none());
        assert_eq!(c.len(), 4);
        let addrs: Vec<Ipv4Addr> = c.iter().map(|(a, _)| a).collect();
        assert_eq!(addrs, [ip(2), ip(4), ip(5), ip(100)]);
        assert_eq!(c.stats().evictions, 2);
        // Replacing a learned entry by a static one frees its place.
        c.insert_static(ip(2), HW_B);
        c.learn(t(50), ip(6), HW_A);
        assert_eq!(c.stats().evictions, 2);
    }

    #[test]
    fn many_resolutions_stay_bounded() {
        let mut c = NeighborCache::default();
        for i in 0..10_000u32 {
            let a = Ipv4Addr::from_bits(0x0a00_0000 + i);
            assert_eq!(c.enqueue(t(i as u64), a, pkt(0)), Enqueued::SendRequest);
        }
        assert_eq!(c.len(), 1024);
        assert_eq!(c.stats().evictions, 10_000 - 1024);
        assert!(c.timers.len() <= 2 * c.len() + 64);
        // Everything fails in the end, leaving nothing behind.
        let mut failed = 0;
        let mut now = t(0);
        while let Some(at) = c.poll_timeout() {
            assert!(at >= now);
            now = at;
            failed += c.handle_timeout(now).failed.len();
        }
        assert_eq!(failed, 1024);
        assert!(c.is_empty());
    }

    #[test]
    fn degenerate_config_does_not_spin() {
        let mut c = NeighborCache::new(NeighborConfig {
            reachable_time: Duration::ZERO,
            retransmit_interval: Duration::ZERO,
            max_requests: u32::MAX,
            max_queued_per_entry: 1,
            max_entries: 0,
        });
        assert_eq!(c.enqueue(t(0), ip(1), pkt(1)), Enqueued::SendRequest);
        // The interval is taken as 1 ns: one retransmission per call.
        assert!(c.handle_timeout(t(0)).is_empty());
        let one = Instant::from_nanos(1);
        assert_eq!(c.handle_timeout(one).requests, [ip(1)]);
        assert_eq!(c.poll_timeout(), Some(Instant::from_nanos(2)));
        assert_eq!(c.enqueue(t(0), ip(2), pkt(2)), Enqueued::SendRequest);
        assert_eq!(c.len(), 1);
        // A zero lifetime: learned, but never valid.
        c.learn(t(5), ip(3), HW_A);
        assert_eq!(c.lookup(t(5), ip(3)), None);
    }
}
