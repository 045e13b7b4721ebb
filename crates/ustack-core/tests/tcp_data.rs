//! Data transfer on the simulator: both ways, through reordering,
//! duplication and corruption, across the wrap of the sequence space, under
//! flow control (the receive window, zero-window probes), and the
//! retransmission timer (RFC 6298 backoff, recomputation, giving up).

mod common;

use common::*;
use std::cell::RefCell;
use std::rc::Rc;
use ustack_core::sim::apps::{StreamApp, StreamHash, StreamReport};
use ustack_core::sim::{LinkConfig, Verdict};
use ustack_core::stats::DropReason;
use ustack_core::tcp::State;
use ustack_core::time::Instant;
use ustack_core::wire::TcpFlags;
use ustack_core::{Error, Shutdown};

const UP_SEED: u64 = 200;
const DOWN_SEED: u64 = 100;

/// Runs a StreamApp client (sending `up` bytes) against a StreamApp server
/// (sending `down`) until both are done; returns (client, server) reports,
/// already checked to be complete and intact.
fn stream(rig: &mut Rig, up: u64, down: u64, limit: Instant) -> (StreamReport, StreamReport) {
    let (c, s) = (rig.client, rig.server);
    rig.net.host_mut(s).add_app(StreamApp::server(server_addr(), down, DOWN_SEED).with_connections(1));
    rig.net.host_mut(c).add_app(StreamApp::client(server_addr(), up, UP_SEED));
    rig.run_until_true(limit, "transfer", |r| {
        r.net.host(c).app::<StreamApp>(0).unwrap().is_done() && r.net.host(s).app::<StreamApp>(0).unwrap().is_done()
    });
    let cr = rig.net.host(c).app::<StreamApp>(0).unwrap().reports().remove(0);
    let sr = rig.net.host(s).app::<StreamApp>(0).unwrap().reports().remove(0);
    assert_eq!(cr.error, None);
    assert_eq!(sr.error, None);
    assert!(cr.eof && sr.eof);
    assert_eq!(cr.sent, StreamHash::of_pattern(UP_SEED, up));
    assert_eq!(sr.sent, StreamHash::of_pattern(DOWN_SEED, down));
    assert_eq!(sr.received, cr.sent, "client to server: every byte once, in order");
    assert_eq!(cr.received, sr.sent, "server to client: every byte once, in order");
    (cr, sr)
}

/// RFC 9293 §3.10: a megabyte each way at once on a clean link, with the
/// bytes accounted for in TCP_INFO on both sides.
#[test]
fn data_both_ways_rfc9293_3_10() {
    let mut rig = Rig::new(60);
    stream(&mut rig, 1 << 20, 1 << 20, Instant::from_secs(30));
    // Nothing was lost, so nothing was retransmitted.
    assert_eq!(rig.c().stats().tcp.retransmitted_segments, 0);
    assert_eq!(rig.s().stats().tcp.retransmitted_segments, 0);
    assert_eq!(rig.c().stats().tcp.bytes_out, 1 << 20);
    assert_eq!(rig.c().stats().tcp.bytes_in, 1 << 20);
    assert_eq!(rig.s().stats().tcp.bytes_in, 1 << 20);
    // No data segment exceeded the MSS (1460 less 12 bytes of timestamps).
    assert!(rig.pkts().iter().all(|p| p.len() <= 1448));
    assert!(rig.pkts().iter().all(|p| !p.is_rst()));
}

/// A lossy, reordering, duplicating link in both directions: 256 KiB
/// each way arrive intact for several seeds.
#[test]
fn lossy_reordering_duplicating_link_rfc9293_3_10_7_4() {
    for seed in 0..5 {
        let link = LinkConfig::default().delay(ms(5)).loss(0.03).reorder(0.05).duplicate(0.05);
        let mut rig = RigConfig::new(seed).link(link).build();
        stream(&mut rig, 256 << 10, 256 << 10, Instant::from_secs(120));
        let ooo = rig.c().stats().tcp.out_of_order_segments + rig.s().stats().tcp.out_of_order_segments;
        let dup = rig.c().stats().tcp.duplicate_segments + rig.s().stats().tcp.duplicate_segments;
        assert!(ooo > 0 && dup > 0, "seed {seed}: the link did reorder ({ooo}) and duplicate ({dup})");
    }
}

