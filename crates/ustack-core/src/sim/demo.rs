//! The scenario of a classic socket tutorial, on the simulated wire.
//!
//! A server listens on 10.0.0.2:12345; a client from 10.0.0.1:50784
//! connects, sends the 14 bytes `I'm TCP client` and closes; the server
//! reads, keeps what it got, and closes. The two hosts share an Ethernet
//! link (so ARP runs first). The outcome holds the ladder diagram, every
//! frame as it went onto the wire (for a pcap), and what the server read.

use super::apps::StreamHash;
use super::capture::{Fate, WireEvent};
use super::scenario::{host_config, host_ip};
use super::{Host, LinkConfig, Network};
use crate::socket::{Error, SocketHandle};
use crate::stack::Stack;
use crate::tcp::State;
use crate::time::{Duration, Instant};
use crate::trace::ladder::{Arrival, Ladder, Side, TcpLabeler};
use crate::trace::{Event, EventKind};
use crate::wire::{
    ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetFrame, IpProtocol, Ipv4Packet, Ipv4Repr, TcpPacket, TcpRepr,
};
use std::cell::RefCell;
use std::net::SocketAddrV4;
use std::rc::Rc;

/// The message of the tutorial.
pub const MESSAGE: &[u8] = b"I'm TCP client";
pub const SERVER_PORT: u16 = 12345;
pub const CLIENT_PORT: u16 = 50784;

#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Probability that the link loses a frame, each way.
    pub loss: f64,
    /// Seeds the link's faults and both stacks.
    pub seed: u64,
    /// One-way propagation delay.
    pub delay: Duration,
    /// Link rate in bits per second.
    pub bandwidth_bps: u64,
    pub message: Vec<u8>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            loss: 0.0,
            seed: 1,
            delay: Duration::from_millis(5),
            bandwidth_bps: 10_000_000,
            message: MESSAGE.to_vec(),
        }
    }
}

/// A frame as it went onto the wire.
#[derive(Clone, Debug)]
pub struct WireFrame {
    pub time: Instant,
    pub data: Vec<u8>,
}

#[derive(Clone, Debug)]
pub struct DemoOutcome {
    /// The ladder diagram, ready to print.
    pub ladder: String,
    /// Every frame sent, in order (lost ones included: the capture is
    /// taken where each frame enters the wire).
    pub frames: Vec<WireFrame>,
    /// TCP segments among `frames`.
    pub tcp_segments: usize,
    /// Segments sent again.
    pub retransmissions: u64,
    /// What the server read.
    pub received: Vec<u8>,
    /// States each side went through, in order, starting with the first.
    pub client_states: Vec<State>,
    pub server_states: Vec<State>,
    /// Errors the applications saw.
    pub client_error: Option<Error>,
    pub server_error: Option<Error>,
    /// When the last connection reached CLOSED.
    pub finished_at: Instant,
    /// Every trace event each stack recorded (segments, states, timers,
    /// and the congestion state after each change, for plots).
    pub client_events: Vec<Event>,
    pub server_events: Vec<Event>,
}

