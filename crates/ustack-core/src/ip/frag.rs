//! IPv4 fragmentation: reassembly of incoming fragments (RFC 791 §3.2,
//! RFC 815) and the plan for fragmenting outgoing datagrams.
//!
//! # Reassembly
//!
//! Fragments are grouped by [`FragKey`] (source, destination, protocol,
//! identification: RFC 791 §2.3). Each datagram under reassembly owns one
//! buffer, as long as the highest fragment end seen so far, and a sorted
//! list of the fragments received; the payload is complete when the last
//! fragment (MF = 0) has fixed the total length and the fragments received
//! add up to it. Nothing is allocated per fragment beyond growing those two
//! vectors, and the finished buffer is handed out without a copy.
//!
//! This input is attacker-controlled, so the rules are strict:
//! - a fragment ending past 65535 − 20 bytes is [`FragError::TooBig`] (the
//!   "ping of death") and its datagram is dropped;
//! - a fragment that is not the last must carry a non-zero multiple of 8
//!   bytes, and offsets are multiples of 8 (RFC 791 §3.1): otherwise
//!   [`FragError::Malformed`], and only that fragment is dropped;
//! - an exact duplicate (same offset and length) is ignored: retransmitted
//!   or duplicated by the network, it changes nothing;
//! - any other overlap drops the whole datagram ([`FragError::Overlap`]).
//!   RFC 791's reassembly lets later data overwrite earlier, and that
//!   ambiguity is what the teardrop attack and IDS evasion feed on; RFC 5722
//!   forbids overlaps for IPv6 and Linux does the same for IPv4, and no
//!   honest sender produces them;
//! - fragments that disagree about where the datagram ends (two different
//!   last fragments, data past the end) drop the datagram
//!   ([`FragError::Inconsistent`]).
//!
//! Memory is bounded twice: by the number of datagrams under reassembly and
//! by the bytes buffered across all of them. When a fragment would exceed
//! either, the oldest other datagrams are evicted first; a datagram that
//! could not fit even alone is dropped with its fragment
//! ([`FragError::NoMemory`]).
//!
//! A datagram is given [`ReassemblyConfig::timeout`] from its first
//! fragment to complete, a fixed timeout (RFC 1122 §3.3.2). We use 30 s,
//! Linux's `ipfrag_time`: RFC 1122 suggests 60 to 120 s, but a shorter
//! timeout frees memory sooner and limits the damage of an IP
//! identification wrapping around on a fast link (RFC 4963 §2).
//!
//! # Fragmentation
//!
//! [`fragment_plan`] cuts a payload into pieces that fit an MTU with a
//! 20-byte header, every piece but the last a multiple of 8 bytes.

use crate::time::{Duration, Instant};
use core::fmt;
use core::iter::FusedIterator;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// Length of an IPv4 header without options.
const HEADER_LEN: usize = 20;
/// The largest payload of an IPv4 datagram with a 20-byte header.
pub const MAX_PAYLOAD: usize = 65535 - HEADER_LEN;
/// The smallest MTU every IPv4 link must carry (RFC 791 §3.2, "Every
/// internet module must be able to forward a datagram of 68 octets").
pub const MIN_MTU: usize = 68;

/// What identifies the fragments of one datagram (RFC 791 §2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FragKey {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    pub ident: u16,
}

/// Tunables of the [`Reassembler`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReassemblyConfig {
    /// Time from a datagram's first fragment to its abandonment. 30 s (see
    /// the [module documentation](self) for why).
    pub timeout: Duration,
    /// Payload bytes buffered across all datagrams at most. 256 KiB.
    pub max_bytes: usize,
    /// Datagrams under reassembly at most. 64, treated as at least 1.
    pub max_datagrams: usize,
}

impl Default for ReassemblyConfig {
    fn default() -> Self {
        ReassemblyConfig { timeout: Duration::from_secs(30), max_bytes: 256 * 1024, max_datagrams: 64 }
    }
}

/// Why a fragment was refused. Each is counted in [`ReassemblyStats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FragError {
    /// The fragment ends past [`MAX_PAYLOAD`]; the datagram is dropped.
    TooBig,
    /// An offset or a non-last length that is not a multiple of 8, or an
    /// empty non-last fragment; only this fragment is dropped.
    Malformed,
    /// Overlaps a fragment already received without duplicating it exactly;
    /// the datagram is dropped.
    Overlap,
    /// Disagrees about the end of the datagram; the datagram is dropped.
    Inconsistent,
    /// No room within the memory bounds; the fragment is dropped, and its
    /// datagram too (it could never fit).
    NoMemory,
}

