//! Segment arrival (RFC 9293 §3.10.7.3 and §3.10.7.4), step by step in the
//! RFC's order: sequence check, RST, SYN, ACK, text, FIN.

use super::Cx;
use super::connection::{AckDue, Connection, Recovery};
use super::rtt::RttEstimator;
use super::seq::SeqNumber;
use super::state::State;
use crate::socket::Error;
use crate::stats::DropReason;
use crate::trace::{Direction, EventKind};
use crate::wire::{TcpFlags, TcpRepr};

/// RFC 7323 §5.5: TS.Recent older than 24 days is invalid for PAWS.
const PAWS_IDLE: crate::time::Duration = crate::time::Duration::from_secs(24 * 24 * 3600);

/// What became of an arriving segment, for the stack's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Processed (possibly only its ACK).
    Accepted,
    /// Dropped for this reason (an ACK or RST may have been queued).
    Dropped(DropReason),
}

impl Connection {
    /// Processes a segment addressed to this connection. `payload` is the
    /// segment text. Replies are queued and go out through `poll_segment`.
    /// `ce`: the IP header said Congestion Experienced (RFC 3168).
    pub fn process(&mut self, cx: &mut Cx, seg: &TcpRepr, payload: &[u8], ce: bool) -> Disposition {
        cx.stats.segments_in += 1;
        self.info.segments_received += 1;
        // Anything from the peer answers keep-alive (RFC 1122 §4.2.3.6).
        self.last_recv_at = cx.now;
        self.last_tsecr = seg.options.timestamps.map(|t| t.1);
        self.keepalive_probes = 0;
        if self.cfg.keepalive {
            self.arm_keepalive();
        }
        let (local, remote) = (self.local, self.remote);
        cx.tracer.record(cx.now, || EventKind::TcpSegment {
            direction: Direction::Received,
            local,
            remote,
            repr: *seg,
            payload_len: payload.len(),
            retransmission: false,
        });
        let before = self.state;
        let d = match self.state {
            State::Closed | State::Listen => Disposition::Dropped(DropReason::TcpNoSocket),
            State::SynSent => self.process_syn_sent(cx, seg, payload),
            _ => self.process_synchronized(cx, seg, payload, ce),
        };
        if crate::log::wanted() {
            let dropped = if let Disposition::Dropped(r) = d { Some(r) } else { None };
            crate::log::segment_fate(cx.now, (local, remote), before, seg, payload.len(), dropped);
        }
        d
    }

    /// RFC 9293 §3.10.7.3: SYN-SENT.
    fn process_syn_sent(&mut self, cx: &mut Cx, seg: &TcpRepr, payload: &[u8]) -> Disposition {
        let flags = seg.flags;
        let ack = SeqNumber(seg.ack);
        // First, check the ACK bit.
        if flags.ack() && (ack <= self.iss || ack > self.snd_nxt) {
            if !flags.rst() {
                self.rst_due = Some((ack, None));
                self.wake = true;
            }
            return Disposition::Dropped(DropReason::TcpBadAck);
        }
        let ack_ok = flags.ack();
        // Second, the RST bit: only with an acceptable ACK (RFC 5961 §3.2
        // keeps this rule for SYN-SENT).
        if flags.rst() {
            if ack_ok {
                cx.stats.resets_in += 1;
                cx.stats.attempt_fails += 1;
                self.fail(cx, Error::ConnectionRefused);
                return Disposition::Accepted;
            }
            return Disposition::Dropped(DropReason::TcpUnacceptable);
        }
        // Fourth, the SYN bit.
        if !flags.syn() {
            return Disposition::Dropped(DropReason::TcpUnacceptable);
        }
        self.irs = SeqNumber(seg.seq);
        self.rcv_nxt = self.irs + 1;
        // Our SYN offered a window before RCV.NXT was known: anchor it now.
        self.rcv_adv = self.rcv_nxt + self.rx.free().min(0xffff);
        self.take_syn_options(seg);
        self.ecn_negotiate(cx, flags);
        if ack_ok {
            // Our SYN is acknowledged: ESTABLISHED. Data a Fast Open SYN
            // carried (RFC 7413 §4.1.3) is delivered as far as the SYN-ACK
            // acknowledges it; the rest goes again as new data.
            let syn_data_acked = ack.since(self.iss + 1);
            if syn_data_acked > 0 {
                self.tx.consume(syn_data_acked.min(self.tx.len()));
                self.info.bytes_sent += syn_data_acked as u64;
                self.info.bytes_acked += syn_data_acked as u64;
                cx.stats.bytes_out += syn_data_acked as u64;
                cx.stats.fast_open_active_acked += 1;
                self.wake = true;
            }
            if self.fast_open_client()
                && let Some(cookie) = seg.options.fast_open
                && !cookie.is_request()
            {
                let mss = seg.options.mss.unwrap_or(super::connection::DEFAULT_PEER_MSS as u16);
                cx.shared.fast_open_peers.remember(*self.remote.ip(), cookie, mss);
            }
            // Our SYN with data timed out, and what got through was a
            // plain SYN sent again: something on the path may drop SYNs
            // with data (RFC 7413 §4.1.3.1).
            if self.open == super::connection::Opening::ActiveFastOpenSentData
                && syn_data_acked == 0
                && self.retries > 0
            {
                cx.shared.fast_open_peers.syn_data_failed(*self.remote.ip(), cx.now);
            }
            self.snd_una = ack;
            self.snd_nxt = ack;
            self.on_syn_acked(cx);
            // The SYN-ACK's window is not scaled (RFC 7323 §2.2).
            self.snd_wnd = seg.window as usize;
            self.max_snd_wnd = self.snd_wnd;
            self.snd_wl1 = SeqNumber(seg.seq);
            self.snd_wl2 = ack;
            if let (true, Some((_, ecr))) = (self.ts_ok, seg.options.timestamps)
                && ecr != 0
                && let Some(sent) = self.syn_sent_at()
            {
                self.rtt_sample_ts(cx, ecr, sent);
            }
            self.set_state(cx, State::Established);
            self.ack_due = AckDue::Now;
            // Data or a FIN on the SYN-ACK is processed as in ESTABLISHED,
            // from the sixth step on.
            if !payload.is_empty() || flags.fin() {
                let seq = self.irs + 1;
                self.process_text_and_fin(cx, seq, payload, flags.fin());
            }
        } else {
            // Simultaneous open (RFC 9293 §3.5, figure 7): SYN-RECEIVED,
            // answer with SYN-ACK from our ISS.
            self.snd_wnd = seg.window as usize;
            self.max_snd_wnd = self.snd_wnd;
            self.snd_wl1 = SeqNumber(seg.seq);
            self.set_state(cx, State::SynReceived);
            self.syn_due = true;
            self.rtx_deadline = None;
            self.snd_nxt = self.iss;
            // "If there are other controls or text in the segment, queue
            // them for processing after the ESTABLISHED state has been
            // reached" (RFC 9293 §3.10.7.3). The text waits at the front
            // of the receive buffer, unacknowledged (the SYN-ACK covers the
            // SYN only) and unreadable, until our SYN is acknowledged. A
            // FIN is not kept: unacknowledged, it comes again (FreeBSD
            // does the same).
            if !payload.is_empty() {
                let room = payload.len().min(self.rx.free()).min(u16::MAX as usize);
                let written = self.rx.write(&mut cx.shared.buffers, self.rcv_nxt, self.rcv_nxt, &payload[..room]);
                self.syn_text = written.in_order as u16;
            }
        }
        Disposition::Accepted
    }

