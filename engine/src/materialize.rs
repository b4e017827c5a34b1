//! Materialization: turns an entity document into td's rows. A pure function of the document's
//! state, so rebuilding from the log reproduces the tables exactly.

use std::collections::{BTreeMap, HashMap};

use automerge::{AutoCommit, ROOT};
use rusqlite::{params_from_iter, types::Value as SqlValue, Connection};

use crate::doc::{self, Field};
use crate::error::Result;
use crate::model::Kind;

/// The td table an entity kind lives in, and its child tables: (document map key, table,
/// parent-id column).
pub(crate) fn tables_of(
    kind: Kind,
) -> (
    &'static str,
    &'static [(&'static str, &'static str, &'static str)],
) {
    match kind {
        Kind::Issue => (
            "issues",
            &[
                // Every edge the documents hold; `settle_dependencies` decides which become
                // td's `issue_dependencies` rows (no cycles).
                ("deps", "crdt_dep_edges", "issue_id"),
                ("files", "issue_files", "issue_id"),
                // Which sessions created, started, reviewed or closed the issue: the facts
                // the review policy decides on (`review_policy.rs`).
                ("history", "issue_session_history", "issue_id"),
            ],
        ),
        Kind::Board => (
            "boards",
            &[("positions", "board_issue_positions", "board_id")],
        ),
        Kind::WorkSession => (
            "work_sessions",
            &[("issues", "work_session_issues", "work_session_id")],
        ),
        Kind::Note => ("notes", &[]),
        Kind::Log => ("logs", &[]),
        Kind::Comment => ("comments", &[]),
        Kind::Handoff => ("handoffs", &[]),
        Kind::Review => ("issue_reviews", &[]),
        Kind::Roster => ("crdt_roster", &[("members", "crdt_members", "roster_id")]),
    }
}

/// How a document's rows are written once some document in the project has clashed ids
/// (merge rule 8, `lineage.rs`).
#[derive(Debug, Clone)]
pub(crate) struct ClashContext {
    /// The machine that created the entity being materialized (references it wrote to a
    /// clashed id mean that machine's own entity).
    pub(crate) author: Vec<u8>,
    /// The entity is a renamed lineage: its child rows get ids of their own, so they never
    /// collide with the rows of the entity that kept the id.
    pub(crate) renamed: Option<String>,
}

impl ClashContext {
    fn map_references(
        &self,
        conn: &Connection,
        fields: &mut BTreeMap<String, Field>,
    ) -> Result<()> {
        for col in crate::lineage::REFERENCE_COLUMNS {
            if let Some(Field::Str(v)) = fields.get(col) {
                if let Some(mapped) = crate::lineage::resolve_reference(conn, v, &self.author)? {
                    fields.insert(col.to_string(), Field::Str(mapped));
                }
            }
        }
        Ok(())
    }

    fn child_id(&self, row_id: &str) -> String {
        match &self.renamed {
            Some(entity) => {
                let prefix = row_id.find('_').map(|i| &row_id[..=i]).unwrap_or("");
                crate::model::link_id(prefix, &format!("{row_id}|{entity}"))
            }
            None => row_id.to_string(),
        }
    }
}

/// Deletes an entity's own row and its child rows.
pub(crate) fn remove_rows(conn: &Connection, kind: Kind, id: &str) -> Result<()> {
    let (table, children) = tables_of(kind);
    for (_, child_table, parent_col) in children {
        conn.prepare_cached(&format!(
            "DELETE FROM {child_table} WHERE {parent_col} = ?1"
        ))?
        .execute([id])?;
    }
    conn.prepare_cached(&format!("DELETE FROM {table} WHERE id = ?1"))?
        .execute([id])?;
    Ok(())
}

/// A replica that has not seen an id clash reads an explicit reference (`id#root`, written
/// by a replica that has) as the plain id.
fn strip_explicit_refs(fields: &mut BTreeMap<String, Field>) {
    for col in crate::lineage::REFERENCE_COLUMNS {
        if let Some(Field::Str(v)) = fields.get_mut(col) {
            if let Some((id, _)) = crate::lineage::split_ref(v) {
                *v = id.to_string();
            }
        }
    }
}

/// One column of a td table, as `PRAGMA table_info` reports it.
#[derive(Debug, Clone)]
struct Column {
    name: String,
    not_null: bool,
    default: Option<String>,
}

/// A foreign key of a td table: `column` must name a row of `table`.
#[derive(Debug, Clone)]
struct ForeignKey {
    column: String,
    table: String,
    target: String,
}

