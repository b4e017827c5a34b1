//! What each fuzz target checks. `fuzz/fuzz_targets/<name>.rs` hands libFuzzer's input to the
//! function of the same name here, and `tests/tests/fuzz_regressions.rs` replays every kept
//! input (`fuzz/seeds/<name>/`, `fuzz/regressions/<name>/`) through it under `cargo test`, so a
//! crash found once stays a test. Each check panics when an invariant breaks: hostile input is
//! refused or held, never a panic, never a store that fails SQLite's integrity check, never a
//! later honest sync that does not converge, never a roster that depends on arrival order or on
//! strangers.
//!
//! Depends on the engine, [`crate::inproc`] and [`crate::mesh`] alone: the fuzz crate includes
//! these files by path (it is its own workspace, built with coverage instrumentation).

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use arbitrary::{Arbitrary, Unstructured};
use td_engine::authority::{self, Op, OpRecord, Role};
use td_engine::hub::HubRow;
use td_engine::invite::InviteCode;
use td_engine::ops::issues::IssueFields;
use td_engine::sync::wire::{self, FrameDecoder, Message};
use td_engine::tdq::{self, eval::EvalContext, eval::QueryOptions};
use td_engine::{MachineIdentity, Store};

use crate::inproc::{self, Fate};
use crate::mesh;

/// A target's check: its input as libFuzzer hands it.
pub type Check = fn(&[u8]);

/// Every target by name, for the regression replay.
pub const TARGETS: &[(&str, Check)] = &[
    ("wire_frames", wire_frames),
    ("invite_code", invite_code),
    ("tdq_query", tdq_query),
    ("roster_ops", roster_ops),
    ("hub_rows", hub_rows),
    ("sync_session", sync_session),
];

/// Bytes from a peer's stream: split into frames (in chunks whose size the first byte picks,
/// as a network delivers them) and every payload decoded as a message, packed ones unpacked.
/// A message that decodes re-encodes to one that decodes the same.
pub fn wire_frames(data: &[u8]) {
    let (chunk, rest) = data.split_first().unwrap_or((&0, &[]));
    let mut dec = FrameDecoder::default();
    if chunk & 1 == 1 {
        // As before a peer has proven who it is.
        dec.set_limit(64 * 1024);
    }
    for part in rest.chunks(*chunk as usize + 1) {
        match dec.push(part) {
            Ok(frames) => frames.iter().for_each(|f| payload(f)),
            Err(_) => break,
        }
    }
    let _ = dec.finish();
    payload(rest);
}

fn payload(p: &[u8]) {
    let Ok(msg) = wire::decode(p) else {
        return;
    };
    let framed = wire::encode(&msg);
    let again = wire::decode(&framed[4..]).expect("a decoded message re-encodes");
    assert_eq!(again, msg, "a message survives re-encoding");
    if let Message::Packed { zstd } = &msg {
        if let Ok(inner) = wire::unpack(zstd) {
            assert!(
                !matches!(inner, Message::Hello { .. } | Message::Packed { .. }),
                "a packed message never holds a Hello or another packed message"
            );
        }
    }
}

/// A pasted invite code: decoded (bounded first) and checked offline at a time the input picks.
/// A code that decodes re-encodes to itself; a code that passes the check names a role and an
/// invite id that is the public key of the secret it carries.
pub fn invite_code(data: &[u8]) {
    let (now, text) = match data.split_at_checked(8) {
        Some((n, t)) => (i64::from_le_bytes(n.try_into().expect("8 bytes")), t),
        None => (0, data),
    };
    let Ok(s) = std::str::from_utf8(text) else {
        return;
    };
    let Ok(code) = InviteCode::decode(s) else {
        return;
    };
    assert_eq!(
        InviteCode::decode(&code.encode()).expect("a decoded code re-encodes"),
        code
    );
    if let Ok(checked) = code.clone().check(now) {
        let seed: [u8; 32] = hex::decode(&checked.code.secret)
            .expect("a checked code's secret is hex")
            .try_into()
            .expect("a checked code's secret is a seed");
        assert_eq!(
            MachineIdentity::from_seed(seed).public_key_hex(),
            checked.id,
            "the invite id is the key of the secret the code carries"
        );
        assert!(checked.expires >= now, "a checked code has not expired");
    }
}

thread_local! {
    static QUERY_PROJECT: RefCell<Option<mesh::Node>> = const { RefCell::new(None) };
}

