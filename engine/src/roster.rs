//! The member roster (which machines' changes a replica accepts) and the local address book
//! of peers. The roster is resolved from the roster operations in the log (`authority.rs`)
//! and stored in `crdt_members`/`crdt_removed`; which records are accepted follows from it.
//! The address book is local and never synced.

use std::collections::{BTreeMap, HashMap};

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};

use crate::authority::{self, Op, OpRecord, Role, Roster, Standing};

use crate::error::Result;
use crate::identity::fingerprint_of;
use crate::record::RecordBody;
use crate::views::{InviteView, MemberView};

pub use crate::model::ROSTER_ID;

pub use crate::identity::parse_public_key;

/// Every roster record in the log with its operation (whatever its author), and its change.
fn load_all(conn: &Connection) -> Result<Vec<(OpRecord, automerge::Change)>> {
    let mut stmt = conn
        .prepare_cached(
            // Through the list of roster records (`crdt_roster_ops`): the log has no index on
            // `doc_id`, and a scan of it grew every roster refresh with the log.
            "SELECT c.body, c.seq FROM crdt_roster_ops r JOIN crdt_changes c ON c.id = r.id ORDER BY r.id",
        )?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (body, seq) = row?;
        let Ok(rec) = postcard::from_bytes::<RecordBody>(&body) else {
            continue;
        };
        let Ok(change) = automerge::Change::from_bytes(rec.change) else {
            continue;
        };
        out.push((
            op_record(rec.author, &rec.actor, seq as u64, &change),
            change,
        ));
    }
    Ok(out)
}

/// A roster record's operation, with what the resolver needs of it.
fn op_record(author: [u8; 32], actor: &[u8], seq: u64, change: &automerge::Change) -> OpRecord {
    let op = match change.message() {
        None => Err("a roster change without an operation".to_string()),
        Some(m) if m.len() > authority::MAX_OP_BYTES => Err(format!(
            "operation larger than {} bytes",
            authority::MAX_OP_BYTES
        )),
        Some(m) => serde_json::from_str::<Op>(m).map_err(|e| format!("unreadable operation: {e}")),
    };
    let mut deps: Vec<[u8; 32]> = change.deps().iter().map(|d| d.0).collect();
    if let Ok(Op::Join { on, .. }) = &op {
        deps.extend(
            on.iter()
                .filter_map(|h| hex::decode(h).ok())
                .filter_map(|h| <[u8; 32]>::try_from(h).ok()),
        );
    }
    OpRecord {
        hash: change.hash().0,
        deps,
        author,
        actor: actor.to_vec(),
        seq,
        time: change.timestamp(),
        op,
    }
}

/// Which machines' roster records count ([`authority::admitted_authors`]), kept current while
/// a batch stores roster records: the per-machine bound on strangers' roster records applies
/// only to machines nobody with authority named, counting the operations stored before them
/// in the same batch (a fresh replica's first pull brings the founder's and its admins' records
/// before any of them is a member there).
pub(crate) struct Admission {
    ops: Vec<OpRecord>,
    admitted: Option<std::collections::BTreeSet<String>>,
    founder: Box<dyn Fn(&str) -> bool>,
}

impl Admission {
    /// The roster operations in the log.
    pub(crate) fn load(conn: &Connection) -> Result<Admission> {
        let founder = founder_check(conn)?;
        Ok(Admission {
            ops: load_all(conn)?.into_iter().map(|(o, _)| o).collect(),
            admitted: None,
            founder: Box::new(founder),
        })
    }

    /// A roster record just stored. The admitted set is worked out again only when the record
    /// could change it: a join, or an operation by a machine already admitted (a stranger's
    /// other operations count only once something admits it, and that is such a record), so a
    /// flood of strangers' records costs one resolution, not one per record.
    pub(crate) fn push(
        &mut self,
        author: [u8; 32],
        actor: &[u8],
        seq: u64,
        change: &automerge::Change,
    ) {
        let op = op_record(author, actor, seq, change);
        let may_admit = match (&self.admitted, &op.op) {
            (None, _) => true,
            // A join counts only through an invite an admitted machine made.
            (Some(_), Ok(Op::Join { invite, .. })) => self.ops.iter().any(|o| {
                matches!(&o.op, Ok(Op::Invite { id, .. }) if id == invite)
                    && self
                        .admitted
                        .as_ref()
                        .is_some_and(|a| a.contains(&hex::encode(o.author)))
            }),
            (Some(a), _) => a.contains(&hex::encode(author)),
        };
        self.ops.push(op);
        if may_admit {
            self.admitted = None;
        }
    }

