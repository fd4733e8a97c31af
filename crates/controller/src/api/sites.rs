//! `/v1/sites`: the web part of a domain, named by its domain.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use model::entity::{Domain, Kind, Site};
use model::sitefiles::PathClasses;
use model::{DomainName, PlacementMode, Role, WithField};
use proto::v1::{CreateSite, ErrorBody, ListParams, Page, SiteView, UpdateSite};
use store::{NewObject, Stored};

use super::site_files::{self, FilesInfo};
use super::site_web;
use super::{body_domain, filters, list_page, rfc3339, Names, Paging};
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::state::AppState;

/// A site as shown: with what its files server last reported (`info`).
pub async fn site_view(
    state: &AppState,
    names: &mut Names<'_>,
    info: &mut FilesInfo,
    s: &Stored<Site>,
) -> ApiResult<SiteView> {
    let domain = names.domain(s.data.domain).await?;
    let (customer, cluster, files_cluster, web_cluster, mail_cluster) = match names_store(names)
        .get::<Domain>(store::Scope::All, s.data.domain)
        .await?
    {
        Some(d) => (
            names.account(d.data.customer).await?,
            match d.data.placements.get(&Role::Web) {
                Some(c) => names.cluster(*c).await?,
                None => String::new(),
            },
            d.data.placements.get(&Role::Files).copied(),
            d.data.placements.get(&Role::Web).copied(),
            match d.data.placements.get(&Role::Mail) {
                Some(c) => Some(names.cluster(*c).await?),
                None => None,
            },
        ),
        None => (String::new(), String::new(), None, None, None),
    };
    let status = info.status(files_cluster, &domain);
    let (usage_bytes, conflicts, warnings) = (
        status.map(|st| st.usage_bytes),
        status.map_or(0, |st| st.conflicts.len() as u64),
        site_files::warnings(&s.data, status),
    );
    let quota_mb = info.quota_mb(state, s.meta.owner).await?;
    let paths = |l: &[model::sitefiles::SitePath]| l.iter().map(ToString::to_string).collect();
    let mut view = SiteView {
        keep: paths(&s.data.files.keep),
        local: paths(&s.data.files.local),
        usage_bytes,
        quota_mb,
        conflicts,
        warnings,
        domain,
        customer,
        aliases: s.data.aliases.iter().map(ToString::to_string).collect(),
        php: s.data.php,
        mode: s.data.mode.to_string(),
        https_redirect: s.data.https_redirect,
        cluster,
        active_server: match s.data.active_server {
            Some(id) => Some(names.server(id).await?),
            None => None,
        },
        created_at: rfc3339(s.meta.created_at),
        docroot: String::new(),
        hsts: false,
        hsts_active: false,
        php_version: None,
        php_version_effective: None,
        php_versions_available: Vec::new(),
        php_ini: Default::default(),
        mail_cluster,
        mail_spooled: Vec::new(),
    };
    site_web::fill_view(state, &mut view, &s.data, &info.php, web_cluster).await?;
    Ok(view)
}

fn names_store<'a>(names: &Names<'a>) -> &'a store::Store {
    names.store()
}

/// Validate aliases: host names inside one of the customer's domains, no duplicates,
/// not the site's own domain; a wildcard (`*.example.com`, served for every name
/// one label below, certified by ACME through DNS-01) only under the site's own
/// domain.
async fn aliases(
    state: &AppState,
    customer: model::Id,
    domain: &DomainName,
    list: &[String],
) -> ApiResult<Vec<DomainName>> {
    if list.len() > 100 {
        return Err(ApiError::invalid(
            "aliases",
            "too_many",
            "a site has at most 100 aliases",
        ));
    }
    let mut out: Vec<DomainName> = Vec::new();
    for (i, a) in list.iter().enumerate() {
        let field = format!("aliases[{i}]");
        let name = DomainName::host_pattern(a).field(&field)?;
        if name.is_wildcard() && !name.is_within(domain) {
            return Err(ApiError::invalid(
                field,
                "wildcard_outside_site",
                format!(
                    "`{name}`: a wildcard alias must lie under the site's own domain `{domain}`"
                ),
            ));
        }
        if &name == domain || out.contains(&name) {
            return Err(ApiError::invalid(
                field,
                "duplicate",
                format!("`{name}` is listed twice"),
            ));
        }
        if !within_customer_domain(state, customer, &name).await? {
            return Err(ApiError::invalid(
                field,
                "not_in_own_domain",
                format!(
                    "`{name}` is not inside one of this customer's domains; add the domain first"
                ),
            ));
        }
        out.push(name);
    }
    Ok(out)
}

