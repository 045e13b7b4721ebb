//! Helpers for the link, network and UDP layer tests: packet builders over
//! the `wire` module, readers for what a stack sends, and a hand-driven
//! pair of IP-medium stacks (no simulator: what one sends, the other gets
//! at once).
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddrV4};
use ustack_core::time::{Duration, Instant};
use ustack_core::wire::{
    ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetAddress, EthernetFrame, EthernetRepr, Icmpv4Packet,
    Icmpv4Repr, IpProtocol, Ipv4Cidr, Ipv4Packet, Ipv4Repr, TcpFlags, TcpOptions, TcpPacket, TcpRepr, UdpPacket,
    UdpRepr,
};
use ustack_core::{Stack, StackConfig};

/// The stack under test.
pub const US: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// Its peer on the same /24.
pub const PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub const US_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 1]);
pub const PEER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 2]);
pub const OTHER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x99]);

/// Room for any frame a stack can send.
pub const BUF: usize = 70_000;

pub fn ms(n: u64) -> Instant {
    Instant::from_millis(n)
}

pub fn sa(ip: Ipv4Addr, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(ip, port)
}

pub fn ip_config(addr: Ipv4Addr) -> StackConfig {
    StackConfig::ip(Ipv4Cidr::new(addr, 24)).with_seed(u64::from(addr.to_bits()))
}

/// An IP-medium stack (a TUN device) at `addr`/24.
pub fn ip_stack(addr: Ipv4Addr) -> Stack {
    Stack::new(ip_config(addr))
}

pub fn eth_config(mac: EthernetAddress, addr: Ipv4Addr) -> StackConfig {
    StackConfig::ethernet(mac, Ipv4Cidr::new(addr, 24)).with_seed(u64::from(addr.to_bits()))
}

/// An Ethernet stack at 10.0.0.1/24, MAC 02:00:00:00:00:01.
pub fn eth_stack() -> Stack {
    Stack::new(eth_config(US_MAC, US))
}

/// Everything the stack has to send now.
pub fn drain(stack: &mut Stack, now: Instant) -> Vec<Vec<u8>> {
    let mut buf = vec![0u8; BUF];
    let mut out = Vec::new();
    while let Some(n) = stack.poll_transmit(now, &mut buf) {
        out.push(buf[..n].to_vec());
    }
    out
}

/// Runs the stack's timers from `from` until `to`, collecting what it
/// sends, each with the time it left.
pub fn run_timers(stack: &mut Stack, from: Instant, to: Instant) -> Vec<(Instant, Vec<u8>)> {
    let mut out = Vec::new();
    let mut now = from;
    loop {
        stack.handle_timeout(now);
        out.extend(drain(stack, now).into_iter().map(|f| (now, f)));
        match stack.poll_timeout() {
            Some(t) if t <= to => now = t.max(now + Duration::from_nanos(1)),
            _ => return out,
        }
    }
}

// ---- building packets --------------------------------------------------------

/// A header for `payload_len` bytes from `src` to `dst`: TTL 64, ident 1,
/// no flags.
pub fn ip_repr(src: Ipv4Addr, dst: Ipv4Addr, protocol: IpProtocol, payload_len: usize) -> Ipv4Repr {
    Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol,
        payload_len,
        hop_limit: 64,
        ident: 1,
        dont_frag: false,
        more_frags: false,
        frag_offset: 0,
        dscp_ecn: 0,
    }
}

/// An IPv4 packet with a valid header checksum; `repr.payload_len` must
/// be `payload.len()`.
pub fn ipv4(repr: &Ipv4Repr, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; repr.buffer_len() + payload.len()];
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]), true);
    buf[repr.buffer_len()..].copy_from_slice(payload);
    buf
}

/// Recomputes the header checksum after the caller changed the header.
pub fn refill_ip_checksum(packet: &mut [u8]) {
    let mut p = Ipv4Packet::new_unchecked(packet);
    p.fill_checksum();
}

/// A UDP datagram (header and payload) with its checksum.
pub fn udp_bytes(src: SocketAddrV4, dst: SocketAddrV4, data: &[u8]) -> Vec<u8> {
    let repr = UdpRepr { src_port: src.port(), dst_port: dst.port() };
    let mut buf = vec![0u8; repr.buffer_len(data.len())];
    buf[repr.header_len()..].copy_from_slice(data);
    repr.emit(&mut UdpPacket::new_unchecked(&mut buf[..]), data.len(), Some((*src.ip(), *dst.ip())));
    buf
}

