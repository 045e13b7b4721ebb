//! `ustack-bench attacks`: what each attack of SECURITY.md costs ustack and
//! the victim, measured on the simulator.
//!
//! ```text
//!   client 10.0.0.1 --100 Mbit/s, 5 ms-- middlebox --100 Mbit/s, 5 ms-- server 10.0.0.2
//! ```
//!
//! The victim is one bulk transfer, client to server. While it runs, the
//! middlebox injects the attack's frames (forged from the victim's own
//! segments where the attack needs its 4-tuple, with random sequence
//! numbers: a blind, off-path attacker) at a fixed rate. Each row reports
//! the victim's goodput and whether its stream arrived intact, the attack
//! frames sent, the peak heap above the start of the run (counting
//! allocator), the wall time per attack frame over the baseline, and the
//! counter that shows the defence at work.

use stats_alloc::{Region, StatsAlloc};
use std::alloc::System;
use std::cell::RefCell;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::rc::Rc;
use ustack_core::rand::Rng;
use ustack_core::sim::apps::{StreamApp, StreamHash};
use ustack_core::sim::scenario::{host_config, host_ip, host_mac};
use ustack_core::sim::{Host, LinkConfig, Middlebox, Network, Verdict};
use ustack_core::time::{Duration, Instant};
use ustack_core::wire::{
    EthernetFrame, EthernetRepr, IpProtocol, Ipv4Packet, Ipv4Repr, TcpFlags, TcpOptions, TcpPacket, TcpRepr,
};
use ustack_core::{Stack, StackConfig};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attack {
    None,
    SynFlood,
    BlindRst,
    BlindSyn,
    BlindData,
    AckStorm,
    OooTinyFlood,
    FragFlood,
    FragOverlap,
    IcmpForged,
    TinyMss,
}

impl Attack {
    const ALL: [Attack; 11] = [
        Attack::None,
        Attack::SynFlood,
        Attack::BlindRst,
        Attack::BlindSyn,
        Attack::BlindData,
        Attack::AckStorm,
        Attack::OooTinyFlood,
        Attack::FragFlood,
        Attack::FragOverlap,
        Attack::IcmpForged,
        Attack::TinyMss,
    ];

    fn name(self) -> &'static str {
        match self {
            Attack::None => "none (baseline)",
            Attack::SynFlood => "SYN flood, spoofed sources",
            Attack::BlindRst => "blind RST injection",
            Attack::BlindSyn => "blind SYN injection",
            Attack::BlindData => "blind data injection",
            Attack::AckStorm => "ACK storm at the sender",
            Attack::OooTinyFlood => "OOO 1-byte flood (on-path)",
            Attack::FragFlood => "fragment flood",
            Attack::FragOverlap => "overlapping fragments",
            Attack::IcmpForged => "forged ICMP errors",
            Attack::TinyMss => "peer MSS 1 (rewritten)",
        }
    }

    /// Frames injected per millisecond.
    fn per_ms(self) -> usize {
        match self {
            Attack::None | Attack::TinyMss => 0,
            Attack::SynFlood => 25,
            // 1514-byte frames: 2 a millisecond is 24 Mbit/s, a quarter of
            // the link, so the wire is not what the flood exhausts.
            Attack::FragFlood | Attack::FragOverlap => 2,
            _ => 10,
        }
    }
}

const SERVER_PORT: u16 = 7000;
const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 254);
const GATEWAY_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xfe];

/// The last TCP segment seen each way: (ethernet, ip, tcp) of client to
/// server, then of server to client.
type Seen = Rc<RefCell<[Option<(EthernetRepr, Ipv4Repr, TcpRepr)>; 2]>>;

