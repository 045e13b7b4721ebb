//! One host: an interface, its addresses and routes, and its sockets.
//!
//! Frames go in through [`Stack::handle_frame`] (Ethernet) or
//! [`Stack::handle_ip_packet`] (a TUN device or a point-to-point link) and
//! come out of [`Stack::poll_transmit`]; [`Stack::poll_timeout`] says when
//! [`Stack::handle_timeout`] is next due. Applications use the BSD-like
//! calls (`tcp_socket`, `bind`, `listen`, `accept`, `connect`, `send`,
//! `recv`, `shutdown`, `close`, and the UDP ones). Every call takes the
//! caller's notion of time; nothing here reads a clock.
//!
//! The layers live in submodules: `ip` (IPv4, ARP, ICMP, the output path),
//! `tcp` (demultiplexing, listeners, the connection table) and `udp`.

mod ip;
mod options;
pub mod shard;
mod tcp;
mod udp;

use crate::hash::{KeyedMap, KeyedState};
use crate::ip::frag::{Reassembler, ReassemblyConfig};
use crate::ip::neighbor::{NeighborCache, NeighborConfig};
use crate::ip::pmtu::{PmtuCache, PmtuConfig};
use crate::ip::route::Routes;
use crate::rand::Rng;
use crate::socket::{Error, Shutdown, SocketHandle};
use crate::stats::Stats;
use crate::tcp::isn::IsnGenerator;
use crate::tcp::syncookie::SynCookies;
use crate::tcp::{Connection, Listener, State, TcpConfig, TcpInfo};
use crate::time::Instant;
use crate::trace::{Event, Tracer};
use crate::udp::UdpSocket;
use crate::wire::{ChecksumCaps, EthernetAddress, Ipv4Cidr};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

pub use ip::{EchoError, EchoReply, EchoRequest, IcmpError};
pub use shard::Shard;

/// What the interface carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Medium {
    /// Bare IPv4 packets (a TUN device, a point-to-point link).
    Ip,
    /// Ethernet II frames, with ARP (a TAP device, a simulated LAN).
    Ethernet,
}

