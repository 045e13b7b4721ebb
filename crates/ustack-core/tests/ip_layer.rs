//! The link and network layers of a stack: IPv4 input validation, the
//! output path and routing, ARP, ICMP, fragmentation and reassembly.
//!
//! Most tests drive one stack by hand (hand-built packets in through
//! `handle_ip_packet`/`handle_frame`, what it sends read back from
//! `poll_transmit`); the rest run Ethernet hosts on the simulator. Each test
//! is named after the behaviour and the RFC section that asks for it.

mod iputil;

use iputil::*;
use std::net::Ipv4Addr;
use ustack_core::sim::scenario::{default_pair, host_ip, host_mac};
use ustack_core::sim::{Host, LinkConfig, Network};
use ustack_core::socket::SocketHandle;
use ustack_core::stack::{EchoError, EchoRequest, IcmpError};
use ustack_core::stats::DropReason;
use ustack_core::tcp::State;
use ustack_core::time::{Duration, Instant};
use ustack_core::wire::{
    ArpOperation, EtherType, EthernetAddress, Icmpv4Repr, IpProtocol, Ipv4Cidr, Ipv4Packet, Ipv4Repr,
};
use ustack_core::wire::{DstUnreachable, TimeExceeded};
use ustack_core::{Error, PmtuDiscovery, Stack};

/// A stack at 10.0.0.1 (IP medium) with a UDP socket on port 7.
fn udp_rx_stack() -> (Stack, SocketHandle) {
    let mut s = ip_stack(US);
    let h = s.udp_socket().unwrap();
    s.bind(h, sa(Ipv4Addr::UNSPECIFIED, 7)).unwrap();
    (s, h)
}

/// A well-formed datagram from the peer to port 7.
fn hello() -> Vec<u8> {
    udp_packet(sa(PEER, 1000), sa(US, 7), b"hello")
}

/// Every datagram waiting on `h`.
fn recv_all(s: &mut Stack, h: SocketHandle) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 70_000];
    while let Ok((n, _)) = s.recv_from(h, &mut buf) {
        out.push(buf[..n].to_vec());
    }
    out
}

/// Feeds `packet` to a fresh stack with a socket on port 7 and checks that
/// it was dropped, counted once under `reason` and nothing else, that
/// nothing was delivered or sent, and that a good datagram still gets
/// through afterwards.
fn assert_dropped(packet: &[u8], reason: DropReason) {
    let (mut s, h) = udp_rx_stack();
    s.handle_ip_packet(ms(0), packet);
    let drops: Vec<_> = s.stats().drops_by_reason().collect();
    assert_eq!(drops, [(reason, 1)], "packet {packet:02x?}");
    assert!(recv_all(&mut s, h).is_empty(), "delivered anyway");
    assert!(drain(&mut s, ms(0)).is_empty(), "answered a packet it should drop");
    s.handle_ip_packet(ms(1), &hello());
    assert_eq!(recv_all(&mut s, h), [b"hello".to_vec()]);
}

// ---- IPv4 input validation (RFC 791 §3.1, RFC 1122 §3.2.1) ----------------------

/// RFC 1122 §3.2.1.1: a datagram whose version number is not 4 MUST be
/// silently discarded.
#[test]
fn rfc1122_3_2_1_1_wrong_version_is_discarded() {
    for version in [0u8, 5, 6, 15] {
        let mut p = hello();
        p[0] = (version << 4) | 5;
        refill_ip_checksum(&mut p);
        assert_dropped(&p, DropReason::IpBadVersion);
    }
}

/// RFC 791 §3.1: the IHL is at least 5 (a 20-byte header).
#[test]
fn rfc791_3_1_header_length_below_five_words_is_discarded() {
    for ihl in [0u8, 1, 4] {
        let mut p = hello();
        p[0] = 0x40 | ihl;
        assert_dropped(&p, DropReason::IpBadHeaderLen);
    }
}

/// RFC 791 §3.1: an IHL claiming more header than the packet holds is a
/// header error (Linux: InHdrErrors), not a bad total length.
#[test]
fn rfc791_3_1_header_length_past_the_packet_is_discarded() {
    let mut p = hello()[..20].to_vec();
    p[0] = 0x46; // a 24-byte header in 20 bytes
    p[2..4].copy_from_slice(&20u16.to_be_bytes());
    assert_dropped(&p, DropReason::IpBadHeaderLen);
    let mut p = hello();
    p[0] = 0x4f; // 60 bytes of header in a 33-byte packet
    assert_dropped(&p, DropReason::IpBadHeaderLen);
}

/// RFC 791 §3.1: the total length covers header and data; a packet
/// shorter than it claims, or a total length smaller than the header, is
/// discarded.
#[test]
fn rfc791_3_1_total_length_longer_than_the_packet_or_shorter_than_the_header_is_discarded() {
    let good = hello();
    for total in [good.len() as u16 + 1, 1500, u16::MAX, 19, 0] {
        let mut p = good.clone();
        p[2..4].copy_from_slice(&total.to_be_bytes());
        refill_ip_checksum(&mut p);
        assert_dropped(&p, DropReason::IpBadTotalLen);
    }
    // A packet cut short in its data.
    assert_dropped(&good[..good.len() - 1], DropReason::IpBadTotalLen);
}

/// Fewer bytes than a minimal header.
#[test]
fn rfc791_3_1_packet_shorter_than_a_header_is_discarded() {
    for len in [0, 1, 19] {
        assert_dropped(&hello()[..len], DropReason::IpTruncated);
    }
}

/// RFC 1122 §3.2.1.2: "A host MUST verify the IP header checksum on every
/// received datagram and silently discard every datagram that has a bad
/// checksum."
#[test]
fn rfc1122_3_2_1_2_bad_header_checksum_is_discarded() {
    let mut p = hello();
    p[10] ^= 0x01;
    assert_dropped(&p, DropReason::IpBadChecksum);
    // A header bit flipped under a good checksum.
    let mut p = hello();
    p[8] ^= 0x80;
    assert_dropped(&p, DropReason::IpBadChecksum);
}

/// RFC 1122 §3.2.1.8: a host ignores options it does not implement; a
/// header with options (IHL > 5) is otherwise processed normally.
#[test]
fn rfc1122_3_2_1_8_header_options_are_tolerated() {
    let udp = udp_bytes(sa(PEER, 1000), sa(US, 7), b"with options");
    for options in [&[1u8, 1, 1, 0][..], &[7, 7, 4, 0, 0, 0, 0, 0], &[0x94, 4, 0, 0]] {
        let hl = 20 + options.len();
        let mut p = vec![0u8; hl + udp.len()];
        ip_repr(PEER, US, IpProtocol::Udp, udp.len()).emit(&mut Ipv4Packet::new_unchecked(&mut p[..]), false);
        p[0] = 0x40 | (hl / 4) as u8;
        p[2..4].copy_from_slice(&((hl + udp.len()) as u16).to_be_bytes());
        p[20..hl].copy_from_slice(options);
        p[hl..].copy_from_slice(&udp);
        refill_ip_checksum(&mut p);
        let (mut s, h) = udp_rx_stack();
        s.handle_ip_packet(ms(0), &p);
        assert_eq!(recv_all(&mut s, h), [b"with options".to_vec()], "options {options:?}");
        assert_eq!(s.stats().total_drops(), 0);
    }
}

/// RFC 894 frames are padded to 60 bytes: bytes past the total length are
/// not part of the datagram.
#[test]
fn rfc791_3_1_bytes_after_the_total_length_are_ignored() {
    let mut p = hello();
    p.extend_from_slice(&[0xee; 20]);
    let (mut s, h) = udp_rx_stack();
    s.handle_ip_packet(ms(0), &p);
    assert_eq!(recv_all(&mut s, h), [b"hello".to_vec()]);
}

/// RFC 1122 §3.2.1.3: a source address must name a single host; a
/// datagram from a broadcast, multicast or loopback address ("MUST NOT
/// appear outside a host") is discarded, and answered with nothing.
#[test]
fn rfc1122_3_2_1_3_broadcast_multicast_or_loopback_source_is_discarded() {
    for src in [
        Ipv4Addr::BROADCAST,
        Ipv4Addr::new(10, 0, 0, 255),
        Ipv4Addr::new(224, 0, 0, 1),
        Ipv4Addr::new(239, 1, 2, 3),
        Ipv4Addr::new(127, 0, 0, 1),
    ] {
        // To a closed port, so that a missed check would show as an ICMP error.
        assert_dropped(&udp_packet(sa(src, 1000), sa(US, 9), b"x"), DropReason::IpBadSource);
    }
}

/// RFC 1122 §3.2.1.3 (a), (b): {0, 0} and {0, <host>} appear only as the
/// source of a host learning its own address (DHCP, to the limited
/// broadcast address). Sent to us, they could only be answered to an
/// address that "MUST NOT be sent"; Linux drops them as martians too, and
/// RFC 1122 §4.2.3.10 has TCP ignore such a SYN.
#[test]
fn rfc1122_3_2_1_3_zero_source_is_accepted_only_towards_the_limited_broadcast() {
    let zero = Ipv4Addr::UNSPECIFIED;
    let mut s = ip_stack(US);
    let dhcp = s.udp_socket().unwrap();
    s.bind(dhcp, sa(Ipv4Addr::UNSPECIFIED, 67)).unwrap();
    let l = s.tcp_socket().unwrap();
    s.bind(l, sa(US, 80)).unwrap();
    s.listen(l, 4).unwrap();
    s.handle_ip_packet(ms(0), &udp_packet(sa(zero, 68), sa(Ipv4Addr::BROADCAST, 67), b"discover"));
    assert_eq!(s.recv_from(dhcp, &mut [0; 16]), Ok((8, sa(zero, 68))));
    let echo = Icmpv4Repr::EchoRequest { ident: 1, seq_no: 1, data: b"x" };
    for src in [zero, Ipv4Addr::new(0, 0, 0, 9)] {
        s.handle_ip_packet(ms(1), &icmp_packet(src, US, &echo));
        s.handle_ip_packet(ms(1), &tcp_syn(sa(src, 4000), sa(US, 80), 1));
        s.handle_ip_packet(ms(1), &udp_packet(sa(src, 68), sa(US, 67), b"unicast"));
    }
    assert!(drain(&mut s, ms(1)).is_empty(), "answered a zero source");
    assert_eq!(s.recv_from(dhcp, &mut [0; 16]), Err(Error::WouldBlock));
    assert_eq!(s.stats().drops(DropReason::IpBadSource), 6);
}

