//! `td sync` hub benchmark (bench binary; figures printed, no thresholds): a replica with 10k
//! issues × 10 changes pushes to a fresh `tursodb --sync-server`, then a fresh replica pulls
//! everything; then one new change is pushed and pulled. Beside them, from the same run: the
//! hub floor (the same records inserted into a fresh hub with plain `batch` requests) and the
//! engine's apply floor (the same changes applied to fresh Automerge documents plus SQLite
//! inserts).
//!
//! Run: `cargo build --release -p td-cli && cargo bench -p td-tests --bench hub_bench`

use std::time::{Duration, Instant};

use td_tests::hub::Hub;
use td_tests::Replica;

fn timed(r: &Replica, args: &[&str]) -> (Duration, serde_json::Value) {
    let t = Instant::now();
    let v = r.json(args);
    (t.elapsed(), v)
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let (issues, per) = (10_000usize, 10usize);
    let hub = Hub::start();
    let a = Replica::init();
    td_tests::bulk_issues(&a, issues, per);
    let b = Replica::init();
    a.json(&["member", "add", &b.public_key()]);
    a.json(&["config", "set", "database.url", &hub.url()]);
    a.json(&["config", "set", "database.mode", "libsql"]);

    let (push_t, pv) = timed(&a, &["sync", "push"]);
    let pushed = pv["pushed"].as_u64().unwrap();
    let (join_t, jv) = timed(&b, &["sync", "init", "--hub", &hub.url()]);
    let pulled = jv["pulled"].as_u64().unwrap();
    assert_eq!(a.export(), b.export(), "replicas must converge");

    // Floors, same run.
    let floor_hub = Hub::start();
    let client = td_transport::hub::HubClient::new(&floor_hub.url(), None).unwrap();
    client.ensure_layout().unwrap();
    let store = a.store();
    let project = store.project_id().unwrap();
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let batch = store
            .outgoing(
                after,
                td_transport::hub::PUSH_BATCH,
                td_transport::hub::PUSH_BYTES,
            )
            .unwrap();
        let Some(last) = batch.last() else { break };
        after = last.local_id;
        all.push(batch);
    }
    let t = Instant::now();
    for batch in &all {
        client.push(&project, batch, "2026-01-01 00:00:00").unwrap();
    }
    let hub_floor = t.elapsed();
    let (floor_sent, _) = client.traffic();
    let t = Instant::now();
    let mut rows = 0;
    let mut cursor = 0;
    loop {
        let page = client.pull(&project, cursor).unwrap();
        let Some(last) = page.last() else { break };
        cursor = last.seq;
        rows += page.len();
    }
    let hub_read_floor = t.elapsed();
    assert_eq!(rows as u64, pushed);
    let apply_floor = td_tests::floor::apply_floor(&a.db());
    let s = |d: Duration| d.as_secs_f64();
    println!(
        "push of {pushed} changes: {:.2} s, {} bytes sent ({:.0} B/change)",
        s(push_t),
        pv["bytes"]["sent"],
        pv["bytes"]["sent"].as_f64().unwrap() / pushed as f64
    );
    println!("  floor: plain batch inserts into a fresh hub {:.2} s ({floor_sent} bytes) + engine apply floor {:.2} s = {:.2} s; ratio {:.2}x (target <= 1.5)",
        s(hub_floor), s(apply_floor), s(hub_floor + apply_floor), s(push_t) / s(hub_floor + apply_floor));
    println!(
        "pull (join) of {pulled} changes: {:.2} s, {} bytes received ({:.0} B/change)",
        s(join_t),
        jv["bytes"]["received"],
        0.0_f64.max(jv["bytes"]["received"].as_f64().unwrap_or(0.0)) / pulled as f64
    );
    println!("  floor: plain paged reads {:.2} s + engine apply floor {:.2} s = {:.2} s; ratio {:.2}x (target <= 1.5)",
        s(hub_read_floor), s(apply_floor), s(hub_read_floor + apply_floor), s(join_t) / s(hub_read_floor + apply_floor));

    let mut pushes = Vec::new();
    let mut pulls = Vec::new();
    for i in 0..5 {
        a.create(&format!("Incremental hub change {i}"), &[]);
        pushes.push(timed(&a, &["sync", "push"]).0);
        let (t, v) = timed(&b, &["sync", "pull"]);
        assert_eq!(v["pulled"], 1, "{v}");
        pulls.push(t);
    }
    pushes.sort();
    pulls.sort();
    println!("incremental (one change, whole td process): push p50 {:.1} ms, pull p50 {:.1} ms (target < 100 ms)",
        pushes[2].as_secs_f64() * 1000.0, pulls[2].as_secs_f64() * 1000.0);

    // `td join`: from an invite code to the 10k-issue project held locally, beside a plain
    // `td sync init` join of the same hub in the same run.
    let code = a.json(&["member", "invite", "--hub", &hub.url()])["code"]
        .as_str()
        .unwrap()
        .to_string();
    let j = Replica::new();
    let (join_code_t, v) = timed(&j, &["join", &code]);
    assert_eq!(v["action"], "joined", "{v}");
    assert_eq!(a.export(), j.export(), "the joiner holds the project");
    println!(
        "td join <code> to a {issues}-issue project held locally: {:.2} s (the plain pull-join above: {:.2} s; ratio {:.2}x)",
        s(join_code_t),
        s(join_t),
        s(join_code_t) / s(join_t)
    );
}
