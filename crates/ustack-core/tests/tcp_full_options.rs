//! "TCP in full", the options: window scaling, timestamps and PAWS (RFC
//! 7323), SACK negotiation and the blocks a receiver sends (RFC 2018), and
//! the MSS, clamped to the MTU and to what the options leave (RFC 9293
//! §3.7.1, RFC 6691, RFC 1191).

mod common;

use common::*;
use ustack_core::sim::{LinkConfig, Verdict};
use ustack_core::socket::SockOpt;
use ustack_core::stats::DropReason;
use ustack_core::tcp::State;
use ustack_core::wire::{DstUnreachable, TcpFlags};
use ustack_core::{Shutdown, SocketHandle};

/// The data segments the client sent, first transmissions and
/// retransmissions alike, in the order they reached the middlebox.
fn client_data(rig: &Rig) -> Vec<Pkt> {
    rig.pkts_from(FROM_CLIENT).into_iter().filter(|p| !p.payload.is_empty()).collect()
}

/// Sends `data` from the server to the client, which reads as it comes,
/// calling `each` after every step; checks what arrived.
fn download_watching(rig: &mut Rig, c: SocketHandle, s: SocketHandle, data: &[u8], mut each: impl FnMut(&mut Rig)) {
    let (mut off, mut shut) = (0, false);
    let mut got = Vec::new();
    let limit = rig.now() + secs(120);
    loop {
        off += rig.s().send(s, &data[off..]).unwrap_or(0);
        if off == data.len() && !shut {
            rig.s().shutdown(s, Shutdown::Write).unwrap();
            shut = true;
        }
        if rig.read_some(rig.client, c, &mut got).unwrap() {
            break;
        }
        each(rig);
        assert!(rig.step_before(limit), "download stalled at {} bytes", got.len());
    }
    assert!(got == data, "the download arrived intact");
}

fn download(rig: &mut Rig, c: SocketHandle, s: SocketHandle, data: &[u8]) {
    download_watching(rig, c, s, data, |_| {});
}

/// RFC 7323 §2.2: window scaling is used only when both SYNs carry the
/// option. A server that does not scale leaves it out of its SYN-ACK, and
/// then neither side scales: the client, whose SYN offered a shift, sends
/// windows no larger than 65535 and the server never has more than that in
/// flight. When both offer it, both scale.
#[test]
fn window_scale_only_when_both_syns_carry_it_rfc7323_2_2() {
    let link = LinkConfig::default().delay(ms(5)).bandwidth_bps(100_000_000);
    // The server does not scale; the client would.
    let mut rig = RigConfig::new(300).link(link.clone()).server_tcp(|t| t.window_scaling = false).build();
    let (c, _l, s) = rig.establish();
    let syn = rig.pkts().into_iter().find(|p| p.is_syn()).unwrap();
    let synack = rig.pkts().into_iter().find(|p| p.is_synack()).unwrap();
    assert_eq!(syn.tcp.options.window_scale, Some(9), "the client offers its shift");
    assert_eq!(synack.tcp.options.window_scale, None, "the server does not answer with one");
    assert!(!rig.c().tcp_connection(c).unwrap().negotiated_options().0);
    assert!(!rig.s().tcp_connection(s).unwrap().negotiated_options().0);
    let mut most_in_flight = 0;
    download_watching(&mut rig, c, s, &pattern(1 << 20, 1), |r| {
        most_in_flight = most_in_flight.max(r.s().tcp_info(s).unwrap().in_flight)
    });
    // The client's window is its buffer clamped to 64 KiB, unscaled.
    for p in rig.pkts_from(FROM_CLIENT) {
        assert!(p.tcp.window as usize <= 0xffff);
    }
    assert!(rig.pkts_from(FROM_CLIENT).iter().any(|p| p.tcp.window == 0xffff));
    assert_eq!(rig.s().tcp_info(s).unwrap().snd_wnd, 0xffff);
    assert!(most_in_flight <= 0xffff && most_in_flight > 40_000, "in flight at most {most_in_flight}");

    // Both scale.
    let mut rig = RigConfig::new(301).link(link).build();
    let (c, _l, s) = rig.establish();
    let synack = rig.pkts().into_iter().find(|p| p.is_synack()).unwrap();
    assert_eq!(synack.tcp.options.window_scale, Some(9));
    assert!(rig.c().tcp_connection(c).unwrap().negotiated_options().0);
    download(&mut rig, c, s, &pattern(1 << 20, 2));
    assert!(rig.s().tcp_info(s).unwrap().snd_wnd > 0xffff);
}

