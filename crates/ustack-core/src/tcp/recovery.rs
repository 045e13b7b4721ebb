//! Loss detection and recovery on the sending side.
//!
//! - The SACK scoreboard (RFC 2018, RFC 6675): each segment in flight
//!   knows whether it is SACKed or presumed lost; `in_flight` is the
//!   RFC 6675 "pipe" kept exact as marks change.
//! - RACK (RFC 8985 §6): a segment is lost once a segment sent after it has
//!   been delivered and more than an RTT plus a reordering window has
//!   passed since it was sent. A timer covers the wait.
//! - TLP (RFC 8985 §7): a probe after two RTTs of silence, so the loss of
//!   the last segments is found without waiting for the RTO.
//! - PRR (RFC 6937): during fast recovery the sending rate follows the
//!   delivery rate down to the new window, instead of stopping and
//!   bursting.
//! - D-SACK (RFC 2883, RFC 3708): reports of duplicates show spurious
//!   retransmissions; they widen RACK's reordering window (RFC 8985 §6.2.4)
//!   and undo the window reduction of a recovery that was not needed.
//!
//! Without SACK, NewReno (RFC 6582) with duplicate-ACK counting is used,
//! in `input.rs`.

use super::Cx;
use super::connection::{Connection, Recovery, TxSeg};
use super::seq::SeqNumber;
use crate::time::{Duration, Instant};
use std::collections::BTreeSet;

/// RFC 6675 DupThresh.
pub const DUP_THRESH: u32 = 3;
/// The worst-case delayed-ACK time TLP allows for (RFC 8985 §7.2, WCDelAckT).
const WC_DEL_ACK: Duration = Duration::from_millis(200);
/// Recoveries a widened reordering window persists for (RFC 8985 §6.2.4).
const REO_WND_PERSIST: u8 = 16;

/// RACK and TLP state (RFC 8985 §5).
#[derive(Clone, Debug, Default)]
pub(crate) struct Rack {
    /// Send time and end of the most recently sent segment delivered.
    pub xmit_ts: Option<Instant>,
    pub end_seq: SeqNumber,
    /// RTT of that segment, in nanoseconds (8 bytes; a `Duration` takes 16).
    pub rtt_nanos: u64,
    /// Highest sequence number SACKed or acknowledged (SND.FACK).
    pub fack: SeqNumber,
    /// Reordering has been seen on this connection.
    pub reordering_seen: bool,
    /// Multiplier of min_RTT/4 for the reordering window (RFC 8985 §6.2.4),
    /// at most 8.
    pub reo_wnd_mult: u8,
    pub reo_wnd_persist: u8,
    /// A D-SACK arrived since the window was last widened.
    pub dsack_round: bool,
    /// When the reordering timer fires.
    pub reorder_deadline: Option<Instant>,
    /// When the tail loss probe fires.
    pub tlp_deadline: Option<Instant>,
    /// End of the probe segment while a TLP episode is open (RFC 8985 §7.4).
    pub tlp_end_seq: Option<SeqNumber>,
    /// The probe was a retransmission (not new data).
    pub tlp_is_retrans: bool,
    /// Segments in flight, neither delivered nor marked lost, by last send
    /// time then start (the RFC's "time-ordered" view of the scoreboard):
    /// loss detection visits only these, so its cost is the number of
    /// holes, not the size of the window. First transmissions at the tail
    /// of the retransmission queue are in this order already and are left
    /// out (`TxSeg::indexed` false) until a mark needs them here.
    pub sent: BTreeSet<(Instant, u32)>,
}

/// PRR state (RFC 6937 §3).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Prr {
    /// Bytes delivered to the receiver since recovery began.
    pub delivered: usize,
    /// Bytes sent since recovery began.
    pub out: usize,
    /// Flight size when recovery began.
    pub recover_fs: usize,
    /// Bytes the sender may still send on the current ACK.
    pub sndcnt: usize,
}

