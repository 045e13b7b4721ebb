//! Connection establishment on the simulator (RFC 9293 §3.5): the
//! three-way handshake, simultaneous open, the loss of each handshake
//! segment, refused and timed-out connects, the listen backlog and the
//! MSS option.

mod common;

use common::*;
use std::net::SocketAddrV4;
use ustack_core::Error;
use ustack_core::sim::{LinkConfig, Verdict};
use ustack_core::tcp::State;
use ustack_core::time::Instant;
use ustack_core::wire::{EthernetRepr, TcpFlags, TcpRepr};

/// RFC 9293 §3.5, figure 6: SYN, SYN-ACK, ACK with the sequence numbers
/// the figure shows, and the states each side passes through.
#[test]
fn three_way_handshake_rfc9293_3_5() {
    let mut rig = Rig::new(1);
    let l = rig.listen(8);
    assert_eq!(rig.s().tcp_state(l), Ok(State::Listen));
    let c = rig.connect();
    assert_eq!(rig.c().tcp_state(c), Ok(State::SynSent));
    rig.run_for(secs(1));

    let p = rig.pkts();
    assert_eq!(p.len(), 3, "exactly three segments: {p:#?}");
    let (syn, synack, ack) = (&p[0], &p[1], &p[2]);
    assert!(syn.from == FROM_CLIENT && syn.flags() == TcpFlags::SYN);
    assert!(synack.from == FROM_SERVER && synack.flags() == TcpFlags::SYN | TcpFlags::ACK);
    assert!(ack.from == FROM_CLIENT && ack.flags() == TcpFlags::ACK && ack.payload.is_empty());
    // <SEQ=100><CTL=SYN> / <SEQ=300><ACK=101><CTL=SYN,ACK> / <SEQ=101><ACK=301><CTL=ACK>
    assert_eq!(synack.ack(), syn.seq().wrapping_add(1));
    assert_eq!(ack.seq(), syn.seq().wrapping_add(1));
    assert_eq!(ack.ack(), synack.seq().wrapping_add(1));
    assert_eq!(syn.dst(), server_addr());
    assert_eq!(synack.src(), server_addr());
    assert_eq!(synack.dst(), syn.src());
    // Both SYNs carry the options a modern peer expects.
    for s in [syn, synack] {
        assert_eq!(s.tcp.options.mss, Some(1460));
        assert!(s.tcp.options.window_scale.is_some());
        assert!(s.tcp.options.sack_permitted);
        assert!(s.tcp.options.timestamps.is_some());
    }

    // States: the client went SYN-SENT -> ESTABLISHED, the server's new
    // connection SYN-RECEIVED -> ESTABLISHED, and it waits in accept.
    let client_local = syn.src();
    let ce = rig.client_events();
    assert_eq!(state_path(&ce, client_local), [State::Closed, State::SynSent, State::Established]);
    let se = rig.server_events();
    assert_eq!(state_path(&se, server_addr()), [State::Listen, State::SynReceived, State::Established]);
    // Segments cross the middlebox halfway: the client is established
    // when the SYN-ACK lands, 15 ms after its SYN passed the middlebox,
    // the server 5 ms after the ACK passed it.
    assert_eq!(entered(&ce, client_local, State::Established), Some(syn.at + ms(15)));
    assert_eq!(entered(&se, server_addr(), State::Established), Some(ack.at + ms(5)));

    assert_eq!(rig.c().tcp_state(c), Ok(State::Established));
    assert!(rig.s().can_recv(l));
    let (s, remote) = rig.s().accept(l).unwrap();
    assert_eq!(remote, client_local);
    assert_eq!(rig.s().tcp_state(s), Ok(State::Established));
    assert_eq!(rig.s().local_addr(s), Ok(server_addr()));
    assert_eq!(rig.c().peer_addr(c), Ok(server_addr()));
    assert_eq!(rig.s().accept(l), Err(Error::WouldBlock));
    assert_eq!(rig.s().tcp_state(l), Ok(State::Listen));
}

/// RFC 9293 §3.5, figure 8: both ends send a SYN at the same instant; each
/// answers the other's SYN with a SYN-ACK from its own ISS and is
/// ESTABLISHED when the other's SYN-ACK arrives. No other segment is needed.
#[test]
fn simultaneous_open_rfc9293_3_5() {
    let mut rig = Rig::new(2);
    let a_addr = SocketAddrV4::new(client_ip(), 40000);
    let b_addr = SocketAddrV4::new(server_ip(), 40001);
    let t0 = rig.now();
    let a = rig.c().tcp_socket().unwrap();
    rig.c().bind(a, a_addr).unwrap();
    rig.c().connect(a, b_addr).unwrap();
    let b = rig.s().tcp_socket().unwrap();
    rig.s().bind(b, b_addr).unwrap();
    rig.s().connect(b, a_addr).unwrap();
    rig.run_for(ms(500));

    let p = rig.pkts();
    let from_a: Vec<&Pkt> = p.iter().filter(|p| p.from == FROM_CLIENT).collect();
    let from_b: Vec<&Pkt> = p.iter().filter(|p| p.from == FROM_SERVER).collect();
    // Each side: <SEQ=ISS><CTL=SYN> then <SEQ=ISS><ACK=peer ISS+1><CTL=SYN,ACK>.
    for (mine, theirs) in [(&from_a, &from_b), (&from_b, &from_a)] {
        assert_eq!(mine.len(), 2, "{p:#?}");
        assert!(mine[0].is_syn() && mine[0].at == t0 + ms(5));
        assert!(mine[1].is_synack());
        assert_eq!(mine[1].seq(), mine[0].seq());
        assert_eq!(mine[1].ack(), theirs[0].seq().wrapping_add(1));
    }
    let ae = rig.client_events();
    let be = rig.server_events();
    let path = [State::Closed, State::SynSent, State::SynReceived, State::Established];
    assert_eq!(state_path(&ae, a_addr), path);
    assert_eq!(state_path(&be, b_addr), path);
    // ESTABLISHED when the peer's SYN-ACK lands: one round trip after the SYNs.
    assert_eq!(entered(&ae, a_addr, State::Established), Some(t0 + ms(20)));
    assert_eq!(entered(&be, b_addr, State::Established), Some(t0 + ms(20)));

    // The connection works both ways.
    rig.c().send(a, b"from a").unwrap();
    rig.s().send(b, b"from b").unwrap();
    rig.run_for(ms(100));
    let mut got = Vec::new();
    rig.read_some(rig.server, b, &mut got).unwrap();
    assert_eq!(got, b"from a");
    got.clear();
    rig.read_some(rig.client, a, &mut got).unwrap();
    assert_eq!(got, b"from b");
}

/// Drops the segments the rule picks (by index among the logged segments
/// satisfying `pred`); the others pass.
fn drop_nth(rig: &mut Rig, nth: usize, pred: impl Fn(&Pkt) -> bool + 'static) {
    let mut seen = 0;
    rig.set_rule(move |p| {
        if pred(p) {
            seen += 1;
            if seen == nth + 1 {
                return Verdict::Drop;
            }
        }
        Verdict::Pass
    });
}

/// RFC 9293 §3.8.1 and RFC 6298 §5: a lost SYN is sent again, same ISS,
/// after the initial RTO of 1 s (RFC 6298 §2.1), and the handshake completes.
#[test]
fn lost_syn_is_retransmitted_after_initial_rto_rfc6298_2_1() {
    let mut rig = Rig::new(3);
    drop_nth(&mut rig, 0, |p| p.is_syn());
    let l = rig.listen(8);
    let c = rig.connect();
    rig.run_for(secs(3));
    assert_eq!(rig.c().tcp_state(c), Ok(State::Established));
    let (s, _) = rig.s().accept(l).unwrap();
    assert_eq!(rig.s().tcp_state(s), Ok(State::Established));

    let syns: Vec<Pkt> = rig.pkts().into_iter().filter(|p| p.is_syn()).collect();
    assert_eq!(syns.len(), 2);
    assert!(syns[0].dropped && !syns[1].dropped);
    assert_eq!(syns[1].seq(), syns[0].seq());
    assert_eq!(syns[1].at - syns[0].at, secs(1));
    assert_eq!(rig.pkts().iter().filter(|p| p.is_synack()).count(), 1);
    exchange_and_check(&mut rig, c, s);
}

