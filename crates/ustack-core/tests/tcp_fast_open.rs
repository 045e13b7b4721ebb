//! TCP Fast Open (RFC 7413) on the simulator. The server's side first,
//! with the client's SYNs forged from the test (so that each case is one
//! segment away), and the server's answers kept from the client stack,
//! which would reset them; then ustack's client (`connect_with_data`)
//! against ustack's server.

mod common;

use common::*;
use ustack_core::sim::{LinkConfig, Verdict};
use ustack_core::socket::{Error, SockOpt, SockOptName};
use ustack_core::tcp::State;
use ustack_core::wire::{FastOpenCookie, TcpFlags, TcpOptions, TcpRepr};
use ustack_core::{Shutdown, SocketHandle};

/// Forged connections come from ports at and above this one.
const FORGED: u16 = 40000;

/// A server whose listener takes Fast Open with a queue of `qlen`, one
/// ordinary connection made (its SYN is the template of the forged ones),
/// and the server's segments to forged ports dropped (they are still
/// logged).
fn rig(seed: u64, qlen: usize) -> (Rig, SocketHandle, Pkt) {
    let mut rig = RigConfig::new(seed).server_tcp(|t| t.fast_open = qlen).build();
    let (_, l, _) = rig.establish();
    let template = rig.pkts_from(FROM_CLIENT).into_iter().find(|p| p.is_syn()).unwrap();
    rig.set_rule(|p| if p.from == FROM_SERVER && p.dst().port() >= FORGED { Verdict::Drop } else { Verdict::Pass });
    (rig, l, template)
}

/// A SYN from `port` with `cookie` (a request when `None`) and `data`.
fn syn(template: &Pkt, port: u16, seq: u32, cookie: Option<FastOpenCookie>, data: &[u8]) -> Vec<u8> {
    let tcp = TcpRepr {
        src_port: port,
        seq,
        ack: 0,
        flags: TcpFlags::SYN,
        options: TcpOptions {
            mss: Some(1460),
            sack_permitted: true,
            fast_open: Some(cookie.unwrap_or(FastOpenCookie::REQUEST)),
            ..Default::default()
        },
        ..template.tcp
    };
    forge(template, &tcp, data)
}

/// A segment from `port` with these flags, numbers and data.
fn segment(template: &Pkt, port: u16, flags: TcpFlags, seq: u32, ack: u32, data: &[u8]) -> Vec<u8> {
    let tcp = TcpRepr { src_port: port, seq, ack, flags, options: TcpOptions::default(), ..template.tcp };
    forge(template, &tcp, data)
}

/// The server's segments to `port` so far.
fn to_port(rig: &Rig, port: u16) -> Vec<Pkt> {
    rig.pkts_from(FROM_SERVER).into_iter().filter(|p| p.dst().port() == port).collect()
}

/// Asks for a cookie from a port of its own, and returns it.
fn get_cookie(rig: &mut Rig, template: &Pkt, port: u16) -> FastOpenCookie {
    rig.inject(TO_SERVER, syn(template, port, 7000, None, b""));
    rig.run_for(ms(20));
    let synack = to_port(rig, port).into_iter().find(|p| p.is_synack()).unwrap();
    let cookie = synack.tcp.options.fast_open.expect("a cookie in the SYN-ACK");
    assert_eq!(cookie.as_bytes().len(), 8);
    cookie
}

