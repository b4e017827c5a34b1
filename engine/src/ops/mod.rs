//! td's commands as engine operations. Each runs in one write transaction: read the
//! materialized rows, check td's rules (and `--if-match`), make changes, commit.

pub mod boards;
pub mod cascades;
pub mod claims;
pub mod conflicts;
pub mod files;
pub mod focus;
pub mod issues;
pub mod members;
pub mod monitor;
pub mod notes;
pub mod online_claims;
pub mod reads;
pub mod records;
pub mod task_list;
pub mod transition;
pub mod work_sessions;
pub mod workflow;

use crate::error::{EngineError, Result};
use crate::query::Issue;
use crate::write::Tx;

/// What a successful issue command returns: the issue as it now is, and whether anything
/// changed (false for idempotent repeats).
#[derive(Debug, Clone)]
pub struct IssueOutcome {
    /// The issue after the command.
    pub issue: Issue,
    /// False when the command was an idempotent repeat.
    pub changed: bool,
    /// What the user should hear about beyond the result (td's `Warning:` lines), such as a
    /// minimal handoff created for review.
    pub warnings: Vec<String>,
    /// What the transition set off (td's cascades); empty for every other command.
    pub cascades: cascades::Cascades,
}

impl IssueOutcome {
    /// What a command that changed nothing returns (an idempotent repeat).
    pub(crate) fn unchanged(issue: Issue) -> Self {
        IssueOutcome {
            issue,
            changed: false,
            warnings: Vec::new(),
            cascades: Default::default(),
        }
    }
}

/// Fails with `conflict` when `expected` is given and the entity's document has moved on.
pub(crate) fn check_if_match(tx: &mut Tx<'_>, id: &str, expected: Option<&str>) -> Result<()> {
    let Some(expected) = expected else {
        return Ok(());
    };
    let current = tx.version(id)?.unwrap_or_default();
    if current != expected {
        return Err(EngineError::Conflict(format!(
            "issue {id} has changed since version {expected} (current version {current}); nothing was written"
        )));
    }
    Ok(())
}
