//! The sync round as a sans-IO state machine: frames in, frames out. Storage is reached through
//! [`SyncStore`]; there are no sockets, clocks or threads here, so every path is testable
//! deterministically (the transport only moves the bytes).

use crate::error::{EngineError, Result};
use std::collections::HashMap;

use crate::record::ACTOR_LEN;
use crate::sync::wire::{self, Message, Summary, WireRun, PROTOCOL_MAX, PROTOCOL_MIN, WINDOW};

/// Per actor, the highest sequence number the peer holds or has been sent this round.
pub type PeerHolds = HashMap<[u8; ACTOR_LEN], u64>;

/// What a replica tells its peer about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalState {
    /// Project id.
    pub project: String,
    /// No changes yet.
    pub fresh: bool,
    /// Per-actor high-water marks.
    pub summary: Summary,
}

/// Outcome of applying one received batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Records newly stored and applied.
    pub applied: u64,
    /// Records already held.
    pub duplicates: u64,
    /// Records that cannot be applied yet (their actor's earlier records are missing); a later
    /// round delivers them in order.
    pub deferred: u64,
    /// Records stored but held: their author is not (or no longer) accepted by the roster
    /// here. They are applied if an admission arrives.
    pub held: u64,
    /// What was held, per machine and why (told to the sender with the refusals).
    pub held_notes: Vec<String>,
    /// Records stored but set aside: their document refuses their change (a crafted second
    /// change at one of its writer's positions), the same way on every replica.
    pub set_aside: u64,
    /// Refused records, with reasons.
    pub rejected: Vec<String>,
    /// Indices (into the applied batch) of runs with records refused or deferred.
    pub incomplete_runs: Vec<usize>,
    /// Conflicts the applied records brought (ids of unresolved conflicts that were not there
    /// before), so a front end can say "2 new conflicts" and show them.
    pub conflicts: Vec<String>,
}

/// The storage side of a sync round.
pub trait SyncStore {
    /// Project, freshness and summary.
    fn local_state(&mut self) -> Result<LocalState>;
    /// Switches this (fresh) replica to the peer's project.
    fn adopt_project(&mut self, project: &str) -> Result<()>;
    /// The next records the peer lacks after `cursor` (an opaque position, 0 to begin), at most
    /// about `max_bytes`/`max_records`, as runs that each end at a signed record; advances
    /// `peer` past what it returns. Returns the runs and the new cursor, or no runs when there
    /// is nothing more.
    fn missing_after(
        &mut self,
        peer: &mut PeerHolds,
        cursor: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<(Vec<WireRun>, u64)>;
    /// Verifies and applies received runs in one transaction.
    fn apply(&mut self, runs: &[WireRun]) -> Result<ApplyReport>;
    /// Whether this replica may send its records to the machine `key` (a member of its roster,
    /// or, before it holds a roster, the peer the user pinned).
    fn may_send_to(&mut self, key: &[u8; 32]) -> Result<bool>;
}

/// Totals of one round, as the CLI reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoundStats {
    /// Records sent.
    pub sent: u64,
    /// Records received and applied.
    pub received: u64,
    /// Records received that were already held.
    pub duplicates: u64,
    /// Records we refused (reasons).
    pub rejected_here: Vec<String>,
    /// Records the peer refused or held (reasons; held ones start with "held:").
    pub rejected_by_peer: Vec<String>,
    /// Records received and held here (their machine is not accepted by the roster).
    pub held: u64,
    /// Frame bytes sent.
    pub bytes_out: u64,
    /// Frame bytes received.
    pub bytes_in: u64,
    /// Conflicts recorded here by what was received this round (ids).
    pub conflicts: Vec<String>,
    /// Records the peer holds that this replica lacks, from the two summaries (what a
    /// progress line expects to receive; 0 before the peer's `Hello`).
    pub expected_in: u64,
}

