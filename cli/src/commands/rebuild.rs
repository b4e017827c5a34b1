//! `td rebuild`: recomputes every td table from the change log.

use anyhow::Result;
use serde_json::json;

use super::Cx;
use crate::output::emit;

/// Arguments of `td rebuild`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Rebuild even though rows were edited outside td: those edits are reverted (see them
    /// with 'td doctor'; keep issues' edits with 'td doctor --adopt-edits' first).
    #[arg(long)]
    pub discard_outside_edits: bool,
}

/// Runs `td rebuild`: refused while rows edited outside td would be silently reverted.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    if !a.discard_outside_edits {
        let (edits, _) = cx.p.store.outside_edits()?;
        if !edits.is_empty() {
            return Err(crate::output::invalid(format!(
                "{} row(s) were edited outside td and a rebuild would revert them (see 'td doctor'): adopt issues' edits with 'td doctor --adopt-edits', or pass --discard-outside-edits to revert them",
                edits.len()
            )));
        }
    }
    let n = cx.p.store.rebuild()?;
    emit(cx.json, &json!({"action": "rebuilt", "changes": n}), || {
        format!("REBUILT from {n} changes")
    });
    Ok(())
}
