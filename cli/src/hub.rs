//! The team hub as the commands use it: connecting (`td init --mode=libsql`, `td sync init`,
//! `td join`), a sync round, `td sync status`, `td status --db`, and autosync around commands.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use serde_json::{json, Value};
use td_engine::Project;
use td_transport::hub::{mask_token, HubClient};
use td_transport::hub_sync::{self, Joined};

use crate::config::{hub_settings, HubSettings, ProjectConfig};
use crate::output::{emit, invalid};
use crate::progress::Progress;

pub(crate) fn client_for(s: &HubSettings) -> Result<HubClient> {
    let url = s.url.as_deref().ok_or_else(|| {
        invalid("no hub configured: run 'td sync init --hub <url>' (or set TD_DATABASE_URL)".into())
    })?;
    Ok(HubClient::new(url, s.token.as_deref())?)
}

/// `td init [--mode=libsql|turso --url <url> [--token <t>]]`.
pub(crate) fn init(
    root: &Path,
    mode: Option<&str>,
    url: Option<&str>,
    token: Option<&str>,
    json: bool,
) -> Result<()> {
    match (mode.unwrap_or("local"), url) {
        ("local", None) => crate::replica::init(root, json, false).map(|_| ()),
        ("local", Some(_)) => Err(invalid("--url needs --mode=libsql (or turso)".into())),
        ("libsql" | "turso", None) => Err(invalid("--mode=libsql needs --url <hub url>".into())),
        (m @ ("libsql" | "turso"), Some(u)) => {
            HubClient::new(u, token)?; // validate before creating anything
            let local = crate::replica::init(root, json, true)?;
            let identity = td_transport::identity::machine_identity()?;
            let mut p = Project::open(root, identity, &crate::env::session_context(root))?;
            connect(&mut p, root, m, u, token, None, json, Some(local))
        }
        (m, _) => Err(invalid(format!(
            "invalid --mode '{m}': expected local, libsql or turso"
        ))),
    }
}

/// Saves the hub settings, checks the hub, joins its project, and runs a first sync.
#[allow(clippy::too_many_arguments)]
fn connect(
    p: &mut Project,
    root: &Path,
    mode: &str,
    url: &str,
    token: Option<&str>,
    project: Option<&str>,
    json: bool,
    init: Option<Value>,
) -> Result<()> {
    let Attached {
        client,
        joined,
        pushed,
        pulled,
        quarantined,
    } = attach(p, root, mode, url, token, project)?;
    let (action, project) = match &joined {
        Joined::Own(id) => ("connected", id.clone()),
        Joined::Adopted(id) => ("joined", id.clone()),
    };
    let (sent, received) = client.traffic();
    let mut v = json!({"action": action, "hub": client.display_url(), "project": project, "pushed": pushed, "pulled": pulled,
        "quarantined": quarantined, "bytes": {"sent": sent, "received": received}});
    if let Some(i) = init {
        v["init"] = i;
    }
    // A machine that reached the hub but is not on the project's roster reads nothing sealed
    // and its writes are held by everyone: say so, and what to ask for.
    let me = p.store.identity().public_key_hex();
    // With no roster yet (a project from before rosters), nobody is told otherwise.
    let member = !td_engine::roster::has_roster(p.store.conn())? || p.own_role()?.is_some();
    v["member"] = json!(member);
    emit(json, &v, || {
        let mut line = format!(
            "{} hub {} (project {project}): pushed {pushed}, pulled {pulled}",
            action.to_uppercase(),
            client.display_url()
        );
        if !member {
            line.push_str(&format!(
                "\nNOT A MEMBER of project {project}: this machine reads nothing sealed and its writes are held until an admin admits it. Ask an admin for an invite ('td member invite', then 'td join <code>' here) or to run 'td member add {me}'"
            ));
        }
        line
    });
    Ok(())
}

