//! Evaluating a TDQ query over the materialized rows, with td's semantics
//! (`internal/query/evaluator.go` and `execute.go`):
//!
//! - `=`/`!=` on issue fields compare the text exactly; `~`/`!~` test containment
//!   case-insensitively; `<`… compare priorities by urgency order (`P0 < P1`), dates by
//!   calendar day (or by instant for an hour offset), anything else as numbers.
//! - `EMPTY` matches null, `""` and 0; `NULL` only a missing value.
//! - Cross-entity fields hold when *some* row of the issue's logs, comments, files or
//!   dependencies (or its latest handoff, or an ancestor epic for `epic`) matches, with `=`
//!   ignoring case as td does.
//!
//! Related rows are read once per query, for every issue at once, and only for the prefixes
//! and functions the query uses: a cross-entity query costs one extra scan, not one per issue.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Datelike, Duration, Local, NaiveDate, NaiveDateTime, TimeZone};
use rusqlite::Connection;

use super::{Node, Op, Query, Sort, Value};
use crate::error::Result;
use crate::query::{self, Issue};

/// Who is asking and when: `@me` and relative dates resolve against these.
#[derive(Debug, Clone)]
pub struct EvalContext {
    /// The acting session (`@me`).
    pub session: String,
    /// Now (relative dates; tests fix it).
    pub now: DateTime<Local>,
}

impl EvalContext {
    /// The context of `session`, now.
    pub fn new(session: &str) -> EvalContext {
        EvalContext {
            session: session.to_string(),
            now: Local::now(),
        }
    }
}

/// td's execute options.
#[derive(Debug, Clone)]
pub struct QueryOptions {
    /// At most this many results (`-n`; `None`: all).
    pub limit: Option<usize>,
    /// At most this many issues considered, in sort order (`--max-scan`).
    pub max_scan: usize,
    /// `--sort` (a `sort:` clause in the query wins).
    pub sort: Option<Sort>,
}

impl Default for QueryOptions {
    fn default() -> Self {
        QueryOptions {
            limit: None,
            max_scan: DEFAULT_MAX_SCAN,
            sort: None,
        }
    }
}

/// td's default scan cap.
pub const DEFAULT_MAX_SCAN: usize = 10_000;

/// What a query found.
#[derive(Debug, Clone)]
pub struct QueryResult {
    /// The matching issues, in order, at most `limit`.
    pub issues: Vec<Issue>,
    /// How many matched before the limit.
    pub matched: usize,
    /// The limit dropped matches.
    pub truncated: bool,
    /// The scan cap was reached: issues beyond it were not considered.
    pub scan_limited: bool,
}

/// A log, comment, file link or dependency of an issue, flattened to the fields TDQ reads.
#[derive(Debug, Default)]
struct Related {
    logs: HashMap<String, Vec<[String; 4]>>,
    comments: HashMap<String, Vec<[String; 3]>>,
    handoffs: HashMap<String, [String; 5]>,
    files: HashMap<String, Vec<[String; 2]>>,
    depends_on: HashMap<String, Vec<String>>,
    blocks: HashMap<String, Vec<String>>,
    open_deps: HashSet<String>,
    rework: HashSet<String>,
    parents: HashMap<String, (String, String)>,
    by_id: HashMap<String, Issue>,
}

#[derive(Default)]
struct Needs {
    prefixes: HashSet<String>,
    functions: HashSet<String>,
    epic: bool,
}

fn needs(n: &Node, out: &mut Needs) {
    match n {
        Node::And(a, b) | Node::Or(a, b) => {
            needs(a, out);
            needs(b, out);
        }
        Node::Not(x) => needs(x, out),
        Node::Field { field, .. } => {
            if field == "epic" {
                out.epic = true;
            }
            if let Some((p, _)) = field.split_once('.') {
                out.prefixes.insert(p.to_string());
            }
        }
        Node::Func { name, .. } => {
            out.functions.insert(name.clone());
        }
        Node::Text(_) => {}
    }
}

fn strings(conn: &Connection, sql: &str, n: usize) -> Result<Vec<Vec<String>>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], |r| {
        (0..n)
            .map(|i| r.get::<_, Option<String>>(i).map(|v| v.unwrap_or_default()))
            .collect::<rusqlite::Result<Vec<String>>>()
    })?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

