//! The mailbox store: Maildir++ under `<state_dir>/mail/<domain>/<local>/Maildir`
//! with `tmp/`, `new/`, `cur/`. Delivery writes to `tmp/`, fsyncs the file, renames
//! it into `new/` and fsyncs `new/` before anyone is told the mail is accepted.
//! File names follow the Maildir spec (`<secs>.M<usec>P<pid>Q<n>.<host>`) with the
//! Maildir++ / Dovecot size fields `,S=<bytes on disk>,W=<bytes with CRLF>` so quota
//! and POP3 sizes need no file reads. Messages are stored with LF line ends, as
//! standard tools (mutt, Dovecot, Python's `mailbox`) expect.
//!
//! Domain and local part come only from the rendered [`crate::plan::Plan`], whose
//! render refuses anything with `/`, `..` or a leading dot; delivery additionally
//! walks the tree with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, so a
//! symlink planted in the tree cannot redirect a write outside it.

use std::fs::{self, File};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::fs::{fsync, mkdirat, openat2, renameat, AtFlags, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

static SEQ: AtomicU64 = AtomicU64::new(0);

/// The `Maildir` directory of `local@domain`.
pub fn maildir_path(root: &Path, domain: &str, local: &str) -> PathBuf {
    root.join("mail").join(domain).join(local).join("Maildir")
}

/// Create `tmp`, `new` and `cur` (idempotent).
pub fn ensure(maildir: &Path) -> std::io::Result<()> {
    for sub in ["tmp", "new", "cur"] {
        fs::create_dir_all(maildir.join(sub))?;
    }
    Ok(())
}

/// A unique base name per the Maildir spec.
pub fn unique_name(host: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let host: String = host
        .chars()
        .map(|c| match c {
            '/' => '\\',
            ':' => '_',
            c => c,
        })
        .collect();
    format!(
        "{}.M{}P{}Q{}.{}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed),
        host
    )
}

/// `message` (CRLF line ends) with LF line ends.
pub fn to_lf(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len());
    let mut i = 0;
    while i < message.len() {
        if message[i] == b'\r' && message.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(message[i]);
        i += 1;
    }
    out
}

fn resolve_beneath() -> ResolveFlags {
    ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS
}

