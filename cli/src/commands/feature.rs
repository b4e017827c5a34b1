//! `td feature`: td's feature settings. The one we implement is `review_policy_mode`, which
//! selects the engine's review policy (`td_engine::review_policy`). Resolution follows td:
//! `TD_FEATURE_REVIEW_POLICY_MODE`, then `.todos/config.json` (`feature_string_flags`), then
//! the default (trusted). An invalid value is an error, never a silent default.

use std::path::Path;

use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::json;
use td_engine::review_policy::{Mode, FEATURE};

use crate::config::ProjectConfig;
use crate::output::{emit, invalid};

/// `td feature`.
#[derive(Debug, Subcommand)]
pub(crate) enum FeatureCommand {
    /// Every feature, its value and where the value comes from.
    List,
    /// One feature's value and source (env, config or default).
    Get {
        /// Feature name (review_policy_mode).
        name: String,
    },
    /// Set a feature in .todos/config.json.
    #[command(after_help = "Example:\n  td feature set review_policy_mode delegated")]
    Set {
        /// Feature name (review_policy_mode).
        name: String,
        /// review_policy_mode: trusted (default), delegated, balanced or strict.
        value: String,
    },
    /// Remove a feature setting (back to the default).
    Unset {
        /// Feature name (review_policy_mode).
        name: String,
    },
}

const ENV: &str = "TD_FEATURE_REVIEW_POLICY_MODE";

/// Where a feature's value came from.
fn resolve(root: &Path) -> Result<(Mode, &'static str)> {
    if let Some(v) = std::env::var(ENV).ok().filter(|v| !v.trim().is_empty()) {
        let mode = v.parse().with_context(|| format!("{ENV}={v} is invalid"))?;
        return Ok((mode, "env"));
    }
    match ProjectConfig::load(root)?.feature_string(FEATURE) {
        Some(v) => {
            let mode = v
                .parse()
                .with_context(|| format!("config {FEATURE}=\"{v}\" is invalid"))?;
            Ok((mode, "config"))
        }
        None => Ok((Mode::default(), "default")),
    }
}

/// The review policy mode in effect for the project at `root`.
pub(crate) fn review_mode(root: &Path) -> Result<Mode> {
    Ok(resolve(root)?.0)
}

fn known(name: &str) -> Result<String> {
    let name = name.trim().to_ascii_lowercase();
    if name != FEATURE {
        return Err(invalid(format!(
            "unknown feature '{name}': expected {FEATURE}"
        )));
    }
    Ok(name)
}

/// Runs one `td feature` subcommand (before any project is open).
pub(crate) fn run(c: &FeatureCommand, root: &Path, json: bool) -> Result<()> {
    if !root.join(".todos").is_dir() {
        return Err(td_engine::EngineError::NoDatabase.into());
    }
    match c {
        FeatureCommand::List | FeatureCommand::Get { .. } => {
            if let FeatureCommand::Get { name } = c {
                known(name)?;
            }
            let (mode, source) = resolve(root)?;
            let row = json!({"name": FEATURE, "value": mode, "source": source});
            let out = if matches!(c, FeatureCommand::List) {
                json!([row])
            } else {
                row
            };
            emit(json, &out, || format!("{FEATURE}={mode} (source={source})"));
        }
        FeatureCommand::Set { name, value } => {
            let name = known(name)?;
            let mode: Mode = value.parse()?;
            let mut cfg = ProjectConfig::load(root)?;
            cfg.set_feature_string(&name, Some(mode.as_str()))?;
            cfg.save()?;
            emit(
                json,
                &json!({"action": "set", "name": name, "value": mode}),
                || format!("feature {name} set to {mode}"),
            );
        }
        FeatureCommand::Unset { name } => {
            let name = known(name)?;
            let mut cfg = ProjectConfig::load(root)?;
            cfg.set_feature_string(&name, None)?;
            cfg.save()?;
            emit(json, &json!({"action": "unset", "name": name}), || {
                format!("feature {name} unset")
            });
        }
    }
    Ok(())
}
