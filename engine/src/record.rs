//! The signed change record: one Automerge change plus its attribution, chained per actor and
//! signed by the author machine. This is the unit the log stores and replicas exchange.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{EngineError, Result};
use crate::identity::{self, MachineIdentity};

/// Current record format version. A reader refuses records with a newer version.
/// Format 2 is sealed (`docs/encryption.md`): `doc` and `session` are empty and `change` is a
/// [`crate::sealing::seal_record`] envelope of an [`Inner`].
pub const RECORD_FORMAT: u8 = 2;

/// The plaintext record format: the roster's records, and every record of a project before
/// its first epoch.
pub const PLAIN_FORMAT: u8 = 1;

/// The sealed record format (`docs/encryption.md`).
pub const SEALED_FORMAT: u8 = 2;

/// What a sealed record's envelope holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inner {
    /// The entity document.
    pub doc: String,
    /// The writing session.
    pub session: String,
    /// The raw Automerge change.
    pub change: Vec<u8>,
}

/// The largest sealed envelope: the largest change, its framing, and the session and entity
/// ids (bounded well below this).
pub const MAX_SEALED_BYTES: usize = MAX_CHANGE_BYTES + 4096;

/// The largest Automerge change one record may carry: 1 MiB. A 50,000-character description
/// written at once is at most 200 KB of UTF-8, so edits of long texts fit many times over,
/// while any record fits a sync batch and a frame (`sync::wire`) with room to spare. A
/// larger change is refused where it is written, and a received one is refused on arrival,
/// so one record can never stop sync for everything written after it.
pub const MAX_CHANGE_BYTES: usize = 1024 * 1024;

/// Checks a received Automerge change before anything parses it: at most
/// [`MAX_CHANGE_BYTES`] as sent, and, when it is a compressed chunk, at most
/// [`MAX_CHANGE_BYTES`] once inflated, measured through a capped reader into nothing (Automerge
/// itself inflates without a limit, so a small record could otherwise take gigabytes). The
/// same bound holds for what this td writes: local changes are stored uncompressed.
pub fn check_change(change: &[u8]) -> std::result::Result<(), String> {
    use std::io::Read;
    if change.len() > MAX_CHANGE_BYTES {
        return Err(format!(
            "a change of {} bytes, more than the {MAX_CHANGE_BYTES}-byte limit",
            change.len()
        ));
    }
    // Chunk header: 4 magic bytes, 4 checksum bytes, the chunk type, a LEB128 length.
    const COMPRESSED: u8 = 2;
    if change.len() < 9 || change[8] != COMPRESSED {
        return Ok(());
    }
    let mut rest = &change[9..];
    let len = leb128::read::unsigned(&mut rest).map_err(|_| "a malformed change".to_string())?;
    let data = rest.get(..len as usize).ok_or("a truncated change")?;
    let inflater = flate2::read::DeflateDecoder::new(data);
    let inflated = std::io::copy(
        &mut inflater.take(MAX_CHANGE_BYTES as u64 + 1),
        &mut std::io::sink(),
    )
    .map_err(|_| "a change whose compressed data is corrupt".to_string())?;
    if inflated > MAX_CHANGE_BYTES as u64 {
        return Err(format!(
            "a compressed change that inflates past the {MAX_CHANGE_BYTES}-byte limit"
        ));
    }
    Ok(())
}

/// Size of an actor id in bytes.
pub const ACTOR_LEN: usize = 16;

/// The signed body of a change record. Its SHA-256 (over the postcard encoding) is the
/// record's hash; the author signs that hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordBody {
    /// Format version ([`RECORD_FORMAT`]).
    pub format: u8,
    /// The project this change belongs to; replicas refuse changes of other projects.
    pub project: String,
    /// The entity document the change applies to (the entity id).
    pub doc: String,
    /// The writer's actor id (also the Automerge actor of the change).
    pub actor: [u8; ACTOR_LEN],
    /// Position of this record in its actor's log, starting at 1.
    pub seq: u64,
    /// Hash of the same actor's previous record (zeros for `seq == 1`), so one signature at the
    /// end of a contiguous run vouches for the whole run.
    pub prev: [u8; 32],
    /// The td session that made the change (attribution).
    pub session: String,
    /// The author machine's ed25519 public key.
    pub author: [u8; 32],
    /// The raw Automerge change bytes.
    pub change: Vec<u8>,
}

/// A record as stored and shipped: the encoded body, its hash and the author's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRecord {
    /// The decoded body.
    pub body: RecordBody,
    /// The postcard encoding of `body`, kept verbatim so relays never re-encode.
    pub encoded: Vec<u8>,
    /// SHA-256 of `encoded`.
    pub hash: [u8; 32],
    /// ed25519 signature by `body.author` over `hash`.
    pub signature: [u8; 64],
}

