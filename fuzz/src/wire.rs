//! The `wire_parsers` target's body: every parser of `ustack_core::wire`
//! and every getter of every view a parser accepted, on the same bytes,
//! following the layers down (Ethernet to ARP or IPv4, IPv4 to ICMP, UDP or
//! TCP); and, wherever a `Repr` parsed, `emit` and parse again, which must
//! give the same `Repr`.
//!
//! Nothing here may panic but the assertions, each of which is a promise
//! the wire module makes (see `crates/ustack-core/src/wire/mod.rs`).

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::str::FromStr;
use ustack_core::wire::{
    ArpPacket, ArpRepr, Error, EtherType, EthernetAddress, EthernetFrame, EthernetRepr, Icmpv4Packet, Icmpv4Repr,
    IpProtocol, Ipv4Cidr, Ipv4Packet, Ipv4Repr, TcpOptions, TcpPacket, TcpRepr, UdpPacket, UdpRepr, checksum,
};

/// Pseudo-header addresses for a transport header met without an IPv4 one.
const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

/// Every parser on `data` as it stands, and on the text it may be.
pub fn exercise(data: &[u8]) {
    ethernet(data);
    arp(data);
    ipv4(data);
    icmpv4(data);
    udp(data, None);
    tcp(data, None);
    tcp_options(data);
    checksums(data);
    text(data);
}

fn ethernet(data: &[u8]) {
    let Ok(frame) = EthernetFrame::new_checked(data) else {
        assert!(data.len() < 14, "a 14-byte header is all an Ethernet frame needs");
        return;
    };
    let (dst, src) = (frame.dst_addr(), frame.src_addr());
    black_box((dst.is_broadcast(), dst.is_multicast(), dst.is_unicast(), dst.is_local(), src.as_bytes()));
    black_box((frame.ethertype(), frame.payload().len()));
    let repr = EthernetRepr::parse(&frame).expect("every Ethernet header parses");
    black_box(repr.to_string());
    let mut out = [0u8; 14];
    repr.emit(&mut EthernetFrame::new_unchecked(&mut out[..]));
    assert_eq!(out[..], data[..14], "the header emits back as it was");
    let again = EthernetRepr::parse(&EthernetFrame::new_checked(&out[..]).unwrap()).unwrap();
    assert_eq!(again, repr);
    match repr.ethertype {
        EtherType::Arp => arp(frame.payload()),
        EtherType::Ipv4 => ipv4(frame.payload()),
        EtherType::Unknown(v) => assert_eq!(u16::from(EtherType::from(v)), v),
    }
}

fn arp(data: &[u8]) {
    let Ok(p) = ArpPacket::new_checked(data) else {
        assert!(data.len() < 28);
        return;
    };
    black_box((p.hardware_type(), p.protocol_type(), p.hardware_len(), p.protocol_len(), p.operation()));
    black_box((p.source_hardware_addr(), p.source_protocol_addr(), p.target_hardware_addr(), p.target_protocol_addr()));
    match ArpRepr::parse(&p) {
        Ok(repr) => {
            black_box(repr.to_string());
            let mut out = [0u8; 28];
            repr.emit(&mut ArpPacket::new_unchecked(&mut out[..]));
            assert_eq!(out[..], data[..28], "an Ethernet/IPv4 ARP packet emits back as it was");
            assert_eq!(ArpRepr::parse(&ArpPacket::new_checked(&out[..]).unwrap()), Ok(repr));
        }
        Err(e) => assert_eq!(e, Error::Unsupported),
    }
}

fn ipv4(data: &[u8]) {
    let Ok(p) = Ipv4Packet::new_checked(data) else {
        return;
    };
    black_box((p.version(), p.header_len(), p.dscp(), p.ecn(), p.dscp_ecn(), p.total_len(), p.ident()));
    black_box((p.dont_frag(), p.more_frags(), p.frag_offset(), p.is_fragment(), p.hop_limit(), p.ttl()));
    black_box((p.protocol(), p.checksum(), p.src_addr(), p.dst_addr(), p.options(), p.payload()));
    assert_eq!(p.header_len() + p.payload().len(), p.total_len() as usize);
    let unverified = Ipv4Repr::parse(&p, false).expect("a checked IPv4 header parses without its checksum");
    assert_eq!(unverified.payload_len, p.payload().len());
    match Ipv4Repr::parse(&p, true) {
        Ok(r) => {
            assert!(p.verify_checksum());
            assert_eq!(r, unverified);
        }
        Err(e) => {
            assert_eq!(e, Error::Checksum);
            assert!(!p.verify_checksum());
        }
    }
    black_box(unverified.to_string());
    black_box(unverified.is_fragment());

    // Filling the checksum in place makes the header verify.
    let mut copy = data.to_vec();
    let mut q = Ipv4Packet::new_checked(&mut copy[..]).expect("same bytes, same check");
    q.fill_checksum();
    assert!(q.verify_checksum());

    // parse -> emit -> parse, with the payload carried over.
    let mut out = vec![0u8; unverified.total_len()];
    unverified.emit(&mut Ipv4Packet::new_unchecked(&mut out[..]), true);
    out[unverified.buffer_len()..].copy_from_slice(p.payload());
    let q = Ipv4Packet::new_checked(&out[..]).expect("an emitted header is well formed");
    assert_eq!(Ipv4Repr::parse(&q, true), Ok(unverified));
    assert_eq!(q.payload(), p.payload());

    let addrs = Some((p.src_addr(), p.dst_addr()));
    match p.protocol() {
        IpProtocol::Icmp => icmpv4(p.payload()),
        IpProtocol::Udp => udp(p.payload(), addrs),
        IpProtocol::Tcp => tcp(p.payload(), addrs),
        IpProtocol::Unknown(v) => assert_eq!(u8::from(IpProtocol::from(v)), v),
    }
}

