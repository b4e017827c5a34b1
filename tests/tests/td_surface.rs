//! td v0.62's top-level commands and the aliases agents type, each answered by this binary
//! (facts from td's `cmd/` package: every command registered on its root). `monitor` and
//! `serve` are the live-view issues and are listed apart.

use td_tests::Replica;

/// td's top-level commands.
const TD_COMMANDS: [&str; 65] = [
    "approve",
    "block",
    "blocked",
    "blocked-by",
    "board",
    "check-handoff",
    "close",
    "comment",
    "comments",
    "create",
    "critical-path",
    "debug-stats",
    "defer",
    "delete",
    "deleted",
    "dep",
    "depends-on",
    "doctor",
    "due",
    "epic",
    "errors",
    "export",
    "feature",
    "files",
    "focus",
    "handoff",
    "import",
    "in-review",
    "info",
    "init",
    "last",
    "link",
    "list",
    "log",
    "next",
    "note",
    "query",
    "ready",
    "reject",
    "reopen",
    "restore",
    "resume",
    "review",
    "reviewable",
    "search",
    "security",
    "session",
    "show",
    "start",
    "stats",
    "status",
    "task",
    "tree",
    "unblock",
    "undo",
    "unfocus",
    "unlink",
    "unstart",
    "update",
    "upgrade",
    "usage",
    "version",
    "whoami",
    "workflow",
    "ws",
];

/// The views with issues of their own (`td monitor`, `td serve`).
const LIVE_VIEWS: [&str; 2] = ["monitor", "serve"];

/// td's aliases for them.
const TD_ALIASES: [(&str, &str); 8] = [
    ("add", "create"),
    ("new", "create"),
    ("ls", "list"),
    ("context", "show"),
    ("view", "show"),
    ("get", "show"),
    ("edit", "update"),
    ("deps", "depends-on"),
];

#[test]
fn every_td_command_and_alias_is_answered() {
    let r = Replica::init();
    let mut missing = Vec::new();
    for cmd in TD_COMMANDS {
        let out = r.run(&[cmd, "--help"]);
        if out.code != 0 || !out.stdout.contains("Usage: td") {
            missing.push(cmd);
        }
    }
    assert!(
        missing.is_empty(),
        "td commands this binary lacks: {missing:?}"
    );
    for (alias, target) in TD_ALIASES {
        let a = r.run(&[alias, "--help"]);
        let t = r.run(&[target, "--help"]);
        assert_eq!(a.code, 0, "{alias}");
        // Clap prints the invoked name in the usage line; the rest is the same command.
        assert_eq!(
            a.stdout.lines().skip(2).collect::<Vec<_>>(),
            t.stdout.lines().skip(2).collect::<Vec<_>>(),
            "{alias} is {target}"
        );
    }
    for cmd in LIVE_VIEWS {
        assert_ne!(
            r.run(&[cmd, "--help"]).code,
            0,
            "{cmd}: its issue is still open"
        );
    }
}