/// One side of a sync round.
pub struct SyncSession<S: SyncStore> {
    store: S,
    local: Option<LocalState>,
    remote_summary: Option<PeerHolds>,
    cursor: u64,
    in_flight: usize,
    sent_done: bool,
    remote_done: bool,
    failed: bool,
    stats: RoundStats,
    peer: Option<[u8; 32]>,
    /// A peer this replica does not admit may still send (its join): we send it nothing.
    allow_receive_only: bool,
    receive_only: bool,
    /// The highest protocol version this side offers ([`PROTOCOL_MAX`] unless capped).
    max_version: u16,
    /// The version both sides speak, once the peer's `Hello` arrived.
    version: u16,
}

/// Error codes sent in `Error` frames.
pub mod codes {
    /// No common protocol version.
    pub const INCOMPATIBLE_VERSION: &str = "incompatible_version";
    /// Replicas of different projects.
    pub const PROJECT_MISMATCH: &str = "project_mismatch";
    /// A frame that is not a message, or a message out of place.
    pub const BAD_FRAME: &str = "bad_frame";
    /// The receiver failed internally.
    pub const INTERNAL: &str = "internal";
    /// The peer's machine is not a member of this replica's project.
    pub const NOT_A_MEMBER: &str = "not_a_member";
}

/// A failed round: the message for the user, and the frame (if any) to tell the peer.
#[derive(Debug)]
pub struct RoundError {
    /// What went wrong.
    pub error: EngineError,
    /// An `Error` frame to send before closing, when the peer should be told.
    pub notify: Option<Vec<u8>>,
}

impl<S: SyncStore> SyncSession<S> {
    /// A new round over `store`.
    pub fn new(store: S) -> Self {
        SyncSession {
            store,
            local: None,
            remote_summary: None,
            cursor: 0,
            in_flight: 0,
            sent_done: false,
            remote_done: false,
            failed: false,
            stats: RoundStats::default(),
            peer: None,
            allow_receive_only: false,
            receive_only: false,
            max_version: PROTOCOL_MAX,
            version: 0,
        }
    }

    /// A round with a machine that is not a member here but may be joining (an invite is
    /// open): its records are received (and held until its join admits it); nothing is sent.
    pub fn receive_only(store: S, peer: [u8; 32]) -> Self {
        let mut s = Self::with_peer(store, peer);
        s.allow_receive_only = true;
        s
    }

    /// A round with the machine `peer` (proven by the transport): once both sides know they
    /// share a project, nothing is sent unless the roster admits that machine.
    pub fn with_peer(store: S, peer: [u8; 32]) -> Self {
        let mut s = Self::new(store);
        s.peer = Some(peer);
        s
    }

    /// The round's totals so far.
    pub fn stats(&self) -> &RoundStats {
        &self.stats
    }

    /// The machine on the other side, when the round is bound to one.
    pub fn peer(&self) -> Option<[u8; 32]> {
        self.peer
    }

    /// Gives the store back (after the round).
    pub fn into_store(self) -> S {
        self.store
    }

    /// True when both sides have sent everything and every batch we sent is acknowledged.
    pub fn is_finished(&self) -> bool {
        !self.failed && self.sent_done && self.remote_done && self.in_flight == 0
    }

    /// The opening frames (our `Hello`).
    pub fn start(&mut self) -> std::result::Result<Vec<Vec<u8>>, RoundError> {
        let local = self
            .store
            .local_state()
            .map_err(|e| self.fail(e, codes::INTERNAL))?;
        let hello = Message::Hello {
            min_version: PROTOCOL_MIN,
            max_version: self.max_version,
            project: local.project.clone(),
            fresh: local.fresh,
            summary: wire::bounded_summary(&local.summary),
        };
        self.local = Some(local);
        Ok(vec![self.out(&hello)])
    }

    /// Offers at most protocol `version` (at least [`PROTOCOL_MIN`]): a td that speaks only
    /// version 1 is reproduced this way, to test that packed and plain peers interoperate.
    pub fn cap_version(&mut self, version: u16) {
        self.max_version = version.clamp(PROTOCOL_MIN, PROTOCOL_MAX);
    }

    /// The protocol version agreed with the peer (0 before its `Hello`).
    pub fn version(&self) -> u16 {
        self.version
    }

