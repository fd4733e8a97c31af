//! Safe file access beneath a site root.
//!
//! The site root (`<content_root>/<domain>/current`, a symlink the content-sync client
//! swaps) is opened fresh for every request, so a swap takes effect at once and a
//! request sees one release from start to end. Everything below it is opened with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`: the kernel refuses `..` that
//! climbs out, absolute symlinks, and symlinks whose target leaves the root, whatever
//! the path string looks like.
//!
//! [`RootCache`] keeps the site root open between requests and revalidates it with
//! one `readlinkat` of `current` per request (a one-component lookup), so a swap is
//! still seen by the very next request.
//!
//! These are plain blocking syscalls on a local file system (microseconds when the
//! metadata is cached); the server calls them inline, as nginx does, and moves only
//! large reads off the async threads.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

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

struct CachedRoot {
    site_dir: OwnedFd,
    target: CString,
    root: Arc<OwnedFd>,
}

/// A site's open root directory, revalidated against the `current` symlink on
/// every use. When `current` is not a symlink, every use opens it afresh.
#[derive(Default)]
pub struct RootCache {
    inner: Mutex<Option<CachedRoot>>,
}

impl std::fmt::Debug for RootCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootCache").finish_non_exhaustive()
    }
}

impl RootCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<CachedRoot>> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The root `<site_dir>/current` as the symlink points now.
    pub fn open(&self, site_dir: &Path) -> Result<Arc<OwnedFd>, OpenError> {
        if let Some(c) = self.lock().as_ref() {
            if let Ok(t) = rustix::fs::readlinkat(&c.site_dir, CURRENT, Vec::new()) {
                if t == c.target {
                    return Ok(c.root.clone());
                }
            }
        }
        let dir = rustix::fs::open(
            site_dir,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        // Read the link first, then open: the fd is never older than the target we
        // remember, so a swap in between is seen (and reopened) on the next use.
        let target = rustix::fs::readlinkat(&dir, CURRENT, Vec::new());
        let root = Arc::new(rustix::fs::openat(
            &dir,
            CURRENT,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?);
        *self.lock() = target.ok().map(|target| CachedRoot {
            site_dir: dir,
            target,
            root: root.clone(),
        });
        Ok(root)
    }

    /// Forget the cached root (e.g. its release directory was deleted).
    pub fn invalidate(&self) {
        *self.lock() = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_cache_follows_swaps() {
        let tmp = tempfile::tempdir().unwrap();
        for r in ["r1", "r2"] {
            std::fs::create_dir_all(tmp.path().join(r)).unwrap();
            std::fs::write(tmp.path().join(r).join("f"), r).unwrap();
        }
        std::os::unix::fs::symlink("r1", tmp.path().join("current")).unwrap();
        let cache = RootCache::default();
        let read = |fd: &OwnedFd| {
            let o = open_beneath(fd, "f").unwrap();
            std::fs::read_to_string(o.real_path().unwrap()).unwrap()
        };
        let a = cache.open(tmp.path()).unwrap();
        assert_eq!(read(&a), "r1");
        assert!(Arc::ptr_eq(&a, &cache.open(tmp.path()).unwrap()));
        std::os::unix::fs::symlink("r2", tmp.path().join("next")).unwrap();
        std::fs::rename(tmp.path().join("next"), tmp.path().join("current")).unwrap();
        assert_eq!(read(&cache.open(tmp.path()).unwrap()), "r2");
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
