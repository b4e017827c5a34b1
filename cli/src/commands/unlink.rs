//! `td unlink`: removes file links from an issue.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args as ClapArgs;
use serde_json::json;
use td_engine::model::normalize_issue_id;

use super::link::repo_relative;
use super::Cx;
use crate::output::emit;

/// Arguments of `td unlink`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Issue id.
    pub id: String,
    /// Files to unlink.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

/// Runs `td unlink`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let (p, root, json) = (&mut *cx.p, cx.root, cx.json);
    let id = normalize_issue_id(&a.id);
    let rels = a
        .paths
        .iter()
        .map(|given| repo_relative(root, given))
        .collect::<Result<Vec<_>>>()?;
    let removed = p.unlink_files(&id, &rels)?;
    let action = if removed.is_empty() {
        "unchanged"
    } else {
        "unlinked"
    };
    let v = json!({"action": action, "issue_id": id, "files": removed});
    emit(json, &v, || {
        if removed.is_empty() {
            format!("UNCHANGED {id}: none of those files were linked")
        } else {
            format!("UNLINKED {} from {id}", removed.join(", "))
        }
    });
    Ok(())
}
