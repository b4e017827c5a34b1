//! `td peer` end to end: real binaries, real QUIC sockets on 127.0.0.1.

use td_tests::Replica;

fn sync(r: &Replica, peer: &str) -> serde_json::Value {
    let v = r.json(&["peer", "sync", peer]);
    assert!(v[0]["error"].is_null(), "sync failed: {v}");
    v
}

#[test]
fn three_replicas_converge_through_a_chain() {
    let a = Replica::init();
    a.create("Founding issue on A", &["-l", "sync"]);
    let b = Replica::init();
    let c = Replica::init();
    let sa = a.serve();
    a.json(&["member", "add", &b.public_key(), "--name", "laptop-b"]);
    b.json(&["peer", "add", "a", &sa.addr, "--key", &a.public_key()]);
    a.json(&["member", "add", &c.public_key()]);
    sync(&b, "a"); // b joins a's project
    let sb = b.serve();
    b.json(&["member", "add", &c.public_key()]); // already there via a's roster: idempotent
    c.json(&["peer", "add", "b", &sb.addr, "--key", &b.public_key()]);
    sync(&c, "b"); // c joins through b

    // Create, update, delete on each replica.
    let ia = a.create("Written on A", &[]);
    let ib = b.create("Written on B", &["-p", "P1"]);
    let ic = c.create("Written on C", &["-t", "bug"]);
    a.json(&["update", &ia, "-d", "details from A"]);
    b.json(&["start", &ib]);
    c.json(&["comment", &ic, "comment from C"]);
    c.json(&["delete", &ic]);
    b.json(&["log", &ib, "progress on B"]);

    // Pairwise in a chain: C↔B, B↔A, then C↔B again.
    let v = sync(&c, "b");
    assert_eq!(v[0]["peer"], "b");
    assert!(v[0]["sent"].as_u64().unwrap() > 0);
    sync(&b, "a");
    sync(&c, "b");
    let ea = a.export();
    assert_eq!(ea, b.export(), "A and B differ");
    assert_eq!(ea, c.export(), "A and C differ");
    assert!(
        ea.contains("Written on C")
            && ea.contains("details from A")
            && ea.contains("progress on B")
    );
    // Extra rounds change nothing.
    let again = sync(&c, "b");
    assert_eq!(
        (again[0]["sent"].as_u64(), again[0]["received"].as_u64()),
        (Some(0), Some(0))
    );
    let human = c.ok(&["peer", "sync", "b"]);
    assert!(human.contains("peer b: sent 0, received 0"), "{human}");
    sb.stop();
    let log = sa.stop();
    assert!(log.contains("synced with"), "{log}");
    // Machines by their roster names, not bare fingerprints.
    assert!(
        log.contains(&format!(
            "synced with laptop-b ({})",
            b.identity().fingerprint()
        )),
        "{log}"
    );
    // Every line of the server's log begins with its time (RFC 3339, UTC).
    for line in log.lines().filter(|l| !l.is_empty()) {
        let at = line.split(' ').next().unwrap();
        assert!(
            at.len() == 20 && at.as_bytes()[10] == b'T' && at.ends_with('Z'),
            "a log line without its time: {line}"
        );
    }
}

#[test]
fn partition_and_late_joiner() {
    let a = Replica::init();
    a.create("Seed issue", &[]);
    let b = Replica::init();
    let sa = a.serve();
    a.befriend(&b, "a", &sa.addr);
    sync(&b, "a");
    // Apart: 50+ changes on each side, touching shared and new issues.
    let shared = b.json(&["list"])[0]["id"].as_str().unwrap().to_string();
    for i in 0..26 {
        let x = a.create(&format!("Offline work on A number {i}"), &[]);
        a.json(&["update", &x, "-p", "P1"]);
        let y = b.create(&format!("Offline work on B number {i}"), &[]);
        b.json(&["comment", &y, "note"]);
    }
    a.json(&["update", &shared, "-l", "from-a"]);
    b.json(&["update", &shared, "-d", "from b"]);
    let v = sync(&b, "a");
    assert!(
        v[0]["sent"].as_u64().unwrap() >= 52 && v[0]["received"].as_u64().unwrap() >= 52,
        "{v}"
    );
    assert_eq!(a.export(), b.export());
    let s = a.json(&["show", &shared]);
    assert_eq!(s["labels"], serde_json::json!(["from-a"]));
    assert_eq!(
        s["description"], "from b",
        "different fields edited apart both survive"
    );

    // Late joiner receives the whole history (500+ issues) in bounded batches.
    for i in 0..450 {
        a.create(&format!("History issue number {i}"), &[]);
    }
    let late = Replica::init();
    a.json(&["member", "add", &late.public_key()]);
    late.json(&["peer", "add", "a", &sa.addr, "--key", &a.public_key()]);
    let v = sync(&late, "a");
    assert!(v[0]["received"].as_u64().unwrap() > 500, "{v}");
    assert_eq!(late.export(), a.export());
    assert_eq!(
        late.json(&["list", "-n", "10000"])
            .as_array()
            .unwrap()
            .len(),
        1 + 52 + 450
    );
    sa.stop();
}

