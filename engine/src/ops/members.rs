//! `td member` and `td peer add/remove`: the admin's roster operations and the local address
//! book, as project methods (the roster's resolution lives in `roster.rs`).

use std::collections::BTreeMap;

use rusqlite::params;

use crate::authority::{Op, Role, Roster};
use crate::error::{invalid, not_found, Result};
use crate::identity::{fingerprint_of, parse_public_key};
use crate::model::now_timestamp;
use crate::project::Project;
use crate::roster::stored;
use crate::write::write_op;

impl Project {
    /// Resolves a member by public key, machine fingerprint or name (as `td member` takes it).
    fn member_key(&self, who: &str) -> Result<String> {
        if let Ok(k) = parse_public_key(who) {
            return Ok(hex::encode(k));
        }
        let roster = stored(self.store.conn())?;
        let who = who.trim();
        let hits: Vec<&String> = roster
            .members
            .iter()
            .filter(|(k, m)| {
                m.name == who
                    || parse_public_key(k).is_ok_and(|key| fingerprint_of(&key).starts_with(who))
            })
            .map(|(k, _)| k)
            .collect();
        match hits.as_slice() {
            [one] if !who.is_empty() => Ok((*one).clone()),
            [] | [_] => Err(not_found(format!(
                "no member '{who}': give a public key (64 hex digits), a machine fingerprint or a member name (see 'td member list')"
            ))),
            _ => Err(invalid(format!(
                "'{who}' names {} members; give the public key",
                hits.len()
            ))),
        }
    }

    /// Refuses unless this machine is an admin (only admins change the roster).
    pub(crate) fn require_admin(&self, roster: &Roster) -> Result<()> {
        let me = self.store.identity().public_key_hex();
        let founder_implicit = crate::store::is_founder_of(
            &self.store.project_id()?,
            &self.store.identity().public_key(),
        ) && !roster.members.contains_key(&me)
            && !roster.removed.contains_key(&me);
        if founder_implicit
            || roster
                .members
                .get(&me)
                .is_some_and(|m| m.role == Role::Admin)
        {
            return Ok(());
        }
        Err(invalid(format!(
            "only admins change the roster, and this machine ({}) is not one; ask an admin (see 'td member list')",
            self.store.identity().fingerprint()
        )))
    }

    /// `td member add`: admits `key` with `role` (replicated to every member). Returns false
    /// when it already was a member with that role and no new name was given.
    pub fn member_add(&mut self, key: &str, name: &str, role: Role) -> Result<bool> {
        let key = hex::encode(parse_public_key(key)?);
        let roster = stored(self.store.conn())?;
        if let Some(m) = roster.members.get(&key) {
            if m.role == role && (name.is_empty() || name == m.name) {
                return Ok(false);
            }
            // Re-adding a member with another role changes its role: the same rules apply.
            self.roster_change_target(&key, role == Role::Member)?;
        }
        self.require_admin(&roster)?;
        let label = if name.is_empty() {
            roster
                .members
                .get(&key)
                .map(|m| m.name.clone())
                .unwrap_or_else(|| fingerprint_of(&parse_public_key(&key).expect("parsed")))
        } else {
            name.to_string()
        };
        let me = self.session.id.clone();
        let op = Op::Add {
            key,
            role,
            name: label,
        };
        self.store.write(&me, |tx| {
            write_op(tx, &op)?;
            // Every epoch key this machine holds, sealed to the new member at once: its first
            // sync reads the whole history (docs/encryption.md).
            tx.settle_roster()?;
            tx.key_upkeep().map(|_| ())
        })?;
        Ok(true)
    }

    /// `td member role`: changes a member's role (admins only; never the last admin).
    pub fn member_set_role(&mut self, who: &str, role: Role) -> Result<String> {
        let key = self.roster_change_target(who, role == Role::Member)?;
        let me = self.session.id.clone();
        let op = Op::SetRole {
            key: key.clone(),
            role,
        };
        self.store.write(&me, |tx| {
            write_op(tx, &op)?;
            // A role drop starts a new epoch, as the design asks (docs/encryption.md).
            if role == Role::Member {
                tx.rotate_after_roster_change()?;
            }
            Ok(())
        })?;
        Ok(key)
    }

