//! Safe file access beneath a site root.
//!
//! The site root (`<content_root>/<domain>/current`, a symlink: to the writable tree
//! `tree` for a replicated site, see [`crate::replicate::tree`], which never changes;
//! to a release folder that a deployment may swap otherwise) is resolved once per
//! request, so a request sees one release from start to end. Everything below it is
//! opened with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`: the kernel refuses `..` that
//! climbs out, absolute symlinks, and symlinks whose target leaves the root, whatever
//! the path string looks like.
//!
//! [`RootCache`] keeps the site root open between requests and revalidates it with
//! one `readlinkat` of `current` (a one-component lookup) when it was last checked
//! more than [`REVALIDATE_AFTER`] (1 ms) ago, so a swap is seen within a
//! millisecond without a syscall on every request.
//!
//! These are plain blocking syscalls on a local file system (microseconds when the
//! metadata is cached); the server calls them inline, as nginx does, and moves only
//! large reads off the async threads.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use rustix::fs::{Mode, OFlags, ResolveFlags, Stat};
use rustix::io::Errno;

/// What a path beneath the root is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// Anything else (FIFO, socket, device): never served.
    Other,
}

/// An open file or directory with its metadata.
#[derive(Debug)]
pub struct Opened {
    /// The open descriptor (read-only).
    pub fd: OwnedFd,
    /// `fstat` of it.
    pub stat: Stat,
}

impl Opened {
    /// Its kind.
    pub fn kind(&self) -> Kind {
        match rustix::fs::FileType::from_raw_mode(self.stat.st_mode) {
            rustix::fs::FileType::RegularFile => Kind::File,
            rustix::fs::FileType::Directory => Kind::Dir,
            _ => Kind::Other,
        }
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        u64::try_from(self.stat.st_size).unwrap_or(0)
    }

    /// The real path of the open file (via `/proc/self/fd`, read, never traversed):
    /// what PHP-FPM is given as `SCRIPT_FILENAME`, pinned to the release this request
    /// opened.
    pub fn real_path(&self) -> std::io::Result<PathBuf> {
        use std::os::fd::AsRawFd;
        std::fs::read_link(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }
}

/// How opening beneath the root failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// No such file (or a path component is not a directory).
    NotFound,
    /// The path would leave the root (symlink escape) or loops.
    Escape,
    /// Permission denied by the file system.
    Denied,
    /// Another error (the errno).
    Other(Errno),
}

impl From<Errno> for OpenError {
    fn from(e: Errno) -> Self {
        match e {
            Errno::NOENT | Errno::NOTDIR | Errno::NAMETOOLONG => OpenError::NotFound,
            Errno::XDEV | Errno::LOOP => OpenError::Escape,
            Errno::ACCESS | Errno::PERM => OpenError::Denied,
            other => OpenError::Other(other),
        }
    }
}

