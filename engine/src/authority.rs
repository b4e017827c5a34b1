//! Who may write, admit and remove: the roster as a pure function of the roster operations a
//! replica holds. No SQL and no clocks here, so every replica that holds the same operations
//! computes the same roster whatever the order they arrived in (docs/membership.md).
//!
//! Each roster operation is one Automerge change on the `roster` document whose commit message
//! is the operation (JSON, [`Op`]); the change's dependencies (and an op's explicit `on` list)
//! say which roster state it was made on. An operation is valid only if its author had the
//! authority in that state: authority is causal, never taken from the receiver's current view.
//!
//! Resolution, in one deterministic pass per round:
//! 1. Operations are ordered topologically (ties by change hash); one whose ancestors have not
//!    all arrived waits.
//! 2. Each operation is checked against the state made by the valid operations among its own
//!    ancestors. A removal beats a concurrent add (an add re-admits only if it follows the
//!    removal causally); concurrent role changes settle on the lower role; nothing may leave the
//!    roster without an admin.
//! 3. A removal that stands cuts its key off: the removed machine's records concurrent with the
//!    removal and beyond what the remover held of each of its actors (the cut-off) are refused,
//!    roster operations included. Removals are committed most senior author first (the founder,
//!    then by when each admin was admitted), so two admins removing each other concurrently
//!    resolve to the senior one's removal.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

/// The most roster operations resolved; later ones (in topological order) are ignored. Every
/// operation is checked against its ancestors, which is quadratic in this number.
pub const MAX_OPS: usize = 4096;

/// The most roster records a replica stores from one machine that is not admitted (a joiner
/// whose invite has not arrived yet writes one: its join). Beyond it, or beyond
/// [`MAX_UNADMITTED_ROSTER_BYTES`], its roster records are refused with a reason the sender
/// sees, and not stored.
pub const MAX_UNADMITTED_ROSTER_RECORDS: u64 = 16;

/// The most bytes of roster records a replica stores from one machine that is not admitted.
pub const MAX_UNADMITTED_ROSTER_BYTES: u64 = 64 * 1024;

/// The most roster records a replica stores from all machines that are not admitted together
/// (each also within [`MAX_UNADMITTED_ROSTER_RECORDS`]): fresh keys cost a stranger nothing, so
/// without it many keys of a few records each would grow every replica without bound.
pub const MAX_UNADMITTED_ROSTER_TOTAL: u64 = 1024;

/// The most bytes of roster records a replica stores from all machines that are not admitted.
pub const MAX_UNADMITTED_ROSTER_TOTAL_BYTES: u64 = 4 * 1024 * 1024;

/// The largest operation (a commit message) read; larger ones are invalid.
pub const MAX_OP_BYTES: usize = 256 * 1024;

/// A member's authority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Writes issues and everything else; cannot change the roster.
    Member,
    /// Also adds and removes machines and changes roles.
    Admin,
}

impl Role {
    /// As users type it.
    pub fn parse(s: &str) -> Option<Role> {
        match s.trim().to_ascii_lowercase().as_str() {
            "member" => Some(Role::Member),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// As shown and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
        }
    }
}

