//! One site's replication loop, an async task (cheap: a thousand sites are a thousand
//! tasks, not threads) whose blocking work (the replica's disk I/O and calls to the
//! hub) runs on the engine's bounded [`Pool`]. It prepares the tree, opens the
//! [`Replica`], registers the tree with the engine's capture, compares the whole tree
//! once (writes made while the engine was down), then reacts to
//! - captured batches: observe (queued durably in the outbox) and push at once;
//! - news from the hub (the engine's one long poll per files server, [`super::poll`],
//!   so a write on another server arrives at once): pull and apply;
//! - a pending outbox while the hub is down or full: retry with backoff (1 s doubling
//!   to 4 s); the return of the hub is news too, so the outbox drains at once;
//! - every [`RESYNC`] (plus a per-site offset): compare the tree with the index and with the hub's manifest
//!   (the backstop for anything capture or the log missed).
//!
//! A pulled change is applied by the replica (temp file + rename); capture sees it,
//! and the replica's comparison with its index finds it equal: nothing loops back.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sitesync::api::HubError;
use sitesync::apply::Owner;
use sitesync::capture::Seen;
use sitesync::replica::{Look, Replica, ReplicaConfig};
use sitesync::transport::client::HttpsHub;

use super::capture::CaptureCmd;
use super::poll::{Registry, MAX_BACKOFF};
use super::pool::Pool;
use super::quota;
use super::tree;

/// How often the tree is compared with the hub's manifest (the backstop).
pub const RESYNC: Duration = Duration::from_secs(300);
/// Bytes per upload or download chunk.
const CHUNK: usize = 1 << 20;

/// What a site replicates, from the desired config: a change restarts the replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteSpec {
    /// The site (its name at the hub).
    pub domain: String,
    /// The hub (`https://ip:port`).
    pub origin: String,
    /// `<content_root>/<domain>` (holds `tree` and `current`).
    pub site_dir: PathBuf,
    /// The replica's state (index, outbox, tmp), outside anything served.
    pub state: PathBuf,
    /// Paths not replicated.
    pub local: Vec<String>,
    /// The site's system user (PHP sites): owner of the tree.
    pub user: Option<String>,
    /// Disk limit in MiB (0: none).
    pub quota_mb: u64,
    /// The engine's error log (where going over the quota is said).
    pub error_log: PathBuf,
}

/// What the loop reports for the engine's health.
#[derive(Debug, Clone, Default)]
pub struct SiteStatus {
    /// The replica is open and the tree watched.
    pub running: bool,
    /// Changes waiting in the outbox.
    pub pending: usize,
    /// Why the hub could not be reached, while it cannot.
    pub hub_down: Option<String>,
    /// The last local error (cannot open the replica, apply failed, …).
    pub error: Option<String>,
    /// Bytes of the site's files (from the replica's index).
    pub usage: u64,
    /// Over its quota: the tree is read-only for the site's user.
    pub over_quota: bool,
    /// The first whole-tree comparison (with the index and the hub's manifest) is done.
    pub compared: bool,
}

/// What wakes the loop.
#[derive(Debug)]
pub enum Msg {
    /// Capture saw these paths.
    Seen(Vec<Seen>),
    /// The hub's log has entries after ours, or the hub is back.
    News,
}

/// Shared between the engine, the loop and the poller of its files server.
#[derive(Debug, Default)]
pub struct Shared {
    /// Set to end the loop.
    pub stop: AtomicBool,
    /// The last hub log entry applied (what the long poll waits after).
    pub seq: AtomicU64,
    /// For the health detail.
    pub status: Mutex<SiteStatus>,
}

