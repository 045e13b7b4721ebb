//! UDP (RFC 768, RFC 1122 §4.1) through the stack's socket calls: binding
//! and ports, connect, send/receive, truncation, buffers and checksums.
//!
//! Two IP-medium stacks joined by hand (`iputil::Pair`), or one stack fed
//! hand-built datagrams. Each test is named after the behaviour and the
//! RFC section (or the BSD socket behaviour) it checks.

mod iputil;

use iputil::*;
use std::net::Ipv4Addr;
use ustack_core::Error;
use ustack_core::PmtuDiscovery;
use ustack_core::Shutdown;
use ustack_core::Stack;
use ustack_core::socket::{SockOpt, SockOptName, SocketHandle};
use ustack_core::stats::DropReason;
use ustack_core::wire::{DstUnreachable, Icmpv4Repr, IpProtocol, UdpPacket};

const ANY: Ipv4Addr = Ipv4Addr::UNSPECIFIED;

/// A stack at 10.0.0.1 with a UDP socket bound to `port` on any address.
fn bound(port: u16) -> (Stack, SocketHandle) {
    let mut s = ip_stack(US);
    let h = s.udp_socket().unwrap();
    s.bind(h, sa(ANY, port)).unwrap();
    (s, h)
}

fn recv(s: &mut Stack, h: SocketHandle) -> Result<(Vec<u8>, std::net::SocketAddrV4), Error> {
    let mut buf = vec![0u8; 70_000];
    let (n, from) = s.recv_from(h, &mut buf)?;
    Ok((buf[..n].to_vec(), from))
}

/// RFC 768: a datagram carries its source port, so the receiver can answer
/// it; both ends see the data and the other's address.
#[test]
fn rfc768_send_to_and_recv_from_round_trip() {
    let mut pair = Pair::new();
    let server = pair.b.udp_socket().unwrap();
    pair.b.bind(server, sa(ANY, 53)).unwrap();
    let client = pair.a.udp_socket().unwrap();
    assert_eq!(pair.a.send_to(client, b"question", sa(PEER, 53)), Ok(8));
    pair.exchange();
    let (data, from) = recv(&mut pair.b, server).unwrap();
    assert_eq!(data, b"question");
    assert_eq!(*from.ip(), US);
    assert_eq!(from.port(), pair.a.local_addr(client).unwrap().port());
    pair.b.send_to(server, b"answer", from).unwrap();
    pair.exchange();
    assert_eq!(recv(&mut pair.a, client), Ok((b"answer".to_vec(), sa(PEER, 53))));
    assert_eq!(recv(&mut pair.a, client), Err(Error::WouldBlock));
    // On the wire: RFC 768 length and a checksum that verifies.
    let (_, first) = &pair.log[0];
    let (ip, payload) = parse_ip(first);
    assert_eq!(ip.protocol, IpProtocol::Udp);
    let udp = UdpPacket::new_checked(&payload[..]).unwrap();
    assert_eq!(udp.length(), 8 + 8);
    assert_ne!(udp.checksum(), 0);
    assert!(udp.verify_checksum(ip.src_addr, ip.dst_addr));
    assert_eq!(pair.a.stats().udp_out, 1);
    assert_eq!(pair.b.stats().udp_in, 1);
}

/// BSD bind(2): a port held by one socket is EADDRINUSE for another,
/// whether either is bound to the wildcard or to the address; an address
/// not ours is EADDRNOTAVAIL; binding twice is EINVAL.
#[test]
fn bind_conflicts_are_eaddrinuse() {
    let (mut s, h) = bound(5000);
    let other = s.udp_socket().unwrap();
    assert_eq!(s.bind(other, sa(ANY, 5000)), Err(Error::AddrInUse));
    assert_eq!(s.bind(other, sa(US, 5000)), Err(Error::AddrInUse));
    assert_eq!(s.bind(other, sa(PEER, 5001)), Err(Error::AddrNotAvailable));
    assert_eq!(s.bind(h, sa(ANY, 5001)), Err(Error::InvalidInput));
    s.bind(other, sa(US, 5001)).unwrap();
    let third = s.udp_socket().unwrap();
    assert_eq!(s.bind(third, sa(ANY, 5001)), Err(Error::AddrInUse));
    // TCP ports are another space.
    let t = s.tcp_socket().unwrap();
    s.bind(t, sa(ANY, 5000)).unwrap();
    assert_eq!(s.local_addr(other), Ok(sa(US, 5001)));
}