/// The shift a SYN offers, for a receive buffer: RFC 7323 §2.2-2.3. The
/// smallest shift that lets the 16-bit field cover the largest window the
/// buffer may offer (auto-tuning's cap when it is on), at most 14; a
/// buffer of 64 KiB or less offers shift 0, which still says "I scale".
/// SO_RCVBUF set before connect decides it. The SYN's own window is never
/// scaled (§2.2).
#[test]
fn window_shift_from_the_receive_buffer_rfc7323_2_3() {
    // (what, SO_RCVBUF, auto-tuning, its cap, the shift, the SYN's window)
    let cases = [
        ("auto-tuning to 16 MiB", 256 << 10, true, 16 << 20, 9, 0xffff),
        ("1 MiB fixed", 1 << 20, false, 0, 5, 0xffff),
        ("64 KiB fixed", 1 << 16, false, 0, 1, 0xffff),
        ("32 KiB fixed", 1 << 15, false, 0, 0, 1 << 15),
        ("auto-tuning to 1 GiB", 256 << 10, true, 1 << 30, 14, 0xffff),
    ];
    for (i, (what, buffer, autotune, cap, shift, window)) in cases.into_iter().enumerate() {
        let mut rig = RigConfig::new(310 + i as u64)
            .client_tcp(|t| {
                t.recv_buffer = buffer;
                t.autotune = autotune;
                t.recv_buffer_max = cap;
            })
            .build();
        let (c, _l, _s) = rig.establish();
        let syn = rig.pkts().into_iter().find(|p| p.is_syn()).unwrap();
        assert_eq!(syn.tcp.options.window_scale, Some(shift), "{what}");
        assert_eq!(syn.tcp.window, window, "{what}: the SYN's window is not scaled");
        assert!(rig.c().tcp_connection(c).unwrap().negotiated_options().0, "{what}");
    }
    // SO_RCVBUF on the socket before connect.
    let mut rig = Rig::new(320);
    let _l = rig.listen(4);
    let c = rig.c().tcp_socket().unwrap();
    rig.c().set_option(c, SockOpt::RecvBuffer(1 << 20)).unwrap();
    rig.c().connect(c, server_addr()).unwrap();
    rig.run_for(ms(100));
    assert_eq!(rig.c().tcp_state(c), Ok(State::Established));
    let syn = rig.pkts().into_iter().find(|p| p.is_syn()).unwrap();
    assert_eq!(syn.tcp.options.window_scale, Some(5));
}

/// RFC 7323 §2: windows beyond 64 KiB are used, not just offered. On a
/// 100 Mbit/s path with a 20 ms round trip (a bandwidth-delay product of
/// 250 kB) the sender keeps more than 64 KiB in flight, and the receiver's
/// scaled window is larger than the 16-bit field could say.
#[test]
fn windows_larger_than_64k_are_used_rfc7323_2() {
    let link = LinkConfig::default().delay(ms(5)).bandwidth_bps(100_000_000);
    let mut rig = RigConfig::new(330).link(link).build();
    let (c, _l, s) = rig.establish();
    let mut most_in_flight = 0;
    download_watching(&mut rig, c, s, &pattern(4 << 20, 3), |r| {
        most_in_flight = most_in_flight.max(r.s().tcp_info(s).unwrap().in_flight)
    });
    println!("most in flight: {most_in_flight} bytes");
    assert!(most_in_flight > 200_000, "most in flight: {most_in_flight}");
    let shift = rig.pkts().into_iter().find(|p| p.is_syn()).unwrap().tcp.options.window_scale.unwrap();
    let widest = rig.pkts_from(FROM_CLIENT).iter().map(|p| (p.tcp.window as usize) << shift).max().unwrap();
    assert!(widest > 250_000, "the client offered at most {widest}");
}

