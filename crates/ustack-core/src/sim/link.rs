//! Links: one direction of a simulated wire and the faults it can inject.

use super::DropReason;
use crate::rand::Rng;
use crate::time::{Duration, Instant};
use std::collections::VecDeque;

/// Which way along a link: from the first endpoint given to
/// [`Network::connect`](super::Network::connect) to the second, or back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    AtoB,
    BtoA,
}

impl Direction {
    pub const BOTH: [Direction; 2] = [Direction::AtoB, Direction::BtoA];

    pub fn reverse(self) -> Direction {
        match self {
            Direction::AtoB => Direction::BtoA,
            Direction::BtoA => Direction::AtoB,
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Direction::AtoB => 0,
            Direction::BtoA => 1,
        }
    }
}

/// Bursty loss: a two-state Markov chain (Gilbert–Elliott). Before each
/// frame the chain moves (good → bad with `p_good_to_bad`, bad → good with
/// `p_bad_to_good`); in the bad state a frame is lost with `loss_in_bad`.
/// The good state loses nothing of its own; the link's independent `loss`
/// applies in both states.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GilbertElliott {
    pub p_good_to_bad: f64,
    pub p_bad_to_good: f64,
    pub loss_in_bad: f64,
}

impl GilbertElliott {
    pub fn new(p_good_to_bad: f64, p_bad_to_good: f64, loss_in_bad: f64) -> Self {
        GilbertElliott { p_good_to_bad, p_bad_to_good, loss_in_bad }
    }

    /// A chain that loses every frame in the bad state, with a long-run
    /// loss rate of `loss_rate` in bursts of `mean_burst` frames on average
    /// (`mean_burst >= 1`, `0 <= loss_rate < 1`).
    pub fn with_mean_burst(loss_rate: f64, mean_burst: f64) -> Self {
        let p_bad_to_good = 1.0 / mean_burst.max(1.0);
        let loss_rate = loss_rate.clamp(0.0, 0.999_999);
        GilbertElliott { p_good_to_bad: loss_rate * p_bad_to_good / (1.0 - loss_rate), p_bad_to_good, loss_in_bad: 1.0 }
    }

    /// The long-run fraction of frames this chain loses.
    pub fn expected_loss(&self) -> f64 {
        let total = self.p_good_to_bad + self.p_bad_to_good;
        if total > 0.0 { self.p_good_to_bad / total * self.loss_in_bad } else { 0.0 }
    }
}

