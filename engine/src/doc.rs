//! Entity documents: one small Automerge document per entity. This module reads and writes
//! their fields; `materialize` turns them into td rows.
//!
//! Layout of a document's root map: one key per td column with the same name (scalars as
//! strings or integers, long prose as Automerge text), plus
//! - `labels`: a map label → ordinal (a set, so concurrent adds and removes merge),
//! - `wf`: the workflow unit (status and its stamps) as one map, replaced whole on every
//!   transition so concurrent transitions never mix,
//! - child maps keyed by link-row id (`deps`, `files`, `positions`, `issues`).

use std::collections::BTreeMap;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ReadDoc, ScalarValue, ScalarValueRef, Value, ValueRef, ROOT};
use sha2::{Digest, Sha256};

use crate::error::{EngineError, Result};

/// A column value as read from a document.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    /// Explicit null (e.g. a cleared `deleted_at`).
    Null,
    /// Integer column.
    Int(i64),
    /// Text column.
    Str(String),
}

/// Keys of the workflow unit, stored together under `wf`.
pub const WF_KEYS: [&str; 7] = [
    "status",
    "implementer_session",
    "reviewer_session",
    "review_requested_by_session",
    "closed_by_session",
    "reviewed_at",
    "closed_at",
];

/// Workflow key (not a td column) marking an approval by the issue's own implementer that td
/// allowed (`--reviewed-by`, `--self-review`), so merges can re-check the review rule.
pub const REVIEW_OVERRIDE: &str = "review_override";

/// Fields stored as Automerge text (character-level merge).
pub const TEXT_FIELDS: [&str; 3] = ["description", "acceptance", "content"];

/// Reads one value of a map, resolving text objects to strings. Unknown object types
/// (written by a newer td) read as `None` and are left untouched.
pub fn read_field(doc: &AutoCommit, obj: &automerge::ObjId, key: &str) -> Option<Field> {
    match doc.get(obj, key).ok()?? {
        (Value::Scalar(s), _) => scalar_field(&s),
        (Value::Object(ObjType::Text), id) => doc.text(&id).ok().map(Field::Str),
        _ => None,
    }
}

fn scalar_field(s: &ScalarValue) -> Option<Field> {
    match s {
        ScalarValue::Null => Some(Field::Null),
        ScalarValue::Str(s) => Some(Field::Str(s.to_string())),
        ScalarValue::Int(i) => Some(Field::Int(*i)),
        ScalarValue::Uint(u) => Some(Field::Int(*u as i64)),
        ScalarValue::Boolean(b) => Some(Field::Int(*b as i64)),
        ScalarValue::Counter(c) => Some(Field::Int(i64::from(c))),
        ScalarValue::F64(f) => Some(Field::Int(*f as i64)),
        _ => None,
    }
}

/// Reads a string field, `""` when absent or null.
pub fn read_str(doc: &AutoCommit, key: &str) -> String {
    match read_field(doc, &ROOT, key) {
        Some(Field::Str(s)) => s,
        Some(Field::Int(i)) => i.to_string(),
        _ => String::new(),
    }
}

/// The id of a nested map under the root, if present.
pub fn child_map(doc: &AutoCommit, key: &str) -> Option<automerge::ObjId> {
    match doc.get(ROOT, key).ok()?? {
        (Value::Object(ObjType::Map), id) => Some(id),
        _ => None,
    }
}

/// Flattens a map object into column → value (text objects become strings, the workflow map
/// is merged in, labels become td's comma-separated string). Nested maps other than `wf` and
/// `labels` are skipped: they are child rows or fields this version does not know. One pass
/// over the map (this runs for every entity materialized).
pub fn flatten(doc: &AutoCommit, obj: &automerge::ObjId) -> BTreeMap<String, Field> {
    let mut out = BTreeMap::new();
    for item in doc.map_range(obj, ..) {
        match (&*item.key, &item.value) {
            ("wf", ValueRef::Object(ObjType::Map)) => {
                for inner in doc.map_range(item.id(), ..) {
                    if WF_KEYS.contains(&&*inner.key) {
                        if let ValueRef::Scalar(v) = &inner.value {
                            if let Some(f) = scalar_ref_field(v) {
                                out.insert(inner.key.to_string(), f);
                            }
                        }
                    }
                }
            }
            ("labels", ValueRef::Object(ObjType::Map)) => {
                let labels = if *obj == ROOT {
                    all_labels(doc)
                } else {
                    labels_of(doc, &item.id())
                };
                out.insert("labels".into(), Field::Str(labels.join(",")));
            }
            (_, ValueRef::Object(ObjType::Text)) => {
                if let Ok(t) = doc.text(item.id()) {
                    out.insert(item.key.to_string(), Field::Str(t));
                }
            }
            (_, ValueRef::Scalar(v)) => {
                if let Some(f) = scalar_ref_field(v) {
                    out.insert(item.key.to_string(), f);
                }
            }
            _ => {}
        }
    }
    out
}

