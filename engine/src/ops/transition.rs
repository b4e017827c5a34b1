//! The workflow unit and its write: status and its stamps are one value (the document's `wf`
//! map), read from an issue's row, changed by a transition and written with `updated_at` and
//! the session's history row in one change. The commands (`ops::workflow`) and the cascades
//! they set off (`ops::cascades`) both write through here.

use std::collections::BTreeMap;

use automerge::AutoCommit;

use crate::doc::{self, Field, WF_KEYS};
use crate::error::Result;
use crate::model::{now_timestamp, Status};
use crate::ops::check_if_match;
use crate::ops::records;
use crate::ops::IssueOutcome;
use crate::query::{self, Issue};
use crate::session;
use crate::write::Tx;

/// The workflow unit: status plus its stamps.
pub type Workflow = BTreeMap<String, Field>;

fn workflow_of(issue: &Issue) -> Workflow {
    WF_KEYS
        .iter()
        .map(|k| {
            let v = match issue.column(k) {
                Some(s) => Field::Str(s.to_string()),
                None => Field::Null,
            };
            (k.to_string(), v)
        })
        .collect()
}

pub(crate) fn stamp(wf: &mut Workflow, key: &str, value: &str) {
    wf.insert(key.into(), Field::Str(value.into()));
}

pub(crate) fn clear(wf: &mut Workflow, key: &str) {
    let empty = if key.ends_with("_at") {
        Field::Null
    } else {
        Field::Str(String::new())
    };
    wf.insert(key.into(), empty);
}

/// Sets only the status inside the workflow unit (used by `td update --status`).
pub(crate) fn set_status_only(d: &mut AutoCommit, to: Status) -> Result<()> {
    let mut wf: Workflow = match doc::child_map(d, "wf") {
        Some(obj) => WF_KEYS
            .iter()
            .filter_map(|k| doc::read_field(d, &obj, k).map(|v| (k.to_string(), v)))
            .collect(),
        None => BTreeMap::new(),
    };
    stamp(&mut wf, "status", to.as_str());
    doc::put_workflow(d, &wf)
}

/// A child row to write: its id and columns.
pub(crate) type ChildRow = (String, Vec<(&'static str, Field)>);

/// The session-history row (`issue_session_history`) saying `session` did `action` to
/// `issue`, unless one already does: the review policy only asks whether a session ever
/// created, started or reviewed an issue, so one row per (issue, session, action) is enough
/// and repeats do not grow the document.
pub(crate) fn history_row(
    tx: &Tx<'_>,
    issue: &str,
    session: &str,
    action: &str,
) -> Result<Option<ChildRow>> {
    let key = crate::model::link_id("ish_", &format!("{issue}|{session}|{action}"));
    if query::row_exists(tx.conn(), "issue_session_history", &key)? {
        return Ok(None);
    }
    Ok(Some((
        key,
        vec![
            ("session_id", Field::Str(session.into())),
            ("action", Field::Str(action.into())),
            ("created_at", Field::Str(now_timestamp())),
        ],
    )))
}

/// Writes a [`history_row`] into the issue's document.
pub(crate) fn put_history(d: &mut AutoCommit, row: &Option<ChildRow>) -> Result<()> {
    match row {
        Some((key, cols)) => doc::put_child(d, "history", key, cols),
        None => Ok(()),
    }
}

/// The shared shape of every transition: load, check `--if-match`, decide the new workflow
/// (or `None` for an idempotent repeat), then write it with `updated_at` (and the session's
/// history row for `action`, when given) in one change.
pub(crate) fn transition(
    tx: &mut Tx<'_>,
    id: &str,
    if_match: Option<&str>,
    action: Option<(&str, &str)>,
    decide: impl FnOnce(&Tx<'_>, &Issue, &mut Workflow) -> Result<bool>,
) -> Result<IssueOutcome> {
    let issue = query::live_issue(tx.conn(), id)?;
    check_if_match(tx, id, if_match)?;
    let mut wf = workflow_of(&issue);
    if !decide(tx, &issue, &mut wf)? {
        return Ok(IssueOutcome::unchanged(issue));
    }
    let now = now_timestamp();
    let history = match action {
        Some((session, action)) => history_row(tx, id, session, action)?,
        None => None,
    };
    tx.change(id, |d| {
        doc::put_workflow(d, &wf)?;
        put_history(d, &history)?;
        doc::put_str(d, "updated_at", &now)
    })?;
    Ok(IssueOutcome {
        issue: query::live_issue(tx.conn(), id)?,
        changed: true,
        warnings: Vec::new(),
        cascades: Default::default(),
    })
}

/// Records the reason a transition was given (td's `--reason`/`-m`) as a progress log on the
/// issue, in the same transaction, when the transition changed something.
pub(crate) fn note(
    tx: &mut Tx<'_>,
    out: &IssueOutcome,
    me: &str,
    msg: Option<String>,
) -> Result<()> {
    if let (true, Some(msg)) = (out.changed, msg) {
        let ws = session::active_work_session(tx.conn(), me)?.unwrap_or_default();
        records::add_log(tx, &out.issue.id, me, &ws, &msg, "progress")?;
    }
    Ok(())
}
