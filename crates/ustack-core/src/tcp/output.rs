//! What a connection sends next, and the segment it writes.
//!
//! `poll_segment` is called until it returns `None`; each call writes one
//! segment. The order of precedence: a RST, the SYN or SYN-ACK, lost
//! segments, new data (and the FIN), a zero-window probe, a bare ACK.

use super::Cx;
use super::connection::{AckDue, Connection, Recovery, TxSeg};
use super::seq::SeqNumber;
use super::state::State;
use crate::trace::{Direction, EventKind};
use crate::wire::tcp::{HEADER_LEN, MAX_HEADER_LEN, MAX_SACK_BLOCKS, SackBlocks};
use crate::wire::{TcpFlags, TcpOptions, TcpRepr};

/// What goes into one segment besides its header fields.
struct Outgoing {
    seq: SeqNumber,
    flags: TcpFlags,
    /// Payload taken from the send buffer: its first sequence number and
    /// length.
    data: Option<(SeqNumber, usize)>,
    syn_options: bool,
    retransmission: bool,
}

impl Connection {
    /// Writes the next segment this connection wants to send into `out`
    /// (TCP header, options, payload, checksum) and returns its length.
    /// `out` limits the segment size; it must hold at least a header with
    /// options (60 bytes).
    pub fn poll_segment(&mut self, cx: &mut Cx, out: &mut [u8]) -> Option<usize> {
        self.ecn.ect = false;
        if let Some((seq, ack)) = self.rst_due.take() {
            return Some(self.emit_rst(cx, out, seq, ack));
        }
        match self.state {
            State::Closed | State::Listen => return None,
            State::SynSent => {
                if !self.syn_due {
                    return None;
                }
                let seg = Outgoing {
                    seq: self.iss,
                    flags: self.ecn_syn_flags(TcpFlags::SYN),
                    data: self.syn_data(cx, out.len()),
                    syn_options: true,
                    retransmission: self.retries > 0,
                };
                return Some(self.emit_syn(cx, out, seg));
            }
            State::SynReceived if self.syn_due => {
                let seg = Outgoing {
                    seq: self.iss,
                    flags: self.ecn_syn_flags(TcpFlags::SYN | TcpFlags::ACK),
                    data: None,
                    syn_options: true,
                    retransmission: self.retries > 0,
                };
                return Some(self.emit_syn(cx, out, seg));
            }
            _ => {}
        }
        if self.lost_count > 0
            && let Some(n) = self.emit_retransmission(cx, out)
        {
            return Some(n);
        }
        if let Some(n) = self.emit_new_data(cx, out) {
            return Some(n);
        }
        if self.keepalive_due {
            self.keepalive_due = false;
            // RFC 1122 §4.2.3.6: an old sequence number, no data; the peer
            // must answer with an ACK.
            let seg = Outgoing {
                seq: self.snd_una - 1,
                flags: TcpFlags::ACK,
                data: None,
                syn_options: false,
                retransmission: false,
            };
            return Some(self.emit(cx, out, seg));
        }
        if self.probe_due {
            self.probe_due = false;
            cx.stats.zero_window_probes += 1;
            // A probe as Linux sends it: an ACK carrying an old sequence
            // number, which the peer must answer with its window (RFC 9293
            // §3.8.6.1 lets the probe carry data or not).
            let seg = Outgoing {
                seq: self.snd_una - 1,
                flags: TcpFlags::ACK,
                data: None,
                syn_options: false,
                retransmission: false,
            };
            let n = self.emit(cx, out, seg);
            self.arm_persist(cx);
            return Some(n);
        }
        // Also in SYN-RECEIVED: an unacceptable segment is answered with
        // <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> in every synchronized state
        // and SYN-RECEIVED (RFC 9293 §3.10.7.4, first check).
        if self.ack_due == AckDue::Now {
            let seg = Outgoing {
                seq: self.snd_nxt,
                flags: TcpFlags::ACK,
                data: None,
                syn_options: false,
                retransmission: false,
            };
            return Some(self.emit(cx, out, seg));
        }
        None
    }