fn icmpv4(data: &[u8]) {
    let Ok(p) = Icmpv4Packet::new_checked(data) else {
        assert!(data.len() < 8);
        return;
    };
    black_box((p.msg_type(), p.code(), p.checksum(), p.rest_of_header(), p.echo_ident(), p.echo_seq_no()));
    black_box((p.next_hop_mtu(), p.data()));
    let verified = Icmpv4Repr::parse(&p, true);
    let unverified = Icmpv4Repr::parse(&p, false);
    match verified {
        Err(Error::Checksum) => assert!(!p.verify_checksum()),
        other => {
            assert!(p.verify_checksum());
            assert_eq!(other, unverified);
        }
    }
    if let Ok(repr) = unverified {
        black_box(repr.to_string());
        let mut out = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut out[..]));
        let q = Icmpv4Packet::new_checked(&out[..]).expect("an emitted message holds its header");
        assert!(q.verify_checksum());
        let again = Icmpv4Repr::parse(&q, true).expect("an emitted message parses");
        assert_eq!(again, repr);
        // Emitting into a larger buffer checksums only the message.
        let mut big = vec![0xa5u8; repr.buffer_len() + 7];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut big[..]));
        assert_eq!(big[..repr.buffer_len()], out[..]);
    }
    let mut copy = data.to_vec();
    let mut q = Icmpv4Packet::new_checked(&mut copy[..]).unwrap();
    q.fill_checksum();
    assert!(q.verify_checksum());
}

fn udp(data: &[u8], addrs: Option<(Ipv4Addr, Ipv4Addr)>) {
    let Ok(p) = UdpPacket::new_checked(data) else {
        return;
    };
    let (src, dst) = addrs.unwrap_or((A, B));
    black_box((p.src_port(), p.dst_port(), p.length(), p.checksum(), p.payload()));
    assert_eq!(p.payload().len() + 8, p.length() as usize);
    let unverified = UdpRepr::parse(&p, None);
    match UdpRepr::parse(&p, Some((src, dst))) {
        Err(Error::Checksum) => assert!(!p.verify_checksum(src, dst)),
        other => {
            assert!(p.verify_checksum(src, dst));
            assert_eq!(other, unverified);
        }
    }
    if let Ok(repr) = unverified {
        black_box(repr.to_string());
        let payload = p.payload();
        let mut out = vec![0u8; repr.buffer_len(payload.len())];
        out[repr.header_len()..].copy_from_slice(payload);
        repr.emit(&mut UdpPacket::new_unchecked(&mut out[..]), payload.len(), Some((src, dst)));
        let q = UdpPacket::new_checked(&out[..]).expect("an emitted datagram is well formed");
        assert_ne!(q.checksum(), 0, "a computed zero goes out as all ones");
        assert_eq!(UdpRepr::parse(&q, Some((src, dst))), Ok(repr));
        assert_eq!(q.payload(), payload);
        // Without addresses: no checksum, which any receiver accepts.
        repr.emit(&mut UdpPacket::new_unchecked(&mut out[..]), payload.len(), None);
        let q = UdpPacket::new_checked(&out[..]).unwrap();
        assert_eq!(UdpRepr::parse(&q, Some((src, dst))), Ok(repr));
    }
    let mut copy = data.to_vec();
    let mut q = UdpPacket::new_checked(&mut copy[..]).unwrap();
    q.fill_checksum(src, dst);
    assert!(q.verify_checksum(src, dst));
}

