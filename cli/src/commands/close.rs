//! `td close`: the administrative close (duplicates, won't-fix, cleanup).

use anyhow::Result;
use clap::Args as ClapArgs;

use super::common::{for_each, Detail, IfMatch, Message};
use super::Cx;

/// Arguments of `td close`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Issue ids.
    #[arg(required = true)]
    pub ids: Vec<String>,
    #[command(flatten)]
    pub message: Message,
    /// Close your own work anyway, with the reason (recorded in the log).
    #[arg(long, value_name = "REASON")]
    pub self_close_exception: Option<String>,
    /// Admin close (duplicate, won't-fix, cleanup) past the review policy, with the reason.
    #[arg(long, value_name = "REASON")]
    pub admin: Option<String>,
    #[command(flatten)]
    pub if_match: IfMatch,
}

/// Runs `td close`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let exception = a.self_close_exception.as_deref().or(a.admin.as_deref());
    let detail = Detail::Current(cx.root);
    for_each(
        cx.json,
        &a.ids,
        ("closed", "already_closed"),
        |id| {
            cx.p.close(
                id,
                a.message.reason.as_deref(),
                exception,
                a.if_match.version(),
            )
        },
        detail,
    )
}
