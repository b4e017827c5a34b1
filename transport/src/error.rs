//! Typed transport errors. Messages name the peer and say what to do.

use thiserror::Error;

/// Failures moving sync bytes between machines.
#[derive(Debug, Error)]
pub enum TransportError {
    /// The machine key file is missing, unreadable or malformed.
    #[error("{0}")]
    Identity(String),
    /// The address could not be parsed or resolved.
    #[error("{0}")]
    Address(String),
    /// Could not reach or keep a connection to the peer.
    #[error("{0}")]
    Connection(String),
    /// The server does not accept this machine.
    #[error("{0}")]
    Refused(String),
    /// The server presented a different machine key than recorded for the peer.
    #[error("{0}")]
    KeyMismatch(String),
    /// The peer broke the protocol or sent data that fails verification.
    #[error("{0}")]
    Protocol(String),
    /// The sync round failed in the engine (e.g. project mismatch).
    #[error("{0}")]
    Engine(#[from] td_engine::EngineError),
}