/// Column and foreign-key metadata per table, read once per connection.
#[derive(Default)]
pub(crate) struct Columns {
    cache: HashMap<&'static str, Vec<Column>>,
    fks: HashMap<&'static str, Vec<ForeignKey>>,
    /// Issues whose dependency edges changed in this transaction.
    pub(crate) deps_dirty: std::collections::BTreeSet<String>,
    /// Whether any id in the project has clashed (`lineage.rs`), asked once per transaction.
    clashes: Option<bool>,
    /// Whether `crdt_pending_refs` may hold rows, asked once per transaction.
    pending_refs: Option<bool>,
    /// Upsert statements by table and set of present columns (bit per column).
    upserts: HashMap<(&'static str, u128), String>,
}

impl Columns {
    /// Whether any id has clashed; cached for the transaction (the common answer is no).
    pub(crate) fn clashes(&mut self, conn: &Connection) -> Result<bool> {
        if self.clashes.is_none() {
            self.clashes = Some(crate::lineage::any(conn)?);
        }
        Ok(self.clashes == Some(true))
    }

    /// Whether some document may be waiting for an entity (`crdt_pending_refs` has rows, or
    /// got one in this transaction).
    pub(crate) fn pending_refs(&mut self, conn: &Connection) -> Result<bool> {
        if self.pending_refs.is_none() {
            let any = conn
                .prepare_cached("SELECT 1 FROM crdt_pending_refs LIMIT 1")?
                .exists([])?;
            self.pending_refs = Some(any);
        }
        Ok(self.pending_refs == Some(true))
    }

    /// Notes that a pending reference was just recorded.
    pub(crate) fn set_pending_refs(&mut self) {
        self.pending_refs = Some(true);
    }

    /// Forgets the cached answer (a new transaction: another process may have written).
    pub(crate) fn forget_pending_refs(&mut self) {
        self.pending_refs = None;
    }

    /// Notes that an id clash was just registered, or forgets the cached answer (`None`).
    pub(crate) fn set_clashes(&mut self, known: Option<bool>) {
        self.clashes = known;
    }

    fn foreign_keys(&mut self, conn: &Connection, table: &'static str) -> Result<&[ForeignKey]> {
        if !self.fks.contains_key(table) {
            let mut stmt = conn.prepare(&format!("PRAGMA foreign_key_list({table})"))?;
            let fks = stmt
                .query_map([], |r| {
                    Ok(ForeignKey {
                        table: r.get(2)?,
                        column: r.get(3)?,
                        target: r.get(4)?,
                    })
                })?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            self.fks.insert(table, fks);
        }
        Ok(&self.fks[table])
    }