fn load(conn: &Connection, need: &Needs, issues: &[Issue]) -> Result<Related> {
    let mut r = Related::default();
    let has = |p: &str| need.prefixes.contains(p);
    let f = |n: &str| need.functions.contains(n);
    if has("log") {
        for row in strings(
            conn,
            "SELECT issue_id, message, type, session_id, timestamp FROM logs ORDER BY timestamp, id",
            5,
        )? {
            r.logs.entry(row[0].clone()).or_default().push([
                row[1].clone(),
                row[2].clone(),
                row[3].clone(),
                row[4].clone(),
            ]);
        }
    }
    if has("comment") {
        for row in strings(
            conn,
            "SELECT issue_id, text, session_id, created_at FROM comments ORDER BY created_at, id",
            4,
        )? {
            r.comments.entry(row[0].clone()).or_default().push([
                row[1].clone(),
                row[2].clone(),
                row[3].clone(),
            ]);
        }
    }
    if has("handoff") {
        // Rows in time order: the last one kept per issue is its latest handoff.
        for row in strings(
            conn,
            "SELECT issue_id, done, remaining, decisions, uncertain, timestamp FROM handoffs ORDER BY timestamp, id",
            6,
        )? {
            let join = |s: &str| -> String {
                serde_json::from_str::<Vec<String>>(s)
                    .map(|v| v.join(" "))
                    .unwrap_or_default()
            };
            r.handoffs.insert(
                row[0].clone(),
                [
                    join(&row[1]),
                    join(&row[2]),
                    join(&row[3]),
                    join(&row[4]),
                    row[5].clone(),
                ],
            );
        }
    }
    if has("file") || f("linked_to") {
        for row in strings(conn, "SELECT issue_id, file_path, role FROM issue_files", 3)? {
            r.files
                .entry(row[0].clone())
                .or_default()
                .push([row[1].clone(), row[2].clone()]);
        }
    }
    if has("dep") || f("blocks") || f("blocked_by") {
        for row in strings(
            conn,
            "SELECT issue_id, depends_on_id FROM issue_dependencies WHERE relation_type = 'depends_on'",
            2,
        )? {
            r.depends_on
                .entry(row[0].clone())
                .or_default()
                .push(row[1].clone());
            r.blocks.entry(row[1].clone()).or_default().push(row[0].clone());
        }
    }
    if f("is_ready") || f("has_open_deps") {
        for row in strings(
            conn,
            "SELECT DISTINCT d.issue_id FROM issue_dependencies d JOIN issues i ON d.depends_on_id = i.id \
             WHERE d.relation_type = 'depends_on' AND i.status != 'closed' AND i.deleted_at IS NULL",
            1,
        )? {
            r.open_deps.insert(row[0].clone());
        }
    }
    if f("rework") {
        // A rejection (a changes_requested review) not followed by another review, on an
        // issue back in work: from synced reviews, so every replica agrees.
        for row in strings(
            conn,
            "SELECT i.id FROM issues i WHERE i.status IN ('open', 'in_progress') AND i.deleted_at IS NULL \
             AND (SELECT decision FROM issue_reviews r WHERE r.issue_id = i.id ORDER BY r.created_at DESC, r.id DESC LIMIT 1) = 'changes_requested'",
            1,
        )? {
            r.rework.insert(row[0].clone());
        }
    }
    if need.epic || f("descendant_of") {
        for row in strings(conn, "SELECT id, parent_id, type FROM issues", 3)? {
            r.parents
                .insert(row[0].clone(), (row[1].clone(), row[2].clone()));
        }
        if need.epic {
            r.by_id = issues.iter().map(|i| (i.id.clone(), i.clone())).collect();
        }
    }
    Ok(r)
}

/// A date literal: the instant, and whether it names a whole day.
pub(crate) fn parse_date_literal(s: &str) -> Option<(DateTime<Local>, bool)> {
    let local = |n: NaiveDateTime| Local.from_local_datetime(&n).earliest();
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return local(d.and_hms_opt(0, 0, 0)?).map(|t| (t, true));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some((t.with_timezone(&Local), false));
    }
    for f in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, f) {
            return local(n).map(|t| (t, false));
        }
    }
    None
}

/// A stored timestamp (td's or RFC 3339) in local time.
fn stored_time(s: &str) -> Option<DateTime<Local>> {
    crate::model::parse_timestamp(s)
        .map(|t| t.with_timezone(&Local))
        .or_else(|| parse_date_literal(s).map(|(t, _)| t))
}

