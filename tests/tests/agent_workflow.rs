//! td's agent instructions, run as an agent would: `td usage --new-session -q` at the start of
//! a context, then the workflow the block teaches (start, log, handoff, review, approve).

use td_tests::Replica;

#[test]
fn usage_opens_every_context_as_td_does() {
    let r = Replica::init();
    let work = r.create("Fix the login redirect", &["-p", "P1"]);
    let ready = r.create("Write the release notes", &["-p", "P0"]);
    let blocked = r.create("Deploy after the fix", &["--depends-on", &work]);
    r.json_as("impl", &["start", &work]);
    r.json_as(
        "impl",
        &[
            "handoff",
            &work,
            "--done",
            "found the cause",
            "--remaining",
            "a test",
        ],
    );
    let file = r.root.join("login.rs");
    std::fs::write(&file, "fn redirect() {}").unwrap();
    r.json_as("impl", &["link", &work, file.to_str().unwrap()]);

    // JSON: td's keys, one value on stdout.
    let u = r.json_as("impl", &["usage", "-q"]);
    let keys: Vec<&str> = u.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "focused",
            "in_progress",
            "ready",
            "ready_to_close",
            "reviewable",
            "session",
            "work_session",
            "ws_issues"
        ]
    );
    assert_eq!(u["focused"]["id"], work.as_str());
    assert_eq!(u["in_progress"][0]["id"], work.as_str());
    let ready_ids: Vec<&str> = u["ready"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ready_ids,
        [ready.as_str()],
        "by priority, without the blocked one ({blocked})"
    );

    // Human: td's sections; -q drops the workflow guide, the default shows it.
    let q = r.run_as("impl", &["usage", "-q"]).stdout;
    assert!(q.starts_with("You have access to `td`"), "{q}");
    assert!(
        q.contains(&format!(
            "FOCUSED ISSUE: {work} \"Fix the login redirect\" [in_progress]"
        )),
        "{q}"
    );
    assert!(q.contains("    Done: found the cause"), "{q}");
    assert!(q.contains("    Remaining: a test"), "{q}");
    assert!(q.contains("  Files: login.rs"), "{q}");
    assert!(q.contains("IN PROGRESS (1 issues):"), "{q}");
    assert!(q.contains("READY TO START (1 issues):"), "{q}");
    assert!(!q.contains("WORKFLOW:"), "{q}");
    let full = r.run_as("impl", &["usage"]).stdout;
    assert!(full.contains("WORKFLOW:") && full.contains("td usage --new-session -q"));
    let compact = r.run_as("impl", &["usage", "--compact"]).stdout;
    assert!(!compact.contains("WORKFLOW:"));

    // --new-session: a fresh session, told so, naming the previous one.
    let before = r.json(&["whoami"])["session"].clone();
    let fresh = r.run(&["usage", "--new-session", "-q"]).stdout;
    let after = r.json(&["whoami"])["session"].clone();
    assert_ne!(before, after);
    assert!(
        fresh.contains(&format!("NEW SESSION: {}", after.as_str().unwrap()))
            && fresh.contains(&format!("(previous: {})", before.as_str().unwrap())),
        "{fresh}"
    );
    let again = r.run(&["usage", "-q"]).stdout;
    assert!(
        !again.contains("NEW SESSION"),
        "only the first call is new: {again}"
    );

    // The reviewer sees the submitted work as awaiting review; the implementer attests.
    r.json_as("impl", &["review", &work]);
    let rev = r.json_as("reviewer", &["usage"]);
    assert_eq!(rev["reviewable"][0]["id"], work.as_str());
    let text = r.run_as("reviewer", &["usage", "-q"]).stdout;
    assert!(text.contains("AWAITING YOUR REVIEW (1 issues):"), "{text}");
    r.json_as("reviewer", &["approve", &work, "--reason", "read it"]);
    assert_eq!(
        r.json_as("reviewer", &["usage"])["reviewable"],
        serde_json::json!([])
    );
}

