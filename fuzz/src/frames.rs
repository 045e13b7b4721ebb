//! The `stack_frames` target: two stacks, one on Ethernet and one on an IP
//! medium, each with a TCP listener, an accepted-connection echo service,
//! a UDP echo socket and a connection of its own going out, fed arbitrary
//! frames with virtual time advancing between them. The IP stack also
//! takes any address (`StackConfig::any_ip`, as a VPN client's device)
//! with a catch-all TCP listener and UDP socket, which echo too. The
//! Ethernet stack takes TCP carried in UDP datagrams to
//! [`TCP_OVER_UDP_PORT`] (`StackConfig::tcp_over_udp_port`). Both
//! listeners on [`TCP_PORT`] take TCP Fast Open (RFC 7413).
//!
//! The input is a sequence of records, each
//!
//! ```text
//! control: u8, length: u16 (little-endian), bytes: [u8; length]
//! ```
//!
//! (a short last record takes what is left). The control byte says:
//!
//! - bit 0: which stack (0 Ethernet, 1 IP);
//! - bit 1: fix checksums (IPv4 header and TCP, UDP or ICMP) after the
//!   other fixes, so that the fuzzer gets past them;
//! - bit 2: fix addressing: the Ethernet destination and EtherType, the IP
//!   destination (the stack's address) and source (the peer's);
//! - bit 3: fix lengths: the IP total length and UDP length to the bytes
//!   given;
//! - bits 4-6: time to let pass first (0, 1 ms, 10 ms, 200 ms, 1 s, 10 s,
//!   100 s, or up to the stack's next timer);
//! - bit 7: let the applications run after the frame (accept, read, echo,
//!   close at end of file).
//!
//! After every record each stack sends all it has and runs its due timers;
//! every frame it emits must parse ([`crate::check`]). At the end the
//! applications close everything, time passes, and both stacks must be
//! back to no sockets and no timers.

use crate::check::{self, Host};
use std::net::{Ipv4Addr, SocketAddrV4};
use ustack_core::time::Duration;
use ustack_core::wire::{EthernetAddress, Ipv4Cidr, checksum};
use ustack_core::{Instant, SocketHandle, Stack, StackConfig};

pub const STACK_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
pub const STACK_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 254);
pub const TCP_PORT: u16 = 80;
pub const UDP_PORT: u16 = 53;
/// The Ethernet stack's TCP-over-UDP port.
pub const TCP_OVER_UDP_PORT: u16 = 9811;
/// Records one input is cut into at most.
pub const MAX_RECORDS: usize = 256;

pub const CTL_IP_STACK: u8 = 1 << 0;
pub const CTL_FIX_CHECKSUMS: u8 = 1 << 1;
pub const CTL_FIX_ADDRESSES: u8 = 1 << 2;
pub const CTL_FIX_LENGTHS: u8 = 1 << 3;
pub const CTL_APP: u8 = 1 << 7;
/// The time field, bits 4-6.
pub const fn ctl_wait(class: u8) -> u8 {
    (class & 7) << 4
}

/// One record of an input.
pub struct Record<'a> {
    pub control: u8,
    pub bytes: &'a [u8],
}

/// Cuts an input into records.
pub fn records(mut data: &[u8]) -> Vec<Record<'_>> {
    let mut out = Vec::new();
    while !data.is_empty() && out.len() < MAX_RECORDS {
        let control = data[0];
        let len = match data.get(1..3) {
            Some(b) => u16::from_le_bytes([b[0], b[1]]) as usize,
            None => data.len(),
        };
        let rest = data.get(3..).unwrap_or(&[]);
        let (bytes, after) = rest.split_at(len.min(rest.len()));
        out.push(Record { control, bytes });
        data = after;
    }
    out
}

