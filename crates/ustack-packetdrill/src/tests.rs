//! Unit tests of the parser: one group per construct, then the errors and their positions.

use crate::*;

fn script(src: &str) -> Script {
    match parse_str("t.pkt", src) {
        Ok(s) => s,
        Err(e) => panic!("{}", e.render()),
    }
}

fn event(src: &str) -> Event {
    match parse_event(src) {
        Ok(e) => e,
        Err(e) => panic!("{}", e.render()),
    }
}

fn packet(src: &str) -> PacketEvent {
    match event(src).kind {
        EventKind::Packet(p) => p,
        other => panic!("not a packet: {other:?}"),
    }
}

fn tcp(src: &str) -> TcpSpec {
    packet(src).tcp().cloned().expect("a TCP packet")
}

fn syscall(src: &str) -> Syscall {
    match event(src).kind {
        EventKind::Syscall(s) => s,
        other => panic!("not a system call: {other:?}"),
    }
}

/// The error of a script that must not parse: (line, column, message).
fn error(src: &str) -> (usize, usize, String) {
    match parse_str("t.pkt", src) {
        Ok(s) => panic!("parsed, but should not have: {s:#?}"),
        Err(e) => {
            assert_eq!(e.file, "t.pkt");
            (e.line, e.column, e.message)
        }
    }
}

/// Assert the error position and that the message contains `needle`.
#[track_caller]
fn assert_error(src: &str, line: usize, column: usize, needle: &str) {
    let (l, c, m) = error(src);
    assert_eq!((l, c), (line, column), "position of error `{m}`");
    assert!(m.contains(needle), "message `{m}` should contain `{needle}`");
}

fn sym(s: &str) -> Expr {
    Expr::Symbol(s.to_string())
}

// ---- comments, options, commands ----

#[test]
fn comments_are_ignored_everywhere() {
    let s = script(
        "// header comment\n\
         /* a block\n   over lines */\n\
         --ip_version=ipv4 // trailing\n\
         0 close(3) = 0 // after an event\n\
         +0 /* inline */ close(4) = 0\n\
         +0 > S 0:0(0) /* between */ win 100 <mss 1460, /* in options */ nop>\n",
    );
    assert_eq!(s.options, vec![("ip_version".to_string(), Some("ipv4".to_string()))]);
    assert_eq!(s.events.len(), 3);
    assert_eq!(s.events[0].line, 5);
    assert_eq!(s.events[0].source, "0 close(3) = 0");
    let t = s.events[2].kind.clone();
    let EventKind::Packet(p) = t else { panic!() };
    assert_eq!(p.tcp().unwrap().options, Some(TcpOptions::List(vec![TcpOption::Mss(1460), TcpOption::Nop])));
}

#[test]
fn command_line_options() {
    let s = script("--ip_version=ipv4\n--tolerance_usecs=50000\n--mss=1000 --verbose\n0 close(3) = 0\n");
    assert_eq!(
        s.options,
        vec![
            ("ip_version".to_string(), Some("ipv4".to_string())),
            ("tolerance_usecs".to_string(), Some("50000".to_string())),
            ("mss".to_string(), Some("1000".to_string())),
            ("verbose".to_string(), None),
        ]
    );
    assert_eq!(s.option("tolerance_usecs"), Some(Some("50000")));
    assert_eq!(s.option("verbose"), Some(None));
    assert_eq!(s.option("absent"), None);
}

#[test]
fn shell_commands_keep_their_text() {
    let s = script("0 `sysctl -w net.inet.tcp.rfc1323=0`\n+0 `echo a;\n  echo b`\n+0 close(3) = 0\n");
    assert_eq!(s.events[0].kind, EventKind::Shell("sysctl -w net.inet.tcp.rfc1323=0".to_string()));
    assert_eq!(s.events[1].kind, EventKind::Shell("echo a;\n  echo b".to_string()));
    assert_eq!(s.events[2].line, 4);
}

#[test]
fn init_and_cleanup_commands_have_no_time() {
    let s =
        script("--ip_version=ipv4\n   `setkey -c <<EOF\n   add ...\nEOF`\n0 close(3) = 0\n\n   `setkey -F`\n// end\n");
    assert_eq!(s.init_command.as_deref(), Some("setkey -c <<EOF\n   add ...\nEOF"));
    assert_eq!(s.cleanup_command.as_deref(), Some("setkey -F"));
    assert_eq!(s.events.len(), 1);
}

#[test]
fn python_blocks_are_trimmed() {
    let e = event("+0.00 %{ assert tcpi_state == TCPI_SYN_RECEIVED }%");
    assert_eq!(e.kind, EventKind::Python("assert tcpi_state == TCPI_SYN_RECEIVED".to_string()));
    let e = event("+0 %{\nassert tcpi_options == 0\nprint(1)\n}%");
    assert_eq!(e.kind, EventKind::Python("assert tcpi_options == 0\nprint(1)".to_string()));
    let e = event("0 %{ assert tcpi_options == (TCPI_OPT_SACK | TCPI_OPT_ECN)}%");
    assert_eq!(e.kind, EventKind::Python("assert tcpi_options == (TCPI_OPT_SACK | TCPI_OPT_ECN)".to_string()));
}

