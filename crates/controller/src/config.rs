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
    /// Bad join tokens allowed per client address and minute before answering 429;
    /// bad bearer tokens allowed per client address before it must wait (1 s, 2 s,
    /// 4 s … up to 60 s between attempts). (Password logins use the login throttle, crate `throttle`:
    /// 5 free failures per account and address and 30 per address, then a doubling
    /// delay up to 15 min; past 20 failures per account an account-wide delay of at
    /// most 30 s.)
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

fn default_heartbeat_ms() -> u64 {
    1000
}
fn default_suspect_after() -> u32 {
    3
}
fn default_probe_timeout_ms() -> u64 {
    500
}
fn default_cron_lease_s() -> u64 {
    120
}
fn default_config_wait_ms() -> u64 {
    30_000
}
fn default_resync_ms() -> u64 {
    1000
}

/// TCP port probed per role when a server's heartbeats stop.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProbePorts {
    /// Web servers (HTTP).
    #[serde(default = "ProbePorts::web")]
    pub web: u16,
    /// DNS servers (DNS over TCP).
    #[serde(default = "ProbePorts::dns")]
    pub dns: u16,
    /// Mail servers (SMTP).
    #[serde(default = "ProbePorts::mail")]
    pub mail: u16,
    /// Files servers (FTP).
    #[serde(default = "ProbePorts::files")]
    pub files: u16,
    /// Database servers (MariaDB).
    #[serde(default = "ProbePorts::db")]
    pub db: u16,
}

impl ProbePorts {
    fn web() -> u16 {
        80
    }
    fn dns() -> u16 {
        53
    }
    fn mail() -> u16 {
        25
    }
    fn files() -> u16 {
        21
    }
    fn db() -> u16 {
        3306
    }

    /// The port of a role.
    pub fn of(&self, role: model::Role) -> u16 {
        match role {
            model::Role::Web => self.web,
            model::Role::Dns => self.dns,
            model::Role::Mail => self.mail,
            model::Role::Files => self.files,
            model::Role::Db => self.db,
        }
    }
}

impl Default for ProbePorts {
    fn default() -> Self {
        Self {
            web: Self::web(),
            dns: Self::dns(),
            mail: Self::mail(),
            files: Self::files(),
            db: Self::db(),
        }
    }
}

/// Health monitoring of the servers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// Interval of agent heartbeats in milliseconds (default 1000).
    #[serde(default = "default_heartbeat_ms")]
    pub heartbeat_interval_ms: u64,
    /// Heartbeats missed before a server is `suspect` (default 3).
    #[serde(default = "default_suspect_after")]
    pub suspect_after: u32,
    /// Connect timeout of the active probe in milliseconds (default 500).
    #[serde(default = "default_probe_timeout_ms")]
    pub probe_timeout_ms: u64,
    /// Service port probed per role.
    #[serde(default)]
    pub probe_ports: ProbePorts,
    /// The cron lease a heartbeat grants a web server, in seconds (default 120,
    /// 2..=3600; `placement::cron`): how long a server cut off from the
    /// controller keeps running its sites' cron, and how long a moved cron waits.
    #[serde(default = "default_cron_lease_s")]
    pub cron_lease_s: u64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval_ms: default_heartbeat_ms(),
            suspect_after: default_suspect_after(),
            probe_timeout_ms: default_probe_timeout_ms(),
            probe_ports: ProbePorts::default(),
            cron_lease_s: default_cron_lease_s(),
        }
    }
}

impl HealthConfig {
    /// The heartbeat interval.
    pub fn interval(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.heartbeat_interval_ms)
    }

    /// How long without a heartbeat before `suspect`.
    pub fn suspect_window(&self) -> std::time::Duration {
        self.interval().saturating_mul(self.suspect_after)
    }

    /// The probe's connect timeout.
    pub fn probe_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.probe_timeout_ms)
    }
}

/// The controller ⇄ agent protocol.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AgentsConfig {
    /// Longest wait of a blocking config query before it answers 304 (default 30 s).
    #[serde(default = "default_config_wait_ms")]
    pub config_wait_ms: u64,
    /// How often the store revision is checked for changes this controller did not
    /// make itself (default 1 s); a change triggers a config rebuild.
    #[serde(default = "default_resync_ms")]
    pub resync_interval_ms: u64,
}

impl Default for AgentsConfig {
    fn default() -> Self {
        Self {
            config_wait_ms: default_config_wait_ms(),
            resync_interval_ms: default_resync_ms(),
        }
    }
}

/// Settings handed to the files servers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FilesSettings {
    /// Days a files server keeps the versions of site files that were overwritten or
    /// deleted, so `hostplane site restore` can bring them back (default 7). It is
    /// the safety net replication is not: a deletion reaches every copy in seconds.
    #[serde(default = "default_site_versions_days")]
    pub site_versions_days: u32,
}

fn default_site_versions_days() -> u32 {
    7
}

impl Default for FilesSettings {
    fn default() -> Self {
        Self {
            site_versions_days: default_site_versions_days(),
        }
    }
}

/// Settings handed to the database servers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabasesConfig {
    /// Days a db server keeps the dump of a dropped database in its trash, so
    /// `hostplane db restore` can bring it back (default 7).
    #[serde(default = "default_trash_days")]
    pub trash_days: u32,
}

