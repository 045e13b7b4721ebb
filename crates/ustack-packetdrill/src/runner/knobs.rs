//! The FreeBSD knobs the scripts turn (`` `sysctl -w net.inet.tcp.X=Y` ``) and what each one
//! becomes in ustack.
//!
//! Every knob of the suite falls in one of three classes:
//!
//! - **mapped**: ustack has the setting; the value is applied to the stack's configuration
//!   (`StackConfig`) or to the `TcpConfig` each new socket starts from (and, for a knob
//!   FreeBSD reads globally, [`Setting::is_global`], to the sockets that exist);
//! - **equivalent**: ustack has no switch, but its fixed behaviour is what the value asks
//!   for. Most of these are FreeBSD's default values, which the scripts set at their top
//!   ("ensure that all relevant sysctl variables have their default values"): housekeeping
//!   that only undoes what an earlier test on the same machine may have changed;
//! - **unsupported**: a value asking for a behaviour ustack does not have; the script is
//!   skipped with "no ustack equivalent for net.inet.tcp.X=Y".

use ustack_core::Duration;
use ustack_core::tcp::TcpConfig;

/// The settings a script's knobs control: the stack-wide ones and the defaults every new
/// TCP socket starts from.
#[derive(Clone, Debug)]
pub struct Knobs {
    /// The `TcpConfig` copied into each new socket.
    pub tcp: TcpConfig,
    /// `StackConfig::reply_to_closed_ports` (the inverse of FreeBSD's `blackhole`).
    pub reply_to_closed_ports: bool,
    /// `StackConfig::drop_syn_fin` (FreeBSD's `drop_synfin`).
    pub drop_syn_fin: bool,
    /// `StackConfig::tcp_over_udp_port` (FreeBSD's `udp_tunneling_port`).
    pub tcp_over_udp_port: Option<u16>,
}

impl Default for Knobs {
    /// ustack's own defaults, until a script's knobs say otherwise, except for one FreeBSD
    /// default no script sets: `net.inet.tcp.always_keepalive=1`, under which every
    /// connection sends keep-alive probes after TCP_KEEPIDLE, as SO_KEEPALIVE asks of
    /// ustack's (the idle time is two hours on both unless a script shortens it).
    fn default() -> Self {
        Knobs {
            tcp: TcpConfig { keepalive: true, ..TcpConfig::default() },
            reply_to_closed_ports: true,
            drop_syn_fin: false,
            tcp_over_udp_port: None,
        }
    }
}

/// A ustack setting a knob changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setting {
    /// `net.inet.tcp.rfc1323`: 0 neither, 1 both, 2 window scaling only, 3 timestamps only.
    Rfc1323 { window_scaling: bool, timestamps: bool },
    /// `net.inet.tcp.sack.enable`.
    Sack(bool),
    /// `net.inet.tcp.insecure_rst` (inverted): RFC 5961 §3 RST handling (and §5 ACK check).
    Rfc5961(bool),
    /// `net.inet.tcp.insecure_syn` (inverted): RFC 5961 §4 challenge ACK for a SYN in a
    /// synchronized state; off, RFC 793's reset and abort.
    Rfc5961Syn(bool),
    /// `net.inet.tcp.drop_synfin`: drop segments with SYN and FIN.
    DropSynFin(bool),
    /// `net.inet.tcp.recvspace`: the default receive buffer.
    RecvBuffer(usize),
    /// `net.inet.tcp.sendspace`: the default send buffer.
    SendBuffer(usize),
    /// `net.inet.tcp.blackhole` 0 or 2 (inverted).
    ReplyToClosedPorts(bool),
    /// `net.inet.tcp.rexmit_initial` (ms).
    InitialRto(Duration),
    /// `net.inet.tcp.rexmit_min` (ms).
    MinRto(Duration),
    /// `net.inet.tcp.rexmit_slop` (ms): `TcpConfig::rto_slop`.
    RtoSlop(Duration),
    /// `net.inet.tcp.rexmit_drop_options`: SYNs from the third retransmission on carry
    /// only the MSS (`TcpConfig::syn_options_fallback`).
    SynOptionsFallback(bool),
    /// `net.inet.tcp.ecn.maxretries`: `TcpConfig::ecn_setup_retries`.
    EcnSetupRetries(u32),
    /// `kern.ipc.maxsockbuf`: the largest socket buffer, so the largest receive buffer
    /// auto-tuning may reach (and with it the window scale a SYN announces) and the
    /// largest send buffer (`TcpConfig::recv_buffer_max`, `send_buffer_max`).
    BufferMax(usize),
    /// `net.inet.tcp.delayed_ack`.
    DelayedAck(bool),
    /// `net.inet.tcp.delacktime` (ms).
    DelayedAckTime(Duration),
    /// `net.inet.tcp.msl` (ms).
    Msl(Duration),
    /// `net.inet.tcp.finwait2_timeout` (ms).
    FinWait2Timeout(Duration),
    /// `net.inet.tcp.keepidle` (ms): TCP_KEEPIDLE of new sockets.
    KeepIdle(Duration),
    /// `net.inet.tcp.keepintvl` (ms): TCP_KEEPINTVL of new sockets.
    KeepInterval(Duration),
    /// `net.inet.tcp.keepcnt`: TCP_KEEPCNT of new sockets.
    KeepCount(u32),
    /// `net.inet.tcp.keepinit` (ms): TCP_KEEPINIT of new sockets.
    ConnectTimeout(Duration),
    /// `net.inet.tcp.ecn.enable`: 0 off, 1 ask and accept, 2 accept when asked.
    Ecn(ustack_core::tcp::Ecn),
    /// `net.inet.tcp.icmp_may_rst`: an ICMP hard error ends a connection in SYN-SENT
    /// (`TcpConfig::icmp_hard_errors`); 0, it is a soft error.
    IcmpHardErrors(bool),
    /// `net.inet.tcp.udp_tunneling_port`: the port of TCP over UDP, 0 none
    /// (`StackConfig::tcp_over_udp_port`).
    TcpOverUdpPort(Option<u16>),
}

