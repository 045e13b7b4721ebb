//! `ustack`: a user-space TCP/IP stack you can watch.

mod icmp_cmd;
mod net;
mod plot;
mod services;
mod socks;
mod trace_cmd;

use clap::{Parser, Subcommand};
use net::DeviceArgs;
use std::fs::File;
use std::io::BufWriter;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// Read a pcap or pcapng capture (from ustack, tcpdump or Wireshark)
    /// and draw the ladder diagram of each TCP connection in it.
    ///
    /// Connections are found by their 4-tuple (a new SYN on a reused one
    /// starts another) and numbered; the side that sent the first SYN is on
    /// the left. Each row shows the segment with relative seq/ack, flags,
    /// length, window and SYN options, the frame number, and Wireshark's
    /// expert marks: retransmission (also fast and spurious), duplicate ACK
    /// #n, out-of-order, zero window, window full, keep-alive, window
    /// update. Each side's TCP state is inferred from what it sent and
    /// received. Example: ustack trace capture.pcap --conn 1 --svg conn1.svg
    Trace(trace_cmd::TraceArgs),
    /// Bring up a TUN/TAP device and serve on ustack's address: TCP echo
    /// (7), discard (9), chargen (19), HTTP (80: /, /bytes/N, /echo,
    /// /stats, /whoami), UDP echo (7), and ICMP echo replies. Needs root.
    ///
    /// Example: sudo ustack up --tun ustack0 --addr 10.7.0.2/24 --host-addr 10.7.0.1/24
    /// then `curl http://10.7.0.2/` and `ping 10.7.0.2`. Ctrl-C closes every
    /// connection and removes the device if ustack created it.
    Up(UpArgs),
    /// Connect to HOST:PORT over ustack, like nc: standard input goes to the
    /// connection (half-closed at end of input), the connection to standard
    /// output.
    Connect {
        #[command(flatten)]
        dev: DeviceArgs,
        /// Where to connect, e.g. 10.7.0.1:8000.
        #[arg(value_parser = net::parse_endpoint)]
        target: std::net::SocketAddrV4,
    },
    /// Fetch http://HOST[:PORT]/PATH over ustack (HTTP/1.1 GET).
    Get {
        #[command(flatten)]
        dev: DeviceArgs,
        /// The URL; the host must be an IPv4 address.
        url: String,
        /// Write the body here instead of standard output.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Send ICMP echo requests through ustack and print the round-trip
    /// times, or the ICMP errors routers send about them. Needs root.
    ///
    /// Example: sudo ustack ping --tun ustack0 --addr 10.7.0.2/24 --host-addr 10.7.0.1/24 10.7.0.1;
    /// `-M do -s 1472` sends requests that fill a 1500-byte MTU with DF set,
    /// and a router on a narrower path answers "Frag needed and DF set".
    Ping(icmp_cmd::PingArgs),
    /// Carry every TCP connection and UDP datagram to the networks the
    /// kernel routes to ustack through a SOCKS5 proxy (RFC 1928), to the
    /// address its client asked for: what a VPN client's tun2socks does.
    /// UDP needs a proxy with UDP ASSOCIATE. Needs root.
    ///
    /// Example: sudo ustack tun2socks --tun ustack0 --addr 10.7.0.2/24 --host-addr 10.7.0.1/24 --socks 127.0.0.1:1080
    /// then `ip route add 10.99.0.0/16 via 10.7.0.2` and any TCP client
    /// reaching 10.99.x.y, TCP or UDP, goes through the proxy.
    Tun2socks(socks::Tun2socksArgs),
    /// Trace the route to a host: ICMP echo requests with TTL 1, 2, 3, ...,
    /// each router on the way answering the one that expires there with
    /// "time exceeded" (as `traceroute -I`). Needs root.
    ///
    /// Example: sudo ustack traceroute --tun ustack0 --addr 10.7.0.2/24 --host-addr 10.7.0.1/24 --gateway 10.7.0.1 10.8.0.9
    Traceroute(icmp_cmd::TracerouteArgs),
}

#[derive(clap::Args)]
struct UpArgs {
    #[command(flatten)]
    dev: DeviceArgs,
    /// Print a one-line summary of the stack's counters every second.
    #[arg(long)]
    stats: bool,
    /// Run N stacks (shards), one per queue of a multi-queue TUN device,
    /// each with its own thread; the kernel's connections spread over
    /// them by their ports. Try the number of cores.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = parse_shards)]
    shards: usize,
    /// Sign TCP with RFC 2385 MD5 signatures towards PEER (an IPv4
    /// address) with KEY (1 to 80 bytes) on every service, as Linux's
    /// TCP_MD5SIG: that peer's segments must carry the signature. Repeat
    /// for more peers.
    #[arg(long, value_name = "PEER=KEY", value_parser = parse_md5_key)]
    md5_key: Vec<(std::net::Ipv4Addr, String)>,
    /// TCP Fast Open (RFC 7413) on every TCP service: a client that got a
    /// cookie before sends its request in the SYN and has the answer a
    /// round trip sooner (Linux: `sysctl net.ipv4.tcp_fastopen=1`, then
    /// `curl --tcp-fastopen`). N is how many such connections may wait for
    /// their handshake at once, as Linux's TCP_FASTOPEN; 0, off.
    #[arg(long, value_name = "N", default_value_t = 0)]
    fast_open: usize,
}