/// RFC 1122 §3.2.1.3 / §3.3.1.5: a host does not forward; a datagram for
/// another address is discarded.
#[test]
fn rfc1122_3_3_1_5_datagram_not_for_us_is_discarded() {
    for dst in [Ipv4Addr::new(10, 0, 0, 3), Ipv4Addr::new(192, 168, 1, 1), Ipv4Addr::new(10, 0, 1, 255)] {
        assert_dropped(&udp_packet(sa(PEER, 1000), sa(dst, 7), b"x"), DropReason::IpNotForUs);
    }
}

/// RFC 1122 §3.2.1.7: "A host MUST NOT discard a datagram just because it
/// was received with TTL less than 2." TTL is a forwarding matter: a host
/// delivering locally accepts TTL 1 and, as Linux does, TTL 0 too.
#[test]
fn rfc1122_3_2_1_7_ttl_one_and_zero_are_accepted() {
    for ttl in [1u8, 0] {
        let mut p = hello();
        p[8] = ttl;
        refill_ip_checksum(&mut p);
        let (mut s, h) = udp_rx_stack();
        s.handle_ip_packet(ms(0), &p);
        assert_eq!(recv_all(&mut s, h), [b"hello".to_vec()], "ttl {ttl}");
        assert_eq!(s.stats().drops(DropReason::IpTtlExpired), 0);
    }
}

// ---- output -----------------------------------------------------------------------

/// RFC 791 §3.2 (and RFC 6864 §4.1 for non-atomic datagrams): each datagram
/// gets its own identification; RFC 1122 §3.2.1.7: the TTL is the
/// configured one (64, as Linux).
#[test]
fn rfc791_3_2_each_datagram_has_its_own_ident_and_ttl_64() {
    let mut s = ip_stack(US);
    let h = s.udp_socket().unwrap();
    for i in 0..5u8 {
        s.send_to(h, &[i; 10], sa(PEER, 9)).unwrap();
    }
    assert!(s.send_echo_request(ms(0), PEER, 1, 1, b"ping"));
    let out = drain(&mut s, ms(0));
    assert_eq!(out.len(), 6);
    let mut idents: Vec<u16> = out.iter().map(|p| parse_ip(p).0.ident).collect();
    for p in &out {
        let (ip, _) = parse_ip(p);
        assert_eq!(ip.hop_limit, 64);
        assert_eq!((ip.src_addr, ip.dst_addr), (US, PEER));
        assert!(!ip.is_fragment());
    }
    idents.sort();
    idents.dedup();
    assert_eq!(idents.len(), 6, "identifications repeat");
}

/// RFC 1191 §3: TCP does path MTU discovery, so its segments carry DF;
/// they also get fresh identifications and TTL 64.
#[test]
fn rfc1191_3_tcp_segments_carry_dont_fragment() {
    let mut pair = Pair::new();
    let l = pair.b.tcp_socket().unwrap();
    pair.b.bind(l, sa(PEER, 80)).unwrap();
    pair.b.listen(l, 4).unwrap();
    let c = pair.a.tcp_socket().unwrap();
    pair.a.connect(c, sa(PEER, 80)).unwrap();
    pair.exchange();
    assert_eq!(pair.a.tcp_state(c).unwrap(), State::Established);
    pair.a.send(c, &[7; 3000]).unwrap();
    pair.run_for(Duration::from_secs(1));
    let tcp: Vec<Ipv4Repr> =
        pair.log.iter().map(|(_, p)| parse_ip(p).0).filter(|ip| ip.protocol == IpProtocol::Tcp).collect();
    assert!(tcp.len() >= 5, "{} segments", tcp.len());
    for ip in &tcp {
        assert!(ip.dont_frag, "{ip}");
        assert!(!ip.is_fragment());
        assert_eq!(ip.hop_limit, 64);
    }
    let from_a: Vec<u16> = pair.log.iter().filter(|(a, _)| *a).map(|(_, p)| parse_ip(p).0.ident).collect();
    let mut unique = from_a.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), from_a.len());
}

/// The first ARP request an Ethernet stack sends after `send`.
fn first_arp_target(s: &mut Stack, now: Instant) -> Vec<Ipv4Addr> {
    drain(s, now).iter().filter_map(|f| arp_of(f)).map(|a| a.target_protocol_addr).collect()
}

/// RFC 1812 §5.2.4.3 (as RFC 1122 §3.3.1.2 leaves routes to the host):
/// the most specific route wins; the default route catches the rest.
#[test]
fn rfc1812_5_2_4_3_longest_prefix_match_picks_the_next_hop() {
    let gw = Ipv4Addr::new(10, 0, 0, 254);
    let mut s = Stack::new(eth_config(US_MAC, US).with_gateway(gw));
    s.routes_mut().add("10.1.0.0/16".parse().unwrap(), Some(Ipv4Addr::new(10, 0, 0, 253))).unwrap();
    s.routes_mut().add("10.1.2.0/24".parse().unwrap(), Some(Ipv4Addr::new(10, 0, 0, 252))).unwrap();
    let h = s.udp_socket().unwrap();
    for (dst, hop) in [
        (Ipv4Addr::new(10, 1, 2, 3), Ipv4Addr::new(10, 0, 0, 252)),
        (Ipv4Addr::new(10, 1, 9, 9), Ipv4Addr::new(10, 0, 0, 253)),
        (Ipv4Addr::new(192, 168, 1, 1), gw),
        (Ipv4Addr::new(10, 0, 0, 7), Ipv4Addr::new(10, 0, 0, 7)),
    ] {
        s.send_to(h, b"x", sa(dst, 9)).unwrap();
        assert_eq!(first_arp_target(&mut s, ms(0)), [hop], "to {dst}");
    }
}

/// RFC 1122 §3.3.1.1-2: a datagram for another network goes to the
/// gateway's link address with the final destination in its IP header.
#[test]
fn rfc1122_3_3_1_off_link_datagrams_go_to_the_default_gateway() {
    let gw = Ipv4Addr::new(10, 0, 0, 254);
    let gw_mac = EthernetAddress([0x02, 0, 0, 0, 0, 0xfe]);
    let far = Ipv4Addr::new(192, 168, 1, 1);
    let mut s = Stack::new(eth_config(US_MAC, US).with_gateway(gw));
    let h = s.udp_socket().unwrap();
    s.send_to(h, b"far away", sa(far, 53)).unwrap();
    let out = drain(&mut s, ms(0));
    assert_eq!(out.len(), 1, "only the ARP request leaves");
    let req = arp_of(&out[0]).expect("an ARP request");
    assert_eq!(req.operation, ArpOperation::Request);
    assert_eq!((req.source_protocol_addr, req.target_protocol_addr), (US, gw));
    assert_eq!(parse_eth(&out[0]).0.dst, EthernetAddress::BROADCAST);
    s.handle_frame(ms(1), &arp_frame(ArpOperation::Reply, gw_mac, gw, US_MAC, US));
    s.send_to(h, b"again", sa(far, 53)).unwrap();
    let out = drain(&mut s, ms(1));
    assert_eq!(out.len(), 2);
    for (frame, data) in out.iter().zip([&b"far away"[..], b"again"]) {
        let (eth, ip, payload) = ip_of(frame).expect("an IP frame");
        assert_eq!((eth.src, eth.dst), (US_MAC, gw_mac));
        assert_eq!((ip.src_addr, ip.dst_addr), (US, far));
        assert_eq!(&payload[8..], data);
    }
}

/// With no route to a destination the socket calls fail with
/// ENETUNREACH (RFC 1122 §3.3.1.1: no gateway, nowhere to send), and
/// nothing is sent.
#[test]
fn rfc1122_3_3_1_no_route_is_enetunreach() {
    let far = Ipv4Addr::new(192, 168, 1, 1);
    for mut s in [eth_stack(), ip_stack(US)] {
        let t = s.tcp_socket().unwrap();
        assert_eq!(s.connect(t, sa(far, 80)), Err(Error::NetworkUnreachable));
        let u = s.udp_socket().unwrap();
        assert_eq!(s.send_to(u, b"x", sa(far, 53)), Err(Error::NetworkUnreachable));
        let u2 = s.udp_socket().unwrap();
        assert_eq!(s.connect(u2, sa(far, 53)), Err(Error::NetworkUnreachable));
        assert!(!s.send_echo_request(ms(0), far, 1, 1, b"x"));
        assert!(drain(&mut s, ms(0)).is_empty());
        // On-link destinations still work.
        assert_eq!(s.send_to(u, b"x", sa(PEER, 53)), Ok(1));
        assert_eq!(drain(&mut s, ms(0)).len(), 1);
    }
}

/// RFC 1122 §3.3.4.3: on a multihomed host the source address is the one
/// on the destination's network (else the first), for datagrams, ARP
/// requests and echo requests alike; replies and ICMP errors come from the
/// address the datagram was sent to (§3.2.2.6, §3.2.2).
#[test]
fn rfc1122_3_3_4_3_source_address_follows_the_destination_network() {
    let second = Ipv4Addr::new(192, 168, 5, 1);
    let neighbour = Ipv4Addr::new(192, 168, 5, 7);
    let mut cfg = eth_config(US_MAC, US);
    cfg.addresses.push(Ipv4Cidr::new(second, 24));
    let mut s = Stack::new(cfg);
    assert_eq!(s.source_address_for(neighbour), Some(second));
    assert_eq!(s.source_address_for(PEER), Some(US));
    let h = s.udp_socket().unwrap();
    s.send_to(h, b"x", sa(neighbour, 9)).unwrap();
    let out = drain(&mut s, ms(0));
    let req = arp_of(&out[0]).unwrap();
    assert_eq!((req.source_protocol_addr, req.target_protocol_addr), (second, neighbour));
    s.handle_frame(ms(1), &arp_frame(ArpOperation::Reply, PEER_MAC, neighbour, US_MAC, second));
    let out = drain(&mut s, ms(1));
    assert_eq!(ip_of(&out[0]).unwrap().1.src_addr, second);
    // Answers to the second address come from it.
    let echo = Icmpv4Repr::EchoRequest { ident: 1, seq_no: 1, data: b"x" };
    s.handle_frame(ms(2), &eth_frame(PEER_MAC, US_MAC, EtherType::Ipv4, &icmp_packet(neighbour, second, &echo)));
    let closed = udp_packet(sa(neighbour, 1000), sa(second, 9), b"x");
    s.handle_frame(ms(2), &eth_frame(PEER_MAC, US_MAC, EtherType::Ipv4, &closed));
    let out = drain(&mut s, ms(2));
    assert_eq!(out.len(), 2);
    for f in &out {
        let (_, ip, _) = ip_of(f).unwrap();
        assert_eq!((ip.src_addr, ip.dst_addr), (second, neighbour));
    }
}

