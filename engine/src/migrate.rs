//! Adopting an existing td database: every synced entity becomes changes in our log, attributed
//! to the session recorded in the source, in one transaction (all or nothing). The source is
//! opened read-only and never modified; entities already present are skipped, so a second run
//! adds nothing.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::rc::Rc;
use std::time::Instant;

use automerge::AutoCommit;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OpenFlags};

use crate::doc::{self, Field, TEXT_FIELDS, WF_KEYS};
use crate::error::{EngineError, Result};
use crate::model::Kind;
use crate::store::Store;
use crate::write::Tx;

/// What a migration did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MigrationReport {
    /// Entities (and link rows) imported, per source table.
    pub imported: BTreeMap<String, usize>,
    /// Entities already present (a repeated migration), per source table.
    pub already_present: usize,
    /// Rows left out, and why.
    pub skipped: Vec<String>,
    /// Local-only sessions copied.
    pub sessions: usize,
    /// Wall time in seconds.
    pub seconds: f64,
}

fn refuse(path: &Path, why: &str) -> EngineError {
    EngineError::InvalidInput(format!(
        "cannot migrate from {}: {why}; nothing was written",
        path.display()
    ))
}

/// Checks that `path` is a td database this version can import (without importing).
pub fn check_source(path: &Path) -> Result<()> {
    open_source(path).map(|_| ())
}

/// Whether the database at `path` was made by td itself (td's tables, no change log): `td
/// upgrade` then adopts it in place ([`set_aside_for_adoption`]).
pub fn is_plain_td(path: &Path) -> Result<bool> {
    if !path.is_file() {
        return Ok(false);
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    Ok(has_table(&conn, "issues")? && !has_table(&conn, "crdt_meta")?)
}

/// Moves td's own database at `path` aside for `td upgrade`: a complete copy (`VACUUM INTO`,
/// so whatever td's WAL held is in it) is written beside it as `<name>.td-backup-<stamp>` and
/// checked as a migration source, and only then is the original (with its WAL and shared
/// memory files) removed. Returns the backup's path; on any failure the original stays.
pub fn set_aside_for_adoption(path: &Path) -> Result<std::path::PathBuf> {
    let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S");
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "issues.db".into());
    let backup = path.with_file_name(format!("{name}.td-backup-{stamp}"));
    if backup.exists() {
        return Err(refuse(&backup, "a backup of this name exists already"));
    }
    {
        let conn = Connection::open(path)?;
        conn.execute("VACUUM INTO ?1", [backup.to_string_lossy().as_ref()])?;
    }
    check_source(&backup)?;
    for suffix in ["", "-wal", "-shm"] {
        let f = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        match std::fs::remove_file(&f) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(EngineError::Database(format!("{}: {e}", f.display()))),
        }
    }
    Ok(backup)
}

/// Opens and checks a source td database (read-only).
fn open_source(path: &Path) -> Result<Connection> {
    open_source_as(path, false)
}

/// [`open_source`]; `own` accepts a database of this td too (adopting one's own project into
/// another, `td join --adopt`: its td tables are read like td's).
fn open_source_as(path: &Path, own: bool) -> Result<Connection> {
    if !path.is_file() {
        return Err(refuse(path, "no such file"));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| refuse(path, &format!("not a SQLite database ({e})")))?;
    let ok: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(|e| refuse(path, &format!("not a SQLite database or corrupted ({e})")))?;
    if ok != "ok" {
        return Err(refuse(path, &format!("the database is corrupted ({ok})")));
    }
    let has = |t: &str| has_table(&conn, t);
    if !has("issues")? || !has("schema_info")? {
        return Err(refuse(
            path,
            "not a td database (no issues or schema_info table)",
        ));
    }
    let version: Option<String> = conn
        .query_row(
            "SELECT value FROM schema_info WHERE key = 'version'",
            [],
            |r| r.get(0),
        )
        .ok();
    match version.as_deref().map(str::parse::<i64>) {
        Some(Ok(v)) if v <= crate::schema::TD_SCHEMA_VERSION => {}
        Some(Ok(v)) => {
            return Err(refuse(
                path,
                &format!(
                    "td schema version {v} is newer than this td understands ({})",
                    crate::schema::TD_SCHEMA_VERSION
                ),
            ))
        }
        _ => return Err(refuse(path, "not a td database (no schema version)")),
    }
    if has("crdt_meta")? && !own {
        return Err(refuse(
            path,
            "it is already a td-sync database; sync with it instead",
        ));
    }
    Ok(conn)
}