    /// Whether `author` (hex) is admitted by the operations held so far.
    pub(crate) fn admits(&mut self, author: &str) -> bool {
        let ops = &self.ops;
        let founder = &self.founder;
        self.admitted
            .get_or_insert_with(|| authority::admitted_authors(ops, founder.as_ref()))
            .contains(author)
    }
}

/// The order a batch's runs are stored in: roster runs first, those of machines admitted in
/// fewer steps before the others and, per machine, the run carrying its join first; then every
/// other run in the order it came. Judged from the log and the batch's roster operations as
/// they read (not verified yet: this decides only the order, so the operations that admit a
/// machine are stored before its own and the bound on strangers never catches it; authority
/// is decided from stored, verified records only).
pub(crate) fn batch_order(conn: &Connection, runs: &[crate::sync::WireRun]) -> Result<Vec<usize>> {
    let is_roster_run = |r: &crate::sync::WireRun| {
        !r.changes.is_empty() && r.changes.iter().all(|(d, _)| d == ROSTER_ID)
    };
    if !runs.iter().any(is_roster_run) {
        return Ok((0..runs.len()).collect());
    }
    let mut ops: Vec<OpRecord> = load_all(conn)?.into_iter().map(|(o, _)| o).collect();
    let mut has_join = vec![false; runs.len()];
    for (i, r) in runs.iter().enumerate().filter(|(_, r)| is_roster_run(r)) {
        for (n, (_, bytes)) in r.changes.iter().enumerate() {
            let Ok(change) = automerge::Change::from_bytes(bytes.clone()) else {
                continue;
            };
            let op = op_record(r.author, &r.actor, r.first_seq + n as u64, &change);
            has_join[i] |= matches!(op.op, Ok(Op::Join { .. }));
            ops.push(op);
        }
    }
    let depth = authority::admission_depths(&ops, &founder_check(conn)?);
    // A roster run moves ahead only when every earlier run of its writer is a roster run too
    // that moves: a writer's chain is stored in its order, never with a gap.
    let mut movable = vec![false; runs.len()];
    let mut blocked: std::collections::HashSet<[u8; 16]> = std::collections::HashSet::new();
    let mut first: HashMap<[u8; 16], usize> = HashMap::new();
    let mut joins: std::collections::HashSet<[u8; 16]> = std::collections::HashSet::new();
    for (i, r) in runs.iter().enumerate() {
        if is_roster_run(r) && !blocked.contains(&r.actor) {
            movable[i] = true;
            first.entry(r.actor).or_insert(i);
            if has_join[i] {
                joins.insert(r.actor);
            }
        } else {
            blocked.insert(r.actor);
        }
    }
    let mut order: Vec<usize> = (0..runs.len()).filter(|&i| movable[i]).collect();
    order.sort_by_key(|&i| {
        let r = &runs[i];
        (
            depth
                .get(&hex::encode(r.author))
                .copied()
                .unwrap_or(usize::MAX),
            !joins.contains(&r.actor),
            first[&r.actor],
            i,
        )
    });
    order.extend((0..runs.len()).filter(|&i| !movable[i]));
    Ok(order)
}

/// Whether a key (hex) is the founder this replica's project id names.
fn founder_check(conn: &Connection) -> Result<impl Fn(&str) -> bool> {
    let project = crate::store::meta(conn, "project_id")?.unwrap_or_default();
    Ok(move |k: &str| {
        parse_public_key(k).is_ok_and(|key| crate::store::is_founder_of(&project, &key))
    })
}

/// The roster operations that count: those of machines someone with authority named
/// ([`authority::admitted_ops`]); strangers' operations are stored but never read.
pub(crate) fn load_ops(conn: &Connection) -> Result<Vec<OpRecord>> {
    let all: Vec<OpRecord> = load_all(conn)?.into_iter().map(|(o, _)| o).collect();
    Ok(authority::admitted_ops(&all, &founder_check(conn)?).0)
}

