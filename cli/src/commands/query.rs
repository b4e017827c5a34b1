//! `td query`: issues matching a TDQ expression (td's query language).

use anyhow::Result;
use clap::{Args as ClapArgs, ValueEnum};
use serde_json::Value;
use td_engine::tdq::{QueryOptions, Sort};
use td_engine::views::IssueView;

use super::Cx;
use crate::output::{emit, issue_line};

/// `-o` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    /// One line per issue.
    Table,
    /// A JSON array of issues.
    Json,
    /// Issue ids, one per line.
    Ids,
    /// How many matched.
    Count,
}

/// Arguments of `td query`.
#[derive(Debug, ClapArgs)]
#[command(after_help = "SYNTAX:
  field = value   field != value   field ~ \"text\"   field !~ \"text\"   < > <= >=
  a AND b   a OR b   NOT a   -field = value   (grouping)   a b  (implicit AND)
  \"text\"  plain text in id, title or description

FIELDS: id title description status type priority points labels parent epic implementer
  reviewer minor branch sprint created updated closed (and acceptance creator due defer)
CROSS-ENTITY: log.message log.type log.session log.timestamp  comment.text comment.session
  comment.created  handoff.done handoff.remaining handoff.decisions handoff.uncertain
  handoff.timestamp  file.path file.role  dep.depends_on dep.blocks
FUNCTIONS: has(f) is(status) any(f, v…) all(f, v…) none(f, v…) label(name) child_of(id)
  descendant_of(id) blocks(id) blocked_by(id) linked_to(path) rework() is_ready()
  has_open_deps()
VALUES: @me  EMPTY  NULL  dates 2026-05-09, today, yesterday, this_week, last_week,
  this_month, last_month, -7d, +3w, -1m, -6h
SORT: sort:created  sort:-priority  (created updated closed deleted priority id title status points)

Examples:
  td query \"type = bug AND priority <= P1\"
  td query \"implementer = @me AND is(in_progress)\"
  td query 'log.message ~ \"cache\" created >= -7d' -o ids

Run 'td query --examples' for examples, 'td query --fields' for every field.")]
pub(crate) struct Args {
    /// The TDQ expression (quote it).
    #[arg(required_unless_present_any = ["examples", "fields"], allow_hyphen_values = true)]
    pub expr: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// At most this many results (0: all); dropped matches are reported on stderr.
    #[arg(short = 'n', long = "limit", default_value_t = 50)]
    pub limit: usize,
    /// Consider at most this many issues (in sort order) before filtering.
    #[arg(long, default_value_t = td_engine::tdq::eval::DEFAULT_MAX_SCAN)]
    pub max_scan: usize,
    /// Sort by created, updated, closed, deleted, priority, id, title, status or points
    /// (prefix - for descending); a sort: clause in the query wins.
    #[arg(long, value_name = "FIELD", allow_hyphen_values = true)]
    pub sort: Option<String>,
    /// Show how the query parses, without running it.
    #[arg(long)]
    pub explain: bool,
    /// Show query examples.
    #[arg(long)]
    pub examples: bool,
    /// List every searchable field.
    #[arg(long)]
    pub fields: bool,
}

const EXAMPLES: &[(&str, &str)] = &[
    ("status = open", "All open issues"),
    ("type = bug", "All bugs"),
    ("priority <= P1", "High priority (P0 or P1)"),
    ("points >= 5", "Large issues (5+ points)"),
    ("title ~ \"auth\"", "Title contains 'auth'"),
    ("\"authentication\"", "Text search in title/description/id"),
    ("type = bug AND status = open", "Open bugs"),
    (
        "status = open OR status = blocked",
        "Open or blocked issues",
    ),
    ("NOT status = closed", "Not closed"),
    ("-status = closed", "Same as NOT status = closed"),
    (
        "(type = bug OR type = feature) AND priority = P0",
        "Critical bugs or features",
    ),
    ("created >= -7d", "Created in last 7 days"),
    ("updated >= today", "Updated today"),
    ("created >= this_week", "Created this week"),
    ("updated < -30d AND status = open", "Stale open issues"),
    ("implementer = @me", "Issues I'm implementing"),
    ("implementer = @me AND is(in_progress)", "My current work"),
    (
        "status = in_review AND implementer != @me",
        "Issues I can review",
    ),
    ("has(labels)", "Issues with any labels"),
    ("is(open)", "Shorthand for status = open"),
    ("is(blocked)", "Blocked issues"),
    ("any(type, bug, feature)", "Bugs or features"),
    ("descendant_of(td-epic1)", "All tasks in epic"),
    ("rework()", "Issues rejected and awaiting rework"),
    ("log.type = blocker", "Issues with blocker logs"),
    ("log.message ~ \"fixed\"", "Logs mentioning 'fixed'"),
    ("comment.text ~ \"approved\"", "Comments with 'approved'"),
    (
        "handoff.remaining ~ \"TODO\"",
        "Handoffs with remaining TODOs",
    ),
    ("file.role = test", "Issues with test files linked"),
    (
        "type = bug AND priority <= P1 AND created >= -7d",
        "Recent high-priority bugs",
    ),
    (
        "is(open) AND has(labels) AND labels ~ urgent",
        "Urgent labeled issues",
    ),
];