/// `td sync init --adopt`: a replica with work of another project than the hub's re-creates
/// it in the hub's project (the only one there, or `--project`) before connecting.
fn adopt_hub_project(
    p: &mut Project,
    root: &Path,
    url: &str,
    token: Option<&str>,
    project: Option<&str>,
) -> Result<()> {
    let client = HubClient::new(url, token)?;
    client.ensure_layout()?;
    let on_hub = client.projects()?;
    let target = match (project, on_hub.as_slice()) {
        (Some(p), _) => p.to_string(),
        (None, [one]) => one.clone(),
        (None, []) => {
            return Err(invalid(format!(
                "--adopt: hub {} holds no project yet; there is nothing to adopt into (drop --adopt to publish this one)",
                client.display_url()
            )))
        }
        (None, many) => {
            return Err(invalid(format!(
                "--adopt: hub {} holds {} projects ({}): choose one with --project",
                client.display_url(),
                many.len(),
                many.join(", ")
            )))
        }
    };
    if p.store.project_id()? != target && !p.store.is_fresh()? {
        p.adopt_into(root, &target, &crate::env::session_context(root))?;
    }
    Ok(())
}

/// A replica connected to a hub and synced once.
pub(crate) struct Attached {
    /// The hub.
    pub client: HubClient,
    /// Whose project.
    pub joined: Joined,
    /// Records pushed.
    pub pushed: u64,
    /// Records pulled.
    pub pulled: u64,
    /// Rows quarantined.
    pub quarantined: u64,
}

/// Saves the hub settings, joins the hub's project (or this one), pushes, then pulls.
pub(crate) fn attach(
    p: &mut Project,
    root: &Path,
    mode: &str,
    url: &str,
    token: Option<&str>,
    project: Option<&str>,
) -> Result<Attached> {
    let client = HubClient::new(url, token)?;
    let joined = hub_sync::join(&mut p.store, &client, project)?;
    let mut cfg = ProjectConfig::load(root)?;
    cfg.set("database.mode", mode)?;
    cfg.set("database.url", url)?;
    if let Some(t) = token {
        cfg.set("database.token", t)?;
    }
    cfg.save()?;
    let mut pushed = hub_sync::push(&mut p.store, &client, &mut |_| {})?;
    let got = hub_sync::pull(&mut p.store, &client, &mut |_| {})?;
    let session = p.session.id.clone();
    if p.store.maintain_keys(&session)? + p.store.settle_cascades(&session)? > 0 {
        pushed += hub_sync::push(&mut p.store, &client, &mut |_| {})?;
    }
    let (pulled, quarantined) = (got.applied, got.quarantined);
    Ok(Attached {
        client,
        joined,
        pushed,
        pulled,
        quarantined,
    })
}

/// A push with its progress line: changes pushed of those pending, bytes sent.
fn push_shown(p: &mut Project, client: &HubClient, prog: &mut Progress) -> Result<u64> {
    let total = p.store.pending_push(client.display_url())?.max(0) as u64;
    let sent_before = client.traffic().0;
    Ok(hub_sync::push(&mut p.store, client, &mut |n| {
        prog.update("pushed", n, Some(total), client.traffic().0 - sent_before)
    })?)
}

/// A pull with its progress line: changes applied, of the rows the hub holds after the
/// cursor when a line is shown (one count query), bytes received.
fn pull_shown(
    p: &mut Project,
    client: &HubClient,
    prog: &mut Progress,
) -> Result<hub_sync::Pulled> {
    let total = if prog.shown() {
        let cursor = p.store.hub_state(client.display_url())?.pull_cursor;
        client.rows_after(&p.store.project_id()?, cursor).ok()
    } else {
        None
    };
    let received_before = client.traffic().1;
    Ok(hub_sync::pull(&mut p.store, client, &mut |n| {
        prog.update("pulled", n, total, client.traffic().1 - received_before)
    })?)
}

/// `td sync init --hub`: connects this project to a hub (after adopting the hub's project
/// with `--adopt`).
pub(crate) fn connect_init(
    p: &mut Project,
    root: &Path,
    hub: &str,
    token: Option<&str>,
    project: Option<&str>,
    adopt: bool,
    json: bool,
) -> Result<()> {
    if adopt {
        adopt_hub_project(p, root, hub, token, project)?;
    }
    let mode = hub_settings(root)?.mode;
    let mode = if mode == "local" {
        "libsql".to_string()
    } else {
        mode
    };
    connect(p, root, &mode, hub, token, project, json, None)
}

