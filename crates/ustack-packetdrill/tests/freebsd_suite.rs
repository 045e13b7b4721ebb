//! Every script of the FreeBSD TCP test suite must parse.
//!
//! The scripts live beside the project, in `../shared/conformance/freebsd-tcp-testsuite`
//! (see the README there); they are read in place, never copied. Without that directory the
//! test passes with a note.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ustack_packetdrill::{EventKind, Script, Transport, parse_file, parse_str};

/// The number of `.pkt` files in the suite's subset (commit 04b8c73, see its README).
const EXPECTED_SCRIPTS: usize = 714;

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/freebsd-tcp-testsuite")
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|e| e == "pkt") {
            out.push(p);
        }
    }
}

/// Printing a script and parsing the print gives the same script (positions aside).
fn assert_round_trip(path: &Path, a: &Script) {
    let printed = a.to_string();
    let b =
        parse_str("<printed>", &printed).unwrap_or_else(|e| panic!("{}: reprint does not parse: {e}", path.display()));
    assert_eq!(a.options, b.options, "{}", path.display());
    assert_eq!(a.init_command, b.init_command, "{}", path.display());
    assert_eq!(a.cleanup_command, b.cleanup_command, "{}", path.display());
    assert_eq!(a.events.len(), b.events.len(), "{}", path.display());
    for (x, y) in a.events.iter().zip(&b.events) {
        assert_eq!((x.time, &x.kind, &x.conditions), (y.time, &y.kind, &y.conditions), "{}:{}", path.display(), x.line);
    }
}

#[test]
fn every_freebsd_script_parses() {
    let dir = suite_dir();
    if !dir.is_dir() {
        eprintln!("note: {} not found; skipping the FreeBSD suite", dir.display());
        return;
    }
    let mut files = Vec::new();
    collect(&dir, &mut files);

    let mut failures = Vec::new();
    let mut per_group: BTreeMap<String, usize> = BTreeMap::new();
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &files {
        let group = f
            .strip_prefix(&dir)
            .ok()
            .and_then(|p| p.components().next())
            .map_or_else(|| "?".to_string(), |c| c.as_os_str().to_string_lossy().into_owned());
        *per_group.entry(group).or_default() += 1;
        match parse_file(f) {
            Ok(script) => {
                assert!(!script.events.is_empty(), "{}: no events", f.display());
                assert!(script.option("ip_version").is_some(), "{}: no --ip_version", f.display());
                for e in &script.events {
                    let k = match &e.kind {
                        EventKind::Packet(p) => match p.transport {
                            Transport::Tcp(_) => "tcp packet",
                            Transport::Icmp(_) => "icmp packet",
                            Transport::Udp(_) => "udp packet",
                        },
                        EventKind::Syscall(_) => "syscall",
                        EventKind::Shell(_) => "shell",
                        EventKind::Python(_) => "python",
                    };
                    *kinds.entry(k).or_default() += 1;
                }
                assert_round_trip(f, &script);
            }
            Err(e) => failures.push(e.to_string()),
        }
    }

    println!("parsed {} of {} FreeBSD scripts", files.len() - failures.len(), files.len());
    for (group, n) in &per_group {
        println!("  {group:<20} {n:>4}");
    }
    for (kind, n) in &kinds {
        println!("  {kind:<20} {n:>6} events");
    }
    assert!(failures.is_empty(), "{} scripts failed to parse:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(files.len(), EXPECTED_SCRIPTS, "the suite should hold {EXPECTED_SCRIPTS} scripts");
}
