//! UDP sockets (RFC 768, RFC 1122 §4.1).
//!
//! A UDP socket is a bounded queue of received datagrams with their
//! senders. Sending needs no state: a datagram goes straight to the IP
//! layer, as in the kernel.

use crate::socket::{Error, PmtuDiscovery, Shutdown};
use std::collections::VecDeque;
use std::net::SocketAddrV4;

#[derive(Debug)]
pub struct UdpSocket {
    local: Option<SocketAddrV4>,
    remote: Option<SocketAddrV4>,
    /// Each datagram with its sender and the address it was sent to.
    rx: VecDeque<(SocketAddrV4, SocketAddrV4, Vec<u8>)>,
    rx_bytes: usize,
    rx_limit: usize,
    /// An asynchronous error (ICMP port unreachable on a connected
    /// socket) reported by the next call, as BSD sockets do.
    error: Option<Error>,
    shut_rd: bool,
    shut_wr: bool,
    /// IP_TOS, the whole byte, and IP_TTL (0: the stack's) of the
    /// socket's datagrams.
    tos: u8,
    ttl: u8,
    /// IP_MTU_DISCOVER: DF and fragmentation of the socket's datagrams.
    pmtu_discovery: PmtuDiscovery,
}

impl UdpSocket {
    pub fn new(rx_limit: usize) -> Self {
        UdpSocket {
            local: None,
            remote: None,
            rx: VecDeque::new(),
            rx_bytes: 0,
            rx_limit,
            error: None,
            shut_rd: false,
            shut_wr: false,
            tos: 0,
            ttl: 0,
            pmtu_discovery: PmtuDiscovery::Want,
        }
    }
    pub fn local(&self) -> Option<SocketAddrV4> {
        self.local
    }
    pub fn remote(&self) -> Option<SocketAddrV4> {
        self.remote
    }
    pub(crate) fn set_local(&mut self, local: SocketAddrV4) {
        self.local = Some(local);
    }
    pub(crate) fn set_remote(&mut self, remote: Option<SocketAddrV4>) {
        self.remote = remote;
    }
    pub fn can_recv(&self) -> bool {
        !self.rx.is_empty() || self.error.is_some() || self.shut_rd
    }
    pub fn can_send(&self) -> bool {
        true
    }
    pub fn shutdown(&mut self, how: Shutdown) {
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            self.shut_rd = true;
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            self.shut_wr = true;
        }
    }
    pub fn is_write_shut(&self) -> bool {
        self.shut_wr
    }

    /// Whether a datagram from `src` is for this socket: a connected
    /// socket takes only its peer's (RFC 1122 §4.1.3.4 leaves filtering to
    /// the application interface; BSD filters on connect).
    pub fn accepts_from(&self, src: SocketAddrV4) -> bool {
        self.remote.is_none_or(|r| r == src)
    }

    /// Queues a datagram from `src` to `dst`; false when the buffer is
    /// full (it is dropped).
    pub fn deliver(&mut self, src: SocketAddrV4, dst: SocketAddrV4, data: &[u8]) -> bool {
        if self.shut_rd {
            return true;
        }
        if self.rx_bytes + data.len() > self.rx_limit {
            return false;
        }
        self.rx_bytes += data.len();
        self.rx.push_back((src, dst, data.to_vec()));
        true
    }

    /// Takes the next datagram; a datagram longer than `buf` is truncated,
    /// as recvfrom does without MSG_TRUNC. Returns its length (as
    /// truncated), its sender and the address it was sent to.
    pub fn recv_msg(&mut self, buf: &mut [u8]) -> Result<(usize, SocketAddrV4, SocketAddrV4), Error> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let Some((src, dst, data)) = self.rx.pop_front() else {
            return if self.shut_rd {
                let none = SocketAddrV4::new(0.into(), 0);
                Ok((0, self.remote.unwrap_or(none), self.local.unwrap_or(none)))
            } else {
                Err(Error::WouldBlock)
            };
        };
        self.rx_bytes -= data.len();
        let n = data.len().min(buf.len());
        buf[..n].copy_from_slice(&data[..n]);
        Ok((n, src, dst))
    }

    pub fn recv_limit(&self) -> usize {
        self.rx_limit
    }
    pub(crate) fn set_recv_limit(&mut self, n: usize) {
        self.rx_limit = n;
    }

    /// IP_TOS of the socket's datagrams.
    pub fn tos(&self) -> u8 {
        self.tos
    }
    pub(crate) fn set_tos(&mut self, tos: u8) {
        self.tos = tos;
    }
    /// IP_TTL of the socket's datagrams; `None` is the stack's.
    pub fn ttl(&self) -> Option<u8> {
        (self.ttl != 0).then_some(self.ttl)
    }
    /// `Some(0)` is taken as `None` (the caller refuses it before).
    pub(crate) fn set_ttl(&mut self, ttl: Option<u8>) {
        self.ttl = ttl.unwrap_or(0);
    }

    /// IP_MTU_DISCOVER of the socket's datagrams.
    pub fn pmtu_discovery(&self) -> PmtuDiscovery {
        self.pmtu_discovery
    }
    pub(crate) fn set_pmtu_discovery(&mut self, mode: PmtuDiscovery) {
        self.pmtu_discovery = mode;
    }

    pub(crate) fn set_error(&mut self, e: Error) {
        self.error = Some(e);
    }
    pub fn take_error(&mut self) -> Option<Error> {
        self.error.take()
    }
}
