//! Resource limits (issue 7): each is a `StackConfig` setting with a safe
//! default; a test per limit drives a stack into it and checks that the hit
//! is counted in `Stats::limits` (and in the `/stats` JSON) and that an
//! established connection beside it still moves every byte in order.

mod common;

use common::*;
use std::net::Ipv4Addr;
use ustack_core::sim::Verdict;
use ustack_core::wire::{
    EtherType, EthernetAddress, EthernetRepr, IpProtocol, Ipv4Packet, TcpFlags, TcpOptions, TcpRepr,
};
use ustack_core::{Error, SocketHandle};

const PHANTOM_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 66);
const PHANTOM_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x42];

/// Sends `n` bytes each way on an established pair, half-closes both
/// ends, and checks that every byte arrived in order.
fn exchange(rig: &mut Rig, c: SocketHandle, s: SocketHandle, n: usize) {
    let (up, down) = (pattern(n, 3), pattern(n, 4));
    rig.send_all(rig.client, c, &up);
    rig.send_all(rig.server, s, &down);
    rig.c().shutdown(c, ustack_core::Shutdown::Write).unwrap();
    rig.s().shutdown(s, ustack_core::Shutdown::Write).unwrap();
    let limit = rig.now() + secs(60);
    let got_up = rig.read_to_eof(rig.server, s, limit);
    let got_down = rig.read_to_eof(rig.client, c, limit);
    assert!(got_up == up, "client to server: {} of {n} bytes, or out of order", got_up.len());
    assert!(got_down == down, "server to client: {} of {n} bytes, or out of order", got_down.len());
}

fn json_has(rig: &mut Rig, field: &str) {
    let json = rig.s().stats().to_json();
    assert!(json.contains(field), "{field} not in {json}");
}

/// `max_sockets`: past it `tcp_socket` fails with ENFILE-like
/// `TooManySockets`, each refusal is counted, and the open connection
/// carries on.
#[test]
fn socket_table_limit_refuses_counts_and_spares_open_connections() {
    let mut cfg = RigConfig::new(71);
    cfg.server.max_sockets = 4;
    let mut rig = cfg.build();
    let (c, _l, s) = rig.establish();
    let mut opened = 0;
    let err = loop {
        match rig.s().tcp_socket() {
            Ok(_) => opened += 1,
            Err(e) => break e,
        }
        assert!(opened < 10, "the limit is not enforced");
    };
    assert_eq!(err, Error::TooManySockets);
    assert_eq!(rig.s().socket_count(), 4);
    assert_eq!(rig.s().udp_socket(), Err(Error::TooManySockets));
    assert_eq!(rig.s().stats().limits.sockets, 2);
    json_has(&mut rig, "\"limits\":{\"sockets\":2,");
    exchange(&mut rig, c, s, 200_000);
}

/// `max_half_open` (RFC 4987 §3.2, with SYN cookies off): SYNs past a full
/// SYN queue are dropped and counted, and the established connection on the
/// same listener is untouched.
#[test]
fn half_open_limit_drops_excess_syns_counts_them_and_spares_open_connections_rfc4987_3_2() {
    let mut cfg = RigConfig::new(72);
    cfg.server.max_half_open = 3;
    cfg.server.syn_cookies = false;
    let mut rig = cfg.build();
    rig.s().neighbors_mut().insert_static(PHANTOM_IP, PHANTOM_MAC);
    rig.set_rule(|p| if p.ip.dst_addr == PHANTOM_IP { Verdict::Drop } else { Verdict::Pass });
    let (c, _l, s) = rig.establish();
    for i in 0..10u16 {
        let syn = TcpRepr {
            src_port: 2000 + i,
            dst_port: SERVER_PORT,
            seq: 0x2000_0000u32.wrapping_mul(u32::from(i) + 1),
            ack: 0,
            flags: TcpFlags::SYN,
            window: 64240,
            urgent: 0,
            options: TcpOptions { mss: Some(1460), ..Default::default() },
        };
        let eth = EthernetRepr {
            src: EthernetAddress(PHANTOM_MAC),
            dst: ustack_core::sim::scenario::host_mac(2),
            ethertype: EtherType::Ipv4,
        };
        rig.inject(TO_SERVER, build_frame(eth, PHANTOM_IP, server_ip(), &syn, &[]));
    }
    rig.run_for(ms(10));
    let half_open = rig.s().tcp_connections().filter(|(_, k)| k.remote().ip() == &PHANTOM_IP).count();
    assert_eq!(half_open, 3);
    assert_eq!(rig.s().stats().limits.half_open, 7);
    json_has(&mut rig, "\"half_open\":7,");
    exchange(&mut rig, c, s, 200_000);
}