/// RFC 7413 §4.2: a SYN asking for a cookie gets one and its data is not
/// taken; the next SYN, with the cookie and data, has its data
/// acknowledged by the SYN-ACK and readable at once from a connection that
/// `accept` returns in SYN-RECEIVED, whose answer leaves right after the
/// SYN-ACK, before the handshake's ACK; that ACK acknowledges both.
#[test]
fn data_in_a_syn_with_a_good_cookie_is_taken_and_answered_before_the_handshake_ends() {
    let (mut rig, l, template) = rig(41, 16);
    let port = FORGED;
    rig.inject(TO_SERVER, syn(&template, port, 7000, None, b"too early"));
    rig.run_for(ms(20));
    let first = to_port(&rig, port);
    assert_eq!(first.len(), 1, "{first:#?}");
    assert!(first[0].is_synack());
    assert_eq!(first[0].ack(), 7001, "the data of a SYN without a cookie is not taken");
    let cookie = first[0].tcp.options.fast_open.expect("a cookie in the SYN-ACK");
    assert_eq!(rig.s().stats().tcp.fast_open_cookies_sent, 1);
    assert!(rig.s().accept(l).is_err(), "nothing to accept before the handshake ends");

    let port = FORGED + 1;
    let request = b"GET / HTTP/1.0\r\n\r\n";
    rig.inject(TO_SERVER, syn(&template, port, 9000, Some(cookie), request));
    rig.run_for(ms(12));
    let synack = to_port(&rig, port).into_iter().find(|p| p.is_synack()).unwrap();
    assert_eq!(synack.ack(), 9001 + request.len() as u32, "the SYN-ACK acknowledges the data");
    assert_eq!(synack.tcp.options.fast_open, None, "a good cookie is not given again");
    assert_eq!(rig.s().stats().tcp.fast_open_syn_data, 1);
    let (s, peer) = rig.s().accept(l).expect("accepted from SYN-RECEIVED");
    assert_eq!(peer.port(), port);
    assert_eq!(rig.s().tcp_state(s), Ok(State::SynReceived));
    let mut got = [0u8; 64];
    let n = rig.s().recv(s, &mut got).unwrap();
    assert_eq!(&got[..n], request);

    rig.s().send(s, b"200 OK").unwrap();
    rig.run_for(ms(6));
    let answer = to_port(&rig, port).into_iter().find(|p| !p.payload.is_empty()).expect("the answer left");
    assert_eq!(answer.seq(), synack.seq().wrapping_add(1));
    assert_eq!(answer.payload, b"200 OK");
    assert_eq!(rig.s().tcp_state(s), Ok(State::SynReceived), "before the handshake's ACK");

    let ack = segment(&template, port, TcpFlags::ACK, synack.ack(), answer.end(), b"");
    rig.inject(TO_SERVER, ack);
    rig.run_for(ms(10));
    assert_eq!(rig.s().tcp_state(s), Ok(State::Established));
    rig.run_for(secs(3));
    let sent: Vec<Pkt> = to_port(&rig, port).into_iter().filter(|p| !p.payload.is_empty()).collect();
    assert_eq!(sent.len(), 1, "the answer was acknowledged, never resent: {sent:#?}");
}

/// The answer sent before the handshake ended was lost, and the ACK that
/// completes the handshake covers only the SYN: the connection is
/// ESTABLISHED and resends the answer when its timer runs out.
#[test]
fn an_early_answer_that_was_lost_is_resent_after_the_handshake() {
    let (mut rig, l, template) = rig(42, 16);
    let cookie = get_cookie(&mut rig, &template, FORGED);
    let port = FORGED + 1;
    rig.inject(TO_SERVER, syn(&template, port, 9000, Some(cookie), b"ping"));
    rig.run_for(ms(12));
    let (s, _) = rig.s().accept(l).unwrap();
    rig.s().send(s, b"pong").unwrap();
    rig.run_for(ms(6));
    let synack = to_port(&rig, port).into_iter().find(|p| p.is_synack()).unwrap();
    rig.inject(TO_SERVER, segment(&template, port, TcpFlags::ACK, 9005, synack.seq().wrapping_add(1), b""));
    rig.run_for(ms(10));
    assert_eq!(rig.s().tcp_state(s), Ok(State::Established));
    rig.run_for(secs(3));
    let pongs: Vec<Pkt> = to_port(&rig, port).into_iter().filter(|p| p.payload == b"pong").collect();
    assert!(pongs.len() >= 2, "resent: {pongs:#?}");
    assert!(pongs.iter().all(|p| p.seq() == synack.seq().wrapping_add(1)));
}

