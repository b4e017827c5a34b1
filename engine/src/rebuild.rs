//! Rebuilding td's tables from the change log: the roster first (it decides which records are
//! accepted), then every entity from its accepted records.

use std::collections::BTreeMap;

use automerge::{AutoCommit, Change};
use rusqlite::{params, Connection, TransactionBehavior};

use crate::error::{EngineError, Result};
use crate::materialize::{self, Columns};
use crate::model::Kind;
use crate::schema;
use crate::store::{materialize_entity, save_doc, Store};

impl Store {
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
        "SELECT doc_id, body, signature FROM crdt_changes WHERE applied IN (0, 1, 3) ORDER BY doc_id, id",
    )?;
    let mut rows = stmt.query([])?;
    let mut current: Option<(String, Vec<automerge::Change>)> = None;
    let mut docs: Vec<(String, Vec<automerge::Change>)> = Vec::new();
    let mut n = 0usize;
    while let Some(r) = rows.next()? {
        let doc_id: String = r.get(0)?;
        let body: Vec<u8> = r.get(1)?;
        // A sealed record in these states was opened before: its key is held.
        let inner = crate::keyring::record_change(tx, &body)?.map_err(|e| {
            EngineError::CorruptLog(format!("record of {doc_id} does not open: {e}"))
        })?;
        let change = automerge::Change::from_bytes(inner.change)
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
            // Strangers' records stay out of it (`roster::admitted_roster_changes`).
            drop(changes);
            let mut d = AutoCommit::new();
            apply_tolerantly(&mut d, crate::roster::admitted_roster_changes(tx, local)?);
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
        let mut described = Vec::new();
        crate::lineage::add_roots(tx, &id, &mut described, &roots)?;
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
            apply_doc_strictly(tx, &mut columns, &entity, kind)?;
            continue;
        }
        let merged = save_doc(tx, &storage, kind, &mut d, merged_now)?;
        materialize_entity(tx, &mut columns, &entity, kind, &mut d, merged)?;
    }
    materialize::settle_dependencies(tx, &mut columns)?;
    Ok(n)
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

/// Rebuilds `doc_id`'s document from every record of it in the log (except held ones),
/// applying changes one at a time in an order that depends only on the records held, not on
/// when they arrived: of the changes whose dependencies are in the document, the one with the
/// least (writer, position) first. A change the document refuses is set aside (`applied = 3`,
/// never materialized); a change whose dependencies never arrive keeps waiting. So every
/// replica holding the same records sets aside the same ones. Returns how many are set aside.
pub(crate) fn apply_doc_strictly(
    conn: &rusqlite::Connection,
    cols: &mut Columns,
    doc_id: &str,
    kind: Kind,
) -> Result<u64> {
    let rows: Vec<(i64, Vec<u8>, i64, Vec<u8>)> = conn
        .prepare_cached(
            "SELECT id, actor, seq, body FROM crdt_changes WHERE doc_id = ?1 AND applied IN (0, 1, 3)",
        )?
        .query_map([doc_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<std::result::Result<_, _>>()?;
    let mut changes: BTreeMap<(Vec<u8>, i64), (i64, Change)> = BTreeMap::new();
    for (row, actor, seq, body) in rows {
        let Ok(inner) = crate::keyring::record_change(conn, &body)? else {
            set_applied(conn, row, crate::store::NO_KEY)?;
            continue;
        };
        match Change::from_bytes(inner.change) {
            Ok(c) => {
                changes.insert((actor, seq), (row, c));
            }
            Err(_) => set_applied(conn, row, 3)?,
        }
    }
    let mut doc = AutoCommit::new();
    let mut set_aside = 0u64;
    let mut merged = false;
    loop {
        // The least (writer, position) whose dependencies are all in the document.
        let ready = changes
            .iter()
            .find(|(_, (_, c))| c.deps().iter().all(|d| doc.get_change_by_hash(d).is_some()))
            .map(|(k, _)| k.clone());
        let Some(key) = ready else { break };
        let (row, change) = changes.remove(&key).expect("found above");
        merged |= change.deps().len() > 1;
        match doc.apply_changes([change]) {
            Ok(()) => set_applied(conn, row, 1)?,
            Err(_) => {
                set_applied(conn, row, 3)?;
                set_aside += 1;
            }
        }
    }
    for (row, _) in changes.values() {
        set_applied(conn, *row, 0)?;
    }
    let merged = save_doc(conn, doc_id, kind, &mut doc, merged)?;
    materialize_entity(conn, cols, doc_id, kind, &mut doc, merged)?;
    Ok(set_aside)
}

fn set_applied(conn: &rusqlite::Connection, row: i64, applied: i64) -> Result<()> {
    conn.prepare_cached("UPDATE crdt_changes SET applied = ?1 WHERE id = ?2")?
        .execute(params![applied, row])?;
    Ok(())
}
