//! The runner on small scripts: what passes, what fails (and how the failure reads), what
//! is skipped.

use ustack_packetdrill::parse_str;
use ustack_packetdrill::runner::{Outcome, RunOptions, run_script};

fn run_with(src: &str, opts: &RunOptions) -> Outcome {
    let script = parse_str("<test>", src).expect("script parses");
    run_script(&script, opts).outcome
}

fn run(src: &str) -> Outcome {
    run_with(src, &RunOptions::default())
}

fn assert_fail(src: &str, needles: &[&str]) {
    match run(src) {
        Outcome::Fail(m) => {
            for n in needles {
                assert!(m.contains(n), "failure `{m}` should mention `{n}`");
            }
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// A passive open up to ESTABLISHED, without options.
const ACCEPTED: &str = "
--tolerance_usecs=10000
0     socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0    bind(3, ..., ...) = 0
+0    listen(3, 1) = 0
+0    < S  0:0(0) win 65535 <mss 1460>
+0    > S. 0:0(0) ack 1 win 65535 <mss 1460>
+0.01 <  . 1:1(0) ack 1 win 65535
+0    accept(3, ..., ...) = 4
";

#[test]
fn a_handshake_passes() {
    assert_eq!(run(ACCEPTED), Outcome::Pass);
}

#[test]
fn a_wrong_flag_fails_with_line_and_actual_segment() {
    let src = format!("{ACCEPTED}+0 close(4) = 0\n+0 > R. 1:1(0) ack 1 win 0\n");
    assert_fail(
        &src,
        &["line 11", "expected `+0 > R. 1:1(0) ack 1 win 0`", "got `> F. 1:1(0) ack 1 win 65535`", "(flags)"],
    );
}

#[test]
fn wrong_sequence_and_ack_numbers_fail() {
    assert_fail(&format!("{ACCEPTED}+0 close(4) = 0\n+0 > F. 2:2(0) ack 1 win 65535\n"), &["sequence number"]);
    assert_fail(&format!("{ACCEPTED}+0 close(4) = 0\n+0 > F. 1:1(0) ack 2 win 65535\n"), &["acknowledgment number"]);
}

#[test]
fn a_missing_packet_fails() {
    let src = format!("{ACCEPTED}+0 > F. 1:1(0) ack 1 win 65535\n");
    assert_fail(&src, &["got nothing"]);
}

#[test]
fn an_unexpected_packet_fails() {
    // ustack answers the FIN with an ACK the script does not expect.
    let src = format!("{ACCEPTED}+0 < F. 1:1(0) ack 1 win 65535\n+0.1 close(4) = 0\n");
    assert_fail(&src, &["unexpected packet", "> . 1:1(0) ack 2"]);
}

#[test]
fn a_packet_at_the_wrong_time_fails() {
    let src = format!("{ACCEPTED}+0 close(4) = 0\n+0.5 > F. 1:1(0) ack 1 win 65535\n");
    assert_fail(&src, &["got `> F. 1:1(0) ack 1 win 65535` at 0.010000"]);
}

#[test]
fn a_wrong_return_value_or_errno_fails() {
    assert_fail(&format!("{ACCEPTED}+0 close(4) = -1 EBADF\n"), &["returned 0"]);
    assert_fail(&format!("{ACCEPTED}+0 close(9) = 0\n"), &["returned -1 EBADF"]);
    assert_eq!(run(&format!("{ACCEPTED}+0 close(9) = -1 EBADF (Bad file descriptor)\n")), Outcome::Pass);
}

#[test]
fn a_wrong_state_fails() {
    assert_fail(&format!("{ACCEPTED}+0 %{{ assert tcpi_state == TCPI_CLOSE_WAIT }}%\n"), &["ESTABLISHED"]);
}

#[test]
fn options_are_lenient_by_default_and_strict_on_demand() {
    // The SYN-ACK's options in another order, another window and shift: fine by default.
    let src = "
--tolerance_usecs=10000
0    socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0   bind(3, ..., ...) = 0
+0   listen(3, 1) = 0
+0   < S  0:0(0) win 65535 <mss 1400,nop,wscale 3,sackOK,TS val 7 ecr 0>
+0   > S. 0:0(0) ack 1 win 1000 <mss 1460,nop,wscale 9,sackOK,TS val 1 ecr 7>
";
    assert_eq!(run(src), Outcome::Pass);
    let strict = RunOptions { strict: true, ..Default::default() };
    assert!(matches!(run_with(src, &strict), Outcome::Fail(_)));
    // The MSS value, a missing option and the echoed timestamp are always checked.
    assert!(matches!(run(&src.replace("<mss 1460,", "<mss 1400,")), Outcome::Fail(m) if m.contains("mss")));
    assert!(matches!(run(&src.replace(",sackOK,TS val 1", ",TS val 1")), Outcome::Fail(m) if m.contains("sackOK")));
    assert!(matches!(run(&src.replace("ecr 7>", "ecr 8>")), Outcome::Fail(m) if m.contains("TS")));
}

#[test]
fn blocking_calls_wait_in_virtual_time() {
    // A blocking accept returns when the handshake completes, 0.2 s later.
    let src = "
--tolerance_usecs=10000
0          socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0         bind(3, ..., ...) = 0
+0         listen(3, 1) = 0
+0...0.2   accept(3, ..., ...) = 4
+0.1       < S  0:0(0) win 65535 <mss 1460>
+0         > S. 0:0(0) ack 1 win 65535 <mss 1460>
+0.1       <  . 1:1(0) ack 1 win 65535
+0         close(4) = 0
+0         > F. 1:1(0) ack 1 win 65535
";
    assert_eq!(run(src), Outcome::Pass);
    // Returning at another time than the script says fails.
    assert!(matches!(run(&src.replace("+0...0.2", "+0...0.5")), Outcome::Fail(m) if m.contains("returned at")));

    // A blocking connect returns 0 once established.
    let src = "
--tolerance_usecs=10000
0          socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0...0.05  connect(3, ..., ...) = 0
+0         > S  0:0(0) win 65535 <...>
+0.05      < S. 0:0(0) ack 1 win 65535 <mss 1460>
+0         >  . 1:1(0) ack 1 win 65535
";
    assert_eq!(run(src), Outcome::Pass);

    // A blocking connect refused by a RST.
    let src = "
--tolerance_usecs=10000
0          socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0...0.05  connect(3, ..., ...) = -1 ECONNREFUSED (Connection refused)
+0         > S  0:0(0) win 65535 <...>
+0.05      < R. 0:0(0) ack 1 win 0
";
    assert_eq!(run(src), Outcome::Pass);
}

#[test]
fn nonblocking_calls_say_eagain() {
    let src = format!(
        "{ACCEPTED}+0 fcntl(4, F_SETFL, O_RDWR | O_NONBLOCK) = 0\n+0 read(4, ..., 100) = -1 EWOULDBLOCK\n\
         +0 < P. 1:11(10) ack 1 win 65535\n+0 > . 1:1(0) ack 11 win 65525\n+0 read(4, ..., 100) = 10\n"
    );
    assert_eq!(run(&src), Outcome::Pass);
}

#[test]
fn timers_fire_between_events() {
    // The SYN-ACK is retransmitted after the 1 s initial RTO (RFC 6298 §2.1), then 2 s later.
    let src = "
--tolerance_usecs=10000
0    socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0   bind(3, ..., ...) = 0
+0   listen(3, 1) = 0
+0   < S  0:0(0) win 65535 <mss 1460>
+0   > S. 0:0(0) ack 1 win 65535 <mss 1460>
+1   > S. 0:0(0) ack 1 win 65535 <mss 1460>
+2   > S. 0:0(0) ack 1 win 65535 <mss 1460>
*    > S. 0:0(0) ack 1 win 65535 <mss 1460>
";
    assert_eq!(run(src), Outcome::Pass);
}

#[test]
fn knobs_map_or_skip() {
    let base = "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n";
    // A knob ustack has: window scaling and timestamps off leave only MSS and SACK.
    let src = "
--tolerance_usecs=10000
0    `sysctl -w net.inet.tcp.rfc1323=0`
+0   socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0   fcntl(3, F_SETFL, O_RDWR | O_NONBLOCK) = 0
+0   connect(3, ..., ...) = -1 EINPROGRESS
+0   > S 0:0(0) win 65535 <mss 1460,nop,nop,sackOK>
";
    assert_eq!(run(src), Outcome::Pass);
    // FreeBSD defaults of knobs ustack lacks are housekeeping.
    assert_eq!(run(&format!("0 `sysctl -w net.inet.tcp.syncookies=1`\n+{base}")), Outcome::Pass);
    // Other values are not.
    assert_eq!(
        run(&format!("0 `sysctl -w net.inet.tcp.syncookies=0`\n+{base}")),
        Outcome::Skip("no ustack equivalent for net.inet.tcp.syncookies=0".into())
    );
    assert_eq!(run(&format!("--ip_version=ipv6\n{base}")), Outcome::Skip("IPv6 not supported".into()));
    assert!(matches!(
        run(&format!("{base}+0 setsockopt(3, IPPROTO_IP, IP_OPTIONS, [4], 4) = 0\n")),
        Outcome::Skip(m) if m.contains("IP_OPTIONS")
    ));
    // A cleanup line after the last event is ignored, whatever it sets.
    assert_eq!(run(&format!("{base}+0 `sysctl -w net.inet.tcp.rexmit_slop=300`\n")), Outcome::Pass);
}

/// IP_TOS and IP_TTL map to `SockOpt::Tos` / `SockOpt::Ttl`: set on a listener, its
/// SYN-ACK and its connection carry them, a change on the connection marks the next
/// segment, and getsockopt reads them back; a TTL of 0 is EINVAL, -1 the default.
#[test]
fn ip_tos_and_ip_ttl_mark_the_segments() {
    let src = "
--tolerance_usecs=10000
0     socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0    setsockopt(3, IPPROTO_IP, IP_TOS, [IPTOS_DSCP_AF41], 4) = 0
+0    setsockopt(3, IPPROTO_IP, IP_TTL, [0], 4) = -1 EINVAL
+0    setsockopt(3, IPPROTO_IP, IP_TTL, [256], 4) = -1 EINVAL
+0    setsockopt(3, IPPROTO_IP, IP_TTL, [9], 4) = 0
+0    getsockopt(3, IPPROTO_IP, IP_TOS, [0x88], [4]) = 0
+0    bind(3, ..., ...) = 0
+0    listen(3, 1) = 0
+0    < S  0:0(0) win 65535 <mss 1460>
+0    > (tos 0x88,ttl 9) S. 0:0(0) ack 1 win 65535 <mss 1460>
+0.01 <  . 1:1(0) ack 1 win 65535
+0    accept(3, ..., ...) = 4
+0    getsockopt(4, IPPROTO_IP, IP_TTL, [9], [4]) = 0
+0    setsockopt(4, IPPROTO_IP, IP_TOS, [IPTOS_DSCP_EF], 4) = 0
+0    setsockopt(4, IPPROTO_IP, IP_TTL, [-1], 4) = 0
+0    getsockopt(4, IPPROTO_IP, IP_TTL, [64], [4]) = 0
+0    write(4, ..., 100) = 100
+0    > (tos 0xb8,ttl 64) P. 1:101(100) ack 1 win 65535
";
    assert_eq!(run(src), Outcome::Pass);
    // The expected TOS is compared.
    let wrong = src.replace("(tos 0xb8,ttl 64) P.", "(tos 0x20) P.");
    assert!(matches!(run(&wrong), Outcome::Fail(m) if m.contains("tos 0xb8")));
}

#[test]
fn cleanup_lines_do_not_count_as_the_last_event() {
    let connect = "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 fcntl(3, F_SETFL, O_RDWR | O_NONBLOCK) = 0
+0 connect(3, ..., ...) = -1 EINPROGRESS
";
    // What the last system call causes (the SYN) is not looked at, even with a
    // cleanup line after it ...
    assert_eq!(run(&format!("{connect}+0 `sysctl -w net.inet.tcp.insecure_syn=0`\n")), Outcome::Pass);
    // ... but a real event after it makes the SYN an unexpected packet.
    assert!(matches!(
        run(&format!("{connect}+0 getsockopt(3, SOL_SOCKET, SO_ERROR, [0], [4]) = 0\n")),
        Outcome::Fail(m) if m.contains("unexpected packet")
    ));
}

#[test]
fn sockstat_counts_states() {
    let src = format!(
        "{ACCEPTED}+0 `sockstat -4 -P tcp -s -p 8080 | grep -c ESTABLISHED | grep 1`\n\
         +0 `sockstat -4 -P tcp -s | grep -c LISTEN | grep 1`\n"
    );
    assert_eq!(run(&src), Outcome::Pass);
    assert!(matches!(
        run(&format!("{ACCEPTED}+0 `sockstat -4 -P tcp -s | grep -c TIME_WAIT | grep 1`\n")),
        Outcome::Fail(m) if m.contains("0 socket(s) in TIME-WAIT")
    ));
}

/// A connect in SYN-SENT, its SYN lost.
const CONNECTING: &str = "
--tolerance_usecs=10000
0     socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0    fcntl(3, F_SETFL, O_RDWR | O_NONBLOCK) = 0
+0    connect(3, ..., ...) = -1 EINPROGRESS
+0    > S 0:0(0) win 65535 <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 6>
";

/// `getsockopt(SO_ERROR)` reports, as FreeBSD's so_error, the error that ended the
/// connection: not an ICMP soft error (host unreachable), which leaves the connect
/// going, but a hard one (port unreachable), which ends it, and that only once.
#[test]
fn so_error_reports_the_error_that_ended_the_connection() {
    let src = format!(
        "{CONNECTING}+0.01 < icmp unreachable host_unreachable [0:0(0)]\n\
         +0 getsockopt(3, SOL_SOCKET, SO_ERROR, [0], [4]) = 0\n\
         +0 < icmp unreachable port_unreachable [0:0(0)]\n\
         +0 getsockopt(3, SOL_SOCKET, SO_ERROR, [ECONNREFUSED], [4]) = 0\n\
         +0 getsockopt(3, SOL_SOCKET, SO_ERROR, [0], [4]) = 0\n"
    );
    assert_eq!(run(&src), Outcome::Pass);
}

/// `net.inet.tcp.icmp_may_rst` maps to `TcpConfig::icmp_hard_errors`, and FreeBSD reads it
/// when an ICMP error arrives: turned on in mid-script, it reaches the socket already in
/// SYN-SENT, whose next port unreachable ends the connect, where the first, while it was
/// off, did not. A knob of the stack's configuration still cannot change there.
#[test]
fn a_global_knob_in_mid_script_reaches_the_open_sockets() {
    let connecting = CONNECTING.replace("0     socket", "0 `sysctl -w net.inet.tcp.icmp_may_rst=0`\n+0 socket");
    let src = format!(
        "{connecting}\
         +0.01 < icmp unreachable port_unreachable [0:0(0)]\n\
         +0 getsockopt(3, SOL_SOCKET, SO_ERROR, [0], [4]) = 0\n\
         +0 `sysctl -w net.inet.tcp.icmp_may_rst=1`\n\
         +0 < icmp unreachable port_unreachable [0:0(0)]\n\
         +0 getsockopt(3, SOL_SOCKET, SO_ERROR, [ECONNREFUSED], [4]) = 0\n"
    );
    assert_eq!(run(&src), Outcome::Pass);
    // Left off, the second error does not end the connect either.
    let off = src.replace("icmp_may_rst=1", "icmp_may_rst=0");
    assert!(matches!(run(&off), Outcome::Fail(m) if m.contains("SO_ERROR is 0")));
    assert_eq!(
        run(&format!("{CONNECTING}+0 `sysctl -w net.inet.tcp.blackhole=2`\n+0 close(3) = 0\n")),
        Outcome::Skip("net.inet.tcp.blackhole=2 in mid-script: ustack fixes it when the stack is created".into())
    );
}
