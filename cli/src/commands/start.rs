//! `td start`: claims issues for this session and focuses the first. While the hub answers,
//! each claim is first granted online (docs/sync-loop.md, "Claims granted online").

use anyhow::Result;
use clap::Args as ClapArgs;

use super::common::{for_each, Detail, IfMatch, Reason};
use super::Cx;

/// Arguments of `td start`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Issue ids.
    #[arg(required = true)]
    pub ids: Vec<String>,
    /// Take over an issue another session holds, or start a blocked one.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub reason: Reason,
    #[command(flatten)]
    pub if_match: IfMatch,
}

/// Runs `td start`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let detail = Detail::Current(cx.root);
    for_each(
        cx.json,
        &a.ids,
        ("started", "already_started"),
        |id| {
            crate::hub::claim_online(cx.p, cx.root, id, a.force)?;
            cx.p.start(
                id,
                a.force,
                a.reason.reason.as_deref(),
                a.if_match.version(),
            )
        },
        detail,
    )
}