impl fmt::Display for FragError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FragError::TooBig => "fragment ends past the largest IPv4 datagram",
            FragError::Malformed => "fragment offset or length not a multiple of 8",
            FragError::Overlap => "fragment overlaps another",
            FragError::Inconsistent => "fragments disagree on the datagram's length",
            FragError::NoMemory => "no room to buffer the fragment",
        })
    }
}

impl std::error::Error for FragError {}

/// A datagram abandoned by [`Reassembler::handle_timeout`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimedOut {
    pub key: FragKey,
    /// The payload of the fragment at offset 0 if it was received (always
    /// at least 8 bytes), else `None`. RFC 792: send ICMP Time Exceeded,
    /// code 1 ("fragment reassembly time exceeded"), quoting the header and
    /// the first 8 data bytes, only if fragment zero is available. The
    /// reassembler keeps no headers: the stack rebuilds the quoted header
    /// from the key (MF set, offset 0).
    pub first_fragment: Option<Vec<u8>>,
}

/// Counters, for `netstat`-like display.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReassemblyStats {
    /// Datagrams completed.
    pub reassembled: u64,
    /// Datagrams abandoned by timeout.
    pub timed_out: u64,
    /// Datagrams dropped for an overlapping fragment.
    pub overlaps: u64,
    /// Fragments ending past [`MAX_PAYLOAD`] (their datagram dropped).
    pub too_big: u64,
    /// Fragments refused as malformed.
    pub malformed: u64,
    /// Datagrams dropped because fragments disagreed on the end.
    pub inconsistent: u64,
    /// Exact duplicate fragments ignored.
    pub duplicates: u64,
    /// Datagrams evicted (oldest first) to make room for another.
    pub evicted: u64,
    /// Fragments refused because their datagram could not fit at all.
    pub memory_drops: u64,
}

/// One datagram under reassembly.
#[derive(Clone, Debug)]
struct Datagram {
    /// The payload so far; its length is the highest fragment end seen.
    buffer: Vec<u8>,
    /// The fragments received, as `[start, end)`: sorted, disjoint, non-empty.
    /// Kept apart (not merged) so that an exact duplicate can be told from
    /// an overlap.
    fragments: Vec<(u16, u16)>,
    /// Sum of the fragments' lengths.
    received: usize,
    /// The payload length, once the last fragment has arrived.
    total: Option<usize>,
    /// This datagram's key in `Reassembler::by_age`.
    age: (Instant, u64),
}

/// Where a new fragment `[start, end)` goes among those received.
enum Slot {
    Free(usize),
    Duplicate,
    Overlap,
}

impl Datagram {
    fn slot(&self, start: usize, end: usize) -> Slot {
        let idx = self.fragments.partition_point(|&(s, _)| usize::from(s) < start);
        if let Some(&(s, e)) = self.fragments.get(idx) {
            if usize::from(s) == start && usize::from(e) == end {
                return Slot::Duplicate;
            }
            if usize::from(s) < end {
                return Slot::Overlap;
            }
        }
        if let Some(prev) = idx.checked_sub(1).and_then(|i| self.fragments.get(i))
            && usize::from(prev.1) > start
        {
            return Slot::Overlap;
        }
        Slot::Free(idx)
    }
}

/// Reassembles fragmented IPv4 payloads. See the [module
/// documentation](self) for the rules.
#[derive(Clone, Debug)]
pub struct Reassembler {
    config: ReassemblyConfig,
    /// Ordered maps: deterministic, and no hash for an attacker to aim at.
    datagrams: BTreeMap<FragKey, Datagram>,
    /// Datagrams by `(first fragment time, sequence number)`: oldest first.
    by_age: BTreeMap<(Instant, u64), FragKey>,
    next_seq: u64,
    /// Sum of the buffers' lengths.
    bytes: usize,
    stats: ReassemblyStats,
}

impl Default for Reassembler {
    fn default() -> Self {
        Self::new(ReassemblyConfig::default())
    }
}

impl Reassembler {
    pub fn new(config: ReassemblyConfig) -> Self {
        Reassembler {
            config,
            datagrams: BTreeMap::new(),
            by_age: BTreeMap::new(),
            next_seq: 0,
            bytes: 0,
            stats: ReassemblyStats::default(),
        }
    }

    pub fn config(&self) -> &ReassemblyConfig {
        &self.config
    }

    pub fn stats(&self) -> ReassemblyStats {
        self.stats
    }

    /// Payload bytes buffered across all datagrams under reassembly (each
    /// datagram's buffer reaches to the highest fragment end seen).
    pub fn bytes_buffered(&self) -> usize {
        self.bytes
    }

