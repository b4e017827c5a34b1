//! `td reopen`: reopens closed issues.

use anyhow::Result;

use super::common::{for_each, Detail};
use super::Cx;

pub(crate) use super::common::IdsReason as Args;

/// Runs `td reopen`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let detail = Detail::None;
    for_each(
        cx.json,
        &a.ids,
        ("reopened", "already_open"),
        |id| cx.p.reopen(id, a.reason.reason.as_deref()),
        detail,
    )
}
