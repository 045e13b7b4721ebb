//! Logging through [`tracing`], with one target per layer:
//!
//! | target | what |
//! |---|---|
//! | `ustack::link` | Ethernet and ARP |
//! | `ustack::ip` | IPv4, ICMP, fragments, routing |
//! | `ustack::udp` | UDP |
//! | `ustack::tcp` | TCP: every segment's fate, state changes, timers, the congestion window |
//!
//! At `debug` each decision is logged with the rule behind it (an RFC
//! section); at `trace` every TCP segment sent or received is logged in
//! full as well. So `RUST_LOG=ustack::tcp=debug ustack up ...` shows why
//! each segment was taken or dropped. Without a subscriber (or with the
//! targets filtered out) the cost is one cached check per event.

use crate::stats::DropReason;
use crate::tcp::State;
use crate::time::Instant;
use crate::trace::{Direction, EventKind, Timer};
use crate::wire::TcpRepr;
use std::net::SocketAddrV4;
use tracing::Level;

/// The layer a drop happened in, by the reason's prefix.
enum Layer {
    Link,
    Ip,
    Udp,
    Tcp,
}

fn layer(reason: DropReason) -> Layer {
    let name = reason.name();
    if name.starts_with("tcp") {
        Layer::Tcp
    } else if name.starts_with("udp") {
        Layer::Udp
    } else if name.starts_with("ip") || name.starts_with("icmp") {
        Layer::Ip
    } else {
        Layer::Link
    }
}

/// Why a packet is dropped, with the rule that says so.
pub fn explain(reason: DropReason) -> &'static str {
    use DropReason::*;
    match reason {
        EthTruncated => "shorter than an Ethernet header",
        EthNotForUs => "destination MAC address neither ours nor broadcast",
        EthUnknownType => "EtherType neither IPv4 nor ARP",
        ArpMalformed => "not an Ethernet/IPv4 ARP packet, or truncated (RFC 826)",
        ArpNotForUs => "ARP for an address that is not ours (RFC 826)",
        ArpUnresolved => "the next hop never answered ARP: packets waiting for it discarded (RFC 1122 §2.3.2.2)",
        ArpQueueFull => "too many packets already wait for this ARP resolution (RFC 1122 §2.3.2.2)",
        IpTruncated => "shorter than an IPv4 header (RFC 791 §3.1)",
        IpBadVersion => "IP version is not 4 (RFC 1122 §3.2.1.1)",
        IpBadHeaderLen => "IHL below 5 or beyond the packet (RFC 791 §3.1)",
        IpBadTotalLen => "total length below the header or beyond the frame (RFC 791 §3.1)",
        IpBadChecksum => "IP header checksum wrong (RFC 1122 §3.2.1.2)",
        IpTtlExpired => "time to live expired (RFC 791 §3.2)",
        IpNotForUs => "destination not one of our addresses, and a host does not forward (RFC 1122 §3.3.4)",
        IpBadSource => "source address broadcast, multicast or invalid (RFC 1122 §3.2.1.3)",
        IpUnknownProtocol => "no such transport protocol: protocol unreachable (RFC 1122 §3.2.2.1)",
        IpFragment => "fragment discarded: overlap, timeout or reassembly memory bound (RFC 791 §3.2, RFC 815)",
        IpNoRoute => "no route to the destination (RFC 1122 §3.3.1)",
        IpTooBig => "larger than the MTU with DF set (RFC 1191)",
        IcmpMalformed => "ICMP message truncated or malformed (RFC 792)",
        IcmpBadChecksum => "ICMP checksum wrong (RFC 792)",
        IcmpUnsupported => "ICMP type not handled: silently discarded (RFC 1122 §3.2.2)",
        IcmpRateLimited => "ICMP error not sent: rate limit (RFC 1812 §4.3.2.8)",
        UdpMalformed => "UDP header truncated or its length wrong (RFC 768)",
        UdpBadChecksum => "UDP checksum wrong (RFC 1122 §4.1.3.4)",
        UdpNoSocket => "no socket on that port: port unreachable (RFC 1122 §4.1.3.1)",
        UdpBufferFull => "the socket's receive queue is full",
        TcpMalformed => "TCP header truncated or data offset wrong (RFC 9293 §3.1)",
        TcpBadChecksum => "TCP checksum wrong (RFC 9293 §3.1, RFC 1122 §4.2.2.7)",
        TcpNoSocket => "no connection and no listener: answered with RST (RFC 9293 §3.10.7.1)",
        TcpUnacceptable => "not acceptable: acknowledged and dropped (RFC 9293 §3.10.7.4, first check)",
        TcpOutOfWindow => "outside the receive window (RFC 9293 §3.10.7.4, RFC 5961 §3-4)",
        TcpBadAck => "ACK of data not yet sent or too old (RFC 9293 §3.10.7.4 fifth check, RFC 5961 §5.2)",
        TcpListenOverflow => "accept queue full: the handshake's ACK dropped, the SYN-ACK will be resent",
        TcpNoBufferSpace => "no receive buffer space for it",
        TcpPaws => "timestamp older than TS.Recent: an old duplicate (RFC 7323 §5.3, PAWS)",
        #[allow(unreachable_patterns, reason = "reasons added later fall back to their name")]
        _ => reason.name(),
    }
}

