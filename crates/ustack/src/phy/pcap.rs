//! Packet capture files: the classic pcap format (as libpcap writes it),
//! which tcpdump, tshark and Wireshark read, and a reader for pcapng (what
//! Wireshark and dumpcap write by default).
//!
//! A pcap file is a 24-byte global header and then, per packet, a 16-byte
//! record header and the bytes. [`PcapWriter`] writes microsecond
//! timestamps (magic `0xa1b2c3d4`), little-endian. [`open_capture`] reads
//! either format, whichever the file turns out to be.

use std::io::{self, Read, Write};
use std::path::Path;
use ustack_core::time::Instant;

/// Link-layer header types (tcpdump.org/linktypes.html).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkType {
    /// LINKTYPE_ETHERNET: Ethernet II frames.
    Ethernet,
    /// LINKTYPE_RAW: bare IPv4/IPv6 packets (TUN).
    Raw,
    /// LINKTYPE_LINUX_SLL: Linux "cooked" capture, v1 (`tcpdump -i any`).
    LinuxSll,
    /// LINKTYPE_LINUX_SLL2: Linux "cooked" capture, v2 (newer `tcpdump -i any`).
    LinuxSll2,
    /// Any other value, as read from a file.
    Other(u32),
}

impl LinkType {
    pub fn code(self) -> u32 {
        match self {
            LinkType::Ethernet => 1,
            LinkType::Raw => 101,
            LinkType::LinuxSll => 113,
            LinkType::LinuxSll2 => 276,
            LinkType::Other(v) => v,
        }
    }
    pub fn from_code(v: u32) -> Self {
        match v {
            1 => LinkType::Ethernet,
            // LINKTYPE_RAW, LINKTYPE_IPV4, and DLT_RAW's values on some
            // systems.
            101 | 228 | 12 | 14 => LinkType::Raw,
            113 => LinkType::LinuxSll,
            276 => LinkType::LinuxSll2,
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
    /// How `data` begins (in pcapng, each interface has its own).
    pub link: LinkType,
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
            _ if magic_le == BLOCK_SHB => return Err(bad("this is a pcapng file; open it with open_capture")),
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
        Ok(Some(PcapPacket { time: Instant::from_nanos(nanos), data, orig_len, link: self.link }))
    }
}

/// pcapng block types (IETF draft-ietf-opsawg-pcapng).
const BLOCK_SHB: u32 = 0x0a0d_0d0a;
const BLOCK_IDB: u32 = 0x0000_0001;
const BLOCK_OPB: u32 = 0x0000_0002;
const BLOCK_SPB: u32 = 0x0000_0003;
const BLOCK_EPB: u32 = 0x0000_0006;
const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;
/// Interface options: timestamp resolution and offset.
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;
/// No block of a sane capture is this long.
const MAX_BLOCK: usize = 64 * 1024 * 1024;

/// One interface of a pcapng section.
#[derive(Clone, Copy, Debug)]
struct Interface {
    link: LinkType,
    snaplen: u32,
    /// `if_tsresol`: the top bit says a power of two, else of ten.
    tsresol: u8,
    /// `if_tsoffset`: seconds added to every timestamp.
    tsoffset: i64,
}

impl Interface {
    /// A timestamp in the interface's units, in nanoseconds.
    fn nanos(&self, ts: u64) -> u64 {
        let n = if self.tsresol & 0x80 != 0 {
            let shift = u32::from(self.tsresol & 0x7f).min(127);
            ((u128::from(ts) * 1_000_000_000) >> shift) as u64
        } else {
            let digits = u32::from(self.tsresol);
            if digits <= 9 {
                ts.saturating_mul(10u64.pow(9 - digits))
            } else {
                ts / 10u64.checked_pow(digits - 9).unwrap_or(u64::MAX)
            }
        };
        let off = self.tsoffset.saturating_mul(1_000_000_000);
        if off >= 0 { n.saturating_add(off as u64) } else { n.saturating_sub(off.unsigned_abs()) }
    }
}

/// Reads pcapng: Section Header, Interface Description, Enhanced Packet,
/// Simple Packet and (obsolete) Packet blocks, in either byte order, with
/// each interface's `if_tsresol` and `if_tsoffset`. Other blocks (name
/// resolution, statistics, custom, ...) are skipped.
pub struct PcapngReader<R: Read> {
    input: R,
    big_endian: bool,
    interfaces: Vec<Interface>,
    /// The time of the last packet, for Simple Packet Blocks (which have
    /// none).
    last_time: Instant,
    /// A packet read while looking for the first interface.
    pending: Option<PcapPacket>,
}

impl<R: Read> PcapngReader<R> {
    /// Reads the Section Header Block and the blocks up to the first
    /// interface, whose link type becomes [`Self::link_type`].
    pub fn new(mut input: R) -> io::Result<Self> {
        let mut h = [0u8; 8];
        input.read_exact(&mut h).map_err(|_| bad("too short for a pcapng file"))?;
        if u32::from_le_bytes([h[0], h[1], h[2], h[3]]) != BLOCK_SHB {
            return Err(bad("not a pcapng file (no section header block)"));
        }
        let mut r =
            PcapngReader { input, big_endian: false, interfaces: Vec::new(), last_time: Instant::ZERO, pending: None };
        r.read_section_header([h[4], h[5], h[6], h[7]])?;
        // Reading the first packet reads the interfaces before it.
        r.pending = r.next_packet()?;
        Ok(r)
    }

