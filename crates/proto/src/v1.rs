//! REST API version 1 (`/v1/...`): request, response and error bodies.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

pub use crate::v1_plans::*;
pub use crate::v1_sitefiles::*;

/// Every error response: `{"error": code, "message": ..., "field": ..., "rule": ...}`.
/// `error` is one of `invalid`, `unauthorized`, `forbidden`, `not_found`,
/// `conflict`, `in_use`, `infeasible`, `too_many_requests`, `payload_too_large`,
/// `unsupported_media_type`, `method_not_allowed`, `internal`, `unavailable`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Machine-readable error class.
    pub error: String,
    /// What went wrong and, where possible, what to do.
    pub message: String,
    /// The request field at fault (dotted path), for `invalid` and `conflict`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The validation rule that failed, for `invalid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

/// One page of a listing. Pass `next_cursor` as `cursor` to get the next page;
/// it is absent on the last page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Opaque cursor of the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Query parameters of every listing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Cursor from the previous page's `next_cursor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Page size, 1–1000, default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Only objects of this customer (admins and resellers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    /// Only objects of this domain (mailboxes, aliases, FTP accounts, records, sites).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Only servers of this cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
}

// ---------------------------------------------------------------- auth, tokens

/// `POST /v1/auth/login`: exchange an account name and password for a new API token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Account name.
    pub account: String,
    /// Account password.
    pub password: String,
    /// Label of the token to create (default `login`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_name: Option<String>,
}

/// `GET /v1/auth/whoami`: the account the token acts as.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    /// Account name.
    pub account: String,
    /// `admin`, `reseller` or `customer`.
    pub kind: String,
    /// Id of the token used.
    pub token_id: String,
}

/// `POST /v1/tokens`: create an API token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// Label, e.g. `laptop` (1–64 printable characters).
    pub name: String,
    /// Account the token acts as; default the caller. Admins and resellers may name
    /// accounts they manage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Days until it expires; default never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_days: Option<u32>,
}

/// A token without its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TokenView {
    /// Public id (also the path key: `/v1/tokens/{id}`).
    pub id: String,
    /// Label.
    pub name: String,
    /// Account it acts as.
    pub account: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339, if it expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// A newly created token: the only time the secret is shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TokenCreated {
    /// The token to send as `Authorization: Bearer ...`. Shown once.
    pub token: String,
    /// Its metadata.
    #[serde(flatten)]
    pub info: TokenView,
}

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
    /// RFC 3339.
    pub created_at: String,
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

// ---------------------------------------------------------------- customers

/// `POST /v1/customers`: create a customer, reseller or admin account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCustomer {
    /// Name: lowercase letters, digits, hyphens.
    pub name: String,
    /// `customer` (default), `reseller` (admins only) or `admin` (admins only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Contact address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Reseller managing it (admins only; a reseller's customers are its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reseller: Option<String>,
    /// Login password (10+ characters); without one the account logs in by token only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Default cluster name per role for this customer's new domains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_clusters: Option<BTreeMap<String, String>>,
    /// Storage quota in MiB for all the customer's databases (0 or absent:
    /// unlimited). At 90% the db server warns; above 100% it stops writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_quota_mb: Option<u64>,
}

/// `PATCH /v1/customers/{name}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCustomer {
    /// New display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// New contact address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// New password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Disable or enable (admins and resellers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// New default clusters (replaces the map).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_clusters: Option<BTreeMap<String, String>>,
    /// New database storage quota in MiB; 0 removes it (admins and resellers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_quota_mb: Option<u64>,
    /// Plan (admins and resellers; a reseller assigns its own plans); `""` returns
    /// the account to the controller's default plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// Overrides of the plan's limits to set (admins and resellers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitsPatch>,
    /// Names of overrides to remove (back to the plan's value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear_limits: Option<Vec<String>>,
    /// Resellers: may choose clusters for their customers (admins only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub may_choose_clusters: Option<bool>,
}

