//! TCP header and options (RFC 9293 §3.1, RFC 7323, RFC 2018, RFC 3168,
//! RFC 2385).

use super::{Error, Result, checksum, get_u16, get_u32, put_u16, put_u32};
use core::fmt;
use std::net::Ipv4Addr;

/// Length of a TCP header without options.
pub const HEADER_LEN: usize = 20;
/// Largest header: data offset 15 words.
pub const MAX_HEADER_LEN: usize = 60;
/// Most SACK blocks one segment can carry (4 without timestamps, 3 with).
pub const MAX_SACK_BLOCKS: usize = 4;

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const SEQ: usize = 4;
    pub const ACK: usize = 8;
    pub const OFFSET_FLAGS: usize = 12;
    pub const WINDOW: usize = 14;
    pub const CHECKSUM: usize = 16;
    pub const URGENT: usize = 18;
}

/// The control bits of a TCP header, including ECE/CWR (RFC 3168).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags(u8);

impl TcpFlags {
    pub const FIN: TcpFlags = TcpFlags(0x01);
    pub const SYN: TcpFlags = TcpFlags(0x02);
    pub const RST: TcpFlags = TcpFlags(0x04);
    pub const PSH: TcpFlags = TcpFlags(0x08);
    pub const ACK: TcpFlags = TcpFlags(0x10);
    pub const URG: TcpFlags = TcpFlags(0x20);
    pub const ECE: TcpFlags = TcpFlags(0x40);
    pub const CWR: TcpFlags = TcpFlags(0x80);
    pub const NONE: TcpFlags = TcpFlags(0);

    pub const fn from_bits(bits: u8) -> Self {
        TcpFlags(bits)
    }
    pub const fn bits(self) -> u8 {
        self.0
    }
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }
    pub const fn intersects(self, other: TcpFlags) -> bool {
        self.0 & other.0 != 0
    }
    pub const fn union(self, other: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | other.0)
    }
    pub fn fin(self) -> bool {
        self.contains(Self::FIN)
    }
    pub fn syn(self) -> bool {
        self.contains(Self::SYN)
    }
    pub fn rst(self) -> bool {
        self.contains(Self::RST)
    }
    pub fn psh(self) -> bool {
        self.contains(Self::PSH)
    }
    pub fn ack(self) -> bool {
        self.contains(Self::ACK)
    }
    pub fn urg(self) -> bool {
        self.contains(Self::URG)
    }
}

impl core::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        self.union(rhs)
    }
}

impl core::ops::BitOrAssign for TcpFlags {
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        self.0 |= rhs.0;
    }
}

