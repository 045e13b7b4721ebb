//! Running many scripts: collecting them, the known-failures list, and the report.
//!
//! The report has one line per script (`pass`, `FAIL <first mismatch>`, `SKIP <reason>`),
//! a table per group (the first directory below the root given), the skip reasons with
//! their counts, and a last line `N passed, N failed, N skipped`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::runner::{Outcome, RunOptions, run_path};

/// Scripts that fail for a reason written down (`CONFORMANCE.md`): one path per line,
/// relative to the suite's root, with a `#` comment saying why. A failure listed here does
/// not fail the run. The list only shrinks.
#[derive(Clone, Debug, Default)]
pub struct KnownFailures {
    entries: Vec<(String, String)>,
}

impl KnownFailures {
    /// Reads the list. Blank lines and lines starting with `#` are comments.
    pub fn parse(text: &str) -> Self {
        let entries = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| match l.split_once('#') {
                Some((path, why)) => (path.trim().to_string(), why.trim().to_string()),
                None => (l.to_string(), String::new()),
            })
            .collect();
        KnownFailures { entries }
    }

    /// Reads the list from a file.
    pub fn load(path: &Path) -> std::io::Result<Self> {
        Ok(Self::parse(&std::fs::read_to_string(path)?))
    }

    /// The reason a script is listed, if it is (its path ends with a listed path).
    pub fn reason(&self, script: &Path) -> Option<&str> {
        let s = script.to_string_lossy().replace('\\', "/");
        self.entries.iter().find(|(p, _)| s == *p || s.ends_with(&format!("/{p}"))).map(|(_, why)| why.as_str())
    }

    /// The listed paths.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(p, _)| p.as_str())
    }
}

/// One script found below a root.
#[derive(Clone, Debug)]
pub struct ScriptFile {
    /// The file.
    pub path: PathBuf,
    /// Its path relative to the root it was found under (the file name for a file given
    /// directly).
    pub rel: String,
    /// The first directory of `rel`, or the root's name for scripts right under it.
    pub group: String,
}

/// Every `.pkt` file below the given files and directories, sorted within each root.
pub fn collect(paths: &[PathBuf]) -> std::io::Result<Vec<ScriptFile>> {
    let mut out = Vec::new();
    for root in paths {
        if root.is_dir() {
            let mut files = Vec::new();
            walk(root, &mut files)?;
            let root_name = root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            for f in files {
                let rel = f.strip_prefix(root).unwrap_or(&f).to_string_lossy().replace('\\', "/");
                let group = match rel.split_once('/') {
                    Some((g, _)) => g.to_string(),
                    None => root_name.clone(),
                };
                out.push(ScriptFile { path: f, rel, group });
            }
        } else {
            let rel = root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let group = root
                .parent()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| ".".into());
            out.push(ScriptFile { path: root.clone(), rel, group });
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "pkt") {
            out.push(p);
        }
    }
    Ok(())
}

/// One script's result.
#[derive(Clone, Debug)]
pub struct ScriptResult {
    /// Where the script is.
    pub file: ScriptFile,
    /// How it ended.
    pub outcome: Outcome,
    /// The known-failures entry's reason, if the script is listed.
    pub known: Option<String>,
    /// The runner's trace (verbose runs only).
    pub trace: Vec<String>,
}

impl ScriptResult {
    /// A failure not in the known-failures list.
    pub fn is_unexpected_failure(&self) -> bool {
        matches!(self.outcome, Outcome::Fail(_)) && self.known.is_none()
    }
}

/// The results of a run.
#[derive(Clone, Debug, Default)]
pub struct SuiteReport {
    /// In the order run.
    pub results: Vec<ScriptResult>,
}

/// Runs every script, one fresh stack each.
pub fn run_all(files: &[ScriptFile], opts: &RunOptions, known: &KnownFailures) -> SuiteReport {
    let results = files
        .iter()
        .map(|f| {
            let run = run_path(&f.path, opts);
            ScriptResult {
                file: f.clone(),
                outcome: run.outcome,
                known: known.reason(&f.path).map(str::to_string),
                trace: run.trace,
            }
        })
        .collect();
    SuiteReport { results }
}

/// Counts of one group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Scripts run.
    pub scripts: usize,
    /// Passed.
    pub passed: usize,
    /// Failed (known failures included).
    pub failed: usize,
    /// Of `failed`, those in the known-failures list.
    pub known: usize,
    /// Skipped.
    pub skipped: usize,
}