/// An account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CustomerView {
    /// Name.
    pub name: String,
    /// `admin`, `reseller` or `customer`.
    pub kind: String,
    /// Display name.
    pub display_name: String,
    /// Contact address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Managing reseller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reseller: Option<String>,
    /// Disabled accounts cannot log in.
    pub disabled: bool,
    /// Has a login password.
    pub has_password: bool,
    /// Default cluster per role.
    pub default_clusters: BTreeMap<String, String>,
    /// Database storage quota in MiB (absent: unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_quota_mb: Option<u64>,
    /// Plan name (absent: the controller's default plan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// The limits in force (plan and overrides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitsView>,
    /// The account's own overrides of its plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_overrides: Option<LimitsPatch>,
    /// Resellers: may choose clusters.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub may_choose_clusters: bool,
    /// RFC 3339.
    pub created_at: String,
}

// ---------------------------------------------------------------- domains, sites

/// `POST /v1/domains`: add a domain and place it on one cluster per role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDomain {
    /// Domain name; Unicode is accepted and stored as IDNA A-labels.
    pub name: String,
    /// Owning customer (required for admins and resellers; customers own their own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    /// Explicit cluster per role (`web`, `dns`, `mail`, `files`); the rest from the
    /// customer's defaults, then the operator's default clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clusters: Option<BTreeMap<String, String>>,
}

/// `POST /v1/domain-challenges`: the TXT record that proves control of a
/// registrable domain whose names another account holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDomainChallenge {
    /// A domain name under the registrable domain (Unicode accepted).
    pub name: String,
    /// The customer that will prove control (required for admins and resellers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
}

/// The proof to publish: TXT `record` = `value`, then add the domain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DomainChallengeView {
    /// The registrable domain (eTLD+1) the proof is for.
    pub registrable: String,
    /// Owner name of the TXT record, `_hostplane-challenge.<registrable>`.
    pub record: String,
    /// The TXT value (specific to the customer and the registrable domain).
    pub value: String,
    /// The customer it proves control for.
    pub customer: String,
}

/// `POST /v1/domain-transfers` (admins): give every name under a registrable
/// domain, with its sites, mail, FTP accounts and records, to another customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDomainTransfer {
    /// A domain name under the registrable domain (Unicode accepted).
    pub name: String,
    /// The customer that will own them.
    pub to: String,
}

/// What a transfer moved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DomainTransferView {
    /// The registrable domain transferred.
    pub registrable: String,
    /// The customer owning it now.
    pub to: String,
    /// The domain names moved (those it already owned included).
    pub domains: Vec<String>,
}

/// `PATCH /v1/domains/{name}`: move roles to other clusters (admins only).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDomain {
    /// Cluster per role to move to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clusters: Option<BTreeMap<String, String>>,
}

/// A domain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DomainView {
    /// Name (A-labels).
    pub name: String,
    /// Name for display (U-labels).
    pub unicode: String,
    /// Owning customer.
    pub customer: String,
    /// Cluster name per role.
    pub placements: BTreeMap<String, String>,
    /// RFC 3339.
    pub created_at: String,
}

/// `POST /v1/sites`: the web part of a domain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSite {
    /// The domain.
    pub domain: String,
    /// More host names; each inside one of the same customer's domains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aliases: Option<Vec<String>>,
    /// PHP on (default off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub php: Option<bool>,
    /// `single` (default) or `all`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Redirect HTTP to HTTPS (default off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https_redirect: Option<bool>,
}

/// `PATCH /v1/sites/{domain}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSite {
    /// New alias list (replaces).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aliases: Option<Vec<String>>,
    /// PHP on/off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub php: Option<bool>,
    /// `single` or `all`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Redirect HTTP to HTTPS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https_redirect: Option<bool>,
    /// Paths that survive deployments, e.g. `wp-content/uploads` (replaces the list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<Vec<String>>,
    /// Paths each web server keeps to itself, not replicated, e.g. `wp-content/cache`
    /// (replaces the list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<Vec<String>>,
}

