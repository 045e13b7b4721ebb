//! "TCP in full", the sender: the initial window (RFC 6928), byte counting
//! in slow start (RFC 3465), restart after idle and no growth while
//! application-limited (RFC 5681 §4.1, RFC 7661), pacing, Nagle's
//! algorithm and TCP_NODELAY (RFC 9293 §3.7.4), sender-side silly window
//! avoidance (§3.8.6.2.1), the persist timer (§3.8.6.1) and proportional
//! rate reduction in fast recovery (RFC 6937).

mod common;

use common::*;
use std::cell::Cell;
use std::rc::Rc;
use ustack_core::sim::{LinkConfig, Verdict};
use ustack_core::socket::{SockOpt, SockOptName};
use ustack_core::tcp::Algorithm;
use ustack_core::time::Instant;
use ustack_core::trace::{Direction, EventKind};
use ustack_core::wire::TcpFlags;

/// Data segments the client sent that reached the middlebox at or after `t`.
fn client_data_since(rig: &Rig, t: Instant) -> Vec<Pkt> {
    rig.pkts_from(FROM_CLIENT).into_iter().filter(|p| !p.payload.is_empty() && p.at >= t).collect()
}

/// Drops every segment from the server while `hold` is set.
fn hold_server(rig: &mut Rig) -> Rc<Cell<bool>> {
    let hold = Rc::new(Cell::new(true));
    let h = hold.clone();
    rig.set_rule(move |p| if p.from == FROM_SERVER && h.get() { Verdict::Drop } else { Verdict::Pass });
    hold
}

/// The first flight of a new connection: with the server's ACKs held back,
/// the client sends its initial window and then waits.
fn first_flight(rig: &mut Rig) -> Vec<Pkt> {
    let (c, _l, _s) = rig.establish();
    hold_server(rig);
    let t0 = rig.now();
    rig.c().send(c, &pattern(100_000, 1)).unwrap();
    // Less than the tail loss probe's 2*SRTT (40 ms here).
    rig.run_for(ms(30));
    client_data_since(rig, t0)
}

/// RFC 6928 §2: the initial window is min(10*MSS, max(2*MSS, 14600)):
/// ten segments of a 1448-byte payload on an Ethernet path.
#[test]
fn first_flight_is_ten_segments_rfc6928_2() {
    let mut rig = RigConfig::new(700).tcp(|t| t.pacing = false).build();
    let flight = first_flight(&mut rig);
    assert_eq!(flight.len(), 10, "{flight:#?}");
    assert!(flight.iter().all(|p| p.len() == 1448));
    // Consecutive, with no gap.
    for w in flight.windows(2) {
        assert_eq!(w[1].seq(), w[0].end());
    }
}

/// RFC 6928 §2: on a jumbo-frame path 10*MSS is more than 14600 bytes, so
/// the window is max(2*MSS, 14600) bytes: two 8948-byte segments. A
/// configured initial window of 4 is four segments (RFC 3390's rule is
/// replaced by the setting).
#[test]
fn initial_window_bytes_capped_at_14600_for_large_mss_rfc6928_2() {
    let mut cfg = RigConfig::new(701).tcp(|t| t.pacing = false);
    cfg.client.mtu = 9000;
    cfg.server.mtu = 9000;
    let mut rig = cfg.build();
    let flight = first_flight(&mut rig);
    let lens: Vec<usize> = flight.iter().map(|p| p.len()).collect();
    assert_eq!(lens, vec![8948, 8948], "max(2*MSS, 14600) = 17896 bytes");

    let mut rig = RigConfig::new(702).tcp(|t| (t.pacing, t.initial_window) = (false, 4)).build();
    assert_eq!(first_flight(&mut rig).len(), 4);
}

/// (cwnd, ssthresh) after each ACK that advanced SND.UNA at the client,
/// with the bytes that ACK acknowledged.
fn cwnd_per_ack(rig: &mut Rig) -> Vec<(usize, usize, usize)> {
    let events = rig.client_events();
    let mut out = Vec::new();
    let mut last_ack: Option<u32> = None;
    let mut pending: Option<usize> = None;
    for e in &events {
        match e.kind {
            EventKind::TcpSegment { direction: Direction::Received, repr, .. } if repr.flags.ack() => {
                let acked = last_ack.map_or(0, |a| repr.ack.wrapping_sub(a) as i32);
                if last_ack.is_none() || acked > 0 {
                    last_ack = Some(repr.ack);
                }
                pending = (acked > 0).then_some(acked as usize);
            }
            EventKind::TcpCongestion { cwnd, ssthresh, .. } => {
                if let Some(acked) = pending.take() {
                    out.push((acked, cwnd, ssthresh));
                }
            }
            _ => {}
        }
    }
    out
}

