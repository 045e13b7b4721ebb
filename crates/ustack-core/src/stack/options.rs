//! `setsockopt` and `getsockopt`: socket options on sockets in any state.
//!
//! On a socket not yet connected, an option changes the settings the
//! connection will start from; on a listener, those of the connections it
//! will accept; on a live connection, what can still change does (buffers
//! grow, keep-alive starts, Nagle turns off, the algorithm is replaced).

use super::{Socket, Stack, TcpSocket};
use crate::socket::{Error, PmtuDiscovery, SockOpt, SockOptName, SocketHandle};
use crate::tcp::{Md5Key, State, TcpConfig};
use crate::time::Duration;
use std::net::Ipv4Addr;
use std::sync::Arc;

/// Smallest buffer a socket may be given (Linux rounds up to about this).
const MIN_BUFFER: usize = 2048;
/// Largest (Linux's default `net.core.rmem_max` is far smaller; this is the
/// RFC 7323 window limit).
const MAX_BUFFER: usize = 1 << 30;

impl Stack {
    /// Sets a socket option. Fails with EINVAL for a value out of range,
    /// ENOPROTOOPT for an option the socket type does not have, EBADF for
    /// a closed handle.
    pub fn set_option(&mut self, h: SocketHandle, opt: SockOpt) -> Result<(), Error> {
        if let SockOpt::ReuseAddr(on) = opt {
            return self.set_reuse_addr(h, on);
        }
        // IP_TTL: 1..=255, or back to the default (Linux's -1).
        if let SockOpt::Ttl(Some(0)) = opt {
            return Err(Error::InvalidInput);
        }
        // TCP over UDP needs the stack's port first (FreeBSD's rule).
        if let SockOpt::UdpEncapsPort(Some(p)) = opt
            && p != 0
            && self.cfg.tcp_over_udp_port.is_none()
        {
            return Err(Error::InvalidInput);
        }
        let udp_limit = |n: usize| n.clamp(MIN_BUFFER, MAX_BUFFER);
        let slot = self.user_slot_mut(h)?;
        match slot.socket.as_mut() {
            Some(Socket::Udp(u)) => match opt {
                SockOpt::RecvBuffer(n) => {
                    u.set_recv_limit(udp_limit(n));
                    Ok(())
                }
                SockOpt::SendBuffer(_) => Ok(()),
                SockOpt::Tos(tos) => {
                    u.set_tos(tos);
                    Ok(())
                }
                SockOpt::Ttl(ttl) => {
                    u.set_ttl(ttl);
                    Ok(())
                }
                SockOpt::MtuDiscover(mode) => {
                    u.set_pmtu_discovery(mode);
                    Ok(())
                }
                SockOpt::Error(_) => Err(Error::InvalidInput),
                _ => Err(Error::NoProtocolOption),
            },
            Some(Socket::Tcp(TcpSocket::Idle { cfg, .. })) => apply(Arc::make_mut(cfg), opt),
            // Only a socket not yet connected chooses how it will be
            // carried (FreeBSD: "You can't change after you are connected").
            Some(Socket::Tcp(TcpSocket::Listener(_) | TcpSocket::Conn(_)))
                if matches!(opt, SockOpt::UdpEncapsPort(_)) =>
            {
                Err(Error::InvalidInput)
            }
            // Fast Open is a listener's: on a connection Linux says EINVAL.
            Some(Socket::Tcp(TcpSocket::Conn(_))) if matches!(opt, SockOpt::FastOpen(_)) => Err(Error::InvalidInput),
            Some(Socket::Tcp(TcpSocket::Listener(l))) => apply(Arc::make_mut(&mut l.cfg), opt),
            // The IP header options of a live connection are its own
            // fields: the next segment, whatever it is (a retransmission,
            // a FIN, a RST, a keep-alive or a pure ACK), carries them, and
            // the settings it shares are not copied.
            Some(Socket::Tcp(TcpSocket::Conn(c))) if matches!(opt, SockOpt::Tos(_) | SockOpt::Ttl(_)) => {
                match opt {
                    SockOpt::Tos(tos) => c.ip_tos = tos,
                    SockOpt::Ttl(ttl) => c.ip_ttl = ttl.unwrap_or(0),
                    _ => {}
                }
                Ok(())
            }
            Some(Socket::Tcp(TcpSocket::Conn(c))) => {
                let mut cfg = c.config().clone();
                apply(&mut cfg, opt)?;
                match opt {
                    SockOpt::RecvBuffer(_) => c.set_recv_buffer(cfg.recv_buffer),
                    SockOpt::SendBuffer(_) => c.set_send_buffer(cfg.send_buffer),
                    SockOpt::NoDelay(on) => c.set_option_nodelay(on),
                    SockOpt::KeepAlive(_) | SockOpt::KeepIdle(_) | SockOpt::KeepInterval(_) | SockOpt::KeepCount(_) => {
                        c.set_keepalive(
                            cfg.keepalive,
                            Some(cfg.keep_idle),
                            Some(cfg.keep_interval),
                            Some(cfg.keep_count),
                        )
                    }
                    SockOpt::Congestion(a) => {
                        c.congestion_mut().switch(a);
                        c.config_mut().congestion = a;
                    }
                    SockOpt::MaxSegment(m) => c.clamp_mss(m as usize),
                    _ => {}
                }
                let live = c.config_mut();
                live.autotune = cfg.autotune;
                live.recv_buffer_max = cfg.recv_buffer_max;
                live.send_buffer_max = cfg.send_buffer_max;
                live.linger = cfg.linger;
                live.user_timeout = cfg.user_timeout;
                self.mark_ready(h);
                Ok(())
            }
            None => Err(Error::BadHandle),
        }
    }

