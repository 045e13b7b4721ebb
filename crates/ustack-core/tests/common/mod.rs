//! Helpers shared by the TCP scenario tests (`tcp_*.rs`).
//!
//! A [`Rig`] is a client host (10.0.0.1) and a server host (10.0.0.2)
//! joined through a [`Middlebox`]: `client -- link -- middlebox -- link --
//! server`. Every TCP segment that crosses the middlebox is parsed into a
//! [`Pkt`] and kept in a log, after a test-supplied rule has decided to
//! pass or drop it. Tests call socket functions on either stack between
//! steps of the virtual clock, read the stacks' trace events, and forge
//! segments of their own to inject.
#![allow(dead_code)]

use std::cell::RefCell;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::rc::Rc;
use ustack_core::sim::scenario::{host_config, host_ip, host_mac};
use ustack_core::sim::{App, Host, LinkConfig, LinkId, Middlebox, Network, NodeId, Verdict};
use ustack_core::tcp::{State, TcpConfig};
use ustack_core::time::{Duration, Instant};
use ustack_core::trace::{Direction, Event, EventKind};
use ustack_core::wire::{
    DstUnreachable, EtherType, EthernetFrame, EthernetRepr, Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Packet, Ipv4Repr,
    TcpFlags, TcpPacket, TcpRepr,
};
use ustack_core::{Error, Shutdown, SocketHandle, Stack, StackConfig};

/// `Pkt::from` of a segment the client sent (it entered the middlebox on
/// port 0); also the port to inject a frame toward the client.
pub const FROM_CLIENT: usize = 0;
/// `Pkt::from` of a segment the server sent (middlebox port 1).
pub const FROM_SERVER: usize = 1;
/// `Rig::inject` toward the server goes out of port 1.
pub const TO_SERVER: usize = 1;
pub const TO_CLIENT: usize = 0;

pub const SERVER_PORT: u16 = 5000;

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}
pub fn at_ms(n: u64) -> Instant {
    Instant::from_millis(n)
}

pub fn client_ip() -> Ipv4Addr {
    host_ip(1)
}
pub fn server_ip() -> Ipv4Addr {
    host_ip(2)
}
pub fn server_addr() -> SocketAddrV4 {
    SocketAddrV4::new(server_ip(), SERVER_PORT)
}

/// A TCP segment that crossed the middlebox.
#[derive(Clone, Debug)]
pub struct Pkt {
    pub at: Instant,
    /// [`FROM_CLIENT`] or [`FROM_SERVER`].
    pub from: usize,
    pub eth: EthernetRepr,
    pub ip: Ipv4Repr,
    pub tcp: TcpRepr,
    pub payload: Vec<u8>,
    /// The frame as it arrived at the middlebox.
    pub frame: Vec<u8>,
    /// The rule dropped it.
    pub dropped: bool,
}

impl Pkt {
    pub fn flags(&self) -> TcpFlags {
        self.tcp.flags
    }
    pub fn is(&self, flags: TcpFlags) -> bool {
        self.tcp.flags.contains(flags)
    }
    /// Exactly SYN (no ACK).
    pub fn is_syn(&self) -> bool {
        self.tcp.flags.syn() && !self.tcp.flags.ack()
    }
    pub fn is_synack(&self) -> bool {
        self.tcp.flags.syn() && self.tcp.flags.ack()
    }
    pub fn is_rst(&self) -> bool {
        self.tcp.flags.rst()
    }
    pub fn is_fin(&self) -> bool {
        self.tcp.flags.fin()
    }
    /// An ACK with no data and no SYN, FIN or RST.
    pub fn is_pure_ack(&self) -> bool {
        self.tcp.flags.ack()
            && !self.tcp.flags.syn()
            && !self.tcp.flags.fin()
            && !self.tcp.flags.rst()
            && self.payload.is_empty()
    }
    pub fn seq(&self) -> u32 {
        self.tcp.seq
    }
    pub fn ack(&self) -> u32 {
        self.tcp.ack
    }
    pub fn len(&self) -> usize {
        self.payload.len()
    }
    pub fn src(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.ip.src_addr, self.tcp.src_port)
    }
    pub fn dst(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.ip.dst_addr, self.tcp.dst_port)
    }
    /// Sequence number just past the segment (SEG.SEQ + SEG.LEN).
    pub fn end(&self) -> u32 {
        self.tcp.seq.wrapping_add(self.tcp.segment_len(self.payload.len()) as u32)
    }
    /// Bytes of TCP options in the header.
    pub fn options_len(&self) -> usize {
        self.tcp.header_len() - 20
    }
}

