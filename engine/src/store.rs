//! The store: one project's SQLite database holding td's tables and the change log. Every
//! mutation goes through [`Store::write`], which runs one IMMEDIATE transaction: read, check,
//! make Automerge changes, sign and append them, re-materialize, commit.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use automerge::{ActorId, AutoCommit};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use crate::doc;
use crate::error::{EngineError, Result};
use crate::identity::{random_bytes, MachineIdentity};
use crate::materialize::{self, Columns};
use crate::model::{now_timestamp, Kind};
use crate::record::{actor_for, RecordBody, SignedRecord, RECORD_FORMAT};
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

/// Where a project's database lives under its root.
pub fn db_path(root: &Path) -> PathBuf {
    root.join(".todos").join("issues.db")
}

/// An open project database plus the identity that signs this process's changes.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    identity: MachineIdentity,
    columns: Columns,
    pinned: Option<[u8; 32]>,
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
                    "{} was created by td without a change log; import it with \
                     'td init --migrate-from {}' in a new project",
                    path.display(),
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
        crate::roster::ensure_tables(&conn)?;
        crate::hub::ensure_tables(&conn)?;
        conn.execute_batch(SET_ASIDE_SQL)?;
        Ok(Store {
            conn,
            path,
            identity,
            columns: Columns::default(),
            pinned: None,
        })
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

    /// The identity signing this store's changes.
    pub fn identity(&self) -> &MachineIdentity {
        &self.identity
    }

    /// The project this database belongs to.
    pub fn project_id(&self) -> Result<String> {
        meta(&self.conn, "project_id")?
            .ok_or_else(|| EngineError::Database("project id missing".into()))
    }

    /// Runs `f` in one IMMEDIATE transaction attributed to `session`. Every change `f` makes is
    /// signed, logged and materialized before the commit; if `f` fails, nothing is written.
    pub fn write<T>(
        &mut self,
        session: &str,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T>,
    ) -> Result<T> {
        self.recover_own_forks()?;
        self.write_now(session, f)
    }

    fn write_now<T>(
        &mut self,
        session: &str,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T>,
    ) -> Result<T> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        self.columns.set_clashes(None); // another process may have synced since
        self.columns.forget_pending_refs();
        let project = meta(&tx, "project_id")?.unwrap_or_default();
        let writer = writer_id(&tx, &self.path, &self.identity)?;
        let actor = actor_for(&writer, session);
        let mut t = Tx {
            tx: &tx,
            identity: &self.identity,
            columns: &mut self.columns,
            project,
            session: session.to_string(),
            actor,
            writer,
            docs: HashMap::new(),
            changes: 0,
            founder_checked: false,
            unsigned: HashMap::new(),
            message: None,
            roster_dirty: false,
        };
        let out = f(&mut t)?;
        if t.roster_dirty {
            let changed = crate::roster::refresh(t.tx)?;
            crate::sync::apply::settle_standing(
                t.tx,
                t.columns,
                Some(&changed),
                &self.identity.public_key(),
            )?;
        }
        materialize::settle_dependencies(t.tx, t.columns)?;
        t.sign_runs()?;
        let wrote = t.changes > 0;
        let writer = t.writer.clone();
        drop(t);
        let commits = if wrote {
            let n = writer_commits(&tx)? + 1;
            set_meta(&tx, "writer_commits", &n.to_string())?;
            Some(n)
        } else {
            None
        };
        tx.commit()?;
        if let Some(n) = commits {
            write_ledger(&self.path, &writer, n);
        }
        Ok(out)
    }

    /// Recovers from forks of this machine's own actors ([`note_own_fork`]): their records from
    /// the fork on are moved to `crdt_set_aside` (kept, never sent again), the tables are
    /// rebuilt without them, and what they changed (field by field, against the state without
    /// them) is written again under a fresh writer, so the work reaches everyone and the
    /// records this machine published before apply here. Returns the entities re-issued.
    pub fn recover_own_forks(&mut self) -> Result<usize> {
        let forks: Vec<(String, String)> = self
            .conn
            .prepare("SELECT key, value FROM crdt_meta WHERE key LIKE 'own_fork:%'")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<std::result::Result<_, _>>()?;
        if forks.is_empty() {
            return Ok(0);
        }
        let local = self.identity.public_key();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Per entity: the session of its first moved record, for attribution.
        let mut touched: BTreeMap<String, String> = BTreeMap::new();
        for (key, from) in &forks {
            let actor = hex::decode(key.trim_start_matches("own_fork:")).unwrap_or_default();
            let from: i64 = from.parse().unwrap_or(1).max(1);
            let rows: Vec<(i64, String, String)> = tx
                .prepare("SELECT id, doc_id, session_id FROM crdt_changes WHERE actor = ?1 AND seq >= ?2 AND author = ?3 ORDER BY seq")?
                .query_map(params![&actor, from, &local[..]], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<std::result::Result<_, _>>()?;
            for (id, doc, session) in rows {
                tx.execute(
                    "INSERT OR IGNORE INTO crdt_set_aside(hash, body, signature, reason, at) \
                     SELECT hash, body, signature, 'this machine published another record at this position before its database was restored', ?2 FROM crdt_changes WHERE id = ?1",
                    params![id, now_timestamp()],
                )?;
                tx.execute("DELETE FROM crdt_roster_ops WHERE id = ?1", [id])?;
                tx.execute("DELETE FROM crdt_changes WHERE id = ?1", [id])?;
                touched.entry(doc).or_insert(session);
            }
            let head: Option<Vec<u8>> = tx
                .query_row(
                    "SELECT hash FROM crdt_changes WHERE actor = ?1 AND seq = ?2",
                    params![&actor, from - 1],
                    |r| r.get(0),
                )
                .optional()?;
            match head {
                Some(h) => tx.execute(
                    "UPDATE crdt_actors SET max_seq = ?2, last_hash = ?3 WHERE actor = ?1",
                    params![&actor, from - 1, h],
                )?,
                None => tx.execute("DELETE FROM crdt_actors WHERE actor = ?1", [&actor])?,
            };
            tx.execute("DELETE FROM crdt_meta WHERE key = ?1", [key])?;
        }
        let state = |conn: &Connection, id: &str| -> Result<Option<BTreeMap<String, doc::Field>>> {
            Ok(load_doc(conn, id)?.map(|d| doc::flatten(&d, &automerge::ROOT)))
        };
        let mut with = BTreeMap::new();
        for id in touched.keys() {
            with.insert(id.clone(), state(&tx, id)?);
        }
        rebuild_tables(&tx, &local)?;
        let mut again: Vec<Reissue> = Vec::new();
        for (id, session) in &touched {
            if Kind::of_id(id).is_none_or(|k| k == Kind::Roster) {
                continue; // roster operations are not re-issued (docs/storage.md)
            }
            let (Some(now), base) = (with.remove(id).flatten(), state(&tx, id)?) else {
                continue;
            };
            let base = base.unwrap_or_default();
            let mut changed: BTreeMap<String, doc::Field> = now
                .iter()
                .filter(|(k, v)| base.get(*k) != Some(*v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for k in base.keys().filter(|k| !now.contains_key(*k)) {
                changed.insert(k.clone(), doc::Field::Null);
            }
            if !changed.is_empty() {
                let wf: BTreeMap<String, doc::Field> = now
                    .iter()
                    .filter(|(k, _)| doc::WF_KEYS.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                changed.retain(|k, _| !doc::WF_KEYS.contains(&k.as_str()));
                let wf = wf.iter().any(|(k, v)| base.get(k) != Some(v)).then_some(wf);
                again.push((id.clone(), session.clone(), changed, wf));
            }
        }
        tx.commit()?;
        let n = again.len();
        for (id, session, fields, wf) in again {
            self.write_now(&session, |t| {
                if session.starts_with("imported:") {
                    t.act_as(&session);
                }
                t.change(&id, |d| {
                    reissue(d, fields)?;
                    match wf {
                        Some(wf) => doc::put_workflow(d, &wf),
                        None => Ok(()),
                    }
                })
            })?;
        }
        Ok(n)
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

    /// How far the change log goes: the id of its newest record (0 when empty). It grows with
    /// every local or received change, so a watcher can tell when there is something to sync.
    pub fn log_position(&self) -> Result<u64> {
        let n: Option<i64> = self
            .conn
            .query_row("SELECT max(id) FROM crdt_changes", [], |r| r.get(0))?;
        Ok(n.unwrap_or(0) as u64)
    }

    /// Drops every synced td table and recomputes it (and the document cache) from the log.
    /// Returns the number of changes replayed.
    pub fn rebuild(&mut self) -> Result<usize> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = rebuild_tables(&tx, &self.identity.public_key())?;
        tx.commit()?;
        Ok(n)
    }
}

/// Drops every synced td table and recomputes it, with the document cache, from the log, in
/// the caller's transaction: first the roster (and so which records are accepted), then every
/// entity from its accepted records. Returns the number of records replayed.
pub(crate) fn rebuild_tables(tx: &Connection, local: &[u8; 32]) -> Result<usize> {
    tx.pragma_update(None, "defer_foreign_keys", "ON")?;
    // Recreate each table from its own stored definition, so the layout is unchanged.
    for table in schema::SYNCED_TABLES {
        let ddl: Vec<String> = tx
                .prepare("SELECT sql FROM sqlite_master WHERE tbl_name = ?1 AND sql IS NOT NULL ORDER BY type = 'index', rowid")?
                .query_map([table], |r| r.get(0))?
                .collect::<std::result::Result<_, _>>()?;
        tx.execute_batch(&format!("DROP TABLE {table}"))?;
        for stmt in ddl {
            tx.execute_batch(&stmt)?;
        }
    }
    tx.execute(schema::BUILTIN_BOARD_SQL, [])?;
    tx.execute("DELETE FROM crdt_docs", [])?;
    tx.execute("DELETE FROM crdt_pending_refs", [])?;
    tx.execute("DELETE FROM crdt_conflicts", [])?;
    tx.execute("DELETE FROM crdt_dep_edges", [])?;
    // The roster first: it decides which records are accepted.
    crate::roster::refresh(tx)?;
    crate::roster::reauthorize(tx, None, local)?;
    let mut columns = Columns::default();
    let mut stmt = tx.prepare(
        "SELECT doc_id, body, signature FROM crdt_changes WHERE applied != 2 ORDER BY doc_id, id",
    )?;
    let mut rows = stmt.query([])?;
    let mut current: Option<(String, Vec<automerge::Change>)> = None;
    let mut docs: Vec<(String, Vec<automerge::Change>)> = Vec::new();
    let mut n = 0usize;
    while let Some(r) = rows.next()? {
        let doc_id: String = r.get(0)?;
        let body: Vec<u8> = r.get(1)?;
        let rec: RecordBody = postcard::from_bytes(&body)
            .map_err(|e| EngineError::CorruptLog(format!("record of {doc_id}: {e}")))?;
        let change = automerge::Change::from_bytes(rec.change)
            .map_err(|e| EngineError::CorruptLog(format!("change of {doc_id}: {e}")))?;
        n += 1;
        match &mut current {
            Some((id, v)) if *id == doc_id => v.push(change),
            _ => {
                if let Some(done) = current.take() {
                    docs.push(done);
                }
                current = Some((doc_id, vec![change]));
            }
        }
    }
    drop(rows);
    drop(stmt);
    docs.extend(current);
    // Id clashes first (documents with several root changes), so that references to a
    // clashed id resolve while the referring entities are materialized.
    tx.execute("DELETE FROM crdt_lineages", [])?;
    let mut units: Vec<(String, String, Kind, Vec<automerge::Change>)> = Vec::new();
    for (id, changes) in docs {
        let Some(kind) = Kind::of_id(&id) else {
            continue;
        };
        if kind == Kind::Roster {
            // Only carries roster operations (resolved above); never split or materialized.
            let mut d = AutoCommit::new();
            apply_tolerantly(&mut d, changes);
            save_doc(tx, &id, kind, &mut d, false)?;
            continue;
        }
        let mut roots: Vec<&automerge::Change> =
            changes.iter().filter(|c| c.deps().is_empty()).collect();
        roots.sort_by_key(|c| c.hash());
        roots.dedup_by_key(|c| c.hash());
        if roots.len() < 2 {
            units.push((id.clone(), id, kind, changes));
            continue;
        }
        let described = roots
            .iter()
            .enumerate()
            .map(|(rank, c)| {
                let storage = if rank == 0 {
                    id.clone()
                } else {
                    crate::lineage::extra_storage(&id, &c.hash().0)
                };
                crate::lineage::Root::of(tx, c, storage)
            })
            .collect::<Result<Vec<_>>>()?;
        let lineages = crate::lineage::register(tx, &id, &described)?;
        columns.set_clashes(Some(true));
        let hashes: Vec<Vec<u8>> = lineages.iter().map(|l| l.root.clone()).collect();
        let mut fresh: Vec<AutoCommit> = lineages.iter().map(|_| AutoCommit::new()).collect();
        let tagged = changes.into_iter().map(|c| ((), c)).collect();
        let (groups, _unplaced) = crate::lineage::route(&mut fresh, &hashes, tagged);
        for (l, group) in lineages.into_iter().zip(groups) {
            let group = group.into_iter().map(|(_, c)| c).collect();
            units.push((l.entity, l.storage, kind, group));
        }
    }
    // Parents before children so foreign keys hold row by row as well as at commit.
    units.sort_by(|a, b| (a.2, &a.0).cmp(&(b.2, &b.0)));
    for (entity, storage, kind, changes) in units {
        let mut d = AutoCommit::new();
        let merged_now = changes.iter().any(|c| c.deps().len() > 1);
        if let Err(e) = d.apply_changes(changes) {
            if storage != entity {
                return Err(e.into());
            }
            // A change its document refuses: decided record by record (sync::apply).
            crate::sync::apply::apply_doc_strictly(tx, &mut columns, &entity, kind)?;
            continue;
        }
        let merged = save_doc(tx, &storage, kind, &mut d, merged_now)?;
        materialize_entity(tx, &mut columns, &entity, kind, &mut d, merged)?;
    }
    materialize::settle_dependencies(tx, &mut columns)?;
    Ok(n)
}

/// Records of this machine moved out of the log by fork recovery (kept for inspection).
const SET_ASIDE_SQL: &str = "CREATE TABLE IF NOT EXISTS crdt_set_aside (
    hash BLOB PRIMARY KEY,
    body BLOB NOT NULL,
    signature BLOB NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL
);";

/// What fork recovery writes again for one entity: its id, the session of the moved records,
/// the fields they changed and, when they changed it, the whole workflow map.
type Reissue = (
    String,
    String,
    BTreeMap<String, doc::Field>,
    Option<BTreeMap<String, doc::Field>>,
);

/// Writes `fields` (as `doc::flatten` reads them, workflow keys excluded) into `d`: labels as
/// a set, texts as texts, everything else as values.
fn reissue(d: &mut AutoCommit, fields: BTreeMap<String, doc::Field>) -> Result<()> {
    for (k, v) in fields {
        match (k.as_str(), v) {
            ("labels", doc::Field::Str(s)) => {
                let labels: Vec<String> = s
                    .split(',')
                    .filter(|l| !l.is_empty())
                    .map(String::from)
                    .collect();
                doc::put_labels(d, &labels)?;
            }
            (k, doc::Field::Str(s)) if doc::TEXT_FIELDS.contains(&k) => doc::put_text(d, k, &s)?,
            (k, v) => doc::put(d, &automerge::ROOT, k, Some(v))?,
        }
    }
    Ok(())
}

/// Applies changes to a document that only carries them (the roster's operations are resolved
/// from the log, not from the document): a change the document refuses is skipped, never an
/// error that would stop the batch.
pub(crate) fn apply_tolerantly(doc: &mut AutoCommit, changes: Vec<automerge::Change>) {
    let mut d = doc.clone();
    if d.apply_changes(changes.clone()).is_ok() {
        *doc = d;
        return;
    }
    for c in changes {
        let _ = doc.apply_changes([c]);
    }
}

/// One write transaction in progress. Obtained from [`Store::write`].
pub struct Tx<'a> {
    tx: &'a rusqlite::Transaction<'a>,
    identity: &'a MachineIdentity,
    columns: &'a mut Columns,
    project: String,
    session: String,
    actor: [u8; crate::record::ACTOR_LEN],
    writer: String,
    docs: HashMap<String, AutoCommit>,
    changes: usize,
    founder_checked: bool,
    /// Per actor, its newest record (log row, hash) still unsigned, and the records and bytes
    /// written since its last signature: each actor's run of records in this transaction gets
    /// one signature, on its last record, at commit, or sooner once the run reaches
    /// [`SIGNED_RUN_RECORDS`] / [`SIGNED_RUN_BYTES`].
    unsigned: HashMap<[u8; crate::record::ACTOR_LEN], (i64, [u8; 32], usize, usize)>,
    /// The commit message of the next change (a roster operation).
    message: Option<String>,
    /// A roster operation was written: the roster is resolved again before commit.
    roster_dirty: bool,
}

impl<'a> Tx<'a> {
    /// Signs the last record of each actor's run written in this transaction; the hash chain
    /// ties the run's earlier records to that one signature, as on the wire.
    fn sign_runs(&mut self) -> Result<()> {
        for (row, hash, _, _) in std::mem::take(&mut self.unsigned).into_values() {
            self.tx
                .prepare_cached("UPDATE crdt_changes SET signature = ?1 WHERE id = ?2")?
                .execute(params![&self.identity.sign(&hash)[..], row])?;
        }
        Ok(())
    }

    /// The connection inside the transaction, for reads and local-only writes.
    pub fn conn(&self) -> &Connection {
        self.tx
    }

    /// The session this transaction's changes are attributed to.
    pub fn session(&self) -> &str {
        &self.session
    }

    /// Attributes the following changes to another session (importing another tool's history
    /// keeps its authors); the actor follows, so sequence numbers stay per writer.
    pub fn act_as(&mut self, session: &str) {
        // A record's session may name only the machine that signs it: a session of another
        // machine (an imported history) is kept as `imported:<session>`.
        let names_other = crate::identity::session_machine(session)
            .is_some_and(|m| m != self.identity.fingerprint());
        self.session = if names_other {
            format!("imported:{session}")
        } else {
            session.to_string()
        };
        self.actor = actor_for(&self.writer, &self.session);
    }

    /// Number of changes made so far in this transaction.
    pub fn change_count(&self) -> usize {
        self.changes
    }

    /// Loads an entity's document (from the cache table), or `None` if it has none.
    pub fn doc(&mut self, id: &str) -> Result<Option<&mut AutoCommit>> {
        let storage = self.locate(id)?.1;
        if !self.docs.contains_key(&storage) {
            match load_doc(self.tx, &storage)? {
                Some(d) => {
                    self.docs.insert(storage.clone(), d);
                }
                None => return Ok(None),
            }
        }
        Ok(self.docs.get_mut(&storage))
    }

    /// The id an entity's records carry and the key of its stored document (they differ only
    /// for an entity renamed after an id clash).
    fn locate(&mut self, id: &str) -> Result<(String, String)> {
        if self.columns.clashes(self.tx)? {
            crate::lineage::locate(self.tx, id)
        } else {
            Ok((id.to_string(), id.to_string()))
        }
    }

    /// A fresh random id of `kind` that names no entity or document here yet.
    pub fn fresh_id(&self, kind: Kind) -> Result<String> {
        loop {
            let id = kind.new_id();
            let taken = self
                .tx
                .prepare_cached("SELECT 1 FROM crdt_docs WHERE doc_id = ?1")?
                .exists([&id])?
                || self
                    .tx
                    .prepare_cached("SELECT 1 FROM crdt_lineages WHERE doc_id = ?1 OR entity = ?1")?
                    .exists([&id])?;
            if !taken {
                return Ok(id);
            }
        }
    }

    /// The version (heads digest) of an entity's document, or `None` if it has none.
    pub fn version(&mut self, id: &str) -> Result<Option<String>> {
        Ok(self.doc(id)?.map(doc::version_of))
    }

    /// The machine that founded the project names itself in the roster with its first change
    /// (not at `td init`, so a fresh replica can still adopt a peer's project).
    pub(crate) fn ensure_founder(&mut self) -> Result<()> {
        if self.founder_checked {
            return Ok(());
        }
        self.founder_checked = true;
        if meta(self.tx, "founder")?.as_deref() == Some("1")
            && !self
                .tx
                .prepare_cached("SELECT 1 FROM crdt_docs WHERE doc_id = ?1")?
                .exists([crate::roster::ROSTER_ID])?
        {
            crate::roster::write_op(
                self,
                &crate::authority::Op::Found {
                    name: "founder".into(),
                },
            )?;
        }
        Ok(())
    }

    /// [`Tx::change`] with a commit message (a roster operation, `roster.rs`).
    pub(crate) fn change_with_message(
        &mut self,
        id: &str,
        message: String,
        f: impl FnOnce(&mut AutoCommit) -> Result<()>,
    ) -> Result<()> {
        self.message = Some(message);
        self.change(id, f)
    }

    /// Makes one Automerge change on `id`'s document (creating the document if needed), signs
    /// it, appends it to the log and re-materializes the entity's rows.
    pub fn change(
        &mut self,
        id: &str,
        f: impl FnOnce(&mut AutoCommit) -> Result<()>,
    ) -> Result<()> {
        let message = self.message.take();
        let kind = Kind::of_id(id)
            .ok_or_else(|| EngineError::InvalidInput(format!("unknown entity id '{id}'")))?;
        if kind == Kind::Roster && message.is_none() {
            return Err(EngineError::InvalidInput(
                "the roster changes only through roster operations".into(),
            ));
        }
        self.ensure_founder()?;
        // A renamed entity (an id clash) is stored under its own key; its records keep the id
        // they were created with.
        let (doc_id, storage) = self.locate(id)?;
        if self.doc(id)?.is_none() {
            self.docs.insert(storage.clone(), AutoCommit::new());
        }
        let actor = ActorId::from(&self.actor[..]);
        let clashes = self.columns.clashes(self.tx)?;
        let d = self.docs.get_mut(&storage).expect("doc loaded above");
        d.set_actor(actor);
        let before = clashes.then(|| references_in(d, kind));
        f(d)?;
        if let Some(before) = before {
            pin_references(self.tx, d, kind, &before)?;
        }
        let time = chrono::Utc::now().timestamp();
        let mut options = automerge::transaction::CommitOptions::default().with_time(time);
        if let Some(m) = message {
            options = options.with_message(m);
            self.roster_dirty = true;
        }
        if d.commit_with(options).is_none() {
            return Ok(()); // nothing changed: nothing to log
        }
        let change = d
            .get_last_local_change()
            .ok_or_else(|| EngineError::CorruptLog("committed change not found".into()))?;
        // The same test the receiving and rebuilding paths apply to every change.
        let merged_now = change.deps().len() > 1;
        let (max_seq, prev): (i64, Vec<u8>) = self
            .tx
            .query_row(
                "SELECT max_seq, last_hash FROM crdt_actors WHERE actor = ?1",
                [&self.actor[..]],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .unwrap_or((0, vec![0; 32]));
        let body = RecordBody {
            format: RECORD_FORMAT,
            project: self.project.clone(),
            doc: doc_id,
            actor: self.actor,
            seq: max_seq as u64 + 1,
            prev: prev
                .try_into()
                .map_err(|_| EngineError::CorruptLog("bad actor hash".into()))?,
            session: self.session.clone(),
            author: self.identity.public_key(),
            change: change.raw_bytes().to_vec(),
        };
        if body.change.len() > crate::record::MAX_CHANGE_BYTES {
            return Err(EngineError::InvalidInput(format!(
                "this change to {id} is {} KiB, more than the {} KiB one change may carry (a text field that large cannot sync): shorten it, or keep the text in a file and link it with 'td link'",
                body.change.len() / 1024,
                crate::record::MAX_CHANGE_BYTES / 1024
            )));
        }
        let mut rec = SignedRecord::chained(body)?;
        let (_, _, mut count, mut bytes) = self
            .unsigned
            .remove(&self.actor)
            .unwrap_or((0, [0; 32], 0, 0));
        count += 1;
        bytes += rec.encoded.len();
        // Bound every run: a sender ships a run whole (it must end at a signature), so its
        // frames and memory stay within the protocol's batch limits however big this
        // transaction (an import) is.
        let sign_now = count >= SIGNED_RUN_RECORDS || bytes >= SIGNED_RUN_BYTES;
        if sign_now {
            rec.signature = self.identity.sign(&rec.hash);
        }
        let row = insert_record(self.tx, &rec, sign_now, &now_timestamp(), true)?;
        let b = &rec.body;
        set_actor_head(self.tx, &b.actor, &b.session, &b.author, b.seq, &rec.hash)?;
        if !sign_now {
            self.unsigned
                .insert(self.actor, (row, rec.hash, count, bytes));
        }
        let d = self.docs.get_mut(&storage).expect("doc loaded above");
        let merged = save_doc(self.tx, &storage, kind, d, merged_now)?;
        materialize_entity(self.tx, self.columns, id, kind, d, merged)?;
        self.changes += 1;
        // The saved snapshot is the document now; keeping every document of a large
        // transaction (an import) in memory would make memory grow with its size.
        if self.docs.len() > 64 {
            self.docs.clear();
        }
        Ok(())
    }
}

/// A document's reference fields: (child map, row, column) → value; the map and row are
/// empty for the document's own fields.
type References = std::collections::BTreeMap<(String, String, String), String>;

fn references_in(d: &AutoCommit, kind: Kind) -> References {
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

/// After a change written while some id has clashed: references this change wrote to an id
/// that clashed are pinned to the lineage they mean now (`lineage::explicit_ref`).
fn pin_references(
    conn: &Connection,
    d: &mut AutoCommit,
    kind: Kind,
    before: &References,
) -> Result<()> {
    for ((map, row, col), v) in references_in(d, kind) {
        if before.get(&(map.clone(), row.clone(), col.clone())) == Some(&v) {
            continue;
        }
        let pinned = crate::lineage::explicit_ref(conn, &v)?;
        if pinned == v {
            continue;
        }
        if map.is_empty() {
            doc::put_str(d, &col, &pinned)?;
        } else {
            doc::put_child_field(d, &map, &row, &col, Some(doc::Field::Str(pinned)))?;
        }
    }
    Ok(())
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

/// Stores one record. `signed` is false for a received record in the middle of a run: its
/// signature is implied by the run's last record (see docs/protocol.md), so none is kept.
pub(crate) fn insert_record(
    conn: &Connection,
    rec: &SignedRecord,
    signed: bool,
    received_at: &str,
    accepted: bool,
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
        b.doc,
        &b.actor[..],
        b.seq as i64,
        b.session,
        &b.author[..],
        rec.encoded,
        signature,
        received_at,
        if accepted { 1 } else { 2 }
    ])?;
    let row = conn.last_insert_rowid();
    if b.doc == crate::roster::ROSTER_ID {
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
         ON CONFLICT(actor) DO UPDATE SET max_seq = excluded.max_seq, last_hash = excluded.last_hash",
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
fn writer_id(conn: &Connection, path: &Path, identity: &MachineIdentity) -> Result<String> {
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
fn writer_commits(conn: &Connection) -> Result<u64> {
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
    // A ledger is one short line; anything larger is not one (bounded read).
    let text = std::fs::read_to_string(writer_ledger(path)).ok()?;
    if text.len() > 256 {
        return None;
    }
    let (w, n) = text.trim().split_once(' ')?;
    Some((w.to_string(), n.parse().ok()?))
}

/// Records that `writer` has committed `commits` transactions (temporary file, then rename).
/// Concurrent writers may store an older count; that only makes the check more lenient, never
/// wrong, since every count written was committed.
fn write_ledger(path: &Path, writer: &str, commits: u64) {
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
