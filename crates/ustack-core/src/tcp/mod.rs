//! TCP (RFC 9293), with the extensions a real peer expects.
//!
//! - [`seq`]: sequence arithmetic modulo 2^32;
//! - [`state`]: the eleven states;
//! - [`connection`]: the transmission control block and its event
//!   processing, split into [`input`](connection) (segment arrival,
//!   RFC 9293 §3.10.7) and output (what to send next);
//! - [`recv_buffer`], [`ring`]: buffers that allocate on demand;
//! - [`rtt`]: RFC 6298 retransmission timeout;
//! - [`congestion`]: window arithmetic;
//! - [`isn`]: RFC 6528 initial sequence numbers;
//! - [`listener`]: LISTEN sockets with their SYN and accept queues;
//! - [`syncookie`]: SYN cookies for a full SYN queue (RFC 4987 §3.6).

pub mod congestion;
pub mod connection;
mod ecn;
pub mod fastopen;
mod input;
pub mod isn;
pub mod listener;
mod output;
pub(crate) mod recovery;
pub mod recv_buffer;
pub mod ring;
pub mod rtt;
pub mod seq;
pub mod state;
pub mod syncookie;

pub use congestion::Algorithm;
pub use connection::{Connection, TcpInfo};
pub use ecn::Ecn;
pub use input::Disposition;
pub use listener::Listener;
pub use seq::SeqNumber;
pub use state::State;

use crate::stats::TcpStats;
use crate::time::{Duration, Instant};
use crate::trace::Tracer;
use std::sync::Arc;

/// Consecutive retransmission timeouts of the same data after which
/// [`TcpConfig::mtu_probing`] suspects a path MTU black hole (Linux's
/// `tcp_retries1`, 3).
pub const BLACK_HOLE_TIMEOUTS: u32 = 3;

/// The MTU a connection falls back to when it first suspects a black hole
/// (RFC 4821 §7.2 suggests 1024 for `search_low`; Linux's base MSS).
pub const BLACK_HOLE_BASE_MTU: usize = 1024;

