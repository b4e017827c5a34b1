//! The module import graph of each crate has no circles: a module that uses another (a
//! `crate::` or `super::` path to it) never is used back through any chain. Modules are the
//! crate's files; a path to a module's own parent or child does not count (a module may re-export
//! its children). Run: `cargo test -p td-tests --test module_graph`; on failure it prints the
//! circles with the edges inside them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module name (`sync::apply`) → source text, for every `.rs` file under `src`.
fn modules(src: &Path) -> BTreeMap<String, String> {
    fn walk(dir: &Path, src: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, src, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p.strip_prefix(src).unwrap().with_extension("");
                let mut parts: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().to_string())
                    .collect();
                if matches!(
                    parts.last().map(String::as_str),
                    Some("mod" | "lib" | "main")
                ) {
                    parts.pop();
                }
                let name = if parts.is_empty() {
                    "crate".to_string()
                } else {
                    parts.join("::")
                };
                let text = std::fs::read_to_string(&p).unwrap();
                // Unit tests may reach anywhere.
                let text = match text.find("#[cfg(test)]\nmod tests") {
                    Some(i) => text[..i].to_string(),
                    None => text,
                };
                out.insert(name, text);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(src, src, &mut out);
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The module paths a source text names after `prefix` (`crate::` or `super::`).
fn paths_after<'a>(text: &'a str, prefix: &str) -> Vec<Vec<&'a str>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().last();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(is_ident) {
            continue;
        }
        let mut parts = Vec::new();
        let mut s = rest;
        loop {
            let end = s.find(|c: char| !is_ident(c)).unwrap_or(s.len());
            if end == 0 {
                break;
            }
            parts.push(&s[..end]);
            if s[end..].starts_with("::") {
                s = &s[end + 2..];
            } else {
                break;
            }
        }
        out.push(parts);
    }
    out
}

fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mods = modules(src);
    let mut g: BTreeMap<String, BTreeSet<String>> =
        mods.keys().map(|m| (m.clone(), BTreeSet::new())).collect();
    let related = |a: &str, b: &str| {
        a == b || a.starts_with(&format!("{b}::")) || b.starts_with(&format!("{a}::"))
    };
    for (m, text) in &mods {
        let parent: Vec<&str> = m.split("::").collect();
        let parent = parent[..parent.len() - 1].join("::");
        let mut targets = Vec::new();
        for parts in paths_after(text, "crate::") {
            targets.push(parts.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        }
        for parts in paths_after(text, "super::") {
            let mut p: Vec<String> = if parent.is_empty() {
                vec![]
            } else {
                vec![parent.clone()]
            };
            p.extend(parts.iter().map(|s| s.to_string()));
            targets.push(p.join("::").split("::").map(String::from).collect());
        }
        for parts in targets {
            for k in (1..=parts.len()).rev() {
                let cand = parts[..k].join("::");
                if mods.contains_key(&cand) {
                    if !related(m, &cand) {
                        g.get_mut(m).unwrap().insert(cand);
                    }
                    break;
                }
            }
        }
    }
    g
}

/// Strongly connected components with more than one module (Tarjan).
fn circles(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(st: &mut State<'a>, v: &'a str) {
        st.index.insert(v, st.next);
        st.low.insert(v, st.next);
        st.next += 1;
        st.stack.push(v);
        st.on.insert(v);
        for w in &st.g[v] {
            let w = w.as_str();
            if !st.index.contains_key(w) {
                visit(st, w);
                let l = st.low[v].min(st.low[w]);
                st.low.insert(v, l);
            } else if st.on.contains(w) {
                let l = st.low[v].min(st.index[w]);
                st.low.insert(v, l);
            }
        }
        if st.low[v] == st.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = st.stack.pop().unwrap();
                st.on.remove(w);
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                st.out.push(comp);
            }
        }
    }
    let mut st = State {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: vec![],
        on: BTreeSet::new(),
        next: 0,
        out: vec![],
    };
    for v in g.keys() {
        if !st.index.contains_key(v.as_str()) {
            visit(&mut st, v);
        }
    }
    st.out
}

#[test]
fn no_crate_has_module_circles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut report = Vec::new();
    for krate in ["engine", "transport", "cli"] {
        let g = graph(&root.join(krate).join("src"));
        assert!(g.len() > 3, "{krate}: modules found");
        for c in circles(&g) {
            let edges: Vec<String> = c
                .iter()
                .map(|a| {
                    let inside: Vec<&str> = g[a]
                        .iter()
                        .filter(|b| c.contains(b))
                        .map(String::as_str)
                        .collect();
                    format!("    {a} -> {}", inside.join(", "))
                })
                .collect();
            report.push(format!("{krate}: {}\n{}", c.join(" ↔ "), edges.join("\n")));
        }
    }
    assert!(report.is_empty(), "module circles:\n{}", report.join("\n"));
}

#[test]
fn the_checker_finds_a_circle() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("lib.rs"), "mod a; mod b;").unwrap();
    std::fs::write(dir.path().join("a.rs"), "use crate::b::B; pub struct A;").unwrap();
    std::fs::write(
        dir.path().join("b.rs"),
        "pub fn f() -> crate::a::A { crate::a::A }",
    )
    .unwrap();
    let c = circles(&graph(dir.path()));
    assert_eq!(c, vec![vec!["a".to_string(), "b".to_string()]]);
}
