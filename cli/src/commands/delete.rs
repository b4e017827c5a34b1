//! `td delete`: soft-deletes issues.

use anyhow::Result;

use super::common::{for_each, Detail};
use super::Cx;

pub(crate) use super::common::IdsIfMatch as Args;

/// Runs `td delete`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let detail = Detail::Current(cx.root);
    for_each(
        cx.json,
        &a.ids,
        ("deleted", "already_deleted"),
        |id| cx.p.delete(id, a.if_match.version()),
        detail,
    )
}