/// The changes the roster document is made of: every admitted machine's roster records, this
/// machine's own (`local`: what it wrote before its admission arrived, such as its first
/// epoch, so its join and later operations are made on them), and the records they were made
/// on (a log from before strangers were kept out). The document is what this replica's next
/// roster operation is made on, so it never builds on a stranger's record: one a replica may
/// have refused (docs/membership.md, "Bounds").
pub(crate) fn admitted_roster_changes(
    conn: &Connection,
    local: &[u8; 32],
) -> Result<Vec<automerge::Change>> {
    let all = load_all(conn)?;
    let ops: Vec<OpRecord> = all.iter().map(|(o, _)| o.clone()).collect();
    let mut admitted = authority::admitted_authors(&ops, &founder_check(conn)?);
    admitted.insert(hex::encode(local));
    let by_hash: std::collections::HashMap<[u8; 32], usize> = all
        .iter()
        .enumerate()
        .map(|(i, (o, _))| (o.hash, i))
        .collect();
    let mut wanted = vec![false; all.len()];
    let mut stack: Vec<usize> = (0..all.len())
        .filter(|&i| admitted.contains(&hex::encode(all[i].0.author)))
        .collect();
    while let Some(i) = stack.pop() {
        if std::mem::replace(&mut wanted[i], true) {
            continue;
        }
        for d in all[i].1.deps() {
            if let Some(&j) = by_hash.get(&d.0) {
                if !wanted[j] {
                    stack.push(j);
                }
            }
        }
    }
    Ok(all
        .into_iter()
        .zip(wanted)
        .filter(|(_, w)| *w)
        .map(|((_, c), _)| c)
        .collect())
}

/// How many roster records (and bytes of them) the log holds by `author`.
pub(crate) fn roster_records_of(conn: &Connection, author: &[u8; 32]) -> Result<(u64, u64)> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*), coalesce(sum(length(c.body)), 0) FROM crdt_roster_ops r JOIN crdt_changes c ON c.id = r.id WHERE c.author = ?1",
        )?
        .query_row([&author[..]], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
        })?)
}

/// How many roster records (and bytes of them) the log holds by machines `admission` does not
/// admit, all together (the bound [`authority::MAX_UNADMITTED_ROSTER_TOTAL`]).
pub(crate) fn unadmitted_roster_total(
    conn: &Connection,
    admission: &mut Admission,
) -> Result<(u64, u64)> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.author, count(*), coalesce(sum(length(c.body)), 0) FROM crdt_roster_ops r JOIN crdt_changes c ON c.id = r.id GROUP BY c.author",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, Vec<u8>>(0)?,
            r.get::<_, i64>(1)? as u64,
            r.get::<_, i64>(2)? as u64,
        ))
    })?;
    let mut total = (0u64, 0u64);
    for row in rows {
        let (author, n, bytes) = row?;
        if !admission.admits(&hex::encode(author)) {
            total = (total.0 + n, total.1 + bytes);
        }
    }
    Ok(total)
}

/// Why a run must be refused by the side that admits its author ([`Store::admit_joins_by_own_clock`]):
/// it carries a join through an invite this replica knows, that expired before `now` (this
/// machine's clock). `roster` caches the resolved roster across a batch's runs.
///
/// [`Store::admit_joins_by_own_clock`]: crate::store::Store::admit_joins_by_own_clock
pub(crate) fn late_join(
    conn: &Connection,
    run: &crate::sync::WireRun,
    now: i64,
    roster: &mut Option<Roster>,
) -> Result<Option<String>> {
    for (doc, bytes) in &run.changes {
        if doc != ROSTER_ID {
            continue;
        }
        let Ok(change) = automerge::Change::from_bytes(bytes.clone()) else {
            continue;
        };
        let Some(Ok(Op::Join { invite, .. })) = change
            .message()
            .filter(|m| m.len() <= authority::MAX_OP_BYTES)
            .map(serde_json::from_str::<Op>)
        else {
            continue;
        };
        let r = match roster {
            Some(r) => r,
            None => roster.insert(resolve(conn)?),
        };
        if let Some(inv) = r.invites.get(&invite).filter(|i| i.expires < now) {
            return Ok(Some(format!(
                "its join uses invite {}, which expired at {} by the clock of the machine admitting it",
                &invite[..invite.len().min(12)],
                rfc3339(inv.expires)
            )));
        }
    }
    Ok(None)
}

