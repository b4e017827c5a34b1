//! The review policy against td's parity matrix (role × prior involvement × review state ×
//! mode × minor), written from td v0.62's facts (`cmd/parity_surface_test.go`,
//! `internal/reviewpolicy`), plus the same rules driven through the real `td` binary.

use td_engine::model::Status;
use td_engine::review_policy::{self, Attestation, Facts, Mode};
use td_tests::Replica;

use Mode::{Balanced as B, Delegated as D, Strict as S, Trusted as T};

/// Who the acting session is, relative to an issue created by `creator` and implemented by
/// `impl` (the matrix's sessions).
#[derive(Clone, Copy)]
enum Who {
    /// The current implementer (started it, so it has implementation history).
    Implementer,
    /// Started it once, but another session implements it now.
    PrevImplementer,
    /// Created it; never started it.
    Creator,
    /// Created it, with no history row saying so (a database from before history was kept).
    CreatorUnrecorded,
    /// Created it and implements it.
    CreatorImplementer,
    /// Reviewed it before (history without implementation).
    PrevReviewer,
    /// No history with it at all.
    Fresh,
}

struct Row {
    mode: Mode,
    status: Status,
    minor: bool,
    who: Who,
    /// Someone (not necessarily the actor) started the issue at some point.
    issue_implemented: bool,
    /// The issue has an implementer at all.
    has_implementer: bool,
    active_approval: bool,
    reviewer: bool,
    close: bool,
    creator_exception: bool,
}

fn facts(r: &Row) -> Facts {
    let (is_impl, is_creator, implemented, involved) = match r.who {
        Who::Implementer => (true, false, true, true),
        Who::PrevImplementer => (false, false, true, true),
        Who::Creator => (false, true, false, true),
        Who::CreatorUnrecorded => (false, true, false, false),
        Who::CreatorImplementer => (true, true, true, true),
        Who::PrevReviewer => (false, false, false, true),
        Who::Fresh => (false, false, false, false),
    };
    Facts {
        issue_id: "td-parity".into(),
        status: Some(r.status),
        minor: r.minor,
        implementer: if r.has_implementer {
            "ses-impl".into()
        } else {
            String::new()
        },
        is_implementer: is_impl,
        is_creator,
        implemented,
        involved,
        issue_implemented: r.issue_implemented || implemented,
        active_approval: r.active_approval,
    }
}

/// A row: mode, status, minor, who, then the expected reviewer / close / creator-exception.
#[allow(clippy::too_many_arguments)]
fn row(
    mode: Mode,
    status: Status,
    minor: bool,
    who: Who,
    active_approval: bool,
    reviewer: bool,
    close: bool,
    creator_exception: bool,
) -> Row {
    Row {
        mode,
        status,
        minor,
        who,
        issue_implemented: false,
        has_implementer: true,
        active_approval,
        reviewer,
        close,
        creator_exception,
    }
}

