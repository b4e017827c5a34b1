//! `td sync` through a real hub (`tursodb --sync-server`), driven with the real binary.

use serde_json::json;
use td_tests::hub::{team, Fault, Hub, Proxy};
use td_tests::Replica;

fn sync(r: &Replica) -> serde_json::Value {
    r.json(&["sync"])
}

#[test]
fn three_replicas_converge_through_the_hub_with_offline_work_and_a_late_joiner() {
    let hub = Hub::start();
    let a = Replica::init();
    // 50+ offline changes before the first sync.
    for i in 0..26 {
        let id = a.create(&format!("Offline before first sync {i}"), &[]);
        a.json(&["update", &id, "-p", "P1"]);
    }
    let (b, c) = (Replica::init(), Replica::init());
    a.json(&["member", "add", &b.public_key()]);
    a.json(&["member", "add", &c.public_key()]);
    assert_eq!(
        a.json(&["sync", "init", "--hub", &hub.url()])["action"],
        "connected"
    );
    assert_eq!(
        b.json(&["sync", "init", "--hub", &hub.url()])["action"],
        "joined"
    );
    assert_eq!(
        c.json(&["sync", "init", "--hub", &hub.url()])["action"],
        "joined"
    );
    // Everyone works offline, then syncs.
    for (n, r) in [&a, &b, &c].into_iter().enumerate() {
        for i in 0..26 {
            let id = r.create(&format!("Replica {n} offline item {i}"), &[]);
            r.json(&["comment", &id, "done offline"]);
        }
    }
    for r in [&a, &b, &c, &a, &b] {
        sync(r);
    }
    let ea = a.export();
    assert_eq!(ea, b.export());
    assert_eq!(ea, c.export());
    let s = sync(&c);
    assert_eq!(
        (
            s["pushed"].as_u64(),
            s["pulled"].as_u64(),
            s["pending"].as_u64()
        ),
        (Some(0), Some(0), Some(0)),
        "{s}"
    );
    // No duplicates on the hub: one row per change.
    let changes = td_engine::export::log_stats(a.store().conn())
        .unwrap()
        .changes;
    assert_eq!(hub.change_rows(), changes);
    // Late joiner.
    let d = Replica::init();
    a.json(&["member", "add", &d.public_key()]);
    sync(&a);
    let v = d.json(&["sync", "init", "--hub", &hub.url()]);
    assert_eq!(v["action"], "joined");
    sync(&a);
    sync(&d);
    assert_eq!(d.export(), a.export());
    // Every replica's log checks out: hashes, chains, signatures, each writer's chain ending
    // signed, after relaying through the hub.
    for r in [&a, &b, &c, &d] {
        let doctor = r.json(&["doctor"]);
        assert_eq!(doctor["ok"], true, "{doctor}");
    }
}

