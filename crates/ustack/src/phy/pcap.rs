//! The classic pcap file format (as libpcap writes it), which tcpdump,
//! tshark and Wireshark read.
//!
//! A file is a 24-byte global header and then, per packet, a 16-byte record
//! header and the bytes. Timestamps here have microsecond resolution
//! (magic `0xa1b2c3d4`), written little-endian.

use std::io::{self, Read, Write};
use ustack_core::time::Instant;

/// Link-layer header types (tcpdump.org/linktypes.html).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkType {
    /// LINKTYPE_ETHERNET: Ethernet II frames.
    Ethernet,
    /// LINKTYPE_RAW: bare IPv4/IPv6 packets (TUN).
    Raw,
    /// Any other value, as read from a file.
    Other(u32),
}

impl LinkType {
    pub fn code(self) -> u32 {
        match self {
            LinkType::Ethernet => 1,
            LinkType::Raw => 101,
            LinkType::Other(v) => v,
        }
    }
    pub fn from_code(v: u32) -> Self {
        match v {
            1 => LinkType::Ethernet,
            101 | 228 | 12 | 14 => LinkType::Raw,
            other => LinkType::Other(other),
        }
    }
}

const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
const MAGIC_NANOS: u32 = 0xa1b2_3c4d;
const SNAPLEN: u32 = 262_144;

/// Writes packets to a pcap stream.
pub struct PcapWriter<W: Write> {
    out: W,
    packets: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header.
    pub fn new(mut out: W, link: LinkType) -> io::Result<Self> {
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&MAGIC_MICROS.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone and sigfigs: zero.
        h[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        h[20..24].copy_from_slice(&link.code().to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter { out, packets: 0 })
    }

    /// Appends one packet seen at `time` (seconds since the epoch of the
    /// run: the simulator starts at zero, the driver at the Unix epoch).
    pub fn write_packet(&mut self, time: Instant, data: &[u8]) -> io::Result<()> {
        let len = data.len().min(SNAPLEN as usize);
        let micros = time.as_micros();
        let mut r = [0u8; 16];
        r[0..4].copy_from_slice(&((micros / 1_000_000) as u32).to_le_bytes());
        r[4..8].copy_from_slice(&((micros % 1_000_000) as u32).to_le_bytes());
        r[8..12].copy_from_slice(&(len as u32).to_le_bytes());
        r[12..16].copy_from_slice(&(data.len() as u32).to_le_bytes());
        self.out.write_all(&r)?;
        self.out.write_all(&data[..len])?;
        self.packets += 1;
        Ok(())
    }

    pub fn packets(&self) -> u64 {
        self.packets
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// One packet read from a capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcapPacket {
    pub time: Instant,
    pub data: Vec<u8>,
    /// Length on the wire (may exceed `data` when the capture truncated).
    pub orig_len: u32,
}

/// Reads the classic pcap format, either byte order, micro- or nanosecond
/// timestamps.
pub struct PcapReader<R: Read> {
    input: R,
    big_endian: bool,
    nanos: bool,
    link: LinkType,
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

impl<R: Read> PcapReader<R> {
    pub fn new(mut input: R) -> io::Result<Self> {
        let mut h = [0u8; 24];
        input.read_exact(&mut h).map_err(|_| bad("too short for a pcap header"))?;
        let magic_le = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let magic_be = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let (big_endian, nanos) = match (magic_le, magic_be) {
            (MAGIC_MICROS, _) => (false, false),
            (MAGIC_NANOS, _) => (false, true),
            (_, MAGIC_MICROS) => (true, false),
            (_, MAGIC_NANOS) => (true, true),
            _ if magic_le == 0x0a0d_0d0a => return Err(bad("this is a pcapng file; save it as pcap")),
            _ => return Err(bad("not a pcap file (unknown magic number)")),
        };
        let rd = |b: &[u8]| {
            if big_endian {
                u32::from_be_bytes([b[0], b[1], b[2], b[3]])
            } else {
                u32::from_le_bytes([b[0], b[1], b[2], b[3]])
            }
        };
        let link = LinkType::from_code(rd(&h[20..24]) & 0x0fff_ffff);
        Ok(PcapReader { input, big_endian, nanos, link })
    }

    pub fn link_type(&self) -> LinkType {
        self.link
    }

    fn u32_at(&self, b: &[u8]) -> u32 {
        if self.big_endian {
            u32::from_be_bytes([b[0], b[1], b[2], b[3]])
        } else {
            u32::from_le_bytes([b[0], b[1], b[2], b[3]])
        }
    }

    /// The next packet, `Ok(None)` at the end of the file.
    pub fn next_packet(&mut self) -> io::Result<Option<PcapPacket>> {
        let mut r = [0u8; 16];
        match read_full(&mut self.input, &mut r)? {
            0 => return Ok(None),
            16 => {}
            _ => return Err(bad("truncated packet record header")),
        }
        let secs = self.u32_at(&r[0..4]) as u64;
        let frac = self.u32_at(&r[4..8]) as u64;
        let incl = self.u32_at(&r[8..12]) as usize;
        let orig_len = self.u32_at(&r[12..16]);
        if incl > 16 * 1024 * 1024 {
            return Err(bad(format!("packet record of {incl} bytes is not plausible")));
        }
        let mut data = vec![0u8; incl];
        self.input.read_exact(&mut data).map_err(|_| bad("truncated packet data"))?;
        let nanos = secs * 1_000_000_000 + if self.nanos { frac } else { frac * 1000 };
        Ok(Some(PcapPacket { time: Instant::from_nanos(nanos), data, orig_len }))
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read_back() {
        let mut w = PcapWriter::new(Vec::new(), LinkType::Ethernet).unwrap();
        w.write_packet(Instant::from_micros(1_500_002), b"abc").unwrap();
        w.write_packet(Instant::from_secs(3), b"").unwrap();
        let bytes = w.into_inner();
        assert_eq!(&bytes[0..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(bytes.len(), 24 + 16 + 3 + 16);
        let mut r = PcapReader::new(&bytes[..]).unwrap();
        assert_eq!(r.link_type(), LinkType::Ethernet);
        let p = r.next_packet().unwrap().unwrap();
        assert_eq!(p.time, Instant::from_micros(1_500_002));
        assert_eq!(p.data, b"abc");
        assert_eq!(r.next_packet().unwrap().unwrap().time, Instant::from_secs(3));
        assert!(r.next_packet().unwrap().is_none());
    }

    #[test]
    fn rejects_garbage() {
        assert!(PcapReader::new(&b"hello world, not a pcap file"[..]).is_err());
        assert!(PcapReader::new(&b"short"[..]).is_err());
    }
}
