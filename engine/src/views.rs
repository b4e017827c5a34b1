//! Typed read models: what the front ends (the CLI, and later `td serve` and `td monitor`)
//! read, as structs rather than JSON maps. Each serializes to exactly td's `--json` shape
//! (the CLI prints `serde_json::to_value` of them, whose keys come out sorted as td's did).
//!
//! Rows are read from the materialized tables through their JSON form, leniently: a text
//! column that holds NULL reads as `""`, a number stored as text reads as its value. The
//! tables are td's (written by td itself before a migration), so a read never fails on a
//! value td would have accepted.

use rusqlite::{types::ValueRef, Connection, Row};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::error::Result;

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

fn text<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    })
}

fn int<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<i64, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_i64().unwrap_or_default(),
        Value::String(s) => s.trim().parse().unwrap_or_default(),
        Value::Bool(b) => b as i64,
        _ => 0,
    })
}

fn flag<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<bool, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Bool(b) => b,
        Value::Number(n) => n.as_i64().unwrap_or_default() != 0,
        Value::String(s) => !matches!(s.trim(), "" | "0" | "false"),
        _ => false,
    })
}

fn labels<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => crate::model::parse_labels(&s),
        Value::Array(a) => a
            .into_iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    })
}

fn json_array<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Value, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => {
            serde_json::from_str::<Value>(&s).unwrap_or_else(|_| Value::Array(vec![]))
        }
        v @ Value::Array(_) => v,
        _ => Value::Array(vec![]),
    })
}

/// Reads one row into a typed model through its JSON form.
pub(crate) fn from_row<T: for<'de> Deserialize<'de>>(row: &Row<'_>) -> rusqlite::Result<T> {
    let m = row_to_json(row)?;
    serde_json::from_value(Value::Object(m))
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// Rows of `sql` (one `?1` parameter) as typed models.
pub(crate) fn rows<T: for<'de> Deserialize<'de>>(
    conn: &Connection,
    sql: &str,
    arg: &str,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map([arg], |r| from_row(r))?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// Serializes a stored time as td's `--json` does ([`crate::model::rfc3339_nanos`]).
fn td_time<S: serde::Serializer>(v: &str, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&crate::model::rfc3339_nanos(v))
}

/// [`td_time`] for an optional time (serialized only when set: td's `omitempty`).
fn td_time_opt<S: serde::Serializer>(
    v: &Option<String>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match v {
        Some(t) => td_time(t, s),
        None => s.serialize_none(),
    }
}

/// td stores 0/1 and prints a boolean.
fn td_bool<S: serde::Serializer>(v: &i64, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_bool(*v != 0)
}

fn is_empty_json_list(v: &Value) -> bool {
    v.as_array().is_none_or(|a| a.is_empty())
}

/// Serializes a read model to the JSON value td prints.
pub fn to_json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// One issue, as `td list --json` prints it (td's `issues` row, labels as an array, `minor` as
/// a boolean).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueView {
    /// `td-` + 6 hex.
    #[serde(deserialize_with = "text")]
    pub id: String,
    /// Title.
    #[serde(deserialize_with = "text")]
    pub title: String,
    /// Description (markdown).
    #[serde(default, deserialize_with = "text")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Status spelling (`open`, `in_progress`, `blocked`, `in_review`, `closed`).
    #[serde(deserialize_with = "text")]
    pub status: String,
    /// Type (`task`, `bug`, `feature`, `epic`, `chore`).
    #[serde(rename = "type", deserialize_with = "text")]
    pub issue_type: String,
    /// Priority `P0..P4`.
    #[serde(deserialize_with = "text")]
    pub priority: String,
    /// Story points.
    #[serde(default, deserialize_with = "int")]
    pub points: i64,
    /// Labels, in order.
    #[serde(default, deserialize_with = "labels")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// Parent epic or issue id, `""` for none.
    #[serde(default, deserialize_with = "text")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub parent_id: String,
    /// Acceptance criteria.
    #[serde(default, deserialize_with = "text")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub acceptance: String,
    /// Session implementing it.
    #[serde(default, deserialize_with = "text")]
    pub implementer_session: String,
    /// Session that approved it.
    #[serde(default, deserialize_with = "text")]
    pub reviewer_session: String,
    /// Creation time.
    #[serde(default, deserialize_with = "text")]
    #[serde(serialize_with = "td_time")]
    pub created_at: String,
    /// Last change.
    #[serde(default, deserialize_with = "text")]
    #[serde(serialize_with = "td_time")]
    pub updated_at: String,
    /// When it closed.
    #[serde(default)]
    #[serde(
        serialize_with = "td_time_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub closed_at: Option<String>,
    /// Soft-delete time.
    #[serde(default)]
    #[serde(
        serialize_with = "td_time_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub deleted_at: Option<String>,
    /// Minor issues skip review.
    #[serde(default, deserialize_with = "flag")]
    pub minor: bool,
    /// Branch it was created on.
    #[serde(default, deserialize_with = "text")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub created_branch: String,
    /// Session that created it.
    #[serde(default, deserialize_with = "text")]
    pub creator_session: String,
    /// Sprint name.
    #[serde(default, deserialize_with = "text")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sprint: String,
    /// Hidden from `ready` until this date.
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub defer_until: Option<String>,
    /// Due date.
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_date: Option<String>,
    /// How many times it was deferred.
    #[serde(default, deserialize_with = "int")]
    pub defer_count: i64,
    /// When it was approved.
    #[serde(default)]
    #[serde(
        serialize_with = "td_time_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub reviewed_at: Option<String>,
    /// Session that asked for review.
    #[serde(default, deserialize_with = "text")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub review_requested_by_session: String,
    /// Session that closed it.
    #[serde(default, deserialize_with = "text")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub closed_by_session: String,
}

