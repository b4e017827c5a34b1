//! A generator of large, realistic td v38 databases (issue 28): the shape of a busy team's
//! year (per issue about 2 logs, 1 comment, a third of a handoff, session history, some
//! dependencies and files, epics), text of the lengths td's own databases hold, statuses and
//! sessions spread as agents leave them. Seeded: the same `(n, seed)` makes the same bytes, so
//! benchmarks at 10k, 50k and 100k issues compare like with like.

use std::path::Path;

use rusqlite::params;

/// A small deterministic generator (xorshift64*): enough for test data, no dependency.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

const WORDS: &[&str] = &[
    "sync",
    "replica",
    "merge",
    "handoff",
    "review",
    "cursor",
    "session",
    "board",
    "epic",
    "migration",
    "index",
    "query",
    "cache",
    "timeout",
    "retry",
    "conflict",
    "schema",
    "token",
    "render",
    "parser",
    "flag",
    "budget",
    "latency",
    "log",
    "queue",
    "worker",
    "deploy",
    "rollback",
    "fixture",
    "agent",
    "context",
    "window",
    "backlog",
    "priority",
    "label",
    "dependency",
    "lock",
    "transaction",
    "snapshot",
    "export",
    "import",
    "the",
    "a",
    "with",
    "after",
    "before",
    "when",
    "fails",
    "passes",
    "needs",
    "checks",
    "handles",
    "keeps",
    "drops",
    "adds",
    "removes",
    "updates",
    "ünïcode",
    "日本語",
    "🚀",
];

const STATUSES: &[(&str, u64)] = &[
    ("closed", 550),
    ("open", 250),
    ("in_progress", 60),
    ("in_review", 60),
    ("blocked", 80),
];

const LOG_TYPES: &[&str] = &[
    "progress",
    "progress",
    "progress",
    "decision",
    "hypothesis",
    "tried",
    "result",
    "blocker",
];

fn text(d: &mut Dice, min_words: u64, max_words: u64) -> String {
    let n = min_words + d.below(max_words - min_words + 1);
    let mut s = String::new();
    for i in 0..n {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(d.pick(WORDS));
    }
    s
}

fn markdown(d: &mut Dice) -> String {
    let mut s = text(d, 12, 40);
    s.push_str(".\n\n");
    for _ in 0..d.below(4) {
        s.push_str("- ");
        s.push_str(&text(d, 4, 12));
        s.push('\n');
    }
    s
}

fn json_list(d: &mut Dice, max: u64) -> String {
    let items: Vec<String> = (0..d.below(max + 1))
        .map(|_| serde_json::Value::String(text(d, 3, 10)).to_string())
        .collect();
    format!("[{}]", items.join(","))
}

fn time(d: &mut Dice, day: u64) -> String {
    let day = day.min(364);
    let (month, dom) = (1 + day / 31 % 12, 1 + day % 28);
    format!(
        "2026-{month:02}-{dom:02} {:02}:{:02}:{:02}.{:06}-05:00",
        d.below(24),
        d.below(60),
        d.below(60),
        d.below(1_000_000)
    )
}

/// Row counts of a generated database, for the benchmark's report.
#[derive(Debug, Default, Clone, Copy)]
pub struct Generated {
    /// Issues (epics among them).
    pub issues: u64,
    /// Logs.
    pub logs: u64,
    /// Comments.
    pub comments: u64,
    /// Handoffs.
    pub handoffs: u64,
    /// Every row of td's synced tables.
    pub rows: u64,
}

