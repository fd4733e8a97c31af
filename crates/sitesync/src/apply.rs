//! Applying one change to a tree, safely, on the hub and on replicas alike: every path is
//! opened beneath the root without following symlinks ([`crate::safe`]); file content goes
//! to a temp file in the target's directory, is fsynced, gets its mode (never setuid,
//! setgid or sticky), exact mtime and owner, and is renamed over the target, then the
//! directory is fsynced: a reader sees the old file or the new one, never a torn one.
//! A directory rename is one rename; a symlink is made only when its target stays inside
//! the site; a directory is deleted only when empty (anything in it the change did not
//! know about makes it a conflict, [`ApplyError::NotEmpty`]).

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};

use proto::sitesync::{Change, Mtime, Node, Op};
use rustix::fs::{AtFlags, Mode, OFlags, Timespec, Timestamps, UTIME_OMIT};

use crate::safe;

static TMP: AtomicU64 = AtomicU64::new(0);

/// The owner a replica gives what it writes: the site's user, looked up by name on this
/// server (uids differ between servers). Ignored when not running as root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// The site user's uid here.
    pub uid: u32,
    /// The site user's gid here.
    pub gid: u32,
}

/// Why a change could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// A directory to delete holds entries the change did not know about.
    #[error("directory {0} is not empty")]
    NotEmpty(String),
    /// A symlink whose target would leave the site.
    #[error("symlink {0} points outside the site")]
    SymlinkEscapes(String),
    /// The content read does not match the node's hash or size.
    #[error("content of {0} does not match its hash")]
    Corrupt(String),
    /// The path to rename or change is not there.
    #[error("{0} is not there")]
    Missing(String),
    /// A put needs content and none was given.
    #[error("no content for {0}")]
    NoContent(String),
    /// Something else at the path (a file where a directory is, a name over `NAME_MAX`,
    /// a symlink in the way, disk full, …).
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        source: io::Error,
    },
}

fn io_at(path: &str) -> impl FnOnce(io::Error) -> ApplyError + '_ {
    move |source| ApplyError::Io {
        path: path.to_string(),
        source,
    }
}

/// Applies `change` beneath `root`. `content` is a put file's bytes (checked against the
/// node's hash and size). Returns the directories that had to be created (mode 0755) so
/// the caller's index can record them.
pub fn apply(
    root: &File,
    change: &Change,
    content: Option<&mut dyn Read>,
    owner: Option<Owner>,
) -> Result<Vec<String>, ApplyError> {
    let path = change.path.as_str();
    let mut created = Vec::new();
    match &change.op {
        Op::Put { node } => {
            let (dir, name) =
                safe::open_parent(root, path, true, &mut created).map_err(io_at(path))?;
            put(&dir, path, name, node, content, owner)?;
        }
        Op::Delete => {
            let (dir, name) = match safe::open_parent(root, path, false, &mut created) {
                Ok(p) => p,
                Err(e) if safe::gone(&e) => return Ok(created),
                Err(e) => return Err(io_at(path)(e)),
            };
            delete(&dir, path, name)?;
        }
        Op::Rename { to, .. } => {
            let (from_dir, from_name) =
                safe::open_parent(root, path, false, &mut created).map_err(io_at(path))?;
            if safe::stat_in(&from_dir, from_name, false)
                .map_err(io_at(path))?
                .is_none()
            {
                return Err(ApplyError::Missing(path.to_string()));
            }
            let (to_dir, to_name) =
                safe::open_parent(root, to, true, &mut created).map_err(io_at(to))?;
            rustix::fs::renameat(from_dir.as_fd(), from_name, to_dir.as_fd(), to_name)
                .map_err(|e| io_at(to)(e.into()))?;
            to_dir.sync_all().map_err(io_at(to))?;
            from_dir.sync_all().map_err(io_at(path))?;
        }
        Op::Meta { mode, mtime } => {
            let (dir, name) =
                safe::open_parent(root, path, false, &mut created).map_err(io_at(path))?;
            match safe::stat_in(&dir, name, false).map_err(io_at(path))? {
                None => return Err(ApplyError::Missing(path.to_string())),
                Some(Node::Symlink { .. }) => {}
                Some(_) => {
                    let f = safe::set_mode(&dir, name, *mode).map_err(io_at(path))?;
                    if let Some(m) = mtime {
                        rustix::fs::futimens(&f, &times(*m)).map_err(|e| io_at(path)(e.into()))?;
                    }
                }
            }
            dir.sync_all().map_err(io_at(path))?;
        }
    }
    Ok(created)
}