/// Runs the tutorial scenario.
pub fn run(opts: &DemoOptions) -> DemoOutcome {
    let mut net = Network::new(opts.seed);
    net.set_capture(true);
    let mut client = Stack::new(host_config(1, opts.seed));
    let mut server = Stack::new(host_config(2, opts.seed));
    client.set_tracing(true);
    server.set_tracing(true);

    let server_addr = SocketAddrV4::new(host_ip(2), SERVER_PORT);
    let client_addr = SocketAddrV4::new(host_ip(1), CLIENT_PORT);

    // The server: socket, bind, listen; then accept, read to end of file,
    // close.
    let received = Rc::new(RefCell::new(Vec::new()));
    let server_error = Rc::new(RefCell::new(None));
    let listener = server.tcp_socket().expect("socket");
    server.bind(listener, server_addr).expect("bind");
    server.listen(listener, 5).expect("listen");
    let (got, serr) = (received.clone(), server_error.clone());
    let mut conn: Option<SocketHandle> = None;
    let mut served = false;
    server.set_tracing(true);
    let server_app = move |_now: Instant, st: &mut Stack| {
        if served {
            return None;
        }
        if conn.is_none()
            && let Ok((h, _)) = st.accept(listener)
        {
            conn = Some(h);
        }
        let h = conn?;
        let mut buf = [0u8; 1024];
        loop {
            match st.recv(h, &mut buf) {
                Ok(0) => {
                    let _ = st.close(h);
                    let _ = st.close(listener);
                    served = true;
                    break;
                }
                Ok(n) => got.borrow_mut().extend_from_slice(&buf[..n]),
                Err(Error::WouldBlock) => break,
                Err(e) => {
                    *serr.borrow_mut() = Some(e);
                    let _ = st.close(h);
                    let _ = st.close(listener);
                    served = true;
                    break;
                }
            }
        }
        None
    };

    // The client: socket, bind to the tutorial's port, connect; once
    // connected, send the message; at its next turn, close.
    let client_error = Rc::new(RefCell::new(None));
    let cerr = client_error.clone();
    let sock = client.tcp_socket().expect("socket");
    client.bind(sock, client_addr).expect("bind");
    client.connect(sock, server_addr).expect("connect");
    let message = opts.message.clone();
    let mut step = 0;
    // A long message goes out as the send buffer frees up.
    let mut sent = 0;
    let client_app = move |_now: Instant, st: &mut Stack| match (step, st.tcp_state(sock)) {
        (0, Ok(State::Established)) => {
            match st.send(sock, &message[sent..]) {
                Ok(n) => {
                    sent += n;
                    if sent == message.len() {
                        step = 1;
                    }
                }
                Err(Error::WouldBlock) => {}
                Err(e) => *cerr.borrow_mut() = Some(e),
            }
            None
        }
        (0, Ok(State::Closed)) => {
            let mut b = [0u8; 1];
            if let Err(e) = st.recv(sock, &mut b) {
                *cerr.borrow_mut() = Some(e);
            }
            let _ = st.close(sock);
            step = 2;
            None
        }
        (1, _) => {
            let _ = st.close(sock);
            step = 2;
            None
        }
        _ => None,
    };

    let c = net.add(Host::new(client).with_app(client_app));
    let s = net.add(Host::new(server).with_app(server_app));
    net.set_node_name(c, "client");
    net.set_node_name(s, "server");
    let link = LinkConfig::default().delay(opts.delay).bandwidth_bps(opts.bandwidth_bps).loss(opts.loss);
    net.connect((c, 0), (s, 0), link);
    net.run_until_idle(Instant::from_secs(3600));
    let finished_at = net.now();

    let capture = net.take_capture();
    let client_events = net.host_mut(c).stack.take_events();
    let server_events = net.host_mut(s).stack.take_events();

    let mut ladder = Ladder::new(format!("client {client_addr}"), format!("server {server_addr}"));
    let retransmissions = client_events
        .iter()
        .chain(server_events.iter())
        .filter(|e| matches!(e.kind, EventKind::TcpSegment { retransmission: true, .. }))
        .count() as u64;

    // TCP frames each side put on the wire, in order; the k-th is the one
    // its stack recorded as its k-th sent segment (frames parked for ARP
    // keep their order).
    let is_tcp = |ev: &WireEvent| describe_kind(&ev.frame) == FrameKind::Tcp;
    let mut tcp_frames: [std::collections::VecDeque<&WireEvent>; 2] = Default::default();
    let mut other_frames = Vec::new();
    for ev in &capture {
        let side = if ev.from.0 == c { 0 } else { 1 };
        if ev.duplicate_of.is_none() && is_tcp(ev) {
            tcp_frames[side].push_back(ev);
        } else {
            other_frames.push(ev);
        }
    }

    // Rows in each stack's own causal order: a state change before the
    // segment it causes.
    let mut labeler = TcpLabeler::new();
    let mut tcp_segments = 0;
    let mut states = [Vec::new(), Vec::new()];
    let mut timeline: Vec<Step> = Vec::new();
    for (side, events) in [(Side::Left, &client_events), (Side::Right, &server_events)] {
        let i = if side == Side::Left { 0 } else { 1 };
        for e in events.iter() {
            match e.kind {
                EventKind::TcpState { from, to, .. } => {
                    if states[i].is_empty() {
                        states[i].push(from);
                        timeline.push(Step {
                            time: Instant::ZERO,
                            order: timeline.len(),
                            side,
                            what: What::State(from),
                        });
                    }
                    states[i].push(to);
                    timeline.push(Step { time: e.time, order: timeline.len(), side, what: What::State(to) });
                }
                EventKind::TcpSegment { direction: crate::trace::Direction::Sent, .. } => {
                    if let Some(ev) = tcp_frames[i].pop_front() {
                        timeline.push(Step { time: ev.sent_at, order: timeline.len(), side, what: What::Frame(ev) });
                    }
                }
                _ => {}
            }
        }
    }
    for ev in other_frames.into_iter().chain(tcp_frames.iter().flatten().copied()) {
        let side = if ev.from.0 == c { Side::Left } else { Side::Right };
        timeline.push(Step { time: ev.sent_at, order: timeline.len(), side, what: What::Frame(ev) });
    }
    // By time; within one instant, in the order the stacks did things.
    timeline.sort_by_key(|s| (s.time, s.order));
    let mut frames = Vec::new();
    for Step { time, side, what, .. } in timeline {
        let ev = match what {
            What::State(st) => {
                ladder.state(time, side, st);
                continue;
            }
            What::Frame(ev) => ev,
        };
        frames.push(WireFrame { time: ev.sent_at, data: ev.frame.clone() });
        let arrival = match ev.fate {
            Fate::Delivered { corrupted: true, at } => Arrival::Corrupted(at),
            Fate::Delivered { at, .. } => Arrival::At(at),
            Fate::Lost { .. } => Arrival::Lost,
        };
        let (label, mut notes) = describe_frame(ev, side, &mut labeler, &mut tcp_segments);
        if ev.duplicate_of.is_some() {
            notes.push("(duplicated by the link)".to_string());
        }
        ladder.frame(ev.sent_at, side, label, arrival, notes);
    }
    // The pcap lists frames in the order they went onto the wire.
    frames.sort_by_key(|f| f.time);

    let received = received.borrow().clone();
    let client_error = *client_error.borrow();
    let server_error = *server_error.borrow();
    let [client_states, server_states] = states;
    DemoOutcome {
        ladder: ladder.render(),
        frames,
        tcp_segments,
        retransmissions,
        received,
        client_states,
        server_states,
        client_error,
        server_error,
        finished_at,
        client_events,
        server_events,
    }
}