const FIELDS: &[(&str, &str, &str)] = &[
    ("id", "string", "td-* format"),
    ("title", "string", "any text"),
    ("description", "string", "any text"),
    (
        "status",
        "enum",
        "open, in_progress, blocked, in_review, closed",
    ),
    ("type", "enum", "bug, feature, task, epic, chore"),
    ("priority", "ordinal", "P0, P1, P2, P3, P4"),
    ("points", "number", "1, 2, 3, 5, 8, 13, 21"),
    ("labels", "string", "comma-separated"),
    ("parent", "string", "issue ID (direct parent)"),
    ("epic", "string", "issue ID (ancestor epic)"),
    ("implementer", "string", "session ID or @me"),
    ("reviewer", "string", "session ID or @me"),
    ("creator", "string", "session ID or @me"),
    ("minor", "bool", "true, false"),
    ("branch", "string", "git branch name"),
    ("sprint", "string", "sprint name"),
    ("acceptance", "string", "any text"),
    ("created", "date", "ISO or relative (-7d, today, etc.)"),
    ("updated", "date", "ISO or relative"),
    ("closed", "date", "ISO or relative"),
    ("due", "date", "ISO or relative"),
    ("defer", "date", "ISO or relative"),
];

fn static_text(examples: bool) -> String {
    if examples {
        let mut s = String::from("TDQ Query Examples:\n");
        for (q, d) in EXAMPLES {
            s.push_str(&format!("\n  td query {q:?}\n    → {d}\n"));
        }
        return s;
    }
    let mut s = String::from("TDQ Searchable Fields:\n\nISSUE FIELDS:\n");
    for (n, t, v) in FIELDS {
        s.push_str(&format!("  {n:<12} {t:<8} {v}\n"));
    }
    s.push_str(
        "\nCROSS-ENTITY FIELDS:\n  log.\n    message, type (progress/blocker/decision/hypothesis/tried/result/orchestration), timestamp, session\n  comment.\n    text, created, session\n  handoff.\n    done, remaining, decisions, uncertain, timestamp\n  file.\n    path, role (implementation/test/reference/config)\n  dep.\n    depends_on, blocks (issue IDs)\n\nSPECIAL VALUES:\n  @me     Current session ID\n  EMPTY   Empty/null field\n  NULL    Null field\n\nRELATIVE DATES:\n  today, yesterday, this_week, last_week, this_month, last_month\n  -Nd (days ago), -Nw (weeks ago), -Nm (months ago), -Nh (hours ago)\n  +Nd (days from now), etc.",
    );
    s
}

/// `--sort`'s value as a sort clause.
fn sort_arg(s: &str) -> Result<Sort> {
    let name = s.trim_start_matches('-');
    // The same fields a sort: clause takes; parsed by the engine so both agree.
    let q = td_engine::tdq::parse(&format!("sort:{name}"))?;
    let mut sort = q.sort.expect("a sort clause parses to a sort");
    sort.descending = s.starts_with('-');
    Ok(sort)
}

/// Runs `td query`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    if a.examples || a.fields {
        let text = static_text(a.examples);
        let v = serde_json::json!({"text": text});
        emit(cx.json, &v, || text.clone());
        return Ok(());
    }
    let expr = a.expr.as_deref().unwrap_or("");
    if a.explain {
        let q = td_engine::tdq::parse(expr)?;
        let v = serde_json::json!({"query": expr, "parsed": q.to_string()});
        emit(cx.json, &v, || format!("Query: {expr}\nParsed: {q}"));
        return Ok(());
    }
    let opts = QueryOptions {
        limit: (a.limit > 0).then_some(a.limit),
        max_scan: a.max_scan.max(1),
        sort: a.sort.as_deref().map(sort_arg).transpose()?,
    };
    let r = cx.p.query(expr, &opts)?;
    let output = if cx.json { Output::Json } else { a.output };
    let issues: &[IssueView] = &r.issues;
    match output {
        Output::Json => println!(
            "{}",
            Value::Array(issues.iter().map(IssueView::to_json).collect())
        ),
        Output::Count => println!("{}", r.matched),
        Output::Ids => {
            for i in issues {
                println!("{}", i.id);
            }
        }
        Output::Table => {
            for i in issues {
                println!("{}", crate::output::escape(&issue_line(i)));
            }
        }
    }
    if issues.is_empty() && !matches!(output, Output::Count | Output::Json) {
        println!("No issues matching query");
    }
    if r.truncated {
        eprintln!(
            "Warning: showing {} of {} matches (--limit {}; use -n 0 for all)",
            issues.len(),
            r.matched,
            a.limit
        );
    }
    if r.scan_limited {
        eprintln!(
            "Warning: only the first {} issues were scanned; anything beyond that was not considered (raise with --max-scan)",
            opts.max_scan
        );
    }
    Ok(())
}