/// RFC 1122 §3.3.6: a datagram to the limited or the directed broadcast
/// address goes out in a link-layer broadcast, without ARP, and a host on
/// the LAN takes it.
#[test]
fn rfc1122_3_3_6_broadcast_datagrams_go_out_as_link_broadcasts() {
    let mut s = eth_stack();
    let h = s.udp_socket().unwrap();
    for dst in [Ipv4Addr::BROADCAST, Ipv4Addr::new(10, 0, 0, 255)] {
        s.send_to(h, b"all", sa(dst, 67)).unwrap();
        let out = drain(&mut s, ms(0));
        assert_eq!(out.len(), 1, "to {dst}");
        let (eth, ip, _) = ip_of(&out[0]).expect("an IP frame, no ARP");
        assert_eq!((eth.dst, ip.src_addr, ip.dst_addr), (EthernetAddress::BROADCAST, US, dst));
        let mut peer = Stack::new(eth_config(PEER_MAC, PEER));
        let p = peer.udp_socket().unwrap();
        peer.bind(p, sa(Ipv4Addr::UNSPECIFIED, 67)).unwrap();
        peer.handle_frame(ms(0), &out[0]);
        assert_eq!(peer.recv_from(p, &mut [0; 8]), Ok((3, sa(US, s.local_addr(h).unwrap().port()))));
    }
}

// ---- ARP (RFC 826, RFC 1122 §2.3.2) ------------------------------------------------

/// RFC 826 "Packet Reception": a request for our address is answered with
/// our hardware address, sent to the requester, whose mapping we learn.
#[test]
fn rfc826_request_for_our_address_is_answered_and_the_sender_learned() {
    let mut s = eth_stack();
    s.handle_frame(ms(0), &arp_frame(ArpOperation::Request, PEER_MAC, PEER, EthernetAddress([0; 6]), US));
    let out = drain(&mut s, ms(0));
    assert_eq!(out.len(), 1);
    let (eth, _) = parse_eth(&out[0]);
    assert_eq!((eth.src, eth.dst, eth.ethertype), (US_MAC, PEER_MAC, EtherType::Arp));
    let reply = arp_of(&out[0]).unwrap();
    assert_eq!(reply.operation, ArpOperation::Reply);
    assert_eq!((reply.source_hardware_addr, reply.source_protocol_addr), (US_MAC, US));
    assert_eq!((reply.target_hardware_addr, reply.target_protocol_addr), (PEER_MAC, PEER));
    // Learned: a datagram to the peer leaves at once, to its MAC.
    let h = s.udp_socket().unwrap();
    s.send_to(h, b"hi", sa(PEER, 9)).unwrap();
    let out = drain(&mut s, ms(1));
    assert_eq!(out.len(), 1);
    let (eth, ip, _) = ip_of(&out[0]).expect("an IP frame, no ARP request");
    assert_eq!((eth.dst, ip.dst_addr), (PEER_MAC, PEER));
}

/// RFC 826: a packet whose target is not us is not answered, and its
/// sender is not added to the table (only merged if already there).
#[test]
fn rfc826_request_for_another_address_is_ignored_and_not_learned() {
    let mut s = eth_stack();
    s.handle_frame(
        ms(0),
        &arp_frame(ArpOperation::Request, PEER_MAC, PEER, EthernetAddress([0; 6]), Ipv4Addr::new(10, 0, 0, 3)),
    );
    assert!(drain(&mut s, ms(0)).is_empty());
    assert_eq!(s.stats().drops(DropReason::ArpNotForUs), 1);
    let h = s.udp_socket().unwrap();
    s.send_to(h, b"hi", sa(PEER, 9)).unwrap();
    assert_eq!(first_arp_target(&mut s, ms(1)), [PEER], "the sender was learned from a request not for us");
}

/// RFC 826's merge step: any ARP packet, even one not for us (a gratuitous
/// announcement), updates an existing entry; it creates none.
#[test]
fn rfc826_gratuitous_arp_updates_a_known_entry_but_adds_none() {
    let mut s = eth_stack();
    let h = s.udp_socket().unwrap();
    // Learn the peer from an unsolicited reply addressed to us.
    s.handle_frame(ms(0), &arp_frame(ArpOperation::Reply, PEER_MAC, PEER, US_MAC, US));
    assert!(drain(&mut s, ms(0)).is_empty(), "a reply is not answered");
    s.send_to(h, b"1", sa(PEER, 9)).unwrap();
    assert_eq!(ip_of(&drain(&mut s, ms(0))[0]).unwrap().0.dst, PEER_MAC);
    // The peer moves to another NIC and announces it (sender = target).
    s.handle_frame(ms(1), &arp_frame(ArpOperation::Request, OTHER_MAC, PEER, EthernetAddress([0; 6]), PEER));
    assert!(drain(&mut s, ms(1)).is_empty(), "a gratuitous ARP is not answered");
    s.send_to(h, b"2", sa(PEER, 9)).unwrap();
    assert_eq!(ip_of(&drain(&mut s, ms(1))[0]).unwrap().0.dst, OTHER_MAC);
    // An announcement from a host we never talked to adds nothing.
    let third = Ipv4Addr::new(10, 0, 0, 3);
    s.handle_frame(ms(2), &arp_frame(ArpOperation::Request, OTHER_MAC, third, EthernetAddress([0; 6]), third));
    s.send_to(h, b"3", sa(third, 9)).unwrap();
    assert_eq!(first_arp_target(&mut s, ms(2)), [third]);
}

/// RFC 1122 §2.3.2.2: packets to an address being resolved are held, not
/// dropped, and leave in order once the reply comes; one request covers
/// them all (§2.3.2.1: no ARP flooding). When the queue is full the
/// oldest go: "save ... at least one (the latest) packet".
#[test]
fn rfc1122_2_3_2_2_packets_wait_for_resolution_and_leave_in_order() {
    let mut s = eth_stack();
    let h = s.udp_socket().unwrap();
    for i in 0..3u8 {
        s.send_to(h, &[i], sa(PEER, 9)).unwrap();
    }
    let out = drain(&mut s, ms(0));
    assert_eq!(out.len(), 1, "one ARP request for three packets");
    assert_eq!(arp_of(&out[0]).unwrap().target_protocol_addr, PEER);
    s.handle_frame(ms(5), &arp_frame(ArpOperation::Reply, PEER_MAC, PEER, US_MAC, US));
    let out = drain(&mut s, ms(5));
    let payloads: Vec<u8> = out
        .iter()
        .map(|f| {
            let (eth, _, udp) = ip_of(f).unwrap();
            assert_eq!(eth.dst, PEER_MAC);
            udp[8]
        })
        .collect();
    assert_eq!(payloads, [0, 1, 2]);

    // Overflow: the newest packets are kept.
    let mut s = eth_stack();
    let h = s.udp_socket().unwrap();
    let queue = s.config().neighbor.max_queued_per_entry;
    let n = queue as u8 + 2;
    for i in 0..n {
        s.send_to(h, &[i], sa(PEER, 9)).unwrap();
    }
    assert_eq!(drain(&mut s, ms(0)).len(), 1);
    assert_eq!(s.stats().drops(DropReason::ArpQueueFull), 2);
    s.handle_frame(ms(5), &arp_frame(ArpOperation::Reply, PEER_MAC, PEER, US_MAC, US));
    let got: Vec<u8> = drain(&mut s, ms(5)).iter().map(|f| ip_of(f).unwrap().2[8]).collect();
    assert_eq!(got, (2..n).collect::<Vec<u8>>());
}

/// RFC 1122 §2.3.2.1: requests are retransmitted at most once a second;
/// after 3 the resolution fails and the waiting packets are dropped and
/// counted.
#[test]
fn rfc1122_2_3_2_1_arp_retries_each_second_then_gives_up_after_three() {
    let mut s = eth_stack();
    let h = s.udp_socket().unwrap();
    let ghost = Ipv4Addr::new(10, 0, 0, 9);
    s.send_to(h, b"a", sa(ghost, 9)).unwrap();
    s.send_to(h, b"b", sa(ghost, 9)).unwrap();
    let sent = run_timers(&mut s, ms(0), ms(20_000));
    let requests: Vec<Instant> = sent
        .iter()
        .filter(|(_, f)| arp_of(f).is_some_and(|a| a.target_protocol_addr == ghost))
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(requests, [ms(0), ms(1000), ms(2000)]);
    assert_eq!(sent.len(), 3, "only ARP requests leave");
    assert_eq!(s.stats().drops(DropReason::ArpUnresolved), 2);
    // The next packet starts a new resolution.
    s.send_to(h, b"c", sa(ghost, 9)).unwrap();
    assert_eq!(first_arp_target(&mut s, ms(20_000)), [ghost]);
}

/// When ARP gives up on the next hop of a connection in SYN-SENT, the
/// connect fails with EHOSTUNREACH, as on Linux (RFC 1122 §2.3.2.1 leaves
/// the report to the implementation).
#[test]
fn rfc1122_2_3_2_1_arp_failure_fails_a_connect_with_ehostunreach() {
    let mut s = eth_stack();
    let c = s.tcp_socket().unwrap();
    s.connect(c, sa(Ipv4Addr::new(10, 0, 0, 9), 80)).unwrap();
    run_timers(&mut s, ms(0), ms(2_999));
    assert_eq!(s.tcp_state(c).unwrap(), State::SynSent);
    run_timers(&mut s, ms(2_999), ms(3_000));
    assert_eq!(s.tcp_state(c).unwrap(), State::Closed);
    assert_eq!(s.tcp_connection(c).unwrap().error(), Some(Error::HostUnreachable));
    assert_eq!(s.recv(c, &mut [0; 10]), Err(Error::HostUnreachable));
    assert!(s.stats().drops(DropReason::ArpUnresolved) >= 1);
}

