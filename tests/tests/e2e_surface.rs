//! End-to-end runs of td's everyday surface beyond issues: boards, notes, file links, search,
//! query and tree, in human and `--json` modes, their errors, and their sync over `td peer`.

use serde_json::Value;
use td_tests::Replica;

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array: {v}"))
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn boards_create_show_move_unposition_edit_delete() {
    let r = Replica::init();
    let a = r.create("Wire the QUIC listener", &["-l", "sync,net", "-p", "P1"]);
    let b = r.create("Batch hub pushes", &["-l", "sync"]);
    let c = r.create("Polish the board view", &["-l", "ui"]);

    let created = r.json(&["board", "create", "Sync work", "-q", "labels ~ sync"]);
    assert_eq!(created["action"], "created");
    let bid = created["id"].as_str().unwrap().to_string();
    assert!(bid.starts_with("bd-") && bid.len() == 11, "{bid}");
    assert!(r
        .ok(&["board", "create", "Everything"])
        .starts_with("CREATED board bd-"));
    // Same name, any case: refused here, and a bad query is refused before anything is written.
    assert_eq!(
        r.run(&["board", "create", "SYNC WORK", "--json"])
            .error_code(),
        "invalid_input"
    );
    assert_eq!(
        r.run(&["board", "create", "Broken", "-q", "colour = red", "--json"])
            .error_code(),
        "invalid_input"
    );
    let names: Vec<Value> = r
        .json(&["board", "list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].clone())
        .collect();
    assert_eq!(names, ["All Issues", "Everything", "Sync work"]);

    // The query chooses the issues; unpositioned ones follow by priority.
    let show = r.json(&["board", "show", "sync work"]);
    assert_eq!(ids(&show["issues"]), [a.as_str(), b.as_str()]);
    assert!(show["issues"][0]["position"].is_null());

    // Manual order: b to the top, then a above it; td's sparse positions.
    let m = r.json(&["board", "move", &bid, &b, "1"]);
    assert_eq!(
        (m["action"].clone(), m["stored_position"].clone()),
        ("moved".into(), 65536.into())
    );
    let m = r.json(&["board", "move", &bid, &a, "1"]);
    assert_eq!(m["stored_position"], 32768);
    let show = r.json(&["board", "show", &bid]);
    assert_eq!(ids(&show["issues"]), [a.as_str(), b.as_str()]);
    let human = r.ok(&["board", "show", &bid]);
    assert!(
        human.lines().nth(1).unwrap().starts_with(&format!("* {a}")),
        "{human}"
    );
    // The position row has td's deterministic id.
    let conn = rusqlite::Connection::open(r.db()).unwrap();
    let pos: i64 = conn
        .query_row(
            "SELECT position FROM board_issue_positions WHERE id = ?1",
            [td_engine::model::link_id("bip_", &format!("{bid}|{b}"))],
            |x| x.get(0),
        )
        .unwrap();
    assert_eq!(pos, 65536);

    // Unposition: b falls back after the positioned a; a repeat is reported, not an error.
    assert_eq!(
        r.json(&["board", "unposition", &bid, &b])["action"],
        "unpositioned"
    );
    assert_eq!(
        r.json(&["board", "unposition", &bid, &b])["action"],
        "not_positioned"
    );
    let show = r.json(&["board", "show", &bid]);
    assert_eq!(show["issues"][1]["position"], Value::Null);

    // Edit the query: now the ui issue shows and the sync ones do not.
    let e = r.json(&["board", "edit", &bid, "-q", "labels = ui", "-n", "UI work"]);
    assert_eq!(e["action"], "updated");
    assert_eq!(e["board"]["name"], "UI work");
    assert_eq!(
        ids(&r.json(&["board", "show", "UI work"])["issues"]),
        [c.as_str()]
    );
    assert_eq!(
        r.json(&["board", "edit", &bid, "-n", "UI work"])["action"],
        "unchanged"
    );
    assert_eq!(
        r.run(&["board", "edit", &bid, "--view-mode", "grid", "--json"])
            .error_code(),
        "invalid_input"
    );

    // Errors: unknown board, unknown issue, bad position, the builtin board.
    assert_eq!(
        r.run(&["board", "show", "nope", "--json"]).error_code(),
        "not_found"
    );
    assert_eq!(
        r.run(&["board", "move", &bid, "td-000000", "1", "--json"])
            .error_code(),
        "not_found"
    );
    assert_eq!(
        r.run(&["board", "move", &bid, &a, "0", "--json"])
            .error_code(),
        "invalid_input"
    );
    assert_eq!(
        r.run(&["board", "delete", "bd-all-issues", "--json"])
            .error_code(),
        "invalid_input"
    );

    // A board whose stored query this td cannot evaluate (e.g. migrated from td with syntax we
    // do not support) is a clear error that says how to fix it.
    rusqlite::Connection::open(r.db())
        .unwrap()
        .execute(
            "INSERT INTO boards(id, name, query) VALUES ('bd-0ddba11e', 'Legacy', 'is:open sort:priority')",
            [],
        )
        .unwrap();
    let legacy = r.run(&["board", "show", "Legacy", "--json"]);
    assert_eq!(legacy.error_code(), "invalid_input");
    assert!(
        legacy.stdout.contains("td board edit bd-0ddba11e -q"),
        "{}",
        legacy.stdout
    );
    rusqlite::Connection::open(r.db())
        .unwrap()
        .execute("DELETE FROM boards WHERE id = 'bd-0ddba11e'", [])
        .unwrap();

    // Delete: the board and its positions go; the issues stay.
    assert_eq!(r.json(&["board", "delete", &bid])["action"], "deleted");
    assert_eq!(
        r.run(&["board", "show", &bid, "--json"]).error_code(),
        "not_found"
    );
    let left: i64 = conn
        .query_row(
            "SELECT count(*) FROM board_issue_positions WHERE board_id = ?1",
            [&bid],
            |x| x.get(0),
        )
        .unwrap();
    assert_eq!(left, 0);
    assert_eq!(r.json(&["show", &a])["id"], a.as_str());
    // Rebuilding from the log gives the same tables (the delete is in the log, not just SQL).
    let before = r.export();
    r.ok(&["rebuild"]);
    assert_eq!(r.export(), before);
}

#[test]
fn notes_add_edit_pin_archive_delete() {
    let r = Replica::init();
    let n = r.json(&[
        "note",
        "add",
        "Release plan",
        "-c",
        "Ship on Friday, 周五 🚀",
    ]);
    assert_eq!(n["action"], "created");
    let id = n["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("nt-") && id.len() == 9, "{id}");
    let other = r.json(&["note", "add", "Meeting notes"])["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Bare hex works like the full id.
    let shown = r.json(&["note", "show", &id[3..]]);
    assert_eq!(shown["content"], "Ship on Friday, 周五 🚀");
    assert!(r.ok(&["note", "show", &id]).contains("Ship on Friday"));

    let e = r.json(&[
        "note",
        "edit",
        &id,
        "-c",
        "Ship on Monday",
        "--title",
        "Release",
    ]);
    assert_eq!(
        (e["action"].clone(), e["note"]["title"].clone()),
        ("updated".into(), "Release".into())
    );
    assert_eq!(
        r.json(&["note", "edit", &id, "--title", "Release"])["action"],
        "unchanged"
    );
    assert_eq!(
        r.run(&["note", "edit", &id, "--json"]).error_code(),
        "invalid_input"
    );

    // Pinned notes list first; pin again is idempotent.
    assert_eq!(r.json(&["note", "pin", &other])["action"], "pinned");
    assert_eq!(r.json(&["note", "pin", &other])["action"], "already_pinned");
    assert_eq!(
        ids(&r.json(&["note", "list"])),
        [other.as_str(), id.as_str()]
    );
    assert_eq!(
        ids(&r.json(&["note", "list", "--pinned"])),
        [other.as_str()]
    );
    assert_eq!(r.json(&["note", "unpin", &other])["action"], "unpinned");

    // Archived notes hide unless asked for.
    assert_eq!(r.json(&["note", "archive", &id])["action"], "archived");
    assert_eq!(ids(&r.json(&["note", "list"])), [other.as_str()]);
    assert_eq!(ids(&r.json(&["note", "list", "--archived"])), [id.as_str()]);
    assert_eq!(
        r.json(&["note", "list", "--all"]).as_array().unwrap().len(),
        2
    );
    assert!(r.ok(&["note", "list", "--all"]).contains("(archived)"));
    assert_eq!(r.json(&["note", "unarchive", &id])["action"], "unarchived");

    // Soft delete: the row stays with deleted_at; show and list no longer offer it.
    assert_eq!(r.json(&["note", "delete", &id])["action"], "deleted");
    assert_eq!(
        r.json(&["note", "delete", &id])["action"],
        "already_deleted"
    );
    assert_eq!(
        r.run(&["note", "show", &id, "--json"]).error_code(),
        "not_found"
    );
    assert_eq!(
        r.run(&["note", "pin", "nt-000000", "--json"]).error_code(),
        "not_found"
    );
    assert_eq!(
        r.run(&["note", "add", "  ", "--json"]).error_code(),
        "invalid_input"
    );
    let conn = rusqlite::Connection::open(r.db()).unwrap();
    let deleted: Option<String> = conn
        .query_row("SELECT deleted_at FROM notes WHERE id = ?1", [&id], |x| {
            x.get(0)
        })
        .unwrap();
    assert!(deleted.is_some());
    assert_eq!(r.ok(&["note", "list", "--archived"]).trim(), "No notes.");
}

#[test]
fn link_unlink_files_use_repo_relative_paths() {
    let r = Replica::init();
    let a = r.create("Refactor the parser", &[]);
    std::fs::create_dir_all(r.root.join("src/parse")).unwrap();
    std::fs::write(r.root.join("src/parse/lexer.rs"), "fn lex() {}\n").unwrap();
    std::fs::write(r.root.join("README.md"), "# readme\n").unwrap();

    // Paths are taken relative to the current directory and stored relative to the root.
    let out = r
        .command(
            None,
            &[
                "link",
                &a,
                "parse/lexer.rs",
                "../README.md",
                "--role",
                "test",
                "--json",
            ],
        )
        .current_dir(r.root.join("src"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["action"], "linked");
    let files = r.json(&["files", &a]);
    let paths: Vec<&str> = files
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file_path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["README.md", "src/parse/lexer.rs"]);
    assert_eq!(
        files[1]["id"],
        td_engine::model::link_id("ifl_", &format!("{a}|src/parse/lexer.rs")).as_str()
    );
    assert_eq!(files[1]["role"], "test");
    assert!(r.ok(&["files", &a]).contains("src/parse/lexer.rs"));

    // Re-linking with the same role changes nothing; a new role updates the row in place.
    let lexer = r.root.join("src/parse/lexer.rs");
    let lexer = lexer.to_str().unwrap();
    assert_eq!(
        r.json(&["link", &a, lexer, "--role", "test"])["action"],
        "unchanged"
    );
    assert_eq!(
        r.json(&["link", &a, lexer])["files"][0]["role"],
        "implementation"
    );
    assert_eq!(r.json(&["files", &a]).as_array().unwrap().len(), 2);

    // Errors: outside the root, missing file, bad role, unknown issue.
    assert_eq!(
        r.run(&["link", &a, "/etc/hostname", "--json"]).error_code(),
        "invalid_input"
    );
    assert_eq!(
        r.run(&["link", &a, "nope.rs", "--json"]).error_code(),
        "invalid_input"
    );
    assert_eq!(
        r.run(&["link", &a, lexer, "--role", "poem", "--json"])
            .error_code(),
        "invalid_input"
    );
    assert_eq!(
        r.run(&["files", "td-000000", "--json"]).error_code(),
        "not_found"
    );

    // Unlink works even when the file is gone.
    std::fs::remove_file(r.root.join("README.md")).unwrap();
    let u = r.json(&["unlink", &a, r.root.join("README.md").to_str().unwrap()]);
    assert_eq!(u["files"], serde_json::json!(["README.md"]));
    assert_eq!(
        r.json(&["unlink", &a, r.root.join("README.md").to_str().unwrap()])["action"],
        "unchanged"
    );
    assert_eq!(r.json(&["files", &a]).as_array().unwrap().len(), 1);
}

#[test]
fn search_query_and_tree() {
    let r = Replica::init();
    let epic = r.create("Offline sync epic", &["-t", "epic"]);
    let a = r.create(
        "Wire the QUIC listener",
        &["--parent", &epic, "-l", "sync,net", "-p", "P1"],
    );
    let b = r.create(
        "Batch hub pushes",
        &[
            "--parent",
            &a,
            "-l",
            "sync",
            "-d",
            "Use 'quotes'; DROP TABLE issues;--",
        ],
    );
    let c = r.create(
        "Polish the board view",
        &["-l", "ui", "-t", "bug", "-p", "P0"],
    );
    r.json(&["log", &c, "tried a Quinn-based prototype"]);
    r.json(&["comment", &a, "right-to-left check: مرحبا"]);
    r.json(&["close", &c]);

    // Search: titles, descriptions, logs and comments, closed issues included.
    let s = r.json(&["search", "quinn"]);
    assert_eq!(ids(&s), [c.as_str()]);
    assert_eq!(s[0]["matched_in"], serde_json::json!(["log"]));
    assert_eq!(ids(&r.json(&["search", "DROP TABLE"])), [b.as_str()]);
    assert_eq!(ids(&r.json(&["search", "مرحبا"])), [a.as_str()]);
    // td's relevance: the title match first, then the label matches.
    let s = r.json(&["search", "SYNC"]);
    assert_eq!(ids(&s)[0], epic.as_str());
    assert_eq!(s[1]["match_field"], "labels");
    assert_eq!(ids(&r.json(&["search", "SYNC", "-l", "net"])), [a.as_str()]);
    assert_eq!(
        ids(&r.json(&["search", "SYNC", "-n", "1"])),
        [epic.as_str()]
    );
    assert!(r
        .ok(&["search", "SYNC", "--show-score"])
        .contains("[score:20 labels]"));
    // Case folding is Unicode-aware, not ASCII only.
    let u = r.create("Über-Fehler im Ölmodul", &[]);
    assert_eq!(ids(&r.json(&["search", "über-fehler"])), [u.as_str()]);
    assert_eq!(ids(&r.json(&["search", "ÖLMODUL"])), [u.as_str()]);
    r.json(&["delete", &u]);
    assert!(r.ok(&["search", "quinn"]).contains("(in log)"));
    assert!(r
        .ok(&["search", "zzz-nothing"])
        .starts_with("No issues matching 'zzz-nothing'"));
    assert_eq!(
        r.run(&["search", " ", "--json"]).error_code(),
        "invalid_input"
    );

    // Query: comparisons, and/or/not, parentheses, priority order.
    assert_eq!(
        ids(&r.json(&["query", "labels ~ sync and priority <= P1"])),
        [a.as_str()]
    );
    assert_eq!(
        ids(&r.json(&["query", "status = closed or (type = epic)"])),
        [c.as_str(), epic.as_str()]
    );
    assert_eq!(
        ids(&r.json(&["query", "not labels ~ sync and type != epic"])),
        [c.as_str()]
    );
    assert_eq!(
        ids(&r.json(&["query", &format!("parent = {a}")])),
        [b.as_str()]
    );
    assert_eq!(
        r.json(&["query", "title ~ 'no such words'"]),
        serde_json::json!([])
    );
    for bad in [
        "status = nope",
        "colour = red",
        "(type = bug",
        "priority <=",
    ] {
        assert_eq!(
            r.run(&["query", bad, "--json"]).error_code(),
            "invalid_input",
            "{bad}"
        );
    }

    // Tree: nested children, indented in human mode.
    let t = r.json(&["tree", &epic]);
    assert_eq!(t["id"], epic.as_str());
    assert_eq!(t["children"][0]["id"], a.as_str());
    assert_eq!(t["children"][0]["children"][0]["id"], b.as_str());
    let human = r.ok(&["tree", &epic]);
    let lines: Vec<&str> = human.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[2].starts_with(&format!("    {b}")), "{human}");
    assert_eq!(
        r.run(&["tree", "td-000000", "--json"]).error_code(),
        "not_found"
    );
}

/// Boards, notes and links travel through `td peer sync` like every other change, and td's
/// sync behaviours hold for them: the same file linked on two machines is one row (7), boards
/// of the same name created on two machines both survive (8).
#[test]
fn boards_notes_and_links_sync_between_replicas() {
    let a = Replica::init();
    let b = Replica::init();
    let issue = a.create("Shared parser work", &["-l", "sync"]);
    let sa = a.serve();
    a.befriend(&b, "a", &sa.addr);
    b.json(&["peer", "sync", "a"]);

    for r in [&a, &b] {
        std::fs::create_dir_all(r.root.join("src")).unwrap();
        std::fs::write(r.root.join("src/lib.rs"), "pub fn parse() {}\n").unwrap();
        r.json(&["link", &issue, r.root.join("src/lib.rs").to_str().unwrap()]);
        r.json(&["board", "create", "Sprint", "-q", "labels ~ sync"]);
        r.json(&["update", &issue, "-l", "sync,parser"]); // the same tag on both machines
        r.json(&["ws", "start", "pairing"]);
        r.json(&["ws", "tag", &issue]);
    }
    let board_a = a.json(&["board", "list"])[1]["id"]
        .as_str()
        .unwrap()
        .to_string();
    a.json(&["board", "move", &board_a, &issue, "1"]);
    let note = a.json(&[
        "note",
        "add",
        "Parser decisions",
        "-c",
        "Use a Pratt parser",
    ])["id"]
        .as_str()
        .unwrap()
        .to_string();
    b.json(&["peer", "sync", "a"]);

    assert_eq!(a.export(), b.export(), "replicas diverged");
    assert_eq!(
        b.json(&["show", &issue])["labels"],
        serde_json::json!(["sync", "parser"]),
        "one tag, not two"
    );
    let files = b.json(&["files", &issue]);
    assert_eq!(
        files.as_array().unwrap().len(),
        1,
        "one row for the same link: {files}"
    );
    let boards = b.json(&["board", "list"]);
    let sprints: Vec<&Value> = boards
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["name"] == "Sprint")
        .collect();
    assert_eq!(sprints.len(), 2, "both boards survive: {boards}");
    // The shared name is ambiguous on b now; the error names both ids.
    let amb = b.run(&["board", "show", "sprint", "--json"]);
    assert_eq!(amb.error_code(), "invalid_input");
    assert!(amb.stdout.contains(&board_a), "{}", amb.stdout);
    assert_eq!(
        b.json(&["board", "show", &board_a])["issues"][0]["position"],
        65536
    );
    assert_eq!(
        b.json(&["note", "show", &note])["content"],
        "Use a Pratt parser"
    );

    // Edits and deletes propagate back.
    b.json(&[
        "note",
        "edit",
        &note,
        "-c",
        "Use a Pratt parser; precedence table in src/",
    ]);
    b.json(&["board", "delete", &board_a]);
    b.json(&[
        "unlink",
        &issue,
        b.root.join("src/lib.rs").to_str().unwrap(),
    ]);
    b.json(&["peer", "sync", "a"]);
    assert_eq!(a.export(), b.export(), "replicas diverged after edits");
    assert_eq!(
        a.run(&["board", "show", &board_a, "--json"]).error_code(),
        "not_found"
    );
    assert_eq!(a.json(&["files", &issue]), serde_json::json!([]));
    assert!(a.json(&["note", "show", &note])["content"]
        .as_str()
        .unwrap()
        .contains("precedence"));
    drop(sa);
}

/// Every command of this surface in human mode: exit 0, a result line on stdout that names
/// what happened, nothing on stderr.
#[test]
fn every_surface_command_speaks_human() {
    let r = Replica::init();
    let a = r.create("Human mode check", &["-l", "sync"]);
    std::fs::write(r.root.join("main.rs"), "fn main() {}\n").unwrap();
    let file = r.root.join("main.rs");
    let file = file.to_str().unwrap();
    let board = r.json(&["board", "create", "Human board"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let note = r.json(&["note", "add", "Human note"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["board", "create", "Second board", "-q", "status = open"],
            "CREATED board bd-",
        ),
        (vec!["board", "list"], "bd-all-issues  All Issues"),
        (vec!["board", "show", &board], &board),
        (vec!["board", "move", &board, &a, "1"], "MOVED"),
        (vec!["board", "unposition", &board, &a], "UNPOSITIONED"),
        (
            vec!["board", "edit", &board, "-n", "Renamed board"],
            "UPDATED board",
        ),
        (vec!["board", "delete", &board], "DELETED board"),
        (vec!["note", "list"], &note),
        (vec!["note", "show", &note], "Human note"),
        (vec!["note", "edit", &note, "-c", "more"], "UPDATED note"),
        (vec!["note", "pin", &note], "PINNED"),
        (vec!["note", "unpin", &note], "UNPINNED"),
        (vec!["note", "archive", &note], "ARCHIVED"),
        (vec!["note", "unarchive", &note], "UNARCHIVED"),
        (vec!["note", "delete", &note], "DELETED"),
        (vec!["link", &a, file], "LINKED 1 file(s)"),
        (vec!["files", &a], "main.rs"),
        (vec!["unlink", &a, file], "UNLINKED main.rs"),
        (vec!["search", "human"], &a),
        (vec!["query", "labels = sync"], &a),
        (vec!["tree", &a], &a),
    ];
    for (args, want) in cases {
        let out = r.run(&args);
        assert_eq!(out.code, 0, "td {args:?}: {out:?}");
        assert!(
            out.stdout.contains(want),
            "td {args:?}: wanted {want:?} in {}",
            out.stdout
        );
        assert!(
            out.stderr.is_empty(),
            "td {args:?} wrote to stderr: {}",
            out.stderr
        );
    }
    // --help teaches the query language.
    let help = r.ok(&["query", "--help"]);
    assert!(
        help.contains("Examples:") && help.contains("priority <= P1"),
        "{help}"
    );
}
