//! "TCP in full", defences: blind in-window attacks during a live
//! transfer (RFC 5961 §3-5) and the stack-wide challenge-ACK rate limit
//! (RFC 5961 §7). The single-segment checks are in `tcp_reset.rs`, the
//! SYN-queue and accept-queue bounds in `tcp_syncookies.rs` and
//! `tcp_handshake.rs`, RFC 1337 in `tcp_close.rs`.

mod common;

use common::*;
use ustack_core::stats::DropReason;
use ustack_core::tcp::State;
use ustack_core::wire::{TcpFlags, TcpRepr};
use ustack_core::{Error, SocketHandle};

/// A small deterministic generator for the attacker's guesses.
struct Guess(u64);

impl Guess {
    fn below(&mut self, n: u32) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as u32
    }
}

/// Sends `data` from the client while the server reads it, calling
/// `attack` before every step; returns what the server read.
fn pump_under_attack(
    rig: &mut Rig,
    c: SocketHandle,
    s: SocketHandle,
    data: &[u8],
    mut attack: impl FnMut(&mut Rig),
) -> Vec<u8> {
    let (mut off, mut got) = (0, Vec::new());
    let limit = rig.now() + secs(60);
    while got.len() < data.len() {
        off += rig.c().send(c, &data[off..]).unwrap_or(0);
        rig.read_some(rig.server, s, &mut got).unwrap();
        attack(rig);
        if got.len() < data.len() {
            assert!(rig.step_before(limit), "stalled at {} bytes", got.len());
        }
    }
    got
}

/// RFC 5961 §3-5, as the issue words it: spoofed RSTs, SYNs and data with
/// in-window but not exact sequence numbers, sprayed at both ends of a
/// live transfer, never kill or corrupt the connection: each draws at
/// most a challenge ACK, the injected bytes are never delivered, the
/// stream arrives intact. The exact-match RST does reset.
#[test]
fn blind_in_window_rst_syn_and_data_never_kill_or_corrupt_rfc5961_3_to_5() {
    let mut rig = Rig::new(1000);
    let (c, _l, s) = rig.establish();
    let data = pattern(2_000_000, 1);
    let mut guess = Guess(0x9e37_79b9_7f4a_7c15);
    let mut last = rig.now();
    let mut sprayed = 0;
    let got = pump_under_attack(&mut rig, c, s, &data, |rig| {
        if rig.now() < last + ms(2) {
            return;
        }
        last = rig.now();
        // Toward the client, which only receives ACKs: its RCV.NXT is the
        // server's SND.NXT, so "in the window, not exact" is known.
        let srv = rig.last_from(FROM_SERVER);
        let rcv_nxt = srv.seq();
        let off = 1 + guess.below(60_000);
        let rst = forged_header(&srv, TcpFlags::RST, rcv_nxt.wrapping_add(off), 0);
        rig.inject(TO_CLIENT, forge(&srv, &rst, &[]));
        let mut syn = forged_header(&srv, TcpFlags::SYN, rcv_nxt.wrapping_add(guess.below(1 << 20)), 0);
        syn.options.mss = Some(536);
        rig.inject(TO_CLIENT, forge(&srv, &syn, &[]));
        // Data at exactly RCV.NXT, but with an ACK a blind attacker got
        // wrong (far behind SND.UNA, RFC 5961 §5.2).
        let bad_ack = srv.ack().wrapping_sub((1 << 30) + guess.below(1 << 20));
        let evil = forged_header(&srv, TcpFlags::ACK | TcpFlags::PSH, rcv_nxt, bad_ack);
        rig.inject(TO_CLIENT, forge(&srv, &evil, b"EVIL"));
        // Toward the server: a SYN, and data in its window with a wrong ACK.
        let cli = rig.last_from(FROM_CLIENT);
        let mut syn = forged_header(&cli, TcpFlags::SYN, cli.end().wrapping_add(guess.below(1 << 16)), 0);
        syn.options.mss = Some(536);
        rig.inject(TO_SERVER, forge(&cli, &syn, &[]));
        let bad_ack = cli.ack().wrapping_sub((1 << 30) + guess.below(1 << 20));
        let seq = cli.end().wrapping_add(guess.below(30_000));
        let evil = forged_header(&cli, TcpFlags::ACK, seq, bad_ack);
        rig.inject(TO_SERVER, forge(&cli, &evil, &[0xEE; 700]));
        sprayed += 1;
    });
    assert!(sprayed > 50, "the attack ran through the transfer: {sprayed} rounds");
    assert!(got == data, "the stream arrived intact");
    assert_eq!(rig.c().tcp_state(c), Ok(State::Established));
    assert_eq!(rig.s().tcp_state(s), Ok(State::Established));
    let mut sink = Vec::new();
    assert_eq!(rig.read_some(rig.client, c, &mut sink), Ok(false));
    assert!(sink.is_empty(), "no injected byte reached the client");
    assert_eq!(rig.c().tcp_info(c).unwrap().bytes_received, 0);
    for st in [rig.c().stats().clone(), rig.s().stats().clone()] {
        assert!(st.tcp.challenge_acks > 0);
        assert!(st.drops(DropReason::TcpBadAck) > 0);
        assert_eq!(st.tcp.resets_in, 0, "no RST was taken");
    }

    // The exact-match RST (SEQ = RCV.NXT) resets.
    rig.run_for(ms(100));
    let srv = rig.last_from(FROM_SERVER);
    let rst = forged_header(&srv, TcpFlags::RST, srv.seq(), 0);
    rig.inject(TO_CLIENT, forge(&srv, &rst, &[]));
    rig.run_for(ms(10));
    assert_eq!(rig.c().tcp_state(c), Ok(State::Closed));
    let mut buf = [0u8; 8];
    assert_eq!(rig.c().recv(c, &mut buf), Err(Error::ConnectionReset));
}