/// Slow start by bytes acknowledged (RFC 5681 §3.1 with RFC 3465's L = 2):
/// each ACK grows cwnd by the bytes it acknowledges, at most 2*SMSS. The
/// receiver's delayed ACKs (one per two segments) thus still double the
/// window each round trip, and when the middlebox thins the ACKs so that
/// each one covers four segments, the growth per ACK is capped at 2*SMSS.
#[test]
fn slow_start_counts_bytes_acked_up_to_two_segments_per_ack_rfc3465_2_2() {
    const MSS: usize = 1448;
    for thin in [false, true] {
        let link = LinkConfig::default().delay(ms(5)).bandwidth_bps(100_000_000);
        let mut rig =
            RigConfig::new(710).link(link).tcp(|t| (t.pacing, t.congestion) = (false, Algorithm::NewReno)).build();
        let (c, _l, s) = rig.establish();
        // Let the server leave its quick-ACK mode first, with the client's
        // window still small: 16 segments one at a time, acknowledged.
        for _ in 0..16 {
            rig.c().send(c, &pattern(MSS, 2)).unwrap();
            rig.run_for(ms(30));
        }
        let mut sink = Vec::new();
        rig.read_some(rig.server, s, &mut sink).unwrap();
        if thin {
            // Every other pure ACK from the server is lost.
            let n = Rc::new(Cell::new(0u32));
            rig.set_rule(move |p| {
                if p.from == FROM_SERVER && p.is_pure_ack() {
                    n.set(n.get() + 1);
                    if n.get().is_multiple_of(2) {
                        return Verdict::Drop;
                    }
                }
                Verdict::Pass
            });
        }
        let before = cwnd_per_ack(&mut rig).len();
        let data = pattern(400_000, 3);
        rig.c().send(c, &data[..200_000]).unwrap();
        let limit = rig.now() + secs(10);
        let mut got = sink;
        got.clear();
        got.extend(rig.read_n(s, 200_000, limit));
        let acks = cwnd_per_ack(&mut rig).split_off(before);
        let mut prev_cwnd = 10 * MSS;
        let mut checked = 0;
        let mut stretched = 0;
        for &(acked, cwnd, ssthresh) in &acks {
            if prev_cwnd >= ssthresh || prev_cwnd >= 100 * MSS {
                break;
            }
            assert_eq!(cwnd - prev_cwnd, acked.min(2 * MSS), "ACK of {acked} bytes at cwnd {prev_cwnd}: {acks:?}");
            checked += 1;
            stretched += (acked >= 2 * MSS) as usize;
            prev_cwnd = cwnd;
        }
        assert!(checked >= 10, "{acks:?}");
        assert!(stretched * 2 >= checked, "most ACKs cover two segments or more (thin={thin}): {acks:?}");
        if thin {
            assert!(acks.iter().take(checked).any(|a| a.0 > 2 * MSS), "the thinned ACKs cover three segments or more");
        }
    }
}

/// RFC 5681 §4.1 and RFC 7661 §4.4 (the RFC 2861 restart, which Linux
/// keeps): a sender idle for longer than the RTO starts again from the
/// initial window, however large its window had grown.
#[test]
fn idle_longer_than_rto_restarts_from_the_initial_window_rfc5681_4_1() {
    let mut rig = RigConfig::new(720).tcp(|t| t.pacing = false).build();
    let (c, _l, s) = rig.establish();
    rig.c().send(c, &pattern(200_000, 4)).unwrap();
    let limit = rig.now() + secs(10);
    rig.read_n(s, 200_000, limit);
    rig.run_for(ms(100));
    let grown = rig.c().tcp_info(c).unwrap().cwnd;
    assert!(grown > 20 * 1448, "cwnd grew to {grown}");
    rig.run_for(secs(2)); // idle, longer than the 200 ms RTO
    hold_server(&mut rig);
    let t1 = rig.now();
    rig.c().send(c, &pattern(200_000, 5)).unwrap();
    rig.run_for(ms(30));
    let flight = client_data_since(&rig, t1);
    assert_eq!(flight.len(), 10, "after idle: the initial window, not {grown} bytes");
}

