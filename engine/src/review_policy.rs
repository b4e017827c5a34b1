//! The review policy: who may approve, close, and see an issue as reviewable. One module, so
//! every surface (`td approve`, `td close`, `td reviewable`, `td usage`, and later `td serve`
//! and `td monitor`) decides the same way.
//!
//! The rules are td's (`internal/reviewpolicy` and the CLI wrappers around it in td v0.62),
//! in four modes chosen with `td feature set review_policy_mode <mode>`:
//!
//! - **trusted** (the default): an independent session approves; a session that implemented
//!   the issue may approve only by saying who reviewed it (`--reviewed-by`) or by an audited
//!   `--self-review` with a reason.
//! - **delegated**: only implementation independence counts; an implementer can never approve.
//! - **balanced**: like delegated, plus the creator exception (a creator who never implemented
//!   may approve another session's work, with a reason); other prior involvement blocks.
//! - **strict**: any prior involvement (created, started, reviewed) blocks approval.
//!
//! Minor issues bypass every restriction. The functions here are pure: the facts come from
//! [`facts`], which reads `issue_session_history` and `issue_reviews`.

use std::fmt;
use std::str::FromStr;

use rusqlite::{params, Connection};
use serde::Serialize;

use crate::error::{invalid, EngineError, Result};
use crate::model::Status;
use crate::query::Issue;

/// The feature name that selects the mode (`td feature set review_policy_mode …`).
pub const FEATURE: &str = "review_policy_mode";

/// td's review policy modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Independent review preferred; an implementer may record an attributed or audited
    /// self-review. td's default.
    #[default]
    Trusted,
    /// Implementation independence is the only requirement.
    Delegated,
    /// Delegated plus the creator exception; other involvement blocks.
    Balanced,
    /// Any prior involvement blocks.
    Strict,
}

impl Mode {
    /// Every mode, in td's order of strictness (loosest first).
    pub const ALL: [Mode; 4] = [Mode::Trusted, Mode::Delegated, Mode::Balanced, Mode::Strict];

    /// The spelling stored in config and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Trusted => "trusted",
            Mode::Delegated => "delegated",
            Mode::Balanced => "balanced",
            Mode::Strict => "strict",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = EngineError;

    /// Accepts td's spellings (case and surrounding space ignored); anything else is refused,
    /// never defaulted.
    fn from_str(s: &str) -> Result<Mode> {
        let s = s.trim().to_ascii_lowercase();
        Mode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                if s.is_empty() {
                    invalid("review_policy_mode is empty")
                } else {
                    invalid(format!(
                        "unknown review_policy_mode \"{s}\" (want strict|balanced|delegated|trusted)"
                    ))
                }
            })
    }
}

/// What the policy needs to know about one issue and one session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// The issue's id (for messages).
    pub issue_id: String,
    /// The issue's status.
    pub status: Option<Status>,
    /// Minor issues bypass review restrictions.
    pub minor: bool,
    /// The issue's current implementer session (`""` for none).
    pub implementer: String,
    /// The acting session is the issue's current implementer.
    pub is_implementer: bool,
    /// The acting session created the issue.
    pub is_creator: bool,
    /// The acting session started or unstarted the issue at some point.
    pub implemented: bool,
    /// The acting session has any history with the issue (created, started, reviewed, …).
    pub involved: bool,
    /// Any session started or unstarted the issue at some point.
    pub issue_implemented: bool,
    /// An approval review of the issue is active (not superseded).
    pub active_approval: bool,
}

impl Facts {
    /// The facts for `session` acting on `issue`, read from the materialized tables.
    pub fn read(conn: &Connection, issue: &Issue, session: &str) -> Result<Facts> {
        let count = |sql: &str, with_session: bool| -> Result<bool> {
            let n: i64 = if with_session {
                conn.query_row(sql, params![issue.id, session], |r| r.get(0))?
            } else {
                conn.query_row(sql, params![issue.id], |r| r.get(0))?
            };
            Ok(n > 0)
        };
        Ok(Facts {
            issue_id: issue.id.clone(),
            status: Status::parse(&issue.status).ok(),
            minor: issue.minor,
            implementer: issue.implementer_session.clone(),
            is_implementer: !session.is_empty() && issue.implementer_session == session,
            is_creator: !session.is_empty() && issue.creator_session == session,
            implemented: count(IMPLEMENTED_BY, true)?,
            involved: count(INVOLVED, true)?,
            issue_implemented: count(IMPLEMENTED, false)?,
            active_approval: count(ACTIVE_APPROVAL, false)?,
        })
    }

    fn in_review(&self) -> bool {
        self.status == Some(Status::InReview)
    }
}

