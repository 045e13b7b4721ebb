//! TCP MD5 signatures (RFC 2385) between two ustack hosts on the
//! simulator: every segment of a connection with a key is signed; segments
//! without the right signature, forged RSTs above all, are dropped and
//! counted; a missing or wrong key means no connection.

mod common;

use common::*;
use ustack_core::SocketHandle;
use ustack_core::sim::{LinkConfig, Verdict};
use ustack_core::stats::DropReason;
use ustack_core::tcp::State;
use ustack_core::time::Instant;
use ustack_core::wire::TcpFlags;
use ustack_core::wire::tcp::{md5_digest_at, verify_md5};

const KEY: &[u8] = b"a shared secret of the two peers";

/// A listener on the server with `key` for the client's address.
fn listen_with(rig: &mut Rig, key: Option<&[u8]>) -> SocketHandle {
    let s = rig.s();
    let l = s.tcp_socket().unwrap();
    if key.is_some() {
        s.set_md5_key(l, client_ip(), key).unwrap();
    }
    s.bind(l, server_addr()).unwrap();
    s.listen(l, 16).unwrap();
    l
}

/// A connect from the client with `key` for the server's address.
fn connect_with(rig: &mut Rig, key: Option<&[u8]>) -> SocketHandle {
    let c = rig.c();
    let h = c.tcp_socket().unwrap();
    if key.is_some() {
        c.set_md5_key(h, server_ip(), key).unwrap();
    }
    c.connect(h, server_addr()).unwrap();
    h
}

fn establish_signed(rig: &mut Rig) -> (SocketHandle, SocketHandle, SocketHandle) {
    let l = listen_with(rig, Some(KEY));
    let c = connect_with(rig, Some(KEY));
    let limit = rig.now() + secs(10);
    rig.run_until_true(limit, "signed handshake", |r| {
        r.c().tcp_state(c) == Ok(State::Established) && r.s().can_recv(l)
    });
    let (s, _) = rig.s().accept(l).unwrap();
    (c, l, s)
}

/// The segment carries an MD5 option whose digest is right for `key`.
fn signed_with(p: &Pkt, key: &[u8]) -> bool {
    verify_md5(p.ip.src_addr, p.ip.dst_addr, &p.frame[34..34 + p.ip.payload_len], key)
}

fn md5_drops(st: &mut ustack_core::Stack) -> [u64; 3] {
    let d = st.stats();
    [DropReason::TcpMd5NotFound, DropReason::TcpMd5Failure, DropReason::TcpMd5Unexpected].map(|r| d.drops(r))
}

/// RFC 2385 §2.0 and §4.0: with the same key on both sides the connection
/// is made, data flows both ways, and every segment (SYN, SYN-ACK, data,
/// pure ACKs, FINs, and the RST of an abort) carries a signature that
/// verifies; SYNs offer SACK but no timestamps (the option space, as
/// Linux chooses), and data segments make room for the 20 option bytes.
#[test]
fn signed_connection_every_segment_signed_rfc2385_2_0() {
    let mut rig = Rig::new(2385);
    let (c, _l, s) = establish_signed(&mut rig);
    let up = pattern(100_000, 1);
    let got = rig.pump(c, s, &up, rig.now() + secs(30));
    assert_eq!(got, up);
    let down = pattern(30_000, 2);
    rig.send_all(rig.server, s, &down);
    rig.s().shutdown(s, ustack_core::Shutdown::Write).unwrap();
    let back = rig.read_to_eof(rig.client, c, rig.now() + secs(30));
    assert_eq!(back, down);
    // The client aborts: its RST is signed too, and the server accepts it.
    rig.c().abort(c).unwrap();
    rig.run_for(secs(1));
    assert_eq!(rig.s().tcp_state(s), Ok(State::Closed), "a signed RST resets the connection");

    let pkts = rig.pkts();
    assert!(pkts.iter().any(|p| p.is_syn()) && pkts.iter().any(|p| p.is_synack()));
    assert!(pkts.iter().any(|p| p.is_fin()) && pkts.iter().any(|p| p.is_rst()));
    assert!(pkts.iter().any(|p| p.is_pure_ack()));
    for p in &pkts {
        assert!(p.tcp.options.md5, "unsigned segment {:?}", p.tcp);
        assert!(signed_with(p, KEY), "bad signature on {:?}", p.tcp);
        assert!(!signed_with(p, b"another key"));
        // Linux's layout: nop, nop, md5 first.
        assert_eq!(md5_digest_at(&p.frame[34..]), Some(24));
        // 20 of the 40 option bytes are the signature; data segments hold
        // 1460 - 20 bytes at most (the MSS less the options every segment
        // carries, RFC 6691).
        assert!(p.payload.len() <= 1440, "{} bytes of data", p.payload.len());
        if p.is_syn() || p.is_synack() {
            assert!(p.tcp.options.sack_permitted && p.tcp.options.mss == Some(1460));
            assert_eq!(p.tcp.options.timestamps, None, "a signed SYN offers no timestamps");
        }
    }
    assert!(pkts.iter().any(|p| p.payload.len() == 1440), "full-sized segments");
    assert_eq!(md5_drops(rig.c()), [0, 0, 0]);
    assert_eq!(md5_drops(rig.s()), [0, 0, 0]);
}

