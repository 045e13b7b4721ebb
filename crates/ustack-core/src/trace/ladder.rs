//! Ladder diagrams: two timelines side by side with the segments between
//! them, as in networking textbooks and Wireshark's flow graph.
//!
//! ```text
//!      time  client 10.0.0.1:50784                                server 10.0.0.2:12345
//!  0.000000  SYN-SENT      │                                     │ LISTEN
//!  0.010000                │── SYN seq=0 win=65535 ─────────────►│  +5.000 ms
//!  0.015000                │                                     │ SYN-RECEIVED
//! ```
//!
//! [`Ladder`] is the layout; [`TcpLabeler`] turns TCP headers into labels
//! with relative sequence numbers (each side's ISN is learned from its SYN)
//! and windows scaled once both SYNs have shown the option.

use crate::tcp::State;
use crate::time::Instant;
use crate::wire::TcpRepr;
use core::fmt::Write;

/// Which timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    Left,
    Right,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Left => Side::Right,
            Side::Right => Side::Left,
        }
    }
    fn index(self) -> usize {
        match self {
            Side::Left => 0,
            Side::Right => 1,
        }
    }
}

/// What became of a frame on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// Arrived at this instant.
    At(Instant),
    /// Lost on the way.
    Lost,
    /// Arrived with a flipped bit and was dropped by a checksum.
    Corrupted(Instant),
    /// Not known (a capture at one point of the path).
    Unknown,
}

#[derive(Clone, Debug)]
enum Row {
    State { time: Instant, side: Side, state: State },
    Frame { time: Instant, from: Side, label: String, arrival: Arrival, notes: Vec<String> },
    Note { time: Instant, text: String },
}

impl Row {
    fn time(&self) -> Instant {
        match self {
            Row::State { time, .. } | Row::Frame { time, .. } | Row::Note { time, .. } => *time,
        }
    }
}

/// A ladder diagram being assembled; rows may be added in any order and
/// are shown by time (stable for equal times).
#[derive(Clone, Debug)]
pub struct Ladder {
    titles: [String; 2],
    rows: Vec<Row>,
}

const STATE_WIDTH: usize = 13;
const MIN_ARROW: usize = 40;

impl Ladder {
    pub fn new(left: impl Into<String>, right: impl Into<String>) -> Self {
        Ladder { titles: [left.into(), right.into()], rows: Vec::new() }
    }

    /// A state the side entered at `time`.
    pub fn state(&mut self, time: Instant, side: Side, state: State) {
        self.rows.push(Row::State { time, side, state });
    }

    /// A frame sent by `from` at `time`.
    pub fn frame(&mut self, time: Instant, from: Side, label: impl Into<String>, arrival: Arrival, notes: Vec<String>) {
        self.rows.push(Row::Frame { time, from, label: label.into(), arrival, notes });
    }

    /// A line of text across the diagram.
    pub fn note(&mut self, time: Instant, text: impl Into<String>) {
        self.rows.push(Row::Note { time, text: text.into() });
    }

    /// Number of frame rows.
    pub fn frame_count(&self) -> usize {
        self.rows.iter().filter(|r| matches!(r, Row::Frame { .. })).count()
    }

