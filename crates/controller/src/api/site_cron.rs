//! A site's cron jobs in the API (issue 15): `GET`/`POST /v1/sites/{domain}/cron`
//! and `DELETE /v1/sites/{domain}/cron/{id}`.
//!
//! The rules are `model::cron`'s (a 422 names `schedule` or `command` and the
//! rule; the message names the cron field); the number of jobs per site is the
//! owner's `cron_jobs` limit (409 `limit_reached`), read in the writing
//! transaction. The site is read through the caller's scope (another customer's
//! site is a 404). A site's first job places its cron runner through the one
//! placement path ([`crate::placement::cron`]), in the same transaction, under the
//! placement lock.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use model::cron::{CronCommand, CronJob, CronSchedule};
use model::entity::{Domain, Kind, Server, Site};
use model::limits::LimitField;
use model::WithField;
use proto::v1::{CreateCronJob, CronJobView, ErrorBody};
use scheduler::cron::CronPlaced;
use store::Stored;

use super::rfc3339;
use super::sites::path_site;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::state::AppState;

/// A job as shown, with its next run (from now) and the server running it.
fn view(job: &CronJob, server: Option<String>, now_minute: i64) -> CronJobView {
    let next_run = CronSchedule::parse(&job.schedule)
        .ok()
        .and_then(|s| s.next_after(now_minute))
        .and_then(|m| time::OffsetDateTime::from_unix_timestamp(m * 60).ok())
        .map(rfc3339);
    CronJobView {
        id: job.id,
        schedule: job.schedule.clone(),
        command: job.command.clone(),
        next_run,
        server,
    }
}

fn now_minute() -> i64 {
    time::OffsetDateTime::now_utc()
        .unix_timestamp()
        .div_euclid(60)
}

/// The name of the server running `site`'s cron, if any.
async fn holder_name(state: &AppState, site: &Site) -> ApiResult<Option<String>> {
    let Some(id) = site.cron_holder.and_then(|h| h.server) else {
        return Ok(None);
    };
    Ok(state
        .store
        .get::<Server>(store::Scope::All, id)
        .await?
        .map(|s| s.meta.name))
}

/// `GET /v1/sites/{domain}/cron`.
#[utoipa::path(get, path = "/v1/sites/{domain}/cron", tag = "sites", params(("domain" = String, Path)),
    responses((status = 200, body = Vec<CronJobView>), (status = 404, body = ErrorBody)))]
pub async fn list_cron(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Vec<CronJobView>>> {
    let s = path_site(&state, &caller, &name).await?;
    let server = holder_name(&state, &s.data).await?;
    let now = now_minute();
    Ok(Json(
        s.data
            .cron
            .iter()
            .map(|j| view(j, server.clone(), now))
            .collect(),
    ))
}

/// `POST /v1/sites/{domain}/cron`.
#[utoipa::path(post, path = "/v1/sites/{domain}/cron", tag = "sites", params(("domain" = String, Path)),
    request_body = CreateCronJob,
    responses((status = 201, body = CronJobView), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_cron(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<CreateCronJob>,
) -> ApiResult<(StatusCode, Json<CronJobView>)> {
    let s = path_site(&state, &caller, &name).await?;
    let schedule = CronSchedule::parse(&req.schedule).field("schedule")?;
    let command = CronCommand::parse(&req.command).field("command")?;
    let domain = state
        .store
        .get::<Domain>(store::Scope::All, s.data.domain)
        .await?
        .ok_or_else(|| ApiError::not_found("domain not found"))?;
    let snap = crate::placement::placement_snapshot(&state).await?;
    let memory = state.placement.lock().await;
    let mut tx = state.store.begin(caller.actor()).await?;
    let mut cur = tx
        .get::<Site>(s.meta.id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no site `{name}`")))?;
    let limits = match cur.meta.owner {
        Some(o) => crate::limits::limits_of(&mut tx, &state.config.default_plan, o).await?,
        None => state.config.default_plan,
    };
    if cur.data.cron.len() as u64 >= limits.cron_jobs {
        return Err(crate::limits::limit_reached(
            LimitField::CronJobs,
            format!(
                "the site has {} cron jobs, its plan allows {} (cron_jobs)",
                cur.data.cron.len(),
                limits.cron_jobs
            ),
        ));
    }
    let id = cur
        .data
        .cron_next_id
        .max(cur.data.cron.iter().map(|j| j.id).max().unwrap_or(0))
        + 1;
    let job = CronJob {
        id,
        schedule: schedule.to_string(),
        command: command.to_string(),
    };
    cur.data.cron_next_id = id;
    cur.data.cron.push(job.clone());
    let web = domain.data.placements.get(&model::Role::Web).copied();
    let placed: Vec<CronPlaced> = web
        .map(|cluster| CronPlaced {
            site: cur.meta.id,
            cluster,
            current: cur.data.cron_holder.and_then(|h| h.server),
            pinned: (cur.data.mode == model::PlacementMode::Single)
                .then_some(cur.data.active_server),
        })
        .into_iter()
        .collect();
    let owner = cur.meta.owner;
    let site_name = cur.meta.name.clone();
    tx.update(cur.meta.id, &cur.meta.name, cur.data).await?;
    tx.event(
        "site.cron_add",
        Kind::Site,
        Some((s.meta.id, &site_name)),
        owner,
        serde_json::json!({ "id": id, "schedule": job.schedule, "command": job.command }),
    )
    .await?;
    // The runner: placed with the first job, moved if its server is no longer
    // usable (the placement path's rule, written here under its lock).
    crate::placement::cron::write_placed(&memory, &state, &mut tx, &snap, &placed, "cron added")
        .await?;
    tx.commit().await?;
    drop(memory);
    state.changed();
    let updated = state
        .store
        .get::<Site>(store::Scope::All, s.meta.id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no site `{name}`")))?;
    let server = holder_name(&state, &updated.data).await?;
    Ok((StatusCode::CREATED, Json(view(&job, server, now_minute()))))
}

/// `DELETE /v1/sites/{domain}/cron/{id}`.
#[utoipa::path(delete, path = "/v1/sites/{domain}/cron/{id}", tag = "sites",
    params(("domain" = String, Path), ("id" = u32, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_cron(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((name, id)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let s: Stored<Site> = path_site(&state, &caller, &name).await?;
    let missing = || ApiError::not_found(format!("site `{name}` has no cron job `{id}`"));
    let id: u32 = id.parse().map_err(|_| missing())?;
    let mut tx = state.store.begin(caller.actor()).await?;
    let mut cur = tx.get::<Site>(s.meta.id).await?.ok_or_else(missing)?;
    let before = cur.data.cron.len();
    cur.data.cron.retain(|j| j.id != id);
    if cur.data.cron.len() == before {
        return Err(missing());
    }
    let owner = cur.meta.owner;
    let site_name = cur.meta.name.clone();
    tx.update(cur.meta.id, &cur.meta.name, cur.data).await?;
    tx.event(
        "site.cron_delete",
        Kind::Site,
        Some((s.meta.id, &site_name)),
        owner,
        serde_json::json!({ "id": id }),
    )
    .await?;
    tx.commit().await?;
    state.changed();
    Ok(StatusCode::NO_CONTENT)
}
