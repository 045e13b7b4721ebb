//! Ethernet II frames (IEEE 802.3 with an EtherType, RFC 894).
//!
//! No 802.1Q: a VLAN-tagged frame simply has `EtherType::Unknown(0x8100)`.
//! The frame check sequence is the device's business and never reaches us.

use super::{Error, Result, get_u16, put_u16};
use core::fmt;
use core::str::FromStr;

/// Length of an Ethernet II header: destination, source, EtherType.
pub const HEADER_LEN: usize = 14;

mod field {
    use core::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: usize = 12;
}

/// A 48-bit MAC address.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EthernetAddress(pub [u8; 6]);

impl EthernetAddress {
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: EthernetAddress = EthernetAddress([0xff; 6]);

    /// The address in the first six bytes of `data`, which must hold them.
    pub fn from_bytes(data: &[u8]) -> EthernetAddress {
        let mut a = [0u8; 6];
        a.copy_from_slice(&data[..6]);
        EthernetAddress(a)
    }
    pub const fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }
    /// The I/G bit (least significant bit of the first octet) is set:
    /// a group address. The broadcast address is a multicast address.
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }
    /// An individual (not group) address.
    pub const fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }
    /// The U/L bit is set: locally administered, as ustack's own made-up
    /// addresses (`02:...`) are.
    pub const fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }
}

impl fmt::Display for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

impl fmt::Debug for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<[u8; 6]> for EthernetAddress {
    fn from(b: [u8; 6]) -> Self {
        EthernetAddress(b)
    }
}

impl From<EthernetAddress> for [u8; 6] {
    fn from(a: EthernetAddress) -> Self {
        a.0
    }
}

/// Why a MAC address string did not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseEthernetAddressError(pub String);

impl fmt::Display for ParseEthernetAddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseEthernetAddressError {}

impl FromStr for EthernetAddress {
    type Err = ParseEthernetAddressError;
    /// Parses six hexadecimal octets separated by `:` (or all by `-`), as in
    /// `02:00:00:00:00:01`.
    fn from_str(s: &str) -> core::result::Result<Self, ParseEthernetAddressError> {
        let err = || {
            ParseEthernetAddressError(format!(
                "`{s}` is not a MAC address: write six hex octets like 02:00:00:00:00:01"
            ))
        };
        let sep = if s.contains('-') { '-' } else { ':' };
        let mut out = [0u8; 6];
        let mut parts = s.split(sep);
        for o in out.iter_mut() {
            let p = parts.next().ok_or_else(err)?;
            if p.is_empty() || p.len() > 2 || !p.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(err());
            }
            *o = u8::from_str_radix(p, 16).map_err(|_| err())?;
        }
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(EthernetAddress(out))
    }
}

/// The EtherType field: what the payload is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EtherType {
    Ipv4,
    Arp,
    Unknown(u16),
}

impl From<u16> for EtherType {
    fn from(v: u16) -> Self {
        match v {
            0x0800 => EtherType::Ipv4,
            0x0806 => EtherType::Arp,
            other => EtherType::Unknown(other),
        }
    }
}

impl From<EtherType> for u16 {
    fn from(t: EtherType) -> u16 {
        match t {
            EtherType::Ipv4 => 0x0800,
            EtherType::Arp => 0x0806,
            EtherType::Unknown(v) => v,
        }
    }
}

impl fmt::Display for EtherType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EtherType::Ipv4 => f.write_str("IPv4"),
            EtherType::Arp => f.write_str("ARP"),
            EtherType::Unknown(v) => write!(f, "0x{v:04x}"),
        }
    }
}

/// A zero-copy view of an Ethernet II frame.
#[derive(Clone, Copy, Debug)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// Checks that the buffer holds the 14-byte header.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let f = Self::new_unchecked(buffer);
        f.check_len()?;
        Ok(f)
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

    /// Bytes needed for a frame with `payload_len` bytes of payload.
    pub const fn buffer_len(payload_len: usize) -> usize {
        HEADER_LEN + payload_len
    }

    pub fn dst_addr(&self) -> EthernetAddress {
        EthernetAddress::from_bytes(&self.buffer.as_ref()[field::DST])
    }
    pub fn src_addr(&self) -> EthernetAddress {
        EthernetAddress::from_bytes(&self.buffer.as_ref()[field::SRC])
    }
    pub fn ethertype(&self) -> EtherType {
        EtherType::from(get_u16(self.buffer.as_ref(), field::ETHERTYPE))
    }
    /// Everything after the header, including any padding a short frame
    /// carries (the IPv4 total length tells where the datagram ends).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    pub fn set_dst_addr(&mut self, a: EthernetAddress) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a.0)
    }
    pub fn set_src_addr(&mut self, a: EthernetAddress) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a.0)
    }
    pub fn set_ethertype(&mut self, t: EtherType) {
        put_u16(self.buffer.as_mut(), field::ETHERTYPE, t.into())
    }
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

/// The fields of an Ethernet II header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EthernetRepr {
    pub src: EthernetAddress,
    pub dst: EthernetAddress,
    pub ethertype: EtherType,
}

impl EthernetRepr {
    /// Reads the header of a checked frame. Every header is well formed;
    /// what to do with a foreign EtherType or address is the caller's call.
    pub fn parse<T: AsRef<[u8]>>(frame: &EthernetFrame<T>) -> Result<EthernetRepr> {
        Ok(EthernetRepr { src: frame.src_addr(), dst: frame.dst_addr(), ethertype: frame.ethertype() })
    }

