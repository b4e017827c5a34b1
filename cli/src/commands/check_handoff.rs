//! `td check-handoff`: for agent exit hooks; exit 1 when this session should hand off first.

use anyhow::Result;
use clap::Args as ClapArgs;
use td_engine::views::to_json;

use super::Cx;
use crate::output::emit;

/// Arguments of `td check-handoff`.
#[derive(Debug, ClapArgs)]
#[command(after_help = "Example: td check-handoff || echo \"Don't forget to run td handoff!\"")]
pub(crate) struct Args {
    /// Print nothing; only the exit code says.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// Runs `td check-handoff`. With `--json` the answer is `needs_handoff` and the exit code is 0,
/// as in td; otherwise a needed handoff exits 1.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let c = cx.p.check_handoff()?;
    if cx.json {
        emit(true, &to_json(&c), String::new);
        return Ok(());
    }
    if !a.quiet {
        let mut s = String::new();
        if c.needs_handoff {
            s.push_str("⚠️  HANDOFF NEEDED\n");
            if c.in_progress_count > 0 {
                s.push_str(&format!(
                    "\nYou have {} issue(s) in progress:\n",
                    c.in_progress_count
                ));
                for id in &c.in_progress_issues {
                    let title = cx.p.issue(id).map(|i| i.title).unwrap_or_default();
                    s.push_str(&format!("  {id}  {title}\n"));
                }
                s.push_str("\nRun `td handoff <id>` for each issue before stopping work.\n");
            }
            if !c.active_work_session.is_empty() {
                s.push_str(&format!(
                    "\nYou have an active work session: {}\n\nRun `td ws handoff` to capture state and end session.\n",
                    c.active_work_session
                ));
            }
        } else {
            s.push_str("✓ No handoff needed - safe to exit");
        }
        emit(false, &serde_json::Value::Null, || s.trim_end().to_string());
    }
    if c.needs_handoff {
        std::process::exit(1);
    }
    Ok(())
}
