//! The blocking API between two driver threads over an in-process device
//! pair: no root needed.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::thread;
use std::time::Duration;
use ustack::blocking::{TcpListener, TcpStream, UdpSocket};
use ustack::core::sim::scenario::host_config;
use ustack::core::socket::{SockOpt, SockOptName};
use ustack::core::stack::Medium;
use ustack::phy::pair::PairDevice;
use ustack::{DriverOptions, NetStack};

fn pair() -> (NetStack, NetStack) {
    let (a, b) = PairDevice::pair(Medium::Ethernet, 1500).unwrap();
    let na = NetStack::start(a, host_config(1, 1), DriverOptions::default()).unwrap();
    let nb = NetStack::start(b, host_config(2, 2), DriverOptions::default()).unwrap();
    (na, nb)
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn echo_with_half_close() {
    let (client, server) = pair();
    let listener = TcpListener::bind(&server, addr("10.0.0.2:7")).unwrap();
    let srv = thread::spawn(move || {
        let (mut conn, peer) = listener.accept().unwrap();
        assert_eq!(peer.ip().to_string(), "10.0.0.1");
        let mut buf = [0u8; 4096];
        let mut total = 0;
        loop {
            let n = conn.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            conn.write_all(&buf[..n]).unwrap();
            total += n;
        }
        conn.shutdown(Shutdown::Write).unwrap();
        total
    });
    let mut conn = TcpStream::connect(&client, addr("10.0.0.2:7")).unwrap();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + 3) as u8).collect();
    let writer = conn.try_clone().unwrap();
    let d2 = data.clone();
    let w = thread::spawn(move || {
        let mut writer = writer;
        writer.write_all(&d2).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut back = Vec::new();
    conn.read_to_end(&mut back).unwrap();
    w.join().unwrap();
    assert_eq!(srv.join().unwrap(), data.len());
    assert!(back == data, "echoed data differs");
}

#[test]
fn refused_and_timeouts_map_to_kernel_errors() {
    let (client, _server) = pair();
    let e = TcpStream::connect(&client, addr("10.0.0.2:9")).err().unwrap();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    assert_eq!(e.raw_os_error(), Some(111));
    let u = UdpSocket::bind(&client, addr("0.0.0.0:0")).unwrap();
    u.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let e = u.recv_from(&mut [0u8; 10]).err().unwrap();
    assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
}

#[test]
fn udp_round_trip_and_bind_conflict() {
    let (client, server) = pair();
    let s = UdpSocket::bind(&server, addr("10.0.0.2:5353")).unwrap();
    let e = UdpSocket::bind(&server, addr("10.0.0.2:5353")).err().unwrap();
    assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
    let c = UdpSocket::bind(&client, addr("0.0.0.0:0")).unwrap();
    c.send_to(b"ping", addr("10.0.0.2:5353")).unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = s.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"ping");
    s.send_to(b"pong", from).unwrap();
    let (n, _) = c.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"pong");
}

/// Thread names, one per frame.
type Threads = std::sync::Arc<std::sync::Mutex<Vec<Option<String>>>>;

/// A device that notes which thread sent, and which received, each frame
/// longer than `min` bytes, around a `PairDevice`.
struct WhoSends {
    inner: PairDevice,
    min: usize,
    senders: Threads,
    receivers: Threads,
}

impl ustack::phy::Device for WhoSends {
    fn medium(&self) -> Medium {
        self.inner.medium()
    }
    fn mtu(&self) -> usize {
        self.inner.mtu()
    }
    fn recv(&mut self, buf: &mut [u8]) -> std::io::Result<Option<(usize, ustack::phy::RxMeta)>> {
        let r = self.inner.recv(buf);
        if let Ok(Some((n, _))) = r
            && n > self.min
        {
            self.receivers.lock().unwrap().push(thread::current().name().map(String::from));
        }
        r
    }
    fn send(&mut self, frame: &[u8]) -> std::io::Result<()> {
        if frame.len() > self.min {
            self.senders.lock().unwrap().push(thread::current().name().map(String::from));
        }
        self.inner.send(frame)
    }
    fn poll_fd(&self) -> std::os::fd::RawFd {
        self.inner.poll_fd()
    }
    fn name(&self) -> &str {
        "whosends"
    }
}

