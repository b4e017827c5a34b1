//! `td undo` / `td last`: each undoable action restores the previous state, as a new change,
//! and after a sync the other replica shows the same.

use td_tests::Replica;

#[test]
fn undo_takes_back_each_action_and_the_undo_syncs() {
    let a = Replica::init();
    let id = a.create("Original title", &["-p", "P2", "-l", "x"]);
    a.json(&[
        "update", &id, "--title", "Renamed", "-p", "P0", "-l", "y,z", "-d", "text",
    ]);
    assert_eq!(a.json(&["last", "-n", "1"])[0]["action"], "update");
    let u = a.json(&["undo"]);
    assert_eq!(
        (u["action"].as_str(), u["entity_id"].as_str()),
        (Some("update"), Some(id.as_str()))
    );
    let s = a.json(&["show", &id]);
    assert_eq!(s["title"], "Original title");
    assert_eq!(s["priority"], "P2");
    assert_eq!(s["labels"], serde_json::json!(["x"]));
    assert_eq!(s["description"], "");

    // A transition: start is taken back to open (implementer cleared).
    a.json(&["start", &id]);
    assert_eq!(a.json(&["last", "-n", "1"])[0]["action"], "start");
    a.json(&["undo"]);
    let s = a.json(&["show", &id]);
    assert_eq!(s["status"], "open");
    assert_eq!(s["implementer_session"], "");

    // Delete is undone by restoring; create by deleting.
    a.json(&["delete", &id]);
    a.json(&["undo"]);
    assert!(a.json(&["show", &id])["deleted_at"].is_null());
    let made = a.create("Made by mistake", &[]);
    assert_eq!(a.json(&["undo"])["action"], "create");
    assert!(
        !a.json(&["show", &made])["deleted_at"].is_null(),
        "undoing a create deletes"
    );

    // The undone actions are marked; the undos themselves are not actions.
    let last: Vec<(String, bool)> = a
        .json(&["last", "-n", "5"])
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["action"].as_str().unwrap().to_string(),
                x["undone"] == true,
            )
        })
        .collect();
    assert_eq!(
        last,
        [
            ("create".to_string(), true),
            ("delete".to_string(), true),
            ("start".to_string(), true),
            ("update".to_string(), true),
            ("create".to_string(), false),
        ]
    );

    // Another replica sees the same after syncing: the undo is a change like any other.
    let b = Replica::init();
    let sa = a.serve();
    a.befriend(&b, "a", &sa.addr);
    b.json(&["peer", "sync", "a"]);
    assert_eq!(b.json(&["show", &id])["title"], "Original title");
    a.json(&["update", &id, "--title", "Second rename"]);
    b.json(&["peer", "sync", "a"]);
    assert_eq!(b.json(&["show", &id])["title"], "Second rename");
    a.json(&["undo"]);
    b.json(&["peer", "sync", "a"]);
    assert_eq!(b.json(&["show", &id])["title"], "Original title");
    assert_eq!(a.export(), b.export());
    // Another session's actions are its own: b's session has nothing to undo.
    assert_eq!(b.run(&["undo", "--json"]).error_code(), "not_found");
}
