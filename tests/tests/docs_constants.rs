//! Where the documentation quotes a constant, it quotes the code's value: each phrase below is
//! rendered from the constant and must appear in the document (whitespace-insensitive). A
//! change to a constant fails here until the document says the same.

use std::path::Path;

use td_engine::doc::{MAX_TEXT_BYTES, TEXT_MERGE_LIMIT};
use td_engine::hub::{
    MAX_ROW_BYTES, MAX_WAITING, PULL_BYTES, PULL_ROWS, READ_AHEAD_ACTORS, READ_AHEAD_ROWS,
};
use td_engine::record::MAX_CHANGE_BYTES;
use td_engine::store::SIGNED_RUN_RECORDS;
use td_engine::sync::wire::{BATCH_BYTES, BATCH_RECORDS, MAX_SUMMARY, WINDOW};
use td_transport::hub::{PUSH_BATCH, PUSH_BYTES};
use td_transport::peer::{AUTH_FRAME_LIMIT, HANDSHAKE_DEADLINE, MAX_UNAUTHENTICATED, STORE_WAIT};

/// `n` with thousands separators, as the documents write numbers.
fn num(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes as the documents write them: whole MiB or KiB.
fn size(n: usize) -> String {
    if n.is_multiple_of(1024 * 1024) {
        format!("{} MiB", n / (1024 * 1024))
    } else {
        format!("{} KiB", n / 1024)
    }
}

fn doc(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn documents_quote_the_constants_the_code_uses() {
    let checks: Vec<(&str, String)> = vec![
        (
            "protocol.md",
            format!("`BATCH_RECORDS` = {} records", num(BATCH_RECORDS)),
        ),
        (
            "protocol.md",
            format!("`BATCH_BYTES` = {}", size(BATCH_BYTES)),
        ),
        ("protocol.md", format!("`WINDOW` = {WINDOW} batches")),
        (
            "protocol.md",
            format!("`record::MAX_CHANGE_BYTES` = {}", size(MAX_CHANGE_BYTES)),
        ),
        (
            "protocol.md",
            format!("`MAX_SUMMARY` = {} writers", num(MAX_SUMMARY)),
        ),
        (
            "protocol.md",
            format!("every {SIGNED_RUN_RECORDS}th record"),
        ),
        ("hub.md", format!("one `batch` request of {PUSH_BATCH}")),
        ("hub.md", format!("about {} of records", size(PUSH_BYTES))),
        (
            "hub.md",
            format!("at most {} rows and {}", num(PULL_ROWS), size(PULL_BYTES)),
        ),
        (
            "hub.md",
            format!(
                "({} of change plus {} KiB)",
                size(MAX_CHANGE_BYTES),
                (MAX_ROW_BYTES - MAX_CHANGE_BYTES) / 1024
            ),
        ),
        ("hub.md", format!("(at most {READ_AHEAD_ACTORS} per page)")),
        (
            "hub.md",
            format!("({READ_AHEAD_ROWS} rows, {} per writer", size(PULL_BYTES)),
        ),
        (
            "hub.md",
            format!("than {SIGNED_RUN_RECORDS} unsigned records"),
        ),
        (
            "hub.md",
            format!("At most {} writers are tracked per hub", num(MAX_WAITING)),
        ),
        (
            "merge-rules.md",
            format!("A text longer than {} is stored", size(TEXT_MERGE_LIMIT)),
        ),
        (
            "merge-rules.md",
            format!("holds at most {}", size(MAX_TEXT_BYTES)),
        ),
        (
            "peer-sync.md",
            format!("({} s, below", STORE_WAIT.as_secs()),
        ),
        (
            "peer-sync.md",
            format!("frames are limited to {}", size(AUTH_FRAME_LIMIT)),
        ),
        (
            "peer-sync.md",
            format!("must arrive within {} s", HANDSHAKE_DEADLINE.as_secs()),
        ),
        (
            "peer-sync.md",
            format!("at most {MAX_UNAUTHENTICATED} such connections"),
        ),
    ];
    let mut missing = Vec::new();
    for (name, phrase) in &checks {
        if !doc(name).contains(phrase.as_str()) {
            missing.push(format!("docs/{name}: \"{phrase}\""));
        }
    }
    assert!(
        missing.is_empty(),
        "documents disagree with the code:\n{}",
        missing.join("\n")
    );
}
