//! ustack shell: devices, the driver loop and std-like socket APIs over
//! [`ustack_core`].
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use ustack::blocking::TcpListener;
//! use ustack::phy::tun::{TunDevice, TunOptions};
//! use ustack::{DriverOptions, NetStack, StackConfig};
//!
//! let dev = TunDevice::open(&TunOptions { name: "ustack0".into(), tap: false, mtu: 1500, offload: true })?;
//! let net = NetStack::start(dev, StackConfig::ip("10.7.0.2/24".parse().unwrap()), DriverOptions::default())?;
//! let listener = TcpListener::bind(&net, "10.7.0.2:7".parse::<std::net::SocketAddr>().unwrap())?;
//! let (mut conn, _) = listener.accept()?;
//! let mut buf = [0u8; 1024];
//! let n = conn.read(&mut buf)?;
//! conn.write_all(&buf[..n])?;
//! # Ok::<(), std::io::Error>(())
//! ```

/// IP_TTL, IP_TOS and path MTU accessors, the same on every socket type of
/// both APIs: each forwards to its shared socket state (`self.inner`).
macro_rules! ip_header_options {
    () => {
        /// IP_TTL of the socket's packets (1..=255; 0 or above 255 is InvalidInput).
        pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
            self.inner.set_ttl(ttl)
        }
        /// IP_TTL in use: the stack's configured TTL unless set.
        pub fn ttl(&self) -> io::Result<u32> {
            self.inner.ttl()
        }
        /// IP_TOS of the socket's packets: UDP sends the whole byte, TCP its
        /// DSCP (the ECN bits are TCP's own).
        pub fn set_tos(&self, tos: u8) -> io::Result<()> {
            self.inner.set_tos(tos)
        }
        /// IP_TOS as set (0 by default).
        pub fn tos(&self) -> io::Result<u8> {
            self.inner.tos()
        }
        /// IP_MTU_DISCOVER: whether the socket's packets carry DF and how a
        /// UDP datagram larger than the path MTU is treated (fragmented, or
        /// refused with EMSGSIZE); see [`PmtuDiscovery`](crate::PmtuDiscovery). TCP takes `Want`
        /// and `Do` only: it always does path MTU discovery.
        pub fn set_mtu_discover(&self, mode: $crate::PmtuDiscovery) -> io::Result<()> {
            self.inner.set_option($crate::core::socket::SockOpt::MtuDiscover(mode))
        }
        /// IP_MTU_DISCOVER in use (`Want` unless set).
        pub fn mtu_discover(&self) -> io::Result<$crate::PmtuDiscovery> {
            use $crate::core::socket::{SockOpt, SockOptName};
            match self.inner.option(SockOptName::MtuDiscover)? {
                SockOpt::MtuDiscover(mode) => Ok(mode),
                _ => Err($crate::blocking::io_error($crate::core::Error::NoProtocolOption)),
            }
        }
        /// IP_MTU: the path MTU to the connected peer (the interface MTU
        /// until a router's ICMP error taught a smaller one); NotConnected
        /// without a peer.
        pub fn path_mtu(&self) -> io::Result<usize> {
            use $crate::core::socket::{SockOpt, SockOptName};
            match self.inner.option(SockOptName::Mtu)? {
                SockOpt::Mtu(mtu) => Ok(mtu),
                _ => Err($crate::blocking::io_error($crate::core::Error::NoProtocolOption)),
            }
        }
    };
}

/// `udp_encapsulation()`, on TCP sockets and streams of both interfaces.
macro_rules! udp_encapsulation_getter {
    () => {
        /// The peer's UDP port when the connection is carried over UDP
        /// (`StackConfig::tcp_over_udp_port`): the one set with
        /// `set_udp_encapsulation`, or for an accepted stream the one its
        /// peer's SYN came from; `None` for plain TCP.
        pub fn udp_encapsulation(&self) -> io::Result<Option<u16>> {
            use $crate::core::socket::{SockOpt, SockOptName};
            match self.inner.option(SockOptName::UdpEncapsPort)? {
                SockOpt::UdpEncapsPort(port) => Ok(port),
                _ => Err($crate::blocking::io_error($crate::core::Error::NoProtocolOption)),
            }
        }
    };
}

