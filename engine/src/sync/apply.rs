//! The store's side of a sync round: summarising what the log holds, finding what a peer lacks,
//! and verifying and applying what arrives.
//!
//! Verification: each actor's records form a hash chain (`prev`), so within a batch only the
//! last record of each actor's run needs its signature checked; the chain ties every earlier
//! record of the run to that signature (see docs/protocol.md for the argument).

use std::collections::{BTreeMap, HashMap};

use automerge::{AutoCommit, Change};
use rusqlite::{params, OptionalExtension, TransactionBehavior};
use sha2::{Digest, Sha256};

use crate::error::{EngineError, Result};
use crate::identity;
use crate::materialize::Columns;
use crate::model::{now_timestamp, Kind};
use crate::record::{RecordBody, SignedRecord, ACTOR_LEN, RECORD_FORMAT};
use crate::roster::{self, ROSTER_ID};
use crate::store::{self, Store};
use crate::sync::session::{ApplyReport, LocalState, SyncStore};
use crate::sync::wire::{Summary, WireRecord};

type Actor = [u8; ACTOR_LEN];

/// One log row as scanned for sending: local id, actor, seq, body, signature.
type LogRow = (i64, Vec<u8>, i64, Vec<u8>, Vec<u8>);

struct ActorState {
    max_seq: u64,
    last_hash: [u8; 32],
    author: Option<[u8; 32]>,
}

struct Candidate {
    rec: SignedRecord,
    change: Change,
}