/// Reordering, segment by segment (RFC 9293 §3.10.7.4 seventh step, RFC
/// 5681 §4.2, RFC 2018 §4): one data segment is held back behind four
/// later ones. Each segment past the hole is acknowledged at once with a
/// duplicate ACK (ACK = the hole) whose first SACK block covers the data
/// held beyond it; the late segment fills the hole and is acknowledged at
/// once up to everything received; the application reads the bytes in
/// order.
#[test]
fn reordered_segment_dup_acks_with_sack_then_cumulative_ack_rfc5681_4_2() {
    let link = LinkConfig::default().delay(ms(5)).bandwidth_bps(10_000_000);
    let mut rig = RigConfig::new(61).link(link).build();
    let (c, _l, s) = rig.establish();
    let held: Rc<RefCell<Option<Pkt>>> = Rc::default();
    let held2 = held.clone();
    let mut data_seen = 0;
    rig.set_rule(move |p| {
        if p.from == FROM_CLIENT && !p.payload.is_empty() {
            data_seen += 1;
            if data_seen == 3 {
                *held2.borrow_mut() = Some(p.clone());
                return Verdict::Drop;
            }
        }
        Verdict::Pass
    });
    let data = pattern(10 * 1448, 5);
    rig.c().send(c, &data).unwrap();
    let t0 = rig.now();
    rig.run_until_true(t0 + secs(1), "four more segments", |r| {
        r.pkts_from(FROM_CLIENT).iter().filter(|p| !p.payload.is_empty()).count() >= 7
    });
    let late = held.borrow().clone().unwrap();
    rig.inject(TO_SERVER, late.frame.clone());
    rig.run_for(ms(200));

    let mut got = Vec::new();
    rig.read_some(rig.server, s, &mut got).unwrap();
    assert!(got == data, "delivered in order, intact");

    let data_segs: Vec<Pkt> =
        rig.pkts_from(FROM_CLIENT).into_iter().filter(|p| !p.payload.is_empty() && p.at >= t0).collect();
    let after_hole: Vec<&Pkt> = data_segs[3..7].iter().collect();
    let acks: Vec<Pkt> = rig.pkts_from(FROM_SERVER).into_iter().filter(|p| p.at >= t0).collect();
    // The ACK of the segment before the hole, then one duplicate ACK with
    // SACK for each of the four segments beyond it.
    let at_hole: Vec<&Pkt> = acks.iter().filter(|a| a.ack() == late.seq()).collect();
    assert_eq!(at_hole.len(), 5, "{acks:#?}");
    assert!(at_hole[0].tcp.options.sack_blocks.is_empty());
    let dups = &at_hole[1..];
    for (k, (dup, seg)) in dups.iter().zip(&after_hole).enumerate() {
        let blocks = dup.tcp.options.sack_blocks;
        assert_eq!(blocks.len(), 1, "dup ACK {k} carries SACK");
        // RFC 2018 §4: the first block covers the most recent segment and
        // the contiguous data around it.
        assert_eq!(blocks.as_slice()[0], (after_hole[0].seq(), seg.end()), "dup ACK {k}");
        // Sent at once on the out-of-order segment (no delayed ACK): the
        // two 5 ms hops, and serializing the segment and the ACK.
        assert_eq!(dup.at, seg.at + ms(10) + serialization(seg) + serialization(dup), "dup ACK {k} immediate");
    }
    // The late segment filled the hole: the next ACK covers everything
    // received up to then, without SACK blocks.
    let fill = acks.iter().find(|a| a.ack() != late.seq() && a.at > dups[3].at).unwrap();
    assert_eq!(fill.ack(), after_hole[3].end());
    assert!(fill.tcp.options.sack_blocks.is_empty());
    assert!(rig.s().stats().tcp.out_of_order_segments >= 4);
}

/// How long a frame takes to serialize on a 10 Mbit/s link.
fn serialization(p: &Pkt) -> ustack_core::time::Duration {
    let bytes = p.frame.len() as u64;
    ustack_core::time::Duration::from_nanos((bytes * 8 * 1_000_000_000).div_ceil(10_000_000))
}

