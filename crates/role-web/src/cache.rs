//! In-memory cache of small files and of compressed variants.
//!
//! Entries are keyed by the file's identity *and* version as `fstat` reports it
//! (device, inode, size, mtime, ctime), so a cached body is only ever served for the
//! very file the request opened: a content swap (new inodes) or an edit in place (new
//! mtime/ctime) misses and reads afresh. Old entries simply age out (FIFO under a
//! byte budget).

use std::collections::{HashMap, VecDeque};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;
use rustix::fs::Stat;

use crate::compress::Encoding;

/// Identity and version of an open file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileKey {
    dev: u64,
    ino: u64,
    size: i64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileKey {
    /// The key of the file `stat` describes.
    pub fn of(stat: &Stat) -> Self {
        #[allow(clippy::unnecessary_cast)]
        Self {
            dev: stat.st_dev as u64,
            ino: stat.st_ino as u64,
            size: stat.st_size as i64,
            mtime: (stat.st_mtime as i64, stat.st_mtime_nsec as i64),
            ctime: (stat.st_ctime as i64, stat.st_ctime_nsec as i64),
        }
    }
}

/// Which representation of a file an entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// The bytes as stored.
    Identity,
    /// Compressed.
    Encoded(Encoding),
}

type Key = (FileKey, Variant);

#[derive(Default)]
struct Inner {
    map: HashMap<Key, Bytes>,
    order: VecDeque<Key>,
    bytes: usize,
}

/// A bounded cache of file bodies.
pub struct ContentCache {
    /// Read-mostly: hits share the read lock, only misses take the write lock.
    inner: RwLock<Inner>,
    budget: usize,
    max_entry: usize,
}

impl std::fmt::Debug for ContentCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentCache")
            .field("budget", &self.budget)
            .field("max_entry", &self.max_entry)
            .finish_non_exhaustive()
    }
}

impl ContentCache {
    /// A cache of at most `budget` bytes holding entries of at most `max_entry` bytes.
    pub fn new(budget: usize, max_entry: usize) -> Self {
        Self {
            inner: RwLock::new(Inner::default()),
            budget,
            max_entry,
        }
    }

    /// Largest entry kept.
    pub fn max_entry(&self) -> usize {
        self.max_entry
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cached body, if any.
    pub fn get(&self, file: FileKey, variant: Variant) -> Option<Bytes> {
        self.read().map.get(&(file, variant)).cloned()
    }

    /// Keep `body` (ignored when larger than the entry limit).
    pub fn insert(&self, file: FileKey, variant: Variant, body: Bytes) {
        if body.len() > self.max_entry {
            return;
        }
        let mut inner = self.write();
        let key = (file, variant);
        let len = body.len();
        match inner.map.insert(key, body) {
            Some(old) => inner.bytes = inner.bytes - old.len() + len,
            None => {
                inner.order.push_back(key);
                inner.bytes += len;
            }
        }
        while inner.bytes > self.budget {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some(old) = inner.map.remove(&oldest) {
                inner.bytes -= old.len();
            }
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.read().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u64) -> FileKey {
        FileKey {
            dev: 1,
            ino: n,
            size: 3,
            mtime: (0, 0),
            ctime: (0, 0),
        }
    }

    #[test]
    fn evicts_oldest_over_budget_and_skips_large_entries() {
        let c = ContentCache::new(10, 4);
        c.insert(key(1), Variant::Identity, Bytes::from_static(b"aaaa"));
        c.insert(key(2), Variant::Identity, Bytes::from_static(b"bbbb"));
        c.insert(key(3), Variant::Identity, Bytes::from_static(b"cccc"));
        assert!(c.get(key(1), Variant::Identity).is_none());
        assert_eq!(c.get(key(3), Variant::Identity).unwrap(), "cccc");
        assert_eq!(c.bytes(), 8);
        c.insert(key(4), Variant::Identity, Bytes::from_static(b"too long"));
        assert!(c.get(key(4), Variant::Identity).is_none());
        assert!(c.get(key(3), Variant::Encoded(Encoding::Gzip)).is_none());
    }
}
