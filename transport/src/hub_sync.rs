//! Push and pull against a hub: the loop around the engine's hub bookkeeping and the client.

use td_engine::adoption::{self, Adoption};
use td_engine::model::now_timestamp;
use td_engine::Store;

use crate::error::TransportError;
use crate::hub::{HubClient, PUSH_BATCH};
use td_engine::hub::{HubRow, MAX_ROW_BYTES, PULL_BYTES, PULL_ROWS};

/// Totals of a push or pull.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HubSyncReport {
    /// Records sent to the hub.
    pub pushed: u64,
    /// Records received and applied.
    pub pulled: u64,
    /// Hub rows refused and quarantined.
    pub quarantined: u64,
    /// Local records still not on the hub.
    pub pending: i64,
}

/// Sends every local record the hub may lack, in bounded transactional batches. A push cut
/// off mid-way resumes from the last acknowledged batch; rows already on the hub are ignored.
pub fn push(
    store: &mut Store,
    client: &HubClient,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, TransportError> {
    let key = client.display_url().to_string();
    let project = store.project_id()?;
    // First the hub's rows of this machine's own writers that are about to be pushed: a fork
    // (a restored database) is recovered before anything of it is published.
    let own = store.own_unpushed(&key)?;
    if !own.is_empty() {
        let rows = client.pull_actors(&project, &own)?;
        store.apply_hub_rows(&key, &[], &rows)?;
        store.recover_own_forks()?;
    }
    let mut pushed = 0u64;
    loop {
        let through = store.hub_state(&key)?.pushed_through;
        let batch = store.outgoing(through, PUSH_BATCH)?;
        let Some(last) = batch.last() else { break };
        let last_id = last.local_id;
        client.push(&project, &batch, &now_timestamp())?;
        store.mark_pushed(&key, last_id)?;
        pushed += batch.len() as u64;
        progress(pushed);
    }
    Ok(pushed)
}

/// Reads the hub's rows of this project after the local cursor, page by page (bounded in rows
/// and bytes), reading ahead along the chains of writers a page leaves incomplete, verifying
/// and applying them. Rows that can never apply are quarantined; rows that may apply later
/// leave their writer waiting, retried on the next pull. Every page moves the cursor: no row
/// can stop a pull.
pub fn pull(
    store: &mut Store,
    client: &HubClient,
    progress: &mut dyn FnMut(u64),
) -> Result<Pulled, TransportError> {
    let key = client.display_url().to_string();
    let project = store.project_id()?;
    store.recover_own_forks()?;
    let all_pushed = store.hub_state(&key)?.pushed_through >= store.last_local_id()?;
    let mut total = Pulled::default();
    let start = store.hub_state(&key)?.pull_cursor;
    // Pages are read one ahead on another thread while this one applies: a page's end is the
    // next page's cursor whatever its rows hold, so reading never waits for applying.
    std::thread::scope(|scope| -> Result<(), TransportError> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<HubRow>, TransportError>>(1);
        let reader = client.clone();
        let reading = project.clone();
        scope.spawn(move || {
            let mut cursor = start;
            loop {
                let page = reader.pull(&reading, cursor);
                let next = match &page {
                    Ok(rows) if !is_last_page(rows) => rows.last().map(|r| r.seq),
                    _ => None,
                };
                if tx.send(page).is_err() {
                    break;
                }
                match next {
                    Some(n) => cursor = n,
                    None => break,
                }
            }
        });
        let mut carry = Vec::new();
        let mut first = true;
        for page in rx {
            let rows = page?;
            let last = is_last_page(&rows);
            let wanted = store.hub_read_ahead(&key, &rows, &carry, first, last)?;
            first = false;
            let mut extra = std::mem::take(&mut carry);
            extra.extend(client.pull_actors(&project, &wanted)?);
            let r = store.apply_hub_rows(&key, &rows, &extra)?;
            total.applied += r.applied;
            total.quarantined += r.quarantined;
            total.conflicts.extend(r.conflicts);
            carry = r.carry;
            progress(total.applied);
            if last {
                break;
            }
        }
        Ok(())
    })?;
    if all_pushed {
        // Everything pulled came from the hub, so the hub holds it: nothing new to push.
        let last = store.last_local_id()?;
        store.mark_pushed(&key, last)?;
    }
    Ok(total)
}

/// What a pull brought.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pulled {
    /// Records applied.
    pub applied: u64,
    /// Rows quarantined (they can never apply).
    pub quarantined: u64,
    /// Conflicts recorded by what was applied (ids).
    pub conflicts: Vec<String>,
}

/// Whether a page was cut short by neither bound (rows, bytes): then it was the last one.
fn is_last_page(rows: &[HubRow]) -> bool {
    let bytes: u64 = rows.iter().map(|r| r.size.min(MAX_ROW_BYTES as u64)).sum();
    rows.len() < PULL_ROWS && bytes + (MAX_ROW_BYTES as u64) < PULL_BYTES as u64
}

/// How a replica relates to a hub's projects when it first connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Joined {
    /// The replica's own project (the hub had none, or the same one).
    Own(String),
    /// A fresh replica adopted the hub's project.
    Adopted(String),
}

/// Connects a replica to a hub: checks the layout, then adopts the hub's project when this
/// replica is fresh and the hub holds exactly one (or the one named with `--project`).
pub fn join(
    store: &mut Store,
    client: &HubClient,
    project: Option<&str>,
) -> Result<Joined, TransportError> {
    client.ensure_layout()?;
    let ours = store.project_id()?;
    let on_hub = client.projects()?;
    let fresh = store.is_fresh()?;
    let invalid = |m: String| TransportError::Engine(td_engine::EngineError::InvalidInput(m));
    match adoption::decide(&ours, fresh, &on_hub, false, project) {
        Adoption::Keep => Ok(Joined::Own(ours)),
        Adoption::Adopt(p) => {
            store.adopt(&p)?;
            Ok(Joined::Adopted(p))
        }
        Adoption::Choose(several) => Err(invalid(format!(
            "hub {} holds {} projects ({}): choose one with --project",
            client.display_url(),
            several.len(),
            several.join(", ")
        ))),
        Adoption::Mismatch => Err(invalid(match project {
            Some(want) => {
                format!("project mismatch: this replica has changes of project {ours}, not {want}")
            }
            None => split_message(client.display_url(), &ours, &on_hub),
        })),
    }
}

/// Why a replica with work of one project must not sync with a hub that holds others: it
/// would found a second project there, and the two would never see each other's work.
pub fn split_message(hub: &str, ours: &str, on_hub: &[String]) -> String {
    format!(
        "project mismatch: hub {hub} holds project {}, but this replica has work of project {ours}; {}",
        on_hub.join(", "),
        "syncing would start a second project there that nobody else sees. To bring this \
         replica's work into the hub's project, ask an admin for an invite ('td member invite') \
         and run 'td join <code> --adopt'; to keep this project apart, use another hub"
    )
}
