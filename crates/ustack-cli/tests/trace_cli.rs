//! `ustack trace` on the pcaps `ustack demo` writes: the same ladder as the
//! demo's own, in pcap and pcapng; `--list` and `--conn`; and the SVG plots
//! of `trace --svg` and `demo --svg`, parsed as XML.

use std::path::{Path, PathBuf};
use std::process::Command;

fn ustack() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ustack"))
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ustack-trace-test-{}-{name}", std::process::id()))
}

/// Runs ustack; panics with its stderr unless it succeeds.
fn run(args: &[&str]) -> String {
    let out = ustack().args(args).output().unwrap();
    assert!(out.status.success(), "ustack {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A frame row of a ladder: the direction, the label on the arrow, and
/// whether the notes mark it as a retransmission of any kind.
#[derive(Debug, PartialEq, Eq)]
struct Row {
    left_to_right: bool,
    label: String,
    retransmission: bool,
}

/// The frame rows of every ladder in `text`.
fn frame_rows(text: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    for line in text.lines() {
        let parts: Vec<&str> = line.split('│').collect();
        if parts.len() < 3 || !parts[1].contains('─') {
            continue;
        }
        let arrow = parts[1];
        let tail = parts[2..].join("│");
        let label = arrow.trim_matches(|c| matches!(c, '─' | '►' | '◄' | '✗' | ' ')).to_string();
        rows.push(Row {
            left_to_right: arrow.trim_start().starts_with('─'),
            label,
            retransmission: tail.contains("retransmission)"),
        });
    }
    rows
}

/// The demo's ladder and the ladder `ustack trace` draws from the demo's
/// pcap list the same TCP frames, in the same order, with the same labels
/// and the same retransmissions.
fn trace_matches_demo(demo_args: &[&str], tag: &str) {
    let pcap = tmp(&format!("{tag}.pcap"));
    let mut args = vec!["demo", "--pcap", pcap.to_str().unwrap()];
    args.extend_from_slice(demo_args);
    let demo = run(&args);
    let trace = run(&["trace", pcap.to_str().unwrap()]);
    let ours: Vec<Row> =
        frame_rows(&demo).into_iter().filter(|r| !r.label.starts_with("ARP") && !r.label.contains("not TCP")).collect();
    let theirs = frame_rows(&trace);
    assert!(ours.len() >= 9, "too few TCP rows in the demo:\n{demo}");
    assert_eq!(ours, theirs, "demo ladder:\n{demo}\ntrace ladder:\n{trace}");
    // Same pcap as pcapng (Wireshark's format): the same ladder, byte for
    // byte.
    let ng = tmp(&format!("{tag}.pcapng"));
    let st = Command::new("editcap")
        .args(["-F", "pcapng"])
        .arg(&pcap)
        .arg(&ng)
        .status()
        .expect("editcap (from tshark's wireshark-common) is needed for this test: run .ci/run");
    assert!(st.success());
    assert_eq!(run(&["trace", ng.to_str().unwrap()]), trace);
    let _ = std::fs::remove_file(&pcap);
    let _ = std::fs::remove_file(&ng);
}

#[test]
fn trace_of_the_demo_pcap_is_the_demo_ladder() {
    trace_matches_demo(&[], "plain");
}

#[test]
fn trace_of_a_lossy_demo_marks_the_same_retransmissions() {
    let pcap = tmp("lossy-check.pcap");
    let demo = run(&["demo", "--loss", "0.3", "--seed", "7", "--pcap", pcap.to_str().unwrap()]);
    assert!(frame_rows(&demo).iter().any(|r| r.retransmission), "the lossy demo should retransmit:\n{demo}");
    let _ = std::fs::remove_file(&pcap);
    trace_matches_demo(&["--loss", "0.3", "--seed", "7"], "lossy");
}

#[test]
fn frame_rows_parse_both_directions_and_losses() {
    let text = "\
 0.010067               │── SYN seq=0 win=65535 ─────────►│  +5.059 ms
 0.015126               │◄────── SYN-ACK seq=0 ack=1 ──│  #4
 0.015126               │── ACK seq=1 ─────✗            │  lost  (retransmission)
 0.015126  ESTABLISHED  │                                │
";
    let rows = frame_rows(text);
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0], Row { left_to_right: true, label: "SYN seq=0 win=65535".into(), retransmission: false });
    assert_eq!(rows[1], Row { left_to_right: false, label: "SYN-ACK seq=0 ack=1".into(), retransmission: false });
    assert_eq!(rows[2], Row { left_to_right: true, label: "ACK seq=1".into(), retransmission: true });
}

