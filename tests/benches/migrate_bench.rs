//! Migration benchmark (bench binary; figures printed, no thresholds): a td database of 10k
//! issues with logs, comments and handoffs is imported with `td init --migrate-from` (wall time,
//! peak RSS), beside the floor measured in the same run: copying the same rows table to table
//! with plain SQL into a fresh td schema.
//!
//! Run: `cargo build --release -p td-cli && cargo bench -p td-tests --bench migrate_bench`

use std::path::Path;
use std::time::{Duration, Instant};

use td_tests::Replica;

use td_engine::schema::SYNCED_TABLES as TABLES;

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("source.db");
    let n: usize = std::env::var("TD_BENCH_ISSUES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    td_tests::generate_td_db(&src, n);
    // Floor: plain SQL copy of every synced table into a fresh td schema.
    let floor_db = tmp.path().join("floor.db");
    let t = Instant::now();
    let conn = rusqlite::Connection::open(&floor_db).unwrap();
    conn.execute_batch(td_engine::schema::TD_SCHEMA_SQL)
        .unwrap();
    conn.execute(&format!("ATTACH DATABASE '{}' AS src", src.display()), [])
        .unwrap();
    conn.execute_batch("BEGIN").unwrap();
    for tbl in TABLES {
        conn.execute(
            &format!("INSERT INTO main.{tbl} SELECT * FROM src.{tbl}"),
            [],
        )
        .unwrap();
    }
    conn.execute_batch("COMMIT").unwrap();
    let floor = t.elapsed();
    drop(conn);
    let automerge_only = automerge_floor(&src);

    let r = Replica::new();
    let t = Instant::now();
    let mut child = r
        .command(
            None,
            &["init", "--migrate-from", src.to_str().unwrap(), "--json"],
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut peak = 0u64;
    while child.try_wait().unwrap().is_none() {
        if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            if let Some(k) = s
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
            {
                peak = peak.max(k);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    let wall = t.elapsed();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows: u64 = v["imported"]
        .as_object()
        .unwrap()
        .values()
        .map(|x| x.as_u64().unwrap())
        .sum();
    println!("migrate {n} issues ({rows} rows): {:.2} s, peak RSS {:.1} MB | floor (plain SQL copy) {:.3} s | ratio {:.1}x (target <= 3)",
        wall.as_secs_f64(), peak as f64 / 1024.0, floor.as_secs_f64(), wall.as_secs_f64() / floor.as_secs_f64());
    println!("  for scale: one Automerge document per row with its non-null columns, committed and saved, no SQL: {:.2} s ({:.1}x the plain SQL copy); migration / that = {:.2}x",
        automerge_only.as_secs_f64(), automerge_only.as_secs_f64() / floor.as_secs_f64(), wall.as_secs_f64() / automerge_only.as_secs_f64());
}

/// What Automerge alone costs for the same rows: one document per row of every synced table,
/// one `put` per non-null column (text columns as Automerge text, as td stores them), one
/// commit, one save. No signing, no log, no SQL writes.
fn automerge_floor(src: &Path) -> Duration {
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ObjType, ROOT};
    let conn = rusqlite::Connection::open(src).unwrap();
    let mut rows: Vec<Vec<(String, rusqlite::types::Value)>> = Vec::new();
    for tbl in TABLES {
        let mut stmt = conn.prepare(&format!("SELECT * FROM {tbl}")).unwrap();
        let names: Vec<String> = stmt.column_names().map(String::from).collect();
        let got = stmt
            .query_map([], |r| {
                Ok(names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (n.clone(), r.get::<_, rusqlite::types::Value>(i).unwrap()))
                    .collect::<Vec<_>>())
            })
            .unwrap()
            .map(Result::unwrap);
        rows.extend(got);
    }
    let t = Instant::now();
    for row in &rows {
        let mut d = AutoCommit::new();
        for (name, v) in row {
            match v {
                rusqlite::types::Value::Text(s)
                    if name == "description" || name == "acceptance" =>
                {
                    let obj = d.put_object(ROOT, name.as_str(), ObjType::Text).unwrap();
                    d.update_text(&obj, s).unwrap();
                }
                rusqlite::types::Value::Text(s) => d.put(ROOT, name.as_str(), s.as_str()).unwrap(),
                rusqlite::types::Value::Integer(i) => d.put(ROOT, name.as_str(), *i).unwrap(),
                _ => {}
            }
        }
        d.commit();
        std::hint::black_box(d.save());
    }
    t.elapsed()
}
