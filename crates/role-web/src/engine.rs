//! The agent adapter: [`start_engine`] binds the listeners and starts the server;
//! [`WebEngine::apply`] renders the desired config, swaps the plan (open
//! connections keep going; the next request sees the new plan) and converges
//! PHP-FPM.
//!
//! Ports: 80 and 443 on the server's address, or 10080 and 10443 when binding a
//! privileged port is not permitted. Options read from the agent config's `[engine]`
//! table:
//!
//! | key | meaning | default |
//! | --- | --- | --- |
//! | `http_port` | plain HTTP port (`0`: any) | 80, else 10080 |
//! | `https_port` | HTTPS port (`0`: any) | 443, else 10443 |
//! | `php_fpm` | path of the php-fpm binary | `/usr/sbin/php-fpm*` |
//! | `access_log` | `on` / `off` | `on` |
//! | `threads` | dedicated server threads (`0`: the agent's runtime) | one per CPU |
//! | `sessions` | `on` / `off`: PHP sessions in the shared store ([`crate::sessions`]) | `on` |
//! | `sessions_port` | session replication port (`0`: any) | 7444 (`SESSION_PORT`) |
//! | `sessions_site_mb` | memory one site's sessions may use | 64 |
//! | `sessions_wait_ms` | how long a session write waits for the peers at most | 500 |
//!
//! The session store runs only as root (pools are then their sites' own users, which
//! is how the store tells sites apart) and for the PHP versions whose php-fpm has the
//! `redis` extension; other pools keep PHP's file sessions in their temp dir. A
//! replication port that cannot be bound leaves sessions on this server (logged, and
//! named in the health).
//! | `sendmail` | the sendmail command in PHP's `sendmail_path` (`--socket … -t -i` appended) | `<this program> sendmail` |
//! | `mail_retry_secs` | first retry of spooled site mail (doubling, up to 30 min) | 60 |
//!
//! State under `ctx.state_dir`: `content/<domain>/tree` (a site's writable files,
//! served through `content/<domain>/current -> tree`; kept by the site's replica, see
//! [`crate::replicate`]; a site gone from the config has its folder deleted),
//! `replicas/<domain>` (the replica's index, outbox and temp files), `php/` (pool
//! sockets, temp dirs, php-fpm config and log, `sendmail.sock`), `mail-spool/`
//! (site mail waiting for its mail cluster, [`crate::mailer`]), `logs/`
//! (`<domain>.access.log`, `.error.log`, `.php.log`, `error.log`, `<domain>.cron.log`:
//! one line per cron run, [`crate::cron`]).

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent::supervisor::{BoxFuture, EngineContext, EngineError, RoleEngine};
use proto::agent_v1::{
    EngineHealth, EngineState, PhpInstalled, RejectedObject, RoleConfig, RoleReport, WebConfig,
    WebReport,
};
use tokio::sync::{oneshot, watch};

use crate::fpm::FpmManager;
use crate::plan::{render, Layout, Plan, SessionsLayout};
use crate::replicate::Replication;
use crate::server::{run_with_options, ServerOptions};
use crate::sessions::{Limits, Peer, Sessions};
use crate::tls::CertStore;

/// How often a dead php-fpm master is noticed and restarted (and PHP site
/// folders synced meanwhile get their owner).
const FPM_WATCHDOG: Duration = Duration::from_secs(5);

/// The running web engine.
pub struct WebEngine {
    plan: watch::Sender<Arc<Plan>>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    fpm: Arc<tokio::sync::Mutex<FpmManager>>,
    watchdog: tokio::task::JoinHandle<()>,
    /// Answering the controller's questions (a site's logs): one task per controller.
    ops: Vec<tokio::task::JoinHandle<()>>,
    layout: Layout,
    http: SocketAddr,
    https: SocketAddr,
    certs: CertStore,
    status: Arc<Mutex<(EngineState, String)>>,
    /// Every replicated site (issue 14).
    replication: Replication,
    /// Sites of the last config not applied (each keeps its previous version).
    rejected: Vec<RejectedObject>,
    /// This server's name (a site's cron runs here when its holder names it).
    me: String,
    /// The cron jobs of the sites this server holds (issue 15).
    cron: crate::cron::CronRunner,
    /// The PHP versions found at start (the report the controller checks a
    /// site's chosen version against).
    php: WebReport,
    /// The shared PHP session store, when it runs.
    sessions: Option<Sessions>,
    /// Mail from sites: the sendmail socket and the spool worker, or why not.
    mailer: Result<crate::mailer::Mailer, String>,
}