impl std::fmt::Display for Pkt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let who = if self.from == FROM_CLIENT { "C>S" } else { "S>C" };
        write!(f, "{} {who} {} len={}", self.at, self.tcp, self.payload.len())?;
        if self.dropped {
            f.write_str(" DROPPED")?;
        }
        Ok(())
    }
}

/// Parses an Ethernet/IPv4/TCP frame without checking checksums.
pub fn parse_tcp(frame: &[u8]) -> Option<(EthernetRepr, Ipv4Repr, TcpRepr, Vec<u8>)> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let eth_repr = EthernetRepr::parse(&eth).ok()?;
    if eth_repr.ethertype != EtherType::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    let ip_repr = Ipv4Repr::parse(&ip, false).ok()?;
    if ip_repr.protocol != IpProtocol::Tcp {
        return None;
    }
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    let tcp_repr = TcpRepr::parse(&tcp, None).ok()?;
    Some((eth_repr, ip_repr, tcp_repr, tcp.payload().to_vec()))
}

/// Builds an Ethernet/IPv4/TCP frame with correct checksums.
pub fn build_frame(eth: EthernetRepr, src: Ipv4Addr, dst: Ipv4Addr, tcp: &TcpRepr, payload: &[u8]) -> Vec<u8> {
    let tcp_len = tcp.header_len() + payload.len();
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: IpProtocol::Tcp,
        payload_len: tcp_len,
        hop_limit: 64,
        ident: 0x4242,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
        dscp_ecn: 0,
    };
    let mut frame = vec![0u8; 14 + 20 + tcp_len];
    eth.emit(&mut EthernetFrame::new_unchecked(&mut frame[..]));
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut frame[14..]), true);
    let hl = tcp.header_len();
    frame[34 + hl..].copy_from_slice(payload);
    tcp.emit(&mut TcpPacket::new_unchecked(&mut frame[34..]), Some((src, dst)));
    frame
}

/// A frame from the same sender to the same receiver as `template`, with
/// the TCP header `tcp` and `payload`.
pub fn forge(template: &Pkt, tcp: &TcpRepr, payload: &[u8]) -> Vec<u8> {
    build_frame(template.eth, template.ip.src_addr, template.ip.dst_addr, tcp, payload)
}

/// A TCP header from `template`'s sender with new flags, SEQ and ACK, and
/// only the timestamp option of the template (so that PAWS, RFC 7323 §5,
/// accepts it).
pub fn forged_header(template: &Pkt, flags: TcpFlags, seq: u32, ack: u32) -> TcpRepr {
    let mut tcp = TcpRepr { flags, seq, ack, window: template.tcp.window, ..template.tcp };
    tcp.options = Default::default();
    tcp.options.timestamps = template.tcp.options.timestamps;
    tcp
}

/// An ICMP destination unreachable about `original` (a segment logged at
/// the middlebox), sent by its destination host back to its source, as a
/// frame to inject toward the source. It quotes the IP header and the
/// first 8 bytes of the TCP header, as RFC 792 asks.
pub fn icmp_unreachable_about(original: &Pkt, reason: DstUnreachable) -> Vec<u8> {
    let tcp = &original.frame[34..];
    let quote = &tcp[..8];
    let icmp = Icmpv4Repr::DstUnreachable { reason, header: original.ip, data: quote };
    let ip = Ipv4Repr {
        src_addr: original.ip.dst_addr,
        dst_addr: original.ip.src_addr,
        protocol: IpProtocol::Icmp,
        payload_len: icmp.buffer_len(),
        hop_limit: 64,
        ident: 0x4343,
        dont_frag: false,
        more_frags: false,
        frag_offset: 0,
        dscp_ecn: 0,
    };
    let mut frame = vec![0u8; 14 + 20 + icmp.buffer_len()];
    EthernetRepr { src: original.eth.dst, dst: original.eth.src, ethertype: EtherType::Ipv4 }
        .emit(&mut EthernetFrame::new_unchecked(&mut frame[..]));
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut frame[14..]), true);
    icmp.emit(&mut Icmpv4Packet::new_unchecked(&mut frame[34..]));
    frame
}

/// Flips bit `bit` of `frame` (bit 0 is the top bit of byte 0).
pub fn flip_bit(frame: &mut [u8], bit: usize) {
    frame[bit / 8] ^= 0x80 >> (bit % 8);
}

