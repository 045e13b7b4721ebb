//! IP_TOS and IP_TTL (setsockopt/getsockopt) on the simulator: the type of
//! service byte (RFC 791 §3.1; its DSCP, RFC 2474 §3, and its ECN field,
//! RFC 3168 §5) and the time to live a socket gives its packets. On TCP
//! the settings apply in every state (before connect, on a listener and
//! the connections it accepts, on a live connection from its next
//! segment), while the ECN field stays TCP's; a UDP socket's datagrams
//! carry the whole byte.

mod common;

use common::*;
use std::net::SocketAddrV4;
use ustack_core::sim::Verdict;
use ustack_core::socket::{SockOpt, SockOptName};
use ustack_core::tcp::{Ecn, State};
use ustack_core::wire::{TcpFlags, TcpRepr};
use ustack_core::{Error, SocketHandle, Stack};

/// DSCP class selector 1 and expedited forwarding (RFC 2474 §4.2.2.2,
/// RFC 3246), as IP_TOS bytes.
const CS1: u8 = 0x20;
const CS7: u8 = 0xe0;
const EF: u8 = 0xb8;
/// The stacks' default TTL (`StackConfig::ttl`).
const DEFAULT_TTL: u8 = 64;

fn set_tos_ttl(s: &mut Stack, h: SocketHandle, tos: u8, ttl: u8) {
    s.set_option(h, SockOpt::Tos(tos)).unwrap();
    s.set_option(h, SockOpt::Ttl(Some(ttl))).unwrap();
}

fn tos_ttl(s: &mut Stack, h: SocketHandle) -> (SockOpt, SockOpt) {
    (s.get_option(h, SockOptName::Tos).unwrap(), s.get_option(h, SockOptName::Ttl).unwrap())
}

fn assert_marked(pkts: &[Pkt], tos: u8, ttl: u8) {
    assert!(!pkts.is_empty());
    for p in pkts {
        assert_eq!((p.ip.dscp_ecn, p.ip.hop_limit), (tos, ttl), "{p}");
    }
}

/// Set before connect, the options mark the SYN and every segment after
/// it (data, pure ACKs, the FIN); the peer, left at the defaults, sends
/// TOS 0 and the stack's TTL.
#[test]
fn syn_data_and_fin_carry_tos_and_ttl_set_before_connect_rfc2474() {
    let mut rig = Rig::new(1);
    let l = rig.listen(4);
    let c = rig.c().tcp_socket().unwrap();
    set_tos_ttl(rig.c(), c, CS1, 7);
    assert_eq!(tos_ttl(rig.c(), c), (SockOpt::Tos(CS1), SockOpt::Ttl(Some(7))));
    rig.c().connect(c, server_addr()).unwrap();
    rig.run_for(ms(100));
    let (s, _) = rig.s().accept(l).unwrap();
    rig.send_all(rig.client, c, &pattern(20_000, 1));
    rig.send_all(rig.server, s, &pattern(3_000, 2));
    rig.run_for(ms(200));
    // Both read what came, so that close sends a FIN, not a RST.
    assert_eq!(rig.read_n(s, 20_000, rig.now() + secs(5)).len(), 20_000);
    let mut got = Vec::new();
    rig.read_some(rig.client, c, &mut got).unwrap();
    assert_eq!(got.len(), 3_000);
    // The connection reports what it was given.
    assert_eq!(tos_ttl(rig.c(), c), (SockOpt::Tos(CS1), SockOpt::Ttl(Some(7))));
    rig.c().close(c).unwrap();
    rig.s().close(s).unwrap();
    rig.run_for(secs(1));
    let from_client = rig.pkts_from(FROM_CLIENT);
    assert!(from_client[0].is_syn());
    assert!(from_client.iter().any(|p| p.len() > 0));
    assert!(from_client.iter().any(|p| p.is_pure_ack()));
    assert!(from_client.iter().any(|p| p.is_fin()));
    assert_marked(&from_client, CS1, 7);
    assert_marked(&rig.pkts_from(FROM_SERVER), 0, DEFAULT_TTL);
}

