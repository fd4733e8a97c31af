//! The live picture of the platform (issue 18 point 5), for the web panel's map and
//! any other client:
//!
//! - `GET /v1/map/platform` (admins): every cluster and server with its country,
//!   region, position (primary or secondary), health, drain and what it carries;
//! - `GET /v1/map/services` (every account, its own scope): in which countries and
//!   regions the caller's web, mail and DNS are served and whether each is healthy —
//!   never a server's name, host name or address;
//! - `GET /v1/map/events`: server-sent events when a server's health changes or it
//!   is drained ([`crate::live`]). Admins get the server and the states; other
//!   accounts only which of their services changed, and only for clusters serving
//!   their domains. The token is checked again every [`KEEPALIVE`]: a revoked or
//!   expired token ends the stream.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::{header, HeaderValue};
use model::entity::{ApiToken, Cluster, Database, Domain, Mailbox, Object, Server, Site};
use model::{Id, PlacementMode, Role};
use proto::v1::{
    ErrorBody, MapCarries, MapClusterView, MapDrainEvent, MapHealthEvent, MapServerView,
    MapServicesEvent, PlatformMapView, ServiceLocationView, ServiceMapView,
};
use scheduler::Health;
use store::{ListQuery, Scope, Store, Stored};
use tokio::sync::{broadcast, mpsc};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::health::health_str;
use crate::live::LiveEvent;
use crate::state::AppState;

/// How often the event stream sends a comment (keeping proxies from closing it) and
/// checks that its token still works.
pub const KEEPALIVE: Duration = Duration::from_secs(15);

/// Every object of `T` visible in `scope`, read page by page.
async fn all_in<T: Object>(store: &Store, scope: Scope) -> ApiResult<Vec<Stored<T>>> {
    let mut out = Vec::new();
    let mut q = ListQuery::new(scope, 1000);
    loop {
        let page = store.list::<T>(&q).await?;
        let full = page.len() == 1000;
        q.after = page.last().map(|s| s.meta.id);
        out.extend(page);
        if !full {
            return Ok(out);
        }
    }
}

/// Whether servers of `role` are ranked (rank 0 is the primary).
fn ranked(role: Role) -> bool {
    matches!(role, Role::Dns | Role::Mail)
}

/// What each server carries, from the domains, sites, mailboxes and databases.
fn carries(
    servers: &[Stored<Server>],
    domains: &[Stored<Domain>],
    sites: &[Stored<Site>],
    mailboxes: &[Stored<Mailbox>],
    databases: &[Stored<Database>],
) -> HashMap<Id, MapCarries> {
    let placed = |d: &Domain, role: Role| d.placements.get(&role).copied();
    let domain_by_id: HashMap<Id, &Domain> = domains.iter().map(|d| (d.meta.id, &d.data)).collect();
    // Per cluster: what every server of it carries.
    let mut per_cluster: HashMap<Id, MapCarries> = HashMap::new();
    // Per server: `single` sites active on it.
    let mut single: HashMap<Id, u64> = HashMap::new();
    for d in domains {
        if let Some(c) = placed(&d.data, Role::Dns) {
            per_cluster.entry(c).or_default().zones += 1;
        }
    }
    for s in sites {
        let Some(d) = domain_by_id.get(&s.data.domain) else {
            continue;
        };
        if let Some(c) = placed(d, Role::Files) {
            per_cluster.entry(c).or_default().sites += 1;
        }
        match s.data.mode {
            PlacementMode::All => {
                if let Some(c) = placed(d, Role::Web) {
                    per_cluster.entry(c).or_default().sites += 1;
                }
            }
            PlacementMode::Single => {
                if let Some(server) = s.data.active_server {
                    *single.entry(server).or_default() += 1;
                }
            }
        }
    }
    for m in mailboxes {
        if let Some(c) = domain_by_id
            .get(&m.data.domain)
            .and_then(|d| placed(d, Role::Mail))
        {
            per_cluster.entry(c).or_default().mailboxes += 1;
        }
    }
    for db in databases {
        per_cluster.entry(db.data.cluster).or_default().databases += 1;
    }
    servers
        .iter()
        .map(|s| {
            let mut c = per_cluster
                .get(&s.data.cluster)
                .copied()
                .unwrap_or_default();
            // A cluster's counts are of the roles its servers have.
            match s.data.role {
                Role::Web => {
                    c.sites += single.get(&s.meta.id).copied().unwrap_or(0);
                    c = MapCarries {
                        sites: c.sites,
                        ..MapCarries::default()
                    };
                }
                Role::Files => {
                    c = MapCarries {
                        sites: c.sites,
                        ..MapCarries::default()
                    }
                }
                Role::Dns => {
                    c = MapCarries {
                        zones: c.zones,
                        ..MapCarries::default()
                    }
                }
                Role::Mail => {
                    c = MapCarries {
                        mailboxes: c.mailboxes,
                        ..MapCarries::default()
                    }
                }
                Role::Db => {
                    c = MapCarries {
                        databases: c.databases,
                        ..MapCarries::default()
                    }
                }
            }
            (s.meta.id, c)
        })
        .collect()
}

