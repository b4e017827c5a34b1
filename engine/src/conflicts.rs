//! Visible conflicts: which concurrent writes to the same field were overwritten, derived from
//! an entity document's full history, so every replica computes the same set whatever the
//! order in which changes arrived.
//!
//! Two operations on the same field conflict when neither was made with knowledge of the other
//! (neither is in the other's predecessor closure). The one with the greater operation id is
//! kept (Automerge's deterministic rule); each other op is recorded as overwritten, against the
//! greatest op it was concurrent with. A conflict is resolved once a later operation has seen
//! both (`td sync resolve` writes exactly such an operation).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use automerge::AutoCommit;
use rusqlite::{params, Connection};
use serde::Serialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::doc::WF_KEYS;
use crate::error::Result;

/// Root keys whose concurrent writes are merged element-wise (never a field conflict), and
/// bookkeeping timestamps every edit touches (a concurrent pair there is not news).
const MERGED_KEYS: [&str; 7] = [
    "labels",
    "deps",
    "files",
    "history",
    "positions",
    "issues",
    "updated_at",
];

/// An operation id: (counter, actor bytes); ordered as Automerge orders them.
type OpKey = (u64, Vec<u8>);

struct FieldOp {
    id: OpKey,
    pred: Vec<OpKey>,
    value: Value,
    time: i64,
}

struct Row {
    id: String,
    field: String,
    kept: Value,
    kept_op: OpKey,
    kept_time: i64,
    lost: Value,
    lost_op: OpKey,
    lost_time: i64,
    resolved_by: Option<String>,
}

fn op_str(id: &OpKey) -> String {
    format!("{}@{}", id.0, hex::encode(&id.1))
}

fn scalar_json(v: &automerge::ScalarValue) -> Value {
    use automerge::ScalarValue as S;
    match v {
        S::Str(s) => Value::from(s.to_string()),
        S::Int(i) => Value::from(*i),
        S::Uint(u) => Value::from(*u),
        S::Boolean(b) => Value::from(*b),
        S::F64(f) => Value::from(*f),
        S::Null => Value::Null,
        other => Value::from(other.to_string()),
    }
}

fn wf_str<'a>(wf: &'a Value, key: &str) -> &'a str {
    wf.get(key).and_then(Value::as_str).unwrap_or("")
}

/// A rule that workflow state `w` breaks when materialized over the concurrent state `basis`
/// (rule 5: td's rules re-checked on the merged state).
enum Broken {
    /// The status change is not one td allows from `basis`.
    Transition(String),
    /// An approval by a session that implemented the issue in `basis`, with no recorded
    /// `--reviewed-by` / `--self-review`.
    SelfApproval(String),
}

fn broken_over(w: &Value, basis: &Value) -> Option<Broken> {
    use crate::model::Status;
    let (Ok(to), Ok(from)) = (
        Status::parse(wf_str(w, "status")),
        Status::parse(wf_str(basis, "status")),
    ) else {
        return None; // not a workflow value (a resolution's placeholder)
    };
    let reviewer = wf_str(w, "reviewer_session");
    let approval = to == Status::Closed
        && !reviewer.is_empty()
        && reviewer != wf_str(basis, "reviewer_session");
    if approval
        && reviewer == wf_str(basis, "implementer_session")
        && wf_str(w, crate::doc::REVIEW_OVERRIDE).is_empty()
    {
        return Some(Broken::SelfApproval(format!(
            "approval by session {reviewer}, which implemented the issue concurrently, without --reviewed-by or --self-review"
        )));
    }
    if to != from && !from.can_transition(to) {
        return Some(Broken::Transition(format!(
            "{} → {} is not a valid transition from the merged state",
            from.as_str(),
            to.as_str()
        )));
    }
    None
}

