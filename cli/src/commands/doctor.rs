//! `td doctor`: checks this replica's database and change log (nothing is changed).

use anyhow::Result;
use td_engine::views::to_json;

use super::Cx;
use crate::output::emit;

/// Arguments of `td doctor`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Adopt the edits made to issues outside td (sqlite3 on .todos/issues.db) as signed
    /// changes of this session, so they sync like any edit; then check again.
    #[arg(long)]
    pub adopt_edits: bool,
}

/// Runs `td doctor`: exit 1 when a check fails.
pub(crate) fn run(a: &Args, cx: &mut Cx<'_>) -> Result<()> {
    if a.adopt_edits {
        let (adopted, left) = cx.p.adopt_outside_edits()?;
        if !cx.json {
            for id in &adopted {
                println!("ADOPTED {id} (edited outside td)");
            }
            for e in &left {
                eprintln!(
                    "Warning: {} {} ({}) cannot be adopted: revert it with 'td rebuild --discard-outside-edits'",
                    e.table, e.id, e.kind
                );
            }
        }
    }
    let settings = crate::config::hub_settings(cx.root)?;
    let hubs: Vec<String> = match settings.url {
        Some(_) => vec![crate::hub::client_for(&settings)?.display_url().to_string()],
        None => Vec::new(),
    };
    let report = cx.p.doctor(&hubs)?;
    emit(cx.json, &to_json(&report), || {
        let mut s = String::new();
        for c in &report.checks {
            s.push_str(&format!(
                "{} {}: {}\n",
                if c.ok { "✓" } else { "✗" },
                c.name,
                c.detail
            ));
        }
        s.push_str(if report.ok {
            "\nNo problems found."
        } else {
            "\nProblems found: see the ✗ lines above."
        });
        s
    });
    if !report.ok {
        std::process::exit(1);
    }
    Ok(())
}
