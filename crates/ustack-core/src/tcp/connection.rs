//! The transmission control block (RFC 9293 §3.3.1) and the user calls
//! and timeouts of RFC 9293 §3.10. Segment arrival lives in `input.rs`,
//! segment emission in `output.rs`.

use super::congestion::Congestion;
use super::fastopen::FastOpen;
use super::recv_buffer::RecvBuffer;
use super::ring::Ring;
use super::rtt::RttEstimator;
use super::seq::SeqNumber;
use super::state::State;
use super::{Cx, TcpConfig};
use crate::socket::Error;
use crate::time::{Duration, Instant};
use crate::trace::{EventKind, Timer};
use crate::wire::TcpRepr;
use crate::wire::icmpv4::DstUnreachable;
use std::collections::VecDeque;
use std::net::SocketAddrV4;
use std::sync::Arc;

/// IPv4 and TCP headers without options: what an MSS leaves out of an MTU.
pub const IP_TCP_HEADERS: usize = 40;
/// The UDP header before each segment of a connection carried over UDP.
pub const UDP_ENCAP_HEADER: usize = 8;
/// The MSS assumed when the peer sends no MSS option (RFC 9293 §3.7.1).
pub const DEFAULT_PEER_MSS: usize = 536;
/// The largest window a scaled window may offer (RFC 7323 §2.3).
pub const MAX_WINDOW: usize = 1 << 30;
/// Largest shift RFC 7323 §2.3 allows.
pub const MAX_WINDOW_SHIFT: u8 = 14;
/// Segments acknowledged at once at the start of a connection, before
/// delayed ACKs begin (Linux's quick-ack mode).
pub(crate) const QUICKACK_SEGMENTS: u32 = 16;

/// One segment's worth of sequence space in flight.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TxSeg {
    pub start: SeqNumber,
    /// One past the last sequence number, counting the FIN.
    pub end: SeqNumber,
    pub fin: bool,
    /// Last (re)transmission time.
    pub sent_at: Instant,
    /// Transmissions so far.
    pub xmits: u8,
    /// Marked lost and not retransmitted since.
    pub lost: bool,
    /// SACKed by the receiver (RFC 2018); not in flight, not to be resent.
    pub sacked: bool,
    /// Stored in RACK's index, `rack.sent`. A segment in flight that is
    /// not is in the index implicitly (see `Connection::rack_materialize`).
    pub indexed: bool,
}

impl TxSeg {
    pub fn len(&self) -> usize {
        self.end - self.start
    }
    /// Data bytes (without the FIN).
    pub fn data_end(&self) -> SeqNumber {
        if self.fin { self.end - 1 } else { self.end }
    }
}

/// How much of the congestion window was used, per round trip, so the
/// window grows only when it limited sending (RFC 7661 §4.3, RFC 9438
/// §5.8), as Linux's `tcp_is_cwnd_limited` does.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CwndUse {
    /// The round ends when this is acknowledged.
    pub round_end: SeqNumber,
    /// Largest flight and whether cwnd stopped sending, this round and the
    /// previous one. (A flight is less than 2^31 bytes, the sequence space
    /// in flight, so 32 bits hold it.)
    pub max_flight: u32,
    pub limited: bool,
    pub prev_max_flight: u32,
    pub prev_limited: bool,
}

/// Loss recovery phase (RFC 6582, RFC 5681 §3.2, RFC 6298 §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Recovery {
    Open,
    /// Fast recovery until everything sent before it began is acknowledged.
    Fast {
        recover: SeqNumber,
    },
    /// After a retransmission timeout, until `recover` is acknowledged.
    Loss {
        recover: SeqNumber,
    },
}

/// When an ACK is owed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum AckDue {
    No,
    /// Owed, but may wait for the delayed-ACK timer or piggyback on data.
    Delayed,
    /// Owed now.
    Now,
}

/// Per-connection figures in the manner of Linux's `TCP_INFO`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpInfo {
    pub state: Option<State>,
    pub rtt: Option<Duration>,
    pub rttvar: Duration,
    pub rto: Duration,
    pub cwnd: usize,
    pub ssthresh: usize,
    pub mss: usize,
    pub snd_wnd: usize,
    pub rcv_wnd: usize,
    pub bytes_sent: u64,
    pub bytes_retransmitted: u64,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    pub segments_sent: u64,
    pub segments_received: u64,
    pub retransmits: u64,
    pub in_flight: usize,
    pub backoff: u32,
    /// Bytes SACKed and segments presumed lost, now.
    pub sacked_bytes: usize,
    pub lost_segments: usize,
    /// D-SACK blocks received (duplicates the peer reported).
    pub dsacks: u64,
    /// Recoveries undone because D-SACK showed them spurious.
    pub undos: u64,
    /// RACK saw reordering on this path.
    pub reordering: bool,
}

/// The running counts of [`TcpInfo`], kept apart from the figures it
/// reads off the live connection, so a connection does not carry a copy
/// of those.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TcpCounters {
    pub bytes_sent: u64,
    pub bytes_retransmitted: u64,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    pub segments_sent: u64,
    pub segments_received: u64,
    pub retransmits: u64,
    pub dsacks: u64,
    pub undos: u64,
}

/// How a connection was opened (RFC 9293 §3.10.1), with its part in TCP
/// Fast Open (RFC 7413).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Opening {
    /// By `connect`.
    Active,
    /// By `connect_with_data`: the SYN asks for a Fast Open cookie, or
    /// carries one with the first data.
    ActiveFastOpen,
    /// The same, once a SYN went with data.
    ActiveFastOpenSentData,
    /// By a listener (a passive OPEN), which decides what a RST in
    /// SYN-RECEIVED does.
    Passive(FastOpen),
}

/// A TCP connection from SYN-SENT or SYN-RECEIVED to CLOSED.
#[derive(Debug)]
pub struct Connection {
    pub(crate) local: SocketAddrV4,
    pub(crate) remote: SocketAddrV4,
    pub(crate) state: State,
    pub(crate) cfg: Arc<TcpConfig>,
    /// How the connection was opened, and what it does about TCP Fast
    /// Open (one byte for both).
    pub(crate) open: Opening,

    // Send sequence space (RFC 9293 §3.3.1).
    pub(crate) iss: SeqNumber,
    pub(crate) snd_una: SeqNumber,
    /// Next sequence number never sent before (highest sent plus one).
    pub(crate) snd_nxt: SeqNumber,
    /// End of the last segment sent shorter than the MSS (see
    /// `small_segment_unacked`).
    pub(crate) snd_sml: SeqNumber,
    /// The peer's window in bytes, scaled.
    pub(crate) snd_wnd: usize,
    pub(crate) snd_wl1: SeqNumber,
    pub(crate) snd_wl2: SeqNumber,
    /// Largest window the peer has offered (RFC 5961 §5.2 MAX.SND.WND).
    pub(crate) max_snd_wnd: usize,
    pub(crate) snd_wscale: u8,

    // Receive sequence space.
    pub(crate) irs: SeqNumber,
    pub(crate) rcv_nxt: SeqNumber,
    pub(crate) rcv_wscale: u8,
    /// Right edge of the window last advertised (RCV.NXT + RCV.WND then).
    pub(crate) rcv_adv: SeqNumber,

    /// Unacknowledged and unsent bytes, from `snd_una` on.
    pub(crate) tx: Ring,
    pub(crate) rx: RecvBuffer,
    /// Segments sent and not yet acknowledged, in sequence order.
    pub(crate) rtx: VecDeque<TxSeg>,
    /// Bytes in flight (RFC 6675 pipe): sent, not acknowledged, not
    /// marked lost.
    pub(crate) in_flight: usize,
    /// Lost segments awaiting retransmission.
    pub(crate) lost_count: u32,
    /// Bytes SACKed above SND.UNA.
    pub(crate) sacked_bytes: usize,
    /// RACK-TLP state (RFC 8985).
    pub(crate) rack: super::recovery::Rack,
    /// Proportional rate reduction during fast recovery (RFC 6937):
    /// allocated when fast recovery begins, given back when it ends.
    pub(crate) prr: Option<Box<super::recovery::Prr>>,
    /// The window before the last fast recovery, for undo, while the
    /// episode may still be undone: it is in progress, or it ended and the
    /// D-SACKs for its retransmissions may still be on their way.
    pub(crate) undo: Option<Box<super::recovery::Undo>>,
    /// The tail loss probe sends one new segment regardless of cwnd.
    pub(crate) tlp_send_new: bool,
    /// A duplicate to report in the next ACK's first SACK block (RFC 2883).
    pub(crate) dsack: Option<(SeqNumber, SeqNumber)>,
    /// Whether the congestion window limited sending, per round trip
    /// (RFC 7661): a window not in use is not grown.
    pub(crate) cwnd_use: CwndUse,
    /// When a segment last carried new data or a retransmission.
    pub(crate) last_send_at: Option<Instant>,
    /// When a segment last arrived, for keep-alive.
    pub(crate) last_recv_at: Instant,
    pub(crate) keepalive_deadline: Option<Instant>,
    /// Keep-alive probes sent without an answer.
    pub(crate) keepalive_probes: u32,
    /// A keep-alive probe is due.
    pub(crate) keepalive_due: bool,
    /// Since when sent data has been waiting for an acknowledgement, for
    /// the user timeout.
    pub(crate) unacked_since: Option<Instant>,
    /// Receive-side RTT (from echoed timestamps) and the bytes the
    /// application took in the current measurement round, for auto-tuning.
    /// (Nanoseconds, zero for none: samples are whole milliseconds, at
    /// least one, so a smoothed value is never zero; 8 bytes where an
    /// `Option<Duration>` takes 16.)
    rcv_rtt_nanos: u64,
    pub(crate) rcv_space_start: Instant,
    pub(crate) rcv_space_bytes: usize,
    /// TSecr of the segment being processed.
    pub(crate) last_tsecr: Option<u32>,
    /// What the application consumed in the previous auto-tuning round.
    pub(crate) rcv_space_prev: usize,
    /// Out-of-order bytes last reported to the stack's total.
    ooo_reported: u32,
    /// Buffered bytes counted in the stack-wide total. (Both are within
    /// the two buffers, 1 GiB each at most: 32 bits hold them.)
    mem_reported: u32,
    /// When data last arrived, for quick-ACK after idle.
    pub(crate) last_data_at: Option<Instant>,
    /// When pacing lets the next segment go.
    pub(crate) pacing_next: Option<Instant>,
    pub(crate) pacing_deadline: Option<Instant>,