/// A site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SiteView {
    /// Domain (primary host name).
    pub domain: String,
    /// Owning customer.
    pub customer: String,
    /// Alias host names.
    pub aliases: Vec<String>,
    /// PHP on.
    pub php: bool,
    /// `single` or `all`.
    pub mode: String,
    /// Redirect HTTP to HTTPS.
    pub https_redirect: bool,
    /// Web cluster.
    pub cluster: String,
    /// Server a `single` site is active on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_server: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// Paths that survive deployments.
    #[serde(default)]
    pub keep: Vec<String>,
    /// Paths not replicated (each web server keeps its own).
    #[serde(default)]
    pub local: Vec<String>,
    /// Bytes of the site's files, as its files server last reported (absent before
    /// the first report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_bytes: Option<u64>,
    /// The site's disk limit in MiB (the plan's `site_disk_mb`; 0: none).
    #[serde(default)]
    pub quota_mb: u64,
    /// Losing versions kept in the conflicts area (`site conflicts`).
    #[serde(default)]
    pub conflicts: u64,
    /// What may not work as expected, e.g. SQLite databases in an `all` site.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// `PUT /v1/sites/{domain}/certificate`: the customer's own certificate.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadCertificate {
    /// PEM chain: the site's certificate first, then intermediates.
    pub cert_pem: String,
    /// PEM private key of the certificate (PKCS#8, PKCS#1 or SEC1).
    pub key_pem: String,
}

impl std::fmt::Debug for UploadCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadCertificate").finish_non_exhaustive()
    }
}

/// A site's content deployed through the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeploymentView {
    /// The site's domain.
    pub domain: String,
    /// Deployment id (BLAKE3 of the archive).
    pub id: String,
    /// Archive size, bytes.
    pub size: u64,
    /// RFC 3339.
    pub deployed_at: String,
}

/// The certificate a site is served with (never its key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CertificateView {
    /// The site's domain.
    pub domain: String,
    /// `internal` (controller CA), `uploaded` (the customer's) or `pending` (not
    /// issued yet).
    pub source: String,
    /// DNS names it covers.
    pub names: Vec<String>,
    /// Expiry (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    /// The certificate chain (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_pem: Option<String>,
}

// ---------------------------------------------------------------- mail

/// `POST /v1/mailboxes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMailbox {
    /// Full address, e.g. `info@example.com`; the domain must be the caller's.
    pub address: String,
    /// Password (10+ characters); generated and returned once when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Quota in MiB, 0 = unlimited (default 1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_mb: Option<u64>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// `PATCH /v1/mailboxes/{address}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMailbox {
    /// New password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// New quota.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_mb: Option<u64>,
    /// New display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Enable or disable logins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// A mailbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MailboxView {
    /// Address.
    pub address: String,
    /// Domain.
    pub domain: String,
    /// Owning customer.
    pub customer: String,
    /// Quota MiB (0 = unlimited).
    pub quota_mb: u64,
    /// Display name.
    pub display_name: String,
    /// Logins allowed.
    pub enabled: bool,
    /// RFC 3339.
    pub created_at: String,
}

/// A created object plus a generated password, shown once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WithPassword<T> {
    /// The object.
    #[serde(flatten)]
    pub object: T,
    /// Generated password, present only when the request gave none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated_password: Option<String>,
}

/// `POST /v1/aliases`: an address that forwards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAlias {
    /// Address, e.g. `sales@example.com`.
    pub address: String,
    /// Destinations (local mailboxes or external addresses), 1–100.
    pub destinations: Vec<String>,
}

/// `PATCH /v1/aliases/{address}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAlias {
    /// New destinations (replaces).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destinations: Option<Vec<String>>,
}

