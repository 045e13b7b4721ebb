//! Several stacks sharing one address: shards of a multi-queue device.
//!
//! A multi-queue TUN device hands each packet to one of its queues, and a
//! stack (a shard, usually one per core) runs on each queue. For that to
//! work, every segment of a connection must reach the shard that holds it,
//! both ways. The device steers by ports, with the rule [`Shard::of_tcp`]
//! and [`Shard::of_udp`] state (the shell installs the same rule in the
//! kernel as a steering program); a shard in turn picks only ports the
//! rule gives to itself when it opens a connection or binds a UDP socket.
//! A connection the peer opens lands wherever the rule puts it, so every
//! shard listens on the same ports and each accepts its share. ICMP echo
//! messages go by their identifier ([`Shard::of_icmp_echo`]): every shard
//! answers pings, and one that pings picks an identifier of its own.

/// This stack's place among `count` shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// Which shard this is, `0..count`.
    pub index: u16,
    /// How many shards share the address.
    pub count: u16,
}

impl Shard {
    /// Shard `index` of `count`; `None` unless `index < count`.
    pub fn new(index: u16, count: u16) -> Option<Shard> {
        (index < count).then_some(Shard { index, count })
    }

    /// The shard a TCP connection between these ports belongs to. The
    /// exclusive-or is the same both ways, so it holds for segments in
    /// and out alike.
    pub fn of_tcp(count: u16, local_port: u16, remote_port: u16) -> u16 {
        mix(local_port ^ remote_port) % count.max(1)
    }

    /// The shard the datagrams for a local UDP port go to: a UDP socket
    /// talks to many peers, so only its own port can decide.
    pub fn of_udp(count: u16, local_port: u16) -> u16 {
        mix(local_port) % count.max(1)
    }

    /// The shard ICMP echo requests and replies with this identifier go
    /// to: a shard that pings with an identifier of its own gets the
    /// replies.
    pub fn of_icmp_echo(count: u16, ident: u16) -> u16 {
        mix(ident) % count.max(1)
    }

    /// True when echo replies with this identifier come to this shard.
    pub fn owns_icmp_echo(&self, ident: u16) -> bool {
        Shard::of_icmp_echo(self.count, ident) == self.index
    }

    /// True when this shard holds TCP connections between these ports.
    pub fn owns_tcp(&self, local_port: u16, remote_port: u16) -> bool {
        Shard::of_tcp(self.count, local_port, remote_port) == self.index
    }

    /// True when datagrams to this local UDP port come to this shard.
    pub fn owns_udp(&self, local_port: u16) -> bool {
        Shard::of_udp(self.count, local_port) == self.index
    }
}

/// Spreads the bits of `x` over the result, so that no single bit of a
/// port decides the shard: Linux picks even ports for `connect`, so with
/// two shards `port % 2` would send every connection to one of them. A
/// multiplicative hash (Knuth's constant); the high half of the 32-bit
/// product depends on every bit of `x`.
fn mix(x: u16) -> u16 {
    (u32::from(x).wrapping_mul(MIX) >> 16) as u16
}

/// The multiplier of [`mix`]; the steering program uses it too.
pub const MIX: u32 = 0x9e37_79b1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_port_pair_has_exactly_one_shard_and_it_is_symmetric() {
        for count in 1..=5u16 {
            let shards: Vec<Shard> = (0..count).map(|i| Shard::new(i, count).unwrap()).collect();
            for (l, r) in [(80, 40000), (40000, 80), (1, 1), (65535, 0), (5001, 33333)] {
                assert_eq!(shards.iter().filter(|s| s.owns_tcp(l, r)).count(), 1);
                assert_eq!(Shard::of_tcp(count, l, r), Shard::of_tcp(count, r, l));
                assert_eq!(shards.iter().filter(|s| s.owns_udp(l)).count(), 1);
            }
        }
        assert_eq!(Shard::new(2, 2), None);
    }

    #[test]
    fn even_ports_spread_over_two_shards() {
        // Linux's connect() ports are even; a server's port is fixed.
        let on_one = (40000..40200u16).step_by(2).filter(|&p| Shard::of_tcp(2, 5001, p) == 1).count();
        assert!((30..=70).contains(&on_one), "{on_one} of 100 on shard 1");
    }
}
