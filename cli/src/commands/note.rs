//! `td note`: add, list, show, edit, delete, pin/unpin, archive/unarchive.

use anyhow::Result;
use clap::Subcommand;
use serde_json::{json, Value};
use td_engine::ops::notes::{normalize_note_id, NoteFilter, NoteFlag};
use td_engine::views::{to_json, NoteView};

use super::Cx;
use crate::hub::Auto;

/// `td note list -o` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum NoteOutput {
    /// One line per note.
    Table,
    /// JSON, as with --json.
    Json,
}
use crate::output::emit;

/// `td note`.
#[derive(Debug, Subcommand)]
pub(crate) enum NoteCommand {
    /// Add a note.
    Add {
        /// Title.
        title: String,
        /// Content.
        #[arg(short = 'c', long, default_value = "")]
        content: String,
    },
    /// List notes: pinned first, archived ones hidden unless asked for.
    #[command(visible_alias = "ls")]
    List {
        /// Only pinned notes.
        #[arg(long)]
        pinned: bool,
        /// Only archived notes.
        #[arg(long, conflicts_with = "all")]
        archived: bool,
        /// Archived notes too.
        #[arg(short = 'a', long)]
        all: bool,
        /// Only deleted notes (restore one with 'td note restore').
        #[arg(long)]
        deleted: bool,
        /// Only notes whose title or content contains this.
        #[arg(short = 's', long)]
        search: Option<String>,
        /// At most this many.
        #[arg(short = 'n', long, default_value_t = 50)]
        limit: usize,
        /// `table` or `json` (td's spelling of --json).
        #[arg(short = 'o', long, value_name = "FORMAT")]
        output: Option<NoteOutput>,
    },
    /// Show a note.
    Show {
        /// Note id (nt-… or the hex part).
        id: String,
    },
    /// Change a note's title or content.
    Edit {
        /// Note id.
        id: String,
        /// New title.
        #[arg(short = 't', long)]
        title: Option<String>,
        /// New content.
        #[arg(short = 'c', long)]
        content: Option<String>,
    },
    /// Delete a note.
    Delete {
        /// Note id.
        id: String,
    },
    /// Undo a note's deletion.
    Restore {
        /// Note id.
        id: String,
    },
    /// Pin a note to the top of the list.
    Pin {
        /// Note id.
        id: String,
    },
    /// Unpin a note.
    Unpin {
        /// Note id.
        id: String,
    },
    /// Archive a note (hidden from `note list`).
    Archive {
        /// Note id.
        id: String,
    },
    /// Bring an archived note back.
    Unarchive {
        /// Note id.
        id: String,
    },
}

impl NoteCommand {
    /// Under autosync: listing and showing pull first; the rest push after.
    pub(crate) fn autosync(&self) -> Auto {
        match self {
            NoteCommand::List { .. } | NoteCommand::Show { .. } => Auto::PullBefore,
            NoteCommand::Add { .. }
            | NoteCommand::Edit { .. }
            | NoteCommand::Delete { .. }
            | NoteCommand::Restore { .. }
            | NoteCommand::Pin { .. }
            | NoteCommand::Unpin { .. }
            | NoteCommand::Archive { .. }
            | NoteCommand::Unarchive { .. } => Auto::PushAfter,
        }
    }
}

fn note_line(n: &NoteView) -> String {
    let mut flags = Vec::new();
    if n.pinned == 1 {
        flags.push("pinned");
    }
    if n.archived == 1 {
        flags.push("archived");
    }
    format!(
        "{}  {}{}",
        n.id,
        n.title,
        if flags.is_empty() {
            String::new()
        } else {
            format!("  ({})", flags.join(", "))
        }
    )
}

/// Sets or clears a note flag and reports it.
fn flag(
    cx: &mut Cx<'_>,
    id: &str,
    (f, on): (NoteFlag, bool),
    (yes, no): (&str, &str),
) -> Result<()> {
    let id = normalize_note_id(id);
    let (n, changed) = cx.p.note_flag(&id, f, on)?;
    let action = if changed { yes } else { no };
    let v = json!({"action": action, "id": id, "note": to_json(&n)});
    emit(cx.json, &v, || {
        format!("{} {id}", action.to_uppercase().replace('_', " "))
    });
    Ok(())
}

/// Runs one `td note` subcommand.
pub(crate) fn run(c: &NoteCommand, cx: &mut Cx<'_>) -> Result<()> {
    let json = cx.json;
    match c {
        NoteCommand::Pin { id } => flag(
            cx,
            id,
            (NoteFlag::Pinned, true),
            ("pinned", "already_pinned"),
        ),
        NoteCommand::Unpin { id } => flag(
            cx,
            id,
            (NoteFlag::Pinned, false),
            ("unpinned", "not_pinned"),
        ),
        NoteCommand::Archive { id } => flag(
            cx,
            id,
            (NoteFlag::Archived, true),
            ("archived", "already_archived"),
        ),
        NoteCommand::Unarchive { id } => flag(
            cx,
            id,
            (NoteFlag::Archived, false),
            ("unarchived", "not_archived"),
        ),
        NoteCommand::Add { title, content } => {
            let n = cx.p.note_add(title, content)?;
            let v = json!({"action": "created", "id": n.id, "note": to_json(&n)});
            emit(json, &v, || format!("CREATED note {}", note_line(&n)));
            Ok(())
        }
        NoteCommand::List {
            pinned,
            archived,
            all,
            deleted,
            search,
            limit,
            output,
        } => {
            let f = NoteFilter {
                pinned: *pinned,
                archived: *archived,
                all: *all,
                deleted: *deleted,
                search: search.clone(),
                limit: Some(*limit),
            };
            let list = cx.p.notes(f)?;
            let human = crate::output::listing(&list, "No notes.", note_line);
            let json = json || *output == Some(NoteOutput::Json);
            emit(
                json,
                &Value::Array(list.iter().map(to_json).collect()),
                || human,
            );
            Ok(())
        }
        NoteCommand::Show { id } => {
            let n = cx.p.note(&normalize_note_id(id))?;
            emit(json, &to_json(&n), || {
                format!(
                    "{}\n\n{}\n\nupdated {}",
                    note_line(&n),
                    n.content,
                    n.updated_at
                )
            });
            Ok(())
        }
        NoteCommand::Edit { id, title, content } => {
            let id = normalize_note_id(id);
            let (n, changed) = cx.p.note_edit(&id, title.as_deref(), content.as_deref())?;
            let action = if changed { "updated" } else { "unchanged" };
            let v = json!({"action": action, "id": id, "note": to_json(&n)});
            emit(json, &v, || {
                format!("{} note {}", action.to_uppercase(), note_line(&n))
            });
            Ok(())
        }
        NoteCommand::Restore { id } => {
            let id = normalize_note_id(id);
            let action = if cx.p.note_restore(&id)? {
                "restored"
            } else {
                "not_deleted"
            };
            emit(json, &json!({"action": action, "id": id}), || {
                format!("{} {id}", action.to_uppercase().replace('_', " "))
            });
            Ok(())
        }
        NoteCommand::Delete { id } => {
            let id = normalize_note_id(id);
            let action = if cx.p.note_delete(&id)? {
                "deleted"
            } else {
                "already_deleted"
            };
            emit(json, &json!({"action": action, "id": id}), || {
                format!("{} {id}", action.to_uppercase().replace('_', " "))
            });
            Ok(())
        }
    }
}
