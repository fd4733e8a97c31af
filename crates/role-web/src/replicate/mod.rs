//! Site-file replication on a web server (issue 14): every site with a files server
//! (`WebSite::files_origin`, else `WebConfig::files_origin`) is a writable tree,
//! `<content_root>/<domain>/tree` (served through `current -> tree`, see [`tree`]),
//! kept by one [`sitesync::replica::Replica`] that pushes what PHP writes here to the
//! files server's hub and applies what the other servers wrote.
//!
//! - [`capture`]: the engine's one inotify instance (one [`sitesync::capture::Capture`])
//!   watching every site's tree, as an async task routing batches to the site loops;
//! - [`site`]: one loop per site, an async task whose blocking work (the replica's disk
//!   I/O and calls to the hub) runs on the engine's bounded [`pool`];
//! - [`poll`]: one long poll per files server over all of its sites, waking the loops
//!   of the sites with news;
//! - [`quota`]: `quota_mb`, usage from the replica's index, the tree locked while over;
//! - [`Replication`]: starts and stops the loops as sites come and go in the config,
//!   without touching the others, and sums them up for the engine's health.
//!
//! Replica state (index, outbox, tmp) lives in `<state_dir>/replicas/<domain>`,
//! outside the content root: nothing the server or PHP can reach. Serving never
//! depends on the hub: the tree is local, the hub only feeds it. `single` sites are
//! replicated on every server of the cluster, active or not, so a failover finds the
//! files in place.

pub mod capture;
pub mod poll;
pub mod pool;
pub mod quota;
pub mod site;
pub mod tree;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use agent::supervisor::AgentTlsPaths;
use proto::agent_v1::WebConfig;
use sitesync::capture::{Capture, CaptureOptions};
use sitesync::transport::client::HttpsHub;
use tokio::sync::mpsc;

use crate::plan::Layout;
use capture::CaptureCmd;
use poll::{Member, Registry};
use pool::Pool;
use site::{Shared, SiteRun, SiteSpec};

/// A running site loop.
struct Running {
    spec: SiteSpec,
    shared: Arc<Shared>,
}

/// A files server's long poll and the sites it waits on.
struct Poller {
    registry: Arc<Registry>,
    task: tokio::task::JoinHandle<()>,
}

/// Every replicated site of the engine.
pub struct Replication {
    server: String,
    bind: IpAddr,
    identity: Option<AgentTlsPaths>,
    state_root: PathBuf,
    error_log: PathBuf,
    capture: Option<mpsc::UnboundedSender<CaptureCmd>>,
    capture_task: Option<tokio::task::JoinHandle<()>>,
    hubs: BTreeMap<String, HttpsHub>,
    /// Per files server: its sites and its one long poll.
    pollers: BTreeMap<String, Poller>,
    /// Where every site's blocking work runs.
    pool: Pool,
    sites: BTreeMap<String, Running>,
    /// Why replication cannot run at all (no identity, no inotify, bad TLS files).
    setup_error: Option<String>,
    /// Site loops started so far.
    started: u64,
}

impl std::fmt::Debug for Replication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replication")
            .field("sites", &self.sites.len())
            .finish_non_exhaustive()
    }
}

/// What the engine's health says about replication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// One line for the health detail.
    pub detail: String,
    /// Something is wrong (hub unreachable, a replica not running): serving goes on.
    pub degraded: bool,
}

impl Replication {
    /// Nothing replicated yet. `state_dir` is the engine's; `server` its name (the
    /// certificate's CN); `bind` its address (the source of connections to the hub);
    /// `identity` the agent's mTLS identity (`None`: no replication).
    pub fn new(
        server: String,
        bind: IpAddr,
        state_dir: &Path,
        identity: Option<AgentTlsPaths>,
    ) -> Self {
        Replication {
            server,
            bind,
            identity,
            state_root: state_dir.join("replicas"),
            error_log: state_dir.join("logs").join("error.log"),
            capture: None,
            capture_task: None,
            hubs: BTreeMap::new(),
            pollers: BTreeMap::new(),
            pool: Pool::default(),
            sites: BTreeMap::new(),
            setup_error: None,
            started: 0,
        }
    }

    /// Site loops started since the engine started (a new site, or a site whose
    /// settings changed): a change to one site must start exactly one.
    pub fn loops_started(&self) -> u64 {
        self.started
    }

