//! `ustack-packetdrill`: packetdrill scripts for ustack.
//!
//! ```text
//! ustack-packetdrill parse [--dump] PATH...
//! ```
//!
//! `parse` reads every script given (a directory means every `.pkt` file below it) and prints
//! one line per file: `OK` with the number of events, or the error with file, line and column.
//! `--dump` also prints each parsed script back in packetdrill syntax, one event per line, as
//! the parser understood it. The exit status is 1 if any file fails to parse.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ustack_packetdrill::{Error, parse_file};

const USAGE: &str = "\
usage: ustack-packetdrill parse [--dump] PATH...

  parse    parse packetdrill scripts and report OK or the first syntax error
           (file:line:column); a directory means every .pkt file below it
  --dump   print each parsed script back, one normalised event per line";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("parse") => parse_command(&args[1..]),
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
