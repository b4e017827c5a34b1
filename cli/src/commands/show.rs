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
    let several = out.len() > 1;
    for d in &out {
        let p = &*cx.p;
        let lookup = |id: &str| p.issue(id).ok();
        human.push(if a.short {
            issue_line(&d.issue)
        } else if several {
            // td: each issue's block with its last five logs, `---` between.
            issue_long(d, Some(5))
        } else {
            show_text(d, a.children, &lookup)
        });
    }
    let human = human.join("\n---\n");
    emit(
        cx.json || a.format.is_some(),
        &one_or_many(out.iter().map(show_json).collect()),
        || human,
    );
    Ok(())
}

/// A text from the log for a terminal line: line breaks continued under the first line (td's
/// `IndentContinuation`: 9 spaces and `| `). Other control characters are left for the output
/// to show escaped (td drops them; here hostile text stays visible).
fn continued(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .replace('\n', "\n         | ")
}

fn clock(timestamp: &str) -> String {
    td_engine::model::parse_timestamp(timestamp)
        .map(|t| t.format("%H:%M").to_string())
        .unwrap_or_default()
}

/// td's long block (`FormatIssueLong`): the title line, status, type and priority, labels,
/// dates, description, acceptance criteria, the current handoff, the session log (all of it,
/// or its last `logs` entries) and the review notice. Also `td list --long`.
pub(crate) fn issue_long(d: &IssueDetail, logs: Option<usize>) -> String {
    let i = &d.issue;
    let mut s = format!(
        "{}: {}\nStatus: [{}]\n",
        i.id,
        continued(&i.title),
        i.status
    );
    s.push_str(&format!(
        "Type: {} | Priority: {}",
        i.issue_type, i.priority
    ));
    if i.points > 0 {
        s.push_str(&format!(" | Points: {}", i.points));
    }
    if i.minor {
        s.push_str(" | Minor");
    }
    s.push('\n');
    if !i.labels.is_empty() {
        s.push_str(&format!("Labels: {}\n", i.labels.join(", ")));
    }
    if let Some(day) = i.defer_until.as_deref().filter(|d| !d.is_empty()) {
        s.push_str(&format!("Deferred until: {day}"));
        if i.defer_count > 0 {
            s.push_str(&format!(" (deferred {}x)", i.defer_count));
        }
        s.push('\n');
    }
    if let Some(day) = i.due_date.as_deref().filter(|d| !d.is_empty()) {
        s.push_str(&format!("Due: {day}\n"));
    }
    for (text, label) in [
        (&i.description, "Description"),
        (&i.acceptance, "Acceptance Criteria"),
    ] {
        if !text.is_empty() {
            let clean = text.replace("\r\n", "\n");
            s.push_str(&format!("\n{label}:\n{clean}\n"));
        }
    }
    if let Some(h) = &d.handoff {
        s.push_str(&format!(
            "\nCURRENT HANDOFF ({}, {}):\n",
            h.session_id,
            td_engine::model::time_ago(&h.timestamp)
        ));
        for (label, list) in [
            ("Done", &h.done),
            ("Remaining", &h.remaining),
            ("Decisions", &h.decisions),
            ("Uncertain", &h.uncertain),
        ] {
            let items: Vec<&str> = list
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x.as_str())
                .collect();
            if !items.is_empty() {
                s.push_str(&format!("  {label}:\n"));
                for item in items {
                    s.push_str(&format!("    - {}\n", continued(item)));
                }
            }
        }
    }
    if !d.logs.is_empty() {
        s.push_str("\nSESSION LOG:\n");
        let skip = logs.map_or(0, |n| d.logs.len().saturating_sub(n));
        for l in &d.logs[skip..] {
            let kind = if l.log_type == "progress" {
                String::new()
            } else {
                format!(" [{}]", l.log_type)
            };
            s.push_str(&format!(
                "  [{}]{kind} {}\n",
                clock(&l.timestamp),
                continued(&l.message)
            ));
        }
    }
    if i.status == "in_review" {
        s.push_str(
            "\nAWAITING REVIEW - requires an implementation-independent session to approve/reject\n",
        );
    }
    s
}

