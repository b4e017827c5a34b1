//! Workflow transitions: start, unstart, review, approve, reject, close, reopen, block,
//! unblock. Status and its stamps are written together as one unit (the document's `wf`
//! map), so a transition is never mixed with a concurrent one.

use crate::doc;
use crate::error::{invalid, EngineError, Result};
use crate::model::{now_timestamp, Status};
use crate::ops::cascades::{self, Writer};
use crate::ops::check_if_match;
use crate::ops::records::{self, HandoffText};
pub use crate::ops::transition::Workflow;
pub(crate) use crate::ops::transition::{
    clear, history_row, note, put_history, set_status_only, stamp, transition,
};
use crate::ops::IssueOutcome;
use crate::project::Project;
use crate::query::{self, Issue};
use crate::review_policy::{self, Attestation, Facts};
use crate::session;
use crate::write::Tx;

/// Options of `td approve`.
#[derive(Debug, Clone, Default)]
pub struct ApproveOptions {
    /// `--reviewed-by`: who actually reviewed (lets the implementer record an outside review).
    pub reviewed_by: Option<String>,
    /// `--self-review`: the implementer approves its own work, with a reason.
    pub self_review: bool,
    /// `--reason`: required with `--self-review`; recorded as the review summary.
    pub reason: Option<String>,
    /// `--record-only`: record the approval without closing (delegated and trusted modes then
    /// let any session close it: td's close-after-review).
    pub record_only: bool,
    /// `--decision changes_requested` (with `--record-only`): record a review that asks for
    /// changes; the issue stays in review and no approval is stamped.
    pub changes_requested: bool,
}

/// The log line td writes for a transition: `bare` alone ("Blocked"), or with the reason
/// given: `Blocked: <reason>` when `joined`, else the reason alone (td's start, review and
/// unstart log just the reason).
fn reason_log(bare: &str, reason: Option<&str>, joined: bool) -> Option<String> {
    Some(match reason.map(str::trim).filter(|r| !r.is_empty()) {
        None => bare.to_string(),
        Some(r) if joined => format!("{bare}: {r}"),
        Some(r) => r.to_string(),
    })
}

/// `td start` inside a write transaction (also used by `td ws tag`).
pub(crate) fn start_tx(
    tx: &mut Tx<'_>,
    me: &str,
    id: &str,
    force: bool,
    reason: Option<&str>,
    if_match: Option<&str>,
) -> Result<IssueOutcome> {
    let me = me.to_string();
    let out = transition(tx, id, if_match, Some((&me, "started")), |_, issue, wf| {
        let from = Status::parse(&issue.status)?;
        let holder = &issue.implementer_session;
        if from == Status::InProgress && holder == &me {
            return Ok(false);
        }
        if from == Status::InProgress && !holder.is_empty() && !force {
            return Err(EngineError::Conflict(format!(
                "{id} is already in progress by session {holder} (use --force to take it over)"
            )));
        }
        if from == Status::Blocked && !force {
            return Err(invalid(format!(
                "{id} is blocked: unblock it first or pass --force"
            )));
        }
        if from != Status::InProgress && from != Status::Blocked {
            from.check_transition(Status::InProgress)?;
        }
        stamp(wf, "status", Status::InProgress.as_str());
        stamp(wf, "implementer_session", &me);
        Ok(true)
    })?;
    session::set_state(tx.conn(), &me, "focused_issue_id", id)?;
    session::touch(tx.conn(), &me)?;
    note(tx, &out, &me, reason_log("Started work", reason, false))?;
    Ok(out)
}