    /// Where replica states live (`<state_dir>/replicas`).
    pub fn state_root(&self) -> &Path {
        &self.state_root
    }

    /// The specs `cfg` asks for, by domain. Local paths that are not clean relative
    /// paths are dropped with a warning (the controller validates them; a bad one must
    /// not stop the site's replication).
    fn wanted(&self, cfg: &WebConfig, layout: &Layout) -> BTreeMap<String, SiteSpec> {
        let mut out = BTreeMap::new();
        for ws in &cfg.sites {
            let Some(origin) = ws.files_origin.as_ref().or(cfg.files_origin.as_ref()) else {
                continue;
            };
            let Ok(domain) = crate::plan::normalize_host(&ws.domain) else {
                continue;
            };
            let local = ws
                .local_paths
                .iter()
                .filter_map(|p| {
                    let p = p.trim_matches('/');
                    let ok = proto::manifest::check_path(p);
                    if !ok {
                        tracing::warn!(%domain, path = %p, "ignoring a bad local path");
                    }
                    ok.then(|| p.to_string())
                })
                .collect();
            out.insert(
                domain.clone(),
                SiteSpec {
                    origin: origin.clone(),
                    site_dir: layout.content_root.join(&domain),
                    state: self.state_root.join(&domain),
                    local,
                    user: ws.php.then(|| crate::plan::pool_user(&domain)),
                    quota_mb: ws.quota_mb,
                    error_log: self.error_log.clone(),
                    domain,
                },
            );
        }
        out
    }