/// A listener's SYN-ACKs carry its options and the connections it accepts
/// inherit them, whether made from its SYN queue or from a SYN cookie
/// (RFC 4987 §3.6), whose SYN-ACK no connection sends.
#[test]
fn listener_synacks_and_accepted_connections_inherit_tos_and_ttl_rfc2474() {
    for cookies in [false, true] {
        let mut cfg = RigConfig::new(2);
        if cookies {
            cfg.server.max_half_open = 0;
        }
        let mut rig = cfg.build();
        let l = rig.s().tcp_socket().unwrap();
        set_tos_ttl(rig.s(), l, EF, 9);
        rig.s().bind(l, server_addr()).unwrap();
        rig.s().listen(l, 4).unwrap();
        assert_eq!(tos_ttl(rig.s(), l), (SockOpt::Tos(EF), SockOpt::Ttl(Some(9))));
        let c = rig.connect();
        rig.run_for(ms(100));
        assert_eq!(rig.c().tcp_state(c), Ok(State::Established));
        let (s, _) = rig.s().accept(l).unwrap();
        assert_eq!(tos_ttl(rig.s(), s), (SockOpt::Tos(EF), SockOpt::Ttl(Some(9))));
        rig.send_all(rig.server, s, &pattern(10_000, 3));
        rig.send_all(rig.client, c, &pattern(1_000, 4));
        rig.run_for(ms(200));
        assert_eq!(rig.read_n(s, 1_000, rig.now() + secs(5)).len(), 1_000);
        rig.s().close(s).unwrap();
        rig.run_for(ms(200));
        let from_server = rig.pkts_from(FROM_SERVER);
        assert!(from_server[0].is_synack());
        assert!(from_server.iter().any(|p| p.len() > 0) && from_server.iter().any(|p| p.is_fin()));
        assert_marked(&from_server, EF, 9);
        assert_eq!(rig.s().stats().tcp.syn_cookies_sent, u64::from(cookies));
        assert_marked(&rig.pkts_from(FROM_CLIENT), 0, DEFAULT_TTL);
    }
}

/// On a live connection a change takes effect on the next segment, a
/// retransmission of data first sent with the old values included, and
/// then on keep-alive probes and pure ACKs. The connection shares its
/// settings with the listener's others: they keep theirs.
#[test]
fn changes_on_a_live_connection_mark_the_next_segment_and_retransmissions_rfc2474() {
    let mut rig = Rig::new(3);
    let (c, _l, s) = rig.establish();
    // The next data segment from the client is lost.
    let mut dropped = false;
    rig.set_rule(move |p| {
        if p.from == FROM_CLIENT && p.len() > 0 && !dropped {
            dropped = true;
            return Verdict::Drop;
        }
        Verdict::Pass
    });
    rig.send_all(rig.client, c, &pattern(1_000, 5));
    rig.run_for(ms(5));
    let before = rig.pkts().len();
    let lost = rig.pkts().into_iter().find(|p| p.dropped).expect("the data segment was dropped");
    assert_eq!((lost.ip.dscp_ecn, lost.ip.hop_limit), (0, DEFAULT_TTL));
    set_tos_ttl(rig.c(), c, CS7, 6);
    rig.c().set_option(c, SockOpt::KeepAlive(true)).unwrap();
    rig.c().set_option(c, SockOpt::KeepIdle(ms(2_000))).unwrap();
    rig.run_for(secs(2));
    assert_eq!(rig.read_n(s, 1_000, rig.now() + secs(5)), pattern(1_000, 5));
    rig.run_for(secs(3));
    let after: Vec<Pkt> = rig.pkts()[before..].iter().filter(|p| p.from == FROM_CLIENT).cloned().collect();
    let rexmit = after.iter().find(|p| p.seq() == lost.seq() && p.len() == lost.len()).expect("retransmitted");
    assert_eq!((rexmit.ip.dscp_ecn, rexmit.ip.hop_limit), (CS7, 6));
    // A keep-alive probe: SEG.SEQ = SND.NXT - 1, no data (RFC 1122 §4.2.3.6).
    let snd_nxt = lost.seq().wrapping_add(1_000);
    assert!(after.iter().any(|p| p.len() == 0 && p.seq() == snd_nxt.wrapping_sub(1)), "a keep-alive probe");
    assert_marked(&after, CS7, 6);
    // Back to the defaults: TTL -1 in Linux's terms.
    rig.c().set_option(c, SockOpt::Tos(0)).unwrap();
    rig.c().set_option(c, SockOpt::Ttl(None)).unwrap();
    assert_eq!(tos_ttl(rig.c(), c), (SockOpt::Tos(0), SockOpt::Ttl(Some(DEFAULT_TTL))));
    let before = rig.pkts().len();
    rig.send_all(rig.client, c, b"more");
    rig.run_for(ms(100));
    let after: Vec<Pkt> = rig.pkts()[before..].iter().filter(|p| p.from == FROM_CLIENT).cloned().collect();
    assert_marked(&after, 0, DEFAULT_TTL);
}