/// Duplication (RFC 9293 §3.10.7.4, first check): a copy of a segment
/// already received is not acceptable; it is acknowledged at once and its
/// data is not delivered twice.
#[test]
fn duplicate_segment_acked_not_delivered_twice_rfc9293_3_10_7_4() {
    let mut rig = Rig::new(62);
    let (c, _l, s) = rig.establish();
    rig.c().send(c, b"exactly once").unwrap();
    rig.run_for(ms(100));
    let seg = rig.pkts_from(FROM_CLIENT).into_iter().rfind(|p| !p.payload.is_empty()).unwrap();
    let last_ack = rig.last_from(FROM_SERVER);
    let before = rig.pkts().len();
    let injected_at = rig.now();
    rig.inject(TO_SERVER, seg.frame.clone());
    rig.run_for(ms(100));
    let answers: Vec<Pkt> = rig.pkts()[before..].iter().filter(|p| p.from == FROM_SERVER).cloned().collect();
    assert_eq!(answers.len(), 1, "{answers:#?}");
    assert_eq!(answers[0].flags(), TcpFlags::ACK);
    assert_eq!(answers[0].ack(), last_ack.ack());
    assert_eq!(answers[0].at, injected_at + ms(10), "acknowledged at once, not delayed");
    assert_eq!(rig.s().stats().tcp.duplicate_segments, 1);
    let mut got = Vec::new();
    rig.read_some(rig.server, s, &mut got).unwrap();
    assert_eq!(got, b"exactly once");
}

/// Corruption (RFC 9293 §3.1, checksum; RFC 1122 §4.2.2.7: a segment with
/// a bad checksum MUST be discarded): a bit flipped in the payload or TCP
/// header of every 7th client segment. Each is dropped and counted; the
/// data still arrives intact through retransmission.
#[test]
fn corrupted_segments_dropped_by_tcp_checksum_rfc1122_4_2_2_7() {
    let mut rig = Rig::new(63);
    let corrupted = Rc::new(RefCell::new(0u64));
    let count = corrupted.clone();
    let mut n = 0usize;
    rig.set_rewrite_rule(move |p, frame| {
        if p.from == FROM_CLIENT && !p.payload.is_empty() {
            n += 1;
            if n.is_multiple_of(7) {
                // Alternate between a payload bit and a bit of the TCP
                // header (the sequence number field).
                let bit = if n.is_multiple_of(14) { 8 * (frame.len() - 1) + 3 } else { 8 * (34 + 4) + (n % 32) };
                flip_bit(frame, bit);
                *count.borrow_mut() += 1;
            }
        }
        Verdict::Pass
    });
    stream(&mut rig, 200_000, 10_000, Instant::from_secs(60));
    let n = *corrupted.borrow();
    assert!(n >= 10);
    assert_eq!(rig.s().stats().drops(DropReason::TcpBadChecksum), n);
    assert!(rig.c().stats().tcp.retransmitted_segments >= n);
}

/// A bit flipped in the IP header is caught by the IP header checksum
/// (RFC 1122 §3.2.1.2) before TCP sees it; TCP recovers the segment.
#[test]
fn corrupted_ip_header_dropped_by_ip_checksum_rfc1122_3_2_1_2() {
    let mut rig = Rig::new(64);
    let mut done = false;
    rig.set_rewrite_rule(move |p, frame| {
        if p.from == FROM_CLIENT && !p.payload.is_empty() && !done {
            done = true;
            flip_bit(frame, 8 * (14 + 8) + 1); // the TTL
        }
        Verdict::Pass
    });
    stream(&mut rig, 50_000, 0, Instant::from_secs(60));
    assert_eq!(rig.s().stats().drops(DropReason::IpBadChecksum), 1);
    assert_eq!(rig.s().stats().drops(DropReason::TcpBadChecksum), 0);
}

/// Random single-bit corruption on both links: whatever the flipped bit
/// hits, nothing corrupt is delivered to an application.
#[test]
fn random_corruption_never_delivered_rfc9293_3_1() {
    for seed in 0..3 {
        let link = LinkConfig::default().delay(ms(5)).corrupt(0.05);
        let mut rig = RigConfig::new(70 + seed).link(link).build();
        stream(&mut rig, 200_000, 200_000, Instant::from_secs(120));
        let checksum_drops: u64 = [DropReason::TcpBadChecksum, DropReason::IpBadChecksum]
            .iter()
            .map(|&r| rig.c().stats().drops(r) + rig.s().stats().drops(r))
            .sum();
        assert!(checksum_drops > 10, "seed {seed}: {checksum_drops}");
    }
}

