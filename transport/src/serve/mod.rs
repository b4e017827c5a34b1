//! `td serve`: td's HTTP API (`/health`, `/v1/…`) and live events (`/v1/events`,
//! server-sent events) over one open project, on axum and the tokio runtime td already uses.
//!
//! Every response is td's envelope: `{"ok": true, "data": …}` or `{"ok": false, "error":
//! {"code", "message"}}`. Data shapes are the CLI's `--json` shapes (the engine's read models).
//! The engine decides everything (the review policy, `If-Match` versions); handlers only parse
//! and render. Requests run one at a time against the project (SQLite is single-writer anyway)
//! on tokio's blocking pool.

mod events;
mod routes;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use td_engine::Project;
use tokio::sync::broadcast;

pub use events::LiveEvent;

/// How `td serve` runs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Where to listen (127.0.0.1 unless a token is set).
    pub addr: SocketAddr,
    /// A bearer token every `/v1` request must carry.
    pub token: Option<String>,
    /// Origins allowed to call the API from a browser (`--cors`).
    pub cors: Vec<String>,
    /// How often the change log is looked at for records written by other processes.
    pub interval: Duration,
    /// Where the bound port is written (`.todos/serve-port`), removed on shutdown.
    pub port_file: PathBuf,
}

/// What the handlers share.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) project: Arc<Mutex<Project>>,
    pub(crate) token: Option<String>,
    pub(crate) cors: Arc<Vec<String>>,
    pub(crate) events: broadcast::Sender<LiveEvent>,
    /// Wakes the event poller after a write made through the API.
    pub(crate) poke: Arc<tokio::sync::Notify>,
    /// Turns true when the server shuts down: open event streams end, so shutdown completes.
    pub(crate) closing: tokio::sync::watch::Receiver<bool>,
}

/// An API error: td's code, a message and the HTTP status.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl From<td_engine::EngineError> for ApiError {
    fn from(e: td_engine::EngineError) -> Self {
        use td_engine::EngineError as E;
        let (status, code) = match &e {
            E::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            E::InvalidInput(_) => (StatusCode::BAD_REQUEST, "validation_error"),
            E::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            E::CannotSelfApprove(_) | E::HandoffRequired(_) => (StatusCode::FORBIDDEN, "forbidden"),
            E::NoActiveSession(_) => (StatusCode::BAD_REQUEST, "validation_error"),
            E::NoDatabase | E::Database(_) | E::CorruptLog(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"ok": false, "error": {"code": self.code, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}

/// A success envelope.
pub(crate) fn ok(status: StatusCode, data: serde_json::Value) -> Response {
    (status, Json(json!({"ok": true, "data": data}))).into_response()
}

/// Refuses `/v1` requests without the token (when one is set); `/health` stays open.
async fn auth(State(s): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(token) = &s.token {
        let path = req.uri().path();
        if path.starts_with("/v1") && req.method() != Method::OPTIONS {
            // A browser's EventSource cannot send headers: `/v1/events` also takes the token
            // as `?access_token=` (percent-decoded, as `encodeURIComponent` sends it).
            let from_query = (path == "/v1/events")
                .then(|| req.uri().query().unwrap_or(""))
                .and_then(|q| {
                    form_urlencoded::parse(q.as_bytes())
                        .find(|(k, _)| k == "access_token")
                        .map(|(_, v)| v.into_owned())
                });
            let header_token = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(String::from);
            let given = header_token.or(from_query);
            let given = given.as_deref();
            // Compared without an early exit on the first differing byte.
            let matches = given.is_some_and(|g| {
                g.len() == token.len()
                    && g.bytes()
                        .zip(token.bytes())
                        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                        == 0
            });
            if !matches {
                return ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "missing or wrong bearer token (Authorization: Bearer <token>)",
                )
                .into_response();
            }
        }
    }
    next.run(req).await
}

/// Answers preflights and adds `Access-Control-Allow-Origin` for the origins `--cors` names.
async fn cors(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(String::from);
    let allowed = origin
        .as_ref()
        .filter(|o| s.cors.iter().any(|c| c == "*" || c == *o))
        .cloned();
    let preflight = req.method() == Method::OPTIONS;
    let mut res = if preflight {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(req).await
    };
    if let Some(o) = allowed.and_then(|o| HeaderValue::from_str(&o).ok()) {
        let h = res.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type, if-match"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, PATCH, PUT, DELETE, OPTIONS"),
        );
    }
    res
}

/// Serves until `shutdown` resolves; writes the port file once listening and removes it at the
/// end. Returns the address it listened on.
pub async fn serve(
    project: Project,
    cfg: ServeConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    on_listening: impl FnOnce(SocketAddr),
) -> std::io::Result<SocketAddr> {
    let (events, _) = broadcast::channel(256);
    let (closing_tx, closing) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        shutdown.await;
        let _ = closing_tx.send(true);
    };
    let state = AppState {
        closing,
        project: Arc::new(Mutex::new(project)),
        token: cfg.token.clone(),
        cors: Arc::new(cfg.cors.clone()),
        events,
        poke: Arc::new(tokio::sync::Notify::new()),
    };
    let app = routes::router(state.clone())
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth))
        .layer(axum::middleware::from_fn_with_state(state.clone(), cors));
    let listener = tokio::net::TcpListener::bind(cfg.addr).await?;
    let addr = listener.local_addr()?;
    if let Some(dir) = cfg.port_file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&cfg.port_file, format!("{}\n", addr.port()))?;
    on_listening(addr);
    let poller = tokio::spawn(events::poll(state.clone(), cfg.interval));
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    poller.abort();
    let _ = std::fs::remove_file(&cfg.port_file);
    result.map(|_| addr)
}
