//! Resets on the simulator: the RST a closed port sends (RFC 9293
//! §3.10.7.1), close with unread data and abort (RFC 1122 §4.2.2.13, RFC
//! 9293 §3.10.5), the RST checks of RFC 5961 (challenge ACKs for in-window
//! RSTs and SYNs), and RSTs in SYN-SENT and SYN-RECEIVED.

mod common;

use common::*;
use std::net::SocketAddrV4;
use ustack_core::sim::Verdict;
use ustack_core::stats::DropReason;
use ustack_core::tcp::State;
use ustack_core::wire::{TcpFlags, TcpRepr};
use ustack_core::{Error, SocketHandle};

/// A template for segments from the client to `dst` (a real client
/// segment, readdressed).
fn client_template(rig: &mut Rig, dst_port: u16) -> Pkt {
    let (c, _l, _s) = rig.establish();
    let _ = c;
    let mut p = rig.pkts_from(FROM_CLIENT).pop().unwrap();
    p.tcp.dst_port = dst_port;
    p
}

/// The segments the server sent since log index `from`.
fn server_answers(rig: &Rig, from: usize) -> Vec<Pkt> {
    rig.pkts()[from..].iter().filter(|p| p.from == FROM_SERVER).cloned().collect()
}

/// RFC 9293 §3.10.7.1: a segment with ACK to a port nobody listens on is
/// answered with <SEQ=SEG.ACK><CTL=RST>.
#[test]
fn rst_for_closed_port_segment_with_ack_rfc9293_3_10_7_1() {
    let mut rig = Rig::new(40);
    let t = client_template(&mut rig, 7777);
    let seg =
        TcpRepr { options: Default::default(), ..forged_header(&t, TcpFlags::ACK | TcpFlags::PSH, 1000, 777_777) };
    let before = rig.pkts().len();
    rig.inject(TO_SERVER, forge(&t, &seg, b"hello"));
    rig.run_for(ms(50));
    let a = server_answers(&rig, before);
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!(a[0].flags(), TcpFlags::RST);
    assert_eq!(a[0].seq(), 777_777);
    assert_eq!((a[0].src(), a[0].dst()), (SocketAddrV4::new(server_ip(), 7777), t.src()));
    assert!(a[0].payload.is_empty());
    assert_eq!(rig.s().stats().drops(DropReason::TcpNoSocket), 1);
}

/// RFC 9293 §3.10.7.1: without ACK the RST is <SEQ=0><ACK=SEG.SEQ+SEG.LEN>
/// <CTL=RST,ACK>, where SEG.LEN counts the data and the SYN and FIN flags.
#[test]
fn rst_for_closed_port_segment_without_ack_rfc9293_3_10_7_1() {
    let mut rig = Rig::new(41);
    let t = client_template(&mut rig, 7777);
    let cases: [(TcpFlags, u32, &[u8], u32); 4] = [
        (TcpFlags::PSH, 5000, &[7u8; 100], 5100),
        (TcpFlags::FIN, 9000, b"", 9001),
        (TcpFlags::FIN | TcpFlags::PSH, 0xffff_fff0, &[1u8; 20], 0xffff_fff0u32.wrapping_add(21)),
        (TcpFlags::SYN, 123, b"", 124),
    ];
    for (flags, seq, payload, want_ack) in cases {
        let seg = TcpRepr { options: Default::default(), ..forged_header(&t, flags, seq, 0) };
        let before = rig.pkts().len();
        rig.inject(TO_SERVER, forge(&t, &seg, payload));
        rig.run_for(ms(50));
        let a = server_answers(&rig, before);
        assert_eq!(a.len(), 1, "{flags}: {a:#?}");
        assert_eq!(a[0].flags(), TcpFlags::RST | TcpFlags::ACK, "{flags}");
        assert_eq!((a[0].seq(), a[0].ack()), (0, want_ack), "{flags}");
        assert_eq!(a[0].dst(), t.src());
    }
    // A RST is never answered with a RST.
    let seg = TcpRepr { options: Default::default(), ..forged_header(&t, TcpFlags::RST, 42, 0) };
    let before = rig.pkts().len();
    rig.inject(TO_SERVER, forge(&t, &seg, b""));
    rig.run_for(ms(50));
    assert!(server_answers(&rig, before).is_empty());
}

