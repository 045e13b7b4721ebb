//! TCP out of a capture: every connection by its 4-tuple, the sequence
//! analysis Wireshark's expert info does (retransmissions, duplicate ACKs,
//! out-of-order segments, zero windows, ...), the states each side went
//! through as a textbook derives them from what it sent and received, and
//! the ladder diagram of each connection.
//!
//! A side whose SYN the capture lacks starts where its first segment
//! says.
//!
//! Feed [`CaptureAnalysis::add`] every frame of a capture in file order
//! (non-TCP frames too, so frame numbers match Wireshark's); then read
//! [`CaptureAnalysis::connections`].
//!
//! The marks follow Wireshark's definitions (the "TCP Analysis" flags of
//! its TCP dissector, as tshark 4.0 sets them), checked in this order for
//! each segment, with `nextseq` the highest `seq + len` (SYN and FIN
//! counting one) any segment of this side has reached, `lastack` and
//! `window` (as sent, unscaled) what this side's previous segment
//! carried, and `rev.*` the same for the other side:
//!
//! - *zero window probe*: 1 byte at `nextseq` while the peer's window is 0
//!   (it does not move `nextseq`, and ends these checks);
//! - *zero window*: the window is 0 (not on SYN, FIN or RST);
//! - *previous segment not captured*: `seq` beyond `nextseq` (not on RST);
//! - *keep-alive*: 0 or 1 byte at `nextseq - 1` (not on SYN, FIN, RST);
//! - *window update*: no data, same `seq` and ack, a new non-zero window;
//! - *window full*: the data reaches the right edge of the peer's window
//!   (scaling known from a SYN);
//! - *keep-alive ACK*, *zero window probe ACK*: a repeat of this side's
//!   previous ACK answering one (these end the checks of this side);
//! - *duplicate ACK*: no data, not SYN/FIN/RST, `seq == nextseq`, the same
//!   ack and the same non-zero window as this side's previous segment;
//!   numbered `#n` since this side's ack last changed (a window update or
//!   data repeating the ack continues the count);
//! - *ACKed unseen segment*: the ack covers data the capture never showed
//!   (once per gap, or once per run of ACKs when the gap is at the end);
//! - for a segment with data, SYN or FIN that does not advance `nextseq`
//!   (and is not a keep-alive): *fast retransmission* if the peer sent at
//!   least two duplicate ACKs (since its ack changed), the last of its
//!   segments for this `seq` and under 20 ms ago; else *spurious
//!   retransmission* if the peer had already acknowledged all of it; else
//!   *out-of-order* if it came within the connection's first RTT (SYN to
//!   first ACK; 3 ms if unknown) after the segment that set `nextseq` and
//!   does not end where that one did; else *retransmission*.
//!   Fast and spurious retransmissions are retransmissions too (they match
//!   Wireshark's `tcp.analysis.retransmission` filter).

use super::ladder::{Arrival, Ladder, Side, TcpLabeler};
use crate::tcp::State;
use crate::time::Instant;
use crate::wire::{TcpPacket, TcpRepr};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};

/// One TCP segment found in a frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpInFrame {
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub repr: TcpRepr,
    /// Payload bytes on the wire (from the IP total length, so a capture
    /// that truncated the frame still counts them).
    pub payload_len: usize,
}

/// Link types of capture files (tcpdump.org/linktypes.html) this module
/// understands.
pub mod link {
    pub const ETHERNET: u32 = 1;
    pub const RAW: u32 = 101;
    pub const IPV4: u32 = 228;
    /// DLT_RAW as some systems number it.
    pub const RAW_12: u32 = 12;
    pub const RAW_14: u32 = 14;
    pub const LINUX_SLL: u32 = 113;
    pub const LINUX_SLL2: u32 = 276;
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// The IPv4 packet inside a frame of the given link type, if it holds one.
pub fn ipv4_in_frame(link_type: u32, data: &[u8]) -> Option<&[u8]> {
    match link_type {
        link::ETHERNET => {
            let mut at = 12;
            let mut ethertype = be16(data, at)?;
            // 802.1Q / 802.1ad tags.
            while ethertype == ETHERTYPE_VLAN || ethertype == ETHERTYPE_QINQ {
                at += 4;
                ethertype = be16(data, at)?;
            }
            (ethertype == ETHERTYPE_IPV4).then(|| &data[at + 2..])
        }
        link::RAW | link::IPV4 | link::RAW_12 | link::RAW_14 => {
            (data.first().map(|b| b >> 4) == Some(4)).then_some(data)
        }
        // Linux cooked v1: 16 bytes, the protocol last.
        link::LINUX_SLL => (be16(data, 14)? == ETHERTYPE_IPV4).then(|| &data[16.min(data.len())..]),
        // Linux cooked v2: 20 bytes, the protocol first.
        link::LINUX_SLL2 => (be16(data, 0)? == ETHERTYPE_IPV4).then(|| &data[20.min(data.len())..]),
        _ => None,
    }
}

/// The TCP segment in a frame: IPv4, not a fragment, a whole TCP header.
/// The checksums are not checked (captures taken where the NIC computes
/// them hold garbage there).
pub fn tcp_in_frame(link_type: u32, data: &[u8]) -> Option<TcpInFrame> {
    let ip = ipv4_in_frame(link_type, data)?;
    if ip.len() < 20 || ip[0] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(be16(ip, 2)?);
    let frag = be16(ip, 6)?;
    if ihl < 20 || ip.len() < ihl || ip[9] != 6 || frag & 0x3fff != 0 {
        return None;
    }
    // A total length of zero: a segmentation-offload super-packet whose
    // length did not fit; take what was captured.
    let total = if total == 0 { ip.len() } else { total };
    if total < ihl {
        return None;
    }
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let tcp = &ip[ihl..total.min(ip.len())];
    // The header may be all the capture kept.
    let hl = usize::from(*tcp.get(12)? >> 4) * 4;
    let packet = TcpPacket::new_checked(&tcp[..hl.min(tcp.len())]).ok()?;
    let repr = TcpRepr::parse(&packet, None).ok()?;
    let payload_len = (total - ihl).saturating_sub(hl);
    Some(TcpInFrame {
        src: SocketAddrV4::new(src, repr.src_port),
        dst: SocketAddrV4::new(dst, repr.dst_port),
        repr,
        payload_len,
    })
}

/// What Wireshark's TCP analysis would say about a segment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Marks(u16);

impl Marks {
    pub const RETRANSMISSION: Marks = Marks(1 << 0);
    pub const FAST_RETRANSMISSION: Marks = Marks(1 << 1);
    pub const SPURIOUS_RETRANSMISSION: Marks = Marks(1 << 2);
    pub const OUT_OF_ORDER: Marks = Marks(1 << 3);
    pub const DUPLICATE_ACK: Marks = Marks(1 << 4);
    pub const ZERO_WINDOW: Marks = Marks(1 << 5);
    pub const WINDOW_FULL: Marks = Marks(1 << 6);
    pub const WINDOW_UPDATE: Marks = Marks(1 << 7);
    pub const KEEP_ALIVE: Marks = Marks(1 << 8);
    pub const KEEP_ALIVE_ACK: Marks = Marks(1 << 9);
    pub const ZERO_WINDOW_PROBE: Marks = Marks(1 << 10);
    pub const ZERO_WINDOW_PROBE_ACK: Marks = Marks(1 << 11);
    pub const PREVIOUS_SEGMENT_NOT_CAPTURED: Marks = Marks(1 << 12);
    pub const ACKED_UNSEEN_SEGMENT: Marks = Marks(1 << 13);

