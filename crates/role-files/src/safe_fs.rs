//! Opening files beneath a directory without ever following a symlink
//! (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS`): a
//! symlink planted in a site, or `..`, fails instead of leading out.

use std::fs::File;
use std::io;
use std::path::Path;

use std::os::fd::AsFd;

use rustix::fs::{openat2, Mode, OFlags, ResolveFlags};

fn resolve() -> ResolveFlags {
    ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS
}

/// Open the directory `rel` beneath `dir` for reading (e.g. to fsync it), following
/// symlinks only while they stay beneath `dir` (`RESOLVE_BENEATH`).
pub fn open_dir_for_sync<Fd: AsFd>(dir: Fd, rel: &Path) -> io::Result<File> {
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let fd = openat2(
        dir,
        rel,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    )?;
    Ok(File::from(fd))
}

/// Open the directory `rel` beneath `dir`.
pub fn open_dir_beneath<Fd: AsFd>(dir: Fd, rel: &Path) -> io::Result<File> {
    let fd = openat2(
        dir,
        rel,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        resolve(),
    )?;
    Ok(File::from(fd))
}

/// Open the regular file `rel` beneath `dir` for reading.
pub fn open_file_beneath<Fd: AsFd>(dir: Fd, rel: &Path) -> io::Result<File> {
    let fd = openat2(
        dir,
        rel,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
        resolve(),
    )?;
    let f = File::from(fd);
    if !f.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(f)
}

/// Open the site folder `<sites_root>/<domain>` (the domain was validated by the plan).
pub fn open_site(sites_root: &Path, domain: &str) -> io::Result<File> {
    let root = File::open(sites_root)?;
    open_dir_beneath(&root, Path::new(domain))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_symlinks_and_dotdot() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("site")).unwrap();
        std::fs::write(d.path().join("secret"), b"s").unwrap();
        std::fs::write(d.path().join("site/ok"), b"ok").unwrap();
        std::os::unix::fs::symlink("../secret", d.path().join("site/evil")).unwrap();
        std::os::unix::fs::symlink("ok", d.path().join("site/inner")).unwrap();
        let site = open_site(d.path(), "site").unwrap();
        assert!(open_file_beneath(&site, Path::new("ok")).is_ok());
        assert!(open_file_beneath(&site, Path::new("evil")).is_err());
        assert!(open_file_beneath(&site, Path::new("inner")).is_err());
        assert!(open_file_beneath(&site, Path::new("../secret")).is_err());
        assert!(open_file_beneath(&site, Path::new("/etc/passwd")).is_err());
    }
}