fn parse_md5_key(s: &str) -> Result<(std::net::Ipv4Addr, String), String> {
    let (peer, key) = s.split_once('=').ok_or_else(|| format!("`{s}`: expected PEER=KEY, e.g. 10.7.0.1=secret"))?;
    let peer = peer.parse().map_err(|_| format!("`{peer}` is not an IPv4 address"))?;
    if key.is_empty() || key.len() > ustack_core::tcp::MD5_MAX_KEY_LEN {
        return Err(format!("a key of {} bytes: use 1 to 80", key.len()));
    }
    Ok((peer, key.to_string()))
}

fn parse_shards(s: &str) -> Result<usize, String> {
    let n: usize =
        s.parse().map_err(|_| format!("`{s}` is not a number of shards; try the number of cores, e.g. 2"))?;
    if (1..=64).contains(&n) { Ok(n) } else { Err(format!("{n} shards: use 1 to 64")) }
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
    /// Send N bytes instead (the message repeated): try --bytes 200000
    /// --loss 0.02 --svg demo.svg to watch slow start, losses and recovery.
    #[arg(long, value_name = "N", conflicts_with = "message", value_parser = parse_bytes)]
    bytes: Option<usize>,
    /// Plot the client's connection to this SVG file: time-sequence graph,
    /// throughput, and the client's congestion window, ssthresh, smoothed
    /// RTT and RTO from its trace events.
    #[arg(long, value_name = "OUT.svg")]
    svg: Option<PathBuf>,
}

