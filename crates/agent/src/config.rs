//! The agent's configuration file (`agent.toml`).
//!
//! ```toml
//! name = "web-1"                                  # server name (a slug)
//! controllers = ["https://cp1.example:8443", "https://cp2.example:8443"]
//! ca_file = "/etc/hostplane/controller-ca.pem"    # trusted for the join call
//! join_token_file = "/etc/hostplane/join-token"   # or join_token, or $HOSTPLANE_JOIN_TOKEN
//! state_dir = "/var/lib/hostplane-agent"
//! bind = "192.0.2.11"                             # this server's own address
//! hostname = "web-1.hosting.example"
//! country = "GB"
//! # addresses = ["192.0.2.11"]                    # default: [bind]
//! # region = ""  hardware = ""
//! # heartbeat_interval_ms = 1000
//! # resync_interval_s = 60
//! # watch_timeout_s = 60
//! ```

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Environment variable that can carry the join token.
pub const JOIN_TOKEN_ENV: &str = "HOSTPLANE_JOIN_TOKEN";

/// Default heartbeat interval (ms).
pub const DEFAULT_HEARTBEAT_INTERVAL_MS: u64 = 1000;
/// Default interval between resyncs (s).
pub const DEFAULT_RESYNC_INTERVAL_S: u64 = 60;
/// Default client timeout of one blocking config query (s).
pub const DEFAULT_WATCH_TIMEOUT_S: u64 = 60;

/// A configuration that cannot be read or is invalid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML does not parse or has unknown keys.
    #[error("invalid agent configuration: {0}")]
    Parse(#[from] toml::de::Error),
    /// A field breaks a rule.
    #[error("agent configuration field `{field}`: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

fn invalid(field: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        message: message.into(),
    }
}

/// Everything an agent needs to know to start. See the module documentation for
/// an example file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Server name asked for at join (a slug, e.g. `web-1`); the certificate's
    /// common name.
    pub name: String,
    /// Controller base URLs (`https://host:port`); the agent fails over between them.
    pub controllers: Vec<String>,
    /// PEM file of the controller CA, trusted for the join call. After join the
    /// agent trusts the CA the controller returned (stored in the state dir).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// The join token (needed only until the agent has joined).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_token: Option<String>,
    /// A file holding the join token (alternative to `join_token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_token_file: Option<PathBuf>,
    /// Directory for the identity and the cached desired config (created 0700).
    pub state_dir: PathBuf,
    /// This server's own address: the source address of every outgoing connection,
    /// and the address engines listen on.
    pub bind: IpAddr,
    /// Public host name (a fully qualified domain name).
    pub hostname: String,
    /// Public addresses (IP literals). Default: `[bind]`.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// ISO 3166-1 alpha-2 country code, e.g. `GB`.
    pub country: String,
    /// Free-form region. Default: empty.
    #[serde(default)]
    pub region: String,
    /// Notes on the hardware profile. Default: empty.
    #[serde(default)]
    pub hardware: String,
    /// Interval between heartbeats in milliseconds. Default: 1000.
    #[serde(default = "default_heartbeat")]
    pub heartbeat_interval_ms: u64,
    /// Interval between resyncs in seconds (the delta from the revision held,
    /// answered at once and digest-checked; a snapshot when that fails). Default: 60.
    #[serde(default = "default_resync")]
    pub resync_interval_s: u64,
    /// Client timeout of one blocking config query in seconds; must exceed the
    /// controller's wait (about 30 s). Default: 60.
    #[serde(default = "default_watch_timeout")]
    pub watch_timeout_s: u64,
    /// Options for the role engine (`[engine]` table of strings), handed to it as
    /// [`crate::supervisor::EngineContext::options`]; each engine documents its keys.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub engine: std::collections::BTreeMap<String, String>,
}

fn default_heartbeat() -> u64 {
    DEFAULT_HEARTBEAT_INTERVAL_MS
}
fn default_resync() -> u64 {
    DEFAULT_RESYNC_INTERVAL_S
}
fn default_watch_timeout() -> u64 {
    DEFAULT_WATCH_TIMEOUT_S
}

