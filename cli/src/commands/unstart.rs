//! `td unstart`: gives issues back.

use anyhow::Result;

use super::common::{for_each, Detail};
use super::Cx;

pub(crate) use super::common::IdsReason as Args;

/// Runs `td unstart`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let detail = Detail::None;
    for_each(
        cx.json,
        &a.ids,
        ("unstarted", "not_started"),
        |id| cx.p.unstart(id, a.reason.reason.as_deref()),
        detail,
    )
}
