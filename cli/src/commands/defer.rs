//! `td defer`: hides an issue from `ready` until a date, or clears it.

use anyhow::Result;
use clap::Args as ClapArgs;

use super::common::{set_date, DateArgs};
use super::Cx;

/// Arguments of `td defer`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    pub date: DateArgs,
}

/// Runs `td defer`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    set_date(cx, &a.date, "defer_until")
}