/// RFC 7323 §3 and §4.1: with timestamps negotiated every segment carries
/// them, each TSecr echoes a TSval the peer sent, and the RTT is measured
/// from the echo, including for a retransmitted segment (whose echo says
/// which transmission was acknowledged, so Karn's rule is not needed):
/// the path slows from a 20 ms to a 200 ms round trip while a segment
/// waits for its retransmission, and the retransmission's sample moves
/// SRTT toward 200 ms.
#[test]
fn timestamps_on_every_segment_and_rtt_from_tsecr_rfc7323_4_1() {
    let mut rig = RigConfig::new(340).tcp(|t| t.delayed_ack = None).build();
    let (c, _l, s) = rig.establish();
    for _ in 0..5 {
        rig.c().send(c, &pattern(3000, 4)).unwrap();
        rig.run_for(ms(100));
    }
    let info = rig.c().tcp_info(c).unwrap();
    assert_eq!(info.rtt, Some(ms(20)), "{info:?}");
    // Every segment carried timestamps; every echo is a TSval the other
    // side had sent by then.
    let pkts = rig.pkts();
    for (i, p) in pkts.iter().enumerate() {
        let (_, ecr) = p.tcp.options.timestamps.unwrap_or_else(|| panic!("no timestamps: {p}"));
        if p.is_syn() {
            assert_eq!(ecr, 0);
            continue;
        }
        let echoed = pkts[..i].iter().any(|q| q.from != p.from && q.tcp.options.timestamps.unwrap().0 == ecr);
        assert!(echoed, "{p}: TSecr {ecr} was never sent");
    }
    // Lose the next segment; before its retransmission the path slows down.
    let mut lost = false;
    rig.set_rule(move |p| {
        if p.from == FROM_CLIENT && !p.payload.is_empty() && !lost {
            lost = true;
            return Verdict::Drop;
        }
        Verdict::Pass
    });
    rig.c().send(c, b"late").unwrap();
    rig.run_for(ms(50));
    let slow = LinkConfig::default().delay(ms(50));
    rig.net.set_link_config(rig.client_link, slow.clone());
    rig.net.set_link_config(rig.server_link, slow);
    rig.run_for(secs(2));
    let mut got = Vec::new();
    rig.read_some(rig.server, s, &mut got).unwrap();
    assert!(got.ends_with(b"late"));
    let retransmission = client_data(&rig).into_iter().rfind(|p| p.payload == b"late").unwrap();
    assert!(!retransmission.dropped);
    let after = rig.c().tcp_info(c).unwrap();
    // One sample of 200 ms: SRTT = 7/8 * 20 + 1/8 * 200.
    assert_eq!(after.rtt, Some(ms(20) * 7 / 8 + ms(200) / 8), "{after:?}");
}

/// PAWS (RFC 7323 §5.3): a segment whose TSval is older than TS.Recent is
/// an old duplicate, even with an acceptable sequence number: it is
/// dropped (its data is not delivered) and answered with an ACK. RSTs are
/// not subject to PAWS (§5.3 R1 applies to non-RST segments).
#[test]
fn paws_drops_an_old_duplicate_rfc7323_5_3() {
    let mut rig = Rig::new(350);
    let (c, _l, s) = rig.establish();
    rig.c().send(c, b"first").unwrap();
    rig.run_for(ms(100));
    let old = client_data(&rig).pop().unwrap();
    rig.c().send(c, b"second").unwrap();
    rig.run_for(ms(100));
    let mut got = Vec::new();
    rig.read_some(rig.server, s, &mut got).unwrap();
    assert_eq!(got, b"firstsecond");
    let last = client_data(&rig).pop().unwrap();
    // A segment that would be accepted (SEQ = RCV.NXT) but carries the old
    // segment's TSval.
    let mut seg = forged_header(&old, TcpFlags::ACK | TcpFlags::PSH, last.end(), last.ack());
    seg.options.timestamps = old.tcp.options.timestamps;
    let before = rig.pkts().len();
    rig.inject(TO_SERVER, forge(&old, &seg, b"stale"));
    rig.run_for(ms(50));
    let answers: Vec<Pkt> = rig.pkts()[before..].iter().filter(|p| p.from == FROM_SERVER).cloned().collect();
    assert_eq!(answers.len(), 1, "{answers:#?}");
    assert!(answers[0].is_pure_ack());
    assert_eq!(answers[0].ack(), last.end(), "the old duplicate's data was not acknowledged");
    assert_eq!(rig.s().stats().drops(DropReason::TcpPaws), 1);
    got.clear();
    rig.read_some(rig.server, s, &mut got).unwrap();
    assert!(got.is_empty(), "nothing delivered");
    // The same segment with a current TSval is accepted.
    let fresh = client_data(&rig).pop().unwrap();
    let mut seg = forged_header(&fresh, TcpFlags::ACK | TcpFlags::PSH, last.end(), last.ack());
    let (val, ecr) = fresh.tcp.options.timestamps.unwrap();
    seg.options.timestamps = Some((val + 1, ecr));
    rig.inject(TO_SERVER, forge(&fresh, &seg, b"fresh"));
    rig.run_for(ms(50));
    rig.read_some(rig.server, s, &mut got).unwrap();
    assert_eq!(got, b"fresh");
    assert_eq!(rig.s().tcp_state(s), Ok(State::Established));
}

