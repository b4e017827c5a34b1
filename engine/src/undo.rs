//! `td undo` and `td last`: this session's recent actions, and taking the latest back.
//! td keeps an action log for this (its local `action_log` table, never synced); so do we.
//! Each local write records, per issue, board or handoff it changed, the entity as it was
//! (td's row shape in `previous_data`, and the document's Automerge heads before the write in
//! the local `crdt_action_heads`). An undo is a new change that writes the document's earlier
//! values back (fields, dependencies, linked files, board positions), so it syncs like any
//! other edit and a concurrent edit elsewhere merges with it as usual. As in td, logs,
//! comments and work sessions are not undone.

use std::collections::BTreeMap;

use automerge::{AutoCommit, ChangeHash, ROOT};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;
use serde_json::Value;

use crate::doc::{self, Field, TEXT_FIELDS};
use crate::error::{EngineError, Result};
use crate::model::{now_timestamp, Kind, Status};
use crate::project::Project;
use crate::query;

/// A write that changes more entities than this (a migration, a bulk import) is not recorded:
/// undo is for an agent's or a person's last command.
pub(crate) const MAX_RECORDED: usize = 16;

/// The kinds td's undo takes back (its `performUndo`); logs, comments and work sessions are
/// append-only records td refuses to undo.
pub(crate) const UNDOABLE: [Kind; 3] = [Kind::Issue, Kind::Board, Kind::Handoff];

/// The child maps an undo restores, per kind (an issue's session history is not restored: it
/// records what happened, as td's does).
fn restored_children(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Issue => &["deps", "files"],
        Kind::Board => &["positions"],
        _ => &[],
    }
}

/// An entity as it was before a write's first change to it.
#[derive(Debug, Clone)]
pub(crate) struct Before {
    /// The issue's row (td's shape), for issues.
    pub(crate) row: Option<Value>,
    /// The document's heads; empty when the write created it.
    pub(crate) heads: Vec<ChangeHash>,
}

/// One recorded action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionView {
    /// The action's id.
    pub id: String,
    /// td's action type: `create`, `delete`, `restore`, a transition (`start`, `review`, …),
    /// `update`, `add_dependency`, `remove_dependency`, `link_file`, `unlink_file`,
    /// `board_create`, `board_update`, `board_delete`, `board_set_position`,
    /// `board_unposition` or `handoff`.
    pub action: String,
    /// `issue`, `board` or `handoff`.
    pub entity_type: String,
    /// The entity.
    pub entity_id: String,
    /// When.
    pub timestamp: String,
    /// Taken back already.
    pub undone: bool,
    /// Fields (and `deps.<id>`, `files.<id>`, `positions.<id>` rows) this undo left as they
    /// are because they changed after the action (a teammate's edit that arrived by sync, or
    /// another session's): an undo never reverts work it did not do.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<String>,
}

fn issue_action(before: &Option<Value>, after: &Value) -> Option<String> {
    let Some(before) = before else {
        return Some("create".into());
    };
    let deleted = |v: &Value| !v["deleted_at"].is_null();
    match (deleted(before), deleted(after)) {
        (false, true) => return Some("delete".into()),
        (true, false) => return Some("restore".into()),
        _ => {}
    }
    let status = |v: &Value| Status::parse(v["status"].as_str().unwrap_or("")).ok();
    match (status(before), status(after)) {
        (Some(a), Some(b)) if a != b => Some(a.transition_name(b)),
        _ if before != after => Some("update".into()),
        _ => None,
    }
}

type Rows = BTreeMap<String, BTreeMap<String, Field>>;

fn rows(d: &AutoCommit, key: &str) -> Rows {
    doc::children(d, key).into_iter().collect()
}

fn live(row: &BTreeMap<String, Field>) -> bool {
    !matches!(row.get("deleted_at"), Some(Field::Str(_)))
}

/// How a child map changed: (some live row appeared or changed, some live row went away).
fn child_change(old: &Rows, new: &Rows) -> (bool, bool) {
    let added = new
        .iter()
        .any(|(k, r)| live(r) && old.get(k).is_none_or(|o| !live(o) || o != r));
    let removed = old
        .iter()
        .any(|(k, r)| live(r) && new.get(k).is_none_or(|n| !live(n)));
    (added, removed)
}

