//! Fault soak (issue 17): three replicas write and sync for hundreds of rounds through a UDP
//! proxy that drops, duplicates and reorders QUIC datagrams and an HTTP proxy that fails hub
//! requests at random, while syncing processes (and the serving replica) are killed with
//! SIGKILL at random points. Once the links heal, every replica holds an identical export and
//! every committed change exactly once.
//!
//! Bounded under `cargo test` (400 rounds); longer with
//! `TD_SOAK_ROUNDS=2000 cargo test -p td-tests --test soak -- --nocapture`, and a failing run
//! is replayed with the `TD_SOAK_SEED` it prints.

use std::time::{Duration, Instant};

use serde_json::Value;
use td_tests::hub::{Hub, Proxy};
use td_tests::udp_proxy::{Dice, Rates, UdpProxy};
use td_tests::{Replica, Serving};

fn env_u64(key: &str) -> Option<u64> {
    std::env::var(key).ok().and_then(|v| v.parse().ok())
}

fn issues(r: &Replica) -> Vec<Value> {
    let v: Value = serde_json::from_str(&r.export()).unwrap();
    v["tables"]["issues"].as_array().unwrap().clone()
}

fn serve(a: &Replica, udp: &UdpProxy) -> Serving {
    let s = a.serve();
    udp.set_upstream(s.addr.parse().unwrap());
    s
}

#[test]
fn soak_three_replicas_through_lossy_links_and_kill_9() {
    let rounds = env_u64("TD_SOAK_ROUNDS").unwrap_or(400);
    let seed = env_u64("TD_SOAK_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    });
    eprintln!("soak: {rounds} rounds, TD_SOAK_SEED={seed}");
    let mut dice = Dice::new(seed);
    let hub = Hub::start();
    let http = Proxy::start(hub.port);
    let a = Replica::init();
    a.create("Soak seed issue", &[]);
    let (b, c) = (Replica::init(), Replica::init());
    let first = a.serve();
    let udp = UdpProxy::start(first.addr.parse().unwrap(), seed);
    let mut server = Some(first);
    a.befriend(&b, "a", &udp.addr.to_string());
    a.befriend(&c, "a", &udp.addr.to_string());
    for r in [&b, &c] {
        assert!(r.json(&["peer", "sync", "a"])[0]["error"].is_null());
    }
    for r in [&a, &b, &c] {
        r.json(&["sync", "init", "--hub", &http.url()]);
    }
    udp.set_rates(Rates {
        drop: 80,
        duplicate: 40,
        reorder: 60,
    });
    http.fail_randomly(300, seed);
    let replicas = [&a, &b, &c];
    let mut titles: Vec<String> = Vec::new();
    let (mut killed, mut syncs, mut failed) = (0, 0, 0);
    let started = Instant::now();
    for round in 0..rounds {
        let who = dice.below(3) as usize;
        let r = replicas[who];
        match dice.below(10) {
            0..=3 => {
                let title = format!("soak {round} by {who}");
                if r.run(&["create", &title, "--json"]).code == 0 {
                    titles.push(title);
                }
                let all = issues(r);
                if !all.is_empty() {
                    let id = all[dice.below(all.len() as u64) as usize]["id"]
                        .as_str()
                        .unwrap()
                        .to_string();
                    let p = format!("P{}", dice.below(4));
                    r.run(&["update", &id, "--priority", &p]);
                    r.run(&["comment", &id, &format!("comment {round}")]);
                }
            }
            4..=5 if who > 0 => {
                syncs += 1;
                failed += r.run(&["peer", "sync", "a", "--json"]).code.min(1);
            }
            4..=7 => {
                syncs += 1;
                failed += r.run(&["sync", "--json"]).code.min(1);
            }
            8 => {
                // A sync killed with SIGKILL at a random point.
                let args: &[&str] = if who > 0 && dice.below(2) == 0 {
                    &["peer", "sync", "a"]
                } else {
                    &["sync"]
                };
                let mut child = r.command(None, args).spawn().unwrap();
                std::thread::sleep(Duration::from_millis(dice.below(400)));
                let _ = child.kill();
                let _ = child.wait();
                killed += 1;
            }
            _ => {
                // The serving replica killed with SIGKILL, then restarted.
                drop(server.take());
                killed += 1;
                server = Some(serve(&a, &udp));
            }
        }
    }
    eprintln!(
        "soak: {rounds} rounds in {:?}: {} changes committed by creates, {syncs} syncs ({failed} failed under faults), {killed} processes killed",
        started.elapsed(),
        titles.len()
    );
    // Heal the links; sync until every replica holds the same.
    udp.set_rates(Rates::default());
    http.fail_randomly(0, 0);
    let mut converged = false;
    for _ in 0..6 {
        for r in replicas {
            r.run(&["sync"]);
        }
        for r in [&b, &c] {
            r.run(&["peer", "sync", "a"]);
        }
        if a.export() == b.export() && b.export() == c.export() {
            converged = true;
            break;
        }
    }
    assert!(converged, "replicas did not converge (TD_SOAK_SEED={seed})");
    // Every committed change exactly once.
    let all = issues(&a);
    for t in &titles {
        let n = all.iter().filter(|i| i["title"] == t.as_str()).count();
        assert_eq!(n, 1, "{t} (TD_SOAK_SEED={seed})");
    }
    let soak = all
        .iter()
        .filter(|i| i["title"].as_str().unwrap().starts_with("soak "))
        .count();
    assert_eq!(soak, titles.len(), "TD_SOAK_SEED={seed}");
    let stats: Vec<_> = replicas
        .iter()
        .map(|r| td_engine::export::log_stats(r.store().conn()).unwrap())
        .collect();
    for s in &stats {
        assert_eq!(s.duplicate_actor_seqs, 0);
        assert_eq!(s.changes, stats[0].changes, "same log everywhere");
    }
    drop(server);
}
