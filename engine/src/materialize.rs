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
pub fn tables_of(
    kind: Kind,
) -> (
    &'static str,
    &'static [(&'static str, &'static str, &'static str)],
) {
    match kind {
        Kind::Issue => (
            "issues",
            &[
                ("deps", "issue_dependencies", "issue_id"),
                ("files", "issue_files", "issue_id"),
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
pub struct Columns {
    cache: HashMap<&'static str, Vec<Column>>,
    fks: HashMap<&'static str, Vec<ForeignKey>>,
}

impl Columns {
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
pub fn materialize(
    conn: &Connection,
    cols: &mut Columns,
    id: &str,
    kind: Kind,
    doc: &AutoCommit,
) -> Result<Vec<String>> {
    let (table, children) = tables_of(kind);
    let mut missing = Vec::new();
    let mut fields = doc::flatten(doc, &ROOT);
    fields.insert("id".into(), Field::Str(id.to_string()));
    if !refs_present(conn, cols, table, &fields, &mut missing)? {
        return Ok(missing);
    }
    upsert(conn, cols, table, &fields)?;
    for (map_key, child_table, parent_col) in children {
        conn.prepare_cached(&format!(
            "DELETE FROM {child_table} WHERE {parent_col} = ?1"
        ))?
        .execute([id])?;
        for (row_id, mut row) in doc::children(doc, map_key) {
            row.insert("id".into(), Field::Str(row_id));
            row.insert(parent_col.to_string(), Field::Str(id.to_string()));
            if refs_present(conn, cols, child_table, &row, &mut missing)? {
                upsert(conn, cols, child_table, &row)?;
            }
        }
    }
    Ok(missing)
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
    for c in columns {
        let Some(f) = fields.get(&c.name) else {
            continue;
        };
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
        names.push(c.name.as_str());
        values.push(v);
    }
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
    Ok(())
}
