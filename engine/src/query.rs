//! Reads over the materialized tables: issues, their logs, handoffs, comments, reviews,
//! dependencies, and the listing filters of `td list`. JSON shapes follow td's.

use rusqlite::{Connection, OptionalExtension, Row};
use serde_json::Value;

use crate::error::{not_found, Result};
use crate::views::{self, HandoffView, IssueDetail};

/// One issue row (td's `issues`), typed: see [`crate::views::IssueView`].
pub type Issue = crate::views::IssueView;

pub use crate::views::{row_to_json, sql_to_json};

fn issue_from_row(row: &Row<'_>) -> rusqlite::Result<Issue> {
    crate::views::from_row(row)
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

/// How `td list` orders issues.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SortKey {
    /// Priority, then oldest first (td's default).
    #[default]
    Priority,
    /// Newest first.
    Created,
    /// Most recently changed first.
    Updated,
    /// By id.
    Id,
    /// By title.
    Title,
    /// By status, then priority.
    Status,
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
    /// Order of the listing.
    pub sort: SortKey,
    /// Reverse the order (`-r`).
    pub reverse: bool,
    /// Maximum rows.
    pub limit: Option<usize>,
    /// Only these ids (`-i`).
    pub ids: Vec<String>,
    /// Story points at least / at most (`--points 5`, `>=3`, `<=8`, `3-8`).
    pub points: Option<(Option<i64>, Option<i64>)>,
    /// Implemented by this session (`--implementer`).
    pub implementer: Option<String>,
    /// Reviewed by this session (`--reviewer`).
    pub reviewer: Option<String>,
    /// Inside this epic, at any depth (`--epic`).
    pub epic: Option<String>,
    /// Created on or after / before these days (`YYYY-MM-DD`; `--created`).
    pub created: Option<crate::dates::DayRange>,
    /// Updated in this range (`--updated`).
    pub updated: Option<crate::dates::DayRange>,
    /// Closed in this range (`--closed`).
    pub closed: Option<crate::dates::DayRange>,
    /// Which deferred or due issues to show (td hides deferred ones unless `--all`).
    pub dates: DateView,
    /// "Today" for deferral and due dates (`YYYY-MM-DD`; empty: the local date).
    pub today: String,
}

/// td's `--points` filter: `5` (exactly), `>=3`, `<=8` or `3-8`, as (at least, at most).
pub fn parse_points(s: &str) -> Result<(Option<i64>, Option<i64>)> {
    let s = s.trim();
    let num = |t: &str| {
        t.trim().parse::<i64>().map_err(|_| {
            crate::error::invalid(format!(
                "invalid points filter '{s}': use 5, >=3, <=8 or 3-8"
            ))
        })
    };
    if let Some(t) = s.strip_prefix(">=") {
        return Ok((Some(num(t)?), None));
    }
    if let Some(t) = s.strip_prefix("<=") {
        return Ok((None, Some(num(t)?)));
    }
    if let Some((a, b)) = s.split_once('-') {
        return Ok((Some(num(a)?), Some(num(b)?)));
    }
    let n = num(s)?;
    Ok((Some(n), Some(n)))
}

