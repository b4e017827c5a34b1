//! Many `td` processes on one database at once: every command succeeds, every write is present
//! exactly once, and the log never repeats an (actor, seq).

use std::collections::HashSet;
use std::process::Stdio;

use td_tests::Replica;

const PROCS: usize = 8;
const PER_PROC: usize = 8;

#[test]
fn eight_processes_create_and_update_concurrently() {
    let r = Replica::init();
    // Half the workers share the default session (same actor: the hardest case), half use
    // their own named sessions.
    let script = |w: usize| {
        (0..PER_PROC)
            .map(|i| format!("\"$TD\" -w \"$ROOT\" create \"Worker {w} item {i} title\" -p P{} --json || exit 1; ", i % 4))
            .collect::<String>()
    };
    let td = td_tests::td_bin();
    let children: Vec<_> = (0..PROCS)
        .map(|w| {
            let mut c = std::process::Command::new("sh");
            c.arg("-c")
                .arg(script(w))
                .env("TD", &td)
                .env("ROOT", &r.root)
                .env("XDG_CONFIG_HOME", &r.config);
            c.env_remove("TD_WORK_DIR")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            if w % 2 == 1 {
                c.env("TD_SESSION_ID", format!("worker-{w}"));
            } else {
                c.env_remove("TD_SESSION_ID");
            }
            c.spawn().unwrap()
        })
        .collect();
    let mut ids = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a worker failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for v in td_tests::json_values(&String::from_utf8_lossy(&out.stdout)) {
            ids.push(v["id"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(ids.len(), PROCS * PER_PROC);

    // Now every worker updates every issue it did not create, concurrently.
    let children: Vec<_> = (0..PROCS)
        .map(|w| {
            let cmds: String = ids
                .iter()
                .skip(w)
                .step_by(PROCS)
                .map(|id| format!("\"$TD\" -w \"$ROOT\" update {id} -l w{w} --json >/dev/null || exit 1; \"$TD\" -w \"$ROOT\" comment {id} \"note from {w}\" >/dev/null || exit 1; "))
                .collect();
            std::process::Command::new("sh")
                .arg("-c")
                .arg(cmds)
                .env("TD", &td)
                .env("ROOT", &r.root)
                .env("XDG_CONFIG_HOME", &r.config)
                .env_remove("TD_SESSION_ID")
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "an updater failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let list = r.json(&["list", "-a", "-n", "1000"]);
    let titles: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(titles.len(), PROCS * PER_PROC);
    let unique: HashSet<&String> = titles.iter().collect();
    assert_eq!(
        unique.len(),
        titles.len(),
        "every create present exactly once"
    );
    for (n, id) in ids.iter().enumerate() {
        let shown = r.json(&["show", id]);
        assert_eq!(
            shown["labels"],
            serde_json::json!([format!("w{}", n % PROCS)]),
            "update of {id} present"
        );
        assert_eq!(
            shown["comments"].as_array().unwrap().len(),
            1,
            "comment on {id} present once"
        );
    }
    let conn = rusqlite::Connection::open(r.db()).unwrap();
    let stats = td_engine::export::log_stats(&conn).unwrap();
    assert_eq!(stats.duplicate_actor_seqs, 0);
    // creates + label updates + comments, plus the founder's roster entry and the project's
    // first epoch (docs/encryption.md), written with the first change
    let expected = (PROCS * PER_PROC * 3) as i64 + 2;
    assert_eq!(stats.changes, expected, "every write logged exactly once");
    // Each actor's sequence is gap-free 1..=max.
    let gaps: i64 = conn
        .query_row("SELECT count(*) FROM crdt_actors a WHERE a.max_seq != (SELECT count(*) FROM crdt_changes c WHERE c.actor = a.actor)", [], |x| x.get(0))
        .unwrap();
    assert_eq!(gaps, 0);
}
