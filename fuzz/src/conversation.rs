//! The `tcp_conversation` target: a structured TCP peer.
//!
//! The input is a [`Conversation`]: how the stack is set up, whether it
//! listens (the peer connects) or connects out (the peer answers), the
//! peer's ISN, and a sequence of [`Op`]s: segments the peer sends, described
//! by fields (flags, sequence and acknowledgement numbers as offsets from
//! what each side has sent, window, options with SACK blocks and
//! timestamps, payload length), time passing, ICMP errors, and the
//! application's socket calls. Segments are built with the `wire` emitters,
//! so checksums are right and the fuzzer spends its effort on TCP itself.
//!
//! After every step the harness checks:
//! - nothing panicked, and the stack settled (no frame or timer storm);
//! - every packet the stack sent parses at every layer ([`crate::check`]);
//! - the bytes the application reads are, in order, the bytes the peer
//!   sent at those sequence numbers (the peer's byte at sequence number `s`
//!   is always [`peer_byte`]`(s)`, and some segment carried it): nothing
//!   reordered, duplicated, invented or skipped; and the stream bytes the
//!   stack acknowledged are readable (nothing acknowledged is lost);
//! - every segment the stack sent lies within what its application wrote
//!   (sequence numbers from its ISN, FIN last, payload the bytes written at
//!   those offsets), and acknowledges nothing the peer did not send;
//!
//! and at the end, once the application has closed everything and enough
//! time has passed in silence, the stack holds no socket and no timer.

use crate::check::{self, Host, Segment};
use arbitrary::Arbitrary;
use std::net::{Ipv4Addr, SocketAddrV4};
use ustack_core::socket::SockOpt;
use ustack_core::tcp::{Algorithm, State};
use ustack_core::time::Duration;
use ustack_core::wire::{
    DstUnreachable, Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Cidr, Ipv4Packet, Ipv4Repr, TcpFlags, TcpOptions,
    TcpPacket, TcpRepr, TimeExceeded,
};
use ustack_core::{Instant, Shutdown, SocketHandle, Stack, StackConfig};

pub const STACK_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub const ROUTER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 254);
/// The stack's listening port, and the peer's when the stack connects.
pub const STACK_PORT: u16 = 80;
pub const PEER_PORT: u16 = 40_000;
pub const PEER_LISTEN_PORT: u16 = 443;
/// Most operations one input runs, and most payload per segment.
pub const MAX_OPS: usize = 400;
pub const MAX_PAYLOAD: usize = 3000;
/// Virtual time the stack is given, at the end, to finish on its own.
pub const FINAL_SILENCE: Duration = Duration::from_secs(4 * 3600);

/// One fuzz input.
#[derive(Arbitrary, Clone, Debug, PartialEq)]
pub struct Conversation {
    /// The stack connects out (else it listens and the peer connects).
    pub active: bool,
    pub setup: Setup,
    pub peer_isn: u32,
    pub ops: Vec<Op>,
}

/// The stack's TCP settings.
#[derive(Arbitrary, Clone, Debug, PartialEq)]
pub struct Setup {
    pub sack: bool,
    pub timestamps: bool,
    pub window_scaling: bool,
    pub nagle: bool,
    pub delayed_ack: bool,
    /// 4 KiB buffers without auto-tuning, so windows fill and close.
    pub small_buffers: bool,
    pub newreno: bool,
    pub pacing: bool,
    pub mtu: Mtu,
}

#[derive(Arbitrary, Clone, Copy, Debug, PartialEq)]
pub enum Mtu {
    Ethernet,
    Small,
    Minimum,
}

impl Mtu {
    pub fn bytes(self) -> usize {
        match self {
            Mtu::Ethernet => 1500,
            Mtu::Small => 576,
            // RFC 791's smallest MTU: 48 bytes for a TCP segment, less
            // than the largest header.
            Mtu::Minimum => 68,
        }
    }
}

/// One step of the conversation.
#[derive(Arbitrary, Clone, Debug, PartialEq)]
pub enum Op {
    /// The peer's SYN (the stack listens) or SYN-ACK (the stack connected)
    /// at the peer's ISN, acknowledging the stack's SYN.
    Open(SynOptions),
    /// The peer acknowledges everything it saw and sends `len` bytes in
    /// order, then maybe its FIN.
    Data {
        len: u16,
        fin: bool,
    },
    /// A pure acknowledgement of everything, with `window` and SACK blocks.
    Ack {
        window: u16,
        sack: Vec<SackBlock>,
    },
    /// Any segment, described field by field.
    Segment(SegmentSpec),
    /// An ICMP error about a segment of the connection, from a router.
    Icmp(IcmpSpec),
    Wait(Wait),
    /// The application's calls, on the socket it holds (the last accepted
    /// or the connecting one).
    Send(u16),
    Recv(u16),
    Shutdown(How),
    Close,
    Abort,
    Accept,
    SetOption(Opt),
}

