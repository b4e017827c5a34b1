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
pub(crate) struct Args {
    /// Issue id.
    pub id: String,
    #[command(flatten)]
    pub lists: HandoffArgs,
}

/// Runs `td handoff`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let id = normalize_issue_id(&a.id);
    let hid = cx.p.handoff(&id, &a.lists.text())?;
    emit(
        cx.json,
        &json!({"action": "handoff", "id": hid, "issue_id": id}),
        || format!("HANDOFF RECORDED {id}"),
    );
    Ok(())
}
