//! One-line invites: `td member invite` makes one, `td join <code>` uses it.
//!
//! An invite is a roster operation signed by an admin (`authority::Op::Invite`), written under
//! an actor of its own (its first and only record), so it can travel inside the code and be
//! stored by a machine that holds nothing else of the project yet. The code also carries the
//! invite's secret: an ed25519 seed whose public key is the invite id. The joiner signs its own
//! machine key with it (`authority::join_digest`), so the proof in the log is useless to
//! anyone else, and pushes the invite record with its join before any of its own work.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::authority::{self, Op, Role};
use crate::error::{invalid, EngineError, Result};
use crate::identity::{self, MachineIdentity};
use crate::project::Project;
use crate::record::SignedRecord;
use crate::roster::{self, ROSTER_ID};
use crate::sync::{SyncStore, WireRun};

/// What every invite code starts with (and its format version).
pub const CODE_PREFIX: &str = "tdjoin1_";

/// The longest code accepted (checked before decoding).
pub const MAX_CODE_LEN: usize = 16 * 1024;

/// Everything a new machine needs to join, as carried in the code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteCode {
    /// The project to join.
    pub project: String,
    /// The inviting admin's public key (hex).
    pub inviter: String,
    /// A hub to sync through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub: Option<String>,
    /// A peer (`host:port`, serving as the inviter) to sync with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// The invite's secret (hex ed25519 seed); its public key is the invite id.
    pub secret: String,
    /// The epoch keys the inviter held (epoch id hex → key hex): whoever holds this code may
    /// join, so it may read too, and the joiner reads the history on its first sync
    /// (docs/encryption.md). Keep the code as secret as a password.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub keys: std::collections::BTreeMap<String, String>,
    /// The signed invite record (base64 of its encoded body).
    pub record: String,
    /// The record's signature (hex).
    pub signature: String,
}

/// A made invite.
#[derive(Debug, Clone)]
pub struct MadeInvite {
    /// The one-line code.
    pub code: String,
    /// The invite id (its public key, hex).
    pub id: String,
    /// Role granted.
    pub role: Role,
    /// Unix seconds.
    pub expires: i64,
}

/// An invite code checked offline: signed by the inviter, for its project, not expired, and
/// holding the secret of the invite it carries.
#[derive(Debug, Clone)]
pub struct CheckedInvite {
    /// The code's fields.
    pub code: InviteCode,
    /// The invite id (hex).
    pub id: String,
    /// Role granted.
    pub role: Role,
    /// Name for the joiner.
    pub name: String,
    /// Unix seconds.
    pub expires: i64,
    /// Whether the inviter's signed record vouches for the code's epoch keys (false only for
    /// codes from before invites signed them: those keys are kept unconfirmed).
    pub keys_signed: bool,
    record: SignedRecord,
    change_hash: [u8; 32],
    secret: MachineIdentity,
}

