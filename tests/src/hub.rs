//! A real libSQL hub for tests: `tursodb --sync-server` from the npm package `turso` (pinned),
//! installed into the build directory on first use, plus an HTTP proxy that wraps it to inject
//! faults (500s, delays, resets, truncated bodies) or demand a token.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The pinned npm package version.
pub const TURSO_VERSION: &str = "0.6.0";

fn target_dir() -> PathBuf {
    let bin = crate::td_bin();
    bin.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

/// The binary, once the install that put it there has completed (a marker file is written
/// last, so a half-extracted binary is never started).
fn find_tursodb(prefix: &Path) -> Option<PathBuf> {
    if !prefix.join(".installed").exists() {
        return None;
    }
    let scope = prefix.join("node_modules/@tursodatabase");
    std::fs::read_dir(scope)
        .ok()?
        .flatten()
        .map(|e| e.path().join("tursodb"))
        .find(|p| p.exists())
}

/// Path of the `tursodb` binary: `$TD_TURSODB`, else the pinned npm package under
/// `target/turso-hub-<version>/`, installed on first use (one installer at a time).
pub fn tursodb() -> PathBuf {
    if let Some(p) = std::env::var_os("TD_TURSODB") {
        return PathBuf::from(p);
    }
    let prefix = target_dir().join(format!("turso-hub-{TURSO_VERSION}"));
    if let Some(p) = find_tursodb(&prefix) {
        return p;
    }
    let lock = target_dir().join(format!("turso-hub-{TURSO_VERSION}.lock"));
    let started = Instant::now();
    loop {
        if std::fs::create_dir(&lock).is_ok() {
            break;
        }
        if let Some(p) = find_tursodb(&prefix) {
            return p;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "timed out waiting for another test to install tursodb"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let result = (|| {
        if let Some(p) = find_tursodb(&prefix) {
            return Ok(p);
        }
        std::fs::create_dir_all(&prefix).map_err(|e| e.to_string())?;
        let out = Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                "--prefix",
            ])
            .arg(&prefix)
            .arg(format!("turso@{TURSO_VERSION}"))
            .output()
            .map_err(|e| format!("cannot run npm: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "npm install turso@{TURSO_VERSION} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        std::fs::write(prefix.join(".installed"), TURSO_VERSION).map_err(|e| e.to_string())?;
        find_tursodb(&prefix).ok_or_else(|| {
            "npm installed turso but no tursodb binary for this platform".to_string()
        })
    })();
    let _ = std::fs::remove_dir(&lock);
    result.unwrap_or_else(|e| panic!("{e}"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One POST to a hub's pipeline endpoint (used to inspect the hub or plant hostile rows).
pub fn pipeline(port: u16, requests: Value) -> Value {
    let body = json!({ "requests": requests }).to_string();
    let mut resp = ureq::post(format!("http://127.0.0.1:{port}/v2/pipeline"))
        .header("Content-Type", "application/json")
        .send(body.as_bytes())
        .expect("hub answers");
    serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap()
}

/// Runs one SQL statement on a hub and returns its rows.
pub fn sql(port: u16, sql: &str, args: Value) -> Vec<Value> {
    let v = pipeline(
        port,
        json!([{"type": "execute", "stmt": {"sql": sql, "args": args}}]),
    );
    let r = &v["results"][0];
    assert_eq!(r["type"], "ok", "hub error: {v}");
    r["response"]["result"]["rows"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// A running `tursodb --sync-server` on a free loopback port, stopped when dropped.
pub struct Hub {
    child: Option<Child>,
    /// Its port.
    pub port: u16,
    db: PathBuf,
    _dir: tempfile::TempDir,
}

impl Hub {
    /// Starts a hub on a fresh database.
    pub fn start() -> Hub {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("hub.db");
        let mut h = Hub {
            child: None,
            port: free_port(),
            db,
            _dir: dir,
        };
        h.launch();
        h
    }

    fn launch(&mut self) {
        let child = Command::new(tursodb())
            .arg(&self.db)
            .arg("--sync-server")
            .arg(format!("127.0.0.1:{}", self.port))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tursodb");
        self.child = Some(child);
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "tursodb did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The hub URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the server (the database file stays).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same file and port.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// The hub's database file (its `-wal` beside it), to look at what the operator holds.
    pub fn db_file(&self) -> &Path {
        &self.db
    }

    /// Rows in the hub's change table.
    pub fn change_rows(&self) -> i64 {
        let rows = sql(self.port, "SELECT count(*) FROM td_changes", json!([]));
        rows[0][0]["value"].as_str().unwrap().parse().unwrap()
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A fault the proxy applies to the next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer 500 without forwarding.
    Status500,
    /// Wait this long before forwarding (longer than the client's timeout: a timeout).
    Delay(Duration),
    /// Close the connection without answering (nothing forwarded).
    Reset,
    /// Forward (the hub applies it), then send only half of the response body.
    Truncate,
}

/// An HTTP proxy in front of a hub, with scripted faults and an optional required
/// `Authorization` header.
pub struct Proxy {
    /// Its port.
    pub port: u16,
    faults: Arc<Mutex<Vec<Fault>>>,
    auth: Arc<Mutex<Option<String>>>,
    /// Requests seen.
    pub hits: Arc<AtomicUsize>,
    chaos: Arc<Mutex<Option<(u32, crate::udp_proxy::Dice)>>>,
    targeted: Arc<Mutex<Option<Targeted>>>,
    link: Arc<Mutex<Wire>>,
}

/// The path a proxy emulates for every request: a round trip, and a rate (bytes per second)
/// each way.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wire {
    /// Round-trip time: half before the request reaches the hub, half before the answer
    /// comes back.
    pub rtt: Duration,
    /// Bytes per second each way (`None`: no limit).
    pub rate: Option<u64>,
}

impl Wire {
    fn carry(&self, bytes: usize) {
        let mut wait = self.rtt / 2;
        if let Some(rate) = self.rate {
            wait += Duration::from_secs_f64(bytes as f64 / rate.max(1) as f64);
        }
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

/// Faults for requests whose body holds a string: the first `skip` pass, the next `times`
/// fail.
#[derive(Debug, Clone)]
struct Targeted {
    needle: Vec<u8>,
    skip: usize,
    fault: Fault,
    times: usize,
}

fn read_request(s: &mut TcpStream) -> Option<(Vec<u8>, String)> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    let header_end = loop {
        let n = s.read(&mut tmp).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    while buf.len() < header_end + len {
        let n = s.read(&mut tmp).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    }
    Some((buf, head))
}

impl Proxy {
    /// Starts a proxy forwarding to `upstream_port`.
    pub fn start(upstream_port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let faults: Arc<Mutex<Vec<Fault>>> = Arc::default();
        let auth: Arc<Mutex<Option<String>>> = Arc::default();
        let hits = Arc::new(AtomicUsize::new(0));
        let chaos: Arc<Mutex<Option<(u32, crate::udp_proxy::Dice)>>> = Arc::default();
        let targeted: Arc<Mutex<Option<Targeted>>> = Arc::default();
        let link: Arc<Mutex<Wire>> = Arc::default();
        let (f, a, h, c) = (faults.clone(), auth.clone(), hits.clone(), chaos.clone());
        let (t, l) = (targeted.clone(), link.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut client) = conn else { continue };
                let (f, a, h, c) = (f.clone(), a.clone(), h.clone(), c.clone());
                let (t, l) = (t.clone(), l.clone());
                std::thread::spawn(move || {
                    let Some((req, head)) = read_request(&mut client) else {
                        return;
                    };
                    h.fetch_add(1, Ordering::SeqCst);
                    if let Some(want) = a.lock().unwrap().clone() {
                        let got = head.lines().find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("authorization")
                                .then(|| v.trim().to_string())
                        });
                        if got.as_deref() != Some(want.as_str()) {
                            let body = r#"{"error":"Unauthorized"}"#;
                            let _ = write!(client, "HTTP/1.1 401 Unauthorized\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                            return;
                        }
                    }
                    let aimed = t.lock().unwrap().as_mut().and_then(|t| {
                        if !req.windows(t.needle.len()).any(|w| w == t.needle) {
                            None
                        } else if t.skip > 0 {
                            t.skip -= 1;
                            None
                        } else if t.times > 0 {
                            t.times -= 1;
                            Some(t.fault)
                        } else {
                            None
                        }
                    });
                    let fault = if aimed.is_some() {
                        aimed
                    } else {
                        let mut q = f.lock().unwrap();
                        if q.is_empty() {
                            // Random failures, when set.
                            c.lock().unwrap().as_mut().and_then(|(rate, dice)| {
                                (dice.below(1000) < *rate as u64).then(|| match dice.below(3) {
                                    0 => Fault::Status500,
                                    1 => Fault::Reset,
                                    _ => Fault::Truncate,
                                })
                            })
                        } else {
                            Some(q.remove(0))
                        }
                    };
                    match fault {
                        Some(Fault::Status500) => {
                            let body = "internal error";
                            let _ = write!(client, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                            return;
                        }
                        Some(Fault::Reset) => {
                            let _ = client.shutdown(std::net::Shutdown::Both);
                            return;
                        }
                        Some(Fault::Delay(d)) => std::thread::sleep(d),
                        _ => {}
                    }
                    let wire = *l.lock().unwrap();
                    wire.carry(req.len());
                    let Ok(mut up) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
                        let _ = client.shutdown(std::net::Shutdown::Both);
                        return;
                    };
                    if up.write_all(&req).is_err() {
                        return;
                    }
                    let mut resp = Vec::new();
                    let _ = up.read_to_end(&mut resp);
                    wire.carry(resp.len());
                    if fault == Some(Fault::Truncate) {
                        let cut = resp.len()
                            - (resp.len()
                                - resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0))
                                / 2;
                        let _ = client.write_all(&resp[..cut]);
                        let _ = client.shutdown(std::net::Shutdown::Both);
                        return;
                    }
                    let _ = client.write_all(&resp);
                });
            }
        });
        Proxy {
            port,
            faults,
            auth,
            hits,
            chaos,
            targeted,
            link,
        }
    }

    /// Emulates a path with this round trip and rate for every request from now on.
    pub fn set_wire(&self, wire: Wire) {
        *self.link.lock().unwrap() = wire;
    }

    /// Fails `per_mille` of the requests (none when 0) at random, following `seed`: a 500, a
    /// reset connection, or a response cut in half after the hub applied the request.
    pub fn fail_randomly(&self, per_mille: u32, seed: u64) {
        *self.chaos.lock().unwrap() =
            (per_mille > 0).then(|| (per_mille, crate::udp_proxy::Dice::new(seed)));
    }

    /// The proxy's URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Fails requests whose body holds `needle`: the first `skip` of them pass, the next
    /// `times` get `fault` (a cut-off at a chosen point of a long run).
    pub fn inject_matching(&self, needle: &str, skip: usize, fault: Fault, times: usize) {
        *self.targeted.lock().unwrap() = Some(Targeted {
            needle: needle.as_bytes().to_vec(),
            skip,
            fault,
            times,
        });
    }

    /// Queues faults for the next requests.
    pub fn inject(&self, fault: Fault, times: usize) {
        self.faults
            .lock()
            .unwrap()
            .extend(std::iter::repeat_n(fault, times));
    }

    /// Requires this exact `Authorization` header (or none).
    pub fn require_auth(&self, header: Option<&str>) {
        *self.auth.lock().unwrap() = header.map(String::from);
    }
}

/// Base64 of bytes, as Hrana's JSON carries blobs.
pub fn b64(v: &[u8]) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, v)
}

/// Plants a row in a hub's change table as a hub-token holder could (no machine key needed):
/// any hash, project, hint columns, body and signature.
pub fn insert_row(
    port: u16,
    hash: &[u8],
    project: &str,
    actor: &[u8],
    actor_seq: i64,
    body: &[u8],
    signature: &[u8],
) {
    let blob = |v: &[u8]| json!({"type": "blob", "base64": b64(v)});
    sql(
        port,
        "INSERT INTO td_changes(hash, project, actor, actor_seq, author, body, signature, pushed_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'x')",
        json!([blob(hash), {"type": "text", "value": project}, blob(actor),
               {"type": "integer", "value": actor_seq.to_string()}, blob(&[2; 32]), blob(body), blob(signature)]),
    );
}

/// A founder (with one issue) and `members` members, all connected to the hub at `url`: the
/// founder admits them, connects, and each joins.
pub fn team(url: &str, members: usize) -> (crate::Replica, Vec<crate::Replica>) {
    let a = crate::Replica::init();
    a.create("Founding issue of the team", &[]);
    let others: Vec<crate::Replica> = (0..members).map(|_| crate::Replica::init()).collect();
    for o in &others {
        a.json(&["member", "add", &o.public_key()]);
    }
    let v = a.json(&["sync", "init", "--hub", url]);
    assert_eq!(v["action"], "connected", "{v}");
    for o in &others {
        let v = o.json(&["sync", "init", "--hub", url]);
        assert_eq!(v["action"], "joined", "{v}");
    }
    (a, others)
}

/// A founder whose first issue is `first`, syncing with `hub`.
pub fn founder_on(hub: &Hub, first: &str) -> crate::Replica {
    let a = crate::Replica::init();
    a.create(first, &[]);
    a.json(&["sync", "init", "--hub", &hub.url()]);
    a
}

/// A fresh machine that joined `a`'s project through the hub with an invite made with
/// `args` (`a` pushes the invite and its roster first); asserts it joined with `role`.
pub fn joined(a: &crate::Replica, args: &[&str], role: &str) -> crate::Replica {
    let code = a.invite(args);
    a.json(&["sync"]);
    let r = crate::Replica::new();
    let v = r.json(&["join", &code]);
    assert_eq!(
        (v["action"].as_str(), v["role"].as_str()),
        (Some("joined"), Some(role)),
        "{v}"
    );
    r
}
