//! The errno each TCP socket call gives in the wrong state, as a BSD
//! socket would (RFC 9293 §3.10 names the conditions; POSIX the codes):
//! EADDRINUSE, ENOTCONN, EPIPE, EISCONN, EALREADY, EAGAIN, EINVAL, EBADF.

mod common;

use common::*;
use std::net::{Ipv4Addr, SocketAddrV4};
use ustack_core::tcp::State;
use ustack_core::{Error, Shutdown};

fn any(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)
}

/// bind: EADDRINUSE for a port another TCP socket holds on an overlapping
/// address (the wildcard overlaps everything), whether bound, listening or
/// connected; free again once the holder closes; EINVAL when already
/// bound; EADDRNOTAVAIL for an address that is not ours. UDP ports are a
/// separate namespace.
#[test]
fn bind_eaddrinuse_rfc9293_3_10_1() {
    let mut rig = Rig::new(90);
    let c = rig.c();
    let a = c.tcp_socket().unwrap();
    c.bind(a, SocketAddrV4::new(client_ip(), 8080)).unwrap();
    let b = c.tcp_socket().unwrap();
    assert_eq!(c.bind(b, SocketAddrV4::new(client_ip(), 8080)), Err(Error::AddrInUse));
    assert_eq!(c.bind(b, any(8080)), Err(Error::AddrInUse), "the wildcard overlaps");
    let w = c.tcp_socket().unwrap();
    c.bind(w, any(9090)).unwrap();
    assert_eq!(c.bind(b, SocketAddrV4::new(client_ip(), 9090)), Err(Error::AddrInUse), "so does a specific one");
    // EINVAL: a socket binds once.
    assert_eq!(c.bind(a, SocketAddrV4::new(client_ip(), 8081)), Err(Error::InvalidInput));
    // EADDRNOTAVAIL: not one of our addresses.
    assert_eq!(c.bind(b, SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 99), 8082)), Err(Error::AddrNotAvailable));
    // UDP on the same port is another namespace.
    let u = c.udp_socket().unwrap();
    c.bind(u, SocketAddrV4::new(client_ip(), 8080)).unwrap();
    // Closing the holder frees the port.
    c.close(a).unwrap();
    assert_eq!(c.bind(b, SocketAddrV4::new(client_ip(), 8080)), Ok(()));

    // A listening port.
    let l = rig.listen(4);
    let s = rig.s();
    let x = s.tcp_socket().unwrap();
    assert_eq!(s.bind(x, server_addr()), Err(Error::AddrInUse));
    let y = s.tcp_socket().unwrap();
    s.bind(y, any(SERVER_PORT + 1)).unwrap();
    // Two listeners on one address: the second listen fails too.
    let z = s.tcp_socket().unwrap();
    assert_eq!(s.bind(z, SocketAddrV4::new(server_ip(), SERVER_PORT)), Err(Error::AddrInUse));

    // A connected socket's ephemeral port.
    let conn = rig.connect();
    rig.run_for(ms(100));
    let (accepted, _) = rig.s().accept(l).unwrap();
    let local = rig.c().local_addr(conn).unwrap();
    let c = rig.c();
    let v = c.tcp_socket().unwrap();
    assert_eq!(c.bind(v, local), Err(Error::AddrInUse));
    assert_eq!(c.bind(v, any(local.port())), Err(Error::AddrInUse));
    // The accepted connection holds the server's port even after the
    // listener is closed.
    rig.s().close(l).unwrap();
    let s = rig.s();
    let q = s.tcp_socket().unwrap();
    assert_eq!(s.bind(q, server_addr()), Err(Error::AddrInUse));
    // SO_REUSEADDR does not help against an established connection...
    s.set_reuse_addr(q, true).unwrap();
    assert_eq!(s.bind(q, server_addr()), Err(Error::AddrInUse));
    let _ = accepted;
}

/// SO_REUSEADDR lets a server rebind its port while a connection of the
/// old one lingers in TIME-WAIT (RFC 9293 §3.6.1 and BSD practice); without
/// it, EADDRINUSE.
#[test]
fn bind_over_time_wait_needs_reuseaddr_rfc9293_3_6_1() {
    let mut rig = RigConfig::new(91).tcp(|t| t.msl = secs(10)).build();
    let (c, l, s) = rig.establish();
    rig.s().close(l).unwrap();
    // The server closes first, so the server ends in TIME-WAIT.
    rig.s().close(s).unwrap();
    rig.run_for(ms(50));
    rig.c().close(c).unwrap();
    rig.run_for(ms(50));
    let states: Vec<State> = rig.s().tcp_connections().map(|(_, c)| c.state()).collect();
    assert_eq!(states, [State::TimeWait]);
    let s = rig.s();
    let plain = s.tcp_socket().unwrap();
    assert_eq!(s.bind(plain, server_addr()), Err(Error::AddrInUse));
    let reuse = s.tcp_socket().unwrap();
    s.set_reuse_addr(reuse, true).unwrap();
    assert_eq!(s.bind(reuse, server_addr()), Ok(()));
    s.listen(reuse, 4).unwrap();
    // A new connection from a new client port works at once.
    let c2 = rig.connect();
    rig.run_for(ms(100));
    assert_eq!(rig.c().tcp_state(c2), Ok(State::Established));
    assert!(rig.s().accept(reuse).is_ok());
}

