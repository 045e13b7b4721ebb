//! SYN cookies (D. J. Bernstein, 1996; RFC 4987 §3.6): when a listener's
//! SYN queue is full, its SYN-ACK carries everything the handshake needs
//! in the initial sequence number, so nothing is stored until the peer's
//! ACK comes back and proves, by echoing the cookie, that it saw the
//! SYN-ACK (and so is not a spoofed source).
//!
//! # The cookie: our ISN
//!
//! ```text
//!  31      27 26  24 23                                            0
//! +----------+------+-----------------------------------------------+
//! | t mod 32 | MSS  |  SipHash-2-4(key; local, remote, client ISN,   |
//! | (5 bits) | index|  t, MSS index, option bits), low 24 bits       |
//! +----------+------+-----------------------------------------------+
//! ```
//!
//! - `t` counts 64-second ticks of the stack's clock. A cookie is accepted
//!   while `t` is the current tick or one of the [`MAX_AGE`] before it, so
//!   it lives between 128 and 192 seconds; the hash covers the full 32-bit
//!   `t`, so a cookie does not come back to life when `t mod 32` wraps.
//!   The top bits also make our cookie ISNs increase with time, as
//!   RFC 9293 §3.4.1 wants of an ISN.
//! - The MSS index names the largest entry of [`MSS_TABLE`] not above the
//!   MSS the peer offered (the peer is sent segments of that size).
//! - The hash is keyed with a secret derived from the stack's random
//!   source; it binds the cookie to the 4-tuple and the client's ISN, so
//!   a cookie is good for one SYN only. A blind attacker guessing the
//!   24 bits succeeds once in 2^24 tries.
//!
//! # The options: the low bits of our TSval
//!
//! The ISN has no room for more. When both sides use timestamps
//! (RFC 7323), the peer echoes our TSval in every segment, the
//! handshake-completing ACK included, so the low six bits of the SYN-ACK's
//! TSval carry the rest of what the SYN offered (Linux does the same):
//!
//! ```text
//!   5     4        3    0
//! +----+------+----------+
//! | TS | SACK |  WSCALE  |     WSCALE: the peer's shift 0-14, 15 = none
//! +----+------+----------+     TS: always 1 (these bits are in use)
//! ```
//!
//! The TSval is our timestamp clock with its low six bits replaced and, if
//! that made it later than the clock, 64 ms earlier: later TSvals of the
//! connection never go backwards, so the peer's PAWS (RFC 7323 §5) keeps
//! accepting them. The option bits are hashed into the cookie as well, so
//! a peer (or anyone who saw the SYN-ACK) cannot change them in the ACK.
//!
//! # What is lost (RFC 4987 §3.6)
//!
//! - Without timestamps a cookie connection has no window scaling and no
//!   SACK: the SYN-ACK does not offer them (the peer's shift could not be
//!   remembered), so its window stays below 64 KiB and loss recovery is
//!   NewReno's. With timestamps only the MSS precision is lost.
//! - The MSS is one of eight values, rounded down.
//! - The SYN-ACK is never retransmitted (there is no state to do it
//!   with); a lost SYN-ACK costs the client its SYN retransmission timeout.
//!   If the handshake-completing ACK is lost and the protocol has the
//!   server speak first, the connection stalls until the client sends.
//! - Data on the SYN (RFC 9293 allows it) is not kept; the peer sends it
//!   again after the handshake.

use super::connection::{Endpoints, MAX_WINDOW_SHIFT, receive_window_shift};
use super::isn::{SipHasher24, tuple_bytes};
use super::seq::SeqNumber;
use super::state::State;
use super::{Connection, Cx, TcpConfig};
use crate::time::Instant;
use crate::wire::{TcpFlags, TcpOptions, TcpRepr};
use std::net::SocketAddrV4;
use std::sync::Arc;

/// Length of one tick of the cookie clock, in milliseconds (64 s).
pub const TICK_MILLIS: u64 = 64_000;
/// Ticks a cookie stays valid after the one it was made in.
pub const MAX_AGE: u32 = 2;
/// The MSS values a cookie can name, smallest first: the IPv4 floor our
/// connections accept, the RFC 9293 default, and what common paths
/// (tunnels, PPPoE, Ethernet, jumbo frames) offer.
pub const MSS_TABLE: [u16; 8] = [64, 536, 1220, 1300, 1440, 1452, 1460, 8960];