/// What the window was before a recovery, to undo it if spurious. A
/// connection holds one (boxed) from a fast recovery until the episode can
/// no longer be undone.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Undo {
    pub cwnd: usize,
    pub ssthresh: usize,
    /// SND.UNA when the episode began: D-SACKs for data below it are
    /// about older retransmissions.
    pub marker: SeqNumber,
    /// Retransmissions of this episode not yet shown spurious by D-SACK.
    pub retrans: u32,
    /// A D-SACK reported one of this episode's retransmissions.
    pub dsacked: bool,
}

/// What SACK processing of one ACK found.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SackOutcome {
    /// Bytes newly SACKed.
    pub newly_sacked: usize,
    /// The ACK carried a D-SACK block.
    pub dsack: bool,
}

impl Connection {
    // ---- scoreboard marks, keeping `in_flight` exact --------------------------

    /// Moves the implicit tail of RACK's index into `rack.sent`, so that a
    /// segment in it can be marked. Segments sent for the first time go
    /// out in sequence order at non-decreasing times, so the tail of the
    /// retransmission queue is in the index's (time, start) order without
    /// being stored there: in-order delivery, the common case, never
    /// touches the tree. Each segment is moved at most once.
    ///
    /// The queue is a prefix of segments stored, marked or both, then that
    /// tail: marking a segment of the tail stores the whole tail first.
    fn rack_materialize(&mut self) {
        let first = self.rack_implicit_start();
        for s in self.rtx.range_mut(first..) {
            if !(s.indexed || s.sacked || s.lost) {
                s.indexed = true;
                self.rack.sent.insert((s.sent_at, s.start.0));
            }
        }
    }

    /// Index of the first segment of the implicit tail of RACK's index.
    fn rack_implicit_start(&self) -> usize {
        self.rtx.partition_point(|s| s.indexed || s.sacked || s.lost)
    }

    /// Whether segment `i` is in RACK's index only implicitly.
    fn rack_implicit(&self, i: usize) -> bool {
        let s = &self.rtx[i];
        !(s.indexed || s.sacked || s.lost)
    }

    pub(crate) fn mark_sacked(&mut self, i: usize) -> usize {
        if self.rack_implicit(i) {
            self.rack_materialize();
        }
        let s = &mut self.rtx[i];
        if s.sacked {
            return 0;
        }
        let len = s.len();
        if s.lost {
            s.lost = false;
            self.lost_count -= 1;
        } else {
            self.in_flight -= len;
        }
        s.sacked = true;
        let key = (s.sent_at, s.start.0);
        let indexed = core::mem::take(&mut s.indexed);
        self.sacked_bytes += len;
        if indexed {
            self.rack.sent.remove(&key);
        }
        len
    }

    pub(crate) fn mark_lost(&mut self, i: usize) -> bool {
        if self.rack_implicit(i) {
            self.rack_materialize();
        }
        let s = &mut self.rtx[i];
        if s.sacked || s.lost {
            return false;
        }
        s.lost = true;
        let key = (s.sent_at, s.start.0);
        let indexed = core::mem::take(&mut s.indexed);
        self.lost_count += 1;
        self.in_flight -= s.len();
        if indexed {
            self.rack.sent.remove(&key);
        }
        self.wake = true;
        true
    }

    /// Splits the segment at index `i` at `at` (strictly inside it); both
    /// halves keep its marks and times.
    fn split_seg(&mut self, i: usize, at: SeqNumber) {
        let s = self.rtx[i];
        debug_assert!(at > s.start && at < s.end);
        let tail = TxSeg { start: at, ..s };
        self.rtx[i].end = at;
        self.rtx[i].fin = false;
        self.rtx.insert(i + 1, tail);
        if s.lost && !s.sacked {
            self.lost_count += 1;
        } else if s.indexed {
            // (A segment in the implicit tail leaves both halves there.)
            self.rack.sent.insert((tail.sent_at, at.0));
        }
    }

    /// Index of the first segment whose end is after `seq`.
    fn seg_index_after(&self, seq: SeqNumber) -> usize {
        self.rtx.partition_point(|s| s.end <= seq)
    }

    // ---- SACK ------------------------------------------------------------------