/// The behaviour of one direction of a link. Its `Default` is an ideal wire
/// with a 1 ms one-way delay, infinite bandwidth and no faults; the setters
/// build on it:
///
/// ```
/// use ustack_core::sim::{GilbertElliott, LinkConfig};
/// use ustack_core::Duration;
/// let wan = LinkConfig::default()
///     .delay(Duration::from_millis(20))
///     .jitter(Duration::from_millis(2))
///     .bandwidth_bps(10_000_000)
///     .loss(0.01)
///     .burst(GilbertElliott::with_mean_burst(0.02, 4.0));
/// assert_eq!(wan.delay, Duration::from_millis(20));
/// ```
///
/// What happens to a frame put on a direction, in order:
/// 1. the direction is down: dropped ([`DropReason::LinkDown`]);
/// 2. longer than the MTU allows: dropped ([`DropReason::Mtu`]);
/// 3. with a bandwidth, it waits behind the frames before it; when the bytes
///    waiting (not counting the frame being serialized) would exceed the queue
///    limit, it is dropped at the tail ([`DropReason::QueueFull`]);
/// 4. it is serialized (`len * 8 / bandwidth`, rounded up to a nanosecond);
///    a frame lost on the wire still used its share of the bandwidth;
/// 5. bursty loss (Gilbert–Elliott), then independent loss;
/// 6. corruption: one uniformly chosen bit is flipped;
/// 7. it propagates for `delay` plus a uniform `0..jitter`, but never
///    arrives before a frame sent earlier on this direction, unless it was
///    chosen for reordering: then it is held back `reorder_delay` more and
///    later frames may overtake it;
/// 8. duplication: a second copy (independently corrupted) arrives
///    `duplicate_delay` after the first (default zero: right after it).
#[derive(Clone, Debug, PartialEq)]
pub struct LinkConfig {
    /// One-way propagation delay. Default 1 ms.
    pub delay: Duration,
    /// Extra delay drawn uniformly from `0..jitter` per frame; it never
    /// reorders frames by itself. Default zero.
    pub jitter: Duration,
    /// Serialization rate in bits per second; `None` (default) is infinite.
    pub bandwidth_bps: Option<u64>,
    /// Drop-tail limit on the bytes waiting to be serialized, not counting
    /// the frame on the wire; only matters with a bandwidth. `None` is
    /// unbounded. Default 1 MiB.
    pub queue_limit_bytes: Option<usize>,
    /// Probability that a frame is lost, independently of all others.
    pub loss: f64,
    /// Bursty loss, on top of `loss`.
    pub burst: Option<GilbertElliott>,
    /// Probability that a frame is delivered twice.
    pub duplicate: f64,
    /// How long after the original the copy arrives. Default zero: in the
    /// same instant, right after it.
    pub duplicate_delay: Duration,
    /// Probability that a frame is held back by `reorder_delay`, so that
    /// frames sent after it overtake it.
    pub reorder: f64,
    /// Default 10 ms.
    pub reorder_delay: Duration,
    /// Probability that one bit of a frame is flipped.
    pub corrupt: f64,
    /// The largest layer-3 packet the link carries, that is the frame length
    /// less the 14-byte Ethernet header (as Linux counts an interface MTU).
    /// Longer frames are dropped. `None` (default): no limit.
    pub mtu: Option<usize>,
    /// A link that is down drops every frame, including those on the wire
    /// when it went down (see [`Network::set_link_up`](super::Network::set_link_up)).
    pub up: bool,
}

/// Length of the Ethernet II header that [`LinkConfig::mtu`] does not count.
pub const ETHERNET_HEADER_LEN: usize = 14;

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            delay: Duration::from_millis(1),
            jitter: Duration::ZERO,
            bandwidth_bps: None,
            queue_limit_bytes: Some(1 << 20),
            loss: 0.0,
            burst: None,
            duplicate: 0.0,
            duplicate_delay: Duration::ZERO,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(10),
            corrupt: 0.0,
            mtu: None,
            up: true,
        }
    }
}

impl LinkConfig {
    /// Same as `default()`: 1 ms delay, no other effect.
    pub fn ideal() -> Self {
        Self::default()
    }
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }
    /// Sets a finite rate; a rate of zero lets nothing through.
    pub fn bandwidth_bps(mut self, bps: u64) -> Self {
        self.bandwidth_bps = Some(bps);
        self
    }
    /// `None` for an unbounded queue.
    pub fn queue_limit_bytes(mut self, limit: Option<usize>) -> Self {
        self.queue_limit_bytes = limit;
        self
    }
    pub fn loss(mut self, p: f64) -> Self {
        self.loss = p;
        self
    }
    pub fn burst(mut self, model: GilbertElliott) -> Self {
        self.burst = Some(model);
        self
    }
    pub fn duplicate(mut self, p: f64) -> Self {
        self.duplicate = p;
        self
    }
    pub fn duplicate_delay(mut self, d: Duration) -> Self {
        self.duplicate_delay = d;
        self
    }
    pub fn reorder(mut self, p: f64) -> Self {
        self.reorder = p;
        self
    }
    pub fn reorder_delay(mut self, d: Duration) -> Self {
        self.reorder_delay = d;
        self
    }
    pub fn corrupt(mut self, p: f64) -> Self {
        self.corrupt = p;
        self
    }
    pub fn mtu(mut self, mtu: usize) -> Self {
        self.mtu = Some(mtu);
        self
    }
    pub fn up(mut self, up: bool) -> Self {
        self.up = up;
        self
    }

    /// Time to serialize `len` bytes, zero without a bandwidth.
    pub fn serialization_time(&self, len: usize) -> Duration {
        match self.bandwidth_bps {
            None => Duration::ZERO,
            Some(0) => Duration::MAX,
            Some(bps) => {
                let bits = len as u128 * 8 * 1_000_000_000;
                let nanos = bits.div_ceil(bps as u128);
                Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
            }
        }
    }
}

