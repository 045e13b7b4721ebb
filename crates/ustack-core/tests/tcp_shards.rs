//! Shards: two stacks share one address, and a "device" hands each packet
//! from the peer to one of them by the port rule of [`Shard`], as a
//! multi-queue TUN device with ustack's steering program does. Every
//! connection and datagram must reach the shard that holds it, whoever
//! opened it.
//!
//! Virtual time; every packet handed over at once.

use std::net::SocketAddrV4;
use ustack_core::stack::Shard;
use ustack_core::tcp::State;
use ustack_core::time::Instant;
use ustack_core::{Error, SocketHandle, Stack, StackConfig};

const SHARDS: u16 = 2;

fn shards() -> Vec<Stack> {
    (0..SHARDS)
        .map(|i| {
            let mut cfg = StackConfig::ip("10.0.0.1/24".parse().unwrap()).with_seed(10 + u64::from(i));
            cfg.shard = Shard::new(i, SHARDS);
            Stack::new(cfg)
        })
        .collect()
}

fn peer() -> Stack {
    Stack::new(StackConfig::ip("10.0.0.2/24".parse().unwrap()).with_seed(99))
}

/// The shard a packet from the peer is steered to: the rule the steering
/// program applies, read off the raw IPv4 packet as the kernel sees it.
fn steer(packet: &[u8]) -> usize {
    let ihl = usize::from(packet[0] & 0x0f) * 4;
    let port = |at: usize| u16::from_be_bytes([packet[ihl + at], packet[ihl + at + 1]]);
    match packet[9] {
        6 => usize::from(Shard::of_tcp(SHARDS, port(2), port(0))),
        17 => usize::from(Shard::of_udp(SHARDS, port(2))),
        _ => 0,
    }
}

/// Delivers every packet until all stacks are quiet.
fn settle(now: Instant, shards: &mut [Stack], peer: &mut Stack) {
    let mut buf = vec![0u8; 65_600];
    loop {
        let mut moved = 0;
        for s in shards.iter_mut() {
            while let Some(n) = s.poll_transmit(now, &mut buf) {
                peer.handle_ip_packet(now, &buf[..n]);
                moved += 1;
            }
        }
        while let Some(n) = peer.poll_transmit(now, &mut buf) {
            let to = steer(&buf[..n]);
            shards[to].handle_ip_packet(now, &buf[..n]);
            moved += 1;
        }
        if moved == 0 {
            return;
        }
    }
}

fn listen(s: &mut Stack, addr: SocketAddrV4) -> SocketHandle {
    let l = s.tcp_socket().unwrap();
    s.set_reuse_addr(l, true).unwrap();
    s.bind(l, addr).unwrap();
    s.listen(l, 1024).unwrap();
    l
}

#[test]
fn connections_the_peer_opens_spread_over_the_shards_and_each_accepts_its_own() {
    let mut sh = shards();
    let mut p = peer();
    let now = Instant::ZERO;
    let addr: SocketAddrV4 = "10.0.0.1:80".parse().unwrap();
    let ls: Vec<SocketHandle> = sh.iter_mut().map(|s| listen(s, addr)).collect();
    let n = 40;
    let clients: Vec<SocketHandle> = (0..n)
        .map(|_| {
            let h = p.tcp_socket().unwrap();
            p.connect(h, addr).unwrap();
            h
        })
        .collect();
    settle(now, &mut sh, &mut p);
    let mut accepted = vec![Vec::new(); SHARDS as usize];
    for (i, s) in sh.iter_mut().enumerate() {
        while let Ok((h, remote)) = s.accept(ls[i]) {
            assert!(s.config().shard.unwrap().owns_tcp(80, remote.port()));
            s.send(h, format!("shard {i}").as_bytes()).unwrap();
            accepted[i].push(h);
        }
    }
    assert_eq!(accepted.iter().map(Vec::len).sum::<usize>(), n);
    assert!(accepted.iter().all(|a| !a.is_empty()), "one shard got every connection");
    settle(now, &mut sh, &mut p);
    let mut buf = [0u8; 16];
    for &c in &clients {
        assert_eq!(p.tcp_state(c).unwrap(), State::Established);
        let k = p.recv(c, &mut buf).unwrap();
        let port = p.local_addr(c).unwrap().port();
        assert_eq!(&buf[..k], format!("shard {}", Shard::of_tcp(SHARDS, 80, port)).as_bytes());
    }
    assert_eq!(p.stats().tcp.resets_in, 0);
}