/// Sequence numbers wrap around 2^32 (RFC 9293 §3.4: arithmetic modulo
/// 2^32): both ISSs a few kilobytes below 2^32, a lossy reordering link,
/// and 512 KiB each way; both directions' data crosses zero intact.
#[test]
fn sequence_numbers_wrap_around_rfc9293_3_4() {
    for seed in 0..3 {
        let link = LinkConfig::default().delay(ms(5)).loss(0.02).reorder(0.03);
        let mut rig = RigConfig::new(80 + seed).link(link).build();
        rig.c().set_next_iss(Some(u32::MAX - 5000));
        rig.s().set_next_iss(Some(u32::MAX - 20_000));
        stream(&mut rig, 512 << 10, 512 << 10, Instant::from_secs(120));
        let syn = rig.pkts().into_iter().find(|p| p.is_syn()).unwrap();
        let synack = rig.pkts().into_iter().find(|p| p.is_synack()).unwrap();
        assert_eq!((syn.seq(), synack.seq()), (u32::MAX - 5000, u32::MAX - 20_000));
        for from in [FROM_CLIENT, FROM_SERVER] {
            let data: Vec<Pkt> = rig.pkts_from(from).into_iter().filter(|p| !p.payload.is_empty()).collect();
            assert!(data.iter().any(|p| p.seq() > u32::MAX - 30_000), "data before the wrap");
            assert!(data.iter().any(|p| p.seq() < 400_000), "data after the wrap");
            // A segment straddling zero, or one ending exactly there.
            assert!(data.iter().any(|p| p.seq() > p.end() || p.end() == 0), "a segment across 2^32");
        }
    }
}

/// Flow control (RFC 9293 §3.8.6): a receiver with a 16 KiB buffer whose
/// application does not read for 2 s. The sender never sends beyond the
/// right edge the receiver last advertised (SEG.SEQ + SEG.LEN <= SND.UNA +
/// SND.WND), stops with exactly the buffer's worth delivered, and resumes
/// when the application reads; every byte arrives.
#[test]
fn receive_window_respected_rfc9293_3_8_6() {
    let mut rig = RigConfig::new(65)
        .server_tcp(|t| {
            t.recv_buffer = 16384;
            t.autotune = false; // a fixed SO_RCVBUF, as Linux has it
        })
        .build();
    let (c, _l, s) = rig.establish();
    let data = pattern(150_000, 6);
    rig.c().send(c, &data).unwrap();
    rig.c().shutdown(c, Shutdown::Write).unwrap();
    rig.run_for(secs(2));
    let conn = rig.s().tcp_connection(s).unwrap();
    assert_eq!(conn.recv_queue(), 16384, "the buffer is full");
    let info = rig.c().tcp_info(c).unwrap();
    assert_eq!(info.snd_wnd, 0);
    assert_eq!(info.bytes_acked, 16384);
    assert_eq!(rig.s().tcp_info(s).unwrap().rcv_wnd, 0);
    let got = rig.read_to_eof(rig.server, s, rig.now() + secs(30));
    assert!(got == data);
    check_window_respected(&rig.client_events());
}

/// Every data segment the client sent fits in the window the server had
/// advertised in the last segment the client received before sending it.
fn check_window_respected(events: &[ustack_core::trace::Event]) {
    let mut scale = 0u8;
    let mut edge: Option<u32> = None;
    let mut checked = 0;
    for seg in segs(events) {
        if !seg.sent() {
            if seg.tcp.flags.syn() {
                scale = seg.tcp.options.window_scale.unwrap_or(0);
                edge = Some(seg.tcp.ack.wrapping_add(seg.tcp.window as u32));
            } else if seg.tcp.flags.ack() {
                let e = seg.tcp.ack.wrapping_add((seg.tcp.window as u32) << scale);
                // The edge may only move right.
                edge = Some(match edge {
                    Some(old) if (e.wrapping_sub(old) as i32) < 0 => old,
                    _ => e,
                });
            }
        } else if seg.len > 0 {
            let end = seg.tcp.seq.wrapping_add(seg.len as u32);
            let edge = edge.expect("data before any window");
            assert!(
                (edge.wrapping_sub(end) as i32) >= 0,
                "segment {} ends at {end} beyond the window edge {edge}",
                seg.tcp
            );
            checked += 1;
        }
    }
    assert!(checked > 50);
}