    /// False when [`Connection::poll_segment`] certainly has nothing more
    /// to send: none of the reasons it sends anything holds. The stack
    /// then does not poll again a connection that just sent its segment
    /// (in a request-response exchange, most connections send one at a
    /// time). True may still turn out to be nothing (the windows, Nagle,
    /// pacing decide): it is a hint to ask, never a reason to send.
    pub(crate) fn may_send_more(&self) -> bool {
        self.rst_due.is_some()
            || self.syn_due
            || self.lost_count > 0
            || self.unsent() > 0
            || (self.tx_closed && self.fin_seq.is_none())
            || self.keepalive_due
            || self.probe_due
            || self.ack_due == AckDue::Now
    }

    /// The data a Fast Open SYN carries (RFC 7413 §4.1.3): with a cookie
    /// the server gave before, the first of what is queued, no more than
    /// that server's MSS less the 40 bytes a SYN's options may take; never
    /// on a retransmitted SYN, which goes plain, in case something on the
    /// path drops SYNs with data or unknown options.
    fn syn_data(&self, cx: &Cx, buf_len: usize) -> Option<(SeqNumber, usize)> {
        if !self.fast_open_client() || self.retries > 0 || self.cfg.no_options {
            return None;
        }
        let peer = cx.shared.fast_open_peers.get(*self.remote.ip())?;
        // RFC 7413 §4.1.3.1: after a SYN with data timed out on the way
        // to this server, SYNs to it go without data for a while.
        if peer.syn_data_failed_at.is_some_and(|t| cx.now.saturating_duration_since(t) < super::fastopen::FALLBACK) {
            return None;
        }
        let by_mss = (peer.mss as usize).min(self.local_mss as usize).saturating_sub(MAX_HEADER_LEN - HEADER_LEN);
        let n = self.tx.len().min(by_mss).min(buf_len.saturating_sub(MAX_HEADER_LEN));
        (n > 0).then_some((self.iss + 1, n))
    }

    fn emit_syn(&mut self, cx: &mut Cx, out: &mut [u8], seg: Outgoing) -> usize {
        self.syn_due = false;
        if self.syn_sent_at.is_none() {
            self.syn_sent_at = Some(cx.now);
        }
        // A Fast Open SYN's data is in flight with it. SND.NXT never moves
        // back: a SYN-ACK may still acknowledge data sent by an earlier
        // SYN than the plain one retransmitted, and data a Fast Open
        // server sent after its SYN-ACK stays sent when that goes again.
        let data_len = seg.data.map_or(0, |(_, n)| n);
        if data_len > 0 {
            cx.stats.fast_open_active += 1;
            self.open = super::connection::Opening::ActiveFastOpenSentData;
        }
        self.snd_nxt = self.snd_nxt.max(self.iss + 1 + data_len);
        let n = self.emit(cx, out, seg);
        self.restart_rtx(cx.now);
        n
    }

    fn emit_rst(&mut self, cx: &mut Cx, out: &mut [u8], seq: SeqNumber, ack: Option<SeqNumber>) -> usize {
        cx.stats.resets_out += 1;
        let flags = if ack.is_some() { TcpFlags::RST | TcpFlags::ACK } else { TcpFlags::RST };
        let repr = TcpRepr {
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            seq: seq.0,
            ack: ack.map_or(0, |a| a.0),
            flags,
            window: 0,
            urgent: 0,
            // RFC 2385: every segment of a signed connection, RSTs too.
            options: TcpOptions { md5: self.md5_signed(), ..TcpOptions::default() },
        };
        self.write_segment(cx, out, &repr, None, false)
    }

