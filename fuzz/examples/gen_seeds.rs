//! Writes the seed corpus: `cargo run --example gen_seeds` in `fuzz/`.
//!
//! The seeds are small valid inputs that get each target past its first
//! gates: real frames for the parsers, an ARP exchange and a whole TCP
//! connection (handshake, data, FIN) for the stacks, and conversations
//! (handshake, data both ways, SACK, a close) for the TCP target. Each is
//! run through its target before it is written.

use std::net::Ipv4Addr;
use std::path::Path;
use ustack_core::wire::{
    ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetAddress, EthernetFrame, EthernetRepr, Icmpv4Packet,
    FastOpenCookie, Icmpv4Repr, IpProtocol, Ipv4Packet, Ipv4Repr, TcpFlags, TcpOptions, TcpPacket, TcpRepr, UdpPacket,
    UdpRepr,
};
use ustack_fuzz::conversation::{self as conv, *};
use ustack_fuzz::frames::{
    self, CTL_APP, CTL_FIX_ADDRESSES, CTL_FIX_CHECKSUMS, CTL_FIX_LENGTHS, CTL_IP_STACK, ctl_wait,
};

const PEER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x02]);

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    write(&root.join("wire_parsers"), wire_seeds(), ustack_fuzz::wire::exercise);
    write(&root.join("stack_frames"), frame_seeds(), frames::run);
    let convs = conversation_seeds()
        .into_iter()
        .map(|(name, c)| {
            let bytes = ustack_fuzz::encode::roundtrip(&c).unwrap_or_else(|| panic!("{name}: encoding disagrees"));
            (name, bytes)
        })
        .collect();
    write(&root.join("tcp_conversation"), convs, |data| {
        use arbitrary::{Arbitrary, Unstructured};
        conv::run(&Conversation::arbitrary(&mut Unstructured::new(data)).unwrap());
    });
}

fn write(dir: &Path, seeds: Vec<(&'static str, Vec<u8>)>, check: fn(&[u8])) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, bytes) in seeds {
        check(&bytes);
        std::fs::write(dir.join(name), &bytes).unwrap();
        println!("{}/{name}: {} bytes", dir.display(), bytes.len());
    }
}

// ---- packets ------------------------------------------------------------------

fn ethernet(dst: EthernetAddress, ethertype: EtherType, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 14 + payload.len()];
    EthernetRepr { src: PEER_MAC, dst, ethertype }.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
    buf[14..].copy_from_slice(payload);
    buf
}

fn arp_request() -> Vec<u8> {
    let arp = ArpRepr {
        operation: ArpOperation::Request,
        source_hardware_addr: PEER_MAC,
        source_protocol_addr: frames::PEER_IP,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: frames::STACK_IP,
    };
    let mut buf = [0u8; 28];
    arp.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
    ethernet(EthernetAddress::BROADCAST, EtherType::Arp, &buf)
}

fn arp_reply_for_gateway_and_peer(ip: Ipv4Addr) -> Vec<u8> {
    let arp = ArpRepr {
        operation: ArpOperation::Reply,
        source_hardware_addr: PEER_MAC,
        source_protocol_addr: ip,
        target_hardware_addr: frames::STACK_MAC,
        target_protocol_addr: frames::STACK_IP,
    };
    let mut buf = [0u8; 28];
    arp.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
    ethernet(frames::STACK_MAC, EtherType::Arp, &buf)
}

fn tcp(seg: &TcpRepr, payload: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let hl = seg.header_len();
    let mut buf = vec![0u8; hl + payload.len()];
    buf[hl..].copy_from_slice(payload);
    seg.emit(&mut TcpPacket::new_unchecked(&mut buf[..]), Some((src, dst)));
    conv::ip_packet(src, dst, IpProtocol::Tcp, &buf)
}

fn udp(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let repr = UdpRepr { src_port, dst_port };
    let mut buf = vec![0u8; 8 + payload.len()];
    buf[8..].copy_from_slice(payload);
    repr.emit(&mut UdpPacket::new_unchecked(&mut buf[..]), payload.len(), Some((frames::PEER_IP, frames::STACK_IP)));
    conv::ip_packet(frames::PEER_IP, frames::STACK_IP, IpProtocol::Udp, &buf)
}

