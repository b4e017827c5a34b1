//! Command-line grammar (clap). td's command names, aliases and flags.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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

/// Fields shared by `create`, `update` and `epic create`.
#[derive(Debug, Args, Default, Clone)]
pub(crate) struct FieldArgs {
    /// Issue type: bug, feature (story), task, epic, chore.
    #[arg(short = 't', long = "type", value_name = "TYPE")]
    pub issue_type: Option<String>,
    /// Priority: P0-P4, 0-4, or critical/high/medium/low.
    #[arg(short = 'p', long)]
    pub priority: Option<String>,
    /// Story points: 1, 2, 3, 5, 8, 13, 21.
    #[arg(long)]
    pub points: Option<i64>,
    /// Comma-separated labels (replaces the set).
    #[arg(short = 'l', long)]
    pub labels: Option<String>,
    /// Description.
    #[arg(short = 'd', long)]
    pub description: Option<String>,
    /// Acceptance criteria.
    #[arg(long)]
    pub acceptance: Option<String>,
    /// Parent issue or epic ("" clears).
    #[arg(long, visible_alias = "epic")]
    pub parent: Option<String>,
    /// Sprint name.
    #[arg(long)]
    pub sprint: Option<String>,
    /// Minor issue: may be approved by its implementer.
    #[arg(long)]
    pub minor: bool,
    /// Defer until a date (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub defer: Option<String>,
    /// Due date (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub due: Option<String>,
}

/// `--if-match`: the optimistic check.
#[derive(Debug, Args, Default, Clone)]
pub(crate) struct IfMatch {
    /// Only act if the issue is still at this version (from `td show --json`); otherwise fail
    /// with code `conflict` and write nothing.
    #[arg(long, value_name = "VERSION")]
    pub if_match: Option<String>,
}