/// Members whose join reached this replica only after their invite had expired by this
/// machine's clock, although it held the invite before then (joins through the hub, where no
/// admitting machine is online to refuse them: see [`late_join`] for the peer path). A join is
/// valid by the time its author's change claims, so every replica admits it the same way; this
/// replica's own clock can only say the claim is doubtful, and an admin decides
/// (`td member remove`). Key (hex) → why, shown by `td member list` and `td doctor`.
pub fn late_joins(conn: &Connection) -> Result<BTreeMap<String, String>> {
    let roster = resolve(conn)?;
    let used: BTreeMap<&str, (&str, i64)> = roster
        .invites
        .iter()
        .filter_map(|(id, i)| {
            let key = i.used_by.as_deref()?;
            roster
                .members
                .contains_key(key)
                .then_some((id.as_str(), (key, i.expires)))
        })
        .collect();
    let mut out = BTreeMap::new();
    if used.is_empty() {
        return Ok(out);
    }
    // When this replica received each invite and each join (its own clock), from the log.
    let mut invite_at: BTreeMap<String, i64> = BTreeMap::new();
    let mut join_at: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    let mut stmt = conn.prepare_cached(
        "SELECT c.body, c.seq, c.received_at FROM crdt_roster_ops r JOIN crdt_changes c ON c.id = r.id ORDER BY r.id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, Vec<u8>>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    for row in rows {
        let (body, seq, received) = row?;
        let Some(received) = crate::model::parse_timestamp(&received).map(|t| t.timestamp()) else {
            continue;
        };
        let Ok(rec) = postcard::from_bytes::<RecordBody>(&body) else {
            continue;
        };
        let Ok(change) = automerge::Change::from_bytes(rec.change) else {
            continue;
        };
        let o = op_record(rec.author, &rec.actor, seq as u64, &change);
        match &o.op {
            Ok(Op::Invite { id, .. }) => {
                invite_at.entry(id.clone()).or_insert(received);
            }
            Ok(Op::Join { invite, key, .. }) if *key == hex::encode(o.author) => {
                join_at
                    .entry((invite.clone(), key.clone()))
                    .or_insert((received, o.time));
            }
            _ => {}
        }
    }
    for (invite, (key, expires)) in used {
        let (Some(invite_at), Some((join_at, claimed))) = (
            invite_at.get(invite).copied(),
            join_at.get(&(invite.to_string(), key.to_string())).copied(),
        ) else {
            continue;
        };
        if invite_at <= expires && join_at > expires {
            let fp = parse_public_key(key)
                .map(|k| fingerprint_of(&k))
                .unwrap_or_default();
            out.insert(
                key.to_string(),
                format!(
                    "joined through invite {}, which expired at {}; its join reached this machine at {} (it claims {}): if machine {fp} should not be here, 'td member remove {fp}'",
                    &invite[..invite.len().min(12)],
                    rfc3339(expires),
                    rfc3339(join_at),
                    rfc3339(claimed)
                ),
            );
        }
    }
    Ok(out)
}

/// Resolves the roster from the log (pure given the log; see `authority.rs`).
pub fn resolve(conn: &Connection) -> Result<Roster> {
    let all: Vec<OpRecord> = load_all(conn)?.into_iter().map(|(o, _)| o).collect();
    Ok(authority::resolve(&all, &founder_check(conn)?))
}

/// The roster as last resolved and stored (cheap: no resolution).
pub fn stored(conn: &Connection) -> Result<Roster> {
    let mut roster = Roster::default();
    let mut stmt =
        conn.prepare_cached("SELECT id, role, name, added_by, added_at FROM crdt_members")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
        ))
    })?;
    for row in rows {
        let (key, role, name, added_by, added_at) = row?;
        roster.members.insert(
            key,
            authority::Member {
                role: Role::parse(&role).unwrap_or(Role::Member),
                name,
                added_by,
                added_at: added_at.parse().unwrap_or(0),
            },
        );
    }
    let mut stmt = conn.prepare_cached("SELECT id, removed_by, cutoff FROM crdt_removed")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    for row in rows {
        let (key, removed_by, cutoff) = row?;
        roster.removed.insert(
            key,
            authority::Removed {
                removed_by,
                cutoff: serde_json::from_str(&cutoff).unwrap_or_default(),
            },
        );
    }
    Ok(roster)
}