fn matrix() -> Vec<Row> {
    use Status::{Blocked, InProgress, InReview as R, Open};
    use Who::*;
    let mut rows = vec![
        // Strict: any involvement blocks.
        row(S, R, false, Implementer, false, false, false, false),
        row(S, R, false, Creator, false, false, false, false),
        row(S, R, false, PrevReviewer, false, false, false, false),
        row(S, R, false, Fresh, false, true, true, false),
        row(S, R, true, CreatorImplementer, false, true, true, false),
        // Balanced: the creator exception.
        row(B, R, false, Implementer, false, false, false, false),
        row(B, R, false, PrevImplementer, false, false, false, false),
        row(B, R, false, Creator, false, true, false, true),
        row(B, R, false, CreatorImplementer, false, false, false, false),
        row(B, R, false, PrevReviewer, false, false, false, false),
        row(B, R, false, Fresh, false, true, true, false),
        row(B, R, true, CreatorImplementer, false, true, true, false),
        // The creator exception also holds on an open issue someone else implements (td's
        // close rule allows the creator bypass; its CLI close then vetoes it, tested below).
        row(B, Open, false, CreatorUnrecorded, false, true, true, true),
        // Delegated: implementation independence only; an approval lets anyone close.
        row(D, R, false, Implementer, false, false, false, false),
        row(D, R, false, PrevImplementer, false, false, false, false),
        row(D, R, false, Creator, false, true, true, false),
        row(D, R, false, Fresh, false, true, true, false),
        row(D, R, false, PrevReviewer, false, true, true, false),
        row(D, R, false, Creator, true, true, true, false),
        row(D, R, false, Implementer, true, false, true, false),
        row(D, R, false, Fresh, true, true, true, false),
        row(D, R, false, CreatorImplementer, true, false, true, false),
        row(D, R, true, CreatorImplementer, false, true, true, false),
        row(D, Open, false, Fresh, false, true, true, false),
        // Trusted: like delegated without an attestation.
        row(T, R, false, Implementer, false, false, false, false),
        row(T, R, false, PrevImplementer, false, false, false, false),
        row(T, R, false, Fresh, false, true, true, false),
        row(T, R, false, Creator, false, true, true, false),
        row(T, R, false, Fresh, true, true, true, false),
        row(T, R, false, Implementer, true, false, true, false),
        row(T, R, false, PrevReviewer, false, true, true, false),
        row(T, R, true, CreatorImplementer, false, true, true, false),
    ];
    for mode in [S, B, D] {
        // The creator-open bypass: an open issue nobody implemented.
        let mut bypass = row(
            mode,
            Open,
            false,
            CreatorUnrecorded,
            false,
            mode != S,
            true,
            false,
        );
        bypass.has_implementer = false;
        rows.push(bypass);
        // ...but not once the creator itself implemented it.
        rows.push(row(
            mode,
            Open,
            false,
            CreatorImplementer,
            false,
            false,
            false,
            false,
        ));
        rows.push(row(mode, R, true, Implementer, false, true, true, false));
        rows.push(row(mode, R, false, Fresh, false, true, true, false));
        rows.push(row(mode, R, true, Fresh, false, true, true, false));
        rows.push(row(
            mode,
            R,
            false,
            PrevReviewer,
            false,
            mode == D,
            mode == D,
            false,
        ));
        for status in [Open, InProgress, Blocked] {
            rows.push(row(mode, status, false, Fresh, false, true, true, false));
        }
    }
    rows
}

#[test]
fn every_mode_decides_as_tds_parity_matrix_says() {
    let rows = matrix();
    assert!(rows.len() >= 50, "the matrix has {} rows", rows.len());
    for (i, r) in rows.iter().enumerate() {
        let f = facts(r);
        let none = Attestation::default();
        let rev = review_policy::reviewer(r.mode, &f, &none);
        let close = review_policy::close(r.mode, &f, &none);
        let ctx = format!(
            "row {i}: {:?} {:?} minor={} {f:?}",
            r.mode, r.status, r.minor
        );
        assert_eq!(rev.allowed, r.reviewer, "reviewer, {ctx}");
        assert_eq!(close.allowed, r.close, "close, {ctx}");
        assert_eq!(
            rev.creator_exception, r.creator_exception,
            "exception, {ctx}"
        );
        // Every refusal says why, and the wording td's CLI prints is what approve gives.
        for d in [&rev, &close, &review_policy::approve(r.mode, &f, &none)] {
            assert_eq!(d.allowed, d.refusal.is_none(), "{ctx}: {d:?}");
        }
        assert_eq!(
            review_policy::approve(r.mode, &f, &none).allowed,
            r.reviewer,
            "approve, {ctx}"
        );
    }
}

#[test]
fn the_cli_close_vetoes_the_creator_bypass_once_anyone_implemented() {
    // td's CLI close: strict close rule in every mode, with the issue-wide veto.
    let mut r = row(
        S,
        Status::Open,
        false,
        Who::Creator,
        false,
        false,
        true,
        false,
    );
    r.issue_implemented = true;
    let f = facts(&r);
    for mode in [S, B, T] {
        let d = review_policy::admin_close(mode, &f, false);
        assert!(!d.allowed, "{mode}: {d:?}");
        assert!(
            d.refusal.unwrap().contains("has implementation history"),
            "{mode}"
        );
        assert!(review_policy::admin_close(mode, &f, true).allowed);
    }
    // Delegated asks for --admin/--self-close-exception up front.
    let d = review_policy::admin_close(D, &f, false);
    assert!(d
        .refusal
        .unwrap()
        .contains("delegated mode requires --admin"));
    // An uninvolved session closes an in-progress issue; the implementer does not.
    let fresh = facts(&row(
        S,
        Status::InProgress,
        false,
        Who::Fresh,
        false,
        true,
        true,
        false,
    ));
    assert!(review_policy::admin_close(T, &fresh, false).allowed);
    let own = facts(&row(
        S,
        Status::InProgress,
        false,
        Who::Implementer,
        false,
        false,
        false,
        false,
    ));
    let d = review_policy::admin_close(T, &own, false);
    assert_eq!(
        d.refusal.as_deref(),
        Some("cannot close own implementation: td-parity")
    );
    // In review: approve or reject, whatever the exception.
    let in_review = facts(&row(
        S,
        Status::InReview,
        false,
        Who::Fresh,
        false,
        true,
        true,
        false,
    ));
    assert!(!review_policy::admin_close(T, &in_review, true).allowed);
}

