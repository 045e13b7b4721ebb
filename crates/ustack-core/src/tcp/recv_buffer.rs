//! The receive buffer: in-order bytes waiting for the application, and
//! out-of-order bytes held in place until the gap before them fills
//! (RFC 9293 §3.10.7.4, "seventh, process the segment text").
//!
//! Bytes live in one [`Ring`] at their offset from the first unread byte,
//! so a filled hole costs no copy. The out-of-order ranges are kept sorted,
//! with the order in which they last grew, which is what SACK reports
//! (RFC 2018 §4: the first block holds the most recent segment).

use super::ring::{BufferPool, Ring};
use super::seq::SeqNumber;

/// Most separate out-of-order ranges held. A flood of tiny segments with
/// gaps between them cannot make the list, or the work per segment, grow
/// without bound; segments that would open a new range past this are
/// dropped (the sender will retransmit them). A 16 MiB window that loses
/// one segment in ten has about a thousand holes.
pub const MAX_OOO_RANGES: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Range {
    start: SeqNumber,
    end: SeqNumber,
    /// Larger is more recent.
    touched: u64,
}

/// What a write did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// Bytes that became readable in order (RCV.NXT advances this much).
    pub in_order: usize,
    /// Bytes of the segment not stored before (new information).
    pub new_bytes: usize,
    /// True when the segment went into the out-of-order queue.
    pub out_of_order: bool,
    /// Not stored at all (no room, or too many ranges): not a duplicate.
    pub dropped: bool,
    /// Dropped because it would have opened a range past
    /// [`MAX_OOO_RANGES`].
    pub range_limit: bool,
}

/// The out-of-order ranges and their bookkeeping, which exist only while
/// some data is held out of order.
#[derive(Debug, Default)]
struct OutOfOrder {
    /// Sorted and disjoint (not even touching); never empty.
    ranges: Vec<Range>,
    /// Counts writes out of order, for `Range::touched`.
    clock: u64,
    /// Bytes held in `ranges`, kept as ranges change.
    bytes: usize,
}

impl OutOfOrder {
    /// Merges `[start, end)` into the out-of-order list. Returns the bytes
    /// not held before, or None when the list is full and the range would
    /// need a new entry.
    fn insert_range(&mut self, start: SeqNumber, end: SeqNumber) -> Option<usize> {
        // Ranges are sorted and disjoint (not even touching).
        let first = self.ranges.partition_point(|r| r.end < start);
        let first = (first < self.ranges.len()).then_some(first);
        let Some(first) = first else {
            if self.ranges.len() >= MAX_OOO_RANGES {
                return None;
            }
            self.ranges.push(Range { start, end, touched: self.clock });
            return Some(end - start);
        };
        if self.ranges[first].start > end {
            if self.ranges.len() >= MAX_OOO_RANGES {
                return None;
            }
            self.ranges.insert(first, Range { start, end, touched: self.clock });
            return Some(end - start);
        }
        // Overlaps or touches `first` and maybe more after it.
        let mut last = first;
        while last + 1 < self.ranges.len() && self.ranges[last + 1].start <= end {
            last += 1;
        }
        let covered: usize = self.ranges[first..=last].iter().map(|r| end.min(r.end).since(start.max(r.start))).sum();
        let merged = Range {
            start: start.min(self.ranges[first].start),
            end: end.max(self.ranges[last].end),
            touched: self.clock,
        };
        self.ranges.drain(first + 1..=last);
        self.ranges[first] = merged;
        Some((end - start) - covered)
    }
}

#[derive(Debug)]
pub struct RecvBuffer {
    ring: Ring,
    /// Allocated when a segment arrives out of order and given back when
    /// the last range is delivered: an in-order connection pays 8 bytes.
    ooo: Option<Box<OutOfOrder>>,
}

/// No ranges, for reads of a buffer without out-of-order data.
const NO_RANGES: &[Range] = &[];

impl RecvBuffer {
    pub fn new(capacity: usize) -> Self {
        RecvBuffer { ring: Ring::new(capacity), ooo: None }
    }

    fn ranges(&self) -> &[Range] {
        self.ooo.as_ref().map_or(NO_RANGES, |o| &o.ranges)
    }

    /// Gives the out-of-order state back once its last range is gone.
    fn drop_empty_ooo(&mut self) {
        if self.ooo.as_ref().is_some_and(|o| o.ranges.is_empty()) {
            self.ooo = None;
        }
    }

    /// Bytes readable by the application.
    pub fn len(&self) -> usize {
        self.ring.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }
    pub fn capacity(&self) -> usize {
        self.ring.limit()
    }
    pub fn set_capacity(&mut self, cap: usize) {
        self.ring.set_limit(cap);
    }
    pub fn allocated(&self) -> usize {
        self.ring.allocated()
    }
    /// Space left for new in-order data: the basis of the window.
    pub fn free(&self) -> usize {
        self.ring.free()
    }
    pub fn has_out_of_order(&self) -> bool {
        self.ooo.is_some()
    }
    /// Bytes held out of order.
    pub fn out_of_order_bytes(&self) -> usize {
        self.ooo.as_ref().map_or(0, |o| o.bytes)
    }

