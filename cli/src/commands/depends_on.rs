//! `td depends-on`: what an issue waits on.

use anyhow::Result;
use clap::Args as ClapArgs;
use td_engine::model::normalize_issue_id;
use td_engine::views::to_json;

use super::Cx;
use crate::output::{emit, issue_line};

/// Arguments of `td depends-on`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Issue id.
    pub id: String,
}

/// Runs `td depends-on`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let v = cx.p.depends_on(&normalize_issue_id(&a.id))?;
    emit(cx.json, &to_json(&v), || {
        let mut s = issue_line(&v.issue);
        if v.dependencies.is_empty() {
            s.push_str("\nNo dependencies");
            return s;
        }
        s.push_str("\n└── depends on:");
        let mut blocking = 0;
        for d in &v.dependencies {
            let done = d.status == "closed";
            blocking += usize::from(!done);
            s.push_str(&format!(
                "\n    {} {}",
                if done { "✓" } else { "○" },
                issue_line(d)
            ));
        }
        s.push_str(&format!(
            "\n\n{blocking} blocking, {} resolved",
            v.dependencies.len() - blocking
        ));
        s
    });
    Ok(())
}
