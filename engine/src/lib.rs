//! td's engine: td's data model on a signed Automerge change log, materialized into td's own
//! SQLite tables (schema v38). The CLI and the transports call into this crate; it never does
//! network or terminal I/O.
//!
//! The pieces: [`store`] owns the database and the write path (one IMMEDIATE transaction per
//! command: check, change, sign, log, materialize); [`doc`] and [`materialize`] define how an
//! entity's document maps to td's rows; [`ops`] holds td's commands; [`query`] and [`export`]
//! read the materialized tables.

pub mod adoption;
pub mod authority;
pub mod conflicts;
pub mod dates;
pub mod doc;
pub mod doctor;
pub(crate) mod error;
pub mod export;
pub(crate) mod find;
pub mod graph;
pub mod hub;
pub mod identity;
pub mod invite;
pub mod keyring;
pub mod lineage;
pub(crate) mod materialize;
pub mod migrate;
pub mod model;
pub mod ops;
pub mod outside_edits;
pub(crate) mod project;
pub mod query;
pub(crate) mod rebuild;
pub mod record;
pub mod review_policy;
pub mod roster;
pub mod schema;
pub mod sealing;
pub(crate) mod session;
pub mod store;
pub mod sync;
pub mod tdq;
pub mod undo;
pub mod views;
pub mod write;

pub use error::{EngineError, Result};
pub use identity::MachineIdentity;
pub use project::Project;
pub use session::{Session, SessionContext};
pub use store::{InitOutcome, Store};
