//! `GET /v1/events` (the audit log) and `GET /v1/status`.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use model::entity::{Cluster, Kind, Server};
use proto::v1::{ErrorBody, EventParams, EventView, Page, StatusView, ThrottleCounts};
use store::BackendKind;

use super::infra::{cluster_view, server_view};
use super::{encode_cursor, rfc3339, Names, Paging, MAX_LIMIT};
use crate::auth::Caller;
use crate::error::{ApiQuery, ApiResult};
use crate::state::AppState;

/// `GET /v1/events`: audit log entries the caller may see, oldest first.
#[utoipa::path(get, path = "/v1/events", tag = "status", params(EventParams),
    responses((status = 200, body = Page<EventView>), (status = 401, body = ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<EventParams>,
) -> ApiResult<Json<Page<EventView>>> {
    let paging = Paging::new(params.cursor.as_deref(), params.limit)?;
    let mut rows = state
        .store
        .events(caller.scope(), paging.after, paging.fetch())
        .await?;
    let more = rows.len() > paging.limit as usize
        || (paging.limit == MAX_LIMIT && rows.len() == MAX_LIMIT as usize);
    rows.truncate(paging.limit as usize);
    let next_cursor = if more {
        rows.last().map(|e| encode_cursor(e.id))
    } else {
        None
    };
    let items = rows
        .into_iter()
        .map(|e| EventView {
            id: e.id,
            revision: e.revision,
            at: rfc3339(e.at),
            actor: e.actor_label,
            action: e.action,
            kind: e.kind,
            object: e.object_name,
            detail: e.detail,
        })
        .collect();
    Ok(Json(Page { items, next_cursor }))
}

/// Kinds counted in the status.
const COUNTED: &[Kind] = &[
    Kind::Account,
    Kind::Cluster,
    Kind::Server,
    Kind::Domain,
    Kind::Site,
    Kind::Mailbox,
    Kind::MailAlias,
    Kind::Database,
    Kind::DbUser,
    Kind::FtpAccount,
    Kind::DnsRecord,
];

/// `GET /v1/status`: version, revision, store, uptime, object counts; clusters and
/// servers for admins.
#[utoipa::path(get, path = "/v1/status", tag = "status",
    responses((status = 200, body = StatusView), (status = 401, body = ErrorBody)))]
pub async fn status(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<StatusView>> {
    let scope = caller.scope();
    let mut counts = BTreeMap::new();
    for kind in COUNTED {
        if matches!(kind, Kind::Cluster | Kind::Server) && !caller.is_admin() {
            continue;
        }
        counts.insert(
            kind.as_str().to_owned(),
            state.store.count(*kind, scope).await?,
        );
    }
    let (mut clusters, mut servers) = (Vec::new(), Vec::new());
    if caller.is_admin() {
        for c in state.store.all::<Cluster>().await? {
            clusters.push(cluster_view(&state.store, &c).await?);
        }
        let mut names = Names::new(&state.store);
        for s in state.store.all::<Server>().await? {
            servers.push(server_view(&state, &mut names, &s).await?);
        }
    }
    Ok(Json(StatusView {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        revision: state.store.revision().await?,
        store: match state.store.backend() {
            BackendKind::Sqlite => "sqlite",
            BackendKind::Postgres => "postgres",
        }
        .to_owned(),
        uptime_seconds: state.started.elapsed().as_secs(),
        counts,
        clusters,
        servers,
        login_throttle: caller.is_admin().then(|| {
            let c = state.logins.counts();
            ThrottleCounts {
                sources: c.sources,
                addresses: c.addresses,
                accounts: c.accounts,
                failures: c.failures,
                refused: c.refused,
                delayed: c.delayed,
            }
        }),
    }))
}
