//! End-to-end runs of the real `td` binary: every foundation command, its idempotent repeat,
//! and its documented errors, in human and `--json` modes.

use td_tests::Replica;

#[test]
fn init_creates_database_and_repeats_with_warning() {
    let r = Replica::new();
    let first = r.run(&["init"]);
    assert_eq!(first.code, 0);
    assert!(first.stdout.starts_with("INITIALIZED "), "{}", first.stdout);
    assert!(first.stdout.contains("Session: ses_"));
    assert!(r.db().exists());
    let again = r.run(&["init"]);
    assert_eq!(again.code, 0);
    assert!(
        again.stderr.contains("Warning: already initialized"),
        "{}",
        again.stderr
    );
    // td's schema: version 38, builtin board.
    let conn = rusqlite::Connection::open(r.db()).unwrap();
    let v: String = conn
        .query_row(
            "SELECT value FROM schema_info WHERE key='version'",
            [],
            |x| x.get(0),
        )
        .unwrap();
    assert_eq!(v, "38");
    let b: String = conn
        .query_row(
            "SELECT name FROM boards WHERE id='bd-all-issues'",
            [],
            |x| x.get(0),
        )
        .unwrap();
    assert_eq!(b, "All Issues");
}

#[test]
fn schema_matches_real_td_database() {
    let r = Replica::init();
    let ours = td_tests::canonical_dump(&r.db(), Some("crdt_"));
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/td-v38-sample.db");
    let theirs = td_tests::canonical_dump(&fixture, None);
    let ddl = |d: &str| {
        d.lines()
            .filter(|l| !l.starts_with("  "))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(ddl(&ours), ddl(&theirs));
}

#[test]
fn missing_database_is_a_clear_error() {
    let r = Replica::new();
    let h = r.run(&["list"]);
    assert_eq!(h.code, 1);
    assert!(
        h.stderr.contains("database not found: run 'td init' first"),
        "{}",
        h.stderr
    );
    assert_eq!(r.run(&["list", "--json"]).error_code(), "database_error");
}

#[test]
fn init_in_git_repo_adds_gitignore() {
    let r = Replica::new();
    let git = std::process::Command::new("git")
        .arg("init")
        .arg("-q")
        .arg(&r.root)
        .status();
    if !git.map(|s| s.success()).unwrap_or(false) {
        return; // git not available on this machine
    }
    r.ok(&["init"]);
    let gi = std::fs::read_to_string(r.root.join(".gitignore")).unwrap();
    assert!(gi.lines().any(|l| l == ".todos/"), "{gi}");
    r.ok(&["init"]);
    let gi2 = std::fs::read_to_string(r.root.join(".gitignore")).unwrap();
    assert_eq!(gi, gi2, "second init must not add a second entry");
}

#[test]
fn create_list_show_update() {
    let r = Replica::init();
    let human = r.run(&[
        "create",
        "Fix login redirect",
        "-p",
        "high",
        "-l",
        "auth,web",
        "-d",
        "Users land on /",
    ]);
    assert_eq!(human.code, 0);
    assert!(human.stdout.starts_with("CREATED td-"), "{}", human.stdout);
    let v = r.json(&[
        "create",
        "Add OAuth provider",
        "-t",
        "story",
        "--points",
        "5",
        "--acceptance",
        "works",
    ]);
    assert_eq!(v["action"], "created");
    assert_eq!(v["status"], "open");
    assert_eq!(v["issue"]["type"], "feature");
    assert_eq!(v["issue"]["points"], 5);
    // td's model leaves empty labels out (`omitempty`).
    assert!(v["issue"].get("labels").is_none(), "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    assert!(v["issue"]["creator_session"]
        .as_str()
        .unwrap()
        .starts_with("ses_"));

    let list = r.json(&["list"]);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["priority"], "P1", "sorted by priority");
    assert_eq!(list[0]["labels"], serde_json::json!(["auth", "web"]));
    assert_eq!(r.json(&["list", "-l", "web"]).as_array().unwrap().len(), 1);
    assert_eq!(
        r.json(&["list", "-q", "oauth"]).as_array().unwrap().len(),
        1
    );
    assert_eq!(r.json(&["list", "-s", "closed"]), serde_json::json!([]));
    assert!(r
        .ok(&["ls", "-t", "feature"])
        .contains("Add OAuth provider"));

    let bare = id.trim_start_matches("td-");
    let shown = r.json(&["show", bare]);
    assert_eq!(shown["id"], id.as_str());
    assert_eq!(shown["acceptance"], "works");
    let version = shown["version"].as_str().unwrap().to_string();
    assert_eq!(version.len(), 16);

    let up = r.json(&[
        "update",
        &id,
        "--title",
        "Add GitHub OAuth provider",
        "-p",
        "P0",
        "--append",
        "more",
    ]);
    assert_eq!(up["action"], "updated");
    assert_eq!(up["issue"]["title"], "Add GitHub OAuth provider");
    assert_eq!(up["issue"]["description"], "more");
    let again = r.json(&["update", &id, "-p", "P0"]);
    assert_eq!(again["action"], "unchanged");
    assert_ne!(r.json(&["show", &id])["version"], version.as_str());
    // Session stamps survive updates that do not touch them.
    assert_eq!(
        r.json(&["show", &id])["creator_session"],
        v["issue"]["creator_session"]
    );
}

