//! `td reviewable`: in-review issues awaiting this session's review under the review policy
//! and, with `--include-approved`, those with a recorded approval it may close.

use anyhow::Result;
use clap::Args as ClapArgs;
use serde_json::{json, Value};
use td_engine::views::IssueView;

use super::Cx;
use crate::output::{emit, issue_line};

/// Arguments of `td reviewable`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Also show issues with a recorded approval that you can close (`td approve --record-only`
    /// then `td approve <id>`, in delegated and trusted modes).
    #[arg(long)]
    pub include_approved: bool,
}

/// Runs `td reviewable`. With `--json`, td's two buckets: `{"awaiting": [...],
/// "ready_to_close": [...]}`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let (awaiting, ready) = cx.p.review_queue(a.include_approved)?;
    let list = |v: &[IssueView]| Value::Array(v.iter().map(IssueView::to_json).collect());
    let v = json!({"awaiting": list(&awaiting), "ready_to_close": list(&ready)});
    emit(cx.json, &v, || {
        let mut s = String::new();
        if !awaiting.is_empty() {
            s.push_str(&format!("AWAITING YOUR REVIEW ({}):\n", awaiting.len()));
            for i in &awaiting {
                s.push_str(&format!(
                    "  {}  (impl: {})\n",
                    issue_line(i),
                    i.implementer_session
                ));
            }
        }
        if !ready.is_empty() {
            if !s.is_empty() {
                s.push('\n');
            }
            s.push_str(&format!(
                "READY TO CLOSE ({}) — approval already recorded:\n",
                ready.len()
            ));
            for i in &ready {
                s.push_str(&format!(
                    "  {}  (impl: {}, reviewed by: {})\n",
                    issue_line(i),
                    i.implementer_session,
                    i.reviewer_session
                ));
            }
        }
        if s.is_empty() {
            s = if a.include_approved {
                "No issues awaiting your review or ready to close".into()
            } else {
                "No issues awaiting your review (try --include-approved for reviewed issues you can close)".into()
            };
        }
        s.trim_end().to_string()
    });
    Ok(())
}