fn parse(frame: &[u8]) -> Option<(EthernetRepr, Ipv4Repr, TcpRepr)> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let eth_repr = EthernetRepr::parse(&eth).ok()?;
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    let ip_repr = Ipv4Repr::parse(&ip, false).ok()?;
    if ip_repr.protocol != IpProtocol::Tcp {
        return None;
    }
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    Some((eth_repr, ip_repr, TcpRepr::parse(&tcp, None).ok()?))
}

fn tcp_frame(eth: EthernetRepr, src: Ipv4Addr, dst: Ipv4Addr, tcp: &TcpRepr, payload: &[u8]) -> Vec<u8> {
    let len = tcp.header_len() + payload.len();
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: IpProtocol::Tcp,
        payload_len: len,
        hop_limit: 64,
        ident: 7,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
        dscp_ecn: 0,
    };
    let mut f = vec![0u8; 34 + len];
    eth.emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut f[14..]), true);
    f[34 + tcp.header_len()..].copy_from_slice(payload);
    tcp.emit(&mut TcpPacket::new_unchecked(&mut f[34..]), Some((src, dst)));
    f
}

fn ip_frame(eth: EthernetRepr, ip: Ipv4Repr, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 34 + payload.len()];
    eth.emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut f[14..]), true);
    f[34..].copy_from_slice(payload);
    f
}

