//! A stack that takes packets to any address (`StackConfig::any_ip`) with a
//! catch-all listener (`Stack::listen_any`): what a VPN client's or a
//! transparent proxy's TUN device needs (tun2socks). The client host routes
//! everything through the proxy host; the proxy accepts each connection,
//! whatever address and port it was for, as that address and port, and
//! answers from it.

use std::net::{Ipv4Addr, SocketAddrV4};
use ustack_core::sim::scenario::{host_config, host_ip, two_hosts};
use ustack_core::sim::{LinkConfig, Network, NodeId};
use ustack_core::socket::SocketHandle;
use ustack_core::stats::DropReason;
use ustack_core::tcp::State;
use ustack_core::time::Duration;
use ustack_core::{Error, Stack};

const FAR: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);
const OTHER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

/// Host 1, the client, routes everything beyond its LAN through host 2,
/// the proxy, which takes any address when `any_ip`.
fn network(any_ip: bool) -> (Network, NodeId, NodeId) {
    let mut client = host_config(1, 7);
    client.gateway = Some(host_ip(2));
    let mut proxy = host_config(2, 7);
    proxy.any_ip = any_ip;
    two_hosts(7, LinkConfig::default().delay(Duration::from_millis(2)), client, proxy)
}

fn run(net: &mut Network) {
    net.run_for(Duration::from_millis(100));
}

fn read_all(s: &mut Stack, h: SocketHandle) -> Vec<u8> {
    let mut buf = [0u8; 256];
    match s.recv(h, &mut buf) {
        Ok(n) => buf[..n].to_vec(),
        Err(Error::WouldBlock) => Vec::new(),
        Err(e) => panic!("recv: {e}"),
    }
}

/// Connections to two far addresses both land on the catch-all listener,
/// each with the address and port the client connected to as its local
/// address; data flows both ways and the client sees the far address
/// answer. A listener on a port (on the wildcard address) keeps that port.
#[test]
fn a_catch_all_listener_takes_connections_to_any_address_as_that_address() {
    let (mut net, c, p) = network(true);
    let proxy = &mut net.host_mut(p).stack;
    let any = proxy.tcp_socket().unwrap();
    proxy.listen_any(any, 16).unwrap();
    let echo = proxy.tcp_socket().unwrap();
    proxy.bind(echo, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7)).unwrap();
    proxy.listen(echo, 4).unwrap();

    let mut clients = Vec::new();
    for dst in [SocketAddrV4::new(FAR, 443), SocketAddrV4::new(OTHER, 8080), SocketAddrV4::new(FAR, 7)] {
        let s = net.host_mut(c).stack.tcp_socket().unwrap();
        net.host_mut(c).stack.connect(s, dst).unwrap();
        clients.push((s, dst));
    }
    run(&mut net);
    let proxy = &mut net.host_mut(p).stack;
    let mut accepted = Vec::new();
    while let Ok((h, from)) = proxy.accept(any) {
        assert_eq!(*from.ip(), host_ip(1));
        accepted.push((h, proxy.local_addr(h).unwrap()));
    }
    let dsts: Vec<SocketAddrV4> = accepted.iter().map(|a| a.1).collect();
    assert_eq!(dsts, [SocketAddrV4::new(FAR, 443), SocketAddrV4::new(OTHER, 8080)]);
    let (e, _) = proxy.accept(echo).expect("port 7 has its own listener");
    assert_eq!(proxy.local_addr(e).unwrap(), SocketAddrV4::new(FAR, 7));

    for ((h, dst), (s, _)) in accepted.iter().zip(&clients) {
        net.host_mut(c).stack.send(*s, b"GET / HTTP/1.1\r\n\r\n").unwrap();
        run(&mut net);
        assert_eq!(read_all(&mut net.host_mut(p).stack, *h), b"GET / HTTP/1.1\r\n\r\n");
        net.host_mut(p).stack.send(*h, format!("you asked for {dst}").as_bytes()).unwrap();
        run(&mut net);
        let got = read_all(&mut net.host_mut(c).stack, *s);
        assert_eq!(String::from_utf8(got).unwrap(), format!("you asked for {dst}"));
        assert_eq!(net.host(c).stack.tcp_state(*s), Ok(State::Established));
        assert_eq!(net.host(c).stack.peer_addr(*s), Ok(*dst));
    }

    // Only one catch-all; a bound socket cannot become one.
    let proxy = &mut net.host_mut(p).stack;
    let second = proxy.tcp_socket().unwrap();
    assert_eq!(proxy.listen_any(second, 4), Err(Error::AddrInUse));
    let bound = proxy.tcp_socket().unwrap();
    proxy.bind(bound, SocketAddrV4::new(FAR, 25)).unwrap();
    assert_eq!(proxy.listen_any(bound, 4), Err(Error::InvalidInput));
    // Closed, the catch-all takes nothing more: the far address refuses.
    proxy.close(any).unwrap();
    let late = net.host_mut(c).stack.tcp_socket().unwrap();
    net.host_mut(c).stack.connect(late, SocketAddrV4::new(FAR, 22)).unwrap();
    run(&mut net);
    let mut buf = [0u8; 4];
    assert_eq!(net.host_mut(c).stack.recv(late, &mut buf), Err(Error::ConnectionRefused));
}

