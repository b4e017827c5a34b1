//! `td dep`: dependencies between issues. td's forms: `dep add <a> <b>…`, `dep rm <a> <b>`,
//! `dep <a> <b>` (add), `dep <a>` (what it depends on), `dep <a> --blocking` (what waits on
//! it).

use anyhow::Result;
use clap::{Args as ClapArgs, Subcommand};
use serde_json::json;
use td_engine::model::normalize_issue_id;

use super::Cx;
use crate::output::{emit, one_or_many};

/// Arguments of `td dep`.
#[derive(Debug, ClapArgs)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct Args {
    #[command(subcommand)]
    pub cmd: Option<DepCommand>,
    /// `<issue> [<depends-on>]`: add the dependency, or show the issue's dependencies.
    #[arg(num_args = 0..=2, value_name = "ISSUE [DEPENDS_ON]")]
    pub ids: Vec<String>,
    /// With one issue: show what waits on it instead.
    #[arg(long)]
    pub blocking: bool,
}

/// `td dep` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum DepCommand {
    /// ISSUE depends on each DEPENDS_ON.
    Add {
        /// The dependent issue.
        issue: String,
        /// The issues it waits for.
        #[arg(required = true)]
        depends_on: Vec<String>,
    },
    /// Remove a dependency.
    #[command(visible_alias = "remove")]
    Rm {
        /// The dependent issue.
        issue: String,
        /// The issue it waited for.
        depends_on: String,
    },
}

pub(crate) fn add(cx: &mut Cx<'_>, issue: &str, on: &[String]) -> Result<()> {
    let issue = normalize_issue_id(issue);
    let mut values = Vec::new();
    let mut lines = Vec::new();
    for o in on {
        let o = normalize_issue_id(o);
        let added = cx.p.dep_add(&issue, &o)?;
        let action = if added { "added" } else { "already_exists" };
        lines.push(if added {
            format!("ADDED {issue} depends on {o}")
        } else {
            format!("{issue} already depends on {o}")
        });
        values.push(json!({"action": action, "issue_id": issue, "depends_on_id": o}));
    }
    emit(cx.json, &one_or_many(values), || lines.join("\n"));
    Ok(())
}

/// Runs `td dep`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    match (&a.cmd, a.ids.as_slice()) {
        (Some(DepCommand::Add { issue, depends_on }), _) => add(cx, issue, depends_on),
        (Some(DepCommand::Rm { issue, depends_on }), _) => {
            let (i, o) = (normalize_issue_id(issue), normalize_issue_id(depends_on));
            let removed = cx.p.dep_rm(&i, &o)?;
            let action = if removed { "removed" } else { "not_found" };
            emit(
                cx.json,
                &json!({"action": action, "issue_id": i, "depends_on_id": o}),
                || {
                    if removed {
                        format!("REMOVED {i} no longer depends on {o}")
                    } else {
                        format!("{i} did not depend on {o}")
                    }
                },
            );
            Ok(())
        }
        (None, [issue, on]) => add(cx, issue, std::slice::from_ref(on)),
        (None, [issue]) if a.blocking => super::blocked_by::run(
            &super::blocked_by::Args {
                id: issue.clone(),
                direct: false,
            },
            cx,
        ),
        (None, [issue]) => super::depends_on::run(&super::depends_on::Args { id: issue.clone() }, cx),
        (None, _) => Err(crate::output::invalid(
                "td dep add <issue> <depends-on>…, td dep rm <issue> <depends-on>, or td dep <issue> [--blocking]".into(),
        )),
    }
}

impl Args {
    /// Under autosync: showing pulls first, changing pushes after.
    pub(crate) fn autosync(&self) -> crate::hub::Auto {
        match (&self.cmd, self.ids.len()) {
            (Some(_), _) | (None, 2) => crate::hub::Auto::PushAfter,
            _ => crate::hub::Auto::PullBefore,
        }
    }
}
