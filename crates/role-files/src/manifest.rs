//! Building site manifests (the wire format, `proto::manifest::Manifest`):
//! every regular file of a site with its size, mode and BLAKE3 hash.
//! Symlinks, special files and in-progress uploads are left out. Hashes are cached by
//! (path, size, mtime, ctime, inode), so a manifest of an unchanged site costs one
//! `lstat` per file.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Mutex;

use proto::manifest::FileEntry;
use rustix::fs::{AtFlags, FileType};

use crate::safe_fs::{open_dir_beneath, open_file_beneath};
use crate::storage::UPLOAD_TMP_PREFIX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    ino: u64,
}

impl Stamp {
    fn of_stat(st: &rustix::fs::Stat) -> Self {
        Self {
            size: u64::try_from(st.st_size).unwrap_or(0),
            mtime: (st.st_mtime, i64::try_from(st.st_mtime_nsec).unwrap_or(0)),
            ctime: (st.st_ctime, i64::try_from(st.st_ctime_nsec).unwrap_or(0)),
            ino: st.st_ino,
        }
    }

    fn of(m: &std::fs::Metadata) -> Self {
        Self {
            size: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
            ino: m.ino(),
        }
    }
}

/// Cache of file hashes keyed by `(domain, path)`.
#[derive(Debug, Default)]
pub struct HashCache {
    map: Mutex<HashMap<(String, String), (Stamp, String)>>,
}

impl HashCache {
    fn get(&self, key: &(String, String), stamp: Stamp) -> Option<String> {
        let map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(key)
            .filter(|(s, _)| *s == stamp)
            .map(|(_, h)| h.clone())
    }

    fn put(&self, key: (String, String), stamp: Stamp, hash: String) {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key, (stamp, hash));
    }

    /// Forget every entry of `domain` not in `keep`.
    fn retain(&self, domain: &str, keep: &[FileEntry]) {
        let keep: std::collections::HashSet<&str> = keep.iter().map(|f| f.path.as_str()).collect();
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|(d, p), _| d != domain || keep.contains(p.as_str()));
    }
}

/// BLAKE3 of everything readable from `f`, lower-case hex.
pub fn hash_file(f: &mut File) -> io::Result<String> {
    let mut h = blake3::Hasher::new();
    h.update_reader(f)?;
    Ok(h.finalize().to_hex().to_string())
}

/// Walk the site folder `site` (already opened beneath the sites root) and build its
/// file list.
pub fn build_files(domain: &str, site: &File, cache: &HashCache) -> io::Result<Vec<FileEntry>> {
    let mut files = Vec::new();
    walk(domain, site, "", cache, &mut files)?;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    cache.retain(domain, &files);
    Ok(files)
}

fn walk(
    domain: &str,
    dir: &File,
    prefix: &str,
    cache: &HashCache,
    out: &mut Vec<FileEntry>,
) -> io::Result<()> {
    let mut names = Vec::new();
    for e in rustix::fs::Dir::read_from(dir)? {
        let e = e?;
        let Ok(name) = e.file_name().to_str().map(str::to_owned) else {
            tracing::warn!(domain, "skipping a file name that is not UTF-8");
            continue;
        };
        // in-flight FTP uploads and the hub's temp files of a change being applied
        if name == "."
            || name == ".."
            || name.starts_with(UPLOAD_TMP_PREFIX)
            || name.starts_with(sitesync::apply::TMP_PREFIX)
        {
            continue;
        }
        let mut ft = e.file_type();
        if ft == FileType::Unknown {
            ft = FileType::from_raw_mode(
                rustix::fs::statat(dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW)?.st_mode,
            );
        }
        names.push((name, ft));
    }
    names.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, ft) in names {
        let rel = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        if ft == FileType::Directory {
            match open_dir_beneath(dir, Path::new(&name)) {
                Ok(sub) => walk(domain, &sub, &rel, cache, out)?,
                Err(err) => tracing::warn!(domain, path = %rel, error = %err, "skipping folder"),
            }
        } else if ft == FileType::RegularFile {
            match entry(domain, dir, &name, &rel, cache) {
                Ok(f) => out.push(f),
                // Removed or replaced while walking: the next manifest sees it.
                Err(err) => tracing::debug!(domain, path = %rel, error = %err, "skipping file"),
            }
        }
    }
    Ok(())
}

fn entry(
    domain: &str,
    dir: &File,
    name: &str,
    rel: &str,
    cache: &HashCache,
) -> io::Result<FileEntry> {
    let key = (domain.to_string(), rel.to_string());
    // Cache hit: one lstat, no open.
    let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
    let stamp = Stamp::of_stat(&st);
    if let Some(hash) = cache.get(&key, stamp) {
        return Ok(FileEntry {
            path: rel.to_string(),
            size: stamp.size,
            mode: st.st_mode & 0o777,
            blake3: hash,
        });
    }
    let mut f = open_file_beneath(dir, Path::new(name))?;
    let m = f.metadata()?;
    let stamp = Stamp::of(&m);
    let hash = hash_file(&mut f)?;
    cache.put(key, stamp, hash.clone());
    Ok(FileEntry {
        path: rel.to_string(),
        size: m.len(),
        mode: m.mode() & 0o777,
        blake3: hash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_files_with_hashes_and_skips_links() {
        let d = tempfile::tempdir().unwrap();
        let s = d.path().join("a.example");
        std::fs::create_dir_all(s.join("sub")).unwrap();
        std::fs::write(s.join("index.html"), b"hello").unwrap();
        std::fs::write(s.join("sub/x.css"), b"body{}").unwrap();
        std::fs::write(s.join(format!("{UPLOAD_TMP_PREFIX}1")), b"partial").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", s.join("evil")).unwrap();
        let site = crate::safe_fs::open_site(d.path(), "a.example").unwrap();
        let cache = HashCache::default();
        let files = build_files("a.example", &site, &cache).unwrap();
        let paths: Vec<_> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["index.html", "sub/x.css"]);
        assert_eq!(files[0].blake3, blake3::hash(b"hello").to_hex().to_string());
        assert_eq!(files[0].size, 5);
        // cached the second time, same answer
        assert_eq!(build_files("a.example", &site, &cache).unwrap(), files);
    }
}