#[test]
fn list_conn_and_their_errors() {
    let pcap = tmp("list.pcap");
    run(&["demo", "--pcap", pcap.to_str().unwrap()]);
    let list = run(&["trace", pcap.to_str().unwrap(), "--list"]);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    assert!(lines[1].contains("10.0.0.1:50784") && lines[1].contains("10.0.0.2:12345"), "{list}");
    // 9 frames, 14 bytes from the client, nothing from the server, no
    // retransmission; the client ends in TIME-WAIT, the server CLOSED.
    let cols: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(&cols[..7], &["1", "10.0.0.1:50784", "10.0.0.2:12345", "9", "14", "0", "0"], "{list}");
    assert!(lines[1].contains("TIME-WAIT / CLOSED"), "{list}");

    let one = run(&["trace", pcap.to_str().unwrap(), "--conn", "1"]);
    for state in ["SYN-SENT", "SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1", "CLOSE-WAIT", "FIN-WAIT-2", "LAST-ACK"] {
        assert!(one.contains(state), "no {state}:\n{one}");
    }
    let out = ustack().args(["trace", pcap.to_str().unwrap(), "--conn", "2"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("there is no connection 2"));
    let out = ustack().args(["trace", "/nonexistent/x.pcap"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/x.pcap"));
    std::fs::write(&pcap, b"this is not a capture file at all").unwrap();
    let out = ustack().args(["trace", pcap.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a pcap file"));
    let _ = std::fs::remove_file(&pcap);
}

/// The SVG, parsed: every text and each stroke colour's polylines.
struct Svg {
    texts: Vec<String>,
    /// (stroke, stroke-width) of every polyline.
    polylines: Vec<(String, String)>,
    height: u32,
}

fn parse_svg(path: &Path) -> Svg {
    let text = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{} is not XML: {e}", path.display()));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    let height = root.attribute("height").and_then(|h| h.parse().ok()).expect("svg height");
    let texts = root
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or("").trim().to_string())
        .collect();
    let polylines = root
        .descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .map(|n| {
            (n.attribute("stroke").unwrap_or("").to_string(), n.attribute("stroke-width").unwrap_or("").to_string())
        })
        .collect();
    Svg { texts, polylines, height }
}

impl Svg {
    fn has_text(&self, t: &str) -> bool {
        self.texts.iter().any(|x| x == t)
    }
    fn count(&self, stroke: &str, width: &str) -> usize {
        self.polylines.iter().filter(|(s, w)| s == stroke && w == width).count()
    }
}

const SEQ_SERIES: [&str; 5] =
    ["data segment", "retransmission (×)", "ACK", "receive window (ACK + window)", "SACK block"];
const THROUGHPUT_SERIES: [&str; 2] = ["sent (with retransmissions)", "acknowledged (goodput)"];
const CONGESTION_SERIES: [&str; 4] = ["cwnd", "ssthresh", "srtt", "rto"];

#[test]
fn demo_and_trace_plots_are_svg_with_every_series() {
    let pcap = tmp("plot.pcap");
    let demo_svg = tmp("demo.svg");
    let trace_svg = tmp("trace.svg");
    run(&[
        "demo",
        "--bytes",
        "100000",
        "--loss",
        "0.03",
        "--seed",
        "3",
        "--pcap",
        pcap.to_str().unwrap(),
        "--svg",
        demo_svg.to_str().unwrap(),
    ]);
    let trace = run(&["trace", pcap.to_str().unwrap(), "--svg", trace_svg.to_str().unwrap()]);
    let rexmits = frame_rows(&trace).iter().filter(|r| r.retransmission && r.label.contains("len=")).count();
    assert!(rexmits > 0, "a 3% loss run should retransmit data:\n{trace}");

    let demo = parse_svg(&demo_svg);
    for name in SEQ_SERIES.iter().chain(&THROUGHPUT_SERIES).chain(&CONGESTION_SERIES) {
        assert!(demo.has_text(name), "the demo plot has no series {name:?}: {:?}", demo.texts);
    }
    for axis in ["time (s)", "relative sequence number (bytes)", "Mbit/s", "bytes", "ms"] {
        assert!(demo.has_text(axis), "no axis {axis:?}");
    }
    // One red bar per retransmitted data segment the trace marks.
    assert_eq!(demo.count("#FF0000", "4"), rexmits);
    // Data bars, and the ACK line among the dark green lines.
    assert!(demo.count("#0000FF", "2") > 60);
    assert!(demo.count("#008C3C", "2") >= 3);

    let t = parse_svg(&trace_svg);
    for name in SEQ_SERIES.iter().chain(&THROUGHPUT_SERIES) {
        assert!(t.has_text(name), "the trace plot has no series {name:?}");
    }
    // A capture has no congestion window: two panels only.
    assert!(!t.has_text("cwnd"));
    assert!(t.height < demo.height);
    assert_eq!(t.count("#FF0000", "4"), rexmits);
    for p in [pcap, demo_svg, trace_svg] {
        let _ = std::fs::remove_file(p);
    }
}