/// RFC 7323 §5.5: after more than 24 days idle, TS.Recent is no longer
/// valid for PAWS. A millisecond timestamp clock moves by more than 2^31
/// in 25 days, so the peer's next TSval looks older than TS.Recent; the
/// segment must be accepted all the same, and TS.Recent taken from it.
#[test]
fn paws_ts_recent_invalid_after_24_days_idle_rfc7323_5_5() {
    let mut rig = Rig::new(360);
    let (c, _l, s) = rig.establish();
    rig.c().send(c, b"before").unwrap();
    rig.run_for(ms(100));
    let before_idle = client_data(&rig).pop().unwrap().tcp.options.timestamps.unwrap().0;
    // 25 days of silence (no keep-alive).
    rig.run_for(secs(25 * 24 * 3600));
    rig.c().send(c, b"after").unwrap();
    rig.run_for(ms(100));
    let after_idle = client_data(&rig).pop().unwrap();
    let tsval = after_idle.tcp.options.timestamps.unwrap().0;
    assert!((tsval.wrapping_sub(before_idle) as i32) < 0, "the TSval wrapped past half the space");
    let mut got = Vec::new();
    rig.read_some(rig.server, s, &mut got).unwrap();
    assert_eq!(got, b"beforeafter");
    assert_eq!(rig.s().stats().drops(DropReason::TcpPaws), 0);
    // TS.Recent follows: the server's ACK echoes the new TSval.
    let ack = rig.last_from(FROM_SERVER);
    assert_eq!(ack.tcp.options.timestamps.unwrap().1, tsval);
    assert_eq!(ack.ack(), after_idle.end());
    // And the connection goes on.
    rig.c().send(c, b"!").unwrap();
    rig.run_for(ms(100));
    got.clear();
    rig.read_some(rig.server, s, &mut got).unwrap();
    assert_eq!(got, b"!");
}

/// RFC 2018 §2: SACK is used only when both SYNs carry SACK-permitted.
/// A server without SACK leaves it out of its SYN-ACK, and then no segment
/// carries SACK blocks, through losses that make holes; with both, the
/// holes are reported.
#[test]
fn sack_permitted_only_when_both_syns_carry_it_rfc2018_2() {
    let link = LinkConfig::default().delay(ms(5)).loss(0.03);
    let mut rig = RigConfig::new(370).link(link.clone()).server_tcp(|t| t.sack = false).build();
    let (c, _l, s) = rig.establish();
    let syn = rig.pkts().into_iter().find(|p| p.is_syn() && !p.dropped).unwrap();
    let synack = rig.pkts().into_iter().find(|p| p.is_synack() && !p.dropped).unwrap();
    assert!(syn.tcp.options.sack_permitted);
    assert!(!synack.tcp.options.sack_permitted);
    assert!(!rig.c().tcp_connection(c).unwrap().negotiated_options().2);
    download(&mut rig, c, s, &pattern(300_000, 5));
    assert!(rig.c().stats().tcp.out_of_order_segments > 0, "there were holes");
    assert!(rig.pkts().iter().all(|p| p.tcp.options.sack_blocks.is_empty()));

    let mut rig = RigConfig::new(371).link(link).build();
    let (c, _l, s) = rig.establish();
    let synack = rig.pkts().into_iter().find(|p| p.is_synack() && !p.dropped).unwrap();
    assert!(synack.tcp.options.sack_permitted);
    download(&mut rig, c, s, &pattern(300_000, 6));
    assert!(rig.pkts_from(FROM_CLIENT).iter().any(|p| !p.tcp.options.sack_blocks.is_empty()));
}

