//! `td sync conflicts` and `td sync resolve`.

use anyhow::Result;
use serde_json::Value;
use td_engine::conflicts::{self, Resolution};
use td_engine::Project;

use crate::output::{emit, invalid};

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
pub(crate) fn list(p: &Project, since: Option<&str>, all: bool, json: bool) -> Result<()> {
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
    let list = conflicts::list(p.store.conn(), all, None, since)?;
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
                    show_value(&c.kept),
                    c.json["kept"]["session"].as_str().unwrap_or("?"),
                    c.json["kept"]["machine"].as_str().unwrap_or("?"),
                    show_value(&c.overwritten),
                    c.json["overwritten"]["session"].as_str().unwrap_or("?"),
                    c.json["overwritten"]["machine"].as_str().unwrap_or("?"),
                    c.json["overwritten"]["time"].as_str().unwrap_or("?"),
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    emit(
        json,
        &Value::Array(list.into_iter().map(|c| c.json).collect()),
        || human,
    );
    Ok(())
}

/// `td sync resolve`.
pub(crate) fn resolve(
    p: &mut Project,
    id: &str,
    keep: Option<&str>,
    value: Option<&str>,
    json: bool,
) -> Result<()> {
    let how = match (keep, value) {
        (Some("kept"), None) => Resolution::Kept,
        (Some("overwritten"), None) => Resolution::Overwritten,
        (Some(other), None) => {
            return Err(invalid(format!(
                "invalid --keep '{other}': expected kept or overwritten"
            )))
        }
        (None, Some(v)) => Resolution::Value(v.to_string()),
        _ => {
            return Err(invalid(
                "say how to resolve: --keep kept, --keep overwritten, or --value <v>".into(),
            ))
        }
    };
    let c = p.resolve_conflict(id, &how)?;
    let mut v = c.json.clone();
    v["action"] = Value::from("resolved");
    emit(json, &v, || {
        format!("RESOLVED {} ({} {})", c.id, c.entity, c.field)
    });
    Ok(())
}
