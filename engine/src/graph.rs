//! The dependency graph as td reads it: what an issue waits on, what waits on it (directly and
//! transitively), and the critical path (td's `critical-path`: a topological order weighted by
//! how much each issue unblocks). Built in memory from the materialized rows; every order is
//! deterministic (ties broken by priority, then id), where td's follows map iteration.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rusqlite::Connection;
use serde::Serialize;

use crate::error::Result;
use crate::query::{self, Issue};

/// Live issues and their `depends_on` edges.
pub(crate) struct DepGraph {
    issues: HashMap<String, Issue>,
    /// issue → the issues it depends on.
    deps: BTreeMap<String, BTreeSet<String>>,
    /// issue → the issues that depend on it.
    dependents: BTreeMap<String, BTreeSet<String>>,
}

impl DepGraph {
    /// Reads the graph of live issues.
    pub(crate) fn load(conn: &Connection) -> Result<DepGraph> {
        let issues: HashMap<String, Issue> = query::all_live_issues(conn)?
            .into_iter()
            .map(|i| (i.id.clone(), i))
            .collect();
        let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut dependents: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut stmt = conn.prepare(
            "SELECT issue_id, depends_on_id FROM issue_dependencies WHERE relation_type = 'depends_on'",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (a, b) = row?;
            if issues.contains_key(&a) && issues.contains_key(&b) {
                deps.entry(a.clone()).or_default().insert(b.clone());
                dependents.entry(b).or_default().insert(a);
            }
        }
        Ok(DepGraph {
            issues,
            deps,
            dependents,
        })
    }

    fn closed(&self, id: &str) -> bool {
        self.issues.get(id).is_none_or(|i| i.status == "closed")
    }

    /// The issues `id` depends on, by id.
    pub(crate) fn depends_on(&self, id: &str) -> Vec<String> {
        self.deps.get(id).into_iter().flatten().cloned().collect()
    }

    /// The issues that depend on `id` directly, by id.
    pub(crate) fn blocked_directly(&self, id: &str) -> Vec<String> {
        self.dependents
            .get(id)
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }

    /// Everything waiting on `id`, directly or through others, depth first in id order (td's
    /// order); with `open_only`, closed issues are left out and not followed.
    pub(crate) fn blocked_transitively(&self, id: &str, open_only: bool) -> Vec<String> {
        let mut seen = BTreeSet::from([id.to_string()]);
        let mut out = Vec::new();
        self.walk(id, open_only, &mut seen, &mut out);
        out
    }

    fn walk(&self, id: &str, open_only: bool, seen: &mut BTreeSet<String>, out: &mut Vec<String>) {
        for d in self.blocked_directly(id) {
            if !seen.insert(d.clone()) || (open_only && self.closed(&d)) {
                continue;
            }
            out.push(d.clone());
            self.walk(&d, open_only, seen, out);
        }
    }

    /// td's critical path over open, in-progress and blocked issues (epics left out).
    pub(crate) fn critical_path(&self) -> CriticalPath {
        let active: BTreeMap<&str, &Issue> = self
            .issues
            .values()
            .filter(|i| matches!(i.status.as_str(), "open" | "in_progress" | "blocked"))
            .filter(|i| i.issue_type != "epic")
            .map(|i| (i.id.as_str(), i))
            .collect();
        let unblocks: BTreeMap<&str, usize> = active
            .keys()
            .map(|id| (*id, self.blocked_transitively(id, true).len()))
            .filter(|(_, n)| *n > 0)
            .collect();
        let score = |id: &str| unblocks.get(id).copied().unwrap_or(0);
        let rank = |a: &&str, b: &&str| {
            score(b)
                .cmp(&score(a))
                .then_with(|| active[a].priority.cmp(&active[b].priority))
                .then_with(|| a.cmp(b))
        };
        // Waiting on an active issue (td counts only dependencies among these).
        let waits = |id: &str| {
            self.depends_on(id)
                .into_iter()
                .filter(|d| active.contains_key(d.as_str()))
                .count()
        };
        let mut ready_to_start: Vec<&str> = active
            .keys()
            .copied()
            .filter(|id| waits(id) == 0 && score(id) > 0)
            .collect();
        ready_to_start.sort_by(rank);
        // Kahn's algorithm, always taking the ready issue that unblocks most.
        let mut indegree: BTreeMap<&str, usize> =
            active.keys().map(|id| (*id, waits(id))).collect();
        let mut ready: Vec<&str> = indegree
            .iter()
            .filter(|(_, d)| **d == 0)
            .map(|(id, _)| *id)
            .collect();
        let mut sequence = Vec::new();
        while !ready.is_empty() {
            ready.sort_by(rank);
            let id = ready.remove(0);
            sequence.push(id.to_string());
            for d in self.blocked_directly(id) {
                if let Some(n) = indegree.get_mut(d.as_str()) {
                    *n -= 1;
                    if *n == 0 {
                        // The key as `active` holds it, so `ready` keeps borrowing from there.
                        ready.extend(active.get_key_value(d.as_str()).map(|(k, _)| *k));
                    }
                }
            }
        }
        let mut ranking: Vec<Bottleneck> = unblocks
            .iter()
            .map(|(id, n)| Bottleneck {
                id: id.to_string(),
                score: *n,
            })
            .collect();
        ranking.sort_by(|a, b| b.score.cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
        CriticalPath {
            critical_path: sequence,
            ready_to_start: ready_to_start.into_iter().map(String::from).collect(),
            bottleneck_ranking: ranking,
        }
    }
}

/// An issue and how many open issues wait on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bottleneck {
    /// The issue.
    pub id: String,
    /// How many open issues wait on it, directly or not.
    pub score: usize,
}

/// td's `critical-path`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CriticalPath {
    /// Every active issue in the order that unblocks the most work soonest.
    pub critical_path: Vec<String>,
    /// Issues waiting on nothing that unblock others, most first.
    pub ready_to_start: Vec<String>,
    /// Issues by how many wait on them.
    pub bottleneck_ranking: Vec<Bottleneck>,
}
