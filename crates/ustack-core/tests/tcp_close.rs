//! Connection teardown on the simulator (RFC 9293 §3.6): the orderly
//! close, the loss of each of its four segments, simultaneous close,
//! half-close, and TIME-WAIT (2 MSL, retransmitted FINs, RFC 1337).

mod common;

use common::*;
use std::net::SocketAddrV4;
use ustack_core::sim::Verdict;
use ustack_core::tcp::State;
use ustack_core::time::Instant;
use ustack_core::wire::TcpFlags;
use ustack_core::{Error, Shutdown, SocketHandle};

/// MSL for these tests: TIME-WAIT lasts 2 s.
const MSL_MS: u64 = 1000;

fn rig(seed: u64) -> Rig {
    RigConfig::new(seed).tcp(|t| t.msl = ms(MSL_MS)).build()
}

/// Which teardown segment to lose (the first transmission only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lose {
    Nothing,
    /// The client's FIN.
    ClientFin,
    /// The server's ACK of the client's FIN.
    AckOfFin,
    /// The server's FIN.
    ServerFin,
    /// The client's ACK of the server's FIN.
    LastAck,
}

struct Teardown {
    rig: Rig,
    client_local: SocketAddrV4,
    /// When the client application closed.
    client_closed_at: Instant,
    /// When the server application closed.
    server_closed_at: Instant,
}

/// Establishes, sends data both ways, closes the client at once and the
/// server 2 s after it read end of file, losing `lose`. Returns when both
/// connections are gone.
fn teardown(seed: u64, lose: Lose) -> Teardown {
    let mut rig = rig(seed);
    let (c, l, s) = rig.establish();
    rig.s().close(l).unwrap();
    let client_local = rig.c().local_addr(c).unwrap();
    let up = pattern(10_000, 3);
    let down = pattern(7_000, 4);
    rig.send_all(rig.client, c, &up);
    rig.send_all(rig.server, s, &down);
    rig.run_for(ms(500));
    let mut got_down = Vec::new();
    assert_eq!(rig.read_some(rig.client, c, &mut got_down), Ok(false));
    assert!(got_down == down);
    let mut got_up = Vec::new();
    assert_eq!(rig.read_some(rig.server, s, &mut got_up), Ok(false));
    assert!(got_up == up);
    // Let the window updates those reads caused go by.
    rig.run_for(ms(100));

    let mut done = false;
    rig.set_rule(move |p| {
        let hit = match lose {
            Lose::Nothing => false,
            Lose::ClientFin => p.from == FROM_CLIENT && p.is_fin(),
            Lose::AckOfFin => p.from == FROM_SERVER && p.is_pure_ack(),
            Lose::ServerFin => p.from == FROM_SERVER && p.is_fin(),
            Lose::LastAck => p.from == FROM_CLIENT && p.is_pure_ack(),
        };
        if hit && !done {
            done = true;
            return Verdict::Drop;
        }
        Verdict::Pass
    });
    // From here on each side sends only its FIN and pure ACKs for the
    // other's FIN, so "the first pure ACK" is the one meant.
    let client_closed_at = rig.now();
    rig.c().close(c).unwrap();
    let limit = rig.now() + secs(30);
    let rest = rig.read_to_eof(rig.server, s, limit);
    assert!(rest.is_empty());
    rig.run_for(secs(2));
    let server_closed_at = rig.now();
    rig.s().close(s).unwrap();
    rig.run_until_true(limit + secs(30), "both connections gone", |r| {
        r.c().tcp_connections().count() == 0 && r.s().tcp_connections().count() == 0
    });
    assert_eq!(rig.c().socket_count(), 0);
    assert_eq!(rig.s().socket_count(), 0);
    if lose != Lose::Nothing {
        let dropped: Vec<Pkt> = rig.pkts().into_iter().filter(|p| p.dropped).collect();
        assert_eq!(dropped.len(), 1, "exactly the one segment was lost: {dropped:#?}");
    }
    // Nobody reset anything.
    assert!(rig.pkts().iter().all(|p| !p.is_rst()), "no RST in an orderly close");
    Teardown { rig, client_local, client_closed_at, server_closed_at }
}

/// The four segments of an orderly close (RFC 9293 §3.6, figure 12 and
/// the state diagram): <FIN,ACK>, <ACK>, <FIN,ACK>, <ACK>, with the
/// sequence numbers each must carry, each side's state path, and
/// TIME-WAIT lasting 2 MSL before the client's connection is freed.
#[test]
fn orderly_close_rfc9293_3_6() {
    let mut t = teardown(20, Lose::Nothing);
    let p: Vec<Pkt> = t.rig.pkts().into_iter().filter(|p| p.is_fin() || p.at >= t.server_closed_at).collect();
    let fin1 = t.rig.pkts().into_iter().find(|p| p.from == FROM_CLIENT && p.is_fin()).unwrap();
    let after: Vec<Pkt> = t.rig.pkts().into_iter().filter(|p| p.at >= fin1.at).collect();
    assert_eq!(after.len(), 4, "{after:#?} {p:#?}");
    let (a, b, c, d) = (&after[0], &after[1], &after[2], &after[3]);
    assert!(a.from == FROM_CLIENT && a.flags() == TcpFlags::FIN | TcpFlags::ACK && a.payload.is_empty());
    assert!(b.from == FROM_SERVER && b.flags() == TcpFlags::ACK);
    assert_eq!(b.ack(), a.seq().wrapping_add(1), "the FIN takes one sequence number");
    assert!(c.from == FROM_SERVER && c.flags() == TcpFlags::FIN | TcpFlags::ACK);
    assert_eq!((c.seq(), c.ack()), (b.seq(), b.ack()));
    assert!(d.from == FROM_CLIENT && d.flags() == TcpFlags::ACK);
    assert_eq!((d.seq(), d.ack()), (a.seq().wrapping_add(1), c.seq().wrapping_add(1)));
    // The server's FIN went when its application closed.
    assert_eq!(c.at, t.server_closed_at + ms(5));

    let ce = t.rig.client_events();
    let se = t.rig.server_events();
    assert_eq!(
        state_path(&ce, t.client_local),
        [
            State::Closed,
            State::SynSent,
            State::Established,
            State::FinWait1,
            State::FinWait2,
            State::TimeWait,
            State::Closed
        ]
    );
    assert_eq!(
        state_path(&se, server_addr()),
        [State::Listen, State::SynReceived, State::Established, State::CloseWait, State::LastAck, State::Closed]
    );
    // TIME-WAIT: from the server's FIN arriving to exactly 2 MSL later.
    let tw = entered(&ce, t.client_local, State::TimeWait).unwrap();
    assert_eq!(tw, c.at + ms(5));
    let closed = changes(&ce).into_iter().rfind(|ch| ch.local == t.client_local && ch.to == State::Closed).unwrap();
    assert_eq!(closed.from, State::TimeWait);
    assert_eq!(closed.at - tw, ms(2 * MSL_MS));
    // LAST-ACK ends when the last ACK lands.
    let last = changes(&se).into_iter().rfind(|ch| ch.to == State::Closed).unwrap();
    assert_eq!((last.from, last.at), (State::LastAck, d.at + ms(5)));
}