/// Counters of one direction of a link.
///
/// Once nothing is on the wire, `frames_sent + duplicated ==
/// frames_delivered + dropped()`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LinkStats {
    /// Frames put on this direction by the sender (copies not included).
    pub frames_sent: u64,
    /// Frames handed to the receiver, copies included.
    pub frames_delivered: u64,
    pub bytes_delivered: u64,
    /// Independent loss.
    pub lost: u64,
    /// Loss in the bad state of the Gilbert–Elliott chain.
    pub burst_lost: u64,
    /// Extra copies made.
    pub duplicated: u64,
    /// Frames held back for reordering (whether or not anything overtook them).
    pub reordered: u64,
    /// Copies delivered with a flipped bit.
    pub corrupted: u64,
    pub queue_drops: u64,
    pub mtu_drops: u64,
    /// Frames sent while the link was down or on the wire when it went down.
    pub down_drops: u64,
}

impl LinkStats {
    /// All drops, whatever the reason.
    pub fn dropped(&self) -> u64 {
        self.lost + self.burst_lost + self.queue_drops + self.mtu_drops + self.down_drops
    }
}

/// What a direction decided for one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Drop(DropReason),
    Deliver {
        at: Instant,
        /// The bit to flip, counting from the most significant bit of byte 0.
        flip: Option<usize>,
        /// A second copy: its arrival and its own flipped bit.
        copy: Option<(Instant, Option<usize>)>,
    },
}

/// The state of one direction of a link.
#[derive(Debug)]
pub(crate) struct Channel {
    pub(crate) config: LinkConfig,
    pub(crate) stats: LinkStats,
    rng: Rng,
    /// When the transmitter finishes the last accepted frame.
    busy_until: Instant,
    /// Accepted frames not yet being serialized: (start of serialization, len).
    waiting: VecDeque<(Instant, usize)>,
    waiting_bytes: usize,
    /// Arrival of the last frame that was not held back for reordering.
    last_arrival: Instant,
    burst_bad: bool,
    /// Bumped whenever the direction goes down, so that frames sent before
    /// an outage are dropped even if it is over when they would arrive.
    pub(crate) epoch: u64,
}

impl Channel {
    pub(crate) fn new(config: LinkConfig, seed: u64) -> Self {
        Channel {
            config,
            stats: LinkStats::default(),
            rng: Rng::new(seed),
            busy_until: Instant::ZERO,
            waiting: VecDeque::new(),
            waiting_bytes: 0,
            last_arrival: Instant::ZERO,
            burst_bad: false,
            epoch: 0,
        }
    }

    /// Replaces the configuration; going down flushes the queue.
    pub(crate) fn set_config(&mut self, config: LinkConfig, now: Instant) {
        let was_up = self.config.up;
        self.config = config;
        if was_up && !self.config.up {
            self.go_down(now);
        }
    }

    fn go_down(&mut self, now: Instant) {
        self.epoch += 1;
        self.waiting.clear();
        self.waiting_bytes = 0;
        self.busy_until = self.busy_until.min(now);
        // The frames that set it will never arrive.
        self.last_arrival = self.last_arrival.min(now);
    }

    /// Whether a frame sent in `epoch` may be handed over now.
    pub(crate) fn deliverable(&self, epoch: u64) -> bool {
        self.config.up && epoch == self.epoch
    }

