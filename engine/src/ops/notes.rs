//! Notes (`td note`): free-form project notes with pin, archive and soft delete. Each note is
//! one document; its content is a text object, so concurrent edits to different parts of a
//! note both survive.

use rusqlite::{Connection, OptionalExtension};

use crate::doc;
use crate::error::{invalid, not_found, Result};
use crate::model::{now_timestamp, Kind};
use crate::project::Project;
use crate::views::{self, NoteView};

/// Which notes `td note list` shows.
#[derive(Debug, Clone, Default)]
pub struct NoteFilter {
    /// Only pinned notes.
    pub pinned: bool,
    /// Only archived notes.
    pub archived: bool,
    /// Archived notes too.
    pub all: bool,
    /// Only soft-deleted notes (td's `--deleted`).
    pub deleted: bool,
    /// Only notes whose title or content contains this (case-insensitive).
    pub search: Option<String>,
    /// At most this many.
    pub limit: Option<usize>,
}

/// A flag `td note pin/unpin/archive/unarchive` sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteFlag {
    /// `pinned`.
    Pinned,
    /// `archived`.
    Archived,
}

/// Normalises a note id from user input: `abc123` means `nt-abc123`.
pub fn normalize_note_id(s: &str) -> String {
    let s = s.trim();
    if s.starts_with("nt-") {
        s.to_string()
    } else {
        format!("nt-{s}")
    }
}

fn row(conn: &Connection, id: &str) -> Result<Option<NoteView>> {
    Ok(conn
        .prepare_cached("SELECT * FROM notes WHERE id = ?1")?
        .query_row([id], views::from_row)
        .optional()?)
}

/// A live note, or `not_found`.
pub fn show(conn: &Connection, id: &str) -> Result<NoteView> {
    match row(conn, id)? {
        Some(n) if n.deleted_at.is_none() => Ok(n),
        Some(_) => Err(not_found(format!("note {id} is deleted"))),
        None => Err(not_found(format!("note not found: {id}"))),
    }
}

/// Live notes matching `f`: pinned first, then most recently updated.
pub fn list(conn: &Connection, f: NoteFilter) -> Result<Vec<NoteView>> {
    let mut stmt =
        conn.prepare_cached("SELECT * FROM notes ORDER BY pinned DESC, updated_at DESC, id")?;
    let all = stmt
        .query_map([], views::from_row::<NoteView>)?
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let needle = f.search.as_deref().map(str::to_lowercase);
    Ok(all
        .into_iter()
        .filter(|n| n.deleted_at.is_some() == f.deleted)
        .filter(|n| !f.pinned || n.pinned == 1)
        .filter(|n| {
            let archived = n.archived == 1;
            if f.archived {
                archived
            } else {
                f.all || f.deleted || !archived
            }
        })
        .filter(|n| {
            needle.as_ref().is_none_or(|q| {
                n.title.to_lowercase().contains(q) || n.content.to_lowercase().contains(q)
            })
        })
        .take(f.limit.unwrap_or(usize::MAX))
        .collect())
}

fn check_title(title: &str) -> Result<String> {
    let t = title.trim();
    if t.is_empty() {
        return Err(invalid("note title is required"));
    }
    if t.chars().count() > crate::model::MAX_TITLE_CHARS {
        return Err(invalid(format!(
            "note title is too long (max {} characters)",
            crate::model::MAX_TITLE_CHARS
        )));
    }
    Ok(t.to_string())
}

impl Project {
    /// `td note add <title> -c <content>`.
    pub fn note_add(&mut self, title: &str, content: &str) -> Result<NoteView> {
        let title = check_title(title)?;
        let me = self.session.id.clone();
        self.store.write(&me, |tx| {
            let id = tx.fresh_id(Kind::Note)?;
            let now = now_timestamp();
            tx.change(&id, |d| {
                doc::put_str(d, "title", &title)?;
                doc::put_text(d, "content", content)?;
                doc::put_str(d, "created_at", &now)?;
                doc::put_str(d, "updated_at", &now)?;
                doc::put_int(d, "pinned", 0)?;
                doc::put_int(d, "archived", 0)?;
                doc::put_opt(d, "deleted_at", None)
            })?;
            show(tx.conn(), &id)
        })
    }

    /// `td note edit <id> [--title] [-c]`. Returns the note and whether it changed.
    pub fn note_edit(
        &mut self,
        id: &str,
        title: Option<&str>,
        content: Option<&str>,
    ) -> Result<(NoteView, bool)> {
        let title = title.map(check_title).transpose()?;
        if title.is_none() && content.is_none() {
            return Err(invalid("nothing to change: give --title or --content"));
        }
        let me = self.session.id.clone();
        self.store.write(&me, |tx| {
            let note = show(tx.conn(), id)?;
            let new_title = title.filter(|t| &note.title != t);
            let new_content = content.filter(|c| note.content != *c);
            if new_title.is_none() && new_content.is_none() {
                return Ok((note, false));
            }
            tx.change(id, |d| {
                if let Some(t) = &new_title {
                    doc::put_str(d, "title", t)?;
                }
                if let Some(c) = new_content {
                    doc::put_text(d, "content", c)?;
                }
                doc::put_str(d, "updated_at", &now_timestamp())
            })?;
            Ok((show(tx.conn(), id)?, true))
        })
    }

    /// `td note pin/unpin/archive/unarchive`. Returns the note and whether it changed.
    pub fn note_flag(&mut self, id: &str, flag: NoteFlag, on: bool) -> Result<(NoteView, bool)> {
        let key = match flag {
            NoteFlag::Pinned => "pinned",
            NoteFlag::Archived => "archived",
        };
        let me = self.session.id.clone();
        self.store.write(&me, |tx| {
            let note = show(tx.conn(), id)?;
            let current = match flag {
                NoteFlag::Pinned => note.pinned,
                NoteFlag::Archived => note.archived,
            };
            if (current == 1) == on {
                return Ok((note, false));
            }
            tx.change(id, |d| {
                doc::put_int(d, key, on as i64)?;
                doc::put_str(d, "updated_at", &now_timestamp())
            })?;
            Ok((show(tx.conn(), id)?, true))
        })
    }

    /// `td note restore <id>`: undoes a soft delete. False when the note was not deleted.
    pub fn note_restore(&mut self, id: &str) -> Result<bool> {
        let me = self.session.id.clone();
        self.store.write(&me, |tx| {
            match row(tx.conn(), id)? {
                None => return Err(not_found(format!("note not found: {id}"))),
                Some(n) if n.deleted_at.is_none() => return Ok(false),
                Some(_) => {}
            }
            tx.change(id, |d| {
                doc::put_opt(d, "deleted_at", None)?;
                doc::put_str(d, "updated_at", &now_timestamp())
            })?;
            Ok(true)
        })
    }

    /// `td note delete <id>`: soft delete (sets `deleted_at`). False when already deleted.
    pub fn note_delete(&mut self, id: &str) -> Result<bool> {
        let me = self.session.id.clone();
        self.store.write(&me, |tx| {
            match row(tx.conn(), id)? {
                None => return Err(not_found(format!("note not found: {id}"))),
                Some(n) if n.deleted_at.is_some() => return Ok(false),
                Some(_) => {}
            }
            tx.change(id, |d| doc::put_str(d, "deleted_at", &now_timestamp()))?;
            Ok(true)
        })
    }
}
