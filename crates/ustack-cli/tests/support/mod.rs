//! What the root-only tests share: a network namespace of their own,
//! deleted with everything in it when its guard is dropped (also when the
//! test panics). Every address a test uses lives inside such a namespace.
//!
//! A test's own guard holds a [`Namespace`] and the processes it started;
//! its `Drop` stops those first, then the namespace goes with the field.

#![allow(dead_code)] // each test file uses a part

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

static NAMESPACES: AtomicU32 = AtomicU32::new(0);

pub struct Namespace {
    pub name: String,
}

impl Namespace {
    /// `ustk-<tag>-<pid>-<n>` with its loopback up; panics with `needs`
    /// (what the test requires, and how to run it) when it cannot be made.
    pub fn new(tag: &str, needs: &str) -> Namespace {
        let n = NAMESPACES.fetch_add(1, Ordering::SeqCst);
        let name = format!("ustk-{tag}-{}-{n}", std::process::id() % 100000);
        let st = Command::new("ip").args(["netns", "add", &name]).status().expect("ip netns add (install iproute2)");
        assert!(st.success(), "cannot create network namespace {name}: {needs}");
        let ns = Namespace { name };
        ns.run(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// `args` as a command inside the namespace.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).args(args);
        c
    }

    /// Runs `args` to completion inside the namespace; panics with its
    /// output if it fails.
    pub fn run(&self, args: &[&str]) -> Output {
        let out = self.cmd(args).output().unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
        assert!(
            out.status.success(),
            "{args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

/// Runs the test `test` of this test binary again inside a namespace of its
/// own (tagged `tag`), with `child_env` set so that the copy does the work
/// where the parent only waits; fails with the copy's output if it failed.
/// The TUN device, the kernel's sockets and every address then live in the
/// namespace and go with it.
pub fn rerun_in_namespace(tag: &str, needs: &str, child_env: &str, test: &str) {
    rerun_in(&Namespace::new(tag, needs), child_env, test);
}

/// Runs the test `test` of this test binary again inside `ns`, with
/// `child_env` set; fails with the copy's output if it failed.
pub fn rerun_in(ns: &Namespace, child_env: &str, test: &str) {
    let exe = std::env::current_exe().unwrap();
    let out = ns
        .cmd(&[exe.to_str().unwrap(), "--exact", test, "--include-ignored", "--nocapture", "--test-threads=1"])
        .env(child_env, "1")
        .output()
        .expect("run the test in its namespace");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{text}");
    assert!(out.status.success() && text.contains("1 passed"), "the test failed in its namespace:\n{text}");
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// A TUN device `dev` (no offload) whose kernel side has `host_cidr` and
/// is up: ustack's link to the kernel of the namespace it runs in.
pub fn tun_with_host(dev: &str, host_cidr: &str) -> ustack::phy::tun::TunDevice {
    use ustack::phy::tun::{TunDevice, TunOptions};
    let opts = TunOptions { name: dev.into(), tap: false, mtu: 1500, offload: false };
    let tun = TunDevice::open(&opts).expect("open a TUN device");
    for args in [vec!["addr", "add", host_cidr, "dev", dev], vec!["link", "set", dev, "up"]] {
        assert!(Command::new("ip").args(&args).status().unwrap().success(), "ip {args:?}");
    }
    tun
}