/// RFC 2018 §4: the receiver reports the out-of-order data it holds, the
/// block holding the segment that triggered the ACK first, then the most
/// recently reported others; as many as fit: 3 beside timestamps (a 40
/// byte option space), 4 without. Ten segments, of which the 2nd, 4th,
/// 6th and 8th are lost: four holes.
#[test]
fn sack_blocks_most_recent_first_as_many_as_fit_rfc2018_4() {
    for timestamps in [true, false] {
        let mut rig = RigConfig::new(380).tcp(|t| t.timestamps = timestamps).build();
        let (c, _l, _s) = rig.establish();
        let mut n = 0;
        rig.set_rule(move |p| {
            if p.from == FROM_CLIENT && !p.payload.is_empty() {
                n += 1;
                if [2, 4, 6, 8].contains(&n) {
                    return Verdict::Drop;
                }
            }
            Verdict::Pass
        });
        let t0 = rig.now();
        let mss = rig.c().tcp_info(c).unwrap().mss;
        rig.c().send(c, &pattern(10 * mss, 7)).unwrap();
        rig.run_for(ms(15));
        let segs: Vec<Pkt> = client_data(&rig).into_iter().filter(|p| p.at >= t0).collect();
        assert_eq!(segs.len(), 10, "the initial window, before any ACK");
        let seg = |k: usize| &segs[k - 1];
        let block = |a: usize, b: usize| (seg(a).seq(), seg(b).end());
        rig.run_for(ms(10));
        let acks: Vec<Pkt> = rig.pkts_from(FROM_SERVER).into_iter().filter(|p| p.at >= t0).collect();
        let want: Vec<Vec<(u32, u32)>> = if timestamps {
            vec![
                vec![],
                vec![block(3, 3)],
                vec![block(5, 5), block(3, 3)],
                vec![block(7, 7), block(5, 5), block(3, 3)],
                vec![block(9, 9), block(7, 7), block(5, 5)],
                vec![block(9, 10), block(7, 7), block(5, 5)],
            ]
        } else {
            vec![
                vec![],
                vec![block(3, 3)],
                vec![block(5, 5), block(3, 3)],
                vec![block(7, 7), block(5, 5), block(3, 3)],
                vec![block(9, 9), block(7, 7), block(5, 5), block(3, 3)],
                vec![block(9, 10), block(7, 7), block(5, 5), block(3, 3)],
            ]
        };
        let got: Vec<Vec<(u32, u32)>> = acks.iter().map(|a| a.tcp.options.sack_blocks.as_slice().to_vec()).collect();
        assert_eq!(got[..want.len()], want[..], "timestamps {timestamps}: {acks:#?}");
        // Each of those ACKs acknowledges the first hole, at once.
        for (a, k) in acks.iter().zip([1, 3, 5, 7, 9, 10]) {
            assert_eq!(a.ack(), seg(2).seq());
            assert_eq!(a.at, seg(k).at + ms(10), "immediate ACK for segment {k}");
        }
        // The options fit in the 40 bytes a header has for them.
        assert!(acks.iter().all(|a| a.options_len() <= 40));
    }
}

