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

use crate::authority::{self, Standing};
use crate::error::{EngineError, Result};
use crate::identity;
use crate::lineage;
use crate::materialize::Columns;
use crate::model::{now_timestamp, Kind};
use crate::record::{RecordBody, SignedRecord, ACTOR_LEN, RECORD_FORMAT};
use crate::roster::{self, ROSTER_ID};
use crate::store::{self, Store};
use crate::sync::session::{ApplyReport, LocalState, PeerHolds, SyncStore};
use crate::sync::wire::WireRun;

type Actor = [u8; ACTOR_LEN];

/// A received change with the local log row of the record that carried it.
type HashedChange = (i64, Change);

/// One log row as scanned for sending: local id, actor, seq, body, signature.
type LogRow = (i64, Vec<u8>, i64, Vec<u8>, Vec<u8>);

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
        peer: &mut PeerHolds,
        cursor: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<(Vec<WireRun>, u64)> {
        let conn = self.conn();
        let mut start = i64::MAX;
        let mine: Vec<(Vec<u8>, i64)> = conn
            .prepare_cached("SELECT actor, max_seq FROM crdt_actors")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<std::result::Result<_, _>>()?;
        let mut behind = false;
        for (a, max) in mine {
            let Ok(actor) = Actor::try_from(a.as_slice()) else {
                continue;
            };
            let have = peer.get(&actor).copied().unwrap_or(0);
            if (max as u64) > have {
                behind = true;
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
        if !behind {
            return Ok((Vec::new(), cursor));
        }
        let mut pos = if cursor == 0 {
            start.max(0)
        } else {
            cursor as i64
        };
        let mut runs: Vec<WireRun> = Vec::new();
        let (mut records, mut bytes) = (0usize, 0usize);
        if cursor == 0 {
            // Roster records first: the receiver settles who is a member and which keys it
            // holds before the rest arrives, so sealed records open as they land instead of
            // waiting for a key that is further down the log (docs/encryption.md).
            let roster: Vec<LogRow> = conn
                .prepare_cached(
                    // Ordered by the list's key, so SQLite walks the short list and looks
                    // each record up; ordered by `c.id` it walked the whole log instead (every
                    // round: 25 ms of a kept-connection round at 100k changes).
                    "SELECT c.id, c.actor, c.seq, c.body, c.signature FROM crdt_roster_ops r \
                     JOIN crdt_changes c ON c.id = r.id ORDER BY r.id",
                )?
                .query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect::<std::result::Result<_, _>>()?;
            for (_, actor, seq, body, signature) in roster {
                let Ok(actor) = Actor::try_from(actor.as_slice()) else {
                    continue;
                };
                // Only a roster record next in its writer's chain (never a gap); the scan
                // below sends the rest in log order.
                if seq as u64 != peer.get(&actor).copied().unwrap_or(0) + 1 {
                    continue;
                }
                push_record(&mut runs, decode_body(&body)?, signature, &mut bytes);
                records += 1;
                peer.insert(actor, seq as u64);
                if runs.last().is_some_and(|r| r.signature.is_empty()) {
                    extend_to_signed(conn, &mut runs, peer, &mut records, &mut bytes)?;
                }
                if records >= max_records || bytes >= max_bytes {
                    return Ok((runs, pos as u64));
                }
            }
        }
        'scan: loop {
            let rows: Vec<LogRow> = conn
                .prepare_cached(
                    "SELECT id, actor, seq, body, signature FROM crdt_changes WHERE id > ?1 ORDER BY id LIMIT 512",
                )?
                .query_map([pos], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
                .collect::<std::result::Result<_, _>>()?;
            if rows.is_empty() {
                break;
            }
            for (id, actor, seq, body, signature) in rows {
                pos = id;
                let Ok(actor) = Actor::try_from(actor.as_slice()) else {
                    continue;
                };
                if peer.get(&actor).is_some_and(|have| seq as u64 <= *have) {
                    continue;
                }
                let rec = decode_body(&body)?;
                if seq as u64 != peer.get(&actor).copied().unwrap_or(0) + 1 {
                    continue; // unreachable for a contiguous log; never send a gap
                }
                push_record(&mut runs, rec, signature, &mut bytes);
                records += 1;
                peer.insert(actor, seq as u64);
                // A run must end at a signed record: extend it along the actor's chain.
                if runs.last().is_some_and(|r| r.signature.is_empty()) {
                    extend_to_signed(conn, &mut runs, peer, &mut records, &mut bytes)?;
                }
                if records >= max_records || bytes >= max_bytes {
                    break 'scan;
                }
            }
        }
        Ok((runs, pos as u64))
    }

    fn may_send_to(&mut self, key: &[u8; 32]) -> Result<bool> {
        let pinned = self.pinned_peer_key();
        roster::is_trusted(self.conn(), key, pinned.as_ref())
    }

    fn apply(&mut self, runs: &[WireRun]) -> Result<ApplyReport> {
        let mut report = ApplyReport::default();
        let local = self.identity().public_key();
        let identity = self.identity().clone();
        let admitting = self.admitting;
        // The roster, resolved once per batch when the admitting side checks a join.
        let mut admitting_roster: Option<crate::authority::Roster> = None;
        let from_hub = self.applying_from_hub.clone();
        let tx = self
            .conn_mut()
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        // The log's end before this batch, read under the write lock (see the end).
        let end_before: i64 =
            tx.query_row("SELECT coalesce(max(id), 0) FROM crdt_changes", [], |r| {
                r.get(0)
            })?;
        let project = store::meta(&tx, "project_id")?.unwrap_or_default();
        let conflicts_before = crate::conflicts::unresolved_ids(&tx)?;
        let mut cols = Columns::default();
        // Every verified record is stored; whether its author is accepted decides only whether
        // it is applied now or held (docs/membership.md). Standing is looked up once per author.
        let mut standing: HashMap<[u8; 32], Standing> = HashMap::new();
        let mut batch: Vec<Received> = Vec::new();
        let mut by_doc: BTreeMap<String, Vec<HashedChange>> = BTreeMap::new();
        let has_roster = runs
            .iter()
            .any(|r| r.changes.iter().any(|(doc, _)| doc == ROSTER_ID));
        // Whether this batch stored roster records the roster has not been resolved with yet.
        let mut roster_pending = false;
        // Roster records (count, bytes) held per machine that is not admitted, as counted so
        // far in this batch (`authority::MAX_UNADMITTED_ROSTER_RECORDS`).
        let mut unadmitted_roster: HashMap<[u8; 32], (u64, u64)> = HashMap::new();
        // The same, for all such machines together (`MAX_UNADMITTED_ROSTER_TOTAL`), counted once
        // per batch when the first of them sends roster records.
        let mut unadmitted_total: Option<(u64, u64)> = None;
        // The roster operations held so far, loaded when a machine that is not a member sends
        // roster records (`roster::Admission`).
        let mut admission: Option<roster::Admission> = None;
        // Sealed records that could not be opened here, by reason.
        let mut no_key: BTreeMap<String, u64> = BTreeMap::new();
        // This batch's records held for a key (a key in this same batch may open them).
        let mut sealed_rows: Vec<i64> = Vec::new();
        // Per writer: whether one of its records is held for a key (the rest wait behind it).
        let mut holes: HashMap<Actor, bool> = HashMap::new();
        let received_at = now_timestamp();
        let mut mark = (0usize, 0u64);
        let mut changed_keys: Vec<String> = Vec::new();
        let mut opened = false;
        // Records held for a key (here or in earlier batches) that a key in this batch opened
        // and applied: they count as received now.
        let mut opened_total = 0u64;
        // Roster runs first, in the order that stores what admits a machine before its own
        // records (`roster::batch_order`); a run of one writer never moves past another of it.
        let order = roster::batch_order(&tx, runs)?;
        let mut previous: Option<usize> = None;
        for &idx in &order {
            let run = &runs[idx];
            if let Some(prev) = previous {
                if (report.rejected.len(), report.deferred) != mark {
                    report.incomplete_runs.push(prev);
                }
            }
            previous = Some(idx);
            // Roster runs come first in a round (`missing_after`): once they are stored, the
            // roster and the keyring are settled before the first other run, so its sealed
            // records open with keys that arrived in this very batch.
            let roster_run = run.changes.iter().all(|(doc, _)| doc == ROSTER_ID);
            if !roster_run && roster_pending {
                roster_pending = false;
                apply_roster_doc(&tx, &local)?;
                changed_keys.extend(roster::refresh(&tx)?);
                if crate::keyring::refresh(&tx, &identity)? {
                    // Records held for a key that just arrived apply first, in order.
                    opened_total += open_held(&tx, &mut cols, &local)?;
                    holes.clear();
                    opened = true;
                }
                standing.clear();
            }
            mark = (report.rejected.len(), report.deferred);
            let short = hex::encode(&run.actor[..4]);
            if let Some(why) = identity::unsafe_session(&run.session)
                .or_else(|| misattributed(&run.session, &run.author))
            {
                report.rejected.push(format!(
                    "{} record(s) of actor {short} rejected: {why}",
                    run.changes.len()
                ));
                continue;
            }
            if admitting {
                let now = chrono::Utc::now().timestamp();
                if let Some(why) = roster::late_join(&tx, run, now, &mut admitting_roster)? {
                    report.rejected.push(format!(
                        "{} record(s) of actor {short} refused: {why}",
                        run.changes.len()
                    ));
                    continue;
                }
            }
            let Some(records) = rebuild_run(&tx, &project, run, &local, &mut report)? else {
                continue;
            };
            // One signature check covers the run: each record's hash is chained into the next.
            let last = records.last().expect("rebuild_run returns non-empty runs");
            let Ok(signature) = <[u8; 64]>::try_from(run.signature.as_slice()) else {
                report.rejected.push(format!(
                    "run of actor {short}: signature has the wrong length"
                ));
                continue;
            };
            if identity::verify(&run.author, &last.hash, &signature).is_err() {
                report.rejected.push(format!(
                    "{} record(s) of actor {short} rejected: bad signature",
                    records.len()
                ));
                continue;
            }
            let author_standing = match standing.get(&run.author) {
                Some(s) => s.clone(),
                None => {
                    let s = roster::standing_of(&tx, &run.author, &local)?;
                    standing.insert(run.author, s.clone());
                    s
                }
            };
            // A machine nobody admitted may store a few roster records (its join, made before
            // its invite arrived here), never a flood (docs/membership.md). A run goes whole
            // or not at all: a stored prefix would lack the signature that vouches for it.
            let (roster_n, roster_bytes) = records
                .iter()
                .filter(|r| r.body.format < crate::record::SEALED_FORMAT && r.body.doc == ROSTER_ID)
                .fold((0u64, 0u64), |(n, b), r| {
                    (n + 1, b + r.encoded.len() as u64)
                });
            if roster_n > 0 && author_standing == Standing::Unknown && run.author != local && {
                let view = match &mut admission {
                    Some(v) => v,
                    None => admission.insert(roster::Admission::load(&tx)?),
                };
                !view.admits(&hex::encode(run.author))
            } {
                let used = match unadmitted_roster.get(&run.author) {
                    Some(u) => *u,
                    None => roster::roster_records_of(&tx, &run.author)?,
                };
                let next = (used.0 + roster_n, used.1 + roster_bytes);
                if next.0 > authority::MAX_UNADMITTED_ROSTER_RECORDS
                    || next.1 > authority::MAX_UNADMITTED_ROSTER_BYTES
                {
                    report.rejected.push(format!(
                        "{} record(s) of actor {short} refused: machine {} is not a member, and a machine that is not may store at most {} roster records ({} bytes)",
                        records.len(),
                        identity::fingerprint_of(&run.author),
                        authority::MAX_UNADMITTED_ROSTER_RECORDS,
                        authority::MAX_UNADMITTED_ROSTER_BYTES
                    ));
                    continue;
                }
                let view = admission.as_mut().expect("loaded above");
                let total = match unadmitted_total {
                    Some(t) => t,
                    None => roster::unadmitted_roster_total(&tx, view)?,
                };
                let next_total = (total.0 + roster_n, total.1 + roster_bytes);
                if next_total.0 > authority::MAX_UNADMITTED_ROSTER_TOTAL
                    || next_total.1 > authority::MAX_UNADMITTED_ROSTER_TOTAL_BYTES
                {
                    unadmitted_total = Some(total);
                    report.rejected.push(format!(
                        "{} record(s) of actor {short} refused: machine {} is not a member, and this replica already holds the most roster records it stores from machines that are not ({} records, {} bytes)",
                        records.len(),
                        identity::fingerprint_of(&run.author),
                        authority::MAX_UNADMITTED_ROSTER_TOTAL,
                        authority::MAX_UNADMITTED_ROSTER_TOTAL_BYTES
                    ));
                    continue;
                }
                unadmitted_total = Some(next_total);
                unadmitted_roster.insert(run.author, next);
            }
            let n = records.len();
            let mut head = None;
            let mut session = run.session.clone();
            for (i, mut rec) in records.into_iter().enumerate() {
                if i + 1 == n {
                    rec.signature = signature;
                }
                let sealed = rec.body.format >= crate::record::SEALED_FORMAT;
                // A writer's records apply in order: behind one held for a key, the rest wait
                // too (they open together, in order, when the key arrives).
                if sealed && !holes.contains_key(&run.actor) {
                    // Once per writer and batch, on a partial index of the held records.
                    let hole = tx
                        .prepare_cached(
                            "SELECT 1 FROM crdt_changes WHERE actor = ?1 AND applied = 5 LIMIT 1",
                        )?
                        .exists(params![&run.actor[..]])?;
                    holes.insert(run.actor, hole);
                }
                let behind_a_hole = sealed && holes.get(&run.actor).copied().unwrap_or(false);
                // A sealed record is opened with the epoch keys held here; one that cannot be
                // opened is stored and held (its writer's chain goes on), never dropped.
                let (doc, change) = if sealed {
                    let opened = if behind_a_hole {
                        let epoch =
                            crate::sealing::record_epoch(&rec.body.change).unwrap_or([0; 32]);
                        Err((
                            store::NO_KEY,
                            crate::sealing::OpenError::NoKey(epoch).to_string(),
                        ))
                    } else {
                        open_sealed(&tx, rec.body.clone(), &run.author, &run.actor)?
                    };
                    match opened {
                        Ok((inner, c)) => {
                            session = inner.session;
                            (inner.doc, c)
                        }
                        Err((code, why)) => {
                            let row = store::insert_record_as(
                                &tx,
                                &rec,
                                "",
                                "",
                                i + 1 == n,
                                &received_at,
                                code,
                            )?;
                            head = Some((rec.body.seq, rec.hash));
                            report.held += 1;
                            if code == store::NO_KEY {
                                *no_key.entry(why).or_default() += 1;
                                sealed_rows.push(row);
                                holes.insert(run.actor, true);
                            } else {
                                report.held_notes.push(format!(
                                    "unreadable: record {short}#{}: {why}",
                                    rec.body.seq
                                ));
                            }
                            continue;
                        }
                    }
                } else {
                    // The record's hash and encoding are already computed: its change bytes
                    // can move into the parsed change.
                    match Change::from_bytes(std::mem::take(&mut rec.body.change)) {
                        Ok(c) if c.actor_id().to_bytes() == run.actor => {
                            (std::mem::take(&mut rec.body.doc), c)
                        }
                        _ => {
                            report
                                .rejected
                                .push(format!("record {short}#{}: malformed change", rec.body.seq));
                            break;
                        }
                    }
                };
                let is_roster = doc == ROSTER_ID && !sealed;
                let accepted = is_roster || author_standing.admits(&run.actor, rec.body.seq);
                let row = store::insert_record_as(
                    &tx,
                    &rec,
                    &doc,
                    &session,
                    i + 1 == n,
                    &received_at,
                    if accepted {
                        store::APPLIED
                    } else {
                        store::HELD
                    },
                )?;
                rec.body.doc = doc;
                head = Some((rec.body.seq, rec.hash));
                report.applied += 1;
                if is_roster {
                    roster_pending = true;
                    if let Some(v) = &mut admission {
                        v.push(run.author, &run.actor, rec.body.seq, &change);
                    }
                    drop(change);
                } else if !has_roster && accepted {
                    // The common path (no roster change in this batch): straight to its document.
                    by_doc
                        .entry(std::mem::take(&mut rec.body.doc))
                        .or_default()
                        .push((row, change));
                } else {
                    batch.push(Received {
                        row,
                        doc: std::mem::take(&mut rec.body.doc),
                        author: run.author,
                        actor: run.actor,
                        seq: rec.body.seq,
                        accepted,
                        change,
                    });
                }
            }
            // Advance the actor's head now, so the next run of the same actor chains on.
            if let Some((seq, hash)) = head {
                store::set_actor_head(&tx, &run.actor, &session, &run.author, seq, &hash)?;
            }
        }
        if let Some(prev) = previous {
            if (report.rejected.len(), report.deferred) != mark {
                report.incomplete_runs.push(prev);
            }
        }
        if roster_pending {
            apply_roster_doc(&tx, &local)?;
            changed_keys.extend(roster::refresh(&tx)?);
            opened |= crate::keyring::refresh(&tx, &identity)?;
        }
        changed_keys.sort();
        changed_keys.dedup();
        if !changed_keys.is_empty() {
            // This batch's records of machines whose standing changed are decided again.
            // Standing looked up once per machine whose standing changed.
            let mut now_standing: HashMap<[u8; 32], Standing> = HashMap::new();
            for r in &batch {
                if !now_standing.contains_key(&r.author)
                    && changed_keys.contains(&hex::encode(r.author))
                {
                    let s = roster::standing_of(&tx, &r.author, &local)?;
                    now_standing.insert(r.author, s);
                }
            }
            for r in batch.iter_mut() {
                let Some(s) = now_standing.get(&r.author) else {
                    continue;
                };
                let now = s.admits(&r.actor, r.seq);
                if now != r.accepted {
                    r.accepted = now;
                    tx.prepare_cached("UPDATE crdt_changes SET applied = ?1 WHERE id = ?2")?
                        .execute(params![if now { 1 } else { 2 }, r.row])?;
                }
            }
        }
        let mut held_by: BTreeMap<[u8; 32], u64> = BTreeMap::new();
        for r in batch {
            if r.accepted {
                by_doc.entry(r.doc).or_default().push((r.row, r.change));
            } else {
                report.held += 1;
                report.applied -= 1;
                *held_by.entry(r.author).or_default() += 1;
            }
        }
        // The sender is told what was held and why (it travels in the Ack's notes).
        for (author, n) in held_by {
            report.held_notes.push(format!(
                "held: {n} change(s) by machine {}: not a member of this project here (an admin admits it with 'td member add {}')",
                identity::fingerprint_of(&author),
                hex::encode(author)
            ));
        }
        let mut docs: Vec<(String, Vec<HashedChange>)> = by_doc.into_iter().collect();
        docs.sort_by_key(|(id, _)| (Kind::of_id(id), id.clone()));
        for (doc_id, changes) in docs {
            let set_aside = apply_doc(&tx, &mut cols, &doc_id, changes)?;
            if set_aside > 0 {
                report.set_aside += set_aside;
                report.held_notes.push(format!(
                    "set aside: {set_aside} change(s) to {doc_id} that its document refuses (a second change at one of its writer's positions)"
                ));
            }
        }
        if !changed_keys.is_empty() {
            settle_standing(&tx, &mut cols, Some(&changed_keys), &local)?;
        }
        if opened {
            opened_total += open_held(&tx, &mut cols, &local)?;
            let mut still = 0u64;
            for row in &sealed_rows {
                still += tx
                    .prepare_cached("SELECT 1 FROM crdt_changes WHERE id = ?1 AND applied = ?2")?
                    .exists(params![row, store::NO_KEY])? as u64;
            }
            report.held -= sealed_rows.len() as u64 - still;
            report.applied += opened_total;
            if still == 0 {
                no_key.clear();
            }
        }
        for (why, n) in no_key {
            report.held_notes.push(format!(
                "held: {n} sealed change(s): {why} (they open when its key arrives)"
            ));
        }
        crate::materialize::settle_dependencies(&tx, &mut cols)?;
        report.conflicts = crate::conflicts::recorded_since(&tx, &conflicts_before)?;
        if let Some(hub) = from_hub {
            // Records read from a hub need no pushing back to it: when everything before this
            // batch was pushed there, the push cursor moves over exactly what this batch
            // stored, in its own transaction, so a record another process commits meanwhile
            // (an agent's `td create`, a peer's round) is never skipped.
            tx.execute(
                "INSERT OR IGNORE INTO crdt_hub_state(hub) VALUES (?1)",
                [&hub],
            )?;
            tx.execute(
                "UPDATE crdt_hub_state SET pushed_through = \
                 (SELECT coalesce(max(id), 0) FROM crdt_changes) \
                 WHERE hub = ?1 AND pushed_through >= ?2",
                rusqlite::params![hub, end_before],
            )?;
        }
        tx.commit()?;
        Ok(report)
    }
}

/// Opens a sealed record with the keys held here and checks what it holds: its entity,
/// session and change, or the `applied` state to keep it in (`store::NO_KEY` until its key
/// arrives, `store::UNREADABLE` for good) and why.
fn open_sealed(
    conn: &rusqlite::Connection,
    body: RecordBody,
    author: &[u8; 32],
    actor: &Actor,
) -> Result<std::result::Result<(crate::record::Inner, Change), (i64, String)>> {
    let mut inner = match crate::keyring::open_body(conn, body)? {
        Ok(inner) => inner,
        Err(e @ crate::sealing::OpenError::NoKey(_)) => {
            return Ok(Err((store::NO_KEY, e.to_string())))
        }
        Err(e) => return Ok(Err((store::UNREADABLE, e.to_string()))),
    };
    if let Err(why) = check_opened(&inner, author) {
        return Ok(Err((store::UNREADABLE, why)));
    }
    Ok(
        match Change::from_bytes(std::mem::take(&mut inner.change)) {
            Ok(c) if c.actor_id().to_bytes() == *actor => Ok((inner, c)),
            _ => Err((store::UNREADABLE, "malformed change".into())),
        },
    )
}

/// Checks what a sealed record held once opened: a change within bounds, and a session
/// that names no machine but its signer (as the run's session is checked for plaintext).
fn check_opened(
    inner: &crate::record::Inner,
    author: &[u8; 32],
) -> std::result::Result<(), String> {
    crate::record::check_change(&inner.change)?;
    if inner.doc == ROSTER_ID {
        return Err("a sealed roster change (the roster is never sealed)".into());
    }
    if let Some(why) =
        identity::unsafe_session(&inner.session).or_else(|| misattributed(&inner.session, author))
    {
        return Err(why);
    }
    Ok(())
}

/// Opens the records held for want of a key (`store::NO_KEY`) with the keys held now, and
/// applies those whose authors are accepted; the rest stay held. Called when a key arrived.
pub(crate) fn open_held(
    conn: &rusqlite::Connection,
    cols: &mut Columns,
    local: &[u8; 32],
) -> Result<u64> {
    let rows: Vec<(i64, Vec<u8>)> = conn
        .prepare_cached("SELECT id, body FROM crdt_changes WHERE applied = 5 ORDER BY id")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<std::result::Result<_, _>>()?;
    let mut by_doc: BTreeMap<String, Vec<HashedChange>> = BTreeMap::new();
    let mut standing: HashMap<[u8; 32], Standing> = HashMap::new();
    // Writers with a record still without its key: their later records keep waiting.
    let mut stuck: std::collections::HashSet<Actor> = std::collections::HashSet::new();
    for (row, body) in rows {
        let rec = decode_body(&body)?;
        let (author, actor, seq) = (rec.author, rec.actor, rec.seq);
        if stuck.contains(&actor) {
            continue;
        }
        let (inner, change) = match open_sealed(conn, rec, &author, &actor)? {
            Ok(opened) => opened,
            Err((store::NO_KEY, _)) => {
                stuck.insert(actor);
                continue;
            }
            Err((code, _)) => {
                conn.prepare_cached("UPDATE crdt_changes SET applied = ?1 WHERE id = ?2")?
                    .execute(params![code, row])?;
                continue;
            }
        };
        let s = match standing.get(&author) {
            Some(s) => s.clone(),
            None => {
                let s = roster::standing_of(conn, &author, local)?;
                standing.insert(author, s.clone());
                s
            }
        };
        let accepted = s.admits(&actor, seq);
        // The writer's session, learnt now that one of its sealed records opened.
        conn.prepare_cached(
            "UPDATE crdt_actors SET session_id = ?1 WHERE actor = ?2 AND session_id = ''",
        )?
        .execute(params![inner.session, &actor[..]])?;
        conn.prepare_cached(
            "UPDATE crdt_changes SET doc_id = ?1, session_id = ?2, applied = ?3 WHERE id = ?4",
        )?
        .execute(params![
            inner.doc,
            inner.session,
            if accepted {
                store::APPLIED
            } else {
                store::HELD
            },
            row
        ])?;
        if accepted {
            by_doc.entry(inner.doc).or_default().push((row, change));
        }
    }
    let mut docs: Vec<(String, Vec<HashedChange>)> = by_doc.into_iter().collect();
    docs.sort_by_key(|(id, _)| (Kind::of_id(id), id.clone()));
    let mut applied = 0u64;
    for (doc_id, changes) in docs {
        applied += changes.len() as u64;
        apply_doc(conn, cols, &doc_id, changes)?;
    }
    Ok(applied)
}

/// A received record of an entity document, with whether its author is accepted.
struct Received {
    row: i64,
    doc: String,
    author: [u8; 32],
    actor: Actor,
    seq: u64,
    accepted: bool,
    change: Change,
}

/// Why a run's session id misattributes its records: a session id `ses_<machine>_…` names the
/// machine that made it, so it must be the signer's fingerprint. Sessions imported from td
/// (which have no machine part) name no machine.
pub(crate) fn misattributed(session: &str, author: &[u8; 32]) -> Option<String> {
    let machine = identity::session_machine(session)?;
    let signer = identity::fingerprint_of(author);
    (machine != signer).then(|| {
        format!("session {session} names machine {machine}, but machine {signer} signed it")
    })
}

/// After the roster changed: marks the records of `keys` (every author when `None`) accepted
/// or held as their authors now stand, applies what became accepted, and rebuilds the tables
/// when something already materialized is refused now (a removal's cut-off).
pub(crate) fn settle_standing(
    conn: &rusqlite::Connection,
    cols: &mut Columns,
    keys: Option<&[String]>,
    local: &[u8; 32],
) -> Result<()> {
    let r = roster::reauthorize(conn, keys, local)?;
    if r.rebuild {
        crate::rebuild::rebuild_tables(conn, local)?;
        *cols = Columns::default();
        return Ok(());
    }
    let mut docs: Vec<String> = r.docs.into_iter().collect();
    docs.sort_by_key(|id| (Kind::of_id(id), id.clone()));
    for d in docs {
        apply_doc(conn, cols, &d, Vec::new())?;
    }
    Ok(())
}

/// Makes the roster document again from the admitted machines' roster records (it only
/// carries the operations; the roster itself is resolved from the log, `roster::refresh`).
/// Strangers' records stay out, so this replica's next roster operation never builds on one.
fn apply_roster_doc(conn: &rusqlite::Connection, local: &[u8; 32]) -> Result<()> {
    let mut doc = AutoCommit::new();
    crate::rebuild::apply_tolerantly(&mut doc, roster::admitted_roster_changes(conn, local)?);
    store::save_doc(conn, ROSTER_ID, Kind::Roster, &mut doc, false)?;
    Ok(())
}

fn decode_body(body: &[u8]) -> Result<RecordBody> {
    postcard::from_bytes(body).map_err(|e| EngineError::CorruptLog(format!("stored record: {e}")))
}

/// Appends a stored record to the batch, continuing the last run when it is the same actor's
/// next record and the run does not end at a signature yet. A run ends at each signed record,
/// so the receiver stores every signature the sender holds and can relay them all.
fn push_record(runs: &mut Vec<WireRun>, rec: RecordBody, signature: Vec<u8>, bytes: &mut usize) {
    *bytes += rec.doc.len() + rec.change.len() + 8;
    let continues = runs.last().is_some_and(|r| {
        r.signature.is_empty()
            && r.format == rec.format
            && r.actor == rec.actor
            && r.first_seq + r.changes.len() as u64 == rec.seq
    });
    if !continues {
        runs.push(WireRun {
            format: rec.format,
            actor: rec.actor,
            author: rec.author,
            session: rec.session.clone(),
            first_seq: rec.seq,
            changes: Vec::new(),
            signature: Vec::new(),
        });
        *bytes += 80 + rec.session.len();
    }
    let run = runs.last_mut().expect("pushed above");
    run.changes.push((rec.doc, rec.change));
    run.signature = signature;
}

/// Extends the last run along its actor's chain until it ends at a signed record.
fn extend_to_signed(
    conn: &rusqlite::Connection,
    runs: &mut Vec<WireRun>,
    peer: &mut PeerHolds,
    records: &mut usize,
    bytes: &mut usize,
) -> Result<()> {
    let run = runs.last().expect("called with a run");
    let (actor, next) = (run.actor, run.first_seq + run.changes.len() as u64);
    let mut stmt = conn.prepare_cached(
        "SELECT seq, body, signature FROM crdt_changes WHERE actor = ?1 AND seq >= ?2 ORDER BY seq",
    )?;
    let mut rows = stmt.query(params![&actor[..], next as i64])?;
    while let Some(r) = rows.next()? {
        let seq: i64 = r.get(0)?;
        let body: Vec<u8> = r.get(1)?;
        let signature: Vec<u8> = r.get(2)?;
        let signed = !signature.is_empty();
        push_record(runs, decode_body(&body)?, signature, bytes);
        *records += 1;
        peer.insert(actor, seq as u64);
        if signed {
            break;
        }
    }
    Ok(())
}

/// Rebuilds the record bodies of a received run, chained from this replica's copy of the
/// actor's previous record. Records already held are skipped (and must match); a run that
/// starts past what is held is deferred; a run that does not fit the held chain is rejected.
fn rebuild_run(
    conn: &rusqlite::Connection,
    project: &str,
    run: &WireRun,
    local: &[u8; 32],
    report: &mut ApplyReport,
) -> Result<Option<Vec<SignedRecord>>> {
    let short = hex::encode(&run.actor[..4]);
    if run.changes.is_empty() || run.first_seq == 0 {
        report
            .rejected
            .push(format!("empty or malformed run of actor {short}"));
        return Ok(None);
    }
    if run.format > RECORD_FORMAT {
        report.rejected.push(format!(
            "run of actor {short} has unknown record format {}",
            run.format
        ));
        return Ok(None);
    }
    let (max_seq, stored_author): (u64, Option<Vec<u8>>) = conn
        .prepare_cached("SELECT max_seq, author FROM crdt_actors WHERE actor = ?1")?
        .query_row([&run.actor[..]], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))
        })
        .optional()?
        .map_or((0, None), |(m, a)| (m, Some(a)));
    if run.first_seq > max_seq + 1 {
        report.deferred += run.changes.len() as u64;
        return Ok(None);
    }
    if stored_author
        .as_ref()
        .is_some_and(|a| a.as_slice() != run.author)
    {
        report.rejected.push(format!(
            "run of actor {short} is signed by a different machine than its earlier records"
        ));
        return Ok(None);
    }
    let mut prev: [u8; 32] = if run.first_seq == 1 {
        [0; 32]
    } else {
        store::stored_hash(conn, &run.actor, run.first_seq - 1)?.ok_or_else(|| {
            EngineError::CorruptLog("an actor's record below its head is missing".into())
        })?
    };
    for (doc, c) in &run.changes {
        if run.format >= crate::record::SEALED_FORMAT {
            // Sealed: bounded here, its change checked once opened.
            if c.len() > crate::record::MAX_SEALED_BYTES || !doc.is_empty() {
                report.rejected.push(format!(
                    "run of actor {short} rejected: a sealed record of {} bytes (at most {}) or naming an entity in the clear",
                    c.len(),
                    crate::record::MAX_SEALED_BYTES
                ));
                return Ok(None);
            }
            continue;
        }
        if let Err(why) = crate::record::check_change(c) {
            report.rejected.push(format!(
                "run of actor {short} rejected: the change to {doc} is {why}"
            ));
            return Ok(None);
        }
    }
    let mut out = Vec::new();
    for (i, (doc, change)) in run.changes.iter().enumerate() {
        let seq = run.first_seq + i as u64;
        let body = RecordBody {
            format: run.format,
            project: project.to_string(),
            doc: doc.clone(),
            actor: run.actor,
            seq,
            prev,
            session: run.session.clone(),
            author: run.author,
            change: change.clone(),
        };
        let encoded =
            postcard::to_stdvec(&body).map_err(|e| EngineError::CorruptLog(e.to_string()))?;
        let hash: [u8; 32] = Sha256::digest(&encoded).into();
        prev = hash;
        if seq <= max_seq {
            let stored = store::stored_hash(conn, &run.actor, seq)?.ok_or_else(|| {
                EngineError::CorruptLog("an actor's record below its head is missing".into())
            })?;
            if stored != hash {
                report.rejected.push(format!(
                    "record {short}#{seq} conflicts with the one already held (forked actor)"
                ));
                if stored_author.as_deref() == Some(local.as_slice()) {
                    // This machine published another record at this position before its
                    // database was restored (ledger and all): recover (store::note_own_fork).
                    store::note_own_fork(conn, &run.actor, seq)?;
                }
                return Ok(None);
            }
            report.duplicates += 1;
            continue;
        }
        out.push(SignedRecord {
            body,
            encoded,
            hash,
            signature: [0; 64],
        });
    }
    if out.is_empty() {
        return Ok(None);
    }
    Ok(Some(out))
}

