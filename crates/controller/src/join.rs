//! Join tokens (`/v1/join-tokens`, admins) and the agent's join call
//! (`POST /v1/agent/join`).
//!
//! A join token is `hpj_<public id>_<secret>`: one-time, for one cluster, expiring
//! (default 60 minutes, at most 7 days). Only a BLAKE3 hash of the secret is stored.
//! The token is deleted in the same transaction that registers the server, so two
//! agents racing with one token cannot both join.
//!
//! Join semantics:
//! - No server of that name: it is created in the token's cluster (the next rank).
//! - A server of that name that an admin pre-registered in the same cluster and no
//!   agent has joined yet: the agent claims it; the host name, addresses, region,
//!   hardware and country it reports replace the stored ones (the same-country rule
//!   is checked again if the country changed).
//! - A server of that name that has already joined, or that is in another cluster:
//!   `409 conflict` (the token stays unused). To re-join after losing the agent's
//!   key, an admin resets it (`POST /v1/servers/{name}/reset-agent`) or deletes it.
//!
//! Refused tokens (unknown, already used, expired, forged) answer `401` and are
//! recorded as `join.refused` events; failures count against the client address's
//! rate limit (`auth.failed_attempts_per_minute`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use model::entity::{AgentEnrolment, Cluster, JoinToken, Kind, Server};
use model::{CountryCode, DomainName, Slug, WithField};
use proto::agent_v1::{JoinRequest, JoinResponse};
use proto::v1::{CreateJoinToken, ErrorBody, JoinTokenCreated, JoinTokenView, ListParams, Page};
use store::{Actor, NewObject, Scope, Stored};
use subtle::ConstantTimeEq;

use crate::api::infra::{addresses, check_country};
use crate::api::{list_page, rfc3339, text_field, Names, Paging};
use crate::auth::{client_ip, ip_key, now_unix, Caller};
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::state::AppState;

/// Prefix of every join token.
pub const JOIN_TOKEN_PREFIX: &str = "hpj_";
/// Default lifetime of a join token in minutes.
pub const DEFAULT_EXPIRY_MINUTES: u32 = 60;
/// Longest lifetime of a join token in minutes (7 days).
pub const MAX_EXPIRY_MINUTES: u32 = 7 * 24 * 60;

/// A new join token: (token string, public id, hex BLAKE3 hash of the secret).
pub fn generate_join_token() -> (String, String, String) {
    let (token, public_id, secret) = crate::secrets::generate_prefixed_token(JOIN_TOKEN_PREFIX);
    let hash = blake3::hash(secret.as_bytes()).to_hex().to_string();
    (token, public_id, hash)
}

/// Split a join token (surrounding whitespace ignored: it is often pasted) into public
/// id and secret; None if malformed. Same shape as an API token, another prefix.
pub fn parse_join_token(token: &str) -> Option<(&str, &str)> {
    crate::secrets::parse_prefixed_token(JOIN_TOKEN_PREFIX, token.trim())
}

fn view(t: &Stored<JoinToken>, cluster: String) -> JoinTokenView {
    let expires = time::OffsetDateTime::from_unix_timestamp(t.data.expires_at)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    JoinTokenView {
        id: t.meta.name.clone(),
        cluster,
        created_at: rfc3339(t.meta.created_at),
        expires_at: rfc3339(expires),
        expired: t.data.expires_at <= now_unix(),
    }
}

/// `POST /v1/join-tokens` (admins): a one-time token for one agent to join a cluster.
#[utoipa::path(post, path = "/v1/join-tokens", tag = "agents", request_body = CreateJoinToken,
    responses((status = 201, body = JoinTokenCreated), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_join_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateJoinToken>,
) -> ApiResult<(StatusCode, Json<JoinTokenCreated>)> {
    caller.require_admin()?;
    let minutes = req.expires_in_minutes.unwrap_or(DEFAULT_EXPIRY_MINUTES);
    if !(1..=MAX_EXPIRY_MINUTES).contains(&minutes) {
        return Err(ApiError::invalid(
            "expires_in_minutes",
            "out_of_range",
            format!("expires_in_minutes is 1 to {MAX_EXPIRY_MINUTES} (7 days)"),
        ));
    }
    let slug = Slug::new(&req.cluster).field("cluster")?;
    let cluster = state
        .store
        .get_by_name::<Cluster>(Scope::All, slug.as_str())
        .await?
        .ok_or_else(|| {
            ApiError::invalid(
                "cluster",
                "unknown_cluster",
                format!("there is no cluster `{slug}`"),
            )
        })?;
    let (token, public_id, secret_hash) = generate_join_token();
    let mut tx = state.store.begin(caller.actor()).await?;
    let created = tx
        .create(NewObject {
            name: public_id.clone(),
            owner: None,
            parent: Some(cluster.meta.id),
            data: JoinToken {
                cluster: cluster.meta.id,
                public_id,
                secret_hash,
                expires_at: now_unix() + i64::from(minutes) * 60,
                created_by: Some(caller.account_id),
            },
        })
        .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(JoinTokenCreated {
            token,
            info: view(&created, cluster.meta.name),
        }),
    ))
}

