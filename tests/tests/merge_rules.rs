//! Deterministic merges with visible conflicts, across replicas (sans-IO sync in process, and
//! the real binary over `td peer` for the session-facing parts).

use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde_json::Value;
use td_engine::conflicts;
use td_engine::ops::issues::IssueFields;
use td_engine::sync::{SyncStore, WireRun};
use td_tests::inproc::clean_round;
use td_tests::mesh::{self, Node};

fn fields(f: impl FnOnce(&mut IssueFields)) -> IssueFields {
    let mut x = IssueFields::default();
    f(&mut x);
    x
}

fn create(n: &mut Node, title: &str) -> String {
    n.project
        .create(&fields(|f| f.title = Some(title.into())), &[], &[])
        .unwrap()
        .id
}

/// A copy of a replica's database as it is now (a project dir to replay deliveries into).
fn snapshot(n: &Node) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".todos")).unwrap();
    let target = dir.path().join(".todos/issues.db");
    n.project
        .store
        .conn()
        .execute_batch(&format!("VACUUM INTO '{}'", target.display()))
        .unwrap();
    dir
}

/// A fresh store over a copy of `base`.
fn copy_of(base: &tempfile::TempDir) -> (tempfile::TempDir, td_engine::Store) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".todos")).unwrap();
    std::fs::copy(
        base.path().join(".todos/issues.db"),
        dir.path().join(".todos/issues.db"),
    )
    .unwrap();
    let store = td_engine::Store::open(dir.path(), td_engine::MachineIdentity::generate()).unwrap();
    (dir, store)
}

fn sync_all(nodes: &mut [Node]) {
    for _ in 0..2 {
        for a in 0..nodes.len() {
            for b in 0..nodes.len() {
                if a != b {
                    let (x, y) = mesh::pair(nodes, a, b);
                    clean_round(&mut x.project.store, &mut y.project.store);
                }
            }
        }
    }
}

fn conflicts_json(n: &Node, all: bool) -> Value {
    Value::Array(
        conflicts::list(n.project.store.conn(), all, None, None)
            .unwrap()
            .into_iter()
            .map(|c| c.to_json())
            .collect(),
    )
}

fn shared_issue(nodes: &mut [Node]) -> String {
    let id = nodes[0]
        .project
        .create(
            &fields(|f| f.title = Some("Shared issue to edit".into())),
            &[],
            &[],
        )
        .unwrap()
        .id;
    sync_all(nodes);
    id
}

#[test]
fn same_field_three_way_conflict_converges_and_is_recorded() {
    let mut nodes = mesh::project(3);
    let id = shared_issue(&mut nodes);
    for (i, n) in nodes.iter_mut().enumerate() {
        edit(n, &id, |f| {
            f.title = Some(format!("Title chosen by replica {i}"))
        });
    }
    // The round that brings a concurrent title reports the conflict it recorded.
    let (x, y) = mesh::pair(&mut nodes, 0, 1);
    let (_, at_y) = clean_round(&mut x.project.store, &mut y.project.store);
    let (at_x, _) = clean_round(&mut x.project.store, &mut y.project.store);
    let recorded: Vec<String> = field_conflicts(&nodes[1], "title")
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(recorded.len(), 1);
    assert_eq!(
        [at_y.conflicts.clone(), at_x.conflicts.clone()].concat(),
        recorded,
        "the round's report names the conflict it recorded"
    );
    sync_all(&mut nodes);
    let e = nodes[0].export();
    assert!(nodes.iter().all(|n| n.export() == e), "replicas diverged");
    let c = conflicts_json(&nodes[0], false);
    assert!(nodes
        .iter()
        .all(|n| conflicts_json(n, true) == conflicts_json(&nodes[0], true)));
    let title = field_conflicts(&nodes[0], "title");
    assert_eq!(title.len(), 2, "two overwritten titles: {c}");
    let shown = td_engine::query::issue_detail(nodes[1].project.store.conn(), &id)
        .unwrap()
        .to_json();
    for t in &title {
        assert_eq!(
            t["kept"]["value"], shown["title"],
            "the kept value is what every replica shows"
        );
        assert_ne!(t["overwritten"]["value"], shown["title"]);
        assert!(t["overwritten"]["session"]
            .as_str()
            .unwrap()
            .starts_with("ses_"));
        assert_eq!(t["overwritten"]["machine"].as_str().unwrap().len(), 10);
    }
    assert_eq!(
        shown["conflicts"].as_array().unwrap().len(),
        2,
        "td show lists them"
    );
    // Resolving on one replica settles it everywhere.
    let cid = title[0]["id"].as_str().unwrap().to_string();
    let lost = title[0]["overwritten"]["value"].clone();
    nodes[2]
        .project
        .resolve_conflict(&cid, &conflicts::Resolution::Overwritten)
        .unwrap();
    sync_all(&mut nodes);
    for n in &nodes {
        let s = td_engine::query::issue_detail(n.project.store.conn(), &id)
            .unwrap()
            .to_json();
        assert_eq!(s["title"], lost);
        assert!(
            conflicts_json(n, false)
                .as_array()
                .unwrap()
                .iter()
                .all(|x| x["field"] != "title"),
            "resolved everywhere"
        );
    }
    assert_eq!(
        conflicts_json(&nodes[0], true),
        conflicts_json(&nodes[1], true)
    );
}