    /// The application will send no more: a FIN follows the data.
    pub(crate) tx_closed: bool,
    /// Sequence number of our FIN once it has been sent.
    pub(crate) fin_seq: Option<SeqNumber>,
    /// Sequence number of the peer's FIN, once seen (maybe out of order).
    pub(crate) rx_fin: Option<SeqNumber>,
    /// The peer's FIN was processed: reads return end of file.
    pub(crate) rx_closed: bool,
    /// The application shut down reading: arriving data is discarded.
    pub(crate) rx_shutdown: bool,
    /// Text that came on the peer's SYN in a simultaneous open, held at
    /// the front of `rx` but not yet acknowledged nor readable: RFC 9293
    /// §3.10.7.3 queues it "for processing after the ESTABLISHED state has
    /// been reached". Zero otherwise.
    pub(crate) syn_text: u16,
    /// The application closed the socket; the connection finishes alone.
    pub(crate) user_closed: bool,

    // Negotiated options.
    /// Largest payload we put in a segment, options excluded.
    pub(crate) mss: usize,
    /// MSS we advertised (our interface MTU minus headers).
    pub(crate) local_mss: u32,
    /// The path's MTU minus headers, as the stack knew it at the start
    /// (`Endpoints::path_mss`) or an ICMP error taught it since (this
    /// connection's or another's to the same peer); `u32::MAX` unknown.
    pub(crate) path_mss: u32,
    pub(crate) sack_ok: bool,
    pub(crate) ts_ok: bool,
    /// Both SYNs carried the window scale option.
    pub(crate) ws_ok: bool,
    /// TS.Recent (RFC 7323 §4.3) and when it was set.
    pub(crate) ts_recent: u32,
    pub(crate) ts_recent_age: Instant,
    /// Added to our millisecond clock for TSval (RFC 7323 §5.4).
    pub(crate) ts_offset: u32,

    // Timers.
    pub(crate) rtx_deadline: Option<Instant>,
    pub(crate) persist_deadline: Option<Instant>,
    /// Persist timer backoffs (the timer doubles up to 2^16 times its
    /// base; a byte holds the count, saturating, and leaves room in the
    /// struct for `ip_tos` and `ip_ttl`).
    pub(crate) persist_backoff: u8,
    /// Zero-window probes sent since the peer last acknowledged anything:
    /// a peer that stops answering them is gone (RFC 1122 §4.2.2.17).
    pub(crate) probes_unanswered: u32,
    pub(crate) delack_deadline: Option<Instant>,
    /// TIME-WAIT or orphaned FIN-WAIT-2 expiry.
    pub(crate) close_deadline: Option<Instant>,
    pub(crate) rtt: RttEstimator,
    /// Consecutive retransmission timeouts without progress.
    pub(crate) retries: u32,

    // Congestion and recovery.
    pub(crate) cc: Congestion,
    pub(crate) recovery: Recovery,
    pub(crate) dupacks: u32,
    /// Bytes assumed to have left the network because duplicate ACKs
    /// arrived for them (without SACK, as Linux's Reno emulation).
    pub(crate) dupack_credit: usize,

    // Acknowledgements we owe.
    pub(crate) ack_due: AckDue,
    /// Full-sized segments received since our last ACK.
    pub(crate) segs_since_ack: u32,
    pub(crate) quickacks: u32,

    // Control segments owed.
    /// The SYN (SYN-SENT) or SYN-ACK (SYN-RECEIVED) must be (re)sent.
    pub(crate) syn_due: bool,
    /// A RST to send before the connection closes: (seq, ack).
    pub(crate) rst_due: Option<(SeqNumber, Option<SeqNumber>)>,
    /// A zero-window probe is due.
    pub(crate) probe_due: bool,
    /// The next retransmission goes regardless of the congestion window
    /// (the fast retransmit and NewReno's partial-ACK retransmit).
    pub(crate) rexmit_now: bool,
    /// When our first SYN went out, for the first RTT sample.
    pub(crate) syn_sent_at: Option<Instant>,

    /// The error the next call reports (ECONNRESET, ETIMEDOUT, ...).
    pub(crate) error: Option<Error>,
    /// The last ICMP soft error; a timeout reports it instead of ETIMEDOUT
    /// (RFC 1122 §4.2.3.9, as Linux does).
    pub(crate) soft_error: Option<Error>,
    pub(crate) info: TcpCounters,
    /// Explicit Congestion Notification (RFC 3168).
    pub(crate) ecn: super::ecn::EcnState,
    /// Readiness changed since the stack last looked.
    pub(crate) wake: bool,
    /// In the stack's queue of connections holding drained buffers.
    pub(crate) in_drained: bool,
    /// IP_TOS of the connection's packets (only its DSCP is used; see
    /// `TcpConfig::tos`), and IP_TTL, 0 for the stack's. Kept here rather
    /// than in `cfg`, so that changing them on a live connection copies no
    /// settings and the transmit path reads them beside `ecn`; the two
    /// bytes cost nothing (the struct's padding and a `persist_backoff`
    /// shrunk to a byte make room for them).
    pub(crate) ip_tos: u8,
    pub(crate) ip_ttl: u8,
    /// TCP over UDP: the peer's UDP port its segments go to and must come
    /// from (`StackConfig::tcp_over_udp_port`), or 0 for plain TCP (a
    /// datagram from port 0 cannot be answered; FreeBSD's `t_port` uses 0
    /// so too). Fixed when the connection is made; two bytes that fit in
    /// the padding beside `ip_ttl`.
    udp_encap: u16,
}

/// What names a new connection and what its stack chose for it.
#[derive(Clone, Copy, Debug)]
pub struct Endpoints {
    pub local: SocketAddrV4,
    pub remote: SocketAddrV4,
    /// Initial send sequence number (RFC 6528).
    pub iss: u32,
    /// The MSS to advertise: the interface MTU less 40 (48 over UDP).
    pub local_mss: usize,
    /// The largest segment the path to the peer carries, less 40 (48 over
    /// UDP): from the path MTU the stack learned for that address (RFC 1191
    /// §6.3), else `usize::MAX`. It bounds what we send, not what we
    /// advertise.
    pub path_mss: usize,
    /// Offset of this connection's timestamp clock (RFC 7323 §5.4).
    pub ts_offset: u32,
    /// TCP over UDP: the peer's UDP port (`StackConfig::tcp_over_udp_port`),
    /// or `None` for plain TCP.
    pub udp_encap: Option<u16>,
}

/// Picks the window shift for a receive buffer (RFC 7323 §2.2): the
/// smallest that lets the 16-bit field cover the buffer.
pub fn window_shift_for(buffer: usize) -> u8 {
    let mut shift = 0;
    while shift < MAX_WINDOW_SHIFT && (0xffff_usize << shift) < buffer {
        shift += 1;
    }
    shift
}

/// The window shift this end announces on its SYN or SYN-ACK: room for
/// the largest receive buffer auto-tuning may grow to (RFC 7323 §2.2), or
/// 0 without window scaling. Every SYN-ACK, cookie or not, announces this
/// and the connection then scales its windows by it.
pub fn receive_window_shift(cfg: &TcpConfig) -> u8 {
    if !cfg.window_scaling {
        return 0;
    }
    window_shift_for(if cfg.autotune { cfg.recv_buffer_max.max(cfg.recv_buffer) } else { cfg.recv_buffer })
}

/// Records `now` as the figure reported to a stack-wide total and returns
/// the change to apply to that total. (`now` is a buffer figure, below
/// 2^31; a larger one would be reported as 2^32 - 1.)
fn report(now: usize, reported: &mut u32) -> isize {
    let now = u32::try_from(now).unwrap_or(u32::MAX);
    let delta = now as isize - *reported as isize;
    *reported = now;
    delta
}