impl Setting {
    /// Applies the setting to the script's knobs: the stack's configuration or the
    /// `TcpConfig` new sockets start from.
    pub fn apply(self, k: &mut Knobs) {
        match self {
            Setting::DropSynFin(on) => k.drop_syn_fin = on,
            Setting::ReplyToClosedPorts(on) => k.reply_to_closed_ports = on,
            Setting::TcpOverUdpPort(port) => k.tcp_over_udp_port = port,
            _ => self.apply_tcp(&mut k.tcp),
        }
    }

    /// Whether the setting lives in a socket's `TcpConfig` (so it can be applied to one
    /// that exists, [`Setting::apply_tcp`]), not in the `StackConfig`.
    pub fn in_tcp_config(self) -> bool {
        !matches!(self, Setting::DropSynFin(_) | Setting::ReplyToClosedPorts(_) | Setting::TcpOverUdpPort(_))
    }

    /// Applies the setting to one `TcpConfig`: the defaults new sockets start from, or
    /// the settings of a socket that exists. A stack-wide setting leaves it alone.
    pub fn apply_tcp(self, t: &mut TcpConfig) {
        match self {
            Setting::Rfc1323 { window_scaling, timestamps } => {
                t.window_scaling = window_scaling;
                t.timestamps = timestamps;
            }
            Setting::Sack(on) => t.sack = on,
            Setting::Ecn(mode) => t.ecn = mode,
            Setting::Rfc5961(on) => t.rfc5961 = on,
            Setting::Rfc5961Syn(on) => t.rfc5961_syn = on,
            Setting::IcmpHardErrors(on) => t.icmp_hard_errors = on,
            Setting::RecvBuffer(n) => t.recv_buffer = n,
            Setting::SendBuffer(n) => t.send_buffer = n,
            Setting::InitialRto(d) => t.initial_rto = d,
            Setting::MinRto(d) => t.min_rto = d,
            Setting::RtoSlop(d) => t.rto_slop = d,
            Setting::SynOptionsFallback(on) => t.syn_options_fallback = on.then_some(3),
            Setting::EcnSetupRetries(n) => t.ecn_setup_retries = n,
            Setting::BufferMax(n) => {
                t.recv_buffer_max = n;
                t.send_buffer_max = n;
            }
            Setting::DelayedAck(on) => {
                t.delayed_ack = if on { Some(t.delayed_ack.unwrap_or(Duration::from_millis(100))) } else { None }
            }
            Setting::DelayedAckTime(d) => {
                if t.delayed_ack.is_some() {
                    t.delayed_ack = Some(d);
                }
            }
            Setting::Msl(d) => t.msl = d,
            Setting::FinWait2Timeout(d) => t.fin_wait2_timeout = d,
            Setting::KeepIdle(d) => t.keep_idle = d,
            Setting::KeepInterval(d) => t.keep_interval = d,
            Setting::KeepCount(n) => t.keep_count = n,
            Setting::ConnectTimeout(d) => t.connect_timeout = Some(d),
            Setting::DropSynFin(_) | Setting::ReplyToClosedPorts(_) | Setting::TcpOverUdpPort(_) => {}
        }
    }

