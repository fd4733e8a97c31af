//! Site content deployed through the API (`hostplane site upload`), on the files
//! server: fetch the tar archive from a controller over mutual TLS, unpack it into a
//! staging directory refusing anything but plain files and directories with plain
//! relative names, then make the site directory hold exactly that content (files
//! moved into place one rename each, extra entries removed, symlinks never
//! followed), fsyncing every file and directory before the deployment counts as
//! applied. The site directory itself stays the same inode, so FTP sessions and
//! change watchers on it keep working.
//!
//! A site's persistent and local paths (`site update --keep/--local`) are preserved:
//! nothing under them is deleted or replaced, and an archive entry under them is
//! written only where nothing exists yet (a fresh site gets the archive's defaults).
//!
//! Which deployment each site last applied is recorded in
//! `<engine state>/deployments/<domain>.applied`, so `apply` is idempotent and a
//! restart does not unpack again.

use std::collections::HashSet;
use std::io::{Read, Write as _};
use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};

use proto::agent_v1::{deployment_path, SiteDeployment};

use crate::supervisor::AgentTlsPaths;

/// Largest unpacked size accepted (a zip bomb guard): 4 GiB.
pub const MAX_UNPACKED_BYTES: u64 = 4 << 30;

/// A deployment could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// No controller served the archive.
    #[error("cannot fetch deployment {id}: {message}")]
    Fetch {
        /// The deployment.
        id: String,
        /// What went wrong (last controller tried).
        message: String,
    },
    /// The archive holds something it must not (a link, an absolute or `..` path,
    /// a device) or is too big.
    #[error("deployment {id} refused: {message}")]
    Refused {
        /// The deployment.
        id: String,
        /// Why.
        message: String,
    },
    /// The archive does not match its id (BLAKE3).
    #[error("deployment {0}: the archive does not match its hash")]
    Corrupt(String),
    /// A file operation failed.
    #[error("deployment I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Fetches archives from the controllers with the agent's identity.
#[derive(Debug, Clone)]
pub struct Fetcher {
    http: reqwest::Client,
    controllers: Vec<String>,
}

impl Fetcher {
    /// A fetcher using the agent's client certificate, trusting only the controller
    /// CA, with connections from `bind`.
    pub fn new(
        identity: &AgentTlsPaths,
        bind: IpAddr,
        controllers: Vec<String>,
    ) -> Result<Self, DeployError> {
        let cert = std::fs::read_to_string(&identity.cert)?;
        let key = std::fs::read_to_string(&identity.key)?;
        let ca = std::fs::read(&identity.ca)?;
        let build = |m: String| DeployError::Fetch {
            id: String::new(),
            message: m,
        };
        let mut pem = cert.trim_end().to_owned();
        pem.push('\n');
        pem.push_str(&key);
        let id = reqwest::Identity::from_pem(pem.as_bytes()).map_err(|e| build(e.to_string()))?;
        let root = reqwest::Certificate::from_pem(&ca).map_err(|e| build(e.to_string()))?;
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(root)
            .identity(id)
            .https_only(true)
            .local_address(Some(bind))
            .connect_timeout(std::time::Duration::from_secs(5))
            .build()
            .map_err(|e| build(e.to_string()))?;
        Ok(Self { http, controllers })
    }

    /// Download deployment `id` into `dest` (fsynced), checking its hash.
    pub async fn download(&self, id: &str, dest: &Path) -> Result<(), DeployError> {
        let mut last = "no controller configured".to_owned();
        for base in &self.controllers {
            match self.try_download(base, id, dest).await {
                Ok(()) => return Ok(()),
                Err(DeployError::Fetch { message, .. }) => last = message,
                Err(e) => return Err(e),
            }
        }
        Err(DeployError::Fetch {
            id: id.to_owned(),
            message: last,
        })
    }

    async fn try_download(&self, base: &str, id: &str, dest: &Path) -> Result<(), DeployError> {
        let url = format!("{}{}", base.trim_end_matches('/'), deployment_path(id));
        let fetch = |m: String| DeployError::Fetch {
            id: id.to_owned(),
            message: format!("{url}: {m}"),
        };
        let mut resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| fetch(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(fetch(format!("HTTP {}", resp.status())));
        }
        let mut file = std::fs::File::create(dest)?;
        let mut hasher = blake3::Hasher::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| fetch(e.to_string()))? {
            hasher.update(&chunk);
            file.write_all(&chunk)?;
        }
        file.sync_all()?;
        if hasher.finalize().to_hex().as_str() != id {
            return Err(DeployError::Corrupt(id.to_owned()));
        }
        Ok(())
    }
}

/// The record of what a site last applied.
fn applied_file(state_dir: &Path, domain: &str) -> PathBuf {
    state_dir
        .join("deployments")
        .join(format!("{domain}.applied"))
}

