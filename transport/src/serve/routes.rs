//! td's `/v1` routes. Each parses the request, calls one engine operation on the blocking
//! pool, and renders the engine's read model in td's envelope.

use std::collections::HashMap;
use std::convert::Infallible;

use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use futures_util::stream::Stream;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use td_engine::model::Status;
use td_engine::ops::issues::IssueFields;
use td_engine::ops::task_list::{transition_from, SearchMode, TRANSITIONS};
use td_engine::ops::workflow::ApproveOptions;
use td_engine::query::{ListFilter, SortKey};
use td_engine::views::to_json;
use td_engine::{model, Project};

use super::{dto, ok, ApiError, AppState};

type ApiResult = Result<Response, ApiError>;

/// Runs `f` on the project on tokio's blocking pool; `write` wakes the event poller after.
async fn with_project<T: Send + 'static>(
    s: &AppState,
    write: bool,
    f: impl FnOnce(&mut Project) -> td_engine::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let project = s.project.clone();
    let out = tokio::task::spawn_blocking(move || {
        // A request that panicked poisoned the lock: its transaction rolled back when it
        // unwound, so the project is whole and later requests go on (one request's panic is
        // its own 500, never the server's end).
        let mut p = project.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut p)
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    if write {
        s.poke.notify_one();
    }
    Ok(out?)
}

fn if_match(h: &HeaderMap) -> Option<String> {
    h.get("if-match")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().trim_matches('"').to_string())
        .filter(|v| !v.is_empty())
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "validation_error", msg)
}

/// The JSON body, or td's validation error naming what is wrong with it.
/// A request body as received: refused past [`MAX_BODY`] before it is read whole.
type Body = Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>;

/// The largest request body accepted (an issue's texts fit many times over).
pub(crate) const MAX_BODY: usize = 1 << 20;

/// A request body td's server decodes strictly: empty or not JSON is 400 "invalid JSON: …";
/// fields this route does not know are ignored, as Go's decoder does.
fn strict<T: for<'de> Deserialize<'de>>(raw: Body) -> Result<T, ApiError> {
    let bytes = read(raw)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(bad("invalid JSON: EOF"));
    }
    serde_json::from_slice(&bytes).map_err(|e| bad(format!("invalid JSON: {e}")))
}

/// A body td's transition routes read leniently: anything that does not decode is no body.
fn lenient<T: for<'de> Deserialize<'de> + Default>(raw: Body) -> Result<T, ApiError> {
    let bytes = read(raw)?;
    Ok(serde_json::from_slice(&bytes).unwrap_or_default())
}

fn read(raw: Body) -> Result<axum::body::Bytes, ApiError> {
    raw.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "validation_error",
                format!("request body larger than {} KiB", MAX_BODY / 1024),
            )
        } else {
            bad(format!("cannot read the request body: {e}"))
        }
    })
}

/// One of td's `FieldError`s: `value` and `expected` left out when empty.
fn field(name: &str, rule: &str, value: Value, expected: Value, message: String) -> Value {
    let mut f = json!({"field": name, "rule": rule, "message": message});
    let empty = |v: &Value| {
        v.is_null() || v.as_str() == Some("") || v.as_i64() == Some(0) || v.as_bool() == Some(false)
    };
    if !empty(&value) {
        f["value"] = value;
    }
    if !empty(&expected) {
        f["expected"] = expected;
    }
    f
}

/// td's 400 with `details.fields`, or `Ok` when there are none.
fn fields_ok(fields: Vec<Value>) -> Result<(), ApiError> {
    if fields.is_empty() {
        return Ok(());
    }
    let mut e = bad("Validation failed");
    e.details = Some(json!({ "fields": fields }));
    Err(e)
}

/// The issue `id` (deleted ones too, as td's `GetIssue`), or td's 404 "issue not found".
fn existing(p: &Project, id: &str) -> td_engine::Result<td_engine::views::IssueView> {
    p.find_issue(id)?
        .ok_or_else(|| td_engine::EngineError::NotFound(format!("issue not found: {id}")))
}

fn not_found_issue(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("issue not found: {id}"),
    )
}

/// td's `/health`: the server's session and the change token (the log's position, as the
/// live events carry it; a string, as td's), plus our `version`.
async fn health(State(s): State<AppState>) -> ApiResult {
    let (session, token) = with_project(&s, false, |p| {
        Ok((p.session.id.clone(), p.store.log_position()?))
    })
    .await?;
    Ok(ok(
        StatusCode::OK,
        json!({"status": "ok", "session_id": session, "change_token": token.to_string(), "version": env!("CARGO_PKG_VERSION")}),
    ))
}

/// A query string with repeated keys kept (`status=a&status=b`).
type Params = Vec<(String, String)>;

fn all_of(q: &Params, key: &str) -> Vec<String> {
    q.iter()
        .filter(|(k, _)| k == key)
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(String::from)
        .collect()
}

fn first_of<'a>(q: &'a Params, key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The parameters td's `GET /v1/issues` takes (every other one is ignored, as td does).
struct ListParams {
    filter: ListFilter,
    labels: Vec<String>,
    priorities: Vec<String>,
    search: Option<(String, SearchMode)>,
    limit: usize,
    offset: usize,
}

