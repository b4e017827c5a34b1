//! `td comment`: a comment on an issue.

use anyhow::Result;
use clap::Args as ClapArgs;
use serde_json::json;
use td_engine::model::normalize_issue_id;

use super::Cx;
use crate::output::emit;

/// Arguments of `td comment`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Issue id.
    pub id: String,
    /// Comment text.
    pub text: String,
}

/// Runs `td comment`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let id = normalize_issue_id(&a.id);
    let cid = cx.p.comment(&id, &a.text)?;
    emit(
        cx.json,
        &json!({"action": "commented", "id": cid, "issue_id": id}),
        || format!("COMMENT ADDED {id}"),
    );
    Ok(())
}
