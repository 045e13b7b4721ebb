//! `ustack tun2socks`: the networks the kernel routes to ustack's device,
//! with every TCP connection to them carried through a SOCKS5 proxy (RFC
//! 1928) to the address its client asked for, as a VPN client's tun2socks
//! does. ustack takes any address (`StackConfig::any_ip`) and accepts on a
//! catch-all listener; each accepted stream's local address is the
//! client's destination, which goes to the proxy in a CONNECT request. A
//! refusal by the proxy resets the client's connection, as a refused
//! connect would; a half-close is passed on each way.
//!
//! UDP goes the same way, through the proxy's UDP associations (RFC 1928
//! §7): a catch-all UDP socket receives every datagram with the address it
//! was sent to, each client (source address and port) gets an association
//! of its own, and the answers come back to the client from the address
//! the proxy says they came from. That carries a VPN client's DNS queries,
//! for one.

use crate::net::DeviceArgs;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::thread;
use std::time::{Duration, Instant};
use ustack::NetStack;
use ustack::blocking::{TcpSocket, TcpStream, UdpSocket};

#[derive(clap::Args)]
pub struct Tun2socksArgs {
    #[command(flatten)]
    pub dev: DeviceArgs,
    /// The SOCKS5 proxy, reached through the kernel, e.g. 127.0.0.1:1080
    /// (`ssh -D 1080 host` makes one).
    #[arg(long, value_name = "ADDR:PORT")]
    pub socks: SocketAddr,
    /// A user name for a proxy that asks for one (RFC 1929). The password
    /// comes from the environment variable USTACK_SOCKS_PASSWORD, so that
    /// it does not show in the process list.
    #[arg(long, value_name = "NAME")]
    pub socks_user: Option<String>,
}

/// Where the proxy is, and what to log in with if it asks.
#[derive(Clone, Debug)]
pub struct Proxy {
    pub addr: SocketAddr,
    pub login: Option<Arc<Login>>,
}

/// A user name and password for RFC 1929's sub-negotiation.
#[derive(Debug)]
pub struct Login {
    user: Vec<u8>,
    password: Vec<u8>,
}

impl Login {
    /// Each must be 1 to 255 bytes long (RFC 1929 §2: one length byte).
    pub fn new(user: &str, password: &str) -> Result<Login, String> {
        for (what, v) in [("user name", user), ("password", password)] {
            if v.is_empty() || v.len() > 255 {
                return Err(format!("the SOCKS5 {what} must be 1 to 255 bytes long, not {}", v.len()));
            }
        }
        Ok(Login { user: user.as_bytes().to_vec(), password: password.as_bytes().to_vec() })
    }
}

/// SOCKS5 authentication methods (RFC 1928 §3).
const NO_AUTHENTICATION: u8 = 0;
const USERNAME_PASSWORD: u8 = 2;
const NO_ACCEPTABLE_METHOD: u8 = 0xff;

/// Accepts every connection on a catch-all listener and relays each
/// through the proxy at `proxy`, a thread each; and every UDP datagram,
/// through an association per client.
pub fn start(net: &NetStack, proxy: Proxy) -> io::Result<()> {
    let listener = TcpSocket::new(net)?.listen_any(1024)?;
    let udp = Arc::new(UdpSocket::bind_any(net)?);
    let tcp_proxy = proxy.clone();
    thread::spawn(move || {
        while let Ok((conn, _)) = listener.accept() {
            let proxy = tcp_proxy.clone();
            thread::spawn(move || relay(conn, &proxy));
        }
    });
    thread::spawn(move || dispatch_udp(udp, proxy));
    Ok(())
}

/// A client's association lives this long without a datagram either way
/// (a NAT's UDP timeout is two minutes or more: RFC 4787 REQ-5).
const UDP_IDLE: Duration = Duration::from_secs(120);
/// At most this many clients have an association at once; a datagram
/// from one more is dropped, as a full NAT table would.
const UDP_CLIENTS: usize = 512;
/// Datagrams queued toward one client's association (while the proxy sets
/// it up, or is slow); past that they are dropped, as on a full link.
const UDP_QUEUE: usize = 64;
/// How often a relay looks at its idle time and its control connection.
const UDP_TICK: Duration = Duration::from_millis(500);

