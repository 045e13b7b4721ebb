//! Sockets that block, like `std::net`: [`TcpListener`], [`TcpStream`]
//! and [`UdpSocket`] over a [`NetStack`], and [`TcpSocket`] to set options
//! and bind before connecting or listening.
//!
//! Errors are `std::io::Error`s made from the errno a kernel socket would
//! return, so their kinds and messages are the ones `std::net` gives.
//! Read and write timeouts behave as `SO_RCVTIMEO`/`SO_SNDTIMEO` do on
//! Linux: an expired timeout is `WouldBlock`.

use crate::driver::{NetStack, deadline_after};
use crate::phy::sys;
use std::io::{self, Read, Write};
use std::net::{Shutdown as StdShutdown, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use ustack_core::socket::{Shutdown, SockOpt, SockOptName};
use ustack_core::tcp::State;
use ustack_core::{Error, SocketHandle, Stack};

/// The `io::Error` a kernel socket gives for this errno.
pub(crate) fn io_error(e: Error) -> io::Error {
    io::Error::from_raw_os_error(e.errno())
}

pub(crate) fn v4(addr: impl Into<SocketAddr>) -> io::Result<SocketAddrV4> {
    match addr.into() {
        SocketAddr::V4(a) => Ok(a),
        SocketAddr::V6(_) => Err(io::Error::new(io::ErrorKind::Unsupported, "ustack speaks IPv4 only")),
    }
}

/// A socket handle shared by clones; the socket closes when the last goes.
pub(crate) struct SocketInner {
    pub(crate) net: NetStack,
    pub(crate) handle: SocketHandle,
    pub(crate) read_timeout: Mutex<Option<Duration>>,
    write_timeout: Mutex<Option<Duration>>,
    nonblocking: AtomicBool,
}

impl SocketInner {
    pub(crate) fn new(net: NetStack, handle: SocketHandle) -> Arc<Self> {
        Arc::new(SocketInner {
            net,
            handle,
            read_timeout: Mutex::new(None),
            write_timeout: Mutex::new(None),
            nonblocking: AtomicBool::new(false),
        })
    }

    fn read_deadline(&self) -> Option<std::time::Instant> {
        deadline_after(*self.read_timeout.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn write_deadline(&self) -> Option<std::time::Instant> {
        deadline_after(*self.write_timeout.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn nonblocking(&self) -> bool {
        self.nonblocking.load(Ordering::Relaxed)
    }

    /// Runs a socket call; waits and retries while it would block (unless
    /// non-blocking), until `deadline`.
    fn call<R>(
        &self,
        deadline: Option<std::time::Instant>,
        mut f: impl FnMut(&mut Stack, SocketHandle) -> Result<R, Error>,
    ) -> io::Result<R> {
        let h = self.handle;
        let nonblocking = self.nonblocking();
        self.net.wait(h, deadline, |stack| match f(stack, h) {
            Err(Error::WouldBlock) if !nonblocking => None,
            r => Some(r.map_err(io_error)),
        })
    }

    /// A blocking read that, while it waits, lends `buf` to the stack as
    /// the connection's waiting reader (`Stack::set_direct_reader`): data
    /// that arrives in order while nothing is buffered is copied by the
    /// driver straight into `buf`, and this thread finds it there when it
    /// wakes, instead of copying it out of the receive buffer itself.
    fn read_waiting(&self, deadline: Option<std::time::Instant>, buf: &mut [u8]) -> io::Result<usize> {
        let h = self.handle;
        // Takes the buffer back from the stack: the bytes it holds.
        let take_back = |s: &mut Stack, loan: &sys::Loan| {
            let _ = s.take_direct_reader(h);
            loan.filled()
        };
        sys::lend(buf, |loan| {
            let mut lent = false;
            let r = self.net.wait(h, deadline, |s| {
                if std::mem::take(&mut lent) {
                    let n = take_back(s, loan);
                    if n > 0 {
                        return Some(Ok(n));
                    }
                }
                match loan.with_buf(|b| s.recv(h, b)) {
                    Err(Error::WouldBlock) => {
                        lent = s.set_direct_reader(h, Box::new(loan.lender()));
                        None
                    }
                    r => Some(r.map_err(io_error)),
                }
            });
            if lent {
                // The wait ended while the buffer was lent (a timeout, the
                // stack stopping): take it back; what it holds is data.
                let n = take_back(&mut self.net.shared.lock().stack, loan);
                if n > 0 {
                    return Ok(n);
                }
            }
            r
        })
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.net.with_stack(|s, _| s.local_addr(self.handle)).map(SocketAddr::V4).map_err(io_error)
    }

    pub(crate) fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.net.with_stack(|s, _| s.peer_addr(self.handle)).map(SocketAddr::V4).map_err(io_error)
    }

    pub(crate) fn set_option(&self, opt: SockOpt) -> io::Result<()> {
        self.net.with_stack(|s, _| s.set_option(self.handle, opt)).map_err(io_error)
    }

    pub(crate) fn option(&self, name: SockOptName) -> io::Result<SockOpt> {
        self.net.with_stack(|s, _| s.get_option(self.handle, name)).map_err(io_error)
    }

    /// A new UDP socket, bound by `bind` (closed again if that fails).
    pub(crate) fn new_udp(
        net: &NetStack,
        bind: impl FnOnce(&mut Stack, SocketHandle) -> Result<(), Error>,
    ) -> io::Result<Arc<Self>> {
        let h = net
            .with_stack(|s, _| {
                let h = s.udp_socket()?;
                if let Err(e) = bind(s, h) {
                    let _ = s.close(h);
                    return Err(e);
                }
                Ok(h)
            })
            .map_err(io_error)?;
        Ok(SocketInner::new(net.clone(), h))
    }

    /// A new TCP socket, neither bound nor connected.
    pub(crate) fn new_tcp(net: &NetStack) -> io::Result<Arc<Self>> {
        let h = net.with_stack(|s, _| s.tcp_socket()).map_err(io_error)?;
        Ok(SocketInner::new(net.clone(), h))
    }

    /// IP_TTL as std's `set_ttl` takes it: 1..=255, else InvalidInput.
    pub(crate) fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        let ttl = u8::try_from(ttl).map_err(|_| io_error(Error::InvalidInput))?;
        self.set_option(SockOpt::Ttl(Some(ttl)))
    }

    /// IP_TTL in use (the stack's unless set).
    pub(crate) fn ttl(&self) -> io::Result<u32> {
        match self.option(SockOptName::Ttl)? {
            SockOpt::Ttl(ttl) => Ok(u32::from(ttl.unwrap_or(0))),
            _ => Err(io_error(Error::NoProtocolOption)),
        }
    }

    /// IP_TOS.
    pub(crate) fn set_tos(&self, tos: u8) -> io::Result<()> {
        self.set_option(SockOpt::Tos(tos))
    }

    pub(crate) fn tos(&self) -> io::Result<u8> {
        match self.option(SockOptName::Tos)? {
            SockOpt::Tos(tos) => Ok(tos),
            _ => Err(io_error(Error::NoProtocolOption)),
        }
    }
}

/// Names the socket by its handle (what `Debug` of the socket types shows).
impl std::fmt::Debug for SocketInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket").field("handle", &self.handle).finish()
    }
}

impl Drop for SocketInner {
    fn drop(&mut self) {
        let h = self.handle;
        let mut g = self.net.shared.lock();
        let _ = g.stack.close(h);
        g.wakers.remove(&h);
        self.net.shared.settle_and_unlock(g);
    }
}

/// A TCP socket that is not yet connected or listening, as
/// `tokio::net::TcpSocket` is: set its options and maybe bind it first,
/// then [`connect`](TcpSocket::connect) or [`listen`](TcpSocket::listen).
/// Options set here apply from the first segment on (the SYN carries the
/// IP_TOS and IP_TTL, the window scale follows SO_RCVBUF), which
/// `TcpStream::connect` followed by a setter cannot do.
///
/// ```no_run
/// # fn f(net: &ustack::NetStack) -> std::io::Result<()> {
/// use ustack::blocking::TcpSocket;
/// let socket = TcpSocket::new(net)?;
/// socket.set_tos(0xb8)?; // EF, from the SYN on
/// socket.bind("10.7.0.2:40000".parse::<std::net::SocketAddr>().unwrap())?;
/// let stream = socket.connect("10.7.0.1:80".parse::<std::net::SocketAddr>().unwrap())?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TcpSocket {
    inner: Arc<SocketInner>,
}

