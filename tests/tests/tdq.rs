//! TDQ, td's query language: a table of queries with their expected results over a fixed
//! dataset (every operator, function, field family and error; many taken from td's docs and
//! tests), through the real binary; and a property test: random expressions evaluated by the
//! engine agree with a plain reference evaluation over the materialized rows.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::Value;
use td_engine::ops::issues::IssueFields;
use td_engine::tdq::{EvalContext, QueryOptions};
use td_tests::Replica;

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

/// The fixed dataset, by name → id.
fn dataset(r: &Replica) -> BTreeMap<&'static str, String> {
    let mut ids = BTreeMap::new();
    let mut make = |name: &'static str, args: &[&str]| {
        let mut a = vec!["create", name];
        a.extend_from_slice(args);
        let v = r.json_as("lead", &a);
        ids.insert(name, id_of(&v));
    };
    make("Auth epic", &["-t", "epic", "-p", "P1", "-l", "auth"]);
    make(
        "Login bug",
        &[
            "-t",
            "bug",
            "-p",
            "P0",
            "-l",
            "auth,urgent",
            "--points",
            "3",
            "-d",
            "Users cannot log in",
        ],
    );
    make(
        "Token refresh",
        &[
            "-t", "feature", "-p", "P2", "--points", "5", "--sprint", "s1",
        ],
    );
    make(
        "Cache layer",
        &[
            "-t", "task", "-p", "P3", "-l", "perf", "--points", "8", "--minor",
        ],
    );
    make("Docs cleanup", &["-t", "chore", "-p", "P4"]);
    make("Closed bug", &["-t", "bug", "-p", "P1"]);
    let id = |n: &str| ids[n].clone();
    let (epic, login, token, cache, docs, closed) = (
        id("Auth epic"),
        id("Login bug"),
        id("Token refresh"),
        id("Cache layer"),
        id("Docs cleanup"),
        id("Closed bug"),
    );
    r.json_as("lead", &["update", &login, "--parent", &epic]);
    r.json_as("lead", &["update", &token, "--parent", &login]);
    r.json_as("lead", &["dep", "add", &token, &cache]);
    // Work: implementer starts login, logs, hands off; a reviewer rejects token.
    r.json_as("impl", &["start", &login]);
    r.json_as("impl", &["log", &login, "found the cache invalidation bug"]);
    r.json_as("impl", &["log", &login, "chose LRU", "--decision"]);
    r.json_as(
        "impl",
        &[
            "handoff",
            &login,
            "--done",
            "parser",
            "--remaining",
            "TODO wire the UI",
        ],
    );
    r.json_as("impl", &["comment", &login, "Approved by design review"]);
    r.json_as("impl", &["start", &token]);
    r.json_as("impl", &["handoff", &token, "--done", "refresh"]);
    r.json_as("impl", &["review", &token]);
    r.json_as("reviewer", &["reject", &token, "--reason", "missing tests"]);
    std::fs::write(r.root.join("cache_test.rs"), "test").unwrap();
    r.json_as(
        "impl",
        &[
            "link",
            &cache,
            r.root.join("cache_test.rs").to_str().unwrap(),
            "--role",
            "test",
        ],
    );
    r.json_as("lead", &["block", &docs]);
    r.json_as("lead", &["close", &closed, "--self-close-exception", "dup"]);
    ids
}

