//! The MD5 message digest (RFC 1321), for TCP MD5 signatures (RFC 2385).
//!
//! MD5 is broken as a general-purpose hash; RFC 2385 still uses it, and
//! peers (BGP routers, Linux's TCP_MD5SIG) still speak it. Written from
//! the RFC's description: a 128-bit state of four words, a 512-bit block
//! function of four rounds of sixteen steps, little-endian throughout.

/// Bytes in a digest.
pub const DIGEST_LEN: usize = 16;

/// An MD5 computation in progress: feed it with [`Md5::update`], read the
/// digest with [`Md5::finish`].
#[derive(Clone, Debug)]
pub struct Md5 {
    state: [u32; 4],
    /// Bytes not yet making a whole 64-byte block.
    pending: [u8; 64],
    pending_len: usize,
    /// Message length so far, in bytes.
    total: u64,
}

impl Default for Md5 {
    fn default() -> Self {
        Self::new()
    }
}

/// Per-step left rotations, by round (RFC 1321 §3.4: S11..S44).
const SHIFTS: [[u32; 4]; 4] = [[7, 12, 17, 22], [5, 9, 14, 20], [4, 11, 16, 23], [6, 10, 15, 21]];

/// T[i] = floor(2^32 * |sin(i + 1)|) (RFC 1321 §3.4), for steps 0..64.
const SINES: [u32; 64] = [
    0xd76a_a478,
    0xe8c7_b756,
    0x2420_70db,
    0xc1bd_ceee,
    0xf57c_0faf,
    0x4787_c62a,
    0xa830_4613,
    0xfd46_9501,
    0x6980_98d8,
    0x8b44_f7af,
    0xffff_5bb1,
    0x895c_d7be,
    0x6b90_1122,
    0xfd98_7193,
    0xa679_438e,
    0x49b4_0821,
    0xf61e_2562,
    0xc040_b340,
    0x265e_5a51,
    0xe9b6_c7aa,
    0xd62f_105d,
    0x0244_1453,
    0xd8a1_e681,
    0xe7d3_fbc8,
    0x21e1_cde6,
    0xc337_07d6,
    0xf4d5_0d87,
    0x455a_14ed,
    0xa9e3_e905,
    0xfcef_a3f8,
    0x676f_02d9,
    0x8d2a_4c8a,
    0xfffa_3942,
    0x8771_f681,
    0x6d9d_6122,
    0xfde5_380c,
    0xa4be_ea44,
    0x4bde_cfa9,
    0xf6bb_4b60,
    0xbebf_bc70,
    0x289b_7ec6,
    0xeaa1_27fa,
    0xd4ef_3085,
    0x0488_1d05,
    0xd9d4_d039,
    0xe6db_99e5,
    0x1fa2_7cf8,
    0xc4ac_5665,
    0xf429_2244,
    0x432a_ff97,
    0xab94_23a7,
    0xfc93_a039,
    0x655b_59c3,
    0x8f0c_cc92,
    0xffef_f47d,
    0x8584_5dd1,
    0x6fa8_7e4f,
    0xfe2c_e6e0,
    0xa301_4314,
    0x4e08_11a1,
    0xf753_7e82,
    0xbd3a_f235,
    0x2ad7_d2bb,
    0xeb86_d391,
];

impl Md5 {
    pub fn new() -> Self {
        // RFC 1321 §3.3: words A, B, C, D, low-order byte first.
        Md5 { state: [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476], pending: [0; 64], pending_len: 0, total: 0 }
    }

    /// The digest of `data` in one call.
    pub fn digest(data: &[u8]) -> [u8; DIGEST_LEN] {
        let mut m = Md5::new();
        m.update(data);
        m.finish()
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.total = self.total.wrapping_add(data.len() as u64);
        if self.pending_len > 0 {
            let take = (64 - self.pending_len).min(data.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&data[..take]);
            self.pending_len += take;
            data = &data[take..];
            if self.pending_len < 64 {
                return;
            }
            let block = self.pending;
            self.compress(&block);
            self.pending_len = 0;
        }
        let mut blocks = data.chunks_exact(64);
        for block in &mut blocks {
            self.compress(block.try_into().expect("64-byte chunk"));
        }
        let rest = blocks.remainder();
        self.pending[..rest.len()].copy_from_slice(rest);
        self.pending_len = rest.len();
    }

    /// Pads the message (RFC 1321 §3.1-3.2: a 1 bit, zeros to 56 mod 64
    /// bytes, the bit length as 64 bits little-endian) and returns the
    /// digest, A B C D each low byte first (§3.5).
    pub fn finish(mut self) -> [u8; DIGEST_LEN] {
        let bits = self.total.wrapping_mul(8);
        let pad_len = if self.pending_len < 56 { 56 - self.pending_len } else { 120 - self.pending_len };
        let mut pad = [0u8; 72];
        pad[0] = 0x80;
        pad[pad_len..pad_len + 8].copy_from_slice(&bits.to_le_bytes());
        // `update` counts these bytes into `total`, which no longer matters.
        self.update(&pad[..pad_len + 8]);
        debug_assert_eq!(self.pending_len, 0);
        let mut out = [0u8; DIGEST_LEN];
        for (i, w) in self.state.iter().enumerate() {
            out[4 * i..4 * i + 4].copy_from_slice(&w.to_le_bytes());
        }
        out
    }

    /// One 64-byte block through the four rounds (RFC 1321 §3.4).
    fn compress(&mut self, block: &[u8; 64]) {
        let mut x = [0u32; 16];
        for (i, w) in x.iter_mut().enumerate() {
            *w = u32::from_le_bytes([block[4 * i], block[4 * i + 1], block[4 * i + 2], block[4 * i + 3]]);
        }
        let [mut a, mut b, mut c, mut d] = self.state;
        for i in 0..64 {
            let round = i / 16;
            // The round's function and the order it reads the words in.
            let (f, k) = match round {
                0 => ((b & c) | (!b & d), i),
                1 => ((b & d) | (c & !d), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let sum = a.wrapping_add(f).wrapping_add(x[k]).wrapping_add(SINES[i]);
            let next = b.wrapping_add(sum.rotate_left(SHIFTS[round][i % 4]));
            // The registers turn: a <- d <- c <- b <- next.
            a = d;
            d = c;
            c = b;
            b = next;
        }
        self.state[0] = self.state[0].wrapping_add(a);
        self.state[1] = self.state[1].wrapping_add(b);
        self.state[2] = self.state[2].wrapping_add(c);
        self.state[3] = self.state[3].wrapping_add(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(d: [u8; 16]) -> String {
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The test suite of RFC 1321 appendix A.5.
    #[test]
    fn rfc1321_test_suite() {
        let cases: [(&str, &str); 7] = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            ("abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"),
            ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "d174ab98d277d9f5a5611c2c9f419d9f"),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(hex(Md5::digest(input.as_bytes())), want, "MD5({input:?})");
        }
    }

    #[test]
    fn split_updates_give_the_same_digest() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        let whole = Md5::digest(&data);
        for cut in [0, 1, 55, 56, 63, 64, 65, 128, 200, 300] {
            let mut m = Md5::new();
            m.update(&data[..cut]);
            m.update(&data[cut..]);
            assert_eq!(m.finish(), whole, "cut at {cut}");
        }
        // Byte by byte across the padding boundaries.
        for len in [55usize, 56, 57, 63, 64, 119, 120] {
            let mut m = Md5::new();
            for b in &data[..len] {
                m.update(core::slice::from_ref(b));
            }
            assert_eq!(m.finish(), Md5::digest(&data[..len]), "length {len}");
        }
    }
}
