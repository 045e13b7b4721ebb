//! SVG plots of one TCP connection, drawn with plotters' SVG backend.
//!
//! One file holds the panels stacked top to bottom, sharing the time axis
//! (seconds since the connection's first segment):
//!
//! 1. the time-sequence graph in the Stevens/tcptrace style, for the
//!    direction that carried the most data: each data segment a vertical
//!    bar from its first to its last byte at the time it was seen (blue;
//!    retransmissions red), the ACK line (green: the highest
//!    acknowledgement from the other side so far), the receive-window line
//!    (orange: ACK + advertised window, how far the sender may go), and
//!    SACK blocks as short purple bars beside the ACK line;
//! 2. throughput: bits per second sent (retransmissions included) and
//!    newly acknowledged, in bins of a round number of milliseconds;
//! 3. and, when the sender's own trace events are at hand (`ustack
//!    demo`): the congestion window and slow-start threshold in bytes,
//! 4. and the smoothed RTT and the retransmission timeout in ms.

use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;
use ustack_core::time::Instant;
use ustack_core::trace::analysis::Connection;
use ustack_core::trace::ladder::Side;
use ustack_core::trace::{Event, EventKind};

/// The congestion state of the sender at one moment, from its
/// `TcpCongestion` trace events.
#[derive(Clone, Copy, Debug)]
pub struct CongestionSample {
    pub time: Instant,
    pub cwnd: usize,
    /// `None` while still infinite (before the first loss).
    pub ssthresh: Option<usize>,
    pub srtt_ms: Option<f64>,
    pub rto_ms: f64,
}

/// The congestion samples among a stack's trace events.
pub fn congestion_samples(events: &[Event]) -> Vec<CongestionSample> {
    events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::TcpCongestion { cwnd, ssthresh, srtt, rto, .. } => Some(CongestionSample {
                time: e.time,
                cwnd,
                ssthresh: (ssthresh < 1 << 40).then_some(ssthresh),
                srtt_ms: srtt.map(|d| d.as_secs_f64() * 1e3),
                rto_ms: rto.as_secs_f64() * 1e3,
            }),
            _ => None,
        })
        .collect()
}

/// A data segment in the time-sequence graph.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bar {
    pub t: f64,
    pub lo: f64,
    pub hi: f64,
    pub retransmission: bool,
}

/// What the time-sequence and throughput panels show.
#[derive(Clone, Debug, Default)]
pub struct Series {
    /// "10.0.0.1:50784 → 10.0.0.2:12345"
    pub direction: String,
    pub bars: Vec<Bar>,
    /// (time, highest ACK so far), (time, ACK + window), as steps.
    pub ack: Vec<(f64, f64)>,
    pub window: Vec<(f64, f64)>,
    /// (time, left edge, right edge).
    pub sacks: Vec<(f64, f64, f64)>,
    /// Throughput bins: (start, end, bits/s sent, bits/s acknowledged).
    pub bins: Vec<(f64, f64, f64, f64)>,
    pub bin_ms: u64,
    pub duration: f64,
}

fn rel(v: u32, base: u32) -> f64 {
    f64::from(v.wrapping_sub(base))
}

/// A round bin width giving about 25 bins over `secs`.
fn bin_width_ms(secs: f64) -> u64 {
    let target = (secs * 1000.0 / 25.0).max(1.0);
    let mut w = 1u64;
    loop {
        for m in [1, 2, 5] {
            if (w * m) as f64 >= target {
                return w * m;
            }
        }
        w *= 10;
    }
}

