//! The controller's internal certificate authority (ECDSA P-256): it signs the API's
//! server certificate and, later, the certificates agents request when they join.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
    PKCS_ECDSA_P256_SHA256,
};
use time::{Duration, OffsetDateTime};

use crate::files::write_atomic;

/// Lifetime of the CA certificate (about ten years).
pub const CA_VALIDITY: Duration = Duration::days(3653);
/// Lifetime of certificates the CA signs.
pub const LEAF_VALIDITY: Duration = Duration::days(825);

/// CA failures.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Key generation, parsing or signing failed.
    #[error("certificate error: {0}")]
    Cert(#[from] rcgen::Error),
    /// A requested name cannot be put in a certificate.
    #[error("`{0}` is neither an IP address nor a DNS name")]
    BadName(String),
}

/// A certificate and its private key, both PEM.
#[derive(Clone)]
pub struct Issued {
    /// The certificate (PEM).
    pub cert_pem: String,
    /// Its private key (PKCS#8 PEM). Keep it 0600.
    pub key_pem: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

/// The internal CA: its certificate and the key that signs with it.
pub struct Ca {
    cert_pem: String,
    key_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f; // positive
    SerialNumber::from_slice(&bytes)
}

impl Ca {
    /// Create a new CA with a fresh P-256 key, valid for about ten years.
    pub fn generate(common_name: &str) -> Result<Self, CaError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        dn.push(DnType::OrganizationName, "hostplane");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + CA_VALIDITY;
        params.serial_number = Some(random_serial());
        let cert = params.self_signed(&key)?;
        let key_pem = key.serialize_pem();
        Ok(Self {
            cert_pem: cert.pem(),
            key_pem,
            issuer: Issuer::new(params, key),
        })
    }

    /// Load a CA written by [`Ca::write`].
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, CaError> {
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|source| CaError::Io {
                path: p.display().to_string(),
                source,
            })
        };
        let cert_pem = read(cert_path)?;
        let key_pem = read(key_path)?;
        let key = KeyPair::from_pem(&key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)?;
        Ok(Self {
            cert_pem,
            key_pem,
            issuer,
        })
    }

    /// Write the certificate (0644) and key (0600) atomically.
    pub fn write(&self, cert_path: &Path, key_path: &Path) -> Result<(), CaError> {
        let io = |p: &Path, source| CaError::Io {
            path: p.display().to_string(),
            source,
        };
        write_atomic(key_path, self.key_pem.as_bytes(), 0o600).map_err(|e| io(key_path, e))?;
        write_atomic(cert_path, self.cert_pem.as_bytes(), 0o644).map_err(|e| io(cert_path, e))?;
        Ok(())
    }

    /// The CA certificate (PEM) that clients and agents trust.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Issue a server certificate for `names` (DNS names and/or IP addresses; the first
    /// is the common name) with a fresh P-256 key.
    pub fn sign_server_cert(&self, names: &[String]) -> Result<Issued, CaError> {
        self.sign(names, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// Issue a client certificate (for mutual TLS) for `names` with a fresh key.
    pub fn sign_client_cert(&self, names: &[String]) -> Result<Issued, CaError> {
        self.sign(names, ExtendedKeyUsagePurpose::ClientAuth)
    }

    /// Sign an agent's certificate signing request (PEM) as a client certificate
    /// whose subject common name is `common_name`; returns the certificate (PEM).
    ///
    /// Only the CSR's public key is used (its signature is checked): the subject,
    /// names and extensions requested are ignored, so a CSR cannot ask for more than
    /// a client certificate for `common_name`.
    pub fn sign_csr(&self, csr_pem: &str, common_name: &str) -> Result<String, CaError> {
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem)?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + LEAF_VALIDITY;
        params.serial_number = Some(random_serial());
        csr.params = params;
        Ok(csr.signed_by(&self.issuer)?.pem())
    }

    fn sign(&self, names: &[String], eku: ExtendedKeyUsagePurpose) -> Result<Issued, CaError> {
        let mut unique: Vec<String> = Vec::new();
        for n in names {
            let n = n.trim().trim_end_matches('.').to_ascii_lowercase();
            if !is_cert_name(&n) {
                return Err(CaError::BadName(n));
            }
            if !unique.contains(&n) {
                unique.push(n);
            }
        }
        let mut params = CertificateParams::new(unique.clone())
            .map_err(|_| CaError::BadName(unique.join(", ")))?;
        let mut dn = DistinguishedName::new();
        if let Some(first) = unique.first() {
            dn.push(DnType::CommonName, first.as_str());
        }
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![eku];
        params.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + LEAF_VALIDITY;
        params.serial_number = Some(random_serial());
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// An IP address, or a DNS name of letters, digits, hyphens and dots (a leading
/// `*.` for wildcards).
fn is_cert_name(n: &str) -> bool {
    if n.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let host = n.strip_prefix("*.").unwrap_or(n);
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_write_load_sign() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::generate("test CA").unwrap();
        let (c, k) = (dir.path().join("ca.pem"), dir.path().join("ca.key"));
        ca.write(&c, &k).unwrap();
        let loaded = Ca::load(&c, &k).unwrap();
        assert_eq!(loaded.cert_pem(), ca.cert_pem());
        let leaf = loaded
            .sign_server_cert(&["localhost".into(), "127.0.0.1".into(), "::1".into()])
            .unwrap();
        assert!(leaf.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let agent_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut req = CertificateParams::new(vec!["evil.example".to_string()]).unwrap();
        req.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let csr = req.serialize_request(&agent_key).unwrap().pem().unwrap();
        let cert = loaded.sign_csr(&csr, "web-1").unwrap();
        let der = rustls_pemfile::certs(&mut cert.as_bytes())
            .next()
            .unwrap()
            .unwrap();
        let peer = crate::tls::PeerCert::from_der(&der).unwrap();
        assert_eq!(peer.common_name, "web-1");
        assert!(loaded.sign_csr("not a csr", "web-1").is_err());
        assert!(matches!(
            loaded.sign_server_cert(&["bad name!".into()]),
            Err(CaError::BadName(_))
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&k).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }
}