/// Logs a drop at `debug` on its layer's target. (What a connection drops
/// is logged with the connection, by [`segment_fate`].)
pub fn dropped(reason: DropReason) {
    use DropReason::*;
    if matches!(reason, TcpUnacceptable | TcpOutOfWindow | TcpBadAck | TcpPaws) {
        return;
    }
    let why = explain(reason);
    let name = reason.name();
    match layer(reason) {
        Layer::Link => tracing::debug!(target: "ustack::link", reason = name, "dropped: {why}"),
        Layer::Ip => tracing::debug!(target: "ustack::ip", reason = name, "dropped: {why}"),
        Layer::Udp => tracing::debug!(target: "ustack::udp", reason = name, "dropped: {why}"),
        Layer::Tcp => tracing::debug!(target: "ustack::tcp", reason = name, "dropped: {why}"),
    }
}

/// True when a trace event would be logged: decides whether to build it.
#[inline]
pub fn wanted() -> bool {
    tracing::enabled!(target: "ustack::tcp", Level::DEBUG)
}

/// Logs a trace event on the TCP target.
pub fn event(time: Instant, kind: &EventKind) {
    let t = time.as_secs_f64();
    match kind {
        EventKind::TcpState { local, remote, from, to } => {
            tracing::debug!(target: "ustack::tcp", "{t:.6} {local} {remote}: {from} -> {to}{}", state_rule(*from, *to))
        }
        EventKind::TcpSegment { direction, local, remote, repr, payload_len, retransmission } => {
            let arrow = if *direction == Direction::Sent { ">" } else { "<" };
            if *retransmission {
                tracing::debug!(
                    target: "ustack::tcp",
                    "{t:.6} {local} {remote}: retransmitting seq {} ({payload_len} bytes; RFC 6298 §5.4, RFC 6675 §5, RFC 8985 §6)",
                    repr.seq
                );
            }
            tracing::trace!(target: "ustack::tcp", "{t:.6} {local} {arrow} {remote}: {}", segment(repr, *payload_len));
        }
        EventKind::TcpTimer { local, remote, timer, rto, backoff } => {
            let why = match timer {
                Timer::Retransmit => "retransmission timeout: resend and back off (RFC 6298 §5.4-5.6)",
                Timer::Persist => "persist timer: probe the zero window (RFC 9293 §3.8.6.1)",
                Timer::DelayedAck => "delayed ACK timer: acknowledge now (RFC 9293 §3.8.6.3)",
                Timer::TimeWait => "2MSL in TIME-WAIT over: CLOSED (RFC 9293 §3.6)",
                Timer::FinWait2 => "orphaned FIN-WAIT-2 timed out (as Linux's tcp_fin_timeout)",
                Timer::Keepalive => "keep-alive: the connection was idle (RFC 1122 §4.2.3.6)",
            };
            tracing::debug!(target: "ustack::tcp", "{t:.6} {local} {remote}: {why} (rto {rto:?}, backoff {backoff})")
        }
        EventKind::TcpCongestion { local, remote, cwnd, ssthresh, in_flight, srtt, rto } => {
            let ssthresh = if *ssthresh == usize::MAX { "-".to_string() } else { ssthresh.to_string() };
            tracing::debug!(
                target: "ustack::tcp",
                "{t:.6} {local} {remote}: cwnd {cwnd} ssthresh {ssthresh} in flight {in_flight} srtt {srtt:?} rto {rto:?}"
            )
        }
        EventKind::Drop { reason } => dropped(*reason),
    }
}

