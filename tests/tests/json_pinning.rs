//! Pins the `--json` output of a sample of every command family, byte for byte after
//! normalizing what differs between runs (ids, timestamps, keys, hashes), against
//! `tests/golden/json_pinning.txt`. Refactors of the read paths (issue 11's typed read models)
//! must keep it identical; a change in a command's JSON shape is made on purpose by running
//! with `TD_BLESS=1` and reviewing the diff.

use std::collections::HashMap;
use std::path::Path;

use td_tests::Replica;

/// Replaces run-dependent values with stable placeholders, numbered in order of first
/// appearance so that equal values stay equal.
struct Normalizer {
    seen: HashMap<String, String>,
    counts: HashMap<String, usize>,
}

impl Normalizer {
    fn token(&mut self, kind: &str, value: &str) -> String {
        if let Some(t) = self.seen.get(value) {
            return t.clone();
        }
        let n = self.counts.entry(kind.to_string()).or_insert(0);
        *n += 1;
        let t = format!("<{kind}{n}>");
        self.seen.insert(value.to_string(), t.clone());
        t
    }

    fn string(&mut self, s: &str) -> String {
        let is_hex = |t: &str| {
            t.len() >= 8
                && t.chars().all(|c| c.is_ascii_hexdigit())
                && t.chars().any(|c| c.is_ascii_digit())
        };
        let is_time = |t: &str| {
            t.len() >= 19
                && t.as_bytes()[4] == b'-'
                && t.as_bytes()[7] == b'-'
                && (t.as_bytes()[10] == b' ' || t.as_bytes()[10] == b'T')
                && t.as_bytes()[13] == b':'
        };
        // Whole-value forms first, then ids inside text.
        if is_time(s) {
            return "<time>".into();
        }
        if is_hex(s) {
            return self.token("hex", s);
        }
        let mut out = String::new();
        for word in
            s.split_inclusive(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        {
            let (w, sep) = match word.char_indices().last() {
                Some((j, c)) if !(c.is_ascii_alphanumeric() || c == '-' || c == '_') => {
                    (&word[..j], &word[j..])
                }
                _ => (word, ""),
            };
            // An id: a short prefix, then a random hex part (`td-1a2b3c`, `ifl_…`, `prj_…_…`).
            let (kind, rest) = w.split_once(['-', '_']).unwrap_or(("", ""));
            let rest: String = rest.chars().filter(|c| *c != '-' && *c != '_').collect();
            // A random part may have no digit (`td-babfcd`): known id prefixes need none.
            const ID_PREFIXES: [&str; 15] = [
                "td", "bd", "ws", "nt", "lg", "cm", "ho", "rv", "ifl", "dep", "bip", "wsi", "ish",
                "act", "cf",
            ];
            let id_like = kind.starts_with(|c: char| c.is_ascii_alphabetic())
                && kind.len() <= 4
                && rest.len() >= 4
                && rest.chars().all(|c| c.is_ascii_hexdigit())
                && (ID_PREFIXES.contains(&kind) || rest.chars().any(|c| c.is_ascii_digit()));
            if id_like {
                out.push_str(&self.token(kind, w));
            } else if is_hex(w) {
                out.push_str(&self.token("hex", w));
            } else {
                out.push_str(w);
            }
            out.push_str(sep);
        }
        out
    }

    fn value(&mut self, v: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match v {
            Value::String(s) => Value::String(self.string(s)),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.value(x)).collect()),
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, x)| {
                        let k = self.string(k);
                        (k, self.value(x))
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

#[test]
fn json_output_of_every_command_family_is_pinned() {
    let r = Replica::init();
    std::fs::create_dir_all(r.root.join("src")).unwrap();
    std::fs::write(r.root.join("src/lib.rs"), "// linked\n").unwrap();
    let root = r.root.display().to_string();
    let me = "ses_pinned_agent";
    let other = "ses_pinned_reviewer";
    let mut out = String::new();
    let mut norm = Normalizer {
        seen: HashMap::new(),
        counts: HashMap::new(),
    };
    let mut run = |session: &str, args: &[&str]| -> serde_json::Value {
        let mut full: Vec<&str> = args.to_vec();
        full.push("--json");
        let res = r.run_as(session, &full);
        let text = res.stdout.trim().replace(&root, "<root>");
        let v: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {} {}", res.stdout, res.stderr));
        let shown = norm.value(&v);
        let command: Vec<String> = args
            .iter()
            .map(|a| norm.string(&a.replace(&root, "<root>")))
            .collect();
        out.push_str(&format!(
            "$ td {} (exit {})\n{}\n\n",
            command.join(" "),
            res.code,
            serde_json::to_string_pretty(&shown).unwrap()
        ));
        v
    };
    let id = |v: &serde_json::Value| v["id"].as_str().unwrap_or_default().to_string();
    let a = id(&run(
        me,
        &[
            "create",
            "Pinned issue",
            "-p",
            "P1",
            "-l",
            "json,pin",
            "-d",
            "A description",
        ],
    ));
    let b = id(&run(me, &["create", "Second issue", "--type", "bug"]));
    run(me, &["list"]);
    run(me, &["show", &a]);
    run(me, &["update", &a, "--priority", "P0", "--sprint", "s1"]);
    run(me, &["start", &a]);
    run(me, &["log", &a, "Progress on the pinned issue"]);
    run(me, &["comment", &a, "A comment"]);
    run(
        me,
        &[
            "handoff",
            &a,
            "--done",
            "the parser",
            "--remaining",
            "the tests",
        ],
    );
    run(me, &["dep", "add", &b, &a]);
    let linked = r.root.join("src/lib.rs").display().to_string();
    run(me, &["link", &a, &linked]);
    run(me, &["files", &a]);
    run(me, &["review", &a]);
    run(me, &["in-review"]);
    run(other, &["reviewable"]);
    run(me, &["approve", &a]);
    run(other, &["approve", &a, "--reason", "Looks right"]);
    run(me, &["reopen", &a]);
    run(me, &["block", &b]);
    run(me, &["blocked"]);
    run(me, &["unblock", &b]);
    run(me, &["close", &b]);
    run(me, &["ready"]);
    run(me, &["next"]);
    run(me, &["defer", &a, "2030-01-01"]);
    run(me, &["due", &a, "2030-02-01"]);
    run(me, &["search", "pinned"]);
    run(me, &["query", "priority <= P1"]);
    run(me, &["tree", &a]);
    run(me, &["delete", &b]);
    run(me, &["deleted"]);
    run(me, &["restore", &b]);
    run(me, &["board", "create", "Pins", "-q", "labels ~ pin"]);
    run(me, &["board", "list"]);
    run(me, &["note", "add", "Release plan", "-c", "ship Friday"]);
    run(me, &["note", "list"]);
    run(me, &["ws", "start", "Pinned work"]);
    run(me, &["usage"]);
    run(me, &["status"]);
    run(me, &["member", "list"]);
    run(me, &["show", "td-nothere"]);
    // Commands added with td's surface (issue 13).
    run(me, &["comments", &a]);
    run(me, &["depends-on", &b]);
    run(me, &["blocked-by", &a]);
    run(me, &["critical-path"]);
    run(me, &["check-handoff"]);
    run(me, &["focus", &a]);
    run(me, &["unfocus"]);
    run(me, &["workflow"]);
    run(me, &["security"]);
    run(me, &["feature", "get", "review_policy_mode"]);
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/json_pinning.txt");
    if std::env::var_os("TD_BLESS").is_some() {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, &out).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&golden)
        .expect("golden file missing: run with TD_BLESS=1 to create it");
    if out != want {
        let first = out
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        let context: Vec<&str> = out.lines().skip(first.saturating_sub(3)).take(8).collect();
        let expected: Vec<&str> = want.lines().skip(first.saturating_sub(3)).take(8).collect();
        panic!(
            "--json output changed at line {}:\n--- now\n{}\n--- pinned\n{}",
            first + 1,
            context.join("\n"),
            expected.join("\n")
        );
    }
}
