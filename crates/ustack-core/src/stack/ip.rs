//! The stack's link and network layers: Ethernet and ARP input, IPv4
//! validation and reassembly, ICMP, routing, and the transmit path.

use super::{Medium, Socket, Stack, TcpSocket};
use crate::ip::frag::{FragKey, fragment_plan};
use crate::ip::neighbor::Enqueued;
use crate::socket::{Error, PmtuDiscovery, SocketHandle};
use crate::stats::DropReason;
use crate::tcp::State;
use crate::time::{Duration, Instant};
use crate::wire::icmpv4::{DstUnreachable, TimeExceeded};
use crate::wire::{
    self, ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetAddress, EthernetFrame, EthernetRepr, Icmpv4Packet,
    Icmpv4Repr, IpProtocol, Ipv4Packet, Ipv4Repr, TcpPacket, TcpRepr, UdpPacket, UdpRepr,
};
use std::net::Ipv4Addr;

const ETH_HEADER: usize = wire::ethernet::HEADER_LEN;
pub(super) const IP_HEADER: usize = wire::ipv4::HEADER_LEN;
/// Bytes of the offending datagram's payload quoted in ICMP errors after
/// its header: as much as keeps the whole ICMP datagram (our IP header,
/// the ICMP header, the quoted header and this) within 576 bytes (RFC 1812
/// §4.3.2.3), which includes RFC 792's minimum of 64 bits of data.
const ICMP_QUOTE_MAX: usize = 576 - IP_HEADER - 8 - IP_HEADER;
/// Bytes a connection may send in one turn of `poll_transmit` before the
/// other connections with something to send go first: a full TSO
/// super-packet (64 KiB), as Linux's TSO sizing gives each flow.
const TX_TURN: usize = 64 * 1024;
/// Echo replies, and errors about echo requests, kept until taken.
const MAX_ECHO_QUEUE: usize = 1024;

/// How a socket's packets go out: the IP header fields it sets (IP_TOS,
/// IP_TTL, DF) and the size beyond which they are fragmented.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct IpTx {
    /// The type-of-service byte as it goes in the header.
    pub tos: u8,
    /// The TTL; 0 for the stack's (`StackConfig::ttl`).
    pub ttl: u8,
    /// DF (RFC 791 §3.1): a packet larger than `mtu` is dropped, not
    /// fragmented.
    pub dont_frag: bool,
    /// The largest packet to send whole; 0 for the interface MTU.
    pub mtu: usize,
}

impl IpTx {
    /// What a TCP socket with these settings puts on a segment that is
    /// not ECN-capable (a RST, a SYN-ACK): the DSCP of its IP_TOS, and DF
    /// (path MTU discovery, RFC 1191).
    pub(super) fn tcp(cfg: &crate::tcp::TcpConfig) -> IpTx {
        IpTx { tos: tcp_tos(cfg.tos, false), ttl: cfg.ttl.unwrap_or(0), dont_frag: true, mtu: 0 }
    }

    /// The TTL to send: the socket's, or `default` (the stack's).
    #[inline]
    fn hop_limit(self, default: u8) -> u8 {
        if self.ttl == 0 { default } else { self.ttl }
    }
}

/// The TOS byte of a TCP segment: the DSCP of the socket's IP_TOS (RFC
/// 2474 §3) and an ECN field that is TCP's alone (RFC 3168 §6.1): ECT(0)
/// on new data once ECN was negotiated, Not-ECT otherwise.
pub(super) fn tcp_tos(ip_tos: u8, ect: bool) -> u8 {
    (ip_tos & !0b11) | if ect { 0b10 } else { 0 }
}

/// An ICMP error message, by type and code: one we send, or one a router
/// or host sent about an echo request of ours ([`EchoError`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpError {
    Unreachable(DstUnreachable),
    Exceeded(TimeExceeded),
}

/// An ICMP echo request to send (`ping`, `traceroute`).
#[derive(Clone, Copy, Debug)]
pub struct EchoRequest<'a> {
    pub dst: Ipv4Addr,
    pub ident: u16,
    pub seq_no: u16,
    pub data: &'a [u8],
    /// The TTL; `None` for the stack's. A small one makes the router that
    /// many hops away answer with "time exceeded" (traceroute).
    pub ttl: Option<u8>,
    /// DF and the size, as IP_MTU_DISCOVER does for UDP: with `Do` a
    /// request larger than the path MTU fails with EMSGSIZE, and a router
    /// whose next link is smaller answers "fragmentation needed".
    pub pmtu_discovery: PmtuDiscovery,
}

/// An ICMP error about an echo request we sent: the router or host that
/// sent it, what it says, and which request it quotes (RFC 792: the
/// header and the first 8 bytes, which hold the identifier and sequence
/// number). What `ping` prints as "From 10.0.0.254 icmp_seq=3 Time to live
/// exceeded", and what `traceroute` is made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EchoError {
    /// The router or host that sent the error.
    pub from: Ipv4Addr,
    /// The destination of the request it quotes.
    pub dst: Ipv4Addr,
    pub ident: u16,
    pub seq_no: u16,
    pub error: IcmpError,
    pub received_at: Instant,
}

