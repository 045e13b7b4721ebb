//! SYN cookies (RFC 4987 §3.6) on the simulator: a listener whose SYN
//! queue is full answers new SYNs statelessly with a cookie in its ISN
//! (and the SYN's options in the low bits of its TSval), and makes the
//! connection when the cookie comes back in the ACK. Half-open
//! connections that never complete are forged SYNs from a host that does
//! not exist (10.0.0.66), injected by the middlebox; what the server sends
//! to that host is dropped there.

mod common;

use common::*;
use std::net::{Ipv4Addr, SocketAddrV4};
use ustack_core::SocketHandle;
use ustack_core::sim::Verdict;
use ustack_core::stats::DropReason;
use ustack_core::tcp::State;
use ustack_core::wire::{EtherType, EthernetAddress, EthernetRepr, TcpFlags, TcpOptions, TcpRepr};

/// The host that sends SYNs and never completes a handshake.
const PHANTOM_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 66);
const PHANTOM_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x42];
/// The client's window shift: a default stack auto-tunes its receive
/// buffer up to 16 MiB, which needs a shift of 9 (RFC 7323 §2.3).
const CLIENT_WSCALE: u8 = 9;

/// A rig whose server has a SYN queue of `max_half_open`, knows the
/// phantom's MAC address, and whose middlebox drops what is sent to the
/// phantom (after logging it).
fn rig_with(max_half_open: usize, f: impl FnOnce(RigConfig) -> RigConfig) -> Rig {
    let mut cfg = RigConfig::new(7);
    cfg.server.max_half_open = max_half_open;
    let mut rig = f(cfg).build();
    rig.s().neighbors_mut().insert_static(PHANTOM_IP, PHANTOM_MAC);
    rig.set_rule(|p| if p.ip.dst_addr == PHANTOM_IP { Verdict::Drop } else { Verdict::Pass });
    rig
}

fn phantom(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(PHANTOM_IP, port)
}

/// A segment from the phantom's `port` to the server.
fn phantom_frame(tcp: &TcpRepr, payload: &[u8]) -> Vec<u8> {
    let eth = EthernetRepr {
        src: EthernetAddress(PHANTOM_MAC),
        dst: ustack_core::sim::scenario::host_mac(2),
        ethertype: EtherType::Ipv4,
    };
    build_frame(eth, PHANTOM_IP, server_ip(), tcp, payload)
}

/// A SYN as Linux sends it (MSS, SACK-permitted, timestamps, window scale 7).
fn syn_from(port: u16, seq: u32) -> TcpRepr {
    TcpRepr {
        src_port: port,
        dst_port: SERVER_PORT,
        seq,
        ack: 0,
        flags: TcpFlags::SYN,
        window: 64240,
        urgent: 0,
        options: TcpOptions {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            timestamps: Some((1_000_000 + port as u32, 0)),
            ..Default::default()
        },
    }
}

/// Fills the server's SYN queue with `n` SYNs from the phantom (ports
/// 1000, 1001, ...) that will never complete.
fn fill_syn_queue(rig: &mut Rig, n: u16) {
    for i in 0..n {
        let port = 1000 + i;
        rig.inject(TO_SERVER, phantom_frame(&syn_from(port, 0x1000_0000 * (i as u32 + 1)), &[]));
    }
    rig.run_for(ms(10));
}

/// Server connections in SYN-RECEIVED: the SYN queue.
fn half_open(rig: &mut Rig) -> usize {
    rig.s().tcp_connections().filter(|(_, c)| c.state() == State::SynReceived).count()
}

/// Server connections with `remote` as their peer.
fn server_conns_with(rig: &mut Rig, remote: SocketAddrV4) -> usize {
    rig.s().tcp_connections().filter(|(_, c)| c.remote() == remote).count()
}

/// The SYN-ACKs the server sent to `dst`.
fn synacks_to(rig: &Rig, dst: SocketAddrV4) -> Vec<Pkt> {
    rig.pkts().into_iter().filter(|p| p.from == FROM_SERVER && p.is_synack() && p.dst() == dst).collect()
}

