//! Fuzz-style property tests for every packet format in `wire`.
//!
//! Two promises are checked here:
//! - no bytes can make a parser panic: fully random input and valid packets
//!   with bits flipped, bytes changed, inserted or removed, cut short or
//!   extended go through every `new_checked`, every `parse`, and every
//!   getter of every view that `new_checked` accepted (the layers are also
//!   followed down: Ethernet to ARP or IPv4, IPv4 to ICMP, UDP or TCP);
//! - `parse(emit(repr)) == repr` for random reprs of every kind, and a repr
//!   that parsed once emits to bytes that parse to the same repr.
//!
//! Run with `cargo test -p ustack-core --test wire_fuzz`.

use proptest::prelude::*;
use std::hint::black_box;
use std::net::Ipv4Addr;
use ustack_core::wire::{
    ArpOperation, ArpPacket, ArpRepr, DstUnreachable, Error, EtherType, EthernetAddress, EthernetFrame, EthernetRepr,
    Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Packet, Ipv4Repr, TcpFlags, TcpOptions, TcpPacket, TcpRepr, TimeExceeded,
    UdpPacket, UdpRepr,
};

/// Addresses for pseudo-headers when a bare segment has no IPv4 header.
const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

// ---------------------------------------------------------------------------
// Exercising the parsers: none of these may panic, whatever `bytes` holds.
// ---------------------------------------------------------------------------

/// Every parser on `bytes` as it stands, each following the layers down.
fn exercise_all(bytes: &[u8]) {
    ethernet(bytes);
    arp(bytes);
    ipv4(bytes);
    icmpv4(bytes);
    udp(bytes, None);
    tcp(bytes, None);
    black_box(TcpOptions::parse(bytes).ok());
}

fn ethernet(bytes: &[u8]) {
    let Ok(f) = EthernetFrame::new_checked(bytes) else {
        assert!(bytes.len() < 14);
        return;
    };
    black_box((f.dst_addr(), f.src_addr(), f.ethertype(), f.payload()));
    black_box(f.dst_addr().to_string());
    black_box((f.dst_addr().is_broadcast(), f.dst_addr().is_multicast(), f.dst_addr().is_unicast()));
    let repr = EthernetRepr::parse(&f).expect("every Ethernet header parses");
    black_box(repr.to_string());
    // Re-emitting gives back the header bytes.
    let mut out = [0u8; 14];
    repr.emit(&mut EthernetFrame::new_unchecked(&mut out[..]));
    assert_eq!(&out[..], &bytes[..14]);
    match repr.ethertype {
        EtherType::Arp => arp(f.payload()),
        EtherType::Ipv4 => ipv4(f.payload()),
        EtherType::Unknown(_) => {}
    }
}

fn arp(bytes: &[u8]) {
    let Ok(p) = ArpPacket::new_checked(bytes) else {
        return;
    };
    black_box((
        p.hardware_type(),
        p.protocol_type(),
        p.hardware_len(),
        p.protocol_len(),
        p.operation(),
        p.source_hardware_addr(),
        p.source_protocol_addr(),
        p.target_hardware_addr(),
        p.target_protocol_addr(),
    ));
    match ArpRepr::parse(&p) {
        Ok(repr) => {
            black_box(repr.to_string());
            let mut out = [0u8; 28];
            repr.emit(&mut ArpPacket::new_unchecked(&mut out[..]));
            assert_eq!(&out[..], &bytes[..28]);
        }
        Err(e) => assert_eq!(e, Error::Unsupported),
    }
}

