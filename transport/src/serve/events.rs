//! Live events for `/v1/events`: the change log is watched (every `--interval`, and at once
//! after a write through the API), and what arrived is sent to every subscriber as td's
//! `refresh` event plus this td's own: `records` (which machine wrote what; `local` false for
//! records from a peer or the hub), `conflicts` (new conflicts recorded) and `members` (the
//! roster changed). The change token is the log position, so a client can tell what it saw.

use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};

use super::AppState;

/// One event for subscribers.
#[derive(Debug, Clone, Serialize)]
pub struct LiveEvent {
    /// The SSE event name (`refresh`, `records`, `conflicts`, `members`).
    pub event: String,
    /// The SSE id: the log position after the change.
    pub id: String,
    /// The payload.
    pub data: Value,
}

/// What one look at the log found: the events to send, and the new position.
fn look(state: &AppState, last: i64, unresolved: usize) -> Option<(i64, usize, Vec<LiveEvent>)> {
    // A request that panicked mid-operation poisoned the lock; its transaction rolled back.
    let p = state.project.lock().unwrap_or_else(|e| e.into_inner());
    let end = p.store.log_position().ok()? as i64;
    if end <= last {
        return None;
    }
    let rows = p.log_tail(Some(last), 2000).ok()?;
    let conflicts = p
        .conflicts(false, None)
        .map(|c| c.len())
        .unwrap_or(unresolved);
    drop(p);
    let id = end.to_string();
    let now = chrono_now();
    let mut out = vec![LiveEvent {
        event: "refresh".into(),
        id: id.clone(),
        data: json!({"change_token": id, "timestamp": now}),
    }];
    out.push(LiveEvent {
        event: "records".into(),
        id: id.clone(),
        data: json!({"records": rows.iter().map(td_engine::views::to_json).collect::<Vec<_>>()}),
    });
    if rows.iter().any(|r| r.kind == "roster") {
        out.push(LiveEvent {
            event: "members".into(),
            id: id.clone(),
            data: json!({"change_token": id}),
        });
    }
    if conflicts > unresolved {
        out.push(LiveEvent {
            event: "conflicts".into(),
            id: id.clone(),
            data: json!({"unresolved": conflicts, "new": conflicts - unresolved}),
        });
    }
    Some((end, conflicts, out))
}

fn chrono_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// How often subscribers get a `ping` (td's heartbeat period), besides the keep-alive comments.
const PING_EVERY: Duration = Duration::from_secs(30);

/// The longest time between two reads of the log, whatever the files' stamps say.
const READ_AT_LEAST: Duration = Duration::from_secs(1);

/// Watches the log until aborted: every `interval`, or when poked after an API write. Each
/// tick first compares the database files' [`td_engine::store::WriteStamp`] (two `stat`s) and
/// reads the log only when a commit moved it, which is why the default interval can be short:
/// events follow a commit within about one interval, and an idle server stays idle.
pub(crate) async fn poll(state: AppState, interval: Duration) {
    let mut last_ping = tokio::time::Instant::now();
    let mut last_read = last_ping;
    let (mut last, mut unresolved, db) = {
        let p = state.project.lock().unwrap_or_else(|e| e.into_inner());
        (
            p.store.log_position().unwrap_or(0) as i64,
            p.conflicts(false, None).map(|c| c.len()).unwrap_or(0),
            p.store.path().to_path_buf(),
        )
    };
    let mut stamp = td_engine::store::write_stamp(&db);
    loop {
        let poked = tokio::select! {
            _ = tokio::time::sleep(interval) => false,
            _ = state.poke.notified() => true,
        };
        // Nothing committed since the last look (the files' stamp is the same): no read. A
        // file system with coarse modification times could hide a commit that kept the WAL's
        // size, so the log is read at least every READ_AT_LEAST anyway.
        let now = td_engine::store::write_stamp(&db);
        if !poked
            && now == stamp
            && last_read.elapsed() < READ_AT_LEAST
            && last_ping.elapsed() < PING_EVERY
        {
            continue;
        }
        stamp = now;
        last_read = tokio::time::Instant::now();
        let s = state.clone();
        let found = tokio::task::spawn_blocking(move || look(&s, last, unresolved))
            .await
            .ok()
            .flatten();
        if last_ping.elapsed() >= PING_EVERY {
            last_ping = tokio::time::Instant::now();
            let _ = state.events.send(LiveEvent {
                event: "ping".into(),
                id: last.to_string(),
                data: json!({"change_token": last.to_string()}),
            });
        }
        if let Some((end, c, events)) = found {
            last = end;
            unresolved = c;
            for e in events {
                let _ = state.events.send(e);
            }
        }
    }
}
