//! The ACME client side: the HTTPS client to the CA (system roots plus
//! `[acme] ca_file`, rustls with ring), and the platform's one account, its
//! credentials kept as the [`SecretPurpose::AcmeAccount`] secret
//! `acme_account:platform` and made on first use (with the contact email and, when
//! configured, External Account Binding). `instant-acme` does the protocol
//! (JWS, nonces and their `badNonce` retry, RFC 8555).

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use instant_acme::{Account, AccountCredentials, BodyWrapper, ExternalAccountKey, NewAccount};
use model::entity::{Secret, SecretPurpose};
use store::{NewObject, Store};

use super::AcmeConfig;

/// The store subject of the platform's account.
const ACCOUNT_SUBJECT: &str = "platform";

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
    /// The CA refused or could not be reached.
    #[error("ACME: {0}")]
    Acme(#[from] instant_acme::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// Stored credentials do not parse.
    #[error("stored ACME account: {0}")]
    Credentials(#[from] serde_json::Error),
}

/// The HTTPS client the ACME protocol runs over: the system's roots and those of
/// `ca_file`.
pub fn http_client(
    ca_file: Option<&Path>,
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
            let c = c.map_err(|e| err(e.to_string()))?;
            roots.add(c).map_err(|e| err(e.to_string()))?;
            n += 1;
        }
        if n == 0 {
            return Err(err("holds no PEM certificate".into()));
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
    Ok(Box::new(client))
}

/// The platform's account on `config`'s CA: the stored one when it was made for
/// the same directory, else a new one (stored before it is used).
pub async fn account(
    store: &Store,
    config: &AcmeConfig,
    data_dir: &Path,
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
            let builder = Account::builder_with_http(http_client(ca_file.as_deref())?);
            return Ok(builder.from_credentials(creds).await?);
        }
    }
    let contact: Vec<String> = config.email.iter().map(|e| format!("mailto:{e}")).collect();
    let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
    let eab = config
        .eab()
        .map(|(kid, key)| ExternalAccountKey::new(kid, &key));
    let builder = Account::builder_with_http(http_client(ca_file.as_deref())?);
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