/// Resolves the roster again and stores it; returns the keys whose standing changed.
pub(crate) fn refresh(conn: &Connection) -> Result<Vec<String>> {
    let before = stored(conn)?;
    let after = resolve(conn)?;
    let mut keys: std::collections::BTreeSet<&String> = before.members.keys().collect();
    keys.extend(before.removed.keys());
    keys.extend(after.members.keys());
    keys.extend(after.removed.keys());
    let changed: Vec<String> = keys
        .into_iter()
        .filter(|k| before.standing(k) != after.standing(k))
        .cloned()
        .collect();
    if before.members == after.members && before.removed == after.removed {
        return Ok(changed);
    }
    conn.execute("DELETE FROM crdt_members", [])?;
    conn.execute("DELETE FROM crdt_removed", [])?;
    conn.execute("DELETE FROM crdt_roster", [])?;
    if !after.members.is_empty() {
        conn.execute("INSERT INTO crdt_roster(id) VALUES (?1)", [ROSTER_ID])?;
    }
    for (key, m) in &after.members {
        conn.execute(
            "INSERT INTO crdt_members(id, roster_id, name, added_at, added_by, role) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![key, ROSTER_ID, m.name, m.added_at.to_string(), m.added_by, m.role.as_str()],
        )?;
    }
    for (key, r) in &after.removed {
        conn.execute(
            "INSERT INTO crdt_removed(id, removed_by, cutoff) VALUES (?1, ?2, ?3)",
            params![
                key,
                r.removed_by,
                serde_json::to_string(&r.cutoff).unwrap_or_default()
            ],
        )?;
    }
    Ok(changed)
}

/// What re-deciding which records are accepted found to do.
#[derive(Debug, Default)]
pub(crate) struct Reauthorized {
    /// Documents with records that are accepted now and wait to be applied.
    pub docs: std::collections::BTreeSet<String>,
    /// Records that had been materialized are refused now: the tables must be rebuilt.
    pub rebuild: bool,
}

/// Where `key` stands for accepting its records on this replica. This machine's own records
/// are always accepted here (a replica shows its own work; others decide for themselves).
pub(crate) fn standing_of(conn: &Connection, key: &[u8; 32], local: &[u8; 32]) -> Result<Standing> {
    if key == local {
        return Ok(Standing::Member(Role::Member));
    }
    let hexkey = hex::encode(key);
    if let Some(role) = conn
        .prepare_cached("SELECT role FROM crdt_members WHERE id = ?1")?
        .query_row([&hexkey], |r| r.get::<_, String>(0))
        .optional()?
    {
        return Ok(Standing::Member(Role::parse(&role).unwrap_or(Role::Member)));
    }
    Ok(conn
        .prepare_cached("SELECT cutoff FROM crdt_removed WHERE id = ?1")?
        .query_row([&hexkey], |r| r.get::<_, String>(0))
        .optional()?
        .map_or(Standing::Unknown, |c| {
            Standing::Removed(serde_json::from_str(&c).unwrap_or_default())
        }))
}

/// Marks each record of `keys` (all authors when `None`) accepted or held according to where
/// its author stands now. Roster records are never held: the resolver judges them.
pub(crate) fn reauthorize(
    conn: &Connection,
    keys: Option<&[String]>,
    local: &[u8; 32],
) -> Result<Reauthorized> {
    let mut out = Reauthorized::default();
    let actors: Vec<(Vec<u8>, Vec<u8>)> = conn
        .prepare_cached("SELECT actor, author FROM crdt_actors")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<std::result::Result<_, _>>()?;
    for (actor, author) in actors {
        let Ok(author) = <[u8; 32]>::try_from(author.as_slice()) else {
            continue;
        };
        if keys.is_some_and(|k| !k.contains(&hex::encode(author))) {
            continue;
        }
        let (admit_through, hold_after) = match standing_of(conn, &author, local)? {
            Standing::Member(_) => (i64::MAX, i64::MAX),
            Standing::Unknown => (0, 0),
            Standing::Removed(cut) => {
                let c = cut.get(&hex::encode(&actor)).copied().unwrap_or(0) as i64;
                (c, c)
            }
        };
        let held = conn
            .prepare_cached(
                "UPDATE crdt_changes SET applied = 2 WHERE actor = ?1 AND seq > ?2 AND applied IN (0, 1, 3) AND doc_id != 'roster'",
            )?
            .execute(params![actor, hold_after])?;
        out.rebuild |= held > 0;
        let mut stmt = conn.prepare_cached(
            "UPDATE crdt_changes SET applied = 0 WHERE actor = ?1 AND seq <= ?2 AND applied = 2 RETURNING doc_id",
        )?;
        let docs = stmt.query_map(params![actor, admit_through], |r| r.get::<_, String>(0))?;
        for d in docs {
            out.docs.insert(d?);
        }
    }
    Ok(out)
}

