#!/usr/bin/env python3
"""Attacks on `ustack up` from the kernel's side of its TUN device.

Run by crates/ustack-cli/tests/attacks_tun.rs inside the test's own network
namespace; every address is inside that namespace's subnet. The packets are
crafted with scapy and put on the TUN device through a packet socket (so
spoofed sources need no route and never leave the namespace); where the
attack needs a TCP peer of its own (MSS 1, zero window, out-of-order flood),
that peer uses a spoofed address of the subnet, reads ustack's answers from
the same device, and the kernel drops them (they are not for it and the
namespace does not forward), so it never answers with a RST.

    attack.py MODE --iface ust0 --dst 10.77.0.2 --host 10.77.0.1 \
        [--sport 40123] [--rate 10000] [--duration 3] [--max 100000]

Prints "started" when the attack begins and, at the end, one line
"result {json}" with what was sent and what the attack saw. Every loop is
bounded in count and time.
"""

import argparse
import ctypes
import json
import random
import select
import socket
import struct
import sys
import time

from scapy.all import ICMP, IP, TCP, UDP, Raw, conf  # noqa: E402

conf.verb = 0
ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800


def now():
    return time.monotonic()


class Wire:
    """Sends raw IPv4 packets onto the TUN device and reads what ustack
    writes to it (seen by the kernel as incoming packets)."""

    def __init__(self, iface):
        self.iface = iface
        self.tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        self.rx = None
        self.sent = 0
        self.refused = 0

    def send(self, pkt):
        try:
            self.tx.sendto(pkt, (self.iface, ETH_P_IP))
            self.sent += 1
            return True
        except OSError:
            # ENOBUFS: the device queue is full (ustack is behind); the
            # packet is lost, like on a busy link.
            self.refused += 1
            return False

    def listen(self, to_addr, outgoing=False):
        """Reads only what ustack sends to `to_addr` (a classic BPF filter
        on the IPv4 destination, so the victim's traffic on the same device
        is not copied to us)."""
        self.rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        dst = int.from_bytes(socket.inet_aton(to_addr), "big")
        # A TUN device has no link header: the IPv4 destination is at 16.
        prog = [
            (0x20, 0, 0, 16),  # ld [16]
            (0x15, 0, 1, dst),  # jeq #dst, accept, reject
            (0x06, 0, 0, 0xFFFF),  # ret #65535
            (0x06, 0, 0, 0),  # ret #0
        ]
        self._filter = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *ins) for ins in prog))
        fprog = struct.pack("HL", len(prog), ctypes.addressof(self._filter))
        SO_ATTACH_FILTER = 26
        self.rx.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        self.rx.bind((self.iface, ETH_P_ALL))
        self.outgoing = outgoing
        self.drain()

    def drain(self):
        """Throws away what was read so far (bounded)."""
        self.rx.setblocking(False)
        try:
            for _ in range(1_000_000):
                self.rx.recv(70000)
        except BlockingIOError:
            pass
        self.rx.setblocking(True)

    def recv(self, timeout):
        """One IPv4 packet ustack sent (as a scapy IP), or None at timeout."""
        end = now() + timeout
        while True:
            left = end - now()
            if left <= 0:
                return None
            r, _, _ = select.select([self.rx], [], [], left)
            if not r:
                return None
            data, addr = self.rx.recvfrom(70000)
            # addr[2] is the packet type: 4 = PACKET_OUTGOING (the kernel's).
            if (addr[2] == 4) != self.outgoing or not data or data[0] >> 4 != 4:
                continue
            return IP(data)


