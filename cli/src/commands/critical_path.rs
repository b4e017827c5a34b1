//! `td critical-path`: the order of work that unblocks the most, soonest.

use anyhow::Result;
use clap::Args as ClapArgs;
use td_engine::views::to_json;

use super::Cx;
use crate::output::emit;

/// Arguments of `td critical-path`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// How many issues of the sequence to show.
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
}

/// Runs `td critical-path`.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    let cp = cx.p.critical_path()?;
    let unblocks = |id: &str| {
        cp.bottleneck_ranking
            .iter()
            .find(|b| b.id == id)
            .map_or(0, |b| b.score)
    };
    let title = |id: &str| {
        cx.p.issue(id)
            .map(|i| (i.title, i.status))
            .unwrap_or_default()
    };
    let mut s = String::new();
    if cp.bottleneck_ranking.is_empty() && cp.critical_path.is_empty() {
        s.push_str("No blocking dependencies found");
    }
    if !cp.critical_path.is_empty() {
        s.push_str("CRITICAL PATH SEQUENCE (resolve in order):\n\n");
        for (n, id) in cp.critical_path.iter().take(a.limit).enumerate() {
            let (t, status) = title(id);
            s.push_str(&format!("  {}. {id}  {t}  [{status}]\n", n + 1));
            if unblocks(id) > 0 {
                s.push_str(&format!("     └─▶ unblocks {}\n", unblocks(id)));
            }
        }
        s.push('\n');
    }
    if !cp.ready_to_start.is_empty() {
        s.push_str("START NOW (no blockers, unblocks others):\n");
        for id in cp.ready_to_start.iter().take(3) {
            s.push_str(&format!(
                "  ▶ {id}  {}  (unblocks {})\n",
                title(id).0,
                unblocks(id)
            ));
        }
        s.push('\n');
    }
    if !cp.bottleneck_ranking.is_empty() {
        s.push_str("BOTTLENECKS (blocking most issues):\n");
        for b in cp.bottleneck_ranking.iter().take(3) {
            s.push_str(&format!("  {}: {} issues waiting\n", b.id, b.score));
        }
    }
    emit(cx.json, &to_json(&cp), || s.trim_end().to_string());
    Ok(())
}