/// Open the site root directory (following the `current` symlink).
pub fn open_root(root: &Path) -> Result<OwnedFd, OpenError> {
    Ok(rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Open `rel` (segments joined by `/`, empty for the root itself) beneath `root`
/// read-only, and `fstat` it. Non-blocking open, so a planted FIFO cannot hang us.
pub fn open_beneath(root: impl AsFd, rel: &str) -> Result<Opened, OpenError> {
    let rel = if rel.is_empty() { "." } else { rel };
    let fd = rustix::fs::openat2(
        root,
        rel,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    )?;
    let stat = rustix::fs::fstat(&fd)?;
    Ok(Opened { fd, stat })
}

/// The name of the symlink (or directory) served inside a site's directory.
pub const CURRENT: &str = "current";

/// How long a validated root is trusted before `current` is read again. A content
/// swap is seen by every request that starts this long after it (the sync client
/// swaps at most a few times per second; nginx's `open_file_cache_valid` is 60 s).
pub const REVALIDATE_AFTER: Duration = Duration::from_millis(1);

struct CachedRoot {
    /// Holds one slot of [`MAX_CACHED_ROOTS`] while cached.
    _slot: RootSlot,
    site_dir: OwnedFd,
    target: CString,
    root: Arc<OwnedFd>,
    /// Unique per opened root, process-wide (see [`Root::id`]).
    id: u64,
    /// When `current` was last seen pointing at `target` (see [`monotonic_ns`]).
    checked_ns: AtomicU64,
}

/// Most site roots kept open at once, process-wide (each holds two descriptors). A
/// web server with more sites serves the others with a fresh open per request
/// (three syscalls): holding two descriptors for every site ever served ran out of
/// descriptors at 10,000 sites.
const MAX_CACHED_ROOTS: usize = 4_096;

/// Cached roots now held (see [`MAX_CACHED_ROOTS`]).
static CACHED_ROOTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// One of the process's [`MAX_CACHED_ROOTS`] slots, given back on drop.
struct RootSlot;

impl RootSlot {
    /// A slot if fewer than `limit` are taken.
    fn take(limit: usize) -> Option<Self> {
        CACHED_ROOTS
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| RootSlot)
    }
}

impl Drop for RootSlot {
    fn drop(&mut self) {
        CACHED_ROOTS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A site root as [`RootCache::open`] gives it.
#[derive(Debug, Clone)]
pub struct Root {
    /// The open root directory (`O_PATH`).
    pub fd: Arc<OwnedFd>,
    /// Names this very opened root, never reused in the process; 0 when `current`
    /// is not a symlink or [`MAX_CACHED_ROOTS`] roots are held already (the root is
    /// reopened on every use and has no identity).
    /// What is known of paths beneath it may be cached under this id.
    pub id: u64,
}

/// Nanoseconds since the first call (a cheap monotonic clock: vDSO, no syscall).
pub(crate) fn monotonic_ns() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// A site's open root directory, revalidated against the `current` symlink when
/// last checked more than [`REVALIDATE_AFTER`] ago. When `current` is not a
/// symlink, every use opens it afresh. Lock-free on the hit path: server threads
/// never wait for each other here.
pub struct RootCache {
    inner: ArcSwapOption<CachedRoot>,
    revalidate_ns: u64,
    /// The site's document root (issue 15): a folder beneath `current` that is
    /// the root served, opened with `RESOLVE_BENEATH` (a symlink cannot make it
    /// leave the tree); `None`: `current` itself.
    docroot: Option<String>,
}

impl Default for RootCache {
    fn default() -> Self {
        Self::with_revalidation(REVALIDATE_AFTER)
    }
}

impl std::fmt::Debug for RootCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootCache")
            .field("revalidate_ns", &self.revalidate_ns)
            .finish_non_exhaustive()
    }
}

impl RootCache {
    /// A cache that trusts a validated root for `after` (zero: check every use).
    pub fn with_revalidation(after: Duration) -> Self {
        Self {
            inner: ArcSwapOption::const_empty(),
            revalidate_ns: u64::try_from(after.as_nanos()).unwrap_or(u64::MAX),
            docroot: None,
        }
    }

    /// A cache whose root is the folder `docroot` beneath `current` (a normalised
    /// relative path), or `current` itself for `None`. A document root that does
    /// not exist (yet) is [`OpenError::NotFound`], never the tree above it.
    pub fn with_docroot(docroot: Option<String>) -> Self {
        Self {
            docroot,
            ..Self::default()
        }
    }

    /// The root `<site_dir>/current` as the symlink points now (or at most
    /// [`REVALIDATE_AFTER`] ago).
    pub fn open(&self, site_dir: &Path) -> Result<Root, OpenError> {
        if let Some(c) = self.inner.load().as_ref() {
            let hit = || Root {
                fd: c.root.clone(),
                id: c.id,
            };
            let now = monotonic_ns();
            if now.saturating_sub(c.checked_ns.load(Ordering::Relaxed)) < self.revalidate_ns {
                return Ok(hit());
            }
            if let Ok(t) = rustix::fs::readlinkat(&c.site_dir, CURRENT, Vec::new()) {
                if t == c.target {
                    c.checked_ns.store(now, Ordering::Relaxed);
                    return Ok(hit());
                }
            }
        }
        let checked = monotonic_ns();
        let dir = rustix::fs::open(
            site_dir,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        // Read the link first, then open: the fd is never older than the target we
        // remember, so a swap in between is seen (and reopened) on the next check.
        let target = rustix::fs::readlinkat(&dir, CURRENT, Vec::new());
        let current = rustix::fs::openat(
            &dir,
            CURRENT,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let root = Arc::new(match &self.docroot {
            None => current,
            Some(d) => rustix::fs::openat2(
                &current,
                d.as_str(),
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
            )?,
        });
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        // Give back this site's own slot before asking for one, so a site whose
        // release was swapped keeps its place when every slot is taken.
        self.inner.store(None);
        let cached = target
            .ok()
            .and_then(|t| RootSlot::take(MAX_CACHED_ROOTS).map(|slot| (t, slot)))
            .map(|(target, _slot)| CachedRoot {
                _slot,
                site_dir: dir,
                target,
                root: root.clone(),
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                checked_ns: AtomicU64::new(checked),
            });
        let id = cached.as_ref().map_or(0, |c| c.id);
        self.inner.store(cached.map(Arc::new));
        Ok(Root { fd: root, id })
    }

    /// Forget the cached root (e.g. its release directory was deleted).
    pub fn invalidate(&self) {
        self.inner.store(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_slots_are_bounded_and_given_back() {
        assert!(RootSlot::take(0).is_none(), "no slot over the limit");
        let slot = RootSlot::take(usize::MAX).expect("a slot under the limit");
        let held = CACHED_ROOTS.load(Ordering::Acquire);
        assert!(held >= 1);
        drop(slot);
    }

    #[test]
    fn root_cache_follows_swaps() {
        let tmp = tempfile::tempdir().unwrap();
        for r in ["r1", "r2"] {
            std::fs::create_dir_all(tmp.path().join(r)).unwrap();
            std::fs::write(tmp.path().join(r).join("f"), r).unwrap();
        }
        std::os::unix::fs::symlink("r1", tmp.path().join("current")).unwrap();
        let cache = RootCache::with_revalidation(Duration::ZERO);
        let read = |fd: &OwnedFd| {
            let o = open_beneath(fd, "f").unwrap();
            std::fs::read_to_string(o.real_path().unwrap()).unwrap()
        };
        let a = cache.open(tmp.path()).unwrap();
        assert_eq!(read(&a.fd), "r1");
        let again = cache.open(tmp.path()).unwrap();
        assert!(Arc::ptr_eq(&a.fd, &again.fd));
        assert_eq!(a.id, again.id);
        assert_ne!(a.id, 0);
        std::os::unix::fs::symlink("r2", tmp.path().join("next")).unwrap();
        std::fs::rename(tmp.path().join("next"), tmp.path().join("current")).unwrap();
        let b = cache.open(tmp.path()).unwrap();
        assert_eq!(read(&b.fd), "r2");
        assert_ne!(b.id, a.id, "a new root gets a new id");
    }

    #[test]
    fn root_cache_trusts_a_validated_root_for_the_window_only() {
        let tmp = tempfile::tempdir().unwrap();
        for r in ["r1", "r2"] {
            std::fs::create_dir_all(tmp.path().join(r)).unwrap();
        }
        std::os::unix::fs::symlink("r1", tmp.path().join("current")).unwrap();
        let cache = RootCache::with_revalidation(Duration::from_millis(200));
        let name = |fd: &OwnedFd| {
            use std::os::fd::AsRawFd;
            std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap()
        };
        assert!(name(&cache.open(tmp.path()).unwrap().fd).ends_with("r1"));
        std::os::unix::fs::symlink("r2", tmp.path().join("next")).unwrap();
        std::fs::rename(tmp.path().join("next"), tmp.path().join("current")).unwrap();
        // Within the window the validated root is still used (no syscall)…
        assert!(name(&cache.open(tmp.path()).unwrap().fd).ends_with("r1"));
        // …and after it the swap is seen.
        std::thread::sleep(Duration::from_millis(250));
        assert!(name(&cache.open(tmp.path()).unwrap().fd).ends_with("r2"));
    }

    #[test]
    fn a_docroot_is_the_root_and_cannot_leave_the_tree() {
        let tmp = tempfile::tempdir().unwrap();
        let tree = tmp.path().join("tree");
        std::fs::create_dir_all(tree.join("public/css")).unwrap();
        std::fs::create_dir_all(tree.join("vendor")).unwrap();
        std::fs::write(tree.join(".env"), b"SECRET=1").unwrap();
        std::fs::write(tree.join("public/index.html"), b"hi").unwrap();
        std::os::unix::fs::symlink("../vendor", tree.join("public/v")).unwrap();
        std::os::unix::fs::symlink("tree", tmp.path().join("current")).unwrap();
        let cache = RootCache::with_docroot(Some("public".into()));
        let root = cache.open(tmp.path()).unwrap();
        assert_eq!(open_beneath(&*root.fd, "index.html").unwrap().size(), 2);
        assert_eq!(
            open_beneath(&*root.fd, "../.env").unwrap_err(),
            OpenError::Escape
        );
        assert_eq!(open_beneath(&*root.fd, "v").unwrap_err(), OpenError::Escape);
        assert_eq!(
            open_beneath(&*root.fd, ".env").unwrap_err(),
            OpenError::NotFound
        );
        // Missing, a file, or a symlink out of the tree: no root at all.
        let missing = RootCache::with_docroot(Some("web".into()));
        assert_eq!(missing.open(tmp.path()).unwrap_err(), OpenError::NotFound);
        let file = RootCache::with_docroot(Some(".env".into()));
        assert_eq!(file.open(tmp.path()).unwrap_err(), OpenError::NotFound);
        std::os::unix::fs::symlink("/etc", tree.join("etc")).unwrap();
        let out = RootCache::with_docroot(Some("etc".into()));
        assert_eq!(out.open(tmp.path()).unwrap_err(), OpenError::Escape);
        std::os::unix::fs::symlink("../..", tree.join("up")).unwrap();
        let up = RootCache::with_docroot(Some("up".into()));
        assert_eq!(up.open(tmp.path()).unwrap_err(), OpenError::Escape);
    }

    #[test]
    fn escapes_are_refused_by_the_kernel() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("site");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/a.txt"), b"a").unwrap();
        std::fs::write(tmp.path().join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../secret", root.join("up")).unwrap();
        std::os::unix::fs::symlink("sub/a.txt", root.join("inside")).unwrap();
        let fd = open_root(&root).unwrap();
        assert_eq!(open_beneath(&fd, "sub/a.txt").unwrap().kind(), Kind::File);
        assert_eq!(open_beneath(&fd, "").unwrap().kind(), Kind::Dir);
        assert_eq!(open_beneath(&fd, "inside").unwrap().size(), 1);
        assert_eq!(open_beneath(&fd, "abs").unwrap_err(), OpenError::Escape);
        assert_eq!(open_beneath(&fd, "up").unwrap_err(), OpenError::Escape);
        assert_eq!(
            open_beneath(&fd, "../secret").unwrap_err(),
            OpenError::Escape
        );
        assert_eq!(
            open_beneath(&fd, "/etc/passwd").unwrap_err(),
            OpenError::Escape
        );
        assert_eq!(open_beneath(&fd, "nope").unwrap_err(), OpenError::NotFound);
        assert_eq!(
            open_beneath(&fd, "sub/a.txt/x").unwrap_err(),
            OpenError::NotFound
        );
    }
}
