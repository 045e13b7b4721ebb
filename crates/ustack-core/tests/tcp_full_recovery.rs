//! "TCP in full", loss recovery: D-SACK (RFC 2883) and the undo of a
//! spurious recovery, RFC 6675 recovery of several losses in one window,
//! RACK's reordering window and timer (RFC 8985 §6), the tail loss probe
//! (RFC 8985 §7), and the retransmission timer (RFC 6298: the minimum RTO,
//! Karn's rule, the backoff).

mod common;

use common::*;
use std::cell::RefCell;
use std::rc::Rc;
use ustack_core::sim::Verdict;
use ustack_core::tcp::State;
use ustack_core::time::{Duration, Instant};
use ustack_core::trace::{EventKind, Timer};
use ustack_core::{Shutdown, SocketHandle};

/// Data segments the client sent that crossed (or were dropped at) the
/// middlebox at or after `t`.
fn client_data_since(rig: &Rig, t: Instant) -> Vec<Pkt> {
    rig.pkts_from(FROM_CLIENT).into_iter().filter(|p| !p.payload.is_empty() && p.at >= t).collect()
}

/// A few round trips of small exchanges, read at both ends, so that both
/// sides have RTT samples; then quiet until everything is acknowledged.
fn warm_up(rig: &mut Rig, c: SocketHandle, s: SocketHandle) {
    for _ in 0..5 {
        rig.c().send(c, &pattern(2000, 1)).unwrap();
        rig.run_for(ms(50));
    }
    let mut sink = Vec::new();
    rig.read_some(rig.server, s, &mut sink).unwrap();
}

/// RFC 2883 §4: a duplicate segment is reported in a D-SACK block, the
/// first SACK block of the ACK it draws at once: below the cumulative ACK
/// for a duplicate of in-order data (§4.1.1), inside the second block for
/// a duplicate of data held out of order (§4.1.2).
#[test]
fn dsack_reports_a_duplicate_segment_rfc2883_4() {
    let mut rig = Rig::new(400);
    let (c, _l, s) = rig.establish();
    rig.c().send(c, &pattern(3000, 2)).unwrap();
    rig.run_for(ms(100));
    let seg = client_data_since(&rig, Instant::ZERO).remove(0);
    let before = rig.pkts().len();
    let injected = rig.now();
    rig.inject(TO_SERVER, seg.frame.clone());
    rig.run_for(ms(20));
    let answers: Vec<Pkt> = rig.pkts()[before..].iter().filter(|p| p.from == FROM_SERVER).cloned().collect();
    assert_eq!(answers.len(), 1, "{answers:#?}");
    let blocks = answers[0].tcp.options.sack_blocks;
    assert_eq!(blocks.as_slice(), [(seg.seq(), seg.end())]);
    assert!(seq_le(seg.end(), answers[0].ack()), "the block lies below the cumulative ACK");
    assert_eq!(answers[0].at, injected + ms(10), "at once");
    // (PAWS, RFC 7323 §5.3, took it for an old duplicate: its TSval is
    // older than the second segment's; the report is the same.)
    let st = rig.s().stats();
    println!(
        "duplicates {}, PAWS drops {}",
        st.tcp.duplicate_segments,
        st.drops(ustack_core::stats::DropReason::TcpPaws)
    );
    assert_eq!(st.tcp.duplicate_segments + st.drops(ustack_core::stats::DropReason::TcpPaws), 1);

    // A duplicate of out-of-order data: hold one segment back, let two
    // pass, then send the second one again.
    let mut n = 0;
    rig.set_rule(move |p| {
        if p.from == FROM_CLIENT && !p.payload.is_empty() {
            n += 1;
            if n == 1 {
                return Verdict::Drop;
            }
        }
        Verdict::Pass
    });
    let t0 = rig.now();
    let mss = rig.c().tcp_info(c).unwrap().mss;
    rig.c().send(c, &pattern(3 * mss, 3)).unwrap();
    rig.run_for(ms(8));
    let segs = client_data_since(&rig, t0);
    assert_eq!(segs.len(), 3);
    let before = rig.pkts().len();
    rig.inject(TO_SERVER, segs[1].frame.clone());
    rig.run_for(ms(12));
    let answers: Vec<Pkt> = rig.pkts()[before..].iter().filter(|p| p.from == FROM_SERVER).cloned().collect();
    let dup_ack = answers.iter().find(|a| a.tcp.options.sack_blocks.len() == 2).expect("an ACK with two blocks");
    assert_eq!(
        dup_ack.tcp.options.sack_blocks.as_slice(),
        [(segs[1].seq(), segs[1].end()), (segs[1].seq(), segs[2].end())],
        "the D-SACK block, then the block it lies in"
    );
    assert_eq!(dup_ack.ack(), segs[0].seq());
    // The hole is repaired and everything delivered once.
    let limit = rig.now() + secs(5);
    let got = rig.read_n(s, 3000 + 3 * mss, limit);
    assert_eq!(&got[3000..], &pattern(3 * mss, 3)[..]);
}

