//! Applications for simulated hosts, shared by tests, the soak, the demo
//! and the benchmarks.
//!
//! [`StreamApp`] opens or accepts TCP connections and, on each, sends a
//! reproducible byte pattern, half-closes, reads everything the peer sends
//! until end of file, and closes. It keeps a [`StreamReport`] per
//! connection with the length and hash of each direction, so a test checks
//! that every byte arrived exactly once and in order by comparing the two
//! ends' reports.

use super::host::App;
use crate::socket::{Error, Shutdown, SocketHandle};
use crate::stack::Stack;
use crate::tcp::{DirectReader, State};
use crate::time::Instant;
use std::net::SocketAddrV4;
use std::sync::{Arc, Mutex};

/// Fills `out` with the bytes at `offset..` of the stream named `seed`.
/// Any stream position can be produced on its own, so a receiver could
/// check each byte; the reports compare hashes instead.
pub fn fill_pattern(seed: u64, offset: u64, out: &mut [u8]) {
    let mut pos = offset;
    let mut i = 0;
    while i < out.len() {
        let word = pattern_word(seed, pos / 8).to_le_bytes();
        let skip = (pos % 8) as usize;
        let n = (8 - skip).min(out.len() - i);
        out[i..i + n].copy_from_slice(&word[skip..skip + n]);
        i += n;
        pos += n as u64;
    }
}

fn pattern_word(seed: u64, index: u64) -> u64 {
    let mut z = seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A 64-bit hash of a byte stream, with its length. It mixes eight bytes
/// at a time (fast enough for gigabytes of simulated traffic) and gives the
/// same value however the stream is cut into pieces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamHash {
    pub hash: u64,
    pub len: u64,
    /// Bytes not yet making a whole word.
    tail: u64,
}

impl Default for StreamHash {
    fn default() -> Self {
        StreamHash { hash: 0xcbf2_9ce4_8422_2325, len: 0, tail: 0 }
    }
}

impl StreamHash {
    fn mix(&mut self, word: u64) {
        self.hash = (self.hash ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.hash ^= self.hash >> 29;
    }

    pub fn update(&mut self, mut data: &[u8]) {
        // Complete a partial word first.
        let fill = (self.len % 8) as usize;
        if fill != 0 {
            let n = (8 - fill).min(data.len());
            for (k, &b) in data[..n].iter().enumerate() {
                self.tail |= (b as u64) << (8 * (fill + k));
            }
            self.len += n as u64;
            data = &data[n..];
            if self.len.is_multiple_of(8) {
                let w = core::mem::take(&mut self.tail);
                self.mix(w);
            }
        }
        let mut words = data.chunks_exact(8);
        for w in &mut words {
            self.mix(u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]));
        }
        let rest = words.remainder();
        for (k, &b) in rest.iter().enumerate() {
            self.tail |= (b as u64) << (8 * k);
        }
        self.len += (data.len() - rest.len()) as u64 + rest.len() as u64;
    }

    /// The hash of `len` bytes of pattern `seed`.
    pub fn of_pattern(seed: u64, len: u64) -> StreamHash {
        let mut h = StreamHash::default();
        let mut buf = [0u8; 4096];
        let mut off = 0;
        while off < len {
            let n = (len - off).min(buf.len() as u64) as usize;
            fill_pattern(seed, off, &mut buf[..n]);
            h.update(&buf[..n]);
            off += n as u64;
        }
        h
    }
}

/// What happened on one connection.
#[derive(Clone, Debug, Default)]
pub struct StreamReport {
    /// The pattern seed of the bytes this end sent (see [`fill_pattern`]).
    pub seed: u64,
    pub local: Option<SocketAddrV4>,
    pub remote: Option<SocketAddrV4>,
    pub sent: StreamHash,
    pub received: StreamHash,
    /// The peer's FIN was read (end of file).
    pub eof: bool,
    /// The error a socket call reported, if any.
    pub error: Option<Error>,
    pub established_at: Option<Instant>,
    pub finished_at: Option<Instant>,
    /// The connection ran to its end (close called after EOF, or failed).
    pub done: bool,
}

/// How a [`StreamApp`] ends its side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseMode {
    /// shutdown(WRITE) once everything is sent; close after end of file.
    HalfClose,
    /// close once everything is sent, without reading to end of file.
    Close,
    /// Reset (SO_LINGER 0) once everything is sent.
    Abort,
}

