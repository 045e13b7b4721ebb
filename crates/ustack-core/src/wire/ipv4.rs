//! IPv4 (RFC 791, RFC 1122 §3.2).

use core::fmt;
use core::str::FromStr;
use std::net::Ipv4Addr;

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
        Ipv4Cidr {
            address,
            prefix_len,
        }
    }
    pub const fn address(&self) -> Ipv4Addr {
        self.address
    }
    pub const fn prefix_len(&self) -> u8 {
        self.prefix_len
    }
    pub const fn netmask(&self) -> Ipv4Addr {
        let bits = if self.prefix_len == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix_len)
        };
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
            ParseCidrError(format!(
                "`{s}` has no prefix length: write it as ADDRESS/PREFIX, e.g. 10.7.0.2/24"
            ))
        })?;
        let address: Ipv4Addr = addr.parse().map_err(|_| {
            ParseCidrError(format!(
                "`{addr}` is not an IPv4 address (expected four numbers 0-255 like 10.7.0.2)"
            ))
        })?;
        let prefix_len: u8 = len.parse().ok().filter(|&n| n <= 32).ok_or_else(|| {
            ParseCidrError(format!(
                "`{len}` is not a prefix length: use a number from 0 to 32"
            ))
        })?;
        Ok(Ipv4Cidr {
            address,
            prefix_len,
        })
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
