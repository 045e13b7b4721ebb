//! Counters kept by a stack: packets by layer, and every drop by reason.

use core::fmt;

macro_rules! drop_reasons {
    ($($name:ident => $text:literal,)*) => {
        /// Why a packet was dropped. Every drop is counted under one reason.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum DropReason { $($name,)* }

        impl DropReason {
            pub const ALL: &'static [DropReason] = &[$(DropReason::$name,)*];
            /// A short snake_case name, as in the `/stats` JSON.
            pub fn name(self) -> &'static str {
                match self { $(DropReason::$name => $text,)* }
            }
        }
    };
}

drop_reasons! {
    EthTruncated => "eth_truncated",
    EthNotForUs => "eth_not_for_us",
    EthUnknownType => "eth_unknown_type",
    ArpMalformed => "arp_malformed",
    ArpNotForUs => "arp_not_for_us",
    ArpUnresolved => "arp_unresolved",
    ArpQueueFull => "arp_queue_full",
    IpTruncated => "ip_truncated",
    IpBadVersion => "ip_bad_version",
    IpBadHeaderLen => "ip_bad_header_len",
    IpBadTotalLen => "ip_bad_total_len",
    IpBadChecksum => "ip_bad_checksum",
    IpTtlExpired => "ip_ttl_expired",
    IpNotForUs => "ip_not_for_us",
    IpBadSource => "ip_bad_source",
    IpUnknownProtocol => "ip_unknown_protocol",
    IpFragment => "ip_fragment",
    IpNoRoute => "ip_no_route",
    IpTooBig => "ip_too_big",
    IcmpMalformed => "icmp_malformed",
    IcmpBadChecksum => "icmp_bad_checksum",
    IcmpUnsupported => "icmp_unsupported",
    IcmpRateLimited => "icmp_rate_limited",
    UdpMalformed => "udp_malformed",
    UdpBadChecksum => "udp_bad_checksum",
    UdpNoSocket => "udp_no_socket",
    UdpBufferFull => "udp_buffer_full",
    TcpMalformed => "tcp_malformed",
    TcpBadChecksum => "tcp_bad_checksum",
    TcpNoSocket => "tcp_no_socket",
    TcpUnacceptable => "tcp_unacceptable",
    TcpOutOfWindow => "tcp_out_of_window",
    TcpBadAck => "tcp_bad_ack",
    TcpListenOverflow => "tcp_listen_overflow",
    TcpNoBufferSpace => "tcp_no_buffer_space",
    TcpPaws => "tcp_paws",
    // RFC 2385 §3.0, named as Linux counts them (TCPMD5NotFound,
    // TCPMD5Failure, TCPMD5Unexpected).
    TcpMd5NotFound => "tcp_md5_not_found",
    TcpMd5Failure => "tcp_md5_failure",
    TcpMd5Unexpected => "tcp_md5_unexpected",
    TcpOther => "tcp_other",
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// TCP counters, in the spirit of the kernel's `netstat -s`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpStats {
    pub active_opens: u64,
    pub passive_opens: u64,
    pub attempt_fails: u64,
    pub estab_resets: u64,
    pub segments_in: u64,
    pub segments_out: u64,
    pub retransmitted_segments: u64,
    pub tail_loss_probes: u64,
    pub resets_out: u64,
    pub resets_in: u64,
    pub timeouts: u64,
    pub fast_retransmits: u64,
    pub challenge_acks: u64,
    /// Challenge ACKs not sent because of the RFC 5961 §7 rate limit.
    pub challenge_acks_limited: u64,
    /// Out-of-order segments dropped because the stack-wide limit was reached.
    pub ooo_limit_drops: u64,
    /// Times the stack-wide TCP buffer budget (`tcp_memory_limit`) was
    /// hit: arriving data dropped or cut, writes refused with EAGAIN.
    pub memory_limited: u64,
    /// ICMP errors for a connection that quoted a sequence number not in
    /// flight, ignored as stale or forged (RFC 5927 §4.1).
    pub icmp_errors_ignored: u64,
    /// Times a connection suspected a path MTU black hole and shrank its
    /// segments (`TcpConfig::mtu_probing`, RFC 4821 §7.1).
    pub mtu_black_holes: u64,
    pub delayed_acks: u64,
    pub zero_window_probes: u64,
    pub bytes_in: u64,
    /// Of `bytes_in`, those that went straight into the buffer of a reader
    /// waiting for them (`Stack::set_direct_reader`), not through the
    /// receive buffer.
    pub bytes_direct: u64,
    pub bytes_out: u64,
    pub out_of_order_segments: u64,
    pub duplicate_segments: u64,
    pub connections_timed_out: u64,
    /// SYN-ACKs sent with a cookie because a SYN queue was full.
    pub syn_cookies_sent: u64,
    /// ACKs to a listener that carried a valid cookie.
    pub syn_cookies_valid: u64,
    /// ACKs to a listener checked as cookies and found wrong (each got a RST).
    pub syn_cookies_invalid: u64,
    /// Connections whose SYNs negotiated ECN (RFC 3168).
    pub ecn_connections: u64,
    /// Segments that arrived marked Congestion Experienced on such a
    /// connection (each echoed with ECE).
    pub ecn_ce_received: u64,
    /// Congestion-window reductions for an ECE (at most one per window).
    pub ecn_reductions: u64,
    /// SYNs whose data a listener took on a good Fast Open cookie (RFC 7413).
    pub fast_open_syn_data: u64,
    /// Fast Open cookies given in SYN-ACKs, asked for or to replace a wrong one.
    pub fast_open_cookies_sent: u64,
    /// SYNs with a good cookie and data answered as ordinary ones because
    /// the listener's Fast Open queue (`TcpConfig::fast_open`) was full.
    pub fast_open_queue_full: u64,
    /// SYNs this stack sent with a cookie and data (`connect_with_data`).
    pub fast_open_active: u64,
    /// Of those, the ones whose data the SYN-ACK acknowledged.
    pub fast_open_active_acked: u64,
}

