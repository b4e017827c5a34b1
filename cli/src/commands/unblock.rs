//! `td unblock`: unblocks issues.

use anyhow::Result;

use super::common::{for_each, Detail};
use super::Cx;

pub(crate) use super::common::IdsReason as Args;

/// Runs `td unblock`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let detail = Detail::None;
    for_each(
        cx.json,
        &a.ids,
        ("unblocked", "not_blocked"),
        |id| cx.p.unblock(id, a.reason.reason.as_deref()),
        detail,
    )
}