impl IssueView {
    /// The JSON td prints for it.
    pub fn to_json(&self) -> Value {
        to_json(self)
    }

    /// The row as stored (every column, times as stored, labels as an array): what undo
    /// compares with the rows an action recorded, whatever `--json` prints.
    pub fn row_json(&self) -> Value {
        serde_json::json!({
            "id": self.id, "title": self.title, "description": self.description,
            "status": self.status, "type": self.issue_type, "priority": self.priority,
            "points": self.points, "labels": self.labels, "parent_id": self.parent_id,
            "acceptance": self.acceptance, "implementer_session": self.implementer_session,
            "reviewer_session": self.reviewer_session, "created_at": self.created_at,
            "updated_at": self.updated_at, "closed_at": self.closed_at,
            "deleted_at": self.deleted_at, "minor": self.minor,
            "created_branch": self.created_branch, "creator_session": self.creator_session,
            "sprint": self.sprint, "defer_until": self.defer_until, "due_date": self.due_date,
            "defer_count": self.defer_count, "reviewed_at": self.reviewed_at,
            "review_requested_by_session": self.review_requested_by_session,
            "closed_by_session": self.closed_by_session,
        })
    }

    /// A workflow or text field by its column name (`status`, `implementer_session`, …), for
    /// the code that handles columns by name; `None` for an unknown or NULL column.
    pub fn column(&self, name: &str) -> Option<&str> {
        Some(match name {
            "id" => &self.id,
            "title" => &self.title,
            "description" => &self.description,
            "status" => &self.status,
            "type" => &self.issue_type,
            "priority" => &self.priority,
            "parent_id" => &self.parent_id,
            "acceptance" => &self.acceptance,
            "implementer_session" => &self.implementer_session,
            "reviewer_session" => &self.reviewer_session,
            "created_at" => &self.created_at,
            "updated_at" => &self.updated_at,
            "closed_at" => self.closed_at.as_deref()?,
            "deleted_at" => self.deleted_at.as_deref()?,
            "created_branch" => &self.created_branch,
            "creator_session" => &self.creator_session,
            "sprint" => &self.sprint,
            "defer_until" => self.defer_until.as_deref()?,
            "due_date" => self.due_date.as_deref()?,
            "reviewed_at" => self.reviewed_at.as_deref()?,
            "review_requested_by_session" => &self.review_requested_by_session,
            "closed_by_session" => &self.closed_by_session,
            _ => return None,
        })
    }
}