/// A lost SYN-ACK: the client's SYN retransmission is answered with the
/// same SYN-ACK (RFC 9293 §3.10.7.4: a duplicate SYN in SYN-RECEIVED), the
/// server's own retransmission timer would also resend it, and exactly one
/// connection results.
#[test]
fn lost_synack_is_recovered_rfc9293_3_5() {
    let mut rig = Rig::new(4);
    drop_nth(&mut rig, 0, |p| p.is_synack());
    let l = rig.listen(8);
    let c = rig.connect();
    rig.run_for(secs(3));
    assert_eq!(rig.c().tcp_state(c), Ok(State::Established));
    let (s, _) = rig.s().accept(l).unwrap();
    assert_eq!(rig.s().accept(l), Err(Error::WouldBlock), "a single connection");
    assert_eq!(rig.s().tcp_connections().count(), 1);

    let p = rig.pkts();
    let synacks: Vec<&Pkt> = p.iter().filter(|p| p.is_synack()).collect();
    assert!(synacks[0].dropped);
    assert!(synacks.len() >= 2 && !synacks[1].dropped);
    // Every SYN-ACK is the same: ISS and the ACK of the one SYN.
    assert!(synacks.iter().all(|s| s.seq() == synacks[0].seq() && s.ack() == synacks[0].ack()));
    let syns: Vec<&Pkt> = p.iter().filter(|p| p.is_syn()).collect();
    assert_eq!(syns.len(), 2);
    // Established one RTT after the retransmitted SYN (1 s after the first).
    let ce = rig.client_events();
    assert_eq!(entered(&ce, syns[0].src(), State::Established), Some(syns[1].at + ms(15)));
    exchange_and_check(&mut rig, c, s);
}

/// A lost third ACK with an idle client: the server stays in SYN-RECEIVED
/// until its SYN-ACK retransmission (RTO 1 s) draws a new ACK from the
/// client, which answers the old SYN-ACK because it is not acceptable
/// (RFC 9293 §3.10.7.4, first check), then it is ESTABLISHED.
#[test]
fn lost_third_ack_idle_client_rfc9293_3_10_7_4() {
    let mut rig = Rig::new(5);
    drop_nth(&mut rig, 0, |p| p.from == FROM_CLIENT && p.is_pure_ack());
    let l = rig.listen(8);
    let c = rig.connect();
    rig.run_for(ms(900));
    assert_eq!(rig.c().tcp_state(c), Ok(State::Established));
    assert_eq!(rig.s().accept(l), Err(Error::WouldBlock));
    let half_open: Vec<State> = rig.s().tcp_connections().map(|(_, c)| c.state()).collect();
    assert_eq!(half_open, [State::SynReceived]);
    rig.run_for(secs(2));
    let (s, _) = rig.s().accept(l).unwrap();

    let p = rig.pkts();
    let synacks: Vec<&Pkt> = p.iter().filter(|p| p.is_synack()).collect();
    assert_eq!(synacks.len(), 2);
    assert_eq!(synacks[1].at - synacks[0].at, secs(1));
    let acks: Vec<&Pkt> = p.iter().filter(|p| p.from == FROM_CLIENT && p.is_pure_ack()).collect();
    assert_eq!(acks.len(), 2);
    assert!(acks[0].dropped && !acks[1].dropped);
    assert_eq!((acks[1].seq(), acks[1].ack()), (acks[0].seq(), acks[0].ack()));
    let se = rig.server_events();
    assert_eq!(entered(&se, server_addr(), State::Established), Some(acks[1].at + ms(5)));
    exchange_and_check(&mut rig, c, s);
}

/// A lost third ACK when the client sends at once: its first data segment
/// carries the same acknowledgement and completes the handshake (RFC 9293
/// §3.10.7.4, fifth check in SYN-RECEIVED), and the data is delivered.
#[test]
fn lost_third_ack_data_completes_handshake_rfc9293_3_10_7_4() {
    let mut rig = Rig::new(6);
    drop_nth(&mut rig, 0, |p| p.from == FROM_CLIENT && p.is_pure_ack());
    let l = rig.listen(8);
    let c = rig.connect();
    rig.run_until_true(at_ms(500), "client established", |r| r.c().tcp_state(c) == Ok(State::Established));
    rig.c().send(c, b"hello").unwrap();
    rig.run_for(ms(100));
    let (s, _) = rig.s().accept(l).unwrap();
    let mut got = Vec::new();
    rig.read_some(rig.server, s, &mut got).unwrap();
    assert_eq!(got, b"hello");
    let p = rig.pkts();
    assert_eq!(p.iter().filter(|p| p.is_synack()).count(), 1, "no SYN-ACK retransmission needed: {p:#?}");
    exchange_and_check(&mut rig, c, s);
}

/// Sends a little both ways on an established pair and checks it arrives.
fn exchange_and_check(rig: &mut Rig, c: ustack_core::SocketHandle, s: ustack_core::SocketHandle) {
    let up = pattern(3000, 1);
    let down = pattern(5000, 2);
    rig.send_all(rig.client, c, &up);
    rig.send_all(rig.server, s, &down);
    rig.c().shutdown(c, ustack_core::Shutdown::Write).unwrap();
    rig.s().shutdown(s, ustack_core::Shutdown::Write).unwrap();
    let limit = rig.now() + secs(30);
    let got_up = rig.read_to_eof(rig.server, s, limit);
    let got_down = rig.read_to_eof(rig.client, c, limit);
    assert!(got_up == up, "client to server data differs");
    assert!(got_down == down, "server to client data differs");
}

/// RFC 9293 §3.10.7.1: a SYN to a port with no listener is answered with
/// <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>; in SYN-SENT a RST whose ACK
/// acknowledges the SYN aborts the connect with ECONNREFUSED (§3.10.7.3).
#[test]
fn connect_to_closed_port_refused_rfc9293_3_10_7_1() {
    let mut rig = Rig::new(7);
    let c = rig.connect();
    rig.run_for(ms(200));
    let p = rig.pkts();
    assert_eq!(p.len(), 2, "{p:#?}");
    let (syn, rst) = (&p[0], &p[1]);
    assert!(syn.is_syn());
    assert_eq!(rst.flags(), TcpFlags::RST | TcpFlags::ACK);
    assert_eq!(rst.seq(), 0);
    assert_eq!(rst.ack(), syn.seq().wrapping_add(1));
    assert_eq!((rst.src(), rst.dst()), (syn.dst(), syn.src()));
    assert!(rst.payload.is_empty());
    assert_eq!(rig.c().tcp_state(c), Ok(State::Closed));
    assert_eq!(rig.s().stats().tcp.resets_out, 1);
    assert_eq!(rig.c().stats().tcp.attempt_fails, 1);
    // The error is reported once, then the socket reads as closed.
    let mut buf = [0u8; 16];
    assert_eq!(rig.c().recv(c, &mut buf), Err(Error::ConnectionRefused));
    assert_eq!(rig.c().recv(c, &mut buf), Ok(0));
    assert!(rig.c().send(c, b"x").is_err());
    // Nothing more is sent: no SYN retransmission.
    rig.run_for(secs(5));
    assert_eq!(rig.pkts().len(), 2);
}