/// `GET /v1/map/platform` (admins): clusters and servers with health and load.
#[utoipa::path(get, path = "/v1/map/platform", tag = "status",
    responses((status = 200, body = PlatformMapView), (status = 403, body = ErrorBody)))]
pub async fn platform_map(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<PlatformMapView>> {
    caller.require_admin()?;
    let store = &state.store;
    let clusters = store.all::<Cluster>().await?;
    let servers = store.all::<Server>().await?;
    let domains = store.all::<Domain>().await?;
    let sites = store.all::<Site>().await?;
    let mailboxes = store.all::<Mailbox>().await?;
    let databases = store.all::<Database>().await?;
    let carried = carries(&servers, &domains, &sites, &mailboxes, &databases);
    let cluster_by_id: HashMap<Id, &Stored<Cluster>> =
        clusters.iter().map(|c| (c.meta.id, c)).collect();
    let name_of: HashMap<Id, &str> = servers
        .iter()
        .map(|s| (s.meta.id, s.meta.name.as_str()))
        .collect();
    let health = state.health.states();
    let mut view = PlatformMapView {
        clusters: clusters
            .iter()
            .map(|c| MapClusterView {
                name: c.meta.name.clone(),
                role: c.data.role.to_string(),
                ranked: ranked(c.data.role),
                mail_writer: c
                    .data
                    .mail_writer
                    .and_then(|w| w.holder)
                    .and_then(|h| name_of.get(&h))
                    .map(|n| (*n).to_owned()),
            })
            .collect(),
        servers: servers
            .iter()
            .map(|s| {
                let position = if !ranked(s.data.role) {
                    "member"
                } else if s.data.rank == 0 {
                    "primary"
                } else {
                    "secondary"
                };
                MapServerView {
                    name: s.meta.name.clone(),
                    role: s.data.role.to_string(),
                    cluster: cluster_by_id
                        .get(&s.data.cluster)
                        .map(|c| c.meta.name.clone())
                        .unwrap_or_default(),
                    rank: s.data.rank,
                    position: position.to_owned(),
                    country: s.data.country.to_string(),
                    region: s.data.region.clone(),
                    hostname: s.data.hostname.to_string(),
                    health: health_str(health.get(&s.meta.id).copied().unwrap_or(Health::Unknown))
                        .to_owned(),
                    drained: s.data.drained,
                    carries: carried.get(&s.meta.id).copied().unwrap_or_default(),
                }
            })
            .collect(),
    };
    view.clusters.sort_by(|a, b| a.name.cmp(&b.name));
    view.servers
        .sort_by(|a, b| (&a.cluster, a.rank, &a.name).cmp(&(&b.cluster, b.rank, &b.name)));
    Ok(Json(view))
}

/// The health of a group of servers serving one service in one region.
pub fn aggregate(states: &[Health]) -> &'static str {
    let up = states.iter().filter(|h| **h == Health::Up).count();
    let unknown = states.iter().filter(|h| **h == Health::Unknown).count();
    if states.is_empty() || unknown == states.len() {
        "unknown"
    } else if up == states.len() {
        "up"
    } else if up > 0 {
        "degraded"
    } else {
        "down"
    }
}