fn ipv4(bytes: &[u8]) {
    let Ok(p) = Ipv4Packet::new_checked(bytes) else {
        return;
    };
    black_box((
        p.version(),
        p.header_len(),
        p.dscp(),
        p.ecn(),
        p.dscp_ecn(),
        p.total_len(),
        p.ident(),
        p.dont_frag(),
        p.more_frags(),
        p.frag_offset(),
        p.is_fragment(),
    ));
    black_box((
        p.hop_limit(),
        p.ttl(),
        p.protocol(),
        p.checksum(),
        p.src_addr(),
        p.dst_addr(),
        p.options(),
        p.payload(),
        p.verify_checksum(),
    ));
    let unverified = Ipv4Repr::parse(&p, false).expect("a checked header always parses");
    assert_eq!(unverified.payload_len, p.payload().len());
    match Ipv4Repr::parse(&p, true) {
        Ok(r) => assert_eq!(r, unverified),
        Err(e) => assert_eq!(e, Error::Checksum),
    }
    black_box(unverified.to_string());

    // Filling the checksum of a checked header makes it verify.
    let mut copy = bytes.to_vec();
    let mut q = Ipv4Packet::new_checked(&mut copy[..]).unwrap();
    q.fill_checksum();
    assert!(q.verify_checksum());

    // The parsed header emits to one that parses the same.
    let mut out = vec![0u8; unverified.total_len()];
    unverified.emit(&mut Ipv4Packet::new_unchecked(&mut out[..]), true);
    let q = Ipv4Packet::new_checked(&out[..]).unwrap();
    assert_eq!(Ipv4Repr::parse(&q, true).unwrap(), unverified);

    let addrs = Some((p.src_addr(), p.dst_addr()));
    match p.protocol() {
        IpProtocol::Icmp => icmpv4(p.payload()),
        IpProtocol::Udp => udp(p.payload(), addrs),
        IpProtocol::Tcp => tcp(p.payload(), addrs),
        IpProtocol::Unknown(_) => {}
    }
}

fn icmpv4(bytes: &[u8]) {
    let Ok(p) = Icmpv4Packet::new_checked(bytes) else {
        return;
    };
    black_box((
        p.msg_type(),
        p.code(),
        p.checksum(),
        p.rest_of_header(),
        p.echo_ident(),
        p.echo_seq_no(),
        p.next_hop_mtu(),
        p.data(),
        p.verify_checksum(),
    ));
    let unverified = Icmpv4Repr::parse(&p, false);
    match Icmpv4Repr::parse(&p, true) {
        Ok(r) => assert_eq!(Ok(r), unverified),
        Err(Error::Checksum) => assert!(!p.verify_checksum()),
        Err(e) => assert_eq!(Err(e), unverified),
    }
    if let Ok(repr) = unverified {
        black_box(repr.to_string());
        let mut out = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut out[..]));
        let q = Icmpv4Packet::new_checked(&out[..]).unwrap();
        assert_eq!(Icmpv4Repr::parse(&q, true).unwrap(), repr);
    }

    let mut copy = bytes.to_vec();
    let mut q = Icmpv4Packet::new_checked(&mut copy[..]).unwrap();
    q.fill_checksum();
    assert!(q.verify_checksum());
}

fn udp(bytes: &[u8], addrs: Option<(Ipv4Addr, Ipv4Addr)>) {
    let Ok(p) = UdpPacket::new_checked(bytes) else {
        return;
    };
    let (src, dst) = addrs.unwrap_or((A, B));
    black_box((p.src_port(), p.dst_port(), p.length(), p.checksum(), p.payload(), p.verify_checksum(src, dst)));
    let unverified = UdpRepr::parse(&p, None);
    match UdpRepr::parse(&p, Some((src, dst))) {
        Ok(r) => assert_eq!(Ok(r), unverified),
        Err(Error::Checksum) => assert!(!p.verify_checksum(src, dst)),
        Err(e) => assert_eq!(Err(e), unverified),
    }
    if let Ok(repr) = unverified {
        black_box(repr.to_string());
        let payload = p.payload();
        let mut out = vec![0u8; repr.buffer_len(payload.len())];
        out[8..].copy_from_slice(payload);
        repr.emit(&mut UdpPacket::new_unchecked(&mut out[..]), payload.len(), Some((src, dst)));
        let q = UdpPacket::new_checked(&out[..]).unwrap();
        assert_eq!(UdpRepr::parse(&q, Some((src, dst))).unwrap(), repr);
        assert_eq!(q.payload(), payload);
    }

    let mut copy = bytes.to_vec();
    let mut q = UdpPacket::new_checked(&mut copy[..]).unwrap();
    q.fill_checksum(src, dst);
    assert!(q.verify_checksum(src, dst));
    assert_ne!(q.checksum(), 0);
}

