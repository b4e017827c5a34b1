//! The membership cases of issue 10, each driven through the real `td` binary (QUIC on
//! 127.0.0.1, a real hub), asserting the fixed outcome.

use serde_json::Value;
use td_engine::sync::SyncStore;
use td_tests::hub::Hub;
use td_tests::{signed_run, Replica};

fn peer_sync(r: &Replica, peer: &str) -> Value {
    let v = r.json(&["peer", "sync", peer]);
    assert!(v[0]["error"].is_null(), "sync failed: {v}");
    v
}

fn member(r: &Replica, key: &str) -> Option<Value> {
    r.json(&["member", "list"])
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["public_key"] == key)
        .cloned()
}

fn project_of(r: &Replica) -> String {
    r.store().project_id().unwrap()
}

/// Founder A and member B, synced over QUIC; A serves.
fn pair() -> (Replica, Replica, td_tests::Serving) {
    let a = Replica::init();
    a.create("Founding issue", &[]);
    let b = Replica::init();
    let sa = a.serve();
    a.befriend(&b, "a", &sa.addr);
    peer_sync(&b, "a");
    (a, b, sa)
}

/// Case 1: a document whose id merely starts with `roster` is no roster.
#[test]
fn case1_only_the_roster_document_is_the_roster() {
    let (a, b, sa) = pair();
    let kb = b.public_key();
    // B writes, around td's checks, a document `roster-x` that would make it an admin.
    let op = format!(r#"{{"op":"add","key":"{kb}","role":"admin","name":"b"}}"#);
    let session = format!("ses_{}_x", b.identity().fingerprint());
    let run = signed_run(
        &b.identity(),
        &project_of(&a),
        "roster-x",
        Some(&op),
        &session,
    );
    let report = a.store().apply(&[run]).unwrap();
    assert!(report.rejected.is_empty(), "{report:?}");
    assert_eq!(member(&a, &kb).unwrap()["role"], "member");
    // Removing B holds, also after a rebuild, and A's server refuses B from then on.
    assert_eq!(a.json(&["member", "remove", &kb])["action"], "removed");
    for _ in 0..2 {
        assert_eq!(member(&a, &kb).unwrap()["removed"], true);
        a.json(&["rebuild"]);
    }
    let r = b.run(&["peer", "sync", "a", "--json"]);
    assert!(
        r.stdout.contains("not a member"),
        "{} {}",
        r.stdout,
        r.stderr
    );
    sa.stop();
}

/// Case 2: only admins change the roster, and the last admin stays.
#[test]
fn case2_members_cannot_change_the_roster() {
    let (a, b, sa) = pair();
    let ka = a.public_key();
    let c = Replica::init();
    for args in [
        vec!["member", "remove", ka.as_str()],
        vec!["member", "add", &c.public_key()],
        vec!["member", "role", ka.as_str(), "member"],
    ] {
        let mut args = args.clone();
        args.push("--json");
        let r = b.run(&args);
        assert_eq!(r.code, 1, "{args:?}");
        assert!(r.stdout.contains("only admins"), "{}", r.stdout);
    }
    let r = a.run(&["member", "remove", &ka, "--json"]);
    assert!(r.stdout.contains("last admin"), "{}", r.stdout);
    // An admin may promote B; then B may add C.
    a.json(&["member", "role", &b.public_key(), "admin"]);
    peer_sync(&b, "a");
    assert_eq!(
        b.json(&["member", "add", &c.public_key()])["action"],
        "added"
    );
    assert_eq!(
        member(&b, &c.public_key()).unwrap()["added_by"],
        b.identity().fingerprint()
    );
    sa.stop();
}

/// Case 3: an admin removed while apart keeps writing and admits an accomplice; every replica
/// agrees on the removal and refuses what it did after the cut-off, whatever reached whom first.
#[test]
fn case3_removal_does_not_depend_on_arrival_order() {
    let a = Replica::init();
    a.create("Founding issue", &[]);
    let b = Replica::init();
    let c = Replica::init();
    let m = Replica::init();
    let sa = a.serve();
    a.befriend(&b, "a", &sa.addr);
    a.befriend(&c, "a", &sa.addr);
    a.json(&["member", "role", &b.public_key(), "admin"]);
    peer_sync(&b, "a");
    peer_sync(&c, "a");
    let sb = b.serve();
    c.json(&["peer", "add", "b", &sb.addr, "--key", &b.public_key()]);
    b.create("B before the removal", &[]);
    peer_sync(&b, "a"); // A holds it: it is inside the cut-off of A's removal of B
    peer_sync(&c, "b");
    // Apart: A removes B; B writes more and admits M.
    a.json(&["member", "remove", &b.public_key()]);
    b.create("B after the removal", &[]);
    b.create("B after, never seen by A", &[]);
    b.json(&["member", "add", &m.public_key(), "--role", "admin"]);
    // C meets B first (B's late work arrives), then A (the removal arrives).
    peer_sync(&c, "b");
    assert!(c.export().contains("B after the removal"));
    peer_sync(&c, "a");
    peer_sync(&c, "a");
    let (ea, ec) = (a.export(), c.export());
    assert_eq!(ea, ec, "A and C agree");
    assert!(
        ea.contains("B before the removal"),
        "work up to the cut-off stays"
    );
    assert!(
        !ea.contains("B after the removal"),
        "work after the cut-off is refused"
    );
    for r in [&a, &c] {
        assert_eq!(member(r, &b.public_key()).unwrap()["removed"], true);
        assert!(
            member(r, &m.public_key()).is_none(),
            "the accomplice is not admitted"
        );
        let held = r.json(&["sync", "status"])["held"].clone();
        assert!(held.to_string().contains("cut-off"), "{held}");
    }
    // Both ends now refuse B: C sends nothing to it, A's server refuses it.
    let r = c.run(&["peer", "sync", "b", "--json"]);
    assert!(
        r.stdout.contains("not a member") && r.stdout.contains("nothing was sent"),
        "{}",
        r.stdout
    );
    let r = b.run(&["peer", "sync", "a", "--json"]);
    assert!(r.stdout.contains("not a member"), "{}", r.stdout);
    sb.stop();
    sa.stop();
}

/// Case 5: a teammate's work that reaches the hub before its admission is held, then applied
/// on every replica once the admission arrives.
#[test]
fn case5_work_before_admission_is_held_then_applied() {
    let hub = Hub::start();
    let a = Replica::init();
    a.create("Founding issue", &[]);
    a.json(&["sync", "init", "--hub", &hub.url()]);
    let c = Replica::init();
    a.json(&["member", "add", &c.public_key()]);
    a.json(&["sync"]);
    c.json(&["sync", "init", "--hub", &hub.url()]);
    // D joins the hub and works before anyone admitted it.
    let d = Replica::init();
    d.json(&["sync", "init", "--hub", &hub.url()]);
    d.create("Newcomer's early work", &[]);
    d.json(&["sync"]);
    c.json(&["sync"]);
    assert!(
        !c.export().contains("Newcomer's early work"),
        "held until admitted"
    );
    let held = c.json(&["sync", "status"])["held"].clone();
    assert_eq!(held[0]["public_key"], d.public_key(), "{held}");
    // A admits D; after everyone syncs twice, every replica holds D's work.
    a.json(&["member", "add", &d.public_key(), "--name", "newcomer"]);
    for _ in 0..2 {
        for r in [&a, &c, &d] {
            r.json(&["sync"]);
        }
    }
    let ea = a.export();
    assert!(ea.contains("Newcomer's early work"));
    assert_eq!(ea, c.export());
    assert_eq!(ea, d.export());
    assert_eq!(c.json(&["sync", "status"])["held"], serde_json::json!([]));
}

/// Case 7: `td peer add` is the address book only, on a fresh replica and on one with changes.
#[test]
fn case7_peer_add_admits_nobody() {
    let a = Replica::init();
    let x = Replica::init();
    a.json(&["peer", "add", "x", "127.0.0.1:9", "--key", &x.public_key()]);
    a.create("Some work", &[]);
    let y = Replica::init();
    a.json(&["peer", "add", "y", "127.0.0.1:9", "--key", &y.public_key()]);
    assert!(member(&a, &x.public_key()).is_none());
    assert!(member(&a, &y.public_key()).is_none());
    let help = a.ok(&["peer", "add", "--help"]);
    assert!(
        help.contains("admits nobody") && help.contains("td member add"),
        "{help}"
    );
}

/// Case 9: a session id naming another machine is refused, locally and on receipt.
#[test]
fn case9_session_ids_cannot_name_another_machine() {
    let (a, b, sa) = pair();
    let other = a.identity().fingerprint();
    let r = b.run_as(
        &format!("ses_{other}_x"),
        &["create", "Pretending to be A", "--json"],
    );
    assert_eq!(r.code, 1);
    assert_eq!(r.error_code(), "invalid_input");
    assert!(r.stdout.contains("names machine"), "{}", r.stdout);
    // Written around that check, such a record is refused with its reason.
    let run = signed_run(
        &b.identity(),
        &project_of(&a),
        "td-f00001",
        None,
        &format!("ses_{other}_x"),
    );
    let report = a.store().apply(&[run]).unwrap();
    assert!(
        report.rejected.iter().any(|r| r.contains("names machine")),
        "{report:?}"
    );
    assert!(!a.export().contains("td-f00001"));
    sa.stop();
}
