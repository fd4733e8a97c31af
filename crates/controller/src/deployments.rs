//! Site content deployed through the API (`hostplane site upload`), for customers
//! who do not use FTP.
//!
//! `PUT /v1/sites/{domain}/content` takes a tar archive of the site's folder (or a
//! zip or `.tar.gz`, rewritten as a tar; every entry checked for zip-slip, links
//! and zip bombs by [`crate::archive`]), streams it to
//! `<data_dir>/deployments/<blake3>.tar` (fsynced, file and directory, before the
//! answer) and records its id on the site. The desired config
//! of the domain's files servers lists the deployment; the files engine fetches it
//! from `GET /v1/agent/deployments/{id}` (mutual TLS, only a files server that holds
//! a site with that deployment), unpacks it safely and replaces the site's files with
//! it. From there it reaches the web servers like an FTP upload does (site-file replication).
//!
//! Deployments are content-addressed, so uploading the same folder twice is one
//! file. Each site keeps its last [`KEPT_DEPLOYMENTS`] archives (the current one
//! and the ones before it); [`collect`] removes every archive no site keeps, after
//! each upload, site and domain deletion, and at controller start (with upload
//! leftovers), fsyncing the directory. The archives an account keeps count against
//! its plan's `deployment_disk_mb`: an upload over it is refused with 413.
//! Known limit: the archive lives on the controller that received it; with several
//! controllers on one PostgreSQL an agent asking another controller gets 404 and
//! retries (it fails over between controllers).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::{Path as AxPath, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http_body_util::BodyExt as _;
use model::entity::{Deployment, Domain, Server, Site, KEPT_DEPLOYMENTS};
use model::limits::LimitField;
use model::Role;
use proto::v1::{DeploymentView, ErrorBody, KeptDeploymentView, SiteRollback};
use store::Scope;

use crate::agent_api::AgentIdentity;
use crate::api::sites::path_site;
use crate::archive;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Largest archive accepted (1 GiB).
pub const MAX_ARCHIVE_BYTES: u64 = 1 << 30;

/// Uploads hold it (shared) from moving their archive into place until their site
/// update is committed; [`collect`] holds it exclusively, so it never removes an
/// archive whose site is about to refer to it.
static COLLECTING: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Where deployments are kept.
pub fn dir(state: &AppState) -> PathBuf {
    state.config.data_dir.join("deployments")
}