/// For each of the caller's domains and each service, the servers serving it.
struct Served {
    /// (service, server) → the domains.
    by_server: BTreeMap<(Role, Id), BTreeSet<String>>,
    /// The clusters serving any of them.
    clusters: BTreeSet<Id>,
}

async fn served(state: &AppState, scope: Scope) -> ApiResult<(Served, Vec<Stored<Server>>)> {
    let domains = all_in::<Domain>(&state.store, scope).await?;
    let sites = all_in::<Site>(&state.store, scope).await?;
    let servers = state.store.all::<Server>().await?;
    let mut in_cluster: HashMap<Id, Vec<Id>> = HashMap::new();
    for s in &servers {
        in_cluster
            .entry(s.data.cluster)
            .or_default()
            .push(s.meta.id);
    }
    let site_of: HashMap<Id, &Site> = sites.iter().map(|s| (s.data.domain, &s.data)).collect();
    let mut out = Served {
        by_server: BTreeMap::new(),
        clusters: BTreeSet::new(),
    };
    for d in &domains {
        for role in [Role::Web, Role::Mail, Role::Dns] {
            let Some(cluster) = d.data.placements.get(&role).copied() else {
                continue;
            };
            let members = in_cluster.get(&cluster).cloned().unwrap_or_default();
            let servers: Vec<Id> = match role {
                Role::Web => match site_of.get(&d.meta.id) {
                    None => continue,
                    Some(site) => match (site.mode, site.active_server) {
                        (PlacementMode::Single, Some(active)) if members.contains(&active) => {
                            vec![active]
                        }
                        _ => members,
                    },
                },
                _ => members,
            };
            out.clusters.insert(cluster);
            for s in servers {
                out.by_server
                    .entry((role, s))
                    .or_default()
                    .insert(d.meta.name.clone());
            }
        }
    }
    Ok((out, servers))
}

/// `GET /v1/map/services`: where the caller's web, mail and DNS run and how they
/// are, by country and region; nothing identifies a server.
#[utoipa::path(get, path = "/v1/map/services", tag = "status",
    responses((status = 200, body = ServiceMapView), (status = 401, body = ErrorBody)))]
