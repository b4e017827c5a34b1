//! Sync over emulated real networks (issue 18; bench binary, figures printed, no thresholds):
//! `td peer sync` through a UDP proxy that adds one-way delay, random loss and a rate limit
//! to the real QUIC traffic, and `td sync push`/pull through an HTTP proxy that adds the
//! round trip and the rate to every request to a real `tursodb --sync-server`. Over a grid of
//! round-trip times and loss rates it prints wall time, bytes, the time those bytes need at
//! the link's rate (the ideal), and the ratio of each cell to the cell without delay or loss.
//!
//! Run (release binary; about 10 minutes for the whole grid):
//! `cargo build --release -p td-cli && TD_BIN=$PWD/target/release/td cargo bench -p td-tests --bench net_bench`
//!
//! `TD_NET_RTTS=0,50` and `TD_NET_LOSS=0,1` (percent) narrow the grid; `TD_NET_CHANGES`
//! sets the project sizes (default `50000,100000`: about the 10k-issue migrated project of
//! the issue, 46k changes, and a 100k-change one); `TD_NET_RATE_MBIT` the link's rate
//! (default 100).

use std::time::{Duration, Instant};

use td_tests::hub::{Hub, Proxy, Wire};
use td_tests::udp_proxy::{Link, Rates, UdpProxy};
use td_tests::Replica;

fn list(var: &str, default: &str) -> Vec<u64> {
    std::env::var(var)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect()
}

struct Cell {
    rtt: u64,
    loss: u64,
    wall: Duration,
    bytes: u64,
}

fn print_cell(what: &str, c: &Cell, rate: u64, base: Option<&Cell>) {
    let ideal = c.bytes as f64 / rate as f64;
    let vs = base.map_or(String::new(), |b| {
        format!(
            "  {:.2}x the cell without delay or loss",
            c.wall.as_secs_f64() / b.wall.as_secs_f64()
        )
    });
    println!(
        "  {what:<5} rtt {:>3} ms loss {}%: {:>7.2} s  {:>11} bytes  ideal {:>6.2} s  {:>5.2}x ideal{vs}",
        c.rtt,
        c.loss,
        c.wall.as_secs_f64(),
        c.bytes,
        ideal,
        c.wall.as_secs_f64() / ideal.max(1e-9)
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let rtts = list("TD_NET_RTTS", "0,50,200");
    let losses = list("TD_NET_LOSS", "0,1,3");
    let sizes = list("TD_NET_CHANGES", "50000,100000");
    let rate = list("TD_NET_RATE_MBIT", "100")[0] * 1_000_000 / 8;
    for changes in sizes {
        let per = 5usize.max((changes / 10_000) as usize);
        let issues = (changes as usize / per).max(1);
        let a = Replica::init();
        td_tests::bulk_issues(&a, issues, per);
        let total = td_engine::export::log_stats(a.store().conn())
            .unwrap()
            .changes;
        println!(
            "project: {issues} issues, {total} changes; link {} Mbit/s",
            rate * 8 / 1_000_000
        );
        let serving = a.serve();
        let upstream: std::net::SocketAddr = serving.addr.parse().unwrap();
        let mut base: Option<Cell> = None;
        for &rtt in &rtts {
            for &loss in &losses {
                let proxy = UdpProxy::start(upstream, 7 + rtt + loss);
                proxy.set_link(Link {
                    delay: Duration::from_millis(rtt / 2),
                    rate: Some(rate),
                    // A buffer of about one round trip at the rate, at least 20 ms.
                    buffer: Duration::from_millis(rtt.max(20)),
                });
                proxy.set_rates(Rates {
                    drop: (loss * 10) as u32,
                    ..Rates::default()
                });
                let b = Replica::init();
                a.befriend(&b, "a", &proxy.addr.to_string());
                let total = td_engine::export::log_stats(a.store().conn())
                    .unwrap()
                    .changes;
                let t = Instant::now();
                let v = b.json(&["peer", "sync", "a"]);
                let wall = t.elapsed();
                let bytes = v[0]["bytes"]["udp_in"].as_u64().unwrap_or(0)
                    + v[0]["bytes"]["udp_out"].as_u64().unwrap_or(0);
                assert_eq!(
                    v[0]["received"].as_u64(),
                    Some(total as u64),
                    "every change arrives: {v}"
                );
                let frames = v[0]["bytes"]["frames_in"].as_u64().unwrap_or(0);
                let cell = Cell {
                    rtt,
                    loss,
                    wall,
                    bytes,
                };
                if rtt == 0 && loss == 0 {
                    println!(
                        "  peer frames: {:.0} B/change",
                        frames as f64 / total.max(1) as f64
                    );
                }
                print_cell("peer", &cell, rate, base.as_ref());
                if base.is_none() && rtt == 0 && loss == 0 {
                    base = Some(cell);
                }
            }
        }
        drop(serving);
        // The hub: loss is TCP's to recover, so the grid is the round trip.
        let mut push_base: Option<Cell> = None;
        let mut pull_base: Option<Cell> = None;
        for &rtt in &rtts {
            let hub = Hub::start();
            let proxy = Proxy::start(hub.port);
            proxy.set_wire(Wire {
                rtt: Duration::from_millis(rtt),
                rate: Some(rate),
            });
            // The puller is a member, so it opens and applies what it pulls.
            let c = Replica::init();
            a.json(&["member", "add", &c.public_key()]);
            a.json(&["config", "set", "database.url", &proxy.url()]);
            a.json(&["config", "set", "database.mode", "libsql"]);
            // One hub command, timed, as a cell (bytes both ways).
            let run = |r: &Replica, args: &[&str]| {
                let t = Instant::now();
                let v = r.json(args);
                let bytes = v["bytes"]["sent"].as_u64().unwrap_or(0)
                    + v["bytes"]["received"].as_u64().unwrap_or(0);
                let cell = Cell {
                    rtt,
                    loss: 0,
                    wall: t.elapsed(),
                    bytes,
                };
                (cell, v)
            };
            let (push, v) = run(&a, &["sync", "push"]);
            if rtt == 0 {
                println!(
                    "  hub push: {:.0} B/change sent",
                    v["bytes"]["sent"].as_f64().unwrap_or(0.0) / total.max(1) as f64
                );
            }
            print_cell("push", &push, rate, push_base.as_ref());
            let (pull, _) = run(&c, &["sync", "init", "--hub", &proxy.url()]);
            print_cell("pull", &pull, rate, pull_base.as_ref());
            if rtt == 0 {
                push_base = Some(push);
                pull_base = Some(pull);
            }
        }
    }
}