fn seq_le(a: u32, b: u32) -> bool {
    (b.wrapping_sub(a) as i32) >= 0
}

/// RFC 2883 and RFC 3708: a segment delayed in the network long enough to
/// be taken for lost is retransmitted (a spurious fast retransmit); the
/// receiver reports the retransmission as a duplicate with D-SACK, and
/// the sender, seeing every retransmission of the episode was spurious,
/// restores the congestion window it had before the recovery
/// (`tcp_info().undos`), and marks the path as reordering.
#[test]
fn dsack_undoes_a_spurious_recovery_rfc2883_rfc3708() {
    let mut rig = RigConfig::new(410).tcp(|t| t.delayed_ack = None).build();
    let (c, _l, s) = rig.establish();
    warm_up(&mut rig, c, s);
    let held: Rc<RefCell<Option<Pkt>>> = Rc::default();
    let h2 = held.clone();
    let mut n = 0;
    rig.set_rule(move |p| {
        if p.from == FROM_CLIENT && !p.payload.is_empty() {
            n += 1;
            if n == 2 {
                *h2.borrow_mut() = Some(p.clone());
                return Verdict::Drop;
            }
        }
        Verdict::Pass
    });
    let before = rig.c().tcp_info(c).unwrap();
    let mss = before.mss;
    let t0 = rig.now();
    rig.c().send(c, &pattern(8 * mss, 4)).unwrap();
    // The second segment reappears 15 ms late: after the sender has
    // decided it was lost and resent it, before the resend arrives.
    let limit = t0 + secs(1);
    rig.run_until_true(limit, "the second segment is held", |r| r.now() > t0 && held.borrow().is_some());
    let held_at = rig.now();
    rig.run_until(held_at + ms(15));
    rig.inject(TO_SERVER, held.borrow().as_ref().unwrap().frame.clone());
    let got = rig.read_n(s, 8 * mss, t0 + secs(2));
    assert!(got == pattern(8 * mss, 4));
    rig.run_for(ms(200));
    let segs = client_data_since(&rig, t0);
    let resent: Vec<&Pkt> = segs.iter().filter(|p| p.seq() == held.borrow().as_ref().unwrap().seq()).collect();
    assert_eq!(resent.len(), 2, "sent, and sent again: {segs:#?}");
    let info = rig.c().tcp_info(c).unwrap();
    let st = rig.c().stats().tcp;
    assert_eq!((st.fast_retransmits, st.retransmitted_segments, st.timeouts), (1, 1, 0));
    assert_eq!(info.dsacks, 1, "{info:?}");
    assert_eq!(info.undos, 1, "{info:?}");
    assert!(info.reordering);
    assert!(info.cwnd >= before.cwnd, "the window is back: {} before, {} now", before.cwnd, info.cwnd);
    // The D-SACK came from the server.
    let dsack = rig
        .pkts_from(FROM_SERVER)
        .into_iter()
        .find(|p| p.at > t0 && p.tcp.options.sack_blocks.as_slice().first().is_some_and(|b| seq_le(b.1, p.ack())))
        .expect("a D-SACK");
    assert_eq!(dsack.tcp.options.sack_blocks.as_slice()[0].0, resent[0].seq());
}

