//! The replica's durable outbox: every captured change (and a copy of a file's content,
//! its blob) is fsynced here before anything else, so a write the application made is
//! not lost when this server dies or the hub is down; it is drained in order when the
//! hub is reachable. A change's id makes pushing it twice harmless.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use proto::sitesync::{Change, Node, Op};

static TMP: AtomicU64 = AtomicU64::new(0);

/// A site's outbox on disk: `NNNNNNNNNNNNNNNNNNNN.json` per change, `blobs/<hash>`.
#[derive(Debug)]
pub struct Outbox {
    dir: PathBuf,
    blobs: PathBuf,
    pending: BTreeMap<u64, Change>,
    next: u64,
}

/// The blob a change needs uploaded, if any.
pub fn blob_of(c: &Change) -> Option<(&str, u64)> {
    match &c.op {
        Op::Put {
            node: Node::File { blake3, size, .. },
        } => Some((blake3.as_str(), *size)),
        _ => None,
    }
}

impl Outbox {
    /// Opens the outbox, with what a previous run left pending.
    pub fn open(dir: &Path) -> io::Result<Outbox> {
        let blobs = dir.join("blobs");
        durable::create_private_dir(&blobs)?;
        let mut pending = BTreeMap::new();
        for e in std::fs::read_dir(dir)? {
            let p = e?.path();
            let Some(n) = p
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            match serde_json::from_slice::<Change>(&std::fs::read(&p)?) {
                Ok(c) => {
                    pending.insert(n, c);
                }
                Err(e) => {
                    tracing::warn!(path = %p.display(), "sitesync: unreadable outbox entry: {e}")
                }
            }
        }
        for e in std::fs::read_dir(&blobs)? {
            let p = e?.path();
            if p.extension().is_some_and(|x| x == "tmp") {
                let _ = std::fs::remove_file(p);
            }
        }
        let next = pending.keys().next_back().map_or(1, |n| n + 1);
        Ok(Outbox {
            dir: dir.to_path_buf(),
            blobs,
            pending,
            next,
        })
    }

    /// Copies content into the outbox (fsynced) and returns its hash and size.
    pub fn stage_blob(&self, r: &mut dyn Read) -> io::Result<(String, u64)> {
        let tmp = self.blobs.join(format!(
            "{}.{}.tmp",
            std::process::id(),
            TMP.fetch_add(1, Ordering::Relaxed)
        ));
        let res = (|| {
            let mut f = File::create(&tmp)?;
            let (h, n) = crate::safe::copy_hashing(r, &mut f)?;
            f.sync_all()?;
            std::fs::rename(&tmp, self.blobs.join(&h))?;
            durable::sync_dir(&self.blobs)?;
            Ok((h, n))
        })();
        if res.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        res
    }

    /// Opens a staged blob.
    pub fn open_blob(&self, hash: &str) -> io::Result<File> {
        if !proto::sitesync::is_hash(hash) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "bad hash"));
        }
        File::open(self.blobs.join(hash))
    }

    /// Appends a change durably.
    pub fn enqueue(&mut self, c: Change) -> io::Result<()> {
        let b = serde_json::to_vec(&c).map_err(io::Error::other)?;
        durable::write_atomic(&self.dir.join(format!("{:020}.json", self.next)), &b, 0o600)?;
        self.pending.insert(self.next, c);
        self.next += 1;
        Ok(())
    }

    /// The oldest pending change.
    pub fn first(&self) -> Option<(u64, Change)> {
        self.pending.iter().next().map(|(n, c)| (*n, c.clone()))
    }

    /// Removes a change the hub decided, and its blob when no other change needs it.
    pub fn done(&mut self, n: u64) -> io::Result<()> {
        let Some(c) = self.pending.remove(&n) else {
            return Ok(());
        };
        std::fs::remove_file(self.dir.join(format!("{n:020}.json")))?;
        if let Some((h, _)) = blob_of(&c) {
            if !self
                .pending
                .values()
                .any(|o| blob_of(o).is_some_and(|(x, _)| x == h))
            {
                let _ = std::fs::remove_file(self.blobs.join(h));
            }
        }
        durable::sync_dir(&self.dir)
    }

    /// Whether a pending change is for `path` (or renames something to it).
    pub fn touches(&self, path: &str) -> bool {
        self.pending
            .values()
            .any(|c| c.path == path || matches!(&c.op, Op::Rename { to, .. } if to == path))
    }

    /// How many changes are pending.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}
