//! Big projects (issue 28) at test scale: a realistic generated td database of 2,000 issues
//! (`td_tests::scale`, the generator `scale_bench` uses at 10k–100k) is migrated, pushed to a
//! real `tursodb` hub and joined by a teammate; every row arrives and both replicas export the
//! same bytes.

use td_tests::hub::Hub;
use td_tests::Replica;

#[test]
fn a_2k_issue_project_migrates_pushes_and_joins_identically() {
    migrate_push_join(2_000);
}

/// At 8k issues, sixty writers' long runs interleave in the migration's log: more unsigned
/// rows wait for their signed ends than a pull carries from page to page. The joiner must
/// still get every record in one join (before, 3,109 of 43,674 records never arrived: writers
/// were taken as complete when a bounded read-ahead ended).
#[test]
fn an_8k_issue_project_with_many_writers_joins_whole() {
    migrate_push_join(8_000);
}

fn migrate_push_join(n: u64) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("td.db");
    let g = td_tests::scale::generate(&src, n, 28);
    assert_eq!(g.issues, n);
    assert!(
        g.logs > 3_000 && g.comments > 1_500 && g.handoffs > 500,
        "{g:?}"
    );

    let a = Replica::new();
    let m = a.json(&["init", "--migrate-from", src.to_str().unwrap()]);
    let imported = |t: &str| m["imported"][t].as_u64().unwrap_or(0);
    assert_eq!(
        (
            imported("issues"),
            imported("logs"),
            imported("comments"),
            imported("handoffs")
        ),
        (g.issues, g.logs, g.comments, g.handoffs),
        "{m}"
    );
    assert!(
        m["skipped"].as_array().is_none_or(Vec::is_empty),
        "nothing left out: {m}"
    );
    // The migrated tables hold what td's did, row for row (td's own columns).
    let src_conn = rusqlite::Connection::open(&src).unwrap();
    let a_conn = a.store();
    for (table, cols) in [
        ("issues", "id, title, description, status, type, priority, points, labels, parent_id, acceptance, implementer_session, reviewer_session, created_at, updated_at, closed_at, creator_session, sprint"),
        ("logs", "id, issue_id, session_id, message, type, timestamp"),
        ("comments", "id, issue_id, session_id, text, created_at"),
        ("handoffs", "id, issue_id, session_id, done, remaining, decisions, uncertain, timestamp"),
        ("issue_dependencies", "id, issue_id, depends_on_id, relation_type"),
    ] {
        let dump = |c: &rusqlite::Connection| -> Vec<String> {
            let mut st = c
                .prepare(&format!("SELECT json_array({cols}) FROM {table} ORDER BY id"))
                .unwrap();
            st.query_map([], |r| r.get::<_, String>(0))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        let (want, got) = (dump(&src_conn), dump(a_conn.conn()));
        assert_eq!(want.len(), got.len(), "{table}: row count");
        if let Some(k) = (0..want.len()).find(|&k| want[k] != got[k]) {
            panic!(
                "{table}: rows differ after migration, first at {k}:\n td: {}\nours: {}",
                want[k], got[k]
            );
        }
    }

    let hub = Hub::start();
    let b = Replica::init();
    a.json(&["member", "add", &b.public_key()]);
    assert_eq!(
        a.json(&["sync", "init", "--hub", &hub.url()])["action"],
        "connected"
    );
    assert_eq!(
        b.json(&["sync", "init", "--hub", &hub.url()])["action"],
        "joined"
    );
    let listed = b.json(&["list", "--all", "-n", "100000"]);
    assert_eq!(listed.as_array().unwrap().len() as u64, g.issues);
    assert_eq!(a.export(), b.export(), "founder and joiner export the same");
}
