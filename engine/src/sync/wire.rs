//! The sync wire format: length-prefixed frames carrying postcard-encoded messages.
//! See docs/protocol.md.

use serde::{Deserialize, Serialize};

use crate::record::ACTOR_LEN;

/// The protocol versions this build speaks (inclusive range).
pub const PROTOCOL_MIN: u16 = 1;
/// See [`PROTOCOL_MIN`]. Version 2 adds [`Message::Packed`]: batches compressed with zstd
/// (docs/protocol.md). Peers agree on the highest version both speak, so a version-1 peer is
/// sent plain batches.
pub const PROTOCOL_MAX: u16 = 2;

/// The first version whose batches may be [`Message::Packed`].
pub const PACKED_VERSION: u16 = 2;

/// The zstd level batches are packed at: the fastest levels already find what repeats in a
/// batch (epoch ids, writers, sessions, entity ids), and packing must not slow a round on a
/// fast link.
pub const PACK_LEVEL: i32 = 1;

/// Largest frame accepted (a batch, or one very large record). Larger frames end the round.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;
/// A sender closes a batch once it holds this many records…
pub const BATCH_RECORDS: usize = 8192;
/// …or this many bytes of records.
pub const BATCH_BYTES: usize = 2 * 1024 * 1024;

/// What a replica holds: per actor, the highest sequence number.
pub type Summary = Vec<([u8; ACTOR_LEN], u64)>;

/// Most writers a `Hello` summary lists (about 2.6 MB encoded at most, far below
/// [`MAX_FRAME`]). A replica with more writers lists those with the most records; the peer
/// then sends the others' records whole, and the receiver skips those it holds: correct, only
/// slower. A received summary longer than this is refused.
pub const MAX_SUMMARY: usize = 100_000;

/// `summary` cut to [`MAX_SUMMARY`] writers, keeping those with the most records.
pub fn bounded_summary(summary: &Summary) -> Summary {
    if summary.len() <= MAX_SUMMARY {
        return summary.clone();
    }
    let mut kept = summary.clone();
    kept.sort_by_key(|(actor, seq)| (std::cmp::Reverse(*seq), *actor));
    kept.truncate(MAX_SUMMARY);
    kept.sort();
    kept
}

/// Batches a sender may have in flight before it waits for an acknowledgement: two, so the
/// sender reads the next batch while the receiver applies the last one.
pub const WINDOW: usize = 2;

/// A run of consecutive records of one actor, sent compactly: the fields every record of the
/// run shares are sent once, and each record's `prev` hash and sequence number are implied by
/// its position. The receiver rebuilds each record body byte for byte (postcard is
/// deterministic), chains the hashes from its own copy of the actor's previous record, and
/// checks the one signature, which covers the last record and through the chain every
/// record before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireRun {
    /// Record format of every record in the run.
    pub format: u8,
    /// The writer.
    pub actor: [u8; ACTOR_LEN],
    /// Its machine's public key.
    pub author: [u8; 32],
    /// Its session.
    pub session: String,
    /// Sequence number of the first record.
    pub first_seq: u64,
    /// Per record: the entity document and the raw Automerge change.
    pub changes: Vec<(String, Vec<u8>)>,
    /// The author's signature over the hash of the run's last record.
    pub signature: Vec<u8>,
}

/// Protocol messages. Variant order is part of the wire format: `Hello` stays first forever so
/// any version can read a peer's version range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// First message each way: versions, project, whether the replica has no changes yet, and
    /// what it holds.
    Hello {
        /// Lowest protocol version spoken.
        min_version: u16,
        /// Highest protocol version spoken.
        max_version: u16,
        /// Project id.
        project: String,
        /// True when the replica has no changes (it may adopt the peer's project).
        fresh: bool,
        /// Per-actor high-water marks.
        summary: Summary,
    },
    /// Records the peer lacks, as runs per actor, in an order that respects each chain.
    Batch {
        /// The runs.
        runs: Vec<WireRun>,
    },
    /// The receiver committed a batch.
    Ack {
        /// Records newly applied.
        applied: u64,
        /// Reasons for records refused (bad signature, not a member, …).
        rejected: Vec<String>,
    },
    /// The sender has nothing more to send this round.
    Done {
        /// Records sent this round.
        sent: u64,
    },
    /// The round is over because of this error.
    Error {
        /// Stable code (`incompatible_version`, `project_mismatch`, `bad_frame`, …).
        code: String,
        /// Human message.
        message: String,
    },
    /// Protocol 2: another message (a `Batch`), postcard-encoded and compressed with zstd.
    /// Unpacked into at most [`MAX_FRAME`] bytes; it never holds a `Hello` or another `Packed`.
    Packed {
        /// The zstd frame.
        zstd: Vec<u8>,
    },
}

/// Packs a message (protocol 2).
pub fn pack(msg: &Message) -> Message {
    let plain = postcard::to_stdvec(msg).expect("messages always encode");
    Message::Packed {
        zstd: zstd::bulk::compress(&plain, PACK_LEVEL).expect("zstd compresses any input"),
    }
}

