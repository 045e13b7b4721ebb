//! A byte ring that allocates on demand and gives memory back when empty.
//!
//! Both socket buffers are built on it. Storage grows by powers of two up to
//! a fixed limit, so an idle connection costs no buffer memory and a busy
//! one settles at the size its traffic needs.
//!
//! A busy connection drains its buffers again and again (the reader takes
//! everything, the peer acknowledges everything sent), so storage given
//! back on every drain would be allocated again a moment later: zeroed,
//! and for large rings mapped in page by page. The stack keeps a few
//! drained buffers in a [`BufferPool`] for the next ring that needs one.

/// Smallest allocation, so that small exchanges do not reallocate often.
const MIN_ALLOC: usize = 2048;

/// The largest limit a ring takes: 1 GiB, the largest window TCP can
/// offer (RFC 7323 §2.3). A socket buffer beyond it could not be used (the
/// sequence space covers 2^31 bytes in flight), and the bound lets the
/// indexes be 32-bit: every connection holds two rings.
pub const MAX_LIMIT: usize = 1 << 30;

/// Drained ring storage kept for reuse, shared by the connections of one
/// stack. Bounded in count and bytes, so what it keeps is a few buffers of
/// recently busy connections, never memory that grows with the number of
/// connections.
#[derive(Clone, Debug, Default)]
pub struct BufferPool {
    free: Vec<Box<[u8]>>,
    bytes: usize,
}

impl BufferPool {
    /// Most buffers kept.
    pub const MAX_BUFFERS: usize = 8;
    /// Most bytes kept: two of the largest auto-tuned buffers (16 MiB).
    pub const MAX_BYTES: usize = 32 << 20;

    /// Storage of at least `min` and at most `max` bytes: the largest kept
    /// buffer that fits, so that a ring filling again after a drain gets
    /// back the size it had rather than growing to it step by step; else a
    /// new zeroed one of `min` bytes. A kept buffer holds what its last
    /// ring left in it; a ring only ever reads bytes it wrote (see
    /// `Ring::read_at`).
    pub fn take(&mut self, min: usize, max: usize) -> Box<[u8]> {
        let best = (0..self.free.len())
            .filter(|&i| (min..=max).contains(&self.free[i].len()))
            .max_by_key(|&i| self.free[i].len());
        match best {
            Some(i) => {
                self.bytes -= self.free[i].len();
                self.free.swap_remove(i)
            }
            None => vec![0u8; min].into_boxed_slice(),
        }
    }

    /// Keeps `buf` for reuse. When the pool is full, smaller kept buffers
    /// (the smallest first) make way for it: a large buffer is the costly
    /// one to make again (zeroed, and mapped in page by page), and the
    /// small ones a growing ring leaves behind would otherwise fill the
    /// pool and turn every later large buffer away. A buffer that only
    /// fits by dropping larger ones is freed.
    pub fn give(&mut self, buf: Box<[u8]>) {
        let len = buf.len();
        if len == 0 || len > Self::MAX_BYTES {
            return;
        }
        while self.free.len() >= Self::MAX_BUFFERS || self.bytes + len > Self::MAX_BYTES {
            let smallest = (0..self.free.len()).min_by_key(|&i| self.free[i].len());
            match smallest {
                Some(i) if self.free[i].len() < len => self.bytes -= self.free.swap_remove(i).len(),
                _ => return,
            }
        }
        self.bytes += len;
        self.free.push(buf);
    }

    /// Bytes of storage kept.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[derive(Debug, Default)]
pub struct Ring {
    /// The storage; empty while the ring is (no capacity kept).
    buf: Box<[u8]>,
    /// Index in `buf` of the first byte.
    head: u32,
    /// Bytes held, starting at `head`.
    len: u32,
    /// Most bytes this ring may ever hold (at most [`MAX_LIMIT`]).
    limit: u32,
}

impl Ring {
    pub fn new(limit: usize) -> Self {
        Ring { buf: Box::default(), head: 0, len: 0, limit: limit.min(MAX_LIMIT) as u32 }
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn limit(&self) -> usize {
        self.limit as usize
    }
    /// Bytes that can still be added at the end.
    pub fn free(&self) -> usize {
        (self.limit - self.len) as usize
    }
    /// Bytes of storage currently allocated.
    pub fn allocated(&self) -> usize {
        self.buf.len()
    }

    /// Changes the limit; never below what is held nor above [`MAX_LIMIT`].
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = (limit.min(MAX_LIMIT) as u32).max(self.len);
    }