/// `td review` inside a write transaction (also used by `td ws handoff --review`).
pub(crate) fn review_tx(
    tx: &mut Tx<'_>,
    me: &str,
    id: &str,
    reason: Option<&str>,
    if_match: Option<&str>,
) -> Result<IssueOutcome> {
    let me = me.to_string();
    let issue = query::live_issue(tx.conn(), id)?;
    check_if_match(tx, id, if_match)?;
    if issue.status == Status::InReview.as_str() {
        return Ok(IssueOutcome::unchanged(issue));
    }
    Status::parse(&issue.status)?.check_transition(Status::InReview)?;
    let mut warnings = Vec::new();
    if query::latest_handoff(tx.conn(), id)?.is_none() {
        // As td does: a handoff made from the issue's substantive logs, or td's minimal one
        // (with a warning when this session left little to review by).
        let mut text = HandoffText::from_logs(tx.conn(), id)?;
        if text.is_empty() && !issue.minor {
            text.done.push(AUTO_REVIEW_HANDOFF.to_string());
        }
        if !text.is_empty() {
            records::add_handoff(tx, id, &me, &text)?;
            if !issue.minor && records::little_context(tx.conn(), id, &me)? {
                warnings.push(format!(
                    "auto-created minimal handoff for {id} - consider using 'td handoff' for better documentation"
                ));
            }
        }
    }
    let mut out = transition(tx, id, None, None, |_, issue, wf| {
        stamp(wf, "status", Status::InReview.as_str());
        stamp(wf, "review_requested_by_session", &me);
        if issue.implementer_session.is_empty() {
            stamp(wf, "implementer_session", &me);
        }
        Ok(true)
    })?;
    note(
        tx,
        &out,
        &me,
        reason_log("Submitted for review", reason, false),
    )?;
    out.warnings = warnings;
    if out.changed {
        out.cascades = cascades::after(tx, &me, id, Status::InReview, Writer::Local)?;
    }
    Ok(out)
}

/// The handoff td writes when an issue goes to review without one and without substantive
/// logs (td's `autoReviewHandoffMessage`).
pub const AUTO_REVIEW_HANDOFF: &str = "Auto-generated for review submission";

impl Project {
    /// `td start`: claim an issue for this session (`in_progress`, implementer = me) and focus it.
    pub fn start(
        &mut self,
        id: &str,
        force: bool,
        reason: Option<&str>,
        if_match: Option<&str>,
    ) -> Result<IssueOutcome> {
        let me = self.session.id.clone();
        self.store.write(&me.clone(), |tx| {
            start_tx(tx, &me, id, force, reason, if_match)
        })
    }

    /// `td unstart`: give an in-progress issue back (`open`, implementer cleared).
    pub fn unstart(&mut self, id: &str, reason: Option<&str>) -> Result<IssueOutcome> {
        let me = self.session.id.clone();
        self.store.write(&me.clone(), |tx| {
            let out = transition(tx, id, None, Some((&me, "unstarted")), |_, issue, wf| {
                match Status::parse(&issue.status)? {
                    Status::Open => return Ok(false),
                    Status::InProgress => {}
                    other => {
                        return Err(invalid(format!(
                            "{id} is {}, not in_progress",
                            other.as_str()
                        )))
                    }
                }
                stamp(wf, "status", Status::Open.as_str());
                clear(wf, "implementer_session");
                Ok(true)
            })?;
            if session::focused_issue(tx.conn(), &me)?.as_deref() == Some(id) {
                session::set_state(tx.conn(), &me, "focused_issue_id", "")?;
            }
            note(tx, &out, &me, reason_log("Reverted to open", reason, false))?;
            Ok(out)
        })
    }

    /// `td review`: hand an issue to review. Needs a handoff; builds one from the issue's logs
    /// when there is none.
    pub fn review(
        &mut self,
        id: &str,
        reason: Option<&str>,
        if_match: Option<&str>,
    ) -> Result<IssueOutcome> {
        let me = self.session.id.clone();
        self.store
            .write(&me.clone(), |tx| review_tx(tx, &me, id, reason, if_match))
    }

    /// `td review --minor`: marks the issue minor (its implementer may approve it; no handoff
    /// is needed) and submits it, in one write.
    pub fn review_minor(
        &mut self,
        id: &str,
        reason: Option<&str>,
        if_match: Option<&str>,
    ) -> Result<IssueOutcome> {
        let me = self.session.id.clone();
        self.store.write(&me.clone(), |tx| {
            check_if_match(tx, id, if_match)?;
            query::live_issue(tx.conn(), id)?;
            tx.change(id, |d| doc::put_int(d, "minor", 1))?;
            review_tx(tx, &me, id, reason, None)
        })
    }