/// The lost transmission and its retransmission: same SEQ, same flags.
fn lost_and_resent(t: &Teardown, pred: impl Fn(&Pkt) -> bool) -> (Pkt, Pkt) {
    let p: Vec<Pkt> = t.rig.pkts().into_iter().filter(|p| p.at >= t.client_closed_at && pred(p)).collect();
    assert!(p.len() >= 2, "{p:#?}");
    assert!(p[0].dropped && !p[1].dropped);
    assert_eq!((p[1].seq(), p[1].flags()), (p[0].seq(), p[0].flags()));
    (p[0].clone(), p[1].clone())
}

/// The client's FIN is lost: it is retransmitted on the RTO (RFC 9293
/// §3.8.1; the FIN is in the retransmission queue like data) and the
/// close completes.
#[test]
fn lost_fin_is_retransmitted_rfc9293_3_6() {
    let mut t = teardown(21, Lose::ClientFin);
    let (lost, resent) = lost_and_resent(&t, |p| p.from == FROM_CLIENT && p.is_fin());
    let rto = resent.at - lost.at;
    assert!(rto >= ms(200) && rto < secs(1), "resent after one RTO: {rto:?}");
    let ce = t.rig.client_events();
    let se = t.rig.server_events();
    assert_eq!(
        state_path(&ce, t.client_local)[3..],
        [State::FinWait1, State::FinWait2, State::TimeWait, State::Closed]
    );
    assert_eq!(state_path(&se, server_addr())[3..], [State::CloseWait, State::LastAck, State::Closed]);
    // CLOSE-WAIT starts only when the retransmitted FIN arrives.
    assert_eq!(entered(&se, server_addr(), State::CloseWait), Some(resent.at + ms(5)));
}

/// The ACK of the client's FIN is lost: the client, still in FIN-WAIT-1,
/// retransmits its FIN; the server, in CLOSE-WAIT, finds it a duplicate
/// (not acceptable) and acknowledges it again (RFC 9293 §3.10.7.4).
#[test]
fn lost_ack_of_fin_rfc9293_3_6() {
    let mut t = teardown(22, Lose::AckOfFin);
    let (lost, resent) = lost_and_resent(&t, |p| p.from == FROM_SERVER && p.is_pure_ack());
    assert_eq!(resent.ack(), lost.ack());
    let fins: Vec<Pkt> = t.rig.pkts().into_iter().filter(|p| p.from == FROM_CLIENT && p.is_fin()).collect();
    assert_eq!(fins.len(), 2, "the client's FIN went twice");
    assert_eq!(fins[1].seq(), fins[0].seq());
    assert!(fins[1].at < t.server_closed_at, "before the server's FIN could acknowledge it");
    let ce = t.rig.client_events();
    let se = t.rig.server_events();
    assert_eq!(
        state_path(&ce, t.client_local)[3..],
        [State::FinWait1, State::FinWait2, State::TimeWait, State::Closed]
    );
    assert_eq!(entered(&ce, t.client_local, State::FinWait2), Some(resent.at + ms(5)));
    assert_eq!(state_path(&se, server_addr())[3..], [State::CloseWait, State::LastAck, State::Closed]);
}

/// The server's FIN is lost: the client waits in FIN-WAIT-2 (its
/// application has closed, but the FIN-WAIT-2 timeout is far away) and
/// the server retransmits the FIN from LAST-ACK.
#[test]
fn lost_second_fin_rfc9293_3_6() {
    let mut t = teardown(23, Lose::ServerFin);
    let (lost, resent) = lost_and_resent(&t, |p| p.from == FROM_SERVER && p.is_fin());
    assert_eq!(lost.at, t.server_closed_at + ms(5));
    let ce = t.rig.client_events();
    let se = t.rig.server_events();
    assert_eq!(
        state_path(&ce, t.client_local)[3..],
        [State::FinWait1, State::FinWait2, State::TimeWait, State::Closed]
    );
    assert_eq!(entered(&ce, t.client_local, State::TimeWait), Some(resent.at + ms(5)));
    assert_eq!(state_path(&se, server_addr())[3..], [State::CloseWait, State::LastAck, State::Closed]);
}

