//! `td sync conflicts` and `td sync resolve`.

use anyhow::Result;
use clap::ValueEnum;
use serde_json::Value;
use td_engine::conflicts::Resolution;
use td_engine::Project;

use crate::output::emit;

/// Which side of a conflict `td sync resolve --keep` keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Side {
    /// The value that won.
    Kept,
    /// The value that was overwritten.
    Overwritten,
}

fn or_unknown(s: &str) -> &str {
    if s.is_empty() {
        "?"
    } else {
        s
    }
}

fn show_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Object(m) if m.contains_key("status") => {
            let who = m
                .get("implementer_session")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty());
            format!(
                "{}{}",
                m["status"].as_str().unwrap_or("?"),
                who.map(|w| format!(" (implementer {w})"))
                    .unwrap_or_default()
            )
        }
        other => other.to_string(),
    }
}

/// `td sync conflicts`.
pub(crate) fn list(
    p: &Project,
    since: Option<&str>,
    all: bool,
    limit: usize,
    json: bool,
) -> Result<()> {
    let since = since
        .map(crate::output::parse_duration)
        .transpose()?
        .map(|secs| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0)
                - secs
        });
    let mut list = p.conflicts(all, since)?;
    list.truncate(limit);
    let human = if list.is_empty() {
        if all {
            "No conflicts.".to_string()
        } else {
            "No unresolved conflicts.".to_string()
        }
    } else {
        list.iter()
            .map(|c| {
                let field = if c.field == "wf" { "status (workflow)".to_string() } else { c.field.clone() };
                format!(
                    "{}  {} {}{}\n  kept:        {}  by {} on {}\n  overwritten: {}  by {} on {} at {}",
                    c.id,
                    c.entity,
                    field,
                    if c.resolved { "  [resolved]" } else { "" },
                    show_value(&c.kept.value),
                    c.kept.session.as_deref().unwrap_or("?"),
                    or_unknown(&c.kept.machine),
                    show_value(&c.overwritten.value),
                    c.overwritten.session.as_deref().unwrap_or("?"),
                    or_unknown(&c.overwritten.machine),
                    c.overwritten.time.as_deref().unwrap_or("?"),
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    emit(
        json,
        &Value::Array(list.iter().map(|c| c.to_json()).collect()),
        || human,
    );
    Ok(())
}

/// `td sync resolve`.
pub(crate) fn resolve(
    p: &mut Project,
    id: &str,
    keep: Option<Side>,
    value: Option<&str>,
    json: bool,
) -> Result<()> {
    let how = match (keep, value) {
        (Some(Side::Kept), _) => Resolution::Kept,
        (Some(Side::Overwritten), _) => Resolution::Overwritten,
        (None, Some(v)) => Resolution::Value(v.to_string()),
        (None, None) => {
            return Err(crate::output::invalid(
                "say how to resolve: --keep kept, --keep overwritten, or --value <v>".into(),
            ))
        }
    };
    let c = p.resolve_conflict(id, &how)?;
    let mut v = c.to_json();
    v["action"] = Value::from("resolved");
    emit(json, &v, || {
        format!("RESOLVED {} ({} {})", c.id, c.entity, c.field)
    });
    Ok(())
}
