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
    #[arg(required_unless_present = "all")]
    pub ids: Vec<String>,
    /// Approve every issue this session may review (`td reviewable`); the ones the review
    /// policy refuses are skipped and listed.
    #[arg(long, conflicts_with = "ids")]
    pub all: bool,
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
        visible_short_alias = 'c',
        value_name = "TEXT"
    )]
    pub reason: Option<String>,
    /// The review's decision: approved (the default) or changes_requested (with
    /// --record-only: records a review asking for changes; the issue stays in review).
    #[arg(long, value_enum, value_name = "DECISION")]
    pub decision: Option<Decision>,
    /// Record the approval without closing: in delegated and trusted modes any session then
    /// closes it with `td approve <id>` (td's close-after-review).
    #[arg(long)]
    pub record_only: bool,
    #[command(flatten)]
    pub if_match: IfMatch,
}

/// `--decision` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Decision {
    /// Approve.
    Approved,
    /// Ask for changes (with --record-only).
    #[value(name = "changes_requested")]
    ChangesRequested,
}

/// Runs `td approve`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let opts = ApproveOptions {
        reviewed_by: a.reviewed_by.clone(),
        self_review: a.self_review,
        reason: a.reason.clone(),
        record_only: a.record_only,
        changes_requested: a.decision == Some(Decision::ChangesRequested),
    };
    if a.all {
        return approve_all(&opts, cx);
    }
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

/// `td approve --all`: every reviewable issue the policy lets this session approve.
fn approve_all(opts: &ApproveOptions, cx: &mut Cx<'_>) -> Result<()> {
    let mut values = Vec::new();
    let mut lines = Vec::new();
    for issue in cx.p.reviewable()? {
        match cx.p.approve(&issue.id, opts, None) {
            Ok(o) => {
                lines.push(format!("APPROVED {}", issue.id));
                values.push(serde_json::json!({"action": "approved", "id": issue.id, "status": o.issue.status}));
            }
            Err(td_engine::EngineError::CannotSelfApprove(why)) => {
                lines.push(format!("skipped {}: {why}", issue.id));
                values
                    .push(serde_json::json!({"action": "skipped", "id": issue.id, "reason": why}));
            }
            Err(e) => return Err(e.into()),
        }
    }
    crate::output::emit(cx.json, &serde_json::Value::Array(values), || {
        if lines.is_empty() {
            "Nothing to approve.".into()
        } else {
            lines.join("\n")
        }
    });
    Ok(())
}
