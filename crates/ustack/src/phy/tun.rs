//! TUN (IPv4 packets) and TAP (Ethernet frames) devices on Linux.
//!
//! [`TunDevice::open`] attaches to the interface of that name, creating it
//! if missing. An interface ustack created disappears when ustack exits
//! (it is not made persistent); one that existed is left as it was.
//!
//! When the kernel offers `IFF_VNET_HDR`, each packet carries a
//! virtio-net header and ustack enables checksum offload (`TUN_F_CSUM`):
//! the kernel may then hand over packets whose checksum is left to be
//! computed, which ustack trusts instead of verifying, and GSO super-packets
//! (`TUN_F_TSO4`), which ustack's TCP takes as one large segment.
//!
//! The other way, consecutive full-size segments of one connection that
//! the stack sends in one batch go to the kernel as one GSO super-packet
//! (TSO): one write instead of dozens, and the kernel's TCP takes it whole
//! (or cuts it, if it forwards it). See `Coalescer`.
//!
//! [`TunDevice::open_queues`] opens a multi-queue TUN device, one
//! [`TunDevice`] per queue, for one stack shard each
//! ([`crate::NetStack::start_shards`]), and installs the steering program
//! of the `steer` module, which sends each packet to the shard that holds
//! its connection or port.

use super::sys;
use super::{Device, DeviceStats, PartialChecksum, RxMeta};
use std::fs::File;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use ustack_core::stack::Medium;

/// Size of `struct virtio_net_hdr` (without `num_buffers`).
pub const VNET_HDR_LEN: usize = 10;
const VIRTIO_NET_HDR_F_NEEDS_CSUM: u8 = 1;
const VIRTIO_NET_HDR_F_DATA_VALID: u8 = 2;
const VIRTIO_NET_HDR_GSO_NONE: u8 = 0;
const VIRTIO_NET_HDR_GSO_TCPV4: u8 = 1;

/// How to open a device.
#[derive(Clone, Debug)]
pub struct TunOptions {
    pub name: String,
    /// TAP (Ethernet frames, ARP) instead of TUN (IP packets).
    pub tap: bool,
    pub mtu: usize,
    /// Use the virtio-net header and offloads when the kernel offers them.
    pub offload: bool,
}

pub struct TunDevice {
    file: File,
    name: String,
    medium: Medium,
    mtu: usize,
    vnet: bool,
    created: bool,
    gso: Coalescer,
    stats: DeviceStats,
}

impl TunDevice {
    pub fn open(opts: &TunOptions) -> io::Result<TunDevice> {
        Self::open_with(opts, 0)
    }

