//! `td epic`: issues of type epic.

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;

use super::common::FieldArgs;
use super::Cx;
use crate::hub::Auto;
use crate::output::emit;

/// `td epic`.
#[derive(Debug, Subcommand)]
pub(crate) enum EpicCommand {
    /// Create an epic.
    Create {
        /// Title (or --title).
        title: Option<String>,
        /// Title, as td also takes it (the argument wins when both are given).
        #[arg(long = "title", value_name = "TITLE")]
        title_flag: Option<String>,
        #[command(flatten)]
        fields: Box<FieldArgs>,
    },
    /// List epics.
    List {
        /// Include closed epics.
        #[arg(short = 'a', long)]
        all: bool,
    },
}

impl EpicCommand {
    /// Under autosync: listing pulls first, creating pushes after.
    pub(crate) fn autosync(&self) -> Auto {
        match self {
            EpicCommand::Create { .. } => Auto::PushAfter,
            EpicCommand::List { .. } => Auto::PullBefore,
        }
    }
}

/// Runs one `td epic` subcommand.
pub(crate) fn run(c: &EpicCommand, cx: &mut Cx<'_>) -> Result<()> {
    match c {
        EpicCommand::Create {
            title,
            title_flag,
            fields,
        } => {
            let Some(title) = title.as_ref().or(title_flag.as_ref()) else {
                return Err(crate::output::invalid(
                    "requires a title argument or --title flag".into(),
                ));
            };
            let mut f = fields.fields()?;
            f.title = Some(title.clone());
            f.issue_type = Some("epic".into());
            let issue = cx.p.create(&f, &[], &[])?;
            let v = json!({"action": "created", "id": issue.id, "status": issue.status, "issue": issue.to_json()});
            emit(cx.json, &v, || format!("CREATED EPIC {}", issue.id));
            Ok(())
        }
        EpicCommand::List { all } => {
            let a = super::list::Args {
                types: vec!["epic".into()],
                all: *all,
                ..Default::default()
            };
            super::list::run(&a, cx)
        }
    }
}
