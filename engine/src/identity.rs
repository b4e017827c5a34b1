//! Machine identity: the ed25519 key pair that signs every change this machine makes, and the
//! short fingerprint that appears in session ids (`ses_<machine>_<rand>`).

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::error::{EngineError, Result};

/// Length of the machine fingerprint in hex characters (40 bits: enough to tell a team's
/// machines apart, short enough to read in a session id).
pub const FINGERPRINT_HEX_LEN: usize = 10;

/// A machine's signing identity. Loaded by the caller from the user's config dir; the engine
/// never touches key files itself.
#[derive(Clone)]
pub struct MachineIdentity {
    key: SigningKey,
}

impl std::fmt::Debug for MachineIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MachineIdentity({})", self.fingerprint())
    }
}

impl MachineIdentity {
    /// Builds the identity from a 32-byte ed25519 seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        MachineIdentity {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// Draws a fresh key pair from the OS random source.
    pub fn generate() -> Self {
        Self::from_seed(random_bytes())
    }

    /// The 32-byte seed, for persisting the key.
    pub fn seed(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The public key bytes that travel with every signed change.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// The public key as the hex string users paste into `td member add`.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.public_key())
    }

    /// The machine fingerprint: derived from the public key, so it cannot be claimed by a
    /// machine that does not hold the key.
    pub fn fingerprint(&self) -> String {
        fingerprint_of(&self.public_key())
    }

    /// The Curve25519 scalar of this key (the X25519 secret of its Montgomery form; see
    /// `sealing::machine_secret`).
    pub fn scalar_bytes(&self) -> [u8; 32] {
        self.key.to_scalar_bytes()
    }

    /// Signs a 32-byte record hash.
    pub fn sign(&self, hash: &[u8; 32]) -> [u8; 64] {
        self.key.sign(hash).to_bytes()
    }
}

/// The fingerprint of any public key (first hex digits of its SHA-256).
pub fn fingerprint_of(public_key: &[u8; 32]) -> String {
    let digest = Sha256::digest(public_key);
    hex::encode(digest)[..FINGERPRINT_HEX_LEN].to_string()
}

/// The machine a session id names: `ses_<fingerprint>_<rest>` names the machine with that
/// fingerprint. Session ids without that shape (td's own, imported by a migration) name none.
pub fn session_machine(session: &str) -> Option<&str> {
    let rest = session.strip_prefix("ses_")?;
    let (machine, tail) = rest.split_once('_')?;
    let names_machine = machine.len() == FINGERPRINT_HEX_LEN
        && !tail.is_empty()
        && machine
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    names_machine.then_some(machine)
}

/// Checks an ed25519 signature made by `public_key` over `hash`.
pub fn verify(public_key: &[u8; 32], hash: &[u8; 32], signature: &[u8; 64]) -> Result<()> {
    let key = VerifyingKey::from_bytes(public_key)
        .map_err(|e| EngineError::CorruptLog(format!("bad public key: {e}")))?;
    key.verify(hash, &Signature::from_bytes(signature))
        .map_err(|_| EngineError::CorruptLog("signature does not verify".into()))
}

/// Random bytes from the OS. Failure of the OS random source is unrecoverable.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).expect("OS random source unavailable");
    buf
}

/// Parses a public key as users paste it (64 hex digits).
pub fn parse_public_key(s: &str) -> Result<[u8; 32]> {
    hex::decode(s.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| {
            crate::error::invalid(format!(
                "invalid public key '{s}': expected 64 hex digits (see 'td peer id')"
            ))
        })
}

/// Why a session id that arrived cannot be stored, if it cannot: one with control characters
/// or bidirectional overrides (it is printed in warnings, lists and logs on every replica), or
/// longer than [`MAX_SESSION_BYTES`].
pub fn unsafe_session(session: &str) -> Option<String> {
    if session.len() > MAX_SESSION_BYTES {
        return Some(format!("session id longer than {MAX_SESSION_BYTES} bytes"));
    }
    session
        .chars()
        .any(|c| {
            c.is_control()
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
        })
        .then(|| "session id contains control or bidirectional characters".to_string())
}

/// The longest session id accepted from another machine (td's are about 24 bytes).
pub const MAX_SESSION_BYTES: usize = 128;