#[test]
fn different_fields_both_survive_and_text_appends_merge() {
    let mut nodes = mesh::project(2);
    let id = shared_issue(&mut nodes);
    edit(&mut nodes[0], &id, |f| {
        f.priority = Some("P0".into());
        f.append = Some("note from A".into());
    });
    edit(&mut nodes[1], &id, |f| {
        f.labels = Some(vec!["sync".into()]);
        f.append = Some("note from B".into());
    });
    sync_all(&mut nodes);
    assert_eq!(nodes[0].export(), nodes[1].export());
    let s = td_engine::query::issue_detail(nodes[0].project.store.conn(), &id)
        .unwrap()
        .to_json();
    assert_eq!(s["priority"], "P0");
    assert_eq!(s["labels"], serde_json::json!(["sync"]));
    let d = s["description"].as_str().unwrap();
    assert!(
        d.contains("note from A") && d.contains("note from B"),
        "both appends kept: {d:?}"
    );
    assert_eq!(conflicts_json(&nodes[0], true), serde_json::json!([]));
}

#[test]
fn delete_wins_over_concurrent_update_and_restore_undoes_it() {
    let mut nodes = mesh::project(2);
    let id = shared_issue(&mut nodes);
    nodes[0].project.delete(&id, None).unwrap();
    edit(&mut nodes[1], &id, |f| {
        f.title = Some("Edited while deleted elsewhere".into())
    });
    sync_all(&mut nodes);
    assert_eq!(nodes[0].export(), nodes[1].export());
    for n in &nodes {
        let i = td_engine::query::find_issue(n.project.store.conn(), &id)
            .unwrap()
            .unwrap();
        assert!(i.deleted_at.is_some(), "the update did not resurrect it");
        assert_eq!(
            i.title, "Edited while deleted elsewhere",
            "the edit itself is kept"
        );
    }
    nodes[1].project.restore(&id).unwrap();
    sync_all(&mut nodes);
    assert!(
        td_engine::query::find_issue(nodes[0].project.store.conn(), &id)
            .unwrap()
            .unwrap()
            .deleted_at
            .is_none()
    );
}

#[test]
fn concurrent_transitions_never_mix() {
    let mut nodes = mesh::project(2);
    let id = shared_issue(&mut nodes);
    nodes[0].project.start(&id, false, None, None).unwrap();
    nodes[1].project.block(&id, None, None).unwrap();
    sync_all(&mut nodes);
    assert_eq!(nodes[0].export(), nodes[1].export());
    let s = td_engine::query::issue_detail(nodes[0].project.store.conn(), &id)
        .unwrap()
        .to_json();
    let status = s["status"].as_str().unwrap();
    match status {
        "in_progress" => assert_ne!(s["implementer_session"], ""),
        "blocked" => assert_eq!(
            s["implementer_session"], "",
            "no implementer stamp from the losing start"
        ),
        other => panic!("unexpected status {other}"),
    }
    let c = field_conflicts(&nodes[0], "wf");
    assert_eq!(c.len(), 1, "{c:?}");
}

/// Every record of a set of replicas, grouped per writer in chain order.
/// A log row: actor, seq, body, signature.
type Row = (Vec<u8>, i64, Vec<u8>, Vec<u8>);

fn records_by_actor(n: &Node, after: &[Vec<u8>]) -> Vec<Vec<WireRun>> {
    let conn = n.project.store.conn();
    let mut stmt = conn
        .prepare("SELECT actor, seq, body, signature FROM crdt_changes ORDER BY actor, seq")
        .unwrap();
    let rows: Vec<Row> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    // Records of one actor up to its next signed one form a run (a write signs its run once,
    // on its last record), delivered as a unit as on the wire.
    let mut out: Vec<Vec<WireRun>> = Vec::new();
    let mut last: Option<Vec<u8>> = None;
    let mut open: Option<WireRun> = None;
    for (actor, _seq, body, sig) in rows {
        let key = [actor.clone(), body.clone()].concat();
        if after.contains(&key) {
            continue;
        }
        let b: td_engine::record::RecordBody = postcard::from_bytes(&body).unwrap();
        if last.as_ref() != Some(&actor) {
            assert!(open.is_none(), "a run ends signed");
            out.push(Vec::new());
            last = Some(actor);
        }
        let run = open.get_or_insert_with(|| WireRun {
            format: b.format,
            actor: b.actor,
            author: b.author,
            session: b.session.clone(),
            first_seq: b.seq,
            changes: Vec::new(),
            signature: Vec::new(),
        });
        run.changes.push((b.doc.clone(), b.change.clone()));
        if !sig.is_empty() {
            let mut run = open.take().unwrap();
            run.signature = sig;
            out.last_mut().unwrap().push(run);
        }
    }
    out
}