const TS_BIT: u32 = 1 << 5;
const SACK_BIT: u32 = 1 << 4;
const WSCALE_MASK: u32 = 0xf;
const NO_WSCALE: u32 = 0xf;
const OPTION_BITS: u32 = 0x3f;
const HASH_MASK: u32 = 0x00ff_ffff;

/// What a SYN and our configuration agreed on, as far as a cookie can
/// remember it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CookieOptions {
    /// The peer's MSS, rounded down to an entry of [`MSS_TABLE`].
    pub mss: u16,
    /// The peer's window shift, when both sides scale (needs timestamps).
    pub window_scale: Option<u8>,
    /// Both sides allow SACK (needs timestamps).
    pub sack_permitted: bool,
    /// Both sides use timestamps.
    pub timestamps: bool,
}

impl CookieOptions {
    /// The options a cookie connection gets from the SYN's `offer` and the
    /// listener's settings: timestamps when both want them, and only with
    /// timestamps window scaling and SACK.
    pub fn negotiate(cfg: &TcpConfig, offer: &TcpOptions) -> Self {
        let timestamps = cfg.timestamps && offer.timestamps.is_some();
        let window_scale = if timestamps && cfg.window_scaling {
            // RFC 7323 §2.3: a shift above 14 is taken as 14.
            offer.window_scale.map(|s| s.min(MAX_WINDOW_SHIFT))
        } else {
            None
        };
        let sack_permitted = timestamps && cfg.sack && offer.sack_permitted;
        // RFC 9293 §3.7.1: no MSS option means 536.
        let peer_mss = offer.mss.unwrap_or(536);
        CookieOptions { mss: MSS_TABLE[mss_index(peer_mss) as usize], window_scale, sack_permitted, timestamps }
    }

    /// The six bits that ride in the TSval, or 0 without timestamps.
    fn bits(&self) -> u32 {
        if !self.timestamps {
            return 0;
        }
        let ws = self.window_scale.map_or(NO_WSCALE, |s| s as u32 & WSCALE_MASK);
        TS_BIT | if self.sack_permitted { SACK_BIT } else { 0 } | ws
    }

    fn from_bits(mss: u16, bits: u32) -> Self {
        if bits & TS_BIT == 0 {
            return CookieOptions { mss, window_scale: None, sack_permitted: false, timestamps: false };
        }
        let ws = bits & WSCALE_MASK;
        CookieOptions {
            mss,
            window_scale: (ws != NO_WSCALE).then_some(ws as u8),
            sack_permitted: bits & SACK_BIT != 0,
            timestamps: true,
        }
    }
}

/// Index of the largest table entry not above `mss` (the first entry for
/// anything smaller).
fn mss_index(mss: u16) -> u32 {
    MSS_TABLE.iter().rposition(|&m| m <= mss).unwrap_or(0) as u32
}

/// What goes into a SYN-ACK: its ISN, and its TSval when timestamps are
/// in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SynCookie {
    pub isn: u32,
    pub tsval: Option<u32>,
}

/// Makes and checks SYN cookies for a stack; see the module documentation.
#[derive(Clone)]
pub struct SynCookies {
    hasher: SipHasher24,
    /// The tick of the last cookie sent: an ACK can only carry a valid
    /// cookie within [`MAX_AGE`] ticks of it, so outside that window ACKs
    /// to listeners are not even hashed (as Linux checks only after a
    /// recent SYN queue overflow).
    last_sent: Option<u32>,
}

impl SynCookies {
    pub fn new(key: [u8; 16]) -> Self {
        SynCookies { hasher: SipHasher24::new(key), last_sent: None }
    }

