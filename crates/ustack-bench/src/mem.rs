//! In-memory cases: two stacks in one thread, frames handed from one to
//! the other with no device in between.

use smoltcp::iface::{Config as SmolConfig, Interface, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium as SmolMedium, RxToken, TxToken};
use smoltcp::socket::tcp as smol_tcp;
use smoltcp::time::Instant as SmolInstant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr, Ipv4Address};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::SocketAddrV4;
use std::rc::Rc;
use std::time::Instant as StdInstant;
use ustack_core::tcp::TcpConfig;
use ustack_core::time::Instant;
use ustack_core::{Error, Stack, StackConfig};

/// A clock for both stacks: nanoseconds since the run began.
pub struct Clock(StdInstant);

impl Clock {
    pub fn new() -> Self {
        Clock(StdInstant::now())
    }
    pub fn ustack(&self) -> Instant {
        Instant::from_nanos(self.0.elapsed().as_nanos() as u64)
    }
    pub fn smol(&self) -> SmolInstant {
        SmolInstant::from_micros(self.0.elapsed().as_micros() as i64)
    }
    pub fn secs(&self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }
}

/// A stack for the in-memory cases. They run on the wall clock and call
/// the stacks once per turn of their loop, as the driver does; so, as the
/// driver does, pacing goes in bursts of up to a millisecond of its rate
/// (`pacing_quantum`). With the core's default (zero: segment by segment,
/// for a simulated clock) a sender whose pacing gap is far below the time
/// of one turn sends one segment per turn, whatever its rate.
pub fn ustack_config(addr: &str, mtu: usize, buffer: usize, seed: u64) -> StackConfig {
    let tcp = TcpConfig {
        recv_buffer: buffer,
        send_buffer: buffer,
        pacing_quantum: ustack_core::time::Duration::from_millis(1),
        ..TcpConfig::default()
    };
    StackConfig::ip(addr.parse().unwrap()).with_mtu(mtu).with_tcp(tcp).with_seed(seed)
}

/// The mem-bulk stacks: socket buffers of exactly `buffer` bytes, as
/// smoltcp's are, so both move data through the same window (auto-tuning
/// would grow ustack's to 16 MiB each way). With `offload` the in-memory
/// link declares checksum offload (it cannot corrupt a packet): neither
/// stack computes nor verifies checksums.
pub fn bulk_config(addr: &str, mtu: usize, buffer: usize, seed: u64, offload: bool) -> StackConfig {
    let mut cfg = ustack_config(addr, mtu, buffer, seed);
    cfg.tcp.autotune = false;
    if offload {
        cfg.checksum = ustack_core::wire::ChecksumCaps { verify_rx: false, fill_tx: false };
    }
    cfg
}

/// Moves every frame `from` has to send into `to`. Returns how many moved.
pub fn shuttle(now: Instant, from: &mut Stack, to: &mut Stack, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while let Some(len) = from.poll_transmit(now, buf) {
        to.handle_ip_packet(now, &buf[..len]);
        n += 1;
    }
    n
}

/// ustack: `bytes` one way over one connection. Returns Gbit/s.
#[inline(never)] // its own symbol, for callgrind
pub fn ustack_bulk(bytes: u64, mtu: usize, buffer: usize, offload: bool) -> f64 {
    let mut a = Stack::new(bulk_config("10.0.0.1/24", mtu, buffer, 1, offload));
    let mut b = Stack::new(bulk_config("10.0.0.2/24", mtu, buffer, 2, offload));
    let server: SocketAddrV4 = "10.0.0.2:5001".parse().unwrap();
    let l = b.tcp_socket().unwrap();
    b.bind(l, server).unwrap();
    b.listen(l, 8).unwrap();
    let c = a.tcp_socket().unwrap();
    a.connect(c, server).unwrap();
    let mut buf = vec![0u8; 65536 + 64];
    let chunk = vec![0x5au8; 256 * 1024];
    let mut rbuf = vec![0u8; 256 * 1024];
    let clock = Clock::new();
    let mut conn = None;
    let (mut sent, mut received) = (0u64, 0u64);
    let mut start = None;
    while received < bytes {
        let now = clock.ustack();
        if conn.is_none()
            && let Ok((h, _)) = b.accept(l)
        {
            conn = Some(h);
            start = Some(clock.secs());
        }
        while sent < bytes {
            let want = ((bytes - sent) as usize).min(chunk.len());
            match a.send(c, &chunk[..want]) {
                Ok(n) => sent += n as u64,
                Err(Error::WouldBlock) => break,
                Err(e) => panic!("send: {e}"),
            }
        }
        shuttle(now, &mut a, &mut b, &mut buf);
        if let Some(h) = conn {
            loop {
                match b.recv(h, &mut rbuf) {
                    Ok(0) | Err(Error::WouldBlock) => break,
                    Ok(n) => received += n as u64,
                    Err(e) => panic!("recv: {e}"),
                }
            }
        }
        shuttle(now, &mut b, &mut a, &mut buf);
        a.handle_timeout(now);
        b.handle_timeout(now);
    }
    let secs = clock.secs() - start.unwrap_or(0.0);
    bytes as f64 * 8.0 / secs / 1e9
}