// ---- the time column ----

#[test]
fn times() {
    let t = |s: &str| event(&format!("{s} close(3) = 0")).time;
    assert_eq!(t("0"), TimeSpec::new(TimeKind::Absolute(0)));
    assert_eq!(t("0.100"), TimeSpec::new(TimeKind::Absolute(100_000)));
    assert_eq!(t("12.5"), TimeSpec::new(TimeKind::Absolute(12_500_000)));
    assert_eq!(t(".25"), TimeSpec::new(TimeKind::Absolute(250_000)));
    assert_eq!(t("+0.1"), TimeSpec::new(TimeKind::Relative(100_000)));
    assert_eq!(t("+ 0.00"), TimeSpec::new(TimeKind::Relative(0)));
    assert_eq!(t("+1"), TimeSpec::new(TimeKind::Relative(1_000_000)));
    assert_eq!(t("0.0000015"), TimeSpec::new(TimeKind::Absolute(2)), "rounded to the microsecond");
    assert_eq!(t("*"), TimeSpec::new(TimeKind::Any));
    assert_eq!(
        t("0.1~0.2"),
        TimeSpec { kind: TimeKind::Absolute(100_000), end: Some(TimeEnd::Range(TimeKind::Absolute(200_000))) }
    );
    assert_eq!(
        t("+0~+0.1"),
        TimeSpec { kind: TimeKind::Relative(0), end: Some(TimeEnd::Range(TimeKind::Relative(100_000))) }
    );
    assert_eq!(
        t("+0...0.200"),
        TimeSpec { kind: TimeKind::Relative(0), end: Some(TimeEnd::Blocking(TimeKind::Absolute(200_000))) }
    );
    assert_eq!(
        t("1.00...6.00"),
        TimeSpec { kind: TimeKind::Absolute(1_000_000), end: Some(TimeEnd::Blocking(TimeKind::Absolute(6_000_000))) }
    );
    assert_eq!(t("0.1 ~ 0.2").end, Some(TimeEnd::Range(TimeKind::Absolute(200_000))));
    assert_eq!(TimeKind::Relative(5).micros(), Some(5));
    assert_eq!(TimeKind::Any.micros(), None);
}

#[test]
fn time_errors() {
    assert_error("close(3) = 0\n", 1, 1, "expected a time");
    assert_error("0 close(3) = 0\n+x close(3) = 0\n", 2, 2, "expected a time");
    assert_error("0.1x close(3) = 0\n", 1, 1, "malformed time `0.1x`");
    assert_error("0.1~ close(3) = 0\n", 1, 6, "the end of the time range");
    assert_error("0.1~* close(3) = 0\n", 1, 5, "`*` cannot end a time range");
    assert_error("0\n", 1, 2, "expected a packet (`<` or `>`), a system call");
    assert_error("0 ! close(3) = 0\n", 1, 3, "expected a packet");
}

// ---- TCP packets ----

#[test]
fn tcp_flags() {
    let flags = |s: &str| tcp(&format!("0 < {s} 0:0(0) win 1000")).flags;
    assert_eq!(flags("S"), TcpFlags(TcpFlags::SYN));
    assert_eq!(flags("."), TcpFlags(TcpFlags::ACK));
    assert_eq!(flags("S."), TcpFlags(TcpFlags::SYN | TcpFlags::ACK));
    assert_eq!(flags("P."), TcpFlags(TcpFlags::PSH | TcpFlags::ACK));
    assert_eq!(flags("F."), TcpFlags(TcpFlags::FIN | TcpFlags::ACK));
    assert_eq!(flags("FP."), TcpFlags(TcpFlags::FIN | TcpFlags::PSH | TcpFlags::ACK));
    assert_eq!(flags("R"), TcpFlags(TcpFlags::RST));
    assert_eq!(flags("R."), TcpFlags(TcpFlags::RST | TcpFlags::ACK));
    assert_eq!(flags("SF"), TcpFlags(TcpFlags::SYN | TcpFlags::FIN));
    assert_eq!(flags("SEW"), TcpFlags(TcpFlags::SYN | TcpFlags::ECE | TcpFlags::CWR));
    assert_eq!(flags("SE."), TcpFlags(TcpFlags::SYN | TcpFlags::ECE | TcpFlags::ACK));
    assert_eq!(flags("U."), TcpFlags(TcpFlags::URG | TcpFlags::ACK));
    let f = flags("S.");
    assert!(f.syn() && f.ack() && !f.fin() && !f.rst() && !f.psh() && !f.urg() && !f.ece() && !f.cwr());
    assert_eq!(flags("WES").to_string(), "SEW");
    assert_eq!(flags(".P").to_string(), "P.");
}

