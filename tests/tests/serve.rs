//! `td serve`: td's API over real HTTP on 127.0.0.1 (each route family, success and each
//! error, JSON shapes as the CLI's `--json`), live events for a local CLI write and for a
//! peer sync round from another replica (real QUIC), and graceful shutdown on SIGTERM with an
//! event stream open.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use td_tests::{Replica, WebServer};

fn start(r: &Replica, extra: &[&str]) -> WebServer {
    let mut args = vec!["serve", "-p", "0", "--interval", "100ms"];
    args.extend_from_slice(extra);
    WebServer::spawn(r.command(None, &args))
}

// One HTTP/1.1 request: (status, JSON body).
use td_tests::http_json as call;

const AUTH: (&str, &str) = ("Authorization", "Bearer s3cret");

/// What `td serve` adds to td's API (td's own routes are pinned by serve_api.rs): the token on
/// every route but `/health`, `If-Match` versions, the review policy as the CLI's, and the
/// extra read routes (records, peers, conflicts).
#[test]
fn api_routes_successes_and_errors() {
    let r = Replica::init();
    let existing = r.create("Made by the CLI", &["-l", "cli"]);
    let srv = start(&r, &["--token", "s3cret"]);
    let p = srv.port;
    // td's port file: JSON with the port, the pid, the start time and an instance id.
    let pf: Value =
        serde_json::from_str(&std::fs::read_to_string(r.root.join(".todos/serve-port")).unwrap())
            .unwrap();
    assert_eq!(pf["port"], p, "{pf}");
    assert_eq!(pf["pid"], srv.child.id(), "{pf}");
    assert!(
        pf["instance_id"].as_str().unwrap().starts_with("srv_"),
        "{pf}"
    );
    assert!(pf["started_at"].is_string(), "{pf}");
    // As td: a second server for the project is refused while the first answers.
    let second = r.run(&["serve", "-p", "0", "--token", "s3cret"]);
    assert_eq!(second.code, 1, "{second:?}");
    assert!(
        second
            .stderr
            .contains(&format!("td serve already running on port {p}")),
        "{}",
        second.stderr
    );
    // A port another program holds: the error names it and says what to do.
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = other.local_addr().unwrap().port();
    let lone = Replica::init();
    let out = lone.run(&["serve", "-p", &taken.to_string()]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("cannot listen on 127.0.0.1:{taken}"))
            && out.stderr.contains("-p 0"),
        "{}",
        out.stderr
    );

    // /health is open (td's shape: the server's session and a string change token); /v1
    // needs the token.
    let health = call(p, "GET", "/health", &[], None).1;
    assert_eq!(health["data"]["status"], "ok");
    assert!(
        health["data"]["session_id"]
            .as_str()
            .is_some_and(|s| s.starts_with("ses_")),
        "{health}"
    );
    assert!(health["data"]["change_token"].is_string(), "{health}");
    let (st, v) = call(p, "GET", "/v1/issues", &[], None);
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    assert_eq!(
        call(
            p,
            "GET",
            "/v1/issues",
            &[("Authorization", "Bearer wrong")],
            None
        )
        .0,
        401
    );

    // The API and the CLI read the same issue.
    let (st, v) = call(p, "GET", "/v1/issues", &[AUTH], None);
    assert_eq!(st, 200);
    assert_eq!(v["data"]["issues"][0]["id"], existing.as_str());
    let (_, v) = call(p, "GET", &format!("/v1/issues/{existing}"), &[AUTH], None);
    let cli = r.json(&["show", &existing]);
    assert_eq!(v["data"]["issue"]["title"], cli["title"]);
    assert_eq!(v["data"]["version"], cli["version"]);
    let (_, v) = call(
        p,
        "GET",
        "/v1/issues?search=labels%20~%20cli&search_mode=tdq",
        &[AUTH],
        None,
    );
    assert_eq!(v["data"]["issues"].as_array().unwrap().len(), 1, "{v}");

    // Create, then update with If-Match: stale is 409, current is 200.
    let (st, v) = call(
        p,
        "POST",
        "/v1/issues",
        &[AUTH],
        Some(json!({"title": "Made over HTTP today", "priority": "P1", "labels": ["web"]})),
    );
    assert_eq!(st, 201, "{v}");
    let id = v["data"]["issue"]["id"].as_str().unwrap().to_string();
    assert_eq!(r.json(&["show", &id])["priority"], "P1");
    let version = r.json(&["show", &id])["version"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, v) = call(
        p,
        "PATCH",
        &format!("/v1/issues/{id}"),
        &[AUTH, ("If-Match", "0000")],
        Some(json!({"title": "A title that is stale"})),
    );
    assert_eq!((st, v["error"]["code"].as_str()), (409, Some("conflict")));
    let (st, _) = call(
        p,
        "PATCH",
        &format!("/v1/issues/{id}"),
        &[AUTH, ("If-Match", &version)],
        Some(json!({"title": "Renamed over HTTP today"})),
    );
    assert_eq!(st, 200);
    assert_eq!(r.json(&["show", &id])["title"], "Renamed over HTTP today");

    // Workflow: the review policy decides as in the CLI.
    assert_eq!(
        call(p, "POST", &format!("/v1/issues/{id}/start"), &[AUTH], None).0,
        200
    );
    let (st, v) = call(p, "POST", &format!("/v1/issues/{id}/review"), &[AUTH], None);
    assert_eq!(
        (st, v["data"]["issue"]["status"].as_str()),
        (200, Some("in_review"))
    );
    // The web session implemented it: approving its own work is refused (trusted mode).
    let (st, v) = call(
        p,
        "POST",
        &format!("/v1/issues/{id}/approve"),
        &[AUTH],
        None,
    );
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{v}"
    );
    assert_eq!(
        r.json(&["approve", &id])["status"],
        "closed",
        "another session approves"
    );
    // A recorded review (td's record-only, `summary`).
    let other = r.create("Reviewed over HTTP", &[]);
    r.json_as("impl", &["start", &other]);
    r.json_as("impl", &["handoff", &other, "--done", "x"]);
    r.json_as("impl", &["review", &other]);
    let (st, v) = call(
        p,
        "POST",
        &format!("/v1/issues/{other}/reviews"),
        &[AUTH],
        Some(json!({"decision": "changes_requested", "summary": "add tests"})),
    );
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["data"]["issue"]["status"], "in_review");
    assert_eq!(v["data"]["review"]["decision"], "changes_requested");
    assert_eq!(
        r.json(&["show", &other])["reviews"][0]["decision"],
        "changes_requested"
    );
    for bad in [json!({"decision": "maybe", "summary": "x"}), json!({})] {
        assert_eq!(
            call(
                p,
                "POST",
                &format!("/v1/issues/{other}/reviews"),
                &[AUTH],
                Some(bad)
            )
            .0,
            400
        );
    }
    // Our extra routes: the change log, the address book, conflicts.
    let (st, v) = call(p, "GET", "/v1/records?limit=5", &[AUTH], None);
    assert_eq!(st, 200);
    assert_eq!(v["data"]["records"].as_array().unwrap().len(), 5, "{v}");
    assert_eq!(call(p, "GET", "/v1/peers", &[AUTH], None).0, 200);
    let (_, v) = call(p, "GET", "/v1/conflicts", &[AUTH], None);
    assert_eq!(v["data"]["conflicts"], json!([]));
    let sessions = call(p, "GET", "/v1/sessions", &[AUTH], None).1;
    assert!(sessions["data"]["sessions"].as_array().unwrap().len() >= 2);
    assert_eq!(
        sessions["data"]["current_session_id"], health["data"]["session_id"],
        "{sessions}"
    );
}

