//! Controller configuration file (`controller.toml`).
//!
//! Every key but `data_dir` has a default; relative paths are taken relative to
//! `data_dir` (which itself should be absolute; `init` writes an absolute one).
//!
//! ```toml
//! listen = "127.0.0.1:8443"          # default
//! data_dir = "/var/lib/hostplane"
//! store = "sqlite:/var/lib/hostplane/hostplane.db"   # default: sqlite:<data_dir>/hostplane.db
//! ca_cert = "ca/ca.pem"              # default
//! ca_key = "ca/ca.key"               # default
//! max_body_bytes = 1048576           # default: 1 MiB
//!
//! [tls]
//! enabled = true                     # false = plain HTTP, loopback addresses only
//! cert = "tls/server.pem"            # default
//! key = "tls/server.key"             # default
//!
//! [auth]
//! failed_attempts_per_minute = 10    # default
//! ```

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

/// Configuration errors; each names the file or key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown / mistyped keys.
    #[error("{path} is not a valid controller config: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The TOML parser's message (names the key).
        message: String,
    },
    /// A key has a value that cannot work.
    #[error("invalid `{key}`: {message}")]
    Invalid {
        /// The key, dotted (`tls.enabled`).
        key: &'static str,
        /// What is wrong and what to do.
        message: String,
    },
}

/// Default API address.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8443);
/// Default largest request body.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Default number of failed authentications per client and minute before 429.
pub const DEFAULT_FAILED_ATTEMPTS_PER_MINUTE: u32 = 10;

fn default_listen() -> SocketAddr {
    DEFAULT_LISTEN
}
fn default_max_body() -> usize {
    DEFAULT_MAX_BODY_BYTES
}
fn default_true() -> bool {
    true
}
fn default_attempts() -> u32 {
    DEFAULT_FAILED_ATTEMPTS_PER_MINUTE
}

/// TLS settings of the API listener.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Serve HTTPS (default). `false` serves plain HTTP, allowed on loopback only.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Server certificate chain (PEM); default `<data_dir>/tls/server.pem`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// Server private key (PEM); default `<data_dir>/tls/server.key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            cert: None,
            key: None,
        }
    }
}

/// Authentication settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Failed logins / bad tokens allowed per client address (and per account for
    /// logins) and minute before answering 429.
    #[serde(default = "default_attempts")]
    pub failed_attempts_per_minute: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            failed_attempts_per_minute: DEFAULT_FAILED_ATTEMPTS_PER_MINUTE,
        }
    }
}

/// The controller's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerConfig {
    /// Address to listen on (default `127.0.0.1:8443`).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Data directory: store file, CA, TLS certificate.
    pub data_dir: PathBuf,
    /// Store URL: `sqlite:PATH` or `postgres://...`; default `sqlite:<data_dir>/hostplane.db`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// Internal CA certificate (PEM); default `<data_dir>/ca/ca.pem`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<PathBuf>,
    /// Internal CA private key (PEM); default `<data_dir>/ca/ca.key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_key: Option<PathBuf>,
    /// Largest accepted request body in bytes (default 1 MiB).
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// HTTPS settings.
    #[serde(default)]
    pub tls: TlsConfig,
    /// Authentication settings.
    #[serde(default)]
    pub auth: AuthConfig,
}