impl Connection {
    fn new(cfg: &Arc<TcpConfig>, ep: Endpoints, now: Instant, passive: bool) -> Self {
        let Endpoints { local, remote, iss, local_mss, path_mss, ts_offset, udp_encap } = ep;
        // Connections share their socket's or listener's settings until
        // one of them changes its own (copy on write).
        let mut cfg = Arc::clone(cfg);
        if cfg.no_options {
            // TCP_NOOPT: no option is offered, so none is used.
            let c = Arc::make_mut(&mut cfg);
            c.window_scaling = false;
            c.timestamps = false;
            c.sack = false;
        }
        let cfg = &cfg;
        let state = if passive { State::Listen } else { State::Closed };
        let iss = SeqNumber(iss);
        // A configured MSS is at least 64 bytes (as Linux's TCP_MAXSEG
        // floor) and never beyond what the interface carries; a tiny MTU
        // is advertised as it is.
        let local_mss = cfg.mss.map_or(local_mss, |m| (m as usize).max(64)).min(local_mss).max(1);
        Connection {
            local,
            remote,
            state,
            cfg: cfg.clone(),
            open: if passive { Opening::Passive(FastOpen::Off) } else { Opening::Active },
            iss,
            snd_una: iss,
            snd_nxt: iss,
            snd_sml: iss,
            snd_wnd: 0,
            snd_wl1: SeqNumber(0),
            snd_wl2: SeqNumber(0),
            max_snd_wnd: 0,
            snd_wscale: 0,
            irs: SeqNumber(0),
            rcv_nxt: SeqNumber(0),
            // The shift must allow the largest window auto-tuning may offer.
            rcv_wscale: receive_window_shift(cfg),
            rcv_adv: SeqNumber(0),
            tx: Ring::new(cfg.send_buffer),
            rx: RecvBuffer::new(cfg.recv_buffer.min(if cfg.window_scaling { MAX_WINDOW } else { 0xffff })),
            rtx: VecDeque::new(),
            in_flight: 0,
            lost_count: 0,
            sacked_bytes: 0,
            // Sequence numbers start from the ISS, not zero: comparisons are
            // modulo 2^32 (RFC 9293 §3.4), and zero may lie "ahead" of it.
            rack: super::recovery::Rack { reo_wnd_mult: 1, fack: iss, end_seq: iss, ..Default::default() },
            prr: None,
            undo: None,
            tlp_send_new: false,
            dsack: None,
            cwnd_use: CwndUse { round_end: iss, ..CwndUse::default() },
            last_send_at: None,
            last_recv_at: now,
            keepalive_deadline: None,
            keepalive_probes: 0,
            keepalive_due: false,
            unacked_since: None,
            rcv_rtt_nanos: 0,
            rcv_space_start: now,
            rcv_space_bytes: 0,
            last_tsecr: None,
            rcv_space_prev: 0,
            ooo_reported: 0,
            mem_reported: 0,
            last_data_at: None,
            pacing_next: None,
            pacing_deadline: None,
            tx_closed: false,
            fin_seq: None,
            rx_fin: None,
            rx_closed: false,
            rx_shutdown: false,
            syn_text: 0,
            user_closed: false,
            mss: DEFAULT_PEER_MSS.min(local_mss).min(path_mss),
            local_mss: u32::try_from(local_mss).unwrap_or(u32::MAX),
            path_mss: u32::try_from(path_mss).unwrap_or(u32::MAX),
            sack_ok: false,
            ts_ok: false,
            ws_ok: false,
            ts_recent: 0,
            ts_recent_age: now,
            ts_offset,
            rtx_deadline: None,
            persist_deadline: None,
            persist_backoff: 0,
            probes_unanswered: 0,
            delack_deadline: None,
            close_deadline: None,
            rtt: RttEstimator::new(cfg.initial_rto, cfg.min_rto, cfg.max_rto),
            retries: 0,
            cc: Congestion::new(cfg.congestion, cfg.initial_window.max(1) * DEFAULT_PEER_MSS.min(local_mss)),
            recovery: Recovery::Open,
            dupacks: 0,
            dupack_credit: 0,
            ack_due: AckDue::No,
            segs_since_ack: 0,
            quickacks: QUICKACK_SEGMENTS,
            syn_due: true,
            rst_due: None,
            probe_due: false,
            rexmit_now: false,
            syn_sent_at: None,
            error: None,
            soft_error: None,
            info: TcpCounters::default(),
            ecn: Default::default(),
            wake: false,
            in_drained: false,
            ip_tos: cfg.tos,
            ip_ttl: cfg.ttl.unwrap_or(0),
            udp_encap: udp_encap.unwrap_or(0),
        }
    }

    /// An active open (RFC 9293 §3.10.1): the connection starts in
    /// SYN-SENT with its SYN due.
    pub fn connect(cx: &mut Cx, cfg: &Arc<TcpConfig>, ep: Endpoints) -> Self {
        let mut c = Self::new(cfg, ep, cx.now, false);
        cx.stats.active_opens += 1;
        c.set_state(cx, State::SynSent);
        // TCP_KEEPINIT runs on the keep-alive timer, idle until ESTABLISHED.
        c.keepalive_deadline = cfg.connect_timeout.map(|d| cx.now + d);
        c
    }

    /// A passive open: a listener received `syn` and creates this
    /// connection in SYN-RECEIVED with its SYN-ACK due (RFC 9293 §3.10.7.2).
    pub fn accept_syn(cx: &mut Cx, cfg: &Arc<TcpConfig>, ep: Endpoints, syn: &TcpRepr) -> Self {
        let mut c = Self::new(cfg, ep, cx.now, true);
        cx.stats.passive_opens += 1;
        c.irs = SeqNumber(syn.seq);
        c.rcv_nxt = c.irs + 1;
        c.take_syn_options(syn);
        c.ecn_negotiate(cx, syn.flags);
        // The SYN's window is never scaled (RFC 7323 §2.2).
        c.snd_wnd = syn.window as usize;
        c.max_snd_wnd = c.snd_wnd;
        c.snd_wl1 = c.irs;
        c.snd_wl2 = c.iss;
        c.set_state(cx, State::SynReceived);
        c
    }

    /// The client's side of TCP Fast Open (RFC 7413 §4.1): the SYN asks for
    /// a cookie, or, with one the server gave before, carries the first of
    /// `data`, which is queued as a write is. Returns the bytes queued.
    pub(crate) fn fast_open_connect(&mut self, cx: &mut Cx, data: &[u8]) -> usize {
        self.open = Opening::ActiveFastOpen;
        if data.is_empty() { 0 } else { self.tx.push(&mut cx.shared.buffers, data) }
    }

    /// Takes the data of a Fast Open SYN whose cookie was good (RFC 7413
    /// §4.2.2): it is received now, readable at once and acknowledged by
    /// the SYN-ACK. (A FIN on such a SYN is left for the client to send
    /// again, as any FIN on a SYN that a listener answers.)
    pub(crate) fn take_fast_open_data(&mut self, cx: &mut Cx, payload: &[u8]) {
        self.open = Opening::Passive(FastOpen::TookData);
        cx.stats.fast_open_syn_data += 1;
        let seq = self.rcv_nxt;
        let room = payload.len().min(self.rx.free());
        self.receive_text(cx, seq, &payload[..room]);
    }

    /// Records what the peer's SYN offers and settles the options both
    /// sides use.
    pub(crate) fn take_syn_options(&mut self, syn: &TcpRepr) {
        let o = &syn.options;
        let peer_mss = o.mss.map_or(DEFAULT_PEER_MSS, |m| m as usize).max(64);
        // Window scaling only when both SYNs carry the option (RFC 7323 §2.2).
        match (self.cfg.window_scaling, o.window_scale) {
            (true, Some(shift)) => {
                // RFC 7323 §2.3: a shift above 14 is treated as 14.
                self.snd_wscale = shift.min(MAX_WINDOW_SHIFT);
                self.ws_ok = true;
            }
            _ => {
                self.ws_ok = false;
                self.snd_wscale = 0;
                self.rcv_wscale = 0;
            }
        }
        self.sack_ok = self.cfg.sack && o.sack_permitted;
        // With an MD5 signature (20 bytes) and timestamps (12), no SACK
        // block fits in the 40 bytes of options (it needs 12): a signed
        // connection keeps SACK and forgoes timestamps, as Linux does (its
        // SYN offers no timestamps with a key, and its SYN-ACK drops them
        // when SACK was offered).
        self.ts_ok = self.cfg.timestamps && o.timestamps.is_some() && !(self.md5_signed() && self.sack_ok);
        if let Some((val, _)) = o.timestamps {
            self.ts_recent = val;
        }
        // RFC 9293 §3.7.1 and RFC 6691: data per segment is the smaller MSS
        // less the TCP options every segment carries; and no more than the
        // path is known to carry (RFC 1191 §6.3).
        let opts = self.every_segment_options();
        let path = self.path_mss as usize;
        self.mss = peer_mss.min(self.local_mss as usize).min(path).saturating_sub(opts).max(1);
        self.cc.set_cwnd(self.initial_cwnd());
        let cap = self.negotiated_rx_capacity(self.rx.capacity());
        self.rx.set_capacity(cap);
    }