/// `td sync`, `td sync push`, `td sync pull`: one round with the hub.
pub(crate) fn round(
    p: &mut Project,
    root: &Path,
    push: bool,
    pull: bool,
    json: bool,
) -> Result<()> {
    let settings = hub_settings(root)?;
    let client = client_for(&settings)?;
    client.ensure_layout()?;
    let st = p.store.hub_state(client.display_url())?;
    if st.last_push_at.is_none() && st.last_pull_at.is_none() {
        // First contact (the hub was set with 'td config set database.url' or
        // TD_DATABASE_URL): a fresh replica adopts the hub's project, and a replica of another
        // project is refused rather than splitting the hub.
        hub_sync::join(&mut p.store, &client, None)?;
    }
    let mut prog = Progress::new(json, client.display_url().to_string());
    let pushed = if push {
        push_shown(p, &client, &mut prog)?
    } else {
        0
    };
    let got = if pull {
        pull_shown(p, &client, &mut prog)?
    } else {
        hub_sync::Pulled::default()
    };
    // Key operations the pull made necessary (this machine's key, epoch keys sealed to a
    // member whose key just arrived) go out in the same sync.
    let session = p.session.id.clone();
    // So do the cascades that what arrived calls for (docs/merge-rules.md, rule 11).
    let upkeep = p.store.maintain_keys(&session)? + p.store.settle_cascades(&session)?;
    let pushed = if upkeep > 0 && push {
        pushed + push_shown(p, &client, &mut prog)?
    } else {
        pushed
    };
    let (pulled, quarantined, conflicts) = (got.applied, got.quarantined, got.conflicts.len());
    prog.finish();
    let pending = p.store.pending_push(client.display_url())?;
    let (sent, received) = client.traffic();
    let v = json!({"pushed": pushed, "pulled": pulled, "conflicts": conflicts, "pending": pending, "quarantined": quarantined,
        "bytes": {"sent": sent, "received": received}});
    emit(json, &v, || {
        let mut s = format!(
            "SYNCED with {}: pushed {pushed}, pulled {pulled}",
            client.display_url()
        );
        if conflicts > 0 {
            s.push_str(&format!(
                ", {conflicts} new conflict(s) (see 'td sync conflicts')"
            ));
        }
        if quarantined > 0 {
            s.push_str(&format!(
                ", quarantined {quarantined} invalid hub rows (see 'td sync status')"
            ));
        }
        s
    });
    Ok(())
}

/// `td sync encrypt-hub`: rewrites the hub's plaintext content rows (written before the
/// project's first epoch) as ciphertext. Admins only. The epoch it seals with goes to the hub
/// first (starting one if this replica has none), then this replica pulls, so it holds every
/// record it vouches for, then pages of rows are wrapped, each page one hub transaction.
pub(crate) fn encrypt_hub(p: &mut Project, root: &Path, batch: usize, json: bool) -> Result<()> {
    let settings = hub_settings(root)?;
    let client = client_for(&settings)?;
    client.ensure_layout()?;
    let started = p.prepare_hub_wrap()?;
    let mut prog = Progress::new(json, client.display_url().to_string());
    push_shown(p, &client, &mut prog)?;
    pull_shown(p, &client, &mut prog)?;
    let session = p.session.id.clone();
    if p.store.maintain_keys(&session)? + p.store.settle_cascades(&session)? > 0 {
        push_shown(p, &client, &mut prog)?;
    }
    let total = if prog.shown() {
        client.plaintext_rows(&p.store.project_id()?).ok()
    } else {
        None
    };
    let w = hub_sync::wrap_plaintext(&mut p.store, &client, batch, &mut |n| {
        prog.update("encrypted", n, total.map(|t| t as u64), client.traffic().0)
    })?;
    prog.finish();
    let v = json!({"hub": client.display_url(), "encrypted": w.wrapped, "skipped": w.skipped,
        "kept_readable": w.kept, "plaintext_rows_left": w.left, "epoch_started": started});
    emit(json, &v, || {
        let mut s = format!(
            "ENCRYPTED {} plaintext row(s) on {}; {} left",
            w.wrapped,
            client.display_url(),
            w.left
        );
        if let Some(e) = &started {
            s.push_str(&format!(" (started epoch {})", &e[..16.min(e.len())]));
        }
        if w.kept > 0 {
            s.push_str(&format!(
                "\n{} row(s) stay readable: a membership record written before encryption \
                 follows them in their writer's chain, and members verify it without a key",
                w.kept
            ));
        }
        if w.skipped > 0 {
            s.push_str(&format!(
                "\n{} row(s) are not records this replica holds and were left as they are; \
                 readers quarantine junk ('td sync status')",
                w.skipped
            ));
        }
        s
    });
    Ok(())
}

