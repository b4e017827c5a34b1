//! `td reject`: sends reviewed issues back.

use anyhow::Result;
use clap::Args as ClapArgs;

use super::common::{for_each, Detail, IfMatch};
use super::Cx;

/// Arguments of `td reject`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Issue ids.
    #[arg(required = true)]
    pub ids: Vec<String>,
    /// Why (the review summary; required with --self-review; aliases --message, --comment,
    /// --note, --notes, -c).
    #[arg(
        short = 'm',
        long,
        visible_aliases = ["message", "comment", "note", "notes"],
        visible_short_alias = 'c',
        value_name = "TEXT"
    )]
    pub reason: Option<String>,
    #[command(flatten)]
    pub if_match: IfMatch,
}

/// Runs `td reject`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let detail = Detail::Current(cx.root);
    for_each(
        cx.json,
        &a.ids,
        ("rejected", "unchanged"),
        |id| cx.p.reject(id, a.reason.as_deref(), a.if_match.version()),
        detail,
    )
}
