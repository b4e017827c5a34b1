//! Property test on the sans-IO sync core: random operations on N replicas, random sync pairs
//! with random frame loss, duplication and reordering; once every pair has synced cleanly, all
//! exports are byte-identical.

use proptest::prelude::*;
use td_engine::ops::issues::IssueFields;
use td_tests::inproc;
use td_tests::mesh;

#[derive(Debug, Clone)]
enum Step {
    Create(usize, String),
    Update(usize, usize, u8, Vec<String>),
    Append(usize, usize, String),
    Start(usize, usize),
    Comment(usize, usize, String),
    Delete(usize, usize),
    Dep(usize, usize, usize),
    Sync(usize, usize, Vec<u8>),
}

const N: usize = 3;

fn step() -> impl Strategy<Value = Step> {
    let r = 0..N;
    let i = 0usize..8;
    prop_oneof![
        3 => (r.clone(), "[a-z]{3,12}").prop_map(|(r, t)| Step::Create(r, format!("Issue {t}"))),
        2 => (r.clone(), i.clone(), 0u8..5, prop::collection::vec("[a-d]", 0..3)).prop_map(|(r, i, p, l)| Step::Update(r, i, p, l)),
        1 => (r.clone(), i.clone(), "[a-z ]{1,10}").prop_map(|(r, i, t)| Step::Append(r, i, t)),
        1 => (r.clone(), i.clone()).prop_map(|(r, i)| Step::Start(r, i)),
        1 => (r.clone(), i.clone(), "[a-z]{1,10}").prop_map(|(r, i, t)| Step::Comment(r, i, t)),
        1 => (r.clone(), i.clone()).prop_map(|(r, i)| Step::Delete(r, i)),
        1 => (r.clone(), i.clone(), i.clone()).prop_map(|(r, a, b)| Step::Dep(r, a, b)),
        3 => (r.clone(), r, prop::collection::vec(0u8..10, 0..40)).prop_map(|(a, b, f)| Step::Sync(a, b, f)),
    ]
}

fn ids(node: &mesh::Node) -> Vec<String> {
    let f = td_engine::query::ListFilter {
        all: true,
        sort: td_engine::query::SortKey::Id,
        ..Default::default()
    };
    td_engine::query::list_issues(node.project.store.conn(), &f)
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect()
}

fn run(steps: Vec<Step>) {
    let mut nodes = mesh::project(N);
    for s in steps {
        match s {
            Step::Create(r, t) => {
                let f = IssueFields {
                    title: Some(t),
                    ..Default::default()
                };
                nodes[r].project.create(&f, &[], &[]).unwrap();
            }
            Step::Update(r, i, p, labels) => {
                if let Some(id) = ids(&nodes[r]).get(i) {
                    let f = IssueFields {
                        priority: Some(format!("P{p}")),
                        labels: Some(labels),
                        ..Default::default()
                    };
                    let _ = nodes[r].project.update(id, &f, None);
                }
            }
            Step::Append(r, i, t) => {
                if let Some(id) = ids(&nodes[r]).get(i) {
                    let f = IssueFields {
                        append: Some(t),
                        ..Default::default()
                    };
                    let _ = nodes[r].project.update(id, &f, None);
                }
            }
            Step::Start(r, i) => {
                if let Some(id) = ids(&nodes[r]).get(i) {
                    let _ = nodes[r].project.start(id, true, None, None);
                }
            }
            Step::Comment(r, i, t) => {
                if let Some(id) = ids(&nodes[r]).get(i) {
                    let _ = nodes[r].project.comment(id, &t);
                }
            }
            Step::Delete(r, i) => {
                if let Some(id) = ids(&nodes[r]).get(i) {
                    let _ = nodes[r].project.delete(id, None);
                }
            }
            Step::Dep(r, a, b) => {
                let list = ids(&nodes[r]);
                if let (Some(a), Some(b)) = (list.get(a), list.get(b)) {
                    let _ = nodes[r].project.dep_add(a, b);
                }
            }
            Step::Sync(a, b, faults) => {
                if a == b {
                    continue;
                }
                let (x, y) = mesh::pair(&mut nodes, a, b);
                let fate = inproc::fates(faults);
                // A faulty round may stall or fail; it must never corrupt either side.
                let _ = inproc::round(&mut x.project.store, &mut y.project.store, fate);
            }
        }
    }
    // Every pair syncs cleanly (twice around the ring is enough for N replicas).
    for _ in 0..2 {
        for a in 0..N {
            for b in 0..N {
                if a != b {
                    let (x, y) = mesh::pair(&mut nodes, a, b);
                    inproc::clean_round(&mut x.project.store, &mut y.project.store);
                    // One clean round is enough for the pair to hold the same changes.
                    assert_eq!(
                        x.export(),
                        y.export(),
                        "one clean round left {a} and {b} apart"
                    );
                }
            }
        }
    }
    let first = nodes[0].export();
    for n in &nodes[1..] {
        assert_eq!(n.export(), first, "replicas diverged");
    }
    // And nothing is left pending: a further round moves nothing.
    let (x, y) = mesh::pair(&mut nodes, 0, 1);
    let (sa, sb) = inproc::clean_round(&mut x.project.store, &mut y.project.store);
    assert_eq!((sa.sent, sb.sent), (0, 0));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn replicas_converge_under_faults(steps in prop::collection::vec(step(), 1..50)) {
        run(steps);
    }
}

#[test]
fn sync_sends_only_what_is_missing() {
    let mut nodes = mesh::project(2);
    for i in 0..200 {
        let f = IssueFields {
            title: Some(format!("Bulk issue {i}")),
            ..Default::default()
        };
        nodes[0].project.create(&f, &[], &[]).unwrap();
    }
    let (a, b) = mesh::pair(&mut nodes, 0, 1);
    let (sa, _) = inproc::clean_round(&mut a.project.store, &mut b.project.store);
    assert_eq!(sa.sent, 200);
    let f = IssueFields {
        title: Some("One more issue".into()),
        ..Default::default()
    };
    a.project.create(&f, &[], &[]).unwrap();
    let (sa, sb) = inproc::clean_round(&mut a.project.store, &mut b.project.store);
    assert_eq!(sa.sent, 1, "only the new change");
    assert_eq!(sb.sent, 0);
    assert!(
        sa.bytes_out + sb.bytes_out < 4096,
        "incremental round moved {} bytes",
        sa.bytes_out + sb.bytes_out
    );
    assert_eq!(a.export(), b.export());
}
