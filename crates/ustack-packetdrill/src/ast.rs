//! The data model of a packetdrill script.
//!
//! Every type here is what the parser produces and what a runner consumes. Nothing is
//! interpreted: numbers are kept as written (sequence numbers stay relative, times stay
//! absolute or relative as written), names of symbols, errnos, ICMP types and sysctls are
//! kept as strings. Every type implements `Display` in packetdrill syntax, so that a runner
//! can print "expected" and "actual" in the language of the script; parsing that text again
//! gives back an equal value.

use std::fmt;

/// A whole script: the command-line options at its top, an optional command without a
/// time before the first event, the events, and an optional command without a time after
/// the last one.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Script {
    /// `--name=value` (or bare `--name`) lines at the top, in order, without the dashes.
    pub options: Vec<(String, Option<String>)>,
    /// A `` `shell command` `` with no time column before the first event (nplab packetdrill's
    /// init command, e.g. the `setkey` line of the FreeBSD TCP-MD5 scripts). Text between the
    /// backticks, verbatim.
    pub init_command: Option<String>,
    /// The timed events, in file order. Events inside `#ifdef` sections are all present;
    /// see [`Event::conditions`] and [`Script::events_for`].
    pub events: Vec<Event>,
    /// A `` `shell command` `` with no time column after the last event (the cleanup command).
    pub cleanup_command: Option<String>,
}

impl Script {
    /// The value of the last `--name=value` option of that name; `Some(None)` for a bare
    /// `--name`; `None` when the option is absent.
    pub fn option(&self, name: &str) -> Option<Option<&str>> {
        self.options.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_deref())
    }

    /// The events that are active when exactly the symbols in `defined` are defined
    /// (e.g. `&["FreeBSD"]` to follow the FreeBSD branch of the scripts, `&["STANDARD"]`
    /// for the RFC-conforming one).
    pub fn events_for<'a>(&'a self, defined: &'a [&str]) -> impl Iterator<Item = &'a Event> + 'a {
        self.events.iter().filter(move |e| e.is_active(|s| defined.contains(&s)))
    }
}

/// The script in packetdrill syntax, one event per line: parsing it again gives the same
/// options, commands, events and conditions (an `#else` is written as `#endif` + `#ifndef`).
impl fmt::Display for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in &self.options {
            match value {
                Some(v) => writeln!(f, "--{name}={v}")?,
                None => writeln!(f, "--{name}")?,
            }
        }
        if let Some(c) = &self.init_command {
            writeln!(f, "`{c}`")?;
        }
        let mut open: &[Condition] = &[];
        for e in &self.events {
            let common = open.iter().zip(&e.conditions).take_while(|(a, b)| a == b).count();
            for _ in common..open.len() {
                writeln!(f, "#endif")?;
            }
            for c in &e.conditions[common..] {
                writeln!(f, "#{} {}", if c.defined { "ifdef" } else { "ifndef" }, c.symbol)?;
            }
            open = &e.conditions;
            writeln!(f, "{e}")?;
        }
        for _ in open {
            writeln!(f, "#endif")?;
        }
        if let Some(c) = &self.cleanup_command {
            writeln!(f, "`{c}`")?;
        }
        Ok(())
    }
}

/// One timed line of a script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// 1-based line of the event's time column.
    pub line: usize,
    /// 1-based column (in characters) of the event's time column.
    pub column: usize,
    /// When the event happens.
    pub time: TimeSpec,
    /// What happens.
    pub kind: EventKind,
    /// The enclosing `#ifdef` / `#ifndef` sections, outermost first; empty outside any.
    pub conditions: Vec<Condition>,
    /// The event's text as written (from its time column to its last token, trailing
    /// comment excluded), for messages such as "expected: ...".
    pub source: String,
}

impl Event {
    /// Whether the event is active when `defined(symbol)` tells which symbols are defined.
    pub fn is_active(&self, defined: impl Fn(&str) -> bool) -> bool {
        self.conditions.iter().all(|c| defined(&c.symbol) == c.defined)
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.time, self.kind)
    }
}