#[derive(Arbitrary, Clone, Copy, Debug, PartialEq)]
pub struct SynOptions {
    pub mss: Option<u16>,
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
    pub timestamps: bool,
    pub window: u16,
}

/// A SACK block as offsets from the acknowledgement number it travels with.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq)]
pub struct SackBlock {
    pub start: i16,
    pub len: u16,
}

#[derive(Arbitrary, Clone, Debug, PartialEq)]
pub struct SegmentSpec {
    pub flags: u8,
    pub seq: SeqSpec,
    pub ack: AckSpec,
    pub window: u16,
    pub syn_options: Option<SynOptions>,
    pub timestamps: TsSpec,
    pub sack: Vec<SackBlock>,
    pub len: u16,
    pub urgent: u16,
}

/// Where a segment's sequence number lies.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq)]
pub enum SeqSpec {
    /// From the next byte the peer would send.
    Next(i16),
    /// From the peer's ISN.
    Isn(i32),
    Raw(u32),
}

/// Where a segment's acknowledgement number lies.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq)]
pub enum AckSpec {
    /// From the end of what the stack has sent.
    Next(i16),
    /// From the stack's ISN.
    Iss(i32),
    /// From the last acknowledgement the peer sent (duplicates).
    Last(i16),
    Raw(u32),
}

#[derive(Arbitrary, Clone, Copy, Debug, PartialEq)]
pub enum TsSpec {
    None,
    /// The peer's clock, echoing the stack's latest TSval.
    Good,
    /// The peer's clock set back.
    Stale(u16),
    Raw(u32, u32),
}

#[derive(Arbitrary, Clone, Copy, Debug, PartialEq)]
pub struct IcmpSpec {
    pub kind: IcmpKind,
    /// The quoted sequence number, from the stack's last unacknowledged byte.
    pub seq: i32,
}

#[derive(Arbitrary, Clone, Copy, Debug, PartialEq)]
pub enum IcmpKind {
    FragNeeded(u16),
    PortUnreachable,
    HostUnreachable,
    NetUnreachable,
    Prohibited,
    TtlExceeded,
}

#[derive(Arbitrary, Clone, Copy, Debug, PartialEq)]
pub enum Wait {
    Millis(u8),
    Seconds(u8),
    /// Until the stack's next timer.
    NextTimer,
}

#[derive(Arbitrary, Clone, Copy, Debug, PartialEq)]
pub enum How {
    Read,
    Write,
    Both,
}

#[derive(Arbitrary, Clone, Copy, Debug, PartialEq)]
pub enum Opt {
    RecvBuffer(u16),
    SendBuffer(u16),
    NoDelay(bool),
    KeepAlive(bool),
    KeepIdle(u8),
    KeepInterval(u8),
    KeepCount(u8),
    UserTimeout(u8),
    LingerZero,
    NewReno(bool),
    MaxSegment(u16),
}

/// The peer's stream: the byte at sequence number `s`, whichever segment
/// carries it.
pub fn peer_byte(s: u32) -> u8 {
    (s.wrapping_mul(0x9e37_79b1) >> 24) as u8
}

/// The application's stream: the byte at offset `o`.
pub fn app_byte(o: u64) -> u8 {
    ((o as u32).wrapping_mul(0x85eb_ca6b).wrapping_add(0x1234_5678) >> 24) as u8
}

/// Sequence-space distance from `from` to `to`, when `to` is not before it.
fn ahead(from: u32, to: u32) -> Option<u64> {
    let d = to.wrapping_sub(from);
    (d < 1 << 31).then_some(d as u64)
}

/// What the peer sent: a segment's sequence space.
#[derive(Clone, Copy, Debug)]
struct PeerSeg {
    seq: u32,
    syn: bool,
    len: u32,
    fin: bool,
}

impl PeerSeg {
    fn data_start(&self) -> u32 {
        self.seq.wrapping_add(self.syn as u32)
    }
    fn end(&self) -> u32 {
        self.data_start().wrapping_add(self.len).wrapping_add(self.fin as u32)
    }
}

