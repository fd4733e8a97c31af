//! Site content deployed through the API (`hostplane site upload`), for customers
//! who do not use FTP.
//!
//! `PUT /v1/sites/{domain}/content` takes a tar archive of the site's folder,
//! streams it to `<data_dir>/deployments/<blake3>.tar` (fsynced, file and
//! directory, before the answer) and records its id on the site. The desired config
//! of the domain's files servers lists the deployment; the files engine fetches it
//! from `GET /v1/agent/deployments/{id}` (mutual TLS, only a files server that holds
//! a site with that deployment), unpacks it safely and replaces the site's files with
//! it. From there it reaches the web servers like an FTP upload does (content sync).
//!
//! Deployments are content-addressed, so uploading the same folder twice is one
//! file. A file no site refers to any more is removed after the next upload.
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
use model::entity::{Deployment, Domain, Server, Site};
use model::Role;
use proto::v1::{DeploymentView, ErrorBody};
use store::Scope;

use crate::agent_api::AgentIdentity;
use crate::api::sites::path_site;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Largest archive accepted (1 GiB).
pub const MAX_ARCHIVE_BYTES: u64 = 1 << 30;

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

/// Stream `body` into the deployments directory; returns `(id, size)`.
async fn receive(state: &AppState, body: Body) -> ApiResult<(String, u64)> {
    let dir = dir(state);
    durable::create_private_dir(&dir).map_err(io_error)?;
    let tmp = dir.join(format!("upload-{}.part", rand::random::<u64>()));
    let result = receive_into(&tmp, body).await;
    let (id, size) = match result {
        Ok(v) => v,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let path = dir.join(format!("{id}.tar"));
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(path.parent().unwrap_or(Path::new(".")))?.sync_all()
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(io_error)?;
    Ok((id, size))
}

async fn receive_into(tmp: &Path, mut body: Body) -> ApiResult<(String, u64)> {
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
    if head.len() < 512 || head.get(257..262) != Some(b"ustar".as_slice()) {
        return Err(ApiError::invalid(
            "body",
            "tar",
            "the body must be a tar archive of the site's folder (ustar or GNU format); `hostplane site upload DOMAIN DIR` makes one",
        ));
    }
    file.sync_all().map_err(io_error)?;
    Ok((hasher.finalize().to_hex().to_string(), size))
}

/// `PUT /v1/sites/{domain}/content`: replace the site's files with a tar archive.
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
    let (id, size) = receive(&state, body).await?;
    let at = time::OffsetDateTime::now_utc();
    let mut tx = state.store.begin(caller.actor()).await?;
    let mut cur = tx
        .get::<Site>(site.meta.id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no site `{name}`")))?;
    let previous = cur.data.deployment.take().map(|d| d.id);
    cur.data.deployment = Some(Deployment {
        id: id.clone(),
        size,
        at: at.unix_timestamp(),
    });
    let keys = crate::api::sites::site_keys(&cur.data, &cur.meta.name);
    tx.update(cur.meta.id, &cur.meta.name, keys, cur.data)
        .await?;
    tx.commit().await?;
    state.changed();
    if let Some(old) = previous.filter(|o| *o != id) {
        remove_if_unused(&state, &old).await;
    }
    Ok(Json(DeploymentView {
        domain: domain.meta.name,
        id,
        size,
        deployed_at: crate::api::rfc3339(at),
    }))
}

/// Delete a deployment file no site refers to.
async fn remove_if_unused(state: &AppState, id: &str) {
    if !valid_id(id) {
        return;
    }
    let used = match state.store.all::<Site>().await {
        Ok(sites) => sites
            .iter()
            .any(|s| s.data.deployment.as_ref().is_some_and(|d| d.id == id)),
        Err(_) => true,
    };
    if !used {
        let _ = std::fs::remove_file(dir(state).join(format!("{id}.tar")));
    }
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
