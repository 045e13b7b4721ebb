//! IPv4 (RFC 791, RFC 1122 §3.2).

use super::{Error, checksum, get_u16, put_u16};
use core::fmt;
use core::str::FromStr;
use std::net::Ipv4Addr;

/// Length of an IPv4 header without options.
pub const HEADER_LEN: usize = 20;
/// Largest header: IHL 15 words.
pub const MAX_HEADER_LEN: usize = 60;
/// The MTU every IPv4 link must carry without fragmenting (RFC 791 §3.2:
/// "Every internet module must be able to forward a datagram of 68 octets
/// without further fragmentation").
pub const MIN_MTU: usize = 68;

/// The protocol field of an IPv4 header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IpProtocol {
    Icmp,
    Tcp,
    Udp,
    Unknown(u8),
}

impl From<u8> for IpProtocol {
    fn from(v: u8) -> Self {
        match v {
            1 => IpProtocol::Icmp,
            6 => IpProtocol::Tcp,
            17 => IpProtocol::Udp,
            other => IpProtocol::Unknown(other),
        }
    }
}

impl From<IpProtocol> for u8 {
    fn from(p: IpProtocol) -> u8 {
        match p {
            IpProtocol::Icmp => 1,
            IpProtocol::Tcp => 6,
            IpProtocol::Udp => 17,
            IpProtocol::Unknown(v) => v,
        }
    }
}

/// An address with a prefix length, as in `10.0.0.1/24`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    address: Ipv4Addr,
    prefix_len: u8,
}

impl Ipv4Cidr {
    /// `prefix_len` must be at most 32.
    pub const fn new(address: Ipv4Addr, prefix_len: u8) -> Self {
        assert!(prefix_len <= 32);
        Ipv4Cidr { address, prefix_len }
    }
    pub const fn address(&self) -> Ipv4Addr {
        self.address
    }
    pub const fn prefix_len(&self) -> u8 {
        self.prefix_len
    }
    pub const fn netmask(&self) -> Ipv4Addr {
        let bits = if self.prefix_len == 0 { 0 } else { u32::MAX << (32 - self.prefix_len) };
        Ipv4Addr::from_bits(bits)
    }
    /// The network address: this address with the host bits cleared.
    pub const fn network(&self) -> Ipv4Cidr {
        Ipv4Cidr {
            address: Ipv4Addr::from_bits(self.address.to_bits() & self.netmask().to_bits()),
            prefix_len: self.prefix_len,
        }
    }
    /// The directed broadcast address of the network (all host bits set).
    pub const fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from_bits(self.address.to_bits() | !self.netmask().to_bits())
    }
    pub const fn contains(&self, addr: Ipv4Addr) -> bool {
        let mask = self.netmask().to_bits();
        addr.to_bits() & mask == self.address.to_bits() & mask
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

/// Why a CIDR string did not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseCidrError(pub String);

impl fmt::Display for ParseCidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseCidrError {}

impl FromStr for Ipv4Cidr {
    type Err = ParseCidrError;
    /// Parses `A.B.C.D/N`; the prefix is required.
    fn from_str(s: &str) -> Result<Self, ParseCidrError> {
        let (addr, len) = s.split_once('/').ok_or_else(|| {
            ParseCidrError(format!("`{s}` has no prefix length: write it as ADDRESS/PREFIX, e.g. 10.7.0.2/24"))
        })?;
        let address: Ipv4Addr = addr.parse().map_err(|_| {
            ParseCidrError(format!("`{addr}` is not an IPv4 address (expected four numbers 0-255 like 10.7.0.2)"))
        })?;
        let prefix_len: u8 = len
            .parse()
            .ok()
            .filter(|&n| n <= 32)
            .ok_or_else(|| ParseCidrError(format!("`{len}` is not a prefix length: use a number from 0 to 32")))?;
        Ok(Ipv4Cidr { address, prefix_len })
    }
}

impl fmt::Display for IpProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpProtocol::Icmp => f.write_str("ICMP"),
            IpProtocol::Tcp => f.write_str("TCP"),
            IpProtocol::Udp => f.write_str("UDP"),
            IpProtocol::Unknown(v) => write!(f, "proto {v}"),
        }
    }
}

mod field {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const TOTAL_LEN: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLAGS_FRAG: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
}

/// Flag bits of the 16-bit flags/fragment-offset word (RFC 791 §3.1).
const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const FRAG_OFFSET_MASK: u16 = 0x1fff;