/// RFC 6056 §3.2: port 0 asks for an ephemeral port, taken from the
/// configured range, a different one each time; when the range is used up
/// bind fails.
#[test]
fn rfc6056_3_2_port_zero_takes_an_ephemeral_port_from_the_range() {
    let mut cfg = ip_config(US);
    cfg.ephemeral_ports = (40_000, 40_009);
    let mut s = Stack::new(cfg);
    let mut ports = Vec::new();
    for _ in 0..10 {
        let h = s.udp_socket().unwrap();
        s.bind(h, sa(ANY, 0)).unwrap();
        ports.push(s.local_addr(h).unwrap().port());
    }
    assert!(ports.iter().all(|p| (40_000..=40_009).contains(p)), "{ports:?}");
    let mut unique = ports.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 10, "{ports:?}");
    let h = s.udp_socket().unwrap();
    assert_eq!(s.bind(h, sa(ANY, 0)), Err(Error::AddrInUse));
    // An unbound socket that sends is bound the same way, and fails alike.
    assert_eq!(s.send_to(h, b"x", sa(PEER, 9)), Err(Error::AddrInUse));

    let mut cfg = ip_config(US);
    cfg.ephemeral_ports = (50_000, 50_000);
    let mut s = Stack::new(cfg);
    let h = s.udp_socket().unwrap();
    s.send_to(h, b"x", sa(PEER, 9)).unwrap();
    assert_eq!(s.local_addr(h), Ok(sa(ANY, 50_000)));
    let sent = drain(&mut s, ms(0));
    assert_eq!(UdpPacket::new_checked(&parse_ip(&sent[0]).1[..]).unwrap().src_port(), 50_000);
}

/// BSD connect(2) on a datagram socket: it fixes the destination of
/// `send`, takes datagrams from that peer only (RFC 1122 §4.1.3.4 leaves
/// the filter to the API), and gives the socket a local address
/// (getsockname shows the source address the route chose).
#[test]
fn connect_fixes_the_peer_and_filters_other_senders() {
    let (mut s, h) = bound(7);
    s.connect(h, sa(PEER, 1000)).unwrap();
    assert_eq!(s.peer_addr(h), Ok(sa(PEER, 1000)));
    assert_eq!(s.local_addr(h), Ok(sa(US, 7)));
    s.handle_ip_packet(ms(0), &udp_packet(sa(PEER, 1000), sa(US, 7), b"from the peer"));
    s.handle_ip_packet(ms(0), &udp_packet(sa(PEER, 1001), sa(US, 7), b"other port"));
    s.handle_ip_packet(ms(0), &udp_packet(sa(Ipv4Addr::new(10, 0, 0, 3), 1000), sa(US, 7), b"other host"));
    assert_eq!(recv(&mut s, h), Ok((b"from the peer".to_vec(), sa(PEER, 1000))));
    assert_eq!(recv(&mut s, h), Err(Error::WouldBlock));
    assert_eq!(s.stats().drops(DropReason::UdpNoSocket), 2);
    // `send` goes to the peer.
    drain(&mut s, ms(0));
    assert_eq!(s.send(h, b"reply"), Ok(5));
    let out = drain(&mut s, ms(0));
    assert_eq!(out.len(), 1);
    let (ip, payload) = parse_ip(&out[0]);
    let udp = UdpPacket::new_checked(&payload[..]).unwrap();
    assert_eq!((ip.src_addr, udp.src_port(), ip.dst_addr, udp.dst_port()), (US, 7, PEER, 1000));
    assert_eq!(udp.payload(), b"reply");

    // An unbound socket is bound by connect.
    let c = s.udp_socket().unwrap();
    s.connect(c, sa(PEER, 53)).unwrap();
    let local = s.local_addr(c).unwrap();
    assert_eq!(*local.ip(), US);
    assert_ne!(local.port(), 0);
    s.handle_ip_packet(ms(1), &udp_packet(sa(PEER, 53), local, b"to the connected socket"));
    assert_eq!(recv(&mut s, c), Ok((b"to the connected socket".to_vec(), sa(PEER, 53))));
}