fn state_json(p: &Project, root: &Path, probe: bool) -> Result<Value> {
    let s = hub_settings(root)?;
    let project = p.store.project_id()?;
    let Some(url) = s.url.clone() else {
        let pending = p.store.pending_push("")?;
        return Ok(
            json!({"mode": s.mode, "hub": Value::Null, "project": project, "pending": pending,
                   "held": held_json(p)?, "auto": s.auto, "encryption": p.encryption()?,
                   "sync_loop": td_transport::sync_loop::status(root)}),
        );
    };
    let client = HubClient::new(&url, s.token.as_deref())?;
    let key = client.display_url().to_string();
    let st = p.store.hub_state(&key)?;
    let mut warning = Value::Null;
    let mut hub_plaintext: Option<i64> = None;
    let answered = if probe {
        let quick = client.clone().with_timeout(Duration::from_secs(3));
        match quick.ensure_layout().and_then(|_| quick.projects()) {
            Ok(on_hub) => {
                hub_plaintext = quick.plaintext_rows(&project).ok();
                if !on_hub.is_empty() && !on_hub.contains(&project) {
                    warning = json!(hub_sync::split_message(
                        client.display_url(),
                        &project,
                        &on_hub
                    ));
                }
                json!(true)
            }
            Err(e) => json!({"error": e.to_string()}),
        }
    } else {
        Value::Null
    };
    let quarantine: Vec<Value> = p
        .store
        .quarantined(&key)?
        .into_iter()
        .map(|q| json!({"hub_seq": q.hub_seq, "reason": q.reason, "at": q.at}))
        .collect();
    let waiting: Vec<Value> = p
        .store
        .hub_waiting(&key)?
        .into_iter()
        .map(|(actor, since)| json!({"writer": actor, "since": since}))
        .collect();
    Ok(json!({
        "mode": s.mode, "hub": key, "token": s.token.as_deref().map(mask_token), "project": project,
        "pending": p.store.pending_push(&key)?, "last_push_at": st.last_push_at, "last_pull_at": st.last_pull_at,
        "hub_answered": answered, "warning": warning, "quarantined": quarantine,
        "hub_anomaly": st.anomaly.as_ref().map(|a| json!({"found": a, "at": st.anomaly_at})), "waiting": waiting, "held": held_json(p)?, "auto": s.auto,
        "encryption": p.encryption()?, "hub_plaintext_rows": hub_plaintext,
        "sync_loop": td_transport::sync_loop::status(root),
    }))
}

/// Records stored but not applied, per machine (`roster::held`).
fn held_json(p: &Project) -> Result<Value> {
    Ok(p
        .held()?
        .into_iter()
        .map(|h| json!({"machine": h.machine, "public_key": h.public_key, "records": h.records, "reason": h.reason}))
        .collect())
}

/// `td sync status`.
pub(crate) fn status(p: &Project, root: &Path, json: bool) -> Result<()> {
    let v = state_json(p, root, true)?;
    emit(json, &v, || status_text(&v));
    Ok(())
}

