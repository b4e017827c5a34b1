//! `td search`: issues whose id, text, labels, logs or comments contain a string, by td's
//! relevance score.

use anyhow::Result;
use clap::Args as ClapArgs;
use serde_json::Value;
use td_engine::model;
use td_engine::query::ListFilter;
use td_engine::views::to_json;

use super::Cx;
use crate::output::{emit, issue_line};

/// Arguments of `td search`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Text to find.
    pub text: String,
    /// Only these statuses (repeatable or comma-separated).
    #[arg(short = 's', long, value_delimiter = ',')]
    pub status: Vec<String>,
    /// Only these types.
    #[arg(short = 't', long = "type", value_delimiter = ',')]
    pub types: Vec<String>,
    /// Only issues with any of these labels.
    #[arg(short = 'l', long, value_delimiter = ',')]
    pub labels: Vec<String>,
    /// Only this priority.
    #[arg(short = 'p', long, value_delimiter = ',')]
    pub priority: Vec<String>,
    /// At most this many results (0: all).
    #[arg(short = 'n', long, default_value_t = 50)]
    pub limit: usize,
    /// Show each result's relevance score and where it matched.
    #[arg(long)]
    pub show_score: bool,
}

/// Runs `td search`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let (types, priority) = super::common::types_and_priorities(&a.types, &a.priority)?;
    let f = ListFilter {
        status: a
            .status
            .iter()
            .map(|s| model::Status::parse(s).map(|s| s.as_str().to_string()))
            .collect::<td_engine::Result<_>>()?,
        types,
        labels: a.labels.clone(),
        priority,
        limit: (a.limit > 0).then_some(a.limit),
        ..Default::default()
    };
    let hits = cx.p.search(&a.text, &f)?;
    let human = if hits.is_empty() {
        format!(
            "No issues matching '{}'\nSearched: id, title, description, acceptance, labels, logs, comments.",
            a.text
        )
    } else {
        hits.iter()
            .map(|h| {
                let mut line =
                    format!("{}  (in {})", issue_line(&h.issue), h.matched_in.join(", "));
                if a.show_score {
                    line.push_str(&format!(" [score:{} {}]", h.score, h.match_field));
                }
                line
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    emit(
        cx.json,
        &Value::Array(hits.iter().map(to_json).collect()),
        || human,
    );
    Ok(())
}
