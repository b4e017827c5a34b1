//! Reads over the materialized tables: issues, their logs, handoffs, comments, reviews,
//! dependencies, and the listing filters of `td list`. JSON shapes follow td's.

use rusqlite::{types::ValueRef, Connection, OptionalExtension, Row};
use serde_json::{Map, Value};

use crate::error::{not_found, Result};

/// One issue row, with the fields commands reason about, plus its full JSON form.
#[derive(Debug, Clone)]
pub struct Issue {
    /// `td-xxxxxx`.
    pub id: String,
    /// Title.
    pub title: String,
    /// Status spelling.
    pub status: String,
    /// Type.
    pub issue_type: String,
    /// Priority `P0..P4`.
    pub priority: String,
    /// Parent epic or issue id, `""` for none.
    pub parent_id: String,
    /// Session that started it.
    pub implementer_session: String,
    /// Session that created it.
    pub creator_session: String,
    /// Session that asked for review.
    pub review_requested_by_session: String,
    /// Minor issues skip review.
    pub minor: bool,
    /// Soft-delete timestamp.
    pub deleted_at: Option<String>,
    /// Labels, in order.
    pub labels: Vec<String>,
    /// The row as td's JSON (labels as an array, `minor` as a boolean).
    pub json: Value,
}

/// Converts one SQLite value to JSON (blobs as hex).
pub fn sql_to_json(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => Value::from(f),
        ValueRef::Text(t) => Value::from(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::from(hex::encode(b)),
    }
}

/// Reads a whole row into a JSON object keyed by column name.
pub fn row_to_json(row: &Row<'_>) -> rusqlite::Result<Map<String, Value>> {
    let mut m = Map::new();
    let stmt = row.as_ref();
    for i in 0..stmt.column_count() {
        m.insert(
            stmt.column_name(i)?.to_string(),
            sql_to_json(row.get_ref(i)?),
        );
    }
    Ok(m)
}

fn issue_from_row(row: &Row<'_>) -> rusqlite::Result<Issue> {
    let mut m = row_to_json(row)?;
    let s = |m: &Map<String, Value>, k: &str| {
        m.get(k).and_then(Value::as_str).unwrap_or("").to_string()
    };
    let labels: Vec<String> = s(&m, "labels")
        .split(',')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    let minor = m.get("minor").and_then(Value::as_i64).unwrap_or(0) != 0;
    m.insert("labels".into(), Value::from(labels.clone()));
    m.insert("minor".into(), Value::from(minor));
    Ok(Issue {
        id: s(&m, "id"),
        title: s(&m, "title"),
        status: s(&m, "status"),
        issue_type: s(&m, "type"),
        priority: s(&m, "priority"),
        parent_id: s(&m, "parent_id"),
        implementer_session: s(&m, "implementer_session"),
        creator_session: s(&m, "creator_session"),
        review_requested_by_session: s(&m, "review_requested_by_session"),
        minor,
        deleted_at: m
            .get("deleted_at")
            .and_then(Value::as_str)
            .map(String::from),
        labels,
        json: Value::Object(m),
    })
}

/// Looks up an issue by id, including soft-deleted ones.
pub fn find_issue(conn: &Connection, id: &str) -> Result<Option<Issue>> {
    Ok(conn
        .prepare_cached("SELECT * FROM issues WHERE id = ?1")?
        .query_row([id], issue_from_row)
        .optional()?)
}

/// Looks up a live (not deleted) issue, failing with `not_found`.
pub fn live_issue(conn: &Connection, id: &str) -> Result<Issue> {
    match find_issue(conn, id)? {
        Some(i) if i.deleted_at.is_none() => Ok(i),
        Some(_) => Err(not_found(format!(
            "issue {id} is deleted (restore it with 'td restore {id}')"
        ))),
        None => Err(not_found(format!("issue not found: {id}"))),
    }
}

/// Filters of `td list`.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Statuses to include (empty: all but closed, unless `all`).
    pub status: Vec<String>,
    /// Types to include.
    pub types: Vec<String>,
    /// Issues carrying any of these labels.
    pub labels: Vec<String>,
    /// Priorities to include.
    pub priority: Vec<String>,
    /// Substring of title or description (case-insensitive).
    pub search: Option<String>,
    /// Children of this issue.
    pub parent: Option<String>,
    /// Only issues this session implements or created.
    pub mine: Option<String>,
    /// Include closed issues.
    pub all: bool,
    /// Include soft-deleted issues (and only them when `only_deleted`).
    pub only_deleted: bool,
    /// Sort key: `priority` (default), `created`, `updated`, `id`, `title`, `status`.
    pub sort: Option<String>,
    /// Maximum rows.
    pub limit: Option<usize>,
}

