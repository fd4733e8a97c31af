//! HTTPS calls to the controllers: join (server-verified TLS), the blocking config
//! query and heartbeats (mutual TLS). Every connection binds the server's own
//! address as its source. The agent fails over between the configured controller
//! URLs: a failed call moves every loop on to the next URL.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use proto::agent_delta::ConfigDelta;
use proto::agent_v1::{
    ConfigQuery, DesiredConfig, Heartbeat, HeartbeatAck, JoinRequest, JoinResponse, CONFIG_PATH,
    HEARTBEAT_PATH, JOIN_PATH,
};
use rand::Rng;
use reqwest::StatusCode;

use crate::identity::Identity;

/// Timeout of connection establishment (TCP + TLS).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Timeout of the join call.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait between retries.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// `User-Agent` of every agent request.
pub fn user_agent() -> String {
    format!("hostplane-agent/{}", env!("CARGO_PKG_VERSION"))
}

/// A failed controller call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connection, TLS, timeout or body transfer failure.
    #[error("{url}: {source}")]
    Http {
        /// The URL called.
        url: String,
        /// Why.
        source: reqwest::Error,
    },
    /// The controller answered with an unexpected status.
    #[error("{url}: HTTP {status}: {message}")]
    Status {
        /// The URL called.
        url: String,
        /// The status.
        status: StatusCode,
        /// The error message of the body, or its start.
        message: String,
    },
    /// The body is not what the protocol says.
    #[error("{url}: malformed response: {message}")]
    Body {
        /// The URL called.
        url: String,
        /// Why.
        message: String,
    },
    /// The HTTP client could not be built (bad certificate material).
    #[error("HTTP client: {0}")]
    Build(reqwest::Error),
}

impl ClientError {
    /// The controller refused the caller's credentials (401 or 403).
    pub fn is_refused(&self) -> bool {
        matches!(self, ClientError::Status { status, .. }
            if *status == StatusCode::UNAUTHORIZED || *status == StatusCode::FORBIDDEN)
    }
}

/// The controller URLs and which one is in use.
#[derive(Debug)]
pub struct Controllers {
    urls: Vec<String>,
    current: AtomicUsize,
}

impl Controllers {
    /// The URLs in failover order (trailing slashes removed).
    pub fn new(urls: &[String]) -> Self {
        Self {
            urls: urls
                .iter()
                .map(|u| u.trim_end_matches('/').to_string())
                .collect(),
            current: AtomicUsize::new(0),
        }
    }

    /// Index and base URL of the controller in use.
    pub fn current(&self) -> (usize, &str) {
        let n = self.urls.len().max(1);
        let i = self.current.load(Ordering::Relaxed) % n;
        (i, self.urls.get(i).map(String::as_str).unwrap_or(""))
    }

    /// A call to controller `index` failed: move on to the next one, unless
    /// another loop already did.
    pub fn failed(&self, index: usize) {
        let n = self.urls.len().max(1);
        let _ = self.current.compare_exchange(
            index,
            (index + 1) % n,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }
}

/// Capped exponential backoff with jitter: 100 ms, 200 ms, … up to
/// [`MAX_BACKOFF`]; each wait is drawn from the upper half of its step.
#[derive(Debug, Clone)]
pub struct Backoff {
    attempt: u32,
    base: Duration,
    max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_millis(100), MAX_BACKOFF)
    }
}

impl Backoff {
    /// A backoff starting at `base`, never above `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            attempt: 0,
            base,
            max,
        }
    }

    /// The next wait.
    pub fn next_delay(&mut self) -> Duration {
        let step = self
            .base
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let half = step / 2;
        let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        half + Duration::from_millis(rand::thread_rng().gen_range(0..=jitter_ms))
    }

    /// Back to the first step after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// The answer to a delta query.
#[derive(Debug, Clone)]
pub enum DeltaAnswer {
    /// A delta or snapshot of items.
    Delta(ConfigDelta),
    /// The whole document (a controller that does not make deltas).
    Full(DesiredConfig),
}