/// Whether `name` is one of `customer`'s domains or lies below one: a lookup by
/// name of each of its parent names (at most a few indexed reads), not a listing
/// of the customer's domains, which grew with the customer (measured: 45% of the
/// controller's CPU when a customer with 5,000 domains added sites).
async fn within_customer_domain(
    state: &AppState,
    customer: model::Id,
    name: &DomainName,
) -> ApiResult<bool> {
    let full = name.as_str();
    let starts = std::iter::once(0).chain(full.match_indices('.').map(|(i, _)| i + 1));
    for start in starts {
        let candidate = &full[start..];
        if let Some(d) = state
            .store
            .get_by_name::<Domain>(store::Scope::All, candidate)
            .await?
        {
            if d.meta.owner == Some(customer) && name.is_within(&d.data.name) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

fn mode(value: Option<&str>) -> ApiResult<Option<PlacementMode>> {
    value
        .map(|m| m.parse::<PlacementMode>())
        .transpose()
        .field("mode")
        .map_err(Into::into)
}

/// A site named in a path, visible to the caller, or 404.
pub(crate) async fn path_site(
    state: &AppState,
    caller: &Caller,
    name: &str,
) -> ApiResult<Stored<Site>> {
    let missing = || ApiError::not_found(format!("no site `{name}`"));
    let dn = DomainName::new(name).map_err(|_| missing())?;
    state
        .store
        .get_by_name::<Site>(caller.scope(), dn.as_str())
        .await?
        .ok_or_else(missing)
}

/// `POST /v1/sites`.
#[utoipa::path(post, path = "/v1/sites", tag = "sites", request_body = CreateSite,
    responses((status = 201, body = SiteView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_site(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateSite>,
) -> ApiResult<(StatusCode, Json<SiteView>)> {
    let domain = body_domain(&state, &caller, &req.domain, "domain").await?;
    let aliases = aliases(
        &state,
        domain.data.customer,
        &domain.data.name,
        req.aliases.as_deref().unwrap_or_default(),
    )
    .await?;
    let mode = mode(req.mode.as_deref())?.unwrap_or(PlacementMode::Single);
    let active_server = crate::placement::place_site(&state, &domain.data, mode).await?;
    let data = Site {
        domain: domain.meta.id,
        aliases,
        php: req.php.unwrap_or(false),
        mode,
        https_redirect: req.https_redirect.unwrap_or(false),
        active_server,
        deployment: None,
        previous_deployments: Vec::new(),
        files: Default::default(),
        cron: Vec::new(),
        cron_next_id: 0,
        cron_holder: None,
        web: Default::default(),
    };
    let mut info = FilesInfo::load(&state).await?;
    let mut tx = state.store.begin(caller.actor()).await?;
    let created = tx
        .create(NewObject {
            name: domain.meta.name.clone(),
            owner: domain.meta.owner,
            parent: Some(domain.meta.id),
            data,
        })
        .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(site_view(&state, &mut Names::new(&state.store), &mut info, &created).await?),
    ))
}

/// `GET /v1/sites`.
#[utoipa::path(get, path = "/v1/sites", tag = "sites", params(ListParams), responses((status = 200, body = Page<SiteView>)))]
pub async fn list_sites(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<Page<SiteView>>> {
    let paging = Paging::new(params.cursor.as_deref(), params.limit)?;
    let (owner, parent) = filters(&state, &caller, &params, true, false).await?;
    let (rows, next) = list_page::<Site>(&state, caller.scope(), paging, owner, parent).await?;
    let mut names = Names::new(&state.store);
    let mut info = FilesInfo::load(&state).await?;
    let mut items = Vec::with_capacity(rows.len());
    for s in &rows {
        items.push(site_view(&state, &mut names, &mut info, s).await?);
    }
    Ok(Json(Page {
        items,
        next_cursor: next,
    }))
}

/// `GET /v1/sites/{domain}`.
#[utoipa::path(get, path = "/v1/sites/{domain}", tag = "sites", params(("domain" = String, Path)),
    responses((status = 200, body = SiteView), (status = 404, body = ErrorBody)))]
pub async fn get_site(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<SiteView>> {
    let s = path_site(&state, &caller, &name).await?;
    let mut info = FilesInfo::load(&state).await?;
    Ok(Json(
        site_view(&state, &mut Names::new(&state.store), &mut info, &s).await?,
    ))
}

/// `PATCH /v1/sites/{domain}`.
#[utoipa::path(patch, path = "/v1/sites/{domain}", tag = "sites", params(("domain" = String, Path)),
    request_body = UpdateSite, responses((status = 200, body = SiteView), (status = 404, body = ErrorBody)))]
pub async fn update_site(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<UpdateSite>,
) -> ApiResult<Json<SiteView>> {
    let s = path_site(&state, &caller, &name).await?;
    let domain = state
        .store
        .get::<Domain>(store::Scope::All, s.data.domain)
        .await?
        .ok_or_else(|| ApiError::not_found("domain not found"))?;
    let new_aliases = match &req.aliases {
        Some(list) => Some(aliases(&state, domain.data.customer, &domain.data.name, list).await?),
        None => None,
    };
    let new_mode = mode(req.mode.as_deref())?;
    let classes = match (&req.keep, &req.local) {
        (None, None) => None,
        (keep, local) => Some((keep.is_some(), local.is_some(), {
            // Checked together with the list not given (it stays as it is).
            let stored = |l: &[model::sitefiles::SitePath]| {
                l.iter().map(ToString::to_string).collect::<Vec<_>>()
            };
            let keep = keep.clone().unwrap_or_else(|| stored(&s.data.files.keep));
            let local = local.clone().unwrap_or_else(|| stored(&s.data.files.local));
            PathClasses::new(&keep, &local)?
        })),
    };
    let new_server = match new_mode {
        Some(m) if m != s.data.mode => {
            Some(crate::placement::place_site(&state, &domain.data, m).await?)
        }
        _ => None,
    };
    let web = web_update_inputs(&state, &req).await?;
    let mut tx = state.store.begin(caller.actor()).await?;
    let mut cur = tx
        .get::<Site>(s.meta.id)
        .await?
        .ok_or_else(|| ApiError::not_found("site not found"))?;
    if let Some(info) = &web {
        // The plan read in this transaction, as every limit check does.
        let limits = match cur.meta.owner {
            Some(o) => crate::limits::limits_of(&mut tx, &state.config.default_plan, o).await?,
            None => state.config.default_plan,
        };
        let cluster = domain.data.placements.get(&Role::Web).copied();
        site_web::apply_update(
            &mut cur.data.web,
            (&req).into(),
            &limits,
            &info.php,
            cluster,
        )?;
    }
    if let Some(a) = new_aliases {
        cur.data.aliases = a;
    }
    if let Some(p) = req.php {
        cur.data.php = p;
    }
    if let Some(r) = req.https_redirect {
        cur.data.https_redirect = r;
    }
    if let Some(m) = new_mode {
        cur.data.mode = m;
    }
    if let Some(server) = new_server {
        cur.data.active_server = server;
    }
    if let Some((keep, local, classes)) = classes {
        if keep {
            cur.data.files.keep = classes.keep;
        }
        if local {
            cur.data.files.local = classes.local;
        }
    }
    let updated = tx.update(cur.meta.id, &cur.meta.name, cur.data).await?;
    tx.commit().await?;
    if new_mode.is_some() && !updated.data.cron.is_empty() {
        // A `single` site's cron runs where it is active: re-decide its runner.
        crate::placement::reconcile(&state, "site mode changed").await?;
    }
    let mut info = FilesInfo::load(&state).await?;
    Ok(Json(
        site_view(&state, &mut Names::new(&state.store), &mut info, &updated).await?,
    ))
}

/// The web servers' PHP versions, read before the transaction when the update
/// has a web part (`None` otherwise).
async fn web_update_inputs(state: &AppState, req: &UpdateSite) -> ApiResult<Option<FilesInfo>> {
    if site_web::WebChange::from(req).is_empty() {
        return Ok(None);
    }
    Ok(Some(FilesInfo::load(state).await?))
}

/// `DELETE /v1/sites/{domain}`.
#[utoipa::path(delete, path = "/v1/sites/{domain}", tag = "sites", params(("domain" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_site(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let s = path_site(&state, &caller, &name).await?;
    let mut tx = state.store.begin(caller.actor()).await?;
    tx.delete(Kind::Site, s.meta.id).await?;
    tx.commit().await?;
    crate::deployments::collect(&state, false).await;
    Ok(StatusCode::NO_CONTENT)
}