/// A source row: its columns by name. Names are shared by every row of one query, so a
/// table's rows cost their values only.
type Row = Vec<(Rc<str>, SqlValue)>;

/// A source table imported as whole entities: (table, kind, columns naming the author session,
/// child table with its document map and parent column).
type EntityTable = (
    &'static str,
    Kind,
    &'static [&'static str],
    Option<(&'static str, &'static str, &'static str)>,
);

/// Whether the source database has `table` (older td versions lack some).
fn has_table(conn: &Connection, table: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1")?
        .exists([table])
}

fn rows(conn: &Connection, table: &str, filter: &str, arg: Option<&str>) -> Result<Vec<Row>> {
    let mut out = Vec::new();
    each_row(conn, table, filter, arg, &mut |r| {
        out.push(r);
        Ok(())
    })?;
    Ok(out)
}

/// Calls `f` with each row of a source table in id order, one at a time: a migration holds one
/// row of a big table, never the table.
fn each_row(
    conn: &Connection,
    table: &str,
    filter: &str,
    arg: Option<&str>,
    f: &mut dyn FnMut(Row) -> Result<()>,
) -> Result<()> {
    if !has_table(conn, table)? {
        return Ok(()); // older td: the table did not exist yet
    }
    let mut stmt =
        conn.prepare_cached(&format!("SELECT * FROM \"{table}\" {filter} ORDER BY id"))?;
    let names: Vec<Rc<str>> = stmt.column_names().map(Rc::from).collect();
    let mut q = match arg {
        Some(a) => stmt.query([a])?,
        None => stmt.query([])?,
    };
    while let Some(r) = q.next()? {
        let row = names
            .iter()
            .enumerate()
            .map(|(i, n)| Ok((n.clone(), r.get::<_, SqlValue>(i)?)))
            .collect::<rusqlite::Result<Row>>()?;
        f(row)?;
    }
    Ok(())
}

/// The ids of a source table.
fn ids(conn: &Connection, table: &str) -> Result<std::collections::HashSet<String>> {
    if !has_table(conn, table)? {
        return Ok(Default::default());
    }
    let mut stmt = conn.prepare(&format!("SELECT id FROM \"{table}\""))?;
    let out = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<std::result::Result<_, _>>()?;
    Ok(out)
}

fn field(v: &SqlValue) -> Field {
    match v {
        SqlValue::Null => Field::Null,
        SqlValue::Integer(i) => Field::Int(*i),
        SqlValue::Real(f) => Field::Int(*f as i64),
        SqlValue::Text(t) => Field::Str(t.clone()),
        SqlValue::Blob(b) => Field::Str(String::from_utf8_lossy(b).into_owned()),
    }
}

fn get<'a>(row: &'a Row, col: &str) -> Option<&'a SqlValue> {
    row.iter().find(|(n, _)| &**n == col).map(|(_, v)| v)
}

fn text(row: &Row, col: &str) -> String {
    match get(row, col) {
        Some(SqlValue::Text(t)) => t.clone(),
        _ => String::new(),
    }
}

/// Per column of a td table, the value a row gets when its document lacks the field (the
/// column's declared default, or NULL); columns defaulting to the current time are absent.
type Defaults = HashMap<String, SqlValue>;

/// Reads the implied values of `table`'s columns from the target database.
fn defaults_of(conn: &Connection, table: &str) -> Result<Defaults> {
    let mut out = Defaults::new();
    let mut stmt = conn.prepare(&format!("PRAGMA table_info(\"{table}\")"))?;
    let cols = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(1)?,
            r.get::<_, i64>(3)? != 0,
            r.get::<_, Option<String>>(4)?,
        ))
    })?;
    for c in cols {
        let (name, not_null, default) = c?;
        let implied = match default.as_deref().map(str::trim) {
            None | Some("NULL") if !not_null => Some(SqlValue::Null),
            Some(d) if d.len() >= 2 && d.starts_with('\'') && d.ends_with('\'') => {
                Some(SqlValue::Text(d[1..d.len() - 1].replace("''", "'")))
            }
            Some(d) => d.parse::<i64>().ok().map(SqlValue::Integer),
            None => None,
        };
        if let Some(v) = implied {
            out.insert(name, v);
        }
    }
    Ok(out)
}