fn list_params(q: &Params) -> Result<ListParams, ApiError> {
    let mut fields = Vec::new();
    let num = |k: &str| first_of(q, k).and_then(|v| v.trim().parse::<i64>().ok());
    let limit = num("limit").unwrap_or(200);
    if !(1..=1000).contains(&limit) {
        fields.push(field(
            "limit",
            "range",
            json!(limit),
            json!("1-1000"),
            "limit must be between 1 and 1000".into(),
        ));
    }
    let offset = num("offset").unwrap_or(0);
    if offset < 0 {
        fields.push(field(
            "offset",
            "min",
            json!(offset),
            json!(0),
            "offset must be >= 0".into(),
        ));
    }
    fields_ok(fields)?;
    // Unknown statuses and types are dropped, as td does.
    let status: Vec<String> = all_of(q, "status")
        .into_iter()
        .filter_map(|s| {
            let s = s.replace('-', "_");
            let s = if s == "review" {
                "in_review".to_string()
            } else {
                s
            };
            Status::parse(&s).ok().map(|s| s.as_str().to_string())
        })
        .collect();
    let include_closed = first_of(q, "include_closed") == Some("true");
    let types: Vec<String> = all_of(q, "type")
        .into_iter()
        .map(|t| if t == "story" { "feature".into() } else { t })
        .filter(|t| ["bug", "feature", "task", "epic", "chore"].contains(&t.as_str()))
        .collect();
    let mut labels = all_of(q, "labels");
    if labels.is_empty() {
        labels = all_of(q, "label");
    }
    let epic = first_of(q, "epic")
        .or_else(|| first_of(q, "epic_id"))
        .filter(|e| !e.trim().is_empty())
        .map(model::normalize_issue_id);
    let sort = match first_of(q, "sort").unwrap_or("") {
        "created" => SortKey::Created,
        "updated" => SortKey::Updated,
        "id" => SortKey::Id,
        "title" => SortKey::Title,
        "status" => SortKey::Status,
        _ => SortKey::Priority,
    };
    let reverse = match (first_of(q, "order"), sort) {
        (Some("desc"), SortKey::Created | SortKey::Updated) => false,
        (Some("asc"), SortKey::Created | SortKey::Updated) => true,
        (Some("desc"), _) => true,
        _ => false,
    };
    let search = first_of(q, "search")
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            let mode = SearchMode::parse(first_of(q, "search_mode").unwrap_or(""));
            // td's list tries TDQ first under `auto`, falling back to text.
            let mode = if mode == SearchMode::Auto && td_engine::tdq::parse(s).is_ok() {
                SearchMode::Tdq
            } else {
                mode
            };
            (s.to_string(), mode)
        });
    Ok(ListParams {
        filter: ListFilter {
            all: include_closed || !status.is_empty(),
            status: if status.is_empty() && !include_closed {
                ["open", "in_progress", "blocked", "in_review"]
                    .map(String::from)
                    .to_vec()
            } else {
                status
            },
            types,
            epic,
            sort,
            reverse,
            dates: td_engine::query::DateView::Any,
            ..Default::default()
        },
        labels,
        priorities: all_of(q, "priority"),
        search,
        limit: limit as usize,
        offset: offset as usize,
    })
}

/// `GET /v1/issues`: td's filters, search and paging; items slimmed as td sends them.
async fn list_issues(State(s): State<AppState>, RawQuery(raw): RawQuery) -> ApiResult {
    let q = parse_query(raw.as_deref());
    let lp = list_params(&q)?;
    let (page, total, blockers) = with_project(&s, false, move |p| {
        let search = lp.search.as_ref().map(|(t, m)| (t.as_str(), *m));
        let mut issues = p.search_issues(&lp.filter, search).map_err(|e| match e {
            td_engine::EngineError::InvalidInput(m) => {
                td_engine::EngineError::InvalidInput(format!("invalid TDQ query: {m}"))
            }
            e => e,
        })?;
        issues.retain(|i| lp.labels.iter().all(|l| i.labels.contains(l)));
        if !lp.priorities.is_empty() {
            issues.retain(|i| lp.priorities.contains(&i.priority));
        }
        let total = issues.len();
        let page: Vec<_> = issues.into_iter().skip(lp.offset).take(lp.limit).collect();
        let ids: Vec<String> = page.iter().map(|i| i.id.clone()).collect();
        let blockers = p.open_blockers(&ids)?;
        Ok((page, total, blockers))
    })
    .await?;
    let (limit, offset) = (lp.limit, lp.offset);
    let items: Vec<Value> = page
        .iter()
        .map(|i| dto::Issue::slim(i, blockers.get(&i.id).map(Vec::as_slice)).value())
        .collect();
    Ok(ok(
        StatusCode::OK,
        json!({"issues": items, "total": total, "limit": limit, "offset": offset, "has_more": offset + limit < total}),
    ))
}