/// `ooo_memory_limit`: out-of-order data beyond the stack-wide budget is
/// dropped (the sender will retransmit it) and counted; the connection
/// that sent it and another one both still deliver every byte.
#[test]
fn out_of_order_memory_limit_drops_counts_and_loses_no_byte() {
    let mut cfg = RigConfig::new(73);
    cfg.server.ooo_memory_limit = 8_000;
    let mut rig = cfg.build();
    let (c, l, s) = rig.establish();
    // A second connection on the same listener.
    let c2 = rig.connect();
    let limit = rig.now() + secs(5);
    rig.run_until_true(limit, "second handshake", |r| r.s().can_recv(l));
    let (s2, _) = rig.s().accept(l).unwrap();
    // Lose one segment of the first connection's data in five, so the rest
    // waits out of order.
    let mut n = 0u32;
    rig.set_rule(move |p| {
        if p.from == FROM_CLIENT && p.dst().port() == SERVER_PORT && p.len() > 0 {
            n += 1;
            if n.is_multiple_of(5) && n < 200 {
                return Verdict::Drop;
            }
        }
        Verdict::Pass
    });
    let up = pattern(400_000, 5);
    rig.send_all(rig.client, c, &up);
    rig.c().shutdown(c, ustack_core::Shutdown::Write).unwrap();
    let got = rig.read_to_eof(rig.server, s, rig.now() + secs(120));
    assert!(got == up, "{} of {} bytes, or out of order", got.len(), up.len());
    let drops = rig.s().stats().tcp.ooo_limit_drops;
    assert!(drops > 0, "the limit was never hit");
    assert_eq!(rig.s().out_of_order_bytes(), 0);
    json_has(&mut rig, &format!("\"ooo_memory\":{drops},"));
    rig.set_rule(|_| Verdict::Pass);
    exchange(&mut rig, c2, s2, 100_000);
}

/// A connection holds at most `MAX_OOO_RANGES` (1,024) separate
/// out-of-order ranges: a flood of 1-byte segments each opening a new hole
/// is dropped past that, counted with the out-of-order limit, and the
/// stream then completes with the right bytes once the real data comes.
#[test]
fn out_of_order_range_cap_drops_counts_and_loses_no_byte() {
    let mut rig = RigConfig::new(74).build();
    let (c, _l, s) = rig.establish();
    rig.send_all(rig.client, c, b"hello");
    rig.run_for(ms(100));
    let template = rig.last_from(FROM_CLIENT);
    let next = template.end();
    // 1,100 one-byte segments, each two bytes after the last: 1,100 holes.
    // Their bytes are the ones the client sends there next (`exchange`
    // sends `pattern(10_000, 3)`): an on-path sender who knows the
    // sequence numbers writes into the stream, as in any TCP.
    let up = pattern(10_000, 3);
    for i in 0..1_100u32 {
        let offset = 2 + 2 * i;
        let tcp = forged_header(&template, TcpFlags::ACK | TcpFlags::PSH, next.wrapping_add(offset), template.ack());
        rig.inject(TO_SERVER, forge(&template, &tcp, &[up[offset as usize]]));
    }
    rig.run_for(ms(100));
    let drops = rig.s().stats().tcp.ooo_limit_drops;
    assert!(drops >= 1_100 - 1_024, "{drops} drops counted past the range cap");
    json_has(&mut rig, &format!("\"ooo_memory\":{drops},"));
    // The stream completes, in order, when the client's data fills the
    // holes, and the dropped segments cost nothing but their resending.
    let mut got = vec![0u8; 5];
    let n = rig.s().recv(s, &mut got).unwrap();
    assert_eq!(&got[..n], b"hello");
    exchange(&mut rig, c, s, 10_000);
}

