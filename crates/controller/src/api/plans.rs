//! `/v1/plans`: named sets of limits defined by admins and resellers, and the plan
//! and limit overrides of one account (`PATCH /v1/customers/{name}` calls
//! [`apply_account_limits`]).
//!
//! A reseller's plans, and the plans and overrides it gives its customers, never
//! exceed the reseller's own limits (each value at most the reseller's). Customers
//! do not list plans: their own limits are in `GET /v1/customers/{name}`.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use model::entity::{Account, Kind, Plan};
use model::limits::{exceeds, LimitField, LimitOverrides, Limits};
use model::{AccountKind, Id, Slug, WithField};
use proto::v1::{
    CreatePlan, ErrorBody, LimitsPatch, ListParams, Page, PlanView, UpdateCustomer, UpdatePlan,
};
use store::{NewObject, Scope, Stored, Tx};

use super::{list_page, rfc3339, text_field, Names, Paging};
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::limits::{account_limits, warn_over_limits};
use crate::state::AppState;

fn forbid_customers(caller: &Caller) -> ApiResult<()> {
    if caller.account.kind == AccountKind::Customer {
        return Err(ApiError::forbidden(
            "plans are managed by your provider; your limits are shown by `customer show`",
        ));
    }
    Ok(())
}

/// Apply `patch` over `base`, checking each given value's range (`field.<name>`).
fn patch_limits(base: Limits, patch: &LimitsPatch, field: &str) -> ApiResult<Limits> {
    let overrides: LimitOverrides = (*patch).into();
    let mut out = base;
    for f in LimitField::ALL {
        if let Some(v) = f.get_override(&overrides) {
            check_range(f, v, field)?;
            *f.get_mut(&mut out) = v;
        }
    }
    Ok(out)
}

fn check_range(f: LimitField, v: u64, field: &str) -> ApiResult<()> {
    let r = f.range();
    if !r.contains(&v) {
        return Err(ApiError::invalid(
            format!("{field}.{f}"),
            "out_of_range",
            format!("{f} is {} to {}", r.start(), r.end()),
        ));
    }
    Ok(())
}

/// 422 when a reseller gives more than it has.
fn within_ceiling(limits: &Limits, ceiling: Option<&Limits>, field: &str) -> ApiResult<()> {
    if let Some(c) = ceiling {
        if let Some(f) = exceeds(limits, c) {
            return Err(ApiError::invalid(
                format!("{field}.{f}"),
                "above_reseller_limit",
                format!(
                    "{f} can be at most {} (your own limit); ask your provider to raise it",
                    f.get(c)
                ),
            ));
        }
    }
    Ok(())
}

/// The reseller's own limits when the caller is a reseller (the ceiling of what
/// it gives), `None` for admins.
async fn ceiling(tx: &mut Tx, state: &AppState, caller: &Caller) -> ApiResult<Option<Limits>> {
    if caller.account.kind != AccountKind::Reseller {
        return Ok(None);
    }
    Ok(Some(
        crate::limits::limits_of(tx, &state.config.default_plan, caller.account_id).await?,
    ))
}

/// How many accounts use each plan.
async fn plan_usage(state: &AppState) -> ApiResult<HashMap<Id, u64>> {
    let mut out = HashMap::new();
    for a in state.store.all::<Account>().await? {
        if let Some(p) = a.data.plan {
            *out.entry(p).or_default() += 1;
        }
    }
    Ok(out)
}

async fn plan_view(names: &mut Names<'_>, p: &Stored<Plan>, accounts: u64) -> ApiResult<PlanView> {
    Ok(PlanView {
        name: p.meta.name.clone(),
        reseller: match p.meta.owner {
            Some(r) => Some(names.account(r).await?),
            None => None,
        },
        description: p.data.description.clone(),
        limits: p.data.limits.into(),
        accounts,
        created_at: rfc3339(p.meta.created_at),
    })
}

