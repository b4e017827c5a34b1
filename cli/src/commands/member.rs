//! `td member`: the project's roster (admit, invite, change roles, remove).

use anyhow::Result;
use clap::{Subcommand, ValueEnum};
use serde_json::{json, Value};
use td_engine::authority::Role;
use td_engine::views::{to_json, MemberView};

use super::Cx;
use crate::output::{emit, invalid};

/// A role as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum RoleArg {
    /// Writes issues.
    Member,
    /// Also admits, removes and changes roles.
    Admin,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Member => Role::Member,
            RoleArg::Admin => Role::Admin,
        }
    }
}

/// `td member`.
#[derive(Debug, Subcommand)]
pub(crate) enum MemberCommand {
    /// Admit a machine: its changes are accepted by every replica (admins only).
    #[command(
        after_help = "The founder is the first admin. Members write; admins also add and remove machines\nand change roles. A machine's work written before its admission arrives is held, not\ndropped, and applied once it is admitted.\n\nExamples:\n  td member add 3f2a…c9 --name ci-runner\n  td member add 3f2a…c9 --role admin"
    )]
    Add {
        /// Its public key (from 'td peer id' on that machine).
        key: String,
        /// A label for it.
        #[arg(long)]
        name: Option<String>,
        /// `member` (writes) or `admin` (also changes the roster).
        #[arg(long, value_enum, default_value_t = RoleArg::Member)]
        role: RoleArg,
    },
    /// List members: role, who admitted whom, removed machines, pending invites.
    List,
    /// Make a one-line invite for a machine you don't know yet (admins only).
    #[command(
        after_help = "Prints one line (or {\"code\",…} with --json) to give the new machine, which runs\n'td join <code>'. The code is a secret until used: anyone holding it can join once.\n\nExamples:\n  td member invite --name ci-runner --hub libsql://team.turso.io\n  td member invite --role admin --expires 1d --peer 10.0.0.5:7878"
    )]
    Invite {
        /// `member` or `admin`.
        #[arg(long, value_enum, default_value_t = RoleArg::Member)]
        role: RoleArg,
        /// A name for the new machine.
        #[arg(long)]
        name: Option<String>,
        /// How long the code stays valid (30m, 12h, 7d, 2w).
        #[arg(long, default_value = "7d")]
        expires: String,
        /// A hub the new machine syncs through (defaults to this replica's hub).
        #[arg(long)]
        hub: Option<String>,
        /// A peer address (host:port) where this machine serves ('td peer serve').
        #[arg(long)]
        peer: Option<String>,
    },
    /// Withdraw an unused invite (admins only).
    RevokeInvite {
        /// The invite id (or a unique prefix of it), from 'td member list'.
        id: String,
    },
    /// Change a member's role (admins only; the last admin stays one).
    Role {
        /// Its public key, machine fingerprint or name.
        who: String,
        /// `member` or `admin`.
        #[arg(value_enum)]
        role: RoleArg,
    },
    /// Remove a machine (admins only). Its changes this replica already holds stay on every
    /// replica; later ones are refused everywhere.
    #[command(visible_alias = "rm")]
    Remove {
        /// Its public key, machine fingerprint or name.
        key: String,
    },
    /// Start a new content-key epoch: what is written from now on is sealed with a fresh key,
    /// sealed in turn to every member that published its encryption key (docs/encryption.md).
    /// Removals and role drops do this by themselves.
    RotateKey,
}

fn member_line(m: &MemberView) -> String {
    if m.removed {
        format!(
            "{}  {}  removed by {}",
            m.machine,
            m.public_key,
            m.removed_by.as_deref().unwrap_or("")
        )
    } else {
        let line = format!(
            "{}  {}  {}  {}  added by {}",
            m.machine,
            m.role,
            m.name,
            m.public_key,
            match m.added_by.as_deref() {
                Some("") | None => "(founder)",
                Some(by) => by,
            }
        );
        match &m.late_join {
            Some(why) => format!("{line}\n  ⚠ {why}"),
            None => line,
        }
    }
}

fn chrono_rfc3339(secs: i64) -> String {
    td_engine::roster::rfc3339(secs)
}

