//! The per-folder state every session of a server shares: the folder's lock, its
//! change notifier (IDLE), the last synchronised view of the folder (so an
//! unchanged folder costs a command nothing) and a cache of message headers (so
//! FETCH ENVELOPE and header SEARCH of a large folder read no files after the
//! first time; a Maildir message never changes under its base name).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::uidlist;

/// Per-folder locks and change notifiers shared by every session of a server
/// (and by delivery), so IDLE wakes on deliveries and on other sessions' changes.
#[derive(Debug, Default)]
pub struct Registry {
    folders: Mutex<HashMap<PathBuf, Arc<FolderSlot>>>,
}

/// The lock and notifier of one folder.
#[derive(Debug, Default)]
pub struct FolderSlot {
    /// Held while the folder's files or UID list change.
    pub lock: Mutex<()>,
    /// Woken after every change.
    pub notify: tokio::sync::Notify,
    /// Bumped by [`Registry::changed`]: a change made in this process makes the
    /// cached view stale at once, whatever the directories' time stamps say.
    generation: std::sync::atomic::AtomicU64,
    /// The folder as last read from disk, reused while nothing changed.
    cache: Mutex<Option<Cached>>,
    /// Message headers (CRLF, through the blank line) by Maildir base name.
    headers: std::sync::RwLock<Headers>,
}

/// The header cache of one folder: a message's content never changes under its
/// base name (flags live in the file name), so an entry never goes stale; it is
/// dropped whole when it grows past [`HEADER_CACHE_BYTES`] (expunged messages
/// leave their entries until then).
#[derive(Debug, Default)]
struct Headers {
    by_base: HashMap<String, Arc<[u8]>>,
    bytes: usize,
}

/// Most header bytes cached per folder (a typical header is 0.5-2 KiB, so this
/// holds tens of thousands of messages).
const HEADER_CACHE_BYTES: usize = 48 << 20;
/// Headers longer than this are read each time, not cached.
const MAX_CACHED_HEADER: usize = 64 << 10;

impl FolderSlot {
    /// The header of message `base` (file `path`), from the cache or read from the
    /// file (and then cached). CRLF line ends, through the blank line.
    pub fn header(&self, base: &str, path: &Path) -> std::io::Result<Arc<[u8]>> {
        let cached = self
            .headers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .by_base
            .get(base)
            .cloned();
        if let Some(h) = cached {
            return Ok(h);
        }
        let h: Arc<[u8]> = crate::maildir::read_header_crlf(path)?.into();
        if h.len() <= MAX_CACHED_HEADER {
            let mut c = self
                .headers
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if c.bytes + h.len() > HEADER_CACHE_BYTES {
                c.by_base.clear();
                c.bytes = 0;
            }
            c.bytes += h.len() + base.len();
            c.by_base.insert(base.to_string(), Arc::clone(&h));
        }
        Ok(h)
    }
}

/// A folder's last synchronised view and what it was read at.
#[derive(Debug)]
struct Cached {
    folder: uidlist::Folder,
    /// Bumped whenever a rescan found the folder different: sessions compare it
    /// with the version they last showed and skip all work when equal.
    version: u64,
    generation: u64,
    stamp: Stamp,
    /// The stamp is older than the rescan by more than the file system's time
    /// granularity, so any later change moves it (else the next sync rescans).
    trusted: bool,
}

/// What changes when a Maildir folder does: the modification times of `new/`
/// and `cur/` (a delivery, a flag change, an expunge all rename or create
/// there) and the UID list file's identity, size and time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp(Vec<(u64, i64, i64, u64)>);

/// Directory time stamps come from a coarse clock (one kernel tick): a view read
/// less than this after the newest stamp may miss a change in the same tick.
const RACY: Duration = Duration::from_millis(100);

impl Stamp {
    fn of(dir: &Path) -> Self {
        let one = |p: PathBuf| {
            std::fs::metadata(p)
                .map(|m| {
                    use std::os::unix::fs::MetadataExt;
                    (m.ino(), m.mtime(), m.mtime_nsec(), m.size())
                })
                .unwrap_or((0, 0, 0, 0))
        };
        Stamp(vec![
            one(dir.join("new")),
            one(dir.join("cur")),
            one(dir.join(uidlist::UIDLIST)),
        ])
    }

    /// Whether every time in the stamp is older than `started` by [`RACY`].
    fn settled_before(&self, started: std::time::SystemTime) -> bool {
        let Ok(at) = started.duration_since(std::time::UNIX_EPOCH) else {
            return false;
        };
        self.0.iter().all(|&(_, secs, nsec, _)| {
            let t = Duration::new(secs.max(0) as u64, nsec.clamp(0, 999_999_999) as u32);
            t + RACY < at
        })
    }
}