/// Zero-window probing (RFC 9293 §3.8.6.1, RFC 1122 §4.2.2.17): while the
/// receiver's window stays closed for five minutes, the sender probes it,
/// at intervals that double up to the RTO ceiling, and because every probe
/// is answered the connection stays open although the sender gives up on
/// retransmissions after only 3 tries; when the application reads, the
/// transfer completes.
#[test]
fn zero_window_probes_keep_connection_alive_rfc9293_3_8_6_1() {
    let mut rig = RigConfig::new(66)
        .server_tcp(|t| {
            t.recv_buffer = 16384;
            t.autotune = false; // a fixed SO_RCVBUF, as Linux has it
        })
        .client_tcp(|t| {
            t.retries = 3;
            t.max_rto = secs(60);
        })
        .build();
    let (c, _l, s) = rig.establish();
    let data = pattern(60_000, 7);
    rig.c().send(c, &data).unwrap();
    rig.c().shutdown(c, Shutdown::Write).unwrap();
    rig.run_for(ms(500));
    let closed_at = rig.now();
    let last_ack = rig.last_from(FROM_SERVER);
    assert_eq!(last_ack.tcp.window, 0, "the window is closed");
    rig.run_for(secs(300));
    assert_eq!(rig.c().tcp_state(c), Ok(State::FinWait1));
    assert_eq!(rig.s().tcp_state(s), Ok(State::Established));

    let probes: Vec<Pkt> = rig.pkts_from(FROM_CLIENT).into_iter().filter(|p| p.at > closed_at).collect();
    assert!(probes.len() >= 8, "{probes:#?}");
    for p in &probes {
        // A probe carries no data and SEQ = SND.UNA - 1, which the receiver
        // must answer with its window.
        assert!(p.payload.is_empty() && p.flags() == TcpFlags::ACK);
        assert_eq!(p.seq(), last_ack.ack().wrapping_sub(1));
    }
    // Every probe was answered (with the window still closed).
    let answers: Vec<Pkt> = rig.pkts_from(FROM_SERVER).into_iter().filter(|p| p.at > closed_at).collect();
    assert_eq!(answers.len(), probes.len());
    assert!(answers.iter().all(|a| a.tcp.window == 0 && a.ack() == last_ack.ack()));
    // Intervals double, up to max_rto.
    let gaps: Vec<_> = probes.windows(2).map(|w| w[1].at - w[0].at).collect();
    for w in gaps.windows(2) {
        assert!(w[1] == (w[0] * 2).min(secs(60)), "probe intervals {gaps:?}");
    }
    assert_eq!(*gaps.last().unwrap(), secs(60));
    assert_eq!(rig.c().stats().tcp.zero_window_probes as usize, probes.len());
    assert_eq!(rig.c().stats().tcp.timeouts, 0, "probes are not retransmission timeouts");

    let got = rig.read_to_eof(rig.server, s, rig.now() + secs(60));
    assert!(got == data);
}