    /// Resends the first segment marked lost, if the window allows.
    fn emit_retransmission(&mut self, cx: &mut Cx, out: &mut [u8]) -> Option<usize> {
        // RFC 6675 §5 (4.3) / RFC 6582: the first retransmission of a
        // recovery goes regardless of the window; then PRR decides in fast
        // recovery (RFC 6937), pipe < cwnd otherwise.
        if !self.rexmit_now {
            let allowed = match self.recovery {
                Recovery::Fast { .. } => self.prr_sndcnt() > 0,
                _ => self.pipe() < self.cc.cwnd(),
            };
            if !allowed {
                return None;
            }
        }
        let idx = self.rtx.iter().position(|s| s.lost)?;
        let max = self.max_payload(out.len());
        if max == 0 {
            return None;
        }
        let seg = self.rtx[idx];
        let data_len = seg.data_end() - seg.start;
        let (len, fin) = if data_len > max {
            // The segment no longer fits (a smaller MSS): split it.
            let rest = TxSeg { start: seg.start + max, ..seg };
            self.rtx[idx].end = seg.start + max;
            self.rtx[idx].fin = false;
            self.rtx.insert(idx + 1, rest);
            self.lost_count += 1;
            (max, false)
        } else {
            (data_len, seg.fin)
        };
        self.rexmit_now = false;
        let s = &mut self.rtx[idx];
        s.lost = false;
        s.xmits = s.xmits.saturating_add(1);
        s.sent_at = cx.now;
        let seg_len = s.len();
        let key = (s.sent_at, s.start.0);
        s.indexed = true;
        self.rack.sent.insert(key);
        self.lost_count -= 1;
        self.in_flight += seg_len;
        self.on_recovery_send(seg_len);
        if let Some(undo) = self.undo.as_deref_mut() {
            undo.retrans += 1;
        }
        cx.stats.retransmitted_segments += 1;
        self.info.retransmits += 1;
        self.info.bytes_retransmitted += len as u64;
        let mut flags = TcpFlags::ACK;
        if fin {
            flags |= TcpFlags::FIN;
        }
        // PSH as when the data was first sent: on the segment that ends
        // the data the application has written so far (RFC 9293 §3.9.1).
        if len > 0 && seg.start + len == self.tx_end() {
            flags |= TcpFlags::PSH;
        }
        let data = (len > 0).then_some((seg.start, len));
        let n = self.emit(cx, out, Outgoing { seq: seg.start, flags, data, syn_options: false, retransmission: true });
        self.arm_rtx(cx.now);
        Some(n)
    }

    /// Nagle's algorithm holds a small segment back while an earlier
    /// small segment is unacknowledged: Minshall's variant of RFC 9293
    /// §3.7.4 (as Linux), where the classic rule holds it while any data
    /// is. Both keep at most one small segment in flight; the variant does
    /// not make the short tail of a transfer wait for the ACK of the
    /// full-sized segments before it, which a receiver that acknowledges
    /// every second segment may delay (RFC 1122 §4.2.3.2) for an odd one:
    /// Nagle's hold and the delayed ACK would stall the tail for the whole
    /// delayed-ACK time. (The bound on `snd_nxt` keeps a value left behind
    /// by wraparound from counting.)
    fn small_segment_unacked(&self) -> bool {
        self.snd_sml > self.snd_una && self.snd_sml <= self.snd_nxt
    }

