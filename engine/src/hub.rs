//! The engine's side of hub sync: what to push, where the pull cursor stands, and turning rows
//! read from a hub into verified changes (or quarantined rows). The hub itself is reached by
//! the transport; nothing here does network I/O.
//!
//! A hub stores one row per record, as stored locally (encoded body and signature; a record in
//! the middle of a received run has no signature of its own). Rows are verified like peer
//! batches: grouped into per-actor runs that end at a signed record, chained from the local copy
//! of the actor's previous record, one signature per run.

use std::collections::BTreeMap;

use rusqlite::{params, OptionalExtension};
use sha2::Digest;

use crate::error::{EngineError, Result};
use crate::model::now_timestamp;
use crate::record::{RecordBody, ACTOR_LEN};
use crate::store::{self, Store};
use crate::sync::{SyncStore, WireRun};

/// A decoded hub row waiting to join a run: hub sequence, body, signature.
type Pending = (i64, RecordBody, Vec<u8>);

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
#[derive(Debug, Clone)]
pub struct HubRow {
    /// The hub's sequence number (the pull cursor).
    pub seq: i64,
    /// Encoded record body (untrusted).
    pub body: Vec<u8>,
    /// Signature (untrusted; may be empty mid-run).
    pub signature: Vec<u8>,
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
}

