//! `td unstart`: gives issues back; `--session`/`--stale` sweep claims whose holder can no
//! longer hand off (previewed unless `--force`).

use anyhow::Result;
use clap::Args as ClapArgs;
use serde_json::{json, Value};
use td_engine::ops::claims::{format_idle, ClaimSelector};
use td_engine::views::to_json;

use super::common::{for_each, Detail, Reason};
use super::Cx;
use crate::output::{emit, invalid, parse_duration};

/// Arguments of `td unstart`.
#[derive(Debug, ClapArgs)]
#[command(after_help = "Examples:
  td unstart td-abc1                     Unstart one issue
  td unstart --session ses_abc123        Preview one session's claims
  td unstart --session ses_abc123 --force --json
  td unstart --stale 2h                  Preview claims idle longer than 2h
  td unstart --stale 2h --force --json   Release them, report what was released")]
pub(crate) struct Args {
    /// Issue ids (not with --session/--stale, which select their own).
    #[arg(required_unless_present_any = ["session", "stale"])]
    pub ids: Vec<String>,
    #[command(flatten)]
    pub reason: Reason,
    /// Release every claim held by this session id (in_progress, plus open issues that still
    /// name it; exact, no liveness guess).
    #[arg(long, value_name = "SESSION", conflicts_with_all = ["stale", "ids"])]
    pub session: Option<String>,
    /// Release claims whose holder has been inactive longer than this (e.g. 2h, 90m, 1d). No
    /// default: it must exceed your longest healthy stretch without a td command.
    #[arg(long, value_name = "DURATION", conflicts_with = "ids")]
    pub stale: Option<String>,
    /// With --session/--stale, actually release the claims (default previews).
    #[arg(long)]
    pub force: bool,
}

/// Runs `td unstart`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let selector = match (&a.session, &a.stale) {
        (Some(s), _) => ClaimSelector::Session(s.clone()),
        (None, Some(t)) => {
            let secs = parse_duration(t)?;
            if secs <= 0 {
                return Err(invalid(format!(
                    "--stale must be greater than zero, got {t}"
                )));
            }
            ClaimSelector::Stale {
                max_idle_secs: secs,
                text: t.clone(),
            }
        }
        (None, None) => {
            if a.force {
                return Err(invalid(
                    "--force only applies to the --session and --stale sweeps".into(),
                ));
            }
            return for_each(
                cx.json,
                &a.ids,
                ("unstarted", "not_started"),
                |id| cx.p.unstart(id, a.reason.reason.as_deref()),
                Detail::None,
            );
        }
    };
    let r =
        cx.p.sweep_claims(&selector, a.reason.reason.as_deref(), a.force)?;
    for u in &r.unresolved {
        eprintln!(
            "Warning: not evaluated: {} ({})",
            crate::output::escape(&u.id),
            crate::output::escape(&u.reason)
        );
    }
    let claims: Vec<Value> = r.claims.iter().map(to_json).collect();
    let unresolved: Vec<Value> = r.unresolved.iter().map(to_json).collect();
    let mut payload = json!({
        "action": r.action(),
        "forced": r.forced,
        "count": claims.len(),
        "claims": claims,
        "unresolved_count": unresolved.len(),
        "unresolved": unresolved,
    });
    payload[&r.selector_key] = Value::String(r.selector_value.clone());
    emit(cx.json, &payload, || {
        let selector = if r.selector_key == "stale" {
            format!("a holder idle longer than {}", r.selector_value)
        } else {
            format!("session {}", r.selector_value)
        };
        let mut s = String::new();
        if r.claims.is_empty() && !(r.forced && r.skipped > 0) {
            s.push_str(&format!("No claims held by {selector}."));
        } else if !r.forced {
            s.push_str(&format!(
                "Will release {} claim(s) held by {selector}:\n",
                r.claims.len()
            ));
            for c in &r.claims {
                s.push_str(&format!(
                    "  - {} (session {}, idle {})\n",
                    c.id,
                    c.session,
                    format_idle(c.idle_seconds)
                ));
            }
            s.push_str("\nRun with --force to release.");
        } else {
            for c in &r.claims {
                s.push_str(&format!(
                    "RELEASED {} → open (session {}, idle {})\n",
                    c.id,
                    c.session,
                    format_idle(c.idle_seconds)
                ));
            }
            s.push_str(&format!("\nReleased {} claim(s).", r.claims.len()));
            if r.skipped > 0 {
                s.push_str(&format!(
                    "\nSkipped {} claim(s) that moved to another session mid-sweep.",
                    r.skipped
                ));
            }
        }
        if !r.unresolved.is_empty() {
            s.push_str(&format!(
                "\n\n{} claim(s) left unresolved; release them explicitly with `td unstart <id>`.",
                r.unresolved.len()
            ));
        }
        s
    });
    Ok(())
}
