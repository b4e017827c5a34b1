//! Sync over emulated real paths (issue 18): the real `td` binary through a UDP proxy that
//! adds delay, rate and loss to the QUIC traffic, and through an HTTP proxy that adds a round
//! trip to every request to a real `tursodb` hub; packed (protocol 2) and plain (protocol 1)
//! peers together.

use std::time::Duration;

use td_tests::hub::{Hub, Proxy, Wire};
use td_tests::udp_proxy::{Link, Rates, UdpProxy};
use td_tests::Replica;

/// A 50 ms round trip, 5 MB/s (a batch takes about 0.4 s, so a round can be cut between
/// two), a 50 ms buffer.
fn long_path() -> Link {
    Link {
        delay: Duration::from_millis(25),
        rate: Some(5_000_000),
        buffer: Duration::from_millis(50),
    }
}

fn changes(r: &Replica) -> i64 {
    td_engine::export::log_stats(r.store().conn())
        .unwrap()
        .changes
}

/// Through 50 ms and 2% loss both ways, peers converge; a round killed mid-transfer resumes
/// and the peer sends nothing the receiver already committed.
#[test]
fn peers_converge_through_delay_and_loss_and_a_cut_round_resumes_without_resending() {
    let a = Replica::init();
    a.create("Before the bulk", &[]);
    td_tests::bulk_issues(&a, 2500, 4);
    let serving = a.serve();
    let proxy = UdpProxy::start(serving.addr.parse().unwrap(), 18);
    proxy.set_link(long_path());
    proxy.set_rates(Rates {
        drop: 20,
        ..Rates::default()
    });
    let b = Replica::init();
    a.befriend(&b, "a", &proxy.addr.to_string());
    // Cut off: killed once part of the history is committed.
    let mut child = b.command(None, &["peer", "sync", "a"]).spawn().unwrap();
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(60) && child.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(20));
        let stored: i64 = rusqlite::Connection::open(b.db())
            .and_then(|c| c.query_row("SELECT count(*) FROM crdt_changes", [], |r| r.get(0)))
            .unwrap_or(0);
        if stored > 0 {
            break;
        }
    }
    let finished_early = child.try_wait().unwrap().is_some();
    let _ = child.kill();
    let _ = child.wait();
    let held = changes(&b);
    let total = changes(&a);
    eprintln!("cut after {held} of {total} changes");
    assert!(
        !finished_early && held > 0 && held < total,
        "cut mid-round: {held} of {total}"
    );
    // Resumed: what was committed is not sent again.
    let v = b.json(&["peer", "sync", "a"]);
    assert!(v[0]["error"].is_null(), "{v}");
    assert_eq!(v[0]["duplicates"], 0, "nothing resent: {v}");
    assert_eq!(
        v[0]["received"].as_i64().unwrap(),
        total - held,
        "the rest, once: {v}"
    );
    // Both ways, still through the lossy path.
    b.create("Written on the far side", &[]);
    a.create("Written near the server", &[]);
    let v = b.json(&["peer", "sync", "a"]);
    assert_eq!(v[0]["sent"], 1, "{v}");
    assert!(v[0]["received"].as_i64().unwrap() >= 1, "{v}");
    assert!(a.export() == b.export(), "exports identical");
}

