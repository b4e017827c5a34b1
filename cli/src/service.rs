//! `td sync service`: this project's sync loop (`td sync watch`) as a user service that starts
//! at login and restarts when it stops: a systemd user unit on Linux, a launchd agent on macOS.
//! The unit only runs `td sync watch` in the project's directory; the loop itself (one per
//! project and machine, decided by its lock) is `td_transport::sync_loop`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, Result};
use serde_json::json;

/// Which service manager a unit is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Manager {
    Systemd,
    Launchd,
}

impl Manager {
    fn here() -> Manager {
        if cfg!(target_os = "macos") {
            Manager::Launchd
        } else {
            Manager::Systemd
        }
    }
}

/// A unit for one project's loop: its name, where it is written, and its text.
pub(crate) struct Unit {
    manager: Manager,
    /// `td-sync-<directory>-<8 hex of the project's path>`: one per checkout.
    pub name: String,
    /// Where the file goes.
    pub path: PathBuf,
    /// The file's text.
    pub text: String,
}

/// The unit for the project at `root`, running the `td` binary `exe`.
pub(crate) fn unit(root: &Path, exe: &Path) -> Result<Unit> {
    use sha2::Digest;
    let root = root.canonicalize()?;
    let digest = hex::encode(&sha2::Sha256::digest(root.to_string_lossy().as_bytes())[..4]);
    let dir: String = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    let name = format!("td-sync-{dir}-{digest}");
    // The loop finds this machine's key where this td does.
    let config_home = std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from);
    let manager = Manager::here();
    let (path, text) = match manager {
        Manager::Systemd => {
            let base = match &config_home {
                Some(c) => c.clone(),
                None => home()?.join(".config"),
            };
            let env = config_home
                .as_ref()
                .map(|c| {
                    format!(
                        "Environment={}\n",
                        quote(&format!("XDG_CONFIG_HOME={}", c.display()))
                    )
                })
                .unwrap_or_default();
            let text = format!(
                "# Written by `td sync service install`; remove with `td sync service uninstall`.\n\
                 [Unit]\n\
                 Description=td sync loop for {root}\n\
                 After=network-online.target\n\
                 Wants=network-online.target\n\
                 \n\
                 [Service]\n\
                 Type=simple\n\
                 WorkingDirectory={wd}\n\
                 ExecStart={exe} sync watch\n\
                 {env}\
                 Restart=always\n\
                 RestartSec=5\n\
                 \n\
                 [Install]\n\
                 WantedBy=default.target\n",
                root = escape_specifiers(&root.display().to_string()),
                wd = escape_specifiers(&root.display().to_string()),
                exe = quote(&exe.display().to_string()),
            );
            (
                base.join("systemd/user").join(format!("{name}.service")),
                text,
            )
        }
        Manager::Launchd => {
            let label = format!("dev.td.{name}");
            let env = config_home
                .as_ref()
                .map(|c| {
                    format!(
                        "  <key>EnvironmentVariables</key>\n  <dict><key>XDG_CONFIG_HOME</key><string>{}</string></dict>\n",
                        xml(&c.display().to_string())
                    )
                })
                .unwrap_or_default();
            let text = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
                 <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
                 <!-- Written by `td sync service install`; remove with `td sync service uninstall`. -->\n\
                 <plist version=\"1.0\">\n<dict>\n\
                 \x20 <key>Label</key><string>{label}</string>\n\
                 \x20 <key>ProgramArguments</key>\n\
                 \x20 <array><string>{exe}</string><string>sync</string><string>watch</string></array>\n\
                 \x20 <key>WorkingDirectory</key><string>{wd}</string>\n\
                 {env}\
                 \x20 <key>RunAtLoad</key><true/>\n\
                 \x20 <key>KeepAlive</key><true/>\n\
                 </dict>\n</plist>\n",
                exe = xml(&exe.display().to_string()),
                wd = xml(&root.display().to_string()),
            );
            (
                home()?
                    .join("Library/LaunchAgents")
                    .join(format!("{label}.plist")),
                text,
            )
        }
    };
    Ok(Unit {
        manager,
        name,
        path,
        text,
    })
}

fn home() -> Result<PathBuf> {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .ok_or_else(|| anyhow!("HOME is not set: cannot tell where user services live"))
}

/// systemd expands `%` specifiers in most settings.
fn escape_specifiers(s: &str) -> String {
    s.replace('%', "%%")
}

