//! Fuzzing, as property tests over arbitrary bytes (they run under `cargo test`, bounded; more
//! cases with `TD_FUZZ_CASES=<n>`): what a peer or a hub sends goes into a real store through
//! the sans-IO sync session and the hub apply path. Inputs are honest traffic with bytes
//! flipped, cut or spliced in, and plain junk. Whatever arrives, nothing panics, the database
//! stays valid (SQLite's integrity check), and the next honest sync converges: hostile input
//! never wedges later work.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use td_engine::ops::issues::IssueFields;
use td_engine::sync::session::SyncSession;
use td_engine::sync::wire::FrameDecoder;
use td_engine::{MachineIdentity, Store};
use td_tests::fuzz_checks::{hub_rows_case, mangle as mangle_items, Mangle};
use td_tests::{inproc, mesh};

/// A runner of [`cases`] cases (no regression file: a finding is replayed from the failure
/// message, which holds the input).
fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    })
}

fn cases() -> u32 {
    std::env::var("TD_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// A receiver (node 0) and a sender (node 1) of one project; the sender holds work the
/// receiver lacks. Returns them with the frames the sender sends in an honest round.
struct Setup {
    nodes: Vec<mesh::Node>,
    /// The receiver's database before the round (copied per case).
    template: PathBuf,
    _dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let mut nodes = mesh::project(2);
    for i in 0..12 {
        let f = IssueFields {
            title: Some(format!("Sender's issue {i} \u{1b}[2J with ünïcode")),
            labels: Some(vec!["fuzz".into()]),
            ..Default::default()
        };
        let issue = nodes[1].project.create(&f, &[], &[]).unwrap();
        nodes[1].project.comment(&issue.id, "A comment").unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("receiver.db");
    nodes[0].project.store.snapshot_to(&template).unwrap();
    Setup {
        nodes,
        template,
        _dir: dir,
    }
}

/// A copy of the receiver's database as a store of its own (the receiver's machine key).
fn receiver(s: &Setup, dir: &Path) -> Store {
    receiver_at(&s.template, &s.nodes[0].identity, dir)
}

fn receiver_at(template: &Path, identity: &MachineIdentity, dir: &Path) -> Store {
    let root = dir.to_path_buf();
    std::fs::create_dir_all(root.join(".todos")).unwrap();
    std::fs::copy(template, root.join(".todos").join("issues.db")).unwrap();
    Store::open(&root, identity.clone()).unwrap()
}

fn integrity(store: &Store) {
    let ok: String = store
        .conn()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
}

/// The payloads the sender sends in an honest round against the receiver's template.
fn honest_frames(s: &mut Setup) -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let mut r = receiver(s, dir.path());
    let peer = s.nodes[0].identity.public_key();
    let mut rs = SyncSession::with_peer(&mut r, s.nodes[1].identity.public_key());
    let mut ss = SyncSession::with_peer(&mut s.nodes[1].project.store, peer);
    let mut dec = FrameDecoder::default();
    let mut to_r = dec.push(&ss.start().unwrap().concat()).unwrap();
    let mut to_s = dec.push(&rs.start().unwrap().concat()).unwrap();
    let mut sent = Vec::new();
    for _ in 0..1000 {
        if rs.is_finished() && ss.is_finished() {
            break;
        }
        for f in std::mem::take(&mut to_r) {
            sent.push(f.clone());
            to_s.extend(dec.push(&rs.receive(&f).unwrap().concat()).unwrap());
        }
        for f in std::mem::take(&mut to_s) {
            to_r.extend(dec.push(&ss.receive(&f).unwrap().concat()).unwrap());
        }
    }
    assert!(sent.len() >= 2, "a Hello and at least one batch");
    sent
}

/// How a case mangles honest input (the fuzz targets' [`Mangle`]), drawn with proptest's
/// shrinking.
fn mangle() -> impl Strategy<Value = Mangle> {
    prop_oneof![
        (
            any::<u16>(),
            prop::collection::vec((any::<u16>(), 1u8..), 1..8)
        )
            .prop_map(|(item, at)| Mangle::Flip { item, at }),
        (any::<u16>(), any::<u16>()).prop_map(|(item, keep)| Mangle::Cut { item, keep }),
        (any::<u16>(), prop::collection::vec(any::<u8>(), 0..600))
            .prop_map(|(item, junk)| Mangle::Splice { item, junk }),
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..400), 1..6)
            .prop_map(Mangle::Junk),
    ]
}

#[test]
fn hostile_frames_into_a_sync_session_never_wedge_a_store() {
    let mut s = setup();
    let honest = honest_frames(&mut s);
    let want = s.nodes[1].export();
    let sender = s.nodes[1].identity.public_key();
    let (template, me) = (s.template.clone(), s.nodes[0].identity.clone());
    let store = std::cell::RefCell::new(&mut s.nodes[1].project.store);
    let mut runner = runner();
    let executions = std::cell::Cell::new(0u64);
    runner
        .run(&mangle(), |m| {
            executions.set(executions.get() + 1);
            let dir = tempfile::tempdir().unwrap();
            let mut r = receiver_at(&template, &me, dir.path());
            {
                let mut session = SyncSession::with_peer(&mut r, sender);
                session.start().unwrap();
                for f in mangle_items(&honest, m) {
                    if session.receive(&f).is_err() {
                        break; // the round ends; the store must still be sound
                    }
                }
            }
            integrity(&r);
            // The next honest round converges.
            inproc::clean_round(&mut r, &mut store.borrow_mut());
            let got = td_engine::export::export_json_string(r.conn()).unwrap();
            prop_assert_eq!(got, want.clone());
            Ok(())
        })
        .unwrap();
    eprintln!("fuzz: {} hostile sync sessions run", executions.get());
}

/// A hostile hub's rows (`td_tests::fuzz_checks::hub_rows_case`: refused or held, never an
/// error; the store sound; the honest rows pulled afterwards converge), drawn with proptest.
#[test]
fn hostile_hub_rows_never_wedge_a_store() {
    let strategy = (mangle(), any::<bool>(), any::<u16>());
    let mut runner = runner();
    let executions = std::cell::Cell::new(0u64);
    runner
        .run(&strategy, |(m, sigs, split)| {
            executions.set(executions.get() + 1);
            hub_rows_case(m, sigs, split);
            Ok(())
        })
        .unwrap();
    eprintln!("fuzz: {} hostile hub pages applied", executions.get());
}
