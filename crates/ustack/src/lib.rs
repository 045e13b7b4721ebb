//! ustack shell: devices, the driver loop and std-like socket APIs over
//! [`ustack_core`].
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use ustack::blocking::TcpListener;
//! use ustack::phy::tun::{TunDevice, TunOptions};
//! use ustack::{DriverOptions, NetStack, StackConfig};
//!
//! let dev = TunDevice::open(&TunOptions { name: "ustack0".into(), tap: false, mtu: 1500, offload: true })?;
//! let net = NetStack::start(dev, StackConfig::ip("10.7.0.2/24".parse().unwrap()), DriverOptions::default())?;
//! let listener = TcpListener::bind(&net, "10.7.0.2:7".parse::<std::net::SocketAddr>().unwrap())?;
//! let (mut conn, _) = listener.accept()?;
//! let mut buf = [0u8; 1024];
//! let n = conn.read(&mut buf)?;
//! conn.write_all(&buf[..n])?;
//! # Ok::<(), std::io::Error>(())
//! ```

pub mod blocking;
pub mod driver;
pub mod phy;
#[cfg(feature = "tokio")]
pub mod tokio;

pub use driver::{DriverOptions, NetStack};
pub use ustack_core as core;
pub use ustack_core::{Stack, StackConfig};