    /// Our SYN was acknowledged: RTT sample (Karn: only if never resent),
    /// retransmission state reset.
    fn on_syn_acked(&mut self, cx: &mut Cx) {
        if self.retries == 0
            && !self.ts_ok
            && let Some(sent) = self.syn_sent_at()
        {
            self.rtt.sample(cx.now - sent);
        } else if self.retries > 0 && !self.ts_ok && self.rtt.srtt().is_none() {
            // RFC 6298 §5.7: a SYN that timed out leaves an RTO of at
            // least 3 s for the data phase when no sample was taken.
            // (Linux does the same with TCP_TIMEOUT_FALLBACK.) With
            // timestamps the SYN-ACK's echo gives a sample right after.
            let fallback = self.cfg.initial_rto.max(crate::time::Duration::from_secs(3));
            self.rtt = RttEstimator::new(fallback, self.cfg.min_rto, self.cfg.max_rto);
        }
        self.retries = 0;
        self.rtt.reset_backoff();
        self.rtx_deadline = None;
        self.syn_due = false;
    }

    /// RFC 9293 §3.10.7.4: every state from SYN-RECEIVED on.
    fn process_synchronized(&mut self, cx: &mut Cx, seg: &TcpRepr, payload: &[u8], ce: bool) -> Disposition {
        // Simultaneous open (RFC 9293 §3.5, figure 8): in SYN-RECEIVED the
        // peer's SYN-ACK repeats the SYN we hold (SEQ = IRS) and
        // acknowledges ours. The SYN is old, the ACK new: process the
        // segment without its SYN, so that, as the figure shows, its ACK
        // makes us ESTABLISHED (taken literally, the sequence check would
        // find it unacceptable and only answer it; Linux strips it too).
        let without_syn;
        let seg = if self.state == State::SynReceived
            && !self.is_passive()
            && seg.flags.syn()
            && seg.flags.ack()
            && !seg.flags.rst()
            && SeqNumber(seg.seq) == self.irs
            && SeqNumber(seg.ack) == self.snd_nxt
        {
            let flags = TcpFlags::from_bits(seg.flags.bits() & !TcpFlags::SYN.bits());
            without_syn = TcpRepr { seq: seg.seq.wrapping_add(1), flags, ..*seg };
            &without_syn
        } else {
            seg
        };
        let flags = seg.flags;
        let mut seq = SeqNumber(seg.seq);
        let mut payload = payload;
        let mut fin = flags.fin();
        let seg_len = seg.segment_len(payload.len());

        // RFC 7323 §3.2: once timestamps are in use, a non-RST segment
        // without them is dropped.
        if self.ts_ok && seg.options.timestamps.is_none() && !flags.rst() {
            return Disposition::Dropped(DropReason::TcpUnacceptable);
        }

        // A retransmitted SYN in SYN-RECEIVED: answer with our SYN-ACK again.
        if self.state == State::SynReceived && flags.syn() && !flags.ack() && !flags.rst() && seq == self.irs {
            self.syn_due = true;
            self.wake = true;
            return Disposition::Accepted;
        }

        // PAWS (RFC 7323 §5.3): an old TSval means an old duplicate.
        if self.ts_ok
            && let Some((tsval, _)) = seg.options.timestamps
            && !flags.rst()
            && (tsval.wrapping_sub(self.ts_recent) as i32) < 0
        {
            if cx.now.saturating_duration_since(self.ts_recent_age) > PAWS_IDLE {
                // R1 of §5.3: the idle connection's TS.Recent is stale.
                self.ts_recent = tsval;
                self.ts_recent_age = cx.now;
            } else {
                // R1: acknowledge and drop. A copy of data received before
                // is reported with D-SACK, as any duplicate (RFC 2883 §4;
                // Linux does the same).
                let seq = SeqNumber(seg.seq);
                if !payload.is_empty() && seq + payload.len() <= self.rcv_nxt {
                    self.dsack = Some((seq, seq + payload.len()));
                }
                self.ack_due = AckDue::Now;
                self.wake = true;
                return Disposition::Dropped(DropReason::TcpPaws);
            }
        }

        // First, check the sequence number. The window is the furthest
        // edge advertised, or the free buffer space if that is larger (the
        // buffer may hold more than an unscaled window can say): a segment
        // the buffer can take is not turned away (FreeBSD draws the same
        // line; the data is trimmed to the same bound below). Two states
        // keep to the advertised window: TIME-WAIT, which receives nothing
        // more, and the half-open SYN-RECEIVED of a listener, the cheapest
        // state for an attacker to create, whose peer has proved nothing yet.
        let advertised = self.rcv_adv.since(self.rcv_nxt);
        let strict = self.state == State::TimeWait || (self.state == State::SynReceived && self.is_passive());
        let rcv_wnd = if strict { advertised } else { advertised.max(self.rx.free()) };
        let acceptable = match (seg_len, rcv_wnd) {
            (0, 0) => seq == self.rcv_nxt,
            (0, _) => seq.in_range(self.rcv_nxt, self.rcv_nxt + rcv_wnd),
            (_, 0) => false,
            (_, _) => {
                seq.in_range(self.rcv_nxt, self.rcv_nxt + rcv_wnd)
                    || (seq + seg_len - 1).in_range(self.rcv_nxt, self.rcv_nxt + rcv_wnd)
            }
        };
        // With a zero window, valid ACKs and RSTs are still processed
        // (RFC 9293 §3.10.7.4, "special allowance").
        let zero_window_allowance = !acceptable && rcv_wnd == 0 && seq == self.rcv_nxt;
        if !acceptable && !zero_window_allowance {
            // RFC 5961 §4.2: a SYN in a synchronized state draws a
            // challenge ACK "irrespective of the sequence number", and
            // §7 limits those: a blind flood of SYNs at a connection's
            // 4-tuple does not make it send one ACK for each (found by the
            // SYN injection over TUN). TIME-WAIT keeps its own rules.
            if flags.syn()
                && !flags.rst()
                && self.cfg.rfc5961_syn
                && self.state.is_synchronized()
                && self.state != State::TimeWait
            {
                self.challenge_ack(cx);
                self.wake = true;
                return Disposition::Dropped(DropReason::TcpOutOfWindow);
            }
            if !flags.rst() {
                // An old duplicate can still carry news in its ACK field
                // (see `old_segment_ack_counts`). Its text and FIN are
                // dropped; only the ACK is taken.
                if self.old_segment_ack_counts(seg) {
                    if let Some(d @ Disposition::Dropped(_)) = self.process_ack(cx, seg, payload.len()) {
                        return d;
                    }
                    if self.state == State::Closed {
                        // It acknowledged our FIN in LAST-ACK: the
                        // connection is gone and nothing answers.
                        cx.stats.duplicate_segments += u64::from(seg_len > 0);
                        return Disposition::Accepted;
                    }
                }
                self.ack_due = AckDue::Now;
                self.wake = true;
                if seg_len > 0 {
                    cx.stats.duplicate_segments += 1;
                    // RFC 2883 §4: report the duplicate in a D-SACK block.
                    if !payload.is_empty() && seq + payload.len() <= self.rcv_nxt {
                        self.dsack = Some((seq, seq + payload.len()));
                    }
                }
                // TIME-WAIT: "The only thing that can arrive in this state
                // is a retransmission of the remote FIN. Acknowledge it, and
                // restart the 2 MSL timeout." (RFC 9293 §3.10.7.4, eighth
                // step). Its sequence number was received before, so it
                // never passes the check above: restart the timer here.
                if self.state == State::TimeWait && fin && self.rx_fin == Some(seq + payload.len()) {
                    self.close_deadline = Some(cx.now + self.cfg.msl * 2);
                }
            }
            return Disposition::Dropped(DropReason::TcpOutOfWindow);
        }
        if zero_window_allowance {
            // Keep the ACK and RST; drop the text (it does not fit).
            payload = &[];
            fin = false;
            if seg_len > 0 {
                self.ack_due = AckDue::Now;
                self.wake = true;
            }
        }

        // Trim what was received before and what lies past the window.
        if seq < self.rcv_nxt {
            let mut dup = self.rcv_nxt - seq;
            if flags.syn() {
                dup -= 1;
            }
            let cut = dup.min(payload.len());
            if cut > 0 {
                // RFC 2883 §4: the duplicate part goes in a D-SACK block.
                self.dsack = Some((seq, seq + cut));
            }
            payload = &payload[cut..];
            seq += cut + flags.syn() as usize;
            if seq < self.rcv_nxt {
                // Only the FIN is left and it was received before.
                fin = false;
                seq = self.rcv_nxt;
            }
            cx.stats.duplicate_segments += 1;
        }
        let space = (self.rcv_nxt + rcv_wnd).since(seq);
        if payload.len() > space {
            payload = &payload[..space];
            fin = false;
        }

        // RFC 7323 §4.3: TS.Recent follows the segment that covers
        // Last.ACK.sent (our RCV.NXT when we last acknowledged). It is
        // taken only once the segment's ACK proved acceptable (below): a
        // forged in-window segment with a wrong ACK, a SYN or a RST that
        // is only challenged (RFC 5961) must not move it, or a TSval from
        // the future would make PAWS drop every genuine segment after it
        // (Linux made the same change in 2013).
        let ts_update = match seg.options.timestamps {
            Some((tsval, _))
                if self.ts_ok
                    && SeqNumber(seg.seq) <= self.rcv_nxt
                    && (tsval.wrapping_sub(self.ts_recent) as i32) >= 0 =>
            {
                Some(tsval)
            }
            _ => None,
        };

        // Second, the RST bit.
        if flags.rst() {
            return self.process_rst(cx, SeqNumber(seg.seq));
        }

        // Fourth, the SYN bit: in a synchronized state it is answered with
        // a challenge ACK (RFC 5961 §4.2, adopted by RFC 9293).
        if flags.syn() {
            if self.state == State::SynReceived && self.is_passive() {
                self.end_half_open(cx);
                return Disposition::Dropped(DropReason::TcpUnacceptable);
            }
            if !self.cfg.rfc5961_syn && SeqNumber(seg.seq) >= self.rcv_nxt {
                // RFC 793 §3.9: "If the SYN is in the window it is an error,
                // send a reset, any outstanding RECEIVEs and SEND should
                // receive "reset" responses, all segment queues should be
                // flushed, ... enter the CLOSED state". The sequence check
                // above let the segment through; the SYN itself must lie in
                // the window too (a SYN+FIN may straddle RCV.NXT with an old
                // SYN). The reset carries <SEQ=SND.NXT><ACK=RCV.NXT>, as an
                // ABORT's does.
                if matches!(self.state, State::Established | State::CloseWait) {
                    cx.stats.estab_resets += 1;
                }
                self.rst_due = Some((self.snd_nxt, Some(self.rcv_nxt)));
                self.rx.clear();
                self.fail(cx, Error::ConnectionReset);
                self.wake = true;
                return Disposition::Accepted;
            }
            self.challenge_ack(cx);
            self.wake = true;
            return Disposition::Dropped(DropReason::TcpUnacceptable);
        }

        self.ecn_on_receive(cx, flags, ce);

        // Fifth, the ACK field.
        if !flags.ack() {
            return Disposition::Dropped(DropReason::TcpUnacceptable);
        }
        let ack_outcome = self.process_ack(cx, seg, payload.len());
        if let Some(tsval) = ts_update
            && !matches!(ack_outcome, Some(Disposition::Dropped(_)))
        {
            self.ts_recent = tsval;
            self.ts_recent_age = cx.now;
        }
        if let Some(d) = ack_outcome {
            return d;
        }
        if self.state == State::Closed {
            return Disposition::Accepted;
        }
        if self.syn_text > 0 && self.state != State::SynReceived {
            // Our SYN is acknowledged: the text queued from the peer's SYN
            // is received now (RFC 9293 §3.10.7.3), acknowledged and
            // readable. This segment may carry some of it again.
            let n = self.syn_text as usize;
            self.rcv_nxt += n;
            self.syn_text = 0;
            cx.stats.bytes_in += n as u64;
            // Acknowledged within the delayed-ACK time (RFC 9293 §3.8.6.3),
            // or with whatever we send first: the segment that completed
            // the handshake brought no new text of its own.
            match self.cfg.delayed_ack {
                Some(delay) => {
                    self.ack_due = self.ack_due.max(AckDue::Delayed);
                    self.delack_deadline = Some(self.delack_deadline.map_or(cx.now + delay, |d| d.min(cx.now + delay)));
                }
                None => self.ack_due = AckDue::Now,
            }
            self.wake = true;
            if seq < self.rcv_nxt {
                let cut = (self.rcv_nxt - seq).min(payload.len());
                payload = &payload[cut..];
                seq += cut;
                if seq < self.rcv_nxt {
                    fin = false;
                    seq = self.rcv_nxt;
                }
            }
        }

        // Sixth (URG) is not supported beyond treating urgent data as
        // ordinary data, as SO_OOBINLINE does (RFC 6093 §4 recommends
        // against new uses of urgent data).

        // Seventh and eighth: text and FIN.
        if !payload.is_empty() || fin {
            self.process_text_and_fin(cx, seq, payload, fin);
        }
        Disposition::Accepted
    }

