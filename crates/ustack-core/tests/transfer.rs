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

/// A link that declares checksum offload both ways (`ChecksumCaps` off on
/// both stacks, as two stacks handing packets to each other in memory may):
/// TCP data moves intact with every checksum field left zero. A peer that
/// verifies drops those segments as bad checksums: nothing skips
/// verification unless its own configuration says so.
#[test]
fn checksum_offload_moves_data_with_zero_checksums_and_a_verifying_peer_drops_them() {
    use ustack_core::stats::DropReason;
    use ustack_core::wire::ChecksumCaps;
    use ustack_core::{Error, Stack, StackConfig};
    let offload = ChecksumCaps { verify_rx: false, fill_tx: false };
    let stack = |addr: &str, seed: u64, caps: ChecksumCaps| {
        let mut cfg = StackConfig::ip(addr.parse().unwrap()).with_seed(seed);
        cfg.checksum = caps;
        Stack::new(cfg)
    };
    // Moves every packet from one stack to the other; checks what it moves.
    let shuttle = |now: Instant, from: &mut Stack, to: &mut Stack| {
        let mut buf = vec![0u8; 2048];
        let mut moved = 0;
        while let Some(n) = from.poll_transmit(now, &mut buf) {
            let p = &buf[..n];
            assert_eq!(p[9], 6, "only TCP here");
            assert_eq!(&p[10..12], &[0, 0], "IPv4 checksum left to the link");
            assert_eq!(&p[20 + 16..20 + 18], &[0, 0], "TCP checksum left to the link");
            to.handle_ip_packet(now, p);
            moved += 1;
        }
        moved
    };
    let server: SocketAddrV4 = "10.0.0.2:7".parse().unwrap();
    let (mut a, mut b) = (stack("10.0.0.1/24", 1, offload), stack("10.0.0.2/24", 2, offload));
    let l = b.tcp_socket().unwrap();
    b.bind(l, server).unwrap();
    b.listen(l, 4).unwrap();
    let c = a.tcp_socket().unwrap();
    a.connect(c, server).unwrap();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let (mut sent, mut got, mut s) = (0, Vec::new(), None);
    let mut now = Instant::from_millis(1);
    for _ in 0..10_000 {
        if got.len() == data.len() {
            break;
        }
        now += Duration::from_micros(100);
        if sent < data.len() {
            match a.send(c, &data[sent..]) {
                Ok(n) => sent += n,
                Err(Error::WouldBlock) => {}
                Err(e) => panic!("send: {e}"),
            }
        }
        shuttle(now, &mut a, &mut b);
        if s.is_none() {
            s = b.accept(l).ok().map(|(h, _)| h);
        }
        if let Some(h) = s {
            let mut rbuf = [0u8; 65536];
            while let Ok(n) = b.recv(h, &mut rbuf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&rbuf[..n]);
            }
        }
        shuttle(now, &mut b, &mut a);
        a.handle_timeout(now);
        b.handle_timeout(now);
    }
    assert!(got == data, "{} of {} bytes, intact: {}", got.len(), data.len(), data.starts_with(&got));
    assert_eq!(b.stats().drops(DropReason::TcpBadChecksum), 0);

    // A peer that verifies drops the SYN with zero checksums: at the IP
    // header, and, with that one filled in, at TCP.
    let (mut a, mut v) = (stack("10.0.0.1/24", 3, offload), stack("10.0.0.2/24", 4, ChecksumCaps::default()));
    let l = v.tcp_socket().unwrap();
    v.bind(l, server).unwrap();
    v.listen(l, 4).unwrap();
    let c = a.tcp_socket().unwrap();
    a.connect(c, server).unwrap();
    let now = Instant::from_millis(1);
    let mut syn = vec![0u8; 2048];
    let n = a.poll_transmit(now, &mut syn).expect("the SYN");
    syn.truncate(n);
    v.handle_ip_packet(now, &syn);
    assert_eq!(v.stats().drops(DropReason::IpBadChecksum), 1);
    let ip_sum = ustack_core::wire::checksum::checksum(0, &syn[..20]);
    syn[10..12].copy_from_slice(&ip_sum.to_be_bytes());
    v.handle_ip_packet(now, &syn);
    assert_eq!(v.stats().drops(DropReason::TcpBadChecksum), 1);
    assert!(v.poll_transmit(now, &mut [0u8; 2048]).is_none(), "no SYN-ACK");
}
