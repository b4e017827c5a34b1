//! `td doctor` passes on replicas that synced, and names what is wrong when a record's bytes
//! or a signature were altered on disk.

use td_tests::Replica;

#[test]
fn doctor_passes_after_sync_and_finds_tampering() {
    let a = Replica::init();
    let x = a.create("Written on A", &[]);
    a.json(&["start", &x]);
    let b = Replica::init();
    let sa = a.serve();
    a.befriend(&b, "a", &sa.addr);
    let v = b.json(&["peer", "sync", "a"]);
    assert!(v[0]["error"].is_null(), "{v}");
    b.create("Written on B", &[]);
    b.json(&["peer", "sync", "a"]);
    for r in [&a, &b] {
        let d = r.json(&["doctor"]);
        assert_eq!(d["ok"], true, "{d}");
        assert!(d["records"].as_u64().unwrap() >= 4, "{d}");
        assert!(d["writers"].as_u64().unwrap() >= 2, "{d}");
        assert_eq!(r.run(&["doctor"]).code, 0);
    }
    drop(sa);

    // Flip one byte of a stored record: its hash no longer matches.
    let conn = rusqlite::Connection::open(b.db()).unwrap();
    let (id, mut body): (i64, Vec<u8>) = conn
        .query_row(
            "SELECT id, body FROM crdt_changes ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let mid = body.len() / 2;
    body[mid] ^= 0x01;
    conn.execute(
        "UPDATE crdt_changes SET body = ?1 WHERE id = ?2",
        rusqlite::params![body, id],
    )
    .unwrap();
    let out = b.run(&["doctor", "--json"]);
    assert_eq!(
        out.code, 1,
        "a failed check exits 1, with the report on stdout"
    );
    let d = out.json();
    assert_eq!(d["ok"], false);
    let failed: Vec<&str> = d["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(failed.contains(&"record hashes"), "{d}");
    let human = b.run(&["doctor"]);
    assert_eq!(human.code, 1);
    assert!(human.stdout.contains("✗ record hashes"), "{}", human.stdout);

    // A forged signature on A is found too.
    let conn = rusqlite::Connection::open(a.db()).unwrap();
    conn.execute(
        "UPDATE crdt_changes SET signature = zeroblob(64) \
         WHERE id = (SELECT max(id) FROM crdt_changes WHERE length(signature) = 64)",
        [],
    )
    .unwrap();
    let d = a.run(&["doctor", "--json"]).json();
    assert_eq!(d["ok"], false, "{d}");
    assert!(
        d["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "signatures" && c["ok"] == false),
        "{d}"
    );
}
