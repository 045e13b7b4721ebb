//! TUN (IPv4 packets) and TAP (Ethernet frames) devices on Linux.
//!
//! [`TunDevice::open`] attaches to the interface of that name, creating it
//! if missing. An interface ustack created disappears when ustack exits
//! (it is not made persistent); one that existed is left as it was.
//!
//! When the kernel offers `IFF_VNET_HDR`, each packet carries a
//! virtio-net header and ustack enables checksum offload (`TUN_F_CSUM`):
//! the kernel may then hand over packets whose checksum is left to be
//! computed, which ustack trusts instead of verifying, and GSO super-packets
//! (`TUN_F_TSO4`), which ustack's TCP takes as one large segment.

use super::sys;
use super::{Device, RxMeta};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use ustack_core::stack::Medium;

/// Size of `struct virtio_net_hdr` (without `num_buffers`).
pub const VNET_HDR_LEN: usize = 10;
const VIRTIO_NET_HDR_F_NEEDS_CSUM: u8 = 1;
const VIRTIO_NET_HDR_F_DATA_VALID: u8 = 2;

/// How to open a device.
#[derive(Clone, Debug)]
pub struct TunOptions {
    pub name: String,
    /// TAP (Ethernet frames, ARP) instead of TUN (IP packets).
    pub tap: bool,
    pub mtu: usize,
    /// Use the virtio-net header and offloads when the kernel offers them.
    pub offload: bool,
}

pub struct TunDevice {
    file: File,
    name: String,
    medium: Medium,
    mtu: usize,
    vnet: bool,
    created: bool,
    scratch: Vec<u8>,
}

impl TunDevice {
    pub fn open(opts: &TunOptions) -> io::Result<TunDevice> {
        if !Path::new("/dev/net/tun").exists() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "/dev/net/tun does not exist: load the tun module (modprobe tun)",
            ));
        }
        let existed = Path::new("/sys/class/net").join(&opts.name).exists();
        let base = if opts.tap { sys::IFF_TAP } else { sys::IFF_TUN } | sys::IFF_NO_PI;
        let (file, name, vnet) = if opts.offload {
            match sys::open_tun(&opts.name, base | sys::IFF_VNET_HDR) {
                Ok((f, n)) => {
                    let features = sys::tun_features(f.as_raw_fd()).unwrap_or(0);
                    let ok = features & sys::IFF_VNET_HDR as libc::c_uint != 0
                        && sys::set_vnet_hdr_size(f.as_raw_fd(), VNET_HDR_LEN as libc::c_int).is_ok()
                        && sys::set_offload(f.as_raw_fd(), sys::TUN_F_CSUM | sys::TUN_F_TSO4).is_ok();
                    if ok {
                        (f, n, true)
                    } else {
                        drop(f);
                        let (f, n) = sys::open_tun(&opts.name, base).map_err(|e| explain(e, &opts.name))?;
                        (f, n, false)
                    }
                }
                // The interface exists without the header flag, or the
                // kernel lacks it: fall back to plain packets.
                Err(_) => {
                    let (f, n) = sys::open_tun(&opts.name, base).map_err(|e| explain(e, &opts.name))?;
                    (f, n, false)
                }
            }
        } else {
            let (f, n) = sys::open_tun(&opts.name, base).map_err(|e| explain(e, &opts.name))?;
            (f, n, false)
        };
        let medium = if opts.tap { Medium::Ethernet } else { Medium::Ip };
        Ok(TunDevice {
            file,
            name,
            medium,
            mtu: opts.mtu,
            vnet,
            created: !existed,
            scratch: vec![0u8; 65536 + VNET_HDR_LEN + 14],
        })
    }

    /// True when packets carry the virtio-net header (offloads on).
    pub fn offload(&self) -> bool {
        self.vnet
    }

    /// True when this process created the interface (it goes away with us).
    pub fn created(&self) -> bool {
        self.created
    }
}

fn explain(e: io::Error, name: &str) -> io::Error {
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "cannot open TUN/TAP device `{name}`: permission denied; run as root (sudo) or give the binary CAP_NET_ADMIN"
            ),
        ),
        Some(libc::EBUSY) => io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("device `{name}` is busy: another program has it open, or it is a different type (TUN vs TAP)"),
        ),
        Some(libc::EINVAL) => io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("device `{name}` exists but is not a TUN/TAP device of the requested type; choose another name"),
        ),
        _ => io::Error::new(e.kind(), format!("cannot open TUN/TAP device `{name}`: {e}")),
    }
}

impl Device for TunDevice {
    fn medium(&self) -> Medium {
        self.medium
    }
    fn mtu(&self) -> usize {
        self.mtu
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn poll_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<(usize, RxMeta)>> {
        if !self.vnet {
            return match self.file.read(buf) {
                Ok(n) => Ok(Some((n, RxMeta::default()))),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
                Err(e) => Err(e),
            };
        }
        let n = match self.file.read(&mut self.scratch) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(e),
        };
        if n < VNET_HDR_LEN {
            return Ok(Some((0, RxMeta::default())));
        }
        let flags = self.scratch[0];
        let len = (n - VNET_HDR_LEN).min(buf.len());
        buf[..len].copy_from_slice(&self.scratch[VNET_HDR_LEN..VNET_HDR_LEN + len]);
        if flags & VIRTIO_NET_HDR_F_NEEDS_CSUM != 0 {
            // The kernel left the transport checksum to the "hardware": the
            // field holds the pseudo-header sum, and the sum over the data
            // from csum_start completes it, as a NIC would.
            let start = u16::from_le_bytes([self.scratch[6], self.scratch[7]]) as usize;
            let offset = u16::from_le_bytes([self.scratch[8], self.scratch[9]]) as usize;
            if start + offset + 2 <= len {
                let sum = ustack_core::wire::checksum::sum(&buf[start..len]);
                let c = !sum;
                buf[start + offset..start + offset + 2].copy_from_slice(&c.to_be_bytes());
            }
        }
        // Either way the kernel vouches for the packet: it came from this
        // host (NEEDS_CSUM) or the kernel verified it (DATA_VALID).
        let trusted = flags & (VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID) != 0;
        Ok(Some((len, RxMeta { checksum_trusted: trusted })))
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        let r = if self.vnet {
            // A zeroed header: no offload asked, the packet is complete.
            let total = VNET_HDR_LEN + frame.len();
            if self.scratch.len() < total {
                self.scratch.resize(total, 0);
            }
            self.scratch[..VNET_HDR_LEN].fill(0);
            self.scratch[VNET_HDR_LEN..total].copy_from_slice(frame);
            self.file.write(&self.scratch[..total])
        } else {
            self.file.write(frame)
        };
        match r {
            Ok(_) => Ok(()),
            // A full queue drops the packet, like a busy link.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }
}
