//! Issue fields: create, update, delete/restore, dependencies, epics.

use automerge::AutoCommit;

use crate::doc::{self, Field};
use crate::error::{invalid, not_found, Result};
use crate::model::{self, link_id, now_timestamp, Kind, Status};
use crate::ops::check_if_match;
use crate::project::Project;
use crate::query::{self, Issue};
use crate::write::Tx;

/// Field values given to `create` or `update`; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct IssueFields {
    /// Title (validated).
    pub title: Option<String>,
    /// Full description.
    pub description: Option<String>,
    /// Text appended to the description (`update --append`).
    pub append: Option<String>,
    /// Acceptance criteria.
    pub acceptance: Option<String>,
    /// Text appended to the acceptance criteria (td's `update --append --acceptance`).
    pub append_acceptance: Option<String>,
    /// Type (`bug`, `feature`/`story`, `task`, `epic`, `chore`).
    pub issue_type: Option<String>,
    /// Priority in any accepted spelling.
    pub priority: Option<String>,
    /// Story points.
    pub points: Option<i64>,
    /// Labels (replaces the set).
    pub labels: Option<Vec<String>>,
    /// Parent issue or epic (`""` clears).
    pub parent: Option<String>,
    /// Sprint name.
    pub sprint: Option<String>,
    /// Minor issues skip review.
    pub minor: Option<bool>,
    /// Defer date (`Some(None)` clears).
    pub defer_until: Option<Option<String>>,
    /// Due date (`Some(None)` clears).
    pub due_date: Option<Option<String>>,
    /// New status (checked against td's transitions).
    pub status: Option<String>,
    /// `update --depends-on`: the issues this one depends on, replacing the current ones.
    pub depends_on: Option<Vec<String>>,
    /// `update --blocks`: the issues that depend on this one, replacing the current ones.
    pub blocks: Option<Vec<String>>,
    /// `update -m/--comment`: a comment added to the issue in the same write.
    pub comment: Option<String>,
}

pub use crate::ops::IssueOutcome;

fn resolve_parent(tx: &Tx<'_>, parent: &str) -> Result<String> {
    if parent.is_empty() {
        return Ok(String::new());
    }
    let id = model::normalize_issue_id(parent);
    query::live_issue(tx.conn(), &id)
        .map_err(|_| not_found(format!("parent issue not found: {id}")))?;
    Ok(id)
}

/// Validates and normalises `f` (title rules, type and priority spellings, points, dates,
/// parent existence) before anything is written.
fn validate(tx: &Tx<'_>, f: &IssueFields) -> Result<IssueFields> {
    let mut v = f.clone();
    v.title = f.title.as_deref().map(model::check_title).transpose()?;
    v.issue_type = f
        .issue_type
        .as_deref()
        .map(|t| model::parse_type(t).map(String::from))
        .transpose()?;
    v.priority = f
        .priority
        .as_deref()
        .map(|p| model::parse_priority(p).map(String::from))
        .transpose()?;
    v.points = f.points.map(model::parse_points).transpose()?;
    v.parent = f
        .parent
        .as_deref()
        .map(|p| resolve_parent(tx, p))
        .transpose()?;
    for d in [&mut v.defer_until, &mut v.due_date] {
        if let Some(Some(date)) = d {
            *date = model::check_date(date)?;
        }
    }
    if let Some(s) = &f.status {
        Status::parse(s)?;
    }
    Ok(v)
}

/// Writes validated fields into an issue document.
fn write_fields(d: &mut AutoCommit, f: &IssueFields, current_desc: &str) -> Result<()> {
    if let Some(t) = &f.title {
        doc::put_str(d, "title", t)?;
    }
    if let Some(desc) = &f.description {
        doc::put_text(d, "description", desc)?;
    }
    if let Some(extra) = &f.append {
        let base = f.description.as_deref().unwrap_or(current_desc);
        let joined = if base.is_empty() {
            extra.clone()
        } else {
            format!("{base}\n\n{extra}")
        };
        doc::put_text(d, "description", &joined)?;
    }
    if let Some(a) = &f.acceptance {
        doc::put_text(d, "acceptance", a)?;
    }
    if let Some(extra) = &f.append_acceptance {
        let base = doc::read_str(d, "acceptance");
        let joined = if base.is_empty() {
            extra.clone()
        } else {
            format!("{base}\n\n{extra}")
        };
        doc::put_text(d, "acceptance", &joined)?;
    }
    for (key, val) in [
        ("type", &f.issue_type),
        ("priority", &f.priority),
        ("parent_id", &f.parent),
        ("sprint", &f.sprint),
    ] {
        if let Some(v) = val {
            doc::put_str(d, key, v)?;
        }
    }
    if let Some(p) = f.points {
        doc::put_int(d, "points", p)?;
    }
    if let Some(l) = &f.labels {
        doc::put_labels(d, l)?;
    }
    if let Some(m) = f.minor {
        doc::put_int(d, "minor", m as i64)?;
    }
    if let Some(v) = &f.defer_until {
        doc::put_opt(d, "defer_until", v.as_deref())?;
    }
    if let Some(v) = &f.due_date {
        doc::put_opt(d, "due_date", v.as_deref())?;
    }
    Ok(())
}

