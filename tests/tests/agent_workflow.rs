//! td's agent instructions, run as an agent would: `td usage --new-session -q` at the start of
//! a context, then the workflow the block teaches (start, log, handoff, review, approve).

use td_tests::Replica;

#[test]
fn usage_opens_every_context_as_td_does() {
    let r = Replica::init();
    let work = r.create("Fix the login redirect", &["-p", "P1"]);
    let ready = r.create("Write the release notes", &["-p", "P0"]);
    let blocked = r.create("Deploy after the fix", &["--depends-on", &work]);
    r.json_as("impl", &["start", &work]);
    r.json_as(
        "impl",
        &[
            "handoff",
            &work,
            "--done",
            "found the cause",
            "--remaining",
            "a test",
        ],
    );
    let file = r.root.join("login.rs");
    std::fs::write(&file, "fn redirect() {}").unwrap();
    r.json_as("impl", &["link", &work, file.to_str().unwrap()]);

    // JSON: td's keys, one value on stdout.
    let u = r.json_as("impl", &["usage", "-q"]);
    let keys: Vec<&str> = u.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "focused",
            "in_progress",
            "ready",
            "ready_to_close",
            "reviewable",
            "session",
            "work_session",
            "ws_issues"
        ]
    );
    assert_eq!(u["focused"]["id"], work.as_str());
    assert_eq!(u["in_progress"][0]["id"], work.as_str());
    let ready_ids: Vec<&str> = u["ready"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ready_ids,
        [ready.as_str()],
        "by priority, without the blocked one ({blocked})"
    );

    // Human: td's sections; -q drops the workflow guide, the default shows it.
    let q = r.run_as("impl", &["usage", "-q"]).stdout;
    assert!(q.starts_with("You have access to `td`"), "{q}");
    assert!(
        q.contains(&format!(
            "FOCUSED ISSUE: {work} \"Fix the login redirect\" [in_progress]"
        )),
        "{q}"
    );
    assert!(q.contains("    Done: found the cause"), "{q}");
    assert!(q.contains("    Remaining: a test"), "{q}");
    assert!(q.contains("  Files: login.rs"), "{q}");
    assert!(q.contains("IN PROGRESS (1 issues):"), "{q}");
    assert!(q.contains("READY TO START (1 issues):"), "{q}");
    assert!(!q.contains("WORKFLOW:"), "{q}");
    let full = r.run_as("impl", &["usage"]).stdout;
    assert!(full.contains("WORKFLOW:") && full.contains("td usage --new-session -q"));
    let compact = r.run_as("impl", &["usage", "--compact"]).stdout;
    assert!(!compact.contains("WORKFLOW:"));

    // --new-session: a fresh session, told so, naming the previous one.
    let before = r.json(&["whoami"])["session"].clone();
    let fresh = r.run(&["usage", "--new-session", "-q"]).stdout;
    let after = r.json(&["whoami"])["session"].clone();
    assert_ne!(before, after);
    assert!(
        fresh.contains(&format!("NEW SESSION: {}", after.as_str().unwrap()))
            && fresh.contains(&format!("(previous: {})", before.as_str().unwrap())),
        "{fresh}"
    );
    let again = r.run(&["usage", "-q"]).stdout;
    assert!(
        !again.contains("NEW SESSION"),
        "only the first call is new: {again}"
    );

    // The reviewer sees the submitted work as awaiting review; the implementer attests.
    r.json_as("impl", &["review", &work]);
    let rev = r.json_as("reviewer", &["usage"]);
    assert_eq!(rev["reviewable"][0]["id"], work.as_str());
    let text = r.run_as("reviewer", &["usage", "-q"]).stdout;
    assert!(text.contains("AWAITING YOUR REVIEW (1 issues):"), "{text}");
    r.json_as("reviewer", &["approve", &work, "--reason", "read it"]);
    assert_eq!(
        r.json_as("reviewer", &["usage"])["reviewable"],
        serde_json::json!([])
    );
}
