//! The hot-file cache: everything a GET of a small static file needs (metadata,
//! rendered validators, bytes), keyed by the site root it was opened under and the
//! raw request path, so a repeated request skips path decoding, `openat2`, `fstat`
//! and `close`.
//!
//! An entry is trusted for [`REVALIDATE_AFTER`] (1 ms) after the open that made it,
//! the same window the site root itself is trusted for: after that the request
//! takes the full path again (open beneath the root, fstat, cache lookup by file
//! identity and version) and refreshes the entry. A content swap gives the site a
//! new root id, so no entry of the old release is ever served for the new one.
//! Only successful opens of regular files whose bytes are in memory are kept;
//! misses, directories, PHP and large files always take the full path.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;

use crate::files::FileMeta;
use crate::fsafe::{monotonic_ns, REVALIDATE_AFTER};

/// A small static file as last opened.
#[derive(Debug)]
pub struct HotFile {
    root_id: u64,
    raw_path: Box<str>,
    opened_ns: u64,
    /// Its metadata (type, size, validators).
    pub meta: Arc<FileMeta>,
    /// Its bytes.
    pub body: Bytes,
}

#[derive(Default)]
struct Inner {
    map: HashMap<u64, Arc<HotFile>, BuildHasherDefault<IdentityHasher>>,
    bytes: usize,
}

/// The cache, shared by the server threads (hits take the read lock only).
pub struct HotFiles {
    inner: RwLock<Inner>,
    window_ns: u64,
    max_entries: usize,
    max_bytes: usize,
}

impl std::fmt::Debug for HotFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotFiles")
            .field("max_entries", &self.max_entries)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

/// A hasher for keys that are already hashes.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// FNV-1a over the root id and the path: the slot an entry lives in (a collision
/// just replaces the other entry; hits compare the full key).
fn slot(root_id: u64, raw_path: &str) -> u64 {
    const PRIME: u64 = 0x0100_0000_01b3;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ root_id;
    for b in raw_path.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(PRIME);
    }
    h
}

impl HotFiles {
    /// A cache of at most `max_entries` files and `max_bytes` of bodies.
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        Self::with_window(max_entries, max_bytes, REVALIDATE_AFTER)
    }

    fn with_window(max_entries: usize, max_bytes: usize, window: Duration) -> Self {
        Self {
            inner: RwLock::new(Inner::default()),
            window_ns: u64::try_from(window.as_nanos()).unwrap_or(u64::MAX),
            max_entries,
            max_bytes,
        }
    }

    /// The file `raw_path` named beneath root `root_id`, if opened within the window.
    pub fn get(&self, root_id: u64, raw_path: &str) -> Option<Arc<HotFile>> {
        let inner = self
            .inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let e = inner.map.get(&slot(root_id, raw_path))?;
        let fresh = monotonic_ns().saturating_sub(e.opened_ns) < self.window_ns;
        (fresh && e.root_id == root_id && &*e.raw_path == raw_path).then(|| e.clone())
    }

    /// Remember that `raw_path` beneath root `root_id` was just opened as `meta`
    /// with bytes `body`. `opened_ns` is when the open started.
    pub fn insert(
        &self,
        root_id: u64,
        raw_path: &str,
        opened_ns: u64,
        meta: Arc<FileMeta>,
        body: Bytes,
    ) {
        if body.len() > self.max_bytes {
            return;
        }
        let mut inner = self
            .inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if inner.map.len() >= self.max_entries || inner.bytes + body.len() > self.max_bytes {
            // Stale entries are useless anyway: drop them; if that is not enough,
            // start over (the next requests refill what is hot).
            let now = monotonic_ns();
            let window = self.window_ns;
            inner
                .map
                .retain(|_, e| now.saturating_sub(e.opened_ns) < window);
            if inner.map.len() >= self.max_entries {
                inner.map.clear();
            }
            inner.bytes = inner.map.values().map(|e| e.body.len()).sum();
            if inner.bytes + body.len() > self.max_bytes {
                inner.map.clear();
                inner.bytes = 0;
            }
        }
        let len = body.len();
        let entry = Arc::new(HotFile {
            root_id,
            raw_path: raw_path.into(),
            opened_ns,
            meta,
            body,
        });
        if let Some(old) = inner.map.insert(slot(root_id, raw_path), entry) {
            inner.bytes -= old.body.len();
        }
        inner.bytes += len;
    }

    /// Files held.
    pub fn len(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .map
            .len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsafe::{open_beneath, open_root};

    fn meta_of(dir: &std::path::Path, name: &str, data: &[u8]) -> Arc<FileMeta> {
        std::fs::write(dir.join(name), data).unwrap();
        let root = open_root(dir).unwrap();
        Arc::new(FileMeta::of(
            &open_beneath(&root, name).unwrap(),
            Some("txt"),
        ))
    }

    #[test]
    fn hits_need_the_same_root_and_path_within_the_window() {
        let tmp = tempfile::tempdir().unwrap();
        let meta = meta_of(tmp.path(), "a.txt", b"aaa");
        let hot = HotFiles::with_window(16, 1 << 20, Duration::from_millis(200));
        hot.insert(
            7,
            "/a.txt",
            monotonic_ns(),
            meta,
            Bytes::from_static(b"aaa"),
        );
        assert_eq!(hot.get(7, "/a.txt").unwrap().body, "aaa");
        assert!(
            hot.get(8, "/a.txt").is_none(),
            "another root (a swap) misses"
        );
        assert!(hot.get(7, "/a.txt?").is_none());
        assert!(hot.get(7, "/b.txt").is_none());
        std::thread::sleep(Duration::from_millis(250));
        assert!(hot.get(7, "/a.txt").is_none(), "stale after the window");
    }

    #[test]
    fn stays_within_its_bounds() {
        let tmp = tempfile::tempdir().unwrap();
        let meta = meta_of(tmp.path(), "a.txt", b"0123456789");
        let hot = HotFiles::with_window(4, 35, Duration::from_secs(60));
        for i in 0..10 {
            let body = Bytes::from_static(b"0123456789");
            hot.insert(1, &format!("/{i}"), monotonic_ns(), meta.clone(), body);
            assert!(hot.len() <= 4);
            let bytes: usize = hot
                .inner
                .read()
                .unwrap()
                .map
                .values()
                .map(|e| e.body.len())
                .sum();
            assert!(bytes <= 35);
            assert_eq!(bytes, hot.inner.read().unwrap().bytes);
        }
        assert_eq!(hot.get(1, "/9").unwrap().body, "0123456789");
        hot.insert(1, "/big", monotonic_ns(), meta, Bytes::from(vec![0u8; 36]));
        assert!(hot.get(1, "/big").is_none(), "larger than the whole budget");
    }
}
