//! `/v1/clusters` and `/v1/servers`: the operator's infrastructure. Writes are for
//! admins only; clusters can be read by every account (to choose placements),
//! servers by admins only.

use std::collections::BTreeSet;
use std::net::IpAddr;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use model::entity::{Account, Cluster, Database, DbUser, Domain, Kind, Server, Ttls, TTL_RANGE};
use model::{CountryCode, DomainName, Id, Role, Slug, WithField};
use proto::v1::{
    ClusterView, CreateCluster, CreateServer, ErrorBody, ListParams, MailWriterView, Page,
    ServerView, UpdateCluster, UpdateServer,
};
use scheduler::{same_country_violations, ClusterInfo, Health, SameCountry};
use store::{ListQuery, NewObject, Scope, Store, Stored, Tx};

use super::{filters, list_page, rfc3339, text_field, Names, Paging};
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::placement::server_info;
use crate::state::AppState;

// ---------------------------------------------------------------- clusters

/// A cluster as shown, with its servers (primary first in ranked clusters).
pub async fn cluster_view(store: &Store, c: &Stored<Cluster>) -> ApiResult<ClusterView> {
    let mut q = ListQuery::new(Scope::All, 1000);
    q.parent = Some(c.meta.id);
    let mut servers = store.list::<Server>(&q).await?;
    servers.sort_by_key(|s| (s.data.rank, s.meta.id));
    let mail_writer = c.data.mail_writer.map(|w| MailWriterView {
        server: w
            .holder
            .and_then(|h| servers.iter().find(|s| s.meta.id == h))
            .map(|s| s.meta.name.clone()),
        epoch: w.epoch,
        not_before: time::OffsetDateTime::from_unix_timestamp(w.not_before)
            .map(rfc3339)
            .unwrap_or_default(),
    });
    Ok(ClusterView {
        name: c.meta.name.clone(),
        role: c.data.role.to_string(),
        description: c.data.description.clone(),
        default: c.data.is_default,
        web_ttl: c.data.ttls.web,
        ttl: c.data.ttls.default,
        servers: servers.into_iter().map(|s| s.meta.name).collect(),
        external_secondaries: c
            .data
            .external_secondaries
            .iter()
            .map(ToString::to_string)
            .collect(),
        mail_writer,
        hostname: c.data.hostname.as_ref().map(ToString::to_string),
        created_at: rfc3339(c.meta.created_at),
    })
}

/// Parse external secondaries (`ip` or `ip:port`, port 53 by default); only DNS
/// clusters have them.
fn external_secondaries(
    list: Option<Vec<String>>,
    role: Role,
) -> ApiResult<Option<Vec<std::net::SocketAddr>>> {
    let Some(list) = list else { return Ok(None) };
    if role != Role::Dns && !list.is_empty() {
        return Err(ApiError::invalid(
            "external_secondaries",
            "dns_only",
            "only DNS clusters have external secondaries",
        ));
    }
    if list.len() > 32 {
        return Err(ApiError::invalid(
            "external_secondaries",
            "too_many",
            "at most 32 external secondaries",
        ));
    }
    let mut out = Vec::with_capacity(list.len());
    for item in list {
        let addr = item
            .parse::<std::net::SocketAddr>()
            .or_else(|_| {
                item.parse::<std::net::IpAddr>()
                    .map(|ip| std::net::SocketAddr::new(ip, 53))
            })
            .map_err(|_| {
                ApiError::invalid(
                    "external_secondaries",
                    "address",
                    format!("`{item}` is not an IP address or ip:port (e.g. 192.0.2.53 or [2001:db8::53]:53)"),
                )
            })?;
        if addr.port() == 0 {
            return Err(ApiError::invalid(
                "external_secondaries",
                "address",
                format!("`{item}`: port 0 is not a port"),
            ));
        }
        if !out.contains(&addr) {
            out.push(addr);
        }
    }
    Ok(Some(out))
}