fn tcp(data: &[u8], addrs: Option<(Ipv4Addr, Ipv4Addr)>) {
    let Ok(p) = TcpPacket::new_checked(data) else {
        return;
    };
    let (src, dst) = addrs.unwrap_or((A, B));
    black_box((p.src_port(), p.dst_port(), p.seq_number(), p.ack_number(), p.header_len(), p.window_len()));
    black_box((p.checksum(), p.urgent_at(), p.options(), p.payload(), p.segment_len()));
    let flags = p.flags();
    black_box((flags.fin(), flags.syn(), flags.rst(), flags.psh(), flags.ack(), flags.urg(), flags.to_string()));
    assert_eq!(p.header_len() + p.payload().len(), data.len());
    let unverified = TcpRepr::parse(&p, None);
    match TcpRepr::parse(&p, Some((src, dst))) {
        Err(Error::Checksum) => assert!(!p.verify_checksum(src, dst)),
        other => {
            assert!(p.verify_checksum(src, dst));
            assert_eq!(other, unverified);
        }
    }
    if let Ok(mut repr) = unverified {
        black_box(repr.to_string());
        assert_eq!(repr.segment_len(p.payload().len()), p.segment_len());
        // The ACK field only travels with ACK, and options the segment held
        // in another layout may not all fit again: emit what TCP sends.
        if !repr.flags.ack() {
            repr.ack = 0;
        }
        repr.options = repr.options.fitted();
        let hl = repr.header_len();
        assert!(hl <= 60 && hl.is_multiple_of(4), "header length {hl}");
        let payload = p.payload();
        let mut out = vec![0u8; hl + payload.len()];
        out[hl..].copy_from_slice(payload);
        repr.emit(&mut TcpPacket::new_unchecked(&mut out[..]), Some((src, dst)));
        let q = TcpPacket::new_checked(&out[..]).expect("an emitted segment is well formed");
        assert_eq!(TcpRepr::parse(&q, Some((src, dst))), Ok(repr));
        assert_eq!(q.payload(), payload);
    }
    let mut copy = data.to_vec();
    let mut q = TcpPacket::new_checked(&mut copy[..]).unwrap();
    q.fill_checksum(src, dst);
    assert!(q.verify_checksum(src, dst));
}

/// An options area on its own: what parses emits to the same options,
/// less the SACK blocks that do not fit.
fn tcp_options(data: &[u8]) {
    let area = &data[..data.len().min(40)];
    let Ok(opts) = TcpOptions::parse(area) else {
        return;
    };
    let fitted = opts.fitted();
    let n = opts.buffer_len();
    assert!(n <= 40 && n.is_multiple_of(4), "options length {n}");
    let mut out = [0u8; 40];
    assert_eq!(opts.emit(&mut out[..n]), n);
    assert_eq!(TcpOptions::parse(&out[..n]), Ok(fitted));
    assert_eq!(fitted.fitted(), fitted);
}

/// The Internet checksum: the 64-bit accumulator equals a word-by-word
/// ones'-complement sum, and a filled-in checksum verifies.
fn checksums(data: &[u8]) {
    let data = &data[..data.len().min(4096)];
    let mut acc: u32 = 0;
    for pair in data.chunks(2) {
        let w = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        acc += u32::from(w);
        acc = (acc & 0xffff) + (acc >> 16);
    }
    let s = checksum::sum(data);
    // 0x0000 and 0xffff are the same number in ones' complement.
    assert!(s == acc as u16 || (s == 0xffff && acc == 0) || (s == 0 && acc == 0xffff), "{s:#x} vs {acc:#x}");
    let split = (data.len() / 2) & !1;
    let (a, b) = data.split_at(split);
    let two = checksum::combine(checksum::sum(a), checksum::sum(b));
    assert!(two == s || ((two ^ s) == 0xffff && (two == 0 || s == 0)));
    if data.len() >= 2 && data.len().is_multiple_of(2) {
        let mut v = data.to_vec();
        v[0] = 0;
        v[1] = 0;
        let pseudo = checksum::pseudo_header(A, B, 6, v.len() as u32);
        let c = checksum::checksum(pseudo, &v);
        v[..2].copy_from_slice(&c.to_be_bytes());
        assert!(checksum::verify(pseudo, &v));
    }
}

/// The text parsers: a MAC address and a CIDR prefix; what parses prints
/// to text that parses to the same value.
fn text(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(mac) = EthernetAddress::from_str(s) {
        assert_eq!(EthernetAddress::from_str(&mac.to_string()), Ok(mac));
    }
    if let Ok(cidr) = Ipv4Cidr::from_str(s) {
        assert_eq!(Ipv4Cidr::from_str(&cidr.to_string()), Ok(cidr));
        let net = cidr.network();
        assert!(net.contains(cidr.address()));
        assert!(cidr.contains(cidr.broadcast()));
        black_box(cidr.netmask());
    }
}