    pub fn render(&self) -> String {
        let mut rows: Vec<&Row> = self.rows.iter().collect();
        rows.sort_by_key(|r| r.time());
        let label_max = rows
            .iter()
            .filter_map(|r| match r {
                Row::Frame { label, .. } => Some(label.chars().count()),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        let arrow = (label_max + 8).max(MIN_ARROW);
        let mut out = String::new();
        let left_pad = STATE_WIDTH + 1;
        let _ = writeln!(
            out,
            "{:>9}  {:<w$}{:>rw$}",
            "time",
            self.titles[0],
            self.titles[1],
            w = left_pad + 1,
            rw = arrow + 2 + self.titles[1].chars().count().saturating_sub(0)
        );
        for row in rows {
            match row {
                Row::State { time, side, state } => {
                    let (l, r) = match side {
                        Side::Left => (state.name(), ""),
                        Side::Right => ("", state.name()),
                    };
                    let line =
                        format!("{}  {:<sw$}│{}│ {}", fmt_time(*time), l, " ".repeat(arrow), r, sw = STATE_WIDTH);
                    let _ = writeln!(out, "{}", line.trim_end());
                }
                Row::Frame { time, from, label, arrival, notes } => {
                    let line = draw_arrow(*from, label, arrival, arrow);
                    let mut tail = match arrival {
                        Arrival::At(t) => format!("  +{}", fmt_delay(*time, *t)),
                        Arrival::Lost => "  lost".to_string(),
                        Arrival::Corrupted(_) => "  corrupted: dropped by checksum".to_string(),
                        Arrival::Unknown => String::new(),
                    };
                    for n in notes {
                        tail.push_str("  ");
                        tail.push_str(n);
                    }
                    let line = format!("{}  {:<sw$}│{}│{}", fmt_time(*time), "", line, tail, sw = STATE_WIDTH);
                    let _ = writeln!(out, "{}", line.trim_end());
                }
                Row::Note { time, text } => {
                    let _ = writeln!(out, "{}  {}", fmt_time(*time), text);
                }
            }
        }
        out
    }
}

fn fmt_time(t: Instant) -> String {
    format!("{:>9}", t.to_string())
}

fn fmt_delay(from: Instant, to: Instant) -> String {
    let us = to.saturating_duration_since(from).as_micros();
    format!("{}.{:03} ms", us / 1000, us % 1000)
}

/// `── label ─────►` or `◄───── label ──`, or cut short with `✗` when lost.
fn draw_arrow(from: Side, label: &str, arrival: &Arrival, width: usize) -> String {
    let lost = matches!(arrival, Arrival::Lost | Arrival::Corrupted(_));
    let label_len = label.chars().count();
    let body = width.saturating_sub(label_len + 4);
    match from {
        Side::Left => {
            let mut s = format!("── {label} ");
            let fill = body.saturating_sub(1);
            if lost {
                let half = fill / 2;
                s.push_str(&"─".repeat(half));
                s.push('✗');
                s.push_str(&" ".repeat(fill - half + 1));
            } else {
                s.push_str(&"─".repeat(fill));
                s.push('►');
            }
            s.push_str(&" ".repeat(width.saturating_sub(s.chars().count())));
            s
        }
        Side::Right => {
            let fill = body.saturating_sub(1);
            let mut s = String::new();
            if lost {
                let half = fill / 2;
                s.push_str(&" ".repeat(fill - half + 1));
                s.push('✗');
                s.push_str(&"─".repeat(half));
            } else {
                s.push('◄');
                s.push_str(&"─".repeat(fill));
            }
            s.push_str(&format!(" {label} ──"));
            let pad = width.saturating_sub(s.chars().count());
            format!("{}{}", " ".repeat(pad), s)
        }
    }
}

/// Labels TCP segments of one connection the way a textbook does:
/// relative sequence and acknowledgement numbers, windows in bytes.
#[derive(Clone, Debug, Default)]
pub struct TcpLabeler {
    isn: [Option<u32>; 2],
    wscale: [Option<u8>; 2],
    /// Highest sequence number sent by each side so far (for marking
    /// retransmissions).
    highest: [Option<u32>; 2],
}

/// A segment's label and the notes a reader should see.
#[derive(Clone, Debug)]
pub struct Labeled {
    pub label: String,
    pub notes: Vec<String>,
}

impl TcpLabeler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Learns from `repr` sent by `from` and describes it.
    pub fn label(&mut self, from: Side, repr: &TcpRepr, payload_len: usize) -> Labeled {
        let i = from.index();
        let o = from.other().index();
        let flags = repr.flags;
        if flags.syn() {
            self.isn[i] = Some(repr.seq);
            self.wscale[i] = repr.options.window_scale;
        }
        let rel = |isn: Option<u32>, v: u32| isn.map_or(v, |b| v.wrapping_sub(b));
        let seq = rel(self.isn[i], repr.seq);
        let mut label = format!("{flags} seq={seq}");
        if flags.ack() {
            let _ = write!(label, " ack={}", rel(self.isn[o], repr.ack));
        }
        if payload_len > 0 {
            let _ = write!(label, " len={payload_len}");
        }
        // Window scaling applies only once both SYNs carried the option,
        // and never to the window of a SYN (RFC 7323 §2.2).
        let window = match (self.wscale[i], self.wscale[o], flags.syn()) {
            (Some(s), Some(_), false) => (repr.window as u32) << s.min(14),
            _ => repr.window as u32,
        };
        if !flags.rst() {
            let _ = write!(label, " win={window}");
        }
        let opts = &repr.options;
        if flags.syn() {
            let mut parts = Vec::new();
            if let Some(m) = opts.mss {
                parts.push(format!("mss {m}"));
            }
            if opts.sack_permitted {
                parts.push("sackOK".to_string());
            }
            if opts.timestamps.is_some() {
                parts.push("TS".to_string());
            }
            if let Some(w) = opts.window_scale {
                parts.push(format!("wscale {w}"));
            }
            // TCP Fast Open (RFC 7413): a request for a cookie, or one.
            match opts.fast_open {
                Some(c) if c.is_request() => parts.push("FO".to_string()),
                Some(c) => {
                    parts.push(format!("FO {}", c.as_bytes().iter().map(|b| format!("{b:02x}")).collect::<String>()))
                }
                None => {}
            }
            if !parts.is_empty() {
                let _ = write!(label, " <{}>", parts.join(","));
            }
        }
        if !opts.sack_blocks.is_empty() {
            let blocks: Vec<String> = opts
                .sack_blocks
                .as_slice()
                .iter()
                .map(|&(l, r)| format!("{}-{}", rel(self.isn[o], l), rel(self.isn[o], r)))
                .collect();
            let _ = write!(label, " sack {}", blocks.join(","));
        }
        let mut notes = Vec::new();
        let end = repr.seq.wrapping_add(repr.segment_len(payload_len) as u32);
        if repr.segment_len(payload_len) > 0 && !flags.rst() {
            match self.highest[i] {
                Some(h) if (end.wrapping_sub(h) as i32) <= 0 => notes.push("(retransmission)".to_string()),
                _ => self.highest[i] = Some(end),
            }
        }
        if window == 0 && !flags.rst() && !flags.syn() {
            notes.push("(zero window)".to_string());
        }
        Labeled { label, notes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{TcpFlags, TcpOptions};

    #[test]
    fn relative_numbers_and_retransmissions() {
        let mut l = TcpLabeler::new();
        let syn = TcpRepr {
            src_port: 1,
            dst_port: 2,
            seq: 1000,
            flags: TcpFlags::SYN,
            window: 65535,
            options: TcpOptions { mss: Some(1460), window_scale: Some(2), ..Default::default() },
            ..Default::default()
        };
        assert_eq!(l.label(Side::Left, &syn, 0).label, "SYN seq=0 win=65535 <mss 1460,wscale 2>");
        let synack = TcpRepr {
            seq: 5000,
            ack: 1001,
            flags: TcpFlags::SYN | TcpFlags::ACK,
            options: TcpOptions { window_scale: Some(3), ..Default::default() },
            ..syn
        };
        assert_eq!(l.label(Side::Right, &synack, 0).label, "SYN-ACK seq=0 ack=1 win=65535 <wscale 3>");
        let data = TcpRepr { seq: 1001, ack: 5001, flags: TcpFlags::ACK | TcpFlags::PSH, window: 100, ..syn };
        let first = l.label(Side::Left, &data, 14);
        assert_eq!(first.label, "PSH-ACK seq=1 ack=1 len=14 win=400");
        assert!(first.notes.is_empty());
        assert_eq!(l.label(Side::Left, &data, 14).notes, vec!["(retransmission)".to_string()]);
    }

    #[test]
    fn fast_open_cookies_and_requests_are_shown_on_syns() {
        let mut l = TcpLabeler::new();
        let syn = TcpRepr {
            seq: 1000,
            flags: TcpFlags::SYN,
            window: 100,
            options: TcpOptions { fast_open: Some(crate::wire::FastOpenCookie::REQUEST), ..Default::default() },
            ..Default::default()
        };
        assert_eq!(l.label(Side::Left, &syn, 0).label, "SYN seq=0 win=100 <FO>");
        let cookie = crate::wire::FastOpenCookie::new(&[0xab, 1, 2, 3]);
        let synack = TcpRepr {
            seq: 7,
            ack: 1001,
            flags: TcpFlags::SYN | TcpFlags::ACK,
            options: TcpOptions { fast_open: cookie, ..Default::default() },
            ..syn
        };
        assert_eq!(l.label(Side::Right, &synack, 0).label, "SYN-ACK seq=0 ack=1 win=100 <FO ab010203>");
    }

    #[test]
    fn renders_both_directions_and_losses() {
        let mut d = Ladder::new("client", "server");
        d.state(Instant::ZERO, Side::Left, State::SynSent);
        d.state(Instant::ZERO, Side::Right, State::Listen);
        d.frame(Instant::from_millis(1), Side::Left, "SYN seq=0", Arrival::Lost, vec![]);
        d.frame(Instant::from_millis(2), Side::Left, "SYN seq=0", Arrival::At(Instant::from_millis(7)), vec![]);
        d.frame(
            Instant::from_millis(7),
            Side::Right,
            "SYN-ACK seq=0 ack=1",
            Arrival::At(Instant::from_millis(12)),
            vec![],
        );
        let text = d.render();
        assert!(text.contains("✗"), "{text}");
        assert!(text.contains("►│  +5.000 ms"), "{text}");
        assert!(text.contains("│◄"), "{text}");
        assert!(text.contains("SYN-SENT"));
        assert_eq!(d.frame_count(), 3);
    }
}
