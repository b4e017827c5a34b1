//! `td serve`: td's HTTP API (`/health`, `/v1/…`) and live events (`/v1/events`,
//! server-sent events) over one open project, on axum and the tokio runtime td already uses.
//!
//! Every response is td's envelope: `{"ok": true, "data": …}` or `{"ok": false, "error":
//! {"code", "message"}}`. Data shapes are the CLI's `--json` shapes (the engine's read models).
//! The engine decides everything (the review policy, `If-Match` versions); handlers only parse
//! and render. Requests run one at a time against the project (SQLite is single-writer anyway)
//! on tokio's blocking pool.

mod dto;
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
    /// The `Host` values this server answers to (`127.0.0.1:<port>`, `localhost:<port>`, …);
    /// empty when it listens on every address (then only with a token).
    pub(crate) hosts: Arc<Vec<String>>,
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
    /// td's `details` (`{"fields": [FieldError…]}`) for a validation error.
    pub(crate) details: Option<serde_json::Value>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
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
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(d) = self.details {
            error["details"] = d;
        }
        let body = json!({"ok": false, "error": error});
        (self.status, Json(body)).into_response()
    }
}

/// A success envelope.
pub(crate) fn ok(status: StatusCode, data: serde_json::Value) -> Response {
    (status, Json(json!({"ok": true, "data": data}))).into_response()
}

/// Whether `given` is the token, compared without an early exit on the first differing byte.
fn token_matches(token: &str, given: Option<&str>) -> bool {
    given.is_some_and(|g| {
        g.len() == token.len()
            && g.bytes()
                .zip(token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    })
}

/// The token a request carries: `Authorization: Bearer`, or `?access_token=` (a browser's
/// EventSource cannot send headers; percent-decoded, as `encodeURIComponent` sends it), or
/// the web board's own `?token=` on `/`.
fn presented_token(req: &Request) -> Option<String> {
    let header_token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(String::from);
    header_token.or_else(|| {
        let path = req.uri().path();
        let key = match path {
            "/v1/events" => "access_token",
            "/" => "token",
            _ => return None,
        };
        form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    })
}

/// A page in the user's own browser is hostile (docs/threat-model.md): every request must name
/// this server in `Host` (DNS rebinding: a page of `evil.example` resolved to 127.0.0.1 says
/// `Host: evil.example`), carry the token when one is set (every route), and a write must come
/// from this server's own origin (or one `--cors` names) with a JSON body; a form or a no-cors
/// `fetch` of another origin can send neither.
async fn guard(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !s.hosts.is_empty() && !s.hosts.contains(&host) {
        return ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "forbidden",
            format!(
                "this server answers only to Host {} (a request for another name is refused: DNS rebinding)",
                s.hosts.join(" or ")
            ),
        )
        .into_response();
    }
    let preflight = req.method() == Method::OPTIONS;
    // `/health` stays open, as td's is (it says only that the server runs, and which td).
    let open = req.uri().path() == "/health" && req.method() == Method::GET;
    let has_token = match &s.token {
        Some(token) => {
            if !preflight && !open && !token_matches(token, presented_token(&req).as_deref()) {
                return ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "missing or wrong bearer token (Authorization: Bearer <token>)",
                )
                .into_response();
            }
            true
        }
        None => false,
    };
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && !has_token {
        let origin = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok())
            .map(str::to_string);
        let own = format!("http://{host}");
        let allowed = |o: &str| o == own || s.cors.iter().any(|c| c == "*" || c == o);
        if let Some(o) = &origin {
            if !allowed(o) {
                return ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    format!("a write from origin {o:?} is refused: only this server's own page (or an origin --cors names) may write"),
                )
                .into_response();
            }
        }
        let fetch_site = req
            .headers()
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if matches!(fetch_site, "cross-site" | "same-site")
            && !origin
                .as_deref()
                .is_some_and(|o| s.cors.iter().any(|c| c == "*" || c == o))
        {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "a cross-site write is refused",
            )
            .into_response();
        }
    }
    if !safe {
        // A body is JSON and says so: a form or a no-cors fetch (text/plain) is never parsed.
        let has_body = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|v| v.trim() != "0");
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            });
        let json = content_type
            .as_deref()
            .is_some_and(|t| t == "application/json" || t.ends_with("+json"));
        let browser = req.headers().contains_key(header::ORIGIN)
            || req.headers().contains_key("sec-fetch-site");
        let ok = json || (content_type.is_none() && (!has_body || !browser));
        if !ok {
            return ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "validation_error",
                "a request body must be JSON (Content-Type: application/json)",
            )
            .into_response();
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
            HeaderValue::from_static("GET,POST,PATCH,PUT,DELETE,OPTIONS"),
        );
        // As td's: browsers may keep the preflight's answer for an hour.
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("3600"),
        );
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    res
}

