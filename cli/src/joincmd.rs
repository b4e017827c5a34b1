//! `td join <code>`: joining a project with an invite from `td member invite`.

use std::path::Path;

use anyhow::Result;
use serde_json::json;
use td_engine::invite::{InviteCode, JoinStatus};
use td_engine::Project;

use crate::output::{emit, invalid};

/// Checks the code offline (a refused code writes nothing), stores the invite and this
/// machine's join, syncs through the hub or peer the code names, and reports where the join
/// stands.
pub(crate) fn join(
    p: &mut Project,
    root: &Path,
    ctx: &td_engine::SessionContext,
    code: &str,
    token: Option<&str>,
    (adopt, dry_run): (bool, bool),
    json: bool,
) -> Result<()> {
    let checked = InviteCode::decode(code)?.check(now_secs())?;
    let project = checked.code.project.clone();
    let mine = p.store.project_id()?;
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
        let attached = crate::hubcmd::attach(p, root, mode, hub, token, Some(&project))?;
        p.join_commit(&checked)?;
        let pushed = td_transport::hub_sync::push(&mut p.store, &attached.client, &mut |_| {})?;
        via = json!({"hub": attached.client.display_url(), "pushed": attached.pushed + pushed, "pulled": attached.pulled});
    } else if let Some(addr) = &checked.code.peer {
        // A peer talks only to members: the join goes first, in the first round.
        p.join_commit(&checked)?;
        let name = format!("inviter-{}", &checked.code.inviter[..8]);
        p.peer_add(&name, addr, &checked.code.inviter)?;
        let outcome = crate::peers::sync_one(p, root, &name)?;
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
        JoinStatus::Member(r) => format!("JOINED project {project} as {}", r.as_str()),
        _ => format!(
            "JOINING project {project}: the invite is stored with this machine's admission; it completes when the inviter's roster arrives (run 'td sync' or 'td peer sync' again)"
        ),
    }
    });
    Ok(())
}

/// Now, in unix seconds.
pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
