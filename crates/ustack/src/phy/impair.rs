//! A device wrapper that impairs traffic both ways, like `tc netem`:
//! loss, duplication, reordering, delay and jitter, and Congestion
//! Experienced marks on ECN-capable packets (as netem's `ecn` or an AQM
//! router gives them), from a seed.
//!
//! It exists because not every kernel has netem (a kernel built without
//! `CONFIG_NET_SCH_NETEM` has none); with it, `ustack up --impair ...`
//! tests real peers over a bad path anyway. Frames are impaired where they
//! cross the device, so the kernel sees the same faults a lossy link would
//! give, in both directions.

use super::{Device, RxMeta};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};
use ustack_core::rand::Rng;
use ustack_core::stack::Medium;

/// What to do to frames, each direction.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Impairment {
    pub loss: f64,
    pub duplicate: f64,
    /// Probability a frame is held back by `reorder_gap` so later ones pass it.
    pub reorder: f64,
    pub reorder_gap: Duration,
    pub delay: Duration,
    pub jitter: Duration,
    /// Probability an ECN-capable (ECT) IPv4 packet is marked Congestion
    /// Experienced (RFC 3168 §5) as it crosses; others pass unmarked.
    pub ce: f64,
    pub seed: u64,
}

impl std::str::FromStr for Impairment {
    type Err = String;
    /// `loss=2%,reorder=5%,duplicate=1%,delay=5ms[,jitter=1ms][,ce=1%][,seed=N]`.
    fn from_str(s: &str) -> Result<Self, String> {
        let mut imp = Impairment { reorder_gap: Duration::from_millis(10), ..Default::default() };
        for part in s.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').ok_or_else(|| format!("`{part}` should be KEY=VALUE, e.g. loss=2%"))?;
            let prob = || -> Result<f64, String> {
                let p = match v.strip_suffix('%') {
                    Some(pct) => pct.parse::<f64>().map(|x| x / 100.0),
                    None => v.parse::<f64>(),
                }
                .map_err(|_| format!("`{v}` is not a probability: write 2% or 0.02"))?;
                if (0.0..=0.9).contains(&p) { Ok(p) } else { Err(format!("{k}={v} is outside 0% to 90%")) }
            };
            let dur = || -> Result<Duration, String> {
                let (num, scale) = if let Some(ms) = v.strip_suffix("ms") {
                    (ms, 1e-3)
                } else if let Some(us) = v.strip_suffix("us") {
                    (us, 1e-6)
                } else if let Some(sec) = v.strip_suffix('s') {
                    (sec, 1.0)
                } else {
                    return Err(format!("`{v}` needs a unit: 5ms, 200us or 1s"));
                };
                let x: f64 = num.parse().map_err(|_| format!("`{v}` is not a duration"))?;
                if !(0.0..=10.0).contains(&(x * scale)) {
                    return Err(format!("{k}={v} is outside 0 to 10 s"));
                }
                Ok(Duration::from_secs_f64(x * scale))
            };
            match k {
                "loss" => imp.loss = prob()?,
                "duplicate" | "dup" => imp.duplicate = prob()?,
                "reorder" => imp.reorder = prob()?,
                "gap" => imp.reorder_gap = dur()?,
                "delay" => imp.delay = dur()?,
                "jitter" => imp.jitter = dur()?,
                "ce" => imp.ce = prob()?,
                "seed" => imp.seed = v.parse().map_err(|_| format!("`{v}` is not a seed number"))?,
                other => {
                    return Err(format!(
                        "unknown impairment `{other}` (known: loss, duplicate, reorder, gap, delay, jitter, ce, seed)"
                    ));
                }
            }
        }
        Ok(imp)
    }
}

/// An IPv4 packet whose ECN field says ECT(0) or ECT(1).
fn is_ect(frame: &[u8], ip_at: usize) -> bool {
    frame.len() >= ip_at + 20 && frame[ip_at] >> 4 == 4 && matches!(frame[ip_at + 1] & 0b11, 0b01 | 0b10)
}

/// A copy of `frame` with its IPv4 header marked CE and its header
/// checksum made right again.
fn mark_ce(frame: &[u8], ip_at: usize) -> Vec<u8> {
    let mut f = frame.to_vec();
    let mut ip = ustack_core::wire::Ipv4Packet::new_unchecked(&mut f[ip_at..]);
    ip.set_ecn(0b11);
    ip.fill_checksum();
    f
}

struct Held {
    frame: Vec<u8>,
    meta: RxMeta,
}

/// One direction's fault model and its queue of delayed frames.
struct Lane {
    rng: Rng,
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    frames: std::collections::HashMap<u64, Held>,
    next_id: u64,
    /// Release time of the last frame not chosen for reordering, so jitter
    /// alone never reorders.
    last: Option<Instant>,
}

impl Lane {
    fn new(seed: u64) -> Self {
        Lane { rng: Rng::new(seed), heap: BinaryHeap::new(), frames: Default::default(), next_id: 0, last: None }
    }

