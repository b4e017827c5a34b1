//! `td session`: the current session, or a new one with `--new`.

use anyhow::Result;
use clap::Args as ClapArgs;
use serde_json::json;

use super::Cx;
use crate::output::emit;

/// Arguments of `td session`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// End the current session and start a new one.
    #[arg(long)]
    pub new: bool,
}

/// Runs `td session`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    if a.new {
        cx.p.new_session(cx.session)?;
    }
    let s = &cx.p.session;
    let v = json!({"session": s.id, "name": s.name, "branch": s.branch, "started_at": s.started_at, "new": s.is_new});
    emit(cx.json, &v, || {
        format!("{}{}", s.id, if s.is_new { " (new)" } else { "" })
    });
    Ok(())
}
