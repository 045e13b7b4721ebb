//! IP_TOS and IP_TTL against the Linux kernel: ustack, on a TUN device,
//! sends a UDP datagram and serves a TCP connection with the options set,
//! and the kernel sees them: its UDP socket reads them with IP_RECVTOS and
//! IP_RECVTTL (a Python peer), and tcpdump on the TUN device shows them on
//! the TCP segments (the SYN-ACK and data with the listener's values, the
//! segments after a change on the live connection with the new ones, and
//! the SYN of a `TcpSocket` given them before it connects).
//!
//! The body runs in a network namespace of its own: the test starts this
//! binary again under `ip netns exec` (the environment variable below
//! tells the copy to do the work), so the TUN device, the kernel's sockets
//! and every address live in that namespace and go with it. Needs root,
//! python3 and tcpdump; `#[ignore]`d for a plain `cargo test`.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream as KStream};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};
use ustack::blocking::{TcpListener, TcpSocket, UdpSocket};
use ustack::{DriverOptions, NetStack, StackConfig};

const NEEDS_ROOT: &str = "needs root, network namespaces, TUN, python3 and tcpdump: run with sudo .ci/run";
const CHILD: &str = "USTACK_TOS_TTL_TEST_CHILD";
const DEV: &str = "utos0";
const HOST: &str = "10.81.0.1";
const STACK: &str = "10.81.0.2";

