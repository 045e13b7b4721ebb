//! `ustack ping` and `ustack traceroute`: ICMP echo requests through ustack
//! on a TUN/TAP device, with what comes back printed as Linux's ping and
//! traceroute print it: echo replies with their round-trip times, and the
//! ICMP errors routers send about the requests (RFC 792): "time to live
//! exceeded" from each router on the way (traceroute), "fragmentation
//! needed" from one whose next link is too small for a request with DF
//! (`ping -M do -s 1400`, RFC 1191).

use crate::net::{self, DeviceArgs, Node};
use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use ustack_core::Error;
use ustack_core::PmtuDiscovery;
use ustack_core::stack::{EchoError, EchoReply, EchoRequest, IcmpError};
use ustack_core::wire::{DstUnreachable, TimeExceeded};

/// Largest echo request data: 65535 less the IP and ICMP headers.
const MAX_SIZE: usize = 65535 - 20 - 8;

/// IP_MTU_DISCOVER for the requests, as ping's `-M` names it.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Pmtudisc {
    /// DF always; a request larger than the path MTU is a local error.
    Do,
    /// DF when the request fits the path MTU, else fragmented (default).
    Want,
    /// No DF: routers may fragment.
    Dont,
    /// DF always, sized to the interface whatever the path MTU.
    Probe,
}

impl From<Pmtudisc> for PmtuDiscovery {
    fn from(m: Pmtudisc) -> Self {
        match m {
            Pmtudisc::Do => PmtuDiscovery::Do,
            Pmtudisc::Want => PmtuDiscovery::Want,
            Pmtudisc::Dont => PmtuDiscovery::Dont,
            Pmtudisc::Probe => PmtuDiscovery::Probe,
        }
    }
}

#[derive(clap::Args)]
pub struct PingArgs {
    #[command(flatten)]
    dev: DeviceArgs,
    /// The IPv4 address to ping.
    host: Ipv4Addr,
    /// How many requests (one per second).
    #[arg(short = 'c', long, default_value_t = 4)]
    count: u16,
    /// Bytes of data in each request (the ICMP header adds 8, IP 20).
    #[arg(short = 's', long, default_value_t = 56, value_parser = parse_size)]
    size: usize,
    /// The requests' TTL (1-255); the stack's default (64) if not given.
    #[arg(short = 't', long, value_parser = clap::value_parser!(u8).range(1..))]
    ttl: Option<u8>,
    /// Path MTU discovery: DF and fragmentation of the requests.
    #[arg(short = 'M', long, value_enum, default_value_t = Pmtudisc::Want)]
    pmtudisc: Pmtudisc,
}

#[derive(clap::Args)]
pub struct TracerouteArgs {
    #[command(flatten)]
    dev: DeviceArgs,
    /// The IPv4 address to trace the route to.
    host: Ipv4Addr,
    /// The largest TTL to try.
    #[arg(short = 'm', long, default_value_t = 30, value_parser = clap::value_parser!(u8).range(1..))]
    max_hops: u8,
    /// Probes per hop.
    #[arg(short = 'q', long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=10))]
    queries: u8,
    /// Seconds to wait for each probe's answer.
    #[arg(short = 'w', long, default_value_t = 1.0, value_parser = parse_wait)]
    wait: f64,
}

fn parse_size(s: &str) -> Result<usize, String> {
    let n: usize = s.parse().map_err(|_| format!("`{s}` is not a number of bytes, like 56"))?;
    if n <= MAX_SIZE { Ok(n) } else { Err(format!("{n} bytes do not fit one IPv4 datagram: at most {MAX_SIZE}")) }
}

fn parse_wait(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(w) if w > 0.0 && w <= 60.0 => Ok(w),
        _ => Err(format!("`{s}` is not a wait in seconds between 0 and 60, like 1 or 0.5")),
    }
}

/// What came back for one echo request.
enum Answer {
    Reply(EchoReply),
    Error(EchoError),
}