    /// The receive buffer for a request of `n` bytes once the SYNs settled
    /// window scaling and the MSS. With scaling it is `n`, up to the largest
    /// window. Without it the 16-bit field cannot say more than 65,535
    /// bytes (RFC 7323 §2.2), which is not a whole number of segments (44.9
    /// of 1,460): the buffer is that, rounded up to whole segments (45 x
    /// 1,460 = 65,700, as FreeBSD rounds its buffers), and a segment reaching
    /// past the advertised edge into the buffer is still taken (the
    /// sequence check uses the free space as well as the advertised window).
    fn negotiated_rx_capacity(&self, n: usize) -> usize {
        if self.ws_ok { n.min(MAX_WINDOW) } else { n.min(0xffff).next_multiple_of(self.mss.max(1)) }
    }

    /// RFC 6928: min(10 * MSS, max(2 * MSS, 14600)) for the default of 10.
    pub(crate) fn initial_cwnd(&self) -> usize {
        let iw = self.cfg.initial_window.max(1);
        if iw == 10 { (10 * self.mss).min((2 * self.mss).max(14600)) } else { iw * self.mss }
    }

    pub(crate) fn set_state(&mut self, cx: &mut Cx, to: State) {
        let from = self.state;
        if from == to {
            return;
        }
        self.state = to;
        self.wake = true;
        let (local, remote) = (self.local, self.remote);
        cx.tracer.record(cx.now, || EventKind::TcpState { local, remote, from, to });
        if to == State::Closed {
            self.enter_closed();
        } else if to == State::Established {
            self.last_recv_at = cx.now;
            self.arm_keepalive();
        } else if matches!(to, State::FinWait2 | State::CloseWait) {
            // Keep-alive covers these states too (RFC 1122 §4.2.3.6, as
            // Linux does), but the segment that moves us here was processed
            // in a state without it (FIN-WAIT-1), which disarmed the timer:
            // without this a half-closed connection whose peer vanished
            // would wait in FIN-WAIT-2 for ever.
            self.arm_keepalive();
        }
    }

    /// CLOSED: every timer stops and every buffer is freed; the error, if
    /// any, waits for the application.
    fn enter_closed(&mut self) {
        self.rtx_deadline = None;
        self.persist_deadline = None;
        self.delack_deadline = None;
        self.close_deadline = None;
        self.rtx.clear();
        self.rtx.shrink_to_fit();
        self.in_flight = 0;
        self.lost_count = 0;
        self.sacked_bytes = 0;
        self.rack.reorder_deadline = None;
        self.rack.tlp_deadline = None;
        self.rack.sent.clear();
        self.keepalive_deadline = None;
        let n = self.tx.len();
        self.tx.consume(n);
        self.tx.release_if_empty(&mut super::ring::BufferPool::default());
        if self.user_closed {
            self.rx.clear();
        }
        self.ack_due = AckDue::No;
        self.syn_due = false;
        self.probe_due = false;
    }

    /// Ends the connection with `error` for the application.
    pub(crate) fn fail(&mut self, cx: &mut Cx, error: Error) {
        self.drop_syn_text();
        if self.error.is_none() {
            self.error = Some(error);
        }
        self.set_state(cx, State::Closed);
    }

    // ---- accessors -------------------------------------------------------

    pub fn state(&self) -> State {
        self.state
    }
    pub fn local(&self) -> SocketAddrV4 {
        self.local
    }
    pub fn remote(&self) -> SocketAddrV4 {
        self.remote
    }
    /// Opened by `connect_with_data` (the client's side of Fast Open).
    pub(crate) fn fast_open_client(&self) -> bool {
        matches!(self.open, Opening::ActiveFastOpen | Opening::ActiveFastOpenSentData)
    }

    pub fn is_passive(&self) -> bool {
        matches!(self.open, Opening::Passive(_))
    }
    pub fn error(&self) -> Option<Error> {
        self.error
    }
    pub fn mss(&self) -> usize {
        self.mss
    }
    /// What the two SYNs agreed on: (window scaling, timestamps, SACK).
    pub fn negotiated_options(&self) -> (bool, bool, bool) {
        (self.ws_ok, self.ts_ok, self.sack_ok)
    }
    /// The last ICMP soft error (RFC 1122 §4.2.3.9), not yet reported.
    pub fn soft_error(&self) -> Option<Error> {
        self.soft_error
    }
    pub fn config(&self) -> &TcpConfig {
        &self.cfg
    }
    /// The application has closed its handle; the stack may free the
    /// connection once it reaches CLOSED.
    pub fn is_orphan(&self) -> bool {
        self.user_closed
    }
    /// Bytes the application can read now.
    pub fn recv_queue(&self) -> usize {
        if self.syn_text > 0 { 0 } else { self.rx.len() }
    }
    /// Bytes the application wrote that are not yet acknowledged.
    pub fn send_queue(&self) -> usize {
        self.tx.len()
    }
    /// Room for more data in the send buffer.
    pub fn send_capacity(&self) -> usize {
        self.tx.free()
    }
    /// True when a read would not block: data, end of file, or an error.
    pub fn can_recv(&self) -> bool {
        self.recv_queue() > 0 || self.rx_closed || self.error.is_some() || self.state == State::Closed
    }
    /// True when a write would not block (room, or an error to report).
    pub fn can_send(&self) -> bool {
        match self.state {
            State::Established | State::CloseWait => self.tx_closed || self.tx.free() > 0,
            State::SynSent | State::SynReceived => false,
            _ => true,
        }
    }
    /// Takes the "readiness changed" flag.
    pub fn take_wake(&mut self) -> bool {
        core::mem::take(&mut self.wake)
    }
    /// The change in out-of-order bytes since the last call, for the
    /// stack-wide total.
    pub(crate) fn take_ooo_delta(&mut self) -> isize {
        report(self.rx.out_of_order_bytes(), &mut self.ooo_reported)
    }

    /// Out-of-order bytes counted in the stack's total.
    pub(crate) fn ooo_reported(&self) -> usize {
        self.ooo_reported as usize
    }

    /// Bytes held in the buffers: unacknowledged and unsent, readable, and
    /// out of order (what `StackConfig::tcp_memory_limit` bounds).
    pub fn buffered(&self) -> usize {
        self.tx.len() + self.rx.len() + self.rx.out_of_order_bytes()
    }

    /// The change in buffered bytes since the last call, for the
    /// stack-wide total.
    pub(crate) fn take_mem_delta(&mut self) -> isize {
        report(self.buffered(), &mut self.mem_reported)
    }

    /// Buffered bytes counted in the stack's total.
    pub(crate) fn mem_reported(&self) -> usize {
        self.mem_reported as usize
    }

    /// How many more bytes this connection may buffer: what is left of the
    /// stack-wide budget, but at least up to [`super::MEMORY_FLOOR`].
    pub(crate) fn memory_room(&self, shared: &super::TcpShared) -> usize {
        let held = self.buffered();
        let total = shared.mem_bytes.saturating_sub(self.mem_reported()) + held;
        shared.mem_limit.saturating_sub(total).max(super::MEMORY_FLOOR.saturating_sub(held))
    }

    /// Heap bytes held by the buffers.
    pub fn buffer_bytes(&self) -> usize {
        self.tx.allocated() + self.rx.allocated() + self.rtx.capacity() * core::mem::size_of::<TxSeg>()
    }

    /// Whether a buffer (or the retransmission queue) holds storage and no
    /// data: what [`Connection::release_drained_storage`] gives back.
    pub(crate) fn holds_drained_storage(&self) -> bool {
        self.rx.is_drained_with_storage()
            || (self.tx.is_empty() && (self.tx.allocated() > 0 || self.rtx.capacity() > 0))
    }

    /// Gives back the storage of drained buffers, `DRAINED_STORAGE_KEPT`
    /// after they drained: rings to the stack's pool, and, once everything
    /// sent is acknowledged, the retransmission queue and RACK's index, so
    /// that an idle connection holds no buffer.
    pub(crate) fn release_drained_storage(&mut self, pool: &mut super::ring::BufferPool) {
        self.rx.release_if_drained(pool);
        if self.tx.is_empty() {
            self.tx.release_if_empty(pool);
            if self.rtx.is_empty() {
                self.rtx = VecDeque::new();
                self.rack.sent = Default::default();
            }
        }
    }

    pub fn info(&self) -> TcpInfo {
        let c = &self.info;
        TcpInfo {
            state: Some(self.state),
            rtt: self.rtt.srtt(),
            rttvar: self.rtt.rttvar(),
            rto: self.rto(),
            cwnd: self.cc.cwnd(),
            ssthresh: self.cc.ssthresh(),
            mss: self.mss,
            snd_wnd: self.snd_wnd,
            rcv_wnd: self.rcv_adv.since(self.rcv_nxt),
            bytes_sent: c.bytes_sent,
            bytes_retransmitted: c.bytes_retransmitted,
            bytes_acked: c.bytes_acked,
            bytes_received: c.bytes_received,
            segments_sent: c.segments_sent,
            segments_received: c.segments_received,
            retransmits: c.retransmits,
            in_flight: self.in_flight,
            backoff: self.rtt.backoff(),
            sacked_bytes: self.sacked_bytes,
            lost_segments: self.lost_count as usize,
            dsacks: c.dsacks,
            undos: c.undos,
            reordering: self.rack.reordering_seen,
        }
    }

