//! `td blocked`: blocked issues.

use anyhow::Result;
use td_engine::query::ListFilter;

use super::Cx;
use crate::output::print_issues;

/// Runs `td blocked`.
pub(crate) fn run(cx: &mut Cx<'_>) -> Result<()> {
    let f = ListFilter {
        status: vec!["blocked".into()],
        ..Default::default()
    };
    print_issues(&cx.p.issues(&f)?, cx.json);
    Ok(())
}
