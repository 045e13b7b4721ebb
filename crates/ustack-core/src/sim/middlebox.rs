//! A programmable middlebox: a two-port [`Node`] put in the middle of a
//! link to drop, rewrite or inject particular frames.
//!
//! Every frame that arrives on port 0 leaves by port 1 and the other way
//! round, in the instant it arrived (the delay is the links'). Before it
//! goes, the frame is shown to a filter, a closure
//! `FnMut(now, port_in, &mut Vec<u8>) -> Verdict`, which may rewrite the
//! bytes in place (their length too) and says whether to pass or drop it.
//! [`Middlebox::inject`] sends a frame of the test's own making (a spoofed
//! RST, a forged SYN) out of a port.
//!
//! Scenario tests use it to lose exactly the third ACK of a handshake, to
//! flip a bit in one chosen segment, or to inject an in-window RST:
//!
//! ```
//! use ustack_core::sim::{Middlebox, Verdict};
//! // Drop every frame from port 0 longer than 100 bytes.
//! let mb = Middlebox::with_filter(|_now, port, frame: &mut Vec<u8>| {
//!     if port == 0 && frame.len() > 100 { Verdict::Drop } else { Verdict::Pass }
//! });
//! assert_eq!(mb.stats().dropped, [0, 0]);
//! ```
//!
//! The middlebox knows nothing about the frames; ARP passes through like
//! anything else, so the hosts on either side see one Ethernet segment.

use super::Node;
use crate::time::Instant;
use std::collections::VecDeque;

/// What the filter decided about a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Forward it (as the filter left it) out of the other port.
    Pass,
    /// Drop it.
    Drop,
}

/// The filter a [`Middlebox`] shows each frame: `(now, port_in, frame)`.
pub type Filter = Box<dyn FnMut(Instant, usize, &mut Vec<u8>) -> Verdict>;

/// Counters of a [`Middlebox`], indexed by the port the frame came in by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MiddleboxStats {
    pub forwarded: [u64; 2],
    pub dropped: [u64; 2],
    /// Frames sent with [`Middlebox::inject`].
    pub injected: u64,
    /// Frames that arrived on a port other than 0 and 1.
    pub bad_port: u64,
}

/// A two-port node that forwards frames through a filter; see the module
/// documentation.
pub struct Middlebox {
    filter: Filter,
    out: VecDeque<(usize, Vec<u8>)>,
    stats: MiddleboxStats,
}

impl Default for Middlebox {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for Middlebox {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Middlebox").field("queued", &self.out.len()).field("stats", &self.stats).finish()
    }
}

impl Middlebox {
    /// A middlebox that passes everything (until a filter is set).
    pub fn new() -> Self {
        Self::with_filter(|_, _, _: &mut Vec<u8>| Verdict::Pass)
    }

    pub fn with_filter(filter: impl FnMut(Instant, usize, &mut Vec<u8>) -> Verdict + 'static) -> Self {
        Middlebox { filter: Box::new(filter), out: VecDeque::new(), stats: MiddleboxStats::default() }
    }

    /// Replaces the filter; frames already forwarded are not affected.
    pub fn set_filter(&mut self, filter: impl FnMut(Instant, usize, &mut Vec<u8>) -> Verdict + 'static) {
        self.filter = Box::new(filter);
    }

    /// Sends `frame` out of `port` (0 or 1) the next time the network
    /// drains this node: in the current instant when called between steps.
    /// The filter does not see it.
    pub fn inject(&mut self, port: usize, frame: Vec<u8>) {
        self.stats.injected += 1;
        self.out.push_back((port, frame));
    }

    pub fn stats(&self) -> MiddleboxStats {
        self.stats
    }
}

impl Node for Middlebox {
    fn handle_frame(&mut self, now: Instant, port: usize, frame: &[u8]) {
        if port > 1 {
            self.stats.bad_port += 1;
            return;
        }
        let mut frame = frame.to_vec();
        match (self.filter)(now, port, &mut frame) {
            Verdict::Pass => {
                self.stats.forwarded[port] += 1;
                self.out.push_back((1 - port, frame));
            }
            Verdict::Drop => self.stats.dropped[port] += 1,
        }
    }

    fn poll_transmit(&mut self, _now: Instant, buf: &mut [u8]) -> Option<(usize, usize)> {
        let (port, frame) = self.out.pop_front()?;
        let n = frame.len().min(buf.len());
        buf[..n].copy_from_slice(&frame[..n]);
        Some((port, n))
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        None
    }

    fn handle_timeout(&mut self, _now: Instant) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::test_nodes::Host;
    use crate::sim::{LinkConfig, Network};
    use crate::time::Duration;

    #[test]
    fn forwards_filters_and_injects() {
        let mut net = Network::new(1);
        let a = net.add(Host::new());
        let b = net.add(Host::new());
        // Drop frames from A whose first byte is odd; double B's bytes.
        let mb = net.add(Middlebox::with_filter(|_, port, f: &mut Vec<u8>| {
            if port == 0 && f[0] % 2 == 1 {
                return Verdict::Drop;
            }
            if port == 1 {
                f.extend_from_within(..);
            }
            Verdict::Pass
        }));
        let link = LinkConfig::default().delay(Duration::from_millis(1));
        net.connect((a, 0), (mb, 0), link.clone());
        net.connect((mb, 1), (b, 0), link);
        for i in 0..4u8 {
            net.node_as_mut::<Host>(a).unwrap().send_at(Instant::ZERO, 0, vec![i]);
        }
        net.node_as_mut::<Host>(b).unwrap().send_at(Instant::ZERO, 0, vec![7, 8]);
        net.run_until(Instant::from_millis(10));
        let got_b: Vec<Vec<u8>> = net.node_as::<Host>(b).unwrap().received.iter().map(|r| r.2.clone()).collect();
        assert_eq!(got_b, [vec![0], vec![2]]);
        let got_a: Vec<Vec<u8>> = net.node_as::<Host>(a).unwrap().received.iter().map(|r| r.2.clone()).collect();
        assert_eq!(got_a, [vec![7, 8, 7, 8]]);
        // Each crossing takes the two links' delays and nothing more.
        assert_eq!(net.node_as::<Host>(b).unwrap().received[0].0, Instant::from_millis(2));

        net.node_as_mut::<Middlebox>(mb).unwrap().inject(1, vec![42]);
        net.run_until(Instant::from_millis(20));
        assert_eq!(net.node_as::<Host>(b).unwrap().received[2].2, vec![42]);
        assert_eq!(net.node_as::<Host>(b).unwrap().received[2].0, Instant::from_millis(11));
        let s = net.node_as::<Middlebox>(mb).unwrap().stats();
        assert_eq!((s.forwarded, s.dropped, s.injected), ([2, 1], [2, 0], 1));
    }
}