    /// The first interface's link type (Ethernet if the file has none).
    pub fn link_type(&self) -> LinkType {
        self.interfaces.first().map_or(LinkType::Ethernet, |i| i.link)
    }

    fn u16_at(&self, b: &[u8]) -> u16 {
        if self.big_endian { u16::from_be_bytes([b[0], b[1]]) } else { u16::from_le_bytes([b[0], b[1]]) }
    }

    fn u32_at(&self, b: &[u8]) -> u32 {
        if self.big_endian {
            u32::from_be_bytes([b[0], b[1], b[2], b[3]])
        } else {
            u32::from_le_bytes([b[0], b[1], b[2], b[3]])
        }
    }

    /// The rest of a Section Header Block, its type already read: learns
    /// the byte order from the magic and forgets the previous section's
    /// interfaces.
    fn read_section_header(&mut self, len: [u8; 4]) -> io::Result<()> {
        let mut h = [len[0], len[1], len[2], len[3], 0, 0, 0, 0];
        self.input.read_exact(&mut h[4..]).map_err(|_| bad("truncated section header block"))?;
        self.big_endian =
            match (u32::from_le_bytes([h[4], h[5], h[6], h[7]]), u32::from_be_bytes([h[4], h[5], h[6], h[7]])) {
                (BYTE_ORDER_MAGIC, _) => false,
                (_, BYTE_ORDER_MAGIC) => true,
                _ => return Err(bad("pcapng section header with an unknown byte-order magic")),
            };
        let len = self.u32_at(&h[0..4]) as usize;
        if !(28..=MAX_BLOCK).contains(&len) {
            return Err(bad(format!("pcapng section header of {len} bytes is not plausible")));
        }
        let mut rest = vec![0u8; len - 12];
        self.input.read_exact(&mut rest).map_err(|_| bad("truncated section header block"))?;
        let major = self.u16_at(&rest[0..2]);
        if major != 1 {
            return Err(bad(format!("pcapng version {major} is not supported")));
        }
        self.interfaces.clear();
        Ok(())
    }

    /// The options of a block body, as (code, value) pairs.
    fn options<'a>(&self, mut b: &'a [u8]) -> Vec<(u16, &'a [u8])> {
        let mut out = Vec::new();
        while b.len() >= 4 {
            let code = self.u16_at(&b[0..2]);
            let len = self.u16_at(&b[2..4]) as usize;
            if code == 0 || b.len() < 4 + len {
                break;
            }
            out.push((code, &b[4..4 + len]));
            b = &b[(4 + len.next_multiple_of(4)).min(b.len())..];
        }
        out
    }

    fn interface(&self, id: u32) -> io::Result<Interface> {
        self.interfaces
            .get(id as usize)
            .copied()
            .ok_or_else(|| bad(format!("pcapng packet on interface {id}, which the section does not describe")))
    }

