//! The store: one project's SQLite database holding td's tables and the change log. Every
//! mutation goes through [`Store::write`], which runs one IMMEDIATE transaction: read, check,
//! make Automerge changes, sign and append them, re-materialize, commit.

use std::path::{Path, PathBuf};
use std::time::Duration;

use automerge::AutoCommit;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use crate::doc;
use crate::error::{EngineError, Result};
use crate::identity::{random_bytes, MachineIdentity};
use crate::materialize::{self, Columns};
use crate::model::{now_timestamp, Kind};
use crate::record::SignedRecord;
use crate::schema;

/// How long a command waits for another process's write transaction before giving up. Long
/// on purpose: td commands are short, and failing a user's write because another agent was
/// writing at the same moment is worse than waiting.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// Most records a local run may hold before one of them is signed. Every replica keeps every
/// signature it receives, so no replica holds an unsigned stretch longer than this: a hub page
/// (`hub::PULL_ROWS`) or a read-ahead always reaches a signed record. A signature costs about
/// 20 µs to make and 40 µs to check, so one per 256 records is noise.
pub const SIGNED_RUN_RECORDS: usize = 256;

/// Most encoded bytes a local run may hold before one of its records is signed (a quarter of a
/// wire batch).
pub const SIGNED_RUN_BYTES: usize = crate::sync::wire::BATCH_BYTES / 4;

/// How stale `td monitor`'s "last round" of a peer may be (seconds): rounds are noted at most
/// this often per peer.
pub const PEER_ROUND_NOTE_SECS: i64 = 10;

/// Where a project's database lives under its root.
pub fn db_path(root: &Path) -> PathBuf {
    root.join(".todos").join("issues.db")
}

/// What the database files looked like at one moment: their sizes and modification times.
/// Any commit by any process changes it (in WAL mode a commit appends to `-wal`; a checkpoint
/// rewrites the main file), so a watcher compares stamps, a `stat` each, and only reads the
/// database when the stamp moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteStamp(Vec<Option<(u64, std::time::SystemTime)>>);

/// The [`WriteStamp`] of the database at `db` (see [`db_path`]) and its WAL.
pub fn write_stamp(db: &Path) -> WriteStamp {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    let stat = |p: &Path| {
        std::fs::metadata(p)
            .ok()
            .map(|m| (m.len(), m.modified().unwrap_or(std::time::UNIX_EPOCH)))
    };
    WriteStamp(vec![stat(db), stat(Path::new(&wal))])
}

/// An open project database plus the identity that signs this process's changes.
pub struct Store {
    pub(crate) conn: Connection,
    pub(crate) path: PathBuf,
    pub(crate) identity: MachineIdentity,
    pub(crate) columns: Columns,
    pinned: Option<[u8; 32]>,
    /// This store is the admitting side of a joiner's round ([`Store::admit_joins_by_own_clock`]).
    pub(crate) admitting: bool,
    /// The hub whose rows the batch being applied came from (set by `apply_hub_rows`): that
    /// batch moves the hub's push cursor over what it stores, atomically.
    pub(crate) applying_from_hub: Option<String>,
}

/// What `td init` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitOutcome {
    /// A new database was created.
    Created,
    /// The database was already there; nothing was changed.
    AlreadyInitialized,
}

fn open_conn(path: &Path, flags: OpenFlags) -> Result<Connection> {
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // TRUNCATE, as td uses: see docs/storage.md for why not WAL.
    conn.pragma_update(None, "journal_mode", "TRUNCATE")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // 16 MiB of page cache: bulk sync and rebuild touch many pages per transaction.
    conn.pragma_update(None, "cache_size", -16384)?;
    Ok(conn)
}

