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
    assert!(md.contains("## deleted") && md.contains("Open one"), "{md}");

    // version --check says how upgrades work here instead of calling a server.
    let v = r.json(&["version", "--check"]);
    assert!(v["update_check"].as_str().unwrap().contains("td upgrade"));
    assert!(r.json(&["version"]).get("update_check").is_none());
}