/// The commands td's instructions and habits use that a td user types without thinking.
#[test]
fn the_commands_agents_type_work_as_in_td() {
    let r = Replica::init();
    // create: repeatable -l with td's aliases, --desc, a description from a file.
    let desc = r.root.join("desc.md");
    std::fs::write(&desc, "Line one\n\n- keep formatting\n").unwrap();
    let id = r.create(
        "Handle expired sessions",
        &[
            "-l",
            "auth",
            "--label",
            "backend,api",
            "--tag",
            "p1",
            "--description-file",
            desc.to_str().unwrap(),
        ],
    );
    let shown = r.json(&["show", &id]);
    assert_eq!(
        shown["labels"],
        serde_json::json!(["auth", "backend", "api", "p1"])
    );
    assert_eq!(shown["description"], "Line one\n\n- keep formatting\n");
    let other = r.create("Second", &["--desc", "short text", "--tags", "x"]);
    assert_eq!(r.json(&["show", &other])["description"], "short text");

    // focus / show with no id / unfocus.
    assert_eq!(r.json(&["focus", &id])["id"], id.as_str());
    assert_eq!(r.json(&["show"])["id"], id.as_str());
    assert_eq!(r.json(&["unfocus"])["action"], "unfocused");
    assert_eq!(r.json(&["unfocus"])["action"], "not_focused");
    assert_eq!(r.run(&["show", "--json"]).error_code(), "invalid_input");

    // log: --issue/-i, -T, -t, id after the message, and the message on stdin.
    r.json(&["log", "--issue", &id, "via --issue"]);
    r.json(&["log", "-T", &id, "via -T", "-t", "decision"]);
    r.json(&["log", "message first", &id]);
    let mut piped = r.command(None, &["log", &id, "--json"]);
    piped.stdin(std::process::Stdio::piped());
    piped.stdout(std::process::Stdio::piped());
    let mut child = piped.spawn().unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"from stdin\n")
            .unwrap();
    }
    assert!(child.wait_with_output().unwrap().status.success());
    let logs: Vec<(String, String)> = r.json(&["show", &id])["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["message"].as_str().unwrap().to_string(),
                l["type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (m, t) in [
        ("via --issue", "progress"),
        ("via -T", "decision"),
        ("message first", "progress"),
        ("from stdin", "progress"),
    ] {
        assert!(
            logs.contains(&(m.to_string(), t.to_string())),
            "{m}: {logs:?}"
        );
    }
    assert_eq!(
        r.run(&["log", &id, "--json"]).error_code(),
        "invalid_input",
        "no message"
    );

    // comments: list (and add).
    r.json(&["comment", &id, "first"]);
    r.json(&["comments", "add", &id, "second"]);
    let texts: Vec<String> = r
        .json(&["comments", &id])
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(texts, ["first", "second"]);
    assert!(r.ok(&["comments", &id]).contains("second"));

    // version, also outside a project.
    let v = r.json(&["version"]);
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    let outside = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(td_tests::td_bin())
        .args(["version", "--short"])
        .current_dir(outside.path())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        env!("CARGO_PKG_VERSION")
    );
}