    /// Makes room for `end` bytes counted from the head.
    fn reserve(&mut self, pool: &mut BufferPool, end: usize) {
        if end <= self.buf.len() {
            return;
        }
        let limit = self.limit();
        let max_cap = limit.next_power_of_two().max(MIN_ALLOC);
        let new_cap = end.next_power_of_two().max(MIN_ALLOC).min(max_cap);
        let mut new = pool.take(new_cap, max_cap);
        // Unwrap the old contents to the start of the new storage. Bytes
        // beyond `len` (out-of-order data in a receive ring) are kept too.
        let old_cap = self.buf.len();
        if old_cap > 0 {
            let head = self.head as usize;
            let first = old_cap - head;
            new[..first].copy_from_slice(&self.buf[head..]);
            new[first..old_cap].copy_from_slice(&self.buf[..head]);
        }
        pool.give(core::mem::replace(&mut self.buf, new));
        self.head = 0;
    }

    /// Appends as much of `data` as fits under the limit; returns how much.
    pub fn push(&mut self, pool: &mut BufferPool, data: &[u8]) -> usize {
        let n = data.len().min(self.free());
        if n == 0 {
            return 0;
        }
        self.write_at(pool, self.len(), &data[..n]);
        self.len += n as u32;
        n
    }

    /// Writes `data` at `offset` bytes from the head, which may lie beyond
    /// `len` (a receive buffer holding out-of-order data). Nothing past the
    /// limit is written; returns how many bytes were stored.
    pub fn write_at(&mut self, pool: &mut BufferPool, offset: usize, data: &[u8]) -> usize {
        let limit = self.limit();
        if offset >= limit {
            return 0;
        }
        let n = data.len().min(limit - offset);
        if n == 0 {
            return 0;
        }
        self.reserve(pool, offset + n);
        let cap = self.buf.len();
        let start = (self.head as usize + offset) % cap;
        let first = n.min(cap - start);
        self.buf[start..start + first].copy_from_slice(&data[..first]);
        self.buf[..n - first].copy_from_slice(&data[first..n]);
        n
    }

    /// Declares `n` more bytes after `len` valid (written by `write_at`).
    pub fn extend_len(&mut self, n: usize) {
        debug_assert!(self.len() + n <= self.limit());
        self.len = (self.len() + n).min(self.limit()) as u32;
    }

    /// Copies bytes from `offset` into `out`; returns how many were copied
    /// (limited by `len`).
    pub fn read_at(&self, offset: usize, out: &mut [u8]) -> usize {
        let len = self.len();
        if offset >= len {
            return 0;
        }
        let n = out.len().min(len - offset);
        let cap = self.buf.len();
        let start = (self.head as usize + offset) % cap;
        let first = n.min(cap - start);
        out[..first].copy_from_slice(&self.buf[start..start + first]);
        out[first..n].copy_from_slice(&self.buf[..n - first]);
        n
    }

    /// The held bytes as at most two slices, in order.
    pub fn as_slices(&self) -> (&[u8], &[u8]) {
        if self.len == 0 {
            return (&[], &[]);
        }
        let (cap, head, len) = (self.buf.len(), self.head as usize, self.len());
        let first = len.min(cap - head);
        (&self.buf[head..head + first], &self.buf[..len - first])
    }

    /// Drops `n` bytes from the front. When the ring becomes empty and
    /// nothing lies beyond it, the storage is given back.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len());
        if n == 0 {
            return;
        }
        self.head = ((self.head as usize + n) % self.buf.len()) as u32;
        self.len -= n as u32;
    }

