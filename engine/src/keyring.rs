//! Content keys by epoch (issue 12; `docs/encryption.md`): the key operations in the roster
//! document (`epoch`, `seal`) resolved the same way on every replica, the epoch keys this
//! machine can open, and which epoch a writer seals with. A member's encryption key is its
//! admitted signing key in Montgomery form (`sealing::encryption_key_of`), so nothing needs
//! publishing.
//!
//! A key operation counts when its author's records count (the resolved roster's standing
//! admits its actor and sequence number). The epochs' heads are the epochs no other epoch
//! was made on; writers use the single head's key, or, when several epochs were made apart,
//! a key merged from all heads (`sealing::merge`), which only a machine holding every head's
//! key can derive.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rusqlite::{params, Connection, OptionalExtension};

use crate::authority::{self, Op, OpRecord, Roster};
use crate::error::{EngineError, Result};
use crate::identity::MachineIdentity;
use crate::sealing::{self, EpochId, EpochKey};

/// One epoch as resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Epoch {
    /// Its id.
    pub id: EpochId,
    /// Who made it (public key hex).
    pub author: String,
    /// The machines it excludes (removed when it was made).
    pub removed: BTreeSet<String>,
    /// Member public key hex → sealed copies of its key.
    pub seals: BTreeMap<String, Vec<Vec<u8>>>,
    /// Member public key hex → who sealed each copy (public key hex), in `seals`' order.
    pub sealers: BTreeMap<String, Vec<String>>,
    /// The commitment to its key (`sealing::key_commitment`), for epochs that publish one.
    pub commit: Option<[u8; 32]>,
    /// No other epoch was made on it.
    pub head: bool,
}

/// The resolved key operations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keyring {
    /// Epochs in the roster's topological order.
    pub epochs: Vec<Epoch>,
}

/// Every operation `of` was made on (its dependencies and theirs).
fn ancestors(deps: &HashMap<[u8; 32], &Vec<[u8; 32]>>, of: [u8; 32]) -> BTreeSet<[u8; 32]> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<[u8; 32]> = deps.get(&of).map(|d| d.to_vec()).unwrap_or_default();
    while let Some(h) = stack.pop() {
        if seen.insert(h) {
            if let Some(d) = deps.get(&h) {
                stack.extend(d.iter().copied());
            }
        }
    }
    seen
}

fn hex32(s: &str) -> Option<[u8; 32]> {
    hex::decode(s).ok()?.try_into().ok()
}

