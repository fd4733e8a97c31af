//! `/v1/domains`: customer domains and their placement on one cluster per role.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use model::entity::{Cluster, Database, Domain, Kind};
use model::{DomainName, Id, Role, WithField};
use proto::v1::{CreateDomain, DomainView, ErrorBody, ListParams, Page, UpdateDomain};
use scheduler::DomainRequest;
use store::{NewObject, Stored, Tx};

use super::customers::cluster_map;
use super::{filters, list_page, owning_customer, rfc3339, Names, Paging};
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::state::AppState;

/// A domain as shown.
pub async fn domain_view(names: &mut Names<'_>, d: &Stored<Domain>) -> ApiResult<DomainView> {
    let mut placements = BTreeMap::new();
    for (role, id) in &d.data.placements {
        placements.insert(role.to_string(), names.cluster(*id).await?);
    }
    Ok(DomainView {
        name: d.meta.name.clone(),
        unicode: d.data.name.to_unicode(),
        customer: names.account(d.data.customer).await?,
        placements,
        created_at: rfc3339(d.meta.created_at),
    })
}

/// A domain named in a path, visible to the caller (Unicode accepted), or 404.
pub async fn path_domain(
    state: &AppState,
    caller: &Caller,
    name: &str,
) -> ApiResult<Stored<Domain>> {
    let missing = || ApiError::not_found(format!("no domain `{name}`"));
    let dn = DomainName::new(name).map_err(|_| missing())?;
    state
        .store
        .get_by_name::<Domain>(caller.scope(), dn.as_str())
        .await?
        .ok_or_else(missing)
}

/// Re-check inside `tx` that every placed cluster still exists with its role.
async fn verify_placements(tx: &mut Tx, placements: &BTreeMap<Role, Id>) -> ApiResult<()> {
    for (role, id) in placements {
        match tx.get::<Cluster>(*id).await? {
            Some(c) if c.data.role == *role => {}
            _ => {
                return Err(ApiError::infeasible(format!(
                    "the {role} cluster chosen was removed meanwhile; try again"
                )))
            }
        }
    }
    Ok(())
}

/// `POST /v1/domains`: add a domain and place it (explicit clusters, then the
/// customer's defaults, then the operator's defaults).
#[utoipa::path(post, path = "/v1/domains", tag = "domains", request_body = CreateDomain,
    responses((status = 201, body = DomainView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_domain(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateDomain>,
) -> ApiResult<(StatusCode, Json<DomainView>)> {
    let name = DomainName::new(&req.name).field("name")?;
    let owner = owning_customer(&state, &caller, req.customer.as_deref()).await?;
    crate::limits::may_choose_clusters_in(&caller, "clusters", req.clusters.as_ref())?;
    let claim = crate::ownership::prepare(&state, &caller, &owner, &name).await?;
    let explicit = match &req.clusters {
        Some(m) => cluster_map(&state, m, "clusters", Role::DOMAIN_ROLES).await?,
        None => BTreeMap::new(),
    };
    let customer_defaults = owner.data.domain_role_defaults();
    let (plan, snap) = crate::placement::place_domain(
        &state,
        &DomainRequest {
            roles: Role::DOMAIN_ROLES.to_vec(),
            explicit,
            customer_defaults,
        },
    )
    .await?;
    let mut tx = state.store.begin(caller.actor()).await?;
    claim.check(&mut tx).await?;
    verify_placements(&mut tx, &plan.placements).await?;
    let default_plan = &state.config.default_plan;
    crate::limits::check_count(&mut tx, default_plan, owner.meta.id, Kind::Domain).await?;
    let data = Domain {
        name: name.clone(),
        customer: owner.meta.id,
        placements: plan.placements,
    };
    let created = tx
        .create(NewObject {
            name: name.to_string(),
            owner: Some(owner.meta.id),
            parent: Some(owner.meta.id),
            data,
        })
        .await?;
    tx.commit().await?;
    // Every name the view shows is already in hand: render it without queries.
    let mut names = Names::new(&state.store);
    names.seed::<model::entity::Account>(owner.meta.id, &owner.meta.name);
    for c in &snap.clusters {
        names.seed::<Cluster>(c.id, &c.name);
    }
    Ok((
        StatusCode::CREATED,
        Json(domain_view(&mut names, &created).await?),
    ))
}

/// `GET /v1/domains`.
#[utoipa::path(get, path = "/v1/domains", tag = "domains", params(ListParams),
    responses((status = 200, body = Page<DomainView>)))]
