//! Deterministic export of every synced table. Two replicas holding the same changes print
//! byte-identical output, so convergence tests compare exports.

use rusqlite::Connection;
use serde_json::{Map, Value};

use crate::error::Result;
use crate::query::row_to_json;
use crate::schema::SYNCED_TABLES;

/// Export format version, bumped if the shape changes.
pub const EXPORT_VERSION: i64 = 1;

/// Every synced table, rows ordered by id, columns by name, as one JSON value.
pub fn export_json(conn: &Connection) -> Result<Value> {
    let mut tables = Map::new();
    for table in SYNCED_TABLES {
        let mut stmt = conn.prepare(&format!("SELECT * FROM {table} ORDER BY id"))?;
        let rows = stmt
            .query_map([], |r| row_to_json(r).map(Value::Object))?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        tables.insert(table.to_string(), Value::Array(rows));
    }
    let mut root = Map::new();
    root.insert("format".into(), Value::from("td-export"));
    root.insert("version".into(), Value::from(EXPORT_VERSION));
    root.insert("tables".into(), Value::Object(tables));
    Ok(Value::Object(root))
}

/// The export as pretty-printed text with a trailing newline.
pub fn export_json_string(conn: &Connection) -> Result<String> {
    let v = export_json(conn)?;
    let mut s = serde_json::to_string_pretty(&v).expect("JSON values always serialize");
    s.push('\n');
    Ok(s)
}

/// Summary of the change log, for `td status` and for tests that check it for duplicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogStats {
    /// Records in the log.
    pub changes: i64,
    /// Distinct actors.
    pub actors: i64,
    /// Documents (entities) with at least one change.
    pub documents: i64,
    /// (actor, seq) pairs that occur more than once (must be 0).
    pub duplicate_actor_seqs: i64,
}

/// Computes [`LogStats`].
pub fn log_stats(conn: &Connection) -> Result<LogStats> {
    Ok(conn.query_row(
        "SELECT (SELECT count(*) FROM crdt_changes), (SELECT count(*) FROM crdt_actors), \
         (SELECT count(*) FROM crdt_docs), \
         (SELECT count(*) FROM (SELECT actor, seq FROM crdt_changes GROUP BY actor, seq HAVING count(*) > 1))",
        [],
        |r| Ok(LogStats { changes: r.get(0)?, actors: r.get(1)?, documents: r.get(2)?, duplicate_actor_seqs: r.get(3)? }),
    )?)
}
