//! Async sockets for tokio: [`TcpListener`], [`TcpStream`], [`TcpSocket`]
//! and [`UdpSocket`] over a [`NetStack`], with `tokio::io::AsyncRead` and
//! `AsyncWrite`, so hyper, `tokio::io::copy` and tokio-util codecs run over
//! ustack unchanged.
//!
//! A call that would block registers the task's waker with the driver
//! under the same lock it checked the socket with, so no readiness change
//! can slip between the check and the registration; the driver wakes the
//! task when that socket changes. The driver is its own thread, so these
//! work in any runtime.

use crate::blocking::{SocketInner, io_error, v4};
use crate::driver::NetStack;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use ustack_core::socket::{Shutdown, SockOpt, SockOptName};
use ustack_core::tcp::State;
use ustack_core::{Error, SocketHandle, Stack};

/// Runs a non-blocking socket call; on EAGAIN registers the waker and
/// returns Pending.
fn poll_call<R>(
    inner: &SocketInner,
    cx: &mut Context<'_>,
    f: impl FnOnce(&mut Stack, SocketHandle) -> Result<R, Error>,
) -> Poll<io::Result<R>> {
    let shared = &inner.net.shared;
    let h = inner.handle;
    let mut g = shared.lock();
    let r = match f(&mut g.stack, h) {
        Err(Error::WouldBlock) => {
            let ws = g.wakers.entry(h).or_default();
            if !ws.iter().any(|w| w.will_wake(cx.waker())) {
                ws.push(cx.waker().clone());
            }
            None
        }
        r => Some(r),
    };
    // Whatever the call queued goes out now.
    shared.settle_and_unlock(g);
    match r {
        None => Poll::Pending,
        Some(r) => Poll::Ready(r.map_err(io_error)),
    }
}

/// A TCP socket that is not yet connected or listening, as
/// `tokio::net::TcpSocket` is: set its options and maybe bind it first,
/// then [`connect`](TcpSocket::connect) or [`listen`](TcpSocket::listen).
/// Options set here apply from the first segment on (the SYN carries the
/// IP_TOS and IP_TTL, the window scale follows SO_RCVBUF).
#[derive(Debug)]
pub struct TcpSocket {
    inner: Arc<SocketInner>,
}

impl TcpSocket {
    tcp_socket_options!();

    /// Connects, resolving when established or failed.
    pub async fn connect(self, addr: impl Into<SocketAddr>) -> io::Result<TcpStream> {
        TcpStream::connect_socket(self.inner, addr.into(), None).await.map(|(stream, _)| stream)
    }

    /// Connects with TCP Fast Open (RFC 7413): `data` is written as the
    /// connection opens, its first part in the SYN when this server gave a
    /// cookie before. Resolves when established, with the bytes written.
    pub async fn connect_with_data(self, addr: impl Into<SocketAddr>, data: &[u8]) -> io::Result<(TcpStream, usize)> {
        TcpStream::connect_socket(self.inner, addr.into(), Some(data)).await
    }
}

/// A listening TCP socket.
#[derive(Debug)]
pub struct TcpListener {
    inner: Arc<SocketInner>,
}

impl TcpListener {
    /// Binds to `addr` (port 0 picks one) and listens with a backlog of 1024.
    pub async fn bind(net: &NetStack, addr: impl Into<SocketAddr>) -> io::Result<TcpListener> {
        // SO_REUSEADDR first, as tokio does on Unix.
        let socket = TcpSocket::new(net)?;
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(1024)
    }

    fast_open_options!();

    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        poll_call(&self.inner, cx, |s, h| s.accept(h)).map_ok(|(h, peer)| {
            (TcpStream { inner: SocketInner::new(self.inner.net.clone(), h) }, SocketAddr::V4(peer))
        })
    }

    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    ip_header_options!();
}

/// A TCP connection.
#[derive(Debug)]
pub struct TcpStream {
    inner: Arc<SocketInner>,
}

impl TcpStream {
    /// Connects to `addr`, resolving when established or failed.
    pub async fn connect(net: &NetStack, addr: impl Into<SocketAddr>) -> io::Result<TcpStream> {
        TcpSocket::new(net)?.connect(addr).await
    }

    /// Connects a socket that may be bound and have options set; it closes
    /// (when `inner` drops) if the connection fails.
    /// [`TcpSocket::connect_with_data`] on a new socket.
    pub async fn connect_with_data(
        net: &NetStack,
        addr: impl Into<SocketAddr>,
        data: &[u8],
    ) -> io::Result<(TcpStream, usize)> {
        TcpSocket::new(net)?.connect_with_data(addr, data).await
    }