pub async fn list_domains(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<Page<DomainView>>> {
    let paging = Paging::new(params.cursor.as_deref(), params.limit)?;
    let (owner, _) = filters(&state, &caller, &params, false, false).await?;
    let (rows, next) = list_page::<Domain>(&state, caller.scope(), paging, owner, None).await?;
    let mut names = Names::new(&state.store);
    let mut items = Vec::with_capacity(rows.len());
    for d in &rows {
        items.push(domain_view(&mut names, d).await?);
    }
    Ok(Json(Page {
        items,
        next_cursor: next,
    }))
}

/// `GET /v1/domains/{name}`.
#[utoipa::path(get, path = "/v1/domains/{name}", tag = "domains", params(("name" = String, Path)),
    responses((status = 200, body = DomainView), (status = 404, body = ErrorBody)))]
pub async fn get_domain(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<DomainView>> {
    let d = path_domain(&state, &caller, &name).await?;
    Ok(Json(domain_view(&mut Names::new(&state.store), &d).await?))
}

/// `PATCH /v1/domains/{name}`: move roles to other clusters (admins).
#[utoipa::path(patch, path = "/v1/domains/{name}", tag = "domains", params(("name" = String, Path)),
    request_body = UpdateDomain, responses((status = 200, body = DomainView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_domain(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<UpdateDomain>,
) -> ApiResult<Json<DomainView>> {
    let d = path_domain(&state, &caller, &name).await?;
    caller.require_admin()?;
    let moves = match &req.clusters {
        Some(m) => cluster_map(&state, m, "clusters", Role::DOMAIN_ROLES).await?,
        None => BTreeMap::new(),
    };
    // Moving the web role re-places the domain's sites: under the placement lock,
    // decided on a snapshot taken before the transaction.
    let placement = match moves.get(&Role::Web) {
        Some(_) => {
            let held = state.placement.lock().await;
            Some((crate::placement::move_snapshot(&state).await?, held))
        }
        None => None,
    };
    let mut tx = state.store.begin(caller.actor()).await?;
    let mut cur = tx
        .get::<Domain>(d.meta.id)
        .await?
        .ok_or_else(|| ApiError::not_found("domain not found"))?;
    verify_placements(&mut tx, &moves).await?;
    let web_moved = moves
        .get(&Role::Web)
        .filter(|c| cur.data.placements.get(&Role::Web) != Some(*c))
        .copied();
    cur.data.placements.extend(moves);
    if let (Some(web), Some((snap, held))) = (web_moved, &placement) {
        crate::placement::replace_domain_sites(held, &state, &mut tx, snap, cur.meta.id, web)
            .await?;
    }
    let updated = tx.update(cur.meta.id, &cur.meta.name, cur.data).await?;
    tx.commit().await?;
    Ok(Json(
        domain_view(&mut Names::new(&state.store), &updated).await?,
    ))
}

/// `DELETE /v1/domains/{name}`: deletes its site, mailboxes, aliases, FTP accounts
/// and records with it, and unlinks databases linked to it.
#[utoipa::path(delete, path = "/v1/domains/{name}", tag = "domains", params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_domain(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let d = path_domain(&state, &caller, &name).await?;
    let mut tx = state.store.begin(caller.actor()).await?;
    for mut db in tx.children::<Database>(d.data.customer).await? {
        if db.data.domain == Some(d.meta.id) {
            db.data.domain = None;
            tx.update(db.meta.id, &db.meta.name, db.data).await?;
        }
    }
    tx.delete(Kind::Domain, d.meta.id).await?;
    tx.commit().await?;
    crate::deployments::collect(&state, false).await;
    Ok(StatusCode::NO_CONTENT)
}