/// A TDQ query as typed (`td query`, `td list -f`, a board's query, `td serve`'s `search`):
/// parsed (bounded first), and when it parses, run over a small project with parents,
/// dependencies, labels and comments.
pub fn tdq_query(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(q) = tdq::parse(s) else {
        return;
    };
    QUERY_PROJECT.with(|cell| {
        let mut cell = cell.borrow_mut();
        let node = cell.get_or_insert_with(query_project);
        let ctx = EvalContext::new(&node.project.session.id);
        let all = tdq::eval::evaluate(
            node.project.store.conn(),
            &q,
            &ctx,
            &QueryOptions::default(),
        )
        .expect("a parsed query runs");
        assert!(all.matched <= 6, "a query matches only issues that exist");
    });
}

fn query_project() -> mesh::Node {
    let mut node = mesh::project(1).pop().expect("one node");
    let p = &mut node.project;
    let epic = p
        .create(
            &IssueFields {
                title: Some("Epic".into()),
                issue_type: Some("epic".into()),
                ..Default::default()
            },
            &[],
            &[],
        )
        .expect("create");
    let mut ids = vec![epic.id.clone()];
    for i in 0..5 {
        let f = IssueFields {
            title: Some(format!("Task {i} ünï")),
            labels: Some(vec![format!("l{}", i % 2)]),
            priority: Some(format!("P{}", i % 4)),
            parent: (i % 2 == 0).then(|| epic.id.clone()),
            description: Some("- a bullet\n".into()),
            ..Default::default()
        };
        let deps: Vec<String> = ids.last().into_iter().cloned().collect();
        let issue = p.create(&f, &deps, &[]).expect("create");
        p.comment(&issue.id, "a comment").expect("comment");
        ids.push(issue.id);
    }
    node
}

/// A small pool of machines for roster operations: 0 is the founder; 4 and 5 are strangers
/// (no operation of anyone else names them); 6 and 7 are invite keys.
struct Pool {
    keys: Vec<MachineIdentity>,
}

thread_local! {
    static POOL: Pool = Pool {
        keys: (0..8u8).map(|i| MachineIdentity::from_seed([i + 1; 32])).collect(),
    };
}

const STRANGERS: [usize; 2] = [4, 5];

/// One roster operation as the input describes it.
#[derive(Debug, Arbitrary)]
enum FuzzOp {
    Found,
    Add {
        key: u8,
        admin: bool,
    },
    SetRole {
        key: u8,
        admin: bool,
    },
    Remove {
        key: u8,
        cutoff: u8,
    },
    Invite {
        invite: u8,
        admin: bool,
        expires: i16,
    },
    Join {
        invite: u8,
        valid: bool,
    },
    Revoke {
        invite: u8,
    },
    Epoch {
        seal_to: u8,
    },
    Seal {
        to: u8,
    },
    RefuseSeal,
    Junk(String),
}

/// Roster operations (the resolver's input): a DAG of operations by members, admins, strangers
/// and invitees, real join proofs among forged ones. The resolved roster does not depend on the
/// order the operations arrive in, nor on duplicates, nor on anything strangers wrote; no
/// stranger is ever a member.
pub fn roster_ops(data: &[u8]) {
    let mut u = Unstructured::new(data);
    POOL.with(|pool| {
        let Ok(ops) = draw_ops(&mut u, pool) else {
            return;
        };
        let founder = pool.keys[0].public_key_hex();
        let is_founder = |k: &str| k == founder;
        let roster = authority::resolve(&ops, &is_founder);
        // Arrival order and duplicates change nothing.
        let mut shuffled = ops.clone();
        shuffled.reverse();
        if let Ok(k) = u.int_in_range(0..=ops.len().max(1)) {
            let k = k.min(shuffled.len());
            shuffled.rotate_left(k);
        }
        if let Some(first) = ops.first() {
            shuffled.push(first.clone());
        }
        let again = authority::resolve(&shuffled, &is_founder);
        assert_eq!(again.members, roster.members, "members depend on order");
        assert_eq!(again.removed, roster.removed, "removals depend on order");
        assert_eq!(again.invites, roster.invites, "invites depend on order");
        assert_eq!(again.refused, roster.refused, "refusals depend on order");
        // Strangers change nothing and are never members.
        let strangers: Vec<String> = STRANGERS
            .iter()
            .map(|&i| pool.keys[i].public_key_hex())
            .collect();
        let without: Vec<OpRecord> = ops
            .iter()
            .filter(|o| !strangers.contains(&hex::encode(o.author)))
            .cloned()
            .collect();
        let clean = authority::resolve(&without, &is_founder);
        assert_eq!(clean.members, roster.members, "strangers changed members");
        assert_eq!(clean.removed, roster.removed, "strangers changed removals");
        assert_eq!(clean.invites, roster.invites, "strangers changed invites");
        for s in &strangers {
            assert!(!roster.members.contains_key(s), "a stranger is a member");
        }
    });
}