fn addr_at(b: &[u8], r: core::ops::Range<usize>) -> Ipv4Addr {
    let b = &b[r];
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

/// A zero-copy view of an IPv4 datagram (header, options, payload).
#[derive(Clone, Copy, Debug)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Checks the buffer holds a whole datagram: the fixed header, version
    /// 4, an IHL of at least 5 words within the buffer, and a total length
    /// that covers the header and fits in the buffer. Bytes after the total
    /// length (Ethernet padding of short frames) are allowed and ignored.
    pub fn new_checked(buffer: T) -> super::Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> super::Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 4 {
            return Err(Error::Malformed);
        }
        let hl = self.header_len();
        if hl < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if hl > len {
            return Err(Error::Truncated);
        }
        let total = self.total_len() as usize;
        if total < hl {
            return Err(Error::Malformed);
        }
        if total > len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }
    /// Header length in bytes, from the IHL field.
    pub fn header_len(&self) -> usize {
        ((self.buffer.as_ref()[field::VER_IHL] & 0x0f) as usize) * 4
    }
    /// Differentiated services code point (RFC 2474), the upper six bits
    /// of the old type-of-service octet.
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }
    /// Explicit congestion notification codepoint (RFC 3168 §5).
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }
    /// The whole octet: DSCP and ECN.
    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }
    pub fn total_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::TOTAL_LEN)
    }
    pub fn ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::IDENT)
    }
    fn flags_frag(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::FLAGS_FRAG)
    }
    pub fn dont_frag(&self) -> bool {
        self.flags_frag() & FLAG_DF != 0
    }
    pub fn more_frags(&self) -> bool {
        self.flags_frag() & FLAG_MF != 0
    }
    /// Fragment offset in bytes (the field counts 8-byte units).
    pub fn frag_offset(&self) -> u16 {
        (self.flags_frag() & FRAG_OFFSET_MASK) * 8
    }
    /// True for any fragment, first, middle or last (RFC 791 §3.2).
    pub fn is_fragment(&self) -> bool {
        self.more_frags() || self.frag_offset() != 0
    }
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }
    /// The time-to-live field; the same as [`hop_limit`](Self::hop_limit).
    pub fn ttl(&self) -> u8 {
        self.hop_limit()
    }
    pub fn protocol(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::PROTOCOL])
    }
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }
    pub fn src_addr(&self) -> Ipv4Addr {
        addr_at(self.buffer.as_ref(), field::SRC)
    }
    pub fn dst_addr(&self) -> Ipv4Addr {
        addr_at(self.buffer.as_ref(), field::DST)
    }
    /// The options area, between the fixed header and `header_len`.
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }
    /// The bytes from the end of the header to `total_len`; anything the
    /// buffer holds beyond that is link-layer padding and not included.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..self.total_len() as usize]
    }
    /// Verifies the header checksum (RFC 791 §3.1), options included.
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(0, &self.buffer.as_ref()[..self.header_len()])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    pub fn set_version(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0x0f) | (v << 4);
    }
    /// Sets the IHL from a header length in bytes (a multiple of 4).
    pub fn set_header_len(&mut self, len: usize) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0xf0) | (((len / 4) as u8) & 0x0f);
    }
    pub fn set_dscp(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0x03) | (v << 2);
    }
    pub fn set_ecn(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0xfc) | (v & 0x03);
    }
    pub fn set_dscp_ecn(&mut self, v: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = v;
    }
    pub fn set_total_len(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::TOTAL_LEN, v)
    }
    pub fn set_ident(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::IDENT, v)
    }
    fn set_flags_frag(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::FLAGS_FRAG, v)
    }
    /// Clears the flags (the reserved bit too) and the fragment offset.
    pub fn clear_flags(&mut self) {
        self.set_flags_frag(0)
    }
    pub fn set_dont_frag(&mut self, on: bool) {
        let v = self.flags_frag();
        self.set_flags_frag(if on { v | FLAG_DF } else { v & !FLAG_DF })
    }
    pub fn set_more_frags(&mut self, on: bool) {
        let v = self.flags_frag();
        self.set_flags_frag(if on { v | FLAG_MF } else { v & !FLAG_MF })
    }
    /// Sets the fragment offset from bytes; the low three bits are dropped
    /// (every fragment but the last carries a multiple of 8 bytes).
    pub fn set_frag_offset(&mut self, bytes: u16) {
        let v = self.flags_frag();
        self.set_flags_frag((v & !FRAG_OFFSET_MASK) | (bytes / 8))
    }
    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v
    }
    pub fn set_protocol(&mut self, p: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = p.into()
    }
    pub fn set_checksum(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::CHECKSUM, v)
    }
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a.octets())
    }
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a.octets())
    }
    /// Computes and stores the header checksum over `header_len` bytes.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len();
        let c = checksum::checksum(0, &self.buffer.as_ref()[..hl]);
        self.set_checksum(c);
    }
    /// The payload area as `payload` delimits it (header to total length).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (hl, total) = (self.header_len(), self.total_len() as usize);
        &mut self.buffer.as_mut()[hl..total]
    }
}

