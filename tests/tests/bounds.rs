//! One record can never stop sync (issue 17, point 4): a change larger than
//! `MAX_CHANGE_BYTES` is refused where it is written (nothing written) and where it arrives;
//! long texts within the bound sync as usual.

use td_engine::record::MAX_CHANGE_BYTES;
use td_engine::sync::SyncStore;
use td_tests::Replica;

#[test]
fn oversized_changes_are_refused_at_write_and_at_receive() {
    let a = Replica::init();
    a.create("Before", &[]);
    let before = a.export();
    // Larger than a command line can carry: written through the engine, as an import would.
    let huge = "x".repeat(MAX_CHANGE_BYTES + 1);
    let ctx = td_engine::SessionContext {
        explicit: Some("importer".into()),
        ..Default::default()
    };
    let mut p = td_engine::Project::open(&a.root, a.identity(), &ctx).unwrap();
    let fields = td_engine::ops::issues::IssueFields {
        title: Some("Too big".into()),
        description: Some(huge),
        ..Default::default()
    };
    let err = p.create(&fields, &[], &[]).unwrap_err();
    assert_eq!(err.code(), "invalid_input");
    assert!(
        err.to_string()
            .contains("more than the 992 KiB a td text field may hold"),
        "{err}"
    );
    drop(p);
    assert_eq!(a.export(), before, "nothing written");
    // 50,000 characters of multi-byte text (100 KB), edited again: fine, and it syncs.
    let long = "é".repeat(50_000);
    let id = a.create("Long description", &["-d", &long]);
    a.json(&["update", &id, "-d", &format!("{long} and more")]);
    let b = Replica::init();
    let sa = a.serve();
    a.befriend(&b, "a", &sa.addr);
    b.ok(&["peer", "sync", "a"]);
    a.create("Written after the refusal", &[]);
    b.ok(&["peer", "sync", "a"]);
    assert_eq!(a.export(), b.export());
    assert!(b.export().contains("Written after the refusal"));
    sa.stop();

    // A peer that sends one anyway is refused with the reason, before anything is parsed.
    let mut run = td_tests::signed_run(
        &a.identity(),
        &b.store().project_id().unwrap(),
        "td-b16b16",
        None,
        &format!("ses_{}_x", a.identity().fingerprint()),
    );
    run.changes[0].1 = vec![0u8; MAX_CHANGE_BYTES + 1];
    let report = b.store().apply(&[run]).unwrap();
    assert!(
        report.rejected.iter().any(|r| r.contains("more than the")),
        "{report:?}"
    );
    assert!(!b.export().contains("td-b16b16"));
}