#[test]
fn tcp_segment_fields() {
    let t = tcp("+0 > S 0:0(0) win 65535 <mss 1460,nop,wscale 6,sackOK,TS val 100 ecr 0>");
    assert_eq!(t.seq, SeqSpec::Range { start: 0, end: 0 });
    assert_eq!((t.len, t.ack, t.win, t.urg, t.seq_absolute), (0, None, Some(65535), None, false));
    assert_eq!(
        t.options,
        Some(TcpOptions::List(vec![
            TcpOption::Mss(1460),
            TcpOption::Nop,
            TcpOption::WindowScale(6),
            TcpOption::SackPermitted,
            TcpOption::Timestamp { val: 100, ecr: 0 },
        ]))
    );

    let t = tcp("+0 < P. 1:1001(1000) ack 1 win 257");
    assert_eq!(
        (t.seq, t.len, t.ack, t.win, t.options),
        (SeqSpec::Range { start: 1, end: 1001 }, 1000, Some(1), Some(257), None)
    );
    assert_eq!(t.seq.start(), Some(1));

    // `ack N` without the `.` flag: the number is carried with the ACK bit clear.
    let t = tcp("+0 < S 0:0(0) ack 1 win 32767");
    assert!(!t.flags.ack());
    assert_eq!(t.ack, Some(1));

    // No window at all, and options without a window.
    let t = tcp("+0 > [ect0] P. 1:11(10) ack 1");
    assert_eq!((t.ack, t.win), (Some(1), None));
    let t = tcp("+0 > S 0:0(0) <mss 1460>");
    assert_eq!((t.win, t.options), (None, Some(TcpOptions::List(vec![TcpOption::Mss(1460)]))));

    // Any sequence number, absolute sequence number, urgent pointer, wrap-around.
    let t = tcp("+0 > S. ...(0) ack 65537 win 65535");
    assert_eq!((t.seq, t.seq.start()), (SeqSpec::Any, None));
    let t = tcp("+0 > R. 0:0(0)! ack 2 win 0");
    assert!(t.seq_absolute);
    let t = tcp("+0 < U. 1:2(1) ack 1 win 100 urg 1");
    assert_eq!(t.urg, Some(1));
    let t = tcp("+0 < . 4294967295:9(10) win 1");
    assert_eq!(t.seq, SeqSpec::Range { start: u32::MAX, end: 9 });

    // Keywords in any order, many blanks.
    let t = tcp("+0.10 <  .     1:1(0)     win 7  ack          2");
    assert_eq!((t.ack, t.win), (Some(2), Some(7)));
}

#[test]
fn tcp_options() {
    let opts = |s: &str| tcp(&format!("0 < . 1:1(0) ack 1 win 1 {s}")).options.unwrap();
    assert_eq!(opts("<...>"), TcpOptions::Any);
    assert_eq!(opts("< ... >"), TcpOptions::Any);
    assert_eq!(opts("<>"), TcpOptions::List(vec![]));
    assert_eq!(
        opts("<mss 1460,sackOK,eol,eol>"),
        TcpOptions::List(vec![TcpOption::Mss(1460), TcpOption::SackPermitted, TcpOption::Eol, TcpOption::Eol])
    );
    assert_eq!(
        opts("<nop, nop, TS val  100 ecr 100>"),
        TcpOptions::List(vec![TcpOption::Nop, TcpOption::Nop, TcpOption::Timestamp { val: 100, ecr: 100 }])
    );
    assert_eq!(
        opts("<nop,nop,sack 1:2 3:4>"),
        TcpOptions::List(vec![TcpOption::Nop, TcpOption::Nop, TcpOption::Sack(vec![(1, 2), (3, 4)])])
    );
    assert_eq!(
        opts("<sack 2881:4321, nop, nop>"),
        TcpOptions::List(vec![TcpOption::Sack(vec![(2881, 4321)]), TcpOption::Nop, TcpOption::Nop])
    );
    assert_eq!(
        opts("<nop,nop,md5 valid,nop,nop,sack 2881:4321>"),
        TcpOptions::List(vec![
            TcpOption::Nop,
            TcpOption::Nop,
            TcpOption::Md5 { valid: true },
            TcpOption::Nop,
            TcpOption::Nop,
            TcpOption::Sack(vec![(2881, 4321)]),
        ])
    );
    assert_eq!(opts("<md5 invalid>"), TcpOptions::List(vec![TcpOption::Md5 { valid: false }]));
    assert_eq!(opts("<wscale 14>"), TcpOptions::List(vec![TcpOption::WindowScale(14)]));
    assert_eq!(opts("<mss 1460,\n     nop>"), TcpOptions::List(vec![TcpOption::Mss(1460), TcpOption::Nop]));
}

