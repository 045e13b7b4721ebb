//! The simulated wire: a deterministic discrete-event network with virtual
//! time.
//!
//! A [`Network`] owns [`Node`]s (hosts, a [`Switch`], a programmable
//! [`Middlebox`] that drops, rewrites or injects chosen frames, packet
//! generators) joined by full-duplex point-to-point links. Each direction
//! of a link has its own [`LinkConfig`]: delay, jitter, bandwidth with a
//! drop-tail queue, independent and bursty loss, duplication, reordering,
//! corruption, an MTU, and an up/down switch. The clock is virtual:
//! [`Network::step`] jumps straight to the next thing that happens, so
//! hours of traffic run in seconds. Every random choice comes from
//! [`Rng`](crate::rand::Rng)s seeded from the network's seed, so the same
//! seed and the same inputs give the same run, byte for byte.
//!
//! The simulator knows nothing about the frames it carries (apart from the
//! switch reading MAC addresses); any bytes are fine.
//!
//! # What happens in one instant
//!
//! [`Network::step`] moves the clock to the earliest pending event (a frame
//! arrival on any link, or the earliest [`Node::poll_timeout`]) and then, at
//! that instant, repeats until nothing more is due:
//! 1. frames due by now are delivered with [`Node::handle_frame`], in order
//!    of arrival time, then of the global sequence number given when sent
//!    (so two frames on one direction arrive in the order sent unless the
//!    link reorders them; frames from different links due at the same
//!    nanosecond arrive in the order they were sent);
//! 2. nodes whose deadline has come get [`Node::handle_timeout`], in the
//!    order they were added;
//! 3. every node, in the order added, is drained with
//!    [`Node::poll_transmit`] until it returns `None`; each frame goes onto
//!    the link at its port (a port with no link drops it, counted in
//!    [`NetworkStats::unconnected_drops`]).
//!
//! A zero-delay link can make that loop go on forever at one instant (two
//! nodes answering each other at once); after
//! [`Network::set_round_limit`] rounds the step fails with
//! [`SimError::Livelock`] (and [`Network::step`] panics saying so).
//!
//! Before choosing the next event each step also drains every node, so
//! frames queued by calls made between steps (an application calling
//! `connect` through [`Network::node_as_mut`]) leave at the current time.
//!
//! # Capture
//!
//! With [`Network::set_capture`] on, each frame put on a link becomes a
//! [`WireEvent`], and each copy made by duplication another one with
//! `duplicate_of` set. [`Network::take_capture`] hands over, in id (send)
//! order, the events whose fate is settled: frames delivered or dropped;
//! frames still on the wire stay until they land.

pub mod apps;
mod capture;
pub mod demo;
mod host;
mod link;
mod middlebox;
mod network;
pub mod scenario;
pub mod soak;
mod switch;

#[cfg(test)]
mod test_nodes;

pub use capture::{DropReason, Fate, WireEvent};
pub use host::{App, Host};
pub use link::{Direction, ETHERNET_HEADER_LEN, GilbertElliott, LinkConfig, LinkStats};
pub use middlebox::{Filter, Middlebox, MiddleboxStats, Verdict};
pub use network::{LinkId, Network, NetworkStats, NodeId, SimError, TX_BUF_LEN};
pub use switch::{MAC_TABLE_LIMIT, Switch, SwitchStats};

use crate::time::Instant;

/// Something attached to the simulated wire: a host (a Stack plus its
/// applications), a switch, a packet generator.
pub trait Node: core::any::Any {
    /// A frame arrived on interface `port`.
    fn handle_frame(&mut self, now: Instant, port: usize, frame: &[u8]);
    /// The next frame this node wants to send: written into `buf`
    /// (sized for the largest MTU in use, at least 65535+14 bytes);
    /// returns `(port, len)`. Called repeatedly until it returns None.
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<(usize, usize)>;
    /// The earliest instant at which `handle_timeout` must be called.
    fn poll_timeout(&mut self) -> Option<Instant>;
    fn handle_timeout(&mut self, now: Instant);
}
