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
    /// Show sync status only (as `td sync status`).
    #[arg(long, conflicts_with_all = ["push", "pull"])]
    pub status: bool,
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
    /// Mode, hub, pending changes, last push/pull, quarantined rows, and the sync loop.
    Status,
    /// Run this project's sync loop until interrupted: push each commit (by any process)
    /// within about 50 ms, pull the hub every second while anything moves (backing off to 30 s
    /// when idle), keep a connection to every peer in the address book ('td peer add') with a
    /// round whenever either side commits, retry with backoff when the hub or a peer is away.
    /// One loop per project and machine; `td serve` and `td monitor` run the hub part
    /// themselves when none runs. Logs one line per round.
    Watch,
    /// Run `td sync watch` as a user service that starts at login and restarts when it stops
    /// (a systemd user unit on Linux, a launchd agent on macOS), one per checkout.
    Service {
        #[command(subcommand)]
        cmd: ServiceCommand,
    },
    /// Rewrite the hub's plaintext rows (content written before the project's first epoch)
    /// as ciphertext under the current content key. Admins only; safe to run again or after
    /// an interruption: each row is rewritten once, nothing is lost. The roster's rows stay
    /// readable: they carry keys and roles, no content.
    #[command(name = "encrypt-hub")]
    EncryptHub {
        /// Rows rewritten per hub transaction (1 to 2000).
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u16).range(1..=2000))]
        batch: u16,
    },
    /// Turn autosync on (td's spelling of `td config set sync.auto true`).
    Enable,
    /// Turn autosync off (td's spelling of `td config set sync.auto false`).
    Disable,
    /// The change log's newest records — written here, or arrived from a peer or the hub —
    /// with the machine and session that wrote each; `-f` follows records as they arrive.
    Tail {
        /// Keep printing records as they arrive (until interrupted).
        #[arg(short = 'f', long)]
        follow: bool,
        /// How many of the newest records to show first.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: usize,
        /// With -f, how often to look at the log's end (e.g. 500ms is written 1s; default 1s).
        #[arg(long, value_name = "DURATION", default_value = "1s")]
        interval: String,
    },
    /// Concurrent edits that overwrote one another (unresolved ones by default).
    Conflicts {
        /// Only conflicts whose overwritten edit is newer than this (e.g. 30m, 12h, 7d).
        #[arg(long, value_name = "DURATION")]
        since: Option<String>,
        /// Include resolved conflicts.
        #[arg(long)]
        all: bool,
        /// Show at most this many (newest first).
        #[arg(long, default_value_t = 20)]
        limit: usize,
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

/// `td sync service`.
#[derive(Debug, Subcommand)]
pub(crate) enum ServiceCommand {
    /// Write the unit and start it (`systemctl --user enable --now`, `launchctl load -w`).
    /// Where no user service manager runs, the unit is kept and the command that starts it
    /// is printed.
    Install {
        /// Print the unit and where it would go; write nothing.
        #[arg(long)]
        print: bool,
        /// Write the unit without starting it.
        #[arg(long)]
        no_start: bool,
    },
    /// Stop the service and remove its unit.
    Uninstall,
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
        Some(SyncCommand::Watch) => {
            let peers = hub::book_targets(p)?;
            hub::watch(p, root, peers, json)
        }
        Some(SyncCommand::Service { cmd }) => {
            let (v, line) = match cmd {
                ServiceCommand::Install { print, no_start } => {
                    if !*print && crate::config::hub_settings(root)?.url.is_none() {
                        return Err(crate::output::invalid(
                            "the sync loop needs a hub: connect one first with 'td sync init --hub URL'"
                                .into(),
                        ));
                    }
                    crate::service::install(root, *print, *no_start)?
                }
                ServiceCommand::Uninstall => crate::service::uninstall(root)?,
            };
            crate::output::emit(json, &v, || line);
            Ok(())
        }
        Some(SyncCommand::EncryptHub { batch }) => {
            hub::encrypt_hub(p, root, usize::from(*batch), json)
        }
        None if a.status => hub::status(p, root, json),
        Some(SyncCommand::Conflicts { since, all, limit }) => {
            conflicts::list(p, since.as_deref(), *all, *limit, json)
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
        Some(SyncCommand::Tail {
            follow,
            lines,
            interval,
        }) => tail(p, *follow, *lines, interval, json),
        Some(SyncCommand::Push) => hub::round(p, root, true, false, json),
        Some(SyncCommand::Pull) => hub::round(p, root, false, true, json),
        None => hub::round(p, root, !a.pull, !a.push, json),
    }
}

/// `td sync tail [-f]`: the newest records, then (following) each record as it is stored,
/// one line each (`--json`: an array, or one JSON object per line when following).
fn tail(
    p: &mut td_engine::Project,
    follow: bool,
    lines: usize,
    interval: &str,
    json: bool,
) -> Result<()> {
    use std::io::Write;
    let every = crate::output::parse_interval(interval)?;
    let line = |r: &td_engine::views::LogRecordView| {
        format!(
            "{:>8}  {}  {:<14} {:<12} {} {}{}",
            r.position,
            r.received_at,
            r.entity,
            if r.local { "here" } else { r.machine.as_str() },
            r.session,
            if r.local { "" } else { "(received)" },
            if r.applied { "" } else { "  [held]" },
        )
    };
    let end = p.store.log_position()? as i64;
    let first = p.log_tail(None, lines)?;
    let mut last = end.max(first.last().map(|r| r.position).unwrap_or(0));
    if !follow {
        let v = serde_json::Value::Array(first.iter().map(td_engine::views::to_json).collect());
        crate::output::emit(json, &v, || {
            if first.is_empty() {
                "The change log is empty.".into()
            } else {
                first.iter().map(line).collect::<Vec<_>>().join("\n")
            }
        });
        return Ok(());
    }
    let print = |rows: &[td_engine::views::LogRecordView]| -> Result<()> {
        let mut out = std::io::stdout().lock();
        for r in rows {
            if json {
                writeln!(out, "{}", td_engine::views::to_json(r))?;
            } else {
                writeln!(out, "{}", crate::output::escape(&line(r)))?;
            }
        }
        out.flush()?;
        Ok(())
    };
    print(&first)?;
    loop {
        std::thread::sleep(every);
        let rows = p.log_tail(Some(last), 1000)?;
        if let Some(r) = rows.last() {
            last = r.position;
        }
        print(&rows)?;
    }
}
