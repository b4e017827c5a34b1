//! What several commands share: the issue field flags, `--if-match`, handoff lists, and
//! running an issue command over several ids.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use serde_json::{json, Value};
use td_engine::model::{self, normalize_issue_id};
use td_engine::ops::issues::{IssueFields, IssueOutcome};
use td_engine::ops::records::HandoffText;
use td_engine::EngineError;

use crate::output::{emit, one_or_many, CliError};

/// Fields shared by `create`, `update` and `epic create`.
#[derive(Debug, Args, Default, Clone)]
pub(crate) struct FieldArgs {
    /// Issue type: bug, feature (story), task, epic, chore.
    #[arg(short = 't', long = "type", value_name = "TYPE")]
    pub issue_type: Option<String>,
    /// Priority: P0-P4, 0-4, or critical/high/medium/low.
    #[arg(short = 'p', long)]
    pub priority: Option<String>,
    /// Story points: 1, 2, 3, 5, 8, 13, 21.
    #[arg(long)]
    pub points: Option<i64>,
    /// Labels, comma-separated or repeated (replaces the set; "" clears it).
    #[arg(short = 'l', long, visible_aliases = ["label", "tag", "tags"], value_name = "LABELS")]
    pub labels: Vec<String>,
    /// Description.
    #[arg(short = 'd', long, visible_aliases = ["desc", "body", "notes"])]
    pub description: Option<String>,
    /// Read the description from a file, or `-` for stdin (formatting kept).
    #[arg(long, value_name = "FILE", conflicts_with = "description")]
    pub description_file: Option<PathBuf>,
    /// Acceptance criteria.
    #[arg(long)]
    pub acceptance: Option<String>,
    /// Read the acceptance criteria from a file, or `-` for stdin.
    #[arg(long, value_name = "FILE", conflicts_with = "acceptance")]
    pub acceptance_file: Option<PathBuf>,
    /// Parent issue or epic ("" clears).
    #[arg(long, visible_alias = "epic")]
    pub parent: Option<String>,
    /// Sprint name.
    #[arg(long)]
    pub sprint: Option<String>,
    /// Minor issue: may be approved by its implementer.
    #[arg(long)]
    pub minor: bool,
    /// Defer until a date (2026-03-01, tomorrow, monday, +7d, next-week, …).
    #[arg(long, value_name = "DATE")]
    pub defer: Option<String>,
    /// Due date (2026-03-15, friday, +2w, next-month, …).
    #[arg(long, value_name = "DATE")]
    pub due: Option<String>,
}

impl FieldArgs {
    /// The engine's field changes (reading `--description-file`/`--acceptance-file`).
    pub(crate) fn fields(&self) -> Result<IssueFields> {
        Ok(IssueFields {
            issue_type: self.issue_type.clone(),
            priority: self.priority.clone(),
            points: self.points,
            labels: (!self.labels.is_empty()).then(|| model::parse_labels(&self.labels.join(","))),
            description: text_or_file(&self.description, &self.description_file)?,
            acceptance: text_or_file(&self.acceptance, &self.acceptance_file)?,
            parent: self.parent.clone(),
            sprint: self.sprint.clone(),
            minor: self.minor.then_some(true),
            defer_until: self.defer.clone().map(Some),
            due_date: self.due.clone().map(Some),
            ..Default::default()
        })
    }
}

/// Reads a text the user points at: a file, or stdin for `-`. Read bounded: a text field holds
/// at most [`td_engine::doc::MAX_TEXT_BYTES`], so a larger input is refused before it is held
/// in memory whole, with the limit in the message.
pub(crate) fn read_text(path: &std::path::Path) -> Result<String> {
    read_bounded(
        path,
        td_engine::doc::MAX_TEXT_BYTES as u64,
        "a td text may hold; link the file instead ('td link <id> <file>')",
    )
}

/// The most an import file may hold (a 100k-issue export is about 100 MB).
pub(crate) const MAX_IMPORT_BYTES: u64 = 1 << 30;

/// Reads a UTF-8 file (or stdin for `-`), refusing it past `limit` bytes before holding more.
pub(crate) fn read_bounded(path: &std::path::Path, limit: u64, what: &str) -> Result<String> {
    use std::io::Read;
    let shown = path.display();
    let cannot = |e: std::io::Error| crate::output::invalid(format!("cannot read {shown}: {e}"));
    let reader: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(path).map_err(cannot)?)
    };
    let mut bytes = Vec::new();
    reader
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > limit {
        return Err(crate::output::invalid(format!(
            "{shown} is larger than the {} KiB {what}",
            limit / 1024
        )));
    }
    String::from_utf8(bytes)
        .map_err(|_| crate::output::invalid(format!("{shown} is not UTF-8 text")))
}

