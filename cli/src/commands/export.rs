//! `td export`: td's JSON and Markdown exports, a deterministic snapshot, or SQL.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args as ClapArgs, ValueEnum};
use serde_json::json;
use td_engine::ops::reads::ExportFormat;

use super::Cx;
use crate::output::emit;

/// `--format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// td's JSON export: one {issue, logs, handoffs, dependencies, files} item per issue.
    Json,
    /// Every synced table (boards, notes, comments, reviews… too), deterministically: for
    /// backups, and to compare replicas byte for byte.
    Snapshot,
    /// A script that recreates td's tables.
    Sql,
    /// td's Markdown export (`td import --format md` reads it back).
    #[value(alias = "markdown")]
    Md,
}

/// Arguments of `td export`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
    /// Write to this file instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Include deleted issues (json, md; snapshot and sql always hold every entity, deleted
    /// ones with their tombstones, so a replica can be compared or restored whole).
    #[arg(long)]
    pub all: bool,
    /// Accepted for td's scripts: the md export is printed as written (no terminal markup;
    /// control characters are escaped on a terminal).
    #[arg(short = 'm', long)]
    pub render_markdown: bool,
}

/// Runs `td export`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let (format, name) = match a.format {
        Format::Json => (
            ExportFormat::Json {
                include_deleted: a.all,
            },
            "json",
        ),
        Format::Snapshot => (ExportFormat::Snapshot, "snapshot"),
        Format::Sql => (ExportFormat::Sql, "sql"),
        Format::Md => (
            ExportFormat::Markdown {
                include_deleted: a.all,
            },
            "md",
        ),
    };
    let text = cx.p.export(format)?;
    match &a.output {
        Some(path) => {
            let tmp = path.with_extension("tmp-export");
            std::fs::write(&tmp, &text)
                .and_then(|_| std::fs::rename(&tmp, path))
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            let v = json!({"action": "exported", "format": name, "output": path.display().to_string(), "bytes": text.len()});
            emit(cx.json, &v, || {
                format!("EXPORTED {} ({} bytes)", path.display(), text.len())
            });
        }
        // Text from the log reaches a terminal escaped; a pipe or a file gets it exact.
        None if std::io::IsTerminal::is_terminal(&std::io::stdout()) => {
            print!("{}", crate::output::escape(&text))
        }
        None => print!("{text}"),
    }
    Ok(())
}