#[test]
fn packet_annotations_and_encapsulation() {
    let p = packet("+0.01 <[noecn] . 1:1(0) ack 1 win 65535");
    assert_eq!((p.direction, p.ecn), (Direction::Inbound, Some(Ecn::NotEct)));
    let p = packet("+0 >[ect0] P. 1:11(10) ack 1");
    assert_eq!((p.direction, p.ecn), (Direction::Outbound, Some(Ecn::Ect0)));
    for (s, e) in [("ect1", Ecn::Ect1), ("ect01", Ecn::Ect01), ("ce", Ecn::Ce)] {
        assert_eq!(packet(&format!("0 > [{s}] . 1:1(0) ack 1")).ecn, Some(e));
    }
    let p = packet("+0 < (tos 0x28) S 0:0(0) ack 1 win 32767 <mss 1460,sackOK,eol,eol>");
    assert_eq!(p.ip, IpFields { tos: Some(0x28), ..IpFields::default() });
    assert_eq!(packet("0 > (ttl 6) R 1:1(0) win 0").ip.ttl, Some(6));
    assert_eq!(packet("0 > (hlim 6) R 1:1(0) win 0").ip.hop_limit, Some(6));
    assert_eq!(packet("0 > (class 0xe0) R 1:1(0) win 0").ip.traffic_class, Some(0xe0));
    let p = packet("0 > [ce] (tos 0x28, ttl 3) . 1:1(0) ack 1");
    assert_eq!((p.ecn, p.ip.tos, p.ip.ttl), (Some(Ecn::Ce), Some(0x28), Some(3)));

    let p = packet("+0.10 < F.    1:1(0)       ack    1 win 32767 <nop,nop,md5 valid>/udp(1 > 9811)");
    assert_eq!(p.udp_encap, Some(UdpEncap { src_port: 1, dst_port: 9811 }));
    let p = packet("+0 > (ttl 6) R.    0:0(0)!      ack    2 win     0/udp(9811 > 1)");
    assert_eq!(p.udp_encap, Some(UdpEncap { src_port: 9811, dst_port: 1 }));
    assert!(p.tcp().unwrap().seq_absolute);
}

#[test]
fn icmp_packets() {
    let p = packet("+0.10 < icmp unreachable packet_filtered [4294967295:4294967295(0)]");
    let i = p.icmp().unwrap();
    assert_eq!((i.icmp_type.as_str(), i.code.as_deref(), i.mtu), ("unreachable", Some("packet_filtered"), None));
    assert_eq!(i.quoted, Some(QuotedSegment { seq: SeqSpec::Range { start: u32::MAX, end: u32::MAX }, len: 0 }));

    let i = packet("0 < icmp unreachable frag_needed mtu 1200 [1:1001(1000)]").icmp().cloned().unwrap();
    assert_eq!((i.code.as_deref(), i.mtu), (Some("frag_needed"), Some(1200)));
    assert_eq!(i.quoted, Some(QuotedSegment { seq: SeqSpec::Range { start: 1, end: 1001 }, len: 1000 }));

    let i = packet("0 < icmp packet_too_big mtu 1300 [0:0(0)]").icmp().cloned().unwrap();
    assert_eq!((i.icmp_type.as_str(), i.code, i.mtu), ("packet_too_big", None, Some(1300)));

    let i = packet("0 <icmp source_quench [0:0(0)]").icmp().cloned().unwrap();
    assert_eq!((i.icmp_type.as_str(), i.code), ("source_quench", None));

    let i = packet("0 > icmp unreachable port_unreachable").icmp().cloned().unwrap();
    assert_eq!((i.code.as_deref(), i.quoted), (Some("port_unreachable"), None));
    assert!(packet("0 > icmp unreachable port_unreachable").tcp().is_none());
}

#[test]
fn udp_packets() {
    let p = packet("0 < udp (100)");
    assert_eq!(p.udp(), Some(&UdpSpec { len: 100 }));
    assert!(p.tcp().is_none() && p.icmp().is_none());
    assert_eq!(packet("0 > udp(0)").udp(), Some(&UdpSpec { len: 0 }));
}