/// Resolves the key operations among `ops` against the resolved `roster` (pure).
pub fn resolve(ops: &[OpRecord], roster: &Roster) -> Keyring {
    let (order, _) = authority::topological(ops);
    let deps: HashMap<[u8; 32], &Vec<[u8; 32]>> = order.iter().map(|o| (o.hash, &o.deps)).collect();
    let mut k = Keyring::default();
    let mut epoch_hash: Vec<[u8; 32]> = Vec::new();
    let mut index: HashMap<EpochId, usize> = HashMap::new();
    // Per epoch and member, the operation each sealed copy came in (for refusals).
    let mut sources: HashMap<EpochId, BTreeMap<String, Vec<[u8; 32]>>> = HashMap::new();
    for o in &order {
        let Ok(op) = &o.op else { continue };
        if !op.is_key_op() {
            continue;
        }
        let author = hex::encode(o.author);
        let counts = roster.standing(&author).admits(&o.actor, o.seq);
        match op {
            Op::Epoch {
                id,
                removed,
                seals,
                commit,
            } => {
                let Some(id) = hex32(id).filter(|_| counts) else {
                    continue;
                };
                if index.contains_key(&id) {
                    continue;
                }
                let seals: BTreeMap<String, Vec<Vec<u8>>> = seals
                    .iter()
                    .filter_map(|(m, s)| Some((m.clone(), vec![hex::decode(s).ok()?])))
                    .collect();
                let sealers = seals
                    .keys()
                    .map(|m| (m.clone(), vec![author.clone()]))
                    .collect();
                sources.insert(
                    id,
                    seals.keys().map(|m| (m.clone(), vec![o.hash])).collect(),
                );
                index.insert(id, k.epochs.len());
                epoch_hash.push(o.hash);
                k.epochs.push(Epoch {
                    id,
                    author,
                    removed: removed.iter().cloned().collect(),
                    seals,
                    sealers,
                    commit: hex32(commit),
                    head: true,
                });
            }
            Op::Seal { epoch, to, sealed } => {
                let (Some(id), Ok(sealed)) = (hex32(epoch), hex::decode(sealed)) else {
                    continue;
                };
                if let (true, Some(&i)) = (counts, index.get(&id)) {
                    let e = &mut k.epochs[i];
                    e.seals.entry(to.clone()).or_default().push(sealed);
                    e.sealers.entry(to.clone()).or_default().push(author);
                    sources
                        .entry(id)
                        .or_default()
                        .entry(to.clone())
                        .or_default()
                        .push(o.hash);
                }
            }
            Op::RefuseSeal { epoch } => {
                // The refuser's copies this refusal was made on are dropped; copies sealed
                // later (by a member holding the right key) stand.
                let (true, Some(id)) = (counts, hex32(epoch)) else {
                    continue;
                };
                let Some(&i) = index.get(&id) else { continue };
                let before = ancestors(&deps, o.hash);
                let from = sources
                    .entry(id)
                    .or_default()
                    .entry(author.clone())
                    .or_default();
                let e = &mut k.epochs[i];
                let (copies, sealers) = (
                    e.seals.entry(author.clone()).or_default(),
                    e.sealers.entry(author.clone()).or_default(),
                );
                let mut n = 0;
                while n < from.len() {
                    if before.contains(&from[n]) {
                        from.remove(n);
                        if n < copies.len() {
                            copies.remove(n);
                        }
                        if n < sealers.len() {
                            sealers.remove(n);
                        }
                    } else {
                        n += 1;
                    }
                }
                if copies.is_empty() {
                    e.seals.remove(&author);
                    e.sealers.remove(&author);
                }
            }
            _ => {}
        }
    }
    // An epoch made on another (the other is among its ancestors) supersedes it.
    let positions: HashMap<[u8; 32], usize> = epoch_hash
        .iter()
        .enumerate()
        .map(|(i, h)| (*h, i))
        .collect();
    for (i, h) in epoch_hash.iter().enumerate() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<[u8; 32]> = deps.get(h).map(|d| d.to_vec()).unwrap_or_default();
        while let Some(a) = stack.pop() {
            if !seen.insert(a) {
                continue;
            }
            if let Some(&j) = positions.get(&a) {
                if j != i {
                    k.epochs[j].head = false;
                }
            }
            if let Some(d) = deps.get(&a) {
                stack.extend(d.iter().copied());
            }
        }
    }
    k
}