fn status_text(v: &Value) -> String {
    let s = |k: &str| match &v[k] {
        Value::Null => "never".to_string(),
        Value::String(x) => x.clone(),
        other => other.to_string(),
    };
    let mut out = format!(
        "Mode: {}\nHub: {}\nProject: {}\nPending push: {}\n",
        s("mode"),
        s("hub"),
        s("project"),
        s("pending")
    );
    let l = &v["sync_loop"];
    if l.is_object() {
        let text = |k: &str| l[k].as_str().unwrap_or("never").to_string();
        let peers = l["peers"]
            .as_array()
            .filter(|a| !a.is_empty())
            .map(|a| {
                let names: Vec<&str> = a.iter().filter_map(Value::as_str).collect();
                format!("; peers {}", names.join(", "))
            })
            .unwrap_or_default();
        out.push_str(&if l["running"] == true {
            format!(
                "Sync loop: running in {} (pid {}) since {}; last round {}{peers}\n",
                text("by"),
                l["pid"],
                text("since"),
                text("last_round")
            )
        } else {
            "Sync loop: not running (start one with 'td sync watch', 'td serve' or 'td monitor')\n"
                .to_string()
        });
        if let Some(e) = l["last_error"].as_str() {
            out.push_str(&format!(
                "Sync loop error: {e} (at {})\n",
                text("last_error_at")
            ));
        }
    }
    let e = &v["encryption"];
    out.push_str(&match e["current"].as_str() {
        Some(id) => format!(
            "Encryption: on (epoch {}, {} epoch(s), {} key(s) held)\n",
            &id[..16.min(id.len())],
            e["epochs"],
            e["keys_held"]
        ),
        None if e["epochs"].as_i64().unwrap_or(0) > 0 => format!(
            "Encryption: on ({} epoch(s); this machine holds no key of the current one yet: the next write starts a new epoch)\n",
            e["epochs"]
        ),
        None => "Encryption: not started (the next write starts the first epoch)\n".to_string(),
    });
    if e["waiting_for_key"].as_i64().unwrap_or(0) > 0 {
        out.push_str(&format!(
            "Waiting for a key: {} sealed record(s) (they open when a member seals the epoch's key to this machine; run 'td sync' again)\n",
            e["waiting_for_key"]
        ));
    }
    if e["unreadable"].as_i64().unwrap_or(0) > 0 {
        out.push_str(&format!(
            "Unreadable: {} sealed record(s) do not open with their epoch's key (kept, never applied)\n",
            e["unreadable"]
        ));
    }
    if e["keys_unconfirmed"].as_i64().unwrap_or(0) > 0 {
        out.push_str(&format!(
            "Unconfirmed keys: {} epoch key(s) from an invite code that did not sign them (read with only, until a member seals the key to this machine; run 'td sync' again)\n",
            e["keys_unconfirmed"]
        ));
    }
    if let Some(n) = v["hub_plaintext_rows"].as_i64() {
        out.push_str(&format!(
            "Hub plaintext rows: {n} (content from before the first epoch; 'td sync encrypt-hub' seals them)\n"
        ));
    }
    if e["plaintext_records"].as_i64().unwrap_or(0) > 0 {
        out.push_str(&format!(
            "Plaintext: {} record(s) from before the first epoch\n",
            e["plaintext_records"]
        ));
    }
    for h in v["held"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "Held: {} record(s) of machine {}: {}\n",
            h["records"],
            h["machine"].as_str().unwrap_or(""),
            h["reason"].as_str().unwrap_or("")
        ));
    }
    if v["hub"].is_string() {
        out.push_str(&format!(
            "Last push: {}\nLast pull: {}\n",
            s("last_push_at"),
            s("last_pull_at")
        ));
        if let Some(w) = v["warning"].as_str() {
            out.push_str(&format!("WARNING: {w}\n"));
        }
        match &v["hub_answered"] {
            Value::Bool(true) => out.push_str("Hub: reachable\n"),
            Value::Object(e) => out.push_str(&format!(
                "Hub: UNREACHABLE: {}\n",
                e["error"].as_str().unwrap_or("")
            )),
            _ => {}
        }
        let q = v["quarantined"].as_array().map_or(0, Vec::len);
        out.push_str(&format!("Quarantined hub rows: {q}\n"));
        for r in v["quarantined"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "  #{}: {}\n",
                r["hub_seq"],
                r["reason"].as_str().unwrap_or("")
            ));
        }
        let w = v["waiting"].as_array().map_or(0, Vec::len);
        if w > 0 {
            out.push_str(&format!(
                "Writers waiting for earlier or signed hub rows (retried on every pull): {w}\n"
            ));
        }
    }
    out.trim_end().to_string()
}