/// One row of the ladder before sorting: a state change or a frame, with
/// its place in its stack's own order of events.
struct Step<'a> {
    time: Instant,
    order: usize,
    side: Side,
    what: What<'a>,
}

enum What<'a> {
    State(State),
    Frame(&'a WireEvent),
}

#[derive(PartialEq, Eq)]
enum FrameKind {
    Tcp,
    Other,
}

fn describe_kind(frame: &[u8]) -> FrameKind {
    let tcp = EthernetFrame::new_checked(frame)
        .ok()
        .filter(|e| e.ethertype() == EtherType::Ipv4)
        .and_then(|e| Ipv4Packet::new_checked(e.payload()).ok().map(|p| p.protocol() == IpProtocol::Tcp))
        .unwrap_or(false);
    if tcp { FrameKind::Tcp } else { FrameKind::Other }
}

/// A label for any frame of the demo: TCP segments via the labeler, ARP
/// in tcpdump's words.
fn describe_frame(ev: &WireEvent, from: Side, labeler: &mut TcpLabeler, tcp: &mut usize) -> (String, Vec<String>) {
    let Ok(eth) = EthernetFrame::new_checked(&ev.frame[..]) else { return ("(runt frame)".into(), vec![]) };
    match eth.ethertype() {
        EtherType::Arp => {
            let Some(arp) = ArpPacket::new_checked(eth.payload()).ok().and_then(|p| ArpRepr::parse(&p).ok()) else {
                return ("ARP (malformed)".into(), vec![]);
            };
            let text = match arp.operation {
                ArpOperation::Request => {
                    format!("ARP who-has {} tell {}", arp.target_protocol_addr, arp.source_protocol_addr)
                }
                ArpOperation::Reply => {
                    format!("ARP {} is-at {}", arp.source_protocol_addr, arp.source_hardware_addr)
                }
                ArpOperation::Unknown(op) => format!("ARP op {op}"),
            };
            (text, vec![])
        }
        EtherType::Ipv4 => {
            let parsed = Ipv4Packet::new_checked(eth.payload()).ok().and_then(|p| {
                let ip = Ipv4Repr::parse(&p, false).ok()?;
                if ip.protocol != IpProtocol::Tcp {
                    return None;
                }
                let t = TcpPacket::new_checked(p.payload()).ok()?;
                let repr = TcpRepr::parse(&t, None).ok()?;
                Some((repr, t.payload().len()))
            });
            match parsed {
                Some((repr, len)) => {
                    *tcp += 1;
                    let l = labeler.label(from, &repr, len);
                    (l.label, l.notes)
                }
                None => ("IPv4 (not TCP)".into(), vec![]),
            }
        }
        other => (format!("ethertype {other}"), vec![]),
    }
}

