//! Foundation benchmark (bench binary; figures printed, no thresholds):
//! - `td create` / `td start` wall time (p50 of real process runs) with 1k, 10k, 100k issues
//!   present, and the 100k/1k ratio;
//! - the baseline: a process that opens the same database and inserts one row with rusqlite;
//! - `td list` over 10k issues;
//! - `td rebuild` of 100k changes beside its floor: applying the same changes to fresh
//!   Automerge documents plus inserting the rows with rusqlite.
//!
//! Run: `cargo build --release -p td-cli && cargo bench -p td-tests --bench td_bench`

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use td_engine::doc::{self, Field};
use td_engine::model::{now_timestamp, Kind};
use td_engine::{MachineIdentity, Project, SessionContext, Store};

const RUNS: usize = 15;

fn td_bin() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().and_then(Path::parent).unwrap().join("td");
    assert!(
        bin.exists(),
        "build the release binary first: cargo build --release -p td-cli"
    );
    bin
}

/// Creates `n` issues in bulk through the engine (same documents `td create` makes, in large
/// transactions so setup is quick); with `logs`, each issue also gets a progress log (every
/// tenth mentions "cache"), for the cross-entity query benchmark.
fn populate(root: &Path, identity: &MachineIdentity, n: usize, logs: bool) {
    let ctx = SessionContext {
        explicit: Some("bench".into()),
        ..Default::default()
    };
    Project::init(root, identity.clone(), &ctx).unwrap();
    let mut store = Store::open(root, identity.clone()).unwrap();
    let mut made = 0;
    while made < n {
        let batch = (n - made).min(5000);
        store
            .write("ses_bench", |tx| {
                for i in 0..batch {
                    let id = Kind::Issue.new_id();
                    let now = now_timestamp();
                    tx.change(&id, |d| {
                        doc::put_str(d, "title", &format!("Bench issue number {}", made + i))?;
                        doc::put_str(d, "type", "task")?;
                        doc::put_str(d, "priority", ["P0", "P1", "P2", "P3"][i % 4])?;
                        doc::put_str(d, "created_at", &now)?;
                        doc::put_str(d, "updated_at", &now)?;
                        doc::put_str(d, "creator_session", "ses_bench")?;
                        doc::put_text(
                            d,
                            "description",
                            "A description of moderate length for the benchmark.",
                        )?;
                        let mut wf = std::collections::BTreeMap::new();
                        wf.insert("status".to_string(), Field::Str("open".into()));
                        doc::put_workflow(d, &wf)
                    })?;
                    if logs {
                        let log = Kind::Log.new_id();
                        let k = made + i;
                        tx.change(&log, |d| {
                            doc::put_str(d, "issue_id", &id)?;
                            doc::put_str(d, "session_id", "ses_bench")?;
                            doc::put_str(d, "work_session_id", "")?;
                            let msg = if k % 10 == 0 {
                                format!("looked into the cache for {k}")
                            } else {
                                format!("progress note {k}")
                            };
                            doc::put_str(d, "message", &msg)?;
                            doc::put_str(d, "type", "progress")?;
                            doc::put_str(d, "timestamp", &now)
                        })?;
                    }
                }
                Ok(())
            })
            .unwrap();
        made += batch;
    }
}

