//! `td undo` and `td last`: this session's recent issue changes, and taking the latest back.
//! td keeps an action log for this (its local `action_log` table, never synced); so do we:
//! each local write records, per issue it changed, the issue's row before and after. An undo
//! is a new change that writes the earlier values back, so it syncs like any other edit (and a
//! concurrent edit elsewhere merges with it as usual).

use std::collections::BTreeMap;

use automerge::AutoCommit;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use serde_json::Value;

use crate::doc::{self, Field, WF_KEYS};
use crate::error::{not_found, Result};
use crate::model::{now_timestamp, Status};
use crate::project::Project;
use crate::query;

/// A write that changes more issues than this (a migration, a bulk import) is not recorded:
/// undo is for an agent's or a person's last command.
pub(crate) const MAX_RECORDED: usize = 16;

/// One recorded action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionView {
    /// The action's id.
    pub id: String,
    /// `create`, `delete`, `restore`, a transition (`start`, `review`, …) or `update`.
    pub action: String,
    /// The issue.
    pub entity_id: String,
    /// When.
    pub timestamp: String,
    /// Taken back already.
    pub undone: bool,
}

fn action_type(before: &Option<Value>, after: &Value) -> String {
    let Some(before) = before else {
        return "create".into();
    };
    let deleted = |v: &Value| !v["deleted_at"].is_null();
    match (deleted(before), deleted(after)) {
        (false, true) => return "delete".into(),
        (true, false) => return "restore".into(),
        _ => {}
    }
    let status = |v: &Value| Status::parse(v["status"].as_str().unwrap_or("")).ok();
    match (status(before), status(after)) {
        (Some(a), Some(b)) if a != b => a.transition_name(b),
        _ => "update".into(),
    }
}

/// Records what a local write did to each issue it touched (`before` holds the rows as they
/// were; the rows now are read here), in the write's own transaction.
pub(crate) fn record(
    conn: &Connection,
    session: &str,
    before: BTreeMap<String, Option<Value>>,
) -> Result<()> {
    let now = now_timestamp();
    for (n, (id, was)) in before.into_iter().enumerate() {
        let Some(after) = query::find_issue(conn, &id)?.map(|i| i.to_json()) else {
            continue;
        };
        if was.as_ref() == Some(&after) {
            continue;
        }
        let key = crate::model::link_id("act_", &format!("{session}|{id}|{now}|{n}"));
        conn.prepare_cached(
            "INSERT OR REPLACE INTO action_log(id, session_id, action_type, entity_type, entity_id, \
             previous_data, new_data, timestamp, undone) VALUES (?1, ?2, ?3, 'issue', ?4, ?5, ?6, ?7, 0)",
        )?
        .execute(params![
            key,
            session,
            action_type(&was, &after),
            id,
            was.map(|v| v.to_string()).unwrap_or_default(),
            after.to_string(),
            now
        ])?;
    }
    Ok(())
}

/// Writes `was` (an issue row as JSON) back into the issue's document, field by field where
/// it differs from `now`.
fn restore_fields(d: &mut AutoCommit, was: &Value, now: &Value) -> Result<()> {
    let (Some(was), Some(now)) = (was.as_object(), now.as_object()) else {
        return Ok(());
    };
    let mut wf_changed = false;
    for (k, v) in was {
        if now.get(k) == Some(v) || k == "id" || k == "updated_at" {
            continue;
        }
        if WF_KEYS.contains(&k.as_str()) {
            wf_changed = true;
            continue;
        }
        match (k.as_str(), v) {
            ("labels", Value::Array(a)) => {
                let labels: Vec<String> = a
                    .iter()
                    .filter_map(|l| l.as_str().map(String::from))
                    .collect();
                doc::put_labels(d, &labels)?;
            }
            ("description" | "acceptance", Value::String(s)) => doc::put_text(d, k, s)?,
            ("minor", Value::Bool(b)) => doc::put_int(d, k, *b as i64)?,
            (_, Value::String(s)) => doc::put_str(d, k, s)?,
            (_, Value::Number(n)) => doc::put_int(d, k, n.as_i64().unwrap_or_default())?,
            (_, Value::Null) => doc::put_opt(d, k, None)?,
            _ => {}
        }
    }
    if wf_changed {
        let wf: BTreeMap<String, Field> = WF_KEYS
            .iter()
            .map(|k| {
                let v = match &was[*k] {
                    Value::String(s) => Field::Str(s.clone()),
                    _ => Field::Null,
                };
                (k.to_string(), v)
            })
            .collect();
        doc::put_workflow(d, &wf)?;
    }
    doc::put_str(d, "updated_at", &now_timestamp())
}

impl Project {
    /// `td last`: this session's `n` most recent actions, newest first.
    pub fn last_actions(&self, n: usize) -> Result<Vec<ActionView>> {
        let mut stmt = self.store.conn().prepare(
            "SELECT id, action_type, entity_id, timestamp, undone FROM action_log \
             WHERE session_id = ?1 ORDER BY timestamp DESC, rowid DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![self.session.id, n as i64], |r| {
            Ok(ActionView {
                id: r.get(0)?,
                action: r.get(1)?,
                entity_id: r.get(2)?,
                timestamp: r.get(3)?,
                undone: r.get::<_, i64>(4)? != 0,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// `td undo`: takes back this session's latest action not undone yet, as a new change (a
    /// created issue is deleted, a deleted one restored, an edit or a transition reverted).
    pub fn undo(&mut self) -> Result<ActionView> {
        let me = self.session.id.clone();
        let latest: Option<(String, String, String, String, String)> = self
            .store
            .conn()
            .query_row(
                "SELECT id, action_type, entity_id, previous_data, timestamp FROM action_log \
                 WHERE session_id = ?1 AND undone = 0 AND entity_type = 'issue' \
                 ORDER BY timestamp DESC, rowid DESC LIMIT 1",
                [&me],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()?;
        let Some((action_id, action, issue, previous, timestamp)) = latest else {
            return Err(not_found("nothing to undo in this session"));
        };
        self.store.write_unrecorded(&me, |tx| {
            let now = query::find_issue(tx.conn(), &issue)?
                .ok_or_else(|| not_found(format!("issue not found: {issue}")))?
                .to_json();
            if previous.is_empty() {
                // It was created: undoing deletes it (td restore brings it back).
                tx.change(&issue, |d| doc::put_str(d, "deleted_at", &now_timestamp()))?;
            } else {
                let was: Value = serde_json::from_str(&previous).unwrap_or(Value::Null);
                tx.change(&issue, |d| restore_fields(d, &was, &now))?;
            }
            tx.conn().execute(
                "UPDATE action_log SET undone = 1 WHERE id = ?1",
                [&action_id],
            )?;
            Ok(())
        })?;
        Ok(ActionView {
            id: action_id,
            action,
            entity_id: issue,
            timestamp,
            undone: true,
        })
    }
}