/// Handoff lists.
#[derive(Debug, Args, Default, Clone)]
pub(crate) struct HandoffArgs {
    /// What was done (repeatable).
    #[arg(long)]
    pub done: Vec<String>,
    /// What remains (repeatable).
    #[arg(long)]
    pub remaining: Vec<String>,
    /// A decision made (repeatable).
    #[arg(long = "decision")]
    pub decisions: Vec<String>,
    /// An open question (repeatable).
    #[arg(long)]
    pub uncertain: Vec<String>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create .todos/issues.db for this project (idempotent); with --mode=libsql --url, also
    /// connect it to a team hub.
    Init {
        /// `local` (default), or `libsql`/`turso` to sync through a hub.
        #[arg(long, value_name = "MODE")]
        mode: Option<String>,
        /// Hub URL (libsql://…, https://…, http://…).
        #[arg(long)]
        url: Option<String>,
        /// Hub auth token (Turso JWT).
        #[arg(long)]
        token: Option<String>,
        /// Import an existing td database (schema v38 or older) into the new project.
        #[arg(long, value_name = "PATH")]
        migrate_from: Option<PathBuf>,
    },
    /// Create an issue.
    #[command(visible_aliases = ["add", "new"])]
    Create {
        /// Title (or use --title).
        title: Option<String>,
        /// Title.
        #[arg(long = "title", value_name = "TITLE")]
        title_flag: Option<String>,
        #[command(flatten)]
        fields: FieldArgs,
        /// Issues this one depends on (comma-separated or repeated).
        #[arg(long, value_delimiter = ',')]
        depends_on: Vec<String>,
        /// Issues this one blocks (comma-separated or repeated).
        #[arg(long, value_delimiter = ',')]
        blocks: Vec<String>,
    },
    /// List issues (open ones by default).
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Show issues with their handoff, logs and reviews.
    #[command(visible_aliases = ["context", "view", "get"])]
    Show {
        /// Issue ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Change fields of issues.
    #[command(visible_alias = "edit")]
    Update {
        /// Issue ids.
        #[arg(required = true)]
        ids: Vec<String>,
        /// New title.
        #[arg(long)]
        title: Option<String>,
        #[command(flatten)]
        fields: FieldArgs,
        /// New status (td's transitions apply).
        #[arg(short = 's', long)]
        status: Option<String>,
        /// Append text to the description.
        #[arg(long)]
        append: Option<String>,
        #[command(flatten)]
        if_match: IfMatch,
    },
    /// Soft-delete issues (restore with `td restore`).
    Delete {
        /// Issue ids.
        #[arg(required = true)]
        ids: Vec<String>,
        #[command(flatten)]
        if_match: IfMatch,
    },
    /// Undo a soft delete.
    Restore {
        /// Issue ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Claim issues for this session (in_progress) and focus the first.
    Start {
        /// Issue ids.
        #[arg(required = true)]
        ids: Vec<String>,
        /// Take over an issue another session holds, or start a blocked one.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        if_match: IfMatch,
    },
    /// Give issues back (open).
    Unstart {
        /// Issue ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Log progress: `td log [id] "message"` (default: the focused issue).
    Log {
        /// Optional issue id, then the message.
        #[arg(required = true, num_args = 1..=2, value_name = "[ID] MESSAGE")]
        args: Vec<String>,
        /// Log type: progress, security, blocker, decision, hypothesis, tried, result, orchestration.
        #[arg(long = "type", value_name = "TYPE")]
        log_type: Option<String>,
        /// Shorthand for --type decision.
        #[arg(long)]
        decision: bool,
        /// Shorthand for --type blocker.
        #[arg(long)]
        blocker: bool,
        /// Shorthand for --type hypothesis.
        #[arg(long)]
        hypothesis: bool,
        /// Shorthand for --type tried.
        #[arg(long)]
        tried: bool,
        /// Shorthand for --type result.
        #[arg(long)]
        result: bool,
    },
    /// Record a handoff: what was done, what remains, decisions, open questions.
    Handoff {
        /// Issue id.
        id: String,
        #[command(flatten)]
        lists: HandoffArgs,
    },
    /// Submit issues for review.
    Review {
        /// Issue ids.
        #[arg(required = true)]
        ids: Vec<String>,
        #[command(flatten)]
        if_match: IfMatch,
    },
    /// Approve reviewed issues (closes them), as the review policy allows.
    ///
    /// In trusted mode (the default) a session that implemented the issue approves only with
    /// --reviewed-by "<who>" or --self-review --reason "..."; delegated, balanced and strict
    /// modes are stricter (td feature get review_policy_mode).
    Approve {
        /// Issue ids.
        #[arg(required = true)]
        ids: Vec<String>,
        /// Who reviewed it (lets the implementer record an outside review; trusted mode).
        #[arg(long, value_name = "WHO")]
        reviewed_by: Option<String>,
        /// Approve your own work; needs --reason (trusted mode).
        #[arg(long)]
        self_review: bool,
        /// Why (review summary; required with --self-review).
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        if_match: IfMatch,
    },
    /// Send reviewed issues back (open).
    Reject {
        /// Issue ids.
        #[arg(required = true)]
        ids: Vec<String>,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        if_match: IfMatch,
    },
    /// Close issues without review: the admin path for duplicates, won't-fix and cleanup.
    ///
    /// An issue in review is approved or rejected instead. Closing work you implemented (or,
    /// as its creator, work someone implemented) is refused by the review policy unless you
    /// state an exception, which is kept in the issue's log.
    Close {
        /// Issue ids.
        #[arg(required = true)]
        ids: Vec<String>,
        /// Close your own work anyway, with the reason (recorded in the issue's log).
        #[arg(long, value_name = "REASON")]
        self_close_exception: Option<String>,
        /// Admin close (duplicate, won't-fix, cleanup) past the review policy, with the reason.
        #[arg(long, value_name = "REASON")]
        admin: Option<String>,
        #[command(flatten)]
        if_match: IfMatch,
    },
    /// Reopen closed issues.
    Reopen {
        /// Issue ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Mark issues blocked.
    Block {
        /// Issue ids.
        #[arg(required = true)]
        ids: Vec<String>,
        #[command(flatten)]
        if_match: IfMatch,
    },
    /// Unblock issues (open).
    Unblock {
        /// Issue ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Comment on an issue.
    Comment {
        /// Issue id.
        id: String,
        /// Comment text.
        text: String,
    },
    /// Dependencies between issues.
    #[command(subcommand)]
    Dep(DepCommand),
    /// Epics (issues of type epic).
    #[command(subcommand)]
    Epic(EpicCommand),
    /// Work sessions: group issues, log and hand off across them.
    #[command(subcommand)]
    Ws(WsCommand),
    /// The context block an agent reads at session start.
    Usage,
    /// Project and session summary.
    Status {
        /// Also show the database and hub sync state.
        #[arg(long)]
        db: bool,
    },
    /// Sync through the team hub: push then pull (or one of them).
    Sync {
        #[command(subcommand)]
        cmd: Option<SyncCommand>,
        /// Only push local changes.
        #[arg(long, conflicts_with = "pull")]
        push: bool,
        /// Only pull the hub's changes.
        #[arg(long)]
        pull: bool,
    },
    /// Project settings (.todos/config.json): database.mode, database.url, database.token,
    /// sync.auto.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Feature settings in the project's config: review_policy_mode (trusted, delegated,
    /// balanced, strict) decides who may approve and close.
    #[command(subcommand)]
    Feature(FeatureCommand),
    /// Show the current session, or start a new one with --new.
    Session {
        /// End the current session and start a new one.
        #[arg(long)]
        new: bool,
    },
    /// This machine and session.
    Whoami,
    /// Export every synced entity: json (deterministic, for backups and comparisons), sql (a
    /// script that recreates td's tables), md (a readable report).
    Export {
        /// json, sql or md.
        #[arg(long, default_value = "json")]
        format: String,
        /// Write to this file instead of stdout.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Recompute every td table from the change log.
    Rebuild,
    /// Import a `td export --format json` file, or (with --from-db) an existing td database,
    /// into this project. Entities already present are kept; the source is only read.
    Import {
        /// A JSON export to import.
        #[arg(
            value_name = "FILE",
            required_unless_present = "from_db",
            conflicts_with = "from_db"
        )]
        file: Option<PathBuf>,
        /// A td database (e.g. another checkout's .todos/issues.db).
        #[arg(long = "from-db", value_name = "PATH")]
        from_db: Option<PathBuf>,
        /// Only report what would be imported.
        #[arg(long)]
        dry_run: bool,
    },
    /// Soft-deleted issues.
    Deleted,
    /// Blocked issues.
    Blocked,
    /// Issues waiting for review.
    #[command(name = "in-review")]
    InReview,
    /// Issues in review that this session may review under the project's review policy
    /// (`td feature get review_policy_mode`; in trusted mode, every issue in review).
    Reviewable,
    /// Open issues with every dependency closed and not deferred.
    Ready,
    /// The highest-priority ready issue.
    Next,
    /// Defer an issue until a date (YYYY-MM-DD), or --clear.
    Defer {
        /// Issue id.
        id: String,
        /// YYYY-MM-DD.
        #[arg(required_unless_present = "clear")]
        date: Option<String>,
        /// Remove the defer date.
        #[arg(long, conflicts_with = "date")]
        clear: bool,
    },
    /// Set a due date (YYYY-MM-DD), or --clear.
    Due {
        /// Issue id.
        id: String,
        /// YYYY-MM-DD.
        #[arg(required_unless_present = "clear")]
        date: Option<String>,
        /// Remove the due date.
        #[arg(long, conflicts_with = "date")]
        clear: bool,
    },
    /// Boards: named views of issues chosen by a query, with a manual order.
    #[command(subcommand)]
    Board(BoardCommand),
    /// Project notes: add, edit, pin, archive.
    #[command(subcommand)]
    Note(NoteCommand),
    /// Link files to an issue (paths relative to the project root, stored with forward
    /// slashes).
    Link {
        /// Issue id.
        id: String,
        /// Files to link.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// implementation, test, reference or config.
        #[arg(long, default_value = "implementation")]
        role: String,
    },
    /// Remove file links from an issue.
    Unlink {
        /// Issue id.
        id: String,
        /// Files to unlink.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Files linked to an issue.
    Files {
        /// Issue id.
        id: String,
    },
    /// Issues whose title, description, acceptance, logs or comments contain TEXT
    /// (case-insensitive, closed issues included).
    Search {
        /// Text to find.
        text: String,
    },
    /// Issues matching an expression: field comparisons (=, !=, <, <=, >, >=, ~ contains,
    /// !~) joined by and/or/not and parentheses. Fields: id, title, description, acceptance,
    /// status, type, priority, points, labels, parent, sprint, implementer, creator,
    /// reviewer, created, updated, closed, due, defer.
    #[command(
        after_help = "Examples:\n  td query \"status = open and priority <= P1\"\n  td query \"labels ~ sync and not (type = epic)\"\n  td query \"title ~ 'login page' or status = in_review\""
    )]
    Query {
        /// The expression (quote it).
        expr: String,
    },
    /// An issue and all its descendants (children, grandchildren, …).
    Tree {
        /// Issue id.
        id: String,
    },
    /// Direct machine-to-machine sync over QUIC (no server needed).
    #[command(subcommand)]
    Peer(PeerCommand),
    /// The project's member roster: machines whose changes are accepted.
    #[command(subcommand)]
    Member(MemberCommand),
    /// Join a project with an invite code from 'td member invite' (on a fresh replica; runs
    /// 'td init' first when needed).
    #[command(
        after_help = "The code holds the project, the inviting admin's key, where to sync and a one-time\nsecret. td checks it offline first (signature, project, expiry): a refused code writes\nnothing. Then this machine admits itself with a record that travels before its own work,\nand syncs.\n\nExamples:\n  td join tdjoin1_eyJwcm9qZWN0Ijo…\n  td join \"$(cat invite.txt)\" --token \"$TD_DATABASE_TOKEN\""
    )]
    Join {
        /// The invite code (one line, starts with tdjoin1_).
        code: String,
        /// The hub's auth token, when the hub needs one (never carried in the code).
        #[arg(long, env = "TD_DATABASE_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// This replica has work of its own project: re-create it in the joined project (the
        /// old database is kept beside the new one as issues.db.adopted-<project>).
        #[arg(long)]
        adopt: bool,
        /// With --adopt: show what would move, change nothing.
        #[arg(long, requires = "adopt")]
        dry_run: bool,
    },
}

/// `td sync`.
#[derive(Debug, Subcommand)]
pub(crate) enum SyncCommand {
    /// Connect this project to a hub (adopting the hub's project on a fresh replica).
    Init {
        /// Hub URL (libsql://…, https://…, http://…; user:pass@ for basic auth).
        #[arg(long)]
        hub: String,
        /// Auth token (Turso JWT); stored in .todos/config.json.
        #[arg(long)]
        token: Option<String>,
        /// Project to join when the hub holds several.
        #[arg(long)]
        project: Option<String>,
        /// This replica has work of another project: re-create it in the hub's project (the
        /// old database is kept beside as issues.db.adopted-<project>). Its work is held by
        /// the team until an admin admits this machine ('td member add', or use 'td join').
        #[arg(long)]
        adopt: bool,
    },
    /// Send local changes to the hub.
    Push,
    /// Receive the hub's changes.
    Pull,
    /// Mode, hub, pending changes, last push/pull, quarantined rows.
    Status,
    /// Concurrent edits that overwrote one another (unresolved ones by default).
    Conflicts {
        /// Only conflicts whose overwritten edit is newer than this (e.g. 30m, 12h, 7d).
        #[arg(long, value_name = "DURATION")]
        since: Option<String>,
        /// Include resolved conflicts.
        #[arg(long)]
        all: bool,
    },
    /// Settle a conflict everywhere: keep the kept or the overwritten value, or set another.
    Resolve {
        /// The conflict id (cf-…).
        id: String,
        /// `kept` or `overwritten`.
        #[arg(long, value_name = "SIDE", conflicts_with = "value")]
        keep: Option<String>,
        /// A new value for the field.
        #[arg(long)]
        value: Option<String>,
    },
}

/// `td config`.
#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Set a key.
    Set {
        /// database.mode | database.url | database.token | sync.auto
        key: String,
        /// Value.
        value: String,
    },
    /// Print a key (tokens masked).
    Get {
        /// Key.
        key: String,
    },
    /// Print every key (tokens masked).
    List,
}

