//! The read models td's HTTP API serves beyond the CLI's (`td serve`, docs/serve.md): the
//! monitor's task list by category, the transitions open to this session, each issue's
//! unresolved blockers, and the project's statistics. The rules are td's
//! (`pkg/monitor/data.go`, `internal/serve/handlers_*.go`); the server only renders them.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{params, OptionalExtension};

use crate::error::Result;
use crate::model::Status;
use crate::project::Project;
use crate::query::{self, Issue, ListFilter};
use crate::review_policy::{self, Attestation, Facts};

/// The monitor's task list, by td's categories (every issue in at most one).
#[derive(Debug, Clone, Default)]
pub struct TaskList {
    /// In review, and this session may review it.
    pub reviewable: Vec<Issue>,
    /// In progress again after a review asked for changes.
    pub needs_rework: Vec<Issue>,
    /// In progress.
    pub in_progress: Vec<Issue>,
    /// Open, with every dependency closed.
    pub ready: Vec<Issue>,
    /// In review, waiting for another session.
    pub pending_review: Vec<Issue>,
    /// Blocked, then open issues with an open dependency.
    pub blocked: Vec<Issue>,
    /// Closed (only when asked for).
    pub closed: Vec<Issue>,
    /// Handoffs of the last 24 hours, newest first, at most 10: (issue, session, time).
    pub recent_handoffs: Vec<(String, String, String)>,
    /// Sessions that logged in the last five minutes.
    pub active_sessions: Vec<String>,
}

/// How a search string is read (td's `search_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchMode {
    /// TDQ when the text looks like TDQ (operators, `AND`/`OR`/`NOT`, functions, `@me`,
    /// `field=value`), else plain text.
    Auto,
    /// Always TDQ; a syntax error is the caller's error.
    Tdq,
    /// Always plain text (title, description, id).
    Text,
}

impl SearchMode {
    /// td's spelling: `tdq`, `text`; anything else is `auto`.
    pub fn parse(s: &str) -> SearchMode {
        match s {
            "tdq" => SearchMode::Tdq,
            "text" => SearchMode::Text,
            _ => SearchMode::Auto,
        }
    }
}

/// Whether `s` reads as TDQ rather than words (td's `isTDQQuery`).
pub fn looks_like_tdq(s: &str) -> bool {
    let s = s.trim();
    let ops = ["=", "!=", "~", "<", ">", ":"];
    let words = s
        .split_whitespace()
        .any(|w| matches!(w, "AND" | "OR" | "NOT"));
    words
        || s.contains("@me")
        || s.contains('(')
        || s.starts_with("sort:")
        || ops.iter().any(|o| s.contains(o))
}

/// The statistics td's `/v1/stats` reports (`db.GetExtendedStats`).
#[derive(Debug, Clone, Default)]
pub struct ProjectStats {
    /// Live issues.
    pub total: i64,
    /// Live issues per status, type and priority (only values that occur).
    pub by_status: BTreeMap<String, i64>,
    /// Per type.
    pub by_type: BTreeMap<String, i64>,
    /// Per priority.
    pub by_priority: BTreeMap<String, i64>,
    /// The oldest issue not closed.
    pub oldest_open: Option<Issue>,
    /// The newest issue.
    pub newest_task: Option<Issue>,
    /// The issue closed last.
    pub last_closed: Option<Issue>,
    /// Created today and in the last seven days (local time).
    pub created_today: i64,
    /// Created in the last seven days.
    pub created_this_week: i64,
    /// Sum of story points.
    pub total_points: i64,
    /// Points per issue.
    pub avg_points_per_task: f64,
    /// Closed / total (0 when there are none).
    pub completion_rate: f64,
    /// Log entries.
    pub total_logs: i64,
    /// Handoffs.
    pub total_handoffs: i64,
    /// The session with the most log entries (`""` when none).
    pub most_active_session: String,
}

