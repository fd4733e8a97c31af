//! Typed client of hostplane's REST API (`/v1/...`).
//!
//! One method per endpoint, taking and returning the [`proto::v1`] bodies:
//!
//! ```no_run
//! # async fn demo() -> Result<(), client::ClientError> {
//! use proto::v1::{CreateDomain, ListParams};
//! let ca = std::fs::read("ca.pem").unwrap_or_default();
//! let api = client::Client::new("https://127.0.0.1:8443", Some("hp_...".into()), Some(&ca))?;
//! let created = api
//!     .create_domain(&CreateDomain { name: "example.com".into(), customer: Some("acme".into()), clusters: None })
//!     .await?;
//! let all = api.list_all_domains(&ListParams::default()).await?;
//! # let _ = (created, all);
//! # Ok(())
//! # }
//! ```
//!
//! Listings come as [`Page`]s; every `list_all_*` method follows `next_cursor` until
//! the last page. API errors arrive as [`ClientError::Api`] carrying the server's
//! [`ErrorBody`]; its `Display` is the server's message (and the field at fault).

#![forbid(unsafe_code)]

mod cron;
mod sitefiles;

use proto::v1::*;
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::time::Duration;

/// Result of every client call.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The base URL is not a usable `http://` or `https://` URL.
    #[error("invalid server URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The CA certificate could not be used.
    #[error("cannot use the CA certificate: {0}")]
    Ca(String),
    /// A name cannot be sent as a URL path segment (empty, `.` or `..`).
    #[error("{0}")]
    InvalidKey(String),
    /// The server answered with an error status.
    #[error("{}", api_message(body))]
    Api {
        /// HTTP status code.
        status: u16,
        /// The server's error body.
        body: ErrorBody,
    },
    /// The request did not get an answer: connection refused, TLS failure, timeout.
    #[error("{}", http_message(.url, .source))]
    Http {
        /// The URL requested.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with a body this client does not understand.
    #[error("unexpected answer from {url} (HTTP {status}): {reason}")]
    Decode {
        /// The URL requested.
        url: String,
        /// HTTP status code.
        status: u16,
        /// What could not be decoded.
        reason: String,
    },
}

impl ClientError {
    /// The HTTP status of an API error, if the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } | ClientError::Decode { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The server's error body, for [`ClientError::Api`].
    pub fn api_body(&self) -> Option<&ErrorBody> {
        match self {
            ClientError::Api { body, .. } => Some(body),
            _ => None,
        }
    }

    /// True if the server rejected the credentials (HTTP 401).
    pub fn is_unauthorized(&self) -> bool {
        self.status() == Some(401)
    }

    /// True if the request never got an answer (connection, TLS or timeout failure).
    pub fn is_transport(&self) -> bool {
        matches!(self, ClientError::Http { .. })
    }

    /// True if the failure looks like an untrusted server certificate.
    pub fn is_certificate_problem(&self) -> bool {
        match self {
            ClientError::Http { source, .. } => {
                let chain = error_chain(source).to_ascii_lowercase();
                chain.contains("certificate") || chain.contains("unknownissuer")
            }
            _ => false,
        }
    }
}

fn api_message(body: &ErrorBody) -> String {
    match &body.field {
        Some(field) if !field.is_empty() => format!("{} (field: {field})", body.message),
        _ => body.message.clone(),
    }
}

fn http_message(url: &str, err: &reqwest::Error) -> String {
    let what = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    // reqwest's own text repeats the URL; its sources say what happened.
    let detail = match std::error::Error::source(err) {
        Some(source) => error_chain(source),
        None => err.to_string(),
    };
    format!("{what}: {url}: {detail}")
}

/// The error and its sources, joined by `: ` (reqwest's own Display is terse).
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// A connection to one controller, with an optional bearer token. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Marker for requests without a body.
#[derive(Serialize)]
struct NoBody;

