//! `td task`: issues of type task (`create` takes every create flag).

use anyhow::Result;
use clap::Subcommand;

use super::Cx;
use crate::hub::Auto;

/// `td task`.
#[derive(Debug, Subcommand)]
pub(crate) enum TaskCommand {
    /// Create a task.
    Create(Box<super::create::Args>),
    /// List tasks.
    List {
        /// Include closed tasks.
        #[arg(short = 'a', long)]
        all: bool,
    },
}

impl TaskCommand {
    /// Under autosync: listing pulls first, creating pushes after.
    pub(crate) fn autosync(&self) -> Auto {
        match self {
            TaskCommand::Create(_) => Auto::PushAfter,
            TaskCommand::List { .. } => Auto::PullBefore,
        }
    }
}

/// Runs one `td task` subcommand.
pub(crate) fn run(c: &TaskCommand, cx: &mut Cx<'_>) -> Result<()> {
    match c {
        TaskCommand::Create(a) => {
            let mut a = (**a).clone();
            a.fields.issue_type = Some("task".into());
            super::create::run(&a, cx)
        }
        TaskCommand::List { all } => {
            let a = super::list::Args {
                types: vec!["task".into()],
                all: *all,
                ..Default::default()
            };
            super::list::run(&a, cx)
        }
    }
}
