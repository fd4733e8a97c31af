//! Mail from sites (PHP `mail()`, issue 15) on a web server.
//!
//! Every site's pool gets `sendmail_path` = `hostplane sendmail --socket <sock> -t
//! -i` ([`client`]). Run by PHP as the site's own user, it hands the message to the
//! engine's sendmail socket ([`socket`]), which knows the site only by the peer's
//! uid (`SO_PEERCRED`: the site's pool user), never by anything the caller says.
//! The message is checked and completed ([`message`], the sender rule of
//! `model::sitemail`) and written to the durable spool ([`spool`], fsynced) before
//! sendmail exits 0. A worker ([`worker`]) submits each spooled message to the
//! site's mail cluster ([`submit`]: the domain's mail servers, primary first;
//! STARTTLS with the controller CA; AUTH as `site:<domain>` with the secret from
//! the site's config), retrying with backoff while they are unreachable or defer,
//! across engine restarts, for [`EXPIRE_AFTER`] at most.
//!
//! A site whose domain has no mail role is refused at the socket with a sentence
//! saying so (PHP's `mail()` returns false and the pool's log has the reason).

pub mod client;
pub mod message;
pub mod socket;
pub mod spool;
pub mod submit;
pub mod worker;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use proto::agent_v1::{SiteMail, WebConfig};
use tokio::sync::Notify;

pub use spool::{Envelope, Spool, Spooled};

/// How long a message may stay spooled before it is dropped (with a log line),
/// as MTAs do.
pub const EXPIRE_AFTER: Duration = Duration::from_secs(5 * 24 * 3600);

/// The largest message a site may send (the mail server's default limit).
pub const MAX_MESSAGE_BYTES: usize = 25 * 1024 * 1024;

/// Who may send and where their mail goes, from the last applied config.
#[derive(Debug, Default)]
pub struct Routes {
    /// A site's pool user → its domain (as configured, lower case).
    pub by_user: HashMap<String, String>,
    /// A site's domain → its mail route (`None`: the domain has no mail role).
    pub by_domain: HashMap<String, Option<SiteMail>>,
}

impl Routes {
    /// The routes of every site of `cfg` (pure; names are checked when used).
    pub fn of(cfg: &WebConfig) -> Self {
        let mut r = Routes::default();
        for ws in &cfg.sites {
            let domain = ws.domain.trim_end_matches('.').to_ascii_lowercase();
            r.by_user
                .insert(crate::plan::pool_user(&domain), domain.clone());
            r.by_domain.insert(domain, ws.mail.clone());
        }
        r
    }
}

/// Timing of the spool worker (defaults as an MTA; tests shorten them).
#[derive(Debug, Clone)]
pub struct MailerOptions {
    /// The first retry waits this long; each next one twice as long …
    pub retry_base: Duration,
    /// … up to this.
    pub retry_max: Duration,
    /// Dropped after this long in the spool.
    pub expire_after: Duration,
    /// Name in EHLO.
    pub helo: String,
    /// The engine's log folder: a refused `mail()` is written to the site's error
    /// log there (what `hostplane site logs --error` shows); `None`: only traced.
    pub log_dir: Option<PathBuf>,
}

impl Default for MailerOptions {
    fn default() -> Self {
        Self {
            retry_base: Duration::from_secs(60),
            retry_max: Duration::from_secs(30 * 60),
            expire_after: EXPIRE_AFTER,
            helo: "localhost".into(),
            log_dir: None,
        }
    }
}

/// State the socket and the worker share.
pub(crate) struct Shared {
    pub routes: ArcSwap<Routes>,
    pub spool: Spool,
    pub wake: Notify,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub opts: MailerOptions,
    pub queued: std::sync::atomic::AtomicUsize,
    /// Per site, the mail waiting for a retry (the worker's last pass).
    pub waiting: std::sync::Mutex<Vec<proto::agent_v1::SiteMailSpool>>,
}

/// The sendmail socket and the spool worker of one web engine.
pub struct Mailer {
    shared: Arc<Shared>,
    socket: PathBuf,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("socket", &self.socket)
            .finish_non_exhaustive()
    }
}

/// A TLS client config trusting only the CA in `ca_pem` (the controller's).
pub fn tls_client(ca_pem: &[u8]) -> std::io::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut &ca_pem[..]) {
        roots.add(cert?).map_err(std::io::Error::other)?;
    }
    if roots.is_empty() {
        return Err(std::io::Error::other("no CA certificate in the PEM"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

impl Mailer {
    /// Listen on the unix socket `socket` (mode 0666: every site's PHP user may
    /// connect; who it is comes from the kernel) and start the worker over the
    /// spool in `spool_dir`. `tls`: the roots mail servers' certificates must
    /// chain to (`None`: nothing is submitted, mail stays spooled).
    pub fn start(
        socket: &Path,
        spool_dir: &Path,
        tls: Option<Arc<rustls::ClientConfig>>,
        opts: MailerOptions,
    ) -> std::io::Result<Self> {
        let spool = Spool::open(spool_dir)?;
        let listener = socket::bind(socket)?;
        let shared = Arc::new(Shared {
            routes: ArcSwap::from_pointee(Routes::default()),
            spool,
            wake: Notify::new(),
            tls,
            opts,
            queued: std::sync::atomic::AtomicUsize::new(0),
            waiting: std::sync::Mutex::new(Vec::new()),
        });
        let tasks = vec![
            tokio::spawn(socket::serve(listener, Arc::clone(&shared))),
            tokio::spawn(worker::run(Arc::clone(&shared))),
        ];
        Ok(Self {
            shared,
            socket: socket.to_path_buf(),
            tasks,
        })
    }

    /// Take the sites and routes of a newly applied config.
    pub fn set_routes(&self, cfg: &WebConfig) {
        self.shared.routes.store(Arc::new(Routes::of(cfg)));
        // a route may have appeared: try what waits
        self.shared.wake.notify_one();
    }

    /// The sendmail socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The spool.
    pub fn spool(&self) -> &Spool {
        &self.shared.spool
    }

    /// Messages in the spool at the worker's last pass.
    pub fn queued(&self) -> usize {
        self.shared
            .queued
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Per site, the mail waiting for another attempt at the worker's last pass
    /// (the heartbeat report `site show` reads).
    pub fn waiting(&self) -> Vec<proto::agent_v1::SiteMailSpool> {
        self.shared
            .waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Stop listening and submitting (spooled mail stays for the next start).
    pub fn stop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

impl Drop for Mailer {
    fn drop(&mut self) {
        self.stop();
    }
}