pub async fn services_map(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<ServiceMapView>> {
    let (served, servers) = served(&state, caller.scope()).await?;
    let by_id: HashMap<Id, &Stored<Server>> = servers.iter().map(|s| (s.meta.id, s)).collect();
    let health = state.health.states();
    // (service, country, region) → (states, domains)
    type Group = (Vec<Health>, BTreeSet<String>);
    let mut groups: BTreeMap<(Role, String, String), Group> = BTreeMap::new();
    for ((role, id), domains) in served.by_server {
        let Some(s) = by_id.get(&id) else { continue };
        let g = groups
            .entry((role, s.data.country.to_string(), s.data.region.clone()))
            .or_default();
        // A drained server is on its way out: it counts only while it serves alone.
        if !s.data.drained {
            g.0.push(health.get(&id).copied().unwrap_or(Health::Unknown));
        }
        g.1.extend(domains);
    }
    let locations = groups
        .into_iter()
        .map(
            |((role, country, region), (states, domains))| ServiceLocationView {
                service: role.to_string(),
                country,
                region,
                health: if states.is_empty() {
                    "draining"
                } else {
                    aggregate(&states)
                }
                .to_owned(),
                domains: domains.into_iter().collect(),
            },
        )
        .collect();
    Ok(Json(ServiceMapView { locations }))
}

/// One SSE message (`event` and one line of JSON data).
fn sse(event: &str, data: &impl serde::Serialize) -> bytes::Bytes {
    let json = serde_json::to_string(data).unwrap_or_else(|_| "{}".into());
    bytes::Bytes::from(format!("event: {event}\ndata: {json}\n\n"))
}

/// What a follower in `scope` is told about `event`, if anything.
async fn message(
    state: &AppState,
    caller: &Caller,
    event: LiveEvent,
) -> ApiResult<Option<bytes::Bytes>> {
    let Some(server) = state
        .store
        .get::<Server>(Scope::All, event.server())
        .await?
    else {
        return Ok(None);
    };
    if caller.is_admin() {
        return Ok(Some(match event {
            LiveEvent::Health { from, to, .. } => {
                let cluster = state
                    .store
                    .get::<Cluster>(Scope::All, server.data.cluster)
                    .await?
                    .map(|c| c.meta.name)
                    .unwrap_or_default();
                sse(
                    proto::v1::MAP_EVENT_HEALTH,
                    &MapHealthEvent {
                        server: server.meta.name,
                        cluster,
                        from: health_str(from).into(),
                        to: health_str(to).into(),
                    },
                )
            }
            LiveEvent::Drain { drained, .. } => sse(
                proto::v1::MAP_EVENT_DRAIN,
                &MapDrainEvent {
                    server: server.meta.name,
                    drained,
                },
            ),
        }));
    }
    let role = server.data.role;
    if !matches!(role, Role::Web | Role::Mail | Role::Dns) {
        return Ok(None);
    }
    let (served, _) = served(state, caller.scope()).await?;
    Ok(served.clusters.contains(&server.data.cluster).then(|| {
        sse(
            proto::v1::MAP_EVENT_SERVICES,
            &MapServicesEvent {
                service: role.to_string(),
            },
        )
    }))
}

/// Whether the caller's token still works (not revoked, not expired).
async fn token_valid(state: &AppState, caller: &Caller) -> bool {
    match state
        .store
        .get::<ApiToken>(Scope::All, caller.token_id)
        .await
    {
        Ok(Some(t)) => t
            .data
            .expires_at
            .is_none_or(|at| at > crate::auth::now_unix()),
        Ok(None) => false,
        // The store is unwell: keep the stream; the next check decides.
        Err(_) => true,
    }
}

/// The follower task: writes the stream's messages into `out` until the client
/// goes away, the token stops working or the controller stops.
async fn follow(state: AppState, caller: Caller, out: mpsc::Sender<bytes::Bytes>) {
    let mut rx = state.health.live.subscribe();
    let mut stopping = state.stopping.subscribe();
    if out
        .send(sse(proto::v1::MAP_EVENT_READY, &serde_json::json!({})))
        .await
        .is_err()
    {
        return;
    }
    let mut tick = tokio::time::interval(KEEPALIVE);
    tick.tick().await;
    loop {
        let msg = tokio::select! {
            r = rx.recv() => match r {
                Ok(event) => match message(&state, &caller, event).await {
                    Ok(Some(m)) => m,
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e.body.message, "map event not delivered");
                        sse(proto::v1::MAP_EVENT_RESYNC, &serde_json::json!({}))
                    }
                },
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    sse(proto::v1::MAP_EVENT_RESYNC, &serde_json::json!({}))
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = tick.tick() => {
                if !token_valid(&state, &caller).await {
                    return;
                }
                bytes::Bytes::from_static(b": keep-alive\n\n")
            }
            r = stopping.changed() => {
                if r.is_err() || *stopping.borrow() { return; }
                continue;
            }
        };
        if out.send(msg).await.is_err() {
            return;
        }
    }
}

/// `GET /v1/map/events`: server-sent events of the map's changes (see the module
/// docs); `text/event-stream`, first a `ready` event.
#[utoipa::path(get, path = "/v1/map/events", tag = "status",
    responses((status = 200, description = "text/event-stream"), (status = 401, body = ErrorBody)))]
pub async fn map_events(State(state): State<AppState>, caller: Caller) -> Response {
    let (tx, rx) = mpsc::channel::<bytes::Bytes>(16);
    tokio::spawn(follow(state, caller, tx));
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    let mut res = Body::from_stream(stream).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_is_up_only_when_every_server_is() {
        use Health::*;
        assert_eq!(aggregate(&[]), "unknown");
        assert_eq!(aggregate(&[Unknown, Unknown]), "unknown");
        assert_eq!(aggregate(&[Up, Up]), "up");
        assert_eq!(aggregate(&[Up, Down]), "degraded");
        assert_eq!(aggregate(&[Up, Suspect]), "degraded");
        assert_eq!(aggregate(&[Down, Suspect]), "down");
        assert_eq!(aggregate(&[Down, Unknown]), "down");
    }
}