/// `send` without a peer is ENOTCONN; port 0 as a destination is EINVAL;
/// after shutdown(SHUT_WR) sending is EPIPE.
#[test]
fn unconnected_send_and_bad_destinations_are_refused() {
    let (mut s, h) = bound(7);
    assert_eq!(s.send(h, b"x"), Err(Error::NotConnected));
    assert_eq!(s.send_to(h, b"x", sa(PEER, 0)), Err(Error::InvalidInput));
    assert_eq!(s.connect(h, sa(PEER, 0)), Err(Error::InvalidInput));
    assert_eq!(s.shutdown(h, Shutdown::Write), Err(Error::NotConnected));
    s.connect(h, sa(PEER, 9)).unwrap();
    s.shutdown(h, Shutdown::Write).unwrap();
    assert_eq!(s.send(h, b"x"), Err(Error::BrokenPipe));
    assert!(drain(&mut s, ms(0)).is_empty());
}

/// recvfrom(2) without MSG_TRUNC: a datagram longer than the buffer is
/// cut to it and the rest discarded; the next call gets the next datagram.
#[test]
fn recv_truncates_a_long_datagram_and_discards_the_rest() {
    let (mut s, h) = bound(7);
    let long: Vec<u8> = (0..100).collect();
    s.handle_ip_packet(ms(0), &udp_packet(sa(PEER, 1000), sa(US, 7), &long));
    s.handle_ip_packet(ms(0), &udp_packet(sa(PEER, 1000), sa(US, 7), b"next"));
    let mut small = [0u8; 10];
    assert_eq!(s.recv_from(h, &mut small), Ok((10, sa(PEER, 1000))));
    assert_eq!(small[..], long[..10]);
    assert_eq!(s.recv(h, &mut small), Ok(4));
    assert_eq!(&small[..4], b"next");
    assert_eq!(s.recv(h, &mut small), Err(Error::WouldBlock));
}

/// RFC 768 allows an empty datagram; it is delivered as a zero-length
/// read with its sender.
#[test]
fn rfc768_empty_datagram_is_delivered() {
    let (mut s, h) = bound(7);
    s.handle_ip_packet(ms(0), &udp_packet(sa(PEER, 1000), sa(US, 7), b""));
    assert!(s.can_recv(h));
    assert_eq!(s.recv_from(h, &mut [0; 10]), Ok((0, sa(PEER, 1000))));
    assert!(!s.can_recv(h));
}

/// A socket's receive buffer is bounded (`udp_buffer`); datagrams that
/// would overflow it are dropped and counted, and room made by reading is
/// used again.
#[test]
fn full_receive_buffer_drops_and_counts() {
    let mut cfg = ip_config(US);
    cfg.udp_buffer = 1000;
    let mut s = Stack::new(cfg);
    let h = s.udp_socket().unwrap();
    s.bind(h, sa(ANY, 7)).unwrap();
    for i in 0..3u8 {
        s.handle_ip_packet(ms(0), &udp_packet(sa(PEER, 1000), sa(US, 7), &[i; 400]));
    }
    assert_eq!(s.stats().drops(DropReason::UdpBufferFull), 1);
    assert!(drain(&mut s, ms(0)).is_empty(), "a full buffer is not a closed port");
    assert_eq!(recv(&mut s, h).unwrap().0, [0; 400]);
    s.handle_ip_packet(ms(1), &udp_packet(sa(PEER, 1000), sa(US, 7), &[3; 400]));
    assert_eq!(recv(&mut s, h).unwrap().0, [1; 400]);
    assert_eq!(recv(&mut s, h).unwrap().0, [3; 400]);
    assert_eq!(recv(&mut s, h), Err(Error::WouldBlock));
    assert_eq!(s.stats().drops(DropReason::UdpBufferFull), 1);
}