    /// Handles one received frame payload; returns frames to send.
    pub fn receive(&mut self, payload: &[u8]) -> std::result::Result<Vec<Vec<u8>>, RoundError> {
        self.stats.bytes_in += payload.len() as u64 + 4;
        let mut msg = wire::decode(payload).map_err(|e| {
            self.fail(
                EngineError::InvalidInput(format!("peer sent {e}")),
                codes::BAD_FRAME,
            )
        })?;
        if let Message::Packed { zstd } = &msg {
            let unpacked = if self.version < wire::PACKED_VERSION {
                Err(wire::FrameError::Malformed(
                    "a packed message before protocol 2 was agreed".into(),
                ))
            } else {
                wire::unpack(zstd)
            };
            msg = unpacked.map_err(|e| {
                self.fail(
                    EngineError::InvalidInput(format!("peer sent {e}")),
                    codes::BAD_FRAME,
                )
            })?;
        }
        match msg {
            Message::Hello {
                min_version,
                max_version,
                project,
                fresh,
                summary,
            } => {
                if self.remote_summary.is_some() {
                    return Ok(vec![]); // duplicate hello
                }
                if summary.len() > wire::MAX_SUMMARY {
                    return Err(self.fail(
                        EngineError::InvalidInput(format!(
                            "peer's summary lists {} writers, more than the {} this td reads",
                            summary.len(),
                            wire::MAX_SUMMARY
                        )),
                        codes::BAD_FRAME,
                    ));
                }
                if max_version < PROTOCOL_MIN
                    || min_version > self.max_version
                    || min_version > max_version
                {
                    return Err(self.fail(
                        EngineError::InvalidInput(format!(
                            "incompatible peer: it speaks sync protocol {min_version}..={max_version}, this td speaks {PROTOCOL_MIN}..={PROTOCOL_MAX}; upgrade the older td"
                        )),
                        codes::INCOMPATIBLE_VERSION,
                    ));
                }
                self.version = max_version.min(self.max_version);
                self.settle_project(&project, fresh)?;
                if let Some(key) = self.peer {
                    let ok = self
                        .store
                        .may_send_to(&key)
                        .map_err(|e| self.fail(e, codes::INTERNAL))?;
                    if !ok && self.allow_receive_only {
                        self.receive_only = true;
                    } else if !ok {
                        return Err(self.fail(
                            EngineError::InvalidInput(format!(
                                "machine {} is not a member of this project: nothing was sent (an admin admits it with 'td member add {}')",
                                crate::identity::fingerprint_of(&key),
                                hex::encode(key)
                            )),
                            codes::NOT_A_MEMBER,
                        ));
                    }
                }
                let mine: HashMap<[u8; ACTOR_LEN], u64> = self
                    .local
                    .as_ref()
                    .map(|l| l.summary.iter().copied().collect())
                    .unwrap_or_default();
                self.stats.expected_in = summary
                    .iter()
                    .map(|(a, max)| max.saturating_sub(mine.get(a).copied().unwrap_or(0)))
                    .fold(0u64, |t, n| t.saturating_add(n));
                self.remote_summary = Some(summary.into_iter().collect());
                self.send_next()
            }
            Message::Batch { runs } => {
                let report = self
                    .store
                    .apply(&runs)
                    .map_err(|e| self.fail(e, codes::INTERNAL))?;
                self.stats.received += report.applied;
                self.stats.duplicates += report.duplicates;
                self.stats.held += report.held;
                self.stats
                    .conflicts
                    .extend(report.conflicts.iter().cloned());
                self.stats
                    .rejected_here
                    .extend(report.rejected.iter().cloned());
                let mut told = report.rejected;
                told.extend(report.held_notes);
                let ack = Message::Ack {
                    applied: report.applied,
                    rejected: told,
                };
                Ok(vec![self.out(&ack)])
            }
            Message::Ack { rejected, .. } => {
                if self.in_flight == 0 {
                    return Ok(vec![]); // duplicate or stray ack
                }
                self.in_flight -= 1;
                self.stats.rejected_by_peer.extend(rejected);
                self.send_next()
            }
            Message::Done { .. } => {
                self.remote_done = true;
                Ok(vec![])
            }
            Message::Packed { .. } => Err(self.fail(
                EngineError::InvalidInput("peer sent a packed message inside another".into()),
                codes::BAD_FRAME,
            )),
            Message::Error { code, message } => {
                self.failed = true;
                let err = match code.as_str() {
                    codes::PROJECT_MISMATCH | codes::INCOMPATIBLE_VERSION => {
                        EngineError::InvalidInput(message)
                    }
                    _ => EngineError::InvalidInput(format!("peer ended the round: {message}")),
                };
                Err(RoundError {
                    error: err,
                    notify: None,
                })
            }
        }
    }