/// A progress log entry (`logs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogView {
    /// `lg-` id.
    #[serde(deserialize_with = "text")]
    pub id: String,
    /// The issue (`""` for a log without one).
    #[serde(default, deserialize_with = "text")]
    pub issue_id: String,
    /// Who wrote it.
    #[serde(default, deserialize_with = "text")]
    pub session_id: String,
    /// The work session it belongs to.
    #[serde(default, deserialize_with = "text")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub work_session_id: String,
    /// The entry.
    #[serde(default, deserialize_with = "text")]
    pub message: String,
    /// `progress`, `blocker`, `decision`, `hypothesis`, `tried`, `result`.
    #[serde(rename = "type", default, deserialize_with = "text")]
    pub log_type: String,
    /// When.
    #[serde(default, deserialize_with = "text")]
    #[serde(serialize_with = "td_time")]
    pub timestamp: String,
}

/// A comment (`comments`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentView {
    /// `cm-` id.
    #[serde(deserialize_with = "text")]
    pub id: String,
    /// The issue.
    #[serde(default, deserialize_with = "text")]
    pub issue_id: String,
    /// Who wrote it.
    #[serde(default, deserialize_with = "text")]
    pub session_id: String,
    /// The comment.
    #[serde(default, deserialize_with = "text")]
    pub text: String,
    /// When.
    #[serde(default, deserialize_with = "text")]
    #[serde(serialize_with = "td_time")]
    pub created_at: String,
}

/// A handoff (`handoffs`), its lists decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffView {
    /// `ho-` id.
    #[serde(deserialize_with = "text")]
    pub id: String,
    /// The issue.
    #[serde(default, deserialize_with = "text")]
    pub issue_id: String,
    /// Who handed off.
    #[serde(default, deserialize_with = "text")]
    pub session_id: String,
    /// What is done.
    #[serde(default, deserialize_with = "json_array")]
    #[serde(skip_serializing_if = "is_empty_json_list")]
    pub done: Value,
    /// What remains.
    #[serde(default, deserialize_with = "json_array")]
    #[serde(skip_serializing_if = "is_empty_json_list")]
    pub remaining: Value,
    /// Decisions made.
    #[serde(default, deserialize_with = "json_array")]
    #[serde(skip_serializing_if = "is_empty_json_list")]
    pub decisions: Value,
    /// Open questions.
    #[serde(default, deserialize_with = "json_array")]
    #[serde(skip_serializing_if = "is_empty_json_list")]
    pub uncertain: Value,
    /// When.
    #[serde(default, deserialize_with = "text")]
    #[serde(serialize_with = "td_time")]
    pub timestamp: String,
}

/// A review (`issue_reviews`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewView {
    /// `rv-` id.
    #[serde(deserialize_with = "text")]
    pub id: String,
    /// The issue.
    #[serde(default, deserialize_with = "text")]
    pub issue_id: String,
    /// The session that recorded it.
    #[serde(default, deserialize_with = "text")]
    pub reviewer_session: String,
    /// `approved` or `changes_requested`.
    #[serde(default, deserialize_with = "text")]
    pub decision: String,
    /// The reason given.
    #[serde(default, deserialize_with = "text")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub summary: String,
    /// The session that asked for review.
    #[serde(default, deserialize_with = "text")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub requested_by_session: String,
    /// When.
    #[serde(default, deserialize_with = "text")]
    #[serde(serialize_with = "td_time")]
    pub created_at: String,
    /// When a later change made it stale.
    #[serde(default)]
    #[serde(
        serialize_with = "td_time_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub superseded_at: Option<String>,
    /// Recorded by a session that implemented the issue (td stores 0/1).
    #[serde(default, deserialize_with = "int")]
    #[serde(serialize_with = "td_bool")]
    pub self_review: i64,
    /// Who the review is credited to.
    #[serde(default, deserialize_with = "text")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reviewed_by: String,
}

