//! TCP in the stack: socket calls, demultiplexing arriving segments to
//! connections and listeners (RFC 9293 §3.10.7.1-2), and keeping the
//! connection table, timers and transmit queue in step with each
//! connection.

use super::ip::IpTx;
use super::{CATCH_ALL, Socket, Stack, TcpSocket};
use crate::socket::{Error, SocketHandle};
use crate::stats::DropReason;
use crate::tcp::Disposition;
use crate::tcp::connection::Endpoints;
use crate::tcp::fastopen::FastOpen;
use crate::tcp::syncookie::{self, CookieOptions};
use crate::tcp::{Connection, Cx, DirectReader, Listener, Md5Key, State, TcpConfig};
use crate::time::Instant;
use crate::trace::{Direction, EventKind};
use crate::wire::{TcpFlags, TcpOptions, TcpRepr};
use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

/// The two ends of an arriving segment, and how it came: in an IP packet
/// (`encap` None), or in a UDP datagram from the peer's port `encap`
/// (`StackConfig::tcp_over_udp_port`), the way anything answering it goes.
#[derive(Clone, Copy, Debug)]
struct Ends {
    local: SocketAddrV4,
    remote: SocketAddrV4,
    encap: Option<u16>,
}

/// Counters of RFC 6056 algorithm 4 (the table its §3.3.4 calls
/// `table[]`); more entries keep one destination's connections from
/// moving another's starting point.
pub(super) const PORT_TABLE: usize = 256;

/// The TCP sockets holding one local port. Most ports have one (each
/// ephemeral port of a client's connections), held inline; a server's port
/// has a list (its listener and every connection it accepted).
#[derive(Debug)]
pub(super) enum PortHolders {
    One(SocketHandle),
    Many(Vec<SocketHandle>),
}

impl PortHolders {
    pub(super) fn as_slice(&self) -> &[SocketHandle] {
        match self {
            PortHolders::One(h) => core::slice::from_ref(h),
            PortHolders::Many(v) => v,
        }
    }

    /// Adds a holder; returns its position.
    fn push(&mut self, h: SocketHandle) -> u32 {
        match self {
            PortHolders::One(first) => *self = PortHolders::Many(vec![*first, h]),
            PortHolders::Many(v) => v.push(h),
        }
        (self.as_slice().len() - 1) as u32
    }

    /// Removes the holder at `pos` (the last one takes its place); returns
    /// the holders left, or None when none is. A list down to one holder
    /// goes back inline, giving its storage back.
    fn swap_remove(&mut self, pos: usize) -> Option<&[SocketHandle]> {
        match self {
            PortHolders::One(_) => return None,
            PortHolders::Many(v) => {
                v.swap_remove(pos);
                match v.as_slice() {
                    [] => return None,
                    &[only] => *self = PortHolders::One(only),
                    _ => {}
                }
            }
        }
        Some(self.as_slice())
    }
}

impl Stack {
    /// A new TCP socket (CLOSED), with the stack's default settings.
    pub fn tcp_socket(&mut self) -> Result<SocketHandle, Error> {
        let cfg = Arc::clone(&self.tcp_defaults);
        self.alloc(Socket::Tcp(TcpSocket::Idle { local: None, cfg }))
    }

    /// The settings of a TCP socket not yet connected or listening.
    pub fn tcp_config_mut(&mut self, h: SocketHandle) -> Result<&mut TcpConfig, Error> {
        match self.user_slot_mut(h)?.socket.as_mut() {
            Some(Socket::Tcp(TcpSocket::Idle { cfg, .. })) => Ok(Arc::make_mut(cfg)),
            Some(Socket::Tcp(_)) => Err(Error::InvalidInput),
            _ => Err(Error::NotSupported),
        }
    }

    /// Changes the settings of TCP socket `h` in any state, as a system-wide
    /// switch (a BSD sysctl) changes them for sockets that exist: `f` is
    /// applied to those of a socket not yet connected or listening (as
    /// [`Stack::tcp_config_mut`]), of a listener (which its connections
    /// accepted from then on start from; those it already made keep theirs)
    /// or of a connection.
    ///
    /// On a connection, a setting it reads as it runs takes effect at once:
    /// the RFC 5961 switches (`rfc5961`, `rfc5961_syn`), the handling of
    /// ICMP errors (`icmp_hard_errors`, `min_path_mtu`), Nagle, the retry
    /// counts, the lengths of the delayed-ACK, TIME-WAIT, FIN-WAIT-2 and
    /// keep-alive timers (a timer already running keeps its deadline; the
    /// new length counts from when it is next armed). A setting used only
    /// when something is set up changes only what has not happened yet:
    /// the options the SYNs negotiate (window scaling, timestamps, SACK,
    /// ECN, the MSS), the buffers sized when the connection was made, the
    /// RTO bounds and initial window its RTT estimator and congestion
    /// control took then, the TOS and TTL it copied. [`Stack::set_option`]
    /// is the way to resize the buffers, start or stop keep-alive and set
    /// the TOS or TTL of a live connection.
    ///
    /// Fails with EBADF for a handle that is not open (as
    /// `tcp_config_mut`), and with `NotSupported` for a UDP socket.
    pub fn tcp_update_config(&mut self, h: SocketHandle, f: impl FnOnce(&mut TcpConfig)) -> Result<(), Error> {
        match self.user_slot_mut(h)?.socket.as_mut() {
            Some(Socket::Tcp(TcpSocket::Idle { cfg, .. })) => f(Arc::make_mut(cfg)),
            Some(Socket::Tcp(TcpSocket::Listener(l))) => f(Arc::make_mut(&mut l.cfg)),
            Some(Socket::Tcp(TcpSocket::Conn(c))) => f(c.config_mut()),
            _ => return Err(Error::NotSupported),
        }
        // A connection the change lets send (Nagle off) is given its turn,
        // as `set_nodelay` does.
        self.mark_ready(h);
        Ok(())
    }

    /// TCP_NODELAY on a socket in any state.
    pub fn set_nodelay(&mut self, h: SocketHandle, nodelay: bool) -> Result<(), Error> {
        match self.user_slot_mut(h)?.socket.as_mut() {
            Some(Socket::Tcp(TcpSocket::Idle { cfg, .. })) => Arc::make_mut(cfg).nagle = !nodelay,
            Some(Socket::Tcp(TcpSocket::Conn(c))) => c.set_option_nodelay(nodelay),
            Some(Socket::Tcp(TcpSocket::Listener(_))) => {}
            _ => return Err(Error::NotSupported),
        }
        self.mark_ready(h);
        Ok(())
    }

    /// Whether a new TCP socket may take local port `port` on `ip`.
    fn tcp_port_free(&self, ip: Ipv4Addr, port: u16, reuse: bool) -> bool {
        let Some(holders) = self.tcp_ports.get(&port) else {
            return true;
        };
        holders.as_slice().iter().all(|&other| {
            let Ok(slot) = self.slot(other) else {
                return true;
            };
            let (other_ip, time_wait) = match slot.socket.as_ref() {
                Some(Socket::Tcp(TcpSocket::Idle { local: Some(l), .. })) => (*l.ip(), false),
                Some(Socket::Tcp(TcpSocket::Listener(l))) => (*l.local().ip(), false),
                Some(Socket::Tcp(TcpSocket::Conn(c))) => (*c.local().ip(), c.state() == State::TimeWait),
                _ => return true,
            };
            let overlap = ip.is_unspecified() || other_ip.is_unspecified() || ip == other_ip;
            // SO_REUSEADDR lets a server rebind while old connections
            // linger in TIME-WAIT (RFC 9293 §3.6.1, BSD practice).
            !overlap || (reuse && (time_wait || slot.reuse_addr))
        })
    }