impl SyncStore for Store {
    fn local_state(&mut self) -> Result<LocalState> {
        let conn = self.conn();
        let fresh = !conn
            .prepare_cached("SELECT 1 FROM crdt_changes LIMIT 1")?
            .exists([])?;
        let summary = conn
            .prepare_cached("SELECT actor, max_seq FROM crdt_actors ORDER BY actor")?
            .query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))?
            .filter_map(|r| r.ok())
            .filter_map(|(a, s)| Actor::try_from(a.as_slice()).ok().map(|a| (a, s as u64)))
            .collect();
        Ok(LocalState {
            project: self.project_id()?,
            fresh,
            summary,
        })
    }

    fn adopt_project(&mut self, project: &str) -> Result<()> {
        let tx = self
            .conn_mut()
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if tx
            .prepare("SELECT 1 FROM crdt_changes LIMIT 1")?
            .exists([])?
        {
            return Err(EngineError::InvalidInput(
                "cannot adopt another project: this replica already has changes".into(),
            ));
        }
        store::set_meta(&tx, "project_id", project)?;
        store::set_meta(&tx, "founder", "0")?;
        tx.commit()?;
        Ok(())
    }

    fn missing_after(
        &mut self,
        remote: &Summary,
        cursor: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<(Vec<WireRecord>, u64)> {
        let conn = self.conn();
        let theirs: HashMap<Actor, u64> = remote.iter().cloned().collect();
        let mut deficit: HashMap<Actor, u64> = HashMap::new();
        let mut start = i64::MAX;
        let mut stmt = conn.prepare_cached("SELECT actor, max_seq FROM crdt_actors")?;
        let mine: Vec<(Vec<u8>, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<std::result::Result<_, _>>()?;
        for (a, max) in mine {
            let Ok(actor) = Actor::try_from(a.as_slice()) else {
                continue;
            };
            let have = theirs.get(&actor).copied().unwrap_or(0);
            if (max as u64) > have {
                deficit.insert(actor, have);
                if cursor == 0 {
                    let first: Option<i64> = conn
                        .prepare_cached(
                            "SELECT id FROM crdt_changes WHERE actor = ?1 AND seq = ?2",
                        )?
                        .query_row(params![&actor[..], have as i64 + 1], |r| r.get(0))
                        .optional()?;
                    start = start.min(first.unwrap_or(1) - 1);
                }
            }
        }
        if deficit.is_empty() {
            return Ok((Vec::new(), cursor));
        }
        let mut pos = if cursor == 0 {
            start.max(0)
        } else {
            cursor as i64
        };
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut page = conn.prepare_cached(
            "SELECT id, actor, seq, body, signature FROM crdt_changes WHERE id > ?1 ORDER BY id LIMIT 512",
        )?;
        'scan: loop {
            let rows: Vec<LogRow> = page
                .query_map([pos], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect::<std::result::Result<_, _>>()?;
            if rows.is_empty() {
                break;
            }
            for (id, actor, seq, body, signature) in rows {
                pos = id;
                let Ok(actor) = Actor::try_from(actor.as_slice()) else {
                    continue;
                };
                if deficit.get(&actor).is_some_and(|have| seq as u64 > *have) {
                    bytes += body.len() + signature.len();
                    out.push(WireRecord { body, signature });
                    if out.len() >= max_records || bytes >= max_bytes {
                        break 'scan;
                    }
                }
            }
        }
        Ok((out, pos as u64))
    }

    fn apply(&mut self, records: &[WireRecord]) -> Result<ApplyReport> {
        let mut report = ApplyReport::default();
        let pinned = self.pinned_peer_key();
        let tx = self
            .conn_mut()
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let project = store::meta(&tx, "project_id")?.unwrap_or_default();
        let mut actors: HashMap<Actor, ActorState> = HashMap::new();
        let mut broken: HashMap<Actor, bool> = HashMap::new();
        let mut runs: BTreeMap<Actor, Vec<usize>> = BTreeMap::new();
        let mut candidates: Vec<Option<Candidate>> = Vec::new();

        // Phase A: structure and chain.
        for w in records {
            let idx = candidates.len();
            candidates.push(None);
            let body: RecordBody = match postcard::from_bytes(&w.body) {
                Ok(b) => b,
                Err(e) => {
                    report.rejected.push(format!("malformed record: {e}"));
                    continue;
                }
            };
            let hash: [u8; 32] = Sha256::digest(&w.body).into();
            let actor = body.actor;
            let short = hex::encode(&actor[..4]);
            if broken.contains_key(&actor) {
                report.deferred += 1;
                continue;
            }
            if body.format > RECORD_FORMAT {
                report.rejected.push(format!(
                    "record {short}#{} has unknown format {}",
                    body.seq, body.format
                ));
                broken.insert(actor, true);
                continue;
            }
            if body.project != project {
                report.rejected.push(format!(
                    "record {short}#{} belongs to project {}, not {project}",
                    body.seq, body.project
                ));
                broken.insert(actor, true);
                continue;
            }
            let st = match actors.get_mut(&actor) {
                Some(s) => s,
                None => {
                    let row: Option<(i64, Vec<u8>, Vec<u8>)> = tx
                        .prepare_cached(
                            "SELECT max_seq, last_hash, author FROM crdt_actors WHERE actor = ?1",
                        )?
                        .query_row([&actor[..]], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                        .optional()?;
                    let st = match row {
                        Some((m, h, a)) => ActorState {
                            max_seq: m as u64,
                            last_hash: h.try_into().unwrap_or([0; 32]),
                            author: a.try_into().ok(),
                        },
                        None => ActorState {
                            max_seq: 0,
                            last_hash: [0; 32],
                            author: None,
                        },
                    };
                    actors.entry(actor).or_insert(st)
                }
            };
            if body.seq <= st.max_seq {
                let stored: Option<Vec<u8>> = tx
                    .prepare_cached("SELECT hash FROM crdt_changes WHERE actor = ?1 AND seq = ?2")?
                    .query_row(params![&actor[..], body.seq as i64], |r| r.get(0))
                    .optional()?;
                match stored {
                    Some(h) if h != hash => {
                        report.rejected.push(format!(
                            "record {short}#{} conflicts with the one already held (forked actor)",
                            body.seq
                        ));
                        broken.insert(actor, true);
                    }
                    _ => report.duplicates += 1,
                }
                continue;
            }
            if body.seq != st.max_seq + 1 {
                report.deferred += 1;
                broken.insert(actor, false);
                continue;
            }
            let problem = if body.prev != st.last_hash {
                Some("does not chain to its actor's previous record")
            } else if st.author.is_some_and(|a| a != body.author) {
                Some("is signed by a different machine than its actor's earlier records")
            } else {
                None
            };
            if let Some(p) = problem {
                report
                    .rejected
                    .push(format!("record {short}#{} {p}", body.seq));
                broken.insert(actor, true);
                continue;
            }
            let change = match Change::from_bytes(body.change.clone()) {
                Ok(c) if c.actor_id().to_bytes() == actor => c,
                Ok(_) => {
                    report.rejected.push(format!(
                        "record {short}#{}: change actor does not match the record",
                        body.seq
                    ));
                    broken.insert(actor, true);
                    continue;
                }
                Err(e) => {
                    report.rejected.push(format!(
                        "record {short}#{}: malformed change: {e}",
                        body.seq
                    ));
                    broken.insert(actor, true);
                    continue;
                }
            };
            let Ok(signature) = <[u8; 64]>::try_from(w.signature.as_slice()) else {
                report.rejected.push(format!(
                    "record {short}#{}: signature has the wrong length",
                    body.seq
                ));
                broken.insert(actor, true);
                continue;
            };
            st.max_seq = body.seq;
            st.last_hash = hash;
            st.author = Some(body.author);
            runs.entry(actor).or_default().push(idx);
            candidates[idx] = Some(Candidate {
                rec: SignedRecord {
                    body,
                    encoded: w.body.clone(),
                    hash,
                    signature,
                },
                change,
            });
        }

        // Phase B: one signature per actor run (the chain covers the rest).
        for (actor, idxs) in &runs {
            let last = candidates[*idxs.last().expect("runs are non-empty")]
                .as_ref()
                .expect("candidate");
            if identity::verify(&last.rec.body.author, &last.rec.hash, &last.rec.signature).is_err()
            {
                report.rejected.push(format!(
                    "{} record(s) of actor {} rejected: bad signature",
                    idxs.len(),
                    hex::encode(&actor[..4])
                ));
                for i in idxs {
                    candidates[*i] = None;
                }
            }
        }

        // Phase C: trust (against the roster as it stands, roster changes applied in order),
        // then store and apply.
        let mut cols = Columns::default();
        let mut by_doc: BTreeMap<String, Vec<([u8; 32], Change)>> = BTreeMap::new();
        let mut untrusted: HashMap<Actor, ()> = HashMap::new();
        let received_at = now_timestamp();
        for c in candidates.into_iter().flatten() {
            let b = &c.rec.body;
            if untrusted.contains_key(&b.actor) {
                continue;
            }
            // A replica without a roster yet takes the roster from the peer it pinned (the user
            // named that peer's key; the peer proved it on this connection). Everything else
            // is checked against the roster as it now stands.
            let bootstrap = b.doc == ROSTER_ID && pinned.is_some() && !roster::has_roster(&tx)?;
            if !bootstrap && !roster::is_trusted(&tx, &b.author, pinned.as_ref())? {
                report.rejected.push(format!(
                    "changes by machine {} rejected: not a member of this project (add it with 'td member add {}')",
                    identity::fingerprint_of(&b.author),
                    hex::encode(b.author)
                ));
                untrusted.insert(b.actor, ());
                continue;
            }
            store::append_record(&tx, &c.rec, &received_at)?;
            report.applied += 1;
            if b.doc == ROSTER_ID {
                apply_doc(&tx, &mut cols, ROSTER_ID, vec![(c.rec.hash, c.change)])?;
            } else {
                by_doc
                    .entry(b.doc.clone())
                    .or_default()
                    .push((c.rec.hash, c.change));
            }
        }
        let mut docs: Vec<(String, Vec<([u8; 32], Change)>)> = by_doc.into_iter().collect();
        docs.sort_by_key(|(id, _)| (Kind::of_id(id), id.clone()));
        for (doc_id, changes) in docs {
            apply_doc(&tx, &mut cols, &doc_id, changes)?;
        }
        tx.commit()?;
        Ok(report)
    }
}

/// Applies received changes (each with its record hash), plus any earlier ones of the same
/// document still waiting for their dependencies, saves the document and re-materializes the
/// entity. A change whose dependencies have not arrived stays in the log marked unapplied and
/// is retried with the document's next changes.
fn apply_doc(
    conn: &rusqlite::Connection,
    cols: &mut Columns,
    doc_id: &str,
    new: Vec<([u8; 32], Change)>,
) -> Result<()> {
    let Some(kind) = Kind::of_id(doc_id) else {
        // An entity kind from a newer td: kept in the log, not materialized.
        mark_unapplied(conn, new.iter().map(|(h, _)| h))?;
        return Ok(());
    };
    let mut pending: Vec<([u8; 32], Change)> = Vec::new();
    let waiting: Vec<(Vec<u8>, Vec<u8>)> = conn
        .prepare_cached("SELECT hash, body FROM crdt_changes WHERE doc_id = ?1 AND applied = 0")?
        .query_map([doc_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<std::result::Result<_, _>>()?;
    for (hash, body) in waiting {
        let rec: RecordBody =
            postcard::from_bytes(&body).map_err(|e| EngineError::CorruptLog(e.to_string()))?;
        let c =
            Change::from_bytes(rec.change).map_err(|e| EngineError::CorruptLog(e.to_string()))?;
        pending.push((hash.try_into().unwrap_or([0; 32]), c));
    }
    let mut doc = store::load_doc(conn, doc_id)?.unwrap_or_else(AutoCommit::new);
    let was_pending = pending.len();
    let all: Vec<([u8; 32], Change)> = pending.into_iter().chain(new).collect();
    doc.apply_changes(all.iter().map(|(_, c)| c.clone()))?;
    let mut unapplied = Vec::new();
    let mut now_applied = Vec::new();
    for (i, (h, c)) in all.iter().enumerate() {
        let applied = doc.get_change_by_hash(&c.hash()).is_some();
        match (applied, i < was_pending) {
            (true, true) => now_applied.push(*h),
            (false, false) => unapplied.push(*h),
            _ => {}
        }
    }
    mark_unapplied(conn, unapplied.iter())?;
    for h in now_applied {
        conn.prepare_cached("UPDATE crdt_changes SET applied = 1 WHERE hash = ?1 AND applied = 0")?
            .execute([&h[..]])?;
    }
    store::save_doc(conn, doc_id, kind, &mut doc)?;
    store::materialize_entity(conn, cols, doc_id, kind, &doc)
}

fn mark_unapplied<'a>(
    conn: &rusqlite::Connection,
    hashes: impl Iterator<Item = &'a [u8; 32]>,
) -> Result<()> {
    for h in hashes {
        conn.prepare_cached("UPDATE crdt_changes SET applied = 0 WHERE hash = ?1")?
            .execute([&h[..]])?;
    }
    Ok(())
}