/// Resolves the key operations from the log, stores them, and opens the epoch keys sealed
/// to this machine (and the merged key of the current heads). Returns whether a key this
/// machine did not hold before was opened (held records may open now).
pub(crate) fn refresh(conn: &Connection, identity: &MachineIdentity) -> Result<bool> {
    let ops = crate::roster::load_ops(conn)?;
    let roster = crate::roster::stored(conn)?;
    let k = resolve(&ops, &roster);
    conn.execute_batch(
        "DELETE FROM crdt_epochs; DELETE FROM crdt_seals; DELETE FROM crdt_epoch_exposure; \
         DELETE FROM crdt_refuse_pending;",
    )?;
    keep_removals_named(conn, &ops)?;
    let invites = crate::roster::resolve(conn)?.invites;
    for (epoch, until) in exposure(&ops, &k, &invites) {
        conn.execute(
            "INSERT INTO crdt_epoch_exposure(epoch, until) VALUES (?1, ?2)",
            params![hex::encode(epoch), until],
        )?;
    }
    let project = crate::store::meta(conn, "project_id")?.unwrap_or_default();
    let me = identity.public_key_hex();
    let mut opened = false;
    // Epochs whose key this machine held wrong (an invite code's) and now holds sealed.
    let mut replaced: Vec<EpochId> = Vec::new();
    for (i, e) in k.epochs.iter().enumerate() {
        let id = hex::encode(e.id);
        conn.execute(
            "INSERT INTO crdt_epochs(id, idx, author, removed, head) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                id,
                i as i64,
                e.author,
                serde_json::to_string(&e.removed).unwrap_or_default(),
                e.head as i64
            ],
        )?;
        for (m, copies) in &e.seals {
            for c in copies {
                conn.execute(
                    "INSERT OR IGNORE INTO crdt_seals(epoch, member, sealed) VALUES (?1, ?2, ?3)",
                    params![id, m, hex::encode(c)],
                )?;
            }
        }
        // A key sealed to this machine is authenticated (its AEAD binds project, epoch and
        // recipient), so it replaces one taken from elsewhere (an invite code, which nothing
        // signs) that says otherwise.
        let held = epoch_key(conn, &e.id)?;
        let mut refused_one = false;
        let mut good = false;
        let sealers = e.sealers.get(&me);
        for (n, c) in e.seals.get(&me).into_iter().flatten().enumerate() {
            if let Ok(key) = sealing::open_key(c, &e.id, &project, identity) {
                if e.commit
                    .is_some_and(|want| sealing::key_commitment(&project, &e.id, &key) != want)
                {
                    // Not the epoch's key: refused, its sealer named, and the copy is refused
                    // in the roster so a member holding the right key seals it again.
                    let by = sealers.and_then(|s| s.get(n)).cloned().unwrap_or_default();
                    conn.execute(
                        "INSERT OR IGNORE INTO crdt_bad_seals(epoch, sealer) VALUES (?1, ?2)",
                        params![id, by],
                    )?;
                    refused_one = true;
                    continue;
                }
                good = true;
                confirm(conn, &e.id)?;
                if held != Some(key) {
                    conn.execute(
                        "INSERT OR REPLACE INTO crdt_epoch_keys(epoch, key) VALUES (?1, ?2)",
                        params![id, &key[..]],
                    )?;
                    opened = true;
                    if held.is_some() {
                        replaced.push(e.id);
                    }
                }
                break;
            }
        }
        if refused_one && !good {
            conn.execute(
                "INSERT OR IGNORE INTO crdt_refuse_pending(epoch) VALUES (?1)",
                [&id],
            )?;
        }
    }
    if !replaced.is_empty() {
        retry_unreadable(conn, &replaced)?;
    }
    // The merged key of several heads, when every head's key is held.
    let heads: Vec<EpochId> = k.epochs.iter().filter(|e| e.head).map(|e| e.id).collect();
    if heads.len() > 1 {
        let keys: Option<Vec<(EpochId, EpochKey)>> = heads
            .iter()
            .map(|h| epoch_key(conn, h).ok().flatten().map(|key| (*h, key)))
            .collect();
        if let Some(keys) = keys {
            let (id, key) = sealing::merge(&keys);
            let held = epoch_key(conn, &id)?;
            if held != Some(key) {
                // Made from a head key that was since replaced: derived again.
                conn.execute(
                    "INSERT OR REPLACE INTO crdt_epoch_keys(epoch, key) VALUES (?1, ?2)",
                    params![hex::encode(id), &key[..]],
                )?;
                opened = true;
                if held.is_some() {
                    retry_unreadable(conn, &[id])?;
                }
            }
            // As confirmed as the least confirmed of its heads.
            let mut unconfirmed = false;
            for h in &heads {
                unconfirmed |= is_unconfirmed(conn, h)?;
            }
            if unconfirmed {
                mark_unconfirmed(conn, &id)?;
            } else {
                confirm(conn, &id)?;
            }
        }
    }
    Ok(opened)
}

