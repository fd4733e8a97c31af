//! `GET /v1/endpoints`: where a customer points DNS and its clients, per domain.
//!
//! Only the servers that serve the caller's own domains and databases appear, by
//! public host name (and, for web, the addresses the site's A/AAAA records hold);
//! server names, other servers and health stay in the admin-only inventory
//! (`/v1/servers`, `/v1/clusters`, the `status` server list).

use std::collections::{BTreeMap, HashMap};

use axum::extract::State;
use axum::Json;
use model::entity::{Database, Domain, Server, Site};
use model::{Id, Role};
use proto::v1::{EndpointsView, ErrorBody, ListParams, Page};
use store::{ListQuery, Scope, Stored};

use crate::api::{filters, list_page, Paging};
use crate::auth::Caller;
use crate::error::{ApiQuery, ApiResult};
use crate::state::AppState;

/// Servers of each cluster, primary first.
async fn servers_by_cluster(state: &AppState) -> ApiResult<HashMap<Id, Vec<Stored<Server>>>> {
    let mut out: HashMap<Id, Vec<Stored<Server>>> = HashMap::new();
    for s in state.store.all::<Server>().await? {
        out.entry(s.data.cluster).or_default().push(s);
    }
    for list in out.values_mut() {
        list.sort_by_key(|s| (s.data.rank, s.meta.id));
    }
    Ok(out)
}

fn hostnames(servers: Option<&Vec<Stored<Server>>>) -> Vec<String> {
    servers
        .map(|l| l.iter().map(|s| s.data.hostname.to_string()).collect())
        .unwrap_or_default()
}

/// `GET /v1/endpoints`: one entry per visible domain (filter with `domain`).
#[utoipa::path(get, path = "/v1/endpoints", tag = "domains", params(ListParams),
    responses((status = 200, body = Page<EndpointsView>), (status = 401, body = ErrorBody)))]
pub async fn endpoints(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<Page<EndpointsView>>> {
    let paging = Paging::new(params.cursor.as_deref(), params.limit)?;
    let mut domain_params = params.clone();
    domain_params.domain = None;
    let (owner, _) = filters(&state, &caller, &domain_params, false, false).await?;
    let rows: Vec<Stored<Domain>>;
    let next;
    if let Some(name) = params.domain.as_deref().filter(|s| !s.is_empty()) {
        rows = vec![crate::api::body_domain(&state, &caller, name, "domain").await?];
        next = None;
    } else {
        (rows, next) = list_page::<Domain>(&state, caller.scope(), paging, owner, None).await?;
    }
    let servers = servers_by_cluster(&state).await?;
    let mut dbs_of: HashMap<Id, Vec<Stored<Database>>> = HashMap::new();
    let mut items = Vec::with_capacity(rows.len());
    for d in &rows {
        let cluster = |role: Role| d.data.placements.get(&role).and_then(|c| servers.get(c));
        let mut web = Vec::new();
        let mut q = ListQuery::new(Scope::All, 1);
        q.parent = Some(d.meta.id);
        let site = state.store.list::<Site>(&q).await?.into_iter().next();
        if let Some(list) = cluster(Role::Web) {
            let active = site.as_ref().and_then(|s| s.data.active_server);
            for s in list {
                if active.is_none_or(|a| a == s.meta.id) {
                    web.extend(s.data.addresses.iter().map(ToString::to_string));
                }
            }
        }
        if let std::collections::hash_map::Entry::Vacant(e) = dbs_of.entry(d.data.customer) {
            let mut q = ListQuery::new(Scope::All, 1000);
            q.owner = Some(d.data.customer);
            e.insert(state.store.list::<Database>(&q).await?);
        }
        let databases: BTreeMap<String, Vec<String>> = dbs_of
            .get(&d.data.customer)
            .map(|l| {
                l.iter()
                    .filter(|db| db.data.domain.is_none_or(|x| x == d.meta.id))
                    .map(|db| {
                        (
                            db.meta.name.clone(),
                            hostnames(servers.get(&db.data.cluster)),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        items.push(EndpointsView {
            domain: d.meta.name.clone(),
            web,
            dns: hostnames(cluster(Role::Dns)),
            mail: hostnames(cluster(Role::Mail)),
            ftp: hostnames(cluster(Role::Files)),
            databases,
        });
    }
    Ok(Json(Page {
        items,
        next_cursor: next,
    }))
}
