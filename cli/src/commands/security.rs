//! `td security`: reviews recorded by the session that implemented the work, and closes past
//! the review policy (td's security exception log, read from the synced reviews and logs).
//! `td errors`: td logs failed commands to a local file; this td does not (see `errors`).

use anyhow::Result;
use serde_json::Value;
use td_engine::views::to_json;

use super::Cx;
use crate::output::{emit, listing};

/// Runs `td security`.
pub(crate) fn run(cx: &mut Cx<'_>) -> Result<()> {
    let events = cx.p.security_events()?;
    let human = listing(&events, "No security exceptions.", |e| {
        format!(
            "{}  {:<22} {}  {}  {}",
            e.timestamp, e.kind, e.issue_id, e.session_id, e.detail
        )
    });
    emit(
        cx.json,
        &Value::Array(events.iter().map(to_json).collect()),
        || human,
    );
    Ok(())
}

/// Runs `td errors`: there is no failed-command log here; failures are reported when they
/// happen (with `--json`, as one error envelope).
pub(crate) fn errors(cx: &mut Cx<'_>) -> Result<()> {
    emit(cx.json, &Value::Array(Vec::new()), || {
        "This td keeps no log of failed commands: each failure is reported when it happens (with --json, as {\"error\":{\"code\",\"message\"}}). 'td doctor' checks the database and the change log.".into()
    });
    Ok(())
}

/// Runs `td stats analytics`: td records which commands and flags are used, locally; this td
/// records nothing about its use, so there is nothing to show.
pub(crate) fn analytics(cx: &mut Cx<'_>) -> Result<()> {
    emit(cx.json, &Value::Array(Vec::new()), || {
        "This td records no command usage analytics (nothing about how it is used is kept). 'td info' summarizes the project; 'td usage' shows what an agent needs at session start.".into()
    });
    Ok(())
}
