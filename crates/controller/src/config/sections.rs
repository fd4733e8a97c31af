//! The sections of `controller.toml` (`[tls]`, `[auth]`, `[health]`, `[agents]`,
//! `[files]`, `[databases]`, `[tsig]`, `[keys]`, `[names]`): their structs, defaults
//! and per-section checks. The file format is documented in the parent module.

use super::{ConfigError, DEFAULT_FAILED_ATTEMPTS_PER_MINUTE};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

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

impl AuthConfig {
    /// Check `[auth]` values that parse but cannot work (the error names the
    /// dotted key). Pure.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.failed_attempts_per_minute == 0 {
            return Err(ConfigError::Invalid {
                key: "auth.failed_attempts_per_minute",
                message: "must be at least 1".into(),
            });
        }
        Ok(())
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
fn default_mail_lease_s() -> u64 {
    20
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
    /// The mail writer lease a heartbeat grants the writer of a mail cluster, in
    /// seconds (default 20, 2..=600; `placement::mail`): how long a writer cut off
    /// from the controller keeps accepting writes, and so how long a moved writer
    /// waits before the new one accepts any (the failover's write outage).
    #[serde(default = "default_mail_lease_s")]
    pub mail_lease_s: u64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval_ms: default_heartbeat_ms(),
            suspect_after: default_suspect_after(),
            probe_timeout_ms: default_probe_timeout_ms(),
            probe_ports: ProbePorts::default(),
            cron_lease_s: default_cron_lease_s(),
            mail_lease_s: default_mail_lease_s(),
        }
    }
}

impl HealthConfig {
    /// Check `[health]` values that parse but cannot work (the error names the
    /// dotted key). Pure.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(10..=60_000).contains(&self.heartbeat_interval_ms) {
            return Err(ConfigError::Invalid {
                key: "health.heartbeat_interval_ms",
                message: "must be 10 to 60000".into(),
            });
        }
        if !(1..=100).contains(&self.suspect_after) {
            return Err(ConfigError::Invalid {
                key: "health.suspect_after",
                message: "must be 1 to 100".into(),
            });
        }
        if !(10..=30_000).contains(&self.probe_timeout_ms) {
            return Err(ConfigError::Invalid {
                key: "health.probe_timeout_ms",
                message: "must be 10 to 30000".into(),
            });
        }
        if !(2..=3600).contains(&self.cron_lease_s) {
            return Err(ConfigError::Invalid {
                key: "health.cron_lease_s",
                message: "must be 2 to 3600".into(),
            });
        }
        if !(2..=600).contains(&self.mail_lease_s) {
            return Err(ConfigError::Invalid {
                key: "health.mail_lease_s",
                message: "must be 2 to 600".into(),
            });
        }
        Ok(())
    }

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

impl AgentsConfig {
    /// Check `[agents]` values that parse but cannot work (the error names the
    /// dotted key). Pure.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(10..=600_000).contains(&self.config_wait_ms) {
            return Err(ConfigError::Invalid {
                key: "agents.config_wait_ms",
                message: "must be 10 to 600000".into(),
            });
        }
        if !(10..=3_600_000).contains(&self.resync_interval_ms) {
            return Err(ConfigError::Invalid {
                key: "agents.resync_interval_ms",
                message: "must be 10 to 3600000".into(),
            });
        }
        Ok(())
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

impl FilesSettings {
    /// Check `[files]` values that parse but cannot work (the error names the
    /// dotted key). Pure.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=365).contains(&self.site_versions_days) {
            return Err(ConfigError::Invalid {
                key: "files.site_versions_days",
                message: format!(
                    "{} days; files servers keep versions 1 to 365 days",
                    self.site_versions_days
                ),
            });
        }
        Ok(())
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

impl TsigSettings {
    /// Check `[tsig]` values that parse but cannot work (the error names the
    /// dotted key). Pure.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.grace_seconds > MAX_TSIG_GRACE_SECONDS {
            return Err(ConfigError::Invalid {
                key: "tsig.grace_seconds",
                message: format!("must be 0 to {MAX_TSIG_GRACE_SECONDS} (30 days)"),
            });
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_nameserver_of_resolv_conf() {
        assert_eq!(
            first_nameserver("# c\nsearch x\nnameserver 10.0.0.2\nnameserver 10.0.0.3\n"),
            Some("10.0.0.2:53".parse().unwrap())
        );
        assert_eq!(first_nameserver("nameserver bogus\n"), None);
    }
}
