//! One site's hub state and the push path: verdict, displaced versions kept, log entry
//! appended and fsynced (write-ahead), tree changed, index updated. A crash between the
//! log and the tree is repaired on open by replaying the last entry (every change is
//! idempotent to re-apply); a failure to apply takes the entry back, so the log never
//! holds a change the tree does not.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use proto::sitesync::{
    Change, ConflictRecord, Entry, LogRead, Mtime, Node, Op, Outcome, TreeManifest, VersionRecord,
};

use super::hashcache::HashCache;
use super::keep::Keep;
use super::log::Log;
use super::store::{Store, StoreError};
use super::verdict::{decide, Current, Verdict};
use super::HubConfig;
use crate::api::{BlobState, HubError};
use crate::apply::{apply, ApplyError};
use crate::safe;

mod local;

/// The hub state of one site.
#[derive(Debug)]
pub struct SiteHub {
    name: String,
    /// The site's state folder (the tree, log, blobs, hash cache are in it).
    dir: std::path::PathBuf,
    /// The site's tree (`<dir>/tree`), opened per operation by [`SiteHub::root`]: no
    /// descriptor is held between calls, so the open files do not grow with the sites.
    tree: std::path::PathBuf,
    log: Log,
    store: Store,
    pub(super) keep: Keep,
    nodes: BTreeMap<String, Node>,
    by_hash: HashMap<String, BTreeSet<String>>,
    done: HashMap<String, Outcome>,
    max_file_size: u64,
    reserve_bytes: u64,
    /// This server's name: the origin of the writes made on the files server itself.
    origin: String,
    /// Name prefixes of other writers' temp files, never adopted (FTP uploads in flight).
    ignore: Vec<String>,
    /// Bytes of the regular files in the index.
    usage: u64,
    /// Regular files in the index.
    files: u64,
    /// Whether a content (by hash) is a SQLite database, for the contents in the tree.
    sqlite: HashMap<String, bool>,
    /// The site's disk limit in bytes (0: none), set by the hub before each push.
    pub(super) quota: u64,
    /// Counter making the ids of local changes unique within one instant.
    local_seq: u64,
    /// The site's local paths (not replicated), set by the hub before each use.
    pub(super) local: Arc<Vec<String>>,
}

/// The first 16 bytes of every SQLite database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Whether a path's last component starts with one of `prefixes` (another writer's temp file).
pub(super) fn ignored(prefixes: &[String], path: &str) -> bool {
    let name = safe::split(path).1;
    prefixes.iter().any(|p| name.starts_with(p.as_str()))
}

fn refused(reason: impl ToString, current: Option<&Node>) -> Outcome {
    Outcome::Refused {
        reason: reason.to_string(),
        current: current.cloned(),
        retry: false,
    }
}

/// A refusal for want of disk space: the writer keeps the change and retries.
fn full(reason: impl ToString, current: Option<&Node>) -> Outcome {
    Outcome::Refused {
        reason: reason.to_string(),
        current: current.cloned(),
        retry: true,
    }
}

impl SiteHub {
    /// Opens (creating) a site's state under `dir` and repairs an interrupted change.
    pub fn open(name: &str, dir: &Path, cfg: &HubConfig) -> io::Result<SiteHub> {
        durable::create_private_dir(dir)?;
        let tree = dir.join("tree");
        if !tree.exists() {
            std::fs::create_dir(&tree)?;
            durable::sync_dir(dir)?;
        }
        let mut s = SiteHub {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            tree,
            log: Log::open(&dir.join("log.jsonl"), cfg.log_keep)?,
            store: Store::open(&dir.join("blobs"))?,
            keep: Keep::open(dir)?,
            nodes: BTreeMap::new(),
            by_hash: HashMap::new(),
            done: HashMap::new(),
            max_file_size: cfg.max_file_size,
            reserve_bytes: cfg.reserve_bytes,
            origin: cfg.origin.clone(),
            ignore: cfg.ignore_prefixes.clone(),
            usage: 0,
            files: 0,
            sqlite: HashMap::new(),
            quota: 0,
            local_seq: 0,
            local: Arc::new(Vec::new()),
        };
        s.rescan()?;
        s.recover()?;
        for e in s.log.entries() {
            s.done
                .insert(e.change.id.clone(), Outcome::Applied { seq: e.seq });
        }
        for c in s.keep.conflicts()? {
            s.done.insert(
                c.change_id.clone(),
                Outcome::Conflict {
                    kept: Some(c.id.clone()),
                    current: None,
                },
            );
        }
        Ok(s)
    }