/// RFC 2385 §3.0: a segment without the signature, or with a wrong one,
/// is dropped without an answer and counted. A wrong key on one side, or
/// a key on one side only, means no connection at all.
#[test]
fn wrong_or_missing_key_no_connection_rfc2385_3_0() {
    // (client key, server key, the server's drop counter that moves)
    type Key<'a> = Option<&'a [u8]>;
    let cases: [(Key, Key, usize); 3] = [
        (Some(b"wrong key"), Some(KEY), 1), // TCPMD5Failure
        (None, Some(KEY), 0),               // TCPMD5NotFound
        (Some(KEY), None, 2),               // TCPMD5Unexpected
    ];
    for (i, (ckey, skey, counter)) in cases.into_iter().enumerate() {
        let mut rig = Rig::new(40 + i as u64);
        let l = listen_with(&mut rig, skey);
        let c = connect_with(&mut rig, ckey);
        rig.run_for(secs(4));
        assert_eq!(rig.c().tcp_state(c), Ok(State::SynSent), "case {i}: no connection");
        assert!(!rig.s().can_recv(l), "case {i}");
        let pkts = rig.pkts();
        assert!(pkts.iter().all(|p| p.from == FROM_CLIENT && p.is_syn()), "case {i}: only SYNs, unanswered");
        let syns = pkts.len() as u64;
        assert!(syns >= 3, "case {i}: the SYN was retransmitted");
        let mut want = [0u64; 3];
        want[counter] = syns;
        assert_eq!(md5_drops(rig.s()), want, "case {i}: every SYN dropped and counted");
    }
}

/// RFC 2385 §1.0 and §3.0, the point of it: a RST forged by someone who
/// sees the sequence numbers but not the key does not reset a signed
/// connection, signed with a wrong key or not signed at all; the same RST
/// signed with the key does.
#[test]
fn forged_rst_without_signature_ignored_rfc2385_3_0() {
    let mut rig = Rig::new(7);
    let (c, _l, s) = establish_signed(&mut rig);
    let data = pattern(5000, 3);
    assert_eq!(rig.pump(c, s, &data, rig.now() + secs(10)), data);
    rig.run_for(secs(1));
    let last = rig.last_from(FROM_SERVER);
    // A RST at exactly RCV.NXT: RFC 5961 §3.2 would accept it at once.
    let rst_seq = last.seq();
    let mut rst = forged_header(&last, TcpFlags::RST, rst_seq, 0);
    rst.options = Default::default();
    // Unsigned.
    rig.inject(TO_CLIENT, forge(&last, &rst, &[]));
    rig.run_for(ms(100));
    assert_eq!(rig.c().tcp_state(c), Ok(State::Established));
    assert_eq!(md5_drops(rig.c()), [1, 0, 0]);
    // Signed with another key.
    rst.options.md5 = true;
    let mut frame = forge(&last, &rst, &[]);
    sign_frame(&mut frame, b"guessed key");
    rig.inject(TO_CLIENT, frame);
    rig.run_for(ms(100));
    assert_eq!(rig.c().tcp_state(c), Ok(State::Established));
    assert_eq!(md5_drops(rig.c()), [1, 1, 0]);
    // The connection still carries data.
    assert_eq!(rig.pump(c, s, &data, rig.now() + secs(10)), data);
    // Signed with the key: the RST is the peer's, and it resets.
    let last = rig.last_from(FROM_SERVER);
    let mut rst = forged_header(&last, TcpFlags::RST, last.seq(), 0);
    rst.options = Default::default();
    rst.options.md5 = true;
    let mut frame = forge(&last, &rst, &[]);
    sign_frame(&mut frame, KEY);
    rig.inject(TO_CLIENT, frame);
    rig.run_for(ms(100));
    assert_eq!(rig.c().tcp_state(c), Ok(State::Closed));
    // (The server's signed segments that follow find no socket, so no
    // key, and are dropped as unexpected without a RST, as Linux does.)
    assert_eq!(md5_drops(rig.c())[..2], [1, 1]);
}