    /// Decides the fate of a frame of `len` bytes put on this direction at
    /// `now`, and counts it. Deliveries are counted by the caller when they
    /// happen.
    pub(crate) fn offer(&mut self, now: Instant, len: usize) -> Verdict {
        self.stats.frames_sent += 1;
        let c = &self.config;
        if !c.up {
            self.stats.down_drops += 1;
            return Verdict::Drop(DropReason::LinkDown);
        }
        if c.mtu.is_some_and(|mtu| len.saturating_sub(ETHERNET_HEADER_LEN) > mtu) {
            self.stats.mtu_drops += 1;
            return Verdict::Drop(DropReason::Mtu);
        }

        // Serialization and the drop-tail queue in front of it.
        let mut wire_done = now;
        if c.bandwidth_bps.is_some() {
            while self.waiting.front().is_some_and(|&(start, _)| start <= now) {
                if let Some((_, n)) = self.waiting.pop_front() {
                    self.waiting_bytes -= n;
                }
            }
            let start = self.busy_until.max(now);
            if start > now {
                if c.queue_limit_bytes.is_some_and(|limit| self.waiting_bytes + len > limit) {
                    self.stats.queue_drops += 1;
                    return Verdict::Drop(DropReason::QueueFull);
                }
                self.waiting.push_back((start, len));
                self.waiting_bytes += len;
            }
            wire_done = start + c.serialization_time(len);
            self.busy_until = wire_done;
        }

        if let Some(ge) = c.burst {
            self.burst_bad =
                if self.burst_bad { !self.rng.chance(ge.p_bad_to_good) } else { self.rng.chance(ge.p_good_to_bad) };
            if self.burst_bad && self.rng.chance(ge.loss_in_bad) {
                self.stats.burst_lost += 1;
                return Verdict::Drop(DropReason::BurstLoss);
            }
        }
        if self.rng.chance(c.loss) {
            self.stats.lost += 1;
            return Verdict::Drop(DropReason::Loss);
        }

        let flip = self.maybe_flip(len);

        let c = &self.config;
        let mut at = wire_done + c.delay;
        let jitter = duration_nanos(c.jitter);
        if jitter > 0 {
            at += Duration::from_nanos(self.rng.below(jitter));
        }
        let c = &self.config;
        if self.rng.chance(c.reorder) {
            self.stats.reordered += 1;
            at += c.reorder_delay;
        } else {
            at = at.max(self.last_arrival);
            self.last_arrival = at;
        }

        let copy = if self.rng.chance(self.config.duplicate) {
            self.stats.duplicated += 1;
            let copy_at = at + self.config.duplicate_delay;
            if self.last_arrival == at {
                self.last_arrival = copy_at;
            }
            Some((copy_at, self.maybe_flip(len)))
        } else {
            None
        };
        Verdict::Deliver { at, flip, copy }
    }

    fn maybe_flip(&mut self, len: usize) -> Option<usize> {
        if len > 0 && self.rng.chance(self.config.corrupt) {
            Some(self.rng.below(len as u64 * 8) as usize)
        } else {
            None
        }
    }
}

/// Flips bit `bit` of `frame`, counting from the most significant bit of the
/// first byte. Out of range does nothing.
pub(crate) fn flip_bit(frame: &mut [u8], bit: usize) {
    if let Some(b) = frame.get_mut(bit / 8) {
        *b ^= 0x80 >> (bit % 8);
    }
}

fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deliver_at(v: Verdict) -> Instant {
        match v {
            Verdict::Deliver { at, .. } => at,
            Verdict::Drop(r) => panic!("dropped: {r:?}"),
        }
    }

    #[test]
    fn serialization_time_is_exact() {
        let c = LinkConfig::default().bandwidth_bps(12_000_000);
        assert_eq!(c.serialization_time(1500), Duration::from_millis(1));
        assert_eq!(c.serialization_time(0), Duration::ZERO);
        // 1 byte at 3 bit/s: 8/3 s, rounded up to the nanosecond.
        let slow = LinkConfig::default().bandwidth_bps(3);
        assert_eq!(slow.serialization_time(1), Duration::from_nanos(2_666_666_667));
        assert_eq!(LinkConfig::default().serialization_time(1500), Duration::ZERO);
        assert_eq!(LinkConfig::default().bandwidth_bps(0).serialization_time(1), Duration::MAX);
    }

    #[test]
    fn frames_queue_back_to_back() {
        let cfg = LinkConfig::default().delay(Duration::from_millis(1)).bandwidth_bps(12_000_000);
        let mut ch = Channel::new(cfg, 1);
        let t0 = Instant::ZERO;
        for i in 0..5u64 {
            assert_eq!(deliver_at(ch.offer(t0, 1500)), Instant::from_millis(2 + i));
        }
        // The link is idle again at 5 ms; a frame at 10 ms goes at once.
        assert_eq!(deliver_at(ch.offer(Instant::from_millis(10), 1500)), Instant::from_millis(12));
    }

    #[test]
    fn drop_tail_counts_only_waiting_bytes() {
        let cfg = LinkConfig::default().bandwidth_bps(12_000_000).queue_limit_bytes(Some(4500));
        let mut ch = Channel::new(cfg, 1);
        let verdicts: Vec<Verdict> = (0..10).map(|_| ch.offer(Instant::ZERO, 1500)).collect();
        // One on the wire, three waiting, the rest dropped at the tail.
        let delivered = verdicts.iter().filter(|v| matches!(v, Verdict::Deliver { .. })).count();
        assert_eq!(delivered, 4);
        assert_eq!(ch.stats.queue_drops, 6);
        // At 1.5 ms the first is done and the second on the wire: two wait,
        // so one more fits.
        let t = Instant::from_micros(1500);
        assert_eq!(deliver_at(ch.offer(t, 1500)), Instant::from_millis(6));
        assert_eq!(ch.offer(t, 1500), Verdict::Drop(DropReason::QueueFull));
    }

    #[test]
    fn unbounded_queue_never_drops() {
        let cfg = LinkConfig::default().bandwidth_bps(1_000_000).queue_limit_bytes(None);
        let mut ch = Channel::new(cfg, 1);
        for _ in 0..10_000 {
            assert!(matches!(ch.offer(Instant::ZERO, 1500), Verdict::Deliver { .. }));
        }
    }

    #[test]
    fn zero_bandwidth_lets_nothing_through_and_does_not_panic() {
        let mut ch = Channel::new(LinkConfig::default().bandwidth_bps(0).queue_limit_bytes(Some(3000)), 1);
        assert_eq!(deliver_at(ch.offer(Instant::ZERO, 1500)), Instant::FAR_FUTURE);
        assert!(matches!(ch.offer(Instant::ZERO, 1500), Verdict::Deliver { .. }));
        assert!(matches!(ch.offer(Instant::ZERO, 1500), Verdict::Deliver { .. }));
        assert_eq!(ch.offer(Instant::ZERO, 1500), Verdict::Drop(DropReason::QueueFull));
    }

    #[test]
    fn mtu_counts_the_layer3_packet() {
        let mut ch = Channel::new(LinkConfig::default().mtu(1500), 1);
        assert!(matches!(ch.offer(Instant::ZERO, 1514), Verdict::Deliver { .. }));
        assert_eq!(ch.offer(Instant::ZERO, 1515), Verdict::Drop(DropReason::Mtu));
        assert!(matches!(ch.offer(Instant::ZERO, 0), Verdict::Deliver { .. }));
        assert_eq!(ch.stats.mtu_drops, 1);
    }

    #[test]
    fn gilbert_elliott_helpers() {
        let ge = GilbertElliott::with_mean_burst(0.05, 4.0);
        assert!((ge.expected_loss() - 0.05).abs() < 1e-12);
        assert!((ge.p_bad_to_good - 0.25).abs() < 1e-12);
        assert_eq!(GilbertElliott::new(0.0, 0.0, 1.0).expected_loss(), 0.0);
    }

    #[test]
    fn flip_bit_counts_from_the_msb() {
        let mut f = [0u8; 2];
        flip_bit(&mut f, 0);
        flip_bit(&mut f, 15);
        flip_bit(&mut f, 16);
        assert_eq!(f, [0x80, 0x01]);
    }
}
