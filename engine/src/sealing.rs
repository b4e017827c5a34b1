//! The cryptography of end-to-end encryption (issue 12; the design is `docs/encryption.md`):
//! each machine's X25519 encryption key, epoch keys sealed to one member, the sealed record
//! envelope, and the key of merged epochs. Pure functions over bytes (no database, no I/O), so
//! the record path, the roster resolution and the hub rewrite share one implementation.
//!
//! Built on maintained RustCrypto/dalek crates: `x25519-dalek` (Diffie-Hellman),
//! `chacha20poly1305` (XChaCha20-Poly1305, 24-byte random nonces, so random nonces never
//! collide in practice), `hkdf` with SHA-256. Only the framing is written here.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::XChaCha20Poly1305;
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};

use crate::identity::{random_bytes, MachineIdentity};

/// Bytes of an epoch key and of an epoch id.
pub const KEY_LEN: usize = 32;
/// Bytes of an XChaCha20-Poly1305 nonce.
pub const NONCE_LEN: usize = 24;
/// Bytes the AEAD tag adds.
pub const TAG_LEN: usize = 16;
/// Bytes of an epoch key sealed to one member: ephemeral public key, nonce, sealed key, tag.
pub const SEALED_KEY_LEN: usize = 32 + NONCE_LEN + KEY_LEN + TAG_LEN;
/// Bytes a sealed record envelope adds to its plaintext: epoch id, nonce, tag.
pub const ENVELOPE_OVERHEAD: usize = KEY_LEN + NONCE_LEN + TAG_LEN;

/// An epoch's id: random for a fresh epoch, a hash of the heads for a merged one.
pub type EpochId = [u8; KEY_LEN];
/// An epoch's content key.
pub type EpochKey = [u8; KEY_LEN];

/// Why a sealed thing did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Shorter than its framing.
    #[error("truncated: {0} bytes")]
    Truncated(usize),
    /// The key for this epoch is not held here (yet).
    #[error("no key for epoch {}", hex::encode(&.0[..8]))]
    NoKey(EpochId),
    /// The authentication tag did not verify: wrong key, wrong context or altered bytes.
    #[error("does not authenticate (wrong key, or altered)")]
    Forged,
}

/// HKDF-SHA256 to one 32-byte key.
fn derive(ikm: &[u8], salt: &[u8], info: &[u8]) -> [u8; KEY_LEN] {
    let mut out = [0u8; KEY_LEN];
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, &mut out)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    out
}

fn cipher(key: &[u8; KEY_LEN]) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new_from_slice(key).expect("a 32-byte key")
}

fn seal(key: &[u8; KEY_LEN], aad: &[u8], plaintext: &[u8]) -> ([u8; NONCE_LEN], Vec<u8>) {
    let nonce: [u8; NONCE_LEN] = random_bytes();
    let ct = cipher(key)
        .encrypt(
            &nonce.into(),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("XChaCha20-Poly1305 encryption of an in-memory buffer");
    (nonce, ct)
}

fn open(key: &[u8; KEY_LEN], nonce: &[u8], aad: &[u8], ct: &[u8]) -> Result<Vec<u8>, OpenError> {
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| OpenError::Forged)?;
    cipher(key)
        .decrypt(&nonce.into(), Payload { msg: ct, aad })
        .map_err(|_| OpenError::Forged)
}

/// This machine's X25519 secret: its Ed25519 key in Montgomery form (the conversion
/// libsodium's `crypto_sign_ed25519_sk_to_curve25519` and age's ssh-ed25519 recipients use),
/// so any member can seal a key to a machine knowing only the public key the roster admits,
/// at the moment it admits it; docs/encryption.md says why this rather than a second key.
pub fn machine_secret(identity: &MachineIdentity) -> StaticSecret {
    StaticSecret::from(identity.scalar_bytes())
}