fn tcp(bytes: &[u8], addrs: Option<(Ipv4Addr, Ipv4Addr)>) {
    let Ok(p) = TcpPacket::new_checked(bytes) else {
        return;
    };
    let (src, dst) = addrs.unwrap_or((A, B));
    black_box((
        p.src_port(),
        p.dst_port(),
        p.seq_number(),
        p.ack_number(),
        p.header_len(),
        p.flags(),
        p.window_len(),
        p.checksum(),
        p.urgent_at(),
        p.options(),
        p.payload(),
        p.segment_len(),
        p.verify_checksum(src, dst),
    ));
    black_box(p.flags().to_string());
    black_box(TcpOptions::parse(p.options()).ok());
    let unverified = TcpRepr::parse(&p, None);
    match TcpRepr::parse(&p, Some((src, dst))) {
        Ok(r) => assert_eq!(Ok(r), unverified),
        Err(Error::Checksum) => assert!(!p.verify_checksum(src, dst)),
        Err(e) => assert_eq!(Err(e), unverified),
    }
    if let Ok(mut repr) = unverified {
        black_box(repr.to_string());
        // What a parsed repr holds may not fit back into 40 bytes of
        // options (another layout), and the ACK field is only carried with
        // ACK; re-emit only what TCP can send.
        if !repr.flags.ack() {
            repr.ack = 0;
        }
        if repr.header_len() <= 60 {
            let payload = p.payload();
            let hl = repr.header_len();
            let mut out = vec![0u8; hl + payload.len()];
            out[hl..].copy_from_slice(payload);
            repr.emit(&mut TcpPacket::new_unchecked(&mut out[..]), Some((src, dst)));
            let q = TcpPacket::new_checked(&out[..]).unwrap();
            assert_eq!(TcpRepr::parse(&q, Some((src, dst))).unwrap(), repr);
        }
    }

    let mut copy = bytes.to_vec();
    let mut q = TcpPacket::new_checked(&mut copy[..]).unwrap();
    q.fill_checksum(src, dst);
    assert!(q.verify_checksum(src, dst));
}

// ---------------------------------------------------------------------------
// Strategies for reprs.
// ---------------------------------------------------------------------------

fn mac() -> impl Strategy<Value = EthernetAddress> {
    any::<[u8; 6]>().prop_map(EthernetAddress)
}

fn ip() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>().prop_map(Ipv4Addr::from)
}

fn ethertype() -> impl Strategy<Value = EtherType> {
    prop_oneof![Just(EtherType::Ipv4), Just(EtherType::Arp), any::<u16>().prop_map(EtherType::from),]
}

fn ethernet_repr() -> impl Strategy<Value = EthernetRepr> {
    (mac(), mac(), ethertype()).prop_map(|(src, dst, ethertype)| EthernetRepr { src, dst, ethertype })
}

fn arp_repr() -> impl Strategy<Value = ArpRepr> {
    (
        prop_oneof![Just(ArpOperation::Request), Just(ArpOperation::Reply), any::<u16>().prop_map(ArpOperation::from),],
        mac(),
        ip(),
        mac(),
        ip(),
    )
        .prop_map(|(operation, sha, spa, tha, tpa)| ArpRepr {
            operation,
            source_hardware_addr: sha,
            source_protocol_addr: spa,
            target_hardware_addr: tha,
            target_protocol_addr: tpa,
        })
}

/// An IPv4 header with a payload length drawn from `payload_len`.
fn ipv4_repr_with(payload_len: impl Strategy<Value = usize>) -> impl Strategy<Value = Ipv4Repr> {
    (
        (ip(), ip(), any::<u8>().prop_map(IpProtocol::from), payload_len),
        (any::<u8>(), any::<u16>(), any::<bool>(), any::<bool>(), (0..8192u16).prop_map(|o| o * 8), any::<u8>()),
    )
        .prop_map(
            |(
                (src_addr, dst_addr, protocol, payload_len),
                (hop_limit, ident, dont_frag, more_frags, frag_offset, dscp_ecn),
            )| Ipv4Repr {
                src_addr,
                dst_addr,
                protocol,
                payload_len,
                hop_limit,
                ident,
                dont_frag,
                more_frags,
                frag_offset,
                dscp_ecn,
            },
        )
}