    /// Sends new data and the FIN, as the windows, Nagle's algorithm and
    /// sender-side silly window syndrome avoidance allow.
    fn emit_new_data(&mut self, cx: &mut Cx, out: &mut [u8]) -> Option<usize> {
        // (After its SYN-ACK: that is sent first.)
        let early = self.sends_before_established();
        if !early
            && !matches!(
                self.state,
                State::Established | State::CloseWait | State::FinWait1 | State::LastAck | State::Closing
            )
        {
            return None;
        }
        let unsent = self.unsent();
        let fin_pending = self.tx_closed && self.fin_seq.is_none();
        if unsent == 0 && !fin_pending {
            return None;
        }
        let wnd_room = (self.snd_una + self.snd_wnd).since(self.snd_nxt);
        let max = self.max_payload(out.len());
        // Restart after idle (RFC 5681 §4.1, RFC 7661 §4.4): after an RTO
        // without sending, the window starts again from the initial window.
        if self.rtx.is_empty()
            && let Some(last) = self.last_send_at
            && cx.now.saturating_duration_since(last) > self.rto()
        {
            self.last_send_at = Some(cx.now);
            let iw = self.initial_cwnd();
            self.cc.on_idle_restart(cx.now, iw);
        }
        let pipe = self.pipe();
        let cwnd = self.cc.cwnd();
        // The congestion window admits a segment while the pipe is below
        // it; an empty pipe always admits one. In fast recovery PRR sets the
        // budget (RFC 6937); a tail loss probe sends one segment regardless
        // (RFC 8985 §7.3).
        let cwnd_room = if self.tlp_send_new {
            max
        } else if let Recovery::Fast { .. } = self.recovery {
            self.prr_sndcnt()
        } else if pipe == 0 {
            max.max(1)
        } else {
            cwnd.saturating_sub(pipe)
        };
        let len = unsent.min(max).min(wnd_room).min(cwnd_room);
        // (Before the handshake ends the FIN waits: RFC 9293 sends it from
        // ESTABLISHED, "queue for processing after entering ESTABLISHED".)
        let fin = fin_pending && !early && len == unsent && len < wnd_room && cwnd_room > len;
        // The congestion window is what held this segment back (RFC 7661).
        if cwnd_room < unsent.min(max).min(wnd_room) {
            self.cwnd_use.limited = true;
        }

        if len == 0 && !fin {
            if wnd_room == 0 && self.rtx.is_empty() {
                self.arm_persist(cx);
            }
            return None;
        }
        // Pacing: the next segment waits for its slot, unless it is a
        // probe; up to the pacing quantum of the schedule may go at once.
        let quantum = self.cfg.pacing_quantum;
        if let Some(next) = self.pacing_next
            && !self.tlp_send_new
            && next > cx.now + quantum
        {
            self.pacing_deadline = Some(next - quantum);
            return None;
        }
        if len > 0 && !fin {
            // RFC 9293 §3.8.6.2.1 (sender SWS) and §3.7.4 (Nagle): send a
            // full segment, or everything queued when no small segment is
            // outstanding (or Nagle is off), or half the largest window
            // the peer offered, or, once the override timeout (the persist
            // timer) has fired, whatever the window allows.
            let full = len >= self.mss.min(max);
            let idle = self.snd_nxt == self.snd_una;
            let all = len == unsent && (!self.small_segment_unacked() || !self.cfg.nagle);
            let half_window = self.max_snd_wnd > 0 && len >= self.max_snd_wnd / 2;
            let override_timeout = self.probe_due && idle;
            if !(full || all || half_window || override_timeout) {
                if idle && self.rtx.is_empty() && len < unsent {
                    // Held back by a small window: the persist timer is
                    // the SWS override timeout.
                    self.arm_persist(cx);
                }
                return None;
            }
        }

        let seq = self.snd_nxt;
        let mut flags = TcpFlags::ACK;
        if len > 0 && len == unsent {
            flags |= TcpFlags::PSH;
        }
        if fin {
            flags |= TcpFlags::FIN;
            self.fin_seq = Some(seq + len);
        }
        let seg_len = len + fin as usize;
        self.snd_nxt = seq + seg_len;
        if len > 0 && len < self.mss {
            self.snd_sml = seq + len;
        }
        // A first transmission at the tail: in RACK's index implicitly.
        self.rtx.push_back(TxSeg {
            start: seq,
            end: seq + seg_len,
            fin,
            sent_at: cx.now,
            xmits: 1,
            lost: false,
            sacked: false,
            indexed: false,
        });
        self.pace(cx.now, seg_len);
        self.in_flight += seg_len;
        self.cwnd_use.max_flight = self.cwnd_use.max_flight.max(u32::try_from(self.in_flight).unwrap_or(u32::MAX));
        self.last_send_at = Some(cx.now);
        if self.unacked_since.is_none() {
            self.unacked_since = Some(cx.now);
        }
        self.on_recovery_send(seg_len);
        let probe = core::mem::take(&mut self.tlp_send_new);
        if probe {
            self.rack.tlp_end_seq = Some(seq + seg_len);
        }
        self.info.bytes_sent += len as u64;
        cx.stats.bytes_out += len as u64;
        self.persist_deadline = None;
        // New data probes the window as well as a probe would.
        self.probe_due = false;
        let data = (len > 0).then_some((seq, len));
        let n = self.emit(cx, out, Outgoing { seq, flags, data, syn_options: false, retransmission: false });
        self.arm_rtx(cx.now);
        if !probe {
            self.arm_tlp(cx.now);
        }
        Some(n)
    }