fn put(
    dir: &File,
    path: &str,
    name: &str,
    node: &Node,
    content: Option<&mut dyn Read>,
    owner: Option<Owner>,
) -> Result<(), ApplyError> {
    let existing = safe::stat_in(dir, name, false).map_err(io_at(path))?;
    match node {
        Node::Dir { mode } => {
            match existing {
                Some(Node::Dir { .. }) => {}
                Some(_) => {
                    return Err(io_at(path)(io::Error::from_raw_os_error(
                        rustix::io::Errno::EXIST.raw_os_error(),
                    )))
                }
                None => rustix::fs::mkdirat(dir.as_fd(), name, Mode::from_raw_mode(0o700))
                    .map_err(|e| io_at(path)(e.into()))?,
            }
            let d = safe::set_mode(dir, name, *mode).map_err(io_at(path))?;
            if let Some(o) = owner.filter(|_| is_root()) {
                rustix::fs::fchown(
                    &d,
                    Some(rustix::fs::Uid::from_raw(o.uid)),
                    Some(rustix::fs::Gid::from_raw(o.gid)),
                )
                .map_err(|e| io_at(path)(e.into()))?;
            }
        }
        Node::Symlink { target } => {
            if existing.as_ref().is_some_and(Node::is_dir) {
                return Err(io_at(path)(io::Error::from_raw_os_error(
                    rustix::io::Errno::ISDIR.raw_os_error(),
                )));
            }
            if !symlink_stays_inside(path, target) {
                return Err(ApplyError::SymlinkEscapes(path.to_string()));
            }
            let tmp = tmp_name();
            rustix::fs::symlinkat(target.as_str(), dir.as_fd(), tmp.as_str())
                .map_err(|e| io_at(path)(e.into()))?;
            if let Err(e) = chown_at(dir, &tmp, owner).and_then(|()| {
                rustix::fs::renameat(dir.as_fd(), &tmp, dir.as_fd(), name).map_err(Into::into)
            }) {
                let _ = rustix::fs::unlinkat(dir.as_fd(), tmp.as_str(), AtFlags::empty());
                return Err(io_at(path)(e));
            }
        }
        Node::File {
            blake3,
            size,
            mode,
            mtime,
        } => {
            if existing.as_ref().is_some_and(Node::is_dir) {
                return Err(io_at(path)(io::Error::from_raw_os_error(
                    rustix::io::Errno::ISDIR.raw_os_error(),
                )));
            }
            let content = content.ok_or_else(|| ApplyError::NoContent(path.to_string()))?;
            let tmp = tmp_name();
            let result = write_tmp(dir, &tmp, content, *mode, *mtime, owner).map_err(io_at(path));
            let result = result.and_then(|(h, n)| {
                if &h != blake3 || n != *size {
                    return Err(ApplyError::Corrupt(path.to_string()));
                }
                rustix::fs::renameat(dir.as_fd(), tmp.as_str(), dir.as_fd(), name)
                    .map_err(|e| io_at(path)(e.into()))
            });
            if let Err(e) = result {
                let _ = rustix::fs::unlinkat(dir.as_fd(), tmp.as_str(), AtFlags::empty());
                return Err(e);
            }
        }
    }
    dir.sync_all().map_err(io_at(path))
}

fn write_tmp(
    dir: &File,
    tmp: &str,
    content: &mut dyn Read,
    mode: u32,
    mtime: Mtime,
    owner: Option<Owner>,
) -> io::Result<(String, u64)> {
    let fd = rustix::fs::openat(
        dir.as_fd(),
        tmp,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?;
    let mut f = File::from(fd);
    let (h, n) = safe::copy_hashing(content, &mut f)?;
    if let Some(o) = owner.filter(|_| is_root()) {
        rustix::fs::fchown(
            &f,
            Some(rustix::fs::Uid::from_raw(o.uid)),
            Some(rustix::fs::Gid::from_raw(o.gid)),
        )?;
    }
    rustix::fs::fchmod(&f, Mode::from_raw_mode(mode & 0o777))?;
    rustix::fs::futimens(&f, &times(mtime))?;
    f.sync_all()?;
    Ok((h, n))
}

fn delete(dir: &File, path: &str, name: &str) -> Result<(), ApplyError> {
    match safe::stat_in(dir, name, false).map_err(io_at(path))? {
        None => return Ok(()),
        Some(Node::Dir { .. }) => {
            match rustix::fs::unlinkat(dir.as_fd(), name, AtFlags::REMOVEDIR) {
                Ok(()) => {}
                Err(rustix::io::Errno::NOTEMPTY) | Err(rustix::io::Errno::EXIST) => {
                    return Err(ApplyError::NotEmpty(path.to_string()))
                }
                Err(e) => return Err(io_at(path)(e.into())),
            }
        }
        Some(_) => rustix::fs::unlinkat(dir.as_fd(), name, AtFlags::empty())
            .map_err(|e| io_at(path)(e.into()))?,
    }
    dir.sync_all().map_err(io_at(path))
}

fn times(m: Mtime) -> Timestamps {
    Timestamps {
        last_access: Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_OMIT,
        },
        last_modification: Timespec {
            tv_sec: m.secs,
            tv_nsec: m.nanos.into(),
        },
    }
}

fn chown_at(dir: &File, name: &str, owner: Option<Owner>) -> io::Result<()> {
    if let Some(o) = owner.filter(|_| is_root()) {
        rustix::fs::chownat(
            dir.as_fd(),
            name,
            Some(rustix::fs::Uid::from_raw(o.uid)),
            Some(rustix::fs::Gid::from_raw(o.gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
    }
    Ok(())
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The prefix of every temp file this crate makes in a site tree (capture and the
/// replica ignore such names).
pub const TMP_PREFIX: &str = ".sitesync.";

fn tmp_name() -> String {
    // The target's name is not part of it, so it fits beside any name.
    format!(
        "{TMP_PREFIX}{}.{}.tmp",
        std::process::id(),
        TMP.fetch_add(1, Ordering::Relaxed)
    )
}

/// Whether a symlink at `path` with `target` resolves (lexically, against the link's
/// directory) to somewhere inside the site: absolute targets and `..` climbing above the
/// root are refused.
pub fn symlink_stays_inside(path: &str, target: &str) -> bool {
    if target.is_empty() || target.starts_with('/') || target.contains('\0') {
        return false;
    }
    let (parent, _) = safe::split(path);
    let mut stack: Vec<&str> = parent.split('/').filter(|c| !c.is_empty()).collect();
    for comp in target.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                if stack.pop().is_none() {
                    return false;
                }
            }
            c => stack.push(c),
        }
    }
    true
}

#[cfg(test)]
mod tests;
