//! CUBIC (RFC 9438): the window grows as a cubic function of the time
//! since the last congestion event, concave up to the window where that
//! event came and convex beyond it, never slower than Reno would; it comes
//! down by a factor of 0.7 instead of 0.5. The initial slow start is
//! HyStart++ (RFC 9406, [`super::hystart`]).
//!
//! RFC 9438 counts windows in segments and time in seconds. Here windows
//! are bytes (as `f64`, so that the per-ACK fractions of a byte add up) and
//! the cubic function converts with the MSS where the RFC's formulas are in
//! segments (§4.1: "Implementations can use bytes ... factoring in the
//! maximum segment size wherever necessary").

use super::hystart::{self, HyStart};
use super::{Ack, CongestionControl};
use crate::time::{Duration, Instant};

/// §4.1.1 and §5.1: C, in segments per second cubed.
pub const C: f64 = 0.4;
/// §4.6: the multiplicative decrease factor.
pub const BETA: f64 = 0.7;
/// §4.3: the additive increase of the Reno-friendly estimate,
/// 3 * (1 - beta) / (1 + beta), segments per RTT.
pub const ALPHA: f64 = 3.0 * (1.0 - BETA) / (1.0 + BETA);

/// The variables of §4.1.2 that describe the window, kept together so a
/// spurious congestion event can be undone by restoring them (§4.9).
#[derive(Clone, Copy, Debug)]
struct Window {
    /// cwnd, bytes.
    cwnd: f64,
    /// ssthresh, bytes; `usize::MAX` until the first congestion event or
    /// HyStart++ exit.
    ssthresh: usize,
    /// cwnd_prior: cwnd when ssthresh was last set, bytes.
    cwnd_prior: f64,
    /// W_max, bytes (zero before the first congestion event).
    w_max: f64,
    /// K, seconds.
    k: f64,
    /// t_epoch: when the current congestion avoidance stage began; `None`
    /// until its first ACK. Moved later by application-limited time (§4.2).
    t_epoch: Option<Instant>,
    /// cwnd_epoch, bytes.
    cwnd_epoch: f64,
    /// W_est, bytes.
    w_est: f64,
    /// The next congestion avoidance stage starts with W_max = cwnd_epoch
    /// and K = 0: after a timeout (§4.8) or a HyStart++ exit (§4.10).
    w_max_from_epoch: bool,
}

/// CUBIC state of one connection.
#[derive(Clone, Debug)]
pub struct Cubic {
    w: Window,
    /// The window before the last congestion event (§4.9.2: undo_cwnd,
    /// undo_W_max, ...). Boxed: only a connection that has had a loss
    /// needs it, and every connection holds a `Cubic`.
    undo: Option<Box<Window>>,
    /// §4.7. RFC 9438 says fast convergence SHOULD be on, and SHOULD be off
    /// for a lone flow; a sender cannot tell, so it is on, as in most stacks.
    fast_convergence: bool,
    hystart: HyStart,
    /// When the last ACK came, to leave application-limited stretches out
    /// of the epoch's clock.
    last_ack: Option<Instant>,
    /// A retransmission timeout happened and no new data has been
    /// acknowledged since.
    rto_pending: bool,
    /// In fast recovery: the window deflates to ssthresh when it ends.
    fast_recovery: bool,
}

impl Cubic {
    pub fn new(initial_window: usize) -> Self {
        let cwnd = initial_window as f64;
        Cubic {
            w: Window {
                cwnd,
                ssthresh: usize::MAX,
                cwnd_prior: cwnd,
                w_max: 0.0,
                k: 0.0,
                t_epoch: None,
                cwnd_epoch: cwnd,
                w_est: cwnd,
                w_max_from_epoch: false,
            },
            undo: None,
            fast_convergence: true,
            hystart: HyStart::new(),
            last_ack: None,
            rto_pending: false,
            fast_recovery: false,
        }
    }

    /// Turns fast convergence (§4.7) on or off.
    pub fn with_fast_convergence(mut self, on: bool) -> Self {
        self.fast_convergence = on;
        self
    }

    /// W_max in bytes.
    pub fn w_max(&self) -> f64 {
        self.w.w_max
    }

    /// K in seconds.
    pub fn k(&self) -> f64 {
        self.w.k
    }

    /// W_est in bytes.
    pub fn w_est(&self) -> f64 {
        self.w.w_est
    }

