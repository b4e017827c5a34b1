//! The command line: td's commands, one module each (its clap arguments and its `run`), and
//! the dispatch that opens the project, runs autosync around a command and prints conflict
//! warnings. Handlers parse, call the engine and render; every rule lives in `td_engine`.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Parser, Subcommand};
use td_engine::model::normalize_issue_id;
use td_engine::{Project, SessionContext};

use crate::env;
use crate::hub::{self, Auto};

mod approve;
mod block;
mod blocked;
mod blocked_by;
mod board;
mod check_handoff;
mod close;
mod comment;
mod comments;
mod common;
mod completion;
mod config;
mod conflicts;
mod create;
mod critical_path;
mod defer;
mod delete;
mod deleted;
mod dep;
mod depends_on;
mod doctor;
mod due;
mod epic;
mod export;
pub(crate) mod feature;
mod files;
mod focus;
mod handoff;
mod import;
mod in_review;
mod info;
mod init;
mod join;
mod last;
mod link;
mod list;
mod log;
mod member;
mod monitor;
mod next;
mod note;
mod peer;
mod peer_discover;
mod query;
mod ready;
mod rebuild;
mod reject;
mod reopen;
mod restore;
mod resume;
mod review;
mod reviewable;
mod search;
mod security;
mod serve;
mod session;
mod show;
mod start;
mod status;
mod sync;
mod task;
mod tree;
mod unblock;
mod undo;
mod unfocus;
mod unlink;
mod unstart;
mod update;
mod upgrade;
mod usage;
mod version;
mod whoami;
mod workflow;
mod ws;

