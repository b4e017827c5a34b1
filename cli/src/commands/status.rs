//! `td status`: td's review dashboard for this session (focus, what awaits its review, what it
//! may close, its work in review, what is blocked, what is ready); with `--db`, the database
//! and hub sync state.

use anyhow::Result;
use clap::Args as ClapArgs;
use serde_json::{json, Value};
use td_engine::model::{rfc3339_nanos, time_ago};

use super::Cx;
use crate::output::emit;

/// Arguments of `td status`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Show the database and hub sync state instead (this td's own).
    #[arg(long)]
    pub db: bool,
}

/// Runs `td status`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    if a.db {
        return crate::hub::status_db(cx.p, cx.root, cx.json);
    }
    let p = &*cx.p;
    let me = p.session.id.clone();
    let d = p.status_dashboard()?;
    let issue = |i: &td_engine::views::IssueView| i.to_json();
    let mut v = json!({
        "session": me,
        "in_review": {
            "reviewable_by_you": d.reviewable_by_you.iter().map(issue).collect::<Vec<_>>(),
            "ready_to_close": d.ready_to_close.iter().map(|(i, _)| issue(i)).collect::<Vec<_>>(),
            "implemented_by_you": d.other_in_review.iter().map(issue).collect::<Vec<_>>(),
            "total": d.in_review_total,
        },
        "blocked": d.blocked.iter().map(|(i, deps)| json!({"issue": issue(i), "depends_on": deps})).collect::<Vec<_>>(),
        "ready_to_start": d.ready_to_start.iter().map(issue).collect::<Vec<_>>(),
    });
    if let Some((i, n, last)) = &d.focused {
        v["focused"] = json!({"issue": issue(i), "log_count": n,
            "last_log": last.as_deref().map(rfc3339_nanos).map(Value::from).unwrap_or(Value::Null)});
    }
    emit(cx.json, &v, || dashboard(&me, &d));
    Ok(())
}

/// td's human dashboard (`outputStatusDashboard`): each section followed by a blank line.
fn dashboard(me: &str, d: &td_engine::ops::task_list::StatusDashboard) -> String {
    let mut s = format!("SESSION: {me}\n\n");
    if let Some((i, n, last)) = &d.focused {
        s.push_str(&format!(
            "FOCUSED: {} \"{}\" [{}]\n",
            i.id, i.title, i.status
        ));
        if let (true, Some(t)) = (*n > 0, last) {
            s.push_str(&format!("  └── {n} logs, last: {}\n", time_ago(t)));
        }
        s.push('\n');
    }
    let mine: Vec<_> = d
        .other_in_review
        .iter()
        .filter(|i| i.implementer_session == me)
        .collect();
    if !d.reviewable_by_you.is_empty() {
        s.push_str(&format!(
            "AWAITING YOUR REVIEW ({}):\n",
            d.reviewable_by_you.len()
        ));
        for i in &d.reviewable_by_you {
            s.push_str(&format!("  {} \"{}\"\n", i.id, i.title));
        }
        s.push('\n');
    }
    if !d.ready_to_close.is_empty() {
        s.push_str(&format!("READY TO CLOSE ({}):\n", d.ready_to_close.len()));
        for (i, by) in &d.ready_to_close {
            s.push_str(&format!("  {} \"{}\" (reviewed by {by})\n", i.id, i.title));
        }
        s.push('\n');
    }
    if !mine.is_empty() {
        s.push_str(&format!(
            "PENDING REVIEW (your implementation, {}):\n",
            mine.len()
        ));
        for i in &mine {
            s.push_str(&format!("  {} \"{}\"\n", i.id, i.title));
        }
        s.push('\n');
    }
    if !d.blocked.is_empty() {
        s.push_str(&format!("BLOCKED ({}):\n", d.blocked.len()));
        for (i, deps) in &d.blocked {
            let waiting = if deps.is_empty() {
                String::new()
            } else {
                format!(" waiting on {}", deps.join(", "))
            };
            s.push_str(&format!("  {} \"{}\"{waiting}\n", i.id, i.title));
        }
        s.push('\n');
    }
    if !d.ready_to_start.is_empty() {
        s.push_str(&format!("READY TO START ({}):\n", d.ready_to_start.len()));
        for i in &d.ready_to_start {
            s.push_str(&format!("  {} \"{}\" {}\n", i.id, i.title, i.priority));
        }
        s.push('\n');
    }
    if d.focused.is_none()
        && d.in_review_total == 0
        && d.blocked.is_empty()
        && d.ready_to_start.is_empty()
    {
        return "No active work. Run 'td next' to see the next issue to start.".into();
    }
    s.trim_end_matches('\n').to_string()
}
