//! Calls td v0.62 accepts, through the real binary: each test fails if this td refuses one
//! of them or stores something else (issue 26).

use proptest::prelude::*;
use serde_json::json;
use td_tests::Replica;

/// An option that needs a value takes the next argument whatever it starts with, as td's
/// flag parser does: markdown bullets are what agents write most.
#[test]
fn option_values_may_start_with_a_dash() {
    let r = Replica::init();
    let id = r.create(
        "Ship the parser",
        &["--acceptance", "- tests pass", "--description", "-x"],
    );
    let shown = r.json(&["show", &id]);
    assert_eq!(shown["acceptance"], "- tests pass");
    assert_eq!(shown["description"], "-x");
    r.json(&[
        "update",
        &id,
        "--description",
        "- a\n- b",
        "--sprint",
        "--next",
    ]);
    let shown = r.json(&["show", &id]);
    assert_eq!(shown["description"], "- a\n- b");
    assert_eq!(shown["sprint"], "--next");
    r.json(&["start", &id]);
    r.json(&[
        "handoff",
        &id,
        "--done",
        "- parser",
        "--remaining",
        "- docs",
    ]);
    let shown = r.json(&["show", &id]);
    assert_eq!(shown["handoff"]["done"], json!(["- parser"]));
    assert_eq!(shown["handoff"]["remaining"], json!(["- docs"]));
    // A flag after a flag that needs a value is that value (td's reading too).
    let out = r.run(&["update", &id, "--labels", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(r.json(&["show", &id])["labels"], json!(["--json"]));
}

/// A single-value flag given twice keeps the last value, as td's does.
#[test]
fn a_repeated_single_value_flag_keeps_the_last() {
    let r = Replica::init();
    let id = r.create("First title here", &["-p", "P3", "--priority", "P1"]);
    assert_eq!(r.json(&["show", &id])["priority"], "P1");
    r.json(&[
        "update",
        &id,
        "--title",
        "Not this one",
        "--title",
        "This one wins",
        "--sprint",
        "s1",
        "--sprint",
        "s2",
    ]);
    let shown = r.json(&["show", &id]);
    assert_eq!(shown["title"], "This one wins");
    assert_eq!(shown["sprint"], "s2");
}

/// `td epic create --title` as td takes it; without any title, td's message.
#[test]
fn epic_create_takes_title_as_a_flag() {
    let r = Replica::init();
    let v = r.json(&["epic", "create", "--title", "- Big epic", "-p", "P1"]);
    let shown = r.json(&["show", v["id"].as_str().unwrap()]);
    assert_eq!(shown["title"], "- Big epic");
    assert_eq!(shown["type"], "epic");
    let out = r.run(&["epic", "create", "--json"]);
    assert_eq!(out.error_code(), "invalid_input");
    assert!(out
        .stdout
        .contains("requires a title argument or --title flag"));
}

/// td stores an empty comment.
#[test]
fn an_empty_comment_is_stored() {
    let r = Replica::init();
    let id = r.create("Comment on me", &[]);
    let out = r.run(&["comment", &id, ""]);
    assert_eq!(out.code, 0, "{out:?}");
    let comments = r.json(&["comments", &id]);
    let list = comments.as_array().expect("comments list");
    assert_eq!(list.len(), 1, "{comments}");
    assert_eq!(list[0]["text"], "");
}

/// td's upgrade path: td's own `.todos/issues.db`, then this td's `td upgrade`, adopts it in
/// place (td's file kept as a backup) and every command works on it after.
#[test]
fn td_upgrade_adopts_tds_database_in_place() {
    let r = Replica::new();
    std::fs::create_dir_all(r.root.join(".todos")).unwrap();
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/td-v38-sample.db");
    std::fs::copy(&fixture, r.db()).unwrap();
    let before = r.run(&["list"]);
    assert_eq!(before.code, 1);
    assert!(before.stderr.contains("td upgrade"), "{}", before.stderr);
    let up = r.run(&["upgrade"]);
    assert_eq!(up.code, 0, "{up:?}");
    let live: i64 = rusqlite::Connection::open(&fixture)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM issues WHERE deleted_at IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let issues = r.json(&["list", "--all", "-n", "1000"]);
    assert_eq!(
        issues.as_array().unwrap().len() as i64,
        live,
        "every issue of td's database"
    );
    let backups: Vec<_> = std::fs::read_dir(r.root.join(".todos"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".td-backup-"))
        .collect();
    assert_eq!(backups.len(), 1, "td's own file is kept");
    let kept: i64 = rusqlite::Connection::open(backups[0].path())
        .unwrap()
        .query_row(
            "SELECT count(*) FROM issues WHERE deleted_at IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(kept, live, "the backup holds td's data");
    // Once adopted, the database is current.
    let again = r.run(&["upgrade"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stdout.contains("Database is up to date."));
}

/// `td … | head` ends td quietly, as td ends: no panic, no backtrace.
#[test]
fn a_closed_pipe_ends_td_quietly() {
    let r = Replica::init();
    td_tests::bulk_issues(&r, 400, 1);
    let td = td_tests::td_bin();
    for cmd in [
        "list --json -n 1000",
        "list -n 1000",
        "export --format snapshot",
    ] {
        let script = format!(
            "\"{}\" -w \"{}\" {cmd} | head -c 10 >/dev/null; echo \"${{PIPESTATUS[0]}}\"",
            td.display(),
            r.root.display()
        );
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(&script)
            .env("XDG_CONFIG_HOME", &r.config)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let status = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(!stderr.contains("panicked"), "td {cmd}: {stderr}");
        assert_ne!(status, "101", "td {cmd} panicked: {stderr}");
    }
}

#[test]
fn json_is_tds_indented_escaped_and_timed_as_go_writes_it() {
    let r = Replica::init();
    let out = r.run(&["create", "a<b & c>d", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    // Go's MarshalIndent: two spaces, HTML characters escaped inside strings.
    assert!(
        out.stdout.starts_with("{\n  \"action\": \"created\""),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains(r#""title": "a\u003cb \u0026 c\u003ed""#),
        "{}",
        out.stdout
    );
    let v = out.json();
    assert_eq!(v["issue"]["title"], "a<b & c>d");
    // td's model: empty optional fields are left out, times are RFC 3339.
    let issue = &v["issue"];
    for absent in [
        "description",
        "labels",
        "parent_id",
        "closed_at",
        "deleted_at",
        "sprint",
    ] {
        assert!(issue.get(absent).is_none(), "{absent}: {issue}");
    }
    for present in ["implementer_session", "reviewer_session", "creator_session"] {
        assert!(issue[present].is_string(), "{present}: {issue}");
    }
    let created = issue["created_at"].as_str().unwrap();
    assert!(
        td_engine::model::parse_timestamp(created).is_some()
            && created.contains('T')
            && !created.contains(' '),
        "{created}"
    );
    // `td show --json`: td's keys for logs, handoff and reviews; empty strings present.
    let id = v["id"].as_str().unwrap().to_string();
    r.ok(&["start", &id]);
    r.ok(&["log", &id, "did a thing"]);
    r.ok(&["handoff", &id, "--done", "the thing"]);
    let s = r.json(&["show", &id]);
    assert_eq!(s["description"], "");
    assert_eq!(s["labels"], serde_json::json!([]));
    let log = s["logs"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(log["message"], "did a thing");
    assert!(
        log["session"].as_str().unwrap().starts_with("ses_"),
        "{log}"
    );
    assert_eq!(s["handoff"]["done"], serde_json::json!(["the thing"]));
    assert_eq!(s["handoff"]["remaining"], serde_json::json!([]));
    assert!(s["handoff"]["session"].is_string());
    r.ok(&["review", &id]);
    r.run_as("reviewer", &["approve", &id]);
    let s = r.json(&["show", &id]);
    assert_eq!(s["review_history"][0]["decision"], "approved", "{s}");
    assert_eq!(s["review_history"][0]["superseded"], false);
    assert_eq!(s["review_history"][0]["self_review"], false);
    // A stream stays one object per line.
    assert!(r
        .ok(&["sync", "tail", "-n", "2", "--json"])
        .starts_with('['));
}

#[test]
fn status_is_tds_review_dashboard() {
    let r = Replica::init();
    let empty = r.ok(&["status"]);
    assert_eq!(
        empty.trim(),
        "No active work. Run 'td next' to see the next issue to start."
    );
    // Balanced review: a session does not review its own work. Work by another session,
    // waiting for mine; mine, waiting for others; one blocked.
    r.ok(&["feature", "set", "review_policy_mode", "balanced"]);
    let theirs = r.json_as("other", &["create", "Their work to review"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    r.run_as("other", &["start", &theirs]);
    r.run_as("other", &["review", &theirs]);
    let mine = r.create("My work in review", &[]);
    r.ok(&["start", &mine]);
    r.ok(&["review", &mine]);
    let blocker = r.create("The blocker", &[]);
    let stuck = r.create("Stuck behind it", &[]);
    r.ok(&["dep", "add", &stuck, &blocker]);
    r.ok(&["block", &stuck]);
    r.ok(&["focus", &blocker]);
    r.ok(&["log", &blocker, "looked at it"]);
    let me = r.json(&["whoami"])["session"].as_str().unwrap().to_string();
    let text = r.ok(&["status"]);
    for want in [
        format!("SESSION: {me}"),
        format!("FOCUSED: {blocker} \"The blocker\" [open]"),
        "  └── 1 logs, last: ".to_string(),
        "AWAITING YOUR REVIEW (1):".to_string(),
        format!("  {theirs} \"Their work to review\""),
        "PENDING REVIEW (your implementation, 1):".to_string(),
        format!("  {mine} \"My work in review\""),
        "BLOCKED (1):".to_string(),
        format!("  {stuck} \"Stuck behind it\" waiting on {blocker}"),
        "READY TO START (1):".to_string(),
        format!("  {blocker} \"The blocker\" P2"),
    ] {
        assert!(text.contains(&want), "missing {want:?} in:\n{text}");
    }
    let v = r.json(&["status"]);
    assert_eq!(v["session"], me.as_str());
    assert_eq!(v["focused"]["issue"]["id"], blocker.as_str());
    assert_eq!(v["focused"]["log_count"], 1);
    assert!(v["focused"]["last_log"].is_string());
    assert_eq!(v["in_review"]["total"], 2);
    assert_eq!(
        v["in_review"]["reviewable_by_you"][0]["id"],
        theirs.as_str()
    );
    assert_eq!(v["in_review"]["implemented_by_you"][0]["id"], mine.as_str());
    assert_eq!(v["in_review"]["ready_to_close"], serde_json::json!([]));
    assert_eq!(v["blocked"][0]["issue"]["id"], stuck.as_str());
    assert_eq!(v["blocked"][0]["depends_on"], serde_json::json!([blocker]));
    assert_eq!(v["ready_to_start"][0]["id"], blocker.as_str());
}

#[test]
fn list_and_show_print_tds_layout() {
    let r = Replica::init();
    let id = r.create(
        "Ship the thing",
        &[
            "-p",
            "P1",
            "-l",
            "a,b",
            "-d",
            "Some description",
            "--points",
            "3",
        ],
    );
    let bare = r.create("Bare issue", &[]);
    r.ok(&["start", &id]);
    r.ok(&["log", &id, "first line\nsecond line"]);
    r.ok(&["log", &id, "--decision", "Chose X"]);
    r.ok(&["handoff", &id, "--done", "one", "--remaining", "two"]);
    let list = r.ok(&["list"]);
    assert!(
        list.contains(&format!(
            "{id}  [P1]  Ship the thing  3pts  task  [in_progress]"
        )),
        "{list}"
    );
    assert!(
        list.contains(&format!("{bare}  [P2]  Bare issue  task  [open]")),
        "{list}"
    );
    let show = r.ok(&["show", &id]);
    let me = r.json(&["whoami"])["session"].as_str().unwrap().to_string();
    for want in [
        format!("{id}: Ship the thing\nStatus: [in_progress]\nType: task | Priority: P1 | Points: 3\nLabels: a, b\n"),
        "\nDescription:\nSome description\n".to_string(),
        format!("\nCURRENT HANDOFF ({me}, just now):\n  Done:\n    - one\n  Remaining:\n    - two\n"),
        "\nSESSION LOG:\n".to_string(),
        "] Started work\n".to_string(),
        "] first line\n         | second line\n".to_string(),
        "] [decision] Chose X\n".to_string(),
        format!("\nSESSIONS INVOLVED:\n  {me} (implementer)\n"),
    ] {
        assert!(show.contains(&want), "missing {want:?} in:\n{show}");
    }
    // An issue with every optional field empty: only the lines td prints for it.
    let plain = r.ok(&["show", &bare]);
    assert!(
        plain.starts_with(&format!(
            "{bare}: Bare issue\nStatus: [open]\nType: task | Priority: P2\n"
        )),
        "{plain}"
    );
    for absent in [
        "Labels:",
        "Description:",
        "CURRENT HANDOFF",
        "SESSION LOG:",
        "REVIEW / CLOSE:",
    ] {
        assert!(!plain.contains(absent), "{absent} in:\n{plain}");
    }
    // Several ids: blocks separated by `---`.
    let both = r.ok(&["show", &id, &bare]);
    assert_eq!(both.matches("\n---\n").count(), 1, "{both}");
}

#[test]
fn confirmation_lines_are_tds() {
    let r = Replica::init();
    let id = r.create("Confirmed by td's lines", &[]);
    let me = r.json(&["whoami"])["session"].as_str().unwrap().to_string();
    assert_eq!(
        r.ok(&["start", &id]).trim(),
        format!("STARTED {id} (session: {me})")
    );
    assert_eq!(
        r.ok(&["log", &id, "progress here"]).trim(),
        format!("LOGGED {id}")
    );
    assert_eq!(
        r.ok(&["log", &id, "--decision", "chose"]).trim(),
        format!("LOGGED {id} [decision]")
    );
    assert_eq!(
        r.ok(&["handoff", &id, "--done", "it"]).trim(),
        format!("HANDOFF RECORDED {id}\n\nNext: `td review {id}` to submit for review")
    );
    assert_eq!(
        r.ok(&["review", &id]).trim(),
        format!("REVIEW REQUESTED {id} (session: {me})")
    );
    assert_eq!(r.json(&["reject", &id])["action"], "rejected");
    r.ok(&["review", &id]);
    let reviewer = r.json_as("reviewer", &["whoami"])["session"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        r.run_as("reviewer", &["approve", &id]).stdout.trim(),
        format!("APPROVED {id} (reviewer: {reviewer})")
    );
    let other = r.create("Rejected by td's lines", &[]);
    r.ok(&["review", &other]);
    assert_eq!(
        r.run_as("reviewer", &["reject", &other]).stdout.trim(),
        format!("REJECTED {other} → open")
    );
}

#[test]
fn version_and_debug_stats_speak_tds_shapes() {
    let r = Replica::new();
    let v = r.run(&["version"]);
    assert!(v.stdout.starts_with("td version "), "{v:?}");
    // The commit it was built from, when built in a git checkout (empty from an archive).
    let commit = r.json(&["version"])["commit"].as_str().unwrap().to_string();
    let in_git = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .is_ok_and(|o| o.status.success());
    if in_git {
        assert!(
            commit.len() >= 12
                && commit[..12].chars().all(|c| c.is_ascii_hexdigit())
                && v.stdout.contains(&format!("(commit {commit})")),
            "{v:?} {commit}"
        );
    } else {
        assert_eq!(commit, "");
    }
    let short = r.run(&["version", "--short"]);
    assert!(
        !short.stdout.ends_with('\n') && !short.stdout.is_empty(),
        "{short:?}"
    );
    let j = r.json(&["version"]);
    for k in [
        "checked",
        "development",
        "latest_version",
        "update_available",
        "update_command",
        "version",
    ] {
        assert!(j.get(k).is_some(), "{k}: {j}");
    }
    // td's debug-stats: one JSON line with its memory keys, no database needed.
    let d = r.run(&["debug-stats"]);
    assert_eq!(d.code, 0, "{d:?}");
    assert_eq!(d.stdout.lines().count(), 1, "{d:?}");
    let s = d.json();
    assert!(s["alloc_mb"].as_f64().unwrap() > 0.0, "{s}");
    assert!(s["num_goroutine"].as_i64().unwrap() >= 1, "{s}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Free text given to a text flag is stored exactly, whatever it starts with (`-`, `--`,
    /// `=`), whatever it holds (unicode, newlines) and when it is empty.
    #[test]
    fn free_text_flags_round_trip(
        prefix in prop::sample::select(vec!["", "-", "--", "- ", "=", "-x ", "--json ", "—"]),
        body in "[ -~\u{e9}\u{65e5}\u{1f680}\n]{0,24}",
    ) {
        let value = format!("{prefix}{body}");
        let r = Replica::init();
        let id = r.create("Round trip", &["--description", &value, "--acceptance", &value]);
        let shown = r.json(&["show", &id]);
        prop_assert_eq!(shown["description"].as_str().unwrap(), value.as_str());
        prop_assert_eq!(shown["acceptance"].as_str().unwrap(), value.as_str());
        r.json(&["update", &id, "--description", &value, "--sprint", &value]);
        let shown = r.json(&["show", &id]);
        prop_assert_eq!(shown["description"].as_str().unwrap(), value.as_str());
        prop_assert_eq!(shown["sprint"].as_str().unwrap(), value.as_str());
    }
}
