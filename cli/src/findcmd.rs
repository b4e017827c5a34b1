//! Issue look-ups and file links: `td search`, `td query`, `td tree`, `td link`,
//! `td unlink`, `td files`.

use std::path::{Component, Path, PathBuf};

use anyhow::Result;
use serde_json::{json, Value};
use td_engine::model::normalize_issue_id;
use td_engine::ops::files::{self, FileLink};
use td_engine::{find, Project};

use crate::output::{emit, invalid, issue_line, listing, print_issues};

/// `td search <text>`.
pub(crate) fn search(p: &Project, text: &str, json: bool) -> Result<()> {
    let hits = find::search(p.store.conn(), text)?;
    let human = listing(&hits, "No issues found.", |i| {
        let places: Vec<&str> = i["matched_in"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        format!("{}  (in {})", issue_line(i), places.join(", "))
    });
    emit(json, &Value::Array(hits), || human);
    Ok(())
}

/// `td query "<expr>"`.
pub(crate) fn query(p: &Project, expr: &str, json: bool) -> Result<()> {
    print_issues(find::query_issues(p.store.conn(), expr)?, json);
    Ok(())
}

fn tree_lines(node: &Value, depth: usize, out: &mut Vec<String>) {
    out.push(format!("{}{}", "  ".repeat(depth), issue_line(node)));
    for c in node["children"].as_array().into_iter().flatten() {
        tree_lines(c, depth + 1, out);
    }
}

/// `td tree <id>`.
pub(crate) fn tree(p: &Project, id: &str, json: bool) -> Result<()> {
    let t = find::tree(p.store.conn(), &normalize_issue_id(id))?;
    emit(json, &t, || {
        let mut out = Vec::new();
        tree_lines(&t, 0, &mut out);
        out.join("\n")
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
fn repo_relative(root: &Path, given: &Path) -> Result<String> {
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

fn file_line(f: &Value) -> String {
    format!(
        "{:<15} {}",
        f["role"].as_str().unwrap_or(""),
        f["file_path"].as_str().unwrap_or("")
    )
}

/// `td link <id> <paths…> [--role]`.
pub(crate) fn link(
    p: &mut Project,
    root: &Path,
    id: &str,
    paths: &[PathBuf],
    role: &str,
    json: bool,
) -> Result<()> {
    let id = normalize_issue_id(id);
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
    let v = json!({"action": if rows.is_empty() { "unchanged" } else { "linked" }, "issue_id": id, "files": rows});
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

/// `td unlink <id> <paths…>`.
pub(crate) fn unlink(
    p: &mut Project,
    root: &Path,
    id: &str,
    paths: &[PathBuf],
    json: bool,
) -> Result<()> {
    let id = normalize_issue_id(id);
    let rels = paths
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

/// `td files <id>`.
pub(crate) fn list(p: &Project, id: &str, json: bool) -> Result<()> {
    let id = normalize_issue_id(id);
    let rows = files::files_of(p.store.conn(), &id)?;
    let human = listing(&rows, &format!("No files linked to {id}."), file_line);
    emit(json, &Value::Array(rows), || human);
    Ok(())
}