/// One roster operation, as carried in the commit message of a `roster` change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// The founder names itself (its authority comes from the project id, not from this op).
    Found {
        /// Display name.
        #[serde(default)]
        name: String,
    },
    /// Admits `key` with `role` (or renames / changes the role of a member).
    Add {
        /// Public key, 64 hex digits.
        key: String,
        /// The role granted.
        role: Role,
        /// Display name.
        #[serde(default)]
        name: String,
    },
    /// Changes a member's role.
    SetRole {
        /// Public key.
        key: String,
        /// The new role.
        role: Role,
    },
    /// An admin invites a machine it does not know yet: whoever proves the invite's secret
    /// (signs with the key `id`) may join once, with `role`, until `expires`.
    Invite {
        /// The invite's public key (hex); its secret travels only inside the invite code.
        id: String,
        /// The role granted on joining.
        role: Role,
        /// Display name for the joiner.
        #[serde(default)]
        name: String,
        /// Unix seconds after which a join is refused.
        expires: i64,
        /// The digest of the epoch keys the invite code carries (`invite::keys_digest`, hex):
        /// the joiner keeps only keys the inviter signed. Empty in invites from before it (their
        /// keys are kept unconfirmed) and when the code carries no key.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        keys: String,
    },
    /// A machine joins with an invite: its own key, and a signature by the invite's key over
    /// [`join_message`]. `on` names the invite change (the joiner may not hold the roster it
    /// was made on yet).
    Join {
        /// The invite id.
        invite: String,
        /// The joining machine's public key (must be the operation's author).
        key: String,
        /// Signature (hex) by the invite key over [`join_digest`].
        proof: String,
        /// Change hashes (hex) this join was made on beyond its change dependencies.
        #[serde(default)]
        on: Vec<String>,
    },
    /// An admin withdraws an unused invite.
    RevokeInvite {
        /// The invite id.
        invite: String,
    },
    /// Removes `key`. `cutoff` holds, per actor (hex) of that machine, the last sequence number
    /// the remover held: records up to it stay, later concurrent ones are refused everywhere.
    Remove {
        /// Public key.
        key: String,
        /// Actor hex → last accepted seq.
        #[serde(default)]
        cutoff: BTreeMap<String, u64>,
    },
    /// A new content-key epoch: its id, the machines its author's roster had removed, and its
    /// key sealed to each member (signing key hex → sealed key hex).
    Epoch {
        /// 32 random bytes, hex.
        id: String,
        /// Removed machines (public keys hex) this epoch excludes.
        #[serde(default)]
        removed: Vec<String>,
        /// Member public key hex → the epoch key sealed to it (hex).
        #[serde(default)]
        seals: BTreeMap<String, String>,
        /// The commitment to the epoch's key (`sealing::key_commitment`, hex): each member
        /// checks the key sealed to it against it, so no member can hand another a key that
        /// is not the epoch's. Empty in epochs from before it.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        commit: String,
    },
    /// A member refuses the copies of an epoch's key sealed to it that this operation was made
    /// on: they did not match the epoch's commitment. Members that hold the right key seal it
    /// to the refuser again.
    RefuseSeal {
        /// The epoch id (hex).
        epoch: String,
    },
    /// An epoch's key sealed to one more member (one that joined or published its key later).
    Seal {
        /// The epoch id (hex).
        epoch: String,
        /// The member's public key (hex).
        to: String,
        /// The sealed key (hex).
        sealed: String,
    },
}

impl Op {
    /// Whether this is a key operation (resolved by `keyring.rs`, neutral for membership;
    /// `docs/encryption.md`).
    pub fn is_key_op(&self) -> bool {
        matches!(
            self,
            Op::Epoch { .. } | Op::Seal { .. } | Op::RefuseSeal { .. }
        )
    }
}

/// A roster operation with what the log knows of it.
#[derive(Debug, Clone)]
pub struct OpRecord {
    /// The Automerge change hash (the operation's identity).
    pub hash: [u8; 32],
    /// Roster operations this one was made on (change dependencies plus explicit `on`).
    pub deps: Vec<[u8; 32]>,
    /// The signing machine.
    pub author: [u8; 32],
    /// The record's actor and sequence number (for cut-offs).
    pub actor: Vec<u8>,
    /// Position in the actor's chain.
    pub seq: u64,
    /// Change timestamp (seconds), shown as "added at"; never used for authority.
    pub time: i64,
    /// The operation, or why it could not be read.
    pub op: std::result::Result<Op, String>,
}

/// What the invite key signs when a machine joins (the hash of the invite id and the joining
/// machine's key): binds the proof to that machine, so a proof seen in the log is no use to
/// anyone else.
pub fn join_digest(invite: &[u8; 32], key: &[u8; 32]) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"td-join-v1\0");
    h.update(invite);
    h.update(key);
    h.finalize().into()
}

/// An invite in the resolved roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    /// Role granted.
    pub role: Role,
    /// Name for the joiner.
    pub name: String,
    /// Unix seconds.
    pub expires: i64,
    /// Who made it (public key hex).
    pub by: String,
    /// The machine that joined with it, if any.
    pub used_by: Option<String>,
    /// Withdrawn.
    pub revoked: bool,
}

/// A member in the resolved roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Role.
    pub role: Role,
    /// Display name.
    pub name: String,
    /// Who admitted it (public key hex; empty for the founder).
    pub added_by: String,
    /// When (change time, seconds).
    pub added_at: i64,
}

/// A removed machine and how far its records are accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    /// Who removed it (public key hex; the senior remover when several did).
    pub removed_by: String,
    /// Actor hex → last accepted seq (the union of every standing removal's cut-off).
    pub cutoff: BTreeMap<String, u64>,
}

/// The roster every replica holding the same operations computes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roster {
    /// Members by public key (hex).
    pub members: BTreeMap<String, Member>,
    /// Removed machines by public key (hex).
    pub removed: BTreeMap<String, Removed>,
    /// Invites by id.
    pub invites: BTreeMap<String, Invite>,
    /// Operations that did not take effect, with the reason (change hash hex → reason).
    pub refused: BTreeMap<String, String>,
    /// Operations waiting for an ancestor that has not arrived.
    pub waiting: usize,
    /// Operations left out because no one with authority ever named their author
    /// ([`admitted_authors`]): strangers' operations, never read.
    pub unadmitted: usize,
}