    /// Opens a multi-queue TUN device with `queues` queues, one device
    /// each, for one stack shard each (see
    /// [`ustack_core::stack::Shard`]), and installs the steering program
    /// that sends each packet to the queue of the shard that holds its
    /// connection or port (see the `steer` module). Needs root (loading
    /// the program takes `CAP_BPF`). TUN only: a TAP device's ARP would
    /// need one shard to answer for all.
    pub fn open_queues(opts: &TunOptions, queues: usize) -> io::Result<Vec<TunDevice>> {
        if opts.tap {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "multi-queue shards are for TUN devices, not TAP"));
        }
        if !(1..=u16::MAX as usize).contains(&queues) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{queues} queues: a multi-queue device has 1 to 65535"),
            ));
        }
        let first = Self::open_with(opts, sys::IFF_MULTI_QUEUE)?;
        let prog = sys::load_steering_program()?;
        sys::set_steering_program(first.file.as_raw_fd(), prog.as_raw_fd())?;
        // The other queues ask for what the first one got (the kernel
        // refuses a queue whose flags differ from the device's), and go
        // with the device as the first one does.
        let rest = TunOptions { offload: first.vnet, ..opts.clone() };
        let mut devices = vec![first];
        while devices.len() < queues {
            let mut d = Self::open_with(&rest, sys::IFF_MULTI_QUEUE)?;
            d.created = devices[0].created;
            devices.push(d);
        }
        Ok(devices)
    }

    /// Opens one queue of the device, `extra` added to the usual flags.
    fn open_with(opts: &TunOptions, extra: libc::c_short) -> io::Result<TunDevice> {
        if !Path::new("/dev/net/tun").exists() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "/dev/net/tun does not exist: load the tun module (modprobe tun)",
            ));
        }
        let existed = Path::new("/sys/class/net").join(&opts.name).exists();
        let base = if opts.tap { sys::IFF_TAP } else { sys::IFF_TUN } | sys::IFF_NO_PI | extra;
        let (file, name, vnet) = if opts.offload {
            match sys::open_tun(&opts.name, base | sys::IFF_VNET_HDR) {
                Ok((f, n)) => {
                    let features = sys::tun_features(f.as_raw_fd()).unwrap_or(0);
                    let ok = features & sys::IFF_VNET_HDR as libc::c_uint != 0
                        && sys::set_vnet_hdr_size(f.as_raw_fd(), VNET_HDR_LEN as libc::c_int).is_ok()
                        && sys::set_offload(f.as_raw_fd(), sys::TUN_F_CSUM | sys::TUN_F_TSO4).is_ok();
                    if ok {
                        (f, n, true)
                    } else {
                        drop(f);
                        let (f, n) = sys::open_tun(&opts.name, base).map_err(|e| explain(e, &opts.name))?;
                        (f, n, false)
                    }
                }
                // The interface exists without the header flag, or the
                // kernel lacks it: fall back to plain packets.
                Err(_) => {
                    let (f, n) = sys::open_tun(&opts.name, base).map_err(|e| explain(e, &opts.name))?;
                    (f, n, false)
                }
            }
        } else {
            let (f, n) = sys::open_tun(&opts.name, base).map_err(|e| explain(e, &opts.name))?;
            (f, n, false)
        };
        let medium = if opts.tap { Medium::Ethernet } else { Medium::Ip };
        Ok(TunDevice {
            file,
            name,
            medium,
            mtu: opts.mtu,
            vnet,
            created: !existed,
            gso: Coalescer::new(if opts.tap { ETH_HEADER } else { 0 }),
            stats: DeviceStats::default(),
        })
    }

    /// True when packets carry the virtio-net header (offloads on).
    pub fn offload(&self) -> bool {
        self.vnet
    }

    /// True when this process created the interface (it goes away with us).
    pub fn created(&self) -> bool {
        self.created
    }
}

fn explain(e: io::Error, name: &str) -> io::Error {
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "cannot open TUN/TAP device `{name}`: permission denied; run as root (sudo) or give the binary CAP_NET_ADMIN"
            ),
        ),
        Some(libc::EBUSY) => io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("device `{name}` is busy: another program has it open, or it is a different type (TUN vs TAP)"),
        ),
        Some(libc::EINVAL) => io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("device `{name}` exists but is not a TUN/TAP device of the requested type; choose another name"),
        ),
        _ => io::Error::new(e.kind(), format!("cannot open TUN/TAP device `{name}`: {e}")),
    }
}