impl SignedRecord {
    /// Encodes, hashes and signs a body.
    pub fn sign(body: RecordBody, identity: &MachineIdentity) -> Result<SignedRecord> {
        let mut rec = SignedRecord::chained(body)?;
        rec.signature = identity.sign(&rec.hash);
        Ok(rec)
    }

    /// Encodes and hashes a body without signing it: a record in the middle of its actor's
    /// run, vouched for by the signature on the run's last record (docs/protocol.md). The
    /// signature stays zero and is stored empty.
    pub fn chained(body: RecordBody) -> Result<SignedRecord> {
        let encoded = postcard::to_stdvec(&body)
            .map_err(|e| EngineError::CorruptLog(format!("encode record: {e}")))?;
        let hash: [u8; 32] = Sha256::digest(&encoded).into();
        let signature = [0u8; 64];
        Ok(SignedRecord {
            body,
            encoded,
            hash,
            signature,
        })
    }

    /// Decodes a stored or received record and checks its hash and signature.
    pub fn decode_verified(encoded: &[u8], signature: &[u8]) -> Result<SignedRecord> {
        let body: RecordBody = postcard::from_bytes(encoded)
            .map_err(|e| EngineError::CorruptLog(format!("decode record: {e}")))?;
        if body.format > RECORD_FORMAT {
            return Err(EngineError::CorruptLog(format!(
                "record format {} is newer than this td understands ({RECORD_FORMAT})",
                body.format
            )));
        }
        let signature: [u8; 64] = signature
            .try_into()
            .map_err(|_| EngineError::CorruptLog("signature has the wrong length".into()))?;
        let hash: [u8; 32] = Sha256::digest(encoded).into();
        identity::verify(&body.author, &hash, &signature)?;
        Ok(SignedRecord {
            body,
            encoded: encoded.to_vec(),
            hash,
            signature,
        })
    }
}

/// The first bytes every plaintext record of `doc` in `project` starts with (its format,
/// project and entity, postcard-encoded as in [`RecordBody`]): a hub can tell the roster's
/// plaintext rows, which stay readable, from content without reading them
/// (`td sync encrypt-hub`, docs/encryption.md).
pub fn plain_prefix(project: &str, doc: &str) -> Vec<u8> {
    postcard::to_stdvec(&(PLAIN_FORMAT, project, doc)).unwrap_or_default()
}

/// Derives the actor id of a writer: a hash of the replica's writer id and the session, so two
/// sessions never share an actor and a copied database (which gets a new writer id) never
/// reuses its source's sequence numbers.
pub fn actor_for(writer_id: &str, session: &str) -> [u8; ACTOR_LEN] {
    let digest = Sha256::digest(format!("{writer_id}\n{session}").as_bytes());
    let mut out = [0u8; ACTOR_LEN];
    out.copy_from_slice(&digest[..ACTOR_LEN]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_prefix_is_how_a_plaintext_record_of_that_entity_starts() {
        let body = |doc: &str| RecordBody {
            format: PLAIN_FORMAT,
            project: "prj_0123456789abcdef".into(),
            doc: doc.into(),
            actor: [3; ACTOR_LEN],
            seq: 7,
            prev: [0; 32],
            session: "ses_x".into(),
            author: [5; 32],
            change: vec![1, 2, 3],
        };
        let prefix = plain_prefix("prj_0123456789abcdef", "roster");
        let roster = postcard::to_stdvec(&body("roster")).unwrap();
        assert!(roster.starts_with(&prefix));
        let issue = postcard::to_stdvec(&body("td-abc123")).unwrap();
        assert!(!issue.starts_with(&prefix));
        let rosters = postcard::to_stdvec(&body("rosterx")).unwrap();
        assert!(
            !rosters.starts_with(&prefix),
            "the entity's length is part of the prefix"
        );
    }

    fn body() -> RecordBody {
        RecordBody {
            format: RECORD_FORMAT,
            project: "p".into(),
            doc: "td-abc123".into(),
            actor: [7; ACTOR_LEN],
            seq: 1,
            prev: [0; 32],
            session: "ses_x_y".into(),
            author: [0; 32],
            change: vec![1, 2, 3],
        }
    }

    #[test]
    fn sign_then_verify_and_tamper() {
        let id = MachineIdentity::generate();
        let mut b = body();
        b.author = id.public_key();
        let rec = SignedRecord::sign(b, &id).unwrap();
        let back = SignedRecord::decode_verified(&rec.encoded, &rec.signature).unwrap();
        assert_eq!(back, rec);
        let mut tampered = rec.encoded.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(SignedRecord::decode_verified(&tampered, &rec.signature).is_err());
    }
}
