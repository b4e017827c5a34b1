//! `td list`: issues by filter (open ones by default).

use anyhow::Result;
use clap::{Args as ClapArgs, ValueEnum};
use serde_json::Value;
use td_engine::model::{self, normalize_issue_id};
use td_engine::query::{DateView, ListFilter, SortKey};

use super::Cx;
use crate::output::{emit, invalid, print_issues};

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

/// `--format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// One line per issue.
    Short,
    /// Each issue with its description, latest handoff and recent logs.
    Long,
    /// JSON.
    Json,
}

/// Arguments of `td list`.
#[derive(Debug, ClapArgs, Default)]
#[command(after_help = "Examples:
  td list                          open work (not closed, not deferred), by priority
  td list -s in_progress -m        what this session is implementing
  td list -t bug -p P0,P1 -l auth  urgent auth bugs
  td list --created -7d..          created in the last week
  td list --overdue                past their due date
  td list 'type = bug AND log.message ~ cache'   a TDQ query (or -f)")]
pub(crate) struct Args {
    /// A TDQ query (as `-f`; see `td query --help`).
    #[arg(value_name = "QUERY", conflicts_with = "filter")]
    pub query: Vec<String>,
    /// A TDQ query expression, e.g. 'status = open AND type = bug'.
    #[arg(short = 'f', long, value_name = "QUERY")]
    pub filter: Option<String>,
    /// Only these issue ids (repeatable or comma-separated).
    #[arg(short = 'i', long = "id", value_delimiter = ',')]
    pub ids: Vec<String>,
    /// Status filter (repeatable or comma-separated; `all` includes closed).
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
    /// Points: 5, >=3, <=8 or 3-8.
    #[arg(long, value_name = "POINTS", allow_hyphen_values = true)]
    pub points: Option<String>,
    /// Search titles and descriptions.
    #[arg(short = 'q', long)]
    pub search: Option<String>,
    /// Implemented by this session id.
    #[arg(long, value_name = "SESSION")]
    pub implementer: Option<String>,
    /// Reviewed by this session id.
    #[arg(long, value_name = "SESSION")]
    pub reviewer: Option<String>,
    /// Issues you can review (the review policy decides).
    #[arg(long)]
    pub reviewable: bool,
    /// With --reviewable: also issues with a recorded approval that you can close.
    #[arg(long, requires = "reviewable")]
    pub include_approved: bool,
    /// Children of this issue.
    #[arg(long)]
    pub parent: Option<String>,
    /// Everything inside this epic, at any depth.
    #[arg(long)]
    pub epic: Option<String>,
    /// Only issues this session created or implements.
    #[arg(short = 'm', long)]
    pub mine: bool,
    /// Only open issues (as --status open).
    #[arg(short = 'o', long)]
    pub open: bool,
    /// Created: a day, after:D, before:D, D.., ..D or D..E (dates as 2026-05-09, today, -7d).
    #[arg(long, value_name = "RANGE", allow_hyphen_values = true)]
    pub created: Option<String>,
    /// Updated in a range (as --created).
    #[arg(long, value_name = "RANGE", allow_hyphen_values = true)]
    pub updated: Option<String>,
    /// Closed in a range (as --created).
    #[arg(long, value_name = "RANGE", allow_hyphen_values = true)]
    pub closed: Option<String>,
    /// Include closed and deferred issues.
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only issues deferred past today.
    #[arg(long)]
    pub deferred: bool,
    /// Only open work past its due date.
    #[arg(long)]
    pub overdue: bool,
    /// Only issues that were deferred and whose date has come.
    #[arg(long)]
    pub surfacing: bool,
    /// Only issues due within 3 days.
    #[arg(long)]
    pub due_soon: bool,
    /// Sort order.
    #[arg(long, value_enum, default_value_t)]
    pub sort: Sort,
    /// Reverse the sort order.
    #[arg(short = 'r', long)]
    pub reverse: bool,
    /// Maximum number of issues (0: all).
    #[arg(short = 'n', long, default_value_t = 50)]
    pub limit: usize,
    /// Each issue with its description, latest handoff and recent logs.
    #[arg(long, conflicts_with = "short")]
    pub long: bool,
    /// One line per issue (the default).
    #[arg(long)]
    pub short: bool,
    /// Output format.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Accepted for td's scripts: td list never pages.
    #[arg(long)]
    pub no_pager: bool,
}

