//! ICMP for IPv4 (RFC 792), with the next-hop MTU of RFC 1191 §4.
//!
//! ustack handles echo (for `ping`) and the two error messages that matter
//! to a host: destination unreachable and time exceeded. Other types parse
//! as `Error::Unsupported`.

use super::ipv4::{self, Ipv4Packet, Ipv4Repr};
use super::{Error, Result, checksum, get_u16, get_u32, put_u16, put_u32};
use core::fmt;

/// Length of the ICMP header: type, code, checksum and the 4-byte
/// "rest of header" whose meaning depends on the type.
pub const HEADER_LEN: usize = 8;

/// Echo reply (RFC 792).
pub const TYPE_ECHO_REPLY: u8 = 0;
/// Destination unreachable (RFC 792).
pub const TYPE_DST_UNREACHABLE: u8 = 3;
/// Echo request (RFC 792).
pub const TYPE_ECHO_REQUEST: u8 = 8;
/// Time exceeded (RFC 792).
pub const TYPE_TIME_EXCEEDED: u8 = 11;

mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const REST: usize = 4;
    pub const ECHO_IDENT: usize = 4;
    pub const ECHO_SEQ: usize = 6;
    pub const NEXT_HOP_MTU: usize = 6;
}

/// The codes of a destination unreachable message (RFC 792, RFC 1122
/// §3.2.2.1, RFC 1812 §5.2.7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DstUnreachable {
    /// 0
    NetUnreachable,
    /// 1
    HostUnreachable,
    /// 2
    ProtoUnreachable,
    /// 3
    PortUnreachable,
    /// 4: fragmentation needed and DF set, with the MTU of the next hop
    /// (RFC 1191 §4; zero from a router that predates it).
    FragRequired { next_hop_mtu: u16 },
    /// 5
    SourceRouteFailed,
    /// 6
    DstNetUnknown,
    /// 7
    DstHostUnknown,
    /// 8
    SourceHostIsolated,
    /// 9
    NetProhibited,
    /// 10
    HostProhibited,
    /// 11
    NetUnreachableForTos,
    /// 12
    HostUnreachableForTos,
    /// 13: communication administratively prohibited (RFC 1812).
    CommProhibited,
    /// 14
    HostPrecedenceViolation,
    /// 15
    PrecedenceCutoff,
    /// Any other code. Parsing yields this only for codes above 15.
    Other(u8),
}

impl DstUnreachable {
    /// The reason for `code`; `next_hop_mtu` is used by code 4 only.
    pub fn from_code(code: u8, next_hop_mtu: u16) -> DstUnreachable {
        use DstUnreachable::*;
        match code {
            0 => NetUnreachable,
            1 => HostUnreachable,
            2 => ProtoUnreachable,
            3 => PortUnreachable,
            4 => FragRequired { next_hop_mtu },
            5 => SourceRouteFailed,
            6 => DstNetUnknown,
            7 => DstHostUnknown,
            8 => SourceHostIsolated,
            9 => NetProhibited,
            10 => HostProhibited,
            11 => NetUnreachableForTos,
            12 => HostUnreachableForTos,
            13 => CommProhibited,
            14 => HostPrecedenceViolation,
            15 => PrecedenceCutoff,
            other => Other(other),
        }
    }

    pub fn code(&self) -> u8 {
        use DstUnreachable::*;
        match *self {
            NetUnreachable => 0,
            HostUnreachable => 1,
            ProtoUnreachable => 2,
            PortUnreachable => 3,
            FragRequired { .. } => 4,
            SourceRouteFailed => 5,
            DstNetUnknown => 6,
            DstHostUnknown => 7,
            SourceHostIsolated => 8,
            NetProhibited => 9,
            HostProhibited => 10,
            NetUnreachableForTos => 11,
            HostUnreachableForTos => 12,
            CommProhibited => 13,
            HostPrecedenceViolation => 14,
            PrecedenceCutoff => 15,
            Other(c) => c,
        }
    }
}

