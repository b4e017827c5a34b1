//! Edits made to td's tables outside td (sqlite3, as td's users and runbooks do) are never
//! lost silently: `td doctor` shows them, `td rebuild` refuses to revert them unless told to,
//! and an issue's edited fields become ordinary signed changes with `td doctor
//! --adopt-edits`, which then sync to other replicas.

use td_tests::Replica;

fn sql(r: &Replica, stmt: &str) {
    rusqlite::Connection::open(r.db())
        .unwrap()
        .execute_batch(stmt)
        .unwrap();
}

#[test]
fn an_edit_outside_td_is_shown_kept_from_rebuild_and_adopted_or_reverted() {
    let a = Replica::init();
    let b = Replica::init();
    let sa = a.serve();
    a.befriend(&b, "a", &sa.addr);
    let id = a.create("Titled by td", &["-p", "P2"]);
    let other = a.create("Left alone", &[]);
    b.json(&["peer", "sync", "a"]);
    assert_eq!(a.run(&["doctor"]).code, 0);

    // Someone fixes data with sqlite3.
    sql(
        &a,
        &format!("UPDATE issues SET title = 'Fixed by hand', priority = 'P0' WHERE id = '{id}'"),
    );
    sql(
        &a,
        &format!(
            "INSERT INTO comments(id, issue_id, session_id, text, created_at) \
             VALUES ('cm-0utside', '{other}', 'ses_hand', 'typed in sqlite3', '2026-01-01 00:00:00')"
        ),
    );
    let d = a.run(&["doctor", "--json"]);
    assert_eq!(d.code, 1, "{d:?}");
    let report = d.json();
    let edits = report["outside_edits"].as_array().unwrap();
    assert_eq!(edits.len(), 2, "{report}");
    assert!(edits.iter().any(|e| e["table"] == "issues"
        && e["id"] == id.as_str()
        && e["columns"] == serde_json::json!(["priority", "title"])));
    assert!(edits
        .iter()
        .any(|e| e["table"] == "comments" && e["kind"] == "added"));

    // A rebuild would revert them: refused, nothing changed.
    let r = a.run(&["rebuild", "--json"]);
    assert_eq!(r.error_code(), "invalid_input", "{r:?}");
    assert_eq!(a.json(&["show", &id])["title"], "Fixed by hand");

    // Adopted: the edit becomes a signed change and reaches B; the inserted comment
    // cannot be adopted and stays, reported.
    let out = a.run(&["doctor", "--adopt-edits"]);
    assert!(out.stdout.contains(&format!("ADOPTED {id}")), "{out:?}");
    assert!(out.stderr.contains("cannot be adopted"), "{out:?}");
    b.json(&["peer", "sync", "a"]);
    let shown = b.json(&["show", &id]);
    assert_eq!(
        (shown["title"].as_str(), shown["priority"].as_str()),
        (Some("Fixed by hand"), Some("P0"))
    );

    // Reverted on purpose: the inserted row goes; the adopted edit, now in the log, stays.
    a.json(&["rebuild", "--discard-outside-edits"]);
    assert_eq!(a.run(&["doctor"]).code, 0);
    assert_eq!(a.json(&["show", &id])["title"], "Fixed by hand");
    assert!(!a
        .json(&["comments", &other])
        .to_string()
        .contains("typed in sqlite3"));
    b.json(&["peer", "sync", "a"]);
    assert_eq!(a.export(), b.export());
    sa.stop();
}
