//! Push and pull against a hub: the loop around the engine's hub bookkeeping and the client.

use td_engine::adoption::{self, Adoption};
use td_engine::model::now_timestamp;
use td_engine::Store;

use crate::error::TransportError;
use crate::hub::{HubClient, PUSH_BATCH, PUSH_BYTES};
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
    audit(store, client, &key, &project)?;
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
        let batch = store.outgoing(through, PUSH_BATCH, PUSH_BYTES)?;
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
    store.recover_own_forks()?;
    audit(store, client, &key, &store.project_id()?)?;
    let mut total = Pulled::default();
    if store.hub_state(&key)?.pull_cursor == 0 {
        // A first pull (a member joining, maybe after a long history): the roster first, so
        // the keys sealed to this machine (written after everything it is to read) are held
        // before the records they open, which then apply as they land instead of being held
        // and opened in a second pass (docs/encryption.md). Read as read-ahead: never
        // quarantined here, the cursor stays, the pages read them again as duplicates.
        let project = store.project_id()?;
        let roster = client.roster_rows(&project)?;
        if !roster.is_empty() {
            let r = store.apply_hub_rows(&key, &[], &roster)?;
            total.applied += r.applied;
        }
    }
    // Rows an admin wrapped come before the roster rows that carry their key to a member
    // admitted later: when a pass brought keys and left wrapped rows waiting for one, the
    // waiting writers are read again at once (each pass starts with them), while passes
    // still apply something.
    // Writers left waiting (their rows passed by the cursor while a page could not complete
    // them: many writers interleaved in long runs, as a migration writes) are read again from
    // their heads, a bounded number per pass, while passes still apply something: one pull
    // brings everything the hub holds.
    let mut waiting_before = usize::MAX;
    for _ in 0..MAX_PASSES {
        let pass = pull_pass(store, client, &key, total.applied, progress)?;
        total.applied += pass.applied;
        total.quarantined += pass.quarantined;
        total.conflicts.extend(pass.conflicts);
        // A pass progresses when it applies something or finds waiting writers complete.
        let waiting = store.hub_waiting(&key)?.len();
        let progressed = pass.applied > 0 || waiting < waiting_before;
        waiting_before = waiting;
        if !progressed || (pass.no_key == 0 && waiting == 0) {
            break;
        }
    }
    // Each applied batch moved the push cursor over what it read from this hub (atomically:
    // `Store::apply_hub_rows`). When that leaves nothing to push, td's action log is marked
    // synced.
    let through = store.hub_state(&key)?.pushed_through;
    if through >= store.last_local_id()? {
        store.mark_pushed(&key, through)?;
    }
    // What the hub holds up to the cursor now, to be checked on the next sync.
    let cursor = store.hub_state(&key)?.pull_cursor;
    if cursor > 0 {
        let (below, _, at) = client.audit(&store.project_id()?, cursor)?;
        store.note_hub_seen(&key, below, at)?;
    }
    Ok(total)
}

/// The hub is checked, never trusted: rows lost or renumbered below this replica's cursor
/// (a hub restored from a backup, rolled back, a row deleted) make it push everything again
/// and read again from the start (`Store::hub_audit`), said on stderr's log by the caller
/// through `td sync status`.
fn audit(
    store: &mut Store,
    client: &HubClient,
    key: &str,
    project: &str,
) -> Result<(), TransportError> {
    let cursor = store.hub_state(key)?.pull_cursor;
    if cursor == 0 {
        return Ok(());
    }
    let (below, max, at) = client.audit(project, cursor)?;
    store.hub_audit(key, below, max, at)?;
    Ok(())
}

/// Most passes one pull makes over writers still waiting (for a key, or for rows the cursor
/// passed; each pass reads up to
/// `READ_AHEAD_ACTORS` of them).
const MAX_PASSES: usize = 64;

/// One pass of a pull: the pages after the cursor, starting with the writers left waiting.
fn pull_pass(
    store: &mut Store,
    client: &HubClient,
    key: &str,
    before: u64,
    progress: &mut dyn FnMut(u64),
) -> Result<Pulled, TransportError> {
    let project = store.project_id()?;
    let key = key.to_string();
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
            let ahead = client.pull_actors(&project, &wanted)?;
            // Open-ended ranges that found nothing: those writers are complete here.
            store.settle_waiting(&key, &wanted, &ahead)?;
            extra.extend(ahead);
            let r = store.apply_hub_rows(&key, &rows, &extra)?;
            total.applied += r.applied;
            total.quarantined += r.quarantined;
            total.no_key += r.no_key;
            total.conflicts.extend(r.conflicts);
            carry = r.carry;
            progress(before + total.applied);
            if last {
                break;
            }
        }
        Ok(())
    })?;
    Ok(total)
}

/// What `td sync encrypt-hub` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wrapped {
    /// Rows rewritten as ciphertext by this run.
    pub wrapped: u64,
    /// Plaintext content rows left as they were (not a record this replica holds).
    pub skipped: u64,
    /// Plaintext content rows kept readable because a membership record depends on them.
    pub kept: u64,
    /// Plaintext content rows the hub still holds afterwards.
    pub left: i64,
}

/// Rewrites the hub's plaintext content rows as ciphertext under the current epoch, page by
/// page, each page one transaction on the hub (docs/encryption.md). Every update applies only
/// to a row still plaintext, so a run cut off anywhere loses nothing and the next run goes on
/// with what is left; the records themselves (hashes, signatures) are unchanged.
pub fn wrap_plaintext(
    store: &mut Store,
    client: &HubClient,
    page_rows: usize,
    progress: &mut dyn FnMut(u64),
) -> Result<Wrapped, TransportError> {
    let project = store.project_id()?;
    let mut out = Wrapped::default();
    let mut after = 0i64;
    loop {
        let rows = client.plaintext_page(&project, after, page_rows)?;
        let Some(last) = rows.last() else { break };
        after = last.seq;
        let page = store.wrap_hub_rows(&rows)?;
        client.replace_bodies(&project, &page.rows)?;
        out.wrapped += page.rows.len() as u64;
        out.skipped += page.skipped;
        out.kept += page.kept;
        progress(out.wrapped);
    }
    out.left = client.plaintext_rows(&project)?;
    Ok(out)
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
    /// Wrapped rows left waiting for their epoch key (read again when it arrives).
    pub no_key: u64,
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
