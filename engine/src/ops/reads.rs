//! Reads, as methods on [`Project`]: everything a front end shows, as typed read models
//! ([`crate::views`]). Front ends call these instead of reaching for the database, so the CLI,
//! `td serve` and `td monitor` read the same way.

use crate::conflicts::{self, Conflict};
use crate::error::Result;
use crate::export::{self, LogStats};
use crate::find;
use crate::graph::{CriticalPath, DepGraph};
use crate::ops::{boards, files, notes};
use crate::project::Project;
use crate::query::{self, Issue, ListFilter};
use crate::review_policy::{self, Facts};
use crate::roster::{self, HeldBy, Peer};
use crate::session;
use crate::views::{
    BlockedByView, BoardRow, BoardView, DependsOnView, FileLinkView, HandoffCheck, InfoView,
    InviteView, IssueDetail, LogRecordView, MemberView, NoteView, SearchHit, SecurityEvent,
    SessionView, TreeNode, UsageView, WorkSessionView,
};

/// How many ready issues `td usage` lists (td's "READY TO START").
pub const USAGE_READY: usize = 3;

/// The formats `td export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// td's JSON export: one `{issue, logs, handoffs, dependencies, files}` item per issue;
    /// `include_deleted` adds the deleted issues (`td export --all`).
    Json {
        /// Export deleted issues too.
        include_deleted: bool,
    },
    /// Every synced table, deterministically (`td export --format snapshot`): two replicas
    /// holding the same changes print the same bytes.
    Snapshot,
    /// SQL `INSERT` statements.
    Sql,
    /// td's Markdown export; `include_deleted` adds the deleted issues (`td export --all`).
    Markdown {
        /// List deleted issues too.
        include_deleted: bool,
    },
}

impl Project {
    /// A live issue (`not_found` for a missing or deleted one).
    pub fn issue(&self, id: &str) -> Result<Issue> {
        query::live_issue(self.store.conn(), id)
    }

    /// An issue's row, deleted or not (`None`: no such issue): a lookup without the detail's
    /// logs and comments.
    pub fn find_issue(&self, id: &str) -> Result<Option<Issue>> {
        query::find_issue(self.store.conn(), id)
    }

    /// Issues matching a `td list` filter.
    pub fn issues(&self, f: &ListFilter) -> Result<Vec<Issue>> {
        query::list_issues(self.store.conn(), f)
    }

    /// Everything `td show` prints about an issue.
    pub fn issue_detail(&self, id: &str) -> Result<IssueDetail> {
        query::issue_detail(self.store.conn(), id)
    }

    /// Open issues with every dependency closed and not deferred past `today` (`YYYY-MM-DD`).
    pub fn ready(&self, today: &str) -> Result<Vec<Issue>> {
        query::ready_issues(self.store.conn(), today)
    }

    /// The first `n` of [`Project::ready`] (`td next`).
    pub fn ready_first(&self, today: &str, n: usize) -> Result<Vec<Issue>> {
        query::ready_issues_up_to(self.store.conn(), today, Some(n))
    }

    /// Live issues per status.
    pub fn status_counts(&self) -> Result<Vec<(String, i64)>> {
        query::status_counts(self.store.conn())
    }

    /// The issue this session has focused, if any.
    pub fn focused_issue(&self) -> Result<Option<String>> {
        session::focused_issue(self.store.conn(), &self.session.id)
    }

    /// Size of the change log.
    pub fn log_stats(&self) -> Result<LogStats> {
        export::log_stats(self.store.conn())
    }

    /// `td search`: `f` narrows the issues searched (status, type, labels, priority, limit).
    pub fn search(&self, text: &str, f: &ListFilter) -> Result<Vec<SearchHit>> {
        find::search(self.store.conn(), text, f)
    }

    /// `td query`: TDQ over the live issues (closed included), as this session (`@me`).
    pub fn query(
        &self,
        expr: &str,
        opts: &crate::tdq::QueryOptions,
    ) -> Result<crate::tdq::QueryResult> {
        let q = crate::tdq::parse(expr)?;
        let ctx = crate::tdq::EvalContext::new(&self.session.id);
        crate::tdq::evaluate(self.store.conn(), &q, &ctx, opts)
    }

