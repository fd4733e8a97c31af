//! The ACME client side: the HTTPS client to the CA (system roots plus
//! `[acme] ca_file`, rustls with ring), and the platform's one account, its
//! credentials kept as the [`SecretPurpose::AcmeAccount`] secret
//! `acme_account:platform` and made on first use (with the contact email and, when
//! configured, External Account Binding). `instant-acme` does the protocol
//! (JWS, nonces and their `badNonce` retry, RFC 8555).
//!
//! The HTTPS client remembers the `Retry-After` of the CA's last refusal (a
//! `429` rate limit, a `503`), which `instant-acme` does not hand out with the
//! problem document ([`RetryAfter`]); [`describe`] turns a connection failure's
//! bare "client error (Connect)" into its causes and what to do.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use instant_acme::{
    Account, AccountCredentials, BodyWrapper, BytesResponse, ExternalAccountKey, HttpClient,
    NewAccount,
};
use model::entity::{Secret, SecretPurpose};
use store::{NewObject, Store};

use super::AcmeConfig;

/// The store subject of the platform's account.
const ACCOUNT_SUBJECT: &str = "platform";

/// Where the queue's history is kept: `acme_account:queue` ([`super::queue`]).
pub const QUEUE_SUBJECT: &str = "queue";

/// Why the client could not be set up or the account not be had.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `ca_file` could not be read or holds no certificate.
    #[error("acme.ca_file {path}: {message}")]
    CaFile {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The CA refused or could not be reached (with the causes and what to do).
    #[error("ACME: {}", describe(.0))]
    Acme(#[from] instant_acme::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// Stored credentials do not parse.
    #[error("stored ACME account: {0}")]
    Credentials(#[from] serde_json::Error),
}

/// The `Retry-After` of the CA's last refusal (`429`, `503`), shared between
/// the HTTPS client that sees it and the task that backs off by it.
#[derive(Debug, Clone, Default)]
pub struct RetryAfter(Arc<Mutex<Option<SystemTime>>>);

impl RetryAfter {
    /// Take what was seen (seconds from now, at least 0), clearing it.
    pub fn take(&self) -> Option<i64> {
        let t = self.0.lock().ok()?.take()?;
        Some(
            t.duration_since(SystemTime::now())
                .unwrap_or_default()
                .as_secs() as i64,
        )
    }

    fn set(&self, t: SystemTime) {
        if let Ok(mut g) = self.0.lock() {
            *g = Some(t);
        }
    }
}

/// A `Retry-After` value (RFC 9110: delay-seconds or HTTP-date) as a time.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<SystemTime> {
    let v = value.trim();
    match v.parse::<u64>() {
        Ok(secs) => Some(now + Duration::from_secs(secs)),
        Err(_) => httpdate::parse_http_date(v).ok(),
    }
}

/// The HTTPS client wrapped to note `Retry-After` on refusals.
struct Recording {
    inner: Box<dyn HttpClient>,
    seen: RetryAfter,
}

impl HttpClient for Recording {
    fn request(
        &self,
        req: http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let fut = self.inner.request(req);
        let seen = self.seen.clone();
        Box::pin(async move {
            let rsp = fut.await?;
            let status = rsp.parts.status.as_u16();
            if status == 429 || status == 503 {
                let at = rsp
                    .parts
                    .headers
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, SystemTime::now()));
                if let Some(at) = at {
                    seen.set(at);
                }
            }
            Ok(rsp)
        })
    }
}

/// An error with its causes (`a: b: c`), and, when the CA's HTTPS certificate
/// is not trusted, what to do about it.
pub fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = c.source();
    }
    let mut out = parts.join(": ");
    let lower = out.to_ascii_lowercase();
    if lower.contains("invalid peer certificate") || lower.contains("unknownissuer") {
        out.push_str(
            " (the ACME server's HTTPS certificate is not trusted: set `[acme] ca_file` \
             (`hostplane up --acme-ca-file`) to the PEM of the CA that signed it — for \
             Pebble its test CA, e.g. /usr/share/pebble/test/certs/pebble.minica.pem — or \
             check the `directory` URL)",
        );
    } else if lower.contains("client error (connect)") {
        out.push_str(" (cannot reach the ACME server: check `[acme] directory` and the network)");
    }
    out
}

