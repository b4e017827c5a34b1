//! `td delete`: soft-deletes issues.

use anyhow::Result;

use super::common::{for_each, Detail};
use super::Cx;

/// Arguments of `td delete`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Issue ids.
    #[arg(required = true)]
    pub ids: Vec<String>,
    /// Accepted for td's scripts: this td never asks before a delete (it can be undone with
    /// `td restore`).
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Accepted for td's scripts (see --force).
    #[arg(short = 'y', long)]
    pub yes: bool,
    #[command(flatten)]
    pub if_match: super::common::IfMatch,
}

/// Runs `td delete`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let detail = Detail::Current(cx.root);
    for_each(
        cx.json,
        &a.ids,
        ("deleted", "already_deleted"),
        |id| cx.p.delete(id, a.if_match.version()),
        detail,
    )
}