/// Where a machine stands, for accepting its ordinary records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Every record accepted.
    Member(Role),
    /// Records up to the cut-off accepted.
    Removed(BTreeMap<String, u64>),
    /// Never admitted (yet): records are held until an admission arrives.
    Unknown,
}

impl Standing {
    /// Whether record `seq` of `actor` by this machine is accepted.
    pub fn admits(&self, actor: &[u8], seq: u64) -> bool {
        match self {
            Standing::Member(_) => true,
            Standing::Removed(cut) => cut.get(&hex::encode(actor)).is_some_and(|c| seq <= *c),
            Standing::Unknown => false,
        }
    }
}

impl Roster {
    /// Where `key` (hex) stands.
    pub fn standing(&self, key: &str) -> Standing {
        if let Some(m) = self.members.get(key) {
            Standing::Member(m.role)
        } else if let Some(r) = self.removed.get(key) {
            Standing::Removed(r.cutoff.clone())
        } else {
            Standing::Unknown
        }
    }

    /// Number of admins.
    pub fn admins(&self) -> usize {
        self.members
            .values()
            .filter(|m| m.role == Role::Admin)
            .count()
    }
}

/// The running state while replaying operations.
#[derive(Clone, Default)]
struct State {
    members: BTreeMap<String, MemberState>,
    removed: BTreeMap<String, RemovalState>,
    invites: BTreeMap<String, (usize, Invite)>,
}

#[derive(Clone)]
struct MemberState {
    role: Role,
    role_op: usize,
    name: String,
    added_by: String,
    added_at: i64,
}

#[derive(Clone)]
struct RemovalState {
    ops: Vec<usize>,
    by: String,
    cutoff: BTreeMap<String, u64>,
}

impl State {
    fn is_admin(&self, key: &str, founder: &dyn Fn(&str) -> bool) -> bool {
        match self.members.get(key) {
            Some(m) => m.role == Role::Admin,
            None => founder(key) && !self.removed.contains_key(key),
        }
    }

    fn admins(&self) -> usize {
        self.members
            .values()
            .filter(|m| m.role == Role::Admin)
            .count()
    }
}

/// A fixed-size set of operation indices.
#[derive(Clone)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn has(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn count(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }
    fn union(&mut self, other: &Bits) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= b;
        }
    }
}

/// Orders operations topologically (duplicates dropped; ties by hash, so the order is a
/// function of the set); returns the order and how many wait for an ancestor not held.
pub fn topological(ops: &[OpRecord]) -> (Vec<&OpRecord>, usize) {
    // Deduplicate and order topologically; ties by hash, so the order is a function of the set.
    let mut by_hash: BTreeMap<[u8; 32], &OpRecord> = BTreeMap::new();
    for o in ops {
        by_hash.entry(o.hash).or_insert(o);
    }
    let mut waiting_on: HashMap<[u8; 32], Vec<[u8; 32]>> = HashMap::new();
    let mut missing: BTreeMap<[u8; 32], usize> = BTreeMap::new();
    let mut ready: BTreeSet<[u8; 32]> = BTreeSet::new();
    for (h, o) in &by_hash {
        let deps: BTreeSet<&[u8; 32]> = o.deps.iter().filter(|d| *d != h).collect();
        missing.insert(*h, deps.len());
        if deps.is_empty() {
            ready.insert(*h);
        }
        for d in deps {
            waiting_on.entry(*d).or_default().push(*h);
        }
    }
    let mut order: Vec<&OpRecord> = Vec::new();
    while let Some(h) = ready.pop_first() {
        order.push(by_hash[&h]);
        for w in waiting_on.remove(&h).unwrap_or_default() {
            let m = missing.get_mut(&w).expect("every waiter is an op");
            *m -= 1;
            if *m == 0 {
                ready.insert(w);
            }
        }
    }
    let waiting = by_hash.len() - order.len();
    (order, waiting)
}