impl Client {
    /// A client of the controller at `base_url` (`https://host:port`, optionally with
    /// a path prefix). `ca_pem` is the PEM certificate (or bundle) of the CA that
    /// signed the controller's certificate; only those CAs are trusted, so an
    /// `https` URL needs one. `token` is sent as `Authorization: Bearer`.
    pub fn new(base_url: &str, token: Option<String>, ca_pem: Option<&[u8]>) -> Result<Client> {
        let invalid = |reason: &str| ClientError::InvalidUrl {
            url: base_url.to_owned(),
            reason: reason.to_owned(),
        };
        let base = Url::parse(base_url.trim()).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be https:// or http://"));
        }
        if base.cannot_be_a_base() || base.host_str().is_none() {
            return Err(invalid("a host is required, e.g. https://127.0.0.1:8443"));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(invalid("remove the query string and fragment"));
        }
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .user_agent(concat!("hostplane-client/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| ClientError::Ca(error_chain(&e)))?;
            if certs.is_empty() {
                return Err(ClientError::Ca("no PEM certificate found".into()));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| ClientError::Ca(error_chain(&e)))?;
        Ok(Client {
            http,
            base,
            token: token.filter(|t| !t.is_empty()),
        })
    }

    /// The same connection acting with another token (or none).
    pub fn with_token(&self, token: Option<String>) -> Client {
        Client {
            http: self.http.clone(),
            base: self.base.clone(),
            token: token.filter(|t| !t.is_empty()),
        }
    }

    /// The base URL, without trailing slash.
    pub fn base_url(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// True if a token is set.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// The URL of `segments` under the base. Each segment is percent-encoded
    /// (everything but `A-Z a-z 0-9 - . _ ~`), so `info@example.com` or `a/b` stay one
    /// segment. Empty, `.` and `..` segments are refused: no URL can carry them.
    pub fn url(&self, segments: &[&str]) -> Result<Url> {
        let mut path = self.base.path().trim_end_matches('/').to_owned();
        for seg in segments {
            if seg.is_empty() || *seg == "." || *seg == ".." {
                return Err(ClientError::InvalidKey(format!(
                    "`{seg}` cannot be used as a name in a URL"
                )));
            }
            path.push('/');
            for b in seg.bytes() {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                    path.push(b as char);
                } else {
                    path.push_str(&format!("%{b:02X}"));
                }
            }
        }
        let mut url = self.base.clone();
        url.set_path(&path);
        Ok(url)
    }

    /// Send one request and decode the answer. `()` as `T` accepts an empty body.
    async fn send<T, Q, B>(
        &self,
        method: Method,
        segments: &[&str],
        query: Option<&Q>,
        body: Option<&B>,
    ) -> Result<T>
    where
        T: DeserializeOwned,
        Q: Serialize + ?Sized,
        B: Serialize + ?Sized,
    {
        let url = self.url(segments)?;
        let mut req = self
            .http
            .request(method, url.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some(q) = query {
            req = req.query(q);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let transport = |source: reqwest::Error| ClientError::Http {
            url: url.to_string(),
            source,
        };
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(transport)?;
        decode(url.as_str(), status, &bytes)
    }

    async fn get<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<T> {
        self.send::<T, NoBody, NoBody>(Method::GET, segments, None, None)
            .await
    }

    async fn get_with<T: DeserializeOwned, Q: Serialize>(
        &self,
        segments: &[&str],
        query: &Q,
    ) -> Result<T> {
        self.send::<T, Q, NoBody>(Method::GET, segments, Some(query), None)
            .await
    }

    async fn post<T: DeserializeOwned, B: Serialize>(
        &self,
        segments: &[&str],
        body: &B,
    ) -> Result<T> {
        self.send::<T, NoBody, B>(Method::POST, segments, None, Some(body))
            .await
    }

    async fn post_empty<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<T> {
        self.send::<T, NoBody, NoBody>(Method::POST, segments, None, None)
            .await
    }

    async fn patch<T: DeserializeOwned, B: Serialize>(
        &self,
        segments: &[&str],
        body: &B,
    ) -> Result<T> {
        self.send::<T, NoBody, B>(Method::PATCH, segments, None, Some(body))
            .await
    }

    async fn delete(&self, segments: &[&str]) -> Result<()> {
        self.send::<(), NoBody, NoBody>(Method::DELETE, segments, None, None)
            .await
    }

    /// Fetch every page of a listing, following `next_cursor`.
    async fn all_pages<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        params: &ListParams,
    ) -> Result<Vec<T>> {
        let mut params = params.clone();
        let mut items = Vec::new();
        loop {
            let page: Page<T> = self.get_with(segments, &params).await?;
            items.extend(page.items);
            match page.next_cursor {
                Some(next) if params.cursor.as_deref() != Some(next.as_str()) => {
                    params.cursor = Some(next)
                }
                _ => return Ok(items),
            }
        }
    }

    // ------------------------------------------------------------ auth, status

    /// `POST /v1/auth/login`: exchange an account name and password for a new token.
    pub async fn login(&self, req: &LoginRequest) -> Result<TokenCreated> {
        self.post(&["v1", "auth", "login"], req).await
    }

    /// `GET /v1/auth/whoami`: the account the token acts as.
    pub async fn whoami(&self) -> Result<WhoAmI> {
        self.get(&["v1", "auth", "whoami"]).await
    }

    /// `GET /v1/status`: version, revision, counts, clusters and servers.
    pub async fn status(&self) -> Result<StatusView> {
        self.get(&["v1", "status"]).await
    }

    /// `POST /v1/domain-challenges`: the TXT record that proves control of a
    /// registrable domain.
    pub async fn create_domain_challenge(
        &self,
        req: &proto::v1::CreateDomainChallenge,
    ) -> Result<proto::v1::DomainChallengeView> {
        self.post(&["v1", "domain-challenges"], req).await
    }

    /// `POST /v1/domain-transfers` (admins): give a registrable domain's names to
    /// another customer.
    pub async fn create_domain_transfer(
        &self,
        req: &proto::v1::CreateDomainTransfer,
    ) -> Result<proto::v1::DomainTransferView> {
        self.post(&["v1", "domain-transfers"], req).await
    }

    /// `GET /v1/sites/{domain}/certificate`: the certificate a site is served with.
    pub async fn get_site_certificate(&self, domain: &str) -> Result<proto::v1::CertificateView> {
        self.get(&["v1", "sites", domain, "certificate"]).await
    }

    /// `PUT /v1/sites/{domain}/certificate`: serve the site with an own certificate.
    pub async fn put_site_certificate(
        &self,
        domain: &str,
        req: &proto::v1::UploadCertificate,
    ) -> Result<proto::v1::CertificateView> {
        self.send::<_, NoBody, _>(
            Method::PUT,
            &["v1", "sites", domain, "certificate"],
            None,
            Some(req),
        )
        .await
    }

    /// `GET /v1/sites/{domain}/certificate/acme`: the site's ACME certificate status.
    pub async fn get_site_acme(&self, domain: &str) -> Result<proto::v1::AcmeStatusView> {
        self.get(&["v1", "sites", domain, "certificate", "acme"])
            .await
    }

    /// `PUT /v1/sites/{domain}/certificate/acme`: turn ACME on or off for a site.
    pub async fn put_site_acme(
        &self,
        domain: &str,
        req: &proto::v1::AcmeSettings,
    ) -> Result<proto::v1::AcmeStatusView> {
        self.send::<_, NoBody, _>(
            Method::PUT,
            &["v1", "sites", domain, "certificate", "acme"],
            None,
            Some(req),
        )
        .await
    }

    /// `DELETE /v1/sites/{domain}/certificate`: back to the internal certificate.
    pub async fn delete_site_certificate(&self, domain: &str) -> Result<()> {
        self.delete(&["v1", "sites", domain, "certificate"]).await
    }

    /// `PUT /v1/sites/{domain}/content`: deploy a tar archive as the site's files.
    /// `progress` is called with the bytes sent so far after each chunk.
    pub async fn upload_site_content(
        &self,
        domain: &str,
        archive: Vec<u8>,
        progress: impl Fn(u64) + Send + Sync + 'static,
    ) -> Result<proto::v1::DeploymentView> {
        const CHUNK: usize = 256 * 1024;
        let url = self.url(&["v1", "sites", domain, "content"])?;
        let total = archive.len();
        let archive = std::sync::Arc::new(archive);
        let chunks = (0..total.div_ceil(CHUNK)).map(move |i| {
            let end = ((i + 1) * CHUNK).min(total);
            let piece = archive[i * CHUNK..end].to_vec();
            progress(end as u64);
            Ok::<_, std::io::Error>(piece)
        });
        let mut req = self
            .http
            .put(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .header(reqwest::header::CONTENT_TYPE, "application/x-tar")
            .header(reqwest::header::CONTENT_LENGTH, total)
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                chunks,
            )));
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        let transport = |source: reqwest::Error| ClientError::Http {
            url: url.to_string(),
            source,
        };
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(transport)?;
        decode(url.as_str(), status, &bytes)
    }

