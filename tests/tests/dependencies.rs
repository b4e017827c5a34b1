//! td's dependency reads through the real binary: `blocked-by`, `depends-on`,
//! `critical-path`.

use td_tests::Replica;

#[test]
fn blocked_by_depends_on_and_the_critical_path() {
    let r = Replica::init();
    let a = r.create("Schema migration", &["-p", "P1"]);
    let b = r.create("API on the new schema", &["--depends-on", &a]);
    let c = r.create("UI on the new API", &["--depends-on", &b]);
    let d = r.create("Backfill job", &["--depends-on", &a, "-p", "P0"]);
    let e = r.create("Unrelated chore", &[]);
    let f = r.create("Old report, closed", &["--depends-on", &a]);
    r.json(&["close", &f]);

    let v = r.json(&["blocked-by", &a]);
    assert_eq!(v["issue"]["id"], a.as_str());
    let mut direct: Vec<&str> = v["direct"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    direct.sort();
    let mut want = vec![b.as_str(), d.as_str(), f.as_str()];
    want.sort();
    assert_eq!(direct, want);
    assert_eq!(v["direct_count"], 3);
    assert_eq!(v["transitive_count"], 1, "{v}");
    assert!(v["all"].as_array().unwrap().iter().any(|x| x == c.as_str()));
    let direct_only = r.json(&["blocked-by", &a, "--direct"]);
    assert!(direct_only.get("all").is_none() && direct_only.get("transitive_count").is_none());
    assert!(r
        .ok(&["blocked-by", &a])
        .contains("4 issues blocked (3 direct, 1 transitive)"));
    assert!(r
        .ok(&["blocked-by", &e])
        .contains("No issues blocked by this one"));

    let v = r.json(&["depends-on", &c]);
    assert_eq!(v["dependencies"][0]["id"], b.as_str());
    assert_eq!(r.json(&["deps", &c]), v, "td's alias");
    assert!(r.ok(&["depends-on", &c]).contains("1 blocking, 0 resolved"));

    // a unblocks b, c and d (f is closed); b unblocks c.
    let cp = r.json(&["critical-path"]);
    let seq: Vec<&str> = cp["critical_path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert_eq!(seq[0], a.as_str(), "{cp}");
    let pos = |x: &str| seq.iter().position(|s| *s == x).unwrap();
    assert!(pos(&b) < pos(&c), "{cp}");
    assert!(
        seq.contains(&e.as_str()) && !seq.contains(&f.as_str()),
        "{cp}"
    );
    assert_eq!(cp["ready_to_start"], serde_json::json!([a]));
    assert_eq!(
        cp["bottleneck_ranking"][0],
        serde_json::json!({"id": a, "score": 3})
    );
    assert_eq!(
        cp["bottleneck_ranking"][1],
        serde_json::json!({"id": b, "score": 1})
    );
    let text = r.ok(&["critical-path", "--limit", "2"]);
    assert!(
        text.contains("CRITICAL PATH SEQUENCE") && text.contains(&format!("1. {a}")),
        "{text}"
    );
    assert!(!text.contains("3. "), "--limit 2: {text}");
    assert!(text.contains(&format!("{a}: 3 issues waiting")), "{text}");
    assert_eq!(
        r.run(&["blocked-by", "td-nope00", "--json"]).error_code(),
        "not_found"
    );
}

#[test]
fn dep_takes_tds_forms() {
    let r = Replica::init();
    let a = r.create("First", &[]);
    let b = r.create("Second", &[]);
    let c = r.create("Third", &[]);
    // dep add with several, dep <a> <b>, dep <a>, dep <a> --blocking, dep rm.
    let added = r.json(&["dep", "add", &c, &a, &b]);
    assert_eq!(added.as_array().unwrap().len(), 2);
    assert_eq!(r.json(&["dep", &b, &a])["action"], "added");
    let shown = r.json(&["dep", &c]);
    assert_eq!(shown["dependencies"].as_array().unwrap().len(), 2);
    let blocking = r.json(&["dep", &a, "--blocking"]);
    assert_eq!(blocking["direct_count"], 2);
    assert_eq!(r.json(&["dep", "rm", &c, &b])["action"], "removed");
    assert_eq!(
        r.json(&["dep", &c])["dependencies"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(r.run(&["dep", "--json"]).error_code(), "invalid_input");
}
