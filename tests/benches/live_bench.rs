//! How long a teammate's change takes to show up with nobody typing (issue 27; bench binary,
//! figures printed, no thresholds): from the moment `td create` returns on machine A to the
//! moment the issue is in machine B's database, with B's sync loop (`td sync watch`) running
//!
//! - through a real `tursodb --sync-server` hub (A's loop pushes, B's loop pulls), and
//! - through a kept peer connection (A serves, B's loop keeps a connection to A),
//!
//! changes made at random intervals (0–3 s, so the hub loop's idle back-off shows), with
//! p50/p95/max. The baseline, measured in the same run, is what a user typing gets at best: on
//! the hub, `td sync` on A then `td sync` on B; between peers, one `td peer sync a` on B.
//!
//! Run (release binary): `cargo build --release -p td-cli &&
//! TD_BIN=$PWD/target/release/td cargo bench -p td-tests --bench live_bench`
//! (`TD_LIVE_CHANGES`, default 30, changes per path).

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use td_tests::hub::{founder_on, joined, Hub};
use td_tests::Replica;

struct Loop(Child);

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sync_watch(r: &Replica) -> Loop {
    Loop(
        r.command(None, &["sync", "watch"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Waits until B's database holds an issue titled `title`; the time it took.
fn until_visible(b: &Replica, title: &str, since: Instant) -> Duration {
    loop {
        // Opened per look: a writer may hold the file for a moment (a busy read counts as
        // not there yet).
        let n: i64 = rusqlite::Connection::open_with_flags(
            b.db(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .and_then(|c| {
            c.query_row(
                "SELECT count(*) FROM issues WHERE title = ?1",
                [title],
                |r| r.get(0),
            )
        })
        .unwrap_or(0);
        if n > 0 {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < Duration::from_secs(120),
            "{title} never arrived"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A cheap, repeatable pseudo-random pause of 0–3 s.
fn pause(i: u64) {
    let x = i.wrapping_mul(2654435761) % 3000;
    std::thread::sleep(Duration::from_millis(x));
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn report(what: &str, mut lat: Vec<Duration>, baseline: Duration) {
    lat.sort();
    let (p50, p95, max) = (pct(&lat, 0.5), pct(&lat, 0.95), *lat.last().unwrap());
    println!(
        "  {what:<22} p50 {:>6.0} ms  p95 {:>6.0} ms  max {:>6.0} ms  ({} changes); typed baseline {:>6.0} ms: p50 {:.2}x",
        p50.as_secs_f64() * 1e3,
        p95.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3,
        lat.len(),
        baseline.as_secs_f64() * 1e3,
        p50.as_secs_f64() / baseline.as_secs_f64()
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let n: u64 = std::env::var("TD_LIVE_CHANGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    println!("teammate's change → visible on B, nobody typing ({n} changes per path)");

    // Through the hub.
    let hub = Hub::start();
    let a = founder_on(&hub, "Founding issue");
    let b = joined(&a, &[], "member");
    let baseline = {
        a.create("Typed baseline", &[]);
        let t = Instant::now();
        a.json(&["sync"]);
        b.json(&["sync"]);
        t.elapsed()
    };
    let (_la, _lb) = (sync_watch(&a), sync_watch(&b));
    std::thread::sleep(Duration::from_secs(1));
    let mut lat = Vec::new();
    for i in 0..n {
        pause(i);
        let title = format!("Live through the hub {i}");
        a.create(&title, &[]);
        lat.push(until_visible(&b, &title, Instant::now()));
    }
    report("hub (sync loops)", lat, baseline);
    drop((_la, _lb));

    // Through a kept peer connection.
    let a = Replica::init();
    a.create("Served from A", &[]);
    let b = Replica::init();
    let sa = a.serve();
    a.befriend(&b, "a", &sa.addr);
    b.json(&["peer", "sync", "a"]);
    let baseline = {
        a.create("Typed peer baseline", &[]);
        let t = Instant::now();
        b.json(&["peer", "sync", "a"]);
        t.elapsed()
    };
    let _lb = sync_watch(&b);
    std::thread::sleep(Duration::from_secs(1));
    let mut lat = Vec::new();
    for i in 0..n {
        pause(i + 7);
        let title = format!("Live between peers {i}");
        a.create(&title, &[]);
        lat.push(until_visible(&b, &title, Instant::now()));
    }
    report("peer (kept connection)", lat, baseline);
    sa.stop();
}