    /// `POST /v1/import` (admins): NDJSON `lines` whose first is line `first_line` of
    /// the file; one transaction on the controller, rolled back when `dry_run`.
    pub async fn import_chunk(
        &self,
        lines: String,
        first_line: u64,
        dry_run: bool,
    ) -> Result<proto::v1_import::ImportReport> {
        let url = self.url(&["v1", "import"])?;
        let params = proto::v1_import::ImportParams {
            dry_run,
            first_line: Some(first_line),
        };
        let mut req = self
            .http
            .post(url.clone())
            .query(&params)
            .header(reqwest::header::ACCEPT, "application/json")
            .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
            // A whole file's dry run may take longer than the default timeout.
            .timeout(Duration::from_secs(3600))
            .body(lines);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        let transport = |source: reqwest::Error| ClientError::Http {
            url: url.to_string(),
            source,
        };
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(transport)?;
        decode(url.as_str(), status, &bytes)
    }

    /// `GET /v1/db-trash`: dumps of dropped databases the caller may restore.
    pub async fn list_db_trash(&self) -> Result<Vec<proto::v1::DbTrashView>> {
        self.get(&["v1", "db-trash"]).await
    }

    /// `GET /v1/mail/queue` (admins): every mail server's queue.
    pub async fn mail_queue(&self) -> Result<Vec<proto::v1::MailQueueView>> {
        self.get(&["v1", "mail", "queue"]).await
    }