/// An HTTPS client for the agent endpoints of the controllers.
#[derive(Debug, Clone)]
pub struct AgentClient {
    http: reqwest::Client,
}

fn builder(ca_pem: &[u8], bind: IpAddr) -> Result<reqwest::ClientBuilder, ClientError> {
    let ca = reqwest::Certificate::from_pem(ca_pem).map_err(ClientError::Build)?;
    Ok(reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .https_only(true)
        .local_address(Some(bind))
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(user_agent()))
}

async fn error_message(resp: reqwest::Response) -> String {
    let text = resp.text().await.unwrap_or_default();
    if let Ok(body) = serde_json::from_str::<proto::v1::ErrorBody>(&text) {
        return body.message;
    }
    text.chars().take(200).collect()
}

/// The whole body of a response.
async fn body_bytes(url: &str, resp: reqwest::Response) -> Result<bytes::Bytes, ClientError> {
    resp.bytes().await.map_err(|source| ClientError::Http {
        url: url.to_string(),
        source,
    })
}

/// The error for an answer with a status the caller does not expect.
async fn unexpected(url: String, resp: reqwest::Response) -> ClientError {
    let status = resp.status();
    let message = error_message(resp).await;
    ClientError::Status {
        url,
        status,
        message,
    }
}

async fn json_body<T: serde::de::DeserializeOwned>(
    url: &str,
    resp: reqwest::Response,
) -> Result<T, ClientError> {
    let bytes = body_bytes(url, resp).await?;
    serde_json::from_slice(&bytes).map_err(|e| ClientError::Body {
        url: url.to_string(),
        message: e.to_string(),
    })
}

impl AgentClient {
    /// A client for the join call: trusts only `ca_pem`, presents no certificate.
    pub fn for_join(ca_pem: &[u8], bind: IpAddr) -> Result<Self, ClientError> {
        let http = builder(ca_pem, bind)?.build().map_err(ClientError::Build)?;
        Ok(Self { http })
    }

    /// A mutual-TLS client: trusts only the identity's CA and presents its certificate.
    pub fn for_identity(id: &Identity, bind: IpAddr) -> Result<Self, ClientError> {
        let tls = id.tls_identity().map_err(|e| ClientError::Body {
            url: String::new(),
            message: e.to_string(),
        })?;
        let http = builder(id.ca_pem.as_bytes(), bind)?
            .identity(tls)
            .build()
            .map_err(ClientError::Build)?;
        Ok(Self { http })
    }

    /// `POST {base}/v1/agent/join`.
    pub async fn join(&self, base: &str, req: &JoinRequest) -> Result<JoinResponse, ClientError> {
        let url = format!("{base}{JOIN_PATH}");
        let resp = self
            .http
            .post(&url)
            .json(req)
            .timeout(JOIN_TIMEOUT)
            .send()
            .await
            .map_err(|source| ClientError::Http {
                url: url.clone(),
                source,
            })?;
        let status = resp.status();
        if !status.is_success() {
            let message = error_message(resp).await;
            return Err(ClientError::Status {
                url,
                status,
                message,
            });
        }
        json_body(&url, resp).await
    }

    /// `GET url` with a timeout (the agent endpoints' one way to send a query).
    async fn get(&self, url: &str, timeout: Duration) -> Result<reqwest::Response, ClientError> {
        self.http
            .get(url)
            .timeout(timeout)
            .send()
            .await
            .map_err(|source| ClientError::Http {
                url: url.to_string(),
                source,
            })
    }

    /// `GET {base}/v1/agent/config?after={after}`: `Some` config on 200, `None` on 304.
    pub async fn fetch_config(
        &self,
        base: &str,
        after: i64,
        timeout: Duration,
    ) -> Result<Option<DesiredConfig>, ClientError> {
        let query = ConfigQuery {
            after,
            ..ConfigQuery::default()
        };
        let url = format!("{base}{CONFIG_PATH}?{}", query.to_query_string());
        let resp = self.get(&url, timeout).await?;
        match resp.status() {
            StatusCode::OK => Ok(Some(json_body(&url, resp).await?)),
            StatusCode::NOT_MODIFIED => Ok(None),
            _ => Err(unexpected(url, resp).await),
        }
    }

