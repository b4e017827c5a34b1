//! End-to-end encryption (issue 12, docs/encryption.md), with the real binary and a real hub
//! (`tursodb --sync-server`): what the hub holds, removals, late members, partitions, altered
//! and unopenable records.

use serde_json::{json, Value};
use td_tests::hub::{team, Hub};
use td_tests::Replica;

fn sync(r: &Replica) -> Value {
    r.json(&["sync"])
}

/// Syncs every replica, `passes` times round (key operations need a round trip or two: a
/// member publishes its key, another seals the epoch to it, the first opens what it held).
fn settle(rs: &[&Replica], passes: usize) {
    for _ in 0..passes {
        for r in rs {
            sync(r);
        }
    }
}

fn encryption(r: &Replica) -> Value {
    r.json(&["sync", "status"])["encryption"].clone()
}

/// Every byte the hub's operator holds: its database file and WAL, and every row body as the
/// hub's API returns it.
fn hub_bytes(hub: &Hub) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal"] {
        let mut p = hub.db_file().as_os_str().to_owned();
        p.push(suffix);
        all.extend(std::fs::read(&p).unwrap_or_default());
    }
    for row in td_tests::hub::sql(hub.port, "SELECT body FROM td_changes", json!([])) {
        let b64 = row[0]["base64"].as_str().unwrap_or_default();
        all.extend(unb64(b64));
    }
    all
}