fn parse_query(raw: Option<&str>) -> Params {
    form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// `GET /v1/issues/{id}`: td's `{issue, logs, comments, latest_handoff, dependencies,
/// blocked_by}`, plus our `conflicts` and `version`.
async fn get_issue(
    State(s): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let q = parse_query(raw.as_deref());
    let with_reviews = all_of(&q, "with").iter().any(|w| w == "reviews");
    let nid = model::normalize_issue_id(&id);
    let (d, transitions) = with_project(&s, false, move |p| {
        let d = p.issue_detail(&nid)?;
        let t = p.available_transitions(&d.issue)?;
        Ok((d, t))
    })
    .await
    .map_err(|e| match e.status {
        StatusCode::NOT_FOUND => not_found_issue(&id),
        _ => e,
    })?;
    let mut issue = dto::Issue::full(&d.issue).with_transitions(transitions);
    if with_reviews {
        issue = issue.with_reviews(&d.reviews);
    }
    let mut issue = issue.value();
    if let Some(active) = d
        .reviews
        .iter()
        .rev()
        .find(|r| r.decision == "approved" && r.superseded_at.is_none())
    {
        issue["active_review"] = dto::review(active);
    }
    Ok(ok(
        StatusCode::OK,
        json!({
            "issue": issue,
            "logs": d.logs.iter().map(dto::log).collect::<Vec<_>>(),
            "comments": d.comments.iter().map(dto::comment).collect::<Vec<_>>(),
            "latest_handoff": d.handoff.as_ref().map(dto::handoff),
            "dependencies": d.depends_on.iter().map(|on| dto::dependency(&d.issue.id, on)).collect::<Vec<_>>(),
            "blocked_by": d.blocks.iter().map(|by| dto::dependency(by, &d.issue.id)).collect::<Vec<_>>(),
            "conflicts": d.conflicts.iter().map(|c| c.to_json()).collect::<Vec<_>>(),
            "version": d.version,
        }),
    ))
}

/// The fields of a create or update request, as td's API names them (`null` is absent).
#[derive(Debug, Default, Deserialize)]
struct IssueBody {
    title: Option<String>,
    description: Option<String>,
    acceptance: Option<String>,
    #[serde(rename = "type")]
    issue_type: Option<String>,
    priority: Option<String>,
    points: Option<i64>,
    labels: Option<Vec<String>>,
    parent_id: Option<String>,
    sprint: Option<String>,
    minor: Option<bool>,
    defer_until: Option<String>,
    due_date: Option<String>,
}

const TYPES: [&str; 5] = ["bug", "feature", "task", "epic", "chore"];
const FIBONACCI: [i64; 7] = [1, 2, 3, 5, 8, 13, 21];
const TITLE_MIN: usize = 15;
const TITLE_MAX: usize = 200;

impl IssueBody {
    /// td's `ValidateIssueCreate`/`ValidateIssueUpdate`: every field error at once.
    fn validate(&mut self, create: bool) -> Result<(), ApiError> {
        let mut f = Vec::new();
        match self.title.as_deref() {
            None if create => f.push(field(
                "title",
                "required",
                Value::Null,
                Value::Null,
                "title is required".into(),
            )),
            Some("") => f.push(field(
                "title",
                "required",
                Value::Null,
                Value::Null,
                if create {
                    "title is required"
                } else {
                    "title cannot be empty"
                }
                .into(),
            )),
            Some(t) => {
                let n = t.trim().chars().count();
                if n < TITLE_MIN {
                    f.push(field(
                        "title",
                        "min_length",
                        json!(t),
                        json!(TITLE_MIN),
                        format!("title must be at least {TITLE_MIN} characters"),
                    ));
                } else if n > TITLE_MAX {
                    f.push(field(
                        "title",
                        "max_length",
                        json!(t),
                        json!(TITLE_MAX),
                        format!("title must be at most {TITLE_MAX} characters"),
                    ));
                }
            }
            None => {}
        }
        if self.issue_type.as_deref() == Some("") {
            self.issue_type = None;
        }
        if let Some(t) = self.issue_type.as_deref() {
            let t = if t == "story" { "feature" } else { t };
            if TYPES.contains(&t) {
                self.issue_type = Some(t.to_string());
            } else {
                f.push(field(
                    "type",
                    "enum",
                    json!(t),
                    json!(TYPES),
                    format!("invalid type: {t}"),
                ));
            }
        }
        if self.priority.as_deref() == Some("") {
            self.priority = None;
        }
        if let Some(p) = self.priority.clone() {
            match model::parse_priority(&p) {
                Ok(n) => self.priority = Some(n.to_string()),
                Err(_) => f.push(field(
                    "priority",
                    "enum",
                    json!(p),
                    json!(["P0", "P1", "P2", "P3", "P4"]),
                    format!("invalid priority: {p}"),
                )),
            }
        }
        if let Some(n) = self.points.filter(|n| *n != 0 && !FIBONACCI.contains(n)) {
            f.push(field(
                "points",
                "enum",
                json!(n),
                json!(FIBONACCI),
                format!("points must be one of 1, 2, 3, 5, 8, 13, 21 (got {n})"),
            ));
        }
        for (name, v) in [
            ("defer_until", &self.defer_until),
            ("due_date", &self.due_date),
        ] {
            if let Some(d) = v.as_deref().filter(|d| !d.is_empty()) {
                if chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_err() || d.len() != 10 {
                    f.push(field(
                        name,
                        "date_format",
                        json!(d),
                        json!("YYYY-MM-DD"),
                        format!("{name} must be a date (YYYY-MM-DD)"),
                    ));
                }
            }
        }
        fields_ok(f)
    }

    fn fields(self) -> IssueFields {
        let date = |v: Option<String>| v.map(|d| (!d.is_empty()).then_some(d));
        IssueFields {
            title: self.title,
            description: self.description,
            acceptance: self.acceptance,
            issue_type: self.issue_type,
            priority: self.priority,
            points: self.points,
            labels: self.labels,
            parent: self.parent_id.map(|p| {
                if p.is_empty() {
                    p
                } else {
                    model::normalize_issue_id(&p)
                }
            }),
            sprint: self.sprint,
            minor: self.minor,
            defer_until: date(self.defer_until),
            due_date: date(self.due_date),
            ..Default::default()
        }
    }
}

/// Checks the parent named exists (td: 404 "parent issue not found").
fn check_parent(p: &Project, parent: &Option<String>) -> td_engine::Result<()> {
    match parent.as_deref() {
        Some(id) if !id.is_empty() && p.find_issue(id)?.is_none() => Err(
            td_engine::EngineError::NotFound(format!("parent issue not found: {id}")),
        ),
        _ => Ok(()),
    }
}

async fn create_issue(State(s): State<AppState>, raw: Body) -> ApiResult {
    let mut b: IssueBody = strict(raw)?;
    b.validate(true)?;
    let f = b.fields();
    let issue = with_project(&s, true, move |p| {
        check_parent(p, &f.parent)?;
        p.create(&f, &[], &[])
    })
    .await?;
    Ok(ok(
        StatusCode::CREATED,
        json!({"issue": dto::issue(&issue)}),
    ))
}

async fn update_issue(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: Body,
) -> ApiResult {
    let mut b: IssueBody = strict(raw)?;
    b.validate(false)?;
    let f = b.fields();
    let version = if_match(&headers);
    let nid = model::normalize_issue_id(&id);
    let (issue, t) = with_project(&s, true, move |p| {
        existing(p, &nid)?;
        check_parent(p, &f.parent)?;
        let out = p.update(&nid, &f, version.as_deref())?;
        let t = p.available_transitions(&out.issue)?;
        Ok((out.issue, t))
    })
    .await?;
    Ok(ok(
        StatusCode::OK,
        json!({"issue": dto::Issue::full(&issue).with_transitions(t).value()}),
    ))
}

async fn delete_issue(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    let version = if_match(&headers);
    let nid = model::normalize_issue_id(&id);
    with_project(&s, true, move |p| {
        let found = p
            .issues(&ListFilter {
                ids: vec![nid.clone()],
                all: true,
                only_deleted: true,
                dates: td_engine::query::DateView::Any,
                ..Default::default()
            })?
            .into_iter()
            .next();
        if found.is_some() {
            return Ok(()); // already deleted: td answers 200 again
        }
        p.delete(&nid, version.as_deref()).map(|_| ())
    })
    .await
    .map_err(|e| match e.status {
        StatusCode::NOT_FOUND => not_found_issue(&id),
        _ => e,
    })?;
    Ok(ok(StatusCode::OK, json!({"deleted": true})))
}

/// The body of a transition: td's `reason`, and approve's attestations; anything that does
/// not decode is no body, as td reads it.
#[derive(Debug, Default, Deserialize)]
struct TransitionBody {
    reason: Option<String>,
    reviewed_by: Option<String>,
    #[serde(default)]
    self_review: bool,
    self_close_exception: Option<String>,
}

/// td's checks of `reviewed_by` (before the issue is looked up).
fn check_reviewed_by(reviewed_by: &Option<String>, self_review: bool) -> Result<(), ApiError> {
    let Some(r) = reviewed_by else { return Ok(()) };
    if self_review {
        return Err(bad(
            "reviewed_by and self_review are mutually exclusive: name the reviewer or self-review, not both",
        ));
    }
    if r.trim().is_empty() {
        return Err(bad(
            "reviewed_by requires a name (who performed the review?)",
        ));
    }
    if r.chars().any(|c| c.is_control() && c != '\t') {
        return Err(bad(
            "reviewed_by must not contain newlines or control characters",
        ));
    }
    let n = r.chars().count();
    if n > 120 {
        return Err(bad(format!(
            "reviewed_by is limited to 120 characters (got {n})"
        )));
    }
    Ok(())
}

/// `POST /v1/issues/{id}/{action}`: td's transitions. An action not allowed from the issue's
/// status (a repeat included) is 409 `conflict`, as td's state machine answers; the rest is
/// the engine's (the review policy decides as in the CLI). The answer carries td's cascades.
async fn transition(
    State(s): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    raw: Body,
) -> ApiResult {
    if !TRANSITIONS.contains(&action.as_str()) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "404 page not found",
        ));
    }
    let b: TransitionBody = lenient(raw)?;
    if action == "approve" {
        check_reviewed_by(&b.reviewed_by, b.self_review)?;
    }
    let version = if_match(&headers);
    let nid = model::normalize_issue_id(&id);
    let out = with_project(&s, true, move |p| {
        let current = existing(p, &nid)?;
        let from = Status::parse(&current.status)?;
        if !transition_from(&action, from) {
            return Err(td_engine::EngineError::Conflict(format!(
                "cannot transition {nid} from {} to {}",
                current.status,
                target_of(&action)
            )));
        }
        if action == "close" && from == Status::InReview && !current.minor {
            return Err(td_engine::EngineError::CannotSelfApprove(format!(
                "cannot close {nid} via /close while in_review: use /approve so the review is recorded"
            )));
        }
        let (r, v) = (b.reason.as_deref(), version.as_deref());
        let out = match action.as_str() {
            "start" => p.start(&nid, false, r, v),
            "review" => p.review(&nid, r, v),
            "approve" => {
                let opts = ApproveOptions {
                    reviewed_by: b.reviewed_by.clone(),
                    self_review: b.self_review,
                    reason: b.reason.clone(),
                    record_only: false,
                    changes_requested: false,
                };
                p.approve(&nid, &opts, v)
            }
            "reject" => p.reject(&nid, r, v),
            "block" => p.block(&nid, r, v),
            "unblock" => p.unblock(&nid, r),
            "close" => p.close(&nid, r, b.self_close_exception.as_deref(), v),
            _ => p.reopen(&nid, r),
        }?;
        let t = p.available_transitions(&out.issue)?;
        let re_read = |ids: &[String]| -> td_engine::Result<Vec<Value>> {
            ids.iter()
                .map(|i| existing(p, i).map(|x| dto::issue(&x)))
                .collect()
        };
        let cascades = json!({
            "parent_status_updates": re_read(&out.cascades.parents)?,
            "auto_unblocked": re_read(&out.cascades.unblocked)?,
        });
        Ok(json!({"issue": dto::Issue::full(&out.issue).with_transitions(t).value(), "cascades": cascades}))
    })
    .await
    .map_err(|e| match e.status {
        StatusCode::NOT_FOUND if e.message.starts_with("issue not found") => not_found_issue(&id),
        _ => e,
    })?;
    Ok(ok(StatusCode::OK, out))
}