/// A segment for a port that a socket has bound but neither listens on
/// nor is connected from is answered with a RST (RFC 9293 §3.10.7.1), which
/// carries that socket's options, as FreeBSD's does; with no socket on the
/// port, the defaults. A connection's own RST (an abort) carries its
/// options too, and so does a listener's RST for a stray ACK.
#[test]
fn rsts_carry_the_options_of_the_socket_that_answers_rfc9293_3_10_7_1() {
    let mut rig = Rig::new(4);
    let bound = rig.s().tcp_socket().unwrap();
    set_tos_ttl(rig.s(), bound, CS1, 4);
    rig.s().bind(bound, SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 6000)).unwrap();
    let other = rig.s().tcp_socket().unwrap();
    set_tos_ttl(rig.s(), other, CS7, 5);
    let refuse = |rig: &mut Rig, port: u16| {
        let c = rig.c().tcp_socket().unwrap();
        rig.c().connect(c, SocketAddrV4::new(server_ip(), port)).unwrap();
        let before = rig.pkts().len();
        rig.run_for(ms(50));
        assert_eq!(rig.c().tcp_connection(c).and_then(|c| c.error()), Some(Error::ConnectionRefused));
        let rst: Vec<Pkt> = rig.pkts()[before..].iter().filter(|p| p.from == FROM_SERVER).cloned().collect();
        assert!(rst.len() == 1 && rst[0].is_rst(), "{rst:?}");
        (rst[0].ip.dscp_ecn, rst[0].ip.hop_limit)
    };
    assert_eq!(refuse(&mut rig, 6000), (CS1, 4));
    assert_eq!(refuse(&mut rig, 6001), (0, DEFAULT_TTL));

    // A listener answers an ACK for no connection with a RST of its own.
    let l = rig.s().tcp_socket().unwrap();
    set_tos_ttl(rig.s(), l, EF, 8);
    rig.s().bind(l, server_addr()).unwrap();
    rig.s().listen(l, 4).unwrap();
    let c = rig.connect();
    rig.run_for(ms(50));
    let t = rig.pkts_from(FROM_CLIENT).pop().unwrap();
    let stray = TcpRepr { src_port: t.tcp.src_port + 1, ..forged_header(&t, TcpFlags::ACK, 1, 1) };
    let before = rig.pkts().len();
    rig.inject(TO_SERVER, forge(&t, &stray, b""));
    rig.run_for(ms(20));
    let rst = rig.pkts()[before..].iter().find(|p| p.from == FROM_SERVER && p.is_rst()).cloned().unwrap();
    assert_eq!((rst.ip.dscp_ecn, rst.ip.hop_limit), (EF, 8));

    // An abort's RST.
    let (s, _) = rig.s().accept(l).unwrap();
    rig.s().set_option(s, SockOpt::Tos(CS7)).unwrap();
    rig.s().set_option(s, SockOpt::Linger(Some(ms(0)))).unwrap();
    let before = rig.pkts().len();
    rig.s().close(s).unwrap();
    rig.run_for(ms(20));
    let rst = rig.pkts()[before..].iter().find(|p| p.from == FROM_SERVER && p.is_rst()).cloned().unwrap();
    assert_eq!((rst.ip.dscp_ecn, rst.ip.hop_limit), (CS7, 8));
    assert_eq!(rig.c().tcp_state(c), Ok(State::Closed));
}

/// The ECN field is TCP's (RFC 3168 §6.1): with ECN negotiated, new data
/// goes ECT(0) under the DSCP of IP_TOS, and the SYN, pure ACKs and the
/// FIN Not-ECT, whatever ECN bits IP_TOS holds.
#[test]
fn ip_tos_sets_only_the_dscp_of_tcp_segments_rfc3168_6_1() {
    let mut rig = RigConfig::new(5).client_tcp(|t| t.ecn = Ecn::On).build();
    let l = rig.listen(4);
    let c = rig.c().tcp_socket().unwrap();
    // CS1 with both ECN bits set (CE): those bits are ignored.
    rig.c().set_option(c, SockOpt::Tos(CS1 | 0b11)).unwrap();
    rig.c().connect(c, server_addr()).unwrap();
    rig.run_for(ms(100));
    let (s, _) = rig.s().accept(l).unwrap();
    assert!(rig.c().tcp_connection(c).unwrap().ecn_negotiated());
    rig.send_all(rig.client, c, &pattern(20_000, 6));
    rig.run_for(ms(100));
    let _ = rig.read_n(s, 20_000, rig.now() + secs(5));
    // getsockopt gives the byte as it was set (FreeBSD keeps it so).
    assert_eq!(rig.c().get_option(c, SockOptName::Tos), Ok(SockOpt::Tos(CS1 | 0b11)));
    rig.c().close(c).unwrap();
    rig.run_for(ms(200));
    let from_client = rig.pkts_from(FROM_CLIENT);
    assert!(from_client.iter().any(|p| p.len() > 0) && from_client.iter().any(|p| p.len() == 0));
    for p in &from_client {
        let want = if p.len() > 0 { CS1 | 0b10 } else { CS1 };
        assert_eq!(p.ip.dscp_ecn, want, "{p}");
    }
    assert!(from_client.iter().any(|p| p.is_fin()));
}