/// Parse a mail cluster's client-facing host name (`Some(None)`: remove it, from
/// an empty string); only mail clusters have one.
fn cluster_hostname(value: Option<String>, role: Role) -> ApiResult<Option<Option<DomainName>>> {
    let Some(value) = value else { return Ok(None) };
    if value.is_empty() {
        return Ok(Some(None));
    }
    if role != Role::Mail {
        return Err(ApiError::invalid(
            "hostname",
            "mail_only",
            "only mail clusters have a client-facing host name",
        ));
    }
    let name = DomainName::new(&value).field("hostname")?;
    if name.labels().count() < 2 {
        return Err(ApiError::invalid(
            "hostname",
            "not_a_host_name",
            format!("`{value}` is not a host name with a domain (e.g. mail.hosting.example)"),
        ));
    }
    Ok(Some(Some(name)))
}

fn ttl(value: Option<u32>, field: &str, default: u32) -> ApiResult<u32> {
    match value {
        None => Ok(default),
        Some(v) if TTL_RANGE.contains(&v) => Ok(v),
        Some(_) => Err(ApiError::invalid(
            field,
            "out_of_range",
            format!(
                "{field} is {} to {} seconds",
                TTL_RANGE.start(),
                TTL_RANGE.end()
            ),
        )),
    }
}

/// Unset the default flag of every other cluster of `role` (inside `tx`).
async fn unset_other_defaults(
    store: &Store,
    tx: &mut Tx,
    role: Role,
    except: Option<Id>,
) -> ApiResult<()> {
    for c in store.all::<Cluster>().await? {
        if c.data.role == role && c.data.is_default && Some(c.meta.id) != except {
            if let Some(mut current) = tx.get::<Cluster>(c.meta.id).await? {
                current.data.is_default = false;
                tx.update(current.meta.id, &current.meta.name, current.data)
                    .await?;
            }
        }
    }
    Ok(())
}

async fn cluster_by_name(state: &AppState, name: &str) -> ApiResult<Stored<Cluster>> {
    state
        .store
        .get_by_name::<Cluster>(Scope::All, name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no cluster `{name}`")))
}

/// `POST /v1/clusters` (admins).
#[utoipa::path(post, path = "/v1/clusters", tag = "infrastructure", request_body = CreateCluster,
    responses((status = 201, body = ClusterView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_cluster(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateCluster>,
) -> ApiResult<(StatusCode, Json<ClusterView>)> {
    caller.require_admin()?;
    let name = Slug::new(&req.name).field("name")?;
    let role: Role = req.role.parse().field("role")?;
    let description = text_field(req.description, "description", 1000)?.unwrap_or_default();
    let defaults = Ttls::default();
    let ttls = Ttls {
        web: ttl(req.web_ttl, "web_ttl", defaults.web)?,
        default: ttl(req.ttl, "ttl", defaults.default)?,
    };
    let is_default = req.default.unwrap_or(false);
    let external_secondaries =
        external_secondaries(req.external_secondaries, role)?.unwrap_or_default();
    let hostname = cluster_hostname(req.hostname, role)?.flatten();
    let mut tx = state.store.begin(caller.actor()).await?;
    if is_default {
        unset_other_defaults(&state.store, &mut tx, role, None).await?;
    }
    let data = Cluster {
        name: name.clone(),
        role,
        description,
        is_default,
        ttls,
        external_secondaries,
        mail_writer: None,
        hostname,
    };
    let created = tx
        .create(NewObject {
            name: name.to_string(),
            owner: None,
            parent: None,
            data,
        })
        .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(cluster_view(&state.store, &created).await?),
    ))
}

/// `GET /v1/clusters`.
#[utoipa::path(get, path = "/v1/clusters", tag = "infrastructure", params(ListParams),
    responses((status = 200, body = Page<ClusterView>)))]