/// td: a task tracker for AI agents and their humans, with handoffs, session-aware review and
/// multi-machine sync.
#[derive(Debug, Parser)]
#[command(name = "td", version, about, long_about = None, after_help = TOUR)]
pub(crate) struct Cli {
    /// Project directory (default: TD_WORK_DIR, else the current directory).
    #[arg(short = 'w', long = "work-dir", global = true, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// Print machine-readable JSON on stdout (errors as {"error":{"code","message"}}).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// td's command line as its flag parser reads it (pflag): an option that needs a value takes
/// the next argument whatever it starts with (`--acceptance "- tests pass"`, the markdown
/// bullets agents write), and a single-value option given twice keeps the last
/// (`--title a --title b`). Options with an optional value or several values keep clap's
/// reading, so they never swallow the flag after them.
pub(crate) fn command() -> clap::Command {
    fn td_like(cmd: clap::Command) -> clap::Command {
        let cmd = cmd.args_override_self(true).mut_args(|a| {
            let single = a
                .get_num_args()
                .is_none_or(|r| r.min_values() == 1 && r.max_values() == 1);
            let takes = a.get_action().takes_values();
            if takes && single && !a.is_positional() {
                a.allow_hyphen_values(true)
            } else {
                a
            }
        });
        let names: Vec<String> = cmd
            .get_subcommands()
            .map(|s| s.get_name().to_string())
            .collect();
        names
            .into_iter()
            .fold(cmd, |c, n| c.mut_subcommand(n, td_like))
    }
    td_like(<Cli as clap::CommandFactory>::command())
}

/// Parses `argv` as td does ([`command`]).
pub(crate) fn parse(argv: &[String]) -> Result<Cli, clap::Error> {
    let matches = command().try_get_matches_from(argv)?;
    <Cli as clap::FromArgMatches>::from_arg_matches(&matches)
}

const TOUR: &str = "\
Workflow:
  td init                              create .todos/ in this project
  td create \"Fix login redirect\" -p P1  new issue
  td start td-abc123                   claim it (in_progress, focused)
  td log \"found the cause\"             log progress on the focused issue
  td handoff td-abc123 --done \"...\" --remaining \"...\"
  td review td-abc123                  hand it to review
  TD_SESSION_ID=reviewer td approve td-abc123   another session approves

Every change is signed by this machine and kept in a change log that other machines can sync.";

/// What a command runs with: the open project, where it lives, the caller's session context
/// and the output mode.
pub(crate) struct Cx<'a> {
    /// The project, opened as the acting session.
    pub p: &'a mut Project,
    /// The project root.
    pub root: &'a Path,
    /// The caller's session context (for commands that start a new session).
    pub session: &'a SessionContext,
    /// `--json`.
    pub json: bool,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create .todos/issues.db for this project (idempotent); with --mode=libsql --url, also
    /// connect it to a team hub.
    Init(init::Args),
    /// Create an issue.
    #[command(visible_aliases = ["add", "new"])]
    Create(create::Args),
    /// List issues (open ones by default).
    #[command(visible_alias = "ls")]
    List(list::Args),
    /// Show issues with their handoff, logs and reviews.
    #[command(visible_aliases = ["context", "view", "get"])]
    Show(show::Args),
    /// Change fields of issues.
    #[command(visible_alias = "edit")]
    Update(update::Args),
    /// Soft-delete issues (restore with `td restore`).
    Delete(delete::Args),
    /// Undo a soft delete.
    Restore(restore::Args),
    /// Claim issues for this session (in_progress) and focus the first.
    #[command(visible_alias = "begin")]
    Start(start::Args),
    /// Give issues back (open).
    #[command(visible_alias = "stop")]
    Unstart(unstart::Args),
    /// Log progress: `td log [id] "message"` (default: the focused issue).
    Log(log::Args),
    /// Record a handoff: what was done, what remains, decisions, open questions.
    Handoff(handoff::Args),
    /// Submit issues for review.
    #[command(visible_aliases = ["submit", "finish"])]
    Review(review::Args),
    /// Approve reviewed issues (closes them), as the review policy allows.
    ///
    /// In trusted mode (the default) a session that implemented the issue approves only with
    /// --reviewed-by "<who>" or --self-review --reason "..."; delegated, balanced and strict
    /// modes are stricter (td feature get review_policy_mode).
    Approve(approve::Args),
    /// Send reviewed issues back (open).
    Reject(reject::Args),
    /// Close issues without review: the admin path for duplicates, won't-fix and cleanup.
    ///
    /// An issue in review is approved or rejected instead. Closing work you implemented (or,
    /// as its creator, work someone implemented) is refused by the review policy unless you
    /// state an exception, which is kept in the issue's log.
    #[command(visible_aliases = ["done", "complete"])]
    Close(close::Args),
    /// Reopen closed issues.
    Reopen(reopen::Args),
    /// Mark issues blocked.
    Block(block::Args),
    /// Unblock issues (open).
    Unblock(unblock::Args),
    /// Comment on an issue.
    Comment(comment::Args),
    /// An issue's comments (default: the focused issue); `td comments add <id> "text"`.
    Comments(comments::Args),
    /// Make an issue this session's focus (`td log`, `td show` and `td usage` default to it).
    Focus(focus::Args),
    /// Clear this session's focus.
    Unfocus,
    /// Dependencies between issues: `dep add <a> <b>…`, `dep rm <a> <b>`, `dep <a> <b>`,
    /// `dep <a> [--blocking]`.
    Dep(dep::Args),
    /// What waits on an issue, directly and through others.
    #[command(name = "blocked-by")]
    BlockedBy(blocked_by::Args),
    /// What an issue waits on.
    #[command(name = "depends-on", visible_aliases = ["deps", "dependencies"])]
    DependsOn(depends_on::Args),
    /// The order of work that unblocks the most, soonest.
    #[command(name = "critical-path")]
    CriticalPath(critical_path::Args),
    /// Epics (issues of type epic).
    #[command(subcommand)]
    Epic(epic::EpicCommand),
    /// Tasks (issues of type task).
    #[command(subcommand)]
    Task(task::TaskCommand),
    /// For agent exit hooks: exit 1 when this session should hand off before it stops.
    #[command(name = "check-handoff")]
    CheckHandoff(check_handoff::Args),
    /// Show an issue's context (as `td show`) and focus it.
    Resume(resume::Args),
    /// Work sessions: group issues, log and hand off across them.
    #[command(subcommand)]
    #[command(visible_alias = "worksession")]
    Ws(ws::WsCommand),
    /// The context block an agent reads at session start (`td usage --new-session -q` at the
    /// start of every context).
    Usage(usage::Args),
    /// td's review dashboard: focus, what awaits your review, what you may close, your work in
    /// review, what is blocked, what is ready (`--db`: the database and hub state).
    #[command(visible_alias = "current")]
    Status(status::Args),
    /// Sync through the team hub: push then pull (or one of them).
    Sync(sync::Args),
    /// Project settings (.todos/config.json): database.mode, database.url, database.token,
    /// sync.auto.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Feature settings in the project's config: review_policy_mode (trusted, delegated,
    /// balanced, strict) decides who may approve and close.
    #[command(subcommand)]
    Feature(feature::FeatureCommand),
    /// Show the current session, or start a new one with --new.
    Session(session::Args),
    /// This machine and session.
    Whoami,
    /// The version of this td.
    Version(version::Args),
    /// The issue status state machine (`--mermaid`, `--dot` for diagrams).
    Workflow(workflow::Args),
    /// A shell completion script (bash, zsh, fish, powershell, elvish) on stdout.
    Completion(completion::Args),
    /// Export the project: json (td's issue items), md (td's report), snapshot (every synced
    /// table, deterministic: backups and comparing replicas), sql (a script recreating td's
    /// tables).
    Export(export::Args),
    /// Take back this session's latest action (a new change, so it syncs).
    Undo(undo::Args),
    /// This session's most recent actions (what `td undo` takes back).
    Last(last::Args),
    /// Recompute every td table from the change log (refused while rows edited outside td
    /// would be reverted; see td doctor).
    Rebuild(rebuild::Args),
    /// The project at a glance: issues by status, records, sessions, members, the change log.
    Info,
    /// td's internal statistics command: this process's memory figures, one JSON line.
    #[command(name = "debug-stats", hide = true)]
    DebugStats,
    /// The project at a glance (`td info`); `stats security`, `stats errors`.
    Stats(info::StatsArgs),
    /// Reviews recorded by their implementer and closes past the review policy.
    Security,
    /// td's HTTP API and live events (server-sent events) for this project, on 127.0.0.1.
    Serve(serve::Args),
    /// Live terminal dashboard: current work, activity from every machine, tasks (list,
    /// kanban, swimlanes, boards), TDQ search, actions, and sync status.
    Monitor(monitor::Args),
    /// Failed commands: this td keeps no such log (see the message).
    Errors,
    /// Bring the database to this td's layout; a database made by td itself is adopted in
    /// place (td's file kept beside it as a backup), so nothing has to move.
    Upgrade,
    /// Check this replica: the database, every record's hash and place in its writer's chain,
    /// every signature; what is held, waiting, set aside, quarantined or not pushed yet; rows
    /// edited outside td (`--adopt-edits` makes issues' edits signed changes).
    Doctor(doctor::Args),
    /// Import a `td export --format json` file, or (with --from-db) an existing td database,
    /// into this project. Entities already present are kept; the source is only read.
    Import(import::Args),
    /// Soft-deleted issues.
    Deleted,
    /// Blocked issues.
    Blocked,
    /// Issues waiting for review.
    #[command(name = "in-review", visible_alias = "ir")]
    InReview,
    /// Issues in review that this session may review under the project's review policy
    /// (`td feature get review_policy_mode`; in trusted mode, every issue in review).
    Reviewable(reviewable::Args),
    /// Open issues with every dependency closed and not deferred.
    Ready,
    /// The highest-priority ready issue.
    Next,
    /// Defer an issue until a date (2026-03-01, tomorrow, friday, +7d, next-week…), or --clear.
    Defer(defer::Args),
    /// Set a due date (2026-03-15, friday, +2w, next-month…), or --clear.
    Due(due::Args),
    /// Boards: named views of issues chosen by a query, with a manual order.
    #[command(subcommand)]
    Board(board::BoardCommand),
    /// Project notes: add, edit, pin, archive.
    #[command(subcommand)]
    Note(note::NoteCommand),
    /// Link files to an issue (paths relative to the project root, stored with forward
    /// slashes).
    Link(link::Args),
    /// Remove file links from an issue.
    Unlink(unlink::Args),
    /// Files linked to an issue.
    Files(files::Args),
    /// Issues whose title, description, acceptance, logs or comments contain TEXT
    /// (case-insensitive, closed issues included).
    Search(search::Args),
    /// Issues matching an expression: field comparisons (=, !=, <, <=, >, >=, ~ contains,
    /// !~) joined by and/or/not and parentheses. Fields: id, title, description, acceptance,
    /// status, type, priority, points, labels, parent, sprint, implementer, creator,
    /// reviewer, created, updated, closed, due, defer.
    #[command(
        after_help = "Examples:\n  td query \"status = open and priority <= P1\"\n  td query \"labels ~ sync and not (type = epic)\"\n  td query \"title ~ 'login page' or status = in_review\""
    )]
    Query(query::Args),
    /// An issue and all its descendants (children, grandchildren, …).
    Tree(tree::Args),
    /// Direct machine-to-machine sync over QUIC (no server needed).
    #[command(subcommand)]
    Peer(peer::PeerCommand),
    /// The project's member roster: machines whose changes are accepted.
    #[command(subcommand)]
    Member(member::MemberCommand),
    /// td's login to its own sync server: not used here (see the message).
    #[command(hide = true)]
    Auth {
        /// Ignored.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        rest: Vec<String>,
    },
    /// td's project link to its own sync server: not used here (see the message).
    #[command(name = "sync-project", hide = true)]
    SyncProject {
        /// Ignored.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        rest: Vec<String>,
    },
    /// Join a project with an invite code from 'td member invite' (on a fresh replica; runs
    /// 'td init' first when needed).
    #[command(
        after_help = "The code holds the project, the inviting admin's key, where to sync and a one-time\nsecret. td checks it offline first (signature, project, expiry): a refused code writes\nnothing. Then this machine admits itself with a record that travels before its own work,\nand syncs.\n\nExamples:\n  td join tdjoin1_eyJwcm9qZWN0Ijo…\n  td join \"$(cat invite.txt)\" --token \"$TD_DATABASE_TOKEN\""
    )]
    Join(join::Args),
}

