//! Linked files (`td link`, `td unlink`, `td files`): repo-relative paths attached to an issue
//! with a role. Rows are children of the issue's document keyed by td's deterministic `ifl_`
//! id, so two machines linking the same file to the same issue produce one row.

use crate::views::{self, FileLinkView};

use crate::doc::{self, Field};
use crate::error::{invalid, Result};
use crate::model::{link_id, now_timestamp};
use crate::project::Project;
use crate::query;

/// Roles td knows for a linked file.
pub const ROLES: [&str; 4] = ["implementation", "test", "reference", "config"];

/// A file to link: its repo-relative path and the content hash git knows it by (`""` when
/// unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLink {
    /// Repo-relative path with forward slashes.
    pub path: String,
    /// `git hash-object` of the file when linked, or `""`.
    pub sha: String,
}

/// Validates a repo-relative path: not empty, not absolute, no `..`, forward slashes.
pub fn check_path(p: &str) -> Result<String> {
    let p = p.trim().replace('\\', "/");
    let p = p.trim_start_matches("./").to_string();
    if p.is_empty() {
        return Err(invalid("file path is empty"));
    }
    if p.starts_with('/') || p.split('/').any(|c| c == "..") {
        return Err(invalid(format!(
            "file path '{p}' is outside the project: give a path inside the repository"
        )));
    }
    Ok(p)
}

fn check_role(r: &str) -> Result<&'static str> {
    ROLES
        .into_iter()
        .find(|x| *x == r.trim().to_ascii_lowercase())
        .ok_or_else(|| {
            invalid(format!(
                "invalid role '{r}': expected one of {}",
                ROLES.join(", ")
            ))
        })
}

/// The files linked to an issue, by role then path.
pub fn files_of(conn: &rusqlite::Connection, issue: &str) -> Result<Vec<FileLinkView>> {
    query::live_issue(conn, issue)?;
    views::rows(
        conn,
        "SELECT * FROM issue_files WHERE issue_id = ?1 ORDER BY role, file_path",
        issue,
    )
}

impl Project {
    /// `td link <id> <paths…> [--role]`: links files (re-linking updates role and hash).
    /// Returns the rows of the paths that were added or changed.
    pub fn link_files(
        &mut self,
        issue: &str,
        files: &[FileLink],
        role: &str,
    ) -> Result<Vec<FileLinkView>> {
        let role = check_role(role)?;
        if files.is_empty() {
            return Err(invalid("give at least one file path"));
        }
        let files: Vec<FileLink> = files
            .iter()
            .map(|f| {
                Ok(FileLink {
                    path: check_path(&f.path)?,
                    sha: f.sha.clone(),
                })
            })
            .collect::<Result<_>>()?;
        let me = self.session.id.clone();
        self.store.write(&me, |tx| {
            query::live_issue(tx.conn(), issue)?;
            let existing = query::rows_for(tx.conn(), "issue_files", "issue_id", issue, "id")?;
            let mut changed = Vec::new();
            for f in &files {
                let key = link_id("ifl_", &format!("{issue}|{}", f.path));
                let same = existing.iter().any(|r| {
                    r["id"] == key.as_str()
                        && r["role"] == role
                        && r["linked_sha"] == f.sha.as_str()
                });
                if same || changed.contains(&key) {
                    continue;
                }
                tx.change(issue, |d| {
                    doc::put_child(
                        d,
                        "files",
                        &key,
                        &[
                            ("file_path", Field::Str(f.path.clone())),
                            ("role", Field::Str(role.to_string())),
                            ("linked_sha", Field::Str(f.sha.clone())),
                            ("linked_at", Field::Str(now_timestamp())),
                        ],
                    )
                })?;
                changed.push(key);
            }
            Ok(files_of(tx.conn(), issue)?
                .into_iter()
                .filter(|r| changed.contains(&r.id))
                .collect())
        })
    }

    /// `td unlink <id> <paths…>`: removes links. Returns the paths that were linked.
    pub fn unlink_files(&mut self, issue: &str, paths: &[String]) -> Result<Vec<String>> {
        let paths: Vec<String> = paths.iter().map(|p| check_path(p)).collect::<Result<_>>()?;
        let me = self.session.id.clone();
        self.store.write(&me, |tx| {
            query::live_issue(tx.conn(), issue)?;
            let mut removed = Vec::new();
            for p in &paths {
                let key = link_id("ifl_", &format!("{issue}|{p}"));
                let mut gone = false;
                tx.change(issue, |d| {
                    gone = doc::delete_child(d, "files", &key)?;
                    Ok(())
                })?;
                if gone {
                    removed.push(p.clone());
                }
            }
            Ok(removed)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_repo_relative() {
        assert_eq!(check_path("./src\\main.rs").unwrap(), "src/main.rs");
        assert!(check_path("/etc/passwd").is_err());
        assert!(check_path("../x").is_err());
        assert!(check_path("a/../../x").is_err());
        assert!(check_path("  ").is_err());
    }
}
