//! The sync wire format: length-prefixed frames carrying postcard-encoded messages.
//! See docs/protocol.md.

use serde::{Deserialize, Serialize};

use crate::record::ACTOR_LEN;

/// The protocol versions this build speaks (inclusive range).
pub const PROTOCOL_MIN: u16 = 1;
/// See [`PROTOCOL_MIN`].
pub const PROTOCOL_MAX: u16 = 1;

/// Largest frame accepted (a batch, or one very large record). Larger frames end the round.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;
/// A sender closes a batch once it holds this many records…
pub const BATCH_RECORDS: usize = 1024;
/// …or this many bytes of records.
pub const BATCH_BYTES: usize = 1024 * 1024;

/// What a replica holds: per actor, the highest sequence number.
pub type Summary = Vec<([u8; ACTOR_LEN], u64)>;

/// A change record on the wire: its encoded body and the author's signature over its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireRecord {
    /// The postcard-encoded [`crate::record::RecordBody`], verbatim as the author wrote it.
    pub body: Vec<u8>,
    /// ed25519 signature over sha256(body).
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
    /// Records the peer lacks, in an order that respects each actor's chain.
    Batch {
        /// The records.
        records: Vec<WireRecord>,
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
}

/// Errors decoding frames.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix announces more than [`MAX_FRAME`].
    #[error("frame of {0} bytes exceeds the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
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
}

impl FrameDecoder {
    /// Adds bytes; returns the complete frames' payloads.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Vec<u8>>, FrameError> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        loop {
            if self.buf.len() < 4 {
                break;
            }
            let len = u32::from_be_bytes(self.buf[..4].try_into().expect("4 bytes")) as usize;
            if len > MAX_FRAME {
                return Err(FrameError::TooLarge(len));
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
