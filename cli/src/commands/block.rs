//! `td block`: marks issues blocked.

use anyhow::Result;

use super::common::{for_each, Detail};
use super::Cx;

pub(crate) use super::common::IdsIfMatch as Args;

/// Runs `td block`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let detail = Detail::Current(cx.root);
    for_each(
        cx.json,
        &a.ids,
        ("blocked", "already_blocked"),
        |id| cx.p.block(id, a.if_match.version()),
        detail,
    )
}