/// Rule 5 over the concurrent workflow values `cands` (ascending op id; the last is what
/// Automerge keeps). Each value is checked against every other as the state it would replace.
/// Kept: a value breaking no rule, else one breaking only transition rules (fewest first),
/// never an approval that breaks the review rule unless all do; ties go to the greater op id.
/// Returns the kept index and, for every greater value set aside, the rule it broke.
fn choose_workflow(cands: &[Value]) -> (usize, Vec<(usize, String)>) {
    let verdicts: Vec<Vec<Broken>> = (0..cands.len())
        .map(|i| {
            (0..cands.len())
                .filter(|&j| j != i)
                .filter_map(|j| broken_over(&cands[i], &cands[j]))
                .collect()
        })
        .collect();
    let score = |i: usize| {
        let self_approval = verdicts[i]
            .iter()
            .any(|b| matches!(b, Broken::SelfApproval(_)));
        (self_approval, verdicts[i].len(), std::cmp::Reverse(i))
    };
    let Some(chosen) = (0..cands.len()).min_by_key(|&i| score(i)) else {
        return (0, Vec::new());
    };
    let reason = |i: usize| {
        let b = verdicts[i]
            .iter()
            .find(|b| matches!(b, Broken::SelfApproval(_)))
            .or(verdicts[i].first());
        match b {
            Some(Broken::SelfApproval(r)) | Some(Broken::Transition(r)) => r.clone(),
            None => "set aside by rule 5".to_string(),
        }
    };
    let rejected = (chosen + 1..cands.len()).map(|i| (i, reason(i))).collect();
    (chosen, rejected)
}

