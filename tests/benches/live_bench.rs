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
//! (`TD_LIVE_CHANGES`, default 100, changes per path; `TD_LIVE_IDLE_SECS`, default 300, the idle
//! measurement).

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
    // `TD_LIVE_LOGS=dir` keeps each loop's log (`<dir>/<pid>.log`) to look at afterwards.
    let out = match std::env::var("TD_LIVE_LOGS") {
        Ok(dir) => {
            let path = std::path::Path::new(&dir).join(format!(
                "{}.log",
                r.root
                    .parent()
                    .unwrap()
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
            ));
            Stdio::from(std::fs::File::create(path).unwrap())
        }
        Err(_) => Stdio::null(),
    };
    Loop(
        r.command(None, &["sync", "watch"])
            .stdout(out)
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

/// From `td create` returning on A to the issue on B's `td monitor` screen (the loop runs
/// inside the monitor; the screen read through tmux every 50 ms), through the hub.
fn monitor_latency(n: u64) {
    let hub = Hub::start();
    let a = founder_on(&hub, "Founding issue");
    let b = joined(&a, &[], "member");
    let _la = sync_watch(&a);
    let t = td_tests::tmux::Tmux::start(200, 50, &[]);
    t.text(&format!(
        "XDG_CONFIG_HOME={} {} -w {} monitor",
        b.config.display(),
        td_tests::td_bin().display(),
        b.root.display()
    ));
    t.keys(&["Enter"]);
    t.wait_for("the monitor", 60, |s| s.contains("Founding issue"));
    // (the monitor runs the hub's part of the loop: autosync is on by default with a hub)
    std::thread::sleep(Duration::from_secs(1));
    let mut lat = Vec::new();
    for i in 0..n {
        pause(i + 11);
        let title = format!("On the monitor {i}");
        a.create(&title, &[]);
        let t0 = Instant::now();
        t.wait_for("the change on the monitor", 120, |s| s.contains(&title));
        lat.push(t0.elapsed());
    }
    t.keys(&["q"]);
    let baseline = {
        a.create("Typed baseline", &[]);
        let t0 = Instant::now();
        a.json(&["sync"]);
        b.json(&["sync"]);
        t0.elapsed()
    };
    report("hub → td monitor screen", lat, baseline);
}

/// CPU seconds (user + system, every thread) and context switches (wake-ups) of process `pid`
/// so far, from /proc.
fn cpu_and_wakeups(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let mut switches = 0u64;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            let st = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
            for l in st.lines() {
                if l.starts_with("voluntary_ctxt_switches")
                    || l.starts_with("nonvoluntary_ctxt_switches")
                {
                    switches += l
                        .split_whitespace()
                        .nth(1)
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0);
                }
            }
        }
    }
    (ticks / 100.0, switches)
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
    let (p50, p95, p99, max) = (
        pct(&lat, 0.5),
        pct(&lat, 0.95),
        pct(&lat, 0.99),
        *lat.last().unwrap(),
    );
    println!(
        "  {what:<24} p50 {:>6.0} ms  p95 {:>6.0} ms  p99 {:>6.0} ms  max {:>6.0} ms  ({} changes); typed baseline {:>6.0} ms: p50 {:.2}x",
        p50.as_secs_f64() * 1e3,
        p95.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
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
        .unwrap_or(100);
    println!("teammate's change → visible on B, nobody typing ({n} changes per path)");
    // `TD_LIVE_ONLY=monitor`: only the monitor's figure (it needs tmux); `idle`: only the idle
    // costs.
    match std::env::var("TD_LIVE_ONLY").as_deref() {
        Ok("monitor") => {
            monitor_latency(n.min(30));
            return;
        }
        Ok("idle") => {
            let hub = Hub::start();
            let a = founder_on(&hub, "Founding issue");
            let b = joined(&a, &[], "member");
            idle_costs(&hub, &b);
            return;
        }
        _ => {}
    }

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
    // `TD_LIVE_ONLY=rest`: skip this first figure (to rerun the others).
    let rest_only = std::env::var("TD_LIVE_ONLY").as_deref() == Ok("rest");
    for i in 0..if rest_only { 0 } else { n } {
        pause(i);
        let title = format!("Live through the hub {i}");
        a.create(&title, &[]);
        lat.push(until_visible(&b, &title, Instant::now()));
    }
    if !rest_only {
        report("hub (sync loops)", lat, baseline);
    }
    drop(_lb);
    // td serve runs the hub's part of the loop where autosync is on (the default with a hub).
    b.autosync.set(true);

    // Readable through B's `td serve` API (the loop runs inside td serve).
    let server = td_tests::WebServer::spawn(b.command(None, &["serve", "-p", "0"]));
    std::thread::sleep(Duration::from_secs(1));
    let mut lat = Vec::new();
    for i in 0..n.min(50) {
        pause(i + 3);
        let title = format!("Live on the API {i}");
        a.create(&title, &[]);
        let t = Instant::now();
        let q = "/v1/issues?all=true&limit=1000";
        loop {
            let (_, v) = td_tests::http_json(server.port, "GET", q, &[], None);
            let seen = v["data"]["issues"]
                .as_array()
                .is_some_and(|l| l.iter().any(|x| x["title"] == title.as_str()));
            if seen {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(120),
                "{title} never on the API"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        lat.push(t.elapsed());
    }
    report("hub → td serve API", lat, baseline);
    drop(server);

    // A offline for a minute (its hub requests cut off by a proxy) makes a change; the time
    // from the network's return until B holds it.
    let proxy = td_tests::hub::Proxy::start(hub.port);
    drop(_la);
    a.json(&["config", "set", "database.url", &proxy.url()]);
    let _la = sync_watch(&a);
    let _lb = sync_watch(&b);
    std::thread::sleep(Duration::from_secs(2));
    proxy.inject_matching("POST", 0, td_tests::hub::Fault::Reset, usize::MAX);
    let offline = std::env::var("TD_LIVE_OFFLINE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    a.create("Written during a minute offline", &[]);
    std::thread::sleep(Duration::from_secs(offline));
    proxy.inject_matching("POST", 0, td_tests::hub::Fault::Reset, 0);
    let back = Instant::now();
    let caught_up = until_visible(&b, "Written during a minute offline", back);
    println!(
        "  after {offline} s offline      caught up {:.0} ms after the network returned (the loop's retry wait had grown to at most 60 s)",
        caught_up.as_secs_f64() * 1e3
    );

    drop((_la, _lb));
    idle_costs(&hub, &b);
    peer_latency(n);
}

/// Idle: B's loop alone for a while (`TD_LIVE_IDLE_SECS`, default 300), its CPU, wake-ups and
/// hub requests (counted by a proxy in front of the hub).
fn idle_costs(hub: &Hub, b: &Replica) {
    let counter = td_tests::hub::Proxy::start(hub.port);
    b.json(&["config", "set", "database.url", &counter.url()]);
    let idle_loop = sync_watch(b);
    // A new hub address starts its own cursors (everything is pushed and read once more),
    // and the loop keeps a 1 s period for two minutes after a round that moved records: the
    // measurement starts after that.
    std::thread::sleep(Duration::from_secs(130));
    let idle: u64 = std::env::var("TD_LIVE_IDLE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let pid = idle_loop.0.id();
    let (cpu0, wake0) = cpu_and_wakeups(pid);
    let hits0 = counter.hits.load(std::sync::atomic::Ordering::SeqCst);
    std::thread::sleep(Duration::from_secs(idle));
    let (cpu1, wake1) = cpu_and_wakeups(pid);
    let hits1 = counter.hits.load(std::sync::atomic::Ordering::SeqCst);
    let per_min = |x: f64| x * 60.0 / idle as f64;
    println!(
        "  idle {idle} s               CPU {:.2} s/min ({:.2}% of a core), {:.0} wake-ups/min, {:.1} hub requests/min",
        per_min(cpu1 - cpu0),
        100.0 * (cpu1 - cpu0) / idle as f64,
        per_min((wake1 - wake0) as f64),
        per_min((hits1 - hits0) as f64)
    );
    drop(idle_loop);
}

fn peer_latency(n: u64) {
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