    /// Header length: 14.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header into the front of `frame`'s buffer (at least 14
    /// bytes); the payload is the caller's.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut EthernetFrame<T>) {
        frame.set_dst_addr(self.dst);
        frame.set_src_addr(self.src);
        frame.set_ethertype(self.ethertype);
    }
}

impl fmt::Display for EthernetRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} > {} {}", self.src, self.dst, self.ethertype)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header of an ARP request laid out byte by byte as a capture
    /// shows it: broadcast destination, source 00:1b:21:3a:4f:9c,
    /// EtherType ARP; the frame is padded to the 60-byte minimum.
    const ARP_FRAME_HEADER: [u8; 14] =
        [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x1b, 0x21, 0x3a, 0x4f, 0x9c, 0x08, 0x06];

    #[test]
    fn address_display_and_parse() {
        let a = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
        assert_eq!(a.to_string(), "02:00:00:00:00:01");
        assert_eq!(format!("{a:?}"), "02:00:00:00:00:01");
        assert_eq!("02:00:00:00:00:01".parse::<EthernetAddress>().unwrap(), a);
        assert_eq!("2:0:0:0:0:1".parse::<EthernetAddress>().unwrap(), a);
        assert_eq!(
            "AA-bb-CC-dd-EE-ff".parse::<EthernetAddress>().unwrap(),
            EthernetAddress([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff])
        );
        for bad in [
            "",
            "02:00:00:00:00",
            "02:00:00:00:00:01:02",
            "02:00:00:00:00:1g",
            "02:00:00:00:00:001",
            "02:00:00:00::01",
            "+2:00:00:00:00:01",
            "02:00-00:00:00:01",
        ] {
            assert!(bad.parse::<EthernetAddress>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn address_classes() {
        assert!(EthernetAddress::BROADCAST.is_broadcast());
        assert!(EthernetAddress::BROADCAST.is_multicast());
        assert!(!EthernetAddress::BROADCAST.is_unicast());
        let mcast = EthernetAddress([0x01, 0x00, 0x5e, 0, 0, 1]);
        assert!(mcast.is_multicast() && !mcast.is_broadcast() && !mcast.is_unicast());
        let local = EthernetAddress([0x02, 0, 0, 0, 0, 1]);
        assert!(local.is_unicast() && local.is_local() && !local.is_multicast());
        let vendor = EthernetAddress([0x00, 0x1b, 0x21, 0x3a, 0x4f, 0x9c]);
        assert!(vendor.is_unicast() && !vendor.is_local());
    }

    #[test]
    fn ethertype_conversions() {
        assert_eq!(EtherType::from(0x0800), EtherType::Ipv4);
        assert_eq!(EtherType::from(0x0806), EtherType::Arp);
        assert_eq!(EtherType::from(0x8100), EtherType::Unknown(0x8100));
        for v in [0x0800u16, 0x0806, 0x86dd, 0x8100, 0] {
            assert_eq!(u16::from(EtherType::from(v)), v);
        }
        assert_eq!(EtherType::Unknown(0x86dd).to_string(), "0x86dd");
    }

    #[test]
    fn parse_captured_header() {
        let mut buf = [0u8; 60];
        buf[..14].copy_from_slice(&ARP_FRAME_HEADER);
        buf[14] = 0xab;
        let f = EthernetFrame::new_checked(&buf[..]).unwrap();
        assert_eq!(f.dst_addr(), EthernetAddress::BROADCAST);
        assert_eq!(f.src_addr().to_string(), "00:1b:21:3a:4f:9c");
        assert_eq!(f.ethertype(), EtherType::Arp);
        assert_eq!(f.payload().len(), 46);
        assert_eq!(f.payload()[0], 0xab);
        let r = EthernetRepr::parse(&f).unwrap();
        assert_eq!(r.ethertype, EtherType::Arp);
        assert_eq!(r.to_string(), "00:1b:21:3a:4f:9c > ff:ff:ff:ff:ff:ff ARP");
    }

    #[test]
    fn round_trip() {
        let repr = EthernetRepr {
            src: EthernetAddress([0x02, 0, 0, 0, 0, 1]),
            dst: EthernetAddress([0x02, 0, 0, 0, 0, 2]),
            ethertype: EtherType::Unknown(0x8100),
        };
        let mut buf = vec![0u8; repr.buffer_len() + 4];
        let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
        repr.emit(&mut f);
        f.payload_mut().copy_from_slice(b"data");
        let f = EthernetFrame::new_checked(&buf[..]).unwrap();
        assert_eq!(EthernetRepr::parse(&f).unwrap(), repr);
        assert_eq!(f.payload(), b"data");
        assert_eq!(&buf[12..14], &[0x81, 0x00]);
        assert_eq!(EthernetFrame::<&[u8]>::buffer_len(4), 18);
    }

    #[test]
    fn too_short() {
        for len in 0..HEADER_LEN {
            let buf = vec![0u8; len];
            assert_eq!(EthernetFrame::new_checked(&buf[..]).unwrap_err(), Error::Truncated);
        }
        assert!(EthernetFrame::new_checked(&[0u8; HEADER_LEN][..]).is_ok());
    }
}