    /// Applies the SACK blocks of an ACK whose cumulative part has been
    /// processed (RFC 6675 §5 "update the scoreboard"). Blocks outside
    /// SND.UNA..SND.NXT are ignored, except D-SACK blocks (RFC 2883 §4),
    /// which report a duplicate: the first block lies below the cumulative
    /// ACK or inside the second block.
    pub(crate) fn apply_sack(&mut self, now: Instant, blocks: &[(u32, u32)], ack: SeqNumber) -> SackOutcome {
        let mut out = SackOutcome::default();
        let mut sorted = [(SeqNumber(0), SeqNumber(0)); crate::wire::tcp::MAX_SACK_BLOCKS];
        let mut n = 0;
        for (k, &(l, r)) in blocks.iter().enumerate() {
            let (l, r) = (SeqNumber(l), SeqNumber(r));
            if r <= l {
                continue;
            }
            if k == 0 {
                let inside_second = blocks.get(1).is_some_and(|&(l2, r2)| l >= SeqNumber(l2) && r <= SeqNumber(r2));
                if r <= ack || inside_second {
                    out.dsack = true;
                    self.on_dsack(l, r);
                    continue;
                }
            }
            if n < sorted.len() {
                sorted[n] = (l, r);
                n += 1;
            }
        }
        // The receiver lists the most recent block first (RFC 2018 §4);
        // RACK visits newly delivered segments in ascending sequence order
        // (RFC 8985 §6.2 step 3), or a block that an earlier, lost ACK
        // reported would pass for reordering.
        let sorted = &mut sorted[..n];
        sorted.sort_by_key(|b| b.0.diff(ack));
        for &(l, r) in sorted.iter() {
            // RFC 2018 §4: only blocks about data we have outstanding.
            let l = l.max(self.snd_una);
            let r = r.min(self.snd_nxt);
            if r <= l {
                continue;
            }
            let mut i = self.seg_index_after(l);
            while i < self.rtx.len() && self.rtx[i].start < r {
                if self.rtx[i].start < l {
                    self.split_seg(i, l);
                    i += 1;
                    continue;
                }
                if self.rtx[i].end > r {
                    self.split_seg(i, r);
                }
                if !self.rtx[i].sacked {
                    let seg = self.rtx[i];
                    out.newly_sacked += self.mark_sacked(i);
                    self.rack_on_delivered(now, &seg);
                }
                i += 1;
            }
            if r > self.rack.fack {
                self.rack.fack = r;
            }
        }
        out
    }

    /// A D-SACK reported `[l, r)` received twice: a retransmission of it
    /// was spurious (RFC 3708), and the path reorders (RFC 8985 §6.2.4).
    fn on_dsack(&mut self, l: SeqNumber, r: SeqNumber) {
        self.info.dsacks += 1;
        self.rack.reordering_seen = true;
        self.rack.dsack_round = true;
        // RFC 3708 §3: each duplicate reported within the episode's data
        // is a retransmission that was not needed.
        let mss = self.mss.max(1);
        if let Some(undo) = self.undo.as_deref_mut()
            && r > undo.marker
        {
            let segments = (r - l).div_ceil(mss) as u32;
            undo.retrans = undo.retrans.saturating_sub(segments);
            undo.dsacked = true;
        }
    }

    // ---- RACK (RFC 8985 §6.2) ------------------------------------------------