/// A datagram on its way out: where its client sent it, and its data.
type Outgoing = (SocketAddrV4, Vec<u8>);

struct UdpClient {
    queue: SyncSender<Outgoing>,
    alive: Arc<AtomicBool>,
}

/// Hands each datagram of the catch-all socket to its client's relay,
/// starting one for a client not seen before (or whose association
/// ended). Returns when the stack shuts down.
fn dispatch_udp(udp: Arc<UdpSocket>, proxy: Proxy) {
    let mut clients: HashMap<SocketAddrV4, UdpClient> = HashMap::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, from, to) = match udp.recv_msg(&mut buf) {
            Ok((n, SocketAddr::V4(from), SocketAddr::V4(to))) => (n, from, to),
            Ok(_) => continue,
            Err(_) => return,
        };
        let datagram = (to, buf[..n].to_vec());
        if let Some(c) = clients.get(&from)
            && c.alive.load(Ordering::Relaxed)
        {
            let _ = c.queue.try_send(datagram);
            continue;
        }
        clients.retain(|_, c| c.alive.load(Ordering::Relaxed));
        if clients.len() >= UDP_CLIENTS {
            continue;
        }
        let (queue, pending) = mpsc::sync_channel(UDP_QUEUE);
        let _ = queue.try_send(datagram);
        let alive = Arc::new(AtomicBool::new(true));
        let (udp, done, proxy) = (udp.clone(), alive.clone(), proxy.clone());
        thread::spawn(move || {
            if let Err(e) = relay_udp(&udp, &proxy, from, pending) {
                eprintln!("tun2socks: UDP from {from}: {e}");
            }
            done.store(false, Ordering::Relaxed);
        });
        clients.insert(from, UdpClient { queue, alive });
    }
}