/// How often each resource limit was hit (issue 7). Limits whose hits are
/// already counted elsewhere are reported beside these in the `limits`
/// object of the JSON: the accept queue (`drops.tcp_listen_overflow`), the
/// stack-wide out-of-order memory (`tcp.ooo_limit_drops`), the UDP socket
/// buffer (`drops.udp_buffer_full`), the challenge-ACK rate
/// (`tcp.challenge_acks_limited`) and the stack-wide TCP buffer budget
/// (`tcp.memory_limited`, as `tcp_memory`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LimitStats {
    /// Sockets refused because `StackConfig::max_sockets` were open
    /// (`tcp_socket`/`udp_socket` failed, or a connection completing a
    /// handshake could not be given a socket).
    pub sockets: u64,
    /// SYNs that found their listener's SYN queue full
    /// (`StackConfig::max_half_open`); answered with a SYN cookie when
    /// `syn_cookies` is on, dropped otherwise.
    pub half_open: u64,
    /// Fragments dropped, or datagrams under reassembly evicted, to keep
    /// reassembly within `ReassemblyConfig::max_bytes`/`max_datagrams`.
    pub frag_memory: u64,
}

#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub frames_in: u64,
    pub frames_out: u64,
    pub ip_in: u64,
    pub ip_out: u64,
    pub ip_reassembled: u64,
    pub ip_fragments_out: u64,
    pub icmp_in: u64,
    pub icmp_out: u64,
    pub udp_in: u64,
    pub udp_out: u64,
    pub arp_in: u64,
    pub arp_out: u64,
    pub tcp: TcpStats,
    pub limits: LimitStats,
    drops: Vec<u64>,
}

impl Stats {
    pub fn count_drop(&mut self, reason: DropReason) {
        crate::log::dropped(reason);
        if self.drops.is_empty() {
            self.drops = vec![0; DropReason::ALL.len()];
        }
        self.drops[reason as usize] += 1;
    }
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops.get(reason as usize).copied().unwrap_or(0)
    }
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }
    /// Non-zero drop counters by reason.
    pub fn drops_by_reason(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.iter().map(|&r| (r, self.drops(r))).filter(|&(_, n)| n > 0)
    }
}

