//! Time as the caller supplies it.
//!
//! [`Instant`] counts nanoseconds from an arbitrary origin chosen by the
//! caller (the simulator starts at zero; the driver uses process start).
//! Durations are `core::time::Duration`.

use core::fmt;
use core::ops::{Add, AddAssign, Sub};
pub use core::time::Duration;

/// A point in time, in nanoseconds since the caller's origin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant {
    nanos: u64,
}

impl Instant {
    pub const ZERO: Instant = Instant { nanos: 0 };
    /// Later than any instant a program will reach (584 years).
    pub const FAR_FUTURE: Instant = Instant { nanos: u64::MAX };

    pub const fn from_nanos(nanos: u64) -> Self {
        Instant { nanos }
    }
    pub const fn from_micros(micros: u64) -> Self {
        Instant { nanos: micros.saturating_mul(1_000) }
    }
    pub const fn from_millis(millis: u64) -> Self {
        Instant { nanos: millis.saturating_mul(1_000_000) }
    }
    pub const fn from_secs(secs: u64) -> Self {
        Instant { nanos: secs.saturating_mul(1_000_000_000) }
    }
    pub const fn as_nanos(self) -> u64 {
        self.nanos
    }
    pub const fn as_micros(self) -> u64 {
        self.nanos / 1_000
    }
    pub const fn as_millis(self) -> u64 {
        self.nanos / 1_000_000
    }
    /// Seconds as a float, for display.
    pub fn as_secs_f64(self) -> f64 {
        self.nanos as f64 / 1e9
    }
    /// Time elapsed since `earlier`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.nanos.saturating_sub(earlier.nanos))
    }
    pub fn checked_duration_since(self, earlier: Instant) -> Option<Duration> {
        self.nanos.checked_sub(earlier.nanos).map(Duration::from_nanos)
    }
}

fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Add<Duration> for Instant {
    type Output = Instant;
    /// Saturates at [`Instant::FAR_FUTURE`] rather than overflowing.
    fn add(self, d: Duration) -> Instant {
        Instant { nanos: self.nanos.saturating_add(duration_nanos(d)) }
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
        Instant { nanos: self.nanos.saturating_sub(duration_nanos(d)) }
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
        write!(f, "{}.{:06}", self.nanos / 1_000_000_000, (self.nanos % 1_000_000_000) / 1_000)
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
}
