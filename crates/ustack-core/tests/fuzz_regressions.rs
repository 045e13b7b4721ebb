//! Regression tests for what the cargo-fuzz targets (`fuzz/`) found: each
//! replays, through the public API, the minimised input of one crash.
//!
//! The fuzz harness's peer is rebuilt here in small: an IP-medium stack at
//! 10.0.0.1, a peer at 10.0.0.2 whose segments are built with the `wire`
//! emitters (correct checksums), and virtual time that jumps from timer to
//! timer. A new crash gets its test here first (failing), then its fix.

use std::net::{Ipv4Addr, SocketAddrV4};
use ustack_core::socket::SockOpt;
use ustack_core::tcp::Algorithm;
use ustack_core::tcp::State;
use ustack_core::time::Duration;
use ustack_core::wire::{IpProtocol, Ipv4Cidr, Ipv4Packet, Ipv4Repr, TcpFlags, TcpOptions, TcpPacket, TcpRepr};
use ustack_core::{Error, Instant, Shutdown, SocketHandle, Stack, StackConfig};

const STACK_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const STACK_PORT: u16 = 80;
const PEER_PORT: u16 = 40_000;

/// A stack on an IP medium and the peer's view of it.
struct Rig {
    stack: Stack,
    now: Instant,
    /// TCP segments the stack sent, in order.
    sent: Vec<(TcpRepr, usize)>,
    buf: Vec<u8>,
}

/// A SYN's options as Linux sends them: MSS, window scale, SACK, TSval 100.
fn full_syn_options() -> TcpOptions {
    TcpOptions {
        mss: Some(1460),
        window_scale: Some(7),
        sack_permitted: true,
        timestamps: Some((100, 0)),
        ..Default::default()
    }
}

impl Rig {
    fn new(mtu: usize) -> Self {
        Self::with(mtu, |_| {})
    }

    fn with(mtu: usize, f: impl FnOnce(&mut StackConfig)) -> Self {
        let mut cfg = StackConfig::ip(Ipv4Cidr::new(STACK_IP, 24)).with_seed(7).with_mtu(mtu);
        f(&mut cfg);
        let mut stack = Stack::new(cfg);
        let now = Instant::from_secs(1);
        stack.handle_timeout(now);
        Rig { stack, now, sent: Vec::new(), buf: vec![0u8; 70_000] }
    }

    fn listen(&mut self) -> SocketHandle {
        let l = self.stack.tcp_socket().unwrap();
        self.stack.bind(l, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, STACK_PORT)).unwrap();
        self.stack.listen(l, 8).unwrap();
        l
    }

    /// A segment from the peer's port to the stack's.
    fn seg(&self, flags: TcpFlags, seq: u32, ack: u32, window: u16) -> TcpRepr {
        TcpRepr {
            src_port: PEER_PORT,
            dst_port: STACK_PORT,
            seq,
            ack,
            flags,
            window,
            urgent: 0,
            options: TcpOptions::default(),
        }
    }

    /// The peer sends `seg` with `len` bytes of payload.
    fn input(&mut self, seg: TcpRepr, len: usize) {
        let hl = seg.header_len();
        let mut tcp = vec![0u8; hl + len];
        for (i, b) in tcp[hl..].iter_mut().enumerate() {
            *b = i as u8;
        }
        seg.emit(&mut TcpPacket::new_unchecked(&mut tcp[..]), Some((PEER_IP, STACK_IP)));
        let ip = Ipv4Repr {
            src_addr: PEER_IP,
            dst_addr: STACK_IP,
            protocol: IpProtocol::Tcp,
            payload_len: tcp.len(),
            hop_limit: 64,
            ident: 1,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
            dscp_ecn: 0,
        };
        let mut packet = vec![0u8; ip.total_len()];
        ip.emit(&mut Ipv4Packet::new_unchecked(&mut packet[..]), true);
        packet[20..].copy_from_slice(&tcp);
        self.stack.handle_ip_packet(self.now, &packet);
        self.drain();
    }

    /// Everything the stack sends now, and the timers due now.
    fn drain(&mut self) {
        for _ in 0..10_000 {
            while let Some(n) = self.stack.poll_transmit(self.now, &mut self.buf) {
                let p = Ipv4Packet::new_checked(&self.buf[..n]).unwrap();
                if p.protocol() == IpProtocol::Tcp {
                    let t = TcpPacket::new_checked(p.payload()).unwrap();
                    let repr = TcpRepr::parse(&t, Some((STACK_IP, PEER_IP))).unwrap();
                    self.sent.push((repr, t.payload().len()));
                }
            }
            match self.stack.poll_timeout() {
                Some(t) if t <= self.now => self.stack.handle_timeout(self.now),
                _ => return,
            }
        }
        panic!("the stack does not settle at {:?}", self.now);
    }

    /// Lets `d` pass in silence, timer by timer.
    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(t) = self.stack.poll_timeout() {
            if t > end {
                break;
            }
            self.now = self.now.max(t);
            self.stack.handle_timeout(self.now);
            self.drain();
        }
        self.now = end;
    }

    /// The last segment the stack sent with all of `flags`.
    fn last_sent(&self, flags: TcpFlags) -> TcpRepr {
        self.sent.iter().rev().find(|(s, _)| s.flags.contains(flags)).unwrap_or_else(|| panic!("no {flags} sent")).0
    }

    /// A listener, and a connection to it from a peer whose SYN carries
    /// `options`: returns the listener, the accepted socket, the stack's
    /// ISS and the peer's next sequence number.
    fn accept(&mut self, isn: u32, options: TcpOptions, window: u16) -> (SocketHandle, SocketHandle, u32, u32) {
        let l = self.listen();
        let mut syn = self.seg(TcpFlags::SYN, isn, 0, window);
        syn.options = options;
        self.input(syn, 0);
        let iss = self.last_sent(TcpFlags::SYN | TcpFlags::ACK).seq;
        let mut ack = self.seg(TcpFlags::ACK, isn.wrapping_add(1), iss.wrapping_add(1), window);
        ack.options.timestamps = options.timestamps.map(|(v, _)| (v + 1, 0));
        self.input(ack, 0);
        let (h, _) = self.stack.accept(l).expect("the handshake completed");
        (l, h, iss, isn.wrapping_add(1))
    }
}

