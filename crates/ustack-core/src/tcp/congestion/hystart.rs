//! HyStart++ (RFC 9406): slow start that leaves early when the round-trip
//! delay starts to rise, before the queue overflows, and then confirms the
//! exit through a few rounds of Conservative Slow Start (CSS).
//!
//! The algorithm owns only its round-trip bookkeeping; the congestion
//! controller owns the window. [`HyStart::on_ack`] says how much one ACK may
//! grow the window and whether slow start is over, and the controller applies
//! it (RFC 9406 §4.2: "enter congestion avoidance by setting the ssthresh to
//! the current cwnd").

use super::Ack;
use crate::tcp::seq::SeqNumber;
use crate::time::{Duration, Instant, Micros32};

// RFC 9406 §4.3, the recommended values.
/// The smallest delay increase that ends slow start.
pub const MIN_RTT_THRESH: Duration = Duration::from_millis(4);
/// The largest delay increase needed to end slow start.
pub const MAX_RTT_THRESH: Duration = Duration::from_millis(16);
/// The delay threshold is the last round's minimum RTT over this, within
/// the two bounds above.
pub const MIN_RTT_DIVISOR: u32 = 8;
/// RTT samples a round needs before its minimum is trusted.
pub const N_RTT_SAMPLE: u32 = 8;
/// CSS grows the window this many times slower than slow start.
pub const CSS_GROWTH_DIVISOR: usize = 4;
/// Rounds of CSS before congestion avoidance.
pub const CSS_ROUNDS: u32 = 5;
/// Segments one ACK may grow the window by (the `L` of RFC 9406 §4.2).
/// RFC 9406 §4.3 suggests 8 for a sender that does not pace; ustack keeps
/// the RFC 3465 §2.2 limit of 2 that its NewReno slow start uses, since it
/// does not pace either and bursts of 8 segments per ACK fill small queues.
pub const L: usize = 2;

/// Where HyStart++ has the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Standard slow start with the delay-increase test.
    SlowStart,
    /// Conservative Slow Start, entered when the delay rose to `baseline`.
    Css { baseline: Duration },
    /// Slow start is over: congestion avoidance, or a loss ended it.
    Done,
}

/// What one ACK in slow start does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// Bytes to add to cwnd.
    pub grow: usize,
    /// CSS ran its CSS_ROUNDS rounds: set ssthresh to cwnd (after growing it).
    pub exit: bool,
}

/// How the current round ends (RFC 9406 §4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RoundEnd {
    /// No round has started: no ACK has come, or (timed rounds) no RTT is known yet.
    NotStarted,
    /// "windowEnd": the round ends when the byte numbered here, the first
    /// sent after the round began, is acknowledged.
    Seq(SeqNumber),
    /// Without sequence numbers in the ACK: a round lasts one minimum RTT.
    Timed { start: Instant, len: Micros32 },
}

/// [`Phase`] without its baseline, which [`HyStart`] keeps beside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PhaseKind {
    SlowStart,
    Css,
    Done,
}

/// HyStart++ state of one connection. Every connection holds one until
/// slow start ends, so it is kept compact (32 bytes): RTTs in 32-bit
/// microseconds, far finer than the millisecond thresholds of §4.3.
#[derive(Clone, Debug)]
pub struct HyStart {
    round: RoundEnd,
    /// The CSS baseline (`Phase::Css`), meaningful in CSS only.
    baseline: Micros32,
    /// `Micros32::NONE` stands for the RFC's infinity / not yet measured.
    last_round_min_rtt: Micros32,
    current_round_min_rtt: Micros32,
    /// Saturates; only "at least N_RTT_SAMPLE" matters.
    rtt_sample_count: u8,
    /// Complete CSS rounds so far (at most CSS_ROUNDS).
    css_rounds: u8,
    phase: PhaseKind,
    /// The current round began in CSS (a CSS round, counted toward CSS_ROUNDS).
    round_in_css: bool,
}

impl Default for HyStart {
    fn default() -> Self {
        Self::new()
    }
}

impl HyStart {
    pub fn new() -> Self {
        HyStart {
            round: RoundEnd::NotStarted,
            baseline: Micros32::NONE,
            last_round_min_rtt: Micros32::NONE,
            current_round_min_rtt: Micros32::NONE,
            rtt_sample_count: 0,
            css_rounds: 0,
            phase: PhaseKind::SlowStart,
            round_in_css: false,
        }
    }

    pub fn phase(&self) -> Phase {
        match self.phase {
            PhaseKind::SlowStart => Phase::SlowStart,
            PhaseKind::Css => Phase::Css { baseline: self.baseline.duration() },
            PhaseKind::Done => Phase::Done,
        }
    }

    /// Complete CSS rounds so far.
    pub fn css_rounds(&self) -> u32 {
        u32::from(self.css_rounds)
    }

    /// Slow start is over for good: a loss or ECN mark ended it (RFC 9406
    /// §4.2), or the controller left it some other way. §4.3: HyStart++ is
    /// for the initial slow start only; later ones are standard.
    pub fn finish(&mut self) {
        self.phase = PhaseKind::Done;
    }