impl Command {
    /// Runs a command that needs no open project (or must act before one is opened), or
    /// returns `None` for the rest.
    fn run_without_project(&self, root: &Path, json: bool) -> Option<Result<()>> {
        match self {
            Command::Init(a) => Some(init::run(a, root, json)),
            Command::Config(c) => Some(config::run(c, root, json)),
            Command::Feature(c) => Some(feature::run(c, root, json)),
            Command::Peer(peer::PeerCommand::Id) => Some(peer::peer_id(json)),
            Command::Version(a) => Some(version::run(a, json)),
            Command::DebugStats => Some(version::debug_stats()),
            Command::Completion(a) => Some(completion::run(a)),
            Command::Workflow(a) => Some(workflow::run(a, json)),
            Command::Upgrade => Some(upgrade::run(root, json)),
            Command::Auth { .. } => Some(Err(crate::output::invalid(
                "td auth signs in to td's own sync server; this td syncs through a libSQL hub ('td sync init --hub <url> --token <token>', or TD_DATABASE_TOKEN) or directly between machines ('td peer'), and machines are admitted with 'td member add' or 'td member invite'".into(),
            ))),
            Command::SyncProject { .. } => Some(Err(crate::output::invalid(
                "td sync-project links to td's own sync server; here, 'td sync init --hub <url> [--project <id>]' connects this project to a hub, and 'td join <code>' joins a team's project".into(),
            ))),
            Command::Join(a) => join::prepare(a, root, json).err().map(Err),
            _ => None,
        }
    }

