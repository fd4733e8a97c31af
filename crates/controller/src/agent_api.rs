//! The mutual-TLS agent endpoints: `GET /v1/agent/config` (blocking query; whole
//! document, or with `delta=1` a [`proto::agent_delta::ConfigDelta`] built by
//! [`crate::delta`]), `POST /v1/agent/heartbeat`, the operations channel
//! (`GET /v1/agent/ops`, `POST /v1/agent/ops/{id}`, [`crate::ops`]), and the
//! [`AgentIdentity`] extractor that guards them.
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
        // The hot path (every heartbeat and poll): from memory, no store read.
        if let Some(server) = state.health.identities.get(&peer.common_name, &peer.sha256) {
            return Ok(Self {
                server: Stored::clone(&server),
            });
        }
        let read = state.health.identities.generation();
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
        if !crate::identities::joined_with(&server, &peer.sha256) {
            return Err(ApiError::forbidden(format!(
                "this certificate is no longer valid for server `{}` (it was reset or joined again)",
                peer.common_name
            )));
        }
        state.health.identities.insert(read, server.clone());
        Ok(Self { server })
    }
}

/// `GET /v1/agent/config?after=REV[&delta=1[&resync=1]]`: the server's desired config
/// as soon as its revision is greater than `after` (at once for `after=0`), else
/// `304` after `agents.config_wait_ms`. With `delta=1` the answer is a delta from
/// `after`, or a snapshot at once when `after` is not a revision this controller can
/// start from; with `resync=1` the delta is answered at once (see [`ConfigQuery::resync`]).
pub async fn config(
    State(state): State<AppState>,
    agent: AgentIdentity,
    ApiQuery(q): ApiQuery<ConfigQuery>,
) -> Response {
    let wait = std::time::Duration::from_millis(state.config.agents.config_wait_ms);
    let id = agent.server.meta.id;
    if q.delta != 0 {
        // A revision this controller cannot answer a delta from gets a snapshot at
        // once, whatever the revisions say (it restarted, or another controller served it).
        let known = state
            .configs
            .tracked(id)
            .is_some_and(|(_, t)| t.knows(q.after));
        if known && q.resync == 0 {
            let got = state
                .configs
                .wait(id, q.after, wait, state.stopping.subscribe())
                .await;
            if got.is_none() {
                return StatusCode::NOT_MODIFIED.into_response();
            }
        }
        return match state.configs.tracked(id) {
            // A delta is small; a snapshot is every item of the server (megabytes at
            // scale) and is joined off the async workers, which serve heartbeats.
            Some((doc, t)) if t.knows(q.after) => json_response(t.answer(q.after, &doc)),
            Some((doc, t)) => off_runtime(move || t.answer(q.after, &doc)).await,
            None => StatusCode::NOT_MODIFIED.into_response(),
        };
    }
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
        // The whole document (up to ~100 MB at scale) is serialised off the async
        // workers: a busy controller must not starve heartbeats.
        Some(doc) => off_runtime(move || serde_json::to_string(&*doc).unwrap_or_default()).await,
        None => StatusCode::NOT_MODIFIED.into_response(),
    }
}