/// RFC 9293 §3.7.1 and RFC 6691: the MSS a SYN offers is the interface
/// MTU less 40; each side sends segments no larger than the smaller MSS
/// less the options every segment carries (12 bytes of timestamps), and
/// less the SACK blocks when a data segment carries them, so no packet
/// exceeds the MTU. RFC 1191 §6.1: an ICMP "fragmentation needed" for a
/// segment in flight lowers the MSS to the path MTU's at once, and the
/// segment is sent again at the new size.
#[test]
fn mss_from_the_mtu_less_options_and_path_mtu_rfc9293_3_7_1_rfc1191_6_1() {
    let mut cfg = RigConfig::new(390).link(LinkConfig::default().delay(ms(5)).loss(0.03));
    cfg.client = cfg.client.with_mtu(1400);
    let mut rig = cfg.build();
    let (c, _l, s) = rig.establish();
    let syn = rig.pkts().into_iter().find(|p| p.is_syn() && !p.dropped).unwrap();
    let synack = rig.pkts().into_iter().find(|p| p.is_synack() && !p.dropped).unwrap();
    assert_eq!((syn.tcp.options.mss, synack.tcp.options.mss), (Some(1360), Some(1460)));
    assert_eq!(rig.c().tcp_info(c).unwrap().mss, 1348);
    assert_eq!(rig.s().tcp_info(s).unwrap().mss, 1348);
    // Both ways at once through loss: data segments carry SACK blocks.
    let up = pattern(400_000, 8);
    let down = pattern(400_000, 9);
    let mut off = (0, 0);
    let (mut got_up, mut got_down) = (Vec::new(), Vec::new());
    let limit = rig.now() + secs(60);
    let mut shut = (false, false);
    loop {
        off.0 += rig.c().send(c, &up[off.0..]).unwrap_or(0);
        off.1 += rig.s().send(s, &down[off.1..]).unwrap_or(0);
        if off.0 == up.len() && !shut.0 {
            rig.c().shutdown(c, Shutdown::Write).unwrap();
            shut.0 = true;
        }
        if off.1 == down.len() && !shut.1 {
            rig.s().shutdown(s, Shutdown::Write).unwrap();
            shut.1 = true;
        }
        let e0 = rig.read_some(rig.server, s, &mut got_up).unwrap();
        let e1 = rig.read_some(rig.client, c, &mut got_down).unwrap();
        if e0 && e1 {
            break;
        }
        assert!(rig.step_before(limit));
    }
    assert!(got_up == up && got_down == down);
    let pkts = rig.pkts();
    let with_sack: Vec<&Pkt> =
        pkts.iter().filter(|p| !p.payload.is_empty() && !p.tcp.options.sack_blocks.is_empty()).collect();
    assert!(!with_sack.is_empty(), "some data segments carried SACK blocks");
    for p in &pkts {
        assert!(p.ip.payload_len + 20 <= 1400, "{p}: {} bytes", p.ip.payload_len + 20);
        let blocks = p.tcp.options.sack_blocks.len();
        let room = if blocks > 0 { 1348 + 12 - 12 - (4 + 8 * blocks) } else { 1348 };
        assert!(p.len() <= room, "{p}");
    }
    assert!(with_sack.iter().any(|p| p.len() == 1348 - 4 - 8 * p.tcp.options.sack_blocks.len()));

    // Path MTU discovery: a router on the way says 1200.
    let mut rig = Rig::new(391);
    let (c, _l, s) = rig.establish();
    let mut first = None;
    rig.set_rule(move |p| {
        if p.from == FROM_CLIENT && p.len() > 1200 - 52 && first.is_none() {
            first = Some(p.seq());
            return Verdict::Drop;
        }
        Verdict::Pass
    });
    let data = pattern(20_000, 10);
    rig.c().send(c, &data).unwrap();
    rig.run_for(ms(7));
    let big = client_data(&rig).into_iter().find(|p| p.dropped).unwrap();
    rig.inject(TO_CLIENT, icmp_unreachable_about(&big, DstUnreachable::FragRequired { next_hop_mtu: 1200 }));
    rig.run_for(ms(200));
    assert_eq!(rig.c().tcp_info(c).unwrap().mss, 1200 - 40 - 12);
    let resent: Vec<Pkt> = client_data(&rig).into_iter().filter(|p| p.at > big.at && p.seq() == big.seq()).collect();
    assert_eq!(resent[0].len(), 1148, "the dropped segment again, at the new size, at once");
    assert!(resent[0].at < big.at + ms(20));
    let mut got = Vec::new();
    rig.read_some(rig.server, s, &mut got).unwrap();
    assert!(got == data);
    assert_eq!(rig.c().stats().tcp.timeouts, 0);
}

