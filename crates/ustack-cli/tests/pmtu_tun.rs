//! Path MTU discovery through a Linux router (RFC 1191): ustack, on a TUN
//! device, reaches a kernel server one hop away, behind a link of MTU
//! 1280. The kernel, forwarding, answers ustack's first full-sized
//! segments with ICMP "fragmentation needed"; ustack's connection drops to
//! the path MTU, and its stack keeps the value for the destination, so a
//! second connection starts within it and draws no error at all, and a
//! connection opened before, idle until then, sends within it too.
//!
//! Two network namespaces of the test's own: the router (the TUN device's
//! kernel side, forwarding) and the server's, joined by a veth pair whose
//! router end has MTU 1280 (the server's end 1500, so the server offers
//! MSS 1460). The body runs in the router's namespace (this binary again, under
//! `ip netns exec`). Needs root and python3; `#[ignore]`d for a plain
//! `cargo test`.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;
use support::Namespace;
use ustack::blocking::TcpStream;
use ustack::{DriverOptions, NetStack, StackConfig};

const NEEDS_ROOT: &str = "needs root, network namespaces, TUN and python3: run with sudo .ci/run";
const CHILD: &str = "USTACK_PMTU_TEST_CHILD";
const DEV: &str = "upmtu0";
const ROUTER: &str = "10.82.0.1";
const STACK: &str = "10.82.0.2";
const SERVER: &str = "10.82.1.2";
const PATH_MTU: usize = 1280;

#[test]
#[ignore = "needs root: run with sudo .ci/run (cargo test -- --include-ignored)"]
fn a_path_mtu_learned_from_a_linux_router_holds_for_the_next_connection_rfc1191() {
    if std::env::var_os(CHILD).is_some() {
        return in_router_namespace();
    }
    let (router, server) = router_and_server();
    // The server: three connections at once, each read to its end in a
    // thread of its own; prints the bytes of each.
    let script = tcp_sink(3);
    let received = serve_during(
        &server,
        &script,
        &router,
        "a_path_mtu_learned_from_a_linux_router_holds_for_the_next_connection_rfc1191",
    );
    assert_eq!(received, ["200000", "200000", "200000"], "what the server received on each connection");
}

/// A Python TCP server for `connections` connections at once, each read
/// to its end in a thread of its own; prints `ready`, then the bytes of
/// each.
fn tcp_sink(connections: usize) -> String {
    format!(
        "import socket, threading\n\
         def serve(c):\n\
         \x20   c.settimeout(30)\n\
         \x20   n = 0\n\
         \x20   while True:\n\
         \x20       b = c.recv(65536)\n\
         \x20       if not b:\n\
         \x20           break\n\
         \x20       n += len(b)\n\
         \x20   c.close()\n\
         \x20   print(n, flush=True)\n\
         l = socket.socket()\n\
         l.bind(('{SERVER}', 7000))\n\
         l.listen(4)\n\
         l.settimeout(30)\n\
         print('ready', flush=True)\n\
         ts = [threading.Thread(target=serve, args=(l.accept()[0],)) for _ in range({connections})]\n\
         for t in ts: t.start()\n\
         for t in ts: t.join()\n"
    )
}

/// Runs the Python server `script` in the server's namespace (it prints
/// `ready`, then a line per thing it received) while test `test` runs its
/// body in the router's namespace; returns the server's lines after
/// `ready`. (If the body fails, the server exits on its own timeouts.)
fn serve_during(server: &Namespace, script: &str, router: &Namespace, test: &str) -> Vec<String> {
    let mut py = server.cmd(&["python3", "-c", script]).stdout(Stdio::piped()).spawn().expect("python3");
    let mut out = BufReader::new(py.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    support::rerun_in(router, CHILD, test);
    let _ = py.kill();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut out, &mut rest);
    let _ = py.wait();
    rest.lines().map(str::to_string).collect()
}

