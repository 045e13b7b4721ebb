//! Congestion control, one algorithm per connection.
//!
//! The connection detects loss and decides when recovery starts and ends;
//! the algorithm only answers how large the congestion window is. Dispatch
//! is by enum, not trait object, so a connection stays one allocation.

pub mod cubic;
pub mod hystart;
pub mod newreno;

use super::seq::SeqNumber;
use crate::time::{Duration, Instant};
pub use cubic::Cubic;
pub use hystart::HyStart;
pub use newreno::NewReno;

/// Which algorithm a socket uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// RFC 9438 with HyStart++ (RFC 9406): the default of Linux, Windows
    /// and Apple stacks.
    #[default]
    Cubic,
    NewReno,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Cubic => "cubic",
            Algorithm::NewReno => "newreno",
        }
    }
}

impl core::str::FromStr for Algorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cubic" => Ok(Algorithm::Cubic),
            "newreno" | "reno" => Ok(Algorithm::NewReno),
            other => Err(format!("unknown congestion control `{other}` (known: cubic, newreno)")),
        }
    }
}

/// What an acknowledgement of new data tells the algorithm.
#[derive(Clone, Copy, Debug)]
pub struct Ack {
    pub now: Instant,
    /// Bytes newly acknowledged (cumulatively or by SACK).
    pub acked: usize,
    /// The sender's maximum segment size.
    pub mss: usize,
    /// The RTT sample this ACK gave, if any.
    pub rtt: Option<Duration>,
    /// The smallest RTT seen on the connection.
    pub min_rtt: Option<Duration>,
    /// The smoothed RTT.
    pub srtt: Option<Duration>,
    /// Bytes in flight before this ACK.
    pub in_flight: usize,
    /// The sender was limited by the application, not by cwnd (RFC 7661):
    /// growing cwnd now would not be validated by use.
    pub app_limited: bool,
    /// The send sequence space after this ACK, for algorithms that count
    /// round trips (HyStart++, RFC 9406 §4.2: a round ends when the data
    /// sent after it began is acknowledged). `None` where there is none to
    /// give; such algorithms then take a round to be one minimum RTT.
    pub seq: Option<AckSeq>,
}

/// Where the send sequence space stands when an ACK has been processed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AckSeq {
    /// The oldest unacknowledged sequence number (this ACK's number).
    pub snd_una: SeqNumber,
    /// The next sequence number to be sent.
    pub snd_nxt: SeqNumber,
}

/// What every algorithm is told.
pub trait CongestionControl {
    /// The congestion window in bytes.
    fn cwnd(&self) -> usize;
    /// The slow-start threshold in bytes.
    fn ssthresh(&self) -> usize;
    /// New data was acknowledged while not in loss recovery.
    fn on_ack(&mut self, ack: &Ack);
    /// Loss was detected by duplicate ACKs or SACK: recovery begins.
    fn on_congestion_event(&mut self, now: Instant, in_flight: usize, mss: usize);
    /// Recovery ended with everything outstanding at its start acknowledged.
    fn on_recovery_end(&mut self, now: Instant);
    /// The retransmission timer expired (RFC 5681 §3.1, equation 4).
    fn on_rto(&mut self, now: Instant, in_flight: usize, mss: usize);
    /// Replaces the window outright (recovery logic, initial window).
    fn set_cwnd(&mut self, cwnd: usize);
    /// Replaces the slow-start threshold (an algorithm taking over from
    /// another).
    fn set_ssthresh(&mut self, ssthresh: usize);
    /// The connection sent nothing for an RTO: restart from `restart`
    /// bytes at most (RFC 5681 §4.1, RFC 7661 §4.4). Algorithms with
    /// their own epoch state (CUBIC) reset it here.
    fn on_idle_restart(&mut self, _now: Instant, restart: usize) {
        let c = self.cwnd().min(restart);
        self.set_cwnd(c);
    }
    /// A loss episode turned out spurious (D-SACK or timestamps showed the
    /// original arrived): restore the window from before it.
    fn undo(&mut self, _cwnd: usize, _ssthresh: usize) {}
}

/// The algorithm state of one connection.
#[derive(Clone, Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "held inline in the connection on purpose: a few hundred bytes beat a second allocation"
)]
pub enum Congestion {
    Cubic(Cubic),
    NewReno(NewReno),
}

impl Congestion {
    pub fn new(algorithm: Algorithm, initial_window: usize) -> Self {
        match algorithm {
            Algorithm::Cubic => Congestion::Cubic(Cubic::new(initial_window)),
            Algorithm::NewReno => Congestion::NewReno(NewReno::new(initial_window)),
        }
    }

    /// Changes the algorithm of a live connection (`TCP_CONGESTION`): the
    /// new one takes over the window and the slow-start threshold, as
    /// Linux's does, so a change in the middle of a recovery ends it at the
    /// threshold the old algorithm set.
    pub fn switch(&mut self, algorithm: Algorithm) {
        if self.algorithm() == algorithm {
            return;
        }
        let (cwnd, ssthresh) = (self.cwnd(), self.ssthresh());
        let mut next = Congestion::new(algorithm, cwnd);
        next.inner().set_ssthresh(ssthresh);
        *self = next;
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            Congestion::Cubic(_) => Algorithm::Cubic,
            Congestion::NewReno(_) => Algorithm::NewReno,
        }
    }

    fn inner(&mut self) -> &mut dyn CongestionControl {
        match self {
            Congestion::Cubic(c) => c,
            Congestion::NewReno(c) => c,
        }
    }
    fn inner_ref(&self) -> &dyn CongestionControl {
        match self {
            Congestion::Cubic(c) => c,
            Congestion::NewReno(c) => c,
        }
    }

    pub fn cwnd(&self) -> usize {
        self.inner_ref().cwnd()
    }
    pub fn ssthresh(&self) -> usize {
        self.inner_ref().ssthresh()
    }
    pub fn on_ack(&mut self, ack: &Ack) {
        self.inner().on_ack(ack)
    }
    pub fn on_idle_restart(&mut self, now: Instant, restart: usize) {
        self.inner().on_idle_restart(now, restart)
    }
    pub fn undo(&mut self, cwnd: usize, ssthresh: usize) {
        self.inner().undo(cwnd, ssthresh)
    }
    pub fn on_congestion_event(&mut self, now: Instant, in_flight: usize, mss: usize) {
        self.inner().on_congestion_event(now, in_flight, mss)
    }
    pub fn on_recovery_end(&mut self, now: Instant) {
        self.inner().on_recovery_end(now)
    }
    pub fn on_rto(&mut self, now: Instant, in_flight: usize, mss: usize) {
        self.inner().on_rto(now, in_flight, mss)
    }
    pub fn set_cwnd(&mut self, cwnd: usize) {
        self.inner().set_cwnd(cwnd)
    }
}
