//! TLS for STARTTLS, STLS and the implicit-TLS ports: a rustls server config from
//! the PEM certificate chain and key the controller sends (pure parsing, no files).

use std::sync::Arc;

use proto::agent_v1::TlsMaterial;
use tokio_rustls::TlsAcceptor;

/// The certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// PEM or key trouble.
    #[error("tls material: {0}")]
    Material(String),
}

/// A TLS acceptor for `m`.
pub fn acceptor(m: &TlsMaterial) -> Result<TlsAcceptor, TlsError> {
    let certs = rustls_pemfile::certs(&mut m.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Material(format!("certificate: {e}")))?;
    if certs.is_empty() {
        return Err(TlsError::Material("no certificate".into()));
    }
    let key = rustls_pemfile::private_key(&mut m.key_pem.as_bytes())
        .map_err(|e| TlsError::Material(format!("key: {e}")))?
        .ok_or_else(|| TlsError::Material("no private key".into()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Material(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Material(e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(cfg)))
}

/// A TLS connector for opportunistic STARTTLS between mail servers: encrypts but
/// accepts any certificate (RFC 7435; MTA-STS/DANE are not implemented).
pub fn opportunistic_connector() -> Result<tokio_rustls::TlsConnector, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Material(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(cfg)))
}

/// Accepts every server certificate but still checks the handshake signatures.
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
