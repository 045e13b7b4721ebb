//! TCP Fast Open (RFC 7413) with ustack as the client and the Linux kernel
//! as the server: Python's TCP_FASTOPEN echo server on the kernel's side of
//! a TUN device (`net.ipv4.tcp_fastopen=3`), and ustack connecting with
//! `connect_with_data` three times. The first connection asks for a
//! cookie; the next two carry their data in the SYN, and the kernel counts
//! each as a passive Fast Open it took (TcpExt TCPFastOpenPassive).
//!
//! The body runs in a network namespace of its own (this binary again,
//! under `ip netns exec`). Needs root; `#[ignore]`d for a plain `cargo test`.

mod support;

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use ustack::blocking::TcpStream;
use ustack::{DriverOptions, NetStack, StackConfig};

const NEEDS_ROOT: &str = "needs root, network namespaces and TUN: run with sudo .ci/run";
const CHILD: &str = "USTACK_FAST_OPEN_TEST_CHILD";
const SERVER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 19, 0, 1), 8080);

/// An echo server with TCP_FASTOPEN: each connection's first read is
/// answered with "echo: " and what it read, then closed.
const PY_SERVER: &str = r#"
import socket
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.setsockopt(socket.SOL_TCP, socket.TCP_FASTOPEN, 16)
l.bind(("10.19.0.1", 8080))
l.listen(16)
print("ready", flush=True)
while True:
    c, _ = l.accept()
    c.sendall(b"echo: " + c.recv(4096))
    c.close()
"#;

/// A TcpExt counter of the kernel (`/proc/net/netstat`).
fn tcpext(name: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/net/netstat").unwrap();
    let lines: Vec<Vec<&str>> =
        text.lines().filter(|l| l.starts_with("TcpExt:")).map(|l| l.split_whitespace().collect()).collect();
    let i = lines[0].iter().position(|n| *n == name).unwrap_or_else(|| panic!("no {name}"));
    lines[1][i].parse().unwrap()
}

#[test]
#[ignore = "needs root: run with sudo .ci/run (cargo test -- --include-ignored)"]
fn ustack_fast_open_client_against_the_kernels_server_rfc7413() {
    if std::env::var_os(CHILD).is_none() {
        return support::rerun_in_namespace(
            "tfoc",
            NEEDS_ROOT,
            CHILD,
            "ustack_fast_open_client_against_the_kernels_server_rfc7413",
        );
    }
    let out = Command::new("sysctl").args(["-q", "-w", "net.ipv4.tcp_fastopen=3"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tun = support::tun_with_host("utfoc", "10.19.0.1/24");
    let mut server = Command::new("python3").args(["-c", PY_SERVER]).stdout(Stdio::piped()).spawn().expect("python3");
    let mut ready = [0u8; 6];
    server.stdout.as_mut().unwrap().read_exact(&mut ready).unwrap();
    assert_eq!(&ready, b"ready\n");
    let cfg = StackConfig::ip("10.19.0.2/24".parse().unwrap()).with_gateway(Ipv4Addr::new(10, 19, 0, 1)).with_seed(41);
    let net = NetStack::start(tun, cfg, DriverOptions::default()).expect("start the stack");

    let passive_before = tcpext("TCPFastOpenPassive");
    let started = Instant::now();
    for msg in ["asks for a cookie", "rides in the SYN", "and again"] {
        let (mut conn, written) = TcpStream::connect_with_data(&net, SERVER, msg.as_bytes()).expect("connect");
        assert_eq!(written, msg.len());
        conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut back = String::new();
        conn.read_to_string(&mut back).unwrap();
        assert_eq!(back, format!("echo: {msg}"));
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    let stats = net.with_stack(|s, _| s.stats().tcp);
    assert_eq!((stats.fast_open_active, stats.fast_open_active_acked), (2, 2), "{stats:?}");
    assert_eq!(tcpext("TCPFastOpenPassive") - passive_before, 2, "the kernel took two SYNs' data");
    let _ = server.kill();
    let _ = server.wait();
    net.shutdown().unwrap();
}
