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
