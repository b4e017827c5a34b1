//! The engine's side of hub sync: what to push, where the pull cursor stands, and turning rows
//! read from a hub into verified changes (or quarantined rows). The hub itself is reached by
//! the transport; nothing here does network I/O.
//!
//! A hub stores one row per record, as stored locally (encoded body and signature; a record in
//! the middle of a run has no signature of its own). Rows are verified like peer batches:
//! followed along each writer's hash chain from the local copy of its previous record, and cut
//! into runs that each end at a signed record. Pages are bounded in rows and bytes, a page's
//! unsigned tail is completed by reading ahead along its writer's chain, and what cannot apply
//! yet leaves its writer waiting (retried on every pull) instead of holding the cursor back.

use std::collections::{BTreeMap, HashMap};

use rusqlite::{params, OptionalExtension};
use sha2::Digest;

use crate::error::{EngineError, Result};
use crate::identity;
use crate::keyring::{self, HubBody};
use crate::model::now_timestamp;
use crate::record::{RecordBody, ACTOR_LEN, MAX_CHANGE_BYTES};
use crate::store::{self, Store, SIGNED_RUN_RECORDS};
use crate::sync::{SyncStore, WireRun};

type Actor = [u8; ACTOR_LEN];

/// A hub row that went into a run: hub seq, whether it was read in the page, record hash.
type RowRef = (i64, bool, [u8; 32]);

/// Most rows one pull page holds.
pub const PULL_ROWS: usize = 2000;
/// Most bytes of rows one pull page (or one read-ahead range) holds; a first row up to
/// [`MAX_ROW_BYTES`] is always read, so every page makes progress.
pub const PULL_BYTES: usize = 8 * 1024 * 1024;
/// The largest hub row read: a record's change is at most [`MAX_CHANGE_BYTES`], and its other
/// fields are small. A larger row cannot be a record; it is quarantined without being read.
pub const MAX_ROW_BYTES: usize = MAX_CHANGE_BYTES + 64 * 1024;
/// Most writers read ahead for one page.
pub const READ_AHEAD_ACTORS: usize = 32;
/// Most rows read ahead for one writer: honest writers sign at least every
/// [`SIGNED_RUN_RECORDS`] records, so this always reaches the next signed row.
pub const READ_AHEAD_ROWS: usize = 2 * SIGNED_RUN_RECORDS;
/// Most writers a replica keeps waiting per hub (beyond that, junk writers are not tracked).
pub const MAX_WAITING: usize = 1024;

/// A row that may join a writer's chain.
struct Candidate {
    hub_seq: i64,
    /// Read in the page (quarantined when refused) rather than ahead of it.
    paged: bool,
    body: RecordBody,
    hash: [u8; 32],
    signature: Vec<u8>,
}

/// Rows of one writer to read from a hub: sequence numbers after `after` and, when set,
/// before `before`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorRange {
    /// The writer.
    pub actor: [u8; ACTOR_LEN],
    /// Exclusive lower bound.
    pub after: u64,
    /// Exclusive upper bound.
    pub before: Option<u64>,
}

/// The longest chain of candidates from sequence `from` (following `prev`) that ends at a
/// signed row (signatures were checked on arrival). Several rows may claim one position (junk beside an honest row);
/// each candidate is scored from the highest sequence down (the longest verified chain it
/// starts), so a junk alternative never hides the honest chain, in time linear in the rows.
fn best_chain(
    by_seq: &BTreeMap<u64, Vec<Candidate>>,
    from: u64,
    prev: [u8; 32],
) -> Vec<&Candidate> {
    // Score per candidate: length of the longest verified chain it starts (0: none).
    let mut score: HashMap<(u64, usize), usize> = HashMap::new();
    for (seq, list) in by_seq.range(from..).rev() {
        for (i, c) in list.iter().enumerate() {
            let next = next_best(by_seq, &score, seq + 1, c.hash).map_or(0, |(_, n)| n);
            // Signed candidates were verified on arrival.
            let n = if next > 0 || !c.signature.is_empty() {
                next + 1
            } else {
                0
            };
            score.insert((*seq, i), n);
        }
    }
    let mut chain = Vec::new();
    let (mut seq, mut prev) = (from, prev);
    while let Some((i, _)) = next_best(by_seq, &score, seq, prev) {
        let c = &by_seq[&seq][i];
        chain.push(c);
        prev = c.hash;
        seq += 1;
    }
    // Drop an unverified tail (the scores guarantee the chain ends at a verified row).
    while chain.last().is_some_and(|c| c.signature.is_empty()) {
        chain.pop();
    }
    chain
}

