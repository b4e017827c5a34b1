//! `td completion <shell>`: a completion script for the shell, on stdout.

use anyhow::Result;
use clap::Args as ClapArgs;
use clap_complete::Shell;

/// Arguments of `td completion`.
#[derive(Debug, ClapArgs)]
#[command(
    after_help = "Examples:\n  td completion bash > ~/.local/share/bash-completion/completions/td\n  td completion zsh > \"${fpath[1]}/_td\"\n  td completion fish > ~/.config/fish/completions/td.fish"
)]
pub(crate) struct Args {
    /// The shell.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Runs `td completion` (no project needed).
pub(crate) fn run(a: &Args) -> Result<()> {
    use std::io::Write;
    let mut cmd = super::command();
    // Generated into memory first: the generator panics on a write error, and a reader that
    // stops early (`| head`) is not an error.
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "td", &mut script);
    match std::io::stdout().write_all(&script) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
