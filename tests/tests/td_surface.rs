//! td v0.62's top-level commands and the aliases agents type, each answered by this binary
//! (facts from td's `cmd/` package: every command registered on its root).

use td_tests::Replica;

/// td's top-level commands.
const TD_COMMANDS: [&str; 67] = [
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
    "monitor",
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
    "serve",
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

/// td's aliases for them.
const TD_ALIASES: [(&str, &str); 18] = [
    ("add", "create"),
    ("new", "create"),
    ("ls", "list"),
    ("context", "show"),
    ("view", "show"),
    ("get", "show"),
    ("edit", "update"),
    ("deps", "depends-on"),
    ("dependencies", "depends-on"),
    ("begin", "start"),
    ("stop", "unstart"),
    ("submit", "review"),
    ("finish", "review"),
    ("done", "close"),
    ("complete", "close"),
    ("ir", "in-review"),
    ("current", "status"),
    ("worksession", "ws"),
];

/// td's flags per command, as td-surface.md lists them (the flags of `list`, `search` and
/// `query`, which belong with the query language, are checked with it). Each must appear in
/// the command's `--help`.
const TD_FLAGS: &[(&str, &[&str])] = &[
    (
        "create",
        &[
            "--title",
            "-t",
            "--type",
            "-p",
            "--priority",
            "--points",
            "-l",
            "--labels",
            "--label",
            "--tag",
            "--tags",
            "-d",
            "--description",
            "--desc",
            "--body",
            "--notes",
            "--description-file",
            "--acceptance",
            "--acceptance-file",
            "--parent",
            "--epic",
            "--depends-on",
            "--blocks",
            "--minor",
            "--defer",
            "--due",
        ],
    ),
    (
        "show",
        &[
            "--long",
            "--short",
            "-f",
            "--format",
            "--children",
            "--tree",
            "-m",
            "--render-markdown",
        ],
    ),
    (
        "update",
        &[
            "--status",
            "--append",
            "-m",
            "--comment",
            "-c",
            "--note",
            "--sprint",
            "--depends-on",
            "--blocks",
            "--description-file",
            "--acceptance-file",
        ],
    ),
    ("delete", &["-f", "--force", "-y", "--yes"]),
    ("start", &["--reason", "--force"]),
    ("unstart", &["--reason", "--session", "--stale", "--force"]),
    (
        "log",
        &[
            "-i",
            "--issue",
            "-T",
            "--task",
            "-t",
            "--type",
            "--blocker",
            "--decision",
            "--hypothesis",
            "--tried",
            "--result",
        ],
    ),
    (
        "handoff",
        &[
            "--done",
            "--remaining",
            "--decision",
            "--uncertain",
            "-n",
            "--note",
            "-m",
            "--message",
        ],
    ),
    (
        "review",
        &[
            "-m",
            "--reason",
            "--message",
            "--comment",
            "--note",
            "--notes",
            "--minor",
        ],
    ),
    (
        "approve",
        &[
            "-m",
            "--reason",
            "-c",
            "--all",
            "--record-only",
            "--self-review",
            "--reviewed-by",
            "--decision",
        ],
    ),
    ("reject", &["-m", "--reason", "-c"]),
    (
        "close",
        &["-m", "--reason", "--self-close-exception", "--admin"],
    ),
    ("reopen", &["--reason"]),
    ("block", &["--reason"]),
    ("unblock", &["--reason"]),
    ("dep", &["--blocking"]),
    ("blocked-by", &["--direct"]),
    ("critical-path", &["--limit"]),
    ("tree", &["--depth"]),
    ("defer", &["--clear"]),
    ("due", &["--clear"]),
    ("reviewable", &["--include-approved"]),
    ("link", &["--role", "--recursive", "--depends-on"]),
    ("files", &["--changed", "-u", "--untracked"]),
    ("undo", &["--list"]),
    ("last", &["-n"]),
    ("export", &["--format", "-o", "--all", "-m"]),
    ("import", &["--format", "--dry-run", "--force"]),
    ("workflow", &["--mermaid", "--dot"]),
    ("version", &["--short", "--check"]),
    ("session", &["--new"]),
    ("sync", &["--push", "--pull", "--status"]),
    ("monitor", &["--interval"]),
    (
        "serve",
        &[
            "-p",
            "--port",
            "-a",
            "--addr",
            "--token",
            "--cors",
            "--interval",
        ],
    ),
];

/// td's subcommands (and their aliases) under a command, with their flags.
const TD_SUBCOMMAND_FLAGS: &[(&[&str], &[&str])] = &[
    (&["board", "create"], &["-q"]),
    (&["board", "show"], &["-s"]),
    (&["board", "edit"], &["-n", "-q", "--view-mode"]),
    (&["note", "edit"], &["-t", "-c"]),
    (
        &["note", "list"],
        &[
            "--pinned",
            "--archived",
            "-a",
            "-s",
            "-n",
            "-o",
            "--deleted",
        ],
    ),
    (&["note", "ls"], &[]),
    (&["ws", "tag"], &["--no-start"]),
    (&["ws", "log"], &["--only", "--blocker", "--decision"]),
    (&["ws", "handoff"], &["--continue", "--review"]),
    (&["ws", "show"], &["--full"]),
    (&["session", "cleanup"], &["--older-than", "--force"]),
    (&["sync", "conflicts"], &["--limit"]),
    (&["dep", "remove"], &[]),
    (&["stats", "analytics"], &[]),
    (&["stats", "usage"], &[]),
    (&["stats", "errors"], &[]),
    (&["stats", "security"], &[]),
    (&["comments", "add"], &[]),
];

/// Whether `--help` lists `flag` among the options: in an option's flag column, or in its
/// `[alias: …]`/`[aliases: …]` (which long help puts on a line of its own), never a mention
/// in prose.
fn flag_in_help(help: &str, flag: &str) -> bool {
    let words = |t: &str| -> Vec<String> {
        t.split(|c: char| c.is_whitespace() || ",=[]<>".contains(c))
            .map(String::from)
            .collect()
    };
    let mut listed: Vec<String> = Vec::new();
    for line in help.lines().map(str::trim_start) {
        if line.starts_with('-') {
            listed.extend(words(line.split("  ").next().unwrap_or("")));
        }
        for marker in [
            "[alias: ",
            "[aliases: ",
            "[short aliases: ",
            "[short alias: ",
        ] {
            if let Some((_, rest)) = line.split_once(marker) {
                listed.extend(words(rest.split(']').next().unwrap_or("")));
            }
        }
    }
    listed.iter().any(|w| w == flag)
}

#[test]
fn every_td_flag_is_accepted() {
    let r = Replica::init();
    let mut missing = Vec::new();
    let mut check = |path: &[&str], flags: &[&str]| {
        let mut args = path.to_vec();
        args.push("--help");
        let out = r.run(&args);
        if out.code != 0 {
            missing.push(format!("td {} (no such command)", path.join(" ")));
            return;
        }
        for f in flags {
            if !flag_in_help(&out.stdout, f) {
                missing.push(format!("td {} {f}", path.join(" ")));
            }
        }
    };
    for (cmd, flags) in TD_FLAGS {
        check(&[cmd], flags);
    }
    for (path, flags) in TD_SUBCOMMAND_FLAGS {
        check(path, flags);
    }
    assert!(
        missing.is_empty(),
        "td flags this binary lacks: {missing:#?}"
    );
}

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
}