/// Connects from the client and runs until both ends are ESTABLISHED and
/// the server has accepted; returns (client, server) handles and the
/// client's address.
fn connect_and_accept(rig: &mut Rig, l: SocketHandle) -> (SocketHandle, SocketHandle, SocketAddrV4) {
    let c = rig.connect();
    let limit = rig.now() + secs(5);
    rig.run_until_true(limit, "cookie handshake", |r| {
        r.c().tcp_state(c) == Ok(State::Established) && r.s().can_recv(l)
    });
    let (s, remote) = rig.s().accept(l).unwrap();
    (c, s, remote)
}

/// Sends `n` bytes each way, half-closes both ends and checks that every
/// byte arrived in order.
fn exchange(rig: &mut Rig, c: SocketHandle, s: SocketHandle, n: usize) {
    let (up, down) = (pattern(n, 1), pattern(n, 2));
    rig.send_all(rig.client, c, &up);
    rig.send_all(rig.server, s, &down);
    rig.c().shutdown(c, ustack_core::Shutdown::Write).unwrap();
    rig.s().shutdown(s, ustack_core::Shutdown::Write).unwrap();
    let limit = rig.now() + secs(60);
    let got_up = rig.read_to_eof(rig.server, s, limit);
    let got_down = rig.read_to_eof(rig.client, c, limit);
    assert!(got_up == up, "client to server: {} bytes of {n} and not in order", got_up.len());
    assert!(got_down == down, "server to client: {} bytes of {n} and not in order", got_down.len());
}

/// RFC 4987 §3.6: with its SYN queue full of handshakes that never
/// complete, the listener answers a new SYN with a cookie and stores
/// nothing; the client's ACK makes the connection. With timestamps, the
/// SYN's window scale and SACK-permitted ride in the low six bits of our
/// TSval and the connection gets them all: a scaled window above 64 KiB,
/// SACK, timestamps, an MSS of 1460 less the timestamp option.
#[test]
fn full_syn_queue_answers_with_a_cookie_keeping_every_option_rfc4987_3_6() {
    let mut rig = rig_with(2, |c| c);
    let l = rig.listen(8);
    fill_syn_queue(&mut rig, 2);
    assert_eq!(half_open(&mut rig), 2);
    assert_eq!(rig.s().stats().tcp.syn_cookies_sent, 0, "the queue had room for those");

    let c = rig.connect();
    let client = rig.c().local_addr(c).unwrap();
    let limit = rig.now() + secs(1);
    rig.run_until_true(limit, "SYN-ACK to the client", |r| !synacks_to(r, client).is_empty());
    // Nothing was stored for the client: the SYN queue is as it was.
    assert_eq!(server_conns_with(&mut rig, client), 0);
    assert_eq!(half_open(&mut rig), 2);
    assert_eq!(rig.s().stats().tcp.syn_cookies_sent, 1);

    let syn = rig.pkts().into_iter().find(|p| p.is_syn() && p.src() == client).unwrap();
    let synack = synacks_to(&rig, client).remove(0);
    assert_eq!(synack.ack(), syn.seq().wrapping_add(1));
    let o = synack.tcp.options;
    assert_eq!(o.mss, Some(1460), "our own MSS");
    assert!(o.window_scale.is_some() && o.sack_permitted);
    let (tsval, tsecr) = o.timestamps.expect("timestamps");
    assert_eq!(tsecr, syn.tcp.options.timestamps.unwrap().0);
    // TS (bit 5), SACK (bit 4), the client's shift (bits 0-3).
    assert_eq!(tsval & 0x3f, 0x20 | 0x10 | CLIENT_WSCALE as u32);
    // The cookie's top bits: tick 0 of the 64 s clock, MSS index 6 (1460).
    assert_eq!(synack.seq() >> 24, 6);

    let limit = rig.now() + secs(1);
    rig.run_until_true(limit, "handshake", |r| r.c().tcp_state(c) == Ok(State::Established) && r.s().can_recv(l));
    let (s, remote) = rig.s().accept(l).unwrap();
    assert_eq!(remote, client);
    assert_eq!(rig.s().tcp_state(s), Ok(State::Established));
    let st = rig.s().stats().tcp;
    assert_eq!((st.syn_cookies_valid, st.syn_cookies_invalid), (1, 0));
    assert_eq!(half_open(&mut rig), 2, "the cookie connection never was half-open");
    let conn = rig.s().tcp_connection(s).unwrap();
    assert_eq!(conn.negotiated_options(), (true, true, true), "window scaling, timestamps, SACK");
    assert_eq!(conn.mss(), 1460 - 12);
    // The ACK's window is read through the shift the cookie kept: above
    // what 16 bits hold.
    let ack = rig.pkts().into_iter().find(|p| p.src() == client && p.is_pure_ack()).unwrap();
    let snd_wnd = rig.s().tcp_info(s).unwrap().snd_wnd;
    assert_eq!(snd_wnd, (ack.tcp.window as usize) << CLIENT_WSCALE);
    assert!(snd_wnd > 0xffff);
    // The trace shows the connection made when the ACK came.
    let se = rig.server_events();
    assert_eq!(entered(&se, server_addr(), State::Established), Some(ack.at + ms(5)));

    exchange(&mut rig, c, s, 200_000);
}