/// An alias or forward.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AliasView {
    /// Address.
    pub address: String,
    /// Domain.
    pub domain: String,
    /// Owning customer.
    pub customer: String,
    /// Destinations.
    pub destinations: Vec<String>,
    /// RFC 3339.
    pub created_at: String,
}

// ---------------------------------------------------------------- databases

/// `POST /v1/databases`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDatabase {
    /// Name: `[a-z][a-z0-9_]*`, at most 32.
    pub name: String,
    /// `mariadb` or `postgres`.
    pub engine: String,
    /// Owning customer (admins and resellers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    /// db cluster (default: the customer's, then the operator's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Domain to link it to (the customer's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Restore this trash entry (see `GET /v1/db-trash`) into the new
    /// database instead of creating it empty; engine and cluster must match the
    /// entry's, and only the customer who owned the dropped database may use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_from: Option<String>,
}

/// A dump of a dropped database, kept in its db server's trash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DbTrashView {
    /// Entry name (what `restore_from` takes).
    pub name: String,
    /// The database it was.
    pub database: String,
    /// Engine.
    pub engine: String,
    /// Owning customer.
    pub customer: String,
    /// db cluster.
    pub cluster: String,
    /// The db server holding it.
    pub server: String,
    /// When it was dropped (RFC 3339).
    pub dropped_at: String,
    /// Compressed size, bytes.
    pub size_bytes: u64,
}

/// One mail server's queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MailQueueView {
    /// Server name.
    pub server: String,
    /// Whether the server's last report is known (it may be down).
    pub reported: bool,
    /// Queued messages.
    pub messages: Vec<QueuedMailView>,
}

/// One queued message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QueuedMailView {
    /// Queue id.
    pub id: String,
    /// Envelope sender.
    pub from: String,
    /// Recipients not yet delivered.
    pub to: Vec<String>,
    /// Size, bytes.
    pub size: u64,
    /// Attempts so far.
    pub attempts: u32,
    /// Queued at (RFC 3339).
    pub queued_at: String,
    /// Next attempt (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt: Option<String>,
    /// Last error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// `PATCH /v1/databases/{name}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDatabase {
    /// Link to a domain; an empty string unlinks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

/// A database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DatabaseView {
    /// Name.
    pub name: String,
    /// Engine.
    pub engine: String,
    /// Owning customer.
    pub customer: String,
    /// db cluster.
    pub cluster: String,
    /// Linked domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Size reported by the db server, bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    /// RFC 3339.
    pub created_at: String,
}

/// `POST /v1/db-users`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDbUser {
    /// Login name: `[a-z][a-z0-9_]*`, at most 32.
    pub name: String,
    /// `mariadb` or `postgres`; when absent, that of the granted databases
    /// (required when none is granted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// Owning customer (admins and resellers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    /// db cluster (default: that of its first database, else the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Password; generated and returned once when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Databases to grant (the same customer's, same engine and cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub databases: Option<Vec<String>>,
}

/// `PATCH /v1/db-users/{name}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDbUser {
    /// New password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// New grant list (replaces).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub databases: Option<Vec<String>>,
}

/// A database user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DbUserView {
    /// Name.
    pub name: String,
    /// Engine.
    pub engine: String,
    /// Owning customer.
    pub customer: String,
    /// db cluster.
    pub cluster: String,
    /// Granted databases.
    pub databases: Vec<String>,
    /// RFC 3339.
    pub created_at: String,
}

// ---------------------------------------------------------------- ftp

/// `POST /v1/ftp-accounts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateFtpAccount {
    /// Login name.
    pub username: String,
    /// Domain whose site files it reaches.
    pub domain: String,
    /// Password; generated and returned once when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Folder inside the site files (default: the site root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<String>,
    /// Quota MiB, 0 = unlimited (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_mb: Option<u64>,
}

/// `PATCH /v1/ftp-accounts/{username}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateFtpAccount {
    /// New password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// New home folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<String>,
    /// New quota.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_mb: Option<u64>,
}