impl AgentConfig {
    /// Parse a TOML document (no validation; see [`AgentConfig::validate`]).
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        Ok(toml::from_str(text)?)
    }

    /// Read, parse and validate a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let cfg = Self::from_toml_str(&text)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Check every field (pure: touches no file).
    pub fn validate(&self) -> Result<(), ConfigError> {
        model::Slug::new(&self.name).map_err(|e| invalid("name", e.message))?;
        if self.controllers.is_empty() {
            return Err(invalid(
                "controllers",
                "at least one controller URL is needed",
            ));
        }
        for url in &self.controllers {
            let parsed = reqwest::Url::parse(url)
                .map_err(|e| invalid("controllers", format!("`{url}`: {e}")))?;
            if parsed.scheme() != "https" || parsed.host_str().is_none() {
                return Err(invalid(
                    "controllers",
                    format!("`{url}` must be an https:// URL with a host"),
                ));
            }
        }
        if self.join_token.is_some() && self.join_token_file.is_some() {
            return Err(invalid(
                "join_token",
                "set join_token or join_token_file, not both",
            ));
        }
        if self.state_dir.as_os_str().is_empty() {
            return Err(invalid("state_dir", "a state directory is required"));
        }
        model::DomainName::new(&self.hostname).map_err(|e| invalid("hostname", e.message))?;
        for a in &self.addresses {
            a.parse::<IpAddr>()
                .map_err(|_| invalid("addresses", format!("`{a}` is not an IP address")))?;
        }
        model::CountryCode::new(&self.country).map_err(|e| invalid("country", e.message))?;
        if self.heartbeat_interval_ms < 50 || self.heartbeat_interval_ms > 600_000 {
            return Err(invalid(
                "heartbeat_interval_ms",
                "must be between 50 and 600000",
            ));
        }
        if self.resync_interval_s == 0 {
            return Err(invalid("resync_interval_s", "must be at least 1"));
        }
        if self.watch_timeout_s < 2 {
            return Err(invalid("watch_timeout_s", "must be at least 2"));
        }
        Ok(())
    }

    /// The public addresses: `addresses`, or `[bind]` when empty.
    pub fn public_addresses(&self) -> Vec<String> {
        if self.addresses.is_empty() {
            vec![self.bind.to_string()]
        } else {
            self.addresses.clone()
        }
    }

    /// The join token from `join_token`, `join_token_file` or `$HOSTPLANE_JOIN_TOKEN`
    /// (in that order), trimmed; `None` when none is set.
    pub fn resolve_join_token(&self) -> Result<Option<String>, ConfigError> {
        if let Some(t) = &self.join_token {
            return Ok(Some(t.trim().to_string()));
        }
        if let Some(path) = &self.join_token_file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.display().to_string(),
                source,
            })?;
            return Ok(Some(text.trim().to_string()));
        }
        Ok(std::env::var(JOIN_TOKEN_ENV)
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty()))
    }

    /// [`AgentConfig::heartbeat_interval_ms`] as a duration.
    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms)
    }

    /// [`AgentConfig::resync_interval_s`] as a duration.
    pub fn resync_interval(&self) -> Duration {
        Duration::from_secs(self.resync_interval_s)
    }

    /// [`AgentConfig::watch_timeout_s`] as a duration.
    pub fn watch_timeout(&self) -> Duration {
        Duration::from_secs(self.watch_timeout_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        name = "web-1"
        controllers = ["https://127.0.0.1:8443"]
        state_dir = "/tmp/x"
        bind = "127.0.0.11"
        hostname = "web-1.hosting.example"
        country = "GB"
    "#;

    #[test]
    fn defaults_and_validation() {
        let cfg = AgentConfig::from_toml_str(MINIMAL).unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.heartbeat_interval_ms, 1000);
        assert_eq!(cfg.resync_interval_s, 60);
        assert_eq!(cfg.watch_timeout_s, 60);
        assert_eq!(cfg.public_addresses(), vec!["127.0.0.11".to_string()]);

        let bad = |edit: &dyn Fn(&mut AgentConfig), field: &str| {
            let mut c = cfg.clone();
            edit(&mut c);
            match c.validate() {
                Err(ConfigError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("expected invalid {field}, got {other:?}"),
            }
        };
        bad(&|c| c.name = "Web 1".into(), "name");
        bad(&|c| c.controllers.clear(), "controllers");
        bad(
            &|c| c.controllers = vec!["http://127.0.0.1:1".into()],
            "controllers",
        );
        bad(&|c| c.hostname = "not a host".into(), "hostname");
        bad(&|c| c.addresses = vec!["nope".into()], "addresses");
        bad(&|c| c.country = "Britain".into(), "country");
        bad(&|c| c.heartbeat_interval_ms = 0, "heartbeat_interval_ms");
        bad(&|c| c.resync_interval_s = 0, "resync_interval_s");
        bad(
            &|c| {
                c.join_token = Some("a".into());
                c.join_token_file = Some("/t".into());
            },
            "join_token",
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let text = format!("{MINIMAL}\nbogus = 1\n");
        assert!(matches!(
            AgentConfig::from_toml_str(&text),
            Err(ConfigError::Parse(_))
        ));
    }

    #[test]
    fn join_token_from_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "  abc123\n").unwrap();
        let mut cfg = AgentConfig::from_toml_str(MINIMAL).unwrap();
        cfg.join_token_file = Some(path);
        assert_eq!(cfg.resolve_join_token().unwrap().as_deref(), Some("abc123"));
        cfg.join_token_file = None;
        cfg.join_token = Some("xyz".into());
        assert_eq!(cfg.resolve_join_token().unwrap().as_deref(), Some("xyz"));
    }
}