/// RFC 7323 §2.3: the shift a cookie SYN-ACK announces is the one the
/// connection made from the cookie scales its windows by, so the client
/// reads the server's whole free buffer as its send window. (A cookie
/// SYN-ACK once announced the shift for the initial 256 KiB buffer, 3,
/// while the connection scaled by the one for the 16 MiB auto-tuning
/// maximum, 9: the client saw a 64th of the window and bulk transfers over
/// cookie connections crawled, an ACK per delayed-ACK timeout.)
#[test]
fn cookie_connection_windows_read_through_the_shift_its_syn_ack_announced_rfc7323_2_3() {
    let mut rig = rig_with(2, |c| c);
    let l = rig.listen(8);
    fill_syn_queue(&mut rig, 2);
    let (c, s, remote) = connect_and_accept(&mut rig, l);
    assert_eq!(rig.s().stats().tcp.syn_cookies_valid, 1, "a cookie connection");
    let announced = synacks_to(&rig, remote)[0].tcp.options.window_scale.expect("window scaling kept");
    // Data from the client, acknowledged by the server with a scaled
    // window.
    rig.send_all(rig.client, c, &pattern(1_000, 3));
    let limit = rig.now() + secs(1);
    rig.run_until_true(limit, "the data acknowledged", |r| {
        r.s().can_recv(s) && r.c().tcp_info(c).unwrap().in_flight == 0
    });
    let ack = rig
        .pkts()
        .into_iter()
        .rev()
        .find(|p| p.dst() == remote && !p.flags().contains(TcpFlags::SYN))
        .expect("the server's ACK");
    let client_view = rig.c().tcp_info(c).unwrap().snd_wnd;
    assert_eq!(client_view, (ack.tcp.window as usize) << announced);
    let server_offer = rig.s().tcp_info(s).unwrap().rcv_wnd;
    assert!(
        client_view + (1 << announced) > server_offer && client_view <= server_offer,
        "the client sees {client_view} bytes of window, the server offers {server_offer}"
    );
    assert!(client_view > 200_000, "a 256 KiB buffer's window, not a fraction of it: {client_view}");
}

