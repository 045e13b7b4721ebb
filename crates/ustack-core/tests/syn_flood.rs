//! The SYN flood of the "TCP in full" issue, on the simulator (RFC 4987):
//! 100,000 SYNs from random spoofed sources arrive within four seconds
//! while ten bulk transfers run to the server. The flows keep their
//! goodput, a legitimate client connects during the flood (through a SYN
//! cookie, the SYN queue being full of spoofed handshakes), and the
//! server's memory stays bounded: the SYN queue never grows past its
//! limit and nothing else is kept per SYN.
//!
//! ```text
//!   client 10.0.0.1 (10 flows) --100M-- +--------+ --1G-- server 10.0.0.2
//!   legit  10.0.0.3            --100M-- | switch |
//!   gateway 10.0.0.254 (flood) --1G---- +--------+
//! ```
//!
//! The spoofed sources are in 198.18.0.0/15 (RFC 2544's benchmarking
//! range), behind the gateway: the server's default route. So everything
//! the server sends them goes to the gateway's one MAC address, with no
//! ARP per source; the gateway node counts it and drops it. The flows'
//! bottleneck is the client's 100 Mbit/s link, which the flood does not
//! cross; what is measured is the stack, not the wire.

mod common;

use common::build_frame;
use std::net::{Ipv4Addr, SocketAddrV4};
use ustack_core::rand::Rng;
use ustack_core::sim::apps::{StreamApp, StreamHash, StreamReport};
use ustack_core::sim::scenario::{host_config, host_ip, host_mac};
use ustack_core::sim::{App, Host, LinkConfig, Network, Node, NodeId, Switch};
use ustack_core::tcp::{State, TcpConfig};
use ustack_core::time::{Duration, Instant};
use ustack_core::wire::{EtherType, EthernetAddress, EthernetRepr, TcpFlags, TcpOptions, TcpRepr};
use ustack_core::{SocketHandle, Stack, StackConfig};

const SEED: u64 = 4987;
const SYNS: u64 = 100_000;
/// The flood: 25 SYNs every millisecond for four seconds.
const FLOOD_START: Instant = Instant::from_secs(3);
const FLOOD_END: Instant = Instant::from_secs(7);
const PER_MS: u64 = 25;
/// The legitimate client connects in the middle of the flood.
const LEGIT_AT: Instant = Instant::from_secs(5);
const LEGIT_BYTES: u64 = 64 * 1024;
const FLOWS: usize = 10;
const SERVER_PORT: u16 = 5000;

fn gateway_ip() -> Ipv4Addr {
    host_ip(254)
}
fn gateway_mac() -> EthernetAddress {
    host_mac(254)
}
fn server_addr() -> SocketAddrV4 {
    SocketAddrV4::new(host_ip(2), SERVER_PORT)
}

/// The router behind which the spoofed sources are: it sends the flood
/// (`SYNS` SYNs, `PER_MS` each millisecond from `FLOOD_START`) and
/// swallows what comes back, counting it.
struct SynFlood {
    rng: Rng,
    total: u64,
    sent: u64,
    next_batch: Instant,
    due: u64,
    /// SYN-ACKs received (cookies and SYN-RECEIVED retransmissions alike).
    synacks: u64,
    /// Anything else received.
    other: u64,
}

impl SynFlood {
    fn new(total: u64, seed: u64) -> Self {
        SynFlood { rng: Rng::new(seed), total, sent: 0, next_batch: FLOOD_START, due: 0, synacks: 0, other: 0 }
    }