/// This millisecond's attack frames: (middlebox port to send from, frame).
fn frames(attack: Attack, rng: &mut Rng, seen: &Seen, ooo_next: &mut u32) -> Vec<(usize, Vec<u8>)> {
    let seen = seen.borrow();
    let mut out = Vec::new();
    let to_server =
        |src_mac| EthernetRepr { src: src_mac, dst: host_mac(2), ethertype: ustack_core::wire::EtherType::Ipv4 };
    for _ in 0..attack.per_ms() {
        match attack {
            Attack::None | Attack::TinyMss => {}
            Attack::SynFlood => {
                let src = Ipv4Addr::new(198, 18 + rng.below(2) as u8, rng.below(256) as u8, 1 + rng.below(254) as u8);
                let syn = TcpRepr {
                    src_port: 1024 + rng.below(60_000) as u16,
                    dst_port: SERVER_PORT,
                    seq: rng.next_u32(),
                    ack: 0,
                    flags: TcpFlags::SYN,
                    window: 64240,
                    urgent: 0,
                    options: TcpOptions { mss: Some(1460), ..Default::default() },
                };
                out.push((
                    1,
                    tcp_frame(to_server(ustack_core::wire::EthernetAddress(GATEWAY_MAC)), src, host_ip(2), &syn, &[]),
                ));
            }
            Attack::BlindRst
            | Attack::BlindSyn
            | Attack::BlindData
            | Attack::OooTinyFlood
            | Attack::FragFlood
            | Attack::FragOverlap => {
                let Some((eth, ip, t)) = seen[0] else { continue };
                let mut tcp = TcpRepr { options: TcpOptions::default(), ..t };
                tcp.options.timestamps = t.options.timestamps;
                let mut payload = Vec::new();
                match attack {
                    Attack::BlindRst => {
                        tcp.flags = TcpFlags::RST;
                        tcp.seq = rng.next_u32();
                    }
                    Attack::BlindSyn => {
                        tcp.flags = TcpFlags::SYN;
                        tcp.seq = rng.next_u32();
                    }
                    Attack::BlindData => {
                        tcp.flags = TcpFlags::ACK | TcpFlags::PSH;
                        tcp.seq = rng.next_u32();
                        tcp.ack = rng.next_u32();
                        payload = vec![0xee; 100];
                    }
                    Attack::OooTinyFlood => {
                        // Ahead of the sender, every other byte, within the
                        // receive window: an attacker who sees the flow.
                        if *ooo_next == 0 || ooo_next.wrapping_sub(t.seq) > 1 << 20 {
                            *ooo_next = t.seq.wrapping_add(200_000);
                        }
                        tcp.flags = TcpFlags::ACK;
                        tcp.seq = *ooo_next;
                        *ooo_next = ooo_next.wrapping_add(2);
                        payload = vec![0xee; 1];
                    }
                    _ => {
                        // Fragments of UDP datagrams that never complete,
                        // from the victim client's address.
                        let ident = rng.below(65536) as u16;
                        let body = vec![0x55u8; 1480];
                        let first = Ipv4Repr {
                            src_addr: ip.src_addr,
                            dst_addr: ip.dst_addr,
                            protocol: IpProtocol::Udp,
                            payload_len: body.len(),
                            hop_limit: 64,
                            ident,
                            dont_frag: false,
                            more_frags: true,
                            frag_offset: 0,
                            dscp_ecn: 0,
                        };
                        out.push((1, ip_frame(eth, first, &body)));
                        if attack == Attack::FragOverlap {
                            // A second piece overlapping the first (teardrop).
                            let second = Ipv4Repr { frag_offset: 8, more_frags: false, ..first };
                            out.push((1, ip_frame(eth, second, &body[..100])));
                        }
                        continue;
                    }
                }
                out.push((1, tcp_frame(eth, ip.src_addr, ip.dst_addr, &tcp, &payload)));
            }
            Attack::AckStorm => {
                // At the sender: ACKs from the server's side with random
                // acknowledgment numbers.
                let Some((eth, ip, t)) = seen[1] else { continue };
                let mut tcp = TcpRepr { options: TcpOptions::default(), ..t };
                tcp.options.timestamps = t.options.timestamps;
                tcp.flags = TcpFlags::ACK;
                tcp.ack = rng.next_u32();
                out.push((0, tcp_frame(eth, ip.src_addr, ip.dst_addr, &tcp, &[])));
            }
            Attack::IcmpForged => {
                // "Fragmentation needed, MTU 68" and "port unreachable" at
                // the sender, quoting the victim's tuple with a random
                // sequence number (RFC 5927 §4.1 says to check it).
                let Some((eth, ip, t)) = seen[0] else { continue };
                let quoted = TcpRepr { seq: rng.next_u32(), options: TcpOptions::default(), ..t };
                let inner = tcp_frame(eth, ip.src_addr, ip.dst_addr, &quoted, &[]);
                let quote = &inner[14..14 + 28];
                let mut icmp = vec![0u8; 8 + quote.len()];
                icmp[0] = 3;
                if rng.chance(0.5) {
                    icmp[1] = 4;
                    icmp[6..8].copy_from_slice(&68u16.to_be_bytes());
                } else {
                    icmp[1] = 3;
                }
                icmp[8..].copy_from_slice(quote);
                ustack_core::wire::Icmpv4Packet::new_unchecked(&mut icmp[..]).fill_checksum();
                let back = EthernetRepr { src: eth.dst, dst: eth.src, ethertype: eth.ethertype };
                let outer = Ipv4Repr {
                    src_addr: ip.dst_addr,
                    dst_addr: ip.src_addr,
                    protocol: IpProtocol::Icmp,
                    payload_len: icmp.len(),
                    hop_limit: 64,
                    ident: 9,
                    dont_frag: false,
                    more_frags: false,
                    frag_offset: 0,
                    dscp_ecn: 0,
                };
                out.push((0, ip_frame(back, outer, &icmp)));
            }
        }
    }
    out
}

pub struct AttackRow {
    pub name: &'static str,
    pub goodput_mbps: f64,
    pub intact: bool,
    pub frames: u64,
    pub peak_heap: isize,
    pub ns_per_frame: f64,
    pub wall_ms: f64,
    pub defence: String,
}

fn heap(region: &Region<'_, System>) -> isize {
    let c = region.change();
    c.bytes_allocated as isize - c.bytes_deallocated as isize
}

