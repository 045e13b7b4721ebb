//! The path MTU of each destination, as ICMP "fragmentation needed"
//! taught it (RFC 1191 §5, §6.3).
//!
//! One connection learns a smaller path MTU from a router's ICMP error;
//! every connection opened to the same destination afterwards starts with
//! segments that fit, instead of sending a full-sized one into the same
//! router and waiting for its error again. An entry ages out after
//! [`PmtuConfig::expiry`] (RFC 1191 §6.3 suggests 10 minutes, Linux's
//! `mtu_expires` is 600 s): the path may have grown, and the next
//! connection tries the interface MTU again.
//!
//! UDP sockets read it too (IP_MTU_DISCOVER): a datagram is sent with DF
//! only if it fits, or fragmented at the path MTU.
//!
//! Only errors a connection accepted reach the cache (they passed the
//! RFC 5927 check that the quoted segment is one in flight), or errors
//! about a datagram a UDP socket could have sent (its bound port, its
//! peer), and the cache holds at most [`PmtuConfig::capacity`]
//! destinations, so forged errors can neither poison nor grow it beyond
//! that.

use crate::time::{Duration, Instant};
use std::collections::HashMap;
use std::net::Ipv4Addr;

/// Tunables of the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PmtuConfig {
    /// How long a learned path MTU holds. 10 minutes (RFC 1191 §6.3).
    pub expiry: Duration,
    /// Most destinations remembered; when full, the oldest entry goes.
    /// 1024. 0 turns the cache off.
    pub capacity: usize,
}

impl Default for PmtuConfig {
    fn default() -> Self {
        PmtuConfig { expiry: Duration::from_secs(600), capacity: 1024 }
    }
}

/// Path MTUs by destination, each with when it was learned.
#[derive(Debug)]
pub struct PmtuCache {
    cfg: PmtuConfig,
    paths: HashMap<Ipv4Addr, (usize, Instant)>,
}

impl PmtuCache {
    pub fn new(cfg: PmtuConfig) -> Self {
        PmtuCache { cfg, paths: HashMap::new() }
    }

    /// The path MTU to `dst` learned within the expiry, if any.
    pub fn get(&self, now: Instant, dst: Ipv4Addr) -> Option<usize> {
        if self.paths.is_empty() {
            return None;
        }
        let &(mtu, at) = self.paths.get(&dst)?;
        (now.saturating_duration_since(at) < self.cfg.expiry).then_some(mtu)
    }

    /// Remembers that packets to `dst` must fit `mtu` bytes; true when
    /// that is news (no live entry, or a smaller one). A larger value than
    /// a live entry's does not raise it: only expiry does (RFC 1191 §6.3; a
    /// router's error never says the path grew).
    pub fn learn(&mut self, now: Instant, dst: Ipv4Addr, mtu: usize) -> bool {
        if self.cfg.capacity == 0 {
            return false;
        }
        let (mtu, news) = match self.get(now, dst) {
            Some(known) => (known.min(mtu), mtu < known),
            None => (mtu, true),
        };
        if !self.paths.contains_key(&dst) && self.paths.len() >= self.cfg.capacity {
            let expiry = self.cfg.expiry;
            self.paths.retain(|_, &mut (_, at)| now.saturating_duration_since(at) < expiry);
            if self.paths.len() >= self.cfg.capacity
                && let Some(oldest) = self.paths.iter().min_by_key(|(_, (_, at))| *at).map(|(a, _)| *a)
            {
                self.paths.remove(&oldest);
            }
        }
        self.paths.insert(dst, (mtu, now));
        news
    }

    /// Destinations held (expired ones included until they are replaced).
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);

    #[test]
    fn learned_until_it_expires_and_never_raised_by_an_error() {
        let mut c = PmtuCache::new(PmtuConfig::default());
        let t = Instant::from_secs(5);
        assert_eq!(c.get(t, A), None);
        assert!(c.learn(t, A, 1400));
        assert_eq!((c.get(t, A), c.get(t, B)), (Some(1400), None));
        assert!(!c.learn(t + Duration::from_secs(1), A, 1480), "no news");
        assert_eq!(c.get(t + Duration::from_secs(1), A), Some(1400), "raised by an error");
        c.learn(t + Duration::from_secs(2), A, 1280);
        let learned = t + Duration::from_secs(2);
        assert_eq!(c.get(learned + Duration::from_secs(599), A), Some(1280));
        assert_eq!(c.get(learned + Duration::from_secs(600), A), None, "10 minutes on");
        // Expired, a new error counts as it is.
        c.learn(learned + Duration::from_secs(700), A, 1480);
        assert_eq!(c.get(learned + Duration::from_secs(700), A), Some(1480));
    }

    #[test]
    fn full_it_forgets_the_oldest_and_zero_capacity_keeps_nothing() {
        let mut c = PmtuCache::new(PmtuConfig { expiry: Duration::from_secs(600), capacity: 2 });
        let t = Instant::from_secs(1);
        c.learn(t, A, 1400);
        c.learn(t + Duration::from_secs(1), B, 1300);
        let third = Ipv4Addr::new(10, 0, 0, 4);
        c.learn(t + Duration::from_secs(2), third, 1200);
        let now = t + Duration::from_secs(2);
        assert_eq!((c.len(), c.get(now, A), c.get(now, B), c.get(now, third)), (2, None, Some(1300), Some(1200)));
        let mut off = PmtuCache::new(PmtuConfig { capacity: 0, ..PmtuConfig::default() });
        off.learn(t, A, 1400);
        assert_eq!((off.get(t, A), off.is_empty()), (None, true));
    }
}