    /// `GET /v1/mail/check/{domain}`: SPF, DKIM, DMARC, MX and the mail servers'
    /// names as receivers see them.
    pub async fn mail_check(&self, domain: &str) -> Result<proto::v1::MailCheckView> {
        self.get(&["v1", "mail", "check", domain]).await
    }

    /// `POST /v1/mail/flush` (admins): every mail server retries its queue now.
    pub async fn mail_flush(&self) -> Result<()> {
        self.send::<(), NoBody, NoBody>(Method::POST, &["v1", "mail", "flush"], None, None)
            .await
    }

    /// `GET /v1/openapi.json`: the OpenAPI document.
    pub async fn openapi(&self) -> Result<serde_json::Value> {
        self.get(&["v1", "openapi.json"]).await
    }

    // ------------------------------------------------------------ tokens

    /// `POST /v1/tokens`: create a token; the secret is in the answer only.
    pub async fn create_token(&self, req: &CreateToken) -> Result<TokenCreated> {
        self.post(&["v1", "tokens"], req).await
    }

    /// `GET /v1/tokens`: one page of tokens.
    pub async fn list_tokens(&self, params: &ListParams) -> Result<Page<TokenView>> {
        self.get_with(&["v1", "tokens"], params).await
    }

    /// `GET /v1/tokens`, every page.
    pub async fn list_all_tokens(&self, params: &ListParams) -> Result<Vec<TokenView>> {
        self.all_pages(&["v1", "tokens"], params).await
    }