/// Writes records in the format [`records`] reads (for seeds).
pub fn encode(records: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (control, bytes) in records {
        out.push(*control);
        out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    out
}

/// One stack with its sockets and the application around them.
struct Node {
    stack: Stack,
    host: Host,
    ethernet: bool,
    listener: SocketHandle,
    udp: SocketHandle,
    /// The IP stack's catch-all listener and UDP socket (`any_ip`).
    catch_all: Option<(SocketHandle, SocketHandle)>,
    /// Connections the application holds: accepted, and the one it opened.
    conns: Vec<SocketHandle>,
    out: Vec<u8>,
    /// Frames emitted since the last look, for `replay`.
    log: Vec<Vec<u8>>,
    logging: bool,
}

impl Node {
    fn new(ethernet: bool) -> Self {
        let cidr = Ipv4Cidr::new(STACK_IP, 24);
        let mut cfg = if ethernet { StackConfig::ethernet(STACK_MAC, cidr) } else { StackConfig::ip(cidr) };
        cfg = cfg.with_seed(11).with_gateway(GATEWAY);
        // Small limits, so that floods reach them.
        cfg.max_half_open = 4;
        cfg.max_backlog = 4;
        cfg.udp_buffer = 16 * 1024;
        cfg.tcp.recv_buffer = 8192;
        cfg.tcp.send_buffer = 8192;
        cfg.reassembly.max_datagrams = 8;
        cfg.reassembly.max_bytes = 128 * 1024;
        cfg.any_ip = !ethernet;
        cfg.tcp_over_udp_port = ethernet.then_some(TCP_OVER_UDP_PORT);
        let host = Host { mac: cfg.hardware_addr, ip: STACK_IP, mtu: cfg.mtu, ttl: cfg.ttl, any_ip: cfg.any_ip };
        let mut stack = Stack::new(cfg);
        let now = Instant::from_secs(1);
        stack.handle_timeout(now);
        let listener = stack.tcp_socket().expect("socket");
        stack.bind(listener, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, TCP_PORT)).expect("bind");
        stack.listen(listener, 4).expect("listen");
        stack.set_option(listener, ustack_core::socket::SockOpt::FastOpen(2)).expect("fast open");
        let udp = stack.udp_socket().expect("socket");
        stack.bind(udp, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, UDP_PORT)).expect("bind");
        let catch_all = (!ethernet).then(|| {
            let any = stack.tcp_socket().expect("socket");
            stack.listen_any(any, 4).expect("listen_any");
            let any_udp = stack.udp_socket().expect("socket");
            stack.udp_bind_any(any_udp).expect("udp_bind_any");
            (any, any_udp)
        });
        let client = stack.tcp_socket().expect("socket");
        stack.connect(client, SocketAddrV4::new(PEER_IP, 443)).expect("connect");
        Node {
            stack,
            host,
            ethernet,
            listener,
            udp,
            catch_all,
            conns: vec![client],
            out: vec![0u8; 70_000],
            log: Vec::new(),
            logging: false,
        }
    }

    fn input(&mut self, now: Instant, frame: &mut [u8]) {
        if self.ethernet {
            self.stack.handle_frame(now, frame);
        } else {
            self.stack.handle_ip_packet(now, frame);
        }
    }

    /// Sends everything and runs the timers due at `now`.
    fn drain(&mut self, now: Instant) {
        let mut frames = 0usize;
        for round in 0.. {
            assert!(round < 10_000, "the stack keeps finding timers due at {now:?}");
            while let Some(n) = self.stack.poll_transmit(now, &mut self.out) {
                frames += 1;
                assert!(frames < 100_000, "the stack sends without end at {now:?}");
                let f = &self.out[..n];
                // Every frame the stack sends parses at every layer.
                if self.ethernet {
                    check::frame(&self.host, f);
                } else {
                    check::ip_packet(&self.host, f, false);
                }
                if self.logging {
                    self.log.push(f.to_vec());
                }
            }
            match self.stack.poll_timeout() {
                Some(t) if t <= now => self.stack.handle_timeout(now),
                _ => break,
            }
        }
    }

    /// The applications: accept, read and echo back, close at end of file
    /// or error; the UDP socket echoes datagrams.
    fn app(&mut self) {
        while let Ok((h, _)) = self.stack.accept(self.listener) {
            self.conns.push(h);
        }
        if let Some((any, _)) = self.catch_all {
            while let Ok((h, _)) = self.stack.accept(any) {
                self.conns.push(h);
            }
        }
        let mut buf = [0u8; 2048];
        let mut keep = Vec::new();
        for h in core::mem::take(&mut self.conns) {
            match self.stack.recv(h, &mut buf) {
                Ok(0) => {
                    let _ = self.stack.close(h);
                    continue;
                }
                Ok(n) => {
                    let _ = self.stack.send(h, &buf[..n]);
                }
                Err(ustack_core::Error::WouldBlock) => {}
                Err(_) => {
                    let _ = self.stack.close(h);
                    continue;
                }
            }
            keep.push(h);
        }
        self.conns = keep;
        for _ in 0..8 {
            let Ok((n, from)) = self.stack.recv_from(self.udp, &mut buf) else { break };
            let _ = self.stack.send_to(self.udp, &buf[..n.min(buf.len())], from);
        }
        if let Some((_, any_udp)) = self.catch_all {
            for _ in 0..8 {
                let Ok((n, from, to)) = self.stack.recv_msg(any_udp, &mut buf) else { break };
                let _ = self.stack.send_from(any_udp, &buf[..n.min(buf.len())], to, from);
            }
        }
    }

    /// Everything closed, then long enough: nothing may be left.
    fn finish(&mut self, mut now: Instant) {
        for h in core::mem::take(&mut self.conns) {
            let _ = self.stack.close(h);
        }
        let _ = self.stack.close(self.listener);
        let _ = self.stack.close(self.udp);
        if let Some((any, any_udp)) = self.catch_all {
            let _ = self.stack.close(any);
            let _ = self.stack.close(any_udp);
        }
        self.drain(now);
        let end = now + Duration::from_secs(4 * 3600);
        for round in 0.. {
            assert!(round < 200_000, "timers without end while closing");
            match self.stack.poll_timeout() {
                Some(t) if t <= end => {
                    now = now.max(t);
                    self.stack.handle_timeout(now);
                    self.drain(now);
                }
                _ => break,
            }
        }
        let left: Vec<String> = self.stack.tcp_connections().map(|(h, c)| format!("{h:?} {}", c.state())).collect();
        assert_eq!(self.stack.socket_count(), 0, "sockets left after everything closed: {left:?}");
        assert_eq!(self.stack.out_of_order_bytes(), 0);
    }
}

