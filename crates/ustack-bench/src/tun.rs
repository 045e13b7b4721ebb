//! The cases against the Linux kernel (root only): ustack on a TUN device in
//! a network namespace of its own, the kernel on the other side of the
//! device; smoltcp on the same setup; and kernel↔kernel over a veth pair
//! between two namespaces as the ceiling.
//!
//! Every side runs as a subprocess of this binary inside its namespace
//! (`ip netns exec NS <this binary> peer <role> ...`), so nothing but
//! `ip` is needed. Each run gets fresh namespaces, removed afterwards by
//! drop guards (also on panic or error); children are killed first. All
//! addresses live inside those namespaces.
//!
//! The side that measures prints one line, `result key=value ...`, on
//! stdout; servers print `ready` once they listen. Timing starts when the
//! connection is there (accept, or the first connect of a loop) and stops
//! when the receiver has counted everything.

use crate::{Common, Row, median, progress};
use smoltcp::iface::{Config as SmolConfig, Interface, SocketSet};
use smoltcp::phy::{Medium as SmolMedium, TunTapInterface, wait as smol_wait};
use smoltcp::socket::tcp as smol_tcp;
use smoltcp::time::{Duration as SmolDuration, Instant as SmolInstant};
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};
use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use ustack::blocking::{TcpListener as UListener, TcpStream as UStream};
use ustack::phy::tun::{TunDevice, TunOptions};
use ustack::{DriverOptions, NetStack, StackConfig};

/// The kernel's address on the TUN device, and the user-space stack's.
const TUN_HOST: &str = "10.77.0.1/24";
const TUN_STACK: &str = "10.77.0.2/24";
/// The two ends of the veth pair.
const VETH_A: &str = "10.78.0.1/24";
const VETH_B: &str = "10.78.0.2/24";
const PORT: u16 = 5001;
const MTU: usize = 1500;
/// Reads and writes are this large on every side.
const CHUNK: usize = 256 * 1024;
/// smoltcp's socket buffers (it cannot grow them itself).
const SMOL_BUFFER: usize = 1 << 20;
/// One run (one pair of processes) may take at most this long.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);
/// A server must be listening within this long.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Namespaces are named `ubench-<pid>-<n>`, so stale ones can be told apart.
const NS_PREFIX: &str = "ubench-";

// ---------------------------------------------------------------------------
// The cases (parent side)

/// Runs the TUN cases; no rows (and one note on stderr) when they cannot run.
pub fn run_all(c: &Common) -> Vec<Row> {
    run_cases(c, true)
}

/// Only the cases of 1 against 2 shards.
pub fn run_shards(c: &Common) -> Vec<Row> {
    run_cases(c, false)
}

fn run_cases(c: &Common, all: bool) -> Vec<Row> {
    if let Err(why) = can_run() {
        eprint!("\r\x1b[2K");
        eprintln!("note: the TUN cases (tun-bulk, crr over TUN, rr over TUN) were skipped: {why}");
        return Vec::new();
    }
    remove_stale_namespaces();
    let runs = c.runs.unwrap_or(if c.quick { 1 } else { 5 });
    let bytes: u64 = if c.quick { 128 << 20 } else { 2 << 30 };
    let conns: u64 = if c.quick { 1_000 } else { 10_000 };
    let transactions: u64 = if c.quick { 5_000 } else { 50_000 };
    let mut rows = Vec::new();
    if all {
        rows.extend(tun_bulk(runs, bytes));
        rows.extend(tun_crr(runs, conns));
        rows.extend(tun_rr(runs, transactions));
    }
    rows.extend(tun_shards(runs, bytes, conns));
    let left = our_namespaces();
    if !left.is_empty() {
        eprint!("\r\x1b[2K");
        eprintln!("warning: network namespaces left behind: {}", left.join(" "));
    }
    rows
}

fn can_run() -> Result<(), String> {
    if !is_root() {
        return Err("they need root (network namespaces, TUN devices); run with sudo".into());
    }
    if !Path::new("/dev/net/tun").exists() {
        return Err("/dev/net/tun does not exist (modprobe tun)".into());
    }
    match Command::new("ip").arg("-V").stdout(Stdio::null()).stderr(Stdio::null()).status() {
        Ok(s) if s.success() => Ok(()),
        _ => Err("the `ip` command (iproute2) is missing".into()),
    }
}

fn is_root() -> bool {
    // The effective uid, read without unsafe.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

#[derive(Clone, Copy, PartialEq)]
enum Peer {
    UstackOffload,
    UstackPlain,
    /// Two stacks on a two-queue device (offload on).
    UstackTwoShards,
    Smoltcp,
    KernelVeth,
}

impl Peer {
    fn label(self) -> &'static str {
        match self {
            Peer::UstackOffload => "ustack (offload)",
            Peer::UstackPlain => "ustack (no offload)",
            Peer::UstackTwoShards => "ustack (2 shards)",
            Peer::Smoltcp => "smoltcp",
            Peer::KernelVeth => "kernel veth",
        }
    }
}

/// Which side of a run measures.
#[derive(Clone, Copy)]
enum Measures {
    Server,
    Client,
}

/// One process to start: role and arguments.
struct Spec {
    role: &'static str,
    args: Vec<String>,
}

fn spec(role: &'static str, args: &[&str]) -> Spec {
    Spec { role, args: args.iter().map(|s| s.to_string()).collect() }
}

/// Arguments of a user-space stack on a fresh TUN device.
fn stack_args(peer: Peer) -> Vec<String> {
    let dev = format!("ubt{}", next_id());
    let mut v = vec!["--dev".into(), dev, "--local".into(), TUN_STACK.into(), "--host".into(), TUN_HOST.into()];
    if peer == Peer::UstackPlain {
        v.push("--no-offload".into());
    }
    if peer == Peer::UstackTwoShards {
        v.extend(["--shards".into(), "2".into()]);
    }
    v
}

