//! Project settings in `.todos/config.json` (td's file): the hub connection and autosync.
//! `TD_DATABASE_URL` / `TD_DATABASE_TOKEN` override the file. Tokens are never printed whole.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{Map, Value};

use crate::output::invalid;

/// Keys `td config` knows.
pub(crate) const KEYS: [&str; 5] = [
    "database.mode",
    "database.url",
    "database.token",
    "sync.auto",
    "sync.discovery",
];

fn path(root: &Path) -> PathBuf {
    root.join(".todos").join("config.json")
}

/// The project config file.
pub(crate) struct ProjectConfig {
    path: PathBuf,
    value: Value,
}

impl ProjectConfig {
    /// Loads `.todos/config.json` (empty when absent).
    pub(crate) fn load(root: &Path) -> Result<ProjectConfig> {
        let path = path(root);
        let value = match std::fs::read_to_string(&path) {
            Ok(t) => serde_json::from_str(&t)
                .with_context(|| format!("{} is not valid JSON", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Value::Object(Map::new()),
            Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
        };
        Ok(ProjectConfig { path, value })
    }

    /// A dotted key's value as text.
    pub(crate) fn get(&self, key: &str) -> Option<String> {
        let mut v = &self.value;
        for part in key.split('.') {
            v = v.get(part)?;
        }
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    /// Sets a known key after validating its value.
    pub(crate) fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let v = match key {
            "database.mode" => match value {
                "local" | "libsql" | "turso" => Value::from(value),
                _ => {
                    return Err(invalid(format!(
                        "invalid database.mode '{value}': expected local, libsql or turso"
                    )))
                }
            },
            "database.url" => {
                td_transport::hub::HubClient::new(value, None)?;
                Value::from(value)
            }
            "database.token" => Value::from(value),
            "sync.auto" | "sync.discovery" => match value {
                "true" | "on" | "1" => Value::Bool(true),
                "false" | "off" | "0" => Value::Bool(false),
                _ => {
                    return Err(invalid(format!(
                        "invalid {key} '{value}': expected true or false"
                    )))
                }
            },
            _ => {
                return Err(invalid(format!(
                    "unknown config key '{key}': expected one of {}",
                    KEYS.join(", ")
                )))
            }
        };
        let (section, name) = key.split_once('.').expect("known keys are dotted");
        let root = self
            .value
            .as_object_mut()
            .ok_or_else(|| invalid("config.json is not an object".into()))?;
        let sect = root
            .entry(section)
            .or_insert_with(|| Value::Object(Map::new()));
        if !sect.is_object() {
            *sect = Value::Object(Map::new());
        }
        sect.as_object_mut()
            .expect("made an object")
            .insert(name.to_string(), v);
        Ok(())
    }

    /// A string-valued feature setting (td's `feature_string_flags`).
    pub(crate) fn feature_string(&self, name: &str) -> Option<String> {
        self.value
            .get("feature_string_flags")?
            .get(name)?
            .as_str()
            .map(String::from)
    }

    /// Sets (`Some`) or removes (`None`) a string-valued feature setting; the section goes
    /// when it empties, as td leaves it.
    pub(crate) fn set_feature_string(&mut self, name: &str, value: Option<&str>) -> Result<()> {
        let root = self
            .value
            .as_object_mut()
            .ok_or_else(|| invalid("config.json is not an object".into()))?;
        let flags = root
            .entry("feature_string_flags")
            .or_insert_with(|| Value::Object(Map::new()));
        if !flags.is_object() {
            *flags = Value::Object(Map::new());
        }
        let map = flags.as_object_mut().expect("made an object");
        match value {
            Some(v) => {
                map.insert(name.to_string(), Value::from(v));
            }
            None => {
                map.remove(name);
                if map.is_empty() {
                    root.remove("feature_string_flags");
                }
            }
        }
        Ok(())
    }

    /// Writes the file atomically, private to the user (it may hold a token).
    pub(crate) fn save(&self) -> Result<()> {
        let tmp = self.path.with_extension("json.tmp");
        let _ = std::fs::remove_file(&tmp); // a leftover would keep its old mode
        let text = serde_json::to_string_pretty(&self.value)? + "\n";
        td_transport::identity::write_private(&tmp, &text)?;
        std::fs::rename(&tmp, &self.path)
            .with_context(|| format!("write {}", self.path.display()))?;
        Ok(())
    }
}

/// The hub settings in effect (config file, overridden by the environment).
#[derive(Debug, Clone)]
pub(crate) struct HubSettings {
    /// `local`, `libsql` or `turso`.
    pub mode: String,
    /// Hub URL, if any.
    pub url: Option<String>,
    /// Token, if any.
    pub token: Option<String>,
    /// Autosync on.
    pub auto: bool,
}

/// Reads the effective hub settings.
pub(crate) fn hub_settings(root: &Path) -> Result<HubSettings> {
    let cfg = ProjectConfig::load(root)?;
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let url = env("TD_DATABASE_URL").or_else(|| cfg.get("database.url"));
    let mode = cfg.get("database.mode").unwrap_or_else(|| {
        if url.is_some() {
            "libsql".into()
        } else {
            "local".into()
        }
    });
    Ok(HubSettings {
        mode,
        url,
        token: env("TD_DATABASE_TOKEN").or_else(|| cfg.get("database.token")),
        auto: autosync_on(env("TD_SYNC_AUTO"), cfg.get("sync.auto")),
    })
}

/// Whether LAN discovery is on (`sync.discovery`, on unless set to false): `td peer serve`
/// announces itself and the sync loop looks for members' servers (docs/peer-sync.md).
pub(crate) fn discovery_on(root: &Path) -> bool {
    let cfg = ProjectConfig::load(root).ok();
    let v = cfg.and_then(|c| c.get("sync.discovery"));
    !matches!(
        v.as_deref().map(|v| v.trim().to_ascii_lowercase()),
        Some(ref x) if x == "false" || x == "0" || x == "off" || x == "no"
    )
}

/// Whether autosync runs, as td decides it (td-a4c721): on whenever the project syncs with a
/// hub, unless switched off (`TD_SYNC_AUTO=false`/`0`, which wins, or `sync.auto false`).
fn autosync_on(env: Option<String>, config: Option<String>) -> bool {
    let off = |v: &str| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "false" | "0" | "off" | "no"
        )
    };
    match (env, config) {
        (Some(e), _) => !off(&e),
        (None, Some(c)) => !off(&c),
        (None, None) => true,
    }
}