/// One level of conditional compilation: the event is active only if `symbol` is defined
/// (`#ifdef symbol`, `defined == true`) or not defined (`#ifndef symbol`, or the `#else` of an
/// `#ifdef`, `defined == false`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    /// The symbol after `#ifdef` / `#ifndef`, e.g. `FreeBSD`, `STANDARD`.
    pub symbol: String,
    /// Whether the symbol must be defined for the section to be active.
    pub defined: bool,
}

/// The time column of an event. Times are in microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeSpec {
    /// The (start) time.
    pub kind: TimeKind,
    /// The second half of `a~b` or `a...b`, if any.
    pub end: Option<TimeEnd>,
}

impl TimeSpec {
    /// A plain time without an end.
    pub const fn new(kind: TimeKind) -> Self {
        TimeSpec { kind, end: None }
    }
}

impl fmt::Display for TimeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        match self.end {
            None => Ok(()),
            Some(TimeEnd::Range(t)) => write!(f, "~{t}"),
            Some(TimeEnd::Blocking(t)) => write!(f, "...{t}"),
        }
    }
}

/// A point in the time column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeKind {
    /// `0.100`: microseconds since the start of the script.
    Absolute(i64),
    /// `+0.100`: microseconds after the previous event.
    Relative(i64),
    /// `*`: any time (the event may happen whenever; used for outbound packets).
    Any,
}

impl TimeKind {
    /// The number of microseconds written, if any (`None` for `*`).
    pub fn micros(self) -> Option<i64> {
        match self {
            TimeKind::Absolute(us) | TimeKind::Relative(us) => Some(us),
            TimeKind::Any => None,
        }
    }
}

impl fmt::Display for TimeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TimeKind::Absolute(us) => write_secs(f, us),
            TimeKind::Relative(us) => {
                f.write_str("+")?;
                write_secs(f, us)
            }
            TimeKind::Any => f.write_str("*"),
        }
    }
}

fn write_secs(f: &mut fmt::Formatter<'_>, us: i64) -> fmt::Result {
    let sign = if us < 0 { "-" } else { "" };
    let us = us.unsigned_abs();
    let (secs, frac) = (us / 1_000_000, us % 1_000_000);
    if frac == 0 {
        write!(f, "{sign}{secs}")
    } else {
        let digits = format!("{frac:06}");
        write!(f, "{sign}{secs}.{}", digits.trim_end_matches('0'))
    }
}

/// The end of a time column with two parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeEnd {
    /// `a~b`: the event may happen anywhere in `[a, b]`. A relative `b` (`+0~+0.1`) counts from
    /// the same point as a relative `a`: the previous event.
    Range(TimeKind),
    /// `a...b`: a blocking system call that starts at `a` and returns at `b`. A relative `b`
    /// counts from the previous event, like `a`.
    Blocking(TimeKind),
}

/// What an event does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// `<` inject a packet, or `>` expect one.
    Packet(PacketEvent),
    /// Make a system call and check its result.
    Syscall(Syscall),
    /// `` `command` ``: run a shell command (text between the backticks, verbatim, possibly
    /// several lines). The FreeBSD scripts use it for `sysctl -w ...`, `sockstat ... | grep`
    /// and `tcpdrop`.
    Shell(String),
    /// `%{ code }%`: a Python snippet (the code, with surrounding blanks trimmed). The FreeBSD
    /// scripts use `assert tcpi_state == TCPI_...` and `assert tcpi_options == ...`.
    Python(String),
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventKind::Packet(p) => write!(f, "{p}"),
            EventKind::Syscall(s) => write!(f, "{s}"),
            EventKind::Shell(s) => write!(f, "`{s}`"),
            EventKind::Python(s) => write!(f, "%{{ {s} }}%"),
        }
    }
}

/// Which way a packet goes, seen from the stack under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `<`: the script injects the packet into the stack.
    Inbound,
    /// `>`: the stack must send the packet.
    Outbound,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Inbound => "<",
            Direction::Outbound => ">",
        })
    }
}

