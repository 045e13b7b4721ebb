//! `ustack-bench soak`: the fault soak of `ustack_core::sim::soak` over
//! many seeds, from the command line. Prints the runs, connections, bytes
//! checked and failures; each failure with the seed and the command that
//! replays just that seed. The heap is measured with the counting
//! allocator around each run: what a run leaves allocated once its network
//! is dropped must be nothing.

use stats_alloc::{Region, StatsAlloc};
use std::alloc::System;
use std::time::Instant;
use ustack_core::sim::soak::{Summary, run_seed};

#[derive(clap::Args, Clone)]
pub struct SoakArgs {
    /// How many seeds, from --first (default 2,000; the long form is 100,000).
    #[arg(long, default_value_t = 2_000)]
    seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    first: u64,
    /// Run just this seed and print what it chose.
    #[arg(long)]
    seed: Option<u64>,
    /// Smaller transfers and shorter outages (the CI form).
    #[arg(long)]
    quick: bool,
}

/// Returns the process exit code: 0 when every run passed.
pub fn run(args: &SoakArgs, alloc: &'static StatsAlloc<System>) -> i32 {
    let seeds: Vec<u64> = match args.seed {
        Some(s) => vec![s],
        None => (args.first..args.first.saturating_add(args.seeds)).collect(),
    };
    // The first print allocates stdout's buffer: do it before measuring.
    println!("soak: {} seeds{}", seeds.len(), if args.quick { ", quick form" } else { "" });
    let started = Instant::now();
    let mut summary = Summary::default();
    let mut leaked_runs = 0u64;
    for (i, &seed) in seeds.iter().enumerate() {
        let region = Region::new(alloc);
        let result = run_seed(seed, args.quick);
        if args.seed.is_some() {
            match &result {
                Ok(r) => println!("seed {seed}:{}\n  {r:?}", r.plan),
                Err(e) => println!("{e}"),
            }
        }
        let passed = result.is_ok();
        // Runs that took over an hour of virtual time moved slowly but did
        // not hang (a hang is an hour without a byte): worth naming, as
        // candidates for `soak_regressions.rs`.
        if let Ok(r) = &result
            && r.virtual_time > std::time::Duration::from_secs(3_600)
        {
            println!(
                "LONG seed {seed}: {:.0} s of virtual time, {} bytes checked",
                r.virtual_time.as_secs_f64(),
                r.bytes_checked
            );
        }
        // A passing run's report is dropped inside `add`; what is still
        // allocated after it was left behind by the run.
        summary.add(result);
        let c = region.change();
        // (stats_alloc already books a realloc's growth or shrinkage in
        // bytes_allocated / bytes_deallocated.)
        let left = c.bytes_allocated as isize - c.bytes_deallocated as isize;
        if passed && left != 0 {
            leaked_runs += 1;
            println!("LEAK seed {seed}: {left} heap bytes still allocated after the run");
        }
        if i % 100 == 99 {
            crate::progress(&format!("soak: {} of {} seeds, {} failures", i + 1, seeds.len(), summary.failures.len()));
        }
    }
    eprint!("\r\x1b[2K");
    for f in &summary.failures {
        println!("FAIL {f}");
    }
    println!("{summary}, {leaked_runs} runs leaving heap behind; {:.1} s wall", started.elapsed().as_secs_f64());
    if summary.failures.is_empty() && leaked_runs == 0 { 0 } else { 1 }
}