/// Everything `td show` prints about one issue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IssueDetail {
    /// The issue's row.
    #[serde(flatten)]
    pub issue: IssueView,
    /// Its document version (what `--if-match` compares).
    pub version: String,
    /// The id it was created with, when an id clash renamed it (merge rule 8).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renamed_from: Option<String>,
    /// The latest handoff.
    pub handoff: Option<HandoffView>,
    /// Logs, oldest first.
    pub logs: Vec<LogView>,
    /// Comments, oldest first.
    pub comments: Vec<CommentView>,
    /// Reviews, oldest first.
    pub reviews: Vec<ReviewView>,
    /// Issues it depends on.
    pub depends_on: Vec<String>,
    /// Issues that depend on it.
    pub blocks: Vec<String>,
    /// Its children.
    pub children: Vec<String>,
    /// Its unresolved conflicts.
    pub conflicts: Vec<crate::conflicts::Conflict>,
}

impl IssueDetail {
    /// The JSON `td show --json` prints.
    pub fn to_json(&self) -> Value {
        to_json(self)
    }
}

/// An issue found by `td search`, with where the text matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SearchHit {
    /// The issue.
    #[serde(flatten)]
    pub issue: IssueView,
    /// `title`, `description`, `acceptance`, `logs`, `comments`.
    pub matched_in: Vec<String>,
    /// td's relevance: 100 the id itself, 90 in the id, 80 the title itself, 70 the title's
    /// start, 60 in the title, 40 in the description, 20 in the labels, 10 elsewhere.
    pub score: i64,
    /// Where the best match is (`id`, `title`, `description`, `labels`, `log`, …).
    pub match_field: String,
}

/// An issue with its descendants (`td tree`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TreeNode {
    /// The issue.
    #[serde(flatten)]
    pub issue: IssueView,
    /// Its live children, each with theirs.
    pub children: Vec<TreeNode>,
}

/// A file linked to an issue (`issue_files`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileLinkView {
    /// `ifl_` id.
    #[serde(deserialize_with = "text")]
    pub id: String,
    /// The issue.
    #[serde(default, deserialize_with = "text")]
    pub issue_id: String,
    /// Repository-relative path.
    #[serde(default, deserialize_with = "text")]
    pub file_path: String,
    /// `implementation`, `test`, `reference`, `config`.
    #[serde(default, deserialize_with = "text")]
    pub role: String,
    /// The file's git blob hash when linked (`""` outside git).
    #[serde(default, deserialize_with = "text")]
    pub linked_sha: String,
    /// When.
    #[serde(default, deserialize_with = "text")]
    pub linked_at: String,
}

/// A note (`notes`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteView {
    /// `nt-` id.
    #[serde(deserialize_with = "text")]
    pub id: String,
    /// Title.
    #[serde(default, deserialize_with = "text")]
    pub title: String,
    /// Content (markdown).
    #[serde(default, deserialize_with = "text")]
    pub content: String,
    /// Created.
    #[serde(default, deserialize_with = "text")]
    pub created_at: String,
    /// Last change.
    #[serde(default, deserialize_with = "text")]
    pub updated_at: String,
    /// Pinned (td stores 0/1).
    #[serde(default, deserialize_with = "int")]
    pub pinned: i64,
    /// Archived (td stores 0/1).
    #[serde(default, deserialize_with = "int")]
    pub archived: i64,
    /// Soft-delete time.
    #[serde(default)]
    pub deleted_at: Option<String>,
}

