//! TLS: parsing a site's certificate and key, and choosing the certificate by SNI.
//!
//! [`SniResolver`] looks the SNI name up on every handshake: first in a [`CertStore`]
//! of certificates obtained at run time (the hook for ACME: an issuer inserts there and
//! the next handshake uses it), then in the current [`Plan`](crate::Plan). Both change
//! without a restart. A handshake without SNI, or with a name no active site has, is
//! refused (no default certificate: it would reveal another site's names).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use proto::agent_v1::TlsMaterial;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::sync::watch;

use crate::plan::Plan;

/// A certificate or key that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate PEM holds no certificate.
    #[error("no certificate in the certificate PEM")]
    NoCertificate,
    /// The key PEM holds no private key.
    #[error("no private key in the key PEM")]
    NoKey,
    /// The PEM did not parse.
    #[error("bad PEM: {0}")]
    Pem(#[from] std::io::Error),
    /// rustls refused the key or found it does not match the certificate.
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
}

/// Parse `m` into a rustls certified key, checking the key matches the certificate.
pub fn certified_key(m: &TlsMaterial) -> Result<CertifiedKey, TlsError> {
    let certs = rustls_pemfile::certs(&mut m.cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>()?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    let key = rustls_pemfile::private_key(&mut m.key_pem.as_bytes())?.ok_or(TlsError::NoKey)?;
    let provider = rustls::crypto::ring::default_provider();
    Ok(CertifiedKey::from_der(certs, key, &provider)?)
}

/// Certificates added at run time (e.g. ACME-issued), by lowercase host name. They
/// take precedence over the plan's. Cloning shares the store.
#[derive(Clone, Default)]
pub struct CertStore {
    inner: Arc<RwLock<HashMap<String, Arc<CertifiedKey>>>>,
}

impl std::fmt::Debug for CertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertStore").finish_non_exhaustive()
    }
}

impl CertStore {
    /// Serve `key` for `host` from the next handshake on.
    pub fn insert(&self, host: &str, key: Arc<CertifiedKey>) {
        self.write().insert(host.to_ascii_lowercase(), key);
    }

    /// Stop serving a run-time certificate for `host` (the plan's applies again).
    pub fn remove(&self, host: &str) {
        self.write().remove(&host.to_ascii_lowercase());
    }

    /// The run-time certificate of `host`, if any.
    pub fn get(&self, host: &str) -> Option<Arc<CertifiedKey>> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(host)
            .cloned()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<CertifiedKey>>> {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Picks the certificate by SNI over the live plan and the run-time store.
pub struct SniResolver {
    plan: watch::Receiver<Arc<Plan>>,
    store: CertStore,
}

impl std::fmt::Debug for SniResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SniResolver").finish_non_exhaustive()
    }
}

impl SniResolver {
    /// A resolver over `plan` (always the current one) and `store`.
    pub fn new(plan: watch::Receiver<Arc<Plan>>, store: CertStore) -> Self {
        Self { plan, store }
    }

    /// The certificate for SNI name `host`, if an active site has one.
    pub fn lookup(&self, host: &str) -> Option<Arc<CertifiedKey>> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let plan = self.plan.borrow().clone();
        let site = plan.site_for_host(&host)?;
        self.store
            .get(&host)
            .or_else(|| self.store.get(&site.domain))
            .or_else(|| site.cert.clone())
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name()?;
        let key = self.lookup(name);
        if key.is_none() {
            tracing::debug!(sni = name, "no certificate for SNI name; handshake refused");
        }
        key
    }
}

/// The server TLS config: SNI resolver, ALPN `h2` then `http/1.1`, TLS 1.2 and 1.3.
pub fn server_config(resolver: SniResolver) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}
