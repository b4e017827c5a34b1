//! The sync loop (docs/sync-loop.md): one per project and machine, held by a lock, that pushes
//! this replica's commits to the hub soon after they are made (by any process) and pulls the
//! hub on an adaptive period, so that views (`td serve`, `td monitor`) and agents see a
//! teammate's change without anyone typing `td sync`.
//!
//! The loop runs in `td sync watch` (a foreground command a user service can run), and inside
//! `td serve` and `td monitor` when no other process holds the lock. Its state (running since,
//! last round, last error) is written to `.todos/sync-loop.json` for `td sync status`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use td_engine::{MachineIdentity, Store};

use crate::error::TransportError;
use crate::hub::HubClient;
use crate::hub_sync;

/// How the loop paces itself.
#[derive(Debug, Clone)]
pub struct LoopPace {
    /// How often the database files are looked at for a commit (two `stat`s).
    pub tick: Duration,
    /// The pull period while anything moves.
    pub pull_min: Duration,
    /// The longest pull period when idle (it doubles up to this).
    pub pull_max: Duration,
    /// The longest wait after a failed round (it doubles up to this from `pull_min`).
    pub backoff_max: Duration,
    /// How long pulls stay at `pull_min` after the last round that moved something, before
    /// the period starts doubling (a team at work keeps seeing changes within about a
    /// second; a project nobody touches costs ever fewer requests).
    pub active_for: Duration,
}

impl Default for LoopPace {
    fn default() -> Self {
        LoopPace {
            tick: Duration::from_millis(50),
            pull_min: Duration::from_secs(1),
            pull_max: Duration::from_secs(30),
            backoff_max: Duration::from_secs(60),
            active_for: Duration::from_secs(120),
        }
    }
}

/// The loop's state as it writes it for `td sync status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LoopState {
    /// The process running it.
    pub pid: u32,
    /// What runs it: `td sync watch`, `td serve`, `td monitor`.
    pub by: String,
    /// When it started (RFC 3339, UTC).
    pub since: String,
    /// When it last completed a round that reached the hub.
    pub last_round: Option<String>,
    /// Records pushed and pulled since it started.
    pub pushed: u64,
    /// Records pulled since it started.
    pub pulled: u64,
    /// The last failure, and when (cleared by the next round that reaches the hub).
    pub last_error: Option<String>,
    /// When the last failure happened.
    pub last_error_at: Option<String>,
    /// The peers it keeps a connection to (`td peer add` names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<String>,
}

/// What `td sync status` reports about the loop.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LoopStatus {
    /// Whether a loop holds the lock now.
    pub running: bool,
    /// Its last written state (also after it stopped).
    #[serde(flatten)]
    pub state: Option<LoopState>,
}

fn todos(root: &Path) -> PathBuf {
    root.join(".todos")
}

fn state_path(root: &Path) -> PathBuf {
    todos(root).join("sync-loop.json")
}

/// The lock that makes a process the project's one sync loop on this machine; released when
/// dropped (or when the process ends, however it ends).
#[derive(Debug)]
pub struct LoopLock {
    _file: File,
    root: PathBuf,
    by: String,
}

/// Takes the loop's lock (`.todos/sync.lock`) for `by` (what runs the loop: `td sync watch`,
/// `td serve`, `td monitor`), or `None` when another process holds it.
pub fn try_lock(root: &Path, by: &str) -> std::io::Result<Option<LoopLock>> {
    std::fs::create_dir_all(todos(root))?;
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(todos(root).join("sync.lock"))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(LoopLock {
            _file: file,
            root: root.to_path_buf(),
            by: by.to_string(),
        })),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Whether a loop runs for the project at `root`, and its last state.
pub fn status(root: &Path) -> LoopStatus {
    let running = match try_lock(root, "td sync status") {
        Ok(Some(_free)) => false, // dropped at once: nobody held it
        Ok(None) => true,
        Err(_) => false,
    };
    // A state file is small; one that is not ours (or too large) is ignored.
    let state = std::fs::metadata(state_path(root))
        .ok()
        .filter(|m| m.len() < 64 * 1024)
        .and_then(|_| std::fs::read(state_path(root)).ok())
        .and_then(|b| serde_json::from_slice(&b).ok());
    LoopStatus { running, state }
}