impl TcpSocket {
    tcp_socket_options!();

    /// Connects, waiting until the connection is established or fails
    /// (ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH, ...).
    pub fn connect(self, addr: impl Into<SocketAddr>) -> io::Result<TcpStream> {
        TcpStream::connect_socket(self.inner, v4(addr)?, None)
    }

    /// Like `connect`, giving up with `TimedOut` after `timeout`.
    pub fn connect_timeout(self, addr: impl Into<SocketAddr>, timeout: Duration) -> io::Result<TcpStream> {
        TcpStream::connect_socket(self.inner, v4(addr)?, Some(timeout))
    }

    /// Connects with TCP Fast Open (RFC 7413), as Linux's
    /// `sendto(MSG_FASTOPEN)`: `data` is written as the connection opens,
    /// its first part in the SYN when this server gave a cookie before (the
    /// first connection to a server asks for one). Returns the stream once
    /// established and the bytes of `data` written.
    pub fn connect_with_data(self, addr: impl Into<SocketAddr>, data: &[u8]) -> io::Result<(TcpStream, usize)> {
        TcpStream::connect_socket_with(self.inner, v4(addr)?, None, Some(data))
    }
}

/// A TCP socket listening for connections.
#[derive(Debug)]
pub struct TcpListener {
    inner: Arc<SocketInner>,
}