fn draw_ops(u: &mut Unstructured, pool: &Pool) -> arbitrary::Result<Vec<OpRecord>> {
    let n = u.int_in_range(0..=40usize)?;
    let mut ops: Vec<OpRecord> = Vec::with_capacity(n);
    // Which of the operations so far were written by strangers (others never build on them,
    // as no honest machine holds a stranger's record in its roster document).
    let mut by_stranger: Vec<bool> = Vec::new();
    for i in 0..n {
        let author = u.int_in_range(0..=5usize)?;
        let stranger = STRANGERS.contains(&author);
        let fop = FuzzOp::arbitrary(u)?;
        let invite_key = |k: u8| &pool.keys[6 + (k as usize % 2)];
        let role = |admin: bool| if admin { Role::Admin } else { Role::Member };
        let honest_key = |k: u8| {
            // Honest operations never name strangers; strangers name anyone.
            let k = k as usize % 6;
            let k = if !stranger && STRANGERS.contains(&k) {
                1
            } else {
                k
            };
            pool.keys[k].public_key_hex()
        };
        let op = match fop {
            FuzzOp::Found => Op::Found { name: "f".into() },
            FuzzOp::Add { key: k, admin } => Op::Add {
                key: honest_key(k),
                role: role(admin),
                name: format!("m{k}"),
            },
            FuzzOp::SetRole { key: k, admin } => Op::SetRole {
                key: honest_key(k),
                role: role(admin),
            },
            FuzzOp::Remove { key: k, cutoff } => Op::Remove {
                key: honest_key(k),
                cutoff: [(hex::encode([k % 6; 16]), cutoff as u64)].into(),
            },
            FuzzOp::Invite {
                invite,
                admin,
                expires,
            } => Op::Invite {
                id: invite_key(invite).public_key_hex(),
                role: role(admin),
                name: "joiner".into(),
                expires: expires as i64,
                keys: String::new(),
            },
            FuzzOp::Join { invite, valid } => {
                let inv = invite_key(invite);
                let me = pool.keys[author].public_key();
                // Strangers never hold an invite's secret (whoever does may join).
                let proof = if valid && !stranger {
                    inv.sign(&authority::join_digest(&inv.public_key(), &me))
                } else {
                    [7u8; 64]
                };
                Op::Join {
                    invite: inv.public_key_hex(),
                    key: pool.keys[author].public_key_hex(),
                    proof: hex::encode(proof),
                    on: vec![],
                }
            }
            FuzzOp::Revoke { invite } => Op::RevokeInvite {
                invite: invite_key(invite).public_key_hex(),
            },
            FuzzOp::Epoch { seal_to } => Op::Epoch {
                id: hex::encode([seal_to; 32]),
                removed: vec![],
                seals: [(honest_key(seal_to), "00".repeat(80))].into(),
                commit: String::new(),
            },
            FuzzOp::Seal { to } => Op::Seal {
                epoch: hex::encode([to; 32]),
                to: honest_key(to),
                sealed: "00".repeat(80),
            },
            FuzzOp::RefuseSeal => Op::RefuseSeal {
                epoch: hex::encode([0u8; 32]),
            },
            FuzzOp::Junk(why) => {
                // An unreadable operation.
                ops.push(record(i, pool, author, vec![], Err(why)));
                by_stranger.push(stranger);
                continue;
            }
        };
        let mut deps = Vec::new();
        for _ in 0..u.int_in_range(0..=2u8)? {
            if i == 0 {
                break;
            }
            let d = u.int_in_range(0..=i - 1)?;
            if stranger || !by_stranger[d] {
                deps.push(ops[d].hash);
            }
        }
        ops.push(record(i, pool, author, deps, Ok(op)));
        by_stranger.push(stranger);
    }
    Ok(ops)
}

fn record(
    i: usize,
    pool: &Pool,
    author: usize,
    deps: Vec<[u8; 32]>,
    op: Result<Op, String>,
) -> OpRecord {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update((i as u64).to_le_bytes());
    h.update(format!("{op:?}{deps:?}{author}"));
    OpRecord {
        hash: h.finalize().into(),
        deps,
        author: pool.keys[author].public_key(),
        actor: vec![author as u8; 16],
        seq: i as u64 + 1,
        time: 0,
        op,
    }
}