/// RFC 768: "An all zero transmitted checksum value means that the
/// transmitter generated no checksum"; RFC 1122 §4.1.3.4 makes accepting it
/// a MUST for IPv4.
#[test]
fn rfc768_zero_checksum_is_accepted() {
    let (mut s, h) = bound(7);
    let mut p = udp_packet(sa(PEER, 1000), sa(US, 7), b"no checksum");
    p[26] = 0;
    p[27] = 0;
    s.handle_ip_packet(ms(0), &p);
    assert_eq!(recv(&mut s, h).unwrap().0, b"no checksum");
    assert_eq!(s.stats().total_drops(), 0);
}

/// RFC 1122 §4.1.3.4: a datagram with a bad checksum MUST be silently
/// discarded: not delivered, and not answered even to a closed port.
#[test]
fn rfc1122_4_1_3_4_bad_checksum_is_discarded_silently() {
    let (mut s, h) = bound(7);
    for port in [7u16, 9] {
        let mut p = udp_packet(sa(PEER, 1000), sa(US, port), b"corrupted");
        let last = p.len() - 1;
        p[last] ^= 0x20;
        s.handle_ip_packet(ms(0), &p);
    }
    assert_eq!(recv(&mut s, h), Err(Error::WouldBlock));
    assert!(drain(&mut s, ms(0)).is_empty());
    assert_eq!(s.stats().drops(DropReason::UdpBadChecksum), 2);
    assert_eq!(s.stats().total_drops(), 2);
}

/// RFC 768: the length field counts header and data. Bytes after it in the
/// IP payload are not data; a length past the IP payload, or shorter than
/// the header, is malformed; destination port 0 is reserved.
#[test]
fn rfc768_length_field_bounds_the_datagram() {
    let (mut s, h) = bound(7);
    let mut udp = udp_bytes(sa(PEER, 1000), sa(US, 7), b"short");
    udp.extend_from_slice(b"junk");
    s.handle_ip_packet(ms(0), &ipv4(&ip_repr(PEER, US, IpProtocol::Udp, udp.len()), &udp));
    assert_eq!(recv(&mut s, h).unwrap().0, b"short");
    assert_eq!(s.stats().total_drops(), 0);

    let udp = udp_bytes(sa(PEER, 1000), sa(US, 7), b"cut");
    for bad in [&udp[..udp.len() - 1], &udp[..7]] {
        s.handle_ip_packet(ms(0), &ipv4(&ip_repr(PEER, US, IpProtocol::Udp, bad.len()), bad));
    }
    let mut udp = udp_bytes(sa(PEER, 1000), sa(US, 7), b"x");
    udp[4..6].copy_from_slice(&7u16.to_be_bytes());
    udp[6..8].copy_from_slice(&[0, 0]);
    s.handle_ip_packet(ms(0), &ipv4(&ip_repr(PEER, US, IpProtocol::Udp, udp.len()), &udp));
    s.handle_ip_packet(ms(0), &udp_packet(sa(PEER, 1000), sa(US, 0), b"port zero"));
    assert_eq!(s.stats().drops(DropReason::UdpMalformed), 4);
    assert_eq!(recv(&mut s, h), Err(Error::WouldBlock));
    assert!(drain(&mut s, ms(0)).is_empty());
}