/// The last ACK is lost: the server retransmits its FIN from LAST-ACK;
/// the client in TIME-WAIT acknowledges it again and restarts the 2 MSL
/// timeout (RFC 9293 §3.10.7.4, TIME-WAIT: "The only thing that can arrive
/// in this state is a retransmission of the remote FIN. Acknowledge it,
/// and restart the 2 MSL timeout.").
#[test]
fn lost_last_ack_time_wait_reacks_and_restarts_rfc9293_3_10_7_4() {
    let mut t = teardown(24, Lose::LastAck);
    let (lost, resent) = lost_and_resent(&t, |p| p.from == FROM_CLIENT && p.tcp.flags == TcpFlags::ACK);
    assert_eq!(resent.ack(), lost.ack());
    let fins: Vec<Pkt> = t.rig.pkts().into_iter().filter(|p| p.from == FROM_SERVER && p.is_fin()).collect();
    assert_eq!(fins.len(), 2);
    assert_eq!(fins[1].seq(), fins[0].seq());
    // The re-ACK answers the retransmitted FIN at once.
    assert_eq!(resent.at, fins[1].at + ms(10));
    let ce = t.rig.client_events();
    let se = t.rig.server_events();
    assert_eq!(
        state_path(&ce, t.client_local)[3..],
        [State::FinWait1, State::FinWait2, State::TimeWait, State::Closed]
    );
    assert_eq!(state_path(&se, server_addr())[3..], [State::CloseWait, State::LastAck, State::Closed]);
    // TIME-WAIT ended 2 MSL after the retransmitted FIN arrived, not 2 MSL
    // after it began.
    let closed = changes(&ce).into_iter().rfind(|ch| ch.local == t.client_local && ch.to == State::Closed).unwrap();
    assert_eq!(closed.at, fins[1].at + ms(5) + ms(2 * MSL_MS));
}

/// RFC 9293 §3.6 (figure 13), simultaneous close: both applications close
/// in the same instant; each side receives the other's FIN in FIN-WAIT-1,
/// goes to CLOSING, and on the ACK of its own FIN to TIME-WAIT. Both end in
/// TIME-WAIT for 2 MSL.
#[test]
fn simultaneous_close_closing_then_time_wait_rfc9293_3_6() {
    let mut rig = rig(25);
    let (c, l, s) = rig.establish();
    rig.s().close(l).unwrap();
    rig.run_for(ms(100));
    let client_local = rig.c().local_addr(c).unwrap();
    let t0 = rig.now();
    rig.c().close(c).unwrap();
    rig.s().close(s).unwrap();
    rig.run_for(ms(100));
    let p: Vec<Pkt> = rig.pkts().into_iter().filter(|p| p.at >= t0).collect();
    assert_eq!(p.len(), 4, "two FINs crossing, two ACKs: {p:#?}");
    let fins: Vec<&Pkt> = p.iter().filter(|p| p.is_fin()).collect();
    let acks: Vec<&Pkt> = p.iter().filter(|p| p.flags() == TcpFlags::ACK).collect();
    assert_eq!((fins.len(), acks.len()), (2, 2));
    assert!(fins.iter().all(|f| f.at == t0 + ms(5)), "both FINs left at once");
    for f in &fins {
        // Each FIN is acknowledged by the other side: ACK = FIN's SEQ + 1.
        let ack = acks.iter().find(|a| a.from != f.from).unwrap();
        assert_eq!(ack.ack(), f.seq().wrapping_add(1));
        assert_eq!(ack.seq(), fins.iter().find(|g| g.from != f.from).unwrap().seq().wrapping_add(1));
    }
    let ce = rig.client_events();
    let se = rig.server_events();
    let path = [State::Established, State::FinWait1, State::Closing, State::TimeWait];
    assert_eq!(state_path(&ce, client_local)[2..], path);
    assert_eq!(state_path(&se, server_addr())[2..], path);
    let tw_c = entered(&ce, client_local, State::TimeWait).unwrap();
    let tw_s = entered(&se, server_addr(), State::TimeWait).unwrap();
    assert_eq!((tw_c, tw_s), (t0 + ms(20), t0 + ms(20)));
    // Both wait 2 MSL, then both are gone.
    rig.run_until(tw_c + ms(2 * MSL_MS) - ms(1));
    assert_eq!(rig.c().tcp_connections().map(|(_, c)| c.state()).collect::<Vec<_>>(), [State::TimeWait]);
    assert_eq!(rig.s().tcp_connections().map(|(_, c)| c.state()).collect::<Vec<_>>(), [State::TimeWait]);
    rig.run_for(ms(2));
    assert_eq!(rig.c().tcp_connections().count(), 0);
    assert_eq!(rig.s().tcp_connections().count(), 0);
    assert!(rig.pkts().iter().all(|p| !p.is_rst()));
}