/// The same through `send`, which a BSD program uses after a non-blocking
/// connect: the first call reports ECONNREFUSED.
#[test]
fn connect_refused_reported_by_send_rfc9293_3_10_7_3() {
    let mut rig = Rig::new(8);
    let c = rig.connect();
    rig.run_for(ms(200));
    assert_eq!(rig.c().send(c, b"x"), Err(Error::ConnectionRefused));
    assert_eq!(rig.c().send(c, b"x"), Err(Error::BrokenPipe));
}

/// RFC 6298 §5.5 and RFC 9293 §3.8.3: SYNs to a silent host are resent
/// with exponential backoff, 1, 2, 4 s apart, and after `syn_retries`
/// retransmissions the connect fails with ETIMEDOUT.
#[test]
fn syn_retries_back_off_then_etimedout_rfc6298_5_5() {
    let mut rig = RigConfig::new(9).client_tcp(|t| t.syn_retries = 3).build();
    rig.set_rule(|_| Verdict::Drop); // a black hole for TCP (ARP still works)
    let _l = rig.listen(8);
    let c = rig.connect();
    let t0 = rig.now();
    rig.run_for(secs(14));
    assert_eq!(rig.c().tcp_state(c), Ok(State::SynSent));
    let info = rig.c().tcp_info(c).unwrap();
    assert_eq!(info.backoff, 3);
    assert_eq!(info.rto, secs(8));
    rig.run_for(secs(2));
    assert_eq!(rig.c().tcp_state(c), Ok(State::Closed));

    let ce = rig.client_events();
    let syns: Vec<Seg> = sent(&ce).into_iter().filter(|s| s.is_syn()).collect();
    let times: Vec<_> = syns.iter().map(|s| s.at - t0).collect();
    assert_eq!(times, [secs(0), secs(1), secs(3), secs(7)]);
    assert!(syns.iter().all(|s| s.tcp.seq == syns[0].tcp.seq));
    assert!(!syns[0].rtx && syns[1..].iter().all(|s| s.rtx));
    // Failed at the expiry of the last timer: 7 + 8 s.
    let local = syns[0].local;
    assert_eq!(entered(&ce, local, State::Closed), Some(t0 + secs(15)));
    let mut buf = [0u8; 4];
    assert_eq!(rig.c().recv(c, &mut buf), Err(Error::TimedOut));
    assert_eq!(rig.c().stats().tcp.connections_timed_out, 1);
}

/// `TcpConfig::rto_slop` (FreeBSD's `rexmit_slop`) is added to every RTO
/// after the initial one: SYNs to a silent host go at 0, 1, 3.2 and 7.4 s
/// (1 s, then 2 + 0.2 s, then 4 + 0.2 s apart), as on FreeBSD.
#[test]
fn rto_slop_is_added_to_backed_off_and_sampled_timeouts() {
    let slop = ms(200);
    let mut rig = RigConfig::new(9)
        .client_tcp(move |t| {
            t.syn_retries = 3;
            t.rto_slop = slop;
        })
        .build();
    rig.set_rule(|_| Verdict::Drop);
    let _l = rig.listen(8);
    let c = rig.connect();
    let t0 = rig.now();
    rig.run_for(secs(9));
    let ce = rig.client_events();
    let syns: Vec<Seg> = sent(&ce).into_iter().filter(|s| s.is_syn()).collect();
    let times: Vec<_> = syns.iter().map(|s| s.at - t0).collect();
    assert_eq!(times, [secs(0), secs(1), ms(3_200), ms(7_400)]);
    assert_eq!(rig.c().tcp_info(c).unwrap().rto, ms(8_200));
}

/// `TcpConfig::syn_options_fallback` (FreeBSD's `rexmit_drop_options`):
/// from the third retransmission on, SYNs carry only the MSS, for a path
/// that drops SYNs with options; the connection made by such a SYN uses no
/// window scaling, timestamps or SACK although the SYN-ACK offers them
/// (RFC 7323 §1.3 and RFC 2018 §2: only what both SYNs carried).
#[test]
fn syn_options_fallback_drops_options_from_the_third_retransmission_rfc7323_1_3() {
    let mut rig = RigConfig::new(9).client_tcp(|t| t.syn_options_fallback = Some(3)).build();
    // A path that drops SYNs carrying timestamps.
    rig.set_rule(|p| if p.is_syn() && p.tcp.options.timestamps.is_some() { Verdict::Drop } else { Verdict::Pass });
    let (c, _l, s) = rig.establish();
    let syns: Vec<Pkt> = rig.pkts().into_iter().filter(|p| p.is_syn() && !p.is(TcpFlags::ACK)).collect();
    assert_eq!(syns.len(), 4, "{syns:#?}");
    for syn in &syns[..3] {
        let o = &syn.tcp.options;
        assert!(o.window_scale.is_some() && o.timestamps.is_some() && o.sack_permitted);
    }
    let o = &syns[3].tcp.options;
    assert!(o.mss.is_some() && o.window_scale.is_none() && o.timestamps.is_none() && !o.sack_permitted);
    assert_eq!(rig.c().tcp_connection(c).unwrap().negotiated_options(), (false, false, false));
    assert_eq!(rig.s().tcp_connection(s).unwrap().negotiated_options(), (false, false, false));
    // And the connection works.
    assert_eq!(rig.c().send(c, b"hello"), Ok(5));
    rig.run_for(ms(100));
    let mut buf = [0u8; 8];
    assert_eq!(rig.s().recv(s, &mut buf), Ok(5));
}

/// RFC 9293 §3.8.3 MUST-23: "R2 for a SYN segment MUST be set large enough
/// to provide retransmission of the segment for at least 3 minutes." With
/// the default settings a connect to a silent host is still trying after
/// three minutes (SYNs at 0, 1, 3, 7, 15, 31, 63 and 127 s) and fails with
/// ETIMEDOUT when the last timer runs out, at 127 + 120 s (the RTO cap).
#[test]
fn default_syn_retries_keep_trying_for_three_minutes_rfc9293_must_23() {
    let mut rig = Rig::new(10);
    rig.set_rule(|_| Verdict::Drop);
    let _l = rig.listen(8);
    let c = rig.connect();
    let t0 = rig.now();
    rig.run_for(secs(180));
    assert_eq!(rig.c().tcp_state(c), Ok(State::SynSent), "still trying after 3 minutes");
    rig.run_for(secs(70));
    assert_eq!(rig.c().tcp_state(c), Ok(State::Closed));
    let ce = rig.client_events();
    let syns: Vec<Seg> = sent(&ce).into_iter().filter(|s| s.is_syn()).collect();
    let times: Vec<_> = syns.iter().map(|s| (s.at - t0).as_secs()).collect();
    assert_eq!(times, [0, 1, 3, 7, 15, 31, 63, 127]);
    assert_eq!(entered(&ce, syns[0].local, State::Closed), Some(t0 + secs(127 + 120)));
    let mut buf = [0u8; 4];
    assert_eq!(rig.c().recv(c, &mut buf), Err(Error::TimedOut));
}