    /// `POST /v1/auth/impersonate`: a token acting as a customer the caller
    /// manages, recording the caller as impersonator.
    pub async fn impersonate(&self, req: &Impersonate) -> Result<TokenCreated> {
        self.post(&["v1", "auth", "impersonate"], req).await
    }

    /// `GET /v1/auth/totp`: the caller's two-factor state.
    pub async fn totp_status(&self) -> Result<TotpStatus> {
        self.get(&["v1", "auth", "totp"]).await
    }

    /// `POST /v1/auth/totp`: start a two-factor enrolment.
    pub async fn totp_enroll(&self) -> Result<TotpEnrolment> {
        self.post_empty(&["v1", "auth", "totp"]).await
    }

    /// `POST /v1/auth/totp/confirm`: turn two-factor on; the recovery codes.
    pub async fn totp_confirm(&self, req: &TotpConfirm) -> Result<RecoveryCodes> {
        self.post(&["v1", "auth", "totp", "confirm"], req).await
    }

    /// `POST /v1/auth/totp/disable`: turn two-factor off.
    pub async fn totp_disable(&self, req: &TotpDisable) -> Result<()> {
        self.send::<(), NoBody, TotpDisable>(
            Method::POST,
            &["v1", "auth", "totp", "disable"],
            None,
            Some(req),
        )
        .await
    }

    /// `DELETE /v1/tokens/{id}`: revoke a token.
    pub async fn delete_token(&self, id: &str) -> Result<()> {
        self.delete(&["v1", "tokens", id]).await
    }

    // ------------------------------------------------------------ TSIG keys

    /// `GET /v1/clusters/{name}/tsig` (admins): a DNS cluster's TSIG key with BIND
    /// and Knot configuration for external secondaries following its catalog zone.
    pub async fn get_tsig(&self, cluster: &str) -> Result<TsigView> {
        self.get(&["v1", "clusters", cluster, "tsig"]).await
    }

    /// `POST /v1/clusters/{name}/tsig/rotate` (admins): a new secret; the previous
    /// one stays valid for the grace period.
    pub async fn rotate_tsig(&self, cluster: &str, req: &RotateTsig) -> Result<TsigView> {
        self.post(&["v1", "clusters", cluster, "tsig", "rotate"], req)
            .await
    }

    // ------------------------------------------------------------ join tokens and agents

    /// `POST /v1/join-tokens` (admins): a one-time token for one agent to join a
    /// cluster; the secret is in the answer only.
    pub async fn create_join_token(&self, req: &CreateJoinToken) -> Result<JoinTokenCreated> {
        self.post(&["v1", "join-tokens"], req).await
    }

    /// `GET /v1/join-tokens` (admins): one page of unused join tokens.
    pub async fn list_join_tokens(&self, params: &ListParams) -> Result<Page<JoinTokenView>> {
        self.get_with(&["v1", "join-tokens"], params).await
    }

    /// `GET /v1/join-tokens`, every page.
    pub async fn list_all_join_tokens(&self, params: &ListParams) -> Result<Vec<JoinTokenView>> {
        self.all_pages(&["v1", "join-tokens"], params).await
    }

    /// `DELETE /v1/join-tokens/{id}` (admins): revoke an unused join token.
    pub async fn delete_join_token(&self, id: &str) -> Result<()> {
        self.delete(&["v1", "join-tokens", id]).await
    }

