//! Release archives as `PUT /v1/sites/{domain}/content` takes them: a tar (ustar
//! or GNU), a gzip-compressed tar, or a zip. Before an archive is kept, every
//! entry is checked here, so an unsafe archive is refused at upload with a 422
//! naming the entry, not later on the files server (which checks again when it
//! unpacks, `agent::deploy`):
//!
//! - **zip-slip**: every name must be a plain relative path (no `..`, no leading
//!   `/`, backslashes read as separators); links, devices and FIFOs are refused;
//! - **zip bombs**: what a compressed archive unpacks to is counted as it is
//!   decompressed (the sizes an archive declares are never trusted) and must stay
//!   within the deployment room left, within [`MAX_RATIO`] times the upload (plus
//!   [`RATIO_SLACK`]) and within [`MAX_ENTRIES`] entries.
//!
//! A zip or gzip-compressed tar is rewritten as a plain tar (what deployments are
//! kept as); a plain tar is kept as uploaded.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};

/// Largest ratio of unpacked to uploaded bytes of a compressed archive.
pub const MAX_RATIO: u64 = 100;
/// Unpacked bytes always allowed besides the ratio (small archives of text
/// compress far better than large ones).
pub const RATIO_SLACK: u64 = 16 << 20;
/// Most entries one archive may hold.
pub const MAX_ENTRIES: u64 = 200_000;

/// The format of an uploaded archive, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A plain tar (`ustar` at offset 257).
    Tar,
    /// gzip (a `.tar.gz`).
    TarGz,
    /// zip (`PK\x03\x04`, or `PK\x05\x06` when empty).
    Zip,
}

/// The format of an archive starting with `head` (its first 512 bytes, or all
/// of it when shorter).
pub fn sniff(head: &[u8]) -> Option<Kind> {
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        Some(Kind::Zip)
    } else if head.starts_with(&[0x1f, 0x8b]) {
        Some(Kind::TarGz)
    } else if head.get(257..262) == Some(b"ustar".as_slice()) {
        Some(Kind::Tar)
    } else {
        None
    }
}

/// Why an archive is refused.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// An entry that would land outside the site's folder, or is not a plain file
    /// or folder.
    #[error("`{entry}` {why}")]
    Unsafe {
        /// The entry's name as in the archive.
        entry: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// It unpacks to more than the room left (`room` bytes).
    #[error("it unpacks to more than the {} MiB left for deployments", room >> 20)]
    TooBig {
        /// The room, bytes.
        room: u64,
    },
    /// It unpacks to far more than it weighs, or holds too many entries.
    #[error("{0}")]
    Bomb(String),
    /// Not a readable archive of its kind.
    #[error("not a readable {kind} archive: {message}")]
    Invalid {
        /// `tar`, `tar.gz` or `zip`.
        kind: &'static str,
        /// The reader's error.
        message: String,
    },
    /// Reading or writing the files failed.
    #[error("archive I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// What an archive is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes the kept tar may take (the account's deployment room).
    pub room: u64,
    /// Bytes uploaded (the ratio's base).
    pub uploaded: u64,
}

impl Limits {
    fn unpacked_max(&self) -> u64 {
        self.uploaded
            .saturating_mul(MAX_RATIO)
            .saturating_add(RATIO_SLACK)
    }
}

/// `name` as a plain relative path ("./" parts dropped, backslashes read as
/// separators), `None` for the archive's root itself, or the reason it is unsafe.
pub fn plain_path(name: &str) -> Result<Option<PathBuf>, &'static str> {
    if name.contains('\0') {
        return Err("has a NUL byte in its name");
    }
    let name = name.replace('\\', "/");
    if name.starts_with('/') {
        return Err("is an absolute path: it would leave the site's folder (zip-slip)");
    }
    let mut out = PathBuf::new();
    for c in Path::new(&name).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err("climbs with `..`: it would leave the site's folder (zip-slip)")
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err("is an absolute path: it would leave the site's folder (zip-slip)")
            }
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

fn invalid(kind: &'static str) -> impl Fn(std::io::Error) -> ArchiveError {
    move |e| ArchiveError::Invalid {
        kind,
        message: e.to_string(),
    }
}

