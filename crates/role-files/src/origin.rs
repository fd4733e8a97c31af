//! The content-sync origin: HTTPS with client certificates required (the controller CA),
//! serving the sites of this files server to web servers.
//!
//! | request | answer |
//! | --- | --- |
//! | `GET /v1/sync/changes?after=N[&wait=S]` | `{"version":V}` as soon as V != N (a restarted origin counts again from 1), or after S seconds (default 25, at most 60) |
//! | `GET /v1/sync/<domain>/manifest` | [`Manifest`] JSON |
//! | `GET /v1/sync/<domain>/file?path=P` | the bytes of file P (opened beneath the site, no symlinks) |
//!
//! The same listener serves the site-file hub under [`sitesync::transport::PREFIX`]
//! (`sitesync::transport::server::handle`, one implementation); the routes above are
//! the legacy content sync, served from the hub's trees until every web server runs a
//! replica.
//!
//! A client (identified by its certificate's common name, the agent's server name)
//! reaches only the sites the plan's `sync_clients` grants it; any other site, and any
//! site not held here, is a 404. A periodic rescan
//! ([`run_rescan`]) notices changes made outside FTP and bumps the change counter.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::TryStreamExt;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use rustls::ServerConfig;
use tokio::net::TcpListener;

use crate::changes::Changes;
use crate::manifest::{build_files, HashCache};
use crate::plan::check_domain;
use crate::safe_fs::open_file_beneath;
use proto::manifest::{check_path, FileEntry, Manifest};
use sitesync::hub::Hub;
use sitesync::transport::mtls::serve_mutual_tls;

/// Path prefix of every sync request.
pub const SYNC_PREFIX: &str = "/v1/sync/";

type Body = BoxBody<Bytes, std::io::Error>;

/// What the origin serves; shared with the engine (which swaps `sites` on apply).
#[derive(Debug)]
pub struct OriginState {
    hub: Arc<Hub>,
    sites: RwLock<Arc<BTreeSet<String>>>,
    clients: RwLock<Arc<BTreeMap<String, BTreeSet<String>>>>,
    changes: Changes,
    cache: HashCache,
}

impl OriginState {
    /// Serve the hub's site trees, waking long-polls through `changes`.
    pub fn new(hub: Arc<Hub>, changes: Changes) -> Self {
        Self {
            hub,
            sites: RwLock::new(Arc::new(BTreeSet::new())),
            clients: RwLock::new(Arc::new(BTreeMap::new())),
            changes,
            cache: HashCache::default(),
        }
    }

    /// Replace the set of served sites (a change counts as a content change).
    pub fn set_sites(&self, sites: BTreeSet<String>) {
        let mut cur = self
            .sites
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if **cur != sites {
            *cur = Arc::new(sites);
            drop(cur);
            self.changes.bump();
        }
    }

    /// Replace who may pull what: client name → sites.
    pub fn set_clients(&self, clients: BTreeMap<String, BTreeSet<String>>) {
        *self
            .clients
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(clients);
    }

    /// Whether the client called `client` may pull `domain` (held here and granted).
    pub fn may_pull(&self, client: Option<&str>, domain: &str) -> bool {
        let Some(client) = client else { return false };
        self.sites().contains(domain)
            && self
                .clients
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(client)
                .is_some_and(|s| s.contains(domain))
    }

    /// The served sites.
    pub fn sites(&self) -> Arc<BTreeSet<String>> {
        self.sites
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The site-file hub whose trees are served.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Opens the tree of `domain` (a real directory, never through a symlink).
    fn open_tree(&self, domain: &str) -> std::io::Result<std::fs::File> {
        sitesync::safe::open_root(&self.hub.tree_path(domain))
    }

    /// The change counter.
    pub fn changes(&self) -> &Changes {
        &self.changes
    }

    /// The manifest of `domain` (blocking: walks the folder).
    pub fn manifest(&self, domain: &str) -> std::io::Result<Manifest> {
        let version = self.changes.current();
        let site = self.open_tree(domain)?;
        let files = build_files(domain, &site, &self.cache)?;
        Ok(Manifest {
            domain: domain.to_string(),
            version,
            files,
        })
    }
}

fn text(status: StatusCode, msg: &str) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from(format!("{msg}\n")))
            .map_err(|e: Infallible| match e {})
            .boxed(),
    );
    *r.status_mut() = status;
    r
}

fn json<T: serde::Serialize>(v: &T) -> Response<Body> {
    match serde_json::to_vec(v) {
        Ok(b) => {
            let mut r = Response::new(
                Full::new(Bytes::from(b))
                    .map_err(|e: Infallible| match e {})
                    .boxed(),
            );
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            r
        }
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode"),
    }
}