impl fmt::Display for DstUnreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DstUnreachable::*;
        match *self {
            NetUnreachable => f.write_str("net unreachable"),
            HostUnreachable => f.write_str("host unreachable"),
            ProtoUnreachable => f.write_str("protocol unreachable"),
            PortUnreachable => f.write_str("port unreachable"),
            FragRequired { next_hop_mtu } => {
                write!(f, "fragmentation needed (mtu {next_hop_mtu})")
            }
            SourceRouteFailed => f.write_str("source route failed"),
            DstNetUnknown => f.write_str("net unknown"),
            DstHostUnknown => f.write_str("host unknown"),
            SourceHostIsolated => f.write_str("source host isolated"),
            NetProhibited => f.write_str("net prohibited"),
            HostProhibited => f.write_str("host prohibited"),
            NetUnreachableForTos => f.write_str("net unreachable for TOS"),
            HostUnreachableForTos => f.write_str("host unreachable for TOS"),
            CommProhibited => f.write_str("communication prohibited"),
            HostPrecedenceViolation => f.write_str("host precedence violation"),
            PrecedenceCutoff => f.write_str("precedence cutoff"),
            Other(c) => write!(f, "code {c}"),
        }
    }
}

/// The codes of a time exceeded message (RFC 792).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeExceeded {
    /// 0: time to live exceeded in transit.
    TtlExpired,
    /// 1: fragment reassembly time exceeded.
    FragReassembly,
}

impl TimeExceeded {
    pub fn code(&self) -> u8 {
        match self {
            TimeExceeded::TtlExpired => 0,
            TimeExceeded::FragReassembly => 1,
        }
    }
}

impl fmt::Display for TimeExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeExceeded::TtlExpired => "TTL expired in transit",
            TimeExceeded::FragReassembly => "fragment reassembly time exceeded",
        })
    }
}

/// A zero-copy view of an ICMP message. The buffer is the whole message
/// (the IPv4 payload): the checksum covers all of it.
#[derive(Clone, Copy, Debug)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Icmpv4Packet { buffer }
    }

    /// Checks that the buffer holds the 8-byte header.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }
    /// The four bytes after the checksum, whatever the type.
    pub fn rest_of_header(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::REST)
    }
    /// Identifier of an echo request or reply.
    pub fn echo_ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::ECHO_IDENT)
    }
    /// Sequence number of an echo request or reply.
    pub fn echo_seq_no(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::ECHO_SEQ)
    }
    /// Next-hop MTU of a "fragmentation needed" message: the low 16 bits
    /// of the rest of the header (RFC 1191 §4).
    pub fn next_hop_mtu(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::NEXT_HOP_MTU)
    }
    /// Everything after the 8-byte header: the echo data, or the original
    /// datagram's header and first bytes in an error message.
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
    /// Verifies the checksum over the whole message (RFC 792: no
    /// pseudo-header).
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(0, self.buffer.as_ref())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    pub fn set_msg_type(&mut self, v: u8) {
        self.buffer.as_mut()[field::TYPE] = v
    }
    pub fn set_code(&mut self, v: u8) {
        self.buffer.as_mut()[field::CODE] = v
    }
    pub fn set_checksum(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::CHECKSUM, v)
    }
    pub fn set_rest_of_header(&mut self, v: u32) {
        put_u32(self.buffer.as_mut(), field::REST, v)
    }
    pub fn set_echo_ident(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::ECHO_IDENT, v)
    }
    pub fn set_echo_seq_no(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::ECHO_SEQ, v)
    }
    pub fn set_next_hop_mtu(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::NEXT_HOP_MTU, v)
    }
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
    /// Computes and stores the checksum over the whole buffer.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(0, self.buffer.as_ref());
        self.set_checksum(c);
    }
}

