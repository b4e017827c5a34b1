//! `td unstart`: gives issues back.

use anyhow::Result;
use clap::Args as ClapArgs;

use super::common::{for_each, Detail, Reason};
use super::Cx;

/// Arguments of `td unstart`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Issue ids.
    #[arg(required = true)]
    pub ids: Vec<String>,
    #[command(flatten)]
    pub reason: Reason,
}

/// Runs `td unstart`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let detail = Detail::None;
    for_each(
        cx.json,
        &a.ids,
        ("unstarted", "not_started"),
        |id| cx.p.unstart(id, a.reason.reason.as_deref()),
        detail,
    )
}
