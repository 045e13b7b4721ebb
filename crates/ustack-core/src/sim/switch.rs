//! A learning Ethernet switch.

use super::Node;
use crate::time::Instant;
use std::collections::{HashMap, VecDeque};

/// Most MAC addresses a [`Switch`] remembers; beyond that it floods.
pub const MAC_TABLE_LIMIT: usize = 8192;

/// Counters of a [`Switch`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SwitchStats {
    pub received: u64,
    /// Frames sent out of the one port their destination was learned on.
    pub forwarded: u64,
    /// Frames sent out of every other port (broadcast, multicast, unknown).
    pub flooded: u64,
    /// Frames whose destination is on the port they came in by.
    pub filtered: u64,
    /// Frames shorter than an Ethernet header.
    pub runts: u64,
    /// Frames that arrived on a port the switch does not have.
    pub bad_port: u64,
}

/// A learning Ethernet switch with `ports` ports: it learns which port each
/// source MAC address (bytes 6..12) lives behind, sends a frame out of the
/// port its destination (bytes 0..6) was learned on, and floods broadcast,
/// multicast and unknown destinations to every other port. Forwarding
/// takes no time; queueing happens on the links. Entries never age, but a
/// station seen on another port moves there.
#[derive(Debug)]
pub struct Switch {
    ports: usize,
    table: HashMap<[u8; 6], usize>,
    out: VecDeque<(usize, Vec<u8>)>,
    pool: Vec<Vec<u8>>,
    stats: SwitchStats,
}

impl Switch {
    pub fn new(ports: usize) -> Self {
        Switch { ports, table: HashMap::new(), out: VecDeque::new(), pool: Vec::new(), stats: SwitchStats::default() }
    }

    pub fn ports(&self) -> usize {
        self.ports
    }

    pub fn stats(&self) -> SwitchStats {
        self.stats
    }

    /// The port `mac` was learned on.
    pub fn learned_port(&self, mac: [u8; 6]) -> Option<usize> {
        self.table.get(&mac).copied()
    }

    pub fn mac_table_len(&self) -> usize {
        self.table.len()
    }

    /// Forgets every learned address (after a topology change).
    pub fn flush_mac_table(&mut self) {
        self.table.clear();
    }

    fn enqueue(&mut self, port: usize, frame: &[u8]) {
        let mut buf = self.pool.pop().unwrap_or_default();
        buf.extend_from_slice(frame);
        self.out.push_back((port, buf));
    }
}

fn mac(bytes: &[u8]) -> [u8; 6] {
    let mut m = [0; 6];
    m.copy_from_slice(&bytes[..6]);
    m
}

fn is_group(mac: &[u8; 6]) -> bool {
    mac[0] & 0x01 != 0
}

impl Node for Switch {
    fn handle_frame(&mut self, _now: Instant, port: usize, frame: &[u8]) {
        self.stats.received += 1;
        if port >= self.ports {
            self.stats.bad_port += 1;
            return;
        }
        if frame.len() < 14 {
            self.stats.runts += 1;
            return;
        }
        let dst = mac(&frame[0..6]);
        let src = mac(&frame[6..12]);
        // A group address is never a source; don't learn it.
        if !is_group(&src) && (self.table.len() < MAC_TABLE_LIMIT || self.table.contains_key(&src)) {
            self.table.insert(src, port);
        }
        let known = if is_group(&dst) { None } else { self.table.get(&dst).copied() };
        match known {
            Some(p) if p == port => self.stats.filtered += 1,
            Some(p) => {
                self.stats.forwarded += 1;
                self.enqueue(p, frame);
            }
            None => {
                self.stats.flooded += 1;
                for p in (0..self.ports).filter(|&p| p != port) {
                    self.enqueue(p, frame);
                }
            }
        }
    }

    fn poll_transmit(&mut self, _now: Instant, buf: &mut [u8]) -> Option<(usize, usize)> {
        while let Some((port, frame)) = self.out.pop_front() {
            let fits = frame.len() <= buf.len();
            if fits {
                buf[..frame.len()].copy_from_slice(&frame);
            }
            let len = frame.len();
            let mut frame = frame;
            frame.clear();
            if self.pool.len() < 256 {
                self.pool.push(frame);
            }
            if fits {
                return Some((port, len));
            }
        }
        None
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        None
    }

    fn handle_timeout(&mut self, _now: Instant) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::test_nodes::{Host, eth};
    use crate::sim::{LinkConfig, Network};
    use crate::time::Duration;