/// `POST /v1/plans` (admins; resellers, within their own limits).
#[utoipa::path(post, path = "/v1/plans", tag = "customers", request_body = CreatePlan,
    responses((status = 201, body = PlanView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_plan(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreatePlan>,
) -> ApiResult<(StatusCode, Json<PlanView>)> {
    forbid_customers(&caller)?;
    let name = Slug::new(&req.name).field("name")?;
    let description = text_field(req.description, "description", 1000)?.unwrap_or_default();
    let mut tx = state.store.begin(caller.actor()).await?;
    let ceiling = ceiling(&mut tx, &state, &caller).await?;
    let mut base = state.config.default_plan;
    if let Some(c) = &ceiling {
        for f in LimitField::ALL {
            let v = f.get(&base).min(f.get(c));
            *f.get_mut(&mut base) = v;
        }
    }
    let limits = patch_limits(base, &req.limits, "limits")?;
    within_ceiling(&limits, ceiling.as_ref(), "limits")?;
    let owner = (caller.account.kind == AccountKind::Reseller).then_some(caller.account_id);
    let created = tx
        .create(NewObject {
            name: name.to_string(),
            owner,
            parent: owner,
            data: Plan {
                name,
                description,
                limits,
            },
        })
        .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(plan_view(&mut Names::new(&state.store), &created, 0).await?),
    ))
}

/// `GET /v1/plans`: admins see every plan, resellers their own.
#[utoipa::path(get, path = "/v1/plans", tag = "customers", params(ListParams),
    responses((status = 200, body = Page<PlanView>), (status = 403, body = ErrorBody)))]
pub async fn list_plans(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<Page<PlanView>>> {
    forbid_customers(&caller)?;
    let paging = Paging::new(params.cursor.as_deref(), params.limit)?;
    let (rows, next) = list_page::<Plan>(&state, caller.scope(), paging, None, None).await?;
    let usage = plan_usage(&state).await?;
    let mut names = Names::new(&state.store);
    let mut items = Vec::with_capacity(rows.len());
    for p in &rows {
        let n = usage.get(&p.meta.id).copied().unwrap_or(0);
        items.push(plan_view(&mut names, p, n).await?);
    }
    Ok(Json(Page {
        items,
        next_cursor: next,
    }))
}

async fn path_plan(state: &AppState, caller: &Caller, name: &str) -> ApiResult<Stored<Plan>> {
    forbid_customers(caller)?;
    super::visible::<Plan>(state, caller, name, "plan").await
}

/// `GET /v1/plans/{name}`.
#[utoipa::path(get, path = "/v1/plans/{name}", tag = "customers", params(("name" = String, Path)),
    responses((status = 200, body = PlanView), (status = 404, body = ErrorBody)))]