/// RFC 4987 §3.6: without timestamps there is nowhere to keep the window
/// scale and SACK-permitted, so the cookie SYN-ACK offers neither and the
/// connection runs with a 16-bit window and no SACK; it works all the same.
#[test]
fn cookie_without_timestamps_has_no_window_scaling_or_sack_rfc4987_3_6() {
    let mut rig = rig_with(2, |c| c.client_tcp(|t| t.timestamps = false));
    let l = rig.listen(8);
    fill_syn_queue(&mut rig, 2);
    let (c, s, client) = connect_and_accept(&mut rig, l);
    let syn = rig.pkts().into_iter().find(|p| p.is_syn() && p.src() == client).unwrap();
    assert!(syn.tcp.options.window_scale.is_some() && syn.tcp.options.sack_permitted, "the client offered both");
    let synack = synacks_to(&rig, client).remove(0);
    let o = synack.tcp.options;
    assert_eq!((o.mss, o.window_scale, o.sack_permitted, o.timestamps), (Some(1460), None, false, None));
    assert_eq!(rig.s().stats().tcp.syn_cookies_valid, 1);
    let conn = rig.s().tcp_connection(s).unwrap();
    assert_eq!(conn.negotiated_options(), (false, false, false));
    assert_eq!(conn.mss(), 1460);
    exchange(&mut rig, c, s, 150_000);
    assert!(rig.s().tcp_info(s).unwrap().snd_wnd <= 0xffff);
}

/// RFC 4987 §3.6: a cookie names one of eight MSS values; the peer's MSS
/// is rounded down to one (1000 to 536), so no segment is too big for it.
#[test]
fn cookie_rounds_the_peer_mss_down_to_its_table_rfc4987_3_6() {
    let mut rig = rig_with(2, |c| c.client_tcp(|t| t.mss = Some(1000)));
    let l = rig.listen(8);
    fill_syn_queue(&mut rig, 2);
    let (c, s, client) = connect_and_accept(&mut rig, l);
    assert_eq!(synacks_to(&rig, client)[0].seq() >> 24 & 7, 1, "MSS index 1: 536");
    assert_eq!(rig.s().tcp_connection(s).unwrap().mss(), 536 - 12);
    exchange(&mut rig, c, s, 20_000);
    let sizes: Vec<usize> =
        rig.pkts().iter().filter(|p| p.from == FROM_SERVER && p.len() > 0).map(|p| p.len()).collect();
    assert_eq!(sizes.iter().max(), Some(&(536 - 12)));
}