/// A pair of in-memory smoltcp devices. Frames are kept in recycled
/// buffers so neither stack pays an allocation per packet the other does
/// not.
#[derive(Clone)]
pub struct SmolLink {
    queues: Rc<RefCell<[VecDeque<Vec<u8>>; 2]>>,
    pool: Rc<RefCell<Vec<Vec<u8>>>>,
}

pub struct SmolDevice {
    link: SmolLink,
    /// Index of the queue this device receives from.
    rx: usize,
    mtu: usize,
    /// The link declares checksum offload (see `bulk_config`).
    offload: bool,
}

impl SmolLink {
    pub fn pair(mtu: usize) -> (SmolDevice, SmolDevice) {
        Self::pair_with(mtu, false)
    }

    pub fn pair_with(mtu: usize, offload: bool) -> (SmolDevice, SmolDevice) {
        let link =
            SmolLink { queues: Rc::new(RefCell::new([VecDeque::new(), VecDeque::new()])), pool: Default::default() };
        (SmolDevice { link: link.clone(), rx: 0, mtu, offload }, SmolDevice { link, rx: 1, mtu, offload })
    }
}

pub struct SmolRx {
    frame: Vec<u8>,
    pool: Rc<RefCell<Vec<Vec<u8>>>>,
}

pub struct SmolTx<'a> {
    link: &'a SmolLink,
    queue: usize,
}

impl RxToken for SmolRx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let r = f(&self.frame);
        self.pool.borrow_mut().push(self.frame);
        r
    }
}

impl TxToken for SmolTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = self.link.pool.borrow_mut().pop().unwrap_or_default();
        frame.resize(len, 0);
        let r = f(&mut frame);
        self.link.queues.borrow_mut()[self.queue].push_back(frame);
        r
    }
}

impl Device for SmolDevice {
    type RxToken<'a> = SmolRx;
    type TxToken<'a> = SmolTx<'a>;

    fn receive(&mut self, _: SmolInstant) -> Option<(SmolRx, SmolTx<'_>)> {
        let frame = self.link.queues.borrow_mut()[self.rx].pop_front()?;
        Some((SmolRx { frame, pool: self.link.pool.clone() }, SmolTx { link: &self.link, queue: 1 - self.rx }))
    }

    fn transmit(&mut self, _: SmolInstant) -> Option<SmolTx<'_>> {
        Some(SmolTx { link: &self.link, queue: 1 - self.rx })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = SmolMedium::Ip;
        caps.max_transmission_unit = self.mtu;
        if self.offload {
            caps.checksum = smoltcp::phy::ChecksumCapabilities::ignored();
        }
        caps
    }
}

pub fn smol_iface(dev: &mut SmolDevice, addr: [u8; 4], clock: &Clock) -> Interface {
    let mut cfg = SmolConfig::new(HardwareAddress::Ip);
    cfg.random_seed = addr[3] as u64;
    let mut iface = Interface::new(cfg, dev, clock.smol());
    iface.update_ip_addrs(|a| {
        a.push(IpCidr::new(IpAddress::Ipv4(Ipv4Address::new(addr[0], addr[1], addr[2], addr[3])), 24)).unwrap();
    });
    iface
}