    /// One ACK of new data in slow start.
    pub fn on_ack(&mut self, ack: &Ack) -> Step {
        let n = ack.acked.min(L * ack.mss);
        if self.phase == PhaseKind::Done {
            return Step { grow: n, exit: false };
        }
        if self.round == RoundEnd::NotStarted {
            self.start_round(ack);
        }
        // §4.2: cwnd += min(N, L*SMSS) in slow start, that over
        // CSS_GROWTH_DIVISOR in CSS.
        let grow = if self.phase == PhaseKind::Css { n / CSS_GROWTH_DIVISOR } else { n };
        // §4.2: currentRoundMinRTT = min(currentRoundMinRTT, currRTT);
        // rttSampleCount += 1. An ACK without a sample (Karn) adds none.
        if let Some(rtt) = ack.rtt {
            self.current_round_min_rtt = self.current_round_min_rtt.min(Micros32::new(rtt));
            self.rtt_sample_count = self.rtt_sample_count.saturating_add(1);
        }
        if u32::from(self.rtt_sample_count) >= N_RTT_SAMPLE
            && let Some(current) = self.current_round_min_rtt.get()
        {
            match self.phase {
                PhaseKind::SlowStart => {
                    // §4.2: the delay-increase test.
                    if let Some(last) = self.last_round_min_rtt.get()
                        && current >= last + rtt_thresh(last)
                    {
                        self.phase = PhaseKind::Css;
                        self.baseline = self.current_round_min_rtt;
                        self.css_rounds = 0;
                    }
                }
                PhaseKind::Css => {
                    // §4.2: the delay fell back below the baseline, so the
                    // exit was spurious: resume slow start, HyStart++ included.
                    if self.current_round_min_rtt < self.baseline {
                        self.phase = PhaseKind::SlowStart;
                        self.css_rounds = 0;
                    }
                }
                PhaseKind::Done => {}
            }
        }
        if self.round_ended(ack) {
            if self.round_in_css && self.phase == PhaseKind::Css {
                self.css_rounds += 1;
                if u32::from(self.css_rounds) >= CSS_ROUNDS {
                    // §4.2: "If CSS_ROUNDS rounds are complete, enter
                    // congestion avoidance".
                    self.phase = PhaseKind::Done;
                    return Step { grow, exit: true };
                }
            }
            self.start_round(ack);
        }
        Step { grow, exit: false }
    }

    /// §4.2: "At the start of each round during standard slow start and CSS":
    /// lastRoundMinRTT = currentRoundMinRTT; currentRoundMinRTT = infinity;
    /// rttSampleCount = 0; and windowEnd = SND.NXT.
    fn start_round(&mut self, ack: &Ack) {
        self.round = match ack.seq {
            Some(seq) => RoundEnd::Seq(seq.snd_nxt),
            None => match ack.min_rtt.or(self.current_round_min_rtt.get()).or(ack.rtt) {
                Some(len) => RoundEnd::Timed { start: ack.now, len: Micros32::new(len) },
                None => RoundEnd::NotStarted,
            },
        };
        if self.round == RoundEnd::NotStarted {
            return;
        }
        self.round_in_css = self.phase == PhaseKind::Css;
        self.last_round_min_rtt = self.current_round_min_rtt;
        self.current_round_min_rtt = Micros32::NONE;
        self.rtt_sample_count = 0;
    }

    /// "When windowEnd is ACKed, the current round ends": the first ACK
    /// that acknowledges data sent after the round began.
    fn round_ended(&self, ack: &Ack) -> bool {
        match (self.round, ack.seq) {
            (RoundEnd::Seq(window_end), Some(seq)) => seq.snd_una > window_end,
            // Sequence numbers stopped coming: the round waits for the next that has them.
            (RoundEnd::Seq(_), None) => false,
            (RoundEnd::Timed { start, len }, _) => ack.now - start >= len.duration(),
            (RoundEnd::NotStarted, _) => false,
        }
    }
}

/// §4.2: RttThresh = max(MIN_RTT_THRESH, min(lastRoundMinRTT / MIN_RTT_DIVISOR, MAX_RTT_THRESH)).
pub fn rtt_thresh(last_round_min_rtt: Duration) -> Duration {
    (last_round_min_rtt / MIN_RTT_DIVISOR).clamp(MIN_RTT_THRESH, MAX_RTT_THRESH)
}

#[cfg(test)]
mod tests {
    use super::super::AckSeq;
    use super::*;

    const MSS: usize = 1000;

    /// A sender that sends a window per round and gets one ACK per segment
    /// back, every ACK carrying an RTT sample of `rtt`.
    struct Flow {
        una: SeqNumber,
        nxt: SeqNumber,
        now: Instant,
    }

    impl Flow {
        fn new() -> Self {
            Flow { una: SeqNumber(1), nxt: SeqNumber(1), now: Instant::ZERO }
        }