/// A packet line: `< [ect0] (tos 0x28) S. 0:0(0) ack 1 win 65535 <mss 1460>/udp(1 > 9811)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketEvent {
    /// `<` or `>`.
    pub direction: Direction,
    /// The ECN codepoint of the IP header, `[noecn]`, `[ect0]`, ...; `None` when not given.
    pub ecn: Option<Ecn>,
    /// IP header fields given in parentheses, e.g. `(tos 0x28)` or `(hlim 3)`.
    pub ip: IpFields,
    /// The transport header.
    pub transport: Transport,
    /// `/udp(src > dst)` after the packet: the TCP segment is encapsulated in UDP
    /// (RFC 6951 style tunnelling, FreeBSD's `net.inet.tcp.udp_tunneling_port`).
    pub udp_encap: Option<UdpEncap>,
}

impl PacketEvent {
    /// The TCP part, if this is a TCP packet.
    pub fn tcp(&self) -> Option<&TcpSpec> {
        match &self.transport {
            Transport::Tcp(t) => Some(t),
            _ => None,
        }
    }

    /// The ICMP part, if this is an ICMP packet.
    pub fn icmp(&self) -> Option<&IcmpSpec> {
        match &self.transport {
            Transport::Icmp(i) => Some(i),
            _ => None,
        }
    }

    /// The UDP part, if this is a UDP packet.
    pub fn udp(&self) -> Option<&UdpSpec> {
        match &self.transport {
            Transport::Udp(u) => Some(u),
            _ => None,
        }
    }
}

impl fmt::Display for PacketEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.direction)?;
        if let Some(ecn) = self.ecn {
            write!(f, " [{ecn}]")?;
        }
        if !self.ip.is_empty() {
            write!(f, " ({})", self.ip)?;
        }
        write!(f, " {}", self.transport)?;
        if let Some(e) = self.udp_encap {
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// The ECN field of the IP header (RFC 3168 §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ecn {
    /// `noecn`: Not-ECT, `00`.
    NotEct,
    /// `ect1`: `01`.
    Ect1,
    /// `ect0`: `10`.
    Ect0,
    /// `ect01`: either ECT(0) or ECT(1) is accepted.
    Ect01,
    /// `ce`: Congestion Experienced, `11`.
    Ce,
}

impl Ecn {
    /// The two ECN bits of the IP header for a packet the script injects
    /// (`ect01` sends ECT(0)).
    pub fn bits(self) -> u8 {
        match self {
            Ecn::NotEct => 0,
            Ecn::Ect1 => 1,
            Ecn::Ect0 | Ecn::Ect01 => 2,
            Ecn::Ce => 3,
        }
    }

    /// Whether a sent packet's ECN bits are the ones the script expects
    /// (`ect01`: either ECT codepoint).
    pub fn accepts(self, bits: u8) -> bool {
        bits == self.bits() || (self == Ecn::Ect01 && bits == 1)
    }
}

impl fmt::Display for Ecn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ecn::NotEct => "noecn",
            Ecn::Ect1 => "ect1",
            Ecn::Ect0 => "ect0",
            Ecn::Ect01 => "ect01",
            Ecn::Ce => "ce",
        })
    }
}

/// IP header fields a packet line may set (inbound) or check (outbound).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct IpFields {
    /// `(tos 0x28)`: the IPv4 type-of-service byte (DSCP and ECN bits).
    pub tos: Option<u8>,
    /// `(ttl 64)`: the IPv4 time to live.
    pub ttl: Option<u8>,
    /// `(class 0x28)`: the IPv6 traffic class.
    pub traffic_class: Option<u8>,
    /// `(hlim 64)`: the IPv6 hop limit.
    pub hop_limit: Option<u8>,
}

impl IpFields {
    /// Whether no field is given.
    pub fn is_empty(&self) -> bool {
        *self == IpFields::default()
    }
}

impl fmt::Display for IpFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        for (name, value, hex) in [
            ("tos", self.tos, true),
            ("class", self.traffic_class, true),
            ("ttl", self.ttl, false),
            ("hlim", self.hop_limit, false),
        ] {
            if let Some(v) = value {
                if hex {
                    write!(f, "{sep}{name} {v:#04x}")?;
                } else {
                    write!(f, "{sep}{name} {v}")?;
                }
                sep = ", ";
            }
        }
        Ok(())
    }
}

/// The transport part of a packet line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// A TCP segment.
    Tcp(TcpSpec),
    /// `icmp ...`.
    Icmp(IcmpSpec),
    /// `udp (len)`.
    Udp(UdpSpec),
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transport::Tcp(t) => write!(f, "{t}"),
            Transport::Icmp(i) => write!(f, "{i}"),
            Transport::Udp(u) => write!(f, "{u}"),
        }
    }
}

