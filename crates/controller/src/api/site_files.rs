//! A site's files (issue 14) in the API: what its files server last reported
//! (usage, conflicts, SQLite databases) for `SiteView`, `GET …/conflicts`, and the
//! restore requests (`POST …/restore`, `GET …/restore/{id}`), which travel in the
//! files server's desired config until its report brings their result
//! ([`crate::site_reports`] records it).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use model::entity::{Domain, Kind, Site};
use model::limits::Limits;
use model::sitefiles::{restore_id, RestoreState, SitePath, SiteRestore, MAX_PENDING_RESTORES};
use model::{Id, PlacementMode, Role, WithField};
use proto::agent_v1::{FilesSiteStatus, RoleReport};
use proto::sitesync::Node;
use proto::v1::{CreateSiteRestore, ErrorBody, SiteConflictView, SiteRestoreView};
use store::{Scope, Stored};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::rfc3339;
use super::sites::path_site;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::state::AppState;

/// What the views of sites need beyond the store, read once per request: the
/// files servers' last reports, and the owners' limits as they are looked up.
pub struct FilesInfo {
    /// Each files server's cluster and last report.
    reports: Vec<(Id, Arc<RoleReport>)>,
    /// Limits in force by account, filled on demand.
    limits: HashMap<Id, Limits>,
    /// The web servers' PHP versions (issue 15).
    pub php: super::site_web::PhpInfo,
}

impl FilesInfo {
    /// The files servers' reports as the health monitor holds them now.
    pub async fn load(state: &AppState) -> ApiResult<Self> {
        let servers = state.store.all::<model::entity::Server>().await?;
        let php = super::site_web::PhpInfo::new(state, &servers);
        let reports = servers
            .into_iter()
            .filter(|s| s.data.role == Role::Files)
            .filter_map(|s| Some((s.data.cluster, state.health.report(s.meta.id)?)))
            .collect();
        Ok(Self {
            reports,
            limits: HashMap::new(),
            php,
        })
    }

    /// The latest status of `domain` from the servers of files cluster `cluster`
    /// (the one furthest along when several report it).
    pub fn status(&self, cluster: Option<Id>, domain: &str) -> Option<&FilesSiteStatus> {
        let cluster = cluster?;
        self.reports
            .iter()
            .filter(|(c, _)| *c == cluster)
            .filter_map(|(_, r)| match r.as_ref() {
                RoleReport::Files(f) => f.sites.iter().find(|s| s.domain == domain),
                RoleReport::Db(_) | RoleReport::Mail(_) | RoleReport::Web(_) => None,
            })
            .max_by_key(|s| s.seq)
    }

    /// The site disk limit (MiB, 0: none) of sites owned by `owner`.
    pub async fn quota_mb(&mut self, state: &AppState, owner: Option<Id>) -> ApiResult<u64> {
        let Some(owner) = owner else {
            return Ok(model::limits::site_quota_mb(&state.config.default_plan));
        };
        if let Some(l) = self.limits.get(&owner) {
            return Ok(model::limits::site_quota_mb(l));
        }
        let l = crate::limits::limits_now(&state.store, &state.config.default_plan, owner).await?;
        self.limits.insert(owner, l);
        Ok(model::limits::site_quota_mb(&l))
    }
}

/// The SQLite databases of a site that only work correctly in `single` mode: those
/// its files server reports now, else those last recorded on the site; none for a
/// `single` site.
pub fn sqlite_paths<'a>(site: &'a Site, status: Option<&'a FilesSiteStatus>) -> &'a [String] {
    if site.mode != PlacementMode::All {
        return &[];
    }
    match status {
        Some(s) => &s.sqlite_paths,
        None => &site.files.sqlite_paths,
    }
}

/// The warnings a site view shows (the one wording, also in the event).
pub fn warnings(site: &Site, status: Option<&FilesSiteStatus>) -> Vec<String> {
    sqlite_paths(site, status)
        .iter()
        .map(|p| sqlite_warning(p))
        .collect()
}

/// Why an SQLite database in an `all` site is a problem, and what to do.
pub fn sqlite_warning(path: &str) -> String {
    format!(
        "SQLite database `{path}` in an `all` site: SQLite needs file locks, which do not hold across web servers, so concurrent writes can corrupt it; use `--mode single` or a database server"
    )
}

/// The files cluster of a site's domain, if placed.
pub async fn files_cluster(state: &AppState, site: &Stored<Site>) -> ApiResult<Option<Id>> {
    Ok(state
        .store
        .get::<Domain>(Scope::All, site.data.domain)
        .await?
        .and_then(|d| d.data.placements.get(&Role::Files).copied()))
}

fn conflict_view(c: &proto::sitesync::ConflictRecord) -> SiteConflictView {
    let (kind, size) = match &c.node {
        Node::File { size, .. } => ("file", Some(*size)),
        Node::Dir { .. } => ("dir", None),
        Node::Symlink { .. } => ("symlink", None),
    };
    SiteConflictView {
        id: c.id.clone(),
        path: c.path.clone(),
        origin: c.origin.clone(),
        time: OffsetDateTime::from_unix_timestamp(c.time.secs)
            .map(rfc3339)
            .unwrap_or_default(),
        kind: kind.to_owned(),
        size,
    }
}

