//! Devices and captures: where frames enter and leave a stack.
//!
//! A [`Device`] moves whole frames (Ethernet for TAP) or packets (IPv4 for
//! TUN) between a stack and the world, without blocking; the driver waits
//! on its [`Device::poll_fd`] and calls it in batches.

pub mod impair;
pub mod pair;
pub mod pcap;
pub(crate) mod sys;
pub mod tun;

use std::io;
use std::os::fd::RawFd;
use ustack_core::stack::Medium;

/// What a device says about a frame it received.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxMeta {
    /// The device (the kernel, through the TUN offload header) vouches for
    /// the transport checksum or has left it to be computed: do not verify.
    pub checksum_trusted: bool,
}

/// A network device.
pub trait Device: Send {
    fn medium(&self) -> Medium;
    /// The IP MTU (bytes of IP packet, without the Ethernet header).
    fn mtu(&self) -> usize;
    /// Receives one frame into `buf` without blocking; `Ok(None)` when none
    /// is waiting.
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<(usize, RxMeta)>>;
    /// Sends one frame without blocking. A full device drops it, as a
    /// congested link would; TCP retransmits.
    fn send(&mut self, frame: &[u8]) -> io::Result<()>;
    /// A descriptor that polls readable when frames are waiting.
    fn poll_fd(&self) -> RawFd;
    /// The device's name, for messages.
    fn name(&self) -> &str;
    /// When the device itself next has work (frames it holds back).
    fn poll_timeout(&self) -> Option<std::time::Instant> {
        None
    }
    /// Lets the device release frames whose time has come.
    fn handle_timeout(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<D: Device + ?Sized> Device for Box<D> {
    fn medium(&self) -> Medium {
        (**self).medium()
    }
    fn mtu(&self) -> usize {
        (**self).mtu()
    }
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<(usize, RxMeta)>> {
        (**self).recv(buf)
    }
    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        (**self).send(frame)
    }
    fn poll_fd(&self) -> RawFd {
        (**self).poll_fd()
    }
    fn name(&self) -> &str {
        (**self).name()
    }
    fn poll_timeout(&self) -> Option<std::time::Instant> {
        (**self).poll_timeout()
    }
    fn handle_timeout(&mut self) -> io::Result<()> {
        (**self).handle_timeout()
    }
}