/// `td feature`.
#[derive(Debug, Subcommand)]
pub(crate) enum FeatureCommand {
    /// Every feature, its value and where the value comes from.
    List,
    /// One feature's value and source (env, config or default).
    Get {
        /// Feature name (review_policy_mode).
        name: String,
    },
    /// Set a feature in .todos/config.json.
    #[command(after_help = "Example:\n  td feature set review_policy_mode delegated")]
    Set {
        /// Feature name (review_policy_mode).
        name: String,
        /// review_policy_mode: trusted (default), delegated, balanced or strict.
        value: String,
    },
    /// Remove a feature setting (back to the default).
    Unset {
        /// Feature name (review_policy_mode).
        name: String,
    },
}

/// `td peer`.
#[derive(Debug, Subcommand)]
pub(crate) enum PeerCommand {
    /// This machine's fingerprint and public key (the key is what other machines paste).
    Id,
    /// Add a peer to the address book: where it serves and the key it must prove. This admits
    /// nobody: admitting a machine is 'td member add' (admins).
    Add {
        /// A local name for the peer.
        name: String,
        /// Where it serves: host:port.
        addr: String,
        /// Its machine public key (from 'td peer id' on that machine).
        #[arg(long)]
        key: String,
    },
    /// List the address book.
    List,
    /// Remove a peer from the address book (the roster is unchanged).
    Remove {
        /// The peer's name.
        name: String,
    },
    /// Serve this project to peers until interrupted (SIGINT/SIGTERM).
    Serve {
        /// Address to listen on (port 0 picks a free port; the first output line names it).
        #[arg(long, default_value = "0.0.0.0:7878")]
        listen: String,
    },
    /// One sync round with each named peer (all peers when none is named), or with
    /// <host:port> --key <public-key>.
    Sync {
        /// Peer names, or one host:port with --key.
        peers: Vec<String>,
        /// The public key of an ad-hoc peer given as host:port.
        #[arg(long)]
        key: Option<String>,
        /// Keep one connection to the peer and sync whenever this replica changes (and at
        /// least every --every seconds) until Ctrl-C. Prints one line per round (one JSON
        /// object per line with --json). Rounds after the first skip the QUIC/TLS handshake.
        #[arg(long)]
        watch: bool,
        /// With --watch: the longest wait between rounds, in seconds (pulls the peer's news).
        #[arg(long, value_name = "SECONDS", default_value_t = 30, requires = "watch")]
        every: u64,
    },
}

