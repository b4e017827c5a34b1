//! A project opened for one command: the store plus the acting session. This is the facade
//! the CLI calls; the commands themselves live in `ops`.

use std::path::Path;

use crate::error::Result;
use crate::identity::MachineIdentity;
use crate::session::{self, Session, SessionContext};
use crate::store::{InitOutcome, Store};

/// An open project and the session acting on it.
pub struct Project {
    /// The database.
    pub store: Store,
    /// The acting session.
    pub session: Session,
    /// The review policy every approve, close and reviewable list obeys (td's
    /// `review_policy_mode`; the front end sets it from the project's config).
    pub review_mode: crate::review_policy::Mode,
}

impl Project {
    /// Opens the project at `root` and resolves the session for `ctx`.
    pub fn open(root: &Path, identity: MachineIdentity, ctx: &SessionContext) -> Result<Project> {
        let mut store = Store::open(root, identity)?;
        let machine = store.identity().fingerprint();
        let session = session::resolve_tx(store.conn_mut(), &machine, ctx, false)?;
        store.maintain_keys(&session.id)?;
        // Cascades that changes received in the background (`td peer serve`) call for.
        store.settle_cascades(&session.id)?;
        Ok(Project {
            store,
            session,
            review_mode: Default::default(),
        })
    }

    /// Creates (or finds) the project at `root`, then resolves the session.
    pub fn init(
        root: &Path,
        identity: MachineIdentity,
        ctx: &SessionContext,
    ) -> Result<(Project, InitOutcome)> {
        let (mut store, outcome) = Store::init(root, identity, None)?;
        let machine = store.identity().fingerprint();
        let session = session::resolve_tx(store.conn_mut(), &machine, ctx, false)?;
        Ok((
            Project {
                store,
                session,
                review_mode: Default::default(),
            },
            outcome,
        ))
    }

    /// Ends the current session for this context and starts a new one (`td session --new`).
    pub fn new_session(&mut self, ctx: &SessionContext) -> Result<&Session> {
        let machine = self.store.identity().fingerprint();
        self.session = session::resolve_tx(self.store.conn_mut(), &machine, ctx, true)?;
        Ok(&self.session)
    }
}
