//! The mutual-TLS agent endpoints: `GET /v1/agent/config` (blocking query) and
//! `POST /v1/agent/heartbeat`, and the [`AgentIdentity`] extractor that guards them.
//!
//! An agent is identified only by the client certificate it presented in the TLS
//! handshake (verified against the controller CA by rustls); bearer tokens are
//! ignored here. No certificate → `401`; a certificate whose server no longer exists
//! or that is not the one the server last joined with → `403`.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use model::entity::Server;
use proto::agent_v1::{ConfigQuery, Heartbeat, HeartbeatAck};
use store::{Scope, Stored};

use crate::error::{ApiError, ApiJson, ApiQuery, ApiResult};
use crate::state::AppState;
use crate::tls::PeerCert;

/// The server an agent request comes from, proven by its client certificate.
#[derive(Debug, Clone)]
pub struct AgentIdentity {
    /// The server as stored.
    pub server: Stored<Server>,
}

impl FromRequestParts<AppState> for AgentIdentity {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(peer) = parts.extensions.get::<PeerCert>() else {
            return Err(ApiError::unauthorized(
                "agent endpoints need the agent's client certificate (mutual TLS); API tokens are not accepted here",
            ));
        };
        let Some(server) = state
            .store
            .get_by_name::<Server>(Scope::All, &peer.common_name)
            .await?
        else {
            return Err(ApiError::forbidden(format!(
                "server `{}` no longer exists; its certificate is void",
                peer.common_name
            )));
        };
        match &server.data.agent {
            Some(a) if a.cert_sha256 == peer.sha256 => Ok(Self { server }),
            _ => Err(ApiError::forbidden(format!(
                "this certificate is no longer valid for server `{}` (it was reset or joined again)",
                peer.common_name
            ))),
        }
    }
}

/// `GET /v1/agent/config?after=REV`: the server's desired config as soon as its
/// revision is greater than `after` (at once for `after=0`), else `304` after
/// `agents.config_wait_ms`.
pub async fn config(
    State(state): State<AppState>,
    agent: AgentIdentity,
    ApiQuery(q): ApiQuery<ConfigQuery>,
) -> Response {
    let wait = std::time::Duration::from_millis(state.config.agents.config_wait_ms);
    match state
        .configs
        .wait(
            agent.server.meta.id,
            q.after,
            wait,
            state.stopping.subscribe(),
        )
        .await
    {
        Some(doc) => Json(&*doc).into_response(),
        None => StatusCode::NOT_MODIFIED.into_response(),
    }
}

/// Most engines one heartbeat may report.
const MAX_ENGINES: usize = 32;

/// `POST /v1/agent/heartbeat`: record the agent's status.
pub async fn heartbeat(
    State(state): State<AppState>,
    agent: AgentIdentity,
    ApiJson(hb): ApiJson<Heartbeat>,
) -> ApiResult<Json<HeartbeatAck>> {
    if hb.engines.len() > MAX_ENGINES {
        return Err(ApiError::invalid(
            "engines",
            "too_many",
            format!("at most {MAX_ENGINES} engines"),
        ));
    }
    for (i, e) in hb.engines.iter().enumerate() {
        if e.name.len() > 64 || e.detail.len() > 4096 {
            return Err(ApiError::invalid(
                format!("engines[{i}]"),
                "too_long",
                "engine names are at most 64 bytes, details at most 4096",
            ));
        }
    }
    crate::rejections::check(&hb.rejected)?;
    if hb.agent_version.len() > 64 {
        return Err(ApiError::invalid(
            "agent_version",
            "too_long",
            "at most 64 bytes",
        ));
    }
    let rejected = state
        .health
        .set_rejected(agent.server.meta.id, &hb.rejected);
    if !rejected.is_empty() {
        let (state2, server) = (state.clone(), agent.server.clone());
        tokio::spawn(async move { crate::rejections::record(&state2, &server, rejected).await });
    }
    let port_before = state.health.reported_port(agent.server.meta.id);
    let report_before = state.health.report(agent.server.meta.id);
    let transition = state.health.heartbeat(agent.server.meta.id, &hb);
    let limited = crate::health::newly_limited(report_before.as_deref(), hb.report.as_ref());
    if !limited.is_empty() {
        let (state2, server) = (state.clone(), agent.server.clone());
        tokio::spawn(async move {
            crate::health::record_limited(&state2.store, &server, &limited).await
        });
    }
    if transition.is_none() && state.health.reported_port(agent.server.meta.id) != port_before {
        // Peers learn service ports from their desired configs (DNS notify targets,
        // the mail primary's SMTP endpoint).
        state.changed();
    }
    if transition.is_some() && agent.server.data.role == model::Role::Mail {
        // A mail server (back) up: secondaries deliver what they queued for it.
        state.flush_mail();
    }
    if let Some(t) = transition {
        let state2 = state.clone();
        // Recording writes the store; the agent need not wait for it.
        tokio::spawn(async move { crate::health::record(&state2.health_deps(), &[t]).await });
    }
    Ok(Json(HeartbeatAck {
        server_time: crate::api::rfc3339(time::OffsetDateTime::now_utc()),
    }))
}
