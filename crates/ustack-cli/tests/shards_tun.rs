//! Shards on a multi-queue TUN device against the Linux kernel: two
//! stacks share one address, each on its own queue, and the steering
//! program sends every packet to the shard that holds its connection or
//! port. Connections the kernel opens spread over both shards; those a
//! shard opens come back to it, also after a quiet spell longer than the
//! kernel's own flow memory (3 s); each shard's UDP port gets its
//! datagrams, and ICMP errors about them; each shard's pings get their
//! replies.
//!
//! The test runs its body in a network namespace of its own: it starts
//! this test binary again under `ip netns exec` (the environment variable
//! below tells the copy to do the work), so the TUN device, the kernel's
//! sockets and every address live in that namespace and go with it.
//! Needs root; `#[ignore]`d for a plain `cargo test`.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpListener as KListener, TcpStream as KStream, UdpSocket as KUdp};
use std::thread;
use std::time::Duration;
use ustack::blocking::{TcpListener, TcpStream, UdpSocket};
use ustack::phy::tun::{TunDevice, TunOptions};
use ustack::{DriverOptions, NetStack, StackConfig};
use ustack_core::stack::Shard;

const NEEDS_ROOT: &str = "needs root, network namespaces, TUN and bpf(2): run with sudo .ci/run";
const CHILD: &str = "USTACK_SHARDS_TEST_CHILD";
const SHARDS: u16 = 2;
const HOST: &str = "10.79.0.1";
const STACK: &str = "10.79.0.2";