    /// Datagrams under reassembly.
    pub fn len(&self) -> usize {
        self.datagrams.len()
    }

    pub fn is_empty(&self) -> bool {
        self.datagrams.is_empty()
    }

    /// Adds one fragment: `data` is its payload, at `offset` bytes (the
    /// header's fragment offset times 8), `more_frags` its MF flag.
    ///
    /// Returns `Ok(Some(payload))` with the whole payload when this fragment
    /// completes the datagram, `Ok(None)` while fragments are missing (or
    /// for an ignored duplicate), and an error when the fragment was
    /// refused; see [`FragError`] for what each error drops.
    pub fn add(
        &mut self,
        now: Instant,
        key: FragKey,
        offset: usize,
        more_frags: bool,
        data: &[u8],
    ) -> Result<Option<Vec<u8>>, FragError> {
        // RFC 791 §3.1: offsets count 8-byte units, and every fragment but
        // the last carries a multiple of 8 bytes.
        if offset & 7 != 0 || (more_frags && (data.is_empty() || data.len() & 7 != 0)) {
            self.stats.malformed += 1;
            return Err(FragError::Malformed);
        }
        let end = match offset.checked_add(data.len()) {
            Some(end) if end <= MAX_PAYLOAD => end,
            _ => {
                self.stats.too_big += 1;
                self.drop_datagram(&key);
                return Err(FragError::TooBig);
            }
        };

        // Check the fragment against what the datagram already has.
        let (slot, buffered) = match self.datagrams.get(&key) {
            None => (0, 0),
            Some(d) => {
                let consistent = match d.total {
                    Some(total) if more_frags => end <= total,
                    Some(total) => end == total,
                    None if more_frags => true,
                    None => d.buffer.len() <= end,
                };
                if !consistent {
                    self.stats.inconsistent += 1;
                    self.drop_datagram(&key);
                    return Err(FragError::Inconsistent);
                }
                if data.is_empty() {
                    // An empty last fragment only fixes the length; a
                    // second one with the same end is a duplicate.
                    if d.total.is_some() {
                        self.stats.duplicates += 1;
                        return Ok(None);
                    }
                    (0, d.buffer.len())
                } else {
                    match d.slot(offset, end) {
                        Slot::Free(idx) => (idx, d.buffer.len()),
                        Slot::Duplicate => {
                            self.stats.duplicates += 1;
                            return Ok(None);
                        }
                        Slot::Overlap => {
                            self.stats.overlaps += 1;
                            self.drop_datagram(&key);
                            return Err(FragError::Overlap);
                        }
                    }
                }
            }
        };

        // Memory bounds.
        let max_bytes = self.config.max_bytes;
        if end > max_bytes {
            // This datagram alone could never fit.
            self.stats.memory_drops += 1;
            self.drop_datagram(&key);
            return Err(FragError::NoMemory);
        }
        let growth = end.saturating_sub(buffered);
        let exists = self.datagrams.contains_key(&key);
        while self.bytes.saturating_add(growth) > max_bytes
            || (!exists && self.datagrams.len() >= self.config.max_datagrams.max(1))
        {
            if !self.evict_oldest_except(&key) {
                break; // unreachable: only `key` left, and it fits alone
            }
        }

        // Store the fragment.
        if !exists {
            let age = (now, self.next_seq);
            self.next_seq += 1;
            self.by_age.insert(age, key);
            self.datagrams
                .insert(key, Datagram { buffer: Vec::new(), fragments: Vec::new(), received: 0, total: None, age });
        }
        let Some(d) = self.datagrams.get_mut(&key) else {
            return Ok(None); // unreachable: present or just inserted
        };
        if d.buffer.len() < end {
            if !more_frags {
                // The final length is known: no slack beyond it.
                d.buffer.reserve_exact(end - d.buffer.len());
            }
            d.buffer.resize(end, 0);
        }
        self.bytes += growth;
        if let Some(dst) = d.buffer.get_mut(offset..end) {
            dst.copy_from_slice(data);
        }
        if !data.is_empty() {
            // Both ends are at most MAX_PAYLOAD, which fits in a u16.
            d.fragments.insert(slot, (offset as u16, end as u16));
            d.received += data.len();
        }
        if !more_frags {
            d.total = Some(end);
        }
        if d.total != Some(d.received) {
            return Ok(None);
        }
        self.stats.reassembled += 1;
        Ok(self.take_datagram(&key).map(|d| d.buffer))
    }

    /// Removes a datagram and its bookkeeping, if present.
    fn take_datagram(&mut self, key: &FragKey) -> Option<Datagram> {
        let d = self.datagrams.remove(key)?;
        self.by_age.remove(&d.age);
        self.bytes -= d.buffer.len();
        Some(d)
    }