/// A wrong cookie is answered as a request (the data waits, a good cookie
/// comes back); a listener without Fast Open gives no cookie and takes no
/// data; a full Fast Open queue answers a good SYN as an ordinary one,
/// until a connection leaves SYN-RECEIVED.
#[test]
fn wrong_cookies_no_fast_open_and_a_full_queue_take_no_data() {
    let (mut rig, l, template) = rig(43, 1);
    let cookie = get_cookie(&mut rig, &template, FORGED);
    let mut wrong = cookie.as_bytes().to_vec();
    wrong[0] ^= 0x80;
    let port = FORGED + 1;
    rig.inject(TO_SERVER, syn(&template, port, 100, FastOpenCookie::new(&wrong), b"data"));
    rig.run_for(ms(20));
    let synack = to_port(&rig, port).into_iter().find(|p| p.is_synack()).unwrap();
    assert_eq!(synack.ack(), 101);
    assert_eq!(synack.tcp.options.fast_open, Some(cookie), "the good cookie, to replace the wrong one");

    // The queue of one: the first good SYN takes it, the second does not.
    rig.inject(TO_SERVER, syn(&template, FORGED + 2, 200, Some(cookie), b"first"));
    rig.inject(TO_SERVER, syn(&template, FORGED + 3, 300, Some(cookie), b"second"));
    rig.run_for(ms(20));
    let acks: Vec<u32> = [FORGED + 2, FORGED + 3]
        .iter()
        .map(|&p| to_port(&rig, p).into_iter().find(|p| p.is_synack()).unwrap().ack())
        .collect();
    assert_eq!(acks, [206, 301]);
    assert_eq!(rig.s().stats().tcp.fast_open_queue_full, 1);
    // The first completes its handshake; the queue has room again.
    let first_synack = to_port(&rig, FORGED + 2).into_iter().find(|p| p.is_synack()).unwrap();
    rig.inject(TO_SERVER, segment(&template, FORGED + 2, TcpFlags::ACK, 206, first_synack.seq().wrapping_add(1), b""));
    rig.inject(TO_SERVER, syn(&template, FORGED + 4, 400, Some(cookie), b"third"));
    rig.run_for(ms(20));
    assert_eq!(to_port(&rig, FORGED + 4).into_iter().find(|p| p.is_synack()).unwrap().ack(), 406);
    let (s, _) = rig.s().accept(l).unwrap();
    assert_eq!(rig.s().tcp_state(s), Ok(State::Established));

    // Fast Open off on the listener: no cookie, no data taken.
    rig.s().set_option(l, SockOpt::FastOpen(0)).unwrap();
    rig.inject(TO_SERVER, syn(&template, FORGED + 5, 500, Some(cookie), b"off"));
    rig.inject(TO_SERVER, syn(&template, FORGED + 6, 600, None, b""));
    rig.run_for(ms(20));
    for (port, ack) in [(FORGED + 5, 501), (FORGED + 6, 601)] {
        let synack = to_port(&rig, port).into_iter().find(|p| p.is_synack()).unwrap();
        assert_eq!((synack.ack(), synack.tcp.options.fast_open), (ack, None));
    }
}

/// A reset of a connection that took Fast Open data and waits for
/// `accept` in SYN-RECEIVED reaches the application as ECONNRESET, as on
/// Linux; the listener's Fast Open count goes back down.
#[test]
fn a_reset_in_syn_received_after_fast_open_data_is_econnreset() {
    let (mut rig, l, template) = rig(44, 1);
    let cookie = get_cookie(&mut rig, &template, FORGED);
    rig.inject(TO_SERVER, syn(&template, FORGED + 1, 100, Some(cookie), b"x"));
    rig.run_for(ms(20));
    rig.inject(TO_SERVER, segment(&template, FORGED + 1, TcpFlags::RST, 102, 0, b""));
    rig.run_for(ms(20));
    let (s, _) = rig.s().accept(l).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(rig.s().recv(s, &mut buf), Ok(1), "what arrived before the reset is read first");
    assert_eq!(rig.s().recv(s, &mut buf), Err(Error::ConnectionReset));
    rig.s().close(s).unwrap();
    // The queue of one is free again.
    rig.inject(TO_SERVER, syn(&template, FORGED + 2, 200, Some(cookie), b"again"));
    rig.run_for(ms(20));
    assert_eq!(to_port(&rig, FORGED + 2).into_iter().find(|p| p.is_synack()).unwrap().ack(), 206);
}