impl InviteCode {
    /// The one-line form.
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).expect("invite codes always encode");
        format!(
            "{CODE_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
        )
    }

    /// Reads a code as pasted (bounded before anything is decoded).
    pub fn decode(s: &str) -> Result<InviteCode> {
        let s = s.trim();
        if s.len() > MAX_CODE_LEN {
            return Err(invalid(format!(
                "invite code is {} bytes, more than any invite ({MAX_CODE_LEN})",
                s.len()
            )));
        }
        let body = s.strip_prefix(CODE_PREFIX).ok_or_else(|| {
            invalid(format!(
                "not a td invite code: it should start with '{CODE_PREFIX}' (ask an admin for 'td member invite')"
            ))
        })?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| invalid("invite code is damaged (not base64): copy the whole line"))?;
        serde_json::from_slice(&bytes)
            .map_err(|_| invalid("invite code is damaged: copy the whole line"))
    }

    /// Checks the code offline (`now` in unix seconds): every refusal here happens before
    /// anything is written.
    pub fn check(self, now: i64) -> Result<CheckedInvite> {
        let forged = |why: &str| invalid(format!("invite refused: {why}"));
        let signature = hex::decode(&self.signature).map_err(|_| forged("damaged signature"))?;
        let encoded = base64::engine::general_purpose::STANDARD
            .decode(&self.record)
            .map_err(|_| forged("damaged record"))?;
        let record = SignedRecord::decode_verified(&encoded, &signature)
            .map_err(|_| forged("its record is not signed by the machine it names"))?;
        let b = &record.body;
        if hex::encode(b.author) != self.inviter {
            return Err(forged("its record was not made by the inviter it names"));
        }
        if b.project != self.project {
            return Err(forged("its record belongs to another project"));
        }
        if b.doc != ROSTER_ID || b.seq != 1 || b.prev != [0; 32] {
            return Err(forged("its record is not an invite"));
        }
        let change = automerge::Change::from_bytes(b.change.clone())
            .map_err(|_| forged("its record holds no readable change"))?;
        let Some(Ok(Op::Invite {
            id,
            role,
            name,
            expires,
            keys,
        })) = change.message().map(serde_json::from_str::<Op>)
        else {
            return Err(forged("its record is not an invite"));
        };
        // The keys travel beside the signed record: they must be the ones it names.
        let keys_signed = !keys.is_empty();
        if keys_signed && keys != keys_digest(&self.keys) {
            return Err(forged(
                "its epoch keys are not the ones the inviter signed (the code was altered): ask an admin for a new one ('td member invite')",
            ));
        }
        let seed: [u8; 32] = hex::decode(&self.secret)
            .ok()
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| forged("damaged secret"))?;
        let secret = MachineIdentity::from_seed(seed);
        if secret.public_key_hex() != id {
            return Err(forged("its secret does not belong to its invite"));
        }
        if expires < now {
            return Err(invalid(format!(
                "invite expired at {}: ask an admin for a new one ('td member invite')",
                chrono::DateTime::from_timestamp(expires, 0)
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default()
            )));
        }
        Ok(CheckedInvite {
            change_hash: change.hash().0,
            code: self,
            id,
            role,
            name,
            expires,
            keys_signed,
            record,
            secret,
        })
    }
}

/// What an invite record signs of the epoch keys its code carries: SHA-256 over each entry
/// (epoch id hex, key hex) in order, hex. Empty when there is no key (nothing to vouch for).
pub fn keys_digest(keys: &std::collections::BTreeMap<String, String>) -> String {
    use sha2::Digest;
    if keys.is_empty() {
        return String::new();
    }
    let mut h = sha2::Sha256::new();
    h.update(b"td-invite-keys-v1\0");
    for (epoch, key) in keys {
        h.update(epoch.as_bytes());
        h.update([0]);
        h.update(key.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())
}

/// The outcome of a join, once the invite's roster has arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinStatus {
    /// This machine is a member, with this role.
    Member(Role),
    /// The invite was used by another machine first.
    UsedByOther(String),
    /// The invite was revoked.
    Revoked,
    /// The inviter's roster has not arrived yet (nothing synced, or the inviter has not
    /// published it): the join waits, and completes on a later sync.
    Waiting,
}