/// The authors whose roster operations count at all: the founder, every key an add or a role
/// change by a possible admin names, and every machine that proves (signs its own join with)
/// an invite a possible admin made. A "possible admin" is the founder or a key some operation
/// by a possible admin made an admin; whether each operation is valid is decided later, by
/// [`resolve`], among these authors only.
///
/// This is what keeps strangers out of the roster: a machine nobody with authority ever
/// named (a hub token holder with a fresh key, a machine that reached a peer server while an
/// invite was open) writes operations that no replica reads, so they cannot displace,
/// outnumber or slow down the operations of those who hold authority. The set is a function of
/// the operations held, so every replica holding the same ones computes the same set.
pub fn admitted_authors(ops: &[OpRecord], is_founder: &dyn Fn(&str) -> bool) -> BTreeSet<String> {
    let authors: Vec<String> = ops.iter().map(|o| hex::encode(o.author)).collect();
    let mut admins: BTreeSet<String> = authors.iter().filter(|a| is_founder(a)).cloned().collect();
    let mut named: BTreeSet<String> = BTreeSet::new();
    // Whether each join proves its invite's secret, checked once.
    let mut proves: HashMap<usize, bool> = HashMap::new();
    loop {
        let before = admins.len();
        // Several invites may name one id (forged, or replayed by an admin): the highest role
        // any of them grants, so the set does not depend on the order the operations arrive
        // in (which of them is valid is for `resolve` to decide).
        let mut invites: BTreeMap<&str, Role> = BTreeMap::new();
        for (o, a) in ops.iter().zip(&authors) {
            if let (Ok(Op::Invite { id, role, .. }), true) = (&o.op, admins.contains(a)) {
                let r = invites.entry(id.as_str()).or_insert(*role);
                *r = (*r).max(*role);
            }
        }
        for (i, (o, author)) in ops.iter().zip(&authors).enumerate() {
            match &o.op {
                Ok(Op::Add { key, role, .. }) if admins.contains(author) => {
                    named.insert(key.clone());
                    if *role == Role::Admin {
                        admins.insert(key.clone());
                    }
                }
                Ok(Op::SetRole {
                    key,
                    role: Role::Admin,
                }) if admins.contains(author) => {
                    named.insert(key.clone());
                    admins.insert(key.clone());
                }
                Ok(Op::Join {
                    invite, key, proof, ..
                }) if key == author => {
                    let Some(role) = invites.get(invite.as_str()) else {
                        continue;
                    };
                    let ok = *proves
                        .entry(i)
                        .or_insert_with(|| proves_invite(invite, key, proof));
                    if ok {
                        named.insert(key.clone());
                        if *role == Role::Admin {
                            admins.insert(key.clone());
                        }
                    }
                }
                _ => {}
            }
        }
        if admins.len() == before {
            break;
        }
    }
    named.extend(admins);
    named
}

/// How many admissions separate each admitted author from the founder (the founder 0, a key
/// an admin it admitted names 1, …), as [`admitted_authors`] finds them. A receiver stores a
/// batch's roster records in this order, so the operations that admit a machine are stored
/// before that machine's own (whose number is bounded while it is not admitted).
pub fn admission_depths(
    ops: &[OpRecord],
    is_founder: &dyn Fn(&str) -> bool,
) -> BTreeMap<String, usize> {
    let authors: Vec<String> = ops.iter().map(|o| hex::encode(o.author)).collect();
    let mut depth: BTreeMap<String, usize> = authors
        .iter()
        .filter(|a| is_founder(a))
        .map(|a| (a.clone(), 0))
        .collect();
    for level in 1..=ops.len().max(1) {
        let known: BTreeMap<String, usize> = depth.clone();
        let invites: BTreeMap<&str, usize> = ops
            .iter()
            .zip(&authors)
            .filter_map(|(o, a)| match &o.op {
                Ok(Op::Invite { id, .. }) => known.get(a).map(|_| (id.as_str(), level)),
                _ => None,
            })
            .collect();
        for (o, author) in ops.iter().zip(&authors) {
            let named = match &o.op {
                Ok(Op::Add { key, .. } | Op::SetRole { key, .. }) if known.contains_key(author) => {
                    Some(key)
                }
                Ok(Op::Join { invite, key, .. })
                    if key == author && invites.contains_key(invite.as_str()) =>
                {
                    Some(key)
                }
                _ => None,
            };
            if let Some(k) = named {
                depth.entry(k.clone()).or_insert(level);
            }
        }
        if depth.len() == known.len() {
            break;
        }
    }
    depth
}

/// Whether `proof` is the invite key's signature over [`join_digest`] for `key`.
fn proves_invite(invite: &str, key: &str, proof: &str) -> bool {
    let (Ok(invite_key), Ok(joiner)) = (
        crate::identity::parse_public_key(invite),
        crate::identity::parse_public_key(key),
    ) else {
        return false;
    };
    hex::decode(proof)
        .ok()
        .and_then(|p| <[u8; 64]>::try_from(p).ok())
        .is_some_and(|sig| {
            crate::identity::verify(&invite_key, &join_digest(&invite_key, &joiner), &sig).is_ok()
        })
}