fn target_of(action: &str) -> &'static str {
    match action {
        "start" => "in_progress",
        "review" => "in_review",
        "approve" | "close" => "closed",
        "block" => "blocked",
        _ => "open",
    }
}

#[derive(Debug, Default, Deserialize)]
struct ReviewBody {
    decision: Option<String>,
    summary: Option<String>,
    reviewed_by: Option<String>,
    #[serde(default)]
    self_review: bool,
}

/// `POST /v1/issues/{id}/reviews`: records a review without closing (td's record-only
/// review: `summary` required; `approved` or `changes_requested`).
async fn record_review(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: Body,
) -> ApiResult {
    let b: ReviewBody = lenient(raw)?;
    check_reviewed_by(&b.reviewed_by, b.self_review)?;
    let decision = b
        .decision
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .unwrap_or("approved")
        .to_string();
    let changes_requested = match decision.as_str() {
        "approved" => false,
        "changes_requested" => true,
        other => {
            return Err(bad(format!(
                "invalid decision {other:?} (want approved|changes_requested)"
            )))
        }
    };
    let summary = b.summary.unwrap_or_default().trim().to_string();
    if summary.is_empty() {
        return Err(bad("summary is required for record-only review"));
    }
    let version = if_match(&headers);
    let opts = ApproveOptions {
        reviewed_by: b.reviewed_by,
        self_review: b.self_review,
        reason: Some(summary),
        record_only: true,
        changes_requested,
    };
    let nid = model::normalize_issue_id(&id);
    let out = with_project(&s, true, move |p| {
        let current = existing(p, &nid)?;
        if current.minor {
            return Err(td_engine::EngineError::InvalidInput(format!(
                "minor issues do not require reviews: {nid}"
            )));
        }
        if current.status != Status::InReview.as_str() {
            return Err(td_engine::EngineError::Conflict(format!(
                "cannot record review: {nid} is not in_review"
            )));
        }
        let out = p.approve(&nid, &opts, version.as_deref())?;
        let d = p.issue_detail(&nid)?;
        let review = d.reviews.last().map(dto::review);
        let active = d
            .reviews
            .iter()
            .rev()
            .find(|r| r.decision == "approved" && r.superseded_at.is_none())
            .map(dto::review);
        let mut v = json!({"issue": dto::issue(&out.issue)});
        if let Some(r) = review {
            v["review"] = r;
        }
        if let Some(a) = active {
            v["active_review"] = a;
        }
        Ok(v)
    })
    .await?;
    Ok(ok(StatusCode::CREATED, out))
}

