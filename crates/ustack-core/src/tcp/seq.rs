//! Sequence numbers: arithmetic modulo 2^32 (RFC 9293 §3.4).
//!
//! Comparisons are meaningful only between numbers less than 2^31 apart,
//! which TCP guarantees by bounding the window at 2^30 (RFC 7323 §2.3).

use core::cmp::Ordering;
use core::fmt;
use core::ops::{Add, AddAssign, Sub};

/// A TCP sequence number. `Ord` is the modular "is before" relation.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SeqNumber(pub u32);

impl SeqNumber {
    /// Signed distance from `other` to `self`: positive when `self` is after.
    pub fn diff(self, other: SeqNumber) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }
    /// Bytes from `earlier` to `self`; zero when `self` is not after `earlier`.
    pub fn since(self, earlier: SeqNumber) -> usize {
        self.diff(earlier).max(0) as usize
    }
    pub fn max(self, other: SeqNumber) -> SeqNumber {
        if self >= other { self } else { other }
    }
    pub fn min(self, other: SeqNumber) -> SeqNumber {
        if self <= other { self } else { other }
    }
    /// `lo <= self < hi`, modulo 2^32.
    pub fn in_range(self, lo: SeqNumber, hi: SeqNumber) -> bool {
        self.0.wrapping_sub(lo.0) < hi.0.wrapping_sub(lo.0)
    }
}

impl Ord for SeqNumber {
    fn cmp(&self, other: &Self) -> Ordering {
        self.diff(*other).cmp(&0)
    }
}

impl PartialOrd for SeqNumber {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Add<usize> for SeqNumber {
    type Output = SeqNumber;
    fn add(self, n: usize) -> SeqNumber {
        SeqNumber(self.0.wrapping_add(n as u32))
    }
}

impl AddAssign<usize> for SeqNumber {
    fn add_assign(&mut self, n: usize) {
        *self = *self + n;
    }
}

impl Sub<usize> for SeqNumber {
    type Output = SeqNumber;
    fn sub(self, n: usize) -> SeqNumber {
        SeqNumber(self.0.wrapping_sub(n as u32))
    }
}

impl Sub for SeqNumber {
    type Output = usize;
    /// Distance from `rhs` up to `self`. Panics in debug builds if `rhs`
    /// is after `self`: callers must know the order.
    fn sub(self, rhs: SeqNumber) -> usize {
        let d = self.diff(rhs);
        debug_assert!(d >= 0, "sequence subtraction underflow: {} - {}", self.0, rhs.0);
        d.max(0) as usize
    }
}

impl fmt::Debug for SeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for SeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparison_wraps_around() {
        let a = SeqNumber(u32::MAX - 10);
        let b = a + 20;
        assert_eq!(b.0, 9);
        assert!(a < b);
        assert!(b > a);
        assert_eq!(b - a, 20);
        assert_eq!(b.diff(a), 20);
        assert_eq!(a.diff(b), -20);
        assert_eq!(a.since(b), 0);
        assert_eq!(a.max(b), b);
        assert_eq!(a.min(b), a);
    }

    #[test]
    fn in_range_wraps_around() {
        let lo = SeqNumber(u32::MAX - 5);
        let hi = lo + 10;
        assert!(lo.in_range(lo, hi));
        assert!(SeqNumber(2).in_range(lo, hi));
        assert!(!hi.in_range(lo, hi));
        assert!(!SeqNumber(100).in_range(lo, hi));
        assert!(!lo.in_range(lo, lo), "an empty range holds nothing");
    }

    #[test]
    fn half_space_is_the_limit() {
        let a = SeqNumber(0);
        assert!(a + (1 << 31) - 1 > a);
        assert!(a + (1 << 31) + 1 < a, "beyond 2^31 the order flips");
    }
}
