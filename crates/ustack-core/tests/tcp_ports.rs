//! Ephemeral ports for outgoing connections (RFC 6056 §3.3.4, algorithm
//! 4): a secret per-destination starting point, then successive ports.
//!
//! Two stacks joined directly (every frame handed over at once), virtual
//! time.

mod common;

use common::settle_direct;
use std::collections::HashSet;
use std::net::SocketAddrV4;
use ustack_core::tcp::State;
use ustack_core::time::{Duration, Instant};
use ustack_core::{SocketHandle, Stack, StackConfig};

fn stack(addr: &str, seed: u64) -> Stack {
    Stack::new(StackConfig::ip(addr.parse().unwrap()).with_seed(seed))
}

fn listen(s: &mut Stack, addr: SocketAddrV4) -> SocketHandle {
    let l = s.tcp_socket().unwrap();
    s.bind(l, addr).unwrap();
    s.listen(l, 1024).unwrap();
    l
}

fn connect_port(c: &mut Stack, to: SocketAddrV4) -> (SocketHandle, u16) {
    let h = c.tcp_socket().unwrap();
    c.connect(h, to).unwrap();
    (h, c.local_addr(h).unwrap().port())
}

#[test]
fn successive_connections_to_one_destination_take_successive_ports_rfc6056_3_3_4() {
    let mut c = stack("10.0.0.1/24", 1);
    let to: SocketAddrV4 = "10.0.0.2:80".parse().unwrap();
    let (lo, hi) = c.config().ephemeral_ports;
    let count = (hi - lo) as u32 + 1;
    let ports: Vec<u16> = (0..50).map(|_| connect_port(&mut c, to).1).collect();
    for w in ports.windows(2) {
        let step = (w[1] as u32 + count - w[0] as u32) % count;
        assert_eq!(step, 1, "ports {ports:?} are not successive (wrapping in {lo}..={hi})");
    }
    assert!(ports.iter().all(|&p| (lo..=hi).contains(&p)));
}

#[test]
fn each_destination_and_each_stack_starts_at_its_own_secret_port_rfc6056_3_3_4() {
    let dests: Vec<SocketAddrV4> = (0..8).map(|i| format!("10.0.0.2:{}", 80 + i).parse().unwrap()).collect();
    let firsts = |seed: u64| -> Vec<u16> {
        let mut c = stack("10.0.0.1/24", seed);
        dests.iter().map(|&d| connect_port(&mut c, d).1).collect()
    };
    let a = firsts(1);
    let b = firsts(2);
    // Destinations do not share one sequence: their first ports are
    // spread over the range, not neighbours.
    let distinct: HashSet<u16> = a.iter().copied().collect();
    assert_eq!(distinct.len(), dests.len(), "{a:?}");
    let mut sorted = a.clone();
    sorted.sort();
    assert!(sorted.windows(2).any(|w| w[1] - w[0] > 100), "first ports bunched together: {sorted:?}");
    // Another key (another seed), other ports: an off-path attacker
    // cannot compute them.
    assert_ne!(a, b);
    // The same key, the same ports: the choice is a function of the key.
    assert_eq!(a, firsts(1));
}

/// A client opening connection after connection to one server that closes
/// first leaves the server holding each 4-tuple in TIME-WAIT for 2MSL.
/// With random ports (RFC 6056 algorithm 1) the client soon picks a port
/// whose 4-tuple is still in TIME-WAIT there, its SYN is answered with an
/// ACK for the old connection, and it waits a whole RTO before trying
/// again. Successive ports never meet a TIME-WAIT until the range wraps.
#[test]
fn busy_client_never_reuses_a_port_the_server_holds_in_time_wait_rfc6056_3_3_4() {
    let mut c = stack("10.0.0.1/24", 3);
    let mut s = stack("10.0.0.2/24", 4);
    let to: SocketAddrV4 = "10.0.0.2:80".parse().unwrap();
    let l = listen(&mut s, to);
    let n = 5_000;
    let mut now = Instant::ZERO;
    let mut buf = [0u8; 64];
    for i in 0..n {
        let (h, _) = connect_port(&mut c, to);
        settle_direct(now, &mut c, &mut s);
        let (sh, _) = s.accept(l).unwrap_or_else(|e| panic!("connection {i} not accepted: {e:?}"));
        assert_eq!(c.send(h, b"request").unwrap(), 7);
        settle_direct(now, &mut c, &mut s);
        assert_eq!(s.recv(sh, &mut buf).unwrap(), 7);
        s.send(sh, b"response").unwrap();
        s.close(sh).unwrap();
        settle_direct(now, &mut c, &mut s);
        assert_eq!(c.recv(h, &mut buf).unwrap(), 8);
        c.close(h).unwrap();
        settle_direct(now, &mut c, &mut s);
        assert_eq!(c.socket_count(), 0, "connection {i} did not finish at once");
        now += Duration::from_micros(20);
    }
    let in_time_wait = s.tcp_connections().filter(|(_, conn)| conn.state() == State::TimeWait).count();
    assert_eq!(in_time_wait, n, "the server holds every connection in TIME-WAIT");
    assert_eq!(c.stats().tcp.retransmitted_segments, 0, "no SYN had to be sent again");
    assert_eq!(c.stats().tcp.active_opens, n as u64);
}
