//! `/v1/customers`: customer, reseller and admin accounts.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use model::entity::{Account, ApiToken, Cluster, Database, Domain, Kind};
use model::{AccountKind, EmailAddress, Id, Password, Role, Slug, WithField};
use proto::v1::{CreateCustomer, CustomerView, ErrorBody, ListParams, Page, UpdateCustomer};
use store::{NewObject, Scope, Stored};

use super::{list_page, rfc3339, text_field, visible, Names, Paging};
use crate::auth::{hash_blocking, Caller};
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::state::AppState;

/// An account as shown (with its plan and limits in force, except for admins).
pub async fn customer_view(
    state: &AppState,
    names: &mut Names<'_>,
    a: &Stored<Account>,
) -> ApiResult<CustomerView> {
    let (plan, limits) = if a.data.kind == AccountKind::Admin {
        (None, None)
    } else {
        let (p, l) = super::plans::account_limit_view(state, &a.data).await?;
        (p, Some(l.into()))
    };
    let mut default_clusters = BTreeMap::new();
    for (role, id) in &a.data.default_clusters {
        default_clusters.insert(role.to_string(), names.cluster(*id).await?);
    }
    Ok(CustomerView {
        name: a.meta.name.clone(),
        kind: a.data.kind.to_string(),
        display_name: a.data.display_name.clone(),
        email: a.data.email.as_ref().map(ToString::to_string),
        reseller: match a.data.reseller {
            Some(r) => Some(names.account(r).await?),
            None => None,
        },
        disabled: a.data.disabled,
        has_password: a.data.password_hash.is_some(),
        default_clusters,
        db_quota_mb: a.data.db_quota_mb,
        plan,
        limits,
        limit_overrides: (!a.data.limits.is_empty()).then(|| a.data.limits.into()),
        may_choose_clusters: a.data.may_choose_clusters,
        created_at: rfc3339(a.meta.created_at),
    })
}

/// Resolve a role → cluster-name map (field `field.<role>`).
pub async fn cluster_map(
    state: &AppState,
    map: &BTreeMap<String, String>,
    field: &str,
    roles: &[Role],
) -> ApiResult<BTreeMap<Role, Id>> {
    let mut out = BTreeMap::new();
    for (role, cluster) in map {
        let f = format!("{field}.{role}");
        let role: Role = role.parse().field(&f)?;
        if !roles.contains(&role) {
            return Err(ApiError::invalid(
                f,
                "unsupported_role",
                format!("a default cluster cannot be set for role {role}"),
            ));
        }
        let c = state
            .store
            .get_by_name::<Cluster>(Scope::All, cluster)
            .await?
            .ok_or_else(|| {
                ApiError::invalid(
                    &f,
                    "unknown_cluster",
                    format!("there is no cluster `{cluster}`"),
                )
            })?;
        if c.data.role != role {
            return Err(ApiError::invalid(
                f,
                "wrong_role",
                format!(
                    "cluster `{cluster}` is a {} cluster, not a {role} cluster",
                    c.data.role
                ),
            ));
        }
        out.insert(role, c.meta.id);
    }
    Ok(out)
}

/// Roles a customer may have default clusters for.
const DEFAULT_ROLES: &[Role] = &[Role::Web, Role::Dns, Role::Mail, Role::Files, Role::Db];

