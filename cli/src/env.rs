//! The command's environment: project root resolution, `.gitignore`, session context.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use td_engine::SessionContext;

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
pub(crate) fn resolve_root(work_dir: Option<&Path>) -> Result<PathBuf> {
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
pub(crate) fn in_git_repo(dir: &Path) -> bool {
    git_toplevel(dir).is_some()
}

/// Adds `.todos/` to `<root>/.gitignore` if it is not listed yet.
pub(crate) fn ensure_gitignore(root: &Path) -> Result<bool> {
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

/// The current git branch: read from `.git/HEAD` in the common case (every td command needs
/// it, and starting `git` costs milliseconds); asks git for worktrees and other layouts.
fn current_branch(root: &Path) -> String {
    let mut dir = Some(root);
    while let Some(d) = dir {
        let git = d.join(".git");
        if git.is_dir() {
            return std::fs::read_to_string(git.join("HEAD"))
                .ok()
                .and_then(|h| h.trim().strip_prefix("ref: refs/heads/").map(String::from))
                .unwrap_or_else(|| "HEAD".to_string());
        }
        if git.is_file() {
            break; // a worktree or submodule: let git resolve it
        }
        dir = d.parent();
    }
    if dir.is_none() {
        return String::new();
    }
    Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["rev-parse", "--abbrev-ref", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// Process-name fragments of the coding agents td recognizes, and the agent type each means.
const AGENTS: [(&str, &str); 8] = [
    ("claude", "claude-code"),
    ("cursor", "cursor"),
    ("codex", "codex"),
    ("windsurf", "windsurf"),
    ("zed", "zed"),
    ("aider", "aider"),
    ("copilot", "copilot"),
    ("gemini", "gemini"),
];

/// A process's name and parent: from `/proc` where there is one (no process to start),
/// else from `ps`.
fn process_info(pid: u32) -> Option<(String, u32)> {
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
        let open = stat.find('(')?;
        let close = stat.rfind(')')?;
        let name = stat[open + 1..close].to_string();
        let ppid = stat[close + 1..].split_whitespace().nth(1)?.parse().ok()?;
        return Some((name, ppid));
    }
    let out = Command::new("ps")
        .args(["-o", "ppid=,comm=", "-p", &pid.to_string()])
        .output()
        .ok()?;
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let (ppid, name) = line.split_once(char::is_whitespace)?;
    Some((name.trim().to_string(), ppid.trim().parse().ok()?))
}

/// Which agent runs this command, as td fingerprints it: `TD_AGENT` when set; an agent found
/// among the ancestor processes (`claude-code_<pid>`: two agents are two sessions, one agent's
/// commands one session); else `terminal` inside a terminal session, else nothing.
fn agent_fingerprint() -> String {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let Some(a) = var("TD_AGENT") {
        return a;
    }
    let parent = std::os::unix::process::parent_id();
    if var("CURSOR_AGENT").is_some() {
        return format!("cursor_{parent}");
    }
    let mut pid = parent;
    for _ in 0..15 {
        let Some((name, ppid)) = process_info(pid) else {
            break;
        };
        let name = name.to_ascii_lowercase();
        if let Some((_, agent)) = AGENTS.iter().find(|(frag, _)| name.contains(frag)) {
            return format!("{agent}_{pid}");
        }
        if ppid <= 1 {
            break;
        }
        pid = ppid;
    }
    let terminal = [
        "TERM_SESSION_ID",
        "TMUX_PANE",
        "STY",
        "WINDOWID",
        "KONSOLE_DBUS_SESSION",
        "GNOME_TERMINAL_SCREEN",
    ];
    if terminal.iter().any(|k| var(k).is_some()) {
        return "terminal".into();
    }
    String::new()
}

/// The calling agent's context, from the environment, the process tree and git.
pub(crate) fn session_context(root: &Path) -> SessionContext {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let branch = current_branch(root);
    SessionContext {
        explicit: var("TD_SESSION_ID"),
        context_id: var("TD_CONTEXT_ID").unwrap_or_default(),
        branch,
        root: root.display().to_string(),
        agent_type: agent_fingerprint(),
    }
}