/// Runs one input through both stacks.
pub fn run(data: &[u8]) {
    drive(data, None);
}

/// Runs one input, showing `sent` every frame a stack emits (with whether
/// it is the IP stack's): for building seeds that answer the stacks.
pub fn replay(data: &[u8], sent: &mut dyn FnMut(bool, &[u8])) {
    drive(data, Some(sent));
}

/// Where `replay` shows the frames: (from the IP stack, frame).
type Sink<'a> = &'a mut dyn FnMut(bool, &[u8]);

fn drive(data: &[u8], mut sent: Option<Sink<'_>>) {
    let mut nodes = [Node::new(true), Node::new(false)];
    for n in nodes.iter_mut() {
        n.logging = sent.is_some();
    }
    let mut now = Instant::from_secs(1);
    for n in nodes.iter_mut() {
        n.drain(now);
    }
    for r in records(data) {
        let node = &mut nodes[(r.control & CTL_IP_STACK) as usize];
        now = match (r.control >> 4) & 7 {
            0 => now,
            1 => now + Duration::from_millis(1),
            2 => now + Duration::from_millis(10),
            3 => now + Duration::from_millis(200),
            4 => now + Duration::from_secs(1),
            5 => now + Duration::from_secs(10),
            6 => now + Duration::from_secs(100),
            _ => node.stack.poll_timeout().map_or(now, |t| t.max(now)),
        };
        let mut frame = r.bytes.to_vec();
        fix(&mut frame, node.ethernet, r.control);
        // Both stacks live in the same time.
        for n in nodes.iter_mut() {
            n.stack.handle_timeout(now);
            n.drain(now);
        }
        let node = &mut nodes[(r.control & CTL_IP_STACK) as usize];
        node.input(now, &mut frame);
        node.drain(now);
        if r.control & CTL_APP != 0 {
            node.app();
            node.drain(now);
        }
        if let Some(sent) = sent.as_mut() {
            for n in nodes.iter_mut() {
                for f in n.log.drain(..) {
                    sent(!n.ethernet, &f);
                }
            }
        }
    }
    for n in nodes.iter_mut() {
        n.finish(now);
    }
}