/// Adds a `depends_on` edge from `issue` to `on` inside `tx`, refusing self-edges and cycles.
/// Returns false if the edge already existed.
pub(crate) fn add_dependency(tx: &mut Tx<'_>, issue: &str, on: &str) -> Result<bool> {
    if issue == on {
        return Err(invalid(format!(
            "an issue cannot depend on itself ({issue})"
        )));
    }
    query::live_issue(tx.conn(), issue)?;
    query::live_issue(tx.conn(), on)?;
    if query::dependencies_of(tx.conn(), issue)?
        .iter()
        .any(|d| d == on)
    {
        return Ok(false);
    }
    if depends_transitively(tx, on, issue)? {
        return Err(invalid(format!(
            "adding {issue} → {on} would create a dependency cycle"
        )));
    }
    let key = link_id("dep_", &format!("{issue}|{on}|depends_on"));
    tx.change(issue, |d| {
        doc::put_child(
            d,
            "deps",
            &key,
            &[
                ("depends_on_id", Field::Str(on.into())),
                ("relation_type", Field::Str("depends_on".into())),
            ],
        )
    })?;
    Ok(true)
}

/// Removes the `depends_on` edge from `issue` to `on` inside `tx`; false if it was not there.
pub(crate) fn remove_dependency(tx: &mut Tx<'_>, issue: &str, on: &str) -> Result<bool> {
    let key = link_id("dep_", &format!("{issue}|{on}|depends_on"));
    let mut removed = false;
    tx.change(issue, |d| {
        removed = doc::delete_child(d, "deps", &key)?;
        Ok(())
    })?;
    Ok(removed)
}

/// td's `update --depends-on`/`--blocks`: replaces the edges of one side of `id` with
/// exactly the ones given (edges already there are kept, not rewritten).
fn replace_dependencies(tx: &mut Tx<'_>, id: &str, f: &IssueFields) -> Result<()> {
    if let Some(wanted) = &f.depends_on {
        let wanted: Vec<String> = wanted
            .iter()
            .map(|w| model::normalize_issue_id(w))
            .collect();
        for on in query::dependencies_of(tx.conn(), id)? {
            if !wanted.contains(&on) {
                remove_dependency(tx, id, &on)?;
            }
        }
        for on in &wanted {
            add_dependency(tx, id, on)?;
        }
    }
    if let Some(wanted) = &f.blocks {
        let wanted: Vec<String> = wanted
            .iter()
            .map(|w| model::normalize_issue_id(w))
            .collect();
        for other in query::dependents_of(tx.conn(), id)? {
            if !wanted.contains(&other) {
                remove_dependency(tx, &other, id)?;
            }
        }
        for other in &wanted {
            add_dependency(tx, other, id)?;
        }
    }
    Ok(())
}

fn depends_transitively(tx: &Tx<'_>, from: &str, target: &str) -> Result<bool> {
    let mut stack = vec![from.to_string()];
    let mut seen = std::collections::HashSet::new();
    while let Some(cur) = stack.pop() {
        if cur == target {
            return Ok(true);
        }
        if seen.insert(cur.clone()) {
            stack.extend(query::dependencies_of(tx.conn(), &cur)?);
        }
    }
    Ok(false)
}

impl Project {
    /// `td create`: a new issue stamped with the creating session and branch.
    pub fn create(
        &mut self,
        f: &IssueFields,
        depends_on: &[String],
        blocks: &[String],
    ) -> Result<Issue> {
        if f.title.as_deref().unwrap_or("").trim().is_empty() {
            return Err(invalid("title is required: td create \"<title>\""));
        }
        let branch = self.session.branch.clone();
        let session = self.session.id.clone();
        self.store.write(&session, |tx| {
            let f = validate(tx, f)?;
            let id = tx.fresh_id(Kind::Issue)?;
            let now = now_timestamp();
            let status = f
                .status
                .as_deref()
                .map(Status::parse)
                .transpose()?
                .unwrap_or(Status::Open);
            let created = crate::ops::workflow::history_row(tx, &id, &session, "created")?;
            tx.change(&id, |d| {
                crate::ops::workflow::put_history(d, &created)?;
                doc::put_str(d, "type", "task")?;
                doc::put_str(d, "priority", "P2")?;
                doc::put_str(d, "created_at", &now)?;
                doc::put_str(d, "updated_at", &now)?;
                doc::put_str(d, "creator_session", &session)?;
                doc::put_str(d, "created_branch", &branch)?;
                let mut wf = std::collections::BTreeMap::new();
                wf.insert("status".to_string(), Field::Str(status.as_str().into()));
                doc::put_workflow(d, &wf)?;
                // The text objects exist from the start, so concurrent first edits merge
                // character by character instead of racing to create them.
                doc::put_text(d, "description", "")?;
                doc::put_text(d, "acceptance", "")?;
                write_fields(d, &f, "")
            })?;
            for dep in depends_on {
                add_dependency(tx, &id, &model::normalize_issue_id(dep))?;
            }
            for b in blocks {
                add_dependency(tx, &model::normalize_issue_id(b), &id)?;
            }
            query::live_issue(tx.conn(), &id)
        })
    }

