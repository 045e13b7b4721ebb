//! Packets on the runner's wire: building the ones a script injects, reading the ones ustack
//! sends, and writing them back in packetdrill syntax.

use std::net::Ipv4Addr;

use ustack_core::wire::{IpProtocol, Ipv4Packet, Ipv4Repr, TcpPacket, UdpPacket, UdpRepr, checksum};

use crate::ast::{SeqSpec, TcpFlags, TcpOption, TcpSpec};

/// IPv4 header fields of a packet to build.
#[derive(Clone, Copy, Debug)]
pub struct IpHeader {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub dscp_ecn: u8,
    pub ttl: u8,
    pub ident: u16,
}

/// The TCP header of a segment to inject, with absolute numbers.
#[derive(Clone, Debug)]
pub struct TcpOut {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    /// Written into the header even without the ACK flag (`< S 0:0(0) ack 1`).
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub urgent: u16,
    /// Encoded options, already padded to a multiple of four.
    pub options: Vec<u8>,
    pub payload_len: usize,
}

/// Encodes options in the order written. An MD5 signature (RFC 2385) is written with a
/// zero digest, for [`build_tcp_md5`] to fill in. Returns an error for an options area
/// over 40 bytes.
pub fn encode_options(options: &[TcpOption]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for o in options {
        match o {
            TcpOption::Eol => out.push(0),
            TcpOption::Nop => out.push(1),
            TcpOption::Mss(m) => out.extend_from_slice(&[2, 4, (m >> 8) as u8, *m as u8]),
            TcpOption::WindowScale(s) => out.extend_from_slice(&[3, 3, *s]),
            TcpOption::SackPermitted => out.extend_from_slice(&[4, 2]),
            TcpOption::Sack(blocks) => {
                out.extend_from_slice(&[5, (2 + 8 * blocks.len()) as u8]);
                for (l, r) in blocks {
                    out.extend_from_slice(&l.to_be_bytes());
                    out.extend_from_slice(&r.to_be_bytes());
                }
            }
            TcpOption::Timestamp { val, ecr } => {
                out.extend_from_slice(&[8, 10]);
                out.extend_from_slice(&val.to_be_bytes());
                out.extend_from_slice(&ecr.to_be_bytes());
            }
            TcpOption::Md5 { .. } => {
                out.extend_from_slice(&[19, 18]);
                out.extend_from_slice(&[0; 16]);
            }
        }
    }
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
    if out.len() > 40 {
        return Err(format!("{} bytes of TCP options (at most 40 fit)", out.len()));
    }
    Ok(out)
}

fn ip_packet(ip: IpHeader, protocol: IpProtocol, payload: &[u8]) -> Vec<u8> {
    let repr = Ipv4Repr {
        src_addr: ip.src,
        dst_addr: ip.dst,
        protocol,
        payload_len: payload.len(),
        hop_limit: ip.ttl,
        ident: ip.ident,
        dont_frag: protocol == IpProtocol::Tcp,
        more_frags: false,
        frag_offset: 0,
        dscp_ecn: ip.dscp_ecn,
    };
    let mut buf = vec![0u8; 20 + payload.len()];
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]), true);
    buf[20..].copy_from_slice(payload);
    buf
}

/// The TCP header and zero payload of `seg`, without checksum.
fn tcp_bytes(seg: &TcpOut) -> Vec<u8> {
    let hl = 20 + seg.options.len();
    let mut b = vec![0u8; hl + seg.payload_len];
    b[0..2].copy_from_slice(&seg.src_port.to_be_bytes());
    b[2..4].copy_from_slice(&seg.dst_port.to_be_bytes());
    b[4..8].copy_from_slice(&seg.seq.to_be_bytes());
    b[8..12].copy_from_slice(&seg.ack.to_be_bytes());
    b[12] = ((hl / 4) as u8) << 4;
    b[13] = seg.flags;
    b[14..16].copy_from_slice(&seg.window.to_be_bytes());
    b[18..20].copy_from_slice(&seg.urgent.to_be_bytes());
    b[20..hl].copy_from_slice(&seg.options);
    b
}

