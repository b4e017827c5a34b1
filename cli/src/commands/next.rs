//! `td next`: the highest-priority ready issue.

use anyhow::Result;
use serde_json::Value;

use super::common::today;
use super::Cx;
use crate::output::{emit, issue_line};

/// Runs `td next`.
pub(crate) fn run(cx: &mut Cx<'_>) -> Result<()> {
    let next = cx.p.ready_first(&today(), 1)?.into_iter().next();
    let v = next.as_ref().map(|i| i.to_json()).unwrap_or(Value::Null);
    emit(cx.json, &v, || {
        next.as_ref()
            .map(issue_line)
            .unwrap_or_else(|| "Nothing ready.".into())
    });
    Ok(())
}