/// Unix seconds as RFC 3339 (UTC).
pub fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339())
        .unwrap_or_default()
}

/// Invites not used, revoked or expired yet, as JSON rows (`"invite"` holds the id).
pub fn pending_invites(conn: &Connection) -> Result<Vec<InviteView>> {
    let now = chrono::Utc::now().timestamp();
    Ok(resolve(conn)?
        .invites
        .into_iter()
        .filter(|(_, i)| i.used_by.is_none() && !i.revoked && i.expires >= now)
        .map(|(id, i)| {
            let by = parse_public_key(&i.by)
                .map(|k| fingerprint_of(&k))
                .unwrap_or_default();
            InviteView {
                invite: id,
                role: i.role.as_str().to_string(),
                name: i.name,
                by,
                expires_at: rfc3339(i.expires),
                pending: true,
            }
        })
        .collect())
}

/// Whether some invite is open (made by an admin, not used, revoked or expired): a peer
/// server then lets an unknown machine send its join. Resolves the roster (small; the server
/// admits at most a few strangers at a time, `transport::peer::MAX_UNAUTHENTICATED`).
pub fn has_open_invite(conn: &Connection) -> Result<bool> {
    Ok(!pending_invites(conn)?.is_empty())
}

/// Records held because their author is not accepted here, per machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldBy {
    /// The author's public key (hex).
    pub public_key: String,
    /// Its machine fingerprint.
    pub machine: String,
    /// How many of its records are held.
    pub records: u64,
    /// Why, and what would admit them.
    pub reason: String,
}

/// Every machine with held records (stored, not applied: the roster does not accept them,
/// or they are sealed under an epoch whose key has not reached this machine).
pub fn held(conn: &Connection) -> Result<Vec<HeldBy>> {
    let mut stmt = conn.prepare(
        "SELECT author, count(*) FROM crdt_changes WHERE applied IN (2, 5) GROUP BY author ORDER BY author",
    )?;
    let rows: Vec<(Vec<u8>, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<std::result::Result<_, _>>()?;
    let mut out = Vec::new();
    for (author, n) in rows {
        let Ok(key) = <[u8; 32]>::try_from(author.as_slice()) else {
            continue;
        };
        let hexkey = hex::encode(key);
        let removed = conn
            .prepare_cached("SELECT 1 FROM crdt_removed WHERE id = ?1")?
            .exists([&hexkey])?;
        let member = conn
            .prepare_cached("SELECT 1 FROM crdt_members WHERE id = ?1")?
            .exists([&hexkey])?;
        let reason = if removed {
            "written after the cut-off of its removal".to_string()
        } else if member {
            "sealed under an epoch whose key has not reached this machine yet; a member seals it on its next sync (docs/encryption.md)".to_string()
        } else {
            format!("not a member yet; held until an admin runs 'td member add {hexkey}'")
        };
        out.push(HeldBy {
            machine: fingerprint_of(&key),
            public_key: hexkey,
            records: n as u64,
            reason,
        });
    }
    Ok(out)
}

/// How a machine is shown: its roster name with its fingerprint (`laptop-b (3a99c94433)`), or
/// the fingerprint alone when the roster gives it no name (or does not hold it). Names are
/// text from the log: a front end escapes them.
pub fn machine_label(conn: &Connection, key: &[u8; 32]) -> Result<String> {
    let name: Option<String> = conn
        .prepare_cached("SELECT name FROM crdt_members WHERE id = ?1")?
        .query_row([hex::encode(key)], |r| r.get(0))
        .optional()?;
    let fp = fingerprint_of(key);
    Ok(match name.filter(|n| !n.trim().is_empty()) {
        Some(n) => format!("{n} ({fp})"),
        None => fp,
    })
}

/// Whether this replica holds a roster yet.
pub fn has_roster(conn: &Connection) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM crdt_roster")?
        .exists([])?)
}