/// A listener with a real backlog: 100 sockets on one client host connect
/// to one port at the same instant; each gets its own connection on the
/// server (its own 4-tuple) and its own bytes echoed back intact.
#[test]
fn listener_backlog_serves_100_clients_rfc9293_3_10_7_2() {
    use ustack_core::sim::apps::StreamApp;
    let mut rig = Rig::new(10);
    rig.net.host_mut(rig.server).add_app(EchoServer::new(server_addr(), 128));
    rig.net.host_mut(rig.client).add_app(StreamApp::client(server_addr(), 20_000, 1000).with_connections(100));
    let (client, server) = (rig.client, rig.server);
    rig.run_until_true(Instant::from_secs(120), "100 echoes", |r| {
        r.net.host(client).app::<StreamApp>(0).unwrap().is_done()
    });
    let app = rig.net.host(client).app::<StreamApp>(0).unwrap();
    let reports = app.reports();
    assert_eq!(reports.len(), 100);
    let mut locals: Vec<SocketAddrV4> = Vec::new();
    for (i, r) in reports.iter().enumerate() {
        assert!(r.error.is_none(), "connection {i}: {:?}", r.error);
        assert!(r.eof);
        assert_eq!(r.remote, Some(server_addr()));
        assert_eq!(r.sent.len, 20_000);
        // Its own bytes, not another connection's: the pattern seeds differ.
        assert_eq!(r.received, r.sent, "connection {i} got back other bytes");
        locals.push(r.local.unwrap());
    }
    let hashes: std::collections::HashSet<u64> = reports.iter().map(|r| r.sent.hash).collect();
    assert_eq!(hashes.len(), 100, "every connection sent its own pattern");
    locals.sort();
    locals.dedup();
    assert_eq!(locals.len(), 100, "100 distinct client ports");

    let echo = rig.net.host(server).app::<EchoServer>(0).unwrap();
    assert_eq!(echo.accepted.len(), 100);
    assert_eq!(echo.finished, 100);
    assert!(echo.errors.is_empty(), "{:?}", echo.errors);
    let mut remotes: Vec<SocketAddrV4> = echo.accepted.iter().map(|a| a.1).collect();
    remotes.sort();
    assert_eq!(remotes, locals, "the server accepted exactly the client sockets");
    // No handshake needed a retransmission: the backlog held them all.
    let se = rig.server_events();
    assert_eq!(sent(&se).iter().filter(|s| s.is_synack() && s.rtx).count(), 0);
    assert_eq!(rig.s().stats().drops(ustack_core::stats::DropReason::TcpListenOverflow), 0);
}

/// A full accept queue: with a backlog of 2 and nobody accepting, a third
/// client's SYNs are not answered (no SYN-ACK, no RST: it keeps
/// retrying); once the application accepts one connection, the next SYN
/// retransmission is answered and the third connection completes.
#[test]
fn accept_queue_full_syn_unanswered_until_accept_rfc9293_3_10_7_2() {
    let mut rig = Rig::new(11);
    let l = rig.listen(2);
    let c1 = rig.connect();
    let c2 = rig.connect();
    rig.run_for(ms(200));
    assert_eq!(rig.c().tcp_state(c1), Ok(State::Established));
    assert_eq!(rig.c().tcp_state(c2), Ok(State::Established));
    let c3 = rig.connect();
    let t3 = rig.now();
    rig.run_for(ms(3500)); // SYNs at +0, +1 s, +3 s
    assert_eq!(rig.c().tcp_state(c3), Ok(State::SynSent));
    let port3 = rig.c().local_addr(c3).unwrap();
    let to3: Vec<Pkt> = rig.pkts().into_iter().filter(|p| p.dst() == port3).collect();
    assert!(to3.is_empty(), "nothing may answer the third client: {to3:#?}");
    let syns3 = rig.pkts().into_iter().filter(|p| p.src() == port3 && p.is_syn()).count();
    assert_eq!(syns3, 3);
    assert!(rig.s().stats().drops(ustack_core::stats::DropReason::TcpListenOverflow) >= 3);

    let (a1, _) = rig.s().accept(l).unwrap();
    rig.run_for(secs(5)); // the SYN at +7 s finds room
    assert_eq!(rig.c().tcp_state(c3), Ok(State::Established));
    let established = entered(&rig.client_events(), port3, State::Established).unwrap();
    assert_eq!(established, t3 + secs(7) + ms(20));
    let (a2, _) = rig.s().accept(l).unwrap();
    let (a3, r3) = rig.s().accept(l).unwrap();
    assert_eq!(r3, port3);
    assert_eq!(rig.s().accept(l), Err(Error::WouldBlock));
    for (c, s) in [(c1, a1), (c2, a2), (c3, a3)] {
        exchange_and_check(&mut rig, c, s);
    }
}

/// RFC 9293 §3.7.1 (and RFC 6691): each side's SYN carries its MSS (here
/// the server's TCP_MAXSEG of 500), and the client then never sends a
/// segment whose data and options exceed it.
#[test]
fn mss_option_sent_and_honoured_rfc9293_3_7_1() {
    let mut rig = RigConfig::new(12).server_tcp(|t| t.mss = Some(500)).build();
    let (c, _l, s) = rig.establish();
    let synack = rig.pkts().into_iter().find(|p| p.is_synack()).unwrap();
    assert_eq!(synack.tcp.options.mss, Some(500));
    let syn = rig.pkts().into_iter().find(|p| p.is_syn()).unwrap();
    assert_eq!(syn.tcp.options.mss, Some(1460));
    exchange_and_check(&mut rig, c, s);
    let p = rig.pkts();
    let client_data: Vec<&Pkt> = p.iter().filter(|p| p.from == FROM_CLIENT && !p.payload.is_empty()).collect();
    assert!(client_data.len() >= 6);
    for d in &client_data {
        assert!(d.len() + d.options_len() <= 500, "client segment too big: {d}");
    }
    // Full-sized segments are used: 500 less the 12 bytes of timestamps.
    assert_eq!(client_data.iter().map(|d| d.len()).max(), Some(488));
    // The server may send up to the client's MSS.
    let server_max = p.iter().filter(|p| p.from == FROM_SERVER).map(|p| p.len()).max().unwrap();
    assert!(server_max <= 500 - 12, "the server also keeps to its own MSS");
}

/// A server behind a small MTU (576) advertises MSS 536; the link drops
/// anything larger, so the transfer only works if the client honours it.
#[test]
fn small_mtu_server_mss_honoured_rfc9293_3_7_1() {
    let mut cfg = RigConfig::new(13);
    cfg.server = cfg.server.with_mtu(576);
    cfg.link = cfg.link.mtu(576);
    let mut rig = cfg.build();
    let (c, _l, s) = rig.establish();
    let synack = rig.pkts().into_iter().find(|p| p.is_synack()).unwrap();
    assert_eq!(synack.tcp.options.mss, Some(536));
    exchange_and_check(&mut rig, c, s);
    assert!(rig.pkts().iter().all(|p| p.ip.total_len() <= 576));
    let lost_to_mtu = rig.net.link_stats(rig.client_link, ustack_core::sim::Direction::AtoB).mtu_drops;
    assert_eq!(lost_to_mtu, 0);
}

