//! Killing `td peer sync` in the middle of a large round loses nothing and duplicates nothing:
//! the next round finishes the job.

use std::time::Duration;

use td_tests::Replica;

#[test]
fn killed_client_resumes_without_loss_or_duplicates() {
    let a = Replica::init();
    a.create("Seed before the bulk history", &[]);
    td_tests::bulk_issues(&a, 3000, 2);
    let b = Replica::init();
    let sa = a.serve();
    a.befriend(&b, "a", &sa.addr);
    let mut killed_mid_round = 0;
    for delay_ms in [150u64, 400, 900, 1500] {
        let mut child = b.command(None, &["peer", "sync", "a"]).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            killed_mid_round += 1;
        }
        let _ = child.kill();
        let _ = child.wait();
        // Whatever was committed is intact and consistent.
        let stats = td_engine::export::log_stats(b.store().conn()).unwrap();
        assert_eq!(stats.duplicate_actor_seqs, 0);
    }
    assert!(
        killed_mid_round > 0,
        "the round was too fast to interrupt; enlarge the history"
    );
    let v = b.json(&["peer", "sync", "a"]);
    assert!(v[0]["error"].is_null(), "{v}");
    assert_eq!(a.export(), b.export());
    let (sa_stats, sb_stats) = (
        td_engine::export::log_stats(a.store().conn()).unwrap(),
        td_engine::export::log_stats(b.store().conn()).unwrap(),
    );
    assert_eq!(
        sa_stats.changes, sb_stats.changes,
        "every change exactly once"
    );
    assert_eq!(sb_stats.duplicate_actor_seqs, 0);
    let again = b.json(&["peer", "sync", "a"]);
    assert_eq!(
        (again[0]["sent"].as_u64(), again[0]["received"].as_u64()),
        (Some(0), Some(0))
    );
    sa.stop();
}