fn icmp(repr: &Icmpv4Repr) -> Vec<u8> {
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]));
    conv::ip_packet(frames::PEER_IP, frames::STACK_IP, IpProtocol::Icmp, &buf)
}

fn echo_request(len: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
    icmp(&Icmpv4Repr::EchoRequest { ident: 0x1c46, seq_no: 1, data: &data })
}

/// The fragments of `packet` (an unfragmented IPv4 packet) in pieces of
/// `piece` bytes (a multiple of 8).
fn fragments(packet: &[u8], piece: usize) -> Vec<Vec<u8>> {
    let p = Ipv4Packet::new_checked(packet).unwrap();
    let repr = Ipv4Repr::parse(&p, true).unwrap();
    let payload = p.payload();
    payload
        .chunks(piece)
        .enumerate()
        .map(|(i, chunk)| {
            let r = Ipv4Repr {
                payload_len: chunk.len(),
                dont_frag: false,
                more_frags: (i + 1) * piece < payload.len(),
                frag_offset: (i * piece) as u16,
                ..repr
            };
            let mut buf = vec![0u8; r.total_len()];
            r.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]), true);
            buf[20..].copy_from_slice(chunk);
            buf
        })
        .collect()
}

fn syn(src_port: u16, dst_port: u16, seq: u32) -> TcpRepr {
    TcpRepr {
        src_port,
        dst_port,
        seq,
        ack: 0,
        flags: TcpFlags::SYN,
        window: 64240,
        urgent: 0,
        options: TcpOptions {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            timestamps: Some((1000, 0)),
            ..Default::default()
        },
    }
}

// ---- wire_parsers ---------------------------------------------------------------

fn wire_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let (a, b) = (frames::PEER_IP, frames::STACK_IP);
    let syn_packet = tcp(&syn(40000, 80, 0x1234_5678), b"", a, b);
    let mut data = syn(40000, 80, 0x1234_5679);
    data.flags = TcpFlags::ACK | TcpFlags::PSH;
    data.ack = 0x0abc_def0;
    data.options = TcpOptions { timestamps: Some((1001, 77)), ..Default::default() };
    data.options.sack_blocks.push(0x0abc_e000, 0x0abc_e100);
    data.options.sack_blocks.push(0x0abc_f000, 0x0abc_f100);
    let data_packet = tcp(&data, b"GET / HTTP/1.1\r\n\r\n", a, b);
    let quoted = Ipv4Packet::new_checked(&syn_packet[..]).unwrap();
    let unreachable = icmp(&Icmpv4Repr::DstUnreachable {
        reason: ustack_core::wire::DstUnreachable::FragRequired { next_hop_mtu: 1400 },
        header: Ipv4Repr::parse(&quoted, true).unwrap(),
        data: &quoted.payload()[..8],
    });
    let echo = echo_request(56);
    vec![
        ("arp_request", arp_request()),
        ("eth_tcp_syn", ethernet(frames::STACK_MAC, EtherType::Ipv4, &syn_packet)),
        ("ip_tcp_data_sack", data_packet),
        ("eth_udp", ethernet(frames::STACK_MAC, EtherType::Ipv4, &udp(5353, 53, b"\xab\xcd\x01\x00\x00\x01"))),
        ("eth_icmp_echo", ethernet(frames::STACK_MAC, EtherType::Ipv4, &echo)),
        ("ip_icmp_frag_needed", unreachable),
        ("ip_fragment", fragments(&echo_request(100), 64).remove(0)),
        ("text_mac", b"02:00:00:00:00:01".to_vec()),
        ("text_cidr", b"10.0.0.1/24".to_vec()),
    ]
}

// ---- stack_frames ---------------------------------------------------------------

/// Records for the Ethernet stack (`eth`) or the IP stack, fixing nothing,
/// with `wait` and the applications running.
fn rec(ip_stack: bool, wait: u8, bytes: Vec<u8>) -> (u8, Vec<u8>) {
    let mut c = ctl_wait(wait) | CTL_APP;
    if ip_stack {
        c |= CTL_IP_STACK;
    }
    (c, bytes)
}