/// `GET /v1/monitor`: td's monitor snapshot (`{monitor, session_id, change_token}`).
async fn monitor(State(s): State<AppState>, RawQuery(raw): RawQuery) -> ApiResult {
    let q = parse_query(raw.as_deref());
    let include_closed = first_of(&q, "include_closed") == Some("true");
    let search = first_of(&q, "search")
        .filter(|s| !s.trim().is_empty())
        .map(String::from);
    let mode = SearchMode::parse(first_of(&q, "search_mode").unwrap_or(""));
    if let (Some(text), SearchMode::Tdq) = (&search, mode) {
        if let Err(e) = td_engine::tdq::parse(text) {
            return Err(bad(format!("invalid TDQ query: {e}")));
        }
    }
    let sort = first_of(&q, "sort").unwrap_or("").to_string();
    let data = with_project(&s, false, move |p| {
        let mut t = p.task_list(include_closed, search.as_deref().map(|s| (s, mode)))?;
        // td's monitor sort: created or updated (newest first), else priority (the list's).
        for bucket in [
            &mut t.reviewable,
            &mut t.needs_rework,
            &mut t.in_progress,
            &mut t.ready,
            &mut t.pending_review,
            &mut t.blocked,
            &mut t.closed,
        ] {
            match sort.as_str() {
                "created" => {
                    bucket.sort_by(|a, b| (&b.created_at, &b.id).cmp(&(&a.created_at, &a.id)))
                }
                "updated" => {
                    bucket.sort_by(|a, b| (&b.updated_at, &b.id).cmp(&(&a.updated_at, &a.id)))
                }
                _ => {}
            }
        }
        let focused = match p.focused_issue()? {
            Some(id) => p.find_issue(&id)?.map(|i| dto::issue(&i)),
            None => None,
        };
        let in_progress = p.issues(&ListFilter {
            status: vec!["in_progress".into()],
            ..Default::default()
        })?;
        let list = |v: &[td_engine::views::IssueView]| v.iter().map(dto::issue).collect::<Vec<_>>();
        let activity: Vec<Value> = p
            .monitor(&td_engine::ops::monitor::MonitorOptions {
                activity: 50,
                ..Default::default()
            })?
            .activity
            .iter()
            .map(|a| {
                json!({
                    "timestamp": dto::time(&a.at), "session_id": a.session, "issue_id": a.issue,
                    "type": a.kind, "message": a.text, "machine": a.machine,
                })
            })
            .collect();
        Ok(json!({
            "monitor": {
                "focused_issue": focused,
                "in_progress": list(&in_progress),
                "activity": activity,
                "task_list": {
                    "reviewable": list(&t.reviewable),
                    "needs_rework": list(&t.needs_rework),
                    "in_progress": list(&t.in_progress),
                    "ready": list(&t.ready),
                    "pending_review": list(&t.pending_review),
                    "blocked": list(&t.blocked),
                    "closed": list(&t.closed),
                },
                "recent_handoffs": t.recent_handoffs.iter().map(|(i, s, at)| json!({
                    "issue_id": i, "session_id": s, "timestamp": dto::time(at),
                })).collect::<Vec<_>>(),
                "active_sessions": t.active_sessions,
                "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            },
            "session_id": p.session.id,
            "change_token": p.store.log_position()?.to_string(),
        }))
    })
    .await?;
    Ok(ok(StatusCode::OK, data))
}

#[derive(Debug, Deserialize)]
struct CommentBody {
    #[serde(default)]
    text: String,
}

async fn add_comment(State(s): State<AppState>, Path(id): Path<String>, raw: Body) -> ApiResult {
    let b: CommentBody = strict(raw)?;
    if b.text.trim().is_empty() {
        // td's server checks this before it looks the issue up.
        fields_ok(vec![field(
            "text",
            "required",
            Value::Null,
            Value::Null,
            "text is required".into(),
        )])?;
    }
    let nid = model::normalize_issue_id(&id);
    let c = with_project(&s, true, move |p| {
        existing(p, &nid)?;
        let cid = p.comment(&nid, &b.text)?;
        let d = p.issue_detail(&nid)?;
        Ok(d.comments.into_iter().find(|c| c.id == cid))
    })
    .await?;
    Ok(ok(
        StatusCode::CREATED,
        json!({"comment": c.as_ref().map(dto::comment)}),
    ))
}

async fn delete_comment(
    State(s): State<AppState>,
    Path((id, comment)): Path<(String, String)>,
) -> ApiResult {
    let issue = model::normalize_issue_id(&id);
    with_project(&s, true, move |p| p.delete_comment(&issue, &comment)).await?;
    Ok(ok(StatusCode::OK, json!({"deleted": true})))
}

#[derive(Debug, Deserialize)]
struct DependencyBody {
    #[serde(default)]
    depends_on: String,
}

async fn add_dependency(State(s): State<AppState>, Path(id): Path<String>, raw: Body) -> ApiResult {
    let b: DependencyBody = strict(raw)?;
    if b.depends_on.trim().is_empty() {
        fields_ok(vec![field(
            "depends_on",
            "required",
            Value::Null,
            Value::Null,
            "depends_on is required".into(),
        )])?;
    }
    let (issue, on) = (
        model::normalize_issue_id(&id),
        model::normalize_issue_id(&b.depends_on),
    );
    let (i2, o2) = (issue.clone(), on.clone());
    with_project(&s, true, move |p| {
        for x in [&i2, &o2] {
            existing(p, x)?;
        }
        if i2 == o2 {
            return Err(td_engine::EngineError::InvalidInput(
                "cannot add dependency: would create circular dependency".into(),
            ));
        }
        if !p.dep_add(&i2, &o2)? {
            return Err(td_engine::EngineError::Conflict(
                "dependency already exists".into(),
            ));
        }
        Ok(())
    })
    .await?;
    Ok(ok(
        StatusCode::CREATED,
        json!({"dependency": dto::dependency(&issue, &on)}),
    ))
}

/// `DELETE /v1/issues/{id}/dependencies/{dep_id}`: by td's deterministic `dep_…` id.
async fn delete_dependency(
    State(s): State<AppState>,
    Path((id, dep)): Path<(String, String)>,
) -> ApiResult {
    let issue = model::normalize_issue_id(&id);
    with_project(&s, true, move |p| {
        let found = p.dependency_by_id(&dep)?;
        let Some((from, on)) = found else {
            return Err(td_engine::EngineError::NotFound(format!(
                "dependency not found: {dep}"
            )));
        };
        if from != issue {
            return Err(td_engine::EngineError::NotFound(format!(
                "dependency {dep} not found on issue {issue}"
            )));
        }
        p.dep_rm(&from, &on).map(|_| ())
    })
    .await?;
    Ok(ok(StatusCode::OK, json!({"removed": true})))
}

#[derive(Debug, Deserialize)]
struct FocusBody {
    #[serde(default)]
    issue_id: Option<String>,
}

/// `PUT /v1/focus`: `issue_id` focuses, `null`, absent or `""` clears (no live event, as td).
async fn set_focus(State(s): State<AppState>, raw: Body) -> ApiResult {
    let b: FocusBody = strict(raw)?;
    match b.issue_id.filter(|i| !i.trim().is_empty()) {
        None => {
            with_project(&s, false, |p| p.unfocus()).await?;
            Ok(ok(StatusCode::OK, json!({"focused_issue_id": null})))
        }
        Some(raw_id) => {
            let id = model::normalize_issue_id(&raw_id);
            let i2 = id.clone();
            with_project(&s, false, move |p| p.focus(&i2))
                .await
                .map_err(|e| match e.status {
                    StatusCode::NOT_FOUND => not_found_issue(&id),
                    _ => e,
                })?;
            Ok(ok(StatusCode::OK, json!({"focused_issue_id": id})))
        }
    }
}

async fn list_boards(State(s): State<AppState>) -> ApiResult {
    let boards = with_project(&s, false, |p| p.boards()).await?;
    Ok(ok(
        StatusCode::OK,
        json!({"boards": boards.iter().map(dto::board).collect::<Vec<_>>()}),
    ))
}

fn board_not_found(id: &str) -> impl Fn(ApiError) -> ApiError + '_ {
    move |e| match e.status {
        StatusCode::NOT_FOUND => ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("board not found: {id}"),
        ),
        _ => e,
    }
}