/// Whether the app connects or accepts.
#[derive(Clone, Copy, Debug)]
pub enum Role {
    /// Connect to `remote`, from `local` if given (port 0 = ephemeral).
    Client { remote: SocketAddrV4, local: Option<SocketAddrV4>, connections: usize },
    /// Listen on `local` and serve up to `connections` connections.
    Server { local: SocketAddrV4, backlog: usize, connections: usize },
}

struct Stream {
    handle: SocketHandle,
    seed: u64,
    to_send: u64,
    shut: bool,
    report: StreamReport,
    /// What a reader registered with `Stack::set_direct_reader` took, while
    /// one is registered.
    waiting: Option<Arc<Mutex<Vec<u8>>>>,
}

/// A reader that waits with a buffer of `room` bytes, as a thread blocked
/// in `recv` does (`StreamApp::waiting_reads`, and tests of
/// `Stack::set_direct_reader`).
pub struct WaitingReader {
    got: Arc<Mutex<Vec<u8>>>,
    room: usize,
}

impl WaitingReader {
    /// A reader with room for `room` bytes, and where what it takes can be
    /// seen while the stack holds it.
    pub fn new(room: usize) -> (Box<Self>, Arc<Mutex<Vec<u8>>>) {
        let got = Arc::new(Mutex::new(Vec::new()));
        (Box::new(WaitingReader { got: got.clone(), room }), got)
    }
}