/// RFC 1122 §2.3.2.1: a learned mapping is flushed when it times out
/// (`reachable_time`, 60 s); the next packet resolves it afresh.
#[test]
fn rfc1122_2_3_2_1_learned_entries_time_out() {
    let mut s = eth_stack();
    let h = s.udp_socket().unwrap();
    s.handle_frame(ms(0), &arp_frame(ArpOperation::Reply, PEER_MAC, PEER, US_MAC, US));
    let reachable = s.config().neighbor.reachable_time;
    let just_before = Instant::ZERO + reachable - Duration::from_millis(1);
    run_timers(&mut s, ms(0), just_before);
    s.send_to(h, b"1", sa(PEER, 9)).unwrap();
    assert!(ip_of(&drain(&mut s, just_before)[0]).is_some(), "still known");
    let expired = Instant::ZERO + reachable;
    assert!(run_timers(&mut s, just_before, expired).is_empty());
    s.send_to(h, b"2", sa(PEER, 9)).unwrap();
    assert_eq!(first_arp_target(&mut s, expired), [PEER]);
}

/// RFC 826: a reply (or any ARP) with an unknown hardware or protocol
/// type is discarded and counted.
#[test]
fn rfc826_arp_for_other_hardware_or_protocol_is_discarded() {
    let mut s = eth_stack();
    let mut f = arp_frame(ArpOperation::Request, PEER_MAC, PEER, EthernetAddress([0; 6]), US);
    f[14 + 2] = 0x86; // protocol type 0x86dd
    f[14 + 3] = 0xdd;
    s.handle_frame(ms(0), &f);
    let mut f = arp_frame(ArpOperation::Request, PEER_MAC, PEER, EthernetAddress([0; 6]), US);
    f[14 + 1] = 6; // hardware type 6 (IEEE 802)
    s.handle_frame(ms(0), &f);
    s.handle_frame(ms(0), &f[..14 + 27]);
    assert!(drain(&mut s, ms(0)).is_empty());
    assert_eq!(s.stats().drops(DropReason::ArpMalformed), 3);
}

// ---- ICMP (RFC 792, RFC 1122 §3.2.2) -----------------------------------------------

/// RFC 792 / RFC 1122 §3.2.2.6: an echo reply carries the request's
/// identifier, sequence number and data, back to its sender.
#[test]
fn rfc1122_3_2_2_6_echo_request_is_answered_with_the_same_ident_seq_and_data() {
    let mut s = ip_stack(US);
    let data: Vec<u8> = (0..=255).collect();
    let req = Icmpv4Repr::EchoRequest { ident: 0x1234, seq_no: 0xabcd, data: &data };
    s.handle_ip_packet(ms(0), &icmp_packet(PEER, US, &req));
    let out = drain(&mut s, ms(0));
    assert_eq!(out.len(), 1);
    let reply = icmp_of(&out[0]).unwrap();
    assert_eq!((reply.ip.src_addr, reply.ip.dst_addr), (US, PEER));
    assert_eq!((reply.msg_type, reply.code), (0, 0));
    assert_eq!(reply.rest, 0x1234_abcd);
    assert_eq!(reply.data, data);
    // A request with a bad checksum is dropped unanswered.
    let mut bad = icmp_packet(PEER, US, &req);
    bad[25] ^= 1;
    s.handle_ip_packet(ms(1), &bad);
    assert!(drain(&mut s, ms(1)).is_empty());
    assert_eq!(s.stats().drops(DropReason::IcmpBadChecksum), 1);
}

/// The ICMP error a router sends about `packet` (RFC 792: its header and
/// first 8 bytes), from `router`.
fn icmp_error_about(packet: &[u8], router: Ipv4Addr, error: IcmpError) -> Vec<u8> {
    let (header, payload) = parse_ip(packet);
    let data = &payload[..8];
    let repr = match error {
        IcmpError::Unreachable(reason) => Icmpv4Repr::DstUnreachable { reason, header, data },
        IcmpError::Exceeded(reason) => Icmpv4Repr::TimeExceeded { reason, header, data },
    };
    icmp_packet(router, header.src_addr, &repr)
}

/// traceroute and `ping -M do` (RFC 792, RFC 1191): an echo request goes
/// out with the TTL and DF asked for; the ICMP errors routers send about
/// it come back by `take_echo_errors`, naming the router, the request
/// (identifier and sequence number) and what went wrong. A request
/// larger than the path MTU with `Do` fails with EMSGSIZE before it is
/// sent. Errors about anything but an echo request are not echo errors.
#[test]
fn rfc792_errors_about_our_echo_requests_name_the_router_and_the_request() {
    let router = Ipv4Addr::new(10, 0, 0, 254);
    let far = Ipv4Addr::new(192, 0, 2, 9);
    let mut cfg = ip_config(US);
    cfg.gateway = Some(router);
    let mut s = Stack::new(cfg);
    let req = |seq_no, ttl, len, pmtu_discovery| EchoRequest {
        dst: far,
        ident: 0x77,
        seq_no,
        data: &[0u8; 2000][..len],
        ttl,
        pmtu_discovery,
    };
    s.send_echo(ms(0), &req(1, Some(1), 56, PmtuDiscovery::Want)).unwrap();
    let probe = drain(&mut s, ms(0)).remove(0);
    let (ip, _) = parse_ip(&probe);
    assert_eq!((ip.hop_limit, ip.dont_frag, ip.dst_addr), (1, true, far));
    s.handle_ip_packet(ms(3), &icmp_error_about(&probe, router, IcmpError::Exceeded(TimeExceeded::TtlExpired)));
    let errors = s.take_echo_errors();
    assert_eq!(
        errors,
        [EchoError {
            from: router,
            dst: far,
            ident: 0x77,
            seq_no: 1,
            error: IcmpError::Exceeded(TimeExceeded::TtlExpired),
            received_at: ms(3)
        }]
    );
    assert!(s.take_echo_errors().is_empty());

    // 1472 bytes of data fill 1500; one more is EMSGSIZE with `Do`, and
    // fragmented without DF with `Want`.
    assert_eq!(s.send_echo(ms(4), &req(2, None, 1473, PmtuDiscovery::Do)), Err(Error::MessageTooLong));
    s.send_echo(ms(4), &req(2, None, 1472, PmtuDiscovery::Do)).unwrap();
    let big = drain(&mut s, ms(4)).remove(0);
    assert_eq!((big.len(), parse_ip(&big).0.dont_frag, parse_ip(&big).0.hop_limit), (1500, true, 64));
    let frag_needed = IcmpError::Unreachable(DstUnreachable::FragRequired { next_hop_mtu: 1280 });
    s.handle_ip_packet(ms(5), &icmp_error_about(&big, router, frag_needed));
    let errors = s.take_echo_errors();
    assert_eq!((errors.len(), errors[0].seq_no, errors[0].error), (1, 2, frag_needed));
    s.send_echo(ms(6), &req(3, None, 1473, PmtuDiscovery::Want)).unwrap();
    assert_eq!(
        drain(&mut s, ms(6)).iter().map(|p| (p.len(), parse_ip(p).0.dont_frag)).collect::<Vec<_>>(),
        [(1500, false), (21, false)]
    );

    // An error about a UDP datagram, or about an echo reply, is not one.
    let reply = icmp_packet(US, far, &Icmpv4Repr::EchoReply { ident: 0x77, seq_no: 4, data: b"pong" });
    s.handle_ip_packet(ms(7), &icmp_error_about(&reply, router, IcmpError::Exceeded(TimeExceeded::TtlExpired)));
    let udp = udp_packet(sa(US, 5000), sa(far, 33434), b"probe");
    s.handle_ip_packet(ms(7), &icmp_error_about(&udp, router, IcmpError::Exceeded(TimeExceeded::TtlExpired)));
    assert!(s.take_echo_errors().is_empty());
    // No route: ENETUNREACH.
    let mut lonely = ip_stack(US);
    assert_eq!(lonely.send_echo(ms(0), &req(5, None, 8, PmtuDiscovery::Want)), Err(Error::NetworkUnreachable));
}

/// `send_echo_request` and `take_echo_replies` between two stacks, on an
/// IP link and on a simulated Ethernet (where ARP comes first).
#[test]
fn rfc792_ping_round_trip_between_two_stacks() {
    let mut pair = Pair::new();
    assert!(pair.a.send_echo_request(ms(0), PEER, 77, 3, b"are you there"));
    pair.exchange();
    let replies = pair.a.take_echo_replies();
    assert_eq!(replies.len(), 1);
    let r = &replies[0];
    assert_eq!((r.from, r.ident, r.seq_no, r.ttl), (PEER, 77, 3, 64));
    assert_eq!(r.data, b"are you there");
    assert!(pair.a.take_echo_replies().is_empty());

    let (mut net, a, _) = default_pair(5, LinkConfig::default().delay(Duration::from_millis(3)));
    for seq in 0..3 {
        let now = net.now();
        assert!(net.host_mut(a).stack.send_echo_request(now, host_ip(2), 1, seq, &[seq as u8; 56]));
        net.run_for(Duration::from_millis(100));
    }
    let replies = net.host_mut(a).stack.take_echo_replies();
    let seqs: Vec<u16> = replies.iter().map(|r| r.seq_no).collect();
    assert_eq!(seqs, [0, 1, 2]);
    for r in &replies {
        assert_eq!(r.from, host_ip(2));
        assert_eq!(r.data, [r.seq_no as u8; 56]);
    }
    // The first took an ARP exchange (one round trip) more than the others.
    assert_eq!(replies[0].received_at, ms(12));
    assert_eq!(replies[1].received_at, ms(106));
}