fn run(attack: Attack, bytes: u64, alloc: &'static StatsAlloc<System>) -> (AttackRow, f64) {
    let region = Region::new(alloc);
    let started = std::time::Instant::now();
    let link = LinkConfig::default().delay(Duration::from_millis(5)).bandwidth_bps(100_000_000);
    let mut net = Network::new(7);
    let c = net.add(Host::new(Stack::new(host_config(1, 7))));
    let mut scfg: StackConfig = host_config(2, 7);
    scfg.gateway = Some(GATEWAY);
    let mut server = Stack::new(scfg);
    server.neighbors_mut().insert_static(GATEWAY, GATEWAY_MAC);
    let s = net.add(Host::new(server));
    let seen: Seen = Rc::new(RefCell::new([None, None]));
    let log = seen.clone();
    let tiny_mss = attack == Attack::TinyMss;
    let mb = net.add(Middlebox::with_filter(move |_now, port, frame: &mut Vec<u8>| {
        if let Some((eth, ip, mut tcp)) = parse(frame) {
            if ip.dst_addr == GATEWAY || ip.src_addr.octets()[0] == 198 {
                return Verdict::Pass;
            }
            if tiny_mss && port == 1 && tcp.flags.syn() {
                tcp.options.mss = Some(1);
                let payload = frame[34 + (frame[46] >> 4) as usize * 4..].to_vec();
                *frame = tcp_frame(eth, ip.src_addr, ip.dst_addr, &tcp, &payload);
            }
            log.borrow_mut()[port.min(1)] = Some((eth, ip, tcp));
        }
        Verdict::Pass
    }));
    net.connect((c, 0), (mb, 0), link.clone());
    net.connect((mb, 1), (s, 0), link);
    let addr = SocketAddrV4::new(host_ip(2), SERVER_PORT);
    // The listener stays open for the whole run (the SYN flood's target).
    net.host_mut(s).add_app(StreamApp::server(addr, 0, 1).with_connections(1_000));
    net.host_mut(c).add_app(StreamApp::client(addr, bytes, 2));
    let mut rng = Rng::new(99);
    let mut sent = 0u64;
    let mut peak = 0isize;
    let mut ooo_next = 0u32;
    let done = |n: &Network| {
        n.host(s).app::<StreamApp>(0).is_some_and(|a| a.reports().first().is_some_and(|r| r.done))
            && n.host(c).app::<StreamApp>(0).is_some_and(|a| a.is_done())
    };
    let limit = Instant::from_secs(120);
    while !done(&net) && net.now() < limit {
        for (port, f) in frames(attack, &mut rng, &seen, &mut ooo_next) {
            sent += 1;
            if let Some(m) = net.node_as_mut::<Middlebox>(mb) {
                m.inject(port, f);
            }
        }
        net.run_for(Duration::from_millis(1));
        peak = peak.max(heap(&region));
    }
    let wall = started.elapsed().as_secs_f64();
    let cr = net.host(c).app::<StreamApp>(0).map(|a| a.reports()).unwrap_or_default();
    let sr = net.host(s).app::<StreamApp>(0).map(|a| a.reports()).unwrap_or_default();
    let (goodput, intact) = match (cr.first(), sr.first()) {
        (Some(cr), Some(sr)) => {
            let secs = match (sr.finished_at, cr.established_at) {
                (Some(f), Some(e)) if f > e => (f - e).as_secs_f64(),
                _ => f64::INFINITY,
            };
            let intact = sr.received == StreamHash::of_pattern(2, bytes) && sr.error.is_none() && cr.error.is_none();
            (sr.received.len as f64 * 8.0 / secs / 1e6, intact)
        }
        _ => (0.0, false),
    };
    let ooo_at_end = net.host(s).stack.out_of_order_bytes();
    // Once the attack stops and TIME-WAIT is over, nothing may be left.
    net.run_for(Duration::from_secs(130));
    let left = (net.host(s).stack.socket_count(), net.host(s).stack.out_of_order_bytes());
    let ss = net.host(s).stack.stats();
    let cs = net.host(c).stack.stats();
    let defence = match attack {
        Attack::None => String::from("-"),
        Attack::SynFlood => {
            format!("half_open limit {} hits, {} cookies sent", ss.limits.half_open, ss.tcp.syn_cookies_sent)
        }
        Attack::BlindRst | Attack::BlindSyn => format!(
            "{} challenge ACKs, {} rate-limited (RFC 5961)",
            ss.tcp.challenge_acks, ss.tcp.challenge_acks_limited
        ),
        Attack::BlindData => format!(
            "{} out of window, {} bad ACK",
            ss.drops(ustack_core::stats::DropReason::TcpOutOfWindow)
                + ss.drops(ustack_core::stats::DropReason::TcpUnacceptable),
            ss.drops(ustack_core::stats::DropReason::TcpBadAck)
        ),
        Attack::AckStorm => format!(
            "{} bad ACK drops, {} challenge ACKs",
            cs.drops(ustack_core::stats::DropReason::TcpBadAck),
            cs.tcp.challenge_acks
        ),
        Attack::OooTinyFlood => {
            format!("ooo limit {} drops, {} OOO bytes at the end of the transfer", ss.tcp.ooo_limit_drops, ooo_at_end)
        }
        Attack::FragFlood | Attack::FragOverlap => format!(
            "frag_memory limit {} hits, {} fragment drops",
            ss.limits.frag_memory,
            ss.drops(ustack_core::stats::DropReason::IpFragment)
        ),
        Attack::IcmpForged => format!("{} ICMP in, all ignored unless in flight", cs.icmp_in),
        Attack::TinyMss => format!("{} segments out", cs.tcp.segments_out),
    };
    let defence = if left.1 != 0 || left.0 > 1 {
        format!("{defence}; LEFT BEHIND: {} sockets, {} OOO bytes", left.0, left.1)
    } else {
        defence
    };
    drop(net);
    (
        AttackRow {
            name: attack.name(),
            goodput_mbps: goodput,
            intact,
            frames: sent,
            peak_heap: peak,
            ns_per_frame: 0.0,
            wall_ms: wall * 1e3,
            defence,
        },
        wall,
    )
}

