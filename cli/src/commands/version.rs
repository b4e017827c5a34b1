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
    /// td checks a release server for a newer version; this td never contacts a server it
    /// was not told to sync with, so `--check` (or `--check=false`) only says how to upgrade.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub check: Option<bool>,
}

/// Runs `td version` (no project needed).
pub(crate) fn run(a: &Args, json: bool) -> Result<()> {
    let version = env!("CARGO_PKG_VERSION");
    let check = a.check == Some(true);
    let hint = "update checks are off: this td contacts no server it was not told to sync with; 'td upgrade' says how to install a newer build";
    let mut v = json!({"version": version});
    if check {
        v["update_check"] = json!(hint);
    }
    emit(json, &v, || {
        let mut s = if a.short {
            version.to_string()
        } else {
            format!("td version {version}")
        };
        if check && !a.short {
            s.push_str(&format!("\n({hint})"));
        }
        s
    });
    Ok(())
}