/// Applies received changes (each with its record hash), plus any earlier ones of the same
/// document still waiting for their dependencies, saves the document and re-materializes the
/// entity. A change whose dependencies have not arrived stays in the log marked unapplied and
/// is retried with the document's next changes.
fn apply_doc(
    conn: &rusqlite::Connection,
    cols: &mut Columns,
    doc_id: &str,
    new: Vec<HashedChange>,
) -> Result<u64> {
    let Some(kind) = Kind::of_id(doc_id) else {
        // An entity kind from a newer td: kept in the log, not materialized.
        mark_unapplied(conn, new.iter().map(|(h, _)| h))?;
        return Ok(0);
    };
    let mut pending: Vec<HashedChange> = Vec::new();
    let waiting: Vec<(i64, Vec<u8>)> = conn
        .prepare_cached("SELECT id, body FROM crdt_changes WHERE doc_id = ?1 AND applied = 0")?
        .query_map([doc_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<std::result::Result<_, _>>()?;
    for (row, body) in waiting {
        let inner = crate::keyring::record_change(conn, &body)?
            .map_err(|e| EngineError::CorruptLog(format!("a waiting record does not open: {e}")))?;
        let c =
            Change::from_bytes(inner.change).map_err(|e| EngineError::CorruptLog(e.to_string()))?;
        pending.push((row, c));
    }
    if let Some((lineages, referrers)) = clashed_lineages(conn, cols, doc_id, &pending, &new)? {
        apply_lineages(conn, cols, kind, lineages, referrers, pending, new)?;
        return Ok(0);
    }
    let stored = store::load_doc(conn, doc_id)?;
    let fresh = stored.is_none();
    let mut doc = stored.unwrap_or_else(AutoCommit::new);
    let was_pending = pending.len();
    // The changes move into the document; only their rows and hashes are kept to check. For a
    // document this batch creates, their bytes are kept too: concatenated, they are a valid
    // snapshot (Automerge loads a sequence of changes), cheaper than encoding a document.
    let mut rows = Vec::with_capacity(pending.len() + new.len());
    let mut merged_now = false;
    let mut raw: Vec<u8> = Vec::new();
    let all = pending.into_iter().chain(new).map(|(h, c)| {
        merged_now |= c.deps().len() > 1;
        rows.push((h, c.hash()));
        if fresh {
            raw.extend_from_slice(c.raw_bytes());
        }
        c
    });
    if doc.apply_changes(all.collect::<Vec<_>>()).is_err() {
        // A change the document refuses (crafted: a second change at one of its writer's
        // positions) must never fail the batch, nor depend on arrival order.
        return crate::rebuild::apply_doc_strictly(conn, cols, doc_id, kind);
    }
    let mut unapplied = Vec::new();
    let mut now_applied = Vec::new();
    // Usually every change applies; only when some wait for missing dependencies is it worth
    // asking the document change by change.
    let everything_applied = doc.get_missing_deps(&[]).is_empty();
    for (i, (h, hash)) in rows.iter().enumerate() {
        if everything_applied {
            if i < was_pending {
                now_applied.push(*h);
            }
            continue;
        }
        let applied = doc.get_change_by_hash(hash).is_some();
        match (applied, i < was_pending) {
            (true, true) => now_applied.push(*h),
            (false, false) => unapplied.push(*h),
            _ => {}
        }
    }
    mark_unapplied(conn, unapplied.iter())?;
    for h in now_applied {
        conn.prepare_cached("UPDATE crdt_changes SET applied = 1 WHERE id = ?1")?
            .execute([h])?;
    }
    let merged = if fresh && everything_applied {
        store::save_doc_as(conn, doc_id, kind, &mut doc, merged_now, raw)?
    } else {
        store::save_doc(conn, doc_id, kind, &mut doc, merged_now)?
    };
    store::materialize_received(conn, cols, doc_id, kind, &mut doc, merged)?;
    Ok(0)
}

fn mark_unapplied<'a>(
    conn: &rusqlite::Connection,
    rows: impl Iterator<Item = &'a i64>,
) -> Result<()> {
    for h in rows {
        conn.prepare_cached("UPDATE crdt_changes SET applied = 0 WHERE id = ?1")?
            .execute([h])?;
    }
    Ok(())
}

/// The lineages of `doc_id` when its id has clashed (merge rule 8, `lineage.rs`): already
/// known ones, plus a root change among `pending`/`new` that the stored document does not
/// hold. With a new lineage, also the entities whose rows refer to the document (they are
/// written again once ids have moved). `None` on the common path (one creation per id).
fn clashed_lineages(
    conn: &rusqlite::Connection,
    cols: &mut Columns,
    doc_id: &str,
    pending: &[HashedChange],
    new: &[HashedChange],
) -> Result<Option<(Vec<lineage::Lineage>, Vec<String>)>> {
    let incoming: Vec<&Change> = pending
        .iter()
        .chain(new)
        .map(|(_, c)| c)
        .filter(|c| c.deps().is_empty())
        .collect();
    let known = if cols.clashes(conn)? {
        lineage::of_doc(conn, doc_id)?
    } else {
        Vec::new()
    };
    if incoming.is_empty() {
        return Ok((!known.is_empty()).then_some((known, Vec::new())));
    }
    let mut roots: Vec<lineage::Root> = Vec::new();
    if known.is_empty() {
        // The common case: the creation of a document this replica does not hold yet.
        let exists = conn
            .prepare_cached("SELECT 1 FROM crdt_docs WHERE doc_id = ?1")?
            .exists([doc_id])?;
        if !exists && incoming.iter().all(|c| c.hash() == incoming[0].hash()) {
            return Ok(None);
        }
        if let Some(mut stored) = store::load_doc(conn, doc_id)? {
            if let Some(r) = lineage::root_of(&mut stored) {
                roots.push(lineage::Root::of(conn, &r, doc_id.to_string())?);
            }
        }
    } else {
        roots.extend(known.iter().map(lineage::Root::from));
    }
    let before = roots.len();
    lineage::add_roots(conn, doc_id, &mut roots, &incoming)?;
    if roots.len() < 2 {
        return Ok(None);
    }
    if roots.len() == before {
        return Ok(Some((known, Vec::new())));
    }
    // A new lineage: ids may move, so the rows of this document and of everything that
    // refers to it are written again from scratch.
    let mut old: Vec<String> = known.iter().map(|l| l.entity.clone()).collect();
    if old.is_empty() {
        old.push(doc_id.to_string());
    }
    let lineages = lineage::register(conn, doc_id, &roots)?;
    cols.set_clashes(Some(true));
    let mut ids = old.clone();
    ids.extend(lineages.iter().map(|l| l.entity.clone()));
    let referrers = lineage::referrers(conn, &ids)?;
    let kind = Kind::of_id(doc_id).expect("caller checked the kind");
    for e in &old {
        store::delete_entity_rows(conn, kind, e)?;
    }
    Ok(Some((lineages, referrers)))
}

/// Applies changes to a clashed document, lineage by lineage, and materializes each lineage
/// under its own id; then materializes again the entities that refer to it.
fn apply_lineages(
    conn: &rusqlite::Connection,
    cols: &mut Columns,
    kind: Kind,
    lineages: Vec<lineage::Lineage>,
    referrers: Vec<String>,
    pending: Vec<HashedChange>,
    new: Vec<HashedChange>,
) -> Result<()> {
    let mut docs: Vec<AutoCommit> = lineages
        .iter()
        .map(|l| Ok(store::load_doc(conn, &l.storage)?.unwrap_or_else(AutoCommit::new)))
        .collect::<Result<_>>()?;
    let roots: Vec<Vec<u8>> = lineages.iter().map(|l| l.root.clone()).collect();
    let was_pending: std::collections::HashSet<i64> = pending.iter().map(|(h, _)| *h).collect();
    let all: Vec<HashedChange> = pending.into_iter().chain(new).collect();
    let (groups, unplaced) = lineage::route(&mut docs, &roots, all);
    mark_unapplied(conn, unplaced.iter().map(|(h, _)| h))?;
    for ((l, d), group) in lineages.iter().zip(docs.iter_mut()).zip(groups) {
        let merged_now = group.iter().any(|(_, c)| c.deps().len() > 1);
        d.apply_changes(group.iter().map(|(_, c)| c.clone()))?;
        for (h, c) in &group {
            let applied = d.get_change_by_hash(&c.hash()).is_some();
            match (applied, was_pending.contains(h)) {
                (true, true) => {
                    conn.prepare_cached("UPDATE crdt_changes SET applied = 1 WHERE id = ?1")?
                        .execute([h])?;
                }
                (false, false) => mark_unapplied(conn, std::iter::once(h))?,
                _ => {}
            }
        }
        if d.get_heads().is_empty() {
            continue; // nothing of this lineage has arrived in applicable form yet
        }
        let merged = store::save_doc(conn, &l.storage, kind, d, merged_now)?;
        store::materialize_received(conn, cols, &l.entity, kind, d, merged)?;
    }
    for e in referrers {
        if Kind::of_id(&e) == Some(Kind::Issue) {
            cols.deps_dirty.insert(e.clone()); // its edges may point at a moved id
        }
        store::rematerialize(conn, cols, &e)?;
    }
    Ok(())
}
