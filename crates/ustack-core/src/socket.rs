//! Socket handles and the errors socket calls return.

use core::fmt;

/// Names a socket in a [`Stack`](crate::Stack). A handle whose socket has
/// been closed and whose slot was reused is detected by its generation and
/// fails with [`Error::BadHandle`], like a stale file descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketHandle {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

impl SocketHandle {
    pub(crate) fn new(index: u32, generation: u32) -> Self {
        SocketHandle { index, generation }
    }
    /// A small number for display, like a file descriptor.
    pub fn index(&self) -> u32 {
        self.index
    }
}

impl fmt::Display for SocketHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.index)
    }
}

/// A socket call's failure, named after the errno a BSD socket gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Error {
    /// EAGAIN: nothing to read, no room to write, no connection to accept.
    WouldBlock,
    /// EINPROGRESS: a non-blocking connect has started.
    InProgress,
    /// EALREADY: a connect is already under way.
    Already,
    /// EADDRINUSE: the local address is taken.
    AddrInUse,
    /// EADDRNOTAVAIL: the address is not one of this host's, or no
    /// ephemeral port is free.
    AddrNotAvailable,
    /// ECONNREFUSED: the peer answered the SYN with a RST.
    ConnectionRefused,
    /// ECONNRESET: the peer reset an established connection.
    ConnectionReset,
    /// ECONNABORTED: the connection was aborted locally (e.g. while queued).
    ConnectionAborted,
    /// ETIMEDOUT: retransmissions, keep-alive or the user timeout gave up.
    TimedOut,
    /// ENOTCONN: the socket is not connected.
    NotConnected,
    /// EISCONN: the socket is already connected.
    IsConnected,
    /// EPIPE: writing after shutdown(SHUT_WR) or after the connection ended.
    BrokenPipe,
    /// EINVAL: the call makes no sense in the socket's state.
    InvalidInput,
    /// EBADF: the handle names no open socket.
    BadHandle,
    /// EOPNOTSUPP: the socket type does not support the call.
    NotSupported,
    /// ENOPROTOOPT: unknown socket option.
    NoProtocolOption,
    /// EHOSTUNREACH: no route or ARP gave up.
    HostUnreachable,
    /// ENETUNREACH: no route to the network.
    NetworkUnreachable,
    /// EMSGSIZE: a datagram larger than the protocol allows.
    MessageTooLong,
    /// ENOBUFS: a stack-wide limit was reached.
    NoBufferSpace,
    /// EMFILE: the stack's socket limit was reached.
    TooManySockets,
}

impl Error {
    /// The Linux errno value.
    pub fn errno(self) -> i32 {
        match self {
            Error::WouldBlock => 11,
            Error::InProgress => 115,
            Error::Already => 114,
            Error::AddrInUse => 98,
            Error::AddrNotAvailable => 99,
            Error::ConnectionRefused => 111,
            Error::ConnectionReset => 104,
            Error::ConnectionAborted => 103,
            Error::TimedOut => 110,
            Error::NotConnected => 107,
            Error::IsConnected => 106,
            Error::BrokenPipe => 32,
            Error::InvalidInput => 22,
            Error::BadHandle => 9,
            Error::NotSupported => 95,
            Error::NoProtocolOption => 92,
            Error::HostUnreachable => 113,
            Error::NetworkUnreachable => 101,
            Error::MessageTooLong => 90,
            Error::NoBufferSpace => 105,
            Error::TooManySockets => 24,
        }
    }

