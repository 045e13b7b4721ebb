//! TCP over UDP (`StackConfig::tcp_over_udp_port`, FreeBSD's
//! `net.inet.tcp.udp_tunneling_port`): a connection whose segments travel
//! in UDP datagrams crosses a firewall that passes only UDP and a NAT that
//! rewrites the UDP source port on the way; the server answers the port
//! the SYN came from. Plain TCP across the same middlebox gets nowhere.

use std::cell::{Cell, RefCell};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::rc::Rc;
use ustack_core::sim::scenario::{host_config, host_ip};
use ustack_core::sim::{Host, LinkConfig, Middlebox, Network, NodeId, Verdict};
use ustack_core::socket::{SockOpt, SockOptName};
use ustack_core::tcp::State;
use ustack_core::time::Duration;
use ustack_core::wire::{
    DstUnreachable, EtherType, EthernetFrame, Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Packet, Ipv4Repr, UdpPacket,
};
use ustack_core::{Error, SocketHandle, Stack};

const TUNNEL: u16 = 9811;
/// The UDP port the NAT gives the client's tunnel on the outside.
const NAT_PORT: u16 = 40001;
const SERVER_PORT: u16 = 8080;

struct Path {
    net: Network,
    client: NodeId,
    server: NodeId,
    /// Frames carrying IP protocol 6 that the firewall dropped.
    tcp_dropped: Rc<Cell<u64>>,
    /// The largest frame that crossed.
    largest: Rc<Cell<usize>>,
    /// The IP MTU of the path beyond the client's link: larger packets
    /// from the client are dropped, and kept here for an ICMP error.
    mtu: Rc<Cell<usize>>,
    too_big: Rc<RefCell<Vec<Vec<u8>>>>,
    middlebox: NodeId,
}

/// client (10.0.0.1) -- firewall and NAT -- server (10.0.0.2), both stacks
/// with the TCP-over-UDP port.
fn path() -> Path {
    let mut net = Network::new(11);
    let [cs, ss] = [1, 2].map(|i| {
        let mut cfg = host_config(i, 11);
        cfg.tcp_over_udp_port = Some(TUNNEL);
        Stack::new(cfg)
    });
    let client = net.add(Host::new(cs));
    let server = net.add(Host::new(ss));
    let tcp_dropped = Rc::new(Cell::new(0));
    let largest = Rc::new(Cell::new(0));
    let mtu = Rc::new(Cell::new(usize::MAX));
    let too_big = Rc::new(RefCell::new(Vec::new()));
    let (dropped, big) = (Rc::clone(&tcp_dropped), Rc::clone(&largest));
    let (limit, kept) = (Rc::clone(&mtu), Rc::clone(&too_big));
    let mb = net.add(Middlebox::with_filter(move |_, port, frame: &mut Vec<u8>| {
        if EthernetFrame::new_unchecked(&frame[..]).ethertype() != EtherType::Ipv4 {
            return Verdict::Pass;
        }
        if port == 0 && frame.len() - 14 > limit.get() {
            kept.borrow_mut().push(frame.clone());
            return Verdict::Drop;
        }
        big.set(big.get().max(frame.len()));
        let mut ip = Ipv4Packet::new_unchecked(&mut frame[14..]);
        match ip.protocol() {
            IpProtocol::Tcp => {
                dropped.set(dropped.get() + 1);
                Verdict::Drop
            }
            IpProtocol::Udp => {
                // The NAT: the client's port 9811 is 40001 outside. It
                // clears the UDP checksum rather than fixing it (the TCP
                // checksum inside is then what protects the segment).
                let mut udp = UdpPacket::new_unchecked(ip.payload_mut());
                if port == 0 && udp.src_port() == TUNNEL {
                    udp.set_src_port(NAT_PORT);
                    udp.set_checksum(0);
                } else if port == 1 && udp.dst_port() == NAT_PORT {
                    udp.set_dst_port(TUNNEL);
                    udp.set_checksum(0);
                }
                Verdict::Pass
            }
            _ => Verdict::Pass,
        }
    }));
    let link = LinkConfig::default().delay(Duration::from_millis(5));
    net.connect((client, 0), (mb, 0), link.clone());
    net.connect((mb, 1), (server, 0), link);
    Path { net, client, server, tcp_dropped, largest, mtu, too_big, middlebox: mb }
}

