//! `ustack-core`: the sans-IO heart of ustack.
//!
//! Nothing in this crate reads a clock, touches a socket, spawns a thread or
//! draws a random number of its own. The caller supplies time (`now`) with
//! every call and seeds the random source once, so the same code runs in a
//! device driver, in the packetdrill runner and in the deterministic
//! simulator ([`sim`]).
//!
//! The layers, bottom up:
//! - [`wire`]: packet formats as checked zero-copy views plus `Repr` structs;
//! - [`ip`]: routes, the ARP neighbour cache, fragmentation and reassembly;
//! - [`tcp`] and [`udp`]: the transports;
//! - [`stack`]: one host: frames in, frames out, BSD-like socket calls;
//! - [`sim`]: a network of stacks over faulty links with virtual time;
//! - [`trace`]: events for every segment and state change, and renderers.
#![forbid(unsafe_code)]

pub mod hash;
pub mod ip;
pub mod log;
pub mod md5;
pub mod rand;
pub mod sim;
pub mod socket;
pub mod stack;
pub mod stats;
pub mod tcp;
pub mod time;
pub mod trace;
pub mod udp;
pub mod wire;

pub use socket::{Error, PmtuDiscovery, Shutdown, SocketHandle};
pub use stack::{Medium, Stack, StackConfig};
pub use time::{Duration, Instant};
