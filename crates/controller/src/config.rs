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
//!
//! [health]
//! heartbeat_interval_ms = 1000       # default; agents send a heartbeat this often
//! suspect_after = 3                  # missed heartbeats before `suspect`
//! probe_timeout_ms = 500             # TCP connect timeout of the active probe
//! cron_lease_s = 120                 # cron lease each heartbeat grants a web server,
//!                                    # 2..=3600; a moved cron waits this long
//! mail_lease_s = 20                  # mail writer lease each heartbeat grants a mail
//!                                    # cluster's writer, 2..=600; a moved writer waits
//!                                    # this long before the new one accepts writes
//! [health.probe_ports]               # service port probed per role (defaults shown);
//! web = 80                           # a heartbeat's `probe_port` overrides it per server
//! dns = 53
//! mail = 25
//! files = 21
//! db = 3306
//!
//! [agents]
//! config_wait_ms = 30000             # longest wait of `GET /v1/agent/config` before 304
//! resync_interval_ms = 1000          # how often the store revision is polled (changes
//!                                    # made by other controllers) for a config rebuild
//!
//! [databases]
//! trash_days = 7                     # dumps of dropped databases kept this many days
//!
//! [files]
//! site_versions_days = 7             # files servers keep overwritten and deleted site
//!                                    # files this many days (`site restore`), 1..=365
//!
//! [tsig]
//! grace_seconds = 86400              # after `cluster tsig rotate`, the previous key
//!                                    # is still accepted this long (0..=2592000)
//!
//! [default_plan]                     # limits of accounts without a plan (defaults shown)
//! max_mailbox_quota_mb = 10240       # largest mailbox quota, 1..=1048576 (1 TiB)
//! max_ftp_quota_mb = 10240           # largest FTP quota, 1..=1048576
//! max_domains = 100                  # counts: 0..=1000000
//! max_mailboxes = 1000
//! max_databases = 100
//! max_ftp_accounts = 100
//! deployment_disk_mb = 2048          # kept `site upload` archives, 0..=1048576
//! site_disk_mb = 10240               # site files, 0..=1048576
//! mail_messages_per_hour = 1000      # outgoing, per mailbox and per domain
//! mail_recipients_per_message = 100  # 1..=10000
//! php_memory_mb = 512                # largest PHP memory_limit a site sets, 16..=16384
//! php_upload_mb = 256                # largest upload_max_filesize/post_max_size, 1..=4096
//! php_execution_s = 300              # largest max_execution_time/max_input_time, 1..=86400
//! cron_jobs = 10                     # cron jobs per site, 0..=1000
//!
//! [names]
//! resolver = "192.0.2.53:53"         # default: first `nameserver` of /etc/resolv.conf
//!                                    # (127.0.0.1:53 if none); answers the TXT proofs
//!                                    # `_hostplane-challenge.<registrable domain>` and
//!                                    # `mail check`'s HELO names and PTRs
//! platform_zones = ["hosting.example"] # default: none besides the registrable
//!                                    # domains of the servers' host names, which are
//!                                    # always the platform's; only admins add names there
//!
//! [acme]                             # optional; none: no ACME, sites keep internal certs
//! directory = "letsencrypt"          # or "letsencrypt-staging", or the https:// URL of a
//!                                    # CA's ACME directory (Pebble in tests)
//! email = "hostmaster@example.com"   # optional contact given to the CA
//! ca_file = "acme-roots.pem"         # optional extra roots for the ACME server's HTTPS
//! eab_kid = "kid"                    # optional External Account Binding, both or neither
//! eab_hmac_key = "base64url..."
//! ```

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

mod sections;

pub use sections::{
    AgentsConfig, AuthConfig, DatabasesConfig, FilesSettings, HealthConfig, KeysConfig,
    NamesConfig, ProbePorts, TlsConfig, TsigSettings, MAX_TSIG_GRACE_SECONDS,
};

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
    /// Health monitoring.
    #[serde(default)]
    pub health: HealthConfig,
    /// Agent protocol settings.
    #[serde(default)]
    pub agents: AgentsConfig,
    /// Database servers.
    #[serde(default)]
    pub databases: DatabasesConfig,
    /// Files servers (site file versions).
    #[serde(default)]
    pub files: FilesSettings,
    /// TSIG keys of DNS clusters.
    #[serde(default)]
    pub tsig: TsigSettings,
    /// Limits of accounts that have no plan (see [`model::limits`]).
    #[serde(default, deserialize_with = "default_plan")]
    pub default_plan: model::limits::Limits,
    /// Name ownership: the resolver for challenge proofs, the platform's zones.
    #[serde(default)]
    pub names: NamesConfig,
    /// Key material: spare RSA DKIM keys.
    #[serde(default)]
    pub keys: KeysConfig,
    /// Publicly trusted site certificates by ACME (issue 17); `None`: off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme: Option<crate::acme::AcmeConfig>,
}