/// A relative date resolved against `now`, as td resolves it: a day (`YYYY-MM-DD`), or an
/// instant for an hour offset.
fn resolve_relative(raw: &str, now: DateTime<Local>) -> String {
    let day = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
    let today = now.date_naive();
    let monday = today - Duration::days(today.weekday().num_days_from_monday() as i64);
    match raw {
        "today" => return day(today),
        "yesterday" => return day(today - Duration::days(1)),
        "this_week" => return day(monday),
        "last_week" => return day(monday - Duration::days(7)),
        "this_month" => return day(today.with_day(1).unwrap_or(today)),
        "last_month" => {
            return day(crate::dates::add_months(
                today.with_day(1).unwrap_or(today),
                -1,
            ))
        }
        _ => {}
    }
    let (sign, body) = match raw.as_bytes().first() {
        Some(b'-') => (-1, &raw[1..]),
        Some(b'+') => (1, &raw[1..]),
        _ => (1, raw),
    };
    let (num, unit) = body.split_at(body.len().saturating_sub(1));
    let Ok(n) = num.parse::<i64>() else {
        return raw.to_string();
    };
    let n = sign * n.min(1_000_000);
    match unit {
        "d" => day(today + Duration::days(n)),
        "w" => day(today + Duration::days(n * 7)),
        "m" => day(crate::dates::add_months(today, n)),
        "h" => (now + Duration::hours(n))
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
        _ => raw.to_string(),
    }
}

/// A field's value on an issue, as td's getters return it.
#[derive(Debug, Clone, PartialEq)]
enum Got {
    Text(String),
    Int(i64),
    Bool(bool),
    Time(Option<DateTime<Local>>),
}

fn get(i: &Issue, field: &str) -> Option<Got> {
    let t = |s: &str| Some(Got::Text(s.to_string()));
    match field {
        "id" => t(&i.id),
        "title" => t(&i.title),
        "description" => t(&i.description),
        "acceptance" => t(&i.acceptance),
        "status" => t(&i.status),
        "type" => t(&i.issue_type),
        "priority" => t(&i.priority),
        "points" => Some(Got::Int(i.points)),
        "labels" => Some(Got::Text(i.labels.join(","))),
        "parent" | "parent_id" => t(&i.parent_id),
        "implementer" | "implementer_session" => t(&i.implementer_session),
        "reviewer" | "reviewer_session" => t(&i.reviewer_session),
        "creator" => t(&i.creator_session),
        "branch" | "created_branch" => t(&i.created_branch),
        "sprint" => t(&i.sprint),
        "minor" => Some(Got::Bool(i.minor)),
        "created" | "created_at" => Some(Got::Time(stored_time(&i.created_at))),
        "updated" | "updated_at" => Some(Got::Time(stored_time(&i.updated_at))),
        "closed" | "closed_at" => Some(Got::Time(i.closed_at.as_deref().and_then(stored_time))),
        "due" => Some(Got::Time(i.due_date.as_deref().and_then(stored_time))),
        "defer" => Some(Got::Time(i.defer_until.as_deref().and_then(stored_time))),
        _ => None,
    }
}

fn as_text(g: &Got) -> String {
    match g {
        Got::Text(s) => s.clone(),
        Got::Int(n) => n.to_string(),
        Got::Bool(b) => b.to_string(),
        Got::Time(Some(t)) => t.to_rfc3339(),
        Got::Time(None) => String::new(),
    }
}

fn priority_rank(s: &str) -> Option<u8> {
    match s.to_ascii_uppercase().as_str() {
        "P0" => Some(0),
        "P1" => Some(1),
        "P2" => Some(2),
        "P3" => Some(3),
        "P4" => Some(4),
        _ => None,
    }
}

fn ordered(c: std::cmp::Ordering, op: Op) -> bool {
    use std::cmp::Ordering::*;
    match op {
        Op::Eq => c == Equal,
        Op::Ne => c != Equal,
        Op::Lt => c == Less,
        Op::Gt => c == Greater,
        Op::Le => c != Greater,
        Op::Ge => c != Less,
        _ => false,
    }
}

fn compare_time(t: DateTime<Local>, lit: &str, op: Op) -> bool {
    let Some((l, day_only)) = parse_date_literal(lit) else {
        return false;
    };
    let c = if day_only {
        t.date_naive().cmp(&l.date_naive())
    } else {
        t.cmp(&l)
    };
    ordered(c, op)
}