    /// The next packet, `Ok(None)` at the end of the file.
    pub fn next_packet(&mut self) -> io::Result<Option<PcapPacket>> {
        if let Some(p) = self.pending.take() {
            return Ok(Some(p));
        }
        loop {
            let mut h = [0u8; 8];
            match read_full(&mut self.input, &mut h)? {
                0 => return Ok(None),
                8 => {}
                _ => return Err(bad("truncated pcapng block header")),
            }
            if u32::from_le_bytes([h[0], h[1], h[2], h[3]]) == BLOCK_SHB {
                // A new section (files may be concatenated); its byte
                // order may differ.
                self.read_section_header([h[4], h[5], h[6], h[7]])?;
                continue;
            }
            let kind = self.u32_at(&h[0..4]);
            let len = self.u32_at(&h[4..8]) as usize;
            if !(12..=MAX_BLOCK).contains(&len) {
                return Err(bad(format!("pcapng block of {len} bytes is not plausible")));
            }
            // The body and the trailing copy of the length.
            let mut body = vec![0u8; len - 8];
            self.input.read_exact(&mut body).map_err(|_| bad("truncated pcapng block"))?;
            body.truncate(len - 12);
            match kind {
                BLOCK_IDB => {
                    if body.len() < 8 {
                        return Err(bad("short interface description block"));
                    }
                    let mut i = Interface {
                        link: LinkType::from_code(u32::from(self.u16_at(&body[0..2]))),
                        snaplen: self.u32_at(&body[4..8]),
                        tsresol: 6,
                        tsoffset: 0,
                    };
                    for (code, v) in self.options(&body[8..]) {
                        match code {
                            OPT_IF_TSRESOL if !v.is_empty() => i.tsresol = v[0],
                            OPT_IF_TSOFFSET if v.len() == 8 => {
                                let b: [u8; 8] = v.try_into().unwrap_or_default();
                                i.tsoffset =
                                    if self.big_endian { i64::from_be_bytes(b) } else { i64::from_le_bytes(b) };
                            }
                            _ => {}
                        }
                    }
                    self.interfaces.push(i);
                }
                BLOCK_EPB | BLOCK_OPB => {
                    if body.len() < 20 {
                        return Err(bad("short packet block"));
                    }
                    let id =
                        if kind == BLOCK_EPB { self.u32_at(&body[0..4]) } else { u32::from(self.u16_at(&body[0..2])) };
                    let iface = self.interface(id)?;
                    let ts = (u64::from(self.u32_at(&body[4..8])) << 32) | u64::from(self.u32_at(&body[8..12]));
                    let caplen = self.u32_at(&body[12..16]) as usize;
                    let orig_len = self.u32_at(&body[16..20]);
                    if 20 + caplen > body.len() {
                        return Err(bad("pcapng packet longer than its block"));
                    }
                    let time = Instant::from_nanos(iface.nanos(ts));
                    self.last_time = time;
                    let data = body[20..20 + caplen].to_vec();
                    return Ok(Some(PcapPacket { time, data, orig_len, link: iface.link }));
                }
                BLOCK_SPB => {
                    if body.len() < 4 {
                        return Err(bad("short simple packet block"));
                    }
                    let iface = self.interface(0)?;
                    let orig_len = self.u32_at(&body[0..4]);
                    let mut caplen = (orig_len as usize).min(body.len() - 4);
                    if iface.snaplen != 0 {
                        caplen = caplen.min(iface.snaplen as usize);
                    }
                    let data = body[4..4 + caplen].to_vec();
                    return Ok(Some(PcapPacket { time: self.last_time, data, orig_len, link: iface.link }));
                }
                _ => {}
            }
        }
    }
}

/// A capture file of either format, read packet by packet.
pub enum Capture<R: Read> {
    Pcap(PcapReader<R>),
    Pcapng(PcapngReader<R>),
}

