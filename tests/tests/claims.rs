//! `td unstart --session` / `--stale`: td's claim sweeps preview by default, release only with
//! `--force`, never release the caller's own claims, and the release syncs.

use td_tests::Replica;

fn session_of(r: &Replica, name: &str) -> String {
    r.json_as(name, &["whoami"])["session"]
        .as_str()
        .unwrap()
        .to_string()
}

fn claim(r: &Replica, id: &str) -> (String, String) {
    let s = r.json(&["show", id]);
    (
        s["status"].as_str().unwrap().to_string(),
        s["implementer_session"].as_str().unwrap().to_string(),
    )
}

#[test]
fn sweeps_preview_then_release_and_spare_the_caller() {
    let r = Replica::init();
    let x = r.create("held by a", &[]);
    let y = r.create("held by b", &[]);
    let z = r.create("held by the caller", &[]);
    r.json_as("a", &["start", &x]);
    r.json_as("b", &["start", &y]);
    r.json_as("caller", &["start", &z]);
    let a = session_of(&r, "a");

    // --session previews exactly that holder's claims and changes nothing.
    let p = r.json_as("caller", &["unstart", "--session", &a]);
    assert_eq!(p["action"], "would_release_session_claims");
    assert_eq!(
        (p["count"].as_i64(), p["forced"].as_bool()),
        (Some(1), Some(false))
    );
    assert_eq!(p["claims"][0]["id"], x.as_str());
    assert_eq!(claim(&r, &x).0, "in_progress");

    // --force releases it, with a log naming why.
    let f = r.json_as(
        "caller",
        &[
            "unstart",
            "--session",
            &a,
            "--force",
            "--reason",
            "tick killed",
        ],
    );
    assert_eq!(f["action"], "released_session_claims");
    assert_eq!(claim(&r, &x), ("open".to_string(), String::new()));
    let logs = r.json(&["show", &x])["logs"].to_string();
    assert!(
        logs.contains("claim released: session") && logs.contains("tick killed"),
        "{logs}"
    );
    // A session id nobody has: an error, not an empty success.
    assert_eq!(
        r.run_as("caller", &["unstart", "--session", "ses_typo", "--json"])
            .error_code(),
        "not_found"
    );

    // --stale: b's claim is older than the threshold; the caller's own is reported, not
    // released.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let p = r.json_as("caller", &["unstart", "--stale", "1s"]);
    assert_eq!(p["action"], "would_release_stale_claims_with_unresolved");
    let ids: Vec<&str> = p["claims"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [y.as_str()]);
    assert_eq!(p["unresolved"][0]["id"], z.as_str());
    assert_eq!(claim(&r, &y).0, "in_progress", "a preview changes nothing");
    let f = r.json_as("caller", &["unstart", "--stale", "1s", "--force"]);
    assert_eq!(f["count"], 1);
    assert_eq!(claim(&r, &y).0, "open");
    assert_eq!(
        claim(&r, &z).0,
        "in_progress",
        "the caller's own claim is never swept"
    );
    // A long threshold selects nothing.
    assert_eq!(
        r.json_as("caller", &["unstart", "--stale", "1h30m"])["count"],
        0
    );

    // The release is an ordinary change: another replica shows the same.
    let other = Replica::init();
    let s = r.serve();
    r.befriend(&other, "r", &s.addr);
    other.json(&["peer", "sync", "r"]);
    assert_eq!(r.export(), other.export());
}

#[test]
fn sweeps_refuse_bad_input() {
    let r = Replica::init();
    for (args, want) in [
        (vec!["unstart", "--stale", "0"], "greater than zero"),
        (vec!["unstart", "--stale", "soon"], "invalid duration"),
        (vec!["unstart", "--stale", "999999d"], "out of range"),
    ] {
        let mut a = args.clone();
        a.push("--json");
        let v = r.run(&a).json();
        assert!(
            v["error"]["message"].as_str().unwrap().contains(want),
            "{args:?}: {v}"
        );
    }
    // The two selectors do not combine, and ids do not go with either.
    assert_ne!(
        r.run(&["unstart", "--session", "s", "--stale", "1h"]).code,
        0
    );
    assert_ne!(r.run(&["unstart", "td-abc123", "--stale", "1h"]).code, 0);
}
