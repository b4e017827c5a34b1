//! td's `/v1` routes. Each parses the request, calls one engine operation on the blocking
//! pool, and renders the engine's read model in td's envelope.

use std::collections::HashMap;
use std::convert::Infallible;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use futures_util::stream::Stream;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use td_engine::ops::issues::IssueFields;
use td_engine::ops::workflow::ApproveOptions;
use td_engine::query::ListFilter;
use td_engine::views::{to_json, IssueView};
use td_engine::{model, Project};

use super::{ok, ApiError, AppState};

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

/// The JSON body (empty: `{}`), or td's error naming what is wrong with it: too large (413),
/// not JSON, or fields this route does not take (400). Nothing is written either way.
fn body<T: for<'de> Deserialize<'de>>(raw: Body) -> Result<T, ApiError> {
    let bytes = raw.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "validation_error",
                format!("request body larger than {} KiB", MAX_BODY / 1024),
            )
        } else {
            bad(format!("cannot read the request body: {e}"))
        }
    })?;
    let v: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("request body is not JSON: {e}")))?
    };
    serde_json::from_value(v).map_err(|e| bad(format!("invalid request body: {e}")))
}

/// td's health answer: the server's session and the change token (the log's position, as
/// the live events carry it; a string, as td's), plus our `version`.
async fn health(State(s): State<AppState>) -> ApiResult {
    let (session, token) = with_project(&s, false, |p| {
        Ok((p.session.id.clone(), p.store.last_local_id()?))
    })
    .await?;
    Ok(ok(
        StatusCode::OK,
        json!({"status": "ok", "version": env!("CARGO_PKG_VERSION"), "session_id": session, "change_token": token.to_string()}),
    ))
}

async fn list_issues(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let split = |k: &str| -> Vec<String> {
        q.get(k)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|x| !x.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    };
    let limit = match q.get("limit") {
        Some(n) => Some(
            n.parse::<usize>()
                .map_err(|_| bad(format!("limit must be a number, got {n:?}")))?,
        ),
        None => None,
    };
    if let Some(tdq) = q.get("query").filter(|t| !t.trim().is_empty()).cloned() {
        let issues = with_project(&s, false, move |p| {
            let opts = td_engine::tdq::QueryOptions {
                limit,
                ..Default::default()
            };
            Ok(p.query(&tdq, &opts)?.issues)
        })
        .await?;
        return Ok(issue_list(&issues));
    }
    let mut status = Vec::new();
    for st in split("status") {
        status.push(model::Status::parse(&st)?.as_str().to_string());
    }
    let mut types = Vec::new();
    for t in split("type") {
        types.push(model::parse_type(&t)?.to_string());
    }
    let f = ListFilter {
        status,
        types,
        labels: split("labels"),
        search: q.get("q").cloned(),
        all: q.get("all").is_some_and(|v| v == "true" || v == "1"),
        limit,
        ..Default::default()
    };
    let issues = with_project(&s, false, move |p| p.issues(&f)).await?;
    Ok(issue_list(&issues))
}

/// `{"ok": true, "data": {"issues": [...]}}`, serialized straight from the read models (a
/// listing of every issue is the largest response: no intermediate JSON tree).
fn issue_list(issues: &[IssueView]) -> Response {
    #[derive(serde::Serialize)]
    struct Data<'a> {
        issues: &'a [IssueView],
    }
    #[derive(serde::Serialize)]
    struct Envelope<'a> {
        ok: bool,
        data: Data<'a>,
    }
    match serde_json::to_vec(&Envelope {
        ok: true,
        data: Data { issues },
    }) {
        Ok(bytes) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            bytes,
        )
            .into_response(),
        Err(e) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            .into_response(),
    }
}

async fn get_issue(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let d = with_project(&s, false, move |p| {
        p.issue_detail(&model::normalize_issue_id(&id))
    })
    .await?;
    Ok(ok(StatusCode::OK, d.to_json()))
}

/// The fields of a create or update request, as td's API names them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
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
    status: Option<String>,
    defer_until: Option<String>,
    due_date: Option<String>,
}