    fn get(&mut self, conn: &Connection, table: &'static str) -> Result<&[Column]> {
        if !self.cache.contains_key(table) {
            let mut stmt = conn.prepare(&format!("PRAGMA table_info({table})"))?;
            let cols = stmt
                .query_map([], |r| {
                    Ok(Column {
                        name: r.get(1)?,
                        not_null: r.get::<_, i64>(3)? != 0,
                        default: r.get(4)?,
                    })
                })?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            self.cache.insert(table, cols);
        }
        Ok(&self.cache[table])
    }
}

/// Writes the rows of one entity document: its own row (upsert) and its child rows
/// (replaced). Fields the table does not have are ignored (newer writers); columns the
/// document lacks keep their defaults (older writers); a null in a column whose default is
/// `''` becomes `''`. A row that references an entity not present yet (a change that arrived
/// before the one creating its target) is left out; the ids it waits for are returned so the
/// caller can materialize the document again when they arrive.
pub(crate) fn materialize(
    conn: &Connection,
    cols: &mut Columns,
    id: &str,
    kind: Kind,
    doc: &AutoCommit,
    wf_override: Option<&serde_json::Map<String, serde_json::Value>>,
    clash: Option<&ClashContext>,
) -> Result<Vec<String>> {
    let (table, children) = tables_of(kind);
    let mut missing = Vec::new();
    let mut fields = doc::flatten(doc, &ROOT);
    match clash {
        Some(c) => c.map_references(conn, &mut fields)?,
        None => strip_explicit_refs(&mut fields),
    }
    if let Some(wf) = wf_override {
        // Rule 5 set aside the workflow value Automerge keeps (see conflicts.rs).
        for k in doc::WF_KEYS {
            let f = match wf.get(k) {
                Some(serde_json::Value::String(s)) => Field::Str(s.clone()),
                Some(serde_json::Value::Number(n)) => Field::Int(n.as_i64().unwrap_or(0)),
                _ => Field::Null,
            };
            fields.insert(k.to_string(), f);
        }
    }
    fields.insert("id".into(), Field::Str(id.to_string()));
    if !refs_present(conn, cols, table, &fields, &mut missing)? {
        return Ok(missing);
    }
    if matches!(fields.get("deleted_at"), Some(Field::Str(_)))
        && !cols
            .get(conn, table)?
            .iter()
            .any(|c| c.name == "deleted_at")
    {
        // A tombstone in a table td deletes rows from (boards): the row and its children go.
        remove_rows(conn, kind, id)?;
        return Ok(missing);
    }
    let existed = conn
        .prepare_cached(&format!("SELECT 1 FROM {table} WHERE id = ?1"))?
        .exists([id])?;
    if kind == Kind::Issue
        && !existed
        && conn
            .prepare_cached("SELECT 1 FROM crdt_dep_edges WHERE depends_on_id = ?1")?
            .exists([id])?
    {
        cols.deps_dirty.insert(id.to_string()); // edges were waiting for this issue
    }
    upsert(conn, cols, table, &fields)?;
    for (map_key, child_table, parent_col) in children {
        let rows = doc::children(doc, map_key);
        if rows.is_empty() && (!existed || doc::child_maps(doc, map_key).is_empty()) {
            // Nothing to replace: a new entity has no child rows, and child rows come only
            // from this map, so a document that never had it has none either.
            continue;
        }
        let before: Vec<String> = if *child_table == "crdt_dep_edges" {
            edge_ids(conn, id)?
        } else {
            Vec::new()
        };
        conn.prepare_cached(&format!(
            "DELETE FROM {child_table} WHERE {parent_col} = ?1"
        ))?
        .execute([id])?;
        for (row_id, mut row) in rows {
            let row_id = match clash {
                Some(c) => {
                    c.map_references(conn, &mut row)?;
                    c.child_id(&row_id)
                }
                None => {
                    strip_explicit_refs(&mut row);
                    row_id
                }
            };
            row.insert("id".into(), Field::Str(row_id));
            row.insert(parent_col.to_string(), Field::Str(id.to_string()));
            if refs_present(conn, cols, child_table, &row, &mut missing)? {
                upsert(conn, cols, child_table, &row)?;
            }
        }
        if *child_table == "crdt_dep_edges" && edge_ids(conn, id)? != before {
            cols.deps_dirty.insert(id.to_string());
        }
    }
    Ok(missing)
}

fn edge_ids(conn: &Connection, issue: &str) -> Result<Vec<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT id FROM crdt_dep_edges WHERE issue_id = ?1 ORDER BY id")?;
    let rows = stmt.query_map([issue], |r| r.get(0))?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// Rebuilds td's `issue_dependencies` rows for the part of the dependency graph touched in
/// this transaction. Concurrent edges can close a cycle that neither machine could see; every
/// replica then leaves out the same edges: edges are taken in id order and an edge that would
/// close a cycle is left out and recorded as a `dependency` conflict. The choice depends only
/// on the set of edges, never on arrival order.
pub(crate) fn settle_dependencies(conn: &Connection, cols: &mut Columns) -> Result<()> {
    if cols.deps_dirty.is_empty() {
        return Ok(());
    }
    // The connected component(s) around the touched issues.
    let mut component: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    let mut stack: Vec<String> = std::mem::take(&mut cols.deps_dirty).into_iter().collect();
    while let Some(n) = stack.pop() {
        if !component.insert(n.clone()) {
            continue;
        }
        let mut stmt = conn.prepare_cached(
            "SELECT depends_on_id FROM crdt_dep_edges WHERE issue_id = ?1 UNION SELECT issue_id FROM crdt_dep_edges WHERE depends_on_id = ?1",
        )?;
        let next: Vec<String> = stmt
            .query_map([&n], |r| r.get(0))?
            .collect::<std::result::Result<_, _>>()?;
        stack.extend(next.into_iter().filter(|x| !component.contains(x)));
    }
    let mut edges: Vec<(String, String, String, String)> = Vec::new();
    for n in &component {
        let mut stmt = conn.prepare_cached("SELECT id, issue_id, depends_on_id, relation_type FROM crdt_dep_edges WHERE issue_id = ?1")?;
        let rows = stmt.query_map([n], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        for e in rows {
            edges.push(e?);
        }
    }
    edges.sort();
    let mut graph: HashMap<String, Vec<String>> = HashMap::new();
    let reaches = |graph: &HashMap<String, Vec<String>>, from: &str, to: &str| {
        let mut seen = std::collections::HashSet::new();
        let mut stack = vec![from.to_string()];
        while let Some(n) = stack.pop() {
            if n == to {
                return true;
            }
            if seen.insert(n.clone()) {
                stack.extend(graph.get(&n).into_iter().flatten().cloned());
            }
        }
        false
    };
    for n in &component {
        conn.prepare_cached("DELETE FROM issue_dependencies WHERE issue_id = ?1")?
            .execute([n])?;
        conn.prepare_cached(
            "DELETE FROM crdt_conflicts WHERE entity = ?1 AND field = 'dependency'",
        )?
        .execute([n])?;
    }
    for (id, from, to, rel) in edges {
        let exists = |x: &str| {
            conn.prepare_cached("SELECT 1 FROM issues WHERE id = ?1")
                .and_then(|mut s| s.exists([x]))
        };
        if !exists(&from)? || !exists(&to)? {
            continue; // waits for the issue to arrive
        }
        if rel == "depends_on" && reaches(&graph, &to, &from) {
            let edge = serde_json::json!({"issue_id": from, "depends_on_id": to});
            conn.prepare_cached(
                "INSERT OR REPLACE INTO crdt_conflicts(id, entity, field, kept, kept_op, kept_actor, kept_time, lost, lost_op, lost_actor, lost_time, resolved_by) \
                 VALUES (?1, ?2, 'dependency', 'null', '', x'', 0, ?3, ?4, x'', 0, NULL)",
            )?
            .execute(rusqlite::params![format!("cf-{}", &id[4..14.min(id.len())]), from, edge.to_string(), id])?;
            continue;
        }
        if rel == "depends_on" {
            graph.entry(from.clone()).or_default().push(to.clone());
        }
        conn.prepare_cached(
            "INSERT OR IGNORE INTO issue_dependencies(id, issue_id, depends_on_id, relation_type) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(rusqlite::params![id, from, to, rel])?;
    }
    Ok(())
}

/// True when every foreign key of the row names an existing row; otherwise records the
/// missing ids.
fn refs_present(
    conn: &Connection,
    cols: &mut Columns,
    table: &'static str,
    fields: &BTreeMap<String, Field>,
    missing: &mut Vec<String>,
) -> Result<bool> {
    let mut ok = true;
    for fk in cols.foreign_keys(conn, table)?.to_vec() {
        let Some(Field::Str(v)) = fields.get(&fk.column) else {
            continue;
        };
        if v.is_empty() {
            continue;
        }
        let exists = conn
            .prepare_cached(&format!(
                "SELECT 1 FROM {} WHERE {} = ?1",
                fk.table, fk.target
            ))?
            .exists([v])?;
        if !exists {
            missing.push(v.clone());
            ok = false;
        }
    }
    Ok(ok)
}

fn upsert(
    conn: &Connection,
    cols: &mut Columns,
    table: &'static str,
    fields: &BTreeMap<String, Field>,
) -> Result<()> {
    let columns = cols.get(conn, table)?;
    let mut names = Vec::new();
    let mut values: Vec<SqlValue> = Vec::new();
    let mut mask = 0u128;
    for (i, c) in columns.iter().enumerate() {
        let Some(f) = fields.get(&c.name) else {
            continue;
        };
        mask |= 1u128 << (i % 128);
        let v = match f {
            Field::Int(i) => SqlValue::Integer(*i),
            Field::Str(s) => SqlValue::Text(s.clone()),
            Field::Null if c.default.as_deref() == Some("''") || c.not_null => {
                match c.default.as_deref() {
                    Some(d) if d.parse::<i64>().is_ok() => {
                        SqlValue::Integer(d.parse().unwrap_or(0))
                    }
                    _ => SqlValue::Text(String::new()),
                }
            }
            Field::Null => SqlValue::Null,
        };
        names.push(i);
        values.push(v);
    }
    // The statement text depends only on which columns are present: build it once per set.
    if let Some(sql) = cols.upserts.get(&(table, mask)) {
        conn.prepare_cached(sql)?
            .execute(params_from_iter(values))?;
        return Ok(());
    }
    let columns = cols.get(conn, table)?;
    let names: Vec<&str> = names.iter().map(|&i| columns[i].name.as_str()).collect();
    let placeholders: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
    let updates: Vec<String> = names
        .iter()
        .filter(|n| **n != "id")
        .map(|n| format!("{n}=excluded.{n}"))
        .collect();
    let sql = if updates.is_empty() {
        format!(
            "INSERT INTO {table} ({}) VALUES ({}) ON CONFLICT(id) DO NOTHING",
            names.join(","),
            placeholders.join(",")
        )
    } else {
        format!(
            "INSERT INTO {table} ({}) VALUES ({}) ON CONFLICT(id) DO UPDATE SET {}",
            names.join(","),
            placeholders.join(","),
            updates.join(",")
        )
    };
    conn.prepare_cached(&sql)?
        .execute(params_from_iter(values))?;
    cols.upserts.insert((table, mask), sql);
    Ok(())
}
