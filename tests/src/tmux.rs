//! A real terminal for testing `td monitor`: tmux (Debian's package, installed with apt on a
//! machine that lacks it, once). Each [`Tmux`] runs its own server on a private socket, so
//! tests run in parallel without seeing each other's sessions; captures are kept under
//! `target/test-artefacts/` as the test's record of what the screen showed.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The tmux binary, installed with apt-get when missing.
pub fn tmux_bin() -> PathBuf {
    crate::apt_binary("tmux", "tmux", "the monitor tests need a real terminal")
}

/// One tmux server with one window running a shell.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// Starts a `width`×`height` window running `sh` with `env` set.
    pub fn start(width: u16, height: u16, env: &[(&str, String)]) -> Tmux {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let socket = format!(
            "td-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let t = Tmux { socket };
        let mut cmd = Command::new(tmux_bin());
        cmd.args([
            "-L",
            &t.socket,
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "t",
        ])
        .args(["-x", &width.to_string(), "-y", &height.to_string()])
        .env("TERM", "xterm-256color")
        .env_remove("TMUX");
        for (k, v) in env {
            cmd.env(k, v);
        }
        // A plain shell with a fixed prompt, so a capture after the monitor exits is readable.
        cmd.args(["env", "PS1=$ ", "sh"]);
        let out = cmd.output().expect("run tmux");
        assert!(out.status.success(), "tmux new-session: {out:?}");
        t
    }

    fn tmux(&self, args: &[&str]) -> Output {
        Command::new(tmux_bin())
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("run tmux")
    }

    /// Types `keys` (tmux key names, e.g. `Enter`, `Escape`, or literal text with `-l`).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        assert!(self.tmux(&args).status.success());
    }

    /// Types literal text.
    pub fn text(&self, text: &str) {
        assert!(self
            .tmux(&["send-keys", "-t", "t", "-l", text])
            .status
            .success());
    }

    /// What the window shows now, one string per row.
    pub fn capture(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", "t"]).stdout).into_owned()
    }

    /// Waits until the screen satisfies `pred` (at most `secs`), and returns it; panics with
    /// the last screen otherwise.
    pub fn wait_for(&self, what: &str, secs: u64, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let screen = self.capture();
            if pred(&screen) {
                return screen;
            }
            if Instant::now() > deadline {
                panic!("waited {secs}s for {what}; the screen shows:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Saves the screen as a test artefact (`target/test-artefacts/<name>.txt`).
    pub fn keep(&self, name: &str) -> String {
        let screen = self.capture();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artefacts");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.txt")), &screen).unwrap();
        screen
    }

    /// The process ids of the window's foreground job (the monitor while it runs).
    pub fn pane_pid(&self) -> u32 {
        String::from_utf8_lossy(
            &self
                .tmux(&["display", "-p", "-t", "t", "#{pane_pid}"])
                .stdout,
        )
        .trim()
        .parse()
        .expect("pane pid")
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}