#[test]
fn full_review_workflow_with_sessions() {
    let r = Replica::init();
    let id = r.create("Implement session-aware review", &[]);
    let s = r.json_as("impl", &["start", &id]);
    assert_eq!(s["action"], "started");
    assert_eq!(s["status"], "in_progress");
    let me = s["issue"]["implementer_session"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(me.starts_with("ses_"));
    assert_eq!(
        r.json_as("impl", &["start", &id])["action"],
        "already_started"
    );
    // Another session cannot take it without --force.
    assert_eq!(
        r.run_as("other", &["start", &id, "--json"]).error_code(),
        "conflict"
    );
    r.json_as("impl", &["log", "wrote the parser"]);
    r.json_as("impl", &["log", &id, "--decision", "use a state machine"]);
    let rev = r.json_as("impl", &["review", &id]);
    assert_eq!(rev["status"], "in_review");
    let shown = r.json(&["show", &id]);
    assert_eq!(
        shown["handoff"]["done"],
        serde_json::json!(["wrote the parser"]),
        "handoff built from logs"
    );
    assert_eq!(
        shown["handoff"]["decisions"],
        serde_json::json!(["use a state machine"])
    );
    // Implementer cannot approve; human mode shows ERROR on stderr.
    let h = r.run_as("impl", &["approve", &id]);
    assert_eq!(h.code, 1);
    assert!(h.stderr.starts_with("ERROR: "), "{}", h.stderr);
    assert_eq!(
        r.run_as("impl", &["approve", &id, "--json"]).error_code(),
        "cannot_self_approve"
    );
    assert_eq!(
        r.run_as("impl", &["approve", &id, "--self-review", "--json"])
            .error_code(),
        "invalid_input"
    );
    // Reviewer rejects, implementer fixes, reviewer approves.
    let rj = r.json_as("reviewer", &["reject", &id, "--reason", "missing tests"]);
    assert_eq!(rj["status"], "open");
    assert_eq!(rj["issue"]["implementer_session"], "");
    r.json_as("impl", &["start", &id]);
    r.json_as("impl", &["review", &id]);
    let ap = r.json_as("reviewer", &["approve", &id]);
    assert_eq!(ap["status"], "closed");
    assert_eq!(
        ap["issue"]["closed_by_session"],
        ap["issue"]["reviewer_session"]
    );
    assert_eq!(
        r.json_as("reviewer", &["approve", &id])["action"],
        "already_closed"
    );
    let reviews = r.json(&["show", &id])["reviews"].clone();
    let reviews = reviews.as_array().unwrap();
    assert_eq!(reviews.len(), 2);
    assert_eq!(
        reviews
            .iter()
            .filter(|x| x["superseded_at"].is_null())
            .count(),
        1,
        "one active review"
    );
    assert!(reviews.iter().any(|x| x["decision"] == "changes_requested"));
    assert!(reviews.iter().any(|x| x["decision"] == "approved"));
    let re = r.json(&["reopen", &id]);
    assert_eq!(re["status"], "open");
    assert!(re["issue"]["closed_at"].is_null());
}

#[test]
fn self_review_and_reviewed_by_are_recorded() {
    let r = Replica::init();
    let a = r.create("Tune the merge queue", &[]);
    let b = r.create("Tune the sync cursor", &[]);
    for id in [&a, &b] {
        r.json_as("solo", &["start", id]);
        r.json_as("solo", &["handoff", id, "--done", "tuned"]);
        r.json_as("solo", &["review", id]);
    }
    let x = r.json_as(
        "solo",
        &["approve", &a, "--self-review", "--reason", "solo project"],
    );
    assert_eq!(x["status"], "closed");
    let y = r.json_as("solo", &["approve", &b, "--reviewed-by", "alice"]);
    assert_eq!(y["status"], "closed");
    let ra = &r.json(&["show", &a])["reviews"][0];
    assert_eq!(ra["self_review"], true);
    assert_eq!(ra["summary"], "solo project");
    let rb = &r.json(&["show", &b])["reviews"][0];
    assert_eq!(rb["reviewed_by"], "alice");
    // td records an attributed review by the implementer as written by an involved session
    // (self_review = 1), credited to the named reviewer (reviewpolicy's SelfReview).
    assert_eq!(rb["self_review"], true);
}

#[test]
fn minor_issue_skips_review_and_review_without_handoff_makes_tds_minimal_one() {
    let r = Replica::init();
    let m = r.create("Fix typo in README", &["--minor"]);
    r.json(&["start", &m]);
    assert_eq!(r.json(&["approve", &m])["status"], "closed");
    // As td: review of an issue with no handoff and no substantive log submits it with td's
    // minimal handoff, and warns on stderr.
    let bare = r.create("Nothing logged before review", &[]);
    r.json(&["start", &bare]);
    let out = r.run(&["review", &bare]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("Warning: auto-created minimal handoff for {bare}")),
        "{}",
        out.stderr
    );
    let shown = r.json(&["show", &bare]);
    assert_eq!(shown["status"], "in_review");
    assert_eq!(
        shown["handoff"]["done"],
        serde_json::json!(["Auto-generated for review submission"])
    );
    let n = r.create("Rework the change log index", &[]);
    r.json(&["start", &n]);
    r.json(&[
        "handoff",
        &n,
        "--done",
        "index",
        "--remaining",
        "bench",
        "--uncertain",
        "size?",
    ]);
    assert_eq!(r.json(&["review", &n])["action"], "review_requested");
    assert_eq!(r.json(&["review", &n])["action"], "already_in_review");
}

