//! `td version`: the version of this td.

use anyhow::Result;
use clap::Args as ClapArgs;
use serde_json::json;

use crate::output::emit;

/// Arguments of `td version`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Only the version number.
    #[arg(long)]
    pub short: bool,
}

/// Runs `td version` (no project needed).
pub(crate) fn run(a: &Args, json: bool) -> Result<()> {
    let version = env!("CARGO_PKG_VERSION");
    emit(json, &json!({"version": version}), || {
        if a.short {
            version.to_string()
        } else {
            format!("td version {version}")
        }
    });
    Ok(())
}
