//! `td note`: add, list, show, edit, delete, pin/unpin, archive/unarchive.

use anyhow::Result;
use serde_json::{json, Value};
use td_engine::ops::notes::{self, normalize_note_id, NoteFilter, NoteFlag};
use td_engine::Project;

use crate::args::NoteCommand;
use crate::output::emit;

fn note_line(n: &Value) -> String {
    let mut flags = Vec::new();
    if n["pinned"].as_i64() == Some(1) {
        flags.push("pinned");
    }
    if n["archived"].as_i64() == Some(1) {
        flags.push("archived");
    }
    format!(
        "{}  {}{}",
        n["id"].as_str().unwrap_or(""),
        n["title"].as_str().unwrap_or(""),
        if flags.is_empty() {
            String::new()
        } else {
            format!("  ({})", flags.join(", "))
        }
    )
}

/// Runs one `td note` subcommand.
pub(crate) fn run(p: &mut Project, c: &NoteCommand, json: bool) -> Result<()> {
    let toggle = match c {
        NoteCommand::Pin { id } => Some((id, NoteFlag::Pinned, true, "pinned", "already_pinned")),
        NoteCommand::Unpin { id } => Some((id, NoteFlag::Pinned, false, "unpinned", "not_pinned")),
        NoteCommand::Archive { id } => {
            Some((id, NoteFlag::Archived, true, "archived", "already_archived"))
        }
        NoteCommand::Unarchive { id } => {
            Some((id, NoteFlag::Archived, false, "unarchived", "not_archived"))
        }
        _ => None,
    };
    if let Some((id, f, on, yes, no)) = toggle {
        let id = normalize_note_id(id);
        let (n, changed) = p.note_flag(&id, f, on)?;
        let action = if changed { yes } else { no };
        let v = json!({"action": action, "id": id, "note": n});
        emit(json, &v, || {
            format!("{} {id}", action.to_uppercase().replace('_', " "))
        });
        return Ok(());
    }
    match c {
        NoteCommand::Add { title, content } => {
            let n = p.note_add(title, content)?;
            let v = json!({"action": "created", "id": n["id"], "note": n});
            emit(json, &v, || format!("CREATED note {}", note_line(&n)));
        }
        NoteCommand::List {
            pinned,
            archived,
            all,
        } => {
            let f = NoteFilter {
                pinned: *pinned,
                archived: *archived,
                all: *all,
            };
            let list = notes::list(p.store.conn(), f)?;
            let human = crate::output::listing(&list, "No notes.", note_line);
            emit(json, &Value::Array(list), || human);
        }
        NoteCommand::Show { id } => {
            let n = notes::show(p.store.conn(), &normalize_note_id(id))?;
            emit(json, &n, || {
                format!(
                    "{}\n\n{}\n\nupdated {}",
                    note_line(&n),
                    n["content"].as_str().unwrap_or(""),
                    n["updated_at"].as_str().unwrap_or("")
                )
            });
        }
        NoteCommand::Edit { id, title, content } => {
            let id = normalize_note_id(id);
            let (n, changed) = p.note_edit(&id, title.as_deref(), content.as_deref())?;
            let action = if changed { "updated" } else { "unchanged" };
            let v = json!({"action": action, "id": id, "note": n});
            emit(json, &v, || {
                format!("{} note {}", action.to_uppercase(), note_line(&n))
            });
        }
        NoteCommand::Delete { id } => {
            let id = normalize_note_id(id);
            let action = if p.note_delete(&id)? {
                "deleted"
            } else {
                "already_deleted"
            };
            emit(json, &json!({"action": action, "id": id}), || {
                format!("{} {id}", action.to_uppercase().replace('_', " "))
            });
        }
        _ => unreachable!("flag commands handled above"),
    }
    Ok(())
}
