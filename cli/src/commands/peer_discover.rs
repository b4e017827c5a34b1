//! `td peer discover`: td servers of this project on the local network (mDNS, announced by
//! `td peer serve`), with whether each is a member here, and `--add` to put the members found
//! in the address book. Nothing announced is trusted: the QUIC handshake proves the key when
//! the address is used, and only roster members are added.

use anyhow::Result;
use serde_json::{json, Value};
use td_engine::identity::fingerprint_of;
use td_engine::Project;

use crate::output::{emit, escape, invalid};

/// The longest a discovery listens.
const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs `td peer discover`.
pub(crate) fn run(p: &mut Project, wait: &str, add: bool, json: bool) -> Result<()> {
    let wait = crate::output::parse_interval(wait)?;
    if wait > MAX_WAIT {
        return Err(invalid(format!(
            "--wait is at most {} s",
            MAX_WAIT.as_secs()
        )));
    }
    let project = p.store.project_id()?;
    let me = p.store.identity().public_key();
    let members = p.members()?;
    let book = p.peers()?;
    // The machines an announcement can be recognised as: the roster's and the address book's.
    let mut keys: Vec<[u8; 32]> = Vec::new();
    for k in members
        .iter()
        .map(|m| &m.public_key)
        .chain(book.iter().map(|b| &b.public_key))
    {
        if let Ok(k) = td_engine::roster::parse_public_key(k) {
            if k != me && !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    let found = td_transport::discovery::discover(&project, &keys, wait)?;
    let mut rows: Vec<Value> = Vec::new();
    for f in &found {
        let Some(fkey) = f.key else {
            // A server of this project whose machine is not known here.
            rows.push(json!({
                "machine": null,
                "public_key": null,
                "addresses": f.addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                "member": false,
                "name": null,
                "role": null,
                "peer": null,
                "added": null,
            }));
            continue;
        };
        let key = hex::encode(fkey);
        let member = members.iter().find(|m| m.public_key == key && !m.removed);
        let known = book.iter().find(|b| b.public_key == key);
        // IPv4 first: the address a peer round dials.
        let addr = f.addrs.first().map(|a| a.to_string());
        let mut added = Value::Null;
        if let (true, Some(m), Some(addr)) = (add, member, &addr) {
            // Named as the address book already names it, else as the roster does.
            let name = known.map(|b| b.name.clone()).unwrap_or_else(|| {
                if m.name.is_empty() {
                    fingerprint_of(&fkey)
                } else {
                    m.name.clone()
                }
            });
            p.peer_add(&name, addr, &key)?;
            added = json!(name);
        }
        rows.push(json!({
            "machine": fingerprint_of(&fkey),
            "public_key": key,
            "addresses": f.addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "member": member.is_some(),
            "name": member.map(|m| m.name.clone()),
            "role": member.map(|m| m.role.clone()),
            "peer": known.map(|b| b.name.clone()),
            "added": added,
        }));
    }
    let v = Value::Array(rows.clone());
    emit(json, &v, || {
        if rows.is_empty() {
            return format!(
                "No td server of this project answered on the LAN within {} ms (is 'td peer serve' running there, on a non-loopback address?)",
                wait.as_millis()
            );
        }
        let mut out = format!(
            "FOUND {} td server(s) of this project on the LAN:",
            rows.len()
        );
        for r in &rows {
            let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
            let addrs: Vec<&str> = r["addresses"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let standing = if r["member"] == true {
                format!("{} {}", s("role"), s("name"))
            } else if r["machine"].is_null() {
                "a machine not known here".to_string()
            } else {
                "not a member here".to_string()
            };
            let book = match (r["added"].as_str(), r["peer"].as_str()) {
                (Some(n), _) => format!("added as peer '{n}'"),
                (None, Some(n)) => format!("peer '{n}'"),
                (None, None) if r["member"] == true => "not in the address book (--add)".into(),
                _ => String::new(),
            };
            out.push_str(&escape(&format!(
                "\n  {}  {}  {}  {}",
                if r["machine"].is_null() {
                    "?".to_string()
                } else {
                    s("machine")
                },
                addrs.join(","),
                standing.trim(),
                book
            )));
        }
        out
    });
    Ok(())
}
