//! `td sync resolve`: settles a recorded conflict with a change that has seen both sides.

use rusqlite::params;
use serde_json::Value;

use crate::conflicts::{list, Conflict, Resolution};
use crate::error::Result;
use crate::project::Project;

impl Project {
    /// `td sync resolve`: records a change that has seen both sides, so the conflict is settled
    /// on every replica once it propagates. Returns the conflict as it now stands.
    pub fn resolve_conflict(&mut self, id: &str, how: &Resolution) -> Result<Conflict> {
        use crate::doc::{self, Field};
        use crate::error::{invalid, not_found};
        let all = list(self.store.conn(), true, None, None)?;
        let c = all.into_iter().find(|c| c.id == id).ok_or_else(|| {
            not_found(format!(
                "no conflict with id {id} (see 'td sync conflicts --all')"
            ))
        })?;
        if c.resolved {
            return Ok(c);
        }
        if c.field == "id" {
            // An id clash: both entities are kept; resolving acknowledges the rename, in the
            // renamed entity's document so every replica settles it.
            if *how != Resolution::Kept {
                return Err(invalid(format!(
                    "{id} is an id clash: both entities are kept ({} and {}); acknowledge it with --keep kept",
                    c.kept.value.as_str().unwrap_or(""),
                    c.overwritten.value.as_str().unwrap_or("")
                )));
            }
            let session = self.session.id.clone();
            let entity = c.entity.clone();
            let original = c.kept.value.as_str().unwrap_or("").to_string();
            self.store.write(&session, |tx| {
                tx.change(&entity, |d| {
                    doc::put_str(d, crate::lineage::ACK_KEY, &original)
                })
            })?;
            return list(self.store.conn(), true, None, None)?
                .into_iter()
                .find(|x| x.id == id)
                .ok_or_else(|| not_found(id.to_string()));
        }
        let value = match how {
            Resolution::Kept => c.kept.value.clone(),
            Resolution::Overwritten => c.overwritten.value.clone(),
            Resolution::Value(v) if c.field == "wf" => {
                return Err(invalid(format!("{id} is a workflow transition: use --keep kept or --keep overwritten, not --value ({v})")));
            }
            Resolution::Value(v) => Value::from(v.clone()),
        };
        let session = self.session.id.clone();
        let entity = c.entity.clone();
        let field = c.field.clone();
        self.store.write(&session, |tx| {
            tx.change(&entity, |d| {
                // A throwaway write first: it supersedes both sides (its predecessors are every
                // current value), and the chosen value then follows it.
                doc::put(d, &automerge::ROOT, &field, None)?;
                match (&value, field.as_str()) {
                    (Value::Object(m), "wf") => {
                        let wf = m
                            .iter()
                            .map(|(k, v)| {
                                (
                                    k.clone(),
                                    v.as_str()
                                        .map(|s| Field::Str(s.into()))
                                        .unwrap_or(Field::Null),
                                )
                            })
                            .collect();
                        doc::put_workflow(d, &wf)
                    }
                    (Value::String(s), f) if doc::TEXT_FIELDS.contains(&f) => {
                        automerge::transaction::Transactable::put_object(
                            d,
                            automerge::ROOT,
                            f,
                            automerge::ObjType::Text,
                        )?;
                        doc::put_text(d, f, s)
                    }
                    (Value::String(s), f) => doc::put_str(d, f, s),
                    (Value::Number(n), f) => doc::put_int(d, f, n.as_i64().unwrap_or(0)),
                    (Value::Null, f) => doc::put_opt(d, f, None),
                    (other, _) => Err(invalid(format!(
                        "cannot restore {other}: resolve with --value <text>"
                    ))),
                }
            })
        })?;
        list(self.store.conn(), true, None, None)?
            .into_iter()
            .find(|x| x.id == id)
            .ok_or_else(|| not_found(id.to_string()))
    }

    /// Warnings for this session about workflow transitions of `entity` it lost to a concurrent
    /// one, each given once.
    pub fn conflict_warnings(&mut self, entity: &str) -> Result<Vec<String>> {
        let me = self.session.id.clone();
        let mut out = Vec::new();
        for c in list(self.store.conn(), false, Some(entity), None)? {
            if c.field != "wf" || c.overwritten.session.as_deref() != Some(me.as_str()) {
                continue;
            }
            let n = self.store.conn().execute(
                "INSERT OR IGNORE INTO crdt_conflicts_seen(conflict_id, session_id) VALUES (?1, ?2)",
                params![c.id, me],
            )?;
            if n == 1 {
                out.push(format!(
                    "your change of {entity} to {} was overwritten by a concurrent change to {} by session {} on machine {} (conflict {}; see 'td sync conflicts')",
                    c.overwritten.value["status"].as_str().unwrap_or("?"),
                    c.kept.value["status"].as_str().unwrap_or("?"),
                    c.kept.session.as_deref().unwrap_or("?"),
                    &c.kept.machine,
                    c.id
                ));
            }
        }
        Ok(out)
    }
}
