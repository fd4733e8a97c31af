//! Controller ⇄ agent protocol, version 1 (`/v1/agent/...`).
//!
//! Three endpoints, all JSON (`Content-Type: application/json`) over HTTPS:
//!
//! | call | auth | request | success |
//! | --- | --- | --- | --- |
//! | `POST /v1/agent/join` | TLS verified against the controller CA, join token in the body | [`JoinRequest`] | `200` [`JoinResponse`] |
//! | `GET /v1/agent/config?after=REV` | mutual TLS (agent certificate) | [`ConfigQuery`] | `200` [`DesiredConfig`] or `304 Not Modified` |
//! | `POST /v1/agent/heartbeat` | mutual TLS | [`Heartbeat`] | `200` [`HeartbeatAck`] |
//!
//! The agent is identified on the mutual-TLS calls by its client certificate, whose
//! subject common name is the server name the controller returned at join.
//!
//! The config call is a blocking query: the controller answers `200` with the whole
//! desired config as soon as the server's config revision is greater than `after`, or
//! `304` (empty body) when nothing changed within its wait (about 30 s). `after=0`
//! always answers at once with the full config.
//!
//! Requests reject unknown fields. Responses do not, so a controller may add
//! optional fields without breaking older agents; an incompatible change bumps
//! [`DesiredConfig::format`] or becomes `agent_v2`.

use model::{DbEngine, PlacementMode};
use serde::{Deserialize, Serialize};

/// Path of the join call.
pub const JOIN_PATH: &str = "/v1/agent/join";
/// Path of the blocking desired-config query.
pub const CONFIG_PATH: &str = "/v1/agent/config";
/// Path of the heartbeat call.
pub const HEARTBEAT_PATH: &str = "/v1/agent/heartbeat";
/// The [`DesiredConfig::format`] this module describes.
pub const CONFIG_FORMAT: u32 = 1;

// ---------------------------------------------------------------- join

/// `POST /v1/agent/join`: a new server asks for its certificate with a join token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    /// The one-time join token an admin created for a cluster.
    pub token: String,
    /// PKCS#10 certificate signing request (PEM) for the agent's own key; its
    /// subject common name is `name`.
    pub csr_pem: String,
    /// The server name the agent asks for, e.g. `web-1`.
    pub name: String,
    /// Public host name, e.g. `web-1.hosting.example`.
    pub hostname: String,
    /// Public addresses of the server (IP literals).
    pub addresses: Vec<String>,
    /// ISO 3166-1 alpha-2 country code.
    pub country: String,
    /// Free-form region, e.g. `eu-west`.
    pub region: String,
    /// Notes on the hardware profile.
    pub hardware: String,
}

/// Answer to a successful [`JoinRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinResponse {
    /// The server name registered (the client certificate's common name).
    pub server: String,
    /// The cluster the token was made for.
    pub cluster: String,
    /// That cluster's role: `web`, `dns`, `mail`, `files` or `db`.
    pub role: String,
    /// The agent's client certificate (PEM), signed by the controller CA.
    pub cert_pem: String,
    /// The controller CA certificate (PEM): the only root the agent trusts afterwards.
    pub ca_pem: String,
}

// ---------------------------------------------------------------- desired config

/// Query of `GET /v1/agent/config`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigQuery {
    /// The revision the agent already has; `0` asks for the full config at once.
    #[serde(default)]
    pub after: i64,
}

/// The whole desired state of one server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredConfig {
    /// Format of this document; [`CONFIG_FORMAT`] (1) here.
    pub format: u32,
    /// The server's config revision; grows with every change that affects it.
    pub revision: i64,
    /// Who the server is.
    pub server: ServerIdentity,
    /// What its role engine must serve.
    pub role: RoleConfig,
}

/// The server's own identity as the controller knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerIdentity {
    /// Server name, e.g. `web-1`.
    pub name: String,
    /// Role: `web`, `dns`, `mail`, `files` or `db`.
    pub role: String,
    /// Cluster name, e.g. `web-eu`.
    pub cluster: String,
    /// In DNS and mail clusters: 0 is the primary, 1.. the secondaries.
    pub rank: u16,
    /// Public addresses (IP literals).
    pub addresses: Vec<String>,
    /// Public host name.
    pub hostname: String,
}

/// The role-specific part of a desired config, tagged by `"role"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum RoleConfig {
    /// HTTP(S) virtual hosting.
    Web(WebConfig),
    /// Authoritative DNS.
    Dns(DnsConfig),
    /// SMTP, IMAP, POP3.
    Mail(MailConfig),
    /// FTP and site-content origin.
    Files(FilesConfig),
    /// Customer databases.
    Db(DbRoleConfig),
}

