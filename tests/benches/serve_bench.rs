//! `td serve` live-event benchmark (bench binary; figures printed, no thresholds):
//! the latency from a change's commit on this replica (its `received_at` in the log) to the
//! `records` event reaching an SSE client of `td serve`, for
//! - a `td peer sync` round from another replica (real QUIC on 127.0.0.1), and
//! - a `td create` in another process,
//!
//! with the default `--interval` (50 ms) and, as the baseline in the same run, td's default
//! (2 s). Also the CPU `td serve` uses while nothing changes.
//!
//! Run: `cargo build --release -p td-cli && cargo bench -p td-tests --bench serve_bench`

use std::io::{BufRead, BufReader, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use td_tests::Replica;

/// One `records` event as the client saw it: when it arrived (µs since the epoch) and the
/// newest commit time among its records.
struct Arrival {
    at_us: i64,
    committed_us: i64,
    remote: bool,
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// A running `td serve` and a thread reading its event stream.
struct Server {
    web: td_tests::WebServer,
    events: mpsc::Receiver<Arrival>,
}

impl Server {
    fn start(r: &Replica, interval: &str) -> Server {
        let web = td_tests::WebServer::spawn(
            r.command(None, &["serve", "-p", "0", "--interval", interval]),
        );
        let port = web.port;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            let mut event = String::new();
            for line in BufReader::new(s).lines() {
                let Ok(line) = line else { return };
                if let Some(e) = line.strip_prefix("event: ") {
                    event = e.to_string();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    if event != "records" {
                        continue;
                    }
                    let at_us = now_us();
                    let v: serde_json::Value = serde_json::from_str(d).unwrap();
                    let recs = v["records"].as_array().unwrap();
                    let committed_us = recs
                        .iter()
                        .filter_map(|r| r["received_at"].as_str())
                        .filter_map(td_engine::model::parse_timestamp)
                        .map(|t| t.timestamp_micros())
                        .max()
                        .unwrap();
                    let remote = recs.iter().any(|r| r["local"] == false);
                    if tx
                        .send(Arrival {
                            at_us,
                            committed_us,
                            remote,
                        })
                        .is_err()
                    {
                        return;
                    }
                }
            }
        });
        // The stream is open once the first event (the hello ping) could be read; give the
        // poller a moment to take its first look.
        std::thread::sleep(Duration::from_millis(300));
        Server { web, events }
    }

    /// Waits for the next `records` event and returns its latency from commit.
    fn next_latency(&self, remote: bool) -> Duration {
        loop {
            let a = self
                .events
                .recv_timeout(Duration::from_secs(30))
                .expect("a records event");
            if a.remote == remote {
                return Duration::from_micros((a.at_us - a.committed_us).max(0) as u64);
            }
        }
    }

    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.web.child.id())).unwrap();
        let after = stat.rsplit(')').next().unwrap();
        let f: Vec<&str> = after.split_whitespace().collect();
        // Fields 14 and 15 of /proc/PID/stat (utime, stime), counted after the command name.
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    }
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1000.0
}

/// Peer rounds and local writes against one server; prints p50/p99 of each.
fn measure(a: &Replica, b: &Replica, interval: &str, rounds: usize) -> (f64, f64) {
    let srv = Server::start(a, interval);
    let mut peer = Vec::new();
    for i in 0..rounds {
        b.create(&format!("Made on the other machine {i}"), &[]);
        b.json(&["peer", "sync", "a"]);
        peer.push(srv.next_latency(true));
    }
    let mut local = Vec::new();
    for i in 0..rounds {
        a.create(&format!("Made in another terminal {i}"), &[]);
        local.push(srv.next_latency(false));
    }
    let (p50, p99) = (pct(&mut peer, 0.5), pct(&mut peer, 0.99));
    println!(
        "--interval {interval:>5}: peer round commit -> SSE client p50 {p50:7.1} ms  p99 {:7.1} ms | CLI write commit -> SSE client p50 {:7.1} ms  p99 {:7.1} ms  ({rounds} each)",
        p99,
        pct(&mut local, 0.5),
        pct(&mut local, 0.99)
    );
    (p50, p99)
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let a = Replica::init();
    let b = Replica::init();
    let serving = a.serve();
    a.befriend(&b, "a", &serving.addr);
    b.json(&["peer", "sync", "a"]);
    println!("td serve live events (release build; latency from the commit on the serving replica to the `records` event read by a client)");
    let (fast, fast99) = measure(&a, &b, "50ms", 100);
    let (slow, _) = measure(&a, &b, "2s", 20);
    println!(
        "default (50ms) vs td's default (2s), peer p50: {:.3}x  (p99 {fast99:.1} ms)",
        fast / slow
    );
    // CPU while idle: nothing changes for 10 s (after a second to settle), at both intervals.
    for interval in ["50ms", "2s"] {
        let srv = Server::start(&a, interval);
        std::thread::sleep(Duration::from_secs(1));
        let ticks = srv.cpu_ticks();
        let t = Instant::now();
        std::thread::sleep(Duration::from_secs(10));
        let used = (srv.cpu_ticks() - ticks) as f64 / 100.0; // USER_HZ is 100 on Linux
        println!(
            "idle td serve (--interval {interval}, one event client): {:.2}% of one core over {:.0} s",
            100.0 * used / t.elapsed().as_secs_f64(),
            t.elapsed().as_secs_f64()
        );
    }
    serving.stop();
}