/// Applies the fixes the control byte asks for to a frame (Ethernet) or
/// packet (IP).
pub fn fix(frame: &mut [u8], ethernet: bool, control: u8) {
    let ip = if ethernet {
        if frame.len() < 14 {
            return;
        }
        if control & CTL_FIX_ADDRESSES != 0 {
            frame[0..6].copy_from_slice(&STACK_MAC.0);
            // IPv4, unless the frame is ARP.
            if frame[12..14] != [0x08, 0x06] {
                frame[12..14].copy_from_slice(&[0x08, 0x00]);
            }
        }
        if frame[12..14] != [0x08, 0x00] {
            return;
        }
        &mut frame[14..]
    } else {
        frame
    };
    fix_ip(ip, control);
}

fn fix_ip(p: &mut [u8], control: u8) {
    if p.len() < 20 || p[0] >> 4 != 4 {
        return;
    }
    let hl = ((p[0] & 0x0f) as usize) * 4;
    if hl < 20 || hl > p.len() {
        return;
    }
    if control & CTL_FIX_ADDRESSES != 0 {
        p[12..16].copy_from_slice(&PEER_IP.octets());
        p[16..20].copy_from_slice(&STACK_IP.octets());
    }
    if control & CTL_FIX_LENGTHS != 0 {
        let total = p.len().min(65535) as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
    }
    let total = (u16::from_be_bytes([p[2], p[3]]) as usize).min(p.len());
    if total < hl {
        return;
    }
    if control & CTL_FIX_CHECKSUMS != 0 {
        p[10..12].fill(0);
        let c = checksum::checksum(0, &p[..hl]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
    }
    let fragment = u16::from_be_bytes([p[6], p[7]]) & 0x3fff != 0;
    if fragment {
        return;
    }
    let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
    let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
    let protocol = p[9];
    let body = &mut p[hl..total];
    match protocol {
        6 if body.len() >= 20 && control & CTL_FIX_CHECKSUMS != 0 => {
            body[16..18].fill(0);
            let c = checksum::checksum(checksum::pseudo_header(src, dst, 6, body.len() as u32), body);
            body[16..18].copy_from_slice(&c.to_be_bytes());
        }
        17 if body.len() >= 8 => {
            if control & CTL_FIX_LENGTHS != 0 {
                let n = body.len() as u16;
                body[4..6].copy_from_slice(&n.to_be_bytes());
            }
            let n = (u16::from_be_bytes([body[4], body[5]]) as usize).min(body.len());
            if control & CTL_FIX_CHECKSUMS != 0 && n >= 8 {
                body[6..8].fill(0);
                let c = checksum::checksum(checksum::pseudo_header(src, dst, 17, n as u32), &body[..n]);
                body[6..8].copy_from_slice(&(if c == 0 { 0xffff } else { c }).to_be_bytes());
            }
        }
        1 if body.len() >= 8 && control & CTL_FIX_CHECKSUMS != 0 => {
            body[2..4].fill(0);
            let c = checksum::checksum(0, body);
            body[2..4].copy_from_slice(&c.to_be_bytes());
        }
        _ => {}
    }
}
