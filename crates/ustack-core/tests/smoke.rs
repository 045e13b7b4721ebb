use std::cell::RefCell;
use std::net::SocketAddrV4;
use std::rc::Rc;
use ustack_core::sim::{Host, LinkConfig, Network};
use ustack_core::tcp::State;
use ustack_core::time::{Duration, Instant};
use ustack_core::trace::EventKind;
use ustack_core::wire::EthernetAddress;
use ustack_core::{Error, Stack, StackConfig};

#[test]
fn tutorial_exchange() {
    let mut net = Network::new(1);
    let mut c = Stack::new(
        StackConfig::ethernet(EthernetAddress([2, 0, 0, 0, 0, 1]), "10.0.0.1/24".parse().unwrap()).with_seed(11),
    );
    let mut s = Stack::new(
        StackConfig::ethernet(EthernetAddress([2, 0, 0, 0, 0, 2]), "10.0.0.2/24".parse().unwrap()).with_seed(12),
    );
    c.set_tracing(true);
    s.set_tracing(true);
    let got = Rc::new(RefCell::new(Vec::new()));
    let got2 = got.clone();
    let server: SocketAddrV4 = "10.0.0.2:12345".parse().unwrap();
    let l = s.tcp_socket().unwrap();
    s.bind(l, server).unwrap();
    s.listen(l, 8).unwrap();
    let mut conn = None;
    let mut closed = false;
    let server_app = move |_now: Instant, st: &mut Stack| {
        if conn.is_none()
            && let Ok((h, _)) = st.accept(l)
        {
            conn = Some(h);
        }
        if let Some(h) = conn.filter(|_| !closed) {
            let mut buf = [0u8; 100];
            loop {
                match st.recv(h, &mut buf) {
                    Ok(0) => {
                        if !closed {
                            if let Err(e) = st.close(h) {
                                println!("close failed: {e} state {:?}", st.tcp_state(h));
                            }
                            closed = true;
                        }
                        break;
                    }
                    Ok(n) => got2.borrow_mut().extend_from_slice(&buf[..n]),
                    Err(Error::WouldBlock) => break,
                    Err(e) => panic!("{e}"),
                }
            }
        }
        None
    };
    let h = c.tcp_socket().unwrap();
    c.bind(h, "10.0.0.1:50784".parse().unwrap()).unwrap();
    c.connect(h, server).unwrap();
    let mut step = 0;
    let client_app = move |_now: Instant, st: &mut Stack| {
        match step {
            0 if st.tcp_state(h).unwrap() == State::Established => {
                assert_eq!(st.send(h, b"I'm TCP client").unwrap(), 14);
                step = 1;
            }
            1 => {
                st.close(h).unwrap();
                step = 2;
            }
            _ => {}
        }
        None
    };
    let ci = net.add(Host::new(c).with_app(client_app));
    let si = net.add(Host::new(s).with_app(server_app));
    net.connect((ci, 0), (si, 0), LinkConfig::default().delay(Duration::from_millis(5)));
    net.run_until(Instant::from_secs(200));
    assert_eq!(&got.borrow()[..], b"I'm TCP client");
    for id in [ci, si] {
        let host = net.node_as_mut::<Host>(id).unwrap();
        for e in host.stack.take_events() {
            match e.kind {
                EventKind::TcpState { from, to, .. } => {
                    println!("{:>10} n{} {from} -> {to}", e.time.to_string(), id.index())
                }
                EventKind::TcpSegment { direction, repr, payload_len, .. } => {
                    println!("{:>10} n{} {:?} {repr} len={payload_len}", e.time.to_string(), id.index(), direction)
                }
                _ => {}
            }
        }
        println!("sockets left: {}", host.stack.socket_count());
    }
}