/// How a stack is set up.
#[derive(Clone, Debug)]
pub struct StackConfig {
    pub medium: Medium,
    /// The interface's MAC address (Ethernet only).
    pub hardware_addr: EthernetAddress,
    /// The interface's addresses; the first is the default source.
    pub addresses: Vec<Ipv4Cidr>,
    /// Default route.
    pub gateway: Option<Ipv4Addr>,
    /// IP MTU of the interface (bytes of IP packet, not counting Ethernet).
    pub mtu: usize,
    /// Seeds the stack's random source: ISN key, SYN and Fast Open cookie
    /// keys, ephemeral ports, IP IDs. `Stack::new` (and the simulator)
    /// takes it as given, so a run can be replayed; on a real device
    /// `ustack::NetStack::start` replaces 0, the default, with a seed from
    /// the operating system.
    pub seed: u64,
    /// TTL of packets we originate (RFC 1122 §3.2.1.7; Linux uses 64).
    pub ttl: u8,
    /// Defaults for new TCP sockets.
    pub tcp: TcpConfig,
    pub neighbor: NeighborConfig,
    pub reassembly: ReassemblyConfig,
    /// The path MTUs ICMP taught, kept for new connections (RFC 1191 §6.3).
    pub pmtu: PmtuConfig,
    /// Ephemeral port range (Linux's default, RFC 6056 §3.2 discusses it).
    pub ephemeral_ports: (u16, u16),
    /// Most sockets open at once.
    pub max_sockets: usize,
    /// Most half-open connections per listener.
    pub max_half_open: usize,
    /// Largest backlog `listen` accepts (Linux `somaxconn`).
    pub max_backlog: usize,
    /// Answer SYNs with SYN cookies when a listener's SYN queue is full
    /// (RFC 4987 §3.6); off, such SYNs are dropped.
    pub syn_cookies: bool,
    /// RFC 5961 §7: the most challenge ACKs sent per second.
    pub challenge_ack_limit: u32,
    /// The most bytes all connections together may hold out of order.
    pub ooo_memory_limit: usize,
    /// The most bytes all TCP connections together may hold in their send
    /// and receive buffers (like Linux's `tcp_mem` hard limit). At the
    /// limit no connection takes more (writes return `WouldBlock`,
    /// arriving data past what fits is dropped, to be retransmitted, and
    /// the window does not open further), except up to
    /// [`crate::tcp::MEMORY_FLOOR`] bytes each. Each hit is counted in
    /// `TcpStats::memory_limited` (`limits.tcp_memory` in the JSON).
    pub tcp_memory_limit: usize,
    /// Answer segments to closed ports with RST (RFC 9293 §3.10.7.1) and
    /// UDP to closed ports with ICMP port unreachable; off is a "blackhole".
    pub reply_to_closed_ports: bool,
    /// Drop TCP segments with both SYN and FIN set that would open a
    /// connection: to a listener, or in SYN-SENT (FreeBSD's
    /// `net.inet.tcp.drop_synfin`). RFC 9293 gives such a segment a meaning
    /// (§3.10.7: the SYN, then the FIN, is processed), so this is off by
    /// default; on, it stops scans that use the combination. In a
    /// synchronized state the segment is processed as any SYN.
    pub drop_syn_fin: bool,
    /// TCP over UDP (FreeBSD's `net.inet.tcp.udp_tunneling_port`, after
    /// RFC 6951's SCTP over UDP): the UDP port on which the stack takes TCP
    /// segments carried in UDP datagrams, one segment per datagram right
    /// after the UDP header, and from which it sends those of its
    /// encapsulated connections (see `TcpConfig::udp_encap_port`). NATs and
    /// firewalls that pass only UDP then carry TCP. The UDP checksum covers
    /// the segment: with it present the TCP checksum is not checked (FreeBSD
    /// sends zero there; ustack fills both). An encapsulated connection's
    /// segments are 8 bytes smaller (its MSS, and what it learns of the path
    /// MTU, count the UDP header). A segment whose UDP source port is not
    /// its connection's is answered as one for no connection, with a RST.
    /// An ICMP error about an encapsulated segment reaches its connection
    /// when the router quoted the TCP header after the UDP one (as RFC 1812
    /// routers do; RFC 792's 8 bytes name only the tunnel).
    /// `None` (the default): no port is taken, and such datagrams go to UDP
    /// sockets as any others.
    pub tcp_over_udp_port: Option<u16>,
    /// Take packets to any unicast address as this host's (smoltcp's
    /// "any IP", Linux's IP_TRANSPARENT with a local route): for a stack
    /// that whole networks are routed to, as a VPN client's or a
    /// transparent proxy's TUN device is. A connection accepted for such
    /// an address has it as its local address (what a proxy needs to know
    /// where the peer meant to go: Linux's SO_ORIGINAL_DST), and its
    /// segments go out from it; sockets may bind to it; echo requests to it
    /// are answered from it. Off by default: a host takes only its own
    /// addresses (RFC 1122 §3.3.4.2). ARP still answers only for
    /// `addresses`.
    pub any_ip: bool,
    /// Most ICMP error messages per second (RFC 1812 §4.3.2.8 rate limit).
    pub icmp_error_rate: u32,
    pub checksum: ChecksumCaps,
    /// Most bytes queued per UDP socket, each way.
    pub udp_buffer: usize,
    /// This stack is one of several sharing the address on a multi-queue
    /// device: it picks only ports the device steers to it (see
    /// [`Shard`]). `None`: the only one.
    pub shard: Option<Shard>,
}

/// Where a catch-all listener ([`Stack::listen_any`]) or UDP socket
/// ([`Stack::udp_bind_any`]) is filed: no address, no port.
const CATCH_ALL: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0);

impl StackConfig {
    /// A stack on an IP-only interface (TUN) with one address.
    pub fn ip(address: Ipv4Cidr) -> Self {
        StackConfig {
            medium: Medium::Ip,
            hardware_addr: EthernetAddress([0x02, 0, 0, 0, 0, 1]),
            addresses: vec![address],
            gateway: None,
            mtu: 1500,
            seed: 0,
            ttl: 64,
            tcp: TcpConfig::default(),
            neighbor: NeighborConfig::default(),
            reassembly: ReassemblyConfig::default(),
            pmtu: PmtuConfig::default(),
            ephemeral_ports: (32768, 60999),
            max_sockets: 1 << 20,
            max_half_open: 1024,
            max_backlog: 4096,
            syn_cookies: true,
            reply_to_closed_ports: true,
            drop_syn_fin: false,
            tcp_over_udp_port: None,
            any_ip: false,
            challenge_ack_limit: 1000,
            ooo_memory_limit: 64 << 20,
            // 256 MiB: eight connections at the largest auto-tuned buffers
            // (16 MiB each way), or a thousand at the default 256 KiB, fit;
            // without it the bound would be max_sockets times 32 MiB.
            tcp_memory_limit: 256 << 20,
            icmp_error_rate: 1000,
            checksum: ChecksumCaps::default(),
            udp_buffer: 256 * 1024,
            shard: None,
        }
    }

    /// A stack on an Ethernet interface with one address.
    pub fn ethernet(hardware_addr: EthernetAddress, address: Ipv4Cidr) -> Self {
        StackConfig { medium: Medium::Ethernet, hardware_addr, ..Self::ip(address) }
    }

    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    pub fn with_gateway(mut self, gateway: Ipv4Addr) -> Self {
        self.gateway = Some(gateway);
        self
    }
    pub fn with_mtu(mut self, mtu: usize) -> Self {
        self.mtu = mtu;
        self
    }
    pub fn with_tcp(mut self, tcp: TcpConfig) -> Self {
        self.tcp = tcp;
        self
    }
}

