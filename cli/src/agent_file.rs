//! td's guidance block in a project's agent file (AGENTS.md, CLAUDE.md, …), installed by
//! `td init --agent-file`. The block sits between td's versioned markers, so a later td (or
//! td itself, which uses the same markers) updates it in place and never touches the rest of
//! the file.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

const START: &str = "<!-- td-agent-instructions:start -->";
const END: &str = "<!-- td-agent-instructions:end -->";
const VERSION_PREFIX: &str = "<!-- td-agent-instructions:version=";
const VERSION_SUFFIX: &str = " -->";
/// The block's version (td's current one).
const VERSION: u32 = 3;

/// The agent files td looks for, in order of preference.
pub(crate) const AGENT_FILES: [&str; 9] = [
    "AGENTS.md",
    "CLAUDE.md",
    "CLAUDE.local.md",
    "GEMINI.md",
    "GEMINI.local.md",
    "CODEX.md",
    "COPILOT.md",
    "CURSOR.md",
    ".github/copilot-instructions.md",
];

const BODY: &str = "## Working with td

td keeps task context across sessions and machines. At the start of every context run `td usage --new-session -q` to see where work stands.

For substantial work: `td start <id>`, record progress with `td log \"...\"`, leave a `td handoff <id>` when work continues elsewhere, then `td review <id>`.

Closing needs a review, and td asks who did it (trusted mode, the default; delegated and strict accept only the first):

- an independent session: `td approve <id> --reason \"...\"`
- a sub-agent that reviewed it: `td approve <id> --reviewed-by \"<who>\"`
- yourself: `td approve <id> --self-review --reason \"...\"`

A reviewer with its own `TD_CONTEXT_ID` is preferred; never name a reviewer who did not review.

More: `td usage`, `td <command> --help`.";

/// The whole block as installed.
pub(crate) fn block() -> String {
    format!("{START}\n{VERSION_PREFIX}{VERSION}{VERSION_SUFFIX}\n\n{BODY}\n\n{END}\n")
}

fn version_of(text: &str) -> Option<u32> {
    let start = text.find(VERSION_PREFIX)? + VERSION_PREFIX.len();
    let len = text[start..].find(VERSION_SUFFIX)?;
    text[start..start + len].trim().parse().ok()
}

/// The file to install into: a file that already holds td's block, else the first agent file
/// that exists (AGENTS.md first), else a new AGENTS.md.
pub(crate) fn target(root: &Path) -> PathBuf {
    let existing = || {
        AGENT_FILES
            .iter()
            .map(|f| root.join(f))
            .filter(|p| p.is_file())
    };
    existing()
        .find(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains(START)))
        .or_else(|| existing().next())
        .unwrap_or_else(|| root.join("AGENTS.md"))
}

/// What installing did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Installed {
    /// A new file with the block.
    Created,
    /// The block put after the file's front matter and first heading.
    Added,
    /// An older block replaced in place.
    Updated,
    /// The block was already current.
    Current,
}

impl Installed {
    /// As printed.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Installed::Created => "created",
            Installed::Added => "added",
            Installed::Updated => "updated",
            Installed::Current => "current",
        }
    }
}

/// Installs or updates the block in `path`, leaving everything outside the markers as it is.
/// A block from a newer td is left alone (an error says so).
pub(crate) fn install(path: &Path) -> Result<Installed> {
    let Ok(text) = std::fs::read_to_string(path) else {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, block())?;
        return Ok(Installed::Created);
    };
    if let (Some(start), Some(end)) = (text.find(START), text.find(END)) {
        if end > start {
            match version_of(&text[start..end]) {
                Some(v) if v > VERSION => bail!(
                    "{} holds td guidance version {v}, newer than this td's {VERSION}; left unchanged",
                    path.display()
                ),
                Some(v) if v == VERSION && text[start..end + END.len()] == *block().trim_end() => {
                    return Ok(Installed::Current)
                }
                _ => {}
            }
            let updated = format!(
                "{}{}{}",
                &text[..start],
                block().trim_end(),
                &text[end + END.len()..]
            );
            std::fs::write(path, updated)?;
            return Ok(Installed::Updated);
        }
    }
    // After YAML front matter and a first heading, as td places it.
    let mut at = 0;
    if let Some(rest) = text.strip_prefix("---") {
        if let Some(close) = rest.find("---") {
            at = 3 + close + 3;
            while text[at..].starts_with('\n') {
                at += 1;
            }
        }
    }
    if text[at..].starts_with('#') {
        if let Some(nl) = text[at..].find('\n') {
            at += nl + 1;
            while text[at..].starts_with('\n') {
                at += 1;
            }
        }
    }
    let updated = format!("{}{}\n{}", &text[..at], block(), &text[at..]);
    std::fs::write(path, updated)?;
    Ok(Installed::Added)
}
