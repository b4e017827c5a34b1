//! td's flags beyond the everyday ones, each doing what td does with it (their presence in
//! `--help` is pinned by `td_surface.rs`; here, their effect).

use td_tests::Replica;

fn deps(r: &Replica, id: &str) -> Vec<String> {
    let mut v: Vec<String> = r.json(&["depends-on", id])["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn update_comments_and_replaces_dependencies() {
    let r = Replica::init();
    let a = r.create("A", &[]);
    let b = r.create("B", &[]);
    let c = r.create("C", &[]);
    let d = r.create("D", &[]);
    // -m/--comment and -c/--note add a comment in the same write.
    r.json(&["update", &a, "-p", "P1", "-m", "raised: customer hit it"]);
    r.json(&["update", &a, "-c", "second note"]);
    let comments = r.json(&["comments", &a]).to_string();
    assert!(comments.contains("raised: customer hit it") && comments.contains("second note"));
    // --depends-on replaces the set (comma-separated or repeated); "" clears it.
    r.json(&["update", &a, "--depends-on", &format!("{b},{c}")]);
    assert_eq!(deps(&r, &a), {
        let mut v = vec![b.clone(), c.clone()];
        v.sort();
        v
    });
    r.json(&["update", &a, "--depends-on", &d]);
    assert_eq!(deps(&r, &a), vec![d.clone()]);
    r.json(&["update", &a, "--depends-on", ""]);
    assert!(deps(&r, &a).is_empty());
    // --blocks replaces the issues that depend on this one.
    r.json(&["update", &d, "--blocks", &format!("{a},{b}")]);
    assert_eq!(deps(&r, &a), vec![d.clone()]);
    assert_eq!(deps(&r, &b), vec![d.clone()]);
    r.json(&["update", &d, "--blocks", &b]);
    assert!(deps(&r, &a).is_empty());
    // A cycle is refused, and nothing of the update is written.
    let out = r.run(&["update", &d, "--depends-on", &b, "--title", "D2", "--json"]);
    assert_eq!(out.error_code(), "invalid_input");
    assert_eq!(r.json(&["show", &d])["title"], "D");
}

#[test]
fn board_status_filter_note_title_ws_only_export_all_and_aliases() {
    let r = Replica::init();
    let a = r.create("Open one", &[]);
    let b = r.create("Started one", &[]);
    // td's aliases: begin is start, submit is review.
    r.json(&["begin", &b]);
    r.json(&["board", "create", "Everything"]);
    let shown = r.json(&["board", "show", "Everything", "-s", "in_progress"]);
    let ids: Vec<&str> = shown["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [b.as_str()]);
    let shown = r.json(&["board", "show", "Everything", "-s", "open,in-progress"]);
    assert_eq!(shown["issues"].as_array().unwrap().len(), 2);
    assert_eq!(
        r.run(&["board", "show", "Everything", "-s", "nope", "--json"])
            .error_code(),
        "invalid_input"
    );

    let n = r.json(&["note", "add", "Runbook", "-c", "steps"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    r.json(&["note", "edit", &n, "-t", "Runbook v2"]);
    assert_eq!(r.json(&["note", "show", &n])["title"], "Runbook v2");

    // ws log --only logs to that issue alone; --decision types it.
    r.json(&["ws", "start", "Pairing"]);
    r.json(&["ws", "tag", &a, &b]);
    let v = r.json(&["ws", "log", "chose the cache", "--only", &a, "--decision"]);
    assert_eq!(v["ids"].as_array().unwrap().len(), 1);
    let logs = r.json(&["show", &a])["logs"].clone();
    assert!(
        logs.as_array()
            .unwrap()
            .iter()
            .any(|l| l["message"] == "chose the cache" && l["type"] == "decision"),
        "{logs}"
    );
    assert!(!r.json(&["show", &b])["logs"]
        .to_string()
        .contains("chose the cache"));

    r.json(&["handoff", &b, "--done", "it"]);
    assert_eq!(r.json(&["submit", &b])["status"], "in_review");

    // export --all adds the deleted issues to the md report.
    r.json(&["delete", &a]);
    let md = r.ok(&["export", "--format", "md"]);
    assert!(!md.contains("Open one"));
    let md = r.ok(&["export", "--format", "md", "--all"]);
    assert!(md.contains(&format!("## {a}: Open one")), "{md}");

    // version --check says how upgrades work here instead of calling a server.
    let v = r.json(&["version", "--check"]);
    assert!(v["update_check"].as_str().unwrap().contains("td upgrade"));
    assert!(r.json(&["version"]).get("update_check").is_none());
}

/// td's `td list` filters, each doing what td's does.
#[test]
fn list_filters_as_td() {
    let r = Replica::init();
    let ids = |v: serde_json::Value| -> Vec<String> {
        let mut v: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["title"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let a = r.create("Alpha", &["--points", "3", "-l", "ui"]);
    let b = r.create("Beta", &["--points", "8", "--due", "2020-01-01"]);
    let c = r.create("Gamma", &["--defer", "+30d"]);
    let d = r.create("Delta", &["--due", "+2d"]);
    let e = r.create("Epsilon", &["--parent", &a]);
    let f = r.create("Zeta", &["--parent", &e]);
    r.json_as("impl", &["start", &b]);
    let me = r.json_as("impl", &["whoami"])["session"]
        .as_str()
        .unwrap()
        .to_string();
    let _ = (&c, &d, &f);

    // Deferred issues are hidden unless --all or --deferred.
    assert_eq!(
        ids(r.json(&["list"])),
        ["Alpha", "Beta", "Delta", "Epsilon", "Zeta"]
    );
    assert_eq!(ids(r.json(&["list", "--deferred"])), ["Gamma"]);
    assert_eq!(ids(r.json(&["list", "-a"])).len(), 6);
    assert_eq!(ids(r.json(&["list", "--overdue"])), ["Beta"]);
    assert_eq!(ids(r.json(&["list", "--due-soon"])), ["Delta"]);
    assert_eq!(ids(r.json(&["list", "--points", ">=5"])), ["Beta"]);
    assert_eq!(ids(r.json(&["list", "--points", "1-4"])), ["Alpha"]);
    assert_eq!(ids(r.json(&["list", "--points", "3"])), ["Alpha"]);
    assert_eq!(ids(r.json(&["list", "--implementer", &me])), ["Beta"]);
    assert_eq!(
        ids(r.json(&["list", "-o"])),
        ["Alpha", "Delta", "Epsilon", "Zeta"]
    );
    assert_eq!(
        ids(r.json(&["list", "-i", &a, "-i", &b])),
        ["Alpha", "Beta"]
    );
    assert_eq!(ids(r.json(&["list", "--epic", &a])), ["Epsilon", "Zeta"]);
    assert_eq!(ids(r.json(&["list", "--created", "today"])).len(), 5);
    assert!(ids(r.json(&["list", "--created", "before:2020-01-01"])).is_empty());
    assert_eq!(ids(r.json(&["list", "--created", "-7d.."])).len(), 5);
    assert_eq!(ids(r.json(&["list", "-s", "all"])).len(), 6);
    // Order, limits and formats.
    let by_id: Vec<String> = r
        .json(&["list", "--sort", "id"])
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    let mut rev: Vec<String> = r
        .json(&["list", "--sort", "id", "-r"])
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    rev.reverse();
    assert_eq!(by_id, rev);
    assert_eq!(r.json(&["list", "-n", "2"]).as_array().unwrap().len(), 2);
    assert_eq!(r.json(&["list", "--format", "json"]), r.json(&["list"]));
    let long = r.ok(&["list", "--long", "-i", &a]);
    assert!(
        long.contains("Alpha") && long.trim_end().ends_with("---"),
        "{long}"
    );
    // A TDQ filter, as -f or positional.
    assert_eq!(
        ids(r.json(&["list", "-f", "points >= 3 AND labels ~ ui"])),
        ["Alpha"]
    );
    assert_eq!(
        ids(r.json(&["list", "points", ">=", "3", "labels", "~", "ui"])),
        ["Alpha"]
    );
    assert_eq!(
        r.run(&["list", "-f", "", "--json"]).error_code(),
        "invalid_input"
    );
    assert_eq!(
        r.run(&["list", "--points", "lots", "--json"]).error_code(),
        "invalid_input"
    );
    assert_eq!(
        r.run(&["list", "--created", "after:someday", "--json"])
            .error_code(),
        "invalid_input"
    );
}
