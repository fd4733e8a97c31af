//! The hub (files server): per site, the authoritative tree, a durable ordered log, a
//! content store for blobs in flight, and the versions and conflicts areas. Every change
//! of a site is decided ([`verdict`]), logged (fsynced) and applied under the site's
//! lock, so a site's changes have one order; sites are independent.
//!
//! On disk, per site under the hub's directory: `tree/` (what FTP and the manifests
//! see), `log.jsonl`, `blobs/`, `versions/`, `conflicts/`, `hashes.json` (the hash cache
//! that spares re-reading unchanged files when a site is opened again).

mod hashcache;
mod keep;
mod log;
mod site;
mod store;
pub mod verdict;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use proto::sitesync::{
    Change, ConflictRecord, LogRead, Mtime, Outcome, TreeManifest, VersionRecord,
};

use crate::api::{BlobState, HubError};
use crate::capture::Seen;
use site::SiteHub;

/// What the files server reports of one site (`site show`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteStatus {
    /// Bytes of the regular files in the tree.
    pub usage_bytes: u64,
    /// Regular files in the tree.
    pub files: u64,
    /// The log's position.
    pub seq: u64,
    /// Regular files that are SQLite databases (sorted, at most the number asked).
    pub sqlite_paths: Vec<String>,
}

/// The hub's settings.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Where the sites' state lives.
    pub dir: PathBuf,
    /// How long overwritten and deleted versions are kept (`site_versions_days`).
    pub versions_days: u32,
    /// The largest file accepted, in bytes.
    pub max_file_size: u64,
    /// How many log entries are retained per site (older positions read the manifest).
    pub log_keep: usize,
    /// Free space kept in reserve: a change that would leave less is refused.
    pub reserve_bytes: u64,
    /// This server's name: the origin of writes made here ([`Hub::observe_local`],
    /// restores), as replicas see it in the log.
    pub origin: String,
    /// Name prefixes of other writers' temp files in the trees (FTP uploads in flight):
    /// never adopted nor indexed.
    pub ignore_prefixes: Vec<String>,
}

impl HubConfig {
    /// The defaults (7 days of versions, 2 GiB files, 100,000 entries, 64 MiB reserve,
    /// origin `hub`, no ignored prefixes).
    pub fn new(dir: PathBuf) -> HubConfig {
        HubConfig {
            dir,
            versions_days: 7,
            max_file_size: 2 << 30,
            log_keep: 100_000,
            reserve_bytes: 64 << 20,
            origin: "hub".to_string(),
            ignore_prefixes: Vec::new(),
        }
    }
}

/// A site's open state, `None` until first used.
type Slot = Arc<Mutex<Option<Arc<Mutex<SiteHub>>>>>;

/// The hub of all sites of one files server.
pub struct Hub {
    cfg: HubConfig,
    /// Each site's slot: opened on first use under the slot's own lock, so opening one
    /// site (a walk of its tree) never holds up the calls to the others.
    sites: Mutex<HashMap<String, Slot>>,
    grants: RwLock<Arc<BTreeMap<String, BTreeSet<String>>>>,
    /// Per-site disk limits in bytes (absent: none).
    quotas: RwLock<Arc<HashMap<String, u64>>>,
    /// Per-site local paths (not replicated: writes made here under them are not adopted).
    local_paths: RwLock<Arc<HashMap<String, Arc<Vec<String>>>>>,
    /// `site_versions_days`, changeable while running.
    versions_days: AtomicU32,
    /// Each opened site's log head, noted under the site's lock whenever it is read or
    /// may have grown: a many-site wait skips, without locking them, the sites whose
    /// head is the position asked.
    heads: RwLock<HashMap<String, u64>>,
    /// Bumped whenever any site's log grows: long polls wait on it.
    appended: tokio::sync::watch::Sender<u64>,
}

/// Short on purpose: the FTP server's tracing spans print their storage (which holds
/// the hub) with `{:?}` on every command, and a derived `Debug` printed every site's
/// whole index and log there (megabytes per command for a large site).
impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sites = self.sites.try_lock().map(|s| s.len()).ok();
        f.debug_struct("Hub")
            .field("dir", &self.cfg.dir)
            .field("sites", &sites)
            .finish_non_exhaustive()
    }
}

fn poisoned<T>(_: T) -> HubError {
    HubError::Refused("hub state poisoned by an earlier panic".into())
}

fn io_err(e: std::io::Error) -> HubError {
    HubError::Refused(e.to_string())
}

/// Whether `site` is a usable site name (one path component, not hidden).
pub fn check_site(site: &str) -> bool {
    proto::manifest::check_path(site)
        && !site.contains('/')
        && !site.starts_with('.')
        && site.len() <= 253
}

impl Hub {
    /// Opens the hub; each site's state is opened (and recovered) on first use.
    pub fn open(cfg: HubConfig) -> std::io::Result<Hub> {
        durable::create_private_dir(&cfg.dir)?;
        Ok(Hub {
            versions_days: AtomicU32::new(cfg.versions_days),
            quotas: RwLock::new(Arc::new(HashMap::new())),
            local_paths: RwLock::new(Arc::new(HashMap::new())),
            cfg,
            sites: Mutex::new(HashMap::new()),
            grants: RwLock::new(Arc::new(BTreeMap::new())),
            heads: RwLock::new(HashMap::new()),
            appended: tokio::sync::watch::Sender::new(0),
        })
    }

