//! `td create`: a new issue.

use anyhow::Result;
use clap::Args as ClapArgs;
use serde_json::json;

use super::common::FieldArgs;
use super::Cx;
use crate::output::emit;

/// Arguments of `td create`.
#[derive(Debug, Clone, ClapArgs)]
pub(crate) struct Args {
    /// Title (or use --title).
    pub title: Option<String>,
    /// Title.
    #[arg(long = "title", value_name = "TITLE")]
    pub title_flag: Option<String>,
    #[command(flatten)]
    pub fields: FieldArgs,
    /// Issues this one depends on (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    pub depends_on: Vec<String>,
    /// Issues this one blocks (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    pub blocks: Vec<String>,
}

/// Runs `td create`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let mut f = a.fields.fields()?;
    f.title = a.title_flag.clone().or_else(|| a.title.clone());
    let issue = cx.p.create(&f, &a.depends_on, &a.blocks)?;
    let v = json!({"action": "created", "id": issue.id, "status": issue.status, "issue": issue.to_json()});
    emit(cx.json, &v, || format!("CREATED {}", issue.id));
    Ok(())
}