/// `POST /v1/customers`: admins create any account; resellers create their customers.
#[utoipa::path(post, path = "/v1/customers", tag = "customers", request_body = CreateCustomer,
    responses((status = 201, body = CustomerView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_customer(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateCustomer>,
) -> ApiResult<(StatusCode, Json<CustomerView>)> {
    if caller.account.kind == AccountKind::Customer {
        return Err(ApiError::forbidden("customers cannot create accounts"));
    }
    let name = Slug::new(&req.name).field("name")?;
    let kind = match req.kind.as_deref() {
        Some(k) => k.parse::<AccountKind>().field("kind")?,
        None => AccountKind::Customer,
    };
    let reseller = if caller.account.kind == AccountKind::Reseller {
        if kind != AccountKind::Customer {
            return Err(
                ApiError::forbidden("resellers create customer accounts only").with_field("kind"),
            );
        }
        if req
            .reseller
            .as_deref()
            .is_some_and(|r| r != caller.account.name.as_str())
        {
            return Err(
                ApiError::forbidden("a reseller's customers are its own").with_field("reseller")
            );
        }
        Some(caller.account_id)
    } else {
        match req.reseller.as_deref() {
            None => None,
            Some(r) => {
                if kind != AccountKind::Customer {
                    return Err(ApiError::invalid(
                        "reseller",
                        "not_allowed",
                        "only customer accounts have a reseller",
                    ));
                }
                let acc = state.store.get_by_name::<Account>(Scope::All, r).await?;
                match acc {
                    Some(a) if a.data.kind == AccountKind::Reseller => Some(a.meta.id),
                    _ => {
                        return Err(ApiError::invalid(
                            "reseller",
                            "unknown_reseller",
                            format!("there is no reseller `{r}`"),
                        ))
                    }
                }
            }
        }
    };
    let display_name = text_field(req.display_name, "display_name", 200)?.unwrap_or_default();
    let email = req
        .email
        .as_deref()
        .map(EmailAddress::new)
        .transpose()
        .field("email")?;
    let password_hash = match req.password {
        Some(p) => {
            Some(hash_blocking(Password::new(&p).field("password")?.expose().to_owned()).await?)
        }
        None => None,
    };
    let default_clusters = match &req.default_clusters {
        Some(m) => {
            crate::limits::may_choose_clusters(&caller, "default_clusters")?;
            cluster_map(&state, m, "default_clusters", DEFAULT_ROLES).await?
        }
        None => BTreeMap::new(),
    };
    let data = Account {
        name: name.clone(),
        kind,
        display_name,
        email,
        reseller,
        default_clusters,
        password_hash,
        disabled: false,
        db_quota_mb: req.db_quota_mb.filter(|q| *q > 0),
        plan: None,
        limits: Default::default(),
        may_choose_clusters: false,
    };
    let mut tx = state.store.begin(caller.actor()).await?;
    let created = tx
        .create(NewObject {
            name: name.to_string(),
            owner: None,
            parent: reseller,
            data,
        })
        .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(customer_view(&state, &mut Names::new(&state.store), &created).await?),
    ))
}

/// `GET /v1/customers`: the accounts the caller may see.
#[utoipa::path(get, path = "/v1/customers", tag = "customers", params(ListParams),
    responses((status = 200, body = Page<CustomerView>)))]
pub async fn list_customers(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<Page<CustomerView>>> {
    let paging = Paging::new(params.cursor.as_deref(), params.limit)?;
    if params.customer.is_some() || params.domain.is_some() || params.cluster.is_some() {
        return Err(ApiError::invalid(
            "customer",
            "unsupported_filter",
            "accounts cannot be filtered",
        ));
    }
    let (rows, next) = list_page::<Account>(&state, caller.scope(), paging, None, None).await?;
    let mut names = Names::new(&state.store);
    let mut items = Vec::with_capacity(rows.len());
    for a in &rows {
        items.push(customer_view(&state, &mut names, a).await?);
    }
    Ok(Json(Page {
        items,
        next_cursor: next,
    }))
}

/// `GET /v1/customers/{name}`.
#[utoipa::path(get, path = "/v1/customers/{name}", tag = "customers", params(("name" = String, Path)),
    responses((status = 200, body = CustomerView), (status = 404, body = ErrorBody)))]
pub async fn get_customer(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<CustomerView>> {
    let a = visible::<Account>(&state, &caller, &name, "account").await?;
    Ok(Json(
        customer_view(&state, &mut Names::new(&state.store), &a).await?,
    ))
}

/// `PATCH /v1/customers/{name}`.
#[utoipa::path(patch, path = "/v1/customers/{name}", tag = "customers", params(("name" = String, Path)),
    request_body = UpdateCustomer, responses((status = 200, body = CustomerView), (status = 404, body = ErrorBody)))]