/// `td member`.
#[derive(Debug, Subcommand)]
pub(crate) enum MemberCommand {
    /// Admit a machine: its changes are accepted by every replica (admins only).
    #[command(
        after_help = "The founder is the first admin. Members write; admins also add and remove machines\nand change roles. A machine's work written before its admission arrives is held, not\ndropped, and applied once it is admitted.\n\nExamples:\n  td member add 3f2a…c9 --name ci-runner\n  td member add 3f2a…c9 --role admin"
    )]
    Add {
        /// Its public key (from 'td peer id' on that machine).
        key: String,
        /// A label for it.
        #[arg(long)]
        name: Option<String>,
        /// `member` (writes) or `admin` (also changes the roster).
        #[arg(long, default_value = "member", value_parser = ["member", "admin"])]
        role: String,
    },
    /// List members: role, who admitted whom, removed machines, pending invites.
    List,
    /// Make a one-line invite for a machine you don't know yet (admins only).
    #[command(
        after_help = "Prints one line (or {\"code\",…} with --json) to give the new machine, which runs\n'td join <code>'. The code is a secret until used: anyone holding it can join once.\n\nExamples:\n  td member invite --name ci-runner --hub libsql://team.turso.io\n  td member invite --role admin --expires 1d --peer 10.0.0.5:7878"
    )]
    Invite {
        /// `member` or `admin`.
        #[arg(long, default_value = "member", value_parser = ["member", "admin"])]
        role: String,
        /// A name for the new machine.
        #[arg(long)]
        name: Option<String>,
        /// How long the code stays valid (30m, 12h, 7d, 2w).
        #[arg(long, default_value = "7d")]
        expires: String,
        /// A hub the new machine syncs through (defaults to this replica's hub).
        #[arg(long)]
        hub: Option<String>,
        /// A peer address (host:port) where this machine serves ('td peer serve').
        #[arg(long)]
        peer: Option<String>,
    },
    /// Withdraw an unused invite (admins only).
    RevokeInvite {
        /// The invite id (or a unique prefix of it), from 'td member list'.
        id: String,
    },
    /// Change a member's role (admins only; the last admin stays one).
    Role {
        /// Its public key, machine fingerprint or name.
        who: String,
        /// `member` or `admin`.
        #[arg(value_parser = ["member", "admin"])]
        role: String,
    },
    /// Remove a machine (admins only). Its changes this replica already holds stay on every
    /// replica; later ones are refused everywhere.
    #[command(visible_alias = "rm")]
    Remove {
        /// Its public key, machine fingerprint or name.
        key: String,
    },
}

