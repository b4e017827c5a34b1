//! `td log`: a progress entry on an issue (default: the focused one).

use anyhow::Result;
use clap::{Args as ClapArgs, ValueEnum};
use serde_json::json;
use td_engine::model::normalize_issue_id;

use super::Cx;
use crate::output::emit;

/// td's log types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogType {
    /// Progress made.
    Progress,
    /// A security note.
    Security,
    /// Something in the way.
    Blocker,
    /// A decision taken.
    Decision,
    /// A guess being tested.
    Hypothesis,
    /// Something tried.
    Tried,
    /// An outcome.
    Result,
    /// Coordination between agents.
    Orchestration,
}

impl LogType {
    /// td's spelling.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            LogType::Progress => "progress",
            LogType::Security => "security",
            LogType::Blocker => "blocker",
            LogType::Decision => "decision",
            LogType::Hypothesis => "hypothesis",
            LogType::Tried => "tried",
            LogType::Result => "result",
            LogType::Orchestration => "orchestration",
        }
    }
}

/// Arguments of `td log`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Optional issue id, then the message.
    #[arg(required = true, num_args = 1..=2, value_name = "[ID] MESSAGE")]
    pub args: Vec<String>,
    /// Log type.
    #[arg(long = "type", value_name = "TYPE", value_enum)]
    pub log_type: Option<LogType>,
    /// Shorthand for --type decision.
    #[arg(long)]
    pub decision: bool,
    /// Shorthand for --type blocker.
    #[arg(long)]
    pub blocker: bool,
    /// Shorthand for --type hypothesis.
    #[arg(long)]
    pub hypothesis: bool,
    /// Shorthand for --type tried.
    #[arg(long)]
    pub tried: bool,
    /// Shorthand for --type result.
    #[arg(long)]
    pub result: bool,
}

/// Runs `td log`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let t = [
        (a.decision, LogType::Decision),
        (a.blocker, LogType::Blocker),
        (a.hypothesis, LogType::Hypothesis),
        (a.tried, LogType::Tried),
        (a.result, LogType::Result),
    ]
    .into_iter()
    .find(|(on, _)| *on)
    .map(|(_, t)| t)
    .or(a.log_type)
    .unwrap_or(LogType::Progress)
    .as_str();
    let (issue, msg) = match a.args.as_slice() {
        [id, msg] => (Some(normalize_issue_id(id)), msg.clone()),
        [msg] => (None, msg.clone()),
        _ => unreachable!("clap enforces 1..=2 values"),
    };
    let (log_id, issue) = cx.p.log(issue.as_deref(), &msg, t)?;
    let v = json!({"action": "logged", "id": log_id, "issue_id": issue, "type": t});
    emit(cx.json, &v, || format!("LOGGED {issue} ({t})"));
    Ok(())
}
