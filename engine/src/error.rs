//! Typed errors of the engine, each mapped to one of td's stable JSON error codes.

use thiserror::Error;

/// Everything the engine can refuse or fail at. The variants mirror td's error codes so the CLI
/// can print `{"error":{"code":…,"message":…}}` without guessing.
#[derive(Debug, Error)]
pub enum EngineError {
    /// An id or name that does not resolve to a live entity.
    #[error("{0}")]
    NotFound(String),
    /// Bad input from the user: a value, flag combination or transition td does not allow.
    #[error("{0}")]
    InvalidInput(String),
    /// An optimistic check failed: the entity changed since the version the caller saw.
    #[error("{0}")]
    Conflict(String),
    /// The implementer of an issue tried to approve it without naming a reviewer.
    #[error("{0}")]
    CannotSelfApprove(String),
    /// `td review` needs a handoff (or logs to build one from).
    #[error("{0}")]
    HandoffRequired(String),
    /// A command that needs a session-scoped state (focus, work session) found none.
    #[error("{0}")]
    NoActiveSession(String),
    /// The project has not been initialised.
    #[error("database not found: run 'td init' first")]
    NoDatabase,
    /// SQLite failed, or the file is not a usable td database.
    #[error("database error: {0}")]
    Database(String),
    /// A stored change or document failed to decode or verify.
    #[error("corrupt change log: {0}")]
    CorruptLog(String),
}

impl EngineError {
    /// td's stable error code for the JSON envelope.
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::NotFound(_) => "not_found",
            EngineError::InvalidInput(_) => "invalid_input",
            EngineError::Conflict(_) => "conflict",
            EngineError::CannotSelfApprove(_) => "cannot_self_approve",
            EngineError::HandoffRequired(_) => "handoff_required",
            EngineError::NoActiveSession(_) => "no_active_session",
            EngineError::NoDatabase | EngineError::Database(_) | EngineError::CorruptLog(_) => {
                "database_error"
            }
        }
    }
}

impl From<rusqlite::Error> for EngineError {
    fn from(e: rusqlite::Error) -> Self {
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) {
            return EngineError::Database(
                "the project database is busy: another td process held it for writing longer than this command waits; try again".into(),
            );
        }
        EngineError::Database(e.to_string())
    }
}

impl From<automerge::AutomergeError> for EngineError {
    fn from(e: automerge::AutomergeError) -> Self {
        EngineError::CorruptLog(e.to_string())
    }
}

/// Shorthand for results of engine operations.
pub type Result<T> = std::result::Result<T, EngineError>;

/// Builds an `InvalidInput` error from anything printable.
pub(crate) fn invalid(msg: impl Into<String>) -> EngineError {
    EngineError::InvalidInput(msg.into())
}

/// Builds a `NotFound` error from anything printable.
pub(crate) fn not_found(msg: impl Into<String>) -> EngineError {
    EngineError::NotFound(msg.into())
}
