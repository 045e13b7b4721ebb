//! An in-process pair of devices: what one end sends, the other receives.
//! For tests and examples that need two stacks talking without a kernel.

use super::sys;
use super::{Device, RxMeta};
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};
use ustack_core::stack::Medium;

struct Queue {
    frames: Mutex<VecDeque<Vec<u8>>>,
    /// Readable while frames are queued.
    ready: OwnedFd,
}

pub struct PairDevice {
    name: String,
    medium: Medium,
    mtu: usize,
    rx: Arc<Queue>,
    tx: Arc<Queue>,
    /// Most frames queued one way before sends drop (a link's buffer).
    limit: usize,
}

impl PairDevice {
    /// Two connected devices carrying `medium` frames.
    pub fn pair(medium: Medium, mtu: usize) -> io::Result<(PairDevice, PairDevice)> {
        let a = Arc::new(Queue { frames: Mutex::new(VecDeque::new()), ready: sys::eventfd()? });
        let b = Arc::new(Queue { frames: Mutex::new(VecDeque::new()), ready: sys::eventfd()? });
        let limit = 4096;
        Ok((
            PairDevice { name: "pair0".into(), medium, mtu, rx: a.clone(), tx: b.clone(), limit },
            PairDevice { name: "pair1".into(), medium, mtu, rx: b, tx: a, limit },
        ))
    }
}

impl Device for PairDevice {
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
        self.rx.ready.as_raw_fd()
    }
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<(usize, RxMeta)>> {
        let mut q = self.rx.frames.lock().unwrap_or_else(|e| e.into_inner());
        let Some(frame) = q.pop_front() else {
            sys::eventfd_drain(self.rx.ready.as_raw_fd());
            return Ok(None);
        };
        if q.is_empty() {
            sys::eventfd_drain(self.rx.ready.as_raw_fd());
        }
        let n = frame.len().min(buf.len());
        buf[..n].copy_from_slice(&frame[..n]);
        Ok(Some((n, RxMeta::default())))
    }
    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        let mut q = self.tx.frames.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() < self.limit {
            q.push_back(frame.to_vec());
            sys::eventfd_signal(self.tx.ready.as_raw_fd());
        }
        Ok(())
    }
}
