//! The network: nodes, links, the event queue and the virtual clock.

use super::Node;
use super::capture::{DropReason, Fate, WireEvent};
use super::link::{Channel, Direction, ETHERNET_HEADER_LEN, LinkConfig, LinkStats, Verdict, flip_bit};
use crate::rand::Rng;
use crate::time::{Duration, Instant};
use core::any::Any;
use core::cmp::Ordering;
use core::fmt;
use std::collections::BinaryHeap;

/// Size of the buffer handed to [`Node::poll_transmit`]: the largest IPv4
/// packet plus an Ethernet header. It grows if a link is given a larger MTU.
pub const TX_BUF_LEN: usize = 65535 + ETHERNET_HEADER_LEN;

/// Rounds of deliver / timeout / transmit allowed at one instant by default.
const DEFAULT_ROUND_LIMIT: usize = 100_000;
/// Frames one node may emit in one drain before it is declared runaway.
const MAX_FRAMES_PER_DRAIN: usize = 1 << 24;
/// Frame buffers kept for reuse.
const POOL_LIMIT: usize = 1024;

/// A node of a [`Network`], in the order added.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(usize);

impl NodeId {
    pub fn index(self) -> usize {
        self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// A link of a [`Network`], in the order connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkId(usize);

impl LinkId {
    pub fn index(self) -> usize {
        self.0
    }
}

impl fmt::Display for LinkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "l{}", self.0)
    }
}

/// Why the simulation could not go on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimError {
    /// Frames or timeouts kept falling due at one instant for more rounds
    /// than the limit: usually two nodes answering each other over
    /// zero-delay links, or a node whose deadline stays in the past after
    /// `handle_timeout`.
    Livelock { at: Instant, rounds: usize },
    /// A node kept returning frames from `poll_transmit` without end.
    RunawayNode { at: Instant, node: NodeId },
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::Livelock { at, rounds } => write!(
                f,
                "simulation livelock at t={at}: still busy after {rounds} rounds at the same instant \
                 (zero-delay links carrying an endless exchange, or a node whose poll_timeout \
                 stays in the past); give a link some delay or raise Network::set_round_limit"
            ),
            SimError::RunawayNode { at, node } => write!(
                f,
                "simulation runaway at t={at}: node {node} returned more than {MAX_FRAMES_PER_DRAIN} \
                 frames from one poll_transmit drain"
            ),
        }
    }
}

impl std::error::Error for SimError {}

/// Counters of the whole network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetworkStats {
    /// Steps taken (instants processed).
    pub steps: u64,
    /// Frames nodes sent on a port with no link.
    pub unconnected_drops: u64,
}

struct NodeSlot {
    node: Box<dyn Node>,
    name: String,
    /// Per port: the channel that carries frames out of it.
    ports: Vec<Option<usize>>,
}

#[derive(Clone, Copy)]
struct LinkSlot {
    a: (NodeId, usize),
    b: (NodeId, usize),
}

/// A frame on the wire.
struct InFlight {
    at: Instant,
    id: u64,
    channel: usize,
    epoch: u64,
    frame: Vec<u8>,
    corrupted: bool,
    captured: bool,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.id == other.id
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InFlight {
    /// Reversed, so that the max-heap yields the earliest arrival, then the
    /// lowest id.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.id).cmp(&(self.at, self.id))
    }
}

struct Captured {
    event: WireEvent,
    settled: bool,
}

/// A simulated network with a virtual clock. See the [module](super) docs.
pub struct Network {
    now: Instant,
    seed: u64,
    node_seeds: Rng,
    nodes: Vec<NodeSlot>,
    links: Vec<LinkSlot>,
    /// Two per link: `2 * link + direction`.
    channels: Vec<Channel>,
    in_flight: BinaryHeap<InFlight>,
    next_id: u64,
    tx_buf: Vec<u8>,
    pool: Vec<Vec<u8>>,
    capturing: bool,
    capture: Vec<Captured>,
    round_limit: usize,
    stats: NetworkStats,
}

impl fmt::Debug for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Network")
            .field("now", &self.now)
            .field("seed", &self.seed)
            .field("nodes", &self.nodes.len())
            .field("links", &self.links.len())
            .field("in_flight", &self.in_flight.len())
            .finish_non_exhaustive()
    }
}