impl Store {
    /// Creates `<root>/.todos/issues.db` with td's schema and the engine tables, minting a new
    /// project id (or adopting `project` when given). Idempotent.
    pub fn init(
        root: &Path,
        identity: MachineIdentity,
        project: Option<&str>,
    ) -> Result<(Store, InitOutcome)> {
        let path = db_path(root);
        if path.exists() {
            return Ok((
                Store::open(root, identity)?,
                InitOutcome::AlreadyInitialized,
            ));
        }
        std::fs::create_dir_all(path.parent().expect("db path has a parent"))
            .map_err(|e| EngineError::Database(format!("create {}: {e}", path.display())))?;
        let tmp = path.with_extension("db.init");
        let _ = std::fs::remove_file(&tmp);
        {
            let mut conn = open_conn(&tmp, OpenFlags::default())?;
            let tx = conn.transaction()?;
            tx.execute_batch(schema::TD_SCHEMA_SQL)?;
            tx.execute_batch(schema::ENGINE_SCHEMA_SQL)?;
            tx.execute_batch(crate::lineage::SCHEMA)?;
            tx.execute(
                "INSERT INTO schema_info(key, value) VALUES ('version', ?1)",
                [schema::TD_SCHEMA_VERSION.to_string()],
            )?;
            tx.execute(schema::BUILTIN_BOARD_SQL, [])?;
            let project = project
                .map(str::to_string)
                .unwrap_or_else(|| new_project_id(&identity.public_key()));
            let meta = [
                ("layout_version", schema::ENGINE_LAYOUT_VERSION.to_string()),
                ("project_id", project),
                ("created_at", now_timestamp()),
                ("founder", "1".to_string()),
            ];
            for (k, v) in meta {
                tx.execute(
                    "INSERT INTO crdt_meta(key, value) VALUES (?1, ?2)",
                    params![k, v],
                )?;
            }
            tx.commit()?;
        }
        // Publish atomically: a crash leaves either no database or a complete one.
        std::fs::rename(&tmp, &path)
            .map_err(|e| EngineError::Database(format!("create {}: {e}", path.display())))?;
        Ok((Store::open(root, identity)?, InitOutcome::Created))
    }

