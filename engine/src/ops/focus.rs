//! `td focus` / `td unfocus`: which issue this session is on. Focus is local session state
//! (td's `session_state`), never synced: it says where this agent is, not what the team does.

use crate::error::Result;
use crate::project::Project;
use crate::query::{self, Issue};
use crate::session;

impl Project {
    /// `td focus <id>`: makes a live issue this session's focus (`td log`, `td show` and
    /// `td usage` default to it).
    pub fn focus(&mut self, id: &str) -> Result<Issue> {
        let issue = query::live_issue(self.store.conn(), id)?;
        session::set_state(self.store.conn(), &self.session.id, "focused_issue_id", id)?;
        Ok(issue)
    }

    /// `td unfocus`: clears the focus; returns the issue that was focused, if any.
    pub fn unfocus(&mut self) -> Result<Option<String>> {
        let was = session::focused_issue(self.store.conn(), &self.session.id)?;
        if was.is_some() {
            session::set_state(self.store.conn(), &self.session.id, "focused_issue_id", "")?;
        }
        Ok(was)
    }
}
