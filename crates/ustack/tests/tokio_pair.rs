//! The async API between two driver threads over an in-process device
//! pair: hyper, tokio::io::copy and a tokio-util codec run unchanged.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::codec::{Framed, LinesCodec};
use ustack::core::sim::scenario::host_config;
use ustack::core::stack::Medium;
use ustack::phy::pair::PairDevice;
use ustack::tokio::{TcpListener, TcpStream, UdpSocket};
use ustack::{DriverOptions, NetStack};

fn pair() -> (NetStack, NetStack) {
    let (a, b) = PairDevice::pair(Medium::Ethernet, 1500).unwrap();
    (
        NetStack::start(a, host_config(1, 11), DriverOptions::default()).unwrap(),
        NetStack::start(b, host_config(2, 12), DriverOptions::default()).unwrap(),
    )
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hyper_client_and_server() {
    let (client, server) = pair();
    let listener = TcpListener::bind(&server, addr("10.0.0.2:8080")).await.unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let svc = service_fn(|req: Request<hyper::body::Incoming>| async move {
                    let body = req.into_body().collect().await.unwrap().to_bytes();
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from([b"echo: ".as_slice(), &body].concat()))))
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
    let stream = TcpStream::connect(&client, addr("10.0.0.2:8080")).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    for i in 0..20 {
        let body = vec![b'x'; 1000 * i];
        let req = Request::post("http://10.0.0.2:8080/").body(Full::new(Bytes::from(body.clone()))).unwrap();
        // hyper takes one request at a time: wait until the connection has
        // finished with the previous response.
        sender.ready().await.unwrap();
        let resp = sender.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let got = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&got[..6], b"echo: ");
        assert_eq!(&got[6..], &body[..]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_io_copy_echo_and_half_close() {
    let (client, server) = pair();
    let listener = TcpListener::bind(&server, addr("10.0.0.2:7")).await.unwrap();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (mut r, mut w) = stream.into_split();
        tokio::io::copy(&mut r, &mut w).await.unwrap();
        w.shutdown().await.unwrap();
    });
    let stream = TcpStream::connect(&client, addr("10.0.0.2:7")).await.unwrap();
    let (mut r, mut w) = stream.into_split();
    let data: Vec<u8> = (0..2_000_000u32).map(|i| (i % 253) as u8).collect();
    let d2 = data.clone();
    let writer = tokio::spawn(async move {
        w.write_all(&d2).await.unwrap();
        w.shutdown().await.unwrap();
    });
    let mut back = Vec::new();
    r.read_to_end(&mut back).await.unwrap();
    writer.await.unwrap();
    assert!(back == data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_codec_and_udp() {
    let (client, server) = pair();
    let listener = TcpListener::bind(&server, addr("10.0.0.2:9000")).await.unwrap();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut lines = Framed::new(stream, LinesCodec::new());
        while let Some(Ok(line)) = lines.next().await {
            lines.send(line.to_uppercase()).await.unwrap();
        }
    });
    let stream = TcpStream::connect(&client, addr("10.0.0.2:9000")).await.unwrap();
    let mut lines = Framed::new(stream, LinesCodec::new());
    for word in ["hello", "user-space", "tcp"] {
        lines.send(word).await.unwrap();
        assert_eq!(lines.next().await.unwrap().unwrap(), word.to_uppercase());
    }
    let u1 = UdpSocket::bind(&server, addr("10.0.0.2:5000")).await.unwrap();
    let u2 = UdpSocket::bind(&client, addr("0.0.0.0:0")).await.unwrap();
    u2.send_to(b"datagram", addr("10.0.0.2:5000")).await.unwrap();
    let mut buf = [0u8; 32];
    let (n, from) = u1.recv_from(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"datagram");
    assert_eq!(from.ip().to_string(), "10.0.0.1");
    let e = TcpStream::connect(&client, addr("10.0.0.2:1")).await.err().unwrap();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
}

/// The async `TcpSocket`: options and a source port before the SYN, then
/// `connect` resolves to a stream that has them; `listen` gives a listener
/// whose accepted connections inherit its options; a refused connect is
/// ECONNREFUSED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_socket_sets_options_before_connecting_or_listening() {
    use ustack::tokio::TcpSocket;
    let (client, server) = pair();
    let l = TcpSocket::new(&server).unwrap();
    l.set_tos(0x28).unwrap();
    l.bind(addr("10.0.0.2:7")).unwrap();
    let listener = l.listen(8).unwrap();
    let s = TcpSocket::new(&client).unwrap();
    s.set_ttl(17).unwrap();
    s.set_nodelay(true).unwrap();
    s.bind(addr("10.0.0.1:41000")).unwrap();
    let mut stream = s.connect(addr("10.0.0.2:7")).await.unwrap();
    assert_eq!(stream.local_addr().unwrap(), addr("10.0.0.1:41000"));
    assert_eq!(stream.ttl().unwrap(), 17);
    let (mut accepted, peer) = listener.accept().await.unwrap();
    assert_eq!(peer, addr("10.0.0.1:41000"));
    assert_eq!(accepted.tos().unwrap(), 0x28);
    stream.write_all(b"hello").await.unwrap();
    let mut buf = [0u8; 5];
    accepted.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"hello");
    let refused = TcpSocket::new(&client).unwrap().connect(addr("10.0.0.2:9")).await;
    assert_eq!(refused.unwrap_err().kind(), std::io::ErrorKind::ConnectionRefused);
}