pub async fn get_plan(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<PlanView>> {
    let p = path_plan(&state, &caller, &name).await?;
    let n = plan_usage(&state)
        .await?
        .get(&p.meta.id)
        .copied()
        .unwrap_or(0);
    Ok(Json(plan_view(&mut Names::new(&state.store), &p, n).await?))
}

/// `PATCH /v1/plans/{name}`: accounts on the plan now using more than a lowered
/// limit keep what they have and get a `limit.warning` event.
#[utoipa::path(patch, path = "/v1/plans/{name}", tag = "customers", params(("name" = String, Path)),
    request_body = UpdatePlan, responses((status = 200, body = PlanView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_plan(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<UpdatePlan>,
) -> ApiResult<Json<PlanView>> {
    let p = path_plan(&state, &caller, &name).await?;
    if p.meta.owner.is_none() && !caller.is_admin() {
        return Err(ApiError::forbidden("only admins change admin plans"));
    }
    let description = text_field(req.description, "description", 1000)?;
    let users: Vec<Id> = state
        .store
        .all::<Account>()
        .await?
        .into_iter()
        .filter(|a| a.data.plan == Some(p.meta.id))
        .map(|a| a.meta.id)
        .collect();
    let mut tx = state.store.begin(caller.actor()).await?;
    let ceiling = ceiling(&mut tx, &state, &caller).await?;
    let mut cur = tx
        .get::<Plan>(p.meta.id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no plan `{name}`")))?;
    if let Some(d) = description {
        cur.data.description = d;
    }
    cur.data.limits = patch_limits(cur.data.limits, &req.limits, "limits")?;
    within_ceiling(&cur.data.limits, ceiling.as_ref(), "limits")?;
    let updated = tx.update(cur.meta.id, &cur.meta.name, cur.data).await?;
    for id in &users {
        if let Some(a) = tx.get::<Account>(*id).await? {
            warn_over_limits(&mut tx, &state.config.default_plan, &a).await?;
        }
    }
    tx.commit().await?;
    let n = users.len() as u64;
    Ok(Json(
        plan_view(&mut Names::new(&state.store), &updated, n).await?,
    ))
}

/// `DELETE /v1/plans/{name}`: refused while an account uses it.
#[utoipa::path(delete, path = "/v1/plans/{name}", tag = "customers", params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_plan(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let p = path_plan(&state, &caller, &name).await?;
    if p.meta.owner.is_none() && !caller.is_admin() {
        return Err(ApiError::forbidden("only admins delete admin plans"));
    }
    let mut tx = state.store.begin(caller.actor()).await?;
    let users = state
        .store
        .all::<Account>()
        .await?
        .iter()
        .filter(|a| a.data.plan == Some(p.meta.id))
        .count();
    if users > 0 {
        return Err(ApiError::in_use(format!(
            "plan `{name}` is used by {users} account(s); move them to another plan first"
        )));
    }
    tx.delete(Kind::Plan, p.meta.id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Whether `req` changes an account's plan, limits or cluster rights.
pub fn touches_limits(req: &UpdateCustomer) -> bool {
    req.plan.is_some()
        || req.limits.is_some()
        || req.clear_limits.is_some()
        || req.may_choose_clusters.is_some()
}

/// Apply the plan, limit overrides and `may_choose_clusters` of a customer update to
/// `cur` (inside `tx`), with the rights checks: admins and resellers only, never on
/// their own account, a reseller only its own plans and within its own limits.
/// Records `limit.warning` events when the account now uses more than it may.
pub async fn apply_account_limits(
    tx: &mut Tx,
    state: &AppState,
    caller: &Caller,
    req: &UpdateCustomer,
    cur: &mut Stored<Account>,
) -> ApiResult<()> {
    if !touches_limits(req) {
        return Ok(());
    }
    let field = if req.plan.is_some() {
        "plan"
    } else if req.may_choose_clusters.is_some() {
        "may_choose_clusters"
    } else {
        "limits"
    };
    if caller.account.kind == AccountKind::Customer || cur.meta.id == caller.account_id {
        return Err(
            ApiError::forbidden("an account's plan and limits are set by its provider")
                .with_field(field),
        );
    }
    if let Some(flag) = req.may_choose_clusters {
        if !caller.is_admin() {
            return Err(
                ApiError::forbidden("only admins let resellers choose clusters")
                    .with_field("may_choose_clusters"),
            );
        }
        if flag && cur.data.kind != AccountKind::Reseller {
            return Err(ApiError::invalid(
                "may_choose_clusters",
                "resellers_only",
                "only reseller accounts can be allowed to choose clusters",
            ));
        }
        cur.data.may_choose_clusters = flag;
    }
    if let Some(plan) = req.plan.as_deref() {
        cur.data.plan = if plan.is_empty() {
            None
        } else {
            let p = tx.get_by_name::<Plan>(plan).await?;
            let allowed = p.filter(|p| match caller.account.kind {
                AccountKind::Admin => true,
                _ => p.meta.owner == Some(caller.account_id),
            });
            let Some(p) = allowed else {
                return Err(ApiError::invalid(
                    "plan",
                    "unknown_plan",
                    format!("there is no plan `{plan}` you can assign"),
                ));
            };
            Some(p.meta.id)
        };
    }
    if let Some(names) = &req.clear_limits {
        for n in names {
            let f = LimitField::ALL
                .into_iter()
                .find(|f| f.as_str() == n)
                .ok_or_else(|| {
                    ApiError::invalid(
                        "clear_limits",
                        "unknown_limit",
                        format!("`{n}` is not a limit"),
                    )
                })?;
            *f.override_mut(&mut cur.data.limits) = None;
        }
    }
    if let Some(patch) = &req.limits {
        let o: LimitOverrides = (*patch).into();
        for f in LimitField::ALL {
            if let Some(v) = f.get_override(&o) {
                check_range(f, v, "limits")?;
                *f.override_mut(&mut cur.data.limits) = Some(v);
            }
        }
    }
    let ceiling = ceiling(tx, state, caller).await?;
    let effective = account_limits(tx, &state.config.default_plan, &cur.data).await?;
    within_ceiling(&effective, ceiling.as_ref(), "limits")?;
    Ok(())
}

/// The plan name and limits in force of an account, for its view.
pub async fn account_limit_view(
    state: &AppState,
    a: &Account,
) -> ApiResult<(Option<String>, Limits)> {
    let (name, plan) = match a.plan {
        Some(id) => match state.store.get::<Plan>(Scope::All, id).await? {
            Some(p) => (Some(p.meta.name), p.data.limits),
            None => (None, state.config.default_plan),
        },
        None => (None, state.config.default_plan),
    };
    Ok((name, model::limits::effective_limits(&plan, &a.limits)))
}
