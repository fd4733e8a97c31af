//! Shared PHP sessions (issue 15): a small session store inside the web engine, so a
//! user logged in through one web server of an `all` site is still logged in when
//! the next request reaches another.
//!
//! - [`resp`]: the Redis protocol subset PHP's `redis` session handler speaks, parsed
//!   with bounds (fuzzed by `fuzz/fuzz_targets/resp.rs` through [`fuzzing`]);
//! - [`store`]: the data, one namespace per site, expiry, a memory bound per site;
//! - [`command`]: the commands (pure), and the writes that travel between servers;
//! - [`server`]: the unix socket PHP connects to, the site chosen by the caller's uid;
//! - [`peers`], [`peer_tls`]: each write sent to the other web servers of the cluster
//!   (mutual TLS with the agents' certificates) before PHP gets its answer, and a
//!   snapshot fetched from them at start.
//!
//! Every PHP pool gets `session.save_handler = redis` and `session.save_path =
//! unix://<socket>` as `php_admin_value` ([`crate::fpm`]), so a site cannot point its
//! sessions anywhere else (nor read another site's: the namespace is never taken
//! from the key). See docs/web.md "Sessions across servers".

pub mod command;
pub mod fuzzing;
pub mod peer_tls;
pub mod peers;
pub mod resp;
pub mod server;
pub mod store;

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use agent::supervisor::AgentTlsPaths;
use arc_swap::ArcSwap;
use tokio::sync::watch;

pub use peers::Peer;
use peers::Replicator;
pub use store::Limits;
use store::Store;

/// How often expired keys are freed.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// How long PHP's commands wait at most for the snapshot a (re)started server asks
/// its peers for (PHP writes an empty session for an unknown id, which would
/// replace the user's session everywhere).
pub const READY_WAIT: Duration = Duration::from_secs(3);
/// How long PHP waits for the peers at most, by default.
pub const DEFAULT_WAIT: Duration = Duration::from_millis(500);

/// What the connections and the peer server share.
pub struct Shared {
    store: Mutex<Store>,
    /// Site (primary domain) by the uid of its pool user.
    by_uid: RwLock<Arc<HashMap<u32, Arc<str>>>>,
    /// Every PHP site of the config, served here or not (a `single` site's standby
    /// keeps its sessions for a failover): the namespaces kept and written by peers.
    sites: RwLock<Arc<BTreeSet<Arc<str>>>>,
    replicator: Replicator,
    /// Whether the snapshot from the peers arrived (or there was none to ask for).
    ready: watch::Sender<bool>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Shared {
    fn lock_store(&self) -> MutexGuard<'_, Store> {
        self.store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn site_of(&self, uid: u32) -> Option<Arc<str>> {
        self.by_uid
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&uid)
            .cloned()
    }

    /// Wait (at most [`READY_WAIT`]) until the start-up snapshot is in.
    async fn wait_ready(&self) {
        let mut rx = self.ready.subscribe();
        if !*rx.borrow() {
            let _ = tokio::time::timeout(READY_WAIT, rx.wait_for(|r| *r)).await;
        }
    }

    fn has_site(&self, site: &str) -> bool {
        self.sites
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(site)
    }
}

/// How the store is set up.
#[derive(Debug)]
pub struct Options {
    /// The unix socket PHP connects to (made mode 0666: anyone may connect, only a
    /// site's uid gets an answer).
    pub socket: PathBuf,
    /// Memory and time bounds.
    pub limits: Limits,
    /// How long a write waits for the peers at most.
    pub wait: Duration,
    /// The agent's identity (`None`: no replication, sessions stay on this server).
    pub identity: Option<AgentTlsPaths>,
    /// The replication listener (on the server's address) and the address outgoing
    /// connections come from.
    pub peer_listener: Option<std::net::TcpListener>,
    /// The server's address.
    pub bind: IpAddr,
}

/// The running session store.
pub struct Sessions {
    shared: Arc<Shared>,
    socket: PathBuf,
    peer_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Whether a snapshot was asked for already (once, with the first peers).
    snapshot_asked: bool,
    /// Why replication does not run, if it does not.
    setup_error: Option<String>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("socket", &self.socket)
            .field("peer_addr", &self.peer_addr)
            .finish_non_exhaustive()
    }
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

