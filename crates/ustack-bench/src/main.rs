//! `ustack-bench`: ustack side by side with its peers, in one run.
//!
//! Each case runs every peer alternately, several times, and reports the
//! median. `all` prints one table; `--json FILE` writes the same numbers.

mod attacks;
mod idle;
mod mem;
mod soak;
mod tun;

use clap::{Parser, Subcommand};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use std::alloc::System;
use std::io::Write;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[derive(Parser)]
#[command(name = "ustack-bench", about = "ustack side by side with smoltcp and the Linux kernel")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct Common {
    /// A short run (seconds, not minutes): smaller transfers, fewer runs.
    #[arg(long)]
    quick: bool,
    /// Runs per peer; the median is reported.
    #[arg(long)]
    runs: Option<usize>,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<std::path::PathBuf>,
}

#[derive(clap::Args, Clone)]
struct IdleArgs {
    #[command(flatten)]
    common: Common,
    /// Established connections per stack (100,000; 2,000 with --quick).
    /// Both stacks hold that many, so the process holds twice as many.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=4_000_000))]
    connections: Option<u64>,
}

#[derive(Subcommand)]
enum Command {
    /// Every case (the TUN cases need root; without it they are skipped
    /// with a note).
    All(Common),
    /// One connection, one way, in memory, at MTU 1500 and 65535 (Gbit/s).
    MemBulk(Common),
    /// Connect, 64-byte request, 64-byte response, close, in a loop
    /// (connections/s).
    Crr(Common),
    /// Heap bytes per established connection: idle, holding 1 KiB, after
    /// reading it.
    IdleMemory(IdleArgs),
    /// Bulk transfer split over 1 to 10,000 connections.
    ManyFlows(Common),
    /// The fault soak: seeded simulator runs with random faults, every
    /// byte checked (`--seeds N`, `--seed S` to replay one, `--quick`).
    Soak(soak::SoakArgs),
    /// The attacks of SECURITY.md on the simulator: victim goodput, heap,
    /// CPU per attack frame, the defence's counter.
    Attacks(Common),
    /// The cases against the Linux kernel over a TUN device (root).
    Tun(Common),
    /// Only the TUN cases of one stack against two shards on a two-queue
    /// device, two connections at once (root).
    Shards(Common),
    /// Kernel-side peers for the TUN cases (run inside a namespace).
    #[command(hide = true)]
    Peer(tun::PeerArgs),
}

/// One row of the table.
#[derive(Clone, Debug)]
pub struct Row {
    pub case: String,
    pub unit: &'static str,
    pub ustack: f64,
    pub smoltcp: Option<f64>,
    pub kernel: Option<f64>,
    /// For rows where smaller is better (memory, latency).
    pub lower_is_better: bool,
}

