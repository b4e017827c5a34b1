//! `td unfocus`: clears this session's focus.

use anyhow::Result;
use serde_json::json;

use super::Cx;
use crate::output::emit;

/// Runs `td unfocus`.
pub(crate) fn run(cx: &mut Cx<'_>) -> Result<()> {
    let was = cx.p.unfocus()?;
    let action = if was.is_some() {
        "unfocused"
    } else {
        "not_focused"
    };
    emit(
        cx.json,
        &json!({"action": action, "id": was}),
        || match &was {
            Some(id) => format!("UNFOCUSED {id}"),
            None => "No focused issue.".into(),
        },
    );
    Ok(())
}