/// The fields of an IPv4 header that matter, without options or payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Repr {
    pub src_addr: Ipv4Addr,
    pub dst_addr: Ipv4Addr,
    pub protocol: IpProtocol,
    /// Bytes after the header (total length minus header length).
    pub payload_len: usize,
    /// The time-to-live field.
    pub hop_limit: u8,
    pub ident: u16,
    pub dont_frag: bool,
    pub more_frags: bool,
    /// Fragment offset in bytes, a multiple of 8.
    pub frag_offset: u16,
    /// The DSCP and ECN octet (RFC 2474, RFC 3168).
    pub dscp_ecn: u8,
}

impl Ipv4Repr {
    /// Reads the header of a checked packet. With `verify_checksum`, a bad
    /// header checksum is `Error::Checksum` (RFC 1122 §3.2.1.2: "A host MUST
    /// verify the IP header checksum on every received datagram and silently
    /// discard every datagram that has a bad checksum"). Options are
    /// skipped: RFC 1122 §3.2.1.8 lets a host ignore the ones it does not
    /// implement.
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv4Packet<T>, verify_checksum: bool) -> super::Result<Ipv4Repr> {
        if verify_checksum && !packet.verify_checksum() {
            return Err(Error::Checksum);
        }
        Ok(Ipv4Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: (packet.total_len() as usize).saturating_sub(packet.header_len()),
            hop_limit: packet.hop_limit(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
            more_frags: packet.more_frags(),
            frag_offset: packet.frag_offset(),
            dscp_ecn: packet.dscp_ecn(),
        })
    }

    /// Header length: 20 (ustack never sends options).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Header plus payload: the value of the total length field.
    pub const fn total_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes a 20-byte header into the front of `packet`'s buffer, with
    /// total length `20 + payload_len` (which must fit in 16 bits). The
    /// payload is the caller's. The checksum is computed when
    /// `fill_checksum`, else left zero for a device to fill.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv4Packet<T>, fill_checksum: bool) {
        packet.set_version(4);
        packet.set_header_len(HEADER_LEN);
        packet.set_dscp_ecn(self.dscp_ecn);
        packet.set_total_len(self.total_len() as u16);
        packet.set_ident(self.ident);
        packet.clear_flags();
        packet.set_dont_frag(self.dont_frag);
        packet.set_more_frags(self.more_frags);
        packet.set_frag_offset(self.frag_offset);
        packet.set_hop_limit(self.hop_limit);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        if fill_checksum {
            packet.fill_checksum();
        } else {
            packet.set_checksum(0);
        }
    }

    /// Whether this header describes a fragment.
    pub const fn is_fragment(&self) -> bool {
        self.more_frags || self.frag_offset != 0
    }
}