/// A blob as the hub's API returns it (base64, padding optional).
fn unb64(s: &str) -> Vec<u8> {
    base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        s.trim_end_matches('='),
    )
    .unwrap()
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn three_replicas_through_a_real_hub_leave_it_only_ciphertext() {
    let hub = Hub::start();
    let (a, others) = team(&hub.url(), 2);
    let (b, c) = (&others[0], &others[1]);
    settle(&[&a, b, c], 2);
    let markers = [
        "MARKTITLE7f3a",
        "MARKDESC7f3a",
        "MARKCOMMENT7f3a",
        "MARKLOG7f3a",
        "MARKHANDOFF7f3a",
        "MARKBRANCH7f3a",
        "MARKLABEL7f3a",
    ];
    let i = a.create(
        "Rotate prod password MARKTITLE7f3a",
        &["-d", "hunter2 MARKDESC7f3a", "-l", "MARKLABEL7f3a"],
    );
    a.json(&["comment", &i, "note MARKCOMMENT7f3a"]);
    a.json(&["start", &i]);
    a.json(&["log", &i, "progress MARKLOG7f3a"]);
    a.json(&["handoff", &i, "--done", "did MARKHANDOFF7f3a"]);
    let j = b.create("From b", &[]);
    b.json(&["update", &j, "--description", "branch MARKBRANCH7f3a"]);
    settle(&[&a, b, c], 3);
    let ea = a.export();
    assert_eq!(ea, b.export(), "a and b converge");
    assert_eq!(ea, c.export(), "a and c converge");
    for m in ["MARKTITLE7f3a", "MARKDESC7f3a", "MARKBRANCH7f3a"] {
        assert!(ea.contains(m), "the replicas read {m}");
    }
    let held = hub_bytes(&hub);
    assert!(held.len() > 10_000, "the hub holds the project");
    for m in markers {
        assert!(!contains(&held, m), "the hub holds {m} in the clear");
    }
    // No working session or entity id is in the clear either: entity ids are sealed.
    assert!(!contains(&held, &i), "the hub holds the issue id {i}");
    // The only plaintext rows on the hub are the roster's (keys, roles, sealed epoch keys).
    let st = a.json(&["sync", "status"]);
    let roster_rows: i64 = rusqlite::Connection::open(a.db())
        .unwrap()
        .query_row(
            "SELECT count(*) FROM crdt_changes WHERE doc_id = 'roster'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(st["hub_plaintext_rows"], 0, "no content in plaintext: {st}");
    let format_1 = td_tests::hub::sql(
        hub.port,
        "SELECT count(*) FROM td_changes WHERE substr(body, 1, 1) = x'01'",
        json!([]),
    );
    assert_eq!(
        format_1[0][0]["value"]
            .as_str()
            .map(|v| v.parse::<i64>().unwrap()),
        Some(roster_rows),
        "{format_1:?}"
    );
    for r in [&a, b, c] {
        let e = encryption(r);
        assert_eq!(e["waiting_for_key"], 0, "{e}");
        assert_eq!(e["unreadable"], 0, "{e}");
        assert!(e["current"].is_string(), "{e}");
        assert_eq!(
            e["current"],
            encryption(&a)["current"],
            "one epoch everywhere"
        );
    }
}

#[test]
fn a_removed_machine_reads_nothing_written_after_its_removal() {
    let hub = Hub::start();
    let (a, others) = team(&hub.url(), 2);
    let (b, c) = (&others[0], &others[1]);
    settle(&[&a, b, c], 3);
    let before = a.create("Written before the removal", &[]);
    settle(&[&a, b, c], 2);
    assert!(c.export().contains("Written before the removal"));
    a.json(&["member", "remove", &c.public_key()]);
    let after = a.create("Written after the removal SECRETAFTER", &[]);
    settle(&[&a, b], 2);
    // c keeps pulling from the hub.
    sync(c);
    sync(c);
    assert!(b.export().contains("SECRETAFTER"), "a member reads it");
    let ce = c.export();
    assert!(ce.contains(&before), "c keeps what it had");
    assert!(
        !ce.contains("SECRETAFTER"),
        "c materialized a record after its removal"
    );
    assert!(!ce.contains(&after));
    // c holds the sealed record and cannot open it: its epoch's key was never sealed to c.
    let e = encryption(c);
    assert!(
        e["waiting_for_key"].as_i64().unwrap() >= 1,
        "c stores what it cannot read: {e}"
    );
    let conn = rusqlite::Connection::open(c.db()).unwrap();
    let current = encryption(&a)["current"].as_str().unwrap().to_string();
    let has_key: bool = conn
        .prepare("SELECT 1 FROM crdt_epoch_keys WHERE epoch = ?1")
        .unwrap()
        .exists([&current])
        .unwrap();
    assert!(!has_key, "c holds the key of the epoch after its removal");
    // Tried: every sealed record c holds without a key fails to open with every key c has.
    let keys: Vec<Vec<u8>> = conn
        .prepare("SELECT key FROM crdt_epoch_keys")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|k| k.unwrap())
        .collect();
    let bodies: Vec<Vec<u8>> = conn
        .prepare("SELECT body FROM crdt_changes WHERE applied = 5")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|b| b.unwrap())
        .collect();
    assert!(!bodies.is_empty());
    for body in bodies {
        let rec: td_engine::record::RecordBody = postcard::from_bytes(&body).unwrap();
        for k in &keys {
            let key: [u8; 32] = k.as_slice().try_into().unwrap();
            let opened = td_engine::sealing::open_record(
                &rec.change,
                |_| Some(key),
                &rec.project,
                &rec.actor,
                rec.seq,
            );
            assert!(
                opened.is_err(),
                "a key c holds opens a record after its removal"
            );
        }
    }
    // Admitted again: the epochs that exclude c are sealed to it (its removal is known here),
    // and it reads what was written while it was out.
    a.json(&["member", "add", &c.public_key()]);
    settle(&[&a, b, c], 2);
    assert!(c.export().contains("SECRETAFTER"), "{}", encryption(c));
    assert!(a.export() == c.export(), "c converges once admitted again");
}

#[test]
fn a_machine_admitted_after_three_rotations_reads_the_whole_history() {
    let hub = Hub::start();
    let (a, _) = team(&hub.url(), 0);
    for n in 0..3 {
        a.create(&format!("Epoch {n} work"), &[]);
        a.json(&["member", "rotate-key"]);
    }
    a.create("Latest work", &[]);
    sync(&a);
    assert_eq!(encryption(&a)["epochs"], 4, "{}", encryption(&a));
    let d = Replica::init();
    a.json(&["member", "add", &d.public_key()]);
    sync(&a);
    assert_eq!(
        d.json(&["sync", "init", "--hub", &hub.url()])["action"],
        "joined"
    );
    settle(&[&d, &a, &d], 2);
    let e = encryption(&d);
    assert_eq!(e["waiting_for_key"], 0, "{e}");
    assert_eq!(d.export(), a.export(), "d reads every epoch");
    for n in 0..3 {
        assert!(d.export().contains(&format!("Epoch {n} work")));
    }
}