    /// Sets when the next paced segment may go: `len` bytes at
    /// cwnd/SRTT times 2 in slow start, 1.2 in congestion avoidance. A
    /// sender behind schedule by less than two segments' time keeps that
    /// credit.
    fn pace(&mut self, now: crate::time::Instant, len: usize) {
        if !self.cfg.pacing {
            return;
        }
        let Some(srtt) = self.rtt.srtt() else { return };
        let cwnd = self.cc.cwnd().max(self.mss);
        // The gap is len / (cwnd * ratio / SRTT), in integer nanoseconds
        // (the ratio in tenths; SRTT at least 1 µs): this runs for every
        // segment, and the float conversion cost more than the rest of it.
        // In 64 bits when the product fits (a segment times an SRTT under
        // about 30 years), which spares a 128-bit division per segment.
        let ratio_tenths: u64 = if cwnd < self.cc.ssthresh() { 20 } else { 12 };
        let srtt_ns = u64::try_from(srtt.as_nanos()).unwrap_or(u64::MAX).max(1_000);
        let divisor = (cwnd as u64).saturating_mul(ratio_tenths);
        let gap_ns = match (len as u64).checked_mul(srtt_ns).and_then(|p| p.checked_mul(10)) {
            Some(p) => p / divisor,
            None => (len as u128 * srtt_ns as u128 * 10 / divisor as u128).min(u64::MAX as u128) as u64,
        };
        let gap = crate::time::Duration::from_nanos(gap_ns);
        let base = self.pacing_next.filter(|&t| t > now - gap * 2).unwrap_or(now);
        self.pacing_next = Some(base + gap);
    }

    /// Counts what is sent during fast recovery against PRR's budget.
    fn on_recovery_send(&mut self, len: usize) {
        if let (Recovery::Fast { .. }, Some(prr)) = (self.recovery, self.prr.as_deref_mut()) {
            prr.out += len;
            prr.sndcnt = prr.sndcnt.saturating_sub(len);
        }
    }

    /// Starts the persist timer (RFC 9293 §3.8.6.1) with exponential backoff.
    fn arm_persist(&mut self, cx: &mut Cx) {
        if self.persist_deadline.is_some() {
            return;
        }
        let base = self.rtt.rto().max(self.cfg.min_rto);
        let factor = 1u32 << self.persist_backoff.min(16);
        let wait = base.saturating_mul(factor).min(self.cfg.max_rto);
        self.persist_deadline = Some(cx.now + wait);
    }

    /// Largest payload for a data segment that fits `buf_len` bytes of
    /// TCP segment with the options this connection sends.
    /// (0 only when not even the timestamps and a byte fit, which the
    /// stack's smallest MTU rules out.)
    fn max_payload(&self, buf_len: usize) -> usize {
        // `mss` already has the options of every segment taken off.
        let fixed = self.every_segment_options();
        let blocks = self.sack_blocks_to_send(buf_len, true);
        let opts = fixed + if blocks > 0 { 4 + 8 * blocks } else { 0 };
        let by_mss = (self.mss + fixed).saturating_sub(opts);
        by_mss.min(buf_len.saturating_sub(HEADER_LEN + opts))
    }

