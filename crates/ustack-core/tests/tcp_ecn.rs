//! Explicit Congestion Notification (RFC 3168 §6.1) on the simulator: the
//! SYNs' negotiation, ECT(0) on new data only, the receiver's ECE echo
//! until CWR, the sender's single window reduction per window of data, and
//! the fallback to SYNs without ECN when ECN-setup SYNs go unanswered.

mod common;

use common::*;
use std::cell::RefCell;
use std::rc::Rc;
use ustack_core::sim::Verdict;
use ustack_core::tcp::{Ecn, State};
use ustack_core::wire::{Ipv4Packet, TcpFlags};

/// The ECN field of a logged segment's IP header.
fn ecn_field(p: &Pkt) -> u8 {
    p.ip.dscp_ecn & 0b11
}

const ECT0: u8 = 0b10;
const CE: u8 = 0b11;

/// Marks the IP header of `frame` Congestion Experienced, as a router's
/// queue would instead of dropping it (and fixes the header checksum).
fn mark_ce(frame: &mut [u8]) {
    let mut ip = Ipv4Packet::new_unchecked(&mut frame[14..]);
    ip.set_ecn(CE);
    ip.fill_checksum();
}

/// §6.1.1: a client set to ask sends an ECN-setup SYN (ECE and CWR); a
/// server left at the default (accept when asked) answers with ECE alone.
/// Both then send new data ECT(0), while SYNs, pure ACKs and the FINs
/// without data are not ECN-capable (§6.1.4). A client that does not ask,
/// or a server that has ECN off, leaves the connection without it.
#[test]
fn syns_negotiate_ecn_and_only_new_data_is_ect_rfc3168_6_1_1() {
    let mut rig = RigConfig::new(1).client_tcp(|t| t.ecn = Ecn::On).build();
    let (c, _l, s) = rig.establish();
    let data = pattern(30_000, 1);
    rig.send_all(rig.client, c, &data);
    rig.send_all(rig.server, s, &data[..5_000]);
    rig.run_for(ms(200));
    let syn = rig.pkts().into_iter().find(|p| p.is_syn()).unwrap();
    assert!(syn.is(TcpFlags::ECE | TcpFlags::CWR), "{syn}");
    let synack = rig.pkts().into_iter().find(|p| p.is_synack()).unwrap();
    assert!(synack.is(TcpFlags::ECE) && !synack.is(TcpFlags::CWR), "{synack}");
    assert!(rig.c().tcp_connection(c).unwrap().ecn_negotiated());
    assert!(rig.s().tcp_connection(s).unwrap().ecn_negotiated());
    assert_eq!((rig.c().stats().tcp.ecn_connections, rig.s().stats().tcp.ecn_connections), (1, 1));
    for p in rig.pkts() {
        let want = if p.len() > 0 { ECT0 } else { 0 };
        assert_eq!(ecn_field(&p), want, "{p}");
        assert!(!p.is_synack() && !p.is_syn() || ecn_field(&p) == 0);
    }
    assert!(rig.pkts_from(FROM_SERVER).iter().any(|p| p.len() > 0), "data both ways");

    // The client does not ask (the default): no ECN.
    let mut rig = Rig::new(2);
    let (c, _l, s) = rig.establish();
    rig.send_all(rig.client, c, &data);
    rig.run_for(ms(100));
    assert!(!rig.pkts().into_iter().find(|p| p.is_syn()).unwrap().is(TcpFlags::ECE));
    assert!(!rig.s().tcp_connection(s).unwrap().ecn_negotiated());
    assert!(rig.pkts().iter().all(|p| ecn_field(p) == 0));

    // The server has ECN off: its SYN-ACK does not accept.
    let mut rig = RigConfig::new(3).client_tcp(|t| t.ecn = Ecn::On).server_tcp(|t| t.ecn = Ecn::Off).build();
    let (c, _l, _s) = rig.establish();
    rig.send_all(rig.client, c, &data);
    rig.run_for(ms(100));
    assert!(!rig.pkts().into_iter().find(|p| p.is_synack()).unwrap().is(TcpFlags::ECE));
    assert!(!rig.c().tcp_connection(c).unwrap().ecn_negotiated());
    assert!(rig.pkts().iter().all(|p| ecn_field(p) == 0));
}