/// A connection accepted from SYN-RECEIVED is the application's: closing
/// the listener before its handshake ends does not abort it (one still in
/// the accept queue is reset, as any never accepted).
#[test]
fn closing_the_listener_leaves_an_accepted_fast_open_connection_alone() {
    let (mut rig, l, template) = rig(46, 4);
    let cookie = get_cookie(&mut rig, &template, FORGED);
    rig.inject(TO_SERVER, syn(&template, FORGED + 1, 100, Some(cookie), b"mine"));
    rig.inject(TO_SERVER, syn(&template, FORGED + 2, 200, Some(cookie), b"queued"));
    rig.run_for(ms(12));
    let (s, peer) = rig.s().accept(l).unwrap();
    assert_eq!(peer.port(), FORGED + 1);
    rig.s().close(l).unwrap();
    rig.run_for(ms(12));
    assert!(to_port(&rig, FORGED + 2).iter().any(|p| p.is_rst()), "the one never accepted is reset");
    assert!(!to_port(&rig, FORGED + 1).iter().any(|p| p.is_rst()));
    let synack = to_port(&rig, FORGED + 1).into_iter().find(|p| p.is_synack()).unwrap();
    rig.inject(TO_SERVER, segment(&template, FORGED + 1, TcpFlags::ACK, 105, synack.seq().wrapping_add(1), b""));
    rig.run_for(ms(12));
    assert_eq!(rig.s().tcp_state(s), Ok(State::Established));
    let mut buf = [0u8; 8];
    assert_eq!(rig.s().recv(s, &mut buf), Ok(4));
}

/// TCP_FASTOPEN: set before listen or on a listener, read back; EINVAL on
/// a connection; ENOPROTOOPT on UDP.
#[test]
fn the_fast_open_option_is_a_listeners() {
    let mut rig = Rig::new(45);
    let (c, l, _) = rig.establish();
    let s = rig.s();
    let idle = s.tcp_socket().unwrap();
    s.set_option(idle, SockOpt::FastOpen(5)).unwrap();
    assert_eq!(s.get_option(idle, SockOptName::FastOpen), Ok(SockOpt::FastOpen(5)));
    assert_eq!(s.get_option(l, SockOptName::FastOpen), Ok(SockOpt::FastOpen(0)));
    s.set_option(l, SockOpt::FastOpen(100)).unwrap();
    assert_eq!(s.get_option(l, SockOptName::FastOpen), Ok(SockOpt::FastOpen(100)));
    assert_eq!(rig.c().set_option(c, SockOpt::FastOpen(1)), Err(Error::InvalidInput));
    let u = rig.c().udp_socket().unwrap();
    assert_eq!(rig.c().set_option(u, SockOpt::FastOpen(1)), Err(Error::NoProtocolOption));
}

// ---- The client's side: ustack to ustack ------------------------------------

/// A client and a server with Fast Open (queue of 16), nothing dropped.
fn pair(seed: u64) -> (Rig, SocketHandle) {
    let mut rig = RigConfig::new(seed).server_tcp(|t| t.fast_open = 16).build();
    let l = rig.listen(16);
    (rig, l)
}

/// `connect_with_data` from the client, then runs until the server can
/// accept; returns both ends.
fn open_with(rig: &mut Rig, l: SocketHandle, data: &[u8]) -> (SocketHandle, SocketHandle) {
    let c = rig.c().tcp_socket().unwrap();
    assert_eq!(rig.c().connect_with_data(c, server_addr(), data), Ok(data.len()));
    let limit = rig.now() + secs(10);
    rig.run_until_true(limit, "accept", |r| r.s().can_recv(l));
    let (s, _) = rig.s().accept(l).unwrap();
    (c, s)
}

/// The client's SYNs so far.
fn client_syns(rig: &Rig) -> Vec<Pkt> {
    rig.pkts_from(FROM_CLIENT).into_iter().filter(|p| p.is_syn()).collect()
}

