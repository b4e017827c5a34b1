//! `td monitor` driven in a real terminal (tmux): the panes, `/` search, an approve that the
//! review policy refuses, a change synced from another replica appearing without a keypress,
//! the conflict mark, and the terminal restored after `q` and after SIGTERM. Each test keeps
//! its captures under `target/test-artefacts/monitor-*.txt`.

use td_tests::tmux::Tmux;
use td_tests::Replica;

/// Starts `td monitor` for `r` as `session` in a fresh 120×32 tmux window.
fn monitor(r: &Replica, session: &str) -> Tmux {
    let t = Tmux::start(120, 32, &[]);
    // The environment goes on the command line: a tmux server started elsewhere would not
    // pass its client's variables on.
    t.text(&format!(
        "XDG_CONFIG_HOME={} TD_SESSION_ID={session} {} -w {} monitor",
        r.config.display(),
        td_tests::td_bin().display(),
        r.root.display()
    ));
    t.keys(&["Enter"]);
    t.wait_for("the monitor's panes", 30, |s| {
        s.contains("1 Current work") && s.contains("3 Tasks")
    });
    t
}

/// The rows of the task pane (from its title down).
fn task_pane(screen: &str) -> String {
    screen[screen.find("3 Tasks").unwrap_or(0)..].to_string()
}

/// The terminal is back to normal: the shell prompt, no panes, and the line discipline in
/// canonical mode with echo (raw mode left).
fn assert_restored(t: &Tmux, name: &str) {
    let s = t.wait_for("the shell prompt after the monitor", 20, |s| {
        // capture-pane trims trailing spaces: an empty prompt is a line ending in `$`.
        !s.contains("3 Tasks") && s.lines().any(|l| l.trim_end().ends_with('$'))
    });
    t.text("stty -a | tr ' ' '\\n' | grep -x -e icanon -e echo -e -icanon -e -echo");
    t.keys(&["Enter"]);
    let s2 = t.wait_for("stty's answer", 10, |s| {
        s.lines().any(|l| l == "icanon" || l == "-icanon")
    });
    t.keep(name);
    let has = |w: &str| s2.lines().any(|l| l == w);
    assert!(
        has("icanon") && has("echo") && !has("-icanon") && !has("-echo"),
        "the terminal was left in raw mode:\n{s}\n{s2}"
    );
}