/// Simultaneous close where the first FIN is lost: the client's FIN is
/// dropped, and the server closes 50 ms (five RTTs) later. The server's FIN
/// does not acknowledge the client's, although the client's FIN left long
/// enough ago to have arrived: the client's ACK of it carries the client's
/// FIN again, so both sides reach TIME-WAIT one RTT later, not after the
/// client's retransmission timeout (200 ms or more). A FIN that merely
/// crossed the peer's (less than an RTT old) is not resent: see
/// `simultaneous_close_closing_then_time_wait_rfc9293_3_6`.
#[test]
fn simultaneous_close_resends_a_lost_fin_with_the_ack() {
    let mut rig = rig(27);
    let (c, l, s) = rig.establish();
    rig.s().close(l).unwrap();
    rig.run_for(ms(100));
    let client_local = rig.c().local_addr(c).unwrap();
    let mut dropped = false;
    rig.set_rule(move |p| {
        if p.from == FROM_CLIENT && p.is_fin() && !dropped {
            dropped = true;
            Verdict::Drop
        } else {
            Verdict::Pass
        }
    });
    let t0 = rig.now();
    rig.c().close(c).unwrap();
    rig.run_for(ms(50));
    assert_eq!(rig.c().tcp_state(c), Ok(State::FinWait1));
    rig.s().close(s).unwrap();
    rig.run_for(ms(50));
    let p: Vec<Pkt> = rig.pkts().into_iter().filter(|p| p.at >= t0).collect();
    let client_fins: Vec<&Pkt> = p.iter().filter(|p| p.from == FROM_CLIENT && p.is_fin()).collect();
    let server_fin = p.iter().find(|p| p.from == FROM_SERVER && p.is_fin()).unwrap();
    assert_eq!(client_fins.len(), 2, "{p:#?}");
    assert!(client_fins[0].dropped);
    // The second FIN is the ACK of the server's FIN, sent when it arrived.
    let resent = client_fins[1];
    assert_eq!((resent.seq(), resent.ack()), (client_fins[0].seq(), server_fin.seq().wrapping_add(1)));
    assert_eq!(resent.at, server_fin.at + ms(10), "{p:#?}");
    assert_eq!(p.iter().filter(|p| p.from == FROM_CLIENT).count(), 2, "no separate ACK: {p:#?}");
    let ce = rig.client_events();
    assert_eq!(
        state_path(&ce, client_local)[2..],
        [State::Established, State::FinWait1, State::Closing, State::TimeWait]
    );
    let tw = entered(&ce, client_local, State::TimeWait).unwrap();
    assert!(tw < t0 + ms(100), "TIME-WAIT at {tw}, one RTT after the resent FIN");
    assert_eq!(rig.s().tcp_state(s), Ok(State::TimeWait));
    assert!(rig.pkts().iter().all(|p| !p.is_rst()));
}

/// The client closes, then the server, and the client's ACK of the
/// server's FIN is lost: the server is left in LAST-ACK. Returns the
/// client's FIN and the server's FIN.
fn to_last_ack(seed: u64) -> (Rig, Pkt, Pkt) {
    let mut rig = rig(seed);
    let (c, l, s) = rig.establish();
    rig.s().close(l).unwrap();
    rig.c().close(c).unwrap();
    rig.run_for(ms(50));
    rig.set_rule(|p| if p.from == FROM_CLIENT && p.is_pure_ack() { Verdict::Drop } else { Verdict::Pass });
    rig.s().close(s).unwrap();
    rig.run_for(ms(20));
    assert_eq!(rig.s().tcp_state(s), Ok(State::LastAck));
    let client_fin = rig.pkts_from(FROM_CLIENT).into_iter().find(|p| p.is_fin()).unwrap();
    let server_fin = rig.last_from(FROM_SERVER);
    assert!(server_fin.is_fin());
    (rig, client_fin, server_fin)
}

/// An old duplicate whose ACK field is new: in LAST-ACK, an ACK of our FIN
/// that reuses the peer's FIN's sequence number (one behind RCV.NXT, so
/// RFC 9293's sequence check alone would only answer it) ends the
/// connection, as on the BSDs; nothing answers it, since the connection is
/// gone. A segment further behind than one receive buffer is answered
/// and dropped as RFC 9293 says, and changes nothing.
#[test]
fn last_ack_takes_the_ack_of_an_old_duplicate_within_a_buffer() {
    let (mut rig, client_fin, server_fin) = to_last_ack(33);
    let our_fin_acked = server_fin.seq().wrapping_add(1);
    let far_behind = client_fin.seq().wrapping_sub(32 << 20);
    let before = rig.pkts().len();
    rig.inject(
        TO_SERVER,
        forge(&client_fin, &forged_header(&client_fin, TcpFlags::ACK, far_behind, our_fin_acked), &[]),
    );
    rig.run_for(ms(20));
    let answers: Vec<Pkt> = rig.pkts()[before..].iter().filter(|p| p.from == FROM_SERVER).cloned().collect();
    assert_eq!(answers.len(), 1, "{answers:#?}");
    assert_eq!(answers[0].flags(), TcpFlags::ACK);
    assert_eq!((answers[0].seq(), answers[0].ack()), (our_fin_acked, client_fin.seq().wrapping_add(1)));
    assert_eq!(rig.s().tcp_connections().map(|(_, c)| c.state()).collect::<Vec<_>>(), [State::LastAck]);

    let before = rig.pkts().len();
    rig.inject(
        TO_SERVER,
        forge(&client_fin, &forged_header(&client_fin, TcpFlags::ACK, client_fin.seq(), our_fin_acked), &[]),
    );
    rig.run_for(ms(20));
    assert_eq!(rig.s().tcp_connections().count(), 0);
    assert!(rig.pkts()[before..].iter().all(|p| p.from != FROM_SERVER), "nothing answers");
    let closed = changes(&rig.server_events()).into_iter().rfind(|ch| ch.to == State::Closed).unwrap();
    assert_eq!(closed.from, State::LastAck);
}