/// `td status --db`.
pub(crate) fn status_db(p: &mut Project, root: &Path, json: bool) -> Result<()> {
    let mut v = state_json(p, root, true)?;
    let stats = p.log_stats()?;
    v["database"] = json!(td_engine::store::db_path(root).display().to_string());
    v["change_log"] =
        json!({"changes": stats.changes, "actors": stats.actors, "documents": stats.documents});
    emit(json, &v, || {
        format!(
            "Database: {}\n{}\nChange log: {} changes from {} writers",
            v["database"].as_str().unwrap_or(""),
            status_text(&v),
            stats.changes,
            stats.actors
        )
    });
    Ok(())
}

/// When autosync runs around a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Auto {
    /// Pull before a read (about 1 s at most).
    PullBefore,
    /// Push after a write (about 2 s at most).
    PushAfter,
}

/// Autosync (`sync.auto = true`): never fails the command; warns once on stderr and leaves
/// changes pending.
pub(crate) fn autosync(p: &mut Project, root: &Path, when: Auto) {
    let Ok(settings) = hub_settings(root) else {
        return;
    };
    if !settings.auto || settings.url.is_none() {
        return;
    }
    if td_transport::sync_loop::status(root).running {
        return; // the project's sync loop pushes and pulls (docs/sync-loop.md)
    }
    let limit = if when == Auto::PullBefore {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(2)
    };
    let result = client_for(&settings).and_then(|c| {
        let c = c.with_timeout(limit);
        match when {
            Auto::PullBefore => hub_sync::pull(&mut p.store, &c, &mut |_| {})
                .map_err(Into::into)
                .and_then(|_| {
                    let session = p.session.id.clone();
                    p.store
                        .settle_cascades(&session)
                        .map(|_| ())
                        .map_err(Into::into)
                }),
            Auto::PushAfter => hub_sync::push(&mut p.store, &c, &mut |_| {})
                .map(|_| ())
                .map_err(Into::into),
        }
    });
    if let Err(e) = result {
        let what = if when == Auto::PullBefore {
            "pull"
        } else {
            "push"
        };
        eprintln!(
            "Warning: autosync {what} failed: {e:#} (changes stay pending; run 'td sync' later)"
        );
    }
}