#[test]
fn tcp_errors() {
    assert_error("0 < SX 0:0(0) win 1\n", 1, 6, "unknown TCP flag `X`");
    assert_error("0 < SS 0:0(0) win 1\n", 1, 6, "TCP flag `S` is given twice");
    assert_error("0 < 0:0(0) win 1\n", 1, 5, "expected TCP flags");
    assert_error("0 < foo 0:0(0) win 1\n", 1, 5, "expected TCP flags");
    assert_error("0 < S 0 0(0) win 1\n", 1, 8, "expected `:` after the start sequence number");
    assert_error("0 < S 0:(0) win 1\n", 1, 9, "expected the end sequence number");
    assert_error("0 < S 0:0 win 1\n", 1, 10, "expected `(` and the payload length");
    assert_error("0 < S 0:0(0 win 1\n", 1, 13, "expected `)` after the payload length");
    assert_error("0 < P. 1:1001(100) ack 1\n", 1, 8, "spans 1000 bytes, but the length is 100");
    assert_error("0 < S 0:4294967296(0) win 1\n", 1, 9, "out of range");
    assert_error("0 < . 1:1(0) ack 1 ack 2\n", 1, 20, "`ack` is given twice");
    assert_error("0 < . 1:1(0) ack win 1\n", 1, 18, "expected the acknowledgment number after `ack`");
    assert_error("0 < . 1:1(0) ack 1 wnd 1\n", 1, 20, "unexpected `wnd`: expected the end of the line");
    assert_error("0 < S 0:0(0) win 1 <mss 1460,foo>\n", 1, 30, "unknown TCP option `foo`");
    assert_error("0 < S 0:0(0) win 1 <mss 65536>\n", 1, 25, "out of range");
    assert_error("0 < S 0:0(0) win 1 <wscale 256>\n", 1, 28, "out of range");
    assert_error("0 < S 0:0(0) win 1 <mss 1460 nop>\n", 1, 30, "expected `,` or `>`");
    assert_error("0 < S 0:0(0) win 1 <TS 1 ecr 2>\n", 1, 24, "expected `val` after `TS`");
    assert_error("0 < S 0:0(0) win 1 <TS val 1 2>\n", 1, 30, "expected `ecr`");
    assert_error("0 < S 0:0(0) win 1 <md5 maybe>\n", 1, 25, "expected `valid` or `invalid`");
    assert_error("0 < S 0:0(0) win 1 <sack 1-2>\n", 1, 27, "expected `:` between the edges of the SACK block");
    assert_error("0 < S 0:0(0) win 1 <mss 1460\n", 1, 20, "`<` is never closed");
    assert_error("0 < S 0:0(0) win 1 <mss 1460\n+0 close(3) = 0\n", 2, 1, "expected `,` or `>`");
    assert_error("0 < [ect2] S 0:0(0)\n", 1, 6, "unknown ECN codepoint `ect2`");
    assert_error("0 < [ect0 S 0:0(0)\n", 1, 11, "expected `]`");
    assert_error("0 < (tos 0x28 S 0:0(0)\n", 1, 15, "expected `,` or `)`");
    assert_error("0 < (mark 1) S 0:0(0)\n", 1, 6, "unknown IP header field `mark`");
    assert_error("0 < (ttl 256) S 0:0(0)\n", 1, 10, "out of range");
    assert_error("0 < . 1:1(0) ack 1/tcp(1 > 2)\n", 1, 19, "expected `/udp(src > dst)`");
    assert_error("0 < . 1:1(0) ack 1/udp(1 2)\n", 1, 26, "expected `>` between the UDP ports");
    assert_error("0 < icmp\n", 1, 9, "expected the ICMP type");
    assert_error("0 < icmp unreachable mtu\n", 1, 25, "expected the MTU");
    assert_error("0 < icmp unreachable [1:2(1)\n", 1, 22, "`[` is never closed");
    assert_error("0 < icmp unreachable [1:2(1) x\n", 1, 30, "expected `]`");
    assert_error("0 < udp 100\n", 1, 9, "expected `(` and the payload length after `udp`");
}

// ---- system calls ----

