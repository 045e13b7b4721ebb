//! UDP in the stack: binding, sending, demultiplexing, and ICMP port
//! unreachable for closed ports (RFC 1122 §4.1.3.1).

use super::ip::{IP_HEADER, IcmpError, IpTx};
use super::{CATCH_ALL, Socket, Stack};
use crate::socket::{Error, PmtuDiscovery, SocketHandle};
use crate::stats::DropReason;
use crate::time::Instant;
use crate::udp::UdpSocket;
use crate::wire::icmpv4::DstUnreachable;
use crate::wire::{IpProtocol, Ipv4Repr, UdpPacket, UdpRepr};
use std::net::{Ipv4Addr, SocketAddrV4};

/// Largest UDP payload in one IPv4 datagram.
const MAX_UDP_PAYLOAD: usize = 65535 - 20 - 8;
/// Frames waiting in the stack beyond which `send_to` reports EAGAIN.
const MAX_PENDING_BYTES: usize = 4 << 20;

impl Stack {
    pub fn udp_socket(&mut self) -> Result<SocketHandle, Error> {
        let limit = self.cfg.udp_buffer;
        self.alloc(Socket::Udp(Box::new(UdpSocket::new(limit))))
    }

    fn udp_mut(&mut self, h: SocketHandle) -> Result<&mut UdpSocket, Error> {
        match self.user_slot_mut(h)?.socket.as_mut() {
            Some(Socket::Udp(u)) => Ok(u),
            _ => Err(Error::NotSupported),
        }
    }

