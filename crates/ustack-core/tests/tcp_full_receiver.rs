//! "TCP in full", the receiver: delayed ACKs and the cases that are
//! acknowledged at once (RFC 9293 §3.8.6.3, RFC 1122 §4.2.3.2, RFC 5681
//! §4.2), receiver-side silly window avoidance (RFC 9293 §3.8.6.2.2), a
//! window that never shrinks (RFC 7323 §2.4), receive-buffer auto-tuning,
//! and the stack-wide bound on out-of-order memory.

mod common;

use common::*;
use std::cell::Cell;
use std::rc::Rc;
use ustack_core::SocketHandle;
use ustack_core::sim::{LinkConfig, Verdict};
use ustack_core::socket::SockOpt;
use ustack_core::time::Instant;
use ustack_core::wire::TcpFlags;

const MSS: usize = 1448;

/// Enough one-segment exchanges that the server has left its quick-ACK
/// mode (the first 16 segments are acknowledged at once, as Linux does).
fn past_quickack(rig: &mut Rig, c: SocketHandle, s: SocketHandle) {
    for i in 0..20 {
        rig.c().send(c, &pattern(MSS, i)).unwrap();
        rig.run_for(ms(60));
    }
    let mut sink = Vec::new();
    rig.read_some(rig.server, s, &mut sink).unwrap();
    assert_eq!(sink.len(), 20 * MSS);
}

/// The server's segments, from its own trace, at or after `t`: the data
/// it received and the ACKs it sent, in order.
fn server_segs_since(rig: &mut Rig, t: Instant) -> Vec<Seg> {
    segs(&rig.server_events()).into_iter().filter(|s| s.at >= t).collect()
}

/// RFC 9293 §3.8.6.3 and RFC 1122 §4.2.3.2: in a stream of full-sized
/// segments the receiver acknowledges at least every second one, and
/// (past the start) not every one.
#[test]
fn delayed_ack_at_least_every_second_full_segment_rfc9293_3_8_6_3() {
    let link = LinkConfig::default().delay(ms(5)).bandwidth_bps(100_000_000);
    let mut rig = RigConfig::new(900).link(link).build();
    let (c, _l, s) = rig.establish();
    past_quickack(&mut rig, c, s);
    let t0 = rig.now();
    let data = pattern(500_000, 1);
    let limit = rig.now() + secs(10);
    assert!(rig.pump(c, s, &data, limit) == data);
    let (mut unacked, mut acks, mut segments) = (0, 0, 0);
    let mut hist = [0usize; 3];
    for seg in server_segs_since(&mut rig, t0) {
        if !seg.sent() && seg.len == MSS {
            unacked += 1;
            segments += 1;
            assert!(unacked <= 2, "a third full segment without an ACK at {}", seg.at);
        } else if seg.sent() && seg.tcp.flags.ack() {
            acks += 1;
            hist[unacked] += 1;
            unacked = 0;
        }
    }
    assert!(acks > 100);
    // Not one ACK per segment. (Today a prompt reader's window update
    // follows each delayed ACK after one more segment, so ACKs cover two
    // and one segments in turn: an ACK per 1.5 segments. Linux sends such
    // an update only when the window had fallen to half the buffer; see
    // the report of branch wip/tcpfull-winupdate.)
    assert!(acks * 10 <= segments * 7, "{acks} ACKs for {segments} segments; by segments covered: {hist:?}");
    assert!(hist[2] * 3 >= acks, "many ACKs cover two segments: {hist:?}");
}

