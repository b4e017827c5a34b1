//! Append-only records attached to issues: logs, comments, handoffs and reviews. Each is its
//! own small document, so concurrent records never conflict.

use rusqlite::Connection;

use crate::doc;
use crate::error::{invalid, Result};
use crate::model::{self, now_timestamp, Kind};
use crate::project::Project;
use crate::query;
use crate::session;
use crate::write::Tx;

/// The four lists of a handoff.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandoffText {
    /// What was done.
    pub done: Vec<String>,
    /// What remains.
    pub remaining: Vec<String>,
    /// Decisions made.
    pub decisions: Vec<String>,
    /// Open questions.
    pub uncertain: Vec<String>,
}

impl HandoffText {
    /// True when all four lists are empty.
    pub fn is_empty(&self) -> bool {
        self.done.is_empty()
            && self.remaining.is_empty()
            && self.decisions.is_empty()
            && self.uncertain.is_empty()
    }

    /// Builds a handoff from an issue's logs, as td's review does when none was written: the
    /// substantive logs (not the routine ones transitions write, such as "Started work"),
    /// decisions apart, the newest eight others as done, and "see session logs" as what
    /// remains. Empty when the issue has no substantive log.
    pub fn from_logs(conn: &Connection, issue: &str) -> Result<HandoffText> {
        let mut h = HandoffText::default();
        for log in query::rows_for(conn, "logs", "issue_id", issue, "timestamp, id")? {
            let msg = log["message"].as_str().unwrap_or("").trim().to_string();
            let kind = log["type"].as_str().unwrap_or("progress");
            if msg.is_empty() || (matches!(kind, "progress" | "orchestration") && is_routine(&msg))
            {
                continue;
            }
            match kind {
                "decision" => h.decisions.push(msg),
                _ => h.done.push(msg),
            }
        }
        const MAX_DONE: usize = 8;
        if h.done.len() > MAX_DONE {
            h.done.drain(..h.done.len() - MAX_DONE);
        }
        if !h.done.is_empty() {
            h.remaining.push("see session logs".into());
        }
        Ok(h)
    }
}

/// Whether `session` left too little on `issue` for a reviewer: no substantive log of another
/// kind than progress, and fewer than 16 characters of progress among its ten newest logs
/// (td's `shouldWarnAboutAutoHandoff`).
pub(crate) fn little_context(conn: &Connection, issue: &str, session: &str) -> Result<bool> {
    let logs = query::rows_for(conn, "logs", "issue_id", issue, "timestamp DESC, id DESC")?;
    let mut chars = 0usize;
    for log in logs.iter().take(10) {
        if log["session_id"].as_str() != Some(session) {
            continue;
        }
        let msg = log["message"].as_str().unwrap_or("").trim();
        let kind = log["type"].as_str().unwrap_or("progress");
        if msg.is_empty() || (matches!(kind, "progress" | "orchestration") && is_routine(msg)) {
            continue;
        }
        chars += msg.chars().count();
        if kind != "progress" || chars >= 16 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The log lines td's transitions write on their own ("Started work", "Approved: …"): they say
/// nothing a reviewer needs, so a handoff built from logs leaves them out (td's
/// `isRoutineWorkflowLogMessage`).
fn is_routine(msg: &str) -> bool {
    let m = msg.trim().to_lowercase();
    matches!(
        m.as_str(),
        "started work" | "submitted for review" | "approved" | "rejected" | "closed"
    ) || [
        "submitted for review via ",
        "approved: ",
        "rejected: ",
        "closed: ",
        "cascaded review from ",
        "auto-unblocked (",
    ]
    .iter()
    .any(|p| m.starts_with(p))
}

fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).expect("strings serialize")
}

/// Writes a handoff document for `issue`.
pub(crate) fn add_handoff(
    tx: &mut Tx<'_>,
    issue: &str,
    session: &str,
    h: &HandoffText,
) -> Result<String> {
    let id = tx.fresh_id(Kind::Handoff)?;
    tx.change(&id, |d| {
        doc::put_str(d, "issue_id", issue)?;
        doc::put_str(d, "session_id", session)?;
        doc::put_str(d, "done", &json_list(&h.done))?;
        doc::put_str(d, "remaining", &json_list(&h.remaining))?;
        doc::put_str(d, "decisions", &json_list(&h.decisions))?;
        doc::put_str(d, "uncertain", &json_list(&h.uncertain))?;
        doc::put_str(d, "timestamp", &now_timestamp())
    })?;
    Ok(id)
}