/// UDP datagrams carry the whole TOS byte, ECN field included (UDP leaves
/// it to the application, RFC 8085 §3.1.7), and the TTL; `Ttl(None)`
/// restores the stack's.
#[test]
fn udp_datagrams_carry_the_whole_tos_byte_and_the_ttl_rfc791_3_1() {
    let mut rig = Rig::new(6);
    let srv = rig.s().udp_socket().unwrap();
    rig.s().bind(srv, SocketAddrV4::new(server_ip(), 53)).unwrap();
    let u = rig.c().udp_socket().unwrap();
    assert_eq!(tos_ttl(rig.c(), u), (SockOpt::Tos(0), SockOpt::Ttl(Some(DEFAULT_TTL))));
    set_tos_ttl(rig.c(), u, EF | 0b01, 3);
    assert_eq!(tos_ttl(rig.c(), u), (SockOpt::Tos(EF | 0b01), SockOpt::Ttl(Some(3))));
    // (TOS, TTL) of the IP datagrams crossing the middlebox.
    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let log = seen.clone();
    rig.mb_mut().set_filter(move |_, _, frame: &mut Vec<u8>| {
        log.borrow_mut().push((frame[14 + 1], frame[14 + 8]));
        Verdict::Pass
    });
    let marks = |rig: &mut Rig, u| {
        seen.borrow_mut().clear();
        rig.c().send_to(u, b"query", SocketAddrV4::new(server_ip(), 53)).unwrap();
        rig.run_for(ms(20));
        seen.borrow().clone()
    };
    assert_eq!(marks(&mut rig, u), vec![(EF | 0b01, 3)]);
    rig.c().set_option(u, SockOpt::Ttl(None)).unwrap();
    rig.c().set_option(u, SockOpt::Tos(0)).unwrap();
    assert_eq!(marks(&mut rig, u), vec![(0, DEFAULT_TTL)]);
    let mut buf = [0u8; 16];
    assert_eq!(rig.s().recv_from(srv, &mut buf).map(|(n, _)| n), Ok(5));
}

/// IP_TTL takes 1..=255 or the default (Linux's -1); 0 is EINVAL, on a
/// TCP socket in any state and on UDP, and leaves the value as it was.
/// The defaults read back as TOS 0 and the stack's configured TTL.
#[test]
fn ttl_zero_is_einval_and_defaults_read_back() {
    let mut cfg = RigConfig::new(7);
    cfg.server.ttl = 100;
    let mut rig = cfg.build();
    let idle = rig.s().tcp_socket().unwrap();
    assert_eq!(tos_ttl(rig.s(), idle), (SockOpt::Tos(0), SockOpt::Ttl(Some(100))));
    let (c, l, s) = rig.establish();
    let udp = rig.s().udp_socket().unwrap();
    for (stack_is_server, h) in [(true, idle), (true, l), (true, s), (false, c), (true, udp)] {
        let st = if stack_is_server { rig.s() } else { rig.c() };
        st.set_option(h, SockOpt::Ttl(Some(200))).unwrap();
        assert_eq!(st.set_option(h, SockOpt::Ttl(Some(0))), Err(Error::InvalidInput));
        assert_eq!(st.get_option(h, SockOptName::Ttl), Ok(SockOpt::Ttl(Some(200))));
        st.set_option(h, SockOpt::Ttl(Some(255))).unwrap();
        st.set_option(h, SockOpt::Ttl(None)).unwrap();
        let default = if stack_is_server { 100 } else { DEFAULT_TTL };
        assert_eq!(st.get_option(h, SockOptName::Ttl), Ok(SockOpt::Ttl(Some(default))));
        assert_eq!(st.get_option(h, SockOptName::Tos), Ok(SockOpt::Tos(0)));
    }
    // A closed handle is EBADF.
    rig.s().close(idle).unwrap();
    assert_eq!(rig.s().set_option(idle, SockOpt::Tos(CS1)), Err(Error::BadHandle));
}
