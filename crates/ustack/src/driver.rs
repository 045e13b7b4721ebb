//! The driver: one thread that owns a device and runs a [`Stack`].
//!
//! The thread sleeps in `poll(2)` until the device has frames, the
//! stack's next timer is due, or an API call kicks it (an eventfd). Then
//! it feeds frames in, runs timers, sends what the stack has to send, and
//! tells waiting API calls which sockets changed. An idle stack costs no
//! CPU: nothing runs until one of the three happens.
//!
//! API calls reach the stack through a mutex held only for the duration of
//! one non-blocking socket call; a call that would block registers a waker
//! for its socket and parks its thread (blocking API) or returns pending
//! (async API). Only the waiters of a socket that changed are woken, so a
//! thousand threads blocked on a thousand idle sockets cost nothing when
//! one socket is busy.
//! What a call queues (data, a FIN, a window update) is sent by the calling
//! thread before it lets go of the lock, as a kernel sends from the system
//! call: the driver is woken only when its own wakeup must come sooner (the
//! call set an earlier timer) or a write failed.
//!
//! A thread blocked in a call also waits on the device, one thread at a
//! time, and when frames arrive it reads them into the stack itself, so
//! that a reply reaches it with one wakeup rather than the driver's and
//! then its own; a thread whose wakeups bring nothing for its socket
//! leaves the device to the driver (see [`NetStack::wait`]).

use crate::phy::pcap::{LinkType, PcapWriter};
use crate::phy::{Device, DeviceStats, sys};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};
use ustack_core::stack::Medium;
use ustack_core::time::Instant;
use ustack_core::{SocketHandle, Stack, StackConfig};

/// Frames read from the device per wakeup before the stack transmits.
const RX_BATCH: usize = 64;

/// The stack, its device, and what waits on them.
pub(crate) struct Inner {
    pub(crate) stack: Stack,
    /// Async tasks and parked threads waiting for a socket's readiness to
    /// change.
    pub(crate) wakers: HashMap<SocketHandle, Vec<Waker>>,
    device: Box<dyn Device>,
    pcap: Option<PcapWriter<BufWriter<File>>>,
    /// One frame, on its way in or out.
    buf: Vec<u8>,
    /// When the driver wakes by itself next (`None`: only for the device
    /// or a kick), as it decided before its last sleep.
    wakes_at: Option<std::time::Instant>,
    /// A write to the device that failed in a socket call; the driver
    /// stops with it.
    error: Option<io::Error>,
    /// Wall-clock time of the stack's epoch, for capture timestamps.
    wall_epoch: Duration,
}

impl Inner {
    /// A capture timestamp for stack time `t`.
    fn stamp(&self, t: Instant) -> Instant {
        Instant::from_nanos(self.wall_epoch.as_nanos() as u64 + t.as_nanos())
    }

    /// Sends everything the stack has queued, then what the device holds
    /// back to send together (TSO).
    fn transmit(&mut self, now: Instant) -> io::Result<()> {
        let stamp = self.stamp(now);
        let Inner { stack, device, pcap, buf, .. } = self;
        while let Some(n) = stack.poll_transmit(now, buf) {
            if let Some(p) = pcap.as_mut() {
                let _ = p.write_packet(stamp, &buf[..n]);
            }
            device.send(&buf[..n])?;
        }
        device.flush()
    }

    /// The earliest time the stack or the device needs attention.
    fn next_deadline(&mut self, epoch: std::time::Instant) -> Option<std::time::Instant> {
        let stack = self.stack.poll_timeout().map(|t| epoch + Duration::from_nanos(t.as_nanos()));
        [stack, self.device.poll_timeout()].into_iter().flatten().min()
    }

    /// Takes the wakers of the sockets the stack reports changed.
    fn take_woken(&mut self) -> Vec<Waker> {
        let mut wakers = Vec::new();
        for h in self.stack.take_woken() {
            if let Some(ws) = self.wakers.remove(&h) {
                wakers.extend(ws);
            }
        }
        wakers
    }
}

pub(crate) struct Shared {
    pub(crate) inner: Mutex<Inner>,
    /// Written to wake the driver thread.
    kick: OwnedFd,
    /// The device's descriptor, for threads that wait on it.
    device_fd: RawFd,
    /// A thread blocked in a socket call is waiting on the device too
    /// (see [`NetStack::wait`]); one at a time.
    reader_polls: AtomicBool,
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

