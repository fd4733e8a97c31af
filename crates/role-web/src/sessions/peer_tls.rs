//! Mutual TLS between the web servers of a cluster, with the identities the platform
//! already gave them: each agent's certificate (common name = server name, signed by
//! the controller CA at join) is both the client and the server certificate of the
//! session replication port.
//!
//! Agent certificates are client certificates (extended key usage `clientAuth`, no
//! address in them), so the client side does not verify the peer as a web server
//! would: it checks, with rustls's own WebPKI client verifier, that the peer's
//! certificate chains to the controller CA, and then that its common name is one of
//! the cluster's servers ([`PeerNames`]). The server side requires a client
//! certificate from the same CA and checks the same names per request.

use std::collections::BTreeSet;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::ring as provider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

use agent::supervisor::AgentTlsPaths;

/// The server names of this server's cluster peers (swapped on each config).
pub type PeerNames = Arc<ArcSwap<BTreeSet<String>>>;

/// The TLS files could not be read or used.
#[derive(Debug, thiserror::Error)]
#[error("session replication TLS: {0}")]
pub struct TlsError(pub String);

fn err(what: &str) -> impl Fn(String) -> TlsError + '_ {
    move |e| TlsError(format!("{what}: {e}"))
}

/// The common name of a certificate.
pub fn common_name(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let cn = parsed.subject().iter_common_name().next()?.as_str().ok()?;
    Some(cn.to_owned())
}

struct Material {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    verifier: Arc<dyn ClientCertVerifier>,
}

fn load(id: &AgentTlsPaths) -> Result<Material, TlsError> {
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
    Ok(Material {
        chain,
        key,
        verifier,
    })
}

/// The server side: a client certificate from the controller CA is required (which
/// server it names is checked per request against [`PeerNames`]).
pub fn server_config(id: &AgentTlsPaths) -> Result<Arc<ServerConfig>, TlsError> {
    let m = load(id)?;
    let mut cfg = ServerConfig::builder_with_provider(Arc::new(provider::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| err("server")(e.to_string()))?
        .with_client_cert_verifier(m.verifier)
        .with_single_cert(m.chain, m.key)
        .map_err(|e| err("server certificate")(e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// The client side: presents this server's certificate, accepts only a peer whose
/// certificate chains to the controller CA and names a server of `names`.
pub fn client_config(id: &AgentTlsPaths, names: PeerNames) -> Result<ClientConfig, TlsError> {
    let m = load(id)?;
    let verifier = Arc::new(PeerVerifier {
        inner: m.verifier,
        names,
    });
    let mut cfg = ClientConfig::builder_with_provider(Arc::new(provider::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| err("client")(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(m.chain, m.key)
        .map_err(|e| err("client certificate")(e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Verifies a peer's (client-usage) agent certificate and its name.
#[derive(Debug)]
struct PeerVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    names: PeerNames,
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
            Some(cn) if self.names.load().contains(&cn) => Ok(ServerCertVerified::assertion()),
            other => Err(rustls::Error::General(format!(
                "{} is not a server of this cluster",
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