/// RFC 5961 §7: challenge ACKs are limited stack-wide, 1000 a second by
/// default, counted in one-second periods (as Linux counts them, so a
/// sliding second that straddles two periods may see two budgets). A
/// three-second flood of in-window RSTs across four connections, 4000 a
/// second, draws about 3000 challenge ACKs, not 12000; the excess is
/// counted, and the connections survive.
#[test]
fn challenge_acks_limited_to_1000_per_second_stack_wide_rfc5961_7() {
    let mut rig = Rig::new(1001);
    let l = rig.listen(8);
    let cs: Vec<SocketHandle> = (0..4).map(|_| rig.connect()).collect();
    let limit = rig.now() + secs(5);
    let mut ss = Vec::new();
    rig.run_until_true(limit, "accept", |r| {
        while let Ok((s, _)) = r.s().accept(l) {
            ss.push(s);
        }
        ss.len() == 4
    });
    rig.run_for(ms(100));
    // One template per connection: its last segment toward the server.
    let templates: Vec<Pkt> = cs
        .iter()
        .map(|&c| {
            let local = rig.c().local_addr(c).unwrap();
            rig.pkts_from(FROM_CLIENT).into_iter().rev().find(|p| p.src() == local).unwrap()
        })
        .collect();
    let t0 = rig.now();
    let before = rig.s().stats().tcp.challenge_acks;
    // 12000 in-window RSTs over 3 s: 4 every millisecond.
    for i in 0..3000u32 {
        for t in &templates {
            let rst = forged_header(t, TcpFlags::RST, t.end().wrapping_add(1 + i), 0);
            rig.inject(TO_SERVER, forge(t, &rst, &[]));
        }
        rig.run_for(ms(1));
    }
    rig.run_for(ms(50));
    let answers: Vec<Pkt> = rig.pkts_from(FROM_SERVER).into_iter().filter(|p| p.at >= t0).collect();
    assert!(answers.iter().all(|p| p.is_pure_ack()));
    for (i, a) in answers.iter().enumerate() {
        let in_second = answers[i..].iter().take_while(|b| b.at < a.at + secs(1)).count();
        assert!(in_second <= 2000, "{in_second} challenge ACKs in the second from {}", a.at);
    }
    let st = rig.s().stats().tcp;
    let sent = st.challenge_acks - before;
    assert_eq!(sent as usize, answers.len());
    assert!((2000..=4000).contains(&sent), "{sent} challenge ACKs for 12000 RSTs in 3 s");
    assert_eq!(sent + st.challenge_acks_limited, 12000, "every RST either answered or counted as limited");
    for (&c, &s) in cs.iter().zip(&ss) {
        assert_eq!(rig.c().tcp_state(c), Ok(State::Established));
        assert_eq!(rig.s().tcp_state(s), Ok(State::Established));
    }
}

