//! Peer authentication: each side signs the TLS session's exported keying material with its
//! machine key. The exporter is unique to this connection, so a proof cannot be replayed on
//! another connection or relayed by a machine in the middle; the role byte stops a proof being
//! reflected back.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use td_engine::identity::{self, MachineIdentity};

use crate::error::TransportError;

/// Handshake messages, exchanged in frames before the sync round.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum AuthMessage {
    /// "I am `key`", with a signature over this connection's exporter.
    Prove {
        /// Machine public key.
        key: [u8; 32],
        /// ed25519 signature over the binding hash.
        signature: Vec<u8>,
    },
    /// The peer is accepted; the sync round may start.
    Accept,
    /// The peer is refused, and why.
    Refuse {
        /// Message for the other side's user.
        message: String,
    },
}

/// Which side of the connection signs.
#[derive(Debug, Clone, Copy)]
pub enum Role {
    /// The side that connected.
    Client = 1,
    /// The side that accepted.
    Server = 2,
}

fn binding(exporter: &[u8; 32], role: Role) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"td-peer-auth-v1\0");
    h.update([role as u8]);
    h.update(exporter);
    h.finalize().into()
}

/// Builds our proof for `role`.
pub fn prove(identity: &MachineIdentity, exporter: &[u8; 32], role: Role) -> AuthMessage {
    AuthMessage::Prove {
        key: identity.public_key(),
        signature: identity.sign(&binding(exporter, role)).to_vec(),
    }
}

/// Checks the peer's proof for its `role`; returns its key.
pub fn verify(
    msg: &AuthMessage,
    exporter: &[u8; 32],
    role: Role,
) -> Result<[u8; 32], TransportError> {
    match msg {
        AuthMessage::Prove { key, signature } => {
            let sig: [u8; 64] = signature.as_slice().try_into().map_err(|_| {
                TransportError::Protocol("peer's identity proof has a malformed signature".into())
            })?;
            identity::verify(key, &binding(exporter, role), &sig).map_err(|_| {
                TransportError::Protocol("peer failed to prove its machine key".into())
            })?;
            Ok(*key)
        }
        AuthMessage::Refuse { message } => Err(TransportError::Refused(message.clone())),
        AuthMessage::Accept => Err(TransportError::Protocol(
            "peer skipped its identity proof".into(),
        )),
    }
}

/// Encodes a handshake message as a frame.
pub fn encode(msg: &AuthMessage) -> Vec<u8> {
    td_engine::sync::wire::frame(&postcard::to_stdvec(msg).expect("handshake messages encode"))
}

/// Decodes a handshake frame payload.
pub fn decode(payload: &[u8]) -> Result<AuthMessage, TransportError> {
    postcard::from_bytes(payload)
        .map_err(|e| TransportError::Protocol(format!("malformed handshake from peer: {e}")))
}
