//! Progress of long syncs on stderr (indicatif): after a second, a line with what was done
//! out of what is expected, the bytes moved, the rate and the time left. Never with `--json`
//! and never off a terminal, so scripts and logs see only the result.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, HumanDuration, ProgressBar, ProgressStyle};

/// One progress line for one sync (a peer round, a push, a pull).
pub(crate) struct Progress {
    enabled: bool,
    started: Instant,
    bar: Option<ProgressBar>,
    label: String,
}

impl Progress {
    /// A line labelled `label` (a peer's name, a hub), shown only on a terminal without
    /// `--json`.
    pub(crate) fn new(json: bool, label: impl Into<String>) -> Progress {
        Progress {
            enabled: !json && std::io::stderr().is_terminal(),
            started: Instant::now(),
            bar: None,
            label: label.into(),
        }
    }

    /// Whether anything is shown (callers skip work that only feeds the line).
    pub(crate) fn shown(&self) -> bool {
        self.enabled
    }

    /// `what` (`received`, `pushed`, …): `done` changes of `total` when known, `bytes` moved.
    pub(crate) fn update(&mut self, what: &str, done: u64, total: Option<u64>, bytes: u64) {
        let elapsed = self.started.elapsed();
        if !self.enabled || elapsed < Duration::from_secs(1) {
            return;
        }
        let label = &self.label;
        let bar = self.bar.get_or_insert_with(|| {
            let b = ProgressBar::new_spinner().with_prefix(label.clone());
            b.set_style(
                ProgressStyle::with_template("{spinner} {prefix}: {msg}").expect("valid template"),
            );
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        let rate = bytes as f64 / elapsed.as_secs_f64().max(0.001);
        let mut msg = match total {
            Some(t) if t > 0 => format!("{what} {done}/{t} changes"),
            _ => format!("{what} {done} changes"),
        };
        msg.push_str(&format!(
            ", {} at {}/s",
            HumanBytes(bytes),
            HumanBytes(rate as u64)
        ));
        if let Some(t) = total.filter(|t| *t > done && done > 0) {
            let left = elapsed.mul_f64((t - done) as f64 / done as f64);
            msg.push_str(&format!(", about {} left", HumanDuration(left)));
        }
        bar.set_message(msg);
    }

    /// Clears the line.
    pub(crate) fn finish(self) {
        if let Some(b) = self.bar {
            b.finish_and_clear();
        }
    }
}