    pub fn contains(self, m: Marks) -> bool {
        self.0 & m.0 == m.0
    }
    fn insert(&mut self, m: Marks) {
        self.0 |= m.0;
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// Any kind of retransmission: what `tcp.analysis.retransmission`
    /// matches in Wireshark.
    pub fn is_retransmission(self) -> bool {
        self.0 & (Self::RETRANSMISSION.0 | Self::FAST_RETRANSMISSION.0 | Self::SPURIOUS_RETRANSMISSION.0) != 0
    }
}

/// A segment of a connection as the capture showed it, with its marks.
#[derive(Clone, Debug)]
pub struct Segment {
    /// Frame number in the capture, from 1 (as Wireshark counts).
    pub frame: u64,
    pub time: Instant,
    pub from: Side,
    pub repr: TcpRepr,
    pub payload_len: usize,
    /// The advertised window in bytes: scaled by the shift the sender's
    /// SYN carried, unless either SYN lacked the option; never on a SYN;
    /// as sent when the capture shows no SYN.
    pub window: u32,
    pub marks: Marks,
    /// For a duplicate ACK: its number since the last other segment.
    pub dup_ack: u32,
}

impl Segment {
    /// The notes a ladder shows after the arrow.
    pub fn notes(&self) -> Vec<String> {
        let m = self.marks;
        let mut out = vec![format!("#{}", self.frame)];
        let mut add = |flag: Marks, text: &str| {
            if m.contains(flag) {
                out.push(text.to_string());
            }
        };
        add(Marks::PREVIOUS_SEGMENT_NOT_CAPTURED, "(previous segment not captured)");
        add(Marks::RETRANSMISSION, "(retransmission)");
        add(Marks::FAST_RETRANSMISSION, "(fast retransmission)");
        add(Marks::SPURIOUS_RETRANSMISSION, "(spurious retransmission)");
        add(Marks::OUT_OF_ORDER, "(out-of-order)");
        add(Marks::ZERO_WINDOW_PROBE, "(zero window probe)");
        add(Marks::ZERO_WINDOW_PROBE_ACK, "(zero window probe ACK)");
        add(Marks::KEEP_ALIVE, "(keep-alive)");
        add(Marks::KEEP_ALIVE_ACK, "(keep-alive ACK)");
        add(Marks::WINDOW_UPDATE, "(window update)");
        add(Marks::WINDOW_FULL, "(window full)");
        add(Marks::ZERO_WINDOW, "(zero window)");
        add(Marks::ACKED_UNSEEN_SEGMENT, "(ACKed unseen segment)");
        if m.contains(Marks::DUPLICATE_ACK) {
            out.push(format!("(duplicate ACK #{})", self.dup_ack));
        }
        out
    }
}

fn seq_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}
fn seq_gt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}
fn seq_le(a: u32, b: u32) -> bool {
    !seq_gt(a, b)
}

/// A side's window scaling as the capture shows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Scale {
    /// No SYN seen: windows are taken as they are, and whether one is
    /// full cannot be told.
    #[default]
    Unknown,
    /// A SYN without the option (or a SYN-ACK answering one): no scaling
    /// in either direction (RFC 7323 §1.3).
    Off,
    /// The shift its SYN carried.
    Shift(u8),
}

/// What the analysis remembers of one direction.
#[derive(Clone, Debug, Default)]
struct Flow {
    /// Sequence number after the highest segment sent, and when.
    nextseq: Option<u32>,
    nextseq_time: Instant,
    /// Highest sequence number + 1 the peer may acknowledge.
    maxseqtobeacked: Option<u32>,
    /// The previous segment's ack (any segment: as Wireshark), and its
    /// window as sent and in bytes.
    lastack: Option<u32>,
    lastack_time: Instant,
    window: Option<u16>,
    window_bytes: Option<u32>,
    /// Duplicate ACKs since this side's ack last changed.
    dupacks: u32,
    /// An ACK of the other side's unseen data was reported while this
    /// side's ack stood still (reset as `dupacks` is).
    acked_unseen_noted: bool,
    /// Marks of this side's previous segment.
    last_marks: Marks,
    isn: Option<u32>,
    scale: Scale,
    /// Bytes of payload sent (retransmissions included).
    bytes: u64,
    frames: u64,
}

/// One TCP connection in a capture.
#[derive(Clone, Debug)]
pub struct Connection {
    /// Numbered from 1 in the order the capture first shows them.
    pub number: usize,
    /// The side that sent the first SYN on the left (or, without one, the
    /// first sender).
    pub endpoints: [SocketAddrV4; 2],
    /// Whether the capture holds the opening SYN.
    pub saw_syn: bool,
    pub segments: Vec<Segment>,
    flows: [Flow; 2],
    /// Time of the latest SYN (without ACK), and the first RTT: from it
    /// to the first ACK without SYN.
    last_syn: Option<Instant>,
    first_rtt: Option<u64>,
}

fn idx(s: Side) -> usize {
    match s {
        Side::Left => 0,
        Side::Right => 1,
    }
}

impl Connection {
    fn new(number: usize, left: SocketAddrV4, right: SocketAddrV4, saw_syn: bool) -> Self {
        Connection {
            number,
            endpoints: [left, right],
            saw_syn,
            segments: Vec::new(),
            flows: Default::default(),
            last_syn: None,
            first_rtt: None,
        }
    }