    /// `td approve`: close a reviewed issue, recording the review. The implementer may not
    /// approve its own work unless it names the reviewer or self-reviews with a reason.
    pub fn approve(
        &mut self,
        id: &str,
        opts: &ApproveOptions,
        if_match: Option<&str>,
    ) -> Result<IssueOutcome> {
        if opts.self_review && opts.reason.as_deref().unwrap_or("").trim().is_empty() {
            return Err(invalid(
                "--self-review requires --reason \"<why no one else can review>\"",
            ));
        }
        if opts.changes_requested && !opts.record_only {
            return Err(invalid(
                "--decision changes_requested requires --record-only",
            ));
        }
        let decision_name = if opts.changes_requested {
            "changes_requested"
        } else {
            "approved"
        };
        let me = self.session.id.clone();
        let mode = self.review_mode;
        let attestation = Attestation {
            self_review: opts.self_review,
            reviewed_by: opts.reviewed_by.clone(),
        };
        self.store.write(&me.clone(), |tx| {
            let mut requested_by = String::new();
            let mut self_review = false;
            let mut reviewed_by = String::new();
            // td's close-after-review: an approval is already recorded, so (in delegated and
            // trusted modes) any session closes without a review of its own.
            let current = query::live_issue(tx.conn(), id)?;
            let facts = Facts::read(tx.conn(), &current, &me)?;
            if !opts.record_only && review_policy::ready_to_close(mode, &facts) {
                let mut out = transition(tx, id, if_match, Some((&me, "closed")), |_, _, wf| {
                    let now = now_timestamp();
                    stamp(wf, "status", Status::Closed.as_str());
                    stamp(wf, "closed_at", &now);
                    stamp(wf, "closed_by_session", &me);
                    Ok(true)
                })?;
                note(
                    tx,
                    &out,
                    &me,
                    reason_log("Closed after review", opts.reason.as_deref(), true),
                )?;
                if out.changed {
                    out.cascades = cascades::after(tx, &me, id, Status::Closed, Writer::Local)?;
                }
                return Ok(out);
            }
            let history = match (opts.record_only, opts.changes_requested) {
                (true, true) => "review_changes_requested",
                (true, false) => "review_approved",
                _ => "reviewed",
            };
            let mut out = transition(tx, id, if_match, Some((&me, history)), |tx, issue, wf| {
                let from = Status::parse(&issue.status)?;
                if from == Status::Closed {
                    return Ok(false);
                }
                // As td: an approval closes only an issue in review (td checks the status it
                // read is still in_review, `CreateIssueReviewAndUpdateIssueLogged`); a minor
                // issue needs no review.
                if from != Status::InReview && !issue.minor {
                    return Err(invalid(format!(
                        "{id} is {}, not in_review: run 'td review {id}' first",
                        from.as_str()
                    )));
                }
                let facts = Facts::read(tx.conn(), issue, &me)?;
                let decision = review_policy::approve(mode, &facts, &attestation);
                if let Some(why) = decision.refusal {
                    return Err(EngineError::CannotSelfApprove(why));
                }
                if decision.requires_reason
                    && opts.reason.as_deref().unwrap_or("").trim().is_empty()
                {
                    return Err(invalid(format!(
                        "approving {id} in {mode} mode needs a reason: --reason \"...\""
                    )));
                }
                self_review = decision.self_review;
                reviewed_by = decision.attributed_to.clone().unwrap_or_default();
                requested_by = issue.review_requested_by_session.clone();
                if opts.changes_requested {
                    if from != Status::InReview {
                        return Err(invalid(format!(
                            "cannot record review: {id} is not in review (currently {})",
                            from.as_str()
                        )));
                    }
                    // Not stamped on the issue: that would read as an approval.
                    return Ok(true);
                }
                if decision.self_review {
                    let how = match &decision.attributed_to {
                        Some(who) => format!("reviewed_by:{who}"),
                        None => "self_review".to_string(),
                    };
                    stamp(wf, crate::doc::REVIEW_OVERRIDE, &how);
                }
                let now = now_timestamp();
                stamp(wf, "reviewer_session", &me);
                stamp(wf, "reviewed_at", &now);
                if opts.record_only {
                    if from != Status::InReview {
                        return Err(invalid(format!(
                            "{id} is {}: --record-only records a review of an issue in review",
                            from.as_str()
                        )));
                    }
                    return Ok(true);
                }
                stamp(wf, "status", Status::Closed.as_str());
                stamp(wf, "closed_at", &now);
                stamp(wf, "closed_by_session", &me);
                Ok(true)
            })?;
            if out.changed {
                records::add_review(
                    tx,
                    id,
                    &me,
                    decision_name,
                    opts.reason.as_deref().unwrap_or(""),
                    &requested_by,
                    self_review,
                    &reviewed_by,
                )?;
                if !opts.record_only {
                    let reason = opts.reason.as_deref().map(str::trim).unwrap_or("");
                    let msg = match (self_review, reviewed_by.is_empty(), reason.is_empty()) {
                        (true, true, _) => format!("Approved (SELF-REVIEW: {reason})"),
                        (_, false, true) => format!("Approved (reviewed by {reviewed_by})"),
                        (_, false, false) => {
                            format!("Approved (reviewed by {reviewed_by}): {reason}")
                        }
                        (_, true, true) => "Approved".to_string(),
                        (_, true, false) => format!("Approved: {reason}"),
                    };
                    note(tx, &out, &me, Some(msg))?;
                }
                if opts.record_only {
                    let by = if reviewed_by.is_empty() {
                        String::new()
                    } else {
                        format!(" by {reviewed_by}")
                    };
                    let reason = opts.reason.as_deref().unwrap_or("");
                    let msg = format!("Review recorded ({decision_name}){by}: {reason}");
                    note(tx, &out, &me, Some(msg))?;
                }
                if out.issue.status == Status::Closed.as_str() && !opts.record_only {
                    out.cascades = cascades::after(tx, &me, id, Status::Closed, Writer::Local)?;
                }
            }
            Ok(out)
        })
    }

