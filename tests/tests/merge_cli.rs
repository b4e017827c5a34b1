//! Conflicts as a user meets them: two machines start the same issue offline, then sync over
//! `td peer`; one implementer everywhere, the other session warned, one conflict listed, and
//! `td sync resolve` changes the outcome everywhere.

use td_tests::Replica;

#[test]
fn concurrent_start_from_two_machines() {
    let a = Replica::init();
    let id = a.create("Claimed by two agents at once", &[]);
    let b = Replica::init();
    let sa = a.serve();
    a.befriend(&b, "a", &sa.addr);
    b.json(&["peer", "sync", "a"]);
    // Offline, both agents start it.
    a.json_as("agent-a", &["start", &id]);
    b.json_as("agent-b", &["start", &id]);
    let v = b.json(&["peer", "sync", "a"]);
    assert_eq!(v[0]["conflicts"], 1, "{v}");
    assert_eq!(a.export(), b.export());
    let shown = a.json(&["show", &id]);
    let winner = shown["implementer_session"].as_str().unwrap().to_string();
    assert_eq!(
        b.json(&["show", &id])["implementer_session"],
        winner.as_str(),
        "one implementer everywhere"
    );
    let ca = a.json(&["sync", "conflicts"]);
    assert_eq!(
        ca,
        b.json(&["sync", "conflicts"]),
        "same conflicts on both machines"
    );
    assert_eq!(ca.as_array().unwrap().len(), 1, "{ca}");
    let c = &ca[0];
    assert_eq!(c["field"], "wf");
    assert_eq!(c["kept"]["value"]["implementer_session"], winner.as_str());
    let loser_session = c["overwritten"]["session"].as_str().unwrap().to_string();
    assert_ne!(loser_session, winner);
    // The losing session is told on its next command that touches the issue, once.
    let (loser, loser_name) =
        if a.json_as("agent-a", &["whoami"])["session"] == loser_session.as_str() {
            (&a, "agent-a")
        } else {
            (&b, "agent-b")
        };
    let r = loser.run_as(loser_name, &["show", &id]);
    assert_eq!(r.code, 0);
    assert!(
        r.stderr.contains("Warning:") && r.stderr.contains(&id) && r.stderr.contains(&winner),
        "{}",
        r.stderr
    );
    assert!(
        !loser
            .run_as(loser_name, &["show", &id])
            .stderr
            .contains("Warning:"),
        "warned once"
    );
    assert!(
        loser.ok(&["show", &id]).contains("(!) conflict"),
        "td show marks the field"
    );
    // Resolve on one machine: the overwritten start wins everywhere after the next sync.
    let cid = c["id"].as_str().unwrap();
    let r = a.json(&["sync", "resolve", cid, "--keep", "overwritten"]);
    assert_eq!(r["resolved"], true);
    b.json(&["peer", "sync", "a"]);
    for r in [&a, &b] {
        assert_eq!(
            r.json(&["show", &id])["implementer_session"],
            loser_session.as_str()
        );
        assert_eq!(r.json(&["sync", "conflicts"]), serde_json::json!([]));
        assert_eq!(
            r.json(&["sync", "conflicts", "--all"])
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }
    assert_eq!(a.export(), b.export());
    // Bad input.
    assert_eq!(
        a.run(&["sync", "resolve", "cf-nope", "--keep", "kept", "--json"])
            .error_code(),
        "not_found"
    );
    assert_eq!(
        a.run(&["sync", "resolve", cid, "--keep", "both", "--json"])
            .error_code(),
        "invalid_input"
    );
    assert_eq!(
        a.run(&["sync", "conflicts", "--since", "soon", "--json"])
            .error_code(),
        "invalid_input"
    );
    assert_eq!(
        a.json(&["sync", "conflicts", "--all", "--since", "1h"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    sa.stop();
}
