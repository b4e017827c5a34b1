//! `td init`: create the project database here (or report that it exists); with
//! `--mode=libsql --url`, also connect it to a hub; with `--migrate-from`, import a td
//! database into it.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Args as ClapArgs, ValueEnum};
use td_engine::Project;

use crate::env;
use crate::hub::{self, Auto};

/// `--mode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Mode {
    /// This machine only (peers still sync with `td peer`).
    Local,
    /// Sync through a libSQL hub (self-hosted sqld or tursodb).
    Libsql,
    /// Sync through Turso Cloud.
    Turso,
}

impl Mode {
    /// The spelling stored in `database.mode`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Mode::Local => "local",
            Mode::Libsql => "libsql",
            Mode::Turso => "turso",
        }
    }
}

/// Arguments of `td init`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// `local` (default), or `libsql`/`turso` to sync through a hub.
    #[arg(long, value_name = "MODE", value_enum)]
    pub mode: Option<Mode>,
    /// Hub URL (libsql://…, https://…, http://…).
    #[arg(long)]
    pub url: Option<String>,
    /// Hub auth token (Turso JWT).
    #[arg(long)]
    pub token: Option<String>,
    /// Import an existing td database (schema v38 or older) into the new project.
    #[arg(long, value_name = "PATH")]
    pub migrate_from: Option<PathBuf>,
    /// Add td's guidance block to the project's agent file (AGENTS.md, CLAUDE.md, …), or update
    /// an older one in place.
    #[arg(long, conflicts_with = "no_agent_file")]
    pub agent_file: bool,
    /// Do not offer the agent-file guidance.
    #[arg(long)]
    pub no_agent_file: bool,
}

/// Runs `td init` (before any project is open).
pub(crate) fn run(a: &Args, root: &Path, json: bool) -> Result<()> {
    let mode = a.mode.map(Mode::as_str);
    if let Some(src) = &a.migrate_from {
        // Check the source before creating anything.
        td_engine::migrate::check_source(src)?;
    }
    // With --migrate-from --json, the import's result is the one JSON value printed.
    let quiet = json && a.migrate_from.is_some();
    if quiet {
        crate::replica::init(root, true, true)?;
        if mode.is_some() || a.url.is_some() {
            hub::init(root, mode, a.url.as_deref(), a.token.as_deref(), false)?;
        }
    } else {
        hub::init(root, mode, a.url.as_deref(), a.token.as_deref(), json)?;
    }
    agent_guidance(a, root, json)?;
    if let Some(src) = &a.migrate_from {
        let identity = td_transport::identity::machine_identity()?;
        let mut p = Project::open(root, identity, &env::session_context(root))?;
        super::import::import(&mut p, src, src, &[], json)?;
        if mode.is_some() || a.url.is_some() {
            hub::autosync(&mut p, root, Auto::PushAfter);
        }
    }
    Ok(())
}

/// The agent-file guidance: installed with `--agent-file`; offered when a person runs `td init`
/// in a terminal; otherwise a one-line hint on stderr (never on stdout, never with `--json`).
fn agent_guidance(a: &Args, root: &Path, json: bool) -> Result<()> {
    use std::io::IsTerminal;
    if a.no_agent_file {
        return Ok(());
    }
    let path = crate::agent_file::target(root);
    let shown = path
        .strip_prefix(root)
        .unwrap_or(&path)
        .display()
        .to_string();
    let install = if a.agent_file {
        true
    } else if json || !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        if !json
            && !std::fs::read_to_string(&path).is_ok_and(|t| t.contains("td-agent-instructions"))
        {
            eprintln!("Tip: 'td init --agent-file' adds td's guidance for agents to {shown}.");
        }
        false
    } else {
        eprint!("Add td's guidance for coding agents to {shown}? [y/N] ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        matches!(answer.trim(), "y" | "Y" | "yes")
    };
    if install {
        let done = crate::agent_file::install(&path)?;
        if !json {
            eprintln!("Agent guidance {} in {shown}.", done.as_str());
        }
    }
    Ok(())
}