/// The same in CLOSING: after a simultaneous close whose last ACK toward
/// the server was lost, the client's FIN comes again, now acknowledging
/// the server's FIN. Its FIN is old, its ACK new: the server goes to
/// TIME-WAIT at once, without waiting to resend its own FIN, and
/// acknowledges the retransmitted FIN as TIME-WAIT does (RFC 9293
/// §3.10.7.4).
#[test]
fn closing_takes_the_ack_of_a_retransmitted_fin() {
    let mut rig = rig(34);
    let (c, l, s) = rig.establish();
    rig.s().close(l).unwrap();
    rig.run_for(ms(100));
    rig.set_rule(|p| if p.from == FROM_CLIENT && p.is_pure_ack() { Verdict::Drop } else { Verdict::Pass });
    rig.c().close(c).unwrap();
    rig.s().close(s).unwrap();
    rig.run_for(ms(30));
    assert_eq!(rig.s().tcp_state(s), Ok(State::Closing));
    let client_fin = rig.pkts_from(FROM_CLIENT).into_iter().find(|p| p.is_fin()).unwrap();
    let server_fin = rig.pkts_from(FROM_SERVER).into_iter().find(|p| p.is_fin()).unwrap();
    assert_ne!(client_fin.ack(), server_fin.seq().wrapping_add(1), "the FINs crossed");

    let before = rig.pkts().len();
    let again =
        forged_header(&client_fin, TcpFlags::FIN | TcpFlags::ACK, client_fin.seq(), server_fin.seq().wrapping_add(1));
    rig.inject(TO_SERVER, forge(&client_fin, &again, &[]));
    rig.run_for(ms(20));
    assert_eq!(rig.s().tcp_state(s), Ok(State::TimeWait));
    let answers: Vec<Pkt> = rig.pkts()[before..].iter().filter(|p| p.from == FROM_SERVER).cloned().collect();
    assert_eq!(answers.len(), 1, "{answers:#?}");
    assert_eq!(answers[0].flags(), TcpFlags::ACK);
    assert_eq!(answers[0].ack(), client_fin.seq().wrapping_add(1));
    // No retransmission of the server's FIN follows: it is acknowledged.
    rig.run_for(secs(1));
    assert_eq!(rig.pkts_from(FROM_SERVER).iter().filter(|p| p.is_fin()).count(), 1);
}

/// Half-close (RFC 9293 §3.6, RFC 1122 §4.2.2.13): after shutdown(Write)
/// the client's FIN goes, it cannot send any more (EPIPE), and it keeps
/// receiving for two minutes, longer than the FIN-WAIT-2 timeout of an
/// orphan (60 s), because its application still holds the socket.
#[test]
fn half_close_keeps_receiving_rfc9293_3_6() {
    let mut rig = rig(26);
    let (c, l, s) = rig.establish();
    rig.s().close(l).unwrap();
    let client_local = rig.c().local_addr(c).unwrap();
    rig.c().send(c, b"request").unwrap();
    rig.c().shutdown(c, Shutdown::Write).unwrap();
    assert_eq!(rig.c().send(c, b"more"), Err(Error::BrokenPipe));
    rig.run_for(ms(100));
    assert_eq!(rig.c().tcp_state(c), Ok(State::FinWait2));
    assert_eq!(rig.s().tcp_state(s), Ok(State::CloseWait));
    let mut req = Vec::new();
    assert_eq!(rig.read_some(rig.server, s, &mut req), Ok(true), "server read the request, then end of file");
    assert_eq!(req, b"request");

    // The server answers for two minutes, a chunk a second.
    let mut expected = Vec::new();
    let mut got = Vec::new();
    for i in 0..120u64 {
        let chunk = pattern(1000 + (i as usize % 7) * 100, i as u8);
        rig.send_all(rig.server, s, &chunk);
        expected.extend_from_slice(&chunk);
        rig.run_for(secs(1));
        assert_eq!(rig.read_some(rig.client, c, &mut got), Ok(false), "no end of file yet at {i} s");
        assert_eq!(rig.c().tcp_state(c), Ok(State::FinWait2), "still FIN-WAIT-2 after {i} s");
    }
    assert_eq!(got.len(), expected.len());
    assert!(got == expected);
    rig.s().close(s).unwrap();
    rig.run_for(ms(100));
    assert_eq!(rig.read_some(rig.client, c, &mut got), Ok(true));
    assert_eq!(rig.c().tcp_state(c), Ok(State::TimeWait));
    let ce = rig.client_events();
    assert_eq!(
        state_path(&ce, client_local)[2..],
        [State::Established, State::FinWait1, State::FinWait2, State::TimeWait]
    );
    // The client acknowledged every byte and sent nothing else after its FIN.
    let fin = rig.pkts().into_iter().find(|p| p.from == FROM_CLIENT && p.is_fin()).unwrap();
    assert!(rig.pkts_from(FROM_CLIENT).iter().filter(|p| p.at > fin.at).all(|p| p.payload.is_empty() && !p.is_fin()));
    rig.c().close(c).unwrap();
}

/// An orphan in FIN-WAIT-2 (its application closed, the peer never
/// sends its FIN) is not kept forever: it goes after `fin_wait2_timeout`
/// (RFC 9293 leaves FIN-WAIT-2 open-ended; Linux tcp_fin_timeout).
#[test]
fn orphan_fin_wait_2_times_out_rfc9293_3_6() {
    let mut rig = RigConfig::new(27).client_tcp(|t| t.fin_wait2_timeout = secs(10)).build();
    let (c, l, s) = rig.establish();
    rig.s().close(l).unwrap();
    let client_local = rig.c().local_addr(c).unwrap();
    rig.c().close(c).unwrap();
    rig.run_for(secs(9));
    assert_eq!(rig.c().tcp_connections().map(|(_, c)| c.state()).collect::<Vec<_>>(), [State::FinWait2]);
    rig.run_for(secs(2));
    assert_eq!(rig.c().tcp_connections().count(), 0);
    let ce = rig.client_events();
    let fw2 = entered(&ce, client_local, State::FinWait2).unwrap();
    let closed = changes(&ce).into_iter().rfind(|ch| ch.to == State::Closed).unwrap();
    assert_eq!((closed.from, closed.at - fw2), (State::FinWait2, secs(10)));
    assert_eq!(rig.s().tcp_state(s), Ok(State::CloseWait));
}