impl Project {
    /// td's monitor task list: live issues by category, `include_closed` adding the closed
    /// ones, narrowed by `search` read as `mode` (a TDQ syntax error under
    /// [`SearchMode::Tdq`] is returned; under `Auto` the text is searched instead).
    pub fn task_list(
        &self,
        include_closed: bool,
        search: Option<(&str, SearchMode)>,
    ) -> Result<TaskList> {
        let issues = self.search_issues(
            &ListFilter {
                all: true,
                dates: query::DateView::Any,
                ..Default::default()
            },
            search,
        )?;
        let open_deps =
            self.open_blockers(&issues.iter().map(|i| i.id.clone()).collect::<Vec<_>>())?;
        let reworked = self.reworked()?;
        let reviewable: BTreeSet<String> = self.reviewable()?.into_iter().map(|i| i.id).collect();
        let mut t = TaskList::default();
        let mut waiting = Vec::new();
        for i in issues {
            match Status::parse(&i.status) {
                Ok(Status::Open) if open_deps.contains_key(&i.id) => waiting.push(i),
                Ok(Status::Open) => t.ready.push(i),
                Ok(Status::Blocked) => t.blocked.push(i),
                Ok(Status::InProgress) if reworked.contains(&i.id) => t.needs_rework.push(i),
                Ok(Status::InProgress) => t.in_progress.push(i),
                Ok(Status::InReview) if reviewable.contains(&i.id) => t.reviewable.push(i),
                Ok(Status::InReview) => t.pending_review.push(i),
                Ok(Status::Closed) if include_closed => t.closed.push(i),
                _ => {}
            }
        }
        t.blocked.extend(waiting);
        let conn = self.store.conn();
        let since = |secs: i64| {
            (chrono::Local::now() - chrono::Duration::seconds(secs))
                .format("%Y-%m-%d %H:%M:%S%.6f%:z")
                .to_string()
        };
        t.recent_handoffs = conn
            .prepare_cached(
                "SELECT issue_id, session_id, timestamp FROM handoffs WHERE timestamp >= ?1 \
                 ORDER BY timestamp DESC, id LIMIT 10",
            )?
            .query_map([since(86_400)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<std::result::Result<_, _>>()?;
        t.active_sessions = conn
            .prepare_cached(
                "SELECT DISTINCT session_id FROM logs WHERE timestamp >= ?1 AND session_id != '' \
                 ORDER BY session_id",
            )?
            .query_map([since(300)], |r| r.get(0))?
            .collect::<std::result::Result<_, _>>()?;
        Ok(t)
    }

    /// Live issues matching `f`, narrowed by `search` (see [`Project::task_list`]).
    pub fn search_issues(
        &self,
        f: &ListFilter,
        search: Option<(&str, SearchMode)>,
    ) -> Result<Vec<Issue>> {
        let Some((text, mode)) = search.filter(|(s, _)| !s.trim().is_empty()) else {
            return self.issues(f);
        };
        let tdq = match mode {
            SearchMode::Text => None,
            SearchMode::Tdq => Some(self.query(text, &Default::default())?),
            SearchMode::Auto if looks_like_tdq(text) => self.query(text, &Default::default()).ok(),
            SearchMode::Auto => None,
        };
        match tdq {
            Some(r) => {
                let ids: Vec<String> = r.issues.into_iter().map(|i| i.id).collect();
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                self.issues(&ListFilter { ids, ..f.clone() })
            }
            None => {
                let needle = text.trim().to_lowercase();
                let mut out = self.issues(&ListFilter {
                    limit: None,
                    ..f.clone()
                })?;
                out.retain(|i| {
                    i.id.to_lowercase().contains(&needle)
                        || i.title.to_lowercase().contains(&needle)
                        || i.description.to_lowercase().contains(&needle)
                });
                if let Some(n) = f.limit {
                    out.truncate(n);
                }
                Ok(out)
            }
        }
    }

    /// For each of `ids` that depends on issues not closed: those issues, by id (td's
    /// `dependency_summary`; a soft-deleted dependency still counts, a missing one does not).
    pub fn open_blockers(&self, ids: &[String]) -> Result<BTreeMap<String, Vec<Issue>>> {
        let conn = self.store.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT d.depends_on_id FROM issue_dependencies d JOIN issues b ON b.id = d.depends_on_id \
             WHERE d.issue_id = ?1 AND d.relation_type = 'depends_on' AND b.status != 'closed' \
             ORDER BY d.depends_on_id",
        )?;
        let mut out = BTreeMap::new();
        for id in ids {
            let on: Vec<String> = stmt
                .query_map([id], |r| r.get(0))?
                .collect::<std::result::Result<_, _>>()?;
            let mut blockers = Vec::new();
            for b in on {
                if let Some(i) = query::find_issue(conn, &b)? {
                    blockers.push(i);
                }
            }
            if !blockers.is_empty() {
                out.insert(id.clone(), blockers);
            }
        }
        Ok(out)
    }

    /// In-progress issues a review sent back (a `changes_requested` review on record).
    fn reworked(&self) -> Result<BTreeSet<String>> {
        let conn = self.store.conn();
        let ids = conn
            .prepare_cached(
                "SELECT DISTINCT r.issue_id FROM issue_reviews r JOIN issues i ON i.id = r.issue_id \
                 WHERE r.decision = 'changes_requested' AND i.status = 'in_progress'",
            )?
            .query_map([], |r| r.get(0))?
            .collect::<std::result::Result<_, _>>()?;
        Ok(ids)
    }

    /// The transitions td's API offers this session on `issue`, in td's order (`start`,
    /// `review`, `approve`, `reject`, `block`, `unblock`, `close`, `reopen`): those whose
    /// starting status fits, `close` not for a non-minor issue in review, and `approve` only
    /// when the review policy lets this session approve.
    pub fn available_transitions(&self, issue: &Issue) -> Result<Vec<&'static str>> {
        let Ok(from) = Status::parse(&issue.status) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for action in TRANSITIONS {
            if !transition_from(action, from) {
                continue;
            }
            if action == "close" && from == Status::InReview && !issue.minor {
                continue;
            }
            if action == "approve" {
                let facts = Facts::read(self.store.conn(), issue, &self.session.id)?;
                let d = review_policy::approve(self.review_mode, &facts, &Attestation::default());
                if d.refusal.is_some() && !issue.minor {
                    continue;
                }
            }
            out.push(action);
        }
        Ok(out)
    }

