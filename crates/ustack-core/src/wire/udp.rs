//! UDP (RFC 768, RFC 1122 §4.1).

use super::{Error, Result, checksum, get_u16, put_u16};
use core::fmt;
use std::net::Ipv4Addr;

/// Length of the UDP header.
pub const HEADER_LEN: usize = 8;

/// The IPv4 protocol number of UDP, for the pseudo-header.
const PROTOCOL: u8 = 17;

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LENGTH: usize = 4;
    pub const CHECKSUM: usize = 6;
}

/// A zero-copy view of a UDP datagram (header and payload).
#[derive(Clone, Copy, Debug)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }

    /// Checks that the buffer holds the header and that the length field
    /// covers the header and fits in the buffer. Bytes past the length
    /// field are ignored.
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
        let field_len = self.length() as usize;
        if field_len < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if field_len > len {
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
    /// The length field: header plus payload, in bytes.
    pub fn length(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH)
    }
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }
    /// The bytes after the header, up to the length field.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.length() as usize]
    }

    /// Verifies the checksum over the pseudo-header and the datagram (up to
    /// the length field). A checksum field of zero means the sender
    /// computed none (RFC 768) and passes.
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let len = self.length();
        checksum::verify(checksum::pseudo_header(src, dst, PROTOCOL, len as u32), &self.buffer.as_ref()[..len as usize])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    pub fn set_src_port(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::SRC_PORT, v)
    }
    pub fn set_dst_port(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::DST_PORT, v)
    }
    pub fn set_length(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::LENGTH, v)
    }
    pub fn set_checksum(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::CHECKSUM, v)
    }
    /// The payload area, up to the length field.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let len = self.length() as usize;
        &mut self.buffer.as_mut()[HEADER_LEN..len]
    }
    /// Computes and stores the checksum over the pseudo-header and the
    /// datagram up to the length field. A computed zero is sent as all
    /// ones, since zero on the wire means "no checksum" (RFC 768).
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let len = self.length();
        let c = checksum::checksum(
            checksum::pseudo_header(src, dst, PROTOCOL, len as u32),
            &self.buffer.as_ref()[..len as usize],
        );
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }
}

/// The fields of a UDP header that matter; the length comes from the
/// payload and the checksum is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UdpRepr {
    pub src_port: u16,
    pub dst_port: u16,
}

impl UdpRepr {
    /// Reads the header of a checked datagram. The checksum is verified
    /// when `addrs` (source, destination) are given and the field is not
    /// zero (RFC 768: zero means the sender computed none, which IPv4
    /// allows; RFC 1122 §4.1.3.4). Destination port zero is reserved and
    /// `Malformed`; source port zero means "no reply port" and is accepted
    /// (RFC 768).
    pub fn parse<T: AsRef<[u8]>>(packet: &UdpPacket<T>, addrs: Option<(Ipv4Addr, Ipv4Addr)>) -> Result<UdpRepr> {
        if let Some((src, dst)) = addrs
            && !packet.verify_checksum(src, dst)
        {
            return Err(Error::Checksum);
        }
        if packet.dst_port() == 0 {
            return Err(Error::Malformed);
        }
        Ok(UdpRepr { src_port: packet.src_port(), dst_port: packet.dst_port() })
    }

    /// 8 bytes.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Header plus `payload_len` bytes.
    pub const fn buffer_len(&self, payload_len: usize) -> usize {
        HEADER_LEN + payload_len
    }

    /// Writes the header into the front of `packet`'s buffer, which must
    /// already hold `payload_len` bytes of payload after the header; the
    /// length field is `8 + payload_len` (which must fit in 16 bits). With
    /// `addrs` the checksum is computed; without, it is left zero ("none",
    /// or for a device with checksum offload to fill).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut UdpPacket<T>,
        payload_len: usize,
        addrs: Option<(Ipv4Addr, Ipv4Addr)>,
    ) {
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_length((HEADER_LEN + payload_len) as u16);
        match addrs {
            Some((src, dst)) => packet.fill_checksum(src, dst),
            None => packet.set_checksum(0),
        }
    }
}

