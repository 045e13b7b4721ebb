//! A reader waiting with a buffer of its own (`Stack::set_direct_reader`):
//! in-order data that arrives while the receive buffer is empty goes
//! straight into the reader's buffer, up to its size; the rest goes to the
//! receive buffer behind it, so the stream keeps its order. Out-of-order
//! data, and the segment that fills the hole before it, go through the
//! receive buffer as always.
//!
//! Two stacks joined directly, virtual time.

mod common;

use common::settle_direct;
use std::net::SocketAddrV4;
use ustack_core::sim::apps::WaitingReader;
use ustack_core::time::Instant;
use ustack_core::{Error, SocketHandle, Stack, StackConfig};

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// A client and a server with an established connection: (client stack,
/// server stack, client handle, server handle).
fn pair() -> (Stack, Stack, SocketHandle, SocketHandle) {
    let stack = |addr: &str, seed| {
        let mut cfg = StackConfig::ip(addr.parse().unwrap()).with_seed(seed);
        // The whole window at the one instant the tests run at.
        cfg.tcp.pacing = false;
        cfg.tcp.initial_window = 100;
        Stack::new(cfg)
    };
    let (mut c, mut s) = (stack("10.0.0.1/24", 1), stack("10.0.0.2/24", 2));
    let to: SocketAddrV4 = "10.0.0.2:80".parse().unwrap();
    let l = s.tcp_socket().unwrap();
    s.bind(l, to).unwrap();
    s.listen(l, 4).unwrap();
    let h = c.tcp_socket().unwrap();
    c.connect(h, to).unwrap();
    settle_direct(Instant::ZERO, &mut c, &mut s);
    let (sh, _) = s.accept(l).unwrap();
    (c, s, h, sh)
}

fn read_all(s: &mut Stack, h: SocketHandle) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.recv(h, &mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}

#[test]
fn in_order_data_fills_the_waiting_readers_buffer_then_the_receive_buffer() {
    let (mut c, mut s, ch, sh) = pair();
    let (r, got) = WaitingReader::new(10_000);
    assert!(s.set_direct_reader(sh, r));
    let data = pattern(30_000);
    assert_eq!(c.send(ch, &data).unwrap(), data.len());
    settle_direct(Instant::ZERO, &mut c, &mut s);
    // The reader's socket was reported as changed, so its thread wakes.
    assert!(s.take_woken().contains(&sh));
    let back = s.take_direct_reader(sh).expect("still registered");
    assert_eq!(back.taken(), 10_000);
    assert!(got.lock().unwrap()[..] == data[..10_000]);
    assert_eq!(s.stats().tcp.bytes_direct, 10_000);
    assert_eq!(s.stats().tcp.bytes_in, 30_000);
    // The rest waits in the receive buffer, in order after it.
    assert!(read_all(&mut s, sh) == data[10_000..]);
}

#[test]
fn bytes_taken_by_the_reader_do_not_close_the_window() {
    let (mut c, mut s, ch, sh) = pair();
    let before = c.tcp_info(ch).unwrap().snd_wnd;
    let (r, _got) = WaitingReader::new(1 << 20);
    assert!(s.set_direct_reader(sh, r));
    let data = pattern(60_000);
    c.send(ch, &data).unwrap();
    settle_direct(Instant::ZERO, &mut c, &mut s);
    assert_eq!(s.take_direct_reader(sh).unwrap().taken(), 60_000);
    // Nothing is buffered: the window the client sees is as wide as
    // before (through a receive buffer it would be 60,000 bytes less).
    let after = c.tcp_info(ch).unwrap().snd_wnd;
    assert!(after >= before, "window {before} before, {after} after");
    assert!(s.recv(sh, &mut [0u8; 1]) == Err(Error::WouldBlock));
}

#[test]
fn a_reader_is_refused_when_data_is_waiting_or_another_reader_is_there() {
    let (mut c, mut s, ch, sh) = pair();
    c.send(ch, b"already here").unwrap();
    settle_direct(Instant::ZERO, &mut c, &mut s);
    assert!(!s.set_direct_reader(sh, WaitingReader::new(100).0), "data is waiting: read it");
    assert_eq!(read_all(&mut s, sh), b"already here");
    assert!(s.set_direct_reader(sh, WaitingReader::new(100).0));
    assert!(!s.set_direct_reader(sh, WaitingReader::new(100).0), "one reader at a time");
    // Not a connection.
    let u = s.udp_socket().unwrap();
    assert!(!s.set_direct_reader(u, WaitingReader::new(100).0));
}

#[test]
fn out_of_order_data_and_the_segment_that_fills_the_hole_go_through_the_buffer() {
    let (mut c, mut s, ch, sh) = pair();
    let data = pattern(3 * 1448);
    c.send(ch, &data).unwrap();
    let mut frames = Vec::new();
    let mut buf = vec![0u8; 65_600];
    while let Some(n) = c.poll_transmit(Instant::ZERO, &mut buf) {
        frames.push(buf[..n].to_vec());
    }
    assert_eq!(frames.len(), 3, "three full segments");
    let (r, got) = WaitingReader::new(1 << 20);
    assert!(s.set_direct_reader(sh, r));
    // The second and third first: held out of order.
    s.handle_ip_packet(Instant::ZERO, &frames[1]);
    s.handle_ip_packet(Instant::ZERO, &frames[2]);
    assert!(got.lock().unwrap().is_empty());
    // The first fills the hole; all three are readable from the buffer.
    s.handle_ip_packet(Instant::ZERO, &frames[0]);
    assert_eq!(s.take_direct_reader(sh).unwrap().taken(), 0);
    let got_all = read_all(&mut s, sh);
    assert_eq!(got_all.len(), data.len());
    assert!(got_all == data, "the stream in order");
    assert_eq!(s.stats().tcp.bytes_direct, 0);
}

#[test]
fn data_then_fin_the_reader_has_the_data_and_the_next_read_is_end_of_file() {
    let (mut c, mut s, ch, sh) = pair();
    let (r, got) = WaitingReader::new(4096);
    assert!(s.set_direct_reader(sh, r));
    c.send(ch, b"last words").unwrap();
    c.close(ch).unwrap();
    settle_direct(Instant::ZERO, &mut c, &mut s);
    assert_eq!(s.take_direct_reader(sh).unwrap().taken(), 10);
    assert_eq!(&got.lock().unwrap()[..], b"last words");
    let mut buf = [0u8; 16];
    assert_eq!(s.recv(sh, &mut buf), Ok(0));
}

#[test]
fn closing_the_socket_drops_its_reader() {
    let (_c, mut s, _ch, sh) = pair();
    assert!(s.set_direct_reader(sh, WaitingReader::new(100).0));
    s.close(sh).unwrap();
    assert!(s.take_direct_reader(sh).is_none());
    assert_eq!(s.recv(sh, &mut [0u8; 4]), Err(Error::BadHandle));
}