    /// Opens an existing project database, checking that it is one this engine understands.
    pub fn open(root: &Path, identity: MachineIdentity) -> Result<Store> {
        let path = db_path(root);
        if !path.exists() {
            return Err(EngineError::NoDatabase);
        }
        let path = path.canonicalize().unwrap_or(path);
        let conn = open_conn(&path, OpenFlags::SQLITE_OPEN_READ_WRITE)
            .map_err(|e| EngineError::Database(format!("{}: {e}", path.display())))?;
        let version: Option<String> = conn
            .query_row(
                "SELECT value FROM schema_info WHERE key='version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| match e {
                e if e.to_string().contains("no such table") => EngineError::Database(format!(
                    "{} is not a td database (no schema_info table)",
                    path.display()
                )),
                e => EngineError::Database(format!("{}: {e}", path.display())),
            })?;
        match version.as_deref().map(str::parse::<i64>) {
            Some(Ok(v)) if v == schema::TD_SCHEMA_VERSION => {}
            Some(Ok(v)) => {
                return Err(EngineError::Database(format!(
                    "{} has td schema version {v}; this td reads version {}",
                    path.display(),
                    schema::TD_SCHEMA_VERSION
                )))
            }
            _ => {
                return Err(EngineError::Database(format!(
                    "{} is not a td database (no schema version)",
                    path.display()
                )))
            }
        }
        let layout: Option<String> = conn
            .query_row(
                "SELECT value FROM crdt_meta WHERE key='layout_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|_| {
                EngineError::Database(format!(
                    "{} was created by td without a change log: run 'td upgrade' to adopt it \
                     in place (td's database is kept beside it as a backup)",
                    path.display()
                ))
            })?;
        if layout.as_deref() != Some("1") {
            return Err(EngineError::Database(format!(
                "{} has change-log layout {:?}; this td reads layout 1",
                path.display(),
                layout
            )));
        }
        crate::lineage::ensure_table(&conn)?;
        schema::upgrade(&conn)?;
        Ok(Store {
            conn,
            path,
            identity,
            columns: Columns::default(),
            pinned: None,
            admitting: false,
            applying_from_hub: None,
        })
    }

    /// Makes this store the admitting side of a joiner's round (`td peer serve` receiving from
    /// a machine that is not a member yet, while an invite is open): a join through an invite
    /// that has expired by this machine's clock is refused before it is stored, whatever time
    /// the joiner's change claims. A joiner whose clock is set back cannot use an expired code
    /// here; the refusal names the invite and when it expired (docs/membership.md).
    pub fn admit_joins_by_own_clock(&mut self) {
        self.admitting = true;
    }

    /// Read access for queries. Reads see only committed state.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Trusts `key` for this store's sync rounds while the replica has no roster yet (the peer
    /// the user named with `td peer sync <addr> --key <key>`).
    pub fn pin_peer_key(&mut self, key: [u8; 32]) {
        self.pinned = Some(key);
    }

    /// The key pinned with [`Store::pin_peer_key`].
    pub fn pinned_peer_key(&self) -> Option<[u8; 32]> {
        self.pinned
    }

    /// Mutable access for local-only bookkeeping transactions (sessions).
    pub fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// The database file this store has open.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The identity signing this store's changes.
    pub fn identity(&self) -> &MachineIdentity {
        &self.identity
    }

    /// The project this database belongs to.
    pub fn project_id(&self) -> Result<String> {
        meta(&self.conn, "project_id")?
            .ok_or_else(|| EngineError::Database("project id missing".into()))
    }

    /// Sets how long this store waits for another process's write transaction ([`BUSY_TIMEOUT`]
    /// by default; sync rounds wait less, so a peer never times out on a silent round).
    pub fn set_busy_timeout(&self, wait: Duration) -> Result<()> {
        self.conn.busy_timeout(wait)?;
        Ok(())
    }

    /// Writes a consistent copy of the whole database to `path` (SQLite's `VACUUM INTO`).
    pub fn snapshot_to(&self, path: &Path) -> Result<()> {
        self.conn
            .execute("VACUUM INTO ?1", [path.display().to_string()])?;
        Ok(())
    }

    /// Notes that a sync round with the machine `peer` just completed (for `td monitor`).
    /// At most one write per peer every [`PEER_ROUND_NOTE_SECS`]: a kept connection runs a
    /// round per change, and a write (a commit that syncs the disk) per round would cost it
    /// more than the round itself.
    pub fn note_peer_round(&self, peer: &[u8; 32]) -> Result<()> {
        let key = hex::encode(peer);
        let last: Option<String> = self
            .conn
            .prepare_cached("SELECT at FROM crdt_peer_rounds WHERE public_key = ?1")?
            .query_row([&key], |r| r.get(0))
            .optional()?;
        let recent = last
            .as_deref()
            .and_then(crate::model::parse_timestamp)
            .is_some_and(|t| {
                (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds()
                    < PEER_ROUND_NOTE_SECS
            });
        if recent {
            return Ok(());
        }
        self.conn.execute(
            "INSERT INTO crdt_peer_rounds(public_key, at) VALUES (?1, ?2) \
             ON CONFLICT(public_key) DO UPDATE SET at = excluded.at",
            rusqlite::params![key, now_timestamp()],
        )?;
        Ok(())
    }

    /// How far the change log goes: the id of its newest record (0 when empty). It grows with
    /// every local or received change, so a watcher can tell when there is something to sync.
    pub fn log_position(&self) -> Result<u64> {
        let n: Option<i64> = self
            .conn
            .query_row("SELECT max(id) FROM crdt_changes", [], |r| r.get(0))?;
        Ok(n.unwrap_or(0) as u64)
    }
}

/// Materializes one entity and settles references: rows it could not write yet are
/// remembered in `crdt_pending_refs`, and documents that were waiting for this entity are
/// materialized again.
pub(crate) fn materialize_entity(
    conn: &Connection,
    cols: &mut Columns,
    id: &str,
    kind: Kind,
    d: &mut AutoCommit,
    merged: bool,
) -> Result<()> {
    if kind == Kind::Roster {
        return Ok(()); // resolved from its operations (`roster::refresh`), not materialized
    }
    let wf_override = if merged {
        crate::conflicts::refresh(conn, id, d)?
    } else {
        None
    };
    let clash = if cols.clashes(conn)? {
        clash_context(conn, id, kind, d)?
    } else {
        None
    };
    // Most transactions (a bulk sync included) never see a pending reference: then the
    // bookkeeping below is skipped.
    let pending = cols.pending_refs(conn)?;
    if pending {
        conn.prepare_cached("DELETE FROM crdt_pending_refs WHERE doc_id = ?1")?
            .execute([id])?;
    }
    for missing in materialize::materialize(
        conn,
        cols,
        id,
        kind,
        d,
        wf_override.as_ref(),
        clash.as_ref(),
    )? {
        conn.prepare_cached(
            "INSERT OR IGNORE INTO crdt_pending_refs(doc_id, missing_id) VALUES (?1, ?2)",
        )?
        .execute([id, &missing])?;
        cols.set_pending_refs();
    }
    if !pending {
        return Ok(()); // nothing was waiting for this entity before it materialized
    }
    let waiters: Vec<String> = conn
        .prepare_cached(
            "SELECT DISTINCT doc_id FROM crdt_pending_refs WHERE missing_id = ?1 ORDER BY doc_id",
        )?
        .query_map([id], |r| r.get(0))?
        .collect::<std::result::Result<_, _>>()?;
    for w in waiters {
        rematerialize(conn, cols, &w)?;
    }
    Ok(())
}