/// The last SYN-ACK the stack sent to port 40000 in answer to `records`.
fn stack_isn(records: &[(u8, Vec<u8>)], ip_stack: bool) -> u32 {
    stack_synack(records, ip_stack, 40000).seq
}

/// The last SYN-ACK the stack sent to `port` in answer to `records`.
fn stack_synack(records: &[(u8, Vec<u8>)], ip_stack: bool, port: u16) -> TcpRepr {
    let mut synack = None;
    frames::replay(&frames::encode(records), &mut |from_ip, f| {
        if from_ip != ip_stack {
            return;
        }
        let ip = if ip_stack { f } else { &f[14..] };
        let Ok(p) = Ipv4Packet::new_checked(ip) else { return };
        // (A segment carried over UDP follows the UDP header.)
        let segment = match p.protocol() {
            IpProtocol::Tcp => p.payload(),
            IpProtocol::Udp if p.payload().len() > 8 => &p.payload()[8..],
            _ => return,
        };
        let Ok(t) = TcpPacket::new_checked(segment) else { return };
        if t.flags().syn() && t.flags().ack() && t.dst_port() == port {
            synack = TcpRepr::parse(&t, None).ok();
        }
    });
    synack.expect("the stack answered the SYN")
}

/// TCP Fast Open (RFC 7413) to the listener: a SYN asks for a cookie
/// (from port 40001), then a SYN from port 40000 carries the cookie and
/// data, which the stack takes and echoes before the handshake ends; the
/// ACK, FIN and last ACK follow.
fn fast_open_connection(ip_stack: bool, prefix: Vec<(u8, Vec<u8>)>) -> Vec<u8> {
    let (a, b) = (frames::PEER_IP, frames::STACK_IP);
    let wrap = |p: Vec<u8>| if ip_stack { p } else { ethernet(frames::STACK_MAC, EtherType::Ipv4, &p) };
    let mut recs = prefix;
    let mut ask = syn(40001, 80, 0x2000_0000);
    ask.options.fast_open = Some(FastOpenCookie::REQUEST);
    recs.push(rec(ip_stack, 1, wrap(tcp(&ask, b"", a, b))));
    let cookie = stack_synack(&recs, ip_stack, 40001).options.fast_open.expect("a cookie");
    let isn = 0x1000_0000u32;
    let data = b"hello, fast open\n";
    let mut first = syn(40000, 80, isn);
    first.options.fast_open = Some(cookie);
    recs.push(rec(ip_stack, 1, wrap(tcp(&first, data, a, b))));
    let synack = stack_synack(&recs, ip_stack, 40000);
    assert_eq!(synack.ack, isn + 1 + data.len() as u32, "the SYN's data was taken");
    let iss = synack.seq;
    let mut seg = syn(40000, 80, isn + 1 + data.len() as u32);
    seg.options = TcpOptions { timestamps: Some((1010, 0)), ..Default::default() };
    seg.ack = iss.wrapping_add(1 + data.len() as u32);
    seg.window = 502;
    fin_and_last_ack(&mut recs, ip_stack, 2, seg, &|s| wrap(tcp(s, b"", a, b)));
    frames::encode(&recs)
}

/// The peer's FIN, acknowledging all so far (after `wait`), and the last
/// ACK, of the stack's FIN.
fn fin_and_last_ack(
    recs: &mut Vec<(u8, Vec<u8>)>,
    ip_stack: bool,
    wait: u8,
    mut seg: TcpRepr,
    frame: &dyn Fn(&TcpRepr) -> Vec<u8>,
) {
    seg.flags = TcpFlags::ACK | TcpFlags::FIN;
    recs.push(rec(ip_stack, wait, frame(&seg)));
    seg.seq += 1;
    seg.ack = seg.ack.wrapping_add(1);
    seg.flags = TcpFlags::ACK;
    recs.push(rec(ip_stack, 3, frame(&seg)));
}