#[test]
fn concurrent_removals_on_both_sides_of_a_partition_settle_on_one_epoch() {
    let hub = Hub::start();
    let (a, others) = team(&hub.url(), 3);
    let (b, c, d) = (&others[0], &others[1], &others[2]);
    a.json(&["member", "role", &b.public_key(), "admin"]);
    settle(&[&a, b, c, d], 3);
    // Apart: a removes c, b removes d, each writes.
    a.json(&["member", "remove", &c.public_key()]);
    a.create("Written by a while apart", &[]);
    b.json(&["member", "remove", &d.public_key()]);
    b.create("Written by b while apart", &[]);
    settle(&[&a, b], 3);
    let (ea, eb) = (encryption(&a), encryption(b));
    assert_eq!(ea["epochs"], eb["epochs"], "{ea} {eb}");
    assert_eq!(ea["current"], eb["current"], "{ea} {eb}");
    assert!(ea["current"].is_string(), "{ea}");
    assert_eq!(a.export(), b.export());
    // Written after they met: neither removed machine can read it.
    a.create("After the partition healed HEALED", &[]);
    settle(&[&a, b], 2);
    for gone in [c, d] {
        sync(gone);
        sync(gone);
        assert!(!gone.export().contains("HEALED"));
    }
    assert!(b.export().contains("HEALED"));
}

#[test]
fn an_altered_sealed_row_is_refused_and_later_rows_still_apply() {
    let hub = Hub::start();
    let (a, others) = team(&hub.url(), 2);
    let (b, c) = (&others[0], &others[1]);
    settle(&[&a, b, c], 3);
    a.create("First sealed issue", &[]);
    sync(&a);
    // The operator flips one byte inside the newest row's ciphertext.
    let rows = td_tests::hub::sql(
        hub.port,
        "SELECT seq, body FROM td_changes ORDER BY seq DESC LIMIT 1",
        json!([]),
    );
    let seq = rows[0][0]["value"].as_str().unwrap().to_string();
    let mut body = unb64(rows[0][1]["base64"].as_str().unwrap());
    let n = body.len();
    body[n - 10] ^= 0x01;
    td_tests::hub::sql(
        hub.port,
        "UPDATE td_changes SET body = ? WHERE seq = ?",
        json!([{"type": "blob", "base64": td_tests::hub::b64(&body)}, {"type": "integer", "value": seq}]),
    );
    let s = sync(b);
    assert!(s["quarantined"].as_u64().unwrap() >= 1, "{s}");
    assert!(!b.export().contains("First sealed issue"));
    // Rows after it still apply: another member's work arrives.
    c.create("Later work by c", &[]);
    sync(c);
    let s = sync(b);
    assert!(
        b.export().contains("Later work by c"),
        "later rows apply: {s}"
    );
}