impl Device for TunDevice {
    fn medium(&self) -> Medium {
        self.medium
    }
    fn mtu(&self) -> usize {
        self.mtu
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn poll_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<(usize, RxMeta)>> {
        if !self.vnet {
            return match self.file.read(buf) {
                Ok(n) => {
                    self.stats.rx_packets += 1;
                    Ok(Some((n, RxMeta::default())))
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
                Err(e) => Err(e),
            };
        }
        // The header and the packet land in their places in one read: the
        // packet straight into `buf`, not through a copy.
        let mut hdr = [0u8; VNET_HDR_LEN];
        let n = match self.file.read_vectored(&mut [IoSliceMut::new(&mut hdr), IoSliceMut::new(buf)]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(e),
        };
        if n < VNET_HDR_LEN {
            return Ok(Some((0, RxMeta::default())));
        }
        let flags = hdr[0];
        self.stats.rx_packets += 1;
        if hdr[1] != VIRTIO_NET_HDR_GSO_NONE {
            self.stats.rx_gso_packets += 1;
        }
        let len = n - VNET_HDR_LEN;
        // The kernel may leave the transport checksum to the "hardware";
        // it is computed only if something reads it (a capture), since
        // the stack trusts the packet either way: it came from this host
        // (NEEDS_CSUM) or the kernel verified it (DATA_VALID).
        let checksum_partial = (flags & VIRTIO_NET_HDR_F_NEEDS_CSUM != 0).then(|| PartialChecksum {
            start: u16::from_le_bytes([hdr[6], hdr[7]]),
            offset: u16::from_le_bytes([hdr[8], hdr[9]]),
        });
        let trusted = flags & (VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID) != 0;
        Ok(Some((len, RxMeta { checksum_trusted: trusted, checksum_partial })))
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        if !self.vnet {
            self.stats.tx_packets += 1;
            return write_dropping_when_full(&mut self.file, frame);
        }
        if self.gso.append(frame) {
            return Ok(());
        }
        // Not a continuation of what is held: that goes first, then this
        // frame starts a new super-packet, or goes alone.
        self.flush()?;
        if self.gso.append(frame) {
            return Ok(());
        }
        self.stats.tx_packets += 1;
        // A zeroed header: no offload asked, the packet is complete.
        let hdr = [0u8; VNET_HDR_LEN];
        dropped_when_full(self.file.write_vectored(&[IoSlice::new(&hdr), IoSlice::new(frame)]))
    }

    fn flush(&mut self) -> io::Result<()> {
        let Some((packet, segments)) = self.gso.finish() else { return Ok(()) };
        self.stats.tx_packets += 1;
        if segments > 1 {
            self.stats.tx_gso_packets += 1;
            self.stats.tx_gso_segments += segments as u64;
        }
        let r = write_dropping_when_full(&mut self.file, packet);
        self.gso.clear();
        r
    }

    fn stats(&self) -> DeviceStats {
        self.stats
    }
}

/// One write; a full queue drops the packet, like a busy link.
fn write_dropping_when_full(file: &mut File, packet: &[u8]) -> io::Result<()> {
    dropped_when_full(file.write(packet))
}

/// A write that found the queue full dropped its packet: not an error.
fn dropped_when_full(r: io::Result<usize>) -> io::Result<()> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(e),
    }
}

const ETH_HEADER: usize = 14;
const IP_HEADER: usize = 20;
/// The TCP flags a segment of a super-packet may carry: ACK, and PSH on
/// the last one. Anything else (SYN, FIN, RST, URG, ECE, CWR) goes alone.
const TCP_ACK: u8 = 0x10;
const TCP_PSH: u8 = 0x08;
/// The most segments one super-packet holds (Linux's TSO limit is 64 KiB
/// and, by default, 64 segments).
const MAX_SEGMENTS: usize = 64;

/// Builds a GSO super-packet (virtio-net header, then one IPv4/TCP header,
/// then the payloads of consecutive segments) out of the segments the
/// stack sends, for the kernel to take as it takes a TSO packet.
///
/// A segment joins the one held when it is the next in sequence of the
/// same connection and its headers are the same but for the sequence
/// number, the IP ID and the checksums (same ACK, window, options — the
/// timestamps of one batch are equal); every segment but the last has the
/// first one's size, which becomes the GSO size. As Linux does when it cuts
/// such a packet, PSH belongs to the last segment only; ustack only joins
/// segments that the kernel's cutting would give back exactly (the IP IDs
/// aside, which with DF set carry no meaning, RFC 6864).
struct Coalescer {
    /// Link header bytes before IP: 14 on TAP, 0 on TUN.
    link: usize,
    /// The virtio-net header, then the packet; `len` bytes in use.
    buf: Vec<u8>,
    len: usize,
    segments: usize,
    /// Payload bytes of the first segment (the GSO size), the TCP header
    /// length, and the sequence number the next segment must have.
    seg_size: usize,
    tcp_header: usize,
    next_seq: u32,
    /// The last segment was short or had PSH: nothing may follow it.
    closed: bool,
}

/// What the coalescer needs of a segment.
struct Segment {
    tcp_header: usize,
    payload: usize,
    seq: u32,
    psh: bool,
}