/// A segment from a stack's trace.
#[derive(Clone, Debug)]
pub struct Seg {
    pub at: Instant,
    pub dir: Direction,
    pub local: SocketAddrV4,
    pub remote: SocketAddrV4,
    pub tcp: TcpRepr,
    pub len: usize,
    pub rtx: bool,
}

impl Seg {
    pub fn sent(&self) -> bool {
        self.dir == Direction::Sent
    }
    pub fn is_syn(&self) -> bool {
        self.tcp.flags.syn() && !self.tcp.flags.ack()
    }
    pub fn is_synack(&self) -> bool {
        self.tcp.flags.syn() && self.tcp.flags.ack()
    }
    pub fn is_rst(&self) -> bool {
        self.tcp.flags.rst()
    }
    pub fn is_fin(&self) -> bool {
        self.tcp.flags.fin()
    }
    pub fn is_pure_ack(&self) -> bool {
        self.tcp.flags == TcpFlags::ACK && self.len == 0
    }
}

/// The segments in `events`, in order.
pub fn segs(events: &[Event]) -> Vec<Seg> {
    events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::TcpSegment { direction, local, remote, repr, payload_len, retransmission } => Some(Seg {
                at: e.time,
                dir: direction,
                local,
                remote,
                tcp: repr,
                len: payload_len,
                rtx: retransmission,
            }),
            _ => None,
        })
        .collect()
}

/// The segments a stack sent, in order.
pub fn sent(events: &[Event]) -> Vec<Seg> {
    segs(events).into_iter().filter(|s| s.sent()).collect()
}

/// A state change from a stack's trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    pub at: Instant,
    pub local: SocketAddrV4,
    pub remote: SocketAddrV4,
    pub from: State,
    pub to: State,
}

pub fn changes(events: &[Event]) -> Vec<Change> {
    events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::TcpState { local, remote, from, to } => Some(Change { at: e.time, local, remote, from, to }),
            _ => None,
        })
        .collect()
}

/// The states one connection (named by its local address) went through,
/// starting with the first one it left.
pub fn state_path(events: &[Event], local: SocketAddrV4) -> Vec<State> {
    let cs: Vec<Change> = changes(events).into_iter().filter(|c| c.local == local).collect();
    let mut path: Vec<State> = cs.first().map(|c| vec![c.from]).unwrap_or_default();
    path.extend(cs.iter().map(|c| c.to));
    path
}

/// When the connection at `local` entered `state` (the first time).
pub fn entered(events: &[Event], local: SocketAddrV4, state: State) -> Option<Instant> {
    changes(events).into_iter().find(|c| c.local == local && c.to == state).map(|c| c.at)
}

/// Two hosts through a middlebox; see the module documentation.
pub struct Rig {
    pub net: Network,
    pub client: NodeId,
    pub server: NodeId,
    pub mb: NodeId,
    /// client -- middlebox
    pub client_link: LinkId,
    /// middlebox -- server
    pub server_link: LinkId,
    pub log: Rc<RefCell<Vec<Pkt>>>,
    client_events: Vec<Event>,
    server_events: Vec<Event>,
}

/// How a rig is built.
#[derive(Clone)]
pub struct RigConfig {
    pub seed: u64,
    /// Each of the two links (so the one-way delay is twice its delay).
    pub link: LinkConfig,
    pub client: StackConfig,
    pub server: StackConfig,
}

impl RigConfig {
    /// 5 ms links (a 20 ms round trip), default stacks.
    pub fn new(seed: u64) -> Self {
        RigConfig {
            seed,
            link: LinkConfig::default().delay(ms(5)),
            client: host_config(1, seed),
            server: host_config(2, seed),
        }
    }
    pub fn link(mut self, link: LinkConfig) -> Self {
        self.link = link;
        self
    }
    /// Changes both stacks' TCP defaults.
    pub fn tcp(mut self, f: impl Fn(&mut TcpConfig)) -> Self {
        f(&mut self.client.tcp);
        f(&mut self.server.tcp);
        self
    }
    pub fn client_tcp(mut self, f: impl FnOnce(&mut TcpConfig)) -> Self {
        f(&mut self.client.tcp);
        self
    }
    pub fn server_tcp(mut self, f: impl FnOnce(&mut TcpConfig)) -> Self {
        f(&mut self.server.tcp);
        self
    }
    pub fn build(self) -> Rig {
        Rig::from_config(self)
    }
}

