//! Bringing up a device and a stack on a real host.

use std::io::{self, Read};
use std::path::PathBuf;
use std::process::Command;
use ustack::phy::Device;
use ustack::phy::tun::{TunDevice, TunOptions};
use ustack::{DriverOptions, NetStack};
use ustack_core::StackConfig;
use ustack_core::wire::{EthernetAddress, Ipv4Cidr};

/// The device options every real-host subcommand takes.
#[derive(clap::Args, Clone, Debug)]
pub struct DeviceArgs {
    /// Name of the TUN (or TAP) interface; created if missing.
    #[arg(long, value_name = "NAME")]
    pub tun: String,
    /// ustack's own address and prefix on the interface, e.g. 10.7.0.2/24.
    #[arg(long, value_name = "ADDR/PREFIX", value_parser = parse_cidr)]
    pub addr: Ipv4Cidr,
    /// Give the kernel's side of the interface this address and bring the
    /// link up, e.g. 10.7.0.1/24.
    #[arg(long, value_name = "ADDR/PREFIX", value_parser = parse_cidr)]
    pub host_addr: Option<Ipv4Cidr>,
    /// Default gateway for destinations outside the interface's subnet.
    #[arg(long, value_name = "ADDR")]
    pub gateway: Option<std::net::Ipv4Addr>,
    /// Take packets to any address the kernel routes to ustack, not only
    /// --addr, as a VPN client's or transparent proxy's device does: a
    /// service answers as the address its client asked for (try
    /// `ip route add 10.99.0.0/16 via ADDR` and `curl http://10.99.1.2/whoami`).
    #[arg(long)]
    pub any_ip: bool,
    /// Detect path MTU black holes (RFC 4821): after three timeouts in a
    /// row of the same data, send smaller segments (for routers whose
    /// "fragmentation needed" errors are filtered on the way back).
    #[arg(long)]
    pub mtu_probing: bool,
    /// Carry TCP in UDP datagrams on this UDP port (FreeBSD's TCP over
    /// UDP, for paths that pass only UDP): `up` takes such connections
    /// beside plain ones, `connect` and `get` send theirs to the same port
    /// of the server.
    #[arg(long, value_name = "PORT", value_parser = parse_udp_port)]
    pub tcp_over_udp: Option<u16>,
    /// Use a TAP device (Ethernet frames, ARP) instead of TUN (IP packets).
    #[arg(long)]
    pub tap: bool,
    /// IP MTU of the interface.
    #[arg(long, default_value_t = 1500, value_parser = parse_mtu)]
    pub mtu: usize,
    /// Write every frame to this pcap file.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// Do not use the TUN offload header (IFF_VNET_HDR), even if offered.
    #[arg(long)]
    pub no_offload: bool,
    /// Impair traffic both ways where it crosses the device, like netem:
    /// e.g. loss=2%,reorder=5%,duplicate=1%,delay=5ms (also jitter, gap,
    /// seed, and ce=1%: mark ECN-capable packets Congestion Experienced).
    #[arg(long, value_name = "SPEC")]
    pub impair: Option<ustack::phy::impair::Impairment>,
}

pub fn parse_cidr(s: &str) -> Result<Ipv4Cidr, String> {
    s.parse::<Ipv4Cidr>().map_err(|e| e.to_string())
}

fn parse_udp_port(s: &str) -> Result<u16, String> {
    match s.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("`{s}` is not a UDP port: give a number from 1 to 65535, e.g. 9811")),
        Ok(p) => Ok(p),
    }
}

fn parse_mtu(s: &str) -> Result<usize, String> {
    let v: usize = s.parse().map_err(|_| format!("`{s}` is not a number; the MTU is a size in bytes like 1500"))?;
    if (576..=65535).contains(&v) { Ok(v) } else { Err(format!("MTU {v} is outside 576 to 65535")) }
}

/// A device and the stack running on it.
pub struct Node {
    /// Every shard; one stack without `--shards`.
    pub shards: Vec<NetStack>,
    pub device_name: String,
    pub offload: bool,
    pub created: bool,
}

/// Opens the device, configures the kernel side, and starts the stack.
pub fn bring_up(args: &DeviceArgs) -> Result<Node, String> {
    bring_up_shards(args, 1)
}