impl Sessions {
    /// Bind the socket and start serving (no site yet: every caller is refused until
    /// [`Sessions::set_sites`]).
    pub fn start(opts: Options) -> std::io::Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::remove_file(&opts.socket);
        let listener = tokio::net::UnixListener::bind(&opts.socket)?;
        std::fs::set_permissions(&opts.socket, std::fs::Permissions::from_mode(0o666))?;
        let names: peer_tls::PeerNames = Arc::new(ArcSwap::from_pointee(BTreeSet::new()));
        let (stop, stop_rx) = watch::channel(false);
        let mut setup_error = None;
        let mut client = None;
        let mut server_tls = None;
        if let Some(id) = &opts.identity {
            let made = peer_tls::client_config(id, names.clone())
                .map_err(|e| e.to_string())
                .and_then(|c| Replicator::client(c, opts.bind))
                .and_then(|c| {
                    let s = peer_tls::server_config(id).map_err(|e| e.to_string())?;
                    Ok((c, s))
                });
            match made {
                Ok((c, s)) => {
                    client = Some(c);
                    server_tls = Some(s);
                }
                Err(e) => setup_error = Some(e),
            }
        } else {
            setup_error = Some("no agent identity".into());
        }
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new(opts.limits)),
            by_uid: RwLock::default(),
            sites: RwLock::default(),
            replicator: Replicator::new(client, names, opts.wait),
            ready: watch::channel(false).0,
        });
        let mut tasks = vec![tokio::spawn(server::serve(
            listener,
            shared.clone(),
            stopped(stop_rx.clone()),
        ))];
        let sweeper = shared.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            loop {
                tick.tick().await;
                sweeper.lock_store().sweep(Instant::now());
            }
        }));
        let mut peer_addr = None;
        if let (Some(l), Some(tls)) = (opts.peer_listener, server_tls) {
            l.set_nonblocking(true)?;
            peer_addr = Some(l.local_addr()?);
            let l = tokio::net::TcpListener::from_std(l)?;
            let s = shared.clone();
            let handler = move |client, req| peers::handle(s.clone(), client, req);
            tasks.push(tokio::spawn(sitesync::transport::mtls::serve_mutual_tls(
                l,
                tls,
                "session replication",
                handler,
                stopped(stop_rx),
            )));
        }
        if let Some(e) = &setup_error {
            tracing::warn!(error = %e, "PHP sessions are not replicated");
        }
        Ok(Sessions {
            shared,
            socket: opts.socket,
            peer_addr,
            stop,
            tasks,
            snapshot_asked: false,
            setup_error,
        })
    }

    /// The socket PHP connects to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The replication address, when replication runs.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer_addr
    }

    /// Why replication does not run.
    pub fn setup_error(&self) -> Option<&str> {
        self.setup_error.as_deref()
    }

    /// The PHP sites of the config (`sites`, served here or not) and those PHP
    /// reaches the store for here, by the uid of their pool user; the sessions of
    /// sites no longer in the config are dropped.
    pub fn set_sites(&self, sites: BTreeSet<String>, by_uid: HashMap<u32, String>) {
        let keep: BTreeSet<Arc<str>> = sites.iter().map(|s| Arc::from(s.as_str())).collect();
        let map: HashMap<u32, Arc<str>> = by_uid
            .into_iter()
            .filter_map(|(u, s)| Some((u, keep.get(s.as_str())?.clone())))
            .collect();
        *self
            .shared
            .by_uid
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(map);
        self.shared.lock_store().retain_sites(|s| keep.contains(s));
        *self
            .shared
            .sites
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(keep);
    }

    /// The other web servers of the cluster. The first config after start asks
    /// them for their sessions (a server starting empty catches up); PHP's commands
    /// wait for that answer, at most [`READY_WAIT`].
    pub fn set_peers(&mut self, peers: Vec<Peer>) {
        let any = !peers.is_empty();
        self.shared.replicator.set_peers(peers);
        if self.snapshot_asked {
            return;
        }
        self.snapshot_asked = true;
        if !any {
            self.shared.ready.send_replace(true);
            return;
        }
        let shared = self.shared.clone();
        self.tasks.push(tokio::spawn(async move {
            if let Some(n) = shared.replicator.fetch_snapshot(&shared).await {
                tracing::info!(keys = n, "PHP sessions fetched from a peer");
            }
            shared.ready.send_replace(true);
        }));
    }

    /// One line for the engine's health: sessions held, peers, replication.
    pub fn summary(&self) -> String {
        let peers = self.shared.replicator.peers().len();
        let held = self.len();
        match (&self.setup_error, self.peer_addr) {
            (Some(e), _) => format!("PHP sessions: {held} held, not replicated ({e})"),
            (None, None) => format!("PHP sessions: {held} held, not replicated (no port)"),
            (None, Some(a)) => {
                format!("PHP sessions: {held} held, {peers} peers, replication port {a}")
            }
        }
    }

    /// Sessions held (all sites, expired ones not yet swept included).
    pub fn len(&self) -> usize {
        self.shared.lock_store().len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stop serving and remove the socket.
    pub fn stop(&mut self) {
        let _ = self.stop.send(true);
        for t in self.tasks.drain(..) {
            t.abort();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

impl Drop for Sessions {
    fn drop(&mut self) {
        self.stop();
    }
}