    /// Frames of this connection.
    pub fn frames(&self) -> u64 {
        self.segments.len() as u64
    }
    /// Payload bytes `side` sent, retransmissions included.
    pub fn bytes_from(&self, side: Side) -> u64 {
        self.flows[idx(side)].bytes
    }
    /// Frames `side` sent.
    pub fn frames_from(&self, side: Side) -> u64 {
        self.flows[idx(side)].frames
    }
    /// The initial sequence number of `side`, if its SYN was seen.
    pub fn isn(&self, side: Side) -> Option<u32> {
        self.flows[idx(side)].isn
    }
    pub fn retransmissions(&self) -> usize {
        self.segments.iter().filter(|s| s.marks.is_retransmission()).count()
    }
    pub fn side_of(&self, src: SocketAddrV4) -> Side {
        if src == self.endpoints[0] { Side::Left } else { Side::Right }
    }
    /// The time of the first segment.
    pub fn start(&self) -> Instant {
        self.segments.first().map_or(Instant::ZERO, |s| s.time)
    }

    /// Whether a new SYN from `from` begins another connection on the same
    /// 4-tuple rather than repeating this one's.
    fn is_new_incarnation(&self, from: Side, repr: &TcpRepr) -> bool {
        if !repr.flags.syn() || repr.flags.ack() {
            return false;
        }
        let f = &self.flows[idx(from)];
        match f.isn {
            Some(isn) => isn != repr.seq,
            // A SYN from a side that sent nothing yet, while the other
            // side's SYN is known: simultaneous open.
            None => !(f.frames == 0 && self.flows[idx(from.other())].isn.is_some()),
        }
    }

    /// Runs the analysis on the next segment and keeps it.
    fn push(&mut self, frame: u64, time: Instant, from: Side, repr: TcpRepr, payload_len: usize) {
        let (i, o) = (idx(from), idx(from.other()));
        let flags = repr.flags;
        if flags.syn() {
            self.flows[i].isn = Some(repr.seq);
            if let Some(s) = repr.options.window_scale {
                self.flows[i].scale = Scale::Shift(s.min(14));
            }
            // A SYN without the option turns scaling off both ways; so
            // does a SYN-ACK with it that answers such a SYN. A side whose
            // SYN the capture lacks is taken to scale as its peer's SYN
            // invited (as Wireshark does).
            if self.flows[i].scale == Scale::Unknown {
                self.flows[i].scale = Scale::Off;
                self.flows[o].scale = Scale::Off;
            } else if flags.ack() && self.flows[o].scale == Scale::Off {
                self.flows[i].scale = Scale::Off;
            }
            if !flags.ack() {
                self.last_syn = Some(time);
            }
        }
        // The first RTT: from the latest SYN to the first ACK after it;
        // measured again while it came out zero (a capture's clock too
        // coarse to tell them apart).
        if flags.ack()
            && !flags.syn()
            && self.first_rtt.is_none_or(|r| r == 0)
            && let Some(t) = self.last_syn
        {
            self.first_rtt = Some(time.saturating_duration_since(t).as_nanos() as u64);
        }
        // Window scaling never applies to a SYN's window (RFC 7323 §2.2).
        let window = match (self.flows[i].scale, flags.syn()) {
            (Scale::Shift(s), false) => u32::from(repr.window) << s,
            _ => u32::from(repr.window),
        };
        let (seq, ack, seglen, raw_window) = (repr.seq, repr.ack, payload_len as u32, repr.window);
        let syn_fin = u32::from(flags.syn() || flags.fin());
        let ssfr = flags.syn() || flags.fin() || flags.rst();
        let mut m = Marks::default();
        let mut dup_ack = 0;
        let (fwd, rev) = if i == 0 {
            let [a, b] = &mut self.flows;
            (a, b)
        } else {
            let [a, b] = &mut self.flows;
            (b, a)
        };
        fwd.frames += 1;
        fwd.bytes += u64::from(seglen);
        // The same sequence number and ack as this side's last segment
        // (window updates, duplicate ACKs and their kin compare the
        // window field as sent, unscaled).
        let same_seq_ack = fwd.nextseq == Some(seq) && fwd.lastack == Some(ack);
        let same_window = fwd.window == Some(raw_window);

        // What this segment says about its own direction; a zero window
        // probe, a keep-alive ACK and a zero window probe ACK end it early.
        'fwd: {
            // Zero window probe: one byte into a closed window.
            if seglen == 1 && fwd.nextseq == Some(seq) && rev.window == Some(0) {
                m.insert(Marks::ZERO_WINDOW_PROBE);
                break 'fwd;
            }
            if raw_window == 0 && !ssfr {
                m.insert(Marks::ZERO_WINDOW);
            }
            if let Some(n) = fwd.nextseq
                && seq_gt(seq, n)
                && !flags.rst()
            {
                m.insert(Marks::PREVIOUS_SEGMENT_NOT_CAPTURED);
            }
            if seglen <= 1 && fwd.nextseq.is_some_and(|n| seq == n.wrapping_sub(1)) && !ssfr {
                m.insert(Marks::KEEP_ALIVE);
            }
            if seglen == 0 && raw_window != 0 && !same_window && same_seq_ack && !ssfr {
                m.insert(Marks::WINDOW_UPDATE);
            }
            // Window full: the data reaches the right edge of the peer's
            // window (a closed one too), when its scaling is known.
            if seglen > 0
                && rev.scale != Scale::Unknown
                && let (Some(w), Some(a)) = (rev.window_bytes, rev.lastack)
                && seq.wrapping_add(seglen) == a.wrapping_add(w)
                && !ssfr
            {
                m.insert(Marks::WINDOW_FULL);
            }
            let repeats = seglen == 0 && same_window && same_seq_ack && !ssfr;
            if repeats && raw_window != 0 && rev.last_marks.contains(Marks::KEEP_ALIVE) {
                m.insert(Marks::KEEP_ALIVE_ACK);
                break 'fwd;
            }
            if repeats && raw_window == 0 && rev.last_marks.contains(Marks::ZERO_WINDOW_PROBE) {
                m.insert(Marks::ZERO_WINDOW_PROBE_ACK);
                break 'fwd;
            }
            if repeats && raw_window != 0 {
                fwd.dupacks += 1;
                fwd.acked_unseen_noted = false;
                dup_ack = fwd.dupacks;
                m.insert(Marks::DUPLICATE_ACK);
            }
        }
        // Only a new ack number ends a run of duplicate ACKs: a window
        // update or a data segment repeating the ack does not (as
        // Wireshark counts them).
        if fwd.lastack != Some(ack) {
            fwd.dupacks = 0;
            fwd.acked_unseen_noted = false;
        }
        // ACKed unseen segment: the ack covers more than the capture
        // showed of the other direction (as far as it was contiguous).
        if flags.ack()
            && let Some(max) = rev.maxseqtobeacked
            && seq_gt(ack, max)
        {
            if rev.nextseq.is_some_and(|n| seq_lt(max, n)) {
                // The other side sent more after the gap: the limit
                // catches up with it, so the gap is reported once.
                rev.maxseqtobeacked = rev.nextseq;
                m.insert(Marks::ACKED_UNSEEN_SEGMENT);
            } else {
                // It sent nothing more (the ack covers what the capture
                // never showed at its end): reported once per run of the
                // other side's ACKs, until its own ack changes or it
                // repeats an ACK.
                if rev.dupacks == 0 && !rev.acked_unseen_noted {
                    m.insert(Marks::ACKED_UNSEEN_SEGMENT);
                }
                rev.dupacks = 0;
                rev.acked_unseen_noted = true;
            }
        }
        // Retransmission, fast retransmission, spurious retransmission,
        // out-of-order: a segment with data, SYN or FIN that does not
        // advance `nextseq` (a keep-alive is none of them).
        if (seglen > 0 || syn_fin == 1) && !m.contains(Marks::KEEP_ALIVE) {
            let mut not_advanced = fwd.nextseq.is_some_and(|n| seq_lt(seq, n));
            // Data right after a zero window probe's byte.
            if seglen > 1 && fwd.nextseq.is_some_and(|n| n.wrapping_sub(1) == seq) {
                not_advanced = false;
            }
            let since_dupack = time.saturating_duration_since(rev.lastack_time).as_nanos() as u64;
            // An ack of zero (a SYN's) acknowledges nothing.
            let peer_acked = rev.lastack.filter(|&a| a != 0);
            if not_advanced && rev.dupacks >= 2 && rev.lastack == Some(seq) && since_dupack < 20_000_000 {
                m.insert(Marks::FAST_RETRANSMISSION);
            } else if seglen > 0 && peer_acked.is_some_and(|a| seq_le(seq.wrapping_add(seglen), a)) {
                m.insert(Marks::SPURIOUS_RETRANSMISSION);
            } else {
                let since_highest = time.saturating_duration_since(fwd.nextseq_time).as_nanos() as u64;
                let threshold = self.first_rtt.filter(|&r| r != 0).unwrap_or(3_000_000);
                // A frame stamped before the highest segment (a capture
                // whose timestamps went backwards, as tcpdump's can on a
                // busy machine) is not out of order for tshark, whose time
                // difference is then negative: a retransmission, as there.
                let clock_backwards = time < fwd.nextseq_time;
                // SYN and FIN count in where a segment ends.
                let end = seq.wrapping_add(seglen).wrapping_add(syn_fin);
                if not_advanced && !clock_backwards && since_highest < threshold && fwd.nextseq != Some(end) {
                    m.insert(Marks::OUT_OF_ORDER);
                } else if not_advanced {
                    m.insert(Marks::RETRANSMISSION);
                }
            }
        }
        // The highest sequence number sent so far: any segment moves it,
        // a pure ACK too (one beyond it after a gap, say), but not a zero
        // window probe's byte.
        if !m.contains(Marks::ZERO_WINDOW_PROBE) {
            let end = seq.wrapping_add(seglen).wrapping_add(syn_fin);
            if fwd.nextseq.is_none_or(|n| seq_gt(end, n)) {
                fwd.nextseq = Some(end);
                fwd.nextseq_time = time;
            }
            // What the peer may acknowledge grows only with a segment
            // that starts where it ends (after a gap, an ACK covering the
            // gap covers unseen data; a retransmission from before it
            // does not move it).
            if fwd.maxseqtobeacked.is_none_or(|n| n == seq) {
                fwd.maxseqtobeacked = fwd.nextseq;
            }
        }
        fwd.window = Some(raw_window);
        fwd.window_bytes = Some(window);
        fwd.lastack = Some(ack);
        fwd.lastack_time = time;
        fwd.last_marks = m;
        self.segments.push(Segment { frame, time, from, repr, payload_len, window, marks: m, dup_ack });
    }

    /// The states each side went through, inferred from the segments:
    /// `(index of the segment, side, state)`, where a state entered by
    /// sending comes before its segment and one entered by receiving
    /// after it. Without the opening SYN both sides start ESTABLISHED.
    pub fn states(&self) -> Vec<StateChange> {
        let mut sm = StateMachine::default();
        let mut out = Vec::new();
        for (k, s) in self.segments.iter().enumerate() {
            sm.step(k, s, self.saw_syn && k == 0, &mut out);
        }
        out
    }

    /// The ladder diagram, times counted from `t0` (the capture's first
    /// frame), with the marks and each frame's number as notes.
    pub fn ladder(&self, t0: Instant) -> Ladder {
        let [l, r] = self.endpoints;
        let mut ladder = if self.saw_syn {
            Ladder::new(format!("client {l}"), format!("server {r}"))
        } else {
            Ladder::new(l.to_string(), r.to_string())
        };
        let rel = |t: Instant| Instant::from_nanos(t.saturating_duration_since(t0).as_nanos() as u64);
        let states = self.states();
        let mut next_state = states.iter().peekable();
        let mut labeler = TcpLabeler::new();
        for (k, s) in self.segments.iter().enumerate() {
            while let Some(c) = next_state.next_if(|c| c.segment == k && c.before) {
                ladder.state(rel(s.time), c.side, c.state);
            }
            let label = labeler.label(s.from, &s.repr, s.payload_len).label;
            ladder.frame(rel(s.time), s.from, label, Arrival::Unknown, s.notes());
            while let Some(c) = next_state.next_if(|c| c.segment == k) {
                ladder.state(rel(s.time), c.side, c.state);
            }
        }
        ladder
    }

    /// Each side's last inferred state.
    pub fn final_states(&self) -> [Option<State>; 2] {
        let mut last = [None, None];
        for c in self.states() {
            last[idx(c.side)] = Some(c.state);
        }
        last
    }
}