pub fn smol_socket(buffer: usize) -> smol_tcp::Socket<'static> {
    smol_tcp::Socket::new(smol_tcp::SocketBuffer::new(vec![0; buffer]), smol_tcp::SocketBuffer::new(vec![0; buffer]))
}

/// smoltcp: `bytes` one way over one connection. Returns Gbit/s.
#[inline(never)]
pub fn smoltcp_bulk(bytes: u64, mtu: usize, buffer: usize, offload: bool) -> f64 {
    let clock = Clock::new();
    let (mut da, mut db) = SmolLink::pair_with(mtu, offload);
    let mut ia = smol_iface(&mut da, [10, 0, 0, 1], &clock);
    let mut ib = smol_iface(&mut db, [10, 0, 0, 2], &clock);
    let mut sa = SocketSet::new(vec![]);
    let mut sb = SocketSet::new(vec![]);
    let mut server = smol_socket(buffer);
    server.listen(5001).unwrap();
    let hs = sb.add(server);
    let hc = sa.add(smol_socket(buffer));
    {
        let c = sa.get_mut::<smol_tcp::Socket>(hc);
        c.connect(ia.context(), (IpAddress::v4(10, 0, 0, 2), 5001), 40000).unwrap();
    }
    let chunk = vec![0x5au8; 256 * 1024];
    let mut rbuf = vec![0u8; 256 * 1024];
    let (mut sent, mut received) = (0u64, 0u64);
    let mut start = None;
    while received < bytes {
        let now = clock.smol();
        {
            let c = sa.get_mut::<smol_tcp::Socket>(hc);
            while sent < bytes && c.can_send() {
                let want = ((bytes - sent) as usize).min(chunk.len());
                match c.send_slice(&chunk[..want]) {
                    Ok(0) => break,
                    Ok(n) => sent += n as u64,
                    Err(e) => panic!("smoltcp send: {e}"),
                }
            }
        }
        ia.poll(now, &mut da, &mut sa);
        ib.poll(now, &mut db, &mut sb);
        {
            let s = sb.get_mut::<smol_tcp::Socket>(hs);
            if start.is_none() && s.is_active() {
                start = Some(clock.secs());
            }
            while s.can_recv() {
                match s.recv_slice(&mut rbuf) {
                    Ok(0) => break,
                    Ok(n) => received += n as u64,
                    Err(e) => panic!("smoltcp recv: {e}"),
                }
            }
        }
        ib.poll(now, &mut db, &mut sb);
        ia.poll(now, &mut da, &mut sa);
    }
    let secs = clock.secs() - start.unwrap_or(0.0);
    bytes as f64 * 8.0 / secs / 1e9
}

/// ustack: `n` connect / 64-byte request / 64-byte response / close
/// transactions, one after the other. Returns connections per second.
#[inline(never)] // its own symbol, so callgrind can count it alone
pub fn ustack_crr(n: usize) -> f64 {
    let mut a = Stack::new(ustack_config("10.0.0.1/24", 1500, 64 * 1024, 3));
    let mut b = Stack::new(ustack_config("10.0.0.2/24", 1500, 64 * 1024, 4));
    let server: SocketAddrV4 = "10.0.0.2:80".parse().unwrap();
    let l = b.tcp_socket().unwrap();
    b.bind(l, server).unwrap();
    b.listen(l, 128).unwrap();
    let mut buf = vec![0u8; 65536 + 64];
    let req = [0x42u8; 64];
    let mut tmp = [0u8; 256];
    let clock = Clock::new();
    for _ in 0..n {
        let c = a.tcp_socket().unwrap();
        a.connect(c, server).unwrap();
        let mut s = None;
        let (mut sent_req, mut got_req, mut got_resp) = (false, 0usize, 0usize);
        let mut closed_c = false;
        loop {
            let now = clock.ustack();
            shuttle(now, &mut a, &mut b, &mut buf);
            if s.is_none()
                && let Ok((h, _)) = b.accept(l)
            {
                s = Some(h);
            }
            shuttle(now, &mut b, &mut a, &mut buf);
            if !sent_req && a.can_send(c) {
                a.send(c, &req).unwrap();
                sent_req = true;
            }
            if let Some(h) = s
                && got_req < 64
            {
                while let Ok(k) = b.recv(h, &mut tmp) {
                    if k == 0 {
                        break;
                    }
                    got_req += k;
                }
                if got_req >= 64 {
                    // The server answers and closes first (HTTP/1.0 style),
                    // so TIME-WAIT sits on its side and client ports recycle.
                    b.send(h, &req).unwrap();
                    b.close(h).unwrap();
                }
            }
            if got_resp < 64 {
                while let Ok(k) = a.recv(c, &mut tmp) {
                    if k == 0 {
                        break;
                    }
                    got_resp += k;
                }
            }
            if got_resp >= 64 && !closed_c {
                a.close(c).unwrap();
                closed_c = true;
            }
            if closed_c && a.socket_count() == 0 {
                break;
            }
            a.handle_timeout(now);
            b.handle_timeout(now);
        }
    }
    n as f64 / clock.secs()
}