fn number(s: &str) -> f64 {
    s.trim().parse::<f64>().unwrap_or(0.0)
}

struct Eval<'a> {
    ctx: &'a EvalContext,
    rel: &'a Related,
}

impl Eval<'_> {
    /// A value as the text it compares as (`@me` is the session, a relative date its day).
    fn text(&self, v: &Value) -> String {
        match v {
            Value::Me => self.ctx.session.clone(),
            Value::Date {
                raw,
                relative: true,
            } => resolve_relative(raw, self.ctx.now),
            other => other.to_string(),
        }
    }

    fn field(&self, i: &Issue, field: &str, op: Op, value: &Value) -> bool {
        if field == "epic" {
            return self.epic(i, op, value);
        }
        if let Some((prefix, sub)) = field.split_once('.') {
            return self.cross(i, prefix, sub, op, value);
        }
        let Some(got) = get(i, field) else {
            return true;
        };
        match op {
            Op::Eq => self.equal(&got, value),
            Op::Ne => !self.equal(&got, value),
            Op::Contains => as_text(&got)
                .to_lowercase()
                .contains(&self.text(value).to_lowercase()),
            Op::NotContains => !as_text(&got)
                .to_lowercase()
                .contains(&self.text(value).to_lowercase()),
            _ => self.order(&got, value, op),
        }
    }

    fn equal(&self, got: &Got, value: &Value) -> bool {
        match value {
            Value::Empty => {
                return matches!(got, Got::Time(None) | Got::Int(0))
                    || matches!(got, Got::Text(s) if s.is_empty())
            }
            Value::Null => return matches!(got, Got::Time(None)),
            Value::List(items) => return items.iter().any(|v| self.equal(got, v)),
            _ => {}
        }
        match got {
            Got::Time(Some(t)) => compare_time(*t, &self.text(value), Op::Eq),
            Got::Time(None) => false,
            other => as_text(other) == self.text(value),
        }
    }

    fn order(&self, got: &Got, value: &Value, op: Op) -> bool {
        let want = self.text(value);
        match got {
            Got::Time(Some(t)) => compare_time(*t, &want, op),
            Got::Time(None) => false,
            Got::Text(s) => match (priority_rank(s), priority_rank(&want)) {
                (Some(a), Some(b)) => ordered(a.cmp(&b), op),
                _ => ordered(
                    number(s)
                        .partial_cmp(&number(&want))
                        .unwrap_or(std::cmp::Ordering::Equal),
                    op,
                ),
            },
            Got::Int(n) => ordered(
                (*n as f64)
                    .partial_cmp(&number(&want))
                    .unwrap_or(std::cmp::Ordering::Equal),
                op,
            ),
            Got::Bool(b) => ordered(
                (*b as i64 as f64)
                    .partial_cmp(&number(&want))
                    .unwrap_or(std::cmp::Ordering::Equal),
                op,
            ),
        }
    }

    /// td's `matchValue` for related rows: `=` ignores case, `~` contains.
    fn matches(&self, field_value: &str, op: Op, value: &Value) -> bool {
        let want = self.text(value);
        match op {
            Op::Eq => field_value.to_lowercase() == want.to_lowercase(),
            Op::Ne => field_value.to_lowercase() != want.to_lowercase(),
            Op::Contains => field_value.to_lowercase().contains(&want.to_lowercase()),
            Op::NotContains => !field_value.to_lowercase().contains(&want.to_lowercase()),
            _ => false,
        }
    }

    /// A date field of a related row: compared by day as issue dates are.
    fn matches_time(&self, stored: &str, op: Op, value: &Value) -> bool {
        match stored_time(stored) {
            Some(t) => compare_time(t, &self.text(value), op),
            None => false,
        }
    }

    fn cross(&self, i: &Issue, prefix: &str, sub: &str, op: Op, value: &Value) -> bool {
        let r = self.rel;
        match prefix {
            "log" => r
                .logs
                .get(&i.id)
                .into_iter()
                .flatten()
                .any(|[msg, ty, ses, at]| match sub {
                    "message" => self.matches(msg, op, value),
                    "type" => self.matches(ty, op, value),
                    "session" => self.matches(ses, op, value),
                    "timestamp" => self.matches_time(at, op, value),
                    _ => false,
                }),
            "comment" => {
                r.comments
                    .get(&i.id)
                    .into_iter()
                    .flatten()
                    .any(|[text, ses, at]| match sub {
                        "text" => self.matches(text, op, value),
                        "session" => self.matches(ses, op, value),
                        "created" => self.matches_time(at, op, value),
                        _ => false,
                    })
            }
            "handoff" => r
                .handoffs
                .get(&i.id)
                .is_some_and(|[done, rem, dec, unc, at]| match sub {
                    "done" => self.matches(done, op, value),
                    "remaining" => self.matches(rem, op, value),
                    "decisions" => self.matches(dec, op, value),
                    "uncertain" => self.matches(unc, op, value),
                    "timestamp" => self.matches_time(at, op, value),
                    _ => false,
                }),
            "file" => r
                .files
                .get(&i.id)
                .into_iter()
                .flatten()
                .any(|[path, role]| match sub {
                    "path" => self.matches(path, op, value),
                    "role" => self.matches(role, op, value),
                    _ => false,
                }),
            "dep" => {
                let list = match sub {
                    "depends_on" => r.depends_on.get(&i.id),
                    _ => r.blocks.get(&i.id),
                };
                list.into_iter()
                    .flatten()
                    .any(|other| self.matches(other, op, value))
            }
            _ => false,
        }
    }

    /// `epic op value`: some ancestor epic's id matches.
    fn epic(&self, i: &Issue, op: Op, value: &Value) -> bool {
        let mut current = i.parent_id.clone();
        let mut seen = HashSet::new();
        while !current.is_empty() && seen.insert(current.clone()) && seen.len() <= 100 {
            let Some((parent, kind)) = self.rel.parents.get(&current) else {
                break;
            };
            if kind == "epic" && self.matches(&current, op, value) {
                return true;
            }
            current = parent.clone();
        }
        false
    }

    fn descendant_of(&self, i: &Issue, target: &str) -> bool {
        let mut current = i.parent_id.clone();
        let mut seen = HashSet::new();
        while !current.is_empty() && seen.insert(current.clone()) && seen.len() <= 100 {
            if current == target {
                return true;
            }
            match self.rel.parents.get(&current) {
                Some((parent, _)) => current = parent.clone(),
                None => break,
            }
        }
        false
    }

    fn func(&self, i: &Issue, name: &str, args: &[Value]) -> bool {
        let arg = |n: usize| args.get(n).map(|v| self.text(v)).unwrap_or_default();
        let values = || -> Vec<String> {
            args.iter()
                .skip(1)
                .map(|v| self.text(v).to_lowercase())
                .collect()
        };
        match name {
            "has" => match get(i, &arg(0)) {
                None | Some(Got::Time(None)) => false,
                Some(Got::Text(s)) => !s.is_empty(),
                Some(_) => true,
            },
            "is" => i.status.eq_ignore_ascii_case(&arg(0)),
            "any" => get(i, &arg(0)).is_some_and(|g| {
                let v = as_text(&g).to_lowercase();
                values().contains(&v)
            }),
            "all" => get(i, &arg(0)).is_some_and(|g| {
                let v = as_text(&g).to_lowercase();
                values().iter().all(|w| v.contains(w.as_str()))
            }),
            "none" => get(i, &arg(0)).is_none_or(|g| {
                let v = as_text(&g).to_lowercase();
                !values().iter().any(|w| v.contains(w.as_str()))
            }),
            "child_of" => i.parent_id == arg(0),
            "descendant_of" => self.descendant_of(i, &arg(0)),
            "blocks" => self
                .rel
                .depends_on
                .get(&arg(0))
                .is_some_and(|deps| deps.contains(&i.id)),
            "blocked_by" => self
                .rel
                .depends_on
                .get(&i.id)
                .is_some_and(|deps| deps.contains(&arg(0))),
            "linked_to" => {
                let path = arg(0);
                self.rel
                    .files
                    .get(&i.id)
                    .is_some_and(|fs| fs.iter().any(|[p, _]| p.contains(&path)))
            }
            "rework" => self.rel.rework.contains(&i.id),
            "is_ready" => !self.rel.open_deps.contains(&i.id),
            "has_open_deps" => self.rel.open_deps.contains(&i.id),
            "label" | "labels" => {
                let want = arg(0).to_lowercase();
                i.labels.iter().any(|l| l.to_lowercase() == want)
            }
            _ => false,
        }
    }

    fn node(&self, i: &Issue, n: &Node) -> bool {
        match n {
            Node::And(a, b) => self.node(i, a) && self.node(i, b),
            Node::Or(a, b) => self.node(i, a) || self.node(i, b),
            Node::Not(x) => !self.node(i, x),
            Node::Field { field, op, value } => self.field(i, field, *op, value),
            Node::Func { name, args } => self.func(i, name, args),
            Node::Text(t) => {
                let t = t.to_lowercase();
                i.id.to_lowercase().contains(&t)
                    || i.title.to_lowercase().contains(&t)
                    || i.description.to_lowercase().contains(&t)
            }
        }
    }
}

