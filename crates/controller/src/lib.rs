//! hostplane's control plane: the REST API (axum) with authentication and tenancy,
//! the internal CA, and (later) config builders, health monitor and reconcilers.
//!
//! The binary calls [`init::init`] once to create a data dir, then [`serve`] with an
//! already-bound listener and a shutdown signal.

#![forbid(unsafe_code)]

pub mod config;
pub mod init;

use std::future::Future;

/// Errors that stop the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Anything.
    #[error("{0}")]
    Other(String),
}

/// Serve the API on `listener` until `shutdown` completes. HTTPS unless the config
/// asks for plain HTTP (allowed on loopback only).
pub async fn serve(
    _config: config::ControllerConfig,
    _listener: tokio::net::TcpListener,
    _shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    unimplemented!()
}
