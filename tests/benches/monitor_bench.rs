//! `td monitor` benchmark (bench binary; figures printed, no thresholds): at 10k issues, the
//! frame render time and the refresh cost (reading the engine's monitor view), p50 and p99 of
//! 60 frames at 200×50 and 80×24 (`td monitor --profile-frames`, the same code the screen
//! uses, drawn off-screen), beside `td list --json` over the same issues in the same run; and
//! the CPU the real monitor uses in tmux while nothing changes.
//!
//! Run: `cargo build --release -p td-cli && cargo bench -p td-tests --bench monitor_bench`

use std::time::{Duration, Instant};

use td_tests::Replica;

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let r = Replica::init();
    td_tests::bulk_issues(&r, 10_000, 1);
    println!("td monitor at 10k issues (release build)");
    let mut lists = Vec::new();
    for _ in 0..15 {
        let t = Instant::now();
        r.ok(&["list", "--json", "-n", "100000"]);
        lists.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let list = pct(&mut lists, 0.5);
    for size in ["200x50", "80x24"] {
        let v: serde_json::Value = serde_json::from_str(&r.ok(&[
            "monitor",
            "--profile-frames",
            "60",
            "--profile-size",
            size,
        ]))
        .unwrap();
        let get = |k: &str| -> Vec<f64> {
            v[k].as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        };
        let (mut render, mut refresh) = (get("render_ms"), get("refresh_ms"));
        let rp50 = pct(&mut refresh, 0.5);
        println!(
            "  {size}: frame render p50 {:.2} ms p99 {:.2} ms | refresh (monitor view) p50 {rp50:.1} ms p99 {:.1} ms | td list --json p50 {list:.1} ms, refresh/list {:.2}x",
            pct(&mut render, 0.5),
            pct(&mut render, 0.99),
            pct(&mut refresh, 0.99),
            rp50 / list
        );
    }
    // Idle: the real monitor in tmux, nothing changing, for 10 s after a second to settle.
    let t = td_tests::tmux::Tmux::start(200, 50, &[]);
    t.text(&format!(
        "XDG_CONFIG_HOME={} {} -w {} monitor",
        r.config.display(),
        td_tests::td_bin().display(),
        r.root.display()
    ));
    t.keys(&["Enter"]);
    t.wait_for("the monitor", 60, |s| s.contains("3 Tasks"));
    std::thread::sleep(Duration::from_secs(1));
    let out = std::process::Command::new("pgrep")
        .args(["-P", &t.pane_pid().to_string()])
        .output()
        .unwrap();
    let pid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let before = cpu_ticks(pid);
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(10));
    let used = (cpu_ticks(pid) - before) as f64 / 100.0;
    println!(
        "  idle (nothing changing, 10 s): {:.2}% of one core",
        100.0 * used / start.elapsed().as_secs_f64()
    );
    // One change from another process: the screen shows it, and what that cost.
    let before = cpu_ticks(pid);
    let t0 = Instant::now();
    r.create("One change while watching", &[]);
    t.wait_for("the change", 30, |s| {
        s.contains("One change while watching")
    });
    println!(
        "  a change from another process on screen after {:.0} ms (the write included), {:.0} ms of CPU",
        t0.elapsed().as_secs_f64() * 1000.0,
        (cpu_ticks(pid) - before) as f64 * 10.0
    );
    t.keys(&["q"]);
}