    const A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];
    const C: [u8; 6] = [2, 0, 0, 0, 0, 0xc];
    const BROADCAST: [u8; 6] = [0xff; 6];

    fn drain(sw: &mut Switch) -> Vec<(usize, Vec<u8>)> {
        let mut buf = vec![0; 2000];
        let mut out = Vec::new();
        while let Some((port, len)) = sw.poll_transmit(Instant::ZERO, &mut buf) {
            out.push((port, buf[..len].to_vec()));
        }
        out
    }

    #[test]
    fn learns_floods_then_forwards() {
        let mut sw = Switch::new(3);
        let t = Instant::ZERO;
        let a_to_b = eth(B, A, b"hello");
        sw.handle_frame(t, 0, &a_to_b);
        // B unknown: flooded to 1 and 2; A learned on 0.
        let out = drain(&mut sw);
        assert_eq!(out, vec![(1, a_to_b.clone()), (2, a_to_b.clone())]);
        assert_eq!(sw.learned_port(A), Some(0));
        // B answers from port 1: A is known, so only port 0.
        let b_to_a = eth(A, B, b"hi");
        sw.handle_frame(t, 1, &b_to_a);
        assert_eq!(drain(&mut sw), vec![(0, b_to_a)]);
        // Now A to B goes to port 1 alone.
        sw.handle_frame(t, 0, &a_to_b);
        assert_eq!(drain(&mut sw), vec![(1, a_to_b.clone())]);
        // A frame for a station on the port it came from is filtered.
        sw.handle_frame(t, 1, &eth(B, C, b"x"));
        assert!(drain(&mut sw).is_empty());
        assert_eq!(sw.learned_port(C), Some(1));
        let s = sw.stats();
        assert_eq!((s.received, s.forwarded, s.flooded, s.filtered), (4, 2, 1, 1));
    }

    #[test]
    fn broadcast_and_multicast_flood_and_group_sources_are_not_learned() {
        let mut sw = Switch::new(4);
        let t = Instant::ZERO;
        let multicast = [0x01, 0x00, 0x5e, 0, 0, 1];
        sw.handle_frame(t, 2, &eth(BROADCAST, A, b""));
        let ports: Vec<usize> = drain(&mut sw).into_iter().map(|(p, _)| p).collect();
        assert_eq!(ports, vec![0, 1, 3]);
        sw.handle_frame(t, 0, &eth(multicast, B, b""));
        assert_eq!(drain(&mut sw).len(), 3);
        // A broadcast source is bogus: forwarded by destination but not learned.
        sw.handle_frame(t, 1, &eth(A, BROADCAST, b""));
        assert_eq!(drain(&mut sw), vec![(2, eth(A, BROADCAST, b""))]);
        assert_eq!(sw.learned_port(BROADCAST), None);
        assert_eq!(sw.mac_table_len(), 2);
    }

    #[test]
    fn runts_and_bad_ports_are_dropped() {
        let mut sw = Switch::new(2);
        for len in 0..14 {
            sw.handle_frame(Instant::ZERO, 0, &vec![0xff; len]);
        }
        sw.handle_frame(Instant::ZERO, 7, &eth(BROADCAST, A, b""));
        assert!(drain(&mut sw).is_empty());
        assert_eq!(sw.stats().runts, 14);
        assert_eq!(sw.stats().bad_port, 1);
        // A bare 14-byte header is a frame.
        sw.handle_frame(Instant::ZERO, 0, &eth(BROADCAST, A, b""));
        assert_eq!(drain(&mut sw).len(), 1);
    }

    #[test]
    fn station_that_moves_is_relearned() {
        let mut sw = Switch::new(3);
        sw.handle_frame(Instant::ZERO, 0, &eth(BROADCAST, A, b""));
        sw.handle_frame(Instant::ZERO, 2, &eth(BROADCAST, A, b""));
        assert_eq!(sw.learned_port(A), Some(2));
        sw.flush_mac_table();
        assert_eq!(sw.learned_port(A), None);
    }

    #[test]
    fn table_is_bounded() {
        let mut sw = Switch::new(2);
        for i in 0..(MAC_TABLE_LIMIT as u32 + 100) {
            let b = i.to_be_bytes();
            sw.handle_frame(Instant::ZERO, 0, &eth(BROADCAST, [2, 0, b[0], b[1], b[2], b[3]], b""));
            drain(&mut sw);
        }
        assert_eq!(sw.mac_table_len(), MAC_TABLE_LIMIT);
    }

    /// Two clients behind a switch share a bottleneck link to a server;
    /// the switch learns every station and the server hears both.
    #[test]
    fn two_clients_switch_bottleneck_server() {
        let mut net = Network::new(5);
        let c1 = net.add(Host::new());
        let c2 = net.add(Host::new());
        let sw = net.add(Switch::new(3));
        let server = net.add(Host::new());
        let access = LinkConfig::default().delay(Duration::from_micros(100));
        net.connect((c1, 0), (sw, 0), access.clone());
        net.connect((c2, 0), (sw, 1), access);
        let bottleneck = net.connect(
            (sw, 2),
            (server, 0),
            LinkConfig::default().delay(Duration::from_millis(10)).bandwidth_bps(12_000_000),
        );
        const S: [u8; 6] = [2, 0, 0, 0, 0, 0x5];
        let mut payload = vec![0u8; 1486];
        for (i, c) in [c1, c2].into_iter().enumerate() {
            payload[0] = i as u8;
            let src = [2, 0, 0, 0, 1, i as u8];
            let h = net.node_as_mut::<Host>(c).unwrap();
            for _ in 0..5 {
                h.send_at(Instant::from_millis(20), 0, eth(S, src, &payload));
            }
        }
        // The server announces itself first, so the switch has learned it
        // by the time the clients send.
        net.node_as_mut::<Host>(server).unwrap().send_at(Instant::ZERO, 0, eth(BROADCAST, S, b"I am S"));
        assert!(net.run_until_idle(Instant::from_secs(1)));
        let got = &net.node_as::<Host>(server).unwrap().received;
        assert_eq!(got.len(), 10);
        // 1500-byte frames at 12 Mbit/s: one per millisecond, back to back
        // from when they reached the switch (20.1 ms), c1's first.
        for (i, (t, _, f)) in got.iter().enumerate() {
            assert_eq!(*t, Instant::from_micros(20_100 + 10_000 + 1000 * (i as u64 + 1)));
            assert_eq!(f[14], (i / 5) as u8);
        }
        let sw = net.node_as::<Switch>(sw).unwrap();
        assert_eq!(sw.learned_port(S), Some(2));
        assert_eq!(sw.mac_table_len(), 3);
        // The announcement was flooded to both clients.
        for c in [c1, c2] {
            assert_eq!(net.node_as::<Host>(c).unwrap().received.len(), 1);
        }
        let st = net.link_stats(bottleneck, crate::sim::Direction::AtoB);
        assert_eq!(st.frames_delivered, 10);
        assert_eq!(st.bytes_delivered, 15_000);
    }
}
