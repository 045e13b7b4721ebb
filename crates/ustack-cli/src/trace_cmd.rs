//! `ustack trace FILE`: the TCP connections of a pcap or pcapng capture as
//! ladder diagrams, a list of them, or plots.

use crate::plot;
use std::path::{Path, PathBuf};
use ustack::phy::pcap;
use ustack_core::tcp::State;
use ustack_core::trace::analysis::{CaptureAnalysis, Connection};
use ustack_core::trace::ladder::Side;

#[derive(clap::Args)]
pub struct TraceArgs {
    /// A pcap or pcapng file (from ustack, tcpdump, dumpcap or Wireshark).
    /// Frames may be Ethernet, raw IP or Linux cooked (`tcpdump -i any`);
    /// TCP over IPv4 is shown, everything else counted and skipped.
    pub file: PathBuf,
    /// Show only connection N (numbered as `--list` shows them).
    #[arg(long, value_name = "N")]
    pub conn: Option<usize>,
    /// List the connections (endpoints, frames, bytes, retransmissions,
    /// final states) instead of drawing their ladders.
    #[arg(long)]
    pub list: bool,
    /// Also plot one connection to this SVG file: a time-sequence graph
    /// (segments, ACK line, receive window, SACK blocks, retransmissions)
    /// over a throughput plot. Plots connection N with --conn, otherwise
    /// the one that carried the most data.
    #[arg(long, value_name = "OUT.svg")]
    pub svg: Option<PathBuf>,
}

/// Reads every frame of the capture through the analysis.
pub fn analyze(path: &Path) -> Result<CaptureAnalysis, String> {
    let capture = pcap::open_capture(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut analysis = CaptureAnalysis::new();
    for packet in capture {
        let p = packet.map_err(|e| format!("{}: {e}", path.display()))?;
        analysis.add(p.time, p.link.code(), &p.data);
    }
    Ok(analysis)
}

fn state_name(s: Option<State>) -> &'static str {
    s.map_or("?", |s| s.name())
}

/// One line about a connection.
fn summary(c: &Connection) -> String {
    let [l, r] = c.endpoints;
    let [ls, rs] = c.final_states();
    format!(
        "connection {}: {l} → {r}: {} frames, {} bytes →, {} bytes ←, {} retransmissions{}; ends {} / {}",
        c.number,
        c.frames(),
        c.bytes_from(Side::Left),
        c.bytes_from(Side::Right),
        c.retransmissions(),
        if c.saw_syn { "" } else { " (capture starts mid-connection)" },
        state_name(ls),
        state_name(rs),
    )
}

/// The table `--list` prints.
pub fn list(a: &CaptureAnalysis) -> String {
    let mut out = format!(
        "{:>4}  {:<21}  {:<21}  {:>7}  {:>10}  {:>10}  {:>6}  states at the end\n",
        "conn", "client (left)", "server (right)", "frames", "bytes →", "bytes ←", "rexmit"
    );
    for c in &a.connections {
        let [ls, rs] = c.final_states();
        out.push_str(&format!(
            "{:>4}  {:<21}  {:<21}  {:>7}  {:>10}  {:>10}  {:>6}  {} / {}{}\n",
            c.number,
            c.endpoints[0].to_string(),
            c.endpoints[1].to_string(),
            c.frames(),
            c.bytes_from(Side::Left),
            c.bytes_from(Side::Right),
            c.retransmissions(),
            state_name(ls),
            state_name(rs),
            if c.saw_syn { "" } else { " (no SYN)" },
        ));
    }
    out
}

pub fn run(args: TraceArgs) -> Result<(), String> {
    let a = analyze(&args.file)?;
    let t0 = a.start.unwrap_or_default();
    let chosen: Vec<&Connection> = match args.conn {
        Some(n) => {
            let c = a.connections.get(n.wrapping_sub(1)).ok_or_else(|| {
                format!(
                    "there is no connection {n}: {} has {} TCP connection(s); see them with --list",
                    args.file.display(),
                    a.connections.len()
                )
            })?;
            vec![c]
        }
        None => a.connections.iter().collect(),
    };
    if args.list {
        print!("{}", list(&a));
    } else {
        for (k, c) in chosen.iter().enumerate() {
            if k > 0 {
                println!();
            }
            println!("{}", summary(c));
            print!("{}", c.ladder(t0).render());
        }
    }
    eprintln!(
        "{}: {} frames, {} TCP connection(s), {} frames not IPv4 TCP",
        args.file.display(),
        a.frames,
        a.connections.len(),
        a.other_frames
    );
    if let Some(out) = &args.svg {
        let c = chosen
            .iter()
            .max_by_key(|c| (c.bytes_from(Side::Left) + c.bytes_from(Side::Right), std::cmp::Reverse(c.number)))
            .ok_or_else(|| format!("{} holds no TCP connection to plot", args.file.display()))?;
        plot::write_svg(out, c, None)?;
        eprintln!("plotted connection {} to {}", c.number, out.display());
    }
    Ok(())
}