/// Settings of a TCP socket. The stack holds the defaults; each socket
/// starts from a copy and may change its own.
#[derive(Clone, Debug)]
pub struct TcpConfig {
    /// Receive buffer (SO_RCVBUF): the most bytes held for the
    /// application, in order or not; the window never exceeds it.
    pub recv_buffer: usize,
    /// Send buffer (SO_SNDBUF): unacknowledged plus unsent bytes.
    pub send_buffer: usize,
    /// Grow the receive buffer with the measured bandwidth-delay product
    /// up to `recv_buffer_max`, and the send buffer with the congestion
    /// window up to `send_buffer_max` (Linux's "dynamic right-sizing"). An
    /// explicit SO_RCVBUF/SO_SNDBUF turns this off, as on Linux.
    pub autotune: bool,
    pub recv_buffer_max: usize,
    pub send_buffer_max: usize,
    /// Largest segment we advertise and send (TCP_MAXSEG); `None` derives
    /// it from the interface MTU.
    pub mss: Option<u16>,
    /// RFC 7323 window scaling.
    pub window_scaling: bool,
    /// RFC 7323 timestamps.
    pub timestamps: bool,
    /// RFC 2018 selective acknowledgements.
    pub sack: bool,
    /// Nagle's algorithm (RFC 9293 §3.7.4); false is TCP_NODELAY.
    pub nagle: bool,
    /// Delayed ACK timeout (RFC 9293 §3.8.6.3: at most 500 ms); `None`
    /// acknowledges every segment at once.
    pub delayed_ack: Option<Duration>,
    /// RTO before the first RTT sample (RFC 6298 §2.1: 1 s).
    pub initial_rto: Duration,
    /// Lower bound of the RTO (RFC 6298 §2.4 says 1 s; Linux uses 200 ms).
    pub min_rto: Duration,
    /// Upper bound of the RTO after backoff.
    pub max_rto: Duration,
    /// Retransmission timer slop (FreeBSD's `net.inet.tcp.rexmit_slop`):
    /// added to every RTO computed from an RTT sample or a backoff, so a
    /// peer's delayed-ACK timer and scheduling jitter do not cause spurious
    /// retransmissions. Zero by default, which is RFC 6298's formula; a
    /// slop only makes the timer later, as a coarser clock granularity G
    /// (§4) would. The initial RTO before any sample is used as set.
    pub rto_slop: Duration,
    /// SYN retransmissions before connect fails with ETIMEDOUT (Linux
    /// `tcp_syn_retries`). The default, 7, keeps a connect trying for
    /// 247 s: RFC 9293 §3.8.3 MUST-23 asks for at least 3 minutes (Linux's
    /// 6 gives up after 127 s).
    pub syn_retries: u32,
    /// SYN-ACK retransmissions before a half-open connection is dropped.
    pub synack_retries: u32,
    /// From this SYN retransmission on (the first is 1), SYNs carry only
    /// the MSS option: no window scaling, timestamps or SACK (FreeBSD's
    /// `rexmit_drop_options` does so from the third), in case a middlebox
    /// on the path drops SYNs with options it does not know. The connection
    /// then uses none of them (RFC 7323 §1.3, RFC 2018 §2: each is used only
    /// if both SYNs carried it). `None` (the default, as Linux) keeps the
    /// options on every SYN.
    pub syn_options_fallback: Option<u32>,
    /// ECN-setup SYN retransmissions (RFC 3168 §6.1.1.1 lets a host send
    /// later SYNs without ECN, in case a middlebox drops ECN-setup SYNs):
    /// with `Ecn::On`, the first SYN and this many retransmissions ask for
    /// ECN, later ones do not. 1 by default, as FreeBSD's `ecn.maxretries`.
    pub ecn_setup_retries: u32,
    /// Data retransmissions before the connection fails with ETIMEDOUT
    /// (Linux `tcp_retries2`; RFC 9293 §3.8.3 R2).
    pub retries: u32,
    /// Maximum segment lifetime; TIME-WAIT lasts twice this.
    pub msl: Duration,
    /// How long a closed socket waits in FIN-WAIT-2 for the peer's FIN.
    pub fin_wait2_timeout: Duration,
    /// Initial congestion window in segments (RFC 6928: 10).
    pub initial_window: usize,
    pub congestion: Algorithm,
    /// Explicit Congestion Notification (RFC 3168): by default accepted
    /// when the peer's SYN asks, as Linux and FreeBSD do.
    pub ecn: Ecn,
    /// RFC 5961 §3 challenge ACKs for in-window RST that do not match
    /// RCV.NXT exactly, and the §5 ACK range check.
    pub rfc5961: bool,
    /// TCP_NOOPT (BSD): SYNs carry no options, not even the MSS (the peer
    /// then sends at most 536 bytes a segment, RFC 9293 §3.7.1), and no
    /// option is used. Off by default: RFC 9293 asks for the MSS option
    /// whenever the MSS differs from 536 (SHOULD-5) and the extensions of
    /// RFC 7323 and RFC 2018 are worth having.
    pub no_options: bool,
    /// RFC 5961 §4: a SYN in a synchronized state gets a challenge ACK
    /// and the connection goes on. Off is RFC 793's rule (§3.9, "fourth,
    /// check the SYN bit"): a SYN in the window is an error, answered with
    /// a reset, and the connection is aborted with ECONNRESET (FreeBSD's
    /// `net.inet.tcp.insecure_syn=1`).
    pub rfc5961_syn: bool,
    /// RFC 1337: ignore RST in TIME-WAIT.
    pub rfc1337: bool,
    /// SO_KEEPALIVE: probe an idle connection (RFC 1122 §4.2.3.6).
    pub keepalive: bool,
    /// TCP_KEEPIDLE: idle time before the first probe (RFC 1122: at least
    /// two hours by default).
    pub keep_idle: Duration,
    /// TCP_KEEPINTVL: time between unanswered probes.
    pub keep_interval: Duration,
    /// TCP_KEEPCNT: unanswered probes before the connection is dropped.
    pub keep_count: u32,
    /// TCP_KEEPINIT (BSD): an active open that is not ESTABLISHED this
    /// long after `connect` fails with ETIMEDOUT (or the ICMP error that
    /// came meanwhile), however many SYNs `syn_retries` still allows. `None`
    /// leaves it to `syn_retries` (RFC 9293 §3.8.3: R2 for a SYN at least
    /// 3 minutes, MUST-23; the application may set a shorter one).
    pub connect_timeout: Option<Duration>,
    /// TCP_USER_TIMEOUT (RFC 5482 semantics, RFC 9293 §3.8.3 R2): abort
    /// when sent data stays unacknowledged this long. `None` leaves it to
    /// the retry count.
    pub user_timeout: Option<Duration>,
    /// SO_LINGER: `Some(0)` makes `close` reset the connection; other
    /// values are kept for the blocking API, which waits that long.
    pub linger: Option<Duration>,
    /// Spread a window's segments over the round trip instead of sending
    /// them in one burst: at cwnd/SRTT times 2 in slow start and 1.2
    /// after, the ratios Linux uses.
    pub pacing: bool,
    /// How far ahead of its pacing schedule a sender may be, so that this
    /// much of the schedule goes in one burst. Zero (the default) paces
    /// segment by segment, which a simulated clock keeps exactly; a driver
    /// whose timers fire once a millisecond sets 1 ms (as Linux sizes TSO
    /// bursts to about a millisecond of the pacing rate), which keeps the
    /// rate and lets a device hand each burst over as one super-packet.
    pub pacing_quantum: Duration,
    /// ICMP hard errors end a connection attempt: a protocol or port
    /// unreachable (codes 2 and 3, RFC 1122 §4.2.3.9: "SHOULD abort") or
    /// "communication administratively prohibited" (codes 9, 10 and 13,
    /// RFC 1812 §5.2.7.1) quoting our SYN fails the connect in SYN-SENT
    /// with ECONNREFUSED. Off, they are soft errors like the others
    /// (remembered: SO_ERROR reports it, and a connect that times out
    /// fails with it): the defence
    /// RFC 5927 §5.2 gives against forged hard errors, applied to the
    /// connection attempt too, so that a blind attacker cannot refuse it
    /// (FreeBSD's `net.inet.tcp.icmp_may_rst=0`). On by default, as on
    /// Linux and FreeBSD. In a synchronized state they are soft either
    /// way. Read when an error arrives, so
    /// [`crate::Stack::tcp_update_config`] changes it for a connection
    /// already in SYN-SENT.
    pub icmp_hard_errors: bool,
    /// The smallest path MTU an ICMP "fragmentation needed" may set
    /// (Linux's `net.ipv4.route.min_pmtu`, 552 by default). A blind
    /// attacker whose forged error happens to quote a sequence number in
    /// flight (at a few MB in flight, about one in a few thousand forgeries)
    /// could otherwise cut the segments to 16 bytes of data (RFC 5927 §7);
    /// a real path narrower than this is unheard of today. The floor of
    /// RFC 791, 68, is the least this may be.
    pub min_path_mtu: usize,
    /// Path MTU black hole detection (RFC 4821 §7.1, RFC 8899 §4.3; Linux's
    /// `tcp_mtu_probing`): a router that drops segments too big for its
    /// next link without the ICMP error RFC 1191 relies on (filtered on
    /// the way back, common in front of tunnels and VPNs) stalls a
    /// connection for good. With this on, when the same data has timed out
    /// [`BLACK_HOLE_TIMEOUTS`] times in a row the connection takes it for
    /// such a hole: its segments shrink to fit a 1024-byte MTU (Linux's
    /// `tcp_base_mss`), then by half at each further timeout, never below
    /// `min_path_mtu`. Off by default, as on Linux and FreeBSD: on a path
    /// that merely loses a lot, it costs segment size for the rest of the
    /// connection (the smaller size is not probed upwards).
    pub mtu_probing: bool,
    /// IP_TOS: the type-of-service byte of the socket's packets, of which
    /// TCP takes only the DSCP (the upper six bits, RFC 2474 §3); the ECN
    /// field is TCP's (RFC 3168 §6.1). A listener's connections inherit it.
    pub tos: u8,
    /// IP_TTL: the time to live of the socket's packets; `None` is the
    /// stack's (`StackConfig::ttl`). Never `Some(0)`.
    pub ttl: Option<u8>,
    /// TCP_REMOTE_UDP_ENCAPS_PORT (FreeBSD): a connection this socket makes
    /// carries its segments in UDP datagrams to this port of the peer, from
    /// the stack's TCP-over-UDP port ([`crate::StackConfig::tcp_over_udp_port`]),
    /// for paths whose middleboxes pass UDP but not TCP, or rewrite TCP.
    /// `None`: plain TCP. A connection accepted from an encapsulated SYN
    /// answers the UDP port the SYN came from, whatever its listener says.
    pub udp_encap_port: Option<u16>,
    /// TCP Fast Open on a listener (RFC 7413; Linux's TCP_FASTOPEN, whose
    /// value is this): the most connections it may hold in SYN-RECEIVED
    /// whose SYN's data it took on the strength of a cookie. 0, the
    /// default: off, and a SYN's data is left for the client to send again
    /// once the handshake is done. See [`fastopen`].
    pub fast_open: usize,
    /// TCP MD5 signature keys (RFC 2385), one per peer address, as Linux's
    /// TCP_MD5SIG sets them: a connection to a peer with a key signs every
    /// segment and accepts only segments signed with it. Empty for nearly
    /// every socket; set through [`crate::Stack::set_md5_key`].
    pub md5_keys: Vec<(std::net::Ipv4Addr, Arc<Md5Key>)>,
}

