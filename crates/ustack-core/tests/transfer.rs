use std::net::SocketAddrV4;
use ustack_core::sim::LinkConfig;
use ustack_core::sim::apps::{StreamApp, StreamHash};
use ustack_core::sim::scenario::{default_pair, host_ip};
use ustack_core::time::{Duration, Instant};

#[test]
fn one_mib_each_way_lossy() {
    for seed in 0..20 {
        let link = LinkConfig::default()
            .delay(Duration::from_millis(10))
            .bandwidth_bps(100_000_000)
            .loss(0.05)
            .duplicate(0.02)
            .reorder(0.02)
            .corrupt(0.005);
        let (mut net, c, s) = default_pair(seed, link);
        let server = SocketAddrV4::new(host_ip(2), 5000);
        net.host_mut(s).add_app(StreamApp::server(server, 1 << 20, 100));
        net.host_mut(c).add_app(StreamApp::client(server, 1 << 20, 200));
        let done = net.run_while(Instant::from_secs(600), |n| {
            !(n.host(c).app::<StreamApp>(0).unwrap().is_done()
                && n.host(s).app::<StreamApp>(0).unwrap().reports().iter().any(|r| r.done))
        });
        let cr = net.host(c).app::<StreamApp>(0).unwrap().reports();
        let sr = net.host(s).app::<StreamApp>(0).unwrap().reports();
        println!(
            "seed {seed}: t={} done={done} client={:?} server={:?}",
            net.now(),
            cr[0].received,
            sr.first().map(|r| r.received)
        );
        assert!(done, "seed {seed} did not finish");
        assert_eq!(cr[0].sent, StreamHash::of_pattern(200, 1 << 20));
        assert_eq!(sr[0].received, cr[0].sent, "seed {seed}");
        assert_eq!(cr[0].received, sr[0].sent, "seed {seed}");
        assert!(cr[0].error.is_none() && sr[0].error.is_none());
    }
}