/// Now, as every long-running command's log lines begin (RFC 3339, UTC, seconds).
pub fn log_time() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl LoopLock {
    fn write_state(&self, state: &LoopState) {
        let path = state_path(&self.root);
        let tmp = path.with_extension("json.tmp");
        if let Ok(text) = serde_json::to_vec_pretty(state) {
            if std::fs::write(&tmp, text).is_ok() {
                let _ = std::fs::rename(&tmp, &path);
            }
        }
    }
}

/// One round's outcome, as the loop logs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Round {
    /// Records pushed.
    pub pushed: u64,
    /// Records pulled and applied.
    pub pulled: u64,
    /// Conflicts the pull recorded.
    pub conflicts: usize,
}

/// One push-and-pull (`pull`: also ask the hub for what is new), then the upkeep a pull calls
/// for (key operations, cascades), pushed in the same round.
pub fn round(
    store: &mut Store,
    client: &HubClient,
    session: &str,
    pull: bool,
) -> Result<Round, TransportError> {
    let mut r = Round {
        pushed: hub_sync::push(store, client, &mut |_| {})?,
        ..Default::default()
    };
    if pull {
        let got = hub_sync::pull(store, client, &mut |_| {})?;
        r.pulled = got.applied;
        r.conflicts = got.conflicts.len();
        if store.maintain_keys(session)? + store.settle_cascades(session)? > 0 {
            r.pushed += hub_sync::push(store, client, &mut |_| {})?;
        }
    }
    Ok(r)
}

/// Runs the loop until `stop` turns true: a push within about one `tick` of a commit by any
/// process, a pull every `pull_min` while anything moves (doubling to `pull_max` when idle),
/// and after a failure a wait that doubles up to `backoff_max` (so a hub that comes back is
/// caught up with by itself). `log` receives one line per round that did something and per
/// failure, each starting with its UTC time.
///
/// Without a hub (`client` `None`: a loop of peers only, [`run_peers`]) it only holds the lock
/// and its state until `stop`. `peers` names the peers kept connected beside it, for
/// `td sync status`.
#[allow(clippy::too_many_arguments)]
pub fn run(
    store: &mut Store,
    client: Option<&HubClient>,
    session: &str,
    lock: &LoopLock,
    pace: &LoopPace,
    peers: &[String],
    stop: &AtomicBool,
    log: &mut dyn FnMut(&str),
) {
    let db = store.path().to_path_buf();
    let by = lock.by.as_str();
    let mut state = LoopState {
        pid: std::process::id(),
        by: by.to_string(),
        since: log_time(),
        peers: peers.to_vec(),
        ..Default::default()
    };
    lock.write_state(&state);
    log(&format!("{} sync loop started ({by})", state.since));
    let Some(client) = client else {
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(pace.tick);
        }
        log(&format!("{} sync loop stopped", log_time()));
        return;
    };
    let mut stamp = td_engine::store::write_stamp(&db);
    let mut period = pace.pull_min;
    let mut next_pull = Instant::now();
    let mut wait_until: Option<Instant> = None;
    // A loop starts idle: it backs off at once unless something moves (a laptop at login
    // does not pull every second for two minutes).
    let mut last_moved = Instant::now()
        .checked_sub(pace.active_for)
        .unwrap_or_else(Instant::now);
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(pace.tick);
        let now_i = Instant::now();
        if wait_until.is_some_and(|w| now_i < w) {
            continue;
        }
        let seen = td_engine::store::write_stamp(&db);
        let committed = seen != stamp;
        let pull_due = now_i >= next_pull;
        if !committed && !pull_due && wait_until.is_none() {
            continue;
        }
        stamp = seen;
        let pending = store
            .pending_push(client.display_url())
            .map(|n| n > 0)
            .unwrap_or(true);
        if !pending && !pull_due && wait_until.is_none() {
            continue; // a commit that was not ours to push (a pull by another process)
        }
        match round(store, client, session, pull_due || wait_until.is_some()) {
            Ok(r) => {
                wait_until = None;
                state.last_round = Some(log_time());
                state.last_error = None;
                state.last_error_at = None;
                state.pushed += r.pushed;
                state.pulled += r.pulled;
                if r.pushed + r.pulled > 0 {
                    period = pace.pull_min;
                    last_moved = Instant::now();
                    log(&format!(
                        "{} pushed {}, pulled {}{}",
                        log_time(),
                        r.pushed,
                        r.pulled,
                        if r.conflicts > 0 {
                            format!(", {} new conflict(s)", r.conflicts)
                        } else {
                            String::new()
                        }
                    ));
                } else if pull_due && last_moved.elapsed() >= pace.active_for {
                    period = (period * 2).min(pace.pull_max);
                } else if pull_due {
                    period = pace.pull_min;
                }
                if pull_due {
                    next_pull = Instant::now() + period;
                }
                // The stamp is not read again here: a commit another process made during the
                // round would be taken for this round's own writes and wait for the next pull.
                // The round's own writes show as a change on the next look, which finds
                // nothing to push and goes on.
            }
            Err(e) => {
                let back = match wait_until {
                    Some(_) => (period * 2).min(pace.backoff_max),
                    None => pace.pull_min,
                };
                period = back;
                wait_until = Some(Instant::now() + back);
                next_pull = Instant::now() + back;
                // Bounded: a hub's answer quoted in an error cannot grow the state file.
                let message: String = e.to_string().chars().take(500).collect();
                state.last_error = Some(message.clone());
                state.last_error_at = Some(log_time());
                log(&format!(
                    "{} error: {message} (retrying in {} s)",
                    log_time(),
                    back.as_secs()
                ));
            }
        }
        lock.write_state(&state);
    }
    log(&format!("{} sync loop stopped", log_time()));
}