/// A whole connection to the listener: SYN, ACK, data, FIN, last ACK; with
/// `over_udp`, each segment carried in a UDP datagram to the Ethernet
/// stack's TCP-over-UDP port.
fn connection(ip_stack: bool, prefix: Vec<(u8, Vec<u8>)>, over_udp: bool) -> Vec<u8> {
    let (a, b) = (frames::PEER_IP, frames::STACK_IP);
    let wrap = |p: Vec<u8>| {
        let p = if over_udp { udp(4000, frames::TCP_OVER_UDP_PORT, &p[20..]) } else { p };
        if ip_stack { p } else { ethernet(frames::STACK_MAC, EtherType::Ipv4, &p) }
    };
    let isn = 0x1000_0000u32;
    let mut recs = prefix;
    recs.push(rec(ip_stack, 1, wrap(tcp(&syn(40000, 80, isn), b"", a, b))));
    let iss = stack_isn(&recs, ip_stack);
    let mut seg = syn(40000, 80, isn + 1);
    seg.options = TcpOptions { timestamps: Some((1010, 0)), ..Default::default() };
    seg.flags = TcpFlags::ACK;
    seg.ack = iss.wrapping_add(1);
    seg.window = 502;
    recs.push(rec(ip_stack, 2, wrap(tcp(&seg, b"", a, b))));
    seg.flags = TcpFlags::ACK | TcpFlags::PSH;
    recs.push(rec(ip_stack, 1, wrap(tcp(&seg, b"hello, ustack\n", a, b))));
    // The echo came back: acknowledge it with the FIN.
    seg.seq += 14;
    seg.ack = seg.ack.wrapping_add(14);
    fin_and_last_ack(&mut recs, ip_stack, 3, seg, &|s| wrap(tcp(s, b"", a, b)));
    frames::encode(&recs)
}

fn frame_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let eth = |p: Vec<u8>| ethernet(frames::STACK_MAC, EtherType::Ipv4, &p);
    let arp = vec![
        rec(false, 0, arp_request()),
        rec(false, 1, arp_reply_for_gateway_and_peer(frames::PEER_IP)),
        rec(false, 1, arp_reply_for_gateway_and_peer(frames::GATEWAY)),
    ];
    let mut frags = vec![rec(false, 0, arp_request())];
    frags.extend(fragments(&echo_request(300), 128).into_iter().rev().map(|f| rec(false, 1, eth(f))));
    vec![
        ("eth_arp", frames::encode(&arp)),
        ("eth_tcp_connection", connection(false, arp.clone(), false)),
        ("eth_tcp_over_udp_connection", connection(false, arp, true)),
        ("ip_tcp_connection", connection(true, Vec::new(), false)),
        ("ip_tcp_fast_open_connection", fast_open_connection(true, Vec::new())),
        ("ip_udp_and_ping", frames::encode(&[rec(true, 0, udp(5353, 53, b"query")), rec(true, 2, echo_request(56))])),
        ("eth_fragments", frames::encode(&frags)),
        (
            "fixups",
            frames::encode(&[(
                CTL_FIX_ADDRESSES | CTL_FIX_LENGTHS | CTL_FIX_CHECKSUMS | CTL_APP,
                ethernet(EthernetAddress([0; 6]), EtherType::Unknown(0), &udp(1, 53, b"fix me")),
            )]),
        ),
    ]
}

// ---- tcp_conversation -----------------------------------------------------------------

fn setup() -> Setup {
    Setup {
        sack: true,
        timestamps: true,
        window_scaling: true,
        nagle: true,
        delayed_ack: true,
        small_buffers: false,
        newreno: false,
        pacing: true,
        mtu: Mtu::Ethernet,
    }
}

const FULL_SYN: SynOptions =
    SynOptions { mss: Some(1460), window_scale: Some(7), sack_permitted: true, timestamps: true, window: 64240 };

const STALE_ECHO_PEER_TSVAL: u32 = 1008;
const STALE_ECHO_STACK_TSVAL: u32 = 2_348_930_037;