/// A systemd word in double quotes (a path with spaces stays one word).
fn quote(s: &str) -> String {
    format!(
        "\"{}\"",
        escape_specifiers(s)
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
    )
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Runs a service manager command; `Err` with what it said when it failed or is missing.
fn manage(program: &str, args: &[&str]) -> std::result::Result<(), String> {
    match Command::new(program).args(args).output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("{program}: {e}")),
    }
}

/// The commands that start (or stop) a written unit.
fn start_commands(u: &Unit, start: bool) -> Vec<(String, Vec<String>)> {
    let path = u.path.display().to_string();
    match (u.manager, start) {
        (Manager::Systemd, true) => vec![
            (
                "systemctl".into(),
                vec!["--user".into(), "daemon-reload".into()],
            ),
            (
                "systemctl".into(),
                vec![
                    "--user".into(),
                    "enable".into(),
                    "--now".into(),
                    format!("{}.service", u.name),
                ],
            ),
        ],
        (Manager::Systemd, false) => vec![(
            "systemctl".into(),
            vec![
                "--user".into(),
                "disable".into(),
                "--now".into(),
                format!("{}.service", u.name),
            ],
        )],
        (Manager::Launchd, true) => {
            vec![("launchctl".into(), vec!["load".into(), "-w".into(), path])]
        }
        (Manager::Launchd, false) => {
            vec![("launchctl".into(), vec!["unload".into(), "-w".into(), path])]
        }
    }
}

fn shown(cmds: &[(String, Vec<String>)]) -> String {
    cmds.iter()
        .map(|(p, a)| format!("{p} {}", a.join(" ")))
        .collect::<Vec<_>>()
        .join(" && ")
}

fn run_all(cmds: &[(String, Vec<String>)]) -> std::result::Result<(), String> {
    for (p, a) in cmds {
        let args: Vec<&str> = a.iter().map(String::as_str).collect();
        manage(p, &args)?;
    }
    Ok(())
}

/// `td sync service install`: writes the unit and, unless `no_start`, enables and starts it.
/// A machine without a user service manager (a container, a CI runner) keeps the written unit
/// and is told the command that starts it. Returns the JSON answer and its human line.
pub(crate) fn install(
    root: &Path,
    print: bool,
    no_start: bool,
) -> Result<(serde_json::Value, String)> {
    let exe = std::env::current_exe()?;
    let u = unit(root, &exe)?;
    if print {
        let v = json!({"action": "would_install", "name": u.name, "unit": u.path.display().to_string(), "text": u.text});
        return Ok((v, format!("# {}\n{}", u.path.display(), u.text.trim_end())));
    }
    if let Some(dir) = u.path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = u.path.with_extension("tmp");
    std::fs::write(&tmp, &u.text)?;
    std::fs::rename(&tmp, &u.path)?;
    let cmds = start_commands(&u, true);
    let started = if no_start {
        Err("--no-start".to_string())
    } else {
        run_all(&cmds)
    };
    let line = match &started {
        Ok(()) => format!(
            "INSTALLED {} ({}): the sync loop runs now and at every login",
            u.name,
            u.path.display()
        ),
        Err(why) => format!(
            "INSTALLED {} ({}), not started ({why}): start it with `{}`",
            u.name,
            u.path.display(),
            shown(&cmds)
        ),
    };
    let v = json!({"action": "installed", "name": u.name, "unit": u.path.display().to_string(),
        "started": started.is_ok(), "not_started_because": started.err(), "start_command": shown(&cmds)});
    Ok((v, line))
}

/// `td sync service uninstall`: stops and disables the unit (when a manager runs it) and removes
/// its file.
pub(crate) fn uninstall(root: &Path) -> Result<(serde_json::Value, String)> {
    let exe = std::env::current_exe()?;
    let u = unit(root, &exe)?;
    if !u.path.exists() {
        return Err(crate::output::invalid(format!(
            "no sync service is installed for this project ({} does not exist)",
            u.path.display()
        )));
    }
    // Stopping fails where no manager runs; the file goes either way.
    let stopped = run_all(&start_commands(&u, false)).is_ok();
    std::fs::remove_file(&u.path)?;
    let v = json!({"action": "uninstalled", "name": u.name, "unit": u.path.display().to_string(), "stopped": stopped});
    Ok((v, format!("UNINSTALLED {} ({})", u.name, u.path.display())))
}