/// RFC 9293 §3.10.7.4, first check, in SYN-RECEIVED: a segment that is not
/// acceptable is answered with <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> and
/// dropped; the half-open connection stays and completes later.
#[test]
fn unacceptable_segment_in_syn_received_is_acked_rfc9293_3_10_7_4() {
    let mut rig = Rig::new(14);
    // Lose the client's ACKs for a while: the server stays in SYN-RECEIVED.
    let mut until = at_ms(300);
    rig.set_rule(move |p| {
        if p.from == FROM_CLIENT && p.is_pure_ack() && p.at < until {
            until = at_ms(300);
            Verdict::Drop
        } else {
            Verdict::Pass
        }
    });
    let l = rig.listen(8);
    let c = rig.connect();
    rig.run_for(ms(100));
    let syn = rig.pkts().into_iter().find(|p| p.is_syn()).unwrap();
    let synack = rig.pkts().into_iter().find(|p| p.is_synack()).unwrap();
    let states: Vec<State> = rig.s().tcp_connections().map(|(_, c)| c.state()).collect();
    assert_eq!(states, [State::SynReceived]);

    // An ACK-bearing segment far beyond the receive window.
    let bogus = forged_header(&syn, TcpFlags::ACK, syn.seq().wrapping_add(50_000_000), synack.seq().wrapping_add(1));
    rig.inject(TO_SERVER, forge(&syn, &bogus, b"junk"));
    let before = rig.pkts().len();
    rig.run_for(ms(20));
    let answers: Vec<Pkt> = rig.pkts()[before..].iter().filter(|p| p.from == FROM_SERVER).cloned().collect();
    assert_eq!(answers.len(), 1, "{answers:#?}");
    assert_eq!(answers[0].flags(), TcpFlags::ACK);
    assert_eq!(answers[0].seq(), synack.seq().wrapping_add(1));
    assert_eq!(answers[0].ack(), syn.seq().wrapping_add(1));
    assert_eq!(rig.s().stats().drops(ustack_core::stats::DropReason::TcpOutOfWindow), 1);
    let states: Vec<State> = rig.s().tcp_connections().map(|(_, c)| c.state()).collect();
    assert_eq!(states, [State::SynReceived]);

    // The SYN-ACK retransmission draws a fresh ACK that gets through.
    rig.run_for(secs(2));
    let (s, _) = rig.s().accept(l).unwrap();
    exchange_and_check(&mut rig, c, s);
}

/// RFC 6298 §5.7: when the SYN had to be retransmitted and no RTT sample
/// was taken (no timestamps; Karn's rule forbids sampling the SYN), the RTO
/// for the data phase is 3 s; the first sample then sets it (§2.2).
#[test]
fn rto_is_3s_after_syn_timeout_without_sample_rfc6298_5_7() {
    let mut rig = RigConfig::new(15).tcp(|t| t.timestamps = false).build();
    drop_nth(&mut rig, 0, |p| p.is_syn());
    let (c, _l, s) = rig.establish();
    let info = rig.c().tcp_info(c).unwrap();
    assert_eq!(info.rtt, None, "no sample from a retransmitted SYN");
    assert_eq!(info.rto, secs(3));
    // The server's SYN-ACK went once: it has a sample and a normal RTO.
    let sinfo = rig.s().tcp_info(s).unwrap();
    assert_eq!(sinfo.rtt, Some(ms(20)));
    assert_eq!(sinfo.rto, ms(200));
    rig.c().send(c, b"sample").unwrap();
    rig.run_for(ms(100));
    let info = rig.c().tcp_info(c).unwrap();
    assert!(info.rtt.is_some());
    assert!(info.rto < secs(1), "recomputed from the sample: {:?}", info.rto);
}

/// A burst larger than the backlog: 60 clients at once against a backlog
/// of 4 and an application that only starts accepting after 3 s. SYNs
/// that find the accept queue full go unanswered, handshakes that
/// complete while it is full have their ACK (and any data) dropped so the
/// SYN-ACK is retransmitted; once the application accepts, every client is
/// served, each with its own bytes, and none is reset. (The links jitter
/// by up to 2 ms so that not all 60 retransmissions land in one instant:
/// only a backlog's worth of them can be admitted per instant.)
#[test]
fn backlog_overflow_recovers_every_client_rfc9293_3_10_7_2() {
    use ustack_core::sim::apps::StreamApp;
    use ustack_core::stats::DropReason;
    for seed in 16..21 {
        let mut rig = RigConfig::new(seed).link(LinkConfig::default().delay(ms(5)).jitter(ms(2))).build();
        let mut echo = EchoServer::new(server_addr(), 4);
        echo.accept_from = Instant::from_secs(3);
        rig.net.host_mut(rig.server).add_app(echo);
        rig.net.host_mut(rig.client).add_app(StreamApp::client(server_addr(), 5_000, 77).with_connections(60));
        let (client, server) = (rig.client, rig.server);
        rig.run_until_true(Instant::from_secs(300), "60 echoes", |r| {
            r.net.host(client).app::<StreamApp>(0).unwrap().is_done()
        });
        let reports = rig.net.host(client).app::<StreamApp>(0).unwrap().reports();
        assert_eq!(reports.len(), 60);
        for (i, r) in reports.iter().enumerate() {
            assert_eq!(r.error, None, "connection {i}");
            assert!(r.eof && r.sent.len == 5_000 && r.received == r.sent, "connection {i}");
        }
        let echo = rig.net.host(server).app::<EchoServer>(0).unwrap();
        assert_eq!((echo.accepted.len(), echo.finished), (60, 60));
        assert!(echo.errors.is_empty());
        assert!(rig.s().stats().drops(DropReason::TcpListenOverflow) > 0, "the queue did overflow");
        assert!(rig.pkts().iter().all(|p| !p.is_rst()), "nobody was reset");
        // Nothing was served before the application started accepting.
        let first_data = rig.pkts_from(FROM_SERVER).into_iter().find(|p| !p.payload.is_empty()).unwrap();
        assert!(first_data.at >= Instant::from_secs(3));
    }
}

/// Closing a listener resets the connections it had completed but the
/// application never accepted (Linux does the same; RFC 9293 §3.10.4
/// leaves them to the implementation): each of those clients reads
/// ECONNRESET.
#[test]
fn closing_listener_resets_unaccepted_connections_rfc9293_3_10_4() {
    let mut rig = Rig::new(17);
    let l = rig.listen(8);
    let c1 = rig.connect();
    let c2 = rig.connect();
    rig.run_for(ms(100));
    assert_eq!(rig.c().tcp_state(c1), Ok(State::Established));
    assert_eq!(rig.s().tcp_connections().count(), 2);
    rig.s().close(l).unwrap();
    rig.run_for(ms(100));
    let rsts: Vec<Pkt> = rig.pkts_from(FROM_SERVER).into_iter().filter(|p| p.is_rst()).collect();
    assert_eq!(rsts.len(), 2);
    let mut buf = [0u8; 4];
    for c in [c1, c2] {
        assert_eq!(rig.c().tcp_state(c), Ok(State::Closed));
        assert_eq!(rig.c().recv(c, &mut buf), Err(Error::ConnectionReset));
    }
    assert_eq!(rig.s().tcp_connections().count(), 0);
    assert_eq!(rig.s().socket_count(), 0);
}

/// Simultaneous open where one SYN is lost: the side whose SYN got through
/// receives a SYN-ACK in SYN-SENT (as in an ordinary handshake), the other
/// goes through SYN-RECEIVED, and both end ESTABLISHED.
#[test]
fn simultaneous_open_with_lost_syn_rfc9293_3_5() {
    let mut rig = Rig::new(18);
    drop_nth(&mut rig, 0, |p| p.from == FROM_CLIENT && p.is_syn());
    let a_addr = SocketAddrV4::new(client_ip(), 40000);
    let b_addr = SocketAddrV4::new(server_ip(), 40001);
    let a = rig.c().tcp_socket().unwrap();
    rig.c().bind(a, a_addr).unwrap();
    rig.c().connect(a, b_addr).unwrap();
    let b = rig.s().tcp_socket().unwrap();
    rig.s().bind(b, b_addr).unwrap();
    rig.s().connect(b, a_addr).unwrap();
    rig.run_for(secs(3));
    assert_eq!(rig.c().tcp_state(a), Ok(State::Established));
    assert_eq!(rig.s().tcp_state(b), Ok(State::Established));
    assert_eq!(
        state_path(&rig.client_events(), a_addr),
        [State::Closed, State::SynSent, State::SynReceived, State::Established]
    );
    assert_eq!(state_path(&rig.server_events(), b_addr), [State::Closed, State::SynSent, State::Established]);
    exchange_and_check(&mut rig, a, b);
}