/// Materializes a document that received changes: a change that moved an issue to
/// `in_review` or `closed` is noted as a cascade trigger (`ops::cascades`).
pub(crate) fn materialize_received(
    conn: &Connection,
    cols: &mut Columns,
    id: &str,
    kind: Kind,
    d: &mut AutoCommit,
    merged: bool,
) -> Result<()> {
    if kind != Kind::Issue {
        return materialize_entity(conn, cols, id, kind, d, merged);
    }
    let before = issue_status(conn, id)?;
    materialize_entity(conn, cols, id, kind, d, merged)?;
    note_cascade_trigger(conn, id, before.as_deref())
}

/// The status an issue's row has now (`None`: no row), read before a received change is
/// materialized so [`note_cascade_trigger`] can tell what it changed.
pub(crate) fn issue_status(conn: &Connection, id: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT status FROM issues WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?)
}

/// Notes a received change that moved issue `id` from `before` to `in_review` or `closed`:
/// a trigger `Store::settle_cascades` looks at once the batch is in.
pub(crate) fn note_cascade_trigger(
    conn: &Connection,
    id: &str,
    before: Option<&str>,
) -> Result<()> {
    let after = issue_status(conn, id)?;
    let Some(after) = after else { return Ok(()) };
    if before == Some(after.as_str()) || (after != "closed" && after != "in_review") {
        return Ok(());
    }
    conn.prepare_cached("INSERT OR IGNORE INTO crdt_cascade_due(issue_id) VALUES (?1)")?
        .execute([id])?;
    Ok(())
}

/// Whether received triggers wait to be settled.
pub(crate) fn cascades_due(conn: &Connection) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM crdt_cascade_due LIMIT 1")?
        .exists([])?)
}

/// Removes every row materialized for `entity` (its own row, its child rows, its pending
/// references and field conflicts), before an id clash moves it to another id.
pub(crate) fn delete_entity_rows(conn: &Connection, kind: Kind, entity: &str) -> Result<()> {
    materialize::remove_rows(conn, kind, entity)?;
    conn.prepare_cached("DELETE FROM crdt_pending_refs WHERE doc_id = ?1")?
        .execute([entity])?;
    conn.prepare_cached("DELETE FROM crdt_conflicts WHERE entity = ?1 AND field != 'id'")?
        .execute([entity])?;
    Ok(())
}

/// Materializes an entity again from its stored document (an entity it waited for arrived,
/// or ids it refers to moved).
pub(crate) fn rematerialize(conn: &Connection, cols: &mut Columns, entity: &str) -> Result<()> {
    let storage = crate::lineage::storage_of(conn, entity)?;
    let (Some(kind), Some(mut d)) = (Kind::of_id(entity), load_doc(conn, &storage)?) else {
        return Ok(());
    };
    let merged: bool = conn
        .prepare_cached("SELECT merged FROM crdt_docs WHERE doc_id = ?1")?
        .query_row([&storage], |r| r.get::<_, i64>(0))
        .map(|m| m != 0)?;
    materialize_entity(conn, cols, entity, kind, &mut d, merged)
}