    /// Whether FreeBSD reads the knob while segments arrive (so that changing it affects
    /// sockets and connections that exist), where the others are copied into a socket when
    /// it is created. Changed in the middle of a script, one that lives in the `TcpConfig`
    /// ([`Setting::in_tcp_config`]) is applied to every socket the script has open too
    /// (`Stack::tcp_update_config`); one in the `StackConfig`, which ustack fixes when the
    /// stack is created, cannot change there.
    pub fn is_global(self) -> bool {
        matches!(
            self,
            Setting::Rfc5961(_)
                | Setting::Rfc5961Syn(_)
                | Setting::IcmpHardErrors(_)
                | Setting::ReplyToClosedPorts(_)
                | Setting::DropSynFin(_)
                | Setting::TcpOverUdpPort(_)
        )
    }
}

/// What a `sysctl -w name=value` becomes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mapping {
    /// A ustack setting.
    Set(Setting),
    /// Nothing to do: ustack behaves so already (the reason says why).
    Equivalent(&'static str),
    /// The script needs a behaviour ustack does not have.
    Unsupported(String),
}

fn ms(v: i64) -> Duration {
    Duration::from_millis(v.max(0) as u64)
}

/// Maps one knob. `name` is the full sysctl name, `value` its new value.
pub fn map_sysctl(name: &str, value: i64) -> Mapping {
    let unsupported = || Mapping::Unsupported(format!("no ustack equivalent for {name}={value}"));
    // A FreeBSD default of a knob ustack lacks: housekeeping, ustack's own behaviour stands.
    let default_only = |default: i64, why: &'static str| {
        if value == default { Mapping::Equivalent(why) } else { unsupported() }
    };
    match name {
        "net.inet.tcp.rfc1323" => match value {
            0 => Mapping::Set(Setting::Rfc1323 { window_scaling: false, timestamps: false }),
            1 => Mapping::Set(Setting::Rfc1323 { window_scaling: true, timestamps: true }),
            2 => Mapping::Set(Setting::Rfc1323 { window_scaling: true, timestamps: false }),
            3 => Mapping::Set(Setting::Rfc1323 { window_scaling: false, timestamps: true }),
            _ => unsupported(),
        },
        "net.inet.tcp.sack.enable" => Mapping::Set(Setting::Sack(value != 0)),
        "net.inet.tcp.insecure_rst" => Mapping::Set(Setting::Rfc5961(value == 0)),
        "net.inet.tcp.recvspace" if value > 0 => Mapping::Set(Setting::RecvBuffer(value as usize)),
        "net.inet.tcp.sendspace" if value > 0 => Mapping::Set(Setting::SendBuffer(value as usize)),
        "net.inet.tcp.blackhole" => match value {
            0 => Mapping::Set(Setting::ReplyToClosedPorts(true)),
            2 => Mapping::Set(Setting::ReplyToClosedPorts(false)),
            // 1: no RST for a SYN only; ustack's switch is all or nothing.
            _ => unsupported(),
        },
        "net.inet.tcp.rexmit_initial" if value > 0 => Mapping::Set(Setting::InitialRto(ms(value))),
        "net.inet.tcp.rexmit_min" if value > 0 => Mapping::Set(Setting::MinRto(ms(value))),
        "net.inet.tcp.delayed_ack" => Mapping::Set(Setting::DelayedAck(value != 0)),
        "net.inet.tcp.delacktime" if value > 0 => Mapping::Set(Setting::DelayedAckTime(ms(value))),
        "net.inet.tcp.msl" if value > 0 => Mapping::Set(Setting::Msl(ms(value))),
        "net.inet.tcp.finwait2_timeout" if value > 0 => Mapping::Set(Setting::FinWait2Timeout(ms(value))),
        "net.inet.tcp.insecure_syn" => Mapping::Set(Setting::Rfc5961Syn(value == 0)),
        "net.inet.tcp.drop_synfin" => Mapping::Set(Setting::DropSynFin(value != 0)),
        "net.inet.tcp.icmp_may_rst" => Mapping::Set(Setting::IcmpHardErrors(value != 0)),
        "net.inet.tcp.rexmit_drop_options" => Mapping::Set(Setting::SynOptionsFallback(value != 0)),
        "net.inet.tcp.tolerate_missing_ts" => {
            default_only(0, "ustack drops non-RST segments without timestamps once they are in use (RFC 7323 §3.2)")
        }
        "net.inet.tcp.ecn.enable" => match value {
            0 => Mapping::Set(Setting::Ecn(ustack_core::tcp::Ecn::Off)),
            1 => Mapping::Set(Setting::Ecn(ustack_core::tcp::Ecn::On)),
            2 => Mapping::Set(Setting::Ecn(ustack_core::tcp::Ecn::Passive)),
            _ => unsupported(),
        },
        // ustack asks for ECN on its first SYN and the first retransmission.
        "net.inet.tcp.ecn.maxretries" if value >= 0 => Mapping::Set(Setting::EcnSetupRetries(value as u32)),
        "net.inet.tcp.rexmit_slop" if value >= 0 => Mapping::Set(Setting::RtoSlop(ms(value))),
        "kern.ipc.maxsockbuf" if value > 0 => Mapping::Set(Setting::BufferMax(value as usize)),
        // What FreeBSD's host cache keeps that ustack also learns, the path MTU of an ICMP
        // "fragmentation needed", is in ustack's path MTU cache, empty in the fresh stack of
        // each script. It is not flushed in mid-script: no script of the suite purges
        // between such an ICMP and a connection that would use what it taught (the one
        // purge in mid-script, in rcv-icmp-hard-error-ignored, is followed only by close).
        "net.inet.tcp.hostcache.purgenow" => {
            Mapping::Equivalent("ustack's path MTU cache starts empty (a fresh stack per script)")
        }
        "net.inet.tcp.keepinit" if value > 0 => Mapping::Set(Setting::ConnectTimeout(ms(value))),
        // Keep-alive times: ustack, like Linux's setsockopt, takes 1 s to 32767 s.
        "net.inet.tcp.keepidle" | "net.inet.tcp.keepintvl" if (1000..=32_767_000).contains(&value) => {
            let d = ms(value);
            Mapping::Set(if name.ends_with("keepidle") { Setting::KeepIdle(d) } else { Setting::KeepInterval(d) })
        }
        "net.inet.tcp.keepcnt" if (1..=127).contains(&value) => Mapping::Set(Setting::KeepCount(value as u32)),
        "net.inet.tcp.syncookies" => default_only(1, "FreeBSD default"),
        "net.inet.tcp.syncookies_only" => default_only(0, "FreeBSD default"),
        "net.inet.tcp.udp_tunneling_port" => match value {
            0 => Mapping::Set(Setting::TcpOverUdpPort(None)),
            1..=65535 => Mapping::Set(Setting::TcpOverUdpPort(Some(value as u16))),
            _ => unsupported(),
        },
        // The MSS reduction on encapsulated connections: ustack's is the UDP header's 8.
        "net.inet.tcp.udp_tunneling_overhead" => default_only(8, "ustack takes the UDP header's 8 bytes off the MSS"),
        _ => unsupported(),
    }
}