/// A TCP segment: `S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK>`.
///
/// Sequence and acknowledgment numbers are as written: relative to the initial sequence
/// numbers of the connection, unless [`TcpSpec::seq_absolute`] says otherwise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpSpec {
    /// The control bits.
    pub flags: TcpFlags,
    /// `start:end`, or `...` for any sequence number.
    pub seq: SeqSpec,
    /// The payload length, the `(len)` part.
    pub len: u32,
    /// A `!` right after `(len)` (FreeBSD's packetdrill, e.g. `> R. 0:0(0)! ack 1`): the
    /// sequence number is absolute, not relative to an ISN. The scripts use it on the RST
    /// answering a segment without ACK, whose SEQ is zero (RFC 9293 §3.10.7.1).
    pub seq_absolute: bool,
    /// `ack N`, if given (it may be given without the `.` flag, e.g. `< S 0:0(0) ack 1`: the
    /// number is carried in the header with the ACK bit clear).
    pub ack: Option<u32>,
    /// `win N`, if given.
    pub win: Option<u32>,
    /// `urg N`, if given.
    pub urg: Option<u32>,
    /// The options list: `None` when none is written (no options for an inbound packet; for
    /// an outbound one packetdrill then does not check them), `Some(TcpOptions::Any)` for
    /// `<...>`, otherwise the list.
    pub options: Option<TcpOptions>,
}

impl fmt::Display for TcpSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}({})", self.flags, self.seq, self.len)?;
        if self.seq_absolute {
            f.write_str("!")?;
        }
        if let Some(a) = self.ack {
            write!(f, " ack {a}")?;
        }
        if let Some(w) = self.win {
            write!(f, " win {w}")?;
        }
        if let Some(u) = self.urg {
            write!(f, " urg {u}")?;
        }
        if let Some(o) = &self.options {
            write!(f, " {o}")?;
        }
        Ok(())
    }
}

/// The sequence numbers of a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqSpec {
    /// `start:end`; `end - start` (mod 2^32) is the payload length.
    Range {
        /// The first sequence number of the segment.
        start: u32,
        /// The sequence number after the payload (SYN and FIN not counted).
        end: u32,
    },
    /// `...`: any sequence number (e.g. the SYN-ACK of a new incarnation, whose ISN is not known).
    Any,
}

impl SeqSpec {
    /// The first sequence number, unless `...`.
    pub fn start(self) -> Option<u32> {
        match self {
            SeqSpec::Range { start, .. } => Some(start),
            SeqSpec::Any => None,
        }
    }
}

impl fmt::Display for SeqSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeqSpec::Range { start, end } => write!(f, "{start}:{end}"),
            SeqSpec::Any => f.write_str("..."),
        }
    }
}

/// TCP control bits, as packetdrill writes them: `S` SYN, `F` FIN, `R` RST, `P` PSH,
/// `.` ACK, `U` URG, `E` ECE, `W` CWR.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK (`.`).
    pub const ACK: u8 = 0x10;
    /// URG.
    pub const URG: u8 = 0x20;
    /// ECE (`E`).
    pub const ECE: u8 = 0x40;
    /// CWR (`W`).
    pub const CWR: u8 = 0x80;

    /// The letter of each bit, in the order `Display` writes them.
    const LETTERS: [(char, u8); 8] = [
        ('S', Self::SYN),
        ('F', Self::FIN),
        ('R', Self::RST),
        ('P', Self::PSH),
        ('U', Self::URG),
        ('E', Self::ECE),
        ('W', Self::CWR),
        ('.', Self::ACK),
    ];

    /// The bit of one flag character, if it is one.
    pub fn bit_of(c: char) -> Option<u8> {
        Self::LETTERS.iter().find(|(l, _)| *l == c).map(|(_, b)| *b)
    }

    /// Whether all of `bits` are set.
    pub fn contains(self, bits: u8) -> bool {
        self.0 & bits == bits
    }

    /// SYN set.
    pub fn syn(self) -> bool {
        self.contains(Self::SYN)
    }
    /// FIN set.
    pub fn fin(self) -> bool {
        self.contains(Self::FIN)
    }
    /// RST set.
    pub fn rst(self) -> bool {
        self.contains(Self::RST)
    }
    /// PSH set.
    pub fn psh(self) -> bool {
        self.contains(Self::PSH)
    }
    /// ACK set (the `.`).
    pub fn ack(self) -> bool {
        self.contains(Self::ACK)
    }
    /// URG set.
    pub fn urg(self) -> bool {
        self.contains(Self::URG)
    }
    /// ECE set.
    pub fn ece(self) -> bool {
        self.contains(Self::ECE)
    }
    /// CWR set.
    pub fn cwr(self) -> bool {
        self.contains(Self::CWR)
    }
}