/// `GET /v1/boards/{id}`: the board and td's cards (slim issue, position, blockers).
async fn get_board(
    State(s): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let q = parse_query(raw.as_deref());
    let include_closed = first_of(&q, "include_closed") == Some("true");
    let key = id.clone();
    let (view, blockers) = with_project(&s, false, move |p| {
        let mut view = p.board(&key)?;
        if !include_closed {
            view.issues.retain(|i| i.issue.status != "closed");
        }
        let ids: Vec<String> = view.issues.iter().map(|i| i.issue.id.clone()).collect();
        let blockers = p.open_blockers(&ids)?;
        Ok((view, blockers))
    })
    .await
    .map_err(board_not_found(&id))?;
    let cards: Vec<Value> = view
        .issues
        .iter()
        .map(|c| {
            json!({
                "issue": dto::Issue::slim(&c.issue, blockers.get(&c.issue.id).map(Vec::as_slice)).value(),
                "board_id": view.board.id,
                "position": c.position.unwrap_or(0),
                "has_position": c.position.is_some(),
                "category": "",
            })
        })
        .collect();
    Ok(ok(
        StatusCode::OK,
        json!({"board": dto::board(&view.board), "issues": cards}),
    ))
}

#[derive(Debug, Default, Deserialize)]
struct BoardBody {
    name: Option<String>,
    query: Option<String>,
}