    /// Wakes the driver.
    pub(crate) fn kick(&self) {
        sys::eventfd_signal(self.kick.as_raw_fd());
    }

    /// After a socket call, with the lock still held: sends what the call
    /// queued, tells waiters of the sockets it changed, and wakes the
    /// driver if it must come sooner than it planned (the call set a timer
    /// that, rounded as the driver rounds, is due before its planned
    /// wakeup) or stop (a write failed). Returns the wakers (async
    /// tasks, parked threads) to wake, best after the lock is released.
    pub(crate) fn settle(&self, g: &mut Inner) -> Vec<Waker> {
        let mut kick = false;
        if let Err(e) = g.transmit(self.now()) {
            g.error.get_or_insert(e);
            kick = true;
        }
        if let Some(t) = g.next_deadline(self.epoch) {
            kick |= wakes_sooner(std::time::Instant::now(), t, g.wakes_at);
        }
        let wakers = g.take_woken();
        if kick {
            self.kick();
        }
        wakers
    }

    /// Reads what the device holds (a batch) into the stack, runs the
    /// timers that are due, and sends what that queued: a driver round,
    /// run by the driver or by a thread that waited on the device itself.
    /// Returns the wakers to wake.
    fn receive(&self, g: &mut Inner) -> io::Result<Vec<Waker>> {
        let now = self.now();
        g.device.handle_timeout()?;
        // Read even when the descriptor did not poll readable: a device
        // may hold frames back and release them on time alone.
        for _ in 0..RX_BATCH {
            let stamp = g.stamp(now);
            let Inner { stack, device, pcap, buf, .. } = &mut *g;
            match device.recv(buf)? {
                Some((n, meta)) => {
                    if let Some(p) = pcap.as_mut() {
                        meta.complete_checksum(&mut buf[..n]);
                        let _ = p.write_packet(stamp, &buf[..n]);
                    }
                    stack.handle_input_trusted(now, &buf[..n], meta.checksum_trusted);
                }
                None => break,
            }
        }
        g.stack.handle_timeout(now);
        g.transmit(now)?;
        Ok(g.take_woken())
    }

