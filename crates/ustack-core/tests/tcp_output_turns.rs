//! Output order across connections: each connection with data to send
//! keeps its turn for up to 64 KiB of segments before the next one goes,
//! so that a device that joins consecutive segments of one connection
//! (TSO through the TUN offload header) gets whole super-packets rather
//! than one segment of each busy connection in turn; and no connection
//! starves the others for longer than that.
//!
//! Two stacks joined directly, virtual time.

mod common;

use common::settle_direct;
use std::net::SocketAddrV4;
use ustack_core::time::Instant;
use ustack_core::{Stack, StackConfig};

const TURN: usize = 64 * 1024;

fn stack(addr: &str, seed: u64) -> Stack {
    let mut cfg = StackConfig::ip(addr.parse().unwrap()).with_seed(seed);
    cfg.tcp.initial_window = 1000;
    cfg.tcp.recv_buffer = 1 << 20;
    cfg.tcp.send_buffer = 1 << 20;
    Stack::new(cfg)
}

#[test]
fn each_busy_connection_sends_a_run_of_up_to_64_kib_before_the_next() {
    let mut c = stack("10.0.0.1/24", 1);
    let mut s = stack("10.0.0.2/24", 2);
    let to: SocketAddrV4 = "10.0.0.2:80".parse().unwrap();
    let l = s.tcp_socket().unwrap();
    s.bind(l, to).unwrap();
    s.listen(l, 16).unwrap();
    let now = Instant::ZERO;
    let conns: Vec<_> = (0..3)
        .map(|_| {
            let h = c.tcp_socket().unwrap();
            c.connect(h, to).unwrap();
            h
        })
        .collect();
    settle_direct(now, &mut c, &mut s);
    let data = vec![7u8; 200_000];
    for &h in &conns {
        assert_eq!(c.send(h, &data).unwrap(), data.len());
    }
    // The packets in the order they leave: (source port, bytes). A turn
    // counts the bytes put on the link.
    let mut order = Vec::new();
    let mut buf = vec![0u8; 65_600];
    while let Some(n) = c.poll_transmit(now, &mut buf) {
        let ihl = usize::from(buf[0] & 0x0f) * 4;
        let port = u16::from_be_bytes([buf[ihl], buf[ihl + 1]]);
        order.push((port, n));
    }
    // Runs of one connection's segments.
    let mut runs: Vec<(u16, usize, usize)> = Vec::new();
    for &(port, len) in &order {
        match runs.last_mut() {
            Some((p, segs, bytes)) if *p == port => {
                *segs += 1;
                *bytes += len;
            }
            _ => runs.push((port, 1, len)),
        }
    }
    let ports: std::collections::HashSet<u16> = runs.iter().map(|r| r.0).collect();
    assert_eq!(ports.len(), 3, "{runs:?}");
    let largest = order.iter().map(|o| o.1).max().unwrap();
    for (i, &(_, segs, bytes)) in runs.iter().enumerate() {
        assert!(bytes < TURN + largest, "run {i} of {bytes} bytes: longer than a turn ({runs:?})");
        // Every run but a connection's last fills its turn.
        let last_of_its_port = runs[i + 1..].iter().all(|r| r.0 != runs[i].0);
        if !last_of_its_port {
            assert!(bytes >= TURN, "run {i} of {segs} segments, {bytes} bytes: cut short ({runs:?})");
        }
    }
}