#[test]
#[ignore = "needs root: run with sudo .ci/run (cargo test -- --include-ignored)"]
fn shards_on_a_multi_queue_tun_each_get_their_own_traffic() {
    if std::env::var_os(CHILD).is_some() {
        return in_namespace();
    }
    support::rerun_in_namespace("shards", NEEDS_ROOT, CHILD, "shards_on_a_multi_queue_tun_each_get_their_own_traffic");
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn which_tcp(local: u16, remote: u16) -> usize {
    usize::from(Shard::of_tcp(SHARDS, local, remote))
}

/// The body, inside the namespace.
fn in_namespace() {
    let opts = TunOptions { name: "ushard0".into(), tap: false, mtu: 1500, offload: true };
    let devices = TunDevice::open_queues(&opts, usize::from(SHARDS)).expect("open a multi-queue TUN");
    assert_eq!(devices.len(), usize::from(SHARDS));
    for args in [vec!["addr", "add", &format!("{HOST}/24"), "dev", "ushard0"], vec!["link", "set", "ushard0", "up"]] {
        assert!(std::process::Command::new("ip").args(&args).status().unwrap().success(), "ip {args:?}");
    }
    let cfg = StackConfig::ip(format!("{STACK}/24").parse().unwrap()).with_seed(7);
    let shards = NetStack::start_shards(devices, cfg, DriverOptions::default()).expect("start the shards");

    kernel_connects_to_every_shard(&shards);
    shards_connect_to_the_kernel(&shards);
    udp_to_each_shards_port(&shards);
    each_shard_pings_with_an_identifier_of_its_own(&shards);
    for s in shards {
        s.shutdown().unwrap();
    }
}

/// 40 kernel connections to port 5001, where every shard listens: each
/// lands on the shard its ports choose, which echoes 64 KiB back.
fn kernel_connects_to_every_shard(shards: &[NetStack]) {
    let addr: SocketAddrV4 = format!("{STACK}:5001").parse().unwrap();
    let servers: Vec<_> = shards
        .iter()
        .enumerate()
        .map(|(i, net)| {
            let l = TcpListener::bind(net, addr).unwrap();
            thread::spawn(move || {
                let mut served = Vec::new();
                loop {
                    let (mut s, peer) = l.accept().unwrap();
                    let mut buf = vec![0u8; 65536];
                    // The stop loop below drops the connections that
                    // steer elsewhere than it wants, without a byte.
                    if s.read_exact(&mut buf[..4]).is_err() {
                        continue;
                    }
                    if &buf[..4] == b"done" {
                        return served;
                    }
                    assert_eq!(which_tcp(5001, peer.port()), i, "shard {i} got {peer}'s connection");
                    s.read_exact(&mut buf[4..]).unwrap();
                    s.write_all(&buf).unwrap();
                    served.push(peer.port());
                }
            })
        })
        .collect();
    let mut ports = Vec::new();
    for k in 0..40u8 {
        let mut c = KStream::connect(SocketAddr::V4(addr)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let data = pattern(65536, k);
        c.write_all(&data).unwrap();
        let mut back = vec![0u8; data.len()];
        c.read_exact(&mut back).unwrap();
        assert!(back == data, "connection {k}: echo differs");
        ports.push(c.local_addr().unwrap().port());
    }
    // Tell each shard's server to stop: a connection from a port that
    // steers to it.
    for i in 0..shards.len() {
        loop {
            // A shard already told has closed its listener: refused.
            let Ok(c) = KStream::connect(SocketAddr::V4(addr)) else { continue };
            if which_tcp(5001, c.local_addr().unwrap().port()) == i {
                (&c).write_all(b"done").unwrap();
                break;
            }
        }
    }
    let served: Vec<Vec<u16>> = servers.into_iter().map(|t| t.join().unwrap()).collect();
    println!("connections per shard: {:?}", served.iter().map(Vec::len).collect::<Vec<_>>());
    assert_eq!(served.iter().map(Vec::len).sum::<usize>(), ports.len());
    assert!(served.iter().all(|s| !s.is_empty()), "a shard got no connection: {served:?}");
}

/// Every shard opens 8 connections to a kernel listener. After 4 s of
/// quiet (the kernel forgets a flow's queue after 3 s; the steering
/// program does not need it) the kernel sends first, then both ways.
fn shards_connect_to_the_kernel(shards: &[NetStack]) {
    let listener = KListener::bind(format!("{HOST}:6001")).unwrap();
    let to: SocketAddr = format!("{HOST}:6001").parse().unwrap();
    let mut ours = Vec::new();
    for (i, net) in shards.iter().enumerate() {
        for _ in 0..8 {
            let s = TcpStream::connect_timeout(net, &to, Duration::from_secs(5)).unwrap();
            let port = s.local_addr().unwrap().port();
            assert_eq!(which_tcp(port, 6001), i, "shard {i} connected from port {port}");
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            ours.push(s);
        }
    }
    let mut theirs: Vec<KStream> = (0..ours.len()).map(|_| listener.accept().unwrap().0).collect();
    theirs.sort_by_key(|s| s.peer_addr().unwrap().port());
    ours.sort_by_key(|s| s.local_addr().unwrap().port());
    thread::sleep(Duration::from_secs(4));
    for (k, (o, t)) in ours.iter_mut().zip(&mut theirs).enumerate() {
        let data = pattern(200_000, k as u8);
        let writer = {
            let mut t = t.try_clone().unwrap();
            let data = data.clone();
            thread::spawn(move || t.write_all(&data).unwrap())
        };
        let mut got = vec![0u8; data.len()];
        o.read_exact(&mut got).unwrap();
        writer.join().unwrap();
        assert!(got == data, "connection {k}: kernel→ustack bytes differ");
        o.write_all(&data[..1000]).unwrap();
        let mut back = vec![0u8; 1000];
        t.read_exact(&mut back).unwrap();
        assert!(back == data[..1000], "connection {k}: ustack→kernel bytes differ");
    }
}

/// A UDP socket on each shard (an ephemeral port of its own) talks to a
/// kernel echo; a datagram to a closed kernel port comes back as an ICMP
/// port unreachable, which must reach the shard that sent it.
fn udp_to_each_shards_port(shards: &[NetStack]) {
    let echo = KUdp::bind(format!("{HOST}:7007")).unwrap();
    echo.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for (i, net) in shards.iter().enumerate() {
        let u = UdpSocket::bind(net, "0.0.0.0:0".parse::<SocketAddr>().unwrap()).unwrap();
        let port = u.local_addr().unwrap().port();
        assert_eq!(usize::from(Shard::of_udp(SHARDS, port)), i);
        u.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        u.send_to(format!("shard {i}").as_bytes(), sa(&format!("{HOST}:7007"))).unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = echo.recv_from(&mut buf).unwrap();
        echo.send_to(&buf[..n], from).unwrap();
        let (n, _) = u.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], format!("shard {i}").as_bytes());
        // Nobody listens on 7999: the kernel answers with an ICMP error.
        let before = net.stats().icmp_in;
        u.connect(sa(&format!("{HOST}:7999"))).unwrap();
        u.send(b"anyone?").unwrap();
        let err = u.recv(&mut buf).expect_err("a closed port");
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "shard {i}: {err}");
        assert_eq!(net.stats().icmp_in, before + 1, "shard {i} did not get the ICMP error");
    }
}

/// Each shard pings the kernel with an identifier the device steers back
/// to it, and gets every reply; the kernel's pings are answered whichever
/// shard they reach.
fn each_shard_pings_with_an_identifier_of_its_own(shards: &[NetStack]) {
    let host: std::net::Ipv4Addr = HOST.parse().unwrap();
    for (i, net) in shards.iter().enumerate() {
        let ident = (1000..).find(|&id| usize::from(Shard::of_icmp_echo(SHARDS, id)) == i).unwrap();
        for seq in 0..3 {
            assert!(net.with_stack(|s, now| s.send_echo_request(now, host, ident, seq, b"shard ping")));
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut got = 0;
        while got < 3 && std::time::Instant::now() < deadline {
            got += net.with_stack(|s, _| s.take_echo_replies()).iter().filter(|r| r.ident == ident).count();
            thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(got, 3, "shard {i} got {got} of 3 echo replies");
    }
    let out = std::process::Command::new("ping").args(["-c", "6", "-i", "0.1", "-W", "2", STACK]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("6 received"), "{}", String::from_utf8_lossy(&out.stdout));
}