/// A TCP socket in the table.
#[derive(Debug)]
pub(crate) enum TcpSocket {
    /// Created, maybe bound, not yet listening or connecting.
    Idle {
        local: Option<SocketAddrV4>,
        cfg: Arc<TcpConfig>,
    },
    /// Boxed like a connection, so a slot is as small as an idle socket
    /// needs (a listener's queues would double every slot).
    Listener(Box<Listener>),
    Conn(Box<Connection>),
}

#[derive(Debug)]
pub(crate) enum Socket {
    Tcp(TcpSocket),
    Udp(Box<UdpSocket>),
}

#[derive(Debug, Default)]
pub(crate) struct Slot {
    generation: u32,
    socket: Option<Socket>,
    /// The application holds the handle (it has not called `close`).
    user_open: bool,
    /// The listener that created this connection, until it is accepted.
    parent: Option<SocketHandle>,
    /// Index of this socket in its port's list of holders (`tcp_ports`).
    port_pos: u32,
    /// Deadline of this socket's entry in the timer heap.
    timer_at: Option<Instant>,
    /// In the transmit queue.
    in_ready: bool,
    /// Reuse a port held by a connection in TIME-WAIT (SO_REUSEADDR).
    reuse_addr: bool,
    /// Established and waiting in its listener's accept queue.
    in_accept_queue: bool,
}

/// A host's TCP/IP stack.
pub struct Stack {
    cfg: StackConfig,
    rng: Rng,
    isn: IsnGenerator,
    syn_cookies: SynCookies,
    routes: Routes,
    neighbors: NeighborCache,
    reassembler: Reassembler,
    /// Path MTUs by destination, for the MSS of new connections.
    pmtu: PmtuCache,
    ip_ident: u16,
    slots: Vec<Slot>,
    free_slots: Vec<u32>,
    open_sockets: usize,
    /// Connections by (local, remote).
    tcp_conns: KeyedMap<(SocketAddrV4, SocketAddrV4), SocketHandle>,
    /// The entry of `tcp_conns` the last segment found: the segments of a
    /// bulk transfer arrive back to back and skip the hash. Cleared
    /// whenever `tcp_conns` changes.
    last_conn: Option<((SocketAddrV4, SocketAddrV4), SocketHandle)>,
    /// Some socket was ever given an RFC 2385 key: arriving segments are
    /// then checked against the keys of the sockets they reach. (Until
    /// then only a segment carrying a signature needs a look.)
    md5_in_use: bool,
    /// Listeners by local address (0.0.0.0 for any).
    tcp_listeners: KeyedMap<SocketAddrV4, SocketHandle>,
    /// TCP sockets holding each local port (bound, listening or connected).
    tcp_ports: KeyedMap<u16, tcp::PortHolders>,
    /// UDP sockets by local address.
    udp_ports: KeyedMap<SocketAddrV4, SocketHandle>,
    /// Socket timers: (deadline, slot index, generation), earliest first.
    timers: BinaryHeap<Reverse<(Instant, u32, u32)>>,
    /// RFC 6056 algorithm 4 counters for ephemeral ports (`pick_connect_port`).
    port_table: [u16; tcp::PORT_TABLE],
    /// Sockets that may have something to send.
    ready: VecDeque<u32>,
    /// The socket whose turn it is in `poll_transmit`, and the bytes it
    /// has sent in this turn (see `TX_TURN`).
    tx_turn: (u32, usize),
    /// Connections holding drained buffer storage, with when to give it
    /// back (`tcp::DRAINED_STORAGE_KEPT` after it drained), oldest first:
    /// (due, slot index, generation).
    drained: VecDeque<(Instant, u32, u32)>,
    /// Frames built outside the socket path (ARP, ICMP, RSTs, released
    /// packets), each with the offset where the frame starts.
    pending: VecDeque<(Vec<u8>, usize)>,
    /// Sockets whose readiness changed since `take_woken`.
    woken: Vec<SocketHandle>,
    /// Readers waiting with buffers of their own (`set_direct_reader`).
    direct_readers: std::collections::HashMap<SocketHandle, Box<dyn crate::tcp::DirectReader>>,
    /// ICMP echo replies received, for `ustack ping`.
    echo_replies: VecDeque<EchoReply>,
    echo_errors: VecDeque<EchoError>,
    /// ICMP error tokens (RFC 1812 §4.3.2.8) and when they were refilled.
    icmp_tokens: u32,
    icmp_refill: Instant,
    /// Test hook: the ISS of the next TCP connection (see `set_next_iss`).
    next_iss: Option<u32>,
    stats: Stats,
    tracer: Tracer,
    /// Limits shared by all TCP connections.
    tcp_shared: crate::tcp::TcpShared,
    /// `cfg.tcp`, shared by every new socket until it changes a setting of
    /// its own (copy on write): a socket that keeps the defaults costs no
    /// copy of them.
    tcp_defaults: Arc<TcpConfig>,
    now: Instant,
}

