//! Actor uniqueness across copied databases, and td's root resolution.

use std::collections::HashSet;

use td_tests::Replica;

fn actor_seqs(db: &std::path::Path) -> HashSet<(Vec<u8>, i64)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn.prepare("SELECT actor, seq FROM crdt_changes").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn copied_database_never_reuses_actor_sequence_numbers() {
    let a = Replica::init();
    a.create("Written before the copy", &[]);
    // Copy the project to another directory on the same machine (same key, same session name).
    let b = Replica::new();
    std::fs::create_dir_all(b.root.join(".todos")).unwrap();
    std::fs::copy(a.db(), b.db()).unwrap();
    std::fs::create_dir_all(b.config.join("td")).unwrap();
    for f in ["machine.key", "machine.pub"] {
        std::fs::copy(a.config.join("td").join(f), b.config.join("td").join(f)).unwrap();
    }
    let shared = actor_seqs(&a.db());
    a.json_as("same", &["create", "Written in the original"]);
    b.json_as("same", &["create", "Written in the copy"]);
    let new_a: HashSet<_> = actor_seqs(&a.db()).difference(&shared).cloned().collect();
    let new_b: HashSet<_> = actor_seqs(&b.db()).difference(&shared).cloned().collect();
    assert!(!new_a.is_empty() && !new_b.is_empty());
    assert!(
        new_a.is_disjoint(&new_b),
        "copies wrote the same (actor, seq)"
    );
    let actors_a: HashSet<_> = new_a.iter().map(|(x, _)| x.clone()).collect();
    let actors_b: HashSet<_> = new_b.iter().map(|(x, _)| x.clone()).collect();
    assert!(
        actors_a.is_disjoint(&actors_b),
        "the copy got its own actor"
    );
}

#[test]
fn root_resolution_follows_td_root_and_todos() {
    let r = Replica::init();
    let id = r.create("Found through root resolution", &[]);
    // A .td-root file elsewhere points at the project.
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join(".td-root"), r.root.to_str().unwrap()).unwrap();
    let mut c = std::process::Command::new(td_tests::td_bin());
    c.args(["show", &id, "--json"])
        .current_dir(other.path())
        .env("XDG_CONFIG_HOME", &r.config);
    c.env_remove("TD_WORK_DIR").env_remove("TD_SESSION_ID");
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // TD_WORK_DIR selects the project too.
    let mut c = std::process::Command::new(td_tests::td_bin());
    c.args(["list", "--json"])
        .current_dir(other.path())
        .env("XDG_CONFIG_HOME", &r.config)
        .env("TD_WORK_DIR", &r.root);
    let out = c.output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&id),
        "{out:?}"
    );
    // A nonexistent -w is a clear error.
    let out = std::process::Command::new(td_tests::td_bin())
        .args(["-w", "/nonexistent/dir/for/td", "list", "--json"])
        .env("XDG_CONFIG_HOME", &r.config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not exist"),
        "{v}"
    );
}
