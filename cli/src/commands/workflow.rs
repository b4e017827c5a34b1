//! `td workflow`: the issue status state machine, as a listing, Mermaid or GraphViz DOT.

use anyhow::Result;
use clap::Args as ClapArgs;
use serde_json::json;
use td_engine::model::Status;

use crate::output::emit;

/// Arguments of `td workflow`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// A Mermaid state diagram.
    #[arg(long, conflicts_with = "dot")]
    pub mermaid: bool,
    /// A GraphViz DOT graph.
    #[arg(long)]
    pub dot: bool,
}

const GUARDS: [(&str, &str); 2] = [
    ("BlockedGuard", "Requires --force to start blocked issues"),
    (
        "ReviewPolicy",
        "Who may approve and close follows review_policy_mode (td feature get review_policy_mode)",
    ),
];

fn mermaid() -> String {
    let mut s = String::from("```mermaid\nstateDiagram-v2\n");
    for (a, b) in Status::transitions() {
        s.push_str(&format!(
            "    {} --> {}: {}\n",
            a.as_str(),
            b.as_str(),
            a.transition_name(b)
        ));
    }
    s + "```\n"
}

fn dot() -> String {
    let mut s = String::from("digraph workflow {\n    rankdir=LR;\n    node [shape=box];\n\n");
    for (status, color) in Status::ALL.into_iter().zip([
        "lightblue",
        "lightyellow",
        "lightpink",
        "lightorange",
        "lightgreen",
    ]) {
        s.push_str(&format!(
            "    {} [style=filled,fillcolor={color}];\n",
            status.as_str()
        ));
    }
    s.push('\n');
    for (a, b) in Status::transitions() {
        s.push_str(&format!(
            "    {} -> {} [label=\"{}\"];\n",
            a.as_str(),
            b.as_str(),
            a.transition_name(b)
        ));
    }
    s + "}\n"
}

/// Runs `td workflow` (no project needed).
pub(crate) fn run(a: &Args, json: bool) -> Result<()> {
    let diagram = match (a.mermaid, a.dot) {
        (true, _) => Some(("mermaid", mermaid())),
        (_, true) => Some(("dot", dot())),
        _ => None,
    };
    if let Some((format, text)) = diagram {
        if json {
            emit(
                true,
                &json!({"format": format, "diagram": text}),
                String::new,
            );
        } else {
            print!("{text}");
        }
        return Ok(());
    }
    let transitions: Vec<serde_json::Value> = Status::transitions()
        .into_iter()
        .map(|(a, b)| {
            let guards: Vec<&str> = match (a, b) {
                (Status::Blocked, Status::InProgress) => vec!["BlockedGuard"],
                (Status::InReview, Status::Closed) => vec!["ReviewPolicy"],
                _ => vec![],
            };
            json!({"from": a.as_str(), "to": b.as_str(), "name": a.transition_name(b), "guards": guards})
        })
        .collect();
    let v = json!({
        "statuses": Status::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "transitions": transitions,
        "guards": GUARDS.iter().map(|(n, d)| json!({"name": n, "description": d})).collect::<Vec<_>>(),
    });
    emit(json, &v, || {
        let mut s = String::from("ISSUE STATUS WORKFLOW\n=====================\n\nSTATUSES:\n");
        for st in Status::ALL {
            s.push_str(&format!("  • {}\n", st.as_str()));
        }
        s.push_str("\nTRANSITIONS:\n");
        for from in Status::ALL {
            s.push_str(&format!("  {} →\n", from.as_str()));
            for (_, to) in Status::transitions()
                .into_iter()
                .filter(|(a, _)| *a == from)
            {
                s.push_str(&format!(
                    "    {} ({})\n",
                    to.as_str(),
                    from.transition_name(to)
                ));
            }
        }
        s.push_str("\nGUARDS:\n");
        for (n, d) in GUARDS {
            s.push_str(&format!("  • {n:<14} - {d}\n"));
        }
        s.trim_end().to_string()
    });
    Ok(())
}