/// RFC 1122 §3.2.2.6: an echo request of any size the host can
/// reassemble is answered, its data intact; both ways go in fragments
/// here.
#[test]
fn rfc1122_3_2_2_6_large_echo_is_reassembled_and_answered_in_fragments() {
    let mut pair = Pair::new();
    let data: Vec<u8> = (0..6000u32).map(|i| (i % 241) as u8).collect();
    assert!(pair.a.send_echo_request(ms(0), PEER, 3, 4, &data));
    pair.exchange();
    let replies = pair.a.take_echo_replies();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].data, data);
    let fragments_each_way: Vec<usize> =
        [true, false].iter().map(|&dir| pair.log.iter().filter(|(d, _)| *d == dir).count()).collect();
    assert_eq!(fragments_each_way, [5, 5]);
}

/// RFC 1122 §4.1.3.1 and §3.2.2.1: a UDP datagram to a closed port is
/// answered with ICMP port unreachable quoting the datagram's IP header
/// and data (RFC 792: at least 64 bits; RFC 1812 §4.3.2.3: up to 576 bytes
/// in all).
#[test]
fn rfc1122_4_1_3_1_udp_to_a_closed_port_gets_port_unreachable_quoting_the_datagram() {
    let mut s = ip_stack(US);
    let original = udp_packet(sa(PEER, 5000), sa(US, 9), &[0x5a; 100]);
    s.handle_ip_packet(ms(0), &original);
    let out = drain(&mut s, ms(0));
    assert_eq!(out.len(), 1);
    let icmp = icmp_of(&out[0]).unwrap();
    assert_eq!((icmp.ip.src_addr, icmp.ip.dst_addr), (US, PEER));
    assert_eq!((icmp.msg_type, icmp.code, icmp.rest), (3, 3, 0));
    assert_eq!(icmp.data, original, "the whole datagram is quoted");
    assert_eq!(s.stats().drops(DropReason::UdpNoSocket), 1);

    // A long datagram is quoted up to 576 bytes of ICMP datagram.
    let original = udp_packet(sa(PEER, 5000), sa(US, 9), &[0x5a; 1400]);
    s.handle_ip_packet(ms(1), &original);
    let out = drain(&mut s, ms(1));
    assert_eq!(out.len(), 1);
    assert!(out[0].len() <= 576, "{} bytes", out[0].len());
    let icmp = icmp_of(&out[0]).unwrap();
    assert!(icmp.data.len() >= 28);
    assert_eq!(icmp.data, original[..icmp.data.len()]);
}

/// BSD semantics on top of RFC 1122 §4.1.3.3: ICMP port unreachable for a
/// connected UDP socket's datagram is reported as ECONNREFUSED by its next
/// call, once; an unconnected socket hears nothing.
#[test]
fn rfc1122_4_1_3_3_port_unreachable_gives_a_connected_socket_econnrefused() {
    let mut pair = Pair::new();
    let c = pair.a.udp_socket().unwrap();
    pair.a.connect(c, sa(PEER, 9)).unwrap();
    pair.a.send(c, b"anyone?").unwrap();
    pair.exchange();
    assert!(pair.a.can_recv(c));
    assert_eq!(pair.a.recv(c, &mut [0; 10]), Err(Error::ConnectionRefused));
    assert_eq!(pair.a.recv(c, &mut [0; 10]), Err(Error::WouldBlock));
    // The error is reported by a send just as well.
    pair.a.send(c, b"still?").unwrap();
    pair.exchange();
    assert_eq!(pair.a.send(c, b"x"), Err(Error::ConnectionRefused));
    assert_eq!(pair.a.send(c, b"x"), Ok(1));

    let u = pair.a.udp_socket().unwrap();
    pair.a.send_to(u, b"anyone?", sa(PEER, 9)).unwrap();
    pair.exchange();
    assert_eq!(pair.a.recv_from(u, &mut [0; 10]), Err(Error::WouldBlock));
}

/// RFC 792 / RFC 1122 §3.2.2: the transport looks at the first 8 data
/// bytes an ICMP error quotes to find the socket; those are the transport
/// header only when the quoted datagram is a first fragment. An error
/// quoting a later fragment is not pinned on whatever socket its bytes
/// happen to name.
#[test]
fn rfc1122_3_2_2_icmp_error_quoting_a_later_fragment_names_no_socket() {
    let mut s = ip_stack(US);
    let c = s.udp_socket().unwrap();
    s.connect(c, sa(PEER, 9)).unwrap();
    let local = s.local_addr(c).unwrap();
    let ours = udp_packet(local, sa(PEER, 9), b"sent");
    for (offset, refused) in [(1480u16, false), (0, true)] {
        let header = Ipv4Repr { frag_offset: offset, more_frags: true, ..parse_ip(&ours).0 };
        let err = Icmpv4Repr::DstUnreachable {
            reason: ustack_core::wire::DstUnreachable::PortUnreachable,
            header,
            data: &ours[20..],
        };
        s.handle_ip_packet(ms(0), &icmp_packet(PEER, US, &err));
        let got = s.recv(c, &mut [0; 8]);
        assert_eq!(got == Err(Error::ConnectionRefused), refused, "offset {offset}: {got:?}");
    }
}

/// RFC 1122 §3.2.2.1: an unknown transport protocol is answered with
/// protocol unreachable.
#[test]
fn rfc1122_3_2_2_1_unknown_protocol_gets_protocol_unreachable() {
    let mut s = ip_stack(US);
    let original = ipv4(&ip_repr(PEER, US, IpProtocol::Unknown(253), 12), &[1; 12]);
    s.handle_ip_packet(ms(0), &original);
    let out = drain(&mut s, ms(0));
    assert_eq!(out.len(), 1);
    let icmp = icmp_of(&out[0]).unwrap();
    assert_eq!((icmp.msg_type, icmp.code), (3, 2));
    assert_eq!(icmp.ip.dst_addr, PEER);
    assert_eq!(icmp.data, original);
    assert_eq!(s.stats().drops(DropReason::IpUnknownProtocol), 1);
}

/// RFC 1122 §3.2.2: no ICMP error about a datagram sent to an IP
/// broadcast address.
#[test]
fn rfc1122_3_2_2_no_icmp_error_about_a_broadcast() {
    let mut s = ip_stack(US);
    for dst in [Ipv4Addr::BROADCAST, Ipv4Addr::new(10, 0, 0, 255)] {
        s.handle_ip_packet(ms(0), &udp_packet(sa(PEER, 5000), sa(dst, 9), b"x"));
        s.handle_ip_packet(ms(0), &ipv4(&ip_repr(PEER, dst, IpProtocol::Unknown(253), 4), &[0; 4]));
    }
    assert!(drain(&mut s, ms(0)).is_empty());
    assert_eq!(s.stats().drops(DropReason::UdpNoSocket), 2);
    assert_eq!(s.stats().drops(DropReason::IpUnknownProtocol), 2);
}

/// RFC 1122 §3.2.2: no ICMP error about a datagram "whose source address
/// does not define a single host -- e.g., a zero address".
#[test]
fn rfc1122_3_2_2_no_icmp_error_to_a_source_that_is_not_a_single_host() {
    let mut s = ip_stack(US);
    s.handle_ip_packet(ms(0), &udp_packet(sa(Ipv4Addr::UNSPECIFIED, 68), sa(US, 9), b"x"));
    s.handle_ip_packet(ms(0), &udp_packet(sa(Ipv4Addr::new(240, 0, 0, 1), 68), sa(US, 9), b"x"));
    s.handle_ip_packet(ms(0), &ipv4(&ip_repr(Ipv4Addr::UNSPECIFIED, US, IpProtocol::Unknown(253), 4), &[0; 4]));
    assert!(drain(&mut s, ms(0)).is_empty());
}

/// RFC 1122 §3.2.2: no ICMP error about a datagram sent as a link-layer
/// broadcast; §3.3.6: such a datagram without an IP broadcast destination
/// SHOULD be discarded.
#[test]
fn rfc1122_3_3_6_unicast_datagram_in_a_link_broadcast_is_discarded_without_icmp() {
    let mut s = eth_stack();
    let h = s.udp_socket().unwrap();
    s.bind(h, sa(Ipv4Addr::UNSPECIFIED, 7)).unwrap();
    // Teach it the peer so that an answer would leave at once.
    s.handle_frame(ms(0), &arp_frame(ArpOperation::Reply, PEER_MAC, PEER, US_MAC, US));
    let closed = udp_packet(sa(PEER, 5000), sa(US, 9), b"x");
    s.handle_frame(ms(0), &eth_frame(PEER_MAC, EthernetAddress::BROADCAST, EtherType::Ipv4, &closed));
    let open = udp_packet(sa(PEER, 5000), sa(US, 7), b"y");
    s.handle_frame(ms(0), &eth_frame(PEER_MAC, EthernetAddress::BROADCAST, EtherType::Ipv4, &open));
    assert!(drain(&mut s, ms(0)).is_empty());
    assert_eq!(s.recv_from(h, &mut [0; 10]), Err(Error::WouldBlock));
    // An IP broadcast in a link broadcast is fine.
    let bcast = udp_packet(sa(PEER, 5000), sa(Ipv4Addr::new(10, 0, 0, 255), 7), b"z");
    s.handle_frame(ms(0), &eth_frame(PEER_MAC, EthernetAddress::BROADCAST, EtherType::Ipv4, &bcast));
    assert_eq!(s.recv_from(h, &mut [0; 10]), Ok((1, sa(PEER, 5000))));
    // And unicast in unicast gets its port unreachable.
    s.handle_frame(ms(0), &ip_in_eth(&closed));
    let out = drain(&mut s, ms(0));
    assert_eq!(out.len(), 1);
    let icmp = icmp_of(&parse_eth(&out[0]).1).expect("an ICMP error");
    assert_eq!((icmp.msg_type, icmp.code), (3, 3));
}

