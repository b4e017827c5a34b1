//! `td query`: issues matching an expression.

use anyhow::Result;
use clap::Args as ClapArgs;

use super::Cx;
use crate::output::print_issues;

/// Arguments of `td query`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// The expression (quote it).
    pub expr: String,
}

/// Runs `td query`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    print_issues(&cx.p.query(&a.expr)?, cx.json);
    Ok(())
}