#[test]
fn untrusted_client_and_wrong_server_key_are_refused_on_both_ends() {
    let a = Replica::init();
    a.create("Only members may sync", &[]);
    let stranger = Replica::init();
    let sa = a.serve();
    let before = a.export();
    let r = stranger.run(&["peer", "sync", &sa.addr, "--key", &a.public_key(), "--json"]);
    assert_eq!(r.code, 1);
    let v = r.json();
    let fp = stranger.json(&["peer", "id"])["machine"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        v[0]["error"]
            .as_str()
            .unwrap()
            .contains(&format!("untrusted peer {fp}")),
        "{v}"
    );
    // Wrong key recorded for the server.
    let other = Replica::init();
    a.json(&["member", "add", &other.public_key()]);
    other.json(&[
        "peer",
        "add",
        "a",
        &sa.addr,
        "--key",
        &stranger.public_key(),
    ]);
    let r = other.run(&["peer", "sync", "a"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("key mismatch for peer a"), "{r:?}");
    // Unknown peer name and no peers at all.
    let r = other.run(&["peer", "sync", "nobody", "--json"]);
    assert_eq!(r.code, 1);
    assert!(r.json()[0]["error"]
        .as_str()
        .unwrap()
        .contains("unknown peer"));
    assert_eq!(
        stranger.run(&["peer", "sync", "--json"]).error_code(),
        "invalid_input"
    );
    let log = sa.stop();
    assert!(
        log.contains(&format!("untrusted peer {fp}")),
        "server explains too: {log}"
    );
    assert!(log.contains("key mismatch"), "{log}");
    assert_eq!(
        a.export().replace(&other.public_key(), ""),
        before.replace(&other.public_key(), "")
    );
}

#[test]
fn projects_do_not_mix() {
    let a = Replica::init();
    a.create("Project A issue", &[]);
    let b = Replica::init();
    b.create("Project B issue", &[]);
    let sa = a.serve();
    a.befriend(&b, "a", &sa.addr);
    let r = b.run(&["peer", "sync", "a", "--json"]);
    assert_eq!(r.code, 1);
    assert!(
        r.json()[0]["error"]
            .as_str()
            .unwrap()
            .contains("project mismatch"),
        "{r:?}"
    );
    assert!(!b.export().contains("Project A issue"));
    sa.stop();
}

#[test]
fn member_and_peer_commands() {
    let a = Replica::init();
    let b = Replica::new();
    let kb = b.public_key(); // peer id works without a project
    assert_eq!(kb.len(), 64);
    assert_eq!(
        a.json(&["member", "add", &kb, "--name", "laptop"])["action"],
        "added"
    );
    assert_eq!(a.json(&["member", "add", &kb])["action"], "already_member");
    let list = a.json(&["member", "list"]);
    assert_eq!(
        list.as_array().unwrap().len(),
        2,
        "founder and laptop: {list}"
    );
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["name"] == "laptop"));
    assert_eq!(
        a.run(&["member", "add", "zz", "--json"]).error_code(),
        "invalid_input"
    );
    assert_eq!(a.json(&["member", "remove", &kb])["action"], "removed");
    assert_eq!(
        a.run(&["member", "remove", &kb, "--json"]).error_code(),
        "not_found"
    );
    assert_eq!(
        a.json(&["peer", "add", "b", "127.0.0.1:9", "--key", &kb])["action"],
        "added"
    );
    assert_eq!(a.json(&["peer", "list"])[0]["addr"], "127.0.0.1:9");
    assert_eq!(
        a.run(&["peer", "add", "c", "nowhere", "--key", &kb, "--json"])
            .error_code(),
        "invalid_input"
    );
    assert_eq!(a.json(&["peer", "remove", "b"])["action"], "removed");
    assert_eq!(a.json(&["peer", "list"]), serde_json::json!([]));
    assert_eq!(
        a.run(&["peer", "serve", "--listen", "bogus", "--json"])
            .error_code(),
        "invalid_input"
    );
}

