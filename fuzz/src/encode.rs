//! Writes a [`Conversation`] as the bytes `arbitrary` reads it from, so the
//! seed corpus can be made from readable values. The format is the one of
//! `arbitrary` 1.x (`Arbitrary::arbitrary`, not `arbitrary_take_rest`):
//! integers little-endian, `bool` a byte whose low bit is the value,
//! `Option` a `bool` then the value, a `Vec` each element after a `true`
//! byte and then a `false` byte, an enum a `u32` whose position in
//! `0..2^32` picks the variant. [`roundtrip`] proves the two agree; the
//! seed generator refuses to write a seed that does not.

use crate::conversation::*;
use arbitrary::{Arbitrary, Unstructured};

pub trait Encode {
    fn encode(&self, out: &mut Vec<u8>);
}

macro_rules! ints {
    ($($t:ty),*) => {$(
        impl Encode for $t {
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}
ints!(u8, u16, u32, i16, i32);

impl Encode for bool {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(*self as u8);
    }
}

impl<T: Encode> Encode for Option<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        self.is_some().encode(out);
        if let Some(v) = self {
            v.encode(out);
        }
    }
}

impl<T: Encode> Encode for Vec<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        for v in self {
            true.encode(out);
            v.encode(out);
        }
        false.encode(out);
    }
}

/// The variant tag: the smallest `u32` that `(tag * count) >> 32` maps to
/// `index`.
fn tag(out: &mut Vec<u8>, index: u32, count: u32) {
    let v = ((index as u64) << 32).div_ceil(count as u64) as u32;
    out.extend_from_slice(&v.to_le_bytes());
}

impl Encode for Conversation {
    fn encode(&self, out: &mut Vec<u8>) {
        self.active.encode(out);
        self.setup.encode(out);
        self.peer_isn.encode(out);
        self.ops.encode(out);
    }
}

impl Encode for Setup {
    fn encode(&self, out: &mut Vec<u8>) {
        for b in [
            self.sack,
            self.timestamps,
            self.window_scaling,
            self.nagle,
            self.delayed_ack,
            self.small_buffers,
            self.newreno,
            self.pacing,
        ] {
            b.encode(out);
        }
        self.mtu.encode(out);
    }
}

impl Encode for Mtu {
    fn encode(&self, out: &mut Vec<u8>) {
        let i = match self {
            Mtu::Ethernet => 0,
            Mtu::Small => 1,
            Mtu::Minimum => 2,
        };
        tag(out, i, 3);
    }
}

impl Encode for Op {
    fn encode(&self, out: &mut Vec<u8>) {
        const N: u32 = 13;
        match self {
            Op::Open(o) => {
                tag(out, 0, N);
                o.encode(out);
            }
            Op::Data { len, fin } => {
                tag(out, 1, N);
                len.encode(out);
                fin.encode(out);
            }
            Op::Ack { window, sack } => {
                tag(out, 2, N);
                window.encode(out);
                sack.encode(out);
            }
            Op::Segment(s) => {
                tag(out, 3, N);
                s.encode(out);
            }
            Op::Icmp(i) => {
                tag(out, 4, N);
                i.encode(out);
            }
            Op::Wait(w) => {
                tag(out, 5, N);
                w.encode(out);
            }
            Op::Send(n) => {
                tag(out, 6, N);
                n.encode(out);
            }
            Op::Recv(n) => {
                tag(out, 7, N);
                n.encode(out);
            }
            Op::Shutdown(h) => {
                tag(out, 8, N);
                h.encode(out);
            }
            Op::Close => tag(out, 9, N),
            Op::Abort => tag(out, 10, N),
            Op::Accept => tag(out, 11, N),
            Op::SetOption(o) => {
                tag(out, 12, N);
                o.encode(out);
            }
        }
    }
}

impl Encode for SynOptions {
    fn encode(&self, out: &mut Vec<u8>) {
        self.mss.encode(out);
        self.window_scale.encode(out);
        self.sack_permitted.encode(out);
        self.timestamps.encode(out);
        self.window.encode(out);
    }
}

impl Encode for SackBlock {
    fn encode(&self, out: &mut Vec<u8>) {
        self.start.encode(out);
        self.len.encode(out);
    }
}

