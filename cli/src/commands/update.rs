//! `td update`: changes fields of issues.

use anyhow::Result;
use clap::Args as ClapArgs;

use super::common::{for_each, Detail, FieldArgs, IfMatch};
use super::Cx;

/// Arguments of `td update`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Issue ids.
    #[arg(required = true)]
    pub ids: Vec<String>,
    /// New title.
    #[arg(long)]
    pub title: Option<String>,
    #[command(flatten)]
    pub fields: FieldArgs,
    /// New status (td's transitions apply).
    #[arg(short = 's', long)]
    pub status: Option<String>,
    /// Append text to the description.
    #[arg(long)]
    pub append: Option<String>,
    #[command(flatten)]
    pub if_match: IfMatch,
}

/// Runs `td update`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let mut f = a.fields.fields()?;
    f.title = a.title.clone();
    f.status = a.status.clone();
    f.append = a.append.clone();
    let detail = Detail::Current(cx.root);
    for_each(
        cx.json,
        &a.ids,
        ("updated", "unchanged"),
        |id| cx.p.update(id, &f, a.if_match.version()),
        detail,
    )
}