/// An ICMP message ustack understands, borrowing its data from the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Icmpv4Repr<'a> {
    EchoRequest {
        ident: u16,
        seq_no: u16,
        data: &'a [u8],
    },
    EchoReply {
        ident: u16,
        seq_no: u16,
        data: &'a [u8],
    },
    /// `header` is the original datagram's IPv4 header (its options, if it
    /// had any, are not kept) and `data` the bytes of the original datagram
    /// that follow it: at least 8 on input (RFC 792), any number on output
    /// (RFC 1812 §4.3.2.3 allows up to 576 bytes in all).
    DstUnreachable {
        reason: DstUnreachable,
        header: Ipv4Repr,
        data: &'a [u8],
    },
    TimeExceeded {
        reason: TimeExceeded,
        header: Ipv4Repr,
        data: &'a [u8],
    },
}

/// Reads the original datagram quoted in an error message: an IPv4 header
/// and at least its first 8 payload bytes (RFC 792), or the whole payload
/// when that is shorter. The quoted datagram is cut short, so the total
/// length is not checked against the buffer, and its header checksum is not
/// verified (the ICMP checksum covers it; RFC 1812 §4.3.2.3 lets a router
/// send it as received).
fn parse_quoted(data: &[u8]) -> Result<(Ipv4Repr, &[u8])> {
    if data.len() < ipv4::HEADER_LEN {
        return Err(Error::Truncated);
    }
    let ip = Ipv4Packet::new_unchecked(data);
    if ip.version() != 4 {
        return Err(Error::Malformed);
    }
    let hl = ip.header_len();
    if hl < ipv4::HEADER_LEN {
        return Err(Error::Malformed);
    }
    if hl > data.len() {
        return Err(Error::Truncated);
    }
    if (ip.total_len() as usize) < hl {
        return Err(Error::Malformed);
    }
    let header = Ipv4Repr::parse(&ip, false)?;
    let rest = &data[hl..];
    if rest.len() < header.payload_len.min(8) {
        return Err(Error::Truncated);
    }
    Ok((header, rest))
}

