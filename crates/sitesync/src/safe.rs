//! Confined filesystem access beneath a site root: every directory is opened with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)` and every final
//! name is used relative to its parent's descriptor without following it, so a symlink
//! planted in a site, or `..`, fails instead of leading out (as `role-files/src/safe_fs.rs`).

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use proto::sitesync::{Mtime, Node};
use rustix::fs::{openat, openat2, Mode, OFlags, ResolveFlags};

/// The longest name one directory entry may have (Linux `NAME_MAX`).
pub const NAME_MAX: usize = 255;

fn resolve() -> ResolveFlags {
    ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS
}

/// Opens a site root (a real directory, not a symlink).
pub fn open_root(path: &std::path::Path) -> io::Result<File> {
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok(File::from(fd))
}

/// Opens the directory `rel` (`""` = the root itself) beneath `root`, never through a symlink.
pub fn open_dir(root: &File, rel: &str) -> io::Result<File> {
    let rel = if rel.is_empty() { "." } else { rel };
    let fd = openat2(
        root.as_fd(),
        rel,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        resolve(),
    )?;
    Ok(File::from(fd))
}

/// Splits `a/b/c` into (`a/b`, `c`); the parent of a top-level name is `""`.
pub fn split(rel: &str) -> (&str, &str) {
    match rel.rfind('/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => ("", rel),
    }
}

/// Refuses names the filesystem cannot hold (over `NAME_MAX`) before any syscall.
pub fn check_names(rel: &str) -> io::Result<()> {
    if rel.split('/').any(|c| c.len() > NAME_MAX) {
        return Err(io::Error::from_raw_os_error(libc_enametoolong()));
    }
    Ok(())
}

fn libc_enametoolong() -> i32 {
    rustix::io::Errno::NAMETOOLONG.raw_os_error()
}

/// Opens the parent directory of `rel`; with `create`, missing directories are made
/// (mode 0755, returned with their paths so the caller can record them).
pub fn open_parent<'a>(
    root: &File,
    rel: &'a str,
    create: bool,
    created: &mut Vec<String>,
) -> io::Result<(File, &'a str)> {
    check_names(rel)?;
    let (parent, name) = split(rel);
    if !create || parent.is_empty() {
        return Ok((open_dir(root, parent)?, name));
    }
    let mut dir = open_dir(root, "")?;
    let mut so_far = String::new();
    for comp in parent.split('/') {
        if !so_far.is_empty() {
            so_far.push('/');
        }
        so_far.push_str(comp);
        dir = match open_dir(&dir, comp) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                match rustix::fs::mkdirat(dir.as_fd(), comp, Mode::from_raw_mode(0o755)) {
                    Ok(()) => {
                        set_mode(&dir, comp, 0o755)?;
                        dir.sync_all()?;
                        created.push(so_far.clone());
                    }
                    Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                open_dir(&dir, comp)?
            }
            Err(e) => return Err(e),
        };
    }
    Ok((dir, name))
}

