//! Table layout: td's schema v38 (copied verbatim from a real td database so names, columns,
//! defaults and indexes match exactly) plus the engine's own `crdt_*` tables.

use rusqlite::Connection;

use crate::error::Result;

/// td's schema version this engine writes and reads.
pub const TD_SCHEMA_VERSION: i64 = 38;

/// td's v38 DDL, in the order td created it.
pub const TD_SCHEMA_SQL: &str = include_str!("schema_v38.sql");

/// Layout version of the engine's own tables, stored in `crdt_meta`.
pub const ENGINE_LAYOUT_VERSION: i64 = 1;

/// The engine's own tables. `crdt_changes` is the truth; `crdt_docs` is a cache of each
/// entity's Automerge document (rebuildable from the log); `crdt_actors` is the per-actor
/// summary (version vector) of what the log holds; `crdt_pending_refs` lists documents whose
/// rows wait for an entity that has not arrived yet; `crdt_roster`/`crdt_members` materialize
/// the replicated member roster; `crdt_peers` is the local address book (never synced).
pub const ENGINE_SCHEMA_SQL: &str = r#"
CREATE TABLE crdt_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE crdt_changes (
    id INTEGER PRIMARY KEY,
    hash BLOB NOT NULL,
    doc_id TEXT NOT NULL,
    actor BLOB NOT NULL,
    seq INTEGER NOT NULL,
    session_id TEXT NOT NULL,
    author BLOB NOT NULL,
    body BLOB NOT NULL,
    signature BLOB NOT NULL,
    received_at TEXT NOT NULL,
    applied INTEGER NOT NULL DEFAULT 1,
    UNIQUE(actor, seq)
);
CREATE INDEX crdt_changes_unapplied ON crdt_changes(doc_id) WHERE applied = 0;
CREATE TABLE crdt_actors (
    actor BLOB PRIMARY KEY,
    session_id TEXT NOT NULL,
    author BLOB NOT NULL,
    max_seq INTEGER NOT NULL,
    last_hash BLOB NOT NULL
);
CREATE TABLE crdt_pending_refs (
    doc_id TEXT NOT NULL,
    missing_id TEXT NOT NULL,
    PRIMARY KEY (doc_id, missing_id)
);
CREATE INDEX crdt_pending_refs_missing ON crdt_pending_refs(missing_id);
CREATE TABLE crdt_dep_edges (
    id TEXT PRIMARY KEY,
    issue_id TEXT NOT NULL,
    depends_on_id TEXT NOT NULL,
    relation_type TEXT NOT NULL DEFAULT 'depends_on'
);
CREATE INDEX crdt_dep_edges_issue ON crdt_dep_edges(issue_id);
CREATE INDEX crdt_dep_edges_target ON crdt_dep_edges(depends_on_id);
CREATE TABLE crdt_roster (
    id TEXT PRIMARY KEY
);
CREATE TABLE crdt_members (
    id TEXT PRIMARY KEY,
    roster_id TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    added_at TEXT NOT NULL DEFAULT '',
    added_by TEXT NOT NULL DEFAULT '',
    role TEXT NOT NULL DEFAULT 'member'
);
CREATE TABLE crdt_peers (
    name TEXT PRIMARY KEY,
    addr TEXT NOT NULL,
    public_key TEXT NOT NULL,
    added_at TEXT NOT NULL
);
CREATE TABLE crdt_hub_state (
    hub TEXT PRIMARY KEY,
    pushed_through INTEGER NOT NULL DEFAULT 0,
    pull_cursor INTEGER NOT NULL DEFAULT 0,
    last_push_at TEXT,
    last_pull_at TEXT
);
CREATE TABLE crdt_quarantine (
    hub TEXT NOT NULL,
    hub_seq INTEGER NOT NULL,
    reason TEXT NOT NULL,
    body BLOB, -- SHA-256 of the refused row's body (the row itself stays on the hub)
    at TEXT NOT NULL,
    PRIMARY KEY (hub, hub_seq)
);
CREATE TABLE crdt_docs (
    doc_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    snapshot BLOB NOT NULL,
    version TEXT NOT NULL,
    merged INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE crdt_conflicts (
    id TEXT PRIMARY KEY,
    entity TEXT NOT NULL,
    field TEXT NOT NULL,
    kept TEXT NOT NULL,
    kept_op TEXT NOT NULL,
    kept_actor BLOB NOT NULL,
    kept_time INTEGER NOT NULL,
    lost TEXT NOT NULL,
    lost_op TEXT NOT NULL,
    lost_actor BLOB NOT NULL,
    lost_time INTEGER NOT NULL,
    resolved_by TEXT
);
CREATE INDEX crdt_conflicts_entity ON crdt_conflicts(entity);
CREATE TABLE crdt_conflicts_seen (
    conflict_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    PRIMARY KEY (conflict_id, session_id)
);
"#;

/// Tables whose rows come from the change log (td-compat.md's "synced entity tables"), in
/// export order.
pub const SYNCED_TABLES: [&str; 13] = [
    "issues",
    "logs",
    "handoffs",
    "comments",
    "boards",
    "board_issue_positions",
    "issue_dependencies",
    "issue_files",
    "issue_session_history",
    "work_sessions",
    "work_session_issues",
    "issue_reviews",
    "notes",
];

/// The builtin board every td database has. It is part of the schema, not of the log, so
/// every replica holds the identical row without a change to sync.
pub const BUILTIN_BOARD_SQL: &str = "INSERT OR IGNORE INTO boards \
    (id, name, last_viewed_at, created_at, updated_at, query, is_builtin, view_mode) \
    VALUES ('bd-all-issues', 'All Issues', NULL, '1970-01-01 00:00:00', \
    '1970-01-01 00:00:00', '', 1, 'swimlanes')";

/// Brings a database made by an earlier layout up to this one: creates the tables and columns
/// it lacks (idempotent; runs on every open).
pub(crate) fn upgrade(conn: &Connection) -> Result<()> {
    roster_tables(conn)?;
    hub_tables(conn)?;
    conn.execute_batch(SET_ASIDE_SQL)?;
    conn.execute_batch(ACTION_HEADS_SQL)?;
    action_after_column(conn)?;
    conn.execute_batch(READY_INDEX_SQL)?;
    conn.execute_batch(PEER_ROUNDS_SQL)?;
    conn.execute_batch(KEYRING_SQL)?;
    conn.execute_batch(NO_KEY_INDEX_SQL)?;
    Ok(())
}

/// When each peer last completed a sync round with this replica (local, never synced), for
/// `td monitor`'s status line.
const PEER_ROUNDS_SQL: &str = "CREATE TABLE IF NOT EXISTS crdt_peer_rounds (
    public_key TEXT PRIMARY KEY,
    at TEXT NOT NULL
);";