/// Check the plain tar at `path`: names and entry types only (its size is what
/// was uploaded, already within the room).
pub fn check_tar(path: &Path) -> Result<(), ArchiveError> {
    let mut ar = tar::Archive::new(BufReader::new(File::open(path)?));
    let mut entries: u64 = 0;
    for entry in ar.entries().map_err(invalid("tar"))? {
        let entry = entry.map_err(invalid("tar"))?;
        entries += 1;
        if entries > MAX_ENTRIES {
            return Err(ArchiveError::Bomb(format!(
                "it holds more than {MAX_ENTRIES} entries"
            )));
        }
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        tar_entry_ok(&name, entry.header().entry_type())?;
    }
    Ok(())
}

fn tar_entry_ok(name: &str, t: tar::EntryType) -> Result<(), ArchiveError> {
    let unsafe_entry = |why| ArchiveError::Unsafe {
        entry: name.to_owned(),
        why,
    };
    match t {
        tar::EntryType::Directory | tar::EntryType::Regular | tar::EntryType::Continuous => {
            plain_path(name).map_err(unsafe_entry)?;
            Ok(())
        }
        tar::EntryType::XGlobalHeader
        | tar::EntryType::XHeader
        | tar::EntryType::GNULongName
        | tar::EntryType::GNULongLink => Ok(()),
        tar::EntryType::Symlink | tar::EntryType::Link => Err(unsafe_entry(
            "is a link: only files and folders can be deployed",
        )),
        _ => Err(unsafe_entry(
            "is not a file or folder: only files and folders can be deployed",
        )),
    }
}

/// Counts what a tar being written takes, refusing past the limits.
struct Out {
    tar: tar::Builder<BufWriter<File>>,
    unpacked: u64,
    entries: u64,
    limits: Limits,
}

impl Out {
    fn new(dest: &Path, limits: Limits) -> Result<Out, ArchiveError> {
        let mut tar = tar::Builder::new(BufWriter::new(File::create(dest)?));
        tar.mode(tar::HeaderMode::Deterministic);
        Ok(Out {
            tar,
            unpacked: 0,
            entries: 0,
            limits,
        })
    }

    /// Count `size` more unpacked bytes (and one entry).
    fn count(&mut self, size: u64) -> Result<(), ArchiveError> {
        self.entries += 1;
        if self.entries > MAX_ENTRIES {
            return Err(ArchiveError::Bomb(format!(
                "it holds more than {MAX_ENTRIES} entries"
            )));
        }
        // Each entry's header and padding take up to 1 KiB of the tar.
        self.unpacked = self.unpacked.saturating_add(size).saturating_add(1024);
        if self.unpacked > self.limits.unpacked_max() {
            return Err(ArchiveError::Bomb(format!(
                "it unpacks to more than {MAX_RATIO} times its {} KiB (a zip bomb?)",
                self.limits.uploaded.div_ceil(1024)
            )));
        }
        if self.unpacked > self.limits.room {
            return Err(ArchiveError::TooBig {
                room: self.limits.room,
            });
        }
        Ok(())
    }

    fn dir(&mut self, path: &Path) -> Result<(), ArchiveError> {
        self.count(0)?;
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        self.tar.append_data(&mut h, path, std::io::empty())?;
        Ok(())
    }

    /// Append a file whose content is `spool` (its first `size` bytes).
    fn file(
        &mut self,
        path: &Path,
        exec: bool,
        spool: &mut File,
        size: u64,
    ) -> Result<(), ArchiveError> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(if exec { 0o755 } else { 0o644 });
        h.set_size(size);
        spool.seek(SeekFrom::Start(0))?;
        self.tar
            .append_data(&mut h, path, Read::by_ref(spool).take(size))?;
        Ok(())
    }

    fn finish(self) -> Result<(), ArchiveError> {
        let mut w = self.tar.into_inner()?;
        w.flush()?;
        w.into_inner()
            .map_err(|e| ArchiveError::Io(e.into_error()))?
            .sync_all()?;
        Ok(())
    }
}

