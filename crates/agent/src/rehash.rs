//! Sending `POST /v1/agent/rehash`: when a mail or FTP engine sees the first right
//! login against an imported legacy password hash (crate `passhash`), it makes the
//! argon2id replacement off the async threads and reports it to a controller with
//! the agent's client certificate. The controller stores it only while the stored
//! hash is still the old one, then sends the new config as for any change.
//!
//! One reporter per agent process ([`install`] at engine start); without one (tests
//! without a controller) a report is only logged. Reports are best effort: a lost one
//! is made again at the next login.

use std::net::IpAddr;
use std::sync::OnceLock;

use proto::rehash::{RehashAck, RehashReport, REHASH_PATH};

use crate::supervisor::EngineContext;

#[derive(Debug)]
struct Reporter {
    http: reqwest::Client,
    controllers: Vec<String>,
}

static REPORTER: OnceLock<Reporter> = OnceLock::new();

/// An HTTPS client to the controllers with the agent's client certificate, bound
/// to `bind`, whose requests time out after `timeout` (`None` without an identity).
pub(crate) fn controller_client(
    ctx: &EngineContext,
    bind: IpAddr,
    timeout: std::time::Duration,
) -> Option<reqwest::Client> {
    let id = ctx.identity.as_ref()?;
    let cert = std::fs::read_to_string(&id.cert).ok()?;
    let key = std::fs::read_to_string(&id.key).ok()?;
    let ca = std::fs::read(&id.ca).ok()?;
    let mut pem = cert.trim_end().to_owned();
    pem.push('\n');
    pem.push_str(&key);
    let identity = reqwest::Identity::from_pem(pem.as_bytes()).ok()?;
    let root = reqwest::Certificate::from_pem(&ca).ok()?;
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(root)
        .identity(identity)
        .https_only(true)
        .local_address(Some(bind))
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(timeout)
        .build()
        .ok()
}

/// Set up this process's reporter from an engine's context (the first call wins).
pub fn install(ctx: &EngineContext) {
    if REPORTER.get().is_some() {
        return;
    }
    if let Some(http) = controller_client(ctx, ctx.bind, std::time::Duration::from_secs(30)) {
        let _ = REPORTER.set(Reporter {
            http,
            controllers: ctx.controllers.clone(),
        });
    }
}

/// After a right `password` for `name` (`kind`: `mailbox` or `ftp_account`) whose
/// stored hash `old_hash` is legacy: hash it to argon2id on the blocking pool and
/// report it, in the background.
pub fn rehash(kind: &'static str, name: String, old_hash: String, password: String) {
    let Some(reporter) = REPORTER.get() else {
        tracing::debug!(
            kind,
            name,
            "legacy hash not rehashed: no controller to report to"
        );
        return;
    };
    tokio::spawn(async move {
        let new_hash = match tokio::task::spawn_blocking(move || passhash::hash(&password)).await {
            Ok(Ok(h)) => h,
            _ => return,
        };
        let report = RehashReport {
            kind: kind.to_owned(),
            name: name.clone(),
            old_hash,
            new_hash,
        };
        for base in &reporter.controllers {
            let url = format!("{}{REHASH_PATH}", base.trim_end_matches('/'));
            match reporter.http.post(&url).json(&report).send().await {
                Ok(r) if r.status().is_success() => {
                    let replaced = r.json::<RehashAck>().await.is_ok_and(|a| a.replaced);
                    tracing::info!(
                        kind,
                        name,
                        replaced,
                        "legacy password hash rehashed to argon2id"
                    );
                    return;
                }
                Ok(r) => {
                    let status = r.status();
                    let body = r.text().await.unwrap_or_default();
                    tracing::warn!(kind, name, %status, body, "rehash report refused");
                }
                Err(e) => tracing::warn!(kind, name, error = %e, "rehash report failed"),
            }
        }
    });
}