/// How often a kept peer connection runs a round when neither side changes (a safety net: each
/// side tells the other when its log grows).
pub const PEER_EVERY: Duration = Duration::from_secs(30);

/// Keeps a watching connection ([`peer::watch`](crate::peer::watch)) to each of `peers` until
/// `stop` turns true, in a thread of its own: a round runs whenever either side commits (the
/// serving side tells this one), and at least every [`PEER_EVERY`]. A connection that fails or
/// cannot be made is tried again after a wait that doubles from `pace.pull_min` to
/// `pace.backoff_max` (and starts over once a round succeeds), so a laptop that comes back on
/// the network is caught up with by itself. `log` gets one line per round that moved something
/// and per failure, each starting with its UTC time.
pub fn run_peers(
    root: PathBuf,
    identity: MachineIdentity,
    peers: Vec<crate::peer::PeerTarget>,
    discover: bool,
    pace: LoopPace,
    stop: Arc<AtomicBool>,
    log: Arc<dyn Fn(String) + Send + Sync>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            log(format!(
                "{} peers: cannot start the network runtime",
                log_time()
            ));
            return;
        };
        // A store is `Send` but not `Sync`, so the watches run as local tasks.
        let tasks = tokio::task::LocalSet::new();
        let kept: std::collections::BTreeSet<[u8; 32]> = peers.iter().map(|t| t.key).collect();
        if discover {
            let (root, identity, pace, stop, log) = (
                root.clone(),
                identity.clone(),
                pace.clone(),
                stop.clone(),
                log.clone(),
            );
            tasks.spawn_local(async move {
                discover_peers(root, identity, kept, pace, stop, log).await;
            });
        }
        for target in peers {
            let (root, identity, pace, stop, log) = (
                root.clone(),
                identity.clone(),
                pace.clone(),
                stop.clone(),
                log.clone(),
            );
            tasks.spawn_local(async move {
                keep_peer(root, identity, target, pace, stop, log).await;
            });
        }
        rt.block_on(tasks);
    })
}

/// How often the loop looks for members' servers on the LAN, and how long each look listens.
pub const DISCOVER_EVERY: Duration = Duration::from_secs(30);
const DISCOVER_WAIT: Duration = Duration::from_secs(3);

/// A member's machine key with its label (`laptop-a (3a99c94433)`).
type LabelledKey = ([u8; 32], String);

/// The project id and the keys of the roster's other members (what a LAN announcement is
/// recognised by), each with its label; read fresh for every look, so a member added since
/// is found too and a removed one is not.
fn member_keys(root: &Path, identity: &MachineIdentity) -> Option<(String, Vec<LabelledKey>)> {
    let store = Store::open(root, identity.clone()).ok()?;
    let project = store.project_id().ok()?;
    let me = identity.public_key();
    let roster = td_engine::roster::stored(store.conn()).ok()?;
    let mut keys = Vec::new();
    for id in roster.members.keys() {
        let Some(k) = hex::decode(id)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
        else {
            continue;
        };
        if k != me {
            let label = td_engine::roster::machine_label(store.conn(), &k)
                .unwrap_or_else(|_| td_engine::identity::fingerprint_of(&k));
            keys.push((k, label));
        }
    }
    Some((project, keys))
}