    /// A SYN from a random source in 198.18.0.0/15 with a random port, ISN
    /// and options: as Linux sends them, an MSS alone, or none (as simple
    /// flood tools do).
    fn syn(&mut self) -> Vec<u8> {
        let r = self.rng.next_u64();
        let src = Ipv4Addr::new(198, 18 + (r & 1) as u8, (r >> 8) as u8, (r >> 16) as u8);
        let port = 1024 + (r >> 24) as u16 % (65535 - 1024);
        let mut options = TcpOptions::default();
        match (r >> 40) % 4 {
            0 | 1 => {
                options.mss = Some(1460);
                options.sack_permitted = true;
                options.window_scale = Some(7);
                options.timestamps = Some((self.rng.next_u32(), 0));
            }
            2 => options.mss = Some(536 + (r >> 48) as u16 % 1000),
            _ => {}
        }
        let tcp = TcpRepr {
            src_port: port,
            dst_port: SERVER_PORT,
            seq: self.rng.next_u32(),
            ack: 0,
            flags: TcpFlags::SYN,
            window: 64240,
            urgent: 0,
            options,
        };
        let eth = EthernetRepr { src: gateway_mac(), dst: host_mac(2), ethertype: EtherType::Ipv4 };
        build_frame(eth, src, host_ip(2), &tcp, &[])
    }
}

impl Node for SynFlood {
    fn handle_frame(&mut self, _now: Instant, _port: usize, frame: &[u8]) {
        match common::parse_tcp(frame) {
            Some((_, _, tcp, _)) if tcp.flags.syn() && tcp.flags.ack() => self.synacks += 1,
            _ => self.other += 1,
        }
    }

    fn poll_transmit(&mut self, _now: Instant, buf: &mut [u8]) -> Option<(usize, usize)> {
        if self.due == 0 {
            return None;
        }
        self.due -= 1;
        self.sent += 1;
        let f = self.syn();
        buf[..f.len()].copy_from_slice(&f);
        Some((0, f.len()))
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        (self.sent + self.due < self.total).then_some(self.next_batch)
    }

    fn handle_timeout(&mut self, now: Instant) {
        if now >= self.next_batch && self.sent + self.due < self.total {
            self.due += PER_MS.min(self.total - self.sent - self.due);
            self.next_batch += Duration::from_millis(1);
        }
    }
}

/// A one-connection [`StreamApp`] client, polled only when its connection
/// can take at least `SEND_LOWAT` bytes, has bytes to read, or is not (or
/// no longer) open: the way an event loop waits for readiness. (StreamApp
/// fills its 16 KiB buffer with pattern bytes before each `send`, even
/// when the send buffer is full; polled after every arriving ACK, that
/// took over 90% of this test's run time.)
struct Lowat {
    app: StreamApp,
    conn: Option<SocketHandle>,
}

const SEND_LOWAT: usize = 16 * 1024;

impl App for Lowat {
    fn poll(&mut self, now: Instant, stack: &mut Stack) -> Option<Instant> {
        let Some(h) = self.conn else {
            // The first poll connects: remember which connection is ours.
            let before: Vec<SocketHandle> = stack.tcp_connections().map(|(h, _)| h).collect();
            let wake = self.app.poll(now, stack);
            self.conn = stack.tcp_connections().map(|(h, _)| h).find(|h| !before.contains(h));
            return wake;
        };
        let idle = stack.tcp_connection(h).is_some_and(|c| {
            matches!(c.state(), State::Established | State::CloseWait)
                && c.send_capacity() < SEND_LOWAT
                && c.recv_queue() == 0
                && c.error().is_none()
        });
        if idle { None } else { self.app.poll(now, stack) }
    }
}

/// What one run measured.
#[derive(Debug)]
struct Outcome {
    /// Bytes the server received on the ten flows during the flood window.
    flow_bytes: u64,
    /// The legitimate client's report, and the server's for its connection.
    legit: Option<StreamReport>,
    legit_at_server: Option<StreamReport>,
    max_sockets: usize,
    max_buffer_bytes: usize,
    max_half_open: usize,
    syn_cookies_sent: u64,
    syn_cookies_valid: u64,
    passive_opens: u64,
    synacks_at_gateway: u64,
    syns_sent: u64,
    wall: std::time::Duration,
}

fn stack(i: u8) -> StackConfig {
    host_config(i, SEED).with_gateway(gateway_ip())
}

