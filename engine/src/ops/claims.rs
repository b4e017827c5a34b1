//! `td unstart --session <id>` and `td unstart --stale <duration>`: releasing claims whose
//! holder can no longer hand off, as td's sweeps do. Both preview unless forced. A claim is an
//! in_progress issue, or an open issue that still names an implementer. `--session` selects
//! one holder exactly; `--stale` selects holders idle longer than a threshold, measured from
//! the newest of: the holder's session activity (sessions are this machine's), the issue's
//! `updated_at`, its newest log and its newest session-history entry (both synced, so work on
//! another machine counts). The caller and the sessions in its lineage (`td session --new`)
//! are never released by a sweep, and a claim whose liveness cannot be measured is reported
//! unresolved, never released.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use serde::Serialize;

use crate::error::{not_found, Result};
use crate::model::{parse_timestamp, Status};
use crate::ops::workflow::{clear, note, stamp, transition};
use crate::project::Project;
use crate::session;

/// Which claims a sweep selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimSelector {
    /// Every claim held by this session id.
    Session(String),
    /// Claims whose holder has been idle longer than `max_idle_secs`; `text` is the
    /// threshold as the user typed it (for messages).
    Stale {
        /// The threshold in seconds (greater than zero).
        max_idle_secs: i64,
        /// The threshold as typed (`2h`).
        text: String,
    },
}

/// One claim a sweep selected (and, when forced, released).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClaimView {
    /// The issue.
    pub id: String,
    /// Its title.
    pub title: String,
    /// The holder.
    pub session: String,
    /// Seconds since the newest evidence of work.
    pub idle_seconds: i64,
    /// That evidence's time (RFC 3339, UTC).
    pub last_activity: String,
    /// Which signal it came from: `session`, `issue` or `issue_activity`.
    pub last_activity_source: String,
}

/// A claim a sweep left alone, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnresolvedClaim {
    /// The issue.
    pub id: String,
    /// The holder (may be empty).
    pub session: String,
    /// Why it was not evaluated or not released.
    pub reason: String,
}

/// What a sweep found and did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// `session` or `stale`.
    pub selector_key: String,
    /// The session id or the threshold as typed.
    pub selector_value: String,
    /// Released (true) or only previewed.
    pub forced: bool,
    /// Selected claims (forced: the ones released).
    pub claims: Vec<ClaimView>,
    /// Claims left alone, with the reason.
    pub unresolved: Vec<UnresolvedClaim>,
    /// Claims that moved to another holder between selection and release.
    pub skipped: usize,
}

impl SweepReport {
    /// td's `action` for the JSON result: `would_release_stale_claims`,
    /// `released_session_claims_with_unresolved`, …
    pub fn action(&self) -> String {
        let verb = if self.forced {
            "released"
        } else {
            "would_release"
        };
        let mut a = format!("{verb}_{}_claims", self.selector_key);
        if !self.unresolved.is_empty() {
            a.push_str("_with_unresolved");
        }
        a
    }
}

/// A claimed issue: (id, title, status, holder, updated_at).
type Claimed = (String, String, String, String, String);

fn claimed_issues(conn: &Connection) -> Result<Vec<Claimed>> {
    let mut stmt = conn.prepare(
        "SELECT id, title, status, implementer_session, updated_at FROM issues \
         WHERE deleted_at IS NULL AND (status = 'in_progress' OR (status = 'open' AND implementer_session != '')) \
         ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

fn utc(t: &str) -> Option<DateTime<Utc>> {
    parse_timestamp(t).map(|t| t.with_timezone(&Utc))
}

/// Per issue, the newest log or session-history entry by any session.
fn latest_activity(conn: &Connection) -> Result<BTreeMap<String, DateTime<Utc>>> {
    let mut out: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    for q in [
        "SELECT issue_id, MAX(timestamp) FROM logs WHERE issue_id != '' GROUP BY issue_id",
        "SELECT issue_id, MAX(created_at) FROM issue_session_history GROUP BY issue_id",
    ] {
        let mut stmt = conn.prepare(q)?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
        })?;
        for row in rows {
            let (id, t) = row?;
            if let Some(t) = t.as_deref().and_then(utc) {
                let e = out.entry(id).or_insert(t);
                *e = (*e).max(t);
            }
        }
    }
    Ok(out)
}