    fn settle_project(
        &mut self,
        remote: &str,
        remote_fresh: bool,
    ) -> std::result::Result<(), RoundError> {
        let local = self.local.clone().expect("start() runs before receive()");
        let theirs = [remote.to_string()];
        match crate::adoption::decide(&local.project, local.fresh, &theirs, remote_fresh, None) {
            crate::adoption::Adoption::Keep => Ok(()),
            crate::adoption::Adoption::Adopt(p) => {
                self.store
                    .adopt_project(&p)
                    .map_err(|e| self.fail(e, codes::INTERNAL))?;
                if let Some(l) = &mut self.local {
                    l.project = p;
                }
                Ok(())
            }
            crate::adoption::Adoption::Choose(_) | crate::adoption::Adoption::Mismatch => Err(self.fail(
                EngineError::InvalidInput(format!(
                    "project mismatch: this replica belongs to {}, the peer to {remote}; to bring this replica's work into the peer's project, get an invite from one of its admins ('td member invite') and run 'td join <code> --adopt'",
                    local.project
                )),
                codes::PROJECT_MISMATCH,
            )),
        }
    }

    fn send_next(&mut self) -> std::result::Result<Vec<Vec<u8>>, RoundError> {
        let mut frames = Vec::new();
        if self.receive_only && !self.sent_done {
            self.sent_done = true;
            let done = Message::Done { sent: 0 };
            frames.push(self.out(&done));
        }
        while !self.sent_done && self.in_flight < WINDOW {
            let Some(mut peer) = self.remote_summary.take() else {
                break;
            };
            let found = self.store.missing_after(
                &mut peer,
                self.cursor,
                wire::BATCH_RECORDS,
                wire::BATCH_BYTES,
            );
            self.remote_summary = Some(peer);
            let (runs, cursor) = found.map_err(|e| self.fail(e, codes::INTERNAL))?;
            self.cursor = cursor;
            if runs.is_empty() {
                self.sent_done = true;
                let done = Message::Done {
                    sent: self.stats.sent,
                };
                frames.push(self.out(&done));
                break;
            }
            self.stats.sent += runs.iter().map(|r| r.changes.len() as u64).sum::<u64>();
            self.in_flight += 1;
            let batch = Message::Batch { runs };
            let msg = if self.version >= wire::PACKED_VERSION {
                wire::pack(&batch)
            } else {
                batch
            };
            frames.push(self.out(&msg));
        }
        Ok(frames)
    }

    fn out(&mut self, msg: &Message) -> Vec<u8> {
        let frame = wire::encode(msg);
        self.stats.bytes_out += frame.len() as u64;
        frame
    }

    fn fail(&mut self, error: EngineError, code: &str) -> RoundError {
        self.failed = true;
        let notify = wire::encode(&Message::Error {
            code: code.to_string(),
            message: error.to_string(),
        });
        RoundError {
            error,
            notify: Some(notify),
        }
    }
}

impl<T: SyncStore + ?Sized> SyncStore for &mut T {
    fn local_state(&mut self) -> Result<LocalState> {
        (**self).local_state()
    }
    fn adopt_project(&mut self, project: &str) -> Result<()> {
        (**self).adopt_project(project)
    }
    fn missing_after(
        &mut self,
        peer: &mut PeerHolds,
        cursor: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<(Vec<WireRun>, u64)> {
        (**self).missing_after(peer, cursor, max_records, max_bytes)
    }
    fn apply(&mut self, runs: &[WireRun]) -> Result<ApplyReport> {
        (**self).apply(runs)
    }
    fn may_send_to(&mut self, key: &[u8; 32]) -> Result<bool> {
        (**self).may_send_to(key)
    }
}