fn ipv4_repr() -> impl Strategy<Value = Ipv4Repr> {
    ipv4_repr_with(prop_oneof![4 => 0..2000usize, 1 => 0..=65515usize])
}

/// The owned parts of an ICMP message; [`IcmpSpec::repr`] borrows them.
#[derive(Clone, Debug)]
struct IcmpSpec {
    kind: u8,
    ident: u16,
    seq_no: u16,
    code: u8,
    mtu: u16,
    header: Ipv4Repr,
    data: Vec<u8>,
}

impl IcmpSpec {
    fn repr(&self) -> Icmpv4Repr<'_> {
        let data = &self.data[..];
        // The quoted datagram must show at least 8 bytes of its payload,
        // or all of it when it was shorter (RFC 792).
        let mut header = self.header;
        if data.len() < 8 {
            header.payload_len = header.payload_len.min(data.len());
        }
        match self.kind % 4 {
            0 => Icmpv4Repr::EchoRequest { ident: self.ident, seq_no: self.seq_no, data },
            1 => Icmpv4Repr::EchoReply { ident: self.ident, seq_no: self.seq_no, data },
            2 => Icmpv4Repr::DstUnreachable {
                reason: DstUnreachable::from_code(self.code, if self.code == 4 { self.mtu } else { 0 }),
                header,
                data,
            },
            _ => Icmpv4Repr::TimeExceeded {
                reason: if self.code.is_multiple_of(2) {
                    TimeExceeded::TtlExpired
                } else {
                    TimeExceeded::FragReassembly
                },
                header,
                data,
            },
        }
    }
}

fn icmp_spec() -> impl Strategy<Value = IcmpSpec> {
    (
        any::<u8>(),
        any::<u16>(),
        any::<u16>(),
        prop_oneof![0..=15u8, any::<u8>()],
        any::<u16>(),
        ipv4_repr_with(0..=65515usize),
        prop::collection::vec(any::<u8>(), 0..600),
    )
        .prop_map(|(kind, ident, seq_no, code, mtu, header, data)| IcmpSpec {
            kind,
            ident,
            seq_no,
            code,
            mtu,
            header,
            data,
        })
}

fn udp_repr() -> impl Strategy<Value = UdpRepr> {
    (any::<u16>(), 1..=u16::MAX).prop_map(|(src_port, dst_port)| UdpRepr { src_port, dst_port })
}

fn tcp_options() -> impl Strategy<Value = TcpOptions> {
    (
        any::<Option<u16>>(),
        any::<Option<u8>>(),
        any::<bool>(),
        any::<Option<(u32, u32)>>(),
        prop::collection::vec(any::<(u32, u32)>(), 0..=4),
        any::<bool>(),
    )
        .prop_map(|(mss, window_scale, sack_permitted, timestamps, blocks, md5)| {
            // The RFC 2385 signature goes first when it is there (20 bytes).
            let mut o = TcpOptions { mss, window_scale, sack_permitted, timestamps, md5, ..Default::default() };
            // At most 40 bytes of options fit in a header (RFC 9293 §3.1):
            // keep as many SACK blocks as fit. (Built afresh rather than
            // with `truncate`, which leaves the dropped blocks in the
            // unused slots that the derived `PartialEq` still compares.)
            let mut n = blocks.len();
            loop {
                o.sack_blocks = Default::default();
                for &(l, r) in &blocks[..n] {
                    o.sack_blocks.push(l, r);
                }
                if o.buffer_len() <= 40 {
                    break o;
                }
                if n > 0 {
                    n -= 1;
                } else {
                    // A signature beside everything else: as a signing
                    // sender does, do without timestamps.
                    o.timestamps = None;
                }
            }
        })
}

fn tcp_repr() -> impl Strategy<Value = TcpRepr> {
    ((1..=u16::MAX, 1..=u16::MAX, any::<u32>(), any::<u32>()), (any::<u8>(), any::<u16>(), any::<u16>(), tcp_options()))
        .prop_map(|((src_port, dst_port, seq, ack), (flags, window, urgent, options))| {
            let flags = TcpFlags::from_bits(flags);
            TcpRepr {
                src_port,
                dst_port,
                seq,
                // The field is sent as zero without ACK.
                ack: if flags.ack() { ack } else { 0 },
                flags,
                window,
                urgent,
                options,
            }
        })
}