impl Shared {
    /// Changes the status.
    pub fn set(&self, f: impl FnOnce(&mut SiteStatus)) {
        f(&mut self
            .status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner));
    }

    /// A copy of the status.
    pub fn get(&self) -> SiteStatus {
        self.status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Everything the loop needs.
pub struct SiteRun {
    /// The site.
    pub spec: SiteSpec,
    /// This server's name (its certificate's CN).
    pub server: String,
    /// The hub over mutual TLS.
    pub hub: HttpsHub,
    /// Registers the tree with capture.
    pub capture: tokio::sync::mpsc::UnboundedSender<CaptureCmd>,
    /// The loop's own sender (given to capture and the poller).
    pub tx: tokio::sync::mpsc::UnboundedSender<Msg>,
    /// What wakes the loop.
    pub rx: tokio::sync::mpsc::UnboundedReceiver<Msg>,
    /// Stop flag, seq and status.
    pub shared: Arc<Shared>,
    /// Where the blocking work runs.
    pub pool: Pool,
    /// The sites of this files server's poller (woken when this one starts running).
    pub registry: Arc<Registry>,
}

/// A per-site offset of up to half of [`RESYNC`], so a thousand sites started together
/// do not all read their manifests in the same second.
fn spread(site: &str) -> Duration {
    let h = blake3::hash(site.as_bytes());
    let n = u64::from_le_bytes(h.as_bytes()[..8].try_into().unwrap_or_default());
    let half = u64::try_from(RESYNC.as_millis() / 2)
        .unwrap_or(u64::MAX)
        .max(1);
    Duration::from_millis(n % half)
}

fn lookup_owner(spec: &SiteSpec) -> Result<Option<Owner>, String> {
    if !rustix::process::geteuid().is_root() {
        return Ok(None);
    }
    let Some(user) = &spec.user else {
        return Ok(None);
    };
    let ids = crate::fpm::ensure_user(user).map_err(|e| e.to_string())?;
    Ok(Some(Owner {
        uid: ids.uid,
        gid: ids.gid,
    }))
}

/// Why [`open`] did not open the replica.
enum OpenError {
    /// Another replica of the site (one stopping) still holds its state: try again soon,
    /// without holding a pool thread meanwhile.
    Busy,
    /// Anything else, said for the status.
    Failed(String),
}

/// The replica state folders held by a running site loop of this process.
static HELD: std::sync::LazyLock<Mutex<std::collections::HashSet<PathBuf>>> =
    std::sync::LazyLock::new(Default::default);

/// A site's replica state, held by one site loop: a loop that stops and one that
/// starts for the same site (a config change) never touch it at once. An in-process
/// claim, not a lock file: a lock file held per site for the life of its replica was
/// one open descriptor per site, and a web server replicating 100,000 sites ran out
/// of them (the limit is 20,000 here). Released on drop.
#[derive(Debug)]
struct StateLock(PathBuf);

impl StateLock {
    /// Claims `state`, or `None` while another loop of this process holds it.
    fn try_take(state: &std::path::Path) -> Option<StateLock> {
        let mut held = HELD
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        held.insert(state.to_path_buf())
            .then(|| StateLock(state.to_path_buf()))
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        HELD.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.0);
    }
}

/// Takes the site's state lock (a replica that stops and one that starts for the same
/// site never touch its state at once), prepares the tree and opens the replica.
fn open(spec: &SiteSpec, server: &str) -> Result<(StateLock, Replica, Option<Owner>), OpenError> {
    let err = |what: &str| {
        let what = what.to_string();
        move |e: std::io::Error| OpenError::Failed(format!("{what}: {e}"))
    };
    durable::create_private_dir(&spec.state).map_err(err("creating the replica state"))?;
    let lock = StateLock::try_take(&spec.state).ok_or(OpenError::Busy)?;
    // the lock file of earlier versions, no longer used
    let _ = std::fs::remove_file(spec.state.join("lock"));
    let owner = lookup_owner(spec).map_err(OpenError::Failed)?;
    let root = tree::prepare(&spec.site_dir).map_err(err("preparing the site tree"))?;
    if let Some(o) = owner {
        let ids = crate::fpm::Ids {
            uid: o.uid,
            gid: o.gid,
        };
        tree::chown_tree(&root, ids).map_err(err("giving the tree to the site user"))?;
    }
    let replica = Replica::open(ReplicaConfig {
        site: spec.domain.clone(),
        server: server.to_string(),
        root,
        state: spec.state.clone(),
        local: spec.local.clone(),
        keep: Vec::new(),
        owner,
        chunk_size: CHUNK,
    })
    .map_err(|e| OpenError::Failed(format!("opening the replica: {e}")))?;
    Ok((lock, replica, owner))
}