/// One connection the stack created, as the harness knows it.
#[derive(Clone, Debug)]
struct Track {
    handle: SocketHandle,
    /// The peer's ISN this connection took, and the stack's own.
    irs: Option<u32>,
    iss: Option<u32>,
    /// Bytes the application wrote and read.
    written: u64,
    read: u64,
    /// The most the stack acknowledged, counted from IRS + 1.
    acked: u64,
    read_shut: bool,
    /// The stack sent its FIN.
    fin_sent: bool,
}

struct Harness {
    stack: Stack,
    host: Host,
    now: Instant,
    active: bool,
    listener: Option<SocketHandle>,
    /// Sockets the application holds, the current one last.
    app: Vec<SocketHandle>,
    stack_port: u16,
    peer_port: u16,
    peer_isn: u32,
    peer_nxt: u32,
    peer_ts: bool,
    peer_clock_offset: u32,
    last_ack: u32,
    stack_iss: Option<u32>,
    stack_nxt: Option<u32>,
    stack_tsval: u32,
    /// The highest acknowledgement the peer sent that the stack could take.
    peer_max_ack: Option<u32>,
    peer_segs: Vec<PeerSeg>,
    tracks: Vec<Track>,
    out: Vec<u8>,
    tx: Vec<u8>,
}

/// Runs one conversation and checks it (panics on a violation).
pub fn run(conv: &Conversation) {
    if trace() {
        eprintln!("active={} peer_isn={} {:?}", conv.active, conv.peer_isn, conv.setup);
    }
    let mut h = Harness::new(conv);
    for op in conv.ops.iter().take(MAX_OPS) {
        if trace() {
            eprintln!("{:>12?} {op:?}", h.now);
        }
        h.step(op);
    }
    h.finish();
}

/// `USTACK_FUZZ_TRACE=1` prints each step and segment (for reproducing).
fn trace() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("USTACK_FUZZ_TRACE").is_some())
}

fn stack_config(setup: &Setup) -> StackConfig {
    let mut cfg = StackConfig::ip(Ipv4Cidr::new(STACK_IP, 24)).with_seed(7).with_mtu(setup.mtu.bytes());
    let t = &mut cfg.tcp;
    t.sack = setup.sack;
    t.timestamps = setup.timestamps;
    t.window_scaling = setup.window_scaling;
    t.nagle = setup.nagle;
    t.delayed_ack = setup.delayed_ack.then_some(Duration::from_millis(40));
    t.pacing = setup.pacing;
    t.congestion = if setup.newreno { Algorithm::NewReno } else { Algorithm::Cubic };
    if setup.small_buffers {
        t.recv_buffer = 4096;
        t.send_buffer = 4096;
        t.recv_buffer_max = 4096;
        t.send_buffer_max = 4096;
        t.autotune = false;
    }
    cfg
}