/// Recomputes the conflicts of one entity from its document's history and stores them.
/// Returns the workflow state to materialize when rule 5 sets aside the one Automerge keeps.
pub(crate) fn refresh(
    conn: &Connection,
    entity: &str,
    doc: &mut AutoCommit,
) -> Result<Option<Map<String, Value>>> {
    use automerge::legacy::{Key, ObjectId, OpType};
    let changes = doc.get_changes(&[]);
    let mut by_key: BTreeMap<String, Vec<FieldOp>> = BTreeMap::new();
    // Fields written inside objects created by a root op (the workflow map, text content).
    let mut object_fields: HashMap<OpKey, Map<String, Value>> = HashMap::new();
    for c in &changes {
        let ex = c.decode();
        let actor = ex.actor_id.to_bytes().to_vec();
        for (i, op) in ex.operations.iter().enumerate() {
            let id: OpKey = (ex.start_op.get() + i as u64, actor.clone());
            let pred: Vec<OpKey> = op
                .pred
                .iter()
                .map(|p| (p.0, p.1.to_bytes().to_vec()))
                .collect();
            match (&op.obj, &op.key) {
                (ObjectId::Root, Key::Map(k)) => {
                    if MERGED_KEYS.contains(&k.as_str()) {
                        continue;
                    }
                    let value = match &op.action {
                        OpType::Put(v) => scalar_json(v),
                        OpType::Make(t) => json!({ "object": t.to_string() }),
                        _ => continue,
                    };
                    by_key.entry(k.to_string()).or_default().push(FieldOp {
                        id,
                        pred,
                        value,
                        time: ex.time,
                    });
                }
                (ObjectId::Id(parent), Key::Map(k)) => {
                    if let OpType::Put(v) = &op.action {
                        let parent: OpKey = (parent.0, parent.1.to_bytes().to_vec());
                        object_fields
                            .entry(parent)
                            .or_default()
                            .insert(k.to_string(), scalar_json(v));
                    }
                }
                _ => {}
            }
        }
    }
    let mut rows = Vec::new();
    let mut wf_override = None;
    for (field, ops) in by_key {
        if ops.len() < 2 {
            continue;
        }
        // Predecessor closure within this field.
        let index: HashMap<&OpKey, usize> =
            ops.iter().enumerate().map(|(i, o)| (&o.id, i)).collect();
        let mut seen: Vec<BTreeSet<usize>> = Vec::with_capacity(ops.len());
        for o in &ops {
            let mut set = BTreeSet::new();
            let mut stack: Vec<usize> = o
                .pred
                .iter()
                .filter_map(|p| index.get(p).copied())
                .collect();
            while let Some(i) = stack.pop() {
                if set.insert(i) {
                    stack.extend(ops[i].pred.iter().filter_map(|p| index.get(p).copied()));
                }
            }
            seen.push(set);
        }
        let concurrent =
            |a: usize, b: usize| a != b && !seen[a].contains(&b) && !seen[b].contains(&a);
        let value_of = |o: &FieldOp| -> Value {
            match object_fields.get(&o.id) {
                Some(fields) if field == "wf" => Value::Object(
                    fields
                        .iter()
                        .filter(|(k, _)| {
                            WF_KEYS.contains(&k.as_str())
                                || k.as_str() == crate::doc::REVIEW_OVERRIDE
                        })
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                ),
                _ => o.value.clone(),
            }
        };
        let first_row = rows.len();
        for (l, lost) in ops.iter().enumerate() {
            let Some(k) = (0..ops.len())
                .filter(|&k| concurrent(l, k) && ops[k].id > lost.id)
                .max_by(|&a, &b| ops[a].id.cmp(&ops[b].id))
            else {
                continue;
            };
            let kept = &ops[k];
            let resolver = (0..ops.len())
                .filter(|&w| seen[w].contains(&l) && seen[w].contains(&k))
                .min_by(|&a, &b| ops[a].id.cmp(&ops[b].id));
            rows.push(Row {
                id: conflict_id(entity, &field, &lost.id),
                field: field.clone(),
                kept: value_of(kept),
                kept_op: kept.id.clone(),
                kept_time: kept.time,
                lost: value_of(lost),
                lost_op: lost.id.clone(),
                lost_time: lost.time,
                resolved_by: resolver.map(|w| op_str(&ops[w].id)),
            });
        }
        if field != "wf" {
            continue;
        }
        // Rule 5 over the current (not superseded) workflow values.
        let heads: Vec<usize> = {
            let mut h: Vec<usize> = (0..ops.len())
                .filter(|&i| !(0..ops.len()).any(|w| seen[w].contains(&i)))
                .collect();
            h.sort_by(|&a, &b| ops[a].id.cmp(&ops[b].id));
            h
        };
        let values: Vec<Value> = heads.iter().map(|&i| value_of(&ops[i])).collect();
        let (chosen, rejected) = choose_workflow(&values);
        if rejected.is_empty() {
            continue;
        }
        let keep = &ops[heads[chosen]];
        let kept_value = values[chosen].clone();
        let wf_rows = &mut rows[first_row..];
        for r in wf_rows.iter_mut() {
            if rejected.iter().any(|(i, _)| ops[heads[*i]].id == r.kept_op) {
                r.kept = kept_value.clone();
                r.kept_op = keep.id.clone();
                r.kept_time = keep.time;
            }
        }
        rows.retain(|r| !(r.field == "wf" && r.lost_op == keep.id));
        for (i, reason) in rejected {
            let lost = &ops[heads[i]];
            let mut lost_value = values[i].clone();
            if let Value::Object(m) = &mut lost_value {
                m.insert("rejected_because".into(), Value::from(reason));
            }
            rows.retain(|r| !(r.field == "wf" && r.lost_op == lost.id));
            rows.push(Row {
                id: conflict_id(entity, "wf", &lost.id),
                field: "wf".into(),
                kept: kept_value.clone(),
                kept_op: keep.id.clone(),
                kept_time: keep.time,
                lost: lost_value,
                lost_op: lost.id.clone(),
                lost_time: lost.time,
                resolved_by: None,
            });
        }
        if let Value::Object(m) = kept_value {
            wf_override = Some(m);
        }
    }
    conn.prepare_cached("DELETE FROM crdt_conflicts WHERE entity = ?1 AND field != 'id'")?
        .execute([entity])?;
    for r in rows {
        conn.prepare_cached(
            "INSERT OR REPLACE INTO crdt_conflicts(id, entity, field, kept, kept_op, kept_actor, kept_time, lost, lost_op, lost_actor, lost_time, resolved_by) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?
        .execute(params![
            r.id,
            entity,
            r.field,
            r.kept.to_string(),
            op_str(&r.kept_op),
            r.kept_op.1,
            r.kept_time,
            r.lost.to_string(),
            op_str(&r.lost_op),
            r.lost_op.1,
            r.lost_time,
            r.resolved_by
        ])?;
    }
    Ok(wf_override)
}

/// A conflict's id: stable on every replica, derived from the overwritten operation.
fn conflict_id(entity: &str, field: &str, lost: &OpKey) -> String {
    format!(
        "cf-{}",
        &hex::encode(Sha256::digest(format!("{entity}|{field}|{}", op_str(lost))))[..10]
    )
}

/// One side of a conflict: a value and who wrote it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConflictSide {
    /// The value (a workflow conflict's value is the whole workflow unit).
    pub value: Value,
    /// The session that wrote it.
    pub session: Option<String>,
    /// The machine that wrote it (fingerprint).
    pub machine: String,
    /// The Automerge operation id.
    pub op: String,
    /// When it was written.
    pub time: Option<String>,
}

