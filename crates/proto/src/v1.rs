//! REST API version 1 (`/v1/...`): request, response and error bodies.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

pub use crate::v1_acme::*;
pub use crate::v1_cron::*;
pub use crate::v1_infra::*;
pub use crate::v1_logs::*;
pub use crate::v1_map::*;
pub use crate::v1_plans::*;
pub use crate::v1_services::*;
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
    /// Days until the token expires, 1–3650 (default: never). The web panel asks
    /// for 1, so a session lost with a controller restart leaves no lasting token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_days: Option<u32>,
    /// The current six-digit TOTP code, required when the account has two-factor
    /// authentication (or give `recovery_code` instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp_code: Option<String>,
    /// One of the account's unused recovery codes, in place of `totp_code`
    /// (each works once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_code: Option<String>,
}

/// `GET /v1/auth/totp`: the caller's two-factor state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TotpStatus {
    /// An enrolment exists (maybe not confirmed yet).
    pub enrolled: bool,
    /// Confirmed with a code: logins need a code.
    pub confirmed: bool,
    /// Recovery codes not used yet.
    pub recovery_codes_left: usize,
}

/// `POST /v1/auth/totp`: a new enrolment, to be confirmed with a code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TotpEnrolment {
    /// The secret, base32 (for typing into an authenticator app).
    pub secret: String,
    /// The `otpauth://totp/...` URI (RFC 6238: SHA-1, 30 s, 6 digits).
    pub otpauth_uri: String,
    /// The URI as a QR code, an SVG document without inline styles.
    pub qr_svg: String,
}

/// `POST /v1/auth/totp/confirm`: a current code from the authenticator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpConfirm {
    /// Six digits.
    pub code: String,
}

/// `POST /v1/auth/totp/confirm`: the recovery codes, shown this once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RecoveryCodes {
    /// Ten single-use codes `xxxxx-xxxxx`.
    pub recovery_codes: Vec<String>,
}

/// `POST /v1/auth/totp/disable`: proof that the caller holds the account: a
/// current code or the password.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpDisable {
    /// A current TOTP code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The account's password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// `POST /v1/auth/impersonate`: a token acting as a customer the caller manages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Impersonate {
    /// The customer to act as.
    pub account: String,
    /// Minutes the token is valid, 1–480 (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<u32>,
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
    /// For an impersonation token: the reseller or admin acting as `account`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impersonator: Option<String>,
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
    /// The folder of the site served, relative to its files (`public`); `/` serves
    /// all of them again. Nothing outside it is ever served; PHP still reaches the
    /// whole site (`require '../vendor/autoload.php'`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docroot: Option<String>,
    /// HSTS on/off (sent only while the site has a trusted certificate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hsts: Option<bool>,
    /// PHP version (`8.2`) one of the site's web servers has; `default` for the
    /// servers' default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub php_version: Option<String>,
    /// `php.ini` values to set (allowed keys and ranges: `docs/web.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub php_set: Option<BTreeMap<String, String>>,
    /// `php.ini` keys back to their default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub php_unset: Option<Vec<String>>,
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
    /// The folder served, relative to the site's files (`/`: all of them).
    #[serde(default = "root_docroot")]
    pub docroot: String,
    /// HSTS asked for.
    #[serde(default)]
    pub hsts: bool,
    /// Whether HSTS is sent now (asked for and the certificate is trusted).
    #[serde(default)]
    pub hsts_active: bool,
    /// The PHP version chosen (`None`: the servers' default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub php_version: Option<String>,
    /// The PHP version the site's pool runs: the chosen one, else the default of
    /// the site's web servers as they last reported (`8.2.28` when known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub php_version_effective: Option<String>,
    /// PHP versions every server of the site's web cluster reported.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub php_versions_available: Vec<String>,
    /// `php.ini` values set for the site (normal form).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub php_ini: BTreeMap<String, String>,
    /// The mail cluster PHP's `mail()` submits to (absent: the domain has no mail
    /// service, so `mail()` fails and says so in the site's error log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail_cluster: Option<String>,
    /// `mail()` messages waiting on the site's web servers for another attempt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mail_spooled: Vec<SiteMailSpooled>,
}

/// A site's `mail()` messages waiting on one web server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SiteMailSpooled {
    /// The web server holding them.
    pub server: String,
    /// How many.
    pub messages: u32,
    /// When PHP sent the oldest (RFC 3339).
    pub oldest: String,
    /// Why the last attempt did not deliver.
    pub last_error: String,
}

fn root_docroot() -> String {
    "/".into()
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
    /// `internal` (controller CA), `acme` (publicly trusted, issue 17),
    /// `uploaded` (the customer's) or `pending` (not issued yet).
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