    /// A key for cookies derived from the stack's ISN key (itself from the
    /// stack's random source) with SipHash as the pseudo-random function,
    /// so that the stack draws nothing more from its random source.
    pub fn derive_key(isn_key: [u8; 16]) -> [u8; 16] {
        let prf = SipHasher24::new(isn_key);
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&prf.hash(b"ustack tcp syn cookie key, half 1").to_le_bytes());
        key[8..].copy_from_slice(&prf.hash(b"ustack tcp syn cookie key, half 2").to_le_bytes());
        key
    }

    fn tick(now: Instant) -> u32 {
        (now.as_millis() / TICK_MILLIS) as u32
    }

    /// True when a cookie sent recently may still come back.
    pub fn recently_sent(&self, now: Instant) -> bool {
        self.last_sent.is_some_and(|t| Self::tick(now).wrapping_sub(t) <= MAX_AGE)
    }

    fn mac(
        &self,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        client_isn: u32,
        tick: u32,
        mss_index: u32,
        bits: u32,
    ) -> u32 {
        let mut b = [0u8; 22];
        b[..12].copy_from_slice(&tuple_bytes(local, remote));
        b[12..16].copy_from_slice(&client_isn.to_le_bytes());
        b[16..20].copy_from_slice(&tick.to_le_bytes());
        b[20] = mss_index as u8;
        b[21] = bits as u8;
        self.hasher.hash(&b) as u32 & HASH_MASK
    }

    /// The cookie for a SYN from `remote` to `local` with sequence number
    /// `client_isn`, remembering `opts`. `ts_clock` is the TSval the
    /// connection would send now (used only with timestamps).
    pub fn encode(
        &mut self,
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        client_isn: u32,
        opts: &CookieOptions,
        ts_clock: u32,
    ) -> SynCookie {
        let tick = Self::tick(now);
        self.last_sent = Some(tick);
        let index = mss_index(opts.mss);
        let bits = opts.bits();
        let mac = self.mac(local, remote, client_isn, tick, index, bits);
        let isn = (tick & 0x1f) << 27 | index << 24 | mac;
        let tsval = opts.timestamps.then(|| {
            let v = (ts_clock & !OPTION_BITS) | bits;
            // Never later than the clock, so the connection's later TSvals
            // do not go backwards (RFC 7323 §5.4).
            if (v.wrapping_sub(ts_clock) as i32) > 0 { v.wrapping_sub(OPTION_BITS + 1) } else { v }
        });
        SynCookie { isn, tsval }
    }

    /// Checks the ACK that completes a cookie handshake: `client_isn` is
    /// its SEQ - 1, `isn` its ACK - 1, and `tsecr` its echoed timestamp if
    /// it carries one and the listener uses timestamps. Returns what the
    /// SYN offered, or `None` if the cookie is not one we made for this
    /// 4-tuple and SYN within the last [`MAX_AGE`] ticks.
    pub fn decode(
        &self,
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        client_isn: u32,
        isn: u32,
        tsecr: Option<u32>,
    ) -> Option<CookieOptions> {
        let current = Self::tick(now);
        let age = current.wrapping_sub(isn >> 27) & 0x1f;
        if age > MAX_AGE || age > current {
            return None;
        }
        let tick = current - age;
        let index = (isn >> 24) & 0x7;
        let bits = tsecr.map_or(0, |e| if e & TS_BIT != 0 { e & OPTION_BITS } else { 0 });
        if self.mac(local, remote, client_isn, tick, index, bits) != isn & HASH_MASK {
            return None;
        }
        Some(CookieOptions::from_bits(MSS_TABLE[index as usize], bits))
    }
}

/// Our MSS as a connection would advertise it (see `Connection::new`).
pub(crate) fn advertised_mss(cfg: &TcpConfig, local_mss: usize) -> u16 {
    cfg.mss.map_or(local_mss, |m| (m as usize).min(local_mss)).clamp(64, 0xffff) as u16
}

/// The window of a SYN-ACK (never scaled, RFC 7323 §2.2): what a new
/// connection's empty receive buffer offers.
pub(crate) fn syn_window(cfg: &TcpConfig) -> u16 {
    cfg.recv_buffer.min(0xffff) as u16
}

