//! Boards (`td board`): a named view of issues chosen by a query, with a manual order. Each
//! board is one document; its positions are child rows keyed by td's deterministic `bip_` id,
//! so two machines placing the same issue on the same board produce one row.

use crate::doc::{self, Field};
use crate::error::{invalid, not_found, Result};
use crate::model::{link_id, now_timestamp, Kind};
use crate::project::Project;
use crate::query::{self, Issue};
use crate::views::{self, BoardRow, BoardView, PositionedIssue};
use crate::write::Tx;

/// Gap between neighbouring positions, as td spaces them.
pub const POSITION_STEP: i64 = 65536;

/// The builtin board every database has.
pub const BUILTIN_BOARD: &str = "bd-all-issues";

/// View modes td's board UI knows.
const VIEW_MODES: [&str; 2] = ["swimlanes", "backlog"];

/// Changes `td board edit` can make.
#[derive(Debug, Clone, Default)]
pub struct BoardEdit {
    /// New name.
    pub name: Option<String>,
    /// New query (`""` clears it: all issues).
    pub query: Option<String>,
    /// New view mode.
    pub view_mode: Option<String>,
}

fn check_name(name: &str) -> Result<String> {
    let n = name.trim();
    if n.is_empty() {
        return Err(invalid("board name is required"));
    }
    if n.chars().count() > 100 {
        return Err(invalid("board name is too long (max 100 characters)"));
    }
    Ok(n.to_string())
}

fn check_query(q: &str) -> Result<String> {
    let q = q.trim();
    if !q.is_empty() {
        crate::tdq::parse(q)?;
    }
    Ok(q.to_string())
}