    /// Runs the command on the open project.
    fn run(&self, cx: &mut Cx<'_>) -> Result<()> {
        match self {
            Command::Init(_)
            | Command::Config(_)
            | Command::Feature(_)
            | Command::Version(_)
            | Command::Workflow(_)
            | Command::Upgrade
            | Command::Auth { .. }
            | Command::SyncProject { .. }
            | Command::Completion(_) => {
                unreachable!("runs without a project")
            }
            Command::Create(a) => create::run(a, cx),
            Command::List(a) => list::run(a, cx),
            Command::Show(a) => show::run(a, cx),
            Command::Update(a) => update::run(a, cx),
            Command::Delete(a) => delete::run(a, cx),
            Command::Restore(a) => restore::run(a, cx),
            Command::Start(a) => start::run(a, cx),
            Command::Unstart(a) => unstart::run(a, cx),
            Command::Log(a) => log::run(a, cx),
            Command::Handoff(a) => handoff::run(a, cx),
            Command::Review(a) => review::run(a, cx),
            Command::Approve(a) => approve::run(a, cx),
            Command::Reject(a) => reject::run(a, cx),
            Command::Close(a) => close::run(a, cx),
            Command::Reopen(a) => reopen::run(a, cx),
            Command::Block(a) => block::run(a, cx),
            Command::Unblock(a) => unblock::run(a, cx),
            Command::Comment(a) => comment::run(a, cx),
            Command::Comments(a) => comments::run(a, cx),
            Command::Focus(a) => focus::run(a, cx),
            Command::Unfocus => unfocus::run(cx),
            Command::Dep(c) => dep::run(c, cx),
            Command::BlockedBy(a) => blocked_by::run(a, cx),
            Command::DependsOn(a) => depends_on::run(a, cx),
            Command::CriticalPath(a) => critical_path::run(a, cx),
            Command::Epic(c) => epic::run(c, cx),
            Command::Ws(c) => ws::run(c, cx),
            Command::Task(c) => task::run(c, cx),
            Command::CheckHandoff(a) => check_handoff::run(a, cx),
            Command::Resume(a) => resume::run(a, cx),
            Command::Usage(a) => usage::run(a, cx),
            Command::Status(a) => status::run(a, cx),
            Command::Sync(a) => sync::run(a, cx),
            Command::Session(a) => session::run(a, cx),
            Command::Whoami => whoami::run(cx),
            Command::Export(a) => export::run(a, cx),
            Command::Rebuild(a) => rebuild::run(a, cx),
            Command::Undo(a) => undo::run(a, cx),
            Command::Last(a) => last::run(a, cx),
            Command::Doctor(a) => doctor::run(a, cx),
            Command::Info => info::run(cx),
            Command::DebugStats => version::debug_stats(),
            Command::Stats(a) => info::run_stats(a, cx),
            Command::Security => security::run(cx),
            Command::Serve(a) => serve::run(a, cx),
            Command::Monitor(a) => monitor::run(a, cx),
            Command::Errors => security::errors(cx),
            Command::Import(a) => import::run(a, cx),
            Command::Deleted => deleted::run(cx),
            Command::Blocked => blocked::run(cx),
            Command::InReview => in_review::run(cx),
            Command::Reviewable(a) => reviewable::run(a, cx),
            Command::Ready => ready::run(cx),
            Command::Next => next::run(cx),
            Command::Defer(a) => defer::run(a, cx),
            Command::Due(a) => due::run(a, cx),
            Command::Board(c) => board::run(c, cx),
            Command::Note(c) => note::run(c, cx),
            Command::Link(a) => link::run(a, cx),
            Command::Unlink(a) => unlink::run(a, cx),
            Command::Files(a) => files::run(a, cx),
            Command::Search(a) => search::run(a, cx),
            Command::Query(a) => query::run(a, cx),
            Command::Tree(a) => tree::run(a, cx),
            Command::Peer(c) => peer::run(c, cx),
            Command::Member(c) => member::run(c, cx),
            Command::Join(a) => join::run(a, cx),
        }
    }

