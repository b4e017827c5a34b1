//! `td due`: sets or clears an issue's due date.

use anyhow::Result;
use clap::Args as ClapArgs;

use super::common::{set_date, DateArgs};
use super::Cx;

/// Arguments of `td due`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    pub date: DateArgs,
}

/// Runs `td due`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    set_date(cx, &a.date, "due_date")
}
