//! `td tree`: an issue and all its descendants.

use anyhow::Result;
use clap::Args as ClapArgs;
use td_engine::model::normalize_issue_id;
use td_engine::views::{to_json, TreeNode};

use super::Cx;
use crate::output::{emit, issue_line};

/// Arguments of `td tree`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Issue id.
    pub id: String,
    /// At most this many levels below the issue.
    #[arg(long)]
    pub depth: Option<usize>,
}

fn lines(node: &TreeNode, depth: usize, out: &mut Vec<String>) {
    out.push(format!("{}{}", "  ".repeat(depth), issue_line(&node.issue)));
    for c in &node.children {
        lines(c, depth + 1, out);
    }
}

/// Runs `td tree`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let t = cx.p.tree(&normalize_issue_id(&a.id), a.depth)?;
    emit(cx.json, &to_json(&t), || {
        let mut out = Vec::new();
        lines(&t, 0, &mut out);
        out.join("\n")
    });
    Ok(())
}