fn ip_of(cidr: &str) -> &str {
    cidr.split('/').next().unwrap_or(cidr)
}

fn with(mut s: Spec, more: Vec<String>) -> Spec {
    s.args.extend(more);
    s
}

/// Runs `server` (which prints `ready`) and then `client`, over a TUN
/// namespace or a veth pair, and returns the measuring side's result.
fn run_case(veth: bool, server: Spec, client: Spec, measures: Measures) -> Result<HashMap<String, f64>, String> {
    // Declared before the children, so they are killed before the
    // namespaces go.
    let nss = if veth {
        let (a, b) = veth_pair()?;
        vec![b, a]
    } else {
        vec![Netns::new()?]
    };
    let (sns, cns) = (&nss[0], &nss[nss.len() - 1]);
    let deadline = Instant::now() + RUN_TIMEOUT;
    let timeout = RUN_TIMEOUT.as_secs().to_string();
    let mut s = Child2::spawn(sns, server.role, &server.args, &timeout)?;
    if let Err(e) = s.expect("ready", Instant::now() + READY_TIMEOUT) {
        return Err(s.fail(&e));
    }
    let mut c = Child2::spawn(cns, client.role, &client.args, &timeout)?;
    let measured = match measures {
        Measures::Server => &mut s,
        Measures::Client => &mut c,
    };
    let line = match measured.expect("result", deadline) {
        Ok(l) => l,
        Err(e) => {
            // Stop the side that failed; let the other notice and say why.
            let (first, second) = match measures {
                Measures::Server => (&mut s, &mut c),
                Measures::Client => (&mut c, &mut s),
            };
            let e1 = first.fail(&e);
            second.wait_until(Instant::now() + Duration::from_secs(1));
            let e2 = second.fail("");
            return Err(format!("{e1}{e2}"));
        }
    };
    // Both sides end by themselves once the data is in; give them a moment.
    let grace = Instant::now() + Duration::from_secs(5);
    s.wait_until(grace);
    c.wait_until(grace);
    parse_result(&line)
}

fn parse_result(line: &str) -> Result<HashMap<String, f64>, String> {
    let mut m = HashMap::new();
    for kv in line.split_whitespace().skip(1) {
        let (k, v) = kv.split_once('=').ok_or_else(|| format!("bad result line `{line}`"))?;
        m.insert(k.to_string(), v.parse::<f64>().map_err(|_| format!("bad number in `{line}`"))?);
    }
    Ok(m)
}

fn get(m: &HashMap<String, f64>, k: &str) -> Result<f64, String> {
    m.get(k).copied().ok_or_else(|| format!("result has no `{k}`"))
}

/// Runs each peer's measurement alternately, `runs` times; returns per peer
/// the median of each metric (None when every run failed). Failures are
/// reported on stderr as they happen.
type Measure<'a> = Box<dyn FnMut() -> Result<Vec<f64>, String> + 'a>;

