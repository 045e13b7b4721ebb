//! The driver: one thread that owns a device and runs a [`Stack`].
//!
//! The thread sleeps in `poll(2)` until the device has frames, the
//! stack's next timer is due, or an API call kicks it (an eventfd). Then
//! it feeds frames in, runs timers, sends what the stack has to send, and
//! tells waiting API calls which sockets changed. An idle stack costs no
//! CPU: nothing runs until one of the three happens.
//!
//! API calls reach the stack through a mutex held only for the duration of
//! one non-blocking socket call; a call that would block waits on a
//! condition variable (blocking API) or registers a waker (async API).

use crate::phy::pcap::{LinkType, PcapWriter};
use crate::phy::{Device, DeviceStats, sys};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::Waker;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};
use ustack_core::stack::Medium;
use ustack_core::time::Instant;
use ustack_core::{SocketHandle, Stack, StackConfig};

/// Frames read from the device per wakeup before the stack transmits.
const RX_BATCH: usize = 64;

/// The stack and what waits on it.
pub(crate) struct Inner {
    pub(crate) stack: Stack,
    /// Async tasks waiting for a socket's readiness to change.
    pub(crate) wakers: HashMap<SocketHandle, Vec<Waker>>,
    /// The device's counters as of the driver's last round.
    pub(crate) device: DeviceStats,
}

pub(crate) struct Shared {
    pub(crate) inner: Mutex<Inner>,
    /// Signalled whenever any socket's readiness changes.
    pub(crate) changed: Condvar,
    /// Written to wake the driver thread.
    kick: OwnedFd,
    stop: AtomicBool,
    epoch: std::time::Instant,
}

impl Shared {
    /// The stack's clock: time since the driver started.
    pub(crate) fn now(&self) -> Instant {
        Instant::from_nanos(self.epoch.elapsed().as_nanos() as u64)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the driver so it transmits what a call queued.
    pub(crate) fn kick(&self) {
        sys::eventfd_signal(self.kick.as_raw_fd());
    }
}

/// Options for [`NetStack::start`].
#[derive(Default)]
pub struct DriverOptions {
    /// Write every frame received and sent to this pcap file.
    pub pcap: Option<std::path::PathBuf>,
}

/// A running stack: the handle applications use to open sockets.
/// Cloning it is cheap; the driver stops when the last clone is dropped
/// or [`NetStack::shutdown`] is called.
#[derive(Clone)]
pub struct NetStack {
    pub(crate) shared: Arc<Shared>,
    driver: Arc<DriverThread>,
}

struct DriverThread {
    shared: Arc<Shared>,
    handle: Mutex<Option<JoinHandle<io::Result<()>>>>,
}

impl Drop for DriverThread {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.kick();
        if let Some(h) = self.handle.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = h.join();
        }
    }
}

impl NetStack {
    /// Starts a driver thread for `device` with a stack configured by
    /// `config` (its medium and MTU are taken from the device).
    pub fn start(device: impl Device + 'static, mut config: StackConfig, opts: DriverOptions) -> io::Result<NetStack> {
        config.medium = device.medium();
        config.mtu = device.mtu();
        // The driver's timers fire to the millisecond (poll(2)): pace in
        // bursts of a millisecond, unless the caller chose otherwise.
        if config.tcp.pacing_quantum.is_zero() {
            config.tcp.pacing_quantum = ustack_core::time::Duration::from_millis(1);
        }
        let pcap = match &opts.pcap {
            Some(path) => {
                let link = if device.medium() == Medium::Ethernet { LinkType::Ethernet } else { LinkType::Raw };
                let f = File::create(path).map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot create pcap file {}: {e}", path.display()))
                })?;
                Some(PcapWriter::new(BufWriter::new(f), link)?)
            }
            None => None,
        };
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                stack: Stack::new(config),
                wakers: HashMap::new(),
                device: DeviceStats::default(),
            }),
            changed: Condvar::new(),
            kick: sys::eventfd()?,
            stop: AtomicBool::new(false),
            epoch: std::time::Instant::now(),
        });
        let s2 = shared.clone();
        let handle = std::thread::Builder::new()
            .name(format!("ustack-{}", device.name()))
            .spawn(move || run(s2, Box::new(device), pcap))?;
        let driver = Arc::new(DriverThread { shared: shared.clone(), handle: Mutex::new(Some(handle)) });
        Ok(NetStack { shared, driver })
    }

    /// Runs `f` on the stack (for calls the socket types do not wrap),
    /// then lets the driver transmit whatever it queued.
    pub fn with_stack<R>(&self, f: impl FnOnce(&mut Stack, Instant) -> R) -> R {
        let now = self.shared.now();
        let r = {
            let mut g = self.shared.lock();
            f(&mut g.stack, now)
        };
        self.shared.kick();
        r
    }

    /// The stack's counters.
    pub fn stats(&self) -> ustack_core::stats::Stats {
        self.shared.lock().stack.stats().clone()
    }

    /// The device's counters (offloads), as of the driver's last round.
    pub fn device_stats(&self) -> DeviceStats {
        self.shared.lock().device
    }

    /// Stops the driver thread and waits for it. Sockets still open are
    /// left as they are; close them first for a clean end.
    pub fn shutdown(self) -> io::Result<()> {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.kick();
        let h = self.driver.handle.lock().unwrap_or_else(|e| e.into_inner()).take();
        match h {
            Some(h) => h.join().unwrap_or_else(|_| Err(io::Error::other("driver thread panicked"))),
            None => Ok(()),
        }
    }

    /// Runs `f` until it is ready, waiting for socket changes in between,
    /// until `deadline`. `f` returns `None` to keep waiting.
    pub(crate) fn wait<R>(
        &self,
        deadline: Option<std::time::Instant>,
        mut f: impl FnMut(&mut Stack) -> Option<io::Result<R>>,
    ) -> io::Result<R> {
        let mut g = self.shared.lock();
        loop {
            if let Some(r) = f(&mut g.stack) {
                drop(g);
                self.shared.kick();
                return r;
            }
            // Whatever the call queued (a SYN, a window update) goes out
            // while we wait.
            self.shared.kick();
            if self.shared.stop.load(Ordering::SeqCst) {
                return Err(io::Error::new(io::ErrorKind::NotConnected, "the stack has been shut down"));
            }
            g = match deadline {
                None => self.shared.changed.wait(g).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return Err(io::Error::new(io::ErrorKind::WouldBlock, "timed out"));
                    }
                    self.shared.changed.wait_timeout(g, left).unwrap_or_else(|e| e.into_inner()).0
                }
            };
        }
    }
}