impl fmt::Display for TcpFlags {
    /// Names joined by `-`, in the order people say them: `SYN-ACK`,
    /// `FIN-ACK`, `PSH-ACK`, `RST`. No flags at all prints `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const ORDER: [(TcpFlags, &str); 8] = [
            (TcpFlags::SYN, "SYN"),
            (TcpFlags::FIN, "FIN"),
            (TcpFlags::RST, "RST"),
            (TcpFlags::PSH, "PSH"),
            (TcpFlags::URG, "URG"),
            (TcpFlags::ECE, "ECE"),
            (TcpFlags::CWR, "CWR"),
            (TcpFlags::ACK, "ACK"),
        ];
        let mut first = true;
        for (flag, name) in ORDER {
            if self.contains(flag) {
                if !first {
                    f.write_str("-")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Up to four SACK blocks, `(left, right)` edges as on the wire.
#[derive(Clone, Copy, Default, Debug)]
pub struct SackBlocks {
    len: u8,
    blocks: [(u32, u32); MAX_SACK_BLOCKS],
}

/// Equal when the blocks in use are equal; unused places do not count.
impl PartialEq for SackBlocks {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for SackBlocks {}

impl SackBlocks {
    pub fn new() -> Self {
        Self::default()
    }
    /// Appends a block; returns false when all four places are taken.
    pub fn push(&mut self, left: u32, right: u32) -> bool {
        if (self.len as usize) < MAX_SACK_BLOCKS {
            self.blocks[self.len as usize] = (left, right);
            self.len += 1;
            true
        } else {
            false
        }
    }
    pub fn as_slice(&self) -> &[(u32, u32)] {
        &self.blocks[..self.len as usize]
    }
    pub fn len(&self) -> usize {
        self.len as usize
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn truncate(&mut self, n: usize) {
        self.len = self.len.min(n as u8);
    }
}

/// The TCP Fast Open option's cookie (kind 34, RFC 7413 §4.1.1): empty in
/// a client's request for one, else 4 to 16 bytes, an even number.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct FastOpenCookie {
    len: u8,
    bytes: [u8; FastOpenCookie::MAX],
}

impl FastOpenCookie {
    pub const MIN: usize = 4;
    pub const MAX: usize = 16;
    /// The empty cookie: a request for one.
    pub const REQUEST: FastOpenCookie = FastOpenCookie { len: 0, bytes: [0; Self::MAX] };

    /// A cookie of these bytes, if their number is one RFC 7413 allows.
    pub fn new(bytes: &[u8]) -> Option<FastOpenCookie> {
        if !(Self::MIN..=Self::MAX).contains(&bytes.len()) || !bytes.len().is_multiple_of(2) {
            return None;
        }
        let mut c = FastOpenCookie { len: bytes.len() as u8, bytes: [0; Self::MAX] };
        c.bytes[..bytes.len()].copy_from_slice(bytes);
        Some(c)
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
    pub fn is_request(&self) -> bool {
        self.len == 0
    }
}

/// The TCP options ustack understands. Unknown options are skipped by their
/// length on input and never emitted.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct TcpOptions {
    /// Maximum segment size (kind 2, SYN only; RFC 9293 §3.7.1).
    pub mss: Option<u16>,
    /// Window scale shift (kind 3, SYN only; RFC 7323 §2).
    pub window_scale: Option<u8>,
    /// SACK permitted (kind 4, SYN only; RFC 2018).
    pub sack_permitted: bool,
    /// SACK blocks (kind 5; RFC 2018).
    pub sack_blocks: SackBlocks,
    /// Timestamps `(TSval, TSecr)` (kind 8; RFC 7323 §3).
    pub timestamps: Option<(u32, u32)>,
    /// An MD5 signature option (kind 19, length 18; RFC 2385 §3.0). On
    /// input: the segment carries one (its digest is read from the packet,
    /// see [`md5_digest_at`]). On output: room is made for one, first in
    /// the options as Linux places it, and the digest is written by
    /// [`sign_md5`] once the segment is complete.
    pub md5: bool,
    /// TCP Fast Open (kind 34, RFC 7413): a cookie, or a request for one.
    /// On input, one of a length RFC 7413 does not allow is ignored, as
    /// Linux does.
    pub fast_open: Option<FastOpenCookie>,
}

mod kind {
    pub const EOL: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WINDOW_SCALE: u8 = 3;
    pub const SACK_PERMITTED: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TIMESTAMPS: u8 = 8;
    pub const MD5: u8 = 19;
    pub const FAST_OPEN: u8 = 34;
}

/// Length of the MD5 signature option (RFC 2385 §3.0): kind, length and a
/// 16-byte digest.
pub const MD5_OPTION_LEN: usize = 18;
/// The option with the two NOPs that align what follows it to a word.
pub const MD5_OPTION_SPACE: usize = 20;

impl TcpOptions {
    /// Parses an options area. A known option with a wrong length is
    /// malformed; an unknown one is skipped by its length; a length that
    /// runs past the area or is below 2 is malformed (RFC 9293 §3.1: "a TCP
    /// implementation MUST be able to handle an illegal option length
    /// without crashing", and we drop such segments).
    pub fn parse(mut data: &[u8]) -> Result<TcpOptions> {
        let mut opts = TcpOptions::default();
        // Nearly every segment of a connection with timestamps carries
        // exactly NOP, NOP, TS (the layout of RFC 7323 appendix A, which
        // Linux and ustack send): read it without the loop.
        if data.len() == 12 && data[..4] == [kind::NOP, kind::NOP, kind::TIMESTAMPS, 10] {
            opts.timestamps = Some((get_u32(data, 4), get_u32(data, 8)));
            return Ok(opts);
        }
        while let Some(&k) = data.first() {
            match k {
                kind::EOL => break,
                kind::NOP => {
                    data = &data[1..];
                    continue;
                }
                _ => {}
            }
            let len = *data.get(1).ok_or(Error::Malformed)? as usize;
            if len < 2 || len > data.len() {
                return Err(Error::Malformed);
            }
            let body = &data[2..len];
            match k {
                kind::MSS => {
                    if len != 4 {
                        return Err(Error::Malformed);
                    }
                    opts.mss = Some(get_u16(body, 0));
                }
                kind::WINDOW_SCALE => {
                    if len != 3 {
                        return Err(Error::Malformed);
                    }
                    opts.window_scale = Some(body[0]);
                }
                kind::SACK_PERMITTED => {
                    if len != 2 {
                        return Err(Error::Malformed);
                    }
                    opts.sack_permitted = true;
                }
                kind::SACK => {
                    if body.is_empty() || !body.len().is_multiple_of(8) || body.len() / 8 > MAX_SACK_BLOCKS {
                        return Err(Error::Malformed);
                    }
                    for b in body.chunks_exact(8) {
                        opts.sack_blocks.push(get_u32(b, 0), get_u32(b, 4));
                    }
                }
                kind::TIMESTAMPS => {
                    if len != 10 {
                        return Err(Error::Malformed);
                    }
                    opts.timestamps = Some((get_u32(body, 0), get_u32(body, 4)));
                }
                // Of two signatures, one would be checked and the other
                // ignored: such a segment is malformed.
                kind::MD5 => {
                    if len != MD5_OPTION_LEN || opts.md5 {
                        return Err(Error::Malformed);
                    }
                    opts.md5 = true;
                }
                kind::FAST_OPEN if body.is_empty() => opts.fast_open = Some(FastOpenCookie::REQUEST),
                kind::FAST_OPEN => opts.fast_open = FastOpenCookie::new(body),
                _ => {}
            }
            data = &data[len..];
        }
        Ok(opts)
    }

    /// Bytes `emit` writes, a multiple of four and at most 40: SACK blocks
    /// that would not fit are left out (RFC 2018 §3).
    pub fn buffer_len(&self) -> usize {
        let n = self.fixed_len();
        // No SACK option at all when no block fits (a signature and
        // timestamps leave 8 bytes, less than one block takes).
        match self.sack_blocks_that_fit(n) {
            0 => n,
            blocks => n + 4 + 8 * blocks,
        }
    }

    /// These options as `emit` writes them: without the SACK blocks that
    /// do not fit in the 40 bytes of option space.
    pub fn fitted(&self) -> TcpOptions {
        let mut o = *self;
        if self.fast_open_space(self.fixed_len_before_fast_open()) == 0 {
            o.fast_open = None;
        }
        o.sack_blocks.truncate(self.sack_blocks_that_fit(self.fixed_len()));
        o
    }

    /// How many SACK blocks fit after `fixed` bytes of other options.
    fn sack_blocks_that_fit(&self, fixed: usize) -> usize {
        let room = MAX_HEADER_LEN - HEADER_LEN - fixed;
        if room < 12 { 0 } else { self.sack_blocks.len().min((room - 4) / 8) }
    }

    fn fixed_len(&self) -> usize {
        let n = self.fixed_len_before_fast_open();
        n + self.fast_open_space(n)
    }

    /// The options written before the Fast Open one.
    fn fixed_len_before_fast_open(&self) -> usize {
        let mut n = if self.md5 { MD5_OPTION_SPACE } else { 0 };
        if self.mss.is_some() {
            n += 4;
        }
        // SACK-permitted and timestamps share a word-aligned block:
        // `sackOK, TS` (12 bytes) or `nop, nop, TS` or `nop, nop, sackOK`.
        match (self.sack_permitted, self.timestamps.is_some()) {
            (true, true) => n += 12,
            (false, true) => n += 12,
            (true, false) => n += 4,
            (false, false) => {}
        }
        if self.window_scale.is_some() {
            n += 4;
        }
        n
    }

    /// Room the Fast Open option takes after `fixed` bytes of others: its
    /// length rounded up to whole words with NOPs in front, or nothing when
    /// it would not fit in the 40 bytes (beside a signature, say).
    fn fast_open_space(&self, fixed: usize) -> usize {
        let Some(c) = &self.fast_open else { return 0 };
        let space = (2 + c.as_bytes().len()).next_multiple_of(4);
        if fixed + space <= MAX_HEADER_LEN - HEADER_LEN { space } else { 0 }
    }

    /// Writes the options in the layout Linux uses, which every stack
    /// accepts: `mss, sackOK, TS, nop, wscale` on a SYN; `nop, nop, TS` and
    /// `nop, nop, sack` on other segments; `nop, nop, md5` before all of
    /// them (its digest zero until [`sign_md5`]). `out` must hold
    /// `buffer_len()`.
    pub fn emit(&self, out: &mut [u8]) -> usize {
        let mut at = 0;
        if self.md5 {
            out[..4].copy_from_slice(&[kind::NOP, kind::NOP, kind::MD5, MD5_OPTION_LEN as u8]);
            out[4..MD5_OPTION_SPACE].fill(0);
            at = MD5_OPTION_SPACE;
        }
        if let Some(mss) = self.mss {
            out[at] = kind::MSS;
            out[at + 1] = 4;
            put_u16(out, at + 2, mss);
            at += 4;
        }
        match (self.sack_permitted, self.timestamps) {
            (true, Some(ts)) => {
                out[at] = kind::SACK_PERMITTED;
                out[at + 1] = 2;
                at += 2;
                at += emit_timestamps(&mut out[at..], ts);
            }
            (false, Some(ts)) => {
                out[at] = kind::NOP;
                out[at + 1] = kind::NOP;
                at += 2;
                at += emit_timestamps(&mut out[at..], ts);
            }
            (true, None) => {
                out[at] = kind::NOP;
                out[at + 1] = kind::NOP;
                out[at + 2] = kind::SACK_PERMITTED;
                out[at + 3] = 2;
                at += 4;
            }
            (false, None) => {}
        }
        if let Some(shift) = self.window_scale {
            out[at] = kind::NOP;
            out[at + 1] = kind::WINDOW_SCALE;
            out[at + 2] = 3;
            out[at + 3] = shift;
            at += 4;
        }
        if let Some(c) = &self.fast_open
            && let space = self.fast_open_space(at)
            && space > 0
        {
            let len = 2 + c.as_bytes().len();
            out[at..at + space - len].fill(kind::NOP);
            let o = at + space - len;
            out[o] = kind::FAST_OPEN;
            out[o + 1] = len as u8;
            out[o + 2..o + len].copy_from_slice(c.as_bytes());
            at += space;
        }
        let blocks = self.sack_blocks_that_fit(at);
        if !self.sack_blocks.is_empty() && blocks > 0 {
            out[at] = kind::NOP;
            out[at + 1] = kind::NOP;
            out[at + 2] = kind::SACK;
            out[at + 3] = (2 + 8 * blocks) as u8;
            at += 4;
            for &(l, r) in &self.sack_blocks.as_slice()[..blocks] {
                put_u32(out, at, l);
                put_u32(out, at + 4, r);
                at += 8;
            }
        }
        at
    }
}

/// Where the 16-byte digest of the MD5 signature option sits in `segment`
/// (a whole TCP segment, header first), or None when it carries none or
/// its options are malformed.
pub fn md5_digest_at(segment: &[u8]) -> Option<usize> {
    let packet = TcpPacket::new_checked(segment).ok()?;
    let mut at = HEADER_LEN;
    let end = packet.header_len();
    while at < end {
        match segment[at] {
            kind::EOL => return None,
            kind::NOP => at += 1,
            k => {
                let len = *segment.get(at + 1)? as usize;
                if len < 2 || at + len > end {
                    return None;
                }
                if k == kind::MD5 {
                    return (len == MD5_OPTION_LEN).then_some(at + 2);
                }
                at += len;
            }
        }
    }
    None
}

/// The RFC 2385 §2.0 digest of `segment` (a whole TCP segment) sent from
/// `src` to `dst` with `key`: MD5 over the pseudo-header (source,
/// destination, a zero byte, the protocol, the segment length), the
/// 20-byte header without options and with a zero checksum, the data, and
/// the key. Options (the signature itself among them) are not covered.
pub fn md5_signature(src: Ipv4Addr, dst: Ipv4Addr, segment: &[u8], key: &[u8]) -> [u8; 16] {
    let mut m = crate::md5::Md5::new();
    let mut pseudo = [0u8; 12];
    pseudo[..4].copy_from_slice(&src.octets());
    pseudo[4..8].copy_from_slice(&dst.octets());
    pseudo[9] = 6;
    // A segment longer than 64 KiB cannot be an IPv4 payload.
    put_u16(&mut pseudo, 10, segment.len() as u16);
    m.update(&pseudo);
    // (A segment too short to be one is hashed as far as it goes; callers
    // check it first.)
    let n = segment.len().min(HEADER_LEN);
    let hl = if n < HEADER_LEN { n } else { TcpPacket::new_unchecked(segment).header_len().clamp(n, segment.len()) };
    let mut header = [0u8; HEADER_LEN];
    header[..n].copy_from_slice(&segment[..n]);
    put_u16(&mut header, field::CHECKSUM, 0);
    m.update(&header);
    m.update(&segment[hl..]);
    m.update(key);
    m.finish()
}

/// Writes the digest into the MD5 option of `segment` (emitted with
/// `TcpOptions::md5`). The checksum is to be filled in afterwards: it
/// covers the digest. Returns false when the segment has no such option.
pub fn sign_md5(src: Ipv4Addr, dst: Ipv4Addr, segment: &mut [u8], key: &[u8]) -> bool {
    let Some(at) = md5_digest_at(segment) else { return false };
    let digest = md5_signature(src, dst, segment, key);
    segment[at..at + 16].copy_from_slice(&digest);
    true
}

/// Emits `repr` as the header of `segment` (its payload already in place
/// after the header), signed with `key` when there is one (RFC 2385 §2.0:
/// the digest first, then the checksum, which covers it), and with the
/// checksum filled in when `fill_checksum`.
#[inline]
pub fn emit_signed(
    repr: &TcpRepr,
    segment: &mut [u8],
    (src, dst): (Ipv4Addr, Ipv4Addr),
    key: Option<&[u8]>,
    fill_checksum: bool,
) {
    let addrs = fill_checksum.then_some((src, dst));
    let Some(key) = key else {
        repr.emit(&mut TcpPacket::new_unchecked(&mut *segment), addrs);
        return;
    };
    repr.emit(&mut TcpPacket::new_unchecked(&mut *segment), None);
    sign_md5(src, dst, segment, key);
    if fill_checksum {
        TcpPacket::new_unchecked(segment).fill_checksum(src, dst);
    }
}

/// Whether `segment` carries an MD5 option whose digest is right for
/// `key` (RFC 2385 §3.0). The comparison takes the same time wherever the
/// digests differ.
pub fn verify_md5(src: Ipv4Addr, dst: Ipv4Addr, segment: &[u8], key: &[u8]) -> bool {
    let Some(at) = md5_digest_at(segment) else { return false };
    let want = md5_signature(src, dst, segment, key);
    want.iter().zip(&segment[at..at + 16]).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

fn emit_timestamps(out: &mut [u8], (val, ecr): (u32, u32)) -> usize {
    out[0] = kind::TIMESTAMPS;
    out[1] = 10;
    put_u32(out, 2, val);
    put_u32(out, 6, ecr);
    10
}

/// A zero-copy view of a TCP segment (header, options, payload).
#[derive(Clone, Copy, Debug)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    /// Checks that the buffer holds the fixed header and that the data
    /// offset is at least 5 words and within the buffer.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hl = self.header_len();
        if hl < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if hl > len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn src_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::SRC_PORT)
    }
    pub fn dst_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::DST_PORT)
    }
    pub fn seq_number(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::SEQ)
    }
    pub fn ack_number(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::ACK)
    }
    /// Header length in bytes from the data offset field.
    pub fn header_len(&self) -> usize {
        ((self.buffer.as_ref()[field::OFFSET_FLAGS] >> 4) as usize) * 4
    }
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[field::OFFSET_FLAGS + 1])
    }
    pub fn window_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::WINDOW)
    }
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }
    pub fn urgent_at(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::URGENT)
    }
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
    /// Length of the segment in sequence space: payload plus SYN and FIN.
    pub fn segment_len(&self) -> usize {
        self.payload().len() + self.flags().syn() as usize + self.flags().fin() as usize
    }

    /// Verifies the checksum over the pseudo-header and the whole segment.
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let data = self.buffer.as_ref();
        checksum::verify(checksum::pseudo_header(src, dst, 6, data.len() as u32), data)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    pub fn set_src_port(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::SRC_PORT, v)
    }
    pub fn set_dst_port(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::DST_PORT, v)
    }
    pub fn set_seq_number(&mut self, v: u32) {
        put_u32(self.buffer.as_mut(), field::SEQ, v)
    }
    pub fn set_ack_number(&mut self, v: u32) {
        put_u32(self.buffer.as_mut(), field::ACK, v)
    }
    /// Sets the data offset from a header length in bytes (multiple of 4).
    pub fn set_header_len(&mut self, len: usize) {
        let b = &mut self.buffer.as_mut()[field::OFFSET_FLAGS];
        *b = ((len / 4) as u8) << 4;
    }
    pub fn set_flags(&mut self, flags: TcpFlags) {
        self.buffer.as_mut()[field::OFFSET_FLAGS + 1] = flags.bits();
    }
    pub fn set_window_len(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::WINDOW, v)
    }
    pub fn set_checksum(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::CHECKSUM, v)
    }
    pub fn set_urgent_at(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::URGENT, v)
    }
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[hl..]
    }
    /// Computes and stores the checksum over the whole buffer.
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let data = self.buffer.as_ref();
        let c = checksum::checksum(checksum::pseudo_header(src, dst, 6, data.len() as u32), data);
        self.set_checksum(c);
    }
}

