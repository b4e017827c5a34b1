//! `td board`: create, list, show, move, unposition, edit, delete.

use anyhow::Result;
use clap::{Subcommand, ValueEnum};
use serde_json::{json, Value};
use td_engine::model::normalize_issue_id;
use td_engine::ops::boards::BoardEdit;
use td_engine::views::{to_json, BoardRow};

use super::Cx;
use crate::hub::Auto;
use crate::output::{emit, issue_line};

/// How td's board UI shows a board.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ViewMode {
    /// Columns by status.
    Swimlanes,
    /// One ordered list.
    Backlog,
}

impl ViewMode {
    fn as_str(self) -> &'static str {
        match self {
            ViewMode::Swimlanes => "swimlanes",
            ViewMode::Backlog => "backlog",
        }
    }
}

/// `td board`.
#[derive(Debug, Subcommand)]
pub(crate) enum BoardCommand {
    /// Create a board; without a query it shows every issue.
    Create {
        /// Board name.
        name: String,
        /// Which issues it shows, in TDQ (see `td query --help`), e.g. "labels ~ sync" (as td,
        /// also accepted after the name).
        #[arg(value_name = "QUERY", conflicts_with = "query")]
        query_arg: Option<String>,
        /// Which issues it shows, in TDQ.
        #[arg(short = 'q', long)]
        query: Option<String>,
    },
    /// List boards.
    List,
    /// A board's issues: manually positioned ones first, then the rest by priority.
    Show {
        /// Board id or name.
        board: String,
        /// Only issues of these statuses (comma-separated or repeated).
        #[arg(short = 's', long, value_name = "STATUS")]
        status: Vec<String>,
    },
    /// Put an issue at a position (1 = top) in a board's manual order.
    Move {
        /// Board id or name.
        board: String,
        /// Issue id.
        issue: String,
        /// 1-based position.
        position: i64,
    },
    /// Drop an issue's manual position on a board.
    Unposition {
        /// Board id or name.
        board: String,
        /// Issue id.
        issue: String,
    },
    /// Rename a board or change its query or view mode.
    Edit {
        /// Board id or name.
        board: String,
        /// New name.
        #[arg(short = 'n', long)]
        name: Option<String>,
        /// New query ("" shows every issue).
        #[arg(short = 'q', long)]
        query: Option<String>,
        /// How td's board UI shows it.
        #[arg(long, value_enum)]
        view_mode: Option<ViewMode>,
    },
    /// Delete a board (its issues are untouched).
    Delete {
        /// Board id or name.
        board: String,
    },
}

impl BoardCommand {
    /// Under autosync: listing and showing pull first; the rest push after.
    pub(crate) fn autosync(&self) -> Auto {
        match self {
            BoardCommand::List | BoardCommand::Show { .. } => Auto::PullBefore,
            BoardCommand::Create { .. }
            | BoardCommand::Move { .. }
            | BoardCommand::Unposition { .. }
            | BoardCommand::Edit { .. }
            | BoardCommand::Delete { .. } => Auto::PushAfter,
        }
    }
}

fn board_line(b: &BoardRow) -> String {
    format!(
        "{}  {}{}",
        b.id,
        b.name,
        if b.query.is_empty() {
            String::new()
        } else {
            format!("  [{}]", b.query)
        }
    )
}

/// Runs one `td board` subcommand.
pub(crate) fn run(c: &BoardCommand, cx: &mut Cx<'_>) -> Result<()> {
    let (p, json) = (&mut *cx.p, cx.json);
    match c {
        BoardCommand::Create {
            name,
            query_arg,
            query,
        } => {
            let b = p.board_create(name, query.as_deref().or(query_arg.as_deref()))?;
            let v = json!({"action": "created", "id": b.id, "board": to_json(&b)});
            emit(json, &v, || format!("CREATED board {}", board_line(&b)));
        }
        BoardCommand::List => {
            let list = p.boards()?;
            let human = list.iter().map(board_line).collect::<Vec<_>>().join("\n");
            emit(
                json,
                &Value::Array(list.iter().map(to_json).collect()),
                || human,
            );
        }
        BoardCommand::Show { board, status } => {
            let view = p.board_with_status(board, status)?;
            let v = to_json(&view);
            emit(json, &v, || {
                let mut s = board_line(&view.board);
                if view.issues.is_empty() {
                    s.push_str("\n  (no issues)");
                }
                for i in &view.issues {
                    let mark = if i.position.is_none() { " " } else { "*" };
                    s.push_str(&format!("\n{mark} {}", issue_line(&i.issue)));
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
            let v = json!({"action": "moved", "board_id": b.id, "issue_id": issue,
                "position": position, "stored_position": stored});
            emit(json, &v, || {
                format!("MOVED {issue} to position {position} on {}", b.name)
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
            let v = json!({"action": action, "board_id": b.id, "issue_id": issue});
            emit(json, &v, || {
                format!(
                    "{} {issue} on {}",
                    action.to_uppercase().replace('_', " "),
                    b.name
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
                view_mode: view_mode.map(|m| m.as_str().to_string()),
            };
            let (b, changed) = p.board_edit(board, &e)?;
            let action = if changed { "updated" } else { "unchanged" };
            let v = json!({"action": action, "id": b.id, "board": to_json(&b)});
            emit(json, &v, || {
                format!("{} board {}", action.to_uppercase(), board_line(&b))
            });
        }
        BoardCommand::Delete { board } => {
            let b = p.board_delete(board)?;
            let v = json!({"action": "deleted", "id": b.id});
            emit(json, &v, || format!("DELETED board {}", board_line(&b)));
        }
    }
    Ok(())
}