/// Records of `epochs` found unreadable under a key that has since been replaced are held
/// for a key again (`store::NO_KEY`), so the caller's `open_held` opens them with the right
/// one (or finds them unreadable again). Rare (a wrong key from an invite code), so the
/// unindexed look at the unreadable records is fine.
fn retry_unreadable(conn: &Connection, epochs: &[EpochId]) -> Result<()> {
    let rows: Vec<(i64, Vec<u8>)> = conn
        .prepare("SELECT id, body FROM crdt_changes WHERE applied = ?1")?
        .query_map([crate::store::UNREADABLE], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<std::result::Result<_, _>>()?;
    for (id, body) in rows {
        let Ok(rec) = postcard::from_bytes::<crate::record::RecordBody>(&body) else {
            continue;
        };
        if sealing::record_epoch(&rec.change).is_ok_and(|e| epochs.contains(&e)) {
            conn.execute(
                "UPDATE crdt_changes SET applied = ?1 WHERE id = ?2",
                params![crate::store::NO_KEY, id],
            )?;
        }
    }
    Ok(())
}

/// The key of `epoch`, when this machine holds it.
pub(crate) fn epoch_key(conn: &Connection, epoch: &EpochId) -> Result<Option<EpochKey>> {
    let key: Option<Vec<u8>> = conn
        .prepare_cached("SELECT key FROM crdt_epoch_keys WHERE epoch = ?1")?
        .query_row([hex::encode(epoch)], |r| r.get(0))
        .optional()?;
    Ok(key.and_then(|k| k.try_into().ok()))
}

/// Keeps an epoch key this machine made or opened.
pub(crate) fn store_key(conn: &Connection, epoch: &EpochId, key: &EpochKey) -> Result<()> {
    conn.execute(
        "INSERT OR IGNORE INTO crdt_epoch_keys(epoch, key) VALUES (?1, ?2)",
        params![hex::encode(epoch), &key[..]],
    )?;
    Ok(())
}

/// Whether the key held for `epoch` came from an invite code that did not sign it and no key
/// sealed to this machine has confirmed it yet.
fn is_unconfirmed(conn: &Connection, epoch: &EpochId) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM crdt_unconfirmed_keys WHERE epoch = ?1")?
        .exists([hex::encode(epoch)])?)
}

fn mark_unconfirmed(conn: &Connection, epoch: &EpochId) -> Result<()> {
    conn.execute(
        "INSERT OR IGNORE INTO crdt_unconfirmed_keys(epoch) VALUES (?1)",
        [hex::encode(epoch)],
    )?;
    Ok(())
}

fn confirm(conn: &Connection, epoch: &EpochId) -> Result<()> {
    conn.execute(
        "DELETE FROM crdt_unconfirmed_keys WHERE epoch = ?1",
        [hex::encode(epoch)],
    )?;
    Ok(())
}

/// What a writer seals its records with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriterEpoch {
    /// The project has no epoch yet: records stay plaintext (a project from before
    /// encryption, until its first epoch).
    Plaintext,
    /// Seal with this epoch.
    Seal(EpochId, EpochKey),
    /// Make a new epoch first: a head's key is not held here (or only unconfirmed, from an
    /// invite code that did not sign it), or a removed machine is not excluded by the current
    /// heads.
    Rotate,
}

/// Until when each epoch's key is safe from an invite code that carries it (unix seconds;
/// `i64::MIN` for a code already revoked): a code carries the keys of every epoch among its
/// invite's ancestors, and one that was revoked, or expired, without being used is a key
/// in unknown hands. An invite that admitted its machine exposes nothing more than a member.
pub fn exposure(
    ops: &[crate::authority::OpRecord],
    k: &Keyring,
    invites: &BTreeMap<String, crate::authority::Invite>,
) -> BTreeMap<EpochId, i64> {
    let known: BTreeSet<EpochId> = k.epochs.iter().map(|e| e.id).collect();
    let mut epoch_of: HashMap<[u8; 32], EpochId> = HashMap::new();
    let mut deps: HashMap<[u8; 32], &Vec<[u8; 32]>> = HashMap::new();
    for o in ops {
        deps.insert(o.hash, &o.deps);
        if let Ok(Op::Epoch { id, .. }) = &o.op {
            if let Some(id) = hex32(id).filter(|id| known.contains(id)) {
                epoch_of.insert(o.hash, id);
            }
        }
    }
    let mut out: BTreeMap<EpochId, i64> = BTreeMap::new();
    for o in ops {
        let Ok(Op::Invite { id, .. }) = &o.op else {
            continue;
        };
        let Some(inv) = invites.get(id) else { continue };
        if inv.used_by.is_some() {
            continue;
        }
        let until = if inv.revoked { i64::MIN } else { inv.expires };
        let mut seen = BTreeSet::new();
        let mut stack: Vec<[u8; 32]> = o.deps.clone();
        while let Some(h) = stack.pop() {
            if !seen.insert(h) {
                continue;
            }
            if let Some(e) = epoch_of.get(&h) {
                let v = out.entry(*e).or_insert(until);
                *v = (*v).min(until);
            }
            if let Some(d) = deps.get(&h) {
                stack.extend(d.iter().copied());
            }
        }
    }
    out
}

