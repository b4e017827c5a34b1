//! `td sync tail -f`: a live feed of the change log, showing records written here and records
//! that arrive from another machine (with that machine's fingerprint), as they are stored.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use td_tests::Replica;

#[test]
fn tail_follows_records_from_here_and_from_peers() {
    let a = Replica::init();
    let b = Replica::init();
    let sa = a.serve();
    a.befriend(&b, "a", &sa.addr);
    b.json(&["peer", "sync", "a"]);

    // Without -f: the newest records, as one JSON array.
    let recent = b.json(&["sync", "tail", "-n", "3"]);
    assert!(recent.as_array().unwrap().len() <= 3);

    let mut child = b
        .command(
            None,
            &[
                "sync",
                "tail",
                "-f",
                "-n",
                "1",
                "--interval",
                "100ms",
                "--json",
            ],
        )
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel::<serde_json::Value>();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(serde_json::from_str(&line).unwrap()).is_err() {
                break;
            }
        }
    });
    let next = |want: &dyn Fn(&serde_json::Value) -> bool| -> serde_json::Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let v = rx
                .recv_timeout(left)
                .expect("the feed printed the record in time");
            if want(&v) {
                return v;
            }
        }
    };

    // The newest existing record comes first: the feed is running (on a loaded machine the
    // process may start late, and a record written before it looked would be history).
    let newest = recent.as_array().unwrap().last().unwrap()["position"].clone();
    assert_eq!(next(&|_| true)["position"], newest);
    // A record written on b itself is the next line: nothing older is printed again.
    let here = b.create("written on b", &[]);
    let v = next(&|_| true);
    assert_eq!(
        v["entity"],
        here.as_str(),
        "the first record printed is the new one"
    );
    assert_eq!(
        (v["local"].as_bool(), v["kind"].as_str()),
        (Some(true), Some("issue"))
    );

    // A record from a, arriving through a peer round: marked with a's fingerprint.
    let there = a.create("written on a", &[]);
    b.json(&["peer", "sync", "a"]);
    let v = next(&|v| v["entity"] == there.as_str());
    assert_eq!(v["local"], false);
    let a_machine = a.json(&["whoami"])["machine"].as_str().unwrap().to_string();
    assert_eq!(v["machine"], a_machine.as_str());
    assert_eq!(v["applied"], true);

    child.kill().unwrap();
    child.wait().unwrap();
}
