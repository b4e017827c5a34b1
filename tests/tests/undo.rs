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
    // Another session's actions are its own: b's session has nothing to undo (as td: a
    // message and success; `--json` prints null).
    assert!(b.json(&["undo"]).is_null());
    assert!(b
        .ok(&["undo"])
        .starts_with("No actions to undo in current session"));
}

/// Each of td's other undoable actions (dependencies, file links, boards and their positions,
/// handoffs) is taken back, latest first, and a replica that syncs shows the same.
#[test]
fn undo_covers_dependencies_files_boards_and_handoffs() {
    let a = Replica::init();
    let x = a.create("X", &[]);
    let y = a.create("Y", &[]);
    let notes = a.root.join("notes.txt");
    std::fs::write(&notes, "hello").unwrap();
    let notes = notes.to_str().unwrap();
    let deps = |r: &Replica| {
        r.json(&["depends-on", &x])["dependencies"]
            .as_array()
            .unwrap()
            .len()
    };
    let files = |r: &Replica| r.json(&["files", &x]).as_array().unwrap().len();

    a.json(&["dep", "add", &x, &y]);
    assert_eq!(deps(&a), 1);
    assert_eq!(a.json(&["undo"])["action"], "add_dependency");
    assert_eq!(deps(&a), 0);
    a.json(&["dep", "add", &x, &y]);
    a.json(&["dep", "rm", &x, &y]);
    assert_eq!(a.json(&["undo"])["action"], "remove_dependency");
    assert_eq!(deps(&a), 1, "undoing a removal brings the edge back");

    a.json(&["link", &x, notes]);
    assert_eq!(files(&a), 1);
    assert_eq!(a.json(&["undo"])["action"], "link_file");
    assert_eq!(files(&a), 0);
    a.json(&["link", &x, notes]);
    a.json(&["unlink", &x, notes]);
    assert_eq!(a.json(&["undo"])["action"], "unlink_file");
    assert_eq!(files(&a), 1);

    // Boards: create, edit, position, unposition, delete.
    a.json(&["board", "create", "Sprint", "-q", "status = open"]);
    let boards = |r: &Replica| -> Vec<String> {
        r.json(&["board", "list"])
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(boards(&a).contains(&"Sprint".to_string()));
    assert_eq!(a.json(&["undo"])["action"], "board_create");
    assert!(!boards(&a).contains(&"Sprint".to_string()));
    a.json(&["board", "create", "Sprint", "-q", "status = open"]);
    a.json(&["board", "edit", "Sprint", "-n", "Renamed"]);
    assert_eq!(a.json(&["undo"])["action"], "board_update");
    assert!(boards(&a).contains(&"Sprint".to_string()));
    let positioned = |r: &Replica| -> usize {
        r.json(&["board", "show", "Sprint"])["issues"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| !i["position"].is_null())
            .count()
    };
    a.json(&["board", "move", "Sprint", &x, "1"]);
    assert_eq!(positioned(&a), 1);
    assert_eq!(a.json(&["undo"])["action"], "board_set_position");
    assert_eq!(positioned(&a), 0);
    a.json(&["board", "move", "Sprint", &x, "1"]);
    a.json(&["board", "unposition", "Sprint", &x]);
    assert_eq!(a.json(&["undo"])["action"], "board_unposition");
    assert_eq!(positioned(&a), 1);
    a.json(&["board", "delete", "Sprint"]);
    assert_eq!(a.json(&["undo"])["action"], "board_delete");
    assert!(boards(&a).contains(&"Sprint".to_string()));
    assert_eq!(positioned(&a), 1, "the restored board keeps its positions");

    // A handoff is deleted.
    a.json(&["handoff", &x, "--done", "wrote the parser"]);
    assert_eq!(
        a.json(&["show", &x])["handoff"]["done"],
        serde_json::json!(["wrote the parser"])
    );
    let u = a.json(&["undo"]);
    assert_eq!(
        (u["action"].as_str(), u["entity_type"].as_str()),
        (Some("handoff"), Some("handoff"))
    );
    assert_eq!(a.json(&["show", &x])["handoff"], serde_json::Value::Null);

    // Logs and comments are not actions td undoes: the latest undoable one is still a board's.
    a.json(&["comment", &x, "a remark"]);
    assert_eq!(a.json(&["last", "-n", "1"])[0]["action"], "handoff");

    let b = Replica::init();
    let sa = a.serve();
    a.befriend(&b, "a", &sa.addr);
    b.json(&["peer", "sync", "a"]);
    assert_eq!(a.export(), b.export());
    assert_eq!(deps(&b), 1);
    assert_eq!(files(&b), 1);
    assert_eq!(positioned(&b), 1);
}

/// Finding 6 of the second security review: `td undo` after a sync takes back only what its
/// command did. A teammate's later edits to other fields survive; a field the teammate
/// changed after the command keeps the teammate's value and the undo names it; both replicas
/// end identical.
#[test]
fn undo_after_a_sync_keeps_a_teammates_later_edits() {
    let a = Replica::init();
    let b = Replica::init();
    let sa = a.serve();
    a.befriend(&b, "a", &sa.addr);
    let sync = || assert!(b.json(&["peer", "sync", "a"])[0]["error"].is_null());
    let id = a.create("Original title", &["-p", "P2"]);
    sync();
    a.json(&["update", &id, "--title", "Retitled by A"]);
    sync();
    b.json(&["update", &id, "-p", "P0", "--description", "written on B"]);
    sync();
    let u = a.json(&["undo"]);
    assert!(u.get("kept").is_none(), "{u}");
    let s = a.json(&["show", &id]);
    assert_eq!(s["title"], "Original title");
    assert_eq!(s["priority"], "P0", "B's later priority survives");
    assert_eq!(
        s["description"], "written on B",
        "B's later description survives"
    );

    // B changes the very field after A's command: the undo leaves B's value and says so.
    a.json(&["update", &id, "--title", "Second title by A", "-p", "P1"]);
    sync();
    b.json(&["update", &id, "--title", "B's title"]);
    sync();
    let u = a.json(&["undo"]);
    assert_eq!(u["kept"], serde_json::json!(["title"]), "{u}");
    let s = a.json(&["show", &id]);
    assert_eq!(s["title"], "B's title");
    assert_eq!(s["priority"], "P0", "A's own priority change is taken back");
    sync();
    assert_eq!(a.export(), b.export());
    sa.stop();
}
