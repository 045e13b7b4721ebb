//! Retransmission timeout per RFC 6298.

use crate::time::{Duration, Micros32};

/// Clock granularity G of RFC 6298 §2: the timer resolution we assume.
const GRANULARITY: Duration = Duration::from_millis(1);

/// A duration in nanoseconds; `NONE` for "no sample yet".
type Nanos = u64;
const NONE: Nanos = u64::MAX;

fn nanos(d: Duration) -> Nanos {
    u64::try_from(d.as_nanos()).unwrap_or(NONE - 1).min(NONE - 1)
}

fn optional(n: Nanos) -> Option<Duration> {
    (n != NONE).then(|| Duration::from_nanos(n))
}

/// SRTT, RTTVAR and the RTO with its exponential backoff.
///
/// Every connection holds one, so it is kept compact (48 bytes, not the
/// 120 of `Option<Duration>` fields): the estimates in 64-bit nanoseconds,
/// computed exactly as with `Duration` (a rounder unit would move every
/// timer a little and with it every seeded simulation); the configured
/// bounds and the statistics-only latest sample in 32-bit microseconds
/// ([`Micros32`]).
#[derive(Clone, Debug)]
pub struct RttEstimator {
    srtt: Nanos,
    rttvar: Nanos,
    /// RTO before backoff.
    base_rto: Nanos,
    /// The smallest sample seen, as RACK and Linux's `min_rtt` use it.
    min_rtt: Nanos,
    min_rto: Micros32,
    max_rto: Micros32,
    /// The latest sample, for statistics.
    latest: Micros32,
    /// Consecutive timeouts; each doubles the RTO (RFC 6298 §5.5). Past
    /// 31 doublings the RTO is `max_rto` whatever the count.
    backoff: u8,
}

impl RttEstimator {
    /// `initial` is the RTO before any sample (1 s, RFC 6298 §2.1).
    pub fn new(initial: Duration, min_rto: Duration, max_rto: Duration) -> Self {
        let (min_rto, max_rto) = (Micros32::new(min_rto), Micros32::new(max_rto));
        let mut e = RttEstimator {
            srtt: NONE,
            rttvar: 0,
            base_rto: 0,
            min_rtt: NONE,
            min_rto,
            max_rto,
            latest: Micros32::NONE,
            backoff: 0,
        };
        e.base_rto = nanos(e.clamp(initial));
        e
    }

    /// Within [min_rto, max_rto]; a floor set above the ceiling wins.
    fn clamp(&self, rto: Duration) -> Duration {
        rto.min(self.max_rto.duration()).max(self.min_rto.duration())
    }

    /// Feeds one round-trip sample (RFC 6298 §2.2 and §2.3). Callers apply
    /// Karn's rule: no samples from retransmitted segments unless timestamps
    /// disambiguate them.
    pub fn sample(&mut self, r: Duration) {
        self.latest = Micros32::new(r);
        self.min_rtt = self.min_rtt.min(nanos(r));
        // In integer nanoseconds, not `Duration` (whose divisions are a few
        // 64-bit divides each, a measurable part of every ACK): the same
        // results, since 10^9 is a multiple of 2, 4 and 8, so `Duration`'s
        // division by them is the exact floor too; seeded runs do not move.
        let r = nanos(r);
        let (srtt, rttvar) = if self.srtt == NONE {
            (r, r / 2)
        } else {
            // RTTVAR <- (1 - 1/4) * RTTVAR + 1/4 * |SRTT - R'|
            // SRTT   <- (1 - 1/8) * SRTT   + 1/8 * R'
            let delta = self.srtt.abs_diff(r);
            (
                (self.srtt.saturating_mul(7) / 8).saturating_add(r / 8),
                (self.rttvar.saturating_mul(3) / 4).saturating_add(delta / 4),
            )
        };
        self.srtt = srtt.min(NONE - 1);
        self.rttvar = rttvar.min(NONE - 1);
        // RTO <- SRTT + max(G, K*RTTVAR), K = 4, then clamped (§2.4, §2.5).
        let rto = srtt.saturating_add(rttvar.saturating_mul(4).max(nanos(GRANULARITY)));
        self.base_rto = nanos(self.clamp(Duration::from_nanos(rto.min(NONE - 1))));
    }

