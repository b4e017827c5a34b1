//! `td import`: a JSON export or another td database into this project.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args as ClapArgs;
use serde_json::{json, Value};
use td_engine::Project;

use super::Cx;
use crate::output::emit;

/// Arguments of `td import`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// A file to import: td's JSON export (`td export`), a snapshot (`td export --format
    /// snapshot`), or td's Markdown export (`--format md`, or a file ending in .md).
    #[arg(
        value_name = "FILE",
        required_unless_present = "from_db",
        conflicts_with = "from_db"
    )]
    pub file: Option<PathBuf>,
    /// A td database (e.g. another checkout's .todos/issues.db).
    #[arg(long = "from-db", value_name = "PATH")]
    pub from_db: Option<PathBuf>,
    /// The file's format (default: md for a file ending in .md, else json).
    #[arg(long, value_enum)]
    pub format: Option<ImportFormat>,
    /// Only report what would be imported.
    #[arg(long)]
    pub dry_run: bool,
    /// Overwrite issues that exist here already with the file's values (without it they are
    /// skipped and counted as already present).
    #[arg(long)]
    pub force: bool,
}

/// `td import --format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ImportFormat {
    /// td's JSON export, or a snapshot.
    Json,
    /// td's Markdown export.
    #[value(alias = "markdown")]
    Md,
}

/// Runs `td import`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let tmp = tempfile_dir(cx.root)?;
    let result = import_command(
        cx.p,
        &tmp,
        a.file.as_deref(),
        a.format,
        a.from_db.as_deref(),
        a.dry_run,
        a.force,
        cx.json,
    );
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

#[allow(clippy::too_many_arguments)] // the parsed arguments, passed on as they are
fn import_command(
    p: &mut Project,
    tmp: &Path,
    file: Option<&Path>,
    format: Option<ImportFormat>,
    from_db: Option<&Path>,
    dry_run: bool,
    force: bool,
    json: bool,
) -> Result<()> {
    let src = match (file, from_db) {
        (_, Some(db)) => db.to_path_buf(),
        (Some(f), None) => {
            let text = super::common::read_bounded(
                f,
                super::common::MAX_IMPORT_BYTES,
                "an import may hold",
            )?;
            let db = tmp.join("import.db");
            let md = format == Some(ImportFormat::Md)
                || (format.is_none() && f.extension().is_some_and(|e| e == "md"));
            if md {
                td_engine::migrate::td_markdown_to_db(&text, &db)?;
            } else {
                let v: Value = serde_json::from_str(&text).map_err(|e| {
                    crate::output::invalid(format!("{} is not JSON: {e}", f.display()))
                })?;
                if v.is_array() {
                    td_engine::migrate::td_items_to_db(&v, &db)?;
                } else {
                    td_engine::migrate::json_export_to_db(&v, &db)?;
                }
            }
            db
        }
        (None, None) => {
            return Err(crate::output::invalid(
                "give a JSON export file or --from-db <path>".into(),
            ))
        }
    };
    if !dry_run {
        let overwritten = if force {
            let me = p.session.id.clone();
            p.store.import_overwrite(&src, &me)?
        } else {
            Vec::new()
        };
        return import(p, &src, file.unwrap_or(&src), &overwritten, json);
    }
    let counts = p.store.migrate_dry_run(&src)?;
    let total: usize = counts.values().sum();
    emit(
        json,
        &json!({"action": "dry_run", "would_import": counts}),
        || {
            let mut s = format!("DRY RUN: would import {total} entities");
            for (t, n) in &counts {
                s.push_str(&format!("\n  {t}: {n}"));
            }
            s
        },
    );
    Ok(())
}

/// A private scratch directory under `.todos/` (removed by the caller).
fn tempfile_dir(root: &Path) -> Result<PathBuf> {
    let dir = root
        .join(".todos")
        .join(format!("import-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

pub(crate) fn import(
    p: &mut Project,
    src: &Path,
    shown: &Path,
    overwritten: &[String],
    json: bool,
) -> Result<()> {
    let r = p
        .store
        .migrate_from_with_progress(src, &mut import_progress(json))?;
    let src = shown;
    let total: usize = r.imported.values().sum();
    let v = json!({"action": "imported", "source": src.display().to_string(), "imported": r.imported,
        "already_present": r.already_present, "overwritten": overwritten, "skipped": r.skipped, "sessions": r.sessions, "seconds": r.seconds});
    emit(json, &v, || {
        let mut s = format!(
            "IMPORTED {total} rows from {} in {:.2}s",
            src.display(),
            r.seconds
        );
        for (t, n) in &r.imported {
            s.push_str(&format!("\n  {t}: {n}"));
        }
        if r.already_present > 0 {
            s.push_str(&format!(
                "\n  already present (skipped): {}",
                r.already_present
            ));
        }
        if !overwritten.is_empty() {
            s.push_str(&format!(
                "\n  overwritten (--force): {}",
                overwritten.join(", ")
            ));
        }
        for k in &r.skipped {
            s.push_str(&format!("\n  skipped: {k}"));
        }
        s
    });
    Ok(())
}

/// A progress bar on stderr for importing a large database (never with --json or off a
/// terminal); cleared when the import ends.
fn import_progress(json: bool) -> impl FnMut(usize, usize) {
    use std::io::IsTerminal;
    let enabled = !json && std::io::stderr().is_terminal();
    let mut bar: Option<indicatif::ProgressBar> = None;
    move |done, total| {
        if !enabled || total < 2_000 {
            return;
        }
        let b = bar.get_or_insert_with(|| {
            let b = indicatif::ProgressBar::new(total as u64);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "importing {bar:40} {pos}/{len} entities ({eta} left)",
                )
                .expect("valid template"),
            );
            b
        });
        b.set_position(done as u64);
        if done >= total {
            b.finish_and_clear();
        }
    }
}
