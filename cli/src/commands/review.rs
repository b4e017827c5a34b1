//! `td review`: submits issues for review.

use anyhow::Result;

use super::common::{for_each, Detail};
use super::Cx;

pub(crate) use super::common::IdsIfMatch as Args;

/// Runs `td review`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let detail = Detail::Current(cx.root);
    for_each(
        cx.json,
        &a.ids,
        ("submitted_for_review", "already_in_review"),
        |id| cx.p.review(id, a.if_match.version()),
        detail,
    )
}