impl fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (letter, bit) in Self::LETTERS {
            if self.contains(bit) {
                write!(f, "{letter}")?;
            }
        }
        Ok(())
    }
}

/// The `<...>` part of a TCP line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TcpOptions {
    /// `<...>`: any options (not checked).
    Any,
    /// The listed options, in order.
    List(Vec<TcpOption>),
}

impl fmt::Display for TcpOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TcpOptions::Any => f.write_str("<...>"),
            TcpOptions::List(l) => {
                f.write_str("<")?;
                for (i, o) in l.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{o}")?;
                }
                f.write_str(">")
            }
        }
    }
}

/// One TCP option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TcpOption {
    /// `eol`: End of Option List (kind 0).
    Eol,
    /// `nop`: No-Operation (kind 1).
    Nop,
    /// `mss N`: Maximum Segment Size (kind 2, RFC 9293 §3.7.1).
    Mss(u16),
    /// `wscale N`: Window Scale shift count (kind 3, RFC 7323 §2).
    WindowScale(u8),
    /// `sackOK`: SACK permitted (kind 4, RFC 2018).
    SackPermitted,
    /// `sack a:b c:d`: SACK blocks, left and right edges (kind 5, RFC 2018), as written
    /// (relative sequence numbers).
    Sack(Vec<(u32, u32)>),
    /// `TS val N ecr N`: Timestamps (kind 8, RFC 7323 §3).
    Timestamp {
        /// TSval.
        val: u32,
        /// TSecr.
        ecr: u32,
    },
    /// `md5 valid` / `md5 invalid`: a TCP MD5 signature (kind 19, RFC 2385), computed with the
    /// `--tcp_md5_secret` (valid) or deliberately wrong (invalid).
    Md5 {
        /// Whether the signature is (expected to be) correct.
        valid: bool,
    },
}

impl fmt::Display for TcpOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TcpOption::Eol => f.write_str("eol"),
            TcpOption::Nop => f.write_str("nop"),
            TcpOption::Mss(m) => write!(f, "mss {m}"),
            TcpOption::WindowScale(s) => write!(f, "wscale {s}"),
            TcpOption::SackPermitted => f.write_str("sackOK"),
            TcpOption::Sack(blocks) => {
                f.write_str("sack")?;
                for (l, r) in blocks {
                    write!(f, " {l}:{r}")?;
                }
                Ok(())
            }
            TcpOption::Timestamp { val, ecr } => write!(f, "TS val {val} ecr {ecr}"),
            TcpOption::Md5 { valid } => f.write_str(if *valid { "md5 valid" } else { "md5 invalid" }),
        }
    }
}

/// An ICMP packet: `icmp unreachable frag_needed mtu 1200 [1:1001(1000)]`.
///
/// Type and code are the names packetdrill uses (`unreachable`, `port_unreachable`,
/// `time_exceeded`, `packet_too_big`, ...; the ICMPv4 and ICMPv6 names differ), kept as
/// written for the runner to map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IcmpSpec {
    /// The type name, e.g. `unreachable`.
    pub icmp_type: String,
    /// The code name, e.g. `port_unreachable`, if given.
    pub code: Option<String>,
    /// `mtu N` (fragmentation needed / packet too big), if given.
    pub mtu: Option<u32>,
    /// `[start:end(len)]`: the TCP segment the ICMP message quotes, if given.
    pub quoted: Option<QuotedSegment>,
}