/// Whether `id` looks like a deployment id (64 lowercase hex digits): the only
/// names ever joined to the deployments directory.
fn valid_id(id: &str) -> bool {
    id.len() == 64
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn io_error(e: std::io::Error) -> ApiError {
    ApiError::internal(format!("cannot store the archive: {e}"))
}

/// Stream `body` (at most `max` bytes, else `too_big`) into the deployments
/// directory, checked (and a zip or `.tar.gz` rewritten as a tar) by
/// [`crate::archive`]; returns `(id, size)` of the tar kept.
async fn receive(
    state: &AppState,
    body: Body,
    max: u64,
    too_big: &(dyn Fn(u64) -> ApiError + Send + Sync),
) -> ApiResult<(String, u64, tokio::sync::RwLockReadGuard<'static, ()>)> {
    let dir = dir(state);
    durable::create_private_dir(&dir).map_err(io_error)?;
    let tmp = dir.join(format!("upload-{}.part", rand::random::<u64>()));
    let result = receive_into(&tmp, body, max, too_big).await;
    let (id, size, kind) = match result {
        Ok(v) => v,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let (tmp, id, size) = match checked(tmp, id, size, kind, max).await {
        Ok(v) => v,
        Err(archive::ArchiveError::TooBig { .. }) => return Err(too_big(size)),
        Err(e) => return Err(archive_refused(e)),
    };
    let path = dir.join(format!("{id}.tar"));
    let guard = COLLECTING.read().await;
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(path.parent().unwrap_or(Path::new(".")))?.sync_all()
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(io_error)?;
    Ok((id, size, guard))
}

/// The API's answer to an archive [`crate::archive`] refuses.
fn archive_refused(e: archive::ArchiveError) -> ApiError {
    match e {
        archive::ArchiveError::Io(e) => io_error(e),
        archive::ArchiveError::Unsafe { .. } => ApiError::invalid(
            "body",
            "archive_entry",
            format!("the archive is refused: {e}"),
        ),
        archive::ArchiveError::Bomb(_) => ApiError::invalid(
            "body",
            "archive_bomb",
            format!("the archive is refused: {e}"),
        ),
        e => ApiError::invalid("body", "archive", format!("the archive is refused: {e}")),
    }
}

/// Check the upload at `tmp` (removed on error): a tar stays as it is; a zip or
/// `.tar.gz` becomes a tar of at most `max` bytes, with its own id and size.
async fn checked(
    tmp: PathBuf,
    id: String,
    size: u64,
    kind: archive::Kind,
    max: u64,
) -> Result<(PathBuf, String, u64), archive::ArchiveError> {
    tokio::task::spawn_blocking(move || {
        let result = (|| {
            if kind == archive::Kind::Tar {
                archive::check_tar(&tmp)?;
                return Ok((tmp.clone(), id, size));
            }
            let out = tmp.with_extension("tar-part");
            let limits = archive::Limits {
                room: max,
                uploaded: size,
            };
            archive::to_tar(&tmp, kind, &out, limits)?;
            let _ = std::fs::remove_file(&tmp);
            let mut hasher = blake3::Hasher::new();
            let mut f = std::fs::File::open(&out)?;
            let n = std::io::copy(&mut f, &mut hasher)?;
            Ok((out, hasher.finalize().to_hex().to_string(), n))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    })
    .await
    .unwrap_or_else(|e| Err(archive::ArchiveError::Io(std::io::Error::other(e))))
}

async fn receive_into(
    tmp: &Path,
    mut body: Body,
    max: u64,
    too_big: &(dyn Fn(u64) -> ApiError + Send + Sync),
) -> ApiResult<(String, u64, archive::Kind)> {
    let mut file = std::fs::File::create(tmp).map_err(io_error)?;
    let mut hasher = blake3::Hasher::new();
    let mut size: u64 = 0;
    let mut head: Vec<u8> = Vec::with_capacity(512);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::bad_request(format!("upload interrupted: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        size += data.len() as u64;
        if size > max {
            return Err(too_big(size));
        }
        if size > MAX_ARCHIVE_BYTES {
            return Err(ApiError::too_large(format!(
                "archives are at most {} MiB; deploy large sites by FTP",
                MAX_ARCHIVE_BYTES >> 20
            )));
        }
        if head.len() < 512 {
            let take = (512 - head.len()).min(data.len());
            head.extend_from_slice(&data[..take]);
        }
        hasher.update(&data);
        // Blocking writes of at most one frame: small, and the disk is local.
        file.write_all(&data).map_err(io_error)?;
    }
    let Some(kind) = archive::sniff(&head) else {
        return Err(ApiError::invalid(
            "body",
            "tar",
            "the body must be a tar (ustar or GNU format), a gzip-compressed tar or a zip archive of the site's folder; `hostplane site upload DOMAIN DIR` makes one",
        ));
    };
    file.sync_all().map_err(io_error)?;
    Ok((hasher.finalize().to_hex().to_string(), size, kind))
}

/// `PUT /v1/sites/{domain}/content`: replace the site's files with a tar, `.tar.gz`
/// or zip archive.
#[utoipa::path(put, path = "/v1/sites/{domain}/content", tag = "sites", params(("domain" = String, Path)),
    request_body(content = Vec<u8>, content_type = "application/x-tar"),
    responses((status = 200, body = DeploymentView), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    AxPath(name): AxPath<String>,
    body: Body,
) -> ApiResult<Json<DeploymentView>> {
    let site = path_site(&state, &caller, &name).await?;
    let domain = state
        .store
        .get::<Domain>(Scope::All, site.data.domain)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no site `{name}`")))?;
    if !domain.data.placements.contains_key(&Role::Files) {
        return Err(ApiError::infeasible(format!(
            "`{}` has no files placement, so there is no files server to hold its content",
            domain.meta.name
        )));
    }
    let owner = site.meta.owner;
    let default_plan = state.config.default_plan;
    // Room left before reading the body: what the account keeps, less this site's
    // oldest kept archive (it goes when the new one comes).
    let room = match owner {
        Some(o) => {
            let mut tx = state.store.begin(caller.actor()).await?;
            let limit = LimitField::DeploymentDiskMb
                .get(&crate::limits::limits_of(&mut tx, &default_plan, o).await?)
                .saturating_mul(1 << 20);
            let staying = kept_after(&site.data, None);
            let used = usage_with(&mut tx, o, site.meta.id, &staying).await?;
            drop(tx);
            limit.saturating_sub(used)
        }
        None => MAX_ARCHIVE_BYTES,
    };
    let too_big = |size: u64| {
        ApiError::too_large(format!(
            "this archive ({} MiB so far) does not fit in the account's deployment disk: {} MiB are left of its plan's limit (deployment_disk_mb); delete sites or ask your provider to raise the limit",
            size.div_ceil(1 << 20),
            room >> 20
        ))
        .with_field("deployment_disk_mb")
        .with_rule("plan_limit")
    };
    let (id, size, _collecting) =
        receive(&state, body, room.min(MAX_ARCHIVE_BYTES), &too_big).await?;
    let at = time::OffsetDateTime::now_utc();
    let mut tx = state.store.begin(caller.actor()).await?;
    let mut cur = tx
        .get::<Site>(site.meta.id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no site `{name}`")))?;
    let new = Deployment {
        id: id.clone(),
        size,
        at: at.unix_timestamp(),
    };
    let kept = kept_after(&cur.data, Some(new));
    if let Some(o) = owner {
        // Exact check in the transaction: concurrent uploads cannot overshoot.
        let limit = LimitField::DeploymentDiskMb
            .get(&crate::limits::limits_of(&mut tx, &default_plan, o).await?)
            .saturating_mul(1 << 20);
        if usage_with(&mut tx, o, cur.meta.id, &kept).await? > limit {
            drop(tx);
            drop(_collecting);
            collect(&state, false).await;
            return Err(too_big(size));
        }
    }
    let mut kept = kept.into_iter();
    cur.data.deployment = kept.next();
    cur.data.previous_deployments = kept.collect();
    tx.update(cur.meta.id, &cur.meta.name, cur.data).await?;
    tx.commit().await?;
    drop(_collecting);
    state.changed();
    collect(&state, false).await;
    Ok(Json(DeploymentView {
        domain: domain.meta.name,
        id,
        size,
        deployed_at: crate::api::rfc3339(at),
    }))
}

/// `GET /v1/sites/{domain}/deployments`: the site's kept deployments, the current
/// one first.
#[utoipa::path(get, path = "/v1/sites/{domain}/deployments", tag = "sites", params(("domain" = String, Path)),
    responses((status = 200, body = Vec<KeptDeploymentView>), (status = 404, body = ErrorBody)))]
pub async fn list_kept(
    State(state): State<AppState>,
    caller: Caller,
    AxPath(name): AxPath<String>,
) -> ApiResult<Json<Vec<KeptDeploymentView>>> {
    let site = path_site(&state, &caller, &name).await?;
    let current = site.data.deployment.iter().map(|d| (d, true));
    let earlier = site.data.previous_deployments.iter().map(|d| (d, false));
    Ok(Json(
        current
            .chain(earlier)
            .map(|(d, current)| KeptDeploymentView {
                id: d.id.clone(),
                size: d.size,
                deployed_at: deployed_at(d),
                current,
            })
            .collect(),
    ))
}

fn deployed_at(d: &Deployment) -> String {
    time::OffsetDateTime::from_unix_timestamp(d.at)
        .map(crate::api::rfc3339)
        .unwrap_or_default()
}

/// The kept deployment a rollback makes current: `id`, else the one before the
/// current one. 409 without a current or an earlier one, 404 for an id not kept.
fn rollback_target(site: &Site, domain: &str, id: Option<&str>) -> ApiResult<Deployment> {
    let Some(current) = &site.deployment else {
        return Err(ApiError::conflict(
            "id",
            format!(
                "`{domain}` has no deployment to roll back; deploy with `hostplane site upload`"
            ),
        )
        .with_rule("no_deployment"));
    };
    match id {
        Some(id) if id == current.id => Err(ApiError::conflict(
            "id",
            format!("deployment `{id}` is already the current one of `{domain}`"),
        )
        .with_rule("already_current")),
        Some(id) => site
            .previous_deployments
            .iter()
            .find(|d| d.id == id)
            .cloned()
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "`{domain}` keeps no deployment `{id}`; `hostplane site deployments {domain}` lists the kept ones"
                ))
            }),
        None => site.previous_deployments.first().cloned().ok_or_else(|| {
            ApiError::conflict(
                "id",
                format!("`{domain}` keeps no deployment before the current one (the last {KEPT_DEPLOYMENTS} uploads are kept)"),
            )
            .with_rule("no_earlier_deployment")
        }),
    }
}

