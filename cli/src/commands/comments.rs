//! `td comments`: an issue's comments (default: the focused issue); `td comments add`.

use anyhow::Result;
use clap::{Args as ClapArgs, Subcommand};
use serde_json::Value;
use td_engine::model::normalize_issue_id;
use td_engine::views::to_json;

use super::Cx;
use crate::output::{emit, listing};

/// Arguments of `td comments`.
#[derive(Debug, ClapArgs)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct Args {
    #[command(subcommand)]
    pub cmd: Option<CommentsCommand>,
    /// Issue id (default: the focused issue).
    pub id: Option<String>,
}

/// `td comments add`.
#[derive(Debug, Subcommand)]
pub(crate) enum CommentsCommand {
    /// Comment on an issue (the same as `td comment`).
    Add(super::comment::Args),
}

impl Args {
    /// Under autosync: listing pulls first, adding pushes after.
    pub(crate) fn autosync(&self) -> crate::hub::Auto {
        match self.cmd {
            Some(CommentsCommand::Add(_)) => crate::hub::Auto::PushAfter,
            None => crate::hub::Auto::PullBefore,
        }
    }
}

/// Runs `td comments`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    if let Some(CommentsCommand::Add(add)) = &a.cmd {
        return super::comment::run(add, cx);
    }
    let id = match &a.id {
        Some(id) => normalize_issue_id(id),
        None => cx.p.focused_issue()?.ok_or_else(|| {
            crate::output::invalid("no issue given and none focused: td comments <id>".into())
        })?,
    };
    let comments = cx.p.issue_detail(&id)?.comments;
    let human = listing(&comments, &format!("No comments on {id}."), |c| {
        format!("{}  {}  {}", c.created_at, c.session_id, c.text)
    });
    emit(
        cx.json,
        &Value::Array(comments.iter().map(to_json).collect()),
        || human,
    );
    Ok(())
}