/// TIME-WAIT lasts exactly 2 MSL (RFC 9293 §3.6 and §3.10.7.4), whatever
/// MSL is configured, and holds the 4-tuple meanwhile.
#[test]
fn time_wait_lasts_2msl_rfc9293_3_6() {
    for msl in [500u64, 3000] {
        let mut rig = RigConfig::new(28).tcp(|t| t.msl = ms(msl)).build();
        let (c, l, s) = rig.establish();
        rig.s().close(l).unwrap();
        let client_local = rig.c().local_addr(c).unwrap();
        rig.c().close(c).unwrap();
        rig.run_for(ms(50));
        rig.s().close(s).unwrap();
        rig.run_for(ms(50));
        let ce = rig.client_events();
        let tw = entered(&ce, client_local, State::TimeWait).unwrap();
        rig.run_until(tw + ms(2 * msl) - ms(1));
        assert_eq!(rig.c().tcp_connections().map(|(_, c)| c.state()).collect::<Vec<_>>(), [State::TimeWait]);
        // The port is held: binding it fails (EADDRINUSE) without SO_REUSEADDR.
        let h = rig.c().tcp_socket().unwrap();
        assert_eq!(rig.c().bind(h, client_local), Err(Error::AddrInUse));
        rig.run_until(tw + ms(2 * msl));
        assert_eq!(rig.c().tcp_connections().count(), 0, "gone at exactly 2 MSL");
        assert_eq!(rig.c().bind(h, client_local), Ok(()));
        let ce = rig.client_events();
        let closed = changes(&ce).into_iter().rfind(|ch| ch.local == client_local && ch.to == State::Closed).unwrap();
        assert_eq!((closed.from, closed.at), (State::TimeWait, tw + ms(2 * msl)));
    }
}

/// Brings the client to TIME-WAIT; returns the rig, the client's local
/// address, when TIME-WAIT began, and the server's FIN (the last segment
/// it sent).
fn to_time_wait(seed: u64, rfc1337: bool) -> (Rig, SocketAddrV4, Instant, Pkt, SocketHandle) {
    let mut rig = RigConfig::new(seed)
        .tcp(|t| {
            t.msl = ms(MSL_MS);
            t.rfc1337 = rfc1337;
        })
        .build();
    let (c, l, s) = rig.establish();
    rig.s().close(l).unwrap();
    let client_local = rig.c().local_addr(c).unwrap();
    rig.c().close(c).unwrap();
    rig.run_for(ms(50));
    rig.s().close(s).unwrap();
    rig.run_for(ms(50));
    let ce = rig.client_events();
    let tw = entered(&ce, client_local, State::TimeWait).unwrap();
    let fin = rig.last_from(FROM_SERVER);
    assert!(fin.is_fin());
    (rig, client_local, tw, fin, c)
}

/// RFC 1337 §3 (TIME-WAIT assassination, TIME-WAIT hazard H1): a RST that
/// arrives in TIME-WAIT, even one with exactly the expected sequence
/// number, is ignored; TIME-WAIT runs its full 2 MSL and nothing answers
/// the RST.
#[test]
fn time_wait_ignores_rst_rfc1337() {
    let (mut rig, client_local, tw, fin, _) = to_time_wait(29, true);
    let rst = forged_header(&fin, TcpFlags::RST, fin.seq().wrapping_add(1), 0);
    rig.run_for(ms(300));
    let before = rig.pkts().len();
    rig.inject(TO_CLIENT, forge(&fin, &rst, &[]));
    rig.run_for(ms(100));
    assert_eq!(rig.c().tcp_connections().map(|(_, c)| c.state()).collect::<Vec<_>>(), [State::TimeWait]);
    assert_eq!(rig.pkts().len(), before, "the RST is not answered");
    rig.run_until(tw + ms(2 * MSL_MS) - ms(1));
    assert_eq!(rig.c().tcp_connections().count(), 1);
    rig.run_for(ms(1));
    assert_eq!(rig.c().tcp_connections().count(), 0);
    let closed = changes(&rig.client_events()).into_iter().rfind(|ch| ch.to == State::Closed).unwrap();
    assert_eq!((closed.local, closed.from, closed.at), (client_local, State::TimeWait, tw + ms(2 * MSL_MS)));
}

/// The contrast: with RFC 1337 protection off, the same RST ends TIME-WAIT
/// at once, as RFC 9293 §3.10.7.4 (second check, TIME-WAIT) says.
#[test]
fn time_wait_rst_closes_without_rfc1337_rfc9293_3_10_7_4() {
    let (mut rig, _, tw, fin, _) = to_time_wait(30, false);
    let rst = forged_header(&fin, TcpFlags::RST, fin.seq().wrapping_add(1), 0);
    rig.run_for(ms(300));
    rig.inject(TO_CLIENT, forge(&fin, &rst, &[]));
    rig.run_for(ms(10));
    assert_eq!(rig.c().tcp_connections().count(), 0);
    assert!(rig.now() < tw + ms(2 * MSL_MS));
}