/// The series of the direction of `conn` that sent the most payload.
pub fn series(conn: &Connection) -> Series {
    let sender = if conn.bytes_from(Side::Right) > conn.bytes_from(Side::Left) { Side::Right } else { Side::Left };
    let [l, r] = conn.endpoints;
    let direction = if sender == Side::Left { format!("{l} → {r}") } else { format!("{r} → {l}") };
    let t0 = conn.start();
    let secs = |t: Instant| t.saturating_duration_since(t0).as_secs_f64();
    // Relative numbers as in the ladder: from the sender's ISN, or the
    // first sequence number it showed.
    let base = conn
        .isn(sender)
        .or_else(|| conn.segments.iter().find(|s| s.from == sender).map(|s| s.repr.seq.wrapping_sub(1)))
        .unwrap_or(0);
    let duration = conn.segments.last().map_or(0.0, |s| secs(s.time));
    let mut out = Series { direction, duration, ..Default::default() };
    let mut highest_ack: Option<u32> = None;
    let mut acked_events: Vec<(f64, u64)> = Vec::new();
    for s in &conn.segments {
        let t = secs(s.time);
        if s.from == sender {
            if s.payload_len > 0 {
                let lo = rel(s.repr.seq, base);
                out.bars.push(Bar {
                    t,
                    lo,
                    hi: lo + s.payload_len as f64,
                    retransmission: s.marks.is_retransmission(),
                });
            }
        } else if s.repr.flags.ack() && !s.repr.flags.rst() {
            let ack = s.repr.ack;
            let before = highest_ack;
            if highest_ack.is_none_or(|h| (ack.wrapping_sub(h) as i32) > 0) {
                highest_ack = Some(ack);
            }
            let h = highest_ack.unwrap_or(ack);
            if let Some(b) = before
                && b != h
            {
                acked_events.push((t, u64::from(h.wrapping_sub(b))));
            }
            let a = rel(h, base);
            let w = a + f64::from(s.window);
            if let Some(&(_, prev)) = out.ack.last() {
                out.ack.push((t, prev));
            }
            out.ack.push((t, a));
            if let Some(&(_, prev)) = out.window.last() {
                out.window.push((t, prev));
            }
            out.window.push((t, w));
            for &(bl, br) in s.repr.options.sack_blocks.as_slice() {
                out.sacks.push((t, rel(bl, base), rel(br, base)));
            }
        }
    }
    // Extend the lines to the end.
    if let Some(&(_, v)) = out.ack.last() {
        out.ack.push((duration, v));
    }
    if let Some(&(_, v)) = out.window.last() {
        out.window.push((duration, v));
    }
    let bin_ms = bin_width_ms(duration);
    let width = bin_ms as f64 / 1000.0;
    let nbins = ((duration / width).floor() as usize) + 1;
    let mut sent = vec![0u64; nbins];
    let mut acked = vec![0u64; nbins];
    for b in &out.bars {
        sent[((b.t / width) as usize).min(nbins - 1)] += (b.hi - b.lo) as u64;
    }
    for (t, n) in acked_events {
        acked[((t / width) as usize).min(nbins - 1)] += n;
    }
    out.bins = (0..nbins)
        .map(|i| {
            (i as f64 * width, (i + 1) as f64 * width, sent[i] as f64 * 8.0 / width, acked[i] as f64 * 8.0 / width)
        })
        .collect();
    out.bin_ms = bin_ms;
    out
}

type DrawResult<T> = Result<T, Box<dyn std::error::Error>>;

const ORANGE: RGBColor = RGBColor(230, 140, 0);
const PURPLE: RGBColor = RGBColor(150, 40, 170);
const DARK_GREEN: RGBColor = RGBColor(0, 140, 60);
const FONT: &str = "sans-serif";

fn legend_line(color: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
}

fn x_range(duration: f64) -> std::ops::Range<f64> {
    0.0..(duration * 1.02).max(1e-3)
}