/// A state a side entered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateChange {
    /// The segment that caused it.
    pub segment: usize,
    /// Entered by sending that segment (shown before it) rather than by
    /// receiving it.
    pub before: bool,
    pub side: Side,
    pub state: State,
}

/// RFC 9293's state diagram driven by the segments each side sent and
/// received, as seen at one point of the path.
#[derive(Default)]
struct StateMachine {
    state: [Option<State>; 2],
    /// Sequence number after each side's SYN and FIN.
    syn_end: [Option<u32>; 2],
    fin_end: [Option<u32>; 2],
}

impl StateMachine {
    fn set(&mut self, k: usize, before: bool, side: Side, state: State, out: &mut Vec<StateChange>) {
        if self.state[idx(side)] != Some(state) {
            self.state[idx(side)] = Some(state);
            out.push(StateChange { segment: k, before, side, state });
        }
    }

    fn step(&mut self, k: usize, s: &Segment, opening: bool, out: &mut Vec<StateChange>) {
        use State::*;
        let (me, peer) = (s.from, s.from.other());
        let (i, o) = (idx(me), idx(peer));
        let f = s.repr.flags;
        if k == 0 {
            if opening {
                // The textbook's starting point: an active and a passive
                // open.
                self.set(k, true, me, Closed, out);
                self.set(k, true, peer, Listen, out);
            } else {
                self.set(k, true, me, Established, out);
                self.set(k, true, peer, Established, out);
            }
        }
        // What sending does to the sender.
        let seg_end = s.repr.seq.wrapping_add(s.repr.segment_len(s.payload_len) as u32);
        if f.rst() {
            self.set(k, false, me, Closed, out);
        } else {
            if f.syn() {
                self.syn_end[i] = Some(s.repr.seq.wrapping_add(1));
                match (self.state[i], f.ack()) {
                    (Some(Closed) | None, false) => self.set(k, true, me, SynSent, out),
                    (Some(Listen | SynSent) | None, true) => self.set(k, true, me, SynReceived, out),
                    _ => {}
                }
            }
            if f.fin() {
                self.fin_end[i] = Some(seg_end);
                match self.state[i] {
                    Some(Established | SynReceived) | None => self.set(k, true, me, FinWait1, out),
                    Some(CloseWait) => self.set(k, true, me, LastAck, out),
                    _ => {}
                }
            }
        }
        // What receiving does to the peer.
        if f.rst() {
            if self.state[o] != Some(Listen) {
                self.set(k, false, peer, Closed, out);
            }
            return;
        }
        let mut st = self.state[o];
        if f.syn() && !f.ack() && st == Some(SynSent) {
            // Simultaneous open (RFC 9293 §3.5, figure 8).
            st = Some(SynReceived);
        }
        if f.ack() {
            let acks = |end: Option<u32>| end.is_some_and(|e| !seq_lt(s.repr.ack, e));
            match st {
                Some(SynSent) if f.syn() && acks(self.syn_end[o]) => st = Some(Established),
                Some(SynReceived) if acks(self.syn_end[o]) => st = Some(Established),
                _ => {}
            }
            if acks(self.fin_end[o]) {
                st = match st {
                    Some(FinWait1) => Some(FinWait2),
                    Some(Closing) => Some(TimeWait),
                    Some(LastAck) => Some(Closed),
                    other => other,
                };
            }
        }
        if f.fin() {
            st = match st {
                Some(Established | SynReceived) => Some(CloseWait),
                Some(FinWait1) => Some(Closing),
                Some(FinWait2) => Some(TimeWait),
                other => other,
            };
        }
        if let Some(st) = st {
            self.set(k, false, peer, st, out);
        }
    }
}