fn conversation_seeds() -> Vec<(&'static str, Conversation)> {
    let ack = || Op::Ack { window: 65535, sack: Vec::new() };
    let ms = |n| Op::Wait(Wait::Millis(n));
    let listen = Conversation {
        active: false,
        setup: setup(),
        peer_isn: 0x1000_0000,
        ops: vec![
            Op::Open(FULL_SYN),
            ack(),
            Op::Accept,
            Op::Data { len: 1000, fin: false },
            Op::Recv(4096),
            Op::Send(3000),
            ms(50),
            ack(),
            Op::Data { len: 200, fin: true },
            Op::Recv(4096),
            Op::Recv(4096),
            Op::Close,
            ms(10),
            ack(),
            Op::Wait(Wait::NextTimer),
        ],
    };
    let connect = Conversation {
        active: true,
        setup: Setup { newreno: true, delayed_ack: false, ..setup() },
        peer_isn: 0xffff_ff00,
        ops: vec![
            Op::Open(FULL_SYN),
            Op::Send(8000),
            ms(20),
            Op::Ack { window: 65535, sack: vec![SackBlock { start: 1448, len: 2896 }] },
            ms(20),
            Op::Wait(Wait::NextTimer),
            ack(),
            Op::Data { len: 500, fin: true },
            Op::Recv(1000),
            Op::Shutdown(How::Write),
            ms(1),
            ack(),
            Op::Wait(Wait::Seconds(61)),
        ],
    };
    let small = Conversation {
        active: false,
        setup: Setup { small_buffers: true, timestamps: false, mtu: Mtu::Small, ..setup() },
        peer_isn: 7,
        ops: vec![
            Op::Open(SynOptions { timestamps: false, window_scale: None, ..FULL_SYN }),
            ack(),
            Op::Accept,
            Op::Data { len: 3000, fin: false },
            Op::Data { len: 3000, fin: false },
            Op::Wait(Wait::NextTimer),
            Op::Recv(1000),
            Op::Wait(Wait::NextTimer),
            Op::Data { len: 1000, fin: false },
            Op::SetOption(Opt::KeepAlive(true)),
            Op::Recv(8000),
            Op::Abort,
        ],
    };
    let raw = |flags: TcpFlags, seq, ack, len| {
        Op::Segment(SegmentSpec {
            flags: flags.bits(),
            seq,
            ack,
            window: 1000,
            syn_options: None,
            timestamps: TsSpec::Good,
            sack: Vec::new(),
            len,
            urgent: 0,
        })
    };
    let reorder = Conversation {
        active: false,
        setup: setup(),
        peer_isn: 0x8000_0000,
        ops: vec![
            Op::Open(FULL_SYN),
            ack(),
            Op::Accept,
            raw(TcpFlags::ACK, SeqSpec::Next(1000), AckSpec::Next(0), 500),
            raw(TcpFlags::ACK, SeqSpec::Next(0), AckSpec::Next(0), 1000),
            Op::Recv(4000),
            raw(TcpFlags::ACK | TcpFlags::FIN, SeqSpec::Next(500), AckSpec::Next(0), 0),
            Op::Recv(4000),
            raw(TcpFlags::RST, SeqSpec::Next(100), AckSpec::Next(0), 0),
            raw(TcpFlags::SYN, SeqSpec::Isn(5), AckSpec::Raw(0), 0),
            Op::Icmp(IcmpSpec { kind: IcmpKind::FragNeeded(576), seq: -1 }),
            Op::Close,
            ms(200),
        ],
    };
    // CI's crash of 2026-12-03: an ACK echoing a TSecr 2^30 ms (12 days)
    // before the stack's TSval made SRTT days long, pacing spaced the
    // segments hours apart, and once all that was sent is acknowledged the
    // orphan's data waits with no other timer armed (the timestamps are
    // this run's: the stack's SYN-ACK TSval, the peer's clock at 1 s).
    let stale_echo = Conversation {
        active: false,
        setup: setup(),
        peer_isn: 0x1000_0000,
        ops: vec![
            Op::Open(FULL_SYN),
            Op::Segment(SegmentSpec {
                flags: TcpFlags::ACK.bits(),
                seq: SeqSpec::Next(0),
                ack: AckSpec::Next(0),
                window: 65535,
                syn_options: None,
                timestamps: TsSpec::Raw(STALE_ECHO_PEER_TSVAL, STALE_ECHO_STACK_TSVAL.wrapping_sub(1 << 30)),
                sack: Vec::new(),
                len: 0,
                urgent: 0,
            }),
            Op::Accept,
            Op::Send(20_000),
            ms(1),
            ack(),
            Op::Close,
        ],
    };
    vec![
        ("listen_data_fin", listen),
        ("connect_sack_fin", connect),
        ("small_window", small),
        ("reorder", reorder),
        ("stale_ts_echo", stale_echo),
    ]
}