/// Longest TCP MD5 key (Linux's TCP_MD5SIG_MAXKEYLEN).
pub const MD5_MAX_KEY_LEN: usize = 80;

/// A TCP MD5 signature key (RFC 2385 §4.0: a shared secret of 1 to 80
/// bytes), shared behind an `Arc` by the sockets that hold it.
#[derive(Clone, PartialEq, Eq)]
pub struct Md5Key {
    len: u8,
    bytes: [u8; MD5_MAX_KEY_LEN],
}

impl Md5Key {
    /// None for an empty key or one longer than [`MD5_MAX_KEY_LEN`].
    pub fn new(key: &[u8]) -> Option<Md5Key> {
        if key.is_empty() || key.len() > MD5_MAX_KEY_LEN {
            return None;
        }
        let mut bytes = [0u8; MD5_MAX_KEY_LEN];
        bytes[..key.len()].copy_from_slice(key);
        Some(Md5Key { len: key.len() as u8, bytes })
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

/// The secret stays out of logs.
impl core::fmt::Debug for Md5Key {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Md5Key({} bytes)", self.len)
    }
}

impl TcpConfig {
    /// The MD5 key for segments exchanged with `peer`, if any.
    pub fn md5_key(&self, peer: std::net::Ipv4Addr) -> Option<&Arc<Md5Key>> {
        self.md5_keys.iter().find(|(p, _)| *p == peer).map(|(_, k)| k)
    }
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            recv_buffer: 256 * 1024,
            send_buffer: 256 * 1024,
            autotune: true,
            recv_buffer_max: 16 << 20,
            send_buffer_max: 16 << 20,
            mss: None,
            window_scaling: true,
            timestamps: true,
            sack: true,
            nagle: true,
            delayed_ack: Some(Duration::from_millis(40)),
            initial_rto: Duration::from_secs(1),
            min_rto: Duration::from_millis(200),
            max_rto: Duration::from_secs(120),
            rto_slop: Duration::ZERO,
            syn_retries: 7,
            synack_retries: 5,
            syn_options_fallback: None,
            ecn_setup_retries: 1,
            retries: 15,
            msl: Duration::from_secs(30),
            fin_wait2_timeout: Duration::from_secs(60),
            initial_window: 10,
            congestion: Algorithm::Cubic,
            ecn: Ecn::Passive,
            rfc5961: true,
            rfc5961_syn: true,
            no_options: false,
            rfc1337: true,
            keepalive: false,
            keep_idle: Duration::from_secs(7200),
            keep_interval: Duration::from_secs(75),
            keep_count: 9,
            connect_timeout: None,
            icmp_hard_errors: true,
            min_path_mtu: 552,
            mtu_probing: false,
            user_timeout: None,
            linger: None,
            pacing: true,
            pacing_quantum: Duration::ZERO,
            tos: 0,
            ttl: None,
            udp_encap_port: None,
            fast_open: 0,
            md5_keys: Vec::new(),
        }
    }
}