/// A whole IPv4 packet carrying a UDP datagram.
pub fn udp_packet(src: SocketAddrV4, dst: SocketAddrV4, data: &[u8]) -> Vec<u8> {
    let udp = udp_bytes(src, dst, data);
    ipv4(&ip_repr(*src.ip(), *dst.ip(), IpProtocol::Udp, udp.len()), &udp)
}

pub fn icmp_bytes(repr: &Icmpv4Repr) -> Vec<u8> {
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]));
    buf
}

pub fn icmp_packet(src: Ipv4Addr, dst: Ipv4Addr, repr: &Icmpv4Repr) -> Vec<u8> {
    let icmp = icmp_bytes(repr);
    ipv4(&ip_repr(src, dst, IpProtocol::Icmp, icmp.len()), &icmp)
}

/// A TCP SYN from `src` to `dst` with an MSS option.
pub fn tcp_syn(src: SocketAddrV4, dst: SocketAddrV4, seq: u32) -> Vec<u8> {
    let repr = TcpRepr {
        src_port: src.port(),
        dst_port: dst.port(),
        seq,
        ack: 0,
        flags: TcpFlags::SYN,
        window: 65535,
        urgent: 0,
        options: TcpOptions { mss: Some(1460), ..Default::default() },
    };
    let mut buf = vec![0u8; repr.header_len()];
    repr.emit(&mut TcpPacket::new_unchecked(&mut buf[..]), Some((*src.ip(), *dst.ip())));
    ipv4(&ip_repr(*src.ip(), *dst.ip(), IpProtocol::Tcp, buf.len()), &buf)
}

/// The fragments of one IPv4 datagram as a sender would cut it for `mtu`
/// (payload pieces of a multiple of 8 bytes, the last with the rest).
pub fn fragments(header: &Ipv4Repr, payload: &[u8], mtu: usize) -> Vec<Vec<u8>> {
    let step = (mtu - 20) / 8 * 8;
    let mut out = Vec::new();
    let mut at = 0;
    loop {
        let len = step.min(payload.len() - at);
        let more = at + len < payload.len();
        let repr = Ipv4Repr { payload_len: len, more_frags: more, frag_offset: at as u16, ..*header };
        out.push(ipv4(&repr, &payload[at..at + len]));
        at += len;
        if !more {
            return out;
        }
    }
}

pub fn eth_frame(src: EthernetAddress, dst: EthernetAddress, ethertype: EtherType, payload: &[u8]) -> Vec<u8> {
    let repr = EthernetRepr { src, dst, ethertype };
    let mut buf = vec![0u8; repr.buffer_len() + payload.len()];
    repr.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
    buf[repr.buffer_len()..].copy_from_slice(payload);
    buf
}