/// `GET /v1/join-tokens` (admins): unused join tokens, without secrets.
#[utoipa::path(get, path = "/v1/join-tokens", tag = "agents", params(ListParams),
    responses((status = 200, body = Page<JoinTokenView>), (status = 403, body = ErrorBody)))]
pub async fn list_join_tokens(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<Page<JoinTokenView>>> {
    caller.require_admin()?;
    let paging = Paging::new(params.cursor.as_deref(), params.limit)?;
    let (_, parent) = crate::api::filters(&state, &caller, &params, false, true).await?;
    let (rows, next) = list_page::<JoinToken>(&state, Scope::All, paging, None, parent).await?;
    let mut names = Names::new(&state.store);
    let mut items = Vec::with_capacity(rows.len());
    for t in &rows {
        items.push(view(t, names.cluster(t.data.cluster).await?));
    }
    Ok(Json(Page {
        items,
        next_cursor: next,
    }))
}

/// `DELETE /v1/join-tokens/{id}` (admins): revoke an unused join token.
#[utoipa::path(delete, path = "/v1/join-tokens/{id}", tag = "agents", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_join_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    let t = state
        .store
        .get_by_name::<JoinToken>(Scope::All, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no join token `{id}`")))?;
    let mut tx = state.store.begin(caller.actor()).await?;
    tx.delete(Kind::JoinToken, t.meta.id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Why a join token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// Not a join token at all, or the secret does not match.
    Forged,
    /// No such token: never issued, already used, or revoked.
    Unknown,
    /// Past its expiry.
    Expired,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Refusal::Forged => "forged",
            Refusal::Unknown => "unknown_or_used",
            Refusal::Expired => "expired",
        }
    }

    fn error(self) -> ApiError {
        let msg = match self {
            Refusal::Forged => "the join token is not valid",
            Refusal::Unknown => {
                "the join token is unknown or was already used; join tokens work once: create a new one with `hostplane server token create`"
            }
            Refusal::Expired => {
                "the join token has expired; create a new one with `hostplane server token create`"
            }
        };
        ApiError::unauthorized(msg)
            .with_field("token")
            .with_rule(self.as_str())
    }
}

/// Record a refused join (its own transaction) and count it against the client.
async fn refuse(state: &AppState, ip: &str, name: &str, public_id: &str, why: Refusal) -> ApiError {
    state.limiter.fail(ip);
    let result = async {
        let mut tx = state
            .store
            .begin(Actor {
                account: None,
                label: "join".into(),
            })
            .await?;
        tx.event(
            "join.refused",
            Kind::JoinToken,
            None,
            None,
            serde_json::json!({
                "reason": why.as_str(),
                "server": name,
                "token_id": public_id,
                "client": ip,
            }),
        )
        .await?;
        tx.commit().await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "cannot record a refused join");
    }
    tracing::warn!(
        server = name,
        reason = why.as_str(),
        client = ip,
        "join refused"
    );
    why.error()
}

/// The validated fields of a join request.
struct Fields {
    name: Slug,
    hostname: DomainName,
    addresses: Vec<std::net::IpAddr>,
    country: CountryCode,
    region: String,
    hardware: String,
}

fn validate(req: &JoinRequest) -> ApiResult<Fields> {
    Ok(Fields {
        name: Slug::new(&req.name).field("name")?,
        hostname: DomainName::new(&req.hostname).field("hostname")?,
        addresses: addresses(&req.addresses)?,
        country: CountryCode::new(&req.country).field("country")?,
        region: text_field(Some(req.region.clone()), "region", 100)?.unwrap_or_default(),
        hardware: text_field(Some(req.hardware.clone()), "hardware", 2000)?.unwrap_or_default(),
    })
}