/// `POST /v1/sites/{domain}/rollback`: make a kept earlier deployment the site's
/// content again (the files server deploys it like an upload: kept and local paths
/// stay); the current one becomes the newest earlier one.
#[utoipa::path(post, path = "/v1/sites/{domain}/rollback", tag = "sites", params(("domain" = String, Path)),
    request_body = SiteRollback,
    responses((status = 200, body = DeploymentView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn rollback(
    State(state): State<AppState>,
    caller: Caller,
    AxPath(name): AxPath<String>,
    crate::error::ApiJson(req): crate::error::ApiJson<SiteRollback>,
) -> ApiResult<Json<DeploymentView>> {
    let site = path_site(&state, &caller, &name).await?;
    let mut tx = state.store.begin(caller.actor()).await?;
    let mut cur = tx
        .get::<Site>(site.meta.id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no site `{name}`")))?;
    let target = rollback_target(&cur.data, &cur.meta.name, req.id.as_deref())?;
    let from = cur.data.deployment.as_ref().map(|d| d.id.clone());
    // The same archives stay kept, so the plan's deployment disk is unchanged.
    let mut kept = kept_after(&cur.data, Some(target.clone())).into_iter();
    cur.data.deployment = kept.next();
    cur.data.previous_deployments = kept.collect();
    let (id, owner) = (cur.meta.id, cur.meta.owner);
    tx.update(cur.meta.id, &cur.meta.name, cur.data).await?;
    tx.event(
        "site.rollback",
        model::entity::Kind::Site,
        Some((id, &site.meta.name)),
        owner,
        serde_json::json!({"from": from, "to": target.id}),
    )
    .await?;
    tx.commit().await?;
    state.changed();
    Ok(Json(DeploymentView {
        domain: site.meta.name.clone(),
        deployed_at: deployed_at(&target),
        id: target.id,
        size: target.size,
    }))
}

/// The deployments a site keeps, newest first: `new` (if any), then its current
/// one and the earlier ones, each archive once, at most [`KEPT_DEPLOYMENTS`]
/// (without `new`: the ones that stay when one more comes).
fn kept_after(site: &Site, new: Option<Deployment>) -> Vec<Deployment> {
    let cap = if new.is_some() {
        KEPT_DEPLOYMENTS
    } else {
        KEPT_DEPLOYMENTS - 1
    };
    let mut out: Vec<Deployment> = Vec::new();
    for d in new
        .into_iter()
        .chain(site.deployment.clone())
        .chain(site.previous_deployments.iter().cloned())
    {
        if out.len() < cap && !out.iter().any(|k| k.id == d.id) {
            out.push(d);
        }
    }
    out
}

/// Bytes of archives account `owner` keeps if site `site` keeps `kept` (each
/// archive counted once), read in `tx`.
async fn usage_with(
    tx: &mut store::Tx,
    owner: model::Id,
    site: model::Id,
    kept: &[Deployment],
) -> ApiResult<u64> {
    let mut seen = std::collections::HashSet::new();
    let mut total = 0u64;
    let sites = tx.owned::<Site>(owner).await?;
    let others = sites
        .iter()
        .filter(|s| s.meta.id != site)
        .flat_map(|s| s.data.deployment.iter().chain(&s.data.previous_deployments));
    for d in kept.iter().chain(others) {
        if seen.insert(d.id.clone()) {
            total = total.saturating_add(d.size);
        }
    }
    Ok(total)
}

/// Remove every archive no site keeps (and, with `leftovers`, interrupted uploads:
/// only at controller start, when no upload is under way); fsync the directory.
/// Errors are logged: a file left is retried next time.
pub async fn collect(state: &AppState, leftovers: bool) {
    let _exclusive = COLLECTING.write().await;
    let dir = dir(state);
    let sites = match state.store.all::<Site>().await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "deployment cleanup skipped: cannot read sites");
            return;
        }
    };
    let kept: std::collections::HashSet<String> = sites
        .iter()
        .flat_map(|s| s.data.deployment.iter().chain(&s.data.previous_deployments))
        .map(|d| d.id.clone())
        .collect();
    let result = tokio::task::spawn_blocking(move || remove_unkept(&dir, &kept, leftovers)).await;
    match result {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => tracing::info!(removed = n, "deployment archives no site keeps removed"),
        Ok(Err(e)) => tracing::warn!(error = %e, "deployment cleanup failed"),
        Err(e) => tracing::warn!(error = %e, "deployment cleanup failed"),
    }
}