    fn udp_port_free(&self, addr: SocketAddrV4) -> bool {
        let any = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, addr.port());
        // The TCP-over-UDP port is the stack's own, on every address.
        if self.cfg.tcp_over_udp_port == Some(addr.port()) {
            return false;
        }
        if addr.ip().is_unspecified() {
            !self.udp_ports.keys().any(|k| k.port() == addr.port())
        } else {
            !self.udp_ports.contains_key(&addr) && !self.udp_ports.contains_key(&any)
        }
    }

    pub(super) fn udp_bind(&mut self, h: SocketHandle, addr: SocketAddrV4) -> Result<(), Error> {
        if self.udp_mut(h)?.local().is_some() {
            return Err(Error::InvalidInput);
        }
        let ip = *addr.ip();
        // A shard receives only the datagrams of its own ports.
        let shard = self.cfg.shard;
        let local = if addr.port() == 0 {
            let port = self
                .pick_ephemeral(|s, p| {
                    shard.is_none_or(|sh| sh.owns_udp(p)) && s.udp_port_free(SocketAddrV4::new(ip, p))
                })
                .ok_or(Error::AddrInUse)?;
            SocketAddrV4::new(ip, port)
        } else if shard.is_some_and(|sh| !sh.owns_udp(addr.port())) {
            return Err(Error::AddrNotAvailable);
        } else if self.udp_port_free(addr) {
            addr
        } else {
            return Err(Error::AddrInUse);
        };
        self.udp_mut(h)?.set_local(local);
        self.udp_ports.insert(local, h);
        Ok(())
    }

    /// Binds to an ephemeral port if the socket is not bound yet.
    fn udp_autobind(&mut self, h: SocketHandle) -> Result<SocketAddrV4, Error> {
        if let Some(l) = self.udp_mut(h)?.local() {
            return Ok(l);
        }
        self.udp_bind(h, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))?;
        self.udp_mut(h)?.local().ok_or(Error::InvalidInput)
    }

    pub(super) fn udp_connect(&mut self, h: SocketHandle, remote: SocketAddrV4) -> Result<(), Error> {
        if remote.port() == 0 {
            return Err(Error::InvalidInput);
        }
        let src = self.source_address_for(*remote.ip()).ok_or(Error::NetworkUnreachable)?;
        let local = self.udp_autobind(h)?;
        // The catch-all talks to everyone.
        if local == CATCH_ALL {
            return Err(Error::InvalidInput);
        }
        // BSD: a socket bound to the wildcard address takes the source
        // address of the route on connect, and getsockname shows it (Linux
        // ip4_datagram_connect does the same).
        if local.ip().is_unspecified() {
            let local_now = SocketAddrV4::new(src, local.port());
            self.udp_ports.remove(&local);
            self.udp_ports.insert(local_now, h);
            self.udp_mut(h)?.set_local(local_now);
        }
        self.udp_mut(h)?.set_remote(Some(remote));
        Ok(())
    }

    /// Makes UDP socket `h` the catch-all: it receives the datagrams to any
    /// port no other socket has (on the host's addresses, and with
    /// [`crate::StackConfig::any_ip`] on any address), each with the address
    /// it was sent to ([`Stack::recv_msg`]), and answers from that address
    /// with [`Stack::send_from`]: the UDP half of a transparent proxy or a
    /// VPN client (DNS, QUIC). One per stack (EADDRINUSE); EINVAL if the
    /// socket is bound.
    pub fn udp_bind_any(&mut self, h: SocketHandle) -> Result<(), Error> {
        if self.udp_mut(h)?.local().is_some() {
            return Err(Error::InvalidInput);
        }
        if self.udp_ports.contains_key(&CATCH_ALL) {
            return Err(Error::AddrInUse);
        }
        self.udp_mut(h)?.set_local(CATCH_ALL);
        self.udp_ports.insert(CATCH_ALL, h);
        Ok(())
    }

    /// Sends one datagram to `dst`. Binds an ephemeral port first if needed.
    /// A catch-all socket ([`Stack::udp_bind_any`]) has no address of its
    /// own to send from: it uses [`Stack::send_from`] (EINVAL here).
    pub fn send_to(&mut self, h: SocketHandle, data: &[u8], dst: SocketAddrV4) -> Result<usize, Error> {
        self.udp_send(h, data, None, dst)
    }

    /// Sends one datagram from `src` to `dst` on the catch-all socket
    /// ([`Stack::udp_bind_any`]): the answer to a datagram it received for
    /// `src` (Linux's IP_TRANSPARENT with a chosen source). `src` must be an
    /// address the stack takes and a port other than 0 (EADDRNOTAVAIL,
    /// EINVAL); on any other socket, EINVAL.
    pub fn send_from(
        &mut self,
        h: SocketHandle,
        data: &[u8],
        src: SocketAddrV4,
        dst: SocketAddrV4,
    ) -> Result<usize, Error> {
        if self.udp_mut(h)?.local() != Some(CATCH_ALL) || src.port() == 0 {
            return Err(Error::InvalidInput);
        }
        if !self.takes_address(*src.ip()) {
            return Err(Error::AddrNotAvailable);
        }
        self.udp_send(h, data, Some(src), dst)
    }

    /// Sends one datagram to `dst`, from `from` (the catch-all's
    /// `send_from`) or from the socket's own address.
    fn udp_send(
        &mut self,
        h: SocketHandle,
        data: &[u8],
        from: Option<SocketAddrV4>,
        dst: SocketAddrV4,
    ) -> Result<usize, Error> {
        if let Some(e) = self.udp_mut(h)?.take_error() {
            return Err(e);
        }
        if self.udp_mut(h)?.is_write_shut() {
            return Err(Error::BrokenPipe);
        }
        if data.len() > MAX_UDP_PAYLOAD {
            return Err(Error::MessageTooLong);
        }
        if dst.port() == 0 {
            return Err(Error::InvalidInput);
        }
        if self.pending.iter().map(|(f, _)| f.len()).sum::<usize>() > MAX_PENDING_BYTES {
            return Err(Error::WouldBlock);
        }
        let local = match from {
            Some(src) => src,
            None => self.udp_autobind(h)?,
        };
        if local == CATCH_ALL {
            return Err(Error::InvalidInput);
        }
        let src = if local.ip().is_unspecified() {
            self.source_address_for(*dst.ip()).ok_or(Error::NetworkUnreachable)?
        } else {
            *local.ip()
        };
        let repr = UdpRepr { src_port: local.port(), dst_port: dst.port() };
        let ip = self.udp_ip_tx(h, *dst.ip(), IP_HEADER + repr.header_len() + data.len())?;
        let mut buf = vec![0u8; repr.header_len() + data.len()];
        buf[repr.header_len()..].copy_from_slice(data);
        let addrs = self.cfg.checksum.fill_tx.then_some((src, *dst.ip()));
        repr.emit(&mut UdpPacket::new_unchecked(&mut buf[..]), data.len(), addrs);
        self.stats.udp_out += 1;
        let now = self.now;
        self.send_ip_payload(now, src, *dst.ip(), IpProtocol::Udp, &buf, ip);
        Ok(data.len())
    }

    /// How a datagram of `total` bytes (IP header included) from socket
    /// `h` to `dst` goes out: with the socket's IP_TOS (the whole byte: UDP
    /// has no use for the ECN field of its own) and IP_TTL, and with DF
    /// and the fragment size its IP_MTU_DISCOVER mode takes from the path
    /// MTU (RFC 1191; [`PmtuDiscovery`]). EMSGSIZE when the mode forbids
    /// fragmenting and the datagram does not fit.
    fn udp_ip_tx(&mut self, h: SocketHandle, dst: Ipv4Addr, total: usize) -> Result<IpTx, Error> {
        let u = self.udp_mut(h)?;
        let (tos, ttl, mode) = (u.tos(), u.ttl().unwrap_or(0), u.pmtu_discovery());
        Ok(IpTx { tos, ttl, ..self.ip_tx_for(mode, dst, total)? })
    }

    /// Receives one datagram and its sender.
    pub fn recv_from(&mut self, h: SocketHandle, buf: &mut [u8]) -> Result<(usize, SocketAddrV4), Error> {
        self.udp_mut(h)?.recv_msg(buf).map(|(n, src, _)| (n, src))
    }

    /// Receives one datagram, its sender and the address it was sent to
    /// (IP_PKTINFO / IP_ORIGDSTADDR): for the catch-all socket, which
    /// address and port the sender meant.
    pub fn recv_msg(&mut self, h: SocketHandle, buf: &mut [u8]) -> Result<(usize, SocketAddrV4, SocketAddrV4), Error> {
        self.udp_mut(h)?.recv_msg(buf)
    }

    /// Frees the socket and its port. Called after `close` has taken the
    /// handle from the application, so the slot is looked up directly.
    pub(super) fn udp_close(&mut self, h: SocketHandle) {
        let local = match self.slot(h).ok().and_then(|s| s.socket.as_ref()) {
            Some(Socket::Udp(u)) => u.local(),
            _ => None,
        };
        if let Some(local) = local
            && self.udp_ports.get(&local) == Some(&h)
        {
            self.udp_ports.remove(&local);
        }
        self.release(h);
    }

    /// An arriving UDP datagram.
    pub(super) fn udp_input(&mut self, now: Instant, ip: &Ipv4Repr, payload: &[u8], broadcast: bool) {
        self.stats.udp_in += 1;
        let Ok(packet) = UdpPacket::new_checked(payload) else {
            self.stats.count_drop(DropReason::UdpMalformed);
            return;
        };
        let addrs = self.cfg.checksum.verify_rx.then_some((ip.src_addr, ip.dst_addr));
        let repr = match UdpRepr::parse(&packet, addrs) {
            Ok(r) => r,
            Err(crate::wire::Error::Checksum) => {
                self.stats.count_drop(DropReason::UdpBadChecksum);
                return;
            }
            Err(_) => {
                self.stats.count_drop(DropReason::UdpMalformed);
                return;
            }
        };
        if self.cfg.tcp_over_udp_port == Some(repr.dst_port) {
            // (A datagram from port 0 cannot be answered: RFC 768.)
            if broadcast || repr.src_port == 0 {
                self.stats.count_drop(DropReason::IpNotForUs);
                return;
            }
            // TCP over UDP: the segment follows the UDP header. A UDP
            // checksum (verified above) covers it, so the TCP one is
            // checked only when the datagram has none.
            let verify = self.cfg.checksum.verify_rx && packet.checksum() == 0;
            self.tcp_segment_input(now, ip, packet.payload(), verify, Some(repr.src_port));
            return;
        }
        let src = SocketAddrV4::new(ip.src_addr, repr.src_port);
        let exact = SocketAddrV4::new(ip.dst_addr, repr.dst_port);
        let delivered = self.udp_socket_for(exact, src).map(|(h, u)| (h, u.deliver(src, exact, packet.payload())));
        match delivered {
            Some((h, true)) => self.wake(h),
            Some((_, false)) => self.stats.count_drop(DropReason::UdpBufferFull),
            None => {
                self.stats.count_drop(DropReason::UdpNoSocket);
                // RFC 1122 §4.1.3.1: port unreachable, but never for a
                // broadcast (§3.2.2).
                if !broadcast && self.cfg.reply_to_closed_ports {
                    self.send_icmp_error(now, IcmpError::Unreachable(DstUnreachable::PortUnreachable), ip, payload);
                }
            }
        }
    }

    /// The UDP socket for datagrams between our `local` and `remote`: the
    /// one bound to `local`, else to its port on the wildcard address,
    /// else the catch-all, if it may talk to `remote`. Where an arriving
    /// datagram goes, and which socket sent the one an ICMP error quotes.
    fn udp_socket_for(&mut self, local: SocketAddrV4, remote: SocketAddrV4) -> Option<(SocketHandle, &mut UdpSocket)> {
        let any = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, local.port());
        let h = self
            .udp_ports
            .get(&local)
            .or_else(|| self.udp_ports.get(&any))
            .or_else(|| self.udp_ports.get(&CATCH_ALL))
            .copied()?;
        match self.slot_mut(h).ok()?.socket.as_mut() {
            Some(Socket::Udp(u)) if u.accepts_from(remote) => Some((h, u)),
            _ => None,
        }
    }

    /// ICMP port unreachable for a datagram we sent: a connected socket
    /// reports ECONNREFUSED on its next call (BSD behaviour).
    pub(super) fn udp_port_unreachable(&mut self, local: SocketAddrV4, remote: SocketAddrV4) {
        if let Some((h, u)) = self.udp_socket_for(local, remote)
            && u.remote() == Some(remote)
        {
            u.set_error(Error::ConnectionRefused);
            self.wake(h);
        }
    }

    /// ICMP fragmentation needed for a datagram we sent with DF (RFC 1191
    /// §4): the stack learns the path MTU to `remote`, for this socket's
    /// next datagrams, the other sockets' and TCP's, and a connected
    /// socket not in [`PmtuDiscovery::Dont`] reports EMSGSIZE on its next
    /// call, as Linux's does, so the application learns to send less.
    ///
    /// UDP quotes no sequence number to check the error against (RFC 5927
    /// §4.1 is TCP's), so it is taken only when a socket of ours sent from
    /// the quoted port and may talk to the quoted peer; the MTU is floored
    /// at `min_path_mtu` as for TCP, and an error with an MTU of 0 (from a
    /// router older than RFC 1191) is ignored, as TCP ignores it.
    pub(super) fn udp_frag_needed(&mut self, now: Instant, local: SocketAddrV4, remote: SocketAddrV4, mtu: u16) {
        let floor = self.cfg.tcp.min_path_mtu.max(crate::wire::ipv4::MIN_MTU);
        let Some((h, u)) = self.udp_socket_for(local, remote).filter(|_| mtu != 0) else {
            return;
        };
        if u.remote() == Some(remote) && u.pmtu_discovery() != PmtuDiscovery::Dont {
            u.set_error(Error::MessageTooLong);
            self.wake(h);
        }
        let mtu = usize::from(mtu).max(floor);
        if self.pmtu.learn(now, *remote.ip(), mtu) {
            self.tcp_path_mtu_lowered(now, *remote.ip(), mtu);
        }
    }
}