/// RFC 9293 §3.10.7.2: an ACK to a listener gets <SEQ=SEG.ACK><CTL=RST>
/// unless it carries a cookie we made for its 4-tuple and SYN; a wrong
/// cookie creates nothing. Only the ACK that returns the cookie (which
/// takes having seen the SYN-ACK) makes a connection.
#[test]
fn forged_ack_to_a_listener_gets_a_reset_and_creates_nothing_rfc9293_3_10_7_2() {
    let mut rig = rig_with(2, |c| c);
    let l = rig.listen(8);
    let ack_from = |port: u16, seq: u32, ack: u32, tsecr: u32| TcpRepr {
        src_port: port,
        dst_port: SERVER_PORT,
        seq,
        ack,
        flags: TcpFlags::ACK,
        window: 502,
        urgent: 0,
        options: TcpOptions { timestamps: Some((2_000_000, tsecr)), ..Default::default() },
    };
    let resets_to = |rig: &Rig, dst: SocketAddrV4| -> Vec<Pkt> {
        rig.pkts().into_iter().filter(|p| p.from == FROM_SERVER && p.is_rst() && p.dst() == dst).collect()
    };

    // No cookie sent yet: an ACK is answered with a RST without a look.
    rig.inject(TO_SERVER, phantom_frame(&ack_from(999, 5, 0x0600_1234, 0), &[]));
    rig.run_for(ms(10));
    assert_eq!(resets_to(&rig, phantom(999)).len(), 1);
    assert_eq!(rig.s().stats().tcp.syn_cookies_invalid, 0);

    // The SYN queue fills; the third SYN (from port 2000) gets a cookie.
    fill_syn_queue(&mut rig, 2);
    let isn = 0x7777_0000;
    rig.inject(TO_SERVER, phantom_frame(&syn_from(2000, isn), &[]));
    rig.run_for(ms(10));
    assert_eq!(rig.s().stats().tcp.syn_cookies_sent, 1);
    let cookie = synacks_to(&rig, phantom(2000)).remove(0);
    let (tsval, _) = cookie.tcp.options.timestamps.unwrap();
    let good = cookie.seq().wrapping_add(1);

    // Wrong cookie, right cookie from another port, right cookie for
    // another SYN (client ISN): each gets <SEQ=SEG.ACK><CTL=RST>.
    let forged = [
        (2000, isn + 1, good ^ 0x0000_0100),
        (2000, isn + 1, good.wrapping_add(1)),
        (2001, isn + 1, good),
        (2000, isn + 2, good),
    ];
    for (i, &(port, seq, ack)) in forged.iter().enumerate() {
        rig.inject(TO_SERVER, phantom_frame(&ack_from(port, seq, ack, tsval), &[]));
        rig.run_for(ms(10));
        let rsts = resets_to(&rig, phantom(port));
        let rst = rsts.last().unwrap_or_else(|| panic!("forged ACK {i}: no RST"));
        assert_eq!((rst.seq(), rst.flags()), (ack, TcpFlags::RST), "forged ACK {i}");
        assert_eq!(rig.s().stats().tcp.syn_cookies_invalid, i as u64 + 1);
        assert_eq!(server_conns_with(&mut rig, phantom(port)), 0, "forged ACK {i} created a connection");
    }
    assert!(!rig.s().can_recv(l));
    // Options changed in the echoed TSval are caught too.
    rig.inject(TO_SERVER, phantom_frame(&ack_from(2000, isn + 1, good, tsval ^ 0x10), &[]));
    rig.run_for(ms(10));
    assert_eq!(rig.s().stats().tcp.syn_cookies_invalid, 5);
    assert_eq!(server_conns_with(&mut rig, phantom(2000)), 0);

    // The ACK that returns the cookie: an ESTABLISHED connection, accepted.
    rig.inject(TO_SERVER, phantom_frame(&ack_from(2000, isn + 1, good, tsval), &[]));
    rig.run_for(ms(10));
    assert_eq!(rig.s().stats().tcp.syn_cookies_valid, 1);
    let (s, remote) = rig.s().accept(l).unwrap();
    assert_eq!(remote, phantom(2000));
    assert_eq!(rig.s().tcp_state(s), Ok(State::Established));
    // The SYN's options (window scale 7, SACK, timestamps) came back.
    assert_eq!(rig.s().tcp_connection(s).unwrap().negotiated_options(), (true, true, true));
    assert_eq!(rig.s().tcp_info(s).unwrap().snd_wnd, 502 << 7);
    assert_eq!(half_open(&mut rig), 2);
}

/// RFC 9293 §3.10.7.4: the segment that completes a cookie handshake may
/// carry data and a FIN (here the client's bare ACK is lost and its first
/// data segment, with the FIN, does it); the connection is made and the
/// segment processed as in ESTABLISHED, so nothing is lost.
#[test]
fn data_and_fin_on_the_cookie_completing_segment_are_delivered_rfc9293_3_10_7_4() {
    let mut rig = rig_with(2, |c| c);
    let l = rig.listen(8);
    fill_syn_queue(&mut rig, 2);
    let mut dropped = false;
    rig.set_rule(move |p| {
        if p.ip.dst_addr == PHANTOM_IP {
            return Verdict::Drop;
        }
        if !dropped && p.from == FROM_CLIENT && p.is_pure_ack() {
            dropped = true;
            return Verdict::Drop;
        }
        Verdict::Pass
    });
    let c = rig.connect();
    let limit = rig.now() + secs(1);
    rig.run_until_true(limit, "client established", |r| r.c().tcp_state(c) == Ok(State::Established));
    rig.c().send(c, b"hello, cookie").unwrap();
    rig.c().shutdown(c, ustack_core::Shutdown::Write).unwrap();
    rig.run_for(ms(100));

    let from_client: Vec<Pkt> = rig.pkts_from(FROM_CLIENT).into_iter().filter(|p| p.dst() == server_addr()).collect();
    let ack = from_client.iter().find(|p| p.is_pure_ack()).unwrap();
    assert!(ack.dropped);
    let data = from_client.iter().find(|p| p.len() > 0).unwrap();
    assert!(data.is_fin() && !data.dropped, "data and FIN in one segment: {data}");
    let st = rig.s().stats().tcp;
    assert_eq!((st.syn_cookies_sent, st.syn_cookies_valid), (1, 1));
    let (s, _) = rig.s().accept(l).unwrap();
    assert_eq!(rig.s().tcp_state(s), Ok(State::CloseWait));
    let limit = rig.now() + secs(1);
    assert_eq!(rig.read_to_eof(rig.server, s, limit), b"hello, cookie");
}