    /// SACK blocks a segment written into `buf_len` bytes carries: all
    /// that are due, as far as they fit (two NOPs, kind and length, then 8
    /// bytes a block) beside the timestamps and, for a data segment, at
    /// least one byte of data. Only a tiny MTU leaves fewer than wanted.
    fn sack_blocks_to_send(&self, buf_len: usize, data: bool) -> usize {
        let want = self.sack_block_count();
        if want == 0 {
            return 0;
        }
        let fixed = self.every_segment_options();
        let space = buf_len.saturating_sub(HEADER_LEN + fixed + data as usize);
        // Within the 40 bytes of option space, whatever the buffer.
        let space = space.min(40 - fixed);
        want.min(space.saturating_sub(4) / 8)
    }

    /// SACK blocks the next ACK carries: a D-SACK block first if a
    /// duplicate arrived (RFC 2883), then the most recent out-of-order
    /// ranges (RFC 2018 §4); 3 blocks fit beside timestamps, 4 without.
    fn sack_block_count(&self) -> usize {
        if !self.sack_ok {
            return 0;
        }
        let max = if self.ts_ok { 3 } else { MAX_SACK_BLOCKS };
        (self.dsack.is_some() as usize + self.rx.sack_block_count()).min(max)
    }

    /// The window to advertise, and the field value (RFC 9293 §3.8.6.2.2
    /// receiver SWS avoidance; RFC 7323 §2.4: never shrink the window).
    fn window_to_advertise(&mut self, syn: bool, memory_room: usize) -> u16 {
        let current = self.rcv_adv.since(self.rcv_nxt);
        // The stack-wide buffer budget: the window does not open past what
        // the budget has room for, but never closes below the edge already
        // promised (RFC 9293 §3.8.6.2.2, RFC 7323 §2.4).
        let free = self.rx.free().min(current.max(memory_room));
        if syn {
            let w = free.min(0xffff);
            self.rcv_adv = self.rcv_nxt + w;
            return w as u16;
        }
        // Move the right edge only by a worthwhile amount: one MSS or half
        // the buffer, whichever is smaller (RFC 9293 §3.8.6.2.2).
        let threshold = self.mss.min(self.rx.capacity() / 2).max(1);
        let desired = if free >= current + threshold || free == self.rx.capacity() { free } else { current };
        let desired = desired.min(super::connection::MAX_WINDOW);
        // The scaled field counts units of 2^shift bytes. Never promise
        // more than the buffer can hold (round down); keep the edge already
        // promised when the buffer has room for the rounding up. A retreat
        // of less than one unit remains possible when the buffer is nearly
        // full (RFC 7323 §2.4 asks senders to tolerate it); data sent up to
        // the old edge is still accepted, since acceptance uses the
        // furthest edge ever advertised.
        let unit = 1usize << self.rcv_wscale;
        let mut field = desired / unit;
        let keep = current.div_ceil(unit);
        if field < keep && keep * unit <= free {
            field = keep;
        }
        let field = field.min(0xffff);
        self.rcv_adv = self.rcv_adv.max(self.rcv_nxt + field * unit);
        field as u16
    }