/// Every TCP connection of a capture.
#[derive(Clone, Debug, Default)]
pub struct CaptureAnalysis {
    pub connections: Vec<Connection>,
    /// Time of the first frame.
    pub start: Option<Instant>,
    /// Frames seen, TCP or not.
    pub frames: u64,
    /// Frames that held no IPv4 TCP segment this module could read.
    pub other_frames: u64,
    /// The current connection of each 4-tuple (lower endpoint first).
    by_tuple: HashMap<(SocketAddrV4, SocketAddrV4), usize>,
}

impl CaptureAnalysis {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next frame of the capture.
    pub fn add(&mut self, time: Instant, link_type: u32, data: &[u8]) {
        self.frames += 1;
        self.start.get_or_insert(time);
        match tcp_in_frame(link_type, data) {
            Some(t) => self.add_segment(self.frames, time, t),
            None => self.other_frames += 1,
        }
    }

    /// Takes a TCP segment as frame number `frame`.
    pub fn add_segment(&mut self, frame: u64, time: Instant, t: TcpInFrame) {
        let key = if (t.src.ip().octets(), t.src.port()) <= (t.dst.ip().octets(), t.dst.port()) {
            (t.src, t.dst)
        } else {
            (t.dst, t.src)
        };
        let current = self.by_tuple.get(&key).copied().filter(|&c| {
            let conn = &self.connections[c];
            !conn.is_new_incarnation(conn.side_of(t.src), &t.repr)
        });
        let c = match current {
            Some(c) => c,
            None => {
                // The SYN's sender is on the left; without a SYN, the
                // first sender (a SYN-ACK's receiver, though, is the
                // client).
                let f = t.repr.flags;
                let (left, right) = if f.syn() && f.ack() { (t.dst, t.src) } else { (t.src, t.dst) };
                let n = self.connections.len();
                self.connections.push(Connection::new(n + 1, left, right, f.syn() && !f.ack()));
                self.by_tuple.insert(key, n);
                n
            }
        };
        let conn = &mut self.connections[c];
        let side = conn.side_of(t.src);
        conn.push(frame, time, side, t.repr, t.payload_len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{TcpFlags, TcpOptions};

    const A: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 40000);
    const B: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80);

    struct Run {
        cap: CaptureAnalysis,
        t: u64,
        /// The window scale option the next SYNs carry.
        wscale: Option<u8>,
    }

    impl Run {
        fn new() -> Self {
            Run { cap: CaptureAnalysis::new(), t: 0, wscale: None }
        }
        /// A segment `ms` milliseconds after the previous one.
        #[allow(clippy::too_many_arguments)]
        fn seg(&mut self, ms: u64, from_a: bool, flags: TcpFlags, seq: u32, ack: u32, len: usize, win: u16) {
            self.seg_us(ms * 1000, from_a, flags, seq, ack, len, win);
        }
        /// A segment `us` microseconds after the previous one.
        #[allow(clippy::too_many_arguments)]
        fn seg_us(&mut self, us: u64, from_a: bool, flags: TcpFlags, seq: u32, ack: u32, len: usize, win: u16) {
            self.t += us * 1000;
            let (src, dst) = if from_a { (A, B) } else { (B, A) };
            let options = TcpOptions { window_scale: self.wscale.filter(|_| flags.syn()), ..TcpOptions::default() };
            let repr = TcpRepr {
                src_port: src.port(),
                dst_port: dst.port(),
                seq,
                ack,
                flags,
                window: win,
                options,
                ..Default::default()
            };
            let frame = self.cap.frames + 1;
            self.cap.frames = frame;
            self.cap.add_segment(frame, Instant::from_nanos(self.t), TcpInFrame { src, dst, repr, payload_len: len });
        }
        fn marks(&self, conn: usize) -> Vec<Vec<String>> {
            self.cap.connections[conn].segments.iter().map(|s| s.notes()[1..].to_vec()).collect()
        }
    }

    const SYN: TcpFlags = TcpFlags::SYN;
    const ACK: TcpFlags = TcpFlags::ACK;

    fn handshake(r: &mut Run) {
        r.seg(0, true, SYN, 100, 0, 0, 1000);
        r.seg(10, false, SYN | ACK, 500, 101, 0, 1000);
        r.seg(10, true, ACK, 101, 501, 0, 1000);
    }

