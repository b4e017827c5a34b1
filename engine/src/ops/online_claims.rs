//! Claims granted online (docs/sync-loop.md, "Claims granted online"): while the hub answers,
//! `td start` takes an issue with one conditional write on the hub, so two machines starting
//! the same issue at the same moment learn at once which one holds it, instead of after the
//! fact from the deterministic offline rule (docs/merge-rules.md, rule 3).
//!
//! The hub learns neither the issue id nor who claims it: both are keyed tags derived from the
//! epoch key writers seal with (a key the hub never holds). Members that share the epoch
//! compute the same tags; a member can name a holder by tagging each roster member's
//! fingerprint. This module computes the tags and judges what the hub answered; the hub write
//! itself is the transport's (`HubClient::claim`).
//!
//! A claim on the hub is only a tie-break for claims that have not met yet: it is honoured
//! while it is fresh ([`CLAIM_GRACE_MS`], time for the holder's own change to reach the hub)
//! or while this replica, freshly pulled, shows the holder's machine working the issue. A
//! claim whose holder has since handed the issue on (reviewed, closed, unstarted, swept) is
//! stale and taken over, so nothing ever has to release a claim on the hub, and a machine that
//! vanished holds nothing. A claim whose holder is no roster member (a row planted by whoever
//! holds the hub's token) is never honoured.

use hkdf::Hkdf;
use sha2::Sha256;

use crate::error::Result;
use crate::identity::{fingerprint_of, session_machine};
use crate::keyring::{self, WriterEpoch};
use crate::project::Project;
use crate::roster;

/// How long a claim on the hub is honoured although this replica does not show its holder
/// working the issue: the holder's `td start` writes the claim, then commits and pushes its
/// change (within about a second with a sync loop or autosync), so two minutes is generous.
pub const CLAIM_GRACE_MS: i64 = 120_000;

/// Length of a claim tag (bytes).
pub const TAG_LEN: usize = 16;

/// The keyed tags one claim travels as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimTags {
    /// The issue's tag.
    pub issue: [u8; TAG_LEN],
    /// This machine's tag.
    pub holder: [u8; TAG_LEN],
}

/// What the hub said after the conditional write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HubClaim {
    /// The claim is this machine's (new, refreshed or forced).
    Granted,
    /// Another machine's claim stands on the hub.
    HeldBy {
        /// The holder's tag.
        holder: [u8; TAG_LEN],
        /// How old the claim is, by the hub's clock (milliseconds).
        age_ms: i64,
    },
}

/// What `td start` does with a claim another machine holds on the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimVerdict {
    /// Refuse: the holder is working the issue (or claimed it moments ago).
    Refuse {
        /// The holder as the roster names it (`laptop-b (3a99c94433)`). Text from the log: a
        /// front end escapes it.
        holder: String,
        /// How old the claim is (milliseconds).
        age_ms: i64,
    },
    /// The claim is stale: take it over (a forced claim write), then start.
    TakeOver,
}

impl ClaimVerdict {
    /// The error `td start` fails with for a refusal (`None` for a take-over). A conflict,
    /// like a claim another session of this replica holds, and like it overridden by
    /// `--force`.
    pub fn refusal(&self, id: &str) -> Option<crate::error::EngineError> {
        match self {
            ClaimVerdict::TakeOver => None,
            ClaimVerdict::Refuse { holder, age_ms } => {
                Some(crate::error::EngineError::Conflict(format!(
                    "{id} was claimed {} ago by {holder}, through the hub (use --force to take it over)",
                    age_text(*age_ms)
                )))
            }
        }
    }
}

fn age_text(ms: i64) -> String {
    let s = ms / 1000;
    match s {
        ..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        _ => format!("{}h", s / 3600),
    }
}

fn tag(key: &[u8; 32], project: &str, what: &[u8]) -> [u8; TAG_LEN] {
    let hk = Hkdf::<Sha256>::new(Some(project.as_bytes()), key);
    let mut out = [0u8; TAG_LEN];
    // Cannot fail: TAG_LEN is far below HKDF-SHA256's 8,160-byte limit.
    let _ = hk.expand(what, &mut out);
    out
}

