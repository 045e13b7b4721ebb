//! The `ustack demo` command end to end: its output, its pcap as tshark
//! reads it, and its argument errors.

use std::path::PathBuf;
use std::process::Command;

fn ustack() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ustack"))
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ustack-test-{}-{name}", std::process::id()))
}

#[test]
fn demo_prints_the_textbook_ladder() {
    let out = ustack().arg("demo").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in
        ["SYN-SENT", "SYN-RECEIVED", "FIN-WAIT-2", "TIME-WAIT", "CLOSE-WAIT", "LAST-ACK", "PSH-ACK seq=1 ack=1 len=14"]
    {
        assert!(text.contains(needle), "missing {needle}:\n{text}");
    }
    assert!(text.contains("server received 14 bytes: \"I'm TCP client\""), "{text}");
    assert!(text.contains("(9 TCP segments), 0 retransmissions"), "{text}");
}

/// tshark must be installed (`.ci/run` installs it): the pcap has to open
/// with no malformed packet and no bad checksum, and hold the same nine
/// TCP segments.
#[test]
fn demo_pcap_reads_cleanly_in_tshark() {
    let pcap = tmp("demo.pcap");
    let out = ustack().args(["demo", "--pcap"]).arg(&pcap).output().unwrap();
    assert!(out.status.success());
    let tshark = |filter: &str| {
        let o = Command::new("tshark")
            .args(["-n", "-r"])
            .arg(&pcap)
            .args(["-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE", "-Y", filter])
            .output()
            .expect("tshark is needed for this test: apt-get install tshark (or run .ci/run)");
        assert!(o.status.success(), "tshark failed: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    assert_eq!(tshark("tcp").lines().count(), 9);
    assert_eq!(tshark("arp").lines().count(), 2);
    let bad = tshark(
        "_ws.malformed || tcp.checksum.status == 2 || ip.checksum.status == 2 || _ws.expert.severity >= warning",
    );
    assert!(bad.is_empty(), "tshark found problems:\n{bad}");
    let _ = std::fs::remove_file(&pcap);
}

#[test]
fn lossy_demo_retransmits_and_tshark_agrees() {
    let pcap = tmp("lossy.pcap");
    let out = ustack().args(["demo", "--loss", "0.3", "--seed", "7", "--pcap"]).arg(&pcap).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("(retransmission)"), "{text}");
    assert!(text.contains("server received 14 bytes"), "{text}");
    let o = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(&pcap)
        .args(["-Y", "tcp.analysis.retransmission"])
        .output()
        .expect("tshark is needed for this test");
    let tshark_rexmits = String::from_utf8(o.stdout).unwrap().lines().count();
    let ours = text.lines().filter(|l| l.contains("(retransmission)")).count();
    assert_eq!(tshark_rexmits, ours, "{text}");
    let _ = std::fs::remove_file(&pcap);
}

#[test]
fn bad_arguments_say_what_to_do() {
    let out = ustack().args(["demo", "--loss", "2"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("outside 0 to 0.9"), "{err}");
    let out = ustack().args(["demo", "--loss", "lots"]).output().unwrap();
    assert!(String::from_utf8(out.stderr).unwrap().contains("is not a number"));
    let out = ustack().args(["demo", "--pcap", "/nonexistent-dir/x.pcap"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr).unwrap().contains("cannot write /nonexistent-dir/x.pcap"));
    // ping and traceroute check their numbers before they need root.
    let dev = ["--tun", "ut0", "--addr", "10.7.0.2/24", "10.7.0.1"];
    for (args, says) in [
        (&["ping", "-s", "70000"][..], "do not fit one IPv4 datagram: at most 65507"),
        (&["ping", "-M", "sometimes"], "possible values: do, want, dont, probe"),
        (&["ping", "-t", "0"], "0 is not in 1..=255"),
        (&["traceroute", "-w", "0"], "not a wait in seconds between 0 and 60"),
        (&["traceroute", "-q", "11"], "11 is not in 1..=10"),
        (&["ping", "--tcp-over-udp", "0"], "`0` is not a UDP port: give a number from 1 to 65535"),
    ] {
        let out = ustack().args(args).args(dev).output().unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let out =
        ustack().args(["tun2socks", "--tun", "ut0", "--addr", "10.7.0.2/24", "--socks", "nope"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("invalid value 'nope' for '--socks <ADDR:PORT>'"), "{err}");
    // A user name without its password, or an empty one: said before any
    // device is made (no root needed to see it).
    let tun2socks = ["tun2socks", "--tun", "ut0", "--addr", "10.7.0.2/24", "--socks", "127.0.0.1:1080", "--socks-user"];
    for (user, password, says) in [
        ("alice", None, "--socks-user needs the password in the environment variable USTACK_SOCKS_PASSWORD"),
        ("alice", Some(""), "the SOCKS5 password must be 1 to 255 bytes long, not 0"),
    ] {
        let mut cmd = ustack();
        cmd.args(tun2socks).arg(user).env_remove("USTACK_SOCKS_PASSWORD");
        if let Some(p) = password {
            cmd.env("USTACK_SOCKS_PASSWORD", p);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(says), "{err}");
    }
}

/// `RUST_LOG=ustack::tcp=debug` logs TCP's decisions to stderr, each with
/// the rule behind it; other layers' targets stay quiet; without RUST_LOG
/// nothing is logged.
#[test]
fn rust_log_shows_tcp_decisions_with_their_rfc() {
    let run = |log: Option<&str>| {
        let mut c = ustack();
        c.args(["demo", "--loss", "0.1", "--seed", "3", "--bytes", "200000"]);
        c.env_remove("RUST_LOG");
        if let Some(l) = log {
            c.env("RUST_LOG", l);
        }
        let out = c.output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stderr).unwrap()
    };
    let log = run(Some("ustack::tcp=debug"));
    for needle in [
        "CLOSED -> SYN-SENT (active OPEN: SYN sent, RFC 9293 §3.5)",
        "LISTEN -> SYN-RECEIVED",
        "FIN-WAIT-2 -> TIME-WAIT (2MSL wait begins, RFC 9293 §3.6)",
        "out of order: held, ACK now",
        "fast recovery (RFC 6675 §5",
        "retransmitting seq",
        "taken in ESTABLISHED",
    ] {
        assert!(log.contains(needle), "missing {needle:?} in the log:\n{log}");
    }
    assert!(log.lines().all(|l| l.contains("ustack::tcp")), "only the TCP target:\n{log}");
    assert!(!log.contains("TRACE"), "debug, not trace");
    let segments = run(Some("ustack::tcp=trace"));
    assert!(segments.contains("TRACE") && segments.contains("wscale"), "trace shows every segment, options too");
    assert_eq!(run(None), "", "nothing without RUST_LOG");
}