    #[test]
    fn retransmission_after_a_timeout_and_duplicate_acks() {
        let mut r = Run::new();
        handshake(&mut r);
        r.seg(1, true, ACK, 101, 501, 100, 1000); // 4
        r.seg(1, true, ACK, 201, 501, 100, 1000); // 5 (lost later)
        r.seg(1, true, ACK, 301, 501, 100, 1000); // 6
        r.seg(10, false, ACK, 501, 201, 0, 1000); // 7
        r.seg(1, false, ACK, 501, 201, 0, 1000); // 8 dup #1
        r.seg(1, true, ACK, 401, 501, 100, 1000); // 9
        r.seg(1, false, ACK, 501, 201, 0, 1000); // 10 dup #2
        r.seg(200, true, ACK, 201, 501, 100, 1000); // 11 retransmission (RTO)
        r.seg(10, false, ACK, 501, 501, 0, 1000); // 12
        let m = r.marks(0);
        assert!(m[..7].iter().all(|v| v.is_empty()), "{m:?}");
        assert_eq!(m[7], vec!["(duplicate ACK #1)"]);
        assert!(m[8].is_empty());
        assert_eq!(m[9], vec!["(duplicate ACK #2)"]);
        assert_eq!(m[10], vec!["(retransmission)"]);
        assert!(m[11].is_empty());
        assert_eq!(r.cap.connections[0].retransmissions(), 1);
    }

    #[test]
    fn fast_and_spurious_retransmissions_and_out_of_order() {
        let mut r = Run::new();
        handshake(&mut r);
        r.seg(1, true, ACK, 101, 501, 100, 1000);
        r.seg(0, true, ACK, 201, 501, 100, 1000);
        r.seg(5, false, ACK, 501, 101, 0, 1000);
        r.seg(0, false, ACK, 501, 101, 0, 1000);
        r.seg(0, false, ACK, 501, 101, 0, 1000);
        r.seg(1, true, ACK, 101, 501, 100, 1000); // within 20 ms of the 2nd dup ACK
        r.seg(5, false, ACK, 501, 301, 0, 1000);
        r.seg(300, true, ACK, 201, 501, 100, 1000); // all acknowledged already
        let m = r.marks(0);
        assert_eq!(m[8], vec!["(fast retransmission)"], "{m:?}");
        assert_eq!(m[10], vec!["(spurious retransmission)"], "{m:?}");
        assert!(r.cap.connections[0].segments.iter().filter(|s| s.marks.is_retransmission()).count() == 2);

        // Two segments swapped within the first RTT (20 ms here).
        let mut r = Run::new();
        handshake(&mut r);
        r.seg(1, true, ACK, 201, 501, 100, 1000);
        r.seg(1, true, ACK, 101, 501, 100, 1000);
        let m = r.marks(0);
        assert_eq!(m[3], vec!["(previous segment not captured)"]);
        assert_eq!(m[4], vec!["(out-of-order)"]);

        // The same, but the swapped frame is stamped 22 µs before the one
        // ahead of it (a capture's clock going backwards): tshark calls it
        // a retransmission, and so does the trace.
        let mut r = Run::new();
        handshake(&mut r);
        r.seg(1, true, ACK, 201, 501, 100, 1000);
        r.t -= 22_000;
        r.seg_us(0, true, ACK, 101, 501, 100, 1000);
        let m = r.marks(0);
        assert_eq!(m[4], vec!["(retransmission)"], "{m:?}");
    }

    #[test]
    fn mid_connection_capture_and_spurious_before_out_of_order() {
        let mut r = Run::new();
        r.seg(0, true, ACK, 1000, 5000, 100, 1000); // no SYN in the capture
        r.seg(0, true, ACK, 1100, 5000, 100, 1000);
        r.seg(1, false, ACK, 5000, 1100, 0, 1000);
        r.seg(0, false, ACK, 5000, 1100, 0, 1000);
        // Already acknowledged, and right after the highest segment:
        // spurious, not out-of-order.
        r.seg(0, true, ACK, 1000, 5000, 100, 1000);
        let m = r.marks(0);
        assert!(m[..3].iter().all(|v| v.is_empty()), "{m:?}");
        assert_eq!(m[3], vec!["(duplicate ACK #1)"]);
        assert_eq!(m[4], vec!["(spurious retransmission)"]);
        assert!(!r.cap.connections[0].saw_syn);
    }

    #[test]
    fn zero_window_update_and_keepalive() {
        let mut r = Run::new();
        handshake(&mut r);
        r.seg(1, true, ACK, 101, 501, 100, 1000);
        r.seg(1, false, ACK, 501, 201, 0, 0); // zero window
        r.seg(100, true, ACK, 201, 501, 1, 1000); // probe
        r.seg(1, false, ACK, 501, 201, 0, 0); // probe ACK
        r.seg(1, false, ACK, 501, 201, 0, 2000); // window update
        r.seg(1000, true, ACK, 200, 501, 0, 1000); // keep-alive
        let m = r.marks(0);
        assert_eq!(m[4], vec!["(zero window)"]);
        assert_eq!(m[5], vec!["(zero window probe)"]);
        assert_eq!(m[6], vec!["(zero window probe ACK)", "(zero window)"]);
        assert_eq!(m[7], vec!["(window update)"]);
        assert_eq!(m[8], vec!["(keep-alive)"]);
    }

    #[test]
    fn states_of_a_textbook_close_and_a_reused_tuple() {
        let mut r = Run::new();
        handshake(&mut r);
        r.seg(1, true, ACK | TcpFlags::FIN, 101, 501, 0, 1000);
        r.seg(1, false, ACK, 501, 102, 0, 1000);
        r.seg(1, false, ACK | TcpFlags::FIN, 501, 102, 0, 1000);
        r.seg(1, true, ACK, 102, 502, 0, 1000);
        // The same 4-tuple again, a new ISN: a second connection.
        r.seg(1000, true, SYN, 9000, 0, 0, 1000);
        r.seg(1000, true, SYN, 9000, 0, 0, 1000); // its retransmission
        assert_eq!(r.cap.connections.len(), 2);
        assert_eq!(r.cap.connections[1].segments.len(), 2);
        assert_eq!(r.marks(1)[1], vec!["(retransmission)"]);
        use State::*;
        let c = &r.cap.connections[0];
        let seq: Vec<(Side, State)> = c.states().iter().map(|s| (s.side, s.state)).collect();
        assert_eq!(
            seq,
            vec![
                (Side::Left, Closed),
                (Side::Right, Listen),
                (Side::Left, SynSent),
                (Side::Right, SynReceived),
                (Side::Left, Established),
                (Side::Right, Established),
                (Side::Left, FinWait1),
                (Side::Right, CloseWait),
                (Side::Left, FinWait2),
                (Side::Right, LastAck),
                (Side::Left, TimeWait),
                (Side::Right, Closed),
            ]
        );
        let text = c.ladder(Instant::ZERO).render();
        assert!(text.contains("SYN-SENT"), "{text}");
        assert!(text.contains("#7"), "{text}");
    }