/// Runs one `td member` subcommand.
pub(crate) fn run(c: &MemberCommand, cx: &mut Cx<'_>) -> Result<()> {
    let (p, root, json) = (&mut *cx.p, cx.root, cx.json);
    match c {
        MemberCommand::Add { key, name, role } => {
            let role = Role::from(*role);
            let added = p.member_add(key, name.as_deref().unwrap_or(""), role)?;
            let action = if added { "added" } else { "already_member" };
            emit(
                json,
                &json!({"action": action, "public_key": key.trim(), "role": role.as_str()}),
                || {
                    if added {
                        format!("ADDED member {} ({})", key.trim(), role.as_str())
                    } else {
                        format!("{} is already a member", key.trim())
                    }
                },
            );
        }
        MemberCommand::Invite {
            role,
            name,
            expires,
            hub,
            peer,
        } => {
            // A bare number would be minutes (td's durations), rarely what an invite means.
            if !expires.trim().is_empty() && expires.trim().chars().all(|c| c.is_ascii_digit()) {
                return Err(invalid(format!(
                    "--expires {expires}: give a unit, e.g. {expires}d, {expires}h or {expires}m"
                )));
            }
            let ttl = crate::output::parse_duration(expires)?;
            let hub = match hub {
                Some(h) => Some(h.clone()),
                None => crate::config::hub_settings(root)?.url,
            };
            if hub.is_none() && peer.is_none() {
                return Err(invalid(
                    "say where the new machine syncs: --hub <url> or --peer <host:port> (this replica has no hub)".into(),
                ));
            }
            let role = Role::from(*role);
            let made = p.member_invite(
                role,
                name.as_deref().unwrap_or(""),
                ttl,
                hub.as_deref(),
                peer.as_deref(),
            )?;
            let expires_at = chrono_rfc3339(made.expires);
            emit(
                json,
                &json!({"action": "invited", "code": made.code, "invite": made.id, "role": role.as_str(),
                        "expires_at": expires_at, "hub": hub.as_deref().map(td_transport::hub::mask_url), "peer": peer}),
                || made.code.clone(),
            );
            if !json {
                eprintln!(
                    "Give this line to the new machine; it runs: td join <code>\nValid once, until {expires_at}. Withdraw it with: td member revoke-invite {}",
                    &made.id[..12]
                );
            }
        }
        MemberCommand::RevokeInvite { id } => {
            let id = p.member_revoke_invite(id)?;
            emit(
                json,
                &json!({"action": "invite_revoked", "invite": id}),
                || format!("REVOKED invite {id}"),
            );
        }
        MemberCommand::List => {
            let members = p.members()?;
            let invites = p.pending_invites()?;
            let mut lines: Vec<String> = members.iter().map(member_line).collect();
            lines.extend(invites.iter().map(|i| {
                format!(
                    "invite {}  {}  {}  by {}  expires {}",
                    &i.invite[..12.min(i.invite.len())],
                    i.role,
                    i.name,
                    i.by,
                    i.expires_at
                )
            }));
            let mut all: Vec<Value> = members.iter().map(to_json).collect();
            all.extend(invites.iter().map(to_json));
            emit(json, &Value::Array(all), || {
                if lines.is_empty() {
                    "No members yet (the founding machine joins with its first change).".into()
                } else {
                    lines.join("\n")
                }
            });
        }
        MemberCommand::Role { who, role } => {
            let role = Role::from(*role);
            let key = p.member_set_role(who, role)?;
            emit(
                json,
                &json!({"action": "role_changed", "public_key": key, "role": role.as_str()}),
                || format!("ROLE of {key} is now {}", role.as_str()),
            );
        }
        MemberCommand::RotateKey => {
            let epoch = p.rotate_key()?;
            emit(json, &json!({"action": "rotated", "epoch": epoch}), || {
                format!("ROTATED content key: epoch {}", &epoch[..16])
            });
        }
        MemberCommand::Remove { key } => {
            let key = p.member_remove(key)?;
            emit(
                json,
                &json!({"action": "removed", "public_key": key}),
                || format!("REMOVED member {key}"),
            );
        }
    }
    Ok(())
}