/// RFC 9293 §3.10.7.2: in LISTEN, an ACK is answered with
/// <SEQ=SEG.ACK><CTL=RST>, a RST is ignored, and the listener listens on.
#[test]
fn listener_answers_ack_with_rst_rfc9293_3_10_7_2() {
    let mut rig = Rig::new(42);
    let t = client_template(&mut rig, SERVER_PORT);
    let l = rig.s().tcp_connections().count();
    assert_eq!(l, 1);
    // From a port the listener has no connection for.
    let mut t2 = t.clone();
    t2.tcp.src_port = 40_404;
    let seg = TcpRepr { options: Default::default(), ..forged_header(&t2, TcpFlags::ACK, 1, 31_337) };
    let before = rig.pkts().len();
    rig.inject(TO_SERVER, forge(&t2, &seg, b""));
    rig.run_for(ms(50));
    let a = server_answers(&rig, before);
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!((a[0].flags(), a[0].seq()), (TcpFlags::RST, 31_337));
    assert_eq!(a[0].dst().port(), 40_404);
    let seg = TcpRepr { options: Default::default(), ..forged_header(&t2, TcpFlags::RST, 1, 0) };
    let before = rig.pkts().len();
    rig.inject(TO_SERVER, forge(&t2, &seg, b""));
    rig.run_for(ms(50));
    assert!(server_answers(&rig, before).is_empty());
    // Still listening: a new client connects.
    let c2 = rig.connect();
    rig.run_for(ms(100));
    assert_eq!(rig.c().tcp_state(c2), Ok(State::Established));
}

/// RFC 1122 §4.2.2.13 (and RFC 2525 §2.17): close() while received data
/// is still unread resets the connection instead of closing it: a RST, no
/// FIN, and the peer's next call fails with ECONNRESET.
#[test]
fn close_with_unread_data_sends_rst_rfc1122_4_2_2_13() {
    let mut rig = Rig::new(43);
    let (c, _l, s) = rig.establish();
    rig.send_all(rig.server, s, &pattern(3000, 9));
    rig.run_for(ms(100));
    assert!(rig.c().can_recv(c));
    let client_local = rig.c().local_addr(c).unwrap();
    let last_ack = rig.last_from(FROM_CLIENT);
    let before = rig.pkts().len();
    rig.c().close(c).unwrap();
    rig.run_for(ms(100));
    let p: Vec<Pkt> = rig.pkts()[before..].to_vec();
    assert_eq!(p.len(), 1, "one RST and nothing else: {p:#?}");
    assert_eq!(p[0].from, FROM_CLIENT);
    assert!(p[0].is_rst() && !p[0].is_fin());
    // <SEQ=SND.NXT>, acknowledging what was received.
    assert_eq!((p[0].seq(), p[0].ack()), (last_ack.seq(), last_ack.ack()));
    // The client's connection is gone at once; the server's is reset.
    assert_eq!(rig.c().tcp_connections().count(), 0);
    assert_eq!(rig.c().socket_count(), 0);
    let ce = rig.client_events();
    assert_eq!(state_path(&ce, client_local)[2..], [State::Established, State::Closed]);
    assert_eq!(rig.s().tcp_state(s), Ok(State::Closed));
    let mut buf = [0u8; 8];
    assert_eq!(rig.s().recv(s, &mut buf), Err(Error::ConnectionReset));
    assert_eq!(rig.s().recv(s, &mut buf), Ok(0));
    assert_eq!(rig.s().stats().tcp.estab_resets, 1);
    rig.s().close(s).unwrap();
    assert_eq!(rig.s().tcp_connections().count(), 0);
}

