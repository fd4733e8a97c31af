//! REST bodies of the server inventory (`/v1/clusters`, `/v1/servers`, join tokens,
//! a cluster's TSIG key); re-exported from [`crate::v1`].

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

// ---------------------------------------------------------------- clusters, servers

/// `POST /v1/clusters`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCluster {
    /// Name: lowercase letters, digits, hyphens, e.g. `web-eu`.
    pub name: String,
    /// `web`, `dns`, `mail`, `files` or `db`.
    pub role: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Make it the default cluster of its role (unsets the previous default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<bool>,
    /// TTL of web records in zones, seconds (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_ttl: Option<u32>,
    /// TTL of other generated records, seconds (default 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    /// DNS clusters: external secondaries (`ip` or `ip:port`, port 53 by default)
    /// notified on every zone change and allowed to transfer the zones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_secondaries: Option<Vec<String>>,
    /// Mail clusters: the client-facing host name, e.g. `mail.hosting.example`;
    /// mail clients are sent to `imap.`, `pop.` and `smtp.` of it, which follow
    /// the cluster's writer in DNS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

/// `PATCH /v1/clusters/{name}`: fields to change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCluster {
    /// New description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Make (or stop making) it the default of its role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<bool>,
    /// New web TTL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_ttl: Option<u32>,
    /// New default TTL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    /// Replace the external secondaries (DNS clusters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_secondaries: Option<Vec<String>>,
    /// Mail clusters: a new client-facing host name; the empty string removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

/// A cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ClusterView {
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Description.
    pub description: String,
    /// Default of its role.
    pub default: bool,
    /// Web TTL.
    pub web_ttl: u32,
    /// Default TTL.
    pub ttl: u32,
    /// Names of its servers, primary first for ranked roles.
    pub servers: Vec<String>,
    /// External secondaries (`ip:port`) of a DNS cluster.
    #[serde(default)]
    pub external_secondaries: Vec<String>,
    /// A mail cluster's mailbox writer (issue 16; admins only), once placement
    /// decided one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail_writer: Option<MailWriterView>,
    /// A mail cluster's client-facing host name (clients use `imap.`, `pop.`,
    /// `smtp.` of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

/// Which server of a mail cluster writes its mailboxes now (the others replicate
/// and serve reads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MailWriterView {
    /// The writing server; `None` while no server of the cluster is usable.
    pub server: Option<String>,
    /// Fencing epoch: raised by one on every change of writer.
    pub epoch: u64,
    /// When the writer may start accepting writes (RFC 3339): the previous
    /// writer's last lease end plus a margin.
    pub not_before: String,
}

/// `GET /v1/clusters/{name}/tsig` (admins): a DNS cluster's TSIG key and how to
/// configure an external secondary (BIND 9.18+, Knot 3.1+) that follows the
/// cluster's catalog zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TsigView {
    /// The DNS cluster.
    pub cluster: String,
    /// Key name, e.g. `xfr.dns-eu.hostplane.` (the same after a rotation).
    pub name: String,
    /// Algorithm: `hmac-sha256`.
    pub algorithm: String,
    /// The shared secret, base64.
    pub secret: String,
    /// After a rotation: until when (RFC 3339) the previous secret is still accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_valid_until: Option<String>,
    /// The catalog zone (RFC 9432) listing the cluster's zones.
    pub catalog_zone: String,
    /// Where secondaries transfer from: the primary's DNS endpoints (`ip:port`).
    pub primaries: Vec<String>,
    /// Who may transfer: the cluster's external secondaries (`ip:port`).
    pub external_secondaries: Vec<String>,
    /// BIND: the `catalog-zones` statement, for inside `options { }`.
    pub bind_options: String,
    /// BIND: key, primaries list and catalog zone, for the top level of `named.conf`.
    pub bind_config: String,
    /// Knot: key, remote, ACL, member template and catalog zone sections.
    pub knot_config: String,
}

/// `POST /v1/clusters/{name}/tsig/rotate` (admins).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateTsig {
    /// How long the previous secret stays valid, seconds (0 to 2592000; default:
    /// the controller's `tsig.grace_seconds`, 86400). 0 refuses it at once (a
    /// leaked key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_seconds: Option<u64>,
}

/// `POST /v1/servers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateServer {
    /// Name, e.g. `web-1`.
    pub name: String,
    /// Cluster to join; the server takes its role.
    pub cluster: String,
    /// Rank in DNS/mail clusters: 0 primary, 1.. secondaries (default: next free).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank: Option<u16>,
    /// Public host name.
    pub hostname: String,
    /// Public IPv4/IPv6 addresses (at least one).
    pub addresses: Vec<String>,
    /// Free-form region, e.g. `eu-west`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// ISO 3166-1 alpha-2 country code.
    pub country: String,
    /// Notes on the hardware profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware: Option<String>,
    /// Allow a secondary in the same country as its primary (records a warning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force: Option<bool>,
}

/// `PATCH /v1/servers/{name}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateServer {
    /// New rank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank: Option<u16>,
    /// New host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// New addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Vec<String>>,
    /// New region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// New country.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// New hardware notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware: Option<String>,
    /// Allow a same-country secondary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force: Option<bool>,
}

/// A server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServerView {
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Cluster name.
    pub cluster: String,
    /// Rank (0 = primary in DNS/mail clusters).
    pub rank: u16,
    /// Host name.
    pub hostname: String,
    /// Addresses.
    pub addresses: Vec<String>,
    /// Region.
    pub region: String,
    /// Country.
    pub country: String,
    /// Hardware notes.
    pub hardware: String,
    /// `unknown`, `up`, `suspect` or `down`.
    pub health: String,
    /// Drained for maintenance.
    pub drained: bool,
    /// Last desired-config revision the agent applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_revision: Option<i64>,
    /// RFC 3339 time of the last heartbeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat: Option<String>,
    /// Revision of the desired config the controller holds for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_revision: Option<i64>,
    /// Health of each role engine as the agent last reported it; an engine that this
    /// build does not have yet reports state `not_built`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub engines: Vec<EngineView>,
    /// RFC 3339.
    pub created_at: String,
}

/// `POST /v1/join-tokens`: a one-time token that lets one agent join a cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateJoinToken {
    /// The cluster the joining server enters.
    pub cluster: String,
    /// Minutes until it expires: 1 to 10080 (7 days); default 60.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_minutes: Option<u32>,
}

/// A join token without its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JoinTokenView {
    /// Public id (also the path key: `/v1/join-tokens/{id}`).
    pub id: String,
    /// Cluster name.
    pub cluster: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub expires_at: String,
    /// Whether it has expired (expired tokens are refused; delete them).
    pub expired: bool,
}

/// A newly created join token: the only time the secret is shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JoinTokenCreated {
    /// The token to put in the agent's join request. Shown once; works once.
    pub token: String,
    /// Its metadata.
    #[serde(flatten)]
    pub info: JoinTokenView,
}

/// One role engine on a server, as its agent reported it in the last heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EngineView {
    /// Engine name (e.g. `dns`).
    pub name: String,
    /// `ok`, `degraded`, `failed` or `not_built`.
    pub state: String,
    /// What the engine says about itself.
    pub detail: String,
}
