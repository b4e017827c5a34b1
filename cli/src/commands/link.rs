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
#[command(after_help = "Examples:
  td link td-abc1 src/cache.rs            One file
  td link td-abc1 'src/**/*.rs' --role test   A pattern (quoted: td expands it)
  td link td-abc1 src/cache               A directory (its subdirectories too)
  td link td-abc1 --depends-on td-def2    A dependency instead (as 'td dep add')")]
pub(crate) struct Args {
    /// Issue id.
    pub id: String,
    /// Files, directories or glob patterns to link.
    #[arg(required_unless_present = "depends_on", value_name = "PATH")]
    pub paths: Vec<String>,
    /// What the files are to the issue.
    #[arg(long, value_enum, ignore_case = true, default_value_t = Role::Implementation)]
    pub role: Role,
    /// Include subdirectories of a directory given (`--recursive=false`: only its files).
    #[arg(long, num_args = 0..=1, default_value_t = true, default_missing_value = "true", action = clap::ArgAction::Set, value_name = "BOOL")]
    pub recursive: bool,
    /// Add a dependency instead of linking files: the issue depends on this one.
    #[arg(long, value_name = "ID", conflicts_with = "paths")]
    pub depends_on: Option<String>,
}

/// The files a command-line argument names: a glob pattern's matches, a directory's files
/// (with its subdirectories when `recursive`), or the file itself.
fn expand(given: &str, recursive: bool) -> Result<Vec<PathBuf>> {
    let matches: Vec<PathBuf> = match glob::glob(given) {
        Ok(paths) => paths.filter_map(|p| p.ok()).collect(),
        Err(e) => return Err(invalid(format!("invalid pattern {given}: {e}"))),
    };
    let matches = if matches.is_empty() && Path::new(given).exists() {
        vec![PathBuf::from(given)]
    } else {
        matches
    };
    if matches.is_empty() {
        return Err(invalid(format!("no files matching: {given}")));
    }
    let mut files = Vec::new();
    for m in matches {
        if m.is_dir() {
            let depth = if recursive { usize::MAX } else { 1 };
            for entry in walkdir::WalkDir::new(&m)
                .max_depth(depth)
                .sort_by_file_name()
            {
                let entry =
                    entry.map_err(|e| invalid(format!("cannot read {}: {e}", m.display())))?;
                if entry.file_type().is_file() {
                    files.push(entry.into_path());
                }
            }
        } else {
            files.push(m);
        }
    }
    Ok(files)
}

/// Runs `td link`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    if let Some(on) = &a.depends_on {
        return super::dep::add(cx, &a.id, std::slice::from_ref(on));
    }
    let (p, root, json) = (&mut *cx.p, cx.root, cx.json);
    let role = a.role.as_str();
    let id = normalize_issue_id(&a.id);
    let mut links = Vec::new();
    for pattern in &a.paths {
        for given in expand(pattern, a.recursive)? {
            let rel = repo_relative(root, &given)?;
            if !root.join(&rel).is_file() {
                return Err(invalid(format!("no such file: {}", given.display())));
            }
            if links.iter().any(|l: &FileLink| l.path == rel) {
                continue;
            }
            links.push(FileLink {
                sha: git_blob_sha(root, &rel),
                path: rel,
            });
        }
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
pub(crate) fn git_blob_sha(root: &Path, rel: &str) -> String {
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
