//! Ready-made networks for tests, the demo and benchmarks.

use super::{Host, LinkConfig, Network, NodeId};
use crate::stack::{Stack, StackConfig};
use crate::wire::EthernetAddress;
use std::net::Ipv4Addr;

/// The address of host `i` on the simulated LAN 10.0.0.0/24.
pub fn host_ip(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, i)
}

/// The MAC address of host `i`: 02:00:00:00:00:i (locally administered).
pub fn host_mac(i: u8) -> EthernetAddress {
    EthernetAddress([0x02, 0, 0, 0, 0, i])
}

/// An Ethernet stack for host `i` (10.0.0.i/24), seeded from `seed`.
pub fn host_config(i: u8, seed: u64) -> StackConfig {
    StackConfig::ethernet(host_mac(i), crate::wire::Ipv4Cidr::new(host_ip(i), 24)).with_seed(seed ^ (i as u64) << 56)
}

/// Two hosts, 10.0.0.1 and 10.0.0.2, joined by one link.
pub fn two_hosts(seed: u64, link: LinkConfig, a: StackConfig, b: StackConfig) -> (Network, NodeId, NodeId) {
    let mut net = Network::new(seed);
    let a = net.add(Host::new(Stack::new(a)));
    let b = net.add(Host::new(Stack::new(b)));
    net.connect((a, 0), (b, 0), link);
    (net, a, b)
}

/// `two_hosts` with default stacks.
pub fn default_pair(seed: u64, link: LinkConfig) -> (Network, NodeId, NodeId) {
    two_hosts(seed, link, host_config(1, seed), host_config(2, seed))
}

impl Network {
    /// The host at `id`; panics if it is not a [`Host`].
    pub fn host(&self, id: NodeId) -> &Host {
        self.node_as::<Host>(id).expect("node is a Host")
    }
    pub fn host_mut(&mut self, id: NodeId) -> &mut Host {
        self.node_as_mut::<Host>(id).expect("node is a Host")
    }
}