/// Options are used only when both SYNs carry them (RFC 7323 §2.2 window
/// scaling, §3.2 timestamps; RFC 2018 §2 SACK): against a client that
/// offers none of them, the server's SYN-ACK offers none either (only the
/// MSS), no later segment carries timestamps or SACK blocks, windows are
/// unscaled and never exceed 65535, and a transfer through a lossy link
/// still works.
#[test]
fn options_only_when_both_offer_them_rfc7323_2_2_3_2() {
    let link = LinkConfig::default().delay(ms(5)).loss(0.02);
    let mut rig = RigConfig::new(19)
        .link(link)
        .client_tcp(|t| {
            t.window_scaling = false;
            t.timestamps = false;
            t.sack = false;
        })
        .build();
    let (c, _l, s) = rig.establish();
    let syn = rig.pkts().into_iter().find(|p| p.is_syn() && !p.dropped).unwrap();
    let synack = rig.pkts().into_iter().find(|p| p.is_synack() && !p.dropped).unwrap();
    for p in [&syn, &synack] {
        let o = p.tcp.options;
        assert_eq!((o.window_scale, o.sack_permitted, o.timestamps), (None, false, None), "{p}");
        assert_eq!(o.mss, Some(1460));
    }
    let down = pattern(300_000, 13);
    rig.send_all(rig.server, s, &down);
    rig.s().shutdown(s, ustack_core::Shutdown::Write).unwrap();
    let got = rig.read_to_eof(rig.client, c, rig.now() + secs(120));
    assert!(got == down);
    for p in rig.pkts() {
        assert!(p.tcp.options.timestamps.is_none() && p.tcp.options.sack_blocks.is_empty(), "{p}");
    }
    // Data segments use the whole MSS: no option bytes to leave room for.
    assert_eq!(rig.pkts_from(FROM_SERVER).iter().map(|p| p.len()).max(), Some(1460));
    // The client's buffer is 256 KiB; unscaled, the window it offers and
    // the server uses is the field's largest, 65535.
    assert!(rig.pkts_from(FROM_CLIENT).iter().any(|p| p.tcp.window == 65535));
    assert_eq!(rig.s().tcp_info(s).unwrap().snd_wnd, 65535);
}

/// ICMP errors during a connect (RFC 1122 §4.2.3.9, RFC 5927): a port
/// unreachable quoting our SYN is a hard error and fails the connect at
/// once with ECONNREFUSED; a host unreachable is a soft error: the SYN goes
/// on being retransmitted and, when the attempt times out, the error
/// reported is EHOSTUNREACH rather than ETIMEDOUT. An ICMP error quoting a
/// sequence number we never sent is ignored (RFC 5927 §4.1).
#[test]
fn icmp_errors_during_connect_rfc1122_4_2_3_9() {
    use ustack_core::wire::DstUnreachable;
    // Hard error.
    let mut rig = Rig::new(20);
    rig.set_rule(|p| if p.is_syn() { Verdict::Drop } else { Verdict::Pass });
    let c = rig.connect();
    rig.run_for(ms(50));
    let syn = rig.pkts().into_iter().find(|p| p.is_syn()).unwrap();
    // First a forgery quoting a wrong sequence number: ignored.
    let mut wrong = syn.clone();
    let bogus_seq = syn.seq().wrapping_add(1_000_000);
    wrong.frame[34 + 4..34 + 8].copy_from_slice(&bogus_seq.to_be_bytes());
    rig.inject(TO_CLIENT, icmp_unreachable_about(&wrong, DstUnreachable::PortUnreachable));
    rig.run_for(ms(50));
    assert_eq!(rig.c().tcp_state(c), Ok(State::SynSent));
    assert_eq!(rig.c().stats().tcp.icmp_errors_ignored, 1, "the forgery is counted as ignored");
    rig.inject(TO_CLIENT, icmp_unreachable_about(&syn, DstUnreachable::PortUnreachable));
    rig.run_for(ms(50));
    assert_eq!(rig.c().tcp_state(c), Ok(State::Closed));
    let mut buf = [0u8; 4];
    assert_eq!(rig.c().recv(c, &mut buf), Err(Error::ConnectionRefused));
    assert_eq!(rig.c().stats().tcp.icmp_errors_ignored, 1, "the genuine error is not counted as ignored");

    // Soft error.
    let mut rig = RigConfig::new(21).client_tcp(|t| t.syn_retries = 2).build();
    rig.set_rule(|p| if p.is_syn() { Verdict::Drop } else { Verdict::Pass });
    let c = rig.connect();
    rig.run_for(ms(50));
    let syn = rig.pkts().into_iter().find(|p| p.is_syn()).unwrap();
    rig.inject(TO_CLIENT, icmp_unreachable_about(&syn, DstUnreachable::HostUnreachable));
    rig.run_for(secs(2));
    assert_eq!(rig.c().tcp_state(c), Ok(State::SynSent), "a soft error does not end the attempt");
    rig.run_for(secs(10)); // SYNs at 0, 1, 3; gives up at 7 s
    assert_eq!(rig.c().tcp_state(c), Ok(State::Closed));
    assert_eq!(rig.c().recv(c, &mut buf), Err(Error::HostUnreachable));
    assert_eq!(rig.pkts().iter().filter(|p| p.is_syn()).count(), 3);
}

/// "Communication administratively prohibited" (ICMP codes 9, 10 and 13,
/// RFC 1812 §5.2.7.1) quoting our SYN ends the attempt like a port
/// unreachable: a filter that refused the SYN refuses its retransmissions.
/// The connect fails at once with ECONNREFUSED. In ESTABLISHED the same
/// error stays soft (RFC 5927 §5.2): the connection carries on.
#[test]
fn icmp_administratively_prohibited_fails_a_connect_rfc1812() {
    use ustack_core::wire::DstUnreachable;
    for (seed, reason) in [
        (30, DstUnreachable::NetProhibited),
        (31, DstUnreachable::HostProhibited),
        (32, DstUnreachable::CommProhibited),
    ] {
        let mut rig = Rig::new(seed);
        rig.set_rule(|p| if p.is_syn() { Verdict::Drop } else { Verdict::Pass });
        let c = rig.connect();
        rig.run_for(ms(50));
        let syn = rig.pkts().into_iter().find(|p| p.is_syn()).unwrap();
        rig.inject(TO_CLIENT, icmp_unreachable_about(&syn, reason));
        rig.run_for(ms(50));
        assert_eq!(rig.c().tcp_state(c), Ok(State::Closed), "{reason}");
        let mut buf = [0u8; 4];
        assert_eq!(rig.c().recv(c, &mut buf), Err(Error::ConnectionRefused), "{reason}");
        assert_eq!(rig.pkts().iter().filter(|p| p.is_syn()).count(), 1, "{reason}: no retransmission");
    }
    // Established: soft.
    let mut rig = Rig::new(33);
    let (c, _l, _s) = rig.establish();
    // The data is lost, so the error quotes a sequence number in flight.
    rig.set_rule(|p| if p.from == FROM_CLIENT && p.len() > 0 { Verdict::Drop } else { Verdict::Pass });
    rig.send_all(rig.client, c, b"hello");
    rig.run_for(ms(5));
    let data = rig.pkts_from(FROM_CLIENT).into_iter().rev().find(|p| p.len() > 0).unwrap();
    rig.inject(TO_CLIENT, icmp_unreachable_about(&data, DstUnreachable::CommProhibited));
    rig.run_for(ms(5));
    assert_eq!(rig.c().stats().tcp.icmp_errors_ignored, 0, "the error quotes data in flight");
    assert_eq!(rig.c().tcp_state(c), Ok(State::Established));
}