/// RFC 1812 §4.3.2.8 (which RFC 1122 §3.2.2 points hosts to): ICMP errors
/// are rate limited, `icmp_error_rate` a second, and the excess counted.
#[test]
fn rfc1812_4_3_2_8_icmp_errors_are_rate_limited() {
    let mut cfg = ip_config(US);
    cfg.icmp_error_rate = 5;
    let mut s = Stack::new(cfg);
    let mut sent = 0;
    for i in 0..20u64 {
        s.handle_ip_packet(ms(i * 10), &udp_packet(sa(PEER, 5000), sa(US, 9), b"x"));
        sent += icmps(&drain(&mut s, ms(i * 10))).len();
    }
    assert_eq!(sent, 5);
    assert_eq!(s.stats().drops(DropReason::IcmpRateLimited), 15);
    // A second later the budget is back.
    let mut later = 0;
    for i in 0..10u64 {
        s.handle_ip_packet(ms(1_200 + i), &udp_packet(sa(PEER, 5000), sa(US, 9), b"x"));
        later += icmps(&drain(&mut s, ms(1_200 + i))).len();
    }
    assert_eq!(later, 5);
    // Echo replies are not errors and are not limited.
    for i in 0..20u16 {
        let req = Icmpv4Repr::EchoRequest { ident: 1, seq_no: i, data: b"" };
        s.handle_ip_packet(ms(1_300), &icmp_packet(PEER, US, &req));
    }
    assert_eq!(icmps(&drain(&mut s, ms(1_300))).len(), 20);
}

// ---- fragmentation and reassembly (RFC 791 §2.3, §3.2; RFC 815) -------------------------

/// RFC 791 §3.2: a datagram larger than the MTU leaves in fragments of
/// multiples of 8 bytes with MF on all but the last and one identification;
/// the receiver reassembles it (checked on the wire of a simulated LAN).
#[test]
fn rfc791_3_2_large_udp_is_fragmented_on_the_wire_and_reassembled() {
    let (mut net, a, b) = default_pair(3, LinkConfig::default().mtu(1500));
    net.set_capture(true);
    let rx = net.host_mut(b).stack.udp_socket().unwrap();
    net.host_mut(b).stack.bind(rx, sa(host_ip(2), 7)).unwrap();
    let tx = net.host_mut(a).stack.udp_socket().unwrap();
    let data: Vec<u8> = (0..4000u32).map(|i| (i * 7 % 251) as u8).collect();
    net.host_mut(a).stack.send_to(tx, &data, sa(host_ip(2), 7)).unwrap();
    net.run_for(Duration::from_millis(50));
    let mut buf = vec![0u8; 70_000];
    let (n, from) = net.host_mut(b).stack.recv_from(rx, &mut buf).unwrap();
    assert_eq!(&buf[..n], &data[..]);
    assert_eq!(*from.ip(), host_ip(1));

    let frags: Vec<(Ipv4Repr, usize)> = net
        .take_capture()
        .iter()
        .filter_map(|e| ip_of(&e.frame).map(|(_, ip, _)| (ip, e.frame.len())))
        .filter(|(ip, _)| ip.protocol == IpProtocol::Udp)
        .collect();
    let layout: Vec<(u16, bool, usize)> =
        frags.iter().map(|(ip, _)| (ip.frag_offset, ip.more_frags, ip.total_len())).collect();
    // 4008 bytes of UDP: 1480 + 1480 + 1048.
    assert_eq!(layout, [(0, true, 1500), (1480, true, 1500), (2960, false, 1068)]);
    assert!(frags.iter().all(|(ip, len)| ip.ident == frags[0].0.ident && !ip.dont_frag && *len <= 1514));
    assert_eq!(net.host(a).stack.stats().ip_fragments_out, 3);
    assert_eq!(net.host(b).stack.stats().ip_reassembled, 1);
}

/// Datagrams up to the largest UDP payload (65507 bytes) cross a LAN in
/// fragments and arrive intact; one byte more is EMSGSIZE.
#[test]
fn rfc768_largest_udp_datagrams_are_delivered_intact() {
    let (mut net, a, b) = default_pair(4, LinkConfig::default());
    let rx = net.host_mut(b).stack.udp_socket().unwrap();
    net.host_mut(b).stack.bind(rx, sa(host_ip(2), 7)).unwrap();
    let tx = net.host_mut(a).stack.udp_socket().unwrap();
    let mut buf = vec![0u8; 70_000];
    for len in [65_000usize, 65_507, 1, 0, 1473] {
        let data: Vec<u8> = (0..len as u32).map(|i| (i % 253) as u8 ^ (len as u8)).collect();
        assert_eq!(net.host_mut(a).stack.send_to(tx, &data, sa(host_ip(2), 7)), Ok(len));
        net.run_for(Duration::from_millis(50));
        let (n, _) = net
            .host_mut(b)
            .stack
            .recv_from(rx, &mut buf)
            .unwrap_or_else(|e| panic!("{len}: {e} {:?}", net.host(a).stack.stats()));
        assert_eq!(n, len);
        assert!(buf[..n] == data[..], "{len} bytes corrupted");
    }
    assert_eq!(net.host_mut(a).stack.send_to(tx, &[0; 65_508], sa(host_ip(2), 7)), Err(Error::MessageTooLong));
}

/// RFC 815 / RFC 791 §3.2: fragments may arrive in any order and more than
/// once; the datagram is delivered once, intact.
#[test]
fn rfc815_fragments_out_of_order_and_duplicated_are_reassembled_once() {
    let (mut s, h) = udp_rx_stack();
    let data: Vec<u8> = (0..5000u32).map(|i| (i % 256) as u8).collect();
    let udp = udp_bytes(sa(PEER, 1000), sa(US, 7), &data);
    let header = Ipv4Repr { ident: 0x4242, ..ip_repr(PEER, US, IpProtocol::Udp, udp.len()) };
    let frags = fragments(&header, &udp, 1500);
    assert_eq!(frags.len(), 4);
    for i in [3, 1, 1, 0, 3, 2] {
        s.handle_ip_packet(ms(0), &frags[i]);
    }
    // A late duplicate after completion starts nothing that completes.
    s.handle_ip_packet(ms(0), &frags[2]);
    assert_eq!(recv_all(&mut s, h), [data]);
    assert_eq!(s.stats().ip_reassembled, 1);
    assert_eq!(s.stats().drops(DropReason::IpFragment), 0);
    assert!(drain(&mut s, ms(0)).is_empty());
}

/// A datagram that needed reassembly is a datagram like any other: to a
/// closed port it gets port unreachable (RFC 1122 §4.1.3.1), quoting its
/// first fragment's header (offset 0), whatever order the pieces came in.
#[test]
fn rfc1122_4_1_3_1_reassembled_datagram_to_a_closed_port_gets_port_unreachable() {
    for order in [[0, 1, 2], [2, 1, 0], [1, 0, 2]] {
        let mut s = ip_stack(US);
        let udp = udp_bytes(sa(PEER, 1000), sa(US, 9), &[3; 3500]);
        let header = Ipv4Repr { ident: 9, ..ip_repr(PEER, US, IpProtocol::Udp, udp.len()) };
        let frags = fragments(&header, &udp, 1500);
        for i in order {
            s.handle_ip_packet(ms(0), &frags[i]);
        }
        let out = icmps(&drain(&mut s, ms(0)));
        assert_eq!(out.len(), 1, "order {order:?}");
        assert_eq!((out[0].msg_type, out[0].code), (3, 3));
        let quoted = Ipv4Packet::new_unchecked(&out[0].data[..]);
        assert_eq!((quoted.src_addr(), quoted.dst_addr(), quoted.ident()), (PEER, US, 9));
        assert_eq!(quoted.frag_offset(), 0);
        assert_eq!(&out[0].data[20..28], &udp[..8], "the UDP header is quoted");
    }
}

/// RFC 792 (Time Exceeded, code 1) and RFC 1122 §3.3.2: a datagram not
/// completed within the reassembly timeout is dropped, and reported to its
/// sender only if the first fragment arrived (it has the header to quote).
#[test]
fn rfc792_reassembly_timeout_sends_time_exceeded_only_with_the_first_fragment() {
    let (mut s, h) = udp_rx_stack();
    let udp = udp_bytes(sa(PEER, 1000), sa(US, 7), &[9; 4000]);
    let with_first = Ipv4Repr { ident: 1, ..ip_repr(PEER, US, IpProtocol::Udp, udp.len()) };
    let without_first = Ipv4Repr { ident: 2, ..with_first };
    let a = fragments(&with_first, &udp, 1500);
    let b = fragments(&without_first, &udp, 1500);
    s.handle_ip_packet(ms(0), &a[0]);
    s.handle_ip_packet(ms(0), &a[2]);
    s.handle_ip_packet(ms(0), &b[1]);
    s.handle_ip_packet(ms(0), &b[2]);
    let timeout = s.config().reassembly.timeout;
    assert_eq!(s.poll_timeout(), Some(Instant::ZERO + timeout));
    let sent = run_timers(&mut s, ms(1), Instant::ZERO + timeout - Duration::from_millis(1));
    assert!(sent.is_empty());
    let sent = run_timers(&mut s, Instant::ZERO + timeout, Instant::ZERO + timeout * 2);
    let out: Vec<Icmp> = sent.iter().filter_map(|(_, p)| icmp_of(p)).collect();
    assert_eq!(out.len(), 1, "one Time Exceeded, for the datagram whose first fragment came");
    let te = &out[0];
    assert_eq!((te.msg_type, te.code), (11, 1));
    assert_eq!((te.ip.src_addr, te.ip.dst_addr), (US, PEER));
    let quoted = Ipv4Packet::new_unchecked(&te.data[..]);
    assert_eq!(
        (quoted.src_addr(), quoted.dst_addr(), quoted.ident(), quoted.protocol()),
        (PEER, US, 1, IpProtocol::Udp)
    );
    assert_eq!(quoted.frag_offset(), 0);
    assert_eq!(&te.data[20..28], &udp[..8]);
    // The missing piece arriving now completes nothing.
    s.handle_ip_packet(Instant::ZERO + timeout * 2, &a[1]);
    assert!(recv_all(&mut s, h).is_empty());
}