#[test]
fn binding_off_loopback_needs_a_token() {
    let r = Replica::init();
    let out = r.run(&["serve", "-a", "0.0.0.0", "--json"]);
    assert_eq!(out.error_code(), "invalid_input");
    assert!(out.stdout.contains("--token"));
}

/// Reads SSE events (name, data) from a stream on a thread.
fn subscribe(port: u16) -> mpsc::Receiver<(String, Value)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut event = String::new();
        for line in BufReader::new(s).lines().map_while(Result::ok) {
            if let Some(e) = line.strip_prefix("event: ") {
                event = e.to_string();
            } else if let Some(d) = line.strip_prefix("data: ") {
                let v = serde_json::from_str(d).unwrap_or(Value::Null);
                if tx.send((event.clone(), v)).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

fn wait_for(
    rx: &mpsc::Receiver<(String, Value)>,
    what: &str,
    want: impl Fn(&str, &Value) -> bool,
) -> (Value, Duration) {
    let t = Instant::now();
    let deadline = t + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (e, v) = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no {what} event in time"));
        if want(&e, &v) {
            return (v, t.elapsed());
        }
    }
}

#[test]
fn live_events_for_cli_writes_and_peer_rounds_and_shutdown() {
    let a = Replica::init();
    let b = Replica::init();
    let sa = a.serve();
    a.befriend(&b, "a", &sa.addr);
    b.json(&["peer", "sync", "a"]);
    let mut srv = start(&b, &[]);
    let rx = subscribe(srv.port);
    wait_for(&rx, "ping", |e, _| e == "ping");

    // A CLI write in another process: refresh, then the record, marked local.
    let id = b.create("Written in a terminal", &[]);
    let (v, took) = wait_for(&rx, "records", |e, v| {
        e == "records" && v.to_string().contains(&id)
    });
    assert_eq!(v["records"][0]["local"], true);
    eprintln!("local write reached the subscriber in {took:?}");

    // A peer round: records from a's machine.
    let there = a.create("Written on machine a", &[]);
    b.json(&["peer", "sync", "a"]);
    let a_machine = a.json(&["whoami"])["machine"].as_str().unwrap().to_string();
    let (v, took) = wait_for(&rx, "records", |e, v| {
        e == "records" && v.to_string().contains(&there)
    });
    let rec = v["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["entity"] == there.as_str())
        .unwrap();
    assert_eq!(
        (rec["local"].as_bool(), rec["machine"].as_str()),
        (Some(false), Some(a_machine.as_str()))
    );
    eprintln!("peer round reached the subscriber in {took:?}");

    // SIGTERM with a stream open: the server stops and removes its port file.
    let pid = srv.child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let t = Instant::now();
    loop {
        if let Some(status) = srv.child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "td serve did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!b.root.join(".todos/serve-port").exists());
}

/// The web board at `/`, in a real headless browser: columns by status with the issues, a
/// card opens the side panel with the issue's logs, and an issue written by a command in
/// another process appears without a reload, marked with where it was changed.
#[test]
fn web_board_in_a_real_browser_updates_live() {
    let r = Replica::init();
    let a = r.create("First on the board", &["-l", "ui", "-p", "P1"]);
    r.json(&["start", &a]);
    r.json(&["log", &a, "wired the columns"]);
    // A token with characters the query string must escape: the event stream's
    // `?access_token=` is percent-decoded before it is compared.
    let srv = start(&r, &["--token", "s3+cr/et="]);
    let mut b = td_tests::browser::Browser::open(&format!(
        "http://127.0.0.1:{}/?token=s3%2Bcr%2Fet%3D",
        srv.port
    ));
    b.wait_for("document.querySelectorAll('button.card').length === 1", 30);
    b.wait_for("document.getElementById('live').dataset.on === 'true'", 30);
    let column = b.eval(&format!(
        "document.querySelector('button.card[data-id=\"{a}\"]').closest('section').getAttribute('aria-label')"
    ));
    assert_eq!(column, "in_progress");
    assert_eq!(
        b.eval("document.querySelector('button.card .pri').textContent"),
        "P1"
    );
    // Keyboard and screen readers: cards are buttons with a label.
    assert!(b
        .eval("document.querySelector('button.card').getAttribute('aria-label')")
        .as_str()
        .unwrap()
        .contains("First on the board"));
    // The side panel.
    b.eval("document.querySelector('button.card').click(); true");
    b.wait_for("!document.getElementById('panel').hidden", 10);
    b.wait_for(
        "document.getElementById('panel-body').textContent.includes('wired the columns')",
        10,
    );
    // Live: a write from another process appears without a reload.
    let marker = b.eval("window.__marker = 42; true");
    assert_eq!(marker, true);
    let second = r.create("Arrived while watching", &[]);
    let took = b.wait_for(
        &format!("!!document.querySelector('button.card[data-id=\"{second}\"]')"),
        20,
    );
    eprintln!("the board showed a CLI write after {took:?}");
    assert_eq!(b.eval("window.__marker"), 42, "the page was not reloaded");
    // The card can be drawn by a render an earlier event started (its fetch saw the new
    // issue) before the records event that names the machine: wait for that one.
    b.wait_for(
        &format!("!!document.querySelector('button.card[data-id=\"{second}\"] .by')"),
        20,
    );
    let by = b.eval(&format!(
        "document.querySelector('button.card[data-id=\"{second}\"] .by').textContent"
    ));
    assert_eq!(by, "changed on this machine");
    // td's board views: a board shows its issues in board order, positioned ones first.
    r.json(&["board", "create", "Ordered", "-q", "status != closed"]);
    r.json(&["board", "move", "Ordered", &second, "1"]);
    b.eval("location.reload(); true");
    b.wait_for("document.querySelectorAll('#view option').length === 3", 30);
    b.eval("const s = document.getElementById('view'); s.value = [...s.options].find(o => o.textContent === 'Board: Ordered').value; s.dispatchEvent(new Event('change')); true");
    b.wait_for(
        "document.querySelector('#board section h2').textContent.startsWith('Ordered')",
        20,
    );
    let first = b.eval("document.querySelector('#board ol.cards button.card').dataset.id");
    assert_eq!(first, second.as_str(), "the positioned issue comes first");
    // Moving a card from the page sets its board position (keyboard-reachable buttons).
    b.eval(&format!(
        "document.querySelector('button.move[aria-label=\"Move {a} up\"]').click(); true"
    ));
    b.wait_for(
        &format!("document.querySelector('#board ol.cards button.card').dataset.id === '{a}'"),
        20,
    );
    let shown = r.json(&["board", "show", "Ordered"]);
    assert_eq!(shown["issues"][0]["id"], a.as_str(), "{shown}");
    assert_eq!(shown["issues"][1]["id"], second.as_str(), "{shown}");
    assert!(b
        .eval(
            "document.querySelector('button.move[data-move=\"down\"]').getAttribute('aria-label')"
        )
        .as_str()
        .unwrap()
        .starts_with(&format!("Move {a} down")));
    // A change made on another replica, synced here, appears without a reload, marked with
    // the machine it came from; a conflict from concurrent edits is marked on its card.
    b.eval("document.getElementById('view').value = ''; document.getElementById('view').dispatchEvent(new Event('change')); true");
    b.eval("window.__marker = 43; true");
    let other = Replica::init();
    let so = r.serve();
    r.befriend(&other, "r", &so.addr);
    other.json(&["peer", "sync", "r"]);
    let remote = other.create("Made on the other laptop", &[]);
    other.json(&["peer", "sync", "r"]);
    b.wait_for(
        &format!("!!document.querySelector('button.card[data-id=\"{remote}\"]')"),
        20,
    );
    b.wait_for(
        &format!("!!document.querySelector('button.card[data-id=\"{remote}\"] .by')"),
        20,
    );
    let other_machine = other.json(&["whoami"])["machine"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        b.eval(&format!(
            "document.querySelector('button.card[data-id=\"{remote}\"] .by').textContent"
        )),
        format!("changed on {other_machine}").as_str()
    );
    assert_eq!(b.eval("window.__marker"), 43, "still no reload");
    r.json(&["update", &a, "--title", "Title from here"]);
    other.json(&["update", &a, "--title", "Title from the other laptop"]);
    other.json(&["peer", "sync", "r"]);
    b.wait_for(
        &format!("!!document.querySelector('button.card[data-id=\"{a}\"] .conflict')"),
        20,
    );
    let shot = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/test-artefacts/web-board.png");
    b.screenshot(&shot);
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 1000,
        "a real screenshot"
    );
    // Hostile text stays text.
    let evil = r.create("<img src=x onerror=\"window.__pwned=1\">", &[]);
    b.wait_for(
        &format!("!!document.querySelector('button.card[data-id=\"{evil}\"]')"),
        20,
    );
    assert_eq!(b.eval("window.__pwned === undefined"), true);
}

/// A hub pull (real `tursodb`) reaches event subscribers too, as records from the writing
/// machine.
#[test]
fn live_events_for_a_hub_pull() {
    let hub = td_tests::hub::Hub::start();
    let a = Replica::init();
    let b = Replica::init();
    a.json(&["member", "add", &b.public_key()]);
    assert_eq!(
        a.json(&["sync", "init", "--hub", &hub.url()])["action"],
        "connected"
    );
    assert_eq!(
        b.json(&["sync", "init", "--hub", &hub.url()])["action"],
        "joined"
    );
    let srv = start(&b, &[]);
    let rx = subscribe(srv.port);
    wait_for(&rx, "ping", |e, _| e == "ping");
    let id = a.create("Pushed to the hub by a", &[]);
    a.json(&["sync", "--push"]);
    b.json(&["sync", "--pull"]);
    let a_machine = a.json(&["whoami"])["machine"].as_str().unwrap().to_string();
    let (v, took) = wait_for(&rx, "records", |e, v| {
        e == "records" && v.to_string().contains(&id)
    });
    let rec = v["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["entity"] == id.as_str())
        .unwrap();
    assert_eq!(
        (rec["local"].as_bool(), rec["machine"].as_str()),
        (Some(false), Some(a_machine.as_str()))
    );
    eprintln!("hub pull reached the subscriber in {took:?}");
}

/// Hostile requests get a clear 4xx in td's envelope and write nothing.
#[test]
fn bad_requests_are_refused_and_write_nothing() {
    let r = Replica::init();
    let id = r.create("Only issue", &[]);
    let srv = start(&r, &[]);
    let p = srv.port;
    let before = r.export();
    let raw = |method: &str, path: &str, body: &str| -> (u16, Value) {
        let mut s = TcpStream::connect(("127.0.0.1", p)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len());
        s.write_all(req.as_bytes()).unwrap();
        let _ = s.write_all(body.as_bytes());
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        let status = out
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let payload = out.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
        (status, serde_json::from_str(payload).unwrap_or(Value::Null))
    };
    let cases: Vec<(&str, String, String, u16)> = vec![
        ("POST", "/v1/issues".into(), "{\"title\": ".into(), 400),
        ("POST", "/v1/issues".into(), "[1, 2]".into(), 400),
        (
            "POST",
            "/v1/issues".into(),
            format!("{{\"title\": \"{}\"}}", "x".repeat(2 << 20)),
            413,
        ),
        (
            "POST",
            "/v1/issues".into(),
            "{\"title\": \"t\", \"is_admin\": true}".into(),
            400,
        ),
        (
            "PATCH",
            format!("/v1/issues/{id}"),
            "{\"priority\": \"P9\"}".into(),
            400,
        ),
        (
            "POST",
            format!("/v1/issues/{id}/frobnicate"),
            String::new(),
            404,
        ),
        ("PATCH", format!("/v1/issues/{id}"), String::new(), 400),
        (
            "POST",
            format!("/v1/issues/{id}/comments"),
            "{}".into(),
            400,
        ),
        (
            "GET",
            "/v1/issues/..%2F..%2Fetc%2Fpasswd".into(),
            String::new(),
            404,
        ),
        ("GET", "/v1/boards/..%2F..".into(), String::new(), 404),
        ("GET", "/v1/issues?limit=0".into(), String::new(), 400),
    ];
    for (method, path, body, want) in cases {
        let (st, v) = raw(method, &path, &body);
        assert_eq!(st, want, "{method} {path}: {v}");
        assert_eq!(v["ok"], false, "{method} {path}: {v}");
        assert!(v["error"]["code"].is_string(), "{method} {path}: {v}");
    }
    assert_eq!(r.export(), before, "nothing was written");
}