/// tcp_conversation, minimised: the stack connects, the peer's SYN-ACK
/// offers a zero window, the application closes at once, the peer falls
/// silent. The FIN waits for the window; the persist timer probes every
/// 120 s (max RTO) forever: the orphan never goes and its socket leaks.
/// Linux aborts after `tcp_retries2` (or `tcp_orphan_retries`) unanswered
/// probes; RFC 1122 §4.2.2.17 keeps a zero window open only "as long as
/// the receiving TCP continues to send acknowledgments in response to the
/// probe segments".
#[test]
fn orphan_persists_forever_against_a_silent_zero_window() {
    let mut rig = Rig::new(1500);
    let s = rig.stack.tcp_socket().unwrap();
    rig.stack.connect(s, SocketAddrV4::new(PEER_IP, 443)).unwrap();
    rig.drain();
    let local = rig.stack.local_addr(s).unwrap().port();
    let iss = rig.last_sent(TcpFlags::SYN).seq;
    let mut syn_ack = rig.seg(TcpFlags::SYN | TcpFlags::ACK, 0xffff_ff00, iss.wrapping_add(1), 0);
    (syn_ack.src_port, syn_ack.dst_port) = (443, local);
    rig.input(syn_ack, 0);
    assert_eq!(rig.stack.tcp_state(s), Ok(State::Established));
    rig.stack.close(s).unwrap();
    rig.drain();
    rig.run_for(Duration::from_secs(4 * 3600));
    let probes = rig.sent.iter().filter(|(t, _)| t.seq == iss).count();
    assert_eq!(rig.stack.socket_count(), 0, "after {probes} unanswered zero-window probes the orphan is still there");
    assert_eq!(rig.stack.poll_timeout(), None);
}

/// tcp_conversation, minimised (with the harness's smallest MTU then 68,
/// RFC 791's minimum): a SYN to a listener creates a connection in
/// SYN-RECEIVED, but `Stack::poll_transmit` (stack/ip.rs, `transmit_tcp`)
/// declines to build any TCP segment when the MTU is below 20 + 60 bytes,
/// so the SYN-ACK is never sent, no retransmission timer is ever armed,
/// and the half-open connection stays forever, holding a SYN-queue slot
/// (a SYN flood at this MTU fills the queue for good). A connecting
/// socket likewise sits in SYN-SENT with no timer: connect never fails.
#[test]
fn mtu_68_half_open_connections_never_expire() {
    let mut rig = Rig::new(68);
    rig.listen();
    rig.input(rig.seg(TcpFlags::SYN, 0x7575_7575, 0, 0), 0);
    let c = rig.stack.tcp_socket().unwrap();
    rig.stack.connect(c, SocketAddrV4::new(PEER_IP, 443)).unwrap();
    rig.drain();
    rig.run_for(Duration::from_secs(4 * 3600));
    let left: Vec<String> = rig.stack.tcp_connections().map(|(h, c)| format!("{h:?} {}", c.state())).collect();
    assert_eq!(rig.stack.tcp_state(c), Ok(State::Closed), "connect never gives up: {left:?}");
    assert_eq!(rig.stack.socket_count(), 2, "the listener and the failed connect only: {left:?}");
}