    /// Whether the ACK field of a segment that failed the sequence check is
    /// processed anyway. RFC 9293 §3.10.7.4 drops such a segment whole, but
    /// one that lies just behind RCV.NXT is an old duplicate whose ACK field
    /// may be new: a keep-alive or zero-window probe (sent at SND.UNA - 1,
    /// by Linux as by ustack) from a peer whose ordinary ACKs were lost, a
    /// retransmitted FIN that acknowledges our FIN after a simultaneous
    /// close, a spurious retransmission of data carrying the latest
    /// acknowledgement, or a peer that reuses its FIN's number on the ACK
    /// after it. The BSD stacks process that ACK (4.4BSD's "keep on
    /// processing for RST or ACK", Stevens vol. 2 p. 960), Linux does for
    /// segments since its last ACK (its check is against RCV.WUP), and the
    /// FreeBSD TCP test suite expects it in LAST-ACK and CLOSING.
    ///
    /// The allowance is bounded like RFC 5961 §5's for ACKs below SND.UNA:
    /// at most one receive buffer behind RCV.NXT, so a blind attacker has
    /// twice the window to aim at, not half the number space; the ACK
    /// itself must still pass RFC 5961 §5.2. Only the states whose ACK can
    /// still change something take it: not the half-open SYN-RECEIVED (the
    /// cheapest state to forge into) and not TIME-WAIT (nothing is left to
    /// acknowledge). A segment carrying RST or SYN keeps its own rules.
    ///
    /// And only an ACK that acknowledges something new counts: a pure ACK
    /// overtaken by data, or a duplicated segment, repeats an ACK number
    /// already seen, and taken again it would count as a duplicate ACK
    /// (RFC 5681 §2) toward a spurious fast retransmit.
    fn old_segment_ack_counts(&self, seg: &TcpRepr) -> bool {
        let (seq, flags) = (SeqNumber(seg.seq), seg.flags);
        let states = matches!(
            self.state,
            State::Established | State::FinWait1 | State::FinWait2 | State::CloseWait | State::Closing | State::LastAck
        );
        let behind = self.rcv_nxt.since(seq);
        let bound = self.rx.capacity().max(self.rcv_adv.since(self.rcv_nxt));
        let news = SeqNumber(seg.ack) > self.snd_una;
        states && flags.ack() && !flags.syn() && !flags.rst() && behind > 0 && behind <= bound && news
    }

