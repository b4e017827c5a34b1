//! `td link` with patterns, directories and `--depends-on`; `td files` with each file's state,
//! `--changed` and `-u` (git's changes not linked to the issue).

use std::process::Command;

use td_tests::Replica;

fn git(r: &Replica, args: &[&str]) {
    let ok = Command::new("git")
        .arg("-C")
        .arg(&r.root)
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?}");
}

#[test]
fn link_patterns_and_directories_and_files_states() {
    let r = Replica::init();
    git(&r, &["init", "-q"]);
    let w = |p: &str, s: &str| {
        let path = r.root.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, s).unwrap();
    };
    w("src/a.rs", "a");
    w("src/b.rs", "b");
    w("src/deep/c.rs", "c");
    w("src/notes.txt", "n");
    w("other.rs", "o");
    git(&r, &["add", "."]);
    git(&r, &["commit", "-qm", "init"]);
    let id = r.create("Linked work", &[]);
    let root = r.root.to_str().unwrap().to_string();

    // A pattern td expands itself (quoted on a shell), then a directory without its
    // subdirectories, then with them.
    let v = r.json(&["link", &id, &format!("{root}/src/*.rs")]);
    assert_eq!(v["files"].as_array().unwrap().len(), 2, "{v}");
    let v = r.json(&[
        "link",
        &id,
        &format!("{root}/src"),
        "--recursive=false",
        "--role",
        "reference",
    ]);
    let paths: Vec<&str> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file_path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"src/notes.txt") && !paths.contains(&"src/deep/c.rs"),
        "{paths:?}"
    );
    r.json(&["link", &id, &format!("{root}/src")]);
    let files = r.json(&["files", &id]);
    let all: Vec<&str> = files
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file_path"].as_str().unwrap())
        .collect();
    assert!(all.contains(&"src/deep/c.rs"), "{all:?}");
    assert!(files
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["status"] == "unchanged"));
    // No match is an error that names the pattern.
    let out = r.run(&["link", &id, &format!("{root}/nothing/*.zz"), "--json"]);
    assert!(out.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no files matching"));

    // Edits show up: --changed keeps only them; -u lists git's changes not linked.
    w("src/a.rs", "a changed");
    std::fs::remove_file(r.root.join("src/b.rs")).unwrap();
    w("other.rs", "o changed");
    w("fresh.rs", "new file");
    let changed = r.json(&["files", &id, "--changed"]);
    let mut states: Vec<(String, String)> = changed
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["file_path"].as_str().unwrap().to_string(),
                f["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    states.sort();
    states.dedup();
    assert_eq!(
        states,
        [
            ("src/a.rs".to_string(), "modified".to_string()),
            ("src/b.rs".to_string(), "deleted".to_string())
        ]
    );
    let u = r.json(&["files", &id, "-u"]);
    assert_eq!(
        u["untracked"]["modified"],
        serde_json::json!(["other.rs"]),
        "{u}"
    );
    assert!(
        u["untracked"]["new"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "fresh.rs"),
        "{u}"
    );
    assert!(r.ok(&["files", &id, "-u"]).contains("UNTRACKED CHANGES"));

    // --depends-on adds a dependency instead of links.
    let other = r.create("Prerequisite", &[]);
    r.json(&["link", &id, "--depends-on", &other]);
    assert_eq!(
        r.json(&["depends-on", &id])["dependencies"][0]["id"],
        other.as_str()
    );
}