fn alternate_all(case: &str, runs: usize, peers: Vec<(Peer, Measure<'_>)>) -> HashMap<u8, Vec<f64>> {
    let mut peers = peers;
    let mut got: Vec<Vec<Vec<f64>>> = vec![Vec::new(); peers.len()];
    for run in 0..runs.max(1) {
        for (i, (peer, f)) in peers.iter_mut().enumerate() {
            progress(&format!("{case}: {} (run {}/{})", peer.label(), run + 1, runs.max(1)));
            match f() {
                Ok(v) => got[i].push(v),
                Err(e) => {
                    eprint!("\r\x1b[2K");
                    eprintln!("error: {case}, {}, run {}: {e}", peer.label(), run + 1);
                }
            }
        }
    }
    let mut out = HashMap::new();
    for (i, (peer, _)) in peers.iter().enumerate() {
        if got[i].is_empty() {
            continue;
        }
        let metrics = got[i][0].len();
        let meds = (0..metrics).map(|k| median(got[i].iter().map(|v| v[k]).collect())).collect();
        out.insert(*peer as u8, meds);
    }
    out
}

fn pick(r: &HashMap<u8, Vec<f64>>, p: Peer, k: usize) -> Option<f64> {
    r.get(&(p as u8)).map(|v| v[k])
}

/// One bulk transfer: `to_stack` is kernel→stack (the stack receives).
fn bulk_once(peer: Peer, to_stack: bool, bytes: u64, flows: usize) -> Result<Vec<f64>, String> {
    let n = bytes.to_string();
    let b = vec!["--bytes".to_string(), n, "--parallel".to_string(), flows.to_string()];
    let (veth, server, client) = match (peer, to_stack) {
        (Peer::KernelVeth, _) => {
            let to = format!("{}:{PORT}", ip_of(VETH_B));
            (true, spec("kernel-sink", &["--addr", &to]), spec("kernel-source", &["--addr", &to]))
        }
        (_, true) => {
            let to = format!("{}:{PORT}", ip_of(TUN_STACK));
            let role = if peer == Peer::Smoltcp { "smol-sink" } else { "ustack-sink" };
            let s = with(spec(role, &["--addr", &to]), stack_args(peer));
            (false, s, spec("kernel-source", &["--addr", &to]))
        }
        (_, false) => {
            let to = format!("{}:{PORT}", ip_of(TUN_HOST));
            let role = if peer == Peer::Smoltcp { "smol-source" } else { "ustack-source" };
            let c = with(spec(role, &["--addr", &to]), stack_args(peer));
            (false, spec("kernel-sink", &["--addr", &format!("0.0.0.0:{PORT}")]), c)
        }
    };
    let r = run_case(veth, with(server, b.clone()), with(client, b), Measures::Server)?;
    let (got, secs) = (get(&r, "bytes")?, get(&r, "secs")?);
    Ok(vec![got * 8.0 / secs / 1e9])
}

fn tun_bulk(runs: usize, bytes: u64) -> Vec<Row> {
    let mut rows = Vec::new();
    for (to_stack, dir) in [(true, "kernel->stack"), (false, "stack->kernel")] {
        let case = format!("tun-bulk {dir}");
        let peers: Vec<(Peer, Measure)> = [Peer::UstackOffload, Peer::UstackPlain, Peer::Smoltcp, Peer::KernelVeth]
            .into_iter()
            .map(|p| (p, Box::new(move || bulk_once(p, to_stack, bytes, 1)) as Measure))
            .collect();
        let r = alternate_all(&case, runs, peers);
        let arrow = if to_stack { "k->u" } else { "u->k" };
        for (p, tag) in [(Peer::UstackOffload, "offload"), (Peer::UstackPlain, "no offload")] {
            rows.push(Row {
                case: format!("tun-bulk {arrow} {tag}"),
                unit: "Gbit/s",
                ustack: pick(&r, p, 0).unwrap_or(0.0),
                smoltcp: pick(&r, Peer::Smoltcp, 0),
                kernel: pick(&r, Peer::KernelVeth, 0),
                lower_is_better: false,
            });
        }
    }
    rows
}

fn crr_once(peer: Peer, conns: u64, parallel: usize) -> Result<Vec<f64>, String> {
    let n = conns.to_string();
    let par = vec!["--parallel".to_string(), parallel.to_string()];
    let (veth, to) = match peer {
        Peer::KernelVeth => (true, ip_of(VETH_B)),
        _ => (false, ip_of(TUN_STACK)),
    };
    let to = format!("{to}:{PORT}");
    let server = match peer {
        Peer::KernelVeth => spec("kernel-crr-server", &["--addr", &to, "--count", &n]),
        _ => with(spec("ustack-crr-server", &["--addr", &to, "--count", &n]), stack_args(peer)),
    };
    let client = spec("kernel-crr-client", &["--addr", &to, "--count", &n]);
    let r = run_case(veth, with(server, par.clone()), with(client, par), Measures::Client)?;
    Ok(vec![get(&r, "conns")? / get(&r, "secs")?])
}

fn tun_crr(runs: usize, conns: u64) -> Vec<Row> {
    let peers: Vec<(Peer, Measure)> = [Peer::UstackOffload, Peer::KernelVeth]
        .into_iter()
        .map(|p| (p, Box::new(move || crr_once(p, conns, 1)) as Measure))
        .collect();
    let r = alternate_all("crr over TUN", runs, peers);
    vec![Row {
        case: "crr over TUN".into(),
        unit: "conn/s",
        ustack: pick(&r, Peer::UstackOffload, 0).unwrap_or(0.0),
        smoltcp: None,
        kernel: pick(&r, Peer::KernelVeth, 0),
        lower_is_better: false,
    }]
}

/// One stack against two on a two-queue device, with two connections at
/// once: bulk both ways (two flows, the bytes split between them) and crr
/// (two kernel clients). The kernel over veth with the same two
/// connections is the ceiling.
fn tun_shards(runs: usize, bytes: u64, conns: u64) -> Vec<Row> {
    const PAR: usize = 2;
    let peers = [Peer::UstackOffload, Peer::UstackTwoShards, Peer::KernelVeth];
    let mut rows = Vec::new();
    let mut add = |case: &str, unit: &'static str, r: &HashMap<u8, Vec<f64>>| {
        for (p, tag) in [(Peer::UstackOffload, "1 shard"), (Peer::UstackTwoShards, "2 shards")] {
            rows.push(Row {
                case: format!("{case}, {tag}"),
                unit,
                ustack: pick(r, p, 0).unwrap_or(0.0),
                smoltcp: None,
                kernel: pick(r, Peer::KernelVeth, 0),
                lower_is_better: false,
            });
        }
    };
    for (to_stack, arrow) in [(true, "k->u"), (false, "u->k")] {
        let case = format!("tun-bulk {arrow} 2 flows");
        let measures: Vec<(Peer, Measure)> =
            peers.into_iter().map(|p| (p, Box::new(move || bulk_once(p, to_stack, bytes, PAR)) as Measure)).collect();
        let r = alternate_all(&case, runs, measures);
        add(&case, "Gbit/s", &r);
    }
    let measures: Vec<(Peer, Measure)> =
        peers.into_iter().map(|p| (p, Box::new(move || crr_once(p, conns, PAR)) as Measure)).collect();
    let r = alternate_all("crr over TUN 2 clients", runs, measures);
    add("crr over TUN 2 clients", "conn/s", &r);
    rows
}

fn rr_once(peer: Peer, count: u64) -> Result<Vec<f64>, String> {
    let n = count.to_string();
    let (veth, to) = match peer {
        Peer::KernelVeth => (true, ip_of(VETH_B)),
        _ => (false, ip_of(TUN_STACK)),
    };
    let to = format!("{to}:{PORT}");
    let server = match peer {
        Peer::KernelVeth => spec("kernel-echo", &["--addr", &to]),
        _ => with(spec("ustack-echo", &["--addr", &to]), stack_args(peer)),
    };
    let client = spec("kernel-rr-client", &["--addr", &to, "--count", &n]);
    let r = run_case(veth, server, client, Measures::Client)?;
    Ok(vec![get(&r, "tps")?, get(&r, "p50_us")?, get(&r, "p99_us")?])
}