/// A write is sent by the thread that makes it, as a kernel sends from
/// the system call, not handed to the driver thread (a wakeup and a
/// context switch more on every request and response). The echo comes
/// back through the other stack's driver and its application thread.
#[test]
fn a_write_is_sent_from_the_calling_thread() {
    let (a, b) = PairDevice::pair(Medium::Ethernet, 1500).unwrap();
    let senders = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    // Frames with a payload: Ethernet, IP and TCP headers (with options) are
    // under 100 bytes; the request is 500.
    let dev = WhoSends { inner: a, min: 400, senders: senders.clone(), receivers: Threads::default() };
    let client = NetStack::start(dev, host_config(1, 1), DriverOptions::default()).unwrap();
    let server = NetStack::start(b, host_config(2, 2), DriverOptions::default()).unwrap();
    let listener = TcpListener::bind(&server, addr("10.0.0.2:7")).unwrap();
    let srv = thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 500];
        conn.read_exact(&mut buf).unwrap();
        conn.write_all(&buf).unwrap();
    });
    let caller = thread::Builder::new()
        .name("the-caller".into())
        .spawn(move || {
            let mut conn = TcpStream::connect(&client, addr("10.0.0.2:7")).unwrap();
            conn.write_all(&[0x61; 500]).unwrap();
            let mut back = [0u8; 500];
            conn.read_exact(&mut back).unwrap();
            assert!(back.iter().all(|&b| b == 0x61));
        })
        .unwrap();
    caller.join().unwrap();
    srv.join().unwrap();
    assert_eq!(*senders.lock().unwrap(), vec![Some("the-caller".to_string())]);
}

