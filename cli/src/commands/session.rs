//! `td session`: the current session, a new one with `--new`, or `td session list`.

use anyhow::Result;
use clap::{Args as ClapArgs, Subcommand};
use serde_json::{json, Value};
use td_engine::views::to_json;

use super::Cx;
use crate::output::emit;

/// Arguments of `td session`.
#[derive(Debug, ClapArgs)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct Args {
    #[command(subcommand)]
    pub cmd: Option<SessionCommand>,
    /// Name this session.
    pub name: Option<String>,
    /// End the current session and start a new one.
    #[arg(long)]
    pub new: bool,
}

/// `td session` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum SessionCommand {
    /// This machine's sessions, most recently active first (`*` marks this one).
    List,
    /// Sessions idle longer than --older-than (listed; removed with --force). Never this one.
    Cleanup {
        /// Idle for longer than this (30m, 12h, 7d, 2w).
        #[arg(long, default_value = "7d")]
        older_than: String,
        /// Remove them (otherwise only list).
        #[arg(long)]
        force: bool,
    },
}

/// Runs `td session`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    if let Some(SessionCommand::List) = &a.cmd {
        let all = cx.p.sessions()?;
        emit(
            cx.json,
            &Value::Array(all.iter().map(to_json).collect()),
            || {
                if all.is_empty() {
                    return "No sessions found.".into();
                }
                let mut s = format!(
                    "{:<16} {:<14} {:<24} {:<26} AGE",
                    "BRANCH", "AGENT", "SESSION", "LAST ACTIVITY"
                );
                for x in &all {
                    s.push_str(&format!(
                        "\n{}{:<15} {:<14} {:<24} {:<26} {}m",
                        if x.current { "*" } else { " " },
                        x.branch,
                        if x.agent.is_empty() {
                            "(none)"
                        } else {
                            &x.agent
                        },
                        x.session,
                        x.last_activity,
                        x.age_seconds / 60
                    ));
                }
                s
            },
        );
        return Ok(());
    }
    if let Some(SessionCommand::Cleanup { older_than, force }) = &a.cmd {
        let secs = crate::output::parse_duration(older_than)?;
        let ids = cx.p.stale_sessions(secs, *force)?;
        let action = if *force { "removed" } else { "would_remove" };
        emit(cx.json, &json!({"action": action, "sessions": ids}), || {
            if ids.is_empty() {
                format!("No sessions idle for more than {older_than}.")
            } else {
                format!(
                    "{} {} session(s):\n  {}{}",
                    if *force { "REMOVED" } else { "Would remove" },
                    ids.len(),
                    ids.join("\n  "),
                    if *force {
                        ""
                    } else {
                        "\n(run again with --force to remove them)"
                    }
                )
            }
        });
        return Ok(());
    }
    if a.new {
        cx.p.new_session(cx.session)?;
    }
    if let Some(name) = &a.name {
        cx.p.name_session(name)?;
    }
    let s = &cx.p.session;
    let v = json!({"session": s.id, "name": s.name, "branch": s.branch, "started_at": s.started_at, "new": s.is_new});
    emit(cx.json, &v, || {
        format!("{}{}", s.id, if s.is_new { " (new)" } else { "" })
    });
    Ok(())
}