    /// The member `who` names, when this machine (an admin) may take its role away: `drops`
    /// says the change would take away admin rights, refused for the last admin.
    fn roster_change_target(&self, who: &str, drops: bool) -> Result<String> {
        let key = self.member_key(who)?;
        let roster = stored(self.store.conn())?;
        let Some(m) = roster.members.get(&key) else {
            return Err(not_found(format!("no member with key {key}")));
        };
        self.require_admin(&roster)?;
        if drops && m.role == Role::Admin && roster.admins() <= 1 {
            return Err(invalid(
                "this is the project's last admin: make another member an admin first",
            ));
        }
        Ok(key)
    }

    /// `td member remove`: stops accepting `key`'s records beyond what this replica holds of
    /// them (the cut-off every replica applies). Admins only; never the last admin.
    pub fn member_remove(&mut self, who: &str) -> Result<String> {
        let key = self.roster_change_target(who, true)?;
        let author = parse_public_key(&key)?;
        let cutoff: BTreeMap<String, u64> = self
            .store
            .conn()
            .prepare("SELECT actor, max_seq FROM crdt_actors WHERE author = ?1")?
            .query_map([&author[..]], |r| {
                Ok((
                    hex::encode(r.get::<_, Vec<u8>>(0)?),
                    r.get::<_, i64>(1)? as u64,
                ))
            })?
            .collect::<std::result::Result<_, _>>()?;
        let me = self.session.id.clone();
        let op = Op::Remove {
            key: key.clone(),
            cutoff,
        };
        self.store.write(&me, |tx| {
            write_op(tx, &op)?;
            tx.rotate_after_roster_change().map(|_| ())
        })?;
        Ok(key)
    }

    /// `td member rotate-key`: starts a new content-key epoch (a fresh key sealed to every
    /// member with a published key; docs/encryption.md). Returns the epoch id (hex).
    pub fn rotate_key(&mut self) -> Result<String> {
        let me = self.session.id.clone();
        let (id, _) = self.store.write(&me, |tx| tx.rotate_epoch())?;
        Ok(hex::encode(id))
    }

    /// Before `td sync encrypt-hub`: refuses unless this machine is an admin, and starts an
    /// epoch when this replica cannot seal with the current one (a project from before
    /// encryption has none). Returns the new epoch's id when one was started.
    pub fn prepare_hub_wrap(&mut self) -> Result<Option<String>> {
        self.require_admin(&stored(self.store.conn())?)?;
        match crate::keyring::writer_epoch(self.store.conn())? {
            crate::keyring::WriterEpoch::Seal(..) => Ok(None),
            _ => self.rotate_key().map(Some),
        }
    }

    /// Where encryption stands on this replica (`td sync status`).
    pub fn encryption(&self) -> Result<crate::views::EncryptionView> {
        crate::keyring::status(self.store.conn())
    }

    /// `td peer add`: an address-book entry (where a peer serves and the key it must prove).
    /// It admits nobody: admitting a machine is `td member add` (admins) or an invite.
    pub fn peer_add(&mut self, name: &str, addr: &str, key: &str) -> Result<()> {
        let key = hex::encode(parse_public_key(key)?);
        if name.trim().is_empty() {
            return Err(invalid("peer name is required"));
        }
        if !addr.contains(':') {
            return Err(invalid(format!(
                "invalid address '{addr}': expected host:port"
            )));
        }
        self.store.conn().execute(
            "INSERT INTO crdt_peers(name, addr, public_key, added_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT(name) DO UPDATE SET addr = excluded.addr, public_key = excluded.public_key",
            params![name.trim(), addr, key, now_timestamp()],
        )?;
        Ok(())
    }

    /// `td peer remove`: drops an address-book entry (the roster is unchanged).
    pub fn peer_remove(&mut self, name: &str) -> Result<()> {
        let n = self
            .store
            .conn()
            .execute("DELETE FROM crdt_peers WHERE name = ?1", [name])?;
        if n == 0 {
            return Err(not_found(format!("no peer named '{name}'")));
        }
        Ok(())
    }
}