/// Remove archives of `dir` not in `kept` (and `upload-*.part` with `leftovers`);
/// returns how many went.
pub fn remove_unkept(
    dir: &Path,
    kept: &std::collections::HashSet<String>,
    leftovers: bool,
) -> std::io::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let unkept = name
            .strip_suffix(".tar")
            .is_some_and(|id| valid_id(id) && !kept.contains(id));
        let leftover = leftovers && name.starts_with("upload-") && name.ends_with(".part");
        if unkept || leftover {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    if removed > 0 {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(removed)
}

/// `GET /v1/agent/deployments/{id}`: the archive, for a files server that holds a
/// site deployed with it.
pub async fn fetch(
    State(state): State<AppState>,
    agent: AgentIdentity,
    AxPath(id): AxPath<String>,
) -> ApiResult<Response> {
    if !valid_id(&id) {
        return Err(ApiError::not_found("no such deployment"));
    }
    if !may_fetch(&state, &agent.server, &id).await? {
        return Err(ApiError::not_found("no such deployment for this server"));
    }
    let path = dir(&state).join(format!("{id}.tar"));
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|_| ApiError::not_found("the archive is not on this controller"))?;
    let len = file.metadata().await.map_err(io_error)?.len();
    let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/x-tar".to_owned()),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// Whether `server` is a files server of a domain whose site has deployment `id`.
async fn may_fetch(state: &AppState, server: &store::Stored<Server>, id: &str) -> ApiResult<bool> {
    if server.data.role != Role::Files {
        return Ok(false);
    }
    for site in state.store.all::<Site>().await? {
        if site.data.deployment.as_ref().is_some_and(|d| d.id == id) {
            if let Some(d) = state
                .store
                .get::<Domain>(Scope::All, site.data.domain)
                .await?
            {
                if d.data.placements.get(&Role::Files) == Some(&server.data.cluster) {
                    return Ok(true);
                }
            }
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unkept_archives_and_leftovers_go() {
        let dir = tempfile::tempdir().unwrap();
        let keep = "a".repeat(64);
        let drop = "b".repeat(64);
        for name in [
            format!("{keep}.tar"),
            format!("{drop}.tar"),
            "upload-1.part".to_owned(),
            "notes.txt".to_owned(),
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let kept = std::collections::HashSet::from([keep.clone()]);
        // During operation, an upload in progress (`.part`) stays.
        assert_eq!(remove_unkept(dir.path(), &kept, false).unwrap(), 1);
        assert!(dir.path().join("upload-1.part").exists());
        // At start, it is a leftover.
        assert_eq!(remove_unkept(dir.path(), &kept, true).unwrap(), 1);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, vec![format!("{keep}.tar"), "notes.txt".to_owned()]);
        assert_eq!(
            remove_unkept(&dir.path().join("missing"), &kept, true).unwrap(),
            0
        );
    }

    #[test]
    fn a_site_keeps_three_distinct_archives_newest_first() {
        let d = |id: &str| Deployment {
            id: id.repeat(64),
            size: 1,
            at: 0,
        };
        let site = Site {
            web: Default::default(),
            domain: 1,
            aliases: Vec::new(),
            php: false,
            mode: model::PlacementMode::All,
            https_redirect: false,
            active_server: None,
            deployment: Some(d("c")),
            previous_deployments: vec![d("b"), d("a")],
            files: Default::default(),
            cron: Vec::new(),
            cron_next_id: 0,
            cron_holder: None,
        };
        let ids = |v: Vec<Deployment>| {
            v.into_iter()
                .map(|d| d.id[..1].to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(kept_after(&site, Some(d("d")))), ["d", "c", "b"]);
        assert_eq!(ids(kept_after(&site, Some(d("b")))), ["b", "c", "a"]);
        assert_eq!(ids(kept_after(&site, None)), ["c", "b"]);
    }
}
