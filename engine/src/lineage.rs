//! Id clashes (merge rule 8). td draws short random ids per machine, so two machines can create
//! different entities with the same id. Each creation is a root change (a change with no
//! dependencies) of the document named by that id; all later changes descend from exactly one
//! root. A document with several roots therefore holds several entities: one *lineage* per
//! root. Each lineage is stored as its own Automerge document and materialized under its own
//! id: the lineage with the smallest root-change hash keeps the id, every other one is renamed
//! to `<prefix>` + hex of sha256(`id|root`). The choice depends only on the set of changes, so
//! every replica renames the same entity the same way.
//!
//! Records keep naming the original id (they are signed); the table `crdt_lineages` maps
//! (id, root) to the document that stores the lineage and the id it is materialized under.
//! A reference to a clashed id (a log's `issue_id`, a `parent_id`, a dependency, a board
//! position…) means the lineage created by the same machine as the referring entity, when
//! there is one, and otherwise the lineage that keeps the id: references are written before
//! anyone could see the clash, by the machine that created (and so holds) its own entity.

use automerge::{AutoCommit, Change};
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::model::Kind;

/// The table, created on open for databases made before it existed.
pub(crate) const SCHEMA: &str = "\
CREATE TABLE IF NOT EXISTS crdt_lineages (
    doc_id TEXT NOT NULL,
    root BLOB NOT NULL,
    storage TEXT NOT NULL UNIQUE,
    entity TEXT NOT NULL UNIQUE,
    author BLOB NOT NULL,
    actor BLOB NOT NULL,
    time INTEGER NOT NULL,
    PRIMARY KEY (doc_id, root)
);";

/// Columns that hold another entity's id.
pub(crate) const REFERENCE_COLUMNS: [&str; 5] = [
    "issue_id",
    "parent_id",
    "depends_on_id",
    "board_id",
    "work_session_id",
];

/// One lineage of a clashed document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lineage {
    /// Hash of the lineage's root change.
    pub root: Vec<u8>,
    /// The `crdt_docs` key of the document holding it.
    pub storage: String,
    /// The id it is materialized under.
    pub entity: String,
    /// The machine key that created it.
    pub author: Vec<u8>,
    /// The record actor of its root change.
    pub actor: Vec<u8>,
    /// Its root change's time (unix seconds).
    pub time: i64,
}

/// A root change as `register` needs it.
#[derive(Debug, Clone)]
pub(crate) struct Root {
    /// Change hash.
    pub hash: Vec<u8>,
    /// Machine key of its author.
    pub author: Vec<u8>,
    /// Record actor.
    pub actor: Vec<u8>,
    /// Change time.
    pub time: i64,
    /// Where its lineage is stored.
    pub storage: String,
}

impl From<&Lineage> for Root {
    fn from(l: &Lineage) -> Root {
        Root {
            hash: l.root.clone(),
            author: l.author.clone(),
            actor: l.actor.clone(),
            time: l.time,
            storage: l.storage.clone(),
        }
    }
}

impl Root {
    /// Describes root change `c` stored under `storage`.
    pub(crate) fn of(conn: &Connection, c: &Change, storage: String) -> Result<Root> {
        let actor = c.actor_id().to_bytes().to_vec();
        Ok(Root {
            hash: c.hash().0.to_vec(),
            author: author_of_actor(conn, &actor)?,
            actor,
            time: c.timestamp(),
            storage,
        })
    }
}

/// Creates the table if this database predates it.
pub(crate) fn ensure_table(conn: &Connection) -> Result<()> {
    let exists = conn
        .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'crdt_lineages'")?
        .exists([])?;
    if !exists {
        conn.execute_batch(SCHEMA)?;
    }
    Ok(())
}

/// Whether any document has clashed (the common case is no: every lookup is then skipped).
pub(crate) fn any(conn: &Connection) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM crdt_lineages LIMIT 1")?
        .exists([])?)
}