fn check_board_query(q: &Option<String>) -> Result<(), ApiError> {
    if let Some(q) = q.as_deref().filter(|q| !q.trim().is_empty()) {
        if let Err(e) = td_engine::tdq::parse(q) {
            fields_ok(vec![field(
                "query",
                "tdq_syntax",
                json!(q),
                Value::Null,
                format!("invalid TDQ query: {e}"),
            )])?;
        }
    }
    Ok(())
}

async fn create_board(State(s): State<AppState>, raw: Body) -> ApiResult {
    let b: BoardBody = strict(raw)?;
    let name = b.name.clone().unwrap_or_default();
    if name.trim().is_empty() {
        fields_ok(vec![field(
            "name",
            "required",
            Value::Null,
            Value::Null,
            "name is required".into(),
        )])?;
    }
    check_board_query(&b.query)?;
    let row = with_project(&s, true, move |p| {
        p.board_create(name.trim(), b.query.as_deref().filter(|q| !q.is_empty()))
    })
    .await?;
    Ok(ok(StatusCode::CREATED, json!({"board": dto::board(&row)})))
}

/// Refuses td's builtin board (403), after finding the board (404).
fn builtin_forbidden(p: &Project, id: &str, what: &str) -> td_engine::Result<()> {
    let view = p.board(id)?;
    if view.board.is_builtin != 0 {
        return Err(td_engine::EngineError::CannotSelfApprove(format!(
            "cannot {what} builtin board"
        )));
    }
    Ok(())
}

async fn update_board(State(s): State<AppState>, Path(id): Path<String>, raw: Body) -> ApiResult {
    let b: BoardBody = strict(raw)?;
    let key = id.clone();
    let row = with_project(&s, true, move |p| {
        builtin_forbidden(p, &key, "modify")?;
        Ok(())
    })
    .await
    .map_err(board_not_found(&id));
    row?;
    check_board_query(&b.query)?;
    if b.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        fields_ok(vec![field(
            "name",
            "required",
            Value::Null,
            Value::Null,
            "name cannot be empty".into(),
        )])?;
    }
    let edit = td_engine::ops::boards::BoardEdit {
        name: b.name.map(|n| n.trim().to_string()),
        query: b.query,
        view_mode: None,
    };
    let (row, _) = with_project(&s, true, move |p| p.board_edit(&id, &edit)).await?;
    Ok(ok(StatusCode::OK, json!({"board": dto::board(&row)})))
}

async fn delete_board(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let key = id.clone();
    with_project(&s, true, move |p| {
        builtin_forbidden(p, &key, "delete")?;
        p.board_delete(&key).map(|_| ())
    })
    .await
    .map_err(board_not_found(&id))?;
    Ok(ok(StatusCode::OK, json!({"deleted": true})))
}

#[derive(Debug, Deserialize)]
struct PositionBody {
    #[serde(default)]
    issue_id: String,
    #[serde(default)]
    position: i64,
}

/// `POST /v1/boards/{id}/issues`: td's 1-based slot; 1 or less is the top.
async fn set_board_position(
    State(s): State<AppState>,
    Path(id): Path<String>,
    raw: Body,
) -> ApiResult {
    let b: PositionBody = strict(raw)?;
    if b.issue_id.trim().is_empty() {
        fields_ok(vec![field(
            "issue_id",
            "required",
            Value::Null,
            Value::Null,
            "issue_id is required".into(),
        )])?;
    }
    let issue = model::normalize_issue_id(&b.issue_id);
    let key = id.clone();
    with_project(&s, true, move |p| {
        p.board(&key)?;
        if p.find_issue(&issue)?.is_none() {
            return Err(td_engine::EngineError::InvalidInput(format!(
                "issue not found: {}",
                b.issue_id
            )));
        }
        p.board_move(&key, &issue, b.position.max(1)).map(|_| ())
    })
    .await
    .map_err(
        |e| match (e.status, e.message.starts_with("issue not found")) {
            (StatusCode::BAD_REQUEST, true) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", e.message)
            }
            _ => board_not_found(&id)(e),
        },
    )?;
    Ok(ok(StatusCode::OK, json!({"positioned": true})))
}

async fn remove_board_position(
    State(s): State<AppState>,
    Path((id, issue)): Path<(String, String)>,
) -> ApiResult {
    let issue = model::normalize_issue_id(&issue);
    let i2 = issue.clone();
    let key = id.clone();
    let (row, removed) = with_project(&s, true, move |p| p.board_unposition(&key, &i2))
        .await
        .map_err(board_not_found(&id))?;
    if !removed {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("issue {issue} not positioned on board {}", row.id),
        ));
    }
    Ok(ok(StatusCode::OK, json!({"removed": true})))
}

async fn sessions(State(s): State<AppState>) -> ApiResult {
    let (list, current) =
        with_project(&s, false, |p| Ok((p.session_rows()?, p.session.id.clone()))).await?;
    Ok(ok(
        StatusCode::OK,
        json!({"sessions": list.iter().map(dto::session).collect::<Vec<_>>(), "current_session_id": current}),
    ))
}

