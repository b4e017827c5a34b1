//! Reads, as methods on [`Project`]: everything a front end shows, as typed read models
//! ([`crate::views`]). Front ends call these instead of reaching for the database, so the CLI,
//! `td serve` and `td monitor` read the same way.

use crate::conflicts::{self, Conflict};
use crate::error::Result;
use crate::export::{self, LogStats};
use crate::find;
use crate::ops::{boards, files, notes};
use crate::project::Project;
use crate::query::{self, Issue, ListFilter};
use crate::roster::{self, HeldBy, Peer};
use crate::session;
use crate::views::{
    BoardRow, BoardView, FileLinkView, InviteView, IssueDetail, MemberView, NoteView, SearchHit,
    TreeNode,
};

/// The formats `td export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// td's JSON export (every synced table).
    Json,
    /// SQL `INSERT` statements.
    Sql,
    /// A Markdown report.
    Markdown,
}

impl Project {
    /// A live issue (`not_found` for a missing or deleted one).
    pub fn issue(&self, id: &str) -> Result<Issue> {
        query::live_issue(self.store.conn(), id)
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

    /// `td search`.
    pub fn search(&self, text: &str) -> Result<Vec<SearchHit>> {
        find::search(self.store.conn(), text)
    }

    /// `td query`.
    pub fn query(&self, expr: &str) -> Result<Vec<Issue>> {
        find::query_issues(self.store.conn(), expr)
    }

    /// `td tree`.
    pub fn tree(&self, id: &str) -> Result<TreeNode> {
        find::tree(self.store.conn(), id)
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
        boards::view(self.store.conn(), key)
    }

    /// The roster: members, then removed machines.
    pub fn members(&self) -> Result<Vec<MemberView>> {
        roster::members(self.store.conn())
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

    /// The project exported in `format`.
    pub fn export(&self, format: ExportFormat) -> Result<String> {
        let conn = self.store.conn();
        match format {
            ExportFormat::Json => export::export_json_string(conn),
            ExportFormat::Sql => export::export_sql(conn),
            ExportFormat::Markdown => export::export_markdown(conn),
        }
    }
}
