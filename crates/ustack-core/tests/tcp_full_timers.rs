//! "TCP in full", timers and options: keep-alive (RFC 1122 §4.2.3.6),
//! the user timeout (RFC 5482), SO_LINGER 0, and the options API with
//! TCP_INFO.

mod common;

use common::*;
use ustack_core::sim::{LinkConfig, Verdict};
use ustack_core::socket::{SockOpt, SockOptName};
use ustack_core::tcp::{Algorithm, State};
use ustack_core::time::Instant;
use ustack_core::{Error, Shutdown};

/// Keep-alive probes the client sent at or after `t`: no data, SEQ one
/// before SND.UNA.
fn keepalive_probes(rig: &Rig, t: Instant) -> Vec<Pkt> {
    rig.pkts_from(FROM_CLIENT).into_iter().filter(|p| p.at >= t && p.payload.is_empty() && p.is_pure_ack()).collect()
}

/// RFC 1122 §4.2.3.6 with TCP_KEEPIDLE/INTVL/CNT: the first probe after
/// the idle time, then one per interval; a peer that answers nothing is
/// given up after CNT probes with ETIMEDOUT.
#[test]
fn keepalive_dead_peer_aborted_after_count_probes_with_etimedout_rfc1122_4_2_3_6() {
    let mut rig = Rig::new(800);
    let (c, _l, _s) = rig.establish();
    for opt in
        [SockOpt::KeepAlive(true), SockOpt::KeepIdle(secs(10)), SockOpt::KeepInterval(secs(2)), SockOpt::KeepCount(3)]
    {
        rig.c().set_option(c, opt).unwrap();
    }
    // The peer is gone: nothing it would send arrives.
    rig.set_rule(|p| if p.from == FROM_SERVER { Verdict::Drop } else { Verdict::Pass });
    let last = rig.pkts_from(FROM_SERVER).last().unwrap().at + ms(5);
    let t0 = rig.now();
    let limit = t0 + secs(60);
    rig.run_until_true(limit, "abort", |r| r.c().tcp_state(c) != Ok(State::Established));
    let aborted = rig.now();
    let probes = keepalive_probes(&rig, t0);
    let at: Vec<_> = probes.iter().map(|p| p.at - ms(5) - last).collect();
    assert_eq!(at, vec![secs(10), secs(12), secs(14)], "probes after the idle time, then each interval");
    assert_eq!(aborted - last, secs(16), "given up one interval after the last probe");
    assert_eq!(rig.c().tcp_state(c), Ok(State::Closed));
    let mut buf = [0u8; 16];
    assert_eq!(rig.c().recv(c, &mut buf), Err(Error::TimedOut));
    assert_eq!(rig.c().stats().tcp.connections_timed_out, 1);
}

/// RFC 1122 §4.2.3.6: a peer that answers each probe keeps the
/// connection, however long it is idle; the probes come one idle time
/// apart.
#[test]
fn keepalive_answered_keeps_an_idle_connection_rfc1122_4_2_3_6() {
    let mut rig = Rig::new(801);
    let (c, _l, s) = rig.establish();
    for opt in [SockOpt::KeepAlive(true), SockOpt::KeepIdle(secs(10)), SockOpt::KeepInterval(secs(2))] {
        rig.c().set_option(c, opt).unwrap();
    }
    let t0 = rig.now();
    rig.run_for(secs(65));
    assert_eq!(rig.c().tcp_state(c), Ok(State::Established));
    assert_eq!(rig.s().tcp_state(s), Ok(State::Established));
    let probes = keepalive_probes(&rig, t0);
    assert_eq!(probes.len(), 6, "one every 10 s");
    for w in probes.windows(2) {
        // Idle is counted from the last answer, which comes a round trip
        // after the probe.
        assert_eq!(w[1].at - w[0].at, secs(10) + ms(20));
    }
    let answers = rig.pkts_from(FROM_SERVER).into_iter().filter(|p| p.at > t0).count();
    assert_eq!(answers, 6, "each probe answered");
    // Still usable.
    rig.c().send(c, b"still here").unwrap();
    rig.c().shutdown(c, Shutdown::Write).unwrap();
    let limit = rig.now() + secs(5);
    assert_eq!(rig.read_to_eof(rig.server, s, limit), b"still here");
}

