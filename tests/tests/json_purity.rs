//! td's json-stdout-purity rule: with `--json`, stdout is exactly one JSON value for every
//! command, success or failure, also outside a project; diagnostics go to stderr. Lists that
//! are empty are `[]`.

use td_tests::Replica;

fn one_value(stdout: &str, args: &[&str]) -> serde_json::Value {
    let mut values = serde_json::Deserializer::from_str(stdout).into_iter::<serde_json::Value>();
    let first = values
        .next()
        .unwrap_or_else(|| panic!("{args:?}: no JSON on stdout: {stdout:?}"))
        .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {stdout:?}"));
    assert!(
        values.next().is_none(),
        "{args:?}: more than one value: {stdout:?}"
    );
    first
}

const READS: &[&[&str]] = &[
    &["list"],
    &["ready"],
    &["next"],
    &["blocked"],
    &["in-review"],
    &["reviewable"],
    &["deleted"],
    &["usage"],
    &["usage", "-q"],
    &["status"],
    &["whoami"],
    &["session"],
    &["session", "list"],
    &["board", "list"],
    &["note", "list"],
    &["ws", "list"],
    &["ws", "current"],
    &["epic", "list"],
    &["task", "list"],
    &["member", "list"],
    &["peer", "list"],
    &["sync", "conflicts"],
    &["feature", "list"],
    &["config", "list"],
    &["critical-path"],
    &["check-handoff"],
    &["workflow"],
    &["version"],
    &["query", "status = open"],
    &["search", "nothing matches this"],
];

#[test]
fn every_command_prints_one_json_value() {
    let r = Replica::init();
    for args in READS {
        let mut a = args.to_vec();
        a.push("--json");
        let out = r.run(&a);
        one_value(&out.stdout, args);
        assert_eq!(out.code, 0, "{args:?}: {out:?}");
        assert!(
            !out.stdout.contains('\u{1b}'),
            "{args:?}: no terminal escapes in JSON"
        );
    }
    // Empty lists are [] (never null, never silence).
    for args in [
        &["list"][..],
        &["deleted"],
        &["note", "list"],
        &["sync", "conflicts"],
    ] {
        assert_eq!(r.json(args), serde_json::json!([]), "{args:?}");
    }
    // Failures: one error envelope.
    for args in [
        &["show", "td-nope00"][..],
        &["start", "td-nope00"],
        &["list", "--sort", "sideways"],
        &["no-such-command"],
        &["focus", "td-nope00"],
        &["log", "td-nope00", "x"],
    ] {
        let mut a = args.to_vec();
        a.push("--json");
        let out = r.run(&a);
        let v = one_value(&out.stdout, args);
        assert_eq!(out.code, 1, "{args:?}");
        assert!(v["error"]["code"].is_string(), "{args:?}: {v}");
    }
}

#[test]
fn outside_a_project_every_command_still_prints_one_json_value() {
    let r = Replica::new(); // no td init
    for args in READS
        .iter()
        .copied()
        .chain([&["create", "A title here"][..], &["start", "td-abc123"]])
    {
        let mut a = args.to_vec();
        a.push("--json");
        let out = r.run(&a);
        let v = one_value(&out.stdout, args);
        if out.code != 0 {
            assert!(v["error"]["code"].is_string(), "{args:?}: {v}");
        }
    }
    assert!(
        !r.root.join(".todos/issues.db").exists(),
        "no command outside a project creates one"
    );
}