fn flows_received(net: &Network, server: NodeId) -> u64 {
    let app = net.host(server).app::<StreamApp>(0).unwrap();
    app.reports().iter().filter(|r| r.remote.is_some_and(|a| *a.ip() == host_ip(1))).map(|r| r.received.len).sum()
}

fn run(syns: u64) -> Outcome {
    let wall = std::time::Instant::now();
    let mut net = Network::new(SEED);
    let mut stacks = [stack(1), stack(2), stack(3)].map(Stack::new);
    // Static neighbours: the test is about TCP, not ARP.
    for s in &mut stacks {
        for (ip, mac) in [(host_ip(1), host_mac(1)), (host_ip(2), host_mac(2)), (host_ip(3), host_mac(3))] {
            s.neighbors_mut().insert_static(ip, *mac.as_bytes());
        }
        s.neighbors_mut().insert_static(gateway_ip(), *gateway_mac().as_bytes());
    }
    let [client, server, legit] = stacks;
    let client = net.add(Host::new(client));
    let server = net.add(Host::new(server));
    let legit = net.add(Host::new(legit));
    let gateway = net.add(SynFlood::new(syns, SEED ^ 0x5f));
    let switch = net.add(Switch::new(4));
    let slow = LinkConfig::default().delay(Duration::from_millis(5)).bandwidth_bps(100_000_000);
    let fast = LinkConfig::default().delay(Duration::from_millis(1)).bandwidth_bps(1_000_000_000);
    net.connect((client, 0), (switch, 0), slow.clone());
    net.connect((server, 0), (switch, 1), fast.clone());
    net.connect((gateway, 0), (switch, 2), fast);
    net.connect((legit, 0), (switch, 3), slow);

    net.host_mut(server).add_app(StreamApp::server(server_addr(), 0, 1));
    for i in 0..FLOWS {
        let app = StreamApp::client(server_addr(), u64::MAX / 2, 100 + i as u64);
        net.host_mut(client).add_app(Lowat { app, conn: None });
    }

    net.run_until(FLOOD_START);
    let up = (0..FLOWS)
        .filter(|&i| net.host(client).app::<Lowat>(i).unwrap().app.reports().iter().any(|r| r.established_at.is_some()))
        .count();
    assert_eq!(up, FLOWS, "the ten flows are established before the flood");
    let before = flows_received(&net, server);

    let (mut max_sockets, mut max_buffer_bytes, mut max_half_open) = (0, 0, 0);
    let mut t = FLOOD_START;
    let mut legit_added = false;
    while t < FLOOD_END {
        t += Duration::from_millis(50);
        net.run_until(t);
        if !legit_added && t >= LEGIT_AT {
            net.host_mut(legit).add_app(StreamApp::client(server_addr(), LEGIT_BYTES, 300));
            legit_added = true;
        }
        let s = &net.host(server).stack;
        max_sockets = max_sockets.max(s.socket_count());
        max_buffer_bytes = max_buffer_bytes.max(s.buffer_bytes());
        let half_open = s.tcp_connections().filter(|(_, c)| c.state() == State::SynReceived).count();
        max_half_open = max_half_open.max(half_open);
    }
    let flow_bytes = flows_received(&net, server) - before;
    // Let the legitimate client finish (and the last SYN-ACKs land).
    net.run_until(FLOOD_END + Duration::from_secs(1));

    let legit_report = net.host(legit).app::<StreamApp>(0).unwrap().reports().first().cloned();
    let server_reports = net.host(server).app::<StreamApp>(0).unwrap().reports();
    let legit_at_server = server_reports.iter().find(|r| r.remote.is_some_and(|a| *a.ip() == host_ip(3))).cloned();
    let st = net.host(server).stack.stats().tcp;
    let g = net.node_as::<SynFlood>(gateway).unwrap();
    Outcome {
        flow_bytes,
        legit: legit_report,
        legit_at_server,
        max_sockets,
        max_buffer_bytes,
        max_half_open,
        syn_cookies_sent: st.syn_cookies_sent,
        syn_cookies_valid: st.syn_cookies_valid,
        passive_opens: st.passive_opens,
        synacks_at_gateway: g.synacks,
        syns_sent: g.sent,
        wall: wall.elapsed(),
    }
}