/// With everything read, close() is graceful: a FIN, not a RST.
#[test]
fn close_with_everything_read_sends_fin_rfc9293_3_10_4() {
    let mut rig = Rig::new(44);
    let (c, _l, s) = rig.establish();
    rig.send_all(rig.server, s, &pattern(3000, 9));
    rig.run_for(ms(100));
    let mut got = Vec::new();
    rig.read_some(rig.client, c, &mut got).unwrap();
    assert_eq!(got.len(), 3000);
    let before = rig.pkts().len();
    rig.c().close(c).unwrap();
    rig.run_for(ms(100));
    let p: Vec<Pkt> = rig.pkts()[before..].iter().filter(|p| p.from == FROM_CLIENT).cloned().collect();
    assert!(p[0].is_fin() && !p.iter().any(|p| p.is_rst()));
    assert_eq!(rig.s().tcp_state(s), Ok(State::CloseWait));
}

/// ABORT (RFC 9293 §3.10.5, SO_LINGER with zero timeout): a RST with
/// <SEQ=SND.NXT> goes at once, queued data is discarded, and the peer gets
/// ECONNRESET from recv and then EPIPE from send.
#[test]
fn abort_sends_rst_and_peer_gets_econnreset_rfc9293_3_10_5() {
    let mut rig = RigConfig::new(45).server_tcp(|t| t.recv_buffer = 8192).build();
    let (c, _l, s) = rig.establish();
    // Fill the server's window so that data stays queued on the client.
    rig.c().send(c, &pattern(50_000, 1)).unwrap();
    rig.run_for(ms(100));
    let sent_max = rig.pkts_from(FROM_CLIENT).iter().rfind(|p| !p.payload.is_empty()).unwrap().end();
    let before = rig.pkts().len();
    rig.c().abort(c).unwrap();
    rig.run_for(ms(100));
    let p: Vec<Pkt> = rig.pkts()[before..].to_vec();
    assert_eq!(p.len(), 1, "{p:#?}");
    assert!(p[0].from == FROM_CLIENT && p[0].is_rst());
    assert_eq!(p[0].seq(), sent_max, "SEQ=SND.NXT: the queued data never went");
    assert!(p[0].payload.is_empty());
    assert_eq!(rig.c().tcp_connections().count(), 0);
    assert_eq!(rig.c().tcp_state(c), Err(Error::BadHandle));
    assert_eq!(rig.s().tcp_state(s), Ok(State::Closed));
    assert!(rig.s().can_recv(s), "the error makes the socket readable");
    // Data that had arrived is discarded with the reset (RFC 9293
    // §3.10.7.4: "all segment queues should be flushed").
    let mut buf = [0u8; 100];
    assert_eq!(rig.s().recv(s, &mut buf), Err(Error::ConnectionReset));
    assert_eq!(rig.s().send(s, b"x"), Err(Error::BrokenPipe));
}

/// The peer's send reports ECONNRESET first when it is the first call
/// after the reset.
#[test]
fn abort_reported_by_send_rfc9293_3_10_7_4() {
    let mut rig = Rig::new(46);
    let (c, _l, s) = rig.establish();
    rig.c().abort(c).unwrap();
    rig.run_for(ms(100));
    assert_eq!(rig.s().send(s, b"x"), Err(Error::ConnectionReset));
    assert_eq!(rig.s().send(s, b"x"), Err(Error::BrokenPipe));
}

/// The server's view of the connection: (SND.NXT, RCV.NXT), from the last
/// segment it sent.
fn server_seqs(rig: &Rig) -> (u32, u32) {
    let last = rig.last_from(FROM_SERVER);
    (last.end(), last.ack())
}