/// A text given inline, or read from a file (`-` is stdin).
pub(crate) fn text_or_file(
    text: &Option<String>,
    file: &Option<PathBuf>,
) -> Result<Option<String>> {
    match file {
        Some(path) => read_text(path).map(Some),
        None => Ok(text.clone()),
    }
}

/// `--if-match`: the optimistic check.
#[derive(Debug, Args, Default, Clone)]
pub(crate) struct IfMatch {
    /// Only act if the issue is still at this version (from `td show --json`); otherwise fail
    /// with code `conflict` and write nothing.
    #[arg(long, value_name = "VERSION")]
    pub if_match: Option<String>,
}

impl IfMatch {
    /// The expected version, if given.
    pub(crate) fn version(&self) -> Option<&str> {
        self.if_match.as_deref()
    }
}

/// Handoff lists. Each value may be `@path` (the file's lines) or `-` (stdin's lines).
#[derive(Debug, Args, Default, Clone)]
pub(crate) struct HandoffArgs {
    /// What was done (repeatable).
    #[arg(long)]
    pub done: Vec<String>,
    /// What remains (repeatable).
    #[arg(long)]
    pub remaining: Vec<String>,
    /// A decision made (repeatable).
    #[arg(long = "decision")]
    pub decisions: Vec<String>,
    /// An open question (repeatable).
    #[arg(long)]
    pub uncertain: Vec<String>,
    /// A simple note, recorded as done.
    #[arg(short = 'n', long)]
    pub note: Option<String>,
    /// A simple message, recorded as done.
    #[arg(short = 'm', long)]
    pub message: Option<String>,
}

impl HandoffArgs {
    /// The engine's handoff text, `@file` and `-` expanded (stdin is read once).
    pub(crate) fn text(&self) -> Result<HandoffText> {
        let mut stdin_used = false;
        let mut expand = |values: &[String]| -> Result<Vec<String>> {
            let mut out = Vec::new();
            for v in values {
                let text = if v == "-" && !stdin_used {
                    stdin_used = true;
                    read_text(std::path::Path::new("-"))?
                } else if let Some(path) = v.strip_prefix('@').filter(|p| !p.is_empty()) {
                    read_text(std::path::Path::new(path))?
                } else {
                    out.push(v.clone());
                    continue;
                };
                out.extend(
                    text.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(String::from),
                );
            }
            Ok(out)
        };
        let mut done = expand(&self.done)?;
        done.extend(self.note.iter().chain(&self.message).cloned());
        Ok(HandoffText {
            done,
            remaining: expand(&self.remaining)?,
            decisions: expand(&self.decisions)?,
            uncertain: expand(&self.uncertain)?,
        })
    }
}

/// `--reason`: why (logged on the issue, as td does).
#[derive(Debug, Args, Default, Clone)]
pub(crate) struct Reason {
    /// Why (recorded in the issue's log).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

/// `-m/--reason` and td's aliases for it (`--message`, `--comment`, `--note`, `--notes`).
#[derive(Debug, Args, Default, Clone)]
pub(crate) struct Message {
    /// Why (recorded in the issue's log; aliases --message, --comment, --note, --notes).
    #[arg(
        short = 'm',
        long = "reason",
        visible_aliases = ["message", "comment", "note", "notes"],
        value_name = "TEXT"
    )]
    pub reason: Option<String>,
}

/// Issue ids and `--reason`: the arguments of `unstart`, `reopen`, `unblock`.
#[derive(Debug, Args, Default, Clone)]
pub(crate) struct IdsReason {
    /// Issue ids.
    #[arg(required = true)]
    pub ids: Vec<String>,
    #[command(flatten)]
    pub reason: Reason,
}

/// Issue ids (one or more): the arguments of `restore`.
#[derive(Debug, Args, Default, Clone)]
pub(crate) struct Ids {
    /// Issue ids.
    #[arg(required = true)]
    pub ids: Vec<String>,
}

/// What a failed issue command adds to its error: on a `conflict`, the issue as it now is
/// (read afresh), so the caller can retry from it.
pub(crate) enum Detail<'a> {
    /// Nothing.
    None,
    /// The current state of the issue, from the project at this root.
    Current(&'a std::path::Path),
}

impl Detail<'_> {
    fn of(&self, id: &str) -> Option<Value> {
        let Detail::Current(root) = self else {
            return None;
        };
        let identity = td_transport::identity::machine_identity().ok()?;
        let p =
            td_engine::Project::open(root, identity, &crate::env::session_context(root)).ok()?;
        p.issue_detail(id).ok().map(|d| d.to_json())
    }
}

