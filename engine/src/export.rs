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

/// A SQL script that recreates td's tables (schema v38) holding every synced row, for
/// `sqlite3 new.db < backup.sql`; `td import --from-db new.db` reads it back.
pub fn export_sql(conn: &Connection) -> Result<String> {
    let mut out =
        String::from("-- td export (schema v38): sqlite3 new.db < this-file.sql\nBEGIN;\n");
    out.push_str(crate::schema::TD_SCHEMA_SQL);
    out.push_str(&format!(
        "\nINSERT INTO schema_info(key, value) VALUES ('version', '{}');\n",
        crate::schema::TD_SCHEMA_VERSION
    ));
    for table in SYNCED_TABLES {
        let cols: Vec<String> = conn
            .prepare(&format!("PRAGMA table_info({table})"))?
            .query_map([], |r| r.get::<_, String>(1))?
            .collect::<std::result::Result<_, _>>()?;
        let quoted: Vec<String> = cols.iter().map(|c| format!("quote(\"{c}\")")).collect();
        let sql = format!(
            "SELECT 'INSERT INTO {table} ({}) VALUES (' || {} || ');' FROM {table} ORDER BY id",
            cols.join(", "),
            quoted.join(" || ', ' || ")
        );
        let mut stmt = conn.prepare(&sql)?;
        for line in stmt.query_map([], |r| r.get::<_, String>(0))? {
            out.push_str(&line?);
            out.push('\n');
        }
    }
    out.push_str("COMMIT;\n");
    Ok(out)
}

/// A readable Markdown report: issues grouped by status, each with its latest handoff.
pub fn export_markdown(conn: &Connection, include_deleted: bool) -> Result<String> {
    let mut out = String::from("# Issues\n");
    let sections = [
        "in_progress",
        "in_review",
        "blocked",
        "open",
        "closed",
        "deleted",
    ];
    for status in sections {
        let deleted = status == "deleted";
        if deleted && !include_deleted {
            continue;
        }
        let f = crate::query::ListFilter {
            status: if deleted {
                Vec::new()
            } else {
                vec![status.into()]
            },
            all: deleted,
            only_deleted: deleted,
            sort: crate::query::SortKey::Priority,
            ..Default::default()
        };
        let issues = crate::query::list_issues(conn, &f)?;
        if issues.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "\n## {} ({})\n",
            status.replace('_', " "),
            issues.len()
        ));
        for i in issues {
            out.push_str(&format!(
                "\n### {} {} [{}, {}]\n",
                i.id, i.title, i.priority, i.issue_type
            ));
            if !i.labels.is_empty() {
                out.push_str(&format!("Labels: {}\n", i.labels.join(", ")));
            }
            if !i.description.is_empty() {
                out.push_str(&format!("\n{}\n", i.description));
            }
            if let Some(h) = crate::query::latest_handoff(conn, &i.id)? {
                out.push_str(&format!("\n**Handoff** ({}):\n", h.timestamp));
                for (list, label) in [
                    (&h.done, "Done"),
                    (&h.remaining, "Remaining"),
                    (&h.decisions, "Decisions"),
                    (&h.uncertain, "Uncertain"),
                ] {
                    for item in list.as_array().into_iter().flatten() {
                        out.push_str(&format!("- {label}: {}\n", item.as_str().unwrap_or("")));
                    }
                }
            }
        }
    }
    Ok(out)
}