/// `td usage`, `td next` and `td ready` list open issues by priority and age and stop after
/// a few: with this index SQLite walks them in that order instead of sorting every open
/// issue (at 10k open issues, `td usage` took 2.2x a `td show` without it). td ignores it.
const READY_INDEX_SQL: &str = "CREATE INDEX IF NOT EXISTS crdt_issues_ready \
    ON issues(status, priority, created_at, id) WHERE deleted_at IS NULL;";

/// For `td undo` (local, never synced): the heads of an entity's document before each
/// recorded action, so the undo can write back exactly what the action changed.
const ACTION_HEADS_SQL: &str = "CREATE TABLE IF NOT EXISTS crdt_action_heads (
    action_id TEXT PRIMARY KEY,
    heads TEXT NOT NULL,
    after TEXT NOT NULL DEFAULT ''
);";

/// Adds `crdt_action_heads.after` (the document's heads right after the action, so `td undo`
/// takes back only what still holds the action's values) to a database made before it.
fn action_after_column(conn: &Connection) -> Result<()> {
    let has = conn
        .prepare("SELECT 1 FROM pragma_table_info('crdt_action_heads') WHERE name = 'after'")?
        .exists([])?;
    if !has {
        conn.execute_batch(
            "ALTER TABLE crdt_action_heads ADD COLUMN after TEXT NOT NULL DEFAULT ''",
        )?;
    }
    Ok(())
}

/// Creates the roster tables a database made by an earlier layout lacks (idempotent).
fn roster_tables(conn: &Connection) -> Result<()> {
    let has_role = conn
        .prepare("SELECT 1 FROM pragma_table_info('crdt_members') WHERE name = 'role'")?
        .exists([])?;
    if !has_role {
        conn.execute_batch(
            "ALTER TABLE crdt_members ADD COLUMN role TEXT NOT NULL DEFAULT 'member';",
        )?;
    }
    let had_index = conn
        .prepare("SELECT 1 FROM sqlite_master WHERE name = 'crdt_roster_ops'")?
        .exists([])?;
    conn.execute_batch(ROSTER_TABLES_SQL)?;
    if !had_index {
        index_roster_records(conn)?;
    }
    Ok(())
}