/// The PHP versions of this server: every `/usr/sbin/php-fpmX.Y`, with what its
/// `-v` says, and which one `default` (the php-fpm of sites without a chosen
/// version) is. Runs each binary once, at engine start.
fn php_report(default: Option<&std::path::Path>) -> WebReport {
    let mut php: Vec<PhpInstalled> = crate::fpm::installed()
        .into_iter()
        .map(|(version, bin)| PhpInstalled {
            full: crate::fpm::binary_version(&bin).map(|(_, full)| full),
            version,
            default: false,
        })
        .collect();
    if let Some((short, full)) = default.and_then(crate::fpm::binary_version) {
        match php.iter_mut().find(|p| p.version == short) {
            Some(p) => p.default = true,
            // A php-fpm outside /usr/sbin (the `php_fpm` option): it still runs
            // the sites without a chosen version.
            None => php.push(PhpInstalled {
                version: short,
                full: Some(full),
                default: true,
            }),
        }
    }
    WebReport {
        php,
        mail_spool: Vec::new(),
    }
}

impl std::fmt::Debug for WebEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebEngine")
            .field("http", &self.http)
            .field("https", &self.https)
            .finish_non_exhaustive()
    }
}

/// Build the web engine for the agent (register it for the `web` role).
pub fn start_engine(ctx: &EngineContext) -> Result<Box<dyn RoleEngine>, EngineError> {
    Ok(Box::new(WebEngine::start(ctx)?))
}

fn port_option(ctx: &EngineContext, key: &str) -> Result<Option<u16>, EngineError> {
    ctx.options
        .get(key)
        .map(|v| {
            v.parse::<u16>().map_err(|_| {
                EngineError::Invalid(format!("engine option {key}: `{v}` is not a port"))
            })
        })
        .transpose()
}

/// Bind `port` (or `standard`, falling back to `standard + 10000` when not
/// permitted) on `ip`.
fn bind(
    ip: IpAddr,
    port: Option<u16>,
    standard: u16,
) -> Result<std::net::TcpListener, EngineError> {
    if let Some(p) = port {
        return Ok(std::net::TcpListener::bind((ip, p))?);
    }
    match std::net::TcpListener::bind((ip, standard)) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            Ok(std::net::TcpListener::bind((ip, standard + 10000))?)
        }
        r => Ok(r?),
    }
}

fn tokio_listener(l: std::net::TcpListener) -> Result<tokio::net::TcpListener, EngineError> {
    l.set_nonblocking(true)?;
    Ok(tokio::net::TcpListener::from_std(l)?)
}

