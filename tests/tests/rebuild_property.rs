//! Property: after any sequence of td commands (including failing ones), `td rebuild`
//! reproduces every table exactly — the tables are a pure function of the change log.

use proptest::prelude::*;
use td_engine::ops::issues::IssueFields;
use td_engine::ops::records::HandoffText;
use td_engine::ops::workflow::ApproveOptions;
use td_engine::{MachineIdentity, Project, SessionContext};

#[derive(Debug, Clone)]
enum Op {
    Create(u8, String),
    Update {
        issue: u8,
        priority: u8,
        labels: Vec<String>,
        append: Option<String>,
    },
    Start(u8, u8),
    Log(u8, u8, String),
    Comment(u8, String),
    Handoff(u8),
    Review(u8, u8),
    Approve(u8, u8),
    Reject(u8),
    Close(u8),
    Reopen(u8),
    Block(u8),
    Delete(u8),
    Restore(u8),
    Dep(u8, u8),
    Undep(u8, u8),
    WsStartTag(u8, u8),
    WsEnd(u8),
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z ]{1,20}".prop_map(|s| format!("Item {s}")),
        Just("Emoji 🚀 and 日本語 and עברית".to_string()),
        Just("'; DROP TABLE issues; -- <b>markup</b>".to_string()),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let i = 0u8..6;
    let s = 0u8..2;
    prop_oneof![
        3 => (s.clone(), text()).prop_map(|(s, t)| Op::Create(s, t)),
        2 => (i.clone(), 0u8..5, prop::collection::vec("[a-c]", 0..3), prop::option::of(text()))
            .prop_map(|(issue, priority, labels, append)| Op::Update { issue, priority, labels, append }),
        2 => (i.clone(), s.clone()).prop_map(|(a, b)| Op::Start(a, b)),
        2 => (i.clone(), s.clone(), text()).prop_map(|(a, b, t)| Op::Log(a, b, t)),
        1 => (i.clone(), text()).prop_map(|(a, t)| Op::Comment(a, t)),
        1 => i.clone().prop_map(Op::Handoff),
        1 => (i.clone(), s.clone()).prop_map(|(a, b)| Op::Review(a, b)),
        1 => (i.clone(), s.clone()).prop_map(|(a, b)| Op::Approve(a, b)),
        1 => i.clone().prop_map(Op::Reject),
        1 => i.clone().prop_map(Op::Close),
        1 => i.clone().prop_map(Op::Reopen),
        1 => i.clone().prop_map(Op::Block),
        1 => i.clone().prop_map(Op::Delete),
        1 => i.clone().prop_map(Op::Restore),
        1 => (i.clone(), i.clone()).prop_map(|(a, b)| Op::Dep(a, b)),
        1 => (i.clone(), i.clone()).prop_map(|(a, b)| Op::Undep(a, b)),
        1 => (s.clone(), i.clone()).prop_map(|(a, b)| Op::WsStartTag(a, b)),
        1 => s.prop_map(Op::WsEnd),
    ]
}

fn ctx(name: &str) -> SessionContext {
    SessionContext {
        explicit: Some(name.to_string()),
        ..Default::default()
    }
}