/// `POST /v1/agent/join`: register a server with a join token and sign its CSR.
pub async fn join(
    State(state): State<AppState>,
    ClientIp(addr): ClientIp,
    ApiJson(req): ApiJson<JoinRequest>,
) -> ApiResult<Json<JoinResponse>> {
    let ip = ip_key(addr);
    state.limiter.check_all(&[&ip])?;
    let Some(ca) = state.ca.as_ref() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "this controller has no CA loaded and cannot sign agent certificates",
        ));
    };
    let f = validate(&req)?;
    if req.csr_pem.len() > 16 * 1024 {
        return Err(ApiError::invalid(
            "csr_pem",
            "too_long",
            "the CSR is too large",
        ));
    }
    let Some((public_id, secret)) = parse_join_token(&req.token) else {
        return Err(refuse(&state, &ip, f.name.as_str(), "", Refusal::Forged).await);
    };
    let mut tx = state
        .store
        .begin(Actor {
            account: None,
            label: format!("join:{}", f.name),
        })
        .await?;
    let token = match tx.get_by_name::<JoinToken>(public_id).await? {
        None => {
            drop(tx);
            return Err(refuse(&state, &ip, f.name.as_str(), public_id, Refusal::Unknown).await);
        }
        Some(t) => t,
    };
    let hash = blake3::hash(secret.as_bytes()).to_hex().to_string();
    if !bool::from(hash.as_bytes().ct_eq(token.data.secret_hash.as_bytes())) {
        drop(tx);
        return Err(refuse(&state, &ip, f.name.as_str(), public_id, Refusal::Forged).await);
    }
    if token.data.expires_at <= now_unix() {
        drop(tx);
        return Err(refuse(&state, &ip, f.name.as_str(), public_id, Refusal::Expired).await);
    }
    let cluster = tx
        .get::<Cluster>(token.data.cluster)
        .await?
        .ok_or_else(|| ApiError::not_found("the token's cluster no longer exists"))?;
    let cert_pem = ca.sign_csr(&req.csr_pem, f.name.as_str()).map_err(|e| {
        ApiError::invalid(
            "csr_pem",
            "bad_csr",
            format!("cannot sign the certificate request: {e}"),
        )
    })?;
    let der = rustls_pemfile::certs(&mut cert_pem.as_bytes())
        .next()
        .and_then(Result::ok)
        .ok_or_else(|| ApiError::internal("the signed certificate does not parse"))?;
    let enrolment = AgentEnrolment {
        joined_at: now_unix(),
        cert_sha256: crate::tls::sha256_hex(&der),
    };
    let existing = tx.get_by_name::<Server>(f.name.as_str()).await?;
    let server = match existing {
        Some(s) if s.data.agent.is_some() => {
            return Err(ApiError::conflict(
                "name",
                format!(
                    "server `{}` has already joined; to join again an admin resets it (`POST /v1/servers/{}/reset-agent`) or deletes it",
                    f.name, f.name
                ),
            ));
        }
        Some(s) if s.data.cluster != cluster.meta.id => {
            return Err(ApiError::conflict(
                "name",
                format!(
                    "a server `{}` exists in another cluster than `{}`, which the token is for",
                    f.name, cluster.meta.name
                ),
            ));
        }
        Some(mut s) => {
            let country_changed = s.data.country != f.country;
            s.data.hostname = f.hostname;
            s.data.addresses = f.addresses;
            s.data.region = f.region;
            s.data.hardware = f.hardware;
            s.data.country = f.country;
            s.data.agent = Some(enrolment);
            if country_changed {
                check_country(&mut tx, &cluster, &s, false).await?;
            }
            tx.update(s.meta.id, &s.meta.name, s.data).await?
        }
        None => {
            let members = tx.children::<Server>(cluster.meta.id).await?;
            let rank = members
                .iter()
                .map(|s| s.data.rank.saturating_add(1))
                .max()
                .unwrap_or(0);
            let data = Server {
                name: f.name.clone(),
                role: cluster.data.role,
                cluster: cluster.meta.id,
                rank,
                hostname: f.hostname,
                addresses: f.addresses,
                region: f.region,
                country: f.country,
                hardware: f.hardware,
                drained: false,
                agent: Some(enrolment),
            };
            let created = tx
                .create(NewObject {
                    name: f.name.to_string(),
                    owner: None,
                    parent: Some(cluster.meta.id),
                    data,
                })
                .await?;
            check_country(&mut tx, &cluster, &created, false).await?;
            created
        }
    };
    tx.delete(Kind::JoinToken, token.meta.id).await?;
    tx.event(
        "server.join",
        Kind::Server,
        Some((server.meta.id, &server.meta.name)),
        None,
        serde_json::json!({"cluster": cluster.meta.name, "token_id": public_id}),
    )
    .await?;
    tx.commit().await?;
    state.changed();
    tracing::info!(server = %server.meta.name, cluster = %cluster.meta.name, "agent joined");
    Ok(Json(JoinResponse {
        server: server.meta.name,
        cluster: cluster.meta.name,
        role: cluster.data.role.to_string(),
        cert_pem,
        ca_pem: ca.cert_pem().to_owned(),
    }))
}

/// The client address of a request (never fails).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(parts)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        let (token, id, hash) = generate_join_token();
        let (pid, secret) = parse_join_token(&token).unwrap();
        assert_eq!(pid, id);
        assert_eq!(blake3::hash(secret.as_bytes()).to_hex().to_string(), hash);
        for bad in [
            "",
            "hp_0123456789abcdef_xxxxxxxxxxxxxxxxxxxxxxxx",
            "hpj_short_x",
            &token[..20],
        ] {
            assert!(parse_join_token(bad).is_none(), "{bad}");
        }
        // Pasted with whitespace around it: still read.
        assert_eq!(
            parse_join_token(&format!(" {token}\n")),
            Some((pid, secret))
        );
        // An API token is never a join token.
        let (api, _, _) = crate::secrets::generate_token();
        assert!(parse_join_token(&api).is_none());
    }
}