impl WebEngine {
    /// Bind, create the state directories and start serving an empty plan.
    pub fn start(ctx: &EngineContext) -> Result<Self, EngineError> {
        let http = bind(ctx.bind, port_option(ctx, "http_port")?, 80)?;
        let https = bind(ctx.bind, port_option(ctx, "https_port")?, 443)?;
        let (http_addr, https_addr) = (http.local_addr()?, https.local_addr()?);
        let access_log = match ctx.options.get("access_log").map(String::as_str) {
            None | Some("on") => true,
            Some("off") => false,
            Some(v) => {
                return Err(EngineError::Invalid(format!(
                    "engine option access_log: `{v}` is neither on nor off"
                )))
            }
        };
        let threads = match ctx.options.get("threads") {
            Some(v) => v.parse::<usize>().map_err(|_| {
                EngineError::Invalid(format!("engine option threads: `{v}` is not a number"))
            })?,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let binary = ctx.options.get("php_fpm").map(PathBuf::from);
        let php = php_report(binary.clone().or_else(crate::fpm::find_binary).as_deref());
        let mut layout = Layout::under(&ctx.state_dir);
        layout.php_versions = php.php.iter().map(|p| p.version.clone()).collect();
        std::fs::create_dir_all(&layout.content_root)?;
        std::fs::create_dir_all(&layout.php_dir)?;
        let default_fpm = binary.clone().or_else(crate::fpm::find_binary);
        let sessions = start_sessions(ctx, &layout, default_fpm.as_deref())?;
        layout.sessions = sessions.as_ref().map(|(_, l)| l.clone());
        let sessions = sessions.map(|(s, _)| s);
        // Without it (say, a socket path too long for a unix socket) sites are
        // served anyway; mail() then fails and the health detail says why.
        let mailer = match start_mailer(ctx, &layout) {
            Ok((mailer, path)) => {
                layout.sendmail_path = Some(path);
                Ok(mailer)
            }
            Err(e) => {
                tracing::error!(error = %e, "mail from sites is not available");
                Err(e.to_string())
            }
        };
        let certs = CertStore::default();
        let opts = ServerOptions {
            log_dir: Some(ctx.state_dir.join("logs")),
            access_log,
            certs: certs.clone(),
            threads,
            ..ServerOptions::default()
        };
        let (plan, rx) = watch::channel(Arc::new(Plan::default()));
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(run_with_options(
            Some(tokio_listener(http)?),
            Some(tokio_listener(https)?),
            rx,
            async move {
                let _ = stopped.await;
            },
            opts,
        ));
        let fpm = Arc::new(tokio::sync::Mutex::new(FpmManager::new(
            layout.php_dir.clone(),
            binary,
        )));
        let watchdog = tokio::spawn(fpm_watchdog(fpm.clone()));
        let log_dir = ctx.state_dir.join("logs");
        let ops = agent::ops::serve(
            ctx,
            Arc::new(move |op| match op {
                proto::agent_ops::Op::SiteLogs(q) => match crate::logread::read_site(
                    &log_dir,
                    &q.domain,
                    &q.kinds,
                    q.since_ms,
                    q.limit,
                    crate::log::Rotation::default().keep,
                ) {
                    Ok(a) => proto::agent_ops::OpAnswer::SiteLogs(a),
                    Err(e) => proto::agent_ops::OpAnswer::Error {
                        message: format!("reading the logs of {}: {e}", q.domain),
                    },
                },
            }),
        );
        tracing::info!(%http_addr, %https_addr, "web engine listening");
        Ok(Self {
            plan,
            stop: Some(stop),
            server: Some(server),
            fpm,
            watchdog,
            ops,
            layout,
            http: http_addr,
            https: https_addr,
            certs,
            replication: Replication::new(
                ctx.server.clone(),
                ctx.bind,
                &ctx.state_dir,
                ctx.identity.clone(),
            ),
            me: ctx.server.clone(),
            cron: crate::cron::CronRunner::start(ctx.state_dir.join("logs"), http_addr),
            rejected: Vec::new(),
            php,
            sessions,
            mailer,
            status: Arc::new(Mutex::new((
                EngineState::Ok,
                format!("serving 0 sites on http {http_addr} https {https_addr}"),
            ))),
        })
    }

    /// The shared PHP session store, when it runs.
    pub fn sessions(&self) -> Option<&Sessions> {
        self.sessions.as_ref()
    }

    /// The plain HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http
    }

    /// The HTTPS address.
    pub fn https_addr(&self) -> SocketAddr {
        self.https
    }

    /// The run-time certificate store (where ACME-issued certificates go).
    pub fn cert_store(&self) -> &CertStore {
        &self.certs
    }

    /// The cron runner (issue 15).
    pub fn cron(&self) -> &crate::cron::CronRunner {
        &self.cron
    }

    /// The replicated sites (issue 14).
    pub fn replication(&self) -> &crate::replicate::Replication {
        &self.replication
    }

    /// Mail from sites: the sendmail socket and the spool (`None` when it
    /// could not start; the health detail says why).
    pub fn mailer(&self) -> Option<&crate::mailer::Mailer> {
        self.mailer.as_ref().ok()
    }