/// The router's namespace and the server's, joined by the veth pair whose
/// router end has MTU 1280.
fn router_and_server() -> (Namespace, Namespace) {
    let router = Namespace::new("pmtu", NEEDS_ROOT);
    let server = Namespace::new("pmtusrv", NEEDS_ROOT);
    router.run(&["ip", "link", "add", "upm0", "type", "veth", "peer", "name", "upm1", "netns", &server.name]);
    router.run(&["ip", "addr", "add", "10.82.1.1/24", "dev", "upm0"]);
    router.run(&["ip", "link", "set", "upm0", "mtu", &PATH_MTU.to_string(), "up"]);
    // (Per namespace; written directly, as sysctl(8) may not be installed.)
    router.run(&["sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"]);
    server.run(&["ip", "addr", "add", &format!("{SERVER}/24"), "dev", "upm1"]);
    // The server's own link takes 1500, so its SYN-ACK offers MSS 1460:
    // only the router's side of the pair is narrow.
    server.run(&["ip", "link", "set", "upm1", "up"]);
    server.run(&["ip", "route", "add", "default", "via", "10.82.1.1"]);
    (router, server)
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// The body, in the router's namespace.
fn in_router_namespace() {
    let dev = support::tun_with_host(DEV, &format!("{ROUTER}/24"));
    let mut cfg = StackConfig::ip(format!("{STACK}/24").parse().unwrap()).with_seed(12);
    cfg.gateway = Some(ROUTER.parse().unwrap());
    let net = NetStack::start(dev, cfg, DriverOptions::default()).expect("start ustack");
    let server: std::net::Ipv4Addr = SERVER.parse().unwrap();
    let icmp_in = || net.stats().icmp_in;
    let data = vec![7u8; 200_000];

    // Open before anything is learned, and idle until then.
    let early = TcpStream::connect(&net, sa(&format!("{SERVER}:7000"))).expect("connect");
    let mut first = TcpStream::connect(&net, sa(&format!("{SERVER}:7000"))).expect("connect");
    first.write_all(&data).unwrap();
    let info = net.with_stack(|s, _| s.tcp_info(first.handle())).unwrap();
    drop(first);
    let learned = wait_for(|| net.with_stack(|s, _| s.path_mtu(server)));
    let errors = icmp_in();
    println!(
        "first connection: mss {} when its write returned, path MTU learned {learned:?}, {errors} ICMP errors",
        info.mss
    );
    assert_eq!(learned, Some(PATH_MTU), "the router's frag-needed taught the path MTU");
    assert!(errors >= 1);

    // Writes the data on `conn`, which must already send within the path
    // MTU (less headers and timestamps) and draw no ICMP error.
    let within_the_path = |mut conn: TcpStream, which: &str| {
        let mss = net.with_stack(|s, _| s.tcp_info(conn.handle())).unwrap().mss;
        conn.write_all(&data).unwrap();
        drop(conn);
        // Let the last segments go and be answered (or drawn errors arrive).
        std::thread::sleep(Duration::from_millis(500));
        println!("{which}: mss {mss} before it wrote, ICMP errors now {}", icmp_in());
        assert_eq!(mss, PATH_MTU - 40 - 12, "{which}: not within the path MTU");
        assert_eq!(icmp_in(), errors, "{which} drew an ICMP error");
    };
    let second = TcpStream::connect(&net, sa(&format!("{SERVER}:7000"))).expect("connect");
    within_the_path(second, "the second connection, from its start");
    within_the_path(early, "the connection opened before, once another learned");
    net.shutdown().unwrap();
}

/// The same path for UDP (RFC 1191 with Linux's IP_MTU_DISCOVER): a
/// datagram that fits the interface but not the path goes out with DF, and
/// the router drops it and answers "fragmentation needed"; the connected
/// socket reports EMSGSIZE once and IP_MTU says 1280. From then on ustack
/// fragments larger datagrams at 1280 (the router forwards the fragments
/// and the server's kernel reassembles them), sends those that fit with DF,
/// and a socket in IP_PMTUDISC_DO refuses what does not fit. A Python
/// server prints the size of each datagram it gets.
#[test]
#[ignore = "needs root: run with sudo .ci/run (cargo test -- --include-ignored)"]
fn udp_datagrams_follow_the_path_mtu_a_linux_router_teaches_rfc1191() {
    if std::env::var_os(CHILD).is_some() {
        return udp_in_router_namespace();
    }
    let (router, server) = router_and_server();
    let script = format!(
        "import socket\n\
         u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         u.bind(('{SERVER}', 7001))\n\
         u.settimeout(30)\n\
         print('ready', flush=True)\n\
         while True:\n\
         \x20   b = u.recv(65536)\n\
         \x20   if b == b'end':\n\
         \x20       break\n\
         \x20   print(len(b), flush=True)\n"
    );
    let received =
        serve_during(&server, &script, &router, "udp_datagrams_follow_the_path_mtu_a_linux_router_teaches_rfc1191");
    // The first 1400 went out with DF and died at the router.
    assert_eq!(received, ["1400", "1252", "1252"], "the datagrams the server received");
}

/// The same path as a black hole (RFC 4821 §7.1): the router still drops
/// what does not fit its 1280-byte link, but a firewall rule there drops
/// its "fragmentation needed" on the way out, so ustack never hears why.
/// With `TcpConfig::mtu_probing` the connection takes the third timeout of
/// the same data for a black hole, shrinks its segments to a 1024-byte
/// MTU, and the server gets all 200,000 bytes.
#[test]
#[ignore = "needs root and iptables: run with sudo .ci/run (cargo test -- --include-ignored)"]
fn mtu_probing_finds_a_path_mtu_black_hole_behind_a_linux_router_rfc4821() {
    if std::env::var_os(CHILD).is_some() {
        return black_hole_in_router_namespace();
    }
    let (router, server) = router_and_server();
    router.run(&["iptables", "-A", "OUTPUT", "-p", "icmp", "--icmp-type", "fragmentation-needed", "-j", "DROP"]);
    let received = serve_during(
        &server,
        &tcp_sink(1),
        &router,
        "mtu_probing_finds_a_path_mtu_black_hole_behind_a_linux_router_rfc4821",
    );
    assert_eq!(received, ["200000"], "what the server received");
}

/// The black hole body, in the router's namespace.
fn black_hole_in_router_namespace() {
    let dev = support::tun_with_host(DEV, &format!("{ROUTER}/24"));
    let mut cfg = StackConfig::ip(format!("{STACK}/24").parse().unwrap()).with_seed(14);
    cfg.gateway = Some(ROUTER.parse().unwrap());
    cfg.tcp.mtu_probing = true;
    let net = NetStack::start(dev, cfg, DriverOptions::default()).expect("start ustack");
    let mut conn = TcpStream::connect(&net, sa(&format!("{SERVER}:7000"))).expect("connect");
    conn.write_all(&vec![9u8; 200_000]).unwrap();
    let h = conn.handle();
    // Wait for the data to be acknowledged before closing.
    let done = wait_for_secs(30, || {
        let i = net.with_stack(|s, _| s.tcp_info(h)).unwrap();
        (i.bytes_acked >= 200_000).then_some(i)
    });
    let stats = net.stats();
    println!("{done:?}; icmp in {}, black holes {}", stats.icmp_in, stats.tcp.mtu_black_holes);
    let info = done.expect("the data was never all acknowledged: the black hole held");
    assert_eq!(stats.icmp_in, 0, "no ICMP error came back (the rule drops them)");
    assert_eq!(stats.tcp.mtu_black_holes, 1);
    assert_eq!(info.mss, 1024 - 40 - 12, "segments for a 1024-byte MTU");
    drop(conn);
    std::thread::sleep(Duration::from_millis(300));
    net.shutdown().unwrap();
}

/// `ustack traceroute` and `ustack ping` on the same path: the Linux
/// router answers the echo request whose TTL runs out there with "time
/// exceeded" and one too big for its next link, sent with DF, with
/// "fragmentation needed"; the server's kernel answers the rest with echo
/// replies (RFC 792, RFC 1191).
#[test]
#[ignore = "needs root: run with sudo .ci/run (cargo test -- --include-ignored)"]
fn ustack_traceroute_and_ping_hear_the_linux_router_rfc792() {
    let (router, _server) = router_and_server();
    let ustack = |args: &[&str]| {
        let dev = ["--tun", "utr0", "--addr", "10.82.0.2/24", "--host-addr", "10.82.0.1/24", "--gateway", ROUTER];
        let mut cmd = router.cmd(&[env!("CARGO_BIN_EXE_ustack")]);
        cmd.args(args).args(dev).arg(SERVER);
        let out = cmd.output().expect("run ustack");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        println!("ustack {args:?}:\n{text}{}", String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    };
    let (ok, trace) = ustack(&["traceroute", "-q", "2", "-m", "5"]);
    let hops: Vec<Vec<&str>> = trace.lines().skip(1).map(|l| l.split_whitespace().collect()).collect();
    assert!(ok, "the trace reached the server");
    assert_eq!(hops.len(), 2, "two hops: {trace}");
    assert_eq!(&hops[0][..2], ["1", ROUTER], "the router answers TTL 1");
    assert_eq!(&hops[1][..2], ["2", SERVER], "the server answers TTL 2");
    assert_eq!(hops.iter().map(|h| h.iter().filter(|w| **w == "ms").count()).collect::<Vec<_>>(), [2, 2]);

    let (ok, ping) = ustack(&["ping", "-c", "2", "-M", "do", "-s", "1400"]);
    assert!(!ok, "no reply can come: {ping}");
    for seq in [1, 2] {
        let line = format!("From {ROUTER} icmp_seq={seq} Frag needed and DF set (mtu = {PATH_MTU})");
        assert!(ping.contains(&line), "{line:?} in {ping}");
    }
    let (ok, ping) = ustack(&["ping", "-c", "1", "-M", "do", "-s", &(PATH_MTU - 28).to_string()]);
    assert!(ok && ping.contains(&format!("{} bytes from {SERVER}: icmp_seq=1 ttl=63", PATH_MTU - 20)), "{ping}");
    let (ok, ping) = ustack(&["ping", "-c", "1", "-t", "1"]);
    assert!(!ok && ping.contains(&format!("From {ROUTER} icmp_seq=1 Time to live exceeded")), "{ping}");
}

/// The UDP body, in the router's namespace.
fn udp_in_router_namespace() {
    use ustack::PmtuDiscovery;
    use ustack::blocking::UdpSocket;
    let dev = support::tun_with_host(DEV, &format!("{ROUTER}/24"));
    let mut cfg = StackConfig::ip(format!("{STACK}/24").parse().unwrap()).with_seed(13);
    cfg.gateway = Some(ROUTER.parse().unwrap());
    let net = NetStack::start(dev, cfg, DriverOptions::default()).expect("start ustack");
    let server = sa(&format!("{SERVER}:7001"));
    let u = UdpSocket::bind(&net, sa("0.0.0.0:0")).unwrap();
    u.connect(server).unwrap();
    assert_eq!(u.mtu_discover().unwrap(), PmtuDiscovery::Want);
    assert_eq!(u.path_mtu().unwrap(), 1500);
    u.send(&[1; 1400]).unwrap();
    // The router's error comes back: EMSGSIZE on the next call, once.
    let learned = wait_for(|| (u.path_mtu().unwrap() < 1500).then_some(()));
    assert!(learned.is_some(), "no frag-needed from the router (did the datagram carry DF?)");
    assert_eq!(u.path_mtu().unwrap(), PATH_MTU);
    let err = u.send(&[2; 10]).expect_err("the router's error, reported once");
    assert_eq!(err.raw_os_error(), Some(90), "EMSGSIZE: {err}");
    let errors = net.stats().icmp_in;
    // Fragmented by ustack at 1280, reassembled by the server's kernel.
    u.send(&[3; 1400]).unwrap();
    u.send(&[4; PATH_MTU - 28]).unwrap();
    let strict = UdpSocket::bind(&net, sa("0.0.0.0:0")).unwrap();
    strict.set_mtu_discover(PmtuDiscovery::Do).unwrap();
    let too_big = strict.send_to(&[5; PATH_MTU - 27], server).expect_err("EMSGSIZE");
    assert_eq!(too_big.raw_os_error(), Some(90), "{too_big}");
    strict.send_to(&[6; PATH_MTU - 28], server).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    u.send(b"end").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(net.stats().icmp_in, errors, "a datagram after the learning drew an ICMP error");
    println!("path MTU {} learned from {errors} ICMP error(s)", u.path_mtu().unwrap());
    net.shutdown().unwrap();
}

/// Polls `f` for up to 5 s until it gives `Some`.
fn wait_for<T>(f: impl FnMut() -> Option<T>) -> Option<T> {
    wait_for_secs(5, f)
}

/// Polls `f` for up to `secs` seconds until it gives `Some`.
fn wait_for_secs<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