/// The hash of the demo message, for checks.
pub fn message_hash(opts: &DemoOptions) -> StreamHash {
    let mut h = StreamHash::default();
    h.update(&opts.message);
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn textbook_exchange_without_loss() {
        let out = run(&DemoOptions::default());
        print!("{}", out.ladder);
        assert_eq!(out.received, MESSAGE);
        use State::*;
        assert_eq!(out.client_states, vec![Closed, SynSent, Established, FinWait1, FinWait2, TimeWait, Closed]);
        assert_eq!(out.server_states, vec![Listen, SynReceived, Established, CloseWait, LastAck, Closed]);
        assert_eq!(out.tcp_segments, 9);
        assert_eq!(out.retransmissions, 0);
        assert!(out.client_error.is_none() && out.server_error.is_none());
        for needle in [
            "SYN seq=0",
            "SYN-ACK seq=0 ack=1",
            "ACK seq=1 ack=1",
            "PSH-ACK seq=1 ack=1 len=14",
            "ACK seq=1 ack=15",
            "FIN-ACK seq=15 ack=1",
            "ACK seq=1 ack=16",
            "FIN-ACK seq=1 ack=16",
            "ACK seq=16 ack=2",
        ] {
            assert!(out.ladder.contains(needle), "missing `{needle}` in\n{}", out.ladder);
        }
    }

    #[test]
    fn lossy_wire_retransmits_and_delivers_once() {
        let out = run(&DemoOptions { loss: 0.3, seed: 7, ..Default::default() });
        assert_eq!(out.received, MESSAGE, "{}", out.ladder);
        assert!(out.retransmissions > 0, "{}", out.ladder);
        assert!(out.ladder.contains("(retransmission)"));
        assert!(out.ladder.contains("lost"));
    }

    #[test]
    fn long_message_over_a_lossy_wire_arrives_whole_with_congestion_events() {
        let message: Vec<u8> = MESSAGE.iter().copied().cycle().take(200_000).collect();
        let out = run(&DemoOptions { loss: 0.1, seed: 5, message: message.clone(), ..Default::default() });
        assert!(out.received == message, "received {} of {} bytes", out.received.len(), message.len());
        assert!(out.retransmissions > 0);
        let cwnds = out.client_events.iter().filter(|e| matches!(e.kind, EventKind::TcpCongestion { .. })).count();
        assert!(cwnds > 10, "{cwnds} congestion events");
    }

    #[test]
    fn same_seed_same_ladder() {
        let o = DemoOptions { loss: 0.2, seed: 3, ..Default::default() };
        assert_eq!(run(&o).ladder, run(&o).ladder);
    }
}
