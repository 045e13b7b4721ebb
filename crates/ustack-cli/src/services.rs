//! The services `ustack up` offers on its address: TCP echo (RFC 862),
//! discard (RFC 863), chargen (RFC 864) and HTTP; UDP echo.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use ustack::NetStack;
use ustack::blocking::{TcpListener, TcpStream, UdpSocket};

/// Byte `i` of `/bytes/N`: `i mod 251`, a pattern whose period is prime so
/// that a misplaced chunk shows.
pub fn bytes_pattern(offset: u64, out: &mut [u8]) {
    for (k, b) in out.iter_mut().enumerate() {
        *b = ((offset + k as u64) % 251) as u8;
    }
}

/// Serves one accepted connection.
type Handler = fn(TcpStream, &NetStack) -> io::Result<()>;

/// Starts every service; each accepted connection gets a thread.
/// Starts the services on `addr`; with `any_ip`, the TCP ones listen on
/// every address the stack takes, so each answers as the address its
/// client asked for. (UDP echo stays on `addr`: a reply from a wildcard
/// socket would leave from the stack's own address.)
pub fn start_all(
    net: &NetStack,
    addr: std::net::Ipv4Addr,
    any_ip: bool,
    stop: Arc<AtomicBool>,
    md5_keys: &[(std::net::Ipv4Addr, String)],
    fast_open: usize,
) -> io::Result<Vec<thread::JoinHandle<()>>> {
    let at = |port| SocketAddr::V4(SocketAddrV4::new(addr, port));
    let tcp_addr = if any_ip { std::net::Ipv4Addr::UNSPECIFIED } else { addr };
    let mut threads = Vec::new();
    let services: [(u16, Handler); 4] = [(7, echo), (9, discard), (19, chargen), (80, http)];
    for (port, handler) in services {
        let listener = TcpListener::bind(net, SocketAddrV4::new(tcp_addr, port))
            .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on port {port}: {e}")))?;
        // RFC 2385 keys on the listener: its connections with that peer sign
        // and check every segment.
        for (peer, key) in md5_keys {
            let h = listener.handle();
            net.with_stack(|s, _| s.set_md5_key(h, *peer, Some(key.as_bytes())))
                .map_err(|e| io::Error::other(format!("TCP MD5 key for {peer}: {e}")))?;
        }
        if fast_open > 0 {
            listener.set_fast_open(fast_open)?;
        }
        let (net2, stop2) = (net.clone(), stop.clone());
        threads.push(thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let n = net2.clone();
                        thread::spawn(move || {
                            let _ = handler(conn, &n);
                        });
                    }
                    Err(_) => break,
                }
            }
        }));
    }
    // On shards, only the one the device steers port 7's datagrams to
    // serves UDP echo; the others refuse the port (EADDRNOTAVAIL).
    let owns_udp_echo = net.with_stack(|s, _| s.config().shard.is_none_or(|sh| sh.owns_udp(7)));
    if !owns_udp_echo {
        return Ok(threads);
    }
    let udp = UdpSocket::bind(net, at(7))?;
    let stop2 = stop.clone();
    threads.push(thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while !stop2.load(Ordering::Relaxed) {
            match udp.recv_from(&mut buf) {
                Ok((n, from)) => {
                    let _ = udp.send_to(&buf[..n], from);
                }
                Err(_) => break,
            }
        }
    }));
    Ok(threads)
}

/// RFC 862: everything received is sent back; the sending half closes when
/// the peer's does.
fn echo(mut conn: TcpStream, _: &NetStack) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            break;
        }
        conn.write_all(&buf[..n])?;
    }
    conn.shutdown(Shutdown::Write)
}

/// RFC 863: everything received is thrown away.
fn discard(mut conn: TcpStream, _: &NetStack) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    while conn.read(&mut buf)? > 0 {}
    conn.shutdown(Shutdown::Write)
}

/// RFC 864: lines of 72 printable characters, each starting one later in
/// the 95-character cycle, until the peer closes.
fn chargen(mut conn: TcpStream, _: &NetStack) -> io::Result<()> {
    let chars: Vec<u8> = (32u8..127).collect();
    let mut block = Vec::with_capacity(95 * 74);
    for line in 0..95 {
        for k in 0..72 {
            block.push(chars[(line + k) % 95]);
        }
        block.extend_from_slice(b"\r\n");
    }
    loop {
        conn.write_all(&block)?;
    }
}