/// tcp_conversation, minimised: on a connection without SACK, an ACK below
/// SND.UNA but within the RFC 5961 §5.2 range (SND.UNA - MAX.SND.WND) is
/// processed as an old duplicate; `on_ack_loss_recovery` (tcp/input.rs)
/// then passes `ack - prior_una` to `newreno_detect_loss` unconditionally,
/// and `SeqNumber - SeqNumber` panics in debug builds ("sequence
/// subtraction underflow", tcp/seq.rs); release builds clamp it to 0.
/// RFC 9293 §3.10.7.4: "If the ACK is a duplicate (SEG.ACK =< SND.UNA), it
/// can be ignored."
#[test]
fn old_ack_without_sack_underflows_in_newreno_loss_detection() {
    let mut rig = Rig::new(1500);
    let (_l, h, iss, next) = rig.accept(0x4000_0000, TcpOptions::default(), 55_296);
    let una = iss.wrapping_add(1);
    // 18432 bytes below SND.UNA, within the 55296-byte window the peer offered.
    rig.input(rig.seg(TcpFlags::ACK, next, una.wrapping_sub(18_432), 55_296), 0);
    assert_eq!(rig.stack.tcp_state(h), Ok(State::Established));
}

/// tcp_conversation, minimised: the application holds an accepted socket
/// that reaches TIME-WAIT (it shut down writing, the peer answered with
/// its FIN). A new SYN for the same 4-tuple that may reuse it (RFC 6191,
/// newer timestamp) makes `tcp_input` (stack/tcp.rs) abort the old
/// connection and `drop_connection` free its slot, although the
/// application never closed the handle: its next call fails with EBADF
/// ("bad socket handle") instead of seeing a closed connection, and the
/// slot may be given to another socket.
#[test]
fn time_wait_recycle_frees_a_socket_the_application_holds() {
    let mut rig = Rig::new(1500);
    let ts = full_syn_options();
    let isn = 0x8000_0000u32;
    let (_l, h, iss, next) = rig.accept(isn, ts, 64_240);
    rig.stack.shutdown(h, Shutdown::Write).unwrap();
    rig.drain();
    assert_eq!(rig.stack.tcp_state(h), Ok(State::FinWait1));
    // The peer acknowledges the FIN and sends its own.
    let mut fin = rig.seg(TcpFlags::ACK | TcpFlags::FIN, next, iss.wrapping_add(2), 502);
    fin.options.timestamps = Some((110, 0));
    rig.input(fin, 0);
    assert_eq!(rig.stack.tcp_state(h), Ok(State::TimeWait));
    rig.run_for(Duration::from_millis(23));
    // The same client connects again, with a newer timestamp.
    let mut syn = rig.seg(TcpFlags::SYN, isn, 0, 0);
    syn.options = TcpOptions { mss: Some(4529), timestamps: Some((200, 0)), ..Default::default() };
    rig.input(syn, 0);
    assert_ne!(rig.stack.recv(h, &mut [0u8; 16]), Err(Error::BadHandle), "the handle went stale");
    assert_eq!(rig.stack.close(h), Ok(()), "close of a handle the application holds");
}