/// close(2) frees the port: a new socket may bind it, and datagrams to it
/// meanwhile find a closed port (RFC 1122 §4.1.3.1).
#[test]
fn close_frees_the_port() {
    let (mut s, h) = bound(7);
    s.handle_ip_packet(ms(0), &udp_packet(sa(PEER, 1000), sa(US, 7), b"unread"));
    s.close(h).unwrap();
    assert_eq!(s.recv(h, &mut [0; 10]), Err(Error::BadHandle));
    assert_eq!(s.close(h), Err(Error::BadHandle));
    assert_eq!(s.socket_count(), 0);
    s.handle_ip_packet(ms(1), &udp_packet(sa(PEER, 1000), sa(US, 7), b"too late"));
    let out = icmps(&drain(&mut s, ms(1)));
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].msg_type, out[0].code), (3, 3));
    let again = s.udp_socket().unwrap();
    s.bind(again, sa(US, 7)).unwrap();
    s.handle_ip_packet(ms(2), &udp_packet(sa(PEER, 1000), sa(US, 7), b"new"));
    assert_eq!(recv(&mut s, again).unwrap().0, b"new");
}

/// Datagrams to a broadcast address reach sockets bound to the wildcard
/// address (not those bound to a unicast one) and never draw an ICMP
/// error (RFC 1122 §3.2.2, §4.1.3.1).
#[test]
fn rfc1122_3_3_6_broadcast_datagrams_reach_wildcard_sockets() {
    let (mut s, any) = bound(67);
    let unicast = s.udp_socket().unwrap();
    s.bind(unicast, sa(US, 68)).unwrap();
    for dst in [Ipv4Addr::BROADCAST, Ipv4Addr::new(10, 0, 0, 255)] {
        s.handle_ip_packet(ms(0), &udp_packet(sa(PEER, 68), sa(dst, 67), b"discover"));
        s.handle_ip_packet(ms(0), &udp_packet(sa(PEER, 67), sa(dst, 68), b"offer"));
    }
    assert_eq!(recv(&mut s, any).unwrap().0, b"discover");
    assert_eq!(recv(&mut s, any).unwrap().0, b"discover");
    assert_eq!(recv(&mut s, unicast), Err(Error::WouldBlock));
    assert!(drain(&mut s, ms(0)).is_empty());
}

/// A stack configured as a blackhole (`reply_to_closed_ports` off) sends
/// no port unreachable.
#[test]
fn rfc1122_4_1_3_1_closed_port_replies_can_be_turned_off() {
    let mut cfg = ip_config(US);
    cfg.reply_to_closed_ports = false;
    let mut s = Stack::new(cfg);
    s.handle_ip_packet(ms(0), &udp_packet(sa(PEER, 1000), sa(US, 9), b"x"));
    assert!(drain(&mut s, ms(0)).is_empty());
    assert_eq!(s.stats().drops(DropReason::UdpNoSocket), 1);
}

/// A datagram arriving wakes its socket (readiness for the driver).
#[test]
fn arriving_datagram_wakes_its_socket() {
    let (mut s, h) = bound(7);
    assert!(s.take_woken().is_empty());
    assert!(!s.can_recv(h));
    s.handle_ip_packet(ms(0), &udp_packet(sa(PEER, 1000), sa(US, 7), b"x"));
    assert_eq!(s.take_woken(), [h]);
    assert!(s.can_recv(h));
    assert!(s.can_send(h));
}

/// EMSGSIZE for more than 65507 bytes (65535 less the IP and UDP
/// headers); EAGAIN once the stack holds too much unsent, until it drains.
#[test]
fn oversized_datagrams_and_a_full_transmit_queue_are_refused() {
    let mut s = ip_stack(US);
    let h = s.udp_socket().unwrap();
    assert_eq!(s.send_to(h, &vec![0; 65_508], sa(PEER, 9)), Err(Error::MessageTooLong));
    let big = vec![1u8; 65_000];
    let mut sent = 0;
    let blocked = loop {
        match s.send_to(h, &big, sa(PEER, 9)) {
            Ok(_) => sent += 1,
            Err(e) => break e,
        }
        assert!(sent < 1000, "never pushed back");
    };
    assert_eq!(blocked, Error::WouldBlock);
    assert!(sent >= 16, "only {sent} datagrams queued");
    let frames = drain(&mut s, ms(0));
    assert_eq!(frames.len(), sent * 44);
    assert_eq!(s.send_to(h, &big, sa(PEER, 9)), Ok(65_000));
}

