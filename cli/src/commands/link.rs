//! `td link`: links files to an issue (paths relative to the project root).

use std::path::{Component, Path, PathBuf};

use anyhow::Result;
use clap::{Args as ClapArgs, ValueEnum};
use serde_json::{json, Value};
use td_engine::model::normalize_issue_id;
use td_engine::ops::files::FileLink;
use td_engine::views::{to_json, FileLinkView};

use super::Cx;
use crate::output::{emit, invalid};

/// What a linked file is to the issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Role {
    /// Code that implements it.
    Implementation,
    /// Its tests.
    Test,
    /// Background reading.
    Reference,
    /// Configuration.
    Config,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Implementation => "implementation",
            Role::Test => "test",
            Role::Reference => "reference",
            Role::Config => "config",
        }
    }
}

/// Arguments of `td link`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Issue id.
    pub id: String,
    /// Files to link.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// What the files are to the issue.
    #[arg(long, value_enum, ignore_case = true, default_value_t = Role::Implementation)]
    pub role: Role,
}

/// Runs `td link`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let (p, root, json) = (&mut *cx.p, cx.root, cx.json);
    let (paths, role) = (&a.paths, a.role.as_str());
    let id = normalize_issue_id(&a.id);
    let mut links = Vec::new();
    for given in paths {
        let rel = repo_relative(root, given)?;
        if !root.join(&rel).is_file() {
            return Err(invalid(format!("no such file: {}", given.display())));
        }
        links.push(FileLink {
            sha: git_blob_sha(root, &rel),
            path: rel,
        });
    }
    let rows = p.link_files(&id, &links, role)?;
    let files: Vec<Value> = rows.iter().map(to_json).collect();
    let v = json!({"action": if rows.is_empty() { "unchanged" } else { "linked" }, "issue_id": id, "files": files});
    emit(json, &v, || {
        if rows.is_empty() {
            format!("UNCHANGED {id}: already linked")
        } else {
            let mut s = format!("LINKED {} file(s) to {id}", rows.len());
            for r in &rows {
                s.push_str(&format!("\n  {}", file_line(r)));
            }
            s
        }
    });
    Ok(())
}

/// Removes `.` and resolves `..` without touching the file system (the file may be gone).
fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// A path as given on the command line (relative to the current directory), made relative to
/// the project root with forward slashes.
pub(crate) fn repo_relative(root: &Path, given: &Path) -> Result<String> {
    let cwd = std::env::current_dir()?;
    let abs = lexical(&cwd.join(given));
    let (abs, root) = match (abs.canonicalize(), root.canonicalize()) {
        (Ok(a), Ok(r)) => (a, r),
        _ => (abs, lexical(root)),
    };
    let rel = abs.strip_prefix(&root).map_err(|_| {
        invalid(format!(
            "{} is outside the project root {}",
            given.display(),
            root.display()
        ))
    })?;
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.is_empty() {
        return Err(invalid(format!(
            "{} is the project root, not a file",
            given.display()
        )));
    }
    Ok(parts.join("/"))
}

/// The blob hash git would give the file (`git hash-object`), or `""` outside git.
fn git_blob_sha(root: &Path, rel: &str) -> String {
    std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["hash-object", "--", rel])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// One linked file as a line: role, then path.
pub(crate) fn file_line(f: &FileLinkView) -> String {
    format!("{:<15} {}", f.role, f.file_path)
}
