//! The conformance gate: the FreeBSD TCP test suite and the project's own scripts, run
//! against ustack in virtual time.
//!
//! - `tests/packetdrill/` (the project's scripts): every one must pass.
//! - `../shared/conformance/freebsd-tcp-testsuite` (read in place, never copied): every
//!   failure must be listed in `known-failures.txt`, and every listed script must still
//!   fail (the list only shrinks). Without that directory the test passes with a note;
//!   CI has it.

use std::path::{Path, PathBuf};

use ustack_packetdrill::runner::{Outcome, RunOptions};
use ustack_packetdrill::suite::{KnownFailures, collect, run_all};

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn known_failures() -> KnownFailures {
    KnownFailures::load(&manifest_dir().join("known-failures.txt")).expect("known-failures.txt is readable")
}

#[test]
fn own_scripts_pass() {
    let dir = manifest_dir().join("../../tests/packetdrill");
    let files = collect(&[dir]).expect("tests/packetdrill is readable");
    assert!(files.len() >= 4, "the project's own scripts are missing");
    for opts in [RunOptions::default(), RunOptions { strict: true, ..Default::default() }] {
        let report = run_all(&files, &opts, &KnownFailures::default());
        print!("{}", report.render(false));
        let bad: Vec<String> = report
            .results
            .iter()
            .filter(|r| r.outcome != Outcome::Pass)
            .map(|r| format!("{}: {:?}", r.file.rel, r.outcome))
            .collect();
        assert!(bad.is_empty(), "own scripts must pass (strict: {}):\n{}", opts.strict, bad.join("\n"));
    }
}

#[test]
fn freebsd_suite_has_no_unexpected_failures() {
    let dir = manifest_dir().join("../../../shared/conformance/freebsd-tcp-testsuite");
    if !dir.is_dir() {
        eprintln!("note: {} not found; skipping the FreeBSD TCP test suite", dir.display());
        return;
    }
    let known = known_failures();
    let files = collect(std::slice::from_ref(&dir)).expect("the suite is readable");
    let report = run_all(&files, &RunOptions::default(), &known);
    print!("{}", report.render(false));

    let unexpected: Vec<String> = report
        .unexpected_failures()
        .map(|r| match &r.outcome {
            Outcome::Fail(why) => format!("{}: {why}", r.file.rel),
            _ => unreachable!(),
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "{} scripts fail that crates/ustack-packetdrill/known-failures.txt does not list:\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );

    let fixed: Vec<&str> = report.fixed_known_failures().map(|r| r.file.rel.as_str()).collect();
    assert!(
        fixed.is_empty(),
        "these scripts pass now; remove them from crates/ustack-packetdrill/known-failures.txt:\n{}",
        fixed.join("\n")
    );

    let missing: Vec<&str> = known.paths().filter(|p| !Path::new(&dir).join(p).is_file()).collect();
    assert!(missing.is_empty(), "known-failures.txt lists scripts the suite does not have:\n{}", missing.join("\n"));

    // Every IPv4 script runs (skips only for what ustack lacks), and nothing is silently
    // lost: IPv6 twins aside, the counts add up.
    let (_, total) = report.counts();
    assert_eq!(total.scripts, files.len());
    assert_eq!(total.passed + total.failed + total.skipped, total.scripts);
}