/// What is at `rel` beneath `root`, without following a symlink, with the file's hash.
/// `None` when nothing (or only something that is not a file, directory or symlink) is there.
pub fn stat_node(root: &File, rel: &str) -> io::Result<Option<Node>> {
    let mut none = Vec::new();
    let (parent, name) = match open_parent(root, rel, false, &mut none) {
        Ok(p) => p,
        Err(e) if gone(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    stat_in(&parent, name, true)
}

/// Like [`stat_node`] for `name` in an open directory; `hash: false` leaves a file's hash
/// empty (a quick look by size, mode and mtime).
pub fn stat_in(parent: &File, name: &str, hash: bool) -> io::Result<Option<Node>> {
    let fd = match openat(
        parent.as_fd(),
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(e) if e == rustix::io::Errno::NOENT || e == rustix::io::Errno::NOTDIR => {
            return Ok(None)
        }
        Err(e) => return Err(e.into()),
    };
    let md = File::from(fd).metadata()?;
    let ft = md.file_type();
    if ft.is_symlink() {
        let t = rustix::fs::readlinkat(parent.as_fd(), name, Vec::new())?;
        let target = t
            .into_string()
            .map_err(|_| bad("symlink target is not UTF-8"))?;
        return Ok(Some(Node::Symlink { target }));
    }
    if ft.is_dir() {
        return Ok(Some(Node::Dir {
            mode: md.mode() & 0o777,
        }));
    }
    if !ft.is_file() {
        return Ok(None);
    }
    if !hash {
        return Ok(Some(file_node(&md, String::new())));
    }
    let mut f = match open_file_in(parent, name) {
        Ok(f) => f,
        Err(e) if gone(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let md = f.metadata()?;
    let (h, _) = copy_hashing(&mut f, &mut io::sink())?;
    Ok(Some(file_node(&md, h)))
}

/// Opens `name` in `parent` itself (a file or a directory; a symlink fails), so that its
/// mode and times are changed through the descriptor: a symlink the site's user swaps
/// in meanwhile cannot redirect a change made as root to a file outside the site.
pub fn open_nofollow(parent: &File, name: &str) -> io::Result<File> {
    let flags = OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = match openat(parent.as_fd(), name, OFlags::RDONLY | flags, Mode::empty()) {
        // an unreadable file (when not root): a write-only open, never truncating
        Err(rustix::io::Errno::ACCESS) => {
            openat(parent.as_fd(), name, OFlags::WRONLY | flags, Mode::empty())?
        }
        r => r?,
    };
    let f = File::from(fd);
    let ft = f.metadata()?.file_type();
    if !ft.is_file() && !ft.is_dir() {
        return Err(bad("not a file or directory"));
    }
    Ok(f)
}

/// Sets the permission bits (`& 0o777`) of `name` in `parent` without following a
/// symlink; returns the open file for further changes.
pub fn set_mode(parent: &File, name: &str, mode: u32) -> io::Result<File> {
    let f = open_nofollow(parent, name)?;
    rustix::fs::fchmod(&f, Mode::from_raw_mode(mode & 0o777))?;
    Ok(f)
}

/// Opens the regular file `name` in `parent` for reading, never through a symlink.
pub fn open_file_in(parent: &File, name: &str) -> io::Result<File> {
    let fd = openat(
        parent.as_fd(),
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let f = File::from(fd);
    if !f.metadata()?.is_file() {
        return Err(bad("not a regular file"));
    }
    Ok(f)
}

/// Opens the regular file `rel` beneath `root` for reading.
pub fn open_file(root: &File, rel: &str) -> io::Result<File> {
    let mut none = Vec::new();
    let (parent, name) = open_parent(root, rel, false, &mut none)?;
    open_file_in(&parent, name)
}

/// A file node from metadata and a hash.
pub fn file_node(md: &std::fs::Metadata, blake3: String) -> Node {
    Node::File {
        blake3,
        size: md.size(),
        mode: md.mode() & 0o777,
        mtime: Mtime {
            secs: md.mtime(),
            nanos: u32::try_from(md.mtime_nsec()).unwrap_or(0),
        },
    }
}

/// Copies `from` into `to`, returning the BLAKE3 (hex) and length of what was copied.
pub fn copy_hashing(from: &mut dyn Read, to: &mut dyn Write) -> io::Result<(String, u64)> {
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut n = 0u64;
    loop {
        let k = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..k]);
        to.write_all(&buf[..k])?;
        n += k as u64;
    }
    Ok((h.finalize().to_hex().to_string(), n))
}

/// Whether an error means "not there" (missing, or a parent that is not a directory).
pub fn gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(20)
}

/// An `InvalidInput` error with a message.
pub fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_string())
}

/// Lists the names in an open directory (not `.`/`..`), sorted.
pub fn list(dir: &File) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for e in rustix::fs::Dir::read_from(dir.as_fd())? {
        let e = e?;
        let name = e.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        match std::str::from_utf8(name) {
            Ok(s) => out.push(s.to_string()),
            Err(_) => tracing::warn!("sitesync: skipping a non-UTF-8 name"),
        }
    }
    out.sort();
    Ok(out)
}

