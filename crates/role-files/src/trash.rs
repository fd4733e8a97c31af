//! The site folders of domains this files server no longer holds (the domain was
//! deleted, or moved to another files cluster) go to a trash beside the hub's directory
//! (each folder is a site's whole hub state: its tree, log, kept versions and
//! conflicts), out of reach of FTP and of the web servers, and are deleted after
//! `site_trash_days` (default 7).
//!
//! This is the origin copy of a customer's files, so nothing is deleted at once: a
//! mistaken deletion can be undone by moving `trash/<domain>@<unix time>` back to
//! `hub/<domain>` within the retention. And a domain deleted by one customer and
//! added again by another starts with an empty folder, never with the first
//! customer's files.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::plan::check_domain;

/// Move every folder of `sites_root` named like a domain and not in `keep` to
/// `trash_root/<domain>@<unix seconds>` (fsynced); returns the domains moved.
pub fn retire_removed(
    sites_root: &Path,
    trash_root: &Path,
    keep: &BTreeSet<String>,
    now: SystemTime,
) -> std::io::Result<Vec<String>> {
    let mut moved = Vec::new();
    for entry in std::fs::read_dir(sites_root)?.flatten() {
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if !is_dir || keep.contains(&name) || check_domain(&name).is_err() {
            continue;
        }
        std::fs::create_dir_all(trash_root)?;
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let target = unique(trash_root, &format!("{name}@{secs}"));
        std::fs::rename(entry.path(), &target)?;
        moved.push(name);
    }
    if !moved.is_empty() {
        durable::sync_dir(sites_root)?;
        durable::sync_dir(trash_root)?;
    }
    Ok(moved)
}

fn unique(dir: &Path, base: &str) -> PathBuf {
    let mut p = dir.join(base);
    let mut n = 1;
    while p.exists() {
        p = dir.join(format!("{base}.{n}"));
        n += 1;
    }
    p
}

/// Delete trashed folders older than `keep_for`; returns their names.
pub fn purge(trash_root: &Path, keep_for: Duration, now: SystemTime) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(trash_root) else {
        return Vec::new();
    };
    let now_secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut purged = Vec::new();
    for entry in entries.flatten() {
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let Some(secs) = trashed_at(&name) else {
            continue;
        };
        if now_secs.saturating_sub(secs) < keep_for.as_secs() {
            continue;
        }
        match std::fs::remove_dir_all(entry.path()) {
            Ok(()) => purged.push(name),
            Err(e) => tracing::warn!(folder = %name, error = %e, "cannot purge trashed site files"),
        }
    }
    purged
}

/// The time in a trash entry's name `<domain>@<secs>[.<n>]`.
fn trashed_at(name: &str) -> Option<u64> {
    let (_, rest) = name.rsplit_once('@')?;
    rest.split('.').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removed_domains_go_to_the_trash_and_age_out() {
        let tmp = tempfile::tempdir().unwrap();
        let (sites, trash) = (tmp.path().join("sites"), tmp.path().join("trash"));
        for d in ["keep.example", "gone.example"] {
            std::fs::create_dir_all(sites.join(d)).unwrap();
            std::fs::write(sites.join(d).join("index.html"), d).unwrap();
        }
        std::fs::create_dir_all(sites.join(".staging")).unwrap();
        std::fs::write(sites.join("stray-file"), b"x").unwrap();
        let keep: BTreeSet<String> = ["keep.example".to_string()].into();
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let moved = retire_removed(&sites, &trash, &keep, t0).unwrap();
        assert_eq!(moved, ["gone.example"]);
        assert!(!sites.join("gone.example").exists());
        assert!(sites.join("keep.example/index.html").exists());
        assert!(sites.join(".staging").exists() && sites.join("stray-file").exists());
        let kept = trash.join("gone.example@1000000/index.html");
        assert_eq!(std::fs::read_to_string(&kept).unwrap(), "gone.example");

        // The same domain again (added and removed once more) in the same second.
        std::fs::create_dir_all(sites.join("gone.example")).unwrap();
        retire_removed(&sites, &trash, &keep, t0).unwrap();
        assert!(trash.join("gone.example@1000000.1").is_dir());

        let week = Duration::from_secs(7 * 86400);
        assert!(purge(&trash, week, t0 + Duration::from_secs(86400)).is_empty());
        let mut purged = purge(&trash, week, t0 + week);
        purged.sort();
        assert_eq!(purged, ["gone.example@1000000", "gone.example@1000000.1"]);
        assert_eq!(std::fs::read_dir(&trash).unwrap().count(), 0);
    }
}