/// With `icmp_hard_errors` off (FreeBSD's `icmp_may_rst=0`), a port
/// unreachable quoting our SYN is only a soft error (RFC 5927 §5.2's
/// defence against forged hard errors, in SYN-SENT too): the connect goes
/// on, the SYN is retransmitted at the RTO and, once the path lets it
/// through, the handshake completes. The error is remembered as a soft one
/// meanwhile, for the application and for a timeout.
#[test]
fn icmp_hard_errors_off_a_port_unreachable_does_not_end_a_connect_rfc5927_5_2() {
    use ustack_core::wire::DstUnreachable;
    let mut rig = RigConfig::new(34).client_tcp(|t| t.icmp_hard_errors = false).build();
    let l = rig.listen(8);
    rig.set_rule(|p| if p.is_syn() && p.from == FROM_CLIENT { Verdict::Drop } else { Verdict::Pass });
    let c = rig.connect();
    rig.run_for(ms(50));
    let syn = rig.pkts().into_iter().find(|p| p.is_syn()).unwrap();
    rig.inject(TO_CLIENT, icmp_unreachable_about(&syn, DstUnreachable::PortUnreachable));
    rig.run_for(ms(50));
    assert_eq!(rig.c().tcp_state(c), Ok(State::SynSent), "a soft error does not end the attempt");
    assert_eq!(rig.c().stats().tcp.icmp_errors_ignored, 0, "the error quotes our SYN");
    assert_eq!(
        rig.c().tcp_connection(c).and_then(|k| k.soft_error()),
        Some(Error::ConnectionRefused),
        "it is kept as a soft error, which says the port refused"
    );
    // The path clears: the retransmitted SYN (1 s) completes the handshake.
    rig.set_rule(|_| Verdict::Pass);
    rig.run_for(secs(2));
    assert_eq!(rig.c().tcp_state(c), Ok(State::Established));
    assert!(rig.s().accept(l).is_ok());
    assert_eq!(rig.pkts().iter().filter(|p| p.is_syn()).count(), 2);
}

/// The switch is read when an error arrives: turned back on through
/// `Stack::tcp_update_config` on a socket already in SYN-SENT (as FreeBSD's
/// `sysctl net.inet.tcp.icmp_may_rst=1` acts on connections that exist), the
/// next port unreachable ends the connect with ECONNREFUSED (RFC 1122
/// §4.2.3.9), after the first one, which came while it was off, did not.
#[test]
fn icmp_hard_errors_switched_on_for_a_connect_in_syn_sent_rfc1122_4_2_3_9() {
    use ustack_core::wire::DstUnreachable;
    let mut rig = RigConfig::new(35).client_tcp(|t| t.icmp_hard_errors = false).build();
    rig.set_rule(|p| if p.is_syn() { Verdict::Drop } else { Verdict::Pass });
    let c = rig.connect();
    rig.run_for(ms(50));
    let syn = rig.pkts().into_iter().find(|p| p.is_syn()).unwrap();
    rig.inject(TO_CLIENT, icmp_unreachable_about(&syn, DstUnreachable::PortUnreachable));
    rig.run_for(ms(50));
    assert_eq!(rig.c().tcp_state(c), Ok(State::SynSent));
    rig.c().tcp_update_config(c, |t| t.icmp_hard_errors = true).unwrap();
    assert!(rig.c().tcp_connection(c).unwrap().config().icmp_hard_errors);
    rig.inject(TO_CLIENT, icmp_unreachable_about(&syn, DstUnreachable::PortUnreachable));
    rig.run_for(ms(50));
    assert_eq!(rig.c().tcp_state(c), Ok(State::Closed));
    let mut buf = [0u8; 4];
    assert_eq!(rig.c().recv(c, &mut buf), Err(Error::ConnectionRefused));
    assert_eq!(rig.pkts().iter().filter(|p| p.is_syn()).count(), 1, "no retransmission");
}

/// `Stack::tcp_update_config` reaches a socket in every state: an idle one
/// (its connection starts from the change), a listener (the connections it
/// accepts afterwards inherit it) and a connection; a closed handle gives
/// EBADF, as `tcp_config_mut`, and a UDP socket `NotSupported`.
#[test]
fn tcp_update_config_reaches_idle_listening_and_connected_sockets() {
    let mut rig = Rig::new(36);
    let l = rig.listen(8);
    rig.s().tcp_update_config(l, |t| t.icmp_hard_errors = false).unwrap();
    let c = rig.c().tcp_socket().unwrap();
    rig.c().tcp_update_config(c, |t| t.rfc5961_syn = false).unwrap();
    rig.c().connect(c, server_addr()).unwrap();
    let limit = rig.now() + secs(5);
    rig.run_until_true(limit, "handshake", |r| r.s().can_recv(l));
    let (s, _) = rig.s().accept(l).unwrap();
    assert!(!rig.s().tcp_connection(s).unwrap().config().icmp_hard_errors, "inherited from the listener");
    assert!(!rig.c().tcp_connection(c).unwrap().config().rfc5961_syn, "set before connect");
    rig.c().tcp_update_config(c, |t| t.rfc5961 = false).unwrap();
    let cfg = rig.c().tcp_connection(c).unwrap().config();
    assert!(!cfg.rfc5961 && !cfg.rfc5961_syn && cfg.icmp_hard_errors);
    let u = rig.c().udp_socket().unwrap();
    assert_eq!(rig.c().tcp_update_config(u, |_| {}), Err(Error::NotSupported));
    rig.c().close(c).unwrap();
    assert_eq!(rig.c().tcp_update_config(c, |_| {}), rig.c().tcp_config_mut(c).map(|_| ()));
    assert_eq!(rig.c().tcp_update_config(c, |_| {}), Err(Error::BadHandle));
}

/// RFC 9293 §3.10.7.3, SYN-SENT, fourth step: a SYN without ACK that
/// carries text (and a FIN) starts a simultaneous open. "If there are other
/// controls or text in the segment, queue them for processing after the
/// ESTABLISHED state has been reached": the SYN-ACK acknowledges the SYN
/// only, nothing is readable in SYN-RECEIVED, and once our SYN is
/// acknowledged the text is delivered, exactly once, and acknowledged. The
/// FIN is not kept (never acknowledged, the peer sends it again).
#[test]
fn text_on_simultaneous_open_syn_delivered_once_established_rfc9293_3_10_7_3() {
    let mut rig = Rig::new(90);
    // The server stack does not take part: the test plays the peer.
    rig.set_rule(|p| if p.from == FROM_CLIENT { Verdict::Drop } else { Verdict::Pass });
    let c = rig.connect();
    rig.run_for(ms(10));
    let syn = rig.pkts().into_iter().find(|p| p.from == FROM_CLIENT && p.is_syn()).unwrap();
    let iss = syn.seq();
    let eth = EthernetRepr { src: syn.eth.dst, dst: syn.eth.src, ethertype: syn.eth.ethertype };
    let peer_seg = |flags: TcpFlags, seq: u32, ack: u32| TcpRepr {
        src_port: syn.tcp.dst_port,
        dst_port: syn.tcp.src_port,
        flags,
        seq,
        ack: if flags.ack() { ack } else { 0 },
        window: 30_000,
        ..syn.tcp
    };
    let to_client = |tcp: &TcpRepr, payload: &[u8]| build_frame(eth, syn.ip.dst_addr, syn.ip.src_addr, tcp, payload);

    let irs = 7_000u32;
    let mut peer_syn = peer_seg(TcpFlags::SYN | TcpFlags::FIN, irs, 0);
    peer_syn.options = Default::default();
    peer_syn.options.mss = Some(1460);
    let before = rig.pkts().len();
    rig.inject(TO_CLIENT, to_client(&peer_syn, b"abc"));
    rig.run_for(ms(10));
    let answers: Vec<Pkt> = rig.pkts()[before..].iter().filter(|p| p.from == FROM_CLIENT).cloned().collect();
    assert_eq!(answers.len(), 1, "{answers:#?}");
    assert!(answers[0].is_synack());
    assert_eq!((answers[0].seq(), answers[0].ack()), (iss, irs + 1), "the SYN-ACK acknowledges the SYN only");
    assert_eq!(rig.c().tcp_state(c), Ok(State::SynReceived));
    let mut buf = [0u8; 16];
    assert_eq!(rig.c().recv(c, &mut buf), Err(Error::WouldBlock), "nothing readable before ESTABLISHED");
    assert!(!rig.c().can_recv(c));

    // The peer acknowledges our SYN; its next sequence number is past its text.
    let ack = peer_seg(TcpFlags::ACK, irs + 4, iss.wrapping_add(1));
    let before = rig.pkts().len();
    rig.inject(TO_CLIENT, to_client(&ack, b""));
    rig.run_for(ms(100));
    assert_eq!(rig.c().tcp_state(c), Ok(State::Established));
    let mut got = Vec::new();
    assert_eq!(rig.read_some(rig.client, c, &mut got), Ok(false), "no end of file: the FIN was not kept");
    assert_eq!(got, b"abc");
    let acks: Vec<Pkt> = rig.pkts()[before..].iter().filter(|p| p.from == FROM_CLIENT).cloned().collect();
    assert!(acks.iter().any(|p| p.ack() == irs + 4), "the text is acknowledged: {acks:#?}");

    // A copy of the text arriving later is a duplicate, not new data.
    rig.inject(TO_CLIENT, to_client(&peer_seg(TcpFlags::ACK | TcpFlags::PSH, irs + 1, iss.wrapping_add(1)), b"abc"));
    rig.inject(TO_CLIENT, to_client(&peer_seg(TcpFlags::ACK | TcpFlags::PSH, irs + 4, iss.wrapping_add(1)), b"de"));
    rig.run_for(ms(100));
    got.clear();
    assert_eq!(rig.read_some(rig.client, c, &mut got), Ok(false));
    assert_eq!(got, b"de");
}