#[test]
fn queries_table() {
    let r = Replica::init();
    let ids = dataset(&r);
    let all: Vec<&str> = ids.keys().copied().collect();
    // (query, session, expected issue names) — order-insensitive.
    let cases: &[(&str, &str, &[&str])] = &[
        // Comparisons on every field family.
        (
            "status = open",
            "lead",
            &["Auth epic", "Cache layer", "Token refresh"],
        ),
        ("status = in-progress", "lead", &["Login bug"]),
        ("status = review", "lead", &[]),
        (
            "status != open",
            "lead",
            &["Closed bug", "Docs cleanup", "Login bug"],
        ),
        ("type = bug", "lead", &["Closed bug", "Login bug"]),
        ("type = story", "lead", &["Token refresh"]),
        (
            "priority <= P1",
            "lead",
            &["Auth epic", "Closed bug", "Login bug"],
        ),
        ("priority > P2", "lead", &["Cache layer", "Docs cleanup"]),
        ("priority = high", "lead", &["Auth epic", "Closed bug"]),
        ("points >= 5", "lead", &["Cache layer", "Token refresh"]),
        (
            "points = EMPTY",
            "lead",
            &["Auth epic", "Closed bug", "Docs cleanup"],
        ),
        ("labels ~ auth", "lead", &["Auth epic", "Login bug"]),
        ("labels = auth", "lead", &["Auth epic"]),
        (
            "labels !~ auth",
            "lead",
            &["Cache layer", "Closed bug", "Docs cleanup", "Token refresh"],
        ),
        ("title ~ BUG", "lead", &["Closed bug", "Login bug"]),
        ("title = \"Login bug\"", "lead", &["Login bug"]),
        ("title = \"login bug\"", "lead", &[]),
        ("description ~ \"log in\"", "lead", &["Login bug"]),
        ("sprint = s1", "lead", &["Token refresh"]),
        ("minor = true", "lead", &["Cache layer"]),
        (
            "has(labels)",
            "lead",
            &["Auth epic", "Cache layer", "Login bug"],
        ),
        ("has(sprint) OR has(points)", "lead", &all),
        // Sessions and @me.
        ("implementer = @me", "impl", &["Login bug"]),
        ("implementer = @me", "lead", &[]),
        (
            "implementer = EMPTY",
            "lead",
            &[
                "Auth epic",
                "Cache layer",
                "Closed bug",
                "Docs cleanup",
                "Token refresh",
            ],
        ),
        // Boolean structure: precedence, implicit AND, NOT forms, grouping.
        (
            "type = bug OR type = chore AND priority = P4",
            "lead",
            &["Closed bug", "Docs cleanup", "Login bug"],
        ),
        (
            "(type = bug OR type = chore) AND priority = P4",
            "lead",
            &["Docs cleanup"],
        ),
        ("type = bug priority = P0", "lead", &["Login bug"]),
        ("type = bug && priority = P0", "lead", &["Login bug"]),
        (
            "type = bug || type = chore",
            "lead",
            &["Closed bug", "Docs cleanup", "Login bug"],
        ),
        ("NOT status = closed AND type = bug", "lead", &["Login bug"]),
        ("-status = closed type = bug", "lead", &["Login bug"]),
        ("!is(open) type = feature", "lead", &[]),
        ("status: blocked", "lead", &["Docs cleanup"]),
        // Plain text terms.
        ("cache", "lead", &["Cache layer"]),
        ("\"log in\"", "lead", &["Login bug"]),
        ("bug -closed", "lead", &["Login bug"]),
        // Functions.
        ("is(in_progress)", "lead", &["Login bug"]),
        (
            "any(type, bug, chore)",
            "lead",
            &["Closed bug", "Docs cleanup", "Login bug"],
        ),
        ("all(labels, auth, urgent)", "lead", &["Login bug"]),
        (
            "none(type, bug, epic)",
            "lead",
            &["Cache layer", "Docs cleanup", "Token refresh"],
        ),
        ("label(URGENT)", "lead", &["Login bug"]),
        ("labels(perf)", "lead", &["Cache layer"]),
        ("rework()", "lead", &["Token refresh"]),
        (
            "is_ready()",
            "lead",
            &[
                "Auth epic",
                "Cache layer",
                "Closed bug",
                "Docs cleanup",
                "Login bug",
            ],
        ),
        ("has_open_deps()", "lead", &["Token refresh"]),
        // Cross-entity fields.
        ("log.message ~ cache", "lead", &["Login bug"]),
        ("log.type = decision", "lead", &["Login bug"]),
        ("log.type = blocker", "lead", &[]),
        ("comment.text ~ \"design review\"", "lead", &["Login bug"]),
        ("handoff.remaining ~ TODO", "lead", &["Login bug"]),
        ("handoff.done = refresh", "lead", &["Token refresh"]),
        ("file.role = test", "lead", &["Cache layer"]),
        ("file.path ~ cache_test", "lead", &["Cache layer"]),
        (
            "NOT log.type = decision AND type = bug",
            "lead",
            &["Closed bug"],
        ),
        // Dates (issues here were all made today).
        ("created >= -7d", "lead", &all),
        ("created = today", "lead", &all),
        ("created < today", "lead", &[]),
        ("created > 2020-01-01", "lead", &all),
        (
            "created >= this_week AND created >= this_month",
            "lead",
            &all,
        ),
        (
            "closed = NULL",
            "lead",
            &[
                "Auth epic",
                "Cache layer",
                "Docs cleanup",
                "Login bug",
                "Token refresh",
            ],
        ),
        ("closed >= yesterday", "lead", &["Closed bug"]),
        ("updated >= -12h", "lead", &all),
        // Transitions log too ("Started work", "Blocked", …).
        (
            "log.timestamp = today",
            "lead",
            &["Closed bug", "Docs cleanup", "Login bug", "Token refresh"],
        ),
        (
            "log.message = \"started work\"",
            "lead",
            &["Login bug", "Token refresh"],
        ),
        // Sort clauses do not change membership.
        (
            "type = bug sort:-priority",
            "lead",
            &["Closed bug", "Login bug"],
        ),
    ];
    let name_of: BTreeMap<String, &str> = ids.iter().map(|(n, i)| (i.clone(), *n)).collect();
    let mut failures = Vec::new();
    for (q, session, want) in cases {
        let v = r.json_as(session, &["query", q, "-n", "0"]);
        let mut got: Vec<&str> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|i| name_of[&id_of(i)])
            .collect();
        got.sort();
        let mut want = want.to_vec();
        want.sort();
        if got != want {
            failures.push(format!("{q:?} as {session}: got {got:?}, want {want:?}"));
        }
    }
    // Relations by id.
    let (epic, login, token, cache) = (
        &ids["Auth epic"],
        &ids["Login bug"],
        &ids["Token refresh"],
        &ids["Cache layer"],
    );
    for (q, want) in [
        (format!("child_of({epic})"), vec!["Login bug"]),
        (
            format!("descendant_of({epic})"),
            vec!["Login bug", "Token refresh"],
        ),
        (format!("parent = {login}"), vec!["Token refresh"]),
        (format!("epic = {epic}"), vec!["Login bug", "Token refresh"]),
        (format!("blocks({token})"), vec!["Cache layer"]),
        (format!("blocked_by({cache})"), vec!["Token refresh"]),
        (format!("dep.depends_on = {cache}"), vec!["Token refresh"]),
        (format!("dep.blocks = {token}"), vec!["Cache layer"]),
        ("linked_to(cache_test)".to_string(), vec!["Cache layer"]),
    ] {
        let v = r.json(&["query", &q]);
        let mut got: Vec<&str> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|i| name_of[&id_of(i)])
            .collect();
        got.sort();
        if got != want {
            failures.push(format!("{q:?}: got {got:?}, want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");

    // Sorting, limits and output formats.
    let sorted = r.json(&["query", "type = bug OR type = feature sort:-priority"]);
    let order: Vec<&str> = sorted
        .as_array()
        .unwrap()
        .iter()
        .map(|i| name_of[&id_of(i)])
        .collect();
    assert_eq!(order, ["Token refresh", "Closed bug", "Login bug"]);
    let by_flag = r.json(&[
        "query",
        "type = bug OR type = feature",
        "--sort",
        "-priority",
    ]);
    assert_eq!(by_flag, sorted);
    assert_eq!(r.ok(&["query", "type = bug", "-o", "count"]).trim(), "2");
    let idsout = r.ok(&["query", "type = bug", "-o", "ids"]);
    assert_eq!(idsout.lines().count(), 2);
    let limited = r.run(&["query", "status != closed", "-n", "2"]);
    assert_eq!(limited.stdout.lines().count(), 2);
    assert!(
        limited.stderr.contains("showing 2 of 5 matches"),
        "{}",
        limited.stderr
    );
    let scan = r.run(&["query", "status = open", "--max-scan", "2", "--json"]);
    assert!(scan.stderr.contains("only the first 2 issues were scanned"));
    assert_eq!(
        r.ok(&["query", "title ~ zzz"]).trim(),
        "No issues matching query"
    );
    let ex = r.json(&[
        "query",
        "type = bug AND NOT (priority <= P1 OR has(labels)) sort:-created",
        "--explain",
    ]);
    assert_eq!(
        ex["parsed"],
        "(type = bug AND (NOT (priority <= P1 OR has(labels)))) sort:-created_at"
    );
    assert!(r.ok(&["query", "--examples"]).contains("rework()"));
    assert!(r.ok(&["query", "--fields"]).contains("CROSS-ENTITY FIELDS"));

    // td's errors, with positions.
    for (q, want) in [
        (
            "status = ",
            "parse error at line 1, column 9: expected value",
        ),
        ("(type = bug", "missing closing parenthesis"),
        ("type = bug)", "unexpected token after expression"),
        (
            "title ~ \"open",
            "lexer error at line 1, column 9: unterminated string",
        ),
        ("assignee = @you", "unknown special value: @you"),
        ("created > +3x", "invalid relative date: +3"),
        ("colour = red", "unknown field: colour"),
        ("log.colour = red", "unknown field: log.colour"),
        ("status = opn", "invalid value for status: \"opn\""),
        ("log.type = nonsense", "invalid value for log.type"),
        (
            "log.message < x",
            "operator < is not supported on log.message",
        ),
        (
            "created ~ 2024",
            "operator ~ is not supported on date field created",
        ),
        ("created > someday", "created is a date field"),
        ("frobnicate(x)", "unknown function: frobnicate"),
        (
            "has()",
            "function has requires at least 1 argument(s), got 0",
        ),
        (
            "rework(x)",
            "function rework accepts at most 0 argument(s), got 1",
        ),
        ("sort:colour", "invalid sort field: colour"),
        (
            "type = bug sort:id sort:title",
            "multiple sort clauses not allowed",
        ),
        ("note.title ~ x", "note fields query notes"),
        ("type = bug #", "unexpected character: '#'"),
    ] {
        let out = r.run(&["query", q, "--json"]);
        let v = out.json();
        assert_eq!(v["error"]["code"], "invalid_input", "{q}: {}", out.stdout);
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(want), "{q}: {msg}");
    }
    let deep = format!("{}status = open{}", "(".repeat(60), ")".repeat(60));
    assert!(
        r.run(&["query", &deep, "--json"]).json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("maximum nesting depth of 50")
    );

    // A board evaluates TDQ too (td's queries, @me included).
    r.json_as(
        "impl",
        &[
            "board",
            "create",
            "Mine",
            "-q",
            "implementer = @me OR log.type = decision",
        ],
    );
    let shown = r.json_as("impl", &["board", "show", "Mine"]);
    let on_board: Vec<&str> = shown["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| name_of[&id_of(i)])
        .collect();
    assert_eq!(on_board, ["Login bug"]);
    // td's spelling: the query after the name.
    r.json(&["board", "create", "Bugs", "type = bug AND is(open)"]);
    let shown = r.json(&["board", "show", "Bugs"]);
    assert!(shown["issues"].as_array().unwrap().is_empty());
    assert_eq!(
        r.run(&["board", "create", "Typo", "type = bg", "--json"])
            .error_code(),
        "invalid_input"
    );
}

// ---------------------------------------------------------------------------------------
// The property test: random expressions over simple fields, engine vs a reference.

fn fields(f: impl FnOnce(&mut IssueFields)) -> IssueFields {
    let mut x = IssueFields::default();
    f(&mut x);
    x
}

#[derive(Debug, Clone)]
enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Cmp(&'static str, &'static str, String),
    Func(&'static str, Vec<String>),
    Text(String),
}

fn render(e: &Expr) -> String {
    match e {
        Expr::And(a, b) => format!("({} AND {})", render(a), render(b)),
        Expr::Or(a, b) => format!("({} OR {})", render(a), render(b)),
        Expr::Not(x) => format!("NOT ({})", render(x)),
        Expr::Cmp(f, op, v) => format!("{f} {op} \"{v}\""),
        Expr::Func(n, args) => format!("{n}({})", args.join(", ")),
        Expr::Text(t) => format!("\"{t}\""),
    }
}

/// The reference: each rule written out plainly over the issue's JSON row.
fn reference(e: &Expr, row: &Value) -> bool {
    let text = |f: &str| -> String {
        match f {
            // td's model leaves empty labels out.
            "labels" => row["labels"]
                .as_array()
                .map(|a| a.iter().map(|l| l.as_str().unwrap()).collect::<Vec<_>>())
                .unwrap_or_default()
                .join(","),
            "points" => row["points"].to_string(),
            "minor" => row["minor"].to_string(),
            "type" => row["type"].as_str().unwrap().to_string(),
            other => row[other].as_str().unwrap_or("").to_string(),
        }
    };
    let rank = |p: &str| p[1..].parse::<i64>().unwrap();
    match e {
        Expr::And(a, b) => reference(a, row) && reference(b, row),
        Expr::Or(a, b) => reference(a, row) || reference(b, row),
        Expr::Not(x) => !reference(x, row),
        Expr::Text(t) => [text("id"), text("title"), text("description")]
            .iter()
            .any(|s| s.to_lowercase().contains(&t.to_lowercase())),
        Expr::Func(name, args) => match *name {
            "is" => text("status") == args[0],
            "has" => match args[0].as_str() {
                "points" | "minor" => true,
                f => !text(f).is_empty(),
            },
            "any" => args[1..]
                .iter()
                .any(|v| text(&args[0]).to_lowercase() == v.to_lowercase()),
            "label" => text("labels")
                .split(',')
                .any(|l| l.eq_ignore_ascii_case(&args[0])),
            _ => unreachable!(),
        },
        Expr::Cmp(f, op, v) => {
            let got = text(f);
            match *op {
                "=" => got == *v,
                "!=" => got != *v,
                "~" => got.to_lowercase().contains(&v.to_lowercase()),
                "!~" => !got.to_lowercase().contains(&v.to_lowercase()),
                _ => {
                    let (a, b) = if *f == "priority" {
                        (rank(&got), rank(v))
                    } else {
                        (got.parse::<i64>().unwrap(), v.parse::<i64>().unwrap())
                    };
                    match *op {
                        "<" => a < b,
                        "<=" => a <= b,
                        ">" => a > b,
                        _ => a >= b,
                    }
                }
            }
        }
    }
}

fn leaf() -> impl Strategy<Value = Expr> {
    let status = prop::sample::select(vec!["open", "in_progress", "blocked", "closed"]);
    let prio = prop::sample::select(vec!["P0", "P1", "P2", "P3", "P4"]);
    let word = prop::sample::select(vec!["alpha", "beta", "gamma", "Alpha", "ta", "x"]);
    let label = prop::sample::select(vec!["red", "blue", "green"]);
    let eqop = prop::sample::select(vec!["=", "!=", "~", "!~"]);
    let ordop = prop::sample::select(vec!["<", "<=", ">", ">=", "=", "!="]);
    prop_oneof![
        (status.clone(), eqop.clone()).prop_map(|(s, op)| Expr::Cmp("status", op, s.to_string())),
        (prio, ordop.clone()).prop_map(|(p, op)| Expr::Cmp("priority", op, p.to_string())),
        (0i64..9, ordop).prop_map(|(n, op)| Expr::Cmp("points", op, n.to_string())),
        (word.clone(), eqop.clone()).prop_map(|(w, op)| Expr::Cmp("title", op, w.to_string())),
        (label.clone(), eqop).prop_map(|(l, op)| Expr::Cmp("labels", op, l.to_string())),
        word.prop_map(|w| Expr::Text(w.to_string())),
        status.prop_map(|s| Expr::Func("is", vec![s.to_string()])),
        prop::sample::select(vec!["labels", "description", "points", "sprint"])
            .prop_map(|f| Expr::Func("has", vec![f.to_string()])),
        label.prop_map(|l| Expr::Func("label", vec![l.to_string()])),
        (
            prop::sample::select(vec!["bug", "task", "feature"]),
            prop::sample::select(vec!["chore", "epic", "bug"])
        )
            .prop_map(|(a, b)| Expr::Func("any", vec!["type".into(), a.into(), b.into()])),
    ]
}

fn expr() -> impl Strategy<Value = Expr> {
    leaf().prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::Or(Box::new(a), Box::new(b))),
            inner.prop_map(|x| Expr::Not(Box::new(x))),
        ]
    })
}