/// A retransmitted FIN (here forged: the server's FIN again) in TIME-WAIT
/// is acknowledged and restarts the 2 MSL timeout (RFC 9293 §3.10.7.4),
/// each time it comes.
#[test]
fn time_wait_reacks_retransmitted_fin_and_restarts_timer_rfc9293_3_10_7_4() {
    let (mut rig, client_local, tw, fin, _) = to_time_wait(31, true);
    let last_ack = rig.last_from(FROM_CLIENT);
    let mut restarts = Vec::new();
    for delay in [1500u64, 1500] {
        rig.run_for(ms(delay));
        assert_eq!(rig.c().tcp_connections().count(), 1, "still in TIME-WAIT");
        let before = rig.pkts().len();
        rig.inject(TO_CLIENT, fin.frame.clone());
        rig.run_for(ms(20));
        // (The server, long closed, answers the client's ACK with a RST,
        // which TIME-WAIT ignores as RFC 1337 says.)
        let answers: Vec<Pkt> = rig.pkts()[before..].iter().filter(|p| p.from == FROM_CLIENT).cloned().collect();
        assert_eq!(answers.len(), 1, "{answers:#?}");
        assert_eq!(answers[0].flags(), TcpFlags::ACK);
        assert_eq!((answers[0].seq(), answers[0].ack()), (last_ack.seq(), last_ack.ack()));
        restarts.push(answers[0].at - ms(5));
    }
    let end = *restarts.last().unwrap() + ms(2 * MSL_MS);
    assert!(end > tw + ms(2 * MSL_MS) + secs(2));
    rig.run_until(end - ms(1));
    assert_eq!(rig.c().tcp_connections().count(), 1);
    rig.run_until(end);
    assert_eq!(rig.c().tcp_connections().count(), 0);
    let closed = changes(&rig.client_events()).into_iter().rfind(|ch| ch.to == State::Closed).unwrap();
    assert_eq!((closed.local, closed.at), (client_local, end));
}

/// In TIME-WAIT, an ACK whose sequence number is not RCV.NXT (in the
/// window, here one past it) is answered with our ACK, as Linux and FreeBSD
/// do, without restarting the 2 MSL timer; a duplicate of the last ACK is
/// not answered (RFC 9293 §3.10.7.4 asks for an ACK only for the FIN; the
/// answer tells a peer that lost track where the connection stands).
#[test]
fn time_wait_answers_an_ack_off_rcv_nxt_but_not_a_duplicate_rfc9293_3_10_7_4() {
    let (mut rig, _, tw, fin, _) = to_time_wait(32, true);
    let last_ack = rig.last_from(FROM_CLIENT);
    let rcv_nxt = fin.seq().wrapping_add(1);
    rig.run_for(ms(300));
    for (seq, answered) in [(rcv_nxt, false), (rcv_nxt.wrapping_add(1), true)] {
        let before = rig.pkts().len();
        let ack = forged_header(&fin, TcpFlags::ACK, seq, fin.ack());
        rig.inject(TO_CLIENT, forge(&fin, &ack, &[]));
        rig.run_for(ms(20));
        let answers: Vec<Pkt> = rig.pkts()[before..].iter().filter(|p| p.from == FROM_CLIENT).cloned().collect();
        if answered {
            assert_eq!(answers.len(), 1, "{answers:#?}");
            assert_eq!(answers[0].flags(), TcpFlags::ACK);
            assert_eq!((answers[0].seq(), answers[0].ack()), (last_ack.seq(), last_ack.ack()));
        } else {
            assert!(answers.is_empty(), "{answers:#?}");
        }
    }
    rig.run_until(tw + ms(2 * MSL_MS));
    assert_eq!(rig.c().tcp_connections().count(), 0, "the timer was not restarted");
}

/// A FIN that arrives before the data in front of it (the last data
/// segment was lost) is held (RFC 9293 §3.10.7.4, eighth step: "do not
/// process the FIN if the state is ... and the sequence number is not
/// RCV.NXT"): no CLOSE-WAIT, no end of file, until the retransmission
/// fills the hole; then both come at once, after every byte.
#[test]
fn fin_after_hole_waits_for_the_data_rfc9293_3_10_7_4() {
    let mut rig = rig(32);
    let (c, l, s) = rig.establish();
    rig.s().close(l).unwrap();
    let mut n = 0;
    rig.set_rule(move |p| {
        if p.from == FROM_CLIENT && !p.payload.is_empty() {
            n += 1;
            if n == 2 {
                return Verdict::Drop;
            }
        }
        Verdict::Pass
    });
    let data = pattern(3 * 1448 - 100, 8);
    rig.c().send(c, &data).unwrap();
    rig.c().shutdown(c, Shutdown::Write).unwrap();
    rig.run_for(ms(30));
    let sent: Vec<Pkt> = rig.pkts_from(FROM_CLIENT).into_iter().filter(|p| !p.payload.is_empty()).collect();
    assert_eq!(sent.len(), 3);
    assert!(sent[2].is_fin(), "the FIN rides on the last data segment");
    // The FIN arrived out of order: still ESTABLISHED, no end of file.
    assert_eq!(rig.s().tcp_state(s), Ok(State::Established));
    let mut got = Vec::new();
    assert_eq!(rig.read_some(rig.server, s, &mut got), Ok(false));
    assert_eq!(got.len(), 1448);
    // Its ACK asks for the hole and SACKs the data and the FIN beyond it.
    let dup = rig.last_from(FROM_SERVER);
    assert_eq!(dup.ack(), sent[1].seq());
    assert_eq!(dup.tcp.options.sack_blocks.as_slice()[0], (sent[2].seq(), sent[2].end()));
    rig.run_for(secs(1));
    assert_eq!(rig.s().tcp_state(s), Ok(State::CloseWait));
    assert_eq!(rig.read_some(rig.server, s, &mut got), Ok(true));
    assert!(got == data);
    assert_eq!(rig.last_from(FROM_SERVER).ack(), sent[2].end(), "data and FIN acknowledged");
}