/// RFC 5961 §3.2: a RST whose sequence number is in the window but is not
/// exactly RCV.NXT draws a challenge ACK (<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>)
/// and the connection survives; a RST outside the window is dropped
/// silently; a RST exactly at RCV.NXT resets the connection.
#[test]
fn rst_checks_challenge_ack_rfc5961_3_2() {
    let mut rig = Rig::new(47);
    let (c, _l, s) = rig.establish();
    rig.c().send(c, b"some data").unwrap();
    rig.run_for(ms(100));
    let t = rig.last_from(FROM_CLIENT);
    let (snd_nxt, rcv_nxt) = server_seqs(&rig);

    // In the window, not exact: challenge ACK.
    for off in [1u32, 1000, 60_000] {
        let rst = forged_header(&t, TcpFlags::RST, rcv_nxt.wrapping_add(off), 0);
        let before = rig.pkts().len();
        rig.inject(TO_SERVER, forge(&t, &rst, b""));
        rig.run_for(ms(20));
        let a = server_answers(&rig, before);
        assert_eq!(a.len(), 1, "offset {off}: {a:#?}");
        assert_eq!(a[0].flags(), TcpFlags::ACK);
        assert_eq!((a[0].seq(), a[0].ack()), (snd_nxt, rcv_nxt));
        assert_eq!(rig.s().tcp_state(s), Ok(State::Established));
    }
    assert_eq!(rig.s().stats().tcp.challenge_acks, 3);
    // The challenge ACK reached the client, which took it as a duplicate
    // and did nothing; the connection still carries data both ways.
    rig.c().send(c, b"after").unwrap();
    rig.s().send(s, b"back").unwrap();
    rig.run_for(ms(100));
    let mut got = Vec::new();
    rig.read_some(rig.server, s, &mut got).unwrap();
    assert_eq!(got, b"some dataafter");
    got.clear();
    rig.read_some(rig.client, c, &mut got).unwrap();
    assert_eq!(got, b"back");

    // Outside the window (before RCV.NXT, or beyond the window): dropped
    // without an answer.
    let (snd_nxt, rcv_nxt) = server_seqs(&rig);
    let _ = snd_nxt;
    for seq in [rcv_nxt.wrapping_sub(1), rcv_nxt.wrapping_add(10_000_000)] {
        let rst = forged_header(&t, TcpFlags::RST, seq, 0);
        let before = rig.pkts().len();
        rig.inject(TO_SERVER, forge(&t, &rst, b""));
        rig.run_for(ms(20));
        assert!(server_answers(&rig, before).is_empty(), "seq {seq}");
        assert_eq!(rig.s().tcp_state(s), Ok(State::Established));
    }

    // Exactly RCV.NXT: reset.
    let rst = forged_header(&t, TcpFlags::RST, rcv_nxt, 0);
    let before = rig.pkts().len();
    rig.inject(TO_SERVER, forge(&t, &rst, b""));
    rig.run_for(ms(20));
    assert!(server_answers(&rig, before).is_empty());
    assert_eq!(rig.s().tcp_state(s), Ok(State::Closed));
    let mut buf = [0u8; 8];
    assert_eq!(rig.s().recv(s, &mut buf), Err(Error::ConnectionReset));
    // (The client, unaware, is still established: the RST was forged.)
    assert_eq!(rig.c().tcp_state(c), Ok(State::Established));
}

/// RFC 5961 §4.2 (adopted by RFC 9293 §3.10.7.4, fourth check): a SYN in a
/// synchronized state, in the window or not, is answered with a challenge
/// ACK and the connection is not reset.
#[test]
fn syn_in_established_challenge_ack_rfc5961_4_2() {
    let mut rig = Rig::new(48);
    let (c, _l, s) = rig.establish();
    rig.run_for(ms(100));
    let t = rig.last_from(FROM_CLIENT);
    let (snd_nxt, rcv_nxt) = server_seqs(&rig);
    for (i, seq) in [rcv_nxt, rcv_nxt.wrapping_add(5000), rcv_nxt.wrapping_sub(5000), 12345].into_iter().enumerate() {
        let mut syn = forged_header(&t, TcpFlags::SYN, seq, 0);
        syn.options.mss = Some(1460);
        let before = rig.pkts().len();
        rig.inject(TO_SERVER, forge(&t, &syn, b""));
        rig.run_for(ms(20));
        let a = server_answers(&rig, before);
        assert_eq!(a.len(), 1, "SYN {i}: {a:#?}");
        assert_eq!(a[0].flags(), TcpFlags::ACK, "SYN {i}: an ACK, neither a SYN-ACK nor a RST");
        assert_eq!((a[0].seq(), a[0].ack()), (snd_nxt, rcv_nxt), "SYN {i}");
        assert_eq!(rig.s().tcp_state(s), Ok(State::Established));
    }
    assert!(rig.s().stats().tcp.challenge_acks >= 2);
    assert_eq!(rig.s().tcp_connections().count(), 1, "no new connection from the SYNs");
    rig.c().send(c, b"still fine").unwrap();
    rig.run_for(ms(100));
    let mut got = Vec::new();
    rig.read_some(rig.server, s, &mut got).unwrap();
    assert_eq!(got, b"still fine");
}