/// The candidate at `seq` following `prev` with the best positive score.
fn next_best(
    by_seq: &BTreeMap<u64, Vec<Candidate>>,
    score: &HashMap<(u64, usize), usize>,
    seq: u64,
    prev: [u8; 32],
) -> Option<(usize, usize)> {
    by_seq
        .get(&seq)?
        .iter()
        .enumerate()
        .filter(|(_, c)| c.body.prev == prev)
        .filter_map(|(i, c)| score.get(&(seq, i)).map(|n| (i, *n, c.hub_seq)))
        .filter(|(_, n, _)| *n > 0)
        .min_by_key(|(_, _, hub_seq)| *hub_seq)
        .map(|(i, n, _)| (i, n))
}

/// A record to push: its local position and what the hub stores.
#[derive(Debug, Clone)]
pub struct OutgoingRecord {
    /// Local log position (the push cursor advances over these).
    pub local_id: i64,
    /// Record hash (unique on the hub).
    pub hash: Vec<u8>,
    /// Writer.
    pub actor: Vec<u8>,
    /// Position in the writer's chain.
    pub seq: i64,
    /// Author machine key.
    pub author: Vec<u8>,
    /// Encoded record body.
    pub body: Vec<u8>,
    /// Signature (empty for a record covered by a later record's signature).
    pub signature: Vec<u8>,
}

/// A row read from a hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubRow {
    /// The hub's sequence number (the pull cursor).
    pub seq: i64,
    /// Encoded record body (untrusted).
    pub body: Vec<u8>,
    /// Signature (untrusted; may be empty mid-run).
    pub signature: Vec<u8>,
    /// Size of body and signature as the hub reported it; a row over [`MAX_ROW_BYTES`] is
    /// read without them.
    pub size: u64,
}

/// Local bookkeeping for one hub.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HubState {
    /// Local log position pushed through.
    pub pushed_through: i64,
    /// Hub sequence pulled through.
    pub pull_cursor: i64,
    /// When the last push succeeded.
    pub last_push_at: Option<String>,
    /// When the last pull succeeded.
    pub last_pull_at: Option<String>,
    /// How many rows the hub held at or below the cursor when this replica last pulled.
    pub seen_below: Option<i64>,
    /// The hash of the hub's row at the cursor then (none when the cursor is no row of
    /// this project).
    pub seen_hash: Option<Vec<u8>>,
    /// The last time the hub was found to have lost or renumbered rows, and what was done.
    pub anomaly: Option<String>,
    /// When.
    pub anomaly_at: Option<String>,
}

/// What one pull page did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullReport {
    /// Records newly applied.
    pub applied: u64,
    /// Rows quarantined (never applied).
    pub quarantined: u64,
    /// Rows left waiting (their writer's chain is not complete on the hub yet, or a wrapped
    /// row's key has not arrived).
    pub waiting: u64,
    /// Of those, wrapped rows whose epoch key is not held here yet.
    pub no_key: u64,
    /// The rows left waiting, to pass with the next page (bounded by [`PULL_BYTES`]; what does
    /// not fit is read again when its writer is retried).
    pub carry: Vec<HubRow>,
    /// The new cursor.
    pub cursor: i64,
    /// Conflicts the applied rows brought (ids).
    pub conflicts: Vec<String>,
}

/// One hub row `td sync encrypt-hub` rewrites: its hub sequence, the record's hash (the
/// hub's `hash` column, unchanged) and the wrapped body that replaces the plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedRow {
    /// Hub sequence number.
    pub seq: i64,
    /// The record's hash.
    pub hash: [u8; 32],
    /// The wrapped body (`sealing::wrap_row`).
    pub body: Vec<u8>,
}

/// What to do with one page of a hub's plaintext content rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WrapPage {
    /// Rows to rewrite.
    pub rows: Vec<WrappedRow>,
    /// Rows left as they are: not a record of this project this replica holds (pull first;
    /// junk is quarantined by every reader anyway).
    pub skipped: u64,
    /// Rows kept readable because a membership record depends on them: a writer's chain up
    /// to the signature that vouches for its last roster record (see [`Store::wrap_hub_rows`]).
    pub kept: u64,
}

/// A quarantined hub row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    /// Hub sequence number.
    pub hub_seq: i64,
    /// Why it was refused.
    pub reason: String,
    /// When.
    pub at: String,
}

impl Store {
    /// The bookkeeping for `hub` (defaults before the first sync).
    pub fn hub_state(&self, hub: &str) -> Result<HubState> {
        Ok(self
            .conn()
            .query_row(
                "SELECT pushed_through, pull_cursor, last_push_at, last_pull_at, seen_below, anomaly, anomaly_at, seen_hash FROM crdt_hub_state WHERE hub = ?1",
                [hub],
                |r| Ok(HubState { pushed_through: r.get(0)?, pull_cursor: r.get(1)?, last_push_at: r.get(2)?, last_pull_at: r.get(3)?, seen_below: r.get(4)?, anomaly: r.get(5)?, anomaly_at: r.get(6)?, seen_hash: r.get(7)? }),
            )
            .optional()?
            .unwrap_or_default())
    }