fn held(n: &Node) -> Vec<Vec<u8>> {
    let conn = n.project.store.conn();
    let mut stmt = conn
        .prepare("SELECT actor, body FROM crdt_changes")
        .unwrap();
    stmt.query_map([], |r| {
        Ok([r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?].concat())
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

#[test]
fn order_independence_over_random_and_exhaustive_deliveries() {
    let mut nodes = mesh::project(3);
    let id = shared_issue(&mut nodes);
    let other = nodes[0]
        .project
        .create(
            &fields(|f| f.title = Some("Second shared issue".into())),
            &[],
            &[],
        )
        .unwrap()
        .id;
    sync_all(&mut nodes);
    // The base every delivery starts from: a copy of replica 0's database now.
    let base = snapshot(&nodes[0]);
    let before = held(&nodes[0]);
    // Concurrent changes of every kind.
    edit(&mut nodes[0], &id, |f| {
        f.title = Some("Title from 0".into())
    });
    edit(&mut nodes[1], &id, |f| {
        f.title = Some("Title from 1".into())
    });
    edit(&mut nodes[2], &id, |f| {
        f.title = Some("Title from 2".into())
    });
    nodes[0].project.start(&other, false, None, None).unwrap();
    nodes[1].project.close(&other, None, None, None).unwrap();
    edit(&mut nodes[2], &other, |f| {
        f.labels = Some(vec!["x".into(), "y".into()])
    });
    edit(&mut nodes[1], &other, |f| {
        f.labels = Some(vec!["y".into(), "z".into()])
    });
    nodes[0].project.comment(&id, "comment from 0").unwrap();
    nodes[2].project.comment(&id, "comment from 2").unwrap();
    nodes[2].project.delete(&other, None).unwrap();
    let mut chains: Vec<Vec<WireRun>> = Vec::new();
    for n in &nodes {
        chains.extend(records_by_actor(n, &before));
    }
    chains.sort_by_key(|c| c[0].actor);
    chains.dedup_by_key(|c| c[0].actor);
    let deliver = |order: &[usize]| -> (String, Value) {
        let (_dir, mut store) = copy_of(&base);
        let mut next = vec![0usize; chains.len()];
        for &c in order {
            let run = &chains[c][next[c]];
            next[c] += 1;
            let r = store.apply(std::slice::from_ref(run)).unwrap();
            assert!(r.rejected.is_empty(), "{:?}", r.rejected);
        }
        let e = td_engine::export::export_json_string(store.conn()).unwrap();
        let c = Value::Array(
            conflicts::list(store.conn(), true, None, None)
                .unwrap()
                .into_iter()
                .map(|c| c.to_json())
                .collect(),
        );
        (e, c)
    };
    let base_order: Vec<usize> = chains
        .iter()
        .enumerate()
        .flat_map(|(i, c)| std::iter::repeat_n(i, c.len()))
        .collect();
    let (e0, c0) = deliver(&base_order);
    assert!(
        c0.as_array().unwrap().len() >= 3,
        "the mix produced conflicts: {c0}"
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x7d);
    for _ in 0..100 {
        let mut order = base_order.clone();
        order.shuffle(&mut rng);
        let (e, c) = deliver(&order);
        assert_eq!(e, e0, "export depends on arrival order");
        assert_eq!(c, c0, "conflicts depend on arrival order");
    }
    // And it matches the replicas that synced normally.
    sync_all(&mut nodes);
    assert_eq!(nodes[0].export(), e0);
    assert_eq!(conflicts_json(&nodes[0], true), c0);
}

/// One run per writer of everything `nodes` wrote after `before`: consecutive runs of an actor
/// join into one, vouched for by the last record's signature (the hash chain covers the rest).
fn one_run_per_writer(nodes: &[Node], before: &[Vec<u8>]) -> Vec<WireRun> {
    let mut runs: Vec<WireRun> = Vec::new();
    for n in nodes {
        for chain in records_by_actor(n, before) {
            runs.extend(chain);
        }
    }
    runs.sort_by_key(|r| (r.actor, r.first_seq));
    runs.dedup_by(|a, b| a.actor == b.actor && a.first_seq == b.first_seq);
    let mut joined: Vec<WireRun> = Vec::new();
    for r in runs {
        match joined.last_mut() {
            Some(last) if last.actor == r.actor => {
                last.changes.extend(r.changes);
                last.signature = r.signature;
            }
            _ => joined.push(r),
        }
    }
    joined
}

/// Delivers three runs to copies of `base` in all six orders; `outcome` describes each result
/// (and may assert on it). Returns the distinct outcomes.
fn all_six_orders(
    base: &tempfile::TempDir,
    runs: &[WireRun],
    outcome: impl Fn(&td_engine::Store) -> String,
) -> std::collections::BTreeSet<String> {
    assert_eq!(runs.len(), 3);
    let mut results = std::collections::BTreeSet::new();
    for order in [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ] {
        let (_dir, mut store) = copy_of(base);
        for i in order {
            store.apply(std::slice::from_ref(&runs[i])).unwrap();
        }
        results.insert(outcome(&store));
    }
    results
}

#[test]
fn all_orders_of_a_small_set() {
    let mut nodes = mesh::project(3);
    let id = shared_issue(&mut nodes);
    let base = snapshot(&nodes[0]);
    let before = held(&nodes[0]);
    for (i, n) in nodes.iter_mut().enumerate() {
        edit(n, &id, |f| f.priority = Some(["P0", "P1", "P3"][i].into()));
    }
    let runs = one_run_per_writer(&nodes, &before);
    let results = all_six_orders(&base, &runs, |store| {
        let c = conflicts::list(store.conn(), true, None, None).unwrap();
        assert_eq!(c.len(), 2);
        format!(
            "{}{}",
            td_engine::export::export_json_string(store.conn()).unwrap(),
            serde_json::to_string(&c.iter().map(|x| x.to_json()).collect::<Vec<_>>()).unwrap()
        )
    });
    assert_eq!(results.len(), 1, "all six orders give one result");
}

#[test]
fn unknown_fields_survive_a_replica_that_does_not_know_them() {
    let mut nodes = mesh::project(3);
    let id = shared_issue(&mut nodes);
    // A newer td writes a field this version has no column for.
    nodes[0]
        .project
        .store
        .write("ses_future", |tx| {
            tx.change(&id, |d| td_engine::doc::put_str(d, "estimate_hours", "12"))
        })
        .unwrap();
    // Replica 1 (this version) receives it, edits the issue, and relays to replica 2.
    let (a, b) = mesh::pair(&mut nodes, 0, 1);
    clean_round(&mut a.project.store, &mut b.project.store);
    b.project
        .update(
            &id,
            &fields(|f| f.title = Some("Edited by an older replica".into())),
            None,
        )
        .unwrap();
    let (b, c) = mesh::pair(&mut nodes, 1, 2);
    clean_round(&mut b.project.store, &mut c.project.store);
    let conn = nodes[2].project.store.conn();
    let snap: Vec<u8> = conn
        .query_row(
            "SELECT snapshot FROM crdt_docs WHERE doc_id = ?1",
            [&id],
            |r| r.get(0),
        )
        .unwrap();
    let doc = automerge::AutoCommit::load(&snap).unwrap();
    assert_eq!(
        td_engine::doc::read_str(&doc, "estimate_hours"),
        "12",
        "kept through the older replica"
    );
    assert_eq!(
        td_engine::doc::read_str(&doc, "title"),
        "Edited by an older replica"
    );
    assert!(
        !nodes[2].export().contains("estimate_hours"),
        "ignored by the materializer"
    );
}

#[test]
fn concurrent_edges_that_close_a_cycle_drop_the_same_edge_everywhere() {
    let mut nodes = mesh::project(2);
    let a = create(&mut nodes[0], "Cycle member A");
    let b = create(&mut nodes[0], "Cycle member B");
    let c = create(&mut nodes[0], "Cycle member C");
    nodes[0].project.dep_add(&a, &b).unwrap();
    sync_all(&mut nodes);
    // Offline: one machine adds B → C, the other C → A. Together: A → B → C → A.
    nodes[0].project.dep_add(&b, &c).unwrap();
    nodes[1].project.dep_add(&c, &a).unwrap();
    sync_all(&mut nodes);
    assert_eq!(nodes[0].export(), nodes[1].export());
    let conn = nodes[0].project.store.conn();
    let edges: i64 = conn
        .query_row("SELECT count(*) FROM issue_dependencies", [], |r| r.get(0))
        .unwrap();
    assert_eq!(edges, 2, "one edge of the cycle is left out");
    let c0 = conflicts_json(&nodes[0], false);
    let dropped = field_conflicts(&nodes[0], "dependency");
    assert_eq!(dropped.len(), 1, "{c0}");
    assert_eq!(c0, conflicts_json(&nodes[1], false));
    // Removing another edge of the cycle brings the dropped one back.
    nodes[0].project.dep_rm(&a, &b).unwrap();
    sync_all(&mut nodes);
    let edges: i64 = nodes[1]
        .project
        .store
        .conn()
        .query_row("SELECT count(*) FROM issue_dependencies", [], |r| r.get(0))
        .unwrap();
    assert_eq!(edges, 2);
    assert!(conflicts_json(&nodes[1], false)
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["field"] != "dependency"));
    assert_eq!(nodes[0].export(), nodes[1].export());
}

/// Updates an issue on one replica (panics on failure: these tests build their histories).
fn edit(n: &mut Node, id: &str, f: impl FnOnce(&mut IssueFields)) {
    n.project.update(id, &fields(f), None).unwrap();
}

/// Pushes a node's Lamport clock ahead, so its next operation has the greater op id (the one
/// Automerge alone would keep).
fn tick(n: &mut Node, id: &str, times: usize) {
    for k in 0..times {
        edit(n, id, |f| f.description = Some(format!("edit {k}")));
    }
}

/// Unresolved conflicts of one field (`wf`, `title`, `dependency`, `id`, …).
fn field_conflicts(n: &Node, field: &str) -> Vec<Value> {
    conflicts_json(n, false)
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["field"] == field)
        .cloned()
        .collect()
}

/// Rule 5: a start that arrives after a concurrent close would be `closed → in_progress`, which
/// td forbids. Although the start has the greater op id, every replica keeps the close and
/// records the start as a conflict with the reason.
#[test]
fn a_transition_invalid_from_the_merged_state_is_not_materialized() {
    let mut nodes = mesh::project(2);
    let id = shared_issue(&mut nodes);
    nodes[1].project.close(&id, None, None, None).unwrap();
    tick(&mut nodes[0], &id, 5);
    nodes[0].project.start(&id, false, None, None).unwrap();
    sync_all(&mut nodes);
    assert_eq!(nodes[0].export(), nodes[1].export());
    for n in &nodes {
        let s = td_engine::query::issue_detail(n.project.store.conn(), &id)
            .unwrap()
            .to_json();
        assert_eq!(s["status"], "closed");
        assert_eq!(
            s["implementer_session"], "",
            "no stamp from the set-aside start"
        );
    }
    let c = field_conflicts(&nodes[1], "wf");
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0]["kept"]["value"]["status"], "closed");
    assert_eq!(c[0]["overwritten"]["value"]["status"], "in_progress");
    assert!(
        c[0]["reason"]
            .as_str()
            .unwrap()
            .contains("closed → in_progress"),
        "{c:?}"
    );
    assert_eq!(
        conflicts_json(&nodes[0], true),
        conflicts_json(&nodes[1], true)
    );
    // The session that lost is told; rebuilding from the log gives the same outcome.
    let w = nodes[0].project.conflict_warnings(&id).unwrap();
    assert_eq!(w.len(), 1, "{w:?}");
    let before = nodes[0].export();
    nodes[0].project.store.rebuild().unwrap();
    assert_eq!(nodes[0].export(), before);
}

