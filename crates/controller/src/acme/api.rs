//! `GET /v1/sites/{domain}/certificate/acme`: where the site's ACME certificate
//! stands (issuer, expiry, last attempt and error, names left out), and `PUT` to
//! turn ACME off or on for the site (on by default when `[acme]` is configured).

use axum::extract::State;
use axum::Json;
use model::entity::{Domain, Secret, SecretPurpose, Site};
use proto::v1::{AcmeLeftOut, AcmeSettings, AcmeStatusView, ErrorBody};
use store::{Scope, Stored};

use super::state::{SiteAcme, Status};
use crate::api::sites::path_site;
use crate::auth::Caller;
use crate::error::{ApiJson, ApiPath, ApiResult};
use crate::state::AppState;

fn time(t: Option<i64>) -> Option<String> {
    t.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .map(crate::api::rfc3339)
}

fn status_str(s: Status) -> &'static str {
    match s {
        Status::Pending => "pending",
        Status::Ordering => "ordering",
        Status::Valid => "valid",
        Status::Failed => "failed",
        Status::Uploaded => "uploaded",
        Status::Disabled => "disabled",
        Status::Waiting => "waiting",
    }
}

async fn domain_of(state: &AppState, site: &Stored<Site>) -> ApiResult<Stored<Domain>> {
    state
        .store
        .get::<Domain>(Scope::All, site.data.domain)
        .await?
        .ok_or_else(|| crate::error::ApiError::not_found("the site's domain is gone"))
}

async fn stored_state(state: &AppState, domain: &str) -> ApiResult<Option<Stored<Secret>>> {
    Ok(state
        .store
        .get_by_name::<Secret>(Scope::All, &SecretPurpose::AcmeSite.store_name(domain))
        .await?)
}

async fn view(state: &AppState, domain: &str) -> ApiResult<AcmeStatusView> {
    let st: SiteAcme = stored_state(state, domain)
        .await?
        .and_then(|s| serde_json::from_str(&s.data.public).ok())
        .unwrap_or_default();
    let cert = state
        .store
        .get_by_name::<Secret>(Scope::All, &SecretPurpose::SiteCert.store_name(domain))
        .await?;
    let serving = match &cert {
        None => "pending",
        Some(c) if c.data.uploaded => "uploaded",
        Some(c) if super::is_acme_cert(&c.data) => "acme",
        Some(_) => "internal",
    };
    let status = match () {
        _ if st.disabled => Status::Disabled,
        _ if serving == "uploaded" => Status::Uploaded,
        _ => st.status,
    };
    Ok(AcmeStatusView {
        domain: domain.to_owned(),
        configured: state.config.acme.is_some(),
        enabled: !st.disabled,
        status: status_str(status).into(),
        serving: serving.into(),
        challenge: st.challenge.as_str().into(),
        names: st.names,
        validated: st
            .validated
            .iter()
            .map(|(n, m)| format!("{n}: {}", m.as_str()))
            .collect(),
        left_out: st
            .left_out
            .into_iter()
            .map(|l| AcmeLeftOut {
                name: l.name,
                reason: l.reason,
            })
            .collect(),
        issuer: st.issuer,
        not_after: time(st.not_after),
        renew_at: time(st.renew_at),
        last_attempt: time(st.last_attempt),
        last_error: st.last_error,
        next_attempt: time(st.next_attempt),
        waiting_for: st.waiting_for.filter(|_| st.status == Status::Waiting),
        renewal_window: st
            .ari_window
            .and_then(|(a, b)| Some([time(Some(a))?, time(Some(b))?])),
    })
}

/// `GET /v1/sites/{domain}/certificate/acme`: the site's ACME status.
#[utoipa::path(get, path = "/v1/sites/{domain}/certificate/acme", tag = "sites", params(("domain" = String, Path)),
    responses((status = 200, body = AcmeStatusView), (status = 404, body = ErrorBody)))]
pub async fn get_status(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<AcmeStatusView>> {
    let site = path_site(&state, &caller, &name).await?;
    let domain = domain_of(&state, &site).await?;
    Ok(Json(view(&state, &domain.meta.name).await?))
}

/// `PUT /v1/sites/{domain}/certificate/acme`: turn ACME off (the site keeps the
/// certificate it serves until it expires, then gets an internal one) or on again.
#[utoipa::path(put, path = "/v1/sites/{domain}/certificate/acme", tag = "sites", params(("domain" = String, Path)),
    request_body = AcmeSettings,
    responses((status = 200, body = AcmeStatusView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_settings(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<AcmeSettings>,
) -> ApiResult<Json<AcmeStatusView>> {
    let site = path_site(&state, &caller, &name).await?;
    let domain = domain_of(&state, &site).await?;
    let challenge = match req.challenge.as_deref() {
        None => None,
        Some(c) => Some(super::plan::Choice::parse(c).ok_or_else(|| {
            crate::error::ApiError::invalid(
                "challenge",
                "bad_challenge",
                format!("`{c}` is not a challenge: auto, http-01 or dns-01"),
            )
        })?),
    };
    let store_name = SecretPurpose::AcmeSite.store_name(&domain.meta.name);
    let mut tx = state.store.begin(caller.actor()).await?;
    let cur = tx.get_by_name::<Secret>(&store_name).await?;
    let mut st: SiteAcme = cur
        .as_ref()
        .and_then(|s| serde_json::from_str(&s.data.public).ok())
        .unwrap_or_default();
    if let Some(enabled) = req.enabled {
        st.disabled = !enabled;
    }
    if let Some(c) = challenge {
        if c != st.challenge {
            // Validated differently from now on: order again.
            st.wanted.clear();
        }
        st.challenge = c;
    }
    if req.enabled == Some(true) || challenge.is_some() {
        // Turned on again or a new challenge: try at once.
        st.next_attempt = None;
        st.failures = 0;
    }
    let data = Secret {
        purpose: SecretPurpose::AcmeSite,
        subject: domain.meta.name.clone(),
        public: serde_json::to_string(&st).unwrap_or_default(),
        private: String::new(),
        algorithm: "state".into(),
        not_after: st.not_after,
        uploaded: false,
        names: st.names.clone(),
    };
    super::task::upsert_secret(&mut tx, store_name, domain.meta.owner, data).await?;
    tx.commit().await?;
    state.changed();
    Ok(Json(view(&state, &domain.meta.name).await?))
}