/// td's `--reason`/`-m` family on every transition: the reason lands in the issue's log, in
/// the same write as the transition.
#[test]
fn transition_reasons_are_logged_as_td_logs_them() {
    let r = Replica::init();
    let id = r.create("Rotate the signing keys", &[]);
    r.json(&["start", &id, "--reason", "picking this up"]);
    r.json(&["block", &id, "--reason", "waiting on ops"]);
    r.json(&["unblock", &id, "--reason", "ops answered"]);
    r.json(&["handoff", &id, "--done", "rotated"]);
    r.json(&["review", &id, "-m", "ready for eyes"]);
    r.json_as("reviewer", &["reject", &id, "-c", "needs a test"]);
    r.json(&["start", &id]);
    r.json(&["review", &id, "--comment", "test added"]);
    r.json_as("reviewer", &["approve", &id, "--message", "looks right"]);
    r.json_as("reviewer", &["reopen", &id, "--reason", "regressed"]);
    let other = r.create("Duplicate of the key rotation", &[]);
    r.json(&["close", &other, "--note", "duplicate"]);
    let logs = |id: &str| -> Vec<String> {
        r.json(&["show", id])["logs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["message"].as_str().unwrap().to_string())
            .collect()
    };
    let got = logs(&id);
    for want in [
        "picking this up",
        "Blocked: waiting on ops",
        "Unblocked: ops answered",
        "ready for eyes",
        "Rejected: needs a test",
        "test added",
        "Reopened: regressed",
    ] {
        assert!(got.iter().any(|m| m == want), "{want} in {got:?}");
    }
    assert_eq!(logs(&other), ["Closed: duplicate"]);
    let review = &r.json(&["show", &id])["reviews"];
    assert_eq!(
        review[1]["summary"], "looks right",
        "approve's reason is the review summary"
    );
    // A transition that changes nothing logs nothing.
    r.json(&["reopen", &id, "--reason", "again"]);
    assert!(!logs(&id).iter().any(|m| m.contains("again")));
}

#[test]
fn session_list_and_ws_show() {
    let r = Replica::init();
    r.json_as("alpha", &["whoami"]);
    r.json_as("beta", &["whoami"]);
    let list = r.json_as("beta", &["session", "list"]);
    let rows = list.as_array().unwrap();
    assert!(rows.len() >= 2, "{list}");
    let current: Vec<&serde_json::Value> = rows.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1, "exactly one current session: {list}");
    assert_eq!(
        current[0]["session"],
        r.json_as("beta", &["whoami"])["session"]
    );
    for key in [
        "branch",
        "agent",
        "session",
        "name",
        "last_activity",
        "age_seconds",
    ] {
        assert!(rows[0].get(key).is_some(), "{key} in {}", rows[0]);
    }
    assert!(r
        .run_as("beta", &["session", "list"])
        .stdout
        .contains("SESSION"));

    let a = r.create("Tagged one", &[]);
    let b = r.create("Tagged two", &[]);
    let ws = r.json(&["ws", "start", "Sprint work"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    r.json(&["ws", "tag", &a, &b]);
    r.json(&["handoff", &a, "--done", "x", "--remaining", "the docs"]);
    let shown = r.json(&["ws", "show"]);
    assert_eq!(shown["id"], ws.as_str());
    assert_eq!(shown["issues"], serde_json::json!([a, b]));
    assert_eq!(
        shown["issue_details"][0]["handoff"]["remaining"][0],
        "the docs"
    );
    assert_eq!(r.json(&["ws", "show", &ws])["name"], "Sprint work");
    assert!(r
        .ok(&["ws", "show", "--full"])
        .contains("remaining: the docs"));
    assert_eq!(
        r.run(&["ws", "show", "ws-0000", "--json"]).error_code(),
        "not_found"
    );
}

/// `td completion <shell>` prints a script the shell accepts, listing td's commands; it needs
/// no project.
#[test]
fn completion_scripts_parse_in_their_shell() {
    let outside = tempfile::tempdir().unwrap();
    let run = |shell: &str| {
        let out = std::process::Command::new(td_tests::td_bin())
            .args(["completion", shell])
            .current_dir(outside.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        String::from_utf8(out.stdout).unwrap()
    };
    let bash = run("bash");
    for cmd in ["usage", "critical-path", "blocked-by", "feature", "peer"] {
        assert!(bash.contains(cmd), "{cmd} in the bash script");
    }
    let script = outside.path().join("td.bash");
    std::fs::write(&script, &bash).unwrap();
    let checked = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&checked.stderr)
    );
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        assert!(run(shell).contains("critical-path"), "{shell}");
    }
}