    /// Starts, restarts (changed settings) and stops site loops to match `cfg`; sites
    /// whose settings did not change are not touched. Must run inside the runtime.
    pub fn converge(&mut self, cfg: &WebConfig, layout: &Layout) {
        let wanted = self.wanted(cfg, layout);
        let gone: Vec<String> = self
            .sites
            .iter()
            .filter(|(d, r)| wanted.get(*d) != Some(&r.spec))
            .map(|(d, _)| d.clone())
            .collect();
        for d in gone {
            if let Some(r) = self.sites.remove(&d) {
                r.shared.stop.store(true, Ordering::Relaxed);
                if let Some(p) = self.pollers.get(&r.spec.origin) {
                    p.registry.remove(&d);
                }
                if !wanted.contains_key(&d) {
                    if let Some(c) = &self.capture {
                        let _ = c.send(CaptureCmd::Unwatch { site: d.clone() });
                    }
                    tracing::info!(site = %d, "sitesync: replica stopped");
                }
            }
        }
        let Some(id) = self.identity.clone() else {
            self.setup_error = (!wanted.is_empty())
                .then(|| "no agent identity: site files are not replicated".to_string());
            return;
        };
        if wanted.is_empty() {
            return;
        }
        let capture = match self.capture_sender() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "sitesync: cannot start capture");
                self.setup_error = Some(e);
                return;
            }
        };
        self.setup_error = None;
        for (domain, spec) in wanted {
            if self.sites.contains_key(&domain) {
                continue;
            }
            let hub = match self.hub(&id, &spec.origin) {
                Ok(h) => h,
                Err(e) => {
                    tracing::error!(origin = %spec.origin, error = %e, "sitesync: cannot set up the hub client");
                    self.setup_error = Some(e);
                    continue;
                }
            };
            let shared = Arc::new(Shared::default());
            let (tx, rx) = mpsc::unbounded_channel();
            let registry = self.poller(&spec.origin, &hub);
            registry.insert(
                &domain,
                Member {
                    shared: shared.clone(),
                    tx: tx.clone(),
                },
            );
            let run = SiteRun {
                spec: spec.clone(),
                server: self.server.clone(),
                hub,
                capture: capture.clone(),
                tx,
                rx,
                shared: shared.clone(),
                pool: self.pool.clone(),
                registry,
            };
            tokio::spawn(site::run(run));
            tracing::info!(site = %domain, origin = %spec.origin, "sitesync: replica started");
            self.started += 1;
            self.sites.insert(domain, Running { spec, shared });
        }
    }

    /// The registry of `origin`'s poller, starting the poller on first use (or again
    /// if its task ended).
    fn poller(&mut self, origin: &str, hub: &HttpsHub) -> Arc<Registry> {
        if let Some(p) = self.pollers.get(origin) {
            if !p.task.is_finished() {
                return p.registry.clone();
            }
        }
        let registry = self
            .pollers
            .remove(origin)
            .map(|p| p.registry)
            .unwrap_or_default();
        let task = tokio::spawn(poll::run(origin.to_string(), hub.clone(), registry.clone()));
        self.pollers.insert(
            origin.to_string(),
            Poller {
                registry: registry.clone(),
                task,
            },
        );
        registry
    }

    fn capture_sender(&mut self) -> Result<mpsc::UnboundedSender<CaptureCmd>, String> {
        if let Some(c) = &self.capture {
            if !c.is_closed() {
                return Ok(c.clone());
            }
        }
        let capture = Capture::new(CaptureOptions::default()).map_err(|e| e.to_string())?;
        let (tx, rx) = mpsc::unbounded_channel();
        self.capture_task = Some(tokio::spawn(capture::run(capture, rx)));
        self.capture = Some(tx.clone());
        Ok(tx)
    }

    fn hub(&mut self, id: &AgentTlsPaths, origin: &str) -> Result<HttpsHub, String> {
        if let Some(h) = self.hubs.get(origin) {
            return Ok(h.clone());
        }
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|e| format!("reading {}: {e}", p.display()))
        };
        let hub = HttpsHub::bound(
            origin,
            &read(&id.cert)?,
            &read(&id.key)?,
            &read(&id.ca)?,
            Some(self.bind),
        )
        .map_err(|e| e.to_string())?;
        self.hubs.insert(origin.to_string(), hub.clone());
        Ok(hub)
    }

    /// Sites whose first whole-tree comparison is not done yet (start-up work left).
    pub fn comparing(&self) -> usize {
        self.sites
            .values()
            .filter(|r| !r.shared.get().compared)
            .count()
    }

    /// Changes waiting in the outboxes of every site.
    pub fn pending(&self) -> usize {
        self.sites.values().map(|r| r.shared.get().pending).sum()
    }

    /// The health summary, `None` when nothing is replicated.
    pub fn summary(&self) -> Option<Summary> {
        if self.sites.is_empty() {
            return self.setup_error.as_ref().map(|e| Summary {
                detail: format!("replication: {e}"),
                degraded: true,
            });
        }
        let mut pending = 0;
        let mut down: BTreeMap<&str, (usize, String)> = BTreeMap::new();
        let mut errors = Vec::new();
        let mut over = Vec::new();
        let mut starting = 0;
        for (d, r) in &self.sites {
            let s = r.shared.get();
            pending += s.pending;
            starting += usize::from(!s.running);
            if let Some(e) = s.hub_down {
                let entry = down.entry(r.spec.origin.as_str()).or_insert((0, e));
                entry.0 += 1;
            }
            if let Some(e) = s.error {
                errors.push(format!("{d}: {e}"));
            }
            if s.over_quota {
                over.push(d.as_str());
            }
        }
        let mut detail = format!(
            "replicating {} sites, {pending} changes waiting",
            self.sites.len()
        );
        if starting > 0 {
            detail.push_str(&format!(", {starting} starting"));
        }
        for (origin, (n, e)) in &down {
            detail.push_str(&format!("; hub {origin} unreachable for {n} sites ({e})"));
        }
        if !errors.is_empty() {
            detail.push_str(&format!("; {}", errors.join("; ")));
        }
        if !over.is_empty() {
            detail.push_str(&format!("; over quota: {}", over.join(", ")));
        }
        if let Some(e) = &self.setup_error {
            detail.push_str(&format!("; {e}"));
        }
        Some(Summary {
            degraded: !down.is_empty() || !errors.is_empty() || self.setup_error.is_some(),
            detail,
        })
    }

    /// Stops every loop and the capture task.
    pub fn stop(&mut self) {
        for r in self.sites.values() {
            r.shared.stop.store(true, Ordering::Relaxed);
        }
        self.sites.clear();
        for p in std::mem::take(&mut self.pollers).into_values() {
            p.task.abort();
        }
        self.capture = None;
        if let Some(t) = self.capture_task.take() {
            t.abort();
        }
    }
}

impl Drop for Replication {
    fn drop(&mut self) {
        self.stop();
    }
}