/// `GET /v1/stats`: td's `StatsDTO` (the object itself is `data`).
async fn stats(State(s): State<AppState>) -> ApiResult {
    let st = with_project(&s, false, |p| p.stats()).await?;
    let one = |i: &Option<td_engine::views::IssueView>| i.as_ref().map(dto::issue);
    Ok(ok(
        StatusCode::OK,
        json!({
            "total": st.total, "by_status": st.by_status, "by_type": st.by_type,
            "by_priority": st.by_priority, "oldest_open": one(&st.oldest_open),
            "newest_task": one(&st.newest_task), "last_closed": one(&st.last_closed),
            "created_today": st.created_today, "created_this_week": st.created_this_week,
            "total_points": st.total_points, "avg_points_per_task": st.avg_points_per_task,
            "completion_rate": st.completion_rate, "total_logs": st.total_logs,
            "total_handoffs": st.total_handoffs, "most_active_session": st.most_active_session,
        }),
    ))
}

/// `GET /v1/labels`: the distinct labels of live issues (closed included), sorted.
async fn labels(State(s): State<AppState>) -> ApiResult {
    let issues = with_project(&s, false, |p| {
        p.issues(&ListFilter {
            all: true,
            dates: td_engine::query::DateView::Any,
            ..Default::default()
        })
    })
    .await?;
    let labels: std::collections::BTreeSet<String> = issues
        .iter()
        .flat_map(|i| i.labels.iter())
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    Ok(ok(
        StatusCode::OK,
        json!({"labels": labels, "workflows": [], "default_workflow": "standard"}),
    ))
}

/// `GET /v1/events`: server-sent events until the client goes or the server shuts down. The
/// first event is td's: `ping` with the change token, or `refresh` when the client's
/// `Last-Event-ID` is behind it; every event carries the token as its `id:`.
async fn events(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let rx = s.events.subscribe();
    let token = with_project(&s, false, |p| p.store.log_position())
        .await?
        .to_string();
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let first = match last {
        Some(l) if l != token => Event::default().id(token.clone()).event("refresh").data(
            json!({"change_token": token, "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}).to_string(),
        ),
        _ => Event::default()
            .id(token.clone())
            .event("ping")
            .data(json!({ "change_token": token }).to_string()),
    };
    let mut closing = s.closing.clone();
    let stop = async move {
        let _ = closing.wait_for(|c| *c).await;
    };
    let hello = futures_util::stream::once(async move { Ok(first) });
    let stream = tokio_stream::wrappers::BroadcastStream::new(rx)
        .filter_map(|e| async move { e.ok() })
        .map(|e| {
            Ok(Event::default()
                .event(e.event)
                .id(e.id)
                .data(e.data.to_string()))
        });
    Ok(Sse::new(hello.chain(stream).take_until(Box::pin(stop))))
}

/// `GET /`: the web board (one page, no external assets: it works offline).
async fn board_page() -> Response {
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                axum::http::header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'",
            ),
        ],
        include_str!("board.html"),
    )
        .into_response()
}

/// `GET /v1/records?after=&limit=`: the change log's records (as `td sync tail`).
async fn records(State(s): State<AppState>, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    let num = |k: &str| -> Result<Option<i64>, ApiError> {
        q.get(k)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| bad(format!("{k} must be a number")))
            })
            .transpose()
    };
    let (after, limit) = (num("after")?, num("limit")?.unwrap_or(200).clamp(1, 5000));
    let rows = with_project(&s, false, move |p| p.log_tail(after, limit as usize)).await?;
    Ok(ok(
        StatusCode::OK,
        json!({"records": rows.iter().map(to_json).collect::<Vec<_>>()}),
    ))
}

/// `GET /v1/peers`: the peers this replica syncs with.
async fn peers(State(s): State<AppState>) -> ApiResult {
    let list = with_project(&s, false, |p| p.peers()).await?;
    Ok(ok(
        StatusCode::OK,
        json!({"peers": list.iter().map(|p| p.to_json()).collect::<Vec<_>>()}),
    ))
}

/// `GET /v1/conflicts?all=true`: concurrent edits that overwrote one another.
async fn conflicts(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let all = q.get("all").is_some_and(|v| v == "true" || v == "1");
    let list = with_project(&s, false, move |p| p.conflicts(all, None)).await?;
    Ok(ok(
        StatusCode::OK,
        json!({"conflicts": list.iter().map(|c| c.to_json()).collect::<Vec<_>>()}),
    ))
}

/// A path no route matches: td's (Go's) plain-text 404.
async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
        "404 page not found\n",
    )
        .into_response()
}

/// Every route.
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(board_page))
        .route("/health", get(health))
        .route("/v1/records", get(records))
        .route("/v1/peers", get(peers))
        .route("/v1/conflicts", get(conflicts))
        .route("/v1/issues", get(list_issues).post(create_issue))
        .route(
            "/v1/issues/{id}",
            get(get_issue).patch(update_issue).delete(delete_issue),
        )
        .route("/v1/issues/{id}/comments", post(add_comment))
        .route(
            "/v1/issues/{id}/comments/{comment}",
            axum::routing::delete(delete_comment),
        )
        .route("/v1/issues/{id}/reviews", post(record_review))
        .route("/v1/monitor", get(monitor))
        .route("/v1/issues/{id}/dependencies", post(add_dependency))
        .route(
            "/v1/issues/{id}/dependencies/{dep}",
            axum::routing::delete(delete_dependency),
        )
        .route("/v1/issues/{id}/{action}", post(transition))
        .route("/v1/focus", put(set_focus))
        .route("/v1/boards", get(list_boards).post(create_board))
        .route(
            "/v1/boards/{id}",
            get(get_board).patch(update_board).delete(delete_board),
        )
        .route("/v1/boards/{id}/issues", post(set_board_position))
        .route(
            "/v1/boards/{id}/issues/{issue}",
            axum::routing::delete(remove_board_position),
        )
        .route("/v1/sessions", get(sessions))
        .route("/v1/stats", get(stats))
        .route("/v1/labels", get(labels))
        .route("/v1/events", get(events))
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}