/// The epoch this machine seals new records with now. A head whose key an unused invite code
/// carries that was revoked or has expired (`crdt_epoch_exposure`, judged by this machine's
/// clock) is rotated away: what is written next is sealed under a new epoch that code lacks.
pub(crate) fn writer_epoch(conn: &Connection) -> Result<WriterEpoch> {
    let heads: Vec<(String, String)> = conn
        .prepare_cached("SELECT id, removed FROM crdt_epochs WHERE head = 1 ORDER BY id")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<std::result::Result<_, _>>()?;
    if heads.is_empty() {
        return Ok(WriterEpoch::Plaintext);
    }
    let now = chrono::Utc::now().timestamp();
    for (id, _) in &heads {
        let exposed = conn
            .prepare_cached("SELECT 1 FROM crdt_epoch_exposure WHERE epoch = ?1 AND until < ?2")?
            .exists(params![id, now])?;
        if exposed {
            return Ok(WriterEpoch::Rotate);
        }
    }
    let mut excluded: BTreeSet<String> = BTreeSet::new();
    let mut keys = Vec::new();
    for (id, removed) in &heads {
        excluded.extend(serde_json::from_str::<Vec<String>>(removed).unwrap_or_default());
        let Some(id) = hex32(id) else {
            return Ok(WriterEpoch::Rotate);
        };
        // A key nobody signed is not written with: were it wrong, every other member would
        // find this machine's records unreadable.
        match epoch_key(conn, &id)? {
            Some(k) if !is_unconfirmed(conn, &id)? => keys.push((id, k)),
            _ => return Ok(WriterEpoch::Rotate),
        }
    }
    let removed: Vec<String> = conn
        .prepare_cached("SELECT id FROM crdt_removed")?
        .query_map([], |r| r.get(0))?
        .collect::<std::result::Result<_, _>>()?;
    if removed.iter().any(|r| !excluded.contains(r)) {
        return Ok(WriterEpoch::Rotate);
    }
    let (id, key) = sealing::merge(&keys);
    Ok(WriterEpoch::Seal(id, key))
}

/// The members a new epoch is sealed to: every admitted member (public key hex, X25519 key).
pub(crate) fn recipients(conn: &Connection) -> Result<Vec<(String, [u8; 32])>> {
    let rows: Vec<String> = conn
        .prepare_cached("SELECT id FROM crdt_members ORDER BY id")?
        .query_map([], |r| r.get(0))?
        .collect::<std::result::Result<_, _>>()?;
    Ok(rows
        .into_iter()
        .filter_map(|m| {
            let enc = sealing::encryption_key_of(&hex32(&m)?)?;
            Some((m, enc))
        })
        .collect())
}

/// A new epoch's operation, sealed to every recipient (and to `me` when its key is known),
/// excluding every removed machine; the caller writes it and keeps the key.
pub(crate) fn new_epoch_op(
    conn: &Connection,
    project: &str,
    identity: &MachineIdentity,
) -> Result<(Op, EpochId, EpochKey)> {
    let (id, key) = sealing::new_epoch();
    let mut to = recipients(conn)?;
    let me = identity.public_key_hex();
    if !to.iter().any(|(m, _)| *m == me) {
        if let Some(enc) = sealing::encryption_key_of(&identity.public_key()) {
            to.push((me, enc));
        }
    }
    let seals = to
        .iter()
        .filter_map(|(m, enc)| {
            let member = hex32(m)?;
            Some((
                m.clone(),
                hex::encode(sealing::seal_key(&key, &id, project, &member, enc)),
            ))
        })
        .collect();
    let removed: Vec<String> = conn
        .prepare_cached("SELECT id FROM crdt_removed ORDER BY id")?
        .query_map([], |r| r.get(0))?
        .collect::<std::result::Result<_, _>>()?;
    Ok((
        Op::Epoch {
            id: hex::encode(id),
            removed,
            seals,
            commit: hex::encode(sealing::key_commitment(project, &id, &key)),
        },
        id,
        key,
    ))
}

