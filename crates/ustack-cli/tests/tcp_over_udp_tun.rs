//! TCP over UDP (`StackConfig::tcp_over_udp_port`, FreeBSD's
//! `net.inet.tcp.udp_tunneling_port`) through the Linux kernel: two ustack
//! stacks on two TUN devices, 10.17.0.2 and 10.18.0.2, with the kernel
//! routing between them as a firewall that drops every forwarded TCP
//! segment (iptables) and a NAT that gives UDP another source address and
//! port (MASQUERADE to ports 40000-40099). A plain TCP connect gets nowhere;
//! a connection carried over UDP takes a megabyte there and back, and the
//! server sees it come from the NAT's address and port.
//!
//! The body runs in a network namespace of its own (this binary again,
//! under `ip netns exec`). Needs root and iptables; `#[ignore]`d for a
//! plain `cargo test`.

mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::process::Command;
use std::time::Duration;
use ustack::blocking::{TcpListener, TcpSocket, TcpStream};
use ustack::{DriverOptions, NetStack, StackConfig};

const NEEDS_ROOT: &str = "needs root, network namespaces, TUN and iptables: run with sudo .ci/run";
const CHILD: &str = "USTACK_TCP_OVER_UDP_TEST_CHILD";
const TUNNEL: u16 = 9811;
const SERVER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 18, 0, 2), 8080);

fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The packet count of the first rule of `chain` in `table`.
fn rule_packets(table: &str, chain: &str) -> u64 {
    let out = sh(&["iptables", "-t", table, "-L", chain, "-v", "-n", "-x"]);
    let line = out.lines().nth(2).unwrap_or_else(|| panic!("no rule in {table} {chain}:\n{out}"));
    line.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{line}"))
}

fn stack(addr: &str, gateway: Ipv4Addr, seed: u64) -> StackConfig {
    let mut cfg = StackConfig::ip(addr.parse().unwrap()).with_gateway(gateway).with_seed(seed);
    cfg.tcp_over_udp_port = Some(TUNNEL);
    cfg
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[test]
#[ignore = "needs root: run with sudo .ci/run (cargo test -- --include-ignored)"]
fn tcp_over_udp_crosses_a_linux_firewall_that_drops_tcp_and_a_nat() {
    if std::env::var_os(CHILD).is_none() {
        return support::rerun_in_namespace(
            "tou",
            NEEDS_ROOT,
            CHILD,
            "tcp_over_udp_crosses_a_linux_firewall_that_drops_tcp_and_a_nat",
        );
    }
    sh(&["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
    let a = support::tun_with_host("utoua", "10.17.0.1/24");
    let b = support::tun_with_host("utoub", "10.18.0.1/24");
    sh(&["iptables", "-A", "FORWARD", "-p", "tcp", "-j", "DROP"]);
    let nat = ["-t", "nat", "-A", "POSTROUTING", "-o", "utoub", "-p", "udp", "-j", "MASQUERADE"];
    sh(&[&["iptables"][..], &nat[..], &["--to-ports", "40000-40099"][..]].concat());
    let client = NetStack::start(a, stack("10.17.0.2/24", Ipv4Addr::new(10, 17, 0, 1), 31), DriverOptions::default())
        .expect("start the client's stack");
    let server = NetStack::start(b, stack("10.18.0.2/24", Ipv4Addr::new(10, 18, 0, 1), 32), DriverOptions::default())
        .expect("start the server's stack");
    let listener = TcpListener::bind(&server, SERVER).unwrap();

    // Plain TCP: the firewall drops the SYNs.
    let plain = TcpStream::connect_timeout(&client, &SocketAddr::V4(SERVER), Duration::from_secs(3));
    assert!(plain.is_err(), "a plain TCP connect crossed the firewall");
    assert!(rule_packets("filter", "FORWARD") >= 2, "the firewall saw the SYNs");
    let dropped_before = rule_packets("filter", "FORWARD");

    // Over UDP: an echo of a megabyte.
    let echo = std::thread::spawn(move || {
        let (mut conn, peer) = listener.accept().unwrap();
        let encap = conn.udp_encapsulation().unwrap();
        let mut got = Vec::new();
        conn.read_to_end(&mut got).unwrap();
        conn.write_all(&got).unwrap();
        (peer, encap)
    });
    let socket = TcpSocket::new(&client).unwrap();
    socket.set_udp_encapsulation(Some(TUNNEL)).unwrap();
    let conn = socket.connect(SERVER).expect("connect over UDP");
    assert_eq!(conn.udp_encapsulation().unwrap(), Some(TUNNEL));
    let data = pattern(1 << 20);
    let mut writer = conn.try_clone().unwrap();
    let sent = data.clone();
    let up = std::thread::spawn(move || {
        writer.write_all(&sent).unwrap();
        writer.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut back = Vec::new();
    (&conn).read_to_end(&mut back).unwrap();
    up.join().unwrap();
    let (peer, encap) = echo.join().unwrap();
    assert!(back == data, "echoed {} bytes, {} expected, or different bytes", back.len(), data.len());
    assert_eq!(peer.ip().to_string(), "10.18.0.1", "the server sees the NAT's address");
    let port = encap.expect("the accepted connection is carried over UDP");
    assert!((40000..=40099).contains(&port), "the server answers the NAT's port, not {port}");
    assert_eq!(rule_packets("filter", "FORWARD"), dropped_before, "no TCP segment was forwarded");
    assert!(rule_packets("nat", "POSTROUTING") >= 1, "the NAT translated the flow");
    drop(conn);
    client.shutdown().unwrap();
    server.shutdown().unwrap();
}