    /// `td tree`: the issue and its descendants, at most `depth` levels down when given.
    pub fn tree(&self, id: &str, depth: Option<usize>) -> Result<TreeNode> {
        find::tree(self.store.conn(), id, depth)
    }

    /// Files linked to an issue.
    pub fn files(&self, issue: &str) -> Result<Vec<FileLinkView>> {
        files::files_of(self.store.conn(), issue)
    }

    /// Conflicts (unresolved, or all), optionally only those whose overwritten write is newer
    /// than `since` (unix seconds).
    pub fn conflicts(&self, all: bool, since: Option<i64>) -> Result<Vec<Conflict>> {
        conflicts::list(self.store.conn(), all, None, since)
    }

    /// Notes matching a filter.
    pub fn notes(&self, f: notes::NoteFilter) -> Result<Vec<NoteView>> {
        notes::list(self.store.conn(), f)
    }

    /// One live note.
    pub fn note(&self, id: &str) -> Result<NoteView> {
        notes::show(self.store.conn(), id)
    }

    /// Every board.
    pub fn boards(&self) -> Result<Vec<BoardRow>> {
        boards::list(self.store.conn())
    }

    /// A board and its issues, in board order.
    pub fn board(&self, key: &str) -> Result<BoardView> {
        boards::view(self.store.conn(), key, &self.session.id)
    }

    /// `td board show -s <status>…`: the board with only issues of the given statuses (any
    /// spelling `Status::parse` accepts, comma-separated or repeated; none: every issue).
    pub fn board_with_status(&self, key: &str, statuses: &[String]) -> Result<BoardView> {
        let mut view = self.board(key)?;
        let wanted: Vec<crate::model::Status> = statuses
            .iter()
            .flat_map(|s| s.split(','))
            .filter(|s| !s.trim().is_empty())
            .map(crate::model::Status::parse)
            .collect::<Result<_>>()?;
        if !wanted.is_empty() {
            view.issues.retain(|i| {
                crate::model::Status::parse(&i.issue.status).is_ok_and(|s| wanted.contains(&s))
            });
        }
        Ok(view)
    }

    /// The roster: members, then removed machines.
    pub fn members(&self) -> Result<Vec<MemberView>> {
        roster::members(self.store.conn())
    }

    /// Where this machine stands on the project's roster: `Some(role)` as a member, `None`
    /// when the roster does not hold it (or removed it). A project with no roster yet (a
    /// replica that has synced with no one) counts its own machine as the founder does, so
    /// `Some(Admin)` when it founded the project and `None` otherwise. One indexed read.
    pub fn own_role(&self) -> Result<Option<crate::authority::Role>> {
        let me = self.store.identity().public_key_hex();
        if !roster::has_roster(self.store.conn())? {
            let founder = crate::store::is_founder_of(
                &self.store.project_id()?,
                &self.store.identity().public_key(),
            );
            return Ok(founder.then_some(crate::authority::Role::Admin));
        }
        Ok(roster::stored(self.store.conn())?
            .members
            .get(&me)
            .map(|m| m.role))
    }

    /// Invites still open.
    pub fn pending_invites(&self) -> Result<Vec<InviteView>> {
        roster::pending_invites(self.store.conn())
    }

    /// The address book.
    pub fn peers(&self) -> Result<Vec<Peer>> {
        roster::peers(self.store.conn())
    }

    /// Machines whose records are held here (not admitted), with counts.
    pub fn held(&self) -> Result<Vec<HeldBy>> {
        roster::held(self.store.conn())
    }