impl Rig {
    /// The default rig: 5 ms links, default stacks, tracing on.
    pub fn new(seed: u64) -> Rig {
        RigConfig::new(seed).build()
    }

    pub fn from_config(cfg: RigConfig) -> Rig {
        let mut net = Network::new(cfg.seed);
        let mut cs = Stack::new(cfg.client);
        let mut ss = Stack::new(cfg.server);
        cs.set_tracing(true);
        ss.set_tracing(true);
        // Static ARP entries: segments leave at once, so the wire timing
        // is the links' alone (ARP has its own tests).
        cs.neighbors_mut().insert_static(server_ip(), *host_mac(2).as_bytes());
        ss.neighbors_mut().insert_static(client_ip(), *host_mac(1).as_bytes());
        let client = net.add(Host::new(cs));
        let server = net.add(Host::new(ss));
        let mb = net.add(Middlebox::new());
        net.set_node_name(client, "client");
        net.set_node_name(server, "server");
        net.set_node_name(mb, "middlebox");
        let client_link = net.connect((client, 0), (mb, 0), cfg.link.clone());
        let server_link = net.connect((mb, 1), (server, 0), cfg.link);
        let mut rig = Rig {
            net,
            client,
            server,
            mb,
            client_link,
            server_link,
            log: Rc::new(RefCell::new(Vec::new())),
            client_events: Vec::new(),
            server_events: Vec::new(),
        };
        rig.set_rule(|_| Verdict::Pass);
        rig
    }

    /// Decides the fate of each TCP segment crossing the middlebox (other
    /// frames, ARP, pass). Every segment is logged with its fate.
    pub fn set_rule(&mut self, mut rule: impl FnMut(&Pkt) -> Verdict + 'static) {
        self.set_rewrite_rule(move |p, _| rule(p));
    }

    /// Like `set_rule`, and the rule may also rewrite the frame (the log
    /// keeps the frame as it arrived).
    pub fn set_rewrite_rule(&mut self, mut rule: impl FnMut(&Pkt, &mut Vec<u8>) -> Verdict + 'static) {
        let log = self.log.clone();
        self.mb_mut().set_filter(move |now, port, frame: &mut Vec<u8>| {
            let Some((eth, ip, tcp, payload)) = parse_tcp(frame) else {
                return Verdict::Pass;
            };
            let mut pkt = Pkt { at: now, from: port, eth, ip, tcp, payload, frame: frame.clone(), dropped: false };
            let verdict = rule(&pkt, frame);
            pkt.dropped = verdict == Verdict::Drop;
            log.borrow_mut().push(pkt);
            verdict
        });
    }

    pub fn mb_mut(&mut self) -> &mut Middlebox {
        self.net.node_as_mut::<Middlebox>(self.mb).unwrap()
    }

    /// Sends a frame out of the middlebox's port `toward` ([`TO_SERVER`]
    /// or [`TO_CLIENT`]) now.
    pub fn inject(&mut self, toward: usize, frame: Vec<u8>) {
        self.mb_mut().inject(toward, frame);
    }

    /// Every segment logged so far.
    pub fn pkts(&self) -> Vec<Pkt> {
        self.log.borrow().clone()
    }

    /// Segments logged from `from` ([`FROM_CLIENT`] or [`FROM_SERVER`]).
    pub fn pkts_from(&self, from: usize) -> Vec<Pkt> {
        self.log.borrow().iter().filter(|p| p.from == from).cloned().collect()
    }

    /// The last segment logged from `from`.
    pub fn last_from(&self, from: usize) -> Pkt {
        self.log.borrow().iter().rev().find(|p| p.from == from).cloned().expect("no segment logged")
    }

    /// Prints the log (for a failing test's output).
    pub fn dump(&self) {
        for p in self.log.borrow().iter() {
            println!("{p}");
        }
    }

    pub fn now(&self) -> Instant {
        self.net.now()
    }

    fn stack_of(&mut self, id: NodeId) -> &mut Stack {
        let now = self.net.now();
        let stack = &mut self.net.host_mut(id).stack;
        // Bring the stack's clock to now before the test calls into it.
        stack.handle_timeout(now);
        stack
    }

    /// The client's stack, its clock brought to now.
    pub fn c(&mut self) -> &mut Stack {
        self.stack_of(self.client)
    }