const IMPLEMENTED_BY: &str = "SELECT count(*) FROM issue_session_history \
    WHERE issue_id = ?1 AND session_id = ?2 AND action IN ('started', 'unstarted')";
const INVOLVED: &str =
    "SELECT count(*) FROM issue_session_history WHERE issue_id = ?1 AND session_id = ?2";
const IMPLEMENTED: &str = "SELECT count(*) FROM issue_session_history \
    WHERE issue_id = ?1 AND action IN ('started', 'unstarted')";
const ACTIVE_APPROVAL: &str = "SELECT count(*) FROM issue_reviews WHERE issue_id = ?1 \
    AND superseded_at IS NULL AND decision IN ('approved', 'approved_by_parent_cascade')";

/// How the acting session vouches for a review it records (`td approve` flags).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attestation {
    /// `--self-review`: the recorder reviewed its own work (needs a reason).
    pub self_review: bool,
    /// `--reviewed-by <who>`: the review is credited to a named party.
    pub reviewed_by: Option<String>,
}

/// A decision: allowed (with what it must record) or refused (with td's message).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// The action may go ahead.
    pub allowed: bool,
    /// Balanced mode's creator exception was used.
    pub creator_exception: bool,
    /// The action needs a `--reason`.
    pub requires_reason: bool,
    /// The review is recorded by a session that implemented the work.
    pub self_review: bool,
    /// Who the review is credited to (echoed from `--reviewed-by`).
    pub attributed_to: Option<String>,
    /// A close allowed by the creator-open bypass (an open issue nobody implemented).
    pub creator_open_bypass: bool,
    /// Why not, in td's words.
    pub refusal: Option<String>,
}

impl Decision {
    fn allow(attributed_to: Option<String>) -> Decision {
        Decision {
            allowed: true,
            attributed_to,
            ..Decision::default()
        }
    }

    fn refuse(msg: String) -> Decision {
        Decision {
            refusal: Some(msg),
            ..Decision::default()
        }
    }
}

const TRUSTED_NEEDS_FLAG: &str = "you implemented this issue, so approving it needs an \
    attribution. If a sub-agent or another party reviewed it, name them: --reviewed-by \
    \"<who>\". If you reviewed your own work, say so: --self-review --reason \"...\"";

/// May the session record an approval (td's `EvaluateReviewerEligibility`)? Refusals carry
/// the policy's own wording; [`approve`] gives the wording `td approve` prints.
pub fn reviewer(mode: Mode, f: &Facts, a: &Attestation) -> Decision {
    let attributed = a.reviewed_by.clone().filter(|s| !s.trim().is_empty());
    if f.minor {
        return Decision::allow(attributed);
    }
    let implementer = f.is_implementer || f.implemented;
    let id = &f.issue_id;
    match mode {
        Mode::Strict => {
            if f.involved || f.is_creator || f.is_implementer {
                return Decision::refuse(involved_message(id));
            }
            Decision::allow(attributed)
        }
        Mode::Balanced => {
            if implementer {
                return Decision::refuse(own_work_message(id));
            }
            let other_implementer = !f.implementer.is_empty() && !f.is_implementer;
            if f.is_creator && other_implementer {
                return Decision {
                    allowed: true,
                    creator_exception: true,
                    requires_reason: true,
                    attributed_to: attributed,
                    ..Decision::default()
                };
            }
            if f.involved {
                return Decision::refuse(involved_message(id));
            }
            Decision::allow(attributed)
        }
        Mode::Delegated => {
            if implementer {
                return Decision::refuse(own_work_message(id));
            }
            Decision::allow(attributed)
        }
        Mode::Trusted => {
            if !implementer {
                return Decision::allow(attributed);
            }
            if attributed.is_some() {
                return Decision {
                    allowed: true,
                    self_review: true,
                    attributed_to: attributed,
                    ..Decision::default()
                };
            }
            if a.self_review {
                return Decision {
                    allowed: true,
                    self_review: true,
                    requires_reason: true,
                    ..Decision::default()
                };
            }
            Decision::refuse(format!("cannot approve: {TRUSTED_NEEDS_FLAG} ({id})"))
        }
    }
}

fn involved_message(id: &str) -> String {
    format!(
        "cannot approve: you were involved with this issue (created, started, or previously \
         worked on) ({id})"
    )
}

fn own_work_message(id: &str) -> String {
    format!("cannot approve: you cannot review your own implementation of {id}")
}