/// RFC 6675 §5: a window that loses several segments recovers them all
/// in one episode of about one round trip: each hole is retransmitted as
/// soon as the SACKs above it show it lost, one window reduction, no
/// timeout, and the cumulative ACK covers the whole window about one RTT
/// after the first retransmission.
#[test]
fn several_losses_in_one_window_recovered_in_about_one_rtt_rfc6675_5() {
    let mut rig = RigConfig::new(420).client_tcp(|t| t.initial_window = 40).build();
    let (c, _l, s) = rig.establish();
    let mut n = 0;
    rig.set_rule(move |p| {
        if p.from == FROM_CLIENT && !p.payload.is_empty() {
            n += 1;
            if [3, 6, 9, 12, 30].contains(&n) {
                return Verdict::Drop;
            }
        }
        Verdict::Pass
    });
    let mss = rig.c().tcp_info(c).unwrap().mss;
    let t0 = rig.now();
    let data = pattern(40 * mss, 5);
    rig.c().send(c, &data).unwrap();
    rig.c().shutdown(c, Shutdown::Write).unwrap();
    let got = rig.read_n(s, data.len(), t0 + secs(2));
    assert!(got == data);
    rig.run_for(ms(100));
    let segs = client_data_since(&rig, t0);
    let first: Vec<&Pkt> = segs.iter().take(40).collect();
    let rtx: Vec<&Pkt> = segs.iter().skip(40).collect();
    let lost: Vec<u32> = [3, 6, 9, 12, 30].iter().map(|k| first[k - 1].seq()).collect();
    assert_eq!(rtx.iter().map(|p| p.seq()).collect::<Vec<_>>(), lost, "each hole resent once, in order");
    let rtt = ms(20);
    let span = rtx.last().unwrap().at - rtx[0].at;
    assert!(span <= rtt / 2, "the holes were resent within {span:?}");
    // The ACK that covers the whole window.
    let end = first.last().unwrap().end();
    let full = rig.pkts_from(FROM_SERVER).into_iter().find(|p| seq_le(end, p.ack())).unwrap();
    let took = full.at - rtx[0].at;
    println!("holes resent within {span:?}; window acknowledged {took:?} after the first retransmission");
    assert!(took <= rtt * 3 / 2, "recovery took {took:?}");
    let st = rig.c().stats().tcp;
    assert_eq!((st.fast_retransmits, st.timeouts, st.retransmitted_segments), (1, 0, 5));
    let info = rig.c().tcp_info(c).unwrap();
    assert_eq!((info.lost_segments, info.sacked_bytes), (0, 0));
}