    /// Where site content is served from.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    fn set_status(&self, state: EngineState, detail: String) {
        *self
            .status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = (state, detail);
    }

    async fn apply_web(&mut self, cfg: &WebConfig) -> Result<(), EngineError> {
        let previous = self.plan.borrow().clone();
        let (plan, rejected) = render(cfg, &self.layout, &previous);
        self.rejected = rejected;
        let pools = plan.php_pools();
        let active = plan.active_sites().count();
        let mut warnings = plan.warnings.clone();
        let (cron, cron_warnings) = crate::cron::cron_sites(cfg, &plan, &self.me);
        warnings.extend(cron_warnings);
        self.cron.set(cron);
        self.replication.converge(cfg, &self.layout);
        if let Ok(m) = &self.mailer {
            m.set_routes(cfg);
        }
        // Swap first: static sites and certificates must not wait for PHP.
        self.plan.send_replace(Arc::new(plan));
        let fpm = self.fpm.lock().await.apply(&pools).await;
        self.converge_sessions(cfg, &pools, &mut warnings).await;
        self.prune_removed_sites(cfg).await;
        if let Err(e) = &fpm {
            warnings.push(format!("php-fpm: {e}"));
        }
        let ports = format!("http {} https {}", self.http, self.https);
        if warnings.is_empty() {
            self.set_status(
                EngineState::Ok,
                format!(
                    "serving {active} sites ({} with PHP) on {ports}",
                    pools.len()
                ),
            );
        } else {
            self.set_status(
                EngineState::Degraded,
                format!("serving {active} sites on {ports}; {}", warnings.join("; ")),
            );
        }
        fpm.map_err(|e| EngineError::Apply(format!("php-fpm: {e}")))
    }
}

impl WebEngine {
    /// Tell the session store which uid is which site (the pools just applied) and
    /// who the cluster's other web servers are.
    async fn converge_sessions(
        &mut self,
        cfg: &WebConfig,
        pools: &[crate::plan::PhpSite],
        warnings: &mut Vec<String>,
    ) {
        let Some(sessions) = &mut self.sessions else {
            return;
        };
        let fpm = self.fpm.lock().await;
        let by_uid = pools
            .iter()
            .filter(|p| p.sessions.is_some())
            .filter_map(|p| {
                let domain = p.site_dir.file_name()?.to_str()?.to_owned();
                Some((fpm.uid_of(&p.user)?, domain))
            })
            .collect();
        drop(fpm);
        let sites = cfg
            .sites
            .iter()
            .filter(|s| s.php)
            .filter_map(|s| crate::plan::normalize_host(&s.domain).ok())
            .collect();
        sessions.set_sites(sites, by_uid);
        let mut peers = Vec::new();
        for p in &cfg.peers {
            match p.address.parse() {
                Ok(addr) => peers.push(Peer {
                    name: p.name.clone(),
                    addr,
                }),
                Err(_) => warnings.push(format!(
                    "session peer {}: `{}` is not an address",
                    p.name, p.address
                )),
            }
        }
        if !peers.is_empty() {
            if let Some(e) = sessions.setup_error() {
                warnings.push(format!("PHP sessions not replicated: {e}"));
            }
        }
        sessions.set_peers(peers);
    }

    /// Delete the content of sites this server no longer has at all (deleted, or
    /// moved to another cluster): a removed customer's files must not linger on
    /// every web server. Sites kept inactive (`single` sites on standby) stay.
    async fn prune_removed_sites(&self, cfg: &WebConfig) {
        let keep: BTreeSet<String> = cfg
            .sites
            .iter()
            .map(|s| s.domain.trim_end_matches('.').to_ascii_lowercase())
            .collect();
        let root = self.layout.content_root.clone();
        let states = self.replication.state_root().to_path_buf();
        let prune = move || {
            // a stopped replica's state goes with its files (its loop has been told
            // to stop; a restart of the site starts from the hub's manifest)
            prune_content(&states, &keep);
            prune_content(&root, &keep)
        };
        match tokio::task::spawn_blocking(prune).await {
            Ok(removed) => {
                for domain in removed {
                    tracing::info!(%domain, "deleted the content of a site this server no longer has");
                }
            }
            Err(e) => tracing::warn!(error = %e, "pruning old site content failed"),
        }
    }
}