/// Orders issues by a sort clause (ties by id).
fn sort_issues(issues: &mut [Issue], s: &Sort) {
    let key = |i: &Issue| -> String {
        match s.column.as_str() {
            "created_at" => i.created_at.clone(),
            "updated_at" => i.updated_at.clone(),
            "closed_at" => i.closed_at.clone().unwrap_or_default(),
            "deleted_at" => i.deleted_at.clone().unwrap_or_default(),
            "title" => i.title.to_lowercase(),
            "status" => i.status.clone(),
            "points" => format!("{:012}", i.points.max(0)),
            "priority" => i.priority.clone(),
            _ => i.id.clone(),
        }
    };
    issues.sort_by(|a, b| {
        let c = key(a).cmp(&key(b)).then_with(|| a.id.cmp(&b.id));
        if s.descending {
            c.reverse()
        } else {
            c
        }
    });
}

/// Runs `q` over the project's live issues (closed included), as td's `query` does: issues in
/// sort order (the query's `sort:`, else `opts.sort`, else priority), the first `max_scan`
/// considered, matches kept up to `limit`.
pub fn evaluate(
    conn: &Connection,
    q: &Query,
    ctx: &EvalContext,
    opts: &QueryOptions,
) -> Result<QueryResult> {
    let mut issues = query::all_live_issues(conn)?;
    if let Some(s) = q.sort.as_ref().or(opts.sort.as_ref()) {
        sort_issues(&mut issues, s);
    }
    let scan_limited = issues.len() >= opts.max_scan;
    issues.truncate(opts.max_scan);
    let mut found = match &q.root {
        None => issues,
        Some(root) => {
            let mut need = Needs::default();
            needs(root, &mut need);
            let rel = load(conn, &need, &issues)?;
            let e = Eval { ctx, rel: &rel };
            issues.into_iter().filter(|i| e.node(i, root)).collect()
        }
    };
    let matched = found.len();
    let truncated = opts.limit.is_some_and(|n| found.len() > n);
    if let Some(n) = opts.limit {
        found.truncate(n);
    }
    Ok(QueryResult {
        issues: found,
        matched,
        truncated,
        scan_limited,
    })
}