    /// The issues the command names (their lost-transition warnings are printed after it).
    /// Whether this command can hand issues on (out of `in_progress`), so this machine's
    /// online claims on them are withdrawn afterwards (docs/sync-loop.md).
    fn hands_on(&self) -> bool {
        matches!(
            self,
            Command::Unstart(_)
                | Command::Review(_)
                | Command::Approve(_)
                | Command::Reject(_)
                | Command::Close(_)
                | Command::Block(_)
                | Command::Delete(_)
        )
    }

    fn issue_ids(&self) -> Vec<String> {
        let ids: &[String] = match self {
            Command::Show(a) => &a.ids,
            Command::Update(a) => &a.ids,
            Command::Delete(a) => &a.ids,
            Command::Restore(a) => &a.ids,
            Command::Start(a) => &a.ids,
            Command::Unstart(a) => &a.ids,
            Command::Review(a) => &a.ids,
            Command::Approve(a) => &a.ids,
            Command::Reject(a) => &a.ids,
            Command::Close(a) => &a.ids,
            Command::Reopen(a) => &a.ids,
            Command::Block(a) => &a.ids,
            Command::Unblock(a) => &a.ids,
            Command::Comment(a) => std::slice::from_ref(&a.id),
            Command::Focus(a) => std::slice::from_ref(&a.id),
            Command::Defer(a) => std::slice::from_ref(&a.date.id),
            Command::Due(a) => std::slice::from_ref(&a.date.id),
            Command::Link(a) => std::slice::from_ref(&a.id),
            Command::Unlink(a) => std::slice::from_ref(&a.id),
            Command::Init(_)
            | Command::Handoff(_)
            | Command::Comments(_)
            | Command::Unfocus
            | Command::Version(_)
            | Command::Workflow(_)
            | Command::Auth { .. }
            | Command::SyncProject { .. }
            | Command::Completion(_)
            | Command::Create(_)
            | Command::List(_)
            | Command::Log(_)
            | Command::Dep(_)
            | Command::BlockedBy(_)
            | Command::DependsOn(_)
            | Command::CriticalPath(_)
            | Command::Epic(_)
            | Command::Task(_)
            | Command::CheckHandoff(_)
            | Command::Resume(_)
            | Command::Ws(_)
            | Command::Usage(_)
            | Command::Status(_)
            | Command::Sync(_)
            | Command::Config(_)
            | Command::Feature(_)
            | Command::Session(_)
            | Command::Whoami
            | Command::Export(_)
            | Command::Rebuild(_)
            | Command::Serve(_)
            | Command::Monitor(_)
            | Command::Doctor(_)
            | Command::Info
            | Command::DebugStats
            | Command::Stats(_)
            | Command::Security
            | Command::Errors
            | Command::Upgrade
            | Command::Undo(_)
            | Command::Last(_)
            | Command::Import(_)
            | Command::Deleted
            | Command::Blocked
            | Command::InReview
            | Command::Reviewable(_)
            | Command::Ready
            | Command::Next
            | Command::Board(_)
            | Command::Note(_)
            | Command::Files(_)
            | Command::Search(_)
            | Command::Query(_)
            | Command::Tree(_)
            | Command::Peer(_)
            | Command::Member(_)
            | Command::Join(_) => &[],
        };
        let mut ids: Vec<String> = ids.iter().map(|i| normalize_issue_id(i)).collect();
        if let Command::Handoff(a) = self {
            ids.extend(a.issue());
        }
        ids
    }

