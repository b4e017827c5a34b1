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
        assert_eq!(
            s["created_at"],
            td_engine::model::rfc3339_nanos(&created).as_str()
        );
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
            "snapshot",
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
    // td's Markdown export.
    let md = a.ok(&["export", "--format", "md"]);
    assert!(
        md.starts_with("# Issues Export\n\n## td-") && md.contains("\n- Status: "),
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

/// Texts that break naive code: emoji (with joiners), CJK, right-to-left, SQL-looking strings,
/// markup, quotes and escapes, combining marks and zero-width characters.
const NASTY: [&str; 8] = [
    "Rocket 🚀 family 👩‍👩‍👧 flag 🇯🇵",
    "同步引擎の設計と実装 — 中文测试",
    "مرحبا بالعالم ‏שלום עולם‎",
    "'; DROP TABLE issues; -- \" OR 1=1",
    "<script>alert('x')</script> **bold** `code` [link](http://x)",
    "tab\tnewline\nbackslash\\ quote\" single'",
    "e\u{301} zero\u{200b}width \u{feff}bom",
    "plain ascii",
];

/// A td v38 database of `n` issues with logs, comments, handoffs, dependencies, files,
/// boards, positions and notes, full of the texts above, a few 50,000-character descriptions
/// and 300 comments on one issue (td-compat behaviour 14).
/// td's own export shapes: `td export` prints one `{issue, logs, handoffs, dependencies,
/// files}` item per issue (handoff lists as arrays), `--format md` td's report, and `td import`
/// reads both back into a fresh project with the same issues, logs, handoffs, dependencies and
/// files; `--all` adds deleted issues.
#[test]
fn tds_json_and_markdown_exports_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let a = Replica::init();
    let x = a.create(
        "Parser",
        &[
            "-l",
            "core,parse",
            "-p",
            "P1",
            "--points",
            "3",
            "-d",
            "Line one\nLine two",
        ],
    );
    let y = a.create("Printer", &["-t", "bug"]);
    let gone = a.create("Deleted one", &[]);
    a.json(&["dep", "add", &x, &y]);
    a.json(&["start", &x]);
    a.json(&["log", &x, "wrote the lexer"]);
    a.json(&["handoff", &x, "--done", "lexer", "--remaining", "grammar"]);
    std::fs::write(a.root.join("lexer.rs"), "fn main() {}").unwrap();
    a.json(&["link", &x, a.root.join("lexer.rs").to_str().unwrap()]);
    a.json(&["delete", &gone]);

    let items: serde_json::Value = serde_json::from_str(&a.ok(&["export"])).unwrap();
    let items = items.as_array().unwrap();
    assert_eq!(items.len(), 2, "deleted issues only with --all");
    let ix = items
        .iter()
        .find(|i| i["issue"]["id"] == x.as_str())
        .unwrap();
    assert_eq!(ix["issue"]["labels"], serde_json::json!(["core", "parse"]));
    assert_eq!(ix["handoffs"][0]["done"], serde_json::json!(["lexer"]));
    assert_eq!(ix["dependencies"][0]["depends_on_id"], y.as_str());
    assert_eq!(ix["files"][0]["file_path"], "lexer.rs");
    assert!(ix["logs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["message"] == "wrote the lexer"));
    let all: serde_json::Value = serde_json::from_str(&a.ok(&["export", "--all"])).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 3);

    let file = tmp.path().join("td.json");
    a.json(&["export", "--output", file.to_str().unwrap()]);
    let b = Replica::init();
    b.json(&["import", file.to_str().unwrap()]);
    for key in [
        "title",
        "labels",
        "priority",
        "points",
        "description",
        "status",
        "type",
    ] {
        assert_eq!(
            b.json(&["show", &x])[key],
            a.json(&["show", &x])[key],
            "{key}"
        );
    }
    let shown = b.json(&["show", &x]);
    assert_eq!(
        shown["handoff"]["remaining"],
        serde_json::json!(["grammar"])
    );
    assert_eq!(
        b.json(&["depends-on", &x])["dependencies"][0]["id"],
        y.as_str()
    );
    assert_eq!(b.json(&["files", &x])[0]["file_path"], "lexer.rs");
    assert!(shown["logs"].to_string().contains("wrote the lexer"));

    // td's Markdown export, read back into another project.
    let md_file = tmp.path().join("issues.md");
    std::fs::write(&md_file, a.ok(&["export", "--format", "md"])).unwrap();
    let md = std::fs::read_to_string(&md_file).unwrap();
    assert!(md.contains(&format!("## {x}: Parser\n\n- Status: in_progress\n- Type: task\n- Priority: P1\n- Points: 3\n- Labels: core, parse\n\nLine one\nLine two\n")), "{md}");
    let c = Replica::init();
    c.json(&["import", md_file.to_str().unwrap()]);
    let from_md = c.json(&["show", &x]);
    assert_eq!(
        (
            from_md["title"].as_str(),
            from_md["status"].as_str(),
            from_md["priority"].as_str(),
            from_md["points"].as_i64()
        ),
        (Some("Parser"), Some("in_progress"), Some("P1"), Some(3))
    );
    assert_eq!(from_md["labels"], serde_json::json!(["core", "parse"]));
    assert_eq!(from_md["description"], "Line one\nLine two");
    assert_eq!(c.json(&["show", &y])["type"], "bug");
    // A file that is neither is refused with the reason.
    let junk = tmp.path().join("junk.json");
    std::fs::write(&junk, "[{\"issue\": {}}]").unwrap();
    let out = c.run(&["import", junk.to_str().unwrap(), "--json"]);
    assert!(
        out.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no issue id"),
        "{}",
        out.stdout
    );
}

fn generate_td_db(path: &Path, n: usize) {
    let conn = td_tests::new_td_db(path);
    conn.execute_batch("BEGIN").unwrap();
    let statuses = ["open", "in_progress", "blocked", "in_review", "closed"];
    let big: String = NASTY.concat().chars().cycle().take(50_000).collect();
    for i in 0..n {
        let id = format!("td-{:06x}", i * 7919 % 0xffffff);
        let t = NASTY[i % NASTY.len()];
        let desc = if i % 700 == 3 {
            big.clone()
        } else {
            format!("{t} #{i}")
        };
        let ts = format!(
            "2026-03-{:02} 10:{:02}:00.{:06}-05:00",
            1 + i % 28,
            i % 60,
            i
        );
        conn.execute(
            "INSERT INTO issues(id, title, description, acceptance, status, type, priority, labels, parent_id, \
             created_at, updated_at, creator_session, implementer_session, deleted_at, points, minor) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, 'ses_a1b2c3', ?11, ?12, ?13, ?14)",
            rusqlite::params![
                id,
                format!("{} {i}", t.replace(['\n', '\t'], " ")),
                desc,
                if i % 3 == 0 { t } else { "" },
                statuses[i % 5],
                ["bug", "feature", "task", "epic", "chore"][i % 5],
                format!("P{}", i % 5),
                ["", "sync", "sync,ui", "日本,emoji🚀"][i % 4],
                if i > 10 && i % 4 == 0 { format!("td-{:06x}", (i / 2) * 7919 % 0xffffff) } else { String::new() },
                ts,
                if i % 5 == 1 { "ses_d4e5f6" } else { "" },
                if i % 97 == 0 { Some(ts.clone()) } else { None },
                [0, 1, 2, 3, 5, 8][i % 6],
                (i % 11 == 0) as i64,
            ],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO logs(id, issue_id, session_id, message, type, timestamp) VALUES (?1, ?2, 'ses_a1b2c3', ?3, 'progress', ?4)",
            rusqlite::params![format!("lg-{i:08x}"), id, NASTY[(i + 1) % NASTY.len()], ts],
        )
        .unwrap();
        if i % 2 == 0 {
            conn.execute(
                "INSERT INTO comments(id, issue_id, session_id, text, created_at) VALUES (?1, ?2, 'ses_d4e5f6', ?3, ?4)",
                rusqlite::params![format!("cm-{i:08x}"), id, NASTY[(i + 2) % NASTY.len()], ts],
            )
            .unwrap();
        }
        if i == 1 {
            // Hundreds of comments on one issue.
            for k in 0..300 {
                conn.execute(
                    "INSERT INTO comments(id, issue_id, session_id, text, created_at) VALUES (?1, ?2, 'ses_d4e5f6', ?3, ?4)",
                    rusqlite::params![format!("cm-f{k:07x}"), id, format!("{} #{k}", NASTY[k % NASTY.len()]), ts],
                )
                .unwrap();
            }
        }
        if i % 3 == 0 {
            let list = serde_json::to_string(&[NASTY[i % 8], NASTY[(i + 3) % 8]]).unwrap();
            conn.execute(
                "INSERT INTO handoffs(id, issue_id, session_id, done, remaining, decisions, uncertain, timestamp) \
                 VALUES (?1, ?2, 'ses_a1b2c3', ?3, ?3, '[]', ?3, ?4)",
                rusqlite::params![format!("ho-{i:08x}"), id, list, ts],
            )
            .unwrap();
        }
        if i > 0 && i % 5 == 0 {
            let target = format!("td-{:06x}", (i - 1) * 7919 % 0xffffff);
            conn.execute(
                "INSERT INTO issue_dependencies(id, issue_id, depends_on_id, relation_type) VALUES (?1, ?2, ?3, 'depends_on')",
                rusqlite::params![td_engine::model::link_id("dep_", &format!("{id}|{target}|depends_on")), id, target],
            )
            .unwrap();
        }
        if i % 6 == 0 {
            let p = format!("src/模块/file {i}.rs");
            conn.execute(
                "INSERT INTO issue_files(id, issue_id, file_path, role, linked_sha, linked_at) VALUES (?1, ?2, ?3, 'test', '', ?4)",
                rusqlite::params![td_engine::model::link_id("ifl_", &format!("{id}|{p}")), id, p, ts],
            )
            .unwrap();
        }
    }
    conn.execute(
        "INSERT INTO boards(id, name, query, created_at, updated_at) VALUES ('bd-0000beef', 'Sprint 🚀 スプリント', 'labels ~ sync', '2026-03-01 10:00:00', '2026-03-01 10:00:00')",
        [],
    )
    .unwrap();
    for i in (0..n).step_by(9) {
        let id = format!("td-{:06x}", i * 7919 % 0xffffff);
        conn.execute(
            "INSERT INTO board_issue_positions(id, board_id, issue_id, position, added_at) VALUES (?1, 'bd-0000beef', ?2, ?3, '2026-03-02 10:00:00')",
            rusqlite::params![td_engine::model::link_id("bip_", &format!("bd-0000beef|{id}")), id, (i as i64 / 9 + 1) * 65536],
        )
        .unwrap();
    }
    for (k, t) in NASTY.iter().enumerate() {
        conn.execute(
            "INSERT INTO notes(id, title, content, created_at, updated_at, pinned, archived) VALUES (?1, ?2, ?3, '2026-03-01', '2026-03-01', ?4, ?5)",
            rusqlite::params![format!("nt-{k:06x}"), format!("Note {k}"), t, (k % 2) as i64, (k % 3 == 0) as i64],
        )
        .unwrap();
    }
    conn.execute_batch("COMMIT").unwrap();
}

fn assert_same_rows(db: &Path, src: &Path, when: &str) {
    for t in SYNCED {
        let (ours, theirs) = (table_rows(db, t), table_rows(src, t));
        assert_eq!(ours.len(), theirs.len(), "{t}: row count differs {when}");
        for (o, s) in ours.iter().zip(&theirs) {
            assert!(
                o == s,
                "{t}: a row differs {when}:\n ours:   {:.300}\n source: {:.300}",
                o,
                s
            );
        }
    }
}

#[test]
fn a_large_generated_database_survives_migration_export_import_and_sync_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("generated.db");
    generate_td_db(&src, 2_000);
    let before = checksum(&src);

    // Migration.
    let a = Replica::new();
    let v = a.json(&["init", "--migrate-from", src.to_str().unwrap()]);
    assert_eq!(v["imported"]["issues"], 2_000);
    assert_eq!(v["skipped"], serde_json::json!([]));
    assert_same_rows(&a.db(), &src, "after migration");
    assert_eq!(checksum(&src), before, "the source file was modified");
    // However large the import, no actor's run of unsigned records outgrows a wire batch.
    let conn = rusqlite::Connection::open(a.db()).unwrap();
    let mut stmt = conn
        .prepare("SELECT actor, length(signature) FROM crdt_changes ORDER BY actor, seq")
        .unwrap();
    let mut longest = 0usize;
    let mut streak = 0usize;
    let mut last_actor: Vec<u8> = Vec::new();
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))
        .unwrap();
    for row in rows {
        let (actor, sig) = row.unwrap();
        if actor != last_actor {
            assert_eq!(streak, 0, "an actor's last record is unsigned");
            last_actor = actor;
        }
        streak = if sig == 0 { streak + 1 } else { 0 };
        longest = longest.max(streak);
    }
    assert_eq!(streak, 0, "the last record is unsigned");
    assert!(longest > 0, "runs share signatures");
    assert!(
        longest < td_engine::store::SIGNED_RUN_RECORDS,
        "run of {longest} unsigned records"
    );
    assert_eq!(
        a.json(&["show", &format!("td-{:06x}", 7919)])["comments"]
            .as_array()
            .unwrap()
            .len(),
        300
    );
    let big = a.json(&["show", &format!("td-{:06x}", 3 * 7919)]);
    assert_eq!(big["description"].as_str().unwrap().chars().count(), 50_000);
    let reference = a.export();

    // JSON export → import into a fresh project.
    let json_file = tmp.path().join("backup.json");
    a.json(&[
        "export",
        "--format",
        "snapshot",
        "--output",
        json_file.to_str().unwrap(),
    ]);
    let b = Replica::init();
    b.json(&["import", json_file.to_str().unwrap()]);
    assert_eq!(b.export(), reference, "JSON round trip");
    assert_same_rows(&b.db(), &src, "after a JSON export/import");

    // SQL export → a fresh SQLite database → import --from-db.
    let restored = tmp.path().join("restored.db");
    rusqlite::Connection::open(&restored)
        .unwrap()
        .execute_batch(&a.ok(&["export", "--format", "sql"]))
        .unwrap();
    assert_same_rows(&restored, &src, "in the SQL export");
    let c = Replica::init();
    c.json(&["import", "--from-db", restored.to_str().unwrap()]);
    assert_eq!(c.export(), reference, "SQL round trip");

    // Sync to a second replica over QUIC.
    let d = Replica::init();
    let sa = a.serve();
    a.befriend(&d, "a", &sa.addr);
    let s = d.json(&["peer", "sync", "a"]);
    assert!(s[0]["error"].is_null(), "{s}");
    assert_eq!(d.export(), reference, "after sync");
    assert_same_rows(&d.db(), &src, "after sync");
    sa.stop();
}

/// The import reports progress (what the CLI's progress bar shows on large databases): calls
/// rise monotonically and end at the number of source entities.
#[test]
fn migration_reports_progress_up_to_every_source_entity() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("generated.db");
    generate_td_db(&src, 600);
    let source = rusqlite::Connection::open(&src).unwrap();
    let expected: i64 = td_engine::migrate::ENTITY_TABLES
        .iter()
        .map(|t| {
            source
                .query_row(&format!("SELECT count(*) FROM {t}"), [], |r| {
                    r.get::<_, i64>(0)
                })
                .unwrap()
        })
        .sum();
    let r = Replica::init();
    let mut store = r.store();
    let mut calls: Vec<(usize, usize)> = Vec::new();
    let report = store
        .migrate_from_with_progress(&src, &mut |done, total| calls.push((done, total)))
        .unwrap();
    assert_eq!(report.imported["issues"], 600);
    assert!(calls.len() > 2, "{calls:?}");
    assert!(
        calls.windows(2).all(|w| w[0].0 < w[1].0),
        "monotonic: {calls:?}"
    );
    assert_eq!(
        *calls.last().unwrap(),
        (expected as usize, expected as usize)
    );
}