fn tun_rr(runs: usize, count: u64) -> Vec<Row> {
    let peers: Vec<(Peer, Measure)> = [Peer::UstackOffload, Peer::KernelVeth]
        .into_iter()
        .map(|p| (p, Box::new(move || rr_once(p, count)) as Measure))
        .collect();
    let r = alternate_all("rr over TUN", runs, peers);
    let row = |case: &str, unit: &'static str, k: usize, lower: bool| Row {
        case: case.into(),
        unit,
        ustack: pick(&r, Peer::UstackOffload, k).unwrap_or(0.0),
        smoltcp: None,
        kernel: pick(&r, Peer::KernelVeth, k),
        lower_is_better: lower,
    };
    vec![
        row("rr over TUN", "trans/s", 0, false),
        row("rr over TUN p50", "us", 1, true),
        row("rr over TUN p99", "us", 2, true),
    ]
}

// ---------------------------------------------------------------------------
// Namespaces and child processes

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn next_id() -> u32 {
    COUNTER.fetch_add(1, Ordering::SeqCst)
}

/// Runs `ip` with `args`; an error carries its stderr.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("cannot run `ip`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("`ip {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// A network namespace, deleted on drop.
struct Netns {
    name: String,
}

impl Netns {
    fn new() -> Result<Netns, String> {
        let name = format!("{NS_PREFIX}{}-{}", std::process::id(), next_id());
        ip(&["netns", "add", &name])?;
        let ns = Netns { name };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"])?;
        Ok(ns)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("\nwarning: {e}");
        }
    }
}

/// Two namespaces joined by a veth pair: (client side A, server side B).
fn veth_pair() -> Result<(Netns, Netns), String> {
    let a = Netns::new()?;
    let b = Netns::new()?;
    let id = next_id();
    let (va, vb) = (format!("ubva{id}"), format!("ubvb{id}"));
    ip(&["link", "add", &va, "netns", &a.name, "type", "veth", "peer", "name", &vb, "netns", &b.name])?;
    for (ns, dev, addr) in [(&a, &va, VETH_A), (&b, &vb, VETH_B)] {
        ip(&["-n", &ns.name, "addr", "add", addr, "dev", dev])?;
        ip(&["-n", &ns.name, "link", "set", "dev", dev, "mtu", &MTU.to_string(), "up"])?;
    }
    Ok((a, b))
}

fn list_namespaces() -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output();
    let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    text.lines().filter_map(|l| l.split_whitespace().next()).map(str::to_string).collect()
}

fn our_namespaces() -> Vec<String> {
    let mine = format!("{NS_PREFIX}{}-", std::process::id());
    list_namespaces().into_iter().filter(|n| n.starts_with(&mine)).collect()
}

/// Deletes namespaces left by earlier runs that were killed (their process
/// is gone).
fn remove_stale_namespaces() {
    for n in list_namespaces() {
        let Some(pid) = n.strip_prefix(NS_PREFIX).and_then(|r| r.split('-').next()) else { continue };
        if !Path::new("/proc").join(pid).exists() {
            let _ = ip(&["netns", "del", &n]);
        }
    }
}

/// A child process inside a namespace, killed on drop.
struct Child2 {
    role: &'static str,
    child: Child,
    lines: Receiver<String>,
    stderr: Option<JoinHandle<String>>,
}

impl Child2 {
    fn spawn(ns: &Netns, role: &'static str, args: &[String], timeout: &str) -> Result<Child2, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
        let mut child = Command::new("ip")
            .args(["netns", "exec", &ns.name])
            .arg(exe)
            .args(["peer", role, "--timeout", timeout])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {role}: {e}"))?;
        let out = child.stdout.take().expect("piped stdout");
        let mut err = child.stderr.take().expect("piped stderr");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Ok(Child2 { role, child, lines, stderr: Some(stderr) })
    }

    /// Waits for a stdout line starting with `what`.
    fn expect(&mut self, what: &str, deadline: Instant) -> Result<String, String> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.starts_with(what) => return Ok(l),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!("{}: no `{what}` in time (killed after the run's time limit)", self.role));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let st = self.child.wait().map(|s| s.to_string()).unwrap_or_default();
                    return Err(format!("{} exited ({st}) before `{what}`", self.role));
                }
            }
        }
    }

    /// Kills the child and returns `msg` with what it said on stderr.
    fn fail(&mut self, msg: &str) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let err = self.stderr.take().and_then(|h| h.join().ok()).unwrap_or_default();
        let tail: Vec<&str> = err.lines().rev().take(6).collect::<Vec<_>>().into_iter().rev().collect();
        let mut s = msg.to_string();
        if !tail.is_empty() {
            s.push_str(&format!("\n  {} stderr: {}", self.role, tail.join("\n    ")));
        }
        s
    }

    /// Waits for the child to exit until `deadline`; then kills it.
    fn wait_until(&mut self, deadline: Instant) {
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Child2 {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// The peers (child side)

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq)]
pub enum Role {
    UstackSink,
    UstackSource,
    UstackEcho,
    UstackCrrServer,
    SmolSink,
    SmolSource,
    KernelSink,
    KernelSource,
    KernelCrrServer,
    KernelCrrClient,
    KernelRrClient,
    KernelEcho,
}