    fn drop_datagram(&mut self, key: &FragKey) {
        self.take_datagram(key);
    }

    /// Evicts the oldest datagram other than `keep`; false if there is none.
    fn evict_oldest_except(&mut self, keep: &FragKey) -> bool {
        let Some(victim) = self.by_age.values().find(|k| *k != keep).copied() else {
            return false;
        };
        self.take_datagram(&victim);
        self.stats.evicted += 1;
        true
    }

    /// When the oldest datagram times out, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.by_age.first_key_value().map(|((first, _), _)| *first + self.config.timeout)
    }

    /// Abandons the datagrams whose first fragment came `timeout` or more
    /// before `now`, oldest first. See [`TimedOut`] for the ICMP rule.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<TimedOut> {
        let mut out = Vec::new();
        while let Some((&(first, _), &key)) = self.by_age.first_key_value() {
            if first + self.config.timeout > now {
                break;
            }
            let Some(d) = self.take_datagram(&key) else {
                self.by_age.pop_first(); // unreachable: maps kept in step
                continue;
            };
            self.stats.timed_out += 1;
            let first_fragment = match d.fragments.first() {
                Some(&(0, end)) => {
                    let mut buffer = d.buffer;
                    buffer.truncate(usize::from(end));
                    Some(buffer)
                }
                _ => None,
            };
            out.push(TimedOut { key, first_fragment });
        }
        out
    }
}

/// One fragment of an outgoing datagram: `len` payload bytes from
/// `offset`, with the MF flag `more`. The header's fragment offset field is
/// `offset / 8`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FragPiece {
    pub offset: usize,
    pub len: usize,
    pub more: bool,
}

/// The pieces of a payload, in order; see [`fragment_plan`].
#[derive(Clone, Debug)]
pub struct FragPlan {
    next: usize,
    total: usize,
    /// Payload bytes that fit in one packet.
    room: usize,
    /// Payload bytes of a non-last piece: `room` rounded down to 8.
    step: usize,
    done: bool,
}

/// How to send a `payload_len`-byte payload over a link of `mtu` bytes with
/// a 20-byte IPv4 header (RFC 791 §3.2, "fragmentation procedure"): one
/// piece if it fits, else pieces of the largest multiple of 8 that fits and
/// a last piece with the rest. An `mtu` below 68 is taken as 68 (RFC 791
/// minimum). A zero-length payload gives one empty piece.
///
/// The caller checks `payload_len <= MAX_PAYLOAD` and the DF flag (RFC 1191:
/// with DF set, send ICMP "fragmentation needed" or fail with EMSGSIZE
/// instead).
pub fn fragment_plan(payload_len: usize, mtu: usize) -> FragPlan {
    let room = mtu.max(MIN_MTU) - HEADER_LEN;
    FragPlan { next: 0, total: payload_len, room, step: room / 8 * 8, done: false }
}

impl Iterator for FragPlan {
    type Item = FragPiece;

    fn next(&mut self) -> Option<FragPiece> {
        if self.done {
            return None;
        }
        let offset = self.next;
        let rest = self.total - offset;
        let piece = if rest <= self.room {
            self.done = true;
            FragPiece { offset, len: rest, more: false }
        } else {
            FragPiece { offset, len: self.step, more: true }
        };
        self.next += piece.len;
        Some(piece)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = if self.done {
            0
        } else {
            let rest = self.total - self.next;
            // Full steps until what is left fits in one packet, plus that.
            rest.saturating_sub(self.room).div_ceil(self.step) + 1
        };
        (n, Some(n))
    }
}

impl ExactSizeIterator for FragPlan {}
impl FusedIterator for FragPlan {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rand::Rng;