    /// The current timeout, with backoff applied.
    #[inline]
    pub fn rto(&self) -> Duration {
        Duration::from_nanos(self.rto_nanos())
    }

    /// `rto` in integer nanoseconds (the same figure: `Duration`'s
    /// saturating multiply and `min` cost several times more, on every
    /// timer a segment arms).
    #[inline]
    fn rto_nanos(&self) -> Nanos {
        let factor = 1u64 << self.backoff.min(31);
        self.base_rto.saturating_mul(factor).min(nanos(self.max_rto.duration()))
    }

    /// The current timeout with a timer slop added (`TcpConfig::rto_slop`),
    /// as FreeBSD's `TCPT_RANGESET` adds `rexmit_slop`: to every RTO
    /// computed from a sample or a backoff, not to the initial one.
    #[inline]
    pub fn rto_with_slop(&self, slop: Duration) -> Duration {
        if slop.is_zero() || (self.srtt == NONE && self.backoff == 0) {
            return self.rto();
        }
        (self.rto() + slop).min(self.max_rto.duration())
    }

    /// A retransmission timer expired: double the RTO (§5.5).
    pub fn back_off(&mut self) {
        self.backoff = self.backoff.saturating_add(1);
    }

    /// New data was acknowledged: the backoff ends (§5.7 and common practice).
    pub fn reset_backoff(&mut self) {
        self.backoff = 0;
    }

