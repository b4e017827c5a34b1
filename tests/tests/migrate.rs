//! Adopting an existing td database: `td init --migrate-from` and `td import --from-db`.

use std::path::{Path, PathBuf};

use td_tests::Replica;

/// A checksum of a file's bytes (FNV-1a: enough to detect any modification).
fn checksum(p: &Path) -> u64 {
    std::fs::read(p)
        .unwrap()
        .iter()
        .fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ *b as u64).wrapping_mul(0x100000001b3)
        })
}

use td_engine::schema::SYNCED_TABLES as SYNCED;

fn fixture_copy(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/td-v38-sample.db");
    let dst = dir.join("source-issues.db");
    std::fs::copy(src, &dst).unwrap();
    dst
}

fn table_rows(db: &Path, table: &str) -> Vec<String> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut stmt = conn
        .prepare(&format!(
            "SELECT * FROM {table} WHERE id != 'bd-all-issues' ORDER BY id"
        ))
        .unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        Ok((0..n)
            .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
            .collect::<Vec<_>>()
            .join("|"))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

#[test]
fn migrating_the_sample_database_reproduces_every_synced_row() {
    let tmp = tempfile::tempdir().unwrap();
    let src = fixture_copy(tmp.path());
    let before = checksum(&src);
    let r = Replica::new();
    let v = r.json(&["init", "--migrate-from", src.to_str().unwrap()]);
    assert_eq!(v["action"], "imported");
    assert_eq!(v["imported"]["issues"], 60);
    assert_eq!(v["skipped"], serde_json::json!([]));
    for t in SYNCED {
        assert_eq!(
            table_rows(&r.db(), t),
            table_rows(&src, t),
            "table {t} differs from the source"
        );
    }
    // show --json of every issue matches the source row.
    let conn = rusqlite::Connection::open(&src).unwrap();
    let ids: Vec<String> = conn
        .prepare("SELECT id FROM issues ORDER BY id")
        .unwrap()
        .query_map([], |x| x.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let listed = r.json(&["list", "--all", "-n", "1000"]);
    assert_eq!(
        listed.as_array().unwrap().len(),
        ids.iter()
            .filter(|i| {
                conn.query_row(
                    "SELECT deleted_at IS NULL FROM issues WHERE id = ?1",
                    [i],
                    |x| x.get::<_, bool>(0),
                )
                .unwrap()
            })
            .count()
    );
    for id in &ids {
        let s = r.json(&["show", id]);
        let (title, status, labels, created): (String, String, String, String) = conn
            .query_row(
                "SELECT title, status, labels, created_at FROM issues WHERE id = ?1",
                [id],
                |x| Ok((x.get(0)?, x.get(1)?, x.get(2)?, x.get(3)?)),
            )
            .unwrap();
        assert_eq!(s["title"], title.as_str());
        assert_eq!(s["status"], status.as_str());
        assert_eq!(s["created_at"], created.as_str());
        let want: Vec<&str> = labels.split(',').filter(|l| !l.is_empty()).collect();
        assert_eq!(s["labels"], serde_json::json!(want));
    }
    // A second run adds nothing; the source is never modified; the log rebuilds the same tables.
    let export = r.export();
    let again = r.json(&["import", "--from-db", src.to_str().unwrap()]);
    assert_eq!(again["imported"], serde_json::json!({}));
    assert!(again["already_present"].as_u64().unwrap() > 300);
    assert_eq!(r.export(), export);
    assert_eq!(checksum(&src), before, "the source file was modified");
    r.json(&["rebuild"]);
    assert_eq!(r.export(), export);
    // Authors are the source's sessions.
    let sessions: i64 = rusqlite::Connection::open(r.db())
        .unwrap()
        .query_row(
            "SELECT count(DISTINCT session_id) FROM crdt_changes",
            [],
            |x| x.get(0),
        )
        .unwrap();
    assert!(sessions >= 4, "changes attributed to the source sessions");
}

#[test]
fn a_migrated_project_syncs_to_a_second_replica() {
    let tmp = tempfile::tempdir().unwrap();
    let src = fixture_copy(tmp.path());
    let a = Replica::new();
    a.json(&["init", "--migrate-from", src.to_str().unwrap()]);
    let b = Replica::init();
    let sa = a.serve();
    a.befriend(&b, "a", &sa.addr);
    let v = b.json(&["peer", "sync", "a"]);
    assert!(v[0]["error"].is_null(), "{v}");
    assert_eq!(a.export(), b.export());
    for t in SYNCED {
        assert_eq!(
            table_rows(&b.db(), t),
            table_rows(&src, t),
            "table {t} differs after sync"
        );
    }
    sa.stop();
}

#[test]
fn refusals_write_nothing_and_leave_the_source_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let good = fixture_copy(tmp.path());
    // Not SQLite.
    let text = tmp.path().join("notes.txt");
    std::fs::write(
        &text,
        "this is not a database, just some text that is long enough\n".repeat(20),
    )
    .unwrap();
    // SQLite, but not td.
    let other = tmp.path().join("other.db");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE x(a); INSERT INTO x VALUES (1);")
        .unwrap();
    // A newer td.
    let newer = tmp.path().join("newer.db");
    std::fs::copy(&good, &newer).unwrap();
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute(
            "UPDATE schema_info SET value = '39' WHERE key = 'version'",
            [],
        )
        .unwrap();
    // Corrupted: the second half of the file overwritten.
    let broken = tmp.path().join("broken.db");
    let mut bytes = std::fs::read(&good).unwrap();
    let half = bytes.len() / 2;
    for b in &mut bytes[half..] {
        *b = 0xee;
    }
    std::fs::write(&broken, &bytes).unwrap();
    for (file, why) in [
        (&text, "not a SQLite database"),
        (&other, "not a td database"),
        (&newer, "newer"),
        (&broken, "corrupt"),
        (&tmp.path().join("missing.db"), "no such file"),
    ] {
        let sum = file.exists().then(|| checksum(file));
        // Into a new project: nothing is created.
        let fresh = Replica::new();
        let run = fresh.run(&["init", "--migrate-from", file.to_str().unwrap(), "--json"]);
        assert_eq!(run.error_code(), "invalid_input", "{file:?}");
        assert!(
            run.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains(why),
            "{file:?}: {}",
            run.stdout
        );
        assert!(!fresh.db().exists(), "nothing created for {file:?}");
        // Into an existing project: nothing is written.
        let existing = Replica::init();
        existing.create("Already here before the import", &[]);
        let export = existing.export();
        let run = existing.run(&["import", "--from-db", file.to_str().unwrap()]);
        assert_eq!(run.code, 1);
        assert!(run.stderr.contains(why), "{}", run.stderr);
        assert_eq!(existing.export(), export);
        assert_eq!(
            file.exists().then(|| checksum(file)),
            sum,
            "source modified: {file:?}"
        );
    }
}

