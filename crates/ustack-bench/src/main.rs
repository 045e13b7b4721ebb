//! `ustack-bench`: ustack side by side with its peers.
//!
//! So far: `mem-bulk`, two stacks in one thread over an in-memory link,
//! ustack against smoltcp, alternating, median of the runs.

mod mem;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "ustack-bench", about = "ustack side by side with smoltcp and the Linux kernel")]
struct Cli {
    #[command(subcommand)]
    case: Case,
}

#[derive(Subcommand)]
enum Case {
    /// One connection, one way, in memory, at MTU 1500 and 65535 (Gbit/s).
    MemBulk {
        /// Bytes per run.
        #[arg(long, default_value_t = 1 << 30)]
        bytes: u64,
        /// Runs per stack (the median is shown).
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    match Cli::parse().case {
        Case::MemBulk { bytes, runs } => {
            println!("{:<18} {:>10} {:>10} {:>7}", "case", "ustack", "smoltcp", "ratio");
            for mtu in [1500usize, 65535] {
                let (mut u, mut s) = (Vec::new(), Vec::new());
                for _ in 0..runs.max(1) {
                    u.push(mem::ustack_bulk(bytes, mtu, 256 * 1024));
                    s.push(mem::smoltcp_bulk(bytes, mtu, 256 * 1024));
                }
                let (u, s) = (median(u), median(s));
                println!("{:<18} {:>10.2} {:>10.2} {:>7.2}", format!("mem-bulk mtu {mtu}"), u, s, u / s);
            }
            println!("(Gbit/s, median of {runs} alternating runs of {bytes} bytes, 256 KiB socket buffers)");
        }
    }
}