#[test]
fn each_shard_connects_out_from_ports_steered_back_to_itself() {
    let mut sh = shards();
    let mut p = peer();
    let now = Instant::ZERO;
    let addr: SocketAddrV4 = "10.0.0.2:5001".parse().unwrap();
    let l = listen(&mut p, addr);
    let mut conns = Vec::new();
    for (i, s) in sh.iter_mut().enumerate() {
        for _ in 0..20 {
            let h = s.tcp_socket().unwrap();
            s.connect(h, addr).unwrap();
            let port = s.local_addr(h).unwrap().port();
            assert_eq!(usize::from(Shard::of_tcp(SHARDS, port, 5001)), i);
            conns.push((i, h));
        }
    }
    settle(now, &mut sh, &mut p);
    for &(i, h) in &conns {
        assert_eq!(sh[i].tcp_state(h).unwrap(), State::Established, "shard {i}");
        sh[i].send(h, b"ping").unwrap();
    }
    settle(now, &mut sh, &mut p);
    let mut buf = [0u8; 8];
    for _ in 0..conns.len() {
        let (h, _) = p.accept(l).unwrap();
        assert_eq!(p.recv(h, &mut buf).unwrap(), 4);
    }
    for s in &sh {
        assert_eq!(s.stats().tcp.resets_in, 0);
    }
}

#[test]
fn a_port_bound_beforehand_that_steers_elsewhere_cannot_connect() {
    let mut sh = shards();
    let remote: SocketAddrV4 = "10.0.0.2:5001".parse().unwrap();
    // 5001 ^ 5001 = 0, which is shard 0's; shard 1 cannot use the pair.
    for (i, s) in sh.iter_mut().enumerate() {
        let h = s.tcp_socket().unwrap();
        s.bind(h, "10.0.0.1:5001".parse().unwrap()).unwrap();
        let r = s.connect(h, remote);
        if i == 0 {
            assert_eq!(r, Ok(()));
        } else {
            assert_eq!(r, Err(Error::AddrNotAvailable));
        }
    }
}

#[test]
fn udp_sockets_bind_only_ports_steered_to_their_shard() {
    let mut sh = shards();
    let mut p = peer();
    let now = Instant::ZERO;
    let ps = p.udp_socket().unwrap();
    p.bind(ps, "10.0.0.2:53".parse().unwrap()).unwrap();
    let mut senders = Vec::new();
    for (i, s) in sh.iter_mut().enumerate() {
        // An explicit port of the other shard is refused.
        let other = s.udp_socket().unwrap();
        let theirs = (7000..).find(|&p| usize::from(Shard::of_udp(SHARDS, p)) != i).unwrap();
        assert_eq!(s.bind(other, format!("10.0.0.1:{theirs}").parse().unwrap()), Err(Error::AddrNotAvailable));
        // An ephemeral one is its own.
        let h = s.udp_socket().unwrap();
        s.send_to(h, format!("from {i}").as_bytes(), "10.0.0.2:53".parse().unwrap()).unwrap();
        assert_eq!(usize::from(Shard::of_udp(SHARDS, s.local_addr(h).unwrap().port())), i);
        senders.push(h);
    }
    settle(now, &mut sh, &mut p);
    let mut buf = [0u8; 16];
    for _ in 0..SHARDS {
        let (n, from) = p.recv_from(ps, &mut buf).unwrap();
        p.send_to(ps, &buf[..n], from).unwrap();
    }
    settle(now, &mut sh, &mut p);
    for (i, (s, &h)) in sh.iter_mut().zip(&senders).enumerate() {
        let (n, _) = s.recv_from(h, &mut buf).unwrap_or_else(|e| panic!("shard {i} got no answer: {e:?}"));
        assert_eq!(&buf[..n], format!("from {i}").as_bytes());
    }
}