/// Sends `req` and waits up to `wait` for its reply or an ICMP error about
/// it; the answer (if any) and the time it took.
fn probe(node: &Node, req: &EchoRequest, wait: Duration) -> Result<Option<(Answer, Duration)>, Error> {
    let sent_at = Instant::now();
    node.net().with_stack(|s, now| s.send_echo(now, req))?;
    let deadline = sent_at + wait;
    while Instant::now() < deadline {
        let (replies, errors) = node.net().with_stack(|s, _| (s.take_echo_replies(), s.take_echo_errors()));
        let ours = |ident, seq| ident == req.ident && seq == req.seq_no;
        if let Some(r) = replies.into_iter().find(|r| ours(r.ident, r.seq_no) && r.from == req.dst) {
            return Ok(Some((Answer::Reply(r), sent_at.elapsed())));
        }
        if let Some(e) = errors.into_iter().find(|e| ours(e.ident, e.seq_no) && e.dst == req.dst) {
            return Ok(Some((Answer::Error(e), sent_at.elapsed())));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(None)
}

/// An ICMP error as Linux's ping words it.
fn describe(error: IcmpError) -> String {
    use DstUnreachable as U;
    match error {
        IcmpError::Exceeded(TimeExceeded::TtlExpired) => "Time to live exceeded".into(),
        IcmpError::Exceeded(TimeExceeded::FragReassembly) => "Frag reassembly time exceeded".into(),
        IcmpError::Unreachable(U::NetUnreachable) => "Destination Net Unreachable".into(),
        IcmpError::Unreachable(U::HostUnreachable) => "Destination Host Unreachable".into(),
        IcmpError::Unreachable(U::ProtoUnreachable) => "Destination Protocol Unreachable".into(),
        IcmpError::Unreachable(U::PortUnreachable) => "Destination Port Unreachable".into(),
        IcmpError::Unreachable(U::FragRequired { next_hop_mtu }) => {
            format!("Frag needed and DF set (mtu = {next_hop_mtu})")
        }
        IcmpError::Unreachable(U::CommProhibited) => "Packet filtered".into(),
        IcmpError::Unreachable(other) => format!("Destination unreachable: {other}"),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn run_ping(args: PingArgs) -> Result<ExitCode, String> {
    let node = net::bring_up(&args.dev)?;
    let host = args.host;
    let ident = (net::random_seed() & 0xffff) as u16;
    let payload: Vec<u8> = (0..args.size).map(|i| i as u8).collect();
    println!(
        "PING {host} from {}: {} data bytes ({} bytes with headers)",
        args.dev.addr.address(),
        args.size,
        args.size + 28
    );
    let (mut received, mut errors) = (0u32, 0u32);
    for seq in 1..=args.count {
        let started = Instant::now();
        let req = EchoRequest {
            dst: host,
            ident,
            seq_no: seq,
            data: &payload,
            ttl: args.ttl,
            pmtu_discovery: args.pmtudisc.into(),
        };
        match probe(&node, &req, Duration::from_secs(1)) {
            Ok(Some((Answer::Reply(r), rtt))) => {
                received += 1;
                println!(
                    "{} bytes from {}: icmp_seq={seq} ttl={} time={:.3} ms",
                    r.data.len() + 8,
                    r.from,
                    r.ttl,
                    ms(rtt)
                );
            }
            Ok(Some((Answer::Error(e), _))) => {
                errors += 1;
                println!("From {} icmp_seq={seq} {}", e.from, describe(e.error));
            }
            Ok(None) => println!("no reply for icmp_seq={seq}"),
            Err(Error::MessageTooLong) => {
                errors += 1;
                println!(
                    "ping: local error: message too long, mtu={}",
                    node.net().with_stack(|s, _| s.path_mtu_to(host))
                );
            }
            Err(Error::NetworkUnreachable) => {
                return Err(format!("no route to {host}: give --gateway or an address in its subnet"));
            }
            Err(e) => return Err(format!("cannot send to {host}: {e}")),
        }
        if seq < args.count {
            std::thread::sleep((started + Duration::from_secs(1)).saturating_duration_since(Instant::now()));
        }
    }
    let errors = if errors > 0 { format!(", +{errors} errors") } else { String::new() };
    println!("{} packets transmitted, {received} received{errors}", args.count);
    Ok(if received > 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// traceroute's mark for an unreachable answer (`!H`, `!N`, ...), which
/// also ends the trace.
fn unreachable_mark(reason: DstUnreachable) -> String {
    match reason {
        DstUnreachable::NetUnreachable => "!N".into(),
        DstUnreachable::HostUnreachable => "!H".into(),
        DstUnreachable::ProtoUnreachable => "!P".into(),
        DstUnreachable::PortUnreachable => "!".into(),
        DstUnreachable::FragRequired { next_hop_mtu } => format!("!F-{next_hop_mtu}"),
        DstUnreachable::CommProhibited | DstUnreachable::NetProhibited | DstUnreachable::HostProhibited => "!X".into(),
        other => format!("!<{}>", other.code()),
    }
}

/// Traces the route with ICMP echo requests of growing TTL (as
/// `traceroute -I`): each router on the way answers the request whose
/// TTL runs out there with "time exceeded" (RFC 792, RFC 1812 §4.3.3.1),
/// and the destination answers with an echo reply.
pub fn run_traceroute(args: TracerouteArgs) -> Result<ExitCode, String> {
    let node = net::bring_up(&args.dev)?;
    let host = args.host;
    let ident = (net::random_seed() & 0xffff) as u16;
    let data = [0u8; 36];
    let wait = Duration::from_secs_f64(args.wait);
    println!("traceroute to {host}, {} hops max, {} byte packets (ICMP echo)", args.max_hops, data.len() + 28);
    for ttl in 1..=args.max_hops {
        let mut line = format!("{ttl:2} ");
        let mut last_from = None;
        let mut done = false;
        for q in 0..args.queries {
            let req = EchoRequest {
                dst: host,
                ident,
                seq_no: u16::from(ttl - 1) * u16::from(args.queries) + u16::from(q) + 1,
                data: &data,
                ttl: Some(ttl),
                pmtu_discovery: PmtuDiscovery::Want,
            };
            let (from, rtt, mark) = match probe(&node, &req, wait) {
                Ok(Some((Answer::Reply(r), rtt))) => {
                    done = true;
                    (r.from, rtt, String::new())
                }
                Ok(Some((Answer::Error(e), rtt))) => match e.error {
                    IcmpError::Exceeded(_) => (e.from, rtt, String::new()),
                    IcmpError::Unreachable(reason) => {
                        done = true;
                        (e.from, rtt, format!(" {}", unreachable_mark(reason)))
                    }
                },
                Ok(None) => {
                    line.push_str(" *");
                    continue;
                }
                Err(Error::NetworkUnreachable) => {
                    return Err(format!("no route to {host}: give --gateway or an address in its subnet"));
                }
                Err(e) => return Err(format!("cannot send to {host}: {e}")),
            };
            if last_from != Some(from) {
                line.push_str(&format!(" {from}"));
                last_from = Some(from);
            }
            line.push_str(&format!("  {:.3} ms{mark}", ms(rtt)));
        }
        println!("{line}");
        if done {
            return Ok(ExitCode::SUCCESS);
        }
    }
    Ok(ExitCode::FAILURE)
}
