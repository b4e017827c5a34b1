//! `td join <code>`: joining a project with an invite from `td member invite`.

use std::path::Path;

use anyhow::Result;
use clap::Args as ClapArgs;
use serde_json::json;
use td_engine::invite::{InviteCode, JoinStatus};

use super::Cx;
use crate::output::{emit, invalid};

/// Arguments of `td join`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// The invite code (one line, starts with tdjoin1_).
    pub code: String,
    /// The hub's auth token, when the hub needs one (never carried in the code).
    #[arg(long, env = "TD_DATABASE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// This replica has work of its own project: re-create it in the joined project (the
    /// old database is kept beside the new one as issues.db.adopted-<project>).
    #[arg(long)]
    pub adopt: bool,
    /// With --adopt: show what would move, change nothing.
    #[arg(long, requires = "adopt")]
    pub dry_run: bool,
}

/// Before the project opens: a refused code writes nothing, not even a new database; an
/// accepted one on a machine without a project starts from a fresh replica.
pub(crate) fn prepare(a: &Args, root: &Path, json: bool) -> Result<()> {
    InviteCode::decode(&a.code)?.check(now_secs())?;
    if !td_engine::store::db_path(root).exists() {
        crate::replica::init(root, json, true)?;
    }
    Ok(())
}

/// Checks the code offline, stores the invite and this machine's join, syncs through the hub
/// or peer the code names, and reports where the join stands.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let (p, root, ctx, json) = (&mut *cx.p, cx.root, cx.session, cx.json);
    let (token, adopt, dry_run) = (a.token.as_deref(), a.adopt, a.dry_run);
    let checked = InviteCode::decode(&a.code)?.check(now_secs())?;
    let project = checked.code.project.clone();
    let mine = p.store.project_id()?;
    // Already a member of that project: nothing to join, and the invite stays unused for the
    // machine it was meant for.
    if mine == project {
        if let Some(role) = p.own_role()? {
            let v = json!({"action": "already_member", "project": project, "role": role.as_str(),
                "machine": p.store.identity().fingerprint()});
            emit(json, &v, || {
                format!(
                    "ALREADY a member of project {project} as {}: nothing to join (the invite stays unused)",
                    role.as_str()
                )
            });
            return Ok(());
        }
    }
    let mut adopted = json!(null);
    if adopt && mine != project && !p.store.is_fresh()? {
        let counts = p.adopt_counts()?;
        if dry_run {
            let v = json!({"action": "would_adopt", "from_project": mine, "into_project": project, "entities": counts});
            emit(json, &v, || {
                let mut s = format!("Would re-create in {project} (from {mine}):");
                for (t, n) in &counts {
                    s.push_str(&format!("\n  {t}: {n}"));
                }
                s
            });
            return Ok(());
        }
        let (report, backup) = p.adopt_into(root, &project, ctx)?;
        adopted = json!({"from_project": mine, "entities": report.imported, "old_database": backup.display().to_string(),
                         "skipped": report.skipped});
    } else if dry_run {
        return Err(invalid(format!(
            "--dry-run: nothing to adopt (this replica has no work of another project than {project})"
        )));
    }
    p.join_prepare(&checked)?;
    let mut via = json!(null);
    if let Some(hub) = &checked.code.hub {
        // Pull first: a join by another machine with this invite, or a revocation, that is on
        // the hub already is seen before this machine writes its own.
        let mode = crate::config::hub_settings(root)?.mode;
        let mode = if mode == "local" { "libsql" } else { &mode };
        let attached = crate::hub::attach(p, root, mode, hub, token, Some(&project))?;
        p.join_commit(&checked)?;
        let pushed = td_transport::hub_sync::push(&mut p.store, &attached.client, &mut |_| {})?;
        via = json!({"hub": attached.client.display_url(), "pushed": attached.pushed + pushed, "pulled": attached.pulled});
    } else if let Some(addr) = &checked.code.peer {
        // A peer talks only to members: the join goes first, in the first round.
        p.join_commit(&checked)?;
        let name = format!("inviter-{}", &checked.code.inviter[..8]);
        p.peer_add(&name, addr, &checked.code.inviter)?;
        let outcome = super::peer::sync_one(p, root, &name)?;
        // The inviter is the admitting side: its refusal of the join is the answer (an
        // invite expired by its clock, whatever this machine's clock says).
        if let Some(why) = outcome
            .2
            .iter()
            .find(|r| r.contains("its join uses invite"))
        {
            return Err(invalid(format!(
                "the inviter refused this join: {}; ask an admin for a new invite ('td member invite')",
                why
            )));
        }
        via = json!({"peer": name, "addr": addr, "sent": outcome.0, "received": outcome.1});
    } else {
        p.join_commit(&checked)?;
    }
    let status = p.join_status(&checked.id)?;
    let (action, role) = match &status {
        JoinStatus::Member(role) => ("joined", Some(role.as_str())),
        JoinStatus::Waiting => ("waiting", None),
        JoinStatus::UsedByOther(fp) => {
            return Err(invalid(format!(
                "this invite was already used by machine {fp}: ask an admin for a new one ('td member invite')"
            )))
        }
        JoinStatus::Revoked => {
            return Err(invalid(
                "this invite was revoked: ask an admin for a new one ('td member invite')".into(),
            ))
        }
    };
    let v = json!({"action": action, "project": project, "role": role, "machine": p.store.identity().fingerprint(),
        "inviter": checked.code.inviter, "via": via, "adopted": adopted});
    emit(json, &v, || {
        match status {
        JoinStatus::Member(r) => format!("JOINED project {project} as {}{}", r.as_str(), route(&via)),
        _ => format!(
            "JOINING project {project}: the invite is stored with this machine's admission; it completes when the inviter's roster arrives (run 'td sync' or 'td peer sync' again)"
        ),
    }
    });
    Ok(())
}

/// The route a join took, as its line names it.
fn route(via: &serde_json::Value) -> String {
    if let Some(h) = via["hub"].as_str() {
        format!(" (through hub {h})")
    } else if let (Some(n), Some(a)) = (via["peer"].as_str(), via["addr"].as_str()) {
        format!(" (through peer {n} at {a})")
    } else {
        String::new()
    }
}

/// Now, in unix seconds.
pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