impl SuiteReport {
    /// Counts per group, and in total.
    pub fn counts(&self) -> (BTreeMap<String, Counts>, Counts) {
        let mut groups: BTreeMap<String, Counts> = BTreeMap::new();
        let mut total = Counts::default();
        for r in &self.results {
            for c in [groups.entry(r.file.group.clone()).or_default(), &mut total] {
                c.scripts += 1;
                match r.outcome {
                    Outcome::Pass => c.passed += 1,
                    Outcome::Fail(_) => {
                        c.failed += 1;
                        if r.known.is_some() {
                            c.known += 1;
                        }
                    }
                    Outcome::Skip(_) => c.skipped += 1,
                }
            }
        }
        (groups, total)
    }

    /// Failures not in the known-failures list.
    pub fn unexpected_failures(&self) -> impl Iterator<Item = &ScriptResult> {
        self.results.iter().filter(|r| r.is_unexpected_failure())
    }

    /// Listed scripts that passed: their entries can go.
    pub fn fixed_known_failures(&self) -> impl Iterator<Item = &ScriptResult> {
        self.results.iter().filter(|r| r.known.is_some() && r.outcome == Outcome::Pass)
    }

    /// Skip reasons with their counts, most frequent first.
    pub fn skip_reasons(&self) -> Vec<(String, usize)> {
        let mut m: BTreeMap<String, usize> = BTreeMap::new();
        for r in &self.results {
            if let Outcome::Skip(why) = &r.outcome {
                *m.entry(why.clone()).or_default() += 1;
            }
        }
        let mut v: Vec<_> = m.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }

    /// The whole report: a line per script, a table per group, the skip reasons, and the
    /// totals as the last line.
    pub fn render(&self, verbose: bool) -> String {
        let mut s = String::new();
        for r in &self.results {
            let _ = match &r.outcome {
                Outcome::Pass => writeln!(s, "pass  {}", r.file.rel),
                Outcome::Fail(why) => match &r.known {
                    Some(k) => writeln!(s, "FAIL  {}: {why} [known failure: {k}]", r.file.rel),
                    None => writeln!(s, "FAIL  {}: {why}", r.file.rel),
                },
                Outcome::Skip(why) => writeln!(s, "SKIP  {}: {why}", r.file.rel),
            };
            if verbose {
                for line in &r.trace {
                    let _ = writeln!(s, "        {line}");
                }
            }
        }
        let (groups, total) = self.counts();
        let width = groups.keys().map(String::len).max().unwrap_or(5).max(5);
        let _ = writeln!(s);
        let _ = writeln!(s, "{:<width$}  scripts  passed  failed  skipped", "group");
        for (g, c) in &groups {
            let _ =
                writeln!(s, "{g:<width$}  {:>7}  {:>6}  {:>6}  {:>7}", c.scripts, c.passed, fmt_failed(c), c.skipped);
        }
        let _ = writeln!(
            s,
            "{:<width$}  {:>7}  {:>6}  {:>6}  {:>7}",
            "total",
            total.scripts,
            total.passed,
            fmt_failed(&total),
            total.skipped
        );
        let reasons = self.skip_reasons();
        if !reasons.is_empty() {
            let _ = writeln!(s, "\nskipped:");
            for (why, n) in reasons {
                let _ = writeln!(s, "  {n:>4}  {why}");
            }
        }
        for r in self.fixed_known_failures() {
            let _ = writeln!(s, "\nnote: {} passes now; remove it from the known failures", r.file.rel);
        }
        let unexpected = self.unexpected_failures().count();
        if total.known > 0 || unexpected > 0 {
            let _ = writeln!(s, "\n{} known failures, {unexpected} unexpected", total.known);
        }
        let _ = writeln!(s, "{} passed, {} failed, {} skipped", total.passed, total.failed, total.skipped);
        s
    }
}

fn fmt_failed(c: &Counts) -> String {
    c.failed.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_failures_match_by_suffix() {
        let k = KnownFailures::parse("# header\n\na/b.pkt  # why not\nc.pkt\n");
        assert_eq!(k.reason(Path::new("/x/y/a/b.pkt")), Some("why not"));
        assert_eq!(k.reason(Path::new("/x/c.pkt")), Some(""));
        assert_eq!(k.reason(Path::new("/x/ab.pkt")), None);
        assert_eq!(k.paths().count(), 2);
    }
}
