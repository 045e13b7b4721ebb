//! Time as the caller supplies it.
//!
//! [`Instant`] counts nanoseconds from an arbitrary origin chosen by the
//! caller (the simulator starts at zero; the driver uses process start).
//! Durations are `core::time::Duration`.

use core::fmt;
use core::num::NonZeroU64;
use core::ops::{Add, AddAssign, Sub};
pub use core::time::Duration;

/// A point in time, in nanoseconds since the caller's origin.
///
/// Kept as nanoseconds plus one in a `NonZeroU64`, so that
/// `Option<Instant>` (a connection has a dozen, one per timer) takes 8
/// bytes instead of 16. The last nanosecond of the range is given up:
/// `u64::MAX` nanoseconds reads back as [`Instant::FAR_FUTURE`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant {
    nanos_plus_one: NonZeroU64,
}

impl Instant {
    pub const ZERO: Instant = Instant::from_nanos(0);
    /// Later than any instant a program will reach (584 years).
    pub const FAR_FUTURE: Instant = Instant::from_nanos(u64::MAX);

    pub const fn from_nanos(nanos: u64) -> Self {
        Instant { nanos_plus_one: NonZeroU64::MIN.saturating_add(nanos) }
    }
    pub const fn from_micros(micros: u64) -> Self {
        Instant::from_nanos(micros.saturating_mul(1_000))
    }
    pub const fn from_millis(millis: u64) -> Self {
        Instant::from_nanos(millis.saturating_mul(1_000_000))
    }
    pub const fn from_secs(secs: u64) -> Self {
        Instant::from_nanos(secs.saturating_mul(1_000_000_000))
    }
    pub const fn as_nanos(self) -> u64 {
        self.nanos_plus_one.get() - 1
    }
    pub const fn as_micros(self) -> u64 {
        self.as_nanos() / 1_000
    }
    pub const fn as_millis(self) -> u64 {
        self.as_nanos() / 1_000_000
    }
    /// Seconds as a float, for display.
    pub fn as_secs_f64(self) -> f64 {
        self.as_nanos() as f64 / 1e9
    }
    /// Time elapsed since `earlier`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.as_nanos().saturating_sub(earlier.as_nanos()))
    }
    pub fn checked_duration_since(self, earlier: Instant) -> Option<Duration> {
        self.as_nanos().checked_sub(earlier.as_nanos()).map(Duration::from_nanos)
    }
}

impl Default for Instant {
    fn default() -> Self {
        Instant::ZERO
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instant").field("nanos", &self.as_nanos()).finish()
    }
}

fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Add<Duration> for Instant {
    type Output = Instant;
    /// Saturates at [`Instant::FAR_FUTURE`] rather than overflowing.
    fn add(self, d: Duration) -> Instant {
        Instant::from_nanos(self.as_nanos().saturating_add(duration_nanos(d)))
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, d: Duration) -> Instant {
        Instant::from_nanos(self.as_nanos().saturating_sub(duration_nanos(d)))
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    /// Saturating: an earlier minus a later instant is zero.
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

impl fmt::Display for Instant {
    /// Seconds with microsecond precision, as packet tools print time.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.as_nanos();
        write!(f, "{}.{:06}", nanos / 1_000_000_000, (nanos % 1_000_000_000) / 1_000)
    }
}

/// Durations kept per connection in 32-bit microseconds (RTT estimates
/// and the like): a thousand times finer than the 1 ms clock granularity
/// RFC 6298 §2 assumes, up to 71 minutes. [`Micros32::NONE`] stands for
/// "no value", so an optional duration costs 4 bytes instead of 16.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Micros32(u32);

impl Micros32 {
    pub const ZERO: Micros32 = Micros32(0);
    pub const NONE: Micros32 = Micros32(u32::MAX);
    /// The longest duration held: 2^32 - 2 microseconds.
    pub const MAX: Micros32 = Micros32(u32::MAX - 1);

    /// Rounds down to whole microseconds; longer durations become [`Micros32::MAX`].
    pub fn new(d: Duration) -> Self {
        Micros32(u32::try_from(d.as_micros()).unwrap_or(u32::MAX).min(Self::MAX.0))
    }
    pub fn from_option(d: Option<Duration>) -> Self {
        d.map_or(Self::NONE, Self::new)
    }
    pub const fn from_micros(us: u32) -> Self {
        Micros32(if us > Self::MAX.0 { Self::MAX.0 } else { us })
    }
    pub const fn as_micros(self) -> u32 {
        self.0
    }
    pub const fn is_none(self) -> bool {
        self.0 == u32::MAX
    }
    /// The duration; [`Micros32::NONE`] reads as zero (use [`Micros32::get`]
    /// where "none" matters).
    pub fn duration(self) -> Duration {
        if self.is_none() { Duration::ZERO } else { Duration::from_micros(u64::from(self.0)) }
    }
    pub fn get(self) -> Option<Duration> {
        (!self.is_none()).then(|| self.duration())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Instant::from_millis(5);
        assert_eq!(t + Duration::from_millis(5), Instant::from_millis(10));
        assert_eq!(t - Duration::from_secs(1), Instant::ZERO);
        assert_eq!(Instant::ZERO - t, Duration::ZERO);
        assert_eq!(Instant::FAR_FUTURE + Duration::from_secs(1), Instant::FAR_FUTURE);
        assert_eq!(Instant::from_micros(1_500_000).to_string(), "1.500000");
    }

    #[test]
    fn an_optional_instant_takes_eight_bytes_and_order_is_kept() {
        assert_eq!(core::mem::size_of::<Option<Instant>>(), 8);
        assert!(Instant::ZERO < Instant::from_nanos(1));
        assert!(Instant::from_secs(1) < Instant::FAR_FUTURE);
        assert_eq!(Instant::from_nanos(u64::MAX), Instant::FAR_FUTURE);
        assert_eq!(Instant::FAR_FUTURE.as_nanos(), u64::MAX - 1);
        assert_eq!(Instant::default(), Instant::ZERO);
        assert_eq!(format!("{:?}", Instant::from_nanos(7)), "Instant { nanos: 7 }");
    }

    #[test]
    fn micros32_rounds_down_saturates_and_keeps_none_apart() {
        assert_eq!(Micros32::new(Duration::from_nanos(2_999)).as_micros(), 2);
        assert_eq!(Micros32::new(Duration::from_secs(1 << 40)), Micros32::MAX);
        assert!(!Micros32::MAX.is_none());
        assert_eq!(Micros32::from_option(None), Micros32::NONE);
        assert_eq!(Micros32::NONE.get(), None);
        assert_eq!(Micros32::NONE.duration(), Duration::ZERO);
        assert_eq!(Micros32::from_micros(u32::MAX), Micros32::MAX);
        assert_eq!(Micros32::new(Duration::from_millis(5)).get(), Some(Duration::from_millis(5)));
        // NONE sorts above every value, so `min` with it keeps the value.
        assert_eq!(Micros32::NONE.min(Micros32::from_micros(7)), Micros32::from_micros(7));
    }
}