/// RFC 1191 §6.3: the path MTU one connection learned is kept for the
/// destination. A second connection to the same server starts with
/// segments that fit the path (no full-sized segment into the router, no
/// second ICMP error); ten minutes later the entry has expired and a new
/// connection tries the full MTU again.
#[test]
fn a_learned_path_mtu_holds_for_new_connections_until_it_expires_rfc1191_6_3() {
    let mut rig = Rig::new(392);
    let (c, l, s) = rig.establish();
    assert_eq!(rig.c().path_mtu(server_ip()), None);
    let icmp_sent = std::rc::Rc::new(std::cell::Cell::new(0u32));
    let too_big = std::rc::Rc::new(std::cell::RefCell::new(Vec::<Pkt>::new()));
    let tb = too_big.clone();
    rig.set_rule(move |p| {
        if p.from == FROM_CLIENT && p.len() > 1200 - 52 {
            tb.borrow_mut().push(p.clone());
            return Verdict::Drop;
        }
        Verdict::Pass
    });
    // Sends 20 kB on `conn` and answers each too-big segment as a router
    // would; returns the data segment sizes the client used.
    let transfer = |rig: &mut Rig, conn: SocketHandle, acc: SocketHandle| {
        let data = pattern(20_000, 11);
        rig.c().send(conn, &data).unwrap();
        let mut got = Vec::new();
        let limit = rig.now() + secs(10);
        while got.len() < data.len() {
            for big in too_big.borrow_mut().drain(..) {
                rig.inject(
                    TO_CLIENT,
                    icmp_unreachable_about(&big, DstUnreachable::FragRequired { next_hop_mtu: 1200 }),
                );
                icmp_sent.set(icmp_sent.get() + 1);
            }
            rig.read_some(rig.server, acc, &mut got).unwrap();
            assert!(rig.step_before(limit), "the transfer stalled");
        }
        assert!(got == data);
    };
    transfer(&mut rig, c, s);
    // (One error for each full segment of the initial window.)
    let first = icmp_sent.get();
    assert!(first >= 1, "the first connection learns the path MTU from the router");
    assert_eq!(rig.c().path_mtu(server_ip()), Some(1200));

    let c2 = rig.connect();
    rig.run_for(ms(50));
    let (s2, _) = rig.s().accept(l).unwrap();
    assert_eq!(rig.c().tcp_info(c2).unwrap().mss, 1200 - 40 - 12, "the second starts within the path MTU");
    transfer(&mut rig, c2, s2);
    assert_eq!(icmp_sent.get(), first, "the second connection sent nothing too big");

    rig.run_for(secs(600));
    assert_eq!(rig.c().path_mtu(server_ip()), None, "expired after 10 minutes");
    let c3 = rig.connect();
    rig.run_for(ms(50));
    let (s3, _) = rig.s().accept(l).unwrap();
    assert_eq!(rig.c().tcp_info(c3).unwrap().mss, 1448, "the full MTU again");
    transfer(&mut rig, c3, s3);
    assert!(icmp_sent.get() > first, "and the path MTU learned again");
    assert_eq!(rig.c().path_mtu(server_ip()), Some(1200));
}

/// RFC 1191 §6.3, the open connections: when one connection learns a
/// smaller path MTU, another already open to the same server sends no
/// larger from then on, without drawing an error of its own (Linux's
/// sockets share the route that holds it). One still in SYN-SENT takes it
/// when its handshake completes.
#[test]
fn a_learned_path_mtu_reaches_the_other_open_connections_to_the_peer_rfc1191_6_3() {
    let mut rig = Rig::new(393);
    let (c, l, _s) = rig.establish();
    let c2 = rig.connect();
    rig.run_for(ms(50));
    let (s2, _) = rig.s().accept(l).unwrap();
    assert_eq!(rig.c().tcp_info(c2).unwrap().mss, 1448);
    // A third is opening: its SYN-ACKs are lost until the path MTU is known.
    let c3 = rig.connect();
    let opening = std::rc::Rc::new(std::cell::Cell::new(true));
    let o = opening.clone();
    // The first connection's full-sized segments meet a router with MTU 1200.
    let mut errors = 0;
    rig.set_rule(move |p| {
        let too_big = p.from == FROM_CLIENT && p.len() > 1200 - 52;
        if too_big || (o.get() && p.is_synack()) { Verdict::Drop } else { Verdict::Pass }
    });
    rig.c().send(c, &pattern(10_000, 12)).unwrap();
    rig.run_for(ms(7));
    for big in client_data(&rig).into_iter().filter(|p| p.dropped) {
        rig.inject(TO_CLIENT, icmp_unreachable_about(&big, DstUnreachable::FragRequired { next_hop_mtu: 1200 }));
        errors += 1;
    }
    assert!(errors > 0);
    rig.run_for(ms(50));
    assert_eq!(rig.c().tcp_info(c).unwrap().mss, 1148);
    assert_eq!(rig.c().tcp_info(c2).unwrap().mss, 1148, "the other open connection took the path MTU");
    // It sends 10 kB within the path MTU: nothing dropped, nothing resent.
    let before = client_data(&rig).len();
    let data = pattern(10_000, 13);
    rig.c().send(c2, &data).unwrap();
    let got = rig.read_n(s2, data.len(), rig.now() + secs(5));
    assert!(got == data);
    assert!(client_data(&rig)[before..].iter().all(|p| !p.dropped && p.len() <= 1148));
    // The third completes its handshake (SYN retransmitted at 1 s) within it.
    assert_eq!(rig.c().tcp_state(c3), Ok(State::SynSent));
    opening.set(false);
    let limit = rig.now() + secs(5);
    rig.run_until_true(limit, "the third handshake", |r| r.c().tcp_state(c3) == Ok(State::Established));
    assert_eq!(rig.c().tcp_info(c3).unwrap().mss, 1148, "the connection that was opening took it too");
}

