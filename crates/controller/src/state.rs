//! Shared state of the API handlers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use store::Store;
use tokio::sync::watch;

use crate::auth::{AuthCache, RateLimiter};
use crate::ca::Ca;
use crate::config::ControllerConfig;
use crate::configs::ConfigHub;
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
    pub ca: Option<Ca>,
    /// Bumped after every committed change; the config builder watches it.
    pub changes: watch::Sender<u64>,
    /// Set when the controller shuts down (blocking queries answer at once).
    pub stopping: watch::Sender<bool>,
    /// Every server's desired config and its revision.
    pub configs: ConfigHub,
    /// Servers' health as heartbeats and probes tell it.
    pub health: HealthMonitor,
    /// The placement lock: every placement decision is written holding it
    /// ([`crate::placement`]).
    pub placement: crate::placement::Placement,
    /// Sites per web server for placing new sites ([`crate::loads`]).
    pub site_loads: crate::loads::SiteLoads,
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
            ca,
            changes: watch::channel(0).0,
            stopping: watch::channel(false).0,
            configs,
            health,
            placement: crate::placement::Placement::default(),
            site_loads: crate::loads::SiteLoads::default(),
        }))
    }

    /// Tell the config builder that the store changed (call after every commit).
    pub fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
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