#[derive(clap::Args, Clone, Debug)]
pub struct PeerArgs {
    #[arg(value_enum)]
    role: Role,
    /// Address to listen on (servers) or connect to (clients).
    #[arg(long)]
    addr: SocketAddrV4,
    /// TUN device (user-space stacks).
    #[arg(long, default_value = "ubt0")]
    dev: String,
    /// The user-space stack's address and prefix.
    #[arg(long, default_value = TUN_STACK)]
    local: String,
    /// The kernel's address on the TUN device.
    #[arg(long, default_value = TUN_HOST)]
    host: String,
    /// Bytes to move (bulk roles).
    #[arg(long, default_value_t = 0)]
    bytes: u64,
    /// Connections or transactions (crr, rr roles).
    #[arg(long, default_value_t = 0)]
    count: u64,
    /// ustack without the TUN offload header.
    #[arg(long)]
    no_offload: bool,
    /// ustack as this many shards on a multi-queue TUN device.
    #[arg(long, default_value_t = 1)]
    shards: usize,
    /// Connections at once: flows of a bulk role (the bytes split
    /// between them), clients of the crr client, accepting threads of a
    /// crr server.
    #[arg(long, default_value_t = 1)]
    parallel: usize,
    /// Give up (exit) after this many seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
}

pub fn peer(a: PeerArgs) {
    // Whatever happens, this process does not outlive its run for long.
    let limit = Duration::from_secs(a.timeout + 5);
    let role = a.role;
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        let _ = io::stderr().write_all(format!("peer {role:?}: gave up after {} s\n", limit.as_secs()).as_bytes());
        std::process::exit(2);
    });
    // No IPv6 chatter (router solicitations) on the devices.
    for f in ["all", "default"] {
        let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{f}/disable_ipv6"), "1");
    }
    let deadline = Instant::now() + Duration::from_secs(a.timeout);
    let r = match a.role {
        Role::UstackSink => ustack_sink(&a, deadline),
        Role::UstackSource => ustack_source(&a),
        Role::UstackEcho => ustack_echo(&a),
        Role::UstackCrrServer => ustack_crr_server(&a),
        Role::SmolSink => smol_sink(&a, deadline),
        Role::SmolSource => smol_source(&a, deadline),
        Role::KernelSink => kernel_sink(&a, deadline),
        Role::KernelSource => kernel_source(&a),
        Role::KernelCrrServer => kernel_crr_server(&a),
        Role::KernelCrrClient => kernel_crr_client(&a, deadline),
        Role::KernelRrClient => kernel_rr_client(&a, deadline),
        Role::KernelEcho => kernel_echo(&a),
    };
    if let Err(e) = r {
        // One write, so a kill cannot cut the message short.
        let _ = io::stderr().write_all(format!("peer {:?}: {e}\n", a.role).as_bytes());
        std::process::exit(1);
    }
}

fn say(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Gives the kernel's side of the TUN device its address and brings it up.
fn host_side(dev: &str, host: &str) -> Result<(), String> {
    ip(&["addr", "add", host, "dev", dev])?;
    ip(&["link", "set", "dev", dev, "mtu", &MTU.to_string(), "up"])
}

/// Reads until `bytes` have arrived; returns (bytes, seconds since `start`).
fn sink(r: &mut impl Read, bytes: u64, start: Instant, deadline: Instant) -> Result<(u64, f64), String> {
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0u64;
    while got < bytes {
        if Instant::now() > deadline {
            return Err(format!("timed out with {got} of {bytes} bytes"));
        }
        match r.read(&mut buf) {
            Ok(0) => return Err(format!("connection closed after {got} of {bytes} bytes")),
            Ok(n) => got += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read after {got} of {bytes} bytes: {e}")),
        }
    }
    Ok((got, start.elapsed().as_secs_f64()))
}

/// Writes `bytes`.
fn source(w: &mut impl Write, bytes: u64) -> Result<(), String> {
    let chunk = vec![0x5au8; CHUNK];
    let mut sent = 0u64;
    while sent < bytes {
        let n = ((bytes - sent) as usize).min(CHUNK);
        w.write_all(&chunk[..n]).map_err(|e| format!("write after {sent} of {bytes} bytes: {e}"))?;
        sent += n as u64;
    }
    Ok(())
}

/// Reads until end of stream (or error, or the read timeout).
fn drain(r: &mut impl Read) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = r.read(&mut buf) {
        if n == 0 {
            break;
        }
    }
}

fn report_bulk(got: u64, secs: f64) {
    say(&format!("result bytes={got} secs={secs:.6}"));
}

/// Opens the TUN device (one queue per shard), configures the kernel's
/// side and starts ustack: one stack, or one per shard.
fn ustack_up(a: &PeerArgs) -> Result<Vec<NetStack>, String> {
    let opts = TunOptions { name: a.dev.clone(), tap: false, mtu: MTU, offload: !a.no_offload };
    let devs = if a.shards > 1 {
        TunDevice::open_queues(&opts, a.shards).map_err(err)?
    } else {
        vec![TunDevice::open(&opts).map_err(err)?]
    };
    if !a.no_offload && !devs[0].offload() {
        return Err("the kernel did not grant the TUN offload header (IFF_VNET_HDR)".into());
    }
    host_side(&a.dev, &a.host)?;
    let cidr = a.local.parse().map_err(|e| format!("bad --local {}: {e:?}", a.local))?;
    let seed = u64::from(std::process::id()) ^ 0x9e37_79b9_7f4a_7c15;
    NetStack::start_shards(devs, StackConfig::ip(cidr).with_seed(seed), DriverOptions::default()).map_err(err)
}

fn shutdown(nets: Vec<NetStack>) -> Result<(), String> {
    for n in nets {
        n.shutdown().map_err(err)?;
    }
    Ok(())
}

/// The bytes of one of `a.parallel` flows.
fn per_flow(a: &PeerArgs) -> u64 {
    a.bytes / a.parallel.max(1) as u64
}