    /// `POST /v1/servers/{name}/drain` (admins): take no new work and move the
    /// server's `single` sites to other servers of its cluster.
    pub async fn drain_server(&self, name: &str) -> Result<ServerView> {
        self.post_empty(&["v1", "servers", name, "drain"]).await
    }

    /// `POST /v1/servers/{name}/undrain` (admins): the server may take work again.
    pub async fn undrain_server(&self, name: &str) -> Result<ServerView> {
        self.post_empty(&["v1", "servers", name, "undrain"]).await
    }

    /// `POST /v1/servers/{name}/reset-agent` (admins): forget the agent identity the
    /// server joined with, so a new agent may join under its name.
    pub async fn reset_agent(&self, name: &str) -> Result<ServerView> {
        self.post_empty(&["v1", "servers", name, "reset-agent"])
            .await
    }

    // ------------------------------------------------------------ events

    /// `GET /v1/events`: one page of the audit log.
    pub async fn list_events(&self, params: &EventParams) -> Result<Page<EventView>> {
        self.get_with(&["v1", "events"], params).await
    }

    /// `GET /v1/events`, every page.
    pub async fn list_all_events(&self, params: &EventParams) -> Result<Vec<EventView>> {
        let mut params = params.clone();
        let mut items = Vec::new();
        loop {
            let page = self.list_events(&params).await?;
            items.extend(page.items);
            match page.next_cursor {
                Some(next) if params.cursor.as_deref() != Some(next.as_str()) => {
                    params.cursor = Some(next)
                }
                _ => return Ok(items),
            }
        }
    }
}

/// Turn a status and body into the typed answer or a [`ClientError`].
fn decode<T: DeserializeOwned>(url: &str, status: StatusCode, bytes: &[u8]) -> Result<T> {
    if status.is_success() {
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"null"
        } else {
            bytes
        };
        return serde_json::from_slice(text).map_err(|e| ClientError::Decode {
            url: url.to_owned(),
            status: status.as_u16(),
            reason: e.to_string(),
        });
    }
    let body = serde_json::from_slice::<ErrorBody>(bytes).unwrap_or_else(|_| {
        let text = String::from_utf8_lossy(bytes);
        let text = text.trim();
        let reason = status.canonical_reason().unwrap_or("error");
        let message = if text.is_empty() {
            format!("HTTP {} {reason} from {url}", status.as_u16())
        } else {
            let short: String = text.chars().take(300).collect();
            format!("HTTP {} {reason} from {url}: {short}", status.as_u16())
        };
        ErrorBody {
            error: fallback_code(status).into(),
            message,
            field: None,
            rule: None,
        }
    });
    Err(ClientError::Api {
        status: status.as_u16(),
        body,
    })
}

fn fallback_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 422 => "invalid",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        409 => "conflict",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        429 => "too_many_requests",
        503 => "unavailable",
        _ => "internal",
    }
}

/// Generates create/get/update/delete/list/list_all for one collection.
macro_rules! resource {
    (
        $path:literal, $key:ident: $kty:ty, $view:ty,
        $create:ident($creq:ty) -> $cres:ty,
        $get:ident, $update:ident($ureq:ty), $delete:ident, $list:ident, $list_all:ident
    ) => {
        impl Client {
            #[doc = concat!("`POST /v1/", $path, "`: create one.")]
            pub async fn $create(&self, req: &$creq) -> Result<$cres> {
                self.post(&["v1", $path], req).await
            }

            #[doc = concat!("`GET /v1/", $path, "/{", stringify!($key), "}`.")]
            pub async fn $get(&self, $key: $kty) -> Result<$view> {
                self.get(&["v1", $path, &$key.to_string()]).await
            }

            #[doc = concat!("`PATCH /v1/", $path, "/{", stringify!($key), "}`: change the given fields.")]
            pub async fn $update(&self, $key: $kty, req: &$ureq) -> Result<$view> {
                self.patch(&["v1", $path, &$key.to_string()], req).await
            }

            #[doc = concat!("`DELETE /v1/", $path, "/{", stringify!($key), "}`.")]
            pub async fn $delete(&self, $key: $kty) -> Result<()> {
                self.delete(&["v1", $path, &$key.to_string()]).await
            }

            #[doc = concat!("`GET /v1/", $path, "`: one page.")]
            pub async fn $list(&self, params: &ListParams) -> Result<Page<$view>> {
                self.get_with(&["v1", $path], params).await
            }

            #[doc = concat!("`GET /v1/", $path, "`, every page (follows `next_cursor`).")]
            pub async fn $list_all(&self, params: &ListParams) -> Result<Vec<$view>> {
                self.all_pages(&["v1", $path], params).await
            }
        }
    };
}