#[test]
fn close_block_unblock_unstart_delete_restore() {
    let r = Replica::init();
    let id = r.create("Investigate flaky hub test", &[]);
    assert_eq!(r.json(&["block", &id])["status"], "blocked");
    assert_eq!(r.json(&["block", &id])["action"], "already_blocked");
    assert_eq!(
        r.run(&["start", &id, "--json"]).error_code(),
        "invalid_input"
    );
    assert_eq!(r.json(&["start", &id, "--force"])["status"], "in_progress");
    assert_eq!(r.json(&["unstart", &id])["status"], "open");
    assert_eq!(r.json(&["unstart", &id])["action"], "not_started");
    r.json(&["block", &id]);
    assert_eq!(r.json(&["unblock", &id])["status"], "open");
    assert_eq!(r.json(&["unblock", &id])["action"], "not_blocked");
    // The session started it, so td's review policy wants a stated exception to close it.
    assert_eq!(
        r.run(&["close", &id, "--json"]).error_code(),
        "cannot_self_approve"
    );
    let closed = r.json(&[
        "close",
        &id,
        "--self-close-exception",
        "duplicate of another",
    ]);
    assert_eq!(closed["status"], "closed");
    assert_eq!(r.json(&["close", &id])["action"], "already_closed");
    assert_eq!(
        r.run(&["block", &id, "--json"]).error_code(),
        "invalid_input",
        "closed → blocked is not a td transition"
    );
    r.json(&["reopen", &id]);
    r.json(&["start", &id]);
    r.json(&["handoff", &id, "--done", "x"]);
    r.json(&["review", &id]);
    assert_eq!(
        r.run(&["close", &id, "--json"]).error_code(),
        "invalid_input",
        "close refuses in_review"
    );

    let d = r.json(&["delete", &id]);
    assert_eq!(d["action"], "deleted");
    assert!(d["issue"]["deleted_at"].is_string());
    assert_eq!(r.json(&["delete", &id])["action"], "already_deleted");
    assert_eq!(r.json(&["list", "-a"]), serde_json::json!([]));
    assert_eq!(r.run(&["start", &id, "--json"]).error_code(), "not_found");
    assert_eq!(r.json(&["restore", &id])["action"], "restored");
    assert_eq!(r.json(&["restore", &id])["action"], "not_deleted");
    assert_eq!(r.json(&["list", "-a"]).as_array().unwrap().len(), 1);
}