impl<'a> Icmpv4Repr<'a> {
    /// Reads a checked message. With `verify_checksum`, a bad checksum is
    /// `Error::Checksum`. Types other than echo request/reply, destination
    /// unreachable and time exceeded are `Error::Unsupported`, as is a time
    /// exceeded code other than 0 or 1. The code of an echo message is
    /// ignored (RFC 1122 §1.2.2: be liberal in what you accept).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Icmpv4Packet<&'a T>,
        verify_checksum: bool,
    ) -> Result<Icmpv4Repr<'a>> {
        if verify_checksum && !packet.verify_checksum() {
            return Err(Error::Checksum);
        }
        let buffer: &'a [u8] = <T as AsRef<[u8]>>::as_ref(packet.buffer);
        let data = &buffer[HEADER_LEN..];
        match packet.msg_type() {
            TYPE_ECHO_REQUEST => {
                Ok(Icmpv4Repr::EchoRequest { ident: packet.echo_ident(), seq_no: packet.echo_seq_no(), data })
            }
            TYPE_ECHO_REPLY => {
                Ok(Icmpv4Repr::EchoReply { ident: packet.echo_ident(), seq_no: packet.echo_seq_no(), data })
            }
            TYPE_DST_UNREACHABLE => {
                let reason = DstUnreachable::from_code(packet.code(), packet.next_hop_mtu());
                let (header, data) = parse_quoted(data)?;
                Ok(Icmpv4Repr::DstUnreachable { reason, header, data })
            }
            TYPE_TIME_EXCEEDED => {
                let reason = match packet.code() {
                    0 => TimeExceeded::TtlExpired,
                    1 => TimeExceeded::FragReassembly,
                    _ => return Err(Error::Unsupported),
                };
                let (header, data) = parse_quoted(data)?;
                Ok(Icmpv4Repr::TimeExceeded { reason, header, data })
            }
            _ => Err(Error::Unsupported),
        }
    }

    /// Bytes `emit` writes: the 8-byte header, then the echo data, or the
    /// 20-byte quoted header and the quoted data.
    pub fn buffer_len(&self) -> usize {
        match self {
            Icmpv4Repr::EchoRequest { data, .. } | Icmpv4Repr::EchoReply { data, .. } => HEADER_LEN + data.len(),
            Icmpv4Repr::DstUnreachable { data, .. } | Icmpv4Repr::TimeExceeded { data, .. } => {
                HEADER_LEN + ipv4::HEADER_LEN + data.len()
            }
        }
    }

    /// Writes the whole message, data included, into the front of
    /// `packet`'s buffer (at least `buffer_len()` bytes) and fills in the
    /// checksum over those `buffer_len()` bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Icmpv4Packet<T>) {
        let (msg_type, code, rest, payload): (u8, u8, u32, &[u8]) = match *self {
            Icmpv4Repr::EchoRequest { ident, seq_no, data } => {
                (TYPE_ECHO_REQUEST, 0, (ident as u32) << 16 | seq_no as u32, data)
            }
            Icmpv4Repr::EchoReply { ident, seq_no, data } => {
                (TYPE_ECHO_REPLY, 0, (ident as u32) << 16 | seq_no as u32, data)
            }
            Icmpv4Repr::DstUnreachable { reason, data, .. } => {
                // The rest of the header is unused (zero) except for the
                // next-hop MTU of code 4 (RFC 1191 §4).
                let rest = match reason {
                    DstUnreachable::FragRequired { next_hop_mtu } => next_hop_mtu as u32,
                    _ => 0,
                };
                (TYPE_DST_UNREACHABLE, reason.code(), rest, data)
            }
            Icmpv4Repr::TimeExceeded { reason, data, .. } => (TYPE_TIME_EXCEEDED, reason.code(), 0, data),
        };
        packet.set_msg_type(msg_type);
        packet.set_code(code);
        packet.set_checksum(0);
        packet.set_rest_of_header(rest);
        let body = packet.data_mut();
        match self {
            Icmpv4Repr::DstUnreachable { header, .. } | Icmpv4Repr::TimeExceeded { header, .. } => {
                let (ip, rest) = body.split_at_mut(ipv4::HEADER_LEN);
                header.emit(&mut Ipv4Packet::new_unchecked(ip), true);
                rest[..payload.len()].copy_from_slice(payload);
            }
            _ => body[..payload.len()].copy_from_slice(payload),
        }
        let len = self.buffer_len();
        let c = checksum::checksum(0, &packet.buffer.as_ref()[..len]);
        packet.set_checksum(c);
    }
}