impl DirectReader for WaitingReader {
    fn take(&mut self, data: &[u8]) -> usize {
        let mut got = self.got.lock().unwrap_or_else(|e| e.into_inner());
        let n = data.len().min(self.room - got.len());
        got.extend_from_slice(&data[..n]);
        n
    }
    fn taken(&self) -> usize {
        self.got.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Sends `send_bytes` of a pattern on each connection and reads what
/// comes back; see the module documentation.
pub struct StreamApp {
    role: Role,
    send_bytes: u64,
    seed: u64,
    close_mode: CloseMode,
    /// Start sending only after this instant (to model a slow application).
    pub start_at: Instant,
    /// Stop reading until this instant (a receiver that does not read).
    pub read_paused_until: Instant,
    /// When a read finds nothing, leave a reader waiting with a buffer of
    /// its own (`Stack::set_direct_reader`) until the next poll, as a
    /// thread blocked in `recv` does; its size (1 byte to 64 KiB) is
    /// chosen by the stream's seed.
    pub waiting_reads: bool,
    listener: Option<SocketHandle>,
    opened: usize,
    streams: Vec<Stream>,
    finished: Vec<StreamReport>,
    setup_error: Option<Error>,
    buf: Vec<u8>,
}

impl StreamApp {
    pub fn client(remote: SocketAddrV4, send_bytes: u64, seed: u64) -> Self {
        Self::new(Role::Client { remote, local: None, connections: 1 }, send_bytes, seed)
    }

    pub fn server(local: SocketAddrV4, send_bytes: u64, seed: u64) -> Self {
        Self::new(Role::Server { local, backlog: 128, connections: usize::MAX }, send_bytes, seed)
    }

    pub fn new(role: Role, send_bytes: u64, seed: u64) -> Self {
        StreamApp {
            role,
            send_bytes,
            seed,
            close_mode: CloseMode::HalfClose,
            start_at: Instant::ZERO,
            read_paused_until: Instant::ZERO,
            waiting_reads: false,
            listener: None,
            opened: 0,
            streams: Vec::new(),
            finished: Vec::new(),
            setup_error: None,
            buf: vec![0u8; 16 * 1024],
        }
    }

    pub fn with_close_mode(mut self, mode: CloseMode) -> Self {
        self.close_mode = mode;
        self
    }
    pub fn with_local(mut self, addr: SocketAddrV4) -> Self {
        if let Role::Client { local, .. } = &mut self.role {
            *local = Some(addr);
        }
        self
    }
    pub fn with_connections(mut self, n: usize) -> Self {
        match &mut self.role {
            Role::Client { connections, .. } | Role::Server { connections, .. } => *connections = n,
        }
        self
    }
    pub fn with_backlog(mut self, n: usize) -> Self {
        if let Role::Server { backlog, .. } = &mut self.role {
            *backlog = n;
        }
        self
    }

    /// The pattern seed of the `i`-th connection this app opens or accepts.
    pub fn stream_seed(&self, i: usize) -> u64 {
        self.seed.wrapping_add(i as u64)
    }

    /// Reports of finished connections, in the order they finished, then
    /// of those still running.
    pub fn reports(&self) -> Vec<StreamReport> {
        self.finished.iter().cloned().chain(self.streams.iter().map(|s| s.report.clone())).collect()
    }

    /// True when every connection the app meant to make has finished.
    pub fn is_done(&self) -> bool {
        let wanted = match self.role {
            Role::Client { connections, .. } | Role::Server { connections, .. } => connections,
        };
        self.setup_error.is_some() || (self.opened >= wanted && self.streams.is_empty())
    }

    /// The listening socket of a server still waiting for connections, so
    /// that a test can close it when the clients are gone.
    pub fn listener(&self) -> Option<SocketHandle> {
        self.listener
    }

    /// The sockets of the connections still running.
    pub fn open_handles(&self) -> Vec<SocketHandle> {
        self.streams.iter().map(|s| s.handle).collect()
    }

    /// The close mode chosen with [`StreamApp::with_close_mode`].
    pub fn close_mode(&self) -> CloseMode {
        self.close_mode
    }

    /// An error from socket setup (bind, listen, connect).
    pub fn setup_error(&self) -> Option<Error> {
        self.setup_error
    }

    fn open(&mut self, stack: &mut Stack) {
        match self.role {
            Role::Client { remote, local, connections } => {
                while self.opened < connections && self.setup_error.is_none() {
                    let r = (|| {
                        let h = stack.tcp_socket()?;
                        if let Some(l) = local {
                            stack.bind(h, l)?;
                        }
                        stack.connect(h, remote)?;
                        Ok::<_, Error>(h)
                    })();
                    match r {
                        Ok(h) => self.add_stream(h, stack, None),
                        Err(e) => self.setup_error = Some(e),
                    }
                }
            }
            Role::Server { local, backlog, connections } => {
                if self.opened >= connections {
                    return;
                }
                if self.listener.is_none() && self.setup_error.is_none() {
                    let r = (|| {
                        let h = stack.tcp_socket()?;
                        stack.bind(h, local)?;
                        stack.listen(h, backlog)?;
                        Ok::<_, Error>(h)
                    })();
                    match r {
                        Ok(h) => self.listener = Some(h),
                        Err(e) => self.setup_error = Some(e),
                    }
                }
                let Some(l) = self.listener else { return };
                while self.opened < connections {
                    match stack.accept(l) {
                        Ok((h, peer)) => self.add_stream(h, stack, Some(peer)),
                        Err(_) => break,
                    }
                }
                if self.opened >= connections {
                    // Every connection is in: stop listening for good.
                    let _ = stack.close(l);
                    self.listener = None;
                }
            }
        }
    }

    fn add_stream(&mut self, handle: SocketHandle, stack: &Stack, peer: Option<SocketAddrV4>) {
        let seed = self.stream_seed(self.opened);
        self.opened += 1;
        self.streams.push(Stream {
            handle,
            seed,
            to_send: self.send_bytes,
            shut: false,
            // The addresses are known from connect or accept on, even if
            // the connection is reset before it is seen established.
            report: StreamReport {
                seed,
                local: stack.local_addr(handle).ok(),
                remote: peer.or_else(|| stack.peer_addr(handle).ok()),
                ..StreamReport::default()
            },
            waiting: None,
        });
    }

    /// Drives one connection; returns true when it is finished.
    fn drive(&mut self, now: Instant, stack: &mut Stack, i: usize) -> bool {
        let s = &mut self.streams[i];
        let h = s.handle;
        let state = stack.tcp_state(h).unwrap_or(State::Closed);
        if s.report.established_at.is_none() {
            match state {
                State::SynSent | State::SynReceived => return false,
                State::Closed => {}
                _ => {
                    s.report.established_at = Some(now);
                    s.report.local = stack.local_addr(h).ok().or(s.report.local);
                    s.report.remote = stack.peer_addr(h).ok().or(s.report.remote);
                }
            }
        }
        // What the waiting reader took comes first.
        if let Some(got) = s.waiting.take() {
            let _ = stack.take_direct_reader(h);
            s.report.received.update(&got.lock().unwrap_or_else(|e| e.into_inner()));
        }
        // Read whatever arrived (unless paused), to end of file.
        if now >= self.read_paused_until {
            loop {
                match stack.recv(h, &mut self.buf) {
                    Ok(0) => {
                        s.report.eof = true;
                        break;
                    }
                    Ok(n) => s.report.received.update(&self.buf[..n]),
                    Err(Error::WouldBlock) => {
                        if self.waiting_reads {
                            const ROOMS: [usize; 5] = [1, 100, 1460, 4096, 65536];
                            let (reader, got) = WaitingReader::new(ROOMS[(s.seed % ROOMS.len() as u64) as usize]);
                            if stack.set_direct_reader(h, reader) {
                                s.waiting = Some(got);
                            }
                        }
                        break;
                    }
                    Err(e) => {
                        s.report.error = Some(e);
                        break;
                    }
                }
            }
        }
        if s.report.error.is_some() {
            let _ = stack.close(h);
            return true;
        }
        // Send the pattern.
        if now >= self.start_at {
            while s.to_send > 0 {
                let off = s.report.sent.len;
                // Make only as much pattern as the stack can take now.
                let room = stack.send_capacity(h);
                let n = (s.to_send as usize).min(self.buf.len()).min(room.max(1));
                fill_pattern(s.seed, off, &mut self.buf[..n]);
                match stack.send(h, &self.buf[..n]) {
                    Ok(k) => {
                        s.report.sent.update(&self.buf[..k]);
                        s.to_send -= k as u64;
                    }
                    Err(Error::WouldBlock) => break,
                    Err(e) => {
                        s.report.error = Some(e);
                        let _ = stack.close(h);
                        return true;
                    }
                }
            }
        }
        if s.to_send == 0 && !s.shut {
            s.shut = true;
            match self.close_mode {
                CloseMode::HalfClose => {
                    if let Err(e) = stack.shutdown(h, Shutdown::Write) {
                        s.report.error = Some(e);
                    }
                }
                CloseMode::Close => {
                    let _ = stack.close(h);
                    return true;
                }
                CloseMode::Abort => {
                    let _ = stack.abort(h);
                    return true;
                }
            }
        }
        if s.shut && s.report.eof {
            let _ = stack.close(h);
            return true;
        }
        false
    }
}

impl App for StreamApp {
    fn poll(&mut self, now: Instant, stack: &mut Stack) -> Option<Instant> {
        self.open(stack);
        let mut i = 0;
        while i < self.streams.len() {
            if self.drive(now, stack, i) {
                let mut s = self.streams.swap_remove(i);
                s.report.done = true;
                s.report.finished_at = Some(now);
                self.finished.push(s.report);
            } else {
                i += 1;
            }
        }
        // Wake up for a scheduled start or the end of a read pause.
        [self.start_at, self.read_paused_until].into_iter().filter(|&t| t > now).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_is_position_independent() {
        let mut a = vec![0u8; 100];
        fill_pattern(7, 0, &mut a);
        let mut b = vec![0u8; 37];
        fill_pattern(7, 50, &mut b);
        assert_eq!(&a[50..87], &b[..]);
        let mut c = vec![0u8; 100];
        fill_pattern(8, 0, &mut c);
        assert_ne!(a, c);
        let mut h = StreamHash::default();
        h.update(&a);
        assert_eq!(h, StreamHash::of_pattern(7, 100));
    }

    #[test]
    fn hash_does_not_depend_on_how_the_stream_is_cut() {
        let mut data = vec![0u8; 1000];
        fill_pattern(3, 0, &mut data);
        let mut whole = StreamHash::default();
        whole.update(&data);
        for cut in [1usize, 3, 7, 8, 9, 13, 64, 999] {
            let mut h = StreamHash::default();
            for piece in data.chunks(cut) {
                h.update(piece);
            }
            assert_eq!(h, whole, "pieces of {cut}");
        }
        let mut other = StreamHash::default();
        data[500] ^= 1;
        other.update(&data);
        assert_ne!(other, whole);
        assert_eq!(whole.len, 1000);
    }
}