/// RFC 7661 §4.3: an application that keeps the pipe far below cwnd does
/// not grow it: one small write every 50 ms for two seconds leaves cwnd
/// at the initial window.
#[test]
fn application_limited_sender_does_not_grow_cwnd_rfc7661_4_3() {
    let mut rig = RigConfig::new(730).build();
    let (c, _l, s) = rig.establish();
    let iw = rig.c().tcp_info(c).unwrap().cwnd;
    assert_eq!(iw, 10 * 1448);
    let mut got = Vec::new();
    for i in 0..40 {
        rig.c().send(c, &pattern(1000, i)).unwrap();
        rig.run_for(ms(50));
        rig.read_some(rig.server, s, &mut got).unwrap();
    }
    rig.run_for(ms(100));
    rig.read_some(rig.server, s, &mut got).unwrap();
    assert_eq!(got.len(), 40_000);
    let info = rig.c().tcp_info(c).unwrap();
    assert_eq!(info.bytes_acked, 40_000);
    assert_eq!(info.cwnd, iw, "40 round trips of 1000 bytes did not grow the window");
}

/// The most data segments the client sent at one instant, and when each
/// data segment left.
fn client_send_times(rig: &mut Rig, from: Instant) -> Vec<Instant> {
    sent(&rig.client_events()).into_iter().filter(|s| s.len > 0 && s.at >= from).map(|s| s.at).collect()
}

fn largest_burst(times: &[Instant]) -> usize {
    let mut best = 0;
    let mut i = 0;
    while i < times.len() {
        let j = times[i..].iter().take_while(|&&t| t == times[i]).count();
        best = best.max(j);
        i += j;
    }
    best
}

/// Pacing: the initial window leaves at twice cwnd/SRTT (about 1 ms per
/// segment on a 20 ms path) instead of in one burst, and through a bulk
/// transfer no more than two segments leave at one instant; with pacing
/// off the window goes at line rate, all at once.
#[test]
fn pacing_spreads_a_window_over_the_round_trip_instead_of_a_burst() {
    let mut results = Vec::new();
    for pacing in [true, false] {
        let mut rig = RigConfig::new(740).tcp(|t| t.pacing = pacing).build();
        let (c, _l, s) = rig.establish();
        let t0 = rig.now();
        let limit = rig.now() + secs(20);
        let data = pattern(1_000_000, 6);
        assert!(rig.pump(c, s, &data, limit) == data);
        let times = client_send_times(&mut rig, t0);
        let iw_spread = times[9] - times[0];
        results.push((pacing, iw_spread, largest_burst(&times)));
    }
    let (_, paced_spread, paced_burst) = results[0];
    let (_, burst_spread, line_burst) = results[1];
    assert!(paced_spread >= ms(8) && paced_spread <= ms(12), "paced IW spread {paced_spread:?}");
    assert!(paced_burst <= 2, "paced: at most two segments at once, saw {paced_burst}");
    assert_eq!(burst_spread, ms(0), "unpaced: the initial window in one burst");
    assert!(line_burst >= 20, "unpaced: bursts of {line_burst}");
}