#[test]
fn a_record_whose_key_has_not_arrived_is_held_then_applied() {
    let hub = Hub::start();
    let (a, others) = team(&hub.url(), 1);
    let c = &others[0];
    settle(&[&a, c], 2);
    // a admits b; c, which has not heard of b, starts an epoch of its own (sealed to a and c
    // only) and writes under it.
    let b = Replica::init();
    a.json(&["member", "add", &b.public_key()]);
    sync(&a);
    assert_eq!(
        b.json(&["sync", "init", "--hub", &hub.url()])["action"],
        "joined"
    );
    c.json(&["member", "rotate-key"]);
    c.create("Sealed where b has no key yet", &[]);
    c.json(&["sync", "--push"]);
    // b stores it and holds it: not lost, not applied.
    sync(&b);
    let e = encryption(&b);
    assert!(e["waiting_for_key"].as_i64().unwrap() >= 1, "{e}");
    assert!(!b.export().contains("Sealed where b has no key yet"));
    let doctor = b.ok(&["doctor"]);
    assert!(doctor.contains("wait for a key"), "{doctor}");
    // a, which holds c's epoch key, seals it to b on its next sync; b opens what it held.
    sync(&a);
    sync(&b);
    let e = encryption(&b);
    assert_eq!(e["waiting_for_key"], 0, "{e}");
    assert!(b.export().contains("Sealed where b has no key yet"));
    settle(&[&a, &b, c], 2);
    assert_eq!(a.export(), b.export());
    assert_eq!(a.export(), c.export());
}

/// A member admitted after a long history (its seal is the last row on the hub, many pages
/// after the records it opens) pulls all of it: what waited for the key applies in each
/// writer's order once the seal arrives.
#[test]
fn a_member_admitted_after_a_long_history_pulls_it_all_through_the_hub() {
    let hub = Hub::start();
    let a = Replica::init();
    td_tests::bulk_issues(&a, 300, 10);
    let b = Replica::init();
    a.json(&["member", "add", &b.public_key()]);
    assert_eq!(
        a.json(&["sync", "init", "--hub", &hub.url()])["action"],
        "connected"
    );
    let v = b.json(&["sync", "init", "--hub", &hub.url()]);
    assert_eq!(v["action"], "joined", "{v}");
    assert_eq!(a.export(), b.export());
    assert_eq!(encryption(&b)["waiting_for_key"], 0);
}