#[test]
fn check_handoff_resume_and_tasks() {
    let r = Replica::init();
    let clean = r.run(&["check-handoff"]);
    assert_eq!(clean.code, 0, "{clean:?}");
    assert!(clean.stdout.contains("No handoff needed"));
    let t = r.json(&["task", "create", "Write the migration", "-p", "P1"]);
    let id = t["id"].as_str().unwrap().to_string();
    assert_eq!(t["issue"]["type"], "task");
    assert_eq!(r.json(&["task", "list"])[0]["id"], id.as_str());
    r.json(&["start", &id]);
    let needed = r.run(&["check-handoff"]);
    assert_eq!(needed.code, 1, "in-progress work needs a handoff");
    assert!(needed.stdout.contains("HANDOFF NEEDED") && needed.stdout.contains(&id));
    assert_eq!(r.run(&["check-handoff", "-q"]).stdout, "");
    let j = r.json(&["check-handoff"]);
    assert_eq!(j["needs_handoff"], true);
    assert_eq!(j["in_progress_issues"], serde_json::json!([id]));
    r.json(&["unfocus"]);
    let resumed = r.run(&["resume", &id]);
    assert_eq!(resumed.code, 0);
    assert!(resumed.stdout.contains(&format!("FOCUSED {id}")));
    assert_eq!(r.json(&["show"])["id"], id.as_str(), "resume focuses");
}

#[test]
fn handoff_takes_a_message_files_and_stdin_as_td_does() {
    let r = Replica::init();
    let id = r.create("Port the importer", &[]);
    r.json(&["start", &id]);
    let file = r.root.join("remaining.txt");
    std::fs::write(&file, "tests for v37\n\nthe docs\n").unwrap();
    let at = format!("@{}", file.display());
    r.json(&[
        "handoff",
        &id,
        "parser done",
        "--remaining",
        &at,
        "-n",
        "a note",
    ]);
    let h = &r.json(&["show", &id])["handoff"];
    assert_eq!(h["done"], serde_json::json!(["a note", "parser done"]));
    assert_eq!(
        h["remaining"],
        serde_json::json!(["tests for v37", "the docs"])
    );
    // A message alone goes to the focused issue.
    r.json(&["handoff", "stopping for today"]);
    assert_eq!(
        r.json(&["show", &id])["handoff"]["done"],
        serde_json::json!(["stopping for today"])
    );
    // `-` reads the list from stdin.
    let mut cmd = r.command(None, &["handoff", &id, "--uncertain", "-", "--json"]);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"is v36 in the wild?\n")
            .unwrap();
    }
    assert!(child.wait_with_output().unwrap().status.success());
    assert_eq!(
        r.json(&["show", &id])["handoff"]["uncertain"],
        serde_json::json!(["is v36 in the wild?"])
    );
    assert_eq!(r.run(&["handoff", "--json"]).error_code(), "invalid_input");
    assert_eq!(
        r.run(&["handoff", &id, "--done", "@/nonexistent/x", "--json"])
            .error_code(),
        "invalid_input"
    );
}

#[test]
fn workflow_describes_the_transitions_the_engine_enforces() {
    let r = Replica::init();
    let v = r.json(&["workflow"]);
    assert_eq!(
        v["statuses"],
        serde_json::json!(["open", "in_progress", "blocked", "in_review", "closed"])
    );
    let names: Vec<(String, String, String)> = v["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["from"].as_str().unwrap().into(),
                t["to"].as_str().unwrap().into(),
                t["name"].as_str().unwrap().into(),
            )
        })
        .collect();
    for want in [
        ("closed", "open", "reopen"),
        ("in_review", "closed", "approve"),
        ("open", "in_progress", "start"),
    ] {
        assert!(
            names.contains(&(want.0.into(), want.1.into(), want.2.into())),
            "{want:?}"
        );
    }
    // Every listed transition is one `td update --status` accepts, and closed → in_progress,
    // which is not listed, is refused.
    assert!(!names
        .iter()
        .any(|(a, b, _)| a == "closed" && b == "in_progress"));
    let id = r.create("Walk the state machine", &[]);
    r.json(&["close", &id]);
    assert_eq!(
        r.run(&["update", &id, "--status", "in_progress", "--json"])
            .error_code(),
        "invalid_input"
    );
    let mermaid = r.ok(&["workflow", "--mermaid"]);
    assert_eq!(mermaid.matches(" --> ").count(), names.len());
    let dot = r.json(&["workflow", "--dot"]);
    assert_eq!(dot["format"], "dot");
    assert_eq!(
        dot["diagram"].as_str().unwrap().matches(" -> ").count(),
        names.len()
    );
}

