//! `td export`: every synced entity as JSON, SQL or Markdown.

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
    /// Deterministic JSON, for backups and comparisons.
    Json,
    /// A script that recreates td's tables.
    Sql,
    /// A readable report.
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
}

/// Runs `td export`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let (format, name) = match a.format {
        Format::Json => (ExportFormat::Json, "json"),
        Format::Sql => (ExportFormat::Sql, "sql"),
        Format::Md => (ExportFormat::Markdown, "md"),
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
        None => print!("{text}"),
    }
    Ok(())
}