/// Every path beneath `root` with its node (files hashed when `hash`), skipping this
/// crate's temp files and whatever `skip` says (local paths), never following a symlink.
pub fn walk(
    root: &File,
    hash: bool,
    skip: &dyn Fn(&str) -> bool,
) -> io::Result<std::collections::BTreeMap<String, Node>> {
    walk_with(root, skip, &mut |dir, name, _| stat_in(dir, name, hash))
}

/// What identifies a file's content without reading it: if none of these changed, the
/// content did not either (ctime and the inode cannot be set back by a writer), as a
/// git index trusts its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stamp {
    /// Size in bytes.
    pub size: u64,
    /// Modification time (seconds, nanoseconds).
    pub mtime: (i64, i64),
    /// Status change time (seconds, nanoseconds).
    pub ctime: (i64, i64),
    /// Device and inode.
    pub ino: (u64, u64),
    /// Permission bits.
    pub mode: u32,
}

impl Stamp {
    /// The stamp of `md`.
    pub fn of(md: &std::fs::Metadata) -> Stamp {
        Stamp {
            size: md.size(),
            mtime: (md.mtime(), md.mtime_nsec()),
            ctime: (md.ctime(), md.ctime_nsec()),
            ino: (md.dev(), md.ino()),
            mode: md.mode() & 0o777,
        }
    }
}

/// Like [`walk`] with hashes, but a file whose [`Stamp`] `known` holds with its hash is
/// not read again. Returns the nodes and, for each file, the stamp and hash found.
#[allow(clippy::type_complexity)]
pub fn walk_known(
    root: &File,
    skip: &dyn Fn(&str) -> bool,
    known: &dyn Fn(&str, &Stamp) -> Option<String>,
) -> io::Result<(
    std::collections::BTreeMap<String, Node>,
    std::collections::HashMap<String, (Stamp, String)>,
)> {
    let mut stamps = std::collections::HashMap::new();
    let nodes = walk_with(root, skip, &mut |dir, name, path| {
        let Some(quick) = stat_in(dir, name, false)? else {
            return Ok(None);
        };
        if !matches!(quick, Node::File { .. }) {
            return Ok(Some(quick));
        }
        let mut f = match open_file_in(dir, name) {
            Ok(f) => f,
            Err(e) if gone(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        let md = f.metadata()?;
        let stamp = Stamp::of(&md);
        let h = match known(path, &stamp) {
            Some(h) => h,
            None => copy_hashing(&mut f, &mut io::sink())?.0,
        };
        stamps.insert(path.to_string(), (stamp, h.clone()));
        Ok(Some(file_node(&md, h)))
    })?;
    Ok((nodes, stamps))
}

/// The walk itself: `node_of(dir, name, path)` says what each entry is (`None`: left out).
#[allow(clippy::type_complexity)]
fn walk_with(
    root: &File,
    skip: &dyn Fn(&str) -> bool,
    node_of: &mut dyn FnMut(&File, &str, &str) -> io::Result<Option<Node>>,
) -> io::Result<std::collections::BTreeMap<String, Node>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![String::new()];
    while let Some(rel) = stack.pop() {
        let dir = match open_dir(root, &rel) {
            Ok(d) => d,
            Err(e) if gone(&e) && !rel.is_empty() => continue,
            Err(e) => return Err(e),
        };
        for name in list(&dir)? {
            if name.starts_with(crate::apply::TMP_PREFIX) {
                continue;
            }
            let p = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            if skip(&p) {
                continue;
            }
            match node_of(&dir, &name, &p) {
                Ok(Some(n)) => {
                    if n.is_dir() {
                        stack.push(p.clone());
                    }
                    out.insert(p, n);
                }
                Ok(None) => {}
                Err(e) if gone(&e) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(out)
}

/// Equal as far as a stat tells (a file's hash is not looked at): how the hub and the
/// replicas decide, without reading content, that a path is unchanged.
pub(crate) fn quick_eq(a: &Node, b: &Node) -> bool {
    match (a, b) {
        (
            Node::File {
                size: s1,
                mode: m1,
                mtime: t1,
                ..
            },
            Node::File {
                size: s2,
                mode: m2,
                mtime: t2,
                ..
            },
        ) => s1 == s2 && m1 == m2 && t1 == t2,
        _ => a == b,
    }
}