/// The sync loop running in this process (`td serve`, `td monitor`): stopped and joined when
/// dropped.
pub(crate) struct BackgroundLoop {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Drop for BackgroundLoop {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Every peer in the address book this replica can dial (the sync loop keeps each one
/// connected); one it cannot (a damaged entry) is left out with a warning.
pub(crate) fn book_targets(p: &Project) -> Result<Vec<td_transport::peer::PeerTarget>> {
    Ok(p.peers()?
        .iter()
        .filter_map(|b| match target_of(b) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("Warning: peer {}: {e:#}", crate::output::escape(&b.name));
                None
            }
        })
        .collect())
}

/// Whether the sync loop looks for members' servers on the LAN: `sync.discovery` is on (the
/// default) and the roster holds another member to find.
fn lan_discovery(p: &Project, root: &Path) -> bool {
    if !crate::config::discovery_on(root) {
        return false;
    }
    let me = p.store.identity().public_key_hex();
    p.members()
        .map(|ms| ms.iter().any(|m| !m.removed && m.public_key != me))
        .unwrap_or(false)
}

/// An address-book entry as a dialable peer.
pub(crate) fn target_of(b: &td_engine::roster::Peer) -> Result<td_transport::peer::PeerTarget> {
    Ok(td_transport::peer::PeerTarget {
        name: b.name.clone(),
        addr: b.addr.clone(),
        key: td_engine::roster::parse_public_key(&b.public_key)?,
    })
}

/// Starts the project's sync loop in threads of this process (`by`: who runs it) when no other
/// process runs it: the hub's part when a hub is configured and autosync is on, and a kept
/// connection to every peer in the address book (docs/sync-loop.md). `log` receives the
/// loop's lines.
pub(crate) fn background_loop(
    p: &Project,
    root: &Path,
    by: &str,
    log: impl Fn(&str) + Send + Sync + 'static,
) -> Option<BackgroundLoop> {
    let settings = hub_settings(root).ok()?;
    let client = match (&settings.url, settings.auto) {
        (Some(_), true) => Some(
            client_for(&settings)
                .ok()?
                .with_timeout(Duration::from_secs(10)),
        ),
        _ => None,
    };
    let peers = book_targets(p).unwrap_or_default();
    let discover = lan_discovery(p, root);
    if client.is_none() && peers.is_empty() && !discover {
        return None;
    }
    let lock = td_transport::sync_loop::try_lock(root, by).ok()??;
    let mut store = td_engine::Store::open(root, p.store.identity().clone()).ok()?;
    let session = store.upkeep_session();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let log: std::sync::Arc<dyn Fn(String) + Send + Sync> =
        std::sync::Arc::new(move |line: String| log(&line));
    let names: Vec<String> = peers.iter().map(|t| t.name.clone()).collect();
    let mut threads = Vec::new();
    if !peers.is_empty() || discover {
        threads.push(td_transport::sync_loop::run_peers(
            root.to_path_buf(),
            p.store.identity().clone(),
            peers,
            discover,
            Default::default(),
            stop.clone(),
            log.clone(),
        ));
    }
    let flag = stop.clone();
    threads.push(std::thread::spawn(move || {
        td_transport::sync_loop::run(
            &mut store,
            client.as_ref(),
            &session,
            &lock,
            &Default::default(),
            &names,
            &flag,
            &mut |line| log(line.to_string()),
        );
    }));
    Some(BackgroundLoop { stop, threads })
}

/// `td sync watch`: this project's sync loop in the foreground, until Ctrl-C or SIGTERM (what
/// a user service runs). Refused when another process runs the loop.
pub(crate) fn watch(
    p: &mut Project,
    root: &Path,
    peers: Vec<td_transport::peer::PeerTarget>,
    json: bool,
) -> Result<()> {
    let settings = hub_settings(root)?;
    let client = match &settings.url {
        Some(_) => Some(client_for(&settings)?.with_timeout(Duration::from_secs(10))),
        None => None,
    };
    let discover = lan_discovery(p, root);
    if client.is_none() && peers.is_empty() && !discover {
        return Err(invalid(
            "nothing to sync with: connect a hub ('td sync init --hub URL') or add a peer ('td peer add <name> <host:port> --key <public-key>')".into(),
        ));
    }
    let Some(lock) = td_transport::sync_loop::try_lock(root, "td sync watch")? else {
        let st = td_transport::sync_loop::status(root);
        let who = st
            .state
            .map(|s| format!(" ({} pid {}, since {})", s.by, s.pid, s.since))
            .unwrap_or_default();
        return Err(invalid(format!(
            "a sync loop already runs for this project{who}: one per project and machine"
        )));
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    let session = p.store.upkeep_session();
    // One writer of lines for the hub loop and the peers' thread.
    let log: std::sync::Arc<dyn Fn(String) + Send + Sync> = std::sync::Arc::new(move |line| {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        if json {
            let (at, text) = line.split_once(' ').unwrap_or(("", &line));
            let _ = writeln!(out, "{}", json!({"at": at, "event": text}));
        } else {
            let _ = writeln!(out, "{}", crate::output::escape(&line));
        }
        let _ = out.flush();
    });
    let names: Vec<String> = peers.iter().map(|t| t.name.clone()).collect();
    let pace = td_transport::sync_loop::LoopPace::default();
    let peer_thread = (!peers.is_empty() || discover).then(|| {
        td_transport::sync_loop::run_peers(
            root.to_path_buf(),
            p.store.identity().clone(),
            peers,
            discover,
            pace.clone(),
            stop.clone(),
            log.clone(),
        )
    });
    td_transport::sync_loop::run(
        &mut p.store,
        client.as_ref(),
        &session,
        &lock,
        &pace,
        &names,
        &stop,
        &mut |line| log(line.to_string()),
    );
    if let Some(t) = peer_thread {
        let _ = t.join();
    }
    Ok(())
}

/// One push and pull now (the monitor's `r`), whatever the loop is doing: a line for the
/// status bar, `None` without a hub.
pub(crate) fn sync_now(
    p: &mut Project,
    root: &Path,
) -> Option<std::result::Result<String, String>> {
    let settings = hub_settings(root).ok()?;
    settings.url.as_ref()?;
    let client = match client_for(&settings) {
        Ok(c) => c.with_timeout(Duration::from_secs(5)),
        Err(e) => return Some(Err(format!("{e:#}"))),
    };
    let session = p.store.upkeep_session();
    Some(
        td_transport::sync_loop::round(&mut p.store, &client, &session, true)
            .map(|r| format!("synced: pushed {}, pulled {}", r.pushed, r.pulled))
            .map_err(|e| format!("sync failed: {e}")),
    )
}

/// Whether online claims apply: a hub is configured and sync runs (autosync, or the
/// project's sync loop).
fn claims_client(root: &Path) -> Option<HubClient> {
    let settings = hub_settings(root).ok()?;
    settings.url.as_ref()?;
    if !settings.auto && !td_transport::sync_loop::status(root).running {
        return None;
    }
    client_for(&settings)
        .ok()
        .map(|c| c.with_timeout(CLAIM_WAIT))
}

/// How long `td start` waits for the hub's answer to a claim before the offline rule decides.
const CLAIM_WAIT: Duration = Duration::from_secs(2);

/// `td start`'s online claim (docs/sync-loop.md, "Claims granted online"), before the local
/// start: granted, or taken over when stale, or refused naming the machine that holds it.
/// When the hub does not answer, nothing is refused: the deterministic offline rule decides
/// when the two starts meet.
pub(crate) fn claim_online(
    p: &mut Project,
    root: &Path,
    id: &str,
    force: bool,
) -> td_engine::Result<()> {
    use td_engine::ops::online_claims::{ClaimVerdict, HubClaim};
    let Some(issue) = p.find_issue(id)? else {
        return Ok(()); // the local start says what is wrong with the id
    };
    let held_here = issue.status == "in_progress" && !issue.implementer_session.is_empty();
    if held_here && !force {
        return Ok(()); // the local start refuses (or repeats) by itself
    }
    let Some(tags) = p.claim_tags(&issue.id)? else {
        return Ok(());
    };
    let Some(client) = claims_client(root) else {
        return Ok(());
    };
    let project = p.store.project_id()?;
    let Ok(HubClaim::HeldBy { holder, age_ms }) = client.claim(&project, &tags, force) else {
        return Ok(()); // granted, or the hub is unreachable
    };
    // Judge on the latest state: the holder may have handed the issue on since.
    let _ = hub_sync::pull(&mut p.store, &client, &mut |_| {});
    match p.judge_hub_claim(&issue.id, &holder, age_ms)? {
        ClaimVerdict::TakeOver => {
            let _ = client.claim(&project, &tags, true);
            Ok(())
        }
        refused => Err(refused
            .refusal(&issue.id)
            .unwrap_or_else(|| td_engine::EngineError::Conflict(issue.id.clone()))),
    }
}

/// After a command that handed issues on (review, close, unstart, …): pushes that change, then
/// withdraws this machine's online claims on them, so the next machine to claim one is granted
/// at once and, pulling, sees why. Best effort, like autosync.
pub(crate) fn release_claims(p: &mut Project, root: &Path, ids: &[String]) {
    let Some(client) = claims_client(root) else {
        return;
    };
    let Ok(tags) = p.claims_to_release(ids) else {
        return;
    };
    if tags.is_empty() {
        return;
    }
    let Ok(project) = p.store.project_id() else {
        return;
    };
    if hub_sync::push(&mut p.store, &client, &mut |_| {}).is_ok() {
        let _ = client.release_claims(&project, &tags);
    }
}
