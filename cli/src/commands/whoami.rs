//! `td whoami`: this machine and session.

use anyhow::Result;
use serde_json::json;

use super::Cx;
use crate::output::emit;

/// Runs `td whoami`.
pub(crate) fn run(cx: &mut Cx<'_>) -> Result<()> {
    let p = &*cx.p;
    let id = p.store.identity();
    let v = json!({"session": p.session.id, "name": p.session.name, "machine": id.fingerprint(),
        "public_key": id.public_key_hex(), "project": p.store.project_id()?});
    emit(cx.json, &v, || {
        format!(
            "session  {}\nmachine  {}\nkey      {}",
            p.session.id,
            id.fingerprint(),
            id.public_key_hex()
        )
    });
    Ok(())
}