    /// RFC 9293 §3.10.7.4 "second, check the RST bit", with RFC 5961 §3.2:
    /// only an exact match resets; other in-window RSTs get a challenge ACK.
    fn process_rst(&mut self, cx: &mut Cx, seq: SeqNumber) -> Disposition {
        if self.cfg.rfc5961 && seq != self.rcv_nxt {
            self.challenge_ack(cx);
            self.wake = true;
            return Disposition::Dropped(DropReason::TcpUnacceptable);
        }
        cx.stats.resets_in += 1;
        match self.state {
            State::SynReceived => {
                if self.is_passive() {
                    self.end_half_open(cx);
                } else {
                    cx.stats.attempt_fails += 1;
                    self.fail(cx, Error::ConnectionRefused);
                }
            }
            State::Established | State::FinWait1 | State::FinWait2 | State::CloseWait => {
                cx.stats.estab_resets += 1;
                self.rx.clear();
                self.fail(cx, Error::ConnectionReset);
            }
            State::TimeWait if self.cfg.rfc1337 => {
                // RFC 1337 §3 (TIME-WAIT assassination): ignore it.
                return Disposition::Dropped(DropReason::TcpUnacceptable);
            }
            State::Closing | State::LastAck => {
                // RFC 9293 §3.10.7.4 only says "enter the CLOSED state";
                // an application that still holds the socket (after a
                // shutdown) learns of the reset from SO_ERROR, as on Linux
                // and the BSDs.
                self.fail(cx, Error::ConnectionReset);
            }
            _ => self.set_state(cx, State::Closed),
        }
        Disposition::Accepted
    }

