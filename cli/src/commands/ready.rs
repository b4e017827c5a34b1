//! `td ready`: open issues with every dependency closed and not deferred.

use anyhow::Result;

use super::common::today;
use super::Cx;
use crate::output::print_issues;

/// Runs `td ready`.
pub(crate) fn run(cx: &mut Cx<'_>) -> Result<()> {
    print_issues(&cx.p.ready(&today())?, cx.json);
    Ok(())
}