    /// `ip_at`: where the IP header starts in a frame (after an Ethernet
    /// header on a TAP device).
    fn admit(&mut self, imp: &Impairment, now: Instant, frame: &[u8], meta: RxMeta, ip_at: usize) {
        if self.rng.chance(imp.loss) {
            return;
        }
        let marked;
        let frame = if imp.ce > 0.0 && self.rng.chance(imp.ce) && is_ect(frame, ip_at) {
            marked = mark_ce(frame, ip_at);
            &marked[..]
        } else {
            frame
        };
        let copies = if self.rng.chance(imp.duplicate) { 2 } else { 1 };
        for _ in 0..copies {
            let jitter = if imp.jitter.is_zero() {
                Duration::ZERO
            } else {
                Duration::from_nanos(self.rng.below(imp.jitter.as_nanos() as u64 + 1))
            };
            let mut at = now + imp.delay + jitter;
            if self.rng.chance(imp.reorder) {
                at += imp.reorder_gap;
            } else {
                if let Some(l) = self.last
                    && at < l
                {
                    at = l;
                }
                self.last = Some(at);
            }
            let id = self.next_id;
            self.next_id += 1;
            self.heap.push(Reverse((at, id)));
            self.frames.insert(id, Held { frame: frame.to_vec(), meta });
        }
    }

    fn pop_due(&mut self, now: Instant) -> Option<Held> {
        let &Reverse((at, id)) = self.heap.peek()?;
        if at > now {
            return None;
        }
        self.heap.pop();
        self.frames.remove(&id)
    }

    fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((t, _))| *t)
    }
}

/// A device whose traffic suffers `Impairment` both ways.
pub struct Impaired<D: Device> {
    inner: D,
    imp: Impairment,
    rx: Lane,
    tx: Lane,
    scratch: Vec<u8>,
}

impl<D: Device> Impaired<D> {
    pub fn new(inner: D, imp: Impairment) -> Self {
        let seed = imp.seed;
        Impaired {
            inner,
            imp,
            rx: Lane::new(seed ^ 0x5258),
            tx: Lane::new(seed ^ 0x5458),
            scratch: vec![0u8; 65536 + 64],
        }
    }
}

impl<D: Device> Impaired<D> {
    fn ip_at(&self) -> usize {
        if self.inner.medium() == Medium::Ethernet { 14 } else { 0 }
    }
}

impl<D: Device> Device for Impaired<D> {
    fn medium(&self) -> Medium {
        self.inner.medium()
    }
    fn mtu(&self) -> usize {
        self.inner.mtu()
    }
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn poll_fd(&self) -> RawFd {
        self.inner.poll_fd()
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<(usize, RxMeta)>> {
        let now = Instant::now();
        // Take in everything waiting, each with its fate.
        while let Some((n, meta)) = self.inner.recv(&mut self.scratch)? {
            self.rx.admit(&self.imp, now, &self.scratch[..n], meta, self.ip_at());
        }
        match self.rx.pop_due(now) {
            Some(h) => {
                let n = h.frame.len().min(buf.len());
                buf[..n].copy_from_slice(&h.frame[..n]);
                Ok(Some((n, h.meta)))
            }
            None => Ok(None),
        }
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        let now = Instant::now();
        let ip_at = self.ip_at();
        self.tx.admit(&self.imp, now, frame, RxMeta::default(), ip_at);
        self.handle_timeout()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        [self.rx.next(), self.tx.next()].into_iter().flatten().min()
    }

    fn handle_timeout(&mut self) -> io::Result<()> {
        let now = Instant::now();
        while let Some(h) = self.tx.pop_due(now) {
            self.inner.send(&h.frame)?;
        }
        self.inner.flush()
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }

    fn stats(&self) -> super::DeviceStats {
        self.inner.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_netem_like_specs() {
        let i: Impairment = "loss=2%,reorder=5%,duplicate=1%,delay=5ms,jitter=500us,seed=3".parse().unwrap();
        assert_eq!(i.loss, 0.02);
        assert_eq!(i.reorder, 0.05);
        assert_eq!(i.duplicate, 0.01);
        assert_eq!(i.delay, Duration::from_millis(5));
        assert_eq!(i.jitter, Duration::from_micros(500));
        assert_eq!(i.seed, 3);
        assert!("loss=200%".parse::<Impairment>().unwrap_err().contains("outside"));
        assert!("delay=5".parse::<Impairment>().unwrap_err().contains("unit"));
        assert!("lose=1%".parse::<Impairment>().unwrap_err().contains("unknown impairment"));
        assert_eq!("ce=2%".parse::<Impairment>().unwrap().ce, 0.02);
    }

    #[test]
    fn ce_marks_only_ect_ipv4_packets_and_keeps_the_header_checksum_right() {
        use ustack_core::wire::{IpProtocol, Ipv4Packet, Ipv4Repr};
        let header = |dscp_ecn: u8| {
            let repr = Ipv4Repr {
                src_addr: "10.0.0.1".parse().unwrap(),
                dst_addr: "10.0.0.2".parse().unwrap(),
                protocol: IpProtocol::Tcp,
                payload_len: 0,
                hop_limit: 64,
                ident: 1,
                dont_frag: true,
                more_frags: false,
                frag_offset: 0,
                dscp_ecn,
            };
            let mut b = vec![0u8; 20];
            repr.emit(&mut Ipv4Packet::new_unchecked(&mut b[..]), true);
            b
        };
        assert!(!is_ect(&header(0), 0), "Not-ECT is left alone");
        assert!(is_ect(&header(0b10), 0) && is_ect(&header(0b01), 0));
        let m = mark_ce(&header(0b1000_0010), 0);
        let p = Ipv4Packet::new_checked(&m[..]).unwrap();
        assert_eq!(p.dscp_ecn(), 0b1000_0011, "DSCP kept, ECN now CE");
        assert!(p.verify_checksum());
    }
}