/// One client's association: its datagrams go to the proxy's relay with
/// the SOCKS header that says where each is for, and what the relay sends
/// back goes to the client from the address its header names. Ends when
/// the association has been idle for [`UDP_IDLE`], when the proxy closes
/// the control connection (which ends the association, RFC 1928 §7), or
/// when the stack shuts down.
fn relay_udp(udp: &Arc<UdpSocket>, proxy: &Proxy, client: SocketAddrV4, pending: Receiver<Outgoing>) -> io::Result<()> {
    let (control, relay) = associate(proxy)?;
    let out = std::net::UdpSocket::bind(if relay.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" })?;
    // Connected: the kernel takes datagrams from the relay only.
    out.connect(relay)?;
    out.set_read_timeout(Some(UDP_TICK))?;
    control.set_nonblocking(true)?;
    let last = Arc::new(Mutex::new(Instant::now()));
    let stop = Arc::new(AtomicBool::new(false));
    let back = {
        let (inbound, udp, last, stop) = (out.try_clone()?, udp.clone(), last.clone(), stop.clone());
        thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !stop.load(Ordering::Relaxed) {
                let Ok(n) = inbound.recv(&mut buf) else { continue };
                if let Some((src, data)) = unwrap_datagram(&buf[..n]) {
                    let _ = udp.send_from(data, src, client);
                    *last.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
                }
            }
        })
    };
    loop {
        match pending.recv_timeout(UDP_TICK) {
            Ok((dst, data)) => {
                // A refusal (an ICMP error about an earlier datagram) is
                // no reason to end: UDP promises nothing either way.
                let _ = out.send(&wrap_datagram(dst, &data));
                *last.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        let idle = last.lock().unwrap_or_else(|e| e.into_inner()).elapsed();
        if idle > UDP_IDLE || closed(&control) {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = back.join();
    Ok(())
}

/// Whether the proxy closed a (non-blocking) control connection.
fn closed(control: &std::net::TcpStream) -> bool {
    match control.peek(&mut [0u8; 1]) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != io::ErrorKind::WouldBlock,
    }
}

/// A UDP association (RFC 1928 §7): the control connection, which keeps
/// it alive, and the relay's address. The request carries zeros for the
/// client's address, as §4 asks of a client that does not know it yet; a
/// relay named 0.0.0.0 is at the proxy's own address.
fn associate(proxy: &Proxy) -> io::Result<(std::net::TcpStream, SocketAddr)> {
    let (control, bound) = request(proxy, UDP_ASSOCIATE, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))?;
    match bound {
        Bound::Addr(a) if a.ip().is_unspecified() => Ok((control, SocketAddr::new(proxy.addr.ip(), a.port()))),
        Bound::Addr(a) => Ok((control, a)),
        Bound::Name => {
            Err(io::Error::other("the proxy named its UDP relay by a domain name, which ustack does not resolve"))
        }
    }
}

/// A datagram for the relay: RSV (2 bytes of zero), FRAG 0 (a whole
/// datagram), the IPv4 destination and port, then the data (RFC 1928 §7).
fn wrap_datagram(dst: SocketAddrV4, data: &[u8]) -> Vec<u8> {
    let mut d = Vec::with_capacity(10 + data.len());
    d.extend_from_slice(&[0, 0, 0, 1]);
    d.extend_from_slice(&dst.ip().octets());
    d.extend_from_slice(&dst.port().to_be_bytes());
    d.extend_from_slice(data);
    d
}

/// A datagram from the relay: where it came from, and its data. A
/// fragment is dropped ("An implementation that does not support
/// fragmentation MUST drop any datagram whose FRAG field is other than
/// X'00'", RFC 1928 §7), as is one from a domain name or an IPv6 address,
/// which the client's IPv4 socket could not be answered from.
fn unwrap_datagram(d: &[u8]) -> Option<(SocketAddrV4, &[u8])> {
    if d.len() < 10 || d[2] != 0 || d[3] != 1 {
        return None;
    }
    let ip = Ipv4Addr::new(d[4], d[5], d[6], d[7]);
    let port = u16::from_be_bytes([d[8], d[9]]);
    Some((SocketAddrV4::new(ip, port), &d[10..]))
}

/// Carries `conn` through the proxy to where its client meant to go.
fn relay(conn: TcpStream, proxy: &Proxy) {
    let Ok(SocketAddr::V4(dst)) = conn.local_addr() else { return };
    let upstream = match connect_via(proxy, dst) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tun2socks: {dst}: {e}");
            let _ = conn.abort();
            return;
        }
    };
    let (Ok(mut from_client), Ok(mut to_proxy)) = (conn.try_clone(), upstream.try_clone()) else { return };
    let (mut to_client, mut from_proxy) = (conn, upstream);
    let up = thread::spawn(move || {
        let _ = io::copy(&mut from_client, &mut to_proxy);
        let _ = to_proxy.shutdown(Shutdown::Write);
    });
    let _ = io::copy(&mut from_proxy, &mut to_client);
    let _ = to_client.shutdown(Shutdown::Write);
    let _ = up.join();
}

/// A TCP connection to `dst` through the SOCKS5 proxy: the greeting (RFC
/// 1928 §3, with RFC 1929's login if the proxy asks for it), then CONNECT
/// with an IPv4 address (§4), and the reply (§6), whose bound address is
/// read and dropped.
pub fn connect_via(proxy: &Proxy, dst: SocketAddrV4) -> io::Result<std::net::TcpStream> {
    let (s, _) = request(proxy, CONNECT, dst)?;
    Ok(s)
}

/// RFC 1928 §4 commands.
const CONNECT: u8 = 1;
const UDP_ASSOCIATE: u8 = 3;

/// What the proxy's reply names as its bound address (RFC 1928 §6).
#[derive(Debug, PartialEq, Eq)]
enum Bound {
    Addr(SocketAddr),
    /// A domain name, which ustack does not resolve.
    Name,
}

