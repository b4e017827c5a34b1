//! td's wire shapes (`internal/serve/response.go`): every object `td serve` returns is built
//! here from the engine's read models, so the API has one place to drift from and its tests
//! pin it. Key order follows td's structs; times are RFC 3339 to the second, `Z` for UTC;
//! unset session and time fields are `null`, lists `[]`.

use serde::Serialize;
use serde_json::{json, Map, Value};
use td_engine::views::{BoardRow, CommentView, HandoffView, IssueView, LogView, ReviewView};

/// A stored td time as td's API writes it (`model::rfc3339_seconds`).
pub(crate) fn time(s: &str) -> Option<String> {
    td_engine::model::rfc3339_seconds(s)
}

fn opt_time(s: &Option<String>) -> Option<String> {
    s.as_deref().and_then(time)
}

fn null_if_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// td's `IssueDTO`.
#[derive(Serialize)]
pub(crate) struct Issue<'a> {
    id: &'a str,
    title: &'a str,
    description: &'a str,
    status: &'a str,
    #[serde(rename = "type")]
    issue_type: &'a str,
    priority: &'a str,
    points: i64,
    labels: &'a [String],
    parent_id: Option<&'a str>,
    acceptance: &'a str,
    sprint: &'a str,
    implementer_session: Option<&'a str>,
    creator_session: Option<&'a str>,
    reviewer_session: Option<&'a str>,
    review_requested_by_session: Option<&'a str>,
    closed_by_session: Option<&'a str>,
    created_at: Option<String>,
    updated_at: Option<String>,
    reviewed_at: Option<String>,
    closed_at: Option<String>,
    deleted_at: Option<String>,
    minor: bool,
    created_branch: Option<&'a str>,
    defer_until: Option<&'a str>,
    due_date: Option<&'a str>,
    defer_count: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    available_transitions: Option<Vec<&'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dependency_summary: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reviews: Option<Vec<Value>>,
}

