//! `td rebuild`: recomputes every td table from the change log.

use anyhow::Result;
use serde_json::json;

use super::Cx;
use crate::output::emit;

/// Runs `td rebuild`.
pub(crate) fn run(cx: &mut Cx<'_>) -> Result<()> {
    let n = cx.p.store.rebuild()?;
    emit(cx.json, &json!({"action": "rebuilt", "changes": n}), || {
        format!("REBUILT from {n} changes")
    });
    Ok(())
}