/// RFC 6298 §5.5-5.7 and RFC 9293 §3.8.3: when the link goes down, the
/// unacknowledged segment is retransmitted with the RTO doubling each time
/// (TCP_INFO shows the backoff), and after `retries` retransmissions the
/// connection fails with ETIMEDOUT.
#[test]
fn rto_backs_off_then_etimedout_when_link_down_rfc6298_5_5() {
    // Without SACK there is no tail loss probe: with it, RFC 8985 §7.2
    // sends a probe at the first timeout's time instead, and the backoff
    // starts one RTO later.
    let mut rig = RigConfig::new(67)
        .client_tcp(|t| {
            t.retries = 5;
            t.sack = false;
        })
        .build();
    let (c, _l, s) = rig.establish();
    stream_a_little(&mut rig, c, s);
    let info = rig.c().tcp_info(c).unwrap();
    assert_eq!((info.in_flight, rig.c().tcp_connection(c).unwrap().send_queue()), (0, 0));
    let base = info.rto;
    assert_eq!(base, ms(200), "min RTO on a 20 ms path");
    let link = rig.client_link;
    rig.net.set_link_up(link, false);
    let t0 = rig.now();
    rig.c().send(c, b"into the void").unwrap();
    for k in 1..=5u32 {
        // Just after the k-th timeout.
        rig.run_until(t0 + base * ((1 << k) - 1) + ms(1));
        let info = rig.c().tcp_info(c).unwrap();
        assert_eq!(info.backoff, k, "after timeout {k}");
        assert_eq!(info.rto, base * (1 << k));
        assert_eq!(rig.c().tcp_state(c), Ok(State::Established));
    }
    rig.run_until(t0 + base * 63 - ms(1));
    assert_eq!(rig.c().tcp_state(c), Ok(State::Established));
    rig.run_until(t0 + base * 63);
    assert_eq!(rig.c().tcp_state(c), Ok(State::Closed));

    let ce = rig.client_events();
    let tx: Vec<Seg> = sent(&ce).into_iter().filter(|s| s.at >= t0 && s.len > 0).collect();
    let times: Vec<_> = tx.iter().map(|s| s.at - t0).collect();
    let want: Vec<_> = [0u32, 1, 3, 7, 15, 31].iter().map(|&k| base * k).collect();
    assert_eq!(times, want, "one transmission, five retransmissions");
    assert!(tx.iter().all(|s| s.tcp.seq == tx[0].tcp.seq));
    assert!(tx[1..].iter().all(|s| s.rtx));
    let mut buf = [0u8; 8];
    assert_eq!(rig.c().recv(c, &mut buf), Err(Error::TimedOut));
    assert_eq!(rig.c().stats().tcp.connections_timed_out, 1);
}

fn stream_a_little(rig: &mut Rig, c: ustack_core::SocketHandle, s: ustack_core::SocketHandle) {
    for _ in 0..10 {
        rig.send_all(rig.client, c, &pattern(2000, 1));
        rig.send_all(rig.server, s, &pattern(2000, 2));
        rig.run_for(ms(100));
        let mut sink = Vec::new();
        rig.read_some(rig.client, c, &mut sink).unwrap();
        rig.read_some(rig.server, s, &mut sink).unwrap();
    }
    // Let everything arrive and be acknowledged, and read it.
    rig.run_for(secs(2));
    let mut sink = Vec::new();
    rig.read_some(rig.client, c, &mut sink).unwrap();
    rig.read_some(rig.server, s, &mut sink).unwrap();
}