/// LAN discovery inside the loop (docs/peer-sync.md): every [`DISCOVER_EVERY`], listen for
/// announcements of this project's servers; each one recognised as a member's that no kept
/// connection serves yet gets one, exactly as an address-book peer (the handshake proves the
/// key; the roster decides who syncs). Unrecognised servers are never dialed.
async fn discover_peers(
    root: PathBuf,
    identity: MachineIdentity,
    mut kept: std::collections::BTreeSet<[u8; 32]>,
    pace: LoopPace,
    stop: Arc<AtomicBool>,
    log: Arc<dyn Fn(String) + Send + Sync>,
) {
    while !stop.load(Ordering::Relaxed) {
        if let Some((project, members)) = member_keys(&root, &identity) {
            let keys: Vec<[u8; 32]> = members.iter().map(|(k, _)| *k).collect();
            let found = if keys.is_empty() {
                Ok(Vec::new())
            } else {
                tokio::task::spawn_blocking(move || {
                    crate::discovery::discover(&project, &keys, DISCOVER_WAIT)
                })
                .await
                .unwrap_or_else(|e| Err(TransportError::Connection(e.to_string())))
            };
            match found {
                Ok(found) => {
                    for f in found {
                        let (Some(key), Some(addr)) = (f.key, f.addrs.first()) else {
                            continue;
                        };
                        if !kept.insert(key) {
                            continue;
                        }
                        let name = members
                            .iter()
                            .find(|(k, _)| *k == key)
                            .map(|(_, l)| l.clone())
                            .unwrap_or_default();
                        log(format!(
                            "{} found {name} on the LAN at {addr}: keeping it connected",
                            log_time()
                        ));
                        let target = crate::peer::PeerTarget {
                            name,
                            addr: addr.to_string(),
                            key,
                        };
                        let (root, identity, pace, stop, log) = (
                            root.clone(),
                            identity.clone(),
                            pace.clone(),
                            stop.clone(),
                            log.clone(),
                        );
                        tokio::task::spawn_local(async move {
                            keep_peer(root, identity, target, pace, stop, log).await;
                        });
                    }
                }
                Err(e) => log(format!("{} LAN discovery: {e}", log_time())),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(DISCOVER_EVERY) => {}
            _ = stopped(stop.clone()) => break,
        }
    }
}

/// Resolves once `stop` turns true.
async fn stopped(stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn keep_peer(
    root: PathBuf,
    identity: MachineIdentity,
    target: crate::peer::PeerTarget,
    pace: LoopPace,
    stop: Arc<AtomicBool>,
    log: Arc<dyn Fn(String) + Send + Sync>,
) {
    let name = target.name.clone();
    let mut back = pace.pull_min;
    while !stop.load(Ordering::Relaxed) {
        let mut rounds = 0u64;
        let result = crate::peer::watch(
            root.clone(),
            identity.clone(),
            target.clone(),
            PEER_EVERY,
            stopped(stop.clone()),
            &mut |o| {
                rounds += 1;
                let s = &o.stats;
                if s.sent + s.received > 0 || !s.rejected_by_peer.is_empty() {
                    log(format!(
                        "{} peer {name}: sent {}, received {}{}",
                        log_time(),
                        s.sent,
                        s.received,
                        if s.conflicts.is_empty() {
                            String::new()
                        } else {
                            format!(", {} new conflict(s)", s.conflicts.len())
                        }
                    ));
                }
            },
        )
        .await;
        if rounds > 0 {
            back = pace.pull_min;
        }
        match result {
            Ok(()) => break, // stopped
            Err(e) => {
                let message: String = e.to_string().chars().take(500).collect();
                log(format!(
                    "{} peer {name}: {message} (retrying in {} s)",
                    log_time(),
                    back.as_secs()
                ));
                tokio::select! {
                    _ = tokio::time::sleep(back) => {}
                    _ = stopped(stop.clone()) => break,
                }
                back = (back * 2).min(pace.backoff_max);
            }
        }
    }
}
