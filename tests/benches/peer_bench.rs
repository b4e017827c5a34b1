//! `td peer sync` benchmark (bench binary; figures printed, no thresholds):
//! two fresh replicas on loopback, one holding 10k issues × 10 changes (100k changes).
//! Full sync: wall time, bytes on the wire, peak RSS; then one new change and an incremental
//! sync: wall time and bytes. Beside them, the floor measured in the same run: applying the
//! same 100k changes to fresh Automerge documents and inserting the rows in one transaction.
//!
//! Run: `cargo build --release -p td-cli && cargo bench -p td-tests --bench peer_bench`

use std::time::{Duration, Instant};

use td_tests::Replica;

/// Runs `td peer sync a --json` on `b`, sampling its peak RSS; returns (wall, json, peak kB).
fn timed_sync(b: &Replica) -> (Duration, serde_json::Value, u64) {
    let t = Instant::now();
    let mut child = b
        .command(None, &["peer", "sync", "a", "--json"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut peak = 0;
    while child.try_wait().unwrap().is_none() {
        if let Some(k) = td_tests::peak_rss_kb(pid) {
            peak = peak.max(k);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    let wall = t.elapsed();
    assert!(
        out.status.success(),
        "sync failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (wall, v[0].clone(), peak)
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let (issues, per) = (10_000usize, 10usize);
    let a = Replica::init();
    let t = Instant::now();
    td_tests::bulk_issues(&a, issues, per);
    println!(
        "setup: {} changes in {:.1}s",
        issues * per,
        t.elapsed().as_secs_f64()
    );
    let b = Replica::init();
    let serving = a.serve();
    a.befriend(&b, "a", &serving.addr);

    let (wall, v, peak) = timed_sync(&b);
    let received = v["received"].as_u64().unwrap();
    let frames =
        v["bytes"]["frames_in"].as_u64().unwrap() + v["bytes"]["frames_out"].as_u64().unwrap();
    let udp = v["bytes"]["udp_in"].as_u64().unwrap() + v["bytes"]["udp_out"].as_u64().unwrap();
    assert_eq!(a.export(), b.export(), "replicas must converge");
    let floor = td_tests::floor::apply_and_store_floor(&a.db());
    let strict = td_tests::floor::apply_floor(&a.db());
    println!("full sync of {received} changes: {:.2} s  | floor (the changes applied to fresh Automerge docs and inserted into SQLite, plus the issue rows, one tx) {:.2} s  ratio {:.2}x (target <= 1.5)",
        wall.as_secs_f64(), floor.as_secs_f64(), wall.as_secs_f64() / floor.as_secs_f64());
    println!(
        "  beside the stricter floor without the change inserts (issue rows only) {:.2} s: {:.2}x",
        strict.as_secs_f64(),
        wall.as_secs_f64() / strict.as_secs_f64()
    );
    // Encryption itself (docs/encryption.md): sealing and opening as many records as the
    // round carried, of the round's mean size, in-process, beside the floor above.
    let size = (frames / received.max(1)) as usize;
    let (epoch, key) = td_engine::sealing::new_epoch();
    let payload = vec![7u8; size];
    let t = Instant::now();
    let sealed: Vec<Vec<u8>> = (0..received)
        .map(|i| td_engine::sealing::seal_record(&epoch, &key, "prj", &[1; 16], i, &payload))
        .collect();
    let seal_t = t.elapsed();
    let t = Instant::now();
    for (i, env) in sealed.iter().enumerate() {
        td_engine::sealing::open_record(env, |_| Some(key), "prj", &[1; 16], i as u64).unwrap();
    }
    let open_t = t.elapsed();
    println!(
        "  encryption itself ({received} records of {size} B): seal {:.3} s, open {:.3} s; open is {:.1}% of the floor, {:.1}% of the sync",
        seal_t.as_secs_f64(),
        open_t.as_secs_f64(),
        100.0 * open_t.as_secs_f64() / floor.as_secs_f64(),
        100.0 * open_t.as_secs_f64() / wall.as_secs_f64()
    );
    println!(
        "  bytes: frames {frames} ({:.0} B/change), UDP {udp} ({:.0} B/change) (target <= 200)",
        frames as f64 / received as f64,
        udp as f64 / received as f64
    );
    println!(
        "  peak RSS of the syncing client: {:.1} MB (target < 300)",
        peak as f64 / 1024.0
    );

    // The same full round in-process over the sans-IO core (no QUIC, no second process): how
    // much of the wall time is the engine's own work.
    let c = Replica::init();
    c.json(&["peer", "add", "a", "127.0.0.1:1", "--key", &a.public_key()]);
    let (mut sa, mut sc) = (a.store(), c.store());
    sc.pin_peer_key(a.identity().public_key());
    let t = Instant::now();
    td_tests::inproc::clean_round(&mut sa, &mut sc);
    println!(
        "  same round in-process (sans-IO core, both sides on one thread): {:.2} s",
        t.elapsed().as_secs_f64()
    );
    drop((sa, sc));

    a.create("One more change after the full sync", &[]);
    let mut walls = Vec::new();
    let mut bytes = Vec::new();
    for i in 0..5 {
        if i > 0 {
            a.create(&format!("Incremental change {i}"), &[]);
        }
        let (w, v, _) = timed_sync(&b);
        assert_eq!(v["received"].as_u64(), Some(1), "{v}");
        walls.push(w);
        bytes
            .push(v["bytes"]["udp_in"].as_u64().unwrap() + v["bytes"]["udp_out"].as_u64().unwrap());
    }
    walls.sort();
    bytes.sort();
    println!("incremental round, one-shot `td peer sync` (a new td process and QUIC handshake per round): p50 {:.1} ms, UDP bytes p50 {} (targets < 50 ms, < 4 KB)",
        walls[walls.len() / 2].as_secs_f64() * 1000.0, bytes[bytes.len() / 2]);

    // The same over a kept connection: `td peer sync a --watch` on B, one change made on B.
    use std::io::{BufRead, BufReader};
    let mut watcher = b
        .command(
            None,
            &["peer", "sync", "a", "--watch", "--every", "3600", "--json"],
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watcher.stdout.take().unwrap()).lines();
    let _first = lines.next().unwrap().unwrap();
    let (mut walls, mut bytes, mut rounds) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..5 {
        let t = Instant::now();
        b.create(&format!("Change {i} made while watching"), &[]);
        let v: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        assert_eq!(v["sent"].as_u64(), Some(1), "{v}");
        walls.push(t.elapsed());
        rounds.push(v["ms"].as_u64().unwrap());
        bytes
            .push(v["bytes"]["udp_in"].as_u64().unwrap() + v["bytes"]["udp_out"].as_u64().unwrap());
    }
    let _ = std::process::Command::new("kill")
        .args(["-INT", &watcher.id().to_string()])
        .status();
    let _ = watcher.wait();
    walls.sort();
    bytes.sort();
    rounds.sort();
    println!("incremental round over a kept connection (`td peer sync --watch`): round p50 {} ms, UDP bytes p50 {}; from `td create` starting to the round reported p50 {:.1} ms (targets < 50 ms, < 4 KB)",
        rounds[rounds.len() / 2], bytes[bytes.len() / 2], walls[walls.len() / 2].as_secs_f64() * 1000.0);
    serving.stop();
}