/// What keeps the keyring whole, as operations this machine should write now: a `seal` of
/// every epoch it holds (confirmed) to every admitted member that has no copy (never to a
/// machine the epoch excludes, nor to a removed one).
pub(crate) fn upkeep(
    conn: &Connection,
    project: &str,
    _identity: &MachineIdentity,
) -> Result<Vec<Op>> {
    let mut ops = Vec::new();
    // Copies sealed to this machine that are not their epoch's key: refused in the roster.
    let refuse: Vec<String> = conn
        .prepare_cached("SELECT epoch FROM crdt_refuse_pending ORDER BY epoch")?
        .query_map([], |r| r.get(0))?
        .collect::<std::result::Result<_, _>>()?;
    ops.extend(refuse.into_iter().map(|epoch| Op::RefuseSeal { epoch }));
    let epochs: Vec<(String, String)> = conn
        .prepare_cached("SELECT id, removed FROM crdt_epochs ORDER BY idx")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<std::result::Result<_, _>>()?;
    let removed: BTreeSet<String> = conn
        .prepare_cached("SELECT id FROM crdt_removed")?
        .query_map([], |r| r.get(0))?
        .collect::<std::result::Result<_, _>>()?;
    let members = recipients(conn)?;
    for (id, excluded) in epochs {
        let Some(eid) = hex32(&id) else { continue };
        let Some(key) = epoch_key(conn, &eid)? else {
            continue;
        };
        // A key nobody signed is never passed on: were it wrong, it would spread.
        if is_unconfirmed(conn, &eid)? {
            continue;
        }
        let excluded: BTreeSet<String> = serde_json::from_str(&excluded).unwrap_or_default();
        for (m, enc) in &members {
            if removed.contains(m) {
                continue;
            }
            // An epoch that excludes a machine now a member: sealed to it only when this
            // replica holds the removal too (the machine was re-admitted after it); a replica
            // that never saw the removal must not hand the key back.
            if excluded.contains(m) && !removal_named(conn, m)? {
                continue;
            }
            let has: bool = conn
                .prepare_cached("SELECT 1 FROM crdt_seals WHERE epoch = ?1 AND member = ?2")?
                .exists(params![id, m])?;
            if has {
                continue;
            }
            let Some(member) = hex32(m) else { continue };
            ops.push(Op::Seal {
                epoch: id.clone(),
                to: m.clone(),
                sealed: hex::encode(sealing::seal_key(&key, &eid, project, &member, enc)),
            });
        }
    }
    Ok(ops)
}

/// Keeps every machine some removal in `ops` names, standing or not (`crdt_removals_named`):
/// upkeep asks on every command, so it is kept here rather than read from the log each time.
fn keep_removals_named(conn: &Connection, ops: &[OpRecord]) -> Result<()> {
    conn.execute("DELETE FROM crdt_removals_named", [])?;
    for o in ops {
        if let Ok(Op::Remove { key, .. }) = &o.op {
            conn.execute(
                "INSERT OR IGNORE INTO crdt_removals_named(key) VALUES (?1)",
                [key],
            )?;
        }
    }
    crate::store::set_meta(conn, REMOVALS_NAMED, "1")
}

/// The meta key that says `crdt_removals_named` was filled (a database from before it existed
/// fills it from the log the first time it is asked).
const REMOVALS_NAMED: &str = "removals_named";

/// Whether some removal in the log names `key` (whether or not it stands).
fn removal_named(conn: &Connection, key: &str) -> Result<bool> {
    if crate::store::meta(conn, REMOVALS_NAMED)?.is_none() {
        keep_removals_named(conn, &crate::roster::load_ops(conn)?)?;
    }
    Ok(conn
        .prepare_cached("SELECT 1 FROM crdt_removals_named WHERE key = ?1")?
        .exists([key])?)
}