/// When this replica received the newest record of `doc` (local writes: when written).
fn newest_received(conn: &Connection, doc: &str) -> Result<Option<DateTime<Utc>>> {
    let t: Option<String> = conn
        .prepare_cached("SELECT max(received_at) FROM crdt_changes WHERE doc_id = ?1")?
        .query_row([doc], |r| r.get(0))?;
    Ok(t.as_deref().and_then(utc))
}

/// This machine's sessions: id → (last activity, previous session id).
type Sessions = BTreeMap<String, (Option<DateTime<Utc>>, String)>;

fn sessions(conn: &Connection) -> Result<Sessions> {
    let mut stmt = conn.prepare(
        "SELECT id, coalesce(last_activity, started_at, ''), coalesce(previous_session_id, '') FROM sessions",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut out = BTreeMap::new();
    for row in rows {
        let (id, last, prev) = row?;
        out.insert(id, (utc(&last), prev));
    }
    Ok(out)
}

/// The caller and every session in its lineage (ancestors and descendants through
/// `previous_session_id`): never released by a sweep.
fn kin(all: &Sessions, me: &str) -> BTreeSet<String> {
    let mut kin = BTreeSet::from([me.to_string()]);
    loop {
        let before = kin.len();
        for (id, (_, prev)) in all {
            if kin.contains(id) && !prev.is_empty() {
                kin.insert(prev.clone());
            } else if !prev.is_empty() && kin.contains(prev) {
                kin.insert(id.clone());
            }
        }
        if kin.len() == before {
            return kin;
        }
    }
}

/// td's idle rendering at minute resolution (`2h5m0s`, as Go prints a duration).
pub fn format_idle(secs: i64) -> String {
    let m = secs.max(0) / 60;
    match (m / 60, m % 60) {
        (0, 0) => "0s".into(),
        (0, m) => format!("{m}m0s"),
        (h, m) => format!("{h}h{m}m0s"),
    }
}

impl Project {
    /// `td unstart --session|--stale [--force]`: selects claims, and releases them (open,
    /// implementer cleared, a progress log naming why) when `force`; each release checks the
    /// claim still has the holder it was selected for.
    pub fn sweep_claims(
        &mut self,
        selector: &ClaimSelector,
        reason: Option<&str>,
        force: bool,
    ) -> Result<SweepReport> {
        let me = self.session.id.clone();
        let conn = self.store.conn();
        let now = Utc::now();
        let issues = claimed_issues(conn)?;
        let known = sessions(conn)?;
        let mut report = SweepReport {
            selector_key: String::new(),
            selector_value: String::new(),
            forced: force,
            claims: Vec::new(),
            unresolved: Vec::new(),
            skipped: 0,
        };
        let claim =
            |(id, title, _, holder, _): &Claimed, at: DateTime<Utc>, source: &str| ClaimView {
                id: id.clone(),
                title: title.clone(),
                session: holder.clone(),
                idle_seconds: (now - at).num_seconds().max(0),
                last_activity: at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                last_activity_source: source.to_string(),
            };
        match selector {
            ClaimSelector::Session(holder) => {
                report.selector_key = "session".into();
                report.selector_value = holder.clone();
                let row = known.get(holder);
                for c in issues.iter().filter(|c| &c.3 == holder) {
                    let updated = utc(&c.4);
                    let last = match (updated, row.and_then(|r| r.0)) {
                        (Some(u), Some(s)) => Some(u.max(s)),
                        (a, b) => a.or(b),
                    };
                    report.claims.push(claim(c, last.unwrap_or(now), "session"));
                }
                if row.is_none() && report.claims.is_empty() {
                    return Err(not_found(format!(
                        "no session {holder} in this database, and no claim names it"
                    )));
                }
            }
            ClaimSelector::Stale {
                max_idle_secs,
                text,
            } => {
                report.selector_key = "stale".into();
                report.selector_value = text.clone();
                let kin = kin(&known, &me);
                let activity = latest_activity(conn)?;
                for c in &issues {
                    let holder = &c.3;
                    if holder.is_empty() {
                        report.unresolved.push(UnresolvedClaim {
                            id: c.0.clone(),
                            session: String::new(),
                            reason: "no implementer session recorded".into(),
                        });
                        continue;
                    }
                    // A time from another machine later than now is not believed: it counts as
                    // when this replica received the issue's newest record (a claim stamped in
                    // the future would otherwise never be stale).
                    let received = |t: Option<DateTime<Utc>>| -> Result<Option<DateTime<Utc>>> {
                        match t {
                            Some(t) if t > now => {
                                Ok(newest_received(conn, &c.0)?.map(|r| r.min(t)))
                            }
                            t => Ok(t),
                        }
                    };
                    let candidates = [
                        (known.get(holder).and_then(|s| s.0), "session"),
                        (received(utc(&c.4))?, "issue"),
                        (received(activity.get(&c.0).copied())?, "issue_activity"),
                    ];
                    let Some((at, source)) = candidates
                        .into_iter()
                        .filter_map(|(t, s)| t.map(|t| (t, s)))
                        .max_by_key(|(t, _)| *t)
                    else {
                        report.unresolved.push(UnresolvedClaim {
                            id: c.0.clone(),
                            session: holder.clone(),
                            reason: format!("implementer session {holder} is not in this database and the issue carries no usable timestamp"),
                        });
                        continue;
                    };
                    let idle = (now - at).num_seconds();
                    if idle <= *max_idle_secs {
                        continue;
                    }
                    if kin.contains(holder) {
                        report.unresolved.push(UnresolvedClaim {
                            id: c.0.clone(),
                            session: holder.clone(),
                            reason: format!(
                                "held by session {holder} in the caller's identity lineage, idle {} (threshold {text}, measured from {source}); never released by a sweep — release it explicitly with `td unstart --session {holder} --force`",
                                format_idle(idle)
                            ),
                        });
                        continue;
                    }
                    report.claims.push(claim(c, at, source));
                }
            }
        }
        if !force || report.claims.is_empty() {
            return Ok(report);
        }
        let selected = std::mem::take(&mut report.claims);
        let threshold = report.selector_value.clone();
        let by_stale = report.selector_key == "stale";
        let (released, moved) = self.store.write(&me.clone(), |tx| {
            let mut released = Vec::new();
            let mut moved = Vec::new();
            for c in selected {
                let mut why = None;
                let out = transition(tx, &c.id, None, Some((&me, "unstarted")), |_, issue, wf| {
                    let status = Status::parse(&issue.status)?;
                    let releasable = status == Status::InProgress
                        || (status == Status::Open && !issue.implementer_session.is_empty());
                    if !releasable || issue.implementer_session != c.session {
                        why = Some(format!(
                            "claim moved: held by \"{}\" (status {}), expected \"{}\"",
                            issue.implementer_session, issue.status, c.session
                        ));
                        return Ok(false);
                    }
                    stamp(wf, "status", Status::Open.as_str());
                    clear(wf, "implementer_session");
                    Ok(true)
                })?;
                if let Some(why) = why {
                    moved.push(UnresolvedClaim {
                        id: c.id.clone(),
                        session: c.session.clone(),
                        reason: why,
                    });
                    continue;
                }
                let mut msg = if by_stale {
                    format!(
                        "claim released: implementer session {} idle {} (threshold {threshold}, measured from {})",
                        c.session,
                        format_idle(c.idle_seconds),
                        c.last_activity_source
                    )
                } else {
                    format!("claim released: session {} (released by {me})", c.session)
                };
                if let Some(r) = reason.map(str::trim).filter(|r| !r.is_empty()) {
                    msg.push_str("; ");
                    msg.push_str(r);
                }
                note(tx, &out, &me, Some(msg))?;
                if session::focused_issue(tx.conn(), &me)?.as_deref() == Some(c.id.as_str()) {
                    session::set_state(tx.conn(), &me, "focused_issue_id", "")?;
                }
                released.push(c);
            }
            Ok((released, moved))
        })?;
        report.skipped = moved.len();
        report.unresolved.extend(moved);
        report.claims = released;
        Ok(report)
    }
}