/// Logs a decision of one connection on the TCP target at `debug`:
/// `tcp_decision!(time, local, remote, "format", args...)`.
#[macro_export]
#[doc(hidden)]
macro_rules! tcp_decision {
    ($now:expr, $local:expr, $remote:expr, $($arg:tt)+) => {
        ::tracing::debug!(
            target: "ustack::tcp",
            "{:.6} {} {}: {}",
            $now.as_secs_f64(),
            $local,
            $remote,
            format_args!($($arg)+)
        )
    };
}

/// Logs what became of a segment that reached a connection.
pub fn segment_fate(
    now: Instant,
    (local, remote): (SocketAddrV4, SocketAddrV4),
    state: State,
    repr: &TcpRepr,
    len: usize,
    dropped: Option<DropReason>,
) {
    let seg = segment(repr, len);
    match dropped {
        None => crate::tcp_decision!(now, local, remote, "{seg}: taken in {state}"),
        Some(r) => crate::tcp_decision!(now, local, remote, "{seg}: dropped in {state}: {}", explain(r)),
    }
}

/// A segment in tcpdump's terms.
fn segment(repr: &TcpRepr, len: usize) -> String {
    let mut s = format!("{} seq {}", repr.flags, repr.seq);
    if repr.flags.ack() {
        s += &format!(" ack {}", repr.ack);
    }
    s += &format!(" win {} len {len}", repr.window);
    let o = &repr.options;
    if let Some(m) = o.mss {
        s += &format!(" mss {m}");
    }
    if let Some(w) = o.window_scale {
        s += &format!(" wscale {w}");
    }
    if o.sack_permitted {
        s += " sackOK";
    }
    if let Some((v, e)) = o.timestamps {
        s += &format!(" TS {v}/{e}");
    }
    for (l, r) in o.sack_blocks.as_slice() {
        s += &format!(" sack {l}:{r}");
    }
    s
}

/// The rule behind a state change, where one transition has one.
fn state_rule(from: State, to: State) -> &'static str {
    use State::*;
    match (from, to) {
        (Closed, SynSent) => " (active OPEN: SYN sent, RFC 9293 §3.5)",
        (Listen, SynReceived) => " (SYN received: SYN-ACK sent, RFC 9293 §3.10.7.2)",
        (SynSent, SynReceived) => " (simultaneous open, RFC 9293 §3.5 figure 7)",
        (SynSent, Established) | (SynReceived, Established) => " (handshake complete, RFC 9293 §3.5)",
        (Established, FinWait1) => " (CLOSE: FIN sent, RFC 9293 §3.6)",
        (Established, CloseWait) => " (FIN received, RFC 9293 §3.10.7.4 eighth check)",
        (FinWait1, FinWait2) => " (our FIN acknowledged, RFC 9293 §3.6)",
        (FinWait1, Closing) => " (simultaneous close, RFC 9293 §3.6 figure 13)",
        (FinWait2, TimeWait) | (Closing, TimeWait) | (FinWait1, TimeWait) => " (2MSL wait begins, RFC 9293 §3.6)",
        (CloseWait, LastAck) => " (CLOSE: FIN sent, RFC 9293 §3.6)",
        (LastAck, Closed) => " (our FIN acknowledged, RFC 9293 §3.6)",
        (TimeWait, Closed) => " (2MSL elapsed, or a new SYN took the pair, RFC 9293 §3.6)",
        (_, Closed) => " (reset, abort or timeout, RFC 9293 §3.10.7)",
        _ => "",
    }
}