impl Coalescer {
    fn new(link: usize) -> Coalescer {
        Coalescer {
            link,
            buf: vec![0u8; VNET_HDR_LEN + 65536 + ETH_HEADER],
            len: 0,
            segments: 0,
            seg_size: 0,
            tcp_header: 0,
            next_seq: 0,
            closed: false,
        }
    }

    /// A plain IPv4/TCP data segment with only ACK (and PSH), no IP
    /// options, not a fragment.
    fn parse(&self, frame: &[u8]) -> Option<Segment> {
        let l = self.link;
        if l > 0 && frame.get(12..14)? != [0x08, 0x00] {
            return None;
        }
        let ip = frame.get(l..)?;
        if ip.len() < IP_HEADER + 20 || ip[0] != 0x45 || ip[9] != 6 {
            return None;
        }
        let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
        let frag = u16::from_be_bytes([ip[6], ip[7]]);
        if total != ip.len() || frag & 0x3fff != 0 {
            return None;
        }
        let tcp = &ip[IP_HEADER..];
        let tcp_header = (tcp[12] >> 4) as usize * 4;
        let flags = tcp[13];
        if tcp_header < 20 || tcp_header > tcp.len() || flags & !(TCP_ACK | TCP_PSH) != 0 || flags & TCP_ACK == 0 {
            return None;
        }
        let payload = tcp.len() - tcp_header;
        if payload == 0 {
            return None;
        }
        let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
        Some(Segment { tcp_header, payload, seq, psh: flags & TCP_PSH != 0 })
    }

    /// Takes `frame` into the super-packet being built, or starts one with
    /// it if none is; false if it cannot join (send what is held first).
    fn append(&mut self, frame: &[u8]) -> bool {
        let Some(seg) = self.parse(frame) else { return false };
        let l = self.link;
        let hdr = l + IP_HEADER + seg.tcp_header;
        if self.segments == 0 {
            let start = VNET_HDR_LEN;
            self.buf[start..start + frame.len()].copy_from_slice(frame);
            self.len = start + frame.len();
            self.segments = 1;
            self.seg_size = seg.payload;
            self.tcp_header = seg.tcp_header;
            self.next_seq = seg.seq.wrapping_add(seg.payload as u32);
            self.closed = seg.psh;
            return true;
        }
        let held = &self.buf[VNET_HDR_LEN..VNET_HDR_LEN + hdr.min(self.len - VNET_HDR_LEN)];
        let (ip, held_ip) = (&frame[l..], &held[l..]);
        let (tcp, held_tcp) = (&ip[IP_HEADER..], &held_ip[IP_HEADER..]);
        let fits = self.len + seg.payload <= self.buf.len() && self.len - VNET_HDR_LEN - l + seg.payload <= 65535;
        let same = !self.closed
            && fits
            && self.segments < MAX_SEGMENTS
            && seg.tcp_header == self.tcp_header
            && seg.payload <= self.seg_size
            && seg.seq == self.next_seq
            && frame[..l] == held[..l]
            // Version, TOS; flags (DF); TTL, protocol; addresses.
            && ip[..2] == held_ip[..2]
            && ip[6] & 0xe0 == held_ip[6] & 0xe0
            && ip[8..10] == held_ip[8..10]
            && ip[12..20] == held_ip[12..20]
            // Ports; ACK number; data offset; window; urgent pointer;
            // options. The flags were checked by `parse` (and PSH closes).
            && tcp[..4] == held_tcp[..4]
            && tcp[8..13] == held_tcp[8..13]
            && tcp[14..16] == held_tcp[14..16]
            && tcp[18..seg.tcp_header] == held_tcp[18..seg.tcp_header];
        if !same {
            return false;
        }
        let payload = &frame[hdr..];
        self.buf[self.len..self.len + payload.len()].copy_from_slice(payload);
        self.len += payload.len();
        self.segments += 1;
        self.next_seq = self.next_seq.wrapping_add(seg.payload as u32);
        if seg.psh || seg.payload < self.seg_size {
            self.closed = true;
        }
        if seg.psh {
            // PSH goes on the last segment (the kernel's cutting gives it
            // to the last one only).
            self.buf[VNET_HDR_LEN + l + IP_HEADER + 13] |= TCP_PSH;
        }
        true
    }