    /// The errno's symbolic name, as packetdrill scripts and strace print it.
    pub fn errno_name(self) -> &'static str {
        match self {
            Error::WouldBlock => "EAGAIN",
            Error::InProgress => "EINPROGRESS",
            Error::Already => "EALREADY",
            Error::AddrInUse => "EADDRINUSE",
            Error::AddrNotAvailable => "EADDRNOTAVAIL",
            Error::ConnectionRefused => "ECONNREFUSED",
            Error::ConnectionReset => "ECONNRESET",
            Error::ConnectionAborted => "ECONNABORTED",
            Error::TimedOut => "ETIMEDOUT",
            Error::NotConnected => "ENOTCONN",
            Error::IsConnected => "EISCONN",
            Error::BrokenPipe => "EPIPE",
            Error::InvalidInput => "EINVAL",
            Error::BadHandle => "EBADF",
            Error::NotSupported => "EOPNOTSUPP",
            Error::NoProtocolOption => "ENOPROTOOPT",
            Error::HostUnreachable => "EHOSTUNREACH",
            Error::NetworkUnreachable => "ENETUNREACH",
            Error::MessageTooLong => "EMSGSIZE",
            Error::NoBufferSpace => "ENOBUFS",
            Error::TooManySockets => "EMFILE",
        }
    }

    /// The `io::ErrorKind` a kernel socket's error of this errno has.
    pub fn kind(self) -> std::io::ErrorKind {
        use std::io::ErrorKind as K;
        match self {
            Error::WouldBlock => K::WouldBlock,
            Error::AddrInUse => K::AddrInUse,
            Error::AddrNotAvailable => K::AddrNotAvailable,
            Error::ConnectionRefused => K::ConnectionRefused,
            Error::ConnectionReset => K::ConnectionReset,
            Error::ConnectionAborted => K::ConnectionAborted,
            Error::TimedOut => K::TimedOut,
            Error::NotConnected => K::NotConnected,
            Error::BrokenPipe => K::BrokenPipe,
            Error::InvalidInput => K::InvalidInput,
            Error::NotSupported => K::Unsupported,
            Error::HostUnreachable => K::HostUnreachable,
            Error::NetworkUnreachable => K::NetworkUnreachable,
            Error::TooManySockets | Error::NoBufferSpace => K::OutOfMemory,
            Error::InProgress
            | Error::Already
            | Error::IsConnected
            | Error::BadHandle
            | Error::NoProtocolOption
            | Error::MessageTooLong => K::Other,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Error::WouldBlock => "operation would block",
            Error::InProgress => "operation now in progress",
            Error::Already => "operation already in progress",
            Error::AddrInUse => "address already in use",
            Error::AddrNotAvailable => "cannot assign requested address",
            Error::ConnectionRefused => "connection refused",
            Error::ConnectionReset => "connection reset by peer",
            Error::ConnectionAborted => "software caused connection abort",
            Error::TimedOut => "connection timed out",
            Error::NotConnected => "transport endpoint is not connected",
            Error::IsConnected => "transport endpoint is already connected",
            Error::BrokenPipe => "broken pipe",
            Error::InvalidInput => "invalid argument",
            Error::BadHandle => "bad socket handle",
            Error::NotSupported => "operation not supported",
            Error::NoProtocolOption => "protocol not available",
            Error::HostUnreachable => "no route to host",
            Error::NetworkUnreachable => "network is unreachable",
            Error::MessageTooLong => "message too long",
            Error::NoBufferSpace => "no buffer space available",
            Error::TooManySockets => "too many open sockets",
        };
        write!(f, "{text} ({})", self.errno_name())
    }
}

impl std::error::Error for Error {}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> std::io::Error {
        std::io::Error::new(e.kind(), e)
    }
}

/// Which directions `shutdown` closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    Read,
    Write,
    Both,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_and_kind_match_linux() {
        assert_eq!(Error::ConnectionRefused.errno(), 111);
        assert_eq!(Error::ConnectionRefused.kind(), std::io::ErrorKind::ConnectionRefused);
        let io: std::io::Error = Error::TimedOut.into();
        assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
        assert_eq!(Error::WouldBlock.to_string(), "operation would block (EAGAIN)");
    }
}

