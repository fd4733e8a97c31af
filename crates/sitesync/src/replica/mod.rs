//! The replica (a web server's copy of a site): turns what capture saw into changes by
//! comparing the disk with its [`index::Index`] ([`observe`]), keeps them in a durable
//! [`outbox::Outbox`] until the hub decided them (adopting the hub's version when it
//! lost), and applies the changes other servers made, read from the hub's log
//! ([`remote`]). Path classes: `local` paths are neither pushed nor overwritten, `keep`
//! paths survive deployments (used by the deployment code).
//!
//! On disk, per site under its state directory: `index.json`, `outbox/`, `tmp/`.

pub mod index;
mod journal;
mod observe;
pub mod outbox;
mod remote;

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use proto::sitesync::{Change, Op, Outcome};

use crate::api::{BlobState, HubApi, HubError};
use crate::apply::{ApplyError, Owner};
use crate::safe;
use index::Index;
use outbox::{blob_of, Outbox};

/// What capture reports ([`crate::capture::Seen`]), under the name the replica's code
/// and tests use: one type, so capture's batches go to [`Replica`] unchanged.
pub use crate::capture::Seen as Look;

/// A replica's settings for one site.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    /// The site (its name at the hub).
    pub site: String,
    /// This server's name (the origin of its changes, and its change ids).
    pub server: String,
    /// The site's tree on this server.
    pub root: PathBuf,
    /// Where this site's replication state lives (outside the tree).
    pub state: PathBuf,
    /// Paths neither pushed nor overwritten (caches), e.g. `wp-content/cache`.
    pub local: Vec<String>,
    /// Paths kept across deployments, e.g. `wp-content/uploads`.
    pub keep: Vec<String>,
    /// The site's user on this server, for what the replica writes.
    pub owner: Option<Owner>,
    /// Bytes per upload or download chunk.
    pub chunk_size: usize,
}

/// Why a replica step failed (the step can be retried; nothing acknowledged is lost).
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// Local disk.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The hub refused a request outright.
    #[error(transparent)]
    Hub(#[from] HubError),
    /// A change could not be applied locally.
    #[error(transparent)]
    Apply(#[from] ApplyError),
}

/// What one push did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushReport {
    /// Changes the hub applied.
    pub applied: usize,
    /// Changes that lost a conflict (the hub's version was put back here).
    pub conflicts: usize,
    /// Changes the hub refused (the hub's version was put back here).
    pub refused: usize,
    /// The hub was unreachable; the rest stays in the outbox.
    pub hub_down: bool,
    /// The hub's disk is full; the rest stays in the outbox.
    pub hub_full: bool,
}

fn under(p: &str, prefix: &str) -> bool {
    p == prefix || (p.starts_with(prefix) && p.as_bytes().get(prefix.len()) == Some(&b'/'))
}

/// One site's replica on this server.
#[derive(Debug)]
pub struct Replica {
    cfg: ReplicaConfig,
    index: Index,
    outbox: Outbox,
    id_base: String,
    counter: u64,
}

impl Replica {
    /// Opens the replica with what a previous run persisted (index, outbox).
    pub fn open(cfg: ReplicaConfig) -> Result<Replica, ReplicaError> {
        durable::create_private_dir(&cfg.state)?;
        durable::create_private_dir(&cfg.state.join("tmp"))?;
        // checked now (a real directory, not a symlink); opened again per operation
        drop(safe::open_root(&cfg.root)?);
        let index = Index::load(&cfg.state.join("index.json"))?;
        let outbox = Outbox::open(&cfg.state.join("outbox"))?;
        let now = proto::sitesync::Mtime::now();
        Ok(Replica {
            id_base: format!("{}.{}{:09}", cfg.server, now.secs, now.nanos),
            cfg,
            index,
            outbox,
            counter: 0,
        })
    }

    /// Opens the site's tree for one operation (a real directory, not a symlink;
    /// everything beneath it is opened relative to it without following symlinks).
    /// Not held between operations: a web server replicating 100,000 sites would
    /// otherwise hold 100,000 descriptors, far over the per-process limit.
    fn root(&self) -> io::Result<File> {
        safe::open_root(&self.cfg.root)
    }

    /// Whether `path` is local to this server (not replicated).
    pub fn is_local(&self, path: &str) -> bool {
        self.cfg.local.iter().any(|l| under(path, l))
    }

    /// Whether `path` survives deployments.
    pub fn is_keep(&self, path: &str) -> bool {
        self.cfg.keep.iter().any(|k| under(path, k))
    }

    /// The index (what this replica knows of the site).
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Changes waiting for the hub.
    pub fn pending(&self) -> usize {
        self.outbox.len()
    }

    /// The tree on disk right now (hashed), local paths left out: for comparing with the
    /// hub's manifest.
    pub fn disk_nodes(
        &self,
    ) -> Result<std::collections::BTreeMap<String, proto::sitesync::Node>, ReplicaError> {
        Ok(safe::walk(&self.root()?, true, &|p| self.is_local(p))?)
    }

    fn save(&mut self) -> io::Result<()> {
        self.index.save(&self.cfg.state.join("index.json"))
    }

    fn next_id(&mut self) -> String {
        self.counter += 1;
        format!("{}.{}", self.id_base, self.counter)
    }

    fn enqueue(&mut self, path: &str, base: Option<String>, op: Op) -> io::Result<()> {
        self.index.kept_local.remove(path);
        let id = self.next_id();
        self.outbox.enqueue(Change {
            id,
            path: path.to_string(),
            base,
            op,
        })
    }