impl Encode for SegmentSpec {
    fn encode(&self, out: &mut Vec<u8>) {
        self.flags.encode(out);
        self.seq.encode(out);
        self.ack.encode(out);
        self.window.encode(out);
        self.syn_options.encode(out);
        self.timestamps.encode(out);
        self.sack.encode(out);
        self.len.encode(out);
        self.urgent.encode(out);
    }
}

impl Encode for SeqSpec {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            SeqSpec::Next(d) => {
                tag(out, 0, 3);
                d.encode(out);
            }
            SeqSpec::Isn(d) => {
                tag(out, 1, 3);
                d.encode(out);
            }
            SeqSpec::Raw(v) => {
                tag(out, 2, 3);
                v.encode(out);
            }
        }
    }
}

impl Encode for AckSpec {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            AckSpec::Next(d) => {
                tag(out, 0, 4);
                d.encode(out);
            }
            AckSpec::Iss(d) => {
                tag(out, 1, 4);
                d.encode(out);
            }
            AckSpec::Last(d) => {
                tag(out, 2, 4);
                d.encode(out);
            }
            AckSpec::Raw(v) => {
                tag(out, 3, 4);
                v.encode(out);
            }
        }
    }
}

impl Encode for TsSpec {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            TsSpec::None => tag(out, 0, 4),
            TsSpec::Good => tag(out, 1, 4),
            TsSpec::Stale(d) => {
                tag(out, 2, 4);
                d.encode(out);
            }
            TsSpec::Raw(a, b) => {
                tag(out, 3, 4);
                a.encode(out);
                b.encode(out);
            }
        }
    }
}

impl Encode for IcmpSpec {
    fn encode(&self, out: &mut Vec<u8>) {
        self.kind.encode(out);
        self.seq.encode(out);
    }
}

impl Encode for IcmpKind {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            IcmpKind::FragNeeded(m) => {
                tag(out, 0, 6);
                m.encode(out);
            }
            IcmpKind::PortUnreachable => tag(out, 1, 6),
            IcmpKind::HostUnreachable => tag(out, 2, 6),
            IcmpKind::NetUnreachable => tag(out, 3, 6),
            IcmpKind::Prohibited => tag(out, 4, 6),
            IcmpKind::TtlExceeded => tag(out, 5, 6),
        }
    }
}

impl Encode for Wait {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Wait::Millis(v) => {
                tag(out, 0, 3);
                v.encode(out);
            }
            Wait::Seconds(v) => {
                tag(out, 1, 3);
                v.encode(out);
            }
            Wait::NextTimer => tag(out, 2, 3),
        }
    }
}

impl Encode for How {
    fn encode(&self, out: &mut Vec<u8>) {
        let i = match self {
            How::Read => 0,
            How::Write => 1,
            How::Both => 2,
        };
        tag(out, i, 3);
    }
}

impl Encode for Opt {
    fn encode(&self, out: &mut Vec<u8>) {
        const N: u32 = 11;
        match self {
            Opt::RecvBuffer(v) => {
                tag(out, 0, N);
                v.encode(out);
            }
            Opt::SendBuffer(v) => {
                tag(out, 1, N);
                v.encode(out);
            }
            Opt::NoDelay(v) => {
                tag(out, 2, N);
                v.encode(out);
            }
            Opt::KeepAlive(v) => {
                tag(out, 3, N);
                v.encode(out);
            }
            Opt::KeepIdle(v) => {
                tag(out, 4, N);
                v.encode(out);
            }
            Opt::KeepInterval(v) => {
                tag(out, 5, N);
                v.encode(out);
            }
            Opt::KeepCount(v) => {
                tag(out, 6, N);
                v.encode(out);
            }
            Opt::UserTimeout(v) => {
                tag(out, 7, N);
                v.encode(out);
            }
            Opt::LingerZero => tag(out, 8, N),
            Opt::NewReno(v) => {
                tag(out, 9, N);
                v.encode(out);
            }
            Opt::MaxSegment(v) => {
                tag(out, 10, N);
                v.encode(out);
            }
        }
    }
}

/// The conversation as bytes, or `None` if `arbitrary` would not read
/// those bytes back as the same conversation.
pub fn roundtrip(conv: &Conversation) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    conv.encode(&mut bytes);
    let back = Conversation::arbitrary(&mut Unstructured::new(&bytes)).ok()?;
    (back == *conv).then_some(bytes)
}