#[test]
fn random_queries_agree_with_a_reference_evaluation() {
    let mut nodes = td_tests::mesh::project(1);
    let p = &mut nodes[0].project;
    let titles = [
        "alpha one",
        "Beta two",
        "gamma",
        "alphabet soup",
        "delta",
        "Theta",
    ];
    let labels = [
        vec![],
        vec!["red".to_string()],
        vec!["blue".into(), "green".into()],
        vec!["red".into(), "green".into()],
    ];
    let types = ["bug", "task", "feature", "chore"];
    let mut ids = Vec::new();
    for n in 0..24usize {
        let i = p
            .create(
                &fields(|f| {
                    f.title = Some(titles[n % titles.len()].to_string());
                    f.priority = Some(format!("P{}", n % 5));
                    f.points = Some([0, 1, 2, 3, 5, 8][n % 6]);
                    f.labels = Some(labels[n % labels.len()].clone());
                    f.issue_type = Some(types[n % types.len()].to_string());
                    if n % 3 == 0 {
                        f.description = Some("has alpha inside".into());
                    }
                    if n % 4 == 1 {
                        f.sprint = Some("s2".into());
                    }
                }),
                &[],
                &[],
            )
            .unwrap();
        ids.push(i.id);
    }
    for (n, id) in ids.iter().enumerate() {
        match n % 4 {
            1 => {
                p.start(id, true, None, None).unwrap();
            }
            2 => {
                p.block(id, None, None).unwrap();
            }
            _ => {}
        }
    }
    let rows: Vec<Value> = td_engine::query::all_live_issues(p.store.conn())
        .unwrap()
        .iter()
        .map(|i| i.to_json())
        .collect();
    let ctx = EvalContext::new(&p.session.id);
    let opts = QueryOptions::default();
    proptest!(ProptestConfig::with_cases(400), |(e in expr())| {
        let text = render(&e);
        let q = td_engine::tdq::parse(&text).unwrap();
        let got: Vec<String> = td_engine::tdq::evaluate(p.store.conn(), &q, &ctx, &opts)
            .unwrap()
            .issues
            .into_iter()
            .map(|i| i.id)
            .collect();
        let want: Vec<String> = rows
            .iter()
            .filter(|r| reference(&e, r))
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect();
        let (mut g, mut w) = (got.clone(), want.clone());
        g.sort();
        w.sort();
        prop_assert_eq!(g, w, "{}", text);
    });
}
