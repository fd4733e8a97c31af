//! Mutual TLS between servers of one cluster with the identities the platform
//! already gave them (PHP session replication between web servers, mailbox
//! replication between mail servers): each agent's certificate (common name =
//! server name, signed by the controller CA at join) is both the client and the
//! server certificate.
//!
//! Agent certificates are client certificates (extended key usage `clientAuth`, no
//! address in them), so the client side does not verify the peer as a web server
//! would: it checks, with rustls's own WebPKI client verifier, that the peer's
//! certificate chains to the controller CA, and then that its common name is a
//! server the caller accepts ([`PeerIdentity::client_config`]). The server side
//! requires a client certificate from the same CA; which server it names is for
//! the caller to check after the handshake ([`common_name`]).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::ring as provider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

use crate::supervisor::AgentTlsPaths;

/// The TLS files could not be read or used.
#[derive(Debug, thiserror::Error)]
#[error("peer TLS: {0}")]
pub struct TlsError(pub String);

fn err(what: &str) -> impl Fn(String) -> TlsError + '_ {
    move |e| TlsError(format!("{what}: {e}"))
}

/// The common name of a certificate (the server name of an agent certificate).
pub fn common_name(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let cn = parsed.subject().iter_common_name().next()?.as_str().ok()?;
    Some(cn.to_owned())
}

/// Which peer names a client accepts: `Ok` or the reason it refuses the name.
pub type AcceptPeer = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// This server's identity (certificate chain, key, and a verifier of certificates
/// from the controller CA), loaded once.
#[derive(Clone)]
pub struct PeerIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
    verifier: Arc<dyn ClientCertVerifier>,
}

impl std::fmt::Debug for PeerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerIdentity").finish_non_exhaustive()
    }
}

impl PeerIdentity {
    /// Load the agent's certificate, key and CA.
    pub fn load(id: &AgentTlsPaths) -> Result<Self, TlsError> {
        let read = |p: &std::path::Path| {
            std::fs::read(p).map_err(|e| TlsError(format!("{}: {e}", p.display())))
        };
        let chain = rustls_pemfile::certs(&mut &read(&id.cert)?[..])
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| err("certificate")(e.to_string()))?;
        let key = rustls_pemfile::private_key(&mut &read(&id.key)?[..])
            .map_err(|e| err("key")(e.to_string()))?
            .ok_or_else(|| TlsError("no private key".into()))?;
        let mut roots = RootCertStore::empty();
        for c in rustls_pemfile::certs(&mut &read(&id.ca)?[..]) {
            let c = c.map_err(|e| err("CA")(e.to_string()))?;
            roots.add(c).map_err(|e| err("CA")(e.to_string()))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(provider::default_provider()),
        )
        .build()
        .map_err(|e| err("verifier")(e.to_string()))?;
        Ok(Self {
            chain,
            key: Arc::new(key),
            verifier,
        })
    }

    /// The server side: a client certificate from the controller CA is required.
    pub fn server_config(&self, alpn: &[&[u8]]) -> Result<Arc<ServerConfig>, TlsError> {
        let mut cfg = ServerConfig::builder_with_provider(Arc::new(provider::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| err("server")(e.to_string()))?
            .with_client_cert_verifier(Arc::clone(&self.verifier))
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| err("server certificate")(e.to_string()))?;
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(cfg))
    }

    /// The client side: presents this server's certificate, accepts only a peer
    /// whose certificate chains to the controller CA and whose name `accept` takes.
    pub fn client_config(
        &self,
        accept: AcceptPeer,
        alpn: &[&[u8]],
    ) -> Result<ClientConfig, TlsError> {
        let verifier = Arc::new(PeerVerifier {
            inner: Arc::clone(&self.verifier),
            accept,
        });
        let mut cfg = ClientConfig::builder_with_provider(Arc::new(provider::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| err("client")(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| err("client certificate")(e.to_string()))?;
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(cfg)
    }
}

/// Verifies a peer's (client-usage) agent certificate and its name.
struct PeerVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    accept: AcceptPeer,
}

impl std::fmt::Debug for PeerVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerVerifier").finish_non_exhaustive()
    }
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
        let Some(cn) = common_name(end_entity) else {
            return Err(rustls::Error::General(
                "the peer's certificate has no name".into(),
            ));
        };
        (self.accept)(&cn)
            .map(|()| ServerCertVerified::assertion())
            .map_err(rustls::Error::General)
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