/// The operations of [`admitted_authors`] only, and how many others were left out. An
/// admitted operation made on a left-out one (a log from before strangers were kept out of
/// the roster document) is taken as made on what that one was made on, so its causal state
/// is kept and it never waits for a stranger's record.
pub fn admitted_ops(ops: &[OpRecord], is_founder: &dyn Fn(&str) -> bool) -> (Vec<OpRecord>, usize) {
    let admitted = admitted_authors(ops, is_founder);
    let (kept, left): (Vec<&OpRecord>, Vec<&OpRecord>) = ops
        .iter()
        .partition(|o| admitted.contains(&hex::encode(o.author)));
    if left.is_empty() {
        return (ops.to_vec(), 0);
    }
    let left_by_hash: HashMap<[u8; 32], &OpRecord> = left.iter().map(|o| (o.hash, *o)).collect();
    // The admitted operations a left-out one was made on, memoized; iterative, so a long
    // chain of strangers' operations cannot exhaust the stack.
    let mut frontier: HashMap<[u8; 32], BTreeSet<[u8; 32]>> = HashMap::new();
    let mut resolve_left = |start: [u8; 32]| -> BTreeSet<[u8; 32]> {
        let mut stack = vec![(start, false)];
        let mut on_stack: BTreeSet<[u8; 32]> = BTreeSet::new();
        while let Some((h, expanded)) = stack.pop() {
            if frontier.contains_key(&h) {
                continue;
            }
            let o = left_by_hash[&h];
            if !expanded {
                if !on_stack.insert(h) {
                    // A cycle (forged deps): contributes nothing.
                    frontier.insert(h, BTreeSet::new());
                    continue;
                }
                stack.push((h, true));
                for d in &o.deps {
                    if left_by_hash.contains_key(d) && !frontier.contains_key(d) {
                        stack.push((*d, false));
                    }
                }
                continue;
            }
            let mut f = BTreeSet::new();
            for d in &o.deps {
                match frontier.get(d) {
                    Some(sub) => f.extend(sub.iter().copied()),
                    None if left_by_hash.contains_key(d) => {}
                    None => {
                        f.insert(*d);
                    }
                }
            }
            frontier.insert(h, f);
        }
        frontier.get(&start).cloned().unwrap_or_default()
    };
    let out = kept
        .into_iter()
        .map(|o| {
            let mut o = o.clone();
            if o.deps.iter().any(|d| left_by_hash.contains_key(d)) {
                let mut deps: BTreeSet<[u8; 32]> = BTreeSet::new();
                for d in &o.deps {
                    if left_by_hash.contains_key(d) {
                        deps.extend(resolve_left(*d));
                    } else {
                        deps.insert(*d);
                    }
                }
                o.deps = deps.into_iter().collect();
            }
            o
        })
        .collect();
    (out, left.len())
}

