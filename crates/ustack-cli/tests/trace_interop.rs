//! `ustack trace` against tshark on a real capture: two Linux kernels in
//! network namespaces joined by a veth pair, a few percent of packets
//! dropped by iptables on each side, bulk transfers between them captured
//! by tcpdump. `ustack trace` must find every connection and mark exactly
//! the frames tshark marks as retransmissions (and as duplicate ACKs and
//! out-of-order segments).
//!
//! Needs root (namespaces, veth, iptables) and tcpdump, iptables, python3
//! and tshark, which `.ci/run` installs; `#[ignore]`d for a plain
//! `cargo test`. Every address lives inside the test's own namespaces.
//!
//! A capture that fails the comparison is kept (the message names it);
//! `USTACK_TRACE_INTEROP_KEEP=DIR` keeps every capture in DIR, and
//! `USTACK_TRACE_INTEROP_RUNS=N` runs the scenario N times (each with
//! fresh namespaces), stopping at the first that fails.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use support::Namespace;

const NEEDS_ROOT: &str = "needs root, network namespaces, veth and iptables: run with sudo .ci/run";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A network namespace that is deleted, with everything in it, on drop.
struct Netns {
    ns: Namespace,
    children: Vec<Child>,
}

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

    /// Starts a process that the namespace stops when dropped; returns its
    /// index.
    fn spawn(&mut self, args: &[&str]) -> usize {
        self.spawn_with_stderr(args, Stdio::null())
    }

    fn spawn_with_stderr(&mut self, args: &[&str], stderr: Stdio) -> usize {
        let child = self.cmd(args).stdout(Stdio::null()).stderr(stderr).spawn().expect("spawn");
        self.children.push(child);
        self.children.len() - 1
    }

    /// Stops child `i` with SIGINT (tcpdump then flushes its file) and
    /// waits for it.
    fn interrupt(&mut self, i: usize) {
        let c = &mut self.children[i];
        let _ = Command::new("kill").args(["-INT", &c.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for c in &mut self.children {
            if let Ok(None) = c.try_wait() {
                let _ = Command::new("kill").args(["-INT", &c.id().to_string()]).status();
            }
        }
        std::thread::sleep(Duration::from_millis(200));
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        // The namespace itself goes with `self.ns`.
    }
}

/// A veth pair, deleted on drop if it is still in the root namespace
/// (once moved into the namespaces, it goes with them).
struct Veth(String);

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).stderr(Stdio::null()).status();
    }
}

/// A capture file, removed on drop unless it is to be kept: always
/// with `USTACK_TRACE_INTEROP_KEEP`, and when the test fails on it (so the
/// failure can be looked at in Wireshark).
struct Capture {
    path: PathBuf,
    keep: bool,
}