        /// One round of `segments` segments; returns the steps.
        fn round(&mut self, h: &mut HyStart, segments: usize, rtt: Duration) -> Vec<Step> {
            self.nxt += segments * MSS;
            self.now += rtt;
            let mut steps = Vec::new();
            for _ in 0..segments {
                self.una += MSS;
                let ack = Ack {
                    now: self.now,
                    acked: MSS,
                    mss: MSS,
                    rtt: Some(rtt),
                    min_rtt: Some(rtt),
                    srtt: Some(rtt),
                    in_flight: self.nxt - self.una + MSS,
                    app_limited: false,
                    seq: Some(AckSeq { snd_una: self.una, snd_nxt: self.nxt }),
                };
                steps.push(h.on_ack(&ack));
            }
            steps
        }
    }

    #[test]
    fn threshold_is_an_eighth_within_bounds() {
        assert_eq!(rtt_thresh(Duration::from_millis(10)), MIN_RTT_THRESH);
        assert_eq!(rtt_thresh(Duration::from_millis(80)), Duration::from_millis(10));
        assert_eq!(rtt_thresh(Duration::from_millis(400)), MAX_RTT_THRESH);
    }

    #[test]
    fn steady_delay_stays_in_slow_start() {
        let mut h = HyStart::new();
        let mut f = Flow::new();
        for _ in 0..6 {
            let steps = f.round(&mut h, 16, Duration::from_millis(100));
            assert!(steps.iter().all(|s| s.grow == MSS && !s.exit));
        }
        assert_eq!(h.phase(), Phase::SlowStart);
    }

    #[test]
    fn small_rise_is_jitter_not_congestion() {
        let mut h = HyStart::new();
        let mut f = Flow::new();
        f.round(&mut h, 16, Duration::from_millis(100));
        f.round(&mut h, 16, Duration::from_millis(100));
        // 100 ms / 8 = 12.5 ms is the threshold; 12 ms is below it.
        f.round(&mut h, 16, Duration::from_millis(112));
        assert_eq!(h.phase(), Phase::SlowStart);
    }

    #[test]
    fn too_few_samples_decide_nothing() {
        let mut h = HyStart::new();
        let mut f = Flow::new();
        f.round(&mut h, 16, Duration::from_millis(100));
        f.round(&mut h, (N_RTT_SAMPLE - 1) as usize, Duration::from_millis(200));
        assert_eq!(h.phase(), Phase::SlowStart);
    }

    #[test]
    fn rising_delay_enters_css_and_css_rounds_end_slow_start() {
        let mut h = HyStart::new();
        let mut f = Flow::new();
        f.round(&mut h, 16, Duration::from_millis(100));
        f.round(&mut h, 16, Duration::from_millis(100));
        // 100 ms + 12.5 ms is the threshold; 120 ms passes it once the
        // round has N_RTT_SAMPLE samples.
        let steps = f.round(&mut h, 16, Duration::from_millis(120));
        assert_eq!(h.phase(), Phase::Css { baseline: Duration::from_millis(120) });
        // The window's first ACK closed the last round; the next
        // N_RTT_SAMPLE fill the new one, the last of them tripping the test
        // after growing at slow start's rate. The rest grow a quarter as fast.
        let full = 1 + N_RTT_SAMPLE as usize;
        assert!(steps[..full].iter().all(|s| s.grow == MSS));
        assert!(steps[full..].iter().all(|s| s.grow == MSS / CSS_GROWTH_DIVISOR));
        // Rounds run from one window's first ACK to the next's; the round CSS
        // began in is not a CSS round, the next CSS_ROUNDS are.
        let mut exits = Vec::new();
        for r in 0..CSS_ROUNDS + 1 {
            let steps = f.round(&mut h, 16, Duration::from_millis(120));
            exits.extend(steps.iter().enumerate().filter(|(_, s)| s.exit).map(|(i, _)| (r, i)));
        }
        assert_eq!(exits, [(CSS_ROUNDS, 0)]);
        assert_eq!(h.phase(), Phase::Done);
        assert_eq!(h.css_rounds(), CSS_ROUNDS);
    }

    #[test]
    fn ack_without_sequence_numbers_times_rounds() {
        let mut h = HyStart::new();
        let rtt = Duration::from_millis(50);
        let mut now = Instant::ZERO;
        let ack = |h: &mut HyStart, now: Instant, rtt: Duration| {
            let a = Ack {
                now,
                acked: MSS,
                mss: MSS,
                rtt: Some(rtt),
                min_rtt: Some(Duration::from_millis(50)),
                srtt: Some(rtt),
                in_flight: 0,
                app_limited: false,
                seq: None,
            };
            h.on_ack(&a)
        };
        // Two rounds of 10 ACKs 5 ms apart at 50 ms, then one at 60 ms.
        for r in 0..3 {
            let sample = if r == 2 { Duration::from_millis(60) } else { rtt };
            for _ in 0..10 {
                now += Duration::from_millis(5);
                ack(&mut h, now, sample);
            }
        }
        assert_eq!(h.phase(), Phase::Css { baseline: Duration::from_millis(60) });
    }
}