/// Receives on every stream `accept` gives, `a.parallel` of them, each on
/// its own thread; reports the bytes of all and the time from the first
/// accept until the last byte.
fn sink_flows<S: Read + Send + 'static>(
    a: &PeerArgs,
    deadline: Instant,
    mut accept: impl FnMut() -> Result<S, String>,
) -> Result<(), String> {
    let mut start = None;
    let mut threads = Vec::new();
    for _ in 0..a.parallel.max(1) {
        let mut s = accept()?;
        let t0 = *start.get_or_insert_with(Instant::now);
        let bytes = per_flow(a);
        threads.push(std::thread::spawn(move || sink(&mut s, bytes, t0, deadline)));
    }
    let (mut got, mut secs) = (0, 0f64);
    for t in threads {
        let (g, s) = t.join().map_err(|_| "a sink thread panicked".to_string())??;
        got += g;
        secs = secs.max(s);
    }
    report_bulk(got, secs);
    Ok(())
}

/// Streams accepted on any of `listeners` (one per shard), in the order
/// they come.
fn accept_any(listeners: Vec<UListener>) -> Receiver<Result<UStream, String>> {
    let (tx, rx) = channel();
    for l in listeners {
        let tx = tx.clone();
        std::thread::spawn(move || {
            loop {
                let r = l.accept().map(|(s, _)| s).map_err(err);
                let failed = r.is_err();
                if tx.send(r).is_err() || failed {
                    return;
                }
            }
        });
    }
    rx
}

/// A listener on every shard.
fn listen_all(nets: &[NetStack], a: &PeerArgs, backlog: usize) -> Result<Vec<UListener>, String> {
    nets.iter().map(|n| UListener::bind_with_backlog(n, a.addr, backlog).map_err(err)).collect()
}

fn ustack_sink(a: &PeerArgs, deadline: Instant) -> Result<(), String> {
    let nets = ustack_up(a)?;
    let incoming = accept_any(listen_all(&nets, a, 128)?);
    say("ready");
    sink_flows(a, deadline, || {
        let s = incoming.recv_timeout(deadline.saturating_duration_since(Instant::now())).map_err(err)??;
        s.set_read_timeout(Some(deadline.saturating_duration_since(Instant::now()).max(Duration::from_secs(1))))
            .map_err(err)?;
        Ok(s)
    })?;
    // Let the FINs go out before the device disappears.
    std::thread::sleep(Duration::from_millis(100));
    shutdown(nets)
}

/// Sends `per_flow` bytes on each of `a.parallel` connections at once,
/// then waits for the receiver to close.
fn source_flows<S: Read + Write + Send + 'static>(
    a: &PeerArgs,
    mut connect: impl FnMut(usize) -> Result<S, String>,
    finish: fn(&mut S) -> Result<(), String>,
) -> Result<(), String> {
    let mut threads = Vec::new();
    for f in 0..a.parallel.max(1) {
        let mut s = connect(f)?;
        let bytes = per_flow(a);
        threads.push(std::thread::spawn(move || -> Result<(), String> {
            source(&mut s, bytes)?;
            finish(&mut s)?;
            drain(&mut s);
            Ok(())
        }));
    }
    for t in threads {
        t.join().map_err(|_| "a source thread panicked".to_string())??;
    }
    Ok(())
}

fn ustack_source(a: &PeerArgs) -> Result<(), String> {
    let nets = ustack_up(a)?;
    let to = SocketAddr::V4(a.addr);
    let timeout = a.timeout;
    // Flow f from shard f mod shards: the shards take turns.
    source_flows(
        a,
        |f| {
            let s = UStream::connect_timeout(&nets[f % nets.len()], &to, Duration::from_secs(10)).map_err(err)?;
            s.set_read_timeout(Some(Duration::from_secs(timeout))).map_err(err)?;
            Ok(s)
        },
        |s| s.shutdown(std::net::Shutdown::Write).map_err(err),
    )?;
    shutdown(nets)
}

fn ustack_echo(a: &PeerArgs) -> Result<(), String> {
    let nets = ustack_up(a)?;
    let l = UListener::bind(&nets[0], a.addr).map_err(err)?;
    say("ready");
    let (mut s, _) = l.accept().map_err(err)?;
    s.set_nodelay(true).map_err(err)?;
    echo(&mut s)?;
    drop(s);
    std::thread::sleep(Duration::from_millis(100));
    shutdown(nets)
}

fn echo<S: Read + Write>(s: &mut S) -> Result<(), String> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = s.read(&mut buf).map_err(err)?;
        if n == 0 {
            return Ok(());
        }
        s.write_all(&buf[..n]).map_err(err)?;
    }
}

/// One request/response for the crr servers: read 64 bytes, answer 64,
/// close (the server closes first, HTTP/1.0 style).
fn crr_serve<S: Read + Write>(s: &mut S) -> Result<(), String> {
    let mut req = [0u8; 64];
    s.read_exact(&mut req).map_err(|e| format!("request: {e}"))?;
    s.write_all(&req).map_err(|e| format!("response: {e}"))
}

/// Serves crr connections on `a.parallel` threads (thread t calls
/// `accept(t)`) until `a.count` are served; returns then (threads still
/// waiting in accept are left to the process's exit).
fn crr_serve_all<S: Read + Write + 'static>(
    a: &PeerArgs,
    accept: Arc<dyn Fn(usize) -> Result<S, String> + Send + Sync>,
    timeout: fn(&S) -> Result<(), String>,
) -> Result<(), String> {
    let (tx, rx) = channel();
    for t in 0..a.parallel.max(1) {
        let (tx, accept) = (tx.clone(), accept.clone());
        std::thread::spawn(move || {
            loop {
                let r = accept(t).and_then(|mut s| {
                    timeout(&s)?;
                    crr_serve(&mut s)
                });
                let failed = r.is_err();
                if tx.send(r).is_err() || failed {
                    return;
                }
            }
        });
    }
    for i in 0..a.count {
        rx.recv().map_err(err)?.map_err(|e| format!("connection {i}: {e}"))?;
    }
    Ok(())
}