    /// Gives the storage back to `pool` if the ring is empty. (The caller
    /// knows whether bytes past `len` still matter: a receive ring keeps
    /// its storage while out-of-order data lies there.)
    pub fn release_if_empty(&mut self, pool: &mut BufferPool) {
        if self.len == 0 && !self.buf.is_empty() {
            pool.give(core::mem::take(&mut self.buf));
            self.head = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_read_consume_wrap() {
        let p = &mut BufferPool::default();
        let mut r = Ring::new(4096);
        assert_eq!(r.allocated(), 0);
        let data: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        assert_eq!(r.push(p, &data), 3000);
        assert_eq!(r.allocated(), 4096);
        r.consume(2500);
        assert_eq!(r.push(p, &data), 3000);
        assert_eq!(r.push(p, &data), 596, "limited by the limit");
        assert_eq!(r.len(), 4096);
        let mut out = vec![0u8; 4096];
        assert_eq!(r.read_at(0, &mut out), 4096);
        assert_eq!(&out[..500], &data[2500..]);
        assert_eq!(&out[500..3500], &data[..]);
        assert_eq!(&out[3500..], &data[..596]);
        let (a, b) = r.as_slices();
        assert_eq!(a.len() + b.len(), 4096);
        r.consume(4096);
        r.release_if_empty(p);
        assert_eq!(r.allocated(), 0);
        assert_eq!(p.bytes(), 4096, "the storage is kept for the next ring");
    }

    #[test]
    fn grows_keeping_bytes_beyond_len() {
        let p = &mut BufferPool::default();
        let mut r = Ring::new(1 << 20);
        r.push(p, b"abc");
        r.consume(1);
        r.write_at(p, 5000, b"xyz");
        r.write_at(p, 2, b"defg");
        r.extend_len(4);
        let mut out = [0u8; 6];
        assert_eq!(r.read_at(0, &mut out), 6);
        assert_eq!(&out, b"bcdefg");
        r.write_at(p, 6, &vec![b'-'; 4994]);
        r.extend_len(4994 + 3);
        let mut tail = [0u8; 3];
        r.read_at(5000, &mut tail);
        assert_eq!(&tail, b"xyz");
    }

    #[test]
    fn write_at_respects_limit() {
        let p = &mut BufferPool::default();
        let mut r = Ring::new(10);
        assert_eq!(r.write_at(p, 8, b"abcd"), 2);
        assert_eq!(r.write_at(p, 10, b"x"), 0);
    }

    #[test]
    fn pooled_storage_is_reused_and_shows_only_new_bytes() {
        let p = &mut BufferPool::default();
        let mut old = Ring::new(4096);
        old.push(p, &[0xaa; 4000]);
        old.consume(4000);
        old.release_if_empty(p);
        assert_eq!(p.bytes(), 4096);
        // A new ring takes that storage: what it reads is what it wrote,
        // in order, never the old ring's bytes.
        let mut r = Ring::new(4096);
        r.write_at(p, 30, b"later");
        assert_eq!(r.allocated(), 4096, "the kept buffer, not a new small one");
        assert_eq!(p.bytes(), 0, "taken from the pool");
        assert_eq!(r.read_at(0, &mut [0u8; 16]), 0, "nothing readable before the gap fills");
        r.write_at(p, 0, &[7u8; 30]);
        r.extend_len(35);
        let mut out = [0u8; 4096];
        assert_eq!(r.read_at(0, &mut out), 35);
        assert!(out[..30].iter().all(|&b| b == 7));
        assert_eq!(&out[30..35], b"later");
    }

    #[test]
    fn pool_is_bounded() {
        let p = &mut BufferPool::default();
        for _ in 0..BufferPool::MAX_BUFFERS + 3 {
            p.give(vec![0u8; 2048].into_boxed_slice());
        }
        assert_eq!(p.bytes(), BufferPool::MAX_BUFFERS * 2048, "the count is bounded");
        p.give(vec![0u8; BufferPool::MAX_BYTES + 2048].into_boxed_slice());
        assert_eq!(p.bytes(), BufferPool::MAX_BUFFERS * 2048, "a buffer past the byte bound is freed");
        assert_eq!(p.take(4096, 8192).len(), 4096, "no kept buffer of that size: a new one");
        assert_eq!(p.take(1024, 8192).len(), 2048, "a kept one that fits");
        assert_eq!(p.bytes(), (BufferPool::MAX_BUFFERS - 1) * 2048);
    }

    #[test]
    fn a_full_pool_keeps_the_large_buffers() {
        // A ring growing step by step leaves its smaller buffers behind;
        // they must not crowd out the large one it gives back when drained.
        let p = &mut BufferPool::default();
        for i in 0..BufferPool::MAX_BUFFERS {
            p.give(vec![0u8; 2048 << i].into_boxed_slice());
        }
        let big = 4 << 20;
        p.give(vec![0u8; big].into_boxed_slice());
        assert_eq!(p.take(2048, big).len(), big, "the large buffer was kept, a small one dropped");
        // Bytes are bounded too: two large buffers push the small ones out,
        // and one that would need a larger one dropped is freed.
        p.give(vec![0u8; BufferPool::MAX_BYTES / 2].into_boxed_slice());
        p.give(vec![0u8; BufferPool::MAX_BYTES / 2].into_boxed_slice());
        assert_eq!(p.bytes(), BufferPool::MAX_BYTES);
        p.give(vec![0u8; 1 << 20].into_boxed_slice());
        assert_eq!(p.bytes(), BufferPool::MAX_BYTES, "room only by dropping a larger one: freed");
        assert_eq!(p.take(1, BufferPool::MAX_BYTES).len(), BufferPool::MAX_BYTES / 2);
    }

    #[test]
    fn limits_are_capped_at_the_largest_window() {
        let mut r = Ring::new(usize::MAX);
        assert_eq!(r.limit(), MAX_LIMIT);
        r.set_limit(5 << 30);
        assert_eq!(r.limit(), MAX_LIMIT);
        r.push(&mut BufferPool::default(), b"abc");
        r.set_limit(1);
        assert_eq!(r.limit(), 3, "never below what is held");
        // Two per connection: a layout check (issue 6), not a timing one.
        assert!(core::mem::size_of::<Ring>() <= 32);
    }
}