/// smoltcp: the same transactions. Its listening socket serves one
/// connection at a time; after each, the server socket (in TIME-WAIT, as
/// the first to close) is reset and listens again (so, unlike ustack's
/// server, it keeps no TIME-WAIT state), and the client socket is
/// connected again.
#[inline(never)]
pub fn smoltcp_crr(n: usize) -> f64 {
    let clock = Clock::new();
    let (mut da, mut db) = SmolLink::pair(1500);
    let mut ia = smol_iface(&mut da, [10, 0, 0, 1], &clock);
    let mut ib = smol_iface(&mut db, [10, 0, 0, 2], &clock);
    let mut sa = SocketSet::new(vec![]);
    let mut sb = SocketSet::new(vec![]);
    let mut server = smol_socket(64 * 1024);
    server.listen(80).unwrap();
    let hs = sb.add(server);
    let req = [0x42u8; 64];
    let mut tmp = [0u8; 256];
    let mut port = 40000u16;
    // One client socket, connected again for each transaction once closed:
    // smoltcp sockets hold caller-provided buffers, and a smoltcp
    // application reuses them rather than allocating (and zeroing) 128 KiB
    // per connection.
    let hc = sa.add(smol_socket(64 * 1024));
    for _ in 0..n {
        port = if port >= 60000 { 40000 } else { port + 1 };
        sa.get_mut::<smol_tcp::Socket>(hc).connect(ia.context(), (IpAddress::v4(10, 0, 0, 2), 80), port).unwrap();
        let (mut sent_req, mut got_req, mut got_resp, mut closed_c) = (false, 0usize, 0usize, false);
        loop {
            let now = clock.smol();
            ia.poll(now, &mut da, &mut sa);
            ib.poll(now, &mut db, &mut sb);
            {
                let s = sb.get_mut::<smol_tcp::Socket>(hs);
                if got_req < 64 && s.can_recv() {
                    got_req += s.recv_slice(&mut tmp).unwrap_or(0);
                    if got_req >= 64 {
                        s.send_slice(&req).unwrap();
                        s.close();
                    }
                }
            }
            {
                let c = sa.get_mut::<smol_tcp::Socket>(hc);
                if !sent_req && c.can_send() {
                    c.send_slice(&req).unwrap();
                    sent_req = true;
                }
                if got_resp < 64 && c.can_recv() {
                    got_resp += c.recv_slice(&mut tmp).unwrap_or(0);
                }
                if got_resp >= 64 && !closed_c {
                    c.close();
                    closed_c = true;
                }
            }
            ia.poll(now, &mut da, &mut sa);
            ib.poll(now, &mut db, &mut sb);
            let c_done = !sa.get::<smol_tcp::Socket>(hc).is_open();
            let s = sb.get_mut::<smol_tcp::Socket>(hs);
            let s_done = matches!(s.state(), smol_tcp::State::TimeWait | smol_tcp::State::Closed);
            if closed_c && c_done && s_done {
                s.abort();
                s.listen(80).unwrap();
                break;
            }
        }
    }
    n as f64 / clock.secs()
}