    /// Opens the site's tree for one operation (a real directory, not a symlink: the
    /// same check as when the site was opened; everything beneath it is then opened
    /// relative to this descriptor without following symlinks). Dropped at the end of
    /// the operation.
    fn root(&self) -> io::Result<File> {
        safe::open_root(&self.tree)
    }

    /// Reads the whole tree into the index, hashing only the files whose stamp the hash
    /// cache does not hold, and writes the cache anew.
    fn rescan(&mut self) -> io::Result<()> {
        self.nodes.clear();
        self.by_hash.clear();
        self.usage = 0;
        self.files = 0;
        let ignore = self.ignore.clone();
        let skip = move |p: &str| ignored(&ignore, p);
        let cache_path = self.dir.join("hashes.json");
        let mut cache = HashCache::load(&cache_path);
        let (walked, stamps) = safe::walk_known(&self.root()?, &skip, &|p, st| cache.known(p, st))?;
        if let Err(e) = cache.save(&cache_path, stamps, proto::sitesync::Mtime::now().secs) {
            // only a cost: the next open hashes again
            tracing::warn!(site = %self.name, error = %e, "sitesync: cannot write the hash cache");
        }
        for (p, n) in walked {
            if let Node::Symlink { target } = &n {
                if !crate::apply::symlink_stays_inside(&p, target) {
                    continue;
                }
            }
            self.set_node(p, n);
        }
        Ok(())
    }

    /// Re-applies the last logged change if the crash came between log and tree.
    fn recover(&mut self) -> io::Result<()> {
        let Some(last) = self.log.last().cloned() else {
            return Ok(());
        };
        let c = &last.change;
        let needed = match &c.op {
            Op::Put { node } => self.nodes.get(&c.path) != Some(node),
            Op::Delete => self.nodes.contains_key(&c.path),
            Op::Rename { to, .. } => {
                self.nodes.contains_key(&c.path) && !self.nodes.contains_key(to)
            }
            Op::Meta { .. } => true,
        };
        if !needed {
            return Ok(());
        }
        tracing::warn!(site = %self.name, seq = last.seq, "sitesync: replaying the last change");
        let mut content = match &c.op {
            Op::Put {
                node: Node::File { blake3, .. },
            } => Some(self.open_content(blake3)?),
            _ => None,
        };
        if let Err(e) = apply(
            &self.root()?,
            c,
            content.as_mut().map(|f| f as &mut dyn Read),
            None,
        ) {
            tracing::warn!(site = %self.name, "sitesync: replay failed: {e}");
        }
        if let Op::Put {
            node: Node::File { blake3, .. },
        } = &c.op
        {
            self.store.remove(blake3)?;
        }
        self.rescan()
    }

    fn set_node(&mut self, path: String, node: Node) {
        self.unset_node(&path);
        if let Node::File { blake3, size, .. } = &node {
            self.usage = self.usage.saturating_add(*size);
            self.files += 1;
            if !self.sqlite.contains_key(blake3) {
                let is_db = self.starts_like_sqlite(&path);
                self.sqlite.insert(blake3.clone(), is_db);
            }
            self.by_hash
                .entry(blake3.clone())
                .or_default()
                .insert(path.clone());
        }
        self.nodes.insert(path, node);
    }

    fn unset_node(&mut self, path: &str) -> Option<Node> {
        let old = self.nodes.remove(path);
        if let Some(Node::File { blake3, size, .. }) = &old {
            self.usage = self.usage.saturating_sub(*size);
            self.files = self.files.saturating_sub(1);
            if let Some(set) = self.by_hash.get_mut(blake3) {
                set.remove(path);
                if set.is_empty() {
                    self.by_hash.remove(blake3);
                    self.sqlite.remove(blake3);
                }
            }
        }
        old
    }

    /// Whether the file at `path` begins with SQLite's 16-byte header.
    fn starts_like_sqlite(&self, path: &str) -> bool {
        let mut head = [0u8; 16];
        self.root()
            .and_then(|root| safe::open_file(&root, path))
            .and_then(|mut f| f.read_exact(&mut head))
            .is_ok_and(|()| &head == SQLITE_HEADER)
    }