/// An ARP packet in an Ethernet frame from `sha`; requests go to the
/// broadcast address, replies to `tha`.
pub fn arp_frame(
    op: ArpOperation,
    sha: EthernetAddress,
    spa: Ipv4Addr,
    tha: EthernetAddress,
    tpa: Ipv4Addr,
) -> Vec<u8> {
    let repr = ArpRepr {
        operation: op,
        source_hardware_addr: sha,
        source_protocol_addr: spa,
        target_hardware_addr: tha,
        target_protocol_addr: tpa,
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
    let dst = if op == ArpOperation::Request { EthernetAddress::BROADCAST } else { tha };
    eth_frame(sha, dst, EtherType::Arp, &buf)
}

/// An IP packet from the peer's MAC to ours.
pub fn ip_in_eth(packet: &[u8]) -> Vec<u8> {
    eth_frame(PEER_MAC, US_MAC, EtherType::Ipv4, packet)
}

// ---- reading what a stack sent -------------------------------------------------

/// The header and payload of an IPv4 packet, which must be well formed.
pub fn parse_ip(packet: &[u8]) -> (Ipv4Repr, Vec<u8>) {
    let p = Ipv4Packet::new_checked(packet).expect("a well-formed IPv4 packet");
    assert!(p.verify_checksum(), "bad IPv4 header checksum");
    let repr = Ipv4Repr::parse(&p, true).unwrap();
    (repr, p.payload().to_vec())
}

pub fn parse_eth(frame: &[u8]) -> (EthernetRepr, Vec<u8>) {
    let f = EthernetFrame::new_checked(frame).expect("an Ethernet frame");
    (EthernetRepr::parse(&f).unwrap(), f.payload().to_vec())
}

/// The ARP packet in an Ethernet frame, if it carries one.
pub fn arp_of(frame: &[u8]) -> Option<ArpRepr> {
    let (eth, payload) = parse_eth(frame);
    if eth.ethertype != EtherType::Arp {
        return None;
    }
    Some(ArpRepr::parse(&ArpPacket::new_checked(&payload[..]).unwrap()).unwrap())
}

/// The IP packet in an Ethernet frame, if it carries one.
pub fn ip_of(frame: &[u8]) -> Option<(EthernetRepr, Ipv4Repr, Vec<u8>)> {
    let (eth, payload) = parse_eth(frame);
    if eth.ethertype != EtherType::Ipv4 {
        return None;
    }
    let (ip, data) = parse_ip(&payload);
    Some((eth, ip, data))
}

/// An ICMP message as sent: type, code, the 4 bytes after the checksum,
/// and the data after the 8-byte header. The checksum is verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Icmp {
    pub ip: Ipv4Repr,
    pub msg_type: u8,
    pub code: u8,
    pub rest: u32,
    pub data: Vec<u8>,
}

/// The ICMP message in an IP packet, if it is one.
pub fn icmp_of(packet: &[u8]) -> Option<Icmp> {
    let (ip, payload) = parse_ip(packet);
    if ip.protocol != IpProtocol::Icmp {
        return None;
    }
    let p = Icmpv4Packet::new_checked(&payload[..]).expect("an ICMP message");
    assert!(p.verify_checksum(), "bad ICMP checksum");
    Some(Icmp { ip, msg_type: p.msg_type(), code: p.code(), rest: p.rest_of_header(), data: p.data().to_vec() })
}

/// The ICMP messages among `packets`.
pub fn icmps(packets: &[Vec<u8>]) -> Vec<Icmp> {
    packets.iter().filter_map(|p| icmp_of(p)).collect()
}

// ---- two IP-medium stacks wired back to back --------------------------------------

/// Two stacks joined by a perfect, instant wire that the test drives by
/// hand: IP packets between IP-medium stacks, frames between Ethernet ones.
pub struct Pair {
    pub a: Stack,
    pub b: Stack,
    pub now: Instant,
    /// Every packet that crossed, `true` when from `a` to `b`.
    pub log: Vec<(bool, Vec<u8>)>,
}

impl Pair {
    /// `a` at 10.0.0.1, `b` at 10.0.0.2.
    pub fn new() -> Self {
        Self::with(ip_config(US), ip_config(PEER))
    }

    pub fn with(a: StackConfig, b: StackConfig) -> Self {
        Pair { a: Stack::new(a), b: Stack::new(b), now: Instant::ZERO, log: Vec::new() }
    }

    /// Carries packets both ways until neither side has more to send.
    pub fn exchange(&mut self) {
        for _ in 0..10_000 {
            let from_a = drain(&mut self.a, self.now);
            let from_b = drain(&mut self.b, self.now);
            if from_a.is_empty() && from_b.is_empty() {
                return;
            }
            for p in from_a {
                self.b.handle_input(self.now, &p);
                self.log.push((true, p));
            }
            for p in from_b {
                self.a.handle_input(self.now, &p);
                self.log.push((false, p));
            }
        }
        panic!("the stacks never went quiet");
    }

    /// Advances time to `t`, running both stacks' timers on the way and
    /// exchanging what they send.
    pub fn run_until(&mut self, t: Instant) {
        self.exchange();
        loop {
            let next = [self.a.poll_timeout(), self.b.poll_timeout()].into_iter().flatten().min();
            match next {
                Some(n) if n <= t => {
                    self.now = n.max(self.now);
                    self.a.handle_timeout(self.now);
                    self.b.handle_timeout(self.now);
                    self.exchange();
                }
                _ => break,
            }
        }
        self.now = self.now.max(t);
        self.exchange();
    }

    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }
}

impl Default for Pair {
    fn default() -> Self {
        Self::new()
    }
}