pub async fn list_clusters(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<Page<ClusterView>>> {
    crate::limits::may_choose_clusters(&caller, "cluster")?;
    let paging = Paging::new(params.cursor.as_deref(), params.limit)?;
    if params.customer.is_some() || params.domain.is_some() || params.cluster.is_some() {
        return Err(ApiError::invalid(
            "customer",
            "unsupported_filter",
            "clusters cannot be filtered",
        ));
    }
    let (rows, next) = list_page::<Cluster>(&state, Scope::All, paging, None, None).await?;
    let mut items = Vec::with_capacity(rows.len());
    for c in &rows {
        items.push(shown_cluster(&caller, cluster_view(&state.store, c).await?));
    }
    Ok(Json(Page {
        items,
        next_cursor: next,
    }))
}

/// `GET /v1/clusters/{name}`.
#[utoipa::path(get, path = "/v1/clusters/{name}", tag = "infrastructure", params(("name" = String, Path)),
    responses((status = 200, body = ClusterView), (status = 404, body = ErrorBody)))]
pub async fn get_cluster(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<ClusterView>> {
    crate::limits::may_choose_clusters(&caller, "cluster")?;
    let c = cluster_by_name(&state, &name).await?;
    Ok(Json(shown_cluster(
        &caller,
        cluster_view(&state.store, &c).await?,
    )))
}

/// Clusters as a reseller allowed to choose them sees them: names and roles, not
/// the servers inside (the inventory is for admins).
fn shown_cluster(caller: &Caller, mut view: ClusterView) -> ClusterView {
    if !caller.is_admin() {
        view.servers.clear();
        view.external_secondaries.clear();
        view.mail_writer = None;
        view.hostname = None;
    }
    view
}

/// `PATCH /v1/clusters/{name}` (admins).
#[utoipa::path(patch, path = "/v1/clusters/{name}", tag = "infrastructure", params(("name" = String, Path)),
    request_body = UpdateCluster, responses((status = 200, body = ClusterView), (status = 404, body = ErrorBody)))]
pub async fn update_cluster(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<UpdateCluster>,
) -> ApiResult<Json<ClusterView>> {
    caller.require_admin()?;
    let c = cluster_by_name(&state, &name).await?;
    let description = text_field(req.description, "description", 1000)?;
    let web = req
        .web_ttl
        .map(|v| ttl(Some(v), "web_ttl", v))
        .transpose()?;
    let default_ttl = req.ttl.map(|v| ttl(Some(v), "ttl", v)).transpose()?;
    let mut tx = state.store.begin(caller.actor()).await?;
    let mut cur = tx
        .get::<Cluster>(c.meta.id)
        .await?
        .ok_or_else(|| ApiError::not_found("cluster not found"))?;
    if let Some(d) = description {
        cur.data.description = d;
    }
    if let Some(w) = web {
        cur.data.ttls.web = w;
    }
    if let Some(t) = default_ttl {
        cur.data.ttls.default = t;
    }
    if let Some(list) = external_secondaries(req.external_secondaries, cur.data.role)? {
        cur.data.external_secondaries = list;
    }
    if let Some(h) = cluster_hostname(req.hostname, cur.data.role)? {
        cur.data.hostname = h;
    }
    if let Some(d) = req.default {
        if d && !cur.data.is_default {
            unset_other_defaults(&state.store, &mut tx, cur.data.role, Some(cur.meta.id)).await?;
        }
        cur.data.is_default = d;
    }
    let updated = tx.update(cur.meta.id, &cur.meta.name, cur.data).await?;
    tx.commit().await?;
    Ok(Json(cluster_view(&state.store, &updated).await?))
}

/// `DELETE /v1/clusters/{name}` (admins): refused while it has servers or placements.
#[utoipa::path(delete, path = "/v1/clusters/{name}", tag = "infrastructure", params(("name" = String, Path)),
    responses((status = 204), (status = 409, body = ErrorBody)))]