    /// TCP_MD5SIG: sets (`Some`) or removes (`None`) the RFC 2385 key for
    /// segments exchanged with `peer` on TCP socket `h`. Keys are per peer
    /// address, as on Linux. On a socket not yet connected or a listener,
    /// connections made afterwards to or from `peer` use the key; on a
    /// connection to `peer`, its next segments are signed (or no longer)
    /// and arriving ones checked. EINVAL for an empty key or one longer
    /// than 80 bytes ([`crate::tcp::MD5_MAX_KEY_LEN`]), ENOPROTOOPT on a
    /// UDP socket.
    pub fn set_md5_key(&mut self, h: SocketHandle, peer: Ipv4Addr, key: Option<&[u8]>) -> Result<(), Error> {
        let key = match key {
            Some(k) => Some(Arc::new(Md5Key::new(k).ok_or(Error::InvalidInput)?)),
            None => None,
        };
        let set = |cfg: &mut TcpConfig| {
            cfg.md5_keys.retain(|(p, _)| *p != peer);
            if let Some(k) = &key {
                cfg.md5_keys.push((peer, Arc::clone(k)));
            }
        };
        match self.user_slot_mut(h)?.socket.as_mut() {
            Some(Socket::Tcp(TcpSocket::Idle { cfg, .. })) => set(Arc::make_mut(cfg)),
            Some(Socket::Tcp(TcpSocket::Listener(l))) => set(Arc::make_mut(&mut l.cfg)),
            Some(Socket::Tcp(TcpSocket::Conn(c))) => c.set_md5_key(peer, key.clone()),
            Some(Socket::Udp(_)) => return Err(Error::NoProtocolOption),
            None => return Err(Error::BadHandle),
        }
        if key.is_some() {
            self.md5_in_use = true;
        }
        self.mark_ready(h);
        Ok(())
    }