    /// Where HyStart++ stands.
    pub fn hystart_phase(&self) -> hystart::Phase {
        self.hystart.phase()
    }

    /// §4.2 Figure 1: W_cubic(t) = C * (t - K)^3 + W_max, in bytes, for `t`
    /// seconds into the epoch.
    pub fn w_cubic(&self, t: f64, mss: usize) -> f64 {
        let mss = mss as f64;
        (C * (t - self.w.k).powi(3) + self.w.w_max / mss) * mss
    }

    /// §4.2 Figure 2: K = cubic_root((W_max - cwnd_epoch) / C), in seconds.
    pub fn k_for(w_max: f64, cwnd_epoch: f64, mss: usize) -> f64 {
        ((w_max - cwnd_epoch) / mss as f64 / C).cbrt()
    }

    /// The first ACK of a congestion avoidance stage.
    fn start_epoch(&mut self, now: Instant, mss: usize) {
        let w = &mut self.w;
        w.t_epoch = Some(now);
        w.cwnd_epoch = w.cwnd;
        // §4.3: "W_est is set equal to cwnd_epoch at the start of the
        // congestion avoidance stage".
        w.w_est = w.cwnd;
        if w.w_max_from_epoch || w.w_max <= w.cwnd {
            // §4.8 and §4.10: K = 0 and W_max = the window at the start of
            // the stage. The same when the window already is at or beyond
            // W_max (after an idle restart or an undo): a negative K would
            // start the stage part-way up the convex curve.
            w.w_max = w.cwnd;
            w.k = 0.0;
            w.w_max_from_epoch = false;
        } else {
            w.k = Self::k_for(w.w_max, w.cwnd_epoch, mss);
        }
    }

    fn slow_start(&mut self, ack: &Ack) {
        if self.w.ssthresh == usize::MAX && self.hystart.phase() != hystart::Phase::Done {
            // RFC 9438 §4.10: CUBIC SHOULD use HyStart++; RFC 9406 §4.3:
            // only in the initial slow start (ssthresh still arbitrarily high).
            let step = self.hystart.on_ack(ack);
            self.w.cwnd += step.grow as f64;
            if step.exit {
                // RFC 9406 §4.2: "enter congestion avoidance by setting the
                // ssthresh to the current cwnd"; RFC 9438 §4.10: W_max is
                // undefined, so cwnd_prior = cwnd and the first stage starts
                // with K = 0 and W_max = cwnd_epoch.
                self.w.ssthresh = self.cwnd();
                self.w.cwnd_prior = self.w.cwnd;
                self.w.w_max_from_epoch = true;
                self.w.t_epoch = None;
            }
        } else {
            // Slow start with ABC (RFC 5681 §3.1, RFC 3465 §2.2): at most
            // L segments per ACK.
            self.w.cwnd += ack.acked.min(hystart::L * ack.mss) as f64;
        }
    }

    fn congestion_avoidance(&mut self, ack: &Ack) {
        let mss = ack.mss.max(1);
        let now = ack.now;
        if self.w.t_epoch.is_none() {
            self.start_epoch(now, mss);
        }
        let t_epoch = self.w.t_epoch.unwrap_or(now);
        let t = (now - t_epoch).as_secs_f64();
        // §4.2: "RTT is the smoothed round-trip time"; before there is one,
        // the best estimate there is.
        let rtt = ack.srtt.or(ack.min_rtt).or(ack.rtt).unwrap_or(Duration::ZERO).as_secs_f64();
        let w = &mut self.w;
        let cwnd = w.cwnd;
        let acked = ack.acked as f64;

        // §4.3 Figure 4: W_est += alpha * segments_acked / cwnd, in bytes
        // alpha * acked * MSS / cwnd. Alpha becomes 1 once W_est reaches
        // cwnd_prior.
        let alpha = if w.w_est >= w.cwnd_prior { 1.0 } else { ALPHA };
        w.w_est += alpha * acked * mss as f64 / cwnd;

        let w_cubic_t = self.w_cubic(t, mss);
        let w = &mut self.w;
        if w_cubic_t < w.w_est {
            // §4.3: the Reno-friendly region; cwnd SHOULD be set to W_est.
            // It never goes down in congestion avoidance: cwnd may already
            // be above W_est, having followed W_cubic(t + RTT).
            w.cwnd = w.cwnd.max(w.w_est);
        } else {
            // §4.2: target = W_cubic(t + RTT) bounded to [cwnd, 1.5 cwnd];
            // §4.4 (concave, cwnd < W_max) and §4.5 (convex): cwnd grows by
            // (target - cwnd) / cwnd per acknowledged segment, in bytes
            // (target - cwnd) * acked / cwnd.
            let target = self.w_cubic(t + rtt, mss).clamp(cwnd, 1.5 * cwnd);
            self.w.cwnd += (target - cwnd) * acked / cwnd;
        }
    }

