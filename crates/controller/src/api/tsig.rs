//! `/v1/clusters/{name}/tsig`: a DNS cluster's TSIG key for external secondaries
//! (admins only, like every key material the platform holds), with ready-to-paste
//! BIND and Knot configuration that follows the cluster's catalog zone
//! ([`crate::catalog`]), and its rotation with a grace period.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::State;
use axum::Json;
use model::entity::{Cluster, Kind, Secret, SecretPurpose, Server};
use model::Role;
use proto::v1::{ErrorBody, RotateTsig, TsigView};
use store::{ListQuery, NewObject, Scope, Stored};

use super::rfc3339;
use crate::auth::Caller;
use crate::catalog::{catalog_name, SecondarySetup};
use crate::config::MAX_TSIG_GRACE_SECONDS;
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::state::AppState;

/// The DNS cluster `name` (404 if absent, 422 if not a DNS cluster).
async fn dns_cluster(state: &AppState, name: &str) -> ApiResult<Stored<Cluster>> {
    let c = state
        .store
        .get_by_name::<Cluster>(Scope::All, name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no cluster `{name}`")))?;
    if c.data.role != Role::Dns {
        return Err(ApiError::invalid(
            "name",
            "dns_only",
            format!(
                "cluster `{name}` is a {} cluster; only DNS clusters have a TSIG key",
                c.data.role
            ),
        ));
    }
    Ok(c)
}

/// The cluster primary's DNS endpoints: every address of the lowest `(rank, id)`
/// server, on the port its engine reported (else the configured probe port).
async fn primaries(state: &AppState, cluster: &Stored<Cluster>) -> ApiResult<Vec<SocketAddr>> {
    let mut q = ListQuery::new(Scope::All, 1000);
    q.parent = Some(cluster.meta.id);
    let servers = state.store.list::<Server>(&q).await?;
    let Some(primary) = servers.iter().min_by_key(|s| (s.data.rank, s.meta.id)) else {
        return Ok(Vec::new());
    };
    let port = state
        .health
        .reported_port(primary.meta.id)
        .unwrap_or(state.config.health.probe_ports.dns);
    Ok(primary
        .data
        .addresses
        .iter()
        .map(|ip| SocketAddr::new(*ip, port))
        .collect())
}

async fn secret(
    state: &AppState,
    purpose: SecretPurpose,
    cluster: &str,
) -> ApiResult<Option<Stored<Secret>>> {
    Ok(state
        .store
        .get_by_name::<Secret>(Scope::All, &purpose.store_name(cluster))
        .await?)
}

/// The view of a cluster's key; waits up to 5 s for a key the config builder is
/// about to issue (a cluster created a moment ago).
async fn view(state: &AppState, cluster: &Stored<Cluster>) -> ApiResult<TsigView> {
    let name = cluster.meta.name.as_str();
    let mut key = secret(state, SecretPurpose::Tsig, name).await?;
    for _ in 0..50 {
        if key.is_some() {
            break;
        }
        state.changed();
        tokio::time::sleep(Duration::from_millis(100)).await;
        key = secret(state, SecretPurpose::Tsig, name).await?;
    }
    let key = key.ok_or_else(|| {
        ApiError::conflict(
            "name",
            format!("cluster `{name}` has no TSIG key yet; try again in a moment"),
        )
    })?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let previous_valid_until = secret(state, SecretPurpose::TsigPrevious, name)
        .await?
        .and_then(|p| p.data.not_after)
        .filter(|t| *t > now)
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .map(rfc3339);
    let primaries = primaries(state, cluster).await?;
    let setup = SecondarySetup {
        cluster: name,
        key_name: &key.data.public,
        algorithm: &key.data.algorithm,
        secret: &key.data.private,
        primaries: &primaries,
    };
    Ok(TsigView {
        cluster: name.to_owned(),
        name: key.data.public.clone(),
        algorithm: key.data.algorithm.clone(),
        secret: key.data.private.clone(),
        previous_valid_until,
        catalog_zone: catalog_name(name),
        primaries: primaries.iter().map(ToString::to_string).collect(),
        external_secondaries: cluster
            .data
            .external_secondaries
            .iter()
            .map(ToString::to_string)
            .collect(),
        bind_options: setup.bind_options(),
        bind_config: setup.bind_config(),
        knot_config: setup.knot_config(),
    })
}

/// `GET /v1/clusters/{name}/tsig` (admins).
#[utoipa::path(get, path = "/v1/clusters/{name}/tsig", tag = "infrastructure", params(("name" = String, Path)),
    responses((status = 200, body = TsigView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn get_tsig(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<TsigView>> {
    caller.require_admin()?;
    let c = dns_cluster(&state, &name).await?;
    Ok(Json(view(&state, &c).await?))
}

/// `POST /v1/clusters/{name}/tsig/rotate` (admins): a new secret under the same key
/// name; the previous one is still accepted for `grace_seconds`.
#[utoipa::path(post, path = "/v1/clusters/{name}/tsig/rotate", tag = "infrastructure", params(("name" = String, Path)),
    request_body = RotateTsig,
    responses((status = 200, body = TsigView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn rotate_tsig(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<RotateTsig>,
) -> ApiResult<Json<TsigView>> {
    caller.require_admin()?;
    let grace = req.grace_seconds.unwrap_or(state.config.tsig.grace_seconds);
    if grace > MAX_TSIG_GRACE_SECONDS {
        return Err(ApiError::invalid(
            "grace_seconds",
            "out_of_range",
            format!("grace_seconds is 0 to {MAX_TSIG_GRACE_SECONDS} (30 days)"),
        ));
    }
    let c = dns_cluster(&state, &name).await?;
    let cluster = c.meta.name.as_str();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let new_secret = crate::keys::new_tsig_secret().map_err(ApiError::internal)?;
    let mut tx = state.store.begin(caller.actor()).await?;
    let current = tx
        .get_by_name::<Secret>(&SecretPurpose::Tsig.store_name(cluster))
        .await?;
    let previous_name = SecretPurpose::TsigPrevious.store_name(cluster);
    let previous = tx.get_by_name::<Secret>(&previous_name).await?;
    match current {
        Some(mut cur) => {
            let old = std::mem::replace(&mut cur.data.private, new_secret);
            // A second rotation within the grace period drops the oldest secret.
            let grace_i64 = i64::try_from(grace).unwrap_or(i64::MAX);
            let kept = Secret {
                purpose: SecretPurpose::TsigPrevious,
                subject: cluster.to_owned(),
                public: cur.data.public.clone(),
                private: old,
                algorithm: cur.data.algorithm.clone(),
                not_after: Some(now.saturating_add(grace_i64)),
                uploaded: false,
                names: Vec::new(),
            };
            match (grace, previous) {
                (0, Some(p)) => tx.delete(Kind::Secret, p.meta.id).await?,
                (0, None) => {}
                (_, Some(p)) => {
                    tx.update(p.meta.id, &previous_name, kept).await?;
                }
                (_, None) => {
                    tx.create(NewObject {
                        name: previous_name,
                        owner: None,
                        parent: None,
                        data: kept,
                    })
                    .await?;
                }
            }
            tx.update(cur.meta.id, &cur.meta.name, cur.data).await?;
        }
        None => {
            tx.create(NewObject {
                name: SecretPurpose::Tsig.store_name(cluster),
                owner: None,
                parent: None,
                data: Secret {
                    purpose: SecretPurpose::Tsig,
                    subject: cluster.to_owned(),
                    public: crate::keys::tsig_key_name(cluster),
                    private: new_secret,
                    algorithm: crate::keys::TSIG_ALGORITHM.to_owned(),
                    not_after: None,
                    uploaded: false,
                    names: Vec::new(),
                },
            })
            .await?;
        }
    }
    tx.event(
        "tsig.rotate",
        Kind::Cluster,
        Some((c.meta.id, cluster)),
        None,
        serde_json::json!({ "grace_seconds": grace }),
    )
    .await?;
    tx.commit().await?;
    state.changed();
    Ok(Json(view(&state, &c).await?))
}