/// What a router sends back about `frame` (too big for its next link of
/// `mtu` bytes): an ICMP fragmentation needed (RFC 1191) quoting the IP
/// header and `quote` bytes after it.
fn frag_needed(frame: &[u8], mtu: u16, quote: usize) -> Vec<u8> {
    let ip = Ipv4Packet::new_checked(&frame[14..]).unwrap();
    let header = Ipv4Repr::parse(&ip, true).unwrap();
    let icmp = Icmpv4Repr::DstUnreachable {
        reason: DstUnreachable::FragRequired { next_hop_mtu: mtu },
        header,
        data: &ip.payload()[..quote],
    };
    let outer = Ipv4Repr {
        src_addr: Ipv4Addr::new(10, 0, 0, 254),
        dst_addr: header.src_addr,
        protocol: IpProtocol::Icmp,
        payload_len: icmp.buffer_len(),
        hop_limit: 64,
        ident: 7,
        dont_frag: false,
        more_frags: false,
        frag_offset: 0,
        dscp_ecn: 0,
    };
    let mut out = vec![0u8; 34 + icmp.buffer_len()];
    out[..6].copy_from_slice(&frame[6..12]);
    out[6..12].copy_from_slice(&frame[..6]);
    out[12..14].copy_from_slice(&[0x08, 0x00]);
    outer.emit(&mut Ipv4Packet::new_unchecked(&mut out[14..]), true);
    icmp.emit(&mut Icmpv4Packet::new_unchecked(&mut out[34..]));
    out
}

impl Path {
    /// The server's listener on 10.0.0.2:8080.
    fn listen(&mut self) -> SocketHandle {
        let s = self.server;
        let l = self.stack(s).tcp_socket().unwrap();
        self.stack(s).bind(l, SocketAddrV4::new(host_ip(2), SERVER_PORT)).unwrap();
        self.stack(s).listen(l, 4).unwrap();
        l
    }

    fn stack(&mut self, n: NodeId) -> &mut Stack {
        &mut self.net.node_as_mut::<Host>(n).unwrap().stack
    }
    fn run(&mut self) {
        self.net.run_for(Duration::from_millis(200));
    }

    /// A connection from the client to the server's listener `l`, carried
    /// over UDP: the client's handle and the one the server accepted.
    fn connect_over_udp(&mut self, l: SocketHandle) -> (SocketHandle, SocketHandle) {
        let (c, s) = (self.client, self.server);
        let h = self.stack(c).tcp_socket().unwrap();
        self.stack(c).set_option(h, SockOpt::UdpEncapsPort(Some(TUNNEL))).unwrap();
        self.stack(c).connect(h, SocketAddrV4::new(host_ip(2), SERVER_PORT)).unwrap();
        self.run();
        assert_eq!(self.stack(c).tcp_state(h), Ok(State::Established));
        let (a, _) = self.stack(s).accept(l).expect("the SYN came through in UDP");
        (h, a)
    }

    /// Appends what `b` can read on `hb` now to `got`.
    fn read_into(&mut self, b: NodeId, hb: SocketHandle, got: &mut Vec<u8>) {
        let mut buf = [0u8; 16384];
        loop {
            match self.stack(b).recv(hb, &mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(Error::WouldBlock) => break,
                Err(e) => panic!("recv: {e}"),
            }
        }
    }
}

fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt)).collect()
}

/// Sends `data` from `a` on `ha` to `b` on `hb`, stepping the network, and
/// returns what `b` read.
fn transfer(p: &mut Path, a: NodeId, ha: SocketHandle, b: NodeId, hb: SocketHandle, data: &[u8]) -> Vec<u8> {
    let (mut sent, mut got) = (0, Vec::new());
    for _ in 0..2000 {
        if sent < data.len() {
            match p.stack(a).send(ha, &data[sent..]) {
                Ok(n) => sent += n,
                Err(Error::WouldBlock) => {}
                Err(e) => panic!("send: {e}"),
            }
        }
        p.net.run_for(Duration::from_millis(10));
        p.read_into(b, hb, &mut got);
        if got.len() >= data.len() {
            break;
        }
    }
    got
}

#[test]
fn tcp_carried_in_udp_crosses_a_udp_only_firewall_and_a_nat() {
    let mut p = path();
    let (c, s) = (p.client, p.server);
    let l = p.listen();
    let (h, a) = p.connect_over_udp(l);
    // The server answers the port the NAT gave the client.
    assert_eq!(p.stack(s).get_option(a, SockOptName::UdpEncapsPort), Ok(SockOpt::UdpEncapsPort(Some(NAT_PORT))));
    assert_eq!(p.stack(c).get_option(h, SockOptName::UdpEncapsPort), Ok(SockOpt::UdpEncapsPort(Some(TUNNEL))));

    let up = pattern(300_000, 1);
    assert_eq!(transfer(&mut p, c, h, s, a, &up), up, "client to server");
    let down = pattern(200_000, 7);
    assert_eq!(transfer(&mut p, s, a, c, h, &down), down, "server to client");
    assert_eq!(p.tcp_dropped.get(), 0, "no plain TCP segment was sent");
    // Full-sized segments fit the 1500-byte MTU with the UDP header:
    // 14 + 20 + 8 + 20 + 12 (timestamps) + 1440 at most.
    assert!(p.largest.get() <= 1514, "largest frame {}", p.largest.get());
    assert!(p.largest.get() >= 1500, "segments are full-sized: {}", p.largest.get());

    // The teardown goes the same way.
    p.stack(c).close(h).unwrap();
    p.stack(s).close(a).unwrap();
    p.run();
    assert_eq!(p.stack(c).tcp_state(h), Ok(State::TimeWait));
    assert_eq!(p.tcp_dropped.get(), 0);
}