#[test]
fn update_append_switch_delete_flags_and_note_restore() {
    let r = Replica::init();
    let id = r.create(
        "Document the hub",
        &["-d", "First part.", "--acceptance", "Has a diagram"],
    );
    // td's switch: the text fields given are appended.
    r.json(&[
        "update",
        &id,
        "--append",
        "-d",
        "Second part.",
        "--acceptance",
        "Has an example",
    ]);
    let s = r.json(&["show", &id]);
    assert_eq!(s["description"], "First part.\n\nSecond part.");
    assert_eq!(s["acceptance"], "Has a diagram\n\nHas an example");
    // Our earlier spelling still works: a value is appended to the description.
    r.json(&["update", &id, "--append", "Third part."]);
    assert_eq!(
        r.json(&["show", &id])["description"],
        "First part.\n\nSecond part.\n\nThird part."
    );
    assert_eq!(
        r.run(&["update", &id, "--append", "--json"]).error_code(),
        "invalid_input"
    );
    // delete -f / -y are accepted (nothing is asked) and restore brings it back.
    assert_eq!(r.json(&["delete", &id, "-f"])["action"], "deleted");
    r.json(&["restore", &id]);
    assert_eq!(r.json(&["delete", &id, "--yes"])["action"], "deleted");
    // note restore.
    let n = r.json(&["note", "add", "Runbook", "-c", "steps"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    r.json(&["note", "delete", &n]);
    assert_eq!(
        r.run(&["note", "show", &n, "--json"]).error_code(),
        "not_found"
    );
    assert_eq!(r.json(&["note", "restore", &n])["action"], "restored");
    assert_eq!(r.json(&["note", "show", &n])["title"], "Runbook");
    assert_eq!(r.json(&["note", "restore", &n])["action"], "not_deleted");
}

/// td's commands for its own sync server say what to use here; `sync enable/disable` are
/// td's spellings of autosync (`sync tail` is this replica's own feed: `sync_tail.rs`).
#[test]
fn td_server_commands_name_their_equivalents() {
    let r = Replica::init();
    for (args, names) in [
        (&["auth", "login"][..], "td sync init --hub"),
        (&["sync-project", "link", "x"], "td sync init --hub"),
    ] {
        let out = r.run(args);
        assert_eq!(out.code, 1, "{args:?}");
        assert!(out.stderr.contains(names), "{args:?}: {}", out.stderr);
        let mut a = args.to_vec();
        a.push("--json");
        assert_eq!(r.run(&a).error_code(), "invalid_input");
    }
    assert_eq!(r.json(&["sync", "enable"])["value"], true);
    assert_eq!(r.json(&["config", "get", "sync.auto"])["value"], "true");
    r.json(&["sync", "disable"]);
    assert_eq!(r.json(&["config", "get", "sync.auto"])["value"], "false");
}

#[test]
fn ws_tag_starts_open_issues_and_ws_handoff_can_continue_and_review() {
    let r = Replica::init();
    let a = r.create("Parser", &[]);
    let b = r.create("Printer", &[]);
    r.json(&["ws", "start", "Pairing"]);
    r.json(&["ws", "tag", &a]);
    assert_eq!(
        r.json(&["show", &a])["status"],
        "in_progress",
        "td starts tagged open issues"
    );
    r.json(&["ws", "tag", &b, "--no-start"]);
    assert_eq!(r.json(&["show", &b])["status"], "open");
    let h = r.json(&[
        "ws",
        "handoff",
        "--done",
        "both halves",
        "--continue",
        "--review",
    ]);
    assert_eq!(h["ended"], false);
    assert_eq!(
        r.json(&["show", &a])["status"],
        "in_review",
        "--review submits work in progress"
    );
    assert_eq!(
        r.json(&["show", &b])["status"],
        "open",
        "open work is not submitted"
    );
    assert!(
        r.json(&["ws", "current"]).is_object(),
        "--continue keeps the work session"
    );
    r.json(&["ws", "handoff", "--done", "wrapping up"]);
    assert!(
        r.json(&["ws", "current"]).is_null(),
        "without --continue it ends"
    );
}

/// Sessions as td resolves them: an agent found among the calling processes gets its own
/// session, so two agents in two terminals are two sessions without setting anything, and
/// one agent's commands share one.
#[test]
fn each_agent_process_is_its_own_session() {
    let r = Replica::init();
    let dir = tempfile::tempdir().unwrap();
    let agent = dir.path().join("claude");
    std::fs::copy("/bin/sh", &agent).unwrap();
    let td = td_tests::td_bin();
    let run_agent = || {
        let out = std::process::Command::new(&agent)
            .arg("-c")
            .arg(format!(
                "'{td}' whoami --json; '{td}' whoami --json",
                td = td.display()
            ))
            .current_dir(&r.root)
            .env("XDG_CONFIG_HOME", &r.config)
            .env_remove("TD_SESSION_ID")
            .env_remove("TD_AGENT")
            .env_remove("CURSOR_AGENT")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let sessions: Vec<String> = td_tests::json_values(&String::from_utf8(out.stdout).unwrap())
            .iter()
            .map(|v| v["session"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(sessions.len(), 2);
        assert_eq!(sessions[0], sessions[1], "one agent, one session");
        sessions[0].clone()
    };
    let first = run_agent();
    let second = run_agent();
    assert_ne!(first, second, "two agents, two sessions");
    let listed = r.json(&["session", "list"]);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["agent"].as_str().unwrap().starts_with("claude-code_")),
        "{listed}"
    );
}

/// `td init --agent-file` installs td's versioned guidance block, updates an older block in
/// place and never touches the rest of the file.
#[test]
fn init_installs_the_agent_guidance_block() {
    let r = Replica::new();
    std::fs::write(r.root.join("CLAUDE.md"), "# Project rules\n\nUse tabs.\n").unwrap();
    r.json(&["init", "--agent-file"]);
    let text = std::fs::read_to_string(r.root.join("CLAUDE.md")).unwrap();
    assert!(
        text.starts_with("# Project rules\n\n<!-- td-agent-instructions:start -->"),
        "{text}"
    );
    assert!(text.contains("td usage --new-session -q") && text.contains("--reviewed-by"));
    assert!(text.ends_with("Use tabs.\n"), "the rest is kept: {text}");
    assert!(
        !r.root.join("AGENTS.md").exists(),
        "the existing agent file is used"
    );
    // An older block is replaced in place; the text around it stays.
    let old = text.replace(
        &text[text.find("<!-- td-agent-instructions:start -->").unwrap()
            ..text.find("<!-- td-agent-instructions:end -->").unwrap()],
        "<!-- td-agent-instructions:start -->\n<!-- td-agent-instructions:version=1 -->\nold words\n",
    );
    std::fs::write(r.root.join("CLAUDE.md"), &old).unwrap();
    r.json(&["init", "--agent-file"]);
    let updated = std::fs::read_to_string(r.root.join("CLAUDE.md")).unwrap();
    assert_eq!(updated, text, "updated in place to the current block");
    // Running it again changes nothing.
    r.json(&["init", "--agent-file"]);
    assert_eq!(
        std::fs::read_to_string(r.root.join("CLAUDE.md")).unwrap(),
        text
    );
    // Without an agent file, AGENTS.md is created; --no-agent-file leaves everything alone.
    let fresh = Replica::new();
    fresh.json(&["init", "--no-agent-file"]);
    assert!(!fresh.root.join("AGENTS.md").exists());
    fresh.json(&["init", "--agent-file"]);
    assert!(std::fs::read_to_string(fresh.root.join("AGENTS.md"))
        .unwrap()
        .contains("td-agent-instructions:version=3"));
}

#[test]
fn info_stats_security_errors_and_upgrade() {
    let r = Replica::init();
    let a = r.create("Counted", &[]);
    r.create("Also counted", &[]);
    r.json(&["comment", &a, "hello"]);
    let i = r.json(&["info"]);
    assert_eq!(i["issues"], 2);
    assert_eq!(i["issues_by_status"]["open"], 2);
    assert_eq!(i["records"]["comments"], 1);
    assert_eq!(r.json(&["stats"]), i, "stats is info");
    assert_eq!(r.json(&["security"]), serde_json::json!([]));
    // A self-review and a self-close exception are security events.
    r.json(&["start", &a]);
    r.json(&["handoff", &a, "--done", "x"]);
    r.json(&["review", &a]);
    r.json(&["approve", &a, "--self-review", "--reason", "solo project"]);
    let b = r.create("Mine to close", &[]);
    r.json(&["start", &b]);
    r.json(&["close", &b, "--self-close-exception", "typo only"]);
    let ev = r.json(&["security"]);
    let kinds: Vec<&str> = ev
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"self_review") && kinds.contains(&"self_close_exception"),
        "{ev}"
    );
    assert_eq!(r.json(&["stats", "security"]), ev);
    assert_eq!(r.json(&["errors"]), serde_json::json!([]));
    // A database this td made is current: td upgrade says so (td's lines) and exits 0.
    let up = r.run(&["upgrade"]);
    assert_eq!(up.code, 0, "{}", up.stderr);
    assert!(
        up.stdout.contains("Database is up to date."),
        "{}",
        up.stdout
    );
}