/// Filters `issues` by `q` (boards and `td list -f` apply a query to rows they already hold).
pub fn filter(
    conn: &Connection,
    q: &Query,
    ctx: &EvalContext,
    issues: Vec<Issue>,
) -> Result<Vec<Issue>> {
    let Some(root) = &q.root else {
        return Ok(issues);
    };
    let mut need = Needs::default();
    needs(root, &mut need);
    let rel = load(conn, &need, &issues)?;
    let e = Eval { ctx, rel: &rel };
    Ok(issues.into_iter().filter(|i| e.node(i, root)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_dates_resolve_as_td_resolves_them() {
        // Tuesday 2026-11-24, 15:30 local.
        let now = Local
            .from_local_datetime(
                &NaiveDate::from_ymd_opt(2026, 11, 24)
                    .unwrap()
                    .and_hms_opt(15, 30, 0)
                    .unwrap(),
            )
            .unwrap();
        for (raw, want) in [
            ("today", "2026-11-24"),
            ("yesterday", "2026-11-23"),
            ("this_week", "2026-11-23"),
            ("last_week", "2026-11-16"),
            ("this_month", "2026-11-01"),
            ("last_month", "2026-10-01"),
            ("-7d", "2026-11-17"),
            ("+3d", "2026-11-27"),
            ("-2w", "2026-11-10"),
            ("-1m", "2026-10-24"),
            ("12d", "2026-12-06"),
            ("-6h", "2026-11-24 09:30:00"),
        ] {
            assert_eq!(resolve_relative(raw, now), want, "{raw}");
        }
    }
}