/// RFC 8985 §6.2-6.3: with fewer than DupThresh segments SACKed above a
/// hole (and no reordering seen), RACK waits a reordering window of
/// min_RTT/4 past the RTT before calling the hole lost; the reordering
/// timer ends the wait, so the retransmission leaves RTT + reo_wnd after
/// the original, long before the probe or retransmission timers.
#[test]
fn rack_reorder_timer_marks_loss_after_rtt_plus_reo_wnd_rfc8985_6_3() {
    let mut rig = RigConfig::new(430).tcp(|t| t.delayed_ack = None).build();
    let (c, _l, s) = rig.establish();
    warm_up(&mut rig, c, s);
    let mut n = 0;
    rig.set_rule(move |p| {
        if p.from == FROM_CLIENT && !p.payload.is_empty() {
            n += 1;
            if n == 1 {
                return Verdict::Drop;
            }
        }
        Verdict::Pass
    });
    let mss = rig.c().tcp_info(c).unwrap().mss;
    let t0 = rig.now();
    rig.c().send(c, &pattern(3 * mss, 6)).unwrap();
    let got = rig.read_n(s, 3 * mss, t0 + secs(2));
    assert!(got == pattern(3 * mss, 6));
    let segs = client_data_since(&rig, t0);
    assert_eq!(segs.len(), 4);
    let (orig, rtx) = (&segs[0], &segs[3]);
    assert_eq!(rtx.seq(), orig.seq());
    // RTT 20 ms (the third segment's, the latest delivered) plus a
    // quarter of the minimum RTT; the middlebox sees both 5 ms later.
    let waited = rtx.at - orig.at;
    let rtt = ms(20);
    println!("retransmitted {waited:?} after the original");
    assert!(waited >= rtt + rtt / 4 && waited <= rtt + rtt / 4 + ms(2), "{waited:?}");
    let st = rig.c().stats().tcp;
    assert_eq!((st.fast_retransmits, st.tail_loss_probes, st.timeouts), (1, 0, 0));
}

/// RFC 8985 §6.2 (steps 3 and 4): a segment that arrives 4 ms late,
/// overtaken by the next four (pacing is off, so a window leaves at once),
/// is taken for lost the first time: three segments SACKed and no
/// reordering seen make the reordering window zero. It is resent
/// needlessly and the D-SACK for the copy shows the path reorders. From
/// then on RACK allows a reordering window of min_RTT/4 (5 ms) even with
/// many segments SACKed, and the same reordering causes no retransmission.
#[test]
fn reordered_segment_not_retransmitted_once_rack_saw_reordering_rfc8985_6_2() {
    let mut rig = RigConfig::new(440)
        .tcp(|t| {
            t.delayed_ack = None;
            t.pacing = false;
        })
        .build();
    let (c, _l, s) = rig.establish();
    warm_up(&mut rig, c, s);
    let mss = rig.c().tcp_info(c).unwrap().mss;
    for round in 0..2 {
        let held: Rc<RefCell<Option<Vec<u8>>>> = Rc::default();
        let h2 = held.clone();
        let mut n = 0;
        rig.set_rule(move |p| {
            if p.from == FROM_CLIENT && !p.payload.is_empty() {
                n += 1;
                if n == 2 {
                    *h2.borrow_mut() = Some(p.frame.clone());
                    return Verdict::Drop;
                }
            }
            Verdict::Pass
        });
        let t0 = rig.now();
        let before = rig.c().stats().tcp.retransmitted_segments;
        let data = pattern(6 * mss, 7 + round);
        rig.c().send(c, &data).unwrap();
        rig.run_until_true(t0 + secs(1), "the second segment is held", |_| held.borrow().is_some());
        rig.run_until(rig.now() + ms(4));
        rig.inject(TO_SERVER, held.borrow_mut().take().unwrap());
        let got = rig.read_n(s, data.len(), t0 + secs(1));
        assert!(got == data);
        rig.run_for(ms(300));
        let resent = rig.c().stats().tcp.retransmitted_segments - before;
        let info = rig.c().tcp_info(c).unwrap();
        println!("round {round}: {resent} retransmitted; {info:?}");
        if round == 0 {
            assert_eq!(resent, 1, "the first time, the late segment is resent");
            assert_eq!(info.dsacks, 1, "and the copy reported");
            assert!(info.reordering);
        } else {
            assert_eq!(resent, 0, "once reordering was seen, it is not");
            assert_eq!(info.dsacks, 1);
        }
    }
    assert_eq!(rig.c().stats().tcp.timeouts, 0);
}

