//! `td update`: changes fields of issues.

use anyhow::Result;
use clap::Args as ClapArgs;

use super::common::{for_each, Detail, FieldArgs, IfMatch};
use super::Cx;

/// Arguments of `td update`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Issue ids.
    #[arg(required = true)]
    pub ids: Vec<String>,
    /// New title.
    #[arg(long)]
    pub title: Option<String>,
    #[command(flatten)]
    pub fields: FieldArgs,
    /// New status (td's transitions apply).
    #[arg(short = 's', long)]
    pub status: Option<String>,
    /// Append instead of replace: alone, the --description/--acceptance given are appended
    /// (td's switch); with a value, that text is appended to the description.
    #[arg(long, num_args = 0..=1, default_missing_value = "", value_name = "TEXT")]
    pub append: Option<String>,
    /// Replace the issues this one depends on (comma-separated or repeated; "" clears).
    #[arg(long, value_name = "IDS")]
    pub depends_on: Option<Vec<String>>,
    /// Replace the issues this one blocks (comma-separated or repeated; "" clears).
    #[arg(long, value_name = "IDS")]
    pub blocks: Option<Vec<String>>,
    /// Add a comment to each updated issue.
    #[arg(short = 'm', long, visible_aliases = ["note"], visible_short_alias = 'c', value_name = "TEXT")]
    pub comment: Option<String>,
    #[command(flatten)]
    pub if_match: IfMatch,
}

/// Runs `td update`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let mut f = a.fields.fields()?;
    f.title = a.title.clone();
    f.status = a.status.clone();
    let ids = |v: &Option<Vec<String>>| {
        v.as_ref().map(|v| {
            v.iter()
                .flat_map(|s| s.split(','))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
    };
    f.depends_on = ids(&a.depends_on);
    f.blocks = ids(&a.blocks);
    f.comment = a.comment.clone();
    match a.append.as_deref() {
        // td's switch: the text fields given are appended, not replaced.
        Some("") => {
            f.append = f.description.take();
            f.append_acceptance = f.acceptance.take();
            if f.append.is_none() && f.append_acceptance.is_none() {
                return Err(crate::output::invalid(
                    "--append appends the --description or --acceptance given: give one".into(),
                ));
            }
        }
        Some(text) => f.append = Some(text.to_string()),
        None => {}
    }
    let detail = Detail::Current(cx.root);
    for_each(
        cx.json,
        &a.ids,
        ("updated", "unchanged"),
        |id| cx.p.update(id, &f, a.if_match.version()),
        detail,
    )
}