fn ustack_crr_server(a: &PeerArgs) -> Result<(), String> {
    let nets = ustack_up(a)?;
    let listeners = listen_all(&nets, a, 1024)?;
    say("ready");
    crr_serve_all(a, Arc::new(move |t| listeners[t % listeners.len()].accept().map(|(s, _)| s).map_err(err)), |s| {
        s.set_read_timeout(Some(Duration::from_secs(10))).map_err(err)
    })?;
    std::thread::sleep(Duration::from_millis(100));
    shutdown(nets)
}

fn kernel_listener(a: &PeerArgs) -> Result<std::net::TcpListener, String> {
    std::net::TcpListener::bind(a.addr).map_err(|e| format!("bind {}: {e}", a.addr))
}

fn kernel_sink(a: &PeerArgs, deadline: Instant) -> Result<(), String> {
    let l = kernel_listener(a)?;
    say("ready");
    sink_flows(a, deadline, || {
        let (s, _) = l.accept().map_err(err)?;
        s.set_read_timeout(Some(deadline.saturating_duration_since(Instant::now()).max(Duration::from_secs(1))))
            .map_err(err)?;
        Ok(s)
    })
}

fn kernel_connect(a: &PeerArgs) -> Result<std::net::TcpStream, String> {
    std::net::TcpStream::connect_timeout(&SocketAddr::V4(a.addr), Duration::from_secs(10))
        .map_err(|e| format!("connect {}: {e}", a.addr))
}

fn kernel_source(a: &PeerArgs) -> Result<(), String> {
    let timeout = a.timeout;
    source_flows(
        a,
        |_| {
            let s = kernel_connect(a)?;
            s.set_write_timeout(Some(Duration::from_secs(timeout))).map_err(err)?;
            s.set_read_timeout(Some(Duration::from_secs(10))).map_err(err)?;
            Ok(s)
        },
        |s| s.shutdown(std::net::Shutdown::Write).map_err(err),
    )
}

fn kernel_echo(a: &PeerArgs) -> Result<(), String> {
    let l = kernel_listener(a)?;
    say("ready");
    let (mut s, _) = l.accept().map_err(err)?;
    s.set_nodelay(true).map_err(err)?;
    echo(&mut s)
}

fn kernel_crr_server(a: &PeerArgs) -> Result<(), String> {
    let l = kernel_listener(a)?;
    say("ready");
    crr_serve_all(a, Arc::new(move |_| l.accept().map(|(s, _)| s).map_err(err)), |s| {
        s.set_read_timeout(Some(Duration::from_secs(10))).map_err(err)
    })
}

/// `a.parallel` clients at once, each making its share of `a.count`
/// connections one after another.
fn kernel_crr_client(a: &PeerArgs, deadline: Instant) -> Result<(), String> {
    let par = a.parallel.max(1) as u64;
    let each = a.count / par;
    let start = Instant::now();
    std::thread::scope(|sc| {
        let threads: Vec<_> = (0..par).map(|_| sc.spawn(move || crr_client(a, each, deadline))).collect();
        threads.into_iter().try_for_each(|t| t.join().map_err(|_| "a client thread panicked".to_string())?)
    })?;
    say(&format!("result conns={} secs={:.6}", each * par, start.elapsed().as_secs_f64()));
    Ok(())
}