/// Forget which deployment `domain` last applied (its folder went away), so the
/// same archive is applied again should the domain come back.
pub fn forget(state_dir: &Path, domain: &str) -> std::io::Result<()> {
    match std::fs::remove_file(applied_file(state_dir, domain)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Whether `dep` is already applied.
pub fn is_applied(state_dir: &Path, dep: &SiteDeployment) -> bool {
    std::fs::read_to_string(applied_file(state_dir, &dep.domain)).is_ok_and(|s| s.trim() == dep.id)
}

/// Fetch and apply `dep` to the site's tree `site` unless already applied, leaving
/// the `preserve` paths (relative to the tree: persistent and local paths) alone.
/// `state_dir` is the engine's private directory (staging and records live there;
/// it must be on the same file system as `site`).
pub async fn apply(
    fetcher: &Fetcher,
    state_dir: &Path,
    site: &Path,
    dep: &SiteDeployment,
    preserve: &[String],
) -> Result<bool, DeployError> {
    if is_applied(state_dir, dep) {
        return Ok(false);
    }
    if dep.domain.is_empty()
        || dep.domain.contains('/')
        || dep.domain.starts_with('.')
        || dep.id.len() != 64
        || !dep.id.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(DeployError::Refused {
            id: dep.id.clone(),
            message: format!("bad deployment name for `{}`", dep.domain),
        });
    }
    let work = state_dir.join("deployments");
    std::fs::create_dir_all(&work)?;
    let archive = work.join(format!("{}.tar", dep.id));
    fetcher.download(&dep.id, &archive).await?;
    let preserve = preserved(preserve).map_err(|m| DeployError::Refused {
        id: dep.id.clone(),
        message: m,
    })?;
    let staging = work.join(format!("{}.staging", dep.id));
    let site = site.to_path_buf();
    let id = dep.id.clone();
    let result = tokio::task::spawn_blocking(move || -> Result<(), DeployError> {
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging)?;
        let unpacked = unpack(&archive, &staging, &id);
        let _ = std::fs::remove_file(&archive);
        unpacked?;
        std::fs::create_dir_all(&site)?;
        replace_contents(&staging, &site, &preserve)?;
        let _ = std::fs::remove_dir_all(&staging);
        Ok(())
    })
    .await
    .map_err(|e| std::io::Error::other(e.to_string()))?;
    result?;
    durable::write_atomic(
        &applied_file(state_dir, &dep.domain),
        dep.id.as_bytes(),
        0o600,
    )?;
    tracing::info!(domain = %dep.domain, id = %dep.id, "deployment applied");
    Ok(true)
}

/// A path inside an archive made only of normal components.
fn plain_relative(path: &Path) -> bool {
    path.components().all(|c| matches!(c, Component::Normal(_)))
        && path.components().next().is_some()
}

/// Unpack `archive` into the empty directory `dest`: plain files and directories
/// only, every file fsynced.
fn unpack(archive: &Path, dest: &Path, id: &str) -> Result<(), DeployError> {
    let refused = |m: String| DeployError::Refused {
        id: id.to_owned(),
        message: m,
    };
    let mut ar = tar::Archive::new(std::fs::File::open(archive)?);
    let mut total: u64 = 0;
    let mut dirs: Vec<PathBuf> = vec![dest.to_path_buf()];
    for entry in ar.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        // "./" prefixes are common in archives made with `tar -C dir .`.
        let path: PathBuf = path
            .components()
            .filter(|c| !matches!(c, Component::CurDir))
            .collect();
        if path.as_os_str().is_empty() {
            continue;
        }
        if !plain_relative(&path) {
            return Err(refused(format!(
                "`{}` is not a plain relative path",
                path.display()
            )));
        }
        let target = dest.join(&path);
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                std::fs::create_dir_all(&target)?;
                dirs.push(target);
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                total = total.saturating_add(entry.size());
                if total > MAX_UNPACKED_BYTES {
                    return Err(refused("more than 4 GiB unpacked".into()));
                }
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                let mode = entry.header().mode().unwrap_or(0o644);
                let mut out = std::fs::File::create(&target)?;
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = entry.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    out.write_all(&buf[..n])?;
                }
                use std::os::unix::fs::PermissionsExt as _;
                // Keep the executable bit only; never setuid/setgid/world-writable.
                let perm = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
                out.set_permissions(std::fs::Permissions::from_mode(perm))?;
                out.sync_all()?;
            }
            // GNU/PAX metadata entries carry no content of their own.
            tar::EntryType::XGlobalHeader
            | tar::EntryType::XHeader
            | tar::EntryType::GNULongName
            | tar::EntryType::GNULongLink => {}
            other => {
                return Err(refused(format!(
                    "`{}` is a {other:?}; only files and folders can be deployed",
                    path.display()
                )))
            }
        }
    }
    for d in dirs {
        std::fs::File::open(&d)?.sync_all()?;
    }
    Ok(())
}