/// The fields of a TCP header, without the payload.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct TcpRepr {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    /// Meaningful only when `flags` has ACK.
    pub ack: u32,
    pub flags: TcpFlags,
    /// The raw 16-bit window field; scaling is the connection's business.
    pub window: u16,
    pub urgent: u16,
    pub options: TcpOptions,
}

impl TcpRepr {
    /// Parses the header and options of a checked packet. The checksum is
    /// verified when `src`/`dst` are given (pass `None` when a device has
    /// already verified it).
    pub fn parse<T: AsRef<[u8]>>(packet: &TcpPacket<T>, addrs: Option<(Ipv4Addr, Ipv4Addr)>) -> Result<TcpRepr> {
        if let Some((src, dst)) = addrs
            && !packet.verify_checksum(src, dst)
        {
            return Err(Error::Checksum);
        }
        // Port zero is reserved and never valid on the wire.
        if packet.src_port() == 0 || packet.dst_port() == 0 {
            return Err(Error::Malformed);
        }
        let options = TcpOptions::parse(packet.options())?;
        Ok(TcpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            seq: packet.seq_number(),
            ack: packet.ack_number(),
            flags: packet.flags(),
            window: packet.window_len(),
            urgent: packet.urgent_at(),
            options,
        })
    }

    /// Header length including options, padded to a word.
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options.buffer_len()
    }

    /// Writes the header into the front of `packet`'s buffer, which must
    /// already hold the payload after `header_len()` bytes. Fills in the
    /// checksum over header and payload when `addrs` is given.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut TcpPacket<T>, addrs: Option<(Ipv4Addr, Ipv4Addr)>) {
        let hl = self.header_len();
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_seq_number(self.seq);
        packet.set_ack_number(if self.flags.ack() { self.ack } else { 0 });
        packet.set_header_len(hl);
        packet.set_flags(self.flags);
        packet.set_window_len(self.window);
        packet.set_checksum(0);
        packet.set_urgent_at(self.urgent);
        self.options.emit(&mut packet.buffer.as_mut()[HEADER_LEN..hl]);
        match addrs {
            Some((src, dst)) => packet.fill_checksum(src, dst),
            None => packet.set_checksum(0),
        }
    }

    /// Sequence space the segment occupies with a payload of `payload_len`.
    pub fn segment_len(&self, payload_len: usize) -> usize {
        payload_len + self.flags.syn() as usize + self.flags.fin() as usize
    }
}

