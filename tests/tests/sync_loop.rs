//! The sync loop (docs/sync-loop.md), with real processes and a real `tursodb` hub: `td sync
//! watch` pushes what any process commits and pulls what teammates push, by itself; one loop
//! per project (a second is refused); a hub that goes away and comes back is caught up with,
//! nothing lost; `td serve` runs the loop when none runs, so its API shows a teammate's change
//! and pushes its own writes.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use td_tests::hub::{founder_on, joined, Hub};
use td_tests::{http_json, Replica, WebServer};

/// Polls `ok` until it holds (a generous deadline: this is a wait, not a timing assertion).
fn eventually(what: &str, mut ok: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(60);
    while !ok() {
        assert!(Instant::now() < end, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn titles(r: &Replica) -> Vec<String> {
    r.json(&["list", "--all", "-n", "100000"])
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap().to_string())
        .collect()
}

struct Watch(Child);

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn watch(r: &Replica) -> Watch {
    Watch(
        r.command(None, &["sync", "watch"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn loop_state(r: &Replica) -> serde_json::Value {
    r.json(&["sync", "status"])["sync_loop"].clone()
}

#[test]
fn a_watch_loop_syncs_by_itself_and_rides_out_a_hub_outage() {
    let mut hub = Hub::start();
    let a = founder_on(&hub, "Founding issue");
    let b = joined(&a, &[], "member");
    assert_eq!(loop_state(&b)["running"], false);
    let w = watch(&b);
    eventually("the loop runs", || loop_state(&b)["running"] == true);
    let st = loop_state(&b);
    assert_eq!(st["by"], "td sync watch", "{st}");
    assert!(st["since"].is_string());
    // One loop per project and machine.
    let second = b.run(&["sync", "watch", "--json"]);
    assert_eq!(second.code, 1, "{second:?}");
    assert!(second.stdout.contains("already runs"), "{}", second.stdout);
    // A teammate's change reaches B without anyone typing `td sync` on B.
    a.create("Pushed by A", &[]);
    a.json(&["sync"]);
    eventually("B pulled A's change", || {
        titles(&b).contains(&"Pushed by A".to_string())
    });
    // B's own write goes out by itself.
    b.create("Written on B", &[]);
    eventually("B pushed its change", || {
        b.json(&["sync", "status"])["pending"] == 0
    });
    a.json(&["sync"]);
    assert!(titles(&a).contains(&"Written on B".to_string()));
    // The hub goes away: B keeps working, the loop says why it cannot sync...
    hub.stop();
    b.create("Written while the hub is down", &[]);
    eventually("the loop reports the outage", || {
        loop_state(&b)["last_error"].is_string()
    });
    // ...and catches up by itself when the hub is back.
    hub.restart();
    eventually("the loop caught up", || {
        let s = b.json(&["sync", "status"]);
        s["pending"] == 0 && s["sync_loop"]["last_error"].is_null()
    });
    a.json(&["sync"]);
    b.json(&["sync"]);
    assert_eq!(a.export(), b.export(), "nothing lost, same everywhere");
    drop(w);
    eventually("the lock is released", || {
        loop_state(&b)["running"] == false
    });
}

#[test]
fn td_serve_runs_the_loop_its_api_shows_teammates_and_pushes_its_writes() {
    let hub = Hub::start();
    let a = founder_on(&hub, "Founding issue");
    let b = joined(&a, &[], "member");
    // The server runs with td's default (autosync on with a hub), so it runs the loop.
    b.autosync.set(true);
    let server = WebServer::spawn(b.command(None, &["serve", "-p", "0"]));
    eventually("td serve runs the loop", || {
        loop_state(&b)["by"] == "td serve" && loop_state(&b)["running"] == true
    });
    a.create("Seen on the board by itself", &[]);
    a.json(&["sync"]);
    eventually("the API lists A's change", || {
        let (_, v) = http_json(server.port, "GET", "/v1/issues", &[], None);
        v["data"]["issues"].as_array().is_some_and(|l| {
            l.iter()
                .any(|i| i["title"] == "Seen on the board by itself")
        })
    });
    let (st, _) = http_json(
        server.port,
        "POST",
        "/v1/issues",
        &[],
        Some(json!({"title": "Written on B's board"})),
    );
    assert_eq!(st, 201);
    eventually("A receives the board's write", || {
        a.json(&["sync"]);
        titles(&a).contains(&"Written on B's board".to_string())
    });
}

/// `td sync service install` writes a user unit whose command, run as the service manager
/// runs it (its working directory, its environment, its command line), is this project's sync
/// loop: a teammate's change arrives with nobody typing. `--print` writes nothing; uninstall
/// removes the unit; a project without a hub is told to connect one.
#[test]
fn the_service_unit_runs_the_sync_loop() {
    let hub = Hub::start();
    let a = founder_on(&hub, "Founding issue");
    let b = joined(&a, &[], "member");
    let unit_dir = b.config.join("systemd/user");
    let printed = b.json(&["sync", "service", "install", "--print"]);
    assert_eq!(printed["action"], "would_install");
    assert!(!unit_dir.exists(), "--print writes nothing");
    let v = b.json(&["sync", "service", "install", "--no-start"]);
    assert_eq!(
        (v["action"].as_str(), v["started"].as_bool()),
        (Some("installed"), Some(false))
    );
    let path = std::path::PathBuf::from(v["unit"].as_str().unwrap());
    assert!(path.starts_with(&unit_dir), "{path:?}");
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        text,
        printed["text"].as_str().unwrap(),
        "the unit --print showed"
    );
    // Run it as systemd would: ExecStart in WorkingDirectory with Environment, nothing else.
    let setting = |key: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(str::to_string)
            .collect()
    };
    let exec = setting("ExecStart").pop().expect("ExecStart");
    let (exe, args) = exec
        .strip_prefix('"')
        .and_then(|r| r.split_once("\" "))
        .expect("a quoted program, then its arguments");
    assert_eq!(args, "sync watch");
    let mut cmd = std::process::Command::new(exe);
    cmd.args(args.split(' '))
        .current_dir(setting("WorkingDirectory").pop().expect("WorkingDirectory"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for e in setting("Environment") {
        let (k, val) = e.trim_matches('"').split_once('=').unwrap();
        cmd.env(k, val);
    }
    let _service = Watch(cmd.spawn().unwrap());
    eventually("the service's loop runs", || {
        loop_state(&b)["running"] == true
    });
    a.create("Written while the service runs", &[]);
    a.json(&["sync"]);
    eventually("a teammate's change arrives by itself", || {
        titles(&b).contains(&"Written while the service runs".to_string())
    });
    drop(_service);
    let gone = b.json(&["sync", "service", "uninstall"]);
    assert_eq!(gone["action"], "uninstalled");
    assert!(!path.exists());
    let again = b.run(&["sync", "service", "uninstall"]);
    assert_ne!(again.code, 0);
    assert!(
        again.stderr.contains("no sync service is installed"),
        "{again:?}"
    );
    let lone = Replica::init();
    let refused = lone.run(&["sync", "service", "install", "--no-start"]);
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("td sync init --hub"), "{refused:?}");
}

/// `td sync watch` with peers and no hub: it keeps a connection to every peer in the address
/// book, so a change on the serving laptop arrives by itself (the server tells the loop) and a
/// change here goes out by itself; `td sync status` names the peers; a peer that goes away is
/// reconnected to when it comes back. With neither a hub nor a peer it says what to do.
#[test]
fn the_loop_keeps_peers_in_sync_both_ways() {
    let a = Replica::init();
    a.create("Served from A", &[]);
    let b = Replica::init();
    let sa = a.serve();
    a.befriend(&b, "a", &sa.addr);
    let w = watch(&b);
    eventually("B holds A's project", || {
        titles(&b).contains(&"Served from A".to_string())
    });
    let st = loop_state(&b);
    assert_eq!(st["running"], true, "{st}");
    assert_eq!(st["peers"], json!(["a"]), "{st}");
    a.create("Written on A, nobody typing", &[]);
    eventually("A's change reaches B by itself", || {
        titles(&b).contains(&"Written on A, nobody typing".to_string())
    });
    b.create("Written on B, nobody typing", &[]);
    eventually("B's change reaches A by itself", || {
        titles(&a).contains(&"Written on B, nobody typing".to_string())
    });
    // A goes away and comes back on the same address: the loop reconnects.
    let addr = sa.addr.clone();
    sa.stop();
    a.create("Written on A while it was away", &[]);
    let sa = a.serve_on(&addr);
    eventually("the loop reconnects and catches up", || {
        titles(&b).contains(&"Written on A while it was away".to_string())
    });
    drop(w);
    sa.stop();
    assert_eq!(a.export(), b.export(), "converged");
    let lone = Replica::init();
    let out = lone.run(&["sync", "watch"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("nothing to sync with"), "{out:?}");
}

/// `td serve` keeps the address book's peers connected too: a change on a teammate's laptop
/// is on the board's API with nobody typing, and a write made through the board reaches the
/// laptop.
#[test]
fn td_serve_keeps_peers_connected() {
    let a = Replica::init();
    a.create("Served from A", &[]);
    let b = Replica::init();
    let sa = a.serve();
    a.befriend(&b, "a", &sa.addr);
    assert!(b.json(&["peer", "sync", "a"])[0]["error"].is_null());
    let server = WebServer::spawn(b.command(None, &["serve", "-p", "0"]));
    eventually("td serve runs the loop with its peer", || {
        let st = loop_state(&b);
        st["by"] == "td serve" && st["running"] == true && st["peers"] == json!(["a"])
    });
    a.create("On the board from A", &[]);
    eventually("the API lists A's change", || {
        let (_, v) = http_json(server.port, "GET", "/v1/issues", &[], None);
        v["data"]["issues"]
            .as_array()
            .is_some_and(|l| l.iter().any(|i| i["title"] == "On the board from A"))
    });
    let (st, _) = http_json(
        server.port,
        "POST",
        "/v1/issues",
        &[],
        Some(json!({"title": "Written on B's board for A"})),
    );
    assert_eq!(st, 201);
    eventually("A receives the board's write", || {
        titles(&a).contains(&"Written on B's board for A".to_string())
    });
    drop(server);
    sa.stop();
}

/// A `td sync watch` whose hub is reached through `proxy` and whose wall clock reads the
/// libfaketime offset written in `clock` (re-read on every call: the test moves it while the
/// loop runs). The monotonic clock is left alone, as on a real machine whose clock is stepped.
fn watch_through(r: &Replica, proxy: &td_tests::hub::Proxy, clock: &std::path::Path) -> Watch {
    r.json(&["config", "set", "database.url", &proxy.url()]);
    let lib = td_tests::libfaketime("a sync loop whose clock jumps");
    Watch(
        r.command(None, &["sync", "watch"])
            .env("LD_PRELOAD", lib)
            .env("FAKETIME_TIMESTAMP_FILE", clock)
            .env("FAKETIME_NO_CACHE", "1")
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// The laptop's network goes (every request to the hub is cut off), work goes on on both
/// sides, the clock is stepped a day forward while offline and three hours back after: the
/// loop reports the outage, catches up by itself when the network returns, keeps syncing
/// across both jumps, and nothing is lost (exports compared).
#[test]
fn the_loop_rides_out_a_lost_network_and_clock_jumps() {
    let hub = Hub::start();
    let proxy = td_tests::hub::Proxy::start(hub.port);
    let a = founder_on(&hub, "Founding issue");
    let b = joined(&a, &[], "member");
    let dir = tempfile::tempdir().unwrap();
    let clock = dir.path().join("faketime");
    std::fs::write(&clock, "+0\n").unwrap();
    let _w = watch_through(&b, &proxy, &clock);
    a.create("Before the outage", &[]);
    a.json(&["sync"]);
    eventually("B pulled A's change", || {
        titles(&b).contains(&"Before the outage".to_string())
    });
    // The network goes: every request is cut off.
    proxy.inject_matching("POST", 0, td_tests::hub::Fault::Reset, usize::MAX);
    b.create("Written on B offline", &[]);
    a.create("Written on A during B's outage", &[]);
    a.json(&["sync"]);
    eventually("the loop reports the outage", || {
        loop_state(&b)["last_error"].is_string()
    });
    // The clock is stepped a day forward while offline, then the network returns.
    std::fs::write(&clock, "+1d\n").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    proxy.inject_matching("POST", 0, td_tests::hub::Fault::Reset, 0);
    eventually("the loop caught up after the outage", || {
        let s = b.json(&["sync", "status"]);
        s["pending"] == 0
            && s["sync_loop"]["last_error"].is_null()
            && titles(&b).contains(&"Written on A during B's outage".to_string())
    });
    // The clock is stepped three hours back: the loop keeps pushing and pulling.
    std::fs::write(&clock, "-3h\n").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    b.create("Written on B after the clock went back", &[]);
    a.create("Written on A after B's clock went back", &[]);
    a.json(&["sync"]);
    eventually("both directions still flow", || {
        b.json(&["sync", "status"])["pending"] == 0
            && titles(&b).contains(&"Written on A after B's clock went back".to_string())
    });
    a.json(&["sync"]);
    for t in [
        "Written on B offline",
        "Written on B after the clock went back",
    ] {
        assert!(titles(&a).contains(&t.to_string()), "A lacks {t}");
    }
    assert_eq!(a.export(), b.export(), "nothing lost, same everywhere");
    let doctor = b.run(&["doctor", "--json"]);
    assert_eq!(doctor.code, 0, "{doctor:?}");
}

/// A peer killed (SIGKILL) while the loop pulls a long history from it, and a network that
/// drops every datagram for a while: the loop reconnects by itself each time and the
/// replicas converge, every change once.
#[test]
fn the_loop_survives_a_peer_killed_mid_round_and_a_dropped_network() {
    let a = Replica::init();
    td_tests::bulk_issues(&a, 3000, 2);
    a.create("Served from A", &[]);
    let b = Replica::init();
    let sa = a.serve();
    let addr: std::net::SocketAddr = sa.addr.parse().unwrap();
    let proxy = td_tests::udp_proxy::UdpProxy::start(addr, 27);
    a.befriend(&b, "a", &proxy.addr.to_string());
    let w = watch(&b);
    // Killed while the first round moves about 9,000 changes.
    std::thread::sleep(Duration::from_millis(300));
    sa.kill();
    let sa = a.serve_on(&addr.to_string());
    eventually("B holds A's whole project after the crash", || {
        titles(&b).contains(&"Served from A".to_string())
    });
    // The network drops everything for a while; both sides keep working.
    proxy.set_rates(td_tests::udp_proxy::Rates {
        drop: 1000,
        ..Default::default()
    });
    a.create("Written on A while the network was gone", &[]);
    b.create("Written on B while the network was gone", &[]);
    std::thread::sleep(Duration::from_secs(3));
    proxy.set_rates(td_tests::udp_proxy::Rates::default());
    eventually("both sides catch up when it returns", || {
        titles(&b).contains(&"Written on A while the network was gone".to_string())
            && titles(&a).contains(&"Written on B while the network was gone".to_string())
    });
    drop(w);
    sa.stop();
    assert_eq!(a.export(), b.export(), "converged");
    for r in [&a, &b] {
        let d = r.run(&["doctor", "--json"]);
        assert_eq!(d.code, 0, "every change once, chains whole: {d:?}");
    }
}