/// Without `any_ip` a host takes only its own addresses (RFC 1122
/// §3.3.4.2): a SYN for a far address is dropped as not ours and the
/// connect gets no answer, even with a catch-all listener, which then
/// takes any port on the host's own address; and a socket cannot bind
/// to an address that is not the host's.
#[test]
fn without_any_ip_a_host_takes_only_its_own_addresses() {
    let (mut net, c, p) = network(false);
    let proxy = &mut net.host_mut(p).stack;
    let any = proxy.tcp_socket().unwrap();
    proxy.listen_any(any, 16).unwrap();
    let b = proxy.tcp_socket().unwrap();
    assert_eq!(proxy.bind(b, SocketAddrV4::new(FAR, 80)), Err(Error::AddrNotAvailable));

    let s = net.host_mut(c).stack.tcp_socket().unwrap();
    net.host_mut(c).stack.connect(s, SocketAddrV4::new(FAR, 443)).unwrap();
    run(&mut net);
    assert_eq!(net.host(c).stack.tcp_state(s), Ok(State::SynSent));
    assert!(net.host(p).stack.stats().drops(DropReason::IpNotForUs) >= 1);
    assert!(net.host_mut(p).stack.accept(any).is_err());

    let own = net.host_mut(c).stack.tcp_socket().unwrap();
    net.host_mut(c).stack.connect(own, SocketAddrV4::new(host_ip(2), 31337)).unwrap();
    run(&mut net);
    let (h, _) = net.host_mut(p).stack.accept(any).expect("any port of its own address");
    assert_eq!(net.host(p).stack.local_addr(h), Ok(SocketAddrV4::new(host_ip(2), 31337)));
}

/// With `any_ip`, broadcast, multicast and loopback destinations are still
/// not taken as the host's, and echo requests to a far address are
/// answered from it.
#[test]
fn any_ip_answers_pings_for_far_addresses_but_not_for_special_ones() {
    let (mut net, c, _) = network(true);
    for (dst, seq) in [(FAR, 1), (OTHER, 2)] {
        let now = net.now();
        assert!(net.host_mut(c).stack.send_echo_request(now, dst, 9, seq, b"hello"));
    }
    run(&mut net);
    let replies = net.host_mut(c).stack.take_echo_replies();
    let from: Vec<(Ipv4Addr, u16)> = replies.iter().map(|r| (r.from, r.seq_no)).collect();
    assert_eq!(from, [(FAR, 1), (OTHER, 2)]);

    let (mut net, _, p) = network(true);
    let proxy = &mut net.host_mut(p).stack;
    for special in [Ipv4Addr::new(224, 0, 0, 1), Ipv4Addr::new(127, 0, 0, 1), Ipv4Addr::BROADCAST] {
        let b = proxy.udp_socket().unwrap();
        assert_eq!(proxy.bind(b, SocketAddrV4::new(special, 53)), Err(Error::AddrNotAvailable), "{special}");
    }
    let u = proxy.udp_socket().unwrap();
    assert_eq!(proxy.bind(u, SocketAddrV4::new(FAR, 53)), Ok(()));
}