/// The preserved paths as plain relative paths; anything else is refused.
fn preserved(paths: &[String]) -> Result<Vec<PathBuf>, String> {
    paths
        .iter()
        .map(|p| {
            let path = PathBuf::from(p.trim_matches('/'));
            if plain_relative(&path) {
                Ok(path)
            } else {
                Err(format!("kept path `{p}` is not a plain relative path"))
            }
        })
        .collect()
}

/// Where a path stands against the preserved paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// A preserved path or something beneath one: never deleted or replaced.
    Inside,
    /// A folder above a preserved path: kept as a folder, its other content replaced.
    Above,
    /// Replaced by the archive.
    Other,
}

fn class(rel: &Path, preserve: &[PathBuf]) -> Class {
    if preserve.iter().any(|k| rel.starts_with(k)) {
        Class::Inside
    } else if preserve.iter().any(|k| k.starts_with(rel)) {
        Class::Above
    } else {
        Class::Other
    }
}

/// Make `site` hold exactly what `staging` holds, except the `preserve` paths: move
/// every staged file into place (rename, same file system), then remove what the
/// staging tree does not have. Beneath a preserved path, a staged entry lands only
/// where nothing exists and nothing is removed. Never follows a symlink found in
/// `site` (it is removed like any other extra entry, and never written through).
fn replace_contents(staging: &Path, site: &Path, preserve: &[PathBuf]) -> std::io::Result<()> {
    let mut keep: HashSet<PathBuf> = HashSet::new();
    move_tree(staging, site, Path::new(""), &mut keep, preserve)?;
    prune(site, Path::new(""), &keep, preserve)?;
    std::fs::File::open(site)?.sync_all()
}

fn move_tree(
    from_root: &Path,
    to_root: &Path,
    rel: &Path,
    keep: &mut HashSet<PathBuf>,
    preserve: &[PathBuf],
) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from_root.join(rel))? {
        let entry = entry?;
        let rel_child = rel.join(entry.file_name());
        keep.insert(rel_child.clone());
        let target = to_root.join(&rel_child);
        let kind = entry.file_type()?;
        let existing = std::fs::symlink_metadata(&target).ok();
        match class(&rel_child, preserve) {
            Class::Inside => {
                match &existing {
                    None => std::fs::rename(entry.path(), &target)?,
                    Some(m) if m.is_dir() && kind.is_dir() => {
                        move_tree(from_root, to_root, &rel_child, keep, preserve)?;
                    }
                    Some(_) => {}
                }
                continue;
            }
            // a file of the archive where a preserved path's folder is: the folder stays
            Class::Above if !kind.is_dir() && existing.as_ref().is_some_and(|m| m.is_dir()) => {
                continue;
            }
            _ => {}
        }
        if kind.is_dir() {
            match std::fs::symlink_metadata(&target) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    // A file or symlink where a folder must be: replace it.
                    std::fs::remove_file(&target)?;
                    std::fs::create_dir(&target)?;
                }
                Err(_) => std::fs::create_dir(&target)?,
            }
            move_tree(from_root, to_root, &rel_child, keep, preserve)?;
            std::fs::File::open(&target)?.sync_all()?;
        } else {
            if let Ok(m) = std::fs::symlink_metadata(&target) {
                if m.is_dir() {
                    std::fs::remove_dir_all(&target)?;
                }
            }
            // rename replaces a file or a symlink itself, never its target.
            std::fs::rename(entry.path(), &target)?;
        }
    }
    Ok(())
}