/// RFC 8985 §7: the last two segments of a flight are lost, so no ACK
/// will tell of them. The tail loss probe fires two SRTTs after the last
/// ACK and resends the last segment; its SACK shows the other hole, which
/// RACK repairs. All done in a few round trips, long before the RTO, which
/// never fires.
#[test]
fn tail_loss_probe_recovers_lost_tail_long_before_the_rto_rfc8985_7() {
    let mut rig = Rig::new(450);
    let (c, _l, s) = rig.establish();
    warm_up(&mut rig, c, s);
    let mut n = 0;
    rig.set_rule(move |p| {
        if p.from == FROM_CLIENT && !p.payload.is_empty() {
            n += 1;
            if n == 9 || n == 10 {
                return Verdict::Drop;
            }
        }
        Verdict::Pass
    });
    let mss = rig.c().tcp_info(c).unwrap().mss;
    let srtt = rig.c().tcp_info(c).unwrap().rtt.unwrap();
    let rto = rig.c().tcp_info(c).unwrap().rto;
    let t0 = rig.now();
    let data = pattern(10 * mss, 8);
    rig.c().send(c, &data).unwrap();
    let got = rig.read_n(s, data.len(), t0 + secs(2));
    assert!(got == data);
    let segs = client_data_since(&rig, t0);
    assert_eq!(segs.len(), 12, "{segs:#?}");
    let probe = &segs[10];
    assert_eq!(probe.seq(), segs[9].seq(), "the probe is the last segment again");
    // The last ACK the client had when it sent the probe (each crosses the
    // 5 ms link between the middlebox and the client).
    let last_ack = rig.pkts_from(FROM_SERVER).into_iter().rfind(|p| p.at + ms(10) <= probe.at).unwrap();
    let pto = probe.at - last_ack.at - ms(10);
    println!("SRTT {srtt:?}, RTO {rto:?}; probe {pto:?} after the last ACK");
    assert!(pto >= srtt * 2 && pto <= srtt * 2 + ms(1), "{pto:?}");
    assert_eq!(segs[11].seq(), segs[8].seq(), "then the other hole");
    assert!(segs[11].at - probe.at <= srtt * 3 / 2);
    let st = rig.c().stats().tcp;
    assert_eq!((st.tail_loss_probes, st.timeouts, st.retransmitted_segments), (1, 0, 2));
    assert!(segs[11].at - t0 < rto, "repaired {:?} after the send; the RTO is {rto:?}", segs[11].at - t0);
}

/// RFC 8985 §7.2: when the probe timeout would come after the RTO (one
/// segment in flight, which may be waiting on a delayed ACK: 2 SRTT +
/// 200 ms), the probe is sent at the RTO's time instead of a timeout: the
/// lone lost segment is resent, the RTO does not fire and the congestion
/// window is not collapsed to one segment.
#[test]
fn lone_lost_segment_probed_at_the_rto_time_not_timed_out_rfc8985_7_2() {
    let mut rig = Rig::new(455);
    let (c, _l, s) = rig.establish();
    warm_up(&mut rig, c, s);
    let mut lost = false;
    rig.set_rule(move |p| {
        if p.from == FROM_CLIENT && !p.payload.is_empty() && !lost {
            lost = true;
            return Verdict::Drop;
        }
        Verdict::Pass
    });
    let rto = rig.c().tcp_info(c).unwrap().rto;
    let t0 = rig.now();
    rig.c().send(c, b"alone").unwrap();
    let got = rig.read_n(s, 5, t0 + secs(2));
    assert_eq!(got, b"alone");
    let segs = client_data_since(&rig, t0);
    assert_eq!(segs.len(), 2);
    let waited = segs[1].at - segs[0].at;
    assert!(waited >= rto && waited <= rto + ms(1), "resent after {waited:?}; RTO {rto:?}");
    let st = rig.c().stats().tcp;
    assert_eq!((st.tail_loss_probes, st.timeouts), (1, 0));
    let info = rig.c().tcp_info(c).unwrap();
    assert!(info.cwnd > info.mss, "{info:?}");
    assert_eq!(info.backoff, 0);
}