/// The stateless SYN-ACK answering `syn` with `cookie`: our MSS, and
/// window scaling, SACK and timestamps as `opts` agreed.
pub(crate) fn syn_ack_repr(
    cfg: &TcpConfig,
    local_mss: usize,
    syn: &TcpRepr,
    opts: &CookieOptions,
    cookie: &SynCookie,
) -> TcpRepr {
    let mut options = TcpOptions { mss: Some(advertised_mss(cfg, local_mss)), ..Default::default() };
    if opts.window_scale.is_some() {
        // The shift the connection made from the cookie will use: a
        // smaller one here would make the peer read our windows as a
        // fraction of what they are.
        options.window_scale = Some(receive_window_shift(cfg));
    }
    options.sack_permitted = opts.sack_permitted;
    if let (Some(tsval), Some((peer_tsval, _))) = (cookie.tsval, syn.options.timestamps) {
        options.timestamps = Some((tsval, peer_tsval));
    }
    TcpRepr {
        src_port: syn.dst_port,
        dst_port: syn.src_port,
        seq: cookie.isn,
        ack: syn.seq.wrapping_add(1),
        flags: TcpFlags::SYN | TcpFlags::ACK,
        window: syn_window(cfg),
        urgent: 0,
        options,
    }
}

impl Connection {
    /// A passive open completed by a valid cookie in `ack` (RFC 4987
    /// §3.6): the connection a SYN-RECEIVED one would have become, created
    /// straight in ESTABLISHED. IRS = SEG.SEQ - 1, ISS = SEG.ACK - 1 (the
    /// cookie), SND.UNA = SND.NXT = SEG.ACK, RCV.NXT = SEG.SEQ; the options
    /// come from the cookie; the window is the ACK's, scaled by the
    /// decoded shift. The ACK itself (its text and FIN) is then processed
    /// as by any ESTABLISHED connection, by the caller. `ep.iss` is
    /// ignored.
    pub(crate) fn from_syn_cookie(
        cx: &mut Cx,
        cfg: &Arc<TcpConfig>,
        ep: Endpoints,
        ack: &TcpRepr,
        opts: &CookieOptions,
    ) -> Self {
        let iss = ack.ack.wrapping_sub(1);
        // The SYN as the cookie remembers it.
        let syn = TcpRepr {
            src_port: ack.src_port,
            dst_port: ack.dst_port,
            seq: ack.seq.wrapping_sub(1),
            ack: 0,
            flags: TcpFlags::SYN,
            window: ack.window,
            urgent: 0,
            options: TcpOptions {
                mss: Some(opts.mss),
                window_scale: opts.window_scale,
                sack_permitted: opts.sack_permitted,
                timestamps: if opts.timestamps { ack.options.timestamps.map(|(val, _)| (val, 0)) } else { None },
                ..Default::default()
            },
        };
        let mut c = Connection::accept_syn(cx, cfg, Endpoints { iss, ..ep }, &syn);
        // Our SYN-ACK went out and is acknowledged.
        c.syn_due = false;
        c.snd_una = SeqNumber(ack.ack);
        c.snd_nxt = c.snd_una;
        // The window our SYN-ACK offered (an empty buffer's, unscaled).
        c.rcv_adv = c.rcv_nxt + c.rx.free().min(syn_window(cfg) as usize);
        c.snd_wnd = (ack.window as usize) << c.snd_wscale;
        c.max_snd_wnd = c.snd_wnd;
        c.snd_wl1 = SeqNumber(ack.seq);
        c.snd_wl2 = SeqNumber(ack.ack);
        c.ts_recent_age = cx.now;
        c.set_state(cx, State::Established);
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs() -> (SocketAddrV4, SocketAddrV4) {
        ("10.0.0.2:80".parse().unwrap(), "198.18.7.9:40123".parse().unwrap())
    }

    fn cookies() -> SynCookies {
        SynCookies::new(SynCookies::derive_key([9; 16]))
    }

    fn all_options() -> Vec<CookieOptions> {
        let mut v = Vec::new();
        for &mss in &MSS_TABLE {
            v.push(CookieOptions { mss, window_scale: None, sack_permitted: false, timestamps: false });
            for ws in (0..=MAX_WINDOW_SHIFT).map(Some).chain([None]) {
                for sack in [false, true] {
                    v.push(CookieOptions { mss, window_scale: ws, sack_permitted: sack, timestamps: true });
                }
            }
        }
        v
    }

    const TS_CLOCK: u32 = 0x1234_5678;

    #[test]
    fn round_trip_for_every_mss_and_option_combination() {
        let (l, r) = addrs();
        let mut g = cookies();
        let t = Instant::from_secs(1000);
        for (i, o) in all_options().into_iter().enumerate() {
            let client_isn = 0x9e37_79b9u32.wrapping_mul(i as u32 + 1);
            let c = g.encode(t, l, r, client_isn, &o, TS_CLOCK);
            assert_eq!(c.tsval.is_some(), o.timestamps);
            if let Some(v) = c.tsval {
                assert!(TS_CLOCK.wrapping_sub(v) < 64, "TSval {v:#x} not within 64 ms before the clock");
            }
            // The ACK echoes the TSval (if any) and acknowledges ISN + 1.
            assert_eq!(g.decode(t, l, r, client_isn, c.isn, c.tsval), Some(o), "{o:?}");
        }
    }

    #[test]
    fn negotiation_rounds_the_mss_down_and_needs_timestamps_for_ws_and_sack() {
        let cfg = TcpConfig::default();
        let full = TcpOptions {
            mss: Some(1000),
            window_scale: Some(20),
            sack_permitted: true,
            timestamps: Some((1, 0)),
            ..Default::default()
        };
        let o = CookieOptions::negotiate(&cfg, &full);
        assert_eq!(o, CookieOptions { mss: 536, window_scale: Some(14), sack_permitted: true, timestamps: true });
        let no_ts = TcpOptions { timestamps: None, ..full };
        let o = CookieOptions::negotiate(&cfg, &no_ts);
        assert_eq!(o, CookieOptions { mss: 536, window_scale: None, sack_permitted: false, timestamps: false });
        // No MSS option: 536. Tiny: the smallest entry. Exact entries stay.
        assert_eq!(CookieOptions::negotiate(&cfg, &TcpOptions::default()).mss, 536);
        for (offer, got) in [(40, 64), (1459, 1452), (1460, 1460), (9000, 8960), (65535, 8960)] {
            let o = TcpOptions { mss: Some(offer), ..Default::default() };
            assert_eq!(CookieOptions::negotiate(&cfg, &o).mss, got, "offer {offer}");
        }
        // The listener's own settings win.
        let off = TcpConfig { sack: false, window_scaling: false, ..TcpConfig::default() };
        let o = CookieOptions::negotiate(&off, &full);
        assert_eq!((o.window_scale, o.sack_permitted, o.timestamps), (None, false, true));
    }

    #[test]
    fn wrong_tuple_client_isn_or_cookie_is_rejected() {
        let (l, r) = addrs();
        let mut g = cookies();
        let t = Instant::from_secs(5);
        let o = CookieOptions { mss: 1460, window_scale: Some(7), sack_permitted: true, timestamps: true };
        let c = g.encode(t, l, r, 1000, &o, TS_CLOCK);
        assert!(g.decode(t, l, r, 1000, c.isn, c.tsval).is_some());
        let other_port = SocketAddrV4::new(*r.ip(), r.port() + 1);
        let other_ip: SocketAddrV4 = "198.18.7.10:40123".parse().unwrap();
        assert_eq!(g.decode(t, l, other_port, 1000, c.isn, c.tsval), None);
        assert_eq!(g.decode(t, l, other_ip, 1000, c.isn, c.tsval), None);
        assert_eq!(g.decode(t, "10.0.0.2:81".parse().unwrap(), r, 1000, c.isn, c.tsval), None);
        assert_eq!(g.decode(t, l, r, 1001, c.isn, c.tsval), None, "another SYN's ISN");
        // Any single bit of the cookie changed: hash, MSS index or tick.
        for bit in 0..32 {
            assert_eq!(g.decode(t, l, r, 1000, c.isn ^ (1 << bit), c.tsval), None, "bit {bit}");
        }
        // The options in the echoed TSval are covered too.
        for bit in 0..6 {
            assert_eq!(g.decode(t, l, r, 1000, c.isn, c.tsval.map(|v| v ^ (1 << bit))), None, "TS bit {bit}");
        }
        // Dropping the timestamps from the ACK does not strip the options.
        assert_eq!(g.decode(t, l, r, 1000, c.isn, None), None);
        // Another key.
        let other = SynCookies::new(SynCookies::derive_key([10; 16]));
        assert_eq!(other.decode(t, l, r, 1000, c.isn, c.tsval), None);
    }

    #[test]
    fn forged_acks_are_rejected() {
        // A blind attacker's ACK numbers: about one in 2^24 may pass.
        let (l, r) = addrs();
        let mut g = cookies();
        let t = Instant::from_secs(100);
        let o = CookieOptions { mss: 1460, window_scale: None, sack_permitted: false, timestamps: false };
        g.encode(t, l, r, 7, &o, 0);
        let mut rng = crate::rand::Rng::new(42);
        let passed = (0..200_000).filter(|_| g.decode(t, l, r, 7, rng.next_u32(), None).is_some()).count();
        assert_eq!(passed, 0);
    }

    #[test]
    fn cookie_is_valid_for_max_age_ticks_and_no_longer() {
        let (l, r) = addrs();
        let mut g = cookies();
        let o = CookieOptions { mss: 1440, window_scale: Some(2), sack_permitted: false, timestamps: true };
        // Made at the end of tick 40.
        let made = Instant::from_millis(41 * TICK_MILLIS - 1);
        let c = g.encode(made, l, r, 77, &o, TS_CLOCK);
        let at = |ms: u64| g.decode(Instant::from_millis(ms), l, r, 77, c.isn, c.tsval);
        assert_eq!(at(41 * TICK_MILLIS - 1), Some(o));
        assert_eq!(at((41 + MAX_AGE as u64) * TICK_MILLIS - 1), Some(o), "last instant of the last tick");
        assert_eq!(at((41 + MAX_AGE as u64) * TICK_MILLIS), None, "stale");
        // Nor when t mod 32 comes round again.
        assert_eq!(at((40 + 32) * TICK_MILLIS), None, "32 ticks later");
        // Nor before it was made (a cookie from the future).
        assert_eq!(at(40 * TICK_MILLIS - 1), None);
        // At the very start of time there are no earlier ticks to wrap to.
        let c0 = g.encode(Instant::ZERO, l, r, 77, &o, TS_CLOCK);
        assert!(g.decode(Instant::ZERO, l, r, 77, c0.isn, c0.tsval).is_some());
        assert!(g.decode(Instant::from_millis(3 * TICK_MILLIS), l, r, 77, c0.isn, c0.tsval).is_none());
    }

    #[test]
    fn isn_layout_and_recently_sent() {
        let (l, r) = addrs();
        let mut g = cookies();
        let t = Instant::from_millis(35 * TICK_MILLIS);
        assert!(!g.recently_sent(t));
        let o = CookieOptions { mss: 1300, window_scale: None, sack_permitted: false, timestamps: false };
        let c = g.encode(t, l, r, 1, &o, 0);
        assert_eq!(c.isn >> 27, 35 % 32, "tick in the top 5 bits");
        assert_eq!((c.isn >> 24) & 7, 3, "MSS index of 1300");
        assert!(g.recently_sent(t + crate::time::Duration::from_millis((MAX_AGE as u64 + 1) * TICK_MILLIS - 1)));
        assert!(!g.recently_sent(t + crate::time::Duration::from_millis((MAX_AGE as u64 + 1) * TICK_MILLIS)));
    }

    #[test]
    fn tsval_never_runs_ahead_of_the_clock() {
        let (l, r) = addrs();
        let mut g = cookies();
        let o = CookieOptions { mss: 1460, window_scale: Some(14), sack_permitted: true, timestamps: true };
        for clock in [0u32, 5, 63, 64, 0xffff_ffc0, 0xffff_ffff, 0x8000_0000] {
            let v = g.encode(Instant::ZERO, l, r, 1, &o, clock).tsval.unwrap();
            assert_eq!(v & 0x3f, o.bits());
            assert!((clock.wrapping_sub(v) as i32) >= 0 && clock.wrapping_sub(v) < 64, "clock {clock:#x} TSval {v:#x}");
        }
    }

    #[test]
    fn derived_key_depends_on_the_isn_key() {
        assert_ne!(SynCookies::derive_key([1; 16]), SynCookies::derive_key([2; 16]));
        assert_ne!(SynCookies::derive_key([1; 16]), [1; 16]);
    }
}
