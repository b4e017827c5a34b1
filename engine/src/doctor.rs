//! `td doctor`: checks a replica's database and change log without changing anything. The log
//! is read in one pass, a writer at a time: every record's hash, its place in its writer's
//! chain, every signature present, and that each writer's chain ends signed; then what is
//! held, waiting, set aside or quarantined, and what is not pushed yet.

use rusqlite::Connection;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::identity;
use crate::record::RecordBody;

/// One check: its name, whether it passed, and what was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// Passed.
    pub ok: bool,
    /// The figures, or what is wrong and what to do.
    pub detail: String,
}

/// Everything `td doctor` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DoctorReport {
    /// Every check passed (warnings do not fail it).
    pub ok: bool,
    /// The checks, in order.
    pub checks: Vec<Check>,
    /// Records in the log.
    pub records: u64,
    /// Writers (actors) in the log.
    pub writers: u64,
    /// Signatures verified.
    pub signatures: u64,
    /// Records held: their machine is not admitted (yet).
    pub held: u64,
    /// Records waiting for an earlier record of their document.
    pub waiting: u64,
    /// Records set aside (a document refused them, or fork recovery moved them).
    pub set_aside: u64,
    /// Hub rows quarantined (they can never apply).
    pub quarantined: u64,
    /// Table rows edited outside td (`outside_edits`).
    pub outside_edits: Vec<crate::outside_edits::OutsideEdit>,
}

fn check(name: &str, ok: bool, detail: String) -> Check {
    Check {
        name: name.into(),
        ok,
        detail,
    }
}

fn count(conn: &Connection, sql: &str) -> Result<u64> {
    Ok(conn.query_row(sql, [], |r| r.get::<_, i64>(0))? as u64)
}