/// tcp_conversation, minimised: the stack connects (SACK, no timestamps,
/// no pacing) and sends 10046 bytes; the peer acknowledges 387 of them with
/// a SACK block reaching past SND.NXT, which puts the connection in fast
/// recovery; the application then switches the congestion control to
/// NewReno (TCP_CONGESTION); the peer acknowledges everything. The switch
/// (stack/options.rs, `set_option`: `Congestion::new(a, cwnd)`) starts the
/// new algorithm with ssthresh = usize::MAX while the connection is still
/// in recovery, and the end of recovery deflates cwnd to that ssthresh
/// (tcp/congestion/newreno.rs, `on_recovery_end`, RFC 6582 §3.2 step 3):
/// cwnd becomes usize::MAX, and `autotune_send` (tcp/connection.rs)
/// overflows on `2 * cwnd` in debug builds; in release builds the window no
/// longer limits sending at all.
#[test]
fn congestion_switch_in_recovery_leaves_cwnd_unbounded() {
    let mut rig = Rig::with(1500, |c| {
        c.tcp.timestamps = false;
        c.tcp.delayed_ack = None;
        c.tcp.pacing = false;
    });
    let s = rig.stack.tcp_socket().unwrap();
    rig.stack.connect(s, SocketAddrV4::new(PEER_IP, 443)).unwrap();
    rig.drain();
    let local = rig.stack.local_addr(s).unwrap().port();
    let iss = rig.last_sent(TcpFlags::SYN).seq;
    let peer_isn = 0xff00_0000u32;
    let to_stack = |mut seg: TcpRepr| {
        (seg.src_port, seg.dst_port) = (443, local);
        seg
    };
    let mut syn_ack = to_stack(rig.seg(TcpFlags::SYN | TcpFlags::ACK, peer_isn, iss.wrapping_add(1), 21_846));
    syn_ack.options = TcpOptions {
        mss: Some(65535),
        window_scale: Some(255),
        sack_permitted: true,
        timestamps: Some((0, 0)),
        ..Default::default()
    };
    rig.input(syn_ack, 0);
    assert_eq!(rig.stack.tcp_state(s), Ok(State::Established));
    let data: Vec<u8> = (0..10_046u32).map(|i| i as u8).collect();
    assert_eq!(rig.stack.send(s, &data), Ok(10_046));
    rig.drain();
    let una = iss.wrapping_add(1);
    let ack = una.wrapping_add(387);
    let mut seg = to_stack(rig.seg(
        TcpFlags::FIN | TcpFlags::ACK | TcpFlags::URG | TcpFlags::CWR,
        peer_isn.wrapping_add(1),
        ack,
        2048,
    ));
    seg.urgent = 10_082;
    seg.options.sack_blocks.push(ack.wrapping_add(2305), ack.wrapping_add(2305 + 61_440));
    rig.input(seg, 3000);
    rig.stack.set_option(s, SockOpt::Congestion(Algorithm::NewReno)).unwrap();
    let end = rig
        .sent
        .iter()
        .filter(|(t, _)| !t.flags.syn())
        .map(|(t, n)| t.seq.wrapping_add(*n as u32))
        .max_by_key(|e| e.wrapping_sub(una))
        .unwrap();
    rig.input(to_stack(rig.seg(TcpFlags::ACK, peer_isn.wrapping_add(3002), end, 0)), 0);
    let cwnd = rig.stack.tcp_info(s).unwrap().cwnd;
    assert!(cwnd < 1 << 30, "cwnd {cwnd} after recovery ended");
}

/// tcp_conversation, minimised (with the harness's smallest MTU then 80):
/// at an MTU of 80 the stack has 60 bytes for a TCP segment. With
/// timestamps and three SACK blocks to report (the peer's data arrived
/// with three holes) the header alone is 60 bytes, yet `max_payload`
/// (tcp/output.rs) answers at least 1 (`.max(1)`), so `write_segment`
/// slices `out[60..61]` of a 60-byte buffer: "range end index 61 out of
/// range for slice of length 60", a panic in release builds too.
/// `transmit_tcp` (stack/ip.rs) lets MTU 80 through (it asks for room for
/// a 60-byte header, not for a byte of data).
#[test]
fn full_header_leaves_no_room_for_data_at_mtu_80() {
    let mut rig = Rig::new(80);
    let s = rig.stack.tcp_socket().unwrap();
    rig.stack.connect(s, SocketAddrV4::new(PEER_IP, 443)).unwrap();
    rig.drain();
    let local = rig.stack.local_addr(s).unwrap().port();
    let iss = rig.last_sent(TcpFlags::SYN).seq;
    let peer_isn = 991_190_195u32;
    let to_stack = |mut seg: TcpRepr| {
        (seg.src_port, seg.dst_port) = (443, local);
        seg.options.timestamps = Some((5000, 0));
        seg
    };
    let mut syn_ack = to_stack(rig.seg(TcpFlags::SYN | TcpFlags::ACK, peer_isn, iss.wrapping_add(1), 65_535));
    syn_ack.options.mss = Some(40_212);
    syn_ack.options.window_scale = Some(14);
    syn_ack.options.sack_permitted = true;
    rig.input(syn_ack, 0);
    assert_eq!(rig.stack.tcp_state(s), Ok(State::Established));
    assert_eq!(rig.stack.send(s, &[7u8; 5000]), Ok(5000));
    rig.drain();
    // Three pieces of the peer's stream, each after a hole.
    let next = peer_isn.wrapping_add(1);
    for at in [1000u32, 2000, 3000] {
        rig.input(to_stack(rig.seg(TcpFlags::ACK, next.wrapping_add(at), iss.wrapping_add(1), 65_535)), 100);
    }
    rig.run_for(Duration::from_secs(10));
    assert_eq!(rig.stack.tcp_state(s), Ok(State::Established));
}