impl TcpListener {
    /// Binds to `addr` (port 0 picks one) and listens with a backlog of 128.
    pub fn bind(net: &NetStack, addr: impl Into<SocketAddr>) -> io::Result<TcpListener> {
        Self::bind_with_backlog(net, addr, 128)
    }

    pub fn bind_with_backlog(net: &NetStack, addr: impl Into<SocketAddr>, backlog: usize) -> io::Result<TcpListener> {
        // SO_REUSEADDR first, as std does on Unix.
        let socket = TcpSocket::new(net)?;
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(u32::try_from(backlog).unwrap_or(u32::MAX))
    }

    fast_open_options!();

    /// Waits for a connection.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (h, peer) = self.inner.call(None, |s, h| s.accept(h))?;
        Ok((TcpStream { inner: SocketInner::new(self.inner.net.clone(), h) }, SocketAddr::V4(peer)))
    }

    /// Accepted connections, forever.
    pub fn incoming(&self) -> impl Iterator<Item = io::Result<TcpStream>> + '_ {
        std::iter::repeat_with(move || self.accept().map(|(s, _)| s))
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.inner.nonblocking.store(on, Ordering::Relaxed);
        Ok(())
    }

    ip_header_options!();

    pub fn handle(&self) -> SocketHandle {
        self.inner.handle
    }
}

/// A TCP connection.
#[derive(Debug)]
pub struct TcpStream {
    inner: Arc<SocketInner>,
}

impl TcpStream {
    /// Connects to `addr`, waiting until the connection is established or
    /// fails (ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH, ...).
    pub fn connect(net: &NetStack, addr: impl Into<SocketAddr>) -> io::Result<TcpStream> {
        Self::connect_inner(net, v4(addr)?, None)
    }

    /// Like `connect`, giving up with `TimedOut` after `timeout`.
    pub fn connect_timeout(net: &NetStack, addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        Self::connect_inner(net, v4(*addr)?, Some(timeout))
    }