/// Runs `td list`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let format = match (a.format, cx.json, a.long) {
        (_, true, _) | (Some(Format::Json), _, _) => Format::Json,
        (Some(f), _, _) => f,
        (None, _, true) => Format::Long,
        _ => Format::Short,
    };
    let query = a
        .filter
        .clone()
        .or_else(|| (!a.query.is_empty()).then(|| a.query.join(" ")));
    let issues = match query {
        Some(q) if q.trim().is_empty() => {
            return Err(invalid(
                "--filter requires a non-empty query expression".into(),
            ))
        }
        Some(q) => {
            let opts = td_engine::tdq::QueryOptions {
                limit: (a.limit > 0).then_some(a.limit),
                sort: None,
                ..Default::default()
            };
            cx.p.query(&q, &opts)?.issues
        }
        None if a.reviewable => {
            let (mut awaiting, ready) = cx.p.review_queue(a.include_approved)?;
            awaiting.extend(ready);
            awaiting
        }
        None => {
            let f = filter(a, cx)?;
            cx.p.issues(&f)?
        }
    };
    match format {
        Format::Long => {
            let mut out = String::new();
            for i in &issues {
                let d = cx.p.issue_detail(&i.id)?;
                out.push_str(&super::show::issue_long(&d, Some(5)));
                out.push_str("---\n");
            }
            if issues.is_empty() {
                out.push_str("No issues found.");
            }
            emit(false, &Value::Null, || out.trim_end().to_string());
        }
        _ => print_issues(&issues, format == Format::Json),
    }
    Ok(())
}

/// The engine's list filter for the flags given.
fn filter(a: &Args, cx: &Cx<'_>) -> Result<ListFilter> {
    let (types, priority) = super::common::types_and_priorities(&a.types, &a.priority)?;
    let mut all = a.all;
    let mut status = Vec::new();
    for s in &a.status {
        if s.trim().eq_ignore_ascii_case("all") {
            all = true;
            continue;
        }
        status.push(model::Status::parse(s)?.as_str().to_string());
    }
    if a.open {
        status = vec!["open".into()];
    }
    let today = td_engine::dates::today();
    let range = |s: &Option<String>| {
        s.as_deref()
            .map(|s| td_engine::dates::parse_day_range(s, today))
            .transpose()
    };
    let dates = if a.deferred {
        DateView::Deferred
    } else if a.overdue {
        DateView::Overdue
    } else if a.surfacing {
        DateView::Surfacing
    } else if a.due_soon {
        DateView::DueSoon(3)
    } else if all {
        DateView::Any
    } else {
        DateView::HideDeferred
    };
    Ok(ListFilter {
        status,
        types,
        labels: a.labels.clone(),
        priority,
        search: a.search.clone(),
        parent: a.parent.as_deref().map(normalize_issue_id),
        mine: a.mine.then(|| cx.p.session.id.clone()),
        all,
        only_deleted: false,
        sort: a.sort.into(),
        reverse: a.reverse,
        limit: (a.limit > 0).then_some(a.limit),
        ids: a.ids.iter().map(|i| normalize_issue_id(i)).collect(),
        points: a
            .points
            .as_deref()
            .map(td_engine::query::parse_points)
            .transpose()?,
        implementer: a.implementer.clone(),
        reviewer: a.reviewer.clone(),
        epic: a.epic.as_deref().map(normalize_issue_id),
        created: range(&a.created)?,
        updated: range(&a.updated)?,
        closed: range(&a.closed)?,
        dates,
        today: String::new(),
    })
}