    /// The server's stack, its clock brought to now.
    pub fn s(&mut self) -> &mut Stack {
        self.stack_of(self.server)
    }

    pub fn run_for(&mut self, d: Duration) {
        self.net.run_for(d);
    }

    pub fn run_until(&mut self, t: Instant) {
        self.net.run_until(t);
    }

    /// Processes the next instant at which anything happens, if that is
    /// no later than `limit`; false otherwise.
    pub fn step_before(&mut self, limit: Instant) -> bool {
        // Send what calls made since the last step queued, then look ahead.
        self.net.run_until(self.net.now());
        match self.net.next_event() {
            Some(t) if t <= limit => self.net.step(),
            _ => false,
        }
    }

    /// Steps until `done` holds; panics if it does not by `limit`.
    pub fn run_until_true(&mut self, limit: Instant, what: &str, mut done: impl FnMut(&mut Rig) -> bool) {
        while !done(self) {
            if !self.step_before(limit) {
                self.dump();
                panic!("{what}: not done by {limit} (now {})", self.net.now());
            }
        }
    }

    /// All trace events of the client so far.
    pub fn client_events(&mut self) -> Vec<Event> {
        let new = self.net.host_mut(self.client).stack.take_events();
        self.client_events.extend(new);
        self.client_events.clone()
    }

    pub fn server_events(&mut self) -> Vec<Event> {
        let new = self.net.host_mut(self.server).stack.take_events();
        self.server_events.extend(new);
        self.server_events.clone()
    }

    /// A listener on the server at [`server_addr`] with `backlog`.
    pub fn listen(&mut self, backlog: usize) -> SocketHandle {
        let s = self.s();
        let l = s.tcp_socket().unwrap();
        s.bind(l, server_addr()).unwrap();
        s.listen(l, backlog).unwrap();
        l
    }

    /// Starts a connect from the client to the server.
    pub fn connect(&mut self) -> SocketHandle {
        let c = self.c();
        let h = c.tcp_socket().unwrap();
        c.connect(h, server_addr()).unwrap();
        h
    }

    /// Listens, connects and accepts: returns (client, listener, server).
    pub fn establish(&mut self) -> (SocketHandle, SocketHandle, SocketHandle) {
        let l = self.listen(16);
        let c = self.connect();
        let limit = self.now() + secs(10);
        self.run_until_true(limit, "handshake", |r| r.c().tcp_state(c) == Ok(State::Established) && r.s().can_recv(l));
        let (s, _) = self.s().accept(l).unwrap();
        assert_eq!(self.s().tcp_state(s), Ok(State::Established));
        (c, l, s)
    }

    /// Sends all of `data` on `h` of `node`, running the network while the
    /// send buffer is full.
    pub fn send_all(&mut self, node: NodeId, h: SocketHandle, data: &[u8]) {
        let mut off = 0;
        let limit = self.now() + secs(600);
        while off < data.len() {
            let now = self.now();
            let st = self.stack_of(node);
            match st.send(h, &data[off..]) {
                Ok(n) => off += n,
                Err(Error::WouldBlock) => assert!(self.step_before(limit), "send_all stalled at {now}"),
                Err(e) => panic!("send failed at {now}: {e}"),
            }
        }
    }

    /// Reads what is readable on `h` of `node` into `out`; returns
    /// Ok(true) at end of file.
    pub fn read_some(&mut self, node: NodeId, h: SocketHandle, out: &mut Vec<u8>) -> Result<bool, Error> {
        let st = self.stack_of(node);
        let mut buf = [0u8; 8192];
        loop {
            match st.recv(h, &mut buf) {
                Ok(0) => return Ok(true),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(Error::WouldBlock) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads at the server until `n` bytes have arrived, running the
    /// network; returns them.
    pub fn read_n(&mut self, s: SocketHandle, n: usize, limit: Instant) -> Vec<u8> {
        let mut got = Vec::new();
        while got.len() < n {
            self.read_some(self.server, s, &mut got).unwrap();
            if got.len() < n {
                assert!(self.step_before(limit), "only {} of {n} bytes by {limit}", got.len());
            }
        }
        got
    }

    /// Sends `data` from the client's `c` while the server's `s` reads it;
    /// returns what the server read.
    pub fn pump(&mut self, c: SocketHandle, s: SocketHandle, data: &[u8], limit: Instant) -> Vec<u8> {
        let (mut off, mut got) = (0, Vec::new());
        while got.len() < data.len() {
            off += self.c().send(c, &data[off..]).unwrap_or(0);
            self.read_some(self.server, s, &mut got).unwrap();
            if got.len() < data.len() {
                assert!(self.step_before(limit), "only {} of {} bytes by {limit}", got.len(), data.len());
            }
        }
        got
    }

    /// Reads `h` of `node` until end of file, running the network.
    pub fn read_to_eof(&mut self, node: NodeId, h: SocketHandle, limit: Instant) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            match self.read_some(node, h, &mut out) {
                Ok(true) => return out,
                Ok(false) => {}
                Err(e) => panic!("recv failed at {}: {e}", self.now()),
            }
            if !self.step_before(limit) {
                panic!("read_to_eof: no end of file by {limit} ({} bytes read)", out.len());
            }
        }
    }
}

/// Deterministic test data.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| ((i * 131 + (i >> 8) * 7) as u8) ^ seed).collect()
}

