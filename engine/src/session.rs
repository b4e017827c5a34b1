//! Sessions: which agent context is acting. Local-only (td never syncs them). Ids are
//! machine-fingerprinted (`ses_<machine>_<rand>`) so two machines never mint the same one.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::identity::random_bytes;
use crate::model::now_timestamp;

/// What identifies the calling agent context, gathered by the CLI from its environment.
#[derive(Debug, Clone, Default)]
pub struct SessionContext {
    /// `TD_SESSION_ID`: a name (or full session id) that selects a stable session.
    pub explicit: Option<String>,
    /// `TD_CONTEXT_ID`: an agent's context window id.
    pub context_id: String,
    /// The current git branch, if any.
    pub branch: String,
    /// The project root the command runs in.
    pub root: String,
    /// The agent type, if known (`TD_AGENT`).
    pub agent_type: String,
}

/// A resolved session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// `ses_<machine>_<rand>`.
    pub id: String,
    /// Human label (the `TD_SESSION_ID` name, if one was given).
    pub name: String,
    /// Branch the session started on.
    pub branch: String,
    /// Whether this call created it.
    pub is_new: bool,
    /// When it started.
    pub started_at: String,
}

fn context_key(ctx: &SessionContext) -> String {
    let key = format!(
        "{}|{}|{}|{}",
        ctx.branch, ctx.context_id, ctx.agent_type, ctx.root
    );
    hex::encode(Sha256::digest(key.as_bytes()))[..16].to_string()
}

/// Finds the session for this context, creating it if needed. With `force_new`, ends the
/// current one and starts a fresh session (`td session --new`).
pub(crate) fn resolve(
    conn: &Connection,
    machine: &str,
    ctx: &SessionContext,
    force_new: bool,
) -> Result<Session> {
    if let Some(name) = &ctx.explicit {
        if let Some(other) = crate::identity::session_machine(name).filter(|m| *m != machine) {
            return Err(crate::error::invalid(format!(
                "TD_SESSION_ID {name} names machine {other}, but this is machine {machine}: a session id carries the machine that made it; name the session instead (TD_SESSION_ID=reviewer)"
            )));
        }
        let id = if name.starts_with("ses_") {
            if let Some(why) = crate::identity::unsafe_session(name) {
                // Every replica refuses such an id at ingest: refused here before anything
                // is written under it.
                return Err(crate::error::invalid(format!(
                    "TD_SESSION_ID refused: {why}"
                )));
            }
            name.clone()
        } else {
            format!(
                "ses_{machine}_{}",
                &hex::encode(Sha256::digest(name.as_bytes()))[..6]
            )
        };
        if let Some(s) = find(conn, "id = ?1", &id)? {
            return Ok(s);
        }
        return create(conn, &id, name, ctx, "", &format!("explicit:{name}"));
    }
    let key = context_key(ctx);
    let existing = find(conn, "match_context_id = ?1 AND ended_at IS NULL", &key)?;
    match existing {
        Some(s) if !force_new => Ok(s),
        prev => {
            let id = format!("ses_{machine}_{}", &hex::encode(random_bytes::<4>())[..6]);
            if let Some(p) = &prev {
                conn.execute(
                    "UPDATE sessions SET ended_at = ?1 WHERE id = ?2",
                    params![now_timestamp(), p.id],
                )?;
            }
            create(
                conn,
                &id,
                "",
                ctx,
                prev.as_ref().map(|p| p.id.as_str()).unwrap_or(""),
                &key,
            )
        }
    }
}

fn find(conn: &Connection, cond: &str, arg: &str) -> Result<Option<Session>> {
    Ok(conn
        .query_row(
            &format!("SELECT id, name, branch, started_at FROM sessions WHERE {cond} ORDER BY started_at DESC LIMIT 1"),
            [arg],
            |r| {
                Ok(Session {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    branch: r.get(2)?,
                    is_new: false,
                    started_at: r.get(3)?,
                })
            },
        )
        .optional()?)
}

