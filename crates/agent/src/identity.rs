//! The agent's mutual-TLS identity in `state_dir/identity/`:
//!
//! | file | content | mode |
//! | --- | --- | --- |
//! | `key.pem` | ECDSA P-256 private key (PKCS#8), generated on first start | 0600 |
//! | `cert.pem` | client certificate the controller CA signed at join | 0644 |
//! | `ca.pem` | the controller CA, the only root trusted after join | 0644 |
//! | `server.json` | server, cluster and role the controller registered | 0644 |
//!
//! An agent with all four files has joined and never joins again.

use std::path::{Path, PathBuf};

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_ECDSA_P256_SHA256};
use serde::{Deserialize, Serialize};

use crate::fsutil::{create_private_dir, write_atomic};

/// Identity failures.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Key generation, key parsing or CSR creation failed.
    #[error("key or CSR: {0}")]
    Key(#[from] rcgen::Error),
    /// A stored or received certificate, key or record is unusable.
    #[error("{0}")]
    Invalid(String),
}

fn io_err(path: &Path, source: std::io::Error) -> IdentityError {
    IdentityError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// What the controller registered at join (`server.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinInfo {
    /// Server name (the certificate's common name).
    pub server: String,
    /// Cluster name.
    pub cluster: String,
    /// Role of the cluster.
    pub role: String,
}

/// A complete identity: key, certificate, CA and join record.
#[derive(Clone)]
pub struct Identity {
    /// Private key (PKCS#8 PEM).
    pub key_pem: String,
    /// Client certificate (PEM).
    pub cert_pem: String,
    /// Controller CA certificate (PEM).
    pub ca_pem: String,
    /// What the controller registered.
    pub info: JoinInfo,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// Paths of the identity files under a state directory.
#[derive(Debug, Clone)]
pub struct IdentityPaths {
    /// `state_dir/identity`.
    pub dir: PathBuf,
}

impl IdentityPaths {
    /// The identity directory of `state_dir`.
    pub fn new(state_dir: &Path) -> Self {
        Self {
            dir: state_dir.join("identity"),
        }
    }
    /// `key.pem`.
    pub fn key(&self) -> PathBuf {
        self.dir.join("key.pem")
    }
    /// `cert.pem`.
    pub fn cert(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }
    /// `ca.pem`.
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    /// `server.json`.
    pub fn info(&self) -> PathBuf {
        self.dir.join("server.json")
    }
}

fn read_opt(path: &Path) -> Result<Option<String>, IdentityError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path, e)),
    }
}

/// Load the identity of `state_dir`, or `None` when the agent has not joined yet
/// (any of the four files missing).
pub fn load(state_dir: &Path) -> Result<Option<Identity>, IdentityError> {
    let p = IdentityPaths::new(state_dir);
    let (Some(key_pem), Some(cert_pem), Some(ca_pem), Some(info)) = (
        read_opt(&p.key())?,
        read_opt(&p.cert())?,
        read_opt(&p.ca())?,
        read_opt(&p.info())?,
    ) else {
        return Ok(None);
    };
    let info: JoinInfo = serde_json::from_str(&info)
        .map_err(|e| IdentityError::Invalid(format!("{}: {e}", p.info().display())))?;
    let id = Identity {
        key_pem,
        cert_pem,
        ca_pem,
        info,
    };
    id.check()?;
    Ok(Some(id))
}

/// The private key (PEM) of `state_dir`, generating and storing (0600) a new
/// ECDSA P-256 key when there is none.
pub fn load_or_create_key(state_dir: &Path) -> Result<String, IdentityError> {
    let p = IdentityPaths::new(state_dir);
    if let Some(pem) = read_opt(&p.key())? {
        KeyPair::from_pem(&pem)
            .map_err(|e| IdentityError::Invalid(format!("{}: {e}", p.key().display())))?;
        return Ok(pem);
    }
    create_private_dir(&p.dir).map_err(|e| io_err(&p.dir, e))?;
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let pem = key.serialize_pem();
    write_atomic(&p.key(), pem.as_bytes(), 0o600).map_err(|e| io_err(&p.key(), e))?;
    Ok(pem)
}