    // ---- user calls (RFC 9293 §3.10.2 - §3.10.6) ---------------------------

    /// SEND: queues bytes; returns how many fitted.
    pub fn send(&mut self, cx: &mut Cx, data: &[u8]) -> Result<usize, Error> {
        let writable = matches!(self.state, State::Established | State::CloseWait) || self.sends_before_established();
        match self.state {
            _ if writable && !self.tx_closed => {
                if data.is_empty() {
                    return Ok(0);
                }
                let n = self.tx.push(&mut cx.shared.buffers, data);
                if n == 0 { Err(Error::WouldBlock) } else { Ok(n) }
            }
            State::SynSent | State::SynReceived if !self.tx_closed => Err(Error::WouldBlock),
            State::Closed => Err(self.error.take().unwrap_or(Error::BrokenPipe)),
            _ => Err(Error::BrokenPipe),
        }
    }

    /// True when [`Connection::recv`] would fail with `WouldBlock`, which
    /// changes nothing: the stack answers such a call (an event loop reads
    /// until it gets one) without the bookkeeping that follows a call.
    /// (None of `recv`'s earlier answers applies, and the state is neither
    /// of the two it answers otherwise.)
    pub(crate) fn recv_would_block(&self) -> bool {
        self.recv_queue() == 0
            && self.error.is_none()
            && !self.rx_closed
            && !self.rx_shutdown
            && !matches!(self.state, State::Closed | State::Listen)
    }

    /// RECEIVE: copies readable bytes. `Ok(0)` is end of file.
    pub fn recv(&mut self, cx: &mut Cx, out: &mut [u8]) -> Result<usize, Error> {
        if self.recv_queue() > 0 {
            if out.is_empty() {
                return Ok(0);
            }
            let n = self.rx.read(out);
            self.after_read(cx, n);
            return Ok(n);
        }
        if let Some(e) = self.error {
            // Report a reset or timeout once, then end of file, as BSD does.
            self.error = None;
            self.rx_closed = true;
            return Err(e);
        }
        if self.rx_closed || self.rx_shutdown {
            return Ok(0);
        }
        match self.state {
            State::Closed => Ok(0),
            State::Listen => Err(Error::NotConnected),
            _ => Err(Error::WouldBlock),
        }
    }

    /// Peeks at readable bytes without consuming them.
    pub fn peek(&self, out: &mut [u8]) -> usize {
        if self.syn_text > 0 { 0 } else { self.rx.peek(out) }
    }

    /// Forgets text held from the peer's SYN (never acknowledged: the peer
    /// sends it again if the connection lives on).
    pub(crate) fn drop_syn_text(&mut self) {
        if self.syn_text > 0 {
            self.syn_text = 0;
            self.rx.clear();
        }
    }

    /// After the application read: if the window can open by a lot, tell
    /// the peer now rather than waiting for its next segment (RFC 9293
    /// §3.8.6.2.2, the receiver side of SWS avoidance).
    fn after_read(&mut self, cx: &mut Cx, n: usize) {
        if !self.state.can_receive() {
            return;
        }
        self.autotune_recv(cx.now, n);
        let advertised = self.rcv_adv.since(self.rcv_nxt);
        let possible = self.rx.free();
        let threshold = (2 * self.mss).min(self.rx.capacity() / 2).max(1);
        if possible >= advertised + threshold {
            self.ack_due = AckDue::Now;
            self.wake = true;
        }
        let _ = cx;
    }

    /// The receive-side RTT estimate (from echoed timestamps), if any.
    pub(crate) fn rcv_rtt(&self) -> Option<Duration> {
        (self.rcv_rtt_nanos != 0).then(|| Duration::from_nanos(self.rcv_rtt_nanos))
    }