/// An ICMP echo reply received for `Stack::send_echo_request`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EchoReply {
    pub from: Ipv4Addr,
    pub ident: u16,
    pub seq_no: u16,
    pub ttl: u8,
    pub data: Vec<u8>,
    pub received_at: Instant,
}

impl Stack {
    // ---- input -----------------------------------------------------------------

    /// An Ethernet frame arrived (Ethernet medium).
    pub fn handle_frame(&mut self, now: Instant, frame: &[u8]) {
        self.now = now;
        self.stats.frames_in += 1;
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            self.stats.count_drop(DropReason::EthTruncated);
            return;
        };
        let repr = EthernetRepr::parse(&eth).unwrap_or(EthernetRepr {
            src: eth.src_addr(),
            dst: eth.dst_addr(),
            ethertype: eth.ethertype(),
        });
        if repr.dst != self.cfg.hardware_addr && !repr.dst.is_broadcast() {
            self.stats.count_drop(DropReason::EthNotForUs);
            return;
        }
        match repr.ethertype {
            EtherType::Arp => self.arp_input(now, eth.payload()),
            EtherType::Ipv4 => self.ip_input(now, eth.payload(), repr.dst.is_broadcast()),
            _ => self.stats.count_drop(DropReason::EthUnknownType),
        }
    }

    /// An IPv4 packet arrived (IP medium, e.g. a TUN device).
    pub fn handle_ip_packet(&mut self, now: Instant, packet: &[u8]) {
        self.now = now;
        self.stats.frames_in += 1;
        self.ip_input(now, packet, false);
    }

    /// The input side of the medium in use.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        match self.cfg.medium {
            Medium::Ethernet => self.handle_frame(now, data),
            Medium::Ip => self.handle_ip_packet(now, data),
        }
    }

    /// RFC 826: answer requests for our addresses and learn from what we see.
    fn arp_input(&mut self, now: Instant, payload: &[u8]) {
        self.stats.arp_in += 1;
        let Ok(packet) = ArpPacket::new_checked(payload) else {
            self.stats.count_drop(DropReason::ArpMalformed);
            return;
        };
        let Ok(arp) = ArpRepr::parse(&packet) else {
            self.stats.count_drop(DropReason::ArpMalformed);
            return;
        };
        let for_us = self.is_local_address(arp.target_protocol_addr);
        let sender = arp.source_protocol_addr;
        let hw = *arp.source_hardware_addr.as_bytes();
        // The RFC 826 merge: update an existing entry from any ARP packet;
        // create one only when the packet is for us.
        let released = if for_us {
            self.neighbors.learn(now, sender, hw)
        } else {
            self.neighbors.update_if_present(now, sender, hw).unwrap_or_default()
        };
        for packet in released {
            self.queue_ip_frame(packet, EthernetAddress(hw));
        }
        if !for_us {
            self.stats.count_drop(DropReason::ArpNotForUs);
            return;
        }
        if arp.operation == ArpOperation::Request {
            let reply = ArpRepr {
                operation: ArpOperation::Reply,
                source_hardware_addr: self.cfg.hardware_addr,
                source_protocol_addr: arp.target_protocol_addr,
                target_hardware_addr: arp.source_hardware_addr,
                target_protocol_addr: sender,
            };
            self.queue_arp(reply, arp.source_hardware_addr);
        }
    }

    /// IPv4 input (RFC 791, RFC 1122 §3.2.1): validate, reassemble, dispatch.
    /// `link_broadcast`: the frame was sent to the link's broadcast address.
    fn ip_input(&mut self, now: Instant, data: &[u8], link_broadcast: bool) {
        let packet = match Ipv4Packet::new_checked(data) {
            Ok(p) => p,
            Err(_) => {
                // The checks of `new_checked`, in its order, to name the
                // field at fault: an IHL past the end of the packet is a
                // header error (Linux counts it in InHdrErrors too).
                let header_len = data.first().map_or(0, |b| usize::from(b & 0xf) * 4);
                let reason = match data.first() {
                    _ if data.len() < IP_HEADER => DropReason::IpTruncated,
                    Some(b) if b >> 4 != 4 => DropReason::IpBadVersion,
                    _ if header_len < IP_HEADER || header_len > data.len() => DropReason::IpBadHeaderLen,
                    _ => DropReason::IpBadTotalLen,
                };
                self.stats.count_drop(reason);
                return;
            }
        };
        let repr = match Ipv4Repr::parse(&packet, self.cfg.checksum.verify_rx) {
            Ok(r) => r,
            Err(wire::Error::Checksum) => {
                self.stats.count_drop(DropReason::IpBadChecksum);
                return;
            }
            Err(_) => {
                self.stats.count_drop(DropReason::IpBadHeaderLen);
                return;
            }
        };
        self.stats.ip_in += 1;
        // RFC 1122 §3.2.1.3: a source address must be a unicast address;
        // {127, <any>} "MUST NOT appear outside a host"; and {0, 0} or
        // {0, <host>} only as the source of a host learning its address
        // (DHCP, to the limited broadcast), which nothing may answer.
        let zero_net = repr.src_addr.octets()[0] == 0;
        if repr.src_addr.is_broadcast()
            || repr.src_addr.is_multicast()
            || repr.src_addr.is_loopback()
            || (zero_net && !repr.dst_addr.is_broadcast())
            || self.is_directed_broadcast(repr.src_addr)
        {
            self.stats.count_drop(DropReason::IpBadSource);
            return;
        }
        let to_us = self.takes_address(repr.dst_addr);
        let broadcast = repr.dst_addr.is_broadcast() || self.is_directed_broadcast(repr.dst_addr);
        // A host does not forward (RFC 1122 §3.3.1.5 makes it optional); and
        // RFC 1122 §3.3.6: a host SHOULD silently discard a datagram that came
        // in a link-layer broadcast without an IP broadcast destination.
        if !broadcast && (!to_us || link_broadcast) {
            self.stats.count_drop(DropReason::IpNotForUs);
            return;
        }
        // RFC 1122 §3.2.1.7: a host does not discard a datagram for its TTL.
        let payload = packet.payload();
        if repr.is_fragment() {
            let key =
                FragKey { src: repr.src_addr, dst: repr.dst_addr, protocol: repr.protocol.into(), ident: repr.ident };
            // Count the limit hits this fragment caused (issue 7).
            let before = self.reassembler.stats();
            let added = self.reassembler.add(now, key, repr.frag_offset as usize, repr.more_frags, payload);
            let after = self.reassembler.stats();
            self.stats.limits.frag_memory +=
                (after.evicted + after.memory_drops) - (before.evicted + before.memory_drops);
            match added {
                Ok(Some(whole)) => {
                    self.stats.ip_reassembled += 1;
                    let whole_repr = Ipv4Repr { payload_len: whole.len(), more_frags: false, frag_offset: 0, ..repr };
                    self.ip_dispatch(now, &whole_repr, &whole, broadcast);
                }
                Ok(None) => {}
                Err(_) => self.stats.count_drop(DropReason::IpFragment),
            }
            return;
        }
        self.ip_dispatch(now, &repr, payload, broadcast);
    }

    pub(super) fn is_directed_broadcast(&self, addr: Ipv4Addr) -> bool {
        self.cfg.addresses.iter().any(|c| c.prefix_len() < 31 && c.broadcast() == addr)
    }

    /// A TCP segment for us, in an IP packet (`encap` None) or carried in a
    /// UDP datagram from the peer's port `encap` (`StackConfig::tcp_over_udp_port`).
    /// `verify`: check the TCP checksum.
    pub(super) fn tcp_segment_input(
        &mut self,
        now: Instant,
        ip: &Ipv4Repr,
        segment: &[u8],
        verify: bool,
        encap: Option<u16>,
    ) {
        let Ok(packet) = TcpPacket::new_checked(segment) else {
            self.stats.count_drop(DropReason::TcpMalformed);
            return;
        };
        let addrs = verify.then_some((ip.src_addr, ip.dst_addr));
        match TcpRepr::parse(&packet, addrs) {
            Ok(repr) => {
                let ce = ip.dscp_ecn & 0b11 == 0b11;
                if (repr.options.md5 || self.md5_in_use) && !self.md5_check(ip.src_addr, ip.dst_addr, &repr, segment) {
                    return;
                }
                self.tcp_input(now, (ip.src_addr, ip.dst_addr), &repr, packet.payload(), ce, encap)
            }
            Err(wire::Error::Checksum) => self.stats.count_drop(DropReason::TcpBadChecksum),
            Err(_) => self.stats.count_drop(DropReason::TcpMalformed),
        }
    }

    /// Hands a whole datagram (`ip` its header, reassembled or not) to its
    /// protocol.
    fn ip_dispatch(&mut self, now: Instant, ip: &Ipv4Repr, payload: &[u8], broadcast: bool) {
        match ip.protocol {
            IpProtocol::Icmp => self.icmp_input(now, ip, payload, broadcast),
            IpProtocol::Udp => self.udp_input(now, ip, payload, broadcast),
            IpProtocol::Tcp if !broadcast => {
                self.tcp_segment_input(now, ip, payload, self.cfg.checksum.verify_rx, None)
            }
            IpProtocol::Tcp => self.stats.count_drop(DropReason::IpNotForUs),
            IpProtocol::Unknown(_) => {
                self.stats.count_drop(DropReason::IpUnknownProtocol);
                if !broadcast {
                    self.send_icmp_error(now, IcmpError::Unreachable(DstUnreachable::ProtoUnreachable), ip, payload);
                }
            }
        }
    }

    /// ICMP input (RFC 792, RFC 1122 §3.2.2).
    fn icmp_input(&mut self, now: Instant, ip: &Ipv4Repr, payload: &[u8], broadcast: bool) {
        self.stats.icmp_in += 1;
        let Ok(packet) = Icmpv4Packet::new_checked(payload) else {
            self.stats.count_drop(DropReason::IcmpMalformed);
            return;
        };
        let repr = match Icmpv4Repr::parse(&packet, self.cfg.checksum.verify_rx) {
            Ok(r) => r,
            Err(wire::Error::Checksum) => {
                self.stats.count_drop(DropReason::IcmpBadChecksum);
                return;
            }
            Err(wire::Error::Unsupported) => {
                self.stats.count_drop(DropReason::IcmpUnsupported);
                return;
            }
            Err(_) => {
                self.stats.count_drop(DropReason::IcmpMalformed);
                return;
            }
        };
        match repr {
            Icmpv4Repr::EchoRequest { ident, seq_no, data } => {
                // RFC 1122 §3.2.2.6: echo requests to a broadcast address
                // may be ignored; we do, as Linux does by default.
                if broadcast {
                    return;
                }
                let reply = Icmpv4Repr::EchoReply { ident, seq_no, data };
                let mut buf = vec![0u8; reply.buffer_len()];
                reply.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]));
                self.stats.icmp_out += 1;
                self.send_ip_payload(now, ip.dst_addr, ip.src_addr, IpProtocol::Icmp, &buf, IpTx::default());
            }
            Icmpv4Repr::EchoReply { ident, seq_no, data } => {
                if self.echo_replies.len() < MAX_ECHO_QUEUE {
                    self.echo_replies.push_back(EchoReply {
                        from: ip.src_addr,
                        ident,
                        seq_no,
                        ttl: ip.hop_limit,
                        data: data.to_vec(),
                        received_at: now,
                    });
                }
            }
            Icmpv4Repr::DstUnreachable { reason, header, data } => {
                self.icmp_error_input(now, ip.src_addr, IcmpError::Unreachable(reason), &header, data)
            }
            Icmpv4Repr::TimeExceeded { reason, header, data } => {
                self.icmp_error_input(now, ip.src_addr, IcmpError::Exceeded(reason), &header, data)
            }
        }
    }

    /// An ICMP error from `from` about a datagram we sent (RFC 1122
    /// §4.2.3.9 for TCP, §4.1.3.3 for UDP, with the RFC 5927 §4.1 check
    /// that the quoted sequence number is one we have outstanding; for an
    /// echo request, kept for `take_echo_errors`).
    fn icmp_error_input(&mut self, now: Instant, from: Ipv4Addr, error: IcmpError, header: &Ipv4Repr, data: &[u8]) {
        let unreach = match error {
            IcmpError::Unreachable(reason) => Some(reason),
            IcmpError::Exceeded(_) => None,
        };
        // Only a first fragment starts with the transport header that
        // names the socket (RFC 792: "the first 64 bits of the original
        // datagram's data").
        if data.len() < 8 || header.frag_offset != 0 || !self.takes_address(header.src_addr) {
            return;
        }
        let src_port = u16::from_be_bytes([data[0], data[1]]);
        let dst_port = u16::from_be_bytes([data[2], data[3]]);
        let local = std::net::SocketAddrV4::new(header.src_addr, src_port);
        let remote = std::net::SocketAddrV4::new(header.dst_addr, dst_port);
        match header.protocol {
            IpProtocol::Tcp => self.tcp_icmp_error(now, header, &data[..8], unreach, None),
            // A TCP segment carried over UDP (`StackConfig::tcp_over_udp_port`),
            // when the router quoted more than RFC 792's 8 bytes (RFC 1812
            // §4.3.2.3 asks routers for as much as fits: Linux's quote 548).
            IpProtocol::Udp if self.cfg.tcp_over_udp_port == Some(src_port) => {
                if let Some(tcp) = data.get(8..16) {
                    self.tcp_icmp_error(now, header, tcp, unreach, Some(dst_port));
                }
            }
            IpProtocol::Udp => match unreach {
                Some(DstUnreachable::PortUnreachable) => self.udp_port_unreachable(local, remote),
                Some(DstUnreachable::FragRequired { next_hop_mtu }) => {
                    self.udp_frag_needed(now, local, remote, next_hop_mtu)
                }
                _ => {}
            },
            // An error about an echo request (type 8, code 0) of ours.
            IpProtocol::Icmp if data[0] == 8 && data[1] == 0 && self.echo_errors.len() < MAX_ECHO_QUEUE => {
                self.echo_errors.push_back(EchoError {
                    from,
                    dst: header.dst_addr,
                    ident: u16::from_be_bytes([data[4], data[5]]),
                    seq_no: u16::from_be_bytes([data[6], data[7]]),
                    error,
                    received_at: now,
                });
            }
            _ => {}
        }
    }

    /// An ICMP error quoting `tcp` (the first 8 bytes of a TCP header we
    /// sent, carried over UDP to the peer's port `encap` or not), for its
    /// connection if the quote matches one (RFC 1122 §4.2.3.9, RFC 5927).
    fn tcp_icmp_error(
        &mut self,
        now: Instant,
        header: &Ipv4Repr,
        tcp: &[u8],
        unreach: Option<DstUnreachable>,
        encap: Option<u16>,
    ) {
        let local = std::net::SocketAddrV4::new(header.src_addr, u16::from_be_bytes([tcp[0], tcp[1]]));
        let remote = std::net::SocketAddrV4::new(header.dst_addr, u16::from_be_bytes([tcp[2], tcp[3]]));
        let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
        if let Some(&h) = self.tcp_conns.get(&(local, remote))
            && self.tcp_connection(h).is_some_and(|c| c.udp_encap() == encap)
            && let Ok(Some(mtu)) = self.with_conn(h, now, |c, cx| Ok(c.icmp_error(cx, seq, unreach)))
            && self.pmtu.learn(now, header.dst_addr, mtu)
        {
            // New connections to the peer start within it, and the open
            // ones send no larger from now on (RFC 1191 §6.3).
            self.tcp_path_mtu_lowered(now, header.dst_addr, mtu);
        }
    }

    // ---- ICMP errors we send -------------------------------------------------

    /// Sends an ICMP error about a datagram we received (`header` and
    /// `payload`: the whole datagram, reassembled if it came in fragments),
    /// rate limited (RFC 1812 §4.3.2.8) and never, as RFC 1122 §3.2.2 asks,
    /// about an ICMP error, a fragment other than the first, a datagram to
    /// a broadcast or multicast address (or anything not addressed to us),
    /// or one whose source does not name a single host. Datagrams that came
    /// in a link-layer broadcast never get this far (§3.3.6).
    pub(super) fn send_icmp_error(&mut self, now: Instant, error: IcmpError, header: &Ipv4Repr, payload: &[u8]) {
        if header.frag_offset != 0 || !self.takes_address(header.dst_addr) || !self.is_single_host(header.src_addr) {
            return;
        }
        if header.protocol == IpProtocol::Icmp
            && let Some(&t) = payload.first()
            && !matches!(t, 0 | 8 | 13 | 14 | 15 | 16 | 17 | 18)
        {
            return;
        }
        if !self.take_icmp_token(now) {
            self.stats.count_drop(DropReason::IcmpRateLimited);
            return;
        }
        let quote = &payload[..payload.len().min(ICMP_QUOTE_MAX)];
        let header = *header;
        let repr = match error {
            IcmpError::Unreachable(reason) => Icmpv4Repr::DstUnreachable { reason, header, data: quote },
            IcmpError::Exceeded(reason) => Icmpv4Repr::TimeExceeded { reason, header, data: quote },
        };
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]));
        self.stats.icmp_out += 1;
        self.send_ip_payload(now, header.dst_addr, header.src_addr, IpProtocol::Icmp, &buf, IpTx::default());
    }

    /// Whether `addr` names a single host (RFC 1122 §3.2.2): not zero,
    /// loopback, broadcast, multicast or class E.
    fn is_single_host(&self, addr: Ipv4Addr) -> bool {
        !(addr.is_unspecified()
            || addr.is_loopback()
            || addr.is_multicast()
            || addr.octets()[0] >= 240
            || self.is_directed_broadcast(addr))
    }

    fn take_icmp_token(&mut self, now: Instant) -> bool {
        let rate = self.cfg.icmp_error_rate;
        if now.saturating_duration_since(self.icmp_refill) >= Duration::from_secs(1) {
            self.icmp_tokens = rate;
            self.icmp_refill = now;
        }
        if self.icmp_tokens == 0 {
            return false;
        }
        self.icmp_tokens -= 1;
        true
    }

    /// Sends an ICMP echo request (for `ping`) with the stack's TTL and
    /// without DF; false when there is no route to `dst`. On a shard
    /// ([`super::Shard`]) the replies come back to this stack only for an
    /// `ident` it owns ([`super::Shard::owns_icmp_echo`]).
    pub fn send_echo_request(&mut self, now: Instant, dst: Ipv4Addr, ident: u16, seq_no: u16, data: &[u8]) -> bool {
        let req = EchoRequest { dst, ident, seq_no, data, ttl: None, pmtu_discovery: PmtuDiscovery::Dont };
        self.send_echo(now, &req).is_ok()
    }

    /// Sends an ICMP echo request with its own TTL and DF. Fails with
    /// ENETUNREACH without a route to the destination, EMSGSIZE when its
    /// `pmtu_discovery` refuses to fragment it ([`PmtuDiscovery::Do`]).
    /// Replies come back by [`Stack::take_echo_replies`], ICMP errors about
    /// it by [`Stack::take_echo_errors`].
    pub fn send_echo(&mut self, now: Instant, req: &EchoRequest) -> Result<(), Error> {
        self.now = now;
        let src = self.source_address_for(req.dst).ok_or(Error::NetworkUnreachable)?;
        let repr = Icmpv4Repr::EchoRequest { ident: req.ident, seq_no: req.seq_no, data: req.data };
        let tx = self.ip_tx_for(req.pmtu_discovery, req.dst, IP_HEADER + repr.buffer_len())?;
        let tx = IpTx { ttl: req.ttl.unwrap_or(0), ..tx };
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]));
        self.stats.icmp_out += 1;
        self.send_ip_payload(now, src, req.dst, IpProtocol::Icmp, &buf, tx);
        Ok(())
    }

    /// DF and the fragment size of a packet of `total` bytes (IP header
    /// included) to `dst`, as IP_MTU_DISCOVER `mode` takes them from the
    /// path MTU (RFC 1191; [`PmtuDiscovery`]); TOS 0 and the stack's TTL.
    /// EMSGSIZE when the mode forbids fragmenting and the packet does not
    /// fit.
    pub(super) fn ip_tx_for(&self, mode: PmtuDiscovery, dst: Ipv4Addr, total: usize) -> Result<IpTx, Error> {
        let mtu = if mode == PmtuDiscovery::Probe { self.cfg.mtu } else { self.path_mtu_to(dst) };
        let dont_frag = match mode {
            PmtuDiscovery::Dont => false,
            PmtuDiscovery::Want => total <= mtu,
            PmtuDiscovery::Do | PmtuDiscovery::Probe if total <= mtu => true,
            PmtuDiscovery::Do | PmtuDiscovery::Probe => return Err(Error::MessageTooLong),
        };
        Ok(IpTx { tos: 0, ttl: 0, dont_frag, mtu })
    }

    /// Echo replies received since the last call.
    pub fn take_echo_replies(&mut self) -> Vec<EchoReply> {
        self.echo_replies.drain(..).collect()
    }

    /// ICMP errors about our echo requests received since the last call.
    pub fn take_echo_errors(&mut self) -> Vec<EchoError> {
        self.echo_errors.drain(..).collect()
    }

    // ---- routing and output ------------------------------------------------------

    /// The next hop towards `dst`: the gateway, or `dst` itself on-link.
    pub(super) fn next_hop(&self, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        if dst.is_broadcast() || self.is_directed_broadcast(dst) {
            return Some(dst);
        }
        self.routes.next_hop(dst)
    }

    /// The source address for a packet to `dst` (RFC 1122 §3.3.4.3): the
    /// address on the destination's subnet, else the first.
    pub fn source_address_for(&self, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        self.next_hop(dst)?;
        Some(self.cfg.addresses.iter().find(|c| c.contains(dst)).map_or(self.address(), |c| c.address()))
    }

    fn next_ident(&mut self) -> u16 {
        self.ip_ident = self.ip_ident.wrapping_add(1);
        self.ip_ident
    }

    /// Wraps `payload` in an IPv4 header with the socket's settings `tx`
    /// (`IpTx::default()`: the stack's TTL, TOS 0, no DF), fragmenting it
    /// at `tx.mtu` unless DF is set, and queues it for transmission.
    pub(super) fn send_ip_payload(
        &mut self,
        now: Instant,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        protocol: IpProtocol,
        payload: &[u8],
        ip: IpTx,
    ) {
        let mtu = if ip.mtu == 0 { self.cfg.mtu } else { ip.mtu.min(self.cfg.mtu) };
        let dont_frag = ip.dont_frag;
        let pieces: Vec<_> = if IP_HEADER + payload.len() <= mtu {
            vec![crate::ip::frag::FragPiece { offset: 0, len: payload.len(), more: false }]
        } else if dont_frag || payload.len() > crate::ip::frag::MAX_PAYLOAD {
            self.stats.count_drop(DropReason::IpTooBig);
            return;
        } else {
            fragment_plan(payload.len(), mtu).collect()
        };
        let ident = self.next_ident();
        for piece in &pieces {
            let repr = Ipv4Repr {
                src_addr: src,
                dst_addr: dst,
                protocol,
                payload_len: piece.len,
                hop_limit: ip.hop_limit(self.cfg.ttl),
                ident,
                dont_frag,
                more_frags: piece.more,
                frag_offset: piece.offset as u16,
                dscp_ecn: ip.tos,
            };
            let mut buf = vec![0u8; ETH_HEADER + IP_HEADER + piece.len];
            repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[ETH_HEADER..]), self.cfg.checksum.fill_tx);
            buf[ETH_HEADER + IP_HEADER..].copy_from_slice(&payload[piece.offset..piece.offset + piece.len]);
            self.route_packet(now, buf);
        }
        if pieces.len() > 1 {
            self.stats.ip_fragments_out += pieces.len() as u64;
        }
    }

    /// Queues an IP packet that sits at `ETH_HEADER` in `buf`: directly on
    /// an IP medium, behind ARP resolution on Ethernet.
    fn route_packet(&mut self, now: Instant, buf: Vec<u8>) {
        let dst =
            Ipv4Addr::from([buf[ETH_HEADER + 16], buf[ETH_HEADER + 17], buf[ETH_HEADER + 18], buf[ETH_HEADER + 19]]);
        match self.cfg.medium {
            Medium::Ip => {
                self.stats.ip_out += 1;
                self.pending.push_back((buf, ETH_HEADER));
            }
            Medium::Ethernet => {
                let Some(hop) = self.next_hop(dst) else {
                    self.stats.count_drop(DropReason::IpNoRoute);
                    return;
                };
                if hop.is_broadcast() || self.is_directed_broadcast(hop) {
                    self.stats.ip_out += 1;
                    self.frame_with(buf, EthernetAddress::BROADCAST);
                    return;
                }
                match self.neighbors.lookup(now, hop) {
                    Some(hw) => {
                        self.stats.ip_out += 1;
                        self.frame_with(buf, EthernetAddress(hw));
                    }
                    None => {
                        let packet = buf[ETH_HEADER..].to_vec();
                        self.resolve_then_send(now, hop, packet);
                    }
                }
            }
        }
    }

    /// Parks an IP packet until ARP resolves `hop`.
    fn resolve_then_send(&mut self, now: Instant, hop: Ipv4Addr, packet: Vec<u8>) {
        match self.neighbors.enqueue(now, hop, packet) {
            Enqueued::SendRequest => self.send_arp_request(hop),
            Enqueued::Queued => {}
            Enqueued::DroppedOldest => self.stats.count_drop(DropReason::ArpQueueFull),
            Enqueued::Resolved(hw, packet) => self.queue_ip_frame(packet, EthernetAddress(hw)),
        }
    }

    /// Puts the Ethernet header in the headroom of `buf` and queues it.
    fn frame_with(&mut self, mut buf: Vec<u8>, dst: EthernetAddress) {
        let eth = EthernetRepr { src: self.cfg.hardware_addr, dst, ethertype: EtherType::Ipv4 };
        eth.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
        self.pending.push_back((buf, 0));
    }

    /// Queues a bare IP packet to a known hardware address.
    fn queue_ip_frame(&mut self, packet: Vec<u8>, dst: EthernetAddress) {
        let mut buf = vec![0u8; ETH_HEADER + packet.len()];
        buf[ETH_HEADER..].copy_from_slice(&packet);
        self.stats.ip_out += 1;
        self.frame_with(buf, dst);
    }

    fn send_arp_request(&mut self, target: Ipv4Addr) {
        let source = self.cfg.addresses.iter().find(|c| c.contains(target)).map_or(self.address(), |c| c.address());
        let req = ArpRepr {
            operation: ArpOperation::Request,
            source_hardware_addr: self.cfg.hardware_addr,
            source_protocol_addr: source,
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: target,
        };
        self.queue_arp(req, EthernetAddress::BROADCAST);
    }

    fn queue_arp(&mut self, arp: ArpRepr, dst: EthernetAddress) {
        let mut buf = vec![0u8; ETH_HEADER + arp.buffer_len()];
        EthernetRepr { src: self.cfg.hardware_addr, dst, ethertype: EtherType::Arp }
            .emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
        arp.emit(&mut ArpPacket::new_unchecked(&mut buf[ETH_HEADER..]));
        self.stats.arp_out += 1;
        self.pending.push_back((buf, 0));
    }

    /// ARP retries and failures, and fragment reassembly timeouts.
    pub(super) fn ip_timeouts(&mut self, now: Instant) {
        if self.neighbors.poll_timeout().is_some_and(|t| t <= now) {
            let actions = self.neighbors.handle_timeout(now);
            for ip in actions.requests {
                self.send_arp_request(ip);
            }
            for (ip, dropped) in actions.failed {
                for _ in 0..dropped {
                    self.stats.count_drop(DropReason::ArpUnresolved);
                }
                // Linux reports EHOSTUNREACH to a connect whose neighbour
                // cannot be resolved.
                self.fail_connects_to(now, ip);
            }
        }
        if self.reassembler.poll_timeout().is_some_and(|t| t <= now) {
            for timed_out in self.reassembler.handle_timeout(now) {
                // RFC 792: Time Exceeded (reassembly) only if the first
                // fragment arrived; the reassembler keeps no headers, so the
                // quoted one is rebuilt from the key.
                if let Some(first) = timed_out.first_fragment {
                    let k = timed_out.key;
                    let header = Ipv4Repr {
                        src_addr: k.src,
                        dst_addr: k.dst,
                        protocol: IpProtocol::from(k.protocol),
                        payload_len: first.len(),
                        hop_limit: 64,
                        ident: k.ident,
                        dont_frag: false,
                        more_frags: true,
                        frag_offset: 0,
                        dscp_ecn: 0,
                    };
                    self.send_icmp_error(now, IcmpError::Exceeded(TimeExceeded::FragReassembly), &header, &first);
                }
            }
        }
    }

    // ---- transmit --------------------------------------------------------------

    /// Writes the next frame to send into `buf` and returns its length
    /// (an Ethernet frame or an IP packet, as the medium is). `buf` should
    /// hold the MTU plus the link header. Call until it returns `None`.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        self.now = now;
        loop {
            if let Some((frame, start)) = self.pending.pop_front() {
                let n = frame.len() - start;
                if n > buf.len() {
                    self.stats.count_drop(DropReason::IpTooBig);
                    continue;
                }
                buf[..n].copy_from_slice(&frame[start..]);
                self.stats.frames_out += 1;
                return Some(n);
            }
            let index = self.ready.pop_front()?;
            let slot = &mut self.slots[index as usize];
            slot.in_ready = false;
            if slot.socket.is_none() {
                // Freed while queued: the slot can be reused now.
                self.free_slots.push(index);
                continue;
            }
            let h = self.handle_at(index);
            let sent = match &self.slots[index as usize].socket {
                Some(Socket::Tcp(TcpSocket::Conn(_))) => self.transmit_tcp(now, h, buf),
                _ => None,
            };
            match sent {
                Some(n) => {
                    let (more, closed) = self
                        .tcp_connection(h)
                        .map_or((false, false), |c| (c.may_send_more(), c.state() == State::Closed));
                    if more {
                        // More may follow. The connection keeps its turn
                        // for up to TX_TURN bytes, then the others go
                        // first: a device that joins consecutive segments
                        // of one connection (TSO through the TUN offload
                        // header) then gets whole super-packets, not one
                        // segment of each busy connection in turn.
                        let sent = if self.tx_turn.0 == index { self.tx_turn.1 + n } else { n };
                        let slot = &mut self.slots[index as usize];
                        if !slot.in_ready {
                            slot.in_ready = true;
                            if sent < TX_TURN {
                                self.tx_turn = (index, sent);
                                self.ready.push_front(index);
                            } else {
                                self.tx_turn = (u32::MAX, 0);
                                self.ready.push_back(index);
                            }
                        }
                    } else if closed {
                        // Its last segment for now, so it is not asked
                        // again. Sending changes nothing the tables keep
                        // (its timer is registered), except that a closed
                        // connection whose last segment was its reset can
                        // now be freed.
                        self.sync_conn(h, false);
                    }
                    if n > 0 {
                        self.stats.frames_out += 1;
                        return Some(n);
                    }
                }
                None => {
                    if matches!(&self.slots[index as usize].socket, Some(Socket::Tcp(TcpSocket::Conn(_)))) {
                        // It has nothing more to send; keep the tables in step
                        // (an orphan that sent its last segment is freed).
                        self.sync_conn(h, false);
                    }
                }
            }
        }
    }

    /// The UDP header of a TCP segment carried over UDP to the peer's port
    /// `encap`, from the stack's TCP-over-UDP port; `None` for plain TCP.
    pub(super) fn tunnel_header(&self, encap: Option<u16>) -> Option<UdpRepr> {
        encap.zip(self.cfg.tcp_over_udp_port).map(|(dst_port, src_port)| UdpRepr { src_port, dst_port })
    }

    /// One TCP segment from connection `h`, framed into `buf`. `Some(0)`
    /// means a segment was produced but parked for ARP.
    fn transmit_tcp(&mut self, now: Instant, h: SocketHandle, buf: &mut [u8]) -> Option<usize> {
        let (local, remote) = self.tcp_connection(h).map(|c| (*c.local().ip(), *c.remote().ip()))?;
        let link = if self.cfg.medium == Medium::Ethernet { ETH_HEADER } else { 0 };
        let room = self.cfg.mtu.min(buf.len().saturating_sub(link));
        // RFC 791's smallest MTU, 68, leaves 48 bytes: a SYN with every
        // option, or a data segment with timestamps and a SACK block.
        if room < wire::ipv4::MIN_MTU {
            return None;
        }
        // TCP over UDP: a UDP header between the IP header and the segment.
        let encap = self.tunnel_header(self.tcp_connection(h).and_then(|c| c.udp_encap()));
        let udp = if encap.is_some() { wire::udp::HEADER_LEN } else { 0 };
        let tcp_start = link + IP_HEADER + udp;
        let tcp_len = self.tcp_poll_segment(now, h, &mut buf[tcp_start..link + room])?;
        if let Some(u) = encap {
            let addrs = self.cfg.checksum.fill_tx.then_some((local, remote));
            u.emit(&mut UdpPacket::new_unchecked(&mut buf[tcp_start - udp..tcp_start + tcp_len]), tcp_len, addrs);
        }
        // The DSCP of IP_TOS (RFC 2474 §3), and ECT(0) on new data of a
        // connection that negotiated ECN (RFC 3168 §6.1.2): the ECN field
        // is TCP's, whatever IP_TOS says. IP_TTL, or the stack's.
        let ip = self.tcp_connection(h).map_or_else(IpTx::default, |c| IpTx {
            tos: tcp_tos(c.ip_tos, c.sent_ect()),
            ttl: c.ip_ttl,
            ..IpTx::default()
        });
        let repr = Ipv4Repr {
            src_addr: local,
            dst_addr: remote,
            protocol: if encap.is_some() { IpProtocol::Udp } else { IpProtocol::Tcp },
            payload_len: udp + tcp_len,
            hop_limit: ip.hop_limit(self.cfg.ttl),
            ident: self.next_ident(),
            // Path MTU discovery (RFC 1191): TCP sets DF.
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
            dscp_ecn: ip.tos,
        };
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[link..tcp_start + tcp_len]), self.cfg.checksum.fill_tx);
        self.stats.ip_out += 1;
        let total = tcp_start + tcp_len;
        if link == 0 {
            return Some(total);
        }
        let Some(hop) = self.next_hop(remote) else {
            self.stats.count_drop(DropReason::IpNoRoute);
            return Some(0);
        };
        match self.neighbors.lookup(now, hop) {
            Some(hw) => {
                EthernetRepr { src: self.cfg.hardware_addr, dst: EthernetAddress(hw), ethertype: EtherType::Ipv4 }
                    .emit(&mut EthernetFrame::new_unchecked(&mut buf[..total]));
                Some(total)
            }
            None => {
                let packet = buf[link..total].to_vec();
                self.stats.ip_out -= 1;
                self.resolve_then_send(now, hop, packet);
                // The ARP request (if any) is in `pending` now.
                Some(0)
            }
        }
    }
}