pub async fn delete_cluster(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    let c = cluster_by_name(&state, &name).await?;
    let id = c.meta.id;
    let mut tx = state.store.begin(caller.actor()).await?;
    let servers = tx.children::<Server>(id).await?;
    if !servers.is_empty() {
        return Err(ApiError::in_use(format!(
            "cluster `{name}` still has {} server(s); remove them first",
            servers.len()
        )));
    }
    // Writers are serialised from `begin` on, so these reads cannot race a change.
    let placed = state
        .store
        .all::<Domain>()
        .await?
        .into_iter()
        .filter(|d| d.data.placements.values().any(|c| *c == id))
        .count();
    let dbs = state
        .store
        .all::<Database>()
        .await?
        .into_iter()
        .filter(|d| d.data.cluster == id)
        .count();
    let users = state
        .store
        .all::<DbUser>()
        .await?
        .into_iter()
        .filter(|d| d.data.cluster == id)
        .count();
    if placed + dbs + users > 0 {
        return Err(ApiError::in_use(format!(
            "cluster `{name}` still hosts {placed} domain(s), {dbs} database(s) and {users} database user(s); move or delete them first"
        )));
    }
    for a in state.store.all::<Account>().await? {
        if a.data.default_clusters.values().any(|c| *c == id) {
            if let Some(mut cur) = tx.get::<Account>(a.meta.id).await? {
                cur.data.default_clusters.retain(|_, c| *c != id);
                tx.update(cur.meta.id, &cur.meta.name, cur.data).await?;
            }
        }
    }
    tx.delete(Kind::Cluster, id).await?;
    tx.commit().await?;
    state.changed();
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- servers

/// A server as shown, with its health and revisions.
pub async fn server_view(
    state: &AppState,
    names: &mut Names<'_>,
    s: &Stored<Server>,
) -> ApiResult<ServerView> {
    let health = state.health.get(s.meta.id);
    Ok(ServerView {
        name: s.meta.name.clone(),
        role: s.data.role.to_string(),
        cluster: names.cluster(s.data.cluster).await?,
        rank: s.data.rank,
        hostname: s.data.hostname.to_string(),
        addresses: s.data.addresses.iter().map(ToString::to_string).collect(),
        region: s.data.region.clone(),
        country: s.data.country.to_string(),
        hardware: s.data.hardware.clone(),
        health: crate::health::health_str(
            health.as_ref().map(|h| h.state).unwrap_or(Health::Unknown),
        )
        .to_owned(),
        drained: s.data.drained,
        applied_revision: health.as_ref().and_then(|h| h.applied_revision),
        last_heartbeat: health.as_ref().and_then(|h| h.last_heartbeat).map(rfc3339),
        config_revision: state.configs.revision(s.meta.id),
        engines: health
            .as_ref()
            .map(|h| {
                h.engines
                    .iter()
                    .map(|e| proto::v1::EngineView {
                        name: e.name.clone(),
                        state: e.state.as_str().to_owned(),
                        detail: e.detail.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        created_at: rfc3339(s.meta.created_at),
    })
}

pub(crate) fn addresses(list: &[String]) -> ApiResult<Vec<IpAddr>> {
    if list.is_empty() {
        return Err(ApiError::invalid(
            "addresses",
            "required",
            "a server needs at least one public address",
        ));
    }
    let mut out = Vec::new();
    for (i, a) in list.iter().enumerate() {
        let ip: IpAddr = a.trim().parse().map_err(|_| {
            ApiError::invalid(
                format!("addresses[{i}]"),
                "bad_address",
                format!("`{a}` is not an IPv4 or IPv6 address"),
            )
        })?;
        if ip.is_unspecified() || ip.is_multicast() {
            return Err(ApiError::invalid(
                format!("addresses[{i}]"),
                "bad_address",
                format!("{ip} cannot be a host address"),
            ));
        }
        if !out.contains(&ip) {
            out.push(ip);
        }
    }
    Ok(out)
}

/// New same-country violations that `after` has and `before` did not.
fn new_violations(before: &ClusterInfo, after: &ClusterInfo) -> Vec<SameCountry> {
    let old: BTreeSet<(String, String)> = same_country_violations(before)
        .into_iter()
        .map(|v| (v.primary, v.secondary))
        .collect();
    same_country_violations(after)
        .into_iter()
        .filter(|v| !old.contains(&(v.primary.clone(), v.secondary.clone())))
        .collect()
}

/// Check the "secondaries are elsewhere" rule when `changed` joins or changes in its
/// cluster; refuse unless forced, in which case record warning events.
pub(crate) async fn check_country(
    tx: &mut Tx,
    cluster: &Stored<Cluster>,
    changed: &Stored<Server>,
    force: bool,
) -> ApiResult<()> {
    let members = tx.children::<Server>(cluster.meta.id).await?;
    let info = |servers: Vec<&Stored<Server>>| ClusterInfo {
        id: cluster.meta.id,
        name: cluster.meta.name.clone(),
        role: cluster.data.role,
        is_default: cluster.data.is_default,
        servers: servers.into_iter().map(|s| server_info(s, 0)).collect(),
    };
    let before = info(
        members
            .iter()
            .filter(|s| s.meta.id != changed.meta.id)
            .collect(),
    );
    let mut after_members: Vec<&Stored<Server>> = members
        .iter()
        .filter(|s| s.meta.id != changed.meta.id)
        .collect();
    after_members.push(changed);
    let after = info(after_members);
    let violations = new_violations(&before, &after);
    if violations.is_empty() {
        return Ok(());
    }
    if !force {
        let msg = violations
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        return Err(ApiError::invalid("country", "same_country", msg));
    }
    for v in violations {
        tracing::warn!(cluster = %cluster.meta.name, "{v}");
        tx.event(
            "placement.warning",
            Kind::Server,
            Some((changed.meta.id, &changed.meta.name)),
            None,
            serde_json::json!({
                "warning": v.to_string(),
                "cluster": cluster.meta.name,
                "primary": v.primary,
                "secondary": v.secondary,
                "country": v.country.to_string(),
            }),
        )
        .await?;
    }
    Ok(())
}

async fn server_by_name(state: &AppState, name: &str) -> ApiResult<Stored<Server>> {
    state
        .store
        .get_by_name::<Server>(Scope::All, name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no server `{name}`")))
}

/// `POST /v1/servers` (admins).
#[utoipa::path(post, path = "/v1/servers", tag = "infrastructure", request_body = CreateServer,
    responses((status = 201, body = ServerView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_server(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateServer>,
) -> ApiResult<(StatusCode, Json<ServerView>)> {
    caller.require_admin()?;
    let name = Slug::new(&req.name).field("name")?;
    let cluster_slug = Slug::new(&req.cluster).field("cluster")?;
    let hostname = DomainName::new(&req.hostname).field("hostname")?;
    let addrs = addresses(&req.addresses)?;
    let country = CountryCode::new(&req.country).field("country")?;
    let region = text_field(req.region, "region", 100)?.unwrap_or_default();
    let hardware = text_field(req.hardware, "hardware", 2000)?.unwrap_or_default();
    let cluster = state
        .store
        .get_by_name::<Cluster>(Scope::All, cluster_slug.as_str())
        .await?
        .ok_or_else(|| {
            ApiError::invalid(
                "cluster",
                "unknown_cluster",
                format!("there is no cluster `{cluster_slug}`"),
            )
        })?;
    let mut tx = state.store.begin(caller.actor()).await?;
    let members = tx.children::<Server>(cluster.meta.id).await?;
    let rank = match req.rank {
        Some(r) => r,
        None => members
            .iter()
            .map(|s| s.data.rank.saturating_add(1))
            .max()
            .unwrap_or(0),
    };
    let data = Server {
        name: name.clone(),
        role: cluster.data.role,
        cluster: cluster.meta.id,
        rank,
        hostname,
        addresses: addrs,
        region,
        country,
        hardware,
        drained: false,
        agent: None,
    };
    let created = tx
        .create(NewObject {
            name: name.to_string(),
            owner: None,
            parent: Some(cluster.meta.id),
            data,
        })
        .await?;
    check_country(&mut tx, &cluster, &created, req.force.unwrap_or(false)).await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(server_view(&state, &mut Names::new(&state.store), &created).await?),
    ))
}

/// `GET /v1/servers` (admins).
#[utoipa::path(get, path = "/v1/servers", tag = "infrastructure", params(ListParams),
    responses((status = 200, body = Page<ServerView>), (status = 403, body = ErrorBody)))]
pub async fn list_servers(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<Page<ServerView>>> {
    caller.require_admin()?;
    let paging = Paging::new(params.cursor.as_deref(), params.limit)?;
    if params.customer.is_some() {
        return Err(ApiError::invalid(
            "customer",
            "unsupported_filter",
            "servers cannot be filtered by customer",
        ));
    }
    let (_, parent) = filters(&state, &caller, &params, false, true).await?;
    let (rows, next) = list_page::<Server>(&state, Scope::All, paging, None, parent).await?;
    let mut names = Names::new(&state.store);
    let mut items = Vec::with_capacity(rows.len());
    for s in &rows {
        items.push(server_view(&state, &mut names, s).await?);
    }
    Ok(Json(Page {
        items,
        next_cursor: next,
    }))
}

/// `GET /v1/servers/{name}` (admins).
#[utoipa::path(get, path = "/v1/servers/{name}", tag = "infrastructure", params(("name" = String, Path)),
    responses((status = 200, body = ServerView), (status = 404, body = ErrorBody)))]
pub async fn get_server(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<ServerView>> {
    caller.require_admin()?;
    let s = server_by_name(&state, &name).await?;
    Ok(Json(
        server_view(&state, &mut Names::new(&state.store), &s).await?,
    ))
}

/// `PATCH /v1/servers/{name}` (admins).
#[utoipa::path(patch, path = "/v1/servers/{name}", tag = "infrastructure", params(("name" = String, Path)),
    request_body = UpdateServer, responses((status = 200, body = ServerView), (status = 422, body = ErrorBody)))]
pub async fn update_server(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<UpdateServer>,
) -> ApiResult<Json<ServerView>> {
    caller.require_admin()?;
    let s = server_by_name(&state, &name).await?;
    let hostname = req
        .hostname
        .as_deref()
        .map(DomainName::new)
        .transpose()
        .field("hostname")?;
    let addrs = req.addresses.as_deref().map(addresses).transpose()?;
    let country = req
        .country
        .as_deref()
        .map(CountryCode::new)
        .transpose()
        .field("country")?;
    let region = text_field(req.region, "region", 100)?;
    let hardware = text_field(req.hardware, "hardware", 2000)?;
    let mut tx = state.store.begin(caller.actor()).await?;
    let mut cur = tx
        .get::<Server>(s.meta.id)
        .await?
        .ok_or_else(|| ApiError::not_found("server not found"))?;
    let cluster = tx
        .get::<Cluster>(cur.data.cluster)
        .await?
        .ok_or_else(|| ApiError::not_found("cluster not found"))?;
    if let Some(r) = req.rank {
        cur.data.rank = r;
    }
    if let Some(h) = hostname {
        cur.data.hostname = h;
    }
    if let Some(a) = addrs {
        cur.data.addresses = a;
    }
    if let Some(c) = country {
        cur.data.country = c;
    }
    if let Some(r) = region {
        cur.data.region = r;
    }
    if let Some(h) = hardware {
        cur.data.hardware = h;
    }
    check_country(&mut tx, &cluster, &cur, req.force.unwrap_or(false)).await?;
    let updated = tx.update(cur.meta.id, &cur.meta.name, cur.data).await?;
    tx.commit().await?;
    Ok(Json(
        server_view(&state, &mut Names::new(&state.store), &updated).await?,
    ))
}

/// `DELETE /v1/servers/{name}` (admins): `single` sites active on it move to another
/// server of the cluster.
#[utoipa::path(delete, path = "/v1/servers/{name}", tag = "infrastructure", params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_server(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    let s = server_by_name(&state, &name).await?;
    crate::placement::delete_server(&state, caller.actor(), &s).await?;
    state.health.identities.forget(&name);
    Ok(StatusCode::NO_CONTENT)
}

/// Set or clear `drained`, then run a placement pass ([`crate::placement::reconcile`]).
async fn set_drained(
    state: &AppState,
    caller: &Caller,
    name: &str,
    drained: bool,
) -> ApiResult<ServerView> {
    caller.require_admin()?;
    let s = server_by_name(state, name).await?;
    let mut tx = state.store.begin(caller.actor()).await?;
    let mut cur = tx
        .get::<Server>(s.meta.id)
        .await?
        .ok_or_else(|| ApiError::not_found("server not found"))?;
    let updated = if cur.data.drained != drained {
        cur.data.drained = drained;
        let u = tx.update(cur.meta.id, &cur.meta.name, cur.data).await?;
        tx.commit().await?;
        state.changed();
        state.health.live.publish(crate::live::LiveEvent::Drain {
            server: u.meta.id,
            drained,
        });
        u
    } else {
        drop(tx);
        cur
    };
    crate::placement::reconcile(state, if drained { "drain" } else { "undrain" }).await?;
    server_view(state, &mut Names::new(&state.store), &updated).await
}

/// `POST /v1/servers/{name}/drain` (admins): the server takes no new work, and its
/// `single` sites move to other usable servers of its cluster.
#[utoipa::path(post, path = "/v1/servers/{name}/drain", tag = "infrastructure", params(("name" = String, Path)),
    responses((status = 200, body = ServerView), (status = 404, body = ErrorBody)))]
