//! `td monitor`'s read model: everything one screen shows, read in one pass so the panes agree
//! (current work, the task list or a board, activity with the machine each change came from,
//! unresolved conflicts, and the sync status line). The monitor only renders it.

use std::collections::HashSet;

use rusqlite::OptionalExtension;

use crate::error::Result;
use crate::project::Project;
use crate::query::{self, ListFilter};
use crate::views::{ActivityView, HubLineView, MonitorView, PeerLineView, SyncLineView};

/// What the monitor asks for.
#[derive(Debug, Clone, Default)]
pub struct MonitorOptions {
    /// A TDQ filter for the task list (`/` search); `None`: every issue.
    pub query: Option<String>,
    /// Show closed issues in the task list.
    pub show_closed: bool,
    /// A td board (id or name) whose issues, in board order, replace the task list.
    pub board: Option<String>,
    /// How many activity entries to return.
    pub activity: usize,
    /// "Today" (`YYYY-MM-DD`) for deferred issues; empty: the local date.
    pub today: String,
}

/// How many of the newest log records are read to find the activity entries (one entity
/// written many times shows once, as its newest change).
const ACTIVITY_SCAN: usize = 600;

impl Project {
    /// One refresh of `td monitor`.
    pub fn monitor(&self, opts: &MonitorOptions) -> Result<MonitorView> {
        let conn = self.store.conn();
        let focused = match self.focused_issue()? {
            Some(id) => query::find_issue(conn, &id)?.filter(|i| i.deleted_at.is_none()),
            None => None,
        };
        let in_progress = self.issues(&ListFilter {
            status: vec!["in_progress".into()],
            ..Default::default()
        })?;
        let (tasks, board) = match (&opts.board, &opts.query) {
            (Some(key), _) => (Vec::new(), Some(self.board(key)?)),
            (None, Some(q)) if !q.trim().is_empty() => {
                let mut r = self.query(q, &crate::tdq::QueryOptions::default())?;
                if !opts.show_closed {
                    r.issues.retain(|i| i.status != "closed");
                }
                (r.issues, None)
            }
            _ => (
                self.issues(&ListFilter {
                    all: opts.show_closed,
                    dates: crate::query::DateView::Any,
                    today: opts.today.clone(),
                    ..Default::default()
                })?,
                None,
            ),
        };
        let reviewable = self.reviewable()?.into_iter().map(|i| i.id).collect();
        let conflicts = self.conflicts(false, None)?;
        Ok(MonitorView {
            session: self.session.id.clone(),
            focused,
            in_progress,
            tasks,
            board,
            reviewable,
            activity: self.activity(opts.activity)?,
            conflicts,
            sync: self.sync_line()?,
            log_position: self.store.log_position()? as i64,
        })
    }

    /// The newest activity: logs, handoffs, comments, reviews and issue changes, newest
    /// first, each with the machine its latest record came from.
    fn activity(&self, limit: usize) -> Result<Vec<ActivityView>> {
        let conn = self.store.conn();
        let records = self.log_tail(None, ACTIVITY_SCAN)?;
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for r in records.iter().rev() {
            if out.len() >= limit {
                break;
            }
            if !r.applied || !seen.insert(r.entity.clone()) {
                continue;
            }
            let row: Option<(String, String)> = match r.kind.as_str() {
                "log" => conn
                    .query_row(
                        "SELECT issue_id, type || ': ' || message FROM logs WHERE id = ?1",
                        [&r.entity],
                        |x| Ok((x.get(0)?, x.get(1)?)),
                    )
                    .optional()?,
                "handoff" => conn
                    .query_row(
                        "SELECT issue_id, 'handoff: ' || done FROM handoffs WHERE id = ?1",
                        [&r.entity],
                        |x| Ok((x.get(0)?, x.get(1)?)),
                    )
                    .optional()?,
                "comment" => conn
                    .query_row(
                        "SELECT issue_id, 'comment: ' || text FROM comments WHERE id = ?1",
                        [&r.entity],
                        |x| Ok((x.get(0)?, x.get(1)?)),
                    )
                    .optional()?,
                "review" => conn
                    .query_row(
                        "SELECT issue_id, 'review: ' || decision || CASE WHEN summary != '' THEN ' ' || summary ELSE '' END FROM issue_reviews WHERE id = ?1",
                        [&r.entity],
                        |x| Ok((x.get(0)?, x.get(1)?)),
                    )
                    .optional()?,
                "issue" => conn
                    .query_row(
                        "SELECT id, status || ' · ' || title FROM issues WHERE id = ?1",
                        [&r.entity],
                        |x| Ok((x.get(0)?, x.get(1)?)),
                    )
                    .optional()?,
                _ => None,
            };
            let Some((issue, text)) = row else { continue };
            out.push(ActivityView {
                at: r.received_at.clone(),
                issue,
                kind: r.kind.clone(),
                text,
                session: r.session.clone(),
                machine: r.machine.clone(),
                local: r.local,
            });
        }
        Ok(out)
    }

    /// Each peer (when it last completed a round with this replica, and when its newest
    /// record arrived), each hub this replica used (last push and pull, records not pushed
    /// yet), and how many records are held.
    pub fn sync_line(&self) -> Result<SyncLineView> {
        let conn = self.store.conn();
        let mut peers = Vec::new();
        for p in self.peers()? {
            let last_round: Option<String> = conn
                .query_row(
                    "SELECT at FROM crdt_peer_rounds WHERE public_key = ?1",
                    [&p.public_key],
                    |r| r.get(0),
                )
                .optional()?;
            let key = crate::identity::parse_public_key(&p.public_key).ok();
            peers.push(PeerLineView {
                name: p.name.clone(),
                machine: key
                    .map(|k| crate::identity::fingerprint_of(&k))
                    .unwrap_or_default(),
                last_round,
            });
        }
        // Machines that synced with this replica without being in its address book (a
        // laptop that added this one as its peer), by member name or fingerprint.
        let listed: HashSet<String> = self.peers()?.into_iter().map(|p| p.public_key).collect();
        let rounds: Vec<(String, String)> = conn
            .prepare("SELECT public_key, at FROM crdt_peer_rounds ORDER BY public_key")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<std::result::Result<_, _>>()?;
        let members = self.members()?;
        for (key, at) in rounds {
            if listed.contains(&key) {
                continue;
            }
            let member = members.iter().find(|m| m.public_key == key);
            let machine = crate::identity::parse_public_key(&key)
                .map(|k| crate::identity::fingerprint_of(&k))
                .unwrap_or_default();
            peers.push(PeerLineView {
                name: member
                    .map(|m| m.name.clone())
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| machine.clone()),
                machine,
                last_round: Some(at),
            });
        }
        let mut hubs = Vec::new();
        let names: Vec<String> = conn
            .prepare("SELECT hub FROM crdt_hub_state ORDER BY hub")?
            .query_map([], |r| r.get(0))?
            .collect::<std::result::Result<_, _>>()?;
        for hub in names {
            let st = self.store.hub_state(&hub)?;
            hubs.push(HubLineView {
                pending: self.store.pending_push(&hub)?,
                hub,
                last_push_at: st.last_push_at,
                last_pull_at: st.last_pull_at,
            });
        }
        let held = self.held()?.iter().map(|h| h.records).sum();
        Ok(SyncLineView { peers, hubs, held })
    }
}