/// A shell command of a script, as the runner understands it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `sysctl -w name=value`.
    Sysctl { name: String, value: i64 },
    /// `sockstat ... [-p PORT] ... | grep -c STATE | grep N`: N sockets in STATE.
    Sockstat { port: Option<u16>, state: String, count: usize },
    /// A command with no effect on the stack under test (`setkey -F`: IPsec keys).
    Housekeeping,
    /// Anything else.
    Unknown(String),
}

/// Reads a shell command.
pub fn parse_command(text: &str) -> Command {
    let text = text.trim();
    let words: Vec<&str> = text.split_whitespace().collect();
    match words.first().copied() {
        Some("sysctl") => {
            let assignment = words.iter().skip(1).find(|w| w.contains('='));
            if let Some((name, value)) = assignment.and_then(|a| a.split_once('='))
                && let Ok(value) = value.parse::<i64>()
            {
                return Command::Sysctl { name: name.to_string(), value };
            }
            Command::Unknown(text.to_string())
        }
        Some("sockstat") => parse_sockstat(text).unwrap_or_else(|| Command::Unknown(text.to_string())),
        Some("setkey") => Command::Housekeeping,
        // FreeBSD's TCP-MD5 scripts load the module and feed the keys to setkey
        // (`kldstat -q -m tcpmd5 || kldload tcpmd5; echo '...' | setkey -c`): the keys are
        // the script's --tcp_md5_secret, installed by its setsockopt(TCP_MD5SIG).
        Some("kldstat" | "kldload") if text.contains("tcpmd5") => Command::Housekeeping,
        _ => Command::Unknown(text.to_string()),
    }
}

