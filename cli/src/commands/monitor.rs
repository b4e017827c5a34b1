//! `td monitor`: td's live terminal dashboard (`docs/monitor.md`; the screen is `crate::monitor`).

use anyhow::Result;
use clap::Args as ClapArgs;
use serde_json::json;

use super::Cx;
use crate::output::invalid;

/// Arguments of `td monitor`.
#[derive(Debug, ClapArgs)]
#[command(
    after_help = "Panes: 1 current work (focus and every session's in-progress issues), 2 activity
(logs, handoffs, comments, reviews, issue changes; with the machine each came from), 3 tasks
(list, kanban or swimlanes; every issue, a TDQ filter, or a td board in board order). The
status line shows each peer and hub with when it last synced, records waiting to be pushed,
held records and conflicts; ⚠ marks an issue with an unresolved conflict.

Keys: Tab/1-3 panes, j/k move, Enter detail, / TDQ filter, v view, b board, c closed,
s start, R review, a approve, X reject, B block, C close, O reopen, m comment
(each asks y/n), in the detail 1/2 settle a conflict, ? help, q quit.

Changes from other terminals, peer rounds and hub pulls appear as they commit (the
database is watched every 100 ms); --interval is how often the screen redraws anyway."
)]
pub(crate) struct Args {
    /// How often the screen redraws when nothing changes (td's refresh interval; at least
    /// 500ms, as in td).
    #[arg(long, default_value = "2s")]
    pub interval: String,
    /// Renders this many frames off-screen and prints timings as JSON (benchmarks).
    #[arg(long, hide = true, value_name = "N")]
    pub profile_frames: Option<usize>,
    /// The off-screen size for --profile-frames, WIDTHxHEIGHT.
    #[arg(long, hide = true, default_value = "200x50")]
    pub profile_size: String,
}

/// Runs the monitor until `q` (or prints the profile).
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let mut interval = crate::output::parse_interval(&a.interval)?;
    if interval < std::time::Duration::from_millis(500) {
        // td raises shorter intervals to its default.
        interval = std::time::Duration::from_secs(2);
    }
    if let Some(n) = a.profile_frames {
        let (w, h) = a
            .profile_size
            .split_once('x')
            .and_then(|(w, h)| Some((w.parse::<u16>().ok()?, h.parse::<u16>().ok()?)))
            .filter(|(w, h)| *w > 0 && *h > 0)
            .ok_or_else(|| {
                invalid("--profile-size must be WIDTHxHEIGHT, e.g. 200x50".to_string())
            })?;
        let (draws, refreshes) = crate::monitor::profile(cx.p, n.max(1), w, h)?;
        let ms = |v: &[std::time::Duration]| -> Vec<f64> {
            v.iter().map(|d| d.as_secs_f64() * 1000.0).collect()
        };
        println!(
            "{}",
            json!({"frames": n, "width": w, "height": h, "render_ms": ms(&draws), "refresh_ms": ms(&refreshes)})
        );
        return Ok(());
    }
    // The project's sync loop, unless another process runs it (docs/sync-loop.md); its lines
    // would tear the screen, so they go to its state file only.
    let _sync_loop = crate::hub::background_loop(cx.p, cx.root, "td monitor", |_| {});
    let root = cx.root.to_path_buf();
    crate::monitor::run(cx.p, interval, move |p| crate::hub::sync_now(p, &root))
}