/// The server a port file names, when it still runs (td's staleness check: its process
/// lives and `GET /health` answers 200 within 2 s); a stale or unreadable file is no server.
async fn live_server(port_file: &std::path::Path) -> Option<(u16, u32)> {
    let meta = std::fs::metadata(port_file).ok()?;
    if meta.len() > 4096 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(port_file).ok()?).ok()?;
    let port = u16::try_from(v["port"].as_u64()?).ok()?;
    let pid = u32::try_from(v["pid"].as_u64()?).ok()?;
    if pid == std::process::id() || !std::path::Path::new(&format!("/proc/{pid}")).exists() {
        return None;
    }
    let probe = async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head).await.ok()?;
        head.ends_with(b"200").then_some(())
    };
    tokio::time::timeout(Duration::from_secs(2), probe)
        .await
        .ok()
        .flatten()
        .map(|_| (port, pid))
}

/// The `Host` values a server listening on `addr` answers to: its address and, on loopback,
/// `localhost`, each with the port (browsers send it) or without. None when it listens on every address:
/// then the token (required there) is what keeps pages out.
fn served_hosts(addr: SocketAddr) -> Vec<String> {
    let port = addr.port();
    let ip = addr.ip();
    if ip.is_unspecified() {
        return Vec::new();
    }
    let name = match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
    };
    let mut names = vec![name];
    if ip.is_loopback() {
        names.push("localhost".into());
    }
    // With the port (what browsers send) and without (some clients leave it out); a
    // rebinding page's request names its own host, never these.
    names
        .iter()
        .flat_map(|n| [format!("{n}:{port}"), n.clone()])
        .collect()
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
        hosts: Arc::new(Vec::new()),
        events,
        poke: Arc::new(tokio::sync::Notify::new()),
    };
    if let Some((port, pid)) = live_server(&cfg.port_file).await {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!("td serve already running on port {port} (pid {pid})"),
        ));
    }
    let listener = tokio::net::TcpListener::bind(cfg.addr)
        .await
        .map_err(|e| {
            let hint = match e.kind() {
                std::io::ErrorKind::AddrInUse => format!(
                    ": another program listens there; pick another port with -p (e.g. -p {}) or -p 0 for any free one",
                    cfg.addr.port().saturating_add(1)
                ),
                std::io::ErrorKind::PermissionDenied => {
                    ": ports below 1024 need privileges; pick one above".to_string()
                }
                _ => String::new(),
            };
            std::io::Error::new(e.kind(), format!("cannot listen on {}: {e}{hint}", cfg.addr))
        })?;
    let addr = listener.local_addr()?;
    let mut state = state;
    state.hosts = Arc::new(served_hosts(addr));
    let app = routes::router(state.clone())
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
        .layer(axum::middleware::from_fn_with_state(state.clone(), cors));
    if let Some(dir) = cfg.port_file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // td's port file: JSON its consumers (sidecar, td's own staleness check) parse.
    let mut instance = [0u8; 3];
    getrandom::fill(&mut instance).map_err(|e| std::io::Error::other(e.to_string()))?;
    let port_file = serde_json::json!({
        "port": addr.port(),
        "pid": std::process::id(),
        "started_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "instance_id": format!("srv_{}", hex::encode(instance)),
    });
    let text = serde_json::to_string_pretty(&port_file).expect("JSON always serializes");
    std::fs::write(&cfg.port_file, text + "\n")?;
    on_listening(addr);
    let poller = tokio::spawn(events::poll(state.clone(), cfg.interval));
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    poller.abort();
    let _ = std::fs::remove_file(&cfg.port_file);
    result.map(|_| addr)
}
