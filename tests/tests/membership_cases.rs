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

fn invite(r: &Replica, args: &[&str]) -> String {
    r.invite(args)
}

/// Invites: one line from an admin, `td join` on a fresh machine, through a real hub. Reused,
/// expired, forged, revoked codes and codes for a replica of another project are refused with
/// a clear error and change no member's database.
#[test]
fn invite_and_join_through_a_hub() {
    let hub = Hub::start();
    let a = Replica::init();
    a.create("Founding issue", &[]);
    a.json(&["sync", "init", "--hub", &hub.url()]);
    let code = invite(&a, &["--name", "ci-runner"]);
    assert!(code.starts_with("tdjoin1_") && !code.contains('\n'));
    // The human form prints just the code on stdout.
    let human = a.ok(&["member", "invite", "--expires", "1h"]);
    assert!(human.trim().starts_with("tdjoin1_"), "{human}");
    assert!(
        a.json(&["member", "list"])
            .to_string()
            .contains("ci-runner"),
        "pending invite listed"
    );

    // A fresh machine (no 'td init' yet) joins.
    let d = Replica::new();
    let v = d.json(&["join", &code]);
    assert_eq!(v["action"], "joined", "{v}");
    assert_eq!(v["role"], "member");
    assert!(d.export().contains("Founding issue"));
    d.create("Work of the newcomer", &[]);
    d.json(&["sync"]);
    a.json(&["sync"]);
    assert!(a.export().contains("Work of the newcomer"));
    assert_eq!(a.export(), d.export());
    let m = member(&a, &d.public_key()).expect("admitted on A");
    assert_eq!(
        (m["name"].as_str(), m["role"].as_str()),
        (Some("ci-runner"), Some("member"))
    );
    assert_eq!(m["added_by"], a.identity().fingerprint());

    // Reused: refused, and A's roster and tables do not change.
    let before = (a.export(), a.json(&["member", "list"]));
    let e = Replica::new();
    let r = e.run(&["join", &code, "--json"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("already used"), "{}", r.stdout);
    a.json(&["sync"]);
    assert_eq!((a.export(), a.json(&["member", "list"])), before);

    // Expired, forged, damaged: refused before anything is written (no database created).
    let short = invite(&a, &["--expires", "1s"]);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let f = Replica::new();
    let r = f.run(&["join", &short, "--json"]);
    assert!(r.stdout.contains("expired"), "{}", r.stdout);
    assert!(!f.db().exists(), "a refused invite writes nothing");
    let mut forged = td_engine::invite::InviteCode::decode(&invite(&a, &[])).unwrap();
    forged.secret = hex::encode([7u8; 32]);
    let r = f.run(&["join", &forged.encode(), "--json"]);
    assert!(r.stdout.contains("secret does not belong"), "{}", r.stdout);
    let mut forged = td_engine::invite::InviteCode::decode(&invite(&a, &[])).unwrap();
    forged.inviter = d.public_key();
    let r = f.run(&["join", &forged.encode(), "--json"]);
    assert!(r.stdout.contains("not made by the inviter"), "{}", r.stdout);
    let r = f.run(&["join", "tdjoin1_garbage!", "--json"]);
    assert!(r.stdout.contains("damaged"), "{}", r.stdout);
    assert!(!f.db().exists());

    // A replica with work of its own project is refused (nothing written there either).
    let other = Replica::init();
    other.create("Other project's work", &[]);
    let mine = other.export();
    let r = other.run(&["join", &invite(&a, &[]), "--json"]);
    assert!(
        r.stdout.contains("already has work of project"),
        "{}",
        r.stdout
    );
    assert_eq!(other.export(), mine);

    // Revoked: the join is refused everywhere.
    let revoked = invite(&a, &[]);
    let id = td_engine::invite::InviteCode::decode(&revoked).unwrap();
    let _ = id;
    let list = a.json(&["member", "list"]);
    let pending: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["invite"].as_str().map(str::to_string))
        .collect();
    for inv in &pending {
        a.json(&["member", "revoke-invite", inv]);
    }
    a.json(&["sync"]);
    let g = Replica::new();
    let r = g.run(&["join", &revoked, "--json"]);
    assert!(r.stdout.contains("revoked"), "{}", r.stdout);
    a.json(&["sync"]);
    assert!(member(&a, &g.public_key()).is_none());
}