#[test]
fn export_and_import_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let src = fixture_copy(tmp.path());
    let a = Replica::new();
    a.json(&["init", "--migrate-from", src.to_str().unwrap()]);
    let reference = a.export();
    // JSON export → import into an empty project (dry run first).
    let json_file = tmp.path().join("backup.json");
    assert_eq!(
        a.json(&[
            "export",
            "--format",
            "json",
            "--output",
            json_file.to_str().unwrap()
        ])["action"],
        "exported"
    );
    assert_eq!(std::fs::read_to_string(&json_file).unwrap(), reference);
    let b = Replica::init();
    let dry = b.json(&["import", json_file.to_str().unwrap(), "--dry-run"]);
    assert_eq!(dry["would_import"]["issues"], 60);
    assert_eq!(
        b.json(&["list", "--all"]),
        serde_json::json!([]),
        "a dry run writes nothing"
    );
    b.json(&["import", json_file.to_str().unwrap()]);
    assert_eq!(b.export(), reference);
    // Importing the same file again merges by id: nothing added.
    assert_eq!(
        b.json(&["import", json_file.to_str().unwrap()])["imported"],
        serde_json::json!({})
    );
    // SQL export → a fresh SQLite database → import --from-db.
    let sql = a.ok(&["export", "--format", "sql"]);
    let restored = tmp.path().join("restored.db");
    rusqlite::Connection::open(&restored)
        .unwrap()
        .execute_batch(&sql)
        .unwrap();
    let c = Replica::init();
    c.json(&["import", "--from-db", restored.to_str().unwrap()]);
    assert_eq!(c.export(), reference);
    // Markdown report.
    let md = a.ok(&["export", "--format", "md"]);
    assert!(
        md.starts_with("# Issues") && md.contains("**Handoff**"),
        "{}",
        &md[..200.min(md.len())]
    );
    // Bad input.
    let junk = tmp.path().join("junk.json");
    std::fs::write(&junk, "{\"not\": \"an export\"}").unwrap();
    assert_eq!(
        c.run(&["import", junk.to_str().unwrap(), "--json"])
            .error_code(),
        "invalid_input"
    );
    std::fs::write(&junk, "not json at all").unwrap();
    assert_eq!(
        c.run(&["import", junk.to_str().unwrap(), "--json"])
            .error_code(),
        "invalid_input"
    );
    assert_eq!(
        c.run(&["export", "--format", "yaml", "--json"])
            .error_code(),
        "invalid_input"
    );
    assert_eq!(c.export(), reference, "failed imports wrote nothing");
}