#[test]
fn trusted_mode_takes_an_attestation_and_the_others_do_not() {
    let f = facts(&row(
        T,
        Status::InReview,
        false,
        Who::Implementer,
        false,
        false,
        false,
        false,
    ));
    let by = Attestation {
        self_review: false,
        reviewed_by: Some("sub-agent reviewer".into()),
    };
    let me = Attestation {
        self_review: true,
        reviewed_by: None,
    };
    let d = review_policy::approve(T, &f, &by);
    assert!(d.allowed && d.self_review && !d.requires_reason);
    assert_eq!(d.attributed_to.as_deref(), Some("sub-agent reviewer"));
    let d = review_policy::approve(T, &f, &me);
    assert!(d.allowed && d.self_review && d.requires_reason);
    let d = review_policy::approve(T, &f, &Attestation::default());
    assert!(d.refusal.unwrap().contains("--reviewed-by"));
    for mode in [D, B, S] {
        for a in [&by, &me] {
            assert!(!review_policy::approve(mode, &f, a).allowed, "{mode}");
        }
    }
    // Trusted close of an in-review issue is the direct review-and-close path.
    assert!(review_policy::close(T, &f, &me).requires_reason);
    assert!(!review_policy::close(D, &f, &me).allowed);
}

#[test]
fn reviewable_lists_follow_the_mode() {
    use Who::*;
    let cases = [
        (Implementer, [true, false, false, false]),
        (PrevImplementer, [true, false, false, false]),
        (Creator, [true, true, true, false]),
        (PrevReviewer, [true, true, false, false]),
        (Fresh, [true, true, true, true]),
    ];
    for (who, want) in cases {
        for (mode, want) in [T, D, B, S].into_iter().zip(want) {
            let f = facts(&row(
                mode,
                Status::InReview,
                false,
                who,
                false,
                false,
                false,
                false,
            ));
            assert_eq!(review_policy::reviewable(mode, &f), want, "{mode}");
            let mut minor = f.clone();
            minor.minor = true;
            assert!(review_policy::reviewable(mode, &minor), "minor, {mode}");
            let mut open = f.clone();
            open.status = Some(Status::Open);
            assert!(!review_policy::reviewable(mode, &open), "open, {mode}");
        }
    }
    assert!(review_policy::ready_to_close(
        T,
        &Facts {
            status: Some(Status::InReview),
            active_approval: true,
            ..Facts::default()
        }
    ));
}

#[test]
fn modes_parse_as_td_spells_them() {
    for m in Mode::ALL {
        assert_eq!(m.as_str().parse::<Mode>().unwrap(), m);
    }
    assert_eq!(" Strict ".parse::<Mode>().unwrap(), S);
    assert!("".parse::<Mode>().is_err());
    let err = "laissez-faire".parse::<Mode>().unwrap_err().to_string();
    assert!(err.contains("strict|balanced|delegated|trusted"), "{err}");
    assert_eq!(Mode::default(), T);
}