/// Every confirmed epoch key this machine holds (epoch id hex → key hex), for an invite code.
pub(crate) fn held_keys(conn: &Connection) -> Result<BTreeMap<String, String>> {
    let rows: Vec<(String, Vec<u8>)> = conn
        .prepare_cached(
            "SELECT epoch, key FROM crdt_epoch_keys \
             WHERE epoch NOT IN (SELECT epoch FROM crdt_unconfirmed_keys) ORDER BY epoch",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<std::result::Result<_, _>>()?;
    Ok(rows.into_iter().map(|(e, k)| (e, hex::encode(k))).collect())
}

/// Keeps epoch keys an invite code carried (malformed entries are skipped). `signed`: the
/// inviter's signed invite vouches for exactly these keys (`invite::keys_digest`); otherwise
/// (a code from before invites signed their keys) each newly kept key is unconfirmed: read
/// with, but never written with nor sealed to anyone, until a key sealed to this machine
/// confirms or replaces it.
pub(crate) fn keep_keys(
    conn: &Connection,
    keys: &BTreeMap<String, String>,
    signed: bool,
) -> Result<()> {
    for (epoch, key) in keys {
        if let (Some(e), Some(k)) = (hex32(epoch), hex32(key)) {
            if epoch_key(conn, &e)?.is_none() {
                store_key(conn, &e, &k)?;
                if !signed {
                    mark_unconfirmed(conn, &e)?;
                }
            }
        }
    }
    Ok(())
}

/// Where encryption stands on this replica.
pub(crate) fn status(conn: &Connection) -> Result<crate::views::EncryptionView> {
    let count = |sql: &str| -> Result<i64> { Ok(conn.query_row(sql, [], |r| r.get(0))?) };
    let current = match writer_epoch(conn)? {
        WriterEpoch::Seal(id, _) => Some(hex::encode(id)),
        _ => None,
    };
    Ok(crate::views::EncryptionView {
        epochs: count("SELECT count(*) FROM crdt_epochs")?,
        heads: count("SELECT count(*) FROM crdt_epochs WHERE head = 1")?,
        current,
        keys_held: count("SELECT count(*) FROM crdt_epoch_keys")?,
        keys_unconfirmed: count("SELECT count(*) FROM crdt_unconfirmed_keys")?,
        waiting_for_key: count(&format!(
            "SELECT count(*) FROM crdt_changes WHERE applied = {}",
            crate::store::NO_KEY
        ))?,
        unreadable: count(&format!(
            "SELECT count(*) FROM crdt_changes WHERE applied = {}",
            crate::store::UNREADABLE
        ))?,
        plaintext_records: count(
            "SELECT count(*) FROM crdt_changes WHERE doc_id != 'roster' AND substr(body, 1, 1) = x'01'",
        )?,
        refused_seals: conn
            .prepare("SELECT epoch, sealer FROM crdt_bad_seals ORDER BY epoch, sealer")?
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .collect::<std::result::Result<Vec<_>, _>>()?
            .into_iter()
            .map(|(epoch, sealer)| {
                let machine = hex32(&sealer)
                    .map(|k| crate::identity::fingerprint_of(&k))
                    .unwrap_or(sealer);
                format!(
                    "epoch {}: machine {machine} sealed a key to this machine that is not the epoch's; refused (a member holding the right key seals it again)",
                    &epoch[..epoch.len().min(16)]
                )
            })
            .collect(),
    })
}

/// A stored record's Automerge change: the plaintext record's, or a sealed record's opened
/// with the epoch keys this machine holds (`Err` says why not: no key yet, or it does not
/// open).
pub(crate) fn record_change(
    conn: &Connection,
    body: &[u8],
) -> Result<std::result::Result<crate::record::Inner, crate::sealing::OpenError>> {
    let rec: crate::record::RecordBody = postcard::from_bytes(body)
        .map_err(|e| EngineError::CorruptLog(format!("stored record: {e}")))?;
    open_body(conn, rec)
}

/// [`record_change`] for a decoded body.
pub(crate) fn open_body(
    conn: &Connection,
    rec: crate::record::RecordBody,
) -> Result<std::result::Result<crate::record::Inner, crate::sealing::OpenError>> {
    if rec.format < crate::record::SEALED_FORMAT {
        return Ok(Ok(crate::record::Inner {
            doc: rec.doc,
            session: rec.session,
            change: rec.change,
        }));
    }
    let epoch = match crate::sealing::record_epoch(&rec.change) {
        Ok(e) => e,
        Err(e) => return Ok(Err(e)),
    };
    let key = epoch_key(conn, &epoch)?;
    let plain = match crate::sealing::open_record(
        &rec.change,
        |_| key,
        &rec.project,
        &rec.actor,
        rec.seq,
    ) {
        Ok(p) => p,
        Err(e) => return Ok(Err(e)),
    };
    Ok(postcard::from_bytes::<crate::record::Inner>(&plain)
        .map_err(|_| crate::sealing::OpenError::Forged))
}

/// A hub row's bytes after unwrapping (`td sync encrypt-hub`, docs/encryption.md).
pub(crate) enum HubBody<'a> {
    /// The row as it came (not wrapped).
    Plain(&'a [u8]),
    /// The record a wrapped row held.
    Opened(Vec<u8>),
    /// A wrapped row whose epoch key is not held here yet: its writer waits.
    NoKey([u8; 16]),
    /// A wrapped row that does not open with the key of the epoch it names (altered).
    Refused(String),
}

/// Unwraps a hub row wrapped by an admin, with the keys held here.
pub(crate) fn unwrap_hub_body<'a>(
    conn: &Connection,
    project: &str,
    body: &'a [u8],
) -> Result<HubBody<'a>> {
    let Some((actor, seq)) = sealing::wrapped_writer(body) else {
        return Ok(HubBody::Plain(body));
    };
    let epoch = body
        .get(sealing::WRAP_HEADER..)
        .and_then(|e| sealing::record_epoch(e).ok());
    let key = match epoch {
        Some(e) => epoch_key(conn, &e)?,
        None => None,
    };
    Ok(match sealing::unwrap_row(body, |_| key, project) {
        Ok(record) => HubBody::Opened(record),
        Err(sealing::OpenError::NoKey(_)) => HubBody::NoKey(actor),
        Err(e) => HubBody::Refused(format!(
            "wrapped row {}#{seq} {e}",
            hex::encode(&actor[..4])
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(n: u8, deps: &[u8], author: [u8; 32], op: Op) -> OpRecord {
        OpRecord {
            hash: [n; 32],
            deps: deps.iter().map(|d| [*d; 32]).collect(),
            author,
            actor: vec![n],
            seq: 1,
            time: 0,
            op: Ok(op),
        }
    }

    fn epoch(id: u8) -> Op {
        Op::Epoch {
            id: hex::encode([id; 32]),
            removed: vec![],
            seals: BTreeMap::new(),
            commit: String::new(),
        }
    }

    #[test]
    fn heads_are_the_epochs_nothing_was_made_on_and_non_members_do_not_count() {
        let a = [1u8; 32];
        let stranger = [9u8; 32];
        let mut roster = Roster::default();
        roster.members.insert(
            hex::encode(a),
            authority::Member {
                role: authority::Role::Admin,
                name: String::new(),
                added_by: String::new(),
                added_at: 0,
            },
        );
        // 1 (epoch e0) ← 2 (epoch e1) ← 3 (epoch e2 made on e1); 4 (epoch e3, apart) on 1;
        // 5 by a stranger.
        let ops = vec![
            op(1, &[], a, epoch(0xe0)),
            op(2, &[1], a, epoch(0xe1)),
            op(3, &[2], a, epoch(0xe2)),
            op(4, &[1], a, epoch(0xe3)),
            op(5, &[3], stranger, epoch(0xe4)),
        ];
        let k = resolve(&ops, &roster);
        let heads: Vec<u8> = k
            .epochs
            .iter()
            .filter(|e| e.head)
            .map(|e| e.id[0])
            .collect();
        assert_eq!(heads, vec![0xe2, 0xe3]);
        assert_eq!(k.epochs.len(), 4, "the stranger's epoch does not count");
        // The same operations in another order resolve the same.
        let mut rev = ops.clone();
        rev.reverse();
        assert_eq!(resolve(&rev, &roster), k);
    }
}