/// Everything a connection call needs from its stack besides itself.
pub struct Cx<'a> {
    pub now: Instant,
    pub tracer: &'a mut Tracer,
    pub stats: &'a mut TcpStats,
    pub shared: &'a mut TcpShared,
    /// A reader waiting on this connection with a buffer of its own
    /// ([`DirectReader`]), if any.
    pub reader: Option<&'a mut dyn DirectReader>,
}

/// A reader blocked on an empty connection, with a buffer of its own
/// ([`crate::Stack::set_direct_reader`]). In-order data that arrives while
/// the receive buffer is empty goes straight into it: one copy, not two
/// (into the receive buffer, then out to the reader), as a kernel copies
/// a segment straight to a process waiting in `recv`. The bytes count as
/// read: they never take receive-buffer space, so the window stays open.
pub trait DirectReader: Send {
    /// Takes what fits of `data`, the next bytes of the stream, after what
    /// it took before; returns how many it took.
    fn take(&mut self, data: &[u8]) -> usize;
    /// Bytes taken so far.
    fn taken(&self) -> usize;
}

/// What the connections of one stack share: limits that hold across them.
#[derive(Clone, Debug)]
pub struct TcpShared {
    /// RFC 5961 §7: challenge ACKs per second, stack-wide, so that an
    /// attacker cannot use them to make the stack flood the network.
    pub challenge_ack_rate: u32,
    challenge_tokens: u32,
    challenge_refill: Instant,
    /// Bytes held out of order by all connections, and the most allowed:
    /// floods of segments with gaps cannot take memory without bound.
    pub ooo_bytes: usize,
    pub ooo_limit: usize,
    /// Bytes held in the send and receive buffers (readable, out of
    /// order, unsent and unacknowledged) of all connections, as last
    /// reported by each, and the most allowed (`StackConfig::tcp_memory_limit`).
    pub mem_bytes: usize,
    pub mem_limit: usize,
    /// Drained buffer storage kept for the next buffer that fills.
    pub(crate) buffers: ring::BufferPool,
    /// Segments carry a computed checksum (`ChecksumCaps::fill_tx`); off,
    /// the field is zero for the device to fill in.
    pub(crate) fill_checksum: bool,
    /// The key of the Fast Open cookies this stack gives (RFC 7413).
    pub(crate) fast_open_key: fastopen::FastOpenKey,
    /// The Fast Open cookies this stack's clients were given.
    pub(crate) fast_open_peers: fastopen::Peers,
}

