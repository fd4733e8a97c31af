//! Publicly trusted site certificates by ACME (RFC 8555; issue 17).
//!
//! The controller is the one ACME client of the platform: one account (its key a
//! [`SecretPurpose::AcmeAccount`] secret, made on first use), one controller
//! issuing at a time (a short lease in the store, [`lease`]), orders made by a
//! background task ([`task::run`]) off the request path, like the key task.
//!
//! The path of an issuance: a site with no ACME certificate (or one due for
//! renewal at two thirds of its life, [`state::renew_at`]) is due
//! ([`state::due`]); each of its names (domain and aliases) must resolve, through
//! the configured resolver, to addresses of its web cluster's servers only
//! ([`check`]) — names that do not are left out and reported; the order's HTTP-01
//! tokens are stored as one [`SecretPurpose::AcmeChallenge`] secret, which the
//! config builder puts into every web server of the cluster
//! (`WebConfig::acme_challenges`, answered by role-web before any redirect); the CA
//! is told to validate only after each of those servers (down ones excepted)
//! reported a config revision holding the tokens; the issued chain and its key
//! then become the site's [`SecretPurpose::SiteCert`], marked by
//! [`ACME_ALGORITHM`] (the web engines swap certificates per site without a
//! restart). An uploaded certificate is never replaced; the internal one stays
//! until the ACME one is issued. Each site's state — status, names, left-out
//! names, issuer, expiry, last attempt and error, backoff — is a
//! [`SecretPurpose::AcmeSite`] secret ([`state::SiteAcme`]) shown by
//! `GET /v1/sites/{domain}/certificate/acme` ([`api`]); `cert.issued` and
//! `cert.failed` events record each outcome.

pub mod api;
pub mod ari;
pub mod caa;
pub mod check;
pub mod client;
mod config;
pub mod dns01;
pub mod lease;
mod pass;
pub mod plan;
pub mod queue;
pub mod state;
pub mod task;
pub mod view;

pub use config::{AcmeConfig, LETSENCRYPT, LETSENCRYPT_STAGING};
pub use queue::Limits;

use model::entity::{Secret, SecretPurpose};

/// The `algorithm` of a site certificate issued by ACME (the key is ECDSA P-256,
/// made by the controller for the CSR); what tells it from an internal one.
pub const ACME_ALGORITHM: &str = "acme-ecdsa-p256";

/// Whether a stored site certificate was issued by ACME.
pub fn is_acme_cert(s: &Secret) -> bool {
    s.purpose == SecretPurpose::SiteCert && s.algorithm == ACME_ALGORITHM
}

/// The HTTP-01 challenges an [`SecretPurpose::AcmeChallenge`] secret holds (none
/// when its JSON does not parse: a bad secret must not stop a build).
pub fn challenges_of(s: &Secret) -> Vec<proto::agent_v1::AcmeChallenge> {
    if s.purpose != SecretPurpose::AcmeChallenge || s.algorithm == dns01::ALGORITHM {
        return Vec::new();
    }
    serde_json::from_str(&s.public).unwrap_or_default()
}

/// For a stored ACME certificate, how long (seconds) before its expiry the key
/// task replaces it by an internal one if every renewal failed: a day
/// ([`crate::keys::ACME_FALLBACK_BEFORE`]), or the last sixth of its life when
/// that is shorter (short-lived certificates are renewed at two thirds); `None`
/// for any other secret.
pub fn fallback_lead(s: &Secret) -> Option<i64> {
    if !is_acme_cert(s) {
        return None;
    }
    let day = crate::keys::ACME_FALLBACK_BEFORE;
    let not_before = rustls_pemfile::certs(&mut s.public.as_bytes())
        .next()
        .and_then(Result::ok)
        .and_then(|der| {
            x509_parser::parse_x509_certificate(&der)
                .ok()
                .map(|(_, c)| c.validity().not_before.timestamp())
        });
    Some(match (not_before, s.not_after) {
        (Some(b), Some(a)) if a > b => day.min((a - b) / 6),
        _ => day,
    })
}