impl Project {
    /// `td member invite`: an invite for a machine this admin does not know yet.
    pub fn member_invite(
        &mut self,
        role: Role,
        name: &str,
        ttl_secs: i64,
        hub: Option<&str>,
        peer: Option<&str>,
    ) -> Result<MadeInvite> {
        if ttl_secs <= 0 {
            return Err(invalid(
                "--expires must be a positive duration (e.g. 7d, 12h)",
            ));
        }
        let roster = roster::stored(self.store.conn())?;
        self.require_admin(&roster)?;
        let secret = MachineIdentity::generate();
        let id = secret.public_key_hex();
        let expires = chrono::Utc::now().timestamp() + ttl_secs;
        // The invite gets an actor of its own: a session named after it on this machine.
        let session = format!(
            "ses_{}_inv{}",
            self.store.identity().fingerprint(),
            &id[..8]
        );
        let me = self.session.id.clone();
        let keys = self.store.write(&me, |tx| {
            // The founding (and the project's first epoch) comes first, so its key is carried.
            tx.ensure_founder()?;
            let keys = crate::keyring::held_keys(tx.conn())?;
            let op = Op::Invite {
                id: id.clone(),
                role,
                name: name.to_string(),
                expires,
                keys: keys_digest(&keys),
            };
            tx.act_as(&session);
            crate::write::write_op(tx, &op)?;
            Ok(keys)
        })?;
        let (body, signature): (Vec<u8>, Vec<u8>) = self.store.conn().query_row(
            "SELECT body, signature FROM crdt_changes WHERE session_id = ?1 AND doc_id = ?2 AND seq = 1",
            [&session, ROSTER_ID],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let code = InviteCode {
            project: self.store.project_id()?,
            inviter: self.store.identity().public_key_hex(),
            hub: hub.map(str::to_string),
            peer: peer.map(str::to_string),
            secret: hex::encode(secret.seed()),
            keys,
            record: base64::engine::general_purpose::STANDARD.encode(body),
            signature: hex::encode(signature),
        };
        Ok(MadeInvite {
            code: code.encode(),
            id,
            role,
            expires,
        })
    }

    /// `td member revoke-invite`: withdraws an unused invite (by id or a unique prefix).
    pub fn member_revoke_invite(&mut self, id: &str) -> Result<String> {
        let roster = roster::resolve(self.store.conn())?;
        self.require_admin(&roster)?;
        let hits: Vec<&String> = roster
            .invites
            .iter()
            .filter(|(k, i)| k.starts_with(id.trim()) && i.used_by.is_none() && !i.revoked)
            .map(|(k, _)| k)
            .collect();
        let invite = match hits.as_slice() {
            [one] if !id.trim().is_empty() => (*one).clone(),
            [] | [_] => {
                return Err(crate::error::not_found(format!(
                    "no pending invite '{id}' (see 'td member list')"
                )))
            }
            _ => {
                return Err(invalid(format!(
                    "'{id}' names several invites: give more of it"
                )))
            }
        };
        let me = self.session.id.clone();
        let op = Op::RevokeInvite {
            invite: invite.clone(),
        };
        self.store
            .write(&me, |tx| crate::write::write_op(tx, &op))?;
        Ok(invite)
    }

    /// What `td join --adopt` would move into the joined project: entities per td table.
    pub fn adopt_counts(&self) -> Result<std::collections::BTreeMap<String, usize>> {
        crate::migrate::entity_counts(self.store.conn())
    }

    /// `td join --adopt`: re-homes this replica's work into `project`. The database is copied
    /// aside whole (`issues.db.adopted-<old project>`, the old log kept for audit); a new
    /// replica of `project` is built beside it and every entity of the old one is re-created
    /// there as new changes by this machine (ids kept; a clash with the joined project's ids is
    /// settled by the usual rule when they meet); then it replaces the database in one rename.
    pub fn adopt_into(
        &mut self,
        root: &std::path::Path,
        project: &str,
        ctx: &crate::session::SessionContext,
    ) -> Result<(crate::migrate::MigrationReport, std::path::PathBuf)> {
        let db = crate::store::db_path(root);
        let old = self.store.project_id()?;
        let backup = db.with_file_name(format!("issues.db.adopted-{old}"));
        if backup.exists() {
            return Err(invalid(format!(
                "{} exists already (an earlier adoption): move it away first",
                backup.display()
            )));
        }
        self.store.snapshot_to(&backup)?;
        let staging = db
            .parent()
            .expect("the database has a directory")
            .join("adopt-staging");
        let _ = std::fs::remove_dir_all(&staging);
        let identity = self.store.identity().clone();
        let report = {
            let (mut fresh, _) = crate::store::Store::init(&staging, identity.clone(), None)?;
            fresh.adopt(project)?;
            fresh.migrate_from_replica(&backup)?
        };
        std::fs::rename(crate::store::db_path(&staging), &db)
            .map_err(|e| EngineError::Database(format!("replace {}: {e}", db.display())))?;
        let _ = std::fs::remove_dir_all(&staging);
        *self = Project::open(root, identity, ctx)?;
        Ok((report, backup))
    }

    /// `td join`, first step: stores the invite. A fresh replica adopts the invite's project;
    /// a replica already in that project keeps it. A replica with work of another project is
    /// refused (nothing is written).
    pub fn join_prepare(&mut self, invite: &CheckedInvite) -> Result<()> {
        let project = &invite.code.project;
        let mine = self.store.project_id()?;
        if mine != *project {
            if !self.store.is_fresh()? {
                return Err(invalid(format!(
                    "this replica already has work of project {mine}; to bring that work into {project}, run 'td join <code> --adopt' (its entities are re-created in {project}; the old log is kept beside the database)"
                )));
            }
            self.store.adopt(project)?;
        }
        // The epoch keys the code carries: what arrives sealed opens as it arrives.
        crate::keyring::keep_keys(self.store.conn(), &invite.code.keys, invite.keys_signed)?;
        let b = &invite.record.body;
        let run = WireRun {
            format: b.format,
            actor: b.actor,
            author: b.author,
            session: b.session.clone(),
            first_seq: 1,
            changes: vec![(b.doc.clone(), b.change.clone())],
            signature: invite.record.signature.to_vec(),
        };
        let report = self.store.apply(&[run])?;
        if let Some(why) = report.rejected.first() {
            return Err(EngineError::InvalidInput(format!("invite refused: {why}")));
        }
        Ok(())
    }

    /// `td join`, second step (after syncing what the hub or peer holds, when it can): writes
    /// this machine's join, made on everything this replica holds of the roster, so a join by
    /// another machine that is already here comes first. Refuses a used or revoked invite.
    pub fn join_commit(&mut self, invite: &CheckedInvite) -> Result<()> {
        match self.join_status(&invite.id)? {
            JoinStatus::Member(_) => return Ok(()),
            JoinStatus::UsedByOther(fp) => {
                return Err(invalid(format!(
                    "this invite was already used by machine {fp}: ask an admin for a new one ('td member invite')"
                )))
            }
            JoinStatus::Revoked => {
                return Err(invalid(
                    "this invite was revoked: ask an admin for a new one ('td member invite')",
                ))
            }
            JoinStatus::Waiting => {}
        }
        let me = self.store.identity().public_key();
        let invite_key = roster::parse_public_key(&invite.id)?;
        let proof = invite
            .secret
            .sign(&authority::join_digest(&invite_key, &me));
        let op = Op::Join {
            invite: invite.id.clone(),
            key: hex::encode(me),
            proof: hex::encode(proof),
            on: vec![hex::encode(invite.change_hash)],
        };
        let session = self.session.id.clone();
        self.store
            .write(&session, |tx| crate::write::write_op(tx, &op))
    }

    /// Where this machine's join with `invite` stands.
    pub fn join_status(&self, invite: &str) -> Result<JoinStatus> {
        let roster = roster::resolve(self.store.conn())?;
        let me = self.store.identity().public_key_hex();
        if let Some(m) = roster.members.get(&me) {
            return Ok(JoinStatus::Member(m.role));
        }
        Ok(match roster.invites.get(invite) {
            Some(i) if i.revoked => JoinStatus::Revoked,
            Some(i) => match &i.used_by {
                Some(other) if *other != me => JoinStatus::UsedByOther(
                    roster::parse_public_key(other)
                        .map(|k| identity::fingerprint_of(&k))
                        .unwrap_or_default(),
                ),
                _ => JoinStatus::Waiting,
            },
            None => JoinStatus::Waiting,
        })
    }
}