pub async fn drain_server(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<ServerView>> {
    Ok(Json(set_drained(&state, &caller, &name, true).await?))
}

/// `POST /v1/servers/{name}/undrain` (admins): the server may take work again
/// (sites that moved off stay where they are; unplaced ones are placed).
#[utoipa::path(post, path = "/v1/servers/{name}/undrain", tag = "infrastructure", params(("name" = String, Path)),
    responses((status = 200, body = ServerView), (status = 404, body = ErrorBody)))]
pub async fn undrain_server(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<ServerView>> {
    Ok(Json(set_drained(&state, &caller, &name, false).await?))
}

/// `POST /v1/servers/{name}/reset-agent` (admins): forget the agent identity the
/// server joined with. Its certificate is refused from now on, and a new agent may
/// join under the same name with a new join token (re-join after a lost key).
#[utoipa::path(post, path = "/v1/servers/{name}/reset-agent", tag = "infrastructure", params(("name" = String, Path)),
    responses((status = 200, body = ServerView), (status = 404, body = ErrorBody)))]
pub async fn reset_agent(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<ServerView>> {
    caller.require_admin()?;
    let s = server_by_name(&state, &name).await?;
    let mut tx = state.store.begin(caller.actor()).await?;
    let mut cur = tx
        .get::<Server>(s.meta.id)
        .await?
        .ok_or_else(|| ApiError::not_found("server not found"))?;
    cur.data.agent = None;
    let updated = tx.update(cur.meta.id, &cur.meta.name, cur.data).await?;
    tx.commit().await?;
    state.health.identities.forget(&updated.meta.name);
    state.changed();
    Ok(Json(
        server_view(&state, &mut Names::new(&state.store), &updated).await?,
    ))
}
