//! `td last`: this session's most recent issue changes (what `td undo` would take back).

use anyhow::Result;
use clap::Args as ClapArgs;
use serde_json::Value;
use td_engine::views::to_json;

use super::Cx;
use crate::output::{emit, listing};

/// Arguments of `td last`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// How many.
    #[arg(short = 'n', long, default_value_t = 10)]
    pub n: usize,
}

/// Runs `td last`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let actions = cx.p.last_actions(a.n)?;
    let human = listing(&actions, "No actions in this session.", |x| {
        format!(
            "{}  {:<8} {}{}",
            x.timestamp,
            x.action,
            x.entity_id,
            if x.undone { "  (undone)" } else { "" }
        )
    });
    emit(
        cx.json,
        &Value::Array(actions.iter().map(to_json).collect()),
        || human,
    );
    Ok(())
}
