//! Secrets are never printed and never readable by others (issue 17, point 9).

use td_tests::Replica;

#[test]
fn hub_passwords_are_masked_wherever_config_prints_them() {
    let r = Replica::init();
    let url = "http://alice:s3cret-pass@127.0.0.1:9";
    let outs = [
        r.ok(&["config", "set", "database.url", url]),
        r.ok(&["config", "get", "database.url"]),
        r.ok(&["config", "list"]),
        r.json(&["config", "list"]).to_string(),
        r.json(&["config", "get", "database.url"]).to_string(),
    ];
    for out in outs {
        assert!(!out.contains("s3cret-pass"), "password printed: {out}");
        assert!(out.contains("alice:***@127.0.0.1:9"), "{out}");
    }
    // The file itself holds it (td needs it), private to the user.
    let cfg = r.root.join(".todos/config.json");
    assert!(std::fs::read_to_string(&cfg)
        .unwrap()
        .contains("s3cret-pass"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&cfg).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "config.json mode {mode:o}");
    }
}

#[cfg(unix)]
#[test]
fn a_machine_key_others_can_read_is_refused_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let r = Replica::init();
    let key = r.config.join("td/machine.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = r.run(&["list", "--json"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains("chmod 600") && out.stdout.contains("other users"),
        "{}",
        out.stdout
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    r.json(&["list"]);
}