/// Found over TUN by `attacks_tun.rs` (an ACK storm whose segments carry a
/// TSval from the future): a segment in the window but with an ACK that is
/// dropped (RFC 5961 §5.2, or for data not yet sent), a SYN that draws a
/// challenge ACK, or an inexact RST must not move TS.Recent (RFC 7323
/// §4.3 takes it from acceptable segments). If it did, PAWS would drop
/// every genuine segment after it and the connection would stall for
/// good. The stream arrives intact and PAWS drops nothing genuine.
#[test]
fn forged_segments_with_a_future_tsval_do_not_poison_ts_recent_rfc7323_rfc5961() {
    let mut rig = Rig::new(1000);
    let (c, _l, s) = rig.establish();
    let data = pattern(1_000_000, 3);
    let mut last = rig.now();
    let mut sprayed = 0;
    let got = pump_under_attack(&mut rig, c, s, &data, |rig| {
        if rig.now() < last + ms(5) {
            return;
        }
        last = rig.now();
        // Toward the server, at exactly its RCV.NXT, as the client's own
        // next segment would be, with the client's TSval pushed 2^30 ahead.
        let cli = rig.last_from(FROM_CLIENT);
        let (tsval, ecr) = cli.tcp.options.timestamps.expect("the connection uses timestamps");
        let future = Some((tsval.wrapping_add(1 << 30), ecr));
        // An ACK for data the server never sent, one far behind SND.UNA,
        // a SYN and an inexact RST.
        let mut ack_ahead = forged_header(&cli, TcpFlags::ACK, cli.end(), cli.ack().wrapping_add(1 << 30));
        ack_ahead.options.timestamps = future;
        rig.inject(TO_SERVER, forge(&cli, &ack_ahead, &[]));
        let mut ack_behind = forged_header(&cli, TcpFlags::ACK, cli.end(), cli.ack().wrapping_sub(1 << 30));
        ack_behind.options.timestamps = future;
        rig.inject(TO_SERVER, forge(&cli, &ack_behind, &[]));
        let mut syn = forged_header(&cli, TcpFlags::SYN, cli.end(), 0);
        syn.options.timestamps = future;
        rig.inject(TO_SERVER, forge(&cli, &syn, &[]));
        let mut rst = forged_header(&cli, TcpFlags::RST, cli.end().wrapping_add(100), 0);
        rst.options.timestamps = future;
        rig.inject(TO_SERVER, forge(&cli, &rst, &[]));
        sprayed += 1;
    });
    assert!(sprayed > 10, "the attack ran through the transfer: {sprayed} rounds");
    assert!(got == data, "the stream arrived intact");
    assert_eq!(rig.s().tcp_state(s), Ok(State::Established));
    let st = rig.s().stats().clone();
    assert!(st.drops(DropReason::TcpBadAck) > 0, "the forged ACKs were dropped");
    assert_eq!(st.drops(DropReason::TcpPaws), 0, "PAWS dropped no genuine segment");
    assert_eq!(st.tcp.resets_in, 0);
}

/// Found by the blind SYN injection over TUN (`attacks_tun.rs`): a SYN
/// outside the window was answered like any unacceptable segment, with an
/// ACK each, so a blind SYN flood at a connection's 4-tuple made it send
/// one ACK per SYN. RFC 5961 §4.2 answers a SYN "irrespective of the
/// sequence number" with a challenge ACK, and §7 limits those: with a
/// limit of 10 a second, 2,000 SYNs in a second draw at most 20 ACKs (two
/// one-second periods may meet), each counted; the connection goes on.
/// Establishes a connection to a server allowed 10 challenge ACKs a
/// second, then injects 2,000 segments that `forged` builds from the
/// client's last segment, one every 500 µs. Returns the rig, the
/// connection's two ends and how many segments the server sent meanwhile.
fn flood_of_2000(
    seed: u64,
    mut forged: impl FnMut(&Pkt, &mut Guess) -> TcpRepr,
) -> (Rig, SocketHandle, SocketHandle, usize) {
    let mut cfg = RigConfig::new(seed);
    cfg.server.challenge_ack_limit = 10;
    let mut rig = cfg.build();
    let (c, _l, s) = rig.establish();
    rig.run_for(ms(500));
    let cli = rig.last_from(FROM_CLIENT);
    let before = rig.pkts_from(FROM_SERVER).len();
    let mut guess = Guess(0x5eed_1234_abcd_0000 | (seed % 1000));
    for _ in 0..2000 {
        let tcp = forged(&cli, &mut guess);
        rig.inject(TO_SERVER, forge(&cli, &tcp, &[]));
        rig.run_for(ustack_core::time::Duration::from_micros(500));
    }
    rig.run_for(ms(100));
    let answers = rig.pkts_from(FROM_SERVER).len() - before;
    (rig, c, s, answers)
}

