//! `GET /v1/mail/check/{domain}`: what receiving mail servers check about a
//! domain's mail ([`crate::mailcheck`]), for the domain's owner and its managers.

use std::net::SocketAddr;

use axum::extract::State;
use axum::Json;
use model::entity::{Secret, SecretPurpose, Server};
use model::Role;
use proto::v1::{MailCheckItem, MailCheckView};

use super::domains::path_domain;
use crate::auth::Caller;
use crate::error::{ApiError, ApiPath, ApiResult};
use crate::mailcheck::{evaluate, observe, Expected, MailServer};
use crate::state::AppState;

/// `GET /v1/mail/check/{domain}`.
#[utoipa::path(get, path = "/v1/mail/check/{domain}", tag = "mail",
    params(("domain" = String, Path, description = "Domain name")),
    responses((status = 200, body = MailCheckView), (status = 404, body = proto::v1::ErrorBody), (status = 422, body = proto::v1::ErrorBody)))]
pub async fn mail_check(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(domain): ApiPath<String>,
) -> ApiResult<Json<MailCheckView>> {
    let d = path_domain(&state, &caller, &domain).await?;
    let name = d.data.name.to_string();
    let Some(mail) = d.data.placements.get(&Role::Mail).copied() else {
        return Err(ApiError::infeasible(format!(
            "{name} has no mail cluster: there is no mail to check"
        )));
    };
    let mut servers = state.store.all::<Server>().await?;
    servers.sort_by_key(|s| (s.data.rank, s.meta.id));
    let mail_servers: Vec<MailServer> = servers
        .iter()
        .filter(|s| s.data.cluster == mail)
        .map(|s| MailServer {
            hostname: s.data.hostname.to_string(),
            addresses: s.data.addresses.clone(),
        })
        .collect();
    let authoritative: Vec<SocketAddr> = match d.data.placements.get(&Role::Dns) {
        Some(dns) => servers
            .iter()
            .filter(|s| s.data.cluster == *dns)
            .flat_map(|s| {
                let port = state
                    .health
                    .reported_port(s.meta.id)
                    .unwrap_or_else(|| state.config.health.probe_ports.of(Role::Dns));
                s.data
                    .addresses
                    .iter()
                    .map(move |ip| SocketAddr::new(*ip, port))
            })
            .collect(),
        None => Vec::new(),
    };
    let rsa_subject = crate::dkim_rsa::subject_for(d.meta.owner, &d.meta.name);
    let key = |purpose: SecretPurpose| {
        let state = state.clone();
        let store_name = match purpose {
            SecretPurpose::DkimRsa => purpose.store_name(&rsa_subject),
            _ => purpose.store_name(&name),
        };
        async move {
            state
                .store
                .get_by_name::<Secret>(store::Scope::All, &store_name)
                .await
                .map(|s| s.map(|s| s.data.public))
        }
    };
    let dkim = vec![
        (
            crate::keys::DKIM_SELECTOR.to_owned(),
            key(SecretPurpose::Dkim).await?,
        ),
        (
            crate::dkim_rsa::SELECTOR.to_owned(),
            key(SecretPurpose::DkimRsa).await?,
        ),
    ];
    let expected = Expected {
        domain: name.clone(),
        servers: mail_servers,
        dkim,
    };
    let observed = observe(&expected, &authoritative, state.config.names.resolver()).await;
    Ok(Json(MailCheckView {
        domain: name,
        checks: evaluate(&expected, &observed)
            .into_iter()
            .map(|c| MailCheckItem {
                check: c.check,
                status: c.status.as_str().to_owned(),
                message: c.message,
            })
            .collect(),
    }))
}
