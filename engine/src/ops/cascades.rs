//! td's cascades: the transitions a status change sets off (`internal/db/issue_relations.go`).
//!
//! - **Parent up.** When an issue reaches `in_review` or `closed` and its parent is an epic
//!   whose every direct child has reached it too (`in_review` counts `closed`), the epic moves
//!   there as well, with the log "Auto-cascaded to <status> (all children complete)"; this
//!   repeats up the chain. An epic that closes this way also unblocks its dependents.
//! - **Unblock.** When an issue closes, every `blocked` issue that depends on it and whose
//!   dependencies are now all closed goes back to `open`, its claim released, with the log
//!   "Auto-unblocked (dependency <id> closed)".
//!
//! Locally these run in the transaction of the transition that set them off, as in td. Across
//! machines (docs/merge-rules.md, rule 11) a close or review that arrives by sync is a trigger
//! too: it is noted when it is materialized ([`crate::store::note_cascade_trigger`]) and settled after the batch
//! ([`Store::settle_cascades`]) on the merged state. Exactly one machine writes such a derived
//! cascade, so it is never duplicated: the machine of the session whose transition completed
//! the set (the child closed last, by time then id; for unblocking, the dependency closed
//! last). That machine is the one that will meet the other half of the set when it syncs, so
//! the cascade is never lost either. A transition by a session that names no machine (history
//! imported from td) decides nothing, so a joiner never rewrites imported history.

use rusqlite::{params, Connection};

use crate::error::Result;
use crate::identity;
use crate::model::Status;
use crate::ops::records;
use crate::ops::transition::{clear, stamp, transition};
use crate::query::{self, Issue};
use crate::store::Store;
use crate::write::Tx;

/// What a transition set off, as td reports it (`cascades` in td's API, `cascaded_parents`
/// and `unblocked_dependents` in `td close --json`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cascades {
    /// Epics moved to the same status because every child reached it, nearest first.
    pub parents: Vec<String>,
    /// Issues moved from `blocked` to `open` because everything they depend on closed.
    pub unblocked: Vec<String>,
}

impl Cascades {
    /// Whether nothing cascaded.
    pub fn is_empty(&self) -> bool {
        self.parents.is_empty() && self.unblocked.is_empty()
    }
}

/// Who may write a cascade: `Local` for the transition's own transaction (always), or
/// `Derived(fingerprint)` for a trigger that arrived by sync (only the deciding machine).
#[derive(Clone, Copy)]
pub(crate) enum Writer<'a> {
    Local,
    Derived(&'a str),
}

impl Writer<'_> {
    /// Whether this replica writes the cascade decided by `session`'s transition. A session
    /// that names no machine (history imported from td, where td already ran its cascades or
    /// someone undid one on purpose) decides nothing: no replica derives a cascade from it.
    fn decides(self, session: &str) -> bool {
        match self {
            Writer::Local => true,
            Writer::Derived(me) => identity::session_machine(session) == Some(me),
        }
    }
}

/// Runs td's cascades after `id` reached `to` (`in_review` or `closed`).
pub(crate) fn after(
    tx: &mut Tx<'_>,
    me: &str,
    id: &str,
    to: Status,
    who: Writer<'_>,
) -> Result<Cascades> {
    let mut out = Cascades::default();
    match to {
        Status::Closed => {
            parent_up(tx, me, id, Status::Closed, who, &mut out)?;
            out.unblocked = unblock_dependents(tx, me, id, who)?;
        }
        Status::InReview => parent_up(tx, me, id, Status::InReview, who, &mut out)?,
        _ => {}
    }
    Ok(out)
}

fn reached(issue: &Issue, target: Status) -> bool {
    issue.status == Status::Closed.as_str()
        || (target == Status::InReview && issue.status == Status::InReview.as_str())
}

/// The session whose transition completed the set: the member reached last, by the time of
/// its transition (closed: `closed_at`; review: `updated_at`), then by id.
fn decider(issues: &[Issue], target: Status) -> String {
    issues
        .iter()
        .max_by(|a, b| {
            let t = |i: &Issue| match target {
                Status::Closed => i.closed_at.clone().unwrap_or_default(),
                _ => i.updated_at.clone(),
            };
            (t(a), &a.id).cmp(&(t(b), &b.id))
        })
        .map(|i| {
            let order = match target {
                Status::Closed => [&i.closed_by_session, &i.implementer_session],
                _ => [&i.review_requested_by_session, &i.implementer_session],
            };
            order
                .into_iter()
                .find(|s| !s.is_empty())
                .cloned()
                .unwrap_or_default()
        })
        .unwrap_or_default()
}

