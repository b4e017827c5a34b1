//! Work sessions (`td ws`): a named stretch of work that tags issues and collects logs and
//! handoffs across them.

use rusqlite::OptionalExtension;

use crate::doc::{self, Field};
use crate::error::{invalid, not_found, EngineError, Result};
use crate::model::{link_id, now_timestamp, Kind};
use crate::ops::records::{self, HandoffText};
use crate::project::Project;
use crate::query;
use crate::session;
use crate::views::{self, WorkSessionView};
use crate::write::Tx;

fn active(tx: &Tx<'_>, me: &str) -> Result<String> {
    session::active_work_session(tx.conn(), me)?.ok_or_else(|| {
        EngineError::NoActiveSession("no active work session: run 'td ws start <name>'".into())
    })
}

/// A work session, with its tagged issue ids.
pub fn work_session(conn: &rusqlite::Connection, id: &str) -> Result<Option<WorkSessionView>> {
    let row = conn
        .query_row("SELECT * FROM work_sessions WHERE id = ?1", [id], |r| {
            views::from_row::<WorkSessionView>(r)
        })
        .optional()?;
    let Some(mut ws) = row else { return Ok(None) };
    ws.issues = tagged_ids(conn, id)?;
    Ok(Some(ws))
}

fn tagged(tx: &Tx<'_>, ws: &str) -> Result<Vec<String>> {
    tagged_ids(tx.conn(), ws)
}

fn tagged_ids(conn: &rusqlite::Connection, ws: &str) -> Result<Vec<String>> {
    Ok(query::rows_for(
        conn,
        "work_session_issues",
        "work_session_id",
        ws,
        "tagged_at, issue_id",
    )?
    .into_iter()
    .filter_map(|r| r["issue_id"].as_str().map(String::from))
    .collect())
}

impl Project {
    /// `td ws start <name>`: starts a work session and makes it this session's active one.
    pub fn ws_start(&mut self, name: &str) -> Result<String> {
        if name.trim().is_empty() {
            return Err(invalid("work session name is required"));
        }
        let me = self.session.id.clone();
        self.store.write(&me.clone(), |tx| {
            if let Some(cur) = session::active_work_session(tx.conn(), &me)? {
                return Err(invalid(format!(
                    "work session {cur} is active: end it with 'td ws end' first"
                )));
            }
            let id = tx.fresh_id(Kind::WorkSession)?;
            tx.change(&id, |d| {
                doc::put_str(d, "name", name.trim())?;
                doc::put_str(d, "session_id", &me)?;
                doc::put_str(d, "started_at", &now_timestamp())
            })?;
            session::set_state(tx.conn(), &me, "active_work_session_id", &id)?;
            Ok(id)
        })
    }

    /// `td ws tag <ids>`: adds issues to the active work session and, as td does, starts the
    /// ones that are open (unless `start` is false: `--no-start`). Returns those newly tagged.
    pub fn ws_tag(&mut self, ids: &[String], start: bool) -> Result<(String, Vec<String>)> {
        let me = self.session.id.clone();
        self.store.write(&me.clone(), |tx| {
            let ws = active(tx, &me)?;
            let existing = tagged(tx, &ws)?;
            let mut added = Vec::new();
            for id in ids {
                let issue = query::live_issue(tx.conn(), id)?;
                if start && issue.status == "open" {
                    crate::ops::workflow::start_tx(tx, &me, id, false, None, None)?;
                }
                if existing.contains(id) || added.contains(id) {
                    continue;
                }
                let key = link_id("wsi_", &format!("{ws}|{id}"));
                let now = now_timestamp();
                tx.change(&ws, |d| {
                    doc::put_child(
                        d,
                        "issues",
                        &key,
                        &[
                            ("issue_id", Field::Str(id.clone())),
                            ("tagged_at", Field::Str(now)),
                        ],
                    )
                })?;
                added.push(id.clone());
            }
            Ok((ws, added))
        })
    }

