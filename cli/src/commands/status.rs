//! `td status`: project and session summary; with `--db`, the database and hub sync state.

use anyhow::Result;
use clap::Args as ClapArgs;
use serde_json::{json, Value};

use super::Cx;
use crate::output::emit;

/// Arguments of `td status`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Also show the database and hub sync state.
    #[arg(long)]
    pub db: bool,
}

/// Runs `td status`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    if a.db {
        return crate::hub::status_db(cx.p, cx.root, cx.json);
    }
    let p = &*cx.p;
    let counts = p.status_counts()?;
    let stats = p.log_stats()?;
    let focused = p.focused_issue()?;
    let mut by_status = serde_json::Map::new();
    for (s, n) in &counts {
        by_status.insert(s.clone(), Value::from(*n));
    }
    let db = td_engine::store::db_path(cx.root);
    let v = json!({"session": p.session.id, "focused_issue": focused, "issues": by_status, "project": p.store.project_id()?,
        "machine": p.store.identity().fingerprint(), "database": db.display().to_string(),
        "change_log": {"changes": stats.changes, "actors": stats.actors, "documents": stats.documents}});
    emit(cx.json, &v, || {
        let mut s = format!("Session: {}\n", p.session.id);
        if let Some(f) = &focused {
            s.push_str(&format!("Focused: {f}\n"));
        }
        s.push_str("Issues:");
        for (st, n) in &counts {
            s.push_str(&format!(" {st}={n}"));
        }
        s.push_str(&format!(
            "\nChange log: {} changes from {} writers across {} documents",
            stats.changes, stats.actors, stats.documents
        ));
        s
    });
    Ok(())
}