    fn connect_inner(net: &NetStack, addr: SocketAddrV4, timeout: Option<Duration>) -> io::Result<TcpStream> {
        Self::connect_socket(SocketInner::new_tcp(net)?, addr, timeout)
    }

    /// Connects a socket that may be bound and have options set; it closes
    /// (when `inner` drops) if the connection fails.
    fn connect_socket(inner: Arc<SocketInner>, addr: SocketAddrV4, timeout: Option<Duration>) -> io::Result<TcpStream> {
        Self::connect_socket_with(inner, addr, timeout, None).map(|(stream, _)| stream)
    }

    /// [`TcpSocket::connect_with_data`] on a new socket.
    pub fn connect_with_data(
        net: &NetStack,
        addr: impl Into<SocketAddr>,
        data: &[u8],
    ) -> io::Result<(TcpStream, usize)> {
        Self::connect_socket_with(SocketInner::new_tcp(net)?, v4(addr)?, None, Some(data))
    }

    /// `connect_socket`, with Fast Open's data when there is some.
    fn connect_socket_with(
        inner: Arc<SocketInner>,
        addr: SocketAddrV4,
        timeout: Option<Duration>,
        data: Option<&[u8]>,
    ) -> io::Result<(TcpStream, usize)> {
        let (net, h) = (&inner.net, inner.handle);
        let written = match data {
            Some(d) => net.with_stack(|s, _| s.connect_with_data(h, addr, d)).map_err(io_error)?,
            None => net.with_stack(|s, _| s.connect(h, addr)).map(|()| 0).map_err(io_error)?,
        };
        let r = net.wait(h, deadline_after(timeout), |s| match s.tcp_state(h) {
            Ok(State::SynSent | State::SynReceived) => None,
            Ok(State::Closed) => {
                // The connection failed: its error, like SO_ERROR.
                let e = s.recv(h, &mut []).err().unwrap_or(Error::ConnectionRefused);
                Some(Err(io_error(e)))
            }
            Ok(_) => Some(Ok(())),
            Err(e) => Some(Err(io_error(e))),
        });
        match r {
            Ok(()) => Ok((TcpStream { inner }, written)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(io_error(Error::TimedOut)),
            Err(e) => Err(e),
        }
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    pub fn shutdown(&self, how: StdShutdown) -> io::Result<()> {
        let how = match how {
            StdShutdown::Read => Shutdown::Read,
            StdShutdown::Write => Shutdown::Write,
            StdShutdown::Both => Shutdown::Both,
        };
        let h = self.inner.handle;
        self.inner.net.with_stack(|s, _| s.shutdown(h, how)).map_err(io_error)
    }

    /// TCP_NODELAY: send small writes at once instead of coalescing them.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        let h = self.inner.handle;
        self.inner.net.with_stack(|s, _| s.set_nodelay(h, nodelay)).map_err(io_error)
    }

    ip_header_options!();
    udp_encapsulation_getter!();

    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        check_timeout(t)?;
        *self.inner.read_timeout.lock().unwrap_or_else(|e| e.into_inner()) = t;
        Ok(())
    }
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        check_timeout(t)?;
        *self.inner.write_timeout.lock().unwrap_or_else(|e| e.into_inner()) = t;
        Ok(())
    }
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.inner.nonblocking.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// Another handle to the same connection (the connection closes when
    /// the last handle is dropped).
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream { inner: self.inner.clone() })
    }

    /// Reads without consuming.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        let deadline = self.inner.read_deadline();
        self.inner.call(deadline, |s, h| {
            if !s.can_recv(h) {
                return Err(Error::WouldBlock);
            }
            s.peek(h, buf)
        })
    }

    /// Resets the connection (SO_LINGER 0 and close): the peer gets a RST.
    pub fn abort(self) -> io::Result<()> {
        let h = self.inner.handle;
        self.inner.net.with_stack(|s, _| s.abort(h)).map_err(io_error)
    }

    pub fn handle(&self) -> SocketHandle {
        self.inner.handle
    }
}