/// The UDP half (a VPN client's DNS): the catch-all UDP socket receives
/// datagrams to any address and port no other socket has, each with the
/// address it was sent to, and answers from that address with
/// `send_from`; the client's socket, connected to the far address, takes
/// the answer as from its peer. A socket bound to a port keeps it.
#[test]
fn a_catch_all_udp_socket_answers_as_the_address_each_datagram_was_for() {
    let (mut net, c, p) = network(true);
    let proxy = &mut net.host_mut(p).stack;
    let any = proxy.udp_socket().unwrap();
    proxy.udp_bind_any(any).unwrap();
    let second = proxy.udp_socket().unwrap();
    assert_eq!(proxy.udp_bind_any(second), Err(Error::AddrInUse));
    let ntp = proxy.udp_socket().unwrap();
    proxy.bind(ntp, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 123)).unwrap();
    // Not from an address of its own, not connected, not with send_to.
    assert_eq!(proxy.send_to(any, b"x", SocketAddrV4::new(host_ip(1), 9)), Err(Error::InvalidInput));
    assert_eq!(proxy.connect(any, SocketAddrV4::new(host_ip(1), 9)), Err(Error::InvalidInput));
    assert_eq!(
        proxy.send_from(ntp, b"x", SocketAddrV4::new(FAR, 123), SocketAddrV4::new(host_ip(1), 9)),
        Err(Error::InvalidInput),
        "only the catch-all chooses its source"
    );

    let dns = SocketAddrV4::new(FAR, 53);
    let quic = SocketAddrV4::new(OTHER, 443);
    let client = &mut net.host_mut(c).stack;
    let q = client.udp_socket().unwrap();
    client.connect(q, dns).unwrap();
    client.send(q, b"A? example.com").unwrap();
    let u = client.udp_socket().unwrap();
    client.send_to(u, b"initial", quic).unwrap();
    client.send_to(u, b"time?", SocketAddrV4::new(FAR, 123)).unwrap();
    run(&mut net);

    let proxy = &mut net.host_mut(p).stack;
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    while let Ok((n, src, dst)) = proxy.recv_msg(any, &mut buf) {
        got.push((buf[..n].to_vec(), *src.ip(), dst));
        proxy.send_from(any, format!("for {dst}").as_bytes(), dst, src).unwrap();
    }
    assert_eq!(got, [(b"A? example.com".to_vec(), host_ip(1), dns), (b"initial".to_vec(), host_ip(1), quic)]);
    let (n, _, dst) = proxy.recv_msg(ntp, &mut buf).expect("port 123 has its own socket");
    assert_eq!((&buf[..n], dst), (&b"time?"[..], SocketAddrV4::new(FAR, 123)));
    assert_eq!(
        proxy.send_from(
            any,
            b"x",
            SocketAddrV4::new(Ipv4Addr::new(224, 0, 0, 9), 53),
            SocketAddrV4::new(host_ip(1), 9)
        ),
        Err(Error::AddrNotAvailable)
    );
    run(&mut net);

    let client = &mut net.host_mut(c).stack;
    let (n, from) = client.recv_from(q, &mut buf).unwrap();
    assert_eq!((&buf[..n], from), (format!("for {dns}").as_bytes(), dns));
    let (n, from) = client.recv_from(u, &mut buf).unwrap();
    assert_eq!((&buf[..n], from), (format!("for {quic}").as_bytes(), quic));
}