    /// Fifth step, the ACK field. Returns a disposition when processing of
    /// the segment ends here.
    fn process_ack(&mut self, cx: &mut Cx, seg: &TcpRepr, payload_len: usize) -> Option<Disposition> {
        let ack = SeqNumber(seg.ack);
        if self.state == State::SynReceived {
            if ack <= self.snd_una || ack > self.snd_nxt {
                // RFC 9293: <SEQ=SEG.ACK><CTL=RST>.
                self.rst_due = Some((ack, None));
                self.wake = true;
                return Some(Disposition::Dropped(DropReason::TcpBadAck));
            }
            // The SYN is acknowledged; data a Fast Open connection sent
            // after it (RFC 7413 §4.2.2) may be too, which the ACK
            // processing of ESTABLISHED below takes.
            self.snd_una = self.iss + 1;
            self.on_syn_acked(cx);
            if self.ts_ok
                && let Some((_, ecr)) = seg.options.timestamps
                && ecr != 0
                && let Some(sent) = self.syn_sent_at()
            {
                self.rtt_sample_ts(cx, ecr, sent);
            }
            self.snd_wnd = (seg.window as usize) << self.snd_wscale;
            self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
            self.snd_wl1 = SeqNumber(seg.seq);
            self.snd_wl2 = ack;
            self.set_state(cx, State::Established);
            if self.tx_closed {
                self.set_state(cx, State::FinWait1);
            }
            if ack == self.snd_una {
                if self.snd_nxt > self.snd_una {
                    // Early data still out: its retransmission timer runs.
                    self.restart_rtx(cx.now);
                }
                return None;
            }
        }

        // RFC 9293: an ACK for something not yet sent is answered and
        // dropped; RFC 5961 §5.2 makes that answer a challenge ACK, which
        // §7 rate-limits, so that a flood of forged ACKs (the ACK storm
        // over TUN) does not draw one ACK each.
        if ack > self.snd_nxt {
            if self.cfg.rfc5961 {
                self.challenge_ack(cx);
            } else {
                self.ack_due = AckDue::Now;
            }
            self.wake = true;
            return Some(Disposition::Dropped(DropReason::TcpBadAck));
        }
        // RFC 5961 §5.2: an ACK too far below SND.UNA is a blind injection.
        if self.cfg.rfc5961 && ack < self.snd_una - self.max_snd_wnd.max(1) {
            self.challenge_ack(cx);
            self.wake = true;
            return Some(Disposition::Dropped(DropReason::TcpBadAck));
        }

        let window = (seg.window as usize) << self.snd_wscale;
        let seg_seq = SeqNumber(seg.seq);
        let old_wnd = self.snd_wnd;
        // The peer is alive: it answered.
        self.probes_unanswered = 0;
        self.on_ack_loss_recovery(cx, seg, ack, payload_len, window == old_wnd);
        // ECE on a SYN-ACK (a simultaneous open) accepts ECN; it is no echo.
        if seg.flags.contains(crate::wire::TcpFlags::ECE) && !seg.flags.syn() {
            self.ecn_on_ece(cx);
        }

        // Window update (RFC 9293 §3.10.7.4): only from a segment newer
        // than the one that last set it.
        if self.snd_wl1 < seg_seq || (self.snd_wl1 == seg_seq && self.snd_wl2 <= ack) {
            self.snd_wnd = window;
            self.max_snd_wnd = self.max_snd_wnd.max(window);
            self.snd_wl1 = seg_seq;
            self.snd_wl2 = ack;
            if window > 0 {
                self.persist_deadline = None;
                self.persist_backoff = 0;
                self.probe_due = false;
            }
            if window > old_wnd {
                self.wake = true;
            }
        }

        // State-specific consequences of the acknowledgement.
        let fin_acked = self.fin_seq.is_some_and(|f| self.snd_una > f);
        match self.state {
            State::FinWait1 if fin_acked => {
                self.set_state(cx, State::FinWait2);
                if self.user_closed {
                    // RFC 9293 leaves FIN-WAIT-2 open-ended; an orphan
                    // waits a bounded time for the FIN (Linux tcp_fin_timeout).
                    self.close_deadline = Some(cx.now + self.cfg.fin_wait2_timeout);
                }
            }
            State::Closing if fin_acked => self.start_time_wait(cx),
            State::LastAck if fin_acked => {
                self.set_state(cx, State::Closed);
                return Some(Disposition::Accepted);
            }
            State::TimeWait => {
                // "The only thing that can arrive in this state is a
                // retransmission of the remote FIN. Acknowledge it, and
                // restart the 2 MSL timeout." (RFC 9293 §3.10.7.4).
                if seg.flags.fin() {
                    self.ack_due = AckDue::Now;
                    self.wake = true;
                    self.close_deadline = Some(cx.now + self.cfg.msl * 2);
                } else if payload_len > 0 || SeqNumber(seg.seq) != self.rcv_nxt {
                    // Anything else but a duplicate of the last ACK (data,
                    // or a sequence number other than RCV.NXT) is answered
                    // with our ACK, so a peer that lost track learns where
                    // the connection stands, as Linux and FreeBSD both do;
                    // the 2 MSL timer runs on.
                    self.ack_due = AckDue::Now;
                    self.wake = true;
                }
                return Some(Disposition::Accepted);
            }
            _ => {}
        }
        None
    }