fn mbps(bytes: u64) -> f64 {
    let secs = (FLOOD_END.as_millis() - FLOOD_START.as_millis()) as f64 / 1000.0;
    bytes as f64 * 8.0 / secs / 1e6
}

/// RFC 4987 §3.6 and the issue's flood: see the module documentation.
#[test]
fn syn_flood_of_100k_spoofed_syns_leaves_flows_and_new_clients_served_rfc4987() {
    let base = run(0);
    let flood = run(SYNS);
    let ratio = flood.flow_bytes as f64 / base.flow_bytes as f64;
    println!(
        "flows' goodput over the flood window: {:.1} Mbit/s without the flood, {:.1} Mbit/s with it ({:.1}%)",
        mbps(base.flow_bytes),
        mbps(flood.flow_bytes),
        ratio * 100.0
    );
    println!("without: {base:?}");
    println!("with:    {flood:?}");
    println!(
        "server memory: at most {} sockets, {} buffer bytes, {} half-open (a Connection is {} bytes)",
        flood.max_sockets,
        flood.max_buffer_bytes,
        flood.max_half_open,
        core::mem::size_of::<ustack_core::tcp::Connection>()
    );

    // Every SYN arrived and was answered: the first ones fill the SYN
    // queue, the rest get cookies.
    let cfg = StackConfig::ethernet(host_mac(2), ustack_core::wire::Ipv4Cidr::new(host_ip(2), 24));
    let limit = cfg.max_half_open;
    assert_eq!(flood.syns_sent, SYNS);
    assert_eq!(flood.passive_opens - base.passive_opens, limit as u64, "spoofed SYNs given a half-open connection");
    assert_eq!(flood.syn_cookies_sent, SYNS - limit as u64 + 1, "the rest, and the legitimate client's, cookies");
    assert!(flood.synacks_at_gateway >= SYNS, "{} SYN-ACKs for {SYNS} SYNs", flood.synacks_at_gateway);

    // The flows keep at least 80% of their goodput.
    assert!(base.flow_bytes > 0);
    assert!(ratio >= 0.8, "goodput fell to {:.1}% during the flood", ratio * 100.0);

    // The legitimate client connects during the flood, through a cookie,
    // and its data arrives whole.
    for (o, cookies) in [(&base, 0), (&flood, 1)] {
        let legit = o.legit.as_ref().expect("the legitimate client ran");
        assert!(legit.done && legit.error.is_none() && legit.eof, "legitimate client: {legit:?}");
        let at_server = o.legit_at_server.as_ref().expect("the server accepted the legitimate client");
        assert_eq!(at_server.received, StreamHash::of_pattern(300, LEGIT_BYTES));
        assert_eq!(o.syn_cookies_valid, cookies);
    }

    // Bounded memory: the SYN queue never passes its limit, so the sockets
    // are the listener, the flows, the legitimate client and the queue;
    // half-open connections hold no buffers.
    assert_eq!(base.max_half_open, 0);
    assert_eq!(flood.max_half_open, limit);
    assert!(flood.max_sockets <= 1 + FLOWS + 1 + limit, "{} sockets", flood.max_sockets);
    let tcp = TcpConfig::default();
    let per_conn = tcp.recv_buffer + tcp.send_buffer;
    assert!(
        flood.max_buffer_bytes <= (FLOWS + 1) * per_conn * 5 / 4,
        "{} buffer bytes for {} connections",
        flood.max_buffer_bytes,
        FLOWS + 1
    );
    println!("wall time: {:?} without the flood, {:?} with it", base.wall, flood.wall);
}
