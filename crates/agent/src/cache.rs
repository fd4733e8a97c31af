//! The desired-state cache `state_dir/desired.json`: the last desired config the
//! controller sent, written atomically (0600: it holds password hashes) before it is
//! applied, and applied from disk on start before the controller is contacted.

use std::path::{Path, PathBuf};

use proto::agent_v1::DesiredConfig;

use crate::fsutil::write_atomic_with;

/// The cache file of `state_dir`.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("desired.json")
}

/// A cache that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file does not hold a desired config.
    #[error("{path}: not a desired config: {message}")]
    Corrupt {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

/// The cached desired config, or `None` when there is none yet.
pub fn load(state_dir: &Path) -> Result<Option<DesiredConfig>, CacheError> {
    let p = path(state_dir);
    let bytes = match std::fs::read(&p) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CacheError::Io {
                path: p.display().to_string(),
                source,
            })
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| CacheError::Corrupt {
            path: p.display().to_string(),
            message: e.to_string(),
        })
}

/// Replace the cached desired config atomically (temp file, fsync, rename,
/// directory fsync). Compact JSON: the file is read back only by [`load`], and
/// pretty-printing a web server's thousands of sites doubled the bytes written on
/// every change.
pub fn store(state_dir: &Path, cfg: &DesiredConfig) -> Result<(), CacheError> {
    let p = path(state_dir);
    // Serialized straight into the file: a DNS server's config at 10,000 zones is
    // 20 MB, and a buffer of it on every revision only raised the agent's peak.
    write_atomic_with(&p, 0o600, |f| {
        serde_json::to_writer(f, cfg).map_err(std::io::Error::other)
    })
    .map_err(|source| CacheError::Io {
        path: p.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::agent_v1::{DnsConfig, RoleConfig, ServerIdentity, CONFIG_FORMAT};

    #[test]
    fn store_then_load_and_corruption_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_none());
        let cfg = DesiredConfig {
            format: CONFIG_FORMAT,
            revision: 3,
            server: ServerIdentity {
                name: "ns1".into(),
                role: "dns".into(),
                cluster: "dns-eu".into(),
                rank: 0,
                addresses: vec![],
                hostname: "ns1.example.net".into(),
            },
            role: RoleConfig::Dns(DnsConfig::default()),
        };
        store(dir.path(), &cfg).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(cfg));
        std::fs::write(path(dir.path()), b"{").unwrap();
        assert!(matches!(load(dir.path()), Err(CacheError::Corrupt { .. })));
    }
}