/// RFC 9293 §3.10.7.3, SYN-SENT: a SYN-ACK whose ACK does not acknowledge
/// our SYN draws <SEQ=SEG.ACK><CTL=RST> and is otherwise ignored; a RST
/// without ACK, or with a wrong one, is ignored; the connect goes on and
/// completes with the real SYN-ACK.
#[test]
fn syn_sent_rejects_bad_acks_rfc9293_3_10_7_3() {
    let mut rig = Rig::new(49);
    // Hold back the real SYN-ACK until the forgeries have been tried.
    let mut held = true;
    rig.set_rule(move |p| {
        if p.is_synack() && held {
            held = false;
            return Verdict::Drop;
        }
        Verdict::Pass
    });
    let _l = rig.listen(8);
    let c = rig.connect();
    rig.run_for(ms(50));
    let real = rig.pkts().into_iter().find(|p| p.is_synack()).unwrap();
    let syn = rig.pkts().into_iter().find(|p| p.is_syn()).unwrap();
    let iss = syn.seq();
    let cases = [
        (TcpFlags::SYN | TcpFlags::ACK, iss.wrapping_add(1000), true),
        (TcpFlags::SYN | TcpFlags::ACK, iss, true),
        (TcpFlags::RST, 0, false),
        (TcpFlags::RST | TcpFlags::ACK, iss.wrapping_add(7), false),
    ];
    for (flags, ack, rst_expected) in cases {
        let seg = forged_header(&real, flags, real.seq(), ack);
        let before = rig.pkts().len();
        rig.inject(TO_CLIENT, forge(&real, &seg, b""));
        rig.run_for(ms(20));
        let a: Vec<Pkt> = rig.pkts()[before..].iter().filter(|p| p.from == FROM_CLIENT).cloned().collect();
        if rst_expected {
            assert_eq!(a.len(), 1, "{flags} ack {ack}: {a:#?}");
            assert_eq!((a[0].flags(), a[0].seq()), (TcpFlags::RST, ack));
        } else {
            assert!(a.is_empty(), "{flags}: {a:#?}");
        }
        assert_eq!(rig.c().tcp_state(c), Ok(State::SynSent), "{flags} ack {ack}");
    }
    // The SYN retransmission at 1 s gets the real SYN-ACK through.
    rig.run_for(secs(2));
    assert_eq!(rig.c().tcp_state(c), Ok(State::Established));
}

/// RFC 9293 §3.10.7.4, second check, SYN-RECEIVED from a passive open: a
/// RST (with the exact sequence number) returns the connection to LISTEN:
/// the half-open connection disappears, nothing is accepted, and the
/// listener serves the next client.
#[test]
fn rst_in_syn_received_returns_to_listen_rfc9293_3_10_7_4() {
    let mut rig = Rig::new(50);
    rig.set_rule(|p| if p.from == FROM_CLIENT && p.is_pure_ack() { Verdict::Drop } else { Verdict::Pass });
    let l = rig.listen(8);
    let c = rig.connect();
    rig.run_for(ms(50));
    let states: Vec<State> = rig.s().tcp_connections().map(|(_, c)| c.state()).collect();
    assert_eq!(states, [State::SynReceived]);
    let syn = rig.pkts().into_iter().find(|p| p.is_syn()).unwrap();
    let rst = forged_header(&syn, TcpFlags::RST, syn.seq().wrapping_add(1), 0);
    rig.inject(TO_SERVER, forge(&syn, &rst, b""));
    rig.run_for(ms(20));
    assert_eq!(rig.s().tcp_connections().count(), 0, "the half-open connection is gone");
    assert_eq!(rig.s().tcp_state(l), Ok(State::Listen));
    assert_eq!(rig.s().accept(l), Err(Error::WouldBlock));
    let _ = c;
    rig.set_rule(|_| Verdict::Pass);
    let c2: SocketHandle = rig.connect();
    rig.run_for(ms(100));
    assert_eq!(rig.c().tcp_state(c2), Ok(State::Established));
    assert!(rig.s().accept(l).is_ok());
}