/// td's deferral views of `td list`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DateView {
    /// Every issue, deferred or not (`--all`).
    #[default]
    Any,
    /// Issues not deferred past today (td's default listing).
    HideDeferred,
    /// Only issues deferred past today (`--deferred`).
    Deferred,
    /// Open work past its due date (`--overdue`).
    Overdue,
    /// Issues deferred before whose date has come (`--surfacing`).
    Surfacing,
    /// Due within this many days (`--due-soon`: 3).
    DueSoon(i64),
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
    in_list(&mut sql, "id", &f.ids, &mut args);
    let mut push = |sql: &mut String, cond: &str, v: String| {
        args.push(v);
        sql.push_str(&cond.replace("?", &format!("?{}", args.len())));
    };
    if let Some((lo, hi)) = f.points {
        if let Some(lo) = lo {
            sql.push_str(&format!(" AND points >= {lo}"));
        }
        if let Some(hi) = hi {
            sql.push_str(&format!(" AND points <= {hi}"));
        }
    }
    if let Some(s) = &f.implementer {
        push(&mut sql, " AND implementer_session = ?", s.clone());
    }
    if let Some(s) = &f.reviewer {
        push(&mut sql, " AND reviewer_session = ?", s.clone());
    }
    if let Some(e) = &f.epic {
        push(
            &mut sql,
            " AND id IN (WITH RECURSIVE sub(id, depth) AS (SELECT id, 1 FROM issues WHERE parent_id = ? \
              UNION SELECT i.id, sub.depth + 1 FROM issues i JOIN sub ON i.parent_id = sub.id WHERE sub.depth < 100) \
              SELECT id FROM sub)",
            e.clone(),
        );
    }
    for (col, range) in [
        ("created_at", &f.created),
        ("updated_at", &f.updated),
        ("closed_at", &f.closed),
    ] {
        let Some(r) = range else { continue };
        if let Some(d) = &r.from {
            push(
                &mut sql,
                &format!(" AND substr({col}, 1, 10) >= ?"),
                d.clone(),
            );
        }
        if let Some(d) = &r.until {
            push(
                &mut sql,
                &format!(" AND substr({col}, 1, 10) < ?"),
                d.clone(),
            );
        }
    }
    let today = if f.today.is_empty() {
        chrono::Local::now().format("%Y-%m-%d").to_string()
    } else {
        f.today.clone()
    };
    match f.dates {
        DateView::Any => {}
        DateView::HideDeferred => push(
            &mut sql,
            " AND (defer_until IS NULL OR defer_until = '' OR substr(defer_until, 1, 10) <= ?)",
            today,
        ),
        DateView::Deferred => push(&mut sql, " AND substr(defer_until, 1, 10) > ?", today),
        DateView::Overdue => push(
            &mut sql,
            " AND due_date IS NOT NULL AND due_date != '' AND substr(due_date, 1, 10) < ? AND status != 'closed'",
            today,
        ),
        DateView::Surfacing => push(
            &mut sql,
            " AND defer_count > 0 AND (defer_until IS NULL OR defer_until = '' OR substr(defer_until, 1, 10) <= ?)",
            today,
        ),
        DateView::DueSoon(days) => {
            let until = chrono::NaiveDate::parse_from_str(&today, "%Y-%m-%d")
                .map(|d| (d + chrono::Duration::days(days)).format("%Y-%m-%d").to_string())
                .unwrap_or_else(|_| today.clone());
            push(
                &mut sql,
                " AND due_date IS NOT NULL AND due_date != '' AND substr(due_date, 1, 10) >= ?",
                today,
            );
            push(&mut sql, " AND substr(due_date, 1, 10) <= ? AND status != 'closed'", until);
        }
    }
    let order = match (f.sort, f.reverse) {
        (SortKey::Priority, false) => "priority, created_at, id",
        (SortKey::Priority, true) => "priority DESC, created_at DESC, id DESC",
        (SortKey::Created, false) => "created_at DESC, id",
        (SortKey::Created, true) => "created_at, id DESC",
        (SortKey::Updated, false) => "updated_at DESC, id",
        (SortKey::Updated, true) => "updated_at, id DESC",
        (SortKey::Id, false) => "id",
        (SortKey::Id, true) => "id DESC",
        (SortKey::Title, false) => "title, id",
        (SortKey::Title, true) => "title DESC, id DESC",
        (SortKey::Status, false) => "status, priority, id",
        (SortKey::Status, true) => "status DESC, priority DESC, id DESC",
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
pub(crate) fn row_exists(conn: &Connection, table: &str, id: &str) -> Result<bool> {
    let mut stmt = conn.prepare_cached(&format!("SELECT 1 FROM {table} WHERE id = ?1"))?;
    Ok(stmt.exists([id])?)
}

/// Rows of a child table for one issue, as JSON objects, oldest first.
pub(crate) fn rows_for(
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

/// The most recent handoff of an issue, with its arrays decoded.
pub fn latest_handoff(conn: &Connection, issue: &str) -> Result<Option<HandoffView>> {
    Ok(crate::views::rows(
        conn,
        "SELECT * FROM handoffs WHERE issue_id = ?1 ORDER BY timestamp DESC, id DESC LIMIT 1",
        issue,
    )?
    .pop())
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
pub fn issue_detail(conn: &Connection, id: &str) -> Result<IssueDetail> {
    let issue = find_issue(conn, id)?.ok_or_else(|| not_found(format!("issue not found: {id}")))?;
    // An issue renamed after an id clash (merge rule 8) says which id it was created with.
    let (created_as, _) = crate::lineage::locate(conn, id)?;
    let children: Vec<String> = list_issues(
        conn,
        &ListFilter {
            parent: Some(id.to_string()),
            all: true,
            sort: SortKey::Id,
            ..Default::default()
        },
    )?
    .into_iter()
    .map(|i| i.id)
    .collect();
    let by_issue = |table: &str, order: &str| {
        format!("SELECT * FROM {table} WHERE issue_id = ?1 ORDER BY {order}")
    };
    Ok(IssueDetail {
        version: doc_version(conn, id)?.unwrap_or_default(),
        renamed_from: (created_as != id).then_some(created_as),
        handoff: latest_handoff(conn, id)?,
        logs: views::rows(conn, &by_issue("logs", "timestamp, id"), id)?,
        comments: views::rows(conn, &by_issue("comments", "created_at, id"), id)?,
        reviews: views::rows(conn, &by_issue("issue_reviews", "created_at, id"), id)?,
        depends_on: dependencies_of(conn, id)?,
        blocks: dependents_of(conn, id)?,
        children,
        conflicts: crate::conflicts::list(conn, false, Some(id), None)?,
        issue,
    })
}

/// Open issues whose dependencies are all closed and that are not deferred past `today`
/// (`YYYY-MM-DD`), by priority: what `td ready` and `td next` offer.
pub fn ready_issues(conn: &Connection, today: &str) -> Result<Vec<Issue>> {
    ready_issues_up_to(conn, today, None)
}

/// The first `limit` of [`ready_issues`] (the limit applied in SQL, so `td usage` and
/// `td next` read a few rows, not every open issue).
pub fn ready_issues_up_to(
    conn: &Connection,
    today: &str,
    limit: Option<usize>,
) -> Result<Vec<Issue>> {
    let mut stmt = conn.prepare_cached(
        "SELECT * FROM issues i WHERE i.deleted_at IS NULL AND i.status = 'open' \
         AND (i.defer_until IS NULL OR i.defer_until = '' OR i.defer_until <= ?1) \
         AND NOT EXISTS (SELECT 1 FROM issue_dependencies d JOIN issues t ON t.id = d.depends_on_id \
                         WHERE d.issue_id = i.id AND d.relation_type = 'depends_on' \
                         AND t.status != 'closed' AND t.deleted_at IS NULL) \
         ORDER BY i.priority, i.created_at, i.id LIMIT ?2",
    )?;
    let limit = limit.map_or(-1, |n| n as i64);
    let rows = stmt.query_map(rusqlite::params![today, limit], issue_from_row)?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}