    /// Stores `data`, which starts at `seq`, given the next expected
    /// sequence number `rcv_nxt`. Bytes before `rcv_nxt` must already be
    /// trimmed by the caller; bytes beyond the buffer's space are dropped.
    pub fn write(&mut self, pool: &mut BufferPool, rcv_nxt: SeqNumber, seq: SeqNumber, data: &[u8]) -> Written {
        debug_assert!(seq >= rcv_nxt);
        let offset = seq - rcv_nxt;
        let space = self.ring.free();
        if data.is_empty() {
            return Written::default();
        }
        if offset >= space {
            return Written { dropped: true, ..Written::default() };
        }
        let data = &data[..data.len().min(space - offset)];
        let start = seq;
        let end = seq + data.len();
        if offset > 0 {
            let ooo = self.ooo.get_or_insert_with(Box::default);
            ooo.clock += 1;
            let new_bytes = ooo.insert_range(start, end);
            let Some(new_bytes) = new_bytes else {
                self.drop_empty_ooo();
                return Written { dropped: true, range_limit: true, ..Written::default() };
            };
            ooo.bytes += new_bytes;
            if new_bytes > 0 {
                self.ring.write_at(pool, self.ring.len() + offset, data);
            }
            return Written { in_order: 0, new_bytes, out_of_order: true, ..Written::default() };
        }
        // In order: store, then swallow any out-of-order ranges it reaches.
        self.ring.write_at(pool, self.ring.len(), data);
        let mut new_end = end;
        let mut new_bytes = data.len();
        if let Some(ooo) = self.ooo.as_mut() {
            let mut i = 0;
            while i < ooo.ranges.len() {
                let r = ooo.ranges[i];
                if r.start <= new_end {
                    if r.end > new_end {
                        new_end = r.end;
                    }
                    // Bytes of this range that the segment also carried
                    // were not new.
                    let overlap = end.min(r.end).since(r.start.max(start));
                    new_bytes -= overlap;
                    ooo.bytes -= r.end - r.start;
                    ooo.ranges.remove(i);
                } else {
                    i += 1;
                }
            }
            self.drop_empty_ooo();
        }
        let in_order = new_end - rcv_nxt;
        self.ring.extend_len(in_order);
        Written { in_order, new_bytes, ..Written::default() }
    }

    /// Copies readable bytes into `out` and consumes them.
    pub fn read(&mut self, out: &mut [u8]) -> usize {
        let n = self.ring.read_at(0, out);
        self.ring.consume(n);
        n
    }

    /// Copies readable bytes into `out` without consuming them.
    pub fn peek(&self, out: &mut [u8]) -> usize {
        self.ring.read_at(0, out)
    }

    /// The readable bytes as at most two slices.
    pub fn as_slices(&self) -> (&[u8], &[u8]) {
        self.ring.as_slices()
    }

    /// Consumes `n` readable bytes.
    pub fn consume(&mut self, n: usize) {
        self.ring.consume(n);
    }

    /// Whether the buffer holds storage but no data, in order or not.
    pub fn is_drained_with_storage(&self) -> bool {
        self.ring.is_empty() && self.ooo.is_none() && self.ring.allocated() > 0
    }

    /// Gives the storage back to `pool` if no data lies in it.
    pub fn release_if_drained(&mut self, pool: &mut BufferPool) {
        if self.ring.is_empty() && self.ooo.is_none() {
            self.ring.release_if_empty(pool);
        }
    }

    /// The end of the out-of-order data, if any: the highest sequence
    /// number received plus one.
    pub fn highest_ooo_end(&self) -> Option<SeqNumber> {
        self.ranges().last().map(|r| r.end)
    }

    /// Number of out-of-order ranges.
    pub fn sack_block_count(&self) -> usize {
        self.ranges().len()
    }