fn parent_up(
    tx: &mut Tx<'_>,
    me: &str,
    id: &str,
    target: Status,
    who: Writer<'_>,
    out: &mut Cascades,
) -> Result<()> {
    let mut current = id.to_string();
    // The chain is walked iteratively and bounded (a parent cycle made by concurrent edits
    // must not loop).
    for _ in 0..64 {
        let Some(issue) = query::find_issue(tx.conn(), &current)? else {
            return Ok(());
        };
        if issue.parent_id.is_empty() {
            return Ok(());
        }
        let Some(parent) =
            query::find_issue(tx.conn(), &issue.parent_id)?.filter(|p| p.deleted_at.is_none())
        else {
            return Ok(());
        };
        if parent.issue_type != "epic"
            || parent.status == target.as_str()
            || parent.status == Status::Closed.as_str()
        {
            return Ok(());
        }
        let children = direct_children(tx.conn(), &parent.id)?;
        if children.is_empty() || !children.iter().all(|c| reached(c, target)) {
            return Ok(());
        }
        if target == Status::InReview
            && children.iter().all(|c| c.status == Status::Closed.as_str())
        {
            return Ok(()); // every child closed: the close cascade's to decide
        }
        if !who.decides(&decider(&children, target)) {
            return Ok(());
        }
        let now = crate::model::now_timestamp();
        let changed = transition(tx, &parent.id, None, None, |_, _, wf| {
            stamp(wf, "status", target.as_str());
            if target == Status::Closed {
                stamp(wf, "closed_at", &now);
            }
            Ok(true)
        })?;
        if !changed.changed {
            return Ok(());
        }
        records::add_log(
            tx,
            &parent.id,
            me,
            "",
            &format!(
                "Auto-cascaded to {} (all children complete)",
                target.as_str()
            ),
            "progress",
        )?;
        out.parents.push(parent.id.clone());
        if target == Status::Closed {
            // td unblocks the closed epic's dependents too, without reporting them; they are
            // part of the cascade this replica just decided.
            unblock_dependents(tx, me, &parent.id, Writer::Local)?;
        }
        current = parent.id;
    }
    Ok(())
}

fn direct_children(conn: &Connection, parent: &str) -> Result<Vec<Issue>> {
    let ids: Vec<String> = conn
        .prepare_cached(
            "SELECT id FROM issues WHERE parent_id = ?1 AND deleted_at IS NULL ORDER BY id",
        )?
        .query_map([parent], |r| r.get(0))?
        .collect::<std::result::Result<_, _>>()?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(i) = query::find_issue(conn, &id)? {
            out.push(i);
        }
    }
    Ok(out)
}

fn unblock_dependents(
    tx: &mut Tx<'_>,
    me: &str,
    closed: &str,
    who: Writer<'_>,
) -> Result<Vec<String>> {
    let dependents: Vec<String> = tx
        .conn()
        .prepare_cached(
            "SELECT DISTINCT issue_id FROM issue_dependencies \
             WHERE depends_on_id = ?1 AND relation_type = 'depends_on' ORDER BY issue_id",
        )?
        .query_map([closed], |r| r.get(0))?
        .collect::<std::result::Result<_, _>>()?;
    let mut unblocked = Vec::new();
    for dep in dependents {
        if unblock_if_clear(tx, me, &dep, closed, who)? {
            unblocked.push(dep);
        }
    }
    Ok(unblocked)
}