    fn update_hub_state(&mut self, hub: &str, set: &str, value: i64) -> Result<()> {
        self.conn().execute(
            "INSERT OR IGNORE INTO crdt_hub_state(hub) VALUES (?1)",
            [hub],
        )?;
        let at = if set == "pushed_through" {
            "last_push_at"
        } else {
            "last_pull_at"
        };
        self.conn().execute(
            &format!("UPDATE crdt_hub_state SET {set} = max({set}, ?2), {at} = ?3 WHERE hub = ?1"),
            params![hub, value, now_timestamp()],
        )?;
        Ok(())
    }

    /// Records that the hub holds every local record up to `local_id`.
    pub fn mark_pushed(&mut self, hub: &str, local_id: i64) -> Result<()> {
        self.update_hub_state(hub, "pushed_through", local_id)?;
        // td's tools read `action_log.synced_at` to tell what reached the server: once the
        // hub holds every record of this replica, every action so far is synced (stamped as
        // td stamps it, SQLite's UTC `CURRENT_TIMESTAMP`). One statement, so an action
        // committed meanwhile by another process is not marked before its records are pushed.
        self.conn().execute(
            "UPDATE action_log SET synced_at = CURRENT_TIMESTAMP \
             WHERE synced_at IS NULL AND undone = 0 \
             AND ?1 >= (SELECT coalesce(max(id), 0) FROM crdt_changes)",
            [local_id],
        )?;
        Ok(())
    }

    /// Checks the hub against what this replica saw of it: `below` is how many of the
    /// project's rows the hub holds at or below this replica's pull cursor now, `max` its
    /// highest sequence. Rows below the cursor never change on a healthy hub (it only
    /// appends), so a different count, or a highest row below the cursor, means the hub lost
    /// rows or numbered new ones where this replica had read already (restored from a backup,
    /// rolled back, a row deleted). Then everything is pushed again (the hub keeps one row per
    /// hash, so what it holds is not doubled) and read again from the start (what is held
    /// here is skipped), and the finding is kept for `td sync status`. Returns it.
    pub fn hub_audit(
        &mut self,
        hub: &str,
        below: i64,
        max: i64,
        at_cursor: Option<Vec<u8>>,
    ) -> Result<Option<String>> {
        let st = self.hub_state(hub)?;
        if st.pull_cursor == 0 {
            return Ok(None);
        }
        let why = if max < st.pull_cursor {
            format!(
                "the hub's rows end at {max}, below the {} this replica had read: it was rolled back or restored",
                st.pull_cursor
            )
        } else if st.seen_below.is_some_and(|seen| seen != below) {
            format!(
                "the hub holds {below} rows up to {} where it held {}: rows were lost or numbered anew",
                st.pull_cursor,
                st.seen_below.unwrap_or_default()
            )
        } else if st.seen_below.is_some() && st.seen_hash != at_cursor {
            format!(
                "the hub's row {} is not the one this replica read there: rows were lost and numbered anew (rolled back or restored)",
                st.pull_cursor
            )
        } else {
            return Ok(None);
        };
        let note = format!("{why}; pushed everything again and read it again from the start");
        self.conn().execute(
            "UPDATE crdt_hub_state SET pull_cursor = 0, pushed_through = 0, seen_below = NULL, seen_hash = NULL, anomaly = ?2, anomaly_at = ?3 WHERE hub = ?1",
            params![hub, note, now_timestamp()],
        )?;
        Ok(Some(note))
    }

    /// Keeps how many rows the hub held at or below the cursor after a pull (for
    /// [`Store::hub_audit`]).
    pub fn note_hub_seen(
        &mut self,
        hub: &str,
        below: i64,
        at_cursor: Option<Vec<u8>>,
    ) -> Result<()> {
        self.conn().execute(
            "UPDATE crdt_hub_state SET seen_below = ?2, seen_hash = ?3 WHERE hub = ?1",
            params![hub, below, at_cursor],
        )?;
        Ok(())
    }

    /// Local records not pushed to `hub` yet.
    pub fn pending_push(&self, hub: &str) -> Result<i64> {
        let through = self.hub_state(hub)?.pushed_through;
        Ok(self.conn().query_row(
            "SELECT count(*) FROM crdt_changes WHERE id > ?1",
            [through],
            |r| r.get(0),
        )?)
    }

    /// The highest local log position.
    pub fn last_local_id(&self) -> Result<i64> {
        Ok(self
            .conn()
            .query_row("SELECT coalesce(max(id), 0) FROM crdt_changes", [], |r| {
                r.get(0)
            })?)
    }