// ---- path MTU (RFC 1191, IP_MTU_DISCOVER) -------------------------------------

/// What a router on the path answers to `packet` (one the stack sent with
/// DF) when its next hop carries only `mtu` bytes: ICMP fragmentation
/// needed, quoting the header and the first 8 bytes (RFC 1191 §4).
fn frag_needed_about(packet: &[u8], mtu: u16) -> Vec<u8> {
    let (header, payload) = parse_ip(packet);
    let reason = DstUnreachable::FragRequired { next_hop_mtu: mtu };
    icmp_packet(ROUTER, header.src_addr, &Icmpv4Repr::DstUnreachable { reason, header, data: &payload[..8] })
}

/// A router between the stack and its peers.
const ROUTER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 254);

/// Sends `len` bytes on `h` to `dst` and returns the IP packets that left:
/// their total lengths and whether each carried DF.
/// SO_ERROR: the socket's pending error, cleared by reading it.
fn take_error(s: &mut Stack, h: SocketHandle) -> Option<Error> {
    match s.get_option(h, SockOptName::Error) {
        Ok(SockOpt::Error(e)) => e,
        other => panic!("SO_ERROR: {other:?}"),
    }
}

fn sent(s: &mut Stack, h: SocketHandle, len: usize, dst: std::net::SocketAddrV4) -> Vec<(usize, bool)> {
    s.send_to(h, &vec![7; len], dst).unwrap();
    drain(s, ms(0)).iter().map(|p| (p.len(), parse_ip(p).0.dont_frag)).collect()
}

/// IP_PMTUDISC_WANT, the default (as on Linux): a datagram that fits the
/// path carries DF, so that a router too small for it says so instead of
/// fragmenting it (RFC 1191 §3); a larger one is fragmented by the stack
/// without DF. Once a router's "fragmentation needed" taught a smaller path
/// MTU, the stack fragments at it, for this socket and every other, and
/// datagrams that fit it still carry DF.
#[test]
fn rfc1191_datagrams_that_fit_carry_df_and_fragment_at_the_learned_path_mtu() {
    let mut s = ip_stack(US);
    let h = s.udp_socket().unwrap();
    let peer = sa(PEER, 4500);
    assert_eq!(s.get_option(h, SockOptName::MtuDiscover), Ok(SockOpt::MtuDiscover(PmtuDiscovery::Want)));
    assert_eq!(sent(&mut s, h, 1472, peer), [(1500, true)]);
    assert_eq!(sent(&mut s, h, 3000, peer), [(1500, false), (1500, false), (68, false)]);

    s.send_to(h, &[7; 1400], peer).unwrap();
    let big = drain(&mut s, ms(0)).remove(0);
    s.handle_ip_packet(ms(1), &frag_needed_about(&big, 1280));
    assert_eq!(s.path_mtu(PEER), Some(1280));
    // An unconnected socket has no one to report the error to.
    assert_eq!(s.get_option(h, SockOptName::Error), Ok(SockOpt::Error(None)));
    assert_eq!(sent(&mut s, h, 1400, peer), [(1276, false), (172, false)]);
    assert_eq!(sent(&mut s, h, 1252, peer), [(1280, true)]);
    let other = s.udp_socket().unwrap();
    assert_eq!(sent(&mut s, other, 1400, peer), [(1276, false), (172, false)]);
    // Another destination keeps the interface MTU.
    assert_eq!(sent(&mut s, h, 1472, sa(Ipv4Addr::new(10, 0, 0, 3), 4500)), [(1500, true)]);
}