/// Copy at most `left + 1` bytes of `from` into `spool` (from its start):
/// the bytes copied. More than `left` means over the limit.
fn spool_copy(from: &mut impl Read, spool: &mut File, left: u64) -> std::io::Result<u64> {
    spool.set_len(0)?;
    spool.seek(SeekFrom::Start(0))?;
    std::io::copy(&mut from.take(left.saturating_add(1)), spool)
}

/// Rewrite the zip or gzip-compressed tar at `src` as a plain tar at `dest`,
/// checking every entry (module docs). `dest` is removed on error.
pub fn to_tar(src: &Path, kind: Kind, dest: &Path, limits: Limits) -> Result<(), ArchiveError> {
    let spool_path = dest.with_extension("spool");
    let result = (|| {
        let mut out = Out::new(dest, limits)?;
        let mut spool = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&spool_path)?;
        match kind {
            Kind::Zip => zip_entries(src, &mut out, &mut spool)?,
            Kind::TarGz => targz_entries(src, &mut out, &mut spool)?,
            Kind::Tar => {
                return Err(ArchiveError::Invalid {
                    kind: "tar",
                    message: "a plain tar is kept as it is".into(),
                })
            }
        }
        out.finish()
    })();
    let _ = std::fs::remove_file(&spool_path);
    if result.is_err() {
        let _ = std::fs::remove_file(dest);
    }
    result
}

fn left(out: &Out) -> u64 {
    out.limits
        .unpacked_max()
        .min(out.limits.room)
        .saturating_sub(out.unpacked)
}

fn zip_entries(src: &Path, out: &mut Out, spool: &mut File) -> Result<(), ArchiveError> {
    let bad = |e: zip::result::ZipError| ArchiveError::Invalid {
        kind: "zip",
        message: e.to_string(),
    };
    let mut zip = zip::ZipArchive::new(BufReader::new(File::open(src)?)).map_err(bad)?;
    if zip.len() as u64 > MAX_ENTRIES {
        return Err(ArchiveError::Bomb(format!(
            "it holds more than {MAX_ENTRIES} entries"
        )));
    }
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).map_err(bad)?;
        let name = f.name().map_err(bad)?.into_owned();
        let unsafe_entry = |why| ArchiveError::Unsafe {
            entry: name.clone(),
            why,
        };
        let mode = f.unix_mode().unwrap_or(0);
        let ftype = mode & 0o170_000;
        if ftype != 0 && ftype != 0o100_000 && ftype != 0o040_000 {
            return Err(unsafe_entry(if ftype == 0o120_000 {
                "is a link: only files and folders can be deployed"
            } else {
                "is not a file or folder: only files and folders can be deployed"
            }));
        }
        let Some(path) = plain_path(&name).map_err(unsafe_entry)? else {
            continue;
        };
        if f.is_dir() || ftype == 0o040_000 {
            out.dir(&path)?;
            continue;
        }
        let room = left(out);
        let size = spool_copy(&mut f, spool, room).map_err(invalid("zip"))?;
        out.count(size)?;
        out.file(&path, mode & 0o111 != 0, spool, size)?;
    }
    Ok(())
}

fn targz_entries(src: &Path, out: &mut Out, spool: &mut File) -> Result<(), ArchiveError> {
    let gz = flate2::read::GzDecoder::new(BufReader::new(File::open(src)?));
    let mut ar = tar::Archive::new(gz);
    for entry in ar.entries().map_err(invalid("tar.gz"))? {
        let mut entry = entry.map_err(invalid("tar.gz"))?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let t = entry.header().entry_type();
        tar_entry_ok(&name, t)?;
        let Ok(Some(path)) = plain_path(&name) else {
            continue;
        };
        match t {
            tar::EntryType::Directory => out.dir(&path)?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let exec = entry.header().mode().unwrap_or(0o644) & 0o111 != 0;
                let room = left(out);
                let size = spool_copy(&mut entry, spool, room).map_err(invalid("tar.gz"))?;
                out.count(size)?;
                out.file(&path, exec, spool, size)?;
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "archive_tests.rs"]
mod tests;