/// A work session (`work_sessions`) with the issues tagged to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkSessionView {
    /// `ws-` id.
    #[serde(deserialize_with = "text")]
    pub id: String,
    /// Name.
    #[serde(default, deserialize_with = "text")]
    pub name: String,
    /// The td session that runs it.
    #[serde(default, deserialize_with = "text")]
    pub session_id: String,
    /// Git worktree id.
    #[serde(default, deserialize_with = "text")]
    pub worktree_id: String,
    /// Git worktree root.
    #[serde(default, deserialize_with = "text")]
    pub worktree_root: String,
    /// Repository root.
    #[serde(default, deserialize_with = "text")]
    pub repo_root: String,
    /// Started.
    #[serde(default, deserialize_with = "text")]
    pub started_at: String,
    /// Ended (`None` while active).
    #[serde(default)]
    pub ended_at: Option<String>,
    /// Git HEAD when started.
    #[serde(default, deserialize_with = "text")]
    pub start_sha: String,
    /// Git HEAD when ended.
    #[serde(default, deserialize_with = "text")]
    pub end_sha: String,
    /// Tagged issue ids, in tagging order.
    #[serde(default)]
    pub issues: Vec<String>,
}

/// A board (`boards`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardRow {
    /// `bd-` id.
    #[serde(deserialize_with = "text")]
    pub id: String,
    /// Name (unique, case-insensitively, per replica).
    #[serde(default, deserialize_with = "text")]
    pub name: String,
    /// When td's UI last showed it.
    #[serde(default)]
    pub last_viewed_at: Option<String>,
    /// Created.
    #[serde(default, deserialize_with = "text")]
    pub created_at: String,
    /// Last change.
    #[serde(default, deserialize_with = "text")]
    pub updated_at: String,
    /// The query choosing its issues (`""`: all).
    #[serde(default, deserialize_with = "text")]
    pub query: String,
    /// The builtin "All Issues" board (td stores 0/1).
    #[serde(default, deserialize_with = "int")]
    pub is_builtin: i64,
    /// `swimlanes` or `backlog`.
    #[serde(default, deserialize_with = "text")]
    pub view_mode: String,
}

/// An issue on a board, with its manual position (`None`: unpositioned, after the others).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PositionedIssue {
    /// The issue.
    #[serde(flatten)]
    pub issue: IssueView,
    /// Its stored position.
    pub position: Option<i64>,
}

/// A board and the issues it shows, in board order (`td board show`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BoardView {
    /// The board.
    pub board: BoardRow,
    /// Positioned issues first, by position; then the rest by priority.
    pub issues: Vec<PositionedIssue>,
}

/// A roster entry as `td member list` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberView {
    /// The machine's public key (hex).
    pub public_key: String,
    /// Its fingerprint.
    pub machine: String,
    /// Its name.
    pub name: String,
    /// `admin` or `member` (`""` once removed).
    pub role: String,
    /// When it was added (members only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub added_at: Option<String>,
    /// Which machine added it (members only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub added_by: Option<String>,
    /// Removed from the roster.
    pub removed: bool,
    /// Which machine removed it (removed machines only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed_by: Option<String>,
    /// Its join reached this replica only after its invite had expired
    /// (`roster::late_joins`): why, and what an admin may do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub late_join: Option<String>,
}

/// An open invite as `td member list` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InviteView {
    /// The invite id.
    pub invite: String,
    /// The role it grants.
    pub role: String,
    /// The name it gives.
    pub name: String,
    /// The admin machine that made it.
    pub by: String,
    /// When it expires.
    pub expires_at: String,
    /// Always true: only open invites are listed.
    pub pending: bool,
}

