//! `/v1/sites/{domain}/certificate`: a site's TLS certificate. Every site gets one
//! from the controller CA ([`crate::keys`]); a customer may upload its own (chain
//! and key checked to match and to cover the site's domain), which then replaces the
//! internal one until it is deleted again. Keys are never returned.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use model::entity::{Kind, Secret, SecretPurpose, Site};
use proto::v1::{CertificateView, ErrorBody, UploadCertificate};
use store::{NewObject, Scope, Stored};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use super::sites::path_site;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::state::AppState;

/// Largest PEM accepted for the chain and for the key.
const MAX_PEM: usize = 64 * 1024;

/// What an uploaded certificate was found to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// DNS names of the leaf certificate.
    pub names: Vec<String>,
    /// Its expiry (unix seconds).
    pub not_after: i64,
}

fn bad(field: &'static str, rule: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::invalid(field, rule, message)
}

/// Whether certificate name `pattern` (maybe `*.example.com`) covers `host`.
fn covers(pattern: &str, host: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(rest) => host
            .split_once('.')
            .is_some_and(|(first, parent)| !first.is_empty() && parent == rest),
        None => pattern == host,
    }
}

/// Check an uploaded chain and key: both parse, the key is the leaf's, the leaf is
/// valid now and names `domain`. Pure except for the clock (`now`, unix seconds).
pub fn check_upload(cert_pem: &str, key_pem: &str, domain: &str, now: i64) -> ApiResult<Checked> {
    if cert_pem.len() > MAX_PEM || key_pem.len() > MAX_PEM {
        return Err(bad("cert_pem", "too_large", "at most 64 KiB of PEM each"));
    }
    let certs: Vec<_> = rustls_pemfile::certs(&mut cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|_| bad("cert_pem", "pem", "not a PEM certificate chain"))?;
    let Some(leaf_der) = certs.first().cloned() else {
        return Err(bad(
            "cert_pem",
            "pem",
            "no CERTIFICATE block found (the chain starts with the site's certificate)",
        ));
    };
    let key = rustls_pemfile::private_key(&mut key_pem.as_bytes())
        .ok()
        .flatten()
        .ok_or_else(|| {
            bad(
                "key_pem",
                "pem",
                "no private key (PKCS#8, PKCS#1 or SEC1 PEM) found",
            )
        })?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|_| {
        bad(
            "key_pem",
            "unsupported_key",
            "the key is not an RSA, ECDSA or Ed25519 key",
        )
    })?;
    rustls::sign::CertifiedKey::new(certs, signing)
        .keys_match()
        .map_err(|_| {
            bad(
                "key_pem",
                "key_mismatch",
                "the private key does not belong to the certificate",
            )
        })?;
    let (_, leaf) = X509Certificate::from_der(leaf_der.as_ref()).map_err(|_| {
        bad(
            "cert_pem",
            "x509",
            "the first certificate does not parse as X.509",
        )
    })?;
    let not_before = leaf.validity().not_before.timestamp();
    let not_after = leaf.validity().not_after.timestamp();
    if now < not_before || now > not_after {
        return Err(bad(
            "cert_pem",
            "not_valid_now",
            "the certificate is not valid now (expired or not yet valid)",
        ));
    }
    let mut names = Vec::new();
    if let Ok(Some(san)) = leaf.subject_alternative_name() {
        for n in &san.value.general_names {
            if let GeneralName::DNSName(d) = n {
                names.push(d.to_ascii_lowercase());
            }
        }
    }
    if !names.iter().any(|n| covers(n, domain)) {
        return Err(bad(
            "cert_pem",
            "wrong_name",
            format!(
                "the certificate does not name `{domain}` (it names: {})",
                names.join(", ")
            ),
        ));
    }
    Ok(Checked { names, not_after })
}

/// The stored certificate of a site, if any.
async fn site_cert(state: &AppState, domain: &str) -> ApiResult<Option<Stored<Secret>>> {
    Ok(state
        .store
        .get_by_name::<Secret>(Scope::All, &SecretPurpose::SiteCert.store_name(domain))
        .await?)
}

fn view(domain: &str, s: Option<&Stored<Secret>>) -> CertificateView {
    CertificateView {
        domain: domain.to_owned(),
        source: match s {
            Some(s) if s.data.uploaded => "uploaded",
            Some(s) if crate::acme::is_acme_cert(&s.data) => "acme",
            Some(_) => "internal",
            None => "pending",
        }
        .to_owned(),
        names: s.map(|s| s.data.names.clone()).unwrap_or_default(),
        not_after: s
            .and_then(|s| s.data.not_after)
            .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
            .map(super::rfc3339),
        cert_pem: s.map(|s| s.data.public.clone()),
    }
}

async fn domain_of(state: &AppState, site: &Stored<Site>) -> ApiResult<String> {
    Ok(state
        .store
        .get::<model::entity::Domain>(Scope::All, site.data.domain)
        .await?
        .map(|d| d.meta.name)
        .unwrap_or_default())
}