    async fn connect_socket(
        inner: Arc<SocketInner>,
        addr: SocketAddr,
        data: Option<&[u8]>,
    ) -> io::Result<(TcpStream, usize)> {
        let (addr, h) = (v4(addr)?, inner.handle);
        let written = match data {
            Some(d) => inner.net.with_stack(|s, _| s.connect_with_data(h, addr, d)).map_err(io_error)?,
            None => inner.net.with_stack(|s, _| s.connect(h, addr)).map(|()| 0).map_err(io_error)?,
        };
        poll_fn(|cx| {
            poll_call(&inner, cx, |s, h| match s.tcp_state(h)? {
                State::SynSent | State::SynReceived => Err(Error::WouldBlock),
                State::Closed => Err(s.recv(h, &mut []).err().unwrap_or(Error::ConnectionRefused)),
                _ => Ok(()),
            })
        })
        .await?;
        Ok((TcpStream { inner }, written))
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// TCP_NODELAY.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        let h = self.inner.handle;
        self.inner.net.with_stack(|s, _| s.set_nodelay(h, nodelay)).map_err(io_error)
    }

    ip_header_options!();
    udp_encapsulation_getter!();

    /// Splits into a reading and a writing half that can move to different
    /// tasks; the connection closes when both are dropped.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        (OwnedReadHalf { inner: self.inner.clone() }, OwnedWriteHalf { inner: self.inner })
    }
}

fn poll_read(inner: &SocketInner, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
    let dst = buf.initialize_unfilled();
    match poll_call(inner, cx, |s, h| s.recv(h, dst)) {
        Poll::Ready(Ok(n)) => {
            buf.advance(n);
            Poll::Ready(Ok(()))
        }
        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        Poll::Pending => Poll::Pending,
    }
}

fn poll_write(inner: &SocketInner, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
    if data.is_empty() {
        return Poll::Ready(Ok(0));
    }
    poll_call(inner, cx, |s, h| s.send(h, data))
}

fn shutdown_write(inner: &SocketInner) -> Poll<io::Result<()>> {
    let h = inner.handle;
    Poll::Ready(inner.net.with_stack(|s, _| s.shutdown(h, Shutdown::Write)).map_err(io_error))
}

impl AsyncRead for TcpStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        poll_read(&self.inner, cx, buf)
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        poll_write(&self.inner, cx, data)
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    /// Half-closes: a FIN follows what was written.
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        shutdown_write(&self.inner)
    }
}

/// The reading half of a [`TcpStream`].
#[derive(Debug)]
pub struct OwnedReadHalf {
    inner: Arc<SocketInner>,
}

/// The writing half of a [`TcpStream`].
#[derive(Debug)]
pub struct OwnedWriteHalf {
    inner: Arc<SocketInner>,
}

impl AsyncRead for OwnedReadHalf {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        poll_read(&self.inner, cx, buf)
    }
}

impl AsyncWrite for OwnedWriteHalf {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        poll_write(&self.inner, cx, data)
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        shutdown_write(&self.inner)
    }
}

/// A UDP socket.
#[derive(Debug)]
pub struct UdpSocket {
    inner: Arc<SocketInner>,
}

impl UdpSocket {
    pub async fn bind(net: &NetStack, addr: impl Into<SocketAddr>) -> io::Result<UdpSocket> {
        let addr = v4(addr)?;
        Ok(UdpSocket { inner: SocketInner::new_udp(net, |s, h| s.bind(h, addr))? })
    }

    /// The catch-all socket (see `blocking::UdpSocket::bind_any`).
    pub fn bind_any(net: &NetStack) -> io::Result<UdpSocket> {
        Ok(UdpSocket { inner: SocketInner::new_udp(net, |s, h| s.udp_bind_any(h))? })
    }

    pub async fn send_to(&self, data: &[u8], addr: impl Into<SocketAddr>) -> io::Result<usize> {
        let dst = v4(addr)?;
        poll_fn(|cx| poll_call(&self.inner, cx, |s, h| s.send_to(h, data, dst))).await
    }

    /// Sends from `src` to `dst`: only on the catch-all socket.
    pub async fn send_from(
        &self,
        data: &[u8],
        src: impl Into<SocketAddr>,
        dst: impl Into<SocketAddr>,
    ) -> io::Result<usize> {
        let (src, dst) = (v4(src)?, v4(dst)?);
        poll_fn(|cx| poll_call(&self.inner, cx, |s, h| s.send_from(h, data, src, dst))).await
    }

    /// Receives a datagram, its sender and the address it was sent to.
    pub async fn recv_msg(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, SocketAddr)> {
        poll_fn(|cx| poll_call(&self.inner, cx, |s, h| s.recv_msg(h, buf)))
            .await
            .map(|(n, src, dst)| (n, SocketAddr::V4(src), SocketAddr::V4(dst)))
    }

    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        poll_fn(|cx| poll_call(&self.inner, cx, |s, h| s.recv_from(h, buf))).await.map(|(n, a)| (n, SocketAddr::V4(a)))
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    ip_header_options!();
}
