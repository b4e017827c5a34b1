//! Finding issues beyond `td list`'s filters: full-text `td search` and the parent/child
//! `td tree` (`td query` is TDQ: `tdq/`).

use std::collections::BTreeMap;

use crate::views::{SearchHit, TreeNode};
use rusqlite::Connection;

use crate::error::{invalid, Result};
use crate::query::{self, ListFilter};

/// Where `td search` looks, and the SQL that finds issue ids with a match there. `instr` on
/// case-folded text: a case-insensitive substring test with no pattern characters to escape.
/// `td_fold` is Rust's Unicode lower-casing (SQLite's `lower` folds ASCII only).
const SEARCH_SOURCES: [(&str, &str); 5] = [
    (
        "title",
        "SELECT id FROM issues WHERE instr(td_fold(title), ?1) > 0",
    ),
    (
        "description",
        "SELECT id FROM issues WHERE instr(td_fold(description), ?1) > 0",
    ),
    (
        "acceptance",
        "SELECT id FROM issues WHERE instr(td_fold(acceptance), ?1) > 0",
    ),
    (
        "log",
        "SELECT DISTINCT issue_id FROM logs WHERE instr(td_fold(message), ?1) > 0",
    ),
    (
        "comment",
        "SELECT DISTINCT issue_id FROM comments WHERE instr(td_fold(text), ?1) > 0",
    ),
];

/// td's relevance score of a hit, and the field it names.
fn score(i: &query::Issue, needle: &str, places: &[&str]) -> (i64, String) {
    let (id, title) = (i.id.to_lowercase(), i.title.to_lowercase());
    let (s, f) = if id == needle {
        (100, "id")
    } else if id.contains(needle) {
        (90, "id")
    } else if title == needle {
        (80, "title")
    } else if title.starts_with(needle) {
        (70, "title")
    } else if title.contains(needle) {
        (60, "title")
    } else if i.description.to_lowercase().contains(needle) {
        (40, "description")
    } else if i.labels.join(",").to_lowercase().contains(needle) {
        (20, "labels")
    } else {
        (10, places.first().copied().unwrap_or(""))
    };
    (s, f.to_string())
}

/// `td search <text>`: issues passing `f` (td's `-s -t -l -p`; closed included unless a status
/// is given) whose id, title, description, acceptance, labels, logs or comments contain
/// `text`, case-insensitively; by td's relevance score, then priority; at most `f.limit`. Each
/// carries `matched_in` (every place that matched), `score` and `match_field`.
pub(crate) fn search(conn: &Connection, text: &str, f: &ListFilter) -> Result<Vec<SearchHit>> {
    let needle = text.trim().to_lowercase();
    if needle.is_empty() {
        return Err(invalid("search text is empty"));
    }
    query::register_fold(conn)?;
    let mut hits: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (source, sql) in SEARCH_SOURCES {
        let mut stmt = conn.prepare_cached(sql)?;
        for id in stmt.query_map([&needle], |r| r.get::<_, String>(0))? {
            hits.entry(id?).or_default().push(source);
        }
    }
    let mut candidates = f.clone();
    candidates.all = candidates.all || candidates.status.is_empty();
    candidates.limit = None;
    let mut found: Vec<SearchHit> = query::list_issues(conn, &candidates)?
        .into_iter()
        .filter_map(|i| {
            let mut places: Vec<&str> = Vec::new();
            if i.id.to_lowercase().contains(&needle) {
                places.push("id");
            }
            places.extend(hits.get(&i.id).cloned().unwrap_or_default());
            if i.labels.join(",").to_lowercase().contains(&needle) {
                places.push("labels");
            }
            if places.is_empty() {
                return None;
            }
            let (score, match_field) = score(&i, &needle, &places);
            Some(SearchHit {
                matched_in: places.iter().map(|p| p.to_string()).collect(),
                score,
                match_field,
                issue: i,
            })
        })
        .collect();
    // Stable: equal scores keep the list's priority order.
    found.sort_by_key(|h| std::cmp::Reverse(h.score));
    if let Some(n) = f.limit {
        found.truncate(n);
    }
    Ok(found)
}

/// `td tree <id>`: the issue with its descendants nested under `children` (live issues, by
/// priority then id), at most `depth` levels down when given. A parent loop, possible after concurrent edits, is cut where an issue
/// would appear a second time.
pub(crate) fn tree(conn: &Connection, id: &str, depth: Option<usize>) -> Result<TreeNode> {
    let root = query::live_issue(conn, id)?;
    let mut seen = vec![root.id.clone()];
    subtree(conn, root, &mut seen, depth)
}

fn subtree(
    conn: &Connection,
    issue: query::Issue,
    seen: &mut Vec<String>,
    depth: Option<usize>,
) -> Result<TreeNode> {
    if depth == Some(0) {
        return Ok(TreeNode {
            issue,
            children: Vec::new(),
        });
    }
    let id = issue.id.clone();
    let kids = query::list_issues(
        conn,
        &ListFilter {
            parent: Some(id),
            all: true,
            ..Default::default()
        },
    )?;
    let mut children = Vec::new();
    for k in kids {
        if seen.contains(&k.id) {
            continue;
        }
        seen.push(k.id.clone());
        children.push(subtree(conn, k, seen, depth.map(|d| d - 1))?);
    }
    Ok(TreeNode { issue, children })
}