/// A small HTTP/1.1 server: `/`, `/bytes/N`, `/echo`, `/stats`, `/whoami`.
fn http(conn: TcpStream, net: &NetStack) -> io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let (method, path, version) = match (parts.next(), parts.next(), parts.next()) {
            (Some(m), Some(p), Some(v)) => (m.to_string(), p.to_string(), v.to_string()),
            _ => {
                respond(&mut out, 400, "text/plain", b"bad request line\n", true)?;
                return Ok(());
            }
        };
        let mut content_length: Option<u64> = None;
        let mut chunked = false;
        let mut expect_continue = false;
        let mut close = version == "HTTP/1.0";
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let Some((name, value)) = h.split_once(':') else { continue };
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
            match name.as_str() {
                "content-length" => content_length = value.parse().ok(),
                "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                "expect" => expect_continue = value.eq_ignore_ascii_case("100-continue"),
                "connection" => close = value.eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
        match (method.as_str(), path.as_str()) {
            ("GET" | "HEAD", "/") => {
                let page = b"<!doctype html><title>ustack</title><h1>Hello from ustack</h1>\n<p>A user-space TCP/IP stack answered this request. Try <a href=\"/stats\">/stats</a>, <a href=\"/bytes/1000\">/bytes/N</a> or POST to /echo.</p>\n";
                respond(&mut out, 200, "text/html", page, close)?;
            }
            // Which address and port the client reached, and from where:
            // with --any-ip, whatever address it asked for.
            ("GET", "/whoami") => {
                let (local, peer) = (out.local_addr()?, out.peer_addr()?);
                respond(&mut out, 200, "text/plain", format!("you reached {local} from {peer}\n").as_bytes(), close)?;
            }
            ("GET", "/stats") => {
                // The stack's counters, and the device's as "device"; on
                // shards, this shard's (the one serving this connection),
                // with "shard": [index, count].
                let stack = net.stats().to_json();
                let shard = net.with_stack(|s, _| s.config().shard);
                let shard = shard.map_or(String::new(), |sh| format!(",\"shard\":[{},{}]", sh.index, sh.count));
                let json = format!(
                    "{},\"device\":{}{shard}}}\n",
                    stack.strip_suffix('}').unwrap_or(&stack),
                    net.device_stats().to_json()
                );
                respond(&mut out, 200, "application/json", json.as_bytes(), close)?;
            }
            ("GET", p) if p.starts_with("/bytes/") => match p["/bytes/".len()..].parse::<u64>() {
                Ok(n) => {
                    write!(
                        out,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {n}\r\n"
                    )?;
                    write!(out, "{}\r\n", if close { "Connection: close\r\n" } else { "" })?;
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut sent = 0u64;
                    while sent < n {
                        let k = (n - sent).min(buf.len() as u64) as usize;
                        bytes_pattern(sent, &mut buf[..k]);
                        out.write_all(&buf[..k])?;
                        sent += k as u64;
                    }
                }
                Err(_) => respond(&mut out, 400, "text/plain", b"/bytes/N needs a number of bytes\n", close)?,
            },
            ("POST" | "PUT", "/echo") => {
                if expect_continue {
                    out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
                }
                if chunked {
                    write!(
                        out,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                    )?;
                    echo_chunked(&mut reader, &mut out)?;
                } else {
                    let n = content_length.unwrap_or(0);
                    write!(
                        out,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {n}\r\n\r\n"
                    )?;
                    let copied = io::copy(&mut (&mut reader).take(n), &mut out)?;
                    if copied < n {
                        return Ok(());
                    }
                }
            }
            _ => respond(&mut out, 404, "text/plain", b"not found\n", close)?,
        }
        if close {
            out.shutdown(Shutdown::Write)?;
            // Read to end so the peer's FIN is seen before we close.
            let _ = io::copy(&mut reader, &mut io::sink());
            return Ok(());
        }
    }
}

fn respond(out: &mut TcpStream, code: u16, ctype: &str, body: &[u8], close: bool) -> io::Result<()> {
    let reason = match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        _ => "Error",
    };
    let conn = if close { "Connection: close\r\n" } else { "" };
    write!(out, "HTTP/1.1 {code} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{conn}\r\n", body.len())?;
    out.write_all(body)
}

/// Copies a chunked request body to a chunked response.
fn echo_chunked(reader: &mut impl BufRead, out: &mut TcpStream) -> io::Result<()> {
    loop {
        let mut size_line = String::new();
        reader.read_line(&mut size_line)?;
        let size = u64::from_str_radix(size_line.trim().split(';').next().unwrap_or("0"), 16)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
        if size == 0 {
            // Trailers end with an empty line.
            loop {
                let mut t = String::new();
                if reader.read_line(&mut t)? == 0 || t.trim().is_empty() {
                    break;
                }
            }
            out.write_all(b"0\r\n\r\n")?;
            return Ok(());
        }
        write!(out, "{size:x}\r\n")?;
        io::copy(&mut reader.by_ref().take(size), out)?;
        out.write_all(b"\r\n")?;
        let mut crlf = String::new();
        reader.read_line(&mut crlf)?;
    }
}