/// RFC 6298 §2.4: the RTO has a floor, 200 ms by default as on Linux, 1 s
/// (the RFC's value) when configured; on a 20 ms path the computed RTO is
/// far below either. Without SACK (so without tail loss probes) the first
/// retransmission comes when the timer fires. The backoff doubles it.
#[test]
fn rto_minimum_200ms_by_default_1s_selectable_rfc6298_2_4() {
    for (min, seed) in [(None, 460), (Some(secs(1)), 461)] {
        let mut rig = RigConfig::new(seed)
            .tcp(|t| {
                t.sack = false;
                if let Some(m) = min {
                    t.min_rto = m;
                }
            })
            .build();
        let (c, _l, s) = rig.establish();
        warm_up(&mut rig, c, s);
        let want = min.unwrap_or(ms(200));
        assert_eq!(rig.c().tcp_info(c).unwrap().rto, want);
        rig.net.set_link_up(rig.client_link, false);
        let t0 = rig.now();
        rig.c().send(c, b"x").unwrap();
        rig.run_for(want * 3 + ms(10));
        let ce = rig.client_events();
        let timeouts: Vec<Duration> = ce
            .iter()
            .filter(|e| e.time >= t0 && matches!(e.kind, EventKind::TcpTimer { timer: Timer::Retransmit, .. }))
            .map(|e| e.time - t0)
            .collect();
        assert_eq!(timeouts, [want, want * 3], "min RTO {min:?}");
    }
}

/// RFC 6298 §3 (Karn) and §5.7: without timestamps, an RTT sample from a
/// retransmitted segment is ambiguous and not taken: SRTT and RTTVAR stay
/// exactly as they were (here the path slowed down while the segment
/// waited, so a sample would have moved them). The backoff of the timeout
/// ends with the next acknowledgement of new data, and the next clean
/// segment gives a sample again.
#[test]
fn karn_no_sample_from_a_retransmission_backoff_reset_on_new_ack_rfc6298_3() {
    let mut rig = RigConfig::new(470)
        .tcp(|t| {
            t.timestamps = false;
            t.sack = false;
            t.delayed_ack = None;
        })
        .build();
    let (c, _l, s) = rig.establish();
    warm_up(&mut rig, c, s);
    let before = rig.c().tcp_info(c).unwrap();
    assert_eq!(before.rtt, Some(ms(20)));
    let mut lost = false;
    rig.set_rule(move |p| {
        if p.from == FROM_CLIENT && !p.payload.is_empty() && !lost {
            lost = true;
            return Verdict::Drop;
        }
        Verdict::Pass
    });
    rig.c().send(c, b"once").unwrap();
    rig.run_for(before.rto + ms(1));
    let during = rig.c().tcp_info(c).unwrap();
    assert_eq!((during.backoff, during.rto), (1, before.rto * 2));
    let slow = ustack_core::sim::LinkConfig::default().delay(ms(50));
    rig.net.set_link_config(rig.client_link, slow.clone());
    rig.net.set_link_config(rig.server_link, slow);
    rig.run_for(secs(1));
    let after = rig.c().tcp_info(c).unwrap();
    assert_eq!(rig.c().stats().tcp.retransmitted_segments, 1);
    assert_eq!((after.rtt, after.rttvar), (before.rtt, before.rttvar), "no sample from the retransmission");
    assert_eq!((after.backoff, after.rto), (0, before.rto), "the new ACK ended the backoff");
    // A clean segment: a sample of the slower path.
    rig.c().send(c, b"twice").unwrap();
    rig.run_for(secs(1));
    let later = rig.c().tcp_info(c).unwrap();
    assert_eq!(later.rtt, Some(ms(20) * 7 / 8 + ms(200) / 8));
    let limit = rig.now() + secs(1);
    let got = rig.read_n(s, 9, limit);
    assert_eq!(got, b"oncetwice");
    assert_eq!(rig.c().tcp_state(c), Ok(State::Established));
}
