//! `td search`: issues whose text, logs or comments contain a string.

use anyhow::Result;
use clap::Args as ClapArgs;
use serde_json::Value;
use td_engine::views::to_json;

use super::Cx;
use crate::output::{emit, issue_line, listing};

/// Arguments of `td search`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Text to find.
    pub text: String,
}

/// Runs `td search`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let hits = cx.p.search(&a.text)?;
    let human = listing(&hits, "No issues found.", |h| {
        format!("{}  (in {})", issue_line(&h.issue), h.matched_in.join(", "))
    });
    emit(
        cx.json,
        &Value::Array(hits.iter().map(to_json).collect()),
        || human,
    );
    Ok(())
}
