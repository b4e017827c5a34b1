//! Profiling aid: builds a replica with a bulk history, waits 3 s (attach a profiler to the
//! printed pid), then runs one in-process sync round to a fresh replica.
//! `cargo build --release -p td-cli && cargo run --release -p td-tests --example profile_sync -- 3000`

use std::time::Instant;

use td_tests::Replica;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3000);
    let a = Replica::init();
    td_tests::bulk_issues(&a, n, 10);
    let c = Replica::init();
    c.json(&["peer", "add", "a", "127.0.0.1:1", "--key", &a.public_key()]);
    let (mut sa, mut sc) = (a.store(), c.store());
    sc.pin_peer_key(a.identity().public_key());
    println!("pid {} ready", std::process::id());
    std::thread::sleep(std::time::Duration::from_secs(3));
    let t = Instant::now();
    td_tests::inproc::clean_round(&mut sa, &mut sc);
    println!(
        "round of {} changes: {:.2} s",
        n * 10,
        t.elapsed().as_secs_f64()
    );
}