/// A replica of a project written before encryption (`tests/fixtures/pre-encryption`, by the
/// td of commit cf1004a): plaintext records, no epoch.
fn legacy_replica() -> Replica {
    let r = Replica::new();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pre-encryption");
    let todos = r.root.join(".todos");
    std::fs::create_dir_all(&todos).unwrap();
    for f in ["issues.db", "issues.db.writer"] {
        std::fs::copy(fixture.join(f), todos.join(f)).unwrap();
    }
    let keys = r.config.join("td");
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::copy(fixture.join("machine.key"), keys.join("machine.key")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            keys.join("machine.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
    }
    r
}

/// The bodies the hub serves for the project's rows.
fn served_bodies(hub: &Hub) -> Vec<Vec<u8>> {
    td_tests::hub::sql(
        hub.port,
        "SELECT body FROM td_changes ORDER BY seq",
        json!([]),
    )
    .iter()
    .map(|row| unb64(row[0]["base64"].as_str().unwrap_or_default()))
    .collect()
}

/// `td sync encrypt-hub` on a hub that holds an old project's plaintext: cut off after the
/// hub applied a batch it never acknowledged, then run again, every row is ciphertext once,
/// nothing is lost or doubled, a member admitted afterwards reads the whole history from the
/// wrapped rows, and a machine that is no member holds them without quarantining anything.
#[test]
fn an_old_plaintext_hub_is_rewritten_as_ciphertext_and_resumes_after_a_cut() {
    use td_tests::hub::{Fault, Proxy};
    let markers = ["LEGACYTITLE", "LEGACYDESC", "LEGACYCOMMENT", "LEGACYLOG"];
    let hub = Hub::start();
    let proxy = Proxy::start(hub.port);
    let a = legacy_replica();
    let before = a.export();
    assert!(
        before.contains("LEGACYTITLE7 before encryption"),
        "{before}"
    );
    assert!(encryption(&a)["current"].is_null(), "no epoch yet");
    assert_eq!(
        a.json(&["sync", "init", "--hub", &proxy.url()])["action"],
        "connected"
    );
    let plain = a.json(&["sync", "status"])["hub_plaintext_rows"]
        .as_i64()
        .unwrap();
    assert_eq!(
        plain, 36,
        "every content record of the old project is plaintext"
    );
    for m in markers {
        assert!(
            served_bodies(&hub).iter().any(|b| contains(b, m)),
            "the hub serves {m} in the clear before the rewrite"
        );
    }
    // Only admins rewrite the hub.
    let b = Replica::init();
    a.json(&["member", "add", &b.public_key()]);
    a.json(&["sync"]);
    assert_eq!(
        b.json(&["sync", "init", "--hub", &hub.url()])["action"],
        "joined"
    );
    let refused = b.run(&["sync", "encrypt-hub"]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(refused.stderr.contains("admin"), "{}", refused.stderr);
    // Cut off: the third batch reaches the hub, its answer never comes back, on every retry.
    proxy.inject_matching(
        "UPDATE td_changes SET body",
        2,
        Fault::Truncate,
        td_transport::hub::ATTEMPTS,
    );
    let cut = a.run(&["sync", "encrypt-hub", "--batch", "5"]);
    assert_eq!(cut.code, 1, "{}", cut.stderr);
    let mid = a.json(&["sync", "status"])["hub_plaintext_rows"]
        .as_i64()
        .unwrap();
    // Resumed: what is left, once.
    let done = a.json(&["sync", "encrypt-hub", "--batch", "5"]);
    // The founding roster record shares its signed run with the first issue's records
    // (written before encryption, in one transaction): those stay readable.
    let kept = done["kept_readable"].as_i64().unwrap();
    assert!((1..5).contains(&kept), "{done}");
    assert_eq!(done["plaintext_rows_left"], kept, "{done}");
    assert_eq!(done["skipped"], 0, "{done}");
    assert_eq!(
        mid,
        plain - 15 + kept,
        "three batches of five applied (the last unheard): {done}"
    );
    assert_eq!(done["encrypted"], mid - kept, "{done}");
    let again = a.json(&["sync", "encrypt-hub"]);
    assert_eq!(
        again["encrypted"], 0,
        "a third run has nothing to do: {again}"
    );
    let records = td_engine::export::log_stats(a.store().conn())
        .unwrap()
        .changes;
    assert_eq!(hub.change_rows(), records, "every record on the hub once");
    let bodies = served_bodies(&hub);
    for i in 2..=12 {
        for m in markers {
            let m = format!("{m}{i} ");
            assert!(
                !bodies.iter().any(|b| contains(b, &m)),
                "the hub still serves {m}"
            );
        }
    }
    // A member admitted after the rewrite reads the whole history from the wrapped rows.
    let c = Replica::init();
    a.json(&["member", "add", &c.public_key()]);
    a.json(&["sync"]);
    let joined = c.json(&["sync", "init", "--hub", &hub.url()]);
    assert_eq!(joined["action"], "joined", "{joined}");
    settle(&[&a, &b, &c], 2);
    let ea = a.export();
    assert!(ea.contains("LEGACYCOMMENT12 said in the clear"));
    assert!(ea == b.export(), "b converges");
    assert!(
        ea == c.export(),
        "c reads the old history from wrapped rows: {} {} {}",
        c.json(&["sync", "status"]),
        c.json(&["sync", "tail", "-n", "100"]),
        joined
    );
    // A machine that is no member holds the wrapped rows: nothing quarantined, nothing read.
    let d = Replica::init();
    let joined = d.json(&["sync", "init", "--hub", &hub.url()]);
    assert_eq!(joined["action"], "joined", "{joined}");
    let st = d.json(&["sync", "status"]);
    assert_eq!(
        st["quarantined"].as_array().map_or(0, |q| q.len()),
        0,
        "{st}"
    );
    let seen = d.export();
    for i in 2..=12 {
        let m = format!("LEGACYTITLE{i} ");
        assert!(!seen.contains(&m), "a stranger reads {m}");
    }
    assert!(
        d.json(&["sync", "status"])["waiting"]
            .as_array()
            .is_some_and(|w| !w.is_empty()),
        "the wrapped rows' writer waits for a key"
    );
}

/// A founder on `hub` with one issue titled `title`, and an invite code it made for the hub.
fn founder_with_invite(hub: &Hub, title: &str) -> (Replica, td_engine::invite::InviteCode) {
    let a = Replica::init();
    a.create(title, &[]);
    a.json(&["sync", "init", "--hub", &hub.url()]);
    let code = a.json(&["member", "invite", "--hub", &hub.url()])["code"]
        .as_str()
        .unwrap()
        .to_string();
    (a, td_engine::invite::InviteCode::decode(&code).unwrap())
}

/// An invite code carries the epoch keys, and the inviter's signed invite record names their
/// digest: a code whose keys were altered is refused before anything is written, and the true
/// code reads the whole history on joining.
#[test]
fn an_invite_code_with_altered_keys_is_refused_before_anything_is_written() {
    let hub = Hub::start();
    let (_a, code) = founder_with_invite(&hub, "Readable at once");
    let mut altered = code.clone();
    assert!(!altered.keys.is_empty(), "the code carries the epoch keys");
    for key in altered.keys.values_mut() {
        *key = "11".repeat(32);
    }
    let j = Replica::new();
    let refused = j.run(&["join", &altered.encode()]);
    assert_ne!(refused.code, 0, "{}", refused.stdout);
    assert!(refused.stderr.contains("altered"), "{}", refused.stderr);
    assert!(!j.db().exists(), "a refused code writes nothing");
    let joined = j.json(&["join", &code.encode()]);
    assert_eq!(joined["action"], "joined", "{joined}");
    let e = encryption(&j);
    assert_eq!(e["keys_unconfirmed"], 0, "{e}");
    assert_eq!(e["unreadable"], 0, "{e}");
    assert!(j.export().contains("Readable at once"));
}

/// A code from before invites signed their keys (made here by signing such an invite with the
/// admin's key), with wrong keys: they are only read with, so the records stay unreadable,
/// not lost, and the joiner never writes under them nor seals them to anyone (its own work
/// starts an epoch of its own). When the admin seals the real key to it, that key replaces the
/// wrong one and the unreadable records open.
#[test]
fn unsigned_invite_keys_are_read_with_only_until_a_sealed_key_replaces_them() {
    let hub = Hub::start();
    let (a, genuine) = founder_with_invite(&hub, "Readable once the right key arrives");
    let admin = a.identity();
    let secret = td_engine::MachineIdentity::generate();
    let expires = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let op = json!({"op": "invite", "id": secret.public_key_hex(), "role": "member", "name": "old-code", "expires": expires});
    let session = format!("ses_{}_invlegacy", admin.fingerprint());
    let record = td_tests::signed_record(
        &admin,
        &genuine.project,
        "roster",
        Some(&op.to_string()),
        &session,
    );
    let legacy = td_engine::invite::InviteCode {
        secret: hex::encode(secret.seed()),
        keys: genuine
            .keys
            .keys()
            .map(|e| (e.clone(), "11".repeat(32)))
            .collect(),
        record: base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &record.encoded),
        signature: hex::encode(record.signature),
        ..genuine
    };
    let j = Replica::new();
    let joined = j.json(&["join", &legacy.encode()]);
    assert_eq!(joined["action"], "joined", "{joined}");
    let e = encryption(&j);
    assert!(e["unreadable"].as_i64().unwrap() >= 1, "{e}");
    assert_eq!(e["keys_unconfirmed"], 1, "{e}");
    assert!(!j.export().contains("Readable once the right key arrives"));
    // Its own work is not sealed under the unconfirmed key: it starts an epoch of its own.
    j.create("Written before any key was confirmed", &[]);
    assert_eq!(encryption(&j)["epochs"], 2, "{}", encryption(&j));
    // a seals its epoch key to j (its upkeep after the pull); j's next pull opens the records.
    settle(&[&j, &a, &j], 1);
    let e = encryption(&j);
    assert_eq!(e["unreadable"], 0, "{e}");
    assert_eq!(e["keys_unconfirmed"], 0, "{e}");
    let ea = a.export();
    assert!(ea.contains("Written before any key was confirmed"));
    assert!(ea == j.export(), "j reads everything and a reads j");
}