    /// `td ws untag <ids>`: removes issues from the active work session.
    pub fn ws_untag(&mut self, ids: &[String]) -> Result<(String, Vec<String>)> {
        let me = self.session.id.clone();
        self.store.write(&me.clone(), |tx| {
            let ws = active(tx, &me)?;
            let mut removed = Vec::new();
            for id in ids {
                let key = link_id("wsi_", &format!("{ws}|{id}"));
                let mut gone = false;
                tx.change(&ws, |d| {
                    gone = doc::delete_child(d, "issues", &key)?;
                    Ok(())
                })?;
                if gone {
                    removed.push(id.clone());
                }
            }
            Ok((ws, removed))
        })
    }

    /// `td ws log <msg>`: logs to every tagged issue (or to the work session alone when none);
    /// `only`: to that issue alone (`--only`).
    pub fn ws_log(&mut self, msg: &str, log_type: &str, only: Option<&str>) -> Result<Vec<String>> {
        let log_type = crate::model::parse_log_type(log_type)?;
        if msg.trim().is_empty() {
            return Err(invalid("log message is empty"));
        }
        let me = self.session.id.clone();
        self.store.write(&me.clone(), |tx| {
            let ws = active(tx, &me)?;
            if let Some(issue) = only {
                query::live_issue(tx.conn(), issue)?;
                return Ok(vec![records::add_log(tx, issue, &me, &ws, msg, log_type)?]);
            }
            let issues = tagged(tx, &ws)?;
            let targets = if issues.is_empty() {
                vec![String::new()]
            } else {
                issues
            };
            targets
                .iter()
                .map(|i| records::add_log(tx, i, &me, &ws, msg, log_type))
                .collect()
        })
    }

    /// `td ws handoff`: writes the same handoff on every tagged issue and ends the work session
    /// (unless `keep_open`: `--continue`); with `review`, submits the tagged issues in progress
    /// for review.
    pub fn ws_handoff(
        &mut self,
        h: &HandoffText,
        keep_open: bool,
        review: bool,
    ) -> Result<(String, Vec<String>)> {
        if h.is_empty() {
            return Err(invalid(
                "a handoff needs at least one of --done, --remaining, --decision, --uncertain",
            ));
        }
        let me = self.session.id.clone();
        self.store.write(&me.clone(), |tx| {
            let ws = active(tx, &me)?;
            let mut ids = Vec::new();
            for issue in tagged(tx, &ws)? {
                let Ok(live) = query::live_issue(tx.conn(), &issue) else {
                    continue;
                };
                ids.push(records::add_handoff(tx, &issue, &me, h)?);
                if review && live.status == "in_progress" {
                    crate::ops::workflow::review_tx(
                        tx,
                        &me,
                        &issue,
                        Some("Submitted for review via ws handoff --review"),
                        None,
                    )?;
                }
            }
            if !keep_open {
                end_ws(tx, &me, &ws)?;
            }
            Ok((ws, ids))
        })
    }

    /// `td ws end`: ends the active work session.
    pub fn ws_end(&mut self) -> Result<String> {
        let me = self.session.id.clone();
        self.store.write(&me.clone(), |tx| {
            let ws = active(tx, &me)?;
            end_ws(tx, &me, &ws)?;
            Ok(ws)
        })
    }

    /// `td ws current`: the active work session, if any.
    pub fn ws_current(&self) -> Result<Option<WorkSessionView>> {
        match session::active_work_session(self.store.conn(), &self.session.id)? {
            Some(id) => work_session(self.store.conn(), &id),
            None => Ok(None),
        }
    }

    /// `td ws list`: all work sessions, newest first.
    pub fn ws_list(&self) -> Result<Vec<WorkSessionView>> {
        let conn = self.store.conn();
        let ids: Vec<String> = conn
            .prepare("SELECT id FROM work_sessions ORDER BY started_at DESC, id")?
            .query_map([], |r| r.get(0))?
            .collect::<std::result::Result<_, _>>()?;
        ids.iter()
            .map(|id| work_session(conn, id)?.ok_or_else(|| not_found(id.clone())))
            .collect()
    }
}

fn end_ws(tx: &mut Tx<'_>, me: &str, ws: &str) -> Result<()> {
    tx.change(ws, |d| doc::put_str(d, "ended_at", &now_timestamp()))?;
    session::set_state(tx.conn(), me, "active_work_session_id", "")
}