impl<R: Read> Capture<R> {
    /// The link type of the file (for pcapng: of its first interface;
    /// each packet carries its own).
    pub fn link_type(&self) -> LinkType {
        match self {
            Capture::Pcap(r) => r.link_type(),
            Capture::Pcapng(r) => r.link_type(),
        }
    }
}

impl<R: Read> Capture<io::Chain<io::Cursor<[u8; 4]>, R>> {
    /// Recognizes the format by its first four bytes.
    pub fn from_reader(mut input: R) -> io::Result<Self> {
        let mut magic = [0u8; 4];
        input.read_exact(&mut magic).map_err(|_| bad("too short for a capture file"))?;
        let chained = io::Cursor::new(magic).chain(input);
        if u32::from_le_bytes(magic) == BLOCK_SHB {
            Ok(Capture::Pcapng(PcapngReader::new(chained)?))
        } else {
            Ok(Capture::Pcap(PcapReader::new(chained)?))
        }
    }
}

impl<R: Read> Iterator for Capture<R> {
    type Item = io::Result<PcapPacket>;
    fn next(&mut self) -> Option<Self::Item> {
        let r = match self {
            Capture::Pcap(r) => r.next_packet(),
            Capture::Pcapng(r) => r.next_packet(),
        };
        r.transpose()
    }
}

/// The file a capture reader reads.
pub type CaptureFile = Capture<io::Chain<io::Cursor<[u8; 4]>, io::BufReader<std::fs::File>>>;