/// RFC 1191 §6.1 in SYN-SENT: a "fragmentation needed" that quotes the SYN
/// lowers the connection's MSS, and the SYN-ACK that follows (offering
/// 1460) must not raise it again: the MSS is the smaller of the peer's and
/// what the path carries.
#[test]
fn a_path_mtu_learned_in_syn_sent_outlives_the_syn_ack_rfc1191_6_1() {
    let mut rig = Rig::new(394);
    let l = rig.listen(4);
    let c = rig.connect();
    // The SYN reaches the server, but its SYN-ACK waits until the error is in.
    let hold = std::rc::Rc::new(std::cell::Cell::new(true));
    let h = hold.clone();
    rig.set_rule(move |p| if h.get() && p.is_synack() { Verdict::Drop } else { Verdict::Pass });
    rig.run_for(ms(5));
    let syn = rig.pkts().into_iter().find(|p| p.is_syn()).unwrap();
    rig.inject(TO_CLIENT, icmp_unreachable_about(&syn, DstUnreachable::FragRequired { next_hop_mtu: 1000 }));
    rig.run_for(ms(5));
    assert_eq!(rig.c().tcp_state(c), Ok(State::SynSent));
    hold.set(false);
    let limit = rig.now() + secs(5);
    rig.run_until_true(limit, "handshake", |r| r.c().tcp_state(c) == Ok(State::Established) && r.s().can_recv(l));
    assert_eq!(rig.c().tcp_info(c).unwrap().mss, 1000 - 40 - 12, "the SYN-ACK raised the MSS past the path MTU");
}

/// RFC 4821 §7.1 / RFC 8899 §4.3, black hole detection: a router drops
/// the client's full-sized segments and its ICMP error never comes back.
/// With `mtu_probing` the client takes the third timeout in a row of the
/// same data for a black hole, sends segments for a 1024-byte MTU, and the
/// transfer completes; without it, nothing gets through and the data keeps
/// timing out (as on Linux with `tcp_mtu_probing` 0).
#[test]
fn mtu_probing_gets_past_a_path_mtu_black_hole_rfc4821_7_1() {
    for probing in [true, false] {
        let mut rig = RigConfig::new(77).client_tcp(|t| t.mtu_probing = probing).build();
        let (c, _, s) = rig.establish();
        // Anything from the client with more than 1000 bytes of data dies
        // silently (a path of MTU 1052 with timestamps, behind a filter).
        rig.set_rule(|p| if p.from == FROM_CLIENT && p.len() > 1000 { Verdict::Drop } else { Verdict::Pass });
        let data = pattern(30_000, 5);
        let start = rig.now();
        rig.c().send(c, &data).unwrap();
        let mut got = Vec::new();
        let limit = rig.now() + secs(60);
        while got.len() < data.len() && rig.step_before(limit) {
            rig.read_some(rig.server, s, &mut got).unwrap();
        }
        let info = rig.c().tcp_info(c).unwrap();
        let holes = rig.c().stats().tcp.mtu_black_holes;
        if probing {
            assert!(got == data, "delivered {} of {}", got.len(), data.len());
            assert_eq!(info.mss, 1024 - 40 - 12, "segments for a 1024-byte MTU");
            assert_eq!(holes, 1);
            // The guess comes with the third timeout of the first segment:
            // it went out full-sized three times (the first time and after
            // two timeouts), then at the new size.
            let sent: Vec<_> = rig.pkts().into_iter().filter(|p| p.from == FROM_CLIENT && p.at >= start).collect();
            let first = sent.iter().find(|p| p.len() > 0).unwrap().tcp.seq;
            let sizes: Vec<usize> =
                sent.iter().filter(|p| p.tcp.seq == first && p.len() > 0).map(|p| p.len()).collect();
            assert_eq!(sizes[..4], [1448, 1448, 1448, info.mss], "{sizes:?}");
        } else {
            assert!(got.is_empty(), "{} bytes got through", got.len());
            assert_eq!((info.mss, holes), (1448, 0));
            assert!(info.retransmits >= 5, "{info:?}");
        }
    }
}