resource!("clusters", name: &str, ClusterView,
    create_cluster(CreateCluster) -> ClusterView,
    get_cluster, update_cluster(UpdateCluster), delete_cluster, list_clusters, list_all_clusters);
resource!("servers", name: &str, ServerView,
    create_server(CreateServer) -> ServerView,
    get_server, update_server(UpdateServer), delete_server, list_servers, list_all_servers);
resource!("customers", name: &str, CustomerView,
    create_customer(CreateCustomer) -> CustomerView,
    get_customer, update_customer(UpdateCustomer), delete_customer, list_customers, list_all_customers);
resource!("plans", name: &str, PlanView,
    create_plan(CreatePlan) -> PlanView,
    get_plan, update_plan(UpdatePlan), delete_plan, list_plans, list_all_plans);

impl Client {
    /// `GET /v1/endpoints`: one page.
    pub async fn list_endpoints(&self, params: &ListParams) -> Result<Page<EndpointsView>> {
        self.get_with(&["v1", "endpoints"], params).await
    }

    /// `GET /v1/endpoints`, every page.
    pub async fn list_all_endpoints(&self, params: &ListParams) -> Result<Vec<EndpointsView>> {
        self.all_pages(&["v1", "endpoints"], params).await
    }
}

resource!("domains", name: &str, DomainView,
    create_domain(CreateDomain) -> DomainView,
    get_domain, update_domain(UpdateDomain), delete_domain, list_domains, list_all_domains);
resource!("sites", domain: &str, SiteView,
    create_site(CreateSite) -> SiteView,
    get_site, update_site(UpdateSite), delete_site, list_sites, list_all_sites);
resource!("mailboxes", address: &str, MailboxView,
    create_mailbox(CreateMailbox) -> WithPassword<MailboxView>,
    get_mailbox, update_mailbox(UpdateMailbox), delete_mailbox, list_mailboxes, list_all_mailboxes);
resource!("aliases", address: &str, AliasView,
    create_alias(CreateAlias) -> AliasView,
    get_alias, update_alias(UpdateAlias), delete_alias, list_aliases, list_all_aliases);
resource!("databases", name: &str, DatabaseView,
    create_database(CreateDatabase) -> DatabaseView,
    get_database, update_database(UpdateDatabase), delete_database, list_databases, list_all_databases);
resource!("db-users", name: &str, DbUserView,
    create_db_user(CreateDbUser) -> WithPassword<DbUserView>,
    get_db_user, update_db_user(UpdateDbUser), delete_db_user, list_db_users, list_all_db_users);
resource!("ftp-accounts", username: &str, FtpAccountView,
    create_ftp_account(CreateFtpAccount) -> WithPassword<FtpAccountView>,
    get_ftp_account, update_ftp_account(UpdateFtpAccount), delete_ftp_account, list_ftp_accounts, list_all_ftp_accounts);
resource!("dns-records", id: i64, DnsRecordView,
    create_dns_record(CreateDnsRecord) -> DnsRecordView,
    get_dns_record, update_dns_record(UpdateDnsRecord), delete_dns_record, list_dns_records, list_all_dns_records);
