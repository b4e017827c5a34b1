//! `td upgrade`: brings the project's database to this td's layout. A database this td made
//! is current whenever it opens (its layout is upgraded on open), so td's lines say so. A
//! database made by td itself (its tables, no change log) is adopted in place: td's file is
//! kept beside it as a backup, and every entity becomes a signed change of this machine, as
//! `td init --migrate-from` does, so td's upgrade path (install, then `td upgrade`) moves
//! nothing.

use std::path::Path;

use anyhow::{Context, Result};
use td_engine::{migrate, store, Project};

use crate::env;

/// Runs `td upgrade`.
pub(crate) fn run(root: &Path, json: bool) -> Result<()> {
    let path = store::db_path(root);
    if !path.is_file() {
        return Err(crate::output::invalid(
            "database not found: run 'td init' first".into(),
        ));
    }
    let version = td_engine::schema::TD_SCHEMA_VERSION;
    if !migrate::is_plain_td(&path)? {
        // Opening upgrades the layout of a database from an earlier td-sync.
        let identity = td_transport::identity::machine_identity()?;
        Project::open(root, identity, &env::session_context(root))?;
        if json {
            crate::output::emit(
                true,
                &serde_json::json!({"action": "up_to_date", "schema_version": version}),
                String::new,
            );
        } else {
            println!("Current schema version: {version}");
            println!("Latest schema version: {version}");
            println!("Database is up to date. No migrations needed.");
        }
        return Ok(());
    }
    migrate::check_source(&path)
        .with_context(|| format!("{} cannot be adopted", path.display()))?;
    let backup = migrate::set_aside_for_adoption(&path)?;
    let adopted = (|| -> Result<()> {
        crate::replica::init(root, json, true)?;
        let identity = td_transport::identity::machine_identity()?;
        let mut p = Project::open(root, identity, &env::session_context(root))?;
        super::import::import(&mut p, &backup, &backup, &[], json)
    })();
    if let Err(e) = adopted {
        // Nothing half-done is left in td's place: td's database goes back where it was.
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        std::fs::rename(&backup, &path).with_context(|| {
            format!(
                "the adoption failed ({e:#}) and td's database could not be put back: it is at {}",
                backup.display()
            )
        })?;
        return Err(e.context("td upgrade: the adoption failed; td's database is unchanged"));
    }
    if !json {
        eprintln!(
            "Adopted td's database into a signed change log; td's own file is kept at {}",
            backup.display()
        );
    }
    Ok(())
}