/// ENOTCONN: data calls on a socket that is not connected (new, bound, or
/// listening); EAGAIN while the connection is being set up; EINVAL for
/// accept on a socket that is not listening and listen on a connected one.
#[test]
fn enotconn_eagain_ealready_eisconn_rfc9293_3_10() {
    let mut rig = Rig::new(92);
    let mut buf = [0u8; 8];
    let c = rig.c();
    let h = c.tcp_socket().unwrap();
    assert_eq!(c.send(h, b"x"), Err(Error::NotConnected));
    assert_eq!(c.recv(h, &mut buf), Err(Error::NotConnected));
    assert_eq!(c.shutdown(h, Shutdown::Write), Err(Error::NotConnected));
    assert_eq!(c.peer_addr(h), Err(Error::NotConnected));
    assert_eq!(c.accept(h), Err(Error::InvalidInput));
    c.bind(h, SocketAddrV4::new(client_ip(), 7000)).unwrap();
    assert_eq!(c.send(h, b"x"), Err(Error::NotConnected));
    assert_eq!(c.recv(h, &mut buf), Err(Error::NotConnected));
    let l = rig.listen(4);
    let s = rig.s();
    assert_eq!(s.send(l, b"x"), Err(Error::NotConnected));
    assert_eq!(s.recv(l, &mut buf), Err(Error::NotConnected));
    assert_eq!(s.shutdown(l, Shutdown::Both), Err(Error::NotConnected));
    assert_eq!(s.connect(l, SocketAddrV4::new(client_ip(), 7000)), Err(Error::InvalidInput));
    assert_eq!(s.accept(l), Err(Error::WouldBlock), "EAGAIN: nothing to accept yet");

    // While connecting: EAGAIN for data, EALREADY for another connect.
    let h = rig.connect();
    let c = rig.c();
    assert_eq!(c.tcp_state(h), Ok(State::SynSent));
    assert_eq!(c.send(h, b"x"), Err(Error::WouldBlock));
    assert_eq!(c.recv(h, &mut buf), Err(Error::WouldBlock));
    assert_eq!(c.connect(h, server_addr()), Err(Error::Already));
    assert_eq!(c.connect(h, SocketAddrV4::new(server_ip(), 1234)), Err(Error::Already));
    rig.run_for(ms(100));
    let c = rig.c();
    assert_eq!(c.tcp_state(h), Ok(State::Established));
    // EISCONN once connected; EINVAL for listen on it.
    assert_eq!(c.connect(h, server_addr()), Err(Error::IsConnected));
    assert_eq!(c.listen(h, 4), Err(Error::InvalidInput));
    assert_eq!(c.accept(h), Err(Error::InvalidInput));
    assert_eq!(c.recv(h, &mut buf), Err(Error::WouldBlock), "EAGAIN: connected, nothing to read");
}