/// The driver loop.
fn run(
    shared: Arc<Shared>,
    mut device: Box<dyn Device>,
    mut pcap: Option<PcapWriter<BufWriter<File>>>,
) -> io::Result<()> {
    let mut buf = vec![0u8; 65536 + 14];
    let fds = [device.poll_fd(), shared.kick.as_raw_fd()];
    let wall_epoch = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let stamp = |t: Instant| Instant::from_nanos(wall_epoch.as_nanos() as u64 + t.as_nanos());
    let mut result = Ok(());
    while !shared.stop.load(Ordering::SeqCst) {
        let timeout_ms = {
            let mut g = shared.lock();
            let now = shared.now();
            let stack_wait = g.stack.poll_timeout().map(|t| t.saturating_duration_since(now));
            let dev_wait = device.poll_timeout().map(|t| t.saturating_duration_since(std::time::Instant::now()));
            match [stack_wait, dev_wait].into_iter().flatten().min() {
                None => -1,
                // Round up so we do not wake a hair early and spin.
                Some(wait) => wait.as_micros().div_ceil(1000).min(60_000) as i32,
            }
        };
        let ready = sys::poll_readable(&fds, timeout_ms)?;
        if ready[1] {
            sys::eventfd_drain(fds[1]);
        }
        let mut g = shared.lock();
        let now = shared.now();
        if let Err(e) = device.handle_timeout() {
            result = Err(e);
            break;
        }
        // Read even when the descriptor did not poll readable: a device
        // may hold frames back and release them on time alone.
        for _ in 0..RX_BATCH {
            match device.recv(&mut buf) {
                Ok(Some((n, meta))) => {
                    if let Some(p) = pcap.as_mut() {
                        meta.complete_checksum(&mut buf[..n]);
                        let _ = p.write_packet(stamp(now), &buf[..n]);
                    }
                    g.stack.handle_input_trusted(now, &buf[..n], meta.checksum_trusted);
                }
                Ok(None) => break,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        g.stack.handle_timeout(now);
        while let Some(n) = g.stack.poll_transmit(now, &mut buf) {
            if let Some(p) = pcap.as_mut() {
                let _ = p.write_packet(stamp(now), &buf[..n]);
            }
            if let Err(e) = device.send(&buf[..n]) {
                result = Err(e);
                break;
            }
        }
        // What the device held to send together (TSO) goes now.
        if let Err(e) = device.flush() {
            result = Err(e);
        }
        g.device = device.stats();
        let woken = g.stack.take_woken();
        if !woken.is_empty() {
            let mut wakers = Vec::new();
            for h in woken {
                if let Some(ws) = g.wakers.remove(&h) {
                    wakers.extend(ws);
                }
            }
            drop(g);
            shared.changed.notify_all();
            for w in wakers {
                w.wake();
            }
        }
        if result.is_err() {
            break;
        }
    }
    if let Some(mut p) = pcap {
        let _ = p.flush();
    }
    // Anyone still waiting learns the stack is gone.
    shared.stop.store(true, Ordering::SeqCst);
    shared.changed.notify_all();
    let wakers: Vec<Waker> = shared.lock().wakers.drain().flat_map(|(_, v)| v).collect();
    for w in wakers {
        w.wake();
    }
    result
}

/// How long until `deadline`, for socket timeouts.
pub(crate) fn deadline_after(timeout: Option<Duration>) -> Option<std::time::Instant> {
    timeout.map(|t| std::time::Instant::now() + t)
}