/// The HTTPS client the ACME protocol runs over: the system's roots and those of
/// `ca_file`; refusals' `Retry-After` noted in `seen`.
pub fn http_client(
    ca_file: Option<&Path>,
    seen: &RetryAfter,
) -> Result<Box<dyn instant_acme::HttpClient>, ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for c in native.certs {
        let _ = roots.add(c);
    }
    if let Some(path) = ca_file {
        let err = |message: String| ClientError::CaFile {
            path: path.display().to_string(),
            message,
        };
        let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        let mut n = 0;
        for c in rustls_pemfile::certs(&mut pem.as_slice()) {
            let c = c.map_err(|e| err(format!("{e} (it must hold PEM certificates)")))?;
            roots
                .add(c)
                .map_err(|e| err(format!("{e} (not a usable CA certificate)")))?;
            n += 1;
        }
        if n == 0 {
            return Err(err(
                "holds no PEM certificate (`-----BEGIN CERTIFICATE-----`): give the CA \
                 certificate that signed the ACME server's HTTPS certificate"
                    .into(),
            ));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::CaFile {
            path: String::new(),
            message: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .build();
    let client: HyperClient<_, BodyWrapper<Bytes>> =
        HyperClient::builder(TokioExecutor::new()).build::<_, BodyWrapper<Bytes>>(https);
    Ok(Box::new(Recording {
        inner: Box::new(client),
        seen: seen.clone(),
    }))
}

/// The platform's account on `config`'s CA: the stored one when it was made for
/// the same directory, else a new one (stored before it is used).
pub async fn account(
    store: &Store,
    config: &AcmeConfig,
    data_dir: &Path,
    seen: &RetryAfter,
) -> Result<Account, ClientError> {
    let directory = config.directory_url().to_owned();
    let ca_file = config.ca_file_path(data_dir);
    let name = SecretPurpose::AcmeAccount.store_name(ACCOUNT_SUBJECT);
    let stored = store
        .get_by_name::<Secret>(store::Scope::All, &name)
        .await?;
    if let Some(s) = &stored {
        if s.data.names.first() == Some(&directory) {
            let creds: AccountCredentials = serde_json::from_str(&s.data.private)?;
            let builder = Account::builder_with_http(http_client(ca_file.as_deref(), seen)?);
            return Ok(builder.from_credentials(creds).await?);
        }
    }
    let contact: Vec<String> = config.email.iter().map(|e| format!("mailto:{e}")).collect();
    let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
    let eab = config
        .eab()
        .map(|(kid, key)| ExternalAccountKey::new(kid, &key));
    let builder = Account::builder_with_http(http_client(ca_file.as_deref(), seen)?);
    let (account, creds) = builder
        .create(
            &NewAccount {
                contact: &contact,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            directory.clone(),
            eab.as_ref(),
        )
        .await?;
    let data = Secret {
        purpose: SecretPurpose::AcmeAccount,
        subject: ACCOUNT_SUBJECT.into(),
        public: account.id().to_owned(),
        private: serde_json::to_string(&creds)?,
        algorithm: "ecdsa-p256".into(),
        not_after: None,
        uploaded: false,
        names: vec![directory],
    };
    let mut tx = store.begin(super::lease::actor()).await?;
    match tx.get_by_name::<Secret>(&name).await? {
        Some(cur) => {
            tx.update(cur.meta.id, &name, data).await?;
        }
        None => {
            tx.create(NewObject {
                name,
                owner: None,
                parent: None,
                data,
            })
            .await?;
        }
    }
    tx.commit().await?;
    tracing::info!(account = account.id(), "ACME account registered");
    Ok(account)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_as_seconds_or_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(now + Duration::from_secs(120))
        );
        let date = parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now).unwrap();
        assert_eq!(
            date.duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            784_111_777
        );
        assert_eq!(parse_retry_after("soon", now), None);
        let seen = RetryAfter::default();
        assert_eq!(seen.take(), None);
        seen.set(SystemTime::now() + Duration::from_secs(3600));
        assert!(seen.take().is_some_and(|s| (3500..=3600).contains(&s)));
        assert_eq!(seen.take(), None, "taken once");
    }

    #[test]
    fn a_ca_file_without_certificates_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("roots.pem");
        std::fs::write(&f, "not a certificate\n").unwrap();
        let e = http_client(Some(&f), &RetryAfter::default())
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("roots.pem") && e.contains("no PEM certificate"),
            "{e}"
        );
    }

    /// An ACME server whose HTTPS certificate is not trusted: the error names the
    /// TLS cause and `ca_file`, not just "client error (Connect)".
    #[tokio::test]
    async fn an_untrusted_ca_says_what_to_do() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let certs = vec![cert.der().clone()];
        let pk = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, pk)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            if let Ok((tcp, _)) = listener.accept().await {
                let _ = acceptor.accept(tcp).await;
            }
        });
        let client = http_client(None, &RetryAfter::default()).unwrap();
        let req = http::Request::get(format!("https://{addr}/dir"))
            .body(BodyWrapper::from(Vec::new()))
            .unwrap();
        let e = match client.request(req).await {
            Ok(_) => panic!("an untrusted certificate was accepted"),
            Err(e) => describe(&e),
        };
        assert!(e.contains("ca_file") && e.contains("UnknownIssuer"), "{e}");
        server.abort();
    }
}