/// The lineages of `doc_id`, smallest root first (empty when it never clashed).
pub fn of_doc(conn: &Connection, doc_id: &str) -> Result<Vec<Lineage>> {
    let mut stmt = conn.prepare_cached(
        "SELECT root, storage, entity, author, actor, time FROM crdt_lineages WHERE doc_id = ?1 ORDER BY root",
    )?;
    let rows = stmt.query_map([doc_id], |r| {
        Ok(Lineage {
            root: r.get(0)?,
            storage: r.get(1)?,
            entity: r.get(2)?,
            author: r.get(3)?,
            actor: r.get(4)?,
            time: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// For an id a command names: the id its records carry and the document that stores it. An
/// id that never clashed is both.
pub fn locate(conn: &Connection, entity: &str) -> Result<(String, String)> {
    Ok(conn
        .prepare_cached("SELECT doc_id, storage FROM crdt_lineages WHERE entity = ?1")?
        .query_row([entity], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or_else(|| (entity.to_string(), entity.to_string())))
}

/// The stored document key of an entity id.
pub(crate) fn storage_of(conn: &Connection, entity: &str) -> Result<String> {
    Ok(locate(conn, entity)?.1)
}

/// The id every lineage but the first is materialized under.
pub fn renamed_id(doc_id: &str, root: &[u8]) -> String {
    let (prefix, n) = Kind::of_id(doc_id).map(Kind::prefix).unwrap_or(("", 8));
    let digest = hex::encode(Sha256::digest(format!("{doc_id}|{}", hex::encode(root))));
    format!("{prefix}{}", &digest[..n.max(4)])
}

/// The machine key behind an Automerge actor (our actors are record actors).
pub(crate) fn author_of_actor(conn: &Connection, actor: &[u8]) -> Result<Vec<u8>> {
    Ok(conn
        .prepare_cached("SELECT author FROM crdt_actors WHERE actor = ?1")?
        .query_row([actor], |r| r.get(0))
        .optional()?
        .unwrap_or_default())
}

/// The root change of a stored document (its first change without dependencies).
pub(crate) fn root_of(doc: &mut AutoCommit) -> Option<Change> {
    doc.get_changes(&[])
        .into_iter()
        .find(|c| c.deps().is_empty())
}

/// Records the lineages of `doc_id` from its roots, ranks them by root hash and assigns ids.
/// Returns the lineages, smallest root first.
pub(crate) fn register(conn: &Connection, doc_id: &str, roots: &[Root]) -> Result<Vec<Lineage>> {
    let mut sorted: Vec<&Root> = roots.iter().collect();
    sorted.sort_by(|a, b| a.hash.cmp(&b.hash));
    sorted.dedup_by(|a, b| a.hash == b.hash);
    conn.prepare_cached("DELETE FROM crdt_lineages WHERE doc_id = ?1")?
        .execute([doc_id])?;
    let mut out = Vec::new();
    for (rank, r) in sorted.into_iter().enumerate() {
        let entity = if rank == 0 {
            doc_id.to_string()
        } else {
            renamed_id(doc_id, &r.hash)
        };
        conn.prepare_cached(
            "INSERT INTO crdt_lineages(doc_id, root, storage, entity, author, actor, time) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![doc_id, r.hash, r.storage, entity, r.author, r.actor, r.time])?;
        out.push(Lineage {
            root: r.hash.clone(),
            storage: r.storage.clone(),
            entity,
            author: r.author.clone(),
            actor: r.actor.clone(),
            time: r.time,
        });
    }
    Ok(out)
}

/// Key the renamed entity's document carries once `td sync resolve` acknowledged the rename.
pub const ACK_KEY: &str = "renamed_from";

/// Records (or refreshes) the visible conflict of a renamed lineage: the id it could not keep
/// and the id it got. Settled once its document acknowledges the rename.
pub(crate) fn record_rename(
    conn: &Connection,
    doc_id: &str,
    entity: &str,
    acknowledged: bool,
) -> Result<()> {
    let lineages = of_doc(conn, doc_id)?;
    let (Some(keeper), Some(renamed)) = (
        lineages.first(),
        lineages.iter().find(|l| l.entity == entity),
    ) else {
        return Ok(());
    };
    let op = |l: &Lineage| format!("root@{}", hex::encode(&l.root[..8]));
    let id = format!(
        "cf-{}",
        &hex::encode(Sha256::digest(format!(
            "{doc_id}|id|{}",
            hex::encode(&renamed.root)
        )))[..10]
    );
    conn.prepare_cached(
        "INSERT OR REPLACE INTO crdt_conflicts(id, entity, field, kept, kept_op, kept_actor, kept_time, lost, lost_op, lost_actor, lost_time, resolved_by) \
         VALUES (?1, ?2, 'id', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        id,
        entity,
        serde_json::Value::from(doc_id).to_string(),
        op(keeper),
        keeper.actor,
        keeper.time,
        serde_json::Value::from(entity).to_string(),
        op(renamed),
        renamed.actor,
        renamed.time,
        acknowledged.then_some("acknowledged"),
    ])?;
    Ok(())
}

/// Adds the root changes among `incoming` that `roots` does not hold yet, each stored under
/// the document's own id when it is the first, else under its [`extra_storage`]. The one
/// rule for where a lineage's document lives, used by both rebuilding and applying records.
pub(crate) fn add_roots(
    conn: &Connection,
    doc_id: &str,
    roots: &mut Vec<Root>,
    incoming: &[&Change],
) -> Result<()> {
    for c in incoming {
        if roots.iter().any(|r| r.hash == c.hash().0) {
            continue;
        }
        let storage = if roots.is_empty() {
            doc_id.to_string()
        } else {
            extra_storage(doc_id, &c.hash().0)
        };
        roots.push(Root::of(conn, c, storage)?);
    }
    Ok(())
}

/// The storage key for a lineage that is not the first one stored for `doc_id`.
pub(crate) fn extra_storage(doc_id: &str, root: &[u8]) -> String {
    format!("{doc_id}~{}", hex::encode(&root[..8.min(root.len())]))
}

/// Changes with a caller's tag (a log row, or nothing).
pub(crate) type Tagged<T> = Vec<(T, Change)>;

/// Assigns changes of one clashed document to its lineages (`roots`, with their stored
/// documents `docs`): a root change to its own lineage, any other change to the lineage that
/// holds one of its dependencies (stored, or assigned earlier in this call). Returns the
/// changes per lineage, in input order, and those no lineage can take yet (their dependencies
/// have not arrived).
pub(crate) fn route<T>(
    docs: &mut [AutoCommit],
    roots: &[Vec<u8>],
    changes: Tagged<T>,
) -> (Vec<Tagged<T>>, Tagged<T>) {
    let mut known: Vec<std::collections::HashSet<automerge::ChangeHash>> =
        vec![Default::default(); roots.len()];
    let mut groups: Vec<Tagged<T>> = (0..roots.len()).map(|_| Vec::new()).collect();
    let mut left = changes;
    loop {
        let before = left.len();
        let mut next = Vec::new();
        for (t, c) in left {
            let target = if c.deps().is_empty() {
                roots.iter().position(|r| r.as_slice() == c.hash().0)
            } else {
                (0..roots.len()).find(|&i| {
                    c.deps()
                        .iter()
                        .any(|d| known[i].contains(d) || docs[i].get_change_by_hash(d).is_some())
                })
            };
            match target {
                Some(i) => {
                    known[i].insert(c.hash());
                    groups[i].push((t, c));
                }
                None => next.push((t, c)),
            }
        }
        if next.is_empty() || next.len() == before {
            return (groups, next);
        }
        left = next;
    }
}

/// The form a reference to `id` is written in once `id` has clashed: `id#<root>` for the
/// entity that kept the id, so the reference keeps meaning that entity even if a lineage with
/// a smaller root arrives later and the id moves again. Other ids are written as they are.
pub(crate) fn explicit_ref(conn: &Connection, id: &str) -> Result<String> {
    Ok(of_doc(conn, id)?
        .iter()
        .find(|l| l.entity == id)
        .map(|l| format!("{id}#{}", hex::encode(&l.root[..8])))
        .unwrap_or_else(|| id.to_string()))
}

/// Splits an explicit reference (`id#<root prefix>`) into its parts.
pub(crate) fn split_ref(v: &str) -> Option<(&str, &str)> {
    v.split_once('#')
}

/// Resolves a reference to `target` written by an entity created by machine `author`.
pub(crate) fn resolve_reference(
    conn: &Connection,
    target: &str,
    author: &[u8],
) -> Result<Option<String>> {
    if let Some((id, root)) = split_ref(target) {
        // Written after the writer saw the clash: it names its lineage.
        let entity = of_doc(conn, id)?
            .into_iter()
            .find(|l| hex::encode(&l.root).starts_with(root))
            .map(|l| l.entity)
            .unwrap_or_else(|| id.to_string());
        return Ok(Some(entity));
    }
    let lineages = of_doc(conn, target)?;
    if lineages.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        lineages
            .iter()
            .find(|l| l.author == author)
            .unwrap_or(&lineages[0])
            .entity
            .clone(),
    ))
}

/// Ids of entities whose rows refer to any of `ids` (to materialize again after a rename).
pub(crate) fn referrers(conn: &Connection, ids: &[String]) -> Result<Vec<String>> {
    const QUERIES: [&str; 8] = [
        "SELECT id FROM logs WHERE issue_id = ?1",
        "SELECT id FROM comments WHERE issue_id = ?1",
        "SELECT id FROM handoffs WHERE issue_id = ?1",
        "SELECT id FROM issue_reviews WHERE issue_id = ?1",
        "SELECT id FROM issues WHERE parent_id = ?1",
        "SELECT issue_id FROM crdt_dep_edges WHERE depends_on_id = ?1",
        "SELECT board_id FROM board_issue_positions WHERE issue_id = ?1",
        "SELECT work_session_id FROM work_session_issues WHERE issue_id = ?1",
    ];
    let mut out = std::collections::BTreeSet::new();
    for id in ids {
        for q in QUERIES {
            let mut stmt = conn.prepare_cached(q)?;
            for r in stmt.query_map([id], |r| r.get::<_, String>(0))? {
                out.insert(r?);
            }
        }
    }
    Ok(out.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renamed_ids_keep_the_kind_and_length() {
        let id = renamed_id("td-abc123", &[7; 32]);
        assert!(id.starts_with("td-") && id.len() == 9, "{id}");
        assert_ne!(id, "td-abc123");
        assert_eq!(id, renamed_id("td-abc123", &[7; 32]));
        let n = renamed_id("nt-00ff00", &[1; 32]);
        assert!(n.starts_with("nt-") && n.len() == 9, "{n}");
    }
}
