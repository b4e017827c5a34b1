//! Harness for the workspace-level tests: replicas as temporary project directories with their
//! own config dir (so their own machine key), driven through the real `td` binary.

pub mod hub;
pub mod udp_proxy;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tempfile::TempDir;

/// Path of the `td` binary under test: `$TD_BIN` if set, else `target/<profile>/td` next to
/// the test executable, rebuilt first (`cargo build -p td-cli`, `--release` for a release
/// profile) when any source it is built from is newer than it. So a test never runs a stale
/// binary, also under `cargo test -p td-tests`, which does not build `td` by itself. Checked
/// once per test process.
pub fn td_bin() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(fresh_td_bin).clone()
}

fn fresh_td_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("TD_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile dir");
    let bin = dir.join(format!("td{}", std::env::consts::EXE_SUFFIX));
    let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    if built.is_none_or(|b| newest_source(workspace) > b) {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", "td-cli"]).current_dir(workspace);
        // The variables cargo sets for this test process would make build scripts run again
        // (and the next outer build after them): build as a plain `cargo build` would.
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().to_string();
            if k.starts_with("CARGO_") && k != "CARGO_HOME" && k != "CARGO_TARGET_DIR" {
                cmd.env_remove(&k);
            }
        }
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "cargo build -p td-cli failed");
    }
    assert!(bin.exists(), "td binary not found at {}", bin.display());
    bin
}

/// The newest modification time among the files `td` is built from.
fn newest_source(workspace: &Path) -> std::time::SystemTime {
    fn walk(p: &Path, newest: &mut std::time::SystemTime) {
        let Ok(meta) = std::fs::metadata(p) else {
            return;
        };
        if meta.is_dir() {
            for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
                walk(&e.path(), newest);
            }
        } else if let Ok(m) = meta.modified() {
            *newest = (*newest).max(m);
        }
    }
    let mut newest = std::time::UNIX_EPOCH;
    for part in ["engine", "transport", "cli"] {
        walk(&workspace.join(part).join("src"), &mut newest);
        walk(&workspace.join(part).join("Cargo.toml"), &mut newest);
    }
    walk(&workspace.join("Cargo.toml"), &mut newest);
    walk(&workspace.join("Cargo.lock"), &mut newest);
    newest
}

/// One replica: a project directory and a config dir holding its machine key.
pub struct Replica {
    _tmp: TempDir,
    /// Project root.
    pub root: PathBuf,
    /// `XDG_CONFIG_HOME` for this replica.
    pub config: PathBuf,
    /// Whether its commands autosync with a configured hub (td's default). Off in tests unless
    /// a test turns it on (`TD_SYNC_AUTO=false`), so that what a test's explicit `td sync`
    /// reports does not depend on what an earlier command already synced.
    pub autosync: std::cell::Cell<bool>,
}

/// Result of one `td` run.
#[derive(Debug)]
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Stdout parsed as exactly one JSON value (panics otherwise). td prints `--json` indented
    /// over several lines, so the whole output is one document.
    pub fn json(&self) -> Value {
        let values = json_values(&self.stdout);
        assert_eq!(
            values.len(),
            1,
            "expected exactly one JSON value, got: {}",
            self.stdout
        );
        values.into_iter().next().unwrap()
    }

    /// The error code of a failed `--json` run (asserting exit 1 and a single envelope).
    pub fn error_code(&self) -> String {
        assert_eq!(self.code, 1, "expected failure, got {self:?}");
        let v = self.json();
        v["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code in {v}"))
            .to_string()
    }
}

