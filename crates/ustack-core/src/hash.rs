//! A keyed, fast hasher for the stack's lookup tables.
//!
//! `std`'s `RandomState` draws its keys from the operating system, which a
//! sans-IO core must not do, and an unkeyed hash lets an attacker choose
//! 4-tuples that collide. This hasher takes its keys from the stack's
//! seeded random source and mixes with a folded 64x64->128 multiply, the
//! construction fast keyed hashers such as foldhash use: cheap for the
//! short keys here (ports and addresses), and unpredictable without the key.

use core::hash::{BuildHasher, Hasher};

const MUL: u64 = 0x9e37_79b9_7f4a_7c15;

#[inline]
fn folded_multiply(a: u64, b: u64) -> u64 {
    let full = (a as u128).wrapping_mul(b as u128);
    (full as u64) ^ ((full >> 64) as u64)
}

/// Builds [`KeyedHasher`]s with one secret key.
#[derive(Clone, Copy, Debug)]
pub struct KeyedState {
    k0: u64,
    k1: u64,
}

impl KeyedState {
    pub fn new(k0: u64, k1: u64) -> Self {
        KeyedState { k0, k1: k1 | 1 }
    }
}

impl BuildHasher for KeyedState {
    type Hasher = KeyedHasher;
    fn build_hasher(&self) -> KeyedHasher {
        KeyedHasher { acc: self.k0, key: self.k1 }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct KeyedHasher {
    acc: u64,
    key: u64,
}

impl Hasher for KeyedHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.write_u64(u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.write_u64(u64::from_le_bytes(b) ^ ((rest.len() as u64) << 56));
        }
    }
    #[inline]
    fn write_u8(&mut self, v: u8) {
        self.write_u64(v as u64)
    }
    #[inline]
    fn write_u16(&mut self, v: u16) {
        self.write_u64(v as u64)
    }
    #[inline]
    fn write_u32(&mut self, v: u32) {
        self.write_u64(v as u64)
    }
    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.acc = folded_multiply(self.acc ^ v, self.key ^ MUL);
    }
    #[inline]
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64)
    }
    #[inline]
    fn finish(&self) -> u64 {
        folded_multiply(self.acc, self.key.rotate_left(23) ^ MUL)
    }
}

/// A `HashMap` keyed by the stack's secret.
pub type KeyedMap<K, V> = std::collections::HashMap<K, V, KeyedState>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddrV4};

    fn h<T: core::hash::Hash>(s: &KeyedState, v: T) -> u64 {
        s.hash_one(v)
    }

    #[test]
    fn keyed_and_spread() {
        let a = KeyedState::new(1, 2);
        let b = KeyedState::new(3, 4);
        let t =
            |p| (SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), p), SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80));
        assert_ne!(h(&a, t(1000)), h(&b, t(1000)), "different keys, different hashes");
        assert_eq!(h(&a, t(1000)), h(&a, t(1000)));
        // Consecutive ports land in different buckets of a small table.
        let mut buckets = [0u32; 64];
        for p in 1000..1000 + 6400u16 {
            buckets[(h(&a, t(p)) >> 58) as usize] += 1;
        }
        assert!(buckets.iter().all(|&n| (50..=150).contains(&n)), "{buckets:?}");
    }
}