/// Signs the TCP segment of an Ethernet/IPv4 frame built by `forge` with
/// `key` and fixes its checksum.
fn sign_frame(frame: &mut [u8], key: &[u8]) {
    let src = std::net::Ipv4Addr::new(frame[26], frame[27], frame[28], frame[29]);
    let dst = std::net::Ipv4Addr::new(frame[30], frame[31], frame[32], frame[33]);
    let tcp = &mut frame[34..];
    assert!(ustack_core::wire::tcp::sign_md5(src, dst, tcp, key));
    ustack_core::wire::TcpPacket::new_unchecked(tcp).fill_checksum(src, dst);
}

/// RFC 2385 §2.0 with loss, reordering and duplication in both
/// directions (the soak's link): the data arrives intact both ways, every
/// segment is signed, and no signature fails.
#[test]
fn signed_transfer_under_loss_intact_rfc2385_2_0() {
    for seed in 0..4 {
        let link = LinkConfig::default().delay(ms(5)).loss(0.03).reorder(0.05).duplicate(0.05);
        let mut rig = RigConfig::new(500 + seed).link(link).build();
        let (c, _l, s) = establish_signed(&mut rig);
        let up = pattern(120_000, seed as u8);
        assert_eq!(rig.pump(c, s, &up, Instant::from_secs(300)), up, "seed {seed}");
        let down = pattern(60_000, seed as u8 ^ 0x55);
        rig.send_all(rig.server, s, &down);
        rig.s().close(s).unwrap();
        let back = rig.read_to_eof(rig.client, c, Instant::from_secs(600));
        assert_eq!(back, down, "seed {seed}");
        rig.c().close(c).unwrap();
        rig.run_for(secs(5));
        let pkts = rig.pkts();
        assert!(pkts.iter().any(|p| !p.tcp.options.sack_blocks.is_empty()), "seed {seed}: SACK in use");
        assert!(pkts.iter().all(|p| signed_with(p, KEY)), "seed {seed}");
        assert_eq!(md5_drops(rig.c()), [0, 0, 0], "seed {seed}");
        assert_eq!(md5_drops(rig.s()), [0, 0, 0], "seed {seed}");
    }
}

/// The key API (Linux's TCP_MD5SIG): at most 80 bytes, not empty, keyed
/// by peer address; a UDP socket has no such option; a key set on a live
/// connection signs its segments from then on.
#[test]
fn md5_key_api_rfc2385_4_0() {
    let mut rig = Rig::new(9);
    let st = rig.c();
    let h = st.tcp_socket().unwrap();
    assert_eq!(st.set_md5_key(h, server_ip(), Some(&[7u8; 81])), Err(ustack_core::Error::InvalidInput));
    assert_eq!(st.set_md5_key(h, server_ip(), Some(&[])), Err(ustack_core::Error::InvalidInput));
    assert_eq!(st.set_md5_key(h, server_ip(), Some(&[7u8; 80])), Ok(()));
    assert_eq!(st.set_md5_key(h, server_ip(), None), Ok(()));
    let u = st.udp_socket().unwrap();
    assert_eq!(st.set_md5_key(u, server_ip(), Some(KEY)), Err(ustack_core::Error::NoProtocolOption));

    // Keys on both live connections at once: the segments after are signed.
    let (c, l, s) = rig.establish();
    rig.set_rule(|_| Verdict::Pass);
    rig.c().set_md5_key(c, server_ip(), Some(KEY)).unwrap();
    rig.s().set_md5_key(s, client_ip(), Some(KEY)).unwrap();
    let _ = l;
    let before = rig.pkts().len();
    let data = pattern(20_000, 4);
    assert_eq!(rig.pump(c, s, &data, rig.now() + secs(10)), data);
    let after = &rig.pkts()[before..];
    assert!(!after.is_empty() && after.iter().all(|p| signed_with(p, KEY)));
    // Data segments shrink by the 20 option bytes: 1448 (timestamps) - 20.
    assert!(after.iter().all(|p| p.payload.len() <= 1428));
    assert!(after.iter().any(|p| p.payload.len() == 1428));
}

/// RFC 2385 §3.0 whichever way the key came: set in the socket's settings
/// (`tcp_config_mut`) rather than through `set_md5_key`, it is still
/// enforced on arriving segments.
#[test]
fn key_through_tcp_config_enforced_rfc2385_3_0() {
    let mut rig = Rig::new(11);
    let s = rig.s();
    let l = s.tcp_socket().unwrap();
    let key = std::sync::Arc::new(ustack_core::tcp::Md5Key::new(KEY).unwrap());
    s.tcp_config_mut(l).unwrap().md5_keys.push((client_ip(), key));
    s.bind(l, server_addr()).unwrap();
    s.listen(l, 4).unwrap();
    let c = connect_with(&mut rig, None);
    rig.run_for(secs(2));
    assert_eq!(rig.c().tcp_state(c), Ok(State::SynSent));
    assert!(md5_drops(rig.s())[0] > 0, "unsigned SYNs dropped as tcp_md5_not_found");
}