    /// [`Shared::settle`], then releases the lock and wakes the wakers.
    pub(crate) fn settle_and_unlock(&self, mut g: MutexGuard<'_, Inner>) {
        let wakers = self.settle(&mut g);
        drop(g);
        for w in wakers {
            w.wake();
        }
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

/// A seed from the operating system's random source (never 0).
fn os_seed() -> io::Result<u64> {
    let mut b = [0u8; 8];
    File::open("/dev/urandom")
        .and_then(|mut f| io::Read::read_exact(&mut f, &mut b))
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read /dev/urandom for the stack's seed: {e}")))?;
    Ok(u64::from_le_bytes(b).max(1))
}

impl NetStack {
    /// Starts a driver thread for `device` with a stack configured by
    /// `config` (its medium and MTU are taken from the device).
    ///
    /// A `config.seed` of 0, the default, is replaced by one from the
    /// operating system: on a real network the stack's secrets (the ISN
    /// key of RFC 6528, the SYN and Fast Open cookie keys, the ephemeral
    /// port offsets) must not be ones anybody can compute. Give a seed of
    /// your own only for a run you mean to reproduce.
    pub fn start(device: impl Device + 'static, mut config: StackConfig, opts: DriverOptions) -> io::Result<NetStack> {
        if config.seed == 0 {
            config.seed = os_seed()?;
        }
        let name = device.name().to_string();
        let device_fd = device.poll_fd();
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
                device: Box::new(device),
                pcap,
                buf: vec![0u8; 65536 + 14],
                wakes_at: None,
                error: None,
                wall_epoch: SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default(),
            }),
            kick: sys::eventfd()?,
            device_fd,
            reader_polls: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            epoch: std::time::Instant::now(),
        });
        let s2 = shared.clone();
        let handle = std::thread::Builder::new().name(format!("ustack-{name}")).spawn(move || run(s2))?;
        let driver = Arc::new(DriverThread { shared: shared.clone(), handle: Mutex::new(Some(handle)) });
        Ok(NetStack { shared, driver })
    }

    /// Starts one stack per device, the shards of one address on a
    /// multi-queue device ([`crate::phy::tun::TunDevice::open_queues`]):
    /// shard `i` runs on `devices[i]` with its own driver thread, and
    /// opens connections and UDP ports only from ports the device steers
    /// back to it ([`ustack_core::stack::Shard`]). Every shard should
    /// listen on a server's port (with a thread accepting on each), since
    /// a connection the peer opens lands on the shard its ports choose,
    /// as with one `SO_REUSEPORT` listener per thread. A capture, if
    /// asked for, is one file per shard: `NAME.pcap` becomes
    /// `NAME-0.pcap`, `NAME-1.pcap`, ... One device is one stack, as
    /// [`NetStack::start`] starts it: not a shard.
    pub fn start_shards<D: Device + 'static>(
        mut devices: Vec<D>,
        mut config: StackConfig,
        opts: DriverOptions,
    ) -> io::Result<Vec<NetStack>> {
        // (As `start` does, before each shard's seed is derived from it.)
        if config.seed == 0 {
            config.seed = os_seed()?;
        }
        let count = u16::try_from(devices.len())
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "shards need 1 to 65535 devices"))?;
        if count == 1 {
            let device = devices.pop().expect("one device");
            return Ok(vec![NetStack::start(device, config, opts)?]);
        }
        let mut shards = Vec::with_capacity(devices.len());
        for (i, device) in devices.into_iter().enumerate() {
            let mut cfg = config.clone();
            cfg.shard = ustack_core::stack::Shard::new(i as u16, count);
            // Each shard its own secrets: ISN keys, port offsets.
            cfg.seed = config.seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let pcap = opts.pcap.as_ref().map(|p| {
                let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                let ext = p.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
                p.with_file_name(format!("{stem}-{i}{ext}"))
            });
            shards.push(NetStack::start(device, cfg, DriverOptions { pcap })?);
        }
        Ok(shards)
    }

    /// Runs `f` on the stack (for calls the socket types do not wrap),
    /// then lets the driver transmit whatever it queued.
    pub fn with_stack<R>(&self, f: impl FnOnce(&mut Stack, Instant) -> R) -> R {
        let now = self.shared.now();
        let mut g = self.shared.lock();
        let r = f(&mut g.stack, now);
        self.shared.settle_and_unlock(g);
        r
    }

    /// The stack's counters.
    pub fn stats(&self) -> ustack_core::stats::Stats {
        self.shared.lock().stack.stats().clone()
    }

    /// The device's counters (offloads), as of the driver's last round.
    pub fn device_stats(&self) -> DeviceStats {
        self.shared.lock().device.stats()
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

    /// Runs `f` until it is ready, waiting for changes of socket `h` in
    /// between, until `deadline`. `f` returns `None` to keep waiting.
    ///
    /// While it waits, the thread also waits on the device, if no other
    /// thread does: when frames arrive it reads them into the stack itself
    /// (a driver round), so that the frames it waits for reach it without
    /// the driver's thread waking it, one wakeup instead of two in a row.
    /// The driver wakes for the same frames and finds them taken. One
    /// thread at a time, so that a thousand threads blocked on idle
    /// sockets are not all woken by every frame; and a thread whose rounds
    /// changed nothing for its own socket `OTHERS_ROUNDS` times in a row
    /// leaves the device to the driver for the rest of its wait, so that
    /// an idle socket's thread sleeps through another socket's traffic.
    pub(crate) fn wait<R>(
        &self,
        h: SocketHandle,
        deadline: Option<std::time::Instant>,
        mut f: impl FnMut(&mut Stack) -> Option<io::Result<R>>,
    ) -> io::Result<R> {
        let me = Arc::new(ThreadWaker {
            thread: std::thread::current(),
            event: std::sync::OnceLock::new(),
            polling: AtomicBool::new(false),
        });
        let waker = Waker::from(me.clone());
        // Wakers of other sockets this thread's driver rounds changed.
        let mut others: Vec<Waker> = Vec::new();
        let wake_all = |ws: &mut Vec<Waker>| {
            for w in ws.drain(..) {
                w.wake();
            }
        };
        // Wakeups by the device in a row that changed nothing for this
        // socket; at `OTHERS_ROUNDS` the thread leaves the device to the
        // driver.
        let mut for_others = 0;
        let mut g = self.shared.lock();
        // This thread's waker leaves the socket's list however the wait ends.
        let forget = |g: &mut Inner| {
            if let Some(ws) = g.wakers.get_mut(&h) {
                ws.retain(|w| !w.will_wake(&waker));
                if ws.is_empty() {
                    g.wakers.remove(&h);
                }
            }
        };
        loop {
            if let Some(r) = f(&mut g.stack) {
                forget(&mut g);
                self.shared.settle_and_unlock(g);
                wake_all(&mut others);
                return r;
            }
            // Whatever the call queued (a SYN, a window update) goes out
            // before we wait.
            others.extend(self.shared.settle(&mut g));
            if self.shared.stop.load(Ordering::SeqCst) {
                forget(&mut g);
                drop(g);
                wake_all(&mut others);
                return Err(io::Error::new(io::ErrorKind::NotConnected, "the stack has been shut down"));
            }
            let left = match deadline {
                None => None,
                Some(d) => {
                    let left = d.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        forget(&mut g);
                        drop(g);
                        wake_all(&mut others);
                        return Err(io::Error::new(io::ErrorKind::WouldBlock, "timed out"));
                    }
                    Some(left)
                }
            };
            // Registered under the lock, so a change after this point
            // wakes us (a wake before the wait is not lost).
            let ws = g.wakers.entry(h).or_default();
            if !ws.iter().any(|w| w.will_wake(&waker)) {
                ws.push(waker.clone());
            }
            let mut event = None;
            if for_others < OTHERS_ROUNDS && !self.shared.reader_polls.swap(true, Ordering::SeqCst) {
                // The thread's eventfd is made the first time it waits on
                // the device: threads that only park hold none.
                event = me
                    .event
                    .get()
                    .or_else(|| {
                        let e = WAIT_EVENT.try_with(|e| e.clone()).ok().flatten()?;
                        Some(me.event.get_or_init(|| e))
                    })
                    .cloned();
                match event {
                    Some(_) => me.polling.store(true, Ordering::SeqCst),
                    None => self.shared.reader_polls.store(false, Ordering::SeqCst),
                }
            }
            drop(g);
            wake_all(&mut others);
            let Some(event) = event else {
                match left {
                    None => std::thread::park(),
                    Some(left) => std::thread::park_timeout(left),
                }
                g = self.shared.lock();
                continue;
            };
            let timeout_ms = poll_ms(left);
            let ready = sys::poll_readable(&[self.shared.device_fd, event.as_raw_fd()], timeout_ms);
            me.polling.store(false, Ordering::SeqCst);
            self.shared.reader_polls.store(false, Ordering::SeqCst);
            sys::eventfd_drain(event.as_raw_fd());
            g = self.shared.lock();
            if ready.is_ok_and(|r| r[0]) {
                match self.shared.receive(&mut g) {
                    Ok(ws) => {
                        // (Or none at all: the driver, woken too, took
                        // them first. That counts: it could happen on
                        // every frame of another connection.)
                        if ws.iter().any(|w| w.will_wake(&waker)) {
                            for_others = 0;
                        } else {
                            for_others += 1;
                        }
                        others.extend(ws.into_iter().filter(|w| !w.will_wake(&waker)));
                    }
                    Err(e) => {
                        // The driver stops with it, as if it had read it.
                        g.error.get_or_insert(e);
                        self.shared.kick();
                    }
                }
            }
        }
    }
}

