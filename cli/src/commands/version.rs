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

/// Runs `td version` (no project needed): td's line (`td version <v>`), `--short` the bare
/// version without a newline, `--json` td's keys (all present; this td never checks a
/// release server, so `checked` is false).
pub(crate) fn run(a: &Args, json: bool) -> Result<()> {
    let version = env!("CARGO_PKG_VERSION");
    // The commit it was built from (empty outside a git checkout; `-dirty` with local edits).
    let commit = env!("TD_GIT_COMMIT");
    let check = a.check == Some(true);
    let hint = "update checks are off: this td contacts no server it was not told to sync with; 'td upgrade' says how to install a newer build";
    if json {
        let mut v = json!({"version": version, "checked": false, "development": false,
            "latest_version": "", "update_available": false, "update_command": "",
            "commit": commit});
        if check {
            v["update_check"] = json!(hint);
        }
        emit(true, &v, String::new);
        return Ok(());
    }
    if a.short {
        use std::io::Write;
        print!("{version}");
        let _ = std::io::stdout().flush();
        return Ok(());
    }
    emit(false, &json!({}), || {
        let mut s = format!("td version {version}");
        if !commit.is_empty() {
            s.push_str(&format!(" (commit {commit})"));
        }
        if check {
            s.push_str(&format!("\n({hint})"));
        }
        s
    });
    Ok(())
}

/// `td debug-stats`: td's one-line memory report (`cmd/debug_stats.go`), from this process's
/// own figures (`/proc/self/status`); a Rust program has no garbage collector or goroutines,
/// so `num_gc` is 0 and `num_goroutine` counts threads.
pub(crate) fn debug_stats() -> Result<()> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |key: &str| -> f64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let mb = |k: f64| k / 1024.0;
    let v = json!({
        "alloc_mb": mb(kb("VmRSS:")),
        "sys_mb": mb(kb("VmSize:")),
        "num_gc": 0,
        "num_goroutine": kb("Threads:") as i64,
        "heap_objects": 0,
        "heap_inuse_mb": mb(kb("RssAnon:")),
    });
    println!("{}", serde_json::to_string(&v)?);
    Ok(())
}