impl Replica {
    /// A fresh, uninitialised replica directory with its own machine identity.
    pub fn new() -> Replica {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("project");
        let config = tmp.path().join("config");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&config).unwrap();
        Replica {
            _tmp: tmp,
            root,
            config,
            autosync: std::cell::Cell::new(false),
        }
    }

    /// A replica with `td init` already run.
    pub fn init() -> Replica {
        let r = Replica::new();
        r.ok(&["init"]);
        r
    }

    /// The project's database path.
    pub fn db(&self) -> PathBuf {
        self.root.join(".todos").join("issues.db")
    }

    /// A `td` command for this replica (not yet run).
    pub fn command(&self, session: Option<&str>, args: &[&str]) -> Command {
        let mut c = Command::new(td_bin());
        c.args(["-w", self.root.to_str().unwrap()]).args(args);
        c.env("XDG_CONFIG_HOME", &self.config)
            .env_remove("TD_WORK_DIR")
            .env_remove("TD_CONTEXT_ID");
        if self.autosync.get() {
            c.env_remove("TD_SYNC_AUTO");
        } else {
            c.env("TD_SYNC_AUTO", "false");
        }
        match session {
            Some(s) => c.env("TD_SESSION_ID", s),
            None => c.env_remove("TD_SESSION_ID"),
        };
        c
    }

    /// Runs `td args` as the default session.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command(None, args).output().expect("spawn td"))
    }

    /// Runs `td args` as the named session (`TD_SESSION_ID`).
    pub fn run_as(&self, session: &str, args: &[&str]) -> Run {
        Run::from(
            self.command(Some(session), args)
                .output()
                .expect("spawn td"),
        )
    }

    /// Runs and asserts success, returning stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(r.code, 0, "td {args:?} failed: {r:?}");
        r.stdout
    }

    /// Runs with `--json`, asserts success, returns the value.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        let r = self.run(&a);
        assert_eq!(r.code, 0, "td {a:?} failed: {r:?}");
        r.json()
    }

    /// Same as [`Replica::json`] as the named session.
    pub fn json_as(&self, session: &str, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        let r = self.run_as(session, &a);
        assert_eq!(r.code, 0, "td {a:?} as {session} failed: {r:?}");
        r.json()
    }

    /// Creates an issue and returns its id.
    pub fn create(&self, title: &str, extra: &[&str]) -> String {
        let mut a = vec!["create", title];
        a.extend_from_slice(extra);
        self.json(&a)["id"].as_str().unwrap().to_string()
    }

    /// `td member invite <args>`: the invite code.
    pub fn invite(&self, args: &[&str]) -> String {
        let mut a = vec!["member", "invite"];
        a.extend_from_slice(args);
        let v = self.json(&a);
        assert_eq!(v["action"], "invited", "{v}");
        v["code"].as_str().unwrap().to_string()
    }

    /// `td export --format json`.
    pub fn export(&self) -> String {
        self.ok(&["export", "--format", "snapshot"])
    }
}

impl Default for Replica {
    fn default() -> Self {
        Replica::new()
    }
}

/// A canonical dump of a SQLite database: for each table (by name) its DDL and its rows sorted,
/// for each index its DDL. Equal dumps mean equal tables whatever the physical order.
pub fn canonical_dump(db: &Path, skip_prefix: Option<&str>) -> String {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut objs: Vec<(String, String, String)> = conn
        .prepare("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    objs.retain(|(_, name, _)| skip_prefix.is_none_or(|p| !name.starts_with(p)));
    let mut out = String::new();
    for (ty, name, sql) in objs {
        out.push_str(&format!("{ty} {name}: {sql}\n"));
        if ty != "table" {
            continue;
        }
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{name}\"")).unwrap();
        let n = stmt.column_count();
        let mut rows: Vec<String> = stmt
            .query_map([], |r| {
                let vals: Vec<String> = (0..n)
                    .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                    .collect();
                Ok(vals.join("|"))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        rows.sort();
        for r in rows {
            out.push_str(&format!("  {r}\n"));
        }
    }
    out
}

pub mod fuzz_checks;
pub mod inproc;

pub mod browser;

/// `/usr/bin/<binary>`, installed from Debian's `package` with apt-get when missing (as on
/// CI's fresh machine); one installer at a time across test processes (flock). `why` says
/// which tests need it, for the failure message.
pub fn apt_binary(binary: &str, package: &str, why: &str) -> PathBuf {
    let path = PathBuf::from(format!("/usr/bin/{binary}"));
    if path.exists() {
        return path;
    }
    let ok = Command::new("flock")
        .arg(std::env::temp_dir().join(format!("td-tests-{package}.lock")))
        .args([
            "sh",
            "-c",
            &format!(
                "test -x {} || (apt-get update -qq && apt-get install -y -qq {package})",
                path.display()
            ),
        ])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "cannot install {package} with apt-get ({why})");
    path
}
pub mod tmux;

pub mod mesh;
pub mod netns;
pub mod scale;