/// Runs every attack; returns the rows.
pub fn run_all(quick: bool, alloc: &'static StatsAlloc<System>) -> Vec<AttackRow> {
    let bytes = if quick { 4 << 20 } else { 32 << 20 };
    let mut rows = Vec::new();
    let mut base_wall_per_ms = 0.0;
    for attack in Attack::ALL {
        crate::progress(&format!("attack {}", attack.name()));
        let (mut row, wall) = run(attack, bytes, alloc);
        if attack == Attack::None {
            base_wall_per_ms = wall;
        } else if row.frames > 0 {
            row.ns_per_frame = ((wall - base_wall_per_ms).max(0.0) * 1e9) / row.frames as f64;
        }
        rows.push(row);
    }
    rows
}

pub fn print(rows: &[AttackRow]) {
    eprint!("\r\x1b[2K");
    println!("Measured on the simulator (100 Mbit/s, 2x5 ms path, one bulk flow client->server).");
    println!(
        "{:<28} {:>8} {:>6} {:>8} {:>11} {:>8} {:>9}  defence",
        "attack", "Mbit/s", "intact", "frames", "peak heap", "wall ms", "ns/frame"
    );
    for r in rows {
        println!(
            "{:<28} {:>8.2} {:>6} {:>8} {:>11} {:>8.1} {:>9}  {}",
            r.name,
            r.goodput_mbps,
            if r.intact { "yes" } else { "NO" },
            r.frames,
            r.peak_heap,
            r.wall_ms,
            if r.frames == 0 {
                "-".to_string()
            } else if r.ns_per_frame > 0.0 {
                format!("{:.0}", r.ns_per_frame)
            } else {
                "<noise".to_string()
            },
            r.defence
        );
    }
}