/// Rule 5: an approval by a session that, concurrently on another machine, became the issue's
/// implementer is not materialized, even when it has the greater op id.
#[test]
fn an_approval_by_a_concurrent_implementer_is_not_materialized() {
    let mut nodes = mesh::project(2);
    let id = shared_issue(&mut nodes);
    // agent-0 implements and asks for review; both replicas see it.
    nodes[0].project.start(&id, false, None, None).unwrap();
    nodes[0]
        .project
        .log(Some(&id), "implemented the parser", "progress")
        .unwrap();
    nodes[0].project.review(&id, None, None).unwrap();
    sync_all(&mut nodes);
    // One agent session id used on both machines (TD_SESSION_ID=ses_… is taken verbatim).
    let as_agent = |n: &Node| {
        let ctx = td_engine::SessionContext {
            explicit: Some("ses_agent_one".into()),
            ..Default::default()
        };
        td_engine::Project::open(&n.root, n.identity.clone(), &ctx).unwrap()
    };
    // On machine 1, the agent sends it back, takes it over and asks for review itself.
    {
        let mut p = as_agent(&nodes[1]);
        p.reject(&id, Some("needs tests"), None).unwrap();
        p.start(&id, false, None, None).unwrap();
        p.log(Some(&id), "added tests", "progress").unwrap();
        p.review(&id, None, None).unwrap();
    }
    // Concurrently on machine 0, the same agent approves the original (valid there: agent-0
    // implemented it), with the greater op id.
    tick(&mut nodes[0], &id, 12);
    as_agent(&nodes[0])
        .approve(&id, &Default::default(), None)
        .expect("the agent did not implement it on machine 0");
    sync_all(&mut nodes);
    assert_eq!(nodes[0].export(), nodes[1].export());
    for n in &nodes {
        let s = td_engine::query::issue_detail(n.project.store.conn(), &id)
            .unwrap()
            .to_json();
        assert_eq!(
            s["status"],
            "in_review",
            "the approval is not materialized: {}",
            conflicts_json(n, true)
        );
        assert_eq!(s["implementer_session"], "ses_agent_one");
    }
    let c = field_conflicts(&nodes[0], "wf");
    let approval = c
        .iter()
        .find(|x| x["overwritten"]["value"]["status"] == "closed")
        .unwrap_or_else(|| panic!("approval conflict listed: {c:?}"));
    assert!(
        approval["reason"]
            .as_str()
            .unwrap()
            .contains("approval by session ses_agent_one"),
        "{approval}"
    );
    assert_eq!(
        conflicts_json(&nodes[0], true),
        conflicts_json(&nodes[1], true)
    );
}