    /// `td reject`: send an in-review issue back (`open`, implementer and reviewer cleared),
    /// recording a `changes_requested` review.
    pub fn reject(
        &mut self,
        id: &str,
        reason: Option<&str>,
        if_match: Option<&str>,
    ) -> Result<IssueOutcome> {
        let me = self.session.id.clone();
        self.store.write(&me.clone(), |tx| {
            let mut requested_by = String::new();
            let out = transition(tx, id, if_match, None, |_, issue, wf| {
                let from = Status::parse(&issue.status)?;
                if from != Status::InReview {
                    return Err(invalid(format!("{id} is {}, not in_review", from.as_str())));
                }
                requested_by = issue.review_requested_by_session.clone();
                stamp(wf, "status", Status::Open.as_str());
                for k in [
                    "implementer_session",
                    "reviewer_session",
                    "review_requested_by_session",
                    "reviewed_at",
                ] {
                    clear(wf, k);
                }
                Ok(true)
            })?;
            records::add_review(
                tx,
                id,
                &me,
                "changes_requested",
                reason.unwrap_or(""),
                &requested_by,
                false,
                "",
            )?;
            note(tx, &out, &me, reason_log("Rejected", reason, true))?;
            Ok(out)
        })
    }

    /// `td close`: the administrative close (duplicates, won't-fix, cleanup), decided by
    /// [`review_policy::admin_close`]: an issue in review is approved or rejected instead, and
    /// a session that implemented the issue needs `--self-close-exception`/`--admin` (a
    /// reason, kept in the issue's log). A `reason` is logged as `Closed: <reason>`.
    pub fn close(
        &mut self,
        id: &str,
        reason: Option<&str>,
        exception: Option<&str>,
        if_match: Option<&str>,
    ) -> Result<IssueOutcome> {
        let me = self.session.id.clone();
        let mode = self.review_mode;
        let overridden = exception.is_some_and(|r| !r.trim().is_empty());
        self.store.write(&me.clone(), |tx| {
            let mut excepted = false;
            let mut out = transition(tx, id, if_match, None, |tx, issue, wf| {
                match Status::parse(&issue.status)? {
                    Status::Closed => return Ok(false),
                    Status::InReview if !issue.minor => {
                        return Err(invalid(format!(
                            "cannot close {id}: issue is in review; use 'td approve {id}' to \
                             close reviewed work (or 'td reject {id}')"
                        )))
                    }
                    _ => {}
                }
                let facts = Facts::read(tx.conn(), issue, &me)?;
                if let Some(why) = review_policy::admin_close(mode, &facts, overridden).refusal {
                    return Err(EngineError::CannotSelfApprove(format!(
                        "{why} (pass --self-close-exception \"<reason>\" to close your own work)"
                    )));
                }
                excepted = !review_policy::admin_close(mode, &facts, false).allowed;
                let now = now_timestamp();
                stamp(wf, "status", Status::Closed.as_str());
                stamp(wf, "closed_at", &now);
                stamp(wf, "closed_by_session", &me);
                Ok(true)
            })?;
            // The stated exception is kept where reviewers look: the issue's log.
            let logged = match exception.filter(|_| excepted) {
                Some(why) => Some(format!("Closed (SELF-CLOSE EXCEPTION: {})", why.trim())),
                None => reason_log("Closed", reason, true),
            };
            note(tx, &out, &me, logged)?;
            if out.changed {
                out.cascades = cascades::after(tx, &me, id, Status::Closed, Writer::Local)?;
            }
            Ok(out)
        })
    }

