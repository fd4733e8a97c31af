//! TLS plumbing (rustls, ring provider): the swappable server certificate shared by
//! FTPS and the sync port, and the sync port's client-certificate verifier (web servers'
//! replicas reach the site-file hub with their agent certificates).

use std::sync::{Arc, RwLock};

use rustls::crypto::ring as provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};

use crate::error::FilesError;

/// Parse every certificate of a PEM bundle.
pub fn parse_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, FilesError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| FilesError::Tls(format!("certificate PEM: {e}")))?;
    if certs.is_empty() {
        return Err(FilesError::Tls("no certificate in PEM".into()));
    }
    Ok(certs)
}

/// Parse the first private key of a PEM document.
pub fn parse_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, FilesError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| FilesError::Tls(format!("private key PEM: {e}")))
}

/// A certificate chain and key ready for rustls.
pub fn certified_key(cert_pem: &str, key_pem: &str) -> Result<Arc<CertifiedKey>, FilesError> {
    let certs = parse_certs(cert_pem.as_bytes())?;
    let key = parse_key(key_pem.as_bytes())?;
    let signing = provider::sign::any_supported_type(&key)
        .map_err(|e| FilesError::Tls(format!("unsupported key: {e}")))?;
    let ck = CertifiedKey::new(certs, signing);
    ck.keys_match()
        .map_err(|e| FilesError::Tls(format!("certificate and key do not match: {e}")))?;
    Ok(Arc::new(ck))
}

/// A root store holding the certificates of `ca_pem`.
pub fn root_store(ca_pem: &[u8]) -> Result<RootCertStore, FilesError> {
    let mut roots = RootCertStore::empty();
    for c in parse_certs(ca_pem)? {
        roots
            .add(c)
            .map_err(|e| FilesError::Tls(format!("CA certificate: {e}")))?;
    }
    Ok(roots)
}

/// The server certificate, swappable while serving: handshakes after [`SwapCert::set`]
/// use the new one; established connections are untouched.
#[derive(Debug, Default)]
pub struct SwapCert {
    current: RwLock<Option<Arc<CertifiedKey>>>,
}

impl SwapCert {
    /// Install (or remove, with `None`) the certificate.
    pub fn set(&self, ck: Option<Arc<CertifiedKey>>) {
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = ck;
    }

    /// Whether a certificate is installed.
    pub fn is_set(&self) -> bool {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some()
    }
}

impl ResolvesServerCert for SwapCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Server config for FTPS: no client certificates, certificate from `cert`.
pub fn ftps_config(cert: Arc<SwapCert>) -> Result<Arc<ServerConfig>, FilesError> {
    let mut cfg = ServerConfig::builder_with_provider(Arc::new(provider::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| FilesError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    // No TLS 1.3 session tickets: libunftp only reads from an upload's data connection,
    // so tickets sent after the handshake stay unread at the client, whose close then
    // becomes a reset that can cut the end of the upload (curl: 426). TLS 1.2 session
    // IDs (the default in-memory cache) still allow data-connection resumption.
    cfg.send_tls13_tickets = 0;
    Ok(Arc::new(cfg))
}

/// Server config for the sync port (the site-file hub's routes): client certificates
/// required, chaining to the CA of `ca_pem`; certificate from `cert`.
pub fn sync_port_config(
    cert: Arc<SwapCert>,
    ca_pem: &[u8],
) -> Result<Arc<ServerConfig>, FilesError> {
    let p = Arc::new(provider::default_provider());
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(root_store(ca_pem)?), p.clone())
            .build()
            .map_err(|e| FilesError::Tls(format!("client verifier: {e}")))?;
    let mut cfg = ServerConfig::builder_with_provider(p)
        .with_safe_default_protocol_versions()
        .map_err(|e| FilesError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(cert);
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}