/// Writes a source row's columns into a document (skipping `id` and the columns in `skip`).
/// A value equal to what the column gets anyway when the field is absent is not written: it
/// materializes identically and keeps the imported documents (and the log) small.
fn put_row(d: &mut AutoCommit, row: &Row, skip: &[&str], defaults: &Defaults) -> Result<()> {
    for (name, v) in row {
        let name: &str = name;
        if name == "id" || skip.contains(&name) {
            continue;
        }
        if defaults.get(name) == Some(v) && !TEXT_FIELDS.contains(&name) {
            continue;
        }
        match (field(v), TEXT_FIELDS.contains(&name)) {
            (Field::Str(s), true) => doc::put_text(d, name, &s)?,
            (f, _) => doc::put(d, &automerge::ROOT, name, Some(f))?,
        }
    }
    Ok(())
}

fn child_cols(row: &Row, skip: &[&str]) -> Vec<(String, Field)> {
    row.iter()
        .filter(|(n, _)| &**n != "id" && !skip.contains(&&**n))
        .map(|(n, v)| (n.to_string(), field(v)))
        .collect()
}

fn put_children(d: &mut AutoCommit, map: &str, children: &[Row], parent_col: &str) -> Result<()> {
    for c in children {
        let cols = child_cols(c, &[parent_col]);
        let cols: Vec<(&str, Field)> = cols.iter().map(|(n, f)| (n.as_str(), f.clone())).collect();
        doc::put_child(d, map, &text(c, "id"), &cols)?;
    }
    Ok(())
}

fn session_of(row: &Row, cols: &[&str]) -> String {
    cols.iter()
        .map(|c| text(row, c))
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "ses_migrated".to_string())
}

impl Store {
    /// Imports every synced entity of the td database at `src` (schema v38 or older).
    pub fn migrate_from(&mut self, src: &Path) -> Result<MigrationReport> {
        self.migrate_from_with_progress(src, &mut |_, _| {})
    }