#[test]
#[ignore = "needs root: run with sudo .ci/run (cargo test -- --include-ignored)"]
fn the_kernel_receives_the_tos_and_ttl_ustack_sets_rfc2474() {
    if std::env::var_os(CHILD).is_some() {
        return in_namespace();
    }
    support::rerun_in_namespace("tosttl", NEEDS_ROOT, CHILD, "the_kernel_receives_the_tos_and_ttl_ustack_sets_rfc2474");
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// The body, inside the namespace.
fn in_namespace() {
    let dev = support::tun_with_host(DEV, &format!("{HOST}/24"));
    let cfg = StackConfig::ip(format!("{STACK}/24").parse().unwrap()).with_seed(11);
    let net = NetStack::start(dev, cfg, DriverOptions::default()).expect("start ustack");
    udp_datagram_carries_the_whole_tos_byte_and_the_ttl(&net);
    tcp_segments_carry_the_dscp_and_the_ttl(&net);
    net.shutdown().unwrap();
}

/// A Python UDP socket with IP_RECVTOS and IP_RECVTTL prints what the
/// kernel saw in the datagram's IP header.
fn udp_datagram_carries_the_whole_tos_byte_and_the_ttl(net: &NetStack) {
    // Linux: IP_TOS 1, IP_TTL 2, IP_RECVTTL 12, IP_RECVTOS 13.
    let peer = format!(
        "import socket\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         s.setsockopt(socket.IPPROTO_IP, 13, 1)\n\
         s.setsockopt(socket.IPPROTO_IP, 12, 1)\n\
         s.bind(('{HOST}', 6000))\n\
         s.settimeout(10)\n\
         print('ready', flush=True)\n\
         data, anc, _, _ = s.recvmsg(100, 256)\n\
         seen = {{t: d for (l, t, d) in anc if l == socket.IPPROTO_IP}}\n\
         print(data.decode(), seen[1][0], int.from_bytes(seen[2], 'little'), flush=True)\n"
    );
    let mut py = Command::new("python3")
        .args(["-c", &peer])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3");
    let mut out = BufReader::new(py.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    let u = UdpSocket::bind(net, sa("0.0.0.0:0")).unwrap();
    // EF with ECT(1): UDP leaves the ECN field to the application.
    u.set_tos(0xb9).unwrap();
    u.set_ttl(5).unwrap();
    u.send_to(b"hello", sa(&format!("{HOST}:6000"))).unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    assert!(py.wait().unwrap().success());
    assert_eq!(line.trim(), "hello 185 5", "what the kernel's socket saw (data, TOS, TTL)");
}

/// (TOS, TTL) of each TCP segment from ustack in a capture, in order,
/// with the line that names its addresses and flags. (`tcpdump -v` prints
/// the IP header on one line and the addresses on the next.)
fn marks_in(pcap: &str) -> Vec<(u8, u8, String)> {
    let out = Command::new("tcpdump").args(["-r", pcap, "-n", "-v"]).output().expect("tcpdump -r");
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |line: &str, name: &str| -> Option<String> {
        let rest = &line[line.find(name)? + name.len()..];
        Some(rest.split([',', ')', ' ']).next()?.to_string())
    };
    let lines: Vec<&str> = text.lines().collect();
    lines
        .windows(2)
        .filter(|w| w[0].contains(" IP (tos ") && w[0].contains("proto TCP") && w[1].trim().starts_with(STACK))
        .map(|w| {
            let tos = field(w[0], "(tos 0x").and_then(|t| u8::from_str_radix(&t, 16).ok()).expect(w[0]);
            let ttl = field(w[0], "ttl ").and_then(|t| t.parse().ok()).expect(w[0]);
            (tos, ttl, w[1].trim().to_string())
        })
        .collect()
}

/// The kernel connects to a ustack listener with IP_TOS CS1 and IP_TTL 7;
/// after 10 KB the connection changes to CS7 and TTL 6 and sends 10 KB
/// more and its FIN.
fn tcp_segments_carry_the_dscp_and_the_ttl(net: &NetStack) {
    let pcap = std::env::temp_dir().join(format!("ustack-tos-ttl-{}.pcap", std::process::id()));
    let pcap = pcap.to_str().unwrap().to_string();
    let _ = std::fs::remove_file(&pcap);
    // Headers only (`-s 256`): with the default snap length of 256 KiB the
    // capture ring holds 8 frames, and a burst of TSO super-packets made it
    // drop the next connection's SYN now and then. tcpdump's closing words
    // ("N packets dropped by kernel") go to a file, for a failure message.
    let dump_log = format!("{pcap}.log");
    let mut dump = Command::new("tcpdump")
        .args(["-i", DEV, "-n", "--immediate-mode", "-s", "256", "-U", "-w", &pcap, "tcp"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&dump_log).expect("tcpdump's log"))
        .spawn()
        .expect("tcpdump");
    // The capture has begun once the file holds its header.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::metadata(&pcap).map_or(0, |m| m.len()) < 24 {
        assert!(Instant::now() < deadline, "tcpdump did not start");
        thread::sleep(Duration::from_millis(50));
    }
    thread::sleep(Duration::from_millis(300));

    let listener = TcpListener::bind(net, sa(&format!("{STACK}:6001"))).unwrap();
    listener.set_tos(0x20).unwrap();
    listener.set_ttl(7).unwrap();
    let kernel = thread::spawn(|| {
        let mut k = KStream::connect_timeout(&sa(&format!("{STACK}:6001")), Duration::from_secs(10)).unwrap();
        k.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut got = Vec::new();
        k.read_to_end(&mut got).unwrap();
        got.len()
    });
    let (mut s, _) = listener.accept().unwrap();
    s.write_all(&[1u8; 10_000]).unwrap();
    // Let the first half go out (and be acknowledged) with the first values.
    thread::sleep(Duration::from_millis(200));
    s.set_tos(0xe0).unwrap();
    s.set_ttl(6).unwrap();
    s.write_all(&[2u8; 10_000]).unwrap();
    drop(s);
    assert_eq!(kernel.join().unwrap(), 20_000);

    // A socket set up before it connects: its SYN already carries AF41 and
    // TTL 11, as does everything after.
    let kernel_listener = std::net::TcpListener::bind(sa(&format!("{HOST}:6002"))).unwrap();
    let socket = TcpSocket::new(net).unwrap();
    socket.set_tos(0x88).unwrap();
    socket.set_ttl(11).unwrap();
    let mut c = socket.connect_timeout(sa(&format!("{HOST}:6002")), Duration::from_secs(10)).unwrap();
    let (mut k, _) = kernel_listener.accept().unwrap();
    c.write_all(b"from the SYN on").unwrap();
    let mut got = [0u8; 15];
    k.read_exact(&mut got).unwrap();
    drop(c);
    thread::sleep(Duration::from_millis(300));
    let _ = Command::new("kill").args(["-INT", &dump.id().to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while dump.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = dump.kill();
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    let _ = dump.wait();
    let all = marks_in(&pcap);
    let _ = std::fs::remove_file(&pcap);
    let dump_said = std::fs::read_to_string(&dump_log).unwrap_or_default().replace('\n', "; ");
    let _ = std::fs::remove_file(&dump_log);
    let to_kernel_listener = format!("> {HOST}.6002:");
    let (client, served): (Vec<_>, Vec<_>) = all.into_iter().partition(|(_, _, l)| l.contains(&to_kernel_listener));
    println!("ustack's connect to the kernel, (tos, ttl, segment): {client:?}");
    assert!(
        client.first().is_some_and(|(_, _, l)| l.contains("Flags [S]")),
        "the SYN first: {client:?} (tcpdump: {dump_said})"
    );
    assert!(client.len() >= 3 && client.iter().all(|&(tos, ttl, _)| (tos, ttl) == (0x88, 11)), "{client:?}");
    let marks: Vec<(u8, u8)> = served.into_iter().map(|(tos, ttl, _)| (tos, ttl)).collect();
    println!("(tos, ttl) of ustack's segments as the kernel got them: {marks:?}");
    let first = (0x20, 7);
    let second = (0xe0, 6);
    assert!(marks.len() >= 4, "{marks:?}");
    // The SYN-ACK and the first data: the listener's values. Then, once
    // changed, the new ones on everything to the end (data, FIN, ACKs).
    assert_eq!(marks[0], first, "{marks:?}");
    let change = marks.iter().position(|&m| m != first).expect("a change");
    assert!(marks[change..].iter().all(|&m| m == second), "{marks:?}");
}
