//! Memory per connection: many established connections in one process,
//! heap measured with a counting allocator.

use crate::mem::{Clock, shuttle, ustack_config};
use stats_alloc::{Region, StatsAlloc};
use std::alloc::System;
use std::net::SocketAddrV4;
use ustack_core::{Error, Stack};

/// Heap bytes in use now, as the counting allocator sees them. (Its
/// `realloc` already adds growth to `bytes_allocated` and shrinkage to
/// `bytes_deallocated`; `bytes_reallocated` is the same change again.)
fn heap_now(region: &Region<'_, System>) -> isize {
    let c = region.change();
    c.bytes_allocated as isize - c.bytes_deallocated as isize
}

/// Opens `n` connections between two stacks, then measures the heap per
/// connection (both ends counted: two connections per pair) idle, after
/// each has moved `moved` bytes, and after that data was read.
/// Returns (idle, while holding data, after reading) bytes per connection.
pub fn idle_memory(alloc: &'static StatsAlloc<System>, n: usize, moved: usize) -> (f64, f64, f64) {
    let region = Region::new(alloc);
    let base = heap_now(&region);
    let mut cfg_a = ustack_config("10.0.0.1/16", 1500, 256 * 1024, 7);
    let mut cfg_b = ustack_config("10.0.0.2/16", 1500, 256 * 1024, 8);
    // Enough ephemeral ports and listener backlog for every connection.
    cfg_a.ephemeral_ports = (1024, 65535);
    cfg_b.max_backlog = n + 16;
    cfg_b.max_half_open = n + 16;
    // And sockets (the default allows 2^20).
    cfg_a.max_sockets = cfg_a.max_sockets.max(n + 64);
    cfg_b.max_sockets = cfg_b.max_sockets.max(n + 64);
    let mut a = Stack::new(cfg_a);
    let mut b = Stack::new(cfg_b);
    // One client address has 64,512 ports toward one server port, so the
    // connections are spread over enough server ports.
    let per_port = 60_000;
    let servers_at: Vec<SocketAddrV4> =
        (0..n.div_ceil(per_port)).map(|i| SocketAddrV4::new([10, 0, 0, 2].into(), 80 + i as u16)).collect();
    let listeners: Vec<_> = servers_at
        .iter()
        .map(|&addr| {
            let l = b.tcp_socket().unwrap();
            b.bind(l, addr).unwrap();
            b.listen(l, n + 16).unwrap();
            l
        })
        .collect();
    let mut buf = vec![0u8; 65536 + 64];
    let clock = Clock::new();
    let mut clients = Vec::with_capacity(n);
    let mut servers = Vec::with_capacity(n);
    // Connect in batches so SYN queues stay small.
    while servers.len() < n {
        while clients.len() < n && clients.len() < servers.len() + 512 {
            let c = a.tcp_socket().unwrap();
            a.connect(c, servers_at[clients.len() / per_port]).unwrap();
            clients.push(c);
        }
        let now = clock.ustack();
        shuttle(now, &mut a, &mut b, &mut buf);
        for &l in &listeners {
            while let Ok((h, _)) = b.accept(l) {
                servers.push(h);
            }
        }
        shuttle(now, &mut b, &mut a, &mut buf);
        a.handle_timeout(now);
        b.handle_timeout(now);
    }
    // Let delayed ACKs and the like settle.
    for _ in 0..4 {
        let now = clock.ustack();
        shuttle(now, &mut a, &mut b, &mut buf);
        shuttle(now, &mut b, &mut a, &mut buf);
    }
    // An application takes the readiness notices as they come (the
    // driver does on every turn); left alone they would be counted here.
    let per_conn = |region: &Region<'_, System>, a: &mut Stack, b: &mut Stack| {
        drop((a.take_woken(), b.take_woken()));
        (heap_now(region) - base) as f64 / (2 * n) as f64
    };
    let idle = per_conn(&region, &mut a, &mut b);
    let data = vec![0x33u8; moved];
    for &c in &clients {
        match a.send(c, &data) {
            Ok(_) | Err(Error::WouldBlock) => {}
            Err(e) => panic!("send: {e}"),
        }
    }
    let now = clock.ustack();
    shuttle(now, &mut a, &mut b, &mut buf);
    shuttle(now, &mut b, &mut a, &mut buf);
    let holding = per_conn(&region, &mut a, &mut b);
    let mut rbuf = vec![0u8; moved.max(1)];
    for &h in &servers {
        while let Ok(k) = b.recv(h, &mut rbuf) {
            if k == 0 {
                break;
            }
        }
    }
    for _ in 0..4 {
        let now = clock.ustack();
        shuttle(now, &mut a, &mut b, &mut buf);
        shuttle(now, &mut b, &mut a, &mut buf);
    }
    // Drained buffers go back once their connection has been quiet for
    // `DRAINED_STORAGE_KEPT`: the stacks are told that much time passed.
    let later = clock.ustack() + ustack_core::tcp::DRAINED_STORAGE_KEPT;
    a.handle_timeout(later);
    b.handle_timeout(later);
    let after = per_conn(&region, &mut a, &mut b);
    drop((a, b, clients, servers));
    (idle, holding, after)
}