    /// Everything an acceptable ACK means for the sending side: freeing
    /// acknowledged data, RTT samples, the SACK scoreboard, loss detection
    /// (RACK with SACK, NewReno without), recovery episodes, the congestion
    /// window and the timers.
    fn on_ack_loss_recovery(&mut self, cx: &mut Cx, seg: &TcpRepr, ack: SeqNumber, payload_len: usize, same_wnd: bool) {
        let now = cx.now;
        let prior_una = self.snd_una;
        let flight_before = self.in_flight;
        let advanced = ack > prior_una;
        let mut rtt_sample = None;
        let mut delivered = 0;
        if advanced {
            rtt_sample = self.ack_cumulative(cx, seg, ack);
            delivered += ack - prior_una;
        }
        let mut sack = super::recovery::SackOutcome::default();
        if self.sack_ok && !seg.options.sack_blocks.is_empty() {
            sack = self.apply_sack(now, seg.options.sack_blocks.as_slice(), ack);
            delivered += sack.newly_sacked;
        }
        // A duplicate ACK (RFC 5681 §2); with SACK, one that reports new
        // SACK information also counts (RFC 6675 §2).
        let dupack = !advanced
            && ack == prior_una
            && payload_len == 0
            && !seg.flags.fin()
            && !self.rtx.is_empty()
            && (same_wnd || sack.newly_sacked > 0);
        if dupack {
            self.dupacks += 1;
            self.wake = true;
        }

        self.tlp_on_ack(cx, sack.dsack);

        // The episode ends when everything sent before it is acknowledged.
        if let Recovery::Fast { recover } | Recovery::Loss { recover } = self.recovery
            && advanced
            && self.snd_una >= recover
        {
            self.exit_recovery(cx);
        }

        // A D-SACK after the episode ended may complete its undo.
        if sack.dsack && self.recovery == Recovery::Open {
            self.try_undo(cx);
        }

        // Loss detection.
        let newly_lost = if self.sack_ok {
            self.rack_detect_loss(now)
        } else {
            // An old ACK (below SND.UNA, RFC 9293 §3.10.7.4) acknowledges nothing.
            let acked = if advanced { ack - prior_una } else { 0 };
            self.newreno_detect_loss(dupack, advanced, acked)
        };
        if newly_lost > 0 && self.recovery == Recovery::Open {
            self.enter_fast_recovery(cx);
        }

        // The congestion window.
        match self.recovery {
            Recovery::Open => {
                if advanced {
                    self.dupacks = 0;
                    self.dupack_credit = 0;
                    self.cc_ack(now, ack - prior_una, rtt_sample, flight_before);
                    self.autotune_send();
                }
            }
            Recovery::Fast { .. } => {
                // Without SACK each duplicate ACK stands for a segment that
                // left the network (RFC 6937 §3, DeliveredData).
                let d = if !self.sack_ok && dupack { delivered + self.mss } else { delivered };
                self.prr_on_ack(d);
            }
            Recovery::Loss { .. } => {
                // Slow start through the retransmissions.
                if advanced {
                    self.cc_ack(now, ack - prior_una, rtt_sample, flight_before);
                }
            }
        }
        if advanced || delivered > 0 {
            self.trace_congestion(cx);
        }

        // RFC 6298 §5.2 and §5.3; the probe timer follows new ACKs.
        if advanced {
            self.unacked_since = if self.rtx.is_empty() { None } else { Some(now) };
            if self.rtx.is_empty() {
                self.rtx_deadline = None;
                self.rack.tlp_deadline = None;
            } else {
                self.restart_rtx(now);
                self.arm_tlp(now);
            }
        }
    }

    /// The cumulative part of an ACK: frees what it covers, samples the RTT
    /// (Karn's rule, RFC 6298 §3, unless timestamps say which transmission
    /// is acknowledged) and feeds RACK.
    fn ack_cumulative(&mut self, cx: &mut Cx, seg: &TcpRepr, ack: SeqNumber) -> Option<crate::time::Duration> {
        let now = cx.now;
        let mut newest_clean: Option<crate::time::Instant> = None;
        // When the oldest segment this ACK covers first went out, or
        // earlier: only its last transmission time is kept, and each
        // retransmission followed the one before within an RTO (backed off
        // as RFC 6298 §5.5 doubles it, so at most the current one).
        let oldest_sent = self.rtx.front().map(|s| match s.xmits {
            0 | 1 => s.sent_at,
            n => s.sent_at - self.rto() * u32::from(n - 1),
        });
        while let Some(&front) = self.rtx.front() {
            if front.end <= ack {
                self.rtx.pop_front();
                if front.indexed {
                    self.rack.sent.remove(&(front.sent_at, front.start.0));
                }
                if front.sacked {
                    self.sacked_bytes -= front.len();
                } else {
                    if front.lost {
                        self.lost_count -= 1;
                    } else {
                        self.in_flight -= front.len();
                    }
                    self.rack_on_delivered(now, &front);
                }
                if front.xmits == 1 {
                    newest_clean = Some(front.sent_at);
                }
            } else {
                if front.start < ack {
                    let part = ack - front.start;
                    if front.indexed {
                        self.rack.sent.remove(&(front.sent_at, front.start.0));
                        self.rack.sent.insert((front.sent_at, ack.0));
                    }
                    let f = self.rtx.front_mut().expect("front exists");
                    f.start = ack;
                    if f.sacked {
                        self.sacked_bytes -= part;
                    } else if !f.lost {
                        self.in_flight -= part;
                    }
                }
                break;
            }
        }
        if ack > self.rack.fack {
            self.rack.fack = ack;
        }
        let mut rtt_sample = None;
        if self.ts_ok {
            if let Some((_, ecr)) = seg.options.timestamps
                && ecr != 0
                && let Some(sent) = oldest_sent
            {
                rtt_sample = self.rtt_sample_ts(cx, ecr, sent);
            }
        } else if let Some(sent) = newest_clean {
            let r = now - sent;
            self.rtt.sample(r);
            rtt_sample = Some(r);
        }

        // Free the acknowledged bytes (the FIN is not in the buffer).
        let acked = ack - self.snd_una;
        let data_acked = match self.fin_seq {
            Some(f) if ack > f => f - self.snd_una,
            _ => acked,
        };
        // (Drained storage is given back later, if the connection stays
        // quiet: `release_drained_storage`.)
        self.tx.consume(data_acked.min(self.tx.len()));
        self.snd_una = ack;
        self.info.bytes_acked += data_acked as u64;
        self.retries = 0;
        self.rtt.reset_backoff();
        if data_acked > 0 {
            self.wake = true;
        }
        rtt_sample
    }

    /// NewReno loss detection for peers without SACK (RFC 5681 §3.2,
    /// RFC 6582 §3.2): the third duplicate ACK marks the first unacknowledged
    /// segment lost; in recovery, a partial ACK marks the next one.
    fn newreno_detect_loss(&mut self, dupack: bool, advanced: bool, acked: usize) -> usize {
        if dupack {
            // Each duplicate ACK means a segment left the network.
            let outstanding = self.snd_nxt - self.snd_una;
            self.dupack_credit = (self.dupack_credit + self.mss).min(outstanding.saturating_sub(self.mss));
            if self.recovery == Recovery::Open && self.dupacks == super::recovery::DUP_THRESH {
                return self.mark_front_lost() as usize;
            }
        } else if advanced && matches!(self.recovery, Recovery::Fast { .. }) {
            // A partial ACK: the next hole is lost too; resend it at once.
            self.dupack_credit = self.dupack_credit.saturating_sub(acked);
            self.mark_front_lost();
            self.rexmit_now = true;
        }
        0
    }

