//! `td approve`: approves reviewed issues (closing them), as the review policy allows.

use anyhow::Result;
use clap::Args as ClapArgs;
use td_engine::ops::workflow::ApproveOptions;

use super::common::{for_each, Detail, IfMatch};
use super::Cx;

/// Arguments of `td approve`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Issue ids.
    #[arg(required = true)]
    pub ids: Vec<String>,
    /// Who reviewed it (lets the implementer record an outside review; trusted mode).
    #[arg(long, value_name = "WHO")]
    pub reviewed_by: Option<String>,
    /// Approve your own work; needs --reason (trusted mode).
    #[arg(long)]
    pub self_review: bool,
    /// Why (the review summary; required with --self-review; aliases --message, --comment,
    /// --note, --notes, -c).
    #[arg(
        short = 'm',
        long,
        visible_aliases = ["message", "comment", "note", "notes"],
        short_alias = 'c',
        value_name = "TEXT"
    )]
    pub reason: Option<String>,
    /// Record the approval without closing: in delegated and trusted modes any session then
    /// closes it with `td approve <id>` (td's close-after-review).
    #[arg(long)]
    pub record_only: bool,
    #[command(flatten)]
    pub if_match: IfMatch,
}

/// Runs `td approve`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let opts = ApproveOptions {
        reviewed_by: a.reviewed_by.clone(),
        self_review: a.self_review,
        reason: a.reason.clone(),
        record_only: a.record_only,
    };
    let detail = Detail::Current(cx.root);
    for_each(
        cx.json,
        &a.ids,
        if a.record_only {
            ("review_recorded", "already_closed")
        } else {
            ("approved", "already_closed")
        },
        |id| cx.p.approve(id, &opts, a.if_match.version()),
        detail,
    )
}
