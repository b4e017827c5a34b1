//! `td board`: create, list, show, move, unposition, edit, delete.

use anyhow::Result;
use serde_json::{json, Value};
use td_engine::model::normalize_issue_id;
use td_engine::ops::boards::{self, BoardEdit};
use td_engine::Project;

use crate::args::BoardCommand;
use crate::output::{emit, issue_line};

fn board_line(b: &Value) -> String {
    let q = b["query"].as_str().unwrap_or("");
    format!(
        "{}  {}{}",
        b["id"].as_str().unwrap_or(""),
        b["name"].as_str().unwrap_or(""),
        if q.is_empty() {
            String::new()
        } else {
            format!("  [{q}]")
        }
    )
}

/// Runs one `td board` subcommand.
pub(crate) fn run(p: &mut Project, c: &BoardCommand, json: bool) -> Result<()> {
    match c {
        BoardCommand::Create { name, query } => {
            let b = p.board_create(name, query.as_deref())?;
            let v = json!({"action": "created", "id": b["id"], "board": b});
            emit(json, &v, || format!("CREATED board {}", board_line(&b)));
        }
        BoardCommand::List => {
            let list = boards::list(p.store.conn())?;
            let human = list.iter().map(board_line).collect::<Vec<_>>().join("\n");
            emit(json, &Value::Array(list), || human);
        }
        BoardCommand::Show { board } => {
            let view = boards::view(p.store.conn(), board)?;
            let v = json!({"board": view.board, "issues": view.issues});
            emit(json, &v, || {
                let mut s = board_line(&view.board);
                if view.issues.is_empty() {
                    s.push_str("\n  (no issues)");
                }
                for i in &view.issues {
                    let mark = if i["position"].is_null() { " " } else { "*" };
                    s.push_str(&format!("\n{mark} {}", issue_line(i)));
                }
                s
            });
        }
        BoardCommand::Move {
            board,
            issue,
            position,
        } => {
            let issue = normalize_issue_id(issue);
            let (b, stored) = p.board_move(board, &issue, *position)?;
            let v = json!({"action": "moved", "board_id": b["id"], "issue_id": issue,
                "position": position, "stored_position": stored});
            emit(json, &v, || {
                format!(
                    "MOVED {issue} to position {position} on {}",
                    b["name"].as_str().unwrap_or("")
                )
            });
        }
        BoardCommand::Unposition { board, issue } => {
            let issue = normalize_issue_id(issue);
            let (b, changed) = p.board_unposition(board, &issue)?;
            let action = if changed {
                "unpositioned"
            } else {
                "not_positioned"
            };
            let v = json!({"action": action, "board_id": b["id"], "issue_id": issue});
            emit(json, &v, || {
                format!(
                    "{} {issue} on {}",
                    action.to_uppercase().replace('_', " "),
                    b["name"].as_str().unwrap_or("")
                )
            });
        }
        BoardCommand::Edit {
            board,
            name,
            query,
            view_mode,
        } => {
            let e = BoardEdit {
                name: name.clone(),
                query: query.clone(),
                view_mode: view_mode.clone(),
            };
            let (b, changed) = p.board_edit(board, &e)?;
            let action = if changed { "updated" } else { "unchanged" };
            let v = json!({"action": action, "id": b["id"], "board": b});
            emit(json, &v, || {
                format!("{} board {}", action.to_uppercase(), board_line(&b))
            });
        }
        BoardCommand::Delete { board } => {
            let b = p.board_delete(board)?;
            let v = json!({"action": "deleted", "id": b["id"]});
            emit(json, &v, || format!("DELETED board {}", board_line(&b)));
        }
    }
    Ok(())
}
