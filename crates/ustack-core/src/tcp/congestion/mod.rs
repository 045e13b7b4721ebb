//! Congestion control, one algorithm per connection.
//!
//! The connection detects loss and decides when recovery starts and ends;
//! the algorithm only answers how large the congestion window is. Dispatch
//! is by enum, not trait object, so a connection stays one allocation.

pub mod newreno;

use crate::time::{Duration, Instant};
pub use newreno::NewReno;

/// Which algorithm a socket uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Algorithm {
    #[default]
    NewReno,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::NewReno => "newreno",
        }
    }
}

impl core::str::FromStr for Algorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "newreno" | "reno" => Ok(Algorithm::NewReno),
            other => Err(format!("unknown congestion control `{other}` (known: newreno)")),
        }
    }
}

/// What every algorithm is told.
pub trait CongestionControl {
    /// The congestion window in bytes.
    fn cwnd(&self) -> usize;
    /// The slow-start threshold in bytes.
    fn ssthresh(&self) -> usize;
    /// `acked` bytes of new data were cumulatively acknowledged while not
    /// in loss recovery.
    fn on_ack(&mut self, now: Instant, acked: usize, mss: usize, rtt: Option<Duration>);
    /// Loss was detected by duplicate ACKs or SACK: recovery begins.
    fn on_congestion_event(&mut self, now: Instant, in_flight: usize, mss: usize);
    /// Recovery ended with everything outstanding at its start acknowledged.
    fn on_recovery_end(&mut self, now: Instant);
    /// The retransmission timer expired (RFC 5681 §3.1, equation 4).
    fn on_rto(&mut self, now: Instant, in_flight: usize, mss: usize);
    /// Replaces the window outright (RFC 7661 after idle, recovery logic).
    fn set_cwnd(&mut self, cwnd: usize);
}

/// The algorithm state of one connection.
#[derive(Clone, Debug)]
pub enum Congestion {
    NewReno(NewReno),
}

impl Congestion {
    pub fn new(algorithm: Algorithm, initial_window: usize) -> Self {
        match algorithm {
            Algorithm::NewReno => Congestion::NewReno(NewReno::new(initial_window)),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            Congestion::NewReno(_) => Algorithm::NewReno,
        }
    }

    fn inner(&mut self) -> &mut dyn CongestionControl {
        match self {
            Congestion::NewReno(c) => c,
        }
    }
    fn inner_ref(&self) -> &dyn CongestionControl {
        match self {
            Congestion::NewReno(c) => c,
        }
    }

    pub fn cwnd(&self) -> usize {
        self.inner_ref().cwnd()
    }
    pub fn ssthresh(&self) -> usize {
        self.inner_ref().ssthresh()
    }
    pub fn on_ack(&mut self, now: Instant, acked: usize, mss: usize, rtt: Option<Duration>) {
        self.inner().on_ack(now, acked, mss, rtt)
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
