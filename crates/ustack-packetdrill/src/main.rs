//! `ustack-packetdrill`: packetdrill scripts for ustack.
//!
//! ```text
//! ustack-packetdrill parse [--dump] PATH...
//! ustack-packetdrill run [--strict] [--verbose] [--define SYM] [--known-failures FILE] PATH...
//! ```
//!
//! `run` plays every script against a fresh ustack stack in virtual time and prints one
//! line per script (`pass`, `FAIL <first mismatch>`, `SKIP <reason>`), a table per group and
//! the totals. It exits with status 1 when a script fails that the known-failures file
//! (by default `crates/ustack-packetdrill/known-failures.txt`) does not list.
//!
//! `parse` reads every script given (a directory means every `.pkt` file below it) and prints
//! one line per file: `OK` with the number of events, or the error with file, line and column.
//! `--dump` also prints each parsed script back in packetdrill syntax, one event per line, as
//! the parser understood it. The exit status is 1 if any file fails to parse.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ustack_packetdrill::runner::RunOptions;
use ustack_packetdrill::suite::{KnownFailures, collect, run_all};
use ustack_packetdrill::{Error, parse_file};

const USAGE: &str = "\
usage: ustack-packetdrill parse [--dump] PATH...
       ustack-packetdrill run [--strict] [--verbose] [--define SYM] [--known-failures FILE] PATH...

  parse    parse packetdrill scripts and report OK or the first syntax error
           (file:line:column); a directory means every .pkt file below it
  --dump   print each parsed script back, one normalised event per line

  run      run the scripts against ustack in virtual time: a line per script
           (pass / FAIL / SKIP), a table per group, and the totals; exit status 1
           when a script fails that the known-failures file does not list
  --strict           compare every field (window, option order and values, TS val)
  --verbose          print every event and packet of every script
  --define SYM       follow #ifdef SYM sections (default: STANDARD; e.g. FreeBSD)
  --known-failures F the known-failures file (default: the crate's known-failures.txt)";

/// The known-failures file of this crate.
const KNOWN_FAILURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/known-failures.txt");

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("parse") => parse_command(&args[1..]),
        Some("run") => run_command(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn parse_command(args: &[String]) -> ExitCode {
    let mut dump = false;
    let mut paths = Vec::new();
    for a in args {
        match a.as_str() {
            "--dump" => dump = true,
            s if s.starts_with('-') => {
                eprintln!("unknown option `{s}`\n{USAGE}");
                return ExitCode::from(2);
            }
            s => paths.push(PathBuf::from(s)),
        }
    }
    if paths.is_empty() {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    let mut files = Vec::new();
    for p in &paths {
        if p.is_dir() {
            if let Err(e) = collect_scripts(p, &mut files) {
                eprintln!("{}: {e}", p.display());
                return ExitCode::FAILURE;
            }
        } else {
            files.push(p.clone());
        }
    }
    match report(&files, dump, &mut std::io::stdout().lock()) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        // stdout closed (e.g. piped into `head`): stop quietly.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn run_command(args: &[String]) -> ExitCode {
    let mut opts = RunOptions::default();
    let mut defines = Vec::new();
    let mut known_path = PathBuf::from(KNOWN_FAILURES);
    let mut paths = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--strict" => opts.strict = true,
            "--verbose" | "-v" => opts.verbose = true,
            "--define" => match it.next() {
                Some(d) => defines.push(d.clone()),
                None => return usage_error("--define needs a symbol"),
            },
            "--known-failures" => match it.next() {
                Some(f) => known_path = PathBuf::from(f),
                None => return usage_error("--known-failures needs a file"),
            },
            s if s.starts_with('-') => return usage_error(&format!("unknown option `{s}`")),
            s => paths.push(PathBuf::from(s)),
        }
    }
    if paths.is_empty() {
        return usage_error("no scripts given");
    }
    if !defines.is_empty() {
        opts.defines = defines;
    }
    let known = match KnownFailures::load(&known_path) {
        Ok(k) => k,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => KnownFailures::default(),
        Err(e) => {
            eprintln!("{}: {e}", known_path.display());
            return ExitCode::FAILURE;
        }
    };
    let files = match collect(&paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let report = run_all(&files, &opts, &known);
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(report.render(opts.verbose).as_bytes())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("{e}");
    }
    if report.unexpected_failures().next().is_some() { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("{msg}\n{USAGE}");
    ExitCode::from(2)
}

/// Parse each file, print its line; the number of files that failed.
fn report(files: &[PathBuf], dump: bool, out: &mut impl Write) -> std::io::Result<usize> {
    let mut failed = 0;
    for f in files {
        match parse_file(f) {
            Ok(script) => {
                writeln!(out, "{}: OK ({} events)", f.display(), script.events.len())?;
                if dump {
                    write!(out, "{script}")?;
                }
            }
            Err(Error::Parse(e)) => {
                failed += 1;
                writeln!(out, "{}", e.render())?;
            }
            Err(e) => {
                failed += 1;
                writeln!(out, "{e}")?;
            }
        }
    }
    if files.len() > 1 {
        writeln!(out, "{} files: {} parsed, {} failed", files.len(), files.len() - failed, failed)?;
    }
    Ok(failed)
}

/// Every `.pkt` file below `dir`, sorted.
fn collect_scripts(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect_scripts(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "pkt") {
            out.push(p);
        }
    }
    Ok(())
}