impl Registry {
    /// The slot of the folder at `dir`.
    pub fn slot(&self, dir: &Path) -> Arc<FolderSlot> {
        let mut m = self
            .folders
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(m.entry(dir.to_path_buf()).or_default())
    }

    /// Tell sessions watching `dir` that it changed.
    pub fn changed(&self, dir: &Path) {
        let slot = self
            .folders
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(dir)
            .cloned();
        if let Some(s) = slot {
            s.generation
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            s.notify.notify_waiters();
        }
    }

    /// Synchronise the folder at `dir` under its lock.
    pub fn sync(&self, dir: &Path) -> std::io::Result<uidlist::Folder> {
        self.sync_since(dir, u64::MAX)
            .map(|v| v.map(|(f, _)| f).unwrap_or_else(|| unreachable_view(dir)))
    }

    /// The folder at `dir` and its version, or `None` when its version is still
    /// `since` (nothing changed since the caller last looked). Reads the disk only
    /// when the folder may have changed: a change in this process
    /// ([`Registry::changed`]), a time stamp or the UID list moved, or the last
    /// read was too close to the stamps to trust them ([`RACY`]). With a large
    /// mailbox selected this is what every command pays (a NOOP was ~21 ms at
    /// 10,000 messages when each one rescanned the folder).
    pub fn sync_since(
        &self,
        dir: &Path,
        since: u64,
    ) -> std::io::Result<Option<(uidlist::Folder, u64)>> {
        use std::sync::atomic::Ordering;
        let slot = self.slot(dir);
        let _g = slot
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let generation = slot.generation.load(Ordering::Acquire);
        let stamp = Stamp::of(dir);
        let mut cache = slot
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = cache.as_ref() {
            if c.trusted && c.generation == generation && c.stamp == stamp {
                return Ok(view(c, since));
            }
        }
        let started = std::time::SystemTime::now();
        let folder = uidlist::Folder::sync(dir)?;
        let stamp = Stamp::of(dir);
        let version = match cache.as_ref() {
            Some(c) if c.folder == folder => c.version,
            Some(c) => c.version + 1,
            None => 1,
        };
        let trusted = stamp.settled_before(started);
        let c = cache.insert(Cached {
            folder,
            version,
            generation,
            stamp,
            trusted,
        });
        Ok(view(c, since))
    }
}

/// The cached folder, unless its version is `since`.
fn view(c: &Cached, since: u64) -> Option<(uidlist::Folder, u64)> {
    (c.version != since).then(|| (c.folder.clone(), c.version))
}

/// `sync_since(dir, u64::MAX)` always returns a view: versions start at 1 and
/// never reach `u64::MAX`.
fn unreachable_view(dir: &Path) -> uidlist::Folder {
    uidlist::Folder {
        dir: dir.to_path_buf(),
        uidvalidity: 0,
        uidnext: 1,
        msgs: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session's view is read again exactly when the folder changed: in this
    /// process (told through `changed`) or behind its back (time stamps), and an
    /// unchanged folder is not read at all once its stamps are settled.
    #[test]
    fn folders_are_read_again_only_when_they_changed() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let md = crate::maildir::maildir_path(root, "example.com", "a");
        crate::maildir::deliver(root, "example.com", "a", "h", b"S: 1\r\n\r\nx\r\n").unwrap();
        let reg = Registry::default();
        let (f, v1) = reg.sync_since(&md, 0).unwrap().unwrap();
        assert_eq!(f.msgs.len(), 1);
        assert_eq!(reg.sync_since(&md, v1).unwrap(), None, "nothing changed");
        // a delivery this process announces
        crate::maildir::deliver(root, "example.com", "a", "h", b"S: 2\r\n\r\nx\r\n").unwrap();
        reg.changed(&md);
        let (f, v2) = reg.sync_since(&md, v1).unwrap().unwrap();
        assert_eq!((f.msgs.len(), v2), (2, v1 + 1));
        // a change nobody announced (another process): the stamps move
        std::thread::sleep(RACY * 2);
        let (f, v2) = reg.sync_since(&md, 0).unwrap().unwrap();
        let c = reg.slot(&md);
        assert!(c.cache.lock().unwrap().as_ref().unwrap().trusted);
        std::fs::remove_file(f.path(&f.msgs[0])).unwrap();
        let (f, v3) = reg.sync_since(&md, v2).unwrap().unwrap();
        assert_eq!((f.msgs.len(), v3), (1, v2 + 1));
        assert_eq!(f.msgs[0].uid, 2);
        // the plain `sync` always answers
        assert_eq!(reg.sync(&md).unwrap().msgs.len(), 1);
    }
}
