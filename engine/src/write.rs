//! The local write path: one IMMEDIATE transaction per command ([`Store::write`]), in which
//! every change is made on its entity's Automerge document, signed, logged and materialized;
//! roster operations and what they settle; and recovery from forks of this machine's own
//! writer (docs/protocol.md, "Forks").

use std::collections::{BTreeMap, HashMap};

use automerge::{ActorId, AutoCommit};
use rusqlite::{params, Connection, TransactionBehavior};

use crate::doc;
use crate::error::{EngineError, Result};
use crate::identity::MachineIdentity;
use crate::materialize::{self, Columns};
use crate::model::{now_timestamp, Kind};
use crate::record::{actor_for, RecordBody, SignedRecord};
use crate::store::{
    actor_head, load_doc, materialize_entity, meta, references_in, save_doc, set_actor_head,
    set_meta, stored_hash, write_ledger, writer_commits, writer_id, References, Store,
    SIGNED_RUN_BYTES, SIGNED_RUN_RECORDS,
};

impl Store {
    /// Writes what keeps the keyring whole (`docs/encryption.md`): this machine's published
    /// encryption key, and the epoch keys it holds sealed to members that lack them. Nothing
    /// on a replica that has not begun a project yet (it may still adopt a peer's), and cheap
    /// when nothing is missing. Returns how many key operations were written.
    pub fn maintain_keys(&mut self, session: &str) -> Result<usize> {
        let started = self
            .conn
            .prepare_cached("SELECT 1 FROM crdt_docs WHERE doc_id = ?1")?
            .exists([crate::model::ROSTER_ID])?;
        if !started {
            return Ok(0);
        }
        let project = self.project_id()?;
        if crate::keyring::upkeep(&self.conn, &project, &self.identity)?.is_empty() {
            return Ok(0);
        }
        self.write(session, |tx| tx.key_upkeep())
    }

    /// The session this machine's own upkeep writes under (key operations after a sync round).
    pub fn upkeep_session(&self) -> String {
        format!("ses_{}_upkeep", self.identity.fingerprint())
    }

    /// Runs `f` in one IMMEDIATE transaction attributed to `session`. Every change `f` makes is
    /// signed, logged and materialized before the commit; if `f` fails, nothing is written.
    pub fn write<T>(
        &mut self,
        session: &str,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T>,
    ) -> Result<T> {
        self.recover_own_forks()?;
        self.write_now(session, true, f)
    }

    /// [`Store::write`] without an entry in the local action log (`td undo` itself).
    pub(crate) fn write_unrecorded<T>(
        &mut self,
        session: &str,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T>,
    ) -> Result<T> {
        self.recover_own_forks()?;
        self.write_now(session, false, f)
    }

