//! The command's environment: project root resolution, machine key file, session context.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, Context, Result};
use td_engine::{MachineIdentity, SessionContext};

/// Name of the private key file in the config dir.
const KEY_FILE: &str = "machine.key";
/// Name of the public key file; its presence without the key means the key was lost.
const PUB_FILE: &str = "machine.pub";

/// The user's td config dir: `$XDG_CONFIG_HOME/td` or `~/.config/td`.
pub fn config_dir() -> Result<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(x).join("td"));
    }
    let home = std::env::var_os("HOME")
        .ok_or_else(|| anyhow!("neither XDG_CONFIG_HOME nor HOME is set"))?;
    Ok(PathBuf::from(home).join(".config").join("td"))
}

/// Loads this machine's key, creating it (mode 0600) on first use. A key file that exists but
/// cannot be read or parsed is an error, never silently replaced: changes signed by the old
/// key would no longer be attributable to this machine.
pub fn machine_identity() -> Result<MachineIdentity> {
    let dir = config_dir()?;
    let key_path = dir.join(KEY_FILE);
    let pub_path = dir.join(PUB_FILE);
    match std::fs::read_to_string(&key_path) {
        Ok(text) => {
            let bytes = hex::decode(text.trim())
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| {
                    anyhow!(
                        "machine key file {} is malformed (expected 64 hex digits)",
                        key_path.display()
                    )
                })?;
            Ok(MachineIdentity::from_seed(bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if pub_path.exists() {
                bail!(
                    "machine key {} is missing but {} exists: restore the key from a backup, \
                     or delete {} to start this machine with a new identity",
                    key_path.display(),
                    pub_path.display(),
                    pub_path.display()
                );
            }
            create_identity(&dir, &key_path, &pub_path)
        }
        Err(e) => Err(anyhow!(
            "cannot read machine key {}: {e}",
            key_path.display()
        )),
    }
}

fn create_identity(dir: &Path, key_path: &Path, pub_path: &Path) -> Result<MachineIdentity> {
    std::fs::create_dir_all(dir).with_context(|| format!("create config dir {}", dir.display()))?;
    let id = MachineIdentity::generate();
    let tmp = key_path.with_extension("tmp");
    write_private(&tmp, &hex::encode(id.seed()))?;
    // Publish atomically; if another process won the race, use its key.
    if std::fs::hard_link(&tmp, key_path).is_err() {
        let _ = std::fs::remove_file(&tmp);
        return machine_identity();
    }
    let _ = std::fs::remove_file(&tmp);
    std::fs::write(pub_path, format!("{}\n", id.public_key_hex()))
        .with_context(|| format!("write {}", pub_path.display()))?;
    Ok(id)
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("create {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("create {}", path.display()))
}

fn git_toplevel(dir: &Path) -> Option<PathBuf> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--show-toplevel"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?;
    Some(PathBuf::from(s.trim()))
}

fn root_marker(dir: &Path) -> Option<PathBuf> {
    let marker = dir.join(".td-root");
    if let Ok(text) = std::fs::read_to_string(&marker) {
        let p = PathBuf::from(text.trim());
        return Some(if p.is_absolute() { p } else { dir.join(p) });
    }
    dir.join(".todos").is_dir().then(|| dir.to_path_buf())
}

/// Resolves the project root as td does: `-w`, else `TD_WORK_DIR`, else the current dir; then
/// a `.td-root` file or a `.todos/` dir there, else the git top-level checked the same way;
/// else the starting dir itself.
pub fn resolve_root(work_dir: Option<&Path>) -> Result<PathBuf> {
    let base = match work_dir {
        Some(p) => p.to_path_buf(),
        None => match std::env::var_os("TD_WORK_DIR").filter(|v| !v.is_empty()) {
            Some(p) => PathBuf::from(p),
            None => std::env::current_dir().context("current directory")?,
        },
    };
    if !base.is_dir() {
        bail!("work dir {} does not exist", base.display());
    }
    if let Some(r) = root_marker(&base) {
        return Ok(r);
    }
    if let Some(top) = git_toplevel(&base) {
        if let Some(r) = root_marker(&top) {
            return Ok(r);
        }
    }
    Ok(base)
}

/// Whether `dir` is inside a git work tree.
pub fn in_git_repo(dir: &Path) -> bool {
    git_toplevel(dir).is_some()
}

/// Adds `.todos/` to `<root>/.gitignore` if it is not listed yet.
pub fn ensure_gitignore(root: &Path) -> Result<bool> {
    let path = root.join(".gitignore");
    let existing = std::fs::read_to_string(&path).unwrap_or_default();
    if existing
        .lines()
        .any(|l| matches!(l.trim(), ".todos" | ".todos/" | "/.todos" | "/.todos/"))
    {
        return Ok(false);
    }
    let mut text = existing;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(".todos/\n");
    std::fs::write(&path, text).with_context(|| format!("update {}", path.display()))?;
    Ok(true)
}

/// The calling agent's context, from the environment and git.
pub fn session_context(root: &Path) -> SessionContext {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let branch = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["rev-parse", "--abbrev-ref", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    SessionContext {
        explicit: var("TD_SESSION_ID"),
        context_id: var("TD_CONTEXT_ID").unwrap_or_default(),
        branch,
        root: root.display().to_string(),
        agent_type: var("TD_AGENT").unwrap_or_default(),
    }
}
