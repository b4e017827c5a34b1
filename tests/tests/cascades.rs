//! td's cascades (docs/merge-rules.md, rule 11): an epic follows its children to review and
//! to closed, and closing a blocker unblocks its dependents; locally as td does it, and across
//! machines exactly once after they meet.

use serde_json::Value;
use td_tests::Replica;

fn status(r: &Replica, id: &str) -> String {
    r.json(&["show", id])["status"]
        .as_str()
        .unwrap()
        .to_string()
}

/// How many of the logs carry `text`.
fn logs_with(r: &Replica, id: &str, text: &str) -> usize {
    r.json(&["show", id])["logs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["message"].as_str().unwrap_or("").contains(text))
        .count()
}

#[test]
fn closing_the_last_child_closes_the_epic_and_unblocks_dependents() {
    let r = Replica::init();
    let epic = r.create("Epic of two", &["--type", "epic"]);
    let c1 = r.create("First child", &["--parent", &epic]);
    let c2 = r.create("Second child", &["--parent", &epic]);
    let waiting = r.create("Waits for the second", &[]);
    let after_epic = r.create("Waits for the epic", &[]);
    r.ok(&["dep", "add", &waiting, &c2]);
    r.ok(&["dep", "add", &after_epic, &epic]);
    r.ok(&["block", &waiting]);
    r.ok(&["block", &after_epic]);

    let v = r.json(&["close", &c1]);
    assert_eq!(v["cascaded_parents"], serde_json::json!([]), "{v}");
    assert_eq!(status(&r, &epic), "open", "one child still open");

    let v = r.json(&["close", &c2]);
    assert_eq!(v["cascaded_parents"], serde_json::json!([epic]), "{v}");
    assert_eq!(
        v["unblocked_dependents"],
        serde_json::json!([waiting]),
        "{v}"
    );
    assert_eq!(status(&r, &epic), "closed");
    assert_eq!(status(&r, &waiting), "open");
    // td unblocks the closed epic's own dependents too (not reported).
    assert_eq!(status(&r, &after_epic), "open");
    assert_eq!(
        logs_with(&r, &epic, "Auto-cascaded to closed (all children complete)"),
        1
    );
    assert_eq!(
        logs_with(
            &r,
            &waiting,
            &format!("Auto-unblocked (dependency {c2} closed)")
        ),
        1
    );
    // Human output says it the way td does.
    let e2 = r.create("Epic of one", &["--type", "epic"]);
    let only = r.create("Only child", &["--parent", &e2]);
    let out = r.ok(&["close", &only]);
    assert!(
        out.contains(&format!("↑ Parent {e2} auto-cascaded to closed")),
        "{out}"
    );
}

#[test]
fn reviewing_every_child_moves_the_epic_to_review_and_open_dependents_stay() {
    let r = Replica::init();
    let epic = r.create("Epic in review", &["--type", "epic"]);
    let c1 = r.create("Reviewed child", &["--parent", &epic]);
    let c2 = r.create("Closed child", &["--parent", &epic]);
    let open_dep = r.create("Open dependent", &[]);
    r.ok(&["dep", "add", &open_dep, &c2]);
    r.ok(&["close", &c2]);
    assert_eq!(
        status(&r, &open_dep),
        "open",
        "only blocked issues are unblocked"
    );
    assert_eq!(logs_with(&r, &open_dep, "Auto-unblocked"), 0);
    r.ok(&["start", &c1]);
    let v = r.json(&["review", &c1]);
    assert_eq!(v["cascaded_parents"], serde_json::json!([epic]), "{v}");
    assert_eq!(status(&r, &epic), "in_review");
    // A parent that is not an epic does not follow.
    let task = r.create("Plain parent task", &[]);
    let kid = r.create("Child of a task", &["--parent", &task]);
    r.ok(&["close", &kid]);
    assert_eq!(status(&r, &task), "open");
}

fn pair() -> (Replica, Replica, td_tests::Serving) {
    let a = Replica::init();
    let b = Replica::init();
    let sa = a.serve();
    a.befriend(&b, "a", &sa.addr);
    (a, b, sa)
}

/// Both replicas' exports, compared whole, and the epic's cascade log counted on each.
fn converged_once(a: &Replica, b: &Replica, epic: &str) {
    let (ea, eb) = (a.export(), b.export());
    assert_eq!(ea, eb, "replicas differ after meeting");
    for r in [a, b] {
        assert_eq!(status(r, epic), "closed");
        assert_eq!(
            logs_with(r, epic, "Auto-cascaded to closed"),
            1,
            "the cascade happened exactly once"
        );
        let conflicts: Value = r.json(&["sync", "conflicts"]);
        assert_eq!(
            conflicts,
            serde_json::json!([]),
            "no concurrent cascade writes"
        );
    }
}

/// Two machines close an epic's last two children while apart. Whichever closed last decides;
/// each order is tried, so the deciding machine is once the client and once the server.
#[test]
fn concurrent_closes_on_two_machines_complete_the_epic_once() {
    for a_closes_last in [false, true] {
        let (a, b, _sa) = pair();
        let epic = a.create("Shared epic", &["--type", "epic"]);
        let c1 = a.create("Child closed on A", &["--parent", &epic]);
        let c2 = a.create("Child closed on B", &["--parent", &epic]);
        let dependent = a.create("Blocked until both close", &[]);
        a.ok(&["dep", "add", &dependent, &epic]);
        a.ok(&["block", &dependent]);
        b.json(&["peer", "sync", "a"]);
        if a_closes_last {
            b.ok(&["close", &c2]);
            a.ok(&["close", &c1]);
        } else {
            a.ok(&["close", &c1]);
            b.ok(&["close", &c2]);
        }
        assert_eq!(status(&a, &epic), "open", "neither machine saw both closes");
        assert_eq!(status(&b, &epic), "open");
        b.json(&["peer", "sync", "a"]);
        b.json(&["peer", "sync", "a"]);
        converged_once(&a, &b, &epic);
        assert_eq!(
            status(&a, &dependent),
            "open",
            "the epic's dependents follow"
        );
        assert_eq!(a.export(), b.export());
    }
}

/// One machine closes a blocker while the other edits the blocked issue: after they meet the
/// issue is unblocked once and the edit is kept.
#[test]
fn a_blocker_closed_on_one_machine_while_the_other_edits_the_dependent() {
    let (a, b, _sa) = pair();
    let blocker = a.create("The blocker", &[]);
    let dependent = a.create("The dependent", &[]);
    a.ok(&["dep", "add", &dependent, &blocker]);
    a.ok(&["block", &dependent]);
    b.json(&["peer", "sync", "a"]);
    a.ok(&["close", &blocker]);
    b.ok(&[
        "update",
        &dependent,
        "--description",
        "- edited on B while apart",
    ]);
    b.json(&["peer", "sync", "a"]);
    b.json(&["peer", "sync", "a"]);
    assert_eq!(a.export(), b.export());
    for r in [&a, &b] {
        let d = r.json(&["show", &dependent]);
        assert_eq!(d["status"], "open", "{d}");
        assert_eq!(d["description"], "- edited on B while apart");
        assert_eq!(logs_with(r, &dependent, "Auto-unblocked"), 1);
    }
}