#[test]
fn out_of_window_syns_draw_rate_limited_challenge_acks_rfc5961_4_2_and_7() {
    let (mut rig, c, s, answers) = flood_of_2000(1001, |cli, guess| {
        // Far from the window: 2^30 and more away from RCV.NXT.
        let seq = cli.end().wrapping_add((1 << 30) + guess.below(1 << 30));
        forged_header(cli, TcpFlags::SYN, seq, 0)
    });
    assert!(answers <= 20, "{answers} segments answered 2,000 SYNs");
    let st = rig.s().stats().clone();
    assert_eq!(st.tcp.challenge_acks + st.tcp.challenge_acks_limited, 2000, "every SYN was a challenge");
    assert_eq!(st.tcp.duplicate_segments, 0, "a forged SYN is not a duplicate");
    assert_eq!(rig.s().tcp_state(s), Ok(State::Established));
    let data = pattern(100_000, 9);
    let got = pump_under_attack(&mut rig, c, s, &data, |_| {});
    assert!(got == data);
}

/// Found by the ACK storm over TUN: an ACK for data not yet sent was
/// answered with an ACK each (RFC 9293), so a flood of forged ACKs drew as
/// many. RFC 5961 §5.2 makes the answer a challenge ACK and §7 limits
/// those: with a limit of 10 a second, 2,000 such ACKs in a second draw at
/// most 20 answers, each counted, and the connection goes on.
#[test]
fn acks_for_unsent_data_draw_rate_limited_challenge_acks_rfc5961_5_2_and_7() {
    let (mut rig, c, s, answers) = flood_of_2000(1002, |cli, guess| {
        // In the window, with an ACK 1 to 2^30 past SND.NXT.
        let ack = cli.ack().wrapping_add(1 + guess.below(1 << 30));
        forged_header(cli, TcpFlags::ACK, cli.end(), ack)
    });
    assert!(answers <= 20, "{answers} segments answered 2,000 forged ACKs");
    let st = rig.s().stats().clone();
    assert_eq!(st.drops(DropReason::TcpBadAck), 2000);
    assert_eq!(st.tcp.challenge_acks + st.tcp.challenge_acks_limited, 2000, "every one was a challenge");
    assert_eq!(rig.s().tcp_state(s), Ok(State::Established));
    let data = pattern(100_000, 10);
    let got = pump_under_attack(&mut rig, c, s, &data, |_| {});
    assert!(got == data);
}

/// Found by the forged ICMP errors over TUN: at gigabits a second, several
/// MB are in flight, so about one forged "fragmentation needed" in a few
/// thousand quotes a sequence number in flight by chance and passes the
/// RFC 5927 §4.1 check; with the MTU of 68 it carried, the connection went
/// on with 16-byte segments, and the flood of tiny packets starved the
/// host's other connections. An MTU below `min_path_mtu` (552, as Linux)
/// is raised to it (RFC 5927 §7): the MSS falls no lower than 500 bytes
/// (with timestamps), and the stream arrives whole.
#[test]
fn frag_needed_below_min_path_mtu_is_raised_to_it_rfc5927_7() {
    use ustack_core::wire::DstUnreachable;
    let mut rig = Rig::new(1003);
    let (c, _l, s) = rig.establish();
    let data = pattern(300_000, 11);
    let mut forged = false;
    let got = pump_under_attack(&mut rig, c, s, &data, |rig| {
        if forged {
            return;
        }
        // The client's latest data segment: still in flight.
        let Some(p) = rig.pkts_from(FROM_CLIENT).into_iter().rev().find(|p| !p.payload.is_empty()) else {
            return;
        };
        rig.inject(TO_CLIENT, icmp_unreachable_about(&p, DstUnreachable::FragRequired { next_hop_mtu: 68 }));
        forged = true;
    });
    assert!(forged);
    assert!(got == data, "the stream arrived intact");
    assert_eq!(rig.c().stats().tcp.icmp_errors_ignored, 0, "the error quoted data in flight");
    assert_eq!(rig.c().tcp_info(c).unwrap().mss, 552 - 40 - 12);
}
