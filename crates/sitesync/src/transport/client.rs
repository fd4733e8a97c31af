//! [`HttpsHub`]: the replica's [`HubApi`] over HTTPS with this server's client
//! certificate. The calls block (the replica's work runs on a blocking thread, like its
//! disk I/O): each one is driven on the tokio runtime the client was built in, so they
//! must not be made from an async task itself (use `spawn_blocking`).

use std::collections::BTreeMap;
use std::time::Duration;

use proto::sitesync::{Change, LogRead, Outcome, TreeManifest, WaitAnswer, WaitRequest};
use reqwest::StatusCode;

use super::{BlobStateBody, PREFIX};
use crate::api::{BlobState, HubApi, HubError};

/// A web server's connection to its files server's hub.
#[derive(Debug, Clone)]
pub struct HttpsHub {
    http: reqwest::Client,
    base: String,
    rt: tokio::runtime::Handle,
}

fn down(e: reqwest::Error) -> HubError {
    HubError::Unavailable(e.to_string())
}

impl HttpsHub {
    /// Connects to `base` (`https://host:port`), trusting only the CA of `ca_pem` and
    /// presenting `cert_pem`/`key_pem`. Must be called inside a tokio runtime.
    pub fn new(
        base: &str,
        cert_pem: &str,
        key_pem: &str,
        ca_pem: &str,
    ) -> Result<HttpsHub, HubError> {
        HttpsHub::bound(base, cert_pem, key_pem, ca_pem, None)
    }

    /// [`HttpsHub::new`] with connections made from `local` (the server's own address:
    /// on 127.0.0.0/8 the kernel would otherwise pick 127.0.0.1, DESIGN.md "Ports and
    /// addresses in `up`").
    pub fn bound(
        base: &str,
        cert_pem: &str,
        key_pem: &str,
        ca_pem: &str,
        local: Option<std::net::IpAddr>,
    ) -> Result<HttpsHub, HubError> {
        let bad = |e: reqwest::Error| HubError::Refused(format!("TLS setup: {e}"));
        let mut pem = cert_pem.trim_end().to_owned();
        pem.push('\n');
        pem.push_str(key_pem);
        let id = reqwest::Identity::from_pem(pem.as_bytes()).map_err(bad)?;
        let root = reqwest::Certificate::from_pem(ca_pem.as_bytes()).map_err(bad)?;
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(root)
            .identity(id)
            .https_only(true)
            .local_address(local)
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(bad)?;
        let rt = tokio::runtime::Handle::try_current()
            .map_err(|e| HubError::Refused(format!("no tokio runtime: {e}")))?;
        Ok(HttpsHub {
            http,
            base: base.trim_end_matches('/').to_string(),
            rt,
        })
    }

    fn url(&self, site: &str, what: &str) -> String {
        format!("{}{PREFIX}{site}/{what}", self.base)
    }

    /// Sends a request and maps the status to [`HubError`]; returns the body.
    async fn send(req: reqwest::RequestBuilder) -> Result<Vec<u8>, HubError> {
        let resp = req.send().await.map_err(down)?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(down)?.to_vec();
        let msg = || String::from_utf8_lossy(&body).trim().to_string();
        match status {
            s if s.is_success() => Ok(body),
            StatusCode::NOT_FOUND => Err(HubError::NotFound(msg())),
            StatusCode::INSUFFICIENT_STORAGE => Err(HubError::Full(msg())),
            StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT => Err(HubError::Unavailable(msg())),
            _ => Err(HubError::Refused(format!("{status}: {}", msg()))),
        }
    }

    /// [`HttpsHub::send`], blocking on the client's runtime.
    fn call(&self, req: reqwest::RequestBuilder) -> Result<Vec<u8>, HubError> {
        self.rt.block_on(Self::send(req))
    }

    /// [`HubApi::wait_many`] for an async caller (a web server's one poller per files
    /// server, which must be cancellable when its set of sites changes).
    pub async fn wait_many_async(
        &self,
        sites: &BTreeMap<String, u64>,
        wait: Duration,
    ) -> Result<WaitAnswer, HubError> {
        let wait_secs = wait.as_secs().min(proto::sitesync::MAX_WAIT_SECS);
        let body = serde_json::to_vec(&WaitRequest {
            sites: sites.clone(),
            wait_secs,
        })
        .map_err(|e| HubError::Refused(e.to_string()))?;
        let req = self
            .http
            .post(format!("{}{PREFIX}wait", self.base))
            .body(body)
            .timeout(Duration::from_secs(wait_secs + 30));
        let body = Self::send(req).await?;
        serde_json::from_slice(&body).map_err(|e| HubError::Refused(format!("bad answer: {e}")))
    }

    fn json<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, HubError> {
        let body = self.call(req)?;
        serde_json::from_slice(&body).map_err(|e| HubError::Refused(format!("bad answer: {e}")))
    }
}

impl HubApi for HttpsHub {
    fn push(&self, site: &str, change: &Change) -> Result<Outcome, HubError> {
        let body = serde_json::to_vec(change).map_err(|e| HubError::Refused(e.to_string()))?;
        self.json(self.http.post(self.url(site, "push")).body(body))
    }

    fn blob_received(&self, site: &str, hash: &str) -> Result<BlobState, HubError> {
        let s: BlobStateBody =
            self.json(self.http.get(self.url(site, &format!("blob/{hash}/state"))))?;
        Ok(if s.complete {
            BlobState::Complete
        } else {
            BlobState::Partial(s.received)
        })
    }

    fn put_chunk(
        &self,
        site: &str,
        hash: &str,
        total: u64,
        offset: u64,
        data: &[u8],
    ) -> Result<(), HubError> {
        let url = self.url(site, &format!("blob/{hash}?total={total}&offset={offset}"));
        self.call(self.http.put(url).body(data.to_vec()))
            .map(|_| ())
    }

    fn read_blob(
        &self,
        site: &str,
        hash: &str,
        offset: u64,
        max: usize,
    ) -> Result<Vec<u8>, HubError> {
        self.call(
            self.http
                .get(self.url(site, &format!("blob/{hash}?offset={offset}&max={max}"))),
        )
    }

    fn log_after(&self, site: &str, seq: u64, max: usize) -> Result<LogRead, HubError> {
        self.json(
            self.http
                .get(self.url(site, &format!("log?after={seq}&max={max}"))),
        )
    }

    fn log_wait(
        &self,
        site: &str,
        seq: u64,
        max: usize,
        wait: Duration,
    ) -> Result<LogRead, HubError> {
        let secs = wait.as_secs().min(60);
        let url = self.url(site, &format!("log?after={seq}&max={max}&wait={secs}"));
        self.json(self.http.get(url).timeout(Duration::from_secs(secs + 30)))
    }

    fn wait_many(
        &self,
        sites: &BTreeMap<String, u64>,
        wait: Duration,
    ) -> Result<WaitAnswer, HubError> {
        self.rt.block_on(self.wait_many_async(sites, wait))
    }

    fn manifest(&self, site: &str) -> Result<TreeManifest, HubError> {
        self.json(self.http.get(self.url(site, "manifest")))
    }
}