fn payload(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

// ---------------------------------------------------------------------------
// Building valid packets of every kind, and mutating them.
// ---------------------------------------------------------------------------

fn emit_ethernet(repr: &EthernetRepr, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; repr.buffer_len() + payload.len()];
    let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
    repr.emit(&mut f);
    f.payload_mut().copy_from_slice(payload);
    buf
}

fn emit_arp(repr: &ArpRepr) -> Vec<u8> {
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
    buf
}

/// An IPv4 datagram around `payload`; `header.payload_len` is overridden.
fn emit_ipv4(header: &Ipv4Repr, payload: &[u8]) -> Vec<u8> {
    let header = Ipv4Repr { payload_len: payload.len(), ..*header };
    let mut buf = vec![0u8; header.total_len()];
    let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
    header.emit(&mut p, true);
    p.payload_mut().copy_from_slice(payload);
    buf
}

fn emit_icmp(repr: &Icmpv4Repr<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]));
    buf
}

fn emit_udp(repr: &UdpRepr, payload: &[u8], addrs: (Ipv4Addr, Ipv4Addr)) -> Vec<u8> {
    let mut buf = vec![0u8; repr.buffer_len(payload.len())];
    buf[repr.header_len()..].copy_from_slice(payload);
    repr.emit(&mut UdpPacket::new_unchecked(&mut buf[..]), payload.len(), Some(addrs));
    buf
}

fn emit_tcp(repr: &TcpRepr, payload: &[u8], addrs: (Ipv4Addr, Ipv4Addr)) -> Vec<u8> {
    let hl = repr.header_len();
    let mut buf = vec![0u8; hl + payload.len()];
    buf[hl..].copy_from_slice(payload);
    repr.emit(&mut TcpPacket::new_unchecked(&mut buf[..]), Some(addrs));
    buf
}

/// Everything needed to build one valid packet of any kind.
#[derive(Clone, Debug)]
struct Ingredients {
    kind: u8,
    eth: EthernetRepr,
    arp: ArpRepr,
    ip: Ipv4Repr,
    icmp: IcmpSpec,
    udp: UdpRepr,
    tcp: TcpRepr,
    payload: Vec<u8>,
    /// IPv4 options (a multiple of 4 bytes, at most 40).
    ip_options: Vec<u8>,
}

fn ingredients() -> impl Strategy<Value = Ingredients> {
    (
        (any::<u8>(), ethernet_repr(), arp_repr(), ipv4_repr_with(0..1usize)),
        (icmp_spec(), udp_repr(), tcp_repr(), payload(200)),
        (0..=10usize).prop_flat_map(|words| prop::collection::vec(any::<u8>(), words * 4)),
    )
        .prop_map(|((kind, eth, arp, ip), (icmp, udp, tcp, payload), ip_options)| Ingredients {
            kind,
            eth,
            arp,
            ip,
            icmp,
            udp,
            tcp,
            payload,
            ip_options,
        })
}