/// Packed batches (protocol 2) and plain ones (protocol 1) interoperate whichever side is the
/// older td, and packing makes the round smaller.
#[test]
fn packed_and_plain_peers_interoperate_both_ways() {
    let a = Replica::init();
    td_tests::bulk_issues(&a, 300, 3);
    let serving = a.serve();
    let round = |cap_client: Option<&str>| {
        let b = Replica::init();
        a.befriend(&b, "a", &serving.addr);
        let mut cmd = b.command(None, &["peer", "sync", "a", "--json"]);
        if let Some(v) = cap_client {
            cmd.env("TD_SYNC_PROTOCOL_MAX", v);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(a.export() == b.export(), "converged: {v}");
        // And back: the far side writes, the server side receives.
        b.create("From the far side", &[]);
        let mut cmd = b.command(None, &["peer", "sync", "a", "--json"]);
        if let Some(v) = cap_client {
            cmd.env("TD_SYNC_PROTOCOL_MAX", v);
        }
        assert!(cmd.output().unwrap().status.success());
        assert!(a.export() == b.export(), "converged both ways");
        v[0]["bytes"]["frames_in"].as_u64().unwrap()
    };
    let packed = round(None);
    let plain = round(Some("1"));
    assert!(
        packed < plain,
        "packed batches are smaller: {packed} vs {plain} bytes"
    );
    // The server offers only protocol 1, the client 2: plain batches both ways.
    drop(serving);
    let mut cmd = a.command(None, &["peer", "serve", "--listen", "127.0.0.1:0"]);
    cmd.env("TD_SYNC_PROTOCOL_MAX", "1");
    let old = td_tests::Serving::spawn(cmd);
    let b = Replica::init();
    a.befriend(&b, "a", &old.addr);
    b.json(&["peer", "sync", "a"]);
    b.create("Sent to an older td", &[]);
    let v = b.json(&["peer", "sync", "a"]);
    assert_eq!(v[0]["sent"], 1, "{v}");
    assert!(v[0]["error"].is_null(), "{v}");
    assert!(
        a.export() == b.export(),
        "an older server and a newer client converge"
    );
    old.stop();
}

/// Hub push and pull through a 50 ms round trip: convergence, and a push cut off after the
/// hub committed a request it never acknowledged resumes with every row once.
#[test]
fn hub_sync_through_a_long_path_converges_and_resumes() {
    let hub = Hub::start();
    let proxy = Proxy::start(hub.port);
    proxy.set_wire(Wire {
        rtt: Duration::from_millis(50),
        rate: Some(20_000_000),
    });
    let a = Replica::init();
    td_tests::bulk_issues(&a, 1000, 3);
    let b = Replica::init();
    a.json(&["member", "add", &b.public_key()]);
    a.json(&["config", "set", "database.url", &proxy.url()]);
    a.json(&["config", "set", "database.mode", "libsql"]);
    proxy.inject_matching(
        "INSERT OR IGNORE INTO td_changes",
        0,
        td_tests::hub::Fault::Truncate,
        td_transport::hub::ATTEMPTS,
    );
    let cut = a.run(&["sync", "push"]);
    assert_eq!(cut.code, 1, "{}", cut.stderr);
    let v = a.json(&["sync", "push"]);
    assert_eq!(v["pending"], 0, "{v}");
    assert_eq!(hub.change_rows(), changes(&a), "every row once");
    let j = b.json(&["sync", "init", "--hub", &proxy.url()]);
    assert_eq!(j["action"], "joined", "{j}");
    b.create("Through the long path", &[]);
    b.json(&["sync"]);
    a.json(&["sync"]);
    assert!(a.export() == b.export(), "exports identical");
}

/// A long sync on a terminal shows its progress on stderr: changes received of those
/// expected, bytes and rate, time left; and clears it when done.
#[test]
fn a_long_peer_sync_shows_progress_on_the_terminal() {
    let a = Replica::init();
    td_tests::bulk_issues(&a, 2500, 4);
    let serving = a.serve();
    let proxy = UdpProxy::start(serving.addr.parse().unwrap(), 5);
    // 1 MB/s: the 2 MB round takes about two seconds.
    proxy.set_link(Link {
        delay: Duration::from_millis(5),
        rate: Some(1_000_000),
        buffer: Duration::from_millis(100),
    });
    let b = Replica::init();
    a.befriend(&b, "slowpeer", &proxy.addr.to_string());
    let t = td_tests::tmux::Tmux::start(160, 10, &[]);
    t.text(&format!(
        "XDG_CONFIG_HOME={} {} -w {} peer sync slowpeer; echo SYNC-$((40+2))",
        b.config.display(),
        td_tests::td_bin().display(),
        b.root.display()
    ));
    t.keys(&["Enter"]);
    let total = changes(&a);
    let line = t.wait_for("the progress line", 60, |s| {
        s.contains("slowpeer: received") && s.contains(&format!("/{total} changes"))
    });
    assert!(line.contains("/s"), "a rate: {line}");
    t.keep("peer-sync-progress");
    let done = t.wait_for("the end of the sync", 120, |s| s.contains("SYNC-42"));
    assert!(
        !done.contains("slowpeer: received"),
        "the line is cleared: {done}"
    );
    assert!(a.export() == b.export());
}