impl Harness {
    fn new(conv: &Conversation) -> Self {
        let cfg = stack_config(&conv.setup);
        let host = Host { mac: cfg.hardware_addr, ip: STACK_IP, mtu: cfg.mtu, ttl: cfg.ttl, any_ip: cfg.any_ip };
        let stack = Stack::new(cfg);
        let now = Instant::from_secs(1);
        let mut h = Harness {
            stack,
            host,
            now,
            active: conv.active,
            listener: None,
            app: Vec::new(),
            stack_port: STACK_PORT,
            peer_port: PEER_PORT,
            peer_isn: conv.peer_isn,
            peer_nxt: conv.peer_isn,
            peer_ts: false,
            peer_clock_offset: conv.peer_isn.rotate_left(7),
            last_ack: 0,
            stack_iss: None,
            stack_nxt: None,
            stack_tsval: 0,
            peer_max_ack: None,
            peer_segs: Vec::new(),
            tracks: Vec::new(),
            out: vec![0u8; 70_000],
            tx: Vec::new(),
        };
        h.stack.handle_timeout(now);
        if conv.active {
            let s = h.stack.tcp_socket().expect("a socket");
            h.stack.connect(s, SocketAddrV4::new(PEER_IP, PEER_LISTEN_PORT)).expect("connect starts");
            h.stack_port = h.stack.local_addr(s).expect("bound by connect").port();
            h.peer_port = PEER_LISTEN_PORT;
            h.app.push(s);
            h.tracks.push(Track::new(s));
        } else {
            let l = h.stack.tcp_socket().expect("a socket");
            h.stack.bind(l, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, STACK_PORT)).expect("bind");
            h.stack.listen(l, 8).expect("listen");
            h.listener = Some(l);
        }
        h.drain();
        h
    }

    fn peer_clock(&self) -> u32 {
        (self.now.as_millis() as u32).wrapping_add(self.peer_clock_offset)
    }

    fn step(&mut self, op: &Op) {
        match op {
            Op::Open(o) => {
                let (flags, ack) = if self.active {
                    (TcpFlags::SYN | TcpFlags::ACK, self.stack_iss.map_or(0, |i| i.wrapping_add(1)))
                } else {
                    (TcpFlags::SYN, 0)
                };
                self.peer_ts = o.timestamps;
                let options = syn_options(o, self.peer_clock(), self.stack_tsval);
                let seg = TcpRepr {
                    src_port: self.peer_port,
                    dst_port: self.stack_port,
                    seq: self.peer_isn,
                    ack,
                    flags,
                    window: o.window,
                    urgent: 0,
                    options,
                };
                self.peer_nxt = self.peer_isn.wrapping_add(1);
                self.send_segment(seg, 0);
            }
            Op::Data { len, fin } => {
                let len = (*len as usize).min(MAX_PAYLOAD);
                let mut flags = TcpFlags::ACK;
                if len > 0 {
                    flags |= TcpFlags::PSH;
                }
                if *fin {
                    flags |= TcpFlags::FIN;
                }
                let seg = self.plain(flags, 65535);
                self.send_segment(seg, len);
            }
            Op::Ack { window, sack } => {
                let mut seg = self.plain(TcpFlags::ACK, *window);
                push_sack(&mut seg.options, seg.ack, sack);
                self.send_segment(seg, 0);
            }
            Op::Segment(s) => {
                let seq = match s.seq {
                    SeqSpec::Next(d) => self.peer_nxt.wrapping_add(d as i32 as u32),
                    SeqSpec::Isn(d) => self.peer_isn.wrapping_add(d as u32),
                    SeqSpec::Raw(v) => v,
                };
                let stack_nxt = self.stack_nxt.unwrap_or(0);
                let ack = match s.ack {
                    AckSpec::Next(d) => stack_nxt.wrapping_add(d as i32 as u32),
                    AckSpec::Iss(d) => self.stack_iss.unwrap_or(0).wrapping_add(d as u32),
                    AckSpec::Last(d) => self.last_ack.wrapping_add(d as i32 as u32),
                    AckSpec::Raw(v) => v,
                };
                let flags = TcpFlags::from_bits(s.flags);
                let mut options = match &s.syn_options {
                    Some(o) => syn_options(o, 0, 0),
                    None => TcpOptions::default(),
                };
                options.timestamps = match s.timestamps {
                    TsSpec::None => None,
                    TsSpec::Good => Some((self.peer_clock(), self.stack_tsval)),
                    TsSpec::Stale(d) => Some((self.peer_clock().wrapping_sub(d as u32), self.stack_tsval)),
                    TsSpec::Raw(a, b) => Some((a, b)),
                };
                push_sack(&mut options, ack, &s.sack);
                let seg = TcpRepr {
                    src_port: self.peer_port,
                    dst_port: self.stack_port,
                    seq,
                    ack,
                    flags,
                    window: s.window,
                    urgent: s.urgent,
                    options,
                };
                let len = (s.len as usize).min(MAX_PAYLOAD);
                self.send_segment(seg, len);
            }
            Op::Icmp(i) => self.send_icmp(i),
            Op::Wait(w) => {
                match *w {
                    Wait::Millis(ms) => self.now += Duration::from_millis(ms as u64),
                    Wait::Seconds(s) => self.now += Duration::from_secs(s as u64),
                    Wait::NextTimer => {
                        if let Some(t) = self.stack.poll_timeout() {
                            self.now = self.now.max(t);
                        }
                    }
                }
                self.stack.handle_timeout(self.now);
                self.drain();
            }
            Op::Send(n) => {
                let Some(&h) = self.app.last() else { return };
                let t = self.track_index(h);
                let from = self.tracks[t].written;
                self.tx.clear();
                self.tx.extend((0..*n as u64).map(|i| app_byte(from + i)));
                if let Ok(sent) = self.stack.send(h, &self.tx) {
                    assert!(sent <= self.tx.len());
                    assert!(sent > 0 || self.tx.is_empty(), "send took nothing without saying EAGAIN");
                    self.tracks[t].written += sent as u64;
                }
                self.drain();
            }
            Op::Recv(n) => {
                let Some(&h) = self.app.last() else { return };
                self.recv(h, (*n as usize).max(1));
                self.drain();
            }
            Op::Shutdown(how) => {
                let Some(&h) = self.app.last() else { return };
                let how = match how {
                    How::Read => Shutdown::Read,
                    How::Write => Shutdown::Write,
                    How::Both => Shutdown::Both,
                };
                if self.stack.shutdown(h, how).is_ok() {
                    let t = self.track_index(h);
                    self.tracks[t].read_shut |= how != Shutdown::Write;
                }
                self.drain();
            }
            Op::Close => {
                let Some(h) = self.app.pop() else { return };
                let r = self.stack.close(h);
                handle_held(r);
                self.drain();
            }
            Op::Abort => {
                let Some(h) = self.app.pop() else { return };
                let r = self.stack.abort(h);
                handle_held(r);
                self.drain();
            }
            Op::Accept => {
                let Some(l) = self.listener else { return };
                if let Ok((h, remote)) = self.stack.accept(l) {
                    assert_eq!(remote, SocketAddrV4::new(PEER_IP, self.peer_port));
                    let t = self.track_index(h);
                    let state = self.stack.tcp_state(h).expect("an accepted socket");
                    assert!(self.tracks[t].irs.is_some(), "accepted a connection with no known ISN ({state})");
                    self.app.push(h);
                }
                self.drain();
            }
            Op::SetOption(o) => {
                let Some(h) = self.app.last().copied().or(self.listener) else { return };
                let opt = match *o {
                    Opt::RecvBuffer(n) => SockOpt::RecvBuffer(n as usize * 16),
                    Opt::SendBuffer(n) => SockOpt::SendBuffer(n as usize * 16),
                    Opt::NoDelay(on) => SockOpt::NoDelay(on),
                    Opt::KeepAlive(on) => SockOpt::KeepAlive(on),
                    Opt::KeepIdle(s) => SockOpt::KeepIdle(Duration::from_secs(s as u64)),
                    Opt::KeepInterval(s) => SockOpt::KeepInterval(Duration::from_secs(s as u64)),
                    Opt::KeepCount(n) => SockOpt::KeepCount(n as u32),
                    Opt::UserTimeout(s) => SockOpt::UserTimeout(Some(Duration::from_secs(s as u64))),
                    Opt::LingerZero => SockOpt::Linger(Some(Duration::ZERO)),
                    Opt::NewReno(on) => SockOpt::Congestion(if on { Algorithm::NewReno } else { Algorithm::Cubic }),
                    Opt::MaxSegment(m) => SockOpt::MaxSegment(m),
                };
                let _ = self.stack.set_option(h, opt);
                self.drain();
            }
        }
    }

    /// An ACK of everything seen, at the peer's next sequence number.
    fn plain(&self, flags: TcpFlags, window: u16) -> TcpRepr {
        let mut options = TcpOptions::default();
        if self.peer_ts {
            options.timestamps = Some((self.peer_clock(), self.stack_tsval));
        }
        TcpRepr {
            src_port: self.peer_port,
            dst_port: self.stack_port,
            seq: self.peer_nxt,
            ack: self.stack_nxt.unwrap_or(0),
            flags,
            window,
            urgent: 0,
            options,
        }
    }

    /// Builds the segment with `len` bytes of the peer's stream, sends it,
    /// and checks what follows.
    fn send_segment(&mut self, seg: TcpRepr, len: usize) {
        let p = PeerSeg { seq: seg.seq, syn: seg.flags.syn(), len: len as u32, fin: seg.flags.fin() };
        let start = p.data_start();
        let payload: Vec<u8> = (0..len as u32).map(|i| peer_byte(start.wrapping_add(i))).collect();
        if seg.seq == self.peer_nxt {
            self.peer_nxt = p.end();
        }
        if seg.flags.ack() {
            self.last_ack = seg.ack;
            let ack = seg.ack;
            if let Some(iss) = self.stack_iss {
                let new = ahead(iss, ack).unwrap_or(0);
                let sent = self.stack_nxt.and_then(|n| ahead(iss, n)).unwrap_or(0);
                let max = self.peer_max_ack.and_then(|m| ahead(iss, m)).unwrap_or(0);
                if new > max && new <= sent {
                    self.peer_max_ack = Some(ack);
                }
            }
        }
        self.peer_segs.push(p);
        let hl = seg.header_len();
        let mut tcp = vec![0u8; hl + len];
        tcp[hl..].copy_from_slice(&payload);
        seg.emit(&mut TcpPacket::new_unchecked(&mut tcp[..]), Some((PEER_IP, STACK_IP)));
        let packet = ip_packet(PEER_IP, STACK_IP, IpProtocol::Tcp, &tcp);
        let before: Vec<SocketHandle> = self.stack.tcp_connections().map(|(h, _)| h).collect();
        let active_was_syn_sent = self.active_state() == Some(State::SynSent);
        self.stack.handle_ip_packet(self.now, &packet);
        // New connections (a listener's children) take this segment's
        // sequence number as their IRS; the connecting socket takes it when
        // a SYN moves it out of SYN-SENT.
        let created: Vec<SocketHandle> =
            self.stack.tcp_connections().map(|(h, _)| h).filter(|h| !before.contains(h)).collect();
        for h in created {
            let t = self.track_index(h);
            // A SYN's ISN, or a SYN cookie's ACK one past it.
            self.tracks[t].irs = Some(if seg.flags.syn() { seg.seq } else { seg.seq.wrapping_sub(1) });
        }
        if active_was_syn_sent && seg.flags.syn() && self.active_state() != Some(State::SynSent) {
            self.tracks[0].irs = Some(seg.seq);
        }
        self.drain();
    }

    fn active_state(&self) -> Option<State> {
        if !self.active {
            return None;
        }
        self.stack.tcp_state(self.tracks[0].handle).ok()
    }

    fn send_icmp(&mut self, spec: &IcmpSpec) {
        let seq = self.stack_nxt.unwrap_or(0).wrapping_add(spec.seq as u32);
        let quoted = Ipv4Repr {
            src_addr: STACK_IP,
            dst_addr: PEER_IP,
            protocol: IpProtocol::Tcp,
            payload_len: 40,
            hop_limit: 64,
            ident: 1,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
            dscp_ecn: 0,
        };
        let mut data = [0u8; 8];
        data[0..2].copy_from_slice(&self.stack_port.to_be_bytes());
        data[2..4].copy_from_slice(&self.peer_port.to_be_bytes());
        data[4..8].copy_from_slice(&seq.to_be_bytes());
        let unreachable = |reason| Icmpv4Repr::DstUnreachable { reason, header: quoted, data: &data };
        let repr = match spec.kind {
            IcmpKind::FragNeeded(mtu) => unreachable(DstUnreachable::FragRequired { next_hop_mtu: mtu }),
            IcmpKind::PortUnreachable => unreachable(DstUnreachable::PortUnreachable),
            IcmpKind::HostUnreachable => unreachable(DstUnreachable::HostUnreachable),
            IcmpKind::NetUnreachable => unreachable(DstUnreachable::NetUnreachable),
            IcmpKind::Prohibited => unreachable(DstUnreachable::CommProhibited),
            IcmpKind::TtlExceeded => {
                Icmpv4Repr::TimeExceeded { reason: TimeExceeded::TtlExpired, header: quoted, data: &data }
            }
        };
        let mut icmp = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut icmp[..]));
        let packet = ip_packet(ROUTER_IP, STACK_IP, IpProtocol::Icmp, &icmp);
        self.stack.handle_ip_packet(self.now, &packet);
        self.drain();
    }

    fn track_index(&mut self, h: SocketHandle) -> usize {
        match self.tracks.iter().position(|t| t.handle == h) {
            Some(i) => i,
            None => {
                self.tracks.push(Track::new(h));
                self.tracks.len() - 1
            }
        }
    }

    /// The application reads up to `n` bytes, which must be the peer's
    /// next stream bytes.
    fn recv(&mut self, h: SocketHandle, n: usize) {
        let mut buf = vec![0u8; n];
        let t = self.track_index(h);
        match self.stack.recv(h, &mut buf) {
            Ok(0) => {}
            Ok(got) => {
                let track = &self.tracks[t];
                let irs = track.irs.unwrap_or_else(|| panic!("read {got} bytes from a connection with no IRS"));
                let first = irs.wrapping_add(1).wrapping_add(track.read as u32);
                for (i, &b) in buf[..got].iter().enumerate() {
                    let s = first.wrapping_add(i as u32);
                    assert_eq!(
                        b,
                        peer_byte(s),
                        "stream byte {} (seq {s}) read wrong: not what the peer sent there",
                        track.read + i as u64
                    );
                }
                assert!(
                    self.covered(first, got as u32),
                    "read stream bytes {}..{} (seq {first}..) the peer never sent",
                    track.read,
                    track.read + got as u64
                );
                self.tracks[t].read += got as u64;
            }
            Err(ustack_core::Error::WouldBlock) => {
                let track = &self.tracks[t];
                // Everything acknowledged is readable: at most the FIN
                // among what the ACK covers is not a byte.
                assert!(
                    track.read_shut || track.acked <= track.read + 1,
                    "the stack acknowledged {} stream bytes but the application can read only {}",
                    track.acked,
                    track.read
                );
            }
            Err(_) => {}
        }
    }

    /// Whether peer segments carried every byte of `[from, from + len)`.
    fn covered(&self, from: u32, len: u32) -> bool {
        let mut at = 0u32;
        'outer: while at < len {
            let s = from.wrapping_add(at);
            for p in &self.peer_segs {
                let off = s.wrapping_sub(p.data_start());
                if off < p.len {
                    at += (p.len - off).min(len - at);
                    continue 'outer;
                }
            }
            return false;
        }
        true
    }

    /// Sends what the stack has to send and runs its due timers, until it
    /// has nothing more to do at this instant.
    fn drain(&mut self) {
        let mut frames = 0usize;
        for round in 0.. {
            assert!(round < 10_000, "the stack keeps finding timers due at {:?}", self.now);
            while let Some(n) = self.stack.poll_transmit(self.now, &mut self.out) {
                frames += 1;
                assert!(frames < 100_000, "the stack sends without end at {:?}", self.now);
                let packet = self.out[..n].to_vec();
                self.on_emitted(&packet);
            }
            match self.stack.poll_timeout() {
                Some(t) if t <= self.now => self.stack.handle_timeout(self.now),
                _ => break,
            }
        }
    }

    fn on_emitted(&mut self, packet: &[u8]) {
        let Some(seg) = check::ip_packet(&self.host, packet, false) else {
            return;
        };
        let tcp = &seg.tcp;
        if trace() {
            let states: Vec<String> = self
                .stack
                .tcp_connections()
                .map(|(h, c)| {
                    let i = c.info();
                    format!(
                        "{}:{} cwnd={} ssthresh={} flight={}",
                        h.index(),
                        c.state(),
                        i.cwnd,
                        i.ssthresh,
                        i.in_flight
                    )
                })
                .collect();
            eprintln!(
                "{:>12?}   stack sent {tcp} len {} TS {:?} (peer clock {}) {states:?}",
                self.now,
                seg.payload.len(),
                tcp.options.timestamps,
                self.peer_clock()
            );
        }
        assert_eq!(seg.ip.dst_addr, PEER_IP, "a segment to nobody: {tcp}");
        assert_eq!((tcp.src_port, tcp.dst_port), (self.stack_port, self.peer_port), "{tcp}");
        if let Some((val, _)) = tcp.options.timestamps {
            self.stack_tsval = val;
        }
        if tcp.flags.rst() {
            // A RST answers whatever arrived, with its numbers: not checked.
            return;
        }
        let end = tcp.seq.wrapping_add(tcp.segment_len(seg.payload.len()) as u32);
        if self.stack_nxt.is_none_or(|n| (end.wrapping_sub(n) as i32) > 0) {
            self.stack_nxt = Some(end);
        }
        if tcp.flags.syn() {
            assert!(seg.payload.is_empty(), "a SYN with data: {tcp}");
            self.stack_iss = Some(tcp.seq);
            self.on_syn(&seg);
            return;
        }
        let peer_end = |irs: u32| -> u64 {
            let from = irs.wrapping_add(1);
            self.peer_segs.iter().filter_map(|p| ahead(from, p.end())).max().unwrap_or(0)
        };
        let mut why = Vec::new();
        for t in self.tracks.iter_mut().rev() {
            match t.check_segment(&seg, peer_end) {
                Ok(()) => return,
                Err(e) => why.push(format!("{:?}: {e}", t.handle)),
            }
        }
        panic!("segment {tcp} len {} fits no connection: {why:?}", seg.payload.len());
    }

    fn on_syn(&mut self, seg: &Segment) {
        let tcp = &seg.tcp;
        if !tcp.flags.ack() {
            // The connecting socket's SYN (and its retransmissions).
            assert!(self.active, "a SYN from a listening stack: {tcp}");
            let t = &mut self.tracks[0];
            assert!(t.iss.is_none_or(|i| i == tcp.seq), "SYN retransmitted with another ISN: {tcp}");
            t.iss = Some(tcp.seq);
            return;
        }
        let irs = tcp.ack.wrapping_sub(1);
        for t in self.tracks.iter_mut().rev() {
            if t.irs == Some(irs) && t.iss.is_none_or(|i| i == tcp.seq) {
                t.iss = Some(tcp.seq);
                return;
            }
        }
        // A SYN cookie has no connection behind it, but answers a SYN.
        assert!(
            self.peer_segs.iter().any(|p| p.syn && p.seq == irs),
            "SYN-ACK {tcp} answers no SYN the peer sent and no connection"
        );
    }

    /// The application closes everything, the peer falls silent, and after
    /// long enough the stack holds nothing.
    fn finish(&mut self) {
        if let Some(l) = self.listener {
            while let Ok((h, _)) = self.stack.accept(l) {
                self.app.push(h);
            }
        }
        for h in core::mem::take(&mut self.app) {
            handle_held(self.stack.close(h));
        }
        self.drain();
        let end = self.now + FINAL_SILENCE;
        for round in 0.. {
            assert!(round < 200_000, "timers without end while closing (now {:?})", self.now);
            match self.stack.poll_timeout() {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.stack.handle_timeout(self.now);
                    self.drain();
                }
                _ => break,
            }
        }
        let baseline = self.listener.is_some() as usize;
        if self.stack.socket_count() != baseline {
            let left: Vec<String> = self
                .stack
                .tcp_connections()
                .map(|(h, c)| format!("{h:?} {} orphan={} send_queue={}", c.state(), c.is_orphan(), c.send_queue()))
                .collect();
            panic!(
                "{} sockets left {}h after the application closed everything (baseline {baseline}): {left:?}",
                self.stack.socket_count(),
                FINAL_SILENCE.as_secs() / 3600
            );
        }
        if let Some(l) = self.listener.take() {
            self.stack.close(l).expect("the listener");
            self.drain();
        }
        if self.stack.socket_count() != 0 {
            return;
        }
        assert_eq!(self.stack.poll_timeout(), None, "a timer left behind with no socket");
        assert_eq!(self.stack.out_of_order_bytes(), 0, "out-of-order bytes counted for no connection");
    }
}

