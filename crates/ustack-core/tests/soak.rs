//! The foundation soak: 200 seeded runs of a 1 MiB transfer each way over
//! a wire with 5% loss, 2% duplication, 2% reordering and 0.5% corruption.
//! Every byte is checked (length and hash of each direction at both ends),
//! every connection must finish without error, and no socket may be left
//! behind once TIME-WAIT is over.

use std::net::SocketAddrV4;
use ustack_core::sim::LinkConfig;
use ustack_core::sim::apps::{StreamApp, StreamHash};
use ustack_core::sim::scenario::{default_pair, host_ip};
use ustack_core::time::{Duration, Instant};

const BYTES: u64 = 1 << 20;

fn run_seed(seed: u64) -> Result<(), String> {
    let link = LinkConfig::default()
        .delay(Duration::from_millis(5))
        .jitter(Duration::from_millis(1))
        .bandwidth_bps(50_000_000)
        .loss(0.05)
        .duplicate(0.02)
        .reorder(0.02)
        .reorder_delay(Duration::from_millis(3))
        .corrupt(0.005);
    let (mut net, c, s) = default_pair(seed, link);
    let server = SocketAddrV4::new(host_ip(2), 7000);
    net.host_mut(s).add_app(StreamApp::server(server, BYTES, seed * 2).with_connections(1));
    net.host_mut(c).add_app(StreamApp::client(server, BYTES, seed * 2 + 1));
    let finished = net.run_while(Instant::from_secs(900), |n| {
        !(n.host(c).app::<StreamApp>(0).unwrap().is_done() && n.host(s).app::<StreamApp>(0).unwrap().is_done())
    });
    if !finished {
        return Err(format!("seed {seed}: not finished after {} s of virtual time", net.now()));
    }
    let cr = &net.host(c).app::<StreamApp>(0).unwrap().reports()[0];
    let sr = &net.host(s).app::<StreamApp>(0).unwrap().reports()[0];
    if cr.error.is_some() || sr.error.is_some() {
        return Err(format!("seed {seed}: errors client {:?} server {:?}", cr.error, sr.error));
    }
    let want_c = StreamHash::of_pattern(seed * 2 + 1, BYTES);
    let want_s = StreamHash::of_pattern(seed * 2, BYTES);
    if cr.sent != want_c || sr.received != want_c {
        return Err(format!(
            "seed {seed}: client->server stream differs: sent {:?} received {:?}",
            cr.sent, sr.received
        ));
    }
    if sr.sent != want_s || cr.received != want_s {
        return Err(format!(
            "seed {seed}: server->client stream differs: sent {:?} received {:?}",
            sr.sent, cr.received
        ));
    }
    // TIME-WAIT ends and nothing is left: no socket, no timer.
    net.run_for(Duration::from_secs(130));
    for (name, id) in [("client", c), ("server", s)] {
        let host = net.host_mut(id);
        if host.stack.socket_count() != 0 {
            return Err(format!("seed {seed}: {name} still holds {} sockets", host.stack.socket_count()));
        }
        if host.stack.out_of_order_bytes() != 0 {
            return Err(format!(
                "seed {seed}: {name} still counts {} out-of-order bytes",
                host.stack.out_of_order_bytes()
            ));
        }
        if host.stack.poll_timeout().is_some() {
            return Err(format!("seed {seed}: {name} still has a timer at {:?}", host.stack.poll_timeout()));
        }
    }
    Ok(())
}

fn soak(seeds: std::ops::Range<u64>) {
    let failures: Vec<String> = seeds.filter_map(|s| run_seed(s).err()).collect();
    assert!(failures.is_empty(), "{} failures (replay with the seed):\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn soak_seeds_000_049() {
    soak(0..50);
}
#[test]
fn soak_seeds_050_099() {
    soak(50..100);
}
#[test]
fn soak_seeds_100_149() {
    soak(100..150);
}
#[test]
fn soak_seeds_150_199() {
    soak(150..200);
}