/// The policy through the real binary: `td feature set`, approve, close, reviewable.
#[test]
fn the_binary_obeys_the_mode_set_with_td_feature() {
    let r = Replica::init();
    assert_eq!(
        r.json(&["feature", "get", "review_policy_mode"])["source"],
        "default"
    );
    let id = r.create("Policy-governed work", &[]);
    r.json(&["start", &id]);
    r.json(&["handoff", &id, "--done", "the work"]);
    r.json(&["review", &id]);
    // Trusted (the default): the implementer sees it as reviewable but must attest.
    let listed = r.json(&["reviewable"]);
    assert_eq!(listed["awaiting"][0]["id"], id.as_str());
    let out = r.run(&["approve", &id, "--json"]);
    assert_eq!(out.error_code(), "cannot_self_approve");
    assert!(out.stdout.contains("--reviewed-by"), "{}", out.stdout);
    // Delegated: not reviewable, and no attestation helps.
    r.json(&["feature", "set", "review_policy_mode", "delegated"]);
    assert_eq!(
        r.json(&["feature", "get", "review_policy_mode"])["value"],
        "delegated"
    );
    assert_eq!(
        r.json(&["reviewable"]),
        serde_json::json!({"awaiting": [], "ready_to_close": []})
    );
    let out = r.run(&["approve", &id, "--reviewed-by", "sub-agent", "--json"]);
    assert_eq!(out.error_code(), "cannot_self_approve");
    // Back to trusted: the attested approval lands, credited to the named reviewer.
    r.json(&["feature", "unset", "review_policy_mode"]);
    let approved = r.json(&["approve", &id, "--reviewed-by", "sub-agent"]);
    assert_eq!(approved["status"], "closed");
    let shown = r.json(&["show", &id]);
    assert_eq!(shown["reviews"][0]["reviewed_by"], "sub-agent");
    assert_eq!(shown["reviews"][0]["self_review"], true);
    // A bad value is refused and changes nothing.
    let out = r.run(&["feature", "set", "review_policy_mode", "lax", "--json"]);
    assert_eq!(out.error_code(), "invalid_input");
    assert_eq!(
        r.json(&["feature", "get", "review_policy_mode"])["value"],
        "trusted"
    );
    // The administrative close: own work needs a stated exception, which is logged.
    let own = r.create("Own work to close", &[]);
    r.json(&["start", &own]);
    let out = r.run(&["close", &own, "--json"]);
    assert_eq!(out.error_code(), "cannot_self_approve");
    assert!(out.stdout.contains("cannot close own implementation"));
    let closed = r.json(&[
        "close",
        &own,
        "--self-close-exception",
        "typo fix, trivially checked",
    ]);
    assert_eq!(closed["status"], "closed");
    let shown = r.json(&["show", &own]);
    let logs = shown["logs"].to_string();
    assert!(
        logs.contains("Closed (SELF-CLOSE EXCEPTION: typo fix, trivially checked)"),
        "{logs}"
    );
    // Strict: the creator of an issue another session implemented may not approve it.
    r.json(&["feature", "set", "review_policy_mode", "strict"]);
    let other = r.create("Implemented elsewhere", &[]);
    r.json_as("implementer", &["start", &other]);
    r.json_as("implementer", &["handoff", &other, "--done", "the work"]);
    r.json_as("implementer", &["review", &other]);
    let out = r.run(&["approve", &other, "--json"]);
    assert_eq!(out.error_code(), "cannot_self_approve");
    // Balanced lets the creator approve, with a reason.
    r.json(&["feature", "set", "review_policy_mode", "balanced"]);
    assert_eq!(
        r.run(&["approve", &other, "--json"]).error_code(),
        "invalid_input"
    );
    let approved = r.json(&["approve", &other, "--reason", "read the diff"]);
    assert_eq!(approved["status"], "closed");
}

/// td's close-after-review: a reviewer records an approval without closing (`--record-only`);
/// in trusted and delegated modes any session then closes it, and `td usage` lists it as ready
/// to close. Strict mode has no such path.
#[test]
fn a_recorded_approval_lets_any_session_close_in_trusted_mode() {
    let r = Replica::init();
    let id = r.create("Ship the exporter", &[]);
    r.json_as("impl", &["start", &id]);
    r.json_as("impl", &["handoff", &id, "--done", "exporter"]);
    r.json_as("impl", &["review", &id]);
    let rec = r.json_as(
        "reviewer",
        &["approve", &id, "--record-only", "-m", "read the diff"],
    );
    assert_eq!(rec["action"], "review_recorded");
    assert_eq!(rec["status"], "in_review");
    let shown = r.json(&["show", &id]);
    assert_eq!(shown["reviews"][0]["decision"], "approved");
    assert_eq!(shown["reviewer_session"], rec["issue"]["reviewer_session"]);
    let u = r.json_as("impl", &["usage"]);
    assert_eq!(u["ready_to_close"][0]["id"], id.as_str(), "{u}");
    assert_eq!(u["reviewable"], serde_json::json!([]));
    // td's two buckets: ready to close only with --include-approved.
    let q = r.json_as("impl", &["reviewable"]);
    assert_eq!(q["ready_to_close"], serde_json::json!([]));
    let q = r.json_as("impl", &["reviewable", "--include-approved"]);
    assert_eq!(q["ready_to_close"][0]["id"], id.as_str(), "{q}");
    assert_eq!(q["awaiting"], serde_json::json!([]));
    // The implementer closes on the recorded approval, without a review of its own.
    let closed = r.json_as("impl", &["approve", &id]);
    assert_eq!(closed["status"], "closed");
    assert_eq!(
        r.json(&["show", &id])["reviews"].as_array().unwrap().len(),
        1
    );

    // Strict: the recorded approval does not let the implementer close.
    r.json(&["feature", "set", "review_policy_mode", "strict"]);
    let other = r.create("Ship the importer", &[]);
    r.json_as("impl", &["start", &other]);
    r.json_as("impl", &["handoff", &other, "--done", "importer"]);
    r.json_as("impl", &["review", &other]);
    r.json_as("reviewer", &["approve", &other, "--record-only"]);
    assert_eq!(
        r.run_as("impl", &["approve", &other, "--json"])
            .error_code(),
        "cannot_self_approve"
    );
}