impl<'a> Issue<'a> {
    /// The whole issue.
    pub(crate) fn full(i: &'a IssueView) -> Issue<'a> {
        Issue {
            id: &i.id,
            title: &i.title,
            description: &i.description,
            status: &i.status,
            issue_type: &i.issue_type,
            priority: &i.priority,
            points: i.points,
            labels: &i.labels,
            parent_id: null_if_empty(&i.parent_id),
            acceptance: &i.acceptance,
            sprint: &i.sprint,
            implementer_session: null_if_empty(&i.implementer_session),
            creator_session: null_if_empty(&i.creator_session),
            reviewer_session: null_if_empty(&i.reviewer_session),
            review_requested_by_session: null_if_empty(&i.review_requested_by_session),
            closed_by_session: null_if_empty(&i.closed_by_session),
            created_at: time(&i.created_at),
            updated_at: time(&i.updated_at),
            reviewed_at: opt_time(&i.reviewed_at),
            closed_at: opt_time(&i.closed_at),
            deleted_at: opt_time(&i.deleted_at),
            minor: i.minor,
            created_branch: null_if_empty(&i.created_branch),
            defer_until: i.defer_until.as_deref().filter(|d| !d.is_empty()),
            due_date: i.due_date.as_deref().filter(|d| !d.is_empty()),
            defer_count: i.defer_count,
            available_transitions: None,
            dependency_summary: None,
            reviews: None,
        }
    }

    /// As lists and board cards carry it: `description` and `acceptance` blanked, and the
    /// unresolved blockers when there are any.
    pub(crate) fn slim(i: &'a IssueView, blockers: Option<&[IssueView]>) -> Issue<'a> {
        let mut d = Issue::full(i);
        d.description = "";
        d.acceptance = "";
        d.dependency_summary = blockers.map(|b| {
            json!({"blockers": b.iter().map(|x| json!({
                "dep_id": dep_id(&i.id, &x.id),
                "issue_id": x.id,
                "title": x.title,
                "status": x.status,
                "relation_type": "depends_on",
            })).collect::<Vec<_>>()})
        });
        d
    }

    /// With the transitions open to the server's session.
    pub(crate) fn with_transitions(mut self, t: Vec<&'static str>) -> Self {
        self.available_transitions = (!t.is_empty()).then_some(t);
        self
    }

    /// With the review history (`?with=reviews`).
    pub(crate) fn with_reviews(mut self, r: &[ReviewView]) -> Self {
        self.reviews = (!r.is_empty()).then(|| r.iter().map(review).collect());
        self
    }

    /// As a JSON value.
    pub(crate) fn value(&self) -> Value {
        serde_json::to_value(self).expect("an issue always serializes")
    }
}

/// The full issue as a value.
pub(crate) fn issue(i: &IssueView) -> Value {
    Issue::full(i).value()
}

/// td's dependency id: `dep_` and 16 hex digits of the edge's hash (the same as ours).
pub(crate) fn dep_id(issue: &str, on: &str) -> String {
    td_engine::model::link_id("dep_", &format!("{issue}|{on}|depends_on"))
}

/// td's `DependencyDTO`.
pub(crate) fn dependency(issue: &str, on: &str) -> Value {
    json!({"dep_id": dep_id(issue, on), "issue_id": issue, "depends_on_id": on, "relation_type": "depends_on"})
}

/// td's `LogDTO`.
pub(crate) fn log(l: &LogView) -> Value {
    json!({
        "id": l.id, "issue_id": l.issue_id, "session_id": l.session_id,
        "work_session_id": l.work_session_id, "message": l.message, "type": l.log_type,
        "timestamp": time(&l.timestamp),
    })
}

/// td's `CommentDTO`.
pub(crate) fn comment(c: &CommentView) -> Value {
    json!({"id": c.id, "issue_id": c.issue_id, "session_id": c.session_id, "text": c.text, "created_at": time(&c.created_at)})
}

/// td's `HandoffDTO`.
pub(crate) fn handoff(h: &HandoffView) -> Value {
    let list = |v: &Value| if v.is_array() { v.clone() } else { json!([]) };
    json!({
        "id": h.id, "issue_id": h.issue_id, "session_id": h.session_id,
        "done": list(&h.done), "remaining": list(&h.remaining),
        "decisions": list(&h.decisions), "uncertain": list(&h.uncertain),
        "timestamp": time(&h.timestamp),
    })
}

/// td's `IssueReviewDTO` (optional keys left out when empty).
pub(crate) fn review(r: &ReviewView) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(r.id));
    m.insert("issue_id".into(), json!(r.issue_id));
    m.insert("reviewer_session".into(), json!(r.reviewer_session));
    m.insert("decision".into(), json!(r.decision));
    if !r.summary.is_empty() {
        m.insert("summary".into(), json!(r.summary));
    }
    if !r.requested_by_session.is_empty() {
        m.insert("requested_by_session".into(), json!(r.requested_by_session));
    }
    m.insert("created_at".into(), json!(time(&r.created_at)));
    if let Some(t) = opt_time(&r.superseded_at) {
        m.insert("superseded_at".into(), json!(t));
    }
    m.insert("self_review".into(), json!(r.self_review != 0));
    if !r.reviewed_by.is_empty() {
        m.insert("reviewed_by".into(), json!(r.reviewed_by));
    }
    Value::Object(m)
}

/// td's `BoardDTO`.
pub(crate) fn board(b: &BoardRow) -> Value {
    json!({
        "id": b.id, "name": b.name, "query": b.query, "is_builtin": b.is_builtin != 0,
        "view_mode": if b.view_mode.is_empty() { "swimlanes" } else { b.view_mode.as_str() },
        "last_viewed_at": opt_time(&b.last_viewed_at),
        "created_at": time(&b.created_at), "updated_at": time(&b.updated_at),
    })
}

/// td's `SessionDTO` from a `sessions` row.
pub(crate) fn session(row: &Map<String, Value>) -> Value {
    let s = |k: &str| row.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    json!({
        "id": s("id"), "name": s("name"), "branch": s("branch"), "agent_type": s("agent_type"),
        "agent_pid": row.get("agent_pid").and_then(Value::as_i64).unwrap_or(0),
        "context_id": s("context_id"),
        "previous_session_id": null_if_empty(&s("previous_session_id")),
        "started_at": time(&s("started_at")),
        "last_activity": time(&s("last_activity")),
    })
}