/// Opens the site's replica, retrying until it opens or the loop is told to stop.
async fn open_until_stopped(run: &SiteRun) -> Option<(StateLock, Replica, Option<Owner>)> {
    let shared = &run.shared;
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            return None;
        }
        let (spec, server) = (run.spec.clone(), run.server.clone());
        let pause = match run.pool.run_background(move || open(&spec, &server)).await {
            Some(Ok(x)) => return Some(x),
            Some(Err(OpenError::Busy)) => Duration::from_millis(100),
            Some(Err(OpenError::Failed(e))) => {
                tracing::warn!(site = %run.spec.domain, error = %e, "sitesync: cannot start the replica");
                shared.set(|s| s.error = Some(e));
                Duration::from_secs(5)
            }
            None => {
                shared.set(|s| s.error = Some("opening the replica panicked".into()));
                Duration::from_secs(5)
            }
        };
        tokio::time::sleep(pause).await;
    }
}

/// Runs the site until told to stop. Never panics on the hub or the disk: errors go
/// to the status and the loop retries.
pub async fn run(mut run: SiteRun) {
    let shared = run.shared.clone();
    let site = run.spec.domain.clone();
    let Some((lock, replica, owner)) = open_until_stopped(&run).await else {
        return;
    };
    let root = replica.root_path().to_path_buf();
    let (ack, acked) = tokio::sync::oneshot::channel();
    let watch = CaptureCmd::Watch {
        site: site.clone(),
        root: root.clone(),
        local: run.spec.local.iter().map(PathBuf::from).collect(),
        tx: run.tx.clone(),
        ack,
    };
    if run.capture.send(watch).is_err() {
        return;
    }
    match acked.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            // served and pulled still; local writes reach the hub at the next resync
            tracing::warn!(%site, error = %e, "sitesync: cannot watch the tree");
            shared.set(|s| s.error = Some(format!("cannot watch the tree: {e}")));
        }
        Err(_) => return,
    }
    shared.seq.store(replica.index().seq, Ordering::Relaxed);
    shared.set(|s| {
        s.running = true;
        s.pending = replica.pending();
    });
    run.registry.changed.notify_one();
    let mut lp = Some(Box::new(Loop {
        _lock: lock,
        replica,
        hub: run.hub.clone(),
        shared: shared.clone(),
        spec: run.spec.clone(),
        owner,
        backoff: Duration::from_secs(1),
        retry_at: None,
        quota: quota::Lock::default(),
    }));
    let mut next_resync = Instant::now();
    while !shared.stop.load(Ordering::Relaxed) {
        let Some(mut cur) = lp.take() else { break };
        if Instant::now() >= next_resync {
            let Some(back) = Loop::step(cur, &run.pool, Lane::Background, |r, h| {
                r.observe(&[Look::Rescan])?;
                r.sync(h)?;
                match r.resync(h) {
                    Err(sitesync::replica::ReplicaError::Hub(HubError::Unavailable(_))) => Ok(()),
                    other => other,
                }
            })
            .await
            else {
                break;
            };
            cur = back;
            next_resync = Instant::now() + RESYNC + spread(&site);
            shared.set(|s| s.compared = true);
        }
        let mut wake = next_resync;
        if let Some(t) = cur.retry_at {
            wake = wake.min(t);
        }
        // wakes at least every second to notice `stop`
        let timeout = wake
            .saturating_duration_since(Instant::now())
            .min(Duration::from_secs(1));
        let mut looks = Vec::new();
        let mut news = false;
        match tokio::time::timeout(timeout, run.rx.recv()).await {
            Ok(Some(m)) => {
                let mut take = |m| match m {
                    Msg::Seen(v) => looks.extend(v),
                    Msg::News => news = true,
                };
                take(m);
                while let Ok(m) = run.rx.try_recv() {
                    take(m);
                }
            }
            Ok(None) => break,
            Err(_) => {}
        }
        if shared.stop.load(Ordering::Relaxed) {
            // replaced (changed settings) or removed: what capture saw meanwhile is for
            // the next loop, whose first step rescans the tree with the new settings;
            // observed here it would be pushed under the old ones (a path just made
            // local went to the hub while the next loop waited for the state lock)
            break;
        }
        let retry = cur.retry_at.is_some_and(|t| t <= Instant::now());
        let stepped = if !looks.is_empty() {
            Loop::step(cur, &run.pool, Lane::Write, move |r, h| {
                r.observe(&looks)?;
                r.sync(h).map(|_| ())
            })
            .await
        } else if news || retry {
            Loop::step(cur, &run.pool, Lane::Write, |r, h| r.sync(h).map(|_| ())).await
        } else {
            Some(cur)
        };
        lp = stepped;
    }
    shared.set(|s| s.running = false);
}