/// Two replicas of one project, each with work the other lacks, kept as database files; each
/// case copies them (so cases never see each other's effects), with what an honest round makes
/// of them.
struct Pair {
    dir: tempfile::TempDir,
    identities: [MachineIdentity; 2],
    /// The sender's records as a hub holds them.
    rows: Vec<HubRow>,
    /// The export both replicas hold after an honest round.
    converged: String,
    /// The receiver's export after it pulled the sender's rows.
    pulled: String,
}

thread_local! {
    static PAIR: Pair = pair();
}

fn pair() -> Pair {
    let mut nodes = mesh::project(2);
    for (n, count) in [(0, 3), (1, 8)] {
        for i in 0..count {
            let f = IssueFields {
                title: Some(format!("Node {n} issue {i} \u{1b}[2J ünï")),
                labels: Some(vec!["fuzz".into()]),
                ..Default::default()
            };
            let issue = nodes[n].project.create(&f, &[], &[]).expect("create");
            nodes[n]
                .project
                .comment(&issue.id, "- a comment")
                .expect("comment");
        }
    }
    let dir = tempfile::tempdir().expect("temp dir");
    for (i, node) in nodes.iter().enumerate() {
        node.project
            .store
            .snapshot_to(&dir.path().join(format!("{i}.db")))
            .expect("snapshot");
    }
    let identities = [nodes[0].identity.clone(), nodes[1].identity.clone()];
    let rows: Vec<HubRow> = nodes[1]
        .project
        .store
        .outgoing(0, 100_000, usize::MAX / 4)
        .expect("outgoing")
        .into_iter()
        .enumerate()
        .map(|(i, r)| HubRow {
            seq: i as i64 + 1,
            size: (r.body.len() + r.signature.len()) as u64,
            body: r.body,
            signature: r.signature,
        })
        .collect();
    let mut p = Pair {
        dir,
        identities,
        rows,
        converged: String::new(),
        pulled: String::new(),
    };
    let cases = tempfile::tempdir().expect("temp dir");
    let mut r = p.open(0, cases.path());
    r.apply_hub_rows("hub", &p.rows, &[]).expect("honest rows");
    p.pulled = export(&r);
    let (mut a, mut b) = (
        p.open(0, &cases.path().join("a")),
        p.open(1, &cases.path().join("b")),
    );
    inproc::clean_round(&mut a, &mut b);
    p.converged = export(&a);
    assert_eq!(p.converged, export(&b), "an honest round converges");
    p
}

impl Pair {
    /// A copy of replica `i` under `dir`, opened.
    fn open(&self, i: usize, dir: &Path) -> Store {
        let root: PathBuf = dir.to_path_buf();
        std::fs::create_dir_all(root.join(".todos")).expect("project dir");
        std::fs::copy(
            self.dir.path().join(format!("{i}.db")),
            root.join(".todos").join("issues.db"),
        )
        .expect("copy");
        Store::open(&root, self.identities[i].clone()).expect("open a copy")
    }
}

fn export(s: &Store) -> String {
    td_engine::export::export_json_string(s.conn()).expect("export")
}

fn integrity(s: &Store) {
    let ok: String = s
        .conn()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity check");
    assert_eq!(ok, "ok", "the database is sound");
}

/// What a case does to the honest rows or frames (also drawn by `tests/tests/fuzz_sync.rs`).
#[derive(Debug, Clone, Arbitrary)]
pub enum Mangle {
    /// XOR bytes of one item (positions modulo its length).
    Flip {
        /// Which item (modulo their number).
        item: u16,
        /// Positions and the values XORed there.
        at: Vec<(u16, u8)>,
    },
    /// Cut one item short.
    Cut {
        /// Which item (modulo their number).
        item: u16,
        /// Bytes kept (modulo its length plus one).
        keep: u16,
    },
    /// Insert a junk item.
    Splice {
        /// Where (modulo their number plus one).
        item: u16,
        /// The junk.
        junk: Vec<u8>,
    },
    /// Swap two items.
    Swap {
        /// One item (modulo their number).
        a: u16,
        /// The other.
        b: u16,
    },
    /// Junk items only.
    Junk(Vec<Vec<u8>>),
}

