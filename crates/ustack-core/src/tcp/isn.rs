//! Initial sequence numbers per RFC 6528 §3:
//! `ISN = M + F(localip, localport, remoteip, remoteport, secretkey)`,
//! where M is a timer ticking every 4 microseconds and F a keyed hash,
//! here SipHash-2-4 (a pseudo-random function, as §3 asks). The secret key
//! comes from the caller's random source when the stack is created.

use crate::time::Instant;
use std::net::SocketAddrV4;

/// SipHash-2-4 with a 128-bit key (Aumasson and Bernstein, 2012).
#[derive(Clone, Copy)]
pub struct SipHasher24 {
    k0: u64,
    k1: u64,
}

impl SipHasher24 {
    pub fn new(key: [u8; 16]) -> Self {
        let (a, b) = key.split_at(8);
        SipHasher24 { k0: u64::from_le_bytes(a.try_into().unwrap()), k1: u64::from_le_bytes(b.try_into().unwrap()) }
    }

    pub fn hash(&self, data: &[u8]) -> u64 {
        let mut v = [
            self.k0 ^ 0x736f_6d65_7073_6575,
            self.k1 ^ 0x646f_7261_6e64_6f6d,
            self.k0 ^ 0x6c79_6765_6e65_7261,
            self.k1 ^ 0x7465_6462_7974_6573,
        ];
        let mut chunks = data.chunks_exact(8);
        for c in &mut chunks {
            let m = u64::from_le_bytes(c.try_into().unwrap());
            v[3] ^= m;
            sip_round(&mut v);
            sip_round(&mut v);
            v[0] ^= m;
        }
        let rest = chunks.remainder();
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        last[7] = data.len() as u8;
        let m = u64::from_le_bytes(last);
        v[3] ^= m;
        sip_round(&mut v);
        sip_round(&mut v);
        v[0] ^= m;
        v[2] ^= 0xff;
        for _ in 0..4 {
            sip_round(&mut v);
        }
        v[0] ^ v[1] ^ v[2] ^ v[3]
    }
}

fn sip_round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13);
    v[1] ^= v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16);
    v[3] ^= v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21);
    v[3] ^= v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17);
    v[1] ^= v[2];
    v[2] = v[2].rotate_left(32);
}

/// The 12 bytes that name a connection, in a fixed order.
pub fn tuple_bytes(local: SocketAddrV4, remote: SocketAddrV4) -> [u8; 12] {
    let mut b = [0u8; 12];
    b[0..4].copy_from_slice(&local.ip().octets());
    b[4..6].copy_from_slice(&local.port().to_be_bytes());
    b[6..10].copy_from_slice(&remote.ip().octets());
    b[10..12].copy_from_slice(&remote.port().to_be_bytes());
    b
}

/// Generates ISNs for a stack.
#[derive(Clone)]
pub struct IsnGenerator {
    hasher: SipHasher24,
}

impl IsnGenerator {
    pub fn new(key: [u8; 16]) -> Self {
        IsnGenerator { hasher: SipHasher24::new(key) }
    }

    /// RFC 6528 §3: the 4-microsecond clock plus the keyed hash of the
    /// connection's 4-tuple.
    pub fn isn(&self, now: Instant, local: SocketAddrV4, remote: SocketAddrV4) -> u32 {
        let m = (now.as_micros() / 4) as u32;
        let f = self.hasher.hash(&tuple_bytes(local, remote)) as u32;
        m.wrapping_add(f)
    }

    /// The offset of a connection's timestamp clock: RFC 7323 §7.1 asks
    /// for a per-connection offset made like the RFC 6528 ISN, "the same
    /// function with a different secret key"; here the same key with the
    /// input marked as a timestamp's. As a function of the 4-tuple, a new
    /// incarnation of a connection continues its predecessor's timestamps,
    /// which a peer's TIME-WAIT needs in order to accept its SYN (RFC 6191
    /// §2) and PAWS needs to accept its segments (RFC 7323 §5).
    pub fn ts_offset(&self, local: SocketAddrV4, remote: SocketAddrV4) -> u32 {
        let mut b = [0u8; 13];
        b[..12].copy_from_slice(&tuple_bytes(local, remote));
        b[12] = b'T';
        self.hasher.hash(&b) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference vector of the SipHash paper, Appendix A: key 00..0f,
    /// message 00..0e (15 bytes).
    #[test]
    fn siphash_reference_vector() {
        let key: [u8; 16] = core::array::from_fn(|i| i as u8);
        let msg: Vec<u8> = (0..15).collect();
        assert_eq!(SipHasher24::new(key).hash(&msg), 0xa129_ca61_49be_45e5);
        // Empty message, from the reference implementation's vectors.
        assert_eq!(SipHasher24::new(key).hash(&[]), 0x726f_db47_dd0e_0e31);
    }

    #[test]
    fn isn_depends_on_tuple_key_and_clock() {
        let a: SocketAddrV4 = "10.0.0.1:50784".parse().unwrap();
        let b: SocketAddrV4 = "10.0.0.2:12345".parse().unwrap();
        let c: SocketAddrV4 = "10.0.0.2:12346".parse().unwrap();
        let g = IsnGenerator::new([7; 16]);
        let t = Instant::from_secs(1);
        assert_ne!(g.isn(t, a, b), g.isn(t, a, c));
        assert_ne!(g.isn(t, a, b), IsnGenerator::new([8; 16]).isn(t, a, b));
        // The clock advances the ISN by one every 4 µs.
        assert_eq!(g.isn(t + core::time::Duration::from_micros(400), a, b), g.isn(t, a, b).wrapping_add(100));
    }

    #[test]
    fn ts_offset_is_per_tuple_and_unlike_the_isn() {
        let a: SocketAddrV4 = "10.0.0.1:50784".parse().unwrap();
        let b: SocketAddrV4 = "10.0.0.2:12345".parse().unwrap();
        let c: SocketAddrV4 = "10.0.0.2:12346".parse().unwrap();
        let g = IsnGenerator::new([7; 16]);
        assert_eq!(g.ts_offset(a, b), g.ts_offset(a, b), "the same for every incarnation");
        assert_ne!(g.ts_offset(a, b), g.ts_offset(a, c));
        assert_ne!(g.ts_offset(a, b), g.isn(Instant::ZERO, a, b));
        assert_ne!(g.ts_offset(a, b), IsnGenerator::new([8; 16]).ts_offset(a, b));
    }
}
