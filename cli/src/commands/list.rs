//! `td list`: issues by filter (open ones by default).

use anyhow::Result;
use clap::{Args as ClapArgs, ValueEnum};
use td_engine::model::{self, normalize_issue_id};
use td_engine::query::{ListFilter, SortKey};

use super::Cx;
use crate::output::print_issues;

/// `--sort` values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum Sort {
    /// Priority, then oldest first.
    #[default]
    Priority,
    /// Newest first.
    Created,
    /// Most recently changed first.
    Updated,
    /// By id.
    Id,
    /// By title.
    Title,
    /// By status, then priority.
    Status,
}

impl From<Sort> for SortKey {
    fn from(s: Sort) -> SortKey {
        match s {
            Sort::Priority => SortKey::Priority,
            Sort::Created => SortKey::Created,
            Sort::Updated => SortKey::Updated,
            Sort::Id => SortKey::Id,
            Sort::Title => SortKey::Title,
            Sort::Status => SortKey::Status,
        }
    }
}

/// Arguments of `td list`.
#[derive(Debug, ClapArgs, Default)]
pub(crate) struct Args {
    /// Status filter (repeatable or comma-separated).
    #[arg(short = 's', long, value_delimiter = ',')]
    pub status: Vec<String>,
    /// Type filter.
    #[arg(short = 't', long = "type", value_delimiter = ',')]
    pub types: Vec<String>,
    /// Label filter (any of).
    #[arg(short = 'l', long, value_delimiter = ',')]
    pub labels: Vec<String>,
    /// Priority filter.
    #[arg(short = 'p', long, value_delimiter = ',')]
    pub priority: Vec<String>,
    /// Search titles and descriptions.
    #[arg(short = 'q', long)]
    pub search: Option<String>,
    /// Children of this issue.
    #[arg(long)]
    pub parent: Option<String>,
    /// Children of this epic.
    #[arg(long)]
    pub epic: Option<String>,
    /// Only issues this session created or implements.
    #[arg(short = 'm', long)]
    pub mine: bool,
    /// Include closed issues.
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Sort order.
    #[arg(long, value_enum, default_value_t)]
    pub sort: Sort,
    /// Maximum number of issues.
    #[arg(short = 'n', long)]
    pub limit: Option<usize>,
}

/// Runs `td list`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let norm = |v: &[String],
                f: fn(&str) -> td_engine::Result<&'static str>|
     -> td_engine::Result<Vec<String>> {
        v.iter().map(|s| f(s).map(String::from)).collect()
    };
    let status = a
        .status
        .iter()
        .map(|s| model::Status::parse(s).map(|s| s.as_str().to_string()))
        .collect::<td_engine::Result<Vec<_>>>()?;
    let f = ListFilter {
        status,
        types: norm(&a.types, model::parse_type)?,
        labels: a.labels.clone(),
        priority: norm(&a.priority, model::parse_priority)?,
        search: a.search.clone(),
        parent: a
            .parent
            .clone()
            .or_else(|| a.epic.clone())
            .map(|p| normalize_issue_id(&p)),
        mine: a.mine.then(|| cx.p.session.id.clone()),
        all: a.all,
        only_deleted: false,
        sort: a.sort.into(),
        limit: a.limit,
    };
    print_issues(&cx.p.issues(&f)?, cx.json);
    Ok(())
}