/// What `td approve` decides: [`reviewer`], with td's CLI wording for refusals.
pub fn approve(mode: Mode, f: &Facts, a: &Attestation) -> Decision {
    let mut d = reviewer(mode, f, a);
    if d.allowed || mode == Mode::Trusted {
        return d;
    }
    let id = &f.issue_id;
    d.refusal = Some(
        if mode == Mode::Balanced && (f.is_implementer || f.implemented) {
            format!("cannot approve: you were involved with implementation of {id}")
        } else {
            format!("cannot approve: you were involved with {id} (created, started, or previously worked on)")
        },
    );
    d
}

/// May the session close the issue (td's `EvaluateCloseEligibility`)? In delegated and
/// trusted modes an in-review issue with an active approval closes for anyone, and one
/// without is a direct review-and-close; everything else follows the strict close rule.
pub fn close(mode: Mode, f: &Facts, a: &Attestation) -> Decision {
    if f.minor {
        return Decision::allow(None);
    }
    match mode {
        Mode::Strict | Mode::Balanced => close_strict(f),
        Mode::Delegated | Mode::Trusted => {
            if f.in_review() && f.active_approval {
                return Decision::allow(None);
            }
            if f.in_review() {
                let rev = reviewer(mode, f, if mode == Mode::Trusted { a } else { &NONE });
                return if rev.allowed {
                    Decision {
                        allowed: true,
                        requires_reason: rev.requires_reason,
                        ..Decision::default()
                    }
                } else {
                    Decision::refuse(format!("cannot close: {}", rev.refusal.unwrap_or_default()))
                };
            }
            close_strict(f)
        }
    }
}

const NONE: Attestation = Attestation {
    self_review: false,
    reviewed_by: None,
};

fn close_strict(f: &Facts) -> Decision {
    let id = &f.issue_id;
    if f.is_creator && f.status == Some(Status::Open) && !f.implemented && !f.is_implementer {
        return Decision {
            allowed: true,
            creator_open_bypass: true,
            ..Decision::default()
        };
    }
    if f.is_implementer || f.implemented {
        return Decision::refuse(format!("cannot close own implementation: {id}"));
    }
    if f.is_creator {
        return Decision::refuse(format!(
            "cannot close: you created {id} and it requires review"
        ));
    }
    if f.involved {
        return Decision::refuse(format!("cannot close: you previously worked on {id}"));
    }
    Decision::allow(None)
}

/// What `td close` (the administrative close) decides: td's CLI close rule, which is the
/// strict close rule whatever the mode, with the creator-open bypass vetoed when anyone has
/// implemented the issue, and in delegated mode `--admin`/`--self-close-exception` required
/// for any issue with implementation history. An in-review issue is refused in every mode
/// (approve or reject it). `overridden` is true when the caller gave an exception reason.
pub fn admin_close(mode: Mode, f: &Facts, overridden: bool) -> Decision {
    let id = &f.issue_id;
    if f.in_review() && !f.minor {
        return Decision::refuse(format!(
            "cannot close {id}: issue is in review; use 'td approve {id}' to close reviewed work"
        ));
    }
    if mode == Mode::Delegated && !f.minor && f.issue_implemented && !overridden {
        return Decision::refuse(format!(
            "cannot close {id}: delegated mode requires --admin or --self-close-exception for \
             issues with implementation history"
        ));
    }
    let mut d = if f.minor {
        Decision::allow(None)
    } else {
        close_strict(f)
    };
    if d.creator_open_bypass && f.issue_implemented {
        d = Decision::refuse(format!(
            "cannot close: {id} has implementation history and requires review"
        ));
    }
    if !d.allowed && overridden {
        // The caller's stated exception: allowed, and recorded as such.
        return Decision {
            allowed: true,
            requires_reason: true,
            ..Decision::default()
        };
    }
    d
}

/// Is the issue in the session's review queue (td's reviewable-by filter)? Trusted mode lists
/// every in-review issue (the attestation is asked for at approval time).
pub fn reviewable(mode: Mode, f: &Facts) -> bool {
    if !f.in_review() || f.implementer.is_empty() {
        return false;
    }
    if f.minor {
        return true;
    }
    match mode {
        Mode::Trusted => true,
        Mode::Delegated => !f.is_implementer && !f.implemented,
        Mode::Balanced => {
            !f.is_implementer
                && ((!f.is_creator && !f.involved) || (f.is_creator && !f.implemented))
        }
        Mode::Strict => !f.is_implementer && !f.is_creator && !f.involved,
    }
}

/// Is the issue ready to close on a recorded approval (delegated and trusted modes only)?
pub fn ready_to_close(mode: Mode, f: &Facts) -> bool {
    matches!(mode, Mode::Delegated | Mode::Trusted) && f.in_review() && f.active_approval
}
