//! NewReno window arithmetic (RFC 5681 §3.1, RFC 6582): slow start,
//! congestion avoidance with appropriate byte counting (RFC 3465), and
//! halving on loss.

use super::{Ack, CongestionControl};
use crate::time::Instant;

#[derive(Clone, Debug)]
pub struct NewReno {
    cwnd: usize,
    ssthresh: usize,
    /// Bytes acknowledged since cwnd last grew in congestion avoidance.
    bytes_acked: usize,
    /// A retransmission timeout happened and no new data has been
    /// acknowledged since.
    rto_pending: bool,
}

impl NewReno {
    pub fn new(initial_window: usize) -> Self {
        NewReno { cwnd: initial_window, ssthresh: usize::MAX, bytes_acked: 0, rto_pending: false }
    }
}

/// RFC 5681 equation (4): ssthresh = max(FlightSize / 2, 2 * SMSS).
pub fn half_flight(in_flight: usize, mss: usize) -> usize {
    (in_flight / 2).max(2 * mss)
}

impl CongestionControl for NewReno {
    fn cwnd(&self) -> usize {
        self.cwnd
    }
    fn ssthresh(&self) -> usize {
        self.ssthresh
    }

    fn on_ack(&mut self, ack: &Ack) {
        let (acked, mss) = (ack.acked, ack.mss);
        self.rto_pending = false;
        // RFC 7661 §4.3 / RFC 5681: a window not in use is not grown.
        if ack.app_limited {
            return;
        }
        if self.cwnd < self.ssthresh {
            // Slow start with ABC, L = 2 (RFC 3465 §2.2): at most 2 SMSS per ACK.
            self.cwnd += acked.min(2 * mss);
        } else {
            // Congestion avoidance: one SMSS per cwnd of acknowledged bytes
            // (RFC 5681 §3.1, RFC 3465 §2.1).
            self.bytes_acked += acked;
            if self.bytes_acked >= self.cwnd {
                self.bytes_acked -= self.cwnd;
                self.cwnd += mss;
            }
        }
    }

    fn on_congestion_event(&mut self, _now: Instant, in_flight: usize, mss: usize) {
        self.ssthresh = half_flight(in_flight, mss);
        self.cwnd = self.ssthresh;
        self.bytes_acked = 0;
    }

    fn on_recovery_end(&mut self, _now: Instant) {
        // RFC 6582 §3.2 step 3: deflate to ssthresh.
        self.cwnd = self.ssthresh;
    }

    fn on_rto(&mut self, _now: Instant, in_flight: usize, mss: usize) {
        // RFC 5681 §3.1: when the timer expires again for a segment it
        // already retransmitted, ssthresh is held constant.
        if !self.rto_pending {
            self.ssthresh = half_flight(in_flight, mss);
        }
        self.rto_pending = true;
        // Loss window: one segment (RFC 5681 §3.1).
        self.cwnd = mss;
        self.bytes_acked = 0;
    }

    fn set_cwnd(&mut self, cwnd: usize) {
        self.cwnd = cwnd;
    }

    fn set_ssthresh(&mut self, ssthresh: usize) {
        self.ssthresh = ssthresh;
    }

    fn undo(&mut self, cwnd: usize, ssthresh: usize) {
        self.cwnd = self.cwnd.max(cwnd);
        self.ssthresh = self.ssthresh.max(ssthresh);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(acked: usize, mss: usize) -> Ack {
        Ack {
            now: Instant::ZERO,
            acked,
            mss,
            rtt: None,
            min_rtt: None,
            srtt: None,
            in_flight: 0,
            app_limited: false,
            seq: None,
        }
    }

    #[test]
    fn slow_start_then_avoidance() {
        let mss = 1000;
        let mut c = NewReno::new(10 * mss);
        let t = Instant::ZERO;
        c.on_ack(&ack(5000, mss));
        assert_eq!(c.cwnd(), 12_000, "ABC caps growth at 2 SMSS per ACK");
        c.on_congestion_event(t, 20_000, mss);
        assert_eq!(c.ssthresh(), 10_000);
        assert_eq!(c.cwnd(), 10_000);
        for _ in 0..10 {
            c.on_ack(&ack(1000, mss));
        }
        assert_eq!(c.cwnd(), 11_000, "one SMSS per window");
        c.on_rto(t, 3000, mss);
        assert_eq!(c.ssthresh(), 2000);
        assert_eq!(c.cwnd(), 1000);
    }

    /// RFC 5681 §3.1: a second timeout for the same data holds ssthresh;
    /// an acknowledgement of new data in between starts a new episode.
    #[test]
    fn repeated_timeout_holds_ssthresh() {
        let mss = 1000;
        let mut c = NewReno::new(10 * mss);
        let t = Instant::ZERO;
        c.on_rto(t, 40_000, mss);
        assert_eq!(c.ssthresh(), 20_000);
        c.on_rto(t, mss, mss);
        assert_eq!((c.ssthresh(), c.cwnd()), (20_000, mss));
        c.on_ack(&ack(mss, mss));
        c.on_rto(t, 4 * mss, mss);
        assert_eq!(c.ssthresh(), 2 * mss);
    }
}