    /// `td update`: changes the given fields of one issue (status through td's transitions).
    pub fn update(
        &mut self,
        id: &str,
        f: &IssueFields,
        if_match: Option<&str>,
    ) -> Result<IssueOutcome> {
        let session = self.session.id.clone();
        self.store.write(&session, |tx| {
            let issue = query::live_issue(tx.conn(), id)?;
            check_if_match(tx, id, if_match)?;
            let f = validate(tx, f)?;
            if let Some(p) = &f.parent {
                if p == id {
                    return Err(invalid(format!("an issue cannot be its own parent ({id})")));
                }
            }
            let new_status = f.status.as_deref().map(Status::parse).transpose()?;
            if let Some(to) = new_status {
                let from = Status::parse(&issue.status)?;
                if from != to {
                    from.check_transition(to)?;
                }
            }
            let desc = issue.description.clone();
            let before = tx.change_count();
            tx.change(id, |d| {
                write_fields(d, &f, &desc)?;
                if let Some(to) = new_status {
                    if to.as_str() != issue.status {
                        crate::ops::workflow::set_status_only(d, to)?;
                    }
                }
                // One change: the edit and its timestamp together (nothing when nothing moved).
                if automerge::transaction::Transactable::pending_ops(d) > 0 {
                    doc::put_str(d, "updated_at", &now_timestamp())?;
                }
                Ok(())
            })?;
            replace_dependencies(tx, id, &f)?;
            let changed = tx.change_count() > before;
            if let Some(text) = f.comment.as_deref().filter(|t| !t.trim().is_empty()) {
                let me = tx.session().to_string();
                crate::ops::records::add_comment(tx, id, &me, text)?;
            }
            Ok(IssueOutcome {
                issue: query::live_issue(tx.conn(), id)?,
                changed,
                warnings: Vec::new(),
                cascades: Default::default(),
            })
        })
    }

    /// `td delete`: soft-deletes an issue (idempotent).
    pub fn delete(&mut self, id: &str, if_match: Option<&str>) -> Result<IssueOutcome> {
        self.set_deleted(id, true, if_match)
    }

    /// `td restore`: clears a soft delete (idempotent).
    pub fn restore(&mut self, id: &str) -> Result<IssueOutcome> {
        self.set_deleted(id, false, None)
    }

    fn set_deleted(
        &mut self,
        id: &str,
        deleted: bool,
        if_match: Option<&str>,
    ) -> Result<IssueOutcome> {
        let session = self.session.id.clone();
        self.store.write(&session, |tx| {
            let issue = query::find_issue(tx.conn(), id)?
                .ok_or_else(|| not_found(format!("issue not found: {id}")))?;
            check_if_match(tx, id, if_match)?;
            if issue.deleted_at.is_some() == deleted {
                return Ok(IssueOutcome::unchanged(issue));
            }
            let now = now_timestamp();
            tx.change(id, |d| {
                doc::put_opt(d, "deleted_at", deleted.then_some(now.as_str()))?;
                doc::put_str(d, "updated_at", &now)
            })?;
            let issue =
                query::find_issue(tx.conn(), id)?.ok_or_else(|| not_found(id.to_string()))?;
            Ok(IssueOutcome {
                issue,
                changed: true,
                warnings: Vec::new(),
                cascades: Default::default(),
            })
        })
    }

    /// `td defer` / `td due`: sets or clears one of the two dates (`defer_until` also counts
    /// how often the issue was deferred, as td does).
    pub fn set_date(&mut self, id: &str, field: &str, date: Option<&str>) -> Result<IssueOutcome> {
        let date = date.map(model::check_date).transpose()?;
        let session = self.session.id.clone();
        self.store.write(&session, |tx| {
            let issue = query::live_issue(tx.conn(), id)?;
            let current = issue.column(field).map(String::from);
            if current == date {
                return Ok(IssueOutcome::unchanged(issue));
            }
            let count = issue.defer_count;
            tx.change(id, |d| {
                doc::put_opt(d, field, date.as_deref())?;
                if field == "defer_until" && date.is_some() {
                    doc::put_int(d, "defer_count", count + 1)?;
                }
                doc::put_str(d, "updated_at", &now_timestamp())
            })?;
            Ok(IssueOutcome {
                issue: query::live_issue(tx.conn(), id)?,
                changed: true,
                warnings: Vec::new(),
                cascades: Default::default(),
            })
        })
    }

    /// `td dep add`: `issue` depends on `on`. Returns false if the edge existed.
    pub fn dep_add(&mut self, issue: &str, on: &str) -> Result<bool> {
        let session = self.session.id.clone();
        self.store
            .write(&session, |tx| add_dependency(tx, issue, on))
    }

    /// `td dep rm`: removes the edge. Returns false if it did not exist.
    pub fn dep_rm(&mut self, issue: &str, on: &str) -> Result<bool> {
        let session = self.session.id.clone();
        self.store.write(&session, |tx| {
            query::live_issue(tx.conn(), issue)?;
            remove_dependency(tx, issue, on)
        })
    }
}
