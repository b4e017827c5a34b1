//! `td files`: the files linked to an issue.

use anyhow::Result;
use clap::Args as ClapArgs;
use serde_json::Value;
use td_engine::model::normalize_issue_id;
use td_engine::views::to_json;

use super::link::file_line;
use super::Cx;
use crate::output::{emit, listing};

/// Arguments of `td files`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Issue id.
    pub id: String,
}

/// Runs `td files`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let id = normalize_issue_id(&a.id);
    let rows = cx.p.files(&id)?;
    let human = listing(&rows, &format!("No files linked to {id}."), file_line);
    emit(
        cx.json,
        &Value::Array(rows.iter().map(to_json).collect()),
        || human,
    );
    Ok(())
}