/// Greets the proxy and makes one request (RFC 1928 §3-§6). Returns the
/// control connection, positioned right after the reply, and the bound
/// address the reply names.
fn request(proxy: &Proxy, command: u8, dst: SocketAddrV4) -> io::Result<(std::net::TcpStream, Bound)> {
    let mut s = std::net::TcpStream::connect_timeout(&proxy.addr, Duration::from_secs(10))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    greet(&mut s, proxy)?;
    let proxy = proxy.addr;
    let mut req = vec![5, command, 0, 1];
    req.extend_from_slice(&dst.ip().octets());
    req.extend_from_slice(&dst.port().to_be_bytes());
    s.write_all(&req)?;
    let mut head = [0u8; 4];
    s.read_exact(&mut head)?;
    if head[0] != 5 {
        return Err(io::Error::other(format!("the proxy at {proxy} does not speak SOCKS5")));
    }
    if head[1] != 0 {
        return Err(io::Error::new(io::ErrorKind::ConnectionRefused, format!("the proxy: {}", reply_text(head[1]))));
    }
    let len = match head[3] {
        1 => 4,
        4 => 16,
        3 => {
            let mut len = [0u8; 1];
            s.read_exact(&mut len)?;
            usize::from(len[0])
        }
        t => return Err(io::Error::other(format!("the proxy answered with address type {t}"))),
    };
    let mut rest = vec![0u8; len + 2];
    s.read_exact(&mut rest)?;
    s.set_read_timeout(None)?;
    let port = u16::from_be_bytes([rest[len], rest[len + 1]]);
    let bound = match head[3] {
        1 => Bound::Addr(SocketAddr::from((<[u8; 4]>::try_from(&rest[..4]).expect("4 bytes"), port))),
        4 => Bound::Addr(SocketAddr::from((<[u8; 16]>::try_from(&rest[..16]).expect("16 bytes"), port))),
        _ => Bound::Name,
    };
    Ok((s, bound))
}

/// The method negotiation (RFC 1928 §3): "no authentication", and with a
/// login also "username/password", whose sub-negotiation (RFC 1929 §2)
/// follows if the proxy chooses it.
fn greet(s: &mut std::net::TcpStream, proxy: &Proxy) -> io::Result<()> {
    let addr = proxy.addr;
    match &proxy.login {
        Some(_) => s.write_all(&[5, 2, NO_AUTHENTICATION, USERNAME_PASSWORD])?,
        None => s.write_all(&[5, 1, NO_AUTHENTICATION])?,
    }
    let mut choice = [0u8; 2];
    s.read_exact(&mut choice)?;
    if choice[0] != 5 {
        return Err(io::Error::other(format!("the proxy at {addr} does not speak SOCKS5")));
    }
    let denied = |why: String| io::Error::new(io::ErrorKind::PermissionDenied, why);
    let login = match (choice[1], &proxy.login) {
        (NO_AUTHENTICATION, _) => return Ok(()),
        (USERNAME_PASSWORD, Some(login)) => login,
        (USERNAME_PASSWORD | NO_ACCEPTABLE_METHOD, None) => {
            return Err(denied(format!(
                "the proxy at {addr} wants a user name and password: give --socks-user NAME and the password in USTACK_SOCKS_PASSWORD"
            )));
        }
        (NO_ACCEPTABLE_METHOD, Some(_)) => {
            return Err(denied(format!(
                "the proxy at {addr} accepts neither no authentication nor a user name and password"
            )));
        }
        (m, _) => {
            return Err(io::Error::other(format!(
                "the proxy at {addr} chose authentication method {m}, which ustack does not do"
            )));
        }
    };
    let mut sub = vec![1, login.user.len() as u8];
    sub.extend_from_slice(&login.user);
    sub.push(login.password.len() as u8);
    sub.extend_from_slice(&login.password);
    s.write_all(&sub)?;
    let mut status = [0u8; 2];
    s.read_exact(&mut status)?;
    if status[1] != 0 {
        return Err(denied(format!("the proxy at {addr} refused the user name and password")));
    }
    Ok(())
}