impl Row {
    fn ratio(&self) -> String {
        let peer = self.smoltcp.or(self.kernel);
        match peer {
            Some(p) if p > 0.0 && self.ustack > 0.0 => {
                let r = if self.lower_is_better { p / self.ustack } else { self.ustack / p };
                format!("{r:.2}x")
            }
            _ => "-".to_string(),
        }
    }
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

/// Runs `a` and `b` alternately `runs` times each; returns their medians.
pub fn alternate(runs: usize, mut a: impl FnMut() -> f64, mut b: impl FnMut() -> f64) -> (f64, f64) {
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for _ in 0..runs.max(1) {
        x.push(a());
        y.push(b());
    }
    (median(x), median(y))
}

pub fn progress(what: &str) {
    eprint!("\r\x1b[2Krunning {what}...");
    let _ = std::io::stderr().flush();
}

fn mem_bulk(c: &Common) -> Vec<Row> {
    let runs = c.runs.unwrap_or(if c.quick { 1 } else { 5 });
    let bytes = if c.quick { 64 << 20 } else { 2 << 30 };
    let mut rows = Vec::new();
    // The second pair of rows: the link declares checksum offload, both
    // stacks skip the checksums (BENCHMARKS.md).
    for (mtu, offload) in [(1500usize, false), (65535, false), (1500, true), (65535, true)] {
        let name = if offload { format!("mem-bulk mtu {mtu} offload") } else { format!("mem-bulk mtu {mtu}") };
        progress(&name);
        let (u, s) = alternate(
            runs,
            || mem::ustack_bulk(bytes, mtu, 256 * 1024, offload),
            || mem::smoltcp_bulk(bytes, mtu, 256 * 1024, offload),
        );
        rows.push(Row {
            case: name,
            unit: "Gbit/s",
            ustack: u,
            smoltcp: Some(s),
            kernel: None,
            lower_is_better: false,
        });
    }
    rows
}

fn crr(c: &Common) -> Vec<Row> {
    let runs = c.runs.unwrap_or(if c.quick { 1 } else { 5 });
    let n = if c.quick { 2_000 } else { 100_000 };
    progress("crr in memory");
    let (u, s) = alternate(runs, || mem::ustack_crr(n), || mem::smoltcp_crr(n));
    vec![Row {
        case: "crr in memory".into(),
        unit: "conn/s",
        ustack: u,
        smoltcp: Some(s),
        kernel: None,
        lower_is_better: false,
    }]
}

fn idle_memory(c: &Common, connections: Option<u64>) -> Vec<Row> {
    let n = connections.map_or(if c.quick { 2_000 } else { 100_000 }, |n| n as usize);
    progress(&format!("idle-memory ({n} connections)"));
    let (idle, holding, after) = idle::idle_memory(GLOBAL, n, 1024);
    let row = |case: &str, v: f64| Row {
        case: case.into(),
        unit: "bytes/conn",
        ustack: v,
        smoltcp: None,
        kernel: None,
        lower_is_better: true,
    };
    // What one stack's n idle connections take in all (issue 6: a million
    // within 2 GiB).
    let total = Row { unit: "MiB", ..row(&format!("idle-memory total {n}"), idle * n as f64 / (1 << 20) as f64) };
    vec![
        row("idle-memory idle", idle),
        total,
        row("idle-memory holding 1 KiB", holding),
        row("idle-memory after reading", after),
    ]
}

fn many_flows(c: &Common) -> Vec<Row> {
    let total: u64 = if c.quick { 32 << 20 } else { 1 << 30 };
    let counts: &[usize] = if c.quick { &[1, 10, 100] } else { &[1, 10, 100, 1_000, 10_000] };
    let mut rows = Vec::new();
    for &n in counts {
        progress(&format!("many-flows {n}"));
        let (gbps, ns, steady) = mem::ustack_many_flows(total.max(n as u64 * 65536), n);
        rows.push(Row {
            case: format!("many-flows {n} Gbit/s"),
            unit: "Gbit/s",
            ustack: gbps,
            smoltcp: None,
            kernel: None,
            lower_is_better: false,
        });
        rows.push(Row {
            case: format!("many-flows {n} ns/seg"),
            unit: "ns/segment",
            ustack: ns,
            smoltcp: None,
            kernel: None,
            lower_is_better: true,
        });
        rows.push(Row {
            case: format!("many-flows {n} ns/seg, second half"),
            unit: "ns/segment",
            ustack: steady,
            smoltcp: None,
            kernel: None,
            lower_is_better: true,
        });
    }
    rows
}

fn print_table(rows: &[Row]) {
    eprint!("\r\x1b[2K");
    println!("{:<34} {:>12} {:>12} {:>12} {:>8}  unit", "case", "ustack", "smoltcp", "kernel", "ratio");
    let f = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.2}"));
    for r in rows {
        println!(
            "{:<34} {:>12.2} {:>12} {:>12} {:>8}  {}",
            r.case,
            r.ustack,
            f(r.smoltcp),
            f(r.kernel),
            r.ratio(),
            r.unit
        );
    }
}

fn write_json(path: &std::path::Path, rows: &[Row]) -> std::io::Result<()> {
    let mut s = String::from("{\n");
    for (i, r) in rows.iter().enumerate() {
        let num = |v: Option<f64>| v.map_or("null".to_string(), |x| format!("{x:.4}"));
        s.push_str(&format!(
            "  \"{}\": {{\"ustack\": {:.4}, \"smoltcp\": {}, \"kernel\": {}, \"unit\": \"{}\"}}{}\n",
            r.case,
            r.ustack,
            num(r.smoltcp),
            num(r.kernel),
            r.unit,
            if i + 1 < rows.len() { "," } else { "" }
        ));
    }
    s.push_str("}\n");
    std::fs::write(path, s)
}

fn finish(c: &Common, rows: Vec<Row>) {
    print_table(&rows);
    if let Some(p) = &c.json
        && let Err(e) = write_json(p, &rows)
    {
        eprintln!("error: cannot write {}: {e}", p.display());
        std::process::exit(1);
    }
}

fn main() {
    match Cli::parse().command {
        Command::All(c) => {
            let mut rows = mem_bulk(&c);
            rows.extend(crr(&c));
            rows.extend(idle_memory(&c, None));
            rows.extend(many_flows(&c));
            rows.extend(tun::run_all(&c));
            finish(&c, rows);
        }
        Command::MemBulk(c) => finish(&c, mem_bulk(&c)),
        Command::Crr(c) => finish(&c, crr(&c)),
        Command::IdleMemory(a) => finish(&a.common, idle_memory(&a.common, a.connections)),
        Command::ManyFlows(c) => finish(&c, many_flows(&c)),
        Command::Tun(c) => finish(&c, tun::run_all(&c)),
        Command::Shards(c) => finish(&c, tun::run_shards(&c)),
        Command::Peer(a) => tun::peer(a),
        Command::Soak(a) => std::process::exit(soak::run(&a, GLOBAL)),
        Command::Attacks(c) => attacks::print(&attacks::run_all(c.quick, GLOBAL)),
    }
}
