//! Explicit Congestion Notification for TCP (RFC 3168 §6.1).
//!
//! A router that would drop a packet to signal congestion may instead mark
//! it Congestion Experienced (CE) in the IP header, if the sender marked it
//! ECN-capable (ECT). The receiver echoes the mark with ECE on its ACKs
//! until the sender confirms with CWR that it has reduced its window; the
//! sender reduces as for a loss, at most once per window of data, and
//! retransmits nothing.
//!
//! The SYNs negotiate it: an ECN-setup SYN carries ECE and CWR, and the
//! SYN-ACK that accepts carries ECE alone (§6.1.1). [`Ecn::Passive`], the
//! default (Linux's `tcp_ecn=2`, FreeBSD's `ecn.enable=2`), accepts when the
//! peer asks; [`Ecn::On`] also asks.

use super::Cx;
use super::connection::Connection;
use super::connection::Recovery;
use super::seq::SeqNumber;
use super::state::State;
use crate::wire::TcpFlags;

/// Whether a connection uses ECN (RFC 3168).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Ecn {
    /// Never: SYNs neither ask nor accept.
    Off,
    /// Accept when the peer's SYN asks; do not ask.
    #[default]
    Passive,
    /// Ask in our SYN (and its first `TcpConfig::ecn_setup_retries`
    /// retransmissions) and accept.
    On,
}

/// Where the negotiation stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Negotiation {
    #[default]
    No,
    /// Our SYN asked for ECN; the SYN-ACK has not answered yet.
    Asked,
    /// Negotiated: new data goes out ECT(0), CE marks are echoed and ECE is
    /// answered.
    Yes,
}

/// ECN state of one connection (8 bytes: it is in every connection).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct EcnState {
    negotiation: Negotiation,
    /// Receiver: a CE mark arrived; every ACK carries ECE until a segment
    /// with CWR does (§6.1.3).
    echo: bool,
    /// Sender: the window came down for an ECE; the next new data segment
    /// carries CWR (§6.1.2).
    cwr_due: bool,
    /// Sender: ECE is not answered again until SND.UNA passes this, the
    /// SND.NXT of the last reduction: once per window of data (§6.1.2).
    recover: SeqNumber,
    /// The segment just written was new data, sent ECT(0).
    pub(crate) ect: bool,
}

impl Connection {
    /// The flags of a SYN or SYN-ACK about to go out, with ECN's added.
    pub(crate) fn ecn_syn_flags(&mut self, flags: TcpFlags) -> TcpFlags {
        if self.state == State::SynSent {
            if self.cfg.ecn == Ecn::On && !self.cfg.no_options && self.retries <= self.cfg.ecn_setup_retries {
                self.ecn.negotiation = Negotiation::Asked;
                return flags | TcpFlags::ECE | TcpFlags::CWR;
            }
        } else if self.ecn.negotiation == Negotiation::Yes {
            return flags | TcpFlags::ECE;
        }
        flags
    }

    /// Settles ECN from the peer's SYN (passive open) or SYN-ACK (active).
    pub(crate) fn ecn_negotiate(&mut self, cx: &mut Cx, syn: TcpFlags) {
        let (ece, cwr) = (syn.contains(TcpFlags::ECE), syn.contains(TcpFlags::CWR));
        let ok = if self.is_passive() || !syn.ack() {
            // An ECN-setup SYN has both bits (§6.1.1); we accept it with
            // ECE on our SYN-ACK, also in a simultaneous open, where our
            // SYN-ACK answers the peer's SYN as a listener's would
            // (FreeBSD does the same).
            self.cfg.ecn != Ecn::Off && !syn.ack() && ece && cwr
        } else {
            // The SYN-ACK accepts with ECE alone; one with both set is not
            // an ECN-setup SYN-ACK.
            self.ecn.negotiation == Negotiation::Asked && ece && !cwr
        };
        self.ecn.negotiation = if ok { Negotiation::Yes } else { Negotiation::No };
        self.ecn.recover = self.iss;
        if ok {
            cx.stats.ecn_connections += 1;
        }
    }

    /// A segment passed the sequence check: a CE mark starts the echo, a
    /// CWR ends it (a CWR that is itself marked starts it again).
    pub(crate) fn ecn_on_receive(&mut self, cx: &mut Cx, flags: TcpFlags, ce: bool) {
        if self.ecn.negotiation != Negotiation::Yes {
            return;
        }
        if flags.contains(TcpFlags::CWR) {
            self.ecn.echo = false;
        }
        if ce {
            cx.stats.ecn_ce_received += 1;
            self.ecn.echo = true;
            // Tell the sender at once rather than after a delayed ACK.
            self.ack_due = super::connection::AckDue::Now;
            self.wake = true;
        }
    }

    /// An acceptable ACK carried ECE: the network is congested. The window
    /// comes down as for a loss, once per window of data and not during a
    /// loss recovery (which has reduced it already); nothing is resent.
    pub(crate) fn ecn_on_ece(&mut self, cx: &mut Cx) {
        if self.ecn.negotiation != Negotiation::Yes
            || self.recovery != Recovery::Open
            || self.snd_una <= self.ecn.recover
        {
            return;
        }
        crate::tcp_decision!(cx.now, self.local, self.remote, "ECE: congestion window reduced (RFC 3168 §6.1.2)");
        self.reduce_window_once(cx);
        self.ecn.recover = self.snd_nxt;
        self.ecn.cwr_due = true;
        cx.stats.ecn_reductions += 1;
    }

    /// The ECN flags and IP codepoint of a segment about to go out: ECE on
    /// every ACK while echoing; new data is ECT(0) and the first after a
    /// reduction carries CWR. SYNs (their flags come from `ecn_syn_flags`),
    /// retransmissions, pure ACKs and probes are not ECN-capable (§6.1.4,
    /// §6.1.5, §6.1.6). `poll_segment` clears the codepoint before each
    /// segment.
    pub(crate) fn ecn_segment_flags(&mut self, flags: TcpFlags, new_data: bool) -> TcpFlags {
        if self.ecn.negotiation != Negotiation::Yes || flags.syn() || flags.rst() {
            return flags;
        }
        let mut flags = flags;
        if self.ecn.echo && flags.ack() {
            flags |= TcpFlags::ECE;
        }
        if new_data {
            self.ecn.ect = true;
            if self.ecn.cwr_due {
                self.ecn.cwr_due = false;
                flags |= TcpFlags::CWR;
            }
        }
        flags
    }

    /// The last segment written is to be sent ECT(0).
    pub fn sent_ect(&self) -> bool {
        self.ecn.ect
    }

    /// ECN was negotiated on this connection.
    pub fn ecn_negotiated(&self) -> bool {
        self.ecn.negotiation == Negotiation::Yes
    }
}