/// RFC 5482 §2 (TCP_USER_TIMEOUT): data that stays unacknowledged for the
/// user timeout aborts the connection with ETIMEDOUT, long before the
/// retry count would.
#[test]
fn user_timeout_aborts_after_n_seconds_of_unacked_data_rfc5482_2() {
    let mut rig = RigConfig::new(810).client_tcp(|t| t.retries = 100).build();
    let (c, _l, _s) = rig.establish();
    rig.c().set_option(c, SockOpt::UserTimeout(Some(secs(3)))).unwrap();
    assert_eq!(rig.c().get_option(c, SockOptName::UserTimeout), Ok(SockOpt::UserTimeout(Some(secs(3)))));
    rig.set_rule(|p| if p.from == FROM_CLIENT { Verdict::Drop } else { Verdict::Pass });
    let t0 = rig.now();
    rig.c().send(c, &pattern(5000, 1)).unwrap();
    let limit = t0 + secs(60);
    rig.run_until_true(limit, "abort", |r| r.c().tcp_state(c) != Ok(State::Established));
    let after = rig.now() - t0;
    assert!(after >= secs(3), "not before the user timeout: {after:?}");
    assert!(after <= secs(3) + ms(200), "at the user timeout: {after:?}");
    let mut buf = [0u8; 16];
    assert_eq!(rig.c().recv(c, &mut buf), Err(Error::TimedOut));
}

/// SO_LINGER with a zero timeout: close resets the connection (RFC 9293
/// §3.10.5's ABORT) and frees the socket at once; the peer reads
/// ECONNRESET.
#[test]
fn linger_zero_close_sends_rst_and_frees_rfc9293_3_10_5() {
    let mut rig = Rig::new(820);
    let (c, _l, s) = rig.establish();
    rig.c().set_option(c, SockOpt::Linger(Some(ms(0)))).unwrap();
    assert_eq!(rig.c().get_option(c, SockOptName::Linger), Ok(SockOpt::Linger(Some(ms(0)))));
    rig.c().send(c, b"unsent or not").unwrap();
    let sockets = rig.c().socket_count();
    let t0 = rig.now();
    rig.c().close(c).unwrap();
    assert_eq!(rig.c().send(c, b"x"), Err(Error::BadHandle), "the handle is stale at once");
    rig.run_for(ms(50));
    assert_eq!(rig.c().socket_count(), sockets - 1, "freed once the RST is out");
    assert_eq!(rig.c().tcp_state(c), Err(Error::BadHandle));
    let from_client: Vec<Pkt> = rig.pkts_from(FROM_CLIENT).into_iter().filter(|p| p.at >= t0).collect();
    assert!(from_client.iter().any(|p| p.is_rst()), "a RST");
    assert!(!from_client.iter().any(|p| p.is_fin()), "no FIN");
    let mut buf = [0u8; 64];
    let mut r = rig.s().recv(s, &mut buf);
    while let Ok(n) = r {
        assert!(n > 0, "a reset, not an end of file");
        r = rig.s().recv(s, &mut buf);
    }
    assert_eq!(r, Err(Error::ConnectionReset));
    assert_eq!(rig.c().tcp_connections().count(), 0, "nothing left behind, not even TIME-WAIT");
}