/// RFC 4987 §3.6 (a cookie connection goes to the accept queue like any
/// other): when the accept queue is full the valid cookie ACK is dropped,
/// not reset, and nothing is created; the client's next segment returns
/// the cookie again and makes the connection once there is room.
#[test]
fn valid_cookie_into_a_full_accept_queue_is_dropped_then_completes() {
    let mut rig = rig_with(1, |c| c);
    let l = rig.listen(1);
    let a = rig.connect();
    rig.run_for(ms(1));
    let b = rig.connect();
    let limit = rig.now() + secs(1);
    rig.run_until_true(limit, "both clients established", |r| {
        r.c().tcp_state(a) == Ok(State::Established) && r.c().tcp_state(b) == Ok(State::Established)
    });
    rig.run_for(ms(20));
    let st = rig.s().stats().tcp;
    assert_eq!((st.syn_cookies_sent, st.syn_cookies_valid), (1, 1), "B's SYN got the cookie");
    assert_eq!(rig.s().stats().drops(DropReason::TcpListenOverflow), 1);
    let b_addr = rig.c().local_addr(b).unwrap();
    assert_eq!(server_conns_with(&mut rig, b_addr), 0);
    assert!(rig.pkts_from(FROM_SERVER).iter().all(|p| !p.is_rst()), "no RST for a valid cookie");

    let (sa, _) = rig.s().accept(l).unwrap();
    assert_eq!(rig.s().peer_addr(sa), Ok(rig.c().local_addr(a).unwrap()));
    rig.c().send(b, b"b").unwrap();
    rig.run_for(ms(50));
    assert_eq!(rig.s().stats().tcp.syn_cookies_valid, 2);
    let (sb, remote) = rig.s().accept(l).unwrap();
    assert_eq!(remote, b_addr);
    let mut got = Vec::new();
    rig.read_some(rig.server, sb, &mut got).unwrap();
    assert_eq!(got, b"b");
}

/// With `syn_cookies` off, a full SYN queue drops new SYNs (RFC 4987 §3.1
/// leaves it at that): the client is not answered while the queue stays
/// full, and keeps retransmitting its SYN.
#[test]
fn without_syn_cookies_a_full_syn_queue_drops_syns_rfc4987_3_1() {
    let mut rig = rig_with(2, |mut c| {
        c.server.syn_cookies = false;
        c
    });
    let _l = rig.listen(8);
    fill_syn_queue(&mut rig, 2);
    let c = rig.connect();
    rig.run_for(secs(5));
    assert_eq!(rig.c().tcp_state(c), Ok(State::SynSent));
    let client = rig.c().local_addr(c).unwrap();
    assert!(rig.pkts_from(FROM_SERVER).iter().all(|p| p.dst() != client), "the client was answered");
    let syns = rig.pkts_from(FROM_CLIENT).into_iter().filter(|p| p.is_syn()).count();
    assert_eq!(syns, 3, "the SYN and its retransmissions at 1 s and 3 s");
    assert_eq!(rig.s().stats().drops(DropReason::TcpListenOverflow), 3);
    assert_eq!(rig.s().stats().tcp.syn_cookies_sent, 0);
    assert_eq!(half_open(&mut rig), 2);
}