/// The X25519 public key of the machine whose signing key is `public_key` (`None` for bytes
/// that are not an Ed25519 public key).
pub fn encryption_key_of(public_key: &[u8; 32]) -> Option<[u8; KEY_LEN]> {
    Some(
        ed25519_dalek::VerifyingKey::from_bytes(public_key)
            .ok()?
            .to_montgomery()
            .to_bytes(),
    )
}

/// The commitment an epoch makes to its key: `sha256("td-epoch-key-v1\0" ‖ project ‖ 0 ‖ id ‖
/// key)`. Published in the epoch's operation (signed with it), so a member that opens a copy
/// sealed to it can tell whether it is the epoch's key.
pub fn key_commitment(project: &str, epoch: &EpochId, key: &EpochKey) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"td-epoch-key-v1\0");
    h.update(project.as_bytes());
    h.update([0u8]);
    h.update(epoch);
    h.update(key);
    h.finalize().into()
}

/// A fresh random epoch: its id and key.
pub fn new_epoch() -> (EpochId, EpochKey) {
    (random_bytes(), random_bytes())
}

fn key_aad(project: &str, epoch: &EpochId, recipient: &[u8; 32]) -> Vec<u8> {
    let mut aad = b"td-seal-v1\0".to_vec();
    aad.extend_from_slice(project.as_bytes());
    aad.push(0);
    aad.extend_from_slice(epoch);
    aad.extend_from_slice(recipient);
    aad
}