/// ustack: `total` bytes one way split over `flows` connections at once.
/// Returns (Gbit/s, nanoseconds per segment received, the same over the
/// second half of the bytes only). Every flow has then moved half its
/// data, so its buffers are allocated and touched: the second figure is
/// the steady per-segment cost without the first touch of each flow's
/// memory, which at 10,000 flows is a page fault every few segments.
pub fn ustack_many_flows(total: u64, flows: usize) -> (f64, f64, f64) {
    let buffer = 64 * 1024;
    let mut a = Stack::new(ustack_config("10.0.0.1/24", 1500, buffer, 5));
    // A server that expects `flows` connections at once is given a SYN
    // queue and an accept queue that hold them: with the defaults (1,024
    // and 4,096) the surplus completes through SYN cookies, and a cookie
    // ACK that finds the accept queue full is dropped while the client,
    // which has nothing to send until every flow is up, believes it is
    // connected (as with Linux), so the setup below would wait for ever.
    let mut cfg_b = ustack_config("10.0.0.2/24", 1500, buffer, 6);
    cfg_b.max_backlog = flows + 16;
    cfg_b.max_half_open = flows + 16;
    let mut b = Stack::new(cfg_b);
    let server: SocketAddrV4 = "10.0.0.2:5001".parse().unwrap();
    let l = b.tcp_socket().unwrap();
    b.bind(l, server).unwrap();
    b.listen(l, flows + 16).unwrap();
    let clients: Vec<_> = (0..flows)
        .map(|_| {
            let c = a.tcp_socket().unwrap();
            a.connect(c, server).unwrap();
            c
        })
        .collect();
    let per = total / flows as u64;
    let mut sent = vec![0u64; flows];
    let mut servers = Vec::with_capacity(flows);
    let mut buf = vec![0u8; 65536 + 64];
    let chunk = vec![0x5au8; 16 * 1024];
    let mut rbuf = vec![0u8; 64 * 1024];
    let clock = Clock::new();
    // Establish everything first; the measurement is the transfer.
    while servers.len() < flows {
        let now = clock.ustack();
        shuttle(now, &mut a, &mut b, &mut buf);
        while let Ok((h, _)) = b.accept(l) {
            servers.push(h);
        }
        shuttle(now, &mut b, &mut a, &mut buf);
        a.handle_timeout(now);
        b.handle_timeout(now);
    }
    let start = clock.secs();
    let seg_before = b.stats().tcp.segments_in;
    let mut received = 0u64;
    let mut half: Option<(f64, u64)> = None;
    // Readiness-driven, as an event loop is: a flow is offered data when
    // it has room (at the start, then when the stack reports it woken),
    // and read when the stack reports it woken; the loop never visits
    // every flow, so the cost per turn is the stack's, not the harness's.
    let client_index: std::collections::HashMap<_, _> = clients.iter().enumerate().map(|(i, &c)| (c, i)).collect();
    let mut writable: Vec<usize> = (0..flows).collect();
    drop((a.take_woken(), b.take_woken()));
    while received < per * flows as u64 {
        let now = clock.ustack();
        for i in writable.drain(..) {
            while sent[i] < per {
                let want = ((per - sent[i]) as usize).min(chunk.len());
                match a.send(clients[i], &chunk[..want]) {
                    Ok(n) => sent[i] += n as u64,
                    Err(Error::WouldBlock) => break,
                    Err(e) => panic!("send: {e}"),
                }
            }
        }
        shuttle(now, &mut a, &mut b, &mut buf);
        for h in b.take_woken() {
            while let Ok(n) = b.recv(h, &mut rbuf) {
                if n == 0 {
                    break;
                }
                received += n as u64;
            }
        }
        if half.is_none() && received >= per * flows as u64 / 2 {
            half = Some((clock.secs(), b.stats().tcp.segments_in));
        }
        shuttle(now, &mut b, &mut a, &mut buf);
        a.handle_timeout(now);
        b.handle_timeout(now);
        writable.extend(a.take_woken().iter().filter_map(|h| client_index.get(h)).filter(|&&i| sent[i] < per));
    }
    let (end, seg_end) = (clock.secs(), b.stats().tcp.segments_in);
    let secs = end - start;
    let segs = (seg_end - seg_before).max(1);
    let (half_at, seg_half) = half.unwrap_or((start, seg_before));
    let steady = (end - half_at) * 1e9 / (seg_end - seg_half).max(1) as f64;
    (received as f64 * 8.0 / secs / 1e9, secs * 1e9 / segs as f64, steady)
}