/// RFC 9293 §3.7.4 (Nagle): while data is unacknowledged, small writes
/// are held and go together when the ACK comes; with TCP_NODELAY each
/// write leaves at once.
#[test]
fn nagle_holds_small_segments_while_data_is_unacked_rfc9293_3_7_4() {
    let mut rig = Rig::new(750);
    let (c, _l, s) = rig.establish();
    assert_eq!(rig.c().get_option(c, SockOptName::NoDelay), Ok(SockOpt::NoDelay(false)));
    let t0 = rig.now();
    rig.c().send(c, &[1u8; 100]).unwrap();
    for _ in 0..10 {
        rig.run_for(ms(1));
        rig.c().send(c, &[2u8; 10]).unwrap();
    }
    rig.run_for(ms(60));
    let segs = client_data_since(&rig, t0);
    let lens: Vec<usize> = segs.iter().map(|p| p.len()).collect();
    assert_eq!(lens, vec![100, 100], "the ten small writes went together: {segs:#?}");
    // The second left when the first one's ACK came back (20 ms RTT).
    let gap = segs[1].at - segs[0].at;
    assert!(gap >= ms(20) && gap <= ms(21), "held for one round trip: {gap:?}");

    rig.c().set_option(c, SockOpt::NoDelay(true)).unwrap();
    assert_eq!(rig.c().get_option(c, SockOptName::NoDelay), Ok(SockOpt::NoDelay(true)));
    let t1 = rig.now();
    rig.c().send(c, &[3u8; 100]).unwrap();
    for _ in 0..10 {
        rig.run_for(ms(1));
        rig.c().send(c, &[4u8; 10]).unwrap();
    }
    rig.run_for(ms(60));
    let segs = client_data_since(&rig, t1);
    assert_eq!(segs.len(), 11, "TCP_NODELAY: every write at once");
    for (i, p) in segs.iter().enumerate() {
        assert_eq!(p.at - t1, ms(i as u64) + ms(5), "write {i} left when it was made");
    }
    let limit = rig.now() + secs(1);
    let got = rig.read_n(s, 400, limit);
    assert_eq!(&got[..100], &[1u8; 100][..]);
    assert_eq!(&got[200..300], &[3u8; 100][..]);
}

/// Nagle's algorithm in Minshall's variant (as Linux): a small segment is
/// held only while an earlier small segment is unacknowledged. So the
/// short tail of a write leaves with the full-sized segments before it;
/// under the classic rule it waited until they were all acknowledged, and
/// the receiver, acknowledging every second full-sized segment, delays the
/// ACK of an odd last one (RFC 1122 §4.2.3.2): the tail arrived a
/// delayed-ACK time late (70 ms here instead of 10). Small writes behind
/// an unacknowledged small segment are still held and go together.
#[test]
fn the_short_tail_of_a_write_goes_with_it_and_later_small_writes_wait_nagle_minshall() {
    let mut rig = RigConfig::new(751).tcp(|t| t.pacing = false).build();
    let (c, _l, s) = rig.establish();
    let t0 = rig.now();
    let data = pattern(3 * 1448 + 500, 7);
    rig.c().send(c, &data).unwrap();
    rig.run_for(ms(1));
    // Behind the 500-byte tail, still unacknowledged: held.
    for _ in 0..5 {
        rig.c().send(c, &[9u8; 10]).unwrap();
        rig.run_for(ms(1));
    }
    // The links are 5 ms each way: the write arrives 10 ms after it was made.
    let got = rig.read_n(s, data.len(), t0 + ms(11));
    assert_eq!(got, data);
    rig.run_for(ms(100));
    let segs = client_data_since(&rig, t0);
    let lens: Vec<usize> = segs.iter().map(|p| p.len()).collect();
    assert_eq!(lens, vec![1448, 1448, 1448, 500, 50], "{segs:#?}");
    assert!(segs[..4].iter().all(|p| p.at == segs[0].at), "the tail left with the write: {segs:#?}");
    // The five small writes left together when the tail's ACK came back,
    // a round trip (and the receiver's delayed ACK) later.
    assert!(segs[4].at - segs[3].at >= ms(20), "{segs:#?}");
    let got = rig.read_n(s, 50, rig.now() + secs(1));
    assert_eq!(got, [9u8; 50]);
}