    /// In-review issues this session may review under the project's policy (td's
    /// reviewable-by filter), in list order.
    pub fn reviewable(&self) -> Result<Vec<Issue>> {
        let f = query::ListFilter {
            status: vec![Status::InReview.as_str().into()],
            ..Default::default()
        };
        let mut out = Vec::new();
        for issue in query::list_issues(self.store.conn(), &f)? {
            let facts = Facts::read(self.store.conn(), &issue, &self.session.id)?;
            if review_policy::reviewable(self.review_mode, &facts) {
                out.push(issue);
            }
        }
        Ok(out)
    }

    /// `td reviewable [--include-approved]`: in-review issues awaiting this session's review
    /// (no approval recorded yet), and, when `include_approved`, those whose approval is
    /// recorded and that this session may close (td's two buckets).
    pub fn review_queue(&self, include_approved: bool) -> Result<(Vec<Issue>, Vec<Issue>)> {
        let f = query::ListFilter {
            status: vec![Status::InReview.as_str().into()],
            ..Default::default()
        };
        let (mut awaiting, mut ready) = (Vec::new(), Vec::new());
        for issue in query::list_issues(self.store.conn(), &f)? {
            let facts = Facts::read(self.store.conn(), &issue, &self.session.id)?;
            if facts.active_approval {
                if include_approved && review_policy::ready_to_close(self.review_mode, &facts) {
                    ready.push(issue);
                }
            } else if review_policy::reviewable(self.review_mode, &facts) {
                awaiting.push(issue);
            }
        }
        Ok((awaiting, ready))
    }

    /// `td reopen`: closed → open.
    pub fn reopen(&mut self, id: &str, reason: Option<&str>) -> Result<IssueOutcome> {
        let me = self.session.id.clone();
        self.store.write(&me.clone(), |tx| {
            let out = transition(tx, id, None, None, |_, issue, wf| {
                let from = Status::parse(&issue.status)?;
                if from == Status::Open {
                    return Ok(false);
                }
                from.check_transition(Status::Open)?;
                stamp(wf, "status", Status::Open.as_str());
                for k in [
                    "closed_at",
                    "closed_by_session",
                    "reviewer_session",
                    "reviewed_at",
                ] {
                    clear(wf, k);
                }
                Ok(true)
            })?;
            note(tx, &out, &me, reason_log("Reopened", reason, true))?;
            Ok(out)
        })
    }

    /// `td block`: → blocked.
    pub fn block(
        &mut self,
        id: &str,
        reason: Option<&str>,
        if_match: Option<&str>,
    ) -> Result<IssueOutcome> {
        self.simple_transition(
            id,
            Status::Blocked,
            reason_log("Blocked", reason, true),
            if_match,
        )
    }

    /// `td unblock`: blocked → open.
    pub fn unblock(&mut self, id: &str, reason: Option<&str>) -> Result<IssueOutcome> {
        let me = self.session.id.clone();
        self.store.write(&me.clone(), |tx| {
            let out = transition(tx, id, None, None, |_, issue, wf| {
                match Status::parse(&issue.status)? {
                    Status::Blocked => {}
                    Status::Open => return Ok(false),
                    other => {
                        return Err(invalid(format!("{id} is {}, not blocked", other.as_str())))
                    }
                }
                stamp(wf, "status", Status::Open.as_str());
                Ok(true)
            })?;
            note(tx, &out, &me, reason_log("Unblocked", reason, true))?;
            Ok(out)
        })
    }

    fn simple_transition(
        &mut self,
        id: &str,
        to: Status,
        log: Option<String>,
        if_match: Option<&str>,
    ) -> Result<IssueOutcome> {
        let me = self.session.id.clone();
        self.store.write(&me.clone(), |tx| {
            let out = transition(tx, id, if_match, None, |_, issue, wf| {
                let from = Status::parse(&issue.status)?;
                if from == to {
                    return Ok(false);
                }
                from.check_transition(to)?;
                stamp(wf, "status", to.as_str());
                Ok(true)
            })?;
            note(tx, &out, &me, log)?;
            Ok(out)
        })
    }
}
