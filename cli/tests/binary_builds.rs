//! Makes `cargo test --workspace` build the `td` binary that the workspace-level tests in
//! `tests/` drive, and checks that it starts.

#[test]
fn td_binary_prints_help() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_td"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Usage: td"), "{text}");
}