impl Stack {
    pub fn new(cfg: StackConfig) -> Self {
        let mut rng = Rng::new(cfg.seed);
        let mut isn_key = [0u8; 16];
        rng.fill(&mut isn_key);
        // Derived from the ISN key, so the random stream is not disturbed.
        let cookie_key = SynCookies::derive_key(isn_key);
        let hash = KeyedState::new(rng.next_u64(), rng.next_u64());
        let mut routes = Routes::new();
        for a in &cfg.addresses {
            let _ = routes.add(a.network(), None);
        }
        if let Some(gw) = cfg.gateway {
            let _ = routes.add_default(gw);
        }
        let ip_ident = rng.next_u32() as u16;
        let mut tcp_shared =
            crate::tcp::TcpShared::new(cfg.challenge_ack_limit, cfg.ooo_memory_limit, cfg.tcp_memory_limit);
        tcp_shared.fill_checksum = cfg.checksum.fill_tx;
        tcp_shared.fast_open_key = crate::tcp::fastopen::FastOpenKey::derive(isn_key);
        Stack {
            rng,
            isn: IsnGenerator::new(isn_key),
            syn_cookies: SynCookies::new(cookie_key),
            routes,
            neighbors: NeighborCache::new(cfg.neighbor),
            reassembler: Reassembler::new(cfg.reassembly),
            pmtu: PmtuCache::new(cfg.pmtu),
            ip_ident,
            slots: Vec::new(),
            free_slots: Vec::new(),
            open_sockets: 0,
            tcp_conns: KeyedMap::with_hasher(hash),
            last_conn: None,
            md5_in_use: false,
            tcp_listeners: KeyedMap::with_hasher(hash),
            tcp_ports: KeyedMap::with_hasher(hash),
            udp_ports: KeyedMap::with_hasher(hash),
            timers: BinaryHeap::new(),
            port_table: [0; tcp::PORT_TABLE],
            ready: VecDeque::new(),
            tx_turn: (u32::MAX, 0),
            drained: VecDeque::new(),
            pending: VecDeque::new(),
            woken: Vec::new(),
            direct_readers: std::collections::HashMap::new(),
            echo_replies: VecDeque::new(),
            echo_errors: VecDeque::new(),
            icmp_tokens: cfg.icmp_error_rate,
            icmp_refill: Instant::ZERO,
            next_iss: None,
            stats: Stats::default(),
            tracer: Tracer::default(),
            tcp_shared,
            now: Instant::ZERO,
            tcp_defaults: Arc::new(cfg.tcp.clone()),
            cfg,
        }
    }

    pub fn config(&self) -> &StackConfig {
        &self.cfg
    }
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
    pub fn routes_mut(&mut self) -> &mut Routes {
        &mut self.routes
    }
    pub fn neighbors_mut(&mut self) -> &mut NeighborCache {
        &mut self.neighbors
    }
    /// The first address: the default source address.
    pub fn address(&self) -> Ipv4Addr {
        self.cfg.addresses.first().map_or(Ipv4Addr::UNSPECIFIED, |c| c.address())
    }
    pub fn is_local_address(&self, addr: Ipv4Addr) -> bool {
        self.cfg.addresses.iter().any(|c| c.address() == addr)
    }

    /// Whether packets to `addr` are this host's to take: one of its
    /// addresses, or with [`StackConfig::any_ip`] any unicast address.
    pub(crate) fn takes_address(&self, addr: Ipv4Addr) -> bool {
        self.is_local_address(addr)
            || (self.cfg.any_ip
                && !(addr.is_unspecified()
                    || addr.is_broadcast()
                    || addr.is_multicast()
                    || addr.is_loopback()
                    || self.is_directed_broadcast(addr)))
    }

    /// Input from a device that vouches for the checksums (the kernel
    /// through the TUN offload header): they are not verified again. A
    /// checksum the kernel left to be computed would fail verification.
    pub fn handle_input_trusted(&mut self, now: Instant, data: &[u8], trusted: bool) {
        if !trusted || !self.cfg.checksum.verify_rx {
            self.handle_input(now, data);
            return;
        }
        self.cfg.checksum.verify_rx = false;
        self.handle_input(now, data);
        self.cfg.checksum.verify_rx = true;
    }

    /// Records trace events while on.
    pub fn set_tracing(&mut self, on: bool) {
        self.tracer.set_enabled(on);
    }
    pub fn take_events(&mut self) -> Vec<Event> {
        self.tracer.take()
    }