/// RFC 9293 §3.8.6.3 (Linux's 40 ms): a lone segment is acknowledged
/// when the delayed-ACK timer fires; after the connection was idle longer
/// than the RTO it is acknowledged at once (quick-ACK, as Linux: the
/// sender is restarting from a small window).
#[test]
fn lone_segment_acked_after_40ms_but_at_once_after_idle_rfc9293_3_8_6_3() {
    let mut rig = Rig::new(901);
    let (c, _l, s) = rig.establish();
    past_quickack(&mut rig, c, s);
    // A lone segment 60 ms after the last: less than the RTO.
    let t0 = rig.now();
    rig.c().send(c, b"lone").unwrap();
    rig.run_for(ms(100));
    let ss = server_segs_since(&mut rig, t0);
    let got = ss.iter().find(|s| !s.sent() && s.len == 4).unwrap().at;
    let ack = ss.iter().find(|s| s.sent() && s.at >= got).unwrap().at;
    assert_eq!(ack - got, ms(40), "the delayed-ACK timer");
    // Idle for two seconds (more than the RTO): at once.
    rig.run_for(secs(2));
    let t1 = rig.now();
    eprintln!("before big: {:?}", rig.s().tcp_info(s).unwrap());
    rig.c().send(c, b"after idle").unwrap();
    rig.run_for(ms(100));
    let ss = server_segs_since(&mut rig, t1);
    let got = ss.iter().find(|s| !s.sent() && s.len == 10).unwrap().at;
    let ack = ss.iter().find(|s| s.sent() && s.at >= got).unwrap().at;
    assert_eq!(ack, got, "quick-ACK after idle");
}

/// RFC 5681 §4.2 (and RFC 9293 §3.8.6.3): a segment beyond a hole is
/// acknowledged at once, and so is the segment that fills the hole.
#[test]
fn out_of_order_and_hole_filling_segments_acked_at_once_rfc5681_4_2() {
    let mut rig = Rig::new(902);
    let (c, _l, s) = rig.establish();
    past_quickack(&mut rig, c, s);
    // Drop the first of the next flight's segments once.
    let dropped = Rc::new(Cell::new(false));
    let d = dropped.clone();
    rig.set_rule(move |p| {
        if p.from == FROM_CLIENT && p.len() > 0 && !d.get() {
            d.set(true);
            return Verdict::Drop;
        }
        Verdict::Pass
    });
    let t0 = rig.now();
    let data = pattern(6 * MSS, 3);
    let limit = rig.now() + secs(5);
    assert!(rig.pump(c, s, &data, limit) == data);
    assert!(dropped.get());
    let ss = server_segs_since(&mut rig, t0);
    let received: Vec<&Seg> = ss.iter().filter(|s| !s.sent() && s.len > 0).collect();
    // Every data segment but the hole-filler is out of order until the
    // retransmission; each of them, and the retransmission, is answered
    // at the instant it arrived.
    let rcv_nxt =
        received.iter().map(|s| s.tcp.seq).min_by_key(|&q| q.wrapping_sub(received[0].tcp.seq) as i32).unwrap();
    let filler = received.iter().position(|s| s.tcp.seq == rcv_nxt).expect("the hole filled");
    assert!(filler >= 2, "segments arrived beyond the hole first");
    for r in &received[..=filler] {
        let answered = ss.iter().any(|a| a.sent() && a.tcp.flags.ack() && a.at == r.at);
        assert!(answered, "segment seq={} at {} acknowledged at once", r.tcp.seq, r.at);
    }
    let first_ooo = ss.iter().find(|a| a.sent() && a.at == received[0].at).unwrap();
    assert!(!first_ooo.tcp.options.sack_blocks.is_empty(), "with a SACK block");
}

/// RFC 9293 §3.8.6.2.2: when the application reads a closed window open,
/// the receiver sends the window update at once, not with its next ACK.
#[test]
fn window_update_sent_at_once_when_a_read_opens_the_window_rfc9293_3_8_6_2_2() {
    let mut rig = RigConfig::new(903).server_tcp(|t| (t.recv_buffer, t.autotune) = (32768, false)).build();
    let (c, _l, s) = rig.establish();
    rig.c().send(c, &pattern(100_000, 4)).unwrap();
    rig.run_for(ms(300));
    assert_eq!(rig.last_from(FROM_SERVER).tcp.window, 0, "closed");
    let mut got = Vec::new();
    rig.read_some(rig.server, s, &mut got).unwrap();
    let read_at = rig.now();
    rig.run_for(ms(6));
    let update = rig.pkts_from(FROM_SERVER).into_iter().find(|p| p.at >= read_at).expect("a window update");
    assert_eq!(update.at, read_at + ms(5), "sent at the read");
    let shift = rig.pkts().into_iter().find(|p| p.is_synack()).unwrap().tcp.options.window_scale.unwrap_or(0);
    let window = (update.tcp.window as usize) << shift;
    assert!(window >= 16384, "a wide-open window: {window}");
}

