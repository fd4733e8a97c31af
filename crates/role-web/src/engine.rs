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
//!
//! State under `ctx.state_dir`: `content/<domain>/tree` (a site's writable files,
//! served through `content/<domain>/current -> tree`; kept by the site's replica, see
//! [`crate::replicate`]; a site gone from the config has its folder deleted),
//! `replicas/<domain>` (the replica's index, outbox and temp files), `php/` (pool
//! sockets, temp dirs, php-fpm config and log), `logs/` (`<domain>.access.log`,
//! `error.log`, `<domain>.cron.log`: one line per cron run, [`crate::cron`]).

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
use crate::plan::{render, Layout, Plan};
use crate::replicate::Replication;
use crate::server::{run_with_options, ServerOptions};
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
    WebReport { php }
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
        tracing::info!(%http_addr, %https_addr, "web engine listening");
        Ok(Self {
            plan,
            stop: Some(stop),
            server: Some(server),
            fpm,
            watchdog,
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
            status: Arc::new(Mutex::new((
                EngineState::Ok,
                format!("serving 0 sites on http {http_addr} https {https_addr}"),
            ))),
        })
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
        // Swap first: static sites and certificates must not wait for PHP.
        self.plan.send_replace(Arc::new(plan));
        let fpm = self.fpm.lock().await.apply(&pools).await;
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
        Some(RoleReport::Web(self.php.clone()))
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
            self.replication.stop();
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
    }
}