/// Open (creating if needed) the directory `name` beneath `parent`, never
/// following a symlink or leaving `parent`.
fn open_dir(parent: &OwnedFd, name: &str) -> std::io::Result<OwnedFd> {
    let flags = OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC;
    match openat2(parent, name, flags, Mode::empty(), resolve_beneath()) {
        Ok(fd) => return Ok(fd),
        Err(Errno::NOENT) => {}
        Err(e) => return Err(e.into()),
    }
    match mkdirat(parent, name, Mode::from_raw_mode(0o700)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(openat2(
        parent,
        name,
        flags,
        Mode::empty(),
        resolve_beneath(),
    )?)
}

/// Deliver `message` (CRLF line ends) durably into the Maildir of `local@domain`
/// under `root/mail` (every step opened with `openat2(RESOLVE_BENEATH |
/// RESOLVE_NO_SYMLINKS)`); returns the file name.
pub fn deliver(
    root: &Path,
    domain: &str,
    local: &str,
    host: &str,
    message: &[u8],
) -> std::io::Result<String> {
    let base = root.join("mail");
    fs::create_dir_all(&base)?;
    let mut dir = rustix::fs::open(
        &base,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    for component in [domain, local, "Maildir"] {
        dir = open_dir(&dir, component)?;
    }
    let tmp = open_dir(&dir, "tmp")?;
    let new = open_dir(&dir, "new")?;
    open_dir(&dir, "cur")?;
    let body = to_lf(message);
    let name = format!("{},S={},W={}", unique_name(host), body.len(), message.len());
    let fd = openat2(
        &tmp,
        name.as_str(),
        OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
        resolve_beneath(),
    )?;
    let result = (|| {
        let mut f = File::from(fd);
        f.write_all(&body)?;
        f.sync_all()?;
        drop(f);
        renameat(&tmp, name.as_str(), &new, name.as_str())?;
        fsync(&new)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = rustix::fs::unlinkat(&tmp, name.as_str(), AtFlags::empty());
    }
    result.map(|()| name)
}

/// A size field (`,S=` or `,W=`) of a Maildir++ file name.
pub fn name_field(name: &str, key: &str) -> Option<u64> {
    let base = name.split(':').next().unwrap_or(name);
    base.split(',')
        .skip(1)
        .find_map(|f| f.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
}

/// Bytes used by the mailbox (`new` and `cur` of INBOX and of every Maildir++
/// folder `.Name` that IMAP clients create), from the names' `S=` or file sizes.
pub fn usage(maildir: &Path) -> std::io::Result<u64> {
    let mut total = folder_usage(maildir)?;
    if let Ok(entries) = fs::read_dir(maildir) {
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.')
                && name != "."
                && name != ".."
                && e.file_type().is_ok_and(|t| t.is_dir())
            {
                total += folder_usage(&e.path())?;
            }
        }
    }
    Ok(total)
}

fn folder_usage(maildir: &Path) -> std::io::Result<u64> {
    let mut total = 0u64;
    for sub in ["new", "cur"] {
        let dir = match fs::read_dir(maildir.join(sub)) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in dir {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            total += match name_field(&name, "S") {
                Some(s) => s,
                None => entry.metadata().map(|m| m.len()).unwrap_or(0),
            };
        }
    }
    Ok(total)
}

/// One message of a mailbox as POP3 sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path of the file (in `cur/`).
    pub path: PathBuf,
    /// Unique id: the base name before the flags.
    pub uid: String,
    /// Size in octets with CRLF line ends.
    pub size: u64,
}

/// Move `new/` into `cur/` (flag-less `:2,`) and list `cur/`, oldest first.
pub fn take_listing(maildir: &Path) -> std::io::Result<Vec<Entry>> {
    ensure(maildir)?;
    let new = maildir.join("new");
    let cur = maildir.join("cur");
    let mut moved = false;
    for entry in fs::read_dir(&new)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        fs::rename(new.join(&name), cur.join(format!("{name}:2,")))?;
        moved = true;
    }
    if moved {
        durable::sync_dir(&cur)?;
        durable::sync_dir(&new)?;
    }
    let mut out = Vec::new();
    for entry in fs::read_dir(&cur)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let uid = name.split([':', ',']).next().unwrap_or(&name).to_string();
        let size = match name_field(&name, "W") {
            Some(w) => w,
            None => crlf_size(&entry.path())?,
        };
        out.push(Entry {
            path: entry.path(),
            uid,
            size,
        });
    }
    out.sort_by_key(|e| order_key(&e.uid));
    Ok(out)
}

/// Delivery order of a unique name: seconds, microseconds, then the rest.
fn order_key(uid: &str) -> (u64, u64, String) {
    let (secs, rest) = uid.split_once('.').unwrap_or((uid, ""));
    let usec = rest
        .strip_prefix('M')
        .and_then(|r| r.split('P').next())
        .and_then(|u| u.parse().ok())
        .unwrap_or(0);
    (secs.parse().unwrap_or(0), usec, uid.to_string())
}

fn crlf_size(path: &Path) -> std::io::Result<u64> {
    let data = fs::read(path)?;
    let lf = data.iter().filter(|&&b| b == b'\n').count() as u64;
    let cr = data.windows(2).filter(|w| w == b"\r\n").count() as u64;
    Ok(data.len() as u64 + lf - cr)
}

/// Read a stored message back with CRLF line ends.
pub fn read_crlf(path: &Path) -> std::io::Result<Vec<u8>> {
    Ok(read_crlf_bytes(&fs::read(path)?))
}

