//! Machine identity files: the ed25519 key pair in the user's config dir that signs this
//! machine's changes and authenticates it to peers.

use std::path::{Path, PathBuf};

use td_engine::MachineIdentity;

use crate::error::TransportError;

type Result<T> = std::result::Result<T, TransportError>;

/// Name of the private key file in the config dir.
const KEY_FILE: &str = "machine.key";
/// Name of the public key file; its presence without the key means the key was lost.
const PUB_FILE: &str = "machine.pub";

fn err(msg: String) -> TransportError {
    TransportError::Identity(msg)
}

/// The user's td config dir: `$XDG_CONFIG_HOME/td` or `~/.config/td`.
pub fn config_dir() -> Result<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(x).join("td"));
    }
    let home = std::env::var_os("HOME")
        .ok_or_else(|| err("neither XDG_CONFIG_HOME nor HOME is set".into()))?;
    Ok(PathBuf::from(home).join(".config").join("td"))
}

/// Loads this machine's key, creating it (mode 0600) on first use. A key file that exists but
/// cannot be read or parsed is an error, never silently replaced: changes signed by the old
/// key would no longer be attributable to this machine.
pub fn machine_identity() -> Result<MachineIdentity> {
    let dir = config_dir()?;
    let key_path = dir.join(KEY_FILE);
    let pub_path = dir.join(PUB_FILE);
    match std::fs::read_to_string(&key_path) {
        Ok(text) => {
            refuse_shared_key(&key_path)?;
            let bytes = hex::decode(text.trim())
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| {
                    err(format!(
                        "machine key file {} is malformed (expected 64 hex digits)",
                        key_path.display()
                    ))
                })?;
            Ok(MachineIdentity::from_seed(bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if pub_path.exists() {
                return Err(err(format!(
                    "machine key {} is missing but {} exists: restore the key from a backup, \
                     or delete {} to start this machine with a new identity",
                    key_path.display(),
                    pub_path.display(),
                    pub_path.display()
                )));
            }
            create_identity(&dir, &key_path, &pub_path)
        }
        Err(e) => Err(err(format!(
            "cannot read machine key {}: {e}",
            key_path.display()
        ))),
    }
}

/// A key file others can read is refused, as ssh refuses a private key with group or other
/// permissions: whoever reads it can sign as this machine.
#[cfg(unix)]
fn refuse_shared_key(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| err(format!("cannot read machine key {}: {e}", path.display())))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(err(format!(
            "machine key {} is accessible by other users (mode {:o}): anyone who reads it can sign as this machine; run 'chmod 600 {}'",
            path.display(),
            mode & 0o777,
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn refuse_shared_key(_path: &Path) -> Result<()> {
    Ok(())
}

fn create_identity(dir: &Path, key_path: &Path, pub_path: &Path) -> Result<MachineIdentity> {
    std::fs::create_dir_all(dir)
        .map_err(|e| err(format!("create config dir {}: {e}", dir.display())))?;
    let id = MachineIdentity::generate();
    let tmp = key_path.with_extension(format!("tmp{}", std::process::id()));
    write_private(&tmp, &hex::encode(id.seed()))?;
    // Publish atomically; if another process won the race, use its key.
    if std::fs::hard_link(&tmp, key_path).is_err() {
        let _ = std::fs::remove_file(&tmp);
        return machine_identity();
    }
    let _ = std::fs::remove_file(&tmp);
    std::fs::write(pub_path, format!("{}\n", id.public_key_hex()))
        .map_err(|e| err(format!("write {}: {e}", pub_path.display())))?;
    Ok(id)
}

/// Writes `text` to a new file created with mode 0600 (never readable by others, not even for
/// a moment), and syncs it.
#[cfg(unix)]
pub fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| err(format!("create {}: {e}", path.display())))?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| err(format!("write {}: {e}", path.display())))
}

/// Writes `text` to a new file (no permission bits to set here).
#[cfg(not(unix))]
pub fn write_private(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| err(format!("create {}: {e}", path.display())))
}