    fn key(ident: u16) -> FragKey {
        FragKey { src: Ipv4Addr::new(10, 0, 0, 1), dst: Ipv4Addr::new(10, 0, 0, 2), protocol: 17, ident }
    }
    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }
    fn payload(len: usize, seed: u64) -> Vec<u8> {
        let mut v = vec![0; len];
        Rng::new(seed).fill(&mut v);
        v
    }
    /// The pieces of `data` cut by the plan for `mtu`.
    fn pieces(len: usize, mtu: usize) -> Vec<FragPiece> {
        fragment_plan(len, mtu).collect()
    }
    fn shuffle<T>(rng: &mut Rng, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
    /// Feeds `order` of `frags` of `data`; returns the result of the last.
    fn feed(
        r: &mut Reassembler,
        k: FragKey,
        data: &[u8],
        frags: &[FragPiece],
        order: &[usize],
    ) -> Vec<Result<Option<Vec<u8>>, FragError>> {
        order
            .iter()
            .map(|&i| {
                let p = frags[i];
                r.add(t(0), k, p.offset, p.more, &data[p.offset..p.offset + p.len])
            })
            .collect()
    }

    #[test]
    fn plan_matches_hand_computed_examples() {
        let p = pieces(4000, 1500);
        assert_eq!(
            p,
            [
                FragPiece { offset: 0, len: 1480, more: true },
                FragPiece { offset: 1480, len: 1480, more: true },
                FragPiece { offset: 2960, len: 1040, more: false },
            ]
        );
        // Fits exactly: not fragmented.
        assert_eq!(pieces(1480, 1500), [FragPiece { offset: 0, len: 1480, more: false }]);
        let lens = |v: Vec<FragPiece>| v.iter().map(|p| p.len).collect::<Vec<_>>();
        assert_eq!(lens(pieces(1481, 1500)), [1480, 1]);
        // MTU 1006: 986 bytes of room, 984 per non-last piece; the last
        // piece may use the whole room.
        assert_eq!(lens(pieces(984 + 986, 1006)), [984, 986]);
        assert_eq!(lens(pieces(984 + 987, 1006)), [984, 984, 3]);
        // Below the minimum MTU, 68 is used: 48 bytes per piece.
        assert_eq!(lens(pieces(100, 10)), [48, 48, 4]);
        assert_eq!(lens(pieces(100, 68)), [48, 48, 4]);
        assert_eq!(pieces(0, 1500), [FragPiece { offset: 0, len: 0, more: false }]);
        // The largest datagram at the minimum MTU.
        let p = pieces(MAX_PAYLOAD, 68);
        assert_eq!(p.len(), MAX_PAYLOAD.div_ceil(48));
        assert_eq!(p.last().unwrap().offset + p.last().unwrap().len, MAX_PAYLOAD);
    }

    #[test]
    fn plan_pieces_are_valid_and_sized_exactly() {
        let mut rng = Rng::new(3);
        for _ in 0..2000 {
            let len = rng.below(MAX_PAYLOAD as u64 + 1) as usize;
            let mtu = rng.below(9100) as usize;
            let plan = fragment_plan(len, mtu);
            let expect = plan.len();
            let p: Vec<FragPiece> = plan.collect();
            assert_eq!(p.len(), expect, "len {len} mtu {mtu}");
            let mut at = 0;
            for (i, piece) in p.iter().enumerate() {
                assert_eq!(piece.offset, at);
                assert!(HEADER_LEN + piece.len <= mtu.max(MIN_MTU));
                assert_eq!(piece.more, i + 1 < p.len());
                if piece.more {
                    assert_eq!(piece.len % 8, 0);
                    assert!(piece.len > 0);
                }
                at += piece.len;
            }
            assert_eq!(at, len);
        }
    }

    #[test]
    fn reassembles_in_order_and_in_reverse() {
        let data = payload(4000, 1);
        let frags = pieces(4000, 1500);
        let mut r = Reassembler::default();
        let res = feed(&mut r, key(1), &data, &frags, &[0, 1, 2]);
        assert_eq!(res[..2], [Ok(None), Ok(None)]);
        assert_eq!(res[2], Ok(Some(data.clone())));
        let res = feed(&mut r, key(2), &data, &frags, &[2, 1, 0]);
        assert_eq!(res[2], Ok(Some(data.clone())));
        assert!(r.is_empty());
        assert_eq!(r.bytes_buffered(), 0);
        assert_eq!(r.poll_timeout(), None);
        assert_eq!(r.stats().reassembled, 2);
    }

    #[test]
    fn reassembles_in_random_order() {
        let mut rng = Rng::new(42);
        let data = payload(20_000, 2);
        let frags = pieces(data.len(), 576);
        let mut r = Reassembler::default();
        for ident in 0..20 {
            let mut order: Vec<usize> = (0..frags.len()).collect();
            shuffle(&mut rng, &mut order);
            let res = feed(&mut r, key(ident), &data, &frags, &order);
            assert!(res[..res.len() - 1].iter().all(|x| *x == Ok(None)));
            assert_eq!(res.last().unwrap(), &Ok(Some(data.clone())));
        }
        assert!(r.is_empty());
    }

    #[test]
    fn interleaved_datagrams_do_not_mix() {
        let a = payload(3000, 1);
        let b = payload(3000, 2);
        let frags = pieces(3000, 1500);
        let mut r = Reassembler::default();
        let mut other = key(1);
        other.src = Ipv4Addr::new(10, 0, 0, 9);
        for (i, p) in frags.iter().enumerate() {
            let range = p.offset..p.offset + p.len;
            let ra = r.add(t(0), key(1), p.offset, p.more, &a[range.clone()]);
            let rb = r.add(t(0), other, p.offset, p.more, &b[range]);
            if i + 1 == frags.len() {
                assert_eq!(ra, Ok(Some(a.clone())));
                assert_eq!(rb, Ok(Some(b.clone())));
            } else {
                assert_eq!((ra, rb), (Ok(None), Ok(None)));
                assert_eq!(r.len(), 2);
            }
        }
    }

    #[test]
    fn exact_duplicates_are_ignored() {
        let data = payload(4000, 1);
        let frags = pieces(4000, 1500);
        let mut r = Reassembler::default();
        let res = feed(&mut r, key(1), &data, &frags, &[1, 1, 2, 2, 0]);
        assert_eq!(res[..4], [Ok(None), Ok(None), Ok(None), Ok(None)]);
        assert_eq!(res[4], Ok(Some(data)));
        assert_eq!(r.stats().duplicates, 2);
        assert_eq!(r.stats().overlaps, 0);
    }

    #[test]
    fn any_other_overlap_drops_the_datagram() {
        let data = payload(64, 1);
        let mut r = Reassembler::default();
        let k = key(1);
        // [0,16) then [8,24): partial overlap.
        r.add(t(0), k, 0, true, &data[..16]).unwrap();
        assert_eq!(r.add(t(0), k, 8, true, &data[8..24]), Err(FragError::Overlap));
        assert!(r.is_empty());
        assert_eq!(r.bytes_buffered(), 0);
        // [0,8) + [8,16), then [0,16): covers two fragments, not a duplicate.
        r.add(t(0), k, 0, true, &data[..8]).unwrap();
        r.add(t(0), k, 8, true, &data[8..16]).unwrap();
        assert_eq!(r.add(t(0), k, 0, true, &data[..16]), Err(FragError::Overlap));
        // [0,16), then [0,8): same start, contained.
        r.add(t(0), k, 0, true, &data[..16]).unwrap();
        assert_eq!(r.add(t(0), k, 0, true, &data[..8]), Err(FragError::Overlap));
        // [16,32), then [8,24): overlaps from the left.
        r.add(t(0), k, 16, true, &data[16..32]).unwrap();
        assert_eq!(r.add(t(0), k, 8, true, &data[8..24]), Err(FragError::Overlap));
        // Teardrop: a last fragment inside the first one.
        r.add(t(0), k, 0, true, &data[..32]).unwrap();
        assert_eq!(r.add(t(0), k, 24, false, &data[24..27]), Err(FragError::Inconsistent));
        assert_eq!(r.stats().overlaps, 4);
        assert_eq!(r.stats().inconsistent, 1);
        assert!(r.is_empty());
        // Later fragments start a fresh datagram.
        r.add(t(0), k, 8, false, &data[8..10]).unwrap();
        assert_eq!(r.add(t(0), k, 0, true, &data[..8]), Ok(Some(data[..10].to_vec())));
    }

    #[test]
    fn disagreeing_ends_drop_the_datagram() {
        let data = payload(64, 1);
        let k = key(1);
        let mut r = Reassembler::default();
        // Two different last fragments.
        r.add(t(0), k, 16, false, &data[16..20]).unwrap();
        assert_eq!(r.add(t(0), k, 16, false, &data[16..24]), Err(FragError::Inconsistent));
        assert!(r.is_empty());
        // A non-last fragment past the known end.
        r.add(t(0), k, 16, false, &data[16..20]).unwrap();
        assert_eq!(r.add(t(0), k, 24, true, &data[24..32]), Err(FragError::Inconsistent));
        // A last fragment before data already received.
        r.add(t(0), k, 32, true, &data[32..40]).unwrap();
        assert_eq!(r.add(t(0), k, 8, false, &data[8..16]), Err(FragError::Inconsistent));
        assert_eq!(r.stats().inconsistent, 3);
        assert!(r.is_empty());
    }

    #[test]
    fn an_empty_last_fragment_fixes_the_length() {
        let data = payload(16, 1);
        let k = key(1);
        let mut r = Reassembler::default();
        assert_eq!(r.add(t(0), k, 16, false, &[]), Ok(None));
        assert_eq!(r.add(t(0), k, 16, false, &[]), Ok(None)); // duplicate
        assert_eq!(r.add(t(0), k, 8, true, &data[8..]), Ok(None));
        assert_eq!(r.add(t(0), k, 0, true, &data[..8]), Ok(Some(data)));
        // And on its own, an empty unfragmented payload.
        assert_eq!(r.add(t(0), k, 0, false, &[]), Ok(Some(vec![])));
    }

    #[test]
    fn malformed_fragments_are_dropped_alone() {
        let data = payload(64, 1);
        let k = key(1);
        let mut r = Reassembler::default();
        r.add(t(0), k, 0, true, &data[..8]).unwrap();
        for (off, more, len) in [(8, true, 12), (8, true, 0), (4, true, 8), (12, false, 4)] {
            assert_eq!(
                r.add(t(0), k, off, more, &data[off..off + len]),
                Err(FragError::Malformed),
                "{off} {more} {len}"
            );
        }
        assert_eq!(r.stats().malformed, 4);
        assert_eq!(r.len(), 1);
        assert_eq!(r.add(t(0), k, 8, false, &data[8..9]), Ok(Some(data[..9].to_vec())));
    }

    #[test]
    fn too_big_drops_the_datagram() {
        let k = key(1);
        let mut r = Reassembler::default();
        r.add(t(0), k, 0, true, &[0; 8]).unwrap();
        // 65512 + 8 = 65520 > 65515: the ping of death.
        assert_eq!(r.add(t(0), k, 65512, false, &[0; 8]), Err(FragError::TooBig));
        assert!(r.is_empty());
        assert_eq!(r.add(t(0), k, usize::MAX - 7, true, &[0; 8]), Err(FragError::TooBig));
        assert_eq!(r.stats().too_big, 2);
        // The very largest payload is fine.
        assert_eq!(r.add(t(0), k, 65512, false, &[7; 3]), Ok(None));
        assert_eq!(r.bytes_buffered(), MAX_PAYLOAD);
    }

    #[test]
    fn timeouts_report_whether_fragment_zero_arrived() {
        let data = payload(4000, 1);
        let mut r = Reassembler::default();
        r.add(t(0), key(1), 0, true, &data[..1480]).unwrap();
        r.add(t(1000), key(2), 1480, true, &data[1480..2960]).unwrap();
        assert_eq!(r.poll_timeout(), Some(t(30_000)));
        assert!(r.handle_timeout(t(29_999)).is_empty());
        let out = r.handle_timeout(t(30_000));
        assert_eq!(out, [TimedOut { key: key(1), first_fragment: Some(data[..1480].to_vec()) }]);
        // Key 2 never had fragment zero: nothing to quote.
        assert_eq!(r.poll_timeout(), Some(t(31_000)));
        let out = r.handle_timeout(t(31_000));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].first_fragment, None);
        assert_eq!(r.poll_timeout(), None);
        assert_eq!(r.stats().timed_out, 2);
    }

    #[test]
    fn timeout_without_fragment_zero_and_ordering() {
        let data = payload(4000, 1);
        let mut r = Reassembler::default();
        r.add(t(0), key(1), 1480, true, &data[1480..2960]).unwrap();
        r.add(t(5), key(2), 0, true, &data[..1480]).unwrap();
        r.add(t(10), key(3), 2960, false, &data[2960..]).unwrap();
        // More fragments later do not extend the datagram's life.
        r.add(t(20_000), key(1), 2960, false, &data[2960..]).unwrap();
        assert_eq!(r.poll_timeout(), Some(t(30_000)));
        let out = r.handle_timeout(t(60_000));
        let keys: Vec<u16> = out.iter().map(|x| x.key.ident).collect();
        assert_eq!(keys, [1, 2, 3]);
        assert_eq!(out[0].first_fragment, None);
        assert_eq!(out[1].first_fragment.as_deref(), Some(&data[..1480]));
        assert_eq!(out[2].first_fragment, None);
        assert!(r.is_empty());
        assert_eq!(r.bytes_buffered(), 0);
    }

    #[test]
    fn memory_bound_evicts_the_oldest() {
        let cfg = ReassemblyConfig { max_bytes: 4000, ..Default::default() };
        let mut r = Reassembler::new(cfg);
        let data = payload(4000, 1);
        r.add(t(0), key(1), 0, true, &data[..1480]).unwrap();
        r.add(t(1), key(2), 0, true, &data[..1480]).unwrap();
        assert_eq!(r.bytes_buffered(), 2960);
        // Key 3 needs 2000 bytes: key 1 (oldest) goes.
        r.add(t(2), key(3), 1992, false, &data[1992..2000]).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r.bytes_buffered(), 1480 + 2000);
        assert_eq!(r.stats().evicted, 1);
        // Key 2 growing to 4000 evicts key 3, not itself.
        assert_eq!(r.add(t(3), key(2), 2960, false, &data[2960..]), Ok(None));
        assert_eq!(r.len(), 1);
        assert_eq!(r.stats().evicted, 2);
        assert_eq!(r.add(t(4), key(2), 1480, true, &data[1480..2960]), Ok(Some(data)));
        assert_eq!(r.bytes_buffered(), 0);
        // A datagram larger than the whole budget can never fit.
        r.add(t(5), key(4), 0, true, &[0; 8]).unwrap();
        assert_eq!(r.add(t(5), key(4), 4000, true, &[0; 8]), Err(FragError::NoMemory));
        assert!(r.is_empty());
        assert_eq!(r.stats().memory_drops, 1);
    }

    #[test]
    fn datagram_count_is_bounded() {
        let cfg = ReassemblyConfig { max_datagrams: 3, ..Default::default() };
        let mut r = Reassembler::new(cfg);
        for ident in 0..10 {
            r.add(t(ident as u64), key(ident), 0, true, &[0; 8]).unwrap();
            assert!(r.len() <= 3);
        }
        assert_eq!(r.stats().evicted, 7);
        let left: Vec<u16> = r.handle_timeout(t(1_000_000)).iter().map(|x| x.key.ident).collect();
        assert_eq!(left, [7, 8, 9]);
    }

    /// Random payloads cut at random 8-byte boundaries, fed in random order
    /// with random exact duplicates, always come back whole.
    #[test]
    fn random_fragmentations_reassemble_to_the_original() {
        let mut rng = Rng::new(0xf4a6);
        let mut r = Reassembler::default();
        for round in 0..300u16 {
            let len = match round % 4 {
                0 => rng.below(64) as usize,
                1 => rng.below(3000) as usize,
                2 => rng.below(MAX_PAYLOAD as u64 + 1) as usize,
                _ => MAX_PAYLOAD - rng.below(16) as usize,
            };
            let data = payload(len, round as u64);
            // Random cut points on 8-byte boundaries.
            let mut frags = Vec::new();
            let mut at = 0;
            loop {
                let piece = 8 * (1 + rng.below(200) as usize);
                if at + piece >= len {
                    frags.push(FragPiece { offset: at, len: len - at, more: false });
                    break;
                }
                frags.push(FragPiece { offset: at, len: piece, more: true });
                at += piece;
            }
            let mut order: Vec<usize> = (0..frags.len()).collect();
            for _ in 0..rng.below(4) {
                order.push(rng.below(frags.len() as u64) as usize);
            }
            shuffle(&mut rng, &mut order);
            let k = key(round);
            let mut completions = 0;
            for &i in &order {
                let p = frags[i];
                let res = r.add(t(0), k, p.offset, p.more, &data[p.offset..p.offset + p.len]);
                match res {
                    // Duplicates arriving after completion start a new
                    // datagram, which may complete again: same payload.
                    Ok(Some(out)) => {
                        completions += 1;
                        assert_eq!(out, data, "round {round}");
                    }
                    Ok(None) => {}
                    Err(e) => panic!("round {round}: {e}"),
                }
            }
            assert!(completions >= 1, "round {round}");
            // Clear what late duplicates left behind.
            r.handle_timeout(t(1_000_000));
            assert!(r.is_empty());
            assert_eq!(r.bytes_buffered(), 0);
        }
    }

    /// Garbage fragments never panic and never break the accounting.
    #[test]
    fn random_garbage_keeps_the_books_straight() {
        let mut rng = Rng::new(9);
        let mut r = Reassembler::new(ReassemblyConfig { max_bytes: 100_000, max_datagrams: 8, ..Default::default() });
        let buf = payload(70_000, 5);
        for i in 0..20_000u64 {
            let k = key(rng.below(12) as u16);
            let offset = if rng.chance(0.9) { 8 * rng.below(8200) as usize } else { rng.below(70_000) as usize };
            let len = if rng.chance(0.8) { 8 * rng.below(200) as usize } else { rng.below(3000) as usize };
            let more = rng.chance(0.8);
            let _ = r.add(t(i), k, offset, more, &buf[..len]);
            assert!(r.len() <= 8);
            assert!(r.bytes_buffered() <= 100_000);
            let sum: usize = r.datagrams.values().map(|d| d.buffer.len()).sum();
            assert_eq!(sum, r.bytes_buffered());
            assert_eq!(r.by_age.len(), r.len());
            if i % 1000 == 0 {
                r.handle_timeout(t(i));
            }
        }
        r.handle_timeout(Instant::FAR_FUTURE);
        assert!(r.is_empty());
        assert_eq!(r.bytes_buffered(), 0);
    }
}
