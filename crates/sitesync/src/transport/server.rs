//! The hub's HTTPS server: hyper over tokio-rustls, client certificate required; every
//! request runs the hub's (blocking, fsyncing) work on a blocking thread.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use rustls::ServerConfig;
use tokio::net::TcpListener;

use super::mtls::serve_mutual_tls;
use super::{BlobStateBody, MAX_CHUNK, PREFIX};
use crate::api::{BlobState, HubError};
use crate::hub::Hub;
use proto::sitesync::{LogRead, WaitAnswer};

type Body = Full<Bytes>;

fn text(status: StatusCode, msg: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(format!("{msg}\n"))));
    *r.status_mut() = status;
    r
}

fn json<T: serde::Serialize>(v: &T) -> Response<Body> {
    match serde_json::to_vec(v) {
        Ok(b) => {
            let mut r = Response::new(Full::new(Bytes::from(b)));
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            r
        }
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode"),
    }
}

fn error(e: &HubError) -> Response<Body> {
    let status = match e {
        HubError::NotFound(_) => StatusCode::NOT_FOUND,
        HubError::Full(_) => StatusCode::INSUFFICIENT_STORAGE,
        HubError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        HubError::Refused(_) => StatusCode::UNPROCESSABLE_ENTITY,
    };
    text(status, &e.to_string())
}

fn query(q: &str) -> BTreeMap<String, u64> {
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
        .collect()
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, HubError> + Send + 'static,
) -> Result<T, HubError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|_| Err(HubError::Refused("hub task failed".into())))
}

/// Answers one request under [`PREFIX`] from `client` (its certificate's name): the one
/// implementation of the hub's routes, used by [`run_hub_server`] and by a server that
/// shares its listener with other routes (role-files' sync port).
pub async fn handle(
    hub: Arc<Hub>,
    client: Option<Arc<str>>,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let q = query(req.uri().query().unwrap_or(""));
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return text(StatusCode::NOT_FOUND, "not found");
    };
    let Some(client) = client else {
        return text(StatusCode::FORBIDDEN, "no client certificate");
    };
    if rest == "wait" {
        return wait_route(hub, &client, req).await;
    }
    let Some((site, what)) = rest.split_once('/') else {
        return text(StatusCode::NOT_FOUND, "not found");
    };
    let (site, what) = (site.to_string(), what.to_string());
    if !hub.may_sync(&client, &site) {
        return text(StatusCode::FORBIDDEN, "this server may not sync this site");
    }
    let method = req.method().clone();
    let body = match Limited::new(req.into_body(), MAX_CHUNK).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return text(StatusCode::PAYLOAD_TOO_LARGE, "body too large"),
    };
    let parts: Vec<&str> = what.split('/').collect();
    match (method, parts.as_slice()) {
        (Method::POST, ["push"]) => {
            let change = match proto::sitesync::parse_change(&body) {
                Ok(c) => c,
                Err(e) => return text(StatusCode::BAD_REQUEST, &e.to_string()),
            };
            match blocking(move || hub.push(&site, &client, &change)).await {
                Ok(o) => json(&o),
                Err(e) => error(&e),
            }
        }
        (Method::GET, ["blob", hash, "state"]) => {
            let hash = hash.to_string();
            match blocking(move || hub.blob_received(&site, &hash)).await {
                Ok(BlobState::Complete) => json(&BlobStateBody {
                    complete: true,
                    received: 0,
                }),
                Ok(BlobState::Partial(n)) => json(&BlobStateBody {
                    complete: false,
                    received: n,
                }),
                Err(e) => error(&e),
            }
        }
        (Method::PUT, ["blob", hash]) => {
            let (Some(total), Some(offset)) = (q.get("total").copied(), q.get("offset").copied())
            else {
                return text(StatusCode::BAD_REQUEST, "total and offset needed");
            };
            let hash = hash.to_string();
            match blocking(move || hub.put_chunk(&site, &hash, total, offset, &body)).await {
                Ok(()) => text(StatusCode::NO_CONTENT, ""),
                Err(e) => error(&e),
            }
        }
        (Method::GET, ["blob", hash]) => {
            let offset = q.get("offset").copied().unwrap_or(0);
            let max = q
                .get("max")
                .map_or(MAX_CHUNK, |m| usize::try_from(*m).unwrap_or(MAX_CHUNK))
                .min(MAX_CHUNK);
            let hash = hash.to_string();
            match blocking(move || hub.read_blob(&site, &hash, offset, max)).await {
                Ok(b) => Response::new(Full::new(Bytes::from(b))),
                Err(e) => error(&e),
            }
        }
        (Method::GET, ["log"]) => {
            let after = q.get("after").copied().unwrap_or(0);
            let max = q
                .get("max")
                .map_or(512, |m| usize::try_from(*m).unwrap_or(512))
                .min(4096);
            let wait = Duration::from_secs(q.get("wait").copied().unwrap_or(0).min(60));
            match log_wait(hub, site, after, max, wait).await {
                Ok(r) => json(&r),
                Err(e) => error(&e),
            }
        }
        (Method::GET, ["manifest"]) => match blocking(move || hub.manifest(&site)).await {
            Ok(m) => json(&m),
            Err(e) => error(&e),
        },
        _ => text(StatusCode::NOT_FOUND, "not found"),
    }
}