fn default_trash_days() -> u32 {
    7
}

impl Default for DatabasesConfig {
    fn default() -> Self {
        Self {
            trash_days: default_trash_days(),
        }
    }
}

/// DNS clusters' TSIG keys.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TsigSettings {
    /// Seconds the previous key of a rotated cluster key stays valid (default
    /// 86400, at most [`MAX_TSIG_GRACE_SECONDS`]); `cluster tsig rotate --grace`
    /// overrides it per rotation.
    #[serde(default = "default_tsig_grace")]
    pub grace_seconds: u64,
}

/// The longest grace period of a rotated TSIG key: 30 days.
pub const MAX_TSIG_GRACE_SECONDS: u64 = 30 * 24 * 3600;

fn default_tsig_grace() -> u64 {
    24 * 3600
}

impl Default for TsigSettings {
    fn default() -> Self {
        Self {
            grace_seconds: default_tsig_grace(),
        }
    }
}

/// Key material the controller makes (`[keys]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeysConfig {
    /// RSA-2048 DKIM keys kept made in advance (default 16), so new accounts'
    /// domains sign with RSA at once; made at idle priority while the platform
    /// has mail domains (see `crate::dkim_rsa`). 0 keeps none.
    #[serde(default = "default_dkim_rsa_spares")]
    pub dkim_rsa_spares: usize,
}

fn default_dkim_rsa_spares() -> usize {
    16
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            dkim_rsa_spares: default_dkim_rsa_spares(),
        }
    }
}

/// Who may hold which domain names (see `crate::ownership`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NamesConfig {
    /// DNS resolver asked for `_hostplane-challenge` TXT proofs and by `mail check`
    /// (HELO names, PTRs); default the first
    /// `nameserver` of `/etc/resolv.conf` (port 53), else `127.0.0.1:53`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolver: Option<SocketAddr>,
    /// The platform's own zones (besides the registrable domains of the servers'
    /// host names, always included): only admins add names in them. Default none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platform_zones: Vec<model::DomainName>,
}

impl NamesConfig {
    /// The resolver to ask: the configured one, else the system's first
    /// `nameserver`, else `127.0.0.1:53`.
    pub fn resolver(&self) -> SocketAddr {
        self.resolver.unwrap_or_else(|| {
            std::fs::read_to_string("/etc/resolv.conf")
                .ok()
                .and_then(|t| first_nameserver(&t))
                .unwrap_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53))
        })
    }
}

/// The first `nameserver` address of resolv.conf text, port 53. Pure.
fn first_nameserver(text: &str) -> Option<SocketAddr> {
    text.lines().find_map(|l| {
        let mut words = l.split_whitespace();
        (words.next() == Some("nameserver"))
            .then(|| words.next()?.parse::<IpAddr>().ok())
            .flatten()
            .map(|ip| SocketAddr::new(ip, 53))
    })
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
        if !(1..=365).contains(&self.files.site_versions_days) {
            return Err(ConfigError::Invalid {
                key: "files.site_versions_days",
                message: format!(
                    "{} days; files servers keep versions 1 to 365 days",
                    self.files.site_versions_days
                ),
            });
        }
        if self.auth.failed_attempts_per_minute == 0 {
            return Err(ConfigError::Invalid {
                key: "auth.failed_attempts_per_minute",
                message: "must be at least 1".into(),
            });
        }
        if !(10..=60_000).contains(&self.health.heartbeat_interval_ms) {
            return Err(ConfigError::Invalid {
                key: "health.heartbeat_interval_ms",
                message: "must be 10 to 60000".into(),
            });
        }
        if !(1..=100).contains(&self.health.suspect_after) {
            return Err(ConfigError::Invalid {
                key: "health.suspect_after",
                message: "must be 1 to 100".into(),
            });
        }
        if !(10..=30_000).contains(&self.health.probe_timeout_ms) {
            return Err(ConfigError::Invalid {
                key: "health.probe_timeout_ms",
                message: "must be 10 to 30000".into(),
            });
        }
        if !(2..=3600).contains(&self.health.cron_lease_s) {
            return Err(ConfigError::Invalid {
                key: "health.cron_lease_s",
                message: "must be 2 to 3600".into(),
            });
        }
        if !(10..=600_000).contains(&self.agents.config_wait_ms) {
            return Err(ConfigError::Invalid {
                key: "agents.config_wait_ms",
                message: "must be 10 to 600000".into(),
            });
        }
        if !(10..=3_600_000).contains(&self.agents.resync_interval_ms) {
            return Err(ConfigError::Invalid {
                key: "agents.resync_interval_ms",
                message: "must be 10 to 3600000".into(),
            });
        }
        if self.tsig.grace_seconds > MAX_TSIG_GRACE_SECONDS {
            return Err(ConfigError::Invalid {
                key: "tsig.grace_seconds",
                message: format!("must be 0 to {MAX_TSIG_GRACE_SECONDS} (30 days)"),
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
        assert_eq!(
            first_nameserver("# c\nsearch x\nnameserver 10.0.0.2\nnameserver 10.0.0.3\n"),
            Some("10.0.0.2:53".parse().unwrap())
        );
        assert_eq!(first_nameserver("nameserver bogus\n"), None);
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