impl Stats {
    /// The counters as a JSON object (for `/stats` and `--stats`).
    pub fn to_json(&self) -> String {
        let t = &self.tcp;
        let mut drops = String::new();
        for (i, (r, n)) in self.drops_by_reason().enumerate() {
            if i > 0 {
                drops.push(',');
            }
            drops.push_str(&format!("\"{}\":{n}", r.name()));
        }
        format!(
            concat!(
                "{{\"frames_in\":{},\"frames_out\":{},\"ip_in\":{},\"ip_out\":{},\"ip_reassembled\":{},",
                "\"ip_fragments_out\":{},\"icmp_in\":{},\"icmp_out\":{},\"udp_in\":{},\"udp_out\":{},",
                "\"arp_in\":{},\"arp_out\":{},\"tcp\":{{\"active_opens\":{},\"passive_opens\":{},",
                "\"attempt_fails\":{},\"estab_resets\":{},\"segments_in\":{},\"segments_out\":{},",
                "\"retransmitted_segments\":{},\"resets_in\":{},\"resets_out\":{},\"timeouts\":{},",
                "\"fast_retransmits\":{},\"challenge_acks\":{},\"delayed_acks\":{},\"zero_window_probes\":{},",
                "\"bytes_in\":{},\"bytes_direct\":{},\"bytes_out\":{},\"out_of_order_segments\":{},\"duplicate_segments\":{},",
                "\"connections_timed_out\":{},\"syn_cookies_sent\":{},\"syn_cookies_valid\":{},",
                "\"syn_cookies_invalid\":{},\"ooo_limit_drops\":{},\"challenge_acks_limited\":{},",
                "\"icmp_errors_ignored\":{},\"mtu_black_holes\":{},\"memory_limited\":{},\"ecn_connections\":{},",
                "\"ecn_ce_received\":{},\"ecn_reductions\":{},\"fast_open_syn_data\":{},",
                "\"fast_open_cookies_sent\":{},\"fast_open_queue_full\":{},\"fast_open_active\":{},",
                "\"fast_open_active_acked\":{}}},",
                "\"limits\":{{\"sockets\":{},\"half_open\":{},\"accept_queue\":{},\"ooo_memory\":{},",
                "\"frag_memory\":{},\"udp_buffer\":{},\"challenge_ack_rate\":{},\"tcp_memory\":{}}},\"drops\":{{{}}}}}"
            ),
            self.frames_in,
            self.frames_out,
            self.ip_in,
            self.ip_out,
            self.ip_reassembled,
            self.ip_fragments_out,
            self.icmp_in,
            self.icmp_out,
            self.udp_in,
            self.udp_out,
            self.arp_in,
            self.arp_out,
            t.active_opens,
            t.passive_opens,
            t.attempt_fails,
            t.estab_resets,
            t.segments_in,
            t.segments_out,
            t.retransmitted_segments,
            t.resets_in,
            t.resets_out,
            t.timeouts,
            t.fast_retransmits,
            t.challenge_acks,
            t.delayed_acks,
            t.zero_window_probes,
            t.bytes_in,
            t.bytes_direct,
            t.bytes_out,
            t.out_of_order_segments,
            t.duplicate_segments,
            t.connections_timed_out,
            t.syn_cookies_sent,
            t.syn_cookies_valid,
            t.syn_cookies_invalid,
            t.ooo_limit_drops,
            t.challenge_acks_limited,
            t.icmp_errors_ignored,
            t.mtu_black_holes,
            t.memory_limited,
            t.ecn_connections,
            t.ecn_ce_received,
            t.ecn_reductions,
            t.fast_open_syn_data,
            t.fast_open_cookies_sent,
            t.fast_open_queue_full,
            t.fast_open_active,
            t.fast_open_active_acked,
            self.limits.sockets,
            self.limits.half_open,
            self.drops(DropReason::TcpListenOverflow),
            t.ooo_limit_drops,
            self.limits.frag_memory,
            self.drops(DropReason::UdpBufferFull),
            t.challenge_acks_limited,
            t.memory_limited,
            drops
        )
    }
}