/// EPIPE: send after shutdown(Write), in every state that follows it,
/// while reading still works; EISCONN for connect meanwhile.
#[test]
fn epipe_after_shutdown_write_rfc9293_3_10_2() {
    let mut rig = Rig::new(93);
    let (c, _l, s) = rig.establish();
    rig.c().shutdown(c, Shutdown::Write).unwrap();
    assert_eq!(rig.c().tcp_state(c), Ok(State::FinWait1));
    assert_eq!(rig.c().send(c, b"x"), Err(Error::BrokenPipe));
    rig.run_for(ms(50));
    assert_eq!(rig.c().tcp_state(c), Ok(State::FinWait2));
    assert_eq!(rig.c().send(c, b"x"), Err(Error::BrokenPipe));
    assert_eq!(rig.c().connect(c, server_addr()), Err(Error::IsConnected));
    // A second shutdown is harmless.
    assert_eq!(rig.c().shutdown(c, Shutdown::Write), Ok(()));
    // Reading still works.
    rig.s().send(s, b"reply").unwrap();
    rig.run_for(ms(50));
    let mut buf = [0u8; 16];
    assert_eq!(rig.c().recv(c, &mut buf), Ok(5));
    // The server, having read end of file, may still send; after its own
    // shutdown(Write) it too gets EPIPE.
    assert_eq!(rig.s().recv(s, &mut buf), Ok(0));
    assert_eq!(rig.s().send(s, b"more"), Ok(4));
    rig.s().shutdown(s, Shutdown::Write).unwrap();
    assert_eq!(rig.s().tcp_state(s), Ok(State::LastAck));
    assert_eq!(rig.s().send(s, b"x"), Err(Error::BrokenPipe));
    rig.run_for(ms(50));
    assert_eq!(rig.c().tcp_state(c), Ok(State::TimeWait));
    assert_eq!(rig.c().send(c, b"x"), Err(Error::BrokenPipe));
    assert_eq!(rig.c().recv(c, &mut buf), Ok(4));
    assert_eq!(rig.c().recv(c, &mut buf), Ok(0));
    // The server's connection is CLOSED: send still EPIPE, recv end of
    // file, no peer any more.
    assert_eq!(rig.s().tcp_state(s), Ok(State::Closed));
    assert_eq!(rig.s().peer_addr(s), Err(Error::NotConnected));
    assert_eq!(rig.c().peer_addr(c), Ok(server_addr()), "TIME-WAIT still names its peer");
    assert_eq!(rig.s().send(s, b"x"), Err(Error::BrokenPipe));
    assert_eq!(rig.s().recv(s, &mut buf), Ok(0));
}

/// EBADF: after close() every call on the handle fails, even while the
/// connection lingers (FIN-WAIT, TIME-WAIT) in the stack, and a stale
/// handle never reaches the socket that later reuses its slot.
#[test]
fn ebadf_on_closed_handle_rfc9293_3_10_4() {
    let mut rig = Rig::new(94);
    let (c, l, _s) = rig.establish();
    rig.c().close(c).unwrap();
    let mut buf = [0u8; 8];
    let st = rig.c();
    assert_eq!(st.tcp_connections().map(|(_, c)| c.state()).collect::<Vec<_>>(), [State::FinWait1]);
    assert_eq!(st.send(c, b"x"), Err(Error::BadHandle));
    assert_eq!(st.recv(c, &mut buf), Err(Error::BadHandle));
    assert_eq!(st.shutdown(c, Shutdown::Both), Err(Error::BadHandle));
    assert_eq!(st.connect(c, server_addr()), Err(Error::BadHandle));
    assert_eq!(st.bind(c, any(1)), Err(Error::BadHandle));
    assert_eq!(st.listen(c, 1), Err(Error::BadHandle));
    assert_eq!(st.accept(c), Err(Error::BadHandle));
    assert_eq!(st.set_nodelay(c, true), Err(Error::BadHandle));
    assert_eq!(st.close(c), Err(Error::BadHandle));
    assert_eq!(st.abort(c), Err(Error::BadHandle));
    // A closed listener too.
    rig.s().close(l).unwrap();
    assert_eq!(rig.s().accept(l), Err(Error::BadHandle));
    assert_eq!(rig.s().close(l), Err(Error::BadHandle));
    // A new socket may reuse the slot; the stale handle is not it.
    let fresh = rig.s().tcp_socket().unwrap();
    assert_eq!(fresh.index(), l.index(), "the slot is reused");
    assert_ne!(fresh, l);
    assert_eq!(rig.s().close(l), Err(Error::BadHandle));
    assert_eq!(rig.s().tcp_state(fresh), Ok(State::Closed));
    rig.s().bind(fresh, any(SERVER_PORT + 1)).unwrap();
}

/// After a refused connect the socket reports the error once and then
/// behaves as closed: EPIPE for send, end of file for recv, ENOTCONN for
/// getpeername (before and after the error was read).
#[test]
fn errors_after_refused_connect_rfc9293_3_10_7_3() {
    let mut rig = Rig::new(95);
    let h = rig.connect();
    assert_eq!(rig.c().peer_addr(h), Err(Error::NotConnected), "not yet connected");
    rig.run_for(ms(100));
    assert_eq!(rig.c().peer_addr(h), Err(Error::NotConnected));
    let mut buf = [0u8; 8];
    assert_eq!(rig.c().recv(h, &mut buf), Err(Error::ConnectionRefused));
    assert_eq!(rig.c().recv(h, &mut buf), Ok(0));
    assert_eq!(rig.c().send(h, b"x"), Err(Error::BrokenPipe));
    assert_eq!(rig.c().peer_addr(h), Err(Error::NotConnected));
    rig.c().close(h).unwrap();
    assert_eq!(rig.c().socket_count(), 0);
}