/// Resolves the roster of `project` from every roster operation held (any order, duplicates
/// allowed). `is_founder` says whether a key (hex) is the founder the project id names.
pub fn resolve(ops: &[OpRecord], is_founder: &dyn Fn(&str) -> bool) -> Roster {
    let (ops, unadmitted) = admitted_ops(ops, is_founder);
    let (mut order, waiting) = topological(&ops);
    let mut refused: BTreeMap<String, String> = BTreeMap::new();
    for o in order.iter().skip(MAX_OPS) {
        refused.insert(
            hex::encode(o.hash),
            format!("the roster holds more than {MAX_OPS} operations"),
        );
    }
    order.truncate(MAX_OPS);
    let n = order.len();
    let index: HashMap<[u8; 32], usize> =
        order.iter().enumerate().map(|(i, o)| (o.hash, i)).collect();
    let mut anc: Vec<Bits> = Vec::with_capacity(n);
    for o in &order {
        let mut a = Bits::new(n);
        for d in &o.deps {
            if let Some(&j) = index.get(d) {
                a.set(j);
                let parent = anc[j].clone();
                a.union(&parent);
            }
        }
        anc.push(a);
    }
    let authors: Vec<String> = order.iter().map(|o| hex::encode(o.author)).collect();
    // Each invite id's first operation (its maker is that operation's author).
    let mut invites: HashMap<&str, usize> = HashMap::new();
    for (i, o) in order.iter().enumerate() {
        if let Ok(Op::Invite { id, .. }) = &o.op {
            invites.entry(id.as_str()).or_insert(i);
        }
    }

    let mut excluded = Bits::new(n);
    let mut committed: BTreeSet<usize> = BTreeSet::new();
    loop {
        let (valid, reasons) = validate(&order, &anc, &authors, &excluded, is_founder);
        let all = {
            let mut b = Bits::new(n);
            (0..n).filter(|&i| valid[i]).for_each(|i| b.set(i));
            b
        };
        let state = replay(&order, &anc, &authors, &valid, &all, is_founder);
        // Seniority: the founder, then by the position of the op that admitted each key.
        let mut rank: HashMap<&str, usize> = HashMap::new();
        for (i, o) in order.iter().enumerate() {
            if let (true, Ok(Op::Add { key, .. } | Op::Join { key, .. })) = (valid[i], &o.op) {
                rank.entry(key.as_str()).or_insert(i + 1);
            }
        }
        let seniority = |k: &str| {
            if is_founder(k) {
                0
            } else {
                rank.get(k).copied().unwrap_or(usize::MAX)
            }
        };
        // Every valid removal counts, also one the state did not apply (it would have left no
        // admin): in a mutual removal the senior's removal must cut the junior's off first.
        let next = (0..n)
            .filter(|&i| valid[i] && matches!(order[i].op, Ok(Op::Remove { .. })))
            .filter(|i| !committed.contains(i))
            .min_by_key(|&i| (seniority(&authors[i]), order[i].hash));
        let Some(r) = next else {
            let mut roster = finish(state, reasons, refused, waiting, &order);
            roster.unadmitted = unadmitted;
            return roster;
        };
        committed.insert(r);
        let Ok(Op::Remove { key, cutoff }) = &order[r].op else {
            unreachable!("removal ops are removes")
        };
        for j in 0..n {
            if authors[j] == *key
                && !anc[j].has(r)
                && cutoff
                    .get(&hex::encode(&order[j].actor))
                    .is_none_or(|c| order[j].seq > *c)
            {
                excluded.set(j);
            }
            // Removal withdraws the removed machine's invites: a join through one made before
            // the removal (or concurrently) is refused unless the remover saw the join, the same
            // on every replica whatever reached it first.
            if let Ok(Op::Join { invite, .. }) = &order[j].op {
                let withdrawn = invites
                    .get(invite.as_str())
                    .is_some_and(|&i| authors[i] == *key && !anc[i].has(r) && i != r);
                if withdrawn && !anc[r].has(j) {
                    excluded.set(j);
                }
            }
        }
    }
}

/// Which operations are valid: each checked against the state of its valid ancestors.
///
/// Two shortcuts keep this near-linear in practice: an author that no valid operation so far
/// made an admin (and is not the founder) is refused without replaying anything, and an
/// operation made on everything before it (a linear history) is checked against the running
/// state instead of a replay of its ancestors.
fn validate(
    order: &[&OpRecord],
    anc: &[Bits],
    authors: &[String],
    excluded: &Bits,
    is_founder: &dyn Fn(&str) -> bool,
) -> (Vec<bool>, BTreeMap<usize, String>) {
    let n = order.len();
    let mut valid = vec![false; n];
    let mut reasons = BTreeMap::new();
    let mut ever_admin: BTreeSet<&str> = BTreeSet::new();
    let mut running = State::default();
    const NOT_ADMIN: &str = "its author was not an admin in the roster it was made on";
    for i in 0..n {
        let before_is_prefix = anc[i].count() == i;
        if excluded.has(i) {
            let why = if matches!(order[i].op, Ok(Op::Join { .. })) {
                "the invite was withdrawn: the admin who made it was removed"
            } else {
                "made by a removed machine after the cut-off of its removal"
            };
            reasons.insert(i, why.to_string());
            continue;
        }
        let op = match &order[i].op {
            Ok(op) => op,
            Err(e) => {
                reasons.insert(i, e.clone());
                continue;
            }
        };
        if op.is_key_op() {
            // Neither valid nor refused here: key operations are resolved after the roster.
            continue;
        }
        let author = &authors[i];
        if let Op::Add { key, .. }
        | Op::SetRole { key, .. }
        | Op::Remove { key, .. }
        | Op::Invite { id: key, .. } = op
        {
            if crate::identity::parse_public_key(key).is_err() {
                reasons.insert(i, format!("'{key}' is not a public key"));
                continue;
            }
        }
        if let Op::Join {
            invite, key, proof, ..
        } = op
        {
            let state = replay(order, anc, authors, &valid, &anc[i], is_founder);
            match join_refusal(&state, order[i], author, invite, key, proof) {
                None => {
                    valid[i] = true;
                    step(&mut running, order, anc, authors, i, is_founder);
                    // The invite may have made it an admin (the pre-filter may over-admit).
                    ever_admin.insert(key.as_str());
                }
                Some(why) => {
                    reasons.insert(i, why);
                }
            }
            continue;
        }
        if !is_founder(author) && !ever_admin.contains(author.as_str()) {
            reasons.insert(i, NOT_ADMIN.to_string());
            continue;
        }
        let replayed;
        let state = if before_is_prefix {
            &running
        } else {
            replayed = replay(order, anc, authors, &valid, &anc[i], is_founder);
            &replayed
        };
        let ok = match op {
            Op::Found { .. } => !state.removed.contains_key(author.as_str()),
            _ => state.is_admin(author, is_founder),
        };
        if !ok {
            reasons.insert(i, NOT_ADMIN.to_string());
            continue;
        }
        valid[i] = true;
        step(&mut running, order, anc, authors, i, is_founder);
        {
            match op {
                Op::Add {
                    key,
                    role: Role::Admin,
                    ..
                }
                | Op::SetRole {
                    key,
                    role: Role::Admin,
                } => {
                    ever_admin.insert(key.as_str());
                }
                _ => {}
            }
        }
    }
    (valid, reasons)
}