/// The clash context of an entity's materialization, when any id in the project has clashed
/// (`lineage.rs`); `None` on the common path.
fn clash_context(
    conn: &Connection,
    entity: &str,
    kind: Kind,
    d: &mut AutoCommit,
) -> Result<Option<materialize::ClashContext>> {
    // Who created this entity matters only when it refers to a clashed id without naming the
    // lineage; only then is its history walked to find its first change.
    let mut refers_to_clash = false;
    for v in references_in(d, kind).values() {
        if crate::lineage::split_ref(v).is_none() && !crate::lineage::of_doc(conn, v)?.is_empty() {
            refers_to_clash = true;
            break;
        }
    }
    let author = match refers_to_clash
        .then(|| d.get_changes(&[]).first().cloned())
        .flatten()
    {
        Some(c) => crate::lineage::author_of_actor(conn, c.actor_id().to_bytes())?,
        None => Vec::new(),
    };
    let (doc_id, _) = crate::lineage::locate(conn, entity)?;
    let renamed = (doc_id != entity).then(|| entity.to_string());
    if renamed.is_some() {
        let acknowledged =
            automerge::ReadDoc::get(d, automerge::ROOT, crate::lineage::ACK_KEY)?.is_some();
        crate::lineage::record_rename(conn, &doc_id, entity, acknowledged)?;
    }
    Ok(Some(materialize::ClashContext { author, renamed }))
}

/// `crdt_changes.applied`: materialized into td's tables.
pub const APPLIED: i64 = 1;
/// `crdt_changes.applied`: held (its author is not admitted here, or is past a cut-off).
pub const HELD: i64 = 2;
/// `crdt_changes.applied`: held because it is sealed under an epoch whose key this machine
/// does not hold yet; opened and applied when the key arrives. (3 is a change its document
/// set aside.)
pub const NO_KEY: i64 = 5;
/// `crdt_changes.applied`: sealed, but it does not open with its epoch's key, or what it holds
/// is not a change of its signer: kept (its writer's chain goes on), never applied.
pub const UNREADABLE: i64 = 6;

/// Appends a verified record to the log with its `applied` state, and the entity and session
/// it belongs to given apart: a sealed record carries them inside its ciphertext, and the
/// log's columns hold them once opened (empty while it cannot be opened here).
pub(crate) fn insert_record_as(
    conn: &Connection,
    rec: &SignedRecord,
    doc: &str,
    session: &str,
    signed: bool,
    received_at: &str,
    applied: i64,
) -> Result<i64> {
    let b = &rec.body;
    let signature: &[u8] = if signed { &rec.signature[..] } else { &[] };
    // A record whose author is not (or no longer) accepted is held: stored with `applied = 2`,
    // kept out of the tables, and applied if the roster admits it later.
    conn.prepare_cached(
        "INSERT INTO crdt_changes(hash, doc_id, actor, seq, session_id, author, body, signature, received_at, applied) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        &rec.hash[..],
        doc,
        &b.actor[..],
        b.seq as i64,
        session,
        &b.author[..],
        rec.encoded,
        signature,
        received_at,
        applied
    ])?;
    let row = conn.last_insert_rowid();
    if doc == crate::model::ROSTER_ID {
        conn.prepare_cached("INSERT INTO crdt_roster_ops(id) VALUES (?1)")?
            .execute([row])?;
    }
    Ok(row)
}

/// Records an actor's newest record (the summary peers compare).
pub(crate) fn set_actor_head(
    conn: &Connection,
    actor: &[u8],
    session: &str,
    author: &[u8],
    seq: u64,
    hash: &[u8; 32],
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO crdt_actors(actor, session_id, author, max_seq, last_hash) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT(actor) DO UPDATE SET max_seq = excluded.max_seq, last_hash = excluded.last_hash, \
         session_id = CASE WHEN crdt_actors.session_id = '' THEN excluded.session_id ELSE crdt_actors.session_id END",
    )?
    .execute(params![actor, session, author, seq as i64, &hash[..]])?;
    Ok(())
}

pub(crate) fn load_doc(conn: &Connection, id: &str) -> Result<Option<AutoCommit>> {
    let snap: Option<Vec<u8>> = conn
        .prepare_cached("SELECT snapshot FROM crdt_docs WHERE doc_id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    match snap {
        None => Ok(None),
        Some(bytes) => AutoCommit::load(&bytes)
            .map(Some)
            .map_err(|e| EngineError::CorruptLog(format!("document {id}: {e}"))),
    }
}