fn run(ops: &[Op]) {
    let dir = tempfile::tempdir().unwrap();
    let identity = MachineIdentity::generate();
    Project::init(dir.path(), identity.clone(), &ctx("a")).unwrap();
    let mut sessions = [
        Project::open(dir.path(), identity.clone(), &ctx("a")).unwrap(),
        Project::open(dir.path(), identity, &ctx("b")).unwrap(),
    ];
    let mut ids: Vec<String> = Vec::new();
    let pick = |ids: &Vec<String>, n: u8| ids.get(n as usize % ids.len().max(1)).cloned();
    for op in ops {
        // Errors are expected (invalid transitions etc.); they must simply write nothing.
        let _ = match op.clone() {
            Op::Create(s, t) => {
                let f = IssueFields {
                    title: Some(t),
                    ..Default::default()
                };
                sessions[s as usize]
                    .create(&f, &[], &[])
                    .map(|i| ids.push(i.id))
            }
            Op::Update {
                issue,
                priority,
                labels,
                append,
            } => match pick(&ids, issue) {
                Some(id) => {
                    let f = IssueFields {
                        priority: Some(format!("P{priority}")),
                        labels: Some(labels),
                        append,
                        ..Default::default()
                    };
                    sessions[0].update(&id, &f, None).map(|_| ())
                }
                None => Ok(()),
            },
            Op::Start(i, s) => pick(&ids, i).map_or(Ok(()), |id| {
                sessions[s as usize]
                    .start(&id, false, None, None)
                    .map(|_| ())
            }),
            Op::Log(i, s, t) => pick(&ids, i).map_or(Ok(()), |id| {
                sessions[s as usize]
                    .log(Some(&id), &t, "progress")
                    .map(|_| ())
            }),
            Op::Comment(i, t) => {
                pick(&ids, i).map_or(Ok(()), |id| sessions[1].comment(&id, &t).map(|_| ()))
            }
            Op::Handoff(i) => pick(&ids, i).map_or(Ok(()), |id| {
                let h = HandoffText {
                    done: vec!["did it".into()],
                    ..Default::default()
                };
                sessions[0].handoff(&id, &h).map(|_| ())
            }),
            Op::Review(i, s) => pick(&ids, i).map_or(Ok(()), |id| {
                sessions[s as usize].review(&id, None, None).map(|_| ())
            }),
            Op::Approve(i, s) => pick(&ids, i).map_or(Ok(()), |id| {
                sessions[s as usize]
                    .approve(&id, &ApproveOptions::default(), None)
                    .map(|_| ())
            }),
            Op::Reject(i) => pick(&ids, i).map_or(Ok(()), |id| {
                sessions[1].reject(&id, Some("no"), None).map(|_| ())
            }),
            Op::Close(i) => pick(&ids, i).map_or(Ok(()), |id| {
                sessions[0].close(&id, None, None, None).map(|_| ())
            }),
            Op::Reopen(i) => {
                pick(&ids, i).map_or(Ok(()), |id| sessions[0].reopen(&id, None).map(|_| ()))
            }
            Op::Block(i) => {
                pick(&ids, i).map_or(Ok(()), |id| sessions[0].block(&id, None, None).map(|_| ()))
            }
            Op::Delete(i) => {
                pick(&ids, i).map_or(Ok(()), |id| sessions[0].delete(&id, None).map(|_| ()))
            }
            Op::Restore(i) => {
                pick(&ids, i).map_or(Ok(()), |id| sessions[0].restore(&id).map(|_| ()))
            }
            Op::Dep(a, b) => match (pick(&ids, a), pick(&ids, b)) {
                (Some(a), Some(b)) => sessions[0].dep_add(&a, &b).map(|_| ()),
                _ => Ok(()),
            },
            Op::Undep(a, b) => match (pick(&ids, a), pick(&ids, b)) {
                (Some(a), Some(b)) => sessions[0].dep_rm(&a, &b).map(|_| ()),
                _ => Ok(()),
            },
            Op::WsStartTag(s, i) => {
                let p = &mut sessions[s as usize];
                let _ = p.ws_start("stretch");
                pick(&ids, i).map_or(Ok(()), |id| p.ws_tag(&[id], false).map(|_| ()))
            }
            Op::WsEnd(s) => sessions[s as usize].ws_end().map(|_| ()),
        };
    }
    drop(sessions);
    let db = td_engine::store::db_path(dir.path());
    let before = td_tests::canonical_dump(&db, Some("sqlite_"));
    let mut store = td_engine::Store::open(dir.path(), MachineIdentity::generate()).unwrap();
    let export_before = td_engine::export::export_json_string(store.conn()).unwrap();
    store.rebuild().unwrap();
    let export_after = td_engine::export::export_json_string(store.conn()).unwrap();
    drop(store);
    let after = td_tests::canonical_dump(&db, Some("sqlite_"));
    assert_eq!(export_before, export_after);
    if before != after {
        let a: Vec<&str> = before.lines().collect();
        let b: Vec<&str> = after.lines().collect();
        let diff: Vec<String> = a
            .iter()
            .filter(|l| !b.contains(l))
            .map(|l| format!("- {}", &l[l.len().saturating_sub(200)..]))
            .chain(
                b.iter()
                    .filter(|l| !a.contains(l))
                    .map(|l| format!("+ {}", &l[l.len().saturating_sub(200)..])),
            )
            .collect();
        panic!("tables differ after rebuild:\n{}", diff.join("\n"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn rebuild_reproduces_tables_after_random_commands(ops in prop::collection::vec(op(), 1..60)) {
        run(&ops);
    }
}
