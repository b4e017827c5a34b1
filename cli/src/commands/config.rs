//! `td config`: the project's settings file (.todos/config.json). Tokens are never printed
//! whole.

use std::path::Path;

use anyhow::Result;
use clap::Subcommand;
use serde_json::{json, Map, Value};

use crate::config::{ProjectConfig, KEYS};
use crate::output::{emit, invalid};

/// `td config`.
#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Set a key.
    Set {
        /// database.mode | database.url | database.token | sync.auto
        key: String,
        /// Value.
        value: String,
    },
    /// Print a key (tokens masked).
    Get {
        /// Key.
        key: String,
    },
    /// Print every key (tokens masked).
    List,
}

/// A setting as it may be printed: tokens masked, a hub URL's password replaced by `***`.
pub(crate) fn shown(key: &str, value: &str) -> String {
    match key {
        "database.token" => td_transport::hub::mask_token(value),
        "database.url" => td_transport::hub::mask_url(value),
        _ => value.to_string(),
    }
}

/// Runs one `td config` subcommand (before any project is open).
pub(crate) fn run(c: &ConfigCommand, root: &Path, json: bool) -> Result<()> {
    if !root.join(".todos").is_dir() {
        return Err(td_engine::EngineError::NoDatabase.into());
    }
    let mut cfg = ProjectConfig::load(root)?;
    match c {
        ConfigCommand::Set { key, value } => {
            cfg.set(key, value)?;
            cfg.save()?;
            emit(
                json,
                &json!({"action": "set", "key": key, "value": shown(key, value)}),
                || format!("SET {key} = {}", shown(key, value)),
            );
        }
        ConfigCommand::Get { key } => {
            if !KEYS.contains(&key.as_str()) {
                return Err(invalid(format!(
                    "unknown config key '{key}': expected one of {}",
                    KEYS.join(", ")
                )));
            }
            let v = cfg.get(key).map(|v| shown(key, &v));
            emit(json, &json!({"key": key, "value": v}), || {
                v.clone().unwrap_or_default()
            });
        }
        ConfigCommand::List => {
            let mut m = Map::new();
            for k in KEYS {
                m.insert(
                    k.to_string(),
                    cfg.get(k)
                        .map(|v| Value::from(shown(k, &v)))
                        .unwrap_or(Value::Null),
                );
            }
            let human = KEYS
                .iter()
                .map(|k| {
                    format!(
                        "{k} = {}",
                        cfg.get(k).map(|v| shown(k, &v)).unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            emit(json, &Value::Object(m), || human);
        }
    }
    Ok(())
}
