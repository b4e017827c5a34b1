//! The member roster (which machines' changes a replica accepts) and the local address book
//! of peers. The roster is a replicated, signed document like any entity; the address book is
//! local and never synced.

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};

use crate::doc::{self, Field};
use crate::error::{invalid, not_found, Result};
use crate::identity::fingerprint_of;
use crate::model::now_timestamp;
use crate::project::Project;
use crate::store::Tx;

/// The roster's document id.
pub const ROSTER_ID: &str = "roster";

/// Parses a public key as users paste it (64 hex digits).
pub fn parse_public_key(s: &str) -> Result<[u8; 32]> {
    hex::decode(s.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| {
            invalid(format!(
                "invalid public key '{s}': expected 64 hex digits (see 'td peer id')"
            ))
        })
}

/// Adds (or renames) a member in the roster document.
pub(crate) fn add_member(tx: &mut Tx<'_>, key_hex: &str, name: &str) -> Result<()> {
    let session = tx.session().to_string();
    let now = now_timestamp();
    tx.change(ROSTER_ID, |d| {
        doc::put_child(
            d,
            "members",
            key_hex,
            &[
                ("name", Field::Str(name.into())),
                ("added_at", Field::Str(now)),
                ("added_by", Field::Str(session)),
            ],
        )
    })
}

/// Whether changes signed by `key` are accepted here: the key is in the roster, or — before
/// this replica has a roster at all (a fresh replica joining) — it is a peer the user pinned
/// with `td peer add` or named with `--key` for this sync (`pinned`).
pub fn is_trusted(conn: &Connection, key: &[u8; 32], pinned: Option<&[u8; 32]>) -> Result<bool> {
    let hexkey = hex::encode(key);
    if conn
        .prepare_cached("SELECT 1 FROM crdt_members WHERE id = ?1")?
        .exists([&hexkey])?
    {
        return Ok(true);
    }
    if conn
        .prepare_cached("SELECT 1 FROM crdt_roster")?
        .exists([])?
    {
        return Ok(false);
    }
    let pinned_here = pinned == Some(key);
    Ok(pinned_here
        || conn
            .prepare_cached("SELECT 1 FROM crdt_peers WHERE public_key = ?1")?
            .exists([&hexkey])?)
}

/// Whether this replica holds a roster yet.
pub fn has_roster(conn: &Connection) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM crdt_roster")?
        .exists([])?)
}

/// The roster as JSON rows: public key, machine fingerprint, name, when and by whom added.
pub fn members(conn: &Connection) -> Result<Vec<Value>> {
    let mut stmt = conn
        .prepare("SELECT id, name, added_at, added_by FROM crdt_members ORDER BY added_at, id")?;
    let rows = stmt.query_map([], |r| {
        let key: String = r.get(0)?;
        let machine = parse_public_key(&key)
            .map(|k| fingerprint_of(&k))
            .unwrap_or_default();
        Ok(
            json!({"public_key": key, "machine": machine, "name": r.get::<_, String>(1)?,
            "added_at": r.get::<_, String>(2)?, "added_by": r.get::<_, String>(3)?}),
        )
    })?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
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

fn has_changes(conn: &Connection) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM crdt_changes LIMIT 1")?
        .exists([])?)
}

impl Project {
    /// `td member add`: lets `key`'s changes in (replicated to every member).
    pub fn member_add(&mut self, key: &str, name: &str) -> Result<bool> {
        let key = hex::encode(parse_public_key(key)?);
        let me = self.session.id.clone();
        self.store.write(&me, |tx| {
            let existed = tx
                .conn()
                .prepare_cached("SELECT 1 FROM crdt_members WHERE id = ?1")?
                .exists([&key])?;
            let label = if name.is_empty() {
                fingerprint_of(&parse_public_key(&key)?)
            } else {
                name.to_string()
            };
            if existed && name.is_empty() {
                return Ok(false);
            }
            add_member(tx, &key, &label)?;
            Ok(!existed)
        })
    }

    /// `td member remove`: stops accepting new changes by `key`.
    pub fn member_remove(&mut self, key: &str) -> Result<()> {
        let key = hex::encode(parse_public_key(key)?);
        let me = self.session.id.clone();
        self.store.write(&me, |tx| {
            let mut removed = false;
            tx.change(ROSTER_ID, |d| {
                removed = doc::delete_child(d, "members", &key)?;
                Ok(())
            })?;
            if removed {
                Ok(())
            } else {
                Err(not_found(format!("no member with key {key}")))
            }
        })
    }

    /// `td peer add`: an address-book entry. On a replica that already has changes the key also
    /// joins the roster; on a fresh replica it is pinned locally until the first sync brings the
    /// project's roster.
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
        let me = self.session.id.clone();
        let name = name.trim().to_string();
        self.store.write(&me, |tx| {
            tx.conn().execute(
                "INSERT INTO crdt_peers(name, addr, public_key, added_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT(name) DO UPDATE SET addr = excluded.addr, public_key = excluded.public_key",
                params![name, addr, key, now_timestamp()],
            )?;
            let member = tx.conn().prepare_cached("SELECT 1 FROM crdt_members WHERE id = ?1")?.exists([&key])?;
            if !member && has_changes(tx.conn())? {
                add_member(tx, &key, &name)?;
            }
            Ok(())
        })
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