    /// Records that `h` holds `port`. The slot remembers its place in the
    /// port's list, so a listener's port, held by every connection it
    /// accepted (tens of thousands in TIME-WAIT on a busy server), is let
    /// go in constant time.
    fn claim_port(&mut self, port: u16, h: SocketHandle) {
        let pos = match self.tcp_ports.entry(port) {
            Entry::Vacant(e) => {
                e.insert(PortHolders::One(h));
                0
            }
            Entry::Occupied(mut e) => e.get_mut().push(h),
        };
        if let Ok(slot) = self.slot_mut(h) {
            slot.port_pos = pos;
        }
    }

    fn unclaim_port(&mut self, port: u16, h: SocketHandle) {
        let Some(holders) = self.tcp_ports.get_mut(&port) else { return };
        let hint = self.slots.get(h.index as usize).map_or(0, |s| s.port_pos as usize);
        let list = holders.as_slice();
        let pos = if list.get(hint) == Some(&h) { Some(hint) } else { list.iter().position(|&x| x == h) };
        let Some(pos) = pos else { return };
        match holders.swap_remove(pos) {
            None => {
                self.tcp_ports.remove(&port);
            }
            Some(list) => {
                if let Some(&moved) = list.get(pos) {
                    self.slots[moved.index as usize].port_pos = pos as u32;
                }
            }
        }
    }

    /// A random ephemeral port (RFC 6056 §3.3.1, algorithm 1) for which
    /// `ok` holds.
    pub(crate) fn pick_ephemeral(&mut self, mut ok: impl FnMut(&Stack, u16) -> bool) -> Option<u16> {
        let (lo, hi) = self.cfg.ephemeral_ports;
        let count = (hi as u32).saturating_sub(lo as u32) + 1;
        let start = self.rng.below(count as u64) as u32;
        (0..count).map(|i| lo + ((start + i) % count) as u16).find(|&p| ok(self, p))
    }

    /// The ephemeral port for a connection to `remote` from `src` (RFC
    /// 6056 §3.3.4, algorithm 4, "double-hash port selection"): each
    /// destination gets its own secret starting offset, F(src, remote,
    /// key), and walks the range from there with a counter drawn from a
    /// small table indexed by a second hash, G. Successive connections to
    /// one destination therefore take successive ports, so a busy client
    /// does not pick a port whose 4-tuple still sits in TIME-WAIT at the
    /// server (algorithm 1, random ports, collides with one of n TIME-WAIT
    /// ports with probability n / range on every connect), while an
    /// off-path attacker still cannot guess the port without the key.
    fn pick_connect_port(
        &mut self,
        src: Ipv4Addr,
        remote: SocketAddrV4,
        mut ok: impl FnMut(&Stack, u16) -> bool,
    ) -> Option<u16> {
        use core::hash::{BuildHasher, Hasher};
        let (lo, hi) = self.cfg.ephemeral_ports;
        let count = (hi as u32).saturating_sub(lo as u32) + 1;
        let keyed = |tag: u64| {
            let mut h = self.tcp_conns.hasher().build_hasher();
            h.write_u64(tag);
            h.write_u32(u32::from(src));
            h.write_u32(u32::from(*remote.ip()));
            h.write_u16(remote.port());
            h.finish()
        };
        let offset = (keyed(0x6056_000f) % count as u64) as u32;
        let index = (keyed(0x6056_0006) % PORT_TABLE as u64) as usize;
        let start = self.port_table[index] as u32;
        let port = |i: u32| lo + ((offset + start + i) % count) as u16;
        let found = (0..count).find(|&i| ok(self, port(i)));
        // RFC 6056: the counter moves past every port tried, so the next
        // connection to this destination starts after this one.
        let tried = found.map_or(count, |i| i + 1);
        self.port_table[index] = ((start + tried) % count) as u16;
        found.map(port)
    }

    pub(super) fn tcp_bind(&mut self, h: SocketHandle, addr: SocketAddrV4) -> Result<(), Error> {
        let reuse = self.slot(h)?.reuse_addr;
        match self.slot(h)?.socket.as_ref() {
            Some(Socket::Tcp(TcpSocket::Idle { local: None, .. })) => {}
            _ => return Err(Error::InvalidInput),
        }
        let ip = *addr.ip();
        let port = if addr.port() == 0 {
            self.pick_ephemeral(|s, p| s.tcp_port_free(ip, p, false)).ok_or(Error::AddrInUse)?
        } else if self.tcp_port_free(ip, addr.port(), reuse) {
            addr.port()
        } else {
            return Err(Error::AddrInUse);
        };
        let local = SocketAddrV4::new(ip, port);
        if let Some(Socket::Tcp(TcpSocket::Idle { local: l, .. })) = self.slot_mut(h)?.socket.as_mut() {
            *l = Some(local);
        }
        self.claim_port(port, h);
        Ok(())
    }