impl RoleConfig {
    /// The role's wire name: `web`, `dns`, `mail`, `files` or `db`.
    pub fn role(&self) -> &'static str {
        match self {
            RoleConfig::Web(_) => "web",
            RoleConfig::Dns(_) => "dns",
            RoleConfig::Mail(_) => "mail",
            RoleConfig::Files(_) => "files",
            RoleConfig::Db(_) => "db",
        }
    }
}

/// Desired state of a web server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebConfig {
    /// Every site of the server's cluster (each web server holds all of them).
    #[serde(default)]
    pub sites: Vec<WebSite>,
    /// Base URL of the files server the site content is pulled from, if the
    /// domain's files role is placed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_origin: Option<String>,
}

/// One site on a web server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebSite {
    /// Primary host name (A-labels).
    pub domain: String,
    /// Further host names.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Serve `.php` through PHP-FPM.
    #[serde(default)]
    pub php: bool,
    /// `single` or `all`.
    pub mode: PlacementMode,
    /// Whether this server serves the site now (always for `all`; for `single`,
    /// only on the server the scheduler chose). Inactive sites are kept synced.
    pub active: bool,
}

/// Desired state of a DNS server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsConfig {
    /// Zones this server is authoritative for.
    #[serde(default)]
    pub zones: Vec<ZoneAssignment>,
}

/// One zone on a DNS server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneAssignment {
    /// Zone apex (A-labels, no trailing dot).
    pub domain: String,
    /// This server is the zone's primary (else it is a secondary).
    pub primary: bool,
    /// Addresses of the primary: where a secondary transfers from and accepts
    /// NOTIFY from.
    #[serde(default)]
    pub primary_addresses: Vec<String>,
    /// Addresses of the secondaries: whom a primary notifies and allows to transfer.
    #[serde(default)]
    pub secondaries: Vec<String>,
    /// The zone's whole content as the controller built it (the primary serves it;
    /// a secondary may use it to check what it transferred). Absent from older
    /// controllers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<ZoneContent>,
}

/// The content of one zone: every record, the SOA first.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ZoneContent {
    /// Zone apex (A-labels, no trailing dot).
    pub origin: String,
    /// The SOA serial (also in the SOA record's data); grows, in RFC 1982 serial
    /// arithmetic, with every change of the other records.
    pub serial: u32,
    /// The records, SOA first, then sorted by name and type.
    pub records: Vec<ZoneRecord>,
}

/// One resource record of a [`ZoneContent`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ZoneRecord {
    /// Absolute owner name (A-labels, lowercase, no trailing dot).
    pub name: String,
    /// Time to live in seconds.
    pub ttl: u32,
    /// Type mnemonic, e.g. `A`, `MX`, `SOA` (class is always IN).
    pub rtype: String,
    /// RDATA in zone-file presentation format, names absolute with a trailing dot,
    /// e.g. `10 mx1.hosting.example.` or `"v=spf1 mx -all"`.
    pub data: String,
}

/// Desired state of a mail server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailConfig {
    /// Mail domains this server accepts for.
    #[serde(default)]
    pub domains: Vec<MailDomain>,
}

/// One mail domain on a mail server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailDomain {
    /// Domain name (A-labels).
    pub domain: String,
    /// This server is the domain's primary MX (stores mail); else a secondary that
    /// queues for the primary.
    pub primary: bool,
    /// Local parts of the domain's mailboxes (valid recipients).
    #[serde(default)]
    pub mailboxes: Vec<String>,
    /// Aliases: `[local part, [destination addresses]]`.
    #[serde(default)]
    pub aliases: Vec<(String, Vec<String>)>,
}

/// Desired state of a files server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilesConfig {
    /// Domains whose site content this server holds and serves to web servers.
    #[serde(default)]
    pub sites: Vec<String>,
    /// FTP logins.
    #[serde(default)]
    pub ftp_accounts: Vec<FtpAccountConfig>,
}

/// One FTP login on a files server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FtpAccountConfig {
    /// Login name.
    pub username: String,
    /// The site (domain) whose files it reaches.
    pub domain: String,
    /// argon2id PHC string of the password.
    pub password_hash: String,
    /// Folder inside the site's files; empty for the site root.
    #[serde(default)]
    pub home: String,
    /// Upload quota in MiB; 0 means unlimited.
    #[serde(default)]
    pub quota_mb: u64,
}

/// Desired state of a database server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbRoleConfig {
    /// Databases to exist.
    #[serde(default)]
    pub databases: Vec<DbConfig>,
    /// Logins to exist.
    #[serde(default)]
    pub users: Vec<DbUserConfig>,
}

