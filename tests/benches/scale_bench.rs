//! Big projects (issue 28; bench binary, figures printed, no thresholds): a realistic td
//! database (`td_tests::scale`) of each size in `TD_SCALE_SIZES` (default 10k, 50k and 100k
//! issues) is migrated, pushed to a real `tursodb` hub and joined by a teammate, with wall
//! time, peak RSS and storage for every step, beside a same-run baseline (a plain SQL copy of
//! the same rows into td's schema), and the figures printed side by side to show how they grow.
//!
//! Run: `cargo build --release -p td-cli && TD_BIN=$PWD/target/release/td cargo bench -p td-tests --bench scale_bench`
//! (about 15 minutes on 2 cores for the default sizes; `TD_SCALE_SIZES=2000,10000` for a quick look;
//! `TD_SCALE_WRITE=big.db TD_SCALE_SIZES=100000` only writes the generated td database).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use td_tests::hub::Hub;
use td_tests::Replica;

/// One command's cost: wall time, peak RSS (KiB), and its JSON output.
struct Cost {
    wall: Duration,
    peak_kb: u64,
    out: Vec<u8>,
}

fn measured(r: &Replica, args: &[&str]) -> Cost {
    let t = Instant::now();
    let mut child = r
        .command(None, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // The output is drained by a thread so a large list never blocks the child.
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut v).unwrap();
        v
    });
    let mut peak = 0u64;
    while child.try_wait().unwrap().is_none() {
        if let Some(k) = td_tests::peak_rss_kb(pid) {
            peak = peak.max(k);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = child.wait().unwrap();
    let out = reader.join().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(
        status.success(),
        "td {args:?} failed: {err}{}",
        String::from_utf8_lossy(&out)
    );
    Cost {
        wall: t.elapsed(),
        peak_kb: peak,
        out,
    }
}

fn file_mb(p: &Path) -> f64 {
    let mut total = 0u64;
    for suffix in ["", "-wal", "-journal"] {
        let f = format!("{}{suffix}", p.display());
        total += std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0);
    }
    total as f64 / 1e6
}

/// A plain SQL copy of every synced table into a fresh td schema: the floor a migration is
/// measured against.
fn sql_copy(src: &Path, dst: &Path) -> Duration {
    let t = Instant::now();
    let conn = rusqlite::Connection::open(dst).unwrap();
    conn.execute_batch(td_engine::schema::TD_SCHEMA_SQL)
        .unwrap();
    conn.execute(&format!("ATTACH DATABASE '{}' AS src", src.display()), [])
        .unwrap();
    conn.execute_batch("BEGIN").unwrap();
    for tbl in td_engine::schema::SYNCED_TABLES {
        conn.execute(
            &format!("INSERT INTO main.{tbl} SELECT * FROM src.{tbl}"),
            [],
        )
        .unwrap();
    }
    conn.execute_batch("COMMIT").unwrap();
    t.elapsed()
}