    pub fn backoff(&self) -> u32 {
        u32::from(self.backoff)
    }
    pub fn srtt(&self) -> Option<Duration> {
        optional(self.srtt)
    }
    pub fn rttvar(&self) -> Duration {
        Duration::from_nanos(self.rttvar)
    }
    pub fn latest(&self) -> Option<Duration> {
        self.latest.get()
    }
    pub fn min_rtt(&self) -> Option<Duration> {
        optional(self.min_rtt)
    }
    pub fn set_min_rto(&mut self, min: Duration) {
        self.min_rto = Micros32::new(min);
        self.base_rto = self.base_rto.max(nanos(self.min_rto.duration()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn est() -> RttEstimator {
        RttEstimator::new(Duration::from_secs(1), Duration::from_millis(200), Duration::from_secs(120))
    }

    /// The integer arithmetic gives exactly what the RFC 6298 formulas
    /// give in `Duration` (so seeded runs do not move), for RTTs from
    /// microseconds to minutes.
    #[test]
    fn estimates_match_the_duration_formulas_exactly() {
        let mut rng = crate::rand::Rng::new(6298);
        for _ in 0..200 {
            let mut e = est();
            let (mut srtt, mut rttvar): (Option<Duration>, Duration) = (None, Duration::ZERO);
            let scale = [1_000u64, 1_000_000, 1_000_000_000, 60_000_000_000][rng.below(4) as usize];
            for _ in 0..50 {
                let r = Duration::from_nanos(1 + rng.below(scale * 3));
                e.sample(r);
                (srtt, rttvar) = match srtt {
                    None => (Some(r), r / 2),
                    Some(s) => (Some(s * 7 / 8 + r / 8), rttvar * 3 / 4 + s.abs_diff(r) / 4),
                };
                let s = srtt.unwrap();
                let rto =
                    (s + (rttvar * 4).max(GRANULARITY)).clamp(Duration::from_millis(200), Duration::from_secs(120));
                assert_eq!((e.srtt(), e.rttvar(), e.rto()), (srtt, rttvar, rto), "sample {r:?}");
            }
        }
    }

    #[test]
    fn initial_rto_is_one_second() {
        assert_eq!(est().rto(), Duration::from_secs(1));
    }

    #[test]
    fn first_sample_sets_srtt_and_half_rttvar() {
        let mut e = est();
        e.sample(Duration::from_millis(100));
        assert_eq!(e.srtt(), Some(Duration::from_millis(100)));
        assert_eq!(e.rttvar(), Duration::from_millis(50));
        // 100 + 4 * 50 = 300 ms
        assert_eq!(e.rto(), Duration::from_millis(300));
    }

    #[test]
    fn later_samples_smooth() {
        let mut e = est();
        e.sample(Duration::from_millis(100));
        e.sample(Duration::from_millis(200));
        // rttvar = 3/4*50 + 1/4*100 = 62.5; srtt = 7/8*100 + 1/8*200 = 112.5
        assert_eq!(e.rttvar(), Duration::from_micros(62_500));
        assert_eq!(e.srtt(), Some(Duration::from_micros(112_500)));
        assert_eq!(e.rto(), Duration::from_micros(362_500));
    }

    #[test]
    fn slop_lengthens_every_computed_rto_but_not_the_initial_one() {
        let slop = Duration::from_millis(200);
        let mut e = est();
        // Before any sample: the initial RTO as configured (FreeBSD's first
        // SYN retransmission at 1 s), then the doubled one plus the slop:
        // the third SYN goes at 1 + 2.2 = 3.2 s.
        assert_eq!(e.rto_with_slop(slop), Duration::from_secs(1));
        e.back_off();
        assert_eq!(e.rto_with_slop(slop), Duration::from_millis(2_200));
        e.reset_backoff();
        e.sample(Duration::from_millis(100));
        assert_eq!(e.rto_with_slop(slop), Duration::from_millis(500));
        assert_eq!(e.rto_with_slop(Duration::ZERO), e.rto());
        // The ceiling holds with the slop too.
        for _ in 0..40 {
            e.back_off();
        }
        assert_eq!(e.rto_with_slop(slop), Duration::from_secs(120));
    }

    #[test]
    fn min_rto_floor_and_backoff_cap() {
        let mut e = est();
        e.sample(Duration::from_millis(1));
        assert_eq!(e.rto(), Duration::from_millis(200));
        e.back_off();
        assert_eq!(e.rto(), Duration::from_millis(400));
        for _ in 0..40 {
            e.back_off();
        }
        assert_eq!(e.rto(), Duration::from_secs(120));
        e.reset_backoff();
        assert_eq!(e.rto(), Duration::from_millis(200));
    }

    #[test]
    fn compact_and_saturating() {
        // Every connection holds one: a layout check (issue 6, idle
        // memory), not a timing one.
        assert!(core::mem::size_of::<RttEstimator>() <= 48);
        let mut e = est();
        e.sample(Duration::from_nanos(1_999));
        assert_eq!(e.latest(), Some(Duration::from_micros(1)));
        // The latest sample (statistics) is kept to the microsecond and an
        // absurd one is clamped to 71 minutes, not wrapped; the estimates
        // keep every nanosecond.
        assert_eq!(e.srtt(), Some(Duration::from_nanos(1_999)));
        e.sample(Duration::from_secs(100_000));
        assert_eq!(e.latest(), Some(Duration::from_micros(u64::from(u32::MAX - 1))));
        assert_eq!(e.min_rtt(), Some(Duration::from_nanos(1_999)));
        assert_eq!(e.rto(), Duration::from_secs(120));
        for _ in 0..300 {
            e.back_off();
        }
        assert_eq!(e.rto(), Duration::from_secs(120));
    }

    #[test]
    fn a_floor_above_the_ceiling_does_not_panic() {
        let mut e = RttEstimator::new(Duration::from_secs(1), Duration::from_secs(5), Duration::from_secs(2));
        assert_eq!(e.rto(), Duration::from_secs(2));
        e.sample(Duration::from_millis(10));
        assert_eq!(e.rto(), Duration::from_secs(2));
        assert_eq!(e.srtt(), Some(Duration::from_millis(10)));
    }
}