/// The right edge (ACK + window, in bytes) of every segment the server
/// sent after the handshake.
fn right_edges(rig: &Rig, shift: u8) -> Vec<(Instant, u32)> {
    rig.pkts_from(FROM_SERVER)
        .into_iter()
        .filter(|p| !p.tcp.flags.syn() && !p.is_rst())
        .map(|p| (p.at, p.ack().wrapping_add((p.tcp.window as u32) << shift)))
        .collect()
}

/// RFC 9293 §3.8.6.2.2: a receiver whose application reads 100 bytes at a
/// time does not move its window's right edge by 100 bytes: it moves it
/// by at least a segment (or half the buffer) or not at all.
#[test]
fn window_not_advertised_in_small_increments_rfc9293_3_8_6_2_2() {
    let mut rig = RigConfig::new(904)
        .tcp(|t| t.window_scaling = false)
        .server_tcp(|t| (t.recv_buffer, t.autotune) = (16384, false))
        .build();
    let (c, _l, s) = rig.establish();
    let data = pattern(200_000, 5);
    let (mut off, mut got) = (0, Vec::new());
    let limit = rig.now() + secs(120);
    let mut buf = [0u8; 100];
    while got.len() < data.len() {
        off += rig.c().send(c, &data[off..]).unwrap_or(0);
        if let Ok(n) = rig.s().recv(s, &mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        rig.run_for(ms(1));
        assert!(rig.now() < limit, "stalled at {}", got.len());
    }
    assert!(got == data);
    let edges = right_edges(&rig, 0);
    let mut moves = 0;
    for w in edges.windows(2) {
        let step = w[1].1.wrapping_sub(w[0].1) as i32;
        assert!(step >= 0, "the edge retreated at {}", w[1].0);
        if step > 0 {
            moves += 1;
            assert!(step as usize >= MSS, "the edge moved by {step} bytes at {}", w[1].0);
        }
    }
    assert!(moves > 50, "the window did open many times: {moves}");
}

/// RFC 7323 §2.4: with window scaling on, on a lossy path and with reads
/// of odd sizes, the right edge of the window the receiver advertises
/// never moves back.
#[test]
fn window_never_shrinks_with_scaling_rfc7323_2_4() {
    let link = LinkConfig::default().delay(ms(5)).bandwidth_bps(50_000_000).loss(0.01);
    let mut rig = RigConfig::new(905).link(link).server_tcp(|t| (t.recv_buffer, t.autotune) = (100_000, false)).build();
    let (c, _l, s) = rig.establish();
    let shift = rig.pkts().into_iter().find(|p| p.is_synack()).unwrap().tcp.options.window_scale.unwrap();
    assert!(shift > 0, "scaling is on");
    let data = pattern(2_000_000, 6);
    let (mut off, mut got) = (0, Vec::new());
    let limit = rig.now() + secs(120);
    let mut buf = vec![0u8; 3001];
    let mut i = 0usize;
    while got.len() < data.len() {
        off += rig.c().send(c, &data[off..]).unwrap_or(0);
        i += 1;
        let want = 1 + (i * 7919) % buf.len();
        if let Ok(n) = rig.s().recv(s, &mut buf[..want]) {
            got.extend_from_slice(&buf[..n]);
        }
        rig.run_for(ms(1));
        assert!(rig.now() < limit, "stalled at {}", got.len());
    }
    assert!(got == data);
    let edges = right_edges(&rig, shift);
    let mut highest = edges[0].1;
    for &(at, e) in &edges {
        let back = highest.wrapping_sub(e) as i32;
        assert!(back <= 0, "the right edge moved back {back} bytes at {at}");
        highest = e;
    }
}

/// The largest window the server advertised, in bytes.
fn max_window(rig: &Rig) -> usize {
    let shift = rig.pkts().into_iter().find(|p| p.is_synack()).unwrap().tcp.options.window_scale.unwrap_or(0);
    rig.pkts_from(FROM_SERVER)
        .into_iter()
        .filter(|p| !p.tcp.flags.syn())
        .map(|p| (p.tcp.window as usize) << shift)
        .max()
        .unwrap()
}

/// Receive-buffer auto-tuning: on a 100 Mbit/s, 100 ms path (a
/// bandwidth-delay product of 1.25 MB) the window grows far past the
/// initial 256 KB, up to the configured cap; an explicit SO_RCVBUF turns
/// it off and the window stays within the buffer.
#[test]
fn receive_window_grows_with_the_bandwidth_delay_product_unless_rcvbuf_set() {
    let link = LinkConfig::default().delay(ms(25)).bandwidth_bps(100_000_000).queue_limit_bytes(Some(4 << 20));
    let run = |explicit: Option<usize>, cap: usize| {
        let mut rig = RigConfig::new(906).link(link.clone()).server_tcp(|t| t.recv_buffer_max = cap).build();
        let l = rig.listen(4);
        if let Some(n) = explicit {
            rig.s().set_option(l, SockOpt::RecvBuffer(n)).unwrap();
        }
        let c = rig.connect();
        let limit = rig.now() + secs(5);
        rig.run_until_true(limit, "accept", |r| r.s().can_recv(l));
        let (s, _) = rig.s().accept(l).unwrap();
        let data = pattern(12_000_000, 7);
        let limit = rig.now() + secs(60);
        assert!(rig.pump(c, s, &data, limit) == data);
        max_window(&rig)
    };
    let tuned = run(None, 16 << 20);
    assert!(tuned >= 1_250_000, "grew to the BDP: {tuned}");
    let capped = run(None, 600_000);
    assert!(capped <= 600_000 && capped > 300_000, "grew up to the cap: {capped}");
    let fixed = run(Some(262_144), 16 << 20);
    assert!(fixed <= 262_144, "SO_RCVBUF fixes it: {fixed}");
}

/// The stack-wide bound on bytes held out of order: beyond it segments
/// that would be held are dropped and counted, the bound holds at every
/// instant, no stream is corrupted, and every transfer completes.
#[test]
fn out_of_order_memory_bounded_per_stack_and_transfers_complete() {
    const LIMIT: usize = 24_000;
    let link = LinkConfig::default().delay(ms(5)).bandwidth_bps(50_000_000).loss(0.02);
    let mut cfg = RigConfig::new(907).link(link);
    cfg.server.ooo_memory_limit = LIMIT;
    let mut rig = cfg.build();
    let l = rig.listen(8);
    let cs: Vec<SocketHandle> = (0..3).map(|_| rig.connect()).collect();
    let limit = rig.now() + secs(5);
    let mut ss = Vec::new();
    rig.run_until_true(limit, "accept", |r| {
        while let Ok((s, _)) = r.s().accept(l) {
            ss.push(s);
        }
        ss.len() == 3
    });
    // Match the server sockets to the clients by port.
    let mut pairs = Vec::new();
    for &c in &cs {
        let local = rig.c().local_addr(c).unwrap();
        let s = *ss.iter().find(|&&s| rig.s().peer_addr(s) == Ok(local)).unwrap();
        pairs.push((c, s));
    }
    let data: Vec<Vec<u8>> = (0..3).map(|i| pattern(1_000_000, 10 + i as u8)).collect();
    let mut off = [0usize; 3];
    let mut got: Vec<Vec<u8>> = vec![Vec::new(); 3];
    let limit = rig.now() + secs(120);
    let mut peak = 0;
    while (0..3).any(|i| got[i].len() < data[i].len()) {
        for (i, &(c, s)) in pairs.iter().enumerate() {
            off[i] += rig.c().send(c, &data[i][off[i]..]).unwrap_or(0);
            rig.read_some(rig.server, s, &mut got[i]).unwrap();
        }
        peak = peak.max(rig.s().out_of_order_bytes());
        assert!(rig.step_before(limit), "stalled: {:?}", got.iter().map(|g| g.len()).collect::<Vec<_>>());
    }
    for i in 0..3 {
        assert!(got[i] == data[i], "stream {i} intact");
    }
    assert!(peak <= LIMIT, "held {peak} bytes out of order");
    assert!(rig.s().stats().tcp.ooo_limit_drops > 0, "the bound was reached");
}

/// Without window scaling the 16-bit field cannot say more than 65,535
/// bytes, 44.9 segments of 1,460. The 64 KiB receive buffer becomes 45
/// whole segments, 65,700 bytes (as on FreeBSD), and the sequence check
/// takes a segment that reaches past the advertised edge into it: an RST
/// there is in the window (RFC 5961 §3.2: a challenge ACK), one past the
/// buffer is outside (silently dropped). With scaling the buffer stays the
/// size asked for.
#[test]
fn unscaled_receive_buffer_is_whole_segments_and_its_space_is_in_the_window() {
    use ustack_core::socket::SockOptName;
    let mut rig = RigConfig::new(905)
        .tcp(|t| {
            t.window_scaling = false;
            t.timestamps = false;
            t.recv_buffer = 65_536;
        })
        .build();
    let (c, _l, s) = rig.establish();
    assert_eq!(rig.s().get_option(s, SockOptName::RecvBuffer), Ok(SockOpt::RecvBuffer(65_700)));
    rig.run_for(ms(50));
    let cli = rig.last_from(FROM_CLIENT);
    assert_eq!(rig.last_from(FROM_SERVER).tcp.window, 65_535, "the field's largest value");
    let rcv_nxt = cli.end();
    let challenges = rig.s().stats().tcp.challenge_acks;
    // Past the advertised edge (RCV.NXT + 65,535), inside the buffer.
    let rst = forged_header(&cli, TcpFlags::RST, rcv_nxt.wrapping_add(65_600), 0);
    rig.inject(TO_SERVER, forge(&cli, &rst, &[]));
    rig.run_for(ms(10));
    assert_eq!(rig.s().stats().tcp.challenge_acks, challenges + 1, "in the window: challenged");
    // Past the buffer: outside the window, dropped without a word.
    let rst = forged_header(&cli, TcpFlags::RST, rcv_nxt.wrapping_add(65_700), 0);
    rig.inject(TO_SERVER, forge(&cli, &rst, &[]));
    rig.run_for(ms(10));
    assert_eq!(rig.s().stats().tcp.challenge_acks, challenges + 1, "outside the window: dropped");
    assert_eq!(rig.s().tcp_state(s), Ok(ustack_core::tcp::State::Established));
    // The connection still carries data both ways.
    rig.send_all(rig.client, c, &pattern(200_000, 5));
    let mut got = Vec::new();
    rig.run_until_true(rig.now() + secs(10), "all data", |r| {
        r.read_some(r.server, s, &mut got).unwrap();
        got.len() == 200_000
    });
    assert!(got == pattern(200_000, 5));

    // With window scaling the buffer is not rounded.
    let mut rig = RigConfig::new(906).tcp(|t| t.recv_buffer = 65_536).build();
    let (_c, _l, s) = rig.establish();
    assert_eq!(rig.s().get_option(s, SockOptName::RecvBuffer), Ok(SockOpt::RecvBuffer(65_536)));
}

/// RFC 5681 §4.2 ("an ACK SHOULD be generated for at least every second
/// full-sized segment") counts the data, however it is packed: a coalesced
/// segment (the TUN device hands the stack the kernel's GSO packets, up to
/// 64 KiB) of several full-sized segments is acknowledged at once, as
/// Linux acknowledges such a packet, not when the delayed-ACK timer fires
/// 40 ms later. A single full-sized segment still waits for its pair.
#[test]
fn a_coalesced_segment_of_full_sized_ones_is_acked_at_once_rfc5681_4_2() {
    let mut rig = Rig::new(902);
    let (c, _l, s) = rig.establish();
    past_quickack(&mut rig, c, s);
    let template = rig.last_from(FROM_CLIENT);
    // The segments below are forged in the client's name: its stack must
    // not see the ACKs of data it never sent (it would answer each).
    rig.set_rule(|p| if p.from == FROM_SERVER { Verdict::Drop } else { Verdict::Pass });
    // When the server acknowledged `ack`, after it received it.
    let ack_delay = |rig: &mut Rig, since: Instant, ack: u32| {
        let segs = server_segs_since(rig, since);
        let got = segs.iter().find(|g| !g.sent() && g.tcp.seq.wrapping_add(g.len as u32) == ack).map(|g| g.at);
        let acked = segs.iter().find(|g| g.sent() && g.tcp.ack == ack).map(|g| g.at);
        acked.zip(got).map(|(a, g)| a - g)
    };
    // A lone full-sized segment: acknowledged by the delayed-ACK timer.
    let next = template.end();
    let t0 = rig.now();
    let tcp = forged_header(&template, TcpFlags::ACK | TcpFlags::PSH, next, template.ack());
    rig.inject(TO_SERVER, forge(&template, &tcp, &pattern(MSS, 50)));
    rig.run_for(ms(100));
    assert_eq!(ack_delay(&mut rig, t0, next.wrapping_add(MSS as u32)), Some(ms(40)));
    // Three full-sized segments in one (larger than the link's MTU, as a
    // GSO packet is): acknowledged at once.
    let next = next.wrapping_add(MSS as u32);
    let t1 = rig.now();
    let tcp = forged_header(&template, TcpFlags::ACK | TcpFlags::PSH, next, template.ack());
    rig.inject(TO_SERVER, forge(&template, &tcp, &pattern(3 * MSS, 51)));
    rig.run_for(ms(100));
    assert_eq!(ack_delay(&mut rig, t1, next.wrapping_add(3 * MSS as u32)), Some(ms(0)));
    let mut sink = Vec::new();
    rig.read_some(rig.server, s, &mut sink).unwrap();
    assert_eq!(sink.len(), 4 * MSS);
}

/// An old duplicate with a new ACK in ESTABLISHED: the client's first
/// data segment comes again (a spurious retransmission) carrying the
/// acknowledgement of data the server sent since, whose ordinary ACKs are
/// all lost. The server reports the duplicate with a D-SACK block (RFC
/// 2883) and takes the ACK: its data is acknowledged and never resent. By
/// RFC 9293's sequence check alone the whole segment would be dropped and
/// the server would resend after its retransmission timeout.
#[test]
fn an_old_duplicate_still_delivers_its_ack() {
    let mut rig = Rig::new(35);
    let (c, l, s) = rig.establish();
    rig.s().close(l).unwrap();
    rig.c().send(c, &pattern(1000, 1)).unwrap();
    rig.run_for(ms(100));
    let mut got = Vec::new();
    rig.read_some(rig.server, s, &mut got).unwrap();
    assert_eq!(got.len(), 1000);
    let old = rig.pkts_from(FROM_CLIENT).into_iter().find(|p| !p.payload.is_empty()).unwrap();

    rig.set_rule(|p| if p.from == FROM_CLIENT && p.is_pure_ack() { Verdict::Drop } else { Verdict::Pass });
    rig.s().send(s, &pattern(1000, 2)).unwrap();
    rig.run_for(ms(100));
    let data = rig.pkts_from(FROM_SERVER).into_iter().rfind(|p| !p.payload.is_empty()).unwrap();
    // The client's latest (lost) ACK carries a timestamp PAWS accepts.
    let latest = rig.last_from(FROM_CLIENT);
    assert!(latest.dropped && latest.ack() == data.end());

    let before = rig.pkts().len();
    let again = forged_header(&latest, TcpFlags::ACK | TcpFlags::PSH, old.seq(), data.end());
    rig.inject(TO_SERVER, forge(&latest, &again, &old.payload));
    rig.run_for(secs(2));
    let answers: Vec<Pkt> = rig.pkts()[before..].iter().filter(|p| p.from == FROM_SERVER).cloned().collect();
    assert_eq!(answers.len(), 1, "one ACK, no retransmission: {answers:#?}");
    assert!(answers[0].payload.is_empty());
    assert_eq!(answers[0].tcp.options.sack_blocks.as_slice(), [(old.seq(), old.end())]);
}