impl Ingredients {
    /// A valid packet: a bare layer or a whole Ethernet frame.
    fn build(&self) -> Vec<u8> {
        let addrs = (self.ip.src_addr, self.ip.dst_addr);
        let in_ip = |protocol: IpProtocol, payload: &[u8]| emit_ipv4(&Ipv4Repr { protocol, ..self.ip }, payload);
        let in_eth =
            |ethertype: EtherType, payload: &[u8]| emit_ethernet(&EthernetRepr { ethertype, ..self.eth }, payload);
        let icmp = || emit_icmp(&self.icmp.repr());
        let udp = || emit_udp(&self.udp, &self.payload, addrs);
        let tcp = || emit_tcp(&self.tcp, &self.payload, addrs);
        match self.kind % 13 {
            0 => emit_arp(&self.arp),
            1 => icmp(),
            2 => udp(),
            3 => tcp(),
            4 => in_ip(IpProtocol::Icmp, &icmp()),
            5 => in_ip(IpProtocol::Udp, &udp()),
            6 => in_ip(IpProtocol::Tcp, &tcp()),
            7 => in_eth(EtherType::Arp, &emit_arp(&self.arp)),
            8 => in_eth(EtherType::Ipv4, &in_ip(IpProtocol::Icmp, &icmp())),
            9 => in_eth(EtherType::Ipv4, &in_ip(IpProtocol::Udp, &udp())),
            10 => in_eth(EtherType::Ipv4, &in_ip(IpProtocol::Tcp, &tcp())),
            11 => in_eth(self.eth.ethertype, &self.payload),
            _ => {
                // An IPv4 datagram with options, carrying UDP.
                let udp = udp();
                let mut d = in_ip(IpProtocol::Udp, &udp);
                let hl = 20 + self.ip_options.len();
                d.splice(20..20, self.ip_options.iter().copied());
                let mut p = Ipv4Packet::new_unchecked(&mut d[..]);
                p.set_header_len(hl);
                p.set_total_len((hl + udp.len()) as u16);
                p.fill_checksum();
                d
            }
        }
    }
}

#[derive(Clone, Debug)]
enum Mutation {
    FlipBit(usize, u8),
    SetByte(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
    Extend(Vec<u8>),
    /// Overwrite a 16-bit word with a boundary value: lengths and offsets
    /// are where parsers go wrong.
    SetWord(usize, u16),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 0..8u8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        3 => (any::<usize>(), any::<u8>()).prop_map(|(i, v)| Mutation::SetByte(i, v)),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, v)| Mutation::Insert(i, v)),
        1 => any::<usize>().prop_map(Mutation::Remove),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => payload(64).prop_map(Mutation::Extend),
        2 => (
            any::<usize>(),
            prop_oneof![
                Just(0u16),
                Just(1),
                Just(7),
                Just(8),
                Just(19),
                Just(20),
                Just(0x4f00),
                Just(0xf000),
                Just(0xffff),
                any::<u16>()
            ]
        )
            .prop_map(|(i, v)| Mutation::SetWord(i, v)),
    ]
}

