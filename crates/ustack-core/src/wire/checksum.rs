//! The Internet checksum (RFC 1071) and the IPv4 pseudo-header (RFC 9293 §3.1).

use std::net::Ipv4Addr;

/// Ones'-complement sum of `data` as big-endian 16-bit words, folded to 16
/// bits but not inverted. An odd trailing byte is padded with zero.
pub fn sum(data: &[u8]) -> u16 {
    fold(accumulate(0, data))
}

/// Adds `data` to a running 64-bit accumulator (end-around carry). The
/// ones'-complement sum may be taken over words of any width and folded
/// afterwards (RFC 1071 §2(B)): a big-endian 32-bit word hi·2^16 + lo is
/// congruent to hi + lo modulo 2^16 - 1. So the bulk of the data is summed
/// as 32-bit words into eight independent 64-bit lanes, which cannot
/// overflow for any packet and carry no dependency from one word to the
/// next, so the compiler turns the loop into vector additions; the tail
/// is summed eight bytes at a time with the carry added back.
pub fn accumulate(acc: u64, data: &[u8]) -> u64 {
    let mut lanes = [0u64; 8];
    let mut blocks = data.chunks_exact(32);
    for b in &mut blocks {
        for (i, lane) in lanes.iter_mut().enumerate() {
            *lane += u32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]) as u64;
        }
    }
    // Each lane is below 2^32 times the number of blocks: their sum fits.
    // Little-endian words sum to the byte-swapped 16-bit sum (RFC 1071
    // §2(B), byte order independence), so no byte is shuffled in the loop.
    let swapped = fold(lanes.iter().sum());
    let mut acc = add_carry(acc, swapped.swap_bytes() as u64);
    let mut chunks = blocks.remainder().chunks_exact(8);
    for c in &mut chunks {
        acc = add_carry(acc, u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]));
    }
    let rest = chunks.remainder();
    let mut tail = [0u8; 8];
    tail[..rest.len()].copy_from_slice(rest);
    add_carry(acc, u64::from_be_bytes(tail))
}

/// Ones'-complement addition of two 64-bit words.
#[inline]
fn add_carry(a: u64, b: u64) -> u64 {
    let (s, carry) = a.overflowing_add(b);
    s + carry as u64
}

/// Folds a 64-bit accumulator to a 16-bit ones'-complement sum.
pub fn fold(mut acc: u64) -> u16 {
    acc = (acc >> 32) + (acc & 0xffff_ffff);
    acc = (acc >> 32) + (acc & 0xffff_ffff);
    acc = (acc >> 16) + (acc & 0xffff);
    acc = (acc >> 16) + (acc & 0xffff);
    acc as u16
}

/// Combines two 16-bit partial sums.
pub fn combine(a: u16, b: u16) -> u16 {
    let s = a as u32 + b as u32;
    ((s & 0xffff) + (s >> 16)) as u16
}

/// Sum of the IPv4 pseudo-header: source, destination, zero, protocol and
/// the transport length.
/// (Taken for every segment sent and received: the addresses are added as
/// 32-bit words, which RFC 1071 §2(B) allows, and folded once.)
pub fn pseudo_header(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, length: u32) -> u16 {
    fold(u32::from(src) as u64 + u32::from(dst) as u64 + protocol as u64 + (length as u16) as u64)
}

/// The checksum field value for `data` (whose checksum field is zero or
/// included), optionally with a pseudo-header sum: the inverted sum.
pub fn checksum(pseudo: u16, data: &[u8]) -> u16 {
    !combine(pseudo, sum(data))
}

/// True when `data`, including its checksum field, sums to all ones.
pub fn verify(pseudo: u16, data: &[u8]) -> bool {
    combine(pseudo, sum(data)) == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of RFC 1071 §3.
    #[test]
    fn rfc1071_example() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&data), 0xddf2);
    }

    #[test]
    fn wide_sum_equals_word_sum() {
        let mut data: Vec<u8> = (0..65_535u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        // Runs of 0xff, where carries pile up.
        data[3000..4500].fill(0xff);
        for len in [0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 100, 1001, 1460, 65_535] {
            let d = &data[..len];
            let mut acc: u32 = 0;
            for pair in d.chunks(2) {
                let w = if pair.len() == 2 { u16::from_be_bytes([pair[0], pair[1]]) } else { (pair[0] as u16) << 8 };
                acc += w as u32;
                acc = (acc & 0xffff) + (acc >> 16);
            }
            assert_eq!(sum(d), acc as u16, "len {len}");
        }
    }

    #[test]
    fn pseudo_header_is_the_sum_of_its_twelve_bytes() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let (src, dst) = (Ipv4Addr::from(x as u32), Ipv4Addr::from((x >> 32) as u32));
            let (protocol, length) = ((x >> 8) as u8, (x >> 40) as u32 & 0x1_ffff);
            let mut b = [0u8; 12];
            b[0..4].copy_from_slice(&src.octets());
            b[4..8].copy_from_slice(&dst.octets());
            b[9] = protocol;
            b[10..12].copy_from_slice(&(length as u16).to_be_bytes());
            assert_eq!(pseudo_header(src, dst, protocol, length), sum(&b), "{src} {dst} {protocol} {length}");
        }
        let zero = Ipv4Addr::UNSPECIFIED;
        assert_eq!(pseudo_header(zero, zero, 0, 0), sum(&[0u8; 12]));
    }

    #[test]
    fn checksum_then_verify() {
        let mut data = vec![0x45u8, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        let c = checksum(0, &data);
        data[10..12].copy_from_slice(&c.to_be_bytes());
        assert!(verify(0, &data));
        data[3] ^= 1;
        assert!(!verify(0, &data));
    }
}
