//! `td usage`: the context block an agent reads at the start of a context, in td's sections
//! (NEW SESSION, CURRENT SESSION, WORK SESSION, FOCUSED ISSUE, IN PROGRESS, AWAITING YOUR
//! REVIEW, READY TO CLOSE, READY TO START, then the workflow guide unless `-q`/`--compact`)
//! and td's JSON keys.

use anyhow::Result;
use clap::Args as ClapArgs;
use td_engine::model::time_ago;
use td_engine::views::{to_json, UsageView};

use super::common::today;
use super::Cx;
use crate::output::emit;

/// Arguments of `td usage`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Shorter output (no workflow guide).
    #[arg(long)]
    pub compact: bool,
    /// Hide workflow instructions (show only actionable items).
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Start a new session first (use at conversation start, or after /clear).
    #[arg(long)]
    pub new_session: bool,
}

/// Runs `td usage`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let previous = a.new_session.then(|| cx.p.session.id.clone());
    if a.new_session {
        cx.p.new_session(cx.session)?;
    }
    let u = cx.p.usage(&today())?;
    emit(cx.json, &to_json(&u), || {
        text(&u, cx, previous.as_deref(), !(a.compact || a.quiet))
    });
    Ok(())
}

fn text(u: &UsageView, cx: &Cx<'_>, previous: Option<&str>, guide: bool) -> String {
    let s = &cx.p.session;
    let mut out = String::from("You have access to `td`, a local task management CLI.\n\n");
    if s.is_new {
        out.push_str(&format!("NEW SESSION: {} on branch: {}", s.id, s.branch));
        match previous.filter(|p| *p != s.id) {
            Some(p) => out.push_str(&format!(
                " (previous: {p})\n  You are a new context. Issues from the previous session may be awaiting review.\n\n"
            )),
            None => out.push_str("\n\n"),
        }
    }
    let mut who = s.id.clone();
    if !s.name.is_empty() {
        who.push_str(&format!(" ({})", s.name));
    }
    if !cx.session.agent_type.is_empty() {
        who.push_str(&format!(" [{}]", cx.session.agent_type));
    }
    out.push_str(&format!("CURRENT SESSION: {who} on branch: {}\n", s.branch));
    if let Some(ws) = &u.work_session {
        out.push_str(&format!(
            "WORK SESSION: {} \"{}\" ({} issues tagged)\n",
            ws.id,
            ws.name,
            u.ws_issues.len()
        ));
    }
    out.push('\n');
    if let Some(f) = &u.focused {
        out.push_str(&format!(
            "FOCUSED ISSUE: {} \"{}\" [{}]\n",
            f.id, f.title, f.status
        ));
        if let Some(h) = &u.focused_handoff {
            out.push_str(&format!("  Last handoff ({}):\n", time_ago(&h.timestamp)));
            for (label, list) in [
                ("Done", &h.done),
                ("Remaining", &h.remaining),
                ("Uncertain", &h.uncertain),
            ] {
                let items: Vec<&str> = list
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str())
                    .collect();
                if !items.is_empty() {
                    out.push_str(&format!("    {label}: {}\n", items.join(", ")));
                }
            }
        }
        if !u.focused_files.is_empty() {
            let mut names: Vec<&str> = u
                .focused_files
                .iter()
                .take(3)
                .map(|f| f.file_path.as_str())
                .collect();
            let more = u.focused_files.len().saturating_sub(3);
            let more = (more > 0).then(|| format!("... +{more} more"));
            names.extend(more.as_deref());
            out.push_str(&format!("  Files: {}\n", names.join(", ")));
        }
        out.push('\n');
    }
    let section = |out: &mut String, title: String, lines: Vec<String>| {
        if !lines.is_empty() {
            out.push_str(&title);
            out.push('\n');
            for l in lines {
                out.push_str(&format!("  {l}\n"));
            }
            out.push('\n');
        }
    };
    let line = |i: &td_engine::views::IssueView| {
        format!("{} \"{}\" {} {}", i.id, i.title, i.priority, i.issue_type)
    };
    section(
        &mut out,
        format!("IN PROGRESS ({} issues):", u.in_progress.len()),
        u.in_progress.iter().map(line).collect(),
    );
    section(
        &mut out,
        format!("AWAITING YOUR REVIEW ({} issues):", u.reviewable.len()),
        u.reviewable
            .iter()
            .map(|i| {
                format!(
                    "{} \"{}\" {} - impl by {}",
                    i.id, i.title, i.priority, i.implementer_session
                )
            })
            .collect(),
    );
    section(
        &mut out,
        format!(
            "READY TO CLOSE ({} issues) — review already recorded:",
            u.ready_to_close.len()
        ),
        u.ready_to_close
            .iter()
            .map(|i| {
                format!(
                    "{} \"{}\" {} - reviewed by {} (run `td approve {}` to close)",
                    i.id, i.title, i.priority, i.reviewer_session, i.id
                )
            })
            .collect(),
    );
    section(
        &mut out,
        format!("READY TO START ({} issues):", u.ready.len()),
        u.ready.iter().map(line).collect(),
    );
    if guide {
        out.push_str(GUIDE);
    }
    out.trim_end().to_string()
}

/// td's workflow guide, shown unless `-q`/`--compact`.
const GUIDE: &str = "WORKFLOW:

  1. `td start <id>` to begin work
     Multi-issue: `td ws start \"name\"` then `td ws tag <ids>`
  2. `td log \"msg\"` to track progress
     Multi-issue: `td ws log \"msg\"`
  3. `td handoff <id>` to capture state for another context
     Multi-issue: `td ws handoff`
  4. `td review <id>` to submit for review
     (the submitting session is recorded as review_requested_by_session)
  5. Reviewer: `td approve <id>` to review + close, or `td reject <id>` to return to open
     Prefer an independent reviewer when practical; they run
     `td approve <id> --reason \"...\"` to approve and close.
     Trusted mode (default), if you implemented it: name whoever reviewed it
     with `td approve <id> --reviewed-by \"<who>\"`, or if you reviewed your
     own work, `td approve <id> --self-review --reason \"...\"`.

  Use `td ws` commands when implementing multiple related issues.

KEY COMMANDS:
  td ws current           Current work session state
  td show <id>            Full context for resuming
  td next                 Highest priority open issue
  td status --json        Machine-readable session and review state
  td list --json          Machine-readable issue listings for scripts
  td reviewable           Issues you can review
  td approve/reject <id>  Complete review
  td sync / td peer sync  Exchange changes with the team's hub or other machines

REVIEW (review_policy_mode=trusted, the default):
  Closing needs a review, and td asks who performed it.
  An independent reviewer runs `td approve <id> --reason \"...\"`.
  If you implemented it and a sub-agent reviewed it, name them:
  `td approve <id> --reviewed-by \"<who>\"` (no --reason needed).
  If you reviewed it yourself, say so:
  `td approve <id> --self-review --reason \"...\"` (audited).
  td cannot verify --reviewed-by. Never name a reviewer who did not review.
  Pin delegated|strict for a mechanical independence boundary.
  Exception: `td add \"title\" --minor` creates self-reviewable tasks.

Use `td review` -> `td approve` for completed work.
  `td close` is for admin closures: duplicates, won't-fix, cleanup.

Leave a `td handoff` or `td ws handoff` when work will continue elsewhere.

For a future agent context, start with `td usage --new-session -q`.
Use `td ws start` when related issues benefit from a shared handoff.
  - session = identity (always exists)  |  ws = work container (optional)

Run `td <command> --help` for command details.
";