/// Saves an entity's document. `merged_now` says this change (or batch) merged concurrent
/// histories; once a document has, conflicts are derived for it on every materialization.
/// Returns whether the document has ever merged.
pub(crate) fn save_doc(
    conn: &Connection,
    id: &str,
    kind: Kind,
    d: &mut AutoCommit,
    merged_now: bool,
) -> Result<bool> {
    let snapshot = d.save();
    save_doc_as(conn, id, kind, d, merged_now, snapshot)
}

/// [`save_doc`] with the snapshot bytes given: a saved document, or (for a document made
/// entirely of changes at hand) those changes concatenated, which Automerge loads alike.
pub(crate) fn save_doc_as(
    conn: &Connection,
    id: &str,
    kind: Kind,
    d: &mut AutoCommit,
    merged_now: bool,
    snapshot: Vec<u8>,
) -> Result<bool> {
    let version = doc::version_of(d);
    let merged_now = merged_now || d.get_heads().len() > 1;
    let merged: i64 = conn
        .prepare_cached(
            "INSERT INTO crdt_docs(doc_id, kind, snapshot, version, merged) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT(doc_id) DO UPDATE SET snapshot = excluded.snapshot, version = excluded.version, \
             merged = max(merged, excluded.merged) RETURNING merged",
        )?
        .query_row(params![id, kind.name(), snapshot, version, merged_now as i64], |r| r.get(0))?;
    Ok(merged != 0)
}

