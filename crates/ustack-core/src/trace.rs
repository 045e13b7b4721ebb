//! Trace events: every segment sent or received and every state change.
//!
//! A [`Stack`](crate::Stack) records events only while tracing is on, so a
//! busy stack pays nothing for them. The same events feed the ladder
//! diagram, the plots and the statistics; see [`ladder`] for the renderer.

pub mod analysis;
pub mod ladder;

use crate::stats::DropReason;
use crate::tcp::State;
use crate::time::{Duration, Instant};
use crate::wire::TcpRepr;
use std::net::SocketAddrV4;

/// Direction of a segment relative to the stack that recorded it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Sent,
    Received,
}

/// Which timer fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    Retransmit,
    Persist,
    DelayedAck,
    TimeWait,
    FinWait2,
    Keepalive,
}

#[derive(Clone, Debug, PartialEq)]
pub enum EventKind {
    /// A connection moved between states.
    TcpState { local: SocketAddrV4, remote: SocketAddrV4, from: State, to: State },
    /// A segment left or reached a connection (or, for RSTs to closed
    /// ports, the stack).
    TcpSegment {
        direction: Direction,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        repr: TcpRepr,
        payload_len: usize,
        /// A sent segment that carries sequence space sent before.
        retransmission: bool,
    },
    /// A TCP timer expired.
    TcpTimer { local: SocketAddrV4, remote: SocketAddrV4, timer: Timer, rto: Duration, backoff: u32 },
    /// Congestion state after it changed, for plots.
    TcpCongestion {
        local: SocketAddrV4,
        remote: SocketAddrV4,
        cwnd: usize,
        ssthresh: usize,
        in_flight: usize,
        srtt: Option<Duration>,
        rto: Duration,
    },
    /// A packet was dropped.
    Drop { reason: DropReason },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub time: Instant,
    pub kind: EventKind,
}

/// Collects events while enabled.
#[derive(Debug, Default)]
pub struct Tracer {
    enabled: bool,
    events: Vec<Event>,
}

impl Tracer {
    pub fn set_enabled(&mut self, on: bool) {
        self.enabled = on;
    }
    #[inline]
    pub fn enabled(&self) -> bool {
        self.enabled
    }
    /// Records an event while tracing is on, and logs it when the
    /// `ustack::tcp` target is enabled (see [`crate::log`]); `kind` is
    /// built only if either wants it.
    #[inline]
    pub fn record(&mut self, time: Instant, kind: impl FnOnce() -> EventKind) {
        let log = crate::log::wanted();
        if self.enabled || log {
            let kind = kind();
            if log {
                crate::log::event(time, &kind);
            }
            if self.enabled {
                self.events.push(Event { time, kind });
            }
        }
    }
    pub fn take(&mut self) -> Vec<Event> {
        core::mem::take(&mut self.events)
    }
    pub fn events(&self) -> &[Event] {
        &self.events
    }
}