fn scalar_ref_field(s: &ScalarValueRef<'_>) -> Option<Field> {
    match s {
        ScalarValueRef::Null => Some(Field::Null),
        ScalarValueRef::Str(s) => Some(Field::Str(s.to_string())),
        ScalarValueRef::Int(i) => Some(Field::Int(*i)),
        ScalarValueRef::Uint(u) => Some(Field::Int(*u as i64)),
        ScalarValueRef::Boolean(b) => Some(Field::Int(*b as i64)),
        ScalarValueRef::Counter(c) => Some(Field::Int(*c)),
        ScalarValueRef::F64(f) => Some(Field::Int(*f as i64)),
        _ => None,
    }
}

fn nested(doc: &AutoCommit, obj: &automerge::ObjId, key: &str) -> Option<automerge::ObjId> {
    match doc.get(obj, key).ok()?? {
        (Value::Object(ObjType::Map), id) => Some(id),
        _ => None,
    }
}

/// Labels in their stored order (by ordinal, then name).
pub fn labels_of(doc: &AutoCommit, labels: &automerge::ObjId) -> Vec<String> {
    ordered_labels(label_ordinals(doc, labels))
}

/// The entity's labels over every concurrent copy of its `labels` map (the winner's ordinal
/// counts where two copies hold the same label).
pub fn all_labels(doc: &AutoCommit) -> Vec<String> {
    let mut all = BTreeMap::new();
    for map in child_maps(doc, "labels") {
        all.extend(label_ordinals(doc, &map));
    }
    ordered_labels(all)
}

fn label_ordinals(doc: &AutoCommit, labels: &automerge::ObjId) -> BTreeMap<String, i64> {
    doc.map_range(labels, ..)
        .map(|item| {
            let ord = match &item.value {
                ValueRef::Scalar(ScalarValueRef::Int(i)) => *i,
                ValueRef::Scalar(ScalarValueRef::Uint(u)) => *u as i64,
                _ => 0,
            };
            (item.key.to_string(), ord)
        })
        .collect()
}

fn ordered_labels(ordinals: BTreeMap<String, i64>) -> Vec<String> {
    let mut v: Vec<(i64, String)> = ordinals.into_iter().map(|(k, o)| (o, k)).collect();
    v.sort();
    v.into_iter().map(|(_, k)| k).collect()
}

/// Every map object stored under a root key, the winning one last. Normally there is one;
/// when replicas created the map concurrently (each adding a first label, file or edge while
/// apart) Automerge keeps each as a conflicting value of the key, and the rows of every one of
/// them count: readers take the union, writers add to the winner and delete from all. The
/// order is the same on every replica (Automerge's operation order), so the union is too.
pub fn child_maps(doc: &AutoCommit, key: &str) -> Vec<automerge::ObjId> {
    let winner = child_map(doc, key);
    let mut maps: Vec<automerge::ObjId> = doc
        .get_all(ROOT, key)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(v, id)| matches!(v, Value::Object(ObjType::Map)).then_some(id))
        .filter(|id| Some(id) != winner.as_ref())
        .collect();
    maps.extend(winner);
    maps
}

/// The entries of a child map (`deps`, `files`, `positions`, `issues`, `history`): row id →
/// columns, over every concurrent copy of the map (see [`child_maps`]), in row-id order.
pub fn children(doc: &AutoCommit, key: &str) -> Vec<(String, BTreeMap<String, Field>)> {
    let mut rows = BTreeMap::new();
    for map in child_maps(doc, key) {
        for k in doc.keys(&map) {
            if let Some(obj) = nested(doc, &map, &k) {
                rows.insert(k, flatten(doc, &obj));
            }
        }
    }
    rows.into_iter().collect()
}