/// Registers `td_fold(text)`: Unicode lower-casing, so `ÜBER` finds `über`.
pub(crate) fn register_fold(conn: &Connection) -> Result<()> {
    use rusqlite::functions::FunctionFlags;
    conn.create_scalar_function(
        "td_fold",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| Ok(ctx.get::<Option<String>>(0)?.map(|s| s.to_lowercase())),
    )?;
    Ok(())
}

/// Lists issues matching `f`, in a deterministic order.
pub fn list_issues(conn: &Connection, f: &ListFilter) -> Result<Vec<Issue>> {
    let mut sql = String::from("SELECT * FROM issues WHERE ");
    sql.push_str(if f.only_deleted {
        "deleted_at IS NOT NULL"
    } else {
        "deleted_at IS NULL"
    });
    let mut args: Vec<String> = Vec::new();
    let in_list = |sql: &mut String, col: &str, vals: &[String], args: &mut Vec<String>| {
        if vals.is_empty() {
            return;
        }
        let ph: Vec<String> = vals
            .iter()
            .map(|v| {
                args.push(v.clone());
                format!("?{}", args.len())
            })
            .collect();
        sql.push_str(&format!(" AND {col} IN ({})", ph.join(",")));
    };
    in_list(&mut sql, "status", &f.status, &mut args);
    in_list(&mut sql, "type", &f.types, &mut args);
    in_list(&mut sql, "priority", &f.priority, &mut args);
    if f.status.is_empty() && !f.all && !f.only_deleted {
        sql.push_str(" AND status != 'closed'");
    }
    if let Some(p) = &f.parent {
        args.push(p.clone());
        sql.push_str(&format!(" AND parent_id = ?{}", args.len()));
    }
    if let Some(q) = &f.search {
        register_fold(conn)?;
        args.push(q.to_lowercase());
        let n = args.len();
        sql.push_str(&format!(
            " AND (instr(td_fold(title), ?{n}) > 0 OR instr(td_fold(description), ?{n}) > 0 OR instr(lower(id), ?{n}) > 0)"
        ));
    }
    if let Some(me) = &f.mine {
        args.push(me.clone());
        let n = args.len();
        sql.push_str(&format!(
            " AND (implementer_session = ?{n} OR creator_session = ?{n})"
        ));
    }
    if !f.labels.is_empty() {
        let conds: Vec<String> = f
            .labels
            .iter()
            .map(|l| {
                args.push(l.clone());
                format!(
                    "(',' || labels || ',') LIKE ('%,' || ?{} || ',%')",
                    args.len()
                )
            })
            .collect();
        sql.push_str(&format!(" AND ({})", conds.join(" OR ")));
    }
    let order = match f.sort.as_deref().unwrap_or("priority") {
        "created" => "created_at DESC, id",
        "updated" => "updated_at DESC, id",
        "id" => "id",
        "title" => "title, id",
        "status" => "status, priority, id",
        _ => "priority, created_at, id",
    };
    sql.push_str(&format!(" ORDER BY {order}"));
    if let Some(n) = f.limit {
        sql.push_str(&format!(" LIMIT {n}"));
    }
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), issue_from_row)?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// Every live issue, closed ones included, by priority (what search, query and boards filter).
pub fn all_live_issues(conn: &Connection) -> Result<Vec<Issue>> {
    list_issues(
        conn,
        &ListFilter {
            all: true,
            ..Default::default()
        },
    )
}

/// Whether a row with this id exists in `table` (a td table name from this crate, never input).
pub fn row_exists(conn: &Connection, table: &str, id: &str) -> Result<bool> {
    let mut stmt = conn.prepare_cached(&format!("SELECT 1 FROM {table} WHERE id = ?1"))?;
    Ok(stmt.exists([id])?)
}

/// Rows of a child table for one issue, as JSON objects, oldest first.
pub fn rows_for(
    conn: &Connection,
    table: &str,
    col: &str,
    id: &str,
    order: &str,
) -> Result<Vec<Value>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT * FROM {table} WHERE {col} = ?1 ORDER BY {order}"
    ))?;
    let rows = stmt.query_map([id], |r| row_to_json(r).map(Value::Object))?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// Every row of a table as JSON objects, in `order`.
pub fn all_rows(conn: &Connection, table: &str, order: &str) -> Result<Vec<Value>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT * FROM {table} ORDER BY {order}"))?;
    let rows = stmt.query_map([], |r| row_to_json(r).map(Value::Object))?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// The most recent handoff of an issue, with its arrays decoded.
pub fn latest_handoff(conn: &Connection, issue: &str) -> Result<Option<Value>> {
    let mut rows = rows_for(
        conn,
        "handoffs",
        "issue_id",
        issue,
        "timestamp DESC, id DESC",
    )?;
    Ok(if rows.is_empty() {
        None
    } else {
        Some(decode_handoff(rows.swap_remove(0)))
    })
}