    /// Under autosync (`sync.auto`), whether the command pulls first (it reads), pushes after
    /// (it writes), or neither (it manages sync or the project itself).
    fn autosync(&self) -> Option<Auto> {
        match self {
            Command::List(_)
            | Command::Show(_)
            | Command::Usage(_)
            | Command::Export(_)
            | Command::Deleted
            | Command::Blocked
            | Command::InReview
            | Command::Reviewable(_)
            | Command::Ready
            | Command::Next
            | Command::Files(_)
            | Command::Search(_)
            | Command::Query(_)
            | Command::Info
            | Command::DebugStats
            | Command::Stats(_)
            | Command::Security
            | Command::BlockedBy(_)
            | Command::DependsOn(_)
            | Command::CriticalPath(_)
            | Command::Tree(_) => Some(Auto::PullBefore),
            Command::Comments(a) => Some(a.autosync()),
            Command::Dep(a) => Some(a.autosync()),
            Command::Status(a) => (!a.db).then_some(Auto::PullBefore),
            Command::Epic(c) => Some(c.autosync()),
            Command::Task(c) => Some(c.autosync()),
            Command::CheckHandoff(_) | Command::Resume(_) => Some(Auto::PullBefore),
            Command::Board(c) => Some(c.autosync()),
            Command::Note(c) => Some(c.autosync()),
            Command::Ws(c) => c.autosync(),
            Command::Create(_)
            | Command::Update(_)
            | Command::Delete(_)
            | Command::Restore(_)
            | Command::Start(_)
            | Command::Unstart(_)
            | Command::Log(_)
            | Command::Handoff(_)
            | Command::Review(_)
            | Command::Approve(_)
            | Command::Reject(_)
            | Command::Close(_)
            | Command::Reopen(_)
            | Command::Block(_)
            | Command::Unblock(_)
            | Command::Comment(_)
            | Command::Import(_)
            | Command::Defer(_)
            | Command::Due(_)
            | Command::Link(_)
            | Command::Unlink(_)
            | Command::Undo(_) => Some(Auto::PushAfter),
            Command::Init(_)
            | Command::Config(_)
            | Command::Feature(_)
            | Command::Version(_)
            | Command::Workflow(_)
            | Command::Auth { .. }
            | Command::SyncProject { .. }
            | Command::Completion(_)
            | Command::Focus(_)
            | Command::Unfocus
            | Command::Sync(_)
            | Command::Peer(_)
            | Command::Member(_)
            | Command::Join(_)
            | Command::Session(_)
            | Command::Whoami
            | Command::Doctor(_)
            | Command::Upgrade
            | Command::Errors
            | Command::Last(_)
            | Command::Serve(_)
            | Command::Monitor(_)
            | Command::Rebuild(_) => None,
        }
    }
}