/// RFC 9293 §3.10.7.4, fifth check: a segment whose ACK acknowledges
/// something not yet sent (SEG.ACK > SND.NXT) is answered with an ACK and
/// dropped, data and all; RFC 5961 §5.2: one whose ACK lies more than
/// MAX.SND.WND before SND.UNA (a blind injection) likewise draws a
/// challenge ACK and is dropped.
#[test]
fn unacceptable_acks_answered_and_dropped_rfc9293_3_10_7_4_rfc5961_5_2() {
    let mut rig = Rig::new(51);
    let (c, _l, s) = rig.establish();
    rig.s().send(s, b"hello").unwrap();
    rig.run_for(ms(100));
    let t = rig.last_from(FROM_CLIENT);
    let (snd_nxt, rcv_nxt) = server_seqs(&rig);
    for (what, ack) in
        [("ahead of SND.NXT", snd_nxt.wrapping_add(10)), ("far behind SND.UNA", snd_nxt.wrapping_sub(1 << 30))]
    {
        let seg = forged_header(&t, TcpFlags::ACK | TcpFlags::PSH, rcv_nxt, ack);
        let before = rig.pkts().len();
        rig.inject(TO_SERVER, forge(&t, &seg, b"forged data"));
        rig.run_for(ms(20));
        let a = server_answers(&rig, before);
        assert_eq!(a.len(), 1, "{what}: {a:#?}");
        assert_eq!((a[0].flags(), a[0].seq(), a[0].ack()), (TcpFlags::ACK, snd_nxt, rcv_nxt), "{what}");
        let mut got = Vec::new();
        assert_eq!(rig.read_some(rig.server, s, &mut got), Ok(false));
        assert!(got.is_empty(), "{what}: the data was dropped with the segment");
    }
    assert_eq!(rig.s().stats().drops(DropReason::TcpBadAck), 2);
    // The real data still flows.
    rig.c().send(c, b"real").unwrap();
    rig.run_for(ms(50));
    let mut got = Vec::new();
    rig.read_some(rig.server, s, &mut got).unwrap();
    assert_eq!(got, b"real");
}

/// ABORT in SYN-SENT (RFC 9293 §3.10.5): no RST, since the peer knows
/// nothing of us; the connection is gone at once.
#[test]
fn abort_in_syn_sent_sends_nothing_rfc9293_3_10_5() {
    let mut rig = Rig::new(52);
    rig.set_rule(|p| if p.is_syn() { Verdict::Drop } else { Verdict::Pass });
    let _l = rig.listen(4);
    let c = rig.connect();
    rig.run_for(ms(50));
    rig.c().abort(c).unwrap();
    rig.run_for(secs(5));
    assert_eq!(rig.c().tcp_connections().count(), 0);
    let p = rig.pkts();
    assert_eq!(p.len(), 1, "only the first SYN: {p:#?}");
}

