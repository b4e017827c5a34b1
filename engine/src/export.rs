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

/// The issues td's `export` covers: live ones (every status), and deleted ones too with `all`,
/// oldest first.
fn exported_issues(conn: &Connection, all: bool) -> Result<Vec<crate::query::Issue>> {
    let mut issues = crate::query::list_issues(
        conn,
        &crate::query::ListFilter {
            all: true,
            sort: crate::query::SortKey::Created,
            ..Default::default()
        },
    )?;
    if all {
        issues.extend(crate::query::list_issues(
            conn,
            &crate::query::ListFilter {
                all: true,
                only_deleted: true,
                sort: crate::query::SortKey::Created,
                ..Default::default()
            },
        )?);
    }
    issues.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
    Ok(issues)
}

/// td's `export --format json`: one item per issue, `{issue, logs, handoffs, dependencies,
/// files}`, in td's shapes (handoff lists as arrays, empty lists as `[]`), indented as td
/// indents it. `td import` reads it back (and td's own import reads ours).
pub fn export_td_json(conn: &Connection, all: bool) -> Result<String> {
    let mut items = Vec::new();
    for issue in exported_issues(conn, all)? {
        let id = issue.id.clone();
        let rows =
            |table: &str, order: &str| crate::query::rows_for(conn, table, "issue_id", &id, order);
        let handoffs: Vec<Value> = rows("handoffs", "timestamp, id")?
            .into_iter()
            .map(|mut h| {
                for k in ["done", "remaining", "decisions", "uncertain"] {
                    let list: Value = h[k]
                        .as_str()
                        .and_then(|t| serde_json::from_str(t).ok())
                        .unwrap_or(Value::Array(Vec::new()));
                    h[k] = list;
                }
                h
            })
            .collect();
        let dependencies: Vec<Value> = rows("issue_dependencies", "depends_on_id")?
            .into_iter()
            .map(|d| {
                serde_json::json!({"issue_id": d["issue_id"], "depends_on_id": d["depends_on_id"],
                    "relation_type": d["relation_type"]})
            })
            .collect();
        let mut item = Map::new();
        item.insert("issue".into(), issue.to_json());
        item.insert("logs".into(), Value::Array(rows("logs", "timestamp, id")?));
        item.insert("handoffs".into(), Value::Array(handoffs));
        item.insert("dependencies".into(), Value::Array(dependencies));
        item.insert(
            "files".into(),
            Value::Array(rows("issue_files", "file_path")?),
        );
        items.push(Value::Object(item));
    }
    let mut s = serde_json::to_string_pretty(&Value::Array(items)).expect("JSON values serialize");
    s.push('\n');
    Ok(s)
}

/// td's `export --format md`: `# Issues Export`, then per issue `## <id>: <title>` with its
/// status, type, priority, points and labels as a list, and its description. `td import
/// --format md` reads it back.
pub fn export_markdown(conn: &Connection, include_deleted: bool) -> Result<String> {
    let mut out = String::from("# Issues Export\n\n");
    for i in exported_issues(conn, include_deleted)? {
        out.push_str(&format!("## {}: {}\n\n", i.id, i.title));
        out.push_str(&format!("- Status: {}\n", i.status));
        out.push_str(&format!("- Type: {}\n", i.issue_type));
        out.push_str(&format!("- Priority: {}\n", i.priority));
        if i.points > 0 {
            out.push_str(&format!("- Points: {}\n", i.points));
        }
        if !i.labels.is_empty() {
            out.push_str(&format!("- Labels: {}\n", i.labels.join(", ")));
        }
        if !i.description.is_empty() {
            out.push_str(&format!("\n{}\n", i.description));
        }
        out.push('\n');
    }
    Ok(out)
}