    /// td's `/v1/stats` over the live issues.
    pub fn stats(&self) -> Result<ProjectStats> {
        let issues = self.issues(&ListFilter {
            all: true,
            dates: query::DateView::Any,
            ..Default::default()
        })?;
        let mut s = ProjectStats {
            total: issues.len() as i64,
            ..Default::default()
        };
        let today = chrono::Local::now().date_naive();
        let week_ago = today - chrono::Duration::days(7);
        let mut closed = 0;
        for i in &issues {
            *s.by_status.entry(i.status.clone()).or_default() += 1;
            *s.by_type.entry(i.issue_type.clone()).or_default() += 1;
            *s.by_priority.entry(i.priority.clone()).or_default() += 1;
            s.total_points += i.points;
            if i.status == Status::Closed.as_str() {
                closed += 1;
            }
            let day = crate::model::parse_timestamp(&i.created_at)
                .map(|t| t.with_timezone(&chrono::Local).date_naive());
            if day == Some(today) {
                s.created_today += 1;
            }
            if day.is_some_and(|d| d >= week_ago) {
                s.created_this_week += 1;
            }
        }
        let by_created =
            |a: &&Issue, b: &&Issue| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id));
        s.oldest_open = issues
            .iter()
            .filter(|i| i.status != Status::Closed.as_str())
            .min_by(by_created)
            .cloned();
        s.newest_task = issues.iter().max_by(by_created).cloned();
        s.last_closed = issues
            .iter()
            .filter(|i| i.closed_at.is_some())
            .max_by(|a, b| (&a.closed_at, &a.id).cmp(&(&b.closed_at, &b.id)))
            .cloned();
        if s.total > 0 {
            s.avg_points_per_task = s.total_points as f64 / s.total as f64;
            s.completion_rate = closed as f64 / s.total as f64;
        }
        let conn = self.store.conn();
        s.total_logs = conn.query_row("SELECT count(*) FROM logs", params![], |r| r.get(0))?;
        s.total_handoffs =
            conn.query_row("SELECT count(*) FROM handoffs", params![], |r| r.get(0))?;
        s.most_active_session = conn
            .query_row(
                "SELECT session_id FROM logs WHERE session_id != '' GROUP BY session_id \
                 ORDER BY count(*) DESC, session_id LIMIT 1",
                params![],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or_default();
        Ok(s)
    }
}

/// td's API transitions, in its order.
pub const TRANSITIONS: [&str; 8] = [
    "start", "review", "approve", "reject", "block", "unblock", "close", "reopen",
];

/// Whether td's API allows `action` from `from` (its `validFrom` sets together with the
/// state machine; a transition to the status the issue already has never is).
pub fn transition_from(action: &str, from: Status) -> bool {
    use Status::*;
    match action {
        "start" => from == Open,
        "review" => matches!(from, Open | InProgress),
        "approve" | "reject" => from == InReview,
        "block" => matches!(from, Open | InProgress),
        "unblock" => from == Blocked,
        "close" => from != Closed,
        "reopen" => from == Closed,
        _ => false,
    }
}