/// RFC 9293 §3.8.6.2.1: a window smaller than a segment and than half the
/// largest window the peer offered is not used at once, even with Nagle
/// off; when the override timeout (here the persist timer) fires, the
/// sender fills it.
#[test]
fn no_tiny_segment_into_a_small_window_until_the_override_timeout_rfc9293_3_8_6_2_1() {
    let mut rig = RigConfig::new(760).tcp(|t| (t.window_scaling, t.nagle) = (false, false)).build();
    let (c, _l, _s) = rig.establish();
    hold_server(&mut rig);
    let t0 = rig.now();
    rig.c().send(c, &pattern(3000, 7)).unwrap();
    rig.run_for(ms(30));
    let flight = client_data_since(&rig, t0);
    assert_eq!(flight.iter().map(|p| p.len()).sum::<usize>(), 3000);
    // The server acknowledges everything and shrinks its window to 200
    // bytes (forged: the real server's segments are held).
    let tpl = rig.last_from(FROM_SERVER);
    let end = flight.last().unwrap().end();
    let mut ack = forged_header(&tpl, TcpFlags::ACK, tpl.seq(), end);
    ack.window = 200;
    rig.inject(TO_CLIENT, forge(&tpl, &ack, &[]));
    rig.run_for(ms(10));
    assert_eq!(rig.c().tcp_info(c).unwrap().snd_wnd, 200);
    let t1 = rig.now();
    rig.c().send(c, &pattern(5000, 8)).unwrap();
    rig.run_for(ms(150));
    if !client_data_since(&rig, t1).is_empty() {
        rig.dump();
        panic!("a tiny segment at once");
    }
    rig.run_for(secs(2));
    let later = client_data_since(&rig, t1);
    assert!(!later.is_empty(), "the override timeout sent");
    assert_eq!(later[0].len(), 200, "it fills the window");
    assert_eq!(later[0].seq(), end);
    assert!(later[0].at - t1 >= ms(200), "not before the override timeout");
}

/// RFC 9293 §3.8.6.1, as the issue asks: the receiver stops reading for
/// 30 s of virtual time; the sender probes the closed window with
/// intervals that grow exponentially up to a cap; when the application
/// reads, the window update restarts the transfer within one round trip,
/// and every byte arrives in order.
#[test]
fn zero_window_for_30s_probed_with_backoff_then_resumes_within_one_rtt_rfc9293_3_8_6_1() {
    let mut rig = RigConfig::new(770)
        .server_tcp(|t| (t.recv_buffer, t.autotune) = (65536, false))
        .client_tcp(|t| t.max_rto = secs(4))
        .build();
    let (c, _l, s) = rig.establish();
    let data = pattern(1_000_000, 9);
    let mut off = rig.c().send(c, &data).unwrap();
    let stop = rig.now() + secs(30);
    while rig.now() < stop {
        off += rig.c().send(c, &data[off..]).unwrap_or(0);
        if !rig.step_before(stop) {
            rig.run_until(stop);
        }
    }
    let closed = rig.pkts_from(FROM_SERVER).into_iter().find(|p| p.tcp.window == 0).expect("the window closed");
    let probes: Vec<Pkt> = rig
        .pkts_from(FROM_CLIENT)
        .into_iter()
        .filter(|p| p.at > closed.at && p.payload.is_empty() && p.seq() == closed.ack().wrapping_sub(1))
        .collect();
    let gaps: Vec<_> = probes.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(gaps.len() >= 6, "probes {gaps:?}");
    for w in gaps.windows(2) {
        assert!(w[1] >= w[0], "intervals grow: {gaps:?}");
        assert!(w[1] <= secs(4), "capped at the maximum RTO: {gaps:?}");
    }
    assert!(gaps[1] >= gaps[0] * 2 - ms(1) || gaps[0] >= secs(2), "exponential: {gaps:?}");
    assert_eq!(*gaps.last().unwrap(), secs(4), "the cap is reached: {gaps:?}");
    assert!(client_data_since(&rig, closed.at + ms(1)).is_empty(), "no data into the closed window");

    // The application reads: the window opens.
    let mut got = Vec::new();
    rig.read_some(rig.server, s, &mut got).unwrap();
    let opened = rig.now();
    let rtt = ms(20);
    let mut resumed = None;
    let limit = rig.now() + secs(120);
    while got.len() < data.len() {
        off += rig.c().send(c, &data[off..]).unwrap_or(0);
        if resumed.is_none() {
            resumed = client_data_since(&rig, opened).first().map(|p| p.at);
        }
        rig.read_some(rig.server, s, &mut got).unwrap();
        if got.len() < data.len() {
            assert!(rig.step_before(limit), "stalled at {}", got.len());
        }
    }
    let resumed = resumed.expect("data after the window opened");
    // The update takes half a round trip to the client, the data half
    // back to the middlebox's far side: it is seen at the middlebox after
    // three quarters of a round trip.
    assert!(resumed - opened <= rtt, "resumed {:?} after the window opened", resumed - opened);
    assert!(got == data, "every byte in order");
}