fn parse_bytes(s: &str) -> Result<usize, String> {
    let n: usize = s.parse().map_err(|_| format!("`{s}` is not a number of bytes"))?;
    if (1..=100_000_000).contains(&n) { Ok(n) } else { Err(format!("{n} bytes is outside 1 to 100000000")) }
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
    // RUST_LOG=ustack::tcp=debug (or ustack::ip, ustack::udp, ustack::link;
    // trace for every segment) logs the stack's decisions to stderr, each
    // with its RFC rule; see ustack_core::log.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .with_target(true)
        .init();
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Demo(args) => return run_demo(args),
        Command::Trace(args) => trace_cmd::run(args).map(|()| ExitCode::SUCCESS),
        Command::Up(args) => run_up(args),
        Command::Connect { dev, target } => run_connect(dev, target),
        Command::Get { dev, url, output } => run_get(dev, &url, output),
        Command::Ping(args) => icmp_cmd::run_ping(args),
        Command::Traceroute(args) => icmp_cmd::run_traceroute(args),
        Command::Tun2socks(args) => run_tun2socks(args),
    };
    match r {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn run_up(args: UpArgs) -> Result<ExitCode, String> {
    let node = net::bring_up_shards(&args.dev, args.shards)?;
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    ctrlc::set_handler(move || stop2.store(true, Ordering::SeqCst))
        .map_err(|e| format!("cannot handle Ctrl-C: {e}"))?;
    for net in &node.shards {
        services::start_all(net, args.dev.addr.address(), args.dev.any_ip, stop.clone(), &args.md5_key, args.fast_open)
            .map_err(net::io_msg)?;
    }
    eprintln!(
        "ustack is up on {} ({}{}{}{}): echo 7, discard 9, chargen 19, http 80, udp echo 7, ping",
        args.dev.addr,
        node.device_name,
        if args.dev.tap { ", TAP" } else { ", TUN" },
        if node.offload { ", offload on" } else { "" },
        if args.shards > 1 { format!(", {} shards", args.shards) } else { String::new() }
    );
    if let Some(h) = args.dev.host_addr {
        eprintln!(
            "the kernel's side is {h}; try: curl http://{}/  or  ping {}",
            args.dev.addr.address(),
            args.dev.addr.address()
        );
    }
    run_until_stopped(node, &stop, args.stats)
}

/// Serves until Ctrl-C sets `stop` (printing a line of counters a second
/// with `stats`), then closes every connection, resets what does not
/// close within 2 s, and stops the stacks (removing the device if ustack
/// created it).
fn run_until_stopped(node: net::Node, stop: &AtomicBool, stats: bool) -> Result<ExitCode, String> {
    eprintln!("press Ctrl-C to stop");
    let mut last = std::time::Instant::now();
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(std::time::Duration::from_millis(100));
        if stats && last.elapsed() >= std::time::Duration::from_secs(1) {
            last = std::time::Instant::now();
            for (i, net) in node.shards.iter().enumerate() {
                let tag = if node.shards.len() > 1 { format!("shard {i}: ") } else { String::new() };
                eprintln!("{tag}{}", stats_line(net));
            }
        }
    }
    eprintln!("stopping: closing connections");
    let shards = &node.shards;
    // Every connection gets a FIN (those already closing finish their
    // way); wait a moment for the peers to answer, then reset what is left.
    for net in shards {
        net.with_stack(|s, _| {
            let handles: Vec<_> = s.tcp_connections().map(|(h, _)| h).collect();
            for h in handles {
                let _ = s.shutdown(h, ustack_core::Shutdown::Write);
            }
        });
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while std::time::Instant::now() < deadline {
        let open: usize = shards.iter().map(|net| net.with_stack(|s, _| unfinished(s).len())).sum();
        if open == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    for net in shards {
        net.with_stack(|s, _| {
            for h in unfinished(s) {
                let _ = s.abort(h);
            }
        });
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    let created = node.created;
    let name = node.device_name.clone();
    for net in node.shards {
        net.shutdown().map_err(net::io_msg)?;
    }
    if created {
        eprintln!("removed device {name}");
    }
    Ok(ExitCode::SUCCESS)
}

fn run_tun2socks(mut args: socks::Tun2socksArgs) -> Result<ExitCode, String> {
    args.dev.any_ip = true;
    let login = match &args.socks_user {
        Some(user) => {
            let password = std::env::var("USTACK_SOCKS_PASSWORD").map_err(|_| {
                "--socks-user needs the password in the environment variable USTACK_SOCKS_PASSWORD".to_string()
            })?;
            Some(Arc::new(socks::Login::new(user, &password)?))
        }
        None => None,
    };
    let proxy = socks::Proxy { addr: args.socks, login };
    let node = net::bring_up(&args.dev)?;
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    ctrlc::set_handler(move || stop2.store(true, Ordering::SeqCst))
        .map_err(|e| format!("cannot handle Ctrl-C: {e}"))?;
    socks::start(node.net(), proxy).map_err(net::io_msg)?;
    eprintln!(
        "ustack takes every address routed to {} ({}) and carries its TCP connections and UDP datagrams through the SOCKS5 proxy at {}",
        args.dev.addr.address(),
        node.device_name,
        args.socks
    );
    eprintln!("route a network to it, e.g.: ip route add 10.99.0.0/16 via {}", args.dev.addr.address());
    run_until_stopped(node, &stop, false)
}

/// Connections not yet done with their peer (neither in TIME-WAIT nor
/// CLOSED).
fn unfinished(s: &ustack_core::Stack) -> Vec<ustack_core::SocketHandle> {
    s.tcp_connections()
        .filter(|(_, c)| !matches!(c.state(), ustack_core::tcp::State::TimeWait | ustack_core::tcp::State::Closed))
        .map(|(h, _)| h)
        .collect()
}

/// One line of counters: connections by state, segments, retransmissions,
/// drops.
fn stats_line(net: &ustack::NetStack) -> String {
    net.with_stack(|s, _| {
        let mut by_state: std::collections::BTreeMap<&'static str, usize> = Default::default();
        for (_, c) in s.tcp_connections() {
            *by_state.entry(c.state().name()).or_default() += 1;
        }
        let st = s.stats();
        let states: Vec<String> = by_state.iter().map(|(k, v)| format!("{k} {v}")).collect();
        format!(
            "conns [{}] segs in {} out {} rexmit {} drops {}",
            states.join(", "),
            st.tcp.segments_in,
            st.tcp.segments_out,
            st.tcp.retransmitted_segments,
            st.total_drops()
        )
    })
}

fn run_connect(dev: DeviceArgs, target: std::net::SocketAddrV4) -> Result<ExitCode, String> {
    let node = net::bring_up(&dev)?;
    let conn = net::connect(&node, &dev, target).map_err(|e| format!("cannot connect to {target}: {e}"))?;
    let writer = conn.try_clone().map_err(net::io_msg)?;
    let up = std::thread::spawn(move || {
        let mut w = writer;
        let mut stdin = std::io::stdin().lock();
        let _ = std::io::copy(&mut stdin, &mut w);
        let _ = w.shutdown(std::net::Shutdown::Write);
    });
    let mut out = std::io::stdout().lock();
    let mut r = &conn;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.write_all(&buf[..n]).map_err(net::io_msg)?;
                out.flush().map_err(net::io_msg)?;
            }
            Err(e) => return Err(format!("connection to {target}: {e}")),
        }
    }
    // The peer closed; stop copying input (the thread may be blocked on
    // a terminal) and finish.
    drop(up);
    drop(conn);
    std::thread::sleep(std::time::Duration::from_millis(50));
    Ok(ExitCode::SUCCESS)
}

