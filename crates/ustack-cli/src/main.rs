//! `ustack`: a user-space TCP/IP stack you can watch.

use clap::{Parser, Subcommand};
use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::process::ExitCode;
use ustack::phy::pcap::{LinkType, PcapWriter};
use ustack_core::sim::demo::{self, DemoOptions};
use ustack_core::time::Duration;

#[derive(Parser)]
#[command(name = "ustack", version, about = "A user-space TCP/IP stack: run it on a simulated wire or a real host")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a classic socket tutorial on a simulated wire and draw the ladder
    /// diagram.
    ///
    /// A server listens on 10.0.0.2:12345; a client from 10.0.0.1:50784
    /// connects, sends the 14 bytes "I'm TCP client", and closes; the server
    /// reads, prints what it got, and closes. Both hosts are ustack stacks
    /// joined by a simulated Ethernet link with virtual time, so the run is
    /// instant and the same seed always gives the same run. The diagram shows
    /// every frame (relative sequence numbers, flags, lengths, windows) and
    /// each side's TCP state as it changes.
    Demo(DemoArgs),
}

#[derive(clap::Args)]
struct DemoArgs {
    /// Probability (0 to 1) that the wire loses a frame, in each direction.
    #[arg(long, default_value_t = 0.0, value_parser = parse_probability)]
    loss: f64,
    /// Seed for the wire's faults and the stacks' random choices (ISNs).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write every frame put on the wire to this pcap file (tcpdump,
    /// tshark and Wireshark read it).
    #[arg(long, value_name = "FILE")]
    pcap: Option<PathBuf>,
    /// One-way delay of the link in milliseconds.
    #[arg(long, default_value_t = 5.0, value_parser = parse_millis)]
    delay_ms: f64,
    /// Link rate in Mbit/s.
    #[arg(long, default_value_t = 10.0, value_parser = parse_rate)]
    rate_mbps: f64,
    /// The message the client sends.
    #[arg(long, default_value = "I'm TCP client")]
    message: String,
}

fn parse_probability(s: &str) -> Result<f64, String> {
    let p: f64 = s.parse().map_err(|_| format!("`{s}` is not a number; give a probability like 0.1"))?;
    if (0.0..=0.9).contains(&p) {
        Ok(p)
    } else {
        Err(format!("{p} is outside 0 to 0.9; a probability of 0.1 loses one frame in ten"))
    }
}

fn parse_millis(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number of milliseconds"))?;
    if (0.0..=10_000.0).contains(&v) { Ok(v) } else { Err(format!("{v} ms is outside 0 to 10000")) }
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a rate in Mbit/s"))?;
    if v > 0.0 && v <= 1_000_000.0 { Ok(v) } else { Err(format!("{v} Mbit/s is outside (0, 1000000]")) }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo(args) => run_demo(args),
    }
}

fn run_demo(args: DemoArgs) -> ExitCode {
    let opts = DemoOptions {
        loss: args.loss,
        seed: args.seed,
        delay: Duration::from_nanos((args.delay_ms * 1e6) as u64),
        bandwidth_bps: (args.rate_mbps * 1e6) as u64,
        message: args.message.into_bytes(),
    };
    let out = demo::run(&opts);
    print!("{}", out.ladder);
    println!();
    println!("server received {} bytes: {:?}", out.received.len(), String::from_utf8_lossy(&out.received));
    println!(
        "{} frames on the wire ({} TCP segments), {} retransmissions; last connection closed at {} s",
        out.frames.len(),
        out.tcp_segments,
        out.retransmissions,
        out.finished_at
    );
    if let Some(e) = out.client_error {
        println!("client saw an error: {e}");
    }
    if let Some(e) = out.server_error {
        println!("server saw an error: {e}");
    }
    if let Some(path) = args.pcap {
        if let Err(e) = write_pcap(&path, &out.frames) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!(
            "wrote {} frames to {} (open it with `tshark -r {}` or Wireshark)",
            out.frames.len(),
            path.display(),
            path.display()
        );
    }
    if out.received != opts.message {
        eprintln!("error: the message did not arrive intact");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn write_pcap(path: &PathBuf, frames: &[demo::WireFrame]) -> std::io::Result<()> {
    let file = BufWriter::new(File::create(path)?);
    let mut w = PcapWriter::new(file, LinkType::Ethernet)?;
    for f in frames {
        w.write_packet(f.time, &f.data)?;
    }
    w.flush()
}