impl fmt::Display for Icmpv4Repr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Icmpv4Repr::EchoRequest { ident, seq_no, data } => {
                write!(f, "ICMP echo request id={ident} seq={seq_no} len={}", data.len())
            }
            Icmpv4Repr::EchoReply { ident, seq_no, data } => {
                write!(f, "ICMP echo reply id={ident} seq={seq_no} len={}", data.len())
            }
            Icmpv4Repr::DstUnreachable { reason, header, .. } => {
                write!(f, "ICMP {} unreachable: {reason}", header.dst_addr)
            }
            Icmpv4Repr::TimeExceeded { reason, header, .. } => {
                write!(f, "ICMP {reason} (to {})", header.dst_addr)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::IpProtocol;
    use std::net::Ipv4Addr;

    /// An echo request laid out as Linux `ping 8.8.8.8` sends it (IPv4
    /// header, then ICMP: id 0x1c46, seq 1, 56 bytes of data: an 8+8-byte
    /// `struct timeval`, then 0x10..=0x37). Checksums computed by hand.
    const PING: [u8; 84] = [
        0x45, 0x00, 0x00, 0x54, 0xb3, 0xf2, 0x40, 0x00, 0x40, 0x01, 0xb4, 0x9a, 0xc0, 0xa8, 0x01, 0x64, 0x08, 0x08,
        0x08, 0x08, // IPv4
        0x08, 0x00, 0xe3, 0xfb, 0x1c, 0x46, 0x00, 0x01, // ICMP header
        0x00, 0xf1, 0x53, 0x65, 0x00, 0x00, 0x00, 0x00, 0xe0, 0x93, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x11,
        0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23,
        0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35,
        0x36, 0x37,
    ];

    /// Port unreachable from 8.8.8.8 for a DNS query sent from
    /// 192.168.1.100:53535: the original header and 8 bytes of UDP.
    const PORT_UNREACHABLE: [u8; 36] = [
        0x03, 0x03, 0x4a, 0x8b, 0x00, 0x00, 0x00, 0x00, // ICMP header
        0x45, 0x00, 0x00, 0x39, 0x4d, 0x2a, 0x40, 0x00, 0x40, 0x11, 0x1b, 0x6e, 0xc0, 0xa8, 0x01, 0x64, 0x08, 0x08,
        0x08, 0x08, // original IPv4 header
        0xd1, 0x1f, 0x00, 0x35, 0x00, 0x25, 0xe0, 0xf7, // original UDP header
    ];

    /// Fragmentation needed, next-hop MTU 1400, for a 1500-byte DF TCP
    /// datagram 10.0.0.1:40000 > 10.0.0.2:80.
    const FRAG_NEEDED: [u8; 36] = [
        0x03, 0x04, 0x56, 0xed, 0x00, 0x00, 0x05, 0x78, // ICMP header, MTU 1400
        0x45, 0x00, 0x05, 0xdc, 0x00, 0x01, 0x40, 0x00, 0x3f, 0x06, 0x22, 0x19, 0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00,
        0x00, 0x02, // original IPv4 header
        0x9c, 0x40, 0x00, 0x50, 0x01, 0x02, 0x03, 0x04, // ports and sequence number
    ];

    fn quoted_header() -> Ipv4Repr {
        Ipv4Repr {
            src_addr: Ipv4Addr::new(10, 0, 0, 1),
            dst_addr: Ipv4Addr::new(10, 0, 0, 2),
            protocol: IpProtocol::Udp,
            payload_len: 100,
            hop_limit: 1,
            ident: 7,
            dont_frag: false,
            more_frags: false,
            frag_offset: 0,
            dscp_ecn: 0,
        }
    }

    fn round_trip(repr: Icmpv4Repr<'_>) -> Vec<u8> {
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]));
        let p = Icmpv4Packet::new_checked(&buf[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(Icmpv4Repr::parse(&p, true).unwrap(), repr);
        buf
    }

    #[test]
    fn parse_captured_ping() {
        let ip = Ipv4Packet::new_checked(&PING[..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(ip.protocol(), IpProtocol::Icmp);
        let p = Icmpv4Packet::new_checked(ip.payload()).unwrap();
        assert_eq!((p.msg_type(), p.code()), (8, 0));
        assert_eq!(p.checksum(), 0xe3fb);
        assert_eq!((p.echo_ident(), p.echo_seq_no()), (0x1c46, 1));
        assert_eq!(p.rest_of_header(), 0x1c46_0001);
        assert!(p.verify_checksum());
        let r = Icmpv4Repr::parse(&p, true).unwrap();
        let Icmpv4Repr::EchoRequest { ident, seq_no, data } = r else { panic!("{r:?}") };
        assert_eq!((ident, seq_no, data.len()), (0x1c46, 1, 56));
        assert_eq!(data[16..], (0x10..=0x37).collect::<Vec<u8>>()[..]);
        assert_eq!(r.to_string(), "ICMP echo request id=7238 seq=1 len=56");

        // The reply a host sends back: same id, seq and data.
        let reply = Icmpv4Repr::EchoReply { ident, seq_no, data };
        let buf = round_trip(reply);
        assert_eq!(buf[0], 0);
        // Only the type changed: the checksum went up by 8 << 8.
        assert_eq!(&buf[2..4], &[0xeb, 0xfb]);
        assert_eq!(&buf[4..], &PING[24..]);
    }

    #[test]
    fn parse_captured_port_unreachable() {
        let p = Icmpv4Packet::new_checked(&PORT_UNREACHABLE[..]).unwrap();
        let r = Icmpv4Repr::parse(&p, true).unwrap();
        let Icmpv4Repr::DstUnreachable { reason, header, data } = r else { panic!("{r:?}") };
        assert_eq!(reason, DstUnreachable::PortUnreachable);
        assert_eq!(header.src_addr, Ipv4Addr::new(192, 168, 1, 100));
        assert_eq!(header.dst_addr, Ipv4Addr::new(8, 8, 8, 8));
        assert_eq!(header.protocol, IpProtocol::Udp);
        assert_eq!(header.payload_len, 37);
        assert_eq!(data, &PORT_UNREACHABLE[28..]);
        assert_eq!(u16::from_be_bytes([data[0], data[1]]), 53535);
        assert_eq!(r.to_string(), "ICMP 8.8.8.8 unreachable: port unreachable");
        // Emitting it again gives the same bytes: the quoted header had no
        // options and a valid checksum.
        assert_eq!(round_trip(r), PORT_UNREACHABLE);
    }

    #[test]
    fn parse_captured_frag_needed() {
        let p = Icmpv4Packet::new_checked(&FRAG_NEEDED[..]).unwrap();
        assert_eq!(p.next_hop_mtu(), 1400);
        let r = Icmpv4Repr::parse(&p, true).unwrap();
        let Icmpv4Repr::DstUnreachable { reason, header, .. } = r else { panic!("{r:?}") };
        assert_eq!(reason, DstUnreachable::FragRequired { next_hop_mtu: 1400 });
        assert!(header.dont_frag);
        assert_eq!(header.payload_len, 1480);
        assert_eq!(header.protocol, IpProtocol::Tcp);
        assert_eq!(round_trip(r), FRAG_NEEDED);
    }

    #[test]
    fn time_exceeded_round_trip_with_long_quote() {
        // RFC 1812 §4.3.2.3: a router may quote up to 576 bytes in all.
        let data: Vec<u8> = (0..520u32).map(|i| i as u8).collect();
        for reason in [TimeExceeded::TtlExpired, TimeExceeded::FragReassembly] {
            let repr = Icmpv4Repr::TimeExceeded {
                reason,
                header: Ipv4Repr { payload_len: 1000, ..quoted_header() },
                data: &data,
            };
            assert_eq!(repr.buffer_len(), 548);
            let buf = round_trip(repr);
            assert_eq!(buf[..2], [11, reason.code()]);
            // The quoted header carries a valid checksum.
            assert!(Ipv4Packet::new_unchecked(&buf[8..28]).verify_checksum());
        }
    }

    #[test]
    fn every_dst_unreachable_code_round_trips() {
        let data = [1, 2, 3, 4, 5, 6, 7, 8];
        for code in 0..=255u8 {
            let reason = DstUnreachable::from_code(code, if code == 4 { 576 } else { 0 });
            assert_eq!(reason.code(), code);
            assert_eq!(reason == DstUnreachable::Other(code), code > 15);
            let repr = Icmpv4Repr::DstUnreachable { reason, header: quoted_header(), data: &data };
            let buf = round_trip(repr);
            assert_eq!(buf[1], code);
            if code != 4 {
                assert_eq!(&buf[4..8], &[0; 4], "unused field is zero");
            }
        }
    }

    #[test]
    fn echo_round_trip_empty_and_odd() {
        round_trip(Icmpv4Repr::EchoRequest { ident: 0, seq_no: 0xffff, data: &[] });
        round_trip(Icmpv4Repr::EchoReply { ident: 0xabcd, seq_no: 3, data: b"odd" });
    }

    #[test]
    fn emit_into_larger_buffer_checksums_only_the_message() {
        let repr = Icmpv4Repr::EchoRequest { ident: 1, seq_no: 2, data: b"abc" };
        let mut buf = [0x55u8; 32];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]));
        let p = Icmpv4Packet::new_checked(&buf[..repr.buffer_len()]).unwrap();
        assert_eq!(Icmpv4Repr::parse(&p, true).unwrap(), repr);
    }

    #[test]
    fn validation() {
        for len in 0..HEADER_LEN {
            assert_eq!(Icmpv4Packet::new_checked(&PING[20..20 + len]).unwrap_err(), Error::Truncated);
        }
        // Checksum.
        let mut buf = PING[20..].to_vec();
        buf[30] ^= 0x01;
        let p = Icmpv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(Icmpv4Repr::parse(&p, true), Err(Error::Checksum));
        assert!(Icmpv4Repr::parse(&p, false).is_ok());
        // Unsupported types: timestamp (13), redirect (5), source quench (4).
        for t in [13u8, 5, 4, 255] {
            let mut buf = PING[20..].to_vec();
            buf[0] = t;
            let mut p = Icmpv4Packet::new_unchecked(&mut buf[..]);
            p.fill_checksum();
            let p = Icmpv4Packet::new_checked(&buf[..]).unwrap();
            assert_eq!(Icmpv4Repr::parse(&p, true), Err(Error::Unsupported));
        }
        // Time exceeded with an undefined code.
        let mut buf = PORT_UNREACHABLE.to_vec();
        buf[0] = 11;
        buf[1] = 2;
        let p = Icmpv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(Icmpv4Repr::parse(&p, false), Err(Error::Unsupported));

        let quoted = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut buf = PORT_UNREACHABLE.to_vec();
            f(&mut buf);
            let p = Icmpv4Packet::new_checked(&buf[..]).unwrap();
            Icmpv4Repr::parse(&p, false).map(|_| ())
        };
        // Quoted header cut short, or without its 8 bytes of payload.
        assert_eq!(quoted(&|b| b.truncate(27)), Err(Error::Truncated));
        assert_eq!(quoted(&|b| b.truncate(35)), Err(Error::Truncated));
        assert_eq!(quoted(&|b| b.truncate(8)), Err(Error::Truncated));
        // But fewer than 8 are fine when the original payload was shorter.
        assert_eq!(
            quoted(&|b| {
                b[10..12].copy_from_slice(&23u16.to_be_bytes());
                b.truncate(31);
            }),
            Ok(())
        );
        // And more than 8 are kept.
        assert_eq!(quoted(&|b| b.extend_from_slice(&[0; 29])), Ok(()));
        // Quoted header not IPv4, IHL too small, IHL past the data, total
        // length below the header.
        assert_eq!(quoted(&|b| b[8] = 0x65), Err(Error::Malformed));
        assert_eq!(quoted(&|b| b[8] = 0x44), Err(Error::Malformed));
        assert_eq!(quoted(&|b| b[8] = 0x4f), Err(Error::Truncated));
        assert_eq!(quoted(&|b| b[10..12].copy_from_slice(&19u16.to_be_bytes())), Err(Error::Malformed));
        // A quoted header with options (IHL 6) is read, options skipped.
        let mut buf = PORT_UNREACHABLE[..28].to_vec();
        buf[8] = 0x46;
        buf.extend_from_slice(&[1, 1, 1, 0]);
        buf.extend_from_slice(&PORT_UNREACHABLE[28..]);
        let p = Icmpv4Packet::new_checked(&buf[..]).unwrap();
        let Ok(Icmpv4Repr::DstUnreachable { header, data, .. }) = Icmpv4Repr::parse(&p, false) else { panic!() };
        assert_eq!(header.payload_len, 57 - 24);
        assert_eq!(data, &PORT_UNREACHABLE[28..]);
    }
}
