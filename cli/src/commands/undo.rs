//! `td undo`: takes back this session's latest action (an issue change, a dependency, a file link, a board or its positions, a handoff), as a new change that syncs.

use anyhow::Result;
use clap::Args as ClapArgs;
use td_engine::views::to_json;

use super::Cx;
use crate::output::emit;

/// Arguments of `td undo`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Only list what could be undone (as `td last`).
    #[arg(long)]
    pub list: bool,
}

/// Runs `td undo`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    if a.list {
        return super::last::run(&super::last::Args { n: 10 }, cx);
    }
    let done = cx.p.undo()?;
    let session = cx.p.session.id.clone();
    emit(cx.json, &to_json(&done), || match &done {
        Some(d) if d.kept.is_empty() => {
            format!("UNDONE: {} {} {}", d.action, d.entity_type, d.entity_id)
        }
        Some(d) => format!(
            "UNDONE: {} {} {}\nKept (changed since, not by this action): {}",
            d.action,
            d.entity_type,
            d.entity_id,
            d.kept.join(", ")
        ),
        None => format!("No actions to undo in current session ({session})"),
    });
    Ok(())
}
