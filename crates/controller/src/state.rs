//! Shared state of the API handlers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use store::Store;
use tokio::sync::watch;

use crate::auth::{AuthCache, RateLimiter};
use crate::ca::Ca;
use crate::config::ControllerConfig;
use crate::configs::{BuildDeps, ChangeNotifier, ConfigHub};
use crate::health::HealthMonitor;

/// Everything handlers share; cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Inner>);

/// The contents of [`AppState`].
#[derive(Debug)]
pub struct Inner {
    /// The store.
    pub store: Store,
    /// The configuration the controller runs with.
    pub config: ControllerConfig,
    /// When the controller started (for `uptime_seconds`).
    pub started: Instant,
    /// Verified tokens.
    pub auth: AuthCache,
    /// Bad join tokens per client address.
    pub limiter: RateLimiter,
    /// Bad bearer tokens per client address.
    pub bad_tokens: throttle::Throttle,
    /// Password logins (`POST /v1/auth/login`): the shared login throttle.
    pub logins: throttle::Throttle,
    /// The internal CA that signs agent certificates (None: joins are refused).
    pub ca: Option<Arc<Ca>>,
    /// Bumped after every committed change; the config builder and the key task
    /// watch it.
    pub changes: ChangeNotifier,
    /// Set when the controller shuts down (blocking queries answer at once).
    pub stopping: watch::Sender<bool>,
    /// Every server's desired config and its revision.
    pub configs: Arc<ConfigHub>,
    /// Servers' health as heartbeats and probes tell it.
    pub health: Arc<HealthMonitor>,
    /// The placement lock: every placement decision is written holding it
    /// ([`crate::placement`]).
    pub placement: crate::placement::Placement,
    /// Sites per web server for placing new sites ([`crate::loads`]).
    pub site_loads: Arc<crate::loads::SiteLoads>,
    /// Questions for agents and their answers ([`crate::ops`]).
    pub ops: Arc<crate::ops::OpsHub>,
}

impl AppState {
    /// State over an opened store, without a CA (agents cannot join).
    pub fn new(store: Store, config: ControllerConfig) -> Self {
        Self::with_ca(store, config, None)
    }

    /// State over an opened store with the CA that signs agent certificates.
    pub fn with_ca(store: Store, config: ControllerConfig, ca: Option<Ca>) -> Self {
        let per_minute = config.auth.failed_attempts_per_minute;
        let health = HealthMonitor::new(config.health.clone());
        let configs = open_config_hub(&config);
        Self(Arc::new(Inner {
            store,
            config,
            started: Instant::now(),
            auth: AuthCache::default(),
            limiter: RateLimiter::new(per_minute),
            bad_tokens: crate::auth::bad_token_throttle(per_minute),
            logins: throttle::Throttle::default(),
            ca: ca.map(Arc::new),
            changes: ChangeNotifier::default(),
            stopping: watch::channel(false).0,
            configs: Arc::new(configs),
            health: Arc::new(health),
            placement: crate::placement::Placement::default(),
            site_loads: Arc::default(),
            ops: Arc::default(),
        }))
    }

    /// Tell the config builder that the store changed (call after every commit).
    pub fn changed(&self) {
        self.changes.changed();
    }

    /// Ask every mail server to retry its queue now.
    pub fn flush_mail(&self) {
        crate::configs::flush_mail(&self.configs, &self.changes);
    }

    /// The parts of the state the config builder task works with.
    pub fn build_deps(&self) -> BuildDeps {
        BuildDeps {
            store: self.store.clone(),
            configs: Arc::clone(&self.configs),
            health: Arc::clone(&self.health),
            site_loads: Arc::clone(&self.site_loads),
            changes: self.changes.clone(),
            stopping: self.stopping.subscribe(),
            resync: std::time::Duration::from_millis(self.config.agents.resync_interval_ms),
            db_trash_days: self.config.databases.trash_days,
            site_versions_days: self.config.files.site_versions_days,
            default_plan: self.config.default_plan,
            probe_ports: self.config.health.probe_ports.clone(),
        }
    }

    /// The parts of the state the health monitor works with; the placement check
    /// at the end of each of its ticks is [`crate::placement::tick`] on this state.
    pub fn health_deps(&self) -> crate::health::HealthDeps {
        let state = self.clone();
        crate::health::HealthDeps {
            store: self.store.clone(),
            health: Arc::clone(&self.health),
            config: self.config.health.clone(),
            changes: self.changes.clone(),
            stopping: self.stopping.subscribe(),
            placement_tick: Arc::new(move || {
                let state = state.clone();
                Box::pin(async move { crate::placement::tick(&state).await })
            }),
        }
    }

    /// The parts of the state the key task works with.
    pub fn key_deps(&self) -> crate::keys::KeyDeps {
        crate::keys::KeyDeps {
            store: self.store.clone(),
            ca: self.ca.clone(),
            changes: self.changes.clone(),
            stopping: self.stopping.subscribe(),
            resync: std::time::Duration::from_millis(self.config.agents.resync_interval_ms),
            spares: self.config.keys.dkim_rsa_spares,
        }
    }

    /// Begin shutting down: blocking queries return.
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// The peer address of a connection, put into every request's extensions by the
/// server loop (used to rate-limit failed authentication per client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

/// The config hub, with zone serials journaled in the data dir when it exists.
fn open_config_hub(config: &ControllerConfig) -> ConfigHub {
    if !config.data_dir.is_dir() {
        return ConfigHub::default();
    }
    let path = config.data_dir.join("zone-serials.log");
    ConfigHub::with_serial_journal(&path).unwrap_or_else(|e| {
        tracing::error!(path = %path.display(), error = %e,
            "cannot open the zone serial journal; serials restart after a controller restart");
        ConfigHub::default()
    })
}
