//! Replica-to-replica sync: the wire format, the sans-IO round state machine, and the store's
//! side of it (what we hold, what the peer lacks, verifying and applying what arrives).

pub mod apply;
pub mod session;
pub mod wire;

pub use session::{
    ApplyReport, LocalState, PeerHolds, RoundError, RoundStats, SyncSession, SyncStore,
};
pub use wire::{FrameDecoder, Message, WireRun};