/// Opens a pcap or pcapng file (from ustack, tcpdump, dumpcap or
/// Wireshark): an iterator of its packets, with the file's link type.
pub fn open_capture(path: impl AsRef<Path>) -> io::Result<CaptureFile> {
    let path = path.as_ref();
    let file = std::fs::File::open(path)?;
    Capture::from_reader(io::BufReader::new(file))
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

    /// A pcapng block in the given byte order, padded to a word.
    fn block(be: bool, kind: u32, body: &[u8]) -> Vec<u8> {
        let w32 = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let mut padded = body.to_vec();
        padded.resize(body.len().next_multiple_of(4), 0);
        let len = (12 + padded.len()) as u32;
        let mut b = Vec::new();
        b.extend_from_slice(&w32(kind));
        b.extend_from_slice(&w32(len));
        b.extend_from_slice(&padded);
        b.extend_from_slice(&w32(len));
        b
    }

    fn pcapng(be: bool) -> Vec<u8> {
        let w16 = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let w32 = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let mut shb = Vec::new();
        shb.extend_from_slice(&w32(BYTE_ORDER_MAGIC));
        shb.extend_from_slice(&w16(1));
        shb.extend_from_slice(&w16(0));
        shb.extend_from_slice(&[0xff; 8]); // section length unknown
        let mut f = block(be, BLOCK_SHB, &shb);
        // Interface 0: raw IPv4, nanosecond timestamps, 1 s offset.
        let mut idb = Vec::new();
        idb.extend_from_slice(&w16(101));
        idb.extend_from_slice(&w16(0));
        idb.extend_from_slice(&w32(0));
        idb.extend_from_slice(&w16(OPT_IF_TSRESOL));
        idb.extend_from_slice(&w16(1));
        idb.extend_from_slice(&[9, 0, 0, 0]);
        idb.extend_from_slice(&w16(OPT_IF_TSOFFSET));
        idb.extend_from_slice(&w16(8));
        idb.extend_from_slice(&if be { 1i64.to_be_bytes() } else { 1i64.to_le_bytes() });
        idb.extend_from_slice(&[0, 0, 0, 0]); // opt_endofopt
        f.extend(block(be, BLOCK_IDB, &idb));
        // Interface 1: Linux cooked v2, default microseconds.
        let mut idb = Vec::new();
        idb.extend_from_slice(&w16(276));
        idb.extend_from_slice(&w16(0));
        idb.extend_from_slice(&w32(65535));
        f.extend(block(be, BLOCK_IDB, &idb));
        // A name resolution block nobody reads.
        f.extend(block(be, 4, &[0, 0, 0, 0]));
        let epb = |iface: u32, ts: u64, data: &[u8]| {
            let mut b = Vec::new();
            b.extend_from_slice(&w32(iface));
            b.extend_from_slice(&w32((ts >> 32) as u32));
            b.extend_from_slice(&w32(ts as u32));
            b.extend_from_slice(&w32(data.len() as u32));
            b.extend_from_slice(&w32(data.len() as u32 + 10));
            b.extend_from_slice(data);
            block(be, BLOCK_EPB, &b)
        };
        f.extend(epb(0, 2_500_000_123, b"hello"));
        f.extend(epb(1, 7_000_001, b"cooked!"));
        let mut spb = Vec::new();
        spb.extend_from_slice(&w32(3));
        spb.extend_from_slice(b"abc");
        f.extend(block(be, BLOCK_SPB, &spb));
        // An interface statistics block, skipped.
        f.extend(block(be, 5, &[0; 12]));
        f
    }

    #[test]
    fn pcapng_both_byte_orders() {
        for be in [false, true] {
            let bytes = pcapng(be);
            let cap = Capture::from_reader(&bytes[..]).unwrap();
            assert!(matches!(cap, Capture::Pcapng(_)));
            assert_eq!(cap.link_type(), LinkType::Raw);
            let pkts: Vec<PcapPacket> = cap.map(|p| p.unwrap()).collect();
            assert_eq!(pkts.len(), 3, "big endian: {be}");
            assert_eq!(pkts[0].data, b"hello");
            assert_eq!(pkts[0].time, Instant::from_nanos(3_500_000_123));
            assert_eq!(pkts[0].orig_len, 15);
            assert_eq!(pkts[0].link, LinkType::Raw);
            assert_eq!(pkts[1].data, b"cooked!");
            assert_eq!(pkts[1].time, Instant::from_micros(7_000_001));
            assert_eq!(pkts[1].link, LinkType::LinuxSll2);
            // A simple packet block: interface 0, no timestamp of its own.
            assert_eq!(pkts[2].data, b"abc");
            assert_eq!(pkts[2].link, LinkType::Raw);
        }
    }

    #[test]
    fn pcapng_sections_may_change_byte_order() {
        let mut bytes = pcapng(false);
        bytes.extend(pcapng(true));
        let n = Capture::from_reader(&bytes[..]).unwrap().collect::<io::Result<Vec<_>>>().unwrap().len();
        assert_eq!(n, 6);
    }

    #[test]
    fn pcapng_power_of_two_resolution() {
        let i = Interface { link: LinkType::Ethernet, snaplen: 0, tsresol: 0x80 | 10, tsoffset: 0 };
        assert_eq!(i.nanos(1024 * 3), 3_000_000_000);
        let i = Interface { tsresol: 3, ..i };
        assert_eq!(i.nanos(1500), 1_500_000_000);
        let i = Interface { tsresol: 12, ..i };
        assert_eq!(i.nanos(1_000_000), 1_000);
    }

    #[test]
    fn pcapng_garbage_is_an_error_not_a_panic() {
        let bytes = pcapng(false);
        for cut in 0..bytes.len() {
            if let Ok(cap) = Capture::from_reader(&bytes[..cut]) {
                for p in cap {
                    if p.is_err() {
                        break;
                    }
                }
            }
        }
        let mut bad_len = pcapng(false);
        bad_len[4] = 3;
        assert!(Capture::from_reader(&bad_len[..]).is_err());
    }

    #[test]
    fn classic_pcap_through_open_capture() {
        let mut w = PcapWriter::new(Vec::new(), LinkType::LinuxSll).unwrap();
        w.write_packet(Instant::from_secs(1), b"x").unwrap();
        let path = std::env::temp_dir().join(format!("ustack-pcap-test-{}.pcap", std::process::id()));
        std::fs::write(&path, w.into_inner()).unwrap();
        let cap = open_capture(&path).unwrap();
        assert_eq!(cap.link_type(), LinkType::LinuxSll);
        let pkts: Vec<_> = cap.collect::<io::Result<Vec<_>>>().unwrap();
        assert_eq!(pkts.len(), 1);
        assert_eq!(pkts[0].link, LinkType::LinuxSll);
        let _ = std::fs::remove_file(&path);
    }
}