fn apply(buf: &mut Vec<u8>, mutations: &[Mutation]) {
    for m in mutations {
        let len = buf.len();
        match m {
            Mutation::FlipBit(i, b) if len > 0 => buf[i % len] ^= 1 << b,
            Mutation::SetByte(i, v) if len > 0 => buf[i % len] = *v,
            Mutation::Insert(i, v) => buf.insert(i % (len + 1), *v),
            Mutation::Remove(i) if len > 0 => {
                buf.remove(i % len);
            }
            Mutation::Truncate(n) => buf.truncate(n % (len + 1)),
            Mutation::Extend(more) => buf.extend_from_slice(more),
            Mutation::SetWord(i, v) if len > 1 => {
                let at = i % (len - 1);
                buf[at..at + 2].copy_from_slice(&v.to_be_bytes());
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------
// The properties.
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5000))]

    /// Fully random bytes through every parser.
    #[test]
    fn random_bytes_never_panic(bytes in payload(2000)) {
        exercise_all(&bytes);
    }

    /// Random bytes shaped like an IPv4 header (version 4, a plausible IHL
    /// and total length), so that the deeper parsers see them too.
    #[test]
    fn random_ipv4_shaped_bytes_never_panic(
        mut bytes in prop::collection::vec(any::<u8>(), 20..600),
        ihl in 5..=15u8,
        protocol in prop_oneof![Just(1u8), Just(6), Just(17), any::<u8>()],
        slack in 0..4usize,
    ) {
        let len = bytes.len();
        bytes[0] = 0x40 | ihl;
        bytes[2..4].copy_from_slice(&((len - slack.min(len - 20)) as u16).to_be_bytes());
        bytes[9] = protocol;
        exercise_all(&bytes);
    }

    /// Valid packets of every kind, mutated, through every parser.
    #[test]
    fn mutated_packets_never_panic(
        ing in ingredients(),
        mutations in prop::collection::vec(mutation(), 0..6),
    ) {
        let mut bytes = ing.build();
        // Unmutated, the packet is exercised too (and must round-trip
        // through the re-emit checks inside).
        exercise_all(&bytes);
        apply(&mut bytes, &mutations);
        exercise_all(&bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn ethernet_round_trip(repr in ethernet_repr(), data in payload(100)) {
        let buf = emit_ethernet(&repr, &data);
        let f = EthernetFrame::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(EthernetRepr::parse(&f).unwrap(), repr);
        prop_assert_eq!(f.payload(), &data[..]);
    }

    #[test]
    fn arp_round_trip(repr in arp_repr()) {
        let buf = emit_arp(&repr);
        prop_assert_eq!(buf.len(), 28);
        let p = ArpPacket::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(ArpRepr::parse(&p).unwrap(), repr);
    }

    #[test]
    fn ipv4_round_trip(repr in ipv4_repr(), fill in any::<bool>()) {
        let mut buf = vec![0u8; repr.total_len()];
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]), fill);
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(p.payload().len(), repr.payload_len);
        prop_assert_eq!(p.is_fragment(), repr.is_fragment());
        prop_assert_eq!(Ipv4Repr::parse(&p, false).unwrap(), repr);
        if fill {
            prop_assert_eq!(Ipv4Repr::parse(&p, true).unwrap(), repr);
        }
    }

    #[test]
    fn icmpv4_round_trip(spec in icmp_spec()) {
        let repr = spec.repr();
        let buf = emit_icmp(&repr);
        let p = Icmpv4Packet::new_checked(&buf[..]).unwrap();
        prop_assert!(p.verify_checksum());
        prop_assert_eq!(Icmpv4Repr::parse(&p, true).unwrap(), repr);
    }

    #[test]
    fn udp_round_trip(
        repr in udp_repr(),
        data in payload(1500),
        src in ip(),
        dst in ip(),
    ) {
        let buf = emit_udp(&repr, &data, (src, dst));
        let p = UdpPacket::new_checked(&buf[..]).unwrap();
        prop_assert!(p.checksum() != 0);
        prop_assert_eq!(UdpRepr::parse(&p, Some((src, dst))).unwrap(), repr);
        prop_assert_eq!(p.payload(), &data[..]);
    }

    #[test]
    fn tcp_round_trip(
        repr in tcp_repr(),
        data in payload(300),
        src in ip(),
        dst in ip(),
    ) {
        prop_assert!(repr.header_len() <= 60);
        let buf = emit_tcp(&repr, &data, (src, dst));
        let p = TcpPacket::new_checked(&buf[..]).unwrap();
        let fitted = TcpRepr { options: repr.options.fitted(), ..repr };
        prop_assert_eq!(TcpRepr::parse(&p, Some((src, dst))).unwrap(), fitted);
        prop_assert_eq!(p.payload(), &data[..]);
    }

    /// A whole frame, every layer emitted, decodes layer by layer to the
    /// same reprs.
    #[test]
    fn frame_round_trip(
        eth in ethernet_repr(),
        ip in ipv4_repr_with(0..1usize),
        tcp in tcp_repr(),
        data in payload(100),
    ) {
        let addrs = (ip.src_addr, ip.dst_addr);
        let seg = emit_tcp(&tcp, &data, addrs);
        let ip = Ipv4Repr { protocol: IpProtocol::Tcp, payload_len: seg.len(), ..ip };
        let eth = EthernetRepr { ethertype: EtherType::Ipv4, ..eth };
        let frame = emit_ethernet(&eth, &emit_ipv4(&ip, &seg));

        let f = EthernetFrame::new_checked(&frame[..]).unwrap();
        prop_assert_eq!(EthernetRepr::parse(&f).unwrap(), eth);
        let p = Ipv4Packet::new_checked(f.payload()).unwrap();
        prop_assert_eq!(Ipv4Repr::parse(&p, true).unwrap(), ip);
        let s = TcpPacket::new_checked(p.payload()).unwrap();
        let fitted = TcpRepr { options: tcp.options.fitted(), ..tcp };
        prop_assert_eq!(TcpRepr::parse(&s, Some(addrs)).unwrap(), fitted);
        prop_assert_eq!(s.payload(), &data[..]);
    }
}