#[test]
fn session_names_and_cleanup() {
    let r = Replica::init();
    let named = r.json(&["session", "pairing-with-alice"]);
    assert_eq!(named["name"], "pairing-with-alice");
    assert_eq!(r.json(&["whoami"])["name"], "pairing-with-alice");
    r.json_as("old-agent", &["whoami"]);
    // Make the other session idle for two weeks.
    let conn = rusqlite::Connection::open(r.db()).unwrap();
    conn.execute(
        "UPDATE sessions SET last_activity = '2020-01-01 00:00:00.000000+00:00', started_at = '2020-01-01 00:00:00.000000+00:00' WHERE name = 'old-agent'",
        [],
    )
    .unwrap();
    let preview = r.json(&["session", "cleanup", "--older-than", "7d"]);
    assert_eq!(preview["action"], "would_remove");
    assert_eq!(preview["sessions"].as_array().unwrap().len(), 1);
    let before = r.json(&["session", "list"]).as_array().unwrap().len();
    r.json(&["session", "cleanup", "--force"]);
    let after = r.json(&["session", "list"]).as_array().unwrap().len();
    assert_eq!(after, before - 1);
    assert_eq!(
        r.json(&["whoami"])["name"],
        "pairing-with-alice",
        "this session stays"
    );
}