    /// Step 2: a segment was delivered (cumulatively or by SACK).
    pub(crate) fn rack_on_delivered(&mut self, now: Instant, seg: &TxSeg) {
        let rtt = now.saturating_duration_since(seg.sent_at);
        // A retransmitted segment acknowledged sooner than the minimum RTT
        // was delivered by an earlier transmission: its time says nothing.
        if seg.xmits > 1 && self.rtt.min_rtt().is_some_and(|m| rtt < m) {
            return;
        }
        // Step 3: a never-retransmitted segment below the highest one
        // delivered arrived out of order.
        if seg.xmits == 1 && seg.end < self.rack.fack {
            self.rack.reordering_seen = true;
        }
        let newer = match self.rack.xmit_ts {
            None => true,
            Some(t) => seg.sent_at > t || (seg.sent_at == t && seg.end > self.rack.end_seq),
        };
        if newer {
            self.rack.xmit_ts = Some(seg.sent_at);
            self.rack.end_seq = seg.end;
            self.rack.rtt_nanos = u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX);
        }
    }

    /// Step 4: the reordering window.
    fn rack_reo_wnd(&self) -> Duration {
        if !self.rack.reordering_seen {
            let in_recovery = self.recovery != Recovery::Open;
            if in_recovery || self.sacked_segments_at_least(DUP_THRESH as usize) {
                return Duration::ZERO;
            }
        }
        let min_rtt = self.rtt.min_rtt().unwrap_or(Duration::ZERO);
        let srtt = self.rtt.srtt().unwrap_or(min_rtt);
        (min_rtt / 4 * u32::from(self.rack.reo_wnd_mult.max(1))).min(srtt)
    }

    fn sacked_segments_at_least(&self, n: usize) -> bool {
        // RFC 6675's DupThresh in bytes: (DupThresh - 1) * SMSS + 1 SACKed.
        self.sacked_bytes > (n - 1) * self.mss
    }

    /// Step 5: marks lost every segment sent before the most recently
    /// delivered one by more than RTT + reo_wnd; arms the reordering timer
    /// for those still within it. Returns how many became lost.
    pub(crate) fn rack_detect_loss(&mut self, now: Instant) -> usize {
        let Some(xmit_ts) = self.rack.xmit_ts else { return 0 };
        let reo_wnd = self.rack_reo_wnd();
        let wait = Duration::from_nanos(self.rack.rtt_nanos) + reo_wnd;
        let mut expired: Vec<(Instant, u32)> = Vec::new();
        let mut timeout: Option<Duration> = None;
        let mut consider = |sent_at: Instant, start: u32| {
            let deadline = sent_at + wait;
            if deadline <= now {
                expired.push((sent_at, start));
            } else {
                let left = deadline - now;
                timeout = Some(timeout.map_or(left, |t: Duration| t.max(left)));
            }
        };
        // A segment sent at the same instant as the reference counts only
        // if it comes before it in sequence.
        let end_seq = self.rack.end_seq;
        for (sent_at, start) in self.rack.sent.range(..=(xmit_ts, u32::MAX)).copied() {
            if sent_at == xmit_ts {
                let i = self.seg_index_after(SeqNumber(start));
                if self.rtx.get(i).is_none_or(|s| s.end >= end_seq) {
                    continue;
                }
            }
            consider(sent_at, start);
        }
        // Then the index's implicit tail, in time and in sequence order:
        // it ends at the first segment sent after the reference, or sent
        // with it but not before it in sequence. (A sender that emits a
        // whole window at one instant would otherwise look every segment
        // of that burst up again on every ACK.)
        let tail = self.rack_implicit_start();
        debug_assert!(
            self.rtx.range(tail..).all(|s| !(s.indexed || s.sacked || s.lost)),
            "a stored prefix, then the tail"
        );
        for s in self.rtx.range(tail..).take_while(|s| s.sent_at < xmit_ts || (s.sent_at == xmit_ts && s.end < end_seq))
        {
            consider(s.sent_at, s.start.0);
        }
        let mut lost = 0;
        for (_, start) in expired {
            let i = self.seg_index_after(SeqNumber(start));
            if i < self.rtx.len() && self.rtx[i].start == SeqNumber(start) && self.mark_lost(i) {
                lost += 1;
            } else {
                // A stale entry (the segment changed under it): drop it.
                self.rack.sent.retain(|&(_, s)| s != start);
            }
        }
        self.rack.reorder_deadline = timeout.map(|t| now + t);
        lost
    }

    /// At the end of a recovery: adapt the reordering window (RFC 8985
    /// §6.2.4): widen it after a round with a D-SACK, decay it otherwise.
    pub(crate) fn rack_update_reo_wnd(&mut self) {
        if self.rack.dsack_round {
            self.rack.dsack_round = false;
            self.rack.reo_wnd_mult = (self.rack.reo_wnd_mult.max(1) + 1).min(8);
            self.rack.reo_wnd_persist = REO_WND_PERSIST;
        } else if self.rack.reo_wnd_persist > 0 {
            self.rack.reo_wnd_persist -= 1;
            if self.rack.reo_wnd_persist == 0 {
                self.rack.reo_wnd_mult = 1;
            }
        }
    }

    // ---- recovery episodes --------------------------------------------------------

    /// Enters fast recovery: one window reduction per episode (RFC 6675
    /// §5 step 4, RFC 5681 §3.2), PRR from here (RFC 6937 §3).
    pub(crate) fn enter_fast_recovery(&mut self, cx: &mut Cx) {
        cx.stats.fast_retransmits += 1;
        crate::tcp_decision!(
            cx.now,
            self.local,
            self.remote,
            "loss detected ({}): fast recovery (RFC 6675 §5, RFC 6937 PRR)",
            if self.sack_ok { "RACK, RFC 8985 §6.2" } else { "three duplicate ACKs, RFC 5681 §3.2" }
        );
        let flight = self.flight_size();
        self.undo = Some(Box::new(Undo {
            cwnd: self.cc.cwnd(),
            ssthresh: self.cc.ssthresh(),
            marker: self.snd_una,
            retrans: 0,
            dsacked: false,
        }));
        self.cc.on_congestion_event(cx.now, flight, self.mss);
        self.recovery = Recovery::Fast { recover: self.snd_nxt };
        // RFC 6937 §3: RecoverFS is what the episode will see delivered;
        // bytes SACKed already never count in prr_delivered, so they are
        // left out, or the window would end the episode short of ssthresh.
        let undelivered = (self.snd_nxt - self.snd_una).saturating_sub(self.sacked_bytes);
        self.prr = Some(Box::new(Prr { delivered: 0, out: 0, recover_fs: undelivered.max(1), sndcnt: 0 }));
        // The first retransmission goes at once (RFC 6675 §5 step 4.3).
        self.rexmit_now = true;
        self.rack.tlp_deadline = None;
        self.rack.tlp_end_seq = None;
        self.trace_congestion(cx);
    }

    /// PRR (RFC 6937 §3.1): how much may be sent for `delivered` bytes this
    /// ACK reported delivered.
    pub(crate) fn prr_on_ack(&mut self, delivered: usize) {
        let (pipe, ssthresh, mss) = (self.pipe(), self.cc.ssthresh(), self.mss);
        let Some(prr) = self.prr.as_deref_mut() else { return };
        prr.delivered += delivered;
        let sndcnt = if pipe > ssthresh {
            // Proportional rate reduction.
            let target = (prr.delivered as u128 * ssthresh as u128).div_ceil(prr.recover_fs as u128) as usize;
            target.saturating_sub(prr.out)
        } else {
            // Slow-start reduction bound (PRR-SSRB).
            let limit = prr.delivered.saturating_sub(prr.out).max(delivered) + mss;
            (ssthresh - pipe).min(limit)
        };
        prr.sndcnt = sndcnt;
    }

    /// What PRR lets fast recovery send now (zero outside it).
    pub(crate) fn prr_sndcnt(&self) -> usize {
        self.prr.as_ref().map_or(0, |p| p.sndcnt)
    }

    /// Leaves recovery once everything sent before it began is
    /// acknowledged; undoes the reduction if every retransmission was
    /// shown spurious by D-SACK (RFC 3708, as Linux does).
    pub(crate) fn exit_recovery(&mut self, cx: &mut Cx) {
        let was = self.recovery;
        self.recovery = Recovery::Open;
        self.prr = None;
        self.dupacks = 0;
        self.dupack_credit = 0;
        // Fast recovery ends at ssthresh (RFC 6582 §3.2 step 3); after a
        // timeout the window is whatever slow start has reached (RFC 5681
        // §3.1), not a jump to ssthresh.
        if matches!(was, Recovery::Fast { .. }) {
            self.cc.on_recovery_end(cx.now);
            // The D-SACK for a needless retransmission often comes after
            // the episode ended (the original arrived first and completed
            // the cumulative ACK): the episode stays undoable until the next
            // congestion event.
            self.try_undo(cx);
        } else {
            self.undo = None;
        }
        self.rack_update_reo_wnd();
        self.trace_congestion(cx);
    }

    /// Restores the window from before the last fast recovery once D-SACKs
    /// have shown every retransmission of it needless (RFC 3708 §3, Linux's
    /// tcp_try_undo_dsack). Returns whether it did.
    pub(crate) fn try_undo(&mut self, cx: &mut Cx) -> bool {
        let Some(undo) = self.undo.take_if(|u| u.dsacked && u.retrans == 0) else {
            return false;
        };
        self.cc.undo(undo.cwnd, undo.ssthresh);
        self.info.undos += 1;
        crate::tcp_decision!(
            cx.now,
            self.local,
            self.remote,
            "D-SACK shows the recovery was spurious: window restored (RFC 2883 §5, RFC 3708)"
        );
        self.trace_congestion(cx);
        true
    }

    // ---- TLP (RFC 8985 §7) ---------------------------------------------------------

    /// Arms the probe timeout after a transmission in the open state.
    pub(crate) fn arm_tlp(&mut self, now: Instant) {
        self.rack.tlp_deadline = None;
        if !self.sack_ok || self.recovery != Recovery::Open || self.rack.tlp_end_seq.is_some() || self.rtx.is_empty() {
            return;
        }
        let Some(srtt) = self.rtt.srtt() else { return };
        let mut pto = srtt * 2;
        // One segment in flight: the peer may be holding a delayed ACK.
        if self.snd_nxt - self.snd_una <= self.mss {
            pto += WC_DEL_ACK;
        }
        let pto = pto.max(Duration::from_millis(10));
        // §7.2: if the RTO would fire first, the probe goes at the RTO's
        // time instead (and the RTO is rearmed after it).
        let at = self.rtx_deadline.map_or(now + pto, |rto| rto.min(now + pto));
        self.rack.tlp_deadline = Some(at);
    }

    /// The probe timer fired: send one new segment if the windows allow,
    /// otherwise retransmit the last segment (§7.3).
    pub(crate) fn on_tlp_timeout(&mut self, cx: &mut Cx) {
        self.rack.tlp_deadline = None;
        cx.stats.tail_loss_probes += 1;
        crate::tcp_decision!(cx.now, self.local, self.remote, "tail loss probe (RFC 8985 §7.3)");
        // §7.3: the RTO timer restarts with the probe.
        self.restart_rtx(cx.now);
        let wnd_room = (self.snd_una + self.snd_wnd).since(self.snd_nxt);
        if self.unsent() > 0 && wnd_room > 0 {
            self.tlp_send_new = true;
            self.rack.tlp_is_retrans = false;
        } else if let Some(i) = (0..self.rtx.len()).rev().find(|&i| !self.rtx[i].sacked) {
            // The last segment not known delivered goes again.
            self.mark_lost(i);
            self.rexmit_now = true;
            self.rack.tlp_is_retrans = true;
            self.rack.tlp_end_seq = Some(self.rtx[i].end);
        }
        self.wake = true;
    }

    /// §7.4: an ACK covers the probe. If the probe was a retransmission and
    /// no D-SACK says the original arrived too, a tail segment was lost:
    /// the window comes down once, as for any loss.
    pub(crate) fn tlp_on_ack(&mut self, cx: &mut Cx, dsack: bool) {
        let Some(end) = self.rack.tlp_end_seq else { return };
        if self.snd_una < end {
            return;
        }
        self.rack.tlp_end_seq = None;
        if self.rack.tlp_is_retrans && !dsack {
            self.reduce_window_once(cx);
        }
    }

    /// A congestion signal that needs no recovery episode (a tail loss the
    /// probe repaired, an ECN echo): the window comes down once, as for a
    /// loss, with nothing to undo later and nothing resent.
    pub(crate) fn reduce_window_once(&mut self, cx: &mut Cx) {
        let flight = self.flight_size();
        self.undo = None;
        self.cc.on_congestion_event(cx.now, flight, self.mss);
        self.cc.on_recovery_end(cx.now);
        self.trace_congestion(cx);
    }
}