/// This replica's newest record of `actor`: its sequence number and hash (0 and zeros when
/// none is held).
pub(crate) fn actor_head(conn: &Connection, actor: &[u8]) -> Result<(u64, [u8; 32])> {
    let head: Option<(i64, Vec<u8>)> = conn
        .prepare_cached("SELECT max_seq, last_hash FROM crdt_actors WHERE actor = ?1")?
        .query_row([actor], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match head {
        None => Ok((0, [0; 32])),
        Some((seq, hash)) => Ok((
            seq as u64,
            hash.try_into()
                .map_err(|_| EngineError::CorruptLog("bad actor hash".into()))?,
        )),
    }
}

/// The hash of the record `actor` holds at `seq`, if any.
pub(crate) fn stored_hash(conn: &Connection, actor: &[u8], seq: u64) -> Result<Option<[u8; 32]>> {
    let h: Option<Vec<u8>> = conn
        .prepare_cached("SELECT hash FROM crdt_changes WHERE actor = ?1 AND seq = ?2")?
        .query_row(params![actor, seq as i64], |r| r.get(0))
        .optional()?;
    h.map(|h| {
        h.try_into()
            .map_err(|_| EngineError::CorruptLog("bad stored hash".into()))
    })
    .transpose()
}

/// Reads one `crdt_meta` value.
pub(crate) fn meta(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT value FROM crdt_meta WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

pub(crate) fn set_meta(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO crdt_meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

/// The writer id of this database file on this machine. It is bound to the machine key, the
/// file's path and its inode: a database copied to another machine or to another file gets a
/// fresh writer id, so its actors never reuse the source's sequence numbers. A database
/// restored in place from a backup keeps path and inode, so the writer also keeps a ledger
/// beside the database ([`writer_ledger`]): when the ledger says this writer committed more
/// transactions than the database holds, the database is older than what this machine may
/// have published, and the writer moves to a fresh id before writing anything.
pub(crate) fn writer_id(
    conn: &Connection,
    path: &Path,
    identity: &MachineIdentity,
) -> Result<String> {
    let binding = format!(
        "{}|{}|{}",
        identity.fingerprint(),
        path.display(),
        file_inode(path)
    );
    if let (Some(id), Some(b)) = (meta(conn, "writer_id")?, meta(conn, "writer_binding")?) {
        let written = writer_commits(conn)?;
        let restored = read_ledger(path).is_some_and(|(w, n)| w == id && n > written);
        if b == binding && !restored {
            return Ok(id);
        }
    }
    let id = hex::encode(random_bytes::<16>());
    set_meta(conn, "writer_id", &id)?;
    set_meta(conn, "writer_binding", &binding)?;
    set_meta(conn, "writer_commits", "0")?;
    Ok(id)
}

/// Makes the next local write pick a fresh writer id (and so fresh actors).
pub(crate) fn retire_writer(conn: &Connection) -> Result<()> {
    set_meta(conn, "writer_binding", "retired")
}

/// Notes that this machine's own `actor` holds, from `seq` on, records that differ from ones
/// this machine published before (its database was restored from a backup, ledger and all):
/// the next write or sync moves them aside and re-issues their effect under a fresh writer
/// ([`Store::recover_own_forks`]).
pub(crate) fn note_own_fork(conn: &Connection, actor: &[u8], seq: u64) -> Result<()> {
    let key = format!("own_fork:{}", hex::encode(actor));
    let seq = meta(conn, &key)?
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(seq, |s| s.min(seq));
    set_meta(conn, &key, &seq.to_string())?;
    retire_writer(conn)
}

/// Write transactions this database's writer has committed (the ledger's counterpart).
pub(crate) fn writer_commits(conn: &Connection) -> Result<u64> {
    Ok(meta(conn, "writer_commits")?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

/// Where the writer ledger of the database at `path` lives: `issues.db.writer`, one line
/// `<writer id> <commits>`, written after each local write commits.
pub fn writer_ledger(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".writer");
    path.with_file_name(name)
}

fn read_ledger(path: &Path) -> Option<(String, u64)> {
    // A ledger is one short line; read at most a little more, and refuse anything larger.
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(writer_ledger(path))
        .ok()?
        .take(257)
        .read_to_string(&mut text)
        .ok()?;
    if text.len() > 256 {
        return None;
    }
    let (w, n) = text.trim().split_once(' ')?;
    Some((w.to_string(), n.parse().ok()?))
}

/// Records that `writer` has committed `commits` transactions (temporary file, then rename).
/// Concurrent writers may store an older count; that only makes the check more lenient, never
/// wrong, since every count written was committed.
pub(crate) fn write_ledger(path: &Path, writer: &str, commits: u64) {
    let target = writer_ledger(path);
    let tmp = target.with_extension(format!("writer.{}", std::process::id()));
    let done = std::fs::write(&tmp, format!("{writer} {commits}\n"))
        .and_then(|()| std::fs::rename(&tmp, &target));
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

#[cfg(unix)]
fn file_inode(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).map(|m| m.ino()).unwrap_or(0)
}

#[cfg(not(unix))]
fn file_inode(_path: &Path) -> u64 {
    0
}

/// A new project id, `prj_<founder>_<random>`: the founder part is the first 16 hex digits of
/// sha256 of the founding machine's public key, so a replica joining through an untrusted relay
/// (a hub) can recognise the founder's roster records without being told the key.
pub fn new_project_id(founder: &[u8; 32]) -> String {
    use sha2::{Digest, Sha256};
    let f = hex::encode(Sha256::digest(founder));
    format!("prj_{}_{}", &f[..16], hex::encode(random_bytes::<3>()))
}

/// Whether `key` is the founder named in `project` (see [`new_project_id`]).
pub fn is_founder_of(project: &str, key: &[u8; 32]) -> bool {
    use sha2::{Digest, Sha256};
    let f = hex::encode(Sha256::digest(key));
    project
        .strip_prefix("prj_")
        .and_then(|rest| rest.split('_').next())
        == Some(&f[..16])
}

/// A document's reference fields: (child map, row, column) → value; the map and row are
/// empty for the document's own fields.
pub(crate) type References = std::collections::BTreeMap<(String, String, String), String>;

pub(crate) fn references_in(d: &AutoCommit, kind: Kind) -> References {
    let mut out = References::new();
    let mut take =
        |map: &str, row: &str, fields: &std::collections::BTreeMap<String, doc::Field>| {
            for col in crate::lineage::REFERENCE_COLUMNS {
                if let Some(doc::Field::Str(v)) = fields.get(col) {
                    out.insert(
                        (map.to_string(), row.to_string(), col.to_string()),
                        v.clone(),
                    );
                }
            }
        };
    take("", "", &doc::flatten(d, &automerge::ROOT));
    for (map, _, _) in materialize::tables_of(kind).1 {
        for (row, fields) in doc::children(d, map) {
            take(map, &row, &fields);
        }
    }
    out
}
