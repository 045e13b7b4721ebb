//! ustack against the Linux kernel, over TUN and TAP, in network
//! namespaces each test creates and removes. Every address used lives
//! inside the test's own namespace; nothing leaves it.
//!
//! These need root (network namespaces and TUN/TAP devices) and the tools
//! curl, python3, ping, socat and tshark, which `.ci/run` installs. They
//! are `#[ignore]`d for a plain `cargo test`; `.ci/run` runs them with
//! `--include-ignored`.

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use support::Namespace;

const NEEDS_ROOT: &str = "needs root, network namespaces and TUN/TAP: run with sudo .ci/run";

fn ustack_bin() -> &'static str {
    env!("CARGO_BIN_EXE_ustack")
}

/// A network namespace that is deleted, with everything in it, on drop.
struct Netns {
    ns: Namespace,
    children: Vec<Child>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl Netns {
    fn new(tag: &str) -> Netns {
        Netns { ns: Namespace::new(tag, NEEDS_ROOT), children: Vec::new() }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        self.ns.cmd(args)
    }

    /// Runs to completion; panics with its output if it fails.
    fn run(&self, args: &[&str]) -> Output {
        self.ns.run(args)
    }

    /// Starts `ustack up` and waits until its HTTP service answers.
    fn ustack_up(&mut self, extra: &[&str], host: &str, addr: &str) {
        let mut args = vec![ustack_bin(), "up", "--addr", addr, "--host-addr", host];
        args.extend_from_slice(extra);
        let child = self.cmd(&args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn ustack up");
        self.children.push(child);
        let ip = addr.split('/').next().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ok =
                self.cmd(&["curl", "-s", "-m", "1", &format!("http://{ip}/")]).output().map(|o| o.status.success());
            if ok.unwrap_or(false) {
                return;
            }
            assert!(Instant::now() < deadline, "ustack up did not start serving on {ip}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn spawn(&mut self, args: &[&str]) {
        let child = self.cmd(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn");
        self.children.push(child);
    }

    /// Stops the first `ustack up` with Ctrl-C (SIGINT) and waits for it.
    fn stop_ustack(&mut self) -> String {
        let mut child = self.children.remove(0);
        let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        err
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = Command::new("kill").args(["-INT", &c.id().to_string()]).status();
        }
        std::thread::sleep(Duration::from_millis(200));
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        // The namespace itself goes with `self.ns`.
    }
}

fn tmpfile(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "ustack-interop-{}-{}-{name}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ))
}

/// Byte `i` of `/bytes/N` (see the HTTP service).
fn pattern(offset: u64, out: &mut [u8]) {
    for (k, b) in out.iter_mut().enumerate() {
        *b = ((offset + k as u64) % 251) as u8;
    }
}

/// Fetches `url` with curl inside `ns` and checks it is exactly `n` bytes of
/// the `/bytes` pattern, streaming (no 100 MiB buffer).
fn curl_bytes_checked(ns: &Netns, url: &str, n: u64) {
    let mut child = ns.cmd(&["curl", "-s", "-S", "-m", "180", url]).stdout(Stdio::piped()).spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let mut want = vec![0u8; 1 << 16];
    let mut off = 0u64;
    loop {
        let k = out.read(&mut buf).unwrap();
        if k == 0 {
            break;
        }
        pattern(off, &mut want[..k]);
        assert!(buf[..k] == want[..k], "byte mismatch near offset {off} of {url}");
        off += k as u64;
    }
    assert!(child.wait().unwrap().success(), "curl {url} failed");
    assert_eq!(off, n, "{url}: got {off} bytes, want {n}");
}

/// POSTs `len` random bytes to ustack's `/echo` with curl inside `ns` and
/// checks that the same bytes come back.
fn echo_round_trip(ns: &Netns, len: usize, timeout_s: u32, what: &str) {
    let up = random_file(len);
    let back = tmpfile("echo.bin");
    ns.run(&[
        "curl",
        "-s",
        "-S",
        "-m",
        &timeout_s.to_string(),
        "--data-binary",
        &format!("@{}", up.display()),
        "-o",
        back.to_str().unwrap(),
        "http://10.7.0.2/echo",
    ]);
    assert!(same_file(&up, &back), "POST /echo {what} did not return the body");
    for f in [up, back] {
        let _ = std::fs::remove_file(f);
    }
}

/// A counter from ustack's `/stats` JSON.
fn stat(stats: &str, name: &str) -> u64 {
    stats
        .split(&format!("\"{name}\":"))
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /stats: {stats}"))
}

fn random_file(len: usize) -> PathBuf {
    let p = tmpfile("random.bin");
    let mut data = vec![0u8; len];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d ^ len as u64;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(&p, &data).unwrap();
    p
}

fn same_file(a: &Path, b: &Path) -> bool {
    std::fs::read(a).unwrap() == std::fs::read(b).unwrap()
}

/// How many packets of `pcap` match the display filter `filter`.
fn tshark_count(pcap: &Path, filter: &str) -> usize {
    let out = Command::new("tshark").arg("-n").arg("-r").arg(pcap).args(["-Y", filter]).output().unwrap();
    assert!(out.status.success(), "tshark -Y {filter:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// tshark finds no malformed packet, no bad checksum and no conflicting
/// bytes for one sequence number in `pcap`. One kind of error of tshark's
/// own reassembly is let through: on a lossy path it reports an exact
/// retransmission that arrives after it finished an HTTP message, one
/// reaching past that message's end, as "new fragment overlaps old data"
/// (the retransmitted bytes were checked equal to the original's). A
/// segment whose bytes differ from an earlier copy's is still caught, by
/// `tcp.segment.overlap.conflict`.
fn tshark_clean(pcap: &Path) {
    let out = Command::new("tshark")
        .arg("-n")
        .arg("-r")
        .arg(pcap)
        .args(["-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE"])
        .args([
            "-Y",
            "(_ws.malformed && !_ws.malformed.reassembly) || tcp.segment.overlap.conflict \
             || tcp.checksum.status == 2 || ip.checksum.status == 2 || udp.checksum.status == 2",
        ])
        .output()
        .expect("tshark is needed (apt-get install tshark)");
    assert!(out.status.success(), "tshark failed on {}: {}", pcap.display(), String::from_utf8_lossy(&out.stderr));
    let bad = String::from_utf8_lossy(&out.stdout);
    assert!(bad.trim().is_empty(), "tshark found problems in {}:\n{bad}", pcap.display());
    let count =
        Command::new("tshark").arg("-r").arg(pcap).output().unwrap().stdout.iter().filter(|&&b| b == b'\n').count();
    assert!(count > 10, "the pcap holds only {count} packets");
}

/// The kernel-side tests, as one Python program: echo with half-close,
/// 200 concurrent echo connections each checked, UDP echo, a closed TCP
/// port refused by RST, and a closed UDP port reported by ICMP.
const PY_CLIENTS: &str = r#"
import socket, threading, os, sys
HOST = sys.argv[1]
s = socket.create_connection((HOST, 7), timeout=30)
data = os.urandom(1 << 20)
def writer():
    s.sendall(data); s.shutdown(socket.SHUT_WR)
t = threading.Thread(target=writer); t.start()
got = bytearray()
while True:
    b = s.recv(65536)
    if not b: break
    got += b
t.join(); s.close()
assert bytes(got) == data, f"echo mismatch: {len(got)} bytes back"
errs = []
def one(i):
    try:
        c = socket.create_connection((HOST, 7), timeout=60)
        msg = (f"connection {i} " * 200).encode()
        c.sendall(msg); c.shutdown(socket.SHUT_WR)
        r = bytearray()
        while True:
            b = c.recv(65536)
            if not b: break
            r += b
        c.close()
        if bytes(r) != msg: errs.append((i, len(r)))
    except Exception as e:
        errs.append((i, repr(e)))
ts = [threading.Thread(target=one, args=(i,)) for i in range(200)]
[t.start() for t in ts]; [t.join() for t in ts]
assert not errs, f"concurrent echo failures: {errs[:5]}"
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(5)
u.sendto(b"hello udp", (HOST, 7))
assert u.recvfrom(100)[0] == b"hello udp"
try:
    socket.create_connection((HOST, 4444), timeout=5)
    raise AssertionError("connected to a closed port")
except ConnectionRefusedError:
    pass
v = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); v.settimeout(5); v.connect((HOST, 4444)); v.send(b"x")
try:
    v.recv(10)
    raise AssertionError("data from a closed UDP port")
except ConnectionRefusedError:
    pass
print("python clients ok")
"#;

fn kernel_clients_against_ustack_up(tap: bool) {
    let mut ns = Netns::new(if tap { "tap" } else { "tun" });
    let mut extra = vec!["--tun", "ust0"];
    if tap {
        extra.push("--tap");
    }
    // The large transfers first, without a capture (tshark would take
    // minutes over 130 MB of packets).
    ns.ustack_up(&extra, "10.7.0.1/24", "10.7.0.2/24");
    curl_bytes_checked(&ns, "http://10.7.0.2/bytes/104857600", 104_857_600);
    echo_round_trip(&ns, 10 << 20, 120, "");
    let log = ns.stop_ustack();
    assert!(log.contains("removed device ust0"), "ustack did not clean up:\n{log}");
    let links = ns.run(&["ip", "link", "show"]);
    assert!(!String::from_utf8_lossy(&links.stdout).contains("ust0"), "the device is still there");

    // Then everything else, captured, and the capture checked by tshark.
    let pcap = tmpfile("up.pcap");
    let pcap_s = pcap.to_str().unwrap().to_string();
    extra.extend(["--pcap", pcap_s.as_str()]);
    ns.ustack_up(&extra, "10.7.0.1/24", "10.7.0.2/24");
    let page = ns.run(&["curl", "-s", "-S", "-m", "10", "http://10.7.0.2/"]);
    assert!(String::from_utf8_lossy(&page.stdout).contains("Hello from ustack"));
    curl_bytes_checked(&ns, "http://10.7.0.2/bytes/1000000", 1_000_000);
    let stats = ns.run(&["curl", "-s", "-m", "10", "http://10.7.0.2/stats"]);
    let stats = String::from_utf8_lossy(&stats.stdout).to_string();
    assert!(stats.contains("\"segments_in\""), "{stats}");
    // The megabyte went to the kernel in TSO super-packets (the offload
    // header is on by default), and the kernel took them: curl checked
    // every byte.
    let gso = stat(&stats, "tx_gso_segments");
    assert!(gso >= 100, "only {gso} segments went in GSO super-packets: {stats}");
    let py = ns.run(&["python3", "-c", PY_CLIENTS, "10.7.0.2"]);
    assert!(String::from_utf8_lossy(&py.stdout).contains("python clients ok"));
    let ping = ns.run(&["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.7.0.2"]);
    assert!(String::from_utf8_lossy(&ping.stdout).contains("3 received"));
    ns.stop_ustack();
    tshark_clean(&pcap);
    let _ = std::fs::remove_file(pcap);
}

#[test]
#[ignore = "needs root, network namespaces and TUN/TAP: run with sudo .ci/run"]
fn kernel_clients_over_tun() {
    kernel_clients_against_ustack_up(false);
}

#[test]
#[ignore = "needs root, network namespaces and TUN/TAP: run with sudo .ci/run"]
fn kernel_clients_over_tap() {
    kernel_clients_against_ustack_up(true);
}

/// `ustack up --any-ip` as a VPN client's or transparent proxy's device:
/// the kernel routes a whole network (10.99.0.0/16, inside the test's
/// namespace only) to ustack, and ustack answers as whatever address in it
/// a client asked for: curl's HTTP requests to two of them (the page says
/// which address and port it reached), a checked download, ping.
#[test]
#[ignore = "needs root, network namespaces and TUN/TAP: run with sudo .ci/run"]
fn kernel_reaches_any_address_routed_to_ustack_up_any_ip() {
    let mut ns = Netns::new("anyip");
    ns.ustack_up(&["--tun", "uany0", "--any-ip"], "10.15.0.1/24", "10.15.0.2/24");
    ns.run(&["ip", "route", "add", "10.99.0.0/16", "via", "10.15.0.2"]);
    for ip in ["10.99.5.5", "10.99.200.1"] {
        let page = ns.run(&["curl", "-s", "-S", "-m", "10", &format!("http://{ip}/whoami")]);
        let page = String::from_utf8_lossy(&page.stdout).to_string();
        assert!(page.starts_with(&format!("you reached {ip}:80 from 10.15.0.1:")), "{page}");
    }
    curl_bytes_checked(&ns, "http://10.99.31.4/bytes/1000000", 1_000_000);
    let ping = ns.run(&["ping", "-c", "2", "-i", "0.2", "-W", "2", "10.99.7.7"]);
    let ping = String::from_utf8_lossy(&ping.stdout).to_string();
    assert!(ping.contains("64 bytes from 10.99.7.7") && ping.contains("2 received"), "{ping}");
    ns.stop_ustack();
}

/// A SOCKS5 server on loopback for `ustack tun2socks`: it says which
/// destination it was asked for, then echoes until end of file; it refuses
/// port 9. A UDP association (its relay named 0.0.0.0, "the proxy's own
/// address") answers each datagram from the address it was for, with the
/// association's number, the destination and the data.
const PY_SOCKS: &str = r#"
import socket, struct, threading
associations = [0]
def associate(c):
    associations[0] += 1
    n = associations[0]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    c.sendall(b"\x05\x00\x00\x01\x00\x00\x00\x00" + struct.pack("!H", u.getsockname()[1]))
    def serve():
        while True:
            try:
                d, client = u.recvfrom(65536)
            except OSError:
                return
            if d[:4] != b"\x00\x00\x00\x01":
                continue
            ip, port = socket.inet_ntoa(d[4:8]), struct.unpack("!H", d[8:10])[0]
            head = ("via socks udp (association %d) to %s:%d: " % (n, ip, port)).encode()
            u.sendto(d[:10] + head + d[10:], client)
            if d[10:] == b"bye":
                c.shutdown(socket.SHUT_RDWR)
    threading.Thread(target=serve, daemon=True).start()
    while c.recv(100):
        pass
    u.close()
def handle(c):
    if not c.recv(3):
        return
    c.sendall(b"\x05\x00")
    req = b""
    while len(req) < 10:
        b = c.recv(10 - len(req))
        if not b:
            return
        req += b
    if req[1] == 3:
        associate(c)
        return
    ip, port = socket.inet_ntoa(req[4:8]), struct.unpack("!H", req[8:10])[0]
    if port == 9:
        c.sendall(b"\x05\x05\x00\x01" + b"\x00" * 6)
        c.close()
        return
    c.sendall(b"\x05\x00\x00\x01\x7f\x00\x00\x01\x04\x38")
    c.sendall(("via socks to %s:%d\n" % (ip, port)).encode())
    while True:
        b = c.recv(65536)
        if not b:
            break
        c.sendall(b)
    c.shutdown(socket.SHUT_WR)
    c.close()
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", 1080))
l.listen(16)
while True:
    c, _ = l.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
"#;

/// The kernel's client for `ustack tun2socks`: a megabyte through the
/// chain and back, then a connection the proxy refuses.
const PY_SOCKS_CLIENT: &str = r#"
import os, socket
s = socket.create_connection(("10.99.3.3", 4444), timeout=10)
f = s.makefile("rb")
print(f.readline().decode().strip())
data = os.urandom(1 << 20)
s.sendall(data)
s.shutdown(socket.SHUT_WR)
back = f.read()
print("echoed", len(back), back == data)
# (The reset may come before connect has read SO_ERROR: then connect
# raises it.)
try:
    r = socket.create_connection(("10.99.5.5", 9), timeout=10)
    got = r.recv(10)
    print("refused port: got", got)
except ConnectionResetError:
    print("refused port: reset")
"#;

/// The kernel's UDP clients for `ustack tun2socks`: one socket asks two
/// addresses, another socket one of them, and a 1400-byte datagram goes
/// through; each answer is printed with the address it came from. Then the
/// proxy ends the first association ("bye"), and the next datagram gets a
/// new one.
const PY_SOCKS_UDP_CLIENT: &str = r#"
import os, socket, time
def ask(s, dst, data):
    for _ in range(3):
        s.sendto(data, dst)
        try:
            return s.recvfrom(65536)
        except socket.timeout:
            pass
    return b"", None
a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
a.settimeout(3)
b.settimeout(3)
for s, dst, data in [(a, ("10.99.3.3", 53), b"query one"), (a, ("10.99.8.8", 5353), b"query two"), (b, ("10.99.3.3", 53), b"from b")]:
    back, src = ask(s, dst, data)
    print("%s:%d %s" % (src[0], src[1], back.decode()) if src else "no answer")
big = os.urandom(1400)
back, src = ask(a, ("10.99.9.9", 7), big)
print("big", src, back[-1400:] == big)
print(ask(a, ("10.99.3.3", 53), b"bye")[0].decode())
time.sleep(1.5)
print(ask(a, ("10.99.3.3", 53), b"again")[0].decode())
"#;

/// `ustack tun2socks`: the kernel routes 10.99.0.0/16 (inside the test's
/// namespace) to ustack, which carries each TCP connection through a
/// SOCKS5 server on the namespace's loopback to the address the client
/// asked for; a refusal by the proxy resets the client's connection. UDP
/// goes through the proxy's associations, one per client socket, and the
/// answers come back from the addresses the client asked.
#[test]
#[ignore = "needs root, network namespaces and TUN/TAP: run with sudo .ci/run"]
fn ustack_tun2socks_carries_the_kernels_connections_through_a_socks5_proxy() {
    let mut ns = Netns::new("socks");
    ns.spawn(&["python3", "-c", PY_SOCKS]);
    ns.spawn(&[
        ustack_bin(),
        "tun2socks",
        "--tun",
        "usocks0",
        "--addr",
        "10.18.0.2/24",
        "--host-addr",
        "10.18.0.1/24",
        "--socks",
        "127.0.0.1:1080",
    ]);
    // The device is up once the route to it can be added.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ns.cmd(&["ip", "route", "add", "10.99.0.0/16", "via", "10.18.0.2"]).status().is_ok_and(|s| s.success()) {
        assert!(Instant::now() < deadline, "ustack tun2socks did not bring its device up");
        std::thread::sleep(Duration::from_millis(100));
    }
    // And the proxy listens.
    let probe = "import socket; socket.create_connection(('127.0.0.1', 1080), timeout=1).close()";
    while !ns.cmd(&["python3", "-c", probe]).status().is_ok_and(|s| s.success()) {
        assert!(Instant::now() < deadline, "the SOCKS5 server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = ns.run(&["python3", "-c", PY_SOCKS_CLIENT]);
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    assert_eq!(lines, ["via socks to 10.99.3.3:4444", "echoed 1048576 True", "refused port: reset"]);
    let out = ns.run(&["python3", "-c", PY_SOCKS_UDP_CLIENT]);
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    assert_eq!(
        lines,
        [
            "10.99.3.3:53 via socks udp (association 1) to 10.99.3.3:53: query one",
            "10.99.8.8:5353 via socks udp (association 1) to 10.99.8.8:5353: query two",
            "10.99.3.3:53 via socks udp (association 2) to 10.99.3.3:53: from b",
            "big ('10.99.9.9', 7) True",
            "via socks udp (association 1) to 10.99.3.3:53: bye",
            "via socks udp (association 3) to 10.99.3.3:53: again",
        ]
    );
}

/// `ustack up --shards 2`: two stacks on a two-queue TUN device. The
/// kernel's clients (curl, Python's echo, concurrent, UDP and refused-port
/// clients, ping) cannot tell; `/stats` shows their connections served by
/// both shards.
#[test]
#[ignore = "needs root, network namespaces and TUN/TAP: run with sudo .ci/run"]
fn kernel_clients_against_two_shards() {
    let mut ns = Netns::new("shards");
    ns.ustack_up(&["--tun", "ust0", "--shards", "2"], "10.7.0.1/24", "10.7.0.2/24");
    curl_bytes_checked(&ns, "http://10.7.0.2/bytes/10485760", 10_485_760);
    let py = ns.run(&["python3", "-c", PY_CLIENTS, "10.7.0.2"]);
    assert!(String::from_utf8_lossy(&py.stdout).contains("python clients ok"));
    let ping = ns.run(&["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.7.0.2"]);
    assert!(String::from_utf8_lossy(&ping.stdout).contains("3 received"));
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..40 {
        let stats = ns.run(&["curl", "-s", "-m", "10", "http://10.7.0.2/stats"]);
        let stats = String::from_utf8_lossy(&stats.stdout).to_string();
        for shard in ["\"shard\":[0,2]", "\"shard\":[1,2]"] {
            if stats.contains(shard) {
                seen.insert(shard);
            }
        }
    }
    assert_eq!(seen.len(), 2, "40 connections all went to one shard: {seen:?}");
    let log = ns.stop_ustack();
    assert!(log.contains("2 shards") && log.contains("removed device ust0"), "{log}");
}

/// ustack as the client: `ustack get` from Python's http.server and
/// `ustack connect` to socat, each from its own TUN device.
#[test]
#[ignore = "needs root, network namespaces and TUN/TAP: run with sudo .ci/run"]
fn ustack_clients_against_kernel_servers() {
    let mut ns = Netns::new("cli");
    let dir = tmpfile("www");
    std::fs::create_dir_all(&dir).unwrap();
    let big = random_file(50 << 20);
    std::fs::rename(&big, dir.join("big.bin")).unwrap();
    // The kernel's servers listen on an address of the namespace's
    // loopback, reached through each TUN's gateway (the kernel's side).
    ns.run(&["ip", "addr", "add", "10.20.0.1/32", "dev", "lo"]);
    ns.spawn(&["python3", "-m", "http.server", "8000", "--bind", "10.20.0.1", "--directory", dir.to_str().unwrap()]);
    std::thread::sleep(Duration::from_millis(800));
    let got = tmpfile("got.bin");
    let pcap = tmpfile("get.pcap");
    ns.run(&[
        ustack_bin(),
        "get",
        "--tun",
        "ust1",
        "--addr",
        "10.9.0.2/24",
        "--host-addr",
        "10.9.0.1/24",
        "--gateway",
        "10.9.0.1",
        "--pcap",
        pcap.to_str().unwrap(),
        "http://10.20.0.1:8000/big.bin",
        "-o",
        got.to_str().unwrap(),
    ]);
    assert!(same_file(&dir.join("big.bin"), &got), "ustack get: file differs");
    tshark_clean(&pcap);

    let sink = tmpfile("socat.bin");
    ns.spawn(&[
        "socat",
        "-u",
        "TCP-LISTEN:9000,bind=10.20.0.1,reuseaddr",
        &format!("OPEN:{},creat,trunc", sink.display()),
    ]);
    std::thread::sleep(Duration::from_millis(500));
    let input = random_file(3 << 20);
    let st = ns
        .cmd(&[
            ustack_bin(),
            "connect",
            "--tun",
            "ust2",
            "--addr",
            "10.10.0.2/24",
            "--host-addr",
            "10.10.0.1/24",
            "--gateway",
            "10.10.0.1",
            "10.20.0.1:9000",
        ])
        .stdin(std::fs::File::open(&input).unwrap())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "ustack connect failed");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(sink.exists() && std::fs::metadata(&sink).map(|m| m.len()).unwrap_or(0) == 3 << 20)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(same_file(&input, &sink), "socat did not receive what ustack connect sent");
    let ping = ns.run(&[
        ustack_bin(),
        "ping",
        "--tun",
        "ust3",
        "--addr",
        "10.11.0.2/24",
        "--host-addr",
        "10.11.0.1/24",
        "-c",
        "2",
        "10.11.0.1",
    ]);
    assert!(String::from_utf8_lossy(&ping.stdout).contains("2 received"));
    let _ = std::fs::remove_dir_all(&dir);
    for f in [got, pcap, sink, input] {
        let _ = std::fs::remove_file(f);
    }
}

/// The same transfers over a bad path: 2% loss, 5% reordering, 1%
/// duplication, 5 ms delay. With `tc netem` when the kernel has it; this
/// machine's kernel is built without netem, so ustack's own `--impair`
/// (which applies the same faults both ways at the device) stands in.
#[test]
#[ignore = "needs root, network namespaces and TUN/TAP: run with sudo .ci/run"]
fn transfers_survive_a_lossy_reordering_path() {
    let mut ns = Netns::new("loss");
    let pcap = tmpfile("lossy.pcap");
    let pcap_s = pcap.to_str().unwrap().to_string();
    // Probe for netem on the namespace's own loopback.
    let netem = ns
        .cmd(&["tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if netem {
        ns.run(&["tc", "qdisc", "del", "dev", "lo", "root"]);
    }
    let spec = "loss=2%,reorder=5%,duplicate=1%,delay=5ms,seed=7";
    let mut extra = vec!["--tun", "ust0", "--pcap", pcap_s.as_str()];
    if !netem {
        extra.extend(["--impair", spec]);
    }
    ns.ustack_up(&extra, "10.7.0.1/24", "10.7.0.2/24");
    if netem {
        ns.run(&[
            "tc",
            "qdisc",
            "add",
            "dev",
            "ust0",
            "root",
            "netem",
            "loss",
            "2%",
            "reorder",
            "5%",
            "duplicate",
            "1%",
            "delay",
            "5ms",
        ]);
    }
    let start = Instant::now();
    curl_bytes_checked(&ns, "http://10.7.0.2/bytes/8388608", 8 << 20);
    echo_round_trip(&ns, 4 << 20, 300, "over the lossy path");
    let elapsed = start.elapsed();
    ns.stop_ustack();
    tshark_clean(&pcap);
    // No stall longer than a few RTOs: the longest silence between two
    // frames of the transfers (ustack's RTO floor is 200 ms, backoff doubles).
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&pcap)
        .args(["-Y", "tcp", "-T", "fields", "-e", "frame.time_relative"])
        .output()
        .unwrap();
    let times: Vec<f64> = String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.trim().parse().ok()).collect();
    let gap = times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    eprintln!("lossy transfers took {elapsed:?}, longest silence {gap:.3} s, netem: {netem}");
    assert!(gap < 3.5, "a stall of {gap:.3} s");
    let _ = std::fs::remove_file(pcap);
}

/// ECN (RFC 3168) with the Linux kernel: the namespace's kernel asks for it
/// (`net.ipv4.tcp_ecn=1`) and ustack, at its default, accepts. This
/// kernel has no AQM qdisc to mark packets, so ustack's `--impair ce=2%`
/// marks 2% of the ECN-capable packets CE where they cross the device, both
/// ways. A download (ustack sends, the kernel echoes the marks) and an
/// upload (the kernel sends, ustack echoes) arrive intact; ustack counts
/// the negotiated connections, the marks it received and its window
/// reductions, and the capture shows ustack's SYN-ACK accepting with ECE
/// alone, ECT(0) on data both ways, and the kernel's CWR answering
/// ustack's ECE.
#[test]
#[ignore = "needs root, network namespaces and TUN/TAP: run with sudo .ci/run"]
fn ecn_with_the_kernel_marks_echoed_and_answered_both_ways() {
    let mut ns = Netns::new("ecn");
    ns.run(&["sysctl", "-q", "-w", "net.ipv4.tcp_ecn=1"]);
    let pcap = tmpfile("ecn.pcap");
    let pcap_s = pcap.to_str().unwrap().to_string();
    ns.ustack_up(&["--tun", "ust0", "--pcap", &pcap_s, "--impair", "ce=5%,seed=3"], "10.7.0.1/24", "10.7.0.2/24");
    curl_bytes_checked(&ns, "http://10.7.0.2/bytes/4194304", 4 << 20);
    // The kernel's data reaches ustack in GSO super-packets of up to 64
    // KiB: 4 MiB was as few as 64 frames, so that no frame was marked CE
    // about one run in five, and the capture held fewer than 100 of the
    // kernel's data frames. 16 MiB is at least 256 frames.
    echo_round_trip(&ns, 16 << 20, 120, "with ECN");
    let stats = ns.run(&["curl", "-s", "-m", "10", "http://10.7.0.2/stats"]);
    let stats = String::from_utf8_lossy(&stats.stdout).to_string();
    let counter = |name: &str| stat(&stats, name);
    // The readiness probe, the download and the upload all asked for ECN.
    assert!(counter("ecn_connections") >= 3, "{stats}");
    assert!(counter("ecn_ce_received") > 0, "no CE mark reached ustack: {stats}");
    assert!(counter("ecn_reductions") > 0, "ustack never answered the kernel's ECE: {stats}");
    ns.stop_ustack();
    tshark_clean(&pcap);
    let count = |filter: &str| tshark_count(&pcap, filter);
    let (kernel, ustack) = ("ip.src == 10.7.0.1", "ip.src == 10.7.0.2");
    let syn = "tcp.flags.syn == 1 && tcp.flags.ack == 0";
    let synack = "tcp.flags.syn == 1 && tcp.flags.ack == 1";
    assert!(count(&format!("{kernel} && {syn} && tcp.flags.ece == 1 && tcp.flags.cwr == 1")) >= 3);
    assert_eq!(count(&format!("{ustack} && {synack} && !(tcp.flags.ece == 1 && tcp.flags.cwr == 0)")), 0);
    assert!(count(&format!("{ustack} && tcp.len > 0 && ip.dsfield.ecn == 2")) > 100, "ustack's data is ECT(0)");
    assert!(count(&format!("{kernel} && tcp.len > 0 && ip.dsfield.ecn == 2")) > 100, "the kernel's data is ECT(0)");
    assert!(count(&format!("{ustack} && tcp.flags.syn == 0 && tcp.flags.ece == 1")) > 0, "ustack echoed CE");
    assert!(count(&format!("{kernel} && tcp.flags.syn == 0 && tcp.flags.cwr == 1")) > 0, "the kernel answered");
    let _ = std::fs::remove_file(pcap);
}

/// An idle stack does not spin: the driver sleeps in poll(2) until a frame,
/// a timer or an API call; over two idle seconds it uses almost no CPU.
#[test]
#[ignore = "needs root, network namespaces and TUN/TAP: run with sudo .ci/run"]
fn idle_stack_uses_no_cpu() {
    let mut ns = Netns::new("idle");
    ns.ustack_up(&["--tun", "ust0"], "10.7.0.1/24", "10.7.0.2/24");
    let pid = ns.children[0].id();
    let cpu = |pid: u32| -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    };
    std::thread::sleep(Duration::from_millis(500));
    let before = cpu(pid);
    std::thread::sleep(Duration::from_secs(2));
    let ticks = cpu(pid) - before;
    // Clock ticks are 10 ms: at most 3 ticks in 2 s is under 1.5% CPU.
    assert!(ticks <= 3, "an idle ustack used {ticks} clock ticks of CPU in 2 s");
    ns.stop_ustack();
}

#[test]
fn without_root_the_error_says_how_to_fix_it() {
    // This runs for everyone: as root it checks a bad device name instead.
    let out = Command::new(ustack_bin())
        .args(["up", "--tun", "this-name-is-too-long", "--addr", "10.7.0.2/24"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sudo") || err.contains("not a valid interface name"), "{err}");
    let out = Command::new(ustack_bin()).args(["up", "--tun", "x", "--addr", "10.7.0.2"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("no prefix length"));
    let out = Command::new(ustack_bin())
        .args(["connect", "--tun", "x", "--addr", "10.7.0.2/24", "10.7.0.1:99999"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a port"));
    for (args, says) in [
        (&["--shards", "0"][..], "use 1 to 64"),
        (&["--shards", "two"][..], "not a number of shards"),
        (&["--shards", "2", "--tap"][..], "--shards needs a TUN device"),
    ] {
        let out =
            Command::new(ustack_bin()).args(["up", "--tun", "x", "--addr", "10.7.0.2/24"]).args(args).output().unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

/// A Linux TCP client with TCP_MD5SIG (setsockopt 14, `struct tcp_md5sig`)
/// against ustack's echo service with the same key for it: the transfer
/// works with every segment signed both ways; with another key the kernel
/// never gets a connection and ustack counts the bad signatures.
const MD5_CLIENT: &str = r#"
import socket, struct, sys, threading
key, n = sys.argv[1].encode(), int(sys.argv[2])
s = socket.socket()
s.bind(("10.7.0.3", 0))
peer = (struct.pack("=H", socket.AF_INET) + struct.pack("!H", 0) + socket.inet_aton("10.7.0.2")).ljust(128, b"\0")
s.setsockopt(socket.IPPROTO_TCP, 14, peer + struct.pack("=BBHi", 0, 0, len(key), 0) + key.ljust(80, b"\0"))
s.settimeout(5)
try:
    s.connect(("10.7.0.2", 7))
except (socket.timeout, TimeoutError):
    print("timeout")
    sys.exit(0)
data = bytes((i * 131 + (i >> 8) * 7) & 255 for i in range(n))
def writer():
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
t = threading.Thread(target=writer)
t.start()
got = bytearray()
while True:
    b = s.recv(65536)
    if not b:
        break
    got += b
t.join()
assert bytes(got) == data, (len(got), n)
print("ok", len(got))
"#;

/// The kernel's TCP Fast Open client (RFC 7413): three echoes with
/// MSG_FASTOPEN, then the kernel's own counts from /proc/net/netstat: how
/// many of its SYNs carried data the server acknowledged
/// (TCPFastOpenActive), and how many fell back (TCPFastOpenActiveFail).
const PY_FAST_OPEN_CLIENT: &str = r#"
import socket, sys
host = sys.argv[1]
def echo(msg):
    s = socket.socket()
    # (Blocking: with a timeout, sendto would return EINPROGRESS.)
    s.sendto(msg, socket.MSG_FASTOPEN, (host, 7))
    s.settimeout(10)
    back = b""
    while len(back) < len(msg):
        b = s.recv(4096)
        if not b:
            break
        back += b
    s.close()
    return back == msg
def tcpext():
    lines = [l.split() for l in open("/proc/net/netstat") if l.startswith("TcpExt:")]
    return dict(zip(lines[0][1:], map(int, lines[1][1:])))
before = tcpext()
print(echo(b"the first asks for a cookie"), echo(b"the second rides in the SYN"), echo(b"and the third"))
after = tcpext()
print("active", after["TCPFastOpenActive"] - before["TCPFastOpenActive"],
      "fail", after["TCPFastOpenActiveFail"] - before["TCPFastOpenActiveFail"])
"#;

/// TCP Fast Open against the kernel: `ustack up --fast-open 16`, and
/// Python's MSG_FASTOPEN client in the namespace (`tcp_fastopen=1`, the
/// client side). The first connection gets a cookie; the next two carry
/// their data in the SYN, and the kernel counts both as Fast Open opens
/// whose data was acknowledged, none failed; ustack's counters agree, and
/// tshark sees the cookie option on the SYNs with data.
#[test]
#[ignore = "needs root, network namespaces and TUN/TAP: run with sudo .ci/run"]
fn kernel_fast_open_client_against_ustack_rfc7413() {
    let mut ns = Netns::new("tfo");
    let pcap = tmpfile("tfo.pcap");
    let pcap_s = pcap.to_str().unwrap().to_string();
    ns.run(&["sysctl", "-q", "-w", "net.ipv4.tcp_fastopen=1"]);
    ns.ustack_up(&["--tun", "ust0", "--pcap", &pcap_s, "--fast-open", "16"], "10.7.0.1/24", "10.7.0.2/24");
    let out = ns.run(&["python3", "-c", PY_FAST_OPEN_CLIENT, "10.7.0.2"]);
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    assert_eq!(lines, ["True True True", "active 2 fail 0"]);
    let stats = ns.run(&["curl", "-s", "-m", "10", "http://10.7.0.2/stats"]);
    let stats = String::from_utf8_lossy(&stats.stdout).to_string();
    assert_eq!(stat(&stats, "fast_open_syn_data"), 2, "{stats}");
    assert!(stat(&stats, "fast_open_cookies_sent") >= 1, "{stats}");
    ns.stop_ustack();
    tshark_clean(&pcap);
    let syn_data = "tcp.flags.syn == 1 && tcp.flags.ack == 0 && tcp.len > 0 && tcp.option_kind == 34";
    assert_eq!(tshark_count(&pcap, syn_data), 2, "two SYNs with a cookie and data");
}

#[test]
#[ignore = "needs root, network namespaces and TUN/TAP: run with sudo .ci/run"]
fn kernel_md5_client_against_ustack_rfc2385() {
    let mut ns = Netns::new("md5");
    let pcap = tmpfile("md5.pcap");
    let pcap_s = pcap.to_str().unwrap().to_string();
    ns.ustack_up(
        &["--tun", "ust0", "--pcap", &pcap_s, "--md5-key", "10.7.0.3=kernel and ustack share this"],
        "10.7.0.1/24",
        "10.7.0.2/24",
    );
    // The signing client speaks from a second address of the kernel's side;
    // the readiness probe (curl, unsigned) from the first is unaffected.
    ns.run(&["ip", "addr", "add", "10.7.0.3/24", "dev", "ust0"]);
    let out = ns.run(&["python3", "-c", MD5_CLIENT, "kernel and ustack share this", "300000"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok 300000");
    let out = ns.run(&["python3", "-c", MD5_CLIENT, "a wrong key", "1000"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "timeout", "a wrong key must not connect");
    let stats = ns.run(&["curl", "-s", "-m", "10", "http://10.7.0.2/stats"]);
    let stats = String::from_utf8_lossy(&stats.stdout).to_string();
    assert!(stat(&stats, "tcp_md5_failure") > 0, "{stats}");
    // (Only the drop reasons that happened are listed.)
    assert!(!stats.contains("tcp_md5_not_found") && !stats.contains("tcp_md5_unexpected"), "{stats}");
    ns.stop_ustack();
    tshark_clean(&pcap);
    let count = |filter: &str| tshark_count(&pcap, filter);
    let signed = "ip.addr == 10.7.0.3 && tcp.option_kind == 19";
    assert!(count(&format!("{signed} && ip.src == 10.7.0.2 && tcp.len > 0")) > 50, "ustack's data is signed");
    assert!(count(&format!("{signed} && ip.src == 10.7.0.3 && tcp.len > 0")) > 50, "the kernel's data is signed");
    assert_eq!(count("ip.addr == 10.7.0.3 && !(tcp.option_kind == 19)"), 0, "every segment is signed");
    let _ = std::fs::remove_file(pcap);
}