/// `[default_plan]`: missing keys take their defaults; unknown keys are refused.
fn default_plan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<model::limits::Limits, D::Error> {
    use serde::de::Error as _;
    let table = toml::Table::deserialize(d)?;
    let mut out = model::limits::Limits::default();
    for (key, value) in table {
        let field = model::limits::LimitField::ALL
            .into_iter()
            .find(|f| f.as_str() == key)
            .ok_or_else(|| D::Error::custom(format!("unknown field `{key}` in default_plan")))?;
        let n = value
            .as_integer()
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| {
                D::Error::custom(format!("default_plan.{key} must be a whole number"))
            })?;
        *field.get_mut(&mut out) = n;
    }
    Ok(out)
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
            health: HealthConfig::default(),
            agents: AgentsConfig::default(),
            databases: DatabasesConfig::default(),
            files: FilesSettings::default(),
            tsig: TsigSettings::default(),
            default_plan: model::limits::Limits::default(),
            names: NamesConfig::default(),
            keys: KeysConfig::default(),
            acme: None,
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
        if let Some(f) = model::limits::out_of_range(&self.default_plan) {
            let r = f.range();
            return Err(ConfigError::Invalid {
                key: "default_plan",
                message: format!(
                    "default_plan.{f} is {}; it must be {} to {}",
                    f.get(&self.default_plan),
                    r.start(),
                    r.end()
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
        self.files.validate()?;
        self.auth.validate()?;
        self.health.validate()?;
        self.agents.validate()?;
        self.tsig.validate()?;
        if let Some(acme) = &self.acme {
            acme.validate()?;
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
    fn names_section() {
        let c = ControllerConfig::parse(
            "data_dir = \"/d\"\n[names]\nresolver = \"127.0.0.9:5353\"\nplatform_zones = [\"Hosting.Example\"]",
        )
        .unwrap();
        assert_eq!(c.names.resolver(), "127.0.0.9:5353".parse().unwrap());
        assert_eq!(c.names.platform_zones[0].as_str(), "hosting.example");
        assert!(
            ControllerConfig::parse("data_dir = \"/d\"\n[names]\nplatform_zones = [\"a..b\"]")
                .is_err()
        );
        assert!(ControllerConfig::parse("data_dir = \"/d\"\n[names]\nresolvers = \"x\"").is_err());
    }

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
        assert_eq!(c.health.heartbeat_interval_ms, 1000);
        assert_eq!(c.health.suspect_after, 3);
        assert_eq!(c.health.probe_ports.of(model::Role::Db), 3306);
        assert_eq!(c.agents.config_wait_ms, 30_000);
        let c = ControllerConfig::parse(
            "data_dir = \"/d\"\n[health]\nsuspect_after = 5\n[health.probe_ports]\nweb = 10080",
        )
        .unwrap();
        assert_eq!(c.health.probe_ports.of(model::Role::Web), 10080);
        assert_eq!(c.health.probe_ports.of(model::Role::Mail), 25);
        assert_eq!(c.health.suspect_window(), std::time::Duration::from_secs(5));
        assert!(ControllerConfig::parse("data_dir = \"/d\"\n[health]\nsuspect_after = 0").is_err());
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

    #[test]
    fn default_plan_defaults_keys_and_ranges() {
        let c = ControllerConfig::parse("data_dir = \"/x\"\n").unwrap();
        assert_eq!(c.default_plan, model::limits::Limits::default());
        let c = ControllerConfig::parse("data_dir = \"/x\"\n[default_plan]\nmax_domains = 7\n")
            .unwrap();
        assert_eq!(c.default_plan.max_domains, 7);
        assert_eq!(c.default_plan.max_mailboxes, 1000);
        let e = ControllerConfig::parse("data_dir = \"/x\"\n[default_plan]\nmax_domain = 7\n")
            .unwrap_err();
        assert!(e.to_string().contains("max_domain"), "{e}");
        let e = ControllerConfig::parse(
            "data_dir = \"/x\"\n[default_plan]\nmax_mailbox_quota_mb = 0\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("max_mailbox_quota_mb"), "{e}");
        let e = ControllerConfig::parse("data_dir = \"/x\"\n[default_plan]\nmax_domains = -1\n")
            .unwrap_err();
        assert!(e.to_string().contains("whole number"), "{e}");
    }
}
