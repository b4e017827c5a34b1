//! `td ws`: work sessions (group issues, log and hand off across them).

use anyhow::Result;
use clap::Subcommand;
use serde_json::{json, Value};
use td_engine::model::normalize_issue_id;
use td_engine::views::to_json;

use super::common::HandoffArgs;
use super::log::LogTypeArgs;
use super::Cx;
use crate::hub::Auto;
use crate::output::emit;

/// `td ws`.
#[derive(Debug, Subcommand)]
pub(crate) enum WsCommand {
    /// Start a named work session.
    Start {
        /// Name.
        name: String,
    },
    /// Tag issues into the active work session (open ones are started, as in td).
    Tag {
        /// Issue ids.
        #[arg(required = true)]
        ids: Vec<String>,
        /// Tag without starting them.
        #[arg(long)]
        no_start: bool,
    },
    /// Remove issues from the active work session.
    Untag {
        /// Issue ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Log to every tagged issue.
    Log {
        /// Message.
        message: String,
        #[command(flatten)]
        kind: LogTypeArgs,
        /// Log to this issue only (it need not be tagged).
        #[arg(long, value_name = "ID")]
        only: Option<String>,
    },
    /// Hand off every tagged issue and end the work session.
    Handoff {
        #[command(flatten)]
        lists: HandoffArgs,
        /// Keep the work session open.
        #[arg(long = "continue")]
        keep_open: bool,
        /// Also submit the tagged issues in progress for review.
        #[arg(long)]
        review: bool,
    },
    /// End the active work session.
    End,
    /// Show the active work session.
    Current,
    /// A work session (default: the active one) with its tagged issues.
    Show {
        /// Work session id (ws-…).
        id: Option<String>,
        /// Also each tagged issue's latest handoff.
        #[arg(long)]
        full: bool,
    },
    /// List work sessions.
    List,
}

impl WsCommand {
    /// Under autosync: showing the current or listed sessions reads local state only; the
    /// rest write.
    pub(crate) fn autosync(&self) -> Option<Auto> {
        match self {
            WsCommand::Current | WsCommand::List | WsCommand::Show { .. } => None,
            WsCommand::Start { .. }
            | WsCommand::Tag { .. }
            | WsCommand::Untag { .. }
            | WsCommand::Log { .. }
            | WsCommand::Handoff { .. }
            | WsCommand::End => Some(Auto::PushAfter),
        }
    }
}

/// Runs one `td ws` subcommand.
pub(crate) fn run(w: &WsCommand, cx: &mut Cx<'_>) -> Result<()> {
    let (p, json) = (&mut *cx.p, cx.json);
    match w {
        WsCommand::Start { name } => {
            let id = p.ws_start(name)?;
            emit(
                json,
                &json!({"action": "started", "id": id, "name": name}),
                || format!("WORK SESSION STARTED {id} ({name})"),
            );
        }
        WsCommand::Tag { ids, .. } | WsCommand::Untag { ids } => {
            let ids: Vec<String> = ids.iter().map(|i| normalize_issue_id(i)).collect();
            let (tag, changed) = match w {
                WsCommand::Tag { no_start, .. } => (true, p.ws_tag(&ids, !no_start)?),
                _ => (false, p.ws_untag(&ids)?),
            };
            let (ws, changed) = changed;
            let action = if tag { "tagged" } else { "untagged" };
            emit(
                json,
                &json!({"action": action, "work_session_id": ws, "issues": changed}),
                || format!("{} {} in {ws}", action.to_uppercase(), changed.join(", ")),
            );
        }
        WsCommand::Log {
            message,
            kind,
            only,
        } => {
            let only = only.as_deref().map(td_engine::model::normalize_issue_id);
            let ids = p.ws_log(message, kind.resolve(), only.as_deref())?;
            emit(json, &json!({"action": "logged", "ids": ids}), || {
                format!("LOGGED to {} issue(s)", ids.len())
            });
        }
        WsCommand::Handoff {
            lists,
            keep_open,
            review,
        } => {
            let (ws, ids) = p.ws_handoff(&lists.text()?, *keep_open, *review)?;
            emit(
                json,
                &json!({"action": "handoff", "work_session_id": ws, "handoffs": ids,
                        "ended": !keep_open, "reviewed": review}),
                || {
                    format!(
                        "HANDOFF RECORDED for {} issue(s); work session {ws} {}",
                        ids.len(),
                        if *keep_open { "continues" } else { "ended" }
                    )
                },
            );
        }
        WsCommand::End => {
            let ws = p.ws_end()?;
            emit(json, &json!({"action": "ended", "id": ws}), || {
                format!("WORK SESSION ENDED {ws}")
            });
        }
        WsCommand::Current => {
            let cur = p.ws_current()?;
            let v = cur.as_ref().map(to_json).unwrap_or(Value::Null);
            emit(json, &v, || match cur {
                Some(c) => format!("{} {} ({} issues)", c.id, c.name, c.issues.len()),
                None => "No active work session.".into(),
            });
        }
        WsCommand::Show { id, full } => {
            let ws = match id {
                Some(id) => p.work_session(id)?,
                None => p.ws_current()?.ok_or_else(|| {
                    crate::output::invalid(
                        "no active work session: td ws show <ws-id> (see 'td ws list')".into(),
                    )
                })?,
            };
            let mut issues = Vec::new();
            for i in &ws.issues {
                issues.push(p.issue_detail(i)?);
            }
            let mut v = to_json(&ws);
            v["issue_details"] = Value::Array(issues.iter().map(to_json).collect());
            emit(json, &v, || {
                let mut s = format!(
                    "{} {}{} ({} issues)",
                    ws.id,
                    ws.name,
                    if ws.ended_at.is_none() {
                        "  (active)"
                    } else {
                        ""
                    },
                    ws.issues.len()
                );
                for d in &issues {
                    s.push_str(&format!("\n  {}", crate::output::issue_line(&d.issue)));
                    if let (true, Some(h)) = (*full, &d.handoff) {
                        for item in h.remaining.as_array().into_iter().flatten() {
                            s.push_str(&format!(
                                "\n      remaining: {}",
                                item.as_str().unwrap_or("")
                            ));
                        }
                    }
                }
                s
            });
        }
        WsCommand::List => {
            let all = p.ws_list()?;
            let human = if all.is_empty() {
                "No work sessions.".to_string()
            } else {
                all.iter()
                    .map(|c| {
                        format!(
                            "{}  {}  {}{}",
                            c.id,
                            c.started_at,
                            c.name,
                            if c.ended_at.is_none() {
                                "  (active)"
                            } else {
                                ""
                            }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            emit(
                json,
                &Value::Array(all.iter().map(to_json).collect()),
                || human,
            );
        }
    }
    Ok(())
}