/// Seals an epoch key to one member: `recipient` is its signing key (bound into the
/// associated data, with the project and the epoch), `recipient_enc` its X25519 key
/// ([`encryption_key_of`]).
pub fn seal_key(
    key: &EpochKey,
    epoch: &EpochId,
    project: &str,
    recipient: &[u8; 32],
    recipient_enc: &[u8; KEY_LEN],
) -> Vec<u8> {
    let eph = StaticSecret::from(random_bytes::<KEY_LEN>());
    let eph_pub = PublicKey::from(&eph).to_bytes();
    let shared = eph.diffie_hellman(&PublicKey::from(*recipient_enc));
    let mut salt = eph_pub.to_vec();
    salt.extend_from_slice(recipient_enc);
    let k = derive(shared.as_bytes(), &salt, b"td-seal-v1");
    let (nonce, ct) = seal(&k, &key_aad(project, epoch, recipient), key);
    let mut out = Vec::with_capacity(SEALED_KEY_LEN);
    out.extend_from_slice(&eph_pub);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

/// Opens an epoch key sealed to this machine.
pub fn open_key(
    sealed: &[u8],
    epoch: &EpochId,
    project: &str,
    identity: &MachineIdentity,
) -> Result<EpochKey, OpenError> {
    if sealed.len() != SEALED_KEY_LEN {
        return Err(OpenError::Truncated(sealed.len()));
    }
    let secret = machine_secret(identity);
    let my_enc = PublicKey::from(&secret).to_bytes();
    let eph_pub: [u8; 32] = sealed[..32].try_into().expect("length checked");
    let shared = secret.diffie_hellman(&PublicKey::from(eph_pub));
    let mut salt = eph_pub.to_vec();
    salt.extend_from_slice(&my_enc);
    let k = derive(shared.as_bytes(), &salt, b"td-seal-v1");
    let aad = key_aad(project, epoch, &identity.public_key());
    let key = open(
        &k,
        &sealed[32..32 + NONCE_LEN],
        &aad,
        &sealed[32 + NONCE_LEN..],
    )?;
    key.try_into().map_err(|_| OpenError::Forged)
}

fn record_aad(project: &str, actor: &[u8], seq: u64) -> Vec<u8> {
    let mut aad = b"td-record-v2\0".to_vec();
    aad.extend_from_slice(project.as_bytes());
    aad.push(0);
    aad.extend_from_slice(actor);
    aad.extend_from_slice(&seq.to_le_bytes());
    aad
}

/// Seals a record's plaintext under an epoch: `epoch id ‖ nonce ‖ ciphertext`, bound to the
/// project, the writer and its position.
pub fn seal_record(
    epoch: &EpochId,
    key: &EpochKey,
    project: &str,
    actor: &[u8],
    seq: u64,
    plaintext: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(plaintext.len() + ENVELOPE_OVERHEAD);
    seal_envelope(
        &mut out,
        b"td-record-v2",
        epoch,
        key,
        &record_aad(project, actor, seq),
        plaintext,
    );
    out
}

/// Appends `epoch id ‖ nonce ‖ AEAD(plaintext)` under the key derived from the epoch's key
/// with `label`: the envelope of sealed records and of wrapped hub rows.
fn seal_envelope(
    out: &mut Vec<u8>,
    label: &[u8],
    epoch: &EpochId,
    key: &EpochKey,
    aad: &[u8],
    plaintext: &[u8],
) {
    let (nonce, ct) = seal(&derive(key, epoch, label), aad, plaintext);
    out.extend_from_slice(epoch);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
}

/// Opens an envelope [`seal_envelope`] made, with the key `key_of` gives for its epoch.
fn open_envelope(
    envelope: &[u8],
    label: &[u8],
    key_of: impl Fn(&EpochId) -> Option<EpochKey>,
    aad: &[u8],
) -> Result<Vec<u8>, OpenError> {
    if envelope.len() < ENVELOPE_OVERHEAD {
        return Err(OpenError::Truncated(envelope.len()));
    }
    let epoch = record_epoch(envelope)?;
    let key = key_of(&epoch).ok_or(OpenError::NoKey(epoch))?;
    open(
        &derive(&key, &epoch, label),
        &envelope[KEY_LEN..KEY_LEN + NONCE_LEN],
        aad,
        &envelope[KEY_LEN + NONCE_LEN..],
    )
}

/// The epoch a sealed record names (readable without any key).
pub fn record_epoch(envelope: &[u8]) -> Result<EpochId, OpenError> {
    envelope
        .get(..KEY_LEN)
        .and_then(|e| e.try_into().ok())
        .ok_or(OpenError::Truncated(envelope.len()))
}

/// Opens a sealed record with the key `key_of` gives for its epoch.
pub fn open_record(
    envelope: &[u8],
    key_of: impl Fn(&EpochId) -> Option<EpochKey>,
    project: &str,
    actor: &[u8],
    seq: u64,
) -> Result<Vec<u8>, OpenError> {
    open_envelope(
        envelope,
        b"td-record-v2",
        key_of,
        &record_aad(project, actor, seq),
    )
}

/// The first bytes of a hub row an admin wrapped (`td sync encrypt-hub`): a plaintext record
/// from before the project's first epoch, sealed whole so the hub no longer reads it. No
/// record body starts with them (a record starts with its format byte, 1 or 2).
pub const WRAP_MAGIC: &[u8; 4] = b"TDW1";
/// Bytes of a wrapped row's clear header: magic, writer, position.
pub const WRAP_HEADER: usize = WRAP_MAGIC.len() + 16 + 8;

fn wrap_aad(project: &str, header: &[u8]) -> Vec<u8> {
    let mut aad = b"td-wrap-v1\0".to_vec();
    aad.extend_from_slice(project.as_bytes());
    aad.push(0);
    aad.extend_from_slice(header);
    aad
}

/// Wraps a plaintext record (its encoding, whose hash and signature stay as they are) for the
/// hub: `"TDW1" ‖ writer ‖ position ‖ epoch id ‖ nonce ‖ ciphertext`. The writer and position
/// stay readable (the hub's own columns hold them anyway) so a member without the key yet
/// knows whose chain waits; the AEAD binds them, and the project, to the record.
pub fn wrap_row(
    epoch: &EpochId,
    key: &EpochKey,
    project: &str,
    actor: &[u8; 16],
    seq: u64,
    record: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(WRAP_HEADER + record.len() + ENVELOPE_OVERHEAD);
    out.extend_from_slice(WRAP_MAGIC);
    out.extend_from_slice(actor);
    out.extend_from_slice(&seq.to_be_bytes());
    let aad = wrap_aad(project, &out);
    seal_envelope(&mut out, b"td-wrap-v1", epoch, key, &aad, record);
    out
}

/// The writer and position a wrapped row names, or `None` when `body` is not a wrapped row.
pub fn wrapped_writer(body: &[u8]) -> Option<([u8; 16], u64)> {
    if !body.starts_with(WRAP_MAGIC) || body.len() < WRAP_HEADER {
        return None;
    }
    let actor: [u8; 16] = body[4..20].try_into().ok()?;
    let seq = u64::from_be_bytes(body[20..28].try_into().ok()?);
    Some((actor, seq))
}

/// Opens a wrapped row back into the record it holds (the caller checks that record's hash,
/// signature, writer and position as for any row).
pub fn unwrap_row(
    body: &[u8],
    key_of: impl Fn(&EpochId) -> Option<EpochKey>,
    project: &str,
) -> Result<Vec<u8>, OpenError> {
    if wrapped_writer(body).is_none() {
        return Err(OpenError::Truncated(body.len()));
    }
    let (header, envelope) = body.split_at(WRAP_HEADER);
    open_envelope(envelope, b"td-wrap-v1", key_of, &wrap_aad(project, header))
}

/// The epoch writers use when several epochs were made apart (several heads): its id hashes
/// the heads' ids, its key is derived from all their keys, so only a machine holding every
/// head's key can derive it. `heads` in any order; one head is returned as it is.
pub fn merge(heads: &[(EpochId, EpochKey)]) -> (EpochId, EpochKey) {
    let mut sorted: Vec<&(EpochId, EpochKey)> = heads.iter().collect();
    sorted.sort_by_key(|(id, _)| *id);
    sorted.dedup_by_key(|(id, _)| *id);
    if let [(id, key)] = sorted.as_slice() {
        return (*id, *key);
    }
    let mut h = Sha256::new();
    h.update(b"td-epoch-merge-v1\0");
    let mut ikm = Vec::with_capacity(sorted.len() * KEY_LEN);
    for (id, key) in &sorted {
        h.update(id);
        ikm.extend_from_slice(key);
    }
    let id: EpochId = h.finalize().into();
    (id, derive(&ikm, &id, b"td-epoch-merge-v1"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_sealed_key_opens_only_for_its_member_project_and_epoch() {
        let (alice, bob) = (MachineIdentity::generate(), MachineIdentity::generate());
        let (epoch, key) = new_epoch();
        let sealed = seal_key(
            &key,
            &epoch,
            "prj_a",
            &alice.public_key(),
            &encryption_key_of(&alice.public_key()).unwrap(),
        );
        assert_eq!(sealed.len(), SEALED_KEY_LEN);
        assert_eq!(open_key(&sealed, &epoch, "prj_a", &alice), Ok(key));
        // Another machine, project or epoch: refused.
        assert_eq!(
            open_key(&sealed, &epoch, "prj_a", &bob),
            Err(OpenError::Forged)
        );
        assert_eq!(
            open_key(&sealed, &epoch, "prj_b", &alice),
            Err(OpenError::Forged)
        );
        assert_eq!(
            open_key(&sealed, &[9; 32], "prj_a", &alice),
            Err(OpenError::Forged)
        );
        // Every altered byte is refused.
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x40;
            assert!(open_key(&bad, &epoch, "prj_a", &alice).is_err(), "byte {i}");
        }
        assert_eq!(
            open_key(&sealed[1..], &epoch, "prj_a", &alice),
            Err(OpenError::Truncated(SEALED_KEY_LEN - 1))
        );
    }

    #[test]
    fn the_encryption_key_follows_from_the_public_key() {
        let m = MachineIdentity::generate();
        let from_public = encryption_key_of(&m.public_key()).unwrap();
        assert_eq!(from_public, PublicKey::from(&machine_secret(&m)).to_bytes());
        let again = MachineIdentity::from_seed(m.seed());
        assert_eq!(encryption_key_of(&again.public_key()), Some(from_public));
        assert_ne!(from_public, m.public_key());
    }

    #[test]
    fn merged_epochs_need_every_head() {
        let (a, b) = (new_epoch(), new_epoch());
        let ab = merge(&[a, b]);
        assert_eq!(ab, merge(&[b, a]), "order does not matter");
        assert_eq!(merge(&[a]), a, "one head is itself");
        assert_eq!(merge(&[a, a]), a);
        assert_ne!(ab.1, a.1);
        assert_ne!(ab.1, b.1);
        // Knowing one head's key and guessing the other wrong gives another key.
        assert_ne!(merge(&[a, (b.0, [0; 32])]).1, ab.1);
    }

    proptest! {
        /// A sealed record opens to its plaintext with its epoch's key and only in its place
        /// (project, writer, position); without the key it says which epoch it needs; any
        /// altered byte is refused.
        #[test]
        fn records_round_trip_and_bind_their_place(
            plaintext in proptest::collection::vec(any::<u8>(), 0..2048),
            seq in 1u64..1_000_000,
            flip in any::<prop::sample::Index>(),
        ) {
            let (epoch, key) = new_epoch();
            let actor = [7u8; 16];
            let env = seal_record(&epoch, &key, "prj_a", &actor, seq, &plaintext);
            prop_assert_eq!(env.len(), plaintext.len() + ENVELOPE_OVERHEAD);
            let keys = |e: &EpochId| (*e == epoch).then_some(key);
            prop_assert_eq!(open_record(&env, keys, "prj_a", &actor, seq), Ok(plaintext.clone()));
            prop_assert_eq!(open_record(&env, |_| None, "prj_a", &actor, seq), Err(OpenError::NoKey(epoch)));
            prop_assert_eq!(open_record(&env, keys, "prj_a", &actor, seq + 1), Err(OpenError::Forged));
            prop_assert_eq!(open_record(&env, keys, "prj_b", &actor, seq), Err(OpenError::Forged));
            prop_assert_eq!(open_record(&env, keys, "prj_a", &[8u8; 16], seq), Err(OpenError::Forged));
            let mut bad = env.clone();
            let i = flip.index(bad.len());
            bad[i] ^= 1;
            prop_assert!(open_record(&bad, keys, "prj_a", &actor, seq).is_err());
            prop_assert_eq!(
                open_record(&env[..ENVELOPE_OVERHEAD - 1], keys, "prj_a", &actor, seq),
                Err(OpenError::Truncated(ENVELOPE_OVERHEAD - 1))
            );
        }

        /// A wrapped hub row names its writer and position in the clear, opens to the record
        /// with its epoch's key in its project only, and refuses any altered byte (the
        /// header's too).
        #[test]
        fn wrapped_rows_round_trip_and_refuse_changes(
            record in proptest::collection::vec(any::<u8>(), 0..2048),
            seq in 1u64..1_000_000,
            flip in any::<prop::sample::Index>(),
        ) {
            let (epoch, key) = new_epoch();
            let actor = [9u8; 16];
            let w = wrap_row(&epoch, &key, "prj_a", &actor, seq, &record);
            prop_assert_eq!(wrapped_writer(&w), Some((actor, seq)));
            let mut plain = vec![1u8];
            plain.extend_from_slice(&record);
            prop_assert_eq!(wrapped_writer(&plain), None, "a record is not a wrapped row");
            let keys = |e: &EpochId| (*e == epoch).then_some(key);
            prop_assert_eq!(unwrap_row(&w, keys, "prj_a"), Ok(record.clone()));
            prop_assert_eq!(unwrap_row(&w, |_| None, "prj_a"), Err(OpenError::NoKey(epoch)));
            prop_assert_eq!(unwrap_row(&w, keys, "prj_b"), Err(OpenError::Forged));
            let mut bad = w.clone();
            let i = WRAP_MAGIC.len() + flip.index(bad.len() - WRAP_MAGIC.len());
            bad[i] ^= 1;
            prop_assert!(unwrap_row(&bad, keys, "prj_a").is_err());
        }
    }
}