impl Track {
    fn new(handle: SocketHandle) -> Self {
        Track { handle, irs: None, iss: None, written: 0, read: 0, acked: 0, read_shut: false, fin_sent: false }
    }

    /// Whether this connection could have sent `seg` (not SYN, not RST).
    fn check_segment(&mut self, seg: &Segment, peer_end: impl Fn(u32) -> u64) -> Result<(), String> {
        let tcp = &seg.tcp;
        let (Some(iss), Some(irs)) = (self.iss, self.irs) else {
            return Err("ISNs not known".into());
        };
        // Data from ISS + 1 on, then the FIN.
        let off = ahead(iss, tcp.seq).ok_or("before the ISS")?;
        let len = seg.payload.len() as u64;
        let fin = tcp.flags.fin() as u64;
        // After the FIN, SND.NXT is one past it.
        let limit = self.written + 1 + (len == 0 && fin == 0 && self.fin_sent) as u64;
        if off + len > limit {
            return Err(format!("past what was written: offset {off} + {len}, written {}", self.written));
        }
        if fin == 1 && off + len != self.written + 1 {
            return Err(format!("FIN at offset {} but {} bytes written", off + len, self.written));
        }
        for (i, &b) in seg.payload.iter().enumerate() {
            // A keep-alive probe may carry one byte from before SND.UNA.
            let Some(o) = (off + i as u64).checked_sub(1) else { continue };
            if b != app_byte(o) {
                return Err(format!("payload byte {o} is {b:#x}, the application wrote {:#x}", app_byte(o)));
            }
        }
        if tcp.flags.ack() {
            let acked = ahead(irs.wrapping_add(1), tcp.ack).ok_or("acknowledges before the IRS")?;
            let sent = peer_end(irs);
            if acked > sent {
                return Err(format!("acknowledges {acked} bytes of sequence space, the peer sent {sent}"));
            }
            self.acked = self.acked.max(acked);
        }
        self.fin_sent |= fin == 1;
        Ok(())
    }
}

