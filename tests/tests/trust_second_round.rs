//! The second security review's findings (issue 25), each driven through the real `td`
//! binary: a stranger's roster records, a hostile page against `td serve`, a query that would
//! overflow the stack, a session id carrying terminal escapes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;
use td_engine::MachineIdentity;
use td_tests::hub::{founder_on, joined};
use td_tests::{plant_in_log, Replica, WebServer};

fn member_keys(r: &Replica) -> Vec<String> {
    let mut keys: Vec<String> = r
        .json(&["member", "list"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["removed"] != true)
        // Open invites are listed too, without a key.
        .filter_map(|m| m["public_key"].as_str().map(str::to_string))
        .collect();
    keys.sort();
    keys
}

/// A chain of `n` roster records signed by a machine nobody admitted, each an operation that
/// would make some fresh key an admin: what a stranger with the hub token can write.
fn stranger_chain(project: &str, n: usize) -> td_engine::sync::WireRun {
    let key = hex::encode(MachineIdentity::generate().public_key());
    let ops: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"op":"add","key":"{key}","role":"admin","name":"x{i}"}}"#))
        .collect();
    td_tests::stranger_roster_run(project, &ops)
}

/// Finding 1: thousands of roster records by strangers, relayed by a member to the founder,
/// change nothing the replicas show or accept: a member added afterwards is admitted on both,
/// and one stranger's flood is cut at the per-machine bound.
#[test]
fn strangers_roster_records_change_nothing() {
    let a = Replica::init();
    a.create("Founding issue", &[]);
    let b = Replica::init();
    let sa = a.serve();
    a.befriend(&b, "a", &sa.addr);
    assert!(b.json(&["peer", "sync", "a"])[0]["error"].is_null());
    let project = a.store().project_id().unwrap();
    // 300 strangers with 15 records each (under the per-machine bound of 16, but 4,500 together:
    // beyond the bound on all of them, 1,024), and one with 40 (beyond the per-machine bound).
    // B relays them as they are (planted, around its own checks).
    let mut flood = Vec::new();
    for _ in 0..300 {
        flood.push(stranger_chain(&project, 15));
    }
    let greedy = stranger_chain(&project, 40);
    for run in flood.iter().chain([&greedy]) {
        plant_in_log(&b.db(), run, &project);
    }
    let out = b.run(&["peer", "sync", "a", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let c = Replica::init();
    a.json(&["member", "add", &c.public_key(), "--name", "c"]);
    assert!(b.json(&["peer", "sync", "a"])[0]["error"].is_null());
    let mut expected = vec![a.public_key(), b.public_key(), c.public_key()];
    expected.sort();
    assert_eq!(member_keys(&a), expected, "the founder's roster");
    assert_eq!(member_keys(&b), expected, "the member's roster");
    // The greedy stranger's records beyond the bound were refused, not stored.
    let stored: i64 = rusqlite::Connection::open(a.db())
        .unwrap()
        .query_row(
            "SELECT count(*) FROM crdt_changes WHERE author = ?1",
            [&greedy.author[..]],
            |r| r.get(0),
        )
        .unwrap();
    // Its run of 40 went beyond the bound: refused whole (a stored prefix would lack the
    // signature that vouches for it).
    assert_eq!(stored, 0);
    // td doctor says what it holds of them.
    let doctor = a.json(&["doctor"]);
    let roster_check = doctor["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "roster")
        .expect("a roster check")
        .to_string();
    // Strangers' records stop at the bound on all of them together: whole runs of 15 up to
    // 1,024 records (68 runs), the rest refused and not stored.
    let strangers: i64 = rusqlite::Connection::open(a.db())
        .unwrap()
        .query_row(
            "SELECT count(*) FROM crdt_roster_ops r JOIN crdt_changes c ON c.id = r.id WHERE c.author NOT IN (?1, ?2)",
            [
                hex::decode(a.public_key()).unwrap(),
                hex::decode(b.public_key()).unwrap(),
            ],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        strangers as u64,
        (td_engine::authority::MAX_UNADMITTED_ROSTER_TOTAL / 15) * 15
    );
    assert!(
        roster_check.contains(&format!("{strangers} by machines nobody admitted")),
        "{roster_check}"
    );
    // The founder still writes under an epoch its member reads: work flows both ways.
    let id = a.create("Written after the flood", &[]);
    assert!(b.json(&["peer", "sync", "a"])[0]["error"].is_null());
    assert_eq!(b.json(&["show", &id])["title"], "Written after the flood");
    sa.stop();
}

/// One raw HTTP/1.1 request; returns (status, body).
fn http(addr: &str, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

fn serve(r: &Replica) -> WebServer {
    WebServer::spawn(r.command(None, &["serve", "-p", "0"]))
}

/// Finding 2: `td serve` answers only to its own name, and takes writes only as JSON from its
/// own origin: DNS rebinding reads nothing, a form or a no-cors fetch writes nothing.
#[test]
fn serve_refuses_foreign_hosts_and_cross_origin_writes() {
    let r = Replica::init();
    let id = r.create("A secret title", &[]);
    let web = serve(&r);
    let addr = format!("127.0.0.1:{}", web.port);
    let port = addr.rsplit(':').next().unwrap();
    // DNS rebinding: a page of evil.example resolved to 127.0.0.1.
    let (status, body) = http(
        &addr,
        &format!(
            "GET /v1/issues HTTP/1.1\r\nHost: evil.example:{port}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(status, 421, "{body}");
    assert!(!body.contains("A secret title"), "{body}");
    // Its own name is served (also as localhost).
    for host in [addr.clone(), format!("localhost:{port}")] {
        let (status, body) = http(
            &addr,
            &format!("GET /v1/issues HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        );
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("A secret title"));
    }
    let write = |headers: &str, body: &str| {
        http(
            &addr,
            &format!(
                "POST /v1/issues/{id}/comments HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
        )
    };
    let text = r#"{"text":"written by a page"}"#;
    // A no-cors fetch of another origin: text/plain, and an Origin that is not ours.
    let (s1, _) = write(
        "Origin: http://evil.example\r\nContent-Type: text/plain\r\n",
        text,
    );
    let (s2, _) = write(
        "Origin: http://evil.example\r\nContent-Type: application/json\r\n",
        text,
    );
    let (s3, _) = write("Content-Type: text/plain\r\n", text);
    let (s4, _) = write(
        "Sec-Fetch-Site: cross-site\r\nContent-Type: application/json\r\n",
        text,
    );
    assert_eq!((s1, s2, s3, s4), (403, 403, 415, 403));
    assert_eq!(r.json(&["comments", &id]).as_array().unwrap().len(), 0);
    // The server's own page (and a script without a browser) writes as JSON.
    let (s5, b5) = write(
        &format!("Origin: http://{addr}\r\nContent-Type: application/json\r\n"),
        text,
    );
    assert_eq!(s5, 201, "{b5}");
    let (s6, b6) = write("Content-Type: application/json; charset=utf-8\r\n", text);
    assert_eq!(s6, 201, "{b6}");
    assert_eq!(r.json(&["comments", &id]).as_array().unwrap().len(), 2);
    drop(web);
}

/// Finding 2, in a real browser: a page of another origin posts to `td serve` as a hostile
/// page would (a form-like no-cors fetch, and a JSON fetch that needs CORS) and tries to read
/// the issues; nothing is written and nothing is read.
#[test]
fn a_page_of_another_origin_neither_writes_nor_reads() {
    let r = Replica::init();
    let id = r.create("A secret title", &[]);
    let web = serve(&r);
    let target = format!("http://127.0.0.1:{}", web.port);
    // The hostile page, served from another port (another origin).
    let page = format!(
        r#"<!doctype html><script>
window.done = (async () => {{
  const out = {{}};
  try {{ await fetch("{target}/v1/issues/{id}/comments", {{method: "POST", mode: "no-cors",
        headers: {{"Content-Type": "text/plain"}}, body: JSON.stringify({{text: "no-cors"}})}}); out.nocors = "sent"; }}
  catch (e) {{ out.nocors = "error"; }}
  try {{ await fetch("{target}/v1/issues/{id}/approve", {{method: "POST", mode: "no-cors"}}); out.approve = "sent"; }}
  catch (e) {{ out.approve = "error"; }}
  try {{ const r = await fetch("{target}/v1/issues/{id}/comments", {{method: "POST",
        headers: {{"Content-Type": "application/json"}}, body: JSON.stringify({{text: "cors"}})}});
        out.cors = r.status; }}
  catch (e) {{ out.cors = "blocked"; }}
  try {{ const r = await fetch("{target}/v1/issues"); out.read = await r.text(); }}
  catch (e) {{ out.read = "blocked"; }}
  return JSON.stringify(out);
}})();
</script>"#
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let evil = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut conn = conn;
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                page.len(),
                page
            );
        }
    });
    let mut browser = td_tests::browser::Browser::open(&evil);
    browser.wait_for("typeof window.done !== 'undefined'", 30);
    let result = browser.eval("window.done");
    let result: Value = serde_json::from_str(result.as_str().unwrap_or("{}")).unwrap();
    assert_eq!(result["read"], "blocked", "{result}");
    assert_ne!(result["cors"], 201, "{result}");
    assert_eq!(r.json(&["comments", &id]).as_array().unwrap().len(), 0);
    assert_eq!(r.json(&["show", &id])["status"], "open", "not approved");
    drop(web);
}

/// Finding 8: a query of ten thousand `!` is refused with a reason; the server goes on.
#[test]
fn a_deeply_nested_query_is_refused_and_the_server_survives() {
    let r = Replica::init();
    r.create("Still here", &[]);
    let deep = "!".repeat(9_990) + "status = open";
    let out = r.run(&["query", &deep, "--json"]);
    assert_eq!(out.error_code(), "invalid_input", "{out:?}");
    let long_and = vec!["title ~ x"; 1_200].join(" AND ");
    let out = r.run(&["query", &long_and, "--json"]);
    assert_eq!(out.code, 1, "{out:?}");
    let web = serve(&r);
    let addr = format!("127.0.0.1:{}", web.port);
    let q: String = deep.replace(' ', "%20").replace('=', "%3D");
    let (status, body) = http(
        &addr,
        &format!("GET /v1/issues?search={q}&search_mode=tdq HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = http(
        &addr,
        &format!("GET /v1/issues HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Still here"));
    drop(web);
}

/// Finding 9: a session id with terminal escapes is refused on arrival (and locally), so no
/// warning or list ever prints it.
#[test]
fn session_ids_with_control_characters_are_refused() {
    let a = Replica::init();
    let b = Replica::init();
    let sa = a.serve();
    a.befriend(&b, "a", &sa.addr);
    let id = a.create("Target", &[]);
    assert!(b.json(&["peer", "sync", "a"])[0]["error"].is_null());
    // Locally: refused before anything is written.
    let evil = format!("ses_{}_\u{1b}]52;c;aGk=\u{7}", b.identity().fingerprint());
    let out = b.run_as(&evil, &["log", &id, "hello", "--json"]);
    assert_eq!(out.error_code(), "invalid_input", "{out:?}");
    // On arrival: B's record under such a session (written around td's checks) is refused.
    let project = a.store().project_id().unwrap();
    let run = td_tests::signed_run(&b.identity(), &project, &id, None, &evil);
    let report = td_engine::sync::SyncStore::apply(&mut a.store(), &[run]).unwrap();
    assert_eq!(report.rejected.len(), 1, "{report:?}");
    assert!(report.rejected[0].contains("control"), "{report:?}");
    sa.stop();
}

/// Finding 3: removing an admin withdraws its invites. A join through one made after the
/// removal reached the joiner is refused; one made concurrently (the joiner had not seen the
/// removal) is refused too once they meet, on every replica.
#[test]
fn removing_an_admin_withdraws_its_invites() {
    let hub = td_tests::hub::Hub::start();
    let a = founder_on(&hub, "Founding issue");
    let b = joined(&a, &["--role", "admin", "--name", "b"], "admin");
    // B, an admin, invites two machines; then A removes B.
    let seen = b.invite(&[]);
    let concurrent = b.invite(&[]);
    b.json(&["sync"]);
    a.json(&["sync"]);
    a.json(&["member", "remove", &b.public_key()]);
    // Concurrent: D joins before A's removal reaches the hub.
    let d = Replica::new();
    assert_eq!(d.json(&["join", &concurrent])["action"], "joined");
    a.json(&["sync"]);
    // After: C's join is refused outright.
    let c = Replica::new();
    let out = c.run(&["join", &seen, "--json"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("revoked"), "{}", out.stdout);
    d.json(&["sync"]);
    a.json(&["sync"]);
    for r in [&a, &d] {
        let keys = member_keys(r);
        assert!(!keys.contains(&d.public_key()), "D admitted: {keys:?}");
        assert!(!keys.contains(&c.public_key()), "C admitted: {keys:?}");
        assert!(keys.contains(&a.public_key()));
    }
}

/// The bound on a stranger's roster records never catches those who hold authority: a fresh
/// replica's first pull brings an admin's many roster records (here 20 invites) before that
/// admin is a member there; they count as admitted by the founder's operations stored earlier
/// in the same pull, and the newcomer's roster matches everyone's.
#[test]
fn an_admins_many_roster_records_reach_a_newcomer_whole() {
    let hub = td_tests::hub::Hub::start();
    let a = founder_on(&hub, "Founding issue");
    let b = joined(&a, &["--role", "admin", "--name", "b"], "admin");
    for i in 0..20 {
        b.invite(&["--name", &format!("later-{i}")]);
    }
    b.json(&["sync"]);
    let d = joined(&a, &[], "member");
    d.json(&["sync"]);
    a.json(&["sync"]);
    let list = |r: &Replica| {
        let mut v: Vec<String> = r
            .json(&["member", "list"])
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.to_string())
            .collect();
        v.sort();
        v
    };
    let on_d = list(&d);
    assert_eq!(
        on_d.iter().filter(|m| m.contains("later-")).count(),
        20,
        "B's invites on the newcomer"
    );
    assert_eq!(on_d, list(&a), "one roster");
}

/// The epochs of the records `r` wrote on documents other than the roster after log position
/// `after` (every content record is sealed once a project has an epoch).
fn epochs_written_after(r: &Replica, after: i64) -> Vec<String> {
    let conn = rusqlite::Connection::open(r.db()).unwrap();
    let mut stmt = conn
        .prepare("SELECT body FROM crdt_changes WHERE id > ?1 AND doc_id != 'roster'")
        .unwrap();
    let bodies: Vec<Vec<u8>> = stmt
        .query_map([after], |row| row.get(0))
        .unwrap()
        .map(|b| b.unwrap())
        .collect();
    bodies
        .iter()
        .map(|b| {
            let rec: td_engine::record::RecordBody = postcard::from_bytes(b).unwrap();
            hex::encode(td_engine::sealing::record_epoch(&rec.change).expect("a sealed record"))
        })
        .collect()
}

fn last_position(r: &Replica) -> i64 {
    rusqlite::Connection::open(r.db())
        .unwrap()
        .query_row("SELECT max(id) FROM crdt_changes", [], |row| row.get(0))
        .unwrap()
}

/// Finding 7: revoking an invite, or its expiry, rotates the content key, so whoever holds
/// the code (and reads the hub) can decrypt nothing written afterwards.
#[test]
fn revoked_or_expired_codes_read_nothing_written_after() {
    let hub = td_tests::hub::Hub::start();
    let a = founder_on(&hub, "Before any invite");
    let revoked = a.invite(&["--name", "leaked"]);
    let expiring = a.invite(&["--expires", "1s", "--name", "slow"]);
    let carried = |code: &str| -> Vec<String> {
        td_engine::invite::InviteCode::decode(code)
            .unwrap()
            .keys
            .keys()
            .cloned()
            .collect()
    };
    let leaked_keys = carried(&revoked);
    assert!(
        !leaked_keys.is_empty(),
        "a code carries the current epoch's key"
    );
    // Written while both codes are live: under a key both carry.
    let mark = last_position(&a);
    a.create("While the codes are live", &[]);
    for e in epochs_written_after(&a, mark) {
        assert!(leaked_keys.contains(&e), "{e} {leaked_keys:?}");
    }
    // Revoked: the next write is under an epoch the code lacks.
    let inv = a
        .json(&["member", "list"])
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "leaked" && m["pending"] == true)
        .and_then(|m| m["invite"].as_str().map(String::from))
        .expect("the pending invite");
    a.json(&["member", "revoke-invite", &inv]);
    let mark = last_position(&a);
    a.create("After the revocation", &[]);
    let after_revoke = epochs_written_after(&a, mark);
    assert!(!after_revoke.is_empty());
    for e in &after_revoke {
        assert!(
            !leaked_keys.contains(e),
            "written under a key the revoked code carries"
        );
    }
    // Expired: likewise, once its time has passed.
    let slow_keys = carried(&expiring);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let mark = last_position(&a);
    a.create("After the expiry", &[]);
    for e in epochs_written_after(&a, mark) {
        assert!(
            !slow_keys.contains(&e),
            "written under a key the expired code carries"
        );
        assert!(!leaked_keys.contains(&e));
    }
    // A member still reads everything.
    let b = joined(&a, &[], "member");
    b.json(&["sync"]);
    for t in [
        "Before any invite",
        "While the codes are live",
        "After the revocation",
        "After the expiry",
    ] {
        assert!(b.export().contains(t), "{t} unreadable to a member");
    }
}

/// Finding 4: a member cannot make a teammate's work unreadable by sealing it a key that is
/// not the epoch's. The epoch commits to its key; the victim refuses the wrong copy and names
/// its sealer; a member holding the right key seals it again; both read each other's work.
#[test]
fn a_wrong_key_sealed_to_a_member_is_refused_and_replaced() {
    use td_engine::sealing;
    let hub = td_tests::hub::Hub::start();
    let a = founder_on(&hub, "Founding issue");
    let b = joined(&a, &[], "member");
    let v = joined(&a, &[], "member");
    for r in [&a, &b, &v, &a, &b, &v] {
        r.json(&["sync"]);
    }
    // B, a member, writes around td's checks an epoch whose key it seals to A and itself, and
    // a different key to V, committing to the first.
    let project = a.store().project_id().unwrap();
    let (id, key) = sealing::new_epoch();
    let (_, wrong) = sealing::new_epoch();
    let seal_to = |r: &Replica, k: &[u8; 32]| {
        let pk = r.identity().public_key();
        let enc = sealing::encryption_key_of(&pk).unwrap();
        hex::encode(sealing::seal_key(k, &id, &project, &pk, &enc))
    };
    let op = serde_json::json!({
        "op": "epoch",
        "id": hex::encode(id),
        "removed": [],
        "seals": {
            a.public_key(): seal_to(&a, &key),
            b.public_key(): seal_to(&b, &key),
            v.public_key(): seal_to(&v, &wrong),
        },
        "commit": hex::encode(sealing::key_commitment(&project, &id, &key)),
    });
    let session = format!("ses_{}_evil00", b.identity().fingerprint());
    let run = td_tests::signed_run(
        &b.identity(),
        &project,
        "roster",
        Some(&op.to_string()),
        &session,
    );
    let report = td_engine::sync::SyncStore::apply(&mut b.store(), &[run]).unwrap();
    assert!(report.rejected.is_empty(), "{report:?}");
    // Everyone meets a few times (refusal, new seal, and their work travel).
    for _ in 0..2 {
        for r in [&b, &v, &a] {
            r.json(&["sync"]);
        }
    }
    let status = v.json(&["sync", "status"]);
    let refused = status["encryption"]["refused_seals"].to_string();
    assert!(refused.contains(&b.identity().fingerprint()), "{status}");
    let from_v = v.create("Written by the victim", &[]);
    let from_a = a.create("Written by the founder", &[]);
    for _ in 0..2 {
        for r in [&v, &a] {
            r.json(&["sync"]);
        }
    }
    assert_eq!(a.json(&["show", &from_v])["title"], "Written by the victim");
    assert_eq!(
        v.json(&["show", &from_a])["title"],
        "Written by the founder"
    );
    for r in [&a, &v] {
        let enc = &r.json(&["sync", "status"])["encryption"];
        assert_eq!(enc["unreadable"], 0, "{enc}");
        assert_eq!(enc["waiting_for_key"], 0, "{enc}");
    }
}

/// The hub's highest row (sequence), read from the hub itself.
fn hub_max(hub: &td_tests::hub::Hub) -> i64 {
    let rows = td_tests::hub::sql(
        hub.port,
        "SELECT coalesce(max(seq), 0) FROM td_changes",
        serde_json::json!([]),
    );
    rows[0][0]["value"].as_str().unwrap().parse().unwrap()
}

/// Finding 5: a hub that loses its newest rows (restored from an older backup, rolled back)
/// and then numbers new rows where a member had read already, or loses one row below every
/// cursor, is noticed: the member pushes again what the hub lost, reads again from the start,
/// says so in `td sync status`, and a machine joining afterwards gets everything. Nobody
/// waits forever.
#[test]
fn a_hub_that_loses_rows_is_healed_by_its_members() {
    let hub = td_tests::hub::Hub::start();
    let a = founder_on(&hub, "First issue");
    let b = joined(&a, &[], "member");
    a.json(&["sync"]);
    b.json(&["sync"]);
    let backup = hub_max(&hub);
    // A writes and syncs; B does not read it yet.
    let second = a.create("Second issue", &[]);
    a.json(&["sync"]);
    // The hub goes back to its backup: A's newest rows are gone, on the hub only.
    td_tests::hub::sql(
        hub.port,
        "DELETE FROM td_changes WHERE seq > ?1",
        serde_json::json!([{"type": "integer", "value": backup.to_string()}]),
    );
    // B writes: its rows are numbered where A had read already.
    let third = b.create("Third issue", &[]);
    b.json(&["sync"]);
    a.json(&["sync"]);
    let status = a.json(&["sync", "status"]);
    assert!(
        status["hub_anomaly"]["found"]
            .as_str()
            .is_some_and(|f| f.contains("rolled back")),
        "{status}"
    );
    assert_eq!(a.json(&["show", &third])["title"], "Third issue");
    b.json(&["sync"]);
    assert_eq!(b.json(&["show", &second])["title"], "Second issue");
    // One row deleted below everyone's cursor: noticed by the count, pushed again.
    let before = hub.change_rows();
    td_tests::hub::sql(
        hub.port,
        "DELETE FROM td_changes WHERE seq = (SELECT min(seq) FROM td_changes)",
        serde_json::json!([]),
    );
    assert_eq!(hub.change_rows(), before - 1);
    a.json(&["sync"]);
    let status = a.json(&["sync", "status"]);
    assert!(
        status["hub_anomaly"]["found"]
            .as_str()
            .is_some_and(|f| f.contains("lost")),
        "{status}"
    );
    assert_eq!(
        hub.change_rows(),
        before,
        "the lost row is on the hub again"
    );
    // A newcomer gets everything, and all three agree.
    let c = joined(&a, &[], "member");
    for r in [&c, &a, &b, &c] {
        r.json(&["sync"]);
    }
    assert_eq!(c.json(&["show", &second])["title"], "Second issue");
    assert_eq!(a.export(), b.export());
    assert_eq!(a.export(), c.export());
}

/// Finding 10 (claims): a claim stamped in the future by another machine's clock is judged by
/// when this replica received it, so `td unstart --stale` releases it once that is long ago.
#[test]
fn a_claim_stamped_in_the_future_goes_stale_by_arrival() {
    let a = Replica::init();
    let b = Replica::init();
    let sa = a.serve();
    a.befriend(&b, "a", &sa.addr);
    let id = a.create("Claimed from a fast clock", &[]);
    assert!(b.json(&["peer", "sync", "a"])[0]["error"].is_null());
    b.json(&["start", &id]);
    // B's clock is years ahead: its last word on the issue says 2031.
    {
        let mut store = b.store();
        store
            .write(
                &format!("ses_{}_fa57c1", b.identity().fingerprint()),
                |tx| {
                    tx.change(&id, |d| {
                        td_engine::doc::put_str(d, "updated_at", "2031-01-01 00:00:00.000000+00:00")
                    })
                },
            )
            .unwrap();
    }
    assert!(b.json(&["peer", "sync", "a"])[0]["error"].is_null());
    assert_eq!(
        a.json(&["show", &id])["updated_at"],
        "2031-01-01T00:00:00Z",
        "the fast clock's stamp arrived"
    );
    std::thread::sleep(std::time::Duration::from_millis(3500));
    let swept = a.json(&["unstart", "--stale", "2s", "--force"]);
    assert!(
        swept.to_string().contains(&id),
        "the future claim was not released: {swept}"
    );
    assert_eq!(a.json(&["show", &id])["status"], "open");
    sa.stop();
}

/// libfaketime, from Debian's `faketime` (installed when missing): a process under it reads a
/// clock `offset` away from the true one (`-2h`), its monotonic clock untouched.
fn fake_clock(cmd: &mut std::process::Command, offset: &str) {
    let lib = td_tests::libfaketime("a joiner whose clock is set back");
    cmd.env("LD_PRELOAD", lib)
        .env("FAKETIME", offset)
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
}

/// Finding 10 (expiry): an invite that has expired admits no one at the machine that admits
/// joiners, whatever the joiner's clock says. The invite is made by a clock two hours behind,
/// for one hour: it expired an hour ago by every true clock. A joiner with the same slow clock
/// passes its own check and claims a time before the expiry; `td peer serve` (a true clock)
/// refuses the join with the reason, `td join` says so, and the roster never holds it. A live
/// invite on the same server still admits.
#[test]
fn an_expired_invite_admits_no_one_whatever_the_joiners_clock() {
    let a = Replica::init();
    a.create("Founding issue", &[]);
    let sa = a.serve();
    let mut invite = a.command(
        None,
        &[
            "member",
            "invite",
            "--peer",
            &sa.addr,
            "--expires",
            "1h",
            "--json",
        ],
    );
    fake_clock(&mut invite, "-2h");
    let out = invite.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let code: Value = serde_json::from_slice(&out.stdout).unwrap();
    let code = code["code"].as_str().unwrap().to_string();
    // A live invite keeps the server open to machines that are not members yet.
    let live = a.invite(&["--peer", &sa.addr]);
    let late = Replica::new();
    let mut join = late.command(None, &["join", &code]);
    fake_clock(&mut join, "-2h");
    let out = join.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a join through an expired invite: {stderr}"
    );
    assert!(stderr.contains("the inviter refused this join"), "{stderr}");
    assert!(stderr.contains("expired at"), "{stderr}");
    assert!(
        !member_keys(&a).contains(&late.public_key()),
        "the late joiner is on the inviter's roster"
    );
    // The live invite admits, on the same server.
    let on_time = Replica::new();
    let v = on_time.json(&["join", &live]);
    assert_eq!(v["action"], "joined", "{v}");
    assert!(member_keys(&a).contains(&on_time.public_key()));
    sa.stop();
}

/// Finding 10 (expiry, through the hub): no admitting machine is online to refuse a join that
/// goes through the hub, and a join is valid by the time its change claims (so every replica
/// admits it alike). A replica that held the invite before it expired and received the join
/// only afterwards says so: `td member list` marks the member with the times and the command
/// that removes it, and `td doctor` reports it. A join on time is not marked.
#[test]
fn a_join_through_the_hub_after_expiry_is_shown_to_the_team() {
    let hub = td_tests::hub::Hub::start();
    let a = td_tests::hub::founder_on(&hub, "Founding issue");
    let mut invite = a.command(None, &["member", "invite", "--expires", "1h", "--json"]);
    fake_clock(&mut invite, "-2h");
    let out = invite.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let code: Value = serde_json::from_slice(&out.stdout).unwrap();
    let code = code["code"].as_str().unwrap().to_string();
    a.json(&["sync"]);
    let late = Replica::new();
    let mut join = late.command(None, &["join", &code, "--json"]);
    fake_clock(&mut join, "-2h");
    let out = join.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let on_time = td_tests::hub::joined(&a, &[], "member");
    a.json(&["sync"]);
    let members = a.json(&["member", "list"]);
    let row = |key: &str| {
        members
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["public_key"] == key)
            .cloned()
            .unwrap_or_else(|| panic!("{key} on the roster: {members}"))
    };
    let flagged = row(&late.public_key())["late_join"].to_string();
    assert!(
        flagged.contains("expired at") && flagged.contains("td member remove"),
        "{flagged}"
    );
    assert!(row(&on_time.public_key())["late_join"].is_null());
    let human = a.ok(&["member", "list"]);
    assert!(human.contains("⚠ joined through invite"), "{human}");
    let doctor = a.json(&["doctor"]);
    let check = doctor["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "late joins")
        .cloned()
        .expect("a late-joins check");
    assert!(
        check["detail"].as_str().unwrap().contains(&format!(
            "td member remove {}",
            late.identity().fingerprint()
        )),
        "{check}"
    );
}