fn run_get(dev: DeviceArgs, url: &str, output: Option<PathBuf>) -> Result<ExitCode, String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("`{url}` is not an http:// URL"))?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let target = if hostport.contains(':') {
        net::parse_endpoint(hostport)?
    } else {
        net::parse_endpoint(&format!("{hostport}:80"))?
    };
    let node = net::bring_up(&dev)?;
    let mut conn = net::connect(&node, &dev, target).map_err(|e| format!("cannot connect to {target}: {e}"))?;
    write!(conn, "GET {path} HTTP/1.1\r\nHost: {hostport}\r\nUser-Agent: ustack\r\nConnection: close\r\n\r\n")
        .map_err(net::io_msg)?;
    let mut reader = std::io::BufReader::new(&conn);
    let mut status = String::new();
    std::io::BufRead::read_line(&mut reader, &mut status).map_err(net::io_msg)?;
    let code: u16 = status
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: {status:?}"))?;
    let mut length: Option<u64> = None;
    let mut chunked = false;
    loop {
        let mut h = String::new();
        if std::io::BufRead::read_line(&mut reader, &mut h).map_err(net::io_msg)? == 0 {
            break;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((n, v)) = h.split_once(':') {
            match n.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = v.trim().parse().ok(),
                "transfer-encoding" => chunked = v.trim().eq_ignore_ascii_case("chunked"),
                _ => {}
            }
        }
    }
    let mut sink: Box<dyn Write> = match &output {
        Some(p) => Box::new(std::io::BufWriter::new(
            File::create(p).map_err(|e| format!("cannot create {}: {e}", p.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let start = std::time::Instant::now();
    let got = if chunked {
        copy_chunked(&mut reader, &mut sink)?
    } else if let Some(n) = length {
        std::io::copy(&mut (&mut reader).take(n), &mut sink).map_err(net::io_msg)?
    } else {
        std::io::copy(&mut reader, &mut sink).map_err(net::io_msg)?
    };
    sink.flush().map_err(net::io_msg)?;
    drop(sink);
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    eprintln!("HTTP {code}: {got} bytes in {secs:.3} s ({:.1} Mbit/s)", got as f64 * 8.0 / secs / 1e6);
    if let Some(n) = length
        && got < n
    {
        return Err(format!("the connection ended after {got} of {n} bytes"));
    }
    Ok(if (200..300).contains(&code) { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn copy_chunked(reader: &mut impl std::io::BufRead, out: &mut dyn Write) -> Result<u64, String> {
    let mut total = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).map_err(net::io_msg)?;
        let size = u64::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
            .map_err(|_| "bad chunk size in response".to_string())?;
        if size == 0 {
            return Ok(total);
        }
        total += std::io::copy(&mut reader.by_ref().take(size), out).map_err(net::io_msg)?;
        line.clear();
        reader.read_line(&mut line).map_err(net::io_msg)?;
    }
}

fn run_demo(args: DemoArgs) -> ExitCode {
    let opts = DemoOptions {
        loss: args.loss,
        seed: args.seed,
        delay: Duration::from_nanos((args.delay_ms * 1e6) as u64),
        bandwidth_bps: (args.rate_mbps * 1e6) as u64,
        message: match args.bytes {
            Some(n) => args.message.as_bytes().iter().copied().cycle().take(n).collect(),
            None => args.message.into_bytes(),
        },
    };
    let out = demo::run(&opts);
    print!("{}", out.ladder);
    println!();
    if out.received.len() <= 64 {
        println!("server received {} bytes: {:?}", out.received.len(), String::from_utf8_lossy(&out.received));
    } else {
        println!(
            "server received {} bytes: {:?}...",
            out.received.len(),
            String::from_utf8_lossy(&out.received[..out.received.len().min(28)])
        );
    }
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
    if let Some(path) = &args.svg {
        if let Err(e) = write_demo_svg(path, &out) {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
        println!("wrote plots of the client's connection to {} (open it in a browser)", path.display());
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

/// Plots the demo's connection from its own wire capture, with the
/// client's congestion state from its trace events.
fn write_demo_svg(path: &std::path::Path, out: &demo::DemoOutcome) -> Result<(), String> {
    let mut analysis = ustack_core::trace::analysis::CaptureAnalysis::new();
    for f in &out.frames {
        analysis.add(f.time, LinkType::Ethernet.code(), &f.data);
    }
    let conn = analysis.connections.first().ok_or("the demo sent no TCP segment to plot")?;
    let samples = plot::congestion_samples(&out.client_events);
    plot::write_svg(path, conn, Some(&samples))
}
