//! `td restore`: undoes a soft delete.

use anyhow::Result;

use super::common::{for_each, Detail};
use super::Cx;

pub(crate) use super::common::Ids as Args;

/// Runs `td restore`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let detail = Detail::None;
    for_each(
        cx.json,
        &a.ids,
        ("restored", "not_deleted"),
        |id| cx.p.restore(id),
        detail,
    )
}