/// `td peer sync <peer> --watch` keeps one connection: a change on either side reaches the
/// other without a new handshake, one JSON line per round, and Ctrl-C ends it cleanly with
/// both replicas converged.
#[test]
fn watch_keeps_one_connection_and_syncs_each_change() {
    use std::io::{BufRead, BufReader};
    let a = Replica::init();
    a.create("Served from A", &[]);
    let b = Replica::init();
    let sa = a.serve();
    a.befriend(&b, "a", &sa.addr);
    let mut child = b
        .command(
            None,
            &["peer", "sync", "a", "--watch", "--every", "1", "--json"],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = || -> serde_json::Value {
        let line = lines.next().expect("a round line").unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad line {line:?}: {e}"))
    };
    let first = next();
    assert!(first["error"].is_null(), "{first}");
    assert!(
        first["received"].as_u64().unwrap() > 0,
        "B joins A's project: {first}"
    );
    // A local change on B goes out in its own round, much smaller than a fresh connection.
    let id = b.create("Written on B while watching", &[]);
    let mut round = next();
    while round["sent"] == 0 {
        round = next(); // a periodic round may come first
    }
    assert_eq!(round["sent"], 1, "{round}");
    let udp =
        round["bytes"]["udp_out"].as_u64().unwrap() + round["bytes"]["udp_in"].as_u64().unwrap();
    assert!(
        udp < 2_400,
        "no handshake on a kept connection: {udp} bytes"
    );
    // A change on A arrives with the next periodic round.
    a.create("Written on A while B watches", &[]);
    let mut round = next();
    while round["received"] == 0 {
        round = next();
    }
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "watch ends cleanly on Ctrl-C: {status:?}");
    assert_eq!(a.export(), b.export(), "converged");

    // A change on A reaches a watcher at once: the server tells it its log grew, so the round
    // runs without waiting for the watcher's period (600 s here, far beyond the wait below).
    let mut child = b
        .command(
            None,
            &["peer", "sync", "a", "--watch", "--every", "600", "--json"],
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert!(first["error"].is_null(), "{first}");
    a.create("Written on A, told to the watcher", &[]);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let told: serde_json::Value = serde_json::from_str(
        &rx.recv_timeout(std::time::Duration::from_secs(60))
            .expect("a round well before the watcher's 600 s period"),
    )
    .unwrap();
    assert_eq!(told["received"], 1, "{told}");
    assert!(b
        .ok(&["list"])
        .contains("Written on A, told to the watcher"));
    let _ = child.kill();
    let _ = child.wait();

    // A machine removed from the roster gets no further round on its kept connection.
    let mut child = b
        .command(
            None,
            &["peer", "sync", "a", "--watch", "--every", "60", "--json"],
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert!(first["error"].is_null(), "{first}");
    a.json(&["member", "remove", &b.public_key()]);
    b.create("Written after B was removed", &[]);
    let refused: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert!(
        refused["error"]
            .as_str()
            .unwrap_or("")
            .contains("removed from the project"),
        "{refused}"
    );
    assert!(
        !child.wait().unwrap().success(),
        "exit 1 when the peer refuses"
    );
    assert!(!a.export().contains("Written after B was removed"));
    assert_eq!(
        a.json(&["show", &id])["title"],
        "Written on B while watching"
    );
    // Bad use: --watch keeps one connection, so it takes exactly one peer.
    assert_eq!(
        b.run(&["peer", "sync", "a", "other", "--watch", "--json"])
            .error_code(),
        "invalid_input"
    );
    sa.stop();
}

/// LAN discovery between two hosts (network namespaces joined by a veth link): `td peer serve`
/// on one announces itself; `td peer discover` on the other lists it as a member of this
/// project (a server of another project on the same host is not listed), `--add` puts its LAN
/// address in the address book, and a round over that address brings its work. A server
/// started with --no-announce is not found.
#[test]
fn peers_find_each_other_on_the_lan() {
    let lan = td_tests::netns::Lan::start();
    let a = Replica::init();
    let b = Replica::init();
    let sa = a.serve();
    a.befriend(&b, "a", &sa.addr);
    assert!(b.json(&["peer", "sync", "a"])[0]["error"].is_null());
    sa.stop();
    let id = a.create("Written on A, found on the LAN", &[]);
    let other = Replica::init();
    other.create("Another project's work", &[]);
    let serve = |r: &Replica, extra: &[&str]| {
        let mut args = vec!["peer", "serve", "--listen", "0.0.0.0:0"];
        args.extend_from_slice(extra);
        td_tests::Serving::spawn(lan.on(0, &r.command(None, &args)))
    };
    let served = serve(&a, &[]);
    let others = serve(&other, &[]);
    let discover = |args: &[&str]| -> serde_json::Value {
        let mut all = vec!["peer", "discover", "--json"];
        all.extend_from_slice(args);
        let out = lan.on(1, &b.command(None, &all)).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let found = discover(&["--wait", "4s", "--add"]);
    let rows = found.as_array().unwrap();
    assert_eq!(rows.len(), 1, "only this project's server: {found}");
    assert_eq!(rows[0]["public_key"], a.public_key(), "{found}");
    assert_eq!(rows[0]["member"], true, "{found}");
    assert_eq!(rows[0]["added"], "a", "{found}");
    let port = served.addr.rsplit(':').next().unwrap();
    let lan_addr = format!("{}:{port}", td_tests::netns::ADDRS[0]);
    assert!(
        rows[0]["addresses"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!(lan_addr)),
        "{found}"
    );
    let book = b.json(&["peer", "list"]);
    assert_eq!(book[0]["addr"], lan_addr.as_str(), "{book}");
    let out = lan
        .on(1, &b.command(None, &["peer", "sync", "a", "--json"]))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        b.json(&["show", &id])["title"],
        "Written on A, found on the LAN"
    );
    served.stop();
    others.stop();
    let quiet = serve(&a, &["--no-announce"]);
    let found = discover(&["--wait", "2s"]);
    assert_eq!(
        found,
        serde_json::json!([]),
        "a server that does not announce"
    );
    quiet.stop();
}

/// Discovery inside the sync loop, between two hosts (network namespaces joined by a veth
/// link): B's `td sync watch`, with nothing in its address book and no hub, finds A's `td peer
/// serve` on the LAN by itself and keeps it connected, both ways. A removed member's server of
/// the same project, announcing on the same host, is never synced with; nor is anything found
/// with `sync.discovery` off.
#[test]
fn the_sync_loop_finds_members_on_the_lan_by_itself() {
    let lan = td_tests::netns::Lan::start();
    let a = Replica::init();
    let b = Replica::init();
    let c = Replica::init();
    let sa = a.serve();
    a.befriend(&b, "a", &sa.addr);
    a.befriend(&c, "a", &sa.addr);
    assert!(b.json(&["peer", "sync", "a"])[0]["error"].is_null());
    assert!(c.json(&["peer", "sync", "a"])[0]["error"].is_null());
    a.json(&["member", "remove", &c.public_key()]);
    assert!(b.json(&["peer", "sync", "a"])[0]["error"].is_null());
    sa.stop();
    b.json(&["peer", "remove", "a"]);
    c.create("Written by the removed machine", &[]);
    let serve = |r: &Replica| {
        td_tests::Serving::spawn(lan.on(
            0,
            &r.command(None, &["peer", "serve", "--listen", "0.0.0.0:0"]),
        ))
    };
    let served = serve(&a);
    let removed = serve(&c);
    let id = a.create("Written on A, found by the loop", &[]);
    let mut watch = lan
        .on(1, &b.command(None, &["sync", "watch"]))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let has = |r: &Replica, title: &str| {
        r.json(&["list", "--all", "-n", "1000"])
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["title"] == title)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !has(&b, "Written on A, found by the loop") {
        assert!(std::time::Instant::now() < deadline, "B never found A");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    b.create("Written on B, nobody typing", &[]);
    while !has(&a, "Written on B, nobody typing") {
        assert!(
            std::time::Instant::now() < deadline,
            "A never got B's change"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(
        !has(&b, "Written by the removed machine"),
        "a removed member's server is not synced with"
    );
    let _ = watch.kill();
    let _ = watch.wait();
    assert_eq!(
        b.json(&["show", &id])["title"],
        "Written on A, found by the loop"
    );
    served.stop();
    removed.stop();
    // Off with one setting: no announcement, and a loop with nothing else to sync with refuses.
    b.json(&["config", "set", "sync.discovery", "false"]);
    let out = b.run(&["sync", "watch"]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("nothing to sync with"), "{out:?}");
}