#[test]
fn plain_tcp_across_the_same_firewall_gets_nowhere() {
    let mut p = path();
    let (c, s) = (p.client, p.server);
    let l = p.listen();
    let h = p.stack(c).tcp_socket().unwrap();
    p.stack(c).connect(h, SocketAddrV4::new(host_ip(2), SERVER_PORT)).unwrap();
    p.net.run_for(Duration::from_secs(5));
    assert_eq!(p.stack(c).tcp_state(h), Ok(State::SynSent));
    assert!(p.tcp_dropped.get() >= 3, "the SYN and its retransmissions were dropped");
    assert_eq!(p.stack(s).accept(l).err(), Some(Error::WouldBlock));
}

/// The socket option's errors are FreeBSD's: EINVAL without the stack's
/// port, EINVAL once connected or listening, ENOPROTOOPT on UDP; the
/// stack's port is not free for a UDP socket.
#[test]
fn the_encapsulation_port_is_chosen_before_connect_and_needs_the_stacks_port() {
    let mut plain = Stack::new(host_config(1, 3));
    let h = plain.tcp_socket().unwrap();
    assert_eq!(plain.set_option(h, SockOpt::UdpEncapsPort(Some(TUNNEL))), Err(Error::InvalidInput));
    assert_eq!(plain.set_option(h, SockOpt::UdpEncapsPort(None)), Ok(()));

    let mut p = path();
    let (c, s) = (p.client, p.server);
    let l = p.listen();
    assert_eq!(p.stack(s).set_option(l, SockOpt::UdpEncapsPort(Some(1))), Err(Error::InvalidInput));
    let h = p.stack(c).tcp_socket().unwrap();
    p.stack(c).set_option(h, SockOpt::UdpEncapsPort(Some(TUNNEL))).unwrap();
    p.stack(c).connect(h, SocketAddrV4::new(host_ip(2), SERVER_PORT)).unwrap();
    assert_eq!(p.stack(c).set_option(h, SockOpt::UdpEncapsPort(None)), Err(Error::InvalidInput));
    let u = p.stack(c).udp_socket().unwrap();
    assert_eq!(p.stack(c).set_option(u, SockOpt::UdpEncapsPort(Some(TUNNEL))), Err(Error::NoProtocolOption));
    assert_eq!(p.stack(c).bind(u, SocketAddrV4::new(host_ip(1), TUNNEL)), Err(Error::AddrInUse));
}

/// A router beyond the client's link takes 1280 bytes: it drops the
/// client's full-sized datagrams and says so with "fragmentation needed",
/// quoting as much as Linux's routers do. The stack finds the TCP header
/// after the UDP one in the quote, and the connection's segments shrink to
/// fit 1280 with the UDP header (RFC 1191). A quote of RFC 792's bare 8
/// bytes names no connection and changes nothing.
#[test]
fn fragmentation_needed_about_a_segment_in_udp_reaches_its_connection() {
    let mut p = path();
    let (c, s) = (p.client, p.server);
    let l = p.listen();
    let (h, a) = p.connect_over_udp(l);
    p.mtu.set(1280);
    p.stack(c).send(h, &pattern(20_000, 3)).unwrap();
    p.run();
    let first = p.too_big.borrow()[0].clone();
    // RFC 792's 8 bytes: only the UDP header, nothing learned.
    let mb = p.middlebox;
    p.net.node_as_mut::<Middlebox>(mb).unwrap().inject(0, frag_needed(&first, 1280, 8));
    p.run();
    assert_eq!(p.stack(c).get_option(h, SockOptName::Mtu), Ok(SockOpt::Mtu(1500)));
    // With the TCP header quoted too.
    p.net.node_as_mut::<Middlebox>(mb).unwrap().inject(0, frag_needed(&first, 1280, 28));
    let mut got = Vec::new();
    for _ in 0..200 {
        p.net.run_for(Duration::from_millis(50));
        p.read_into(s, a, &mut got);
    }
    assert!(got == pattern(20_000, 3), "{} of 20000 bytes arrived, or not these", got.len());
    assert_eq!(p.stack(c).get_option(h, SockOptName::Mtu), Ok(SockOpt::Mtu(1280)));
    assert!(p.largest.get() <= 14 + 1280, "largest frame {}", p.largest.get());
}