/// A JSON body already serialised.
fn json_response(body: String) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// Build a large JSON body on the blocking pool, not on an async worker.
async fn off_runtime(build: impl FnOnce() -> String + Send + 'static) -> Response {
    match tokio::task::spawn_blocking(build).await {
        Ok(body) => json_response(body),
        Err(e) => {
            tracing::error!(error = %e, "building an agent's config answer failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
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
    let files_work = crate::site_reports::work(report_before.as_deref(), hb.report.as_ref());
    if !files_work.is_empty() {
        let (state2, server) = (state.clone(), agent.server.clone());
        tokio::spawn(
            async move { crate::site_reports::record(&state2, &server, files_work).await },
        );
    }
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
    // The cron lease (`placement::cron`): web servers that applied their current
    // config run the cron their config assigns them for this long.
    let cron_lease_secs = (agent.server.data.role == model::Role::Web
        && state
            .placement
            .cron
            .grant(agent.server.meta.id, hb.applied_revision, &state.configs))
    .then_some(state.config.health.cron_lease_s);
    // The mail writer lease (`placement::mail`): only the writer of its mail
    // cluster, once it applied a config built after the move that made it so.
    let mail_lease_secs = (agent.server.data.role == model::Role::Mail
        && state
            .placement
            .mail
            .grant(agent.server.meta.id, hb.applied_revision, &state.configs))
    .then_some(state.config.health.mail_lease_s);
    Ok(Json(HeartbeatAck {
        server_time: crate::api::rfc3339(time::OffsetDateTime::now_utc()),
        cron_lease_secs,
        mail_lease_secs,
    }))
}

/// `POST /v1/agent/rehash`: store the argon2id hash a mail or FTP server made at the
/// first right login against an imported legacy hash — only for an object on the
/// agent's own cluster, and only while the stored hash is still the old one
/// (`crate::rehash::replace`).
pub async fn rehash(
    State(state): State<AppState>,
    agent: AgentIdentity,
    ApiJson(req): ApiJson<proto::rehash::RehashReport>,
) -> ApiResult<Json<proto::rehash::RehashAck>> {
    use crate::rehash::{replace, HashOwner, Outcome};
    use model::entity::{Domain, FtpAccount, Mailbox};
    use model::Role;
    let (owner, role) = match HashOwner::parse(&req.kind) {
        Some(HashOwner::Mailbox) => (HashOwner::Mailbox, Role::Mail),
        Some(HashOwner::FtpAccount) => (HashOwner::FtpAccount, Role::Files),
        _ => {
            return Err(ApiError::invalid(
                "kind",
                "rehash_kind",
                "agents rehash `mailbox` or `ftp_account` passwords",
            ))
        }
    };
    let domain = match owner {
        HashOwner::Mailbox => state
            .store
            .get_by_name::<Mailbox>(Scope::All, &req.name)
            .await?
            .map(|m| m.data.domain),
        _ => state
            .store
            .get_by_name::<FtpAccount>(Scope::All, &req.name)
            .await?
            .map(|f| f.data.domain),
    };
    let Some(domain) = domain else {
        return Ok(Json(proto::rehash::RehashAck { replaced: false }));
    };
    let placed = state
        .store
        .get::<Domain>(Scope::All, domain)
        .await?
        .and_then(|d| d.data.placements.get(&role).copied());
    if placed != Some(agent.server.data.cluster) {
        return Err(ApiError::forbidden(format!(
            "`{}` is not held by server `{}`",
            req.name, agent.server.meta.name
        )));
    }
    let actor = store::Actor {
        account: None,
        label: format!("server:{}", agent.server.meta.name),
    };
    let outcome = replace(
        &state.store,
        actor,
        owner,
        &req.name,
        &req.old_hash,
        &req.new_hash,
        |d| d == Some(domain),
    )
    .await?;
    if outcome == Outcome::Replaced {
        // Agent routes do not notify the builder by themselves.
        state.changed();
    }
    Ok(Json(proto::rehash::RehashAck {
        replaced: outcome == Outcome::Replaced,
    }))
}

/// `?wait=SECONDS` of the operations poll.
#[derive(Debug, serde::Deserialize)]
pub struct OpsParams {
    #[serde(default)]
    wait: u64,
}

/// `GET /v1/agent/ops` (mutual TLS): the questions waiting for the calling server,
/// held open up to `wait` seconds (at most `proto::agent_ops::MAX_WAIT_SECS`, and
/// answered at once when the controller stops).
pub async fn ops_poll(
    State(state): State<AppState>,
    agent: AgentIdentity,
    ApiQuery(q): ApiQuery<OpsParams>,
) -> ApiResult<Json<Vec<proto::agent_ops::OpRequest>>> {
    let wait = std::time::Duration::from_secs(q.wait.min(proto::agent_ops::MAX_WAIT_SECS));
    let mut stopping = state.stopping.subscribe();
    let asks = tokio::select! {
        a = state.ops.take(agent.server.meta.id, wait) => a,
        _ = stopping.wait_for(|s| *s) => Vec::new(),
    };
    Ok(Json(asks))
}

/// `POST /v1/agent/ops/{id}` (mutual TLS): the calling server's answer to question
/// `id`; 404 when nobody waits for it any more (timed out, or not its question).
pub async fn ops_answer(
    State(state): State<AppState>,
    agent: AgentIdentity,
    crate::error::ApiPath(id): crate::error::ApiPath<u64>,
    ApiJson(answer): ApiJson<proto::agent_ops::OpAnswer>,
) -> ApiResult<StatusCode> {
    if state.ops.answer(agent.server.meta.id, id, answer) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(
            "no question with this id waits for this server's answer",
        ))
    }
}
