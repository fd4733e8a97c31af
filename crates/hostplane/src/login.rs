//! The saved CLI login (`cli.toml`: server URL, token, CA file) and how a command
//! finds its controller: flags and environment first, then the saved login.

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::GlobalOpts;

/// Contents of the CLI login file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedLogin {
    /// Controller base URL.
    pub server: String,
    /// API token.
    pub token: String,
    /// CA certificate file to trust, absolute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// The token was made by `login --account`: `logout` revokes it.
    #[serde(default)]
    pub revoke_on_logout: bool,
    /// Data dir of the `hostplane up` that saved this login (for `server stop/start`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up_data_dir: Option<PathBuf>,
}

/// Path of the login file: `$HOSTPLANE_CONFIG`, else `<config dir>/hostplane/cli.toml`.
pub fn config_path() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("HOSTPLANE_CONFIG").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let dir = dirs::config_dir()
        .context("cannot find a config directory for the CLI login; set HOSTPLANE_CONFIG")?;
    Ok(dir.join("hostplane").join("cli.toml"))
}

/// Read the saved login, if any.
pub fn load() -> anyhow::Result<Option<SavedLogin>> {
    let path = config_path()?;
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read the CLI login {}", path.display()))
        }
    };
    let saved = toml::from_str(&text).with_context(|| {
        format!(
            "the CLI login {} is damaged: run `hostplane login` again (or delete the file)",
            path.display()
        )
    })?;
    Ok(Some(saved))
}

/// Save the login (0600, atomically). Returns the file written.
pub fn save(login: &SavedLogin) -> anyhow::Result<PathBuf> {
    let path = config_path()?;
    let text = toml::to_string(login)?;
    write_private(&path, text.as_bytes())?;
    Ok(path)
}

/// Delete the saved login. Returns false if there was none.
pub fn remove() -> anyhow::Result<bool> {
    let path = config_path()?;
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot delete {}", path.display())),
    }
}

/// Write a file readable only by its owner, atomically: temp file, fsync, rename,
/// fsync of the directory. Creates missing parent directories (0700).
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    create_private_dir(&dir)?;
    let name = path
        .file_name()
        .context("a file name is required")?
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| -> anyhow::Result<()> {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
        if let Ok(d) = std::fs::File::open(&dir) {
            d.sync_all().ok();
        }
        Ok(())
    })();
    if result.is_err() {
        std::fs::remove_file(&tmp).ok();
    }
    result
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

/// Where a command connects and with which credentials.
#[derive(Debug, Clone)]
pub struct Target {
    /// Base URL.
    pub server: String,
    /// Bearer token, if any.
    pub token: Option<String>,
    /// CA file, if any.
    pub ca: Option<PathBuf>,
}

fn same_server(a: &str, b: &str) -> bool {
    a.trim().trim_end_matches('/') == b.trim().trim_end_matches('/')
}

/// Resolve the controller and credentials: `--server`/`HOSTPLANE_URL`,
/// `HOSTPLANE_TOKEN`, `--ca`/`HOSTPLANE_CA`, then the saved login (its token and CA
/// only when it is for the same server).
pub fn resolve(global: &GlobalOpts) -> anyhow::Result<Target> {
    let saved = load()?;
    let server = match (&global.server, &saved) {
        (Some(s), _) if !s.trim().is_empty() => s.trim().to_owned(),
        (_, Some(saved)) => saved.server.clone(),
        _ => bail!(
            "no controller to talk to: run `hostplane login --server URL --ca FILE --token TOKEN` \
             (or start one with `hostplane up`), or set HOSTPLANE_URL"
        ),
    };
    let same = saved.as_ref().filter(|s| same_server(&s.server, &server));
    let env_token = std::env::var("HOSTPLANE_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty());
    let token = env_token
        .map(|t| t.trim().to_owned())
        .or_else(|| same.map(|s| s.token.clone()));
    let ca = global
        .ca
        .clone()
        .or_else(|| same.and_then(|s| s.ca.clone()));
    Ok(Target { server, token, ca })
}

impl Target {
    /// A client for this target; `need_token` fails early with advice when none is set.
    pub fn client(&self, need_token: bool) -> anyhow::Result<client::Client> {
        if need_token && self.token.is_none() {
            bail!(
                "not logged in to {}: run `hostplane login --token TOKEN` (or `--account NAME`), or set HOSTPLANE_TOKEN",
                self.server
            );
        }
        let ca = match &self.ca {
            Some(path) => Some(std::fs::read(path).with_context(|| {
                format!(
                    "cannot read the CA file {} (given by --ca, HOSTPLANE_CA or the saved login)",
                    path.display()
                )
            })?),
            None => None,
        };
        Ok(client::Client::new(
            &self.server,
            self.token.clone(),
            ca.as_deref(),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_files_are_written_atomically_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("cli.toml");
        write_private(&path, b"one").unwrap();
        write_private(&path, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temp files left behind");
    }

    #[test]
    fn saved_login_round_trips_through_toml() {
        let login = SavedLogin {
            server: "https://127.0.0.1:8443".into(),
            token: "hp_secret".into(),
            ca: Some("/tmp/ca.pem".into()),
            revoke_on_logout: true,
            up_data_dir: None,
        };
        let text = toml::to_string(&login).unwrap();
        assert_eq!(toml::from_str::<SavedLogin>(&text).unwrap(), login);
    }

    #[test]
    fn servers_compare_without_trailing_slash() {
        assert!(same_server("https://a:1/", "https://a:1"));
        assert!(!same_server("https://a:1", "https://b:1"));
    }
}