    /// Marks the first unacknowledged segment lost so output resends it.
    pub(crate) fn mark_front_lost(&mut self) -> bool {
        if self.rtx.is_empty() { false } else { self.mark_lost(0) }
    }

    /// The receive side's RTT estimate, for auto-tuning: the age of the
    /// TSval a data segment echoes (Linux's rcv_rtt_est).
    fn sample_rcv_rtt(&mut self, now: crate::time::Instant) {
        if let Some(ecr) = self.last_tsecr
            && ecr != 0
        {
            let ms = self.ts_now(now).wrapping_sub(ecr) as i32;
            if ms >= 0 {
                let r = crate::time::Duration::from_millis(ms.max(1) as u64);
                self.set_rcv_rtt(self.rcv_rtt().map_or(r, |old| old * 7 / 8 + r / 8));
            }
        }
    }

    /// Sends a challenge ACK (RFC 5961 §3.2, §4.2, §5.2) if the stack-wide
    /// rate limit of §7 allows it.
    fn challenge_ack(&mut self, cx: &mut Cx) {
        if cx.shared.allow_challenge_ack(cx.now) {
            cx.stats.challenge_acks += 1;
            self.ack_due = AckDue::Now;
            crate::tcp_decision!(cx.now, self.local, self.remote, "challenge ACK (RFC 5961 §3.2, §4.2, §5.2)");
        } else {
            cx.stats.challenge_acks_limited += 1;
            crate::tcp_decision!(cx.now, self.local, self.remote, "challenge ACK not sent: rate limit (RFC 5961 §7)");
        }
    }

    /// An RTT sample from an echoed timestamp (RFC 7323 §4.1), if the echo
    /// is of a segment sent at `sent` or later.
    ///
    /// The echo is the TSval of the segment that made the peer acknowledge
    /// (§4.3: the earliest unacknowledged one, or a later one), so it
    /// cannot be older than the TSval that segment carried, nor newer than
    /// our clock. Anything outside is not this ACK's round trip: a
    /// corrupted or forged echo, or a peer echoing a TS.Recent kept from
    /// before an idle spell (Linux did, after a reordered old ACK, until a
    /// 2026 fix). Taken as a sample it could make SRTT days long, and with
    /// it the pacing gap and RACK's windows (Linux bounds such samples too,
    /// and prefers the ACK's own timing). For data, `sent` is when the
    /// oldest segment acknowledged first went out, or a little earlier;
    /// for the handshake, when the first SYN did.
    fn rtt_sample_ts(&mut self, cx: &mut Cx, ecr: u32, sent: crate::time::Instant) -> Option<crate::time::Duration> {
        let now = self.ts_now(cx.now);
        let elapsed = now.wrapping_sub(ecr) as i32;
        let since_sent = now.wrapping_sub(self.ts_now(sent)) as i32;
        if elapsed < 0 || elapsed > since_sent {
            return None;
        }
        let r = crate::time::Duration::from_millis(elapsed as u64);
        self.rtt.sample(r);
        Some(r)
    }

    /// Seventh and eighth steps: segment text and FIN, for a segment
    /// already trimmed to start at or after RCV.NXT.
    fn process_text_and_fin(&mut self, cx: &mut Cx, seq: SeqNumber, payload: &[u8], fin: bool) {
        if fin {
            let fin_seq = seq + payload.len();
            if self.rx_fin.is_none() {
                self.rx_fin = Some(fin_seq);
            }
        }
        if !payload.is_empty() {
            match self.state {
                State::Established | State::FinWait1 | State::FinWait2 => {
                    if self.user_closed {
                        // New data after the application closed: reset
                        // (RFC 1122 §4.2.2.13; Linux does the same).
                        self.rst_due = Some((self.snd_nxt, Some(self.rcv_nxt)));
                        self.set_state(cx, State::Closed);
                        return;
                    }
                    self.receive_text(cx, seq, payload);
                }
                // The peer's FIN came before: text after it is ignored.
                _ => {}
            }
        }
        // The FIN counts once everything before it has arrived.
        if let Some(fin_seq) = self.rx_fin
            && fin_seq == self.rcv_nxt
            && !self.rx_closed
        {
            self.process_fin(cx);
        }
    }