fn check_timeout(t: Option<Duration>) -> io::Result<()> {
    if t == Some(Duration::ZERO) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot set a 0 duration timeout"));
    }
    Ok(())
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let deadline = self.inner.read_deadline();
        if buf.is_empty() || self.inner.nonblocking() {
            return self.inner.call(deadline, |s, h| s.recv(h, buf));
        }
        self.inner.read_waiting(deadline, buf)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let deadline = self.inner.write_deadline();
        self.inner.call(deadline, |s, h| s.send(h, buf))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A UDP socket.
#[derive(Debug)]
pub struct UdpSocket {
    inner: Arc<SocketInner>,
}

impl UdpSocket {
    pub fn bind(net: &NetStack, addr: impl Into<SocketAddr>) -> io::Result<UdpSocket> {
        let addr = v4(addr)?;
        Ok(UdpSocket { inner: SocketInner::new_udp(net, |s, h| s.bind(h, addr))? })
    }

    /// The catch-all socket: receives the datagrams to any port no other
    /// socket has (to any address, with `StackConfig::any_ip`), each with
    /// the address it was sent to ([`UdpSocket::recv_msg`]), and answers
    /// from that address ([`UdpSocket::send_from`]): the UDP half of a
    /// transparent proxy or VPN client. One per stack.
    pub fn bind_any(net: &NetStack) -> io::Result<UdpSocket> {
        Ok(UdpSocket { inner: SocketInner::new_udp(net, |s, h| s.udp_bind_any(h))? })
    }

    pub fn send_to(&self, buf: &[u8], addr: impl Into<SocketAddr>) -> io::Result<usize> {
        let dst = v4(addr)?;
        let deadline = self.inner.write_deadline();
        self.inner.call(deadline, |s, h| s.send_to(h, buf, dst))
    }

    /// Sends from `src`, an address the stack takes, to `dst`: only on the
    /// catch-all socket ([`UdpSocket::bind_any`]).
    pub fn send_from(&self, buf: &[u8], src: impl Into<SocketAddr>, dst: impl Into<SocketAddr>) -> io::Result<usize> {
        let (src, dst) = (v4(src)?, v4(dst)?);
        let deadline = self.inner.write_deadline();
        self.inner.call(deadline, |s, h| s.send_from(h, buf, src, dst))
    }

    /// Receives a datagram, its sender and the address it was sent to.
    pub fn recv_msg(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, SocketAddr)> {
        let deadline = self.inner.read_deadline();
        self.inner
            .call(deadline, |s, h| s.recv_msg(h, buf))
            .map(|(n, src, dst)| (n, SocketAddr::V4(src), SocketAddr::V4(dst)))
    }

    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let deadline = self.inner.read_deadline();
        self.inner.call(deadline, |s, h| s.recv_from(h, buf)).map(|(n, a)| (n, SocketAddr::V4(a)))
    }

    pub fn connect(&self, addr: impl Into<SocketAddr>) -> io::Result<()> {
        let dst = v4(addr)?;
        let h = self.inner.handle;
        self.inner.net.with_stack(|s, _| s.connect(h, dst)).map_err(io_error)
    }

    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        let deadline = self.inner.write_deadline();
        self.inner.call(deadline, |s, h| s.send(h, buf))
    }

    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let deadline = self.inner.read_deadline();
        self.inner.call(deadline, |s, h| s.recv(h, buf))
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        check_timeout(t)?;
        *self.inner.read_timeout.lock().unwrap_or_else(|e| e.into_inner()) = t;
        Ok(())
    }
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        check_timeout(t)?;
        *self.inner.write_timeout.lock().unwrap_or_else(|e| e.into_inner()) = t;
        Ok(())
    }
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.inner.nonblocking.store(on, Ordering::Relaxed);
        Ok(())
    }

    ip_header_options!();
}