/// A socket option with its value, as `setsockopt` names them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SockOpt {
    /// SO_REUSEADDR: bind a port still held by a connection in TIME-WAIT.
    ReuseAddr(bool),
    /// SO_RCVBUF: receive buffer bytes (the window never exceeds it).
    RecvBuffer(usize),
    /// SO_SNDBUF: send buffer bytes.
    SendBuffer(usize),
    /// SO_LINGER: `Some(0)` makes close send a RST.
    Linger(Option<crate::time::Duration>),
    /// SO_KEEPALIVE.
    KeepAlive(bool),
    /// TCP_NODELAY: turn Nagle's algorithm off.
    NoDelay(bool),
    /// TCP_MAXSEG: the largest segment to send and advertise.
    MaxSegment(u16),
    /// TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT.
    KeepIdle(crate::time::Duration),
    KeepInterval(crate::time::Duration),
    KeepCount(u32),
    /// TCP_USER_TIMEOUT: abort when data stays unacknowledged this long.
    UserTimeout(Option<crate::time::Duration>),
    /// TCP_CONGESTION: the congestion control algorithm.
    Congestion(crate::tcp::Algorithm),
    /// SO_ERROR (read only): the pending error, cleared by reading it.
    Error(Option<Error>),
    /// IP_TOS: the type-of-service byte of the socket's packets (RFC 791
    /// §3.1; its upper six bits are the DSCP of RFC 2474, the lower two
    /// ECN's, RFC 3168). A UDP socket's datagrams carry the whole byte.
    /// On TCP only the DSCP is taken: the ECN bits stay TCP's own (ECT(0)
    /// on new data once ECN was negotiated). `get_option` returns the byte
    /// as set (as FreeBSD does); 0 by default.
    Tos(u8),
    /// IP_TTL: the time to live of the socket's packets (RFC 791 §3.1).
    /// `None` goes back to the stack's default (`StackConfig::ttl`), as
    /// Linux's -1 does; `Some(0)` is EINVAL (a value above 255 cannot be
    /// written here; an interface taking an `int` refuses it with EINVAL
    /// itself). `get_option` always answers `Some`: the TTL in use.
    Ttl(Option<u8>),
    /// IP_MTU_DISCOVER: whether the socket's datagrams carry DF and follow
    /// the path MTU the stack learned (RFC 1191). A UDP socket starts at
    /// [`PmtuDiscovery::Want`], as on Linux. TCP always does path MTU
    /// discovery: it takes `Want` and `Do` (which mean that for it) and
    /// refuses the others with ENOPROTOOPT.
    MtuDiscover(PmtuDiscovery),
    /// IP_MTU (read only): the path MTU to a connected socket's peer, the
    /// interface MTU until an ICMP error taught a smaller one. ENOTCONN on
    /// a socket without a peer.
    Mtu(usize),
    /// TCP_REMOTE_UDP_ENCAPS_PORT (FreeBSD): TCP over UDP to this port of
    /// the peer (`TcpConfig::udp_encap_port`; `None` or port 0, plain TCP).
    /// Set before `connect` only: EINVAL on a listener or a connection, and
    /// EINVAL when the stack takes no TCP-over-UDP port
    /// (`StackConfig::tcp_over_udp_port`), as on FreeBSD. On a connection,
    /// `get_option` answers the port its segments go to (for an accepted
    /// one, the port its peer's SYN came from).
    UdpEncapsPort(Option<u16>),
    /// TCP_FASTOPEN: TCP Fast Open on a listener, with this many
    /// connections at most in SYN-RECEIVED on the strength of a cookie
    /// (`TcpConfig::fast_open`; 0, off). Set on a socket before `listen`
    /// or on a listener; EINVAL on a connection, as on Linux.
    FastOpen(usize),
}

/// The modes of IP_MTU_DISCOVER (Linux's `IP_PMTUDISC_*`), for UDP.
///
/// A datagram larger than the path MTU ([`SockOpt::Mtu`]) is split into
/// fragments by ustack in the first two modes and refused with EMSGSIZE in
/// the last two. When an ICMP "fragmentation needed" about one of its
/// datagrams arrives (RFC 1191 §4), the stack learns the smaller path MTU
/// in every mode, and a connected socket not in `Dont` reports EMSGSIZE
/// on its next call, as Linux's does, so the application can size its
/// datagrams again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PmtuDiscovery {
    /// DF clear: routers may fragment (`IP_PMTUDISC_DONT`).
    Dont,
    /// DF on a datagram that fits the path MTU; a larger one is fragmented
    /// at the path MTU without DF (`IP_PMTUDISC_WANT`, the default).
    #[default]
    Want,
    /// DF always; a datagram larger than the path MTU fails with EMSGSIZE
    /// (`IP_PMTUDISC_DO`).
    Do,
    /// DF always, sized to the interface MTU whatever the path MTU: for an
    /// application probing the path itself (RFC 8899's packetization layer
    /// discovery; `IP_PMTUDISC_PROBE`).
    Probe,
}

/// The name of a socket option, for `get_option`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockOptName {
    ReuseAddr,
    RecvBuffer,
    SendBuffer,
    Linger,
    KeepAlive,
    NoDelay,
    MaxSegment,
    KeepIdle,
    KeepInterval,
    KeepCount,
    UserTimeout,
    Congestion,
    Error,
    Tos,
    Ttl,
    MtuDiscover,
    Mtu,
    UdpEncapsPort,
    FastOpen,
}
