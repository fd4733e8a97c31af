//! Shared state of the API handlers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use store::Store;

use crate::auth::{AuthCache, RateLimiter};
use crate::config::ControllerConfig;

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
    /// Failed-authentication counters.
    pub limiter: RateLimiter,
}

impl AppState {
    /// State over an opened store.
    pub fn new(store: Store, config: ControllerConfig) -> Self {
        let per_minute = config.auth.failed_attempts_per_minute;
        Self(Arc::new(Inner {
            store,
            config,
            started: Instant::now(),
            auth: AuthCache::default(),
            limiter: RateLimiter::new(per_minute),
        }))
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