#[test]
fn comments_deps_and_epics() {
    let r = Replica::init();
    let epic = r.json(&["epic", "create", "Multi-machine sync"]);
    assert_eq!(epic["issue"]["type"], "epic");
    let e = epic["id"].as_str().unwrap().to_string();
    let a = r.create("QUIC transport", &["--epic", &e]);
    let b = r.create("Hub client", &["--parent", &e, "--depends-on", &a]);
    let c = r.create("Sync docs", &["--blocks", &b]);
    assert_eq!(r.json(&["epic", "list"]).as_array().unwrap().len(), 1);
    assert_eq!(r.json(&["list", "--epic", &e]).as_array().unwrap().len(), 2);
    let sb = r.json(&["show", &b]);
    let mut want = vec![a.clone(), c.clone()];
    want.sort();
    assert_eq!(sb["depends_on"], serde_json::json!(want));
    assert_eq!(
        r.json(&["show", &e])["children"].as_array().unwrap().len(),
        2
    );
    // Cycles and self-edges are refused.
    assert_eq!(
        r.run(&["dep", "add", &a, &b, "--json"]).error_code(),
        "invalid_input"
    );
    assert_eq!(
        r.run(&["dep", "add", &a, &a, "--json"]).error_code(),
        "invalid_input"
    );
    assert_eq!(r.json(&["dep", "add", &b, &a])["action"], "already_exists");
    assert_eq!(r.json(&["dep", "rm", &b, &a])["action"], "removed");
    assert_eq!(r.json(&["dep", "rm", &b, &a])["action"], "not_found");
    assert_eq!(r.json(&["dep", "add", &b, &a])["action"], "added");
    assert_eq!(
        r.run(&["dep", "add", &b, "td-ffffff", "--json"])
            .error_code(),
        "not_found"
    );
    // The dependency row id is td's deterministic one.
    let conn = rusqlite::Connection::open(r.db()).unwrap();
    let dep_id: String = conn
        .query_row(
            "SELECT id FROM issue_dependencies WHERE issue_id=?1 AND depends_on_id=?2",
            [&b, &a],
            |x| x.get(0),
        )
        .unwrap();
    assert_eq!(
        dep_id,
        td_engine::model::link_id("dep_", &format!("{b}|{a}|depends_on"))
    );

    let cm = r.json(&[
        "comment",
        &a,
        "Looks good 👍 — 日本語 עברית <b>x</b> '; DROP TABLE issues; --",
    ]);
    assert_eq!(cm["action"], "commented");
    let shown = r.json(&["show", &a]);
    assert_eq!(
        shown["comments"][0]["text"],
        "Looks good 👍 — 日本語 עברית <b>x</b> '; DROP TABLE issues; --"
    );
    assert_eq!(
        r.run(&["comment", "td-000000", "x", "--json"]).error_code(),
        "not_found"
    );
}