/// What `td usage` shows an agent at the start of a context (td's sections and JSON keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageView {
    /// The acting session.
    pub session: String,
    /// The focused issue.
    pub focused: Option<IssueView>,
    /// The active work session.
    pub work_session: Option<WorkSessionView>,
    /// Ids tagged into the active work session.
    pub ws_issues: Vec<String>,
    /// Issues this session is implementing, by priority.
    pub in_progress: Vec<IssueView>,
    /// In-review issues this session may review (the review policy decides).
    pub reviewable: Vec<IssueView>,
    /// In-review issues with an approval recorded that this session may close.
    pub ready_to_close: Vec<IssueView>,
    /// The top open issues with no open dependency, by priority.
    pub ready: Vec<IssueView>,
    /// The focused issue's latest handoff (human output only).
    #[serde(skip)]
    pub focused_handoff: Option<HandoffView>,
    /// The focused issue's linked files (human output only).
    #[serde(skip)]
    pub focused_files: Vec<FileLinkView>,
}

/// A td session on this machine, as `td session list` shows it (td's keys). Sessions are
/// local: another machine's sessions are not listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionView {
    /// The session id.
    pub session: String,
    /// Its name (`TD_SESSION_ID`), if any.
    pub name: String,
    /// The branch it runs on.
    pub branch: String,
    /// The agent type (`TD_AGENT`), if known.
    pub agent: String,
    /// When it last acted (RFC 3339).
    pub last_activity: String,
    /// Seconds since then.
    pub age_seconds: i64,
    /// The session this command runs as.
    pub current: bool,
}

/// `td blocked-by`: what waits on an issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockedByView {
    /// The issue.
    pub issue: IssueView,
    /// Issues that depend on it directly.
    pub direct: Vec<String>,
    /// How many.
    pub direct_count: usize,
    /// How many more wait through others (absent with `--direct`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transitive_count: Option<usize>,
    /// Everything waiting on it, directly or not (absent with `--direct`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub all: Option<Vec<String>>,
}

/// `td depends-on`: what an issue waits on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DependsOnView {
    /// The issue.
    pub issue: IssueView,
    /// The issues it depends on, with their state (for `blocking`/`resolved` counts).
    pub dependencies: Vec<IssueView>,
}

/// `td check-handoff`: whether this session should hand off before it stops (td's rule: it
/// implements issues in progress, or has a work session open).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HandoffCheck {
    /// A handoff is needed.
    pub needs_handoff: bool,
    /// The session.
    pub session: String,
    /// How many issues it has in progress.
    pub in_progress_count: usize,
    /// Those issues.
    pub in_progress_issues: Vec<String>,
    /// Its open work session (`""` for none).
    pub active_work_session: String,
    /// Its focused issue (`""` for none).
    pub focused_issue: String,
}

/// `td info`: the project at a glance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InfoView {
    /// Project id.
    pub project: String,
    /// This machine.
    pub machine: String,
    /// Live issues per status.
    pub issues_by_status: std::collections::BTreeMap<String, i64>,
    /// Live issues.
    pub issues: i64,
    /// Deleted issues.
    pub deleted: i64,
    /// Logs, comments, handoffs, reviews, boards, notes, work sessions.
    pub records: std::collections::BTreeMap<String, i64>,
    /// Sessions on this machine.
    pub sessions: i64,
    /// Machines in the roster.
    pub members: usize,
    /// Changes in the log.
    pub changes: i64,
    /// Writers in the log.
    pub writers: i64,
}

/// A security-relevant event (td's `td security`): a review recorded by the session that
/// implemented the work, or a close past the review policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecurityEvent {
    /// `self_review`, `attributed_review` or `self_close_exception`.
    pub kind: String,
    /// The issue.
    pub issue_id: String,
    /// The session.
    pub session_id: String,
    /// The reason or attribution given.
    pub detail: String,
    /// When.
    pub timestamp: String,
}