/// Axis labels in bytes: 1500, 45k, 1.2M.
fn bytes_label(v: &f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn time_sequence(area: &DrawingArea<SVGBackend, Shift>, s: &Series) -> DrawResult<()> {
    // The window line may run far above the data; the data decides the
    // scale and the window line is cut at the top.
    let data_max = s
        .bars
        .iter()
        .map(|b| b.hi)
        .chain(s.ack.iter().map(|p| p.1))
        .chain(s.sacks.iter().map(|p| p.2))
        .fold(1.0f64, f64::max);
    let window_max = s.window.iter().map(|p| p.1).fold(0.0f64, f64::max);
    let ymax = if window_max < data_max * 1.5 { window_max.max(data_max) * 1.05 } else { data_max * 1.25 };
    let window: Vec<(f64, f64)> = s.window.iter().map(|&(t, v)| (t, v.min(ymax))).collect();
    let mut chart = ChartBuilder::on(area)
        .caption(format!("time-sequence graph: {}", s.direction), (FONT, 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(90)
        .build_cartesian_2d(x_range(s.duration), 0.0..ymax)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("relative sequence number (bytes)")
        .y_label_formatter(&bytes_label)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .draw()?;
    chart
        .draw_series(LineSeries::new(window, ORANGE.stroke_width(2)))?
        .label("receive window (ACK + window)")
        .legend(legend_line(ORANGE));
    chart
        .draw_series(LineSeries::new(s.ack.iter().copied(), DARK_GREEN.stroke_width(2)))?
        .label("ACK")
        .legend(legend_line(DARK_GREEN));
    chart
        .draw_series(
            s.bars
                .iter()
                .filter(|b| !b.retransmission)
                .map(|b| PathElement::new(vec![(b.t, b.lo), (b.t, b.hi)], BLUE.stroke_width(2))),
        )?
        .label("data segment")
        .legend(legend_line(BLUE));
    chart
        .draw_series(
            s.bars
                .iter()
                .filter(|b| b.retransmission)
                .map(|b| PathElement::new(vec![(b.t, b.lo), (b.t, b.hi)], RED.stroke_width(4))),
        )?
        .label("retransmission (×)")
        .legend(legend_line(RED));
    // A cross on each retransmission, so a single segment shows at any
    // scale.
    chart.draw_series(
        s.bars
            .iter()
            .filter(|b| b.retransmission)
            .map(|b| Cross::new((b.t, (b.lo + b.hi) / 2.0), 7, RED.stroke_width(2))),
    )?;
    // SACK blocks: short bars just right of the ACK that carried them.
    let nudge = s.duration * 0.002;
    chart
        .draw_series(
            s.sacks
                .iter()
                .map(|&(t, l, r)| PathElement::new(vec![(t + nudge, l), (t + nudge, r)], PURPLE.stroke_width(2))),
        )?
        .label("SACK block")
        .legend(legend_line(PURPLE));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FONT, 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

fn throughput(area: &DrawingArea<SVGBackend, Shift>, s: &Series) -> DrawResult<()> {
    let to_mbps = 1e-6;
    let ymax = s.bins.iter().map(|b| b.2.max(b.3) * to_mbps).fold(0.001f64, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(format!("throughput: {} (per {} ms)", s.direction, s.bin_ms), (FONT, 20))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(90)
        .build_cartesian_2d(x_range(s.duration), 0.0..ymax)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("Mbit/s")
        .y_label_formatter(&|v: &f64| format!("{v:.1}"))
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .draw()?;
    let steps = |pick: fn(&(f64, f64, f64, f64)) -> f64| -> Vec<(f64, f64)> {
        s.bins.iter().flat_map(|b| [(b.0, pick(b) * to_mbps), (b.1, pick(b) * to_mbps)]).collect()
    };
    chart
        .draw_series(LineSeries::new(steps(|b| b.2), BLUE.stroke_width(2)))?
        .label("sent (with retransmissions)")
        .legend(legend_line(BLUE));
    chart
        .draw_series(LineSeries::new(steps(|b| b.3), DARK_GREEN.stroke_width(2)))?
        .label("acknowledged (goodput)")
        .legend(legend_line(DARK_GREEN));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FONT, 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// A named line: its name in the legend, colour, and points.
type NamedLine<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);

/// Two quantities over time in one panel.
struct Lines<'a> {
    caption: String,
    y_desc: &'a str,
    series: Vec<NamedLine<'a>>,
}

fn lines(area: &DrawingArea<SVGBackend, Shift>, duration: f64, l: &Lines) -> DrawResult<()> {
    let ymax = l.series.iter().flat_map(|s| s.2.iter().map(|p| p.1)).fold(1.0f64, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(&l.caption, (FONT, 20))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(90)
        .build_cartesian_2d(x_range(duration), 0.0..ymax)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc(l.y_desc)
        .y_label_formatter(&|v: &f64| if l.y_desc == "bytes" { bytes_label(v) } else { format!("{v:.0}") })
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .draw()?;
    for (name, color, points) in &l.series {
        chart
            .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))?
            .label(*name)
            .legend(legend_line(*color));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FONT, 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// A step line from samples.
fn steps(points: impl Iterator<Item = (f64, f64)>, end: f64) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::new();
    for (t, v) in points {
        if let Some(&(_, prev)) = out.last() {
            out.push((t, prev));
        }
        out.push((t, v));
    }
    if let Some(&(t, v)) = out.last()
        && t < end
    {
        out.push((end, v));
    }
    out
}

const WIDTH: u32 = 1200;
const SEQ_HEIGHT: u32 = 560;
const PANEL_HEIGHT: u32 = 280;

/// Writes the plots of `conn` to `path`: time-sequence and throughput,
/// plus the congestion panels when `congestion` is given.
pub fn write_svg(path: &Path, conn: &Connection, congestion: Option<&[CongestionSample]>) -> Result<(), String> {
    let s = series(conn);
    draw(path, &s, conn.start(), congestion).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn draw(path: &Path, s: &Series, t0: Instant, congestion: Option<&[CongestionSample]>) -> DrawResult<()> {
    let secs = |t: Instant| t.saturating_duration_since(t0).as_secs_f64();
    // One time axis for every panel.
    let mut s = s.clone();
    if let Some(last) = congestion.and_then(|c| c.last()) {
        s.duration = s.duration.max(secs(last.time));
    }
    let duration = s.duration;
    let panels = if congestion.is_some() { 2 } else { 0 };
    let height = SEQ_HEIGHT + PANEL_HEIGHT * (1 + panels);
    let root = SVGBackend::new(path, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, rest) = root.split_vertically(SEQ_HEIGHT);
    time_sequence(&top, &s)?;
    let (tp, rest) = rest.split_vertically(PANEL_HEIGHT);
    throughput(&tp, &s)?;
    if let Some(samples) = congestion {
        let (cw, rt) = rest.split_vertically(PANEL_HEIGHT);
        let cwnd = Lines {
            caption: "congestion window and slow-start threshold (sender's trace events)".into(),
            y_desc: "bytes",
            series: vec![
                ("cwnd", BLUE, steps(samples.iter().map(|c| (secs(c.time), c.cwnd as f64)), duration)),
                (
                    "ssthresh",
                    RED,
                    steps(samples.iter().filter_map(|c| Some((secs(c.time), c.ssthresh? as f64))), duration),
                ),
            ],
        };
        lines(&cw, duration, &cwnd)?;
        let rtt = Lines {
            caption: "smoothed RTT and retransmission timeout (sender's trace events)".into(),
            y_desc: "ms",
            series: vec![
                ("srtt", DARK_GREEN, steps(samples.iter().filter_map(|c| Some((secs(c.time), c.srtt_ms?))), duration)),
                ("rto", PURPLE, steps(samples.iter().map(|c| (secs(c.time), c.rto_ms)), duration)),
            ],
        };
        lines(&rt, duration, &rtt)?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_bins() {
        assert_eq!(bin_width_ms(0.0), 1);
        assert_eq!(bin_width_ms(0.2), 10);
        assert_eq!(bin_width_ms(2.5), 100);
        assert_eq!(bin_width_ms(30.0), 2000);
    }

    #[test]
    fn steps_hold_each_value_until_the_next() {
        let s = steps([(0.0, 1.0), (1.0, 3.0)].into_iter(), 2.0);
        assert_eq!(s, vec![(0.0, 1.0), (1.0, 1.0), (1.0, 3.0), (2.0, 3.0)]);
    }
}