fn prune(
    root: &Path,
    rel: &Path,
    keep: &HashSet<PathBuf>,
    preserve: &[PathBuf],
) -> std::io::Result<()> {
    for entry in std::fs::read_dir(root.join(rel))? {
        let entry = entry?;
        let rel_child = rel.join(entry.file_name());
        let kind = entry.file_type()?;
        match class(&rel_child, preserve) {
            Class::Inside => continue,
            Class::Above if kind.is_dir() => {
                prune(root, &rel_child, keep, preserve)?;
                continue;
            }
            _ => {}
        }
        if !keep.contains(&rel_child) {
            if kind.is_dir() {
                std::fs::remove_dir_all(entry.path())?;
            } else {
                std::fs::remove_file(entry.path())?;
            }
        } else if kind.is_dir() {
            prune(root, &rel_child, keep, preserve)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut h = tar::Header::new_gnu();
            match data {
                Some(d) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(d.len() as u64);
                    h.set_mode(0o644);
                    h.set_cksum();
                    b.append_data(&mut h, path, *d).unwrap();
                }
                None => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    h.set_mode(0o755);
                    h.set_cksum();
                    b.append_data(&mut h, path, std::io::empty()).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn unpack_and_replace_keep_exactly_the_archive() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("a.tar");
        std::fs::write(
            &archive,
            tar_of(&[
                ("css", None),
                ("css/site.css", Some(b"body{}")),
                ("./index.html", Some(b"<h1>new</h1>")),
            ]),
        )
        .unwrap();
        let staging = dir.path().join("staging");
        std::fs::create_dir(&staging).unwrap();
        unpack(&archive, &staging, "x").unwrap();

        let site = dir.path().join("site");
        std::fs::create_dir_all(site.join("old")).unwrap();
        std::fs::write(site.join("index.html"), "old").unwrap();
        std::fs::write(site.join("old/file"), "old").unwrap();
        // A symlink planted in the site pointing outside is replaced, not followed.
        let outside = dir.path().join("outside.txt");
        std::fs::write(&outside, "secret").unwrap();
        std::os::unix::fs::symlink(&outside, site.join("css")).unwrap();
        replace_contents(&staging, &site, &[]).unwrap();

        assert_eq!(
            std::fs::read_to_string(site.join("index.html")).unwrap(),
            "<h1>new</h1>"
        );
        assert_eq!(
            std::fs::read_to_string(site.join("css/site.css")).unwrap(),
            "body{}"
        );
        assert!(!site.join("old").exists());
        assert!(std::fs::symlink_metadata(site.join("css"))
            .unwrap()
            .is_dir());
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "secret");
    }

    #[test]
    fn kept_and_local_paths_survive_and_get_only_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("a.tar");
        std::fs::write(
            &archive,
            tar_of(&[
                ("index.php", Some(b"new")),
                ("wp-content/uploads/default.png", Some(b"archive default")),
                ("wp-content/uploads/logo.png", Some(b"archive logo")),
                ("wp-content/plugins/p.php", Some(b"plugin v2")),
                ("cache", Some(b"a file where the local folder is")),
            ]),
        )
        .unwrap();
        let staging = dir.path().join("staging");
        std::fs::create_dir(&staging).unwrap();
        unpack(&archive, &staging, "x").unwrap();
        let site = dir.path().join("site");
        for (p, d) in [
            ("index.php", "old"),
            ("old.php", "old"),
            ("wp-content/uploads/2026/photo.jpg", "customer upload"),
            ("wp-content/uploads/logo.png", "customer logo"),
            ("wp-content/plugins/p.php", "plugin v1"),
            ("wp-content/plugins/stale.php", "stale"),
            ("cache/page.html", "cached"),
        ] {
            let f = site.join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, d).unwrap();
        }
        let preserve = preserved(&["wp-content/uploads".into(), "cache/".into()]).unwrap();
        replace_contents(&staging, &site, &preserve).unwrap();
        let read = |p: &str| std::fs::read_to_string(site.join(p)).unwrap();
        assert_eq!(read("index.php"), "new");
        assert!(!site.join("old.php").exists());
        assert_eq!(read("wp-content/uploads/2026/photo.jpg"), "customer upload");
        assert_eq!(read("wp-content/uploads/logo.png"), "customer logo");
        assert_eq!(read("wp-content/uploads/default.png"), "archive default");
        assert_eq!(read("wp-content/plugins/p.php"), "plugin v2");
        assert!(!site.join("wp-content/plugins/stale.php").exists());
        assert_eq!(read("cache/page.html"), "cached");
        assert!(preserved(&["../etc".into()]).is_err());
    }

    #[test]
    fn escapes_and_links_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let staging = dir.path().join("staging");
        std::fs::create_dir(&staging).unwrap();
        // `tar::Builder` refuses `..` itself, so write the name into the header raw.
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..13].copy_from_slice(b"../escape.txt");
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(1);
        h.set_cksum();
        let mut raw = h.as_bytes().to_vec();
        raw.extend_from_slice(b"x");
        raw.resize(1024 + 1024, 0);
        let archive = dir.path().join("bad.tar");
        std::fs::write(&archive, raw).unwrap();
        let e = unpack(&archive, &staging, "x").unwrap_err();
        assert!(e.to_string().contains("plain relative path"), "{e}");
        assert!(!dir.path().join("escape.txt").exists());

        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_cksum();
        b.append_link(&mut h, "passwd", "/etc/passwd").unwrap();
        std::fs::write(&archive, b.into_inner().unwrap()).unwrap();
        let e = unpack(&archive, &staging, "x").unwrap_err();
        assert!(e.to_string().contains("only files and folders"), "{e}");
    }
}