    pub(crate) fn set_rcv_rtt(&mut self, rtt: Duration) {
        self.rcv_rtt_nanos = u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX).max(1);
    }

    /// Receive-buffer auto-tuning: once per receive-side RTT, grow the
    /// buffer to twice what the application consumed in that RTT, so the
    /// window keeps ahead of the bandwidth-delay product (the scheme of
    /// Linux's tcp_rcv_space_adjust).
    pub(super) fn autotune_recv(&mut self, now: Instant, n: usize) {
        self.rcv_space_bytes += n;
        if !self.cfg.autotune {
            return;
        }
        let Some(rtt) = self.rcv_rtt().or(self.rtt.srtt()) else { return };
        if now.saturating_duration_since(self.rcv_space_start) < rtt {
            return;
        }
        // Twice what was consumed this round, plus room for a burst; and
        // while consumption is still growing (the sender in slow start),
        // more in proportion to the growth, so the window stays ahead of a
        // window that doubles every round.
        let copied = self.rcv_space_bytes;
        let mut want = 2 * copied + 16 * self.mss;
        if self.rcv_space_prev > 0 && copied > self.rcv_space_prev {
            let growth = (copied - self.rcv_space_prev) as u128 * want as u128 / self.rcv_space_prev as u128;
            want = want.saturating_add(2 * growth.min(usize::MAX as u128 / 2) as usize);
        }
        let want = want.min(self.cfg.recv_buffer_max);
        let cap = if self.ws_ok { want } else { want.min(0xffff) };
        if cap > self.rx.capacity() {
            self.rx.set_capacity(cap);
            self.wake = true;
        }
        self.rcv_space_prev = copied;
        self.rcv_space_bytes = 0;
        self.rcv_space_start = now;
    }

    /// Send-buffer auto-tuning: room for twice the congestion window.
    pub(crate) fn autotune_send(&mut self) {
        if !self.cfg.autotune {
            return;
        }
        let want = self.cc.cwnd().saturating_mul(2).min(self.cfg.send_buffer_max);
        if want > self.tx.limit() {
            self.tx.set_limit(want);
            self.wake = true;
        }
    }

    /// SHUTDOWN(write) / the sending half of CLOSE: a FIN follows the data
    /// already queued (RFC 9293 §3.10.4).
    pub fn shutdown_write(&mut self, cx: &mut Cx) {
        if self.tx_closed {
            return;
        }
        match self.state {
            State::SynSent => {
                self.set_state(cx, State::Closed);
            }
            State::SynReceived => {
                // The FIN goes once our SYN is acknowledged.
                self.tx_closed = true;
            }
            State::Established => {
                self.tx_closed = true;
                self.set_state(cx, State::FinWait1);
            }
            State::CloseWait => {
                self.tx_closed = true;
                self.set_state(cx, State::LastAck);
            }
            _ => {}
        }
    }

    /// SHUTDOWN(read): reads return end of file; data that still arrives
    /// is acknowledged and discarded.
    pub fn shutdown_read(&mut self) {
        self.rx_shutdown = true;
        self.rx.clear();
    }

    /// CLOSE by the application: graceful unless unread data is pending, in
    /// which case the connection is reset (RFC 1122 §4.2.2.13, RFC 2525
    /// §2.17). The connection then finishes on its own.
    pub fn close(&mut self, cx: &mut Cx) {
        self.user_closed = true;
        // SO_LINGER with a zero timeout: close is an abort (a RST).
        if self.cfg.linger == Some(Duration::ZERO) {
            self.abort(cx);
            return;
        }
        self.drop_syn_text();
        if !self.rx.is_empty() && self.state != State::Closed {
            self.abort(cx);
            return;
        }
        self.rx_shutdown = true;
        self.shutdown_write(cx);
        if self.state == State::FinWait2 {
            self.close_deadline = Some(cx.now + self.cfg.fin_wait2_timeout);
        }
    }

    /// ABORT (RFC 9293 §3.10.5): a RST if the peer knows of us, then CLOSED.
    /// TIME-WAIT ends early: a new SYN for the same pair of sockets takes
    /// its place (RFC 9293 §3.10.7.4 note, RFC 6191). Nothing is sent; an
    /// application that still holds the socket finds it closed.
    pub fn end_time_wait(&mut self, cx: &mut Cx) {
        if self.state == State::TimeWait {
            self.close_deadline = None;
            self.set_state(cx, State::Closed);
            self.wake = true;
        }
    }

    pub fn abort(&mut self, cx: &mut Cx) {
        self.user_closed = true;
        match self.state {
            State::SynReceived | State::Established | State::FinWait1 | State::FinWait2 | State::CloseWait => {
                self.rst_due = Some((self.snd_nxt, Some(self.rcv_nxt)));
                self.error = None;
                self.set_state(cx, State::Closed);
                self.wake = true;
            }
            State::Closed => {}
            _ => self.set_state(cx, State::Closed),
        }
    }

    // ---- timers (RFC 9293 §3.10.8) -------------------------------------------

    /// The earliest instant a timer of this connection expires.
    /// (Asked after every segment: written as a plain minimum over
    /// nanoseconds, `u64::MAX` standing for "not armed", which compiles to
    /// a few branch-free instructions.)
    pub fn poll_timeout(&self) -> Option<Instant> {
        let ns = |t: Option<Instant>| t.map_or(u64::MAX, Instant::as_nanos);
        let earliest = ns(self.rtx_deadline)
            .min(ns(self.persist_deadline))
            .min(ns(self.delack_deadline))
            .min(ns(self.close_deadline))
            .min(ns(self.rack.reorder_deadline))
            .min(ns(self.rack.tlp_deadline))
            .min(ns(self.keepalive_deadline))
            .min(ns(self.pacing_deadline));
        // FAR_FUTURE is u64::MAX - 1 nanoseconds, so MAX is never a time.
        (earliest != u64::MAX).then(|| Instant::from_nanos(earliest))
    }

    /// Runs every timer whose deadline has passed.
    pub fn handle_timeout(&mut self, cx: &mut Cx) {
        let now = cx.now;
        if self.close_deadline.is_some_and(|t| t <= now) {
            self.close_deadline = None;
            let timer = if self.state == State::TimeWait { Timer::TimeWait } else { Timer::FinWait2 };
            self.trace_timer(cx, timer);
            self.set_state(cx, State::Closed);
            return;
        }
        // The tail loss probe first: one due at the same time as the RTO
        // goes instead of it and restarts it (RFC 8985 §7.2).
        if self.rack.tlp_deadline.is_some_and(|t| t <= now) {
            self.on_tlp_timeout(cx);
        }
        if self.rtx_deadline.is_some_and(|t| t <= now) {
            self.rtx_deadline = None;
            self.on_retransmit_timeout(cx);
        }
        if self.rack.reorder_deadline.is_some_and(|t| t <= now) {
            // RFC 8985 §6.3: the reordering window has passed.
            self.rack.reorder_deadline = None;
            if self.rack_detect_loss(now) > 0 && self.recovery == Recovery::Open {
                self.enter_fast_recovery(cx);
            }
            self.wake = true;
        }
        if self.keepalive_deadline.is_some_and(|t| t <= now) {
            self.keepalive_deadline = None;
            self.on_keepalive_timeout(cx);
        }
        if self.pacing_deadline.is_some_and(|t| t <= now) {
            // The paced segment may go now.
            self.pacing_deadline = None;
            self.wake = true;
        }
        if self.persist_deadline.is_some_and(|t| t <= now) {
            self.persist_deadline = None;
            // RFC 5482: the user timeout covers data held back by a zero
            // window too.
            // RFC 1122 §4.2.2.17 keeps a zero window open only while the
            // peer answers the probes; like Linux, give up after as many
            // unanswered probes as data retransmissions (tcp_retries2).
            if self.user_timeout_expired(now) || self.probes_unanswered >= self.cfg.retries {
                cx.stats.connections_timed_out += 1;
                self.fail(cx, Error::TimedOut);
                return;
            }
            self.probes_unanswered += 1;
            self.trace_timer(cx, Timer::Persist);
            self.probe_due = true;
            self.persist_backoff = self.persist_backoff.saturating_add(1);
        }
        if self.delack_deadline.is_some_and(|t| t <= now) {
            self.delack_deadline = None;
            if self.ack_due == AckDue::Delayed {
                self.trace_timer(cx, Timer::DelayedAck);
                cx.stats.delayed_acks += 1;
                self.ack_due = AckDue::Now;
            }
        }
    }

    fn trace_timer(&self, cx: &mut Cx, timer: Timer) {
        let (local, remote, rto, backoff) = (self.local, self.remote, self.rto(), self.rtt.backoff());
        cx.tracer.record(cx.now, || EventKind::TcpTimer { local, remote, timer, rto, backoff });
    }

    /// RFC 6298 §5.4-5.6: retransmit, back off, restart; give up after the
    /// configured number of tries (RFC 9293 §3.8.3, R2).
    fn on_retransmit_timeout(&mut self, cx: &mut Cx) {
        self.trace_timer(cx, Timer::Retransmit);
        cx.stats.timeouts += 1;
        self.retries += 1;
        match self.state {
            State::SynSent | State::SynReceived => {
                let limit = if self.state == State::SynSent { self.cfg.syn_retries } else { self.cfg.synack_retries };
                if self.retries > limit {
                    cx.stats.attempt_fails += 1;
                    cx.stats.connections_timed_out += 1;
                    self.fail(cx, self.soft_error.unwrap_or(Error::TimedOut));
                    return;
                }
                self.rtt.back_off();
                self.syn_due = true;
                if self.state == State::SynSent && self.cfg.syn_options_fallback.is_some_and(|n| self.retries >= n) {
                    // Not offered, so not used either (copy on write, as
                    // TCP_NOOPT): the SYN keeps only the MSS.
                    let c = Arc::make_mut(&mut self.cfg);
                    c.window_scaling = false;
                    c.timestamps = false;
                    c.sack = false;
                }
            }
            State::Closed | State::Listen | State::TimeWait => {}
            _ => {
                if self.rtx.is_empty() {
                    return;
                }
                if self.user_timeout_expired(cx.now) || self.retries > self.cfg.retries {
                    cx.stats.connections_timed_out += 1;
                    self.fail(cx, self.soft_error.unwrap_or(Error::TimedOut));
                    return;
                }
                self.rtt.back_off();
                if self.cfg.mtu_probing && self.retries >= super::BLACK_HOLE_TIMEOUTS {
                    self.shrink_for_black_hole(cx);
                }
                // After a timeout everything outstanding and not SACKed is
                // presumed lost (RFC 6675 §5.1, RFC 5681 §3.1) and the window
                // is one segment; recovery lasts until all of it is
                // acknowledged (RFC 6582 §4).
                let flight = self.flight_size();
                self.cc.on_rto(cx.now, flight, self.mss);
                self.recovery = Recovery::Loss { recover: self.snd_nxt };
                self.prr = None;
                self.undo = None;
                self.dupacks = 0;
                self.dupack_credit = 0;
                self.rack.reorder_deadline = None;
                self.rack.tlp_deadline = None;
                self.rack.tlp_end_seq = None;
                // RFC 2018 §8: the receiver may have reneged on what it
                // SACKed; after a timeout nothing SACKed is trusted. RACK's
                // highest SACKed sequence number goes with it: a segment
                // SACKed before and acknowledged again now was not
                // reordered (RFC 8985 §6.2 step 3).
                self.rack.fack = self.snd_una;
                for i in 0..self.rtx.len() {
                    if self.rtx[i].sacked {
                        self.rtx[i].sacked = false;
                        self.sacked_bytes -= self.rtx[i].len();
                        self.in_flight += self.rtx[i].len();
                    }
                    self.mark_lost(i);
                }
                self.trace_congestion(cx);
            }
        }
        // The timer restarts when the retransmission goes out.
        self.rtx_deadline = None;
        self.wake = true;
    }

    /// Tells the congestion controller about newly acknowledged bytes.
    pub(crate) fn cc_ack(&mut self, now: Instant, acked: usize, rtt: Option<Duration>, flight_before: usize) {
        let cwnd = self.cc.cwnd();
        // A new round trip begins once the round's data is acknowledged.
        let u = &mut self.cwnd_use;
        if self.snd_una >= u.round_end {
            u.prev_max_flight = u.max_flight;
            u.prev_limited = u.limited;
            u.max_flight = 0;
            u.limited = false;
            u.round_end = self.snd_nxt;
        }
        // Cwnd-limited (RFC 7661 §4.3): in slow start, when the window is
        // less than twice what was in flight; in congestion avoidance, when
        // the window stopped sending in this round or the last. A window
        // the receiver or the application holds back is not grown.
        let max_flight = (u.max_flight.max(u.prev_max_flight) as usize).max(flight_before);
        let cwnd_limited = if cwnd < self.cc.ssthresh() { cwnd < 2 * max_flight } else { u.limited || u.prev_limited };
        let app_limited = !cwnd_limited;
        let ack = super::congestion::Ack {
            now,
            acked,
            mss: self.mss,
            rtt,
            min_rtt: self.rtt.min_rtt(),
            srtt: self.rtt.srtt(),
            in_flight: flight_before,
            app_limited,
            seq: Some(super::congestion::AckSeq { snd_una: self.snd_una, snd_nxt: self.snd_nxt }),
        };
        self.cc.on_ack(&ack);
    }

    pub(crate) fn trace_congestion(&self, cx: &mut Cx) {
        if !cx.tracer.enabled() {
            return;
        }
        let (local, remote) = (self.local, self.remote);
        let (cwnd, ssthresh, in_flight, srtt, rto) =
            (self.cc.cwnd(), self.cc.ssthresh(), self.in_flight, self.rtt.srtt(), self.rto());
        cx.tracer.record(cx.now, || EventKind::TcpCongestion { local, remote, cwnd, ssthresh, in_flight, srtt, rto });
    }

    /// True when data has waited longer than TCP_USER_TIMEOUT for an
    /// acknowledgement (RFC 5482 §2, RFC 9293 §3.8.3).
    fn user_timeout_expired(&self, now: Instant) -> bool {
        match (self.cfg.user_timeout, self.unacked_since) {
            (Some(limit), Some(since)) => now.saturating_duration_since(since) >= limit,
            _ => false,
        }
    }

    /// Keep-alive (RFC 1122 §4.2.3.6): after `keep_idle` without a segment
    /// from the peer, probe every `keep_interval`; after `keep_count`
    /// unanswered probes, give up with ETIMEDOUT and a RST, as Linux does.
    fn on_keepalive_timeout(&mut self, cx: &mut Cx) {
        if matches!(self.state, State::SynSent | State::SynReceived) {
            // TCP_KEEPINIT: the connection was not established in time.
            if self.cfg.connect_timeout.is_some() && !self.is_passive() {
                self.trace_timer(cx, Timer::Keepalive);
                cx.stats.attempt_fails += 1;
                cx.stats.connections_timed_out += 1;
                self.fail(cx, self.soft_error.unwrap_or(Error::TimedOut));
            }
            return;
        }
        if !self.cfg.keepalive || !matches!(self.state, State::Established | State::CloseWait | State::FinWait2) {
            return;
        }
        let now = cx.now;
        let idle_for = now.saturating_duration_since(self.last_recv_at);
        if idle_for < self.cfg.keep_idle && self.keepalive_probes == 0 {
            self.keepalive_deadline = Some(self.last_recv_at + self.cfg.keep_idle);
            return;
        }
        // Data in flight is the retransmission timer's business.
        if !self.rtx.is_empty() {
            self.keepalive_deadline = Some(now + self.cfg.keep_interval);
            return;
        }
        if self.keepalive_probes >= self.cfg.keep_count {
            self.trace_timer(cx, Timer::Keepalive);
            cx.stats.connections_timed_out += 1;
            self.rst_due = Some((self.snd_nxt, Some(self.rcv_nxt)));
            self.fail(cx, Error::TimedOut);
            return;
        }
        self.trace_timer(cx, Timer::Keepalive);
        self.keepalive_probes += 1;
        self.keepalive_due = true;
        self.wake = true;
        self.keepalive_deadline = Some(now + self.cfg.keep_interval);
    }

    /// (Re)arms keep-alive from the last segment received.
    pub(crate) fn arm_keepalive(&mut self) {
        if self.cfg.keepalive && matches!(self.state, State::Established | State::CloseWait | State::FinWait2) {
            self.keepalive_deadline = Some(self.last_recv_at + self.cfg.keep_idle);
        } else if !matches!(self.state, State::SynSent | State::SynReceived) {
            // (Before ESTABLISHED the timer is TCP_KEEPINIT's.)
            self.keepalive_deadline = None;
        }
    }

    /// Sets a socket option on a live connection.
    pub fn set_keepalive(&mut self, on: bool, idle: Option<Duration>, interval: Option<Duration>, count: Option<u32>) {
        let cfg = Arc::make_mut(&mut self.cfg);
        cfg.keepalive = on;
        if let Some(i) = idle {
            cfg.keep_idle = i;
        }
        if let Some(i) = interval {
            cfg.keep_interval = i;
        }
        if let Some(c) = count {
            cfg.keep_count = c;
        }
        self.arm_keepalive();
    }

    /// IP_TOS of the connection's packets (of which TCP sends the DSCP).
    pub fn ip_tos(&self) -> u8 {
        self.ip_tos
    }
    /// IP_TTL of the connection's packets; `None` is the stack's.
    pub fn ip_ttl(&self) -> Option<u8> {
        (self.ip_ttl != 0).then_some(self.ip_ttl)
    }

    /// The settings a live connection may still change.
    pub fn config_mut(&mut self) -> &mut TcpConfig {
        Arc::make_mut(&mut self.cfg)
    }

    pub fn congestion(&self) -> &Congestion {
        &self.cc
    }
    pub fn congestion_mut(&mut self) -> &mut Congestion {
        &mut self.cc
    }

    /// SO_ERROR: takes the pending error.
    pub fn take_error(&mut self) -> Option<Error> {
        self.error.take()
    }

    /// SO_RCVBUF on a live connection: the buffer grows at once; it never
    /// shrinks below what it holds or what the window has promised, and
    /// without window scaling it stays within 64 KiB (RFC 7323 §2.2).
    pub fn set_recv_buffer(&mut self, n: usize) {
        Arc::make_mut(&mut self.cfg).recv_buffer = n;
        let cap = if self.state.is_synchronized() { self.negotiated_rx_capacity(n) } else { n.min(MAX_WINDOW) };
        let promised = self.rcv_adv.since(self.rcv_nxt) + self.rx.len();
        self.rx.set_capacity(cap.max(promised));
        self.wake = true;
    }

    /// SO_SNDBUF on a live connection.
    pub fn set_send_buffer(&mut self, n: usize) {
        Arc::make_mut(&mut self.cfg).send_buffer = n;
        self.tx.set_limit(n);
        self.wake = true;
    }

    pub fn recv_buffer_size(&self) -> usize {
        self.rx.capacity()
    }
    pub fn send_buffer_size(&self) -> usize {
        self.tx.limit()
    }

    /// Option bytes every segment after the SYNs carries: timestamps
    /// (12 with their NOPs) and the MD5 signature (20 with its NOPs).
    pub(crate) fn every_segment_options(&self) -> usize {
        (if self.ts_ok { 12 } else { 0 }) + if self.md5_signed() { crate::wire::tcp::MD5_OPTION_SPACE } else { 0 }
    }

    /// Sets (or with None removes) the RFC 2385 key for `peer` in this
    /// connection's settings: when `peer` is the connection's, its segments
    /// are signed with it from now on (or no longer), and the data per
    /// segment makes room for the option.
    pub fn set_md5_key(&mut self, peer: std::net::Ipv4Addr, key: Option<Arc<super::Md5Key>>) {
        let before = self.every_segment_options();
        let keys = &mut self.config_mut().md5_keys;
        keys.retain(|(p, _)| *p != peer);
        if let Some(k) = key {
            keys.push((peer, k));
        }
        let after = self.every_segment_options();
        self.mss = (self.mss + before).saturating_sub(after).max(1);
    }

    /// The RFC 2385 key shared with the peer: every segment is signed with
    /// it and every arriving one must be. It lives in the settings the
    /// connection shares with its socket or listener (the keys for each
    /// peer address), which costs the connection nothing when there is
    /// none: the list is empty.
    pub(crate) fn md5_key(&self) -> Option<&Arc<super::Md5Key>> {
        if self.cfg.md5_keys.is_empty() { None } else { self.cfg.md5_key(*self.remote.ip()) }
    }

    /// Whether segments of this connection are signed (RFC 2385).
    pub fn md5_signed(&self) -> bool {
        self.md5_key().is_some()
    }

    /// The headers before each segment's options and text in an IP packet:
    /// IP and TCP, and UDP's for a connection carried over UDP.
    pub fn headers(&self) -> usize {
        IP_TCP_HEADERS + if self.udp_encap != 0 { UDP_ENCAP_HEADER } else { 0 }
    }

    /// The peer's UDP port when the connection is carried over UDP
    /// (`StackConfig::tcp_over_udp_port`).
    pub fn udp_encap(&self) -> Option<u16> {
        (self.udp_encap != 0).then_some(self.udp_encap)
    }

    /// The path to the peer carries at most `mtu` bytes (another
    /// connection to it learned so): segments no larger from now on.
    pub fn clamp_path_mtu(&mut self, mtu: usize) {
        let path = mtu.saturating_sub(self.headers());
        self.path_mss = self.path_mss.min(u32::try_from(path).unwrap_or(u32::MAX));
        if self.state.is_synchronized() {
            self.clamp_mss(path);
        }
    }

    /// The same data timed out [`super::BLACK_HOLE_TIMEOUTS`] times or
    /// more: perhaps a router drops our segments as too big and its ICMP
    /// error never reaches us (RFC 4821 §7.1, RFC 8899 §4.3). Segments
    /// shrink to fit [`super::BLACK_HOLE_BASE_MTU`], or to half their
    /// size when they already do, never below `min_path_mtu`; the
    /// retransmission that follows is cut to the new size.
    fn shrink_for_black_hole(&mut self, cx: &mut Cx) {
        let opts = self.every_segment_options();
        let mtu_now = self.mss + opts + self.headers();
        let floor = self.cfg.min_path_mtu.max(crate::wire::ipv4::MIN_MTU);
        let target = if mtu_now > super::BLACK_HOLE_BASE_MTU { super::BLACK_HOLE_BASE_MTU } else { mtu_now / 2 };
        let target = target.max(floor);
        if target < mtu_now {
            crate::tcp_decision!(
                cx.now,
                self.local,
                self.remote,
                "path MTU black hole suspected after {} timeouts: segments for MTU {target} (RFC 4821 §7.1)",
                self.retries
            );
            cx.stats.mtu_black_holes += 1;
            self.clamp_path_mtu(target);
        }
    }

    /// TCP_MAXSEG on a live connection: segments no larger than `m`.
    pub fn clamp_mss(&mut self, m: usize) {
        let opts = self.every_segment_options();
        self.mss = self.mss.min(m.saturating_sub(opts)).max(1);
    }

    /// The retransmission timeout: RFC 6298's, with backoff and the
    /// configured slop.
    pub(crate) fn rto(&self) -> Duration {
        self.rtt.rto_with_slop(self.cfg.rto_slop)
    }

    /// Starts the retransmission timer unless it runs (RFC 6298 §5.1).
    pub(crate) fn arm_rtx(&mut self, now: Instant) {
        if self.rtx_deadline.is_none() {
            self.rtx_deadline = Some(now + self.rto());
        }
    }

    /// Restarts the retransmission timer (RFC 6298 §5.3).
    pub(crate) fn restart_rtx(&mut self, now: Instant) {
        self.rtx_deadline = Some(now + self.rto());
    }

    /// Our TSval: a millisecond clock plus this connection's offset.
    pub(crate) fn ts_now(&self, now: Instant) -> u32 {
        (now.as_millis() as u32).wrapping_add(self.ts_offset)
    }

    /// TIME-WAIT lasts 2 MSL from its last restart (RFC 9293 §3.10.7.4).
    pub(crate) fn start_time_wait(&mut self, cx: &mut Cx) {
        self.set_state(cx, State::TimeWait);
        self.rtx_deadline = None;
        self.persist_deadline = None;
        self.close_deadline = Some(cx.now + self.cfg.msl * 2);
    }

    /// Sequence number right after the last byte the application queued.
    /// A Fast Open connection that took the data of its SYN may answer it
    /// before the handshake ends (RFC 7413 §4.2.2): it is in SYN-RECEIVED.
    pub(crate) fn sends_before_established(&self) -> bool {
        self.state == State::SynReceived && self.fast_open() == FastOpen::TookData
    }

    /// A listener's connection in SYN-RECEIVED ends on a RST or SYN (RFC
    /// 9293: the passive open returns to LISTEN): it disappears, unless it
    /// took Fast Open data and is already in the accept queue, or the
    /// application's, which then learns of a reset (as on Linux).
    pub(crate) fn end_half_open(&mut self, cx: &mut Cx) {
        if self.fast_open() == FastOpen::TookData {
            self.fail(cx, Error::ConnectionReset);
        } else {
            self.set_state(cx, State::Closed);
        }
    }

    /// What this connection's SYN did about Fast Open (`Off` when active).
    pub(crate) fn fast_open(&self) -> FastOpen {
        match self.open {
            Opening::Passive(f) => f,
            _ => FastOpen::Off,
        }
    }

    pub(crate) fn tx_end(&self) -> SeqNumber {
        self.tx_base() + self.tx.len()
    }

    /// The sequence number of the send buffer's first byte: SND.UNA, but
    /// past our SYN while it is unacknowledged (the data a Fast Open
    /// connection sends in SYN-RECEIVED follows its SYN-ACK).
    pub(crate) fn tx_base(&self) -> SeqNumber {
        if self.snd_una == self.iss && matches!(self.state, State::SynSent | State::SynReceived) {
            self.iss + 1
        } else {
            self.snd_una
        }
    }

    /// Bytes queued but never sent.
    pub(crate) fn unsent(&self) -> usize {
        self.tx_end().since(self.snd_nxt)
    }

    /// The FlightSize a window reduction starts from (RFC 5681 §3.1
    /// equation 4, RFC 9438 §4.6): bytes sent and not cumulatively
    /// acknowledged, but never more than the congestion window. With SACK,
    /// a hole holds SND.UNA back while the sender goes on sending for what
    /// the receiver reports delivered, so SND.NXT - SND.UNA may be far
    /// larger than the window; a reduction computed from it would raise
    /// the window on a congestion event. (Linux reduces from cwnd, which
    /// RFC 9438 §4.6 allows; the minimum also keeps RFC 5681's point that
    /// a window the application does not fill is not the base.)
    pub(crate) fn flight_size(&self) -> usize {
        (self.snd_nxt - self.snd_una).min(self.cc.cwnd())
    }

    /// Flight size for the congestion window check: bytes in flight less
    /// what duplicate ACKs say has left the network.
    pub(crate) fn pipe(&self) -> usize {
        self.in_flight.saturating_sub(self.dupack_credit)
    }

    /// TCP_NODELAY: turns Nagle's algorithm off (true) or on.
    pub fn set_option_nodelay(&mut self, nodelay: bool) {
        Arc::make_mut(&mut self.cfg).nagle = !nodelay;
    }

    /// An ICMP error arrived about a segment we sent, quoting sequence
    /// number `seq` (RFC 1122 §4.2.3.9, RFC 5927). Returns the path MTU it
    /// taught, when it was a "fragmentation needed" the connection took and
    /// it lowered what the connection knew of the path, for the stack to
    /// remember for the peer's address.
    pub fn icmp_error(&mut self, cx: &mut Cx, seq: u32, reason: Option<DstUnreachable>) -> Option<usize> {
        // RFC 5927 §4.1: only for data we have outstanding; anything else
        // is stale or forged.
        let seq = SeqNumber(seq);
        let outstanding =
            if self.snd_nxt == self.snd_una { seq == self.snd_una } else { seq.in_range(self.snd_una, self.snd_nxt) };
        if !outstanding {
            cx.stats.icmp_errors_ignored += 1;
            return None;
        }
        match reason {
            Some(DstUnreachable::FragRequired { next_hop_mtu }) => {
                // RFC 1191 §6.1: use the smaller path MTU at once. A zero
                // MTU (an old router) leaves the MSS unchanged; a tiny one
                // is raised to `min_path_mtu` (552, as Linux), never below
                // the IPv4 minimum of 68 (RFC 791): a forged error that
                // quotes a sequence number in flight by chance must not
                // cut segments to a few bytes (RFC 5927 §7).
                let mtu = next_hop_mtu as usize;
                if mtu == 0 {
                    return None;
                }
                let mtu = mtu.max(self.cfg.min_path_mtu.max(crate::wire::ipv4::MIN_MTU));
                // Kept as what the path carries, so that the SYN-ACK of a
                // connection still in SYN-SENT does not raise the MSS again.
                let path = u32::try_from(mtu.saturating_sub(self.headers())).unwrap_or(u32::MAX);
                let news = path < self.path_mss;
                self.path_mss = self.path_mss.min(path);
                let opts = self.every_segment_options();
                let mss = mtu.saturating_sub(self.headers() + opts).max(8);
                if mss < self.mss {
                    self.mss = mss;
                    // The segment that was too big is resent at the new size.
                    if self.state.is_synchronized() {
                        self.mark_front_lost();
                        self.rexmit_now = true;
                    }
                    self.wake = true;
                }
                return news.then_some(mtu);
            }
            // Hard errors end a connection attempt: protocol and port
            // unreachable (codes 2 and 3, RFC 1122 §4.2.3.9), and
            // "communication administratively prohibited" (codes 9, 10 and
            // 13, RFC 1812 §5.2.7.1): a filter that refuses the connection
            // will refuse every retry, as Linux and FreeBSD also conclude.
            // In a synchronized state they are treated as soft (RFC 5927
            // §5.2; RFC 1122 §4.2.3.9 says SHOULD abort, Linux does not),
            // and in SYN-SENT too when `icmp_hard_errors` is off (a forged
            // one cannot refuse the connection then). Time exceeded is
            // soft everywhere (RFC 1122 §4.2.3.9: handled as codes 0, 1
            // and 5, on which TCP MUST NOT abort).
            Some(
                DstUnreachable::ProtoUnreachable
                | DstUnreachable::PortUnreachable
                | DstUnreachable::NetProhibited
                | DstUnreachable::HostProhibited
                | DstUnreachable::CommProhibited,
            ) if self.state == State::SynSent && self.cfg.icmp_hard_errors => {
                cx.stats.attempt_fails += 1;
                self.fail(cx, Error::ConnectionRefused);
            }
            Some(DstUnreachable::NetUnreachable) => self.soft_error = Some(Error::NetworkUnreachable),
            // Kept soft (synchronized, or `icmp_hard_errors` off), a port or
            // protocol unreachable still says the peer refused: a connect
            // that times out reports ECONNREFUSED, as on Linux and FreeBSD.
            Some(DstUnreachable::ProtoUnreachable | DstUnreachable::PortUnreachable) => {
                self.soft_error = Some(Error::ConnectionRefused)
            }
            Some(_) => self.soft_error = Some(Error::HostUnreachable),
            None => self.soft_error = Some(Error::HostUnreachable),
        }
        None
    }

    /// True when `poll_segment` may have something to emit.
    pub fn wants_to_send(&self) -> bool {
        self.rst_due.is_some()
            || (self.syn_due && matches!(self.state, State::SynSent | State::SynReceived))
            || self.lost_count > 0
            || self.unsent() > 0
            || (self.tx_closed && self.fin_seq.is_none())
            || self.probe_due
            || self.keepalive_due
            || self.tlp_send_new
            || self.ack_due == AckDue::Now
    }

    /// Time the connection entered TIME-WAIT or may be reused: for the
    /// stack's TIME-WAIT recycling of RFC 9293 §3.10.7.4 (note) and RFC 6191.
    pub fn time_wait_allows_new_syn(&self, syn_seq: u32, syn_tsval: Option<u32>) -> bool {
        if self.state != State::TimeWait {
            return false;
        }
        match (self.ts_ok, syn_tsval) {
            // RFC 6191 §2: with timestamps, a SYN whose TSval is newer.
            (true, Some(tsval)) => tsval.wrapping_sub(self.ts_recent) as i32 > 0,
            // RFC 1122 §4.2.2.13: without, a sequence number above RCV.NXT.
            _ => SeqNumber(syn_seq) > self.rcv_nxt,
        }
    }
}