/// §6.1.2-6.1.3: a router marks three data segments of one window CE. The
/// receiver ACKs at once with ECE and goes on setting ECE until a segment
/// with CWR arrives; the sender reduces its window once for the whole
/// window of marks (not three times), retransmits nothing, and sets CWR on
/// its next new data segment. The stream arrives intact.
#[test]
fn ce_marks_are_echoed_until_cwr_and_cut_the_window_once_rfc3168_6_1_2() {
    let mut rig = RigConfig::new(4).client_tcp(|t| t.ecn = Ecn::On).build();
    let (c, _l, s) = rig.establish();
    // Warm up past slow start's first window, then mark three segments.
    let data = pattern(400_000, 2);
    let marked = Rc::new(RefCell::new(Vec::new()));
    let log = marked.clone();
    let mut n = 0;
    rig.set_rewrite_rule(move |p, frame| {
        if p.from == FROM_CLIENT && p.len() > 0 {
            n += 1;
            if (40..43).contains(&n) {
                mark_ce(frame);
                log.borrow_mut().push(p.seq());
            }
        }
        Verdict::Pass
    });
    rig.send_all(rig.client, c, &data);
    let got = {
        let mut got = Vec::new();
        rig.run_until_true(rig.now() + secs(30), "all data", |r| {
            r.read_some(r.server, s, &mut got).unwrap();
            got.len() == data.len()
        });
        got
    };
    assert!(got == data, "the stream arrived intact");
    assert_eq!(marked.borrow().len(), 3);
    assert_eq!(rig.s().stats().tcp.ecn_ce_received, 3);
    assert_eq!(rig.c().stats().tcp.ecn_reductions, 1, "one reduction for one window of marks");
    assert_eq!(rig.c().stats().tcp.retransmitted_segments, 0, "a mark is not a loss");
    // The echo: ACKs with ECE from the first mark until the CWR arrived.
    let first_mark = marked.borrow()[0];
    let echo: Vec<Pkt> =
        rig.pkts_from(FROM_SERVER).into_iter().filter(|p| !p.is_synack() && p.is(TcpFlags::ECE)).collect();
    assert!(!echo.is_empty());
    let cwr: Vec<Pkt> = rig.pkts_from(FROM_CLIENT).into_iter().filter(|p| !p.is_syn() && p.is(TcpFlags::CWR)).collect();
    assert_eq!(cwr.len(), 1, "CWR once, on the first new data after the reduction: {cwr:#?}");
    assert!(cwr[0].len() > 0 && ecn_field(&cwr[0]) == ECT0);
    assert!(echo[0].ack().wrapping_sub(first_mark) as i32 > 0, "the first echo ACKs the marked segment");
    assert!(echo.iter().all(|p| p.at <= cwr[0].at + ms(5) + ms(1)), "no ECE once the CWR has arrived");
    let later = rig.pkts_from(FROM_SERVER).into_iter().filter(|p| p.at > cwr[0].at + ms(6)).count();
    assert!(later > 0, "the server went on ACKing without ECE");
    assert_eq!(rig.s().tcp_state(s), Ok(State::Established));
}

/// §6.1.1.1: ECN-setup SYNs that go unanswered (a middlebox that drops
/// them) are retried once with ECN, then sent plain; the connection is
/// made, without ECN.
#[test]
fn unanswered_ecn_setup_syns_fall_back_to_plain_syns_rfc3168_6_1_1_1() {
    let mut rig = RigConfig::new(5).client_tcp(|t| t.ecn = Ecn::On).build();
    rig.set_rule(|p| if p.is_syn() && p.is(TcpFlags::ECE) { Verdict::Drop } else { Verdict::Pass });
    let (c, _l, s) = rig.establish();
    let syns: Vec<Pkt> = rig.pkts().into_iter().filter(|p| p.is_syn()).collect();
    assert_eq!(syns.len(), 3, "{syns:#?}");
    assert!(syns[0].is(TcpFlags::ECE | TcpFlags::CWR) && syns[1].is(TcpFlags::ECE | TcpFlags::CWR));
    assert!(!syns[2].is(TcpFlags::ECE) && !syns[2].is(TcpFlags::CWR));
    assert!(!rig.c().tcp_connection(c).unwrap().ecn_negotiated());
    assert!(!rig.s().tcp_connection(s).unwrap().ecn_negotiated());
}

/// `TcpConfig::ecn_setup_retries` (FreeBSD's `ecn.maxretries`) sets how
/// many retransmissions still ask for ECN: with 0 only the first SYN does,
/// and the connection is made on the first retransmission.
#[test]
fn ecn_setup_retries_zero_asks_only_in_the_first_syn_rfc3168_6_1_1_1() {
    let mut rig = RigConfig::new(5)
        .client_tcp(|t| {
            t.ecn = Ecn::On;
            t.ecn_setup_retries = 0;
        })
        .build();
    rig.set_rule(|p| if p.is_syn() && p.is(TcpFlags::ECE) { Verdict::Drop } else { Verdict::Pass });
    let (c, _l, _s) = rig.establish();
    let syns: Vec<Pkt> = rig.pkts().into_iter().filter(|p| p.is_syn() && !p.is(TcpFlags::ACK)).collect();
    assert_eq!(syns.len(), 2, "{syns:#?}");
    assert!(syns[0].is(TcpFlags::ECE | TcpFlags::CWR));
    assert!(!syns[1].is(TcpFlags::ECE) && !syns[1].is(TcpFlags::CWR));
    assert!(!rig.c().tcp_connection(c).unwrap().ecn_negotiated());
}

/// §6.1.5: a retransmitted data segment is not ECN-capable, so a router
/// cannot mark it instead of dropping it.
#[test]
fn retransmissions_are_not_ect_rfc3168_6_1_5() {
    let mut rig = RigConfig::new(6).client_tcp(|t| t.ecn = Ecn::On).build();
    let (c, _l, s) = rig.establish();
    let mut n = 0;
    rig.set_rule(move |p| {
        if p.from == FROM_CLIENT && p.len() > 0 {
            n += 1;
            if n == 5 {
                return Verdict::Drop;
            }
        }
        Verdict::Pass
    });
    let data = pattern(100_000, 3);
    rig.send_all(rig.client, c, &data);
    let mut got = Vec::new();
    rig.run_until_true(rig.now() + secs(30), "all data", |r| {
        r.read_some(r.server, s, &mut got).unwrap();
        got.len() == data.len()
    });
    assert!(got == data);
    let lost = rig.pkts().into_iter().find(|p| p.dropped).unwrap();
    assert_eq!(ecn_field(&lost), ECT0);
    let again: Vec<Pkt> =
        rig.pkts_from(FROM_CLIENT).into_iter().filter(|p| !p.dropped && p.seq() == lost.seq() && p.len() > 0).collect();
    assert_eq!(again.len(), 1);
    assert_eq!(ecn_field(&again[0]), 0, "the retransmission is Not-ECT");
}