/// One database on a db server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbConfig {
    /// Name on the server.
    pub name: String,
    /// `mariadb` or `postgres`.
    pub engine: DbEngine,
}

/// One database login on a db server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbUserConfig {
    /// Login name.
    pub name: String,
    /// `mariadb` or `postgres`.
    pub engine: DbEngine,
    /// Engine-native password verifier (never the password).
    pub password_verifier: String,
    /// Names of the databases it has all privileges on.
    #[serde(default)]
    pub databases: Vec<String>,
}

// ---------------------------------------------------------------- heartbeat

/// `POST /v1/agent/heartbeat`: the agent's status, sent every second.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// Revision of the desired config the role engine last applied successfully
    /// (0 before the first).
    pub applied_revision: i64,
    /// Health of each engine the agent runs.
    pub engines: Vec<EngineHealth>,
    /// The agent's version (`CARGO_PKG_VERSION`).
    pub agent_version: String,
    /// TCP port of the role's service the controller probes when heartbeats stop
    /// (e.g. 10080 when an unprivileged web engine cannot bind 80); absent means the
    /// controller's configured port for the role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_port: Option<u16>,
}

/// Health of one role engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineHealth {
    /// Engine name, e.g. `web`.
    pub name: String,
    /// Its state.
    pub state: EngineState,
    /// Human-readable detail (why it is degraded, what it serves).
    pub detail: String,
}

/// State of a role engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineState {
    /// Serving its desired config.
    Ok,
    /// Serving, but not everything (e.g. the last apply failed; the previous config
    /// is still served).
    Degraded,
    /// Not serving.
    Failed,
    /// The role's engine does not exist yet in this build.
    NotBuilt,
}

impl EngineState {
    /// The wire spelling: `ok`, `degraded`, `failed`, `not_built`.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineState::Ok => "ok",
            EngineState::Degraded => "degraded",
            EngineState::Failed => "failed",
            EngineState::NotBuilt => "not_built",
        }
    }
}

/// Answer to a [`Heartbeat`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatAck {
    /// The controller's clock (RFC 3339), so agents can log clock skew.
    pub server_time: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_config_is_internally_tagged() {
        let cfg = DesiredConfig {
            format: CONFIG_FORMAT,
            revision: 7,
            server: ServerIdentity {
                name: "web-1".into(),
                role: "web".into(),
                cluster: "web-eu".into(),
                rank: 0,
                addresses: vec!["127.0.0.11".into()],
                hostname: "web-1.hosting.example".into(),
            },
            role: RoleConfig::Web(WebConfig {
                sites: vec![WebSite {
                    domain: "example.com".into(),
                    aliases: vec!["www.example.com".into()],
                    php: true,
                    mode: PlacementMode::Single,
                    active: true,
                }],
                files_origin: None,
            }),
        };
        let json = serde_json::to_value(&cfg).unwrap();
        assert_eq!(json["role"]["role"], "web");
        assert_eq!(json["role"]["sites"][0]["mode"], "single");
        let back: DesiredConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back, cfg);
        assert_eq!(back.role.role(), "web");

        let mail: RoleConfig = serde_json::from_str(
            r#"{"role":"mail","domains":[{"domain":"example.com","primary":true,
                "mailboxes":["info"],"aliases":[["sales",["info@example.com"]]]}]}"#,
        )
        .unwrap();
        match mail {
            RoleConfig::Mail(m) => assert_eq!(m.domains[0].aliases[0].1[0], "info@example.com"),
            other => panic!("wrong role {other:?}"),
        }
        assert!(serde_json::from_str::<RoleConfig>(r#"{"role":"ftp"}"#).is_err());
    }

    #[test]
    fn requests_reject_unknown_fields_responses_do_not() {
        let hb = r#"{"applied_revision":3,"engines":[{"name":"web","state":"not_built",
            "detail":"x"}],"agent_version":"0.1.0"}"#;
        let parsed: Heartbeat = serde_json::from_str(hb).unwrap();
        assert_eq!(parsed.engines[0].state, EngineState::NotBuilt);
        assert!(serde_json::from_str::<Heartbeat>(
            r#"{"applied_revision":3,"engines":[],"agent_version":"x","extra":1}"#
        )
        .is_err());
        assert!(serde_json::from_str::<ConfigQuery>(r#"{"after":1,"wait":2}"#).is_err());
        let ack: HeartbeatAck =
            serde_json::from_str(r#"{"server_time":"2024-01-01T00:00:00Z","new":1}"#).unwrap();
        assert_eq!(ack.server_time, "2024-01-01T00:00:00Z");
    }
}