/// The same, but the peer's ACK of our SYN-ACK repeats the text (it never
/// saw it acknowledged): the copy and the queued bytes are one and the
/// same, delivered once; new bytes after them follow.
#[test]
fn text_on_simultaneous_open_syn_repeated_with_the_ack_delivered_once_rfc9293_3_10_7_3() {
    let mut rig = Rig::new(91);
    rig.set_rule(|p| if p.from == FROM_CLIENT { Verdict::Drop } else { Verdict::Pass });
    let c = rig.connect();
    rig.run_for(ms(10));
    let syn = rig.pkts().into_iter().find(|p| p.from == FROM_CLIENT && p.is_syn()).unwrap();
    let iss = syn.seq();
    let eth = EthernetRepr { src: syn.eth.dst, dst: syn.eth.src, ethertype: syn.eth.ethertype };
    let peer_seg = |flags: TcpFlags, seq: u32, ack: u32| {
        let mut t = TcpRepr {
            src_port: syn.tcp.dst_port,
            dst_port: syn.tcp.src_port,
            flags,
            seq,
            ack: if flags.ack() { ack } else { 0 },
            window: 30_000,
            ..syn.tcp
        };
        t.options = Default::default();
        t
    };
    let to_client = |tcp: &TcpRepr, payload: &[u8]| build_frame(eth, syn.ip.dst_addr, syn.ip.src_addr, tcp, payload);
    let irs = 100u32;
    rig.inject(TO_CLIENT, to_client(&peer_seg(TcpFlags::SYN, irs, 0), b"hello"));
    rig.run_for(ms(10));
    assert_eq!(rig.c().tcp_state(c), Ok(State::SynReceived));
    rig.inject(
        TO_CLIENT,
        to_client(&peer_seg(TcpFlags::ACK | TcpFlags::PSH, irs + 1, iss.wrapping_add(1)), b"hello, world"),
    );
    rig.run_for(ms(100));
    assert_eq!(rig.c().tcp_state(c), Ok(State::Established));
    let mut got = Vec::new();
    assert_eq!(rig.read_some(rig.client, c, &mut got), Ok(false));
    assert_eq!(got, b"hello, world");
    let last = rig.last_from(FROM_CLIENT);
    assert_eq!(last.ack(), irs + 1 + 12);
}

/// TCP_NOOPT (`TcpConfig::no_options`): the SYN carries no option at all,
/// not even the MSS, so nothing is negotiated and the peer, with no MSS
/// option to go by, sends at most 536 bytes a segment (RFC 9293 §3.7.1,
/// "the default of 536 octets for IPv4"). The data still arrives whole.
#[test]
fn no_options_syn_carries_none_and_peer_falls_back_to_536_rfc9293_3_7_1() {
    let mut rig = RigConfig::new(92).client_tcp(|t| t.no_options = true).build();
    let (c, _l, s) = rig.establish();
    let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    rig.send_all(rig.server, s, &data);
    rig.run_for(ms(300));
    let mut got = Vec::new();
    rig.read_some(rig.client, c, &mut got).unwrap();
    assert_eq!(got, data);

    let p = rig.pkts();
    let syn = p.iter().find(|p| p.from == FROM_CLIENT && p.is_syn()).unwrap();
    assert_eq!(syn.tcp.options, Default::default(), "no option on the SYN: {syn:#?}");
    let synack = p.iter().find(|p| p.is_synack()).unwrap();
    assert!(synack.tcp.options.window_scale.is_none() && !synack.tcp.options.sack_permitted);
    assert!(synack.tcp.options.timestamps.is_none());
    let server_data: Vec<&Pkt> = p.iter().filter(|p| p.from == FROM_SERVER && !p.payload.is_empty()).collect();
    assert!(server_data.len() >= 10);
    assert!(server_data.iter().all(|p| p.payload.len() <= 536), "segments of at most 536 bytes");
    assert!(p.iter().all(|p| p.tcp.options.timestamps.is_none() && p.tcp.options.sack_blocks.is_empty()));
    assert_eq!(rig.c().tcp_connection(c).map(|c| c.negotiated_options()), Some((false, false, false)));
}

/// TCP_KEEPINIT (`TcpConfig::connect_timeout`): a connect to a silent host
/// fails with ETIMEDOUT when the time is up, though `syn_retries` would
/// allow more SYNs (RFC 9293 §3.8.3 lets the application close the
/// connection sooner than R2). A connection that completes in time is not
/// touched by it.
#[test]
fn connect_timeout_fails_the_open_when_time_is_up_rfc9293_3_8_3() {
    let mut rig = RigConfig::new(93).client_tcp(|t| t.connect_timeout = Some(secs(5))).build();
    rig.set_rule(|_| Verdict::Drop);
    let _l = rig.listen(8);
    let c = rig.connect();
    let t0 = rig.now();
    rig.run_for(ms(4900));
    assert_eq!(rig.c().tcp_state(c), Ok(State::SynSent));
    rig.run_for(ms(200));
    assert_eq!(rig.c().tcp_state(c), Ok(State::Closed));
    let ce = rig.client_events();
    let syns: Vec<Seg> = sent(&ce).into_iter().filter(|s| s.is_syn()).collect();
    let times: Vec<_> = syns.iter().map(|s| s.at - t0).collect();
    assert_eq!(times, [secs(0), secs(1), secs(3)]);
    assert_eq!(entered(&ce, syns[0].local, State::Closed), Some(t0 + secs(5)));
    let mut buf = [0u8; 4];
    assert_eq!(rig.c().recv(c, &mut buf), Err(Error::TimedOut));

    // In time: the connection lives on well past the timeout.
    rig.set_rule(|_| Verdict::Pass);
    let c2 = rig.connect();
    rig.run_for(secs(30));
    assert_eq!(rig.c().tcp_state(c2), Ok(State::Established));
}
