//! `ustack tun2socks`: the networks the kernel routes to ustack's device,
//! with every TCP connection to them carried through a SOCKS5 proxy (RFC
//! 1928) to the address its client asked for, as a VPN client's tun2socks
//! does. ustack takes any address (`StackConfig::any_ip`) and accepts on a
//! catch-all listener; each accepted stream's local address is the
//! client's destination, which goes to the proxy in a CONNECT request. A
//! refusal by the proxy resets the client's connection, as a refused
//! connect would; a half-close is passed on each way.

use crate::net::DeviceArgs;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, SocketAddrV4};
use std::thread;
use std::time::Duration;
use ustack::NetStack;
use ustack::blocking::{TcpSocket, TcpStream};

#[derive(clap::Args)]
pub struct Tun2socksArgs {
    #[command(flatten)]
    pub dev: DeviceArgs,
    /// The SOCKS5 proxy (no authentication), reached through the kernel,
    /// e.g. 127.0.0.1:1080 (`ssh -D 1080 host` makes one).
    #[arg(long, value_name = "ADDR:PORT")]
    pub socks: SocketAddr,
}

/// Accepts every connection on a catch-all listener and relays each
/// through the proxy at `proxy`, a thread each.
pub fn start(net: &NetStack, proxy: SocketAddr) -> io::Result<()> {
    let listener = TcpSocket::new(net)?.listen_any(1024)?;
    thread::spawn(move || {
        while let Ok((conn, _)) = listener.accept() {
            thread::spawn(move || relay(conn, proxy));
        }
    });
    Ok(())
}

/// Carries `conn` through the proxy to where its client meant to go.
fn relay(conn: TcpStream, proxy: SocketAddr) {
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

/// A TCP connection to `dst` through the SOCKS5 proxy at `proxy`: the
/// greeting with "no authentication" (RFC 1928 §3), then CONNECT with an
/// IPv4 address (§4), and the reply (§6), whose bound address is read and
/// dropped.
pub fn connect_via(proxy: SocketAddr, dst: SocketAddrV4) -> io::Result<std::net::TcpStream> {
    let mut s = std::net::TcpStream::connect_timeout(&proxy, Duration::from_secs(10))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.write_all(&[5, 1, 0])?;
    let mut choice = [0u8; 2];
    s.read_exact(&mut choice)?;
    if choice != [5, 0] {
        return Err(io::Error::other(format!("the proxy at {proxy} wants an authentication ustack does not do")));
    }
    let mut request = vec![5, 1, 0, 1];
    request.extend_from_slice(&dst.ip().octets());
    request.extend_from_slice(&dst.port().to_be_bytes());
    s.write_all(&request)?;
    let mut head = [0u8; 4];
    s.read_exact(&mut head)?;
    if head[0] != 5 {
        return Err(io::Error::other(format!("the proxy at {proxy} does not speak SOCKS5")));
    }
    if head[1] != 0 {
        return Err(io::Error::new(io::ErrorKind::ConnectionRefused, format!("the proxy: {}", reply_text(head[1]))));
    }
    let bound = match head[3] {
        1 => 4,
        4 => 16,
        3 => {
            let mut len = [0u8; 1];
            s.read_exact(&mut len)?;
            usize::from(len[0])
        }
        t => return Err(io::Error::other(format!("the proxy answered with address type {t}"))),
    };
    let mut rest = vec![0u8; bound + 2];
    s.read_exact(&mut rest)?;
    s.set_read_timeout(None)?;
    Ok(s)
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

    /// A one-shot SOCKS5 server on loopback that checks the greeting and
    /// the request and answers with `reply`; returns what it was asked for.
    fn fake_proxy(reply: Vec<u8>) -> (SocketAddr, thread::JoinHandle<Vec<u8>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let t = thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
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
        });
        (addr, t)
    }

    #[test]
    fn connect_via_sends_an_ipv4_connect_and_reads_past_the_reply() {
        let dst: SocketAddrV4 = "10.99.3.3:4444".parse().unwrap();
        // A reply with a domain name as the bound address (type 3).
        let (proxy, t) = fake_proxy(vec![5, 0, 0, 3, 4, b'h', b'o', b's', b't', 0x1f, 0x90]);
        let mut s = connect_via(proxy, dst).unwrap();
        assert_eq!(t.join().unwrap(), [5, 1, 0, 1, 10, 99, 3, 3, 0x11, 0x5c]);
        let mut got = [0u8; 8];
        s.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"upstream", "the stream starts right after the reply");
    }

    #[test]
    fn a_refusal_by_the_proxy_is_connection_refused() {
        let (proxy, t) = fake_proxy(vec![5, 5, 0, 1, 0, 0, 0, 0, 0, 0]);
        let e = connect_via(proxy, "10.99.3.3:9".parse().unwrap()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        assert!(e.to_string().contains("connection refused"), "{e}");
        t.join().unwrap();
    }
}
