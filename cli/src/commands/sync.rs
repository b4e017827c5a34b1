//! `td sync`: push and pull through the team hub; `init`, `status`, `conflicts`, `resolve`.

use anyhow::Result;
use clap::{Args as ClapArgs, Subcommand};

use super::conflicts::{self, Side};
use super::Cx;
use crate::hub;

/// Arguments of `td sync`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    #[command(subcommand)]
    pub cmd: Option<SyncCommand>,
    /// Only push local changes.
    #[arg(long, conflicts_with = "pull")]
    pub push: bool,
    /// Only pull the hub's changes.
    #[arg(long)]
    pub pull: bool,
}

/// `td sync`.
#[derive(Debug, Subcommand)]
pub(crate) enum SyncCommand {
    /// Connect this project to a hub (adopting the hub's project on a fresh replica).
    Init {
        /// Hub URL (libsql://…, https://…, http://…; user:pass@ for basic auth).
        #[arg(long)]
        hub: String,
        /// Auth token (Turso JWT); stored in .todos/config.json.
        #[arg(long)]
        token: Option<String>,
        /// Project to join when the hub holds several.
        #[arg(long)]
        project: Option<String>,
        /// This replica has work of another project: re-create it in the hub's project (the
        /// old database is kept beside as issues.db.adopted-<project>). Its work is held by
        /// the team until an admin admits this machine ('td member add', or use 'td join').
        #[arg(long)]
        adopt: bool,
    },
    /// Send local changes to the hub.
    Push,
    /// Receive the hub's changes.
    Pull,
    /// Mode, hub, pending changes, last push/pull, quarantined rows.
    Status,
    /// Turn autosync on (td's spelling of `td config set sync.auto true`).
    Enable,
    /// Turn autosync off (td's spelling of `td config set sync.auto false`).
    Disable,
    /// td's live feed of its own sync server: here, `td peer sync <peer> --watch` prints each
    /// round as it happens, and `td sync status` shows the hub's state.
    #[command(hide = true)]
    Tail {
        /// Follow (ignored: see above).
        #[arg(short = 'f', long)]
        follow: bool,
    },
    /// Concurrent edits that overwrote one another (unresolved ones by default).
    Conflicts {
        /// Only conflicts whose overwritten edit is newer than this (e.g. 30m, 12h, 7d).
        #[arg(long, value_name = "DURATION")]
        since: Option<String>,
        /// Include resolved conflicts.
        #[arg(long)]
        all: bool,
    },
    /// Settle a conflict everywhere: keep the kept or the overwritten value, or set another.
    Resolve {
        /// The conflict id (cf-…).
        id: String,
        /// Which value to keep.
        #[arg(long, value_name = "SIDE", value_enum, conflicts_with = "value")]
        keep: Option<Side>,
        /// A new value for the field.
        #[arg(long)]
        value: Option<String>,
    },
}

/// Runs `td sync`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let (p, root, json) = (&mut *cx.p, cx.root, cx.json);
    match &a.cmd {
        Some(SyncCommand::Init {
            hub,
            token,
            project,
            adopt,
        }) => hub::connect_init(
            p,
            root,
            hub,
            token.as_deref(),
            project.as_deref(),
            *adopt,
            json,
        ),
        Some(SyncCommand::Status) => hub::status(p, root, json),
        Some(SyncCommand::Conflicts { since, all }) => {
            conflicts::list(p, since.as_deref(), *all, json)
        }
        Some(SyncCommand::Resolve { id, keep, value }) => {
            conflicts::resolve(p, id, *keep, value.as_deref(), json)
        }
        Some(SyncCommand::Enable) | Some(SyncCommand::Disable) => {
            let on = matches!(a.cmd, Some(SyncCommand::Enable));
            let mut cfg = crate::config::ProjectConfig::load(root)?;
            cfg.set("sync.auto", if on { "true" } else { "false" })?;
            cfg.save()?;
            crate::output::emit(
                json,
                &serde_json::json!({"action": if on { "enabled" } else { "disabled" }, "key": "sync.auto", "value": on}),
                || format!("AUTOSYNC {}", if on { "ON" } else { "OFF" }),
            );
            Ok(())
        }
        Some(SyncCommand::Tail { .. }) => Err(crate::output::invalid(
            "td sync tail follows td's own sync server; here, 'td peer sync <peer> --watch' prints each round as it arrives and 'td sync status' shows the hub".into(),
        )),
        Some(SyncCommand::Push) => hub::round(p, root, true, false, json),
        Some(SyncCommand::Pull) => hub::round(p, root, false, true, json),
        None => hub::round(p, root, !a.pull, !a.push, json),
    }
}