/// What one pull page did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullReport {
    /// Records newly applied.
    pub applied: u64,
    /// Rows quarantined (never applied).
    pub quarantined: u64,
    /// The new cursor.
    pub cursor: i64,
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
                "SELECT pushed_through, pull_cursor, last_push_at, last_pull_at FROM crdt_hub_state WHERE hub = ?1",
                [hub],
                |r| Ok(HubState { pushed_through: r.get(0)?, pull_cursor: r.get(1)?, last_push_at: r.get(2)?, last_pull_at: r.get(3)? }),
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
        self.update_hub_state(hub, "pushed_through", local_id)
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

    /// Up to `limit` records after `after_id`, in log order, extended (by at most `limit`
    /// more) so the last one is signed when possible: pullers verify runs at signed records.
    pub fn outgoing(&self, after_id: i64, limit: usize) -> Result<Vec<OutgoingRecord>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT id, hash, actor, seq, author, body, signature FROM crdt_changes WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after_id, (limit * 2) as i64], |r| {
            Ok(OutgoingRecord {
                local_id: r.get(0)?,
                hash: r.get(1)?,
                actor: r.get(2)?,
                seq: r.get(3)?,
                author: r.get(4)?,
                body: r.get(5)?,
                signature: r.get(6)?,
            })
        })?;
        let mut out: Vec<OutgoingRecord> = rows.collect::<std::result::Result<_, _>>()?;
        if out.len() > limit {
            let cut = (limit..out.len())
                .find(|&i| !out[i - 1].signature.is_empty())
                .unwrap_or(out.len());
            out.truncate(cut);
        }
        Ok(out)
    }

    /// Verifies and applies rows pulled from `hub` (in hub order), quarantining those that can
    /// never apply, and advances the pull cursor. Rows of a run whose signed end has not reached
    /// the hub yet are left for the next pull.
    pub fn apply_hub_rows(&mut self, hub: &str, rows: &[HubRow]) -> Result<PullReport> {
        let project = self.project_id()?;
        let mut quarantine: Vec<(i64, String, Vec<u8>)> = Vec::new();
        // Per actor: rows in order, split where the chain is not contiguous.
        let mut open: BTreeMap<[u8; ACTOR_LEN], Vec<Pending>> = BTreeMap::new();
        let mut runs: Vec<(WireRun, Vec<i64>)> = Vec::new();
        let mut carried: Vec<i64> = Vec::new();
        let close =
            |chain: Vec<Pending>, runs: &mut Vec<(WireRun, Vec<i64>)>, carried: &mut Vec<i64>| {
                // Cut after the last signed record; the rest waits for its signature.
                let signed = chain.iter().rposition(|(_, _, sig)| !sig.is_empty());
                let keep = signed.map_or(0, |i| i + 1);
                carried.extend(chain[keep..].iter().map(|(s, _, _)| *s));
                if keep == 0 {
                    return;
                }
                let first = &chain[0].1;
                let run = WireRun {
                    format: first.format,
                    actor: first.actor,
                    author: first.author,
                    session: first.session.clone(),
                    first_seq: first.seq,
                    changes: chain[..keep]
                        .iter()
                        .map(|(_, b, _)| (b.doc.clone(), b.change.clone()))
                        .collect(),
                    signature: chain[keep - 1].2.clone(),
                };
                runs.push((run, chain[..keep].iter().map(|(s, _, _)| *s).collect()));
            };
        for row in rows {
            let body: RecordBody = match postcard::from_bytes(&row.body) {
                Ok(b) => b,
                Err(e) => {
                    quarantine.push((
                        row.seq,
                        format!("not a td change record ({e})"),
                        row.body.clone(),
                    ));
                    continue;
                }
            };
            if body.project != project {
                quarantine.push((
                    row.seq,
                    format!("belongs to project {}, not {project}", body.project),
                    row.body.clone(),
                ));
                continue;
            }
            let chain = open.entry(body.actor).or_default();
            let fits = chain.last().is_none_or(|(_, last, _)| {
                last.seq + 1 == body.seq
                    && last.author == body.author
                    && last.session == body.session
                    && last.format == body.format
            });
            if !fits {
                let done = std::mem::take(chain);
                close(done, &mut runs, &mut carried);
            }
            open.entry(body.actor)
                .or_default()
                .push((row.seq, body, row.signature.clone()));
        }
        for (_, chain) in std::mem::take(&mut open) {
            close(chain, &mut runs, &mut carried);
        }
        runs.sort_by_key(|(_, seqs)| seqs[0]);
        let wire: Vec<WireRun> = runs.iter().map(|(r, _)| r.clone()).collect();
        let report = self.apply(&wire)?;
        // Rows of refused or stranded runs that did not make it into the log are quarantined.
        let reason = if report.rejected.is_empty() {
            "does not follow the records held: an earlier record of its writer is missing or was quarantined".to_string()
        } else {
            report.rejected.join("; ")
        };
        for idx in &report.incomplete_runs {
            let (run, seqs) = &runs[*idx];
            for (i, hub_seq) in seqs.iter().enumerate() {
                let seq = run.first_seq + i as u64;
                let body = rows
                    .iter()
                    .find(|r| r.seq == *hub_seq)
                    .map(|r| r.body.clone())
                    .unwrap_or_default();
                // Stored means this very record (same hash), not another at its position.
                let stored: Option<Vec<u8>> = self
                    .conn()
                    .prepare_cached("SELECT hash FROM crdt_changes WHERE actor = ?1 AND seq = ?2")?
                    .query_row(params![&run.actor[..], seq as i64], |r| r.get(0))
                    .optional()?;
                let hash: [u8; 32] = sha2::Sha256::digest(&body).into();
                if stored.as_deref() != Some(&hash[..]) {
                    quarantine.push((*hub_seq, reason.clone(), body));
                }
            }
        }
        let cursor = match (carried.iter().min(), rows.last()) {
            (Some(first_carried), _) => first_carried - 1,
            (None, Some(last)) => last.seq,
            (None, None) => self.hub_state(hub)?.pull_cursor,
        };
        let at = now_timestamp();
        for (seq, why, body) in &quarantine {
            // Only the refused row's hash is kept (the row itself stays on the hub): junk rows
            // cannot grow every replica's database.
            let body: [u8; 32] = sha2::Sha256::digest(body).into();
            self.conn().execute(
                "INSERT OR IGNORE INTO crdt_quarantine(hub, hub_seq, reason, body, at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![hub, seq, why, &body[..], at],
            )?;
        }
        self.update_hub_state(hub, "pull_cursor", cursor)?;
        Ok(PullReport {
            applied: report.applied,
            quarantined: quarantine.len() as u64,
            cursor,
        })
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
