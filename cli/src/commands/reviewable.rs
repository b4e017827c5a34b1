//! `td reviewable`: in-review issues this session may review under the review policy.

use anyhow::Result;

use super::Cx;
use crate::output::print_issues;

/// Runs `td reviewable`.
pub(crate) fn run(cx: &mut Cx<'_>) -> Result<()> {
    print_issues(&cx.p.reviewable()?, cx.json);
    Ok(())
}
