//! Devices and captures: where frames enter and leave a stack.
//!
//! A [`Device`] moves whole frames (Ethernet for TAP) or packets (IPv4 for
//! TUN) between a stack and the world, without blocking; the driver waits
//! on its [`Device::poll_fd`] and calls it in batches.

pub mod impair;
pub mod pair;
pub mod pcap;
mod steer;
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
    /// The kernel left the transport checksum to be computed, as it does
    /// for a NIC with checksum offload: the sum of the packet's bytes from
    /// `start` on, complemented, belongs at `start + offset`, where the sum
    /// of the pseudo-header already is. The stack does not need it (such
    /// a packet is trusted); a capture does, so that it shows the packet
    /// as sent. [`RxMeta::complete_checksum`] writes it.
    pub checksum_partial: Option<PartialChecksum>,
}

/// Where a checksum left to the "hardware" goes (see [`RxMeta`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartialChecksum {
    pub start: u16,
    pub offset: u16,
}

impl RxMeta {
    /// Completes a checksum the kernel left to be computed, in `packet`
    /// (the bytes received); nothing to do for any other packet.
    pub fn complete_checksum(&self, packet: &mut [u8]) {
        let Some(PartialChecksum { start, offset }) = self.checksum_partial else { return };
        let (start, at) = (usize::from(start), usize::from(start) + usize::from(offset));
        if at + 2 <= packet.len() {
            let c = !ustack_core::wire::checksum::sum(&packet[start..]);
            packet[at..at + 2].copy_from_slice(&c.to_be_bytes());
        }
    }
}

/// What a device counts of its own work (the offloads, mostly).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceStats {
    /// Writes to the device: packets, super-packets included.
    pub tx_packets: u64,
    /// Super-packets handed to the kernel to cut (TSO through the TUN
    /// offload header), and the segments they held.
    pub tx_gso_packets: u64,
    pub tx_gso_segments: u64,
    /// Packets read from the device, and how many of them were GSO
    /// super-packets from the kernel.
    pub rx_packets: u64,
    pub rx_gso_packets: u64,
}

impl DeviceStats {
    /// The counters as a JSON object.
    pub fn to_json(&self) -> String {
        format!(
            "{{\"tx_packets\":{},\"tx_gso_packets\":{},\"tx_gso_segments\":{},\"rx_packets\":{},\"rx_gso_packets\":{}}}",
            self.tx_packets, self.tx_gso_packets, self.tx_gso_segments, self.rx_packets, self.rx_gso_packets
        )
    }
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
    /// congested link would; TCP retransmits. A device may hold the frame
    /// to send it together with the next ones, until [`Device::flush`].
    fn send(&mut self, frame: &[u8]) -> io::Result<()>;
    /// Sends whatever [`Device::send`] held back; the driver calls it after
    /// each batch.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// The device's own counters.
    fn stats(&self) -> DeviceStats {
        DeviceStats::default()
    }
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
    fn flush(&mut self) -> io::Result<()> {
        (**self).flush()
    }
    fn stats(&self) -> DeviceStats {
        (**self).stats()
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
