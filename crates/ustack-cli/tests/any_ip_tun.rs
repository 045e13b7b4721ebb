//! A catch-all listener on a stack that takes any address
//! (`StackConfig::any_ip`, `TcpSocket::listen_any`), against the Linux
//! kernel: what tun2socks and transparent proxies do. The kernel routes
//! 10.99.0.0/16 (inside the test's own namespace) to ustack's TUN device;
//! Python connects to three addresses and ports in it, and ustack accepts
//! each on the one listener, tells it which address and port it reached,
//! and echoes what it sends; then it sends UDP datagrams to two addresses
//! and ports in it, and the catch-all UDP socket answers each from the
//! address it was sent to.
//!
//! The body runs in a namespace of its own (this binary again, under `ip
//! netns exec`). Needs root and python3; `#[ignore]`d for a plain
//! `cargo test`.

mod support;

use std::io::{Read, Write};
use ustack::blocking::{TcpSocket, UdpSocket};
use ustack::{DriverOptions, NetStack, StackConfig};

const NEEDS_ROOT: &str = "needs root, network namespaces, TUN and python3: run with sudo .ci/run";
const CHILD: &str = "USTACK_ANY_IP_TEST_CHILD";

const CLIENT: &str = r#"
import socket
for host, port in [("10.99.3.3", 4444), ("10.99.4.4", 5555), ("10.99.250.9", 443)]:
    s = socket.create_connection((host, port), timeout=5)
    greeting = s.recv(100).decode()
    s.sendall(b"ping %d" % port)
    s.shutdown(socket.SHUT_WR)
    echoed = b""
    while True:
        b = s.recv(100)
        if not b:
            break
        echoed += b
    s.close()
    print(greeting.strip(), echoed.decode())
q = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
q.settimeout(5)
q.connect(("10.99.8.8", 53))
q.send(b"A? example.com")
print(q.recv(100).decode())
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(5)
u.sendto(b"hello", ("10.99.9.9", 5353))
data, frm = u.recvfrom(100)
print(data.decode(), "from %s:%d" % frm)
"#;

#[test]
#[ignore = "needs root: run with sudo .ci/run (cargo test -- --include-ignored)"]
fn catch_all_sockets_take_the_kernels_tcp_and_udp_to_any_address() {
    if std::env::var_os(CHILD).is_none() {
        return support::rerun_in_namespace(
            "anyip",
            NEEDS_ROOT,
            CHILD,
            "catch_all_sockets_take_the_kernels_tcp_and_udp_to_any_address",
        );
    }
    let dev = support::tun_with_host("uanyl0", "10.16.0.1/24");
    let route = ["route", "add", "10.99.0.0/16", "via", "10.16.0.2"];
    assert!(std::process::Command::new("ip").args(route).status().unwrap().success());
    let mut cfg = StackConfig::ip("10.16.0.2/24".parse().unwrap()).with_seed(21);
    cfg.any_ip = true;
    let net = NetStack::start(dev, cfg, DriverOptions::default()).expect("start ustack");
    let listener = TcpSocket::new(&net).unwrap().listen_any(16).unwrap();
    assert!(TcpSocket::new(&net).unwrap().listen_any(16).is_err(), "one catch-all per stack");
    let server = std::thread::spawn(move || {
        for _ in 0..3 {
            let (mut conn, peer) = listener.accept().unwrap();
            let local = conn.local_addr().unwrap();
            conn.write_all(format!("reached {local} from {}\n", peer.ip()).as_bytes()).unwrap();
            let mut got = Vec::new();
            conn.read_to_end(&mut got).unwrap();
            conn.write_all(&got).unwrap();
        }
    });
    let udp = UdpSocket::bind_any(&net).unwrap();
    let udp_server = std::thread::spawn(move || {
        let mut buf = [0u8; 100];
        for _ in 0..2 {
            let (n, src, dst) = udp.recv_msg(&mut buf).unwrap();
            let answer = format!("{} for {dst}", String::from_utf8_lossy(&buf[..n]));
            udp.send_from(answer.as_bytes(), dst, src).unwrap();
        }
    });
    let out = std::process::Command::new("python3").args(["-c", CLIENT]).output().expect("python3");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    server.join().unwrap();
    udp_server.join().unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "reached 10.99.3.3:4444 from 10.16.0.1 ping 4444",
            "reached 10.99.4.4:5555 from 10.16.0.1 ping 5555",
            "reached 10.99.250.9:443 from 10.16.0.1 ping 443",
            "A? example.com for 10.99.8.8:53",
            "hello for 10.99.9.9:5353 from 10.99.9.9:5353",
        ]
    );
    net.shutdown().unwrap();
}