pub async fn update_customer(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<UpdateCustomer>,
) -> ApiResult<Json<CustomerView>> {
    let a = visible::<Account>(&state, &caller, &name, "account").await?;
    if req.disabled.is_some()
        && (caller.account.kind == AccountKind::Customer || a.meta.id == caller.account_id)
    {
        return Err(
            ApiError::forbidden("an account cannot enable or disable itself")
                .with_field("disabled"),
        );
    }
    let display_name = text_field(req.display_name.clone(), "display_name", 200)?;
    let email = match req.email.as_deref() {
        None => None,
        Some("") => Some(None),
        Some(e) => Some(Some(EmailAddress::new(e).field("email")?)),
    };
    let password_hash = match req.password.as_deref() {
        Some(p) => {
            Some(hash_blocking(Password::new(p).field("password")?.expose().to_owned()).await?)
        }
        None => None,
    };
    let default_clusters = match &req.default_clusters {
        Some(m) => {
            crate::limits::may_choose_clusters(&caller, "default_clusters")?;
            Some(cluster_map(&state, m, "default_clusters", DEFAULT_ROLES).await?)
        }
        None => None,
    };
    let mut tx = state.store.begin(caller.actor()).await?;
    let mut cur = tx
        .get::<Account>(a.meta.id)
        .await?
        .ok_or_else(|| ApiError::not_found("account not found"))?;
    let purge = password_hash.is_some() || req.disabled.is_some();
    if let Some(d) = display_name {
        cur.data.display_name = d;
    }
    if let Some(e) = email {
        cur.data.email = e;
    }
    if let Some(h) = password_hash {
        cur.data.password_hash = Some(h);
        // A new password revokes the account's other tokens (whoever knew the old
        // password may have made some); the caller's own token stays.
        for t in tx.children::<ApiToken>(cur.meta.id).await? {
            if t.meta.id != caller.token_id {
                tx.delete(Kind::Token, t.meta.id).await?;
            }
        }
    }
    if let Some(d) = req.disabled {
        cur.data.disabled = d;
    }
    if let Some(m) = default_clusters {
        cur.data.default_clusters = m;
    }
    if let Some(q) = req.db_quota_mb {
        // Customers may not raise their own quota; their reseller or an admin may.
        if caller.account_id == cur.meta.id && !caller.is_admin() {
            return Err(ApiError::forbidden(
                "your database quota is set by your provider",
            ));
        }
        cur.data.db_quota_mb = (q > 0).then_some(q);
    }
    super::plans::apply_account_limits(&mut tx, &state, &caller, &req, &mut cur).await?;
    let limits_changed = super::plans::touches_limits(&req);
    let updated = tx.update(cur.meta.id, &cur.meta.name, cur.data).await?;
    if limits_changed {
        crate::limits::warn_over_limits(&mut tx, &state.config.default_plan, &updated).await?;
    }
    tx.commit().await?;
    if purge || limits_changed {
        state.auth.purge_account(updated.meta.id);
    }
    Ok(Json(
        customer_view(&state, &mut Names::new(&state.store), &updated).await?,
    ))
}

/// `DELETE /v1/customers/{name}`: refused while it owns domains or databases (or, for
/// a reseller, customers). Its tokens and database users go with it.
#[utoipa::path(delete, path = "/v1/customers/{name}", tag = "customers", params(("name" = String, Path)),
    responses((status = 204), (status = 409, body = ErrorBody)))]
pub async fn delete_customer(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    if caller.account.kind == AccountKind::Customer {
        return Err(ApiError::forbidden("customers cannot delete accounts"));
    }
    let a = visible::<Account>(&state, &caller, &name, "account").await?;
    if a.meta.id == caller.account_id {
        return Err(ApiError::in_use(
            "you cannot delete the account you are using",
        ));
    }
    let id = a.meta.id;
    let mut tx = state.store.begin(caller.actor()).await?;
    let domains = tx.children::<Domain>(id).await?.len();
    let databases = tx.children::<Database>(id).await?.len();
    let customers = tx.children::<Account>(id).await?.len();
    if domains + databases + customers > 0 {
        return Err(ApiError::in_use(format!(
            "`{name}` still owns {domains} domain(s), {databases} database(s) and {customers} customer account(s); delete them first"
        )));
    }
    tx.delete(Kind::Account, id).await?;
    tx.commit().await?;
    state.auth.purge_account(id);
    Ok(StatusCode::NO_CONTENT)
}
