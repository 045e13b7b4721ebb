//! The fault soak, quick form (issue 7): 2,000 seeded runs, each with its
//! own random faults (loss up to 30%, bursts, duplication, reordering,
//! jitter, corruption, bandwidth limits, an outage of seconds, a path MTU
//! drop answered with ICMP "fragmentation needed") and its own random
//! applications (one to four connections, paused reads, late starts,
//! half-close, close, abort); see `ustack_core::sim::soak`. Every byte
//! delivered is checked, every connection must end, and nothing may be left
//! behind. The long form is `ustack-bench soak --seeds 100000`.
//!
//! Split in four tests so the harness runs them side by side.

use ustack_core::sim::soak::run_seeds;

fn soak(seeds: std::ops::Range<u64>) {
    let summary = run_seeds(seeds, true);
    eprintln!("{summary}");
    assert!(summary.failures.is_empty(), "{summary}:\n{}", summary.failures.join("\n"));
    assert!(summary.bytes_checked > 0);
}

#[test]
fn fault_soak_seeds_0000_0499_deliver_every_byte_and_leave_nothing_behind() {
    soak(0..500);
}
#[test]
fn fault_soak_seeds_0500_0999_deliver_every_byte_and_leave_nothing_behind() {
    soak(500..1000);
}
#[test]
fn fault_soak_seeds_1000_1499_deliver_every_byte_and_leave_nothing_behind() {
    soak(1000..1500);
}
#[test]
fn fault_soak_seeds_1500_1999_deliver_every_byte_and_leave_nothing_behind() {
    soak(1500..2000);
}
