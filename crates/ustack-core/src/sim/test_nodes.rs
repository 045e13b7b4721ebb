//! Small nodes for the simulator's own tests.

use super::Node;
use crate::time::Instant;
use std::collections::VecDeque;

/// Sends frames at scheduled times, records what it receives, and can
/// echo every frame straight back.
#[derive(Debug, Default)]
pub struct Host {
    /// (when, port, frame), kept sorted by time (stable for equal times).
    schedule: VecDeque<(Instant, usize, Vec<u8>)>,
    outbox: VecDeque<(usize, Vec<u8>)>,
    pub received: Vec<(Instant, usize, Vec<u8>)>,
    /// Answer every frame at once with the same bytes on the same port.
    pub echo: bool,
    pub timeouts: Vec<Instant>,
}

impl Host {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn echo() -> Self {
        Host { echo: true, ..Self::default() }
    }

    pub fn send_at(&mut self, at: Instant, port: usize, frame: Vec<u8>) {
        let i = self.schedule.partition_point(|(t, _, _)| *t <= at);
        self.schedule.insert(i, (at, port, frame));
    }

    /// Queues a frame for the next `poll_transmit`, with no timer.
    pub fn send_now(&mut self, port: usize, frame: Vec<u8>) {
        self.outbox.push_back((port, frame));
    }

    /// Sequence numbers of the frames received, in order.
    pub fn seqs(&self) -> Vec<u32> {
        self.received.iter().filter_map(|(_, _, f)| seq_of(f)).collect()
    }
}

impl Node for Host {
    fn handle_frame(&mut self, now: Instant, port: usize, frame: &[u8]) {
        self.received.push((now, port, frame.to_vec()));
        if self.echo {
            self.outbox.push_back((port, frame.to_vec()));
        }
    }

    fn poll_transmit(&mut self, _now: Instant, buf: &mut [u8]) -> Option<(usize, usize)> {
        let (port, frame) = self.outbox.pop_front()?;
        buf[..frame.len()].copy_from_slice(&frame);
        Some((port, frame.len()))
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        self.schedule.front().map(|(t, _, _)| *t)
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.timeouts.push(now);
        while self.schedule.front().is_some_and(|(t, _, _)| *t <= now) {
            if let Some((_, port, frame)) = self.schedule.pop_front() {
                self.outbox.push_back((port, frame));
            }
        }
    }
}

/// A frame of `len` bytes (at least 4) starting with `seq`, big-endian,
/// the rest filled with a pattern.
pub fn numbered(seq: u32, len: usize) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len.max(4)).map(|i| (i * 7 + 3) as u8).collect();
    f[..4].copy_from_slice(&seq.to_be_bytes());
    f
}

pub fn seq_of(frame: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(frame.get(..4)?.try_into().ok()?))
}

/// An Ethernet II frame (type 0x88b5, local experimental).
pub fn eth(dst: [u8; 6], src: [u8; 6], payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x88, 0xb5]);
    f.extend_from_slice(payload);
    f
}
