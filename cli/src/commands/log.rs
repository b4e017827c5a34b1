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
    /// `[ID] MESSAGE`, `MESSAGE`, or `ID` with the message on stdin (default issue: the
    /// focused one).
    #[arg(num_args = 0..=2, value_name = "[ID] MESSAGE")]
    pub args: Vec<String>,
    /// The issue (default: the focused issue).
    #[arg(short = 'i', long, value_name = "ID")]
    pub issue: Option<String>,
    /// Alias for --issue.
    #[arg(short = 'T', long, value_name = "ID", conflicts_with = "issue")]
    pub task: Option<String>,
    #[command(flatten)]
    pub kind: LogTypeArgs,
}

/// A log's type: `-t/--type`, or td's shorthands (`--decision`, `--blocker`, …); shared by
/// `td log` and `td ws log`.
#[derive(Debug, Clone, Default, ClapArgs)]
pub(crate) struct LogTypeArgs {
    /// Log type.
    #[arg(short = 't', long = "type", value_name = "TYPE", value_enum)]
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

/// Whether an argument is an issue id (`td-` and hex), as td tells ids from messages.
pub(crate) fn is_issue_id(s: &str) -> bool {
    s.strip_prefix("td-")
        .is_some_and(|h| (4..=16).contains(&h.len()) && h.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The message piped on stdin, if stdin is not a terminal.
fn piped_message() -> Result<Option<String>> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        return Ok(None);
    }
    let text = super::common::read_text(std::path::Path::new("-"))?;
    Ok(Some(text.trim().to_string()).filter(|t| !t.is_empty()))
}

impl LogTypeArgs {
    /// The type the flags name (`progress` when none does).
    pub(crate) fn resolve(&self) -> &'static str {
        [
            (self.decision, LogType::Decision),
            (self.blocker, LogType::Blocker),
            (self.hypothesis, LogType::Hypothesis),
            (self.tried, LogType::Tried),
            (self.result, LogType::Result),
        ]
        .into_iter()
        .find(|(on, _)| *on)
        .map(|(_, t)| t)
        .or(self.log_type)
        .unwrap_or(LogType::Progress)
        .as_str()
    }
}

/// Runs `td log`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let t = a.kind.resolve();
    let flag = a.issue.clone().or_else(|| a.task.clone());
    let (issue, msg) = match a.args.as_slice() {
        [x, y] if is_issue_id(y) && !is_issue_id(x) => (Some(y.clone()), Some(x.clone())),
        [id, msg] => (Some(id.clone()), Some(msg.clone())),
        [id] if is_issue_id(id) => (Some(id.clone()), None),
        [msg] => (flag.clone(), Some(msg.clone())),
        _ => (flag.clone(), None),
    };
    let msg = match msg {
        Some(m) => m,
        None => piped_message()?.ok_or_else(|| {
            crate::output::invalid(
                "no message: td log [id] \"message\" (or pipe the message on stdin)".into(),
            )
        })?,
    };
    let issue = issue.map(|i| normalize_issue_id(&i));
    let (log_id, issue) = cx.p.log(issue.as_deref(), &msg, t)?;
    let v = json!({"action": "logged", "id": log_id, "issue_id": issue, "type": t});
    // td: `LOGGED td-x`, with the type when it is not a progress entry.
    emit(cx.json, &v, || match t {
        "progress" => format!("LOGGED {issue}"),
        other => format!("LOGGED {issue} [{other}]"),
    });
    Ok(())
}