/// RFC 9293 §3.10.7.1: a connection in CLOSED has no TCB as far as the
/// network is concerned, even while the application still holds its
/// handle (here: to read the ECONNRESET it has not read yet). A segment
/// for its 4-tuple is answered as for a closed port, and a new SYN from the
/// same client port reaches the listener and makes a new connection.
#[test]
fn closed_connection_held_by_application_does_not_swallow_segments_rfc9293_3_10_7_1() {
    let mut rig = Rig::new(53);
    let (c, l, s) = rig.establish();
    let client_local = rig.c().local_addr(c).unwrap();
    rig.c().abort(c).unwrap();
    rig.run_for(ms(50));
    assert_eq!(rig.s().tcp_state(s), Ok(State::Closed), "reset; the application has not looked yet");
    // The client comes back from the same port.
    let c2 = rig.c().tcp_socket().unwrap();
    rig.c().bind(c2, client_local).unwrap();
    rig.c().connect(c2, server_addr()).unwrap();
    rig.run_for(ms(100));
    assert_eq!(rig.c().tcp_state(c2), Ok(State::Established));
    let (s2, remote) = rig.s().accept(l).unwrap();
    assert_eq!(remote, client_local);
    // The old handle still reports its reset.
    let mut buf = [0u8; 4];
    assert_eq!(rig.s().recv(s, &mut buf), Err(Error::ConnectionReset));
    rig.s().close(s).unwrap();
    // Closing the old handle does not disturb the new connection.
    rig.c().send(c2, b"new").unwrap();
    rig.run_for(ms(50));
    let mut got = Vec::new();
    rig.read_some(rig.server, s2, &mut got).unwrap();
    assert_eq!(got, b"new");
    assert_eq!(rig.s().tcp_state(s2), Ok(State::Established));

    // The same on the client's side, where no listener is: its connection
    // reset by the server and not yet looked at, a stray ACK for its
    // 4-tuple draws <SEQ=SEG.ACK><CTL=RST>.
    rig.s().abort(s2).unwrap();
    rig.run_for(ms(50));
    assert_eq!(rig.c().tcp_state(c2), Ok(State::Closed));
    let t = rig.pkts_from(FROM_SERVER).into_iter().rfind(|p| p.dst() == client_local).unwrap();
    let stray = forged_header(&t, TcpFlags::ACK, 1000, 4242);
    let before = rig.pkts().len();
    rig.inject(TO_CLIENT, forge(&t, &stray, b""));
    rig.run_for(ms(50));
    let a: Vec<Pkt> = rig.pkts()[before..].iter().filter(|p| p.from == FROM_CLIENT).cloned().collect();
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!((a[0].flags(), a[0].seq()), (TcpFlags::RST, 4242));
    assert_eq!(rig.c().recv(c2, &mut buf), Err(Error::ConnectionReset));
}

/// With `rfc5961_syn` off (RFC 793 §3.9, before RFC 5961), a SYN in a
/// synchronized state is an error when it lies in the window: it is
/// answered with <SEQ=SND.NXT><ACK=RCV.NXT><CTL=RST,ACK> and the connection
/// is aborted (ECONNRESET). A SYN outside the window fails the sequence
/// check first and gets an ACK; the connection lives on.
#[test]
fn syn_in_window_resets_without_rfc5961_rfc793_3_9() {
    let mut rig = RigConfig::new(53).server_tcp(|t| t.rfc5961_syn = false).build();
    let (_c, _l, s) = rig.establish();
    rig.run_for(ms(100));
    let t = rig.last_from(FROM_CLIENT);
    let (snd_nxt, rcv_nxt) = server_seqs(&rig);

    for seq in [rcv_nxt.wrapping_sub(5000), rcv_nxt.wrapping_add(10_000_000)] {
        let mut syn = forged_header(&t, TcpFlags::SYN, seq, 0);
        syn.options.mss = Some(1460);
        let before = rig.pkts().len();
        rig.inject(TO_SERVER, forge(&t, &syn, b""));
        rig.run_for(ms(20));
        let a = server_answers(&rig, before);
        assert_eq!(a.len(), 1, "SYN at {seq}: {a:#?}");
        assert_eq!((a[0].flags(), a[0].seq(), a[0].ack()), (TcpFlags::ACK, snd_nxt, rcv_nxt));
        assert_eq!(rig.s().tcp_state(s), Ok(State::Established));
    }

    let mut syn = forged_header(&t, TcpFlags::SYN, rcv_nxt.wrapping_add(5000), 0);
    syn.options.mss = Some(1460);
    let before = rig.pkts().len();
    rig.inject(TO_SERVER, forge(&t, &syn, b""));
    rig.run_for(ms(20));
    let a = server_answers(&rig, before);
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!((a[0].flags(), a[0].seq(), a[0].ack()), (TcpFlags::RST | TcpFlags::ACK, snd_nxt, rcv_nxt));
    assert_eq!(rig.s().tcp_state(s), Ok(State::Closed));
    let mut buf = [0u8; 8];
    assert_eq!(rig.s().recv(s, &mut buf), Err(Error::ConnectionReset));
}

