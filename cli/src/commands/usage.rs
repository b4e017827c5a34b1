//! `td usage`: the context block an agent reads at session start.

use anyhow::Result;
use serde_json::{json, Value};
use td_engine::query::{Issue, ListFilter};

use super::Cx;
use crate::output::{emit, issue_line};

fn section(cx: &Cx<'_>, status: &str) -> Result<Vec<Issue>> {
    let f = ListFilter {
        status: vec![status.into()],
        ..Default::default()
    };
    Ok(cx.p.issues(&f)?)
}

fn as_json(list: &[Issue]) -> Value {
    Value::Array(list.iter().map(Issue::to_json).collect())
}

/// Runs `td usage`.
pub(crate) fn run(cx: &mut Cx<'_>) -> Result<()> {
    let p = &*cx.p;
    let focused = p.focused_issue()?;
    let in_progress = section(cx, "in_progress")?;
    let in_review = section(cx, "in_review")?;
    let reviewable = p.reviewable()?;
    let open: Vec<Issue> = section(cx, "open")?.into_iter().take(10).collect();
    let v = json!({"session": p.session.id, "focused_issue": focused, "in_progress": as_json(&in_progress),
        "in_review": as_json(&in_review), "reviewable": as_json(&reviewable), "open": as_json(&open)});
    emit(cx.json, &v, || {
        let mut s = format!("You are session {}.\n", p.session.id);
        if let Some(f) = &focused {
            s.push_str(&format!("Focused issue: {f}\n"));
        }
        for (title, list) in [
            ("In progress", &in_progress),
            ("Reviewable by you", &reviewable),
            ("Open (top 10)", &open),
        ] {
            s.push_str(&format!("\n{title}:\n"));
            if list.is_empty() {
                s.push_str("  (none)\n");
            }
            for i in list {
                s.push_str(&format!("  {}\n", issue_line(i)));
            }
        }
        s.push_str("\nCommands: td start <id> · td log \"msg\" · td handoff <id> --done ... · td review <id> · td approve <id>");
        s
    });
    Ok(())
}
