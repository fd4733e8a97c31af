//! The hub's hash cache (`<site>/hashes.json`): each file of the tree with the
//! [`Stamp`] it had when it was hashed. Opening a site after a restart walks its tree
//! and hashes only the files whose stamp changed, instead of reading every byte of
//! every site under the site's lock. It is a cache: a stale or missing one costs hashing,
//! never a wrong answer (any write changes a file's ctime), so it is written (atomically,
//! fsynced) after each full walk, not after every change. Entries changed within
//! [`RACY`] of writing it are left out: a write in the same clock tick could leave the
//! stamp as it was (git's "racily clean" entries).

use std::collections::HashMap;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::safe::Stamp;

/// How close to the cache's writing a change makes an entry untrusted (seconds).
pub const RACY: i64 = 2;

/// The cache of one site.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HashCache {
    /// Path → stamp and BLAKE3 (hex).
    files: HashMap<String, (Stamp, String)>,
}

impl HashCache {
    /// Loads the cache at `path`; a missing or unreadable one is empty (the walk then
    /// hashes everything, as without a cache).
    pub fn load(path: &Path) -> HashCache {
        match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "sitesync: ignoring a bad hash cache");
                HashCache::default()
            }),
            Err(_) => HashCache::default(),
        }
    }

    /// The hash of `path` if its stamp is the one cached.
    pub fn known(&self, path: &str, stamp: &Stamp) -> Option<String> {
        self.files
            .get(path)
            .filter(|(s, _)| s == stamp)
            .map(|(_, h)| h.clone())
    }

    /// Replaces the cache with `files` (from a walk) and writes it durably, leaving out
    /// the entries changed within [`RACY`] seconds of `now_secs`.
    pub fn save(
        &mut self,
        path: &Path,
        files: HashMap<String, (Stamp, String)>,
        now_secs: i64,
    ) -> io::Result<()> {
        self.files = files
            .into_iter()
            .filter(|(_, (s, _))| s.ctime.0 < now_secs - RACY && s.mtime.0 < now_secs - RACY)
            .collect();
        let b = serde_json::to_vec(self).map_err(io::Error::other)?;
        durable::write_atomic(path, &b, 0o600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn only_files_whose_stamp_changed_are_hashed_again() {
        let d = tempfile::tempdir().unwrap();
        let tree = d.path().join("tree");
        std::fs::create_dir_all(tree.join("sub")).unwrap();
        for (p, b) in [("a", "one"), ("sub/b", "two"), ("sub/c", "three")] {
            std::fs::write(tree.join(p), b).unwrap();
        }
        // older than the racy window
        std::thread::sleep(std::time::Duration::from_secs(RACY as u64 + 1));
        let root = crate::safe::open_root(&tree).unwrap();
        let cache_path = d.path().join("hashes.json");
        let walk = |cache: &HashCache| {
            let misses = Cell::new(0);
            let (nodes, stamps) = crate::safe::walk_known(&root, &|_| false, &|p, st| {
                let k = cache.known(p, st);
                if k.is_none() {
                    misses.set(misses.get() + 1);
                }
                k
            })
            .unwrap();
            (nodes, stamps, misses.get())
        };
        let now = proto::sitesync::Mtime::now().secs;
        let mut cache = HashCache::load(&cache_path);
        let (first, stamps, misses) = walk(&cache);
        assert_eq!(misses, 3);
        assert_eq!(first, crate::safe::walk(&root, true, &|_| false).unwrap());
        cache.save(&cache_path, stamps, now).unwrap();
        let cache = HashCache::load(&cache_path);
        let (again, _, misses) = walk(&cache);
        assert_eq!((misses, &again), (0, &first));
        // the same size, rewritten in place: its ctime moved, so it is read again
        std::fs::write(tree.join("sub/b"), "TWO").unwrap();
        let (changed, stamps, misses) = walk(&cache);
        assert_eq!(misses, 1);
        assert_ne!(changed["sub/b"], first["sub/b"]);
        assert_eq!(changed, crate::safe::walk(&root, true, &|_| false).unwrap());
        // just written: not cached (racily clean), so hashed next time too
        let mut cache = cache;
        cache
            .save(&cache_path, stamps, proto::sitesync::Mtime::now().secs)
            .unwrap();
        let (_, _, misses) = walk(&HashCache::load(&cache_path));
        assert_eq!(misses, 1);
        // a bad cache file is only a cost
        std::fs::write(&cache_path, b"{").unwrap();
        let (_, _, misses) = walk(&HashCache::load(&cache_path));
        assert_eq!(misses, 3);
    }
}