    /// Keeps the window for §4.9, reusing the allocation of an earlier
    /// event.
    fn save_undo(&mut self) {
        match &mut self.undo {
            Some(saved) => **saved = self.w,
            None => self.undo = Some(Box::new(self.w)),
        }
    }

    /// §4.6 Figure 5: ssthresh = max(flight_size * beta_cubic, 2 MSS).
    fn reduced(in_flight: usize, mss: usize) -> usize {
        ((in_flight as f64 * BETA) as usize).max(2 * mss)
    }
}

impl CongestionControl for Cubic {
    fn cwnd(&self) -> usize {
        self.w.cwnd as usize
    }

    fn ssthresh(&self) -> usize {
        self.w.ssthresh
    }

    fn on_ack(&mut self, ack: &Ack) {
        self.rto_pending = false;
        let previous = self.last_ack.replace(ack.now);
        if ack.app_limited {
            // RFC 9438 §5.8 and RFC 7661: a window not in use is not grown;
            // §4.2: t "MUST NOT include periods during which cwnd has not
            // been updated due to application-limited behavior", so the
            // epoch moves later by the time since the last ACK.
            if let (Some(t_epoch), Some(previous)) = (self.w.t_epoch.as_mut(), previous) {
                *t_epoch += ack.now - previous;
            }
            return;
        }
        if self.cwnd() < self.w.ssthresh {
            self.slow_start(ack);
        } else {
            self.congestion_avoidance(ack);
        }
    }

    fn on_congestion_event(&mut self, _now: Instant, in_flight: usize, mss: usize) {
        // §4.9.2: remember what a spurious event would have to restore.
        self.save_undo();
        // RFC 9406 §4.2: a loss ends slow start and CSS.
        self.hystart.finish();
        let w = &mut self.w;
        let cwnd = w.cwnd;
        // §4.7: with fast convergence, a congestion event below the last
        // W_max means the available capacity shrank: give up more of it.
        w.w_max = if self.fast_convergence && cwnd < w.w_max { cwnd * (1.0 + BETA) / 2.0 } else { cwnd };
        // §4.6 Figure 5.
        w.cwnd_prior = cwnd;
        w.ssthresh = Self::reduced(in_flight, mss);
        w.cwnd = w.ssthresh as f64;
        w.t_epoch = None;
        w.w_max_from_epoch = false;
        self.fast_recovery = true;
    }

    fn on_recovery_end(&mut self, _now: Instant) {
        // RFC 6582 §3.2 step 3 / RFC 6937: the window after fast recovery
        // is ssthresh. After a timeout the window slow-started from one
        // segment and stays where it got to.
        if self.fast_recovery {
            self.w.cwnd = self.w.ssthresh as f64;
        }
        self.fast_recovery = false;
    }

    fn on_rto(&mut self, _now: Instant, in_flight: usize, mss: usize) {
        self.hystart.finish();
        if !self.rto_pending {
            // §4.9.1: a spurious timeout may restore this.
            self.save_undo();
            // §4.8: ssthresh as in §4.6. RFC 5681 §3.1: when the timer
            // expires again for a segment it already retransmitted,
            // ssthresh is held constant.
            self.w.cwnd_prior = self.w.cwnd;
            self.w.ssthresh = Self::reduced(in_flight, mss);
        }
        // §4.8: cwnd as Reno, the loss window of one segment (RFC 5681
        // §3.1); the next congestion avoidance stage starts with K = 0 and
        // W_max = cwnd_epoch.
        self.w.cwnd = mss as f64;
        self.w.t_epoch = None;
        self.w.w_max_from_epoch = true;
        self.rto_pending = true;
        self.fast_recovery = false;
    }

    fn set_cwnd(&mut self, cwnd: usize) {
        self.w.cwnd = cwnd as f64;
    }

    fn set_ssthresh(&mut self, ssthresh: usize) {
        self.w.ssthresh = ssthresh;
    }