/// td's name for what a write did to a document, or `None` when it changed nothing td shows.
fn action_type(
    kind: Kind,
    old: Option<&AutoCommit>,
    new: &AutoCommit,
    row: (&Option<Value>, &Value),
) -> Option<String> {
    let fields = |d: &AutoCommit| doc::flatten(d, &ROOT);
    match kind {
        Kind::Issue => {
            if let Some(a) = issue_action(row.0, row.1) {
                return Some(a);
            }
            let old = old?;
            let pairs = [
                ("deps", "add_dependency", "remove_dependency"),
                ("files", "link_file", "unlink_file"),
            ];
            pairs.into_iter().find_map(|(key, add, remove)| {
                match child_change(&rows(old, key), &rows(new, key)) {
                    (true, _) => Some(add.to_string()),
                    (false, true) => Some(remove.to_string()),
                    _ => None,
                }
            })
        }
        Kind::Board => {
            let Some(old) = old else {
                return Some("board_create".into());
            };
            let (was, now) = (fields(old), fields(new));
            let deleted =
                |f: &BTreeMap<String, Field>| matches!(f.get("deleted_at"), Some(Field::Str(_)));
            if !deleted(&was) && deleted(&now) {
                return Some("board_delete".into());
            }
            match child_change(&rows(old, "positions"), &rows(new, "positions")) {
                (true, _) => Some("board_set_position".into()),
                (false, true) => Some("board_unposition".into()),
                _ if was != now => Some("board_update".into()),
                _ => None,
            }
        }
        Kind::Handoff => old.is_none().then(|| "handoff".into()),
        _ => None,
    }
}

fn fields_json(d: &AutoCommit) -> Value {
    Value::Object(
        doc::flatten(d, &ROOT)
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    Field::Str(s) => Value::String(s),
                    Field::Int(i) => Value::from(i),
                    Field::Null => Value::Null,
                };
                (k, v)
            })
            .collect(),
    )
}

/// One action of a write, ready for the local action log.
#[derive(Debug, Clone)]
pub(crate) struct RecordedAction {
    id: String,
    kind: Kind,
    action: String,
    previous: String,
    new: String,
    heads: Vec<ChangeHash>,
    /// The document's heads right after the write (what the action made).
    pub(crate) after: Vec<ChangeHash>,
}