/// `StackConfig::drop_syn_fin`: a SYN+FIN that would open a connection (to
/// a listener) is dropped without an answer and makes no connection; a
/// plain SYN from the same port then connects. Off (the default), RFC 9293
/// §3.10.7.2 processes the SYN and the listener answers with a SYN-ACK.
#[test]
fn syn_fin_to_listener_dropped_when_asked_rfc9293_3_10_7_2() {
    for drop in [true, false] {
        let mut cfg = RigConfig::new(54);
        cfg.server.drop_syn_fin = drop;
        let mut rig = cfg.build();
        let t = client_template(&mut rig, SERVER_PORT);
        let mut syn_fin = forged_header(&t, TcpFlags::SYN | TcpFlags::FIN, 1000, 0);
        syn_fin.src_port = 40_123;
        syn_fin.options = Default::default();
        syn_fin.options.mss = Some(1460);
        let before = rig.pkts().len();
        let conns = rig.s().tcp_connections().count();
        rig.inject(TO_SERVER, forge(&t, &syn_fin, b""));
        rig.run_for(ms(20));
        let a = server_answers(&rig, before);
        if drop {
            assert!(a.is_empty(), "{a:#?}");
            assert_eq!(rig.s().tcp_connections().count(), conns);
            let syn = TcpRepr { flags: TcpFlags::SYN, ..syn_fin };
            rig.inject(TO_SERVER, forge(&t, &syn, b""));
            rig.run_for(ms(20));
            let a = server_answers(&rig, before);
            assert_eq!(a.len(), 1, "{a:#?}");
            assert!(a[0].is_synack() && a[0].ack() == 1001);
        } else {
            assert_eq!(a.len(), 1, "{a:#?}");
            assert!(a[0].is_synack() && a[0].ack() == 1001, "{a:#?}");
        }
    }
}

/// RFC 9293 §3.10.7.4, second check, LAST-ACK: an acceptable RST closes the
/// connection ("enter the CLOSED state, delete the TCB"). An application
/// that shut down writing and still holds the socket learns why from the
/// socket's error, ECONNRESET, as on Linux and the BSDs.
#[test]
fn rst_in_last_ack_reports_econnreset_rfc9293_3_10_7_4() {
    let mut rig = Rig::new(55);
    // The client's ACK of the server's FIN is lost, so the server stays in LAST-ACK.
    let (c, _l, s) = rig.establish();
    rig.c().shutdown(c, ustack_core::Shutdown::Write).unwrap();
    rig.run_for(ms(100));
    assert_eq!(rig.s().tcp_state(s), Ok(State::CloseWait));
    rig.set_rule(|p| if p.from == FROM_CLIENT { Verdict::Drop } else { Verdict::Pass });
    rig.s().shutdown(s, ustack_core::Shutdown::Write).unwrap();
    rig.run_for(ms(50));
    assert_eq!(rig.s().tcp_state(s), Ok(State::LastAck));
    let t = rig.last_from(FROM_CLIENT);
    let (_snd_nxt, rcv_nxt) = server_seqs(&rig);
    let rst = forged_header(&t, TcpFlags::RST, rcv_nxt, 0);
    rig.inject(TO_SERVER, forge(&t, &rst, b""));
    rig.run_for(ms(20));
    assert_eq!(rig.s().tcp_state(s), Ok(State::Closed));
    let mut buf = [0u8; 4];
    assert_eq!(rig.s().recv(s, &mut buf), Err(Error::ConnectionReset));
    assert_eq!(rig.s().recv(s, &mut buf), Ok(0), "then end of file");
}
