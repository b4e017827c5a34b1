//! The libSQL hub client: Hrana "pipeline" requests (`POST <base>/v2/pipeline`, JSON) built from
//! the `libsql-hrana` crate's protocol types and sent with `ureq` over rustls. Only `execute` and
//! stand-alone `batch` requests are used, so Turso Cloud, a self-hosted `sqld` and
//! `tursodb --sync-server` (which supports neither `close` nor cursors) all work.
//!
//! Hub layout (created by the first client; see docs/hub.md):
//! - `td_hub_meta(key, value)` with `layout_version`;
//! - `td_changes(seq INTEGER PRIMARY KEY, hash UNIQUE, project, actor, actor_seq, author, body,
//!   signature, pushed_at)`: one row per change record; `seq` is the hub-assigned cursor.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use libsql_hrana::proto::{
    Batch, BatchStreamReq, ExecuteStreamReq, PipelineReqBody, PipelineRespBody, Stmt, StmtResult,
    StreamRequest, StreamResponse, StreamResult, Value,
};
use td_engine::hub::{
    ActorRange, HubRow, OutgoingRecord, WrappedRow, MAX_ROW_BYTES, PULL_BYTES, PULL_ROWS,
    READ_AHEAD_ROWS,
};

use crate::error::TransportError;

/// Hub layout version this client writes and reads.
pub const HUB_LAYOUT_VERSION: i64 = 1;
/// Most rows one push request carries…
pub const PUSH_BATCH: usize = 16_000;
/// …and about this many bytes of records (the request is larger: JSON and base64). Few,
/// large requests: on a 50 ms path each request costs a round trip, so 400-row requests
/// tripled a 100k-change push (issue 18).
pub const PUSH_BYTES: usize = 4 * 1024 * 1024;
/// Rows per `INSERT` statement of a push (6 parameters each plus 2 shared, far below
/// SQLite's limit): one statement per row repeated the SQL text for every row, as many bytes
/// as the row itself.
const ROWS_PER_INSERT: usize = 256;
/// Largest response body read: a pull page and a read-ahead request are bounded well below it
/// ([`PULL_BYTES`] per query, hex and JSON overhead included).
pub const RESPONSE_LIMIT: u64 = 32 * PULL_BYTES as u64 + 64 * 1024 * 1024;
/// Attempts for a request that failed in a way worth retrying (5xx, reset, timeout).
pub const ATTEMPTS: usize = 3;

/// Where a hub is and how to authenticate.
#[derive(Clone)]
pub struct HubClient {
    agent: ureq::Agent,
    endpoint: String,
    display: String,
    auth: Option<String>,
    traffic: Arc<Traffic>,
}

/// Request and response body bytes exchanged with the hub (HTTP headers not included).
#[derive(Debug, Default)]
pub struct Traffic {
    /// Bytes sent.
    pub sent: std::sync::atomic::AtomicU64,
    /// Bytes received.
    pub received: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for HubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HubClient({})", self.display)
    }
}

/// Splits a hub URL into (http base without credentials, display form, basic-auth credentials).
fn parse_url(url: &str) -> Result<(String, String, Option<String>), TransportError> {
    let url = url.trim().trim_end_matches('/');
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        TransportError::Address(format!(
            "invalid hub url '{url}': expected libsql://, https:// or http://"
        ))
    })?;
    let scheme = match scheme {
        "libsql" | "https" | "wss" => "https",
        "http" | "ws" => "http",
        other => {
            return Err(TransportError::Address(format!(
                "invalid hub url '{url}': unsupported scheme '{other}'"
            )))
        }
    };
    let (userinfo, host) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    if host.is_empty() {
        return Err(TransportError::Address(format!(
            "invalid hub url '{url}': no host"
        )));
    }
    let base = format!("{scheme}://{host}");
    let (display, basic) = match userinfo {
        Some(u) => {
            let user = u.split(':').next().unwrap_or("");
            (
                format!("{scheme}://{user}:***@{host}"),
                Some(base64::engine::general_purpose::STANDARD.encode(u)),
            )
        }
        None => (base.clone(), None),
    };
    Ok((base, display, basic))
}