impl Capture {
    fn new(name: &str) -> Capture {
        match std::env::var_os("USTACK_TRACE_INTEROP_KEEP") {
            Some(dir) => {
                let _ = std::fs::create_dir_all(&dir);
                Capture { path: PathBuf::from(dir).join(name), keep: true }
            }
            None => Capture { path: std::env::temp_dir().join(name), keep: false },
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if self.keep || std::thread::panicking() {
            eprintln!("capture kept: {}", self.path.display());
        } else {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

const RECEIVER: &str = r#"
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 5001))
s.listen(8)
s.settimeout(60)
for _ in range(int(sys.argv[1])):
    c, _ = s.accept()
    c.settimeout(60)
    n = 0
    while True:
        b = c.recv(65536)
        if not b:
            break
        n += len(b)
    c.sendall(b"got %d\n" % n)
    c.close()
"#;

const SENDER: &str = r#"
import socket, sys, time
def connect():
    # The receiver may still be starting on a busy machine.
    for _ in range(100):
        try:
            return socket.create_connection((sys.argv[1], 5001), timeout=60)
        except ConnectionRefusedError:
            time.sleep(0.1)
    raise SystemExit("the receiver never listened")

for i in range(int(sys.argv[2])):
    s = connect()
    # Paced (about 16 MB/s), so tcpdump keeps up on a busy machine.
    chunk = bytes(range(256)) * 64
    for _ in range(int(sys.argv[3]) // len(chunk)):
        s.sendall(chunk)
        time.sleep(0.001)
    s.shutdown(socket.SHUT_WR)
    reply = b""
    while True:
        b = s.recv(100)
        if not b:
            break
        reply += b
    print(reply.decode().strip())
    s.close()
"#;

/// Frames tshark shows for a display filter.
fn tshark_frames(pcap: &Path, filter: &str) -> BTreeSet<u64> {
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(pcap)
        .args(["-Y", filter, "-T", "fields", "-e", "frame.number"])
        .output()
        .expect("tshark is needed for this test: run .ci/run");
    assert!(out.status.success(), "tshark failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// Frames `ustack trace` marks with a note containing `needle`: the
/// frame number is the `#N` note of each row.
fn ustack_frames(trace: &str, needle: &str) -> BTreeSet<u64> {
    trace
        .lines()
        .filter(|l| l.contains(needle))
        .filter_map(|l| {
            let tail = l.rsplit('│').next()?;
            tail.split_whitespace().find_map(|w| w.strip_prefix('#')?.parse().ok())
        })
        .collect()
}

#[test]
#[ignore = "needs root, network namespaces, veth, iptables and tcpdump: run with sudo .ci/run"]
fn trace_finds_every_connection_and_retransmission_tshark_finds() {
    let runs: u32 = std::env::var("USTACK_TRACE_INTEROP_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    for run in 1..=runs {
        let summary = lossy_transfers_marked_as_tshark_marks_them();
        if runs > 1 {
            eprintln!("run {run}/{runs}: {summary}");
        }
    }
}

/// One run of the scenario: the transfers, the capture and the
/// comparisons; returns a line on what tshark found.
fn lossy_transfers_marked_as_tshark_marks_them() -> String {
    const CONNECTIONS: usize = 3;
    const BYTES: usize = 1_500_000;
    let a = Netns::new("tra");
    let mut b = Netns::new("trb");
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let (va, vb) = (format!("utr{}a{n}", std::process::id() % 10000), format!("utr{}b{n}", std::process::id() % 10000));
    let st = Command::new("ip")
        .args(["link", "add", &va, "type", "veth", "peer", "name", &vb])
        .status()
        .expect("ip link add");
    assert!(st.success(), "cannot create a veth pair: {NEEDS_ROOT}");
    let _veth = Veth(va.clone());
    for (ns, dev, addr) in [(&a, &va, "10.201.7.1/24"), (&b, &vb, "10.201.7.2/24")] {
        let st = Command::new("ip").args(["link", "set", dev, "netns", &ns.ns.name]).status().unwrap();
        assert!(st.success());
        ns.run(&["ip", "addr", "add", addr, "dev", dev]);
        ns.run(&["ip", "link", "set", dev, "up"]);
        // One segment per packet (no GSO super-packets), so a capture has
        // thousands of frames and a loss costs one segment; older
        // iproute2 may not know the option, which only makes the test
        // easier.
        let _ = ns.cmd(&["ip", "link", "set", "dev", dev, "gso_max_segs", "1"]).output();
    }
    // Drop a few percent of what each side receives: data on the
    // receiver, ACKs on the sender. tcpdump on the receiver's veth sees
    // every packet before netfilter drops it.
    b.run(&["iptables", "-A", "INPUT", "-m", "statistic", "--mode", "random", "--probability", "0.03", "-j", "DROP"]);
    a.run(&["iptables", "-A", "INPUT", "-m", "statistic", "--mode", "random", "--probability", "0.02", "-j", "DROP"]);

    let pcap = Capture::new(&format!("ustack-trace-interop-{}-{n}.pcap", std::process::id()));
    let pcap_s = pcap.path.to_str().unwrap().to_string();
    let log_path = pcap.path.with_extension("tcpdump.log");
    let log = std::fs::File::create(&log_path).expect("tcpdump's log");
    // Headers only (the analysis reads lengths from the IP header, as
    // tshark does) into a large buffer, handed over a block at a time
    // rather than woken for every packet: on a busy machine tcpdump then
    // keeps up, and the capture holds every packet the veth carried.
    let tcpdump = b.spawn_with_stderr(
        &["tcpdump", "-n", "-Z", "root", "-i", &vb, "-s", "128", "-B", "32768", "-U", "-w", &pcap_s, "tcp"],
        Stdio::from(log),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::metadata(&pcap.path).map(|m| m.len()).unwrap_or(0) < 24 {
        assert!(Instant::now() < deadline, "tcpdump did not start (install tcpdump)");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    b.spawn(&["python3", "-c", RECEIVER, &CONNECTIONS.to_string()]);
    std::thread::sleep(Duration::from_millis(300));
    let out = a.run(&["python3", "-c", SENDER, "10.201.7.2", &CONNECTIONS.to_string(), &BYTES.to_string()]);
    let replies = String::from_utf8_lossy(&out.stdout).to_string();
    let expect = format!("got {}", BYTES / 16384 * 16384);
    assert_eq!(replies.lines().filter(|l| l.trim() == expect).count(), CONNECTIONS, "{replies}");
    // Let the last FINs and ACKs through, and tcpdump's ring buffer hand
    // over its last block (it does within a second), then stop the
    // capture.
    std::thread::sleep(Duration::from_millis(2500));
    b.interrupt(tcpdump);
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let _ = std::fs::remove_file(&log_path);
    // What the failure messages say about the capture.
    let dropped = log.lines().find(|l| l.contains("dropped by kernel")).unwrap_or("").trim().to_string();
    let capture = format!("capture {} ({dropped})", pcap.path.display());

    let trace = Command::new(env!("CARGO_BIN_EXE_ustack")).arg("trace").arg(&pcap.path).output().unwrap();
    assert!(trace.status.success(), "ustack trace failed: {}", String::from_utf8_lossy(&trace.stderr));
    let trace = String::from_utf8(trace.stdout).unwrap();
    let list = Command::new(env!("CARGO_BIN_EXE_ustack")).arg("trace").arg(&pcap.path).arg("--list").output().unwrap();
    let list = String::from_utf8(list.stdout).unwrap();

    // Every connection: as many as tshark's TCP streams, each carrying
    // the whole transfer client to server.
    let streams = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(&pcap.path)
        .args(["-T", "fields", "-e", "tcp.stream"])
        .output()
        .expect("tshark");
    let streams: BTreeSet<String> =
        String::from_utf8(streams.stdout).unwrap().lines().map(|s| s.trim().to_string()).collect();
    let rows: Vec<&str> = list.lines().skip(1).collect();
    assert_eq!(rows.len(), CONNECTIONS, "{list}\n{capture}");
    assert_eq!(streams.len(), CONNECTIONS, "tshark streams {streams:?}\n{list}\n{capture}");
    for r in &rows {
        let cols: Vec<&str> = r.split_whitespace().collect();
        assert!(cols[2].ends_with(":5001"), "the receiver is on the right: {r}\n{capture}");
        // All of it unless the capture itself dropped packets (tcpdump
        // on a busy machine); the comparisons below hold either way.
        let sent: usize = cols[4].parse().unwrap();
        assert!(sent >= BYTES / 2, "{r}\n{capture}");
    }

    let ours = ustack_frames(&trace, "retransmission)");
    let theirs = tshark_frames(&pcap.path, "tcp.analysis.retransmission");
    assert!(!theirs.is_empty(), "with 2-3% loss, tshark should see retransmissions\n{capture}");
    assert_eq!(
        ours,
        theirs,
        "retransmissions: only ustack {:?}, only tshark {:?}\n{capture}",
        ours.difference(&theirs).collect::<Vec<_>>(),
        theirs.difference(&ours).collect::<Vec<_>>()
    );
    let mut summary = format!("{} retransmissions", theirs.len());
    for (needle, filter) in
        [("(duplicate ACK", "tcp.analysis.duplicate_ack"), ("(out-of-order)", "tcp.analysis.out_of_order")]
    {
        let ours = ustack_frames(&trace, needle);
        let theirs = tshark_frames(&pcap.path, filter);
        assert_eq!(
            ours,
            theirs,
            "{filter}: only ustack {:?}, only tshark {:?}\n{capture}",
            ours.difference(&theirs).collect::<Vec<_>>(),
            theirs.difference(&ours).collect::<Vec<_>>()
        );
        summary.push_str(&format!(", {} {}", theirs.len(), filter.trim_start_matches("tcp.analysis.")));
    }
    summary.push_str(&format!("; {dropped}"));
    drop(a);
    drop(b);
    summary
}
