//! Every input kept for the cargo-fuzz targets (`fuzz/seeds/<target>/`, the starting corpus, and
//! `fuzz/regressions/<target>/`, each crash a fuzzer found) replayed through the same check the
//! target runs (`td_tests::fuzz_checks`), so what was found once stays fixed. docs/fuzzing.md
//! says how to run the fuzzers and keep a crash.

use std::path::Path;

use td_tests::fuzz_checks::TARGETS;

fn inputs(kind: &str, target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(kind)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Vec<u8>)> = entries
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read(&p).expect("read input"),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_kept_fuzz_input_passes_its_check() {
    let mut total = 0;
    for (target, check) in TARGETS {
        let seeds = inputs("seeds", target);
        assert!(!seeds.is_empty(), "{target} has a starting corpus");
        for (name, data) in seeds.iter().chain(inputs("regressions", target).iter()) {
            eprintln!("replaying {name}");
            check(data);
            total += 1;
        }
    }
    eprintln!("{total} kept fuzz inputs replayed");
}

/// Writes the starting corpus (`fuzz/seeds/`): honest messages, a real invite code, queries in
/// td's grammar, and short inputs for the structured targets. Run by hand after a format change:
/// `cargo test -p td-tests --test fuzz_regressions -- --ignored write_seeds`.
#[test]
#[ignore = "writes fuzz/seeds; run by hand"]
fn write_seeds() {
    use td_engine::authority::Role;
    use td_engine::sync::wire::{self, Message, WireRun};
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds");
    let put = |target: &str, name: &str, data: &[u8]| {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), data).unwrap();
    };
    let batch = Message::Batch {
        runs: vec![WireRun {
            format: 1,
            actor: [7; 16],
            author: [9; 32],
            session: "ses_0123456789_abcd".into(),
            first_seq: 1,
            changes: vec![("issue:td-1".into(), vec![0x85, 0x6f, 0x4a, 0x83, 1, 2, 3])],
            signature: vec![5; 64],
        }],
    };
    let messages = [
        (
            "hello",
            Message::Hello {
                min_version: 1,
                max_version: 2,
                project: "prj_0123456789abcdef".into(),
                fresh: false,
                summary: vec![([1; 16], 4), ([2; 16], 9)],
            },
        ),
        ("batch", batch.clone()),
        ("packed", wire::pack(&batch)),
        (
            "ack",
            Message::Ack {
                applied: 3,
                rejected: vec!["bad signature".into()],
            },
        ),
        ("done", Message::Done { sent: 12 }),
        (
            "error",
            Message::Error {
                code: "bad_frame".into(),
                message: "malformed".into(),
            },
        ),
    ];
    for (name, m) in &messages {
        // A chunk size byte, then the framed message.
        let mut data = vec![255u8];
        data.extend(wire::encode(m));
        put("wire_frames", name, &data);
    }
    let mut nodes = td_tests::mesh::project(1);
    let made = nodes[0]
        .project
        .member_invite(Role::Member, "new-laptop", 3600, Some("libsql://hub"), None)
        .unwrap();
    let mut data = 0i64.to_le_bytes().to_vec();
    data.extend(made.code.as_bytes());
    put("invite_code", "member", &data);
    for (i, q) in [
        "status = open AND priority <= P1",
        "title ~ task OR labels ~ l1",
        "NOT (type = epic) sort:-priority",
        "descendant_of(td-1) AND has(comments)",
        "created >= -7d AND assignee = @me",
        "blocks(td-2) OR blocked_by(td-3)",
    ]
    .iter()
    .enumerate()
    {
        put("tdq_query", &format!("q{i}"), q.as_bytes());
    }
    for target in ["roster_ops", "hub_rows", "sync_session"] {
        put(target, "empty", b"");
        put(target, "counting", &(0u8..=255).collect::<Vec<u8>>());
        put(target, "repeated", &[3u8; 200]);
    }
}