/// `GET /v1/sites/{domain}/certificate`: which certificate the site is served with.
#[utoipa::path(get, path = "/v1/sites/{domain}/certificate", tag = "sites", params(("domain" = String, Path)),
    responses((status = 200, body = CertificateView), (status = 404, body = ErrorBody)))]
pub async fn get_certificate(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<CertificateView>> {
    let site = path_site(&state, &caller, &name).await?;
    let domain = domain_of(&state, &site).await?;
    Ok(Json(view(
        &domain,
        site_cert(&state, &domain).await?.as_ref(),
    )))
}

/// `PUT /v1/sites/{domain}/certificate`: serve the site with the customer's own
/// certificate (PEM chain, leaf first) and key.
#[utoipa::path(put, path = "/v1/sites/{domain}/certificate", tag = "sites", params(("domain" = String, Path)),
    request_body = UploadCertificate,
    responses((status = 200, body = CertificateView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_certificate(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<UploadCertificate>,
) -> ApiResult<Json<CertificateView>> {
    let site = path_site(&state, &caller, &name).await?;
    let domain = domain_of(&state, &site).await?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let checked = check_upload(&req.cert_pem, &req.key_pem, &domain, now)?;
    let secret = Secret {
        purpose: SecretPurpose::SiteCert,
        subject: domain.clone(),
        public: req.cert_pem,
        private: req.key_pem,
        algorithm: "uploaded".into(),
        not_after: Some(checked.not_after),
        uploaded: true,
        names: checked.names,
    };
    let store_name = SecretPurpose::SiteCert.store_name(&domain);
    let mut tx = state.store.begin(caller.actor()).await?;
    let saved = match tx.get_by_name::<Secret>(&store_name).await? {
        Some(cur) => tx.update(cur.meta.id, &store_name, secret).await?,
        None => {
            tx.create(NewObject {
                name: store_name.clone(),
                owner: site.meta.owner,
                parent: None,
                data: secret,
            })
            .await?
        }
    };
    tx.commit().await?;
    state.changed();
    Ok(Json(view(&domain, Some(&saved))))
}

/// `DELETE /v1/sites/{domain}/certificate`: drop an uploaded certificate; the site
/// gets one from the controller CA again.
#[utoipa::path(delete, path = "/v1/sites/{domain}/certificate", tag = "sites", params(("domain" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_certificate(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let site = path_site(&state, &caller, &name).await?;
    let domain = domain_of(&state, &site).await?;
    match site_cert(&state, &domain).await? {
        Some(s) if s.data.uploaded => {
            let mut tx = state.store.begin(caller.actor()).await?;
            tx.delete(Kind::Secret, s.meta.id).await?;
            tx.commit().await?;
            state.changed();
            Ok(StatusCode::NO_CONTENT)
        }
        _ => Err(ApiError::not_found(format!(
            "`{domain}` has no uploaded certificate (it uses the internal one)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair};

    fn self_signed(names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn now() -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }

    fn rule(r: ApiResult<Checked>) -> String {
        let e = r.unwrap_err();
        format!("{e:?}")
    }

    #[test]
    fn accepts_a_matching_certificate_and_names_its_names() {
        let (cert, key) = self_signed(&["example.com", "www.example.com"]);
        let c = check_upload(&cert, &key, "example.com", now()).unwrap();
        assert_eq!(c.names, ["example.com", "www.example.com"]);
        assert!(c.not_after > now());
        // Wildcards cover one label.
        let (cert, key) = self_signed(&["*.example.com"]);
        check_upload(&cert, &key, "shop.example.com", now()).unwrap();
        assert!(rule(check_upload(&cert, &key, "example.com", now())).contains("wrong_name"));
    }

    #[test]
    fn refuses_mismatched_keys_wrong_names_garbage_and_expired() {
        let (cert, _) = self_signed(&["example.com"]);
        let (_, other_key) = self_signed(&["example.com"]);
        assert!(
            rule(check_upload(&cert, &other_key, "example.com", now())).contains("key_mismatch")
        );
        let (cert, key) = self_signed(&["other.example"]);
        assert!(rule(check_upload(&cert, &key, "example.com", now())).contains("wrong_name"));
        assert!(rule(check_upload("garbage", &key, "other.example", now())).contains("cert_pem"));
        assert!(rule(check_upload(&cert, "garbage", "other.example", now())).contains("key_pem"));
        // rcgen's default validity ends in 4096; pretend it is later.
        assert!(
            rule(check_upload(&cert, &key, "other.example", 70_000_000_000))
                .contains("not_valid_now")
        );
        let huge = "A".repeat(MAX_PEM + 1);
        assert!(rule(check_upload(&huge, &key, "other.example", now())).contains("too_large"));
    }
}
