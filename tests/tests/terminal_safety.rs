//! Text from the log reaches a terminal escaped (issue 17, point 8): a title or comment written
//! on another machine cannot clear the screen, write the clipboard (OSC 52), fake lines or
//! reorder text (bidi overrides). `--json` stays exact.

use td_tests::Replica;

const HOSTILE: &str = "Fix\x1b[2J\x1b]52;c;cm0gLXJmIH4=\x07 login\u{202e}gnp.exe\u{9b}31m";

#[test]
fn control_sequences_from_other_machines_are_shown_escaped() {
    let a = Replica::init();
    let id = a.create(HOSTILE, &[]);
    a.json(&["comment", &id, HOSTILE]);
    let b = Replica::init();
    let sa = a.serve();
    a.befriend(&b, "a", &sa.addr);
    b.ok(&["peer", "sync", "a"]);
    for out in [
        b.ok(&["list"]),
        b.ok(&["show", &id]),
        b.ok(&["search", "login"]),
        a.ok(&["list"]),
    ] {
        for raw in ['\x1b', '\x07', '\u{202e}', '\u{9b}'] {
            assert!(
                !out.contains(raw),
                "raw {raw:?} reached the terminal: {out:?}"
            );
        }
        assert!(out.contains("Fix\\u{1b}[2J"), "{out}");
    }
    // JSON is exact.
    let v = b.json(&["show", &id]);
    assert_eq!(v["title"], HOSTILE);
    // An error message that quotes input is escaped too.
    let r = b.run(&["show", "td-\x1b[2Jx"]);
    assert_eq!(r.code, 1);
    assert!(!r.stderr.contains('\x1b'), "{:?}", r.stderr);
    sa.stop();
}