impl IssueBody {
    fn fields(self) -> IssueFields {
        IssueFields {
            title: self.title,
            description: self.description,
            acceptance: self.acceptance,
            issue_type: self.issue_type,
            priority: self.priority,
            points: self.points,
            labels: self.labels,
            parent: self.parent_id,
            sprint: self.sprint,
            minor: self.minor,
            status: self.status,
            defer_until: self.defer_until.map(Some),
            due_date: self.due_date.map(Some),
            ..Default::default()
        }
    }
}

async fn create_issue(State(s): State<AppState>, raw: Body) -> ApiResult {
    let b: IssueBody = body(raw)?;
    let f = b.fields();
    let issue = with_project(&s, true, move |p| p.create(&f, &[], &[])).await?;
    Ok(ok(StatusCode::CREATED, issue.to_json()))
}

async fn update_issue(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: Body,
) -> ApiResult {
    let b: IssueBody = body(raw)?;
    let f = b.fields();
    let version = if_match(&headers);
    let out = with_project(&s, true, move |p| {
        p.update(&model::normalize_issue_id(&id), &f, version.as_deref())
    })
    .await?;
    Ok(ok(StatusCode::OK, out.issue.to_json()))
}

async fn delete_issue(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    let version = if_match(&headers);
    let out = with_project(&s, true, move |p| {
        p.delete(&model::normalize_issue_id(&id), version.as_deref())
    })
    .await?;
    Ok(ok(StatusCode::OK, out.issue.to_json()))
}

/// The body of a transition: td's `reason` (or `comment`), and approve's attestations.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TransitionBody {
    reason: Option<String>,
    comment: Option<String>,
    reviewed_by: Option<String>,
    #[serde(default)]
    self_review: bool,
    #[serde(default)]
    record_only: bool,
    self_close_exception: Option<String>,
    #[serde(default)]
    force: bool,
}

