//! `td focus`: makes an issue this session's focus.

use anyhow::Result;
use clap::Args as ClapArgs;
use serde_json::json;
use td_engine::model::normalize_issue_id;

use super::Cx;
use crate::output::emit;

/// Arguments of `td focus`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Issue id.
    pub id: String,
}

/// Runs `td focus`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let issue = cx.p.focus(&normalize_issue_id(&a.id))?;
    let v = json!({"action": "focused", "id": issue.id, "issue": issue.to_json()});
    emit(cx.json, &v, || format!("FOCUSED {}", issue.id));
    Ok(())
}
