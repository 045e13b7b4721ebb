//! A byte ring that allocates on demand and gives memory back when empty.
//!
//! Both socket buffers are built on it. Storage grows by powers of two up to
//! a fixed limit, so an idle connection costs no buffer memory and a busy
//! one settles at the size its traffic needs.

/// Smallest allocation, so that small exchanges do not reallocate often.
const MIN_ALLOC: usize = 2048;

/// The largest limit a ring takes: 1 GiB, the largest window TCP can
/// offer (RFC 7323 §2.3). A socket buffer beyond it could not be used (the
/// sequence space covers 2^31 bytes in flight), and the bound lets the
/// indexes be 32-bit: every connection holds two rings.
pub const MAX_LIMIT: usize = 1 << 30;

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
    fn reserve(&mut self, end: usize) {
        if end <= self.buf.len() {
            return;
        }
        let limit = self.limit();
        let new_cap = end.next_power_of_two().max(MIN_ALLOC).min(limit.next_power_of_two().max(MIN_ALLOC));
        let mut new = vec![0u8; new_cap].into_boxed_slice();
        // Unwrap the old contents to the start of the new storage. Bytes
        // beyond `len` (out-of-order data in a receive ring) are kept too.
        let old_cap = self.buf.len();
        if old_cap > 0 {
            let head = self.head as usize;
            let first = old_cap - head;
            new[..first].copy_from_slice(&self.buf[head..]);
            new[first..old_cap].copy_from_slice(&self.buf[..head]);
        }
        self.buf = new;
        self.head = 0;
    }

    /// Appends as much of `data` as fits under the limit; returns how much.
    pub fn push(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.free());
        if n == 0 {
            return 0;
        }
        self.write_at(self.len(), &data[..n]);
        self.len += n as u32;
        n
    }

    /// Writes `data` at `offset` bytes from the head, which may lie beyond
    /// `len` (a receive buffer holding out-of-order data). Nothing past the
    /// limit is written; returns how many bytes were stored.
    pub fn write_at(&mut self, offset: usize, data: &[u8]) -> usize {
        let limit = self.limit();
        if offset >= limit {
            return 0;
        }
        let n = data.len().min(limit - offset);
        if n == 0 {
            return 0;
        }
        self.reserve(offset + n);
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

    /// Frees the storage if the ring is empty and `keep_beyond` is false
    /// (receive rings keep it while out-of-order data lies past `len`).
    pub fn release_if_empty(&mut self) {
        if self.len == 0 && !self.buf.is_empty() {
            self.buf = Box::default();
            self.head = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_read_consume_wrap() {
        let mut r = Ring::new(4096);
        assert_eq!(r.allocated(), 0);
        let data: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        assert_eq!(r.push(&data), 3000);
        assert_eq!(r.allocated(), 4096);
        r.consume(2500);
        assert_eq!(r.push(&data), 3000);
        assert_eq!(r.push(&data), 596, "limited by the limit");
        assert_eq!(r.len(), 4096);
        let mut out = vec![0u8; 4096];
        assert_eq!(r.read_at(0, &mut out), 4096);
        assert_eq!(&out[..500], &data[2500..]);
        assert_eq!(&out[500..3500], &data[..]);
        assert_eq!(&out[3500..], &data[..596]);
        let (a, b) = r.as_slices();
        assert_eq!(a.len() + b.len(), 4096);
        r.consume(4096);
        r.release_if_empty();
        assert_eq!(r.allocated(), 0);
    }

    #[test]
    fn grows_keeping_bytes_beyond_len() {
        let mut r = Ring::new(1 << 20);
        r.push(b"abc");
        r.consume(1);
        r.write_at(5000, b"xyz");
        r.write_at(2, b"defg");
        r.extend_len(4);
        let mut out = [0u8; 6];
        assert_eq!(r.read_at(0, &mut out), 6);
        assert_eq!(&out, b"bcdefg");
        r.write_at(6, &vec![b'-'; 4994]);
        r.extend_len(4994 + 3);
        let mut tail = [0u8; 3];
        r.read_at(5000, &mut tail);
        assert_eq!(&tail, b"xyz");
    }

    #[test]
    fn write_at_respects_limit() {
        let mut r = Ring::new(10);
        assert_eq!(r.write_at(8, b"abcd"), 2);
        assert_eq!(r.write_at(10, b"x"), 0);
    }

    #[test]
    fn limits_are_capped_at_the_largest_window() {
        let mut r = Ring::new(usize::MAX);
        assert_eq!(r.limit(), MAX_LIMIT);
        r.set_limit(5 << 30);
        assert_eq!(r.limit(), MAX_LIMIT);
        r.push(b"abc");
        r.set_limit(1);
        assert_eq!(r.limit(), 3, "never below what is held");
        // Two per connection: a layout check (issue 6), not a timing one.
        assert!(core::mem::size_of::<Ring>() <= 32);
    }
}