/// `POST {PREFIX}wait`: one long poll over many sites ([`proto::sitesync::WaitRequest`]); the sites the
/// client may not sync are named in the answer, never waited on.
async fn wait_route(hub: Arc<Hub>, client: &str, req: Request<Incoming>) -> Response<Body> {
    if req.method() != Method::POST {
        return text(StatusCode::METHOD_NOT_ALLOWED, "POST only");
    }
    let body = match Limited::new(req.into_body(), MAX_CHUNK).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return text(StatusCode::PAYLOAD_TOO_LARGE, "body too large"),
    };
    let asked = match proto::sitesync::parse_wait(&body) {
        Ok(w) => w,
        Err(e) => return text(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let (granted, denied) = hub.split_granted(client, &asked.sites);
    let wait = Duration::from_secs(asked.wait_secs);
    match wait_many(hub, granted, wait).await {
        Ok(ready) => json(&WaitAnswer { ready, denied }),
        Err(e) => error(&e),
    }
}

/// The sites of `since` with news; when none has, waits (up to `wait`) for a log to grow.
async fn wait_many(
    hub: Arc<Hub>,
    since: BTreeMap<String, u64>,
    wait: Duration,
) -> Result<BTreeMap<String, u64>, HubError> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut appended = hub.subscribe();
    let since = Arc::new(since);
    loop {
        appended.borrow_and_update();
        let (h, s) = (hub.clone(), since.clone());
        let ready = blocking(move || Ok(h.ready(&s))).await?;
        if !ready.is_empty() || since.is_empty() {
            return Ok(ready);
        }
        match tokio::time::timeout_at(deadline, appended.changed()).await {
            Ok(Ok(())) => continue,
            _ => return Ok(ready),
        }
    }
}

/// The log after `after`; when empty, waits (up to `wait`) for the log to grow.
async fn log_wait(
    hub: Arc<Hub>,
    site: String,
    after: u64,
    max: usize,
    wait: Duration,
) -> Result<LogRead, HubError> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut appended = hub.subscribe();
    loop {
        appended.borrow_and_update();
        let (h, s) = (hub.clone(), site.clone());
        let read = blocking(move || h.log_after(&s, after, max)).await?;
        let empty = matches!(&read, LogRead::Entries { entries, .. } if entries.is_empty());
        if !empty {
            return Ok(read);
        }
        match tokio::time::timeout_at(deadline, appended.changed()).await {
            Ok(Ok(())) => continue,
            _ => return Ok(read),
        }
    }
}

/// Serves `hub` on `listener` with `tls` (which must require client certificates from
/// the cluster CA) until `shutdown` resolves.
pub async fn run_hub_server(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    hub: Arc<Hub>,
    shutdown: impl Future<Output = ()>,
) {
    let handler = move |client, req| handle(hub.clone(), client, req);
    serve_mutual_tls(listener, tls, "sitesync hub", handler, shutdown).await;
}