    /// [`Store::migrate_from`], calling `progress(done, total)` as entities are imported (for a
    /// progress bar on large databases).
    pub fn migrate_from_with_progress(
        &mut self,
        src: &Path,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<MigrationReport> {
        self.migrate_with(open_source(src)?, progress)
    }

    /// Re-creates every entity of another replica's database (of another project) here, as new
    /// changes by this machine (`td join --adopt`).
    pub fn migrate_from_replica(&mut self, src: &Path) -> Result<MigrationReport> {
        self.migrate_with(open_source_as(src, true)?, &mut |_, _| {})
    }

    fn migrate_with(
        &mut self,
        source: Connection,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<MigrationReport> {
        let started = Instant::now();
        let total: usize = ENTITY_TABLES
            .iter()
            .map(|t| count_rows(&source, t))
            .sum::<Result<usize>>()?;
        let mut done = 0usize;
        let mut step = |n: usize| {
            done += n;
            if done.is_multiple_of(256) || done == total {
                progress(done, total);
            }
        };
        let mut report = MigrationReport::default();
        let issue_ids = ids(&source, "issues")?;
        let sessions = rows(&source, "sessions", "", None)?;
        let by_issue = |table: &str| -> Result<HashMap<String, Vec<Row>>> {
            let mut m: HashMap<String, Vec<Row>> = HashMap::new();
            for r in rows(&source, table, "", None)? {
                m.entry(text(&r, "issue_id")).or_default().push(r);
            }
            Ok(m)
        };
        let mut all_deps = by_issue("issue_dependencies")?;
        let mut all_files = by_issue("issue_files")?;
        let mut all_history = by_issue("issue_session_history")?;
        let mut defaults: HashMap<&str, Defaults> = HashMap::new();
        for t in crate::schema::SYNCED_TABLES {
            defaults.insert(t, defaults_of(self.conn(), t)?);
        }
        self.write("ses_migrated", |tx| {
            let mut count =
                |t: &str, n: usize| *report.imported.entry(t.to_string()).or_default() += n;
            let mut already = 0usize;
            let mut skipped = Vec::new();
            let present = |tx: &mut Tx<'_>, id: &str| tx.version(id).map(|v| v.is_some());
            each_row(&source, "issues", "", None, &mut |row| {
                step(1);
                let id = text(&row, "id");
                if Kind::of_id(&id) != Some(Kind::Issue) {
                    skipped.push(format!("issue with unexpected id '{id}'"));
                    return Ok(());
                }
                if present(tx, &id)? {
                    already += 1;
                    return Ok(());
                }
                let mut deps = all_deps.remove(&id).unwrap_or_default();
                deps.retain(|d| {
                    let ok = issue_ids.contains(&text(d, "depends_on_id"));
                    if !ok {
                        skipped.push(format!(
                            "dependency {} of {id}: target {} does not exist",
                            text(d, "id"),
                            text(d, "depends_on_id")
                        ));
                    }
                    ok
                });
                let files = all_files.remove(&id).unwrap_or_default();
                let history = all_history.remove(&id).unwrap_or_default();
                tx.act_as(&session_of(
                    &row,
                    &["creator_session", "implementer_session"],
                ));
                let mut wf_skip: Vec<&str> = WF_KEYS.to_vec();
                wf_skip.push("labels");
                tx.change(&id, |d| {
                    put_row(d, &row, &wf_skip, &defaults["issues"])?;
                    doc::put_labels(d, &crate::model::parse_labels(&text(&row, "labels")))?;
                    let wf = WF_KEYS
                        .iter()
                        .filter_map(|k| get(&row, k).map(|v| (k.to_string(), field(v))))
                        .collect();
                    doc::put_workflow(d, &wf)?;
                    for f in ["description", "acceptance"] {
                        if get(&row, f).is_none() {
                            doc::put_text(d, f, "")?;
                        }
                    }
                    put_children(d, "deps", &deps, "issue_id")?;
                    put_children(d, "files", &files, "issue_id")?;
                    put_children(d, "history", &history, "issue_id")
                })?;
                count("issues", 1);
                count("issue_dependencies", deps.len());
                count("issue_files", files.len());
                count("issue_session_history", history.len());
                Ok(())
            })?;
            let simple: [EntityTable; 7] = [
                (
                    "boards",
                    Kind::Board,
                    &[],
                    Some(("board_issue_positions", "positions", "board_id")),
                ),
                (
                    "work_sessions",
                    Kind::WorkSession,
                    &["session_id"],
                    Some(("work_session_issues", "issues", "work_session_id")),
                ),
                ("notes", Kind::Note, &[], None),
                ("logs", Kind::Log, &["session_id"], None),
                ("comments", Kind::Comment, &["session_id"], None),
                ("handoffs", Kind::Handoff, &["session_id"], None),
                ("issue_reviews", Kind::Review, &["reviewer_session"], None),
            ];
            for (table, kind, session_cols, children) in simple {
                each_row(&source, table, "", None, &mut |row| {
                    step(1);
                    let id = text(&row, "id");
                    if id == "bd-all-issues" {
                        return Ok(()); // every database has its own builtin board
                    }
                    if Kind::of_id(&id) != Some(kind) {
                        skipped.push(format!("{table} row with unexpected id '{id}'"));
                        return Ok(());
                    }
                    let issue = text(&row, "issue_id");
                    if !issue.is_empty() && kind != Kind::Log && !issue_ids.contains(&issue) {
                        skipped.push(format!("{table} {id}: its issue {issue} does not exist"));
                        return Ok(());
                    }
                    if present(tx, &id)? {
                        already += 1;
                        return Ok(());
                    }
                    let kids = match children {
                        Some((t, _, parent)) => {
                            let mut k =
                                rows(&source, t, &format!("WHERE {parent} = ?1"), Some(&id))?;
                            k.retain(|c| {
                                let target = text(c, "issue_id");
                                let ok = target.is_empty() || issue_ids.contains(&target);
                                if !ok {
                                    skipped.push(format!(
                                        "{t} {}: issue {target} does not exist",
                                        text(c, "id")
                                    ));
                                }
                                ok
                            });
                            k
                        }
                        None => Vec::new(),
                    };
                    tx.act_as(&session_of(&row, session_cols));
                    tx.change(&id, |d| {
                        put_row(d, &row, &[], &defaults[table])?;
                        match children {
                            Some((_, map, parent)) => put_children(d, map, &kids, parent),
                            None => Ok(()),
                        }
                    })?;
                    count(table, 1);
                    if let Some((t, _, _)) = children {
                        count(t, kids.len());
                    }
                    Ok(())
                })?;
            }
            report.already_present = already;
            report.skipped = skipped;
            // Local-only: sessions are carried over locally, never as changes.
            for s in &sessions {
                let names: Vec<&str> = s.iter().map(|(n, _)| &**n).collect();
                let placeholders: Vec<String> =
                    (1..=names.len()).map(|i| format!("?{i}")).collect();
                let n = tx.conn().execute(
                    &format!(
                        "INSERT OR IGNORE INTO sessions ({}) VALUES ({})",
                        names.join(","),
                        placeholders.join(",")
                    ),
                    rusqlite::params_from_iter(s.iter().map(|(_, v)| v.clone())),
                )?;
                report.sessions += n;
            }
            Ok(())
        })?;
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }
}

/// The source tables whose rows become entities (what the progress counts).
pub const ENTITY_TABLES: [&str; 8] = [
    "issues",
    "boards",
    "work_sessions",
    "notes",
    "logs",
    "comments",
    "handoffs",
    "issue_reviews",
];

/// Rows of a source table (0 when an older td did not have it).
fn count_rows(conn: &Connection, table: &str) -> Result<usize> {
    if !has_table(conn, table)? {
        return Ok(0);
    }
    let n: i64 = conn.query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| {
        r.get(0)
    })?;
    Ok(n as usize)
}

/// Writes an export produced by `td export --format json` into a new td-schema database at
/// `path`, so it can be imported like any td database.
pub fn json_export_to_db(export: &serde_json::Value, path: &Path) -> Result<()> {
    let bad = |why: &str| EngineError::InvalidInput(format!("not a td export: {why}"));
    if export["format"] != "td-export" {
        return Err(bad("missing \"format\": \"td-export\""));
    }
    if export["version"].as_i64().unwrap_or(0) > crate::export::EXPORT_VERSION {
        return Err(bad("written by a newer td"));
    }
    let tables = export["tables"]
        .as_object()
        .ok_or_else(|| bad("missing \"tables\""))?;
    tables_to_db(tables, path)
}

/// Writes rows (table → array of column objects) into a new td database at `path`; columns a
/// table lacks are refused (a row names only td's columns).
fn tables_to_db(tables: &serde_json::Map<String, serde_json::Value>, path: &Path) -> Result<()> {
    let bad = |why: &str| EngineError::InvalidInput(format!("not a td export: {why}"));
    let mut conn = Connection::open(path)?;
    let tx = conn.transaction()?;
    tx.execute_batch(crate::schema::TD_SCHEMA_SQL)?;
    tx.execute(
        "INSERT INTO schema_info(key, value) VALUES ('version', ?1)",
        [crate::schema::TD_SCHEMA_VERSION.to_string()],
    )?;
    for table in crate::schema::SYNCED_TABLES {
        for row in tables
            .get(table)
            .and_then(|t| t.as_array())
            .into_iter()
            .flatten()
        {
            let obj = row
                .as_object()
                .ok_or_else(|| bad(&format!("a row of {table} is not an object")))?;
            let names: Vec<&String> = obj.keys().collect();
            let values: Vec<SqlValue> = obj
                .values()
                .map(|v| match v {
                    serde_json::Value::Null => SqlValue::Null,
                    serde_json::Value::Number(n) => {
                        n.as_i64().map(SqlValue::Integer).unwrap_or(SqlValue::Null)
                    }
                    serde_json::Value::String(s) => SqlValue::Text(s.clone()),
                    other => SqlValue::Text(other.to_string()),
                })
                .collect();
            let cols: Vec<String> = names
                .iter()
                .map(|n| format!("\"{}\"", n.replace('"', "")))
                .collect();
            let ph: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
            tx.execute(
                &format!(
                    "INSERT OR REPLACE INTO {table} ({}) VALUES ({})",
                    cols.join(","),
                    ph.join(",")
                ),
                rusqlite::params_from_iter(values),
            )
            .map_err(|e| bad(&format!("{table}: {e}")))?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// td's own JSON export (`td export` of td or of this td: an array of `{issue, logs,
/// handoffs, dependencies, files}`) as a td database at `path`, for the usual import. Fields
/// td's tables do not have are left out; labels and handoff lists take td's column forms.
pub fn td_items_to_db(items: &serde_json::Value, path: &Path) -> Result<()> {
    use serde_json::{json, Map, Value};
    let bad = |why: String| EngineError::InvalidInput(format!("not a td export: {why}"));
    let items = items
        .as_array()
        .ok_or_else(|| bad("expected an array of issues".into()))?;
    let columns = |table: &str| -> Result<Vec<String>> {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch(crate::schema::TD_SCHEMA_SQL)?;
        let cols = conn
            .prepare(&format!("PRAGMA table_info({table})"))?
            .query_map([], |r| r.get::<_, String>(1))?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(cols)
    };
    let keep = |row: &Value, cols: &[String]| -> Map<String, Value> {
        row.as_object()
            .map(|o| {
                o.iter()
                    .filter(|(k, _)| cols.contains(k))
                    .map(|(k, v)| {
                        let v = match v {
                            Value::Bool(b) => json!(*b as i64),
                            Value::Array(a) if k == "labels" => Value::String(
                                a.iter()
                                    .filter_map(|l| l.as_str())
                                    .collect::<Vec<_>>()
                                    .join(","),
                            ),
                            Value::Array(_) => Value::String(v.to_string()),
                            other => other.clone(),
                        };
                        (k.clone(), v)
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut tables: Map<String, Value> = Map::new();
    let mut push = |table: &str, row: Map<String, Value>| {
        tables
            .entry(table.to_string())
            .or_insert_with(|| Value::Array(Vec::new()))
            .as_array_mut()
            .expect("arrays only")
            .push(Value::Object(row));
    };
    let (issue_cols, log_cols, handoff_cols, file_cols) = (
        columns("issues")?,
        columns("logs")?,
        columns("handoffs")?,
        columns("issue_files")?,
    );
    for (n, item) in items.iter().enumerate() {
        let issue = &item["issue"];
        let id = issue["id"].as_str().unwrap_or("");
        if id.is_empty() || issue["title"].as_str().unwrap_or("").is_empty() {
            return Err(bad(format!("item {n} has no issue id or title")));
        }
        push("issues", keep(issue, &issue_cols));
        for log in item["logs"].as_array().into_iter().flatten() {
            push("logs", keep(log, &log_cols));
        }
        for h in item["handoffs"].as_array().into_iter().flatten() {
            let mut row = keep(h, &handoff_cols);
            for k in ["done", "remaining", "decisions", "uncertain"] {
                row.entry(k.to_string())
                    .or_insert_with(|| Value::String("[]".into()));
            }
            push("handoffs", row);
        }
        for d in item["dependencies"].as_array().into_iter().flatten() {
            let (Some(a), Some(b)) = (d["issue_id"].as_str(), d["depends_on_id"].as_str()) else {
                continue;
            };
            let rel = d["relation_type"].as_str().unwrap_or("depends_on");
            let dep_id = crate::model::link_id("dep_", &format!("{a}|{b}|{rel}"));
            let mut row = Map::new();
            row.insert("id".into(), json!(dep_id));
            row.insert("issue_id".into(), json!(a));
            row.insert("depends_on_id".into(), json!(b));
            row.insert("relation_type".into(), json!(rel));
            push("issue_dependencies", row);
        }
        for f in item["files"].as_array().into_iter().flatten() {
            push("issue_files", keep(f, &file_cols));
        }
    }
    tables_to_db(&tables, path)
}

/// td's Markdown export (`## td-…: Title`, then `- Status:`, `- Type:`, `- Priority:`,
/// `- Points:`, `- Labels:` lines and the description) as a td database at `path`. A heading
/// without an id gets a fresh one.
pub fn td_markdown_to_db(text: &str, path: &Path) -> Result<()> {
    use serde_json::{json, Map, Value};
    let now = crate::model::now_timestamp();
    let mut issues: Vec<Map<String, Value>> = Vec::new();
    let mut desc: Vec<&str> = Vec::new();
    let finish = |issues: &mut Vec<Map<String, Value>>, desc: &mut Vec<&str>| {
        if let Some(last) = issues.last_mut() {
            let d = desc.join("\n").trim().to_string();
            if !d.is_empty() {
                last.insert("description".into(), json!(d));
            }
        }
        desc.clear();
    };
    for line in text.lines() {
        if let Some(head) = line.strip_prefix("## ") {
            finish(&mut issues, &mut desc);
            let head = head.trim();
            let (id, title) = match head.split_once(": ") {
                Some((id, t))
                    if crate::model::Kind::of_id(id) == Some(crate::model::Kind::Issue) =>
                {
                    (id.to_string(), t.trim().to_string())
                }
                _ => (crate::model::Kind::Issue.new_id(), head.to_string()),
            };
            let mut row = Map::new();
            for (k, v) in [
                ("id", id),
                ("title", title),
                ("status", "open".into()),
                ("type", "task".into()),
                ("priority", "P2".into()),
                ("created_at", now.clone()),
                ("updated_at", now.clone()),
            ] {
                row.insert(k.into(), json!(v));
            }
            issues.push(row);
            continue;
        }
        let Some(row) = issues.last_mut() else {
            continue;
        };
        let field = line
            .trim()
            .strip_prefix("- ")
            .and_then(|l| l.split_once(':'));
        match field.map(|(k, v)| (k.trim(), v.trim())) {
            Some(("Status", v)) => {
                row.insert(
                    "status".into(),
                    json!(crate::model::Status::parse(v)?.as_str()),
                );
            }
            Some(("Type", v)) => {
                row.insert("type".into(), json!(crate::model::parse_type(v)?));
            }
            Some(("Priority", v)) => {
                row.insert("priority".into(), json!(v));
            }
            Some(("Points", v)) => {
                row.insert("points".into(), json!(v.parse::<i64>().unwrap_or(0)));
            }
            Some(("Labels", v)) => {
                let labels: Vec<&str> = v
                    .split(',')
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect();
                row.insert("labels".into(), json!(labels.join(",")));
            }
            _ => desc.push(line),
        }
    }
    finish(&mut issues, &mut desc);
    let mut tables = Map::new();
    tables.insert(
        "issues".into(),
        Value::Array(issues.into_iter().map(Value::Object).collect()),
    );
    tables_to_db(&tables, path)
}

/// Entities per td table in a database (what a migration from it would move).
pub fn entity_counts(conn: &Connection) -> Result<BTreeMap<String, usize>> {
    let mut out = BTreeMap::new();
    for table in ENTITY_TABLES {
        let n = rows(conn, table, "", None)?
            .iter()
            .filter(|r| text(r, "id") != "bd-all-issues")
            .count();
        if n > 0 {
            out.insert(table.to_string(), n);
        }
    }
    Ok(out)
}

impl Store {
    /// `td import --force`: issues of `src` that exist here already (which an import skips)
    /// take the source's values, field by field, in one write. Returns the ids overwritten.
    pub fn import_overwrite(&mut self, src: &Path, session: &str) -> Result<Vec<String>> {
        let source = open_source(src)?;
        let ids: Vec<String> = rows(&source, "issues", "", None)?
            .iter()
            .map(|r| text(r, "id"))
            .collect();
        self.write(session, |tx| {
            let mut changed = Vec::new();
            for id in ids {
                let (Some(theirs), Some(ours)) = (
                    crate::query::find_issue(&source, &id)?,
                    crate::query::find_issue(tx.conn(), &id)?,
                ) else {
                    continue;
                };
                let (theirs, ours) = (theirs.to_json(), ours.to_json());
                if theirs == ours {
                    continue;
                }
                tx.change(&id, |d| {
                    crate::doc::put_issue_row(d, &theirs, &ours)?;
                    crate::doc::put_str(d, "updated_at", &crate::model::now_timestamp())
                })?;
                changed.push(id);
            }
            Ok(changed)
        })
    }

    /// What `migrate_from` would import, without writing: rows per table not present yet.
    pub fn migrate_dry_run(&self, src: &Path) -> Result<BTreeMap<String, usize>> {
        let source = open_source(src)?;
        let mut out = BTreeMap::new();
        for table in ENTITY_TABLES {
            let n = rows(&source, table, "", None)?
                .iter()
                .map(|r| text(r, "id"))
                .filter(|id| id != "bd-all-issues")
                .filter(|id| {
                    crate::query::doc_version(self.conn(), id)
                        .map(|v| v.is_none())
                        .unwrap_or(true)
                })
                .count();
            if n > 0 {
                out.insert(table.to_string(), n);
            }
        }
        Ok(out)
    }
}