/// TCP Fast Open (RFC 7413), on TCP sockets before `listen` and on
/// listeners of both interfaces.
macro_rules! fast_open_options {
    () => {
        /// TCP_FASTOPEN: a listener takes the data of a SYN that carries a
        /// Fast Open cookie it gave before, and its accepted stream may
        /// answer before the handshake ends, saving the client a round
        /// trip; at most `qlen` such connections wait for their handshake
        /// at once. 0 turns it off (the default).
        pub fn set_fast_open(&self, qlen: usize) -> io::Result<()> {
            use $crate::core::socket::SockOpt;
            self.inner.set_option(SockOpt::FastOpen(qlen))
        }
        pub fn fast_open(&self) -> io::Result<usize> {
            use $crate::core::socket::{SockOpt, SockOptName};
            match self.inner.option(SockOptName::FastOpen)? {
                SockOpt::FastOpen(n) => Ok(n),
                _ => Err($crate::blocking::io_error($crate::core::Error::NoProtocolOption)),
            }
        }
    };
}

/// What a [`blocking::TcpSocket`] and a [`tokio::TcpSocket`] share: `new`,
/// the options and binding set before it connects or listens (so they
/// apply from the SYN on), and `listen`; each forwards to its shared socket
/// state (`self.inner`).
macro_rules! tcp_socket_options {
    () => {
        /// A new IPv4 TCP socket (`socket(AF_INET, SOCK_STREAM, 0)`).
        pub fn new(net: &NetStack) -> io::Result<TcpSocket> {
            Ok(TcpSocket { inner: SocketInner::new_tcp(net)? })
        }
        /// Listens with room for `backlog` connections awaiting `accept`
        /// (an unbound socket gets an ephemeral port, as on Linux).
        /// Accepted connections inherit the socket's options.
        pub fn listen(self, backlog: u32) -> io::Result<TcpListener> {
            let h = self.inner.handle;
            self.inner.net.with_stack(|s, _| s.listen(h, backlog as usize)).map_err(io_error)?;
            Ok(TcpListener { inner: self.inner })
        }
        /// Listens on every port no other listener has: on the stack's own
        /// addresses, and with `StackConfig::any_ip` on any address (a VPN
        /// client's or transparent proxy's TUN device, as tun2socks). Each
        /// accepted stream's `local_addr` is where its peer meant to go.
        /// One per stack (EADDRINUSE); the socket must not be bound.
        pub fn listen_any(self, backlog: u32) -> io::Result<TcpListener> {
            let h = self.inner.handle;
            self.inner.net.with_stack(|s, _| s.listen_any(h, backlog as usize)).map_err(io_error)?;
            Ok(TcpListener { inner: self.inner })
        }
        /// TCP over UDP (FreeBSD's TCP_REMOTE_UDP_ENCAPS_PORT): the
        /// connection's segments travel in UDP datagrams to this port of the
        /// peer, from the stack's `StackConfig::tcp_over_udp_port`, through
        /// NATs and firewalls that pass only UDP. InvalidInput when the stack
        /// has no such port; `None`, plain TCP. Before `connect` only.
        pub fn set_udp_encapsulation(&self, port: Option<u16>) -> io::Result<()> {
            self.inner.set_option(SockOpt::UdpEncapsPort(port))
        }
        udp_encapsulation_getter!();
        fast_open_options!();
        /// SO_REUSEADDR: bind a port still held by a connection in TIME-WAIT.
        pub fn set_reuseaddr(&self, on: bool) -> io::Result<()> {
            self.inner.set_option(SockOpt::ReuseAddr(on))
        }
        pub fn reuseaddr(&self) -> io::Result<bool> {
            match self.inner.option(SockOptName::ReuseAddr)? {
                SockOpt::ReuseAddr(on) => Ok(on),
                _ => Err(io_error(Error::NoProtocolOption)),
            }
        }
        /// TCP_NODELAY: send small writes at once instead of coalescing them.
        pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
            self.inner.set_option(SockOpt::NoDelay(on))
        }
        pub fn nodelay(&self) -> io::Result<bool> {
            match self.inner.option(SockOptName::NoDelay)? {
                SockOpt::NoDelay(on) => Ok(on),
                _ => Err(io_error(Error::NoProtocolOption)),
            }
        }
        /// SO_RCVBUF: the receive buffer, and so the largest window the
        /// SYN's window scale must cover (auto-tuning stops for this socket).
        pub fn set_recv_buffer_size(&self, size: u32) -> io::Result<()> {
            self.inner.set_option(SockOpt::RecvBuffer(size as usize))
        }
        pub fn recv_buffer_size(&self) -> io::Result<u32> {
            match self.inner.option(SockOptName::RecvBuffer)? {
                SockOpt::RecvBuffer(n) => Ok(u32::try_from(n).unwrap_or(u32::MAX)),
                _ => Err(io_error(Error::NoProtocolOption)),
            }
        }
        /// SO_SNDBUF: the send buffer.
        pub fn set_send_buffer_size(&self, size: u32) -> io::Result<()> {
            self.inner.set_option(SockOpt::SendBuffer(size as usize))
        }
        pub fn send_buffer_size(&self) -> io::Result<u32> {
            match self.inner.option(SockOptName::SendBuffer)? {
                SockOpt::SendBuffer(n) => Ok(u32::try_from(n).unwrap_or(u32::MAX)),
                _ => Err(io_error(Error::NoProtocolOption)),
            }
        }
        /// SO_KEEPALIVE, with the stack's idle time, interval and count.
        pub fn set_keepalive(&self, on: bool) -> io::Result<()> {
            self.inner.set_option(SockOpt::KeepAlive(on))
        }
        pub fn keepalive(&self) -> io::Result<bool> {
            match self.inner.option(SockOptName::KeepAlive)? {
                SockOpt::KeepAlive(on) => Ok(on),
                _ => Err(io_error(Error::NoProtocolOption)),
            }
        }
        /// SO_LINGER: `Some(Duration::ZERO)` makes closing send a RST.
        pub fn set_linger(&self, linger: Option<std::time::Duration>) -> io::Result<()> {
            self.inner.set_option(SockOpt::Linger(linger))
        }
        pub fn linger(&self) -> io::Result<Option<std::time::Duration>> {
            match self.inner.option(SockOptName::Linger)? {
                SockOpt::Linger(l) => Ok(l),
                _ => Err(io_error(Error::NoProtocolOption)),
            }
        }
        ip_header_options!();
        /// Binds to `addr` (port 0 picks one): the source of a connection,
        /// or where a listener listens. EADDRINUSE when the port is taken.
        pub fn bind(&self, addr: impl Into<SocketAddr>) -> io::Result<()> {
            let addr = v4(addr)?;
            let h = self.inner.handle;
            self.inner.net.with_stack(|s, _| s.bind(h, addr)).map_err(io_error)
        }
        pub fn local_addr(&self) -> io::Result<SocketAddr> {
            self.inner.local_addr()
        }
        /// The socket's handle in the core [`Stack`](ustack_core::Stack).
        pub fn handle(&self) -> SocketHandle {
            self.inner.handle
        }
    };
}

pub mod blocking;
pub mod driver;
pub mod phy;
#[cfg(feature = "tokio")]
pub mod tokio;

pub use driver::{DriverOptions, NetStack};
pub use ustack_core as core;
pub use ustack_core::{PmtuDiscovery, Stack, StackConfig};