    fn subtree(&self, path: &str) -> Vec<String> {
        let prefix = format!("{path}/");
        self.nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Content by hash: the store (in flight), else any tree file with that content.
    fn open_content(&self, hash: &str) -> io::Result<File> {
        if self.store.has(hash) {
            return self.store.open_blob(hash);
        }
        if let Some(p) = self.by_hash.get(hash).and_then(|s| s.iter().next()) {
            return safe::open_file(&self.root()?, p);
        }
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            "content not uploaded",
        ))
    }

    pub(super) fn push(&mut self, origin: &str, change: &Change) -> Result<Outcome, HubError> {
        if let Err(e) = change.check() {
            return Ok(refused(e, None));
        }
        if let Some(done) = self.done.get(&change.id) {
            let current = self.nodes.get(&change.path);
            return Ok(match done {
                Outcome::Conflict { kept, .. } => Outcome::Conflict {
                    kept: kept.clone(),
                    current: current.cloned(),
                },
                o => o.clone(),
            });
        }
        // A write made here (FTP, a deployment) the hub has not adopted yet is logged
        // first, so the push is decided against it and never silently overwrites it.
        self.adopt_disk(&change.path)
            .map_err(|e| HubError::Refused(format!("cannot look at {}: {e}", change.path)))?;
        if let Op::Rename { to, .. } = &change.op {
            self.adopt_disk(to)
                .map_err(|e| HubError::Refused(format!("cannot look at {to}: {e}")))?;
        }
        let current = self.nodes.get(&change.path);
        let at_to = match &change.op {
            Op::Rename { to, .. } => self.nodes.get(to),
            _ => None,
        };
        let cur = Current {
            at_path: current,
            has_children: !self.subtree(&change.path).is_empty(),
            at_to,
        };
        let outcome = match decide(change, cur) {
            Verdict::AlreadyThere => Outcome::Applied {
                seq: self.log.head(),
            },
            Verdict::Conflict { keep_loser } => self.conflict(origin, change, keep_loser)?,
            Verdict::Apply => self.apply_logged(origin, change)?,
        };
        if !matches!(outcome, Outcome::Refused { .. }) {
            self.done.insert(change.id.clone(), outcome.clone());
        }
        Ok(outcome)
    }

    fn conflict(&mut self, origin: &str, change: &Change, keep: bool) -> Result<Outcome, HubError> {
        let current = self.nodes.get(&change.path).cloned();
        let mut kept = None;
        if let (true, Op::Put { node }) = (keep, &change.op) {
            let mut content = match node {
                Node::File { blake3, .. } => match self.open_content(blake3) {
                    Ok(f) => Some(f),
                    Err(e) => return Ok(refused(e, current.as_ref())),
                },
                _ => None,
            };
            let rec = ConflictRecord {
                id: String::new(),
                path: change.path.clone(),
                origin: origin.to_string(),
                change_id: change.id.clone(),
                time: Mtime::now(),
                node: node.clone(),
            };
            match self
                .keep
                .keep_conflict(rec, content.as_mut().map(|f| f as &mut dyn Read))
            {
                Ok(id) => kept = Some(id),
                Err(e) => {
                    return Ok(full(
                        format!("cannot keep the conflict: {e}"),
                        current.as_ref(),
                    ))
                }
            }
            if let Node::File { blake3, .. } = node {
                self.store
                    .remove(blake3)
                    .map_err(|e| HubError::Refused(e.to_string()))?;
            }
            tracing::info!(site = %self.name, path = %change.path, %origin, "sitesync: conflict, loser kept");
        }
        Ok(Outcome::Conflict { kept, current })
    }

    fn free_bytes(&self) -> u64 {
        rustix::fs::statvfs(&self.tree).map_or(u64::MAX, |v| v.f_bavail.saturating_mul(v.f_frsize))
    }

    fn apply_logged(&mut self, origin: &str, change: &Change) -> Result<Outcome, HubError> {
        let current = self.nodes.get(&change.path).cloned();
        let mut content = None;
        let mut need = 4096u64;
        if let Op::Put {
            node: Node::File { blake3, size, .. },
        } = &change.op
        {
            if *size > self.max_file_size {
                return Ok(refused(
                    format!("{size} bytes is over the limit of {}", self.max_file_size),
                    current.as_ref(),
                ));
            }
            match self.open_content(blake3) {
                Ok(f) => content = Some(f),
                Err(e) => return Ok(refused(e, current.as_ref())),
            }
            need += size;
            let old = match &current {
                Some(Node::File { size, .. }) => *size,
                _ => 0,
            };
            let after = self.usage.saturating_sub(old).saturating_add(*size);
            if self.quota > 0 && after > self.quota {
                return Ok(refused(
                    format!(
                        "the site's quota of {} MiB would be exceeded ({} bytes used, {size} more)",
                        self.quota >> 20,
                        self.usage.saturating_sub(old)
                    ),
                    current.as_ref(),
                ));
            }
        }
        if self.free_bytes() < need.saturating_add(self.reserve_bytes) {
            return Ok(full("disk full on the files server", current.as_ref()));
        }
        // a failure to open (out of descriptors, say) is passing: the writer retries
        let root = match self.root() {
            Ok(r) => r,
            Err(e) => {
                return Ok(full(
                    format!("cannot open the site tree: {e}"),
                    current.as_ref(),
                ))
            }
        };
        let now = Mtime::now();
        // keep what the change displaces, before it is displaced
        let displaced = match &change.op {
            Op::Put { .. } | Op::Delete => Some(change.path.as_str()),
            Op::Rename { to, .. } => Some(to.as_str()),
            Op::Meta { .. } => None,
        };
        if let Some(p) = displaced {
            if let Some(n @ Node::File { .. }) = self.nodes.get(p).cloned() {
                let kept = safe::open_file(&root, p)
                    .and_then(|mut f| self.keep.keep_version(p, &n, Some(&mut f), now));
                if let Err(e) = kept {
                    return Ok(full(
                        format!("cannot keep the old version: {e}"),
                        current.as_ref(),
                    ));
                }
            }
        }
        let seq = self.log.head() + 1;
        let entry = Entry {
            seq,
            origin: origin.to_string(),
            time: now,
            change: change.clone(),
        };
        if let Err(e) = self.log.append(entry) {
            return Ok(full(format!("cannot log: {e}"), current.as_ref()));
        }
        let applied = apply(
            &root,
            change,
            content.as_mut().map(|f| f as &mut dyn Read),
            None,
        );
        let created = match applied {
            Ok(c) => c,
            Err(e) => {
                self.log
                    .undo_last()
                    .map_err(|e| HubError::Refused(e.to_string()))?;
                // whatever half happened (created parents), the index follows the disk
                self.rescan()
                    .map_err(|e| HubError::Refused(e.to_string()))?;
                return Ok(match e {
                    ApplyError::NotEmpty(_) => Outcome::Conflict {
                        kept: None,
                        current,
                    },
                    e => refused(e, current.as_ref()),
                });
            }
        };
        for d in created {
            self.set_node(d, Node::Dir { mode: 0o755 });
        }
        self.update_index(change);
        if let Op::Put {
            node: Node::File { blake3, .. },
        } = &change.op
        {
            self.store
                .remove(blake3)
                .map_err(|e| HubError::Refused(e.to_string()))?;
        }
        if let Err(e) = self.log.compact() {
            tracing::warn!(site = %self.name, "sitesync: log compaction failed: {e}");
        }
        Ok(Outcome::Applied { seq })
    }

    fn update_index(&mut self, change: &Change) {
        let path = change.path.clone();
        match &change.op {
            Op::Put { node } => self.set_node(path, node.clone()),
            Op::Delete => {
                self.unset_node(&path);
            }
            Op::Rename { to, .. } => {
                for old in std::iter::once(path.clone()).chain(self.subtree(&path)) {
                    if let Some(n) = self.unset_node(&old) {
                        let new = format!("{to}{}", &old[path.len()..]);
                        self.set_node(new, n);
                    }
                }
            }
            Op::Meta { mode, mtime } => {
                if let Some(mut n) = self.nodes.get(&path).cloned() {
                    match &mut n {
                        Node::File {
                            mode: m, mtime: t, ..
                        } => {
                            *m = *mode;
                            if let Some(x) = mtime {
                                *t = *x;
                            }
                        }
                        Node::Dir { mode: m } => *m = *mode,
                        Node::Symlink { .. } => {}
                    }
                    self.set_node(path, n);
                }
            }
        }
    }

    pub(super) fn blob_received(&self, hash: &str) -> BlobState {
        if self.store.has(hash) || self.by_hash.contains_key(hash) {
            BlobState::Complete
        } else {
            BlobState::Partial(self.store.received(hash))
        }
    }

    pub(super) fn put_chunk(
        &mut self,
        hash: &str,
        total: u64,
        offset: u64,
        data: &[u8],
    ) -> Result<(), HubError> {
        if self.by_hash.contains_key(hash) {
            return Ok(());
        }
        if self.free_bytes() < (data.len() as u64).saturating_add(self.reserve_bytes) {
            return Err(HubError::Full("disk full on the files server".into()));
        }
        match self
            .store
            .put_chunk(hash, total, offset, data, self.max_file_size)
        {
            Ok(_) => Ok(()),
            Err(StoreError::Io(e)) => Err(HubError::Full(e.to_string())),
            // out of step (a crash cut an upload short or garbled its tail): the writer
            // asks where to resume and sends again, the change stays queued
            Err(e @ (StoreError::Order { .. } | StoreError::Mismatch)) => {
                Err(HubError::Unavailable(e.to_string()))
            }
            Err(e) => Err(HubError::Refused(e.to_string())),
        }
    }

    pub(super) fn read_blob(
        &self,
        hash: &str,
        offset: u64,
        max: usize,
    ) -> Result<Vec<u8>, HubError> {
        let mut f = self
            .open_content(hash)
            .map_err(|_| HubError::NotFound(hash.to_string()))?;
        let max = max.min(16 << 20);
        let mut out = Vec::with_capacity(max.min(1 << 20));
        f.seek(SeekFrom::Start(offset))
            .and_then(|_| f.take(max as u64).read_to_end(&mut out))
            .map_err(|e| HubError::Refused(e.to_string()))?;
        Ok(out)
    }

    pub(super) fn log_after(&self, seq: u64, max: usize) -> LogRead {
        self.log.read_after(seq, max)
    }

    pub(super) fn manifest(&self) -> TreeManifest {
        TreeManifest {
            site: self.name.clone(),
            seq: self.log.head(),
            nodes: self.nodes.clone(),
        }
    }

    pub(super) fn status(&self, max_sqlite: usize) -> super::SiteStatus {
        let mut sqlite_paths: Vec<String> = self
            .sqlite
            .iter()
            .filter(|(_, is_db)| **is_db)
            .filter_map(|(h, _)| self.by_hash.get(h))
            .flatten()
            .cloned()
            .collect();
        sqlite_paths.sort();
        sqlite_paths.truncate(max_sqlite);
        super::SiteStatus {
            usage_bytes: self.usage,
            files: self.files,
            seq: self.log.head(),
            sqlite_paths,
        }
    }

    pub(super) fn head(&self) -> u64 {
        self.log.head()
    }

    /// Brings back `path` from its kept versions; a path with none that names a deleted
    /// folder brings back every file beneath it that is absent now (the version current
    /// at `at`, or the last one).
    pub(super) fn restore(&mut self, path: &str, at: Option<Mtime>) -> Result<Outcome, HubError> {
        let refused = |e: io::Error| HubError::Refused(e.to_string());
        // without a time: the last version replaced or deleted; at a time: the version
        // that was current then, i.e. the first one replaced after it
        let pick = |versions: Vec<VersionRecord>| match at {
            None => versions.into_iter().next_back(),
            Some(at) => versions.into_iter().find(|v| v.replaced > at),
        };
        if let Some(v) = pick(self.keep.versions(path).map_err(refused)?) {
            return self.restore_version(v);
        }
        let mut last = None;
        for (p, versions) in self.keep.versions_under(path).map_err(refused)? {
            if self.nodes.contains_key(&p) {
                continue;
            }
            if let Some(v) = pick(versions) {
                match self.restore_version(v)? {
                    o @ Outcome::Applied { .. } => last = Some(o),
                    o => return Ok(o),
                }
            }
        }
        last.ok_or_else(|| HubError::NotFound(format!("no kept version of {path} for that time")))
    }

    fn restore_version(&mut self, v: VersionRecord) -> Result<Outcome, HubError> {
        if let Node::File { blake3, .. } = &v.node {
            let mut f = self
                .keep
                .open_version(&v)
                .map_err(|e| HubError::Refused(e.to_string()))?;
            self.store
                .put_reader(blake3, &mut f)
                .map_err(|e| HubError::Refused(e.to_string()))?;
        }
        let now = Mtime::now();
        self.local_seq += 1;
        let change = Change {
            id: format!("restore.{}.{}.{}", now.secs, now.nanos, self.local_seq),
            path: v.path.clone(),
            base: self.nodes.get(&v.path).map(Node::version),
            op: Op::Put { node: v.node },
        };
        let origin = self.origin.clone();
        self.push(&origin, &change)
    }
}