/// RFC 6937: during fast recovery proportional rate reduction sends in
/// step with the data the ACKs report delivered, so that by the end of
/// recovery what was sent is about ssthresh: no burst on any one ACK, no
/// stretch of ACKs without sending.
#[test]
fn prr_sends_in_proportion_to_delivered_data_during_recovery_rfc6937_3() {
    const MSS: usize = 1448;
    let link = LinkConfig::default().delay(ms(5)).bandwidth_bps(50_000_000);
    // Buffers large enough that neither the application nor the receiver
    // limits what recovery may send.
    let mut rig = RigConfig::new(780)
        .link(link)
        .tcp(|t| (t.pacing, t.autotune, t.send_buffer, t.recv_buffer) = (false, false, 8 << 20, 8 << 20))
        .build();
    let (c, _l, s) = rig.establish();
    // More than recovery can send, so the application never runs dry.
    let data = pattern(4_000_000, 10);
    // Drop the segment 700 kB into the stream, once.
    let isn = rig.pkts_from(FROM_CLIENT)[0].seq();
    let target = isn.wrapping_add(1 + 700_000);
    let dropped = Rc::new(Cell::new(false));
    let d = dropped.clone();
    rig.set_rule(move |p| {
        let covers = p.from == FROM_CLIENT
            && !p.payload.is_empty()
            && p.seq().wrapping_sub(target) as i32 <= 0
            && p.end().wrapping_sub(target) as i32 > 0;
        if covers && !d.get() {
            d.set(true);
            return Verdict::Drop;
        }
        Verdict::Pass
    });
    let t0 = rig.now();
    let limit = rig.now() + secs(30);
    assert!(rig.pump(c, s, &data, limit) == data);
    assert!(dropped.get());
    let events = rig.client_events();
    // Walk the client's trace from the fast retransmission to the ACK that
    // ends recovery.
    let segs: Vec<Seg> = segs(&events).into_iter().filter(|s| s.at >= t0).collect();
    let start = segs.iter().position(|s| s.sent() && s.rtx).expect("a fast retransmission");
    let recover = segs[..start]
        .iter()
        .filter(|s| s.sent() && s.len > 0)
        .map(|s| s.tcp.seq.wrapping_add(s.len as u32))
        .next_back()
        .unwrap();
    let una_at_start = segs[..start].iter().filter(|s| !s.sent()).map(|s| s.tcp.ack).next_back().unwrap();
    let flight = recover.wrapping_sub(una_at_start) as usize;
    let ssthresh = events
        .iter()
        .filter(|e| e.time >= segs[start].at)
        .find_map(|e| match e.kind {
            EventKind::TcpCongestion { ssthresh, .. } if ssthresh < usize::MAX / 2 => Some(ssthresh),
            _ => None,
        })
        .unwrap();
    let (mut sent_bytes, mut per_ack, mut acks_without_send) = (0usize, 0usize, 0usize);
    let (mut max_per_ack, mut max_silent) = (0usize, 0usize);
    for s in &segs[start..] {
        if s.sent() && s.len > 0 {
            sent_bytes += s.len;
            per_ack += 1;
            max_per_ack = max_per_ack.max(per_ack);
            acks_without_send = 0;
        } else if !s.sent() {
            if s.tcp.ack.wrapping_sub(recover) as i32 >= 0 {
                break;
            }
            per_ack = 0;
            acks_without_send += 1;
            max_silent = max_silent.max(acks_without_send);
        }
    }
    println!(
        "flight {flight}, ssthresh {ssthresh}, sent in recovery {sent_bytes}, burst {max_per_ack}, silent {max_silent}"
    );
    assert!(flight > 50 * MSS, "a large window was in flight: {flight}");
    assert!(ssthresh < flight, "the window was reduced");
    let diff = sent_bytes as i64 - ssthresh as i64;
    assert!(diff.unsigned_abs() as usize <= 3 * MSS, "sent {sent_bytes} in recovery, ssthresh {ssthresh}");
    assert!(max_per_ack <= 2, "no burst: {max_per_ack} segments on one ACK");
    assert!(max_silent <= 3, "no stall: {max_silent} ACKs in a row without sending");
}