struct Figures {
    n: u64,
    rows: u64,
    records: u64,
    td_mb: f64,
    floor: Duration,
    migrate: Cost,
    db_mb: f64,
    push: Cost,
    hub_mb: f64,
    record_bytes: f64,
    join: Cost,
    list: Cost,
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn mb(kb: u64) -> String {
    format!("{:.0} MB", kb as f64 / 1024.0)
}

fn run(n: u64) -> Figures {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("td.db");
    let generated = td_tests::scale::generate(&src, n, 28);
    let td_mb = file_mb(&src);
    let floor = sql_copy(&src, &tmp.path().join("floor.db"));

    let a = Replica::new();
    let migrate = measured(
        &a,
        &["init", "--migrate-from", src.to_str().unwrap(), "--json"],
    );
    let db_mb = file_mb(&a.db());
    // The records' own bytes: body, signature where there is one, and hash.
    let (records, record_bytes): (i64, f64) = a
        .store()
        .conn()
        .query_row(
            "SELECT count(*), coalesce(sum(length(body) + coalesce(length(signature), 0) + 32), 0) FROM crdt_changes",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let records = records as u64;

    let hub = Hub::start();
    let b = Replica::init();
    a.json(&["member", "add", &b.public_key()]);
    let hub_before = file_mb(hub.db_file());
    let push = measured(&a, &["sync", "init", "--hub", &hub.url(), "--json"]);
    let hub_mb = file_mb(hub.db_file()) - hub_before;
    let join = measured(&b, &["sync", "init", "--hub", &hub.url(), "--json"]);
    let list = measured(&b, &["list", "--all", "-n", "10000000", "--json"]);
    let listed = serde_json::from_slice::<serde_json::Value>(&list.out)
        .map(|v| v.as_array().map_or(0, Vec::len))
        .unwrap_or(0);
    assert_eq!(
        listed as u64, generated.issues,
        "the joiner lists every issue"
    );
    assert_eq!(a.export(), b.export(), "founder and joiner export the same");
    Figures {
        n,
        rows: generated.rows,
        records,
        td_mb,
        floor,
        migrate,
        db_mb,
        push,
        hub_mb,
        record_bytes,
        join,
        list,
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    // `TD_SCALE_WRITE=path TD_SCALE_SIZES=n`: only write the generated td database (to try a
    // big project by hand, or to profile one step).
    if let Ok(path) = std::env::var("TD_SCALE_WRITE") {
        let n = std::env::var("TD_SCALE_SIZES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10_000);
        let g = td_tests::scale::generate(Path::new(&path), n, 28);
        println!("wrote {path}: {g:?}");
        return;
    }
    let sizes: Vec<u64> = std::env::var("TD_SCALE_SIZES")
        .unwrap_or_else(|_| "10000,50000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let mut all = Vec::new();
    for n in sizes {
        eprintln!("scale_bench: {n} issues…");
        let f = run(n);
        println!(
            "{} issues ({} rows, {} records): migrate {} ({:.1}x the SQL copy's {}), peak {}; db {:.0} MB = {:.2}x td's {:.0} MB; push {} peak {}; hub +{:.0} MB = {:.2}x the records' {:.0} MB; join {} ({:.0} us/record) peak {}; list --json {} peak {}",
            f.n, f.rows, f.records,
            secs(f.migrate.wall), f.migrate.wall.as_secs_f64() / f.floor.as_secs_f64(), secs(f.floor), mb(f.migrate.peak_kb),
            f.db_mb, f.db_mb / f.td_mb, f.td_mb,
            secs(f.push.wall), mb(f.push.peak_kb),
            f.hub_mb, f.hub_mb / (f.record_bytes / 1e6), f.record_bytes / 1e6,
            secs(f.join.wall), f.join.wall.as_secs_f64() * 1e6 / f.records.max(1) as f64, mb(f.join.peak_kb),
            secs(f.list.wall), mb(f.list.peak_kb),
        );
        all.push(f);
    }
    // Side by side: each figure per issue (or per record), so linear growth reads as a
    // constant row.
    println!(
        "\n| measure | {} |",
        all.iter()
            .map(|f| format!("{} issues", f.n))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---|{}", "---|".repeat(all.len()));
    let row = |name: &str, cell: &dyn Fn(&Figures) -> String| {
        println!(
            "| {name} | {} |",
            all.iter().map(cell).collect::<Vec<_>>().join(" | ")
        );
    };
    row("td database", &|f| format!("{:.0} MB", f.td_mb));
    row("plain SQL copy (baseline)", &|f| secs(f.floor));
    row("migrate", &|f| secs(f.migrate.wall));
    row("migrate / SQL copy", &|f| {
        format!(
            "{:.1}x",
            f.migrate.wall.as_secs_f64() / f.floor.as_secs_f64()
        )
    });
    row("migrate per issue", &|f| {
        format!("{:.0} us", f.migrate.wall.as_secs_f64() * 1e6 / f.n as f64)
    });
    row("migrate peak RSS", &|f| mb(f.migrate.peak_kb));
    row(".todos/issues.db / td's", &|f| {
        format!("{:.2}x", f.db_mb / f.td_mb)
    });
    row("push (td sync init)", &|f| secs(f.push.wall));
    row("push peak RSS", &|f| mb(f.push.peak_kb));
    row("hub growth / records' bytes", &|f| {
        format!("{:.2}x", f.hub_mb / (f.record_bytes / 1e6))
    });
    row("join", &|f| secs(f.join.wall));
    row("join per record", &|f| {
        format!(
            "{:.0} us",
            f.join.wall.as_secs_f64() * 1e6 / f.records.max(1) as f64
        )
    });
    row("join peak RSS", &|f| mb(f.join.peak_kb));
    row("list --json (all) peak RSS", &|f| mb(f.list.peak_kb));
}