/// `GET /v1/sites/{domain}/conflicts`: losing versions kept by the files server.
#[utoipa::path(get, path = "/v1/sites/{domain}/conflicts", tag = "sites", params(("domain" = String, Path)),
    responses((status = 200, body = Vec<SiteConflictView>), (status = 404, body = ErrorBody)))]
pub async fn list_conflicts(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Vec<SiteConflictView>>> {
    let site = path_site(&state, &caller, &name).await?;
    let cluster = files_cluster(&state, &site).await?;
    let info = FilesInfo::load(&state).await?;
    Ok(Json(
        info.status(cluster, &site.meta.name)
            .map(|s| s.conflicts.iter().map(conflict_view).collect())
            .unwrap_or_default(),
    ))
}

fn restore_view(domain: &str, r: &SiteRestore) -> SiteRestoreView {
    let time = |t: i64| {
        OffsetDateTime::from_unix_timestamp(t)
            .map(rfc3339)
            .unwrap_or_default()
    };
    SiteRestoreView {
        id: r.id.clone(),
        domain: domain.to_owned(),
        path: r.path.to_string(),
        at: r.at.map(time),
        requested_at: time(r.requested_at),
        state: r.state.as_str().to_owned(),
        message: r.message.clone(),
    }
}

/// `POST /v1/sites/{domain}/restore`: ask the files server to bring a path back.
#[utoipa::path(post, path = "/v1/sites/{domain}/restore", tag = "sites", params(("domain" = String, Path)),
    request_body = CreateSiteRestore,
    responses((status = 202, body = SiteRestoreView), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_restore(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<CreateSiteRestore>,
) -> ApiResult<(StatusCode, Json<SiteRestoreView>)> {
    let site = path_site(&state, &caller, &name).await?;
    let path = SitePath::new(&req.path).field("path")?;
    let now = OffsetDateTime::now_utc();
    let at = match &req.at {
        Some(t) => {
            let t = OffsetDateTime::parse(t, &Rfc3339).map_err(|_| {
                ApiError::invalid(
                    "at",
                    "bad_time",
                    format!("`{t}` is not an RFC 3339 time, e.g. 2026-12-07T04:00:00Z"),
                )
            })?;
            if t > now {
                return Err(ApiError::invalid(
                    "at",
                    "in_future",
                    "the time is in the future; give a time the wanted version existed",
                ));
            }
            Some(t.unix_timestamp())
        }
        None => None,
    };
    if files_cluster(&state, &site).await?.is_none() {
        return Err(ApiError::infeasible(format!(
            "`{name}` has no files placement, so no files server keeps versions of its files"
        )));
    }
    let mut tx = state.store.begin(caller.actor()).await?;
    let mut cur = tx
        .get::<Site>(site.meta.id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no site `{name}`")))?;
    if cur.data.files.pending().count() >= MAX_PENDING_RESTORES {
        return Err(ApiError::conflict(
            "path",
            format!("{MAX_PENDING_RESTORES} restores of this site are still waiting for its files server; wait for them (`hostplane site restore` shows each)"),
        )
        .with_rule("too_many_pending"));
    }
    let restore = SiteRestore {
        id: restore_id(cur.meta.id, rand::random()),
        path,
        at,
        requested_at: now.unix_timestamp(),
        state: RestoreState::Pending,
        message: String::new(),
    };
    cur.data.files.restores.push(restore.clone());
    let owner = cur.meta.owner;
    tx.update(cur.meta.id, &cur.meta.name, cur.data).await?;
    tx.event(
        "site.restore_requested",
        Kind::Site,
        Some((site.meta.id, &site.meta.name)),
        owner,
        serde_json::json!({"id": restore.id, "path": restore.path, "at": restore.at}),
    )
    .await?;
    tx.commit().await?;
    state.changed();
    Ok((
        StatusCode::ACCEPTED,
        Json(restore_view(&site.meta.name, &restore)),
    ))
}

/// `GET /v1/sites/{domain}/restore/{id}`: where a restore stands.
#[utoipa::path(get, path = "/v1/sites/{domain}/restore/{id}", tag = "sites",
    params(("domain" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = SiteRestoreView), (status = 404, body = ErrorBody)))]
pub async fn get_restore(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((name, id)): ApiPath<(String, String)>,
) -> ApiResult<Json<SiteRestoreView>> {
    let site = path_site(&state, &caller, &name).await?;
    site.data
        .files
        .restores
        .iter()
        .find(|r| r.id == id)
        .map(|r| Json(restore_view(&site.meta.name, r)))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no restore `{id}` of `{name}` (finished ones are kept only for the last {})",
                model::sitefiles::KEPT_FINISHED_RESTORES
            ))
        })
}
