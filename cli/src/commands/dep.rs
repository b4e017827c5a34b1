//! `td dep`: dependencies between issues.

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;
use td_engine::model::normalize_issue_id;

use super::Cx;
use crate::output::emit;

/// `td dep`.
#[derive(Debug, Subcommand)]
pub(crate) enum DepCommand {
    /// ISSUE depends on DEPENDS_ON.
    Add {
        /// The dependent issue.
        issue: String,
        /// The issue it waits for.
        depends_on: String,
    },
    /// Remove a dependency.
    #[command(visible_alias = "remove")]
    Rm {
        /// The dependent issue.
        issue: String,
        /// The issue it waited for.
        depends_on: String,
    },
}

/// Runs one `td dep` subcommand.
pub(crate) fn run(d: &DepCommand, cx: &mut Cx<'_>) -> Result<()> {
    let (p, json) = (&mut *cx.p, cx.json);
    let (issue, on, added) = match d {
        DepCommand::Add { issue, depends_on } => {
            let (i, o) = (normalize_issue_id(issue), normalize_issue_id(depends_on));
            let added = p.dep_add(&i, &o)?;
            (i, o, Some(added))
        }
        DepCommand::Rm { issue, depends_on } => {
            let (i, o) = (normalize_issue_id(issue), normalize_issue_id(depends_on));
            let removed = p.dep_rm(&i, &o)?;
            (i, o, if removed { None } else { Some(false) })
        }
    };
    let action = match (d, added) {
        (DepCommand::Add { .. }, Some(true)) => "added",
        (DepCommand::Add { .. }, _) => "already_exists",
        (DepCommand::Rm { .. }, None) => "removed",
        (DepCommand::Rm { .. }, _) => "not_found",
    };
    emit(
        json,
        &json!({"action": action, "issue_id": issue, "depends_on_id": on}),
        || match action {
            "added" => format!("ADDED {issue} depends on {on}"),
            "removed" => format!("REMOVED {issue} no longer depends on {on}"),
            "already_exists" => format!("{issue} already depends on {on}"),
            _ => format!("{issue} did not depend on {on}"),
        },
    );
    Ok(())
}