    pub(crate) fn receive_text(&mut self, cx: &mut Cx, seq: SeqNumber, payload: &[u8]) {
        self.sample_rcv_rtt(cx.now);
        // Quick-ACK after idle: data after a pause longer than the RTO is
        // acknowledged at once for a while, as at the start (Linux does
        // this; the sender is restarting from a small window).
        if let Some(last) = self.last_data_at
            && cx.now.saturating_duration_since(last) > self.rto()
        {
            self.quickacks = self.quickacks.max(super::connection::QUICKACK_SEGMENTS);
        }
        self.last_data_at = Some(cx.now);
        // The stack-wide bound on out-of-order data: past it, a segment
        // that would be held out of order is dropped (and acknowledged, so
        // the sender learns where the hole is).
        if seq > self.rcv_nxt
            && cx.shared.ooo_bytes + self.rx.out_of_order_bytes().saturating_sub(self.ooo_reported()) + payload.len()
                > cx.shared.ooo_limit
        {
            cx.stats.ooo_limit_drops += 1;
            self.ack_due = AckDue::Now;
            self.wake = true;
            return;
        }
        // The stack-wide bound on buffered bytes (tcp_memory_limit): take
        // what fits and drop the rest, acknowledging what we have. Dropping
        // data inside the window is allowed (the sender retransmits it);
        // the window stops opening while the budget is spent (output.rs).
        let mut payload = payload;
        if !self.rx_shutdown {
            let room = self.memory_room(cx.shared);
            if payload.len() > room {
                cx.stats.memory_limited += 1;
                self.ack_due = AckDue::Now;
                self.wake = true;
                if room == 0 {
                    return;
                }
                payload = &payload[..room];
            }
        }
        let had_ooo = self.rx.has_out_of_order();
        // In order onto an empty buffer, with a reader waiting: what its
        // buffer takes goes there at once, read (DirectReader).
        let direct = seq == self.rcv_nxt && self.rx.is_empty() && !had_ooo && self.syn_text == 0 && !self.rx_shutdown;
        let taken = match cx.reader.as_deref_mut() {
            Some(reader) if direct => {
                let fits = payload.len().min(self.rx.free());
                reader.take(&payload[..fits]).min(fits)
            }
            _ => 0,
        };
        if taken > 0 {
            cx.stats.bytes_direct += taken as u64;
            self.autotune_recv(cx.now, taken);
        }
        let written = if self.rx_shutdown {
            // Shut down for reading: acknowledge and discard.
            if seq == self.rcv_nxt {
                crate::tcp::recv_buffer::Written {
                    in_order: payload.len(),
                    new_bytes: payload.len(),
                    ..Default::default()
                }
            } else {
                Default::default()
            }
        } else {
            let mut w = self.rx.write(&mut cx.shared.buffers, self.rcv_nxt + taken, seq + taken, &payload[taken..]);
            w.in_order += taken;
            w.new_bytes += taken;
            w
        };
        if written.range_limit {
            // Out-of-order data past the range cap: counted with the
            // other out-of-order limit (the sender will retransmit it).
            cx.stats.ooo_limit_drops += 1;
        }
        self.rcv_nxt += written.in_order;
        self.info.bytes_received += written.new_bytes as u64;
        cx.stats.bytes_in += written.new_bytes as u64;
        if written.in_order > 0 && !self.rx_shutdown {
            self.wake = true;
        }
        if written.out_of_order {
            // RFC 5681 §4.2: out-of-order data is acknowledged at once so
            // the sender sees duplicate ACKs.
            cx.stats.out_of_order_segments += 1;
            self.ack_due = AckDue::Now;
            crate::tcp_decision!(
                cx.now,
                self.local,
                self.remote,
                "out of order: held, ACK now for RCV.NXT {} (RFC 5681 §4.2, SACK RFC 2018 §4)",
                self.rcv_nxt.0
            );
        } else if had_ooo || written.new_bytes == 0 {
            // A filled hole (RFC 5681 §4.2) or a duplicate: ACK at once.
            self.ack_due = AckDue::Now;
        }
        if written.new_bytes < payload.len() && !written.dropped && !self.rx_shutdown {
            // Some of it was held already (RFC 2883 §4.1.2). A segment
            // dropped for want of room is not a duplicate and must not be
            // reported: the sender would take it as SACKed.
            self.dsack = Some((seq, seq + payload.len()));
        } else {
            self.schedule_ack(cx, payload.len());
        }
        self.wake = true;
    }

    /// The delayed-ACK policy (RFC 9293 §3.8.6.3, RFC 1122 §4.2.3.2): an
    /// ACK at least every second full-sized segment and within the timeout.
    fn schedule_ack(&mut self, cx: &mut Cx, len: usize) {
        let Some(delay) = self.cfg.delayed_ack else {
            self.ack_due = AckDue::Now;
            return;
        };
        if self.quickacks > 0 {
            self.quickacks -= 1;
            self.ack_due = AckDue::Now;
            return;
        }
        // Counted in full-sized segments: a coalesced one (a GSO packet
        // from the TUN device, up to 64 KiB) holds many, and "at least
        // every second full-sized segment" (RFC 5681 §4.2) holds for the
        // data, however it was packed. (Linux acknowledges each such
        // packet at once too.)
        if len >= self.mss {
            self.segs_since_ack = self.segs_since_ack.saturating_add(u32::try_from(len / self.mss).unwrap_or(u32::MAX));
        }
        if self.segs_since_ack >= 2 {
            self.ack_due = AckDue::Now;
            return;
        }
        if self.ack_due < AckDue::Delayed {
            self.ack_due = AckDue::Delayed;
        }
        if self.delack_deadline.is_none() {
            self.delack_deadline = Some(cx.now + delay);
        }
    }

    /// Eighth step: the FIN (RFC 9293 §3.10.7.4).
    fn process_fin(&mut self, cx: &mut Cx) {
        self.rcv_nxt += 1;
        self.rx_closed = true;
        self.ack_due = AckDue::Now;
        self.wake = true;
        match self.state {
            State::SynReceived | State::Established => self.set_state(cx, State::CloseWait),
            State::FinWait1 => {
                if self.fin_seq.is_some_and(|f| self.snd_una > f) {
                    self.start_time_wait(cx);
                } else {
                    self.set_state(cx, State::Closing);
                    self.resend_fin_with_ack(cx.now);
                }
            }
            State::FinWait2 => self.start_time_wait(cx),
            State::TimeWait => self.close_deadline = Some(cx.now + self.cfg.msl * 2),
            _ => {}
        }
    }

    /// Simultaneous close: the peer's FIN does not acknowledge ours. If ours
    /// went out at least one smoothed RTT ago, it should have reached the
    /// peer before the peer sent its FIN: it was probably lost. Then the
    /// ACK we owe the peer carries our FIN again, when the FIN is all that
    /// is outstanding: no extra segment, and the loss costs no RTO (FreeBSD
    /// does the same, without the RTT test). A FIN sent less than an RTT
    /// ago may simply have crossed the peer's, and is left alone.
    /// Retransmitting is the sender's choice (RFC 9293 §3.8.1); the peer
    /// ACKs a duplicate FIN. The retransmission timer restarts from this
    /// copy, as it does when Linux resends the head of its queue, and no
    /// tail loss probe is due for a FIN just sent again.
    fn resend_fin_with_ack(&mut self, now: crate::time::Instant) {
        let Some(srtt) = self.rtt.srtt() else { return };
        let only_fin_outstanding = self.fin_seq == Some(self.snd_una) && self.rtx.len() == 1;
        if only_fin_outstanding && now - self.rtx[0].sent_at >= srtt && self.mark_front_lost() {
            self.rexmit_now = true;
            self.rtx_deadline = None;
            self.rack.tlp_deadline = None;
        }
    }

    /// When our SYN went out, for the first RTT sample.
    fn syn_sent_at(&self) -> Option<crate::time::Instant> {
        self.syn_sent_at
    }
}