/// `items` as `m` mangles them.
pub fn mangle(items: &[Vec<u8>], m: Mangle) -> Vec<Vec<u8>> {
    let mut items = items.to_vec();
    let n = items.len().max(1);
    match m {
        Mangle::Flip { item, at } => {
            if let Some(f) = items.get_mut(item as usize % n).filter(|f| !f.is_empty()) {
                let len = f.len();
                for (pos, x) in at {
                    f[pos as usize % len] ^= x;
                }
            }
        }
        Mangle::Cut { item, keep } => {
            if let Some(f) = items.get_mut(item as usize % n) {
                f.truncate(keep as usize % (f.len() + 1));
            }
        }
        Mangle::Splice { item, junk } => items.insert(item as usize % (items.len() + 1), junk),
        Mangle::Swap { a, b } => {
            if !items.is_empty() {
                items.swap(a as usize % n, b as usize % n);
            }
        }
        Mangle::Junk(j) => items = j,
    }
    items
}

/// Rows a hub hands over (a hostile hub, or rows planted with the hub token): the sender's
/// honest rows mangled, some with their signatures, part as the page and part as read-ahead.
/// They are refused, held or applied, never an error; the store stays sound; the honest rows
/// pulled afterwards converge to what an honest pull gives.
pub fn hub_rows(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let (Ok(m), Ok(sigs), Ok(split)) = (
        Mangle::arbitrary(&mut u),
        bool::arbitrary(&mut u),
        u16::arbitrary(&mut u),
    ) else {
        return;
    };
    hub_rows_case(m, sigs, split);
}

/// [`hub_rows`] for one drawn case: the mangling, whether rows keep their signatures, and
/// where the page ends and the read-ahead begins (`tests/tests/fuzz_sync.rs` draws these with
/// proptest).
pub fn hub_rows_case(m: Mangle, sigs: bool, split: u16) {
    PAIR.with(|p| {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut r = p.open(0, dir.path());
        let bodies: Vec<Vec<u8>> = p.rows.iter().map(|r| r.body.clone()).collect();
        let hostile: Vec<HubRow> = mangle(&bodies, m)
            .into_iter()
            .enumerate()
            .map(|(i, body)| HubRow {
                seq: i as i64 + 1,
                size: body.len() as u64,
                signature: p
                    .rows
                    .get(i)
                    .filter(|_| sigs)
                    .map(|r| r.signature.clone())
                    .unwrap_or_default(),
                body,
            })
            .collect();
        let cut = split as usize % (hostile.len() + 1);
        r.apply_hub_rows("hub", &hostile[..cut], &hostile[cut..])
            .expect("hostile rows are refused, never an error");
        integrity(&r);
        let honest: Vec<HubRow> = p
            .rows
            .iter()
            .map(|h| HubRow {
                seq: h.seq + 10_000,
                ..h.clone()
            })
            .collect();
        let wanted = r
            .hub_read_ahead("hub", &honest, &[], true, true)
            .expect("read-ahead");
        assert!(wanted.len() <= td_engine::hub::READ_AHEAD_ACTORS);
        r.apply_hub_rows("hub", &honest, &[])
            .expect("honest rows apply");
        assert_eq!(
            export(&r),
            p.pulled,
            "honest rows converge after hostile ones"
        );
    });
}

/// Two replicas' sans-IO sync sessions in one round, every frame each way given a fate the
/// input draws: delivered, lost, duplicated, delayed, a byte flipped, or cut short. Whatever
/// happens, neither store fails its integrity check, and the next honest round leaves both
/// with the same export an honest round gives.
pub fn sync_session(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let mut fates: Vec<Fate> = Vec::new();
    while let Ok(f) = u.int_in_range(0..=9u8) {
        fates.push(match f {
            0 => Fate::Drop,
            1 => Fate::Duplicate,
            2 => Fate::Delay,
            3 => match (u16::arbitrary(&mut u), u8::arbitrary(&mut u)) {
                (Ok(at), Ok(x)) if x != 0 => Fate::Flip(at as usize, x),
                _ => Fate::Deliver,
            },
            4 => Fate::Cut(u16::arbitrary(&mut u).unwrap_or(0) as usize),
            _ => Fate::Deliver,
        });
        if fates.len() >= 256 {
            break;
        }
    }
    PAIR.with(|p| {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut a = p.open(0, &dir.path().join("a"));
        let mut b = p.open(1, &dir.path().join("b"));
        let mut it = fates.into_iter();
        let _ = inproc::round(&mut a, &mut b, move || it.next().unwrap_or(Fate::Deliver));
        integrity(&a);
        integrity(&b);
        inproc::clean_round(&mut a, &mut b);
        let (ea, eb) = (export(&a), export(&b));
        assert_eq!(ea, eb, "replicas converge after a hostile round");
        assert_eq!(
            ea, p.converged,
            "nothing lost or invented by a hostile round"
        );
    });
}