/// `approve --record-only --decision changes_requested` records a review asking for changes:
/// the issue stays in review, no approval is stamped, nothing becomes ready to close.
#[test]
fn a_recorded_changes_request_is_no_approval() {
    let r = Replica::init();
    let id = r.create("Tune the cache", &[]);
    r.json_as("impl", &["start", &id]);
    r.json_as("impl", &["handoff", &id, "--done", "cache"]);
    r.json_as("impl", &["review", &id]);
    let bad = r.run_as(
        "reviewer",
        &["approve", &id, "--decision", "changes_requested", "--json"],
    );
    assert!(bad.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("requires --record-only"));
    let rec = r.json_as(
        "reviewer",
        &[
            "approve",
            &id,
            "--record-only",
            "--decision",
            "changes_requested",
            "-m",
            "fix X",
        ],
    );
    assert_eq!(rec["status"], "in_review");
    let shown = r.json(&["show", &id]);
    assert_eq!(shown["reviews"][0]["decision"], "changes_requested");
    assert_eq!(shown["reviewer_session"], "");
    assert!(shown["logs"]
        .to_string()
        .contains("Review recorded (changes_requested): fix X"));
    let q = r.json_as("impl", &["reviewable", "--include-approved"]);
    assert_eq!(q["ready_to_close"], serde_json::json!([]));
    assert_eq!(
        r.run_as("impl", &["approve", &id, "--json"]).error_code(),
        "cannot_self_approve",
        "a changes request lets nobody close"
    );
}

/// td's AGENTS.md workflow with three agents (implementer, independent reviewer, and a
/// sub-agent the implementer names with `--reviewed-by`), under each review policy mode.
#[test]
fn the_agents_workflow_under_each_mode() {
    for mode in ["trusted", "delegated", "balanced", "strict"] {
        let r = Replica::init();
        r.json(&["feature", "set", "review_policy_mode", mode]);
        let work = |title: &str| {
            let id = r.json_as("lead", &["create", title])["id"]
                .as_str()
                .unwrap()
                .to_string();
            r.json_as("implementer", &["usage", "--new-session", "-q"]);
            r.json_as("implementer", &["start", &id]);
            r.json_as("implementer", &["log", "found the cause"]);
            r.json_as(
                "implementer",
                &["handoff", &id, "--done", "fixed", "--remaining", "none"],
            );
            r.json_as("implementer", &["review", &id]);
            id
        };
        // The implementer names the sub-agent that reviewed: only trusted mode accepts it.
        let a = work("Fix the login redirect");
        let out = r.run_as(
            "implementer",
            &["approve", &a, "--reviewed-by", "sub-agent", "--json"],
        );
        if mode == "trusted" {
            assert_eq!(out.json()["status"], "closed", "{mode}");
            assert_eq!(
                r.json(&["show", &a])["reviews"][0]["reviewed_by"],
                "sub-agent"
            );
        } else {
            assert_eq!(out.error_code(), "cannot_self_approve", "{mode}");
        }
        // An independent reviewer approves in every mode.
        let b = work("Fix the logout redirect");
        assert!(
            r.json_as("reviewer", &["usage"])["reviewable"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["id"] == b.as_str()),
            "{mode}: the reviewer sees it"
        );
        let ok = r.json_as("reviewer", &["approve", &b, "--reason", "read the diff"]);
        assert_eq!(ok["status"], "closed", "{mode}");
        // The lead created the issue someone else implemented: only strict refuses; balanced
        // wants a reason (the creator exception).
        let c = work("Fix the session timeout");
        let out = r.run_as("lead", &["approve", &c, "--json"]);
        match mode {
            "strict" => assert_eq!(out.error_code(), "cannot_self_approve", "{mode}"),
            "balanced" => {
                assert_eq!(out.error_code(), "invalid_input", "{mode}: needs a reason");
                let ok = r.json_as("lead", &["approve", &c, "--reason", "checked"]);
                assert_eq!(ok["status"], "closed");
            }
            _ => assert_eq!(out.json()["status"], "closed", "{mode}"),
        }
    }
}
