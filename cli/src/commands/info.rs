//! `td info` (and `td stats`): the project at a glance; `td stats security|errors`.

use anyhow::Result;
use clap::{Args as ClapArgs, Subcommand};
use td_engine::views::to_json;

use super::Cx;
use crate::output::emit;

/// Arguments of `td stats`.
#[derive(Debug, ClapArgs)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct StatsArgs {
    #[command(subcommand)]
    pub cmd: Option<StatsCommand>,
}

/// `td stats` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum StatsCommand {
    /// Reviews recorded by their implementer and closes past the review policy.
    Security,
    /// Failed commands (see `td errors`).
    Errors,
    /// Command usage analytics: this td records none (see the message).
    #[command(visible_alias = "usage")]
    Analytics,
}

/// Runs `td stats`.
pub(crate) fn run_stats(a: &StatsArgs, cx: &mut Cx<'_>) -> Result<()> {
    match a.cmd {
        Some(StatsCommand::Security) => super::security::run(cx),
        Some(StatsCommand::Errors) => super::security::errors(cx),
        Some(StatsCommand::Analytics) => super::security::analytics(cx),
        None => run(cx),
    }
}

/// Runs `td info`.
pub(crate) fn run(cx: &mut Cx<'_>) -> Result<()> {
    let i = cx.p.info()?;
    emit(cx.json, &to_json(&i), || {
        let mut s = format!(
            "Project {}  (this machine {})\n\nIssues: {} live, {} deleted\n",
            i.project, i.machine, i.issues, i.deleted
        );
        for (status, n) in &i.issues_by_status {
            s.push_str(&format!("  {status:<12} {n}\n"));
        }
        s.push_str("\nRecords:\n");
        for (table, n) in &i.records {
            s.push_str(&format!("  {table:<14} {n}\n"));
        }
        s.push_str(&format!(
            "\nSessions here: {}   Members: {}\nChange log: {} changes from {} writers",
            i.sessions, i.members, i.changes, i.writers
        ));
        s
    });
    Ok(())
}