    /// LISTEN with room for `backlog` connections awaiting `accept`. An
    /// unbound socket gets an ephemeral port, as on Linux.
    pub fn listen(&mut self, h: SocketHandle, backlog: usize) -> Result<(), Error> {
        let local = match self.user_slot_mut(h)?.socket.as_ref() {
            Some(Socket::Tcp(TcpSocket::Idle { local, .. })) => *local,
            Some(Socket::Tcp(TcpSocket::Listener(_))) => return Ok(()),
            Some(Socket::Tcp(TcpSocket::Conn(_))) => return Err(Error::InvalidInput),
            _ => return Err(Error::NotSupported),
        };
        let local = match local {
            Some(l) => l,
            None => {
                self.tcp_bind(h, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))?;
                self.local_addr(h)?
            }
        };
        self.make_listener(h, local, backlog)
    }

    /// LISTEN on every port: a catch-all listener takes the connections
    /// to any port no other listener has (on every local address, and with
    /// [`crate::StackConfig::any_ip`] to any address at all). Each accepted
    /// connection's local address is the one its peer connected to, which
    /// is how a transparent proxy or a VPN client (tun2socks) learns where
    /// the peer meant to go. One per stack: a second is EADDRINUSE; a bound
    /// socket is EINVAL.
    pub fn listen_any(&mut self, h: SocketHandle, backlog: usize) -> Result<(), Error> {
        match self.user_slot_mut(h)?.socket.as_ref() {
            Some(Socket::Tcp(TcpSocket::Idle { local: None, .. })) => {}
            Some(Socket::Tcp(_)) => return Err(Error::InvalidInput),
            _ => return Err(Error::NotSupported),
        }
        self.make_listener(h, CATCH_ALL, backlog)
    }

    /// Turns idle socket `h` into a listener for `local`.
    fn make_listener(&mut self, h: SocketHandle, local: SocketAddrV4, backlog: usize) -> Result<(), Error> {
        if self.tcp_listeners.contains_key(&local) {
            return Err(Error::AddrInUse);
        }
        let backlog = backlog.clamp(1, self.cfg.max_backlog);
        let max_half_open = self.cfg.max_half_open;
        let slot = self.slot_mut(h)?;
        let Some(Socket::Tcp(sock)) = slot.socket.as_mut() else {
            return Err(Error::BadHandle);
        };
        let TcpSocket::Idle { cfg, .. } = sock else {
            return Err(Error::InvalidInput);
        };
        // Children inherit the listener's settings.
        let cfg = core::mem::take(cfg);
        // Keys may also come in through `tcp_config_mut` or the stack's
        // defaults: arriving segments are checked from now on.
        let md5 = !cfg.md5_keys.is_empty();
        *sock = TcpSocket::Listener(Box::new(Listener::new(local, backlog, max_half_open, cfg)));
        self.tcp_listeners.insert(local, h);
        self.md5_in_use |= md5;
        Ok(())
    }

    /// Takes an established connection from a listener's accept queue.
    pub fn accept(&mut self, h: SocketHandle) -> Result<(SocketHandle, SocketAddrV4), Error> {
        let listener = match self.user_slot_mut(h)?.socket.as_mut() {
            Some(Socket::Tcp(TcpSocket::Listener(l))) => l,
            Some(Socket::Tcp(_)) => return Err(Error::InvalidInput),
            _ => return Err(Error::NotSupported),
        };
        let child = listener.accept_queue.pop_front().ok_or(Error::WouldBlock)?;
        let slot = self.slot_mut(child)?;
        slot.user_open = true;
        slot.in_accept_queue = false;
        let remote = match slot.socket.as_ref() {
            Some(Socket::Tcp(TcpSocket::Conn(c))) => c.remote(),
            _ => return Err(Error::ConnectionAborted),
        };
        Ok((child, remote))
    }

    /// Starts an active open with TCP Fast Open (RFC 7413; Linux's
    /// `sendto(MSG_FASTOPEN)`): `data` is queued as a write is, and the SYN
    /// carries its first part with the cookie this server gave before, or
    /// asks for a cookie (the data then follows the handshake, as after a
    /// plain connect). A server that does not take the data acknowledges
    /// only the SYN, and the data goes again after the handshake: nothing
    /// is lost either way. Returns the bytes queued; otherwise as
    /// [`Stack::connect`] (a UDP socket: EOPNOTSUPP).
    pub fn connect_with_data(&mut self, h: SocketHandle, remote: SocketAddrV4, data: &[u8]) -> Result<usize, Error> {
        if matches!(self.user_slot_mut(h)?.socket.as_ref(), Some(Socket::Udp(_))) {
            return Err(Error::NotSupported);
        }
        self.connect(h, remote)?;
        let now = self.now;
        self.with_conn(h, now, |c, cx| Ok(c.fast_open_connect(cx, data)))
    }

    /// Starts an active open. Returns at once, like a non-blocking
    /// `connect` that gave EINPROGRESS: the connection completes when its
    /// state becomes ESTABLISHED (or fails with the socket's error).
    /// On a [`super::Shard`] the ephemeral port is one whose segments the
    /// device steers back here; a port bound beforehand that steers
    /// elsewhere fails with EADDRNOTAVAIL.
    pub fn connect(&mut self, h: SocketHandle, remote: SocketAddrV4) -> Result<(), Error> {
        let now = self.now;
        let local = match self.user_slot_mut(h)?.socket.as_ref() {
            Some(Socket::Tcp(TcpSocket::Idle { local, .. })) => *local,
            Some(Socket::Tcp(TcpSocket::Conn(c))) => {
                return Err(match c.state() {
                    State::SynSent | State::SynReceived => Error::Already,
                    _ => Error::IsConnected,
                });
            }
            Some(Socket::Tcp(TcpSocket::Listener(_))) => return Err(Error::InvalidInput),
            Some(Socket::Udp(_)) => return self.udp_connect(h, remote),
            None => return Err(Error::BadHandle),
        };
        if remote.port() == 0
            || remote.ip().is_unspecified()
            || remote.ip().is_broadcast()
            || remote.ip().is_multicast()
        {
            return Err(Error::InvalidInput);
        }
        let src = self.source_address_for(*remote.ip()).ok_or(Error::NetworkUnreachable)?;
        let shard = self.cfg.shard;
        // A shard's connection must use ports the device steers to it; a
        // port bound beforehand may not (nothing would answer here).
        if let Some(l) = local
            && shard.is_some_and(|s| !s.owns_tcp(l.port(), remote.port()))
        {
            return Err(Error::AddrNotAvailable);
        }
        let local = match local {
            Some(l) if l.ip().is_unspecified() => SocketAddrV4::new(src, l.port()),
            Some(l) => l,
            None => {
                let port = self
                    .pick_connect_port(src, remote, |s, p| {
                        shard.is_none_or(|sh| sh.owns_tcp(p, remote.port()))
                            && !s.tcp_conns.contains_key(&(SocketAddrV4::new(src, p), remote))
                            && s.tcp_ports.get(&p).is_none_or(|v| {
                                v.as_slice().iter().all(|&o| {
                                    matches!(
                                        s.slot(o).map(|sl| sl.socket.as_ref()),
                                        Ok(Some(Socket::Tcp(TcpSocket::Conn(_))))
                                    )
                                })
                            })
                    })
                    .ok_or(Error::AddrNotAvailable)?;
                self.claim_port(port, h);
                SocketAddrV4::new(src, port)
            }
        };
        if self.tcp_conns.contains_key(&(local, remote)) {
            return Err(Error::AddrInUse);
        }
        let slot = self.slot_mut(h)?;
        let Some(Socket::Tcp(sock)) = slot.socket.as_mut() else { unreachable!() };
        let TcpSocket::Idle { cfg, .. } = sock else { unreachable!() };
        let cfg = cfg.clone();
        // (Keys set through `tcp_config_mut` or the defaults count too.)
        self.md5_in_use |= !cfg.md5_keys.is_empty();
        let iss = self.next_iss.take().unwrap_or_else(|| self.isn.isn(now, local, remote));
        // (A port set through `tcp_config_mut` on a stack with no
        // TCP-over-UDP port of its own is not used.)
        let encap = cfg.udp_encap_port.filter(|_| self.cfg.tcp_over_udp_port.is_some());
        let ep = self.endpoints(now, Ends { local, remote, encap }, iss);
        let conn = {
            let mut cx = self.new_conn_cx(now);
            Connection::connect(&mut cx, &cfg, ep)
        };
        let slot = self.slot_mut(h)?;
        slot.socket = Some(Socket::Tcp(TcpSocket::Conn(Box::new(conn))));
        self.tcp_conns.insert((local, remote), h);
        self.last_conn = None;
        self.after_conn(h);
        Ok(())
    }

    /// The MSS we advertise: the interface MTU less IP and TCP headers
    /// (RFC 9293 §3.7.1).
    pub(crate) fn local_mss(&self) -> usize {
        self.cfg.mtu.saturating_sub(crate::tcp::connection::IP_TCP_HEADERS)
    }

    /// A connection learned that the path to `remote` carries at most `mtu`
    /// bytes: the other open connections to it send no larger from now on
    /// (segments already in flight draw their own errors). Linux does the
    /// same through the route their sockets share. Each lowering of the
    /// cache's value costs one walk over the connections, and it only
    /// lowers, until the entry expires.
    pub(crate) fn tcp_path_mtu_lowered(&mut self, now: Instant, remote: Ipv4Addr, mtu: usize) {
        let hs: Vec<SocketHandle> =
            self.tcp_conns.iter().filter(|((_, r), _)| *r.ip() == remote).map(|(_, &h)| h).collect();
        for h in hs {
            let _ = self.with_conn(h, now, |c, _| {
                c.clamp_path_mtu(mtu);
                Ok(())
            });
        }
    }

    /// The largest segment (less headers) the path to `remote` is known to
    /// carry: from a path MTU a connection learned (RFC 1191 §6.3).
    pub(crate) fn path_mss(&self, now: Instant, remote: Ipv4Addr) -> usize {
        self.pmtu.get(now, remote).map_or(usize::MAX, |mtu| mtu.saturating_sub(crate::tcp::connection::IP_TCP_HEADERS))
    }

    /// What a new connection between `ends` starts from: its ISS, the MSS
    /// to advertise and the path's (less the UDP header when it is carried
    /// over UDP), its timestamp clock's offset, and how it is carried.
    fn endpoints(&self, now: Instant, ends: Ends, iss: u32) -> Endpoints {
        let Ends { local, remote, encap } = ends;
        let udp = if encap.is_some() { crate::tcp::connection::UDP_ENCAP_HEADER } else { 0 };
        Endpoints {
            local,
            remote,
            iss,
            local_mss: self.local_mss().saturating_sub(udp),
            path_mss: self.path_mss(now, *remote.ip()).saturating_sub(udp),
            ts_offset: self.isn.ts_offset(local, remote),
            udp_encap: encap,
        }
    }

    pub(super) fn tcp_send(&mut self, h: SocketHandle, data: &[u8]) -> Result<usize, Error> {
        let now = self.now;
        self.with_conn(h, now, |c, cx| {
            // The stack-wide buffer budget (StackConfig::tcp_memory_limit):
            // take what fits; nothing fits, and the socket could take data,
            // is EAGAIN, counted.
            let room = c.memory_room(cx.shared);
            if room >= data.len() {
                return c.send(cx, data);
            }
            let n = c.send(cx, &data[..room])?;
            if n == 0 && !data.is_empty() {
                cx.stats.memory_limited += 1;
                return Err(Error::WouldBlock);
            }
            Ok(n)
        })
    }

    pub(super) fn tcp_recv(&mut self, h: SocketHandle, buf: &mut [u8]) -> Result<usize, Error> {
        let now = self.now;
        match self.slot(h)?.socket.as_ref() {
            Some(Socket::Tcp(TcpSocket::Conn(c))) if c.recv_would_block() => Err(Error::WouldBlock),
            Some(Socket::Tcp(TcpSocket::Conn(_))) => self.with_conn(h, now, |c, cx| c.recv(cx, buf)),
            _ => Err(Error::NotConnected),
        }
    }

    /// Lets `reader`, which waits on connection `h` with a buffer of its
    /// own, take the in-order data that arrives while the receive buffer
    /// is empty (see [`DirectReader`]), until [`Stack::take_direct_reader`]
    /// gives it back with what it took. False, and `reader` is dropped,
    /// when `h` is not a connection, data is waiting to be read already,
    /// or another reader is registered: then read as usual.
    pub fn set_direct_reader(&mut self, h: SocketHandle, reader: Box<dyn DirectReader>) -> bool {
        let free = match self.slot(h).ok().and_then(|s| s.socket.as_ref()) {
            Some(Socket::Tcp(TcpSocket::Conn(c))) => c.recv_queue() == 0,
            _ => false,
        };
        if !free || self.direct_readers.contains_key(&h) {
            return false;
        }
        self.direct_readers.insert(h, reader);
        true
    }

    /// Takes back the reader [`Stack::set_direct_reader`] registered on
    /// `h`: its [`DirectReader::taken`] bytes are the next of the stream,
    /// before anything the receive buffer holds.
    pub fn take_direct_reader(&mut self, h: SocketHandle) -> Option<Box<dyn DirectReader>> {
        self.direct_readers.remove(&h)
    }

    /// Reads without consuming.
    pub fn peek(&self, h: SocketHandle, buf: &mut [u8]) -> Result<usize, Error> {
        match self.slot(h)?.socket.as_ref() {
            Some(Socket::Tcp(TcpSocket::Conn(c))) => Ok(c.peek(buf)),
            _ => Err(Error::NotConnected),
        }
    }

    /// Resets the connection at once (SO_LINGER with a zero timeout, then
    /// close): a RST goes to the peer and the handle is closed.
    pub fn abort(&mut self, h: SocketHandle) -> Result<(), Error> {
        let now = self.now;
        self.user_slot_mut(h)?.user_open = false;
        self.direct_readers.remove(&h);
        match self.slot(h)?.socket.as_ref() {
            Some(Socket::Tcp(TcpSocket::Conn(_))) => {
                let _ = self.with_conn(h, now, |c, cx| {
                    c.abort(cx);
                    Ok(())
                });
                Ok(())
            }
            _ => {
                self.tcp_close(h);
                Ok(())
            }
        }
    }

    pub(super) fn tcp_close(&mut self, h: SocketHandle) {
        let now = self.now;
        let Ok(slot) = self.slot_mut(h) else { return };
        match slot.socket.as_mut() {
            Some(Socket::Tcp(TcpSocket::Idle { local, .. })) => {
                if let Some(l) = *local {
                    self.unclaim_port(l.port(), h);
                }
                self.release(h);
            }
            Some(Socket::Tcp(TcpSocket::Listener(l))) => {
                let local = l.local();
                let children: Vec<SocketHandle> = l.accept_queue.drain(..).collect();
                self.tcp_listeners.remove(&local);
                self.unclaim_port(local.port(), h);
                // Connections never accepted are reset, as Linux does.
                for child in children {
                    if let Ok(s) = self.slot_mut(child) {
                        s.in_accept_queue = false;
                    }
                    let _ = self.with_conn(child, now, |c, cx| {
                        c.abort(cx);
                        Ok(())
                    });
                }
                // Half-open children go too (not one the application
                // accepted already, from SYN-RECEIVED with Fast Open data).
                let half_open: Vec<SocketHandle> = self
                    .tcp_connections()
                    .filter(|(ch, c)| {
                        c.state() == State::SynReceived
                            && self.slot(*ch).is_ok_and(|s| s.parent == Some(h) && !s.user_open)
                    })
                    .map(|(ch, _)| ch)
                    .collect();
                for child in half_open {
                    let _ = self.with_conn(child, now, |c, cx| {
                        c.abort(cx);
                        Ok(())
                    });
                }
                self.release(h);
            }
            Some(Socket::Tcp(TcpSocket::Conn(_))) => {
                let _ = self.with_conn(h, now, |c, cx| {
                    c.close(cx);
                    Ok(())
                });
            }
            _ => {}
        }
    }

    /// The context for a connection being made, before it has a slot
    /// (and so a reader waiting on it).
    fn new_conn_cx(&mut self, now: Instant) -> Cx<'_> {
        Cx { now, tracer: &mut self.tracer, stats: &mut self.stats.tcp, shared: &mut self.tcp_shared, reader: None }
    }

    /// The connection behind `h` together with the context its calls need
    /// (borrowing disjoint parts of the stack).
    fn conn_cx(&mut self, h: SocketHandle, now: Instant) -> Result<(&mut Connection, Cx<'_>), Error> {
        let slot = match self.slots.get_mut(h.index as usize) {
            Some(s) if s.generation == h.generation => s,
            _ => return Err(Error::BadHandle),
        };
        let Some(Socket::Tcp(TcpSocket::Conn(conn))) = slot.socket.as_mut() else {
            return Err(Error::NotConnected);
        };
        let reader = if self.direct_readers.is_empty() {
            None
        } else {
            self.direct_readers.get_mut(&h).map(|r| &mut **r as &mut dyn DirectReader)
        };
        Ok((
            conn,
            Cx { now, tracer: &mut self.tracer, stats: &mut self.stats.tcp, shared: &mut self.tcp_shared, reader },
        ))
    }

    /// Runs `f` on the connection behind `h`, then brings the stack's
    /// tables in step with whatever the connection did.
    pub(super) fn with_conn<T>(
        &mut self,
        h: SocketHandle,
        now: Instant,
        f: impl FnOnce(&mut Connection, &mut Cx) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let (conn, mut cx) = self.conn_cx(h, now)?;
        let r = f(conn, &mut cx);
        self.after_conn(h);
        r
    }

    /// After anything happened to a connection: queue it for transmit,
    /// register its timer, move it to its listener's accept queue once
    /// established, wake the application, and free it once nobody can
    /// refer to it any more.
    pub(super) fn after_conn(&mut self, h: SocketHandle) {
        self.sync_conn(h, true)
    }

    /// `after_conn`, with the choice of putting the connection in the
    /// transmit queue (not when it has just said it has nothing to send).
    pub(super) fn sync_conn(&mut self, h: SocketHandle, requeue: bool) {
        // Runs after every segment in and every call: the slot is looked
        // up once, and the transmit queue and timer heap entries are made
        // through it (what `mark_ready` and `schedule` do).
        let slot = match self.slots.get_mut(h.index as usize) {
            Some(s) if s.generation == h.generation => s,
            _ => return,
        };
        let (parent, user_open) = (slot.parent, slot.user_open);
        let Some(Socket::Tcp(TcpSocket::Conn(conn))) = slot.socket.as_mut() else {
            return;
        };
        let state = conn.state();
        let took_data = conn.fast_open() == FastOpen::TookData;
        let deadline = conn.poll_timeout();
        let woke = conn.take_wake();
        let rst_pending = conn.rst_due.is_some();
        let ooo_delta = conn.take_ooo_delta();
        let mem_delta = conn.take_mem_delta();
        let (local, remote) = (conn.local(), conn.remote());
        self.tcp_shared.ooo_bytes = self.tcp_shared.ooo_bytes.saturating_add_signed(ooo_delta);
        self.tcp_shared.mem_bytes = self.tcp_shared.mem_bytes.saturating_add_signed(mem_delta);
        if requeue && !slot.in_ready {
            slot.in_ready = true;
            self.ready.push_back(h.index);
        }
        if let Some(d) = deadline
            && slot.timer_at.is_none_or(|t| d < t)
        {
            slot.timer_at = Some(d);
            self.timers.push(Reverse((d, h.index, h.generation)));
        }
        if conn.holds_drained_storage() {
            if matches!(state, State::TimeWait | State::Closed | State::LastAck | State::Closing) {
                // Both directions are done: no data will fill them again.
                conn.release_drained_storage(&mut self.tcp_shared.buffers);
            } else if !conn.in_drained {
                conn.in_drained = true;
                self.drained.push_back((self.now + crate::tcp::DRAINED_STORAGE_KEPT, h.index, h.generation));
            }
        }
        if woke && user_open {
            self.wake(h);
        }

        // A listener's child leaves the SYN queue when it leaves
        // SYN-RECEIVED, and waits for `accept` once established. (One that
        // took Fast Open data waits from SYN-RECEIVED on, and leaves the
        // listener's Fast Open count.)
        if let Some(lh) = parent
            && state != State::SynReceived
        {
            let mut queued = false;
            if let Ok(ls) = self.slot_mut(lh)
                && let Some(Socket::Tcp(TcpSocket::Listener(l))) = ls.socket.as_mut()
            {
                if took_data {
                    l.fast_open_pending = l.fast_open_pending.saturating_sub(1);
                } else {
                    l.half_open = l.half_open.saturating_sub(1);
                    if matches!(state, State::Established | State::CloseWait) {
                        l.accept_queue.push_back(h);
                        queued = true;
                    }
                }
            }
            if let Ok(s) = self.slot_mut(h) {
                s.parent = None;
                if !took_data {
                    s.in_accept_queue = queued;
                }
            }
            if queued {
                self.wake(lh);
            }
        }
        let in_accept_queue = self.slot(h).is_ok_and(|s| s.in_accept_queue);
        if state == State::Closed {
            // A CLOSED connection has no TCB as far as the network is
            // concerned (RFC 9293 §3.10.7.1), even while the application
            // holds its handle to read its error: segments for its 4-tuple
            // are answered as for a closed port, or reach a listener. (The
            // 4-tuple may already name a newer connection.)
            if self.tcp_conns.get(&(local, remote)) == Some(&h) {
                self.tcp_conns.remove(&(local, remote));
                self.last_conn = None;
            }
            if !user_open && !in_accept_queue && !rst_pending {
                self.unclaim_port(local.port(), h);
                self.release(h);
            }
        }
    }

    /// Gives back the storage of buffers that drained
    /// `DRAINED_STORAGE_KEPT` ago (or earlier) and are still empty. A busy
    /// connection's buffers are empty at times between reads and ACKs; it
    /// gives them back at most once per period, instead of on every drain.
    pub(super) fn release_drained(&mut self, now: Instant) {
        while let Some(&(due, index, generation)) = self.drained.front() {
            if due > now {
                break;
            }
            self.drained.pop_front();
            let slot = &mut self.slots[index as usize];
            if slot.generation != generation {
                continue;
            }
            if let Some(Socket::Tcp(TcpSocket::Conn(conn))) = slot.socket.as_mut() {
                conn.in_drained = false;
                conn.release_drained_storage(&mut self.tcp_shared.buffers);
            }
        }
        // After a crowd of connections went quiet, the queue's own
        // storage goes too.
        if self.drained.is_empty() && self.drained.capacity() > 1024 {
            self.drained = std::collections::VecDeque::new();
        }
    }

    /// A socket timer expired.
    pub(super) fn socket_timeout(&mut self, now: Instant, h: SocketHandle) {
        if let Some(Socket::Tcp(TcpSocket::Conn(_))) = self.slot(h).ok().and_then(|s| s.socket.as_ref()) {
            // `with_conn` queues it for transmit: whatever fired may send.
            let _ = self.with_conn(h, now, |c, cx| {
                c.handle_timeout(cx);
                Ok(())
            });
        }
    }

    /// An arriving TCP segment (its checksum already verified).
    /// `ce`: the IP header was marked Congestion Experienced (RFC 3168).
    pub(super) fn tcp_input(
        &mut self,
        now: Instant,
        (src, dst): (Ipv4Addr, Ipv4Addr),
        repr: &TcpRepr,
        payload: &[u8],
        ce: bool,
        encap: Option<u16>,
    ) {
        let local = SocketAddrV4::new(dst, repr.dst_port);
        let remote = SocketAddrV4::new(src, repr.src_port);
        // A SYN+FIN that would open a connection (to a listener, or answering our SYN)
        // is dropped when the stack is asked to; in a synchronized state it is processed
        // as any SYN (FreeBSD's `drop_synfin` draws the same line).
        let syn_fin_dropped = self.cfg.drop_syn_fin && repr.flags.syn() && repr.flags.fin();
        if let Some(h) = self.find_conn(local, remote) {
            // A connection carried over UDP takes segments only from its
            // peer's UDP port, and a plain one only plain segments: any
            // other is for no connection (FreeBSD answers it so too).
            // (The RST still carries the connection's IP_TOS, IP_TTL and
            // RFC 2385 key, as FreeBSD's does.)
            if let Some(c) = self.tcp_connection(h)
                && c.udp_encap() != encap
            {
                let mut owner = c.config().clone();
                (owner.tos, owner.ttl) = (c.ip_tos, c.ip_ttl());
                self.stats.count_drop(DropReason::TcpNoSocket);
                self.reply_rst(now, Ends { local, remote, encap }, repr, payload.len(), Some(&owner));
                return;
            }
            if syn_fin_dropped && self.tcp_connection(h).is_some_and(|c| c.state() == State::SynSent) {
                self.stats.count_drop(DropReason::TcpUnacceptable);
                return;
            }
            // A new SYN may take over a connection in TIME-WAIT (RFC 9293
            // §3.10.7.4 note, RFC 6191) when a listener wants it.
            let recycle = repr.flags.syn()
                && !repr.flags.ack()
                && !syn_fin_dropped
                && self
                    .tcp_connection(h)
                    .is_some_and(|c| c.time_wait_allows_new_syn(repr.seq, repr.options.timestamps.map(|t| t.0)))
                && self.find_listener(local).is_some();
            if !recycle {
                self.tcp_conn_input(now, h, repr, payload, ce);
                return;
            }
            // The old connection ends without a word to the peer; an
            // application still holding its socket sees it closed, and
            // `with_conn` frees it now if nobody does.
            let _ = self.with_conn(h, now, |c, cx| {
                c.end_time_wait(cx);
                Ok(())
            });
        }
        if let Some(lh) = self.find_listener(local) {
            if syn_fin_dropped {
                self.stats.count_drop(DropReason::TcpUnacceptable);
                return;
            }
            self.listener_input(now, lh, Ends { local, remote, encap }, repr, payload);
            return;
        }
        self.stats.count_drop(DropReason::TcpNoSocket);
        // A socket bound to the port but neither listening nor connected
        // does not take the segment, but its settings (IP_TOS, IP_TTL, an
        // RFC 2385 key) mark the RST, as in FreeBSD (whose lookup finds
        // the bound socket).
        let owner = self.bound_idle_config(local).cloned();
        self.reply_rst(now, Ends { local, remote, encap }, repr, payload.len(), owner.as_deref());
    }

    /// The settings of a TCP socket bound to `local` (its address, else
    /// the wildcard) that neither listens nor is connected.
    fn bound_idle_config(&self, local: SocketAddrV4) -> Option<&Arc<TcpConfig>> {
        let mut wildcard = None;
        for &h in self.tcp_ports.get(&local.port())?.as_slice() {
            if let Ok(slot) = self.slot(h)
                && let Some(Socket::Tcp(TcpSocket::Idle { local: Some(l), cfg })) = slot.socket.as_ref()
            {
                if l.ip() == local.ip() {
                    return Some(cfg);
                }
                if l.ip().is_unspecified() {
                    wildcard = Some(cfg);
                }
            }
        }
        wildcard
    }

    /// The settings of listener `lh` (its SYN-ACKs and RSTs carry them).
    fn listener_config(&self, lh: SocketHandle) -> Option<&Arc<TcpConfig>> {
        match self.slot(lh).ok()?.socket.as_ref()? {
            Socket::Tcp(TcpSocket::Listener(l)) => Some(&l.cfg),
            _ => None,
        }
    }

    fn tcp_conn_input(&mut self, now: Instant, h: SocketHandle, repr: &TcpRepr, payload: &[u8], ce: bool) {
        // The handshake cannot complete while the accept queue is full:
        // drop the ACK and let the SYN-ACK be retransmitted (Linux does
        // this when `tcp_abort_on_overflow` is off).
        if let Ok(slot) = self.slot(h)
            && let Some(lh) = slot.parent
            && repr.flags.ack()
            && !repr.flags.rst()
            && self.slot(lh).is_ok_and(
                |ls| matches!(&ls.socket, Some(Socket::Tcp(TcpSocket::Listener(l))) if l.accept_queue_full()),
            )
        {
            self.stats.count_drop(DropReason::TcpListenOverflow);
            return;
        }
        let d = self.with_conn(h, now, |c, cx| Ok(c.process(cx, repr, payload, ce)));
        if let Ok(Disposition::Dropped(reason)) = d {
            self.stats.count_drop(reason);
        }
    }

    /// The connection for a 4-tuple (through `last_conn` when it is the
    /// same as the last segment's).
    fn find_conn(&mut self, local: SocketAddrV4, remote: SocketAddrV4) -> Option<SocketHandle> {
        let key = (local, remote);
        if let Some((k, h)) = self.last_conn
            && k == key
        {
            return Some(h);
        }
        let h = self.tcp_conns.get(&key).copied()?;
        self.last_conn = Some((key, h));
        Some(h)
    }

    /// The listener for a segment to `local`: the one bound to that
    /// address and port, else to the port on the wildcard address, else
    /// the catch-all ([`Stack::listen_any`]).
    fn find_listener(&self, local: SocketAddrV4) -> Option<SocketHandle> {
        self.tcp_listeners
            .get(&local)
            .or_else(|| self.tcp_listeners.get(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, local.port())))
            .or_else(|| self.tcp_listeners.get(&CATCH_ALL))
            .copied()
    }

    /// RFC 9293 §3.10.7.2: a segment for a socket in LISTEN.
    fn listener_input(&mut self, now: Instant, lh: SocketHandle, ends: Ends, repr: &TcpRepr, payload: &[u8]) {
        let Ends { local, remote, .. } = ends;
        let flags = repr.flags;
        if flags.rst() {
            // First: an incoming RST is ignored.
            self.stats.count_drop(DropReason::TcpNoSocket);
            return;
        }
        if flags.ack() {
            // An ACK completing a handshake we answered with a SYN cookie
            // (RFC 4987 §3.6): the connection is made now.
            if !flags.syn() && self.syn_cookie_ack(now, lh, ends, repr, payload) {
                return;
            }
            // Second: any other ACK is bad here: <SEQ=SEG.ACK><CTL=RST>.
            self.stats.count_drop(DropReason::TcpBadAck);
            let owner = self.listener_config(lh).cloned();
            self.reply_rst(now, ends, repr, payload.len(), owner.as_deref());
            return;
        }
        if !flags.syn() {
            self.stats.count_drop(DropReason::TcpNoSocket);
            return;
        }
        // Third: a SYN. A SYN to a broadcast or multicast address is not
        // answered (RFC 1122 §4.2.3.10).
        if remote.ip().is_broadcast() || remote.ip().is_multicast() || remote.ip().is_unspecified() {
            self.stats.count_drop(DropReason::IpBadSource);
            return;
        }
        let (syn_full, accept_full) = match self.slot(lh).ok().and_then(|s| s.socket.as_ref()) {
            Some(Socket::Tcp(TcpSocket::Listener(l))) => (l.syn_queue_full(), l.accept_queue_full()),
            _ => (true, true),
        };
        if syn_full {
            // The half-open limit (max_half_open) is hit: a cookie or a drop.
            self.stats.limits.half_open += 1;
        }
        if accept_full || (syn_full && !self.cfg.syn_cookies) {
            self.stats.count_drop(DropReason::TcpListenOverflow);
            return;
        }
        if syn_full {
            // RFC 4987 §3.6: the SYN queue is full, but the SYN is answered
            // all the same, statelessly, with a cookie.
            self.send_syn_cookie(now, lh, ends, repr, payload.len());
            return;
        }
        let Some(Socket::Tcp(TcpSocket::Listener(l))) = self.slot(lh).ok().and_then(|s| s.socket.as_ref()) else {
            return;
        };
        let cfg = l.cfg.clone();
        let fast_open = self.fast_open_choice(&cfg, l.fast_open_pending, ends, repr, payload);
        let iss = self.next_iss.take().unwrap_or_else(|| self.isn.isn(now, local, remote));
        // Answered the way the SYN came.
        let ep = self.endpoints(now, ends, iss);
        let conn = {
            let mut cx = self.new_conn_cx(now);
            // Record the SYN as received by the new connection.
            let (l, r, rp, n) = (local, remote, *repr, payload.len());
            cx.tracer.record(now, || EventKind::TcpSegment {
                direction: Direction::Received,
                local: l,
                remote: r,
                repr: rp,
                payload_len: n,
                retransmission: false,
            });
            cx.stats.segments_in += 1;
            // The listener's address may be the wildcard; the child's is
            // the address the SYN was sent to.
            let mut conn = Connection::accept_syn(&mut cx, &cfg, ep, repr);
            match fast_open {
                FastOpen::TookData => conn.take_fast_open_data(&mut cx, payload),
                FastOpen::GiveCookie => {
                    conn.open = crate::tcp::connection::Opening::Passive(fast_open);
                    cx.stats.fast_open_cookies_sent += 1;
                }
                FastOpen::Off => {}
            }
            conn
        };
        let Ok(h) = self.alloc(Socket::Tcp(TcpSocket::Conn(Box::new(conn)))) else {
            self.stats.count_drop(DropReason::TcpNoBufferSpace);
            return;
        };
        // One that took Fast Open data is readable now: it waits for
        // `accept` from SYN-RECEIVED on.
        let took_data = fast_open == FastOpen::TookData;
        if let Ok(slot) = self.slot_mut(h) {
            slot.user_open = false;
            slot.parent = Some(lh);
            slot.in_accept_queue = took_data;
        }
        if let Ok(ls) = self.slot_mut(lh)
            && let Some(Socket::Tcp(TcpSocket::Listener(l))) = ls.socket.as_mut()
        {
            if took_data {
                l.fast_open_pending += 1;
                l.accept_queue.push_back(h);
            } else {
                l.half_open += 1;
            }
        }
        if took_data {
            self.wake(lh);
        }
        self.claim_port(local.port(), h);
        self.tcp_conns.insert((local, remote), h);
        self.last_conn = None;
        self.after_conn(h);
    }

    /// What a listener with Fast Open (`TcpConfig::fast_open`) does with a
    /// SYN (RFC 7413 §4.2): with a good cookie and data, and room in its
    /// Fast Open queue, take the data; a request for a cookie, or a wrong
    /// one, gets a good one in the SYN-ACK; anything else is an ordinary
    /// SYN. A signed SYN (RFC 2385) leaves no room for the option beside
    /// the others, and Linux does not mix the two either.
    fn fast_open_choice(
        &mut self,
        cfg: &TcpConfig,
        pending: usize,
        ends: Ends,
        syn: &TcpRepr,
        payload: &[u8],
    ) -> FastOpen {
        let Some(shown) = syn.options.fast_open else { return FastOpen::Off };
        if cfg.fast_open == 0 || syn.options.md5 {
            return FastOpen::Off;
        }
        let key = &self.tcp_shared.fast_open_key;
        if shown.is_request() || !key.check(&shown, *ends.remote.ip(), *ends.local.ip()) {
            return FastOpen::GiveCookie;
        }
        if payload.is_empty() {
            return FastOpen::Off;
        }
        if pending >= cfg.fast_open {
            self.stats.tcp.fast_open_queue_full += 1;
            return FastOpen::Off;
        }
        FastOpen::TookData
    }

    /// Answers a SYN with a SYN-ACK whose ISN is a cookie (see
    /// `tcp::syncookie`). Nothing is stored.
    fn send_syn_cookie(&mut self, now: Instant, lh: SocketHandle, ends: Ends, syn: &TcpRepr, len: usize) {
        let Ends { local, remote, encap } = ends;
        // The TSval clock the connection will have (RFC 7323 §5.4).
        let ep = self.endpoints(now, ends, 0);
        let ts_clock = (now.as_millis() as u32).wrapping_add(ep.ts_offset);
        let local_mss = ep.local_mss;
        // (The slot by hand: the listener's settings are borrowed while the
        // cookie generator, another field, is used.)
        let Some(Socket::Tcp(TcpSocket::Listener(l))) =
            self.slots.get(lh.index as usize).filter(|s| s.generation == lh.generation).and_then(|s| s.socket.as_ref())
        else {
            return;
        };
        let cfg = &l.cfg;
        let ip = IpTx::tcp(cfg);
        let key = cfg.md5_key(*remote.ip()).cloned();
        // A signed connection forgoes timestamps for SACK (see
        // `Connection::take_syn_options`).
        let mut offer = *syn;
        if key.is_some() && offer.options.sack_permitted && cfg.sack {
            offer.options.timestamps = None;
        }
        let opts = CookieOptions::negotiate(cfg, &offer.options);
        let cookie = self.syn_cookies.encode(now, local, remote, syn.seq, &opts, ts_clock);
        let mut repr = syncookie::syn_ack_repr(cfg, local_mss, &offer, &opts, &cookie);
        repr.options.md5 = key.is_some();
        let t = &mut self.stats.tcp;
        t.syn_cookies_sent += 1;
        t.segments_in += 1;
        t.segments_out += 1;
        let received = *syn;
        self.tracer.record(now, || EventKind::TcpSegment {
            direction: Direction::Received,
            local,
            remote,
            repr: received,
            payload_len: len,
            retransmission: false,
        });
        self.tracer.record(now, || EventKind::TcpSegment {
            direction: Direction::Sent,
            local,
            remote,
            repr,
            payload_len: 0,
            retransmission: false,
        });
        let mut seg_buf = [0u8; 60];
        let n = repr.header_len();
        let fill = self.cfg.checksum.fill_tx;
        crate::wire::tcp::emit_signed(
            &repr,
            &mut seg_buf[..n],
            (*local.ip(), *remote.ip()),
            key.as_ref().map(|k| k.as_bytes()),
            fill,
        );
        self.send_tcp_segment(now, *local.ip(), *remote.ip(), &seg_buf[..n], ip, encap);
    }

    /// An ACK (without SYN or RST) reached listener `lh` for a 4-tuple with
    /// no connection: if it returns a SYN cookie we sent, the connection is
    /// created in ESTABLISHED, put in the accept queue, and the segment
    /// processed by it (its text and FIN are not lost). Returns false when
    /// the segment is no cookie's (the caller answers with a RST).
    fn syn_cookie_ack(&mut self, now: Instant, lh: SocketHandle, ends: Ends, repr: &TcpRepr, payload: &[u8]) -> bool {
        let Ends { local, remote, .. } = ends;
        // Only while a cookie we sent may still come back: otherwise no
        // ACK can be one, and blind guesses are not even hashed.
        if !self.cfg.syn_cookies || !self.syn_cookies.recently_sent(now) {
            return false;
        }
        let Some(Socket::Tcp(TcpSocket::Listener(l))) = self.slot(lh).ok().and_then(|s| s.socket.as_ref()) else {
            return false;
        };
        let tsecr = repr.options.timestamps.filter(|_| l.cfg.timestamps).map(|(_, ecr)| ecr);
        let accept_full = l.accept_queue_full();
        let client_isn = repr.seq.wrapping_sub(1);
        let Some(opts) = self.syn_cookies.decode(now, local, remote, client_isn, repr.ack.wrapping_sub(1), tsecr)
        else {
            self.stats.tcp.syn_cookies_invalid += 1;
            return false;
        };
        self.stats.tcp.syn_cookies_valid += 1;
        if accept_full {
            // As for a handshake completing into a full accept queue: drop
            // the ACK; the peer's next segment brings the cookie again.
            self.stats.count_drop(DropReason::TcpListenOverflow);
            return true;
        }
        let Some(Socket::Tcp(TcpSocket::Listener(l))) = self.slot(lh).ok().and_then(|s| s.socket.as_ref()) else {
            return false;
        };
        let cfg = l.cfg.clone();
        let ep = self.endpoints(now, ends, 0);
        let conn = {
            let mut cx = self.new_conn_cx(now);
            Connection::from_syn_cookie(&mut cx, &cfg, ep, repr, &opts)
        };
        let Ok(h) = self.alloc(Socket::Tcp(TcpSocket::Conn(Box::new(conn)))) else {
            self.stats.count_drop(DropReason::TcpNoBufferSpace);
            return true;
        };
        // Never half-open: straight into the accept queue.
        if let Ok(slot) = self.slot_mut(h) {
            slot.user_open = false;
            slot.parent = None;
            slot.in_accept_queue = true;
        }
        if let Ok(ls) = self.slot_mut(lh)
            && let Some(Socket::Tcp(TcpSocket::Listener(l))) = ls.socket.as_mut()
        {
            l.accept_queue.push_back(h);
        }
        self.claim_port(local.port(), h);
        self.tcp_conns.insert((local, remote), h);
        self.last_conn = None;
        self.wake(lh);
        // The segment itself: its ACK, window, timestamps, text and FIN,
        // as ESTABLISHED processes them (RFC 9293 §3.10.7.4).
        // (A cookie connection did not negotiate ECN: a CE mark means nothing to it.)
        self.tcp_conn_input(now, h, repr, payload, false);
        true
    }

    /// The RFC 2385 key of the socket a segment from `remote` to `local`
    /// reaches: its connection's, else the listener's or the bound
    /// socket's key for the peer's address.
    pub(super) fn md5_key_for(&mut self, local: SocketAddrV4, remote: SocketAddrV4) -> Option<Arc<Md5Key>> {
        if let Some(h) = self.find_conn(local, remote) {
            return self.tcp_connection(h).and_then(|c| c.md5_key().cloned());
        }
        // Else the listener, or a socket bound to the port, not listening:
        // its RST answer is signed too (as FreeBSD, whose keys belong to
        // the address pair).
        let owner = match self.find_listener(local) {
            Some(lh) => self.listener_config(lh),
            None => self.bound_idle_config(local),
        };
        owner?.md5_key(*remote.ip()).cloned()
    }

    /// RFC 2385 §3.0 for an arriving segment (`segment` its TCP bytes):
    /// true when it may go on. A socket with a key for the peer takes only
    /// segments signed with it; one without takes none signed (as Linux).
    /// Every other segment is dropped without an answer, and counted.
    pub(super) fn md5_check(&mut self, src: Ipv4Addr, dst: Ipv4Addr, repr: &TcpRepr, segment: &[u8]) -> bool {
        let local = SocketAddrV4::new(dst, repr.dst_port);
        let remote = SocketAddrV4::new(src, repr.src_port);
        let key = if self.md5_in_use { self.md5_key_for(local, remote) } else { None };
        let reason = match (key, repr.options.md5) {
            (None, false) => return true,
            (None, true) => DropReason::TcpMd5Unexpected,
            (Some(_), false) => DropReason::TcpMd5NotFound,
            (Some(k), true) => {
                if crate::wire::tcp::verify_md5(src, dst, segment, k.as_bytes()) {
                    return true;
                }
                DropReason::TcpMd5Failure
            }
        };
        self.stats.count_drop(reason);
        false
    }

    /// RFC 9293 §3.10.7.1: the RST answering a segment for no connection,
    /// marked with the settings of `owner`, the socket that answers (a
    /// listener, or one bound to the port): its IP_TOS and IP_TTL, and its
    /// RFC 2385 key for the peer, with which the segment answered was
    /// checked on arrival.
    fn reply_rst(&mut self, now: Instant, ends: Ends, seg: &TcpRepr, len: usize, owner: Option<&TcpConfig>) {
        let Ends { local, remote, encap } = ends;
        if seg.flags.rst() || !self.cfg.reply_to_closed_ports {
            return;
        }
        let ip = owner.map_or(IpTx { dont_frag: true, ..IpTx::default() }, IpTx::tcp);
        // RFC 2385 §2.0: every segment is signed, this one too (once keys
        // are in use, as for the check on arrival).
        let key = if self.md5_in_use { owner.and_then(|c| c.md5_key(*remote.ip())).cloned() } else { None };
        let mut repr = if seg.flags.ack() {
            TcpRepr {
                src_port: local.port(),
                dst_port: remote.port(),
                seq: seg.ack,
                flags: TcpFlags::RST,
                ..Default::default()
            }
        } else {
            TcpRepr {
                src_port: local.port(),
                dst_port: remote.port(),
                seq: 0,
                ack: seg.seq.wrapping_add(seg.segment_len(len) as u32),
                flags: TcpFlags::RST | TcpFlags::ACK,
                options: TcpOptions::default(),
                ..Default::default()
            }
        };
        repr.options.md5 = key.is_some();
        self.stats.tcp.resets_out += 1;
        self.stats.tcp.segments_out += 1;
        self.tracer.record(now, || EventKind::TcpSegment {
            direction: Direction::Sent,
            local,
            remote,
            repr,
            payload_len: 0,
            retransmission: false,
        });
        let mut seg_buf = vec![0u8; repr.header_len()];
        let fill = self.cfg.checksum.fill_tx;
        crate::wire::tcp::emit_signed(
            &repr,
            &mut seg_buf,
            (*local.ip(), *remote.ip()),
            key.as_ref().map(|k| k.as_bytes()),
            fill,
        );
        self.send_tcp_segment(now, *local.ip(), *remote.ip(), &seg_buf, ip, encap);
    }

    /// Sends a TCP segment that belongs to no connection (a RST, a SYN
    /// cookie's SYN-ACK): in an IP packet, or in a UDP datagram to the
    /// peer's port `encap` from the stack's TCP-over-UDP port.
    fn send_tcp_segment(
        &mut self,
        now: Instant,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        segment: &[u8],
        ip: IpTx,
        encap: Option<u16>,
    ) {
        use crate::wire::{IpProtocol, UdpPacket};
        let Some(udp) = self.tunnel_header(encap) else {
            self.send_ip_payload(now, src, dst, IpProtocol::Tcp, segment, ip);
            return;
        };
        let mut buf = vec![0u8; crate::wire::udp::HEADER_LEN + segment.len()];
        buf[crate::wire::udp::HEADER_LEN..].copy_from_slice(segment);
        let addrs = self.cfg.checksum.fill_tx.then_some((src, dst));
        udp.emit(&mut UdpPacket::new_unchecked(&mut buf[..]), segment.len(), addrs);
        self.send_ip_payload(now, src, dst, IpProtocol::Udp, &buf, ip);
    }

    /// Transmits the next segment of a connection in the ready queue into
    /// `out` (the TCP part of a frame). Returns its length, or `None` when
    /// the connection has nothing to send.
    pub(super) fn tcp_poll_segment(&mut self, now: Instant, h: SocketHandle, out: &mut [u8]) -> Option<usize> {
        let (conn, mut cx) = self.conn_cx(h, now).ok()?;
        let n = conn.poll_segment(&mut cx, out);
        let deadline = conn.poll_timeout();
        self.schedule(h, deadline);
        n
    }

    /// Connections in SYN-SENT towards `ip` fail: ARP gave up on it.
    pub(super) fn fail_connects_to(&mut self, now: Instant, ip: Ipv4Addr) {
        let victims: Vec<SocketHandle> = self
            .tcp_connections()
            .filter(|(_, c)| c.state() == State::SynSent && self.next_hop(*c.remote().ip()) == Some(ip))
            .map(|(h, _)| h)
            .collect();
        for h in victims {
            let _ = self.with_conn(h, now, |c, cx| {
                c.fail(cx, Error::HostUnreachable);
                Ok(())
            });
        }
    }
}