/// `td show` of one issue as td prints it: the long block, then who reviewed and closed it,
/// its recent reviews, the sessions involved, what it depends on and blocks, its children;
/// then this td's own: comments, unresolved conflicts and the document version.
pub(crate) fn show_text(
    d: &IssueDetail,
    children_flag: bool,
    lookup: &dyn Fn(&str) -> Option<td_engine::views::IssueView>,
) -> String {
    let i = &d.issue;
    let mut s = issue_long(d, None);
    let ago = |t: &Option<String>| t.as_deref().map(td_engine::model::time_ago);
    if !i.reviewer_session.is_empty()
        || !i.closed_by_session.is_empty()
        || i.reviewed_at.is_some()
        || i.closed_at.is_some()
    {
        s.push_str("\nREVIEW / CLOSE:\n");
        if !i.reviewer_session.is_empty() {
            s.push_str(&format!("  Reviewer of record: {}", i.reviewer_session));
            if let Some(t) = ago(&i.reviewed_at) {
                s.push_str(&format!(" (reviewed {t})"));
            }
            s.push('\n');
        }
        if !i.review_requested_by_session.is_empty() {
            s.push_str(&format!(
                "  Review requested by: {}\n",
                i.review_requested_by_session
            ));
        }
        if !i.closed_by_session.is_empty() {
            s.push_str(&format!("  Closed by: {}", i.closed_by_session));
            if let Some(t) = ago(&i.closed_at) {
                s.push_str(&format!(" (closed {t})"));
            }
            s.push('\n');
        }
    }
    if !d.reviews.is_empty() {
        s.push_str("\nRECENT REVIEWS:\n");
        for r in &d.reviews[d.reviews.len().saturating_sub(3)..] {
            let when = td_engine::model::parse_timestamp(&r.created_at)
                .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_default();
            let summary = if r.summary.is_empty() {
                "(no summary)".to_string()
            } else {
                continued(&r.summary)
            };
            let by = if !r.reviewed_by.is_empty() {
                format!(" (reviewed by {})", r.reviewed_by)
            } else if r.self_review != 0 {
                " (self-review)".into()
            } else {
                String::new()
            };
            let old = if r.superseded_at.is_some() {
                " [superseded]"
            } else {
                ""
            };
            s.push_str(&format!(
                "  [{when}] {} by {}: {summary}{by}{old}\n",
                r.decision, r.reviewer_session
            ));
        }
    }
    let mut involved: Vec<String> = Vec::new();
    if !i.implementer_session.is_empty() {
        involved.push(format!("  {} (implementer)", i.implementer_session));
    }
    if !i.reviewer_session.is_empty() && i.reviewer_session != i.implementer_session {
        involved.push(format!("  {} (reviewer)", i.reviewer_session));
    }
    if !involved.is_empty() {
        s.push_str(&format!("\nSESSIONS INVOLVED:\n{}\n", involved.join("\n")));
    }
    let one_liner = |id: &str| match lookup(id) {
        Some(x) => format!("  {} \"{}\" [{}]", x.id, continued(&x.title), x.status),
        None => format!("  {id}"),
    };
    for (label, ids) in [("BLOCKED BY", &d.depends_on), ("BLOCKS", &d.blocks)] {
        if !ids.is_empty() {
            s.push_str(&format!("\n{label}:\n"));
            for id in ids.iter() {
                s.push_str(&format!("{}\n", one_liner(id)));
            }
        }
    }
    if !d.children.is_empty() && (i.issue_type == "epic" || children_flag) {
        let label = if children_flag { "CHILDREN" } else { "STORIES" };
        s.push_str(&format!("\n{label}:\n"));
        let n = d.children.len();
        for (k, id) in d.children.iter().enumerate() {
            let branch = if k + 1 == n { "└──" } else { "├──" };
            if let Some(c) = lookup(id) {
                let mark = match c.status.as_str() {
                    "closed" => " ✓",
                    "in_review" => " ⧗",
                    "in_progress" => " ●",
                    "blocked" => " ✗",
                    _ => "",
                };
                s.push_str(&format!(
                    "  {branch} {} {}: {} [{}]{mark}\n",
                    c.issue_type,
                    c.id,
                    continued(&c.title),
                    c.status
                ));
            }
        }
    }
    if !d.comments.is_empty() {
        s.push_str("\nCOMMENTS:\n");
        for c in &d.comments {
            s.push_str(&format!(
                "  [{}] {}: {}\n",
                clock(&c.created_at),
                c.session_id,
                continued(&c.text)
            ));
        }
    }
    for c in &d.conflicts {
        let field = if c.field == "wf" { "status" } else { &c.field };
        s.push_str(&format!(
            "\n(!) conflict {} on {field}: kept {} by {}, overwritten {} by {} (td sync resolve {} --keep kept|overwritten)\n",
            c.id,
            c.kept.value,
            c.kept.session.as_deref().unwrap_or("?"),
            c.overwritten.value,
            c.overwritten.session.as_deref().unwrap_or("?"),
            c.id
        ));
    }
    s.push_str(&format!("\nVersion: {}", d.version));
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