    /// Test hook: the next TCP connection created (by `connect`, or by a
    /// listener for an arriving SYN) takes `iss` as its initial send
    /// sequence number instead of the RFC 6528 one, once; `None` cancels.
    /// Lets a test put a connection's sequence numbers next to 2^32 so
    /// they wrap around. Nothing sets it but the caller.
    pub fn set_next_iss(&mut self, iss: Option<u32>) {
        self.next_iss = iss;
    }

    /// Sockets whose readiness (readable, writable, connected, closed)
    /// changed since the last call.
    pub fn take_woken(&mut self) -> Vec<SocketHandle> {
        core::mem::take(&mut self.woken)
    }

    // ---- the socket table ------------------------------------------------

    fn alloc(&mut self, socket: Socket) -> Result<SocketHandle, Error> {
        if self.open_sockets >= self.cfg.max_sockets {
            self.stats.limits.sockets += 1;
            return Err(Error::TooManySockets);
        }
        self.open_sockets += 1;
        let index = match self.free_slots.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot::default());
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.socket = Some(socket);
        slot.user_open = true;
        slot.parent = None;
        slot.timer_at = None;
        slot.in_ready = false;
        slot.reuse_addr = false;
        slot.in_accept_queue = false;
        Ok(SocketHandle::new(index, slot.generation))
    }

    fn slot(&self, h: SocketHandle) -> Result<&Slot, Error> {
        match self.slots.get(h.index as usize) {
            Some(s) if s.generation == h.generation && s.socket.is_some() => Ok(s),
            _ => Err(Error::BadHandle),
        }
    }

    fn slot_mut(&mut self, h: SocketHandle) -> Result<&mut Slot, Error> {
        match self.slots.get_mut(h.index as usize) {
            Some(s) if s.generation == h.generation && s.socket.is_some() => Ok(s),
            _ => Err(Error::BadHandle),
        }
    }

    /// A handle the application holds (not one the stack keeps for an
    /// orphaned connection).
    fn user_slot_mut(&mut self, h: SocketHandle) -> Result<&mut Slot, Error> {
        let s = self.slot_mut(h)?;
        if s.user_open { Ok(s) } else { Err(Error::BadHandle) }
    }

    /// Frees a slot; its handle becomes stale.
    fn release(&mut self, h: SocketHandle) {
        let Some(slot) = self.slots.get_mut(h.index as usize) else {
            return;
        };
        if slot.generation != h.generation || slot.socket.is_none() {
            return;
        }
        // A connection's out-of-order bytes leave the stack-wide count.
        if let Some(Socket::Tcp(TcpSocket::Conn(c))) = slot.socket.as_mut() {
            self.tcp_shared.ooo_bytes = self.tcp_shared.ooo_bytes.saturating_sub(c.ooo_reported());
            self.tcp_shared.mem_bytes = self.tcp_shared.mem_bytes.saturating_sub(c.mem_reported());
            // Its drained buffers serve the next connection.
            c.release_drained_storage(&mut self.tcp_shared.buffers);
        }
        slot.socket = None;
        slot.generation = slot.generation.wrapping_add(1);
        if !self.direct_readers.is_empty() {
            self.direct_readers.remove(&h);
        }
        slot.user_open = false;
        slot.parent = None;
        slot.timer_at = None;
        self.open_sockets -= 1;
        // A slot still in the ready queue is skipped there and freed then.
        if !slot.in_ready {
            self.free_slots.push(h.index);
        }
    }

    fn handle_at(&self, index: u32) -> SocketHandle {
        SocketHandle::new(index, self.slots[index as usize].generation)
    }

    /// Puts a socket in the transmit queue.
    fn mark_ready(&mut self, h: SocketHandle) {
        if let Ok(slot) = self.slot_mut(h)
            && !slot.in_ready
        {
            slot.in_ready = true;
            self.ready.push_back(h.index);
        }
    }

    /// Registers the socket's next deadline in the timer heap if it is
    /// earlier than the one registered.
    fn schedule(&mut self, h: SocketHandle, deadline: Option<Instant>) {
        let Some(d) = deadline else { return };
        let Ok(slot) = self.slot_mut(h) else { return };
        if slot.timer_at.is_none_or(|t| d < t) {
            slot.timer_at = Some(d);
            if self.timers.len() == self.timers.capacity() {
                self.purge_stale_timers();
            }
            self.timers.push(Reverse((d, h.index, h.generation)));
        }
    }

    /// Drops the heap entries nobody waits for (a socket's deadline that
    /// an earlier one replaced, a closed socket's) before the heap would
    /// grow: otherwise they stay until their time comes, and a stack whose
    /// sockets all rearmed a timer holds two entries each, at twice the
    /// memory. The heap grows only when more than 7/8 of it is live, so a
    /// purge comes at most once per eighth of the capacity in pushes (the
    /// cost per push stays constant). Only dead entries go, so what fires,
    /// and in which order, is the same.
    fn purge_stale_timers(&mut self) {
        let slots = &self.slots;
        self.timers.retain(|&Reverse((t, index, generation))| {
            let slot = &slots[index as usize];
            slot.generation == generation && slot.timer_at == Some(t)
        });
        let cap = self.timers.capacity();
        if self.timers.len() > cap - cap / 8 {
            self.timers.reserve(cap.max(4));
        }
    }

    fn wake(&mut self, h: SocketHandle) {
        if self.woken.last() != Some(&h) {
            self.woken.push(h);
        }
    }

    // ---- time ----------------------------------------------------------------

    /// The earliest instant at which `handle_timeout` has work to do.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        // Skip stale heap entries so the answer is exact for sockets.
        while let Some(&Reverse((t, index, generation))) = self.timers.peek() {
            let slot = &self.slots[index as usize];
            if slot.generation == generation && slot.timer_at == Some(t) {
                break;
            }
            self.timers.pop();
        }
        let sockets = self.timers.peek().map(|Reverse((t, _, _))| *t);
        let drained = self.drained.front().map(|&(t, _, _)| t);
        [sockets, drained, self.neighbors.poll_timeout(), self.reassembler.poll_timeout()].into_iter().flatten().min()
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        while let Some(&Reverse((t, index, generation))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            let slot = &mut self.slots[index as usize];
            if slot.generation != generation || slot.timer_at != Some(t) {
                continue;
            }
            slot.timer_at = None;
            let h = SocketHandle::new(index, generation);
            self.socket_timeout(now, h);
        }
        self.release_drained(now);
        self.ip_timeouts(now);
    }

    // ---- socket calls, common to TCP and UDP -----------------------------------

    /// Binds a socket to a local address. Port 0 picks an ephemeral port.
    /// Fails with EADDRINUSE when the port is taken, EADDRNOTAVAIL when
    /// the address is not this host's (with [`StackConfig::any_ip`], any
    /// unicast address is), EINVAL when already bound. On a
    /// [`Shard`], a UDP port the device steers to another shard is
    /// EADDRNOTAVAIL too.
    pub fn bind(&mut self, h: SocketHandle, addr: SocketAddrV4) -> Result<(), Error> {
        if !addr.ip().is_unspecified() && !self.takes_address(*addr.ip()) {
            return Err(Error::AddrNotAvailable);
        }
        match self.user_slot_mut(h)?.socket.as_ref() {
            Some(Socket::Tcp(_)) => self.tcp_bind(h, addr),
            Some(Socket::Udp(_)) => self.udp_bind(h, addr),
            None => Err(Error::BadHandle),
        }
    }

    /// The local address, once bound.
    pub fn local_addr(&self, h: SocketHandle) -> Result<SocketAddrV4, Error> {
        match self.slot(h)?.socket.as_ref() {
            Some(Socket::Tcp(TcpSocket::Idle { local, .. })) => local.ok_or(Error::InvalidInput),
            Some(Socket::Tcp(TcpSocket::Listener(l))) => Ok(l.local()),
            Some(Socket::Tcp(TcpSocket::Conn(c))) => Ok(c.local()),
            Some(Socket::Udp(u)) => u.local().ok_or(Error::InvalidInput),
            None => Err(Error::BadHandle),
        }
    }

    /// The remote address of a connected socket.
    pub fn peer_addr(&self, h: SocketHandle) -> Result<SocketAddrV4, Error> {
        match self.slot(h)?.socket.as_ref() {
            // As getpeername(2) on Linux and BSD: ENOTCONN until the
            // handshake completes and once the connection is CLOSED, whether
            // or not its error has been read.
            Some(Socket::Tcp(TcpSocket::Conn(c))) => match c.state() {
                State::Closed | State::SynSent => Err(Error::NotConnected),
                _ => Ok(c.remote()),
            },
            Some(Socket::Udp(u)) => u.remote().ok_or(Error::NotConnected),
            _ => Err(Error::NotConnected),
        }
    }

    /// SO_REUSEADDR: allow binding a port still held by a connection in
    /// TIME-WAIT.
    pub fn set_reuse_addr(&mut self, h: SocketHandle, on: bool) -> Result<(), Error> {
        self.user_slot_mut(h)?.reuse_addr = on;
        Ok(())
    }

    /// Closes the socket. A TCP connection finishes gracefully on its own
    /// (or is reset if unread data is pending); the handle is stale after.
    pub fn close(&mut self, h: SocketHandle) -> Result<(), Error> {
        // A closed handle has no reader waiting on it.
        self.direct_readers.remove(&h);
        let slot = self.user_slot_mut(h)?;
        slot.user_open = false;
        match slot.socket.as_ref() {
            Some(Socket::Tcp(_)) => self.tcp_close(h),
            Some(Socket::Udp(_)) => self.udp_close(h),
            None => {}
        }
        Ok(())
    }

    /// Shuts down one or both directions of a connected socket.
    pub fn shutdown(&mut self, h: SocketHandle, how: Shutdown) -> Result<(), Error> {
        let now = self.now;
        match self.user_slot_mut(h)?.socket.as_mut() {
            Some(Socket::Tcp(TcpSocket::Conn(_))) => self.with_conn(h, now, |c, cx| {
                if !matches!(c.state(), State::Closed) || c.error().is_some() {
                    if matches!(how, Shutdown::Read | Shutdown::Both) {
                        c.shutdown_read();
                    }
                    if matches!(how, Shutdown::Write | Shutdown::Both) {
                        c.shutdown_write(cx);
                    }
                    Ok(())
                } else {
                    Err(Error::NotConnected)
                }
            }),
            Some(Socket::Udp(u)) => {
                if u.remote().is_none() {
                    return Err(Error::NotConnected);
                }
                u.shutdown(how);
                Ok(())
            }
            _ => Err(Error::NotConnected),
        }
    }

    /// Sends on a connected socket (TCP, or UDP after `connect`).
    pub fn send(&mut self, h: SocketHandle, data: &[u8]) -> Result<usize, Error> {
        match self.user_slot_mut(h)?.socket.as_ref() {
            Some(Socket::Tcp(_)) => self.tcp_send(h, data),
            Some(Socket::Udp(u)) => {
                let dst = u.remote().ok_or(Error::NotConnected)?;
                self.send_to(h, data, dst)
            }
            None => Err(Error::BadHandle),
        }
    }

    /// Receives from a connected socket. For TCP, `Ok(0)` is end of file.
    pub fn recv(&mut self, h: SocketHandle, buf: &mut [u8]) -> Result<usize, Error> {
        match self.user_slot_mut(h)?.socket.as_ref() {
            Some(Socket::Tcp(_)) => self.tcp_recv(h, buf),
            Some(Socket::Udp(_)) => self.recv_from(h, buf).map(|(n, _)| n),
            None => Err(Error::BadHandle),
        }
    }

    /// True when `recv` (or `accept`) would not block.
    pub fn can_recv(&self, h: SocketHandle) -> bool {
        match self.slot(h).ok().and_then(|s| s.socket.as_ref()) {
            Some(Socket::Tcp(TcpSocket::Conn(c))) => c.can_recv(),
            Some(Socket::Tcp(TcpSocket::Listener(l))) => l.pending() > 0,
            Some(Socket::Udp(u)) => u.can_recv(),
            _ => true,
        }
    }

    /// Bytes `send` would accept now on a TCP connection (0 otherwise).
    pub fn send_capacity(&self, h: SocketHandle) -> usize {
        match self.slot(h).ok().and_then(|s| s.socket.as_ref()) {
            Some(Socket::Tcp(TcpSocket::Conn(c))) if c.can_send() => c.send_capacity(),
            _ => 0,
        }
    }

    /// True when `send` would not block.
    pub fn can_send(&self, h: SocketHandle) -> bool {
        match self.slot(h).ok().and_then(|s| s.socket.as_ref()) {
            Some(Socket::Tcp(TcpSocket::Conn(c))) => c.can_send(),
            Some(Socket::Tcp(_)) => false,
            Some(Socket::Udp(u)) => u.can_send(),
            None => true,
        }
    }

    /// The TCP state of a socket (LISTEN for listeners, CLOSED for new ones).
    pub fn tcp_state(&self, h: SocketHandle) -> Result<State, Error> {
        match self.slot(h)?.socket.as_ref() {
            Some(Socket::Tcp(TcpSocket::Idle { .. })) => Ok(State::Closed),
            Some(Socket::Tcp(TcpSocket::Listener(_))) => Ok(State::Listen),
            Some(Socket::Tcp(TcpSocket::Conn(c))) => Ok(c.state()),
            _ => Err(Error::NotSupported),
        }
    }

    /// The path MTU to `dst` a connection or a UDP socket learned from
    /// ICMP "fragmentation needed", while it holds (RFC 1191 §6.3; Linux's
    /// `ip route get` shows it as the route's `mtu`).
    pub fn path_mtu(&self, dst: Ipv4Addr) -> Option<usize> {
        self.pmtu.get(self.now, dst)
    }

    /// The largest packet to send to `dst` whole: the interface MTU, or
    /// the smaller path MTU learned for it ([`Stack::path_mtu`]).
    pub fn path_mtu_to(&self, dst: Ipv4Addr) -> usize {
        self.path_mtu(dst).map_or(self.cfg.mtu, |m| m.min(self.cfg.mtu))
    }

    /// Linux-style TCP_INFO for a connection.
    pub fn tcp_info(&self, h: SocketHandle) -> Result<TcpInfo, Error> {
        match self.slot(h)?.socket.as_ref() {
            Some(Socket::Tcp(TcpSocket::Conn(c))) => Ok(c.info()),
            Some(Socket::Tcp(_)) => Ok(TcpInfo { state: Some(self.tcp_state(h)?), ..Default::default() }),
            _ => Err(Error::NotSupported),
        }
    }

    /// The connection behind a handle, for inspection.
    pub fn tcp_connection(&self, h: SocketHandle) -> Option<&Connection> {
        match self.slot(h).ok()?.socket.as_ref()? {
            Socket::Tcp(TcpSocket::Conn(c)) => Some(c),
            _ => None,
        }
    }

    /// Every TCP connection the stack holds, orphans included, with its
    /// handle: for `netstat`-like listings and tests.
    pub fn tcp_connections(&self) -> impl Iterator<Item = (SocketHandle, &Connection)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| match s.socket.as_ref()? {
            Socket::Tcp(TcpSocket::Conn(c)) => Some((SocketHandle::new(i as u32, s.generation), c.as_ref())),
            _ => None,
        })
    }

    /// Sockets allocated, orphaned connections included.
    pub fn socket_count(&self) -> usize {
        self.open_sockets
    }

    /// Bytes all TCP connections hold out of order.
    pub fn out_of_order_bytes(&self) -> usize {
        self.tcp_shared.ooo_bytes
    }

    /// Bytes all TCP connections hold in their send and receive buffers,
    /// the total that `StackConfig::tcp_memory_limit` bounds.
    pub fn tcp_buffered_bytes(&self) -> usize {
        self.tcp_shared.mem_bytes
    }

    /// Heap bytes held by socket buffers (for memory accounting).
    pub fn buffer_bytes(&self) -> usize {
        self.tcp_connections().map(|(_, c)| c.buffer_bytes()).sum()
    }

    /// Heap bytes of drained buffer storage the stack keeps for the next
    /// buffer that fills (at most `tcp::ring::BufferPool::MAX_BYTES`).
    pub fn pooled_buffer_bytes(&self) -> usize {
        self.tcp_shared.buffers.bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::size_of;

    /// Issue 6: an idle established connection costs at most 1 KiB of heap,
    /// buffers excluded while empty (BENCHMARKS.md, `ustack-bench
    /// idle-memory`). Most of it is these structures; this pins their
    /// layout so a field added without thought shows here, not only in the
    /// benchmark. A layout check, not a timing one: raise a bound only with
    /// the reason and a new idle-memory figure.
    #[test]
    fn idle_connection_layout_stays_within_the_1_kib_budget() {
        // The transmission control block, boxed in its slot. (Recovery
        // state, the out-of-order queue and CUBIC's undo copy are boxed
        // separately and exist only while in use.) 840 bytes, plus 8 for
        // ECN's state (RFC 3168), which every connection may need. IP_TOS
        // and IP_TTL (2 bytes) took no more: a byte of padding and the
        // three `persist_backoff` gave up going from u32 to u8. Nor did the
        // TCP-over-UDP port (2 bytes of padding).
        assert!(size_of::<Connection>() <= 848, "Connection is {} bytes", size_of::<Connection>());
        // One per socket in the slot table.
        assert!(size_of::<Slot>() <= 48, "Slot is {} bytes", size_of::<Slot>());
        // One entry per timer in the heap.
        assert_eq!(size_of::<Reverse<(Instant, u32, u32)>>(), 16);
        // The connection-table entry.
        assert!(size_of::<((SocketAddrV4, SocketAddrV4), SocketHandle)>() <= 20);
    }

    /// Deadlines that move earlier leave dead entries behind; they are
    /// purged before the heap grows, so it holds about one entry per
    /// waiting socket, and only the live deadline is reported.
    #[test]
    fn superseded_timer_entries_do_not_pile_up() {
        let mut stack = Stack::new(StackConfig::ip("10.0.0.1/24".parse().unwrap()));
        let handles: Vec<_> = (0..100).map(|_| stack.tcp_socket().unwrap()).collect();
        for round in 0..50u64 {
            for &h in &handles {
                stack.schedule(h, Some(Instant::from_secs(1_000 - round)));
            }
        }
        let live = handles.len();
        assert!(stack.timers.len() <= live + live / 4 + 4, "{} entries for {live} sockets", stack.timers.len());
        assert!(stack.timers.capacity() <= 4 * live, "capacity {}", stack.timers.capacity());
        assert_eq!(stack.poll_timeout(), Some(Instant::from_secs(951)));
        // A closed socket's entry is dead too.
        for &h in &handles {
            stack.close(h).unwrap();
        }
        assert_eq!(stack.poll_timeout(), None);
    }
}