/// `td list` filters.
#[derive(Debug, Args, Default)]
pub(crate) struct ListArgs {
    /// Status filter (repeatable or comma-separated).
    #[arg(short = 's', long, value_delimiter = ',')]
    pub status: Vec<String>,
    /// Type filter.
    #[arg(short = 't', long = "type", value_delimiter = ',')]
    pub types: Vec<String>,
    /// Label filter (any of).
    #[arg(short = 'l', long, value_delimiter = ',')]
    pub labels: Vec<String>,
    /// Priority filter.
    #[arg(short = 'p', long, value_delimiter = ',')]
    pub priority: Vec<String>,
    /// Search titles and descriptions.
    #[arg(short = 'q', long)]
    pub search: Option<String>,
    /// Children of this issue.
    #[arg(long)]
    pub parent: Option<String>,
    /// Children of this epic.
    #[arg(long)]
    pub epic: Option<String>,
    /// Only issues this session created or implements.
    #[arg(short = 'm', long)]
    pub mine: bool,
    /// Include closed issues.
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Sort: priority (default), created, updated, id, title, status.
    #[arg(long)]
    pub sort: Option<String>,
    /// Maximum number of issues.
    #[arg(short = 'n', long)]
    pub limit: Option<usize>,
}

/// `td dep`.
#[derive(Debug, Subcommand)]
pub(crate) enum DepCommand {
    /// ISSUE depends on DEPENDS_ON.
    Add {
        /// The dependent issue.
        issue: String,
        /// The issue it waits for.
        depends_on: String,
    },
    /// Remove a dependency.
    #[command(visible_alias = "remove")]
    Rm {
        /// The dependent issue.
        issue: String,
        /// The issue it waited for.
        depends_on: String,
    },
}