async fn transition(
    State(s): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    raw: Body,
) -> ApiResult {
    let b: TransitionBody = body(raw)?;
    let version = if_match(&headers);
    let reason = b.reason.clone().or(b.comment.clone());
    let known = [
        "start", "review", "approve", "reject", "block", "unblock", "close", "reopen",
    ];
    if !known.contains(&action.as_str()) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no such action: {action}"),
        ));
    }
    let out = with_project(&s, true, move |p| {
        let id = model::normalize_issue_id(&id);
        let (r, v) = (reason.as_deref(), version.as_deref());
        match action.as_str() {
            "start" => p.start(&id, b.force, r, v),
            "review" => p.review(&id, r, v),
            "approve" => {
                let opts = ApproveOptions {
                    reviewed_by: b.reviewed_by.clone(),
                    self_review: b.self_review,
                    reason: reason.clone(),
                    record_only: b.record_only,
                    changes_requested: false,
                };
                p.approve(&id, &opts, v)
            }
            "reject" => p.reject(&id, r, v),
            "block" => p.block(&id, r, v),
            "unblock" => p.unblock(&id, r),
            "close" => p.close(&id, r, b.self_close_exception.as_deref(), v),
            _ => p.reopen(&id, r),
        }
    })
    .await?;
    Ok(ok(
        StatusCode::OK,
        json!({"issue": out.issue.to_json(), "changed": out.changed}),
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewBody {
    decision: Option<String>,
    reason: Option<String>,
    reviewed_by: Option<String>,
    #[serde(default)]
    self_review: bool,
}

/// `POST /v1/issues/{id}/reviews`: records a review without closing (td's `approve
/// --record-only [--decision changes_requested]`).
async fn record_review(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: Body,
) -> ApiResult {
    let b: ReviewBody = body(raw)?;
    let changes_requested = match b.decision.as_deref().unwrap_or("approved") {
        "approved" => false,
        "changes_requested" => true,
        other => {
            return Err(bad(format!(
                "invalid decision {other:?} (want approved or changes_requested)"
            )))
        }
    };
    let version = if_match(&headers);
    let opts = ApproveOptions {
        reviewed_by: b.reviewed_by,
        self_review: b.self_review,
        reason: b.reason,
        record_only: true,
        changes_requested,
    };
    let out = with_project(&s, true, move |p| {
        p.approve(&model::normalize_issue_id(&id), &opts, version.as_deref())
    })
    .await?;
    Ok(ok(
        StatusCode::CREATED,
        json!({"issue": out.issue.to_json(), "changed": out.changed}),
    ))
}

/// `GET /v1/monitor`: what td's monitor shows first, for this server's session: focus, work
/// in progress, reviews awaiting, issues ready to close and to start (as `td usage --json`).
async fn monitor(State(s): State<AppState>) -> ApiResult {
    let today = td_engine::dates::today().format("%Y-%m-%d").to_string();
    let u = with_project(&s, false, move |p| p.usage(&today)).await?;
    Ok(ok(StatusCode::OK, to_json(&u)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommentBody {
    text: String,
}

async fn add_comment(State(s): State<AppState>, Path(id): Path<String>, raw: Body) -> ApiResult {
    let b: CommentBody = body(raw)?;
    if b.text.trim().is_empty() {
        // td's server checks this before it looks the issue up.
        return Err(bad("text is required"));
    }
    let cid = with_project(&s, true, move |p| {
        p.comment(&model::normalize_issue_id(&id), &b.text)
    })
    .await?;
    Ok(ok(StatusCode::CREATED, json!({"id": cid})))
}

async fn delete_comment(
    State(s): State<AppState>,
    Path((id, comment)): Path<(String, String)>,
) -> ApiResult {
    let issue = model::normalize_issue_id(&id);
    let (i2, c2) = (issue.clone(), comment.clone());
    with_project(&s, true, move |p| p.delete_comment(&i2, &c2)).await?;
    Ok(ok(
        StatusCode::OK,
        json!({"issue_id": issue, "comment_id": comment}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DependencyBody {
    depends_on: String,
}

async fn add_dependency(State(s): State<AppState>, Path(id): Path<String>, raw: Body) -> ApiResult {
    let b: DependencyBody = body(raw)?;
    let (issue, on) = (
        model::normalize_issue_id(&id),
        model::normalize_issue_id(&b.depends_on),
    );
    let (i2, o2) = (issue.clone(), on.clone());
    let added = with_project(&s, true, move |p| p.dep_add(&i2, &o2)).await?;
    Ok(ok(
        StatusCode::CREATED,
        json!({"issue_id": issue, "depends_on_id": on, "added": added}),
    ))
}

async fn delete_dependency(
    State(s): State<AppState>,
    Path((id, dep)): Path<(String, String)>,
) -> ApiResult {
    let (issue, on) = (
        model::normalize_issue_id(&id),
        model::normalize_issue_id(&dep),
    );
    let (i2, o2) = (issue.clone(), on.clone());
    let removed = with_project(&s, true, move |p| p.dep_rm(&i2, &o2)).await?;
    if !removed {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{issue} does not depend on {on}"),
        ));
    }
    Ok(ok(
        StatusCode::OK,
        json!({"issue_id": issue, "depends_on_id": on}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FocusBody {
    issue_id: String,
}

async fn set_focus(State(s): State<AppState>, raw: Body) -> ApiResult {
    let b: FocusBody = body(raw)?;
    let id = model::normalize_issue_id(&b.issue_id);
    let i2 = id.clone();
    with_project(&s, true, move |p| p.focus(&i2)).await?;
    Ok(ok(StatusCode::OK, json!({"focused_issue_id": id})))
}

async fn list_boards(State(s): State<AppState>) -> ApiResult {
    let boards = with_project(&s, false, |p| p.boards()).await?;
    Ok(ok(
        StatusCode::OK,
        json!({"boards": boards.iter().map(to_json).collect::<Vec<_>>()}),
    ))
}

async fn get_board(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let view = with_project(&s, false, move |p| p.board(&id)).await?;
    Ok(ok(StatusCode::OK, to_json(&view)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BoardBody {
    name: Option<String>,
    query: Option<String>,
    view_mode: Option<String>,
}

async fn create_board(State(s): State<AppState>, raw: Body) -> ApiResult {
    let b: BoardBody = body(raw)?;
    let name = b.name.ok_or_else(|| bad("name is required"))?;
    let row = with_project(&s, true, move |p| p.board_create(&name, b.query.as_deref())).await?;
    Ok(ok(StatusCode::CREATED, to_json(&row)))
}

async fn update_board(State(s): State<AppState>, Path(id): Path<String>, raw: Body) -> ApiResult {
    let b: BoardBody = body(raw)?;
    let edit = td_engine::ops::boards::BoardEdit {
        name: b.name,
        query: b.query,
        view_mode: b.view_mode,
    };
    let (row, _) = with_project(&s, true, move |p| p.board_edit(&id, &edit)).await?;
    Ok(ok(StatusCode::OK, to_json(&row)))
}

async fn delete_board(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let row = with_project(&s, true, move |p| p.board_delete(&id)).await?;
    Ok(ok(StatusCode::OK, to_json(&row)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PositionBody {
    issue_id: String,
    position: i64,
}

async fn set_board_position(
    State(s): State<AppState>,
    Path(id): Path<String>,
    raw: Body,
) -> ApiResult {
    let b: PositionBody = body(raw)?;
    if b.position < 1 {
        return Err(bad("position is 1-based"));
    }
    let issue = model::normalize_issue_id(&b.issue_id);
    let i2 = issue.clone();
    let (row, stored) = with_project(&s, true, move |p| p.board_move(&id, &i2, b.position)).await?;
    Ok(ok(
        StatusCode::OK,
        json!({"board_id": row.id, "issue_id": issue, "position": b.position, "stored_position": stored}),
    ))
}

async fn remove_board_position(
    State(s): State<AppState>,
    Path((id, issue)): Path<(String, String)>,
) -> ApiResult {
    let issue = model::normalize_issue_id(&issue);
    let i2 = issue.clone();
    let (row, removed) = with_project(&s, true, move |p| p.board_unposition(&id, &i2)).await?;
    if !removed {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{issue} has no position on board {}", row.id),
        ));
    }
    Ok(ok(
        StatusCode::OK,
        json!({"board_id": row.id, "issue_id": issue}),
    ))
}

async fn sessions(State(s): State<AppState>) -> ApiResult {
    let (list, current) =
        with_project(&s, false, |p| Ok((p.sessions()?, p.session.id.clone()))).await?;
    Ok(ok(
        StatusCode::OK,
        json!({"sessions": list.iter().map(to_json).collect::<Vec<_>>(), "current_session_id": current}),
    ))
}

async fn stats(State(s): State<AppState>) -> ApiResult {
    let info = with_project(&s, false, |p| p.info()).await?;
    Ok(ok(StatusCode::OK, to_json(&info)))
}

async fn labels(State(s): State<AppState>) -> ApiResult {
    let issues = with_project(&s, false, |p| {
        p.issues(&ListFilter {
            all: true,
            ..Default::default()
        })
    })
    .await?;
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for i in &issues {
        for l in &i.labels {
            *counts.entry(l.clone()).or_default() += 1;
        }
    }
    let labels: Vec<Value> = counts
        .into_iter()
        .map(|(name, count)| json!({"name": name, "count": count}))
        .collect();
    Ok(ok(StatusCode::OK, json!({"labels": labels})))
}

/// `GET /v1/events`: server-sent events until the client goes or the server shuts down.
async fn events(State(s): State<AppState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = s.events.subscribe();
    let mut closing = s.closing.clone();
    let stop = async move {
        let _ = closing.wait_for(|c| *c).await;
    };
    let hello = futures_util::stream::once(async { Ok(Event::default().event("ping").data("{}")) });
    let stream = tokio_stream::wrappers::BroadcastStream::new(rx)
        .filter_map(|e| async move { e.ok() })
        .map(|e| {
            Ok(Event::default()
                .event(e.event)
                .id(e.id)
                .data(e.data.to_string()))
        });
    Sse::new(hello.chain(stream).take_until(Box::pin(stop))).keep_alive(KeepAlive::default())
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

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
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
