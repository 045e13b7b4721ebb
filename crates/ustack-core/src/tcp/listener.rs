//! A socket in LISTEN: its backlog of connections.
//!
//! A listener keeps two queues, as BSD and Linux do: half-open connections
//! in SYN-RECEIVED (the SYN queue), and established connections the
//! application has not yet accepted (the accept queue). The connections
//! themselves live in the stack's socket table; the listener holds their
//! handles.

use super::TcpConfig;
use crate::socket::SocketHandle;
use std::collections::VecDeque;
use std::net::SocketAddrV4;
use std::sync::Arc;

#[derive(Debug)]
pub struct Listener {
    pub(crate) local: SocketAddrV4,
    /// Most established connections waiting for `accept`.
    pub(crate) backlog: usize,
    /// Connections in SYN-RECEIVED that this listener created.
    pub(crate) half_open: usize,
    /// Most half-open connections.
    pub(crate) max_half_open: usize,
    /// Connections in SYN-RECEIVED whose SYN's data was taken with a Fast
    /// Open cookie (they wait in the accept queue, not the SYN queue).
    pub(crate) fast_open_pending: usize,
    pub(crate) accept_queue: VecDeque<SocketHandle>,
    /// Settings each new connection starts from.
    pub(crate) cfg: Arc<TcpConfig>,
}

impl Listener {
    pub fn new(local: SocketAddrV4, backlog: usize, max_half_open: usize, cfg: Arc<TcpConfig>) -> Self {
        Listener {
            local,
            backlog: backlog.max(1),
            half_open: 0,
            max_half_open,
            fast_open_pending: 0,
            accept_queue: VecDeque::new(),
            cfg,
        }
    }
    pub fn local(&self) -> SocketAddrV4 {
        self.local
    }
    pub fn backlog(&self) -> usize {
        self.backlog
    }
    /// Connections ready for `accept`.
    pub fn pending(&self) -> usize {
        self.accept_queue.len()
    }
    pub fn half_open(&self) -> usize {
        self.half_open
    }
    /// The accept queue is full: new handshakes may not complete.
    pub fn accept_queue_full(&self) -> bool {
        self.accept_queue.len() >= self.backlog
    }
    /// The SYN queue is full: new SYNs are not answered.
    pub fn syn_queue_full(&self) -> bool {
        self.half_open >= self.max_half_open
    }
}