#[test]
fn panes_search_review_policy_live_sync_conflicts_and_quit() {
    let r = Replica::init();
    let a = r.create("Wire the monitor panes", &["-l", "ui", "-p", "P1"]);
    let b = r.create("Search target: cache eviction", &["-p", "P3"]);
    r.json_as("impl", &["start", &a]);
    r.json_as("impl", &["handoff", &a, "--done", "the panes"]);
    r.json_as("impl", &["review", &a]);
    let t = monitor(&r, "impl");
    let s = t.wait_for("both issues", 20, |s| {
        s.contains("Wire the monitor panes") && s.contains("Search target")
    });
    // The engine's review policy lists it as reviewable here (approving needs an attribution).
    assert!(task_pane(&s).contains("REVIEWABLE"), "{s}");
    assert!(
        s.contains("handoff"),
        "the activity shows the handoff:\n{s}"
    );
    t.keep("monitor-panes");

    // `/` search with TDQ filters the task list.
    t.keys(&["/"]);
    t.text("priority = P3");
    t.keys(&["Enter"]);
    let s = t.wait_for("the filtered list", 10, |s| {
        s.contains("filter priority = P3")
    });
    let tasks = task_pane(&s);
    assert!(tasks.contains(&b) && !tasks.contains(&a), "{s}");
    t.keep("monitor-search");
    t.keys(&["Escape"]);
    t.wait_for("the filter cleared", 10, |s| {
        !s.contains("filter priority") && task_pane(s).contains(&a)
    });

    // Approve from the monitor obeys the review policy: the implementer may not approve.
    t.keys(&["/"]);
    t.text(&format!("id = {a}"));
    t.keys(&["Enter"]);
    t.wait_for("only the reviewed issue", 10, |s| {
        !task_pane(s).contains(&b)
    });
    t.keys(&["a"]);
    t.wait_for("the confirmation", 10, |s| {
        s.contains(&format!("Approve {a}? y/n"))
    });
    t.keys(&["y"]);
    let s = t.wait_for("the refusal", 10, |s| !s.contains("y/n"));
    assert!(!s.contains(&format!("approved {a}")), "{s}");
    assert!(
        s.contains("cannot approve"),
        "the policy's reason is shown:\n{s}"
    );
    assert_eq!(r.json(&["show", &a])["status"], "in_review", "{s}");
    t.keep("monitor-approve-refused");
    t.keys(&["Escape"]);

    // A change made on another replica and synced appears without a keypress, with the
    // machine it came from; concurrent edits show the conflict mark.
    let other = Replica::init();
    let serving = r.serve();
    r.befriend(&other, "r", &serving.addr);
    other.json(&["peer", "sync", "r"]);
    let remote = other.create("Made on the other laptop", &[]);
    other.json(&["peer", "sync", "r"]);
    let machine = other.json(&["whoami"])["machine"]
        .as_str()
        .unwrap()
        .to_string();
    let s = t.wait_for("the synced issue", 20, |s| {
        s.contains("Made on the other laptop")
    });
    assert!(task_pane(&s).contains(&remote), "{s}");
    let line = s
        .lines()
        .find(|l| l.contains("Made on the other laptop") && l.contains("open ·"))
        .unwrap_or_else(|| panic!("no activity entry:\n{s}"));
    assert!(
        line.contains(&machine[..machine.len().min(8)]),
        "the activity names the machine:\n{line}"
    );
    assert!(
        s.contains("ago"),
        "the status line shows the peer's last round:\n{s}"
    );
    r.json(&["update", &b, "--title", "Title from here"]);
    other.json(&["update", &b, "--title", "Title from the other laptop"]);
    other.json(&["peer", "sync", "r"]);
    let s = t.wait_for("the conflict mark", 20, |s| {
        s.contains("⚠") && s.contains("conflicts 1")
    });
    t.keep("monitor-live-sync-conflict");
    assert!(task_pane(&s).contains("⚠ Title from"), "{s}");
    // The detail shows both values; `1` keeps the winner, after a y/n.
    t.keys(&["/"]);
    t.text(&format!("id = {b}"));
    t.keys(&["Enter"]);
    t.wait_for("only the conflicted issue", 10, |s| {
        !task_pane(s).contains(&remote)
    });
    t.keys(&["Enter"]);
    // Both values (waited for whole: the pane may be caught mid-draw).
    t.wait_for("the conflict's two values in the detail", 10, |s| {
        s.contains("CONFLICTS")
            && s.contains("Title from here")
            && s.contains("Title from the other laptop")
    });
    t.keep("monitor-conflict-detail");
    t.keys(&["1"]);
    t.wait_for("the confirmation", 10, |s| s.contains("y/n"));
    t.keys(&["y"]);
    t.wait_for("the conflict settled", 10, |s| s.contains("conflicts 0"));
    assert!(r
        .json(&["sync", "conflicts"])
        .as_array()
        .is_some_and(|v| v.is_empty()));
    t.keys(&["Escape"]);

    t.keys(&["q"]);
    assert_restored(&t, "monitor-after-quit");
    serving.stop();
}

#[test]
fn sigterm_restores_the_terminal() {
    let r = Replica::init();
    r.create("Still here after SIGTERM", &[]);
    let t = monitor(&r, "watcher");
    t.wait_for("the issue", 20, |s| s.contains("Still here after SIGTERM"));
    // The monitor is the shell's child.
    let shell = t.pane_pid();
    let out = std::process::Command::new("pgrep")
        .args(["-P", &shell.to_string()])
        .output()
        .unwrap();
    let pid = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!pid.is_empty(), "no monitor process under the shell");
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    assert_restored(&t, "monitor-after-sigterm");
}

/// The terminal going away (an ssh connection dropping; here the tmux server killed) ends the
/// monitor: it does not linger, spinning on a closed input.
#[test]
fn a_lost_terminal_ends_the_monitor() {
    let r = Replica::init();
    let t = monitor(&r, "gone");
    let out = std::process::Command::new("pgrep")
        .args(["-P", &t.pane_pid().to_string()])
        .output()
        .unwrap();
    let pid = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!pid.is_empty(), "no monitor process under the shell");
    drop(t);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.contains(") Z") {
            break; // exited, not yet reaped
        }
        assert!(
            std::time::Instant::now() < deadline,
            "td monitor {pid} still runs 10 s after its terminal went away"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn without_a_terminal_it_says_what_to_use() {
    let r = Replica::init();
    let out = r.run(&["monitor"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("needs a terminal"), "{out:?}");
}