#[test]
fn syscalls_from_the_suite() {
    let s = syscall("+0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3");
    assert_eq!(s.name, "socket");
    assert_eq!(s.args, vec![Expr::Ellipsis, sym("SOCK_STREAM"), sym("IPPROTO_TCP")]);
    assert_eq!((s.ret.as_int(), s.errno, s.note), (Some(3), None, None));

    let s = syscall("+0 bind(3, ..., ...) = 0");
    assert_eq!(s.args, vec![Expr::Int(3), Expr::Ellipsis, Expr::Ellipsis]);

    let s = syscall("+0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0");
    assert_eq!(s.args[3], Expr::Array(vec![Expr::Int(1)]));
    assert_eq!(s.args[1].as_symbol(), Some("SOL_SOCKET"));

    let s = syscall("+0 getsockopt(3, SOL_SOCKET, SO_RCVBUF, [65536], [4]) = 0");
    assert_eq!(s.args[3..], [Expr::Array(vec![Expr::Int(65536)]), Expr::Array(vec![Expr::Int(4)])]);

    let s = syscall("+0 getsockopt(3, SOL_SOCKET, SO_ERROR, [ECONNREFUSED], [4]) = 0");
    assert_eq!(s.args[3], Expr::Array(vec![sym("ECONNREFUSED")]));

    let s = syscall("+0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0");
    assert_eq!(s.args[2], Expr::BitOr(vec![sym("O_RDWR"), sym("O_NONBLOCK")]));
    let s = syscall("+0 fcntl(3, F_SETFL, O_RDWR | O_NONBLOCK | O_APPEND) = 0");
    assert_eq!(s.args[2], Expr::BitOr(vec![sym("O_RDWR"), sym("O_NONBLOCK"), sym("O_APPEND")]));

    let s = syscall("+0 fcntl(3, F_GETFL) = 0x02 (flags O_RDWR)");
    assert_eq!((s.ret, s.errno, s.note.as_deref()), (Expr::Int(2), None, Some("flags O_RDWR")));

    let s = syscall("+0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)");
    assert_eq!(
        (s.ret, s.errno.as_deref(), s.note.as_deref()),
        (Expr::Int(-1), Some("EINPROGRESS"), Some("Operation now in progress"))
    );
    let s = syscall("+0 read(4, ..., 1000) = -1 EWOULDBLOCK");
    assert_eq!((s.errno.as_deref(), s.note), (Some("EWOULDBLOCK"), None));

    let s = syscall("+0 poll([{fd=3, events=POLLOUT, revents=POLLOUT}], 1, 0) = 1");
    assert_eq!(
        s.args[0],
        Expr::Array(vec![Expr::Struct(vec![
            ("fd".to_string(), Expr::Int(3)),
            ("events".to_string(), sym("POLLOUT")),
            ("revents".to_string(), sym("POLLOUT")),
        ])])
    );
    let s = syscall("+0 setsockopt(3, SOL_SOCKET, SO_LINGER, {l_onoff=1, l_linger=0}, 8) = 0");
    assert_eq!(
        s.args[3],
        Expr::Struct(vec![("l_onoff".to_string(), Expr::Int(1)), ("l_linger".to_string(), Expr::Int(0))])
    );

    for (line, name) in [
        ("+0 read(4, ..., 1000) = 1000", "read"),
        ("+0 write(4, ..., 1000) = 1000", "write"),
        ("+0 write (3, ..., 10) = 10", "write"),
        ("+0 close(3) = 0", "close"),
        ("+0 shutdown(4, SHUT_WR) = 0", "shutdown"),
        ("+0 accept(3, ..., ...) = 4", "accept"),
        ("+0 listen(3, 1) = 0", "listen"),
        ("+0 send(3, ..., 1440, 0) = 1440", "send"),
    ] {
        assert_eq!(syscall(line).name, name, "{line}");
    }
}