    /// Replaces who may sync what (from the plan): server name → its sites. A server
    /// reaches only the sites of its web cluster; transports check [`Hub::may_sync`]
    /// with the caller's authenticated name before every call.
    pub fn set_grants(&self, grants: BTreeMap<String, BTreeSet<String>>) {
        *self
            .grants
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(grants);
    }

    /// Whether `server` may push to and read `site`.
    pub fn may_sync(&self, server: &str, site: &str) -> bool {
        self.grants
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(server)
            .is_some_and(|s| s.contains(site))
    }

    /// Splits `sites` into those `server` may sync and the names of the others.
    pub fn split_granted(
        &self,
        server: &str,
        sites: &BTreeMap<String, u64>,
    ) -> (BTreeMap<String, u64>, Vec<String>) {
        let grants = self
            .grants
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let mine = grants.get(server);
        let (granted, denied): (BTreeMap<_, _>, BTreeMap<_, _>) = sites
            .iter()
            .map(|(s, q)| (s.clone(), *q))
            .partition(|(s, _)| mine.is_some_and(|m| m.contains(s)));
        (granted, denied.into_keys().collect())
    }

    /// The site's tree on disk (what FTP serves and writes through the hub).
    pub fn tree_path(&self, site: &str) -> PathBuf {
        self.cfg.dir.join(site).join("tree")
    }

    fn site(&self, site: &str) -> Result<Arc<Mutex<SiteHub>>, HubError> {
        if !check_site(site) {
            return Err(HubError::Refused(format!("bad site name {site:?}")));
        }
        let slot = self
            .sites
            .lock()
            .map_err(poisoned)?
            .entry(site.to_string())
            .or_default()
            .clone();
        let mut slot = slot.lock().map_err(poisoned)?;
        if let Some(s) = &*slot {
            return Ok(s.clone());
        }
        let s = SiteHub::open(site, &self.cfg.dir.join(site), &self.cfg).map_err(io_err)?;
        let s = Arc::new(Mutex::new(s));
        *slot = Some(s.clone());
        Ok(s)
    }

    fn with<T>(
        &self,
        site: &str,
        f: impl FnOnce(&mut SiteHub) -> Result<T, HubError>,
    ) -> Result<T, HubError> {
        let s = self.site(site)?;
        let mut g = s.lock().map_err(poisoned)?;
        f(&mut g)
    }

    /// Like [`Hub::with`], waking the long polls when the site's log grew.
    fn with_logging<T>(
        &self,
        site: &str,
        f: impl FnOnce(&mut SiteHub) -> Result<T, HubError>,
    ) -> Result<T, HubError> {
        let quota = self.quota_of(site);
        let local = self
            .local_paths
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(site)
            .cloned()
            .unwrap_or_default();
        let mut grew = false;
        let r = self.with(site, |s| {
            let before = s.head();
            s.quota = quota;
            s.local = local;
            let r = f(s);
            grew = s.head() != before;
            self.note_head(site, s.head());
            r
        });
        if grew {
            self.appended.send_modify(|n| *n += 1);
        }
        r
    }

    fn quota_of(&self, site: &str) -> u64 {
        self.quotas
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(site)
            .copied()
            .unwrap_or(0)
    }

    /// Replaces the per-site disk limits (bytes; a site absent or at 0 has none): a push
    /// that would take a site over its limit is refused, not to be retried.
    pub fn set_quotas(&self, quotas: HashMap<String, u64>) {
        *self
            .quotas
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(quotas);
    }

    /// Replaces the per-site local paths (relative to the tree): writes made on this
    /// server beneath them are not adopted, so they are not replicated (caches).
    pub fn set_local_paths(&self, local: HashMap<String, Vec<String>>) {
        let local = local.into_iter().map(|(k, v)| (k, Arc::new(v))).collect();
        *self
            .local_paths
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(local);
    }

    /// Before a write made on this server (FTP) replaces or deletes `path`: keeps the
    /// version there, restorable like one a push displaced. Returns whether one was kept.
    pub fn preserve_local(&self, site: &str, path: &str) -> Result<bool, HubError> {
        if !proto::manifest::check_path(path) {
            return Ok(false);
        }
        self.with_logging(site, |s| s.preserve(path).map_err(io_err))
    }

    /// Changes how long overwritten and deleted versions are kept.
    pub fn set_versions_days(&self, days: u32) {
        self.versions_days.store(days, Ordering::Relaxed);
    }

    /// The directory holding every site's state (each under its name).
    pub fn dir(&self) -> &std::path::Path {
        &self.cfg.dir
    }

    /// Drops the open state of `site` (before its folder is moved away); the next use
    /// opens it again from disk.
    pub fn forget(&self, site: &str) {
        self.heads
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(site);
        let slot = self.sites.lock().ok().and_then(|mut s| s.remove(site));
        if let Some(slot) = slot {
            // waits for an open under way, so it cannot outlive the forgetting
            if let Ok(mut s) = slot.lock() {
                *s = None;
            }
        }
    }