/// Why a join is refused in the state it was made on, if it is.
fn join_refusal(
    state: &State,
    o: &OpRecord,
    author: &str,
    invite: &str,
    key: &str,
    proof: &str,
) -> Option<String> {
    if key != author {
        return Some("a join must be signed by the joining machine".into());
    }
    let (Ok(invite_key), Ok(joiner)) = (
        crate::identity::parse_public_key(invite),
        crate::identity::parse_public_key(key),
    ) else {
        return Some("a join names no valid invite or key".into());
    };
    let Some((_, inv)) = state.invites.get(invite) else {
        return Some("the invite it names was not made by an admin (or has not arrived)".into());
    };
    let proof_ok = hex::decode(proof)
        .ok()
        .and_then(|p| <[u8; 64]>::try_from(p).ok())
        .is_some_and(|sig| {
            crate::identity::verify(&invite_key, &join_digest(&invite_key, &joiner), &sig).is_ok()
        });
    if !proof_ok {
        return Some("the join does not prove the invite's secret".into());
    }
    if inv.revoked {
        return Some("the invite was revoked".into());
    }
    if inv.used_by.is_some() {
        return Some("the invite was already used".into());
    }
    if o.time > inv.expires {
        return Some("the invite had expired".into());
    }
    None
}

/// The state made by the valid operations in `set`, in topological order.
fn replay(
    order: &[&OpRecord],
    anc: &[Bits],
    authors: &[String],
    valid: &[bool],
    set: &Bits,
    is_founder: &dyn Fn(&str) -> bool,
) -> State {
    let mut s = State::default();
    for (i, ok) in valid.iter().enumerate().take(order.len()) {
        if *ok && set.has(i) {
            step(&mut s, order, anc, authors, i, is_founder);
        }
    }
    s
}