/// Unblocks `dep` when it is `blocked` and everything it depends on is closed (`closed`
/// being the dependency whose close set this off), if this replica decides it.
fn unblock_if_clear(
    tx: &mut Tx<'_>,
    me: &str,
    dep: &str,
    closed: &str,
    who: Writer<'_>,
) -> Result<bool> {
    let Some(issue) = query::find_issue(tx.conn(), dep)?.filter(|i| i.deleted_at.is_none()) else {
        return Ok(false);
    };
    if issue.status != Status::Blocked.as_str() {
        return Ok(false);
    }
    let targets = depends_on(tx.conn(), dep)?;
    let mut blockers = Vec::with_capacity(targets.len());
    for t in &targets {
        match query::find_issue(tx.conn(), t)? {
            Some(i) if i.status == Status::Closed.as_str() => blockers.push(i),
            _ => return Ok(false),
        }
    }
    if !who.decides(&decider(&blockers, Status::Closed)) {
        return Ok(false);
    }
    let out = transition(tx, dep, None, None, |_, _, wf| {
        stamp(wf, "status", Status::Open.as_str());
        // As `td unblock`: an open issue is unclaimed work.
        clear(wf, "implementer_session");
        Ok(true)
    })?;
    if out.changed {
        records::add_log(
            tx,
            dep,
            me,
            "",
            &format!("Auto-unblocked (dependency {closed} closed)"),
            "progress",
        )?;
    }
    Ok(out.changed)
}

fn depends_on(conn: &Connection, id: &str) -> Result<Vec<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT depends_on_id FROM issue_dependencies \
             WHERE issue_id = ?1 AND relation_type = 'depends_on' ORDER BY depends_on_id",
        )?
        .query_map([id], |r| r.get(0))?
        .collect::<std::result::Result<_, _>>()?)
}

/// Settles the received triggers on the merged state, inside `tx`: the cascades this machine
/// decides are written (attributed to `me`), and the triggers are cleared.
fn settle_received(tx: &mut Tx<'_>, me: &str, machine: &str) -> Result<usize> {
    let who = Writer::Derived(machine);
    let due: Vec<(String, String, String)> = tx
        .conn()
        .prepare_cached(
            "SELECT d.issue_id, i.status, i.parent_id FROM crdt_cascade_due d \
             JOIN issues i ON i.id = d.issue_id ORDER BY d.issue_id",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<std::result::Result<_, _>>()?;
    let mut written = 0;
    // Parents once each (a joiner receives every closed issue at once): closed first, so an
    // epic whose children all closed is not first moved to review.
    let mut parents: std::collections::BTreeMap<String, (String, bool)> = Default::default();
    for (id, status, parent) in &due {
        if parent.is_empty() || (status != "closed" && status != "in_review") {
            continue;
        }
        let e = parents.entry(parent.clone()).or_insert((id.clone(), false));
        if status == "closed" && !e.1 {
            *e = (id.clone(), true);
        }
    }
    for (child, closed) in parents.values() {
        let mut out = Cascades::default();
        let target = if *closed {
            Status::Closed
        } else {
            Status::InReview
        };
        parent_up(tx, me, child, target, who, &mut out)?;
        if *closed {
            parent_up(tx, me, child, Status::InReview, who, &mut out)?;
        }
        written += out.parents.len();
    }
    // Blocked issues once each (few), rather than every trigger's dependents.
    let closed: std::collections::BTreeSet<&str> = due
        .iter()
        .filter(|d| d.1 == "closed")
        .map(|d| d.0.as_str())
        .collect();
    if !closed.is_empty() {
        let blocked: Vec<String> = tx
            .conn()
            .prepare_cached(
                "SELECT id FROM issues WHERE status = 'blocked' AND deleted_at IS NULL ORDER BY id",
            )?
            .query_map([], |r| r.get(0))?
            .collect::<std::result::Result<_, _>>()?;
        for b in blocked {
            let deps = depends_on(tx.conn(), &b)?;
            if let Some(trigger) = deps.iter().find(|d| closed.contains(d.as_str())) {
                if unblock_if_clear(tx, me, &b, trigger, who)? {
                    written += 1;
                }
            }
        }
    }
    tx.conn()
        .execute("DELETE FROM crdt_cascade_due", params![])?;
    Ok(written)
}

impl Store {
    /// Settles the cascades that changes received by sync call for (see the module
    /// documentation), as one write attributed to `session`. Returns how many issues moved;
    /// a replica that may not write leaves them to the deciding machine.
    pub fn settle_cascades(&mut self, session: &str) -> Result<usize> {
        if !crate::store::cascades_due(self.conn())? {
            return Ok(0);
        }
        let machine = self.identity().fingerprint();
        match self.write(session, |tx| settle_received(tx, session, &machine)) {
            Ok(n) => Ok(n),
            Err(_) => {
                // Refused (this machine may not write here): the deciding machine writes it.
                self.conn()
                    .execute("DELETE FROM crdt_cascade_due", params![])?;
                Ok(0)
            }
        }
    }
}