    /// What `td usage` shows: focus, work session, this session's work in progress, what it
    /// may review or close under the review policy, and the top ready issues (`today` is
    /// `YYYY-MM-DD`, for deferrals).
    pub fn usage(&self, today: &str) -> Result<UsageView> {
        let conn = self.store.conn();
        let me = &self.session.id;
        let focused = match self.focused_issue()? {
            Some(id) => query::find_issue(conn, &id)?.filter(|i| i.deleted_at.is_none()),
            None => None,
        };
        let (focused_handoff, focused_files) = match &focused {
            Some(i) => (query::latest_handoff(conn, &i.id)?, self.files(&i.id)?),
            None => (None, Vec::new()),
        };
        let work_session = self.ws_current()?;
        let ws_issues = work_session
            .as_ref()
            .map(|w| w.issues.clone())
            .unwrap_or_default();
        let by_status = |status: &str| {
            self.issues(&ListFilter {
                status: vec![status.into()],
                ..Default::default()
            })
        };
        let in_progress = by_status("in_progress")?
            .into_iter()
            .filter(|i| &i.implementer_session == me)
            .collect();
        let (mut reviewable, mut ready_to_close) = (Vec::new(), Vec::new());
        for issue in by_status("in_review")? {
            let facts = Facts::read(conn, &issue, me)?;
            if !review_policy::reviewable(self.review_mode, &facts) {
                continue;
            }
            if !facts.active_approval {
                reviewable.push(issue);
            } else if review_policy::ready_to_close(self.review_mode, &facts) {
                ready_to_close.push(issue);
            }
        }
        let ready = query::ready_issues_up_to(conn, today, Some(USAGE_READY))?;
        Ok(UsageView {
            session: me.clone(),
            focused,
            work_session,
            ws_issues,
            in_progress,
            reviewable,
            ready_to_close,
            ready,
            focused_handoff,
            focused_files,
        })
    }

    /// `td info`: the project at a glance.
    pub fn info(&self) -> Result<InfoView> {
        let conn = self.store.conn();
        let count = |sql: &str| -> Result<i64> { Ok(conn.query_row(sql, [], |r| r.get(0))?) };
        let by_status: std::collections::BTreeMap<String, i64> =
            self.status_counts()?.into_iter().collect();
        let mut records = std::collections::BTreeMap::new();
        for table in [
            "logs",
            "comments",
            "handoffs",
            "issue_reviews",
            "boards",
            "notes",
            "work_sessions",
        ] {
            records.insert(
                table.to_string(),
                count(&format!("SELECT count(*) FROM {table}"))?,
            );
        }
        let stats = self.log_stats()?;
        Ok(InfoView {
            project: self.store.project_id()?,
            machine: self.store.identity().fingerprint(),
            issues: by_status.values().sum(),
            issues_by_status: by_status,
            deleted: count("SELECT count(*) FROM issues WHERE deleted_at IS NOT NULL")?,
            records,
            sessions: count("SELECT count(*) FROM sessions")?,
            members: self.members()?.iter().filter(|m| !m.removed).count(),
            changes: stats.changes,
            writers: stats.actors,
        })
    }