/// Runs an issue command for each id, printing `action` (or `repeat` for idempotent repeats).
/// Stops at the first failure, after printing what succeeded.
pub(crate) fn for_each(
    json: bool,
    ids: &[String],
    (action, repeat): (&str, &str),
    mut op: impl FnMut(&str) -> td_engine::Result<IssueOutcome>,
    detail: Detail<'_>,
) -> Result<()> {
    let mut values = Vec::new();
    let mut lines = Vec::new();
    for raw in ids {
        let id = normalize_issue_id(raw);
        match op(&id) {
            Ok(o) => {
                if !json {
                    for w in &o.warnings {
                        eprintln!("Warning: {}", crate::output::escape(w));
                    }
                }
                let act = if o.changed { action } else { repeat };
                lines.push(if o.changed {
                    confirmation(act, &id, &o.issue)
                } else {
                    format!("{id}: {}", act.replace('_', " "))
                });
                // td's cascades: the epics that followed, the dependents unblocked.
                for parent in &o.cascades.parents {
                    lines.push(format!(
                        "  ↑ Parent {parent} auto-cascaded to {}",
                        o.issue.status
                    ));
                }
                for dep in &o.cascades.unblocked {
                    lines.push(format!("  ↓ Dependent {dep} auto-unblocked"));
                }
                let mut v = json!({"action": act, "id": id, "status": o.issue.status, "issue": o.issue.to_json()});
                if matches!(action, "closed" | "approved" | "review_requested") {
                    v["cascaded_parents"] = json!(o.cascades.parents);
                    v["unblocked_dependents"] = json!(o.cascades.unblocked);
                }
                values.push(v);
            }
            Err(e) => {
                if !json {
                    for l in &lines {
                        println!("{}", crate::output::escape(l));
                    }
                }
                let d = matches!(e, EngineError::Conflict(_))
                    .then(|| detail.of(&id))
                    .flatten();
                return Err(CliError {
                    code: e.code(),
                    message: e.to_string(),
                    detail: d,
                }
                .into());
            }
        }
    }
    emit(json, &one_or_many(values), || lines.join("\n"));
    Ok(())
}

/// td's confirmation line for a transition that happened (`STARTED td-x (session: ses_y)`,
/// `REJECTED td-x → open`, …; `cmd/start.go`, `cmd/review.go`, `cmd/block.go`).
fn confirmation(action: &str, id: &str, issue: &td_engine::views::IssueView) -> String {
    match action {
        "started" => format!("STARTED {id} (session: {})", issue.implementer_session),
        "review_requested" => format!(
            "REVIEW REQUESTED {id} (session: {})",
            issue.review_requested_by_session
        ),
        "approved" if !issue.reviewer_session.is_empty() => {
            format!("APPROVED {id} (reviewer: {})", issue.reviewer_session)
        }
        "rejected" | "unstarted" => format!("{} {id} → open", action.to_uppercase()),
        other => format!("{} {id}", other.to_uppercase().replace('_', " ")),
    }
}

/// Today's date (local time) as `YYYY-MM-DD`.
pub(crate) fn today() -> String {
    td_engine::model::now_timestamp()[..10].to_string()
}

/// An issue and a date (`td defer`, `td due`).
#[derive(Debug, Args, Clone)]
pub(crate) struct DateArgs {
    /// Issue id.
    pub id: String,
    /// The date: 2026-03-01, today, tomorrow, monday…sunday (the next one), next-week,
    /// next-month, +3d, +2w, +1m.
    #[arg(required_unless_present = "clear", allow_hyphen_values = true)]
    pub date: Option<String>,
    /// Remove the date.
    #[arg(long, conflicts_with = "date")]
    pub clear: bool,
}

/// Sets or clears a date field (`defer_until`, `due_date`) and reports it.
pub(crate) fn set_date(cx: &mut super::Cx<'_>, a: &DateArgs, field: &str) -> Result<()> {
    let id = normalize_issue_id(&a.id);
    let o = cx.p.set_date(&id, field, a.date.as_deref())?;
    let action = match (o.changed, a.date.is_some()) {
        (false, _) => "unchanged",
        (true, true) => "set",
        (true, false) => "cleared",
    };
    let stored = o.issue.column(field);
    let v = json!({"action": action, "id": id, field: stored, "issue": o.issue.to_json()});
    emit(cx.json, &v, || {
        format!(
            "{} {field} of {id}{}",
            action.to_uppercase(),
            stored.map(|d| format!(" = {d}")).unwrap_or_default()
        )
    });
    Ok(())
}

/// Types and priorities as given on the command line (`-t`, `-p` of `list` and `search`), in
/// their canonical spellings; a bad one is refused naming the valid ones.
pub(crate) fn types_and_priorities(
    types: &[String],
    priorities: &[String],
) -> td_engine::Result<(Vec<String>, Vec<String>)> {
    let t = types
        .iter()
        .map(|t| model::parse_type(t).map(String::from))
        .collect::<td_engine::Result<_>>()?;
    let p = priorities
        .iter()
        .map(|p| model::parse_priority(p).map(String::from))
        .collect::<td_engine::Result<_>>()?;
    Ok((t, p))
}
