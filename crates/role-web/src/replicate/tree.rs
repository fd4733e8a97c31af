//! A replicated site's tree on this server: `<content_root>/<domain>/tree`, a plain,
//! writable directory (PHP writes into it as the site's user), served through the
//! symlink `current -> tree` so the server's root cache ([`crate::fsafe::RootCache`])
//! keeps one open root for as long as the link does not change.
//!
//! A site that was content-synced before (`current` a symlink to an immutable version
//! folder) keeps its files: that folder becomes `tree` by one rename on first start,
//! and every other entry of the site directory (older versions, staging folders, the
//! old manifest) is deleted, so no hard link to an older version survives that an
//! in-place write could change.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::fpm::Ids;

/// The name of the writable tree inside a site's directory.
pub const TREE: &str = "tree";

/// Makes `<site_dir>/tree` exist (migrating a content-synced version), points
/// `<site_dir>/current` at it and deletes the rest of the site directory. Returns the
/// tree's path. Idempotent: a second run changes nothing.
pub fn prepare(site_dir: &Path) -> io::Result<PathBuf> {
    std::fs::create_dir_all(site_dir)?;
    let tree = site_dir.join(TREE);
    let current = site_dir.join(crate::fsafe::CURRENT);
    if std::fs::symlink_metadata(&tree).is_err() {
        match std::fs::symlink_metadata(&current) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::read_link(&current)?;
                let from = site_dir.join(&target);
                // only a folder of this site directory itself is adopted
                let inside = target.components().count() == 1
                    && std::fs::symlink_metadata(&from).is_ok_and(|m| m.is_dir());
                if inside {
                    std::fs::rename(&from, &tree)?;
                    tracing::info!(site = %site_dir.display(), version = %target.display(), "site tree migrated from its content-synced version");
                } else {
                    std::fs::create_dir(&tree)?;
                }
            }
            Ok(m) if m.is_dir() => std::fs::rename(&current, &tree)?,
            _ => std::fs::create_dir(&tree)?,
        }
    }
    if !std::fs::symlink_metadata(&tree)?.is_dir() {
        return Err(io::Error::other(format!(
            "{} is not a directory",
            tree.display()
        )));
    }
    if std::fs::read_link(&current).ok().as_deref() != Some(Path::new(TREE)) {
        let tmp = site_dir.join(".current.tree");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(TREE, &tmp)?;
        std::fs::rename(&tmp, &current)?;
    }
    for entry in std::fs::read_dir(site_dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == TREE || name == crate::fsafe::CURRENT {
            continue;
        }
        let p = entry.path();
        let res = if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        if let Err(e) = res {
            tracing::warn!(path = %p.display(), error = %e, "cannot delete an old version of a site");
        }
    }
    Ok(tree)
}

/// Gives everything in `tree` (and the tree itself) to `ids`, without following
/// symlinks; entries already owned by them are left alone. Used on start (a migrated
/// tree was root's) and when a quota lock is lifted. Returns how many entries changed.
pub fn chown_tree(tree: &Path, ids: Ids) -> io::Result<u64> {
    let mut changed = 0;
    let mut stack = vec![tree.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = match std::fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if m.uid() != ids.uid || m.gid() != ids.gid {
            match std::os::unix::fs::lchown(&p, Some(ids.uid), Some(ids.gid)) {
                Ok(()) => changed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        if m.is_dir() {
            match std::fs::read_dir(&p) {
                Ok(rd) => {
                    for e in rd {
                        stack.push(e?.path());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_content_synced_version_becomes_the_tree_and_the_rest_goes() {
        let tmp = tempfile::tempdir().unwrap();
        let site = tmp.path().join("a.example");
        std::fs::create_dir_all(site.join("v-2/sub")).unwrap();
        std::fs::create_dir_all(site.join("v-1")).unwrap();
        std::fs::write(site.join("v-2/sub/x.txt"), b"x").unwrap();
        std::fs::write(site.join("manifest-2.json"), b"{}").unwrap();
        std::os::unix::fs::symlink("v-2", site.join("current")).unwrap();
        let tree = prepare(&site).unwrap();
        assert_eq!(std::fs::read(tree.join("sub/x.txt")).unwrap(), b"x");
        assert_eq!(
            std::fs::read_link(site.join("current")).unwrap(),
            Path::new("tree")
        );
        let mut names: Vec<String> = std::fs::read_dir(&site)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["current", "tree"]);
        // again: nothing changes
        prepare(&site).unwrap();
        assert_eq!(std::fs::read(site.join("current/sub/x.txt")).unwrap(), b"x");
    }

    #[test]
    fn a_new_site_gets_an_empty_tree() {
        let tmp = tempfile::tempdir().unwrap();
        let site = tmp.path().join("b.example");
        let tree = prepare(&site).unwrap();
        assert!(tree.is_dir());
        assert!(site.join("current").is_dir());
    }
}