impl fmt::Display for IcmpSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "icmp {}", self.icmp_type)?;
        if let Some(c) = &self.code {
            write!(f, " {c}")?;
        }
        if let Some(m) = self.mtu {
            write!(f, " mtu {m}")?;
        }
        if let Some(q) = &self.quoted {
            write!(f, " [{}({})]", q.seq, q.len)?;
        }
        Ok(())
    }
}

/// The TCP segment quoted in an ICMP error: sequence numbers as written (relative).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotedSegment {
    /// `start:end` or `...`.
    pub seq: SeqSpec,
    /// The payload length.
    pub len: u32,
}

/// A UDP packet: `udp (100)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpSpec {
    /// The payload length.
    pub len: u32,
}

impl fmt::Display for UdpSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "udp ({})", self.len)
    }
}

/// `/udp(src > dst)`: the UDP ports of the tunnel a TCP segment is encapsulated in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpEncap {
    /// The UDP source port.
    pub src_port: u16,
    /// The UDP destination port.
    pub dst_port: u16,
}

impl fmt::Display for UdpEncap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/udp({} > {})", self.src_port, self.dst_port)
    }
}

/// A system call and its expected outcome:
/// `connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Syscall {
    /// The call's name: `socket`, `bind`, `getsockopt`, ...
    pub name: String,
    /// The arguments as written.
    pub args: Vec<Expr>,
    /// The expected return value.
    pub ret: Expr,
    /// The expected `errno` name, e.g. `EINPROGRESS`, if given.
    pub errno: Option<String>,
    /// The parenthesised text after the return value (`(Operation now in progress)`,
    /// `(flags O_RDWR)`): a comment, verbatim without the parentheses.
    pub note: Option<String>,
}

impl fmt::Display for Syscall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.name)?;
        write_list(f, &self.args)?;
        write!(f, ") = {}", self.ret)?;
        if let Some(e) = &self.errno {
            write!(f, " {e}")?;
        }
        if let Some(n) = &self.note {
            write!(f, " ({n})")?;
        }
        Ok(())
    }
}

/// An argument or return-value expression of a system call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    /// `...`: anything (an argument the runner fills in, e.g. the address of `bind`).
    Ellipsis,
    /// An integer, written in decimal (possibly negative) or hex (`0x02`).
    Int(i64),
    /// A `"string"`, with escapes resolved.
    Str(String),
    /// A symbolic name: `SOL_SOCKET`, `O_NONBLOCK`, `ECONNREFUSED`, ...
    Symbol(String),
    /// `A | B | ...`: bitwise or of two or more expressions.
    BitOr(Vec<Expr>),
    /// `[a, b, ...]`: an array, or a pointer to a value (`[1]` for an `int *`).
    Array(Vec<Expr>),
    /// `{name=value, ...}`: a struct, e.g. `{l_onoff=1, l_linger=0}`.
    Struct(Vec<(String, Expr)>),
    /// `name(args)`: a function-like expression, e.g. `htons(8080)`, `inet_addr("1.2.3.4")`.
    Call(String, Vec<Expr>),
}

impl Expr {
    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Expr::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The symbol's name, if this is one.
    pub fn as_symbol(&self) -> Option<&str> {
        match self {
            Expr::Symbol(s) => Some(s),
            _ => None,
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Ellipsis => f.write_str("..."),
            Expr::Int(i) => write!(f, "{i}"),
            Expr::Str(s) => write_quoted(f, s),
            Expr::Symbol(s) => f.write_str(s),
            Expr::BitOr(parts) => {
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" | ")?;
                    }
                    write!(f, "{p}")?;
                }
                Ok(())
            }
            Expr::Array(items) => {
                f.write_str("[")?;
                write_list(f, items)?;
                f.write_str("]")
            }
            Expr::Struct(fields) => {
                f.write_str("{")?;
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{name}={value}")?;
                }
                f.write_str("}")
            }
            Expr::Call(name, args) => {
                write!(f, "{name}(")?;
                write_list(f, args)?;
                f.write_str(")")
            }
        }
    }
}

fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            '\r' => f.write_str("\\r")?,
            c if (c as u32) < 0x20 || c == '\x7f' => write!(f, "\\x{:02x}", c as u32)?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

fn write_list(f: &mut fmt::Formatter<'_>, items: &[Expr]) -> fmt::Result {
    for (i, e) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{e}")?;
    }
    Ok(())
}
