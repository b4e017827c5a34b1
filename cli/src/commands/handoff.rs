//! `td handoff`: what was done, what remains, decisions, open questions.

use anyhow::Result;
use clap::Args as ClapArgs;
use serde_json::json;
use td_engine::model::normalize_issue_id;

use super::common::HandoffArgs;
use super::Cx;
use crate::output::emit;

/// Arguments of `td handoff`.
#[derive(Debug, ClapArgs)]
#[command(
    after_help = "Examples:\n  td handoff td-abc123 --done \"parser\" --remaining \"tests\"\n  td handoff \"stopping here\"            (the focused issue; the message is recorded as done)\n  td handoff td-abc123 --done @done.txt   (one item per line)\n  echo \"item\" | td handoff td-abc123 --remaining -"
)]
pub(crate) struct Args {
    /// `ID [MESSAGE]`, or `MESSAGE` alone for the focused issue.
    #[arg(num_args = 0..=2, value_name = "ID [MESSAGE]")]
    pub args: Vec<String>,
    #[command(flatten)]
    pub lists: HandoffArgs,
}

impl Args {
    /// The issue named, if the first argument is one.
    pub(crate) fn issue(&self) -> Option<String> {
        self.args
            .first()
            .filter(|a| super::log::is_issue_id(a))
            .map(|a| normalize_issue_id(a))
    }
}

/// Runs `td handoff`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let (id, message) = match (a.issue(), a.args.as_slice()) {
        (Some(id), [_, msg]) => (id, Some(msg.clone())),
        (Some(id), _) => (id, None),
        (None, [msg]) => (
            cx.p.focused_issue()?.ok_or_else(|| {
                crate::output::invalid(
                    "no issue given and none focused: td handoff <id> [message]".into(),
                )
            })?,
            Some(msg.clone()),
        ),
        (None, []) => {
            return Err(crate::output::invalid(
                "td handoff <id> [message] --done \"...\" --remaining \"...\"".into(),
            ))
        }
        (None, _) => {
            return Err(crate::output::invalid(format!(
                "{} is not an issue id: td handoff <id> [message]",
                a.args[0]
            )))
        }
    };
    let mut text = a.lists.text()?;
    text.done.extend(message);
    let hid = cx.p.handoff(&id, &text)?;
    emit(
        cx.json,
        &json!({"action": "handoff", "id": hid, "issue_id": id}),
        || format!("HANDOFF RECORDED {id}\n\nNext: `td review {id}` to submit for review"),
    );
    Ok(())
}