/// RFC 7413 §4.1: the first connection asks for a cookie and sends its
/// data after the handshake; the second carries its data in the SYN with
/// the cookie, the SYN-ACK acknowledges it, and the server's answer comes
/// back within one round trip of the SYN.
#[test]
fn a_client_asks_for_a_cookie_then_sends_its_data_in_the_syn() {
    let (mut rig, l) = pair(51);
    let (c1, s1) = open_with(&mut rig, l, b"first");
    let syns = client_syns(&rig);
    assert_eq!(syns.len(), 1);
    assert_eq!(syns[0].tcp.options.fast_open, Some(FastOpenCookie::REQUEST));
    assert!(syns[0].payload.is_empty(), "no cookie yet: no data in the SYN");
    assert_eq!(rig.read_n(s1, 5, rig.now() + secs(2)), b"first");
    assert_eq!(rig.c().stats().tcp.fast_open_active, 0);

    let t0 = rig.now();
    let (c2, s2) = open_with(&mut rig, l, b"second, in the SYN");
    let syn = client_syns(&rig).pop().unwrap();
    assert_eq!(syn.payload, b"second, in the SYN");
    assert!(syn.tcp.options.fast_open.is_some_and(|c| !c.is_request()));
    assert_eq!(rig.s().tcp_state(s2), Ok(State::SynReceived));
    let mut got = [0u8; 64];
    let n = rig.s().recv(s2, &mut got).unwrap();
    assert_eq!(&got[..n], b"second, in the SYN");
    rig.s().send(s2, b"answer").unwrap();
    let limit = rig.now() + secs(2);
    rig.run_until_true(limit, "the answer", |r| r.c().can_recv(c2));
    // One round trip (20 ms on this link; without Fast Open, two).
    assert!(rig.now() - t0 <= ms(21), "answered {:?} after the SYN", rig.now() - t0);
    let mut got = Vec::new();
    let _ = rig.read_some(rig.client, c2, &mut got);
    assert_eq!(got, b"answer");
    assert_eq!(rig.c().stats().tcp.fast_open_active, 1);
    assert_eq!(rig.c().stats().tcp.fast_open_active_acked, 1);
    assert_eq!(rig.s().stats().tcp.fast_open_syn_data, 1);
    let _ = c1;
}

/// A server that does not take the data (Fast Open turned off since it
/// gave the cookie) acknowledges only the SYN; the client sends the data
/// again after the handshake, and every byte arrives once.
#[test]
fn data_a_server_does_not_take_is_sent_again_after_the_handshake() {
    let (mut rig, l) = pair(52);
    let (_, s1) = open_with(&mut rig, l, b"x");
    assert_eq!(rig.read_n(s1, 1, rig.now() + secs(2)), b"x");
    rig.s().set_option(l, SockOpt::FastOpen(0)).unwrap();
    let (_, s2) = open_with(&mut rig, l, b"not taken in the SYN");
    assert_eq!(client_syns(&rig).pop().unwrap().payload, b"not taken in the SYN");
    assert_eq!(rig.read_n(s2, 20, rig.now() + secs(2)), b"not taken in the SYN");
    assert_eq!(rig.c().stats().tcp.fast_open_active_acked, 0);
}

/// The SYN with data is lost: the retransmitted SYN is plain (no data, no
/// cookie), and the data follows the handshake. And when the SYN arrives
/// but its SYN-ACK is lost: the plain SYN that follows draws the SYN-ACK
/// again, which acknowledges the data the first one carried.
#[test]
fn a_lost_syn_with_data_or_a_lost_syn_ack_loses_no_data() {
    for lose_synack in [false, true] {
        let (mut rig, l) = pair(53 + lose_synack as u64);
        let (_, s1) = open_with(&mut rig, l, b"x");
        assert_eq!(rig.read_n(s1, 1, rig.now() + secs(2)), b"x");
        let mut dropped = false;
        rig.set_rule(move |p| {
            let hit = if lose_synack { p.is_synack() } else { p.is_syn() && !p.payload.is_empty() };
            if hit && !dropped {
                dropped = true;
                return Verdict::Drop;
            }
            Verdict::Pass
        });
        let (c2, s2) = open_with(&mut rig, l, b"must arrive once");
        let limit = rig.now() + secs(5);
        rig.run_until_true(limit, "established", |r| r.c().tcp_state(c2) == Ok(State::Established));
        let syns = client_syns(&rig);
        let retransmitted = syns.last().unwrap();
        let brief: Vec<_> =
            syns.iter().map(|p| (p.at, p.payload.len(), p.tcp.options.fast_open.is_some(), p.dropped)).collect();
        assert!(
            retransmitted.payload.is_empty() && retransmitted.tcp.options.fast_open.is_none(),
            "{lose_synack} {brief:?}"
        );
        assert_eq!(rig.read_n(s2, 16, rig.now() + secs(5)), b"must arrive once");
        rig.run_for(secs(1));
        let mut more = Vec::new();
        let _ = rig.read_some(rig.server, s2, &mut more);
        assert!(more.is_empty(), "nothing twice: {more:?}");
        assert_eq!(rig.c().tcp_state(c2), Ok(State::Established));
        assert_eq!(rig.c().stats().tcp.fast_open_active_acked, lose_synack as u64, "lose_synack {lose_synack}");
    }
}