    /// Reads a socket option.
    pub fn get_option(&mut self, h: SocketHandle, name: SockOptName) -> Result<SockOpt, Error> {
        if name == SockOptName::Mtu {
            return self.peer_path_mtu(h).map(SockOpt::Mtu);
        }
        let reuse = self.slot(h)?.reuse_addr;
        let default_ttl = self.cfg.ttl;
        let slot = self.user_slot_mut(h)?;
        let cfg: TcpConfig = match slot.socket.as_mut() {
            Some(Socket::Udp(u)) => {
                return match name {
                    SockOptName::ReuseAddr => Ok(SockOpt::ReuseAddr(reuse)),
                    SockOptName::RecvBuffer => Ok(SockOpt::RecvBuffer(u.recv_limit())),
                    SockOptName::SendBuffer => Ok(SockOpt::SendBuffer(MIN_BUFFER.max(65536))),
                    SockOptName::Error => Ok(SockOpt::Error(u.take_error())),
                    SockOptName::Tos => Ok(SockOpt::Tos(u.tos())),
                    SockOptName::Ttl => Ok(SockOpt::Ttl(Some(u.ttl().unwrap_or(default_ttl)))),
                    SockOptName::MtuDiscover => Ok(SockOpt::MtuDiscover(u.pmtu_discovery())),
                    _ => Err(Error::NoProtocolOption),
                };
            }
            Some(Socket::Tcp(TcpSocket::Idle { cfg, .. })) => (**cfg).clone(),
            Some(Socket::Tcp(TcpSocket::Listener(l))) => (*l.cfg).clone(),
            Some(Socket::Tcp(TcpSocket::Conn(c))) => {
                match name {
                    SockOptName::Error => {
                        // SO_ERROR: the pending error, then the soft error.
                        let e = if c.state() == State::Closed { c.take_error() } else { None };
                        return Ok(SockOpt::Error(e.or(c.soft_error())));
                    }
                    SockOptName::MaxSegment => return Ok(SockOpt::MaxSegment(c.mss().min(0xffff) as u16)),
                    SockOptName::RecvBuffer => return Ok(SockOpt::RecvBuffer(c.recv_buffer_size())),
                    SockOptName::SendBuffer => return Ok(SockOpt::SendBuffer(c.send_buffer_size())),
                    SockOptName::Tos => return Ok(SockOpt::Tos(c.ip_tos)),
                    SockOptName::Ttl => return Ok(SockOpt::Ttl(Some(c.ip_ttl().unwrap_or(default_ttl)))),
                    SockOptName::UdpEncapsPort => return Ok(SockOpt::UdpEncapsPort(c.udp_encap())),
                    _ => {}
                }
                c.config().clone()
            }
            None => return Err(Error::BadHandle),
        };
        Ok(match name {
            SockOptName::ReuseAddr => SockOpt::ReuseAddr(reuse),
            SockOptName::RecvBuffer => SockOpt::RecvBuffer(cfg.recv_buffer),
            SockOptName::SendBuffer => SockOpt::SendBuffer(cfg.send_buffer),
            SockOptName::Linger => SockOpt::Linger(cfg.linger),
            SockOptName::KeepAlive => SockOpt::KeepAlive(cfg.keepalive),
            SockOptName::NoDelay => SockOpt::NoDelay(!cfg.nagle),
            SockOptName::MaxSegment => SockOpt::MaxSegment(cfg.mss.unwrap_or(536)),
            SockOptName::KeepIdle => SockOpt::KeepIdle(cfg.keep_idle),
            SockOptName::KeepInterval => SockOpt::KeepInterval(cfg.keep_interval),
            SockOptName::KeepCount => SockOpt::KeepCount(cfg.keep_count),
            SockOptName::UserTimeout => SockOpt::UserTimeout(cfg.user_timeout),
            SockOptName::Congestion => SockOpt::Congestion(cfg.congestion),
            SockOptName::Error => SockOpt::Error(None),
            SockOptName::Tos => SockOpt::Tos(cfg.tos),
            SockOptName::Ttl => SockOpt::Ttl(Some(cfg.ttl.unwrap_or(default_ttl))),
            // TCP always does path MTU discovery (RFC 1191 §6).
            SockOptName::MtuDiscover => SockOpt::MtuDiscover(PmtuDiscovery::Want),
            SockOptName::Mtu => return Err(Error::NoProtocolOption),
            SockOptName::UdpEncapsPort => SockOpt::UdpEncapsPort(cfg.udp_encap_port),
            SockOptName::FastOpen => SockOpt::FastOpen(cfg.fast_open),
        })
    }

