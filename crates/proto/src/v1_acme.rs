//! REST bodies of a site's ACME certificate (issue 17):
//! `GET /v1/sites/{domain}/certificate/acme` and its `PUT` (turn ACME off or on).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a site's publicly trusted certificate stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AcmeStatusView {
    /// The site's domain.
    pub domain: String,
    /// Whether the controller has `[acme]` configured at all.
    pub configured: bool,
    /// Whether ACME is on for this site (on by default).
    pub enabled: bool,
    /// `pending`, `ordering`, `valid`, `failed`, `waiting` (held back by a CA
    /// limit, see `waiting_for`), `uploaded` (the customer's certificate is kept)
    /// or `disabled`.
    pub status: String,
    /// The certificate the site serves now: `acme`, `internal`, `uploaded` or
    /// `pending`.
    pub serving: String,
    /// How names are validated: `auto` (DNS-01 for names delegated to the
    /// platform's DNS and for wildcards, HTTP-01 otherwise), `http-01` or `dns-01`.
    #[serde(default = "auto")]
    pub challenge: String,
    /// Names of the ACME certificate.
    #[serde(default)]
    pub names: Vec<String>,
    /// The challenge each name of the last order was validated with
    /// (`name: http-01` …).
    #[serde(default)]
    pub validated: Vec<String>,
    /// Names left out of the last order, each with the reason.
    #[serde(default)]
    pub left_out: Vec<AcmeLeftOut>,
    /// Issuer of the ACME certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Its expiry (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    /// When it is renewed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renew_at: Option<String>,
    /// The last attempt (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt: Option<String>,
    /// Why the last attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The next attempt after a failure (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt: Option<String>,
    /// The CA limit the order queue waits for (status `waiting`, until
    /// `next_attempt`), e.g. "new orders per account per 3 hours (300)".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
    /// The CA's suggested renewal window (RFC 9773 renewal information), start
    /// and end (RFC 3339), when the CA offers one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal_window: Option<[String; 2]>,
}

/// A name left out of an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AcmeLeftOut {
    /// The name.
    pub name: String,
    /// Why.
    pub reason: String,
}

fn auto() -> String {
    "auto".into()
}

/// Body of `PUT /v1/sites/{domain}/certificate/acme`; an absent field is left
/// as it is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcmeSettings {
    /// Order and renew a publicly trusted certificate for the site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// How names are validated: `auto`, `http-01` or `dns-01`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge: Option<String>,
}
