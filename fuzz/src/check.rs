//! What every frame a stack emits must be: well formed at every layer,
//! with correct checksums, from the stack's own addresses, within its MTU.

use std::net::Ipv4Addr;
use ustack_core::wire::{
    ArpPacket, ArpRepr, EtherType, EthernetAddress, EthernetFrame, EthernetRepr, Icmpv4Packet, Icmpv4Repr, IpProtocol,
    Ipv4Packet, Ipv4Repr, TcpPacket, TcpRepr, UdpPacket, UdpRepr,
};

/// A TCP segment the stack sent, parsed.
#[derive(Clone, Debug)]
pub struct Segment {
    pub ip: Ipv4Repr,
    pub tcp: TcpRepr,
    pub payload: Vec<u8>,
}

/// Who the stack is, for checking what it sends.
#[derive(Clone, Copy, Debug)]
pub struct Host {
    pub mac: EthernetAddress,
    pub ip: Ipv4Addr,
    pub mtu: usize,
    pub ttl: u8,
    /// The stack takes any unicast address (`StackConfig::any_ip`), so it
    /// may send from any.
    pub any_ip: bool,
}

impl Host {
    /// Whether the stack may send from (or be sent to at) `addr`: its own
    /// address, or with `any_ip` any single host.
    fn is_ours(&self, addr: Ipv4Addr) -> bool {
        addr == self.ip
            || (self.any_ip
                && !(addr.is_unspecified() || addr.is_broadcast() || addr.is_multicast() || addr.is_loopback()))
    }
}

/// Checks an Ethernet frame the stack emitted; returns the TCP segment it
/// carries, if any.
pub fn frame(host: &Host, frame: &[u8]) -> Option<Segment> {
    let f = EthernetFrame::new_checked(frame).unwrap_or_else(|e| panic!("emitted frame: {e}: {frame:02x?}"));
    let eth = EthernetRepr::parse(&f).expect("an emitted Ethernet header parses");
    assert_eq!(eth.src, host.mac, "frames leave from our MAC");
    assert!(f.payload().len() <= host.mtu, "frame of {} bytes over an MTU of {}", frame.len(), host.mtu);
    match eth.ethertype {
        EtherType::Arp => {
            let p = ArpPacket::new_checked(f.payload()).expect("an emitted ARP packet holds 28 bytes");
            let arp = ArpRepr::parse(&p).expect("an emitted ARP packet parses");
            assert_eq!(arp.source_hardware_addr, host.mac);
            assert_eq!(arp.source_protocol_addr, host.ip, "ARP speaks for our address only");
            None
        }
        EtherType::Ipv4 => {
            assert!(!eth.dst.is_multicast() || eth.dst.is_broadcast(), "no multicast MACs: {}", eth.dst);
            ip_packet(host, f.payload(), true)
        }
        EtherType::Unknown(t) => panic!("emitted a frame of EtherType {t:#06x}"),
    }
}

/// Checks an IPv4 packet the stack emitted (on an IP medium, or inside a
/// frame, where `padded` allows bytes past the total length).
pub fn ip_packet(host: &Host, data: &[u8], padded: bool) -> Option<Segment> {
    let p = Ipv4Packet::new_checked(data).unwrap_or_else(|e| panic!("emitted IPv4 packet: {e}: {data:02x?}"));
    if !padded {
        assert_eq!(p.total_len() as usize, data.len(), "an IP packet is as long as it says");
    }
    assert!(p.total_len() as usize <= host.mtu, "packet of {} bytes over an MTU of {}", p.total_len(), host.mtu);
    let ip = Ipv4Repr::parse(&p, true).expect("an emitted IPv4 header carries a correct checksum");
    assert_eq!(p.header_len(), 20, "ustack sends no IP options");
    assert!(host.is_ours(ip.src_addr), "packets leave from our address, not {}", ip.src_addr);
    assert_eq!(ip.hop_limit, host.ttl);
    assert!(!ip.dst_addr.is_unspecified() && !ip.dst_addr.is_loopback(), "to {}", ip.dst_addr);
    if ip.is_fragment() {
        // A fragment's payload is a piece of a transport message; it is
        // checked whole nowhere, but it must respect the fragment rules.
        if ip.more_frags {
            assert!(ip.payload_len > 0 && ip.payload_len.is_multiple_of(8), "fragment of {} bytes", ip.payload_len);
        }
        assert!(!ip.dont_frag, "a fragment with DF");
        return None;
    }
    let payload = p.payload();
    let addrs = Some((ip.src_addr, ip.dst_addr));
    match ip.protocol {
        IpProtocol::Tcp => {
            let t = TcpPacket::new_checked(payload).unwrap_or_else(|e| panic!("emitted TCP segment: {e}"));
            let tcp = TcpRepr::parse(&t, addrs).unwrap_or_else(|e| panic!("emitted TCP segment: {e}: {payload:02x?}"));
            assert!(ip.dont_frag, "TCP sets DF (RFC 1191)");
            let flags = tcp.flags;
            assert!(!(flags.syn() && flags.fin()), "SYN and FIN together: {tcp}");
            assert!(!(flags.syn() && flags.rst()), "SYN and RST together: {tcp}");
            if flags.rst() {
                assert!(t.payload().is_empty(), "a RST with data: {tcp}");
            }
            if !flags.syn() {
                assert!(tcp.options.mss.is_none() && tcp.options.window_scale.is_none(), "SYN options on {tcp}");
                assert!(!tcp.options.sack_permitted, "SACK-permitted on {tcp}");
            }
            Some(Segment { ip, tcp, payload: t.payload().to_vec() })
        }
        IpProtocol::Udp => {
            let u = UdpPacket::new_checked(payload).unwrap_or_else(|e| panic!("emitted UDP datagram: {e}"));
            UdpRepr::parse(&u, addrs).unwrap_or_else(|e| panic!("emitted UDP datagram: {e}"));
            assert_eq!(u.length() as usize, payload.len(), "a UDP datagram is as long as it says");
            None
        }
        IpProtocol::Icmp => {
            let i = Icmpv4Packet::new_checked(payload).unwrap_or_else(|e| panic!("emitted ICMP message: {e}"));
            let repr = Icmpv4Repr::parse(&i, true).unwrap_or_else(|e| panic!("emitted ICMP message: {e}"));
            assert_eq!(repr.buffer_len(), payload.len(), "an ICMP message is as long as it says");
            if let Icmpv4Repr::DstUnreachable { header, .. } | Icmpv4Repr::TimeExceeded { header, .. } = repr {
                assert!(host.is_ours(header.dst_addr), "an ICMP error is about a datagram sent to us");
                // RFC 1812 §4.3.2.3: at most 576 bytes in all.
                assert!(20 + payload.len() <= 576, "ICMP error of {} bytes", 20 + payload.len());
            }
            None
        }
        IpProtocol::Unknown(n) => panic!("emitted IP protocol {n}"),
    }
}
