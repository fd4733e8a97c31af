//! Mutual TLS of the replication port, with the identities the platform already
//! gave the servers: each agent's certificate (common name = server name, signed
//! by the controller CA at join, extended key usage `clientAuth`) is both the
//! client and the server certificate. As in role-web's session replication
//! (`role-web/src/sessions/peer_tls.rs`, which this follows): the client checks
//! with rustls's WebPKI client verifier that the peer's certificate chains to the
//! controller CA and that its common name is exactly the server it meant to reach
//! (`MailPeer::server`); the server requires a client certificate from the same CA
//! and checks its name against the cluster's peers after the handshake.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::ring as provider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

use agent::supervisor::AgentTlsPaths;

/// The TLS files could not be read or used.
#[derive(Debug, thiserror::Error)]
#[error("mail replication TLS: {0}")]
pub struct TlsError(pub String);

/// The common name of a certificate.
pub fn common_name(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let cn = parsed.subject().iter_common_name().next()?.as_str().ok()?;
    Some(cn.to_owned())
}

/// This server's identity, loaded once.
#[derive(Clone)]
pub struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
    verifier: Arc<dyn ClientCertVerifier>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").finish_non_exhaustive()
    }
}

impl Identity {
    /// Load the agent's certificate, key and CA.
    pub fn load(id: &AgentTlsPaths) -> Result<Self, TlsError> {
        let read = |p: &std::path::Path| {
            std::fs::read(p).map_err(|e| TlsError(format!("{}: {e}", p.display())))
        };
        let e = |what: &str, e: String| TlsError(format!("{what}: {e}"));
        let chain = rustls_pemfile::certs(&mut &read(&id.cert)?[..])
            .collect::<Result<Vec<_>, _>>()
            .map_err(|x| e("certificate", x.to_string()))?;
        let key = rustls_pemfile::private_key(&mut &read(&id.key)?[..])
            .map_err(|x| e("key", x.to_string()))?
            .ok_or_else(|| TlsError("no private key".into()))?;
        let mut roots = RootCertStore::empty();
        for c in rustls_pemfile::certs(&mut &read(&id.ca)?[..]) {
            let c = c.map_err(|x| e("CA", x.to_string()))?;
            roots.add(c).map_err(|x| e("CA", x.to_string()))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(provider::default_provider()),
        )
        .build()
        .map_err(|x| e("verifier", x.to_string()))?;
        Ok(Self {
            chain,
            key: Arc::new(key),
            verifier,
        })
    }

    /// The server side: a client certificate from the controller CA is required.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let cfg = ServerConfig::builder_with_provider(Arc::new(provider::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(e.to_string()))?
            .with_client_cert_verifier(Arc::clone(&self.verifier))
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| TlsError(format!("server certificate: {e}")))?;
        Ok(Arc::new(cfg))
    }

    /// The client side towards the server named `peer`.
    pub fn client_config(&self, peer: &str) -> Result<Arc<ClientConfig>, TlsError> {
        let verifier = Arc::new(PeerVerifier {
            inner: Arc::clone(&self.verifier),
            name: peer.to_string(),
        });
        let cfg = ClientConfig::builder_with_provider(Arc::new(provider::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| TlsError(format!("client certificate: {e}")))?;
        Ok(Arc::new(cfg))
    }
}

/// Verifies a peer's (client-usage) agent certificate and its exact name.
#[derive(Debug)]
struct PeerVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    name: String,
}

impl ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_client_cert(end_entity, intermediates, now)?;
        match common_name(end_entity) {
            Some(cn) if cn == self.name => Ok(ServerCertVerified::assertion()),
            other => Err(rustls::Error::General(format!(
                "expected server {}, the peer is {}",
                self.name,
                other.unwrap_or_else(|| "a certificate without a name".into())
            ))),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
