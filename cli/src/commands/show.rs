//! `td show`: issues with their handoff, logs, comments, reviews and conflicts.

use anyhow::Result;
use clap::Args as ClapArgs;
use td_engine::model::normalize_issue_id;
use td_engine::views::IssueDetail;

use super::Cx;
use crate::output::{emit, issue_line, one_or_many};
use serde_json::{json, Value};
use td_engine::model::rfc3339_nanos;

/// Arguments of `td show`.
#[derive(Debug, Default, ClapArgs)]
pub(crate) struct Args {
    /// Issue ids (default: the focused issue).
    pub ids: Vec<String>,
    /// Detailed multi-line output (the default).
    #[arg(long, conflicts_with = "short")]
    pub long: bool,
    /// One line per issue.
    #[arg(long)]
    pub short: bool,
    /// `json` prints JSON, as --json does.
    #[arg(short = 'f', long, value_name = "FORMAT", value_parser = ["json"])]
    pub format: Option<String>,
    /// Also list the issue's children.
    #[arg(long)]
    pub children: bool,
    /// The issue with all its descendants (as `td tree`).
    #[arg(long)]
    pub tree: bool,
    /// Accepted for td's scripts: text is shown as written (no terminal markup).
    #[arg(short = 'm', long)]
    pub render_markdown: bool,
}

/// Runs `td show`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let ids = if a.ids.is_empty() {
        let focused = cx.p.focused_issue()?.ok_or_else(|| {
            crate::output::invalid(
                "no issue given and none focused: td show <id> (or 'td focus <id>' first)".into(),
            )
        })?;
        vec![focused]
    } else {
        a.ids.clone()
    };
    if a.tree {
        for id in &ids {
            super::tree::run(
                &super::tree::Args {
                    id: id.clone(),
                    depth: None,
                },
                cx,
            )?;
        }
        return Ok(());
    }
    let mut out = Vec::new();
    for id in &ids {
        out.push(cx.p.issue_detail(&normalize_issue_id(id))?);
    }
    let mut human = Vec::new();
    for d in &out {
        let mut t = if a.short {
            issue_line(&d.issue)
        } else {
            long_text(d)
        };
        if a.children && !d.children.is_empty() {
            t.push_str("Children:\n");
            for c in &d.children {
                if let Ok(i) = cx.p.issue(c) {
                    t.push_str(&format!("  {}\n", issue_line(&i)));
                }
            }
        }
        human.push(t);
    }
    let human = human.join("\n");
    emit(
        cx.json || a.format.is_some(),
        &one_or_many(out.iter().map(show_json).collect()),
        || human,
    );
    Ok(())
}

/// An issue as `td show` prints it: its line, texts, handoff, logs and reviews (also `td list
/// --long`).
pub(crate) fn long_text(d: &IssueDetail) -> String {
    let i = &d.issue;
    let mut s = format!("{}\n", issue_line(i));
    for (t, label) in [
        (&i.description, "Description"),
        (&i.acceptance, "Acceptance"),
    ] {
        if !t.is_empty() {
            s.push_str(&format!("{label}:\n  {}\n", t.replace('\n', "\n  ")));
        }
    }
    let fields = [
        ("parent_id", Some(&i.parent_id)),
        ("implementer_session", Some(&i.implementer_session)),
        ("reviewer_session", Some(&i.reviewer_session)),
        ("creator_session", Some(&i.creator_session)),
        ("created_at", Some(&i.created_at)),
        ("updated_at", Some(&i.updated_at)),
        ("closed_at", i.closed_at.as_ref()),
        ("deleted_at", i.deleted_at.as_ref()),
        ("version", Some(&d.version)),
    ];
    for (k, v) in fields {
        if let Some(t) = v.filter(|t| !t.is_empty()) {
            s.push_str(&format!("{k}: {t}\n"));
        }
    }
    for (k, ids) in [
        ("depends_on", &d.depends_on),
        ("blocks", &d.blocks),
        ("children", &d.children),
    ] {
        if !ids.is_empty() {
            s.push_str(&format!("{k}: {}\n", ids.join(", ")));
        }
    }
    if let Some(h) = &d.handoff {
        s.push_str(&format!("Handoff ({}):\n", h.timestamp));
        for (k, list) in [
            ("done", &h.done),
            ("remaining", &h.remaining),
            ("decisions", &h.decisions),
            ("uncertain", &h.uncertain),
        ] {
            for item in list.as_array().into_iter().flatten() {
                s.push_str(&format!("  {k}: {}\n", item.as_str().unwrap_or("")));
            }
        }
    }
    if !d.logs.is_empty() {
        s.push_str("Logs:\n");
        for l in &d.logs {
            s.push_str(&format!("  [{}] {}\n", l.log_type, l.message));
        }
    }
    if !d.comments.is_empty() {
        s.push_str("Comments:\n");
        for c in &d.comments {
            s.push_str(&format!("  [{}] {}\n", c.session_id, c.text));
        }
    }
    for c in &d.conflicts {
        let field = if c.field == "wf" { "status" } else { &c.field };
        s.push_str(&format!(
            "(!) conflict {} on {field}: kept {} by {}, overwritten {} by {} (td sync resolve {} --keep kept|overwritten)\n",
            c.id,
            c.kept.value,
            c.kept.session.as_deref().unwrap_or("?"),
            c.overwritten.value,
            c.overwritten.session.as_deref().unwrap_or("?"),
            c.id
        ));
    }
    if !d.reviews.is_empty() {
        s.push_str("Reviews:\n");
        for r in &d.reviews {
            s.push_str(&format!(
                "  {} by {} {}\n",
                r.decision, r.reviewer_session, r.created_at
            ));
        }
    }
    s
}