/// Records one action in the local action log (td's `action_log`, never synced) with the
/// document's heads before it (`crdt_action_heads`), in the write's own transaction. `n`
/// orders actions of one write (a later one is undone first).
pub(crate) fn insert_action(
    conn: &rusqlite::Connection,
    session: &str,
    at: &str,
    n: usize,
    a: &RecordedAction,
) -> Result<()> {
    let key = crate::model::link_id("act_", &format!("{session}|{}|{at}|{n}", a.id));
    conn.prepare_cached(
        "INSERT OR REPLACE INTO action_log(id, session_id, action_type, entity_type, entity_id, \
         previous_data, new_data, timestamp, undone) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0)",
    )?
    .execute(params![
        key,
        session,
        a.action,
        a.kind.name(),
        a.id,
        a.previous,
        a.new,
        at
    ])?;
    let joined = |hs: &[ChangeHash]| {
        hs.iter()
            .map(|h| h.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    conn.prepare_cached(
        "INSERT OR REPLACE INTO crdt_action_heads(action_id, heads, after) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![key, joined(&a.heads), joined(&a.after)])?;
    Ok(())
}

/// What to record for a document a write changed (`old`: as it was, `None` when the write
/// created it): td's action type and its before/after data (an issue's row for issues, the
/// document's fields otherwise); `None` when the write changed nothing td shows.
pub(crate) fn describe(
    id: &str,
    kind: Kind,
    was: Before,
    old: Option<&AutoCommit>,
    new: &AutoCommit,
    after_row: &Value,
) -> Option<RecordedAction> {
    let action = action_type(kind, old, new, (&was.row, after_row))?;
    let (previous, now) = match kind {
        Kind::Issue => (
            was.row.as_ref().map(|v| v.to_string()).unwrap_or_default(),
            after_row.to_string(),
        ),
        _ => (
            old.map(|o| fields_json(o).to_string()).unwrap_or_default(),
            fields_json(new).to_string(),
        ),
    };
    Some(RecordedAction {
        id: id.to_string(),
        kind,
        action,
        previous,
        new: now,
        heads: was.heads,
        after: Vec::new(),
    })
}

/// The order a write's actions are recorded in: handoffs, boards, then issues, so after
/// `td review` (a transition plus the handoff it writes) the transition is undone first.
pub(crate) fn record_rank(id: &str) -> u8 {
    match Kind::of_id(id) {
        Some(Kind::Handoff) => 0,
        Some(Kind::Board) => 1,
        _ => 2,
    }
}

/// Writes the top-level fields of `old` back where they differ (a board's name, query,
/// tombstone), but only those that still hold what the action made (`after`): a field another
/// session or machine changed since keeps its value (named in `kept`).
fn restore_fields(
    d: &mut AutoCommit,
    old: &AutoCommit,
    after: Option<&AutoCommit>,
    kept: &mut Vec<String>,
) -> Result<()> {
    let was = doc::flatten(old, &ROOT);
    let now = doc::flatten(d, &ROOT);
    let made = after.map(|a| doc::flatten(a, &ROOT));
    for (k, v) in &was {
        if now.get(k) == Some(v) || k == "updated_at" {
            continue;
        }
        if made.as_ref().is_some_and(|m| m.get(k) == Some(v)) {
            continue; // the action did not change it
        }
        if made.as_ref().is_some_and(|m| m.get(k) != now.get(k)) {
            kept.push(k.clone());
            continue;
        }
        match v {
            Field::Str(s) if TEXT_FIELDS.contains(&k.as_str()) => doc::put_text(d, k, s)?,
            _ => doc::put(d, &ROOT, k, Some(v.clone()))?,
        }
    }
    for k in now.keys().filter(|k| !was.contains_key(*k)) {
        if made.as_ref().is_some_and(|m| !m.contains_key(k)) {
            continue; // added by someone else, not by the action
        }
        if made.as_ref().is_some_and(|m| m.get(k) != now.get(k)) {
            kept.push(k.clone());
            continue;
        }
        doc::put(d, &ROOT, k, None)?;
    }
    Ok(())
}

/// Makes a child map hold the rows `old` held: rows the action added go, rows it changed or
/// removed come back as they were. A row that no longer holds what the action made (`after`:
/// another session or machine changed it since, or added it) is left as it is.
fn restore_children(
    d: &mut AutoCommit,
    old: &AutoCommit,
    after: Option<&AutoCommit>,
    key: &str,
    kept: &mut Vec<String>,
) -> Result<()> {
    let was = rows(old, key);
    let now = rows(d, key);
    let made = after.map(|a| rows(a, key));
    let since = |id: &String| made.as_ref().is_some_and(|m| m.get(id) != now.get(id));
    let untouched = |id: &String| made.as_ref().is_some_and(|m| m.get(id) == was.get(id));
    for id in now.keys().filter(|id| !was.contains_key(*id)) {
        if untouched(id) {
            continue; // added by someone else, not by the action
        }
        if since(id) {
            kept.push(format!("{key}.{id}"));
            continue;
        }
        doc::delete_child(d, key, id)?;
    }
    for (id, row) in &was {
        if now.get(id) != Some(row) {
            if untouched(id) {
                continue; // changed or removed by someone else, not by the action
            }
            if since(id) {
                kept.push(format!("{key}.{id}"));
                continue;
            }
            let cols: Vec<(&str, Field)> =
                row.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            doc::put_child(d, key, id, &cols)?;
        }
    }
    Ok(())
}

fn action_view(r: &rusqlite::Row<'_>) -> rusqlite::Result<ActionView> {
    Ok(ActionView {
        id: r.get(0)?,
        action: r.get(1)?,
        entity_type: r.get(2)?,
        entity_id: r.get(3)?,
        timestamp: r.get(4)?,
        undone: r.get::<_, i64>(5)? != 0,
        kept: Vec::new(),
    })
}

const ACTION_COLUMNS: &str = "id, action_type, entity_type, entity_id, timestamp, undone";

impl Project {
    /// `td last` / `td undo --list`: this session's `n` most recent actions, newest first.
    pub fn last_actions(&self, n: usize) -> Result<Vec<ActionView>> {
        let mut stmt = self.store.conn().prepare(&format!(
            "SELECT {ACTION_COLUMNS} FROM action_log \
             WHERE session_id = ?1 ORDER BY timestamp DESC, rowid DESC LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![self.session.id, n as i64], action_view)?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// `td undo`: takes back this session's latest action not undone yet, as a new change (a
    /// created issue, board or handoff is deleted, a deleted one restored, an edit, a
    /// transition, a dependency, a file link or a board position reverted). `None` when the
    /// session has nothing to undo.
    pub fn undo(&mut self) -> Result<Option<ActionView>> {
        let me = self.session.id.clone();
        let conn = self.store.conn();
        let latest = conn
            .query_row(
                &format!(
                    "SELECT {ACTION_COLUMNS} FROM action_log \
                     WHERE session_id = ?1 AND undone = 0 AND entity_type IN ('issue', 'board', 'handoff') \
                     ORDER BY timestamp DESC, rowid DESC LIMIT 1"
                ),
                [&me],
                action_view,
            )
            .optional()?;
        let Some(mut action) = latest else {
            return Ok(None);
        };
        let previous: String = conn.query_row(
            "SELECT previous_data FROM action_log WHERE id = ?1",
            [&action.id],
            |r| r.get(0),
        )?;
        let made: String = conn.query_row(
            "SELECT new_data FROM action_log WHERE id = ?1",
            [&action.id],
            |r| r.get::<_, Option<String>>(0).map(Option::unwrap_or_default),
        )?;
        let parse = |h: String| -> Vec<ChangeHash> {
            h.split(',')
                .filter(|s| !s.is_empty())
                .filter_map(|s| s.parse().ok())
                .collect()
        };
        let recorded: Option<(String, String)> = conn
            .query_row(
                "SELECT heads, after FROM crdt_action_heads WHERE action_id = ?1",
                [&action.id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let heads: Option<Vec<ChangeHash>> = recorded.as_ref().map(|(h, _)| parse(h.clone()));
        let after_heads: Vec<ChangeHash> = recorded.map(|(_, a)| parse(a)).unwrap_or_default();
        let kind = Kind::of_id(&action.entity_id)
            .filter(|k| UNDOABLE.contains(k))
            .ok_or_else(|| {
                EngineError::InvalidInput(format!(
                    "cannot undo {} of {}",
                    action.action, action.entity_id
                ))
            })?;
        let id = action.entity_id.clone();
        let mut kept: Vec<String> = Vec::new();
        self.store.write_unrecorded(&me, |tx| {
            let created = match &heads {
                Some(h) => h.is_empty(),
                None => previous.is_empty(), // recorded before heads were kept: issues only
            };
            let old = match &heads {
                Some(h) if !h.is_empty() => match tx.doc(&id)? {
                    Some(d) => Some(d.fork_at(h)?),
                    None => None,
                },
                _ => None,
            };
            let after = match tx.doc(&id)? {
                Some(d) if !after_heads.is_empty() => d.fork_at(&after_heads).ok(),
                _ => None,
            };
            let now_row = query::find_issue(tx.conn(), &id)?.map(|i| i.row_json());
            let kept = &mut kept;
            tx.change(&id, |d| {
                if created {
                    // It was created: undoing deletes it (td restore brings an issue back).
                    return doc::put_str(d, "deleted_at", &now_timestamp());
                }
                if kind == Kind::Issue {
                    let was: Value = serde_json::from_str(&previous).unwrap_or(Value::Null);
                    let made: Value = serde_json::from_str(&made).unwrap_or(Value::Null);
                    let now = now_row.as_ref().unwrap_or(&Value::Null);
                    let target = three_way_row(&was, &made, now, kept);
                    doc::put_issue_row(d, &target, now)?;
                } else if let Some(old) = &old {
                    restore_fields(d, old, after.as_ref(), kept)?;
                }
                if let Some(old) = &old {
                    for key in restored_children(kind) {
                        restore_children(d, old, after.as_ref(), key, kept)?;
                    }
                }
                doc::put_str(d, "updated_at", &now_timestamp())
            })?;
            tx.conn().execute(
                "UPDATE action_log SET undone = 1 WHERE id = ?1",
                [&action.id],
            )?;
            Ok(())
        })?;
        action.undone = true;
        kept.sort();
        kept.dedup();
        action.kept = kept;
        Ok(Some(action))
    }
}

/// The issue row an undo writes: each field goes back to what it was before the action only
/// where it still holds the action's value (`made`); a field changed since (by a teammate
/// after a sync, or another session) keeps its current value and is named in `kept`. The
/// workflow unit (status and its stamps) goes back whole or not at all. Without the action's
/// row (an action recorded before it was kept), every field goes back, as before.
fn three_way_row(was: &Value, made: &Value, now: &Value, kept: &mut Vec<String>) -> Value {
    let (Some(was_o), Some(made_o), Some(now_o)) =
        (was.as_object(), made.as_object(), now.as_object())
    else {
        return was.clone();
    };
    let mut target = was_o.clone();
    let same = |a: &serde_json::Map<String, Value>, b: &serde_json::Map<String, Value>, k: &str| {
        a.get(k) == b.get(k)
    };
    let wf_made = doc::WF_KEYS.iter().any(|k| !same(was_o, made_o, k));
    let wf_held = doc::WF_KEYS.iter().all(|k| same(made_o, now_o, k));
    for (k, v) in target.iter_mut() {
        if k == "id" || k == "updated_at" || same(was_o, now_o, k) {
            continue;
        }
        let wf = doc::WF_KEYS.contains(&k.as_str());
        let (changed_by_action, held) = if wf {
            (wf_made, wf_held)
        } else {
            (!same(was_o, made_o, k), same(made_o, now_o, k))
        };
        if !changed_by_action || !held {
            if changed_by_action {
                kept.push(k.clone());
            }
            *v = now_o.get(k).cloned().unwrap_or(Value::Null);
        }
    }
    Value::Object(target)
}
