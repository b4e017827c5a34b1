//! Harness for the workspace-level tests: replicas as temporary project directories with their
//! own config dir (so their own machine key), driven through the real `td` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tempfile::TempDir;

/// Path of the `td` binary under test: `$TD_BIN`, else `target/<profile>/td` next to the test
/// executable (built by `cargo test --workspace`).
pub fn td_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("TD_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile dir");
    let bin = dir.join(format!("td{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "td binary not found at {}: run `cargo test --workspace` (or build it first)",
        bin.display()
    );
    bin
}

/// One replica: a project directory and a config dir holding its machine key.
pub struct Replica {
    _tmp: TempDir,
    /// Project root.
    pub root: PathBuf,
    /// `XDG_CONFIG_HOME` for this replica.
    pub config: PathBuf,
}

/// Result of one `td` run.
#[derive(Debug)]
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Stdout parsed as exactly one JSON value (panics otherwise).
    pub fn json(&self) -> Value {
        let lines: Vec<&str> = self
            .stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "expected exactly one JSON line, got: {}",
            self.stdout
        );
        serde_json::from_str(lines[0])
            .unwrap_or_else(|e| panic!("invalid JSON ({e}): {}", self.stdout))
    }

    /// The error code of a failed `--json` run (asserting exit 1 and a single envelope).
    pub fn error_code(&self) -> String {
        assert_eq!(self.code, 1, "expected failure, got {self:?}");
        let v = self.json();
        v["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code in {v}"))
            .to_string()
    }
}

impl Replica {
    /// A fresh, uninitialised replica directory with its own machine identity.
    pub fn new() -> Replica {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("project");
        let config = tmp.path().join("config");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&config).unwrap();
        Replica {
            _tmp: tmp,
            root,
            config,
        }
    }

    /// A replica with `td init` already run.
    pub fn init() -> Replica {
        let r = Replica::new();
        r.ok(&["init"]);
        r
    }

    /// The project's database path.
    pub fn db(&self) -> PathBuf {
        self.root.join(".todos").join("issues.db")
    }

    /// A `td` command for this replica (not yet run).
    pub fn command(&self, session: Option<&str>, args: &[&str]) -> Command {
        let mut c = Command::new(td_bin());
        c.args(["-w", self.root.to_str().unwrap()]).args(args);
        c.env("XDG_CONFIG_HOME", &self.config)
            .env_remove("TD_WORK_DIR")
            .env_remove("TD_CONTEXT_ID");
        match session {
            Some(s) => c.env("TD_SESSION_ID", s),
            None => c.env_remove("TD_SESSION_ID"),
        };
        c
    }

    /// Runs `td args` as the default session.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command(None, args).output().expect("spawn td"))
    }

    /// Runs `td args` as the named session (`TD_SESSION_ID`).
    pub fn run_as(&self, session: &str, args: &[&str]) -> Run {
        Run::from(
            self.command(Some(session), args)
                .output()
                .expect("spawn td"),
        )
    }

    /// Runs and asserts success, returning stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(r.code, 0, "td {args:?} failed: {r:?}");
        r.stdout
    }

    /// Runs with `--json`, asserts success, returns the value.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        let r = self.run(&a);
        assert_eq!(r.code, 0, "td {a:?} failed: {r:?}");
        r.json()
    }

    /// Same as [`Replica::json`] as the named session.
    pub fn json_as(&self, session: &str, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        let r = self.run_as(session, &a);
        assert_eq!(r.code, 0, "td {a:?} as {session} failed: {r:?}");
        r.json()
    }

    /// Creates an issue and returns its id.
    pub fn create(&self, title: &str, extra: &[&str]) -> String {
        let mut a = vec!["create", title];
        a.extend_from_slice(extra);
        self.json(&a)["id"].as_str().unwrap().to_string()
    }

    /// `td export --format json`.
    pub fn export(&self) -> String {
        self.ok(&["export", "--format", "json"])
    }
}

impl Default for Replica {
    fn default() -> Self {
        Replica::new()
    }
}

/// A canonical dump of a SQLite database: for each table (by name) its DDL and its rows sorted,
/// for each index its DDL. Equal dumps mean equal tables whatever the physical order.
pub fn canonical_dump(db: &Path, skip_prefix: Option<&str>) -> String {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut objs: Vec<(String, String, String)> = conn
        .prepare("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    objs.retain(|(_, name, _)| skip_prefix.is_none_or(|p| !name.starts_with(p)));
    let mut out = String::new();
    for (ty, name, sql) in objs {
        out.push_str(&format!("{ty} {name}: {sql}\n"));
        if ty != "table" {
            continue;
        }
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{name}\"")).unwrap();
        let n = stmt.column_count();
        let mut rows: Vec<String> = stmt
            .query_map([], |r| {
                let vals: Vec<String> = (0..n)
                    .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                    .collect();
                Ok(vals.join("|"))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        rows.sort();
        for r in rows {
            out.push_str(&format!("  {r}\n"));
        }
    }
    out
}