    /// The packet to write (virtio-net header included) and the number of
    /// segments in it; the caller then calls [`Coalescer::clear`].
    fn finish(&mut self) -> Option<(&[u8], usize)> {
        if self.segments == 0 {
            return None;
        }
        let (l, segments) = (self.link, self.segments);
        let hdr_len = l + IP_HEADER + self.tcp_header;
        let (vnet, packet) = self.buf[..self.len].split_at_mut(VNET_HDR_LEN);
        vnet.fill(0);
        if segments > 1 {
            // The IP header now covers the whole payload.
            let ip_len = packet.len() - l;
            let ip = &mut packet[l..];
            ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
            ip[10..12].fill(0);
            let c = !ustack_core::wire::checksum::sum(&ip[..IP_HEADER]);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            // The TCP checksum is left to the kernel (as to a NIC): the
            // field holds the pseudo-header sum, not inverted.
            let src = std::net::Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
            let dst = std::net::Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
            let pseudo = ustack_core::wire::checksum::pseudo_header(src, dst, 6, (ip_len - IP_HEADER) as u32);
            ip[IP_HEADER + 16..IP_HEADER + 18].copy_from_slice(&pseudo.to_be_bytes());
            // struct virtio_net_hdr: flags, gso_type, hdr_len, gso_size,
            // csum_start, csum_offset (little-endian).
            vnet[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
            vnet[1] = VIRTIO_NET_HDR_GSO_TCPV4;
            vnet[2..4].copy_from_slice(&(hdr_len as u16).to_le_bytes());
            vnet[4..6].copy_from_slice(&(self.seg_size as u16).to_le_bytes());
            vnet[6..8].copy_from_slice(&((l + IP_HEADER) as u16).to_le_bytes());
            vnet[8..10].copy_from_slice(&16u16.to_le_bytes());
        }
        Some((&self.buf[..self.len], segments))
    }

    fn clear(&mut self) {
        self.segments = 0;
        self.len = 0;
        self.closed = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ustack_core::wire::checksum;

    const SRC: [u8; 4] = [10, 7, 0, 2];
    const DST: [u8; 4] = [10, 7, 0, 1];

    /// An IPv4/TCP segment with complete checksums, as the stack sends
    /// them: timestamps option, `flags`, `len` bytes of payload from `seq`.
    fn segment(link: usize, seq: u32, flags: u8, len: usize, ident: u16) -> Vec<u8> {
        let tcp_header = 32;
        let mut f = vec![0u8; link + IP_HEADER + tcp_header + len];
        if link > 0 {
            f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
            f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
            f[12..14].copy_from_slice(&[0x08, 0x00]);
        }
        let total = (IP_HEADER + tcp_header + len) as u16;
        let ip = &mut f[link..];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[4..6].copy_from_slice(&ident.to_be_bytes());
        ip[6] = 0x40; // DF
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&SRC);
        ip[16..20].copy_from_slice(&DST);
        let c = !checksum::sum(&ip[..IP_HEADER]);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let tcp = &mut ip[IP_HEADER..];
        tcp[..2].copy_from_slice(&80u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&40000u16.to_be_bytes());
        tcp[4..8].copy_from_slice(&seq.to_be_bytes());
        tcp[8..12].copy_from_slice(&777u32.to_be_bytes());
        tcp[12] = ((tcp_header / 4) as u8) << 4;
        tcp[13] = flags;
        tcp[14..16].copy_from_slice(&512u16.to_be_bytes());
        tcp[20..32].copy_from_slice(&[1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 5]);
        for (i, b) in tcp[tcp_header..].iter_mut().enumerate() {
            *b = (seq as usize + i) as u8;
        }
        let pseudo = checksum::pseudo_header(SRC.into(), DST.into(), 6, (tcp_header + len) as u32);
        let c = checksum::checksum(pseudo, tcp);
        tcp[16..18].copy_from_slice(&c.to_be_bytes());
        f
    }

    /// What the kernel does with a GSO packet (`tcp_gso_segment`): one
    /// segment per `gso_size` bytes, the headers copied, the sequence
    /// number advanced, PSH on the last only, the lengths and checksums
    /// completed. IP IDs count up from the first.
    fn cut(link: usize, packet: &[u8]) -> Vec<Vec<u8>> {
        let vnet = &packet[..VNET_HDR_LEN];
        let frame = &packet[VNET_HDR_LEN..];
        if vnet[1] == VIRTIO_NET_HDR_GSO_NONE {
            assert_eq!(vnet, [0u8; VNET_HDR_LEN], "a plain packet has a zeroed header");
            return vec![frame.to_vec()];
        }
        assert_eq!(vnet[0], VIRTIO_NET_HDR_F_NEEDS_CSUM);
        assert_eq!(vnet[1], VIRTIO_NET_HDR_GSO_TCPV4);
        let hdr_len = u16::from_le_bytes([vnet[2], vnet[3]]) as usize;
        let gso_size = u16::from_le_bytes([vnet[4], vnet[5]]) as usize;
        assert_eq!(u16::from_le_bytes([vnet[6], vnet[7]]) as usize, link + IP_HEADER);
        assert_eq!(u16::from_le_bytes([vnet[8], vnet[9]]), 16);
        let ip = &frame[link..];
        assert_eq!(u16::from_be_bytes([ip[2], ip[3]]) as usize, frame.len() - link, "IP total length");
        assert!(checksum::verify(0, &ip[..IP_HEADER]), "IP header checksum");
        let tcp_len = frame.len() - link - IP_HEADER;
        let pseudo = checksum::pseudo_header(SRC.into(), DST.into(), 6, tcp_len as u32);
        assert_eq!(u16::from_be_bytes([ip[IP_HEADER + 16], ip[IP_HEADER + 17]]), pseudo, "partial checksum");
        let (head, data) = frame.split_at(hdr_len);
        let seq0 = u32::from_be_bytes(head[link + IP_HEADER + 4..link + IP_HEADER + 8].try_into().unwrap());
        let id0 = u16::from_be_bytes([head[link + 4], head[link + 5]]);
        let chunks: Vec<&[u8]> = data.chunks(gso_size).collect();
        let last = chunks.len() - 1;
        let mut out = Vec::new();
        for (i, chunk) in chunks.into_iter().enumerate() {
            let mut f = head.to_vec();
            f.extend_from_slice(chunk);
            let total = (f.len() - link) as u16;
            let ip = &mut f[link..];
            ip[2..4].copy_from_slice(&total.to_be_bytes());
            ip[4..6].copy_from_slice(&id0.wrapping_add(i as u16).to_be_bytes());
            ip[10..12].fill(0);
            let c = !checksum::sum(&ip[..IP_HEADER]);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            let tcp = &mut ip[IP_HEADER..];
            tcp[4..8].copy_from_slice(&seq0.wrapping_add((i * gso_size) as u32).to_be_bytes());
            if i != last {
                tcp[13] &= !TCP_PSH;
            }
            tcp[16..18].fill(0);
            let pseudo = checksum::pseudo_header(SRC.into(), DST.into(), 6, tcp.len() as u32);
            let c = checksum::checksum(pseudo, tcp);
            tcp[16..18].copy_from_slice(&c.to_be_bytes());
            out.push(f);
        }
        out
    }

    /// Feeds `frames` through a coalescer as the device does and returns
    /// what it writes.
    fn coalesce(link: usize, frames: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut c = Coalescer::new(link);
        let mut written = Vec::new();
        let write = |c: &mut Coalescer, written: &mut Vec<Vec<u8>>| {
            if let Some((p, _)) = c.finish() {
                written.push(p.to_vec());
            }
            c.clear();
        };
        for f in frames {
            if c.append(f) {
                continue;
            }
            write(&mut c, &mut written);
            if !c.append(f) {
                let mut p = vec![0u8; VNET_HDR_LEN];
                p.extend_from_slice(f);
                written.push(p);
            }
        }
        write(&mut c, &mut written);
        written
    }

    #[test]
    fn consecutive_full_segments_become_one_super_packet_the_kernel_cuts_back() {
        for link in [0, ETH_HEADER] {
            let mss = 1448;
            let mut frames: Vec<Vec<u8>> =
                (0..10).map(|i| segment(link, 1000 + i * mss as u32, TCP_ACK, mss, 7 + i as u16)).collect();
            frames.push(segment(link, 1000 + 10 * mss as u32, TCP_ACK | TCP_PSH, 300, 17));
            let written = coalesce(link, &frames);
            assert_eq!(written.len(), 1, "one write for the whole batch");
            let back = cut(link, &written[0]);
            assert_eq!(back, frames, "the kernel's cutting gives back exactly the segments");
        }
    }

    #[test]
    fn what_cannot_join_goes_alone_and_in_order() {
        let mss = 1000;
        let pure_ack = segment(0, 5000, TCP_ACK, 0, 1);
        let fin = segment(0, 9000, TCP_ACK | 0x01, 100, 2);
        let mut other_window = segment(0, 3000, TCP_ACK, mss, 3);
        other_window[IP_HEADER + 14] = 9;
        let frames = vec![
            segment(0, 1000, TCP_ACK, mss, 1),
            segment(0, 2000, TCP_ACK, mss, 2),
            // A different window: a new super-packet.
            other_window,
            segment(0, 4000, TCP_ACK, mss, 4),
            // Out of sequence (a retransmission): goes alone.
            segment(0, 1000, TCP_ACK, mss, 5),
            // A short segment ends a packet.
            segment(0, 5000, TCP_ACK, 10, 6),
            segment(0, 5010, TCP_ACK, 10, 7),
            segment(0, 5020, TCP_ACK, 4, 8),
            segment(0, 5024, TCP_ACK, 4, 9),
            pure_ack,
            fin,
        ];
        let written = coalesce(0, &frames);
        let back: Vec<Vec<u8>> = written.iter().flat_map(|p| cut(0, p)).collect();
        // The cut-back packets are the segments in order, the IP IDs of
        // joined ones aside.
        let strip = |mut f: Vec<u8>| {
            f[4..6].fill(0);
            f[10..12].fill(0);
            f
        };
        assert_eq!(back.into_iter().map(strip).collect::<Vec<_>>(), frames.into_iter().map(strip).collect::<Vec<_>>());
        let sizes: Vec<usize> = written.iter().map(|p| cut(0, p).len()).collect();
        // [1000 2000] [3000] [4000] [1000] [5000 5010 5020] [5024] [ack] [fin]
        assert_eq!(sizes, [2, 1, 1, 1, 3, 1, 1, 1]);
    }

    #[test]
    fn a_checksum_left_to_the_hardware_is_completed_for_a_capture() {
        let good = segment(0, 1000, TCP_ACK | TCP_PSH, 333, 1);
        // What the kernel hands over with NEEDS_CSUM: the pseudo-header's
        // sum (not complemented) where the checksum goes.
        let mut partial = good.clone();
        let tcp_len = (good.len() - IP_HEADER) as u32;
        let pseudo = checksum::pseudo_header(SRC.into(), DST.into(), 6, tcp_len);
        partial[IP_HEADER + 16..IP_HEADER + 18].copy_from_slice(&pseudo.to_be_bytes());
        assert_ne!(partial, good);
        let meta = RxMeta {
            checksum_trusted: true,
            checksum_partial: Some(PartialChecksum { start: IP_HEADER as u16, offset: 16 }),
        };
        meta.complete_checksum(&mut partial);
        assert_eq!(partial, good);
        // Nothing left to compute, or a bogus offset: the bytes stay.
        let mut same = good.clone();
        RxMeta { checksum_trusted: true, checksum_partial: None }.complete_checksum(&mut same);
        let bogus =
            RxMeta { checksum_trusted: true, checksum_partial: Some(PartialChecksum { start: 60000, offset: 16 }) };
        bogus.complete_checksum(&mut same);
        assert_eq!(same, good);
    }
}