/// A hub URL as it may be printed: a basic-auth password replaced by `***`.
pub fn mask_url(url: &str) -> String {
    match parse_url(url) {
        Ok((_, display, _)) => display,
        Err(_) => "(invalid hub url)".to_string(),
    }
}

/// A token shown as its first 4 characters and the length (tokens are never printed whole).
pub fn mask_token(token: &str) -> String {
    if token.is_empty() {
        return String::new();
    }
    let head: String = token.chars().take(4).collect();
    format!("{head}… ({} chars)", token.chars().count())
}

fn text(v: &str) -> Value {
    Value::Text {
        value: Arc::from(v),
    }
}

fn blob(v: &[u8]) -> Value {
    Value::Blob {
        value: Bytes::copy_from_slice(v),
    }
}

fn int(v: i64) -> Value {
    Value::Integer { value: v }
}

/// The online claims table (docs/sync-loop.md): keyed tags only, made on first use.
const CLAIMS_TABLE: &str = "CREATE TABLE IF NOT EXISTS td_claims (project TEXT NOT NULL, \
     issue BLOB NOT NULL, holder BLOB NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (project, issue))";

fn stmt(sql: &str, args: Vec<Value>, want_rows: bool) -> Stmt {
    let mut s = Stmt::new(sql, want_rows);
    s.args = args;
    s
}

fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Integer { value } => Some(*value),
        Value::Text { value } => value.parse().ok(),
        _ => None,
    }
}

fn as_bytes(v: &Value) -> Vec<u8> {
    match v {
        Value::Blob { value } => value.to_vec(),
        Value::Text { value } => value.as_bytes().to_vec(),
        _ => Vec::new(),
    }
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::Text { value } => Some(value.to_string()),
        _ => None,
    }
}

impl HubClient {
    /// A client for `url` (`libsql://…` means https; `user:pass@` means basic auth) with an
    /// optional bearer token.
    pub fn new(url: &str, token: Option<&str>) -> Result<HubClient, TransportError> {
        let (base, display, basic) = parse_url(url)?;
        let auth = match (token.filter(|t| !t.is_empty()), basic) {
            (Some(t), _) => Some(format!("Bearer {t}")),
            (None, Some(b)) => Some(format!("Basic {b}")),
            (None, None) => None,
        };
        // TD_HUB_TIMEOUT_MS changes the per-request limit (tests; very slow links).
        let limit = std::env::var("TD_HUB_TIMEOUT_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(Duration::from_secs(30), Duration::from_millis);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(limit.min(Duration::from_secs(5))))
            .timeout_global(Some(limit))
            .build()
            .into();
        Ok(HubClient {
            agent,
            endpoint: format!("{base}/v2/pipeline"),
            display,
            auth,
            traffic: Arc::default(),
        })
    }

    /// Overrides the per-request time limit (autosync uses short ones).
    pub fn with_timeout(mut self, limit: Duration) -> HubClient {
        self.agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(limit.min(Duration::from_secs(5))))
            .timeout_global(Some(limit))
            .build()
            .into();
        self
    }