/// `td epic`.
#[derive(Debug, Subcommand)]
pub(crate) enum EpicCommand {
    /// Create an epic.
    Create {
        /// Title.
        title: String,
        #[command(flatten)]
        fields: Box<FieldArgs>,
    },
    /// List epics.
    List {
        /// Include closed epics.
        #[arg(short = 'a', long)]
        all: bool,
    },
}

/// `td ws`.
#[derive(Debug, Subcommand)]
pub(crate) enum WsCommand {
    /// Start a named work session.
    Start {
        /// Name.
        name: String,
    },
    /// Tag issues into the active work session.
    Tag {
        /// Issue ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Remove issues from the active work session.
    Untag {
        /// Issue ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Log to every tagged issue.
    Log {
        /// Message.
        message: String,
        /// Log type.
        #[arg(long = "type", default_value = "progress")]
        log_type: String,
    },
    /// Hand off every tagged issue and end the work session.
    Handoff {
        #[command(flatten)]
        lists: HandoffArgs,
    },
    /// End the active work session.
    End,
    /// Show the active work session.
    Current,
    /// List work sessions.
    List,
}

/// `td board`.
#[derive(Debug, Subcommand)]
pub(crate) enum BoardCommand {
    /// Create a board; without --query it shows every issue.
    Create {
        /// Board name.
        name: String,
        /// Which issues it shows (see `td query --help`), e.g. "labels ~ sync".
        #[arg(short = 'q', long)]
        query: Option<String>,
    },
    /// List boards.
    List,
    /// A board's issues: manually positioned ones first, then the rest by priority.
    Show {
        /// Board id or name.
        board: String,
    },
    /// Put an issue at a position (1 = top) in a board's manual order.
    Move {
        /// Board id or name.
        board: String,
        /// Issue id.
        issue: String,
        /// 1-based position.
        position: i64,
    },
    /// Drop an issue's manual position on a board.
    Unposition {
        /// Board id or name.
        board: String,
        /// Issue id.
        issue: String,
    },
    /// Rename a board or change its query or view mode.
    Edit {
        /// Board id or name.
        board: String,
        /// New name.
        #[arg(short = 'n', long)]
        name: Option<String>,
        /// New query ("" shows every issue).
        #[arg(short = 'q', long)]
        query: Option<String>,
        /// swimlanes or backlog.
        #[arg(long)]
        view_mode: Option<String>,
    },
    /// Delete a board (its issues are untouched).
    Delete {
        /// Board id or name.
        board: String,
    },
}

/// `td note`.
#[derive(Debug, Subcommand)]
pub(crate) enum NoteCommand {
    /// Add a note.
    Add {
        /// Title.
        title: String,
        /// Content.
        #[arg(short = 'c', long, default_value = "")]
        content: String,
    },
    /// List notes: pinned first, archived ones hidden unless asked for.
    List {
        /// Only pinned notes.
        #[arg(long)]
        pinned: bool,
        /// Only archived notes.
        #[arg(long, conflicts_with = "all")]
        archived: bool,
        /// Archived notes too.
        #[arg(short = 'a', long)]
        all: bool,
    },
    /// Show a note.
    Show {
        /// Note id (nt-… or the hex part).
        id: String,
    },
    /// Change a note's title or content.
    Edit {
        /// Note id.
        id: String,
        /// New title.
        #[arg(long)]
        title: Option<String>,
        /// New content.
        #[arg(short = 'c', long)]
        content: Option<String>,
    },
    /// Delete a note.
    Delete {
        /// Note id.
        id: String,
    },
    /// Pin a note to the top of the list.
    Pin {
        /// Note id.
        id: String,
    },
    /// Unpin a note.
    Unpin {
        /// Note id.
        id: String,
    },
    /// Archive a note (hidden from `note list`).
    Archive {
        /// Note id.
        id: String,
    },
    /// Bring an archived note back.
    Unarchive {
        /// Note id.
        id: String,
    },
}