/// `td show --json` as td prints it (`cmd/show.go`): td's keys (`logs[].session`,
/// `handoff.session`, the last three reviews as `review_history`, empty strings present,
/// `labels` and `logs` always arrays, `handoff` null when there is none), plus this td's own
/// (`version`, `reviews`, `comments`, `depends_on`, `blocks`, `children`, `conflicts`), which
/// td's readers ignore.
pub(crate) fn show_json(d: &IssueDetail) -> Value {
    let mut v = d.to_json();
    let i = &d.issue;
    let o = v.as_object_mut().expect("an issue detail is an object");
    for (k, val) in [
        ("description", &i.description),
        ("parent_id", &i.parent_id),
        ("acceptance", &i.acceptance),
        (
            "review_requested_by_session",
            &i.review_requested_by_session,
        ),
        ("closed_by_session", &i.closed_by_session),
        ("sprint", &i.sprint),
    ] {
        o.insert(k.into(), json!(val));
    }
    o.insert("labels".into(), json!(i.labels));
    if i.defer_count == 0 {
        o.remove("defer_count");
    }
    o.insert(
        "logs".into(),
        Value::Array(
            d.logs
                .iter()
                .map(|l| {
                    json!({"id": l.id, "timestamp": rfc3339_nanos(&l.timestamp), "message": l.message,
                        "type": l.log_type, "session": l.session_id, "session_id": l.session_id,
                        "work_session_id": l.work_session_id})
                })
                .collect(),
        ),
    );
    let list = |x: &Value| if x.is_array() { x.clone() } else { json!([]) };
    o.insert(
        "handoff".into(),
        match &d.handoff {
            Some(h) => json!({
                "id": h.id, "timestamp": rfc3339_nanos(&h.timestamp), "session": h.session_id,
                "session_id": h.session_id, "done": list(&h.done), "remaining": list(&h.remaining),
                "decisions": list(&h.decisions), "uncertain": list(&h.uncertain),
            }),
            None => Value::Null,
        },
    );
    if !d.reviews.is_empty() {
        let start = d.reviews.len().saturating_sub(3);
        let history: Vec<Value> = d.reviews[start..]
            .iter()
            .map(|r| {
                let mut e = json!({
                    "id": r.id, "decision": r.decision, "reviewer_session": r.reviewer_session,
                    "summary": r.summary, "created_at": rfc3339_nanos(&r.created_at),
                    "requested_by": r.requested_by_session,
                    "superseded": r.superseded_at.is_some(), "self_review": r.self_review != 0,
                    "reviewed_by": r.reviewed_by,
                });
                if let Some(t) = &r.superseded_at {
                    e["superseded_at"] = json!(rfc3339_nanos(t));
                }
                e
            })
            .collect();
        o.insert("review_history".into(), Value::Array(history));
    }
    v
}