    /// `GET {base}/v1/agent/config?after={after}&delta=1`: `Some` answer on 200
    /// (a delta or snapshot; a whole document from a controller that ignores
    /// `delta`), `None` on 304. A controller too old to know `delta` answers 400.
    /// `resync` adds `resync=1`: the delta from `after` at once, without waiting
    /// for a change (a controller too old to know it answers 400 too).
    pub async fn fetch_delta(
        &self,
        base: &str,
        after: i64,
        resync: bool,
        timeout: Duration,
    ) -> Result<Option<DeltaAnswer>, ClientError> {
        let query = ConfigQuery {
            after,
            delta: 1,
            resync: u8::from(resync),
        };
        let url = format!("{base}{CONFIG_PATH}?{}", query.to_query_string());
        let resp = self.get(&url, timeout).await?;
        match resp.status() {
            StatusCode::OK => {
                let bytes = body_bytes(&url, resp).await?;
                match serde_json::from_slice::<ConfigDelta>(&bytes) {
                    Ok(d) => Ok(Some(DeltaAnswer::Delta(d))),
                    Err(e) => match serde_json::from_slice::<DesiredConfig>(&bytes) {
                        Ok(cfg) => Ok(Some(DeltaAnswer::Full(cfg))),
                        Err(_) => Err(ClientError::Body {
                            url,
                            message: e.to_string(),
                        }),
                    },
                }
            }
            StatusCode::NOT_MODIFIED => Ok(None),
            _ => Err(unexpected(url, resp).await),
        }
    }

    /// `GET {base}/v1/agent/blobs/{hash}`, verified against `hash`.
    pub async fn fetch_blob(
        &self,
        base: &str,
        hash: &str,
        timeout: Duration,
    ) -> Result<Vec<u8>, ClientError> {
        let url = format!("{base}{}", proto::agent_delta::blob_path(hash));
        let resp = self.get(&url, timeout).await?;
        if !resp.status().is_success() {
            return Err(unexpected(url, resp).await);
        }
        let bytes = body_bytes(&url, resp).await?;
        if proto::agent_delta::blob_hash(&bytes) != hash {
            return Err(ClientError::Body {
                url,
                message: "blob content does not match its hash".into(),
            });
        }
        Ok(bytes.to_vec())
    }

    /// `POST {base}/v1/agent/heartbeat`.
    pub async fn heartbeat(
        &self,
        base: &str,
        hb: &Heartbeat,
        timeout: Duration,
    ) -> Result<HeartbeatAck, ClientError> {
        let url = format!("{base}{HEARTBEAT_PATH}");
        let resp = self
            .http
            .post(&url)
            .json(hb)
            .timeout(timeout)
            .send()
            .await
            .map_err(|source| ClientError::Http {
                url: url.clone(),
                source,
            })?;
        let status = resp.status();
        if !status.is_success() {
            let message = error_message(resp).await;
            return Err(ClientError::Status {
                url,
                status,
                message,
            });
        }
        json_body(&url, resp).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_resets() {
        let mut b = Backoff::default();
        let first = b.next_delay();
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
        for _ in 0..20 {
            assert!(b.next_delay() <= MAX_BACKOFF);
        }
        let late = b.next_delay();
        assert!(late >= MAX_BACKOFF / 2, "{late:?}");
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn controllers_rotate_once_per_failure() {
        let c = Controllers::new(&["https://a/".into(), "https://b".into()]);
        assert_eq!(c.current(), (0, "https://a"));
        c.failed(0);
        c.failed(0); // a second loop that saw the same failure does not skip b
        assert_eq!(c.current(), (1, "https://b"));
        c.failed(1);
        assert_eq!(c.current(), (0, "https://a"));
    }
}