#[test]
fn expressions() {
    let args = |s: &str| syscall(&format!("0 f({s}) = 0")).args;
    assert_eq!(args(""), vec![]);
    assert_eq!(args("  "), vec![]);
    assert_eq!(
        args("0x1F, -5, 0, 9223372036854775807"),
        vec![Expr::Int(31), Expr::Int(-5), Expr::Int(0), Expr::Int(i64::MAX)]
    );
    assert_eq!(args("-9223372036854775808"), vec![Expr::Int(i64::MIN)]);
    assert_eq!(args(r#""a\"b\\c\n\x41""#), vec![Expr::Str("a\"b\\c\nA".to_string())]);
    assert_eq!(args("[]"), vec![Expr::Array(vec![])]);
    assert_eq!(args("{}"), vec![Expr::Struct(vec![])]);
    assert_eq!(
        args("[[1], [2, 3]]"),
        vec![Expr::Array(vec![Expr::Array(vec![Expr::Int(1)]), Expr::Array(vec![Expr::Int(2), Expr::Int(3)])])]
    );
    assert_eq!(
        args("{sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr(\"192.0.2.1\")}"),
        vec![Expr::Struct(vec![
            ("sa_family".to_string(), sym("AF_INET")),
            ("sin_port".to_string(), Expr::Call("htons".to_string(), vec![Expr::Int(8080)])),
            ("sin_addr".to_string(), Expr::Call("inet_addr".to_string(), vec![Expr::Str("192.0.2.1".to_string())])),
        ])]
    );
    assert_eq!(args("[A | 1]"), vec![Expr::Array(vec![Expr::BitOr(vec![sym("A"), Expr::Int(1)])])]);
    // Arguments may continue over lines.
    assert_eq!(
        args("3,\n   SOL_SOCKET,\n   [1]"),
        vec![Expr::Int(3), sym("SOL_SOCKET"), Expr::Array(vec![Expr::Int(1)])]
    );
    // A symbol as the return value, followed by a note (not a call).
    let s = syscall("0 f() = ... (anything)");
    assert_eq!((s.ret, s.note.as_deref()), (Expr::Ellipsis, Some("anything")));
    let s = syscall("0 f() = FOO (note (nested) text)");
    assert_eq!((s.ret, s.errno, s.note.as_deref()), (sym("FOO"), None, Some("note (nested) text")));
    let s = syscall("0 f() = A|B");
    assert_eq!(s.ret, Expr::BitOr(vec![sym("A"), sym("B")]));
}

#[test]
fn syscall_errors() {
    assert_error("0 close 3 = 0\n", 1, 9, "expected `(` after the system call name `close`");
    assert_error("0 close(3)\n", 1, 11, "expected `=` and the expected return value");
    assert_error("0 close(3) = \n", 1, 14, "expected an expression");
    assert_error("0 close(3 = 0\n", 1, 11, "expected `,` or `)`");
    assert_error("0 close(3,\n", 1, 8, "`(` is never closed");
    assert_error("0 f([{a=1,\n", 1, 6, "`{` is never closed");
    assert_error("0 close(3,) = 0\n", 1, 11, "expected an expression");
    assert_error("0 f(3, #) = 0\n", 1, 8, "expected an expression");
    assert_error("0 f({a 1}) = 0\n", 1, 8, "expected `=` after the field name `a`");
    assert_error("0 f({a=1 b=2}) = 0\n", 1, 10, "expected `,` or `}`");
    assert_error("0 f([1 2]) = 0\n", 1, 8, "expected `,` or `]`");
    assert_error("0 f(\"abc) = 0\n", 1, 5, "unterminated string");
    assert_error("0 f(\"a\\q\") = 0\n", 1, 7, "unknown escape");
    assert_error("0 f(12ab) = 0\n", 1, 5, "malformed number `12ab`");
    assert_error("0 f(99999999999999999999) = 0\n", 1, 5, "out of range");
    assert_error("0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now\n", 1, 41, "unclosed `(`");
    assert_error("0 close(3) = 0 0\n", 1, 16, "unexpected `0`: expected the end of the line");
    assert_error("0 close(3) = 0 EBADF extra\n", 1, 22, "unexpected `extra`");
}

// ---- conditional sections ----

#[test]
fn ifdef_sections() {
    let s = script(
        "0 close(1) = 0\n\
         #ifdef STANDARD\n\
         +0 close(2) = 0\n\
         #endif\n\
         #ifdef FreeBSD\n\
         +0 close(3) = 0\n\
         #ifndef Linux\n\
         +0 close(4) = 0\n\
         #else\n\
         +0 close(5) = 0\n\
         #endif\n\
         #endif\n\
         +0 close(6) = 0\n",
    );
    let fd = |e: &Event| match &e.kind {
        EventKind::Syscall(s) => s.args[0].as_int().unwrap(),
        _ => panic!(),
    };
    assert_eq!(s.events.len(), 6);
    assert_eq!(s.events[1].conditions, vec![Condition { symbol: "STANDARD".to_string(), defined: true }]);
    assert_eq!(
        s.events[4].conditions,
        vec![
            Condition { symbol: "FreeBSD".to_string(), defined: true },
            Condition { symbol: "Linux".to_string(), defined: true }
        ]
    );
    assert!(s.events[5].conditions.is_empty());
    let active = |d: &[&str]| s.events_for(d).map(fd).collect::<Vec<_>>();
    assert_eq!(active(&[]), vec![1, 6]);
    assert_eq!(active(&["STANDARD"]), vec![1, 2, 6]);
    assert_eq!(active(&["FreeBSD"]), vec![1, 3, 4, 6]);
    assert_eq!(active(&["FreeBSD", "Linux"]), vec![1, 3, 5, 6]);
}

#[test]
fn ifdef_errors() {
    assert_error("0 close(3) = 0\n#ifdef FreeBSD\n+0 close(3) = 0\n", 2, 1, "`#ifdef FreeBSD` is never closed");
    assert_error("#ifndef X\n#else\n0 close(3) = 0\n", 1, 1, "`#ifndef X` is never closed");
    assert_error("0 close(3) = 0\n  #endif\n", 2, 3, "`#endif` without `#ifdef`");
    assert_error("#else\n", 1, 1, "`#else` without");
    assert_error("#ifdef A\n#else\n#else\n#endif\n", 3, 1, "a second `#else`");
    assert_error("#if A\n", 1, 1, "unknown directive `#if`");
    assert_error("#ifdef\n", 1, 7, "expected a symbol after `#ifdef`");
    assert_error("#ifdef A B\n#endif\n", 1, 10, "unexpected `B`");
}

// ---- script-level errors ----

#[test]
fn script_errors() {
    assert_error("0 close(3) = 0\n--mss=1000\n", 2, 1, "options must come before the first event");
    assert_error("--\n", 1, 3, "expected an option name");
    assert_error("--mss=1000\n--a$b\n", 2, 4, "unexpected `$` in option `--a`");
    assert_error("`a`\n`b`\n0 close(3) = 0\n", 2, 1, "only one command without a time");
    assert_error("0 close(3) = 0\n`a`\n+0 close(3) = 0\n", 2, 1, "must come before the first event or be the last");
    assert_error("0 close(3) = 0\n+0 `sysctl -w x=1\n", 2, 4, "unterminated shell command");
    assert_error("0 close(3) = 0\n+0 %{ assert 1\n", 2, 4, "unterminated `%{` block");
    assert_error("0 close(3) = 0\n/* unterminated\n", 2, 1, "unterminated `/*` comment");
    assert_error("0 close(3) = 0 /* x */ y\n", 1, 24, "unexpected `y`");
}

#[test]
fn columns_count_characters_and_tabs() {
    // The error column counts characters, not bytes; a tab is one column.
    assert_error("// é\n\t0 < SX 0:0(0)\n", 2, 7, "unknown TCP flag");
    assert_error("/* é */ 0 < SX 0:0(0)\n", 1, 14, "unknown TCP flag");
}

#[test]
fn error_display_and_render() {
    let e = parse_str("dir/x.pkt", "--ip_version=ipv4\n0 close(3) = 0\n+0 < SX 0:0(0) win 1\n").unwrap_err();
    assert_eq!(e.to_string(), "dir/x.pkt:3:7: unknown TCP flag `X` (flags are S F R P U E W and `.` for ACK)");
    assert_eq!(e.line_text, "+0 < SX 0:0(0) win 1");
    assert!(e.render().ends_with("\n    +0 < SX 0:0(0) win 1\n          ^"), "{}", e.render());
    let e = parse_event("+0 < SX 0:0(0)").unwrap_err();
    assert!(e.to_string().starts_with("<event>:1:7: "));
}

#[test]
fn parse_file_reports_io_errors() {
    let err = parse_file("/nonexistent/dir/x.pkt").unwrap_err();
    assert!(matches!(err, Error::Io { .. }));
    assert!(err.to_string().starts_with("/nonexistent/dir/x.pkt: cannot read: "), "{err}");
}

#[test]
fn crlf_line_endings() {
    let s = script("--ip_version=ipv4\r\n0 close(3) = 0\r\n+0 > S 0:0(0) win 1\r\n");
    assert_eq!(s.events.len(), 2);
    assert_eq!(s.option("ip_version"), Some(Some("ipv4")));
    assert_eq!(s.events[1].source, "+0 > S 0:0(0) win 1");
}

#[test]
fn event_positions_and_source() {
    let s = script("\n\n   +0.1   > S 0:0(0) win 1   // comment\n");
    let e = &s.events[0];
    assert_eq!((e.line, e.column), (3, 4));
    assert_eq!(e.source, "+0.1   > S 0:0(0) win 1");
}

// ---- printing ----

#[test]
fn display_round_trips() {
    let src = "--ip_version=ipv4\n--verbose\n`init`\n\
        0 `sysctl -w a=1`\n\
        +0.25 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\
        +0 f(0x10, -1, \"s\\t\\\"q\\\"\", [A | B], {x=1, y=g(2)}) = -1 EAGAIN (Resource temporarily unavailable)\n\
        0.1~0.2 > SEW 0:0(0) win 65535 <mss 1460,nop,wscale 6,sackOK,TS val 100 ecr 0,eol>\n\
        +0~+0.1 < [ect0] (tos 0x28, ttl 3) P. 1:1001(1000) ack 1 win 257 urg 3 <nop,nop,sack 1:2 3:4,md5 invalid>/udp(1 > 9811)\n\
        * > R. 0:0(0)! ack 1\n\
        +0 > S. ...(0) ack 1 <...>\n\
        +0...1.5 read(3, ..., 10) = 10\n\
        #ifdef A\n\
        +0 < icmp unreachable frag_needed mtu 1200 [1:1001(1000)]\n\
        #else\n\
        +0 < udp (100)\n\
        #endif\n\
        +0 %{ assert tcpi_state == TCPI_CLOSED }%\n\
        `cleanup`\n";
    let a = script(src);
    let printed = a.to_string();
    let b = script(&printed);
    assert_eq!(a.options, b.options);
    assert_eq!((&a.init_command, &a.cleanup_command), (&b.init_command, &b.cleanup_command));
    assert_eq!(a.events.len(), b.events.len());
    for (x, y) in a.events.iter().zip(&b.events) {
        assert_eq!((x.time, &x.kind, &x.conditions), (y.time, &y.kind, &y.conditions), "{printed}");
    }
    assert_eq!(
        a.events[3].to_string(),
        "0.1~0.2 > SEW 0:0(0) win 65535 <mss 1460,nop,wscale 6,sackOK,TS val 100 ecr 0,eol>"
    );
    assert_eq!(
        a.events[4].to_string(),
        "+0~+0.1 < [ect0] (tos 0x28, ttl 3) P. 1:1001(1000) ack 1 win 257 urg 3 <nop,nop,sack 1:2 3:4,md5 invalid>/udp(1 > 9811)"
    );
    assert!(printed.contains("#ifdef A\n+0 < icmp unreachable frag_needed mtu 1200 [1:1001(1000)]\n#endif\n#ifndef A\n+0 < udp (100)\n#endif\n"));
}