/// Whether a peer presenting `key` may sync with this replica: a member of the roster, or,
/// before this replica holds a roster at all (a fresh replica joining), a peer the user pinned
/// with `td peer add` or named with `--key` for this sync (`pinned`).
pub fn is_trusted(conn: &Connection, key: &[u8; 32], pinned: Option<&[u8; 32]>) -> Result<bool> {
    let hexkey = hex::encode(key);
    if conn
        .prepare_cached("SELECT 1 FROM crdt_members WHERE id = ?1")?
        .exists([&hexkey])?
    {
        return Ok(true);
    }
    if has_roster(conn)? {
        return Ok(false);
    }
    let pinned_here = pinned == Some(key);
    Ok(pinned_here
        || conn
            .prepare_cached("SELECT 1 FROM crdt_peers WHERE public_key = ?1")?
            .exists([&hexkey])?)
}

/// The roster as JSON rows: public key, machine fingerprint, name, role, when and by whom
/// added; then removed machines (`"removed": true`) with who removed them.
pub fn members(conn: &Connection) -> Result<Vec<MemberView>> {
    let roster = stored(conn)?;
    let late = late_joins(conn)?;
    let machine = |k: &str| {
        parse_public_key(k)
            .map(|k| fingerprint_of(&k))
            .unwrap_or_default()
    };
    let mut rows: Vec<(i64, MemberView)> = roster
        .members
        .iter()
        .map(|(k, m)| {
            let added_at = chrono::DateTime::from_timestamp(m.added_at, 0)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default();
            (
                m.added_at,
                MemberView {
                    public_key: k.clone(),
                    machine: machine(k),
                    name: m.name.clone(),
                    role: m.role.as_str().to_string(),
                    added_at: Some(added_at),
                    added_by: Some(machine(&m.added_by)),
                    removed: false,
                    removed_by: None,
                    late_join: late.get(k).cloned(),
                },
            )
        })
        .collect();
    rows.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| a.1.public_key.cmp(&b.1.public_key))
    });
    let mut out: Vec<MemberView> = rows.into_iter().map(|(_, v)| v).collect();
    for (k, r) in &roster.removed {
        out.push(MemberView {
            public_key: k.clone(),
            machine: machine(k),
            name: String::new(),
            role: String::new(),
            added_at: None,
            added_by: None,
            removed: true,
            removed_by: Some(machine(&r.removed_by)),
            late_join: None,
        });
    }
    Ok(out)
}

/// One address-book entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Local name.
    pub name: String,
    /// `host:port`.
    pub addr: String,
    /// The peer machine's public key (hex).
    pub public_key: String,
}

impl Peer {
    /// As JSON.
    pub fn to_json(&self) -> Value {
        let machine = parse_public_key(&self.public_key)
            .map(|k| fingerprint_of(&k))
            .unwrap_or_default();
        json!({"name": self.name, "addr": self.addr, "public_key": self.public_key, "machine": machine})
    }
}

/// The address book, by name.
pub fn peers(conn: &Connection) -> Result<Vec<Peer>> {
    let mut stmt = conn.prepare("SELECT name, addr, public_key FROM crdt_peers ORDER BY name")?;
    let rows = stmt.query_map([], |r| {
        Ok(Peer {
            name: r.get(0)?,
            addr: r.get(1)?,
            public_key: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// One address-book entry by name.
pub fn peer(conn: &Connection, name: &str) -> Result<Option<Peer>> {
    Ok(conn
        .query_row(
            "SELECT name, addr, public_key FROM crdt_peers WHERE name = ?1",
            [name],
            |r| {
                Ok(Peer {
                    name: r.get(0)?,
                    addr: r.get(1)?,
                    public_key: r.get(2)?,
                })
            },
        )
        .optional()?)
}