/// RFC 6191 (and RFC 9293 §3.10.7.4's note on TIME-WAIT): a new SYN for
/// the 4-tuple of a connection in TIME-WAIT, with a newer timestamp, is
/// accepted by the listener as a new connection rather than answered as
/// a stray segment.
#[test]
fn time_wait_accepts_new_syn_rfc9293_3_6_1_rfc6191() {
    let mut rig = RigConfig::new(33).tcp(|t| t.msl = secs(30)).build();
    let (c, l, s) = rig.establish();
    let client_local = rig.c().local_addr(c).unwrap();
    // The server closes first and keeps TIME-WAIT.
    rig.s().close(s).unwrap();
    rig.run_for(ms(50));
    rig.c().close(c).unwrap();
    rig.run_for(ms(500));
    assert_eq!(rig.s().tcp_connections().map(|(_, c)| c.state()).collect::<Vec<_>>(), [State::TimeWait]);
    assert_eq!(rig.c().tcp_connections().count(), 0);
    // The same client port again.
    let c2 = rig.c().tcp_socket().unwrap();
    rig.c().bind(c2, client_local).unwrap();
    rig.c().connect(c2, server_addr()).unwrap();
    rig.run_for(ms(100));
    assert_eq!(rig.c().tcp_state(c2), Ok(State::Established));
    let (s2, remote) = rig.s().accept(l).unwrap();
    assert_eq!(remote, client_local);
    assert_eq!(rig.s().tcp_state(s2), Ok(State::Established));
    assert_eq!(rig.s().tcp_connections().count(), 1, "the TIME-WAIT connection gave way");
    rig.c().send(c2, b"again").unwrap();
    rig.run_for(ms(100));
    let mut got = Vec::new();
    rig.read_some(rig.server, s2, &mut got).unwrap();
    assert_eq!(got, b"again");
}

/// CLOSE with data still queued (RFC 9293 §3.10.4: "all preceding SENDs
/// ... will be transmitted" before the FIN): the application writes 200 KB
/// into a connection limited by a small receive window and closes at once;
/// the orphaned connection keeps sending until everything is delivered,
/// then the FIN.
#[test]
fn close_flushes_queued_data_then_fin_rfc9293_3_10_4() {
    let mut rig = RigConfig::new(34).server_tcp(|t| t.recv_buffer = 32 * 1024).build();
    let (c, _l, s) = rig.establish();
    let data = pattern(200_000, 11);
    assert_eq!(rig.c().send(c, &data), Ok(200_000));
    rig.c().close(c).unwrap();
    assert_eq!(rig.c().tcp_connections().map(|(_, c)| c.state()).collect::<Vec<_>>(), [State::FinWait1]);
    let got = rig.read_to_eof(rig.server, s, rig.now() + secs(60));
    assert!(got == data);
    let fin = rig.pkts_from(FROM_CLIENT).into_iter().find(|p| p.is_fin()).unwrap();
    let last_data =
        rig.pkts_from(FROM_CLIENT).into_iter().filter(|p| !p.payload.is_empty()).max_by_key(|p| p.at).unwrap();
    assert!(fin.at >= last_data.at && fin.end() == last_data.end() + u32::from(!last_data.is_fin()));
    assert!(rig.pkts().iter().all(|p| !p.is_rst()));
    rig.s().close(s).unwrap();
    rig.run_for(secs(120));
    assert_eq!(rig.c().tcp_connections().count(), 0);
    assert_eq!(rig.c().socket_count(), 0);
}

/// Many short connections over a link that loses, reorders and duplicates
/// 10%, 5% and 5% of frames: every one delivers its bytes and closes, and
/// once TIME-WAIT has passed neither stack holds a socket, connection or
/// buffer: no teardown path leaks.
#[test]
fn lossy_teardowns_leave_nothing_behind_rfc9293_3_6() {
    use ustack_core::sim::LinkConfig;
    use ustack_core::sim::apps::{CloseMode, StreamApp};
    for seed in 0..6 {
        let link = LinkConfig::default().delay(ms(5)).loss(0.10).reorder(0.05).duplicate(0.05);
        let mut rig = RigConfig::new(35 + seed).link(link).tcp(|t| t.msl = ms(MSL_MS)).build();
        let mode = if seed % 2 == 0 { CloseMode::HalfClose } else { CloseMode::Close };
        // A client that closes without reading resets a connection on
        // which data still arrives (RFC 1122 §4.2.2.13): then the server
        // sends nothing.
        let down = if mode == CloseMode::HalfClose { 3000 } else { 0 };
        rig.net.host_mut(rig.server).add_app(StreamApp::server(server_addr(), down, 1).with_connections(30));
        rig.net
            .host_mut(rig.client)
            .add_app(StreamApp::client(server_addr(), 4000, 2).with_connections(30).with_close_mode(mode));
        let (client, server) = (rig.client, rig.server);
        rig.run_until_true(Instant::from_secs(600), "30 connections", |r| {
            r.net.host(client).app::<StreamApp>(0).unwrap().is_done()
                && r.net.host(server).app::<StreamApp>(0).unwrap().is_done()
        });
        let cr = rig.net.host(client).app::<StreamApp>(0).unwrap().reports();
        let sr = rig.net.host(server).app::<StreamApp>(0).unwrap().reports();
        assert_eq!((cr.len(), sr.len()), (30, 30));
        for r in &sr {
            assert_eq!(r.error, None, "seed {seed}");
            assert_eq!(r.received.len, 4000, "seed {seed}: the server got every client's bytes");
            let c = cr.iter().find(|c| c.local == r.remote).unwrap();
            assert_eq!(r.received, c.sent, "seed {seed}");
            assert_eq!(c.received, r.sent, "seed {seed}");
        }
        // Long enough for any retransmission, FIN-WAIT-2 and TIME-WAIT.
        rig.run_for(secs(200));
        for (name, node) in [("client", client), ("server", server)] {
            let st = &rig.net.host(node).stack;
            let left: Vec<String> =
                st.tcp_connections().map(|(_, c)| format!("{} {}", c.remote(), c.state())).collect();
            assert!(left.is_empty(), "seed {seed}: {name} still holds {left:?}");
            assert_eq!(st.socket_count(), 0, "seed {seed}: {name}");
            assert_eq!(st.buffer_bytes(), 0, "seed {seed}: {name}");
        }
    }
}
