//! The hub's content store for blobs in flight: a file's content arrives by hash, in
//! chunks, before the change that names it; each chunk is written at its offset (a
//! repeated chunk is harmless), and the blob becomes visible under its hash only once
//! complete, fsynced and verified. A size limit refuses large files before any byte lands.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use proto::sitesync::is_hash;

/// Why a chunk was not taken.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Not a hash.
    #[error("bad hash")]
    Hash,
    /// Over the configured size limit.
    #[error("file of {size} bytes is over the limit of {limit}")]
    TooLarge {
        /// The announced size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A chunk beyond what was received so far, or past the announced size.
    #[error("chunk at {offset} out of order (have {have})")]
    Order {
        /// The chunk's offset.
        offset: u64,
        /// Bytes received so far.
        have: u64,
    },
    /// The complete content does not hash to its name.
    #[error("content does not match its hash")]
    Mismatch,
    /// Disk error (including a full disk).
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// The blob store of one site.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// Opens (creating) the store directory; partial uploads from before a restart stay.
    pub fn open(dir: &Path) -> io::Result<Store> {
        durable::create_private_dir(dir)?;
        Ok(Store {
            dir: dir.to_path_buf(),
        })
    }

    /// Where a complete blob lives.
    pub fn path(&self, hash: &str) -> PathBuf {
        self.dir.join(hash)
    }

    /// Whether the complete blob is here.
    pub fn has(&self, hash: &str) -> bool {
        is_hash(hash) && self.path(hash).is_file()
    }

    /// Opens a complete blob.
    pub fn open_blob(&self, hash: &str) -> io::Result<File> {
        if !is_hash(hash) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "bad hash"));
        }
        File::open(self.path(hash))
    }

    /// Bytes received so far of an upload (0 when none).
    pub fn received(&self, hash: &str) -> u64 {
        std::fs::metadata(self.dir.join(format!("{hash}.part"))).map_or(0, |m| m.len())
    }

    /// Writes one chunk of the blob `hash` of `total` bytes; returns whether it is complete.
    pub fn put_chunk(
        &self,
        hash: &str,
        total: u64,
        offset: u64,
        data: &[u8],
        limit: u64,
    ) -> Result<bool, StoreError> {
        if !is_hash(hash) {
            return Err(StoreError::Hash);
        }
        if total > limit {
            return Err(StoreError::TooLarge { size: total, limit });
        }
        if self.has(hash) {
            return Ok(true);
        }
        let part = self.dir.join(format!("{hash}.part"));
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&part)?;
        let have = f.metadata()?.len();
        let end = offset.saturating_add(data.len() as u64);
        if offset > have || end > total {
            return Err(StoreError::Order { offset, have });
        }
        if end > have {
            f.seek(SeekFrom::Start(offset))?;
            if let Err(e) = f.write_all(data) {
                // a full disk: cut back to what was whole
                let _ = f.set_len(have);
                return Err(e.into());
            }
        }
        if end.max(have) < total {
            return Ok(false);
        }
        f.sync_all()?;
        drop(f);
        let mut r = File::open(&part)?;
        let (h, _) = crate::safe::copy_hashing(&mut r, &mut io::sink())?;
        if h != hash {
            let _ = std::fs::remove_file(&part);
            return Err(StoreError::Mismatch);
        }
        std::fs::rename(&part, self.path(hash))?;
        durable::sync_dir(&self.dir)?;
        Ok(true)
    }

    /// Stores a whole blob from a reader (a restored version), verified like an upload.
    pub fn put_reader(&self, hash: &str, r: &mut dyn std::io::Read) -> Result<(), StoreError> {
        if !is_hash(hash) {
            return Err(StoreError::Hash);
        }
        if self.has(hash) {
            return Ok(());
        }
        let part = self.dir.join(format!("{hash}.part"));
        let mut f = File::create(&part)?;
        let (h, _) = crate::safe::copy_hashing(r, &mut f)?;
        f.sync_all()?;
        if h != hash {
            let _ = std::fs::remove_file(&part);
            return Err(StoreError::Mismatch);
        }
        std::fs::rename(&part, self.path(hash))?;
        durable::sync_dir(&self.dir)?;
        Ok(())
    }

    /// Removes a blob once its change is applied or kept.
    pub fn remove(&self, hash: &str) -> io::Result<()> {
        if !is_hash(hash) {
            return Ok(());
        }
        match std::fs::remove_file(self.path(hash)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_assemble_verify_and_respect_the_limit() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        let body = vec![7u8; 10_000];
        let h = blake3::hash(&body).to_hex().to_string();
        assert!(matches!(
            s.put_chunk(&h, 10_000, 0, &body[..10], 9_999),
            Err(StoreError::TooLarge { .. })
        ));
        assert!(!s.put_chunk(&h, 10_000, 0, &body[..4000], 1 << 20).unwrap());
        // a retried chunk is harmless, a gap is refused
        assert!(!s.put_chunk(&h, 10_000, 0, &body[..4000], 1 << 20).unwrap());
        assert!(matches!(
            s.put_chunk(&h, 10_000, 8000, &body[8000..], 1 << 20),
            Err(StoreError::Order { .. })
        ));
        assert!(!s.has(&h));
        assert!(s
            .put_chunk(&h, 10_000, 4000, &body[4000..], 1 << 20)
            .unwrap());
        assert!(s.has(&h));
        assert_eq!(std::fs::read(s.path(&h)).unwrap(), body);
        // content that does not match its name is refused
        let other = "00".repeat(32);
        assert!(matches!(
            s.put_chunk(&other, 3, 0, b"abc", 1 << 20),
            Err(StoreError::Mismatch)
        ));
        assert!(!s.has(&other));
        assert!(matches!(
            s.put_chunk("../x", 1, 0, b"a", 9),
            Err(StoreError::Hash)
        ));
    }
}