/// Writes a td v38 database of `n` issues at `path`, following `seed`.
pub fn generate(path: &Path, n: u64, seed: u64) -> Generated {
    let conn = crate::new_td_db(path);
    conn.execute_batch("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; BEGIN")
        .unwrap();
    let mut d = Dice(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut g = Generated::default();
    let sessions: Vec<String> = (0..60).map(|i| format!("ses_{:06x}", 0xa000 + i)).collect();
    let ses = |d: &mut Dice| sessions[d.below(sessions.len() as u64) as usize].clone();
    let epics = (n / 50).max(1);
    {
        let mut issue = conn
            .prepare(
                "INSERT INTO issues(id, title, description, status, type, priority, points, labels, \
                 parent_id, acceptance, implementer_session, reviewer_session, created_at, updated_at, \
                 closed_at, creator_session, sprint) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
            )
            .unwrap();
        let mut log = conn
            .prepare("INSERT INTO logs(id, issue_id, session_id, message, type, timestamp) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
            .unwrap();
        let mut comment = conn
            .prepare("INSERT INTO comments(id, issue_id, session_id, text, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")
            .unwrap();
        let mut handoff = conn
            .prepare("INSERT INTO handoffs(id, issue_id, session_id, done, remaining, decisions, uncertain, timestamp) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
            .unwrap();
        let mut history = conn
            .prepare("INSERT INTO issue_session_history(id, issue_id, session_id, action, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")
            .unwrap();
        let mut dep = conn
            .prepare("INSERT OR IGNORE INTO issue_dependencies(id, issue_id, depends_on_id, relation_type) VALUES (?1, ?2, ?3, 'depends_on')")
            .unwrap();
        let mut file = conn
            .prepare("INSERT OR IGNORE INTO issue_files(id, issue_id, file_path, role, linked_at) VALUES (?1, ?2, ?3, 'implementation', ?4)")
            .unwrap();
        for i in 0..n {
            let id = format!("td-{i:06x}");
            let is_epic = i < epics;
            let day = i * 365 / n.max(1);
            let created = time(&mut d, day);
            let later = day + d.below(20);
            let updated = time(&mut d, later);
            let mut roll = d.below(1000);
            let status = STATUSES
                .iter()
                .find(|(_, w)| {
                    if roll < *w {
                        true
                    } else {
                        roll -= w;
                        false
                    }
                })
                .map_or("open", |(s, _)| s);
            let implementer = if status == "open" {
                String::new()
            } else {
                ses(&mut d)
            };
            let reviewer = if status == "closed" {
                ses(&mut d)
            } else {
                String::new()
            };
            let mut labels: Vec<&str> = Vec::new();
            for _ in 0..d.below(3) {
                let l = d.pick(&["sync", "ui", "perf", "bug", "docs", "infra"]);
                if !labels.contains(&l) {
                    labels.push(l);
                }
            }
            issue
                .execute(params![
                    id,
                    text(&mut d, 4, 9),
                    markdown(&mut d),
                    status,
                    if is_epic {
                        "epic"
                    } else {
                        d.pick(&["task", "task", "bug", "feature", "chore"])
                    },
                    d.pick(&["P0", "P1", "P2", "P2", "P3", "P4"]),
                    d.below(8) as i64,
                    labels.join(","),
                    if !is_epic && d.chance(300) {
                        format!("td-{:06x}", d.below(epics))
                    } else {
                        String::new()
                    },
                    if d.chance(250) {
                        text(&mut d, 5, 15)
                    } else {
                        String::new()
                    },
                    implementer,
                    reviewer,
                    created,
                    updated,
                    (status == "closed").then(|| updated.clone()),
                    ses(&mut d),
                    if d.chance(200) {
                        format!("sprint-{}", day / 14)
                    } else {
                        String::new()
                    },
                ])
                .unwrap();
            g.issues += 1;
            // About 2 logs, 1 comment and a third of a handoff per issue.
            for k in 0..d.below(5) {
                log.execute(params![
                    format!("lg-{i:06x}{k:02x}"),
                    id,
                    ses(&mut d),
                    text(&mut d, 5, 30),
                    d.pick(LOG_TYPES),
                    time(&mut d, day + k),
                ])
                .unwrap();
                g.logs += 1;
            }
            for k in 0..d.below(3) {
                comment
                    .execute(params![
                        format!("cm-{i:06x}{k:02x}"),
                        id,
                        ses(&mut d),
                        text(&mut d, 4, 25),
                        time(&mut d, day + k)
                    ])
                    .unwrap();
                g.comments += 1;
            }
            if d.chance(360) {
                handoff
                    .execute(params![
                        format!("ho-{i:06x}00"),
                        id,
                        ses(&mut d),
                        json_list(&mut d, 4),
                        json_list(&mut d, 3),
                        json_list(&mut d, 2),
                        json_list(&mut d, 1),
                        time(&mut d, day + 1),
                    ])
                    .unwrap();
                g.handoffs += 1;
            }
            for (k, action) in ["created", "started", "reviewed"].iter().enumerate() {
                if k == 0 || status != "open" && (k == 1 || status == "closed") {
                    history
                        .execute(params![
                            format!("ish-{i:06x}{k:02x}"),
                            id,
                            ses(&mut d),
                            action,
                            time(&mut d, day)
                        ])
                        .unwrap();
                    g.rows += 1;
                }
            }
            if i > 0 && d.chance(150) {
                g.rows += dep
                    .execute(params![
                        format!("dep-{i:06x}"),
                        id,
                        format!("td-{:06x}", d.below(i))
                    ])
                    .unwrap() as u64;
            }
            if d.chance(100) {
                g.rows += file
                    .execute(params![
                        format!("if-{i:06x}"),
                        id,
                        format!("src/{}.rs", d.pick(WORDS)),
                        time(&mut d, day)
                    ])
                    .unwrap() as u64;
            }
        }
    }
    conn.execute_batch("COMMIT").unwrap();
    g.rows += g.issues + g.logs + g.comments + g.handoffs;
    g
}