    /// IP_MTU: the path MTU to the peer of a connected socket, the
    /// interface MTU until the stack or the connection learned a smaller
    /// one (RFC 1191).
    fn peer_path_mtu(&mut self, h: SocketHandle) -> Result<usize, Error> {
        let (remote, own) = match self.user_slot_mut(h)?.socket.as_ref() {
            Some(Socket::Udp(u)) => (u.remote().ok_or(Error::NotConnected)?, usize::MAX),
            Some(Socket::Tcp(TcpSocket::Conn(c))) => {
                let own = usize::try_from(c.path_mss).map_or(usize::MAX, |m| m.saturating_add(c.headers()));
                (c.remote(), own)
            }
            Some(Socket::Tcp(_)) => return Err(Error::NotConnected),
            None => return Err(Error::BadHandle),
        };
        Ok(self.path_mtu_to(*remote.ip()).min(own))
    }
}

/// Applies an option to a configuration, checking its range.
fn apply(cfg: &mut TcpConfig, opt: SockOpt) -> Result<(), Error> {
    match opt {
        // An explicit size turns auto-tuning off (Linux's SOCK_RCVBUF_LOCK).
        SockOpt::RecvBuffer(n) => {
            cfg.recv_buffer = n.clamp(MIN_BUFFER, MAX_BUFFER);
            cfg.recv_buffer_max = cfg.recv_buffer;
            cfg.autotune = false;
        }
        SockOpt::SendBuffer(n) => {
            cfg.send_buffer = n.clamp(MIN_BUFFER, MAX_BUFFER);
            cfg.send_buffer_max = cfg.send_buffer;
            cfg.autotune = false;
        }
        SockOpt::Linger(l) => cfg.linger = l,
        SockOpt::KeepAlive(on) => cfg.keepalive = on,
        SockOpt::NoDelay(on) => cfg.nagle = !on,
        // Linux accepts 88..=32767 (RFC 9293 §3.7.1 leaves the floor open).
        SockOpt::MaxSegment(m) if (88..=32767).contains(&m) => cfg.mss = Some(m),
        SockOpt::MaxSegment(_) => return Err(Error::InvalidInput),
        SockOpt::KeepIdle(d) | SockOpt::KeepInterval(d) if d.is_zero() || d > Duration::from_secs(32767) => {
            return Err(Error::InvalidInput);
        }
        SockOpt::KeepIdle(d) => cfg.keep_idle = d,
        SockOpt::KeepInterval(d) => cfg.keep_interval = d,
        SockOpt::KeepCount(n) if n == 0 || n > 127 => return Err(Error::InvalidInput),
        SockOpt::KeepCount(n) => cfg.keep_count = n,
        SockOpt::UserTimeout(t) => cfg.user_timeout = t.filter(|d| !d.is_zero()),
        SockOpt::Congestion(a) => cfg.congestion = a,
        SockOpt::Tos(tos) => cfg.tos = tos,
        // (`Some(0)` was refused with EINVAL in `set_option`.)
        SockOpt::Ttl(ttl) => cfg.ttl = ttl,
        SockOpt::ReuseAddr(_) => {}
        // TCP's segments always carry DF and fit the path MTU (RFC 1191
        // §6): what `Want` and `Do` ask for. It has no fragmenting mode.
        SockOpt::MtuDiscover(PmtuDiscovery::Want | PmtuDiscovery::Do) => {}
        SockOpt::MtuDiscover(_) | SockOpt::Mtu(_) => return Err(Error::NoProtocolOption),
        SockOpt::UdpEncapsPort(p) => cfg.udp_encap_port = p.filter(|&p| p != 0),
        SockOpt::FastOpen(n) => cfg.fast_open = n,
        SockOpt::Error(_) => return Err(Error::InvalidInput),
    }
    Ok(())
}