impl fmt::Display for Ipv4Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} > {} {} len={} ttl={} id={}",
            self.src_addr, self.dst_addr, self.protocol, self.payload_len, self.hop_limit, self.ident
        )?;
        if self.dont_frag {
            f.write_str(" DF")?;
        }
        if self.is_fragment() {
            write!(f, " frag={}", self.frag_offset)?;
            if self.more_frags {
                f.write_str("+")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real UDP datagram's IPv4 header (the worked example of the header
    /// checksum on Wikipedia's "IPv4 header checksum" page):
    /// 192.168.0.1 > 192.168.0.199, total length 115, DF, TTL 64, UDP,
    /// checksum 0xb861.
    const HEADER: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8,
        0x00, 0xc7,
    ];

    fn datagram() -> Vec<u8> {
        let mut buf = vec![0u8; 115];
        buf[..20].copy_from_slice(&HEADER);
        for (i, b) in buf[20..].iter_mut().enumerate() {
            *b = i as u8;
        }
        buf
    }

    fn repr() -> Ipv4Repr {
        Ipv4Repr {
            src_addr: Ipv4Addr::new(10, 0, 0, 1),
            dst_addr: Ipv4Addr::new(10, 0, 0, 2),
            protocol: IpProtocol::Tcp,
            payload_len: 5,
            hop_limit: 64,
            ident: 0x1234,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
            dscp_ecn: 0x02,
        }
    }

    #[test]
    fn parse_captured_header() {
        let buf = datagram();
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!((p.dscp(), p.ecn()), (0, 0));
        assert_eq!(p.total_len(), 115);
        assert_eq!(p.ident(), 0);
        assert!(p.dont_frag() && !p.more_frags() && !p.is_fragment());
        assert_eq!(p.frag_offset(), 0);
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), IpProtocol::Udp);
        assert_eq!(p.checksum(), 0xb861);
        assert_eq!(p.src_addr(), Ipv4Addr::new(192, 168, 0, 1));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(192, 168, 0, 199));
        assert!(p.options().is_empty());
        assert_eq!(p.payload().len(), 95);
        assert_eq!(p.payload()[3], 3);
        assert!(p.verify_checksum());
        let r = Ipv4Repr::parse(&p, true).unwrap();
        assert_eq!(r.payload_len, 95);
        assert!(r.dont_frag);
        assert_eq!(r.to_string(), "192.168.0.1 > 192.168.0.199 UDP len=95 ttl=64 id=0 DF");

        // Emitting the parsed header reproduces it, checksum included.
        let mut out = buf.clone();
        out[..20].fill(0);
        r.emit(&mut Ipv4Packet::new_unchecked(&mut out[..]), true);
        assert_eq!(&out[..20], &HEADER[..]);
    }

    #[test]
    fn round_trip() {
        let repr = repr();
        let mut buf = vec![0u8; repr.total_len()];
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
        repr.emit(&mut p, true);
        p.payload_mut().copy_from_slice(b"hello");
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(Ipv4Repr::parse(&p, true).unwrap(), repr);
        assert_eq!(p.payload(), b"hello");
        assert_eq!((p.dscp(), p.ecn()), (0, 2));

        let mut frag = repr;
        frag.dont_frag = false;
        frag.more_frags = true;
        frag.frag_offset = 1480;
        assert!(frag.is_fragment());
        frag.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]), true);
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert!(p.is_fragment());
        assert_eq!(p.frag_offset(), 1480);
        assert_eq!(&buf[6..8], &[0x20, 185]);
        assert_eq!(Ipv4Repr::parse(&p, true).unwrap(), frag);
        assert!(frag.to_string().ends_with("frag=1480+"));
    }

    #[test]
    fn last_fragment_is_a_fragment() {
        let mut buf = datagram();
        buf[6..8].copy_from_slice(&[0x00, 0x02]);
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert!(!p.more_frags());
        assert_eq!(p.frag_offset(), 16);
        assert!(p.is_fragment());
    }

    #[test]
    fn checksum_detected_and_optional() {
        let mut buf = datagram();
        buf[8] = 63; // TTL changed, checksum not updated
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert!(!p.verify_checksum());
        assert_eq!(Ipv4Repr::parse(&p, true), Err(Error::Checksum));
        assert_eq!(Ipv4Repr::parse(&p, false).unwrap().hop_limit, 63);
        // A payload change does not touch the header checksum.
        let mut buf = datagram();
        buf[40] ^= 0xff;
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert!(Ipv4Repr::parse(&p, true).is_ok());
        // Without fill, the checksum field is left zero.
        let mut out = [0xaau8; 25];
        repr().emit(&mut Ipv4Packet::new_unchecked(&mut out[..]), false);
        assert_eq!(&out[10..12], &[0, 0]);
    }

    #[test]
    fn padding_after_total_len_is_not_payload() {
        // A 28-byte datagram in a minimum Ethernet frame: 18 bytes of padding.
        let mut repr = repr();
        repr.payload_len = 8;
        let mut buf = [0xeeu8; 46];
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]), true);
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.payload().len(), 8);
        assert_eq!(Ipv4Repr::parse(&p, true).unwrap().payload_len, 8);
    }

    #[test]
    fn options_are_skipped() {
        // IHL 6 with a Router Alert option (RFC 2113): 94 04 00 00.
        let mut buf = [0u8; 28];
        buf[0] = 0x46;
        buf[2..4].copy_from_slice(&28u16.to_be_bytes());
        buf[8] = 1;
        buf[9] = 2; // IGMP
        buf[12..16].copy_from_slice(&[10, 0, 0, 1]);
        buf[16..20].copy_from_slice(&[224, 0, 0, 22]);
        buf[20..24].copy_from_slice(&[0x94, 0x04, 0, 0]);
        buf[24..28].copy_from_slice(b"igmp");
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
        p.fill_checksum();
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.options(), &[0x94, 0x04, 0, 0]);
        assert_eq!(p.payload(), b"igmp");
        let r = Ipv4Repr::parse(&p, true).unwrap();
        assert_eq!(r.protocol, IpProtocol::Unknown(2));
        assert_eq!(r.payload_len, 4);
        assert_eq!(r.buffer_len(), 20);
    }

    #[test]
    fn validation() {
        let good = datagram();
        for len in 0..HEADER_LEN {
            assert_eq!(Ipv4Packet::new_checked(&good[..len]).unwrap_err(), Error::Truncated);
        }
        // Version 6 in an IPv4 packet.
        let mut buf = good.clone();
        buf[0] = 0x65;
        assert_eq!(Ipv4Packet::new_checked(&buf[..]).unwrap_err(), Error::Malformed);
        // IHL below 5.
        let mut buf = good.clone();
        buf[0] = 0x44;
        assert_eq!(Ipv4Packet::new_checked(&buf[..]).unwrap_err(), Error::Malformed);
        // IHL past the buffer.
        let mut buf = good[..40].to_vec();
        buf[0] = 0x4f;
        buf[2..4].copy_from_slice(&40u16.to_be_bytes());
        assert_eq!(Ipv4Packet::new_checked(&buf[..]).unwrap_err(), Error::Truncated);
        // Total length shorter than the header.
        let mut buf = good.clone();
        buf[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(Ipv4Packet::new_checked(&buf[..]).unwrap_err(), Error::Malformed);
        let mut buf = good.clone();
        buf[0] = 0x46;
        buf[2..4].copy_from_slice(&20u16.to_be_bytes());
        assert_eq!(Ipv4Packet::new_checked(&buf[..]).unwrap_err(), Error::Malformed);
        // Total length past the buffer.
        assert_eq!(Ipv4Packet::new_checked(&good[..114]).unwrap_err(), Error::Truncated);
        // Exactly the header, no payload.
        let mut buf = good[..20].to_vec();
        buf[2..4].copy_from_slice(&20u16.to_be_bytes());
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert!(p.payload().is_empty());
    }

    #[test]
    fn setters_touch_only_their_bits() {
        let mut buf = datagram();
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
        p.set_dscp(46); // EF
        p.set_ecn(3);
        assert_eq!((p.dscp(), p.ecn(), p.dscp_ecn()), (46, 3, 0xbb));
        p.set_more_frags(true);
        p.set_frag_offset(64);
        p.set_dont_frag(false);
        assert!(p.more_frags() && !p.dont_frag());
        assert_eq!(p.frag_offset(), 64);
        p.set_more_frags(false);
        assert_eq!(p.frag_offset(), 64);
        p.set_header_len(24);
        assert_eq!((p.version(), p.header_len()), (4, 24));
        p.set_version(4);
        assert_eq!(p.header_len(), 24);
    }
}

#[cfg(test)]
mod cidr_tests {
    use super::*;

    #[test]
    fn cidr_basics() {
        let c: Ipv4Cidr = "10.7.0.2/24".parse().unwrap();
        assert_eq!(c.netmask(), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(c.network().address(), Ipv4Addr::new(10, 7, 0, 0));
        assert_eq!(c.broadcast(), Ipv4Addr::new(10, 7, 0, 255));
        assert!(c.contains(Ipv4Addr::new(10, 7, 0, 200)));
        assert!(!c.contains(Ipv4Addr::new(10, 7, 1, 1)));
        let all: Ipv4Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(Ipv4Addr::new(1, 2, 3, 4)));
        assert!("10.0.0.1".parse::<Ipv4Cidr>().is_err());
        assert!("10.0.0.1/33".parse::<Ipv4Cidr>().is_err());
        assert!("10.0.0/8".parse::<Ipv4Cidr>().is_err());
        assert_eq!(c.to_string(), "10.7.0.2/24");
    }
}