/// What a connection may always hold in its buffers, whatever the
/// stack-wide total: one unscaled window (64 KiB). With it a connection
/// beside others that filled the stack's budget still moves data, only
/// more slowly (Linux likewise guarantees each socket a minimum of
/// `tcp_rmem[0]` and `tcp_wmem[0]` under memory pressure).
pub const MEMORY_FLOOR: usize = 64 * 1024;

/// How long a connection keeps the storage of a drained buffer before
/// giving it back. A busy connection drains its buffers over and over (the
/// reader takes everything, the peer acknowledges everything sent), and
/// storage given back at once would be allocated, zeroed and faulted in
/// again a moment later; with more busy connections than the stack's pool
/// holds buffers, that was every read. A connection quiet this long holds
/// no buffer storage.
pub const DRAINED_STORAGE_KEPT: crate::time::Duration = crate::time::Duration::from_millis(200);

impl TcpShared {
    pub fn new(challenge_ack_rate: u32, ooo_limit: usize, mem_limit: usize) -> Self {
        TcpShared {
            challenge_ack_rate,
            challenge_tokens: challenge_ack_rate,
            challenge_refill: Instant::ZERO,
            ooo_bytes: 0,
            ooo_limit,
            mem_bytes: 0,
            mem_limit,
            buffers: ring::BufferPool::default(),
            fill_checksum: true,
            fast_open_key: fastopen::FastOpenKey::derive([0; 16]),
            fast_open_peers: fastopen::Peers::default(),
        }
    }

    /// Takes a challenge-ACK token; false when this second's are spent.
    pub fn allow_challenge_ack(&mut self, now: Instant) -> bool {
        if now.saturating_duration_since(self.challenge_refill) >= Duration::from_secs(1) {
            self.challenge_refill = now;
            self.challenge_tokens = self.challenge_ack_rate;
        }
        if self.challenge_tokens == 0 {
            return false;
        }
        self.challenge_tokens -= 1;
        true
    }
}
