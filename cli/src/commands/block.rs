//! `td block`: marks issues blocked.

use anyhow::Result;
use clap::Args as ClapArgs;

use super::common::{for_each, Detail, IfMatch, Reason};
use super::Cx;

/// Arguments of `td block`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Issue ids.
    #[arg(required = true)]
    pub ids: Vec<String>,
    #[command(flatten)]
    pub reason: Reason,
    #[command(flatten)]
    pub if_match: IfMatch,
}

/// Runs `td block`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let detail = Detail::Current(cx.root);
    for_each(
        cx.json,
        &a.ids,
        ("blocked", "already_blocked"),
        |id| {
            cx.p.block(id, a.reason.reason.as_deref(), a.if_match.version())
        },
        detail,
    )
}