/// Fills `crdt_roster_ops` from the log (a database from before it existed, and rebuilds).
pub(crate) fn index_roster_records(conn: &Connection) -> Result<()> {
    conn.execute(
        "INSERT OR IGNORE INTO crdt_roster_ops(id) SELECT id FROM crdt_changes WHERE doc_id = 'roster'",
        [],
    )?;
    Ok(())
}

/// The resolved roster's removals, and the log positions of roster records (written only with
/// a roster record, so ordinary inserts pay nothing: a partial index on `crdt_changes` cost
/// every insert about 15% in the bulk sync benchmark).
pub(crate) const ROSTER_TABLES_SQL: &str = "
CREATE TABLE IF NOT EXISTS crdt_removed (
    id TEXT PRIMARY KEY,
    removed_by TEXT NOT NULL,
    cutoff TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS crdt_roster_ops (
    id INTEGER PRIMARY KEY
);
DROP INDEX IF EXISTS crdt_changes_roster;
";

/// Creates the hub tables a database made by an earlier layout lacks (idempotent).
fn hub_tables(conn: &Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS crdt_hub_waiting (
            hub TEXT NOT NULL,
            actor BLOB NOT NULL,
            since TEXT NOT NULL,
            tried TEXT NOT NULL,
            PRIMARY KEY (hub, actor)
        );",
    )?;
    // What this replica last saw of the hub below its cursor, and the last time the hub
    // was found to have lost or renumbered rows (`Store::hub_audit`).
    for (col, ty) in [
        ("seen_below", "INTEGER"),
        ("seen_hash", "BLOB"),
        ("anomaly", "TEXT"),
        ("anomaly_at", "TEXT"),
    ] {
        let has = conn
            .prepare("SELECT 1 FROM pragma_table_info('crdt_hub_state') WHERE name = ?1")?
            .exists([col])?;
        if !has {
            conn.execute_batch(&format!("ALTER TABLE crdt_hub_state ADD COLUMN {col} {ty}"))?;
        }
    }
    Ok(())
}

/// Records of this machine moved out of the log by fork recovery (kept for inspection).
const SET_ASIDE_SQL: &str = "CREATE TABLE IF NOT EXISTS crdt_set_aside (
    hash BLOB PRIMARY KEY,
    body BLOB NOT NULL,
    signature BLOB NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL
);";

/// The keyring's local tables (`keyring.rs`): the resolved key operations and every machine a
/// removal in the log names, standing or not (both rebuilt from the log on every roster change),
/// and the epoch keys this machine holds (its own secrets: kept across rebuilds), with the
/// epochs whose held key came from an invite code that did not sign it (`crdt_unconfirmed_keys`:
/// read with, never written with nor passed on, until a key sealed to this machine confirms it).
const KEYRING_SQL: &str = "
CREATE TABLE IF NOT EXISTS crdt_epochs (
    id TEXT PRIMARY KEY,
    idx INTEGER NOT NULL,
    author TEXT NOT NULL,
    removed TEXT NOT NULL,
    head INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS crdt_seals (
    epoch TEXT NOT NULL,
    member TEXT NOT NULL,
    sealed TEXT NOT NULL,
    PRIMARY KEY (epoch, member, sealed)
);
CREATE TABLE IF NOT EXISTS crdt_epoch_keys (
    epoch TEXT PRIMARY KEY,
    key BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS crdt_unconfirmed_keys (
    epoch TEXT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS crdt_removals_named (
    key TEXT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS crdt_epoch_exposure (
    epoch TEXT PRIMARY KEY,
    until INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS crdt_bad_seals (
    epoch TEXT NOT NULL,
    sealer TEXT NOT NULL,
    PRIMARY KEY (epoch, sealer)
);
CREATE TABLE IF NOT EXISTS crdt_refuse_pending (
    epoch TEXT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS crdt_cascade_due (
    issue_id TEXT PRIMARY KEY
);";

/// Records held for a key (`store::NO_KEY`, 5), by writer: few rows, so every check for a
/// writer's held records (once per writer and batch) and every look for what a new key opens
/// stays an index lookup however long the log is.
const NO_KEY_INDEX_SQL: &str =
    "CREATE INDEX IF NOT EXISTS crdt_changes_no_key ON crdt_changes(actor) WHERE applied = 5;";