/// [`bring_up`] with `shards` stacks on a multi-queue TUN device (one
/// queue and driver thread each), when `shards` is more than 1.
pub fn bring_up_shards(args: &DeviceArgs, shards: usize) -> Result<Node, String> {
    if shards > 1 && args.tap {
        return Err(
            "--shards needs a TUN device: a TAP device's ARP would need one shard to answer for all; drop --tap".into(),
        );
    }
    if !ustack_is_root() {
        return Err(format!(
            "opening TUN/TAP device `{}` needs root or CAP_NET_ADMIN: run this command with sudo",
            args.tun
        ));
    }
    if let Some(h) = args.host_addr {
        if h.address() == args.addr.address() {
            return Err(format!(
                "--host-addr {h} is the same address as --addr: give the kernel's side another address"
            ));
        }
        if !args.addr.contains(h.address()) {
            return Err(format!(
                "--host-addr {h} is not in ustack's subnet {}: use addresses of one subnet",
                args.addr.network()
            ));
        }
    }
    let opts = TunOptions { name: args.tun.clone(), tap: args.tap, mtu: args.mtu, offload: !args.no_offload };
    let devs = if shards > 1 {
        TunDevice::open_queues(&opts, shards).map_err(|e| e.to_string())?
    } else {
        vec![TunDevice::open(&opts).map_err(|e| e.to_string())?]
    };
    let name = devs[0].name().to_string();
    let (offload, created) = (devs[0].offload(), devs[0].created());
    if let Some(h) = args.host_addr {
        configure_host_side(&name, h, args.mtu)?;
    }
    let mut cfg = StackConfig::ip(args.addr).with_seed(random_seed());
    if args.tap {
        cfg = StackConfig::ethernet(random_mac(), args.addr).with_seed(cfg.seed);
    }
    if let Some(gw) = args.gateway {
        cfg = cfg.with_gateway(gw);
    }
    cfg.any_ip = args.any_ip;
    cfg.tcp.mtu_probing = args.mtu_probing;
    cfg.tcp_over_udp_port = args.tcp_over_udp;
    let wrap = |dev: TunDevice| -> Box<dyn Device> {
        match &args.impair {
            Some(imp) => Box::new(ustack::phy::impair::Impaired::new(dev, imp.clone())),
            None => Box::new(dev),
        }
    };
    let opts = DriverOptions { pcap: args.pcap.clone() };
    let nets = NetStack::start_shards(devs.into_iter().map(wrap).collect(), cfg, opts).map_err(|e| e.to_string())?;
    Ok(Node { shards: nets, device_name: name, offload, created })
}

/// Connects to `target` over the node's stack, carried over UDP when
/// `--tcp-over-udp` says so.
pub fn connect(
    node: &Node,
    args: &DeviceArgs,
    target: std::net::SocketAddrV4,
) -> io::Result<ustack::blocking::TcpStream> {
    let socket = ustack::blocking::TcpSocket::new(node.net())?;
    if let Some(port) = args.tcp_over_udp {
        socket.set_udp_encapsulation(Some(port))?;
    }
    socket.connect(target)
}

impl Node {
    /// The stack (the first shard when there are several).
    pub fn net(&self) -> &NetStack {
        &self.shards[0]
    }
}

fn configure_host_side(dev: &str, host: Ipv4Cidr, mtu: usize) -> Result<(), String> {
    let run = |args: &[&str]| -> Result<(), String> {
        let out =
            Command::new("ip").args(args).output().map_err(|e| format!("cannot run `ip` (install iproute2): {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        let err = String::from_utf8_lossy(&out.stderr);
        // An address already there is what we wanted.
        if err.contains("File exists") || err.contains("Address already assigned") {
            return Ok(());
        }
        Err(format!("`ip {}` failed: {}", args.join(" "), err.trim()))
    };
    run(&["addr", "add", &host.to_string(), "dev", dev])?;
    run(&["link", "set", "dev", dev, "mtu", &mtu.to_string(), "up"])
}

fn ustack_is_root() -> bool {
    // Reading our effective uid without unsafe: /proc/self/status.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

/// A seed for the stack's random source, from the operating system.
pub fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut b);
    }
    u64::from_le_bytes(b) ^ std::process::id() as u64
}

/// A random locally administered unicast MAC address.
fn random_mac() -> EthernetAddress {
    let r = random_seed().to_le_bytes();
    EthernetAddress([0x02, r[1], r[2], r[3], r[4], r[5]])
}

/// Parses `HOST:PORT` with an IPv4 host.
pub fn parse_endpoint(s: &str) -> Result<std::net::SocketAddrV4, String> {
    let (h, p) =
        s.rsplit_once(':').ok_or_else(|| format!("`{s}` needs a port: write HOST:PORT, e.g. 10.7.0.1:8000"))?;
    let ip: std::net::Ipv4Addr =
        h.parse().map_err(|_| format!("`{h}` is not an IPv4 address (ustack does not resolve names)"))?;
    let port: u16 = p.parse().ok().filter(|&p| p != 0).ok_or_else(|| format!("`{p}` is not a port: use 1 to 65535"))?;
    Ok(std::net::SocketAddrV4::new(ip, port))
}

pub fn io_msg(e: io::Error) -> String {
    e.to_string()
}