#[test]
fn approve_all_and_tree_depth() {
    let r = Replica::init();
    let epic = r.json(&["epic", "create", "Release"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut ids = Vec::new();
    for t in ["First piece", "Second piece"] {
        let id = r.create(t, &["--parent", &epic]);
        r.json_as("impl", &["start", &id]);
        r.json_as("impl", &["handoff", &id, "--done", "x"]);
        r.json_as("impl", &["review", &id]);
        ids.push(id);
    }
    let grandchild = r.create("A sub-piece", &["--parent", &ids[0]]);
    // The implementer's own work is skipped (trusted mode wants an attestation)...
    let own = r.json_as("impl", &["approve", "--all"]);
    assert!(
        own.as_array()
            .unwrap()
            .iter()
            .all(|x| x["action"] == "skipped"),
        "{own}"
    );
    // ...an independent reviewer approves both.
    let done = r.json_as("reviewer", &["approve", "--all", "-m", "reviewed"]);
    assert_eq!(done.as_array().unwrap().len(), 2, "{done}");
    assert!(done
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["status"] == "closed"));
    let full = r.json(&["tree", &epic]);
    assert_eq!(
        full["children"][0]["children"][0]["id"],
        grandchild.as_str()
    );
    let one = r.json(&["tree", &epic, "--depth", "1"]);
    assert_eq!(one["children"].as_array().unwrap().len(), 2);
    assert!(one["children"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["children"] == serde_json::json!([])));
}

#[test]
fn show_and_note_list_take_tds_flags() {
    let r = Replica::init();
    let epic = r.json(&["epic", "create", "Platform"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let child = r.create(
        "Child work",
        &["--parent", &epic, "-d", "Some **markdown**"],
    );
    let short = r.ok(&["show", &epic, "--short"]);
    assert_eq!(short.lines().count(), 1, "{short}");
    let kids = r.ok(&["show", &epic, "--children"]);
    assert!(
        kids.contains("CHILDREN:") && kids.contains(&child),
        "{kids}"
    );
    let as_json = r.ok(&["show", &epic, "-f", "json"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&as_json).unwrap()["id"],
        epic.as_str()
    );
    assert!(r.ok(&["show", &epic, "--tree"]).contains(&child));
    assert!(r.ok(&["show", &child, "-m"]).contains("Some **markdown**"));
    // note list: -s, -n, -o json, --deleted, and the ls alias.
    for (t, c) in [
        ("Runbook", "restart the hub"),
        ("Release plan", "ship Friday"),
        ("Old idea", "x"),
    ] {
        r.json(&["note", "add", t, "-c", c]);
    }
    let found = r.json(&["note", "list", "-s", "HUB"]);
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["title"], "Runbook");
    assert_eq!(
        r.json(&["note", "ls", "-n", "2"]).as_array().unwrap().len(),
        2
    );
    let o = r.ok(&["note", "list", "-o", "json"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&o)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let old = found[0]["id"].as_str().unwrap().to_string();
    r.json(&["note", "delete", &old]);
    let deleted = r.json(&["note", "list", "--deleted"]);
    assert_eq!(deleted.as_array().unwrap().len(), 1);
    assert_eq!(deleted[0]["id"], old.as_str());
    assert_eq!(r.json(&["note", "list"]).as_array().unwrap().len(), 2);
}

#[test]
fn review_minor_marks_the_issue_minor_and_needs_no_handoff() {
    let r = Replica::init();
    let id = r.create("Fix a typo", &[]);
    r.json(&["start", &id]);
    let v = r.json(&["review", &id, "--minor"]);
    assert_eq!(v["status"], "in_review");
    assert_eq!(v["issue"]["minor"], true);
    // Minor: the implementer approves its own work.
    assert_eq!(r.json(&["approve", &id])["status"], "closed");
}

/// A file given for a text field is read bounded: one larger than a text may hold is refused
/// with the limit, and nothing is written.
#[test]
fn oversized_text_files_are_refused_before_reading_them_whole() {
    let r = Replica::init();
    let big = r.root.join("big.md");
    std::fs::write(&big, vec![b'x'; 2 * 1024 * 1024]).unwrap();
    let before = r.export();
    let out = r.run(&[
        "create",
        "Too big",
        "--description-file",
        big.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.error_code(), "invalid_input");
    assert!(out.stdout.contains("KiB"), "{}", out.stdout);
    let id = r.create("Small", &[]);
    let at = format!("@{}", big.display());
    assert_eq!(
        r.run(&["handoff", &id, "--done", &at, "--json"])
            .error_code(),
        "invalid_input"
    );
    assert_ne!(r.export(), before, "the small issue was written");
    assert!(
        r.json(&["show", &id])["handoff"].is_null(),
        "nothing of the refused handoff"
    );
}