/// Unpacks a [`Message::Packed`] payload: bounded to [`MAX_FRAME`] bytes before anything is
/// parsed (zstd stops at the bound), and refused if it holds a `Hello` or another `Packed`.
pub fn unpack(zstd: &[u8]) -> Result<Message, FrameError> {
    use std::io::Read;
    let bad = |e: std::io::Error| {
        FrameError::Malformed(format!("a packed message that does not unpack ({e})"))
    };
    // Streamed through a bounded reader: memory grows with what actually unpacks, up to the
    // bound, whatever the frame header claims.
    let mut plain = Vec::new();
    zstd::stream::read::Decoder::new(zstd)
        .map_err(bad)?
        .take(MAX_FRAME as u64 + 1)
        .read_to_end(&mut plain)
        .map_err(bad)?;
    if plain.len() > MAX_FRAME {
        return Err(FrameError::TooLarge(plain.len(), MAX_FRAME));
    }
    match decode(&plain)? {
        Message::Hello { .. } | Message::Packed { .. } => Err(FrameError::Malformed(
            "a packed message may only hold a batch, an acknowledgement or an end".into(),
        )),
        m => Ok(m),
    }
}

/// Errors decoding frames.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix announces more than the limit (`MAX_FRAME`, or less before the peer
    /// has proven its identity).
    #[error("frame of {0} bytes exceeds the {1}-byte limit")]
    TooLarge(usize, usize),
    /// The payload is not a message.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame ({0} bytes pending)")]
    Truncated(usize),
}

/// Encodes a message as one frame: 4-byte big-endian length, then the payload.
pub fn encode(msg: &Message) -> Vec<u8> {
    frame(&postcard::to_stdvec(msg).expect("messages always encode"))
}

/// Wraps any payload in a frame (also used by the transport's handshake messages).
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 4);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Decodes one frame's payload.
pub fn decode(payload: &[u8]) -> Result<Message, FrameError> {
    postcard::from_bytes(payload).map_err(|e| FrameError::Malformed(e.to_string()))
}

/// Splits a byte stream into frames, refusing oversized ones before buffering them.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    limit: Option<usize>,
}

impl FrameDecoder {
    /// Lowers (or restores) the largest frame accepted, [`MAX_FRAME`] by default: a transport
    /// accepts only small frames until the peer has proven who it is.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = Some(limit.min(MAX_FRAME));
    }

    /// Adds bytes; returns the complete frames' payloads.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Vec<u8>>, FrameError> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        loop {
            if self.buf.len() < 4 {
                break;
            }
            let len = u32::from_be_bytes(self.buf[..4].try_into().expect("4 bytes")) as usize;
            let limit = self.limit.unwrap_or(MAX_FRAME);
            if len > limit {
                return Err(FrameError::TooLarge(len, limit));
            }
            if self.buf.len() < 4 + len {
                break;
            }
            out.push(self.buf[4..4 + len].to_vec());
            self.buf.drain(..4 + len);
        }
        Ok(out)
    }

    /// Call at end of stream: fails if a partial frame is left.
    pub fn finish(&self) -> Result<(), FrameError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(FrameError::Truncated(self.buf.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_batches_round_trip_and_hostile_packs_are_refused_within_bounds() {
        let batch = Message::Batch {
            runs: vec![WireRun {
                format: 2,
                actor: [3; ACTOR_LEN],
                author: [4; 32],
                session: "ses_x".into(),
                first_seq: 1,
                changes: (0..200)
                    .map(|i| (String::new(), vec![i as u8; 180]))
                    .collect(),
                signature: vec![9; 64],
            }],
        };
        let packed = pack(&batch);
        let Message::Packed { zstd } = &packed else {
            panic!("not packed")
        };
        let plain = postcard::to_stdvec(&batch).unwrap();
        assert!(zstd.len() < plain.len(), "repetition compresses");
        assert_eq!(unpack(zstd), Ok(batch.clone()));
        // A bomb: 64 MiB of zeros in a few KiB is refused at the bound, not inflated whole.
        let bomb = zstd::bulk::compress(&vec![0u8; 64 * 1024 * 1024], 19).unwrap();
        assert!(bomb.len() < 64 * 1024);
        assert_eq!(
            unpack(&bomb),
            Err(FrameError::TooLarge(MAX_FRAME + 1, MAX_FRAME))
        );
        // Only a batch, an ack or an end may be packed: not a hello, not another pack.
        let Message::Packed { zstd: twice } = pack(&packed) else {
            panic!()
        };
        assert!(unpack(&twice).is_err());
        let hello = Message::Hello {
            min_version: 1,
            max_version: 2,
            project: "p".into(),
            fresh: true,
            summary: vec![],
        };
        let Message::Packed { zstd: h } = pack(&hello) else {
            panic!()
        };
        assert!(unpack(&h).is_err());
        // Junk is an error, never a panic.
        assert!(unpack(b"not zstd at all").is_err());
        assert!(unpack(&zstd[..zstd.len() / 2]).is_err());
    }

    #[test]
    fn a_summary_is_cut_to_the_writers_with_most_records_and_fits_a_frame() {
        let summary: Summary = (0..MAX_SUMMARY as u64 + 500)
            .map(|i| {
                let mut a = [0u8; ACTOR_LEN];
                a[..8].copy_from_slice(&i.to_be_bytes());
                (a, i % 1000 + 1)
            })
            .collect();
        let cut = bounded_summary(&summary);
        assert_eq!(cut.len(), MAX_SUMMARY);
        let least_kept = cut.iter().map(|(_, s)| *s).min().unwrap();
        let kept: std::collections::HashSet<_> = cut.iter().collect();
        let dropped_max = summary
            .iter()
            .filter(|e| !kept.contains(e))
            .map(|(_, s)| *s)
            .max()
            .unwrap();
        assert!(least_kept >= dropped_max);
        let hello = Message::Hello {
            min_version: 1,
            max_version: 1,
            project: "p".into(),
            fresh: false,
            summary: cut,
        };
        assert!(encode(&hello).len() < MAX_FRAME / 4);
    }
}