/// A whole IPv4 packet carrying `seg`, checksums filled in.
pub fn build_tcp(ip: IpHeader, seg: &TcpOut) -> Vec<u8> {
    let mut tcp = tcp_bytes(seg);
    TcpPacket::new_unchecked(&mut tcp[..]).fill_checksum(ip.src, ip.dst);
    ip_packet(ip, IpProtocol::Tcp, &tcp)
}

/// [`build_tcp`], with the MD5 signature option the options hold (RFC 2385 §2.0) signed
/// with `key`, or, when `valid` is false, given a digest that is wrong for it.
pub fn build_tcp_md5(ip: IpHeader, seg: &TcpOut, key: &[u8], valid: bool) -> Vec<u8> {
    let mut tcp = tcp_bytes(seg);
    if ustack_core::wire::tcp::sign_md5(ip.src, ip.dst, &mut tcp, key)
        && !valid
        && let Some(at) = ustack_core::wire::tcp::md5_digest_at(&tcp)
    {
        tcp[at] ^= 0x80;
    }
    TcpPacket::new_unchecked(&mut tcp[..]).fill_checksum(ip.src, ip.dst);
    ip_packet(ip, IpProtocol::Tcp, &tcp)
}

/// The IPv4 packet `packet` (as [`build_tcp`] makes it) with its TCP segment carried in a
/// UDP datagram from `src_port` to `dst_port` instead (`--udp_encapsulation=tcp`), both
/// checksums filled in.
pub fn in_udp(packet: &[u8], (src_port, dst_port): (u16, u16)) -> Vec<u8> {
    let ip = Ipv4Packet::new_unchecked(packet);
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let header = IpHeader { src, dst, dscp_ecn: ip.dscp_ecn(), ttl: ip.hop_limit(), ident: ip.ident() };
    let tcp = ip.payload();
    let mut udp = vec![0u8; 8 + tcp.len()];
    udp[8..].copy_from_slice(tcp);
    UdpRepr { src_port, dst_port }.emit(&mut UdpPacket::new_unchecked(&mut udp[..]), tcp.len(), Some((src, dst)));
    ip_packet(header, IpProtocol::Udp, &udp)
}