/// Appends a review decision, superseding the issue's active review.
#[allow(clippy::too_many_arguments)]
pub(crate) fn add_review(
    tx: &mut Tx<'_>,
    issue: &str,
    reviewer: &str,
    decision: &str,
    summary: &str,
    requested_by: &str,
    self_review: bool,
    reviewed_by: &str,
) -> Result<String> {
    let now = now_timestamp();
    let active: Vec<String> = query::rows_for(
        tx.conn(),
        "issue_reviews",
        "issue_id",
        issue,
        "created_at, id",
    )?
    .into_iter()
    .filter(|r| r["superseded_at"].is_null())
    .filter_map(|r| r["id"].as_str().map(String::from))
    .collect();
    for old in active {
        tx.change(&old, |d| doc::put_str(d, "superseded_at", &now))?;
    }
    let id = tx.fresh_id(Kind::Review)?;
    tx.change(&id, |d| {
        doc::put_str(d, "issue_id", issue)?;
        doc::put_str(d, "reviewer_session", reviewer)?;
        doc::put_str(d, "decision", decision)?;
        doc::put_str(d, "summary", summary)?;
        doc::put_str(d, "requested_by_session", requested_by)?;
        doc::put_str(d, "created_at", &now)?;
        doc::put_int(d, "self_review", self_review as i64)?;
        doc::put_str(d, "reviewed_by", reviewed_by)
    })?;
    Ok(id)
}

/// Writes a log document.
pub(crate) fn add_log(
    tx: &mut Tx<'_>,
    issue: &str,
    session: &str,
    ws: &str,
    msg: &str,
    log_type: &str,
) -> Result<String> {
    let id = tx.fresh_id(Kind::Log)?;
    tx.change(&id, |d| {
        doc::put_str(d, "issue_id", issue)?;
        doc::put_str(d, "session_id", session)?;
        doc::put_str(d, "work_session_id", ws)?;
        doc::put_str(d, "message", msg)?;
        doc::put_str(d, "type", log_type)?;
        doc::put_str(d, "timestamp", &now_timestamp())
    })?;
    Ok(id)
}

/// Writes a comment document.
pub(crate) fn add_comment(
    tx: &mut Tx<'_>,
    issue: &str,
    session: &str,
    text: &str,
) -> Result<String> {
    let id = tx.fresh_id(Kind::Comment)?;
    tx.change(&id, |d| {
        doc::put_str(d, "issue_id", issue)?;
        doc::put_str(d, "session_id", session)?;
        doc::put_str(d, "text", text)?;
        doc::put_str(d, "created_at", &now_timestamp())
    })?;
    Ok(id)
}

impl Project {
    /// `td log`: a progress (or typed) entry on an issue; defaults to the focused issue.
    pub fn log(
        &mut self,
        issue: Option<&str>,
        msg: &str,
        log_type: &str,
    ) -> Result<(String, String)> {
        let log_type = model::parse_log_type(log_type)?;
        if msg.trim().is_empty() {
            return Err(invalid("log message is empty"));
        }
        let me = self.session.id.clone();
        self.store.write(&me.clone(), |tx| {
            let issue = match issue {
                Some(i) => i.to_string(),
                None => session::focused_issue(tx.conn(), &me)?.ok_or_else(|| {
                    crate::error::EngineError::NoActiveSession(
                        "no focused issue: pass an issue id (td log <id> \"msg\") or 'td start <id>' first".into(),
                    )
                })?,
            };
            query::live_issue(tx.conn(), &issue)?;
            let ws = session::active_work_session(tx.conn(), &me)?.unwrap_or_default();
            let id = add_log(tx, &issue, &me, &ws, msg, log_type)?;
            Ok((id, issue))
        })
    }

    /// `td comment`: a comment on an issue. An empty one is stored, as td stores it (its
    /// server refuses one; `td serve` checks that itself).
    pub fn comment(&mut self, issue: &str, text: &str) -> Result<String> {
        let me = self.session.id.clone();
        self.store.write(&me.clone(), |tx| {
            query::live_issue(tx.conn(), issue)?;
            add_comment(tx, issue, &me, text)
        })
    }

    /// Deletes a comment of `issue` (td's API `DELETE /v1/issues/{id}/comments/{comment_id}`):
    /// a tombstone in the comment's document, so the deletion syncs and the row goes on every
    /// replica. `not_found` when the issue has no such comment.
    pub fn delete_comment(&mut self, issue: &str, comment: &str) -> Result<()> {
        let me = self.session.id.clone();
        self.store.write(&me, |tx| {
            let owner: Option<String> = tx
                .conn()
                .query_row(
                    "SELECT issue_id FROM comments WHERE id = ?1",
                    [comment],
                    |r| r.get(0),
                )
                .ok();
            if owner.as_deref() != Some(issue) {
                return Err(crate::error::not_found(format!(
                    "issue {issue} has no comment {comment}"
                )));
            }
            tx.change(comment, |d| doc::put_str(d, "deleted_at", &now_timestamp()))
        })
    }

    /// `td handoff`: records what was done, what remains, decisions and open questions.
    pub fn handoff(&mut self, issue: &str, h: &HandoffText) -> Result<String> {
        if h.is_empty() {
            return Err(invalid(
                "a handoff needs at least one of --done, --remaining, --decision, --uncertain",
            ));
        }
        let me = self.session.id.clone();
        self.store.write(&me.clone(), |tx| {
            query::live_issue(tx.conn(), issue)?;
            add_handoff(tx, issue, &me, h)
        })
    }
}
