//! td's transports: they move the engine's bytes and nothing else. QUIC peers (`peer`) with
//! TLS 1.3 (`tls`) and ed25519 machine proofs bound to the connection (`auth`), and the
//! machine key files (`identity`).

pub mod auth;
pub mod discovery;
pub mod error;
pub mod hub;
pub mod hub_sync;
pub mod identity;
pub mod peer;
pub mod serve;
pub mod sync_loop;
pub mod tls;

pub use error::TransportError;