/// Runs one parsed command line.
pub(crate) fn run(cli: &Cli) -> Result<()> {
    let root = env::resolve_root(cli.work_dir.as_deref())?;
    let json = cli.json;
    if let Some(done) = cli.command.run_without_project(&root, json) {
        return done;
    }
    let identity = td_transport::identity::machine_identity()?;
    let session = env::session_context(&root);
    let mut p = Project::open(&root, identity, &session)?;
    p.review_mode = feature::review_mode(&root)?;
    let auto = cli.command.autosync();
    if auto == Some(Auto::PullBefore) {
        hub::autosync(&mut p, &root, Auto::PullBefore);
    }
    let result = cli.command.run(&mut Cx {
        p: &mut p,
        root: &root,
        session: &session,
        json,
    });
    // A session that lost a concurrent workflow transition is told on its next command that
    // touches the issue (after the result, on stderr).
    for id in cli.command.issue_ids() {
        for w in p.conflict_warnings(&id).unwrap_or_default() {
            eprintln!("Warning: {}", crate::output::escape(&w));
        }
    }
    result?;
    if auto == Some(Auto::PushAfter) {
        hub::autosync(&mut p, &root, Auto::PushAfter);
    }
    if cli.command.hands_on() {
        let ids: Vec<String> = cli
            .command
            .issue_ids()
            .iter()
            .map(|i| normalize_issue_id(i))
            .collect();
        hub::release_claims(&mut p, &root, &ids);
    }
    Ok(())
}