/// Examines the database behind `conn`; `pending` are (hub, records not pushed yet).
pub(crate) fn examine(conn: &Connection, pending: &[(String, i64)]) -> Result<DoctorReport> {
    let mut checks = Vec::new();
    let integrity: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    checks.push(check(
        "database",
        integrity == "ok",
        format!("SQLite quick_check: {integrity}"),
    ));
    // The log, a writer at a time, in sequence order.
    let mut stmt = conn.prepare(
        "SELECT actor, seq, hash, body, signature FROM crdt_changes ORDER BY actor, seq",
    )?;
    let mut rows = stmt.query([])?;
    let (mut records, mut writers, mut signatures) = (0u64, 0u64, 0u64);
    let mut bad_hash = Vec::new();
    let mut broken_chain = Vec::new();
    let mut bad_signature = Vec::new();
    let mut unsigned_tail = Vec::new();
    let mut last: Option<(Vec<u8>, u64, [u8; 32], bool)> = None; // actor, seq, hash, signed
    let short = |a: &[u8]| hex::encode(&a[..4.min(a.len())]);
    let end_writer = |last: &Option<(Vec<u8>, u64, [u8; 32], bool)>, out: &mut Vec<String>| {
        if let Some((actor, seq, _, false)) = last {
            out.push(format!("writer {} ends unsigned at {seq}", short(actor)));
        }
    };
    while let Some(row) = rows.next()? {
        let actor: Vec<u8> = row.get(0)?;
        let seq = row.get::<_, i64>(1)? as u64;
        let stored: Vec<u8> = row.get(2)?;
        let body: Vec<u8> = row.get(3)?;
        let signature: Vec<u8> = row.get(4)?;
        records += 1;
        let new_writer = last.as_ref().is_none_or(|(a, ..)| *a != actor);
        if new_writer {
            end_writer(&last, &mut unsigned_tail);
            writers += 1;
        }
        let hash: [u8; 32] = Sha256::digest(&body).into();
        let at = format!("writer {} record {seq}", short(&actor));
        if stored != hash {
            bad_hash.push(at.clone());
        }
        let decoded: Option<RecordBody> = postcard::from_bytes(&body).ok();
        match &decoded {
            None => bad_hash.push(format!("{at}: body does not decode")),
            Some(b) => {
                let expected_prev = match (&last, new_writer) {
                    (Some((_, s, h, _)), false) if *s + 1 == seq => Some(*h),
                    (_, true) if seq == 1 => Some([0u8; 32]),
                    _ => None, // a gap: the chain resumes where the records arrive
                };
                if b.seq != seq || b.actor[..] != actor[..] {
                    broken_chain.push(format!("{at}: body says seq {}", b.seq));
                } else if expected_prev.is_some_and(|p| p != b.prev) {
                    broken_chain.push(format!("{at}: does not follow the previous record"));
                }
                if !signature.is_empty() {
                    let sig: std::result::Result<[u8; 64], _> = signature.as_slice().try_into();
                    match sig.map(|s| identity::verify(&b.author, &hash, &s)) {
                        Ok(Ok(())) => signatures += 1,
                        _ => bad_signature.push(at.clone()),
                    }
                }
            }
        }
        last = Some((actor, seq, hash, !signature.is_empty()));
    }
    end_writer(&last, &mut unsigned_tail);
    let listed = |v: &[String]| {
        let mut s = v.iter().take(5).cloned().collect::<Vec<_>>().join("; ");
        if v.len() > 5 {
            s.push_str(&format!("; and {} more", v.len() - 5));
        }
        s
    };
    checks.push(check(
        "record hashes",
        bad_hash.is_empty(),
        if bad_hash.is_empty() {
            format!("{records} records from {writers} writers hash to what is stored")
        } else {
            format!(
                "{} records do not match their hash: {}",
                bad_hash.len(),
                listed(&bad_hash)
            )
        },
    ));
    checks.push(check(
        "writer chains",
        broken_chain.is_empty(),
        if broken_chain.is_empty() {
            "every record follows its writer's previous record".into()
        } else {
            listed(&broken_chain)
        },
    ));
    checks.push(check(
        "signatures",
        bad_signature.is_empty() && unsigned_tail.is_empty(),
        match (bad_signature.is_empty(), unsigned_tail.is_empty()) {
            (true, true) => {
                format!("{signatures} signatures verify; every writer's chain ends signed")
            }
            (false, _) => format!(
                "{} signatures do not verify: {}",
                bad_signature.len(),
                listed(&bad_signature)
            ),
            (true, false) => listed(&unsigned_tail),
        },
    ));
    let held = count(conn, "SELECT count(*) FROM crdt_changes WHERE applied = 2")?;
    let waiting = count(conn, "SELECT count(*) FROM crdt_changes WHERE applied = 0")?;
    let set_aside = count(conn, "SELECT count(*) FROM crdt_changes WHERE applied = 3")?
        + count(conn, "SELECT count(*) FROM crdt_set_aside")?;
    let quarantined = count(conn, "SELECT count(*) FROM crdt_quarantine")?;
    checks.push(check(
        "held records",
        true,
        if held == 0 {
            "none".into()
        } else {
            format!("{held} records of machines not admitted here (see 'td sync status'); they apply once an admin admits them")
        },
    ));
    // The roster (docs/membership.md): operations refused, waiting, and those of machines
    // nobody admitted (a stranger's, never read).
    let roster = crate::roster::resolve(conn)?;
    checks.push(check(
        "roster",
        true,
        format!(
            "{} member(s), {} removed; {} operation(s) refused, {} waiting for an earlier one; {} by machines nobody admitted (stored, never read)",
            roster.members.len(),
            roster.removed.len(),
            roster.refused.len(),
            roster.waiting,
            roster.unadmitted
        ),
    ));
    let late = crate::roster::late_joins(conn)?;
    // A doubt, not a fault (a replica that was offline when the join was made on time sees
    // the same): reported, and left to an admin.
    checks.push(check(
        "late joins",
        true,
        if late.is_empty() {
            "no member joined through an invite that had expired when its join arrived".into()
        } else {
            late.values().cloned().collect::<Vec<_>>().join("; ")
        },
    ));
    checks.push(check(
        "waiting records",
        true,
        format!("{waiting} waiting for an earlier record of their document"),
    ));
    checks.push(check(
        "set aside",
        true,
        format!("{set_aside} records set aside (docs/protocol.md, \"Forks\"); {quarantined} hub rows quarantined"),
    ));
    // Encryption (docs/encryption.md): records this machine cannot open, and why.
    let enc = crate::keyring::status(conn)?;
    let no_seal: Vec<String> = conn
        .prepare(
            "SELECT e.id FROM crdt_epochs e WHERE NOT EXISTS \
             (SELECT 1 FROM crdt_epoch_keys k WHERE k.epoch = e.id) ORDER BY e.idx",
        )?
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<std::result::Result<_, _>>()?;
    checks.push(check(
        "encryption",
        true,
        match (enc.epochs, enc.waiting_for_key, enc.unreadable) {
            (0, _, _) => "not started (the next write starts the first epoch)".into(),
            (_, 0, 0) if no_seal.is_empty() => format!(
                "{} epoch(s), every key held; {} plaintext record(s) from before the first",
                enc.epochs, enc.plaintext_records
            ),
            (_, w, u) => format!(
                "{w} sealed record(s) wait for a key and {u} do not open; no key here for epoch(s) {}: the epoch's key has not been sealed to this machine yet (a member seals it on its next sync after admitting this machine), or this machine was removed before it",
                no_seal.iter().map(|e| &e[..16]).collect::<Vec<_>>().join(", "),
            ),
        },
    ));
    for (hub, n) in pending {
        checks.push(check(
            "pending pushes",
            true,
            format!("{n} records not pushed to {hub} yet ('td sync' sends them)"),
        ));
    }
    Ok(DoctorReport {
        ok: checks.iter().all(|c| c.ok),
        checks,
        records,
        writers,
        signatures,
        held,
        waiting,
        set_aside,
        quarantined,
        outside_edits: Vec::new(),
    })
}