/// tcp_conversation (CI's run of `0910d2d`; the input was lost with its
/// machine, rebuilt from its report): the orphan of a paced connection
/// with timestamps sat in FIN-WAIT-1 with 7,936 bytes unsent, 4 h after
/// the application closed it. The peer had acknowledged data echoing a
/// TSecr days old: `rtt_sample_ts` (tcp/input.rs) took the echo's age as
/// an RTT sample, so SRTT became days, and pacing (a gap of SRTT / cwnd
/// per segment) put the next segment days away. An echo older than the
/// first transmission of the data it acknowledges is not that data's
/// round trip (RFC 7323 §4.1: the echo is of "the segment that is
/// acknowledged"); Linux and FreeBSD bound or reject such samples too.
#[test]
fn a_days_old_timestamp_echo_is_not_an_rtt_sample() {
    let mut rig = Rig::with(1500, |c| c.tcp.pacing = true);
    let ts = full_syn_options();
    let (_l, h, iss, next) = rig.accept(0x1000, ts, 64_240);
    let una = iss.wrapping_add(1);
    assert_eq!(rig.stack.send(h, &[7u8; 1000]), Ok(1000));
    rig.drain();
    let tsval = rig.last_sent(TcpFlags::ACK).options.timestamps.expect("timestamps in use").0;
    rig.run_for(Duration::from_millis(30));
    // The ACK echoes a TSval 2^30 ms (12 days) older than the data's.
    let mut ack = rig.seg(TcpFlags::ACK, next, una.wrapping_add(1000), 502);
    ack.options.timestamps = Some((200, tsval.wrapping_sub(1 << 30)));
    rig.input(ack, 0);
    let rtt = rig.stack.tcp_info(h).unwrap().rtt;
    assert!(rtt.is_none_or(|r| r < Duration::from_secs(1)), "SRTT {rtt:?} from a 12-day-old echo");
    // And the connection sends at its pace: 20 segments within a second.
    let before = rig.sent.len();
    assert_eq!(rig.stack.send(h, &vec![8u8; 20 * 1448]), Ok(20 * 1448));
    rig.drain();
    rig.run_for(Duration::from_secs(1));
    let bytes: usize = rig.sent[before..].iter().map(|(_, n)| n).sum();
    assert!(bytes >= 10 * 1448, "{bytes} bytes sent in a second (the window allows 10 segments)");
}

/// The same on the ACK that completes the handshake (the seed
/// `fuzz/corpus/tcp_conversation/stale_ts_echo`): its echo can be of no
/// SYN-ACK sent before the first.
#[test]
fn a_stale_echo_on_the_handshake_ack_is_not_an_rtt_sample() {
    let mut rig = Rig::with(1500, |c| c.tcp.pacing = true);
    let l = rig.listen();
    let isn = 0x1000_0000u32;
    let mut syn = rig.seg(TcpFlags::SYN, isn, 0, 64_240);
    syn.options = TcpOptions { mss: Some(1460), timestamps: Some((100, 0)), ..Default::default() };
    rig.input(syn, 0);
    let syn_ack = rig.last_sent(TcpFlags::SYN | TcpFlags::ACK);
    let tsval = syn_ack.options.timestamps.expect("timestamps in use").0;
    let mut ack = rig.seg(TcpFlags::ACK, isn.wrapping_add(1), syn_ack.seq.wrapping_add(1), 64_240);
    ack.options.timestamps = Some((101, tsval.wrapping_sub(1 << 30)));
    rig.input(ack, 0);
    let (h, _) = rig.stack.accept(l).expect("the handshake completed");
    let rtt = rig.stack.tcp_info(h).unwrap().rtt;
    assert!(rtt.is_none_or(|r| r < Duration::from_secs(1)), "SRTT {rtt:?} from a 12-day-old echo");
}