/// Writes a scalar field; `None` writes an explicit null.
pub fn put(
    doc: &mut AutoCommit,
    obj: &automerge::ObjId,
    key: &str,
    v: Option<Field>,
) -> Result<()> {
    match v {
        None | Some(Field::Null) => doc.put(obj, key, ScalarValue::Null)?,
        Some(Field::Int(i)) => doc.put(obj, key, i)?,
        Some(Field::Str(s)) => doc.put(obj, key, s)?,
    }
    Ok(())
}

/// Writes a string field at the root.
pub fn put_str(doc: &mut AutoCommit, key: &str, v: &str) -> Result<()> {
    put(doc, &ROOT, key, Some(Field::Str(v.to_string())))
}

/// Writes an integer field at the root.
pub fn put_int(doc: &mut AutoCommit, key: &str, v: i64) -> Result<()> {
    put(doc, &ROOT, key, Some(Field::Int(v)))
}

/// Writes a nullable string field at the root (`None` stores null).
pub fn put_opt(doc: &mut AutoCommit, key: &str, v: Option<&str>) -> Result<()> {
    put(doc, &ROOT, key, v.map(|s| Field::Str(s.to_string())))
}

/// Texts up to this many bytes merge character by character (an Automerge text); longer
/// ones are stored as one value (concurrent edits keep one, recorded as a conflict). Automerge
/// keeps about 250 bytes per character while a change is made and 55 once committed, so a
/// 1 MB text would take 300 MB to write and 55 MB every time its document is loaded; as one
/// value it takes a few times its size. 64 KiB is 16 pages of prose: descriptions people edit
/// together are far shorter (docs/merge-rules.md).
pub const TEXT_MERGE_LIMIT: usize = 64 * 1024;

/// The longest text one field may hold: what fits one change record with room for the
/// record's other fields (`record::MAX_CHANGE_BYTES`).
pub const MAX_TEXT_BYTES: usize = crate::record::MAX_CHANGE_BYTES - 32 * 1024;

/// Sets a text field, creating the text object on first write and diffing afterwards so
/// concurrent edits to different parts of the text both survive. A text longer than
/// [`TEXT_MERGE_LIMIT`] is stored as one value; one longer than [`MAX_TEXT_BYTES`] is refused
/// before any change is made.
pub fn put_text(doc: &mut AutoCommit, key: &str, v: &str) -> Result<()> {
    if v.len() > MAX_TEXT_BYTES {
        return Err(EngineError::InvalidInput(format!(
            "{key} is {} KiB, more than the {} KiB a td text field may hold; shorten it, or keep the text in a file and link it ('td link <id> <file>')",
            v.len() / 1024,
            MAX_TEXT_BYTES / 1024
        )));
    }
    if v.len() > TEXT_MERGE_LIMIT {
        doc.put(ROOT, key, v)?;
        return Ok(());
    }
    let obj = match doc.get(ROOT, key)? {
        Some((Value::Object(ObjType::Text), id)) => id,
        _ => doc.put_object(ROOT, key, ObjType::Text)?,
    };
    doc.update_text(&obj, v)?;
    Ok(())
}

/// Replaces the labels set with `labels` (in order), touching only what changed: a label
/// leaves every concurrent copy of the map, a new or moved one goes into the winner.
pub fn put_labels(doc: &mut AutoCommit, labels: &[String]) -> Result<()> {
    let maps = child_maps(doc, "labels");
    let obj = match maps.last() {
        Some(id) => id.clone(),
        None => doc.put_object(ROOT, "labels", ObjType::Map)?,
    };
    let current = all_labels(doc);
    for map in &maps {
        let keys: Vec<String> = doc.keys(map).collect();
        for k in keys {
            if !labels.contains(&k) {
                doc.delete(map, k.as_str())?;
            }
        }
    }
    let mut ordinals = BTreeMap::new();
    for map in &maps {
        ordinals.extend(label_ordinals(doc, map));
    }
    for (i, l) in labels.iter().enumerate() {
        if !current.contains(l) || ordinals.get(l) != Some(&(i as i64)) {
            doc.put(&obj, l.as_str(), i as i64)?;
        }
    }
    Ok(())
}