/// Every option set on a live connection reads back as set.
#[test]
fn options_read_back_after_set_on_a_connection() {
    let mut rig = Rig::new(830);
    let (c, _l, _s) = rig.establish();
    let cases = [
        (SockOpt::KeepAlive(true), SockOptName::KeepAlive),
        (SockOpt::KeepIdle(secs(30)), SockOptName::KeepIdle),
        (SockOpt::KeepInterval(secs(5)), SockOptName::KeepInterval),
        (SockOpt::KeepCount(4), SockOptName::KeepCount),
        (SockOpt::NoDelay(true), SockOptName::NoDelay),
        (SockOpt::UserTimeout(Some(secs(7))), SockOptName::UserTimeout),
        (SockOpt::UserTimeout(None), SockOptName::UserTimeout),
        (SockOpt::Linger(Some(secs(2))), SockOptName::Linger),
        (SockOpt::Congestion(Algorithm::NewReno), SockOptName::Congestion),
        (SockOpt::Congestion(Algorithm::Cubic), SockOptName::Congestion),
        (SockOpt::RecvBuffer(400_000), SockOptName::RecvBuffer),
        (SockOpt::SendBuffer(300_000), SockOptName::SendBuffer),
        (SockOpt::ReuseAddr(true), SockOptName::ReuseAddr),
    ];
    for (opt, name) in cases {
        rig.c().set_option(c, opt).unwrap();
        assert_eq!(rig.c().get_option(c, name), Ok(opt), "{name:?}");
    }
    // TCP_MAXSEG reads back the payload a segment carries: the value set,
    // less the 12 bytes of timestamp option every segment has (as Linux's
    // mss_cache).
    rig.c().set_option(c, SockOpt::MaxSegment(1000)).unwrap();
    assert_eq!(rig.c().get_option(c, SockOptName::MaxSegment), Ok(SockOpt::MaxSegment(988)));
    assert_eq!(rig.c().get_option(c, SockOptName::Error), Ok(SockOpt::Error(None)));
    assert!(rig.c().set_option(c, SockOpt::Error(None)).is_err(), "SO_ERROR is read-only");
    // Out of range: EINVAL, and the value before stays.
    for bad in [SockOpt::MaxSegment(50), SockOpt::KeepCount(0), SockOpt::KeepIdle(ms(0)), SockOpt::KeepInterval(ms(0))]
    {
        assert_eq!(rig.c().set_option(c, bad), Err(Error::InvalidInput), "{bad:?}");
    }
    assert_eq!(rig.c().get_option(c, SockOptName::KeepCount), Ok(SockOpt::KeepCount(4)));
    assert_eq!(rig.c().get_option(c, SockOptName::KeepIdle), Ok(SockOpt::KeepIdle(secs(30))));
}

/// TCP_INFO over a lossy transfer: the state, the RTT near the path's 20
/// ms, the RTO at least the 200 ms floor, a window reduced below
/// infinity, the byte and segment counts, and the SACK scoreboard while a
/// hole is open.
#[test]
fn tcp_info_fields_follow_a_lossy_transfer() {
    let link = LinkConfig::default().delay(ms(5)).bandwidth_bps(50_000_000).loss(0.01);
    let mut rig = RigConfig::new(840).link(link).build();
    let (c, _l, s) = rig.establish();
    let fresh = rig.c().tcp_info(c).unwrap();
    assert_eq!(fresh.state, Some(State::Established));
    assert_eq!((fresh.bytes_sent, fresh.bytes_retransmitted, fresh.retransmits), (0, 0, 0));
    assert_eq!(fresh.ssthresh, usize::MAX, "no loss yet: ssthresh is infinite");
    let data = pattern(2_000_000, 2);
    let (mut off, mut got) = (0, Vec::new());
    let (mut max_sacked, mut max_lost) = (0, 0);
    let limit = rig.now() + secs(60);
    while got.len() < data.len() {
        off += rig.c().send(c, &data[off..]).unwrap_or(0);
        rig.read_some(rig.server, s, &mut got).unwrap();
        let i = rig.c().tcp_info(c).unwrap();
        max_sacked = max_sacked.max(i.sacked_bytes);
        max_lost = max_lost.max(i.lost_segments);
        if got.len() < data.len() {
            assert!(rig.step_before(limit), "stalled");
        }
    }
    assert!(got == data);
    rig.run_for(ms(200));
    let i = rig.c().tcp_info(c).unwrap();
    let r = rig.s().tcp_info(s).unwrap();
    assert_eq!(i.state, Some(State::Established));
    let rtt = i.rtt.unwrap();
    assert!(rtt >= ms(20) && rtt < ms(60), "rtt {rtt:?}");
    assert!(i.rto >= ms(200), "rto {:?}", i.rto);
    assert!(i.ssthresh < usize::MAX, "a loss set ssthresh");
    assert!(i.cwnd >= 2 * i.mss);
    assert_eq!(i.bytes_acked, data.len() as u64);
    assert!(i.bytes_retransmitted > 0 && i.retransmits > 0, "{i:?}");
    assert_eq!(i.bytes_sent, data.len() as u64, "new data only: {i:?}");
    assert!(i.segments_sent as usize >= data.len() / i.mss);
    assert_eq!(r.bytes_received, data.len() as u64);
    assert!(r.segments_received as usize >= data.len() / i.mss);
    assert!(max_sacked > 0 && max_lost > 0, "the scoreboard showed holes: {max_sacked} {max_lost}");
    assert_eq!((i.sacked_bytes, i.lost_segments, i.in_flight), (0, 0, 0), "and is empty at the end");
}