/// Decode `a=1&b=x%2Fy` into a map (the last value of a key wins).
pub fn parse_query(q: &str) -> BTreeMap<String, String> {
    q.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let dec = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (dec(k), dec(v))
        })
        .collect()
}

async fn handle(
    state: Arc<OriginState>,
    client: Option<Arc<str>>,
    req: Request<Incoming>,
) -> Response<Body> {
    if req.uri().path().starts_with(sitesync::transport::PREFIX) {
        let hub = state.hub.clone();
        return sitesync::transport::server::handle(hub, client, req)
            .await
            .map(|b| b.map_err(|e: Infallible| match e {}).boxed());
    }
    if req.method() != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET");
    }
    let query = parse_query(req.uri().query().unwrap_or(""));
    let Some(rest) = req.uri().path().strip_prefix(SYNC_PREFIX) else {
        return text(StatusCode::NOT_FOUND, "not found");
    };
    if rest == "changes" {
        return changes(&state, &query).await;
    }
    let Some((domain, what)) = rest.split_once('/') else {
        return text(StatusCode::NOT_FOUND, "not found");
    };
    if check_domain(domain).is_err() || !state.may_pull(client.as_deref(), domain) {
        return text(StatusCode::NOT_FOUND, "no such site");
    }
    match what {
        "manifest" => manifest(state, domain.to_string()).await,
        "file" => {
            file(
                state,
                domain.to_string(),
                query.get("path").cloned().unwrap_or_default(),
            )
            .await
        }
        _ => text(StatusCode::NOT_FOUND, "not found"),
    }
}

async fn changes(state: &OriginState, query: &BTreeMap<String, String>) -> Response<Body> {
    let after: u64 = query.get("after").and_then(|v| v.parse().ok()).unwrap_or(0);
    let wait: u64 = query
        .get("wait")
        .and_then(|v| v.parse().ok())
        .unwrap_or(25)
        .min(60);
    let version = state
        .changes
        .wait_after(after, Duration::from_secs(wait))
        .await;
    json(&serde_json::json!({ "version": version }))
}

async fn manifest(state: Arc<OriginState>, domain: String) -> Response<Body> {
    match tokio::task::spawn_blocking(move || state.manifest(&domain)).await {
        Ok(Ok(m)) => json(&m),
        // No folder (yet): not the same as an empty site, so clients keep what they have.
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            text(StatusCode::NOT_FOUND, "no content for this site")
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "manifest failed");
            text(StatusCode::INTERNAL_SERVER_ERROR, "manifest failed")
        }
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "manifest failed"),
    }
}

async fn file(state: Arc<OriginState>, domain: String, path: String) -> Response<Body> {
    if !check_path(&path) {
        return text(StatusCode::BAD_REQUEST, "bad path");
    }
    let opened = tokio::task::spawn_blocking(move || {
        let site = state.open_tree(&domain)?;
        let f = open_file_beneath(&site, Path::new(&path))?;
        let len = f.metadata()?.len();
        Ok::<_, std::io::Error>((f, len))
    })
    .await;
    match opened {
        Ok(Ok((f, len))) => {
            let mut file = tokio::fs::File::from_std(f);
            file.set_max_buf_size(1 << 20);
            let stream =
                tokio_util::io::ReaderStream::with_capacity(file, 1 << 20).map_ok(Frame::data);
            let mut r = Response::new(BodyExt::boxed(StreamBody::new(stream)));
            r.headers_mut()
                .insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(len));
            r
        }
        _ => text(StatusCode::NOT_FOUND, "no such file"),
    }
}

/// Serve the origin on `listener` with `tls` until `shutdown` resolves.
pub async fn run_origin(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    state: Arc<OriginState>,
    shutdown: impl Future<Output = ()>,
) {
    let handler = move |client, req| handle(state.clone(), client, req);
    serve_mutual_tls(listener, tls, "sync origin", handler, shutdown).await;
}

/// Every `period`, rebuild the manifests of all served sites and bump the change counter
/// when one differs from the previous pass (changes made outside FTP).
pub async fn run_rescan(
    state: Arc<OriginState>,
    period: Duration,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut last: BTreeMap<String, Vec<FileEntry>> = BTreeMap::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(period) => {}
        }
        let st = state.clone();
        let now = tokio::task::spawn_blocking(move || {
            st.sites()
                .iter()
                .map(|d| {
                    (
                        d.clone(),
                        st.manifest(d).map(|m| m.files).unwrap_or_default(),
                    )
                })
                .collect::<BTreeMap<_, _>>()
        })
        .await
        .unwrap_or_default();
        if !last.is_empty() && now != last {
            state.changes.bump();
        }
        last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let q = parse_query("path=a%2Fb%20c.txt&after=3&x");
        assert_eq!(q["path"], "a/b c.txt");
        assert_eq!(q["after"], "3");
        assert_eq!(q["x"], "");
    }
}
