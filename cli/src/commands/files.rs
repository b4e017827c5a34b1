//! `td files`: the files linked to an issue, each with whether it changed since it was linked;
//! `--changed` keeps the changed ones, `-u` adds git's changes not linked to the issue.

use std::path::Path;

use anyhow::Result;
use clap::Args as ClapArgs;
use serde_json::{json, Value};
use td_engine::model::normalize_issue_id;
use td_engine::views::{to_json, FileLinkView};

use super::link::{file_line, git_blob_sha};
use super::Cx;
use crate::output::emit;

/// Arguments of `td files`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Issue id.
    pub id: String,
    /// Only files that changed since they were linked (modified, deleted or new).
    #[arg(long)]
    pub changed: bool,
    /// Also list files git sees modified or untracked that are not linked to this issue.
    #[arg(short = 'u', long)]
    pub untracked: bool,
}

/// A linked file's state now: `unchanged`, `modified` (its git blob hash differs from the one
/// recorded when linked), `deleted`, or `new` (linked outside git, so no hash to compare).
fn status(root: &Path, f: &FileLinkView) -> &'static str {
    if !root.join(&f.file_path).is_file() {
        return "deleted";
    }
    if f.linked_sha.is_empty() {
        return "new";
    }
    if git_blob_sha(root, &f.file_path) == f.linked_sha {
        "unchanged"
    } else {
        "modified"
    }
}

/// `git status --porcelain` of the project: (modified, untracked) paths, repository-relative.
fn git_changes(root: &Path) -> (Vec<String>, Vec<String>) {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["status", "--porcelain", "--untracked-files=all", "-z"])
        .output();
    let Ok(out) = out.map(|o| o.stdout) else {
        return (Vec::new(), Vec::new());
    };
    let (mut modified, mut untracked) = (Vec::new(), Vec::new());
    for entry in out.split(|b| *b == 0).filter(|e| e.len() > 3) {
        let path = String::from_utf8_lossy(&entry[3..]).into_owned();
        if entry.starts_with(b"??") {
            untracked.push(path);
        } else {
            modified.push(path);
        }
    }
    (modified, untracked)
}

/// Runs `td files`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let id = normalize_issue_id(&a.id);
    let rows: Vec<(FileLinkView, &str)> =
        cx.p.files(&id)?
            .into_iter()
            .map(|f| {
                let s = status(cx.root, &f);
                (f, s)
            })
            .filter(|(_, s)| !a.changed || *s != "unchanged")
            .collect();
    let files: Vec<Value> = rows
        .iter()
        .map(|(f, s)| {
            let mut v = to_json(f);
            v["status"] = json!(s);
            v
        })
        .collect();
    let mut human: Vec<String> = rows
        .iter()
        .map(|(f, s)| format!("{}  [{s}]", file_line(f)))
        .collect();
    if human.is_empty() {
        human.push(if a.changed {
            format!("No changed files linked to {id}.")
        } else {
            format!("No files linked to {id}.")
        });
    }
    if !a.untracked {
        emit(cx.json, &Value::Array(files), || human.join("\n"));
        return Ok(());
    }
    let linked: Vec<String> = cx.p.files(&id)?.into_iter().map(|f| f.file_path).collect();
    let (modified, new) = git_changes(cx.root);
    // td's own database is never work to link.
    let keep = |v: Vec<String>| -> Vec<String> {
        v.into_iter()
            .filter(|p| !linked.contains(p) && !p.starts_with(".todos/"))
            .collect()
    };
    let (modified, new) = (keep(modified), keep(new));
    if !modified.is_empty() || !new.is_empty() {
        human.push("\nUNTRACKED CHANGES (not linked to this issue):".into());
        human.extend(modified.iter().map(|p| format!("  {p:<40} [modified]")));
        human.extend(new.iter().map(|p| format!("  {p:<40} [new]")));
        human.push(format!(
            "\nUse `td link {id} <file>` to associate these files."
        ));
    }
    let v = json!({"files": files, "untracked": {"modified": modified, "new": new}});
    emit(cx.json, &v, || human.join("\n"));
    Ok(())
}