/// Creates an issue with a chosen id, as if two machines had drawn the same random id.
fn create_with_id(n: &mut Node, id: &str, title: &str) {
    use td_engine::doc::{self, Field};
    let session = n.project.session.id.clone();
    n.project
        .store
        .write(&session, |tx| {
            tx.change(id, |d| {
                doc::put_str(d, "title", title)?;
                doc::put_str(d, "type", "task")?;
                doc::put_str(d, "priority", "P2")?;
                doc::put_str(d, "created_at", "2026-11-22 10:00:00.000000+00:00")?;
                doc::put_str(d, "updated_at", "2026-11-22 10:00:00.000000+00:00")?;
                doc::put_str(d, "creator_session", &session)?;
                let mut wf = std::collections::BTreeMap::new();
                wf.insert("status".to_string(), Field::Str("open".into()));
                doc::put_workflow(d, &wf)?;
                doc::put_text(d, "description", "")?;
                doc::put_text(d, "acceptance", "")
            })
        })
        .unwrap();
}

fn title_of(n: &Node, id: &str) -> String {
    td_engine::query::issue_detail(n.project.store.conn(), id)
        .unwrap()
        .to_json()["title"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Rule 8: two machines create different issues with the same id. After syncing, both issues
/// exist on every replica: the one with the smaller root change keeps the id, the other is
/// renamed the same way everywhere; logs, comments and children written on each machine follow
/// their own issue; the rename is listed as a conflict; rebuilds, late joiners, later edits and
/// acknowledging it all agree.
#[test]
fn an_id_clash_keeps_both_entities_and_renames_one_deterministically() {
    let mut nodes = mesh::project(3);
    let id = "td-c1a5e0";
    create_with_id(&mut nodes[0], id, "Created on machine A");
    create_with_id(&mut nodes[1], id, "Created on machine B");
    for (i, who) in ["A", "B"].iter().enumerate() {
        let n = &mut nodes[i];
        n.project
            .log(Some(id), &format!("progress on {who}'s issue"), "progress")
            .unwrap();
        n.project
            .comment(id, &format!("comment on {who}'s issue"))
            .unwrap();
        let child = n
            .project
            .create(
                &fields(|f| {
                    f.title = Some(format!("Child of {who}'s issue"));
                    f.parent = Some(id.to_string());
                }),
                &[],
                &[],
            )
            .unwrap()
            .id;
        assert!(!child.is_empty());
    }
    // A and B meet; C joins later through A only.
    {
        let (a, b) = mesh::pair(&mut nodes, 0, 1);
        clean_round(&mut a.project.store, &mut b.project.store);
    }
    assert_eq!(nodes[0].export(), nodes[1].export(), "A and B agree");
    let lineages = td_engine::lineage::of_doc(nodes[0].project.store.conn(), id).unwrap();
    assert_eq!(lineages.len(), 2);
    let renamed = lineages[1].entity.clone();
    assert_eq!(
        renamed,
        td_engine::lineage::renamed_id(id, &lineages[1].root)
    );
    // The same ranking and ids on both replicas (storage keys are local).
    let ranking = |n: &Node| -> Vec<(Vec<u8>, String, Vec<u8>)> {
        td_engine::lineage::of_doc(n.project.store.conn(), id)
            .unwrap()
            .into_iter()
            .map(|l| (l.root, l.entity, l.author))
            .collect()
    };
    assert_eq!(ranking(&nodes[0]), ranking(&nodes[1]));
    // Each machine's issue, log, comment and child stay together.
    let machine_a = nodes[0].identity.public_key().to_vec();
    let (a_id, b_id) = if lineages[0].author == machine_a {
        (id.to_string(), renamed.clone())
    } else {
        (renamed.clone(), id.to_string())
    };
    for n in &nodes[..2] {
        assert_eq!(title_of(n, &a_id), "Created on machine A");
        assert_eq!(title_of(n, &b_id), "Created on machine B");
        for (issue, who) in [(&a_id, "A"), (&b_id, "B")] {
            let d = td_engine::query::issue_detail(n.project.store.conn(), issue)
                .unwrap()
                .to_json();
            assert_eq!(
                d["logs"][0]["message"],
                format!("progress on {who}'s issue"),
                "{d}"
            );
            assert_eq!(
                d["comments"][0]["text"],
                format!("comment on {who}'s issue")
            );
            let children = d["children"].as_array().unwrap();
            assert_eq!(children.len(), 1, "{d}");
            assert_eq!(
                title_of(n, children[0].as_str().unwrap()),
                format!("Child of {who}'s issue")
            );
        }
        let d = td_engine::query::issue_detail(n.project.store.conn(), &renamed)
            .unwrap()
            .to_json();
        assert_eq!(d["renamed_from"], id);
    }
    // The rename is reported, identically.
    let clash = field_conflicts(&nodes[0], "id");
    assert_eq!(clash.len(), 1, "{clash:?}");
    assert_eq!(clash[0]["entity"], renamed.as_str());
    assert_eq!(clash[0]["kept"]["value"], id);
    assert_eq!(clash[0]["overwritten"]["value"], renamed.as_str());
    assert_eq!(
        conflicts_json(&nodes[0], true),
        conflicts_json(&nodes[1], true)
    );

    // The real binary shows the rename: `td sync conflicts` and `td show --json`.
    let config = tempfile::tempdir().unwrap();
    let td = |args: &[&str]| {
        let out = std::process::Command::new(td_tests::td_bin())
            .arg("-w")
            .arg(&nodes[0].root)
            .args(args)
            .env("XDG_CONFIG_HOME", config.path())
            .env_remove("TD_WORK_DIR")
            .env_remove("TD_SESSION_ID")
            .output()
            .unwrap();
        assert!(out.status.success(), "td {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let listed = td(&["sync", "conflicts"]);
    assert!(listed.contains(&renamed) && listed.contains(id), "{listed}");
    let shown: Value = serde_json::from_str(&td(&["show", &renamed, "--json"])).unwrap();
    assert_eq!(shown["renamed_from"], id);
    assert_eq!(shown["id"], renamed.as_str());

    // Rebuilding from the log, and a late joiner, give the same tables.
    let reference = nodes[0].export();
    nodes[1].project.store.rebuild().unwrap();
    assert_eq!(nodes[1].export(), reference, "rebuild");
    {
        let (a, c) = mesh::pair(&mut nodes, 0, 2);
        clean_round(&mut a.project.store, &mut c.project.store);
    }
    assert_eq!(nodes[2].export(), reference, "late joiner");
    assert_eq!(
        conflicts_json(&nodes[2], true),
        conflicts_json(&nodes[0], true)
    );

    // The machine whose issue was renamed now logs on the id it sees: the kept issue. That
    // reference means the kept issue everywhere (it is pinned to its lineage when written),
    // not the writer's own renamed one.
    let renamed_machine = if lineages[1].author == machine_a {
        0
    } else {
        1
    };
    nodes[renamed_machine]
        .project
        .log(Some(id), "a note on the kept issue", "progress")
        .unwrap();
    // Later edits to either issue go to the right one everywhere; acknowledging settles it.
    edit(&mut nodes[1], &renamed, |f| {
        f.title = Some("Renamed issue, edited".into())
    });
    edit(&mut nodes[2], id, |f| {
        f.title = Some("Kept issue, edited".into())
    });
    let cid = clash[0]["id"].as_str().unwrap().to_string();
    nodes[2]
        .project
        .resolve_conflict(&cid, &td_engine::conflicts::Resolution::Kept)
        .unwrap();
    sync_all(&mut nodes);
    for n in &nodes {
        assert_eq!(title_of(n, &renamed), "Renamed issue, edited");
        assert_eq!(title_of(n, id), "Kept issue, edited");
        let kept = td_engine::query::issue_detail(n.project.store.conn(), id)
            .unwrap()
            .to_json();
        assert!(
            kept["logs"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["message"] == "a note on the kept issue" && l["issue_id"] == id),
            "{kept}"
        );
    }
    assert_eq!(nodes[0].export(), nodes[1].export());
    assert_eq!(nodes[0].export(), nodes[2].export());
    assert!(
        conflicts_json(&nodes[0], false)
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["field"] != "id"),
        "acknowledged everywhere"
    );
}

/// Rule 8 is order independent: three machines create the same id (each with a log on its own
/// issue); delivered to a fresh replica in all six orders, including those where the issue that
/// keeps the id arrives last and the others have to move, the tables and conflicts are equal.
#[test]
fn an_id_clash_gives_one_result_in_every_delivery_order() {
    let mut nodes = mesh::project(3);
    let base = snapshot(&nodes[0]);
    let before = held(&nodes[0]);
    let id = "td-0c1a54";
    for (i, n) in nodes.iter_mut().enumerate() {
        create_with_id(n, id, &format!("Created on machine {i}"));
        n.project
            .log(Some(id), &format!("log of machine {i}"), "progress")
            .unwrap();
    }
    let runs = one_run_per_writer(&nodes, &before);
    let results = all_six_orders(&base, &runs, |store| {
        let export = td_engine::export::export_json_string(store.conn()).unwrap();
        let v: Value = serde_json::from_str(&export).unwrap();
        let issues = v["tables"]["issues"].as_array().unwrap();
        assert_eq!(issues.len(), 3, "three issues kept: {export}");
        // Each log sits on the issue of the machine that wrote it.
        for log in v["tables"]["logs"].as_array().unwrap() {
            let machine = log["message"]
                .as_str()
                .unwrap()
                .trim_start_matches("log of ");
            let issue = issues.iter().find(|i| i["id"] == log["issue_id"]).unwrap();
            assert_eq!(issue["title"], format!("Created on {machine}"));
        }
        let c = conflicts::list(store.conn(), true, None, None).unwrap();
        assert_eq!(c.iter().filter(|x| x.field == "id").count(), 2);
        format!(
            "{export}{}",
            serde_json::to_string(&c.iter().map(|x| x.to_json()).collect::<Vec<_>>()).unwrap()
        )
    });
    assert_eq!(results.len(), 1, "all six orders give one result");
}

/// Two replicas each add the first child row (a label, a linked file, a dependency) to the
/// same issue while apart: both create the container map, Automerge keeps one of the two
/// maps as the key's value, and every row in the other must still count.
#[test]
fn concurrent_first_rows_of_a_child_map_are_all_kept() {
    let mut nodes = mesh::project(2);
    let id = shared_issue(&mut nodes);
    let a_dep = create(&mut nodes[0], "Dependency made on A");
    let b_dep = create(&mut nodes[1], "Dependency made on B");
    sync_all(&mut nodes);
    for (n, (label, path, dep)) in [
        ("from-a", "src/a.rs", &a_dep),
        ("from-b", "src/b.rs", &b_dep),
    ]
    .into_iter()
    .enumerate()
    {
        edit(&mut nodes[n], &id, |f| f.labels = Some(vec![label.into()]));
        let link = td_engine::ops::files::FileLink {
            path: path.into(),
            sha: String::new(),
        };
        nodes[n]
            .project
            .link_files(&id, &[link], "implementation")
            .unwrap();
        nodes[n].project.dep_add(&id, dep).unwrap();
    }
    sync_all(&mut nodes);
    assert_eq!(nodes[0].export(), nodes[1].export());
    let s = td_engine::query::issue_detail(nodes[0].project.store.conn(), &id)
        .unwrap()
        .to_json();
    let mut labels: Vec<String> = serde_json::from_value(s["labels"].clone()).unwrap();
    labels.sort();
    assert_eq!(labels, ["from-a", "from-b"], "both labels kept: {s}");
    let files = td_engine::ops::files::files_of(nodes[0].project.store.conn(), &id).unwrap();
    assert_eq!(files.len(), 2, "both linked files kept: {files:?}");
    let mut deps = td_engine::query::dependencies_of(nodes[0].project.store.conn(), &id).unwrap();
    deps.sort();
    let mut want = vec![a_dep.clone(), b_dep.clone()];
    want.sort();
    assert_eq!(deps, want, "both dependencies kept");
    // A later removal on either side removes the row whichever map holds it.
    edit(&mut nodes[1], &id, |f| f.labels = Some(vec![]));
    nodes[1]
        .project
        .unlink_files(&id, &["src/a.rs".into(), "src/b.rs".into()])
        .unwrap();
    sync_all(&mut nodes);
    assert_eq!(nodes[0].export(), nodes[1].export());
    let s = td_engine::query::issue_detail(nodes[0].project.store.conn(), &id)
        .unwrap()
        .to_json();
    assert!(s.get("labels").is_none(), "no labels left: {s}");
    assert!(
        td_engine::ops::files::files_of(nodes[0].project.store.conn(), &id)
            .unwrap()
            .is_empty()
    );
}