    /// Builds the header for `seg` and writes the segment.
    fn emit(&mut self, cx: &mut Cx, out: &mut [u8], seg: Outgoing) -> usize {
        let syn = seg.flags.syn();
        let flags = self.ecn_segment_flags(seg.flags, seg.data.is_some() && !seg.retransmission);
        let mut options = TcpOptions::default();
        if seg.syn_options && !self.cfg.no_options {
            options.mss = Some(self.local_mss.min(0xffff) as u16);
            let active = self.state == State::SynSent;
            if self.cfg.window_scaling && (active || self.snd_wscale_offered()) {
                options.window_scale = Some(self.rcv_wscale);
            }
            options.sack_permitted = if active { self.cfg.sack } else { self.sack_ok };
            // A signed SYN offers no timestamps (see `take_syn_options`).
            let ts = if active { self.cfg.timestamps && !self.md5_signed() } else { self.ts_ok };
            if ts {
                let ecr = if active { 0 } else { self.ts_recent };
                options.timestamps = Some((self.ts_now(cx.now), ecr));
            }
            if !active && self.fast_open() == super::fastopen::FastOpen::GiveCookie {
                options.fast_open = Some(cx.shared.fast_open_key.cookie(*self.remote.ip(), *self.local.ip()));
            }
            if active && self.fast_open_client() && self.retries == 0 {
                let known = cx.shared.fast_open_peers.get(*self.remote.ip());
                options.fast_open = Some(known.map_or(crate::wire::FastOpenCookie::REQUEST, |p| p.cookie));
            }
        } else {
            if self.ts_ok {
                options.timestamps = Some((self.ts_now(cx.now), self.ts_recent));
            }
            let max = self.sack_blocks_to_send(out.len(), seg.data.is_some());
            if seg.flags.ack() && max > 0 {
                let mut blocks = SackBlocks::new();
                if let Some((l, r)) = self.dsack.take() {
                    blocks.push(l.0, r.0);
                }
                for (l, r) in self.rx.sack_block_iter(max - blocks.len()) {
                    // A FIN held beyond a hole is reported with the data it
                    // ends, or the sender would take it for lost.
                    let r = if self.rx_fin == Some(r) { r + 1 } else { r };
                    blocks.push(l.0, r.0);
                }
                options.sack_blocks = blocks;
            }
        }
        options.md5 = self.md5_signed();
        let room = self.memory_room(cx.shared);
        let window = self.window_to_advertise(syn, room);
        let ack_flag = seg.flags.ack();
        let repr = TcpRepr {
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            seq: seg.seq.0,
            ack: if ack_flag { self.rcv_nxt.0 } else { 0 },
            flags,
            window,
            urgent: 0,
            options,
        };
        if ack_flag {
            // Every segment with ACK carries our acknowledgement.
            self.ack_due = AckDue::No;
            self.delack_deadline = None;
            self.segs_since_ack = 0;
        }
        self.write_segment(cx, out, &repr, seg.data, seg.retransmission)
    }

    /// Writes header, payload and checksum; records the segment.
    fn write_segment(
        &mut self,
        cx: &mut Cx,
        out: &mut [u8],
        repr: &TcpRepr,
        data: Option<(SeqNumber, usize)>,
        retransmission: bool,
    ) -> usize {
        let hl = repr.header_len();
        let len = data.map_or(0, |(_, n)| n);
        if let Some((seq, n)) = data {
            let offset = seq - self.tx_base();
            let copied = self.tx.read_at(offset, &mut out[hl..hl + n]);
            debug_assert_eq!(copied, n, "payload must come from the send buffer");
        }
        let total = hl + len;
        crate::wire::tcp::emit_signed(
            repr,
            &mut out[..total],
            (*self.local.ip(), *self.remote.ip()),
            self.md5_key().map(|k| k.as_bytes()),
            cx.shared.fill_checksum,
        );
        cx.stats.segments_out += 1;
        self.info.segments_sent += 1;
        let (local, remote, repr_copy) = (self.local, self.remote, *repr);
        cx.tracer.record(cx.now, || EventKind::TcpSegment {
            direction: Direction::Sent,
            local,
            remote,
            repr: repr_copy,
            payload_len: len,
            retransmission,
        });
        total
    }

    /// In SYN-RECEIVED: did the peer's SYN offer window scaling?
    fn snd_wscale_offered(&self) -> bool {
        self.ws_ok
    }
}