/// One record of the change log as `td sync tail` shows it: where it sits, what it changed,
/// which machine and session wrote it, and whether it is applied or held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogRecordView {
    /// Its position in this replica's log (grows with every record stored).
    pub position: i64,
    /// When this replica stored it.
    pub received_at: String,
    /// The entity it changed.
    pub entity: String,
    /// The entity's kind (`issue`, `log`, `roster`, …).
    pub kind: String,
    /// The writing machine's fingerprint.
    pub machine: String,
    /// The writing session.
    pub session: String,
    /// Written here (false: it arrived from a peer or the hub).
    pub local: bool,
    /// Applied to the tables (false: held until what it builds on arrives).
    pub applied: bool,
}

/// One refresh of `td monitor` ([`crate::Project::monitor`]).
#[derive(Debug, Clone, Serialize)]
pub struct MonitorView {
    /// The acting session.
    pub session: String,
    /// This session's focused issue.
    pub focused: Option<IssueView>,
    /// Every session's in-progress issues.
    pub in_progress: Vec<IssueView>,
    /// The task list (the search filter applied); empty when a board is shown.
    pub tasks: Vec<IssueView>,
    /// The chosen td board, in board order.
    pub board: Option<BoardView>,
    /// In-review issues this session may approve under the review policy.
    pub reviewable: Vec<String>,
    /// The newest activity, newest first.
    pub activity: Vec<ActivityView>,
    /// Unresolved conflicts.
    pub conflicts: Vec<crate::conflicts::Conflict>,
    /// Peers, hubs and held records.
    pub sync: SyncLineView,
    /// The change log's end when this was read.
    pub log_position: i64,
}

/// One activity entry: a log, handoff, comment, review or issue change, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActivityView {
    /// When this replica stored its newest record.
    pub at: String,
    /// The issue it belongs to.
    pub issue: String,
    /// The entity kind (`log`, `handoff`, `comment`, `review`, `issue`).
    pub kind: String,
    /// What it says (raw text from the log: escape it before a terminal shows it).
    pub text: String,
    /// The writing session.
    pub session: String,
    /// The writing machine's fingerprint.
    pub machine: String,
    /// Written on this machine.
    pub local: bool,
}

/// The sync part of the monitor's status line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncLineView {
    /// Every peer in the address book.
    pub peers: Vec<PeerLineView>,
    /// Every hub this replica pushed to or pulled from.
    pub hubs: Vec<HubLineView>,
    /// Records held (their authors are not admitted here).
    pub held: u64,
}

/// A peer on the status line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerLineView {
    /// Its local name.
    pub name: String,
    /// Its machine fingerprint.
    pub machine: String,
    /// When it last completed a sync round with this replica.
    pub last_round: Option<String>,
}

/// A hub on the status line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HubLineView {
    /// The hub's address as stored (never with a token).
    pub hub: String,
    /// The last successful push.
    pub last_push_at: Option<String>,
    /// The last successful pull.
    pub last_pull_at: Option<String>,
    /// Records not pushed yet.
    pub pending: i64,
}

/// Where end-to-end encryption stands on a replica (`td sync status`; docs/encryption.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EncryptionView {
    /// Epochs in the roster.
    pub epochs: i64,
    /// Epochs no other was made on (more than one: rotations made apart, merged).
    pub heads: i64,
    /// The epoch new records are sealed with (hex), when this machine can seal now.
    pub current: Option<String>,
    /// Epoch keys this machine holds.
    pub keys_held: i64,
    /// Of those, keys from an invite code that did not sign them, not yet confirmed by a key
    /// sealed to this machine (read with only).
    pub keys_unconfirmed: i64,
    /// Sealed records held until their epoch's key arrives.
    pub waiting_for_key: i64,
    /// Sealed records that do not open with their epoch's key (kept, never applied).
    pub unreadable: i64,
    /// Records stored in plaintext (from before the project's first epoch; the roster's
    /// records are always plaintext and not counted).
    pub plaintext_records: i64,
    /// Copies of an epoch key sealed to this machine that were not the epoch's key (its
    /// commitment says otherwise), each naming the machine that sealed it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refused_seals: Vec<String>,
}
