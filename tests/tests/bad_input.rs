//! Bad input gets a clear error, exit 1, one JSON envelope in `--json` mode, and writes nothing.

use td_tests::Replica;

fn file_bytes(p: &std::path::Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

#[test]
fn unknown_ids_generic_and_long_titles_and_bad_values() {
    let r = Replica::init();
    let id = r.create("A perfectly specific title", &[]);
    let before = r.export();
    let long = "x".repeat(201);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["show", "td-nope00"], "not_found"),
        (vec!["start", "nope00"], "not_found"),
        (vec!["update", "td-nope00", "-p", "P1"], "not_found"),
        (vec!["create", "task"], "invalid_input"),
        (vec!["create", "Fix"], "invalid_input"),
        (vec!["create", &long], "invalid_input"),
        (vec!["create"], "invalid_input"),
        (
            vec!["create", "Valid title here", "-p", "P9"],
            "invalid_input",
        ),
        (
            vec!["create", "Valid title here", "-t", "saga"],
            "invalid_input",
        ),
        (
            vec!["create", "Valid title here", "--points", "4"],
            "invalid_input",
        ),
        (
            vec!["create", "Valid title here", "--points", "abc"],
            "invalid_input",
        ),
        (
            vec!["create", "Valid title here", "--due", "someday"],
            "invalid_input",
        ),
        (
            vec!["create", "Valid title here", "--parent", "td-nope00"],
            "not_found",
        ),
        (vec!["update", &id, "--status", "sideways"], "invalid_input"),
        (vec!["update", &id, "--title", "todo"], "invalid_input"),
        (vec!["list", "--bogus-flag"], "invalid_input"),
        (vec!["log", &id, "x", "--type", "rant"], "invalid_input"),
        (vec!["handoff", &id], "invalid_input"),
        (vec!["approve", &id], "invalid_input"),
        (vec!["reject", &id], "invalid_input"),
        (vec!["frobnicate"], "invalid_input"),
        // A duration without a unit (it would be minutes).
        (vec!["member", "invite", "--expires", "3"], "invalid_input"),
    ];
    for (args, code) in cases {
        let mut a = args.clone();
        a.push("--json");
        let run = r.run(&a);
        assert_eq!(run.error_code(), code, "td {args:?}: {run:?}");
        let human = r.run(&args);
        assert_eq!(human.code, 1, "td {args:?}");
        assert!(
            !human.stderr.trim().is_empty(),
            "td {args:?} must explain itself on stderr"
        );
        assert!(!human.stderr.contains("panicked"), "{}", human.stderr);
    }
    assert_eq!(r.export(), before, "nothing was written by failed commands");
    let unit = r.run(&["member", "invite", "--expires", "3"]);
    assert!(unit.stderr.contains("give a unit, e.g. 3d"), "{unit:?}");
}

#[test]
fn invalid_transitions_write_nothing() {
    let r = Replica::init();
    let id = r.create("Transition rules hold", &[]);
    r.json(&["close", &id]);
    let before = r.export();
    for args in [
        vec!["start", id.as_str()],
        vec!["review", id.as_str()],
        vec!["unblock", id.as_str()],
        vec!["unstart", id.as_str()],
        vec!["update", id.as_str(), "-s", "in_review"],
    ] {
        let mut a = args.clone();
        a.push("--json");
        assert_eq!(r.run(&a).error_code(), "invalid_input", "{args:?}");
    }
    assert_eq!(r.export(), before);
}

#[test]
fn corrupted_database_is_refused_and_left_alone() {
    let r = Replica::init();
    r.create("Soon to be corrupted", &[]);
    // Overwrite the header: no longer a SQLite file.
    let mut bytes = file_bytes(&r.db());
    for b in bytes.iter_mut().take(100) {
        *b = 0x5a;
    }
    std::fs::write(r.db(), &bytes).unwrap();
    for args in [
        vec!["list"],
        vec!["create", "Another specific title"],
        vec!["export"],
    ] {
        let mut a = args.clone();
        a.push("--json");
        let run = r.run(&a);
        assert_eq!(run.error_code(), "database_error", "{args:?}");
        assert!(
            run.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains("issues.db"),
            "names the file"
        );
        let human = r.run(&args);
        assert!(human.stderr.starts_with("ERROR: "), "{}", human.stderr);
    }
    assert_eq!(
        file_bytes(&r.db()),
        bytes,
        "the corrupted file is not modified"
    );
}

#[test]
fn not_a_td_database_is_refused() {
    let r = Replica::new();
    std::fs::create_dir_all(r.root.join(".todos")).unwrap();
    let conn = rusqlite::Connection::open(r.db()).unwrap();
    conn.execute_batch("CREATE TABLE unrelated(x); INSERT INTO unrelated VALUES (1);")
        .unwrap();
    drop(conn);
    let before = file_bytes(&r.db());
    let run = r.run(&["list", "--json"]);
    assert_eq!(run.error_code(), "database_error");
    assert!(run.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not a td database"));
    assert_eq!(file_bytes(&r.db()), before);
}

#[test]
fn missing_malformed_or_unreadable_key_file() {
    let r = Replica::init();
    r.create("Signed by the first key", &[]);
    let before = r.export();
    let key = r.config.join("td/machine.key");
    let saved = std::fs::read(&key).unwrap();

    std::fs::write(&key, "not hex").unwrap();
    let run = r.run(&["create", "Another specific title", "--json"]);
    assert_eq!(run.code, 1);
    assert!(
        run.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("malformed"),
        "{run:?}"
    );

    std::fs::remove_file(&key).unwrap();
    let run = r.run(&["create", "Another specific title"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("machine key") && run.stderr.contains("missing"),
        "{}",
        run.stderr
    );
    assert!(!key.exists(), "a lost key is not silently replaced");

    std::fs::create_dir(&key).unwrap(); // exists but cannot be read as a file
    let run = r.run(&["list", "--json"]);
    assert_eq!(run.code, 1);
    assert!(run.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("cannot read machine key"));
    std::fs::remove_dir(&key).unwrap();

    std::fs::write(&key, saved).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    assert_eq!(
        r.export(),
        before,
        "nothing was written while the key was unusable"
    );
}

/// Closed option sets are refused by name, with the accepted values listed, instead of
/// falling back to a default (a typo in `--sort` used to list by priority silently).
#[test]
fn closed_option_sets_refuse_unknown_values() {
    let r = Replica::init();
    let id = r.create("Options are checked", &[]);
    for args in [
        vec!["list", "--sort", "prioirty"],
        vec!["export", "--format", "yaml"],
        vec!["log", &id, "x", "--type", "note"],
        vec!["board", "edit", "All Issues", "--view-mode", "grid"],
        vec!["sync", "resolve", "cf-x", "--keep", "mine"],
        vec!["member", "add", "ab", "--role", "owner"],
        vec!["init", "--mode", "cloud"],
    ] {
        let mut a = args.clone();
        a.push("--json");
        let out = r.run(&a);
        assert_eq!(out.error_code(), "invalid_input", "{args:?}");
        let human = r.run(&args);
        assert_eq!(human.code, 1, "{args:?}");
        assert!(
            human.stderr.contains("possible values"),
            "{args:?} lists the accepted values: {}",
            human.stderr
        );
    }
    // Values are still accepted as td spells them (and --role in any case).
    assert_eq!(
        r.json(&["list", "--sort", "created"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let f = r.root.join("notes.md");
    std::fs::write(&f, "x").unwrap();
    let linked = r.json(&["link", &id, f.to_str().unwrap(), "--role", "Reference"]);
    assert_eq!(linked["files"][0]["role"], "reference");
}