    /// The marks of the segments from frame `from` (counting from 1) on.
    fn marks_from(r: &Run, from: usize) -> Vec<Vec<String>> {
        r.marks(0)[from - 1..].to_vec()
    }

    #[test]
    fn a_window_update_or_data_with_the_same_ack_continues_a_run_of_duplicate_acks() {
        // Only a new ack number ends a run: the retransmission after the
        // second duplicate ACK is a fast one, although it comes well
        // within the first RTT (20 ms) of the highest segment and would
        // otherwise look out-of-order.
        let mut r = Run::new();
        handshake(&mut r);
        r.seg(1, true, ACK, 101, 501, 100, 1000); // 4
        r.seg(0, true, ACK, 201, 501, 100, 1000); // 5 (lost after the capture)
        r.seg(0, true, ACK, 301, 501, 100, 1000); // 6
        r.seg_us(100, false, ACK, 501, 201, 0, 1000); // 7
        r.seg_us(100, false, ACK, 501, 201, 0, 1000); // 8 dup #1
        r.seg_us(100, false, ACK, 501, 201, 0, 2000); // 9 window update
        r.seg_us(100, false, ACK, 501, 201, 0, 2000); // 10 dup #2
        r.seg_us(100, true, ACK, 201, 501, 100, 1000); // 11
        let m = marks_from(&r, 7);
        assert_eq!(
            m,
            vec![
                vec![],
                vec!["(duplicate ACK #1)".to_string()],
                vec!["(window update)".to_string()],
                vec!["(duplicate ACK #2)".to_string()],
                vec!["(fast retransmission)".to_string()],
            ]
        );

        // The same with data from the receiver in between.
        let mut r = Run::new();
        handshake(&mut r);
        r.seg(1, true, ACK, 101, 501, 100, 1000); // 4
        r.seg(0, true, ACK, 201, 501, 100, 1000); // 5
        r.seg(0, true, ACK, 301, 501, 100, 1000); // 6
        r.seg_us(100, false, ACK, 501, 201, 0, 1000); // 7
        r.seg_us(100, false, ACK, 501, 201, 0, 1000); // 8 dup #1
        r.seg_us(100, false, ACK, 501, 201, 10, 1000); // 9 data
        r.seg_us(100, false, ACK, 511, 201, 0, 1000); // 10 dup #2
        r.seg_us(100, true, ACK, 201, 511, 100, 1000); // 11
        let m = marks_from(&r, 8);
        assert_eq!(m[2], vec!["(duplicate ACK #2)"], "{m:?}");
        assert_eq!(m[3], vec!["(fast retransmission)"], "{m:?}");
        // A new ack does end it.
        r.seg_us(100, false, ACK, 511, 301, 0, 1000); // 12
        r.seg_us(100, false, ACK, 511, 301, 0, 1000); // 13
        assert_eq!(marks_from(&r, 13)[0], vec!["(duplicate ACK #1)"]);
    }

    #[test]
    fn a_first_rtt_of_zero_is_measured_again() {
        // SYN, SYN-ACK and ACK in the same instant: the first RTT comes
        // from the next ACK (10 ms), so two segments swapped 5 ms apart
        // are out of order.
        let mut r = Run::new();
        r.seg(0, true, SYN, 100, 0, 0, 1000);
        r.seg(0, false, SYN | ACK, 500, 101, 0, 1000);
        r.seg(0, true, ACK, 101, 501, 0, 1000);
        r.seg(10, false, ACK, 501, 101, 0, 1000);
        r.seg(1, true, ACK, 201, 501, 100, 1000);
        r.seg(5, true, ACK, 101, 501, 100, 1000);
        assert_eq!(marks_from(&r, 6), vec![vec!["(out-of-order)".to_string()]]);
    }

    #[test]
    fn a_fin_counts_where_a_repeated_segment_ends() {
        // A FIN sent again right away (within the first RTT) ends where
        // the highest segment ended, its FIN included: a retransmission,
        // not out-of-order.
        for len in [0, 50] {
            let mut r = Run::new();
            handshake(&mut r);
            r.seg(1, true, ACK, 101, 501, 100, 1000);
            r.seg(1, true, ACK | TcpFlags::FIN, 201, 501, len, 1000);
            r.seg(1, true, ACK | TcpFlags::FIN, 201, 501, len, 1000);
            assert_eq!(marks_from(&r, 6), vec![vec!["(retransmission)".to_string()]], "len {len}");
        }
    }

    #[test]
    fn any_segment_moves_the_highest_sequence_number() {
        // A pure ACK beyond the highest segment (the data before it was
        // not captured) moves it: the keep-alive and the duplicate ACK
        // after it are measured from there.
        let mut r = Run::new();
        handshake(&mut r);
        r.seg(1, true, ACK, 101, 501, 100, 1000); // 4
        r.seg(1, true, ACK, 301, 501, 0, 1000); // 5: 201..301 not captured
        r.seg(1, false, ACK, 501, 201, 0, 1000); // 6
        r.seg(1000, true, ACK, 300, 501, 0, 1000); // 7 keep-alive
        r.seg(1, true, ACK, 301, 501, 0, 1000); // 8
        let m = marks_from(&r, 5);
        assert_eq!(m[0], vec!["(previous segment not captured)"], "{m:?}");
        assert_eq!(m[2], vec!["(keep-alive)"], "{m:?}");
        assert_eq!(m[3], vec!["(duplicate ACK #1)"], "{m:?}");

        // However many segments go unacknowledged (no ACK captured).
        let mut r = Run::new();
        r.seg(0, true, SYN, 100, 0, 0, 65535);
        r.seg(10, false, SYN | ACK, 500, 101, 0, 65535);
        r.seg(10, true, ACK, 101, 501, 0, 1000);
        for k in 0..1100u32 {
            r.seg_us(10, true, ACK, 101 + 10 * k, 501, 10, 1000);
        }
        let fin = 101 + 10 * 1100;
        r.seg_us(10, true, ACK | TcpFlags::FIN, fin, 501, 0, 1000);
        r.seg_us(10, true, ACK, fin + 1, 501, 0, 1000);
        let m = r.marks(0);
        assert!(m[..m.len() - 1].iter().all(|v| v.is_empty()), "{:?}", m.iter().position(|v| !v.is_empty()));
        assert_eq!(m[m.len() - 1], vec!["(duplicate ACK #1)"]);
    }

