//! An HTTP server with hyper over `ustack::tokio`, on a TUN device.
//!
//! ```sh
//! sudo cargo run -p ustack --features tokio --example hyper_server -- ustack0 10.7.0.2/24 10.7.0.1/24
//! curl http://10.7.0.2:8080/
//! ```

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::process::Command;
use ustack::phy::tun::{TunDevice, TunOptions};
use ustack::tokio::TcpListener;
use ustack::{DriverOptions, NetStack, StackConfig};

async fn hello(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from(format!("hello from hyper over ustack: {}\n", req.uri())))))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, dev, addr, host] = &args[..] else {
        eprintln!("usage: hyper_server DEVICE USTACK_ADDR/PREFIX HOST_ADDR/PREFIX");
        std::process::exit(2);
    };
    let tun = TunDevice::open(&TunOptions { name: dev.clone(), tap: false, mtu: 1500, offload: true })?;
    Command::new("ip").args(["addr", "add", host, "dev", dev]).status()?;
    Command::new("ip").args(["link", "set", dev, "up"]).status()?;
    let cidr = addr.parse().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{e}")))?;
    let net = NetStack::start(tun, StackConfig::ip(cidr), DriverOptions::default())?;
    let ip = addr.split('/').next().unwrap_or_default();
    let listener = TcpListener::bind(&net, format!("{ip}:8080").parse::<std::net::SocketAddr>().unwrap()).await?;
    eprintln!("hyper on http://{ip}:8080/");
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(hello))
                .await;
        });
    }
}
