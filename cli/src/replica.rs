//! This machine's replica of the project: creating it (`td init`'s local part, also run by
//! `td init --mode=libsql` and `td join` on a machine without one).

use std::path::Path;

use anyhow::Result;
use serde_json::{json, Value};
use td_engine::{InitOutcome, Project};

use crate::env;
use crate::output::emit;

/// `td init` (local part). With `quiet_json`, a `--json` result is returned instead of printed
/// (so `td init --mode=libsql --json` prints one value).
pub(crate) fn init(root: &Path, json: bool, quiet_json: bool) -> Result<Value> {
    let identity = td_transport::identity::machine_identity()?;
    let ctx = env::session_context(root);
    let (p, outcome) = Project::init(root, identity, &ctx)?;
    let path = td_engine::store::db_path(root);
    let mut gitignore = false;
    if outcome == InitOutcome::Created && env::in_git_repo(root) {
        gitignore = env::ensure_gitignore(root)?;
    }
    let created = outcome == InitOutcome::Created;
    let v = json!({"action": if created {"initialized"} else {"already_initialized"}, "path": path.display().to_string(),
        "session": p.session.id, "project": p.store.project_id()?, "machine": p.store.identity().fingerprint(), "gitignore_updated": gitignore});
    if json && quiet_json {
        return Ok(v);
    }
    if created {
        emit(json, &v, || {
            format!("INITIALIZED {}\nSession: {}", path.display(), p.session.id)
        });
    } else {
        if !json {
            eprintln!("Warning: already initialized: {}", path.display());
        }
        emit(json, &v, || format!("Session: {}", p.session.id));
    }
    Ok(v)
}