    #[test]
    fn an_ack_of_unseen_data_is_reported_once() {
        // 201..301 never captured; the retransmission of 101 (from before
        // the gap) does not make the gap seen, so the ACK over it is
        // reported, once.
        let mut r = Run::new();
        handshake(&mut r);
        r.seg(1, true, ACK, 101, 501, 100, 1000); // 4
        r.seg(0, true, ACK, 301, 501, 100, 1000); // 5
        r.seg(300, true, ACK, 101, 501, 100, 1000); // 6
        r.seg(10, false, ACK, 501, 401, 0, 1000); // 7
        r.seg(10, false, ACK, 501, 401, 0, 1000); // 8
        r.seg(10, false, ACK, 501, 401, 10, 1000); // 9 data
        r.seg(10, true, ACK, 401, 511, 0, 1000); // 10 a new ack
        r.seg(10, false, ACK, 511, 401, 0, 1000); // 11
        let m = marks_from(&r, 5);
        assert_eq!(m[0], vec!["(previous segment not captured)"], "{m:?}");
        assert_eq!(m[1], vec!["(retransmission)"], "{m:?}");
        assert_eq!(m[2], vec!["(ACKed unseen segment)"], "{m:?}");
        assert_eq!(m[3], vec!["(duplicate ACK #1)"], "{m:?}");
        // The gap was reported once for all: the limit moved past it.
        assert!(m[4].is_empty() && m[5].is_empty(), "{m:?}");
        // (Data with the same ack continued the run of duplicates.)
        assert_eq!(m[6], vec!["(duplicate ACK #2)"], "{m:?}");

        // Unseen data at the end (nothing captured after the gap): once
        // per run of the other side's ACKs.
        let mut r = Run::new();
        handshake(&mut r);
        r.seg(1, true, ACK, 101, 501, 100, 1000); // 4
        r.seg(1, false, ACK, 501, 301, 0, 1000); // 5: 201..301 unseen
        r.seg(1, false, ACK, 501, 301, 0, 1000); // 6
        r.seg(1, false, ACK, 501, 301, 10, 1000); // 7 data
        r.seg(1, true, ACK, 201, 511, 0, 1000); // 8 a new ack
        r.seg(1, false, ACK, 511, 301, 0, 1000); // 9
        r.seg(1, false, ACK, 511, 301, 0, 1000); // 10
        let m = marks_from(&r, 5);
        assert_eq!(m[0], vec!["(ACKed unseen segment)"], "{m:?}");
        assert_eq!(m[1], vec!["(duplicate ACK #1)"], "{m:?}");
        assert!(m[2].is_empty() && m[3].is_empty(), "{m:?}");
        assert_eq!(m[4], vec!["(ACKed unseen segment)", "(duplicate ACK #2)"], "{m:?}");
        assert_eq!(m[5], vec!["(duplicate ACK #3)"], "{m:?}");
    }

    #[test]
    fn window_scaling_as_the_syns_show_it() {
        // Duplicate ACKs compare the window as sent: the first ACK after
        // a SYN-ACK with the same field repeats it, whatever the scaling.
        let mut r = Run::new();
        r.wscale = Some(7);
        r.seg(0, true, SYN, 100, 0, 0, 64240);
        r.seg(10, false, SYN | ACK, 500, 101, 0, 1000);
        r.seg(10, true, ACK, 101, 501, 0, 502);
        r.seg(1, false, ACK, 501, 101, 0, 1000);
        assert_eq!(marks_from(&r, 4), vec![vec!["(duplicate ACK #1)".to_string()]]);
        assert_eq!(r.cap.connections[0].segments[3].window, 1000 << 7);

        // A SYN with the option and no SYN-ACK captured: the client's
        // window is scaled, and the server's data can fill it.
        let mut r = Run::new();
        r.wscale = Some(7);
        r.seg(0, true, SYN, 100, 0, 0, 64240);
        r.seg(10, true, ACK, 101, 501, 0, 10);
        r.seg(1, false, ACK, 501, 101, 1280, 10);
        assert_eq!(marks_from(&r, 3), vec![vec!["(window full)".to_string()]]);

        // Without any SYN, scaling is unknown and no window is full.
        let mut r = Run::new();
        r.seg(0, true, ACK, 101, 501, 0, 10);
        r.seg(1, false, ACK, 501, 101, 10, 10);
        assert!(marks_from(&r, 2)[0].is_empty());

        // A closed window is full once data reaches its edge.
        let mut r = Run::new();
        handshake(&mut r);
        r.seg(1, false, ACK, 501, 101, 0, 0);
        r.seg(1, true, ACK, 1, 501, 100, 1000);
        assert_eq!(
            marks_from(&r, 4),
            vec![
                vec!["(zero window)".to_string()],
                vec!["(spurious retransmission)".to_string(), "(window full)".to_string()]
            ]
        );
    }

    #[test]
    fn link_types() {
        // A minimal IPv4 + TCP header, 4 bytes of payload.
        let mut ip = vec![0x45, 0, 0, 44, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        let mut tcp = vec![0u8; 20];
        tcp[0..2].copy_from_slice(&1234u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&80u16.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = 0x10;
        ip.extend_from_slice(&tcp);
        ip.extend_from_slice(b"data");
        let mut eth = vec![0u8; 12];
        eth.extend_from_slice(&[0x81, 0x00, 0, 1, 0x08, 0x00]);
        eth.extend_from_slice(&ip);
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&[0x08, 0x00]);
        sll.extend_from_slice(&ip);
        let mut sll2 = vec![0x08, 0x00];
        sll2.extend_from_slice(&[0u8; 18]);
        sll2.extend_from_slice(&ip);
        for (lt, frame) in
            [(link::RAW, &ip), (link::ETHERNET, &eth), (link::LINUX_SLL, &sll), (link::LINUX_SLL2, &sll2)]
        {
            let t = tcp_in_frame(lt, frame).unwrap_or_else(|| panic!("link type {lt}"));
            assert_eq!(t.src, SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 1234));
            assert_eq!(t.payload_len, 4);
        }
        // Truncated after the TCP header: the payload still counts.
        let t = tcp_in_frame(link::RAW, &ip[..40]).unwrap();
        assert_eq!(t.payload_len, 4);
        // Not IPv4, not TCP, garbage.
        assert!(tcp_in_frame(link::LINUX_SLL2, &[0x86, 0xdd, 0, 0]).is_none());
        let mut udp = ip.clone();
        udp[9] = 17;
        assert!(tcp_in_frame(link::RAW, &udp).is_none());
        for n in 0..ip.len() {
            let _ = tcp_in_frame(link::RAW, &ip[..n]);
            let _ = tcp_in_frame(link::ETHERNET, &eth[..n]);
        }
    }
}