impl Project {
    /// This machine's sessions as td's `sessions` table holds them (td's `/v1/sessions`),
    /// most recently active first.
    pub fn session_rows(&self) -> Result<Vec<serde_json::Map<String, serde_json::Value>>> {
        let conn = self.store.conn();
        let mut stmt = conn.prepare(
            "SELECT id, name, branch, agent_type, agent_pid, context_id, previous_session_id, \
             started_at, last_activity FROM sessions \
             ORDER BY COALESCE(last_activity, started_at) DESC, id",
        )?;
        let rows = stmt
            .query_map([], query::row_to_json)?
            .collect::<std::result::Result<_, _>>()?;
        Ok(rows)
    }
}

impl Project {
    /// The dependency edge with td's id `dep` (`dep_` + 16 hex): (issue, depends on).
    pub fn dependency_by_id(&self, dep: &str) -> Result<Option<(String, String)>> {
        Ok(self
            .store
            .conn()
            .prepare_cached(
                "SELECT issue_id, depends_on_id FROM issue_dependencies WHERE id = ?1 \
                 AND relation_type = 'depends_on'",
            )?
            .query_row([dep], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }
}

/// `td status`: td's review dashboard for this session (`cmd/status.go`).
#[derive(Debug, Clone, Default)]
pub struct StatusDashboard {
    /// The focused issue, how many of its last ten logs there are, and the newest one's time.
    pub focused: Option<(Issue, usize, Option<String>)>,
    /// In review, no approval yet, and this session may review it.
    pub reviewable_by_you: Vec<Issue>,
    /// In review with an approval on record this session may close on, and who approved.
    pub ready_to_close: Vec<(Issue, String)>,
    /// Every other issue in review (td's JSON `implemented_by_you`).
    pub other_in_review: Vec<Issue>,
    /// Issues in review in all.
    pub in_review_total: usize,
    /// Blocked issues and what each depends on.
    pub blocked: Vec<(Issue, Vec<String>)>,
    /// Open issues in priority order, at most ten (deferred ones included, as td).
    pub ready_to_start: Vec<Issue>,
}

impl Project {
    /// td's `td status` dashboard for this session.
    pub fn status_dashboard(&self) -> Result<StatusDashboard> {
        let conn = self.store.conn();
        let mut d = StatusDashboard::default();
        if let Some(id) = self.focused_issue()? {
            if let Some(issue) = query::find_issue(conn, &id)?.filter(|i| i.deleted_at.is_none()) {
                let times: Vec<String> = conn
                    .prepare_cached(
                        "SELECT timestamp FROM logs WHERE issue_id = ?1 \
                         ORDER BY timestamp DESC, id DESC LIMIT 10",
                    )?
                    .query_map([&id], |r| r.get(0))?
                    .collect::<std::result::Result<_, _>>()?;
                d.focused = Some((issue, times.len(), times.first().cloned()));
            }
        }
        let in_review = self.issues(&ListFilter {
            status: vec![Status::InReview.as_str().into()],
            dates: query::DateView::Any,
            ..Default::default()
        })?;
        d.in_review_total = in_review.len();
        for issue in in_review {
            let facts = Facts::read(conn, &issue, &self.session.id)?;
            if facts.active_approval && review_policy::ready_to_close(self.review_mode, &facts) {
                let reviewer = conn
                    .prepare_cached(
                        "SELECT reviewer_session FROM issue_reviews WHERE issue_id = ?1 \
                         AND decision = 'approved' AND superseded_at IS NULL \
                         ORDER BY created_at DESC, id DESC LIMIT 1",
                    )?
                    .query_row([&issue.id], |r| r.get(0))
                    .optional()?
                    .unwrap_or_default();
                d.ready_to_close.push((issue, reviewer));
            } else if !facts.active_approval && review_policy::reviewable(self.review_mode, &facts)
            {
                d.reviewable_by_you.push(issue);
            } else {
                d.other_in_review.push(issue);
            }
        }
        for issue in self.issues(&ListFilter {
            status: vec![Status::Blocked.as_str().into()],
            dates: query::DateView::Any,
            ..Default::default()
        })? {
            let deps: Vec<String> = conn
                .prepare_cached(
                    "SELECT depends_on_id FROM issue_dependencies WHERE issue_id = ?1 \
                     AND relation_type = 'depends_on' ORDER BY depends_on_id",
                )?
                .query_map([&issue.id], |r| r.get(0))?
                .collect::<std::result::Result<_, _>>()?;
            d.blocked.push((issue, deps));
        }
        d.ready_to_start = self.issues(&ListFilter {
            status: vec![Status::Open.as_str().into()],
            dates: query::DateView::Any,
            limit: Some(10),
            ..Default::default()
        })?;
        Ok(d)
    }
}
