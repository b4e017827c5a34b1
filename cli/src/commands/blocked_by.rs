//! `td blocked-by`: what waits on an issue, as a tree.

use anyhow::Result;
use clap::Args as ClapArgs;
use td_engine::model::normalize_issue_id;
use td_engine::views::to_json;

use super::Cx;
use crate::output::{emit, issue_line};

/// Arguments of `td blocked-by`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Issue id.
    pub id: String,
    /// Only what depends on it directly.
    #[arg(long)]
    pub direct: bool,
}

/// Runs `td blocked-by`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let v = cx.p.blocked_by(&normalize_issue_id(&a.id), a.direct)?;
    let lines: Vec<String> = v
        .all
        .as_ref()
        .unwrap_or(&v.direct)
        .iter()
        .map(|id| {
            let mark = if v.direct.contains(id) {
                "└──"
            } else {
                "    └──"
            };
            match cx.p.issue(id) {
                Ok(i) => format!("{mark} {}", issue_line(&i)),
                Err(_) => format!("{mark} {id}"),
            }
        })
        .collect();
    emit(cx.json, &to_json(&v), || {
        let mut s = issue_line(&v.issue);
        if v.direct.is_empty() {
            s.push_str("\nNo issues blocked by this one");
            return s;
        }
        for l in &lines {
            s.push('\n');
            s.push_str(l);
        }
        match v.transitive_count {
            Some(t) => s.push_str(&format!(
                "\n\n{} issues blocked ({} direct, {t} transitive)",
                v.direct_count + t,
                v.direct_count
            )),
            None => s.push_str(&format!("\n\n{} issues directly blocked", v.direct_count)),
        }
        s
    });
    Ok(())
}