/// RFC 1122 §3.2.2: "An ICMP error message MUST NOT be sent as the result
/// of receiving ... an ICMP error message ... a datagram destined to an IP
/// broadcast": not for a reassembly timeout either.
#[test]
fn rfc1122_3_2_2_no_time_exceeded_about_an_icmp_error_or_a_broadcast() {
    let mut s = ip_stack(US);
    // A fragmented ICMP port unreachable (with a long quote) of which only
    // the first fragment arrives.
    let inner = udp_packet(sa(US, 1000), sa(PEER, 9), &[0; 2000]);
    let err = Icmpv4Repr::DstUnreachable {
        reason: ustack_core::wire::DstUnreachable::PortUnreachable,
        header: parse_ip(&inner).0,
        data: &inner[20..],
    };
    let icmp = icmp_bytes(&err);
    let frags = fragments(&Ipv4Repr { ident: 5, ..ip_repr(PEER, US, IpProtocol::Icmp, icmp.len()) }, &icmp, 1500);
    s.handle_ip_packet(ms(0), &frags[0]);
    // An echo request's first fragment: a query, so Time Exceeded is due.
    let echo = icmp_bytes(&Icmpv4Repr::EchoRequest { ident: 1, seq_no: 1, data: &[0; 2000] });
    let frags = fragments(&Ipv4Repr { ident: 6, ..ip_repr(PEER, US, IpProtocol::Icmp, echo.len()) }, &echo, 1500);
    s.handle_ip_packet(ms(0), &frags[0]);
    // A UDP broadcast's first fragment.
    let bcast = Ipv4Addr::new(10, 0, 0, 255);
    let udp = udp_bytes(sa(PEER, 1000), sa(bcast, 7), &[0; 2000]);
    let frags = fragments(&Ipv4Repr { ident: 7, ..ip_repr(PEER, bcast, IpProtocol::Udp, udp.len()) }, &udp, 1500);
    s.handle_ip_packet(ms(0), &frags[0]);
    let out: Vec<Icmp> = run_timers(&mut s, ms(0), ms(100_000)).iter().filter_map(|(_, p)| icmp_of(p)).collect();
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!((out[0].msg_type, out[0].code), (11, 1));
    assert_eq!(Ipv4Packet::new_unchecked(&out[0].data[..]).ident(), 6);
    assert_eq!(out[0].ip.src_addr, US);
}

/// Overlapping fragments (teardrop; RFC 5722's rule, which Linux applies to
/// IPv4 as well) drop the datagram, counted.
#[test]
fn rfc791_3_2_overlapping_fragments_drop_the_datagram() {
    let (mut s, h) = udp_rx_stack();
    let udp = udp_bytes(sa(PEER, 1000), sa(US, 7), &[1; 3000]);
    let header = Ipv4Repr { ident: 3, ..ip_repr(PEER, US, IpProtocol::Udp, udp.len()) };
    let frags = fragments(&header, &udp, 1500);
    s.handle_ip_packet(ms(0), &frags[0]);
    // [8, 1488): overlaps the first without duplicating it.
    let overlap = Ipv4Repr { payload_len: 1480, more_frags: true, frag_offset: 8, ..header };
    s.handle_ip_packet(ms(0), &ipv4(&overlap, &udp[8..1488]));
    for f in &frags[1..] {
        s.handle_ip_packet(ms(0), f);
    }
    assert!(recv_all(&mut s, h).is_empty());
    assert!(s.stats().drops(DropReason::IpFragment) >= 1);
    assert!(drain(&mut s, ms(0)).is_empty());
    // The ping of death: a fragment ending past 65535 bytes.
    let pod = Ipv4Repr { payload_len: 16, more_frags: false, frag_offset: 65528, ident: 4, ..header };
    let before = s.stats().drops(DropReason::IpFragment);
    s.handle_ip_packet(ms(0), &ipv4(&pod, &[0; 16]));
    assert_eq!(s.stats().drops(DropReason::IpFragment), before + 1);
    // Whole datagrams still get through.
    s.handle_ip_packet(ms(1), &hello());
    assert_eq!(recv_all(&mut s, h), [b"hello".to_vec()]);
}

/// RFC 1122 §3.3.2 lets a host bound reassembly resources: past the bound
/// the oldest incomplete datagram is abandoned, and new ones still
/// complete.
#[test]
fn rfc1122_3_3_2_reassembly_memory_is_bounded() {
    let mut cfg = ip_config(US);
    cfg.reassembly.max_datagrams = 4;
    cfg.reassembly.max_bytes = 16_000;
    let mut s = Stack::new(cfg);
    let h = s.udp_socket().unwrap();
    s.bind(h, sa(US, 7)).unwrap();
    let mut all = Vec::new();
    for ident in 0..10u16 {
        let udp = udp_bytes(sa(PEER, 1000), sa(US, 7), &[ident as u8; 4000]);
        let header = Ipv4Repr { ident, ..ip_repr(PEER, US, IpProtocol::Udp, udp.len()) };
        let frags = fragments(&header, &udp, 1500);
        s.handle_ip_packet(ms(ident as u64), &frags[0]);
        s.handle_ip_packet(ms(ident as u64), &frags[1]);
        all.push(frags);
    }
    // The oldest were evicted: their last fragment completes nothing.
    s.handle_ip_packet(ms(20), &all[0][2]);
    assert!(recv_all(&mut s, h).is_empty());
    // The newest are still there.
    s.handle_ip_packet(ms(20), &all[9][2]);
    assert_eq!(recv_all(&mut s, h), [vec![9u8; 4000]]);
    // Far more than the budget in one datagram is refused.
    let big = udp_bytes(sa(PEER, 1000), sa(US, 7), &[1; 30_000]);
    let header = Ipv4Repr { ident: 99, ..ip_repr(PEER, US, IpProtocol::Udp, big.len()) };
    for f in fragments(&header, &big, 1500) {
        s.handle_ip_packet(ms(30), &f);
    }
    assert!(recv_all(&mut s, h).is_empty());
    assert!(s.stats().drops(DropReason::IpFragment) >= 1);
}

/// Two Ethernet hosts on a switchless LAN, an address each: ping and UDP
/// both ways work, with no help from the test beyond the socket calls.
#[test]
fn rfc826_two_hosts_resolve_each_other_and_talk() {
    let mut net = Network::new(9);
    let a = net.add(Host::new(Stack::new(eth_config(host_mac(1), host_ip(1)))));
    let b = net.add(Host::new(Stack::new(eth_config(host_mac(2), host_ip(2)))));
    net.connect((a, 0), (b, 0), LinkConfig::default());
    let ub = net.host_mut(b).stack.udp_socket().unwrap();
    net.host_mut(b).stack.bind(ub, sa(Ipv4Addr::UNSPECIFIED, 53)).unwrap();
    let ua = net.host_mut(a).stack.udp_socket().unwrap();
    net.host_mut(a).stack.send_to(ua, b"query", sa(host_ip(2), 53)).unwrap();
    net.run_for(Duration::from_millis(20));
    let mut buf = [0u8; 100];
    let (n, from) = net.host_mut(b).stack.recv_from(ub, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"query");
    net.host_mut(b).stack.send_to(ub, b"answer", from).unwrap();
    net.run_for(Duration::from_millis(20));
    let (n, from) = net.host_mut(a).stack.recv_from(ua, &mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"answer"[..], sa(host_ip(2), 53)));
    // One ARP request and one reply in all: b learned a from its request.
    assert_eq!(net.host(a).stack.stats().arp_out + net.host(b).stack.stats().arp_out, 2);
}

// ---- robustness: random and mutated input ----------------------------------------------

mod fuzz {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::RngSeed;
    use ustack_core::wire::{
        ArpPacket, DstUnreachable, EthernetFrame, Icmpv4Packet, TcpPacket, TimeExceeded, UdpPacket,
    };
    use ustack_core::{Medium, StackConfig};

    /// One change to a valid packet. Indices are taken modulo the length.
    #[derive(Clone, Debug)]
    enum Mutation {
        FlipBit(usize),
        /// A byte in the first 64: the headers.
        SetHeaderByte(usize, u8),
        SetByte(usize, u8),
        Truncate(usize),
        Extend(Vec<u8>),
        Insert(usize, u8),
        Remove(usize),
    }

    #[derive(Clone, Debug)]
    enum Input {
        /// Seed packet `index`, mutated, then (if `refix`) with its IP and
        /// transport checksums made valid again so that the change reaches
        /// the upper layers.
        Seed {
            index: usize,
            mutations: Vec<Mutation>,
            refix: bool,
            link_broadcast: bool,
        },
        Random(Vec<u8>),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            any::<usize>().prop_map(Mutation::FlipBit),
            (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::SetHeaderByte(i, b)),
            (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::SetByte(i, b)),
            any::<usize>().prop_map(Mutation::Truncate),
            prop::collection::vec(any::<u8>(), 1..64).prop_map(Mutation::Extend),
            (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
            any::<usize>().prop_map(Mutation::Remove),
        ]
    }

    fn input() -> impl Strategy<Value = Input> {
        prop_oneof![
            6 => (any::<usize>(), prop::collection::vec(mutation(), 0..4), any::<bool>(), prop::bool::weighted(0.1))
                .prop_map(|(index, mutations, refix, link_broadcast)| Input::Seed { index, mutations, refix, link_broadcast }),
            1 => prop::collection::vec(any::<u8>(), 0..120).prop_map(Input::Random),
        ]
    }

    fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
        let len = bytes.len();
        match *m {
            Mutation::FlipBit(i) if len > 0 => bytes[(i / 8) % len] ^= 1 << (i % 8),
            Mutation::SetHeaderByte(i, b) if len > 0 => bytes[i % len.min(64)] = b,
            Mutation::SetByte(i, b) if len > 0 => bytes[i % len] = b,
            Mutation::Truncate(i) => bytes.truncate(i % (len + 1)),
            Mutation::Extend(ref more) => bytes.extend_from_slice(more),
            Mutation::Insert(i, b) => bytes.insert(i % (len + 1), b),
            Mutation::Remove(i) if len > 0 => {
                bytes.remove(i % len);
            }
            _ => {}
        }
    }

    /// Makes the IP header checksum, and the transport checksum of an
    /// unfragmented datagram, valid again where the layout allows.
    fn refix(packet: &mut [u8]) {
        let Ok(mut ip) = Ipv4Packet::new_checked(&mut packet[..]) else {
            return;
        };
        ip.fill_checksum();
        if ip.is_fragment() {
            return;
        }
        let (src, dst, protocol) = (ip.src_addr(), ip.dst_addr(), ip.protocol());
        let payload = ip.payload_mut();
        match protocol {
            IpProtocol::Udp => {
                if let Ok(mut udp) = UdpPacket::new_checked(payload) {
                    udp.fill_checksum(src, dst);
                }
            }
            IpProtocol::Tcp => {
                if let Ok(mut tcp) = TcpPacket::new_checked(payload) {
                    tcp.fill_checksum(src, dst);
                }
            }
            IpProtocol::Icmp => {
                if let Ok(mut icmp) = Icmpv4Packet::new_checked(payload) {
                    icmp.fill_checksum();
                }
            }
            IpProtocol::Unknown(_) => {}
        }
    }

    /// Valid IP packets of every kind the stack handles.
    fn ip_seeds() -> Vec<Vec<u8>> {
        let third = Ipv4Addr::new(10, 0, 0, 3);
        let mut seeds = vec![
            udp_packet(sa(PEER, 1000), sa(US, 7), b"hello"),
            udp_packet(sa(PEER, 1000), sa(US, 9), b"closed"),
            tcp_syn(sa(third, 4000), sa(US, 80), 1),
            tcp_syn(sa(third, 4000), sa(US, 81), 1),
            icmp_packet(PEER, US, &Icmpv4Repr::EchoRequest { ident: 1, seq_no: 2, data: b"ping" }),
            udp_packet(sa(PEER, 1000), sa(Ipv4Addr::new(10, 0, 0, 255), 7), b"broadcast"),
            ipv4(&ip_repr(PEER, US, IpProtocol::Unknown(253), 8), &[0; 8]),
        ];
        let ours = udp_packet(sa(US, 7), sa(PEER, 9), b"sent earlier");
        let header = parse_ip(&ours).0;
        let reason = DstUnreachable::PortUnreachable;
        seeds.push(icmp_packet(PEER, US, &Icmpv4Repr::DstUnreachable { reason, header, data: &ours[20..] }));
        let reason = TimeExceeded::TtlExpired;
        seeds.push(icmp_packet(PEER, US, &Icmpv4Repr::TimeExceeded { reason, header, data: &ours[20..] }));
        let mut rst = tcp_syn(sa(third, 4000), sa(US, 80), 1);
        rst[33] = 0x14; // RST+ACK
        refix(&mut rst);
        seeds.push(rst);
        let udp = udp_bytes(sa(PEER, 1000), sa(US, 7), &[0xab; 3000]);
        let header = Ipv4Repr { ident: 77, ..ip_repr(PEER, US, IpProtocol::Udp, udp.len()) };
        seeds.extend(fragments(&header, &udp, 1500));
        let mut with_options = vec![0u8; 24];
        with_options.extend_from_slice(&udp_bytes(sa(PEER, 1000), sa(US, 7), b"opt"));
        ip_repr(PEER, US, IpProtocol::Udp, 11).emit(&mut Ipv4Packet::new_unchecked(&mut with_options[..]), false);
        with_options[0] = 0x46;
        with_options[2..4].copy_from_slice(&35u16.to_be_bytes());
        with_options[20..24].copy_from_slice(&[1, 1, 1, 0]);
        refix(&mut with_options);
        seeds.push(with_options);
        seeds
    }

    fn arp_seeds() -> Vec<Vec<u8>> {
        let zero = EthernetAddress([0; 6]);
        vec![
            arp_frame(ArpOperation::Request, PEER_MAC, PEER, zero, US),
            arp_frame(ArpOperation::Reply, PEER_MAC, PEER, US_MAC, US),
            arp_frame(ArpOperation::Request, OTHER_MAC, PEER, zero, PEER),
            arp_frame(ArpOperation::Request, PEER_MAC, PEER, zero, Ipv4Addr::new(10, 0, 0, 3)),
        ]
    }

    /// The bytes to feed for `input` on `medium`.
    fn build(input: &Input, medium: Medium, ip: &[Vec<u8>], arp: &[Vec<u8>]) -> Vec<u8> {
        let Input::Seed { index, mutations, refix: fix, link_broadcast } = input else {
            let Input::Random(bytes) = input else { unreachable!() };
            return bytes.clone();
        };
        let n = ip.len() + if medium == Medium::Ethernet { arp.len() } else { 0 };
        let i = index % n;
        let mut bytes = if i < ip.len() { ip[i].clone() } else { arp[i - ip.len()].clone() };
        for m in mutations {
            apply(&mut bytes, m);
        }
        if *fix {
            refix(&mut bytes);
        }
        if medium == Medium::Ethernet && i < ip.len() {
            let dst = if *link_broadcast { EthernetAddress::BROADCAST } else { US_MAC };
            bytes = eth_frame(PEER_MAC, dst, EtherType::Ipv4, &bytes);
        }
        bytes
    }

    /// Every frame a stack sends must be well formed: a parseable ARP
    /// packet, or an IPv4 packet with a good header checksum and, unless
    /// fragmented, a good transport checksum.
    fn assert_well_formed(frame: &[u8], medium: Medium) {
        let packet = match medium {
            Medium::Ip => frame,
            Medium::Ethernet => {
                let eth = EthernetFrame::new_checked(frame).expect("an Ethernet frame");
                assert_eq!(eth.src_addr(), US_MAC);
                if eth.ethertype() == EtherType::Arp {
                    let arp = ArpPacket::new_checked(eth.payload()).expect("an ARP packet");
                    ustack_core::wire::ArpRepr::parse(&arp).expect("a valid ARP packet");
                    return;
                }
                assert_eq!(eth.ethertype(), EtherType::Ipv4);
                &frame[14..]
            }
        };
        let ip = Ipv4Packet::new_checked(packet).expect("a whole IPv4 packet");
        assert!(ip.verify_checksum());
        assert_eq!(ip.total_len() as usize, packet.len());
        assert_eq!(ip.src_addr(), US, "sent from an address not ours");
        assert!(ip.hop_limit() > 0);
        if ip.is_fragment() {
            return;
        }
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        match ip.protocol() {
            IpProtocol::Udp => assert!(UdpPacket::new_checked(ip.payload()).unwrap().verify_checksum(src, dst)),
            IpProtocol::Tcp => assert!(TcpPacket::new_checked(ip.payload()).unwrap().verify_checksum(src, dst)),
            IpProtocol::Icmp => assert!(Icmpv4Packet::new_checked(ip.payload()).unwrap().verify_checksum()),
            IpProtocol::Unknown(p) => panic!("sent protocol {p}"),
        }
    }

    fn config(medium: Medium, addr: Ipv4Addr, mac: EthernetAddress) -> StackConfig {
        match medium {
            Medium::Ip => ip_config(addr),
            Medium::Ethernet => eth_config(mac, addr),
        }
    }

    /// Feeds `inputs` to a stack with a listener on port 80 and a UDP
    /// socket on port 7, runs its timers for a minute, then checks that a
    /// peer can still exchange a datagram, a ping and a TCP connection
    /// with it.
    fn survives(medium: Medium, inputs: &[Input]) {
        let (ip, arp) = (ip_seeds(), arp_seeds());
        let mut s = Stack::new(config(medium, US, US_MAC));
        let udp = s.udp_socket().unwrap();
        s.bind(udp, sa(ANY, 7)).unwrap();
        let listener = s.tcp_socket().unwrap();
        s.bind(listener, sa(ANY, 80)).unwrap();
        s.listen(listener, 8).unwrap();
        let mut now = Instant::ZERO;
        for input in inputs {
            s.handle_input(now, &build(input, medium, &ip, &arp));
            for f in drain(&mut s, now) {
                assert_well_formed(&f, medium);
            }
            now += Duration::from_millis(37);
        }
        let settled = ms(60_000);
        for (_, f) in run_timers(&mut s, now, settled) {
            assert_well_formed(&f, medium);
        }
        while s.recv_from(udp, &mut [0; 70_000]).is_ok() {}
        while let Ok((c, _)) = s.accept(listener) {
            s.close(c).unwrap();
        }

        let mut peer = Stack::new(config(medium, PEER, PEER_MAC));
        peer.handle_timeout(settled);
        let mut pair = Pair { a: peer, b: s, now: settled, log: Vec::new() };
        let pu = pair.a.udp_socket().unwrap();
        pair.a.send_to(pu, b"still there?", sa(US, 7)).unwrap();
        assert!(pair.a.send_echo_request(settled, US, 5, 6, b"ping"));
        let pt = pair.a.tcp_socket().unwrap();
        pair.a.connect(pt, sa(US, 80)).unwrap();
        pair.run_for(Duration::from_secs(5));
        for (from_a, f) in &pair.log {
            if !from_a {
                assert_well_formed(f, medium);
            }
        }
        let mut buf = [0u8; 64];
        let (n, from) = pair.b.recv_from(udp, &mut buf).expect("the datagram arrived");
        assert_eq!((&buf[..n], *from.ip()), (&b"still there?"[..], PEER));
        assert_eq!(pair.a.take_echo_replies().len(), 1, "no echo reply");
        assert_eq!(pair.a.tcp_state(pt).unwrap(), State::Established);
        assert!(pair.b.accept(listener).is_ok(), "nothing to accept");
    }

    const ANY: Ipv4Addr = Ipv4Addr::UNSPECIFIED;

    fn cfg(cases: u32, seed: u64) -> ProptestConfig {
        ProptestConfig { cases, rng_seed: RngSeed::Fixed(seed), ..ProptestConfig::default() }
    }

    proptest! {
        #![proptest_config(cfg(1000, 0x1b_0a7e))]

        /// RFC 1122 §1.2.2 ("be liberal in what you accept") and the design
        /// rule that no input can panic: random and mutated packets on an
        /// IP interface are counted and dropped or handled, every reply is
        /// well formed, and the stack works as before afterwards.
        #[test]
        fn rfc1122_1_2_2_ip_medium_survives_random_and_mutated_packets(
            inputs in prop::collection::vec(input(), 1..24)
        ) {
            survives(Medium::Ip, &inputs);
        }

        /// The same on Ethernet, with ARP packets among the seeds.
        #[test]
        fn rfc1122_1_2_2_ethernet_survives_random_and_mutated_frames(
            inputs in prop::collection::vec(input(), 1..24)
        ) {
            survives(Medium::Ethernet, &inputs);
        }
    }
}