#[test]
fn work_sessions() {
    let r = Replica::init();
    let a = r.create("Write the wire protocol doc", &[]);
    let b = r.create("Write the hub guide", &[]);
    assert_eq!(
        r.run(&["ws", "tag", &a, "--json"]).error_code(),
        "no_active_session"
    );
    assert_eq!(r.json(&["ws", "current"]), serde_json::Value::Null);
    let ws = r.json(&["ws", "start", "docs sprint"]);
    let wid = ws["id"].as_str().unwrap().to_string();
    assert!(wid.starts_with("ws-"));
    assert_eq!(
        r.json(&["ws", "tag", &a, &b])["issues"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        r.json(&["ws", "tag", &a])["issues"],
        serde_json::json!([]),
        "repeat tag is a no-op"
    );
    assert_eq!(
        r.json(&["ws", "untag", &b])["issues"],
        serde_json::json!([b.clone()])
    );
    assert_eq!(
        r.json(&["ws", "log", "outlined sections"])["ids"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let cur = r.json(&["ws", "current"]);
    assert_eq!(cur["id"], wid.as_str());
    assert_eq!(cur["issues"], serde_json::json!([a.clone()]));
    let logs = r.json(&["show", &a])["logs"].clone();
    assert_eq!(logs[0]["work_session_id"], wid.as_str());
    let ho = r.json(&[
        "ws",
        "handoff",
        "--done",
        "outline",
        "--remaining",
        "examples",
    ]);
    assert_eq!(ho["handoffs"].as_array().unwrap().len(), 1);
    assert_eq!(
        r.json(&["ws", "current"]),
        serde_json::Value::Null,
        "handoff ends the work session"
    );
    let list = r.json(&["ws", "list"]);
    assert!(list[0]["ended_at"].is_string());
    assert_eq!(
        r.json(&["show", &a])["handoff"]["remaining"],
        serde_json::json!(["examples"])
    );
    r.json(&["ws", "start", "second"]);
    assert_eq!(
        r.run(&["ws", "start", "third", "--json"]).error_code(),
        "invalid_input"
    );
    assert_eq!(r.json(&["ws", "end"])["action"], "ended");
    assert_eq!(
        r.run(&["ws", "end", "--json"]).error_code(),
        "no_active_session"
    );
}

#[test]
fn sessions_whoami_usage_status() {
    let r = Replica::init();
    let w = r.json(&["whoami"]);
    let machine = w["machine"].as_str().unwrap();
    assert!(w["session"]
        .as_str()
        .unwrap()
        .starts_with(&format!("ses_{machine}_")));
    assert_eq!(w["public_key"].as_str().unwrap().len(), 64);
    // Same context → same session; TD_SESSION_ID names select distinct, stable sessions.
    assert_eq!(r.json(&["session"])["session"], w["session"]);
    let a1 = r.json_as("agent-a", &["whoami"])["session"].clone();
    let a2 = r.json_as("agent-a", &["whoami"])["session"].clone();
    let b = r.json_as("agent-b", &["whoami"])["session"].clone();
    assert_eq!(a1, a2);
    assert_ne!(a1, b);
    assert_ne!(a1, w["session"]);
    assert_eq!(
        r.json(&["whoami"])["session"],
        w["session"],
        "named sessions do not capture the default one"
    );
    let new = r.json(&["session", "--new"]);
    assert_eq!(new["new"], true);
    assert_ne!(new["session"], w["session"]);
    assert_eq!(r.json(&["whoami"])["session"], new["session"]);
    // Key file is private.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(r.config.join("td/machine.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let id = r.create("Ship the usage block", &[]);
    r.json(&["start", &id]);
    let u = r.json(&["usage"]);
    // td's keys: the focused issue is the whole issue.
    assert_eq!(u["focused"]["id"], id.as_str());
    assert_eq!(u["in_progress"][0]["id"], id.as_str());
    assert!(r.ok(&["usage"]).contains(&id));
    let s = r.json(&["status"]);
    assert_eq!(s["focused"]["issue"]["id"], id.as_str(), "{s}");
    assert!(r.json(&["status", "--db"]).is_object());
}

#[test]
fn if_match_guards_writes() {
    let r = Replica::init();
    let id = r.create("Guard concurrent edits", &[]);
    let v1 = r.json(&["show", &id])["version"]
        .as_str()
        .unwrap()
        .to_string();
    let ok = r.json(&["update", &id, "-p", "P1", "--if-match", &v1]);
    assert_eq!(ok["action"], "updated");
    let before = r.export();
    for args in [
        vec!["update", id.as_str(), "-p", "P3"],
        vec!["start", id.as_str()],
        vec!["block", id.as_str()],
        vec!["close", id.as_str()],
        vec!["delete", id.as_str()],
        vec!["review", id.as_str()],
        vec!["approve", id.as_str()],
        vec!["reject", id.as_str()],
    ] {
        let mut a = args.clone();
        a.extend(["--if-match", v1.as_str(), "--json"]);
        let run = r.run(&a);
        assert_eq!(run.error_code(), "conflict", "{args:?}");
        let env = run.json();
        assert_eq!(
            env["error"]["current"]["id"],
            id.as_str(),
            "conflict carries the current state"
        );
        assert_ne!(env["error"]["current"]["version"], v1.as_str());
        let human = r.run(&a[..a.len() - 1]);
        assert_eq!(human.code, 1);
        assert!(human.stderr.contains("current state"), "{}", human.stderr);
    }
    assert_eq!(r.export(), before, "failed --if-match writes nothing");
}

#[test]
fn export_is_deterministic_and_excludes_local_tables() {
    let r = Replica::init();
    let id = r.create("Export everything", &["-l", "a,b"]);
    r.json(&["comment", &id, "hello"]);
    let e1 = r.export();
    let e2 = r.export();
    assert_eq!(e1, e2);
    let v: serde_json::Value = serde_json::from_str(&e1).unwrap();
    let tables = v["tables"].as_object().unwrap();
    assert_eq!(tables.len(), 13);
    for local in [
        "sessions",
        "session_state",
        "action_log",
        "sync_state",
        "schema_info",
    ] {
        assert!(!tables.contains_key(local));
    }
    assert_eq!(tables["issues"][0]["labels"], "a,b");
    assert_eq!(
        r.run(&["export", "--format", "yaml", "--json"])
            .error_code(),
        "invalid_input"
    );
}

#[test]
fn rebuild_reproduces_tables() {
    let r = Replica::init();
    let a = r.create("Rebuild check one", &["-l", "x", "-d", "desc"]);
    let b = r.create("Rebuild check two", &["--depends-on", &a]);
    r.json(&["start", &a]);
    r.json(&["log", "progress"]);
    r.json(&["comment", &b, "c"]);
    r.json(&["handoff", &a, "--done", "d"]);
    r.json(&["review", &a]);
    r.json_as("rev", &["approve", &a]);
    r.json(&["ws", "start", "w"]);
    r.json(&["ws", "tag", &b]);
    r.json(&["delete", &b]);
    let before = td_tests::canonical_dump(&r.db(), Some("sqlite_"));
    let out = r.json(&["rebuild"]);
    assert!(out["changes"].as_i64().unwrap() > 10);
    let after = td_tests::canonical_dump(&r.db(), Some("sqlite_"));
    assert_eq!(before, after);
}

#[test]
fn queues_dates_and_deleted() {
    let r = Replica::init();
    let a = r.create("Ready work item", &["-p", "P1"]);
    let b = r.create("Waits on the ready one", &["--depends-on", &a]);
    let c = r.create("Deferred work item", &["-p", "P0"]);
    assert_eq!(r.json(&["defer", &c, "2999-01-01"])["action"], "set");
    assert_eq!(r.json(&["show", &c])["defer_count"], 1);
    assert_eq!(r.json(&["defer", &c, "2999-01-01"])["action"], "unchanged");
    let ready: Vec<String> = r
        .json(&["ready"])
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ready, vec![a.clone()], "b waits on a, c is deferred");
    assert_eq!(r.json(&["next"])["id"], a.as_str());
    r.json(&["close", &a]);
    assert_eq!(
        r.json(&["next"])["id"],
        b.as_str(),
        "closing the dependency readies b"
    );
    assert_eq!(r.json(&["defer", &c, "--clear"])["action"], "cleared");
    assert_eq!(r.json(&["next"])["id"], c.as_str());
    assert_eq!(r.json(&["due", &b, "2030-06-30"])["due_date"], "2030-06-30");
    assert_eq!(
        r.run(&["due", &b, "someday", "--json"]).error_code(),
        "invalid_input"
    );
    assert_eq!(
        r.run(&["defer", "td-nope00", "2030-01-01", "--json"])
            .error_code(),
        "not_found"
    );
    r.json(&["block", &b]);
    assert_eq!(r.json(&["blocked"])[0]["id"], b.as_str());
    r.json_as("impl", &["start", &c]);
    r.json_as("impl", &["handoff", &c, "--done", "x"]);
    r.json_as("impl", &["review", &c]);
    assert_eq!(r.json(&["in-review"]).as_array().unwrap().len(), 1);
    // td's default (trusted) lists every issue in review, own work included (approving it
    // then needs an attestation); delegated leaves out the session's own work.
    assert_eq!(
        r.json_as("impl", &["reviewable"])["awaiting"][0]["id"],
        c.as_str()
    );
    r.json(&["feature", "set", "review_policy_mode", "delegated"]);
    assert_eq!(
        r.json_as("impl", &["reviewable"])["awaiting"],
        serde_json::json!([]),
        "not your own work"
    );
    assert_eq!(
        r.json_as("other", &["reviewable"])["awaiting"][0]["id"],
        c.as_str()
    );
    assert_eq!(r.json(&["deleted"]), serde_json::json!([]));
    r.json(&["delete", &b]);
    assert_eq!(r.json(&["deleted"])[0]["id"], b.as_str());
    // a is closed, b deleted, c in review: nothing is ready.
    assert_eq!(r.json(&["next"]), serde_json::Value::Null);
    assert!(r.ok(&["next"]).contains("Nothing ready."));
}
