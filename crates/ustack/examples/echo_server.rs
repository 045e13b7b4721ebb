//! An echo server on a TUN device with the blocking API.
//!
//! ```sh
//! sudo cargo run -p ustack --example echo_server -- ustack0 10.7.0.2/24 10.7.0.1/24
//! # in another terminal:
//! nc 10.7.0.2 7
//! ```

use std::io::{Read, Write};
use std::process::Command;
use ustack::blocking::TcpListener;
use ustack::phy::tun::{TunDevice, TunOptions};
use ustack::{DriverOptions, NetStack, StackConfig};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (dev, addr, host) = match &args[1..] {
        [d, a, h] => (d.clone(), a.clone(), h.clone()),
        _ => {
            eprintln!("usage: echo_server DEVICE USTACK_ADDR/PREFIX HOST_ADDR/PREFIX");
            std::process::exit(2);
        }
    };
    let tun = TunDevice::open(&TunOptions { name: dev.clone(), tap: false, mtu: 1500, offload: true })?;
    // Give the kernel's side its address and bring the link up.
    Command::new("ip").args(["addr", "add", &host, "dev", &dev]).status()?;
    Command::new("ip").args(["link", "set", &dev, "up"]).status()?;
    let cidr = addr.parse().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{e}")))?;
    let net = NetStack::start(tun, StackConfig::ip(cidr), DriverOptions::default())?;
    let ip = addr.split('/').next().unwrap_or_default();
    let listener = TcpListener::bind(&net, format!("{ip}:7").parse::<std::net::SocketAddr>().unwrap())?;
    eprintln!("echo server on {ip}:7");
    for conn in listener.incoming() {
        let mut conn = conn?;
        std::thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            while let Ok(n) = conn.read(&mut buf) {
                if n == 0 || conn.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
    }
    Ok(())
}
