//! A small HTTPS proxy between the controller and Pebble that injects the CA
//! failures and features the tests need ([`Faults`]):
//!
//! * new orders refused with `429 rateLimited` and a `Retry-After`;
//! * challenge tokens altered in the authorizations it passes on, so the web
//!   servers publish a token Pebble does not ask for and Pebble's real
//!   validation fails (an invalid challenge);
//! * ACME Renewal Information (RFC 9773), which Debian's Pebble 2.4 lacks:
//!   `renewalInfo` added to the directory and answered with the configured
//!   window; a new order's `replaces` recorded and reflected in the answer.
//!
//! Everything else is passed to Pebble unchanged, with the `Host` header kept, so
//! Pebble's URLs and the JWS `url` checks name the proxy.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};

use super::Pebble;

/// What the proxy injects, and what it saw.
#[derive(Debug, Default, Clone)]
pub struct Faults {
    /// Refuse this many next new orders with `429 rateLimited`.
    pub refuse_orders: u32,
    /// The `Retry-After` (seconds) of those refusals.
    pub retry_after: u64,
    /// Alter every challenge token passed on (validation fails).
    pub bad_tokens: bool,
    /// Offer renewal information with this window (unix seconds).
    pub renewal_window: Option<(i64, i64)>,
    /// Seen: new orders passed to Pebble.
    pub orders: u32,
    /// Seen: `replaces` of new orders.
    pub replaces: Vec<String>,
    /// Seen: certificate ids asked about at `renewalInfo`.
    pub renewal_asked: Vec<String>,
}

/// The proxy; stops on drop.
pub struct Proxy {
    /// Its address (`https://<addr>/dir` is the directory).
    pub addr: SocketAddr,
    faults: Arc<Mutex<Faults>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// Start a proxy for `pebble` on 127.0.0.1 (its certificate from Pebble's
    /// TLS CA, which the controller trusts through `ca_file`).
    pub async fn start(pebble: &Pebble) -> Result<Self> {
        let (cert, key) = pebble.tls.leaf()?;
        let certs = rustls_pemfile::certs(&mut cert.as_bytes()).collect::<Result<Vec<_>, _>>()?;
        let key = rustls_pemfile::private_key(&mut key.as_bytes())?.context("no key")?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let upstream = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(pebble.tls.pem().as_bytes())?)
            .http1_only()
            .build()?;
        let faults = Arc::new(Mutex::new(Faults::default()));
        let shared = Arc::new(Shared {
            addr,
            pebble: pebble.api,
            upstream,
            faults: Arc::clone(&faults),
        });
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let svc = hyper::service::service_fn(move |req| {
                        let shared = Arc::clone(&shared);
                        async move { Ok::<_, std::convert::Infallible>(shared.handle(req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
        Ok(Proxy { addr, faults, task })
    }

    /// Change what is injected.
    pub fn set(&self, f: impl FnOnce(&mut Faults)) {
        f(&mut self.faults.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// What is injected and what was seen.
    pub fn faults(&self) -> Faults {
        self.faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

struct Shared {
    addr: SocketAddr,
    pebble: SocketAddr,
    upstream: reqwest::Client,
    faults: Arc<Mutex<Faults>>,
}

type Answer = Response<Full<Bytes>>;

fn answer(status: u16, headers: &[(&str, String)], body: impl Into<Bytes>) -> Answer {
    let mut b = Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(*k, v);
    }
    b.body(Full::new(body.into()))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// The JSON payload of a flattened JWS body.
fn jws_payload(body: &[u8]) -> Option<serde_json::Value> {
    let jws: serde_json::Value = serde_json::from_slice(body).ok()?;
    let p = jws.get("payload")?.as_str()?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(p.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&raw).ok()
}

impl Shared {
    fn faults(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn handle(&self, req: Request<hyper::body::Incoming>) -> Answer {
        let (parts, body) = req.into_parts();
        let body = match body.collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return answer(400, &[], "bad body"),
        };
        let path = parts.uri.path().to_owned();
        if let Some(id) = path.strip_prefix("/renewal-info/") {
            let mut f = self.faults();
            f.renewal_asked.push(id.to_owned());
            return match f.renewal_window {
                Some((start, end)) => answer(
                    200,
                    &[
                        ("content-type", "application/json".into()),
                        ("retry-after", "60".into()),
                    ],
                    serde_json::json!({"suggestedWindow": {
                        "start": rfc3339(start), "end": rfc3339(end)}})
                    .to_string(),
                ),
                None => answer(404, &[], "no renewal information"),
            };
        }
        let new_order = parts.method == hyper::Method::POST && path == "/order-plz";
        let mut replaces = None;
        if new_order {
            let mut f = self.faults();
            if f.refuse_orders > 0 {
                f.refuse_orders -= 1;
                let problem = serde_json::json!({
                    "type": "urn:ietf:params:acme:error:rateLimited",
                    "detail": "too many new orders recently (injected by the test proxy)",
                    "status": 429
                });
                return answer(
                    429,
                    &[
                        ("content-type", "application/problem+json".into()),
                        ("retry-after", f.retry_after.to_string()),
                    ],
                    problem.to_string(),
                );
            }
            f.orders += 1;
            replaces = jws_payload(&body).and_then(|p| {
                p.get("replaces")
                    .and_then(|r| r.as_str().map(str::to_owned))
            });
            if let Some(r) = &replaces {
                f.replaces.push(r.clone());
            }
        }
        // To Pebble, `Host` kept.
        let url = format!(
            "https://{}{}",
            self.pebble,
            parts.uri.path_and_query().map_or("/", |p| p.as_str())
        );
        let mut up = self.upstream.request(parts.method.clone(), url).body(body);
        for (k, v) in &parts.headers {
            if k != "content-length" && k != "connection" {
                up = up.header(k, v);
            }
        }
        let rsp = match up.send().await {
            Ok(r) => r,
            Err(e) => return answer(502, &[], format!("pebble: {e}")),
        };
        let status = rsp.status().as_u16();
        let headers: Vec<(String, String)> = rsp
            .headers()
            .iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "content-length" | "transfer-encoding" | "connection"
                )
            })
            .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_owned())))
            .collect();
        let mut body = rsp.bytes().await.unwrap_or_default();
        let edit = {
            let f = self.faults();
            (path == "/dir" && f.renewal_window.is_some())
                || (new_order && replaces.is_some())
                || (f.bad_tokens && (path.starts_with("/authZ/") || path.starts_with("/chalZ/")))
        };
        if edit && status < 300 {
            if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&body) {
                if path == "/dir" {
                    v["renewalInfo"] = format!("https://{}/renewal-info", self.addr).into();
                } else if new_order {
                    v["replaces"] = replaces.clone().unwrap_or_default().into();
                } else if let Some(chs) = v.get_mut("challenges").and_then(|c| c.as_array_mut()) {
                    for c in chs {
                        if let Some(t) = c.get("token").and_then(|t| t.as_str()) {
                            c["token"] = format!("{t}x").into();
                        }
                    }
                } else if let Some(t) = v.get("token").and_then(|t| t.as_str()) {
                    v["token"] = format!("{t}x").into();
                }
                body = Bytes::from(v.to_string());
            }
        }
        let hs: Vec<(&str, String)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        answer(status, &hs, body)
    }
}