/// A call on a handle the application holds must find it.
fn handle_held(r: Result<(), ustack_core::Error>) {
    r.expect("the application holds this handle")
}

fn syn_options(o: &SynOptions, tsval: u32, tsecr: u32) -> TcpOptions {
    TcpOptions {
        mss: o.mss,
        window_scale: o.window_scale,
        sack_permitted: o.sack_permitted,
        timestamps: o.timestamps.then_some((tsval, tsecr)),
        ..Default::default()
    }
}

fn push_sack(options: &mut TcpOptions, ack: u32, blocks: &[SackBlock]) {
    for b in blocks.iter().take(4) {
        let left = ack.wrapping_add(b.start as i32 as u32);
        options.sack_blocks.push(left, left.wrapping_add(b.len as u32));
    }
    *options = options.fitted();
}

/// An IPv4 packet around `payload`.
pub fn ip_packet(src: Ipv4Addr, dst: Ipv4Addr, protocol: IpProtocol, payload: &[u8]) -> Vec<u8> {
    let repr = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol,
        payload_len: payload.len(),
        hop_limit: 64,
        ident: 0x4242,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
        dscp_ecn: 0,
    };
    let mut buf = vec![0u8; repr.total_len()];
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]), true);
    buf[repr.buffer_len()..].copy_from_slice(payload);
    buf
}