/// Fast Open over a link that loses, reorders, duplicates and corrupts:
/// for forty seeds, eight connections each send a request of 1 byte to
/// nearly three segments with `connect_with_data` (the first asks for the
/// cookie, the others use it), the server reads it to the end and answers,
/// and every byte arrives once and in order each way.
#[test]
fn fast_open_over_a_faulty_link_delivers_every_byte_once() {
    let mut rode = 0;
    for seed in 0..40u64 {
        let link = LinkConfig::default().delay(ms(5)).loss(0.05).reorder(0.05).duplicate(0.05).corrupt(0.01);
        let mut rig = RigConfig::new(100 + seed).link(link).server_tcp(|t| t.fast_open = 4).build();
        let l = rig.listen(16);
        for i in 0..8u8 {
            let request = pattern(1 + (i as usize * 613) % 4000, i);
            let c = rig.c().tcp_socket().unwrap();
            assert_eq!(rig.c().connect_with_data(c, server_addr(), &request), Ok(request.len()));
            let limit = rig.now() + secs(120);
            rig.run_until_true(limit, "accept", |r| r.s().can_recv(l));
            let (s, _) = rig.s().accept(l).unwrap();
            rig.run_until_true(limit, "established", |r| r.c().tcp_state(c) == Ok(State::Established));
            rig.c().shutdown(c, Shutdown::Write).unwrap();
            assert!(rig.read_to_eof(rig.server, s, limit) == request, "seed {seed}, connection {i}: the request");
            let answer = pattern(2000 + i as usize, i ^ 0x55);
            rig.send_all(rig.server, s, &answer);
            rig.s().close(s).unwrap();
            assert!(rig.read_to_eof(rig.client, c, limit) == answer, "seed {seed}, connection {i}: the answer");
            rig.c().close(c).unwrap();
        }
        rode += rig.c().stats().tcp.fast_open_active_acked;
    }
    assert!(rode > 40 * 4, "most connections after the first carried their request in the SYN: {rode}");
}

/// RFC 7413 §4.1.3.1: something on the path drops every SYN with data.
/// The first such SYN times out and the plain SYN sent again gets through;
/// the client then sends no data in its SYNs to that server for an hour
/// (still with the cookie), and after that tries again.
#[test]
fn after_a_syn_with_data_times_out_syns_to_that_server_go_without_data_for_an_hour() {
    let (mut rig, l) = pair(56);
    let (_, s1) = open_with(&mut rig, l, b"x");
    assert_eq!(rig.read_n(s1, 1, rig.now() + secs(2)), b"x");
    rig.set_rule(|p| if p.is_syn() && !p.payload.is_empty() { Verdict::Drop } else { Verdict::Pass });
    let (_, s2) = open_with(&mut rig, l, b"dropped in the SYN");
    assert_eq!(rig.read_n(s2, 18, rig.now() + secs(5)), b"dropped in the SYN");
    let (_, s3) = open_with(&mut rig, l, b"no data in the SYN");
    let syn = client_syns(&rig).pop().unwrap();
    assert!(syn.payload.is_empty() && syn.tcp.options.fast_open.is_some_and(|c| !c.is_request()), "{syn:#?}");
    assert_eq!(rig.read_n(s3, 18, rig.now() + secs(5)), b"no data in the SYN");
    assert_eq!(rig.c().stats().tcp.fast_open_active, 1);
    rig.run_for(secs(3600));
    rig.set_rule(|_| Verdict::Pass);
    let (c4, s4) = open_with(&mut rig, l, b"an hour later");
    assert_eq!(client_syns(&rig).pop().unwrap().payload, b"an hour later");
    assert_eq!(rig.read_n(s4, 13, rig.now() + secs(5)), b"an hour later");
    let limit = rig.now() + secs(5);
    rig.run_until_true(limit, "established", |r| r.c().tcp_state(c4) == Ok(State::Established));
    assert_eq!(rig.c().stats().tcp.fast_open_active_acked, 1);
}
