//! The only `unsafe` in ustack: Linux system calls that have no safe
//! wrapper in std (TUN/TAP ioctls, eventfd, poll, bpf), and a reader's
//! buffer lent to the driver thread ([`lend`]). Each block says why it is
//! sound.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::{Arc, Mutex};

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54d0;
const TUNSETVNETHDRSZ: libc::c_ulong = 0x4004_54d8;
const TUNGETFEATURES: libc::c_ulong = 0x8004_54cf;
const TUNSETSTEERINGEBPF: libc::c_ulong = 0x8004_54e0;

pub const IFF_TUN: libc::c_short = 0x0001;
pub const IFF_TAP: libc::c_short = 0x0002;
pub const IFF_MULTI_QUEUE: libc::c_short = 0x0100;
pub const IFF_NO_PI: libc::c_short = 0x1000;
pub const IFF_VNET_HDR: libc::c_short = 0x4000;

/// Offload flags for TUNSETOFFLOAD (linux/if_tun.h).
pub const TUN_F_CSUM: libc::c_uint = 0x01;
pub const TUN_F_TSO4: libc::c_uint = 0x02;

/// `struct ifreq` as far as TUNSETIFF uses it: a name and the flags.
#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// Opens `/dev/net/tun` and attaches it to interface `name` with `flags`
/// (creating the interface if it does not exist). Returns the file and
/// the name the kernel used.
pub fn open_tun(name: &str, flags: libc::c_short) -> io::Result<(File, String)> {
    if name.len() >= libc::IFNAMSIZ || name.contains('/') || name.contains(char::is_whitespace) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{name}` is not a valid interface name (at most 15 characters, no '/' or spaces)"),
        ));
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open("/dev/net/tun")?;
    let mut req = IfReq { name: [0; libc::IFNAMSIZ], flags, _pad: [0; 22] };
    for (d, s) in req.name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    // SAFETY: `file` is an open descriptor for /dev/net/tun and `req` is a
    // properly initialised, correctly sized `struct ifreq` that outlives
    // the call; TUNSETIFF reads and writes only within it.
    let r = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF, &mut req as *mut IfReq) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let len = req.name.iter().position(|&c| c == 0).unwrap_or(libc::IFNAMSIZ);
    let actual: String = req.name[..len].iter().map(|&c| c as u8 as char).collect();
    Ok((file, actual))
}

/// The IFF_* flags this kernel's TUN driver supports.
pub fn tun_features(fd: RawFd) -> io::Result<libc::c_uint> {
    let mut features: libc::c_uint = 0;
    // SAFETY: TUNGETFEATURES writes one unsigned int to the pointer, which
    // points to a live local of that type.
    let r = unsafe { libc::ioctl(fd, TUNGETFEATURES, &mut features as *mut libc::c_uint) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(features) }
}

/// Tells the kernel which offloads we accept in packets it hands us.
pub fn set_offload(fd: RawFd, flags: libc::c_uint) -> io::Result<()> {
    // SAFETY: TUNSETOFFLOAD takes its argument by value; `fd` is a TUN fd.
    let r = unsafe { libc::ioctl(fd, TUNSETOFFLOAD, flags as libc::c_ulong) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Sets the size of the virtio-net header in front of each packet.
pub fn set_vnet_hdr_size(fd: RawFd, size: libc::c_int) -> io::Result<()> {
    let mut s = size;
    // SAFETY: TUNSETVNETHDRSZ reads one int from the pointer, which points
    // to a live local.
    let r = unsafe { libc::ioctl(fd, TUNSETVNETHDRSZ, &mut s as *mut libc::c_int) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// The attributes of `bpf(BPF_PROG_LOAD)` this crate sets; the rest of
/// `union bpf_attr` stays zero, as the kernel requires.
#[repr(C)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    _rest: [u8; 80],
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_TYPE_SOCKET_FILTER: u32 = 1;

/// Loads the multi-queue steering program; the error carries the
/// verifier's log when it refuses it.
pub fn load_steering_program() -> io::Result<OwnedFd> {
    let insns = super::steer::program();
    let license = c"MIT OR Apache-2.0";
    let mut log = vec![0u8; 4096];
    let attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_SOCKET_FILTER,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr() as u64,
        _rest: [0; 80],
    };
    // SAFETY: `attr` is a zero-padded prefix of `union bpf_attr` whose
    // pointers (the instructions, the license string, the log buffer of
    // `log_size` bytes) point to live memory for the whole call; the
    // kernel writes only into the log buffer, and returns a new
    // descriptor or -1.
    let fd = unsafe {
        libc::syscall(libc::SYS_bpf, BPF_PROG_LOAD, &attr as *const ProgLoadAttr, std::mem::size_of::<ProgLoadAttr>())
    };
    if fd < 0 {
        let e = io::Error::last_os_error();
        let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
        let log = String::from_utf8_lossy(&log[..end]);
        let hint = match e.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => "; it needs root (CAP_BPF): run with sudo",
            _ => "",
        };
        return Err(io::Error::new(
            e.kind(),
            format!(
                "cannot load the TUN steering program: {e}{hint}{}{}",
                if log.is_empty() { "" } else { "; " },
                log.trim()
            ),
        ));
    }
    // SAFETY: `fd` was just returned by bpf(2) and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Makes a multi-queue TUN device steer with the program `prog` (the
/// device keeps its own reference; `prog` may be closed afterwards).
pub fn set_steering_program(fd: RawFd, prog: RawFd) -> io::Result<()> {
    let p: libc::c_int = prog;
    // SAFETY: TUNSETSTEERINGEBPF reads one int (a program descriptor) from
    // the pointer, which points to a live local.
    let r = unsafe { libc::ioctl(fd, TUNSETSTEERINGEBPF, &p as *const libc::c_int) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// A non-blocking eventfd, for waking a thread sleeping in `poll`.
pub fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: eventfd takes plain integers and returns a new descriptor or -1.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by eventfd and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds one to an eventfd's counter (wakes its poller).
pub fn eventfd_signal(fd: RawFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live local to a descriptor we own; an
    // error (counter saturated) is harmless: the poller is awake anyway.
    let _ = unsafe { libc::write(fd, &one as *const u64 as *const libc::c_void, 8) };
}

/// Resets an eventfd's counter.
pub fn eventfd_drain(fd: RawFd) {
    let mut v: u64 = 0;
    // SAFETY: reads 8 bytes into a live local; EAGAIN when zero is fine.
    let _ = unsafe { libc::read(fd, &mut v as *mut u64 as *mut libc::c_void, 8) };
}

/// Waits until one of `fds` is readable or `timeout_ms` passes (-1: no
/// limit). Returns which are readable.
pub fn poll_readable(fds: &[RawFd], timeout_ms: i32) -> io::Result<Vec<bool>> {
    let mut p: Vec<libc::pollfd> =
        fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
    // SAFETY: `p` is a valid array of `p.len()` pollfd structs that lives
    // across the call.
    let r = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, timeout_ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(vec![false; fds.len()]);
        }
        return Err(e);
    }
    Ok(p.iter().map(|x| x.revents & (libc::POLLIN | libc::POLLERR | libc::POLLHUP) != 0).collect())
}

/// A buffer lent out for the duration of [`lend`]'s closure.
pub(crate) struct Loan {
    state: Arc<Mutex<LoanState>>,
}

/// The buffer of a [`Loan`], and how much of it was written. The pointer
/// is followed only under the mutex, and only until the loan is revoked.
struct LoanState {
    ptr: *mut u8,
    len: usize,
    filled: usize,
    revoked: bool,
}

// SAFETY: the pointer is dereferenced only under the mutex and only while
// the loan is not revoked, that is while `lend`'s exclusive borrow of the
// buffer lasts; which thread does it does not matter.
unsafe impl Send for LoanState {}

/// A handle on a [`Loan`] that another thread may hold (the stack, as a
/// connection's waiting reader): it copies arriving bytes into the lent
/// buffer, after those already there, until the loan ends.
pub(crate) struct LentBuffer(Arc<Mutex<LoanState>>);

fn lock_loan(m: &Mutex<LoanState>) -> std::sync::MutexGuard<'_, LoanState> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Lends `buf` for as long as `f` runs: `f` may hand [`LentBuffer`]s to
/// other threads, which write into `buf` through them. When `f` returns
/// or unwinds, the loan is revoked under its lock: a write in progress
/// finishes first, and none starts after, so nothing touches `buf` once
/// this returns, even if a `LentBuffer` outlives it.
pub(crate) fn lend<R>(buf: &mut [u8], f: impl FnOnce(&Loan) -> R) -> R {
    let loan = Loan {
        state: Arc::new(Mutex::new(LoanState { ptr: buf.as_mut_ptr(), len: buf.len(), filled: 0, revoked: false })),
    };
    // `loan` is dropped here, after `f`, or while `f` unwinds: either way
    // before the borrow of `buf` ends. (`f` only sees `&Loan`, so it
    // cannot forget it.)
    f(&loan)
}

impl Drop for Loan {
    fn drop(&mut self) {
        lock_loan(&self.state).revoked = true;
    }
}

impl Loan {
    /// Another handle that writes into the buffer.
    pub(crate) fn lender(&self) -> LentBuffer {
        LentBuffer(self.state.clone())
    }

    /// Bytes written into the buffer through the handles so far.
    pub(crate) fn filled(&self) -> usize {
        lock_loan(&self.state).filled
    }

    /// Runs `f` on the whole buffer, no handle writing meanwhile.
    pub(crate) fn with_buf<R>(&self, f: impl FnOnce(&mut [u8]) -> R) -> R {
        let st = lock_loan(&self.state);
        // SAFETY: the loan is not revoked while `self` exists (only its
        // drop revokes it), so `lend`'s exclusive borrow of the buffer
        // lasts; the lock keeps the handles out while `f` has it.
        let buf = unsafe { std::slice::from_raw_parts_mut(st.ptr, st.len) };
        f(buf)
    }
}

impl ustack_core::tcp::DirectReader for LentBuffer {
    fn take(&mut self, data: &[u8]) -> usize {
        let mut st = lock_loan(&self.0);
        if st.revoked {
            return 0;
        }
        let n = data.len().min(st.len - st.filled);
        // SAFETY: not revoked, so the buffer is still exclusively lent
        // (see `lend`), and the lock keeps every other user out;
        // `filled + n <= len` keeps the copy inside it, and `data` is not
        // part of it (the lent buffer is nobody else's to pass in).
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), st.ptr.add(st.filled), n) };
        st.filled += n;
        n
    }

    fn taken(&self) -> usize {
        lock_loan(&self.0).filled
    }
}