/// Remove `<content_root>/<name>` for every site folder whose name is not in `keep`;
/// returns the names removed. Only folders named like a host name are touched
/// (never dot-folders or files), and symlinks inside are removed, not followed.
pub fn prune_content(content_root: &std::path::Path, keep: &BTreeSet<String>) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(content_root) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        let site_like = crate::plan::normalize_host(&name).is_ok_and(|n| n == name);
        if !is_dir || !site_like || keep.contains(&name) {
            continue;
        }
        match std::fs::remove_dir_all(entry.path()) {
            Ok(()) => removed.push(name),
            Err(e) => tracing::warn!(domain = %name, error = %e, "cannot delete old site content"),
        }
    }
    removed
}

fn on_off(ctx: &EngineContext, key: &str) -> Result<bool, EngineError> {
    match ctx.options.get(key).map(String::as_str) {
        None | Some("on") => Ok(true),
        Some("off") => Ok(false),
        Some(v) => Err(EngineError::Invalid(format!(
            "engine option {key}: `{v}` is neither on nor off"
        ))),
    }
}

fn number_option(ctx: &EngineContext, key: &str, default: u64) -> Result<u64, EngineError> {
    ctx.options.get(key).map_or(Ok(default), |v| {
        v.parse::<u64>().map_err(|_| {
            EngineError::Invalid(format!("engine option {key}: `{v}` is not a number"))
        })
    })
}

/// Start the shared PHP session store (see the module doc for when it runs).
fn start_sessions(
    ctx: &EngineContext,
    layout: &Layout,
    default_fpm: Option<&std::path::Path>,
) -> Result<Option<(Sessions, SessionsLayout)>, EngineError> {
    let site_mb = number_option(ctx, "sessions_site_mb", 64)?;
    let wait_ms = number_option(ctx, "sessions_wait_ms", 500)?;
    let port = port_option(ctx, "sessions_port")?;
    if !on_off(ctx, "sessions")? {
        return Ok(None);
    }
    if !rustix::process::geteuid().is_root() {
        tracing::info!("not root: PHP sessions stay files on each server");
        return Ok(None);
    }
    let default = default_fpm.is_some_and(crate::fpm::has_redis);
    let versions: Vec<String> = crate::fpm::installed()
        .into_iter()
        .filter(|(_, bin)| crate::fpm::has_redis(bin))
        .map(|(v, _)| v)
        .collect();
    if !default && versions.is_empty() {
        tracing::warn!("no php-fpm has the redis extension (php-redis): PHP sessions stay files on each server");
        return Ok(None);
    }
    let peer_listener = match std::net::TcpListener::bind((
        ctx.bind,
        port.unwrap_or(proto::agent_v1::SESSION_PORT),
    )) {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::warn!(error = %e, "cannot bind the session replication port: PHP sessions stay on this server");
            None
        }
    };
    let socket = layout.php_dir.join("sessions.sock");
    // Serving must not depend on the session store: without it, pools keep files.
    let started = Sessions::start(crate::sessions::Options {
        socket: socket.clone(),
        limits: Limits {
            site_bytes: usize::try_from(site_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX),
            ..Limits::default()
        },
        wait: Duration::from_millis(wait_ms),
        identity: ctx.identity.clone(),
        peer_listener,
        bind: ctx.bind,
    });
    let sessions = match started {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, socket = %socket.display(), "cannot start the PHP session store: PHP sessions stay files on each server");
            return Ok(None);
        }
    };
    tracing::info!(socket = %socket.display(), replication = ?sessions.peer_addr(), "PHP session store started");
    Ok(Some((
        sessions,
        SessionsLayout {
            socket,
            versions,
            default,
        },
    )))
}