    /// Up to `max` SACK blocks, most recently changed first (RFC 2018 §4),
    /// without allocating.
    pub fn sack_block_iter(&self, max: usize) -> impl Iterator<Item = (SeqNumber, SeqNumber)> + '_ {
        let mut last = u64::MAX;
        let ranges = self.ranges();
        (0..max.min(ranges.len())).map_while(move |_| {
            let r = ranges.iter().filter(|r| r.touched < last).max_by_key(|r| r.touched)?;
            last = r.touched;
            Some((r.start, r.end))
        })
    }

    /// SACK blocks, most recently changed first (RFC 2018 §4).
    pub fn sack_blocks(&self, max: usize, out: &mut Vec<(SeqNumber, SeqNumber)>) {
        out.clear();
        out.extend(self.sack_block_iter(max));
    }

    /// Drops all out-of-order data (the connection is going away).
    pub fn clear(&mut self) {
        self.ooo = None;
        let n = self.ring.len();
        self.ring.consume(n);
        // Rare (a reset, a shutdown): the storage is simply freed.
        self.ring.release_if_empty(&mut BufferPool::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u32) -> SeqNumber {
        SeqNumber(n)
    }

    #[test]
    fn in_order_then_read() {
        let mut b = RecvBuffer::new(100);
        let p = &mut BufferPool::default();
        let w = b.write(p, s(10), s(10), b"hello");
        assert_eq!(w, Written { in_order: 5, new_bytes: 5, ..Written::default() });
        let mut out = [0u8; 10];
        assert_eq!(b.read(&mut out), 5);
        assert_eq!(&out[..5], b"hello");
        assert!(b.is_drained_with_storage(), "storage kept a while after draining");
        b.release_if_drained(p);
        assert_eq!(b.allocated(), 0, "then given back");
        assert!(!b.is_drained_with_storage());
    }

    #[test]
    fn hole_filled_delivers_everything() {
        let mut b = RecvBuffer::new(100);
        let p = &mut BufferPool::default();
        assert!(b.write(p, s(0), s(5), b"world").out_of_order);
        assert_eq!(b.len(), 0);
        assert!(b.write(p, s(0), s(12), b"!!").out_of_order);
        let mut v = Vec::new();
        b.sack_blocks(4, &mut v);
        assert_eq!(v, vec![(s(12), s(14)), (s(5), s(10))], "most recent first");
        let w = b.write(p, s(0), s(0), b"hello");
        assert_eq!(w.in_order, 10);
        assert!(b.has_out_of_order());
        let w = b.write(p, s(10), s(10), b"xy");
        assert_eq!(w.in_order, 4);
        let mut out = [0u8; 20];
        let n = b.read(&mut out);
        assert_eq!(&out[..n], b"helloworldxy!!");
        assert!(!b.has_out_of_order());
    }

    #[test]
    fn duplicates_are_not_new() {
        let mut b = RecvBuffer::new(100);
        let p = &mut BufferPool::default();
        b.write(p, s(0), s(10), b"abcdef");
        let w = b.write(p, s(0), s(12), b"cd");
        assert_eq!(w.new_bytes, 0);
        let w = b.write(p, s(0), s(8), b"xxabcdefgh");
        assert_eq!(w.new_bytes, 4);
        let w = b.write(p, s(0), s(0), b"01234567xxabcdefgh");
        assert_eq!(w.in_order, 18);
        assert_eq!(w.new_bytes, 8);
    }

    #[test]
    fn data_past_the_space_is_dropped() {
        let mut b = RecvBuffer::new(8);
        let p = &mut BufferPool::default();
        let w = b.write(p, s(0), s(0), b"0123456789");
        assert_eq!(w.in_order, 8);
        assert_eq!(b.free(), 0);
        assert_eq!(b.write(p, s(8), s(8), b"x"), Written { dropped: true, ..Written::default() });
    }

    #[test]
    fn range_count_is_bounded() {
        let mut b = RecvBuffer::new(1 << 20);
        let p = &mut BufferPool::default();
        for i in 0..(MAX_OOO_RANGES as u32 + 10) {
            b.write(p, s(0), s(10 + i * 10), b"x");
        }
        assert_eq!(b.out_of_order_bytes(), MAX_OOO_RANGES);
        // A new range past the cap is dropped, and says why.
        let w = b.write(p, s(0), s(100_000), b"z");
        assert!(w.dropped && w.range_limit, "{w:?}");
        // Extending an existing range is still accepted.
        assert_eq!(b.write(p, s(0), s(11), b"y").new_bytes, 1);
    }

    #[test]
    fn wraps_around_sequence_space() {
        let mut b = RecvBuffer::new(100);
        let p = &mut BufferPool::default();
        let base = s(u32::MAX - 3);
        b.write(p, base, base + 6, b"ghij");
        b.write(p, base, base, b"abcdef");
        let mut out = [0u8; 10];
        assert_eq!(b.read(&mut out), 10);
        assert_eq!(&out, b"abcdefghij");
    }

    #[test]
    fn out_of_order_state_is_given_back_when_the_hole_fills() {
        let mut b = RecvBuffer::new(100);
        let p = &mut BufferPool::default();
        assert!(b.write(p, s(0), s(5), b"world").out_of_order);
        assert!(b.has_out_of_order());
        assert_eq!(b.out_of_order_bytes(), 5);
        assert_eq!(b.write(p, s(0), s(0), b"hello").in_order, 10);
        assert!(!b.has_out_of_order());
        assert_eq!(b.out_of_order_bytes(), 0);
        assert_eq!(b.sack_block_count(), 0);
        // An in-order connection holds a ring and an empty pointer: a
        // layout check (issue 6), not a timing one.
        assert!(core::mem::size_of::<RecvBuffer>() <= 40);
    }
}