#[test]
fn hub_restart_and_offline_work_lose_nothing() {
    let mut hub = Hub::start();
    let (a, others) = team(&hub.url(), 1);
    let b = &others[0];
    a.create("Before the hub restarts", &[]);
    sync(&a);
    hub.stop();
    // Offline: commands work; td sync fails clearly and keeps the changes pending.
    let id = a.create("Written while the hub is down", &[]);
    a.json(&["update", &id, "-p", "P0"]);
    let r = a.run(&["sync"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains(&hub.url()) && r.stderr.contains("connection refused"),
        "{}",
        r.stderr
    );
    let r = a.run(&["sync", "--json"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.json()["error"]["code"], "network_error");
    let st = a.json(&["sync", "status"]);
    assert_eq!(st["pending"], 2);
    assert!(st["hub_answered"]["error"]
        .as_str()
        .unwrap()
        .contains("connection refused"));
    hub.restart();
    let s = sync(&a);
    assert_eq!(s["pending"], 0);
    sync(b);
    assert_eq!(a.export(), b.export());
    assert!(b.export().contains("Written while the hub is down"));
    let changes = td_engine::export::log_stats(a.store().conn())
        .unwrap()
        .changes;
    assert_eq!(
        hub.change_rows(),
        changes,
        "nothing duplicated across the restart"
    );
}

#[test]
fn faults_are_retried_within_bounds_and_never_duplicate() {
    let hub = Hub::start();
    let proxy = Proxy::start(hub.port);
    let (a, others) = team(&proxy.url(), 1);
    let b = &others[0];
    for i in 0..30 {
        a.create(&format!("Through a flaky proxy {i}"), &[]);
    }
    // Two failures then success: retried within one command.
    for fault in [Fault::Status500, Fault::Reset, Fault::Truncate] {
        proxy.inject(fault, 2);
        a.create(&format!("After fault {fault:?}"), &[]);
        let s = a.json(&["sync"]);
        assert_eq!(s["pending"], 0, "{fault:?}: {s}");
    }
    // As many failures as attempts: a clear error, nothing lost; the next sync completes.
    proxy.inject(Fault::Status500, td_transport::hub::ATTEMPTS);
    a.create("Pending through an outage", &[]);
    let r = a.run(&["sync"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("HTTP 500"), "{}", r.stderr);
    // The hub applies these requests, but the client never hears back.
    proxy.inject(Fault::Truncate, td_transport::hub::ATTEMPTS);
    let r = a.run(&["sync"]);
    assert_eq!(r.code, 1);
    let s = a.json(&["sync"]);
    assert_eq!(s["pending"], 0);
    // Timeouts.
    a.create("Slow hub", &[]);
    proxy.inject(Fault::Delay(std::time::Duration::from_millis(2500)), 3);
    let mut cmd = a.command(None, &["sync"]);
    let out = cmd.env("TD_HUB_TIMEOUT_MS", "1000").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("timeout"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(std::time::Duration::from_millis(3000));
    sync(&a);
    sync(b);
    assert_eq!(a.export(), b.export());
    let changes = td_engine::export::log_stats(a.store().conn())
        .unwrap()
        .changes;
    assert_eq!(hub.change_rows(), changes, "no duplicates after retries");
}

#[test]
fn hostile_hub_rows_are_quarantined_and_do_not_block_later_rows() {
    let hub = Hub::start();
    let (a, others) = team(&hub.url(), 1);
    let b = &others[0];
    sync(b);
    let project = a.json(&["whoami"])["project"].as_str().unwrap().to_string();
    let b64 = |v: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, v);
    let insert = |hash: &[u8], project: &str, body: &[u8], sig: &[u8]| {
        td_tests::hub::sql(
            hub.port,
            "INSERT INTO td_changes(hash, project, actor, actor_seq, author, body, signature, pushed_at) VALUES (?, ?, ?, 1, ?, ?, ?, 'x')",
            json!([{"type":"blob","base64": b64(hash)}, {"type":"text","value": project}, {"type":"blob","base64": b64(&[1;16])},
                   {"type":"blob","base64": b64(&[2;32])}, {"type":"blob","base64": b64(body)}, {"type":"blob","base64": b64(sig)}]),
        );
    };
    // 1. Garbage bytes: a megabyte of them.
    let mut junk = b"\xff\xfe garbage, not a record".to_vec();
    junk.resize(1024 * 1024, 0xee);
    insert(&[0xa1; 32], &project, &junk, &[0; 64]);
    // 2. A real record with a broken signature, and 3. one by a machine outside the roster,
    // 4. one that claims another project.
    let rogue = td_engine::MachineIdentity::generate();
    let forge = |author: [u8; 32], signer: &td_engine::MachineIdentity, proj: &str, doc: &str| {
        td_tests::forge_record(proj, doc, author, signer)
    };
    let member_key = b.identity().public_key();
    let bad_sig = forge(member_key, &rogue, &project, "td-bad001");
    insert(
        &bad_sig.hash,
        &project,
        &bad_sig.encoded,
        &bad_sig.signature,
    );
    let outsider = forge(rogue.public_key(), &rogue, &project, "td-bad002");
    let mut h = outsider.hash;
    h[0] ^= 0xff;
    insert(&h, &project, &outsider.encoded, &outsider.signature);
    let other_project = forge(
        rogue.public_key(),
        &rogue,
        "prj_0000000000000000_000000",
        "td-bad003",
    );
    insert(
        &other_project.hash,
        &project,
        &other_project.encoded,
        &other_project.signature,
    );
    // A legitimate change after them.
    a.create("Legit after hostile rows", &[]);
    sync(&a);
    let before = b.export();
    let s = sync(b);
    // The outsider's record is signed and well formed: it is held (not applied, not
    // dropped) until an admin admits its machine.
    assert_eq!(s["quarantined"], 3, "{s} {}", b.ok(&["sync", "status"]));
    assert!(
        b.export().contains("Legit after hostile rows"),
        "later rows still applied"
    );
    assert!(
        !b.export().contains("td-bad00"),
        "nothing hostile materialized"
    );
    assert_ne!(before, b.export());
    let st = b.json(&["sync", "status"]);
    let q = st["quarantined"].as_array().unwrap();
    assert_eq!(q.len(), 3, "{st}");
    let held = st["held"].as_array().unwrap();
    assert_eq!(held.len(), 1, "{st}");
    assert_eq!(held[0]["public_key"], hex::encode(rogue.public_key()));
    assert!(held[0]["reason"].as_str().unwrap().contains("not a member"));
    let reasons: Vec<&str> = q.iter().map(|r| r["reason"].as_str().unwrap()).collect();
    assert!(
        reasons.iter().any(|r| r.contains("not a td change record")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("bad signature")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("belongs to project")),
        "{reasons:?}"
    );
    assert!(b
        .ok(&["sync", "status"])
        .contains("Quarantined hub rows: 3"));
    // A quarantined row keeps its hash and reason, not its body: junk cannot grow the database.
    let kept: i64 = rusqlite::Connection::open(b.db())
        .unwrap()
        .query_row("SELECT max(length(body)) FROM crdt_quarantine", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(kept, 32);
    // Pulling again changes nothing.
    assert_eq!(sync(b)["quarantined"], 0);
    // Once an admin admits the outsider, the held record applies on the next pull.
    a.json(&["member", "add", &hex::encode(rogue.public_key())]);
    sync(&a);
    sync(b);
    assert!(b.export().contains("td-bad002"), "held record applied");
    assert!(!b.export().contains("td-bad001") && !b.export().contains("td-bad003"));
    assert_eq!(b.json(&["sync", "status"])["held"], json!([]));
}

#[test]
fn tokens_are_checked_masked_and_overridable() {
    let hub = Hub::start();
    let proxy = Proxy::start(hub.port);
    proxy.require_auth(Some("Bearer right-token-123"));
    let a = Replica::init();
    a.create("Needs a token", &[]);
    let r = a.run(&["sync", "init", "--hub", &proxy.url(), "--token", "wrong"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("HTTP 401") && r.stderr.contains("token"),
        "{}",
        r.stderr
    );
    let v = a.json(&[
        "sync",
        "init",
        "--hub",
        &proxy.url(),
        "--token",
        "right-token-123",
    ]);
    assert_eq!(v["action"], "connected");
    let t = a.json(&["config", "get", "database.token"]);
    assert_eq!(t["value"], "righ… (15 chars)");
    assert!(!a.ok(&["config", "list"]).contains("right-token-123"));
    assert!(!a.ok(&["sync", "status"]).contains("right-token-123"));
    // The environment overrides the file.
    let out = a
        .command(None, &["sync"])
        .env("TD_DATABASE_TOKEN", "wrong")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = a
        .command(None, &["sync"])
        .env("TD_DATABASE_URL", hub.url())
        .env("TD_DATABASE_TOKEN", "")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Basic auth in the URL.
    proxy.require_auth(Some("Basic YWRtaW46cGFzcw=="));
    let v = a.json(&[
        "sync",
        "init",
        "--hub",
        &format!("http://admin:pass@127.0.0.1:{}", proxy.port),
    ]);
    assert_eq!(
        v["hub"],
        format!("http://admin:***@127.0.0.1:{}", proxy.port)
    );
}

#[test]
fn config_status_autosync_and_td_init_mode() {
    let hub = Hub::start();
    // The seed spelling: td init --mode=libsql --url.
    let a = Replica::new();
    let v = a.json(&["init", "--mode=libsql", "--url", &hub.url()]);
    assert_eq!(v["action"], "connected");
    assert_eq!(v["init"]["action"], "initialized");
    assert_eq!(
        a.json(&["config", "get", "database.mode"])["value"],
        "libsql"
    );
    assert_eq!(
        a.run(&["config", "set", "database.mode", "cloud", "--json"])
            .error_code(),
        "invalid_input"
    );
    assert_eq!(
        a.run(&["config", "set", "nope", "x", "--json"])
            .error_code(),
        "invalid_input"
    );
    assert_eq!(
        a.run(&["config", "set", "database.url", "ftp://x", "--json"])
            .error_code(),
        "invalid_input"
    );
    // Autosync is on by default with a hub (as td): a write pushes by itself...
    a.autosync.set(true);
    a.create("Pushed by autosync", &[]);
    assert_eq!(a.json(&["sync", "status"])["pending"], 0);
    // ...unless switched off in the project,
    a.json(&["config", "set", "sync.auto", "false"]);
    a.create("Kept until a sync", &[]);
    assert_eq!(a.json(&["sync", "status"])["pending"], 1);
    a.json(&["sync"]);
    // or for one shell (TD_SYNC_AUTO=false wins over the project's setting).
    assert_eq!(
        a.json(&["config", "set", "sync.auto", "true"])["action"],
        "set"
    );
    let out = a
        .command(None, &["create", "Kept by the shell's switch", "--json"])
        .env("TD_SYNC_AUTO", "false")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(a.json(&["sync", "status"])["pending"], 1);
    a.json(&["sync"]);
    a.create("Pushed again", &[]);
    assert_eq!(a.json(&["sync", "status"])["pending"], 0);
    let db = a.json(&["status", "--db"]);
    assert_eq!(db["mode"], "libsql");
    assert_eq!(db["hub_answered"], true);
    assert!(a.ok(&["status", "--db"]).contains("Pending push: 0"));
    // Hub down: the command still succeeds, warns once, the change stays pending.
    let mut hub = hub;
    hub.stop();
    let r = a.run(&["create", "Written with the hub down"]);
    assert_eq!(r.code, 0);
    assert_eq!(
        r.stderr.matches("Warning: autosync").count(),
        1,
        "{}",
        r.stderr
    );
    let r = a.run(&["list"]);
    assert_eq!(r.code, 0, "reads work offline");
    assert_eq!(a.json(&["sync", "status"])["pending"], 1);
    // Bad input.
    assert_eq!(
        a.run(&["init", "--mode=libsql", "--json"]).error_code(),
        "invalid_input"
    );
    assert_eq!(
        Replica::new()
            .run(&["init", "--mode=cloud", "--url", "http://x", "--json"])
            .error_code(),
        "invalid_input"
    );
}

#[test]
fn joining_rules() {
    let hub = Hub::start();
    let (_a, _) = team(&hub.url(), 0);
    // A replica with its own changes cannot join another project.
    let other = Replica::init();
    other.create("Another project's work", &[]);
    let theirs = _a.json(&["whoami"])["project"]
        .as_str()
        .unwrap()
        .to_string();
    let r = other.run(&[
        "sync",
        "init",
        "--hub",
        &hub.url(),
        "--project",
        &theirs,
        "--json",
    ]);
    assert_eq!(r.code, 1);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("project mismatch"));
    // It never founds a second project on the hub by accident: without --project it is
    // refused with what to do; naming its own project shares the hub on purpose. Then a
    // fresh replica must choose.
    let r = other.run(&["sync", "init", "--hub", &hub.url(), "--json"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.contains("second project") && r.stdout.contains("--adopt"),
        "{}",
        r.stdout
    );
    let own = other.json(&["whoami"])["project"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        other.json(&["sync", "init", "--hub", &hub.url(), "--project", &own])["action"],
        "connected"
    );
    let fresh = Replica::init();
    let r = fresh.run(&["sync", "init", "--hub", &hub.url(), "--json"]);
    assert_eq!(r.code, 1);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("--project"));
    let v = fresh.json(&["sync", "init", "--hub", &hub.url(), "--project", &theirs]);
    assert_eq!(v["project"], theirs.as_str());
    // Newer hub layout: refused, never written.
    td_tests::hub::sql(
        hub.port,
        "UPDATE td_hub_meta SET value = '99' WHERE key = 'layout_version'",
        json!([]),
    );
    let rows_before = hub.change_rows();
    let r = fresh.run(&["sync"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("layout version 99"), "{}", r.stderr);
    assert_eq!(hub.change_rows(), rows_before);
}

/// td's tools read `action_log.synced_at` to tell what reached the server: every action is
/// marked once the hub holds this replica's records, and not before.
#[test]
fn pushed_actions_are_marked_synced_for_tds_tools() {
    let hub = Hub::start();
    let a = Replica::init();
    a.create("Written before the hub", &[]);
    let unsynced = |r: &Replica| -> i64 {
        rusqlite::Connection::open(r.db())
            .unwrap()
            .query_row(
                "SELECT count(*) FROM action_log WHERE synced_at IS NULL",
                [],
                |x| x.get(0),
            )
            .unwrap()
    };
    assert!(unsynced(&a) > 0);
    a.json(&["sync", "init", "--hub", &hub.url()]);
    assert_eq!(unsynced(&a), 0);
    a.create("Written after the first push", &[]);
    assert!(unsynced(&a) > 0, "not synced before it is pushed");
    a.json(&["sync"]);
    assert_eq!(unsynced(&a), 0);
}

/// A `libsql://` URL (TLS) pointing at a hub that speaks plain HTTP fails with a hint that
/// says what the scheme means, and writes no hub setting.
#[test]
fn a_tls_url_to_a_plain_hub_says_what_the_scheme_means() {
    use std::io::Read;
    // A plain-HTTP listener that reads the TLS hello it cannot understand and hangs up.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut conn = conn;
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
        }
    });
    let r = Replica::init();
    let out = r.run(&[
        "sync",
        "init",
        "--hub",
        &format!("libsql://127.0.0.1:{port}"),
    ]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("libsql:// and https:// speak TLS")
            && out.stderr.contains("http://host:port"),
        "{}",
        out.stderr
    );
    assert!(r.json(&["sync", "status"])["hub"].is_null());
}

/// Onboarding says what is so: a machine that connects to the hub without being a member is
/// told it is not one and what to ask for; `td join` names its route; a member that runs
/// `td join` again is told it already is one, and the invite stays unused.
#[test]
fn onboarding_tells_the_truth() {
    let hub = td_tests::hub::Hub::start();
    let a = td_tests::hub::founder_on(&hub, "Founding issue");
    // A machine with the hub's address but no admission.
    let stranger = Replica::init();
    let v = stranger.json(&["sync", "init", "--hub", &hub.url()]);
    assert_eq!(
        (v["action"].as_str(), v["member"].as_bool()),
        (Some("joined"), Some(false)),
        "{v}"
    );
    let human = Replica::init();
    let out = human.ok(&["sync", "init", "--hub", &hub.url()]);
    assert!(
        out.contains("NOT A MEMBER")
            && out.contains(&format!("td member add {}", human.public_key())),
        "{out}"
    );
    // A member connecting is a member.
    let added = Replica::init();
    a.json(&["member", "add", &added.public_key()]);
    a.json(&["sync"]);
    let v = added.json(&["sync", "init", "--hub", &hub.url()]);
    assert_eq!(v["member"], true, "{v}");
    // td join names its route.
    let code = a.invite(&[]);
    a.json(&["sync"]);
    let joiner = Replica::new();
    let out = joiner.ok(&["join", &code]);
    assert!(
        out.contains("JOINED project") && out.contains(&format!("(through hub {})", hub.url())),
        "{out}"
    );
    // A member joining again: told so, nothing written, the invite stays open.
    let spare = a.invite(&["--name", "spare"]);
    a.json(&["sync"]);
    let before = joiner.export();
    let v = joiner.json(&["join", &spare]);
    assert_eq!(
        (v["action"].as_str(), v["role"].as_str()),
        (Some("already_member"), Some("member")),
        "{v}"
    );
    assert_eq!(joiner.export(), before);
    let pending = a.json(&["member", "list"]).to_string();
    assert!(pending.contains("\"spare\""), "{pending}");
}

/// A write committed by another process while a pull is under way (an agent's `td create`
/// beside the sync loop) is still pushed: the pull moves the push cursor only over what it
/// read from the hub, atomically, never over a record committed meanwhile.
#[test]
fn a_write_committed_during_a_pull_is_still_pushed() {
    let hub = Hub::start();
    let proxy = Proxy::start(hub.port);
    let a = td_tests::hub::founder_on(&hub, "Founding issue");
    let b = td_tests::hub::joined(&a, &[], "member");
    b.json(&["config", "set", "database.url", &proxy.url()]);
    b.json(&["sync"]);
    a.create("From A", &[]);
    a.json(&["sync"]);
    // B's next pull is held up for two seconds at the hub; B writes meanwhile.
    proxy.inject_matching(
        "seq > ?2",
        0,
        Fault::Delay(std::time::Duration::from_secs(2)),
        1,
    );
    let syncing = b
        .command(None, &["sync", "--json"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    b.create("Written on B during the pull", &[]);
    let out = syncing.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        b.json(&["sync", "status"])["pending"].as_u64() > Some(0)
            || b.json(&["sync"])["pushed"].as_u64() > Some(0),
        "the write made during the pull is still to push"
    );
    b.json(&["sync"]);
    a.json(&["sync"]);
    let titles = a.json(&["list", "--all"]).to_string();
    assert!(titles.contains("Written on B during the pull"), "{titles}");
    assert_eq!(a.export(), b.export());
}