/// Applies valid operation `i` to the state.
fn step(
    s: &mut State,
    order: &[&OpRecord],
    anc: &[Bits],
    authors: &[String],
    i: usize,
    is_founder: &dyn Fn(&str) -> bool,
) {
    let o = order[i];
    {
        let author = &authors[i];
        let Ok(op) = &o.op else { return };
        match op {
            Op::Found { name } => {
                s.members.insert(
                    author.clone(),
                    MemberState {
                        role: Role::Admin,
                        role_op: i,
                        name: name.clone(),
                        added_by: String::new(),
                        added_at: o.time,
                    },
                );
            }
            Op::Add { key, role, name } => {
                // A removal beats a concurrent add: only an add made after seeing the removal
                // re-admits.
                if let Some(r) = s.removed.get(key) {
                    if !r.ops.iter().all(|&ro| anc[i].has(ro)) {
                        return;
                    }
                    s.removed.remove(key);
                }
                match s.members.get_mut(key) {
                    Some(m) => {
                        if !name.is_empty() {
                            m.name = name.clone();
                        }
                        let before = m.role;
                        set_role(m, *role, i, anc);
                        if s.admins() == 0 {
                            // An add that demotes the last admin keeps it an admin.
                            s.members.get_mut(key).expect("present").role = before;
                        }
                    }
                    None => {
                        s.members.insert(
                            key.clone(),
                            MemberState {
                                role: *role,
                                role_op: i,
                                name: name.clone(),
                                added_by: author.clone(),
                                added_at: o.time,
                            },
                        );
                    }
                }
                if is_founder(key) && s.admins() == 0 {
                    // Re-admitting the founder as a member must not drop the last admin.
                    s.members.get_mut(key).expect("inserted").role = Role::Admin;
                }
            }
            Op::SetRole { key, role } => {
                let implicit_founder =
                    is_founder(key) && !s.members.contains_key(key) && !s.removed.contains_key(key);
                if implicit_founder {
                    s.members.insert(
                        key.clone(),
                        MemberState {
                            role: Role::Admin,
                            role_op: usize::MAX,
                            name: String::new(),
                            added_by: String::new(),
                            added_at: o.time,
                        },
                    );
                }
                let Some(m) = s.members.get(key) else {
                    return;
                };
                let mut next = m.clone();
                set_role(&mut next, *role, i, anc);
                let before = m.role;
                s.members.insert(key.clone(), next);
                if s.admins() == 0 {
                    s.members.get_mut(key).expect("present").role = before;
                }
            }
            Op::Invite {
                id,
                role,
                name,
                expires,
                ..
            } => {
                s.invites.entry(id.clone()).or_insert((
                    i,
                    Invite {
                        role: *role,
                        name: name.clone(),
                        expires: *expires,
                        by: author.clone(),
                        used_by: None,
                        revoked: false,
                    },
                ));
            }
            Op::RevokeInvite { invite } => {
                if let Some((_, inv)) = s.invites.get_mut(invite) {
                    if inv.used_by.is_none() {
                        inv.revoked = true;
                    }
                }
            }
            Op::Join { invite, key, .. } => {
                // Concurrent joins with one invite: the first in the deterministic order wins.
                let Some((_, inv)) = s.invites.get_mut(invite) else {
                    return;
                };
                if inv.used_by.is_some() || inv.revoked {
                    return;
                }
                inv.used_by = Some(key.clone());
                let (role, name, by) = (inv.role, inv.name.clone(), inv.by.clone());
                if let Some(r) = s.removed.get(key) {
                    if !r.ops.iter().all(|&ro| anc[i].has(ro)) {
                        return;
                    }
                    s.removed.remove(key);
                }
                s.members.entry(key.clone()).or_insert(MemberState {
                    role,
                    role_op: i,
                    name,
                    added_by: by,
                    added_at: o.time,
                });
            }
            Op::Epoch { .. } | Op::Seal { .. } | Op::RefuseSeal { .. } => {}
            Op::Remove { key, cutoff } => {
                if let Some(r) = s.removed.get_mut(key) {
                    // Removed twice (concurrently): the cut-offs combine.
                    r.ops.push(i);
                    for (a, c) in cutoff {
                        let e = r.cutoff.entry(a.clone()).or_insert(0);
                        *e = (*e).max(*c);
                    }
                    return;
                }
                let is_member = s.members.contains_key(key) || is_founder(key);
                if !is_member {
                    return;
                }
                let was_admin = s.is_admin(key, is_founder);
                let was = s.members.remove(key);
                if was_admin && s.admins() == 0 {
                    // Never leave the roster without an admin.
                    if let Some(m) = was {
                        s.members.insert(key.clone(), m);
                    }
                    return;
                }
                s.removed.insert(
                    key.clone(),
                    RemovalState {
                        ops: vec![i],
                        by: author.clone(),
                        cutoff: cutoff.clone(),
                    },
                );
                // Removal withdraws: every invite the removed machine made and nobody used is
                // revoked (a join made on this state is refused as revoked).
                for (_, inv) in s.invites.values_mut() {
                    if inv.by == *key && inv.used_by.is_none() {
                        inv.revoked = true;
                    }
                }
            }
        }
    }
}

/// A causally later role change replaces the role; a concurrent one settles on the lower.
fn set_role(m: &mut MemberState, role: Role, op: usize, anc: &[Bits]) {
    let follows = m.role_op == usize::MAX || anc[op].has(m.role_op);
    m.role = if follows { role } else { m.role.min(role) };
    m.role_op = op;
}

fn finish(
    state: State,
    reasons: BTreeMap<usize, String>,
    mut refused: BTreeMap<String, String>,
    waiting: usize,
    order: &[&OpRecord],
) -> Roster {
    for (i, why) in reasons {
        refused.insert(hex::encode(order[i].hash), why);
    }
    Roster {
        members: state
            .members
            .into_iter()
            .map(|(k, m)| {
                (
                    k,
                    Member {
                        role: m.role,
                        name: m.name,
                        added_by: m.added_by,
                        added_at: m.added_at,
                    },
                )
            })
            .collect(),
        removed: state
            .removed
            .into_iter()
            .map(|(k, r)| {
                (
                    k,
                    Removed {
                        removed_by: r.by,
                        cutoff: r.cutoff,
                    },
                )
            })
            .collect(),
        invites: state
            .invites
            .into_iter()
            .map(|(id, (_, inv))| (id, inv))
            .collect(),
        refused,
        waiting,
        unadmitted: 0,
    }
}