    /// Bytes exchanged so far (bodies only).
    pub fn traffic(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.traffic.sent.load(Relaxed),
            self.traffic.received.load(Relaxed),
        )
    }

    /// The URL as it may be shown (no password).
    pub fn display_url(&self) -> &str {
        &self.display
    }

    fn classify(&self, e: ureq::Error) -> (TransportError, bool) {
        let (err, transient) = self.classify_plain(e);
        // A TLS URL to a hub that speaks plain HTTP (a local tursodb or sqld) fails as a
        // timeout, a TLS error or a dropped connection: say what the scheme means.
        let tls = self.display.starts_with("libsql://") || self.display.starts_with("https://");
        match err {
            TransportError::Connection(m)
                if tls && !m.contains("DNS lookup") && !m.contains("connection refused") =>
            {
                (
                    TransportError::Connection(format!(
                        "{m} (libsql:// and https:// speak TLS; a hub without TLS, such as a local tursodb or sqld, is http://host:port)"
                    )),
                    transient,
                )
            }
            other => (other, transient),
        }
    }

    fn classify_plain(&self, e: ureq::Error) -> (TransportError, bool) {
        let u = &self.display;
        let msg = e.to_string();
        match e {
            ureq::Error::HostNotFound => (
                TransportError::Connection(format!("cannot reach hub {u}: DNS lookup failed")),
                false,
            ),
            ureq::Error::Timeout(_) => (
                TransportError::Connection(format!("hub {u} did not answer in time (timeout)")),
                true,
            ),
            ureq::Error::Tls(_) | ureq::Error::Rustls(_) => (
                TransportError::Connection(format!("TLS with hub {u} failed: {msg}")),
                false,
            ),
            ureq::Error::ConnectionFailed => (
                TransportError::Connection(format!("cannot reach hub {u}: connection refused")),
                true,
            ),
            ureq::Error::Io(io) => {
                let transient = matches!(
                    io.kind(),
                    std::io::ErrorKind::ConnectionRefused
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::UnexpectedEof
                        | std::io::ErrorKind::BrokenPipe
                        | std::io::ErrorKind::TimedOut
                );
                let what = match io.kind() {
                    std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
                    std::io::ErrorKind::ConnectionReset => "connection reset".to_string(),
                    std::io::ErrorKind::TimedOut => "timeout".to_string(),
                    _ => io.to_string(),
                };
                (
                    TransportError::Connection(format!("cannot reach hub {u}: {what}")),
                    transient,
                )
            }
            _ => (TransportError::Connection(format!("hub {u}: {msg}")), true),
        }
    }

    /// One pipeline request, retried (bounded) on failures worth retrying. Every request this
    /// client sends is idempotent (reads, `CREATE … IF NOT EXISTS`, `INSERT OR IGNORE`).
    fn pipeline(
        &self,
        requests: Vec<StreamRequest>,
    ) -> Result<Vec<StreamResponse>, TransportError> {
        let body = serde_json::to_vec(&PipelineReqBody {
            baton: None,
            requests,
        })
        .expect("requests serialize");
        let mut last = None;
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(200 * 3u64.pow(attempt as u32 - 1)));
            }
            match self.once(&body) {
                Ok(r) => return Ok(r),
                Err((e, transient)) => {
                    if !transient {
                        return Err(e);
                    }
                    last = Some(e);
                }
            }
        }
        Err(last.expect("at least one attempt"))
    }

    fn once(&self, body: &[u8]) -> Result<Vec<StreamResponse>, (TransportError, bool)> {
        let mut req = self
            .agent
            .post(&self.endpoint)
            .header("Content-Type", "application/json");
        if let Some(a) = &self.auth {
            req = req.header("Authorization", a);
        }
        use std::sync::atomic::Ordering::Relaxed;
        self.traffic.sent.fetch_add(body.len() as u64, Relaxed);
        let mut resp = req.send(body).map_err(|e| self.classify(e))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(RESPONSE_LIMIT)
            .read_to_string()
            .map_err(|e| self.classify(e))?;
        self.traffic.received.fetch_add(text.len() as u64, Relaxed);
        let u = &self.display;
        match status {
            200 => {}
            401 | 403 => {
                return Err((
                    TransportError::Refused(format!(
                        "hub {u} refused the credentials (HTTP {status}): check the token (td config set database.token, or TD_DATABASE_TOKEN)"
                    )),
                    false,
                ))
            }
            s if s >= 500 => return Err((TransportError::Connection(format!("hub {u} failed (HTTP {s}): {}", first_line(&text))), true)),
            s => return Err((TransportError::Protocol(format!("hub {u} answered HTTP {s}: {}", first_line(&text))), false)),
        }
        let parsed: PipelineRespBody = serde_json::from_str(&text).map_err(|e| {
            (
                TransportError::Protocol(format!("hub {u} sent an unreadable response ({e})")),
                true,
            )
        })?;
        parsed
            .results
            .into_iter()
            .map(|r| match r {
                StreamResult::Ok { response } => Ok(response),
                StreamResult::Error { error } => Err((
                    TransportError::Protocol(format!(
                        "hub {u}: {} ({})",
                        error.message, error.code
                    )),
                    false,
                )),
                StreamResult::None => Err((
                    TransportError::Protocol(format!("hub {u} sent an empty result")),
                    true,
                )),
            })
            .collect()
    }

    fn execute(&self, s: Stmt) -> Result<StmtResult, TransportError> {
        let mut out = self.pipeline(vec![StreamRequest::Execute(ExecuteStreamReq { stmt: s })])?;
        match out.pop() {
            Some(StreamResponse::Execute(e)) => Ok(e.result),
            _ => Err(TransportError::Protocol(format!(
                "hub {} sent an unexpected response",
                self.display
            ))),
        }
    }

    fn batch(&self, stmts: Vec<Stmt>) -> Result<(), TransportError> {
        let mut out = self.pipeline(vec![StreamRequest::Batch(BatchStreamReq {
            batch: Batch::transactional(stmts),
        })])?;
        match out.pop() {
            Some(StreamResponse::Batch(b)) => {
                if let Some(e) = b.result.step_errors.iter().flatten().next() {
                    return Err(TransportError::Protocol(format!(
                        "hub {}: {}",
                        self.display, e.message
                    )));
                }
                Ok(())
            }
            _ => Err(TransportError::Protocol(format!(
                "hub {} sent an unexpected response",
                self.display
            ))),
        }
    }

    /// Checks the hub's layout, creating it on first use. A hub laid out by a newer client is
    /// refused and never written.
    pub fn ensure_layout(&self) -> Result<(), TransportError> {
        let probe = self.execute(stmt(
            "SELECT value FROM td_hub_meta WHERE key = 'layout_version'",
            vec![],
            true,
        ));
        match probe {
            Ok(r) => {
                match first_int(&r) {
                    Some(v) if v > HUB_LAYOUT_VERSION => Err(TransportError::Protocol(format!(
                        "hub {} has layout version {v}, newer than this td understands ({HUB_LAYOUT_VERSION}); upgrade td",
                        self.display
                    ))),
                    Some(_) => Ok(()),
                    None => self.create_layout(),
                }
            }
            Err(TransportError::Protocol(m)) if m.contains("no such table") => self.create_layout(),
            Err(e) => Err(e),
        }
    }

    fn create_layout(&self) -> Result<(), TransportError> {
        self.batch(vec![
            stmt("CREATE TABLE IF NOT EXISTS td_hub_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)", vec![], false),
            stmt(
                "CREATE TABLE IF NOT EXISTS td_changes (seq INTEGER PRIMARY KEY, hash BLOB NOT NULL UNIQUE, \
                 project TEXT NOT NULL, actor BLOB NOT NULL, actor_seq INTEGER NOT NULL, author BLOB NOT NULL, \
                 body BLOB NOT NULL, signature BLOB NOT NULL, pushed_at TEXT NOT NULL)",
                vec![],
                false,
            ),
            stmt("CREATE INDEX IF NOT EXISTS td_changes_project ON td_changes(project, seq)", vec![], false),
            // Read-ahead along one writer's chain (a hub laid out before it scans instead).
            stmt("CREATE INDEX IF NOT EXISTS td_changes_actor ON td_changes(project, actor, actor_seq)", vec![], false),
            stmt(
                "INSERT OR IGNORE INTO td_hub_meta(key, value) VALUES ('layout_version', ?)",
                vec![text(&HUB_LAYOUT_VERSION.to_string())],
                false,
            ),
        ])
    }

    /// Projects with changes on this hub.
    pub fn projects(&self) -> Result<Vec<String>, TransportError> {
        let r = self.execute(stmt(
            "SELECT DISTINCT project FROM td_changes ORDER BY project",
            vec![],
            true,
        ))?;
        Ok(r.rows
            .iter()
            .filter_map(|row| row.values.first().and_then(as_text))
            .collect())
    }

    /// How many of `project`'s rows on the hub hold content in plaintext: records written
    /// before the project's first epoch that `td sync encrypt-hub` has not wrapped yet. The
    /// roster's rows, plaintext by design (they carry keys, roles and sealed epoch keys, no
    /// content), are not counted (docs/encryption.md).
    pub fn plaintext_rows(&self, project: &str) -> Result<i64, TransportError> {
        self.count(
            &format!("SELECT count(*) FROM td_changes WHERE {PLAIN_CONTENT}"),
            vec![text(project), roster_prefix(project)],
        )
    }

    /// `project`'s roster rows (plaintext, told apart by their first bytes), bounded as a
    /// pull page is: read before the history by a replica that has pulled nothing yet, so
    /// the epoch keys sealed to it arrive before the records they open.
    pub fn roster_rows(&self, project: &str) -> Result<Vec<HubRow>, TransportError> {
        self.page(
            "project = ?1 AND substr(body, 1, length(?2)) = ?2",
            vec![text(project), roster_prefix(project)],
            PULL_ROWS,
        )
    }

    /// How many of `project`'s rows the hub holds at or below sequence `upto`, its highest
    /// sequence, and the hash of its row at `upto` (`Store::hub_audit` checks them against
    /// what this replica saw), in one request.
    pub fn audit(
        &self,
        project: &str,
        upto: i64,
    ) -> Result<(i64, i64, Option<Vec<u8>>), TransportError> {
        let requests = vec![
            StreamRequest::Execute(ExecuteStreamReq {
                stmt: stmt(
                    "SELECT count(*) FROM td_changes WHERE project = ?1 AND seq <= ?2",
                    vec![text(project), int(upto)],
                    true,
                ),
            }),
            StreamRequest::Execute(ExecuteStreamReq {
                stmt: stmt(
                    "SELECT coalesce(max(seq), 0) FROM td_changes WHERE project = ?1",
                    vec![text(project)],
                    true,
                ),
            }),
            StreamRequest::Execute(ExecuteStreamReq {
                stmt: stmt(
                    "SELECT hash FROM td_changes WHERE project = ?1 AND seq = ?2",
                    vec![text(project), int(upto)],
                    true,
                ),
            }),
        ];
        let mut out = Vec::new();
        let mut hash = None;
        for (n, resp) in self.pipeline(requests)?.into_iter().enumerate() {
            match resp {
                StreamResponse::Execute(e) if n == 2 => {
                    hash = e
                        .result
                        .rows
                        .first()
                        .and_then(|r| r.values.first())
                        .and_then(|v| match v {
                            Value::Blob { value } => Some(value.to_vec()),
                            _ => None,
                        });
                }
                StreamResponse::Execute(e) => out.push(first_int(&e.result).unwrap_or(0)),
                _ => {
                    return Err(TransportError::Protocol(format!(
                        "hub {} sent an unexpected response",
                        self.display
                    )))
                }
            }
        }
        Ok((
            out.first().copied().unwrap_or(0),
            out.get(1).copied().unwrap_or(0),
            hash,
        ))
    }

    /// Claims an issue online (docs/sync-loop.md, "Claims granted online"): one conditional
    /// write that stores this machine's tag for the issue's tag unless another machine's
    /// stands (`force` overwrites it), then reads who holds it and how old the claim is, both
    /// by the hub's clock. The table is made on first use, so hubs laid out before claims
    /// need no migration. The hub sees only keyed tags.
    pub fn claim(
        &self,
        project: &str,
        tags: &td_engine::ops::online_claims::ClaimTags,
        force: bool,
    ) -> Result<td_engine::ops::online_claims::HubClaim, TransportError> {
        use td_engine::ops::online_claims::{HubClaim, TAG_LEN};
        const NOW_MS: &str = "CAST(unixepoch('subsec') * 1000 AS INTEGER)";
        let exec = |s: Stmt| StreamRequest::Execute(ExecuteStreamReq { stmt: s });
        let requests = vec![
            exec(stmt(CLAIMS_TABLE, vec![], false)),
            exec(stmt(
                &format!(
                    "INSERT INTO td_claims(project, issue, holder, at) VALUES (?1, ?2, ?3, {NOW_MS}) \
                     ON CONFLICT(project, issue) DO UPDATE SET holder = excluded.holder, at = excluded.at \
                     WHERE td_claims.holder = excluded.holder OR ?4 = 1"
                ),
                vec![text(project), blob(&tags.issue), blob(&tags.holder), int(i64::from(force))],
                false,
            )),
            exec(stmt(
                &format!("SELECT holder, {NOW_MS} - at FROM td_claims WHERE project = ?1 AND issue = ?2"),
                vec![text(project), blob(&tags.issue)],
                true,
            )),
        ];
        let unexpected = || {
            TransportError::Protocol(format!(
                "hub {} sent an unexpected answer to a claim",
                self.display
            ))
        };
        let out = self.pipeline(requests)?;
        let Some(StreamResponse::Execute(e)) = out.last() else {
            return Err(unexpected());
        };
        let row = e.result.rows.first().ok_or_else(unexpected)?;
        let holder: [u8; TAG_LEN] = row
            .values
            .first()
            .map(as_bytes)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(unexpected)?;
        let age_ms = row.values.get(1).and_then(as_i64).unwrap_or(0).max(0);
        Ok(if holder == tags.holder {
            HubClaim::Granted
        } else {
            HubClaim::HeldBy { holder, age_ms }
        })
    }

    /// Withdraws this machine's online claims on the issues `tags` name (a claim another
    /// machine holds is left alone), in one request. Run after the change that handed the
    /// issues on was pushed, so whoever claims next and pulls sees it.
    pub fn release_claims(
        &self,
        project: &str,
        tags: &[td_engine::ops::online_claims::ClaimTags],
    ) -> Result<(), TransportError> {
        if tags.is_empty() {
            return Ok(());
        }
        let mut stmts = vec![stmt(CLAIMS_TABLE, vec![], false)];
        stmts.extend(tags.iter().map(|t| {
            stmt(
                "DELETE FROM td_claims WHERE project = ?1 AND issue = ?2 AND holder = ?3",
                vec![text(project), blob(&t.issue), blob(&t.holder)],
                false,
            )
        }));
        self.batch(stmts)
    }

    /// How many of `project`'s rows the hub holds after sequence `after` (what a pull has
    /// left to read, for its progress line).
    pub fn rows_after(&self, project: &str, after: i64) -> Result<u64, TransportError> {
        Ok(self
            .count(
                "SELECT count(*) FROM td_changes WHERE project = ?1 AND seq > ?2",
                vec![text(project), int(after)],
            )?
            .max(0) as u64)
    }

    /// The next page of `project`'s plaintext content rows after hub sequence `after`
    /// (bounded as [`HubClient::pull`] pages are), for `td sync encrypt-hub`.
    pub fn plaintext_page(
        &self,
        project: &str,
        after: i64,
        rows: usize,
    ) -> Result<Vec<HubRow>, TransportError> {
        self.page(
            &format!("{PLAIN_CONTENT} AND seq > ?3"),
            vec![text(project), roster_prefix(project), int(after)],
            rows,
        )
    }

    /// Replaces plaintext rows by their wrapped bodies in one transactional batch. Each
    /// update names the row's sequence and record hash and applies only while the row is
    /// still plaintext, so a batch sent twice (a retry, a resumed run) changes nothing more.
    pub fn replace_bodies(&self, project: &str, rows: &[WrappedRow]) -> Result<(), TransportError> {
        if rows.is_empty() {
            return Ok(());
        }
        let stmts = rows
            .iter()
            .map(|r| {
                stmt(
                    "UPDATE td_changes SET body = ?1 WHERE project = ?2 AND seq = ?3 AND hash = ?4 AND substr(body, 1, 1) = x'01'",
                    vec![blob(&r.body), text(project), int(r.seq), blob(&r.hash)],
                    false,
                )
            })
            .collect();
        self.batch(stmts)
    }

    /// Inserts records in one transactional batch; rows already on the hub are ignored.
    pub fn push(
        &self,
        project: &str,
        records: &[OutgoingRecord],
        now: &str,
    ) -> Result<(), TransportError> {
        let stmts = records
            .chunks(ROWS_PER_INSERT)
            .map(|chunk| {
                // The project and the time are sent once per statement (?1, ?2), each row's
                // own six values after them.
                let values = (0..chunk.len())
                    .map(|k| {
                        let p = 3 + 6 * k;
                        format!(
                            "(?{}, ?1, ?{}, ?{}, ?{}, ?{}, ?{}, ?2)",
                            p,
                            p + 1,
                            p + 2,
                            p + 3,
                            p + 4,
                            p + 5
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                let mut args = vec![text(project), text(now)];
                args.extend(chunk.iter().flat_map(|r| {
                    [
                        blob(&r.hash),
                        blob(&r.actor),
                        int(r.seq),
                        blob(&r.author),
                        blob(&r.body),
                        blob(&r.signature),
                    ]
                }));
                stmt(
                    &format!(
                        "INSERT OR IGNORE INTO td_changes(hash, project, actor, actor_seq, author, body, signature, pushed_at) VALUES {values}"
                    ),
                    args,
                    false,
                )
            })
            .collect();
        self.batch(stmts)
    }

    /// The next page of `project`'s rows after hub sequence `after`: at most
    /// [`PULL_ROWS`] rows and [`PULL_BYTES`] bytes (the first row always; a row over
    /// [`MAX_ROW_BYTES`] comes without its body). The byte bound is computed by the hub with a
    /// running sum, so one request reads a bounded page whatever the rows hold.
    pub fn pull(&self, project: &str, after: i64) -> Result<Vec<HubRow>, TransportError> {
        self.page(
            "project = ?1 AND seq > ?2",
            vec![text(project), int(after)],
            PULL_ROWS,
        )
    }

    /// Rows matching `filter` (over parameters `args`, `?1..`) in hub order, bounded at
    /// `rows` rows (at most [`PULL_ROWS`]) and [`PULL_BYTES`] bytes ([`bounded_rows`]).
    fn page(
        &self,
        filter: &str,
        mut args: Vec<Value>,
        rows: usize,
    ) -> Result<Vec<HubRow>, TransportError> {
        let n = args.len();
        args.extend([
            int(rows.clamp(1, PULL_ROWS) as i64),
            int(MAX_ROW_BYTES as i64),
            int(PULL_BYTES as i64),
        ]);
        let r = self.execute(stmt(&bounded_rows(filter, n, "seq"), args, true))?;
        Ok(rows_of(&r))
    }

    /// The number a `SELECT count(*)` answers.
    fn count(&self, sql: &str, args: Vec<Value>) -> Result<i64, TransportError> {
        Ok(first_int(&self.execute(stmt(sql, args, true))?).unwrap_or(0))
    }

    /// Rows of each writer in `ranges` (by the hub's `actor`/`actor_seq` columns, which are
    /// only hints: the engine checks every body), one bounded query per range, all in one
    /// request.
    pub fn pull_actors(
        &self,
        project: &str,
        ranges: &[ActorRange],
    ) -> Result<Vec<HubRow>, TransportError> {
        if ranges.is_empty() {
            return Ok(Vec::new());
        }
        let sql = bounded_rows(
            "project = ?1 AND actor = ?2 AND actor_seq > ?3 AND actor_seq < ?4",
            4,
            "actor_seq, seq",
        );
        let requests = ranges
            .iter()
            .map(|r| {
                let before = r.before.map_or(i64::MAX, |b| b as i64);
                StreamRequest::Execute(ExecuteStreamReq {
                    stmt: stmt(
                        &sql,
                        vec![
                            text(project),
                            blob(&r.actor),
                            int(r.after as i64),
                            int(before),
                            int(READ_AHEAD_ROWS as i64),
                            int(MAX_ROW_BYTES as i64),
                            int(PULL_BYTES as i64),
                        ],
                        true,
                    ),
                })
            })
            .collect();
        let mut out = Vec::new();
        for resp in self.pipeline(requests)? {
            match resp {
                StreamResponse::Execute(e) => out.extend(rows_of(&e.result)),
                _ => {
                    return Err(TransportError::Protocol(format!(
                        "hub {} sent an unexpected response",
                        self.display
                    )))
                }
            }
        }
        Ok(out)
    }
}

/// The first bytes of every plaintext roster record of `project`, as a blob argument.
fn roster_prefix(project: &str) -> Value {
    blob(&td_engine::record::plain_prefix(
        project,
        td_engine::model::ROSTER_ID,
    ))
}

/// Rows of project `?1` holding content in plaintext: format 1, and not the roster's (whose
/// records all start with the prefix `?2`).
const PLAIN_CONTENT: &str =
    "project = ?1 AND substr(body, 1, 1) = x'01' AND substr(body, 1, length(?2)) != ?2";

/// A query for rows matching `filter` (which uses parameters `?1..?n`) in `order`, bounded in
/// rows (`?n+1`) and in bytes (`?n+3`: a running sum over the rows, the first row always
/// included), leaving out the bodies of rows over the row bound (`?n+2`): one hostile row or
/// page can never make a read unbounded.
fn bounded_rows(filter: &str, n: usize, order: &str) -> String {
    let (limit, row_max, budget) = (n + 1, n + 2, n + 3);
    format!(
        "SELECT seq, CASE WHEN size <= ?{row_max} THEN body END, CASE WHEN size <= ?{row_max} THEN signature END, size FROM (\
           SELECT seq, actor_seq, body, signature, size, counted, sum(counted) OVER (ORDER BY {order}) AS total FROM (\
             SELECT seq, actor_seq, body, signature, length(body) + length(signature) AS size, \
                    CASE WHEN length(body) + length(signature) <= ?{row_max} THEN length(body) + length(signature) ELSE 0 END AS counted \
             FROM td_changes WHERE {filter} ORDER BY {order} LIMIT ?{limit})) \
         WHERE total - counted < ?{budget} ORDER BY {order}"
    )
}

/// The first column of the first row as an integer (hubs send integers as numbers or text).
fn first_int(r: &StmtResult) -> Option<i64> {
    let v = r.rows.first()?.values.first()?;
    as_i64(v).or_else(|| as_text(v)?.parse().ok())
}

fn rows_of(r: &StmtResult) -> Vec<HubRow> {
    r.rows
        .iter()
        .filter_map(|row| {
            let v = &row.values;
            Some(HubRow {
                seq: as_i64(v.first()?)?,
                body: as_bytes(v.get(1)?),
                signature: as_bytes(v.get(2)?),
                size: as_i64(v.get(3)?)?.max(0) as u64,
            })
        })
        .collect()
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let (b, d, a) = parse_url("libsql://db-team.turso.io").unwrap();
        assert_eq!(
            (b.as_str(), d.as_str(), a),
            ("https://db-team.turso.io", "https://db-team.turso.io", None)
        );
        let (b, d, a) = parse_url("http://admin:secret@127.0.0.1:8080/").unwrap();
        assert_eq!(b, "http://127.0.0.1:8080");
        assert_eq!(d, "http://admin:***@127.0.0.1:8080");
        assert_eq!(a.as_deref(), Some("YWRtaW46c2VjcmV0"));
        assert!(parse_url("ftp://x").is_err());
        assert!(parse_url("nonsense").is_err());
        assert_eq!(mask_token("eyJhbGciOi"), "eyJh… (10 chars)");
    }
}