/// All boards, the builtin first, then by name and id.
pub fn list(conn: &rusqlite::Connection) -> Result<Vec<BoardRow>> {
    let mut stmt =
        conn.prepare_cached("SELECT * FROM boards ORDER BY is_builtin DESC, name, id")?;
    let rows = stmt.query_map([], views::from_row)?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// Resolves a board by id or (case-insensitive) name. A name two boards share (possible after
/// two machines each created it) is refused with both ids, so the user can pick one.
pub fn resolve(conn: &rusqlite::Connection, key: &str) -> Result<BoardRow> {
    let boards = list(conn)?;
    if let Some(b) = boards.iter().find(|b| b.id == key) {
        return Ok(b.clone());
    }
    let named: Vec<&BoardRow> = boards
        .iter()
        .filter(|b| b.name.eq_ignore_ascii_case(key.trim()))
        .collect();
    match named.as_slice() {
        [b] => Ok((*b).clone()),
        [] => Err(not_found(format!("board not found: {key}"))),
        many => Err(invalid(format!(
            "board name '{key}' is ambiguous: {}; use the id",
            many.iter()
                .map(|b| b.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Live positions of a board: (issue id, position), in board order.
fn positions(conn: &rusqlite::Connection, board: &str) -> Result<Vec<(String, i64)>> {
    Ok(query::rows_for(
        conn,
        "board_issue_positions",
        "board_id",
        board,
        "position, issue_id",
    )?
    .into_iter()
    .filter(|r| r["deleted_at"].is_null())
    .map(|r| {
        (
            r["issue_id"].as_str().unwrap_or("").to_string(),
            r["position"].as_i64().unwrap_or(0),
        )
    })
    .collect())
}

/// What a board shows: issues matching its TDQ query as `session` sees it (`@me`; all live
/// issues when it has none, closed included), positioned ones first in position order, then
/// the rest by priority.
pub fn view(conn: &rusqlite::Connection, key: &str, session: &str) -> Result<BoardView> {
    let board = resolve(conn, key)?;
    let id = board.id.clone();
    // A board's query was checked when it was saved; one that arrived from elsewhere and does
    // not parse is reported with the way to fix it.
    let q = crate::tdq::parse(&board.query).map_err(|e| {
        invalid(format!(
            "board '{}' has a query that is not valid TDQ ({}): {e}; change it with 'td board edit {id} -q \"<query>\"'",
            board.name, board.query
        ))
    })?;
    let ctx = crate::tdq::EvalContext::new(session);
    let shown: Vec<Issue> =
        crate::tdq::eval::filter(conn, &q, &ctx, query::all_live_issues(conn)?)?;
    let pos = positions(conn, &id)?;
    let placed: std::collections::HashMap<&str, i64> =
        pos.iter().map(|(i, p)| (i.as_str(), *p)).collect();
    let by_id: std::collections::HashMap<&str, &Issue> =
        shown.iter().map(|i| (i.id.as_str(), i)).collect();
    let mut issues: Vec<PositionedIssue> = pos
        .iter()
        .filter_map(|(issue, p)| {
            by_id.get(issue.as_str()).map(|i| PositionedIssue {
                issue: (*i).clone(),
                position: Some(*p),
            })
        })
        .collect();
    issues.extend(
        shown
            .iter()
            .filter(|i| !placed.contains_key(i.id.as_str()))
            .map(|i| PositionedIssue {
                issue: i.clone(),
                position: None,
            }),
    );
    Ok(BoardView { board, issues })
}

/// The sparse position that puts an issue at `slot` (1-based) among `others` (the board's
/// other positioned issues, in order), or `None` when there is no gap and the board needs
/// renumbering.
fn position_for(others: &[(String, i64)], slot: usize) -> Option<i64> {
    let idx = slot.saturating_sub(1).min(others.len());
    let prev = if idx == 0 { 0 } else { others[idx - 1].1 };
    let next = others
        .get(idx)
        .map(|(_, p)| *p)
        .unwrap_or(prev + 2 * POSITION_STEP);
    (next - prev >= 2).then(|| prev + (next - prev) / 2)
}

fn put_position(tx: &mut Tx<'_>, board: &str, issue: &str, position: i64) -> Result<()> {
    let key = link_id("bip_", &format!("{board}|{issue}"));
    tx.change(board, |d| {
        let updated =
            doc::put_child_field(d, "positions", &key, "position", Some(Field::Int(position)))?;
        if updated {
            doc::put_child_field(d, "positions", &key, "deleted_at", None)?;
            return Ok(());
        }
        doc::put_child(
            d,
            "positions",
            &key,
            &[
                ("issue_id", Field::Str(issue.to_string())),
                ("position", Field::Int(position)),
                ("added_at", Field::Str(now_timestamp())),
                ("deleted_at", Field::Null),
            ],
        )
    })
}

fn builtin_guard(board: &BoardRow, what: &str) -> Result<()> {
    if board.is_builtin == 1 {
        return Err(invalid(format!(
            "the builtin board '{}' cannot be {what}",
            board.name
        )));
    }
    Ok(())
}

impl Project {
    /// `td board create <name> [-q <query>]`. Refuses a name a board here already has (two
    /// machines may still each create one; both survive a sync).
    pub fn board_create(&mut self, name: &str, query: Option<&str>) -> Result<BoardRow> {
        let name = check_name(name)?;
        let q = check_query(query.unwrap_or(""))?;
        let me = self.session.id.clone();
        self.store.write(&me, |tx| {
            if let Some(b) = list(tx.conn())?
                .into_iter()
                .find(|b| b.name.eq_ignore_ascii_case(&name))
            {
                return Err(invalid(format!(
                    "a board named '{name}' already exists ({})",
                    b.id
                )));
            }
            let id = tx.fresh_id(Kind::Board)?;
            let now = now_timestamp();
            tx.change(&id, |d| {
                doc::put_str(d, "name", &name)?;
                doc::put_str(d, "query", &q)?;
                doc::put_str(d, "created_at", &now)?;
                doc::put_str(d, "updated_at", &now)?;
                doc::put_int(d, "is_builtin", 0)?;
                doc::put_str(d, "view_mode", "swimlanes")
            })?;
            resolve(tx.conn(), &id)
        })
    }

    /// `td board edit <board>`: renames it, changes its query or view mode. Returns the row and
    /// whether anything changed.
    pub fn board_edit(&mut self, key: &str, e: &BoardEdit) -> Result<(BoardRow, bool)> {
        let name = e.name.as_deref().map(check_name).transpose()?;
        let q = e.query.as_deref().map(check_query).transpose()?;
        if let Some(v) = &e.view_mode {
            if !VIEW_MODES.contains(&v.as_str()) {
                return Err(invalid(format!(
                    "invalid view mode '{v}': expected swimlanes or backlog"
                )));
            }
        }
        if name.is_none() && q.is_none() && e.view_mode.is_none() {
            return Err(invalid(
                "nothing to change: give --name, --query or --view-mode",
            ));
        }
        let me = self.session.id.clone();
        self.store.write(&me, |tx| {
            let board = resolve(tx.conn(), key)?;
            builtin_guard(&board, "edited")?;
            let id = board.id.clone();
            let wanted = [
                ("name", name.clone()),
                ("query", q.clone()),
                ("view_mode", e.view_mode.clone()),
            ];
            let changes: Vec<(&str, String)> = wanted
                .into_iter()
                .filter_map(|(k, v)| {
                    let current = match k {
                        "name" => &board.name,
                        "query" => &board.query,
                        _ => &board.view_mode,
                    };
                    v.filter(|v| current != v).map(|v| (k, v))
                })
                .collect();
            if changes.is_empty() {
                return Ok((board, false));
            }
            tx.change(&id, |d| {
                for (k, v) in &changes {
                    doc::put_str(d, k, v)?;
                }
                doc::put_str(d, "updated_at", &now_timestamp())
            })?;
            Ok((resolve(tx.conn(), &id)?, true))
        })
    }

    /// `td board delete <board>`: removes the board and its positions everywhere (a tombstone
    /// in its document, so a concurrent edit does not bring it back).
    pub fn board_delete(&mut self, key: &str) -> Result<BoardRow> {
        let me = self.session.id.clone();
        self.store.write(&me, |tx| {
            let board = resolve(tx.conn(), key)?;
            builtin_guard(&board, "deleted")?;
            let id = board.id.clone();
            tx.change(&id, |d| doc::put_str(d, "deleted_at", &now_timestamp()))?;
            Ok(board)
        })
    }

    /// `td board move <board> <issue> <position>`: puts the issue at 1-based `slot` in the
    /// board's manual order. Returns the stored sparse position.
    pub fn board_move(&mut self, key: &str, issue: &str, slot: i64) -> Result<(BoardRow, i64)> {
        if slot < 1 {
            return Err(invalid(format!("position must be 1 or more, got {slot}")));
        }
        let me = self.session.id.clone();
        self.store.write(&me, |tx| {
            let board = resolve(tx.conn(), key)?;
            let id = board.id.clone();
            query::live_issue(tx.conn(), issue)?;
            let others: Vec<(String, i64)> = positions(tx.conn(), &id)?
                .into_iter()
                .filter(|(i, _)| i != issue)
                .collect();
            let slot = slot as usize;
            let p = match position_for(&others, slot) {
                Some(p) => p,
                None => {
                    // No gap left: renumber the whole order at td's spacing, then place.
                    let mut order: Vec<String> = others.into_iter().map(|(i, _)| i).collect();
                    order.insert((slot - 1).min(order.len()), issue.to_string());
                    for (n, i) in order.iter().enumerate() {
                        put_position(tx, &id, i, (n as i64 + 1) * POSITION_STEP)?;
                    }
                    return Ok((board, (slot.min(order.len()) as i64) * POSITION_STEP));
                }
            };
            put_position(tx, &id, issue, p)?;
            Ok((board, p))
        })
    }

    /// `td board unposition <board> <issue>`: drops the issue's manual position (soft delete of
    /// the position row, as td does). False when it had none.
    pub fn board_unposition(&mut self, key: &str, issue: &str) -> Result<(BoardRow, bool)> {
        let me = self.session.id.clone();
        self.store.write(&me, |tx| {
            let board = resolve(tx.conn(), key)?;
            let id = board.id.clone();
            if !positions(tx.conn(), &id)?.iter().any(|(i, _)| i == issue) {
                return Ok((board, false));
            }
            let row = link_id("bip_", &format!("{id}|{issue}"));
            tx.change(&id, |d| {
                doc::put_child_field(
                    d,
                    "positions",
                    &row,
                    "deleted_at",
                    Some(Field::Str(now_timestamp())),
                )
                .map(|_| ())
            })?;
            Ok((board, true))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_fill_gaps_and_ask_for_renumbering() {
        let o = |ps: &[i64]| -> Vec<(String, i64)> {
            ps.iter().map(|p| (format!("td-{p}"), *p)).collect()
        };
        assert_eq!(position_for(&[], 1), Some(65536));
        assert_eq!(position_for(&o(&[65536]), 1), Some(32768));
        assert_eq!(position_for(&o(&[65536]), 2), Some(65536 + 65536));
        assert_eq!(position_for(&o(&[65536, 131072]), 2), Some(98304));
        assert_eq!(position_for(&o(&[65536, 131072]), 9), Some(196608));
        assert_eq!(position_for(&o(&[5, 6]), 2), None);
    }
}
