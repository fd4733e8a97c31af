//! hostplane's control plane: the REST API (axum) with authentication and tenancy,
//! the internal CA, the agent protocol (join, desired configs, heartbeats over
//! mutual TLS), the config builder, the health monitor and failover.
//!
//! The binary calls [`init::init`] once to create a data dir, then [`serve`] with an
//! already-bound listener and a shutdown signal.

#![forbid(unsafe_code)]

pub mod acme;
pub mod agent_api;
pub mod api;
pub mod archive;
pub mod auth;
pub mod builder;
pub mod ca;
pub mod catalog;
pub mod config;
pub mod configs;
pub mod delta;
pub mod deployments;
pub mod dkim_rsa;
pub mod dnsq;
pub mod endpoints;
pub mod error;
pub mod files;
pub mod health;
pub mod health_hold;
pub mod identities;
pub mod import;
pub mod init;
pub mod join;
pub mod keys;
pub mod limits;
pub mod live;
pub mod loads;
pub mod mailcheck;
pub mod openapi;
pub mod ops;
pub mod ownership;
pub mod placement;
pub mod rehash;
pub mod rejections;
pub mod secrets;
pub mod site_reports;
pub mod state;
pub mod tls;
pub mod totp;
pub mod zones;

use std::future::Future;
use std::time::Duration;

use axum::http::Request;
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tower::ServiceExt;
use tower_http::catch_panic::CatchPanicLayer;

use crate::state::{AppState, ClientAddr};

/// How long a client may take for the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open connections may finish their requests after shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors that stop the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration cannot work.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The store could not be opened.
    #[error("cannot open the store: {0}")]
    Store(#[from] store::StoreError),
    /// The TLS certificate or key could not be loaded.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// The full HTTP application (router plus panic guard) over `state`: the web
/// panel's pages at `/` (crate `panel`), every other path the REST API, which the
/// panel also calls in-process for everything it shows and does.
pub fn app(state: AppState) -> axum::Router {
    panel::router(api::router(state), pass_client_addr).layer(CatchPanicLayer::custom(
        |_: Box<dyn std::any::Any + Send>| {
            error::ApiError::internal("a request handler panicked").into_response()
        },
    ))
}

/// What a panel page's API calls keep of the browser request: the client address
/// (the login throttle and bad-token limits key on it).
fn pass_client_addr(ext: &axum::http::Extensions) -> axum::http::Extensions {
    let mut out = axum::http::Extensions::new();
    if let Some(a) = ext.get::<ClientAddr>() {
        out.insert(*a);
    }
    out
}

/// Serve the API on `listener` until `shutdown` completes. HTTPS unless the config
/// asks for plain HTTP (allowed on loopback only).
pub async fn serve(
    config: config::ControllerConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    config.validate()?;
    if !config.tls.enabled {
        let local = listener
            .local_addr()
            .map_err(|e| ServeError::Other(e.to_string()))?;
        if !local.ip().is_loopback() {
            return Err(ServeError::Config(config::ConfigError::Invalid {
                key: "tls.enabled",
                message: format!("plain HTTP is allowed only on loopback, not {local}"),
            }));
        }
    }
    let ca_path = config.ca_cert_path();
    let ca = if ca_path.exists() {
        Some(
            ca::Ca::load(&ca_path, &config.ca_key_path())
                .map_err(|e| ServeError::Other(format!("cannot load the internal CA: {e}")))?,
        )
    } else {
        tracing::warn!(path = %ca_path.display(), "no internal CA: agents cannot join");
        None
    };
    let acceptor = if config.tls.enabled {
        let client_ca = ca.as_ref().map(|_| ca_path.as_path());
        let tls = tls::server_config(&config.tls_cert_path(), &config.tls_key_path(), client_ca)?;
        Some(tokio_rustls::TlsAcceptor::from(tls))
    } else {
        None
    };
    let store = store::Store::open_url(&config.store_url()).await?;
    let state = AppState::with_ca(store.clone(), config, ca);
    // Archives of sites deleted or redeployed while no controller ran, and uploads
    // a stop interrupted.
    deployments::collect(&state, true).await;
    match ownership::report_conflicts(&state).await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(
            conflicts = n,
            "name ownership conflicts in the store (events `ownership.conflict`)"
        ),
        Err(e) => {
            tracing::error!(error = %e, "cannot check the store for name ownership conflicts")
        }
    }
    let app = app(state.clone());
    let mut background = vec![
        tokio::spawn(configs::run(state.build_deps())),
        tokio::spawn(keys::run(state.key_deps())),
        tokio::spawn(health::run(state.health_deps())),
    ];
    // ACME (issue 17): only with `[acme]`.
    if let Some(acme) = state.config.acme.clone() {
        background.push(tokio::spawn(acme::task::run(state.clone(), acme)));
    }
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let acceptor = acceptor.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let make_service = |cert: Option<tls::PeerCert>| {
                let app = app.clone();
                hyper::service::service_fn(move |mut req: Request<Incoming>| {
                    req.extensions_mut().insert(ClientAddr(peer));
                    if let Some(c) = &cert {
                        req.extensions_mut().insert(c.clone());
                    }
                    app.clone().oneshot(req)
                })
            };
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30));
            let result = match acceptor {
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let cert = tls
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(|c| c.first())
                                .and_then(|c| tls::PeerCert::from_der(c));
                            let service = make_service(cert);
                            let conn =
                                builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
                            watcher.watch(conn.into_owned()).await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    }
                }
                None => {
                    let service = make_service(None);
                    let conn =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    watcher.watch(conn.into_owned()).await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    state.stop();
    for task in &background {
        task.abort();
    }
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {DRAIN_TIMEOUT:?}; closing them");
    }
    store.close().await;
    Ok(())
}