/// Which lane of the [`Pool`] a step runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    /// A write captured here or announced by the hub: never behind background work.
    Write,
    /// A whole-tree comparison (start, every [`RESYNC`]).
    Background,
}

/// The loop's state between steps: moved onto a pool thread for each step and back.
struct Loop {
    /// The site's state lock, held while the replica is open.
    _lock: StateLock,
    replica: Replica,
    hub: HttpsHub,
    shared: Arc<Shared>,
    spec: SiteSpec,
    owner: Option<Owner>,
    backoff: Duration,
    retry_at: Option<Instant>,
    quota: quota::Lock,
}

impl Loop {
    /// Runs one replica step on the pool; `None` if it panicked (the loop ends, its
    /// status says why).
    async fn step(
        mut this: Box<Loop>,
        pool: &Pool,
        lane: Lane,
        f: impl FnOnce(&mut Replica, &HttpsHub) -> Result<(), sitesync::replica::ReplicaError>
            + Send
            + 'static,
    ) -> Option<Box<Loop>> {
        let shared = this.shared.clone();
        let work = move || {
            this.step_here(f);
            this
        };
        let back = match lane {
            Lane::Write => pool.run(work).await,
            Lane::Background => pool.run_background(work).await,
        };
        if back.is_none() {
            shared
                .set(|s| s.error = Some("a replication step panicked; the replica stopped".into()));
        }
        back
    }

    /// Runs one replica step and records what it left: the pending outbox (retried with
    /// backoff), the hub's state, errors, usage and the quota lock.
    fn step_here(
        &mut self,
        f: impl FnOnce(&mut Replica, &HttpsHub) -> Result<(), sitesync::replica::ReplicaError>,
    ) {
        let res = f(&mut self.replica, &self.hub);
        let pending = self.replica.pending();
        if let Err(e) = &res {
            tracing::warn!(site = %self.spec.domain, error = %e, "sitesync: replication step failed");
        }
        if pending > 0 {
            self.retry_at = Some(Instant::now() + self.backoff);
            self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        } else {
            self.retry_at = None;
            self.backoff = Duration::from_secs(1);
        }
        self.shared
            .seq
            .store(self.replica.index().seq, Ordering::Relaxed);
        let usage = quota::usage(&self.replica);
        let was_locked = self.quota.locked();
        let over = self
            .quota
            .enforce(&self.spec, self.replica.root_path(), self.owner, usage);
        if was_locked && !self.quota.locked() {
            // what the hub refused while the site was over may fit now: push it again
            // at once rather than leave it on this server alone
            match self.replica.requeue_kept_local() {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(site = %self.spec.domain, paths = n, "sitesync: back under the quota; pushing refused writes again");
                    self.retry_at = Some(Instant::now());
                }
                Err(e) => {
                    tracing::warn!(site = %self.spec.domain, error = %e, "sitesync: cannot queue refused writes again")
                }
            }
        }
        self.shared.set(|s| {
            s.pending = pending;
            s.usage = usage;
            s.over_quota = over;
            s.error = res.err().map(|e| e.to_string());
        });
    }
}