    /// Decides, logs and applies one change pushed by `origin`. A write made on this
    /// server at the change's paths and not adopted yet is adopted first.
    pub fn push(&self, site: &str, origin: &str, change: &Change) -> Result<Outcome, HubError> {
        self.with_logging(site, |s| s.push(origin, change))
    }

    /// Adopts writes made on this server's tree of `site` (FTP, a deployment, anything
    /// capture saw): each path is compared with the index and every difference is
    /// logged (fsynced before this returns) with this server as origin, so the
    /// replicas apply it. Returns how many changes were logged.
    pub fn observe_local(&self, site: &str, seen: &[Seen]) -> Result<u64, HubError> {
        self.with_logging(site, |s| s.observe(seen).map_err(io_err))
    }

    /// Usage, file count, log position and SQLite databases (at most `max_sqlite`) of `site`.
    pub fn status(&self, site: &str, max_sqlite: usize) -> Result<SiteStatus, HubError> {
        self.with(site, |s| Ok(s.status(max_sqlite)))
    }

    /// A receiver that sees every growth of any site's log (subscribe before reading the
    /// log, then wait for a change: nothing appended in between is missed).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.appended.subscribe()
    }

    /// How much of blob `hash` is here.
    pub fn blob_received(&self, site: &str, hash: &str) -> Result<BlobState, HubError> {
        self.with(site, |s| Ok(s.blob_received(hash)))
    }

    /// Takes one chunk of a blob upload.
    pub fn put_chunk(
        &self,
        site: &str,
        hash: &str,
        total: u64,
        offset: u64,
        data: &[u8],
    ) -> Result<(), HubError> {
        self.with(site, |s| s.put_chunk(hash, total, offset, data))
    }

    /// Reads a file's content by hash.
    pub fn read_blob(
        &self,
        site: &str,
        hash: &str,
        offset: u64,
        max: usize,
    ) -> Result<Vec<u8>, HubError> {
        self.with(site, |s| s.read_blob(hash, offset, max))
    }

    /// The log after `seq`.
    pub fn log_after(&self, site: &str, seq: u64, max: usize) -> Result<LogRead, HubError> {
        self.with(site, |s| Ok(s.log_after(seq, max)))
    }

    /// Which of `since`'s sites have log entries after the given position (or a
    /// position the log no longer holds), each with the log's head: what a many-site
    /// long poll answers. A site whose state cannot be opened counts as ready, so the
    /// replica's own call meets the error.
    pub fn ready(&self, since: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for (site, &seq) in since {
            let known = self
                .heads
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(site)
                .copied();
            if known == Some(seq) {
                continue;
            }
            let read = self.with(site, |s| {
                self.note_head(site, s.head());
                Ok(s.log_after(seq, 1))
            });
            match read {
                Ok(LogRead::Entries { entries, .. }) if entries.is_empty() => {}
                Ok(LogRead::Entries { head, .. } | LogRead::SnapshotNeeded { head }) => {
                    out.insert(site.clone(), head);
                }
                Err(_) => {
                    out.insert(site.clone(), seq);
                }
            }
        }
        out
    }

    /// Notes `site`'s log head; called with the site's lock held, so the last note is
    /// the newest head.
    fn note_head(&self, site: &str, head: u64) {
        self.heads
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(site.to_string(), head);
    }

    /// The whole tree with its sequence number.
    pub fn manifest(&self, site: &str) -> Result<TreeManifest, HubError> {
        self.with(site, |s| Ok(s.manifest()))
    }

    /// The site's kept conflicts (`hostplane site conflicts DOMAIN`).
    pub fn conflicts(&self, site: &str) -> Result<Vec<ConflictRecord>, HubError> {
        self.with(site, |s| s.keep.conflicts().map_err(io_err))
    }

    /// The content of a kept conflict.
    pub fn conflict_content(&self, site: &str, id: &str) -> Result<Vec<u8>, HubError> {
        self.with(site, |s| s.keep.conflict_content(id).map_err(io_err))
    }

    /// The kept versions of a path.
    pub fn versions(&self, site: &str, path: &str) -> Result<Vec<VersionRecord>, HubError> {
        self.with(site, |s| s.keep.versions(path).map_err(io_err))
    }

    /// Brings back `path` as it was at `at` (the kept version current then: the first
    /// one replaced after `at`), or without `at` the last version replaced or deleted,
    /// as a new change every replica applies.
    pub fn restore(&self, site: &str, path: &str, at: Option<Mtime>) -> Result<Outcome, HubError> {
        self.with_logging(site, |s| s.restore(path, at))
    }

    /// Drops versions older than `versions_days` before `now`; returns how many.
    pub fn expire(&self, site: &str, now: Mtime) -> Result<usize, HubError> {
        let cutoff = Mtime {
            secs: now.secs - i64::from(self.versions_days.load(Ordering::Relaxed)) * 86_400,
            nanos: now.nanos,
        };
        self.with(site, |s| s.keep.expire(cutoff).map_err(io_err))
    }
}