/// An IPv4 fragment (MF set, offset 0) of `len` bytes from the client to
/// the server, datagram `ident`.
fn first_fragment(ident: u16, len: usize) -> Vec<u8> {
    let mut frame = vec![0u8; 14 + 20 + len];
    frame[..6].copy_from_slice(&ustack_core::sim::scenario::host_mac(2).0);
    frame[6..12].copy_from_slice(&ustack_core::sim::scenario::host_mac(1).0);
    frame[12..14].copy_from_slice(&[0x08, 0x00]);
    let mut ip = Ipv4Packet::new_unchecked(&mut frame[14..]);
    ip.set_version(4);
    ip.set_header_len(20);
    ip.set_total_len((20 + len) as u16);
    ip.set_ident(ident);
    ip.clear_flags();
    ip.set_more_frags(true);
    ip.set_hop_limit(64);
    ip.set_protocol(IpProtocol::Udp);
    ip.set_src_addr(client_ip());
    ip.set_dst_addr(server_ip());
    ip.fill_checksum();
    frame
}

/// Reassembly memory (`ReassemblyConfig::max_bytes` / `max_datagrams`,
/// RFC 1122 §3.3.2 lets a host bound it): a flood of first fragments that
/// never complete evicts older datagrams and is counted; TCP beside it is
/// untouched.
#[test]
fn fragment_memory_limit_evicts_counts_and_spares_tcp_rfc1122_3_3_2() {
    let mut cfg = RigConfig::new(74);
    cfg.server.reassembly.max_bytes = 16_000;
    cfg.server.reassembly.max_datagrams = 4;
    let mut rig = cfg.build();
    let (c, _l, s) = rig.establish();
    for ident in 0..20u16 {
        rig.inject(TO_SERVER, first_fragment(ident, 1480));
    }
    // One datagram far over the byte budget on its own.
    rig.inject(TO_SERVER, first_fragment(999, 1480));
    rig.run_for(ms(10));
    let hits = rig.s().stats().limits.frag_memory;
    assert!(hits >= 16, "{hits} limit hits for 20 datagrams into room for 4");
    json_has(&mut rig, &format!("\"frag_memory\":{hits},"));
    exchange(&mut rig, c, s, 200_000);
}