/// One recorded conflict, as `td sync conflicts` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Conflict {
    /// `cf-…`: stable on every replica.
    pub id: String,
    /// The entity id.
    pub entity: String,
    /// The field (`wf` is the workflow transition: status and its stamps).
    pub field: String,
    /// Why the overwritten value lost, when a td rule decided it (merge rule 5).
    pub reason: Value,
    /// The value that won.
    pub kept: ConflictSide,
    /// The value that was overwritten.
    pub overwritten: ConflictSide,
    /// Whether a later change settled it.
    pub resolved: bool,
    /// The session that settled it.
    pub resolved_by: Option<String>,
}

impl Conflict {
    /// The JSON `td sync conflicts --json` prints.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Conflicts, optionally only unresolved ones, optionally for one entity, optionally only
/// those whose overwritten write is newer than `since` (unix seconds); deterministic order.
pub fn list(
    conn: &Connection,
    all: bool,
    entity: Option<&str>,
    since: Option<i64>,
) -> Result<Vec<Conflict>> {
    let mut stmt = conn.prepare(
        "SELECT c.id, c.entity, c.field, c.kept, c.kept_op, c.kept_time, ka.session_id, ka.author, \
                c.lost, c.lost_op, c.lost_time, la.session_id, la.author, c.resolved_by \
         FROM crdt_conflicts c \
         LEFT JOIN crdt_actors ka ON ka.actor = c.kept_actor \
         LEFT JOIN crdt_actors la ON la.actor = c.lost_actor \
         WHERE (?1 OR c.resolved_by IS NULL) AND (?2 IS NULL OR c.entity = ?2) AND (?3 IS NULL OR c.lost_time >= ?3) \
         ORDER BY c.entity, c.field, c.id",
    )?;
    let rows = stmt.query_map(params![all, entity, since], |r| {
        let parse = |s: String| serde_json::from_str::<Value>(&s).unwrap_or(Value::Null);
        let machine = |k: Option<Vec<u8>>| {
            k.and_then(|k| <[u8; 32]>::try_from(k).ok())
                .map(|k| crate::identity::fingerprint_of(&k))
                .unwrap_or_default()
        };
        let time = |t: i64| {
            chrono::DateTime::from_timestamp(t, 0)
                .map(|d| d.format("%Y-%m-%d %H:%M:%SZ").to_string())
        };
        let id: String = r.get(0)?;
        let entity: String = r.get(1)?;
        let field: String = r.get(2)?;
        let kept = parse(r.get(3)?);
        let overwritten = parse(r.get(8)?);
        let resolved_by: Option<String> = r.get(13)?;
        let reason = overwritten
            .get("rejected_because")
            .cloned()
            .unwrap_or(Value::Null);
        Ok(Conflict {
            id,
            entity,
            field,
            reason,
            kept: ConflictSide {
                value: kept,
                session: r.get(6)?,
                machine: machine(r.get(7)?),
                op: r.get(4)?,
                time: time(r.get(5)?),
            },
            overwritten: ConflictSide {
                value: overwritten,
                session: r.get(11)?,
                machine: machine(r.get(12)?),
                op: r.get(9)?,
                time: time(r.get(10)?),
            },
            resolved: resolved_by.is_some(),
            resolved_by,
        })
    })?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// The ids of every unresolved conflict (the baseline [`recorded_since`] compares with).
pub fn unresolved_ids(conn: &Connection) -> Result<std::collections::BTreeSet<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT id FROM crdt_conflicts WHERE resolved_by IS NULL")?;
    let ids = stmt.query_map([], |r| r.get::<_, String>(0))?;
    Ok(ids.collect::<std::result::Result<_, _>>()?)
}

/// Unresolved conflicts that were not in `before`: what an apply just recorded.
pub fn recorded_since(
    conn: &Connection,
    before: &std::collections::BTreeSet<String>,
) -> Result<Vec<String>> {
    Ok(unresolved_ids(conn)?
        .into_iter()
        .filter(|id| !before.contains(id))
        .collect())
}

/// Unresolved conflicts in the whole project.
pub fn count_unresolved(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT count(*) FROM crdt_conflicts WHERE resolved_by IS NULL",
        [],
        |r| r.get(0),
    )?)
}

/// How `td sync resolve` settles a conflict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Keep the value that won.
    Kept,
    /// Restore the value that was overwritten.
    Overwritten,
    /// Set this value instead.
    Value(String),
}