/// An FTP account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FtpAccountView {
    /// Login name.
    pub username: String,
    /// Domain.
    pub domain: String,
    /// Owning customer.
    pub customer: String,
    /// Home folder inside the site files ("" = root).
    pub home: String,
    /// Quota MiB.
    pub quota_mb: u64,
    /// RFC 3339.
    pub created_at: String,
}

// ---------------------------------------------------------------- dns records

/// `POST /v1/dns-records`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDnsRecord {
    /// The zone (domain name).
    pub domain: String,
    /// Owner name relative to the domain: `@`, `www`, `_sip._tcp`, `*.dev`.
    pub name: String,
    /// TTL seconds (30–604800); the cluster default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    /// Typed data, e.g. `{"type":"MX","preference":10,"exchange":"mx.example.net"}`.
    /// Types: A{address}, AAAA{address}, CNAME{target}, MX{preference,exchange},
    /// TXT{text}, SRV{priority,weight,port,target}, CAA{flags,tag,value}, NS{target}.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// `PATCH /v1/dns-records/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDnsRecord {
    /// New owner name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New TTL; `0` returns to the cluster default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    /// New data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub data: Option<serde_json::Value>,
}

/// A customer DNS record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DnsRecordView {
    /// Id (path key).
    pub id: i64,
    /// Zone.
    pub domain: String,
    /// Relative owner name.
    pub name: String,
    /// TTL, if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    /// Record type.
    #[serde(rename = "type")]
    pub rtype: String,
    /// Typed data as given (with `type`).
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// RFC 3339.
    pub created_at: String,
}

// ---------------------------------------------------------------- events, status

/// Query of `GET /v1/events`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// Cursor from the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Page size, 1–1000, default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventView {
    /// Sequence number.
    pub id: i64,
    /// Revision the change produced.
    pub revision: i64,
    /// RFC 3339.
    pub at: String,
    /// Who.
    pub actor: String,
    /// `create`, `update`, `delete` or a named action.
    pub action: String,
    /// Object kind.
    pub kind: String,
    /// Object name.
    pub object: String,
    /// Details.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StatusView {
    /// Controller version.
    pub version: String,
    /// Current global revision.
    pub revision: i64,
    /// `sqlite` or `postgres`.
    pub store: String,
    /// Seconds since the controller started.
    pub uptime_seconds: u64,
    /// Number of objects per kind visible to the caller.
    pub counts: BTreeMap<String, i64>,
    /// Clusters with their servers (admins only; empty otherwise).
    pub clusters: Vec<ClusterView>,
    /// Servers (admins only; empty otherwise).
    pub servers: Vec<ServerView>,
    /// The controller's login throttle (admins only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_throttle: Option<ThrottleCounts>,
}

/// Counters of a login throttle (`hostplane status`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ThrottleCounts {
    /// (account, source address) pairs with recent failures.
    pub sources: u64,
    /// Source addresses with recent failures.
    #[serde(default)]
    pub addresses: u64,
    /// Accounts with recent failures.
    pub accounts: u64,
    /// Wrong passwords since start.
    pub failures: u64,
    /// Attempts refused (429) without checking the password since start.
    pub refused: u64,
    /// Attempts from clean addresses held back by the account-wide delay since start.
    pub delayed: u64,
}

/// `GET /v1/mail/check/{domain}`: what receiving mail servers check about the
/// domain's mail, each check `ok`, `warn` or `fail` with a sentence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MailCheckView {
    /// The domain checked.
    pub domain: String,
    /// The checks, in a stable order (spf, dkim, dmarc, mx, then per mail server).
    pub checks: Vec<MailCheckItem>,
}

/// One check of [`MailCheckView`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MailCheckItem {
    /// What was checked: `spf`, `dkim:<selector>`, `dmarc`, `mx`, `helo:<host name>`,
    /// `ptr:<address>`.
    pub check: String,
    /// `ok`, `warn` or `fail`.
    pub status: String,
    /// What was found, in a sentence.
    pub message: String,
}