/// RFC 6298 §2: the RTO comes from the samples (first: SRTT = R, RTTVAR =
/// R/2, RTO = SRTT + 4 RTTVAR); the backoff of an outage ends with the
/// next acknowledgement and the RTO returns to the estimate; when the path
/// gets slower, SRTT and the RTO follow.
#[test]
fn rto_recomputed_from_samples_rfc6298_2() {
    // 50 ms per link: a 200 ms round trip; ACK at once so every sample is
    // exactly the path's.
    // (Without SACK, so without tail loss probes: the outage below is
    // met by retransmission timeouts alone, RFC 8985 §7.2 aside.)
    let mut rig = RigConfig::new(68)
        .link(LinkConfig::default().delay(ms(50)))
        .tcp(|t| {
            t.delayed_ack = None;
            t.sack = false;
        })
        .build();
    let (c, _l, s) = rig.establish();
    // The handshake gave the client its first sample (the SYN-ACK's echo).
    let info = rig.c().tcp_info(c).unwrap();
    assert_eq!(info.rtt, Some(ms(200)));
    assert_eq!(info.rttvar, ms(100));
    assert_eq!(info.rto, ms(600));
    stream_a_little(&mut rig, c, s);
    let settled = rig.c().tcp_info(c).unwrap();
    assert_eq!(settled.rtt, Some(ms(200)));
    assert!(settled.rttvar < ms(100) && settled.rto < ms(600), "{settled:?}");
    assert_eq!(settled.rto, settled.rtt.unwrap() + settled.rttvar * 4);

    // An outage: three timeouts.
    rig.net.set_link_up(rig.server_link, false);
    let t0 = rig.now();
    rig.c().send(c, b"waiting").unwrap();
    let r = settled.rto;
    rig.run_until(t0 + r * 7 + ms(1));
    assert_eq!(rig.c().tcp_info(c).unwrap().backoff, 3);
    assert_eq!(rig.c().tcp_info(c).unwrap().rto, r * 8);
    rig.net.set_link_up(rig.server_link, true);
    rig.run_for(secs(5));
    let after = rig.c().tcp_info(c).unwrap();
    assert_eq!(after.backoff, 0, "the ACK ended the backoff");
    // Recomputed from the samples, not the backed-off value. (The sample
    // of the retransmission is long: RFC 7323 §4.1 has the receiver echo
    // the timestamp of the segment that first advanced its window, here the
    // original transmission, which arrived before the outage.)
    assert_eq!(after.rto, (after.rtt.unwrap() + after.rttvar * 4).max(ms(200)));
    assert!(after.rto < r * 8);
    let mut got = Vec::new();
    rig.read_some(rig.server, s, &mut got).unwrap();
    assert_eq!(got, b"waiting");
    // Steady samples bring it back down to the path's.
    for _ in 0..40 {
        rig.c().send(c, b"tick").unwrap();
        rig.run_for(ms(500));
    }
    let steady = rig.c().tcp_info(c).unwrap();
    assert!(steady.rto < ms(600) && steady.rtt.unwrap() < ms(230), "{steady:?}");

    // The path slows to a 600 ms round trip: SRTT climbs toward it.
    rig.net.set_link_config(rig.client_link, LinkConfig::default().delay(ms(150)));
    rig.net.set_link_config(rig.server_link, LinkConfig::default().delay(ms(150)));
    for _ in 0..30 {
        rig.c().send(c, b"tick").unwrap();
        rig.run_for(secs(1));
    }
    let slow = rig.c().tcp_info(c).unwrap();
    let srtt = slow.rtt.unwrap();
    assert!(srtt > ms(590) && srtt <= ms(600), "{slow:?}");
    assert!(slow.rto >= srtt && slow.rto < ms(700), "{slow:?}");
}

/// The window update that reopens a closed window is lost: the sender's
/// next zero-window probe draws an ACK with the open window and the
/// transfer resumes (the reason probes exist, RFC 9293 §3.8.6.1).
#[test]
fn lost_window_update_recovered_by_probe_rfc9293_3_8_6_1() {
    let mut rig = RigConfig::new(69)
        .server_tcp(|t| {
            t.recv_buffer = 16384;
            t.autotune = false; // a fixed SO_RCVBUF, as Linux has it
        })
        .build();
    let (c, _l, s) = rig.establish();
    let data = pattern(40_000, 12);
    rig.c().send(c, &data).unwrap();
    rig.c().shutdown(c, Shutdown::Write).unwrap();
    rig.run_for(secs(3));
    assert_eq!(rig.c().tcp_info(c).unwrap().snd_wnd, 0);
    // Lose the next segment from the server: the window update.
    let mut lost = false;
    rig.set_rule(move |p| {
        if p.from == FROM_SERVER && !lost {
            lost = true;
            return Verdict::Drop;
        }
        Verdict::Pass
    });
    let read_at = rig.now();
    let mut got = Vec::new();
    rig.read_some(rig.server, s, &mut got).unwrap();
    rig.run_for(ms(50));
    let update = rig.pkts_from(FROM_SERVER).into_iter().find(|p| p.at >= read_at).unwrap();
    assert!(update.dropped && update.tcp.window > 0, "the window update was sent and lost");
    assert_eq!(rig.c().tcp_info(c).unwrap().snd_wnd, 0, "the sender does not know");
    got.extend(rig.read_to_eof(rig.server, s, rig.now() + secs(60)));
    assert!(got == data);
    // The first segment the client sent after the read was a probe.
    let after: Vec<Pkt> = rig.pkts_from(FROM_CLIENT).into_iter().filter(|p| p.at > read_at).collect();
    assert!(after[0].payload.is_empty() && after[0].seq() == update.ack().wrapping_sub(1), "{:?}", after[0]);
}