def paced(wire, packets, rate, duration, max_count):
    """Sends `packets` (cycled) at `rate` per second for `duration` seconds,
    at most `max_count` of them."""
    start = now()
    n = 0
    batch = max(1, rate // 200)
    while n < max_count and now() - start < duration:
        for _ in range(batch):
            wire.send(packets[n % len(packets)])
            n += 1
        due = start + n / rate
        delay = due - now()
        if delay > 0:
            time.sleep(delay)
    return n


def spoofed(args, k):
    """The k-th spoofed source: a host of the namespace's /24 other than
    the kernel (.1) and ustack (.2)."""
    base = args.dst.rsplit(".", 1)[0]
    return f"{base}.{10 + k % 240}"


# ---- blind attacks at the victim's 4-tuple ---------------------------------


def victim_segment(args, flags, seq, ack=0, payload=b"", tsval=None):
    # With a timestamps option: ustack drops a segment without one once the
    # connection uses them (RFC 7323 §3.2), which would stop the attack
    # before the checks of RFC 5961; a blind attacker guesses TSval.
    tsval = random.getrandbits(32) if tsval is None else tsval
    p = IP(src=args.host, dst=args.dst) / TCP(
        sport=args.sport, dport=args.dport, flags=flags, seq=seq, ack=ack, window=65535, options=[("NOP", None), ("NOP", None), ("Timestamp", (tsval, 0))]
    )
    if payload:
        p = p / Raw(payload)
    return bytes(p)


def count(args):
    """Packets an attack sends: its rate for its duration, at most --max.
    Each is built distinct (its own guess), by patching a template that
    scapy built: building every one with scapy takes seconds of a CPU the
    victim keeps busy."""
    return max(1, min(args.max, int(args.rate * args.duration)))


def fix_ip_checksum(b, ihl):
    b[10:12] = b"\0\0"
    b[10:12] = checksum(bytes(b[:ihl])).to_bytes(2, "big")


def fix_tcp_checksum(b, ihl):
    b[ihl + 16 : ihl + 18] = b"\0\0"
    seg = bytes(b[ihl:])
    pseudo = bytes(b[12:20]) + bytes([0, 6]) + len(seg).to_bytes(2, "big")
    b[ihl + 16 : ihl + 18] = checksum(pseudo + seg).to_bytes(2, "big")


def tcp_variant(template, src=None, sport=None, seq=None, ack=None, tsval=None):
    """`template` (IPv4 + TCP, built by scapy) with a new source address,
    source port, SEQ, ACK or TSval (timestamps right after two NOPs, as
    victim_segment() puts them), and its checksums redone."""
    b = bytearray(template)
    ihl = (b[0] & 0x0F) * 4
    if src is not None:
        b[12:16] = socket.inet_aton(src)
        fix_ip_checksum(b, ihl)
    for off, v in ((0, sport), (4, seq), (8, ack), (24, tsval)):
        if v is not None:
            n = 2 if off == 0 else 4
            b[ihl + off : ihl + off + n] = v.to_bytes(n, "big")
    fix_tcp_checksum(b, ihl)
    return bytes(b)


def ip_variant(template, src, ident):
    """`template` with a new source address and identification."""
    b = bytearray(template)
    b[4:6] = ident.to_bytes(2, "big")
    b[12:16] = socket.inet_aton(src)
    fix_ip_checksum(b, (b[0] & 0x0F) * 4)
    return bytes(b)


def attack_syn_flood(args, wire, out):
    template = bytes(
        IP(src=spoofed(args, 0), dst=args.dst)
        / TCP(sport=1024, dport=args.dport, flags="S", seq=0, window=65535, options=[("MSS", 1460)])
    )
    pkts = [
        tcp_variant(template, src=spoofed(args, i), sport=1024 + (i * 7919) % 60000, seq=random.getrandbits(32))
        for i in range(min(count(args), args.pool))
    ]
    print("started", flush=True)
    out["sent"] = paced(wire, pkts, args.rate, args.duration, args.max)
    out["distinct_syns"] = len(pkts)


def blind(args, wire, out, flags, payload=b""):
    # Random SEQ (and ACK), and a guessed TSval, for each packet.
    template = victim_segment(args, flags, 0, 0, payload, tsval=0)
    r = random.getrandbits
    pkts = [
        tcp_variant(template, seq=r(32), ack=r(32) if payload else None, tsval=r(32)) for _ in range(count(args))
    ]
    print("started", flush=True)
    out["sent"] = paced(wire, pkts, args.rate, args.duration, args.max)


def attack_rst(args, wire, out):
    blind(args, wire, out, "R")


def attack_syn(args, wire, out):
    blind(args, wire, out, "S")


def attack_data(args, wire, out):
    blind(args, wire, out, "PA", b"\xee" * 100)


def attack_ack_storm(args, wire, out):
    # ACKs at ustack (the sender of the victim's data) with wrong
    # acknowledgment numbers, as if from the victim's receiver. This
    # attacker is on the path: it copies the sequence number, ACK and
    # timestamp of one of the victim's own segments and sends ACKs 2^30 to
    # 2^31 away from the real one (ahead of anything sent, or far behind
    # SND.UNA: RFC 5961 §5.2), with a TSval from the future (which must not
    # poison PAWS). The margin outlasts the attack at any rate this test
    # reaches: an ACK inside the flight would acknowledge data the receiver
    # never got, which an on-path attacker can always do and no TCP can
    # tell.
    template = victim_segment(args, "A", 0, 0, tsval=0)
    wire.listen(args.dst, outgoing=True)
    seen = None
    end = now() + 5
    while now() < end and seen is None:
        ip = wire.recv(end - now())
        if ip is not None and ip.haslayer(TCP) and ip.src == args.host and ip[TCP].sport == args.sport:
            t = ip[TCP]
            ts = dict((k, v) for k, v in t.options if isinstance(k, str)).get("Timestamp", (0, 0))[0]
            seen = (t.seq, t.ack, ts)
    if seen is None:
        print("started", flush=True)
        out["error"] = "no segment of the victim seen"
        return
    seq, ack, tsval = seen
    m = 1 << 32
    future = (tsval + 100_000) % m
    pkts = [
        tcp_variant(
            template,
            seq=seq,
            ack=(ack + (1 << 30) + random.getrandbits(30)) % m if i % 2 == 0 else (ack - (1 << 30) - random.getrandbits(30)) % m,
            tsval=future,
        )
        for i in range(count(args))
    ]
    print("started", flush=True)
    out["sent"] = paced(wire, pkts, args.rate, args.duration, args.max)


def attack_icmp(args, wire, out):
    # Errors about ustack's segments of the victim connection (ustack:80 ->
    # kernel:sport) quoting a random sequence number: half "fragmentation
    # needed" with an MTU of 68, half "port unreachable".
    quoted = bytes(IP(src=args.dst, dst=args.host) / TCP(sport=args.dport, dport=args.sport, flags="A", seq=0))[:28]
    templates = [
        bytes(IP(src=args.host, dst=args.dst) / ICMP(type=3, code=4, nexthopmtu=68) / Raw(quoted)),
        bytes(IP(src=args.host, dst=args.dst) / ICMP(type=3, code=3) / Raw(quoted)),
    ]

    def make(i):
        b = bytearray(templates[i % 2])
        ihl = (b[0] & 0x0F) * 4
        # The quoted TCP header's SEQ: after the ICMP header (8) and the
        # quoted IP header (20).
        b[ihl + 8 + 20 + 4 : ihl + 8 + 20 + 8] = random.getrandbits(32).to_bytes(4, "big")
        b[ihl + 2 : ihl + 4] = b"\0\0"
        b[ihl + 2 : ihl + 4] = checksum(bytes(b[ihl:])).to_bytes(2, "big")
        return bytes(b)

    pkts = [make(i) for i in range(count(args))]
    print("started", flush=True)
    out["sent"] = paced(wire, pkts, args.rate, args.duration, args.max)


# ---- fragments ---------------------------------------------------------------


def attack_frag_flood(args, wire, out):
    # First fragments of UDP datagrams (to the echo port) that never
    # complete, each with its own identification.
    body = bytes(UDP(sport=5000, dport=7, len=8 + 4000)) + b"\x55" * 1472
    template = bytes(IP(src=spoofed(args, 0), dst=args.dst, id=1, flags="MF", frag=0, proto=17) / Raw(body))
    pkts = [ip_variant(template, spoofed(args, i), i % 65535 + 1) for i in range(count(args))]
    print("started", flush=True)
    out["sent"] = paced(wire, pkts, args.rate, args.duration, args.max)


def attack_frag_overlap(args, wire, out):
    # Pairs of fragments that overlap: a teardrop (the second starts inside
    # the first and ends before it) and a rewrite (the second overwrites the
    # first's UDP header region and completes the datagram).
    head = bytes(UDP(sport=5000, dport=7, len=8 + 200)) + b"\x11" * 192
    src0 = spoofed(args, 0)
    first = bytes(IP(src=src0, dst=args.dst, id=1, flags="MF", frag=0, proto=17) / Raw(head))
    # Offset 24 bytes, inside the first: teardrop.
    teardrop = bytes(IP(src=src0, dst=args.dst, id=1, flags=0, frag=3, proto=17) / Raw(b"\x22" * 24))
    # Offset 0 again: rewrites the header.
    rewrite = bytes(IP(src=src0, dst=args.dst, id=1, flags=0, frag=0, proto=17) / Raw(b"\x33" * 208))
    pkts = []
    for i in range(count(args) // 2):
        src, ident = spoofed(args, i), i % 65535 + 1
        pkts.append(ip_variant(first, src, ident))
        pkts.append(ip_variant(teardrop if i % 2 == 0 else rewrite, src, ident))
    print("started", flush=True)
    out["sent"] = paced(wire, pkts, args.rate, args.duration, args.max)
    # Then a legitimate datagram in fragments (the kernel fragments a 3,000
    # byte UDP datagram at the 1,500-byte MTU): it must still be echoed.
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(2)
    msg = bytes(range(256)) * 12
    echoed = 0
    for _ in range(5):
        u.sendto(msg, (args.dst, 7))
        try:
            data, _ = u.recvfrom(10000)
            if data == msg:
                echoed += 1
                break
        except socket.timeout:
            pass
    out["fragmented_echo_ok"] = echoed


# ---- peers of their own ----------------------------------------------------


class Peer:
    """A minimal TCP peer from a spoofed address of the subnet."""

    def __init__(self, args, wire, k, dport, mss=None, window=65535, wscale=None):
        self.args, self.wire = args, wire
        self.src = spoofed(args, 200 + k)
        self.sport = 30000 + 100 * k + random.randrange(100)
        self.dport = dport
        self.window = window
        self.iss = random.getrandbits(32)
        self.mss = mss
        self.wscale = wscale
        self.snd_nxt = self.iss
        self.rcv_nxt = None
        self.segments = []  # (time, payload length, seq) of ustack's segments

    def seg(self, flags, seq=None, payload=b"", window=None):
        p = IP(src=self.src, dst=self.args.dst) / TCP(
            sport=self.sport,
            dport=self.dport,
            flags=flags,
            seq=self.snd_nxt if seq is None else seq,
            ack=self.rcv_nxt or 0,
            window=self.window if window is None else window,
        )
        if payload:
            p = p / Raw(payload)
        return bytes(p)

    def mine(self, ip):
        return ip is not None and ip.haslayer(TCP) and ip.src == self.args.dst and ip.dst == self.src and ip[TCP].dport == self.sport

    def next_segment(self, timeout):
        end = now() + timeout
        while now() < end:
            ip = self.wire.recv(end - now())
            if self.mine(ip):
                return ip[TCP]
        return None

    def connect(self):
        opts = []
        if self.mss is not None:
            opts.append(("MSS", self.mss))
        if self.wscale is not None:
            opts.append(("WScale", self.wscale))
        syn = bytes(
            IP(src=self.src, dst=self.args.dst)
            / TCP(sport=self.sport, dport=self.dport, flags="S", seq=self.iss, window=self.window, options=opts)
        )
        for _ in range(5):
            self.wire.send(syn)
            t = self.next_segment(1.0)
            if t is not None and t.flags.S and t.flags.A and t.ack == (self.iss + 1) % (1 << 32):
                self.snd_nxt = (self.iss + 1) % (1 << 32)
                self.rcv_nxt = (t.seq + 1) % (1 << 32)
                self.peer_window = t.window
                self.wire.send(self.seg("A"))
                return True
        return False

    def send_data(self, payload):
        self.wire.send(self.seg("PA", payload=payload))
        self.snd_nxt = (self.snd_nxt + len(payload)) % (1 << 32)


def http_get(n):
    return f"GET /bytes/{n} HTTP/1.1\r\nHost: ustack\r\nConnection: close\r\n\r\n".encode()


def check_pattern(body):
    return all(b == i % 251 for i, b in enumerate(body))


def attack_mss1(args, wire, out):
    # A client that announces an MSS of 1 and downloads /bytes/N, acking
    # every segment: ustack must raise the MSS to its floor, not send
    # 1-byte segments.
    p = Peer(args, wire, 1, 80, mss=1)
    wire.listen(p.src)
    print("started", flush=True)
    if not p.connect():
        out["error"] = "no SYN-ACK"
        return
    p.send_data(http_get(args.bytes))
    data = bytearray()
    start = now()
    fin = False
    while now() - start < args.duration and len(data) < 10 * args.bytes:
        t = p.next_segment(1.0)
        if t is None:
            continue
        payload = bytes(t.payload) if t.payload else b""
        if payload:
            p.segments.append((now() - start, len(payload), t.seq))
        if t.seq == p.rcv_nxt and payload:
            data += payload
            p.rcv_nxt = (p.rcv_nxt + len(payload)) % (1 << 32)
        if t.flags.F and (t.seq + len(payload)) % (1 << 32) == p.rcv_nxt:
            p.rcv_nxt = (p.rcv_nxt + 1) % (1 << 32)
            fin = True
        wire.send(p.seg("A"))
        if fin:
            wire.send(p.seg("FA"))
            break
    elapsed = now() - start
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    out["sent"] = wire.sent
    out["body_bytes"] = len(body)
    out["body_ok"] = len(body) == args.bytes and check_pattern(body)
    out["fin"] = fin
    sizes = [s for _, s, _ in p.segments]
    out["segments"] = len(sizes)
    out["max_segment"] = max(sizes) if sizes else 0
    out["min_full_segment"] = min(sizes[:-1]) if len(sizes) > 1 else 0
    out["goodput_mbps"] = round(len(body) * 8 / elapsed / 1e6, 3) if elapsed > 0 else 0


def attack_bad_options(args, wire, out):
    # SYNs whose options or header lengths lie, each from its own source.
    variants = []
    base = TCP(sport=0, dport=args.dport, flags="S", seq=1, window=65535)

    def raw_syn(i, opts, doff=None, cut=None):
        t = TCP(sport=20000 + i, dport=args.dport, flags="S", seq=random.getrandbits(32), window=65535)
        t.options = []
        t = bytes(t)
        b = bytearray(t[:20] + opts)
        words = (len(b) + 3) // 4
        b += b"\0" * (words * 4 - len(b))
        b[12] = ((doff if doff is not None else words) << 4) | (b[12] & 0x0F)
        pkt = IP(src=spoofed(args, i), dst=args.dst, proto=6) / Raw(bytes(b))
        # Let scapy compute the IP header, then fix the TCP checksum by hand
        # over whatever we claim.
        raw = bytearray(bytes(pkt))
        ihl = (raw[0] & 0x0F) * 4
        seg = raw[ihl:]
        if cut is not None:
            seg = seg[:cut]
            raw = raw[: ihl + cut]
            raw[2:4] = len(raw).to_bytes(2, "big")
            raw[10:12] = b"\0\0"
            raw[10:12] = checksum(bytes(raw[:ihl])).to_bytes(2, "big")
        seg[16:18] = b"\0\0"
        pseudo = socket.inet_aton(spoofed(args, i)) + socket.inet_aton(args.dst) + bytes([0, 6]) + len(seg).to_bytes(2, "big")
        raw[ihl + 16 : ihl + 18] = checksum(pseudo + bytes(seg)).to_bytes(2, "big")
        return bytes(raw)

    del base
    cases = [
        bytes([2, 40, 0, 1]),  # MSS option claiming 40 bytes
        bytes([2, 0, 5, 0xB4]),  # length 0 (would loop for ever)
        bytes([2, 1, 5, 0xB4]),  # length 1
        bytes([3, 3, 14, 1, 1, 1, 2, 4]),  # window scale, then an MSS cut by the header end
        bytes([8, 10, 0, 0, 0, 1]),  # timestamps cut short by the header
        bytes([5, 34]) + b"\0" * 6,  # SACK blocks past the header
        bytes([4, 2, 1, 1, 1, 2, 4, 5]),  # SACK-permitted, then an MSS of length 4 with 1 byte left
        bytes([30, 200, 1, 2]),  # unknown option claiming 200 bytes
    ]
    for i, opts in enumerate(cases):
        variants.append(raw_syn(i, opts))
    # A data offset past the segment and one below the header's 5 words.
    variants.append(raw_syn(len(cases), b"", doff=15))
    variants.append(raw_syn(len(cases) + 1, b"", doff=3))
    # A SYN cut in the middle of its options (IP length says so).
    variants.append(raw_syn(len(cases) + 2, bytes([2, 4, 5, 0xB4, 1, 1, 4, 2]), cut=22))
    pkts = variants * max(1, args.pool // len(variants))
    print("started", flush=True)
    out["sent"] = paced(wire, pkts, args.rate, args.duration, args.max)
    out["variants"] = len(variants)


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def attack_zero_window(args, wire, out):
    # A client that asks for data and advertises a zero window for ever,
    # answering every window probe: ustack must probe with backoff and hold
    # nothing more than its send buffer.
    p = Peer(args, wire, 2, 80, window=65535)
    wire.listen(p.src)
    print("started", flush=True)
    if not p.connect():
        out["error"] = "no SYN-ACK"
        return
    p.window = 0
    p.send_data(http_get(args.bytes))
    start = now()
    probes = []
    data_past_window = 0
    while now() - start < args.duration:
        t = p.next_segment(0.5)
        if t is None:
            continue
        payload = bytes(t.payload) if t.payload else b""
        if payload:
            data_past_window += len(payload)
        elif t.seq == (p.rcv_nxt - 1) % (1 << 32):
            # A probe as Linux sends one: an old sequence number, no data.
            probes.append(round(now() - start, 3))
        # Acknowledge nothing new: the window stays zero.
        wire.send(p.seg("A", window=0))
    out["sent"] = wire.sent
    out["probes"] = len(probes)
    out["probe_times"] = probes[:20]
    out["data_past_window"] = data_past_window


def attack_ooo_flood(args, wire, out):
    # A peer of its own (to the discard port) that sends 1-byte segments at
    # every other byte of ustack's receive window, never the first: each
    # one is out of order and none can be delivered.
    p = Peer(args, wire, 3, 9)
    wire.listen(p.src)
    if not p.connect():
        print("started", flush=True)
        out["error"] = "no SYN-ACK"
        return
    window = p.peer_window  # no window scaling was offered: bytes
    offsets = list(range(2, max(4, window), 2))

    template = p.seg("A", seq=p.snd_nxt, payload=b"\xee")
    pkts = [tcp_variant(template, seq=(p.snd_nxt + o) % (1 << 32)) for o in offsets[: args.pool]]
    print("started", flush=True)
    out["sent"] = paced(wire, pkts, args.rate, args.duration, args.max)
    out["window"] = window
    out["distinct_offsets"] = len(pkts)
    # Then fill every hole at once: what ustack held must join the stream,
    # and the whole run must be acknowledged.
    end_rel = max(offsets[: args.pool]) + 1
    wire.drain()
    for k in range(0, end_rel, 1400):
        p.send_data(b"\xee" * min(1400, end_rel - k))
    out["filled_to"] = end_rel
    out["acked_after_fill"] = 0
    end = now() + 5
    while now() < end:
        t = p.next_segment(0.5)
        if t is not None and t.flags.A:
            out["acked_after_fill"] = max(out["acked_after_fill"], (t.ack - p.iss - 1) % (1 << 32))
            if out["acked_after_fill"] >= end_rel:
                break
    wire.send(p.seg("R"))


def attack_never_read(args, wire, out):
    # Kernel sockets that ask for a gigabyte each and never read.
    socks = []
    print("started", flush=True)
    for i in range(args.conns):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(5)
        s.connect((args.dst, 80))
        s.sendall(http_get(1 << 30))
        socks.append(s)
    time.sleep(args.duration)
    out["sent"] = 0
    out["connections"] = len(socks)
    for s in socks:
        s.close()


ATTACKS = {
    "syn_flood": attack_syn_flood,
    "rst": attack_rst,
    "syn": attack_syn,
    "data": attack_data,
    "ack_storm": attack_ack_storm,
    "icmp": attack_icmp,
    "frag_flood": attack_frag_flood,
    "frag_overlap": attack_frag_overlap,
    "mss1": attack_mss1,
    "bad_options": attack_bad_options,
    "zero_window": attack_zero_window,
    "ooo_flood": attack_ooo_flood,
    "never_read": attack_never_read,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=sorted(ATTACKS))
    ap.add_argument("--iface", required=True)
    ap.add_argument("--dst", required=True, help="ustack's address")
    ap.add_argument("--host", required=True, help="the kernel's address on the TUN")
    ap.add_argument("--sport", type=int, default=40123, help="the victim client's port")
    ap.add_argument("--dport", type=int, default=80)
    ap.add_argument("--rate", type=int, default=10000, help="packets per second")
    ap.add_argument("--duration", type=float, default=3.0, help="seconds")
    ap.add_argument("--max", type=int, default=200000, help="at most this many packets")
    ap.add_argument("--pool", type=int, default=4000, help="distinct packets built")
    ap.add_argument("--bytes", type=int, default=200000, help="bytes a peer downloads")
    ap.add_argument("--conns", type=int, default=8, help="never-reading connections")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    for name in ("dst", "host"):
        a = getattr(args, name)
        if not a.startswith("10.") or args.dst.rsplit(".", 1)[0] != args.host.rsplit(".", 1)[0]:
            sys.exit(f"error: --{name} {a}: ustack and the kernel must share one 10.x.y.0/24 inside the namespace")
    random.seed(args.seed)
    wire = Wire(args.iface)
    out = {"mode": args.mode}
    ATTACKS[args.mode](args, wire, out)
    out["refused"] = wire.refused
    print("result " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