/// The sendmail socket and spool worker ([`crate::mailer`]) and PHP's
/// `sendmail_path` that reaches them. Mail servers' certificates are checked
/// against the agent's CA (none without an identity: mail then stays spooled).
fn start_mailer(
    ctx: &EngineContext,
    layout: &Layout,
) -> Result<(crate::mailer::Mailer, String), EngineError> {
    let command = match ctx.options.get("sendmail") {
        Some(c) => c.clone(),
        None => format!("{} sendmail", std::env::current_exe()?.display()),
    };
    let socket = layout.php_dir.join("sendmail.sock");
    let path = format!("{command} --socket {} -t -i", socket.display());
    if path.contains(['"', '\n', '\r', '\\', '$', '`']) {
        return Err(EngineError::Invalid(format!(
            "the sendmail command line {path:?} has characters php-fpm's config cannot carry"
        )));
    }
    let mut opts = crate::mailer::MailerOptions {
        helo: ctx.server.clone(),
        log_dir: Some(ctx.state_dir.join("logs")),
        ..Default::default()
    };
    if let Some(v) = ctx.options.get("mail_retry_secs") {
        let secs = v.parse::<u64>().map_err(|_| {
            EngineError::Invalid(format!(
                "engine option mail_retry_secs: `{v}` is not a number"
            ))
        })?;
        opts.retry_base = Duration::from_secs(secs.max(1));
        opts.retry_max = opts.retry_max.max(opts.retry_base);
    }
    let tls = match &ctx.identity {
        Some(id) => Some(crate::mailer::tls_client(&std::fs::read(&id.ca)?)?),
        None => None,
    };
    let mailer =
        crate::mailer::Mailer::start(&socket, &ctx.state_dir.join("mail-spool"), tls, opts)?;
    Ok((mailer, path))
}

/// Restart a php-fpm master that died (with its own pools only: the others are
/// not touched) and give newly synced PHP site folders their owner.
async fn fpm_watchdog(fpm: Arc<tokio::sync::Mutex<FpmManager>>) {
    let mut last_error = String::new();
    loop {
        tokio::time::sleep(FPM_WATCHDOG).await;
        let mut m = fpm.lock().await;
        if !m.running() {
            tracing::warn!("a php-fpm master is gone; restarting it");
        }
        match m.revive().await {
            Ok(()) => last_error.clear(),
            // Logged once, not every tick (e.g. php-fpm not installed).
            Err(e) if e.to_string() != last_error => {
                last_error = e.to_string();
                tracing::error!(error = %last_error, "restarting php-fpm failed");
            }
            Err(_) => {}
        }
    }
}

impl RoleEngine for WebEngine {
    fn name(&self) -> &str {
        "web"
    }

    fn apply<'a>(&'a mut self, cfg: &'a RoleConfig) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(async move {
            match cfg {
                RoleConfig::Web(web) => self.apply_web(web).await,
                other => Err(EngineError::Invalid(format!(
                    "a web engine got a {} config",
                    other.role()
                ))),
            }
        })
    }

    fn health(&self) -> EngineHealth {
        let (mut state, mut detail) = self
            .status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(s) = &self.sessions {
            detail = format!("{detail}; {}", s.summary());
        }
        match &self.mailer {
            Ok(m) if m.queued() > 0 => {
                detail = format!("{detail}; {} site mails spooled", m.queued());
            }
            Ok(_) => {}
            Err(e) => detail = format!("{detail}; mail from sites unavailable: {e}"),
        }
        if let Some(sum) = self.replication.summary() {
            detail = format!("{detail}; {}", sum.detail);
            // Serving the local tree is still serving: degraded, not failed.
            if sum.degraded && state == EngineState::Ok {
                state = EngineState::Degraded;
            }
        }
        EngineHealth {
            name: "web".into(),
            state,
            detail,
        }
    }

    fn rejected(&self) -> Vec<RejectedObject> {
        self.rejected.clone()
    }

    fn report(&self) -> Option<RoleReport> {
        let mut report = self.php.clone();
        if let Ok(m) = &self.mailer {
            report.mail_spool = m.waiting();
        }
        Some(RoleReport::Web(report))
    }

    fn service_port(&self) -> Option<u16> {
        Some(self.http.port())
    }

    fn set_cron_lease(&mut self, lease: agent::lease::CronLease) {
        self.cron.set_lease(lease);
    }

    fn shutdown(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some(stop) = self.stop.take() {
                let _ = stop.send(());
            }
            if let Some(server) = self.server.take() {
                let _ = server.await;
            }
            self.cron.stop();
            self.watchdog.abort();
            self.ops.iter().for_each(tokio::task::JoinHandle::abort);
            if let Ok(m) = &mut self.mailer {
                m.stop();
            }
            self.replication.stop();
            if let Some(s) = &mut self.sessions {
                s.stop();
            }
            self.fpm.lock().await.stop().await;
        })
    }
}

impl Drop for WebEngine {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.watchdog.abort();
        self.ops.iter().for_each(tokio::task::JoinHandle::abort);
    }
}