fn parse_sockstat(text: &str) -> Option<Command> {
    let mut stages = text.split('|').map(str::trim);
    let head: Vec<&str> = stages.next()?.split_whitespace().collect();
    let port = head.iter().position(|w| *w == "-p").and_then(|i| head.get(i + 1)).and_then(|p| p.parse().ok());
    let mut state = None;
    let mut count = None;
    for stage in stages {
        let w: Vec<&str> = stage.split_whitespace().collect();
        match w.as_slice() {
            ["grep", "-c", s] => state = Some(s.to_string()),
            ["grep", n] if state.is_some() => count = n.parse().ok(),
            ["grep", _] => {}
            _ => return None,
        }
    }
    Some(Command::Sockstat { port, state: state?, count: count? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knobs_map() {
        assert_eq!(map_sysctl("net.inet.tcp.insecure_rst", 1), Mapping::Set(Setting::Rfc5961(false)));
        assert_eq!(
            map_sysctl("net.inet.tcp.rexmit_slop", 200),
            Mapping::Set(Setting::RtoSlop(Duration::from_millis(200)))
        );
        assert_eq!(map_sysctl("net.inet.tcp.keepcnt", 2), Mapping::Set(Setting::KeepCount(2)));
        assert_eq!(map_sysctl("net.inet.tcp.rexmit_drop_options", 1), Mapping::Set(Setting::SynOptionsFallback(true)));
        assert_eq!(map_sysctl("net.inet.tcp.ecn.maxretries", 0), Mapping::Set(Setting::EcnSetupRetries(0)));
        assert_eq!(map_sysctl("kern.ipc.maxsockbuf", 73728), Mapping::Set(Setting::BufferMax(73728)));
        assert_eq!(
            map_sysctl("net.inet.tcp.keepcnt", 0),
            Mapping::Unsupported("no ustack equivalent for net.inet.tcp.keepcnt=0".into())
        );
        assert_eq!(
            map_sysctl("net.inet.tcp.keepidle", 15000),
            Mapping::Set(Setting::KeepIdle(Duration::from_millis(15000)))
        );
        assert_eq!(map_sysctl("net.inet.tcp.insecure_syn", 1), Mapping::Set(Setting::Rfc5961Syn(false)));
        assert_eq!(map_sysctl("net.inet.tcp.drop_synfin", 1), Mapping::Set(Setting::DropSynFin(true)));
        assert_eq!(map_sysctl("net.inet.tcp.icmp_may_rst", 0), Mapping::Set(Setting::IcmpHardErrors(false)));
        assert_eq!(map_sysctl("net.inet.tcp.icmp_may_rst", 1), Mapping::Set(Setting::IcmpHardErrors(true)));
        assert!(Setting::IcmpHardErrors(false).is_global() && Setting::IcmpHardErrors(false).in_tcp_config());
        assert!(Setting::DropSynFin(true).is_global() && !Setting::DropSynFin(true).in_tcp_config());
        assert!(matches!(map_sysctl("net.inet.tcp.whatever", 1), Mapping::Unsupported(_)));
    }

    #[test]
    fn commands_parse() {
        assert_eq!(
            parse_command("sysctl -w net.inet.tcp.rfc1323=1"),
            Command::Sysctl { name: "net.inet.tcp.rfc1323".into(), value: 1 }
        );
        assert_eq!(
            parse_command("sockstat -4 -P tcp -s -p 8080 | grep -c SYN_RCVD | grep 1"),
            Command::Sockstat { port: Some(8080), state: "SYN_RCVD".into(), count: 1 }
        );
        assert_eq!(
            parse_command("sockstat -4 -P tcp -s | grep packetdril | grep -c TIME_WAIT | grep 1"),
            Command::Sockstat { port: None, state: "TIME_WAIT".into(), count: 1 }
        );
        assert_eq!(parse_command("setkey -F"), Command::Housekeeping);
        assert_eq!(
            parse_command(
                "kldstat -q -m tcpmd5 || kldload tcpmd5; echo 'add 1.2.3.4 5.6.7.8 tcp 0x1000 -A tcp-md5 \"s\" ;' | setkey -c"
            ),
            Command::Housekeeping
        );
        assert!(matches!(parse_command("tcpdrop -s TIME_WAIT"), Command::Unknown(_)));
    }
}