impl fmt::Display for UdpRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UDP {}>{}", self.src_port, self.dst_port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 100);
    const DST: Ipv4Addr = Ipv4Addr::new(8, 8, 8, 8);

    /// A DNS query for `example.com` A from 192.168.1.100:53535 to
    /// 8.8.8.8:53, as a capture shows it; checksum computed by hand.
    const DNS_QUERY: [u8; 37] = [
        0xd1, 0x1f, 0x00, 0x35, 0x00, 0x25, 0xe0, 0xf7, // UDP header
        0xab, 0xcd, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // DNS header
        0x07, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 0x03, b'c', b'o', b'm', 0x00, // name
        0x00, 0x01, 0x00, 0x01, // type A, class IN
    ];

    #[test]
    fn parse_captured_dns_query() {
        let p = UdpPacket::new_checked(&DNS_QUERY[..]).unwrap();
        assert_eq!(p.src_port(), 53535);
        assert_eq!(p.dst_port(), 53);
        assert_eq!(p.length(), 37);
        assert_eq!(p.checksum(), 0xe0f7);
        assert_eq!(p.payload().len(), 29);
        assert_eq!(&p.payload()[..2], &[0xab, 0xcd]);
        assert!(p.verify_checksum(SRC, DST));
        assert!(!p.verify_checksum(DST, SRC.to_bits().wrapping_add(1).into()));
        let r = UdpRepr::parse(&p, Some((SRC, DST))).unwrap();
        assert_eq!(r, UdpRepr { src_port: 53535, dst_port: 53 });
        assert_eq!(r.to_string(), "UDP 53535>53");

        // Emitting over the same payload reproduces the datagram.
        let mut buf = DNS_QUERY;
        buf[..8].fill(0);
        r.emit(&mut UdpPacket::new_unchecked(&mut buf[..]), 29, Some((SRC, DST)));
        assert_eq!(buf, DNS_QUERY);
    }

    #[test]
    fn round_trip_and_padding() {
        let repr = UdpRepr { src_port: 0, dst_port: 9 };
        // The buffer is longer than the datagram (link padding).
        let mut buf = vec![0u8; repr.buffer_len(5) + 10];
        buf[8..13].copy_from_slice(b"hello");
        repr.emit(&mut UdpPacket::new_unchecked(&mut buf[..]), 5, Some((SRC, DST)));
        buf[13..].fill(0x77);
        let p = UdpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(p.payload(), b"hello");
        assert_eq!(UdpRepr::parse(&p, Some((SRC, DST))).unwrap(), repr);
        assert_eq!(repr.header_len(), 8);
    }

    #[test]
    fn zero_checksum_means_none() {
        let mut buf = DNS_QUERY;
        buf[6..8].fill(0);
        let p = UdpPacket::new_checked(&buf[..]).unwrap();
        assert!(UdpRepr::parse(&p, Some((SRC, DST))).is_ok());
        // emit without addresses sends no checksum.
        let mut buf = DNS_QUERY;
        UdpRepr { src_port: 1, dst_port: 2 }.emit(&mut UdpPacket::new_unchecked(&mut buf[..]), 29, None);
        assert_eq!(&buf[6..8], &[0, 0]);
    }

    #[test]
    fn computed_zero_is_sent_as_all_ones() {
        // Choose the payload so that the checksum comes out zero: with the
        // last word free, make the whole sum 0xffff.
        let repr = UdpRepr { src_port: 1000, dst_port: 2000 };
        let mut buf = [0u8; 10];
        repr.emit(&mut UdpPacket::new_unchecked(&mut buf[..]), 2, None);
        let partial = checksum::combine(checksum::pseudo_header(SRC, DST, PROTOCOL, 10), checksum::sum(&buf));
        buf[8..10].copy_from_slice(&(!partial).to_be_bytes());
        repr.emit(&mut UdpPacket::new_unchecked(&mut buf[..]), 2, Some((SRC, DST)));
        assert_eq!(&buf[6..8], &[0xff, 0xff]);
        let p = UdpPacket::new_checked(&buf[..]).unwrap();
        assert!(p.verify_checksum(SRC, DST));
        assert_eq!(UdpRepr::parse(&p, Some((SRC, DST))).unwrap(), repr);
    }

    #[test]
    fn validation() {
        for len in 0..HEADER_LEN {
            assert_eq!(UdpPacket::new_checked(&DNS_QUERY[..len]).unwrap_err(), Error::Truncated);
        }
        // Length field below the header.
        let mut buf = DNS_QUERY;
        buf[4..6].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(UdpPacket::new_checked(&buf[..]).unwrap_err(), Error::Malformed);
        // Length field past the buffer.
        assert_eq!(UdpPacket::new_checked(&DNS_QUERY[..36]).unwrap_err(), Error::Truncated);
        // Exactly a header.
        let mut buf = DNS_QUERY;
        buf[4..6].copy_from_slice(&8u16.to_be_bytes());
        assert!(UdpPacket::new_checked(&buf[..]).unwrap().payload().is_empty());
        // Bad checksum, caught only when asked.
        let mut buf = DNS_QUERY;
        buf[20] ^= 0x40;
        let p = UdpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(UdpRepr::parse(&p, Some((SRC, DST))), Err(Error::Checksum));
        assert!(UdpRepr::parse(&p, None).is_ok());
        // Destination port zero.
        let mut buf = DNS_QUERY;
        buf[2..4].fill(0);
        let p = UdpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(UdpRepr::parse(&p, None), Err(Error::Malformed));
    }
}