/// A running `td serve` (its HTTP port read from the line it prints first); killed when
/// dropped. Its stderr is discarded (nothing reads it, so a full pipe cannot stall it).
pub struct WebServer {
    /// The server process.
    pub child: std::process::Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl WebServer {
    /// Starts `td serve` from `cmd` (a `td … serve -p 0 …` command) and waits for its port.
    pub fn spawn(mut cmd: Command) -> WebServer {
        use std::io::BufRead;
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn td serve");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in td serve's first line {line:?}"));
        WebServer { child, port }
    }
}

/// Every JSON value in `text`, one after another (td's indented documents, or JSON lines);
/// panics on text that is not JSON.
pub fn json_values(text: &str) -> Vec<Value> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("invalid JSON ({e}): {text}"))
}

/// One HTTP/1.1 exchange with a local server, as a client that sends no `Origin`: the status,
/// the response headers (lower-cased names) and the body as text.
pub fn http_exchange(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, Vec<(String, String)>, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let body = body.unwrap_or("");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let out = String::from_utf8_lossy(&out).to_string();
    let (head, payload) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("an HTTP status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect::<Vec<_>>();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(payload)
    } else {
        payload.to_string()
    };
    (status, headers, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// [`http_exchange`] with a JSON body in and out: (status, body as JSON, `Null` if not JSON).
pub fn http_json(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, Value) {
    let text = body.map(|b| b.to_string());
    let (st, _, out) = http_exchange(port, method, path, headers, text.as_deref());
    (st, serde_json::from_str(&out).unwrap_or(Value::Null))
}

impl Drop for WebServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `td peer serve` for a replica; stopped (SIGTERM) when dropped.
pub struct Serving {
    child: std::process::Child,
    /// `127.0.0.1:<port>`.
    pub addr: String,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Serving {
    /// Starts `td peer serve` from `cmd` (a `td … peer serve --listen 127.0.0.1:0` command,
    /// with whatever environment the test sets) and waits for its address.
    pub fn spawn(mut cmd: Command) -> Serving {
        use std::io::{BufRead, Read};
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn td peer serve");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Serving {
            child,
            addr,
            stderr: Some(stderr),
        }
    }

    /// The server's peak resident memory so far (`VmHWM` in /proc), in KiB.
    pub fn peak_rss_kb(&self) -> u64 {
        peak_rss_kb(self.child.id()).expect("server is running")
    }

    /// Stops the server with SIGTERM, asserting it exits 0; returns its stderr log.
    pub fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let status = self.child.wait().expect("server exit");
        let log = self
            .stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        assert!(
            status.success(),
            "td peer serve exited with {status}: {log}"
        );
        log
    }
}

impl Serving {
    /// Kills the server with SIGKILL (a crash, a laptop lid closed mid-round): no shutdown,
    /// no goodbye to its peers.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Replica {
    /// This replica's machine public key.
    pub fn public_key(&self) -> String {
        self.json(&["peer", "id"])["public_key"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Starts `td peer serve --listen 127.0.0.1:0` and waits for its address line.
    pub fn serve(&self) -> Serving {
        self.serve_on("127.0.0.1:0")
    }

    /// Starts `td peer serve` on `addr` (a server that comes back on the address it had).
    pub fn serve_on(&self, addr: &str) -> Serving {
        Serving::spawn(self.command(None, &["peer", "serve", "--listen", addr]))
    }

    /// Makes `other` a member here and pins this replica's server in `other`'s address book
    /// under `name`.
    pub fn befriend(&self, other: &Replica, name: &str, addr: &str) {
        self.json(&["member", "add", &other.public_key()]);
        other.json(&["peer", "add", name, addr, "--key", &self.public_key()]);
    }
}

impl Replica {
    /// This replica's machine identity, read from its key file.
    pub fn identity(&self) -> td_engine::MachineIdentity {
        let hexkey =
            std::fs::read_to_string(self.config.join("td/machine.key")).expect("machine key");
        let seed: [u8; 32] = hex::decode(hexkey.trim()).unwrap().try_into().unwrap();
        td_engine::MachineIdentity::from_seed(seed)
    }

    /// Opens the replica's store in-process (for bulk setup and log inspection).
    pub fn store(&self) -> td_engine::Store {
        td_engine::Store::open(&self.root, self.identity()).unwrap()
    }
}

/// Creates `n` issues directly through the engine in large transactions (fast setup for
/// tests that need a big history; the documents are the same `td create` makes).
pub fn bulk_issues(r: &Replica, n: usize, changes_per_issue: usize) {
    use td_engine::doc::{self, Field};
    use td_engine::model::{now_timestamp, Kind};
    let mut store = r.store();
    let session = "ses_bulk";
    let mut made = 0;
    while made < n {
        let batch = (n - made).min(2000);
        store
            .write(session, |tx| {
                for i in 0..batch {
                    let id = Kind::Issue.new_id();
                    let now = now_timestamp();
                    tx.change(&id, |d| {
                        doc::put_str(d, "title", &format!("Bulk issue {}", made + i))?;
                        doc::put_str(d, "type", "task")?;
                        doc::put_str(d, "priority", "P2")?;
                        doc::put_str(d, "created_at", &now)?;
                        doc::put_str(d, "updated_at", &now)?;
                        doc::put_str(d, "creator_session", session)?;
                        let mut wf = std::collections::BTreeMap::new();
                        wf.insert("status".to_string(), Field::Str("open".into()));
                        doc::put_workflow(d, &wf)
                    })?;
                    for k in 1..changes_per_issue {
                        tx.change(&id, |d| doc::put_str(d, "sprint", &format!("s{k}")))?;
                    }
                }
                Ok(())
            })
            .unwrap();
        made += batch;
    }
}

/// Baselines for benchmarks, measured in the same run as the figures they are compared with.
pub mod floor {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use automerge::{AutoCommit, Change};
    use td_engine::doc::{self, Field};

    /// The engine's apply floor: read every change in `db`'s log, apply them to fresh
    /// Automerge documents (one per entity), and insert the issue rows into a fresh td schema
    /// with rusqlite in one transaction. No signing, verification, log or snapshots.
    pub fn apply_floor(db: &Path) -> Duration {
        floor(db, false)
    }

    /// The floor as the peer-sync issue defines it: the same changes applied to fresh
    /// Automerge documents *plus inserting them* (each change, as a row) into SQLite, in one
    /// transaction; the issue rows are inserted too, as in [`apply_floor`].
    pub fn apply_and_store_floor(db: &Path) -> Duration {
        floor(db, true)
    }

    /// Every change of `db`'s issues as (doc id, stored body, plaintext Automerge change):
    /// sealed records opened with the keys the replica holds (docs/encryption.md), before
    /// any timing, so the floor stays what applying the changes costs.
    fn plain_changes(src: &rusqlite::Connection) -> Vec<(String, Vec<u8>, Vec<u8>)> {
        let mut stmt = src
            .prepare("SELECT doc_id, body FROM crdt_changes WHERE doc_id LIKE 'td-%' ORDER BY doc_id, id")
            .unwrap();
        let rows: Vec<(String, Vec<u8>)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        rows.into_iter()
            .map(|(id, body)| {
                let change = crate::stored_change(src, &body);
                (id, body, change)
            })
            .collect()
    }

    fn floor(db: &Path, store_changes: bool) -> Duration {
        let tmp = tempfile::tempdir().unwrap();
        let src = rusqlite::Connection::open(db).unwrap();
        let plain = plain_changes(&src);
        let t = Instant::now();
        let mut dst = rusqlite::Connection::open(tmp.path().join("floor.db")).unwrap();
        dst.execute_batch(td_engine::schema::TD_SCHEMA_SQL).unwrap();
        dst.execute_batch("CREATE TABLE changes (id INTEGER PRIMARY KEY, doc_id TEXT NOT NULL, body BLOB NOT NULL)")
            .unwrap();
        let tx = dst.transaction().unwrap();
        {
            let mut store = tx
                .prepare("INSERT INTO changes(doc_id, body) VALUES (?1, ?2)")
                .unwrap();
            let mut ins = tx
                .prepare("INSERT INTO issues(id, title, type, priority, status, created_at, updated_at, creator_session, sprint) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)")
                .unwrap();
            let mut groups: Vec<(String, Vec<Change>)> = Vec::new();
            for (id, body, raw) in plain {
                if store_changes {
                    store.execute(rusqlite::params![id, body]).unwrap();
                }
                let change = Change::from_bytes(raw).unwrap();
                match groups.last_mut() {
                    Some((last, v)) if *last == id => v.push(change),
                    _ => groups.push((id, vec![change])),
                }
            }
            for (id, changes) in groups {
                let mut d = AutoCommit::new();
                d.apply_changes(changes).unwrap();
                let f = doc::flatten(&d, &automerge::ROOT);
                let s = |k: &str| match f.get(k) {
                    Some(Field::Str(s)) => s.clone(),
                    _ => String::new(),
                };
                ins.execute(rusqlite::params![
                    id,
                    s("title"),
                    s("type"),
                    s("priority"),
                    s("status"),
                    s("created_at"),
                    s("updated_at"),
                    s("creator_session"),
                    s("sprint")
                ])
                .unwrap();
            }
        }
        tx.commit().unwrap();
        t.elapsed()
    }
}

/// A single-record change (seq 1 of a fixed actor) that sets a title on `doc`, claiming
/// `author` but signed by `signer`: hostile-input tests use it for forged signatures
/// (`signer` ≠ author), non-members, and other projects.
pub fn forge_record(
    project: &str,
    doc: &str,
    author: [u8; 32],
    signer: &td_engine::MachineIdentity,
) -> td_engine::record::SignedRecord {
    let (_, body) = one_change([9u8; 16], "Injected by a hostile peer", None);
    let body = td_engine::record::RecordBody {
        project: project.into(),
        doc: doc.into(),
        session: "ses_hostile".into(),
        author,
        ..body
    };
    td_engine::record::SignedRecord::sign(body, signer).unwrap()
}

/// An Automerge change by `actor` that sets `title` (with `message` as its commit message),
/// and the body of a seq-1 record carrying it (project, doc, session and author left empty).
fn one_change(
    actor: [u8; 16],
    title: &str,
    message: Option<&str>,
) -> (Vec<u8>, td_engine::record::RecordBody) {
    use automerge::transaction::{CommitOptions, Transactable};
    let mut d = automerge::AutoCommit::new().with_actor(automerge::ActorId::from(&actor[..]));
    d.put(automerge::ROOT, "title", title).unwrap();
    let mut options = CommitOptions::default();
    if let Some(m) = message {
        options = options.with_message(m.to_string());
    }
    d.commit_with(options);
    let change = d.get_last_local_change().unwrap().raw_bytes().to_vec();
    let body = td_engine::record::RecordBody {
        format: td_engine::record::PLAIN_FORMAT,
        project: String::new(),
        doc: String::new(),
        actor,
        seq: 1,
        prev: [0; 32],
        session: String::new(),
        author: [0; 32],
        change: change.clone(),
    };
    (change, body)
}

/// A new, empty td v38 database at `path` (td's schema and version row), as td itself would
/// leave it: the starting point of generated migration sources.
pub fn new_td_db(path: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).expect("create td database");
    conn.execute_batch(td_engine::schema::TD_SCHEMA_SQL)
        .expect("td schema");
    conn.execute(
        "INSERT INTO schema_info(key, value) VALUES ('version', '38')",
        [],
    )
    .expect("schema version");
    conn
}

/// A td v38 database with `n` issues, 2 logs, 1 comment and (every other issue) 1 handoff each.
pub fn generate_td_db(path: &Path, n: usize) {
    let conn = new_td_db(path);
    conn.execute_batch("BEGIN").unwrap();
    for i in 0..n {
        let id = format!("td-{i:06x}");
        let ts = "2026-03-01 10:00:00.000000-05:00";
        conn.execute(
            "INSERT INTO issues(id, title, description, status, type, priority, labels, created_at, updated_at, creator_session) \
             VALUES (?1, ?2, ?3, 'open', 'task', 'P2', 'sync,perf', ?4, ?4, 'ses_abc123')",
            rusqlite::params![id, format!("Generated issue number {i}"), "A description of moderate length with ünïcode 🚀 and 日本語.", ts],
        )
        .unwrap();
        for k in 0..2 {
            conn.execute(
                "INSERT INTO logs(id, issue_id, session_id, message, type, timestamp) VALUES (?1, ?2, 'ses_abc123', 'Progress note', 'progress', ?3)",
                rusqlite::params![format!("lg-{i:06x}{k:02x}"), id, ts],
            )
            .unwrap();
        }
        conn.execute(
            "INSERT INTO comments(id, issue_id, session_id, text, created_at) VALUES (?1, ?2, 'ses_def456', 'Looks right', ?3)",
            rusqlite::params![format!("cm-{i:06x}00"), id, ts],
        )
        .unwrap();
        if i % 2 == 0 {
            conn.execute(
                "INSERT INTO handoffs(id, issue_id, session_id, done, remaining, timestamp) VALUES (?1, ?2, 'ses_abc123', '[\"a\"]', '[\"b\"]', ?3)",
                rusqlite::params![format!("ho-{i:06x}00"), id, ts],
            )
            .unwrap();
        }
    }
    conn.execute_batch("COMMIT").unwrap();
}

/// The libfaketime library (Debian's `faketime`, installed when missing), for a process whose
/// wall clock a test moves (`LD_PRELOAD` it with `FAKETIME` or `FAKETIME_TIMESTAMP_FILE`).
pub fn libfaketime(why: &str) -> &'static str {
    apt_binary("faketime", "faketime", why);
    [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .expect("libfaketime installed with faketime")
}

/// Peak resident memory of process `pid` (`VmHWM` from /proc), in KiB.
pub fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// A run of records by `actor`, from seq 1, carrying `changes` (entity document, raw
/// Automerge change bytes, used as given: they may be crafted), chained and signed by `signer`
/// at its end, as a machine writing around td's own checks would send it.
pub fn signed_chain(
    signer: &td_engine::MachineIdentity,
    project: &str,
    session: &str,
    actor: [u8; 16],
    changes: Vec<(String, Vec<u8>)>,
) -> td_engine::sync::WireRun {
    use td_engine::record::{RecordBody, SignedRecord, PLAIN_FORMAT};
    let mut prev = [0u8; 32];
    let mut last = None;
    for (i, (doc, change)) in changes.iter().enumerate() {
        let body = RecordBody {
            format: PLAIN_FORMAT,
            project: project.into(),
            doc: doc.clone(),
            actor,
            seq: i as u64 + 1,
            prev,
            session: session.into(),
            author: signer.public_key(),
            change: change.clone(),
        };
        let rec = SignedRecord::sign(body, signer).unwrap();
        prev = rec.hash;
        last = Some(rec);
    }
    td_engine::sync::WireRun {
        format: PLAIN_FORMAT,
        actor,
        author: signer.public_key(),
        session: session.into(),
        first_seq: 1,
        changes,
        signature: last.expect("at least one change").signature.to_vec(),
    }
}

/// Appends records to a replica's log with plain SQL, bypassing every check td makes, so the
/// replica will send them to peers as they are (a hostile or broken machine's log).
pub fn plant_in_log(db: &Path, run: &td_engine::sync::WireRun, project: &str) {
    use sha2::Digest;
    use td_engine::record::{RecordBody, PLAIN_FORMAT};
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut prev = [0u8; 32];
    for (i, (doc, change)) in run.changes.iter().enumerate() {
        let seq = run.first_seq + i as u64;
        let body = RecordBody {
            format: PLAIN_FORMAT,
            project: project.into(),
            doc: doc.clone(),
            actor: run.actor,
            seq,
            prev,
            session: run.session.clone(),
            author: run.author,
            change: change.clone(),
        };
        let encoded = postcard::to_stdvec(&body).unwrap();
        let hash: [u8; 32] = sha2::Sha256::digest(&encoded).into();
        let last = i + 1 == run.changes.len();
        let sig: &[u8] = if last { &run.signature } else { &[] };
        conn.execute(
            "INSERT INTO crdt_changes(hash, doc_id, actor, seq, session_id, author, body, signature, received_at, applied) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, '2026-01-01 00:00:00', 1)",
            rusqlite::params![&hash[..], doc, &run.actor[..], seq as i64, run.session, &run.author[..], encoded, sig],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO crdt_actors(actor, session_id, author, max_seq, last_hash) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT(actor) DO UPDATE SET max_seq = excluded.max_seq, last_hash = excluded.last_hash",
            rusqlite::params![&run.actor[..], run.session, &run.author[..], seq as i64, &hash[..]],
        )
        .unwrap();
        prev = hash;
    }
}

/// The Automerge change a stored record carries: a plaintext record's, or a sealed record's
/// opened with the epoch keys the replica at `conn` holds (docs/encryption.md).
pub fn stored_change(conn: &rusqlite::Connection, body: &[u8]) -> Vec<u8> {
    let rec: td_engine::record::RecordBody = postcard::from_bytes(body).unwrap();
    if rec.format < td_engine::record::SEALED_FORMAT {
        return rec.change;
    }
    let epoch = td_engine::sealing::record_epoch(&rec.change).unwrap();
    let key: Vec<u8> = conn
        .query_row(
            "SELECT key FROM crdt_epoch_keys WHERE epoch = ?1",
            [hex::encode(epoch)],
            |r| r.get(0),
        )
        .unwrap();
    let key: [u8; 32] = key.try_into().unwrap();
    let plain = td_engine::sealing::open_record(
        &rec.change,
        |_| Some(key),
        &rec.project,
        &rec.actor,
        rec.seq,
    )
    .unwrap();
    postcard::from_bytes::<td_engine::record::Inner>(&plain)
        .unwrap()
        .change
}

/// The Automerge document of entity `id` as `r`'s log holds it (every change applied).
pub fn doc_from_log(r: &Replica, id: &str) -> automerge::AutoCommit {
    let conn = rusqlite::Connection::open(r.db()).unwrap();
    let mut stmt = conn
        .prepare("SELECT body FROM crdt_changes WHERE doc_id = ?1 ORDER BY id")
        .unwrap();
    let bodies: Vec<Vec<u8>> = stmt
        .query_map([id], |r| r.get::<_, Vec<u8>>(0))
        .unwrap()
        .map(|b| b.unwrap())
        .collect();
    let changes: Vec<automerge::Change> = bodies
        .iter()
        .map(|b| automerge::Change::from_bytes(stored_change(&conn, b)).unwrap())
        .collect();
    let mut d = automerge::AutoCommit::new();
    d.apply_changes(changes).unwrap();
    d
}

/// A one-record run signed by `signer` on `doc`, as a machine writing around td's own checks
/// would send it: a fresh actor at seq 1, an Automerge change that sets `title`, with
/// `message` as its commit message (a roster operation when `doc` is the roster).
pub fn signed_run(
    signer: &td_engine::MachineIdentity,
    project: &str,
    doc: &str,
    message: Option<&str>,
    session: &str,
) -> td_engine::sync::WireRun {
    let signed = signed_record(signer, project, doc, message, session);
    let body = &signed.body;
    td_engine::sync::WireRun {
        format: body.format,
        actor: body.actor,
        author: body.author,
        session: body.session.clone(),
        first_seq: 1,
        changes: vec![(body.doc.clone(), body.change.clone())],
        signature: signed.signature.to_vec(),
    }
}

/// A chain of roster records signed by a fresh machine nobody admitted, one per operation in
/// `ops` (JSON): what a stranger holding the hub token can write.
pub fn stranger_roster_run(project: &str, ops: &[String]) -> td_engine::sync::WireRun {
    use automerge::transaction::{CommitOptions, Transactable};
    let who = td_engine::MachineIdentity::generate();
    let actor: [u8; 16] = td_engine::identity::random_bytes();
    let mut d = automerge::AutoCommit::new().with_actor(automerge::ActorId::from(&actor[..]));
    let mut changes = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        d.put(automerge::ROOT, "n", i as i64).unwrap();
        d.commit_with(CommitOptions::default().with_message(op.clone()));
        let c = d.get_last_local_change().unwrap().raw_bytes().to_vec();
        changes.push(("roster".to_string(), c));
    }
    let session = format!("ses_{}_aaaaaa", who.fingerprint());
    signed_chain(&who, project, &session, actor, changes)
}

/// The record of [`signed_run`]: seq 1 of a fresh actor, signed by `signer`.
pub fn signed_record(
    signer: &td_engine::MachineIdentity,
    project: &str,
    doc: &str,
    message: Option<&str>,
    session: &str,
) -> td_engine::record::SignedRecord {
    let actor: [u8; 16] = td_engine::identity::random_bytes();
    let (_, body) = one_change(actor, "Written around td's checks", message);
    let body = td_engine::record::RecordBody {
        project: project.into(),
        doc: doc.into(),
        session: session.into(),
        author: signer.public_key(),
        ..body
    };
    td_engine::record::SignedRecord::sign(body, signer).unwrap()
}