/// `tcp_memory_limit`: two clients send to a server that does not read
/// until its connections together hold the stack-wide budget. Past it,
/// arriving data is dropped (and retransmitted later) and a write is
/// refused with EAGAIN although the socket's own buffer has room; each hit
/// is counted. The total stays within the budget plus one connection's
/// floor; a third connection still exchanges every byte both ways (the
/// floor); and once the application reads, both streams arrive whole.
#[test]
fn tcp_memory_limit_refuses_writes_drops_data_counts_and_corrupts_nothing() {
    const LIMIT: usize = 300_000;
    let mut cfg = RigConfig::new(75);
    cfg.server.tcp_memory_limit = LIMIT;
    let mut rig = cfg.build();
    let (c1, l, s1) = rig.establish();
    let more = |rig: &mut Rig| {
        let c = rig.connect();
        let limit = rig.now() + secs(5);
        rig.run_until_true(limit, "handshake", |r| r.s().can_recv(l));
        (c, rig.s().accept(l).unwrap().0)
    };
    let (c2, s2) = more(&mut rig);
    let (c3, s3) = more(&mut rig);
    let (c4, s4) = more(&mut rig);
    let (up1, up2) = (pattern(400_000, 6), pattern(400_000, 7));
    let (mut o1, mut o2) = (0, 0);
    let limit = rig.now() + secs(5);
    while rig.now() < limit {
        o1 += rig.c().send(c1, &up1[o1..]).unwrap_or(0);
        o2 += rig.c().send(c2, &up2[o2..]).unwrap_or(0);
        rig.run_for(ms(10));
        assert!(
            rig.s().tcp_buffered_bytes() <= LIMIT + ustack_core::tcp::MEMORY_FLOOR,
            "{} bytes buffered",
            rig.s().tcp_buffered_bytes()
        );
    }
    assert_eq!((o1, o2), (up1.len(), up2.len()), "the clients' buffers took the rest");
    let dropped = rig.s().stats().tcp.memory_limited;
    assert!(dropped > 0, "the budget was never hit");
    assert!(rig.s().tcp_buffered_bytes() >= LIMIT - 64 * 1024, "the hogs hold most of the budget");

    // A write on an idle connection gets its floor, then EAGAIN, though
    // its own send buffer has room.
    let big = pattern(200_000, 8);
    let n = rig.s().send(s4, &big).unwrap();
    assert!(n > 0 && n <= ustack_core::tcp::MEMORY_FLOOR, "{n} bytes taken");
    assert_eq!(rig.s().send(s4, &big[n..]), Err(Error::WouldBlock));
    assert!(rig.s().send_capacity(s4) > 0, "the socket's own buffer is not full");
    assert_eq!(rig.s().stats().tcp.memory_limited, dropped + 1);
    rig.send_all(rig.server, s4, &big[n..]);
    rig.s().shutdown(s4, ustack_core::Shutdown::Write).unwrap();
    let got4 = rig.read_to_eof(rig.client, c4, rig.now() + secs(60));
    assert!(got4 == big, "{} of {} bytes, or out of order", got4.len(), big.len());

    // The neighbour moves every byte both ways while the hogs hold on.
    exchange(&mut rig, c3, s3, 100_000);

    // Pressure goes away: the application reads, and both streams are
    // whole.
    rig.c().shutdown(c1, ustack_core::Shutdown::Write).unwrap();
    rig.c().shutdown(c2, ustack_core::Shutdown::Write).unwrap();
    let got1 = rig.read_to_eof(rig.server, s1, rig.now() + secs(120));
    let got2 = rig.read_to_eof(rig.server, s2, rig.now() + secs(120));
    assert!(got1 == up1, "stream 1: {} of {} bytes, or out of order", got1.len(), up1.len());
    assert!(got2 == up2, "stream 2: {} of {} bytes, or out of order", got2.len(), up2.len());
    let hits = rig.s().stats().tcp.memory_limited;
    json_has(&mut rig, &format!("\"tcp_memory\":{hits}}}"));
}

/// Drained socket buffers go to the stack's pool (issue 6), which stays
/// within its bound: once a transfer is read and acknowledged, and the
/// connection has been quiet for `DRAINED_STORAGE_KEPT` (a busy one drains
/// its buffers over and over, and keeps their storage meanwhile), the
/// connections hold no buffer storage, and what the rings used is kept
/// for the next one.
#[test]
fn drained_buffers_are_pooled_within_the_bound_and_connections_keep_none() {
    use ustack_core::tcp::ring::BufferPool;
    let mut rig = Rig::new(780);
    let (c, _l, s) = rig.establish();
    assert_eq!((rig.c().pooled_buffer_bytes(), rig.s().pooled_buffer_bytes()), (0, 0));
    // Within the socket buffers, so the writer does not wait for a reader.
    let data = pattern(200_000, 5);
    rig.send_all(rig.client, c, &data);
    let limit = rig.now() + secs(60);
    assert!(rig.read_n(s, data.len(), limit) == data, "every byte, in order");
    assert!(rig.s().buffer_bytes() > 0, "a ring just drained keeps its storage a while");
    rig.run_for(ustack_core::tcp::DRAINED_STORAGE_KEPT / 2);
    assert!(rig.s().buffer_bytes() > 0, "still within DRAINED_STORAGE_KEPT");
    rig.run_for(ms(500));
    assert_eq!(rig.c().buffer_bytes(), 0, "the sender's ring went back when all was acknowledged");
    assert_eq!(rig.s().buffer_bytes(), 0, "the receiver's ring went back when all was read");
    for kept in [rig.c().pooled_buffer_bytes(), rig.s().pooled_buffer_bytes()] {
        assert!(kept > 0 && kept <= BufferPool::MAX_BYTES, "kept {kept}");
    }
}