    /// Queues again, as new versions, every path the hub refused and this server kept
    /// ([`Index::kept_local`]): for when a refusal may no longer hold (the site is back
    /// under its quota), so a write refused while over does not stay on this server
    /// alone for good. Where the hub holds another version meanwhile, the push is a
    /// conflict there (this version kept in its conflicts area, nothing lost). Returns
    /// how many paths were queued again.
    pub fn requeue_kept_local(&mut self) -> Result<usize, ReplicaError> {
        let paths = std::mem::take(&mut self.index.kept_local);
        for p in &paths {
            self.index.nodes.remove(p);
            self.observe_path(p)?;
        }
        self.save()?;
        Ok(paths.len())
    }

    /// Pushes, then applies what the others did: one round of replication.
    pub fn sync(&mut self, hub: &dyn HubApi) -> Result<PushReport, ReplicaError> {
        let r = self.push(hub)?;
        if !r.hub_down && !r.hub_full {
            self.pull(hub)?;
            // adopting verdicts or skipped remote changes may have queued more
            if !self.outbox.is_empty() {
                let again = self.push(hub)?;
                return Ok(PushReport {
                    applied: r.applied + again.applied,
                    conflicts: r.conflicts + again.conflicts,
                    refused: r.refused + again.refused,
                    hub_down: again.hub_down,
                    hub_full: again.hub_full,
                });
            }
        }
        Ok(r)
    }

    /// Drains the outbox in order while the hub answers.
    pub fn push(&mut self, hub: &dyn HubApi) -> Result<PushReport, ReplicaError> {
        let mut report = PushReport::default();
        while let Some((n, change)) = self.outbox.first() {
            let result = match self.upload(hub, &change) {
                Err(HubError::Refused(reason)) => {
                    // over the size limit or similar: this change never goes through;
                    // the file stays here, local to this server
                    tracing::warn!(site = %self.cfg.site, path = %change.path, "sitesync: hub refused the content, kept local: {reason}");
                    report.refused += 1;
                    self.index.kept_local.insert(change.path.clone());
                    self.outbox.done(n)?;
                    continue;
                }
                Err(e) => Err(e),
                Ok(()) => hub.push(&self.cfg.site, &change),
            };
            let outcome = match result {
                Ok(o) => o,
                Err(HubError::Unavailable(_)) => {
                    report.hub_down = true;
                    break;
                }
                Err(HubError::Full(m)) => {
                    tracing::warn!(site = %self.cfg.site, "sitesync: hub full, keeping the outbox: {m}");
                    report.hub_full = true;
                    break;
                }
                Err(e) => return Err(e.into()),
            };
            match outcome {
                Outcome::Applied { .. } => report.applied += 1,
                Outcome::Conflict { current, .. } => {
                    report.conflicts += 1;
                    self.adopt_logged(hub, &change, current)?;
                }
                Outcome::Refused { reason, retry, .. } if retry => {
                    tracing::warn!(site = %self.cfg.site, "sitesync: hub full, keeping the outbox: {reason}");
                    report.hub_full = true;
                    break;
                }
                Outcome::Refused { reason, .. } => {
                    // the file stays here, local to this server: deleting what the
                    // application wrote would lose it; the manifest comparison shows it
                    tracing::warn!(site = %self.cfg.site, path = %change.path, "sitesync: hub refused a change, kept local: {reason}");
                    report.refused += 1;
                    self.index.kept_local.insert(change.path.clone());
                }
            }
            self.outbox.done(n)?;
        }
        self.save()?;
        Ok(report)
    }

    /// Adopts a verdict; a local failure is logged, not fatal: the change is decided
    /// and the next rescan compares again (an error here must not wedge the outbox).
    fn adopt_logged(
        &mut self,
        hub: &dyn HubApi,
        change: &Change,
        current: Option<proto::sitesync::Node>,
    ) -> Result<(), ReplicaError> {
        match self.adopt(hub, change, current) {
            Err(ReplicaError::Hub(HubError::Unavailable(m))) => {
                Err(HubError::Unavailable(m).into())
            }
            Err(e) => {
                tracing::warn!(site = %self.cfg.site, path = %change.path, "sitesync: cannot put back the hub's version: {e}");
                Ok(())
            }
            Ok(()) => Ok(()),
        }
    }

    fn upload(&self, hub: &dyn HubApi, change: &Change) -> Result<(), HubError> {
        let Some((hash, size)) = blob_of(change) else {
            return Ok(());
        };
        let mut have = match hub.blob_received(&self.cfg.site, hash)? {
            BlobState::Complete => return Ok(()),
            BlobState::Partial(n) => n,
        };
        let mut f = self
            .outbox
            .open_blob(hash)
            .map_err(|e| HubError::Refused(format!("outbox blob: {e}")))?;
        let mut buf = vec![0u8; self.cfg.chunk_size.max(1)];
        use std::io::{Read, Seek, SeekFrom};
        f.seek(SeekFrom::Start(have))
            .map_err(|e| HubError::Refused(e.to_string()))?;
        loop {
            let k = f
                .read(&mut buf)
                .map_err(|e| HubError::Refused(e.to_string()))?;
            if k == 0 && have < size {
                return Err(HubError::Refused("outbox blob is short".into()));
            }
            hub.put_chunk(&self.cfg.site, hash, size, have, &buf[..k])?;
            have += k as u64;
            if have >= size {
                return Ok(());
            }
        }
    }

    /// The site root on this server.
    pub fn root_path(&self) -> &Path {
        &self.cfg.root
    }
}