    /// `td security`: reviews recorded by the session that implemented the work and closes past
    /// the review policy, newest first.
    pub fn security_events(&self) -> Result<Vec<SecurityEvent>> {
        let conn = self.store.conn();
        let mut out = Vec::new();
        let mut stmt = conn.prepare(
            "SELECT issue_id, reviewer_session, reviewed_by, summary, created_at FROM issue_reviews \
             WHERE self_review = 1",
        )?;
        for row in stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })? {
            let (issue_id, session_id, by, summary, timestamp) = row?;
            out.push(SecurityEvent {
                kind: if by.is_empty() {
                    "self_review"
                } else {
                    "attributed_review"
                }
                .into(),
                issue_id,
                session_id,
                detail: if by.is_empty() {
                    summary
                } else {
                    format!("reviewed by {by}")
                },
                timestamp,
            });
        }
        let mut stmt = conn.prepare(
            "SELECT issue_id, session_id, message, timestamp FROM logs \
             WHERE message LIKE '%Closed (self-close exception%'",
        )?;
        for row in stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })? {
            let (issue_id, session_id, message, timestamp) = row?;
            out.push(SecurityEvent {
                kind: "self_close_exception".into(),
                issue_id,
                session_id,
                // td's form `Closed (SELF-CLOSE EXCEPTION: <why>)`, or this td's earlier
                // `Closed (self-close exception): <why>`.
                detail: match message.split_once("EXCEPTION: ") {
                    Some((_, why)) => why.strip_suffix(')').unwrap_or(why),
                    None => message
                        .trim_start_matches("Closed (self-close exception):")
                        .trim(),
                }
                .trim()
                .to_string(),
                timestamp,
            });
        }
        out.sort_by(|a, b| {
            b.timestamp
                .cmp(&a.timestamp)
                .then_with(|| a.issue_id.cmp(&b.issue_id))
        });
        Ok(out)
    }

    /// `td doctor`: checks the database and the change log (hashes, chains, signatures) and
    /// counts what is held, waiting, set aside, quarantined or not pushed to `hubs` yet.
    pub fn doctor(&self, hubs: &[String]) -> Result<crate::doctor::DoctorReport> {
        let pending = hubs
            .iter()
            .map(|h| Ok((h.clone(), self.store.pending_push(h)?)))
            .collect::<Result<Vec<_>>>()?;
        let mut report = crate::doctor::examine(self.store.conn(), &pending)?;
        let edits = match self.store.outside_edits() {
            Ok((edits, _)) => edits,
            Err(e) => {
                // A log that does not rebuild is what the checks above report.
                report.checks.push(crate::doctor::Check {
                    name: "outside edits".into(),
                    ok: true,
                    detail: format!("not checked: the tables cannot be rebuilt from the log ({e})"),
                });
                return Ok(report);
            }
        };
        let shown: Vec<String> = edits
            .iter()
            .take(10)
            .map(|e| match e.kind.as_str() {
                "changed" => format!("{} {} ({})", e.table, e.id, e.columns.join(", ")),
                kind => format!("{} {} ({kind} outside td)", e.table, e.id),
            })
            .collect();
        report.checks.push(crate::doctor::Check {
            name: "outside edits".into(),
            ok: edits.is_empty(),
            detail: if edits.is_empty() {
                "every table row is what the change log makes of it".into()
            } else {
                format!(
                    "{} row(s) edited outside td, not in the change log (they would not sync and a rebuild would revert them): {}{}; adopt the issues' edits as signed changes with 'td doctor --adopt-edits', or revert them with 'td rebuild --discard-outside-edits'",
                    edits.len(),
                    shown.join("; "),
                    if edits.len() > shown.len() { "; …" } else { "" }
                )
            },
        });
        report.ok &= edits.is_empty();
        report.outside_edits = edits;
        Ok(report)
    }

    /// `td doctor --adopt-edits`: issues' fields edited outside td become signed changes of
    /// this session; returns the issues adopted and the edits left as they are.
    pub fn adopt_outside_edits(
        &mut self,
    ) -> Result<(Vec<String>, Vec<crate::outside_edits::OutsideEdit>)> {
        let me = self.session.id.clone();
        self.store.adopt_outside_edits(&me)
    }

    /// `td check-handoff`: whether this session should hand off before it stops.
    pub fn check_handoff(&self) -> Result<HandoffCheck> {
        let mine: Vec<String> = self
            .issues(&ListFilter {
                status: vec!["in_progress".into()],
                ..Default::default()
            })?
            .into_iter()
            .filter(|i| i.implementer_session == self.session.id)
            .map(|i| i.id)
            .collect();
        let ws = self.ws_current()?.map(|w| w.id).unwrap_or_default();
        Ok(HandoffCheck {
            needs_handoff: !mine.is_empty() || !ws.is_empty(),
            session: self.session.id.clone(),
            in_progress_count: mine.len(),
            in_progress_issues: mine,
            active_work_session: ws,
            focused_issue: self.focused_issue()?.unwrap_or_default(),
        })
    }

    /// `td blocked-by`: what waits on an issue (with `direct`, only what depends on it
    /// directly).
    pub fn blocked_by(&self, id: &str, direct: bool) -> Result<BlockedByView> {
        let issue = self.issue(id)?;
        let g = DepGraph::load(self.store.conn())?;
        let d = g.blocked_directly(id);
        let all = (!direct).then(|| g.blocked_transitively(id, false));
        Ok(BlockedByView {
            issue,
            direct_count: d.len(),
            transitive_count: all.as_ref().map(|a| a.len() - d.len()),
            direct: d,
            all,
        })
    }

    /// `td depends-on`: what an issue waits on.
    pub fn depends_on(&self, id: &str) -> Result<DependsOnView> {
        let issue = self.issue(id)?;
        let g = DepGraph::load(self.store.conn())?;
        let dependencies = g
            .depends_on(id)
            .iter()
            .map(|d| self.issue(d))
            .collect::<Result<_>>()?;
        Ok(DependsOnView {
            issue,
            dependencies,
        })
    }

    /// `td critical-path`: the order that unblocks the most work soonest.
    pub fn critical_path(&self) -> Result<CriticalPath> {
        Ok(DepGraph::load(self.store.conn())?.critical_path())
    }

    /// A work session by id, with its tagged issues (`td ws show`).
    pub fn work_session(&self, id: &str) -> Result<WorkSessionView> {
        crate::ops::work_sessions::work_session(self.store.conn(), id)?
            .ok_or_else(|| crate::error::not_found(format!("work session not found: {id}")))
    }

    /// `td session <name>`: names this session (local, like every session row).
    pub fn name_session(&mut self, name: &str) -> Result<()> {
        session::set_name(self.store.conn(), &self.session.id, name.trim())?;
        self.session.name = name.trim().to_string();
        Ok(())
    }

    /// `td session cleanup`: this machine's sessions idle for more than `older_than_secs`
    /// (never this one); removed when `force`, else only listed.
    pub fn stale_sessions(&self, older_than_secs: i64, force: bool) -> Result<Vec<String>> {
        let cutoff = (chrono::Local::now() - chrono::Duration::seconds(older_than_secs))
            .format("%Y-%m-%d %H:%M:%S%.6f%:z")
            .to_string();
        session::stale(self.store.conn(), &self.session.id, &cutoff, force)
    }

    /// This machine's sessions, most recently active first (`td session list`).
    pub fn sessions(&self) -> Result<Vec<SessionView>> {
        let now = chrono::Utc::now();
        Ok(session::list(self.store.conn())?
            .into_iter()
            .map(|[id, name, branch, agent, last]| {
                let at =
                    crate::model::parse_timestamp(&last).map(|t| t.with_timezone(&chrono::Utc));
                SessionView {
                    current: id == self.session.id,
                    session: id,
                    name,
                    branch,
                    agent,
                    last_activity: at.map(|t| t.to_rfc3339()).unwrap_or(last),
                    age_seconds: at.map(|t| (now - t).num_seconds()).unwrap_or(0),
                }
            })
            .collect())
    }

    /// `td sync tail`: the change log's records after `after` (or the newest `limit` when
    /// `None`), oldest first, at most `limit`.
    pub fn log_tail(&self, after: Option<i64>, limit: usize) -> Result<Vec<LogRecordView>> {
        let conn = self.store.conn();
        let me = self.store.identity().public_key();
        let sql = "SELECT id, received_at, doc_id, author, session_id, applied FROM crdt_changes";
        let map = |r: &rusqlite::Row<'_>| -> rusqlite::Result<LogRecordView> {
            let author: Vec<u8> = r.get(3)?;
            let doc: String = r.get(2)?;
            let key: Option<[u8; 32]> = author.as_slice().try_into().ok();
            Ok(LogRecordView {
                position: r.get(0)?,
                received_at: r.get(1)?,
                kind: crate::model::Kind::of_id(&doc)
                    .map(|k| k.name().to_string())
                    .unwrap_or_default(),
                entity: doc,
                machine: key
                    .map(|k| crate::identity::fingerprint_of(&k))
                    .unwrap_or_default(),
                session: r.get(4)?,
                local: key == Some(me),
                applied: r.get::<_, i64>(5)? != 0,
            })
        };
        let rows: Vec<LogRecordView> = match after {
            Some(pos) => conn
                .prepare(&format!("{sql} WHERE id > ?1 ORDER BY id LIMIT ?2"))?
                .query_map(rusqlite::params![pos, limit as i64], map)?
                .collect::<std::result::Result<_, _>>()?,
            None => {
                let mut v: Vec<LogRecordView> = conn
                    .prepare(&format!("{sql} ORDER BY id DESC LIMIT ?1"))?
                    .query_map([limit as i64], map)?
                    .collect::<std::result::Result<_, _>>()?;
                v.reverse();
                v
            }
        };
        Ok(rows)
    }

    /// The project exported in `format`.
    pub fn export(&self, format: ExportFormat) -> Result<String> {
        let conn = self.store.conn();
        match format {
            ExportFormat::Snapshot => export::export_json_string(conn),
            ExportFormat::Json { include_deleted } => export::export_td_json(conn, include_deleted),
            ExportFormat::Sql => export::export_sql(conn),
            ExportFormat::Markdown { include_deleted } => {
                export::export_markdown(conn, include_deleted)
            }
        }
    }
}