/// A thread's voluntary context switches, from /proc: how often it went
/// to sleep, so how often it was woken.
fn voluntary_switches(tid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("voluntary_ctxt_switches:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A thread blocked on a socket is woken when that socket changes, not
/// when any does: a thread-per-connection server with a thousand idle
/// connections must not wake a thousand threads for each segment of a
/// busy one. The idle reader here sleeps through 500 round trips on
/// another connection (it was woken on each while all waiters shared one
/// condition variable).
#[test]
fn a_blocked_thread_sleeps_through_other_sockets_traffic() {
    let (client, server) = pair();
    let listener = TcpListener::bind(&server, addr("10.0.0.2:7")).unwrap();
    let srv = thread::spawn(move || {
        let (mut idle, _) = listener.accept().unwrap();
        let (mut busy, _) = listener.accept().unwrap();
        let mut b = [0u8; 1];
        while busy.read_exact(&mut b).is_ok() {
            busy.write_all(&b).unwrap();
        }
        idle.write_all(b"x").unwrap();
    });
    let mut idle = TcpStream::connect(&client, addr("10.0.0.2:7")).unwrap();
    let mut busy = TcpStream::connect(&client, addr("10.0.0.2:7")).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = thread::spawn(move || {
        // "/proc/thread-self" links to "<pid>/task/<tid>".
        let me = std::fs::read_link("/proc/thread-self").unwrap();
        tx.send(me.file_name().unwrap().to_str().unwrap().parse::<i32>().unwrap()).unwrap();
        let mut b = [0u8; 1];
        idle.read_exact(&mut b).unwrap();
        b[0]
    });
    let tid = rx.recv().unwrap();
    // Let it block in its read.
    thread::sleep(Duration::from_millis(100));
    let before = voluntary_switches(tid);
    let mut b = [7u8; 1];
    for _ in 0..500 {
        busy.write_all(&b).unwrap();
        busy.read_exact(&mut b).unwrap();
    }
    let woken = voluntary_switches(tid) - before;
    drop(busy);
    assert_eq!(reader.join().unwrap(), b'x', "the idle reader still gets its byte");
    srv.join().unwrap();
    // A few: the idle thread may wait on the device too, until
    // OTHERS_ROUNDS wakeups in a row brought it nothing, and may wait for
    // the stack's lock on those; not one per frame.
    assert!(woken < 50, "the idle reader was woken {woken} times by another connection's 500 round trips");
}

#[test]
fn shards_get_their_place_own_secrets_and_one_capture_each() {
    // Two shards on two devices (the other ends left idle): each knows its
    // place, picks its own ISN secrets, and writes its own capture.
    let (a0, _b0) = PairDevice::pair(Medium::Ip, 1500).unwrap();
    let (a1, _b1) = PairDevice::pair(Medium::Ip, 1500).unwrap();
    let dir = std::env::temp_dir().join(format!("ustack-shards-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = ustack::StackConfig::ip("10.0.0.1/24".parse().unwrap()).with_seed(5);
    let opts = DriverOptions { pcap: Some(dir.join("cap.pcap")) };
    let shards = NetStack::start_shards(vec![a0, a1], cfg, opts).unwrap();
    let places: Vec<_> = shards.iter().map(|n| n.with_stack(|s, _| (s.config().shard, s.config().seed))).collect();
    assert_eq!(places[0].0, ustack::core::stack::Shard::new(0, 2));
    assert_eq!(places[1].0, ustack::core::stack::Shard::new(1, 2));
    assert_ne!(places[0].1, places[1].1, "the shards share their secrets");
    for s in shards {
        s.shutdown().unwrap();
    }
    for f in ["cap-0.pcap", "cap-1.pcap"] {
        assert!(dir.join(f).exists(), "no {f}");
    }
    // One device is one stack, not a shard, and keeps the capture's name.
    let (one, _other) = PairDevice::pair(Medium::Ip, 1500).unwrap();
    let cfg = ustack::StackConfig::ip("10.0.0.1/24".parse().unwrap()).with_seed(5);
    let single = NetStack::start_shards(vec![one], cfg, DriverOptions { pcap: Some(dir.join("one.pcap")) }).unwrap();
    assert_eq!(single.len(), 1);
    assert_eq!(single[0].with_stack(|s, _| (s.config().shard, s.config().seed)), (None, 5));
    single.into_iter().for_each(|s| s.shutdown().unwrap());
    assert!(dir.join("one.pcap").exists());
    assert!(
        NetStack::start_shards(
            Vec::<PairDevice>::new(),
            ustack::StackConfig::ip("10.0.0.1/24".parse().unwrap()),
            DriverOptions::default()
        )
        .is_err()
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A thread blocked in `read` lends its buffer to the stack: data that
/// arrives in order while nothing is buffered goes straight into it (the
/// driver copies it there, not into the receive buffer), and the stream
/// stays whole and in order whatever the reader's buffer size, including
/// when reads time out while the buffer is lent (it is taken back, with
/// whatever it holds, before `read` returns).
#[test]
fn a_blocked_read_gets_data_straight_into_its_buffer_and_loses_nothing() {
    let (client, server) = pair();
    let listener = TcpListener::bind(&server, addr("10.0.0.2:7")).unwrap();
    let data: Vec<u8> = (0..4_000_000u32).map(|i| (i * 13 + i / 251) as u8).collect();
    let d2 = data.clone();
    let w = thread::spawn(move || {
        let mut conn = TcpStream::connect(&client, addr("10.0.0.2:7")).unwrap();
        // Bursts and pauses, so the reader often waits with an empty buffer.
        let mut off = 0;
        let mut k = 0usize;
        while off < d2.len() {
            let n = [1, 700, 1448, 5000, 65536, 300_000][k % 6].min(d2.len() - off);
            conn.write_all(&d2[off..off + n]).unwrap();
            off += n;
            k += 1;
            if k.is_multiple_of(7) {
                thread::sleep(Duration::from_millis(2));
            }
        }
        conn.shutdown(Shutdown::Write).unwrap();
        // The stack and the connection live on until the reader is done:
        // the FIN and any retransmission still have to go.
        (client, conn)
    });
    let (mut conn, _) = listener.accept().unwrap();
    // Short timeouts: many reads end by timing out while the buffer is lent.
    conn.set_read_timeout(Some(Duration::from_micros(300))).unwrap();
    let mut got = Vec::with_capacity(data.len());
    let mut k = 0usize;
    let mut timeouts = 0;
    loop {
        let mut buf = vec![0u8; [1, 100, 1460, 4096, 65536, 1 << 20][k % 6]];
        k += 1;
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => timeouts += 1,
            Err(e) => panic!("read: {e}"),
        }
    }
    drop(w.join().unwrap());
    assert_eq!(got.len(), data.len());
    assert!(got == data, "the stream arrived changed or out of order");
    let direct = server.stats().tcp.bytes_direct;
    assert!(direct > 0, "no byte went straight to a waiting reader");
    eprintln!("{direct} of {} bytes straight to the reader; {timeouts} reads timed out", data.len());
}

/// A thread blocked in a read waits on the device too, and when frames
/// arrive it reads them into the stack itself, as the driver would: the
/// request reaches it with one wakeup, not the driver's and then its own.
/// (The driver wakes for the same frames; whichever takes the stack first
/// reads them, so the test asks for some, not all.)
#[test]
fn a_blocked_reader_reads_the_device_itself() {
    let (a, b) = PairDevice::pair(Medium::Ethernet, 1500).unwrap();
    let receivers = Threads::default();
    // Frames with a payload of 100 bytes are over 150 bytes long.
    let dev = WhoSends { inner: b, min: 150, senders: Threads::default(), receivers: receivers.clone() };
    let client = NetStack::start(a, host_config(1, 1), DriverOptions::default()).unwrap();
    let server = NetStack::start(dev, host_config(2, 2), DriverOptions::default()).unwrap();
    let listener = TcpListener::bind(&server, addr("10.0.0.2:7")).unwrap();
    let srv = thread::Builder::new()
        .name("the-reader".into())
        .spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 100];
            while conn.read_exact(&mut buf).is_ok() {
                conn.write_all(&buf).unwrap();
            }
        })
        .unwrap();
    let mut conn = TcpStream::connect(&client, addr("10.0.0.2:7")).unwrap();
    conn.set_nodelay(true).unwrap();
    let mut buf = [7u8; 100];
    for _ in 0..200 {
        conn.write_all(&buf).unwrap();
        conn.read_exact(&mut buf).unwrap();
    }
    drop(conn);
    srv.join().unwrap();
    let got = receivers.lock().unwrap();
    let by_reader = got.iter().filter(|t| t.as_deref() == Some("the-reader")).count();
    eprintln!("{by_reader} of {} requests read from the device by the reader", got.len());
    assert!(got.len() >= 200);
    // The driver, woken by the same frames, takes some first: between a
    // tenth and nearly all of them, from run to run.
    assert!(by_reader > 0, "the reader read none of {} requests itself", got.len());
}

/// IP_TTL and IP_TOS through the blocking API, with std's signatures for
/// the TTL: 1..=255, the stack's TTL by default; set on a listener, its
/// connections inherit them.
#[test]
fn ttl_and_tos_set_and_read_back() {
    let (client, server) = pair();
    let listener = TcpListener::bind(&server, addr("10.0.0.2:7")).unwrap();
    assert_eq!(listener.ttl().unwrap(), 64);
    assert_eq!(listener.set_ttl(0).unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    assert_eq!(listener.set_ttl(256).unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    listener.set_ttl(9).unwrap();
    listener.set_tos(0xb8).unwrap();
    let conn = TcpStream::connect(&client, addr("10.0.0.2:7")).unwrap();
    let (accepted, _) = listener.accept().unwrap();
    assert_eq!((accepted.ttl().unwrap(), accepted.tos().unwrap()), (9, 0xb8));
    assert_eq!((conn.ttl().unwrap(), conn.tos().unwrap()), (64, 0));
    conn.set_tos(0x20).unwrap();
    conn.set_ttl(3).unwrap();
    assert_eq!((conn.ttl().unwrap(), conn.tos().unwrap()), (3, 0x20));
    let u = UdpSocket::bind(&client, addr("0.0.0.0:0")).unwrap();
    u.set_ttl(1).unwrap();
    u.set_tos(0x10).unwrap();
    assert_eq!((u.ttl().unwrap(), u.tos().unwrap()), (1, 0x10));
}

/// A `TcpSocket` takes its options before it connects or listens, so the
/// SYN already carries them (here IP_TOS and IP_TTL, in the client's
/// capture) and a bound source port; the listener's options pass to the
/// connections it accepts. Binding a port in use is EADDRINUSE, a refused
/// connect gives ECONNREFUSED and leaves no socket behind, and a listener
/// never bound gets an ephemeral port.
#[test]
fn tcp_socket_options_apply_from_the_syn() {
    use std::io::ErrorKind;
    use ustack::blocking::TcpSocket;
    use ustack::phy::pcap::PcapReader;
    let dir = std::env::temp_dir().join(format!("ustack-tcpsocket-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cap = dir.join("client.pcap");
    let (a, b) = PairDevice::pair(Medium::Ethernet, 1500).unwrap();
    let client = NetStack::start(a, host_config(1, 1), DriverOptions { pcap: Some(cap.clone()) }).unwrap();
    let server = NetStack::start(b, host_config(2, 2), DriverOptions::default()).unwrap();

    let l = TcpSocket::new(&server).unwrap();
    l.set_reuseaddr(true).unwrap();
    l.set_nodelay(true).unwrap();
    l.set_recv_buffer_size(100_000).unwrap();
    l.bind(addr("10.0.0.2:7")).unwrap();
    assert!(l.reuseaddr().unwrap());
    let listener = l.listen(16).unwrap();
    let taken = TcpSocket::new(&server).unwrap();
    assert_eq!(taken.bind(addr("10.0.0.2:7")).unwrap_err().kind(), ErrorKind::AddrInUse);

    let s = TcpSocket::new(&client).unwrap();
    s.set_tos(0xb8).unwrap();
    s.set_ttl(9).unwrap();
    s.set_keepalive(true).unwrap();
    s.set_linger(Some(Duration::from_secs(3))).unwrap();
    s.set_send_buffer_size(50_000).unwrap();
    s.bind(addr("10.0.0.1:40000")).unwrap();
    assert_eq!(s.local_addr().unwrap(), addr("10.0.0.1:40000"));
    assert_eq!((s.keepalive().unwrap(), s.linger().unwrap()), (true, Some(Duration::from_secs(3))));
    assert_eq!(s.send_buffer_size().unwrap(), 50_000);
    let mut conn = s.connect(addr("10.0.0.2:7")).unwrap();
    assert_eq!(conn.local_addr().unwrap(), addr("10.0.0.1:40000"));
    let (mut accepted, peer) = listener.accept().unwrap();
    assert_eq!(peer, addr("10.0.0.1:40000"));
    conn.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    accepted.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
    let inherited = server.with_stack(|st, _| {
        let h = accepted.handle();
        (st.get_option(h, SockOptName::NoDelay).unwrap(), st.get_option(h, SockOptName::RecvBuffer).unwrap())
    });
    assert_eq!(inherited, (SockOpt::NoDelay(true), SockOpt::RecvBuffer(100_000)));

    // Refused: the error, and the socket is gone.
    let before = client.with_stack(|st, _| st.socket_count());
    let r = TcpSocket::new(&client).unwrap().connect(addr("10.0.0.2:9"));
    assert_eq!(r.unwrap_err().kind(), ErrorKind::ConnectionRefused);
    assert_eq!(client.with_stack(|st, _| st.socket_count()), before);
    let unbound = TcpSocket::new(&server).unwrap().listen(4).unwrap();
    assert_ne!(unbound.local_addr().unwrap().port(), 0);

    drop((conn, accepted));
    client.shutdown().unwrap();
    server.shutdown().unwrap();
    // The client's SYN, as captured: EF (0xb8) and TTL 9.
    let mut r = PcapReader::new(std::fs::File::open(&cap).unwrap()).unwrap();
    let link = r.link_type().code();
    let mut syn = None;
    while let Some(p) = r.next_packet().unwrap() {
        if let Some(ip) = ustack::core::trace::analysis::ipv4_in_frame(link, &p.data)
            && ip.len() > 33
            && ip[9] == 6
            && ip[12..16] == [10, 0, 0, 1]
            && ip[33] & 0x12 == 0x02
        {
            syn = Some((ip[1], ip[8], u16::from_be_bytes([ip[20], ip[21]])));
            break;
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(syn, Some((0xb8, 9, 40_000)), "the SYN's (TOS, TTL, source port)");
}

/// A stack on a real device with the default seed, 0, gets one from the
/// operating system: its secrets (ISN and cookie keys) are not the ones
/// anybody could compute from the default; a seed given is kept.
#[test]
fn the_default_seed_is_replaced_by_a_random_one() {
    let seed_of = |seed: u64| {
        let (a, _b) = PairDevice::pair(Medium::Ethernet, 1500).unwrap();
        let mut cfg = host_config(1, 1);
        cfg.seed = seed;
        let net = NetStack::start(a, cfg, DriverOptions::default()).unwrap();
        let s = net.with_stack(|s, _| s.config().seed);
        net.shutdown().unwrap();
        s
    };
    let (x, y) = (seed_of(0), seed_of(0));
    assert!(x != 0 && y != 0 && x != y, "{x} {y}");
    assert_eq!(seed_of(42), 42);
}
