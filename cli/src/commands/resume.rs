//! `td resume`: shows an issue's context (as `td show`) and focuses it.

use anyhow::Result;
use clap::Args as ClapArgs;
use td_engine::model::normalize_issue_id;

use super::Cx;

/// Arguments of `td resume`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Issue id (default: the focused issue).
    pub id: Option<String>,
}

/// Runs `td resume`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let ids: Vec<String> = a.id.iter().map(|i| normalize_issue_id(i)).collect();
    super::show::run(
        &super::show::Args {
            ids: ids.clone(),
            ..Default::default()
        },
        cx,
    )?;
    if let Some(id) = ids.first() {
        cx.p.focus(id)?;
        if !cx.json {
            println!("FOCUSED {id}");
        }
    }
    Ok(())
}
