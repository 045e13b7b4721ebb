//! Packet formats.
//!
//! Each format comes in two parts:
//! - a zero-copy view `XxxPacket<T: AsRef<[u8]>>` over a buffer, built with
//!   `new_checked` (which validates every length the accessors rely on, so
//!   no accessor can then index out of bounds) or `new_unchecked`; getters
//!   for every field, setters when `T: AsMut<[u8]>`;
//! - a small `XxxRepr` value with the fields that matter, produced by
//!   `XxxRepr::parse` from a checked view and written back by `emit` into a
//!   buffer of at least `buffer_len()` bytes (header; payloads are copied by
//!   the caller, so nothing is copied twice).
//!
//! No sequence of bytes can make a parser panic: every parser is exercised
//! with random and mutated input by `tests/wire_fuzz.rs`.

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmpv4;
pub mod ipv4;
pub mod tcp;
pub mod udp;

use core::fmt;

pub use arp::{ArpOperation, ArpPacket, ArpRepr};
pub use ethernet::{EtherType, EthernetAddress, EthernetFrame, EthernetRepr};
pub use icmpv4::{DstUnreachable, Icmpv4Packet, Icmpv4Repr, TimeExceeded};
pub use ipv4::{IpProtocol, Ipv4Cidr, Ipv4Packet, Ipv4Repr};
pub use tcp::{FastOpenCookie, TcpFlags, TcpOptions, TcpPacket, TcpRepr};
pub use udp::{UdpPacket, UdpRepr};

/// Why a packet could not be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Error {
    /// Shorter than a header or than a length field claims.
    Truncated,
    /// A field holds a value the format does not allow.
    Malformed,
    /// The checksum does not match.
    Checksum,
    /// Well formed, but a variant this stack does not handle.
    Unsupported,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Truncated => "truncated",
            Error::Malformed => "malformed",
            Error::Checksum => "bad checksum",
            Error::Unsupported => "unsupported",
        })
    }
}

impl std::error::Error for Error {}

pub type Result<T> = core::result::Result<T, Error>;

/// Whether checksums are verified on input and filled in on output.
///
/// Software everywhere by default; a device with checksum offload may turn
/// either side off (TUN with `IFF_VNET_HDR`). With `fill_tx` off, IPv4,
/// UDP and TCP go out with a zero checksum field for the device to fill
/// in; with `verify_rx` off, nothing arriving is verified. Only a link that
/// really does the work (or, like two stacks handing packets to each other
/// in memory, cannot corrupt them) may turn these off: a stack that
/// verifies drops every segment from one that does not fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChecksumCaps {
    pub verify_rx: bool,
    pub fill_tx: bool,
}

impl Default for ChecksumCaps {
    fn default() -> Self {
        ChecksumCaps { verify_rx: true, fill_tx: true }
    }
}

/// Big-endian field access with bounds already checked by `new_checked`.
pub(crate) fn get_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
pub(crate) fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
pub(crate) fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}
pub(crate) fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}