/// A PKCS#10 certificate signing request (PEM) for `key_pem` with subject
/// common name `name`.
pub fn make_csr(key_pem: &str, name: &str) -> Result<String, IdentityError> {
    let key = KeyPair::from_pem(key_pem)?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    Ok(params.serialize_request(&key)?.pem()?)
}

/// Store what a successful join returned (certificate, CA, join record) next to
/// the key and return the complete identity.
pub fn store_join(
    state_dir: &Path,
    key_pem: &str,
    resp: &proto::agent_v1::JoinResponse,
) -> Result<Identity, IdentityError> {
    let id = Identity {
        key_pem: key_pem.to_string(),
        cert_pem: resp.cert_pem.clone(),
        ca_pem: resp.ca_pem.clone(),
        info: JoinInfo {
            server: resp.server.clone(),
            cluster: resp.cluster.clone(),
            role: resp.role.clone(),
        },
    };
    id.check()?;
    let p = IdentityPaths::new(state_dir);
    create_private_dir(&p.dir).map_err(|e| io_err(&p.dir, e))?;
    let info = serde_json::to_vec_pretty(&id.info)
        .map_err(|e| IdentityError::Invalid(format!("join record: {e}")))?;
    write_atomic(&p.ca(), id.ca_pem.as_bytes(), 0o644).map_err(|e| io_err(&p.ca(), e))?;
    write_atomic(&p.cert(), id.cert_pem.as_bytes(), 0o644).map_err(|e| io_err(&p.cert(), e))?;
    // Written last: its presence marks a complete identity.
    write_atomic(&p.info(), &info, 0o644).map_err(|e| io_err(&p.info(), e))?;
    Ok(id)
}

impl Identity {
    /// Check that the PEM material is usable for mutual TLS.
    pub fn check(&self) -> Result<(), IdentityError> {
        self.tls_identity()?;
        reqwest::Certificate::from_pem(self.ca_pem.as_bytes())
            .map_err(|e| IdentityError::Invalid(format!("controller CA: {e}")))?;
        if !self.ca_pem.contains("-----BEGIN CERTIFICATE-----") {
            return Err(IdentityError::Invalid(
                "controller CA holds no certificate".into(),
            ));
        }
        if self.info.server.is_empty() {
            return Err(IdentityError::Invalid("join record has no server".into()));
        }
        Ok(())
    }

    /// The client identity (certificate + key) for reqwest.
    pub fn tls_identity(&self) -> Result<reqwest::Identity, IdentityError> {
        if !self.cert_pem.contains("-----BEGIN CERTIFICATE-----") {
            return Err(IdentityError::Invalid(
                "client certificate holds no certificate".into(),
            ));
        }
        let mut pem = self.cert_pem.trim_end().to_string();
        pem.push('\n');
        pem.push_str(&self.key_pem);
        reqwest::Identity::from_pem(pem.as_bytes())
            .map_err(|e| IdentityError::Invalid(format!("client certificate or key: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_created_once_with_mode_0600_and_csr_parses() {
        let dir = tempfile::tempdir().unwrap();
        let k1 = load_or_create_key(dir.path()).unwrap();
        let k2 = load_or_create_key(dir.path()).unwrap();
        assert_eq!(k1, k2);
        let csr = make_csr(&k1, "web-1").unwrap();
        assert!(csr.starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
        assert!(load(dir.path()).unwrap().is_none());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let p = IdentityPaths::new(dir.path());
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&p.key()), 0o600);
            assert_eq!(mode(&p.dir), 0o700);
        }
    }

    #[test]
    fn garbage_join_response_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = load_or_create_key(dir.path()).unwrap();
        let resp = proto::agent_v1::JoinResponse {
            server: "web-1".into(),
            cluster: "web-eu".into(),
            role: "web".into(),
            cert_pem: "not a cert".into(),
            ca_pem: "nor this".into(),
        };
        assert!(store_join(dir.path(), &key, &resp).is_err());
        assert!(load(dir.path()).unwrap().is_none());
    }
}
