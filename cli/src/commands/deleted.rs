//! `td deleted`: soft-deleted issues.

use anyhow::Result;
use td_engine::query::{ListFilter, SortKey};

use super::Cx;
use crate::output::print_issues;

/// Runs `td deleted`.
pub(crate) fn run(cx: &mut Cx<'_>) -> Result<()> {
    let f = ListFilter {
        only_deleted: true,
        sort: SortKey::Id,
        ..Default::default()
    };
    print_issues(&cx.p.issues(&f)?, cx.json);
    Ok(())
}
