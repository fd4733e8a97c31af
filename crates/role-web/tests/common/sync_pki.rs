//! A throwaway CA for site-file replication tests: the agent identity files a web
//! engine presents to a sitesync hub, and the hub's mutual-TLS server config.

use std::path::Path;
use std::sync::Arc;

use agent::supervisor::AgentTlsPaths;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

pub struct Pki {
    pub ca_pem: String,
    ca_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    pub fn new() -> Pki {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "test CA");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        Pki {
            ca_pem: cert.pem(),
            ca_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    pub fn sign(
        &self,
        cn: &str,
        sans: Vec<String>,
        eku: ExtendedKeyUsagePurpose,
    ) -> (String, KeyPair) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(sans).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        params.distinguished_name = dn;
        params.extended_key_usages = vec![eku];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key)
    }

    /// Writes the agent identity files of server `cn` into `dir`, as the agent keeps them.
    pub fn identity(&self, dir: &Path, cn: &str) -> AgentTlsPaths {
        let (cert, key) = self.sign(cn, vec![], ExtendedKeyUsagePurpose::ClientAuth);
        std::fs::create_dir_all(dir).unwrap();
        let paths = identity_paths(dir);
        std::fs::write(&paths.cert, cert).unwrap();
        std::fs::write(&paths.key, key.serialize_pem()).unwrap();
        std::fs::write(&paths.ca, &self.ca_pem).unwrap();
        paths
    }

    pub fn server_config(&self, ip: &str) -> Arc<rustls::ServerConfig> {
        let (pem, key) = self.sign(
            "files-1",
            vec![ip.to_string()],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let der = rustls_pemfile::certs(&mut pem.as_bytes())
            .next()
            .unwrap()
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone()).unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .unwrap();
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![der],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(cfg)
    }
}

/// Where a test server's identity files are.
pub fn identity_paths(dir: &Path) -> AgentTlsPaths {
    AgentTlsPaths {
        cert: dir.join("agent.crt"),
        key: dir.join("agent.key"),
        ca: dir.join("ca.crt"),
    }
}