/// A well-mixed seed for stream `index` of kind `tag`.
fn derive_seed(seed: u64, tag: u64, index: u64) -> u64 {
    let mut r = Rng::new(seed ^ tag.rotate_left(32) ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    r.next_u64()
}

const TAG_CHANNEL: u64 = 0x6c69_6e6b; // "link"
const TAG_NODES: u64 = 0x6e6f_6465; // "node"

impl Network {
    /// An empty network at time zero. Each link direction draws from its
    /// own generator, derived from `seed` and the link's index, so a fault
    /// added to one link does not change what happens on the others.
    pub fn new(seed: u64) -> Self {
        Network {
            now: Instant::ZERO,
            seed,
            node_seeds: Rng::new(derive_seed(seed, TAG_NODES, 0)),
            nodes: Vec::new(),
            links: Vec::new(),
            channels: Vec::new(),
            in_flight: BinaryHeap::new(),
            next_id: 0,
            tx_buf: vec![0; TX_BUF_LEN],
            pool: Vec::new(),
            capturing: false,
            capture: Vec::new(),
            round_limit: DEFAULT_ROUND_LIMIT,
            stats: NetworkStats::default(),
        }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// A fresh seed for a node's own generator (a stack's ISNs, ports),
    /// from a stream derived from the network's seed.
    pub fn next_seed(&mut self) -> u64 {
        self.node_seeds.next_u64()
    }

    /// The virtual clock.
    pub fn now(&self) -> Instant {
        self.now
    }

    pub fn stats(&self) -> NetworkStats {
        self.stats
    }

    /// Rounds allowed at one instant before a step fails with
    /// [`SimError::Livelock`] (default 100 000).
    pub fn set_round_limit(&mut self, rounds: usize) {
        self.round_limit = rounds.max(1);
    }

    // ---- nodes ----

    pub fn add_node(&mut self, node: Box<dyn Node>) -> NodeId {
        let id = NodeId(self.nodes.len());
        self.nodes.push(NodeSlot { node, name: id.to_string(), ports: Vec::new() });
        id
    }

    /// `add_node` without the box.
    pub fn add<T: Node>(&mut self, node: T) -> NodeId {
        self.add_node(Box::new(node))
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn node_ids(&self) -> impl Iterator<Item = NodeId> + use<> {
        (0..self.nodes.len()).map(NodeId)
    }

    /// Panics if `id` is not a node of this network (as do all calls
    /// taking a `NodeId` or `LinkId`).
    pub fn node(&self, id: NodeId) -> &dyn Node {
        &*self.nodes[id.0].node
    }

    pub fn node_mut(&mut self, id: NodeId) -> &mut dyn Node {
        &mut *self.nodes[id.0].node
    }

    /// The node as its concrete type, or `None` if it is another type.
    pub fn node_as<T: Node>(&self, id: NodeId) -> Option<&T> {
        let any: &dyn Any = &*self.nodes[id.0].node;
        any.downcast_ref::<T>()
    }

    pub fn node_as_mut<T: Node>(&mut self, id: NodeId) -> Option<&mut T> {
        let any: &mut dyn Any = &mut *self.nodes[id.0].node;
        any.downcast_mut::<T>()
    }

    /// A label for traces and diagrams; `n<index>` unless set.
    pub fn node_name(&self, id: NodeId) -> &str {
        &self.nodes[id.0].name
    }

    pub fn set_node_name(&mut self, id: NodeId, name: impl Into<String>) {
        self.nodes[id.0].name = name.into();
    }

    // ---- links ----

    /// Joins port `a.1` of node `a.0` to port `b.1` of node `b.0` with a
    /// full-duplex link, each direction with its own copy of `config`.
    ///
    /// Panics if either endpoint is already connected or a node does not
    /// exist.
    pub fn connect(&mut self, a: (NodeId, usize), b: (NodeId, usize), config: LinkConfig) -> LinkId {
        assert!(a.0.0 < self.nodes.len() && b.0.0 < self.nodes.len(), "connect: no such node");
        assert!(a != b, "connect: a port cannot be linked to itself");
        for (node, port) in [a, b] {
            assert!(self.port_channel(node, port).is_none(), "connect: port {port} of {node} is already connected");
        }
        let link = LinkId(self.links.len());
        self.links.push(LinkSlot { a, b });
        for dir in Direction::BOTH {
            let index = 2 * link.0 + dir.index();
            self.channels.push(Channel::new(config.clone(), derive_seed(self.seed, TAG_CHANNEL, index as u64)));
        }
        self.bind_port(a, 2 * link.0);
        self.bind_port(b, 2 * link.0 + 1);
        self.fit_tx_buf(&config);
        link
    }

    fn bind_port(&mut self, (node, port): (NodeId, usize), channel: usize) {
        let ports = &mut self.nodes[node.0].ports;
        if ports.len() <= port {
            ports.resize(port + 1, None);
        }
        ports[port] = Some(channel);
    }

    fn port_channel(&self, node: NodeId, port: usize) -> Option<usize> {
        self.nodes.get(node.0)?.ports.get(port).copied().flatten()
    }

    fn fit_tx_buf(&mut self, config: &LinkConfig) {
        if let Some(mtu) = config.mtu {
            let want = mtu.saturating_add(ETHERNET_HEADER_LEN);
            if want > self.tx_buf.len() {
                self.tx_buf.resize(want, 0);
            }
        }
    }

    pub fn link_count(&self) -> usize {
        self.links.len()
    }

    /// The two endpoints given to `connect`, A first.
    pub fn link_endpoints(&self, link: LinkId) -> ((NodeId, usize), (NodeId, usize)) {
        let l = self.links[link.0];
        (l.a, l.b)
    }

    /// The link at a node's port and the direction that leaves from it.
    pub fn link_at(&self, node: NodeId, port: usize) -> Option<(LinkId, Direction)> {
        let ch = self.port_channel(node, port)?;
        Some((LinkId(ch / 2), channel_direction(ch)))
    }

    /// The endpoint at the other end of the link at `(node, port)`.
    pub fn peer(&self, node: NodeId, port: usize) -> Option<(NodeId, usize)> {
        let ch = self.port_channel(node, port)?;
        Some(self.channel_endpoints(ch).1)
    }

    fn channel_endpoints(&self, ch: usize) -> ((NodeId, usize), (NodeId, usize)) {
        let l = self.links[ch / 2];
        match channel_direction(ch) {
            Direction::AtoB => (l.a, l.b),
            Direction::BtoA => (l.b, l.a),
        }
    }

    fn channel(&self, link: LinkId, dir: Direction) -> &Channel {
        &self.channels[2 * link.0 + dir.index()]
    }

    fn channel_mut(&mut self, link: LinkId, dir: Direction) -> &mut Channel {
        &mut self.channels[2 * link.0 + dir.index()]
    }

    pub fn link_config(&self, link: LinkId, dir: Direction) -> &LinkConfig {
        &self.channel(link, dir).config
    }

    /// Direct access to one direction's settings. Prefer
    /// [`set_link_up`](Self::set_link_up) for outages: setting `up` to
    /// false here stops new frames and those arriving while it stays false,
    /// but does not flush the queue.
    pub fn link_config_mut(&mut self, link: LinkId, dir: Direction) -> &mut LinkConfig {
        &mut self.channel_mut(link, dir).config
    }

    /// Replaces one direction's settings (for asymmetric links).
    pub fn set_direction_config(&mut self, link: LinkId, dir: Direction, config: LinkConfig) {
        self.fit_tx_buf(&config);
        let now = self.now;
        self.channel_mut(link, dir).set_config(config, now);
    }

    /// Replaces both directions' settings.
    pub fn set_link_config(&mut self, link: LinkId, config: LinkConfig) {
        for dir in Direction::BOTH {
            self.set_direction_config(link, dir, config.clone());
        }
    }

    /// Brings both directions of a link up or down. Going down drops the
    /// frames waiting for bandwidth and every frame on the wire (each is
    /// counted in `down_drops` when it would have arrived), and every frame
    /// sent until the link comes back up.
    pub fn set_link_up(&mut self, link: LinkId, up: bool) {
        for dir in Direction::BOTH {
            self.set_direction_up(link, dir, up);
        }
    }

    pub fn set_direction_up(&mut self, link: LinkId, dir: Direction, up: bool) {
        let config = self.channel(link, dir).config.clone().up(up);
        self.set_direction_config(link, dir, config);
    }

    pub fn link_stats(&self, link: LinkId, dir: Direction) -> LinkStats {
        self.channel(link, dir).stats
    }

    /// Frames on the wire (or waiting for bandwidth) right now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    // ---- capture ----

    /// Starts or stops recording [`WireEvent`]s. Stopping keeps what was
    /// recorded (and still settles frames already on the wire).
    pub fn set_capture(&mut self, on: bool) {
        self.capturing = on;
    }

    pub fn capture_enabled(&self) -> bool {
        self.capturing
    }

    /// Drains the recorded events whose fate is settled, in id order.
    /// Frames still on the wire stay until they are delivered or dropped.
    pub fn take_capture(&mut self) -> Vec<WireEvent> {
        let mut settled = Vec::new();
        let mut pending = Vec::new();
        for c in self.capture.drain(..) {
            if c.settled {
                settled.push(c.event);
            } else {
                pending.push(c);
            }
        }
        self.capture = pending;
        settled
    }

    fn settle(&mut self, id: u64, lost: Option<DropReason>) {
        if let Ok(i) = self.capture.binary_search_by_key(&id, |c| c.event.id) {
            let c = &mut self.capture[i];
            c.settled = true;
            if let Some(reason) = lost {
                c.event.fate = Fate::Lost { at: self.now, reason };
                c.event.delivered_frame = None;
            }
        }
    }

    // ---- running ----

    /// The time of the next event: a frame arrival or a node's deadline
    /// (a deadline in the past counts as now). `None` when nothing at all
    /// is pending.
    pub fn next_event(&mut self) -> Option<Instant> {
        let mut next = self.in_flight.peek().map(|f| f.at);
        for slot in &mut self.nodes {
            if let Some(t) = slot.node.poll_timeout() {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        }
        next.map(|t| t.max(self.now))
    }

    /// Advances to the next event and processes everything due at that
    /// instant. Returns false, without moving the clock, when nothing is
    /// pending.
    ///
    /// Panics on a [`SimError`]; see [`try_step`](Self::try_step).
    pub fn step(&mut self) -> bool {
        self.try_step().unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn try_step(&mut self) -> Result<bool, SimError> {
        self.advance(Instant::FAR_FUTURE)
    }

    /// Processes every event up to and including `t`, then sets the clock
    /// to `t` (if it is later).
    pub fn run_until(&mut self, t: Instant) {
        while self.checked(|n| n.advance(t)) {}
        self.now = self.now.max(t);
    }

    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    /// Runs until nothing is pending (true; the clock stays at the last
    /// event) or the next event is after `limit` (false; the clock is set
    /// to `limit`).
    pub fn run_until_idle(&mut self, limit: Instant) -> bool {
        while self.checked(|n| n.advance(limit)) {}
        if self.next_event().is_none() {
            true
        } else {
            self.now = self.now.max(limit);
            false
        }
    }

    /// Steps while `keep_going` returns true, checking it before each step.
    /// Returns true once it returns false; false if the next event is
    /// after `limit` (the clock is then set to `limit`) or nothing is
    /// pending any more while it still returns true.
    ///
    /// ```ignore
    /// assert!(net.run_while(Instant::from_secs(60), |n| !transfer_done(n)));
    /// ```
    pub fn run_while(&mut self, limit: Instant, mut keep_going: impl FnMut(&mut Network) -> bool) -> bool {
        loop {
            if !keep_going(self) {
                return true;
            }
            if !self.checked(|n| n.advance(limit)) {
                if self.next_event().is_some() {
                    self.now = self.now.max(limit);
                }
                return !keep_going(self);
            }
        }
    }

    fn checked<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, SimError>) -> T {
        f(self).unwrap_or_else(|e| panic!("{e}"))
    }

    /// One step if the next event is at or before `limit`.
    fn advance(&mut self, limit: Instant) -> Result<bool, SimError> {
        // Frames queued by calls made between steps leave now.
        self.drain()?;
        match self.next_event() {
            Some(t) if t <= limit => {
                self.now = t;
                self.stats.steps += 1;
                self.process_instant()?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn process_instant(&mut self) -> Result<(), SimError> {
        let mut rounds = 0;
        loop {
            while self.in_flight.peek().is_some_and(|f| f.at <= self.now) {
                if let Some(f) = self.in_flight.pop() {
                    self.deliver(f);
                }
            }
            let now = self.now;
            for slot in &mut self.nodes {
                if slot.node.poll_timeout().is_some_and(|t| t <= now) {
                    slot.node.handle_timeout(now);
                }
            }
            self.drain()?;
            if !self.due_now() {
                return Ok(());
            }
            rounds += 1;
            if rounds >= self.round_limit {
                return Err(SimError::Livelock { at: now, rounds });
            }
        }
    }

    fn due_now(&mut self) -> bool {
        let now = self.now;
        self.in_flight.peek().is_some_and(|f| f.at <= now)
            || self.nodes.iter_mut().any(|s| s.node.poll_timeout().is_some_and(|t| t <= now))
    }

    fn deliver(&mut self, f: InFlight) {
        let ch = &mut self.channels[f.channel];
        if !ch.deliverable(f.epoch) {
            ch.stats.down_drops += 1;
            if f.captured {
                self.settle(f.id, Some(DropReason::LinkDown));
            }
            self.recycle(f.frame);
            return;
        }
        ch.stats.frames_delivered += 1;
        ch.stats.bytes_delivered += f.frame.len() as u64;
        ch.stats.corrupted += f.corrupted as u64;
        if f.captured {
            self.settle(f.id, None);
        }
        let (_, (node, port)) = self.channel_endpoints(f.channel);
        self.nodes[node.0].node.handle_frame(self.now, port, &f.frame);
        self.recycle(f.frame);
    }

    fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.pool.len() < POOL_LIMIT {
            buf.clear();
            self.pool.push(buf);
        }
    }

    fn buffer_with(&mut self, frame: &[u8]) -> Vec<u8> {
        let mut buf = self.pool.pop().unwrap_or_default();
        buf.extend_from_slice(frame);
        buf
    }

    /// Calls every node's `poll_transmit` until it has nothing more.
    fn drain(&mut self) -> Result<(), SimError> {
        let mut buf = core::mem::take(&mut self.tx_buf);
        let result = self.drain_into(&mut buf);
        self.tx_buf = buf;
        result
    }

    fn drain_into(&mut self, buf: &mut [u8]) -> Result<(), SimError> {
        let now = self.now;
        for i in 0..self.nodes.len() {
            let mut frames = 0;
            while let Some((port, len)) = self.nodes[i].node.poll_transmit(now, buf) {
                frames += 1;
                if frames > MAX_FRAMES_PER_DRAIN {
                    return Err(SimError::RunawayNode { at: now, node: NodeId(i) });
                }
                let len = len.min(buf.len());
                self.put_on_wire(NodeId(i), port, &buf[..len]);
            }
        }
        Ok(())
    }

    fn put_on_wire(&mut self, from: NodeId, port: usize, frame: &[u8]) {
        let Some(ch) = self.port_channel(from, port) else {
            self.stats.unconnected_drops += 1;
            return;
        };
        let now = self.now;
        let id = self.next_id;
        self.next_id += 1;
        let verdict = self.channels[ch].offer(now, frame.len());
        let epoch = self.channels[ch].epoch;
        match verdict {
            Verdict::Drop(reason) => {
                if self.capturing {
                    self.record(id, ch, frame, None, None, Fate::Lost { at: now, reason }, true);
                }
            }
            Verdict::Deliver { at, flip, copy } => {
                self.launch(id, ch, epoch, frame, at, flip, None);
                if let Some((copy_at, copy_flip)) = copy {
                    let copy_id = self.next_id;
                    self.next_id += 1;
                    self.launch(copy_id, ch, epoch, frame, copy_at, copy_flip, Some(id));
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn launch(
        &mut self,
        id: u64,
        channel: usize,
        epoch: u64,
        frame: &[u8],
        at: Instant,
        flip: Option<usize>,
        duplicate_of: Option<u64>,
    ) {
        let mut buf = self.buffer_with(frame);
        if let Some(bit) = flip {
            flip_bit(&mut buf, bit);
        }
        let captured = self.capturing;
        if captured {
            let delivered = flip.map(|_| buf.clone());
            let fate = Fate::Delivered { at, corrupted: flip.is_some() };
            self.record(id, channel, frame, delivered, duplicate_of, fate, false);
        }
        self.in_flight.push(InFlight { at, id, channel, epoch, frame: buf, corrupted: flip.is_some(), captured });
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        id: u64,
        channel: usize,
        frame: &[u8],
        delivered_frame: Option<Vec<u8>>,
        duplicate_of: Option<u64>,
        fate: Fate,
        settled: bool,
    ) {
        let (from, to) = self.channel_endpoints(channel);
        self.capture.push(Captured {
            event: WireEvent {
                id,
                sent_at: self.now,
                from,
                to,
                link: LinkId(channel / 2),
                direction: channel_direction(channel),
                frame: frame.to_vec(),
                delivered_frame,
                duplicate_of,
                fate,
            },
            settled,
        });
    }
}

fn channel_direction(ch: usize) -> Direction {
    match ch % 2 {
        0 => Direction::AtoB,
        _ => Direction::BtoA,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::test_nodes::{Host, eth, numbered, seq_of};
    use crate::sim::{GilbertElliott, Switch};

    const MS: Duration = Duration::from_millis(1);
    const US: Duration = Duration::from_micros(1);

    /// Two hosts, `a` port 0 to `b` port 0.
    fn pair(seed: u64, config: LinkConfig) -> (Network, NodeId, NodeId, LinkId) {
        let mut net = Network::new(seed);
        let a = net.add(Host::new());
        let b = net.add(Host::new());
        let link = net.connect((a, 0), (b, 0), config);
        (net, a, b, link)
    }

    fn host(net: &mut Network, id: NodeId) -> &mut Host {
        net.node_as_mut::<Host>(id).expect("a Host")
    }

    /// `n` numbered frames of `len` bytes from `from`, one every `gap`
    /// starting at `start`.
    fn blast(net: &mut Network, from: NodeId, n: u32, len: usize, start: Instant, gap: Duration) {
        let h = host(net, from);
        for i in 0..n {
            h.send_at(start + gap * i, 0, numbered(i, len));
        }
    }

    fn received(net: &Network, id: NodeId) -> &[(Instant, usize, Vec<u8>)] {
        &net.node_as::<Host>(id).unwrap().received
    }

    fn assert_balanced(s: &LinkStats) {
        assert_eq!(s.frames_sent + s.duplicated, s.frames_delivered + s.dropped(), "{s:?}");
    }

    #[test]
    fn delay_is_exact() {
        let (mut net, a, b, _) = pair(1, LinkConfig::default());
        host(&mut net, a).send_at(Instant::ZERO, 0, numbered(0, 60));
        host(&mut net, a).send_at(Instant::from_millis(3), 0, numbered(1, 60));
        assert!(net.run_until_idle(Instant::from_secs(1)));
        let got = received(&net, b);
        assert_eq!(got[0].0, Instant::from_millis(1));
        assert_eq!(got[1].0, Instant::from_millis(4));
        assert_eq!(got[0].2, numbered(0, 60));

        let (mut net, a, b, _) = pair(1, LinkConfig::default().delay(5 * MS));
        host(&mut net, a).send_at(Instant::from_millis(3), 0, numbered(0, 60));
        net.run_until_idle(Instant::from_secs(1));
        assert_eq!(received(&net, b)[0].0, Instant::from_millis(8));
        assert_eq!(net.now(), Instant::from_millis(8));
    }

    #[test]
    fn bandwidth_serializes_frames_back_to_back() {
        // 1500 bytes at 12 Mbit/s is exactly 1 ms.
        let cfg = LinkConfig::default().delay(MS).bandwidth_bps(12_000_000);
        let (mut net, a, b, link) = pair(1, cfg);
        blast(&mut net, a, 5, 1500, Instant::ZERO, Duration::ZERO);
        // After the queue has drained, a lone frame goes at once.
        host(&mut net, a).send_at(Instant::from_millis(20), 0, numbered(5, 1500));
        net.run_until_idle(Instant::from_secs(1));
        let times: Vec<u64> = received(&net, b).iter().map(|r| r.0.as_micros()).collect();
        assert_eq!(times, vec![2000, 3000, 4000, 5000, 6000, 22_000]);
        assert_eq!(host(&mut net, b).seqs(), vec![0, 1, 2, 3, 4, 5]);
        let s = net.link_stats(link, Direction::AtoB);
        assert_eq!((s.frames_sent, s.frames_delivered, s.bytes_delivered), (6, 6, 9000));
        // The other direction is untouched.
        assert_eq!(net.link_stats(link, Direction::BtoA), LinkStats::default());
    }

    #[test]
    fn drop_tail_queue() {
        let cfg = LinkConfig::default().bandwidth_bps(12_000_000).queue_limit_bytes(Some(3000));
        let (mut net, a, b, link) = pair(1, cfg);
        blast(&mut net, a, 10, 1500, Instant::ZERO, Duration::ZERO);
        net.run_until_idle(Instant::from_secs(1));
        // One on the wire and two waiting; the other seven fall off the tail.
        assert_eq!(host(&mut net, b).seqs(), vec![0, 1, 2]);
        let s = net.link_stats(link, Direction::AtoB);
        assert_eq!(s.queue_drops, 7);
        assert_balanced(&s);
    }

    fn run_10k(seed: u64, cfg: LinkConfig) -> (LinkStats, Vec<(Instant, usize, Vec<u8>)>) {
        let (mut net, a, b, link) = pair(seed, cfg);
        blast(&mut net, a, 10_000, 100, Instant::ZERO, 100 * US);
        assert!(net.run_until_idle(Instant::from_secs(10)));
        let s = net.link_stats(link, Direction::AtoB);
        assert_eq!(s.frames_sent, 10_000);
        assert_balanced(&s);
        (s, received(&net, b).to_vec())
    }

    fn near(value: u64, expected: u64, tolerance: u64) {
        assert!(value.abs_diff(expected) <= tolerance, "{value} not within {tolerance} of {expected}");
    }

    #[test]
    fn loss_happens_at_its_rate() {
        let (s, got) = run_10k(11, LinkConfig::default().loss(0.1));
        near(s.lost, 1000, 150);
        assert_eq!(got.len() as u64, 10_000 - s.lost);
        assert_eq!(s.dropped(), s.lost);
    }

    #[test]
    fn duplication_happens_at_its_rate() {
        let (s, got) = run_10k(12, LinkConfig::default().duplicate(0.05));
        near(s.duplicated, 500, 110);
        assert_eq!(got.len() as u64, 10_000 + s.duplicated);
    }

    #[test]
    fn corruption_happens_at_its_rate() {
        let (s, got) = run_10k(13, LinkConfig::default().corrupt(0.02));
        near(s.corrupted, 200, 70);
        // Corruption may hit the sequence number itself, so compare each
        // arrival with what was sent at that position (order is kept).
        let damaged = got.iter().enumerate().filter(|(i, (_, _, f))| *f != numbered(*i as u32, 100)).count();
        assert_eq!(damaged as u64, s.corrupted);
    }

    #[test]
    fn reordering_happens_at_its_rate() {
        let (s, got) = run_10k(14, LinkConfig::default().reorder(0.1).reorder_delay(MS));
        near(s.reordered, 1000, 150);
        assert_eq!(got.len(), 10_000);
        // Every held-back frame is overtaken by the next ten sent after it.
        let seqs: Vec<u32> = got.iter().filter_map(|r| seq_of(&r.2)).collect();
        let late = seqs.windows(2).filter(|w| w[0] > w[1]).count();
        assert!(late as u64 >= s.reordered * 9 / 10, "{late} vs {}", s.reordered);
    }

    #[test]
    fn burst_loss_happens_at_its_rate_in_bursts() {
        let ge = GilbertElliott::with_mean_burst(0.05, 4.0);
        let (s, got) = run_10k(15, LinkConfig::default().burst(ge));
        near(s.burst_lost, 500, 250);
        assert_eq!(s.lost, 0);
        // Runs of consecutive losses average about four frames.
        let seqs: Vec<u32> = got.iter().filter_map(|r| seq_of(&r.2)).collect();
        let gaps: Vec<u32> = seqs.windows(2).map(|w| w[1] - w[0] - 1).filter(|&g| g > 0).collect();
        let mean = gaps.iter().sum::<u32>() as f64 / gaps.len() as f64;
        assert!((2.5..6.0).contains(&mean), "mean burst {mean}");

        // Independent loss at the same rate comes in runs of about one.
        let (_, got) = run_10k(15, LinkConfig::default().loss(0.05));
        let seqs: Vec<u32> = got.iter().filter_map(|r| seq_of(&r.2)).collect();
        let gaps: Vec<u32> = seqs.windows(2).map(|w| w[1] - w[0] - 1).filter(|&g| g > 0).collect();
        let mean = gaps.iter().sum::<u32>() as f64 / gaps.len() as f64;
        assert!(mean < 1.3, "mean run {mean}");
    }

    #[test]
    fn all_faults_together_balance() {
        let cfg = LinkConfig::default()
            .jitter(2 * MS)
            .bandwidth_bps(5_000_000)
            .queue_limit_bytes(Some(3000))
            .loss(0.05)
            .burst(GilbertElliott::new(0.01, 0.3, 0.8))
            .duplicate(0.05)
            .duplicate_delay(10 * US)
            .reorder(0.05)
            .corrupt(0.05)
            .mtu(86);
        let (s, got) = run_10k(16, cfg);
        assert!(s.lost > 0 && s.burst_lost > 0 && s.duplicated > 0);
        assert!(s.reordered > 0 && s.corrupted > 0 && s.queue_drops > 0);
        assert_eq!(s.mtu_drops, 0);
        assert_eq!(got.len() as u64, s.frames_delivered);
    }

    #[test]
    fn jitter_does_not_reorder() {
        let cfg = LinkConfig::default().delay(MS).jitter(5 * MS);
        // Dense traffic: jitter far above the spacing, order kept.
        let (mut net, a, b, _) = pair(3, cfg.clone());
        blast(&mut net, a, 2000, 64, Instant::ZERO, 100 * US);
        net.run_until_idle(Instant::from_secs(10));
        let h = host(&mut net, b);
        assert_eq!(h.seqs(), (0..2000).collect::<Vec<u32>>());
        assert!(h.received.windows(2).all(|w| w[0].0 <= w[1].0));
        assert!(h.received.windows(2).any(|w| w[0].0 == w[1].0));

        // Sparse traffic: each delay is uniform in [1, 6) ms.
        let (mut net, a, b, _) = pair(3, cfg);
        blast(&mut net, a, 2000, 64, Instant::ZERO, 10 * MS);
        net.run_until_idle(Instant::from_secs(100));
        let h = host(&mut net, b);
        assert_eq!(h.seqs(), (0..2000).collect::<Vec<u32>>());
        let delays: Vec<u64> = h
            .received
            .iter()
            .enumerate()
            .map(|(i, r)| (r.0 - Instant::from_millis(10 * i as u64)).as_micros() as u64)
            .collect();
        assert!(delays.iter().all(|&d| (1000..6000).contains(&d)));
        assert!(*delays.iter().min().unwrap() < 1100);
        assert!(*delays.iter().max().unwrap() > 5900);
        let mean = delays.iter().sum::<u64>() / 2000;
        near(mean, 3500, 150);
    }

    #[test]
    fn reorder_lets_later_frames_overtake() {
        let cfg = LinkConfig::default().reorder(0.2).reorder_delay(3 * MS);
        let (mut net, a, b, link) = pair(4, cfg);
        blast(&mut net, a, 200, 64, Instant::ZERO, 100 * US);
        net.run_until_idle(Instant::from_secs(10));
        let mut seqs = host(&mut net, b).seqs();
        assert_ne!(seqs, (0..200).collect::<Vec<u32>>());
        let s = net.link_stats(link, Direction::AtoB);
        assert!(s.reordered > 10);
        seqs.sort_unstable();
        assert_eq!(seqs, (0..200).collect::<Vec<u32>>());
    }

    #[test]
    fn corruption_flips_exactly_one_bit() {
        let (mut net, a, b, link) = pair(5, LinkConfig::default().corrupt(1.0));
        net.set_capture(true);
        blast(&mut net, a, 300, 80, Instant::ZERO, 100 * US);
        net.run_until_idle(Instant::from_secs(10));
        let got = received(&net, b).to_vec();
        assert_eq!(got.len(), 300);
        for (i, (_, _, f)) in got.iter().enumerate() {
            let sent = numbered(i as u32, 80);
            let bits: u32 = sent.iter().zip(f).map(|(x, y)| (x ^ y).count_ones()).sum();
            assert_eq!(bits, 1);
        }
        assert_eq!(net.link_stats(link, Direction::AtoB).corrupted, 300);
        let cap = net.take_capture();
        assert_eq!(cap.len(), 300);
        for (ev, (_, _, arrived)) in cap.iter().zip(&got) {
            assert!(ev.is_corrupted());
            assert_eq!(ev.arrived_frame(), Some(&arrived[..]));
            let bit = ev.flipped_bit().unwrap();
            let mut fixed = arrived.clone();
            fixed[bit / 8] ^= 0x80 >> (bit % 8);
            assert_eq!(fixed, ev.frame);
        }
        // The flipped bits land all over the frame.
        let bits: std::collections::BTreeSet<usize> = cap.iter().filter_map(|e| e.flipped_bit()).collect();
        assert!(bits.len() > 150);
        // An empty frame cannot be corrupted, and is not counted.
        host(&mut net, a).send_now(0, Vec::new());
        net.run_until_idle(Instant::from_secs(20));
        assert_eq!(received(&net, b).last().unwrap().2, Vec::<u8>::new());
        assert_eq!(net.link_stats(link, Direction::AtoB).corrupted, 300);
    }

    #[test]
    fn duplicates_arrive_twice() {
        let cfg = LinkConfig::default().duplicate(1.0).duplicate_delay(50 * US);
        let (mut net, a, b, link) = pair(6, cfg);
        net.set_capture(true);
        blast(&mut net, a, 10, 64, Instant::ZERO, MS);
        net.run_until_idle(Instant::from_secs(1));
        let got = received(&net, b).to_vec();
        assert_eq!(got.len(), 20);
        for (i, pair) in got.chunks(2).enumerate() {
            assert_eq!(pair[0].2, numbered(i as u32, 64));
            assert_eq!(pair[1].2, pair[0].2);
            assert_eq!(pair[1].0 - pair[0].0, 50 * US);
        }
        let s = net.link_stats(link, Direction::AtoB);
        assert_eq!((s.frames_sent, s.duplicated, s.frames_delivered), (10, 10, 20));
        let cap = net.take_capture();
        assert_eq!(cap.len(), 20);
        for pair in cap.chunks(2) {
            assert_eq!(pair[0].duplicate_of, None);
            assert_eq!(pair[1].duplicate_of, Some(pair[0].id));
            assert_eq!(pair[1].id, pair[0].id + 1);
            assert_eq!(pair[1].sent_at, pair[0].sent_at);
            assert_eq!(pair[1].frame, pair[0].frame);
        }
    }

    #[test]
    fn duplicate_with_zero_delay_arrives_right_after_the_original() {
        let (mut net, a, b, _) = pair(6, LinkConfig::default().duplicate(1.0));
        blast(&mut net, a, 3, 64, Instant::ZERO, Duration::ZERO);
        net.run_until_idle(Instant::from_secs(1));
        assert_eq!(host(&mut net, b).seqs(), vec![0, 0, 1, 1, 2, 2]);
    }

    #[test]
    fn link_down_drops_sent_and_in_flight_frames() {
        let cfg = LinkConfig::default().delay(10 * MS);
        let (mut net, a, b, link) = pair(7, cfg);
        net.set_capture(true);
        blast(&mut net, a, 100, 64, Instant::ZERO, MS);
        net.run_until(Instant::from_micros(30_500));
        net.set_link_up(link, false);
        net.run_until(Instant::from_micros(60_500));
        net.set_link_up(link, true);
        net.run_until_idle(Instant::from_secs(1));
        // Sent up to 20 ms: arrived by 30 ms. Sent at 21..=30 ms: on the
        // wire at the outage. Sent at 31..=60 ms: into a dead link.
        let expected: Vec<u32> = (0..=20).chain(61..100).collect();
        assert_eq!(host(&mut net, b).seqs(), expected);
        let s = net.link_stats(link, Direction::AtoB);
        assert_eq!(s.down_drops, 40);
        assert_balanced(&s);
        let cap = net.take_capture();
        let dead: Vec<&WireEvent> = cap.iter().filter(|e| e.drop_reason() == Some(DropReason::LinkDown)).collect();
        assert_eq!(dead.len(), 40);
        for e in dead {
            let seq = seq_of(&e.frame).unwrap();
            let Fate::Lost { at, .. } = e.fate else { unreachable!() };
            if seq <= 30 {
                // Dropped when it would have arrived.
                assert_eq!(at, e.sent_at + 10 * MS);
            } else {
                assert_eq!(at, e.sent_at);
            }
        }
    }

    #[test]
    fn a_short_outage_still_kills_frames_on_the_wire() {
        let cfg = LinkConfig::default().delay(10 * MS);
        let (mut net, a, b, link) = pair(7, cfg);
        blast(&mut net, a, 50, 64, Instant::ZERO, MS);
        net.run_until(Instant::from_micros(30_500));
        net.set_direction_up(link, Direction::AtoB, false);
        net.run_until(Instant::from_micros(31_500));
        net.set_direction_up(link, Direction::AtoB, true);
        net.run_until_idle(Instant::from_secs(1));
        let expected: Vec<u32> = (0..=20).chain(32..50).collect();
        assert_eq!(host(&mut net, b).seqs(), expected);
        assert_eq!(net.link_stats(link, Direction::AtoB).down_drops, 11);
    }

    #[test]
    fn link_down_flushes_the_bandwidth_queue() {
        let cfg = LinkConfig::default().bandwidth_bps(12_000_000);
        let (mut net, a, b, link) = pair(7, cfg);
        blast(&mut net, a, 10, 1500, Instant::ZERO, Duration::ZERO);
        net.run_until(Instant::from_micros(2500));
        net.set_link_up(link, false);
        net.set_link_up(link, true);
        // A frame sent now does not wait behind the flushed queue.
        host(&mut net, a).send_now(0, numbered(99, 1500));
        net.run_until_idle(Instant::from_secs(1));
        let h = host(&mut net, b);
        assert_eq!(h.seqs(), vec![0, 99]);
        assert_eq!(h.received[1].0, Instant::from_micros(2500 + 1000 + 1000));
        assert_eq!(net.link_stats(link, Direction::AtoB).down_drops, 9);
    }

    #[test]
    fn mtu_drops_oversized_frames() {
        let (mut net, a, b, link) = pair(8, LinkConfig::default().mtu(1000));
        net.set_capture(true);
        host(&mut net, a).send_now(0, numbered(0, 1014));
        host(&mut net, a).send_now(0, numbered(1, 1015));
        host(&mut net, a).send_now(0, numbered(2, 60));
        net.run_until_idle(Instant::from_secs(1));
        assert_eq!(host(&mut net, b).seqs(), vec![0, 2]);
        assert_eq!(net.link_stats(link, Direction::AtoB).mtu_drops, 1);
        let cap = net.take_capture();
        assert_eq!(cap[1].drop_reason(), Some(DropReason::Mtu));
    }

    #[test]
    fn big_mtu_grows_the_transmit_buffer() {
        struct Probe(usize);
        impl Node for Probe {
            fn handle_frame(&mut self, _: Instant, _: usize, _: &[u8]) {}
            fn poll_transmit(&mut self, _: Instant, buf: &mut [u8]) -> Option<(usize, usize)> {
                self.0 = buf.len();
                None
            }
            fn poll_timeout(&mut self) -> Option<Instant> {
                None
            }
            fn handle_timeout(&mut self, _: Instant) {}
        }
        let mut net = Network::new(1);
        let p = net.add(Probe(0));
        let q = net.add(Probe(0));
        net.step();
        assert_eq!(net.node_as::<Probe>(p).unwrap().0, TX_BUF_LEN);
        net.connect((p, 0), (q, 0), LinkConfig::default().mtu(100_000));
        net.step();
        assert_eq!(net.node_as::<Probe>(p).unwrap().0, 100_014);
    }

    #[test]
    fn capture_records_fates() {
        let (mut net, a, b, link) = pair(9, LinkConfig::default().loss(0.3));
        net.set_node_name(a, "client");
        assert_eq!(net.node_name(a), "client");
        assert_eq!(net.node_name(b), "n1");
        net.set_capture(true);
        blast(&mut net, a, 200, 64, Instant::ZERO, 100 * US);
        host(&mut net, b).send_at(Instant::from_millis(5), 0, numbered(7777, 64));
        // Before anything lands, only the drops at send are settled.
        net.run_until(Instant::from_micros(50));
        let early = net.take_capture();
        assert!(early.iter().all(|e| !e.is_delivered()));
        net.run_until_idle(Instant::from_secs(1));
        let mut cap = early;
        cap.extend(net.take_capture());
        cap.sort_by_key(|e| e.id);
        assert!(net.take_capture().is_empty());
        assert_eq!(cap.len(), 201);
        let got = received(&net, b).to_vec();
        let delivered: Vec<&WireEvent> = cap.iter().filter(|e| e.is_delivered() && e.from.0 == a).collect();
        assert_eq!(delivered.len(), got.len());
        for (e, (t, port, f)) in delivered.iter().zip(&got) {
            assert_eq!(e.delivered_at(), Some(*t));
            assert_eq!(e.frame, *f);
            assert_eq!(e.to, (b, *port));
            assert_eq!(e.delivered_at(), Some(e.sent_at + MS));
            assert_eq!((e.link, e.direction), (link, Direction::AtoB));
            assert_eq!(e.delivered_frame, None);
        }
        let lost = cap.iter().filter(|e| !e.is_delivered()).count() as u64;
        assert!(cap.iter().filter(|e| !e.is_delivered()).all(|e| e.drop_reason() == Some(DropReason::Loss)));
        let s = net.link_stats(link, Direction::AtoB);
        let r = net.link_stats(link, Direction::BtoA);
        assert_eq!(lost, s.lost + r.lost);
        let back = cap.iter().find(|e| e.from.0 == b).unwrap();
        assert_eq!((back.to, back.direction), ((a, 0), Direction::BtoA));
        // Ids follow send order.
        assert!(cap.windows(2).all(|w| w[0].sent_at <= w[1].sent_at));
        assert!(cap[0].to_string().starts_with("#0 0.000000 n0:0 -> n1:0 64 bytes"));
    }

    #[test]
    fn capture_is_opt_in() {
        let (mut net, a, _, _) = pair(9, LinkConfig::default());
        blast(&mut net, a, 5, 64, Instant::ZERO, MS);
        net.run_until_idle(Instant::from_secs(1));
        assert!(!net.capture_enabled());
        assert!(net.take_capture().is_empty());
    }

    #[test]
    fn run_until_semantics() {
        let (mut net, a, b, _) = pair(1, LinkConfig::default());
        host(&mut net, a).send_at(Instant::ZERO, 0, numbered(0, 60));
        net.run_until(Instant::from_micros(500));
        assert_eq!(net.now(), Instant::from_micros(500));
        assert!(received(&net, b).is_empty());
        assert_eq!(net.in_flight(), 1);
        // An event exactly at the target is processed.
        net.run_until(Instant::from_millis(1));
        assert_eq!(received(&net, b).len(), 1);
        assert_eq!(net.now(), Instant::from_millis(1));
        // The clock never goes back.
        net.run_until(Instant::ZERO);
        assert_eq!(net.now(), Instant::from_millis(1));
        net.run_for(Duration::from_secs(2));
        assert_eq!(net.now(), Instant::from_millis(2001));
    }

    #[test]
    fn step_semantics() {
        let mut net = Network::new(1);
        assert!(!net.step());
        assert_eq!(net.now(), Instant::ZERO);
        let a = net.add(Host::new());
        let b = net.add(Host::new());
        net.connect((a, 0), (b, 0), LinkConfig::default());
        host(&mut net, a).send_at(Instant::from_millis(5), 0, numbered(0, 60));
        assert_eq!(net.next_event(), Some(Instant::from_millis(5)));
        assert!(net.step());
        assert_eq!(net.now(), Instant::from_millis(5));
        assert_eq!(host(&mut net, a).timeouts, vec![Instant::from_millis(5)]);
        assert!(net.step());
        assert_eq!(net.now(), Instant::from_millis(6));
        assert_eq!(received(&net, b).len(), 1);
        assert!(!net.step());
        assert_eq!(net.now(), Instant::from_millis(6));
        assert_eq!(net.stats().steps, 2);
    }

    #[test]
    fn run_until_idle_semantics() {
        let (mut net, a, _, _) = pair(1, LinkConfig::default());
        blast(&mut net, a, 3, 60, Instant::ZERO, 10 * MS);
        // Not idle by 15 ms: the clock stops at the limit.
        assert!(!net.run_until_idle(Instant::from_millis(15)));
        assert_eq!(net.now(), Instant::from_millis(15));
        // Idle after the last arrival at 21 ms: the clock stays there.
        assert!(net.run_until_idle(Instant::from_secs(1)));
        assert_eq!(net.now(), Instant::from_millis(21));
        assert!(net.next_event().is_none());
    }

    #[test]
    fn run_while_semantics() {
        let (mut net, a, b, _) = pair(1, LinkConfig::default());
        blast(&mut net, a, 5, 60, Instant::ZERO, 10 * MS);
        let three = |n: &mut Network| n.node_as::<Host>(b).unwrap().received.len() < 3;
        assert!(net.run_while(Instant::from_secs(60), three));
        assert_eq!(net.now(), Instant::from_millis(21));
        // The limit comes first: false, and the clock is at the limit.
        let all = |n: &mut Network| n.node_as::<Host>(b).unwrap().received.len() < 5;
        assert!(!net.run_while(Instant::from_millis(35), all));
        assert_eq!(net.now(), Instant::from_millis(35));
        assert!(net.run_while(Instant::from_secs(60), all));
        assert_eq!(net.now(), Instant::from_millis(41));
        // Idle with the condition never met: false, clock unchanged.
        let never = |n: &mut Network| n.node_as::<Host>(b).unwrap().received.len() < 6;
        assert!(!net.run_while(Instant::from_secs(60), never));
        assert_eq!(net.now(), Instant::from_millis(41));
        // Already met: true at once.
        assert!(net.run_while(Instant::from_secs(60), |_| false));
    }

    #[test]
    fn frames_queued_between_steps_leave_at_the_current_time() {
        let (mut net, a, b, _) = pair(1, LinkConfig::default());
        net.run_until(Instant::from_millis(7));
        // No timer: only the drain at the start of the step finds it.
        host(&mut net, a).send_now(0, numbered(0, 60));
        assert!(net.step());
        assert_eq!(received(&net, b)[0].0, Instant::from_millis(8));
    }

    #[test]
    fn zero_delay_exchanges_complete_in_one_instant() {
        let mut net = Network::new(1);
        let a = net.add(Host::new());
        let sw = net.add(Switch::new(2));
        let b = net.add(Host::echo());
        let zero = LinkConfig::default().delay(Duration::ZERO);
        net.connect((a, 0), (sw, 0), zero.clone());
        net.connect((sw, 1), (b, 0), zero);
        let frame = eth([0xff; 6], [2, 0, 0, 0, 0, 1], b"ping");
        host(&mut net, a).send_at(Instant::from_millis(3), 0, frame.clone());
        assert!(net.step());
        assert!(!net.step());
        assert_eq!(net.stats().steps, 1);
        assert_eq!(received(&net, b), &[(Instant::from_millis(3), 0, frame.clone())]);
        assert_eq!(received(&net, a), &[(Instant::from_millis(3), 0, frame)]);
    }

    #[test]
    fn zero_delay_ping_pong_is_reported_as_livelock() {
        let mut net = Network::new(1);
        let a = net.add(Host::echo());
        let b = net.add(Host::echo());
        net.connect((a, 0), (b, 0), LinkConfig::default().delay(Duration::ZERO));
        net.set_round_limit(50);
        host(&mut net, a).send_at(Instant::from_millis(2), 0, numbered(0, 60));
        assert_eq!(net.try_step(), Err(SimError::Livelock { at: Instant::from_millis(2), rounds: 50 }));
        let msg = SimError::Livelock { at: Instant::ZERO, rounds: 1 }.to_string();
        assert!(msg.contains("livelock"));
    }

    #[test]
    #[should_panic(expected = "livelock")]
    fn a_deadline_stuck_in_the_past_panics_in_step() {
        struct Stuck;
        impl Node for Stuck {
            fn handle_frame(&mut self, _: Instant, _: usize, _: &[u8]) {}
            fn poll_transmit(&mut self, _: Instant, _: &mut [u8]) -> Option<(usize, usize)> {
                None
            }
            fn poll_timeout(&mut self) -> Option<Instant> {
                Some(Instant::ZERO)
            }
            fn handle_timeout(&mut self, _: Instant) {}
        }
        let mut net = Network::new(1);
        net.add(Stuck);
        net.set_round_limit(10);
        net.step();
    }

    #[test]
    fn same_instant_arrivals_follow_send_order() {
        let mut net = Network::new(1);
        let x = net.add(Host::new());
        let y = net.add(Host::new());
        let z = net.add(Host::new());
        net.connect((x, 0), (z, 0), LinkConfig::default().delay(MS));
        net.connect((y, 0), (z, 1), LinkConfig::default().delay(2 * MS));
        // Both arrive at 2 ms; y's was sent first.
        host(&mut net, x).send_at(Instant::from_millis(1), 0, numbered(1, 60));
        host(&mut net, y).send_at(Instant::ZERO, 0, numbered(2, 60));
        // Sent in the same instant: node order decides.
        host(&mut net, y).send_at(Instant::from_millis(5), 0, numbered(4, 60));
        host(&mut net, x).send_at(Instant::from_millis(6), 0, numbered(3, 60));
        net.run_until_idle(Instant::from_secs(1));
        let got: Vec<(u64, usize, u32)> =
            received(&net, z).iter().map(|(t, p, f)| (t.as_millis(), *p, seq_of(f).unwrap())).collect();
        assert_eq!(got, vec![(2, 1, 2), (2, 0, 1), (7, 1, 4), (7, 0, 3)]);
    }

    #[test]
    fn asymmetric_directions() {
        let (mut net, a, b, link) = pair(1, LinkConfig::default());
        net.set_direction_config(link, Direction::BtoA, LinkConfig::default().delay(5 * MS));
        net.link_config_mut(link, Direction::AtoB).delay = 2 * MS;
        assert_eq!(net.link_config(link, Direction::AtoB).delay, 2 * MS);
        host(&mut net, a).send_now(0, numbered(0, 60));
        host(&mut net, b).send_now(0, numbered(1, 60));
        net.run_until_idle(Instant::from_secs(1));
        assert_eq!(received(&net, b)[0].0, Instant::from_millis(2));
        assert_eq!(received(&net, a)[0].0, Instant::from_millis(5));
        net.set_link_config(link, LinkConfig::default());
        assert_eq!(net.link_config(link, Direction::BtoA).delay, MS);
    }

    #[test]
    fn topology_queries() {
        let (mut net, a, b, link) = pair(1, LinkConfig::default());
        assert_eq!(net.link_endpoints(link), ((a, 0), (b, 0)));
        assert_eq!(net.link_at(b, 0), Some((link, Direction::BtoA)));
        assert_eq!(net.peer(a, 0), Some((b, 0)));
        assert_eq!(net.peer(a, 1), None);
        assert_eq!((net.node_count(), net.link_count()), (2, 1));
        assert!(net.node_as::<Switch>(a).is_none());
        assert!(net.node_as_mut::<Switch>(a).is_none());
        assert_eq!(net.node_ids().collect::<Vec<_>>(), vec![a, b]);
        let _: &mut dyn Node = net.node_mut(a);
        assert!(net.node(b).type_id() == core::any::TypeId::of::<Host>());
        assert_eq!(format!("{a} {link}"), "n0 l0");
    }

    #[test]
    fn unconnected_ports_drop_without_fuss() {
        let (mut net, a, b, _) = pair(1, LinkConfig::default());
        host(&mut net, a).send_now(3, numbered(0, 60));
        host(&mut net, a).send_now(usize::MAX, numbered(1, 60));
        net.run_until_idle(Instant::from_secs(1));
        assert!(received(&net, b).is_empty());
        assert_eq!(net.stats().unconnected_drops, 2);
    }

    #[test]
    #[should_panic(expected = "already connected")]
    fn a_port_takes_one_link() {
        let (mut net, a, b, _) = pair(1, LinkConfig::default());
        net.connect((b, 1), (a, 0), LinkConfig::default());
    }

    /// Three hosts and a switch with every kind of fault.
    fn busy_network(seed: u64) -> Network {
        let mut net = Network::new(seed);
        net.set_capture(true);
        let hosts: Vec<NodeId> = (0..3).map(|_| net.add(Host::echo())).collect();
        let sw = net.add(Switch::new(3));
        let cfg = LinkConfig::default()
            .delay(2 * MS)
            .jitter(MS)
            .bandwidth_bps(20_000_000)
            .queue_limit_bytes(Some(20_000))
            .loss(0.02)
            .burst(GilbertElliott::with_mean_burst(0.02, 3.0))
            .duplicate(0.02)
            .reorder(0.02)
            .corrupt(0.02);
        for (i, &h) in hosts.iter().enumerate() {
            net.connect((h, 0), (sw, i), cfg.clone());
        }
        let macs: Vec<[u8; 6]> = (0..3).map(|i| [2, 0, 0, 0, 0, i as u8]).collect();
        for (i, &h) in hosts.iter().enumerate() {
            let dst = macs[(i + 1) % 3];
            let h = host(&mut net, h);
            for k in 0..300u32 {
                let payload = numbered(k, 100 + (k as usize * 13) % 1300);
                h.send_at(Instant::from_micros(u64::from(k) * 700), 0, eth(dst, macs[i], &payload));
            }
        }
        // An echo goes back addressed to the echoing host itself, so the
        // switch filters it: the exchange ends.
        net.run_until(Instant::from_millis(400));
        net
    }

    #[test]
    fn same_seed_same_run() {
        let mut one = busy_network(42);
        let mut two = busy_network(42);
        let (c1, c2) = (one.take_capture(), two.take_capture());
        assert!(c1.len() > 2000, "{}", c1.len());
        assert_eq!(c1, c2);
        assert!(c1.iter().any(|e| e.is_corrupted()));
        assert!(c1.iter().any(|e| e.duplicate_of.is_some()));
        assert!(c1.iter().any(|e| !e.is_delivered()));
        for n in one.node_ids() {
            if let (Some(h1), Some(h2)) = (one.node_as::<Host>(n), two.node_as::<Host>(n)) {
                assert_eq!(h1.received, h2.received);
            }
        }
        let mut three = busy_network(43);
        assert_ne!(c1, three.take_capture());
    }

    #[test]
    fn faults_on_one_link_do_not_disturb_another() {
        let build = |lossy: bool| {
            let mut net = Network::new(77);
            let a = net.add(Host::new());
            let b = net.add(Host::new());
            let c = net.add(Host::new());
            let d = net.add(Host::new());
            let l1 = net.connect((a, 0), (b, 0), LinkConfig::default().loss(0.2));
            let other = LinkConfig::default().loss(if lossy { 0.5 } else { 0.0 });
            net.connect((c, 0), (d, 0), other);
            blast(&mut net, a, 500, 60, Instant::ZERO, 100 * US);
            blast(&mut net, c, 500, 60, Instant::ZERO, 100 * US);
            net.run_until_idle(Instant::from_secs(1));
            (host(&mut net, b).seqs(), net.link_stats(l1, Direction::AtoB))
        };
        assert_eq!(build(false), build(true));
    }

    #[test]
    fn next_seed_is_deterministic() {
        let mut x = Network::new(5);
        let mut y = Network::new(5);
        assert_eq!(x.next_seed(), y.next_seed());
        assert_ne!(x.next_seed(), Network::new(6).next_seed());
        assert_eq!(x.seed(), 5);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            /// Any bytes through any faults through a switch: no panic, and
            /// every frame is accounted for.
            #[test]
            fn arbitrary_frames_and_faults(
                seed in any::<u64>(),
                frames in proptest::collection::vec(
                    (0u64..5_000, proptest::collection::vec(any::<u8>(), 0..1600)),
                    0..60,
                ),
                loss in 0.0f64..1.0,
                dup in 0.0f64..1.0,
                reorder in 0.0f64..1.0,
                corrupt in 0.0f64..1.0,
                jitter in 0u64..3_000,
                bw in proptest::option::of(1_000u64..100_000_000),
                limit in proptest::option::of(0usize..10_000),
                mtu in proptest::option::of(0usize..2000),
            ) {
                let mut cfg = LinkConfig::default()
                    .jitter(Duration::from_micros(jitter))
                    .loss(loss)
                    .duplicate(dup)
                    .reorder(reorder)
                    .corrupt(corrupt)
                    .queue_limit_bytes(limit)
                    .burst(GilbertElliott::new(0.1, 0.3, 0.5));
                cfg.bandwidth_bps = bw;
                cfg.mtu = mtu;
                let mut net = Network::new(seed);
                let a = net.add(Host::new());
                let sw = net.add(Switch::new(3));
                let b = net.add(Host::new());
                let l1 = net.connect((a, 0), (sw, 0), cfg.clone());
                let l2 = net.connect((sw, 1), (b, 0), cfg);
                for (t, f) in frames {
                    host(&mut net, a).send_at(Instant::from_micros(t), 0, f);
                }
                prop_assert!(net.run_until_idle(Instant::from_secs(3600)));
                for l in [l1, l2] {
                    for d in Direction::BOTH {
                        assert_balanced(&net.link_stats(l, d));
                    }
                }
            }
        }
    }
}