    fn write_now<T>(
        &mut self,
        session: &str,
        record: bool,
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
            epoch: None,
            formats: HashMap::new(),
            acting: false,
            before: record.then(BTreeMap::new),
        };
        let out = f(&mut t)?;
        if let Some(before) = t.before.take() {
            t.record_actions(before)?;
        }
        if t.roster_dirty {
            t.settle_roster()?;
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
            match stored_hash(&tx, &actor, from as u64 - 1)? {
                Some(h) => tx.execute(
                    "UPDATE crdt_actors SET max_seq = ?2, last_hash = ?3 WHERE actor = ?1",
                    params![&actor, from - 1, &h[..]],
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
        crate::rebuild::rebuild_tables(&tx, &local)?;
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
            self.write_now(&session, false, |t| {
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
}

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
    /// The epoch this transaction seals records with, once decided (`None` inside: the
    /// project has no epoch and this writer could not make one).
    epoch: Option<Option<(crate::sealing::EpochId, crate::sealing::EpochKey)>>,
    /// Per actor, the record format of its newest record in this transaction: a run of
    /// records ends (is signed) where the format changes, as runs carry one format.
    formats: HashMap<[u8; crate::record::ACTOR_LEN], u8>,
    /// [`Tx::act_as`] named the session: every change, roster operations included, goes under
    /// it (an invite's own actor, an imported history).
    acting: bool,
    /// For the local action log (`td undo`): each issue, board or handoff changed, as it was
    /// before this write. `None` when not recorded, or once the write touched more than
    /// [`crate::undo::MAX_RECORDED`] of them (a bulk write).
    before: Option<BTreeMap<String, crate::undo::Before>>,
}

impl<'a> Tx<'a> {
    /// Keeps an entity as it was before this write's first change to it (for `td undo`).
    fn note_before(&mut self, id: &str, kind: Kind) -> Result<()> {
        let Some(before) = &self.before else {
            return Ok(());
        };
        if !crate::undo::UNDOABLE.contains(&kind) || before.contains_key(id) {
            return Ok(());
        }
        if before.len() >= crate::undo::MAX_RECORDED {
            self.before = None; // a bulk write: not an action to undo
            return Ok(());
        }
        let row = match kind {
            Kind::Issue => crate::query::find_issue(self.tx, id)?.map(|i| i.row_json()),
            _ => None,
        };
        let heads = match self.doc(id)? {
            Some(d) => d.get_heads(),
            None => Vec::new(),
        };
        if let Some(before) = &mut self.before {
            before.insert(id.to_string(), crate::undo::Before { row, heads });
        }
        Ok(())
    }

    /// Records what this write did to each entity it touched (`before` holds them as they
    /// were) in the local action log, for `td undo` (`undo.rs`).
    fn record_actions(&mut self, before: BTreeMap<String, crate::undo::Before>) -> Result<()> {
        let now = crate::model::now_timestamp();
        let session = self.session.clone();
        let mut order: Vec<(String, crate::undo::Before)> = before.into_iter().collect();
        order.sort_by_key(|(id, _)| crate::undo::record_rank(id));
        for (n, (id, was)) in order.into_iter().enumerate() {
            let Some(kind) = Kind::of_id(&id) else {
                continue;
            };
            let after_row = if kind == Kind::Issue {
                match crate::query::find_issue(self.tx, &id)? {
                    Some(i) => i.row_json(),
                    None => continue,
                }
            } else {
                serde_json::Value::Null
            };
            let Some(d) = self.doc(&id)? else { continue };
            if d.get_heads() == was.heads {
                continue;
            }
            let old = if was.heads.is_empty() {
                None
            } else {
                Some(d.fork_at(&was.heads)?)
            };
            let d = self.doc(&id)?.expect("loaded above");
            let after_heads = d.get_heads();
            let Some(mut action) =
                crate::undo::describe(&id, kind, was, old.as_ref(), d, &after_row)
            else {
                continue;
            };
            action.after = after_heads;
            crate::undo::insert_action(self.tx, &session, &now, n, &action)?;
        }
        Ok(())
    }

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
        self.acting = true;
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
            write_op(
                self,
                &crate::authority::Op::Found {
                    name: "founder".into(),
                },
            )?;
            // The project's first epoch comes with its founding, so every member admitted
            // later is sealed its key at once (docs/encryption.md).
            self.rotate_epoch()?;
        }
        Ok(())
    }

    /// The epoch this transaction seals with: the current one, or a new one this writer makes
    /// first when it cannot use the current (`keyring::writer_epoch`).
    fn sealing_epoch(
        &mut self,
    ) -> Result<Option<(crate::sealing::EpochId, crate::sealing::EpochKey)>> {
        if let Some(e) = self.epoch {
            return Ok(e);
        }
        let e = match crate::keyring::writer_epoch(self.tx)? {
            crate::keyring::WriterEpoch::Seal(id, key) => Some((id, key)),
            crate::keyring::WriterEpoch::Plaintext | crate::keyring::WriterEpoch::Rotate => {
                Some(self.rotate_epoch()?)
            }
        };
        self.epoch = Some(e);
        Ok(e)
    }

    /// Starts a new epoch (`td member rotate-key`, a removal, or a writer that cannot use the
    /// current one): a fresh key sealed to every admitted member with a published key,
    /// excluding every removed machine. Later records of this transaction use it.
    pub(crate) fn rotate_epoch(
        &mut self,
    ) -> Result<(crate::sealing::EpochId, crate::sealing::EpochKey)> {
        let (op, id, key) = crate::keyring::new_epoch_op(self.tx, &self.project, self.identity)?;
        crate::keyring::store_key(self.tx, &id, &key)?;
        write_op(self, &op)?;
        self.epoch = Some(Some((id, key)));
        Ok((id, key))
    }

    /// Resolves the roster and the keyring again from the log (after roster operations this
    /// transaction wrote), decides again the records of every machine whose standing changed,
    /// and opens records held for a key that is now held.
    pub(crate) fn settle_roster(&mut self) -> Result<()> {
        let changed = crate::roster::refresh(self.tx)?;
        let opened = crate::keyring::refresh(self.tx, self.identity)?;
        let local = self.identity.public_key();
        crate::sync::apply::settle_standing(self.tx, self.columns, Some(&changed), &local)?;
        if opened {
            crate::sync::apply::open_held(self.tx, self.columns, &local)?;
        }
        Ok(())
    }

    /// After a removal or a role drop written in this transaction: the roster settled, then
    /// a new epoch that excludes the removed machine, so what is written from now on is
    /// sealed where it cannot read (docs/encryption.md).
    pub(crate) fn rotate_after_roster_change(
        &mut self,
    ) -> Result<(crate::sealing::EpochId, crate::sealing::EpochKey)> {
        self.settle_roster()?;
        self.epoch = None;
        self.rotate_epoch()
    }

    /// Writes what keeps the keyring whole (`keyring::upkeep`): seals of the epochs this
    /// machine holds to members that lack them. Returns how many.
    pub(crate) fn key_upkeep(&mut self) -> Result<usize> {
        let ops = crate::keyring::upkeep(self.tx, &self.project, self.identity)?;
        for op in &ops {
            write_op(self, op)?;
        }
        Ok(ops.len())
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
        self.note_before(id, kind)?;
        // A renamed entity (an id clash) is stored under its own key; its records keep the id
        // they were created with.
        let (doc_id, storage) = self.locate(id)?;
        if self.doc(id)?.is_none() {
            self.docs.insert(storage.clone(), AutoCommit::new());
        }
        // Roster and key operations go under the machine's own roster session, so the roster
        // (readable by anyone who holds the log, a hub operator included) names no working
        // session, and its plaintext records form their own runs.
        let (actor_bytes, session) = if kind == Kind::Roster && !self.acting {
            let s = format!("ses_{}_roster", self.identity.fingerprint());
            (actor_for(&self.writer, &s), s)
        } else {
            (self.actor, self.session.clone())
        };
        let actor = ActorId::from(&actor_bytes[..]);
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
        let raw = change.raw_bytes().to_vec();
        if raw.len() > crate::record::MAX_CHANGE_BYTES {
            return Err(EngineError::InvalidInput(format!(
                "this change to {id} is {} KiB, more than the {} KiB one change may carry (a text field that large cannot sync): shorten it, or keep the text in a file and link it with 'td link'",
                raw.len() / 1024,
                crate::record::MAX_CHANGE_BYTES / 1024
            )));
        }
        // Every record but the roster's is sealed under the current epoch
        // (docs/encryption.md); the roster stays readable, as it carries the keys.
        let sealed_with = if kind == Kind::Roster {
            None
        } else {
            self.sealing_epoch()?
        };
        let (max_seq, prev) = actor_head(self.tx, &actor_bytes)?;
        let seq = max_seq + 1;
        let body = match sealed_with {
            None => RecordBody {
                format: crate::record::PLAIN_FORMAT,
                project: self.project.clone(),
                doc: doc_id.clone(),
                actor: actor_bytes,
                seq,
                prev,
                session: session.clone(),
                author: self.identity.public_key(),
                change: raw,
            },
            Some((epoch, key)) => {
                let inner = crate::record::Inner {
                    doc: doc_id.clone(),
                    session: session.clone(),
                    change: raw,
                };
                let plain = postcard::to_stdvec(&inner)
                    .map_err(|e| EngineError::CorruptLog(format!("encode record: {e}")))?;
                RecordBody {
                    format: crate::record::SEALED_FORMAT,
                    project: self.project.clone(),
                    doc: String::new(),
                    actor: actor_bytes,
                    seq,
                    prev,
                    session: String::new(),
                    author: self.identity.public_key(),
                    change: crate::sealing::seal_record(
                        &epoch,
                        &key,
                        &self.project,
                        &actor_bytes,
                        seq,
                        &plain,
                    ),
                }
            }
        };
        // A run carries one format: the actor's run so far ends (is signed) here when the
        // format changes.
        if self
            .formats
            .insert(actor_bytes, body.format)
            .is_some_and(|f| f != body.format)
        {
            if let Some((row, hash, _, _)) = self.unsigned.remove(&actor_bytes) {
                self.tx
                    .prepare_cached("UPDATE crdt_changes SET signature = ?1 WHERE id = ?2")?
                    .execute(params![&self.identity.sign(&hash)[..], row])?;
            }
        }
        let mut rec = SignedRecord::chained(body)?;
        let (_, _, mut count, mut bytes) = self
            .unsigned
            .remove(&actor_bytes)
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
        let row = crate::store::insert_record_as(
            self.tx,
            &rec,
            &doc_id,
            &session,
            sign_now,
            &now_timestamp(),
            crate::store::APPLIED,
        )?;
        let b = &rec.body;
        set_actor_head(self.tx, &b.actor, &session, &b.author, b.seq, &rec.hash)?;
        if !sign_now {
            self.unsigned
                .insert(actor_bytes, (row, rec.hash, count, bytes));
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

/// Writes one roster operation as a change on the roster document.
pub(crate) fn write_op(tx: &mut Tx<'_>, op: &crate::authority::Op) -> Result<()> {
    let message = serde_json::to_string(op).map_err(|e| crate::error::invalid(e.to_string()))?;
    let stamp = hex::encode(crate::identity::random_bytes::<8>());
    tx.change_with_message(crate::model::ROSTER_ID, message, |d| {
        doc::put_str(d, "last_op", &stamp)
    })
}
