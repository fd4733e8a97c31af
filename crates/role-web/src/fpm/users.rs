//! Site users and the directories php-fpm pools need: the pool's system user
//! (created host-wide once, see [`ensure_user`]), its private temp dir, and the
//! ownership that keeps one site's PHP out of another's files.

use std::path::Path;
use std::time::Duration;

use super::{io_err, FpmError};
use crate::plan::PhpSite;

/// A system user's ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ids {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
}

fn set_mode(p: &Path, mode: u32) -> Result<(), FpmError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .map_err(io_err(format!("chmod {}", p.display())))
}

fn chown(p: &Path, ids: Ids) -> Result<(), FpmError> {
    std::os::unix::fs::chown(p, Some(ids.uid), Some(ids.gid))
        .map_err(io_err(format!("chown {}", p.display())))
}

pub(super) fn prepare_dir(dir: &Path, as_root: bool) -> Result<(), FpmError> {
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).map_err(io_err(format!("creating {}", tmp.display())))?;
    if as_root {
        // Pool users must reach their socket and temp dir, not list others.
        set_mode(dir, 0o711)?;
        set_mode(&tmp, 0o711)?;
    }
    Ok(())
}

/// Create the pool's temp dir and, as root, give it to the site user `ids`, and
/// the site directory `root:<site group> 0750` once it exists. Returns whether
/// the site directory is done (always, when not root: there is nothing to give).
pub(super) fn prepare_pool(p: &PhpSite, ids: Option<Ids>) -> Result<bool, FpmError> {
    std::fs::create_dir_all(&p.tmp_dir)
        .map_err(io_err(format!("creating {}", p.tmp_dir.display())))?;
    set_mode(&p.tmp_dir, 0o700)?;
    let Some(ids) = ids else {
        return Ok(true);
    };
    chown(&p.tmp_dir, ids)?;
    ensure_traversable(&p.tmp_dir)?;
    ensure_traversable(&p.site_dir)?;
    if !p.site_dir.is_dir() {
        tracing::debug!(dir = %p.site_dir.display(), "site content not synced yet");
        return Ok(false);
    }
    chown(
        &p.site_dir,
        Ids {
            uid: 0,
            gid: ids.gid,
        },
    )?;
    set_mode(&p.site_dir, 0o750)?;
    Ok(true)
}

/// Give "others" search (x) permission on every ancestor of `path` that lacks it,
/// so pool users can reach their site and temp dirs below a private (0700) state
/// directory. Only the x bit is added: nothing becomes listable, and files keep
/// their own modes (the agent's secrets are 0600).
fn ensure_traversable(path: &Path) -> Result<(), FpmError> {
    use std::os::unix::fs::PermissionsExt;
    for dir in path.ancestors().skip(1) {
        if dir.as_os_str().is_empty() {
            continue;
        }
        let meta = std::fs::metadata(dir).map_err(io_err(format!("stat {}", dir.display())))?;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o001 == 0 {
            set_mode(dir, mode | 0o001)?;
        }
    }
    Ok(())
}

/// The ids of system user `name`: its uid from `/etc/passwd` and the gid of the
/// group of the same name from `/etc/group` (the `group = name` php-fpm runs the
/// pool with). `None` unless both exist.
pub fn lookup_user(name: &str) -> Option<Ids> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    let group = std::fs::read_to_string("/etc/group").ok()?;
    Some(Ids {
        uid: id_field(&passwd, name)?,
        gid: id_field(&group, name)?,
    })
}

/// The third field (uid or gid) of the entry `name` in a passwd/group file (pure).
fn id_field(text: &str, name: &str) -> Option<u32> {
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        if f.next()? != name {
            return None;
        }
        f.nth(1)?.parse().ok()
    })
}

/// Directories tried, in order, for the host-wide lock file of [`ensure_user`].
const LOCK_DIRS: [&str; 3] = ["/run/lock", "/run", "/tmp"];
/// Name of that lock file.
const LOCK_FILE: &str = "hostplane-site-users.lock";

/// Take the host-wide lock that serialises site-user creation among every engine of
/// this machine (released when the file is dropped).
fn users_lock() -> Result<std::fs::File, FpmError> {
    let dir = LOCK_DIRS
        .iter()
        .map(Path::new)
        .find(|d| d.is_dir())
        .unwrap_or(Path::new("/tmp"));
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err(format!("opening {}", path.display())))?;
    file.lock()
        .map_err(io_err(format!("locking {}", path.display())))?;
    Ok(file)
}

/// Create system user `name` (with its own group, no home, no shell) if missing,
/// and return the ids the system keeps for it.
///
/// Safe when several engines of one host (the web servers of `hostplane up`) create
/// the same user at once: `useradd` checks that the name is free *before* it locks
/// the account files, so two concurrent runs both succeed and the second replaces
/// the first's uid and gid. Creation therefore happens under a host-wide lock, the
/// name is looked up again under it, and the ids returned are always looked up by
/// name afterwards (never taken from what one `useradd` run made).
pub fn ensure_user(name: &str) -> Result<Ids, FpmError> {
    if let Some(ids) = lookup_user(name) {
        return Ok(ids);
    }
    let _lock = users_lock()?;
    if let Some(ids) = lookup_user(name) {
        return Ok(ids);
    }
    let out = std::process::Command::new("useradd")
        .args(["--system", "--user-group", "--no-create-home"])
        .args(["--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin"])
        .arg(name)
        .output()
        .map_err(io_err("running useradd"))?;
    // Exit 9: the name is taken (created meanwhile outside this lock); fine.
    if !out.status.success() && out.status.code() != Some(9) {
        return Err(FpmError::User {
            user: name.to_string(),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    for _ in 0..20 {
        if let Some(ids) = lookup_user(name) {
            return Ok(ids);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(FpmError::User {
        user: name.to_string(),
        detail: "no user and group of that name after useradd".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_read_by_exact_name() {
        let passwd = "root:x:0:0::/root:/bin/sh\nhp-ab:x:998:990::/:/x\nhp-a:x:997:991::/:/x\n";
        assert_eq!(id_field(passwd, "hp-a"), Some(997));
        assert_eq!(id_field(passwd, "hp-ab"), Some(998));
        assert_eq!(id_field(passwd, "hp"), None);
        let group = "hp-a:x:996:\nbad:x:nope:\n";
        assert_eq!(id_field(group, "hp-a"), Some(996));
        assert_eq!(id_field(group, "bad"), None);
    }
}