impl fmt::Display for TcpRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}>{} [{}] seq={}", self.src_port, self.dst_port, self.flags, self.seq)?;
        if self.flags.ack() {
            write!(f, " ack={}", self.ack)?;
        }
        write!(f, " win={}", self.window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    fn syn_repr() -> TcpRepr {
        TcpRepr {
            src_port: 50784,
            dst_port: 12345,
            seq: 0xdead_beef,
            ack: 0,
            flags: TcpFlags::SYN,
            window: 65535,
            urgent: 0,
            options: TcpOptions {
                mss: Some(1460),
                window_scale: Some(7),
                sack_permitted: true,
                timestamps: Some((1, 0)),
                ..Default::default()
            },
        }
    }

    #[test]
    fn syn_round_trip_with_linux_option_layout() {
        let repr = syn_repr();
        let hl = repr.header_len();
        assert_eq!(hl, 40);
        let mut buf = vec![0u8; hl];
        repr.emit(&mut TcpPacket::new_unchecked(&mut buf[..]), Some((SRC, DST)));
        // mss, sackOK, TS, nop, wscale
        assert_eq!(&buf[20..24], &[2, 4, 0x05, 0xb4]);
        assert_eq!(&buf[24..26], &[4, 2]);
        assert_eq!(buf[26], 8);
        assert_eq!(&buf[36..40], &[1, 3, 3, 7]);
        let p = TcpPacket::new_checked(&buf[..]).unwrap();
        assert!(p.verify_checksum(SRC, DST));
        assert_eq!(TcpRepr::parse(&p, Some((SRC, DST))).unwrap(), repr);
        assert_eq!(p.segment_len(), 1);
    }

    #[test]
    fn fast_open_cookie_and_request_round_trip_rfc7413_4_1_1() {
        let mut repr = syn_repr();
        repr.flags = TcpFlags::SYN | TcpFlags::ACK;
        let cookie = FastOpenCookie::new(&[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        repr.options.fast_open = Some(cookie);
        // mss 4, sackOK+TS 12, wscale 4, nop nop FO(10) 12.
        assert_eq!(repr.header_len(), 20 + 32);
        let mut buf = vec![0u8; repr.header_len()];
        repr.emit(&mut TcpPacket::new_unchecked(&mut buf[..]), Some((SRC, DST)));
        assert_eq!(&buf[40..52], &[1, 1, 34, 10, 1, 2, 3, 4, 5, 6, 7, 8]);
        let p = TcpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(TcpRepr::parse(&p, Some((SRC, DST))).unwrap(), repr);

        repr.options.fast_open = Some(FastOpenCookie::REQUEST);
        let mut buf = vec![0u8; repr.header_len()];
        repr.emit(&mut TcpPacket::new_unchecked(&mut buf[..]), Some((SRC, DST)));
        assert_eq!(&buf[40..44], &[1, 1, 34, 2]);
        let p = TcpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(TcpRepr::parse(&p, Some((SRC, DST))).unwrap().options.fast_open, Some(FastOpenCookie::REQUEST));

        // Lengths RFC 7413 does not allow (odd, under 4, over 16) are
        // ignored, not malformed.
        for body in [&[1u8, 2, 3][..], &[1, 2], &[7; 18], &[1, 2, 3, 4, 5]] {
            let mut area = vec![34, 2 + body.len() as u8];
            area.extend_from_slice(body);
            assert_eq!(TcpOptions::parse(&area).unwrap().fast_open, None, "{body:?}");
        }
        assert_eq!(FastOpenCookie::new(&[9; 16]).map(|c| c.as_bytes().len()), Some(16));
        assert!(FastOpenCookie::new(&[9; 5]).is_none());
    }

    /// Found by the `wire_parsers` fuzz target: a signature, SACK-permitted
    /// and a 16-byte cookie parse (40 bytes), but the cookie does not fit
    /// in what `emit` writes (the signature takes 20 with its NOPs), and
    /// `fitted`, which says what `emit` writes, must leave it out too.
    #[test]
    fn fitted_leaves_out_a_fast_open_option_that_emit_cannot_fit() {
        let mut area = vec![19, 18];
        area.extend_from_slice(&[0xab; 16]);
        area.extend_from_slice(&[4, 2, 34, 2, 34, 18]);
        area.extend_from_slice(&[0xcd; 16]);
        let opts = TcpOptions::parse(&area).unwrap();
        assert!(opts.md5 && opts.sack_permitted && opts.fast_open.is_some());
        let n = opts.buffer_len();
        let mut out = [0u8; 40];
        assert_eq!(opts.emit(&mut out[..n]), n);
        assert_eq!(TcpOptions::parse(&out[..n]), Ok(opts.fitted()));
        assert_eq!(opts.fitted().fast_open, None);
    }

    #[test]
    fn data_segment_with_sack_and_timestamps() {
        let mut repr = syn_repr();
        repr.flags = TcpFlags::ACK | TcpFlags::PSH;
        repr.ack = 77;
        repr.options = TcpOptions { timestamps: Some((5, 6)), ..Default::default() };
        repr.options.sack_blocks.push(100, 200);
        repr.options.sack_blocks.push(300, 400);
        repr.options.sack_blocks.push(500, 600);
        let hl = repr.header_len();
        assert_eq!(hl, 20 + 12 + 4 + 24);
        let mut buf = vec![0u8; hl + 5];
        buf[hl..].copy_from_slice(b"hello");
        repr.emit(&mut TcpPacket::new_unchecked(&mut buf[..]), Some((SRC, DST)));
        let p = TcpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(p.payload(), b"hello");
        assert_eq!(TcpRepr::parse(&p, Some((SRC, DST))).unwrap(), repr);
        // Any flipped bit is caught by the checksum.
        buf[hl + 2] ^= 0x10;
        let p = TcpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(TcpRepr::parse(&p, Some((SRC, DST))), Err(Error::Checksum));
    }

    #[test]
    fn options_never_exceed_forty_bytes() {
        let mut o =
            TcpOptions { mss: Some(1460), timestamps: Some((1, 2)), window_scale: Some(7), ..Default::default() };
        for i in 0..4 {
            o.sack_blocks.push(i, i + 1);
        }
        // 4 + 12 + 4 = 20 bytes of other options leave room for 2 blocks.
        assert_eq!(o.buffer_len(), 40);
        let mut buf = [0u8; 40];
        assert_eq!(o.emit(&mut buf), 40);
        assert_eq!(TcpOptions::parse(&buf).unwrap().sack_blocks.len(), 2);
        let mut a = SackBlocks::new();
        a.push(1, 2);
        a.push(3, 4);
        a.truncate(1);
        let mut b = SackBlocks::new();
        b.push(1, 2);
        assert_eq!(a, b, "unused places do not count");
        // A 16-byte cookie does not fit beside a signature and the rest:
        // it is left out, never pushed past 40 bytes.
        let o =
            TcpOptions { md5: true, mss: Some(1460), fast_open: FastOpenCookie::new(&[1; 8]), ..Default::default() };
        assert_eq!(o.buffer_len(), 24 + 12);
        let o = TcpOptions { fast_open: FastOpenCookie::new(&[1; 16]), ..o };
        assert_eq!(o.buffer_len(), 24);
        let o = TcpOptions { timestamps: Some((1, 2)), ..o };
        assert_eq!(o.buffer_len(), 36);
        let mut buf = [0u8; 40];
        assert_eq!(o.emit(&mut buf), 36);
        assert_eq!(TcpOptions::parse(&buf[..36]).unwrap().fast_open, None);
    }

    #[test]
    fn nop_nop_timestamps_parse_as_the_general_loop_does() {
        let ts = [0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0];
        let mut aligned = vec![1, 1, 8, 10];
        aligned.extend_from_slice(&ts);
        // The same option in another order goes through the loop.
        let mut other = vec![8, 10];
        other.extend_from_slice(&ts);
        other.extend_from_slice(&[1, 1]);
        let a = TcpOptions::parse(&aligned).unwrap();
        assert_eq!(a.timestamps, Some((0x1234_5678, 0x9abc_def0)));
        assert_eq!(a, TcpOptions::parse(&other).unwrap());
        // A wrong length in that layout is still malformed.
        let mut bad = aligned.clone();
        bad[3] = 9;
        assert!(TcpOptions::parse(&bad).is_err());
    }

    #[test]
    fn unknown_options_skipped_and_bad_lengths_rejected() {
        // kind 30 (MPTCP) len 4, then MSS.
        assert_eq!(TcpOptions::parse(&[30, 4, 0, 0, 2, 4, 1, 0]).unwrap().mss, Some(256));
        assert_eq!(TcpOptions::parse(&[2, 4, 1, 0, 0, 99, 99]).unwrap().mss, Some(256), "EOL ends the list");
        assert_eq!(TcpOptions::parse(&[30, 1]), Err(Error::Malformed), "length below 2");
        assert_eq!(TcpOptions::parse(&[30, 9, 0]), Err(Error::Malformed), "length past the end");
        assert_eq!(TcpOptions::parse(&[2, 3, 0]), Err(Error::Malformed), "MSS of wrong length");
        assert_eq!(TcpOptions::parse(&[5, 6, 0, 0, 0, 0]), Err(Error::Malformed), "SACK not a multiple of 8");
        assert_eq!(TcpOptions::parse(&[2]), Err(Error::Malformed), "kind without length");
    }

    #[test]
    fn md5_option_parsed_emitted_and_signed_rfc2385() {
        let mut repr = syn_repr();
        repr.options.md5 = true;
        // MSS 4 + sackOK/TS 12 + wscale 4 + nop,nop,md5 20: exactly 40.
        assert_eq!(repr.header_len(), 60);
        let payload = b"signed data";
        let mut buf = vec![0u8; 60 + payload.len()];
        buf[60..].copy_from_slice(payload);
        repr.emit(&mut TcpPacket::new_unchecked(&mut buf[..]), None);
        assert_eq!(&buf[20..24], &[1, 1, 19, 18], "nop, nop, md5 first");
        assert_eq!(md5_digest_at(&buf), Some(24));
        assert!(sign_md5(SRC, DST, &mut buf, b"secret"));
        TcpPacket::new_unchecked(&mut buf[..]).fill_checksum(SRC, DST);
        let p = TcpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(TcpRepr::parse(&p, Some((SRC, DST))).unwrap(), repr);
        assert!(verify_md5(SRC, DST, &buf, b"secret"));
        assert!(!verify_md5(SRC, DST, &buf, b"secreT"), "another key");
        assert!(!verify_md5(DST, SRC, &buf, b"secret"), "the pseudo-header is covered");
        // Covered: header fields and data. Not covered: the checksum and
        // the other options (RFC 2385 §2.0).
        let mut b = buf.clone();
        b[60] ^= 1;
        assert!(!verify_md5(SRC, DST, &b, b"secret"), "data");
        let mut b = buf.clone();
        b[4] ^= 1;
        assert!(!verify_md5(SRC, DST, &b, b"secret"), "sequence number");
        let mut b = buf.clone();
        b[16] ^= 0xff;
        b[44] ^= 0xff;
        assert!(verify_md5(SRC, DST, &b, b"secret"), "checksum and the MSS option");
        // The digest is what the definition says, computed by hand.
        let mut msg = Vec::new();
        msg.extend_from_slice(&SRC.octets());
        msg.extend_from_slice(&DST.octets());
        msg.extend_from_slice(&[0, 6, 0, (60 + payload.len()) as u8]);
        let mut header = buf[..20].to_vec();
        header[16] = 0;
        header[17] = 0;
        msg.extend_from_slice(&header);
        msg.extend_from_slice(payload);
        msg.extend_from_slice(b"secret");
        assert_eq!(&buf[24..40], &crate::md5::Md5::digest(&msg));
    }

    #[test]
    fn sack_blocks_that_do_not_fit_beside_a_signature_take_no_room_rfc2385() {
        // Found by the wire_parsers fuzzer: a signature (20 bytes with its
        // NOPs) and timestamps (12) leave 8 bytes, less than a SACK block
        // needs; the length must not count an empty SACK option.
        let mut o = TcpOptions { md5: true, timestamps: Some((1, 2)), ..Default::default() };
        o.sack_blocks.push(10, 20);
        assert_eq!(o.buffer_len(), 32);
        let mut out = [0u8; 40];
        assert_eq!(o.emit(&mut out[..32]), 32);
        assert_eq!(TcpOptions::parse(&out[..32]), Ok(o.fitted()));
        assert!(o.fitted().sack_blocks.is_empty());
    }

    #[test]
    fn malformed_md5_options_rejected_rfc2385() {
        let mut opt = vec![19, 18];
        opt.extend_from_slice(&[0xab; 16]);
        assert!(TcpOptions::parse(&opt).unwrap().md5);
        let mut short = opt.clone();
        short[1] = 17;
        assert_eq!(TcpOptions::parse(&short[..17]), Err(Error::Malformed), "length 17");
        let mut twice = opt.clone();
        twice.extend_from_slice(&opt);
        assert_eq!(TcpOptions::parse(&twice), Err(Error::Malformed), "two signatures");
        assert_eq!(TcpOptions::parse(&opt[..10]), Err(Error::Malformed), "runs past the end");
        // No signature: nothing to find or verify; never a panic.
        let mut seg = [0u8; 20];
        seg[12] = 5 << 4;
        assert_eq!(md5_digest_at(&seg), None);
        assert!(!verify_md5(SRC, DST, &seg, b"k"));
        assert!(!verify_md5(SRC, DST, &[0u8; 3], b"k"));
        assert_eq!(md5_signature(SRC, DST, &[0xff; 10], b"k").len(), 16, "short input does not panic");
    }

    #[test]
    fn data_offset_checked() {
        let mut buf = [0u8; 24];
        buf[12] = 4 << 4;
        assert_eq!(TcpPacket::new_checked(&buf[..]).unwrap_err(), Error::Malformed);
        buf[12] = 7 << 4;
        assert_eq!(TcpPacket::new_checked(&buf[..]).unwrap_err(), Error::Truncated);
        buf[12] = 6 << 4;
        assert!(TcpPacket::new_checked(&buf[..]).is_ok());
    }

    #[test]
    fn flags_display_like_people_say_them() {
        assert_eq!((TcpFlags::SYN | TcpFlags::ACK).to_string(), "SYN-ACK");
        assert_eq!((TcpFlags::FIN | TcpFlags::ACK).to_string(), "FIN-ACK");
        assert_eq!((TcpFlags::PSH | TcpFlags::ACK).to_string(), "PSH-ACK");
        assert_eq!(TcpFlags::NONE.to_string(), "none");
    }
}