/// Replaces the workflow unit with a new map holding exactly `wf`.
pub fn put_workflow(doc: &mut AutoCommit, wf: &BTreeMap<String, Field>) -> Result<()> {
    let obj = doc.put_object(ROOT, "wf", ObjType::Map)?;
    for k in WF_KEYS {
        put(doc, &obj, k, wf.get(k).cloned())?;
    }
    if let Some(v) = wf.get(REVIEW_OVERRIDE) {
        put(doc, &obj, REVIEW_OVERRIDE, Some(v.clone()))?;
    }
    Ok(())
}

/// Creates or replaces one child row (`deps`, `files`, …) with the given columns, in the
/// winning copy of the map (see [`child_maps`]).
pub fn put_child(
    doc: &mut AutoCommit,
    map_key: &str,
    row_id: &str,
    cols: &[(&str, Field)],
) -> Result<()> {
    let map = match child_map(doc, map_key) {
        Some(id) => id,
        None => doc.put_object(ROOT, map_key, ObjType::Map)?,
    };
    let row = doc.put_object(&map, row_id, ObjType::Map)?;
    for (k, v) in cols {
        put(doc, &row, k, Some(v.clone()))?;
    }
    Ok(())
}

/// Sets one field of an existing child row (in every copy of the map that holds it); false
/// when the row does not exist.
pub fn put_child_field(
    doc: &mut AutoCommit,
    map_key: &str,
    row_id: &str,
    key: &str,
    v: Option<Field>,
) -> Result<bool> {
    let mut found = false;
    for map in child_maps(doc, map_key) {
        if let Some(row) = nested(doc, &map, row_id) {
            put(doc, &row, key, v.clone())?;
            found = true;
        }
    }
    Ok(found)
}

/// Removes a child row from every copy of the map that holds it; false when it was not there.
pub fn delete_child(doc: &mut AutoCommit, map_key: &str, row_id: &str) -> Result<bool> {
    let mut found = false;
    for map in child_maps(doc, map_key) {
        if doc.get(&map, row_id)?.is_some() {
            doc.delete(&map, row_id)?;
            found = true;
        }
    }
    Ok(found)
}

/// The document's version: a short digest of its heads. Changes whenever any change (local or
/// merged) lands on the document; `--if-match` compares against it.
pub fn version_of(doc: &mut AutoCommit) -> String {
    let mut heads = doc.get_heads();
    heads.sort();
    let mut h = Sha256::new();
    for head in heads {
        h.update(head.0);
    }
    hex::encode(h.finalize())[..16].to_string()
}

/// Writes `was` (an issue row as JSON, td's shape) into the issue's document, field by field
/// where it differs from `now` (the row as it is): `td undo` and `td import --force`.
pub fn put_issue_row(
    d: &mut AutoCommit,
    was: &serde_json::Value,
    now: &serde_json::Value,
) -> Result<()> {
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
            ("labels", serde_json::Value::Array(a)) => {
                let labels: Vec<String> = a
                    .iter()
                    .filter_map(|l| l.as_str().map(String::from))
                    .collect();
                put_labels(d, &labels)?;
            }
            ("description" | "acceptance", serde_json::Value::String(s)) => put_text(d, k, s)?,
            ("minor", serde_json::Value::Bool(b)) => put_int(d, k, *b as i64)?,
            (_, serde_json::Value::String(s)) => put_str(d, k, s)?,
            (_, serde_json::Value::Number(n)) => put_int(d, k, n.as_i64().unwrap_or_default())?,
            (_, serde_json::Value::Null) => put_opt(d, k, None)?,
            _ => {}
        }
    }
    if wf_changed {
        let wf: BTreeMap<String, Field> = WF_KEYS
            .iter()
            .map(|k| {
                let v = match &was[*k] {
                    serde_json::Value::String(s) => Field::Str(s.clone()),
                    _ => Field::Null,
                };
                (k.to_string(), v)
            })
            .collect();
        put_workflow(d, &wf)?;
    }
    Ok(())
}