    fn on_idle_restart(&mut self, _now: Instant, restart: usize) {
        // RFC 5681 §4.1 / RFC 7661: restart from at most `restart` bytes.
        // RFC 9438 §5.8: the idle time is no part of t, so the epoch
        // starts again with the next ACK in congestion avoidance (K from
        // the remembered W_max and the restarted window).
        self.w.cwnd = self.w.cwnd.min(restart as f64);
        self.w.t_epoch = None;
        self.last_ack = None;
    }

    fn undo(&mut self, cwnd: usize, ssthresh: usize) {
        self.fast_recovery = false;
        self.rto_pending = false;
        match self.undo.take() {
            // §4.9.2: restore cwnd, cwnd_prior, ssthresh, W_max, K, t_epoch
            // and W_est if cwnd is below cwnd_prior; otherwise (detected
            // long after, the window already grew back) keep the current ones.
            Some(saved) => {
                if self.w.cwnd < self.w.cwnd_prior {
                    self.w = *saved;
                }
            }
            None => {
                self.w.cwnd = self.w.cwnd.max(cwnd as f64);
                self.w.ssthresh = self.w.ssthresh.max(ssthresh);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: usize = 1000;

    fn ack_at(now: Instant, acked: usize, rtt: Duration) -> Ack {
        Ack {
            now,
            acked,
            mss: MSS,
            rtt: Some(rtt),
            min_rtt: Some(rtt),
            srtt: Some(rtt),
            in_flight: 0,
            app_limited: false,
            seq: None,
        }
    }

    /// A CUBIC in congestion avoidance right after a loss at `w_max` segments.
    fn after_loss_at(w_max_segments: usize) -> Cubic {
        let mut c = Cubic::new(10 * MSS).with_fast_convergence(false);
        c.set_cwnd(w_max_segments * MSS);
        c.on_congestion_event(Instant::ZERO, w_max_segments * MSS, MSS);
        c.on_recovery_end(Instant::ZERO);
        c
    }

    /// Feeds one RTT of ACKs, one per segment of the window, spread over
    /// the RTT; returns the time after it.
    fn one_rtt(c: &mut Cubic, start: Instant, rtt: Duration) -> Instant {
        let segments = (c.cwnd() / MSS).max(1);
        let gap = rtt / segments as u32;
        let mut now = start;
        for _ in 0..segments {
            now += gap;
            c.on_ack(&ack_at(now, MSS, rtt));
        }
        start + rtt
    }

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance
    }

    #[test]
    fn alpha_is_three_times_one_minus_beta_over_one_plus_beta() {
        assert!(close(ALPHA, 0.9 / 1.7, 1e-12));
    }

    #[test]
    fn k_for_a_known_w_max() {
        // W_max = 100 segments, cwnd_epoch = 70: K = cbrt(30 / 0.4) = cbrt(75).
        let k = Cubic::k_for(100.0 * MSS as f64, 70.0 * MSS as f64, MSS);
        assert!(close(k, 75f64.cbrt(), 1e-9), "K = {k}");
        assert!(close(k, 4.2172, 1e-4));
        // The RFC 9438 form uses cwnd_epoch; with cwnd_epoch = beta * W_max
        // it equals RFC 8312's cbrt(W_max * (1 - beta) / C).
        assert!(close(k, (100.0 * (1.0 - BETA) / C).cbrt(), 1e-9));
    }

    #[test]
    fn w_cubic_starts_at_cwnd_epoch_and_reaches_w_max_at_k() {
        let mut c = after_loss_at(100);
        assert_eq!(c.cwnd(), 70 * MSS, "beta 0.7");
        assert_eq!(c.w_max(), 100.0 * MSS as f64);
        // The first ACK in congestion avoidance starts the epoch.
        c.on_ack(&ack_at(Instant::from_millis(1), MSS, Duration::from_millis(100)));
        let k = c.k();
        assert!(close(k, 75f64.cbrt(), 1e-9));
        assert!(close(c.w_cubic(0.0, MSS), 70.0 * MSS as f64, 1e-6), "W_cubic(0) = cwnd_epoch");
        assert!(close(c.w_cubic(k, MSS), 100.0 * MSS as f64, 1e-6), "W_cubic(K) = W_max");
        assert!(c.w_cubic(k + 1.0, MSS) > c.w_cubic(k, MSS));
        assert!(close(c.w_cubic(k + 1.0, MSS) - c.w_cubic(k, MSS), C * MSS as f64, 1e-6));
    }

    #[test]
    fn concave_growth_slows_near_w_max_and_convex_growth_speeds_up_after() {
        // A large window and a long RTT keep the Reno-friendly region out
        // of the way: W_est ends far below W_cubic.
        let rtt = Duration::from_millis(100);
        let mut c = after_loss_at(1000);
        let mut now = Instant::ZERO;
        now = one_rtt(&mut c, now, rtt);
        let k = c.k();
        assert!(close(k, 750f64.cbrt(), 1e-9), "K = {k}");
        // Growth per second, sampled each second for 2K seconds.
        let mut sizes = vec![c.cwnd()];
        let seconds = (2.0 * k) as usize;
        for _ in 0..seconds {
            for _ in 0..10 {
                now = one_rtt(&mut c, now, rtt);
            }
            sizes.push(c.cwnd());
        }
        let growth: Vec<i64> = sizes.windows(2).map(|p| p[1] as i64 - p[0] as i64).collect();
        let plateau = (k - 0.1) as usize; // the last whole second before t + RTT passes K
        for i in 1..plateau {
            assert!(growth[i] < growth[i - 1], "concave: growth slows toward W_max: {growth:?}");
        }
        for i in plateau + 2..growth.len() {
            assert!(growth[i] > growth[i - 1], "convex: growth speeds up beyond W_max: {growth:?}");
        }
        // Close to W_max at K, and the Reno estimate never took over.
        let at_k = sizes[k.round() as usize] as f64 / MSS as f64;
        assert!((995.0..=1010.0).contains(&at_k), "cwnd at K = {at_k} segments");
        assert!(c.w_est() < c.cwnd() as f64);
    }

    #[test]
    fn reno_friendly_region_follows_w_est_at_small_rtt() {
        // W_max = 20 segments, RTT = 1 ms: Reno adds a segment each
        // millisecond, far faster than the cubic curve.
        let rtt = Duration::from_millis(1);
        let mut c = after_loss_at(20);
        let start = Instant::from_micros(100);
        let mut now = Instant::ZERO;
        // The RFC's W_est in segments, from cwnd_epoch = 14.
        let mut w_est = 14.0;
        let mut reno_friendly = 0;
        for _ in 0..400 {
            now += Duration::from_micros(100);
            let cwnd = c.w.cwnd / MSS as f64;
            c.on_ack(&ack_at(now, MSS, rtt));
            // Figure 4 with segments_acked = 1; alpha is 1 from cwnd_prior = 20 on.
            let alpha = if w_est >= 20.0 { 1.0 } else { ALPHA };
            w_est += alpha * 1.0 / cwnd;
            assert!(close(c.w_est() / MSS as f64, w_est, 1e-9), "W_est {} vs {w_est}", c.w_est() / MSS as f64);
            let t = (now - start).as_secs_f64();
            if c.w_cubic(t, MSS) < c.w_est() {
                reno_friendly += 1;
                assert!(close(c.w.cwnd, c.w_est(), 1e-6), "Reno-friendly: cwnd = W_est");
            }
        }
        assert_eq!(reno_friendly, 400, "every ACK was in the Reno-friendly region");
        // After 40 ms W_cubic is still about 14 segments; cwnd is Reno's.
        assert!(c.w_cubic(0.04, MSS) < 14.5 * MSS as f64);
        assert!(c.cwnd() > 25 * MSS, "cwnd {} follows W_est", c.cwnd());
    }

    #[test]
    fn beta_reduction_and_fast_convergence() {
        let mut c = Cubic::new(10 * MSS);
        c.set_cwnd(100 * MSS);
        c.on_congestion_event(Instant::ZERO, 100 * MSS, MSS);
        assert_eq!(c.ssthresh(), 70 * MSS);
        assert_eq!(c.cwnd(), 70 * MSS);
        assert_eq!(c.w_max(), 100.0 * MSS as f64, "first event: W_max = cwnd");
        c.on_recovery_end(Instant::ZERO);
        // The next event comes at 80 segments, below W_max: fast
        // convergence sets W_max = cwnd * (1 + beta) / 2.
        c.set_cwnd(80 * MSS);
        c.on_congestion_event(Instant::ZERO, 80 * MSS, MSS);
        assert!(close(c.w_max(), 80.0 * MSS as f64 * 0.85, 1e-6), "W_max {}", c.w_max());
        assert_eq!(c.ssthresh(), 56 * MSS);
        // Without fast convergence W_max is the window before the event.
        let mut c = Cubic::new(10 * MSS).with_fast_convergence(false);
        c.set_cwnd(100 * MSS);
        c.on_congestion_event(Instant::ZERO, 100 * MSS, MSS);
        c.set_cwnd(80 * MSS);
        c.on_congestion_event(Instant::ZERO, 80 * MSS, MSS);
        assert_eq!(c.w_max(), 80.0 * MSS as f64);
        // ssthresh uses flight_size, and is never below 2 MSS.
        let mut c = Cubic::new(10 * MSS);
        c.on_congestion_event(Instant::ZERO, 2 * MSS, MSS);
        assert_eq!(c.ssthresh(), 2 * MSS);
        assert_eq!(c.cwnd(), 2 * MSS);
    }

    #[test]
    fn timeout_takes_one_segment_and_restarts_the_epoch_with_k_zero() {
        let rtt = Duration::from_millis(50);
        let mut c = Cubic::new(10 * MSS);
        c.set_cwnd(100 * MSS);
        c.on_rto(Instant::ZERO, 100 * MSS, MSS);
        assert_eq!(c.cwnd(), MSS, "loss window");
        assert_eq!(c.ssthresh(), 70 * MSS, "ssthresh per §4.6");
        // The timer fires again before anything is acknowledged: ssthresh
        // holds (RFC 5681 §3.1).
        c.on_rto(Instant::from_secs(1), MSS, MSS);
        assert_eq!(c.ssthresh(), 70 * MSS);
        assert_eq!(c.cwnd(), MSS);
        // Slow start up to ssthresh, then the first congestion avoidance
        // stage: W_max = cwnd_epoch and K = 0.
        let mut now = Instant::from_secs(2);
        while c.cwnd() < c.ssthresh() {
            now += Duration::from_millis(1);
            c.on_ack(&ack_at(now, 2 * MSS, rtt));
        }
        c.on_recovery_end(now);
        assert!(c.cwnd() >= 70 * MSS, "recovery end after a timeout does not deflate");
        let epoch = c.cwnd() as f64;
        now += Duration::from_millis(1);
        c.on_ack(&ack_at(now, MSS, rtt));
        assert_eq!(c.k(), 0.0);
        assert_eq!(c.w_max(), epoch);
        // W_est starts at cwnd_epoch and grows with alpha_cubic, below cwnd_prior.
        assert!(close(c.w_est(), epoch + ALPHA * MSS as f64 * MSS as f64 / epoch, 1e-6));
    }

    #[test]
    fn undo_restores_the_state_before_a_spurious_event() {
        let rtt = Duration::from_millis(100);
        let mut c = after_loss_at(100);
        let mut now = Instant::ZERO;
        for _ in 0..20 {
            now = one_rtt(&mut c, now, rtt);
        }
        let (cwnd, ssthresh, w_max, k, w_est) = (c.cwnd(), c.ssthresh(), c.w_max(), c.k(), c.w_est());
        let epoch = c.w.t_epoch;
        c.on_congestion_event(now, cwnd, MSS);
        assert!(c.cwnd() < cwnd);
        c.on_recovery_end(now);
        c.undo(0, 0);
        assert_eq!((c.cwnd(), c.ssthresh()), (cwnd, ssthresh));
        assert_eq!((c.w_max(), c.k(), c.w_est()), (w_max, k, w_est));
        assert_eq!(c.w.t_epoch, epoch);
        // Growth continues on the old curve.
        one_rtt(&mut c, now, rtt);
        assert!(c.cwnd() >= cwnd);

        // A spurious timeout, undone.
        let mut c = after_loss_at(100);
        c.on_rto(Instant::ZERO, 70 * MSS, MSS);
        c.undo(0, 0);
        assert_eq!((c.cwnd(), c.ssthresh()), (70 * MSS, 70 * MSS));

        // Detected late, once the window grew back past cwnd_prior: kept.
        let mut c = after_loss_at(100);
        c.set_cwnd(100 * MSS);
        c.on_congestion_event(now, 100 * MSS, MSS);
        c.set_cwnd(101 * MSS);
        c.undo(0, 0);
        assert_eq!(c.cwnd(), 101 * MSS);
    }

    #[test]
    fn app_limited_acks_neither_grow_cwnd_nor_advance_the_epoch() {
        let rtt = Duration::from_millis(100);
        let mut c = after_loss_at(100);
        let mut now = one_rtt(&mut c, Instant::ZERO, rtt);
        let epoch = c.w.t_epoch.unwrap();
        let cwnd = c.cwnd();
        for _ in 0..50 {
            now += Duration::from_millis(10);
            let mut a = ack_at(now, MSS, rtt);
            a.app_limited = true;
            c.on_ack(&a);
        }
        assert_eq!(c.cwnd(), cwnd);
        let moved = c.w.t_epoch.unwrap() - epoch;
        assert!(moved.abs_diff(Duration::from_millis(500)) < Duration::from_micros(1), "t leaves out {moved:?}");
        // Same in slow start.
        let mut c = Cubic::new(10 * MSS);
        let mut a = ack_at(Instant::ZERO, MSS, rtt);
        a.app_limited = true;
        c.on_ack(&a);
        assert_eq!(c.cwnd(), 10 * MSS);
    }

    #[test]
    fn idle_restart_resets_the_epoch() {
        let rtt = Duration::from_millis(100);
        let mut c = after_loss_at(100);
        let mut now = Instant::ZERO;
        for _ in 0..10 {
            now = one_rtt(&mut c, now, rtt);
        }
        assert!(c.w.t_epoch.is_some());
        c.on_idle_restart(now + Duration::from_secs(60), 10 * MSS);
        assert_eq!(c.cwnd(), 10 * MSS);
        assert!(c.w.t_epoch.is_none());
        // Slow start back to ssthresh, then a new epoch whose t starts at
        // zero: K from W_max and the window at that time, not 60 s of t.
        now += Duration::from_secs(60);
        while c.cwnd() < c.ssthresh() {
            now += Duration::from_millis(1);
            c.on_ack(&ack_at(now, 2 * MSS, rtt));
        }
        now += Duration::from_millis(1);
        c.on_ack(&ack_at(now, MSS, rtt));
        assert_eq!(c.w.t_epoch, Some(now));
        let expect = Cubic::k_for(c.w_max(), c.w.cwnd_epoch, MSS);
        assert!(close(c.k(), expect, 1e-9));
        assert!(c.cwnd() < 80 * MSS, "no jump from idle time in t: {}", c.cwnd());
    }

    #[test]
    fn hystart_leaves_slow_start_on_rising_delay_then_css_then_avoidance() {
        use super::super::AckSeq;
        use crate::tcp::seq::SeqNumber;
        let mut c = Cubic::new(10 * MSS);
        let (mut una, mut nxt) = (SeqNumber(0), SeqNumber(0));
        let mut now = Instant::ZERO;
        let mut round = |c: &mut Cubic, rtt_ms: u64| {
            let segments = c.cwnd() / MSS;
            nxt += segments * MSS;
            now += Duration::from_millis(rtt_ms);
            let before = c.cwnd();
            for _ in 0..segments {
                una += MSS;
                let mut a = ack_at(now, MSS, Duration::from_millis(rtt_ms));
                a.seq = Some(AckSeq { snd_una: una, snd_nxt: nxt });
                c.on_ack(&a);
            }
            c.cwnd() - before
        };
        // Standard slow start: one segment per acknowledged segment.
        assert_eq!(round(&mut c, 100), 10 * MSS);
        assert_eq!(round(&mut c, 100), 20 * MSS);
        assert_eq!(c.hystart_phase(), hystart::Phase::SlowStart);
        // The delay rises by 20 ms, more than 100 / 8 = 12.5 ms: CSS.
        round(&mut c, 120);
        assert_eq!(c.hystart_phase(), hystart::Phase::Css { baseline: Duration::from_millis(120) });
        assert_eq!(c.ssthresh(), usize::MAX, "CSS is still slow start");
        // CSS grows a quarter as fast.
        let w = c.cwnd();
        let grown = round(&mut c, 120);
        assert_eq!(grown, w / MSS * MSS / hystart::CSS_GROWTH_DIVISOR, "CSS_GROWTH_DIVISOR");
        // The round CSS began in does not count; CSS_ROUNDS whole rounds do.
        for _ in 0..hystart::CSS_ROUNDS - 1 {
            round(&mut c, 120);
        }
        assert_eq!(c.hystart.css_rounds(), hystart::CSS_ROUNDS - 1);
        assert!(matches!(c.hystart_phase(), hystart::Phase::Css { .. }));
        assert_eq!(c.ssthresh(), usize::MAX);
        // The first ACK of the next round completes the last CSS round:
        // ssthresh = cwnd, and the rest of the round is congestion
        // avoidance, whose first stage has K = 0 and W_max = cwnd_epoch
        // (RFC 9438 §4.10).
        round(&mut c, 120);
        assert_eq!(c.hystart_phase(), hystart::Phase::Done);
        assert!(c.ssthresh() < usize::MAX && c.ssthresh() <= c.cwnd());
        assert_eq!(c.k(), 0.0);
        assert!(close(c.w_max(), c.ssthresh() as f64, 1.0), "W_max {} ssthresh {}", c.w_max(), c.ssthresh());
    }

    #[test]
    fn hystart_resumes_slow_start_when_the_delay_falls_back() {
        use super::super::AckSeq;
        use crate::tcp::seq::SeqNumber;
        let mut c = Cubic::new(10 * MSS);
        let (mut una, mut nxt) = (SeqNumber(0), SeqNumber(0));
        let mut now = Instant::ZERO;
        let mut round = |c: &mut Cubic, rtt_ms: u64| {
            let segments = c.cwnd() / MSS;
            nxt += segments * MSS;
            now += Duration::from_millis(rtt_ms);
            for _ in 0..segments {
                una += MSS;
                let mut a = ack_at(now, MSS, Duration::from_millis(rtt_ms));
                a.seq = Some(AckSeq { snd_una: una, snd_nxt: nxt });
                c.on_ack(&a);
            }
        };
        round(&mut c, 100);
        round(&mut c, 100);
        round(&mut c, 130);
        assert!(matches!(c.hystart_phase(), hystart::Phase::Css { .. }));
        round(&mut c, 100);
        assert_eq!(c.hystart_phase(), hystart::Phase::SlowStart, "a spurious exit");
        assert_eq!(c.ssthresh(), usize::MAX);
    }

    #[test]
    fn loss_in_slow_start_ends_hystart() {
        let mut c = Cubic::new(10 * MSS);
        c.on_congestion_event(Instant::ZERO, 10 * MSS, MSS);
        assert_eq!(c.hystart_phase(), hystart::Phase::Done);
        assert_eq!(c.ssthresh(), 7 * MSS);
    }

    /// RFC 9438 §4: with one flow, a fixed RTT and a loss each time the
    /// window reaches the path's capacity, the window saw-tooths between
    /// beta * W_max and W_max, and returns to W_max about K after each
    /// reduction (a little sooner, as cwnd aims at W_cubic(t + RTT)).
    #[test]
    fn simulated_rounds_oscillate_with_period_k() {
        let rtt = Duration::from_millis(100);
        let capacity = 200 * MSS;
        let mut c = Cubic::new(10 * MSS).with_fast_convergence(false);
        let mut now = Instant::ZERO;
        let mut losses = Vec::new();
        let mut minima = Vec::new();
        let mut maxima = Vec::new();
        while losses.len() < 10 && now < Instant::from_secs(300) {
            if c.cwnd() >= capacity {
                maxima.push(c.cwnd());
                c.on_congestion_event(now, c.cwnd(), MSS);
                losses.push(now);
                minima.push(c.cwnd());
                // One RTT of fast recovery, then congestion avoidance.
                now += rtt;
                c.on_recovery_end(now);
            }
            now = one_rtt(&mut c, now, rtt);
        }
        assert_eq!(losses.len(), 10, "losses at {losses:?}");
        let k = (200.0 * (1.0 - BETA) / C).cbrt();
        // The first epochs settle from slow start's overshoot: W_max comes
        // down to the capacity, and while it is above, the flat top of the
        // curve crosses the capacity early.
        for pair in losses.windows(2).skip(5) {
            let period = (pair[1] - pair[0]).as_secs_f64();
            // One RTT of recovery, then K of growth back to W_max (the
            // look-ahead of the target, W_cubic(t + RTT), and the window's
            // lag behind it, about cancel), give or take the RTT steps the
            // losses come in and W_max sitting a hair above the capacity.
            let expect = k + rtt.as_secs_f64();
            assert!(
                (period - expect).abs() <= 1.5 * rtt.as_secs_f64(),
                "period {period} s, K {k} s, losses {losses:?}"
            );
        }
        for (&lo, &hi) in minima.iter().zip(&maxima).skip(5) {
            assert!(close(lo as f64, BETA * hi as f64, MSS as f64), "min {lo} max {hi}");
            assert!(hi >= capacity && hi < capacity + MSS / 2, "max {hi}");
        }
    }
}