/// A whole ICMP error packet quoting the segment `quoted` that went from `quoted_ip.src` to
/// `quoted_ip.dst`: its IP header and the first 20 bytes of its TCP header.
pub fn build_icmp(ip: IpHeader, icmp_type: u8, code: u8, rest: u32, quoted_ip: IpHeader, quoted: &TcpOut) -> Vec<u8> {
    let tcp = tcp_bytes(quoted);
    let mut original = ip_packet(quoted_ip, IpProtocol::Tcp, &tcp);
    original.truncate(20 + 20);
    let mut icmp = vec![0u8; 8];
    icmp[0] = icmp_type;
    icmp[1] = code;
    icmp[4..8].copy_from_slice(&rest.to_be_bytes());
    icmp.extend_from_slice(&original);
    let c = checksum::checksum(0, &icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    ip_packet(ip, IpProtocol::Icmp, &icmp)
}

/// ICMP type and code of a packetdrill name pair (`unreachable port_unreachable`).
pub fn icmp_type_code(type_name: &str, code_name: Option<&str>) -> Option<(u8, u8)> {
    let code_n = |c: &str| c.strip_prefix("code_").and_then(|n| n.parse::<u8>().ok());
    let t = match type_name {
        "echo_reply" => 0,
        "unreachable" | "destination_unreachable" => 3,
        "source_quench" => 4,
        "redirect" => 5,
        "echo_request" => 8,
        "time_exceeded" => 11,
        "parameter_problem" => 12,
        _ => return None,
    };
    let Some(c) = code_name else { return Some((t, 0)) };
    if let Some(n) = code_n(c) {
        return Some((t, n));
    }
    let code = match (t, c) {
        (3, "net_unreachable") => 0,
        (3, "host_unreachable") => 1,
        (3, "protocol_unreachable") => 2,
        (3, "port_unreachable") => 3,
        (3, "frag_needed") => 4,
        (3, "source_route_failed") => 5,
        (3, "net_unknown") => 6,
        (3, "host_unknown") => 7,
        (3, "source_host_isolated") => 8,
        (3, "net_prohibited") => 9,
        (3, "host_prohibited") => 10,
        (3, "net_unreachable_for_tos") => 11,
        (3, "host_unreachable_for_tos") => 12,
        (3, "packet_filtered") => 13,
        (3, "precedence_violation") => 14,
        (3, "precedence_cutoff") => 15,
        (5, "net") => 0,
        (5, "host") => 1,
        (11, "ttl_exceeded_in_transit" | "ttl_exceeded") => 0,
        (11, "frag_reass_exceeded") => 1,
        _ => return None,
    };
    Some((t, code))
}

/// A packet ustack sent, as read back.
#[derive(Clone, Debug)]
pub struct Sent {
    pub dscp_ecn: u8,
    pub ttl: u8,
    /// The UDP ports of a TCP segment carried over UDP.
    pub udp_ports: Option<(u16, u16)>,
    pub body: SentBody,
}

/// The transport part of a packet ustack sent.
#[derive(Clone, Debug)]
pub enum SentBody {
    Tcp(SentTcp),
    Icmp { icmp_type: u8, code: u8 },
    Udp { len: usize },
    Other(String),
}

/// A TCP segment ustack sent, with absolute numbers.
#[derive(Clone, Debug)]
pub struct SentTcp {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub urgent: u16,
    /// The options in wire order (NOP and EOL included).
    pub options: Vec<TcpOption>,
    /// Kinds of options the runner does not know.
    pub unknown_options: Vec<u8>,
    pub payload_len: usize,
}

/// Reads a packet ustack sent (an IPv4 packet, as on a TUN device). A UDP datagram from or
/// to port `tunnel` is read as the TCP segment it carries (`--udp_encapsulation=tcp`).
pub fn parse_sent(bytes: &[u8], tunnel: Option<u16>) -> Result<Sent, String> {
    parse_sent_md5(bytes, None, tunnel)
}

/// [`parse_sent`], reading an MD5 signature option (RFC 2385) as `md5 valid` when its
/// digest is right for `md5_key`, `md5 invalid` otherwise (and as an unknown option kind
/// without a key).
pub fn parse_sent_md5(bytes: &[u8], md5_key: Option<&[u8]>, tunnel: Option<u16>) -> Result<Sent, String> {
    let ip = Ipv4Packet::new_checked(bytes).map_err(|e| format!("bad IPv4 packet: {e}"))?;
    let repr = Ipv4Repr::parse(&ip, true).map_err(|e| format!("bad IPv4 header: {e}"))?;
    let mut payload = ip.payload();
    let mut protocol = repr.protocol;
    let mut udp_ports = None;
    if protocol == IpProtocol::Udp
        && let Ok(u) = UdpPacket::new_checked(payload)
        && tunnel.is_some_and(|t| u.src_port() == t || u.dst_port() == t)
    {
        if u.checksum() == 0 || !u.verify_checksum(repr.src_addr, repr.dst_addr) {
            return Err("bad or missing UDP checksum on a TCP segment carried over UDP".into());
        }
        udp_ports = Some((u.src_port(), u.dst_port()));
        payload = &payload[8..u.length() as usize];
        protocol = IpProtocol::Tcp;
    }
    let body = match protocol {
        IpProtocol::Tcp => {
            let p = TcpPacket::new_checked(payload).map_err(|e| format!("bad TCP segment: {e}"))?;
            if !p.verify_checksum(repr.src_addr, repr.dst_addr) {
                return Err("bad TCP checksum".into());
            }
            let (mut options, mut unknown_options) = decode_options(p.options())?;
            if let Some(key) = md5_key
                && let Some(i) = unknown_options.iter().position(|&k| k == 19)
            {
                unknown_options.remove(i);
                let valid = ustack_core::wire::tcp::verify_md5(repr.src_addr, repr.dst_addr, payload, key);
                // In wire order: where the option's NOPs end.
                let at = options.iter().take_while(|o| matches!(o, TcpOption::Nop)).count();
                let at = if p.options().get(at) == Some(&19) { at } else { options.len() };
                options.insert(at, TcpOption::Md5 { valid });
            }
            SentBody::Tcp(SentTcp {
                src_port: p.src_port(),
                dst_port: p.dst_port(),
                seq: p.seq_number(),
                ack: p.ack_number(),
                flags: p.flags().bits(),
                window: p.window_len(),
                urgent: p.urgent_at(),
                options,
                unknown_options,
                payload_len: p.payload().len(),
            })
        }
        IpProtocol::Icmp if payload.len() >= 8 => SentBody::Icmp { icmp_type: payload[0], code: payload[1] },
        IpProtocol::Udp if payload.len() >= 8 => SentBody::Udp { len: payload.len() - 8 },
        p => SentBody::Other(format!("IP protocol {p:?}")),
    };
    Ok(Sent { dscp_ecn: repr.dscp_ecn, ttl: repr.hop_limit, udp_ports, body })
}

/// Decodes an options area in wire order.
fn decode_options(mut data: &[u8]) -> Result<(Vec<TcpOption>, Vec<u8>), String> {
    let mut out = Vec::new();
    let mut unknown = Vec::new();
    while let Some(&kind) = data.first() {
        match kind {
            0 => {
                out.push(TcpOption::Eol);
                data = &data[1..];
                continue;
            }
            1 => {
                out.push(TcpOption::Nop);
                data = &data[1..];
                continue;
            }
            _ => {}
        }
        let len = *data.get(1).ok_or("truncated TCP option")? as usize;
        if len < 2 || len > data.len() {
            return Err(format!("bad length {len} of TCP option {kind}"));
        }
        let body = &data[2..len];
        let u32_at = |b: &[u8], i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        match (kind, len) {
            (2, 4) => out.push(TcpOption::Mss(u16::from_be_bytes([body[0], body[1]]))),
            (3, 3) => out.push(TcpOption::WindowScale(body[0])),
            (4, 2) => out.push(TcpOption::SackPermitted),
            (5, _) if body.len().is_multiple_of(8) => {
                out.push(TcpOption::Sack(body.chunks_exact(8).map(|c| (u32_at(c, 0), u32_at(c, 4))).collect()))
            }
            (8, 10) => out.push(TcpOption::Timestamp { val: u32_at(body, 0), ecr: u32_at(body, 4) }),
            _ => unknown.push(kind),
        }
        data = &data[len..];
    }
    Ok((out, unknown))
}

impl SentTcp {
    /// The segment in packetdrill syntax, sequence numbers made relative: ours to
    /// `local_isn`, the peer's (the ACK field, SACK blocks) as they are (the script's peer
    /// starts at its own ISN, which the runner sends unchanged).
    pub fn to_spec(&self, local_isn: u32) -> TcpSpec {
        let start = self.seq.wrapping_sub(local_isn);
        let flags = TcpFlags(self.flags);
        TcpSpec {
            flags,
            seq: SeqSpec::Range { start, end: start.wrapping_add(self.payload_len as u32) },
            len: self.payload_len as u32,
            seq_absolute: false,
            ack: flags.ack().then_some(self.ack),
            win: Some(self.window as u32),
            urg: flags.urg().then_some(self.urgent as u32),
            options: (!self.options.is_empty()).then(|| crate::ast::TcpOptions::List(self.options.clone())),
        }
    }
}

/// The timestamps option of a list, if any.
pub fn timestamps(options: &[TcpOption]) -> Option<(u32, u32)> {
    options.iter().find_map(|o| match o {
        TcpOption::Timestamp { val, ecr } => Some((*val, *ecr)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The script's addresses, as packetdrill assigns them.
    fn test_ip() -> IpHeader {
        IpHeader {
            src: Ipv4Addr::new(192, 0, 2, 1),
            dst: Ipv4Addr::new(192, 168, 0, 1),
            dscp_ecn: 0,
            ttl: 64,
            ident: 7,
        }
    }

    #[test]
    fn built_segment_reads_back() {
        let ip = test_ip();
        let opts = vec![
            TcpOption::Mss(1460),
            TcpOption::SackPermitted,
            TcpOption::Timestamp { val: 5, ecr: 0 },
            TcpOption::Nop,
            TcpOption::WindowScale(7),
        ];
        let seg = TcpOut {
            src_port: 4000,
            dst_port: 8080,
            seq: 10,
            ack: 1,
            flags: TcpFlags::SYN,
            window: 1000,
            urgent: 0,
            options: encode_options(&opts).unwrap(),
            payload_len: 3,
        };
        let bytes = build_tcp(ip, &seg);
        let sent = parse_sent(&bytes, None).unwrap();
        let SentBody::Tcp(t) = sent.body else { panic!() };
        assert_eq!((t.seq, t.ack, t.flags, t.window, t.payload_len), (10, 1, TcpFlags::SYN, 1000, 3));
        assert_eq!(&t.options[..5], &opts[..]);
        assert_eq!(t.to_spec(10).to_string(), "S 0:3(3) win 1000 <mss 1460,sackOK,TS val 5 ecr 0,nop,wscale 7>");
    }

    /// An ACK from 4000 to 8080 with 5 bytes of data and these encoded options.
    fn ack_segment(options: Vec<u8>) -> TcpOut {
        TcpOut {
            src_port: 4000,
            dst_port: 8080,
            seq: 10,
            ack: 1,
            flags: TcpFlags::ACK,
            window: 1000,
            urgent: 0,
            options,
            payload_len: 5,
        }
    }

    /// `--udp_encapsulation=tcp`: a segment put in a UDP datagram reads back as the same
    /// segment with its UDP ports when the tunnel port is known, and as UDP otherwise; a
    /// datagram whose checksum is wrong is refused.
    #[test]
    fn segment_in_udp_reads_back() {
        let seg = ack_segment(Vec::new());
        let mut bytes = in_udp(&build_tcp(test_ip(), &seg), (9811, 4000));
        let sent = parse_sent(&bytes, Some(9811)).unwrap();
        assert_eq!(sent.udp_ports, Some((9811, 4000)));
        let SentBody::Tcp(t) = sent.body else { panic!() };
        assert_eq!((t.src_port, t.dst_port, t.seq, t.payload_len), (4000, 8080, 10, 5));
        assert!(matches!(parse_sent(&bytes, None).unwrap().body, SentBody::Udp { len: 25 }));
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(parse_sent(&bytes, Some(9811)).is_err());
    }

    /// `md5 valid` / `md5 invalid` (RFC 2385): signed with the script's secret, or not
    /// validly; read back as valid only with that secret.
    #[test]
    fn md5_signed_segment_reads_back() {
        let ip = test_ip();
        let opts = vec![TcpOption::Nop, TcpOption::Nop, TcpOption::Md5 { valid: true }];
        let seg = ack_segment(encode_options(&opts).unwrap());
        let read = |bytes: &[u8], key: Option<&[u8]>| {
            let SentBody::Tcp(t) = parse_sent_md5(bytes, key, None).unwrap().body else { panic!() };
            t
        };
        let good = build_tcp_md5(ip, &seg, b"secret", true);
        assert_eq!(read(&good, Some(b"secret")).options, opts);
        let t = read(&good, Some(b"other"));
        assert_eq!(t.options[2], TcpOption::Md5 { valid: false });
        assert_eq!(read(&good, None).unknown_options, vec![19], "without a secret: an unknown option");
        let bad = build_tcp_md5(ip, &seg, b"secret", false);
        assert_eq!(read(&bad, Some(b"secret")).options[2], TcpOption::Md5 { valid: false });
    }

    #[test]
    fn icmp_names() {
        assert_eq!(icmp_type_code("unreachable", Some("port_unreachable")), Some((3, 3)));
        assert_eq!(icmp_type_code("parameter_problem", Some("code_2")), Some((12, 2)));
        assert_eq!(icmp_type_code("redirect", None), Some((5, 0)));
        assert_eq!(icmp_type_code("bogus", None), None);
    }
}