/// IP_PMTUDISC_DO: every datagram carries DF, and one larger than the path
/// MTU fails with EMSGSIZE instead of being fragmented. The router's error
/// reaches a connected socket as EMSGSIZE on its next call (as on Linux),
/// and IP_MTU tells the application the size to use.
#[test]
fn ip_pmtudisc_do_refuses_datagrams_larger_than_the_path_mtu_with_emsgsize() {
    let mut s = ip_stack(US);
    let h = s.udp_socket().unwrap();
    s.set_option(h, SockOpt::MtuDiscover(PmtuDiscovery::Do)).unwrap();
    assert_eq!(s.get_option(h, SockOptName::Mtu), Err(Error::NotConnected));
    s.connect(h, sa(PEER, 4500)).unwrap();
    assert_eq!(s.get_option(h, SockOptName::Mtu), Ok(SockOpt::Mtu(1500)));
    assert_eq!(s.send(h, &[0; 1473]), Err(Error::MessageTooLong));
    s.send(h, &[0; 1472]).unwrap();
    let full = drain(&mut s, ms(0)).remove(0);
    assert!(parse_ip(&full).0.dont_frag);

    s.handle_ip_packet(ms(1), &frag_needed_about(&full, 1400));
    assert_eq!(s.send(h, &[0; 100]), Err(Error::MessageTooLong), "the error, once");
    assert_eq!(s.get_option(h, SockOptName::Mtu), Ok(SockOpt::Mtu(1400)));
    assert_eq!(s.send(h, &[0; 1373]), Err(Error::MessageTooLong));
    assert_eq!(sent(&mut s, h, 1372, sa(PEER, 4500)), [(1400, true)]);
    assert!(s.take_woken().contains(&h), "the error woke the socket");
}

/// IP_PMTUDISC_PROBE: DF always, sized to the interface, whatever the
/// path MTU says (for an application that probes the path itself, RFC
/// 8899); IP_PMTUDISC_DONT: no DF, so routers may fragment, and no error
/// is reported. Both still teach the stack what the router said.
#[test]
fn ip_pmtudisc_probe_ignores_the_path_mtu_and_dont_clears_df() {
    let mut s = ip_stack(US);
    let h = s.udp_socket().unwrap();
    s.connect(h, sa(PEER, 4500)).unwrap();
    s.send(h, &[0; 1472]).unwrap();
    let full = drain(&mut s, ms(0)).remove(0);
    s.set_option(h, SockOpt::MtuDiscover(PmtuDiscovery::Probe)).unwrap();
    s.handle_ip_packet(ms(1), &frag_needed_about(&full, 1400));
    assert_eq!(take_error(&mut s, h), Some(Error::MessageTooLong));
    assert_eq!(sent(&mut s, h, 1472, sa(PEER, 4500)), [(1500, true)]);
    assert_eq!(s.send(h, &[0; 1473]), Err(Error::MessageTooLong));

    s.set_option(h, SockOpt::MtuDiscover(PmtuDiscovery::Dont)).unwrap();
    assert_eq!(s.get_option(h, SockOptName::MtuDiscover), Ok(SockOpt::MtuDiscover(PmtuDiscovery::Dont)));
    assert_eq!(sent(&mut s, h, 1372, sa(PEER, 4500)), [(1400, false)]);
    assert_eq!(sent(&mut s, h, 1373, sa(PEER, 4500)), [(1396, false), (25, false)]);
    s.handle_ip_packet(ms(2), &frag_needed_about(&full, 1300));
    assert_eq!(take_error(&mut s, h), None, "IP_PMTUDISC_DONT reports no error");
    assert_eq!(s.path_mtu(PEER), Some(1300));
}