fn issue_info(issue_id: &str) -> Vec<u8> {
    [b"td-claim-v1 issue ".as_slice(), issue_id.as_bytes()].concat()
}

fn machine_info(fingerprint: &str) -> Vec<u8> {
    [b"td-claim-v1 machine ".as_slice(), fingerprint.as_bytes()].concat()
}

impl Project {
    /// The epoch key claims are tagged with: the one writers seal with now. `None` for a
    /// project without encryption yet, or one whose epoch is about to rotate (the offline rule
    /// decides then).
    fn claim_key(&self) -> Result<Option<[u8; 32]>> {
        Ok(match keyring::writer_epoch(self.store.conn())? {
            WriterEpoch::Seal(_, key) => Some(key),
            WriterEpoch::Plaintext | WriterEpoch::Rotate => None,
        })
    }

    /// The tags for claiming `issue_id` (a full id) from this machine, or `None` when no
    /// claim can be made online (see `claim_key`).
    pub fn claim_tags(&self, issue_id: &str) -> Result<Option<ClaimTags>> {
        let Some(key) = self.claim_key()? else {
            return Ok(None);
        };
        let project = self.store.project_id()?;
        let me = self.store.identity().fingerprint();
        Ok(Some(ClaimTags {
            issue: tag(&key, &project, &issue_info(issue_id)),
            holder: tag(&key, &project, &machine_info(&me)),
        }))
    }

    /// The tags of online claims to withdraw after a command touched `ids`: those issues
    /// that no session of this machine works now (handed on, closed, unstarted, deleted).
    /// Withdrawing a claim this machine never made changes nothing on the hub.
    pub fn claims_to_release(&self, ids: &[String]) -> Result<Vec<ClaimTags>> {
        let me = self.store.identity().fingerprint();
        let mut out = Vec::new();
        for id in ids {
            let Some(issue) = self.find_issue(id)? else {
                continue;
            };
            let mine = issue.status == "in_progress"
                && session_machine(&issue.implementer_session) == Some(me.as_str());
            if mine {
                continue;
            }
            if let Some(t) = self.claim_tags(&issue.id)? {
                out.push(t);
            }
        }
        Ok(out)
    }

    /// Judges a claim another machine holds on the hub for `issue_id`, against this
    /// replica's state (pull first: a stale claim is one this replica sees handed on).
    pub fn judge_hub_claim(
        &self,
        issue_id: &str,
        holder: &[u8; TAG_LEN],
        age_ms: i64,
    ) -> Result<ClaimVerdict> {
        let Some(key) = self.claim_key()? else {
            return Ok(ClaimVerdict::TakeOver);
        };
        let project = self.store.project_id()?;
        let conn = self.store.conn();
        let mut holder_key = None;
        for id in roster::stored(conn)?.members.keys() {
            let Some(pk) = hex::decode(id)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
            else {
                continue;
            };
            if tag(&key, &project, &machine_info(&fingerprint_of(&pk))) == *holder {
                holder_key = Some(pk);
                break;
            }
        }
        // A holder no roster member's tag matches is not honoured: whoever holds the hub's
        // token can write rows there, and must not be able to keep members from starting work.
        let Some(pk) = holder_key else {
            return Ok(ClaimVerdict::TakeOver);
        };
        let working = self.find_issue(issue_id)?.is_some_and(|issue| {
            issue.status == "in_progress"
                && session_machine(&issue.implementer_session) == Some(fingerprint_of(&pk).as_str())
        });
        if !working && age_ms >= CLAIM_GRACE_MS {
            return Ok(ClaimVerdict::TakeOver);
        }
        let holder = roster::machine_label(conn, &pk)?;
        Ok(ClaimVerdict::Refuse { holder, age_ms })
    }
}