impl ControllerConfig {
    /// A configuration with every default for `data_dir`.
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            listen: DEFAULT_LISTEN,
            data_dir,
            store: None,
            ca_cert: None,
            ca_key: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            tls: TlsConfig::default(),
            auth: AuthConfig::default(),
        }
    }

    /// Read and validate a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config = Self::parse(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            other => other,
        })?;
        Ok(config)
    }

    /// Parse and validate config text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            message: e.message().to_owned(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// The TOML text of this configuration.
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        toml::to_string_pretty(self).map_err(|e| ConfigError::Invalid {
            key: "(config)",
            message: e.to_string(),
        })
    }

    /// Check values that parse but cannot work. Pure.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::Invalid {
                key: "data_dir",
                message: "a data directory is required".into(),
            });
        }
        if !self.tls.enabled && !self.listen.ip().is_loopback() {
            return Err(ConfigError::Invalid {
                key: "tls.enabled",
                message: format!(
                    "plain HTTP is allowed only on a loopback address, not {}: enable TLS or listen on 127.0.0.1",
                    self.listen.ip()
                ),
            });
        }
        if self.max_body_bytes < 1024 {
            return Err(ConfigError::Invalid {
                key: "max_body_bytes",
                message: format!(
                    "{} bytes is too small for any request; use at least 1024",
                    self.max_body_bytes
                ),
            });
        }
        if self.auth.failed_attempts_per_minute == 0 {
            return Err(ConfigError::Invalid {
                key: "auth.failed_attempts_per_minute",
                message: "must be at least 1".into(),
            });
        }
        if let Some(url) = &self.store {
            if !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
            {
                return Err(ConfigError::Invalid {
                    key: "store",
                    message: format!("`{url}` must start with sqlite: or postgres://"),
                });
            }
        }
        Ok(())
    }

    /// Resolve a configured path against the data dir, or the default below it.
    fn path(&self, configured: Option<&Path>, default: &str) -> PathBuf {
        match configured {
            Some(p) if p.is_absolute() => p.to_owned(),
            Some(p) => self.data_dir.join(p),
            None => self.data_dir.join(default),
        }
    }

    /// The store URL in effect.
    pub fn store_url(&self) -> String {
        match &self.store {
            Some(url) => url.clone(),
            None => format!("sqlite:{}", self.data_dir.join("hostplane.db").display()),
        }
    }

    /// The CA certificate file in effect.
    pub fn ca_cert_path(&self) -> PathBuf {
        self.path(self.ca_cert.as_deref(), "ca/ca.pem")
    }

    /// The CA key file in effect.
    pub fn ca_key_path(&self) -> PathBuf {
        self.path(self.ca_key.as_deref(), "ca/ca.key")
    }

    /// The TLS certificate file in effect.
    pub fn tls_cert_path(&self) -> PathBuf {
        self.path(self.tls.cert.as_deref(), "tls/server.pem")
    }

    /// The TLS key file in effect.
    pub fn tls_key_path(&self) -> PathBuf {
        self.path(self.tls.key.as_deref(), "tls/server.key")
    }

    /// The base URL clients use (`https://127.0.0.1:8443`). An unspecified bound
    /// address (`0.0.0.0`, `::`) is shown as the matching loopback address.
    pub fn url(&self, bound: SocketAddr) -> String {
        let scheme = if self.tls.enabled { "https" } else { "http" };
        let ip = match bound.ip() {
            IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("{scheme}://{}", SocketAddr::new(ip, bound.port()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = ControllerConfig::parse("data_dir = \"/d\"").unwrap();
        assert_eq!(c.listen, DEFAULT_LISTEN);
        assert_eq!(c.store_url(), "sqlite:/d/hostplane.db");
        assert_eq!(c.tls_cert_path(), PathBuf::from("/d/tls/server.pem"));
        assert_eq!(c.ca_key_path(), PathBuf::from("/d/ca/ca.key"));
        assert_eq!(c.max_body_bytes, 1024 * 1024);
        assert_eq!(c.auth.failed_attempts_per_minute, 10);
        assert!(c.tls.enabled);
        assert_eq!(c.url("127.0.0.1:9".parse().unwrap()), "https://127.0.0.1:9");
        assert_eq!(c.url("[::]:9".parse().unwrap()), "https://[::1]:9");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = ControllerConfig::parse("data_dir = \"/d\"\nlisten_addr = \"x\"").unwrap_err();
        assert!(e.to_string().contains("listen_addr"), "{e}");
        let e = ControllerConfig::parse("data_dir = \"/d\"\n[tls]\nenable = false").unwrap_err();
        assert!(e.to_string().contains("enable"), "{e}");
    }

    #[test]
    fn plain_http_only_on_loopback() {
        let ok = "data_dir = \"/d\"\nlisten = \"127.0.0.1:80\"\n[tls]\nenabled = false";
        let c = ControllerConfig::parse(ok).unwrap();
        assert_eq!(
            c.url("127.0.0.1:80".parse().unwrap()),
            "http://127.0.0.1:80"
        );
        let bad = "data_dir = \"/d\"\nlisten = \"0.0.0.0:80\"\n[tls]\nenabled = false";
        let e = ControllerConfig::parse(bad).unwrap_err();
        assert!(e.to_string().contains("tls.enabled"), "{e}");
    }

    #[test]
    fn round_trip() {
        let mut c = ControllerConfig::new("/d".into());
        c.store = Some("postgres://x/y".into());
        let text = c.to_toml().unwrap();
        assert_eq!(ControllerConfig::parse(&text).unwrap(), c);
    }
}