    /// Local records after position `after_id` to push: at most about `rows` records and
    /// `bytes` bytes, cut after a signed record when one comes within as many again (so a
    /// run's rows travel together), and never more than twice either bound. Rows are read
    /// one at a time, so a log of large records never loads more than the bound.
    pub fn outgoing(
        &self,
        after_id: i64,
        rows: usize,
        bytes: usize,
    ) -> Result<Vec<OutgoingRecord>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT id, hash, actor, seq, author, body, signature FROM crdt_changes WHERE id > ?1 ORDER BY id",
        )?;
        let mut it = stmt.query(params![after_id])?;
        let mut out: Vec<OutgoingRecord> = Vec::new();
        let mut size = 0usize;
        while let Some(r) = it.next()? {
            let rec = OutgoingRecord {
                local_id: r.get(0)?,
                hash: r.get(1)?,
                actor: r.get(2)?,
                seq: r.get(3)?,
                author: r.get(4)?,
                body: r.get(5)?,
                signature: r.get(6)?,
            };
            size += rec.body.len() + rec.signature.len() + rec.hash.len() + rec.author.len();
            let signed = !rec.signature.is_empty();
            out.push(rec);
            let past = out.len() >= rows || size >= bytes;
            let far_past = out.len() >= 2 * rows || size >= 2 * bytes;
            if (past && signed) || far_past {
                break;
            }
        }
        Ok(out)
    }

    /// The writers whose rows this page (with the rows carried from the previous page,
    /// [`PullReport::carry`]) cannot complete, and what to read for them (at most
    /// [`READ_AHEAD_ACTORS`]): a writer whose rows start past what this replica holds (read the
    /// gap); on the last page, a writer whose last row is unsigned (read on to its next signed
    /// row; on a full page its tail is carried to the next page instead, which continues it
    /// without another request); and, on the first page of a pull, writers left waiting by
    /// earlier pulls, least recently tried first.
    pub fn hub_read_ahead(
        &mut self,
        hub: &str,
        page: &[HubRow],
        carried: &[HubRow],
        first_page: bool,
        last_page: bool,
    ) -> Result<Vec<ActorRange>> {
        // Per writer: lowest and highest sequence, and whether the highest is signed.
        let mut seen: BTreeMap<Actor, (u64, u64, bool)> = BTreeMap::new();
        let project = self.project_id()?;
        for row in carried.iter().chain(page) {
            let Some(body) = self.decode_row(&project, row)? else {
                continue;
            };
            let e = seen
                .entry(body.actor)
                .or_insert((body.seq, body.seq, false));
            e.0 = e.0.min(body.seq);
            if body.seq >= e.1 {
                e.1 = body.seq;
                e.2 = !row.signature.is_empty();
            }
        }
        let mut out = Vec::new();
        for (actor, (lo, hi, signed)) in seen {
            let (head, _) = store::actor_head(self.conn(), &actor)?;
            if hi <= head {
                continue;
            }
            if lo > head + 1 {
                out.push(ActorRange {
                    actor,
                    after: head,
                    before: Some(lo),
                });
            }
            if !signed && last_page {
                out.push(ActorRange {
                    actor,
                    after: hi,
                    before: None,
                });
            }
        }
        if !first_page {
            out.truncate(READ_AHEAD_ACTORS);
            return Ok(out);
        }
        let waiting: Vec<Vec<u8>> = self
            .conn()
            .prepare_cached(
                "SELECT actor FROM crdt_hub_waiting WHERE hub = ?1 ORDER BY tried, actor LIMIT ?2",
            )?
            .query_map(params![hub, READ_AHEAD_ACTORS as i64], |r| r.get(0))?
            .collect::<std::result::Result<_, _>>()?;
        for a in waiting {
            let Ok(actor) = Actor::try_from(a.as_slice()) else {
                continue;
            };
            if out.iter().any(|r| r.actor == actor) {
                continue;
            }
            let (head, _) = store::actor_head(self.conn(), &actor)?;
            out.push(ActorRange {
                actor,
                after: head,
                before: None,
            });
        }
        out.truncate(READ_AHEAD_ACTORS);
        Ok(out)
    }

    /// After a read-ahead: each waiting writer read from its head with no upper bound that
    /// the hub has no rows for after that point is complete here, and no longer waiting.
    /// Returns how many writers are still waiting on `hub`.
    pub fn settle_waiting(
        &mut self,
        hub: &str,
        ranges: &[ActorRange],
        rows: &[HubRow],
    ) -> Result<u64> {
        let project = self.project_id()?;
        let mut beyond: std::collections::HashSet<Actor> = std::collections::HashSet::new();
        for row in rows {
            if let Some(body) = self.decode_row(&project, row)? {
                beyond.insert(body.actor);
            }
        }
        for r in ranges.iter().filter(|r| r.before.is_none()) {
            let (head, _) = store::actor_head(self.conn(), &r.actor)?;
            if !beyond.contains(&r.actor) && head >= r.after {
                self.set_waiting(hub, &r.actor, false, "")?;
            }
        }
        Ok(self.conn().query_row(
            "SELECT count(*) FROM crdt_hub_waiting WHERE hub = ?1",
            [hub],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// Verifies and applies rows pulled from `hub`: one page (in hub order) plus rows read
    /// ahead for its writers ([`Store::hub_read_ahead`]). Rows that can never apply are
    /// quarantined (their hash and reason); rows that may apply later (an unsigned stretch
    /// whose signed end is not on the hub yet, a writer with an earlier row missing) leave
    /// their writer waiting, retried on every pull. The cursor always moves to the page's end,
    /// so no row, honest or hostile, can stop a pull (docs/hub.md).
    pub fn apply_hub_rows(
        &mut self,
        hub: &str,
        page: &[HubRow],
        read_ahead: &[HubRow],
    ) -> Result<PullReport> {
        let project = self.project_id()?;
        let mut quarantine: Vec<(i64, String, [u8; 32])> = Vec::new();
        // Candidates per writer and sequence number; several rows may claim one position (a
        // row read twice, or junk), and the chain decides which one follows.
        let mut cands: BTreeMap<Actor, BTreeMap<u64, Vec<Candidate>>> = BTreeMap::new();
        let mut authors: HashMap<Actor, Option<[u8; 32]>> = HashMap::new();
        let in_page = page.iter().map(|r| (r, true));
        // Writers with a wrapped row whose key is not held yet, and those rows (hub seqs).
        let mut no_key: BTreeMap<Actor, std::collections::BTreeSet<i64>> = BTreeMap::new();
        for (row, paged) in in_page.chain(read_ahead.iter().map(|r| (r, false))) {
            let row_hash: [u8; 32] = sha2::Sha256::digest(&row.body).into();
            let refuse = |why: String| paged.then_some((row.seq, why, row_hash));
            if row.size > MAX_ROW_BYTES as u64 {
                quarantine.extend(refuse(format!(
                    "a row of {} bytes, larger than any record can be ({MAX_ROW_BYTES} bytes); not read",
                    row.size
                )));
                continue;
            }
            // A row an admin wrapped (`td sync encrypt-hub`) holds a plaintext record: opened
            // here, then checked as any row. Without its key yet, its writer waits.
            let (bytes, hash) = match keyring::unwrap_hub_body(self.conn(), &project, &row.body)? {
                HubBody::Plain(b) => (std::borrow::Cow::Borrowed(b), row_hash),
                HubBody::Opened(b) => {
                    let h: [u8; 32] = sha2::Sha256::digest(&b).into();
                    (std::borrow::Cow::Owned(b), h)
                }
                HubBody::NoKey(actor) => {
                    no_key.entry(actor).or_default().insert(row.seq);
                    continue;
                }
                HubBody::Refused(why) => {
                    quarantine.extend(refuse(why));
                    continue;
                }
            };
            let body: RecordBody = match postcard::from_bytes(&bytes) {
                Ok(b) => b,
                Err(e) => {
                    quarantine.extend(refuse(format!("not a td change record ({e})")));
                    continue;
                }
            };
            if let Some(named) = crate::sealing::wrapped_writer(&row.body) {
                if named != (body.actor, body.seq) {
                    quarantine.extend(refuse(
                        "a wrapped row names another writer or position than the record it holds"
                            .into(),
                    ));
                    continue;
                }
            }
            if body.project != project {
                quarantine.extend(refuse(format!(
                    "belongs to project {}, not {project}",
                    body.project
                )));
                continue;
            }
            // A signature that does not verify over the row's own hash never will.
            if !row.signature.is_empty()
                && !<[u8; 64]>::try_from(row.signature.as_slice())
                    .is_ok_and(|sig| identity::verify(&body.author, &hash, &sig).is_ok())
            {
                quarantine.extend(refuse(format!(
                    "record {}#{} rejected: bad signature",
                    hex::encode(&body.actor[..4]),
                    body.seq
                )));
                continue;
            }
            // A writer's records are all signed by one machine: the one that signed its first.
            let author = match authors.get(&body.actor) {
                Some(a) => *a,
                None => {
                    let a = self.actor_author(&body.actor)?;
                    authors.insert(body.actor, a);
                    a
                }
            };
            if author.is_some_and(|author| author != body.author) {
                quarantine.extend(refuse(format!(
                    "record {}#{} is signed by another machine than its writer's earlier records",
                    hex::encode(&body.actor[..4]),
                    body.seq
                )));
                continue;
            }
            let at = cands
                .entry(body.actor)
                .or_default()
                .entry(body.seq)
                .or_default();
            if at.iter().all(|c| c.hash != hash) {
                at.push(Candidate {
                    hub_seq: row.seq,
                    paged,
                    body,
                    hash,
                    signature: row.signature.clone(),
                });
            }
        }
        // Per writer: follow the chain from this replica's head; cut it into runs that each end
        // at a signed row, so every signature received is kept (a relay can forward them all).
        let mut runs: Vec<(WireRun, Vec<RowRef>)> = Vec::new();
        let local = self.identity().public_key();
        for (actor, by_seq) in &cands {
            let (head, prev) = store::actor_head(self.conn(), actor)?;
            for (seq, list) in by_seq.range(..=head) {
                for c in list {
                    let stored = store::stored_hash(self.conn(), actor, *seq)?;
                    if stored.is_none_or(|h| h == c.hash) {
                        continue;
                    }
                    if c.body.author == local {
                        // This machine published another record here before its database
                        // was restored (ledger and all): recover (store::note_own_fork).
                        store::note_own_fork(self.conn(), actor, *seq)?;
                    }
                    if c.paged {
                        quarantine.push((
                            c.hub_seq,
                            format!("record {}#{seq} conflicts with the one already held (forked writer)", hex::encode(&actor[..4])),
                            c.hash,
                        ));
                    }
                }
            }
            let chain = best_chain(by_seq, head + 1, prev);
            let mut start = 0;
            for end in 0..chain.len() {
                if chain[end].signature.is_empty() {
                    continue;
                }
                let part = &chain[start..=end];
                let first = &part[0].body;
                let run = WireRun {
                    format: first.format,
                    actor: first.actor,
                    author: first.author,
                    session: first.session.clone(),
                    first_seq: first.seq,
                    changes: part
                        .iter()
                        .map(|c| (c.body.doc.clone(), c.body.change.clone()))
                        .collect(),
                    signature: chain[end].signature.clone(),
                };
                let consistent = part.iter().all(|c| {
                    c.body.author == first.author
                        && c.body.session == first.session
                        && c.body.format == first.format
                });
                let rows = part.iter().map(|c| (c.hub_seq, c.paged, c.hash)).collect();
                if consistent {
                    runs.push((run, rows));
                } else {
                    for (hub_seq, paged, hash) in rows {
                        if paged {
                            quarantine.push((
                                hub_seq,
                                "its chain mixes writers, sessions or formats".into(),
                                hash,
                            ));
                        }
                    }
                    break;
                }
                start = end + 1;
            }
        }
        let wire: Vec<WireRun> = runs.iter().map(|(r, _)| r.clone()).collect();
        self.applying_from_hub = Some(hub.to_string());
        let report = self.apply(&wire);
        self.applying_from_hub = None;
        let report = report?;
        // Rows of refused runs are quarantined: a bad signature, a misattributed session or an
        // oversized change can never become valid.
        // Only a writer's first incomplete run was refused; its later runs could not chain on
        // and stay waiting.
        let reason = report.rejected.join("; ");
        let mut refused: std::collections::HashSet<Actor> = std::collections::HashSet::new();
        for idx in &report.incomplete_runs {
            if reason.is_empty() || !refused.insert(runs[*idx].0.actor) {
                continue;
            }
            for (hub_seq, paged, hash) in &runs[*idx].1 {
                let stored = self
                    .conn()
                    .prepare_cached("SELECT 1 FROM crdt_changes WHERE hash = ?1")?
                    .exists([&hash[..]])?;
                if *paged && !stored {
                    quarantine.push((*hub_seq, reason.clone(), *hash));
                }
            }
        }
        // A writer with rows past its (new) head is waiting; one without is no longer.
        let now = now_timestamp();
        let mut waiting = 0u64;
        let quarantined: std::collections::HashSet<i64> =
            quarantine.iter().map(|(s, _, _)| *s).collect();
        let mut left_rows: std::collections::HashSet<i64> = std::collections::HashSet::new();
        for (actor, by_seq) in &cands {
            let (head, _) = store::actor_head(self.conn(), actor)?;
            let before = left_rows.len();
            left_rows.extend(
                by_seq
                    .range(head + 1..)
                    .flat_map(|(_, l)| l)
                    .filter(|c| !quarantined.contains(&c.hub_seq))
                    .map(|c| c.hub_seq),
            );
            let left = (left_rows.len() - before) as u64;
            waiting += left;
            // A writer is only ever marked waiting here, never cleared: rows of it the cursor
            // passed may lie beyond what this page and its read-ahead (bounded) brought, so
            // having applied everything seen says nothing about the rest. It is cleared when a
            // read-ahead from its head finds nothing more on the hub
            // ([`Store::settle_waiting`]).
            if left > 0 {
                self.set_waiting(hub, actor, true, &now)?;
            }
        }
        let mut keyless = 0u64;
        for (actor, rows) in &no_key {
            keyless += rows.len() as u64;
            self.set_waiting(hub, actor, true, &now)?;
        }
        waiting += keyless;
        let mut carry: Vec<HubRow> = Vec::new();
        let mut carried_bytes = 0u64;
        for row in page.iter().chain(read_ahead) {
            if left_rows.remove(&row.seq) && carried_bytes + row.size <= PULL_BYTES as u64 {
                carried_bytes += row.size;
                carry.push(row.clone());
            }
        }
        let cursor = match page.last() {
            Some(last) => last.seq,
            None => self.hub_state(hub)?.pull_cursor,
        };
        for (seq, why, hash) in &quarantine {
            // Only the refused row's hash is kept (the row itself stays on the hub): junk rows
            // cannot grow every replica's database.
            self.conn().execute(
                "INSERT OR IGNORE INTO crdt_quarantine(hub, hub_seq, reason, body, at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![hub, seq, why, &hash[..], now],
            )?;
        }
        self.update_hub_state(hub, "pull_cursor", cursor)?;
        Ok(PullReport {
            applied: report.applied,
            quarantined: quarantine.len() as u64,
            waiting,
            no_key: keyless,
            carry,
            cursor,
            conflicts: report.conflicts,
        })
    }

    /// Wraps a page of the hub's plaintext content rows under the current epoch
    /// (`td sync encrypt-hub`, docs/encryption.md). Only rows holding a record of this project
    /// that this replica holds itself (same hash) are wrapped, so nothing it has not verified
    /// is vouched for; the roster's rows stay readable. The record inside keeps its hash and
    /// signature, so every replica checks it as before once unwrapped.
    ///
    /// Before encryption, roster operations were written in the writing session's chain
    /// (the founding one with the first issue). A reader verifies a record only along its
    /// writer's chain from the start up to a signed record, so a roster record stays
    /// readable only if every record of its chain up to the signature after it does: those
    /// rows are kept (every member must read the roster without a key, or no key would ever
    /// reach it).
    pub fn wrap_hub_rows(&self, rows: &[HubRow]) -> Result<WrapPage> {
        let project = self.project_id()?;
        let (epoch, key) = match keyring::writer_epoch(self.conn())? {
            keyring::WriterEpoch::Seal(id, key) => (id, key),
            _ => {
                return Err(EngineError::InvalidInput(
                    "this replica has no current content key to wrap with; run 'td member rotate-key' first".into(),
                ))
            }
        };
        let mut page = WrapPage::default();
        // Per writer: the last position that must stay readable (0: none).
        let mut keep: HashMap<Actor, u64> = HashMap::new();
        for row in rows {
            let body: Option<RecordBody> = (row.size <= MAX_ROW_BYTES as u64
                && row.body.first() == Some(&crate::record::PLAIN_FORMAT))
            .then(|| postcard::from_bytes(&row.body).ok())
            .flatten();
            let hash: [u8; 32] = sha2::Sha256::digest(&row.body).into();
            let held = self
                .conn()
                .prepare_cached("SELECT 1 FROM crdt_changes WHERE hash = ?1")?
                .exists([&hash[..]])?;
            match body {
                Some(b) if held && b.project == project && b.doc != crate::roster::ROSTER_ID => {
                    let through = match keep.get(&b.actor) {
                        Some(t) => *t,
                        None => {
                            let t = self.readable_through(&b.actor)?;
                            keep.insert(b.actor, t);
                            t
                        }
                    };
                    if b.seq <= through {
                        page.kept += 1;
                        continue;
                    }
                    page.rows.push(WrappedRow {
                        seq: row.seq,
                        hash,
                        body: crate::sealing::wrap_row(
                            &epoch, &key, &project, &b.actor, b.seq, &row.body,
                        ),
                    })
                }
                _ => page.skipped += 1,
            }
        }
        Ok(page)
    }

    /// The last position of `actor`'s chain a reader must read to verify its last roster
    /// record: the first signed record at or after it (the whole chain when none is signed
    /// yet), or 0 when the writer wrote no roster record.
    fn readable_through(&self, actor: &Actor) -> Result<u64> {
        let last_roster: Option<i64> = self
            .conn()
            .prepare_cached("SELECT max(seq) FROM crdt_changes WHERE actor = ?1 AND doc_id = ?2")?
            .query_row(params![&actor[..], crate::roster::ROSTER_ID], |r| r.get(0))?;
        let Some(k) = last_roster else {
            return Ok(0);
        };
        let signed: Option<i64> = self
            .conn()
            .prepare_cached(
                "SELECT min(seq) FROM crdt_changes WHERE actor = ?1 AND seq >= ?2 AND length(signature) > 0",
            )?
            .query_row(params![&actor[..], k], |r| r.get(0))?;
        Ok(signed.map_or(u64::MAX, |s| s as u64))
    }

    /// A row's record body (unwrapped when an admin wrapped it), or `None` when it is too
    /// large, is no record, or is wrapped under a key not held here.
    fn decode_row(&self, project: &str, row: &HubRow) -> Result<Option<RecordBody>> {
        if row.size > MAX_ROW_BYTES as u64 {
            return Ok(None);
        }
        Ok(
            match keyring::unwrap_hub_body(self.conn(), project, &row.body)? {
                HubBody::Plain(b) => postcard::from_bytes(b).ok(),
                HubBody::Opened(b) => postcard::from_bytes(&b).ok(),
                HubBody::NoKey(_) | HubBody::Refused(_) => None,
            },
        )
    }

    fn actor_author(&self, actor: &Actor) -> Result<Option<[u8; 32]>> {
        let a: Option<Vec<u8>> = self
            .conn()
            .prepare_cached("SELECT author FROM crdt_actors WHERE actor = ?1")?
            .query_row([&actor[..]], |r| r.get(0))
            .optional()?;
        Ok(a.and_then(|a| a.try_into().ok()))
    }

    /// This machine's writers with records not pushed to `hub` yet, each with the position
    /// before its first such record: before pushing, their rows already on the hub are read,
    /// so a fork of this machine's own writer (a restored database) is found and recovered
    /// before it is published.
    pub fn own_unpushed(&self, hub: &str) -> Result<Vec<ActorRange>> {
        let through = self.hub_state(hub)?.pushed_through;
        let local = self.identity().public_key();
        let rows: Vec<(Vec<u8>, i64)> = self
            .conn()
            .prepare_cached(
                "SELECT actor, min(seq) FROM crdt_changes WHERE id > ?1 AND author = ?2 GROUP BY actor LIMIT ?3",
            )?
            .query_map(params![through, &local[..], READ_AHEAD_ACTORS as i64], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<std::result::Result<_, _>>()?;
        Ok(rows
            .into_iter()
            .filter_map(|(a, seq)| {
                Some(ActorRange {
                    actor: Actor::try_from(a.as_slice()).ok()?,
                    after: (seq - 1).max(0) as u64,
                    before: None,
                })
            })
            .collect())
    }

    /// Marks `actor` as waiting for more rows from `hub` (or no longer). A writer that keeps
    /// waiting moves to the back of the retry queue; the queue is bounded, so junk writers
    /// cannot make pulls slower without limit.
    fn set_waiting(&mut self, hub: &str, actor: &Actor, waiting: bool, now: &str) -> Result<()> {
        if !waiting {
            self.conn()
                .prepare_cached("DELETE FROM crdt_hub_waiting WHERE hub = ?1 AND actor = ?2")?
                .execute(params![hub, &actor[..]])?;
            return Ok(());
        }
        let n: i64 = self.conn().query_row(
            "SELECT count(*) FROM crdt_hub_waiting WHERE hub = ?1",
            [hub],
            |r| r.get(0),
        )?;
        let sql = if n < MAX_WAITING as i64 {
            "INSERT INTO crdt_hub_waiting(hub, actor, since, tried) VALUES (?1, ?2, ?3, ?3) \
             ON CONFLICT(hub, actor) DO UPDATE SET tried = excluded.tried"
        } else {
            "UPDATE crdt_hub_waiting SET tried = ?3 WHERE hub = ?1 AND actor = ?2"
        };
        self.conn()
            .prepare_cached(sql)?
            .execute(params![hub, &actor[..], now])?;
        Ok(())
    }

    /// Writers left waiting for rows from `hub`: (writer, since when), oldest first.
    pub fn hub_waiting(&self, hub: &str) -> Result<Vec<(String, String)>> {
        let mut stmt = self.conn().prepare(
            "SELECT actor, since FROM crdt_hub_waiting WHERE hub = ?1 ORDER BY since, actor",
        )?;
        let rows = stmt.query_map([hub], |r| {
            Ok((hex::encode(r.get::<_, Vec<u8>>(0)?), r.get(1)?))
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Rows from `hub` that were refused.
    pub fn quarantined(&self, hub: &str) -> Result<Vec<Quarantined>> {
        let mut stmt = self.conn().prepare(
            "SELECT hub_seq, reason, at FROM crdt_quarantine WHERE hub = ?1 ORDER BY hub_seq",
        )?;
        let rows = stmt.query_map([hub], |r| {
            Ok(Quarantined {
                hub_seq: r.get(0)?,
                reason: r.get(1)?,
                at: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Whether this replica has no changes at all (it may still adopt a project).
    pub fn is_fresh(&self) -> Result<bool> {
        Ok(!self
            .conn()
            .prepare_cached("SELECT 1 FROM crdt_changes LIMIT 1")?
            .exists([])?)
    }

    /// Switches a fresh replica to `project` (joining a hub's project).
    pub fn adopt(&mut self, project: &str) -> Result<()> {
        if !self.is_fresh()? {
            return Err(EngineError::InvalidInput(format!(
                "this replica already has changes of project {}; it cannot join {project}",
                self.project_id()?
            )));
        }
        self.adopt_project(project)
    }

    /// Reads a `crdt_meta` value (hub url and similar replica settings).
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        store::meta(self.conn(), key)
    }
}