/// Wakeups by the device in a row that changed nothing for its socket,
/// after which a thread blocked in a socket call stops waiting on the
/// device (a pure ACK for its own connection, or frames the driver took
/// first, may not change its socket; a stream of another connection's
/// frames will).
const OTHERS_ROUNDS: u32 = 3;

thread_local! {
    /// The eventfd a thread blocked in a socket call waits on while it
    /// waits on the device too (`NetStack::wait`); none if it could not be
    /// made, and then the thread only parks.
    static WAIT_EVENT: Option<Arc<OwnedFd>> = sys::eventfd().ok().map(Arc::new);
}

/// Wakes a thread blocked in [`NetStack::wait`]: parked, or waiting on the
/// device and its eventfd.
struct ThreadWaker {
    thread: std::thread::Thread,
    /// The thread's eventfd, once it has waited on the device.
    event: std::sync::OnceLock<Arc<OwnedFd>>,
    /// The thread is (about to be) in `poll(2)` on `event`.
    polling: AtomicBool,
}

impl std::task::Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        if self.polling.load(Ordering::SeqCst)
            && let Some(e) = self.event.get()
        {
            sys::eventfd_signal(e.as_raw_fd());
        }
        self.thread.unpark();
    }
}

/// The driver loop.
fn run(shared: Arc<Shared>) -> io::Result<()> {
    let kick_fd = shared.kick.as_raw_fd();
    let mut result = Ok(());
    while !shared.stop.load(Ordering::SeqCst) {
        let (fds, timeout_ms) = {
            let mut g = shared.lock();
            let now = std::time::Instant::now();
            g.wakes_at = g.next_deadline(shared.epoch).map(|t| driver_wake(now, t));
            let timeout_ms = poll_ms(g.wakes_at.map(|w| w.saturating_duration_since(now)));
            ([shared.device_fd, kick_fd], timeout_ms)
        };
        let ready = sys::poll_readable(&fds, timeout_ms)?;
        if ready[1] {
            sys::eventfd_drain(fds[1]);
        }
        let mut g = shared.lock();
        if let Some(e) = g.error.take() {
            result = Err(e);
            break;
        }
        match shared.receive(&mut g) {
            Ok(wakers) => {
                drop(g);
                for w in wakers {
                    w.wake();
                }
            }
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    {
        let mut g = shared.lock();
        if let Some(p) = g.pcap.as_mut() {
            let _ = p.flush();
        }
    }
    // Anyone still waiting learns the stack is gone.
    shared.stop.store(true, Ordering::SeqCst);
    let wakers: Vec<Waker> = shared.lock().wakers.drain().flat_map(|(_, v)| v).collect();
    for w in wakers {
        w.wake();
    }
    result
}

/// A wait as `poll(2)`'s timeout: milliseconds, rounded up so that we do
/// not wake a hair early and spin, at most a minute; -1 for no limit.
fn poll_ms(wait: Option<Duration>) -> i32 {
    wait.map_or(-1, |w| w.as_micros().div_ceil(1000).min(60_000) as i32)
}

/// When a driver that goes to sleep at `now` for a timer due at `due`
/// wakes: `due` rounded up to the millisecond of `poll(2)`'s timeout.
fn driver_wake(now: std::time::Instant, due: std::time::Instant) -> std::time::Instant {
    now + Duration::from_millis(poll_ms(Some(due.saturating_duration_since(now))) as u64)
}

/// Whether a driver asleep until `planned` (`None`: until the device or a
/// kick) must be kicked at `now` for a timer due at `due`: only if it
/// would then wake sooner. A timer due before the planned wakeup but
/// within the millisecond the driver rounds to changes nothing; kicking
/// for it (as for every tail-loss-probe and retransmission timer a
/// request-response connection sets) cost a wakeup and a driver round.
fn wakes_sooner(now: std::time::Instant, due: std::time::Instant, planned: Option<std::time::Instant>) -> bool {
    planned.is_none_or(|p| driver_wake(now, due) < p)
}

/// How long until `deadline`, for socket timeouts.
pub(crate) fn deadline_after(timeout: Option<Duration>) -> Option<std::time::Instant> {
    timeout.map(|t| std::time::Instant::now() + t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timer_within_the_drivers_rounding_does_not_kick_it() {
        let now = std::time::Instant::now();
        let ms = Duration::from_millis;
        let us = Duration::from_micros;
        // Asleep until 1 ms from now (its own timer was due in 0.9 ms).
        let planned = Some(driver_wake(now, now + us(900)));
        assert_eq!(planned, Some(now + ms(1)));
        // Due in 100 µs: told, the driver would still sleep until 1 ms.
        assert!(!wakes_sooner(now, now + us(100), planned));
        // Due now, or already past: it would wake at once.
        assert!(wakes_sooner(now, now, planned));
        assert!(wakes_sooner(now + us(10), now, planned));
        // Asleep until 98 ms; a timer due in 97.4 ms rounds to 98 ms, one
        // due in 96.5 ms to 97 ms.
        let planned = Some(now + ms(98));
        assert!(!wakes_sooner(now, now + us(97_400), planned));
        assert!(wakes_sooner(now, now + us(96_500), planned));
        // Asleep with no timer at all: any timer must be told.
        assert!(wakes_sooner(now, now + Duration::from_secs(50), None));
        // A later timer never kicks.
        assert!(!wakes_sooner(now, now + ms(200), planned));
    }
}
