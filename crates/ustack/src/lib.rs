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

/// IP_TTL and IP_TOS accessors, the same on every socket type of both
/// APIs: each forwards to its shared socket state (`self.inner`).
macro_rules! ip_header_options {
    () => {
        /// IP_TTL of the socket's packets (1..=255; 0 or above 255 is InvalidInput).
        pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
            self.inner.set_ttl(ttl)
        }
        /// IP_TTL in use: the stack's configured TTL unless set.
        pub fn ttl(&self) -> io::Result<u32> {
            self.inner.ttl()
        }
        /// IP_TOS of the socket's packets: UDP sends the whole byte, TCP its
        /// DSCP (the ECN bits are TCP's own).
        pub fn set_tos(&self, tos: u8) -> io::Result<()> {
            self.inner.set_tos(tos)
        }
        /// IP_TOS as set (0 by default).
        pub fn tos(&self) -> io::Result<u8> {
            self.inner.tos()
        }
    };
}

pub mod blocking;
pub mod driver;
pub mod phy;
#[cfg(feature = "tokio")]
pub mod tokio;

pub use driver::{DriverOptions, NetStack};
pub use ustack_core as core;
pub use ustack_core::{Stack, StackConfig};