/// A server application that echoes every byte it reads on each accepted
/// connection, half-closes once the peer has, and closes when all is
/// echoed.
pub struct EchoServer {
    pub local: SocketAddrV4,
    pub backlog: usize,
    /// Accept nothing before this instant.
    pub accept_from: Instant,
    listener: Option<SocketHandle>,
    conns: Vec<EchoConn>,
    pub accepted: Vec<(SocketHandle, SocketAddrV4)>,
    pub finished: usize,
    pub errors: Vec<Error>,
}

struct EchoConn {
    h: SocketHandle,
    pending: Vec<u8>,
    eof: bool,
}

impl EchoServer {
    pub fn new(local: SocketAddrV4, backlog: usize) -> Self {
        EchoServer {
            local,
            backlog,
            accept_from: Instant::ZERO,
            listener: None,
            conns: Vec::new(),
            accepted: Vec::new(),
            finished: 0,
            errors: Vec::new(),
        }
    }
}

impl App for EchoServer {
    fn poll(&mut self, now: Instant, stack: &mut Stack) -> Option<Instant> {
        if self.listener.is_none() {
            let l = stack.tcp_socket().unwrap();
            stack.bind(l, self.local).unwrap();
            stack.listen(l, self.backlog).unwrap();
            self.listener = Some(l);
        }
        if now >= self.accept_from {
            while let Ok((h, remote)) = stack.accept(self.listener.unwrap()) {
                self.accepted.push((h, remote));
                self.conns.push(EchoConn { h, pending: Vec::new(), eof: false });
            }
        }
        let mut buf = [0u8; 4096];
        let mut i = 0;
        while i < self.conns.len() {
            let c = &mut self.conns[i];
            let mut failed = false;
            while !c.eof {
                match stack.recv(c.h, &mut buf) {
                    Ok(0) => c.eof = true,
                    Ok(n) => c.pending.extend_from_slice(&buf[..n]),
                    Err(Error::WouldBlock) => break,
                    Err(e) => {
                        self.errors.push(e);
                        failed = true;
                        break;
                    }
                }
            }
            while !failed && !c.pending.is_empty() {
                match stack.send(c.h, &c.pending) {
                    Ok(n) => {
                        c.pending.drain(..n);
                    }
                    Err(Error::WouldBlock) => break,
                    Err(e) => {
                        self.errors.push(e);
                        failed = true;
                    }
                }
            }
            if failed || (c.eof && c.pending.is_empty()) {
                if !failed {
                    stack.shutdown(c.h, Shutdown::Write).unwrap();
                    self.finished += 1;
                }
                stack.close(c.h).unwrap();
                self.conns.swap_remove(i);
            } else {
                i += 1;
            }
        }
        (now < self.accept_from).then_some(self.accept_from)
    }
}

/// Two stacks joined directly, IP packet to IP packet: hands every packet
/// each has over to the other, at `now`, running timers due by then,
/// until both are quiet.
pub fn settle_direct(now: Instant, a: &mut ustack_core::Stack, b: &mut ustack_core::Stack) {
    let mut buf = vec![0u8; 65_600];
    loop {
        let mut moved = 0;
        while let Some(n) = a.poll_transmit(now, &mut buf) {
            b.handle_ip_packet(now, &buf[..n]);
            moved += 1;
        }
        while let Some(n) = b.poll_transmit(now, &mut buf) {
            a.handle_ip_packet(now, &buf[..n]);
            moved += 1;
        }
        a.handle_timeout(now);
        b.handle_timeout(now);
        if moved == 0 {
            return;
        }
    }
}