fn create(
    conn: &Connection,
    id: &str,
    name: &str,
    ctx: &SessionContext,
    previous: &str,
    match_key: &str,
) -> Result<Session> {
    let now = now_timestamp();
    conn.execute(
        "INSERT OR IGNORE INTO sessions(id, name, branch, agent_type, context_id, match_context_id, \
         repo_root, previous_session_id, started_at, last_activity) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?9)",
        params![id, name, ctx.branch, ctx.agent_type, ctx.context_id, match_key, ctx.root, previous, now],
    )?;
    Ok(Session {
        id: id.to_string(),
        name: name.to_string(),
        branch: ctx.branch.clone(),
        is_new: true,
        started_at: now,
    })
}

/// Resolves the session in its own short write transaction (sessions are local rows).
pub(crate) fn resolve_tx(
    conn: &mut Connection,
    machine: &str,
    ctx: &SessionContext,
    force_new: bool,
) -> Result<Session> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let s = resolve(&tx, machine, ctx, force_new)?;
    tx.commit()?;
    Ok(s)
}

/// The issue this session is focused on (set by `td start`), if any.
pub(crate) fn focused_issue(conn: &Connection, session: &str) -> Result<Option<String>> {
    state_field(conn, session, "focused_issue_id")
}

/// The work session this session has active (`td ws start`), if any.
pub(crate) fn active_work_session(conn: &Connection, session: &str) -> Result<Option<String>> {
    state_field(conn, session, "active_work_session_id")
}

fn state_field(conn: &Connection, session: &str, col: &str) -> Result<Option<String>> {
    let v: Option<String> = conn
        .query_row(
            &format!("SELECT {col} FROM session_state WHERE session_id = ?1 AND worktree_id = ''"),
            [session],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    Ok(v.filter(|s| !s.is_empty()))
}

/// Sets (or clears, with `""`) a session-state field: `focused_issue_id` or
/// `active_work_session_id`.
pub(crate) fn set_state(conn: &Connection, session: &str, col: &str, value: &str) -> Result<()> {
    debug_assert!(col == "focused_issue_id" || col == "active_work_session_id");
    conn.execute(
        &format!(
            "INSERT INTO session_state(session_id, worktree_id, {col}, updated_at) VALUES (?1, '', ?2, ?3) \
             ON CONFLICT(session_id, worktree_id) DO UPDATE SET {col} = excluded.{col}, updated_at = excluded.updated_at"
        ),
        params![session, value, now_timestamp()],
    )?;
    Ok(())
}

/// Records activity on the session (local bookkeeping).
pub(crate) fn touch(conn: &Connection, session: &str) -> Result<()> {
    conn.execute(
        "UPDATE sessions SET last_activity = ?1 WHERE id = ?2",
        params![now_timestamp(), session],
    )?;
    Ok(())
}

/// Every session on this machine, most recently active first: (id, name, branch, agent type,
/// last activity).
pub(crate) fn list(conn: &Connection) -> Result<Vec<[String; 5]>> {
    let mut stmt = conn.prepare(
        "SELECT id, coalesce(name, ''), coalesce(branch, ''), coalesce(agent_type, ''), \
         coalesce(last_activity, started_at, '') FROM sessions \
         ORDER BY coalesce(last_activity, started_at) DESC, id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?])
    })?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// Names a session (`td session <name>`).
pub(crate) fn set_name(conn: &Connection, session: &str, name: &str) -> Result<()> {
    conn.execute(
        "UPDATE sessions SET name = ?1 WHERE id = ?2",
        params![name, session],
    )?;
    Ok(())
}

/// Sessions other than `keep` whose last activity is older than `cutoff` (a td timestamp);
/// deleted (with their local state) when `delete`.
pub(crate) fn stale(
    conn: &Connection,
    keep: &str,
    cutoff: &str,
    delete: bool,
) -> Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT id FROM sessions WHERE id != ?1 AND coalesce(last_activity, started_at) < ?2 ORDER BY id",
    )?;
    let ids: Vec<String> = stmt
        .query_map(params![keep, cutoff], |r| r.get(0))?
        .collect::<std::result::Result<_, _>>()?;
    if delete {
        for id in &ids {
            conn.execute("DELETE FROM session_state WHERE session_id = ?1", [id])?;
            conn.execute("DELETE FROM sessions WHERE id = ?1", [id])?;
        }
    }
    Ok(ids)
}