/// The header of the message at `path`, through its blank line, with CRLF line
/// ends: what ENVELOPE needs, without reading (or parsing) a large body.
pub fn read_header_crlf(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut f = fs::File::open(path)?;
    let mut data = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = f.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        let from = data.len().saturating_sub(2);
        data.extend_from_slice(&chunk[..n]);
        if let Some(end) = header_end(&data[from..]) {
            data.truncate(from + end);
            break;
        }
    }
    Ok(read_crlf_bytes(&data))
}

/// Where the header of `d` ends: just after its first empty line (LF or CRLF).
fn header_end(d: &[u8]) -> Option<usize> {
    (0..d.len()).find_map(|i| match (d[i], d.get(i + 1), d.get(i + 2)) {
        (b'\n', Some(b'\n'), _) => Some(i + 2),
        (b'\n', Some(b'\r'), Some(b'\n')) => Some(i + 3),
        _ => None,
    })
}

/// `data` (LF or mixed line ends) with CRLF line ends.
pub fn read_crlf_bytes(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 40);
    let mut prev = 0u8;
    for &b in data {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

/// Remove messages; returns how many could not be removed.
pub fn remove(paths: &[&Path]) -> usize {
    let mut failed = 0;
    let mut dirs = std::collections::BTreeSet::new();
    for p in paths {
        if fs::remove_file(p).is_err() {
            failed += 1;
        } else if let Some(d) = p.parent() {
            dirs.insert(d.to_path_buf());
        }
    }
    for d in dirs {
        if let Ok(f) = File::open(&d) {
            let _ = f.sync_all();
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_only_read_stops_at_the_blank_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m");
        let long = "x".repeat(20_000);
        for (file, want) in [
            (
                format!("Subject: a\n\n{long}\n"),
                "Subject: a\r\n\r\n".to_string(),
            ),
            (
                format!("Subject: a\r\nX: b\r\n\r\n{long}"),
                "Subject: a\r\nX: b\r\n\r\n".into(),
            ),
            // header longer than one read, blank line across the chunk boundary
            (
                format!("X: {}\n\nbody", "y".repeat(8188)),
                format!("X: {}\r\n\r\n", "y".repeat(8188)),
            ),
            ("Subject: no body\n".into(), "Subject: no body\r\n".into()),
        ] {
            fs::write(&p, &file).unwrap();
            assert_eq!(
                String::from_utf8(read_header_crlf(&p).unwrap()).unwrap(),
                want
            );
        }
    }

    #[test]
    fn deliver_list_read_remove() {
        let dir = tempfile::tempdir().unwrap();
        let md = maildir_path(dir.path(), "example.com", "alice");
        let msg = b"Subject: hi\r\n\r\nline\r\n";
        let name = deliver(dir.path(), "example.com", "alice", "mx.test", msg).unwrap();
        assert!(md.join("new").join(&name).exists());
        assert_eq!(
            fs::read(md.join("new").join(&name)).unwrap(),
            b"Subject: hi\n\nline\n"
        );
        assert_eq!(usage(&md).unwrap(), 18);
        let list = take_listing(&md).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].size, msg.len() as u64);
        assert_eq!(read_crlf(&list[0].path).unwrap(), msg);
        assert!(fs::read_dir(md.join("new")).unwrap().next().is_none());
        assert_eq!(remove(&[list[0].path.as_path()]), 0);
        assert_eq!(usage(&md).unwrap(), 0);
        // a symlink planted in the tree is not followed
        let evil = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(evil.path(), dir.path().join("mail/example.com/bob")).unwrap();
        assert!(deliver(dir.path(), "example.com", "bob", "h", msg).is_err());
        assert_eq!(fs::read_dir(evil.path()).unwrap().count(), 0);
        let a = unique_name("h");
        let b = unique_name("h");
        assert_ne!(a, b);
    }
}