fn crr_client(a: &PeerArgs, count: u64, deadline: Instant) -> Result<(), String> {
    let req = [0x42u8; 64];
    let mut resp = [0u8; 64];
    for i in 0..count {
        if Instant::now() > deadline {
            return Err(format!("timed out after {i} of {count} connections"));
        }
        let mut s = kernel_connect(a).map_err(|e| format!("connection {i}: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(10))).map_err(err)?;
        s.set_nodelay(true).map_err(err)?;
        s.write_all(&req).map_err(|e| format!("connection {i}: request: {e}"))?;
        s.read_exact(&mut resp).map_err(|e| format!("connection {i}: response: {e}"))?;
        // The server closes first; wait for its FIN so TIME-WAIT stays there.
        let mut tail = [0u8; 64];
        match s.read(&mut tail) {
            Ok(0) => {}
            Ok(_) => return Err(format!("connection {i}: more than 64 bytes of response")),
            Err(e) => return Err(format!("connection {i}: waiting for the server's FIN: {e}")),
        }
    }
    Ok(())
}

fn kernel_rr_client(a: &PeerArgs, deadline: Instant) -> Result<(), String> {
    let mut s = kernel_connect(a)?;
    s.set_nodelay(true).map_err(err)?;
    s.set_read_timeout(Some(Duration::from_secs(10))).map_err(err)?;
    let mut one = [0x7u8; 1];
    let warmup = (a.count / 20).clamp(10, 1000);
    for _ in 0..warmup {
        s.write_all(&one).map_err(err)?;
        s.read_exact(&mut one).map_err(err)?;
    }
    let mut lat = Vec::with_capacity(a.count as usize);
    let start = Instant::now();
    for i in 0..a.count {
        if i % 1024 == 0 && Instant::now() > deadline {
            return Err(format!("timed out after {i} of {} transactions", a.count));
        }
        let t = Instant::now();
        s.write_all(&one).map_err(|e| format!("transaction {i}: {e}"))?;
        s.read_exact(&mut one).map_err(|e| format!("transaction {i}: {e}"))?;
        lat.push(t.elapsed().as_nanos() as u64);
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] as f64 / 1000.0;
    say(&format!("result tps={:.1} p50_us={:.2} p99_us={:.2}", a.count as f64 / secs, pct(0.50), pct(0.99)));
    Ok(())
}

// smoltcp on a TUN device, driven the way its examples drive it: poll,
// serve the socket, then wait on the descriptor until the next deadline.

struct Smol {
    dev: TunTapInterface,
    iface: Interface,
    sockets: SocketSet<'static>,
    epoch: Instant,
}

impl Smol {
    fn up(a: &PeerArgs) -> Result<Smol, String> {
        let mut dev = TunTapInterface::new(&a.dev, SmolMedium::Ip).map_err(|e| format!("open {}: {e}", a.dev))?;
        host_side(&a.dev, &a.host)?;
        let (addr, prefix) = a.local.split_once('/').ok_or("--local needs ADDR/PREFIX")?;
        let addr: Ipv4Addr = addr.parse().map_err(err)?;
        let prefix: u8 = prefix.parse().map_err(err)?;
        let epoch = Instant::now();
        let mut cfg = SmolConfig::new(HardwareAddress::Ip);
        cfg.random_seed = u64::from(std::process::id());
        let mut iface = Interface::new(cfg, &mut dev, SmolInstant::from_micros(0));
        iface.update_ip_addrs(|v| {
            let _ = v.push(IpCidr::new(IpAddress::Ipv4(addr), prefix));
        });
        Ok(Smol { dev, iface, sockets: SocketSet::new(vec![]), epoch })
    }

    fn now(&self) -> SmolInstant {
        SmolInstant::from_micros(self.epoch.elapsed().as_micros() as i64)
    }

    fn poll(&mut self) {
        let now = self.now();
        self.iface.poll(now, &mut self.dev, &mut self.sockets);
    }

    /// Sleeps until the device has input or a socket has work (at most
    /// 50 ms, so deadlines are checked).
    fn wait(&mut self) -> Result<(), String> {
        let now = self.now();
        let d = self.iface.poll_delay(now, &self.sockets).unwrap_or(SmolDuration::from_millis(50));
        if d == SmolDuration::ZERO {
            return Ok(());
        }
        smol_wait(self.dev.as_raw_fd(), Some(d.min(SmolDuration::from_millis(50)))).map_err(err)
    }
}

fn smol_socket() -> smol_tcp::Socket<'static> {
    smol_tcp::Socket::new(
        smol_tcp::SocketBuffer::new(vec![0; SMOL_BUFFER]),
        smol_tcp::SocketBuffer::new(vec![0; SMOL_BUFFER]),
    )
}

fn smol_sink(a: &PeerArgs, deadline: Instant) -> Result<(), String> {
    let mut sm = Smol::up(a)?;
    let mut sock = smol_socket();
    sock.listen(a.addr.port()).map_err(err)?;
    let h = sm.sockets.add(sock);
    say("ready");
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0u64;
    let mut start = None;
    while got < a.bytes {
        if Instant::now() > deadline {
            return Err(format!("timed out with {got} of {} bytes", a.bytes));
        }
        sm.poll();
        let s = sm.sockets.get_mut::<smol_tcp::Socket>(h);
        if start.is_none() && s.state() == smol_tcp::State::Established {
            start = Some(Instant::now());
        }
        while s.can_recv() {
            match s.recv_slice(&mut buf) {
                Ok(0) => break,
                Ok(n) => got += n as u64,
                Err(e) => return Err(format!("recv after {got} bytes: {e}")),
            }
        }
        if start.is_some() && !s.may_recv() && got < a.bytes {
            return Err(format!("connection closed after {got} of {} bytes", a.bytes));
        }
        if got < a.bytes {
            sm.wait()?;
        }
    }
    let secs = start.map_or(0.0, |s| s.elapsed().as_secs_f64());
    report_bulk(got, secs);
    sm.sockets.get_mut::<smol_tcp::Socket>(h).close();
    let end = Instant::now() + Duration::from_millis(200);
    while Instant::now() < end {
        sm.poll();
        sm.wait()?;
    }
    Ok(())
}

fn smol_source(a: &PeerArgs, deadline: Instant) -> Result<(), String> {
    let mut sm = Smol::up(a)?;
    let h = sm.sockets.add(smol_socket());
    {
        let cx = sm.iface.context();
        let s = sm.sockets.get_mut::<smol_tcp::Socket>(h);
        s.connect(cx, (IpAddress::Ipv4(*a.addr.ip()), a.addr.port()), 49152).map_err(err)?;
    }
    let chunk = vec![0x5au8; CHUNK];
    let mut sent = 0u64;
    let mut closed = false;
    let mut connected = false;
    loop {
        if Instant::now() > deadline {
            return Err(format!("timed out having sent {sent} of {} bytes", a.bytes));
        }
        sm.poll();
        let s = sm.sockets.get_mut::<smol_tcp::Socket>(h);
        connected |= s.state() == smol_tcp::State::Established;
        if !connected && s.state() == smol_tcp::State::Closed {
            return Err("connection refused or failed".into());
        }
        while sent < a.bytes && s.can_send() {
            let n = ((a.bytes - sent) as usize).min(CHUNK);
            match s.send_slice(&chunk[..n]) {
                Ok(0) => break,
                Ok(k) => sent += k as u64,
                Err(e) => return Err(format!("send after {sent} bytes: {e}")),
            }
        }
        if sent == a.bytes && !closed {
            s.close();
            closed = true;
        }
        // Done once the receiver has everything and closed its side.
        if closed && !s.is_open() {
            return Ok(());
        }
        if connected && s.state() == smol_tcp::State::Closed && !closed {
            return Err(format!("connection reset after {sent} bytes"));
        }
        sm.wait()?;
    }
}