/// Invites through a peer: the joining machine's first round carries its join to the serving
/// admin (which sends it nothing while it is not a member); the next brings the project.
#[test]
fn invite_and_join_through_a_peer() {
    let a = Replica::init();
    a.create("Founding issue", &[]);
    let sa = a.serve();
    let code = invite(
        &a,
        &["--peer", &sa.addr, "--role", "admin", "--name", "laptop-d"],
    );
    // A stranger with no invite is still refused by the server.
    let stranger = Replica::init();
    stranger.json(&["peer", "add", "a", &sa.addr, "--key", &a.public_key()]);
    let d = Replica::new();
    let v = d.json(&["join", &code]);
    assert_eq!(v["action"], "joined", "{v}");
    assert_eq!(v["role"], "admin");
    assert!(d.export().contains("Founding issue"));
    let m = member(&a, &d.public_key()).expect("admitted on A");
    assert_eq!(
        (m["name"].as_str(), m["role"].as_str()),
        (Some("laptop-d"), Some("admin"))
    );
    d.create("Written on D", &[]);
    // An admin by invite may admit others, and every replica accepts it.
    let e = Replica::init();
    d.json(&["member", "add", &e.public_key(), "--name", "added-by-d"]);
    let name = d.json(&["peer", "list"])[0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    peer_sync(&d, &name);
    assert_eq!(a.export(), d.export());
    let added = member(&a, &e.public_key()).expect("D's admission holds on A");
    assert_eq!(added["added_by"], d.identity().fingerprint());
    // No invite open any more: the stranger is refused before anything is exchanged.
    let r = stranger.run(&["peer", "sync", "a", "--json"]);
    assert!(r.stdout.contains("untrusted peer"), "{}", r.stdout);
    assert!(!stranger.export().contains("Founding issue"));
    sa.stop();
}

/// Case 10: the seeds' spelling (`td config set database.url`, then `td sync`) never splits a
/// hub: a fresh replica adopts the hub's project; a replica with another project is refused,
/// and `td sync status` / `td status --db` say why and what to do.
#[test]
fn case10_no_silent_second_project_on_a_hub() {
    let hub = Hub::start();
    let a = Replica::init();
    a.create("Team backlog item", &[]);
    // b is admitted first: what the team writes is sealed to its members (docs/encryption.md).
    let b = Replica::init();
    a.json(&["member", "add", &b.public_key()]);
    a.json(&["sync", "init", "--hub", &hub.url()]);
    b.json(&["config", "set", "database.url", &hub.url()]);
    b.json(&["sync"]);
    assert_eq!(
        project_of(&b),
        project_of(&a),
        "the fresh replica adopted the hub's project"
    );
    assert!(b.export().contains("Team backlog item"));

    let c = Replica::init();
    c.create("Solo work", &[]);
    c.json(&["config", "set", "database.url", &hub.url()]);
    let r = c.run(&["sync", "--json"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.contains("project mismatch") && r.stdout.contains("td join"),
        "{}",
        r.stdout
    );
    let projects = td_tests::hub::sql(
        hub.port,
        "SELECT DISTINCT project FROM td_changes",
        serde_json::json!([]),
    );
    assert_eq!(
        projects.len(),
        1,
        "the hub still holds one project: {projects:?}"
    );
    let st = c.json(&["sync", "status"]);
    assert!(
        st["warning"]
            .as_str()
            .unwrap_or("")
            .contains("second project"),
        "{st}"
    );
    assert!(c
        .ok(&["status", "--db"])
        .contains("WARNING: project mismatch"));
    assert!(a.json(&["sync", "status"])["warning"].is_null());
}

/// Case 8: two laptops that each ran `td init` and worked offline end up in one project:
/// `td join <code> --adopt` re-creates the joiner's work in the inviter's project. Both sides'
/// issues, logs and comments end on both, exports identical; the old log is kept.
#[test]
fn case8_two_offline_laptops_merge_with_adopt() {
    let hub = Hub::start();
    let a = Replica::init();
    let ia = a.create("Laptop A's issue", &["-l", "a"]);
    a.json(&["log", &ia, "progress on A"]);
    a.json(&["sync", "init", "--hub", &hub.url()]);
    let b = Replica::init();
    let ib = b.create("Laptop B's issue", &["-p", "P1"]);
    b.json(&["log", &ib, "progress on B"]);
    b.json(&["comment", &ib, "a comment written on B"]);
    let b_before = b.export();
    let code = invite(&a, &[]);
    // Without --adopt, the error names the option; nothing changes.
    let r = b.run(&["join", &code, "--json"]);
    assert!(r.stdout.contains("--adopt"), "{}", r.stdout);
    assert_eq!(b.export(), b_before);
    // --dry-run shows what would move and changes nothing.
    let dry = b.json(&["join", &code, "--adopt", "--dry-run"]);
    assert_eq!(dry["action"], "would_adopt", "{dry}");
    assert_eq!(dry["entities"]["issues"], 1);
    assert_eq!(b.export(), b_before);
    let v = b.json(&["join", &code, "--adopt"]);
    assert_eq!(v["action"], "joined", "{v}");
    // B's join is made on the epoch B started before it was admitted (its own roster record
    // is in the roster document it builds on): otherwise the order of B's seals and that
    // epoch would be left to their hashes, and a seal ordered first never counts.
    let mut roster = td_tests::doc_from_log(&b, "roster");
    let changes: Vec<automerge::Change> = roster.get_changes(&[]);
    let with = |op: &str| {
        changes
            .iter()
            .filter(|c| {
                c.message()
                    .is_some_and(|m| m.contains(&format!("\"op\":\"{op}\"")))
            })
            .cloned()
            .collect::<Vec<_>>()
    };
    let join = with("join").pop().expect("B's join");
    let after_join: Vec<automerge::ChangeHash> = roster
        .get_changes(join.deps())
        .into_iter()
        .map(|c| c.hash())
        .collect();
    for epoch in with("epoch") {
        assert!(
            !after_join.contains(&epoch.hash()),
            "epoch {} is not among the join's ancestors",
            epoch.hash()
        );
    }
    assert!(std::path::Path::new(v["adopted"]["old_database"].as_str().unwrap()).exists());
    b.json(&["sync"]);
    a.json(&["sync"]);
    let (ea, eb) = (a.export(), b.export());
    assert_eq!(ea, eb, "one project, identical exports");
    for text in [
        "Laptop A's issue",
        "progress on A",
        "Laptop B's issue",
        "progress on B",
        "a comment written on B",
    ] {
        assert!(ea.contains(text), "{text} missing");
    }
    assert!(ea.contains(&ib), "B's issue keeps its id");
}

/// Case 6: someone holding the hub token hides a removal row while a new machine joins, then
/// restores it. The joiner shows the removed machine's later work only until the removal
/// arrives; then it agrees with everyone else.
#[test]
fn case6_a_hidden_removal_takes_effect_when_it_arrives() {
    use serde_json::json;
    let hub = Hub::start();
    let a = Replica::init();
    a.create("Founding issue", &[]);
    a.json(&["sync", "init", "--hub", &hub.url()]);
    let b = Replica::init();
    let j = Replica::init();
    a.json(&["member", "add", &b.public_key()]);
    a.json(&["member", "add", &j.public_key()]);
    a.json(&["sync"]);
    b.json(&["sync", "init", "--hub", &hub.url()]);
    b.create("B before the removal", &[]);
    b.json(&["sync"]);
    a.json(&["sync"]);
    a.json(&["member", "remove", &b.public_key()]);
    a.json(&["sync"]);
    b.create("B after the removal", &[]);
    b.json(&["sync"]);
    // The token holder hides A's removal (A's newest row).
    let a_key = json!({"type": "blob", "base64": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, a.identity().public_key())});
    let newest_of_a = "(SELECT max(seq) FROM td_changes WHERE author = ?)";
    td_tests::hub::sql(hub.port, "CREATE TABLE stash (hash BLOB, project TEXT, actor BLOB, actor_seq INTEGER, author BLOB, body BLOB, signature BLOB, pushed_at TEXT)", json!([]));
    td_tests::hub::sql(hub.port, &format!("INSERT INTO stash SELECT hash, project, actor, actor_seq, author, body, signature, pushed_at FROM td_changes WHERE seq = {newest_of_a}"), json!([a_key.clone()]));
    td_tests::hub::sql(
        hub.port,
        &format!("DELETE FROM td_changes WHERE seq = {newest_of_a}"),
        json!([a_key]),
    );
    j.json(&["sync", "init", "--hub", &hub.url()]);
    assert!(
        j.export().contains("B after the removal"),
        "the removal is hidden from J"
    );
    // Restored (as a new row), it takes effect on J: B's later work is taken out.
    td_tests::hub::sql(hub.port, "INSERT INTO td_changes(hash, project, actor, actor_seq, author, body, signature, pushed_at) SELECT hash, project, actor, actor_seq, author, body, signature, pushed_at FROM stash", json!([]));
    j.json(&["sync"]);
    a.json(&["sync"]);
    let ej = j.export();
    assert!(!ej.contains("B after the removal") && ej.contains("B before the removal"));
    assert_eq!(ej, a.export(), "J and A agree");
    assert_eq!(member(&j, &b.public_key()).unwrap()["removed"], true);
}

/// `td sync init --adopt`: the same re-homing without an invite; the adopted work is held by
/// the team until an admin admits the machine, then everyone holds it.
#[test]
fn sync_init_adopt_rehomes_work_into_the_hubs_project() {
    let hub = Hub::start();
    let a = Replica::init();
    a.create("Team issue", &[]);
    a.json(&["sync", "init", "--hub", &hub.url()]);
    let b = Replica::init();
    b.create("Offline work on B", &[]);
    let v = b.json(&["sync", "init", "--hub", &hub.url(), "--adopt"]);
    assert_eq!(v["project"], project_of(&a), "{v}");
    a.json(&["sync"]);
    assert!(
        !a.export().contains("Offline work on B"),
        "held until admitted"
    );
    a.json(&["member", "add", &b.public_key()]);
    a.json(&["sync"]);
    b.json(&["sync"]);
    a.json(&["sync"]);
    assert!(a.export().contains("Offline work on B"));
    assert_eq!(a.export(), b.export());
}