/// Decodes a handoff row's JSON-array text columns into arrays.
pub fn decode_handoff(mut v: Value) -> Value {
    if let Some(m) = v.as_object_mut() {
        for k in ["done", "remaining", "decisions", "uncertain"] {
            let parsed = m
                .get(k)
                .and_then(Value::as_str)
                .and_then(|s| serde_json::from_str::<Value>(s).ok())
                .unwrap_or_else(|| Value::Array(vec![]));
            m.insert(k.into(), parsed);
        }
    }
    v
}

/// Ids of issues `id` depends on (live dependency rows).
pub fn dependencies_of(conn: &Connection, id: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT depends_on_id FROM issue_dependencies WHERE issue_id = ?1 AND relation_type = 'depends_on' ORDER BY depends_on_id",
    )?;
    let rows = stmt.query_map([id], |r| r.get(0))?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// Ids of issues that depend on `id`.
pub fn dependents_of(conn: &Connection, id: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT issue_id FROM issue_dependencies WHERE depends_on_id = ?1 AND relation_type = 'depends_on' ORDER BY issue_id",
    )?;
    let rows = stmt.query_map([id], |r| r.get(0))?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// Counts issues by status (live issues only).
pub fn status_counts(conn: &Connection) -> Result<Vec<(String, i64)>> {
    let mut stmt = conn.prepare("SELECT status, count(*) FROM issues WHERE deleted_at IS NULL GROUP BY status ORDER BY status")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// The version of an entity's document (digest of its heads), if it has one.
pub fn doc_version(conn: &Connection, id: &str) -> Result<Option<String>> {
    let storage = crate::lineage::storage_of(conn, id)?;
    Ok(conn
        .prepare_cached("SELECT version FROM crdt_docs WHERE doc_id = ?1")?
        .query_row([storage], |r| r.get(0))
        .optional()?)
}

/// Everything `td show` prints about one issue: the row, its version, latest handoff, logs,
/// comments, reviews, dependencies and children.
pub fn issue_detail(conn: &Connection, id: &str) -> Result<Value> {
    let issue = find_issue(conn, id)?.ok_or_else(|| not_found(format!("issue not found: {id}")))?;
    let mut m = match issue.json {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    m.insert(
        "version".into(),
        Value::from(doc_version(conn, id)?.unwrap_or_default()),
    );
    // An issue renamed after an id clash (merge rule 8) says which id it was created with.
    let (created_as, _) = crate::lineage::locate(conn, id)?;
    if created_as != id {
        m.insert("renamed_from".into(), Value::from(created_as));
    }
    m.insert(
        "handoff".into(),
        latest_handoff(conn, id)?.unwrap_or(Value::Null),
    );
    m.insert(
        "logs".into(),
        Value::Array(rows_for(conn, "logs", "issue_id", id, "timestamp, id")?),
    );
    m.insert(
        "comments".into(),
        Value::Array(rows_for(
            conn,
            "comments",
            "issue_id",
            id,
            "created_at, id",
        )?),
    );
    m.insert(
        "reviews".into(),
        Value::Array(rows_for(
            conn,
            "issue_reviews",
            "issue_id",
            id,
            "created_at, id",
        )?),
    );
    m.insert("depends_on".into(), Value::from(dependencies_of(conn, id)?));
    m.insert("blocks".into(), Value::from(dependents_of(conn, id)?));
    let children: Vec<String> = list_issues(
        conn,
        &ListFilter {
            parent: Some(id.to_string()),
            all: true,
            sort: Some("id".into()),
            ..Default::default()
        },
    )?
    .into_iter()
    .map(|i| i.id)
    .collect();
    m.insert("children".into(), Value::from(children));
    let conflicts: Vec<Value> = crate::conflicts::list(conn, false, Some(id), None)?
        .into_iter()
        .map(|c| c.json)
        .collect();
    m.insert("conflicts".into(), Value::Array(conflicts));
    Ok(Value::Object(m))
}

/// Open issues whose dependencies are all closed and that are not deferred past `today`
/// (`YYYY-MM-DD`), by priority: what `td ready` and `td next` offer.
pub fn ready_issues(conn: &Connection, today: &str) -> Result<Vec<Issue>> {
    let mut stmt = conn.prepare(
        "SELECT * FROM issues i WHERE i.deleted_at IS NULL AND i.status = 'open' \
         AND (i.defer_until IS NULL OR i.defer_until = '' OR i.defer_until <= ?1) \
         AND NOT EXISTS (SELECT 1 FROM issue_dependencies d JOIN issues t ON t.id = d.depends_on_id \
                         WHERE d.issue_id = i.id AND d.relation_type = 'depends_on' \
                         AND t.status != 'closed' AND t.deleted_at IS NULL) \
         ORDER BY i.priority, i.created_at, i.id",
    )?;
    let rows = stmt.query_map([today], issue_from_row)?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}
