//! Edits made to td's tables outside td (`sqlite3 .todos/issues.db`, as td's users and its
//! runbooks do). Such an edit changes a table but not the change log: it would never sync and
//! would vanish at the next `td rebuild`. It is found by rebuilding the tables from the log
//! inside a savepoint that is rolled back and comparing, row by row; `td doctor` shows it,
//! `td rebuild` refuses to discard it unless told to, and an edit to an issue's fields can be
//! adopted as ordinary signed changes (`td doctor --adopt-edits`).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::Result;
use crate::store::Store;

/// One row that differs from what the log makes of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutsideEdit {
    /// The table.
    pub table: String,
    /// The row's id.
    pub id: String,
    /// `changed` (the columns in `columns`), `added` (no record made it) or `removed`.
    pub kind: String,
    /// The columns that differ (for `changed`).
    pub columns: Vec<String>,
}

type Rows = BTreeMap<String, BTreeMap<String, Map<String, Value>>>;

fn rows_of(export: &Value) -> Rows {
    let mut out = Rows::new();
    if let Some(tables) = export["tables"].as_object() {
        for (t, rows) in tables {
            let by_id = rows
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| {
                    let o = r.as_object()?;
                    Some((o.get("id")?.as_str()?.to_string(), o.clone()))
                })
                .collect();
            out.insert(t.clone(), by_id);
        }
    }
    out
}

impl Store {
    /// The rows of td's tables that differ from what the change log makes of them, with the
    /// rebuilt rows (for adoption). Nothing is changed: the rebuild runs in a savepoint that
    /// is rolled back.
    pub fn outside_edits(&self) -> Result<(Vec<OutsideEdit>, Value)> {
        let conn = self.conn();
        let now = crate::export::export_json(conn)?;
        conn.execute_batch("SAVEPOINT outside_edits")?;
        let rebuilt = crate::rebuild::rebuild_tables(conn, &self.identity().public_key())
            .and_then(|_| crate::export::export_json(conn));
        conn.execute_batch("ROLLBACK TO outside_edits; RELEASE outside_edits")?;
        let rebuilt = rebuilt?;
        let (have, want) = (rows_of(&now), rows_of(&rebuilt));
        let mut edits = Vec::new();
        for (table, rows) in &have {
            let empty = BTreeMap::new();
            let logged = want.get(table).unwrap_or(&empty);
            for (id, row) in rows {
                match logged.get(id) {
                    None => edits.push(OutsideEdit {
                        table: table.clone(),
                        id: id.clone(),
                        kind: "added".into(),
                        columns: Vec::new(),
                    }),
                    Some(w) if w != row => edits.push(OutsideEdit {
                        table: table.clone(),
                        id: id.clone(),
                        kind: "changed".into(),
                        columns: row
                            .iter()
                            .filter(|(k, v)| w.get(*k) != Some(*v))
                            .map(|(k, _)| k.clone())
                            .collect(),
                    }),
                    Some(_) => {}
                }
            }
            for id in logged.keys().filter(|id| !rows.contains_key(*id)) {
                edits.push(OutsideEdit {
                    table: table.clone(),
                    id: id.clone(),
                    kind: "removed".into(),
                    columns: Vec::new(),
                });
            }
        }
        Ok((edits, rebuilt))
    }

    /// Adopts the outside edits to issues' fields as ordinary signed changes written by
    /// `session` (they then sync like any edit); returns the issues adopted and the edits it
    /// cannot adopt (rows added or removed outside td, other tables), which stay as they are.
    pub fn adopt_outside_edits(
        &mut self,
        session: &str,
    ) -> Result<(Vec<String>, Vec<OutsideEdit>)> {
        let (edits, rebuilt) = self.outside_edits()?;
        let logged = rows_of(&rebuilt);
        let (issues, rest): (Vec<OutsideEdit>, Vec<OutsideEdit>) = edits
            .into_iter()
            .partition(|e| e.table == "issues" && e.kind == "changed");
        let mut adopted = Vec::new();
        self.write(session, |tx| {
            for e in &issues {
                let Some(edited) = crate::query::find_issue(tx.conn(), &e.id)? else {
                    continue;
                };
                let Some(raw) = logged.get("issues").and_then(|t| t.get(&e.id)) else {
                    continue;
                };
                let Ok(from_log) =
                    serde_json::from_value::<crate::views::IssueView>(Value::Object(raw.clone()))
                else {
                    continue;
                };
                let (want, have) = (edited.row_json(), from_log.row_json());
                tx.change(&e.id, |d| crate::doc::put_issue_row(d, &want, &have))?;
                adopted.push(e.id.clone());
            }
            Ok(())
        })?;
        Ok((adopted, rest))
    }
}