/// Starts `td serve` on the project, times `GET /v1/issues` (every issue) over a fresh
/// connection each time, then opens 100 event-stream clients and reads the server's RSS.
fn serve_list(root: &Path, cfg: &Path) -> (Duration, u64) {
    use std::io::{Read, Write};
    let mut serve = Command::new(td_bin());
    serve
        .arg("-w")
        .arg(root)
        .args(["serve", "-p", "0"])
        .env("XDG_CONFIG_HOME", cfg);
    let web = td_tests::WebServer::spawn(serve);
    let port = web.port;
    let get = || {
        let t = Instant::now();
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"GET /v1/issues?all=true&limit=100000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        assert!(out.starts_with(b"HTTP/1.1 200"));
        t.elapsed()
    };
    get();
    let gets: Vec<Duration> = (0..RUNS).map(|_| get()).collect();
    let clients: Vec<std::net::TcpStream> = (0..100)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(b"GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let rss = td_tests::peak_rss_kb(web.child.id()).unwrap_or(0);
    drop(clients);
    drop(web);
    (p50(gets), rss)
}

fn td(root: &Path, cfg: &Path, args: &[&str]) -> Duration {
    let t = Instant::now();
    let out = Command::new(td_bin())
        .arg("-w")
        .arg(root)
        .args(args)
        .env("XDG_CONFIG_HOME", cfg)
        .env("TD_SESSION_ID", "bench-runner")
        .output()
        .unwrap();
    let d = t.elapsed();
    assert!(
        out.status.success(),
        "td {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    d
}

fn p50(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The baseline process: opens the database with rusqlite (same pragmas) and inserts one row.
fn insert_one(db: &str) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.busy_timeout(Duration::from_secs(60)).unwrap();
    conn.pragma_update(None, "journal_mode", "TRUNCATE")
        .unwrap();
    conn.pragma_update(None, "foreign_keys", "ON").unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    // A longer id than td draws, so the baseline never collides with the populated rows.
    let id = format!("td-base{}", &Kind::Issue.new_id()[3..]);
    conn.execute(
        "INSERT INTO issues(id, title, created_at, updated_at) VALUES (?1, 'Baseline row insert', ?2, ?2)",
        [&id, &now_timestamp()],
    )
    .unwrap();
}

fn open_ids(db: &Path, k: usize) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT id FROM issues WHERE status='open' ORDER BY id LIMIT ?1")
        .unwrap();
    stmt.query_map([k as i64], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 3 && args[1] == "--insert-one" {
        insert_one(&args[2]);
        return;
    }
    if args.iter().any(|a| a == "--list" || a == "--test") {
        return; // cargo test/bench discovery probes
    }
    let self_exe = std::env::current_exe().unwrap();
    // TD_BENCH_SIZES=10000 runs one size (e.g. to look at the 10k figures alone).
    let sizes: Vec<usize> = match std::env::var("TD_BENCH_SIZES") {
        Ok(v) => v.split(',').filter_map(|n| n.trim().parse().ok()).collect(),
        Err(_) => vec![1_000, 10_000, 100_000],
    };
    let mut create_p50 = Vec::new();
    let mut start_p50 = Vec::new();
    println!("td foundation benchmark (release build, p50 of {RUNS} process runs)");
    for &n in &sizes {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("cfg");
        let root = dir.path().join("p");
        std::fs::create_dir_all(&root).unwrap();
        // The td binary and the populator share one machine key.
        let identity = MachineIdentity::generate();
        std::fs::create_dir_all(cfg.join("td")).unwrap();
        td_transport::identity::write_private(
            &cfg.join("td/machine.key"),
            &hex::encode(identity.seed()),
        )
        .unwrap();
        std::fs::write(cfg.join("td/machine.pub"), identity.public_key_hex()).unwrap();
        let t = Instant::now();
        populate(&root, &identity, n, n == 10_000);
        let setup = t.elapsed();
        let db = td_engine::store::db_path(&root);
        let creates: Vec<Duration> = (0..RUNS)
            .map(|i| td(&root, &cfg, &["create", &format!("Benchmark create {i}")]))
            .collect();
        let ids = open_ids(&db, RUNS);
        let starts: Vec<Duration> = ids
            .iter()
            .map(|id| td(&root, &cfg, &["start", id, "--force"]))
            .collect();
        let baseline: Vec<Duration> = (0..RUNS)
            .map(|_| {
                let t = Instant::now();
                let s = Command::new(&self_exe)
                    .arg("--insert-one")
                    .arg(&db)
                    .status()
                    .unwrap();
                assert!(s.success());
                t.elapsed()
            })
            .collect();
        let (c, s, b) = (p50(creates), p50(starts), p50(baseline));
        println!(
            "{n:>7} issues: create {:7.2} ms  start {:7.2} ms  | baseline insert-one process {:6.2} ms  create/baseline {:.2}x  (setup {:.1}s)",
            ms(c), ms(s), ms(b), ms(c) / ms(b), setup.as_secs_f64()
        );
        create_p50.push(c);
        start_p50.push(s);
        if n == 10_000 {
            let lists: Vec<Duration> = (0..RUNS)
                .map(|_| td(&root, &cfg, &["list", "--json", "-n", "100000"]))
                .collect();
            let list = p50(lists);
            println!("         list over 10k issues: {:7.2} ms (p50)", ms(list));
            // What agents run at the start of every context (issue 13's target: usage within
            // 2x of one show), beside `td list --json` in the same run.
            let usages: Vec<Duration> = (0..RUNS)
                .map(|_| td(&root, &cfg, &["usage", "--new-session", "-q"]))
                .collect();
            let plain: Vec<Duration> = (0..RUNS)
                .map(|_| td(&root, &cfg, &["usage", "-q"]))
                .collect();
            let shows: Vec<Duration> = ids
                .iter()
                .map(|id| td(&root, &cfg, &["show", id, "--json"]))
                .collect();
            let (u, sh) = (p50(usages), p50(shows));
            println!(
                "         usage -q (same session): {:7.2} ms",
                ms(p50(plain))
            );
            // TDQ with a cross-entity and a plain condition (issue 14's target: within 2x of
            // list), and a plain query alone.
            let cross: Vec<Duration> = (0..RUNS)
                .map(|_| {
                    td(
                        &root,
                        &cfg,
                        &[
                            "query",
                            "log.message ~ \"cache\" AND priority <= P1",
                            "--json",
                            "-n",
                            "0",
                        ],
                    )
                })
                .collect();
            let plain_q: Vec<Duration> = (0..RUNS)
                .map(|_| {
                    td(
                        &root,
                        &cfg,
                        &["query", "priority <= P1", "--json", "-n", "0"],
                    )
                })
                .collect();
            println!(
                "         query log.message ~ cache AND priority <= P1: {:7.2} ms  plain query: {:7.2} ms  (p50)  cross/list {:.2}x",
                ms(p50(cross.clone())),
                ms(p50(plain_q)),
                ms(p50(cross)) / ms(list)
            );
            // td serve (issue 15's target: GET /v1/issues within 1x of td list --json, the
            // server keeping its store open).
            let (get, rss) = serve_list(&root, &cfg);
            println!(
                "         td serve GET /v1/issues (all 10k): {:7.2} ms (p50)  get/list {:.2}x  (serve peak RSS {} KiB, 100 event clients open)",
                ms(get),
                ms(get) / ms(list),
                rss
            );
            println!(
                "         usage --new-session -q: {:7.2} ms  show: {:6.2} ms  (p50)  usage/show {:.2}x  usage/list {:.2}x",
                ms(u),
                ms(sh),
                ms(u) / ms(sh),
                ms(u) / ms(list)
            );
        }
        if n == 100_000 {
            let t = Instant::now();
            td(&root, &cfg, &["rebuild"]);
            let rebuild = t.elapsed();
            let floor = td_tests::floor::apply_floor(&db);
            println!(
                "         rebuild of {} changes: {:.2} s  | floor (fresh Automerge docs + rusqlite inserts) {:.2} s  ratio {:.2}x",
                n + 2 * RUNS + RUNS,
                rebuild.as_secs_f64(),
                floor.as_secs_f64(),
                rebuild.as_secs_f64() / floor.as_secs_f64()
            );
        }
    }
    if let (Some(first), Some(last)) = (sizes.first(), sizes.last()) {
        let k = |n: usize| format!("{}k", n / 1000);
        println!(
            "ratio {}/{}: create {:.2}x  start {:.2}x  (target ≤ 1.5)",
            k(*last),
            k(*first),
            ms(create_p50[create_p50.len() - 1]) / ms(create_p50[0]),
            ms(start_p50[start_p50.len() - 1]) / ms(start_p50[0])
        );
    }
}
