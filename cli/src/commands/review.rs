//! `td review`: submits issues for review.

use anyhow::Result;
use clap::Args as ClapArgs;

use super::common::{for_each, Detail, IfMatch, Message};
use super::Cx;

/// Arguments of `td review`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Issue ids.
    #[arg(required = true)]
    pub ids: Vec<String>,
    #[command(flatten)]
    pub message: Message,
    /// Mark the issue minor first (its implementer may then approve it; no handoff needed).
    #[arg(long)]
    pub minor: bool,
    #[command(flatten)]
    pub if_match: IfMatch,
}

/// Runs `td review`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let detail = Detail::Current(cx.root);
    for_each(
        cx.json,
        &a.ids,
        ("review_requested", "already_in_review"),
        |id| {
            let reason = a.message.reason.as_deref();
            if a.minor {
                cx.p.review_minor(id, reason, a.if_match.version())
            } else {
                cx.p.review(id, reason, a.if_match.version())
            }
        },
        detail,
    )
}