/// UDP quotes no sequence number to check an ICMP error against (RFC 5927
/// §4.1 is TCP's), so the stack takes "fragmentation needed" only for a
/// datagram one of its sockets could have sent: from a bound port, and to
/// the peer of a connected socket. An MTU of 0 (a router older than RFC
/// 1191) teaches nothing, and a tiny one is raised to `min_path_mtu`
/// (552), so a forged error cannot cut the path to a few bytes (§7).
#[test]
fn rfc5927_frag_needed_for_udp_needs_a_socket_that_sent_it_and_is_floored() {
    let mut s = ip_stack(US);
    let h = s.udp_socket().unwrap();
    s.connect(h, sa(PEER, 4500)).unwrap();
    let local = s.local_addr(h).unwrap();
    let about = |from: std::net::SocketAddrV4, to: std::net::SocketAddrV4, mtu| {
        let mut d = udp_packet(from, to, &[0; 1400]);
        d[6] |= 0x40; // DF
        refill_ip_checksum(&mut d);
        frag_needed_about(&d, mtu)
    };
    // No socket on that port; a peer the connected socket does not talk to;
    // an MTU of 0.
    s.handle_ip_packet(ms(0), &about(sa(US, 9999), sa(PEER, 4500), 1000));
    s.handle_ip_packet(ms(0), &about(local, sa(PEER, 4501), 1000));
    s.handle_ip_packet(ms(0), &about(local, sa(PEER, 4500), 0));
    assert_eq!(s.path_mtu(PEER), None);
    assert_eq!(take_error(&mut s, h), None);
    s.handle_ip_packet(ms(0), &about(local, sa(PEER, 4500), 100));
    assert_eq!(s.path_mtu(PEER), Some(552));
    assert_eq!(take_error(&mut s, h), Some(Error::MessageTooLong));
}

/// The path MTU a UDP socket learned is the stack's, as a route's is on
/// Linux: a TCP connection to the same host sends no larger from then on,
/// and IP_MTU on it says so. TCP always sets DF, so it takes
/// IP_PMTUDISC_WANT and DO and refuses the fragmenting modes.
#[test]
fn a_path_mtu_learned_by_udp_reaches_tcp_to_the_same_host() {
    let mut pair = Pair::new();
    let l = pair.b.tcp_socket().unwrap();
    pair.b.bind(l, sa(ANY, 80)).unwrap();
    pair.b.listen(l, 4).unwrap();
    let c = pair.a.tcp_socket().unwrap();
    assert_eq!(pair.a.set_option(c, SockOpt::MtuDiscover(PmtuDiscovery::Do)), Ok(()));
    assert_eq!(pair.a.set_option(c, SockOpt::MtuDiscover(PmtuDiscovery::Dont)), Err(Error::NoProtocolOption));
    assert_eq!(pair.a.set_option(c, SockOpt::MtuDiscover(PmtuDiscovery::Probe)), Err(Error::NoProtocolOption));
    assert_eq!(pair.a.set_option(c, SockOpt::Mtu(1000)), Err(Error::NoProtocolOption));
    assert_eq!(pair.a.get_option(c, SockOptName::Mtu), Err(Error::NotConnected));
    pair.a.connect(c, sa(PEER, 80)).unwrap();
    pair.exchange();
    assert_eq!(pair.a.get_option(c, SockOptName::Mtu), Ok(SockOpt::Mtu(1500)));
    assert_eq!(pair.a.get_option(c, SockOptName::MtuDiscover), Ok(SockOpt::MtuDiscover(PmtuDiscovery::Want)));

    let u = pair.a.udp_socket().unwrap();
    pair.a.send_to(u, &[0; 1472], sa(PEER, 4500)).unwrap();
    let full = drain(&mut pair.a, pair.now).remove(0);
    pair.a.handle_ip_packet(pair.now, &frag_needed_about(&full, 1200));
    assert_eq!(pair.a.get_option(c, SockOptName::Mtu), Ok(SockOpt::Mtu(1200)));
    pair.a.send(c, &[1; 5000]).unwrap();
    let segments = drain(&mut pair.a, pair.now);
    assert!(!segments.is_empty());
    assert!(segments.iter().all(|p| p.len() <= 1200), "{:?}", segments.iter().map(Vec::len).collect::<Vec<_>>());
}
