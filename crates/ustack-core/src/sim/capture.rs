//! What the wire saw: one [`WireEvent`] per frame put on a link (and one per
//! copy a link made), with its fate. Recorded when
//! [`Network::set_capture`](super::Network::set_capture) is on; the events
//! feed ladder diagrams and pcap files.

use super::{Direction, LinkId, NodeId};
use crate::time::Instant;
use core::fmt;

/// Why the wire dropped a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// Independent random loss ([`LinkConfig::loss`](super::LinkConfig::loss)).
    Loss,
    /// Loss in the bad state of the Gilbert–Elliott chain.
    BurstLoss,
    /// The drop-tail queue in front of a bandwidth limit was full.
    QueueFull,
    /// Longer than the link's MTU.
    Mtu,
    /// Sent while the link was down, or on the wire when it went down.
    LinkDown,
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DropReason::Loss => "lost",
            DropReason::BurstLoss => "lost in burst",
            DropReason::QueueFull => "queue full",
            DropReason::Mtu => "too big for MTU",
            DropReason::LinkDown => "link down",
        })
    }
}

/// What became of a frame on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fate {
    /// Handed to the receiving node at `at`; if `corrupted`, the bytes it
    /// got are in [`WireEvent::delivered_frame`].
    Delivered { at: Instant, corrupted: bool },
    /// Dropped at `at`: the send time for every reason except a link that
    /// went down while the frame was on the wire; then the time it would
    /// have arrived.
    Lost { at: Instant, reason: DropReason },
}

/// One frame on one direction of a link, as the wire saw it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WireEvent {
    /// The global sequence number of the frame: unique, increasing in send
    /// order (a copy's id follows its original's).
    pub id: u64,
    /// When the sender put it on the link (for a copy: the original's time).
    pub sent_at: Instant,
    /// Sender and its port.
    pub from: (NodeId, usize),
    /// Receiver and its port.
    pub to: (NodeId, usize),
    pub link: LinkId,
    pub direction: Direction,
    /// The bytes as sent.
    pub frame: Vec<u8>,
    /// The bytes as delivered, only when they differ from `frame`
    /// (corruption flipped a bit).
    pub delivered_frame: Option<Vec<u8>>,
    /// For a copy made by the link's duplication: the id of the original.
    pub duplicate_of: Option<u64>,
    pub fate: Fate,
}

impl WireEvent {
    /// When it arrived, if it did.
    pub fn delivered_at(&self) -> Option<Instant> {
        match self.fate {
            Fate::Delivered { at, .. } => Some(at),
            Fate::Lost { .. } => None,
        }
    }

    pub fn is_delivered(&self) -> bool {
        matches!(self.fate, Fate::Delivered { .. })
    }

    pub fn drop_reason(&self) -> Option<DropReason> {
        match self.fate {
            Fate::Lost { reason, .. } => Some(reason),
            Fate::Delivered { .. } => None,
        }
    }

    pub fn is_corrupted(&self) -> bool {
        matches!(self.fate, Fate::Delivered { corrupted: true, .. })
    }

    /// The bytes the receiver got: the corrupted ones if a bit was flipped,
    /// else the frame as sent. `None` if it was lost.
    pub fn arrived_frame(&self) -> Option<&[u8]> {
        match self.fate {
            Fate::Delivered { .. } => Some(self.delivered_frame.as_deref().unwrap_or(&self.frame)),
            Fate::Lost { .. } => None,
        }
    }

    /// The flipped bit of a corrupted frame, counting from the most
    /// significant bit of byte 0.
    pub fn flipped_bit(&self) -> Option<usize> {
        let got = self.delivered_frame.as_deref()?;
        self.frame
            .iter()
            .zip(got)
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .map(|(i, (a, b))| i * 8 + (a ^ b).leading_zeros() as usize)
    }
}

impl fmt::Display for WireEvent {
    /// One line: `#12 0.001000 n0:0 -> n1:0 60 bytes delivered 0.002000`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{} {} {}:{} -> {}:{} {} bytes",
            self.id,
            self.sent_at,
            self.from.0,
            self.from.1,
            self.to.0,
            self.to.1,
            self.frame.len()
        )?;
        if let Some(orig) = self.duplicate_of {
            write!(f, " (copy of #{orig})")?;
        }
        match self.fate {
            Fate::Delivered { at, corrupted } => {
                write!(f, " delivered {at}")?;
                if corrupted {
                    f.write_str(" corrupted")?;
                }
                Ok(())
            }
            Fate::Lost { at, reason } => write!(f, " dropped {at}: {reason}"),
        }
    }
}