/// The meaning of a SOCKS5 reply code (RFC 1928 §6).
fn reply_text(code: u8) -> String {
    match code {
        1 => "general failure".into(),
        2 => "connection not allowed by ruleset".into(),
        3 => "network unreachable".into(),
        4 => "host unreachable".into(),
        5 => "connection refused".into(),
        6 => "TTL expired".into(),
        7 => "command not supported".into(),
        8 => "address type not supported".into(),
        c => format!("reply code {c}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A one-shot server on loopback: `serve` gets its one connection.
    fn serve_once<T: Send + 'static>(
        serve: impl FnOnce(std::net::TcpStream) -> T + Send + 'static,
    ) -> (Proxy, thread::JoinHandle<T>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let t = thread::spawn(move || serve(l.accept().unwrap().0));
        (Proxy { addr, login: None }, t)
    }

    /// A one-shot SOCKS5 server on loopback that checks the greeting and
    /// the request and answers with `reply`; returns what it was asked for.
    fn fake_proxy(reply: Vec<u8>) -> (Proxy, thread::JoinHandle<Vec<u8>>) {
        serve_once(move |mut c| {
            let mut greeting = [0u8; 3];
            c.read_exact(&mut greeting).unwrap();
            assert_eq!(greeting, [5, 1, 0]);
            c.write_all(&[5, 0]).unwrap();
            let mut request = [0u8; 10];
            c.read_exact(&mut request).unwrap();
            c.write_all(&reply).unwrap();
            // What the upstream server says next. A client the reply
            // refused has closed already, and its kernel may answer these
            // bytes with a reset before the write returns: not an error of
            // the proxy's.
            let _ = c.write_all(b"upstream");
            request.to_vec()
        })
    }

    #[test]
    fn connect_via_sends_an_ipv4_connect_and_reads_past_the_reply() {
        let dst: SocketAddrV4 = "10.99.3.3:4444".parse().unwrap();
        // A reply with a domain name as the bound address (type 3).
        let (proxy, t) = fake_proxy(vec![5, 0, 0, 3, 4, b'h', b'o', b's', b't', 0x1f, 0x90]);
        let mut s = connect_via(&proxy, dst).unwrap();
        assert_eq!(t.join().unwrap(), [5, 1, 0, 1, 10, 99, 3, 3, 0x11, 0x5c]);
        let mut got = [0u8; 8];
        s.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"upstream", "the stream starts right after the reply");
    }

    #[test]
    fn a_refusal_by_the_proxy_is_connection_refused() {
        let (proxy, t) = fake_proxy(vec![5, 5, 0, 1, 0, 0, 0, 0, 0, 0]);
        let e = connect_via(&proxy, "10.99.3.3:9".parse().unwrap()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        assert!(e.to_string().contains("connection refused"), "{e}");
        t.join().unwrap();
    }

    #[test]
    fn associate_asks_with_zeros_and_finds_a_relay_named_0_0_0_0_at_the_proxy() {
        let (proxy, t) = fake_proxy(vec![5, 0, 0, 1, 0, 0, 0, 0, 0x30, 0x39]);
        let (_control, relay) = associate(&proxy).unwrap();
        assert_eq!(t.join().unwrap(), [5, 3, 0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(relay, SocketAddr::new(proxy.addr.ip(), 12345));

        let (proxy, t) = fake_proxy(vec![5, 0, 0, 1, 127, 0, 0, 9, 0x30, 0x39]);
        assert_eq!(associate(&proxy).unwrap().1, "127.0.0.9:12345".parse().unwrap());
        t.join().unwrap();
    }

    #[test]
    fn associate_fails_clearly_on_a_relay_named_by_domain_or_a_refusal() {
        let (proxy, t) = fake_proxy(vec![5, 0, 0, 3, 4, b'h', b'o', b's', b't', 0x30, 0x39]);
        let e = associate(&proxy).unwrap_err();
        assert!(e.to_string().contains("domain name"), "{e}");
        t.join().unwrap();
        let (proxy, t) = fake_proxy(vec![5, 7, 0, 1, 0, 0, 0, 0, 0, 0]);
        let e = associate(&proxy).unwrap_err();
        assert!(e.to_string().contains("command not supported"), "{e}");
        t.join().unwrap();
    }

    #[test]
    fn datagrams_carry_the_rfc1928_udp_header_each_way() {
        let dst: SocketAddrV4 = "10.99.3.3:53".parse().unwrap();
        let d = wrap_datagram(dst, b"query");
        assert_eq!(d, [0, 0, 0, 1, 10, 99, 3, 3, 0, 53, b'q', b'u', b'e', b'r', b'y']);
        assert_eq!(unwrap_datagram(&d), Some((dst, &b"query"[..])));
        assert_eq!(unwrap_datagram(&wrap_datagram(dst, b"")), Some((dst, &b""[..])));
        // A fragment, a domain name, IPv6, or too short: dropped.
        let mut frag = d.clone();
        frag[2] = 1;
        assert_eq!(unwrap_datagram(&frag), None);
        let mut name = d.clone();
        name[3] = 3;
        assert_eq!(unwrap_datagram(&name), None);
        let mut v6 = d.clone();
        v6[3] = 4;
        assert_eq!(unwrap_datagram(&v6), None);
        assert_eq!(unwrap_datagram(&d[..9]), None);
    }

    type GreetingAndLogin = (Vec<u8>, Vec<u8>);

    /// A one-shot proxy that wants a login: it reads the greeting and the
    /// RFC 1929 sub-negotiation, answers with `status`, and if that is
    /// success takes a CONNECT. Returns the greeting and the login.
    fn login_proxy(status: u8) -> (Proxy, thread::JoinHandle<GreetingAndLogin>) {
        serve_once(move |mut c| {
            let mut greeting = [0u8; 4];
            c.read_exact(&mut greeting).unwrap();
            c.write_all(&[5, 2]).unwrap();
            let mut sub = vec![0u8; 2];
            c.read_exact(&mut sub).unwrap();
            let mut user = vec![0u8; usize::from(sub[1])];
            c.read_exact(&mut user).unwrap();
            let mut plen = [0u8; 1];
            c.read_exact(&mut plen).unwrap();
            let mut password = vec![0u8; usize::from(plen[0])];
            c.read_exact(&mut password).unwrap();
            sub.extend(user);
            sub.push(plen[0]);
            sub.extend(password);
            c.write_all(&[1, status]).unwrap();
            if status == 0 {
                let mut request = [0u8; 10];
                c.read_exact(&mut request).unwrap();
                c.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).unwrap();
            }
            (greeting.to_vec(), sub)
        })
    }

    #[test]
    fn a_login_goes_to_a_proxy_that_asks_for_it_rfc1929() {
        let (mut proxy, t) = login_proxy(0);
        proxy.login = Some(Arc::new(Login::new("alice", "s3cret").unwrap()));
        connect_via(&proxy, "10.99.3.3:80".parse().unwrap()).unwrap();
        let (greeting, sub) = t.join().unwrap();
        assert_eq!(greeting, [5, 2, 0, 2], "no authentication, or user name and password");
        assert_eq!(sub, b"\x01\x05alice\x06s3cret");
    }

    #[test]
    fn a_refused_login_and_a_missing_one_are_permission_denied_saying_what_to_do() {
        let (mut proxy, t) = login_proxy(1);
        proxy.login = Some(Arc::new(Login::new("alice", "wrong").unwrap()));
        let e = connect_via(&proxy, "10.99.3.3:80".parse().unwrap()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        assert!(e.to_string().contains("refused the user name and password"), "{e}");
        t.join().unwrap();

        let (proxy, t) = serve_once(|mut c| {
            let mut greeting = [0u8; 3];
            c.read_exact(&mut greeting).unwrap();
            c.write_all(&[5, 0xff]).unwrap();
            greeting
        });
        let e = connect_via(&proxy, "10.99.3.3:80".parse().unwrap()).unwrap_err();
        assert_eq!(t.join().unwrap(), [5, 1, 0], "without a login only no authentication is offered");
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        assert!(e.to_string().contains("--socks-user NAME") && e.to_string().contains("USTACK_SOCKS_PASSWORD"), "{e}");
    }

    #[test]
    fn a_login_is_1_to_255_bytes_each() {
        assert!(Login::new("u", "p").is_ok());
        assert!(Login::new(&"u".repeat(255), &"p".repeat(255)).is_ok());
        let e = Login::new("", "p").unwrap_err();
        assert!(e.contains("user name must be 1 to 255 bytes long, not 0"), "{e}");
        let e = Login::new("u", &"p".repeat(256)).unwrap_err();
        assert!(e.contains("password must be 1 to 255 bytes long, not 256"), "{e}");
    }
}
