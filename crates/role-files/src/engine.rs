//! The files role engine for the agent's supervisor: FTP on port 21 (10021 without the
//! right to bind it, or the `ftp_port` option) and, on `sync_port` (default 7443), the
//! site-file hub's HTTPS routes (mutual TLS, `sitesync::transport`), both on the server's
//! address; each site's state (its tree, log, kept versions and conflicts) under
//! `<state_dir>/hub/<domain>/` ([`crate::sitehub`]). `apply` swaps accounts, served
//! sites, grants, quotas and the certificate in place: nobody is disconnected; it also
//! applies API restores once each. The state of domains no longer held goes to
//! `<state_dir>/trash/` ([`crate::trash`]).
//!
//! Options (agent config `[engine]`): see [`EngineOptions`].

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use agent::supervisor::{BoxFuture, EngineContext, EngineError, RoleEngine};
use proto::agent_v1::{
    EngineHealth, EngineState, FilesReport, FilesSiteStatus, RejectedObject, RoleConfig, RoleReport,
};
use sitesync::capture::Seen;
use sitesync::hub::Hub;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::auth::Accounts;
use crate::error::FilesError;
use crate::ftp::{run_ftp, FtpShared};
use crate::plan::{render, EngineOptions, FilesPlan};
use crate::sitehub::{open_hub, run_capture, run_reports, run_upkeep, RestoreBook, WatchCmd};
use crate::tls::{certified_key, sync_port_config, SwapCert};

impl From<FilesError> for EngineError {
    fn from(e: FilesError) -> Self {
        match e {
            FilesError::Invalid(m) => EngineError::Invalid(m),
            FilesError::Io(e) => EngineError::Io(e),
            other => EngineError::Apply(other.to_string()),
        }
    }
}

/// Bind `ip:port`; with `fallback`, a permission error on `port` tries `port + 10000`.
pub fn bind_tcp(ip: IpAddr, port: u16, fallback: bool) -> Result<TcpListener, std::io::Error> {
    let first = std::net::TcpListener::bind(SocketAddr::new(ip, port));
    let l = match first {
        Err(e) if fallback && e.kind() == std::io::ErrorKind::PermissionDenied => {
            std::net::TcpListener::bind(SocketAddr::new(ip, port.saturating_add(10000)))?
        }
        other => other?,
    };
    l.set_nonblocking(true)?;
    TcpListener::from_std(l)
}

/// The running files engine.
struct FilesEngine {
    accounts: Accounts,
    cert: Arc<SwapCert>,
    /// The sites held now (read by the upkeep and report tasks).
    served: Arc<RwLock<Arc<BTreeSet<String>>>>,
    /// The site-file hub: its trees are the sites.
    hub: Arc<Hub>,
    /// Tells the capture task which trees to watch.
    watch: tokio::sync::mpsc::UnboundedSender<WatchCmd>,
    /// The local paths each watched site was last watched with.
    watched: BTreeMap<String, Vec<String>>,
    /// The sites' part of the report, kept fresh in the background.
    site_report: Arc<Mutex<Vec<FilesSiteStatus>>>,
    /// API restores done, by id.
    restores: Arc<Mutex<RestoreBook>>,
    ftp_addr: SocketAddr,
    sync_addr: Option<SocketAddr>,
    tls_required: bool,
    stop: watch::Sender<bool>,
    status: Arc<Mutex<(EngineState, String)>>,
    applied: Option<FilesPlan>,
    /// Fetches API deployments from the controllers (`None` without an identity).
    fetcher: Option<agent::deploy::Fetcher>,
    /// The engine's private directory (deployment staging and records).
    state_dir: PathBuf,
    /// Deployments being applied now, by id.
    deploying: Arc<Mutex<std::collections::BTreeSet<String>>>,
    /// The last deployment failure, for the health detail.
    deploy_error: Arc<Mutex<Option<String>>>,
    /// Where folders of domains no longer held go (see [`crate::trash`]).
    trash_root: PathBuf,
    /// Objects of the last config not applied (each keeps its previous version).
    rejected: Vec<RejectedObject>,
    /// FTP logins (their throttle counts go into the health detail).
    logins: Arc<crate::auth::HashAuthenticator>,
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Start the files engine for `ctx` (binds its ports now; serves no site until `apply`).
pub fn start_engine(ctx: &EngineContext) -> Result<Box<dyn RoleEngine>, EngineError> {
    let opts = EngineOptions::parse(&ctx.options)?;
    agent::rehash::install(ctx);
    std::fs::create_dir_all(&ctx.state_dir)?;
    let hub = open_hub(&ctx.state_dir, &ctx.server)?;
    let ftp = match opts.ftp_port {
        Some(p) => bind_tcp(ctx.bind, p, false)?,
        None => bind_tcp(ctx.bind, 21, true)?,
    };
    let ftp_addr = ftp.local_addr()?;
    let accounts = Accounts::default();
    let cert = Arc::new(SwapCert::default());
    let served_sites: Arc<RwLock<Arc<BTreeSet<String>>>> = Arc::default();
    let (stop, stop_rx) = watch::channel(false);

    let shared = FtpShared::new(
        hub.clone(),
        accounts.clone(),
        cert.clone(),
        opts.passive_ports.clone(),
        opts.ftp_tls_required,
    );
    let logins = shared.authenticator.clone();
    tokio::spawn(run_ftp(ftp, shared, stopped(stop_rx.clone())));

    let sync_addr = match &ctx.identity {
        Some(id) => {
            let ca = std::fs::read(&id.ca)?;
            let tls = sync_port_config(cert.clone(), &ca)?;
            let l = bind_tcp(ctx.bind, opts.sync_port, false)?;
            let addr = l.local_addr()?;
            tokio::spawn(sitesync::transport::server::run_hub_server(
                l,
                tls,
                hub.clone(),
                stopped(stop_rx.clone()),
            ));
            Some(addr)
        }
        None => {
            tracing::warn!("no agent identity: web servers cannot reach the site-file hub");
            None
        }
    };
    let served = {
        let sites = served_sites.clone();
        move || {
            sites
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone()
        }
    };
    tokio::spawn(run_upkeep(
        hub.clone(),
        served.clone(),
        Duration::from_secs(opts.rescan_secs),
        stopped(stop_rx.clone()),
    ));
    let (watch_tx, watch_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(run_capture(hub.clone(), watch_rx, stopped(stop_rx.clone())));
    let site_report = Arc::new(Mutex::new(Vec::new()));
    tokio::spawn(run_reports(
        hub.clone(),
        served,
        site_report.clone(),
        stopped(stop_rx.clone()),
    ));
    let trash_root = ctx.state_dir.join("trash");
    tokio::spawn(purge_trash(
        trash_root.clone(),
        Duration::from_secs(opts.site_trash_days.saturating_mul(86400)),
        stopped(stop_rx),
    ));
    tracing::info!(%ftp_addr, ?sync_addr, "files engine listening");
    let engine = FilesEngine {
        accounts,
        cert,
        served: served_sites,
        watch: watch_tx,
        watched: BTreeMap::new(),
        site_report,
        restores: Arc::new(Mutex::new(RestoreBook::open(&ctx.state_dir))),
        hub,
        ftp_addr,
        sync_addr,
        tls_required: opts.ftp_tls_required,
        stop,
        status: Arc::new(Mutex::new((EngineState::Ok, String::new()))),
        applied: None,
        rejected: Vec::new(),
        fetcher: ctx.identity.as_ref().and_then(|id| {
            agent::deploy::Fetcher::new(id, ctx.bind, ctx.controllers.clone())
                .map_err(|e| tracing::warn!(error = %e, "site deployments cannot be fetched"))
                .ok()
        }),
        state_dir: ctx.state_dir.clone(),
        deploying: Arc::default(),
        deploy_error: Arc::default(),
        trash_root,
        logins,
    };
    engine.refresh_status(None);
    Ok(Box::new(engine))
}

/// Delete trashed site folders past their retention, hourly, until `stop`.
async fn purge_trash(
    trash_root: PathBuf,
    keep_for: Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        let root = trash_root.clone();
        let purged = tokio::task::spawn_blocking(move || {
            crate::trash::purge(&root, keep_for, std::time::SystemTime::now())
        })
        .await
        .unwrap_or_default();
        for folder in purged {
            tracing::info!(%folder, "deleted trashed site files past their retention");
        }
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
    }
}

/// Open each site's hub state (creating its tree) and create every account home
/// beneath its tree (no symlink or `..` can make a home land outside its site: cap-std
/// resolves beneath the tree); the hub adopts the new folders.
fn prepare_dirs(hub: &Hub, plan: &FilesPlan) -> std::io::Result<()> {
    let hub_err = |e: sitesync::api::HubError| std::io::Error::other(e.to_string());
    for d in &plan.sites {
        hub.manifest(d).map_err(hub_err)?;
    }
    for acc in plan.accounts.values() {
        let tree = hub.tree_path(&acc.domain);
        let site = cap_std::fs::Dir::open_ambient_dir(&tree, cap_std::ambient_authority())?;
        if let Ok(rest) = acc.home.strip_prefix(&acc.domain) {
            if !rest.as_os_str().is_empty() && !site.is_dir(rest) {
                site.create_dir_all(rest)?;
                hub.observe_local(&acc.domain, &[Seen::Path(rest.to_path_buf())])
                    .map_err(hub_err)?;
            }
        }
    }
    Ok(())
}

impl FilesEngine {
    /// Move the folders of domains this server no longer holds to the trash.
    async fn retire_removed(&self, plan: &FilesPlan) {
        let (root, trash) = (self.hub.dir().to_path_buf(), self.trash_root.clone());
        let keep = plan.sites.clone();
        let moved = tokio::task::spawn_blocking(move || {
            crate::trash::retire_removed(&root, &trash, &keep, std::time::SystemTime::now())
        })
        .await;
        match moved {
            Ok(Ok(domains)) => {
                for domain in domains {
                    self.hub.forget(&domain);
                    if let Err(e) = agent::deploy::forget(&self.state_dir, &domain) {
                        tracing::warn!(%domain, error = %e, "cannot forget the applied deployment");
                    }
                    tracing::info!(%domain, "moved the files of a domain this server no longer holds to the trash");
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot move removed sites to the trash"),
            Err(e) => tracing::warn!(error = %e, "cannot move removed sites to the trash"),
        }
    }

    fn refresh_status(&self, err: Option<String>) {
        let sync = match self.sync_addr {
            Some(a) => format!("site-file hub on {a}"),
            None => "site-file hub off (no agent identity)".into(),
        };
        let tls = if self.cert.is_set() {
            if self.tls_required {
                "FTPS required"
            } else {
                "FTPS offered"
            }
        } else {
            "no certificate"
        };
        let mut detail = format!(
            "ftp on {} ({tls}), {sync}; {} sites, {} ftp accounts",
            self.ftp_addr,
            self.served
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .len(),
            self.accounts.len()
        );
        let mut state = EngineState::Ok;
        if !self.cert.is_set() && self.applied.is_some() {
            state = EngineState::Degraded;
            detail.push_str("; no TLS certificate: FTPS and sync unavailable");
        }
        if let Some(e) = err {
            state = EngineState::Degraded;
            detail = format!("{e}; {detail}");
        }
        *self
            .status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = (state, detail);
    }

    /// Apply, in the background, every API deployment of a served site that is not
    /// applied yet (`agent::deploy`); adopted into the site's log, it reaches the web
    /// servers' replicas like any other change.
    fn start_deployments(&self, deployments: &[proto::agent_v1::SiteDeployment]) {
        let Some(fetcher) = self.fetcher.clone() else {
            return;
        };
        let served = self
            .applied
            .as_ref()
            .map(|p| p.sites.clone())
            .unwrap_or_default();
        for dep in deployments {
            if !served.contains(&dep.domain) || agent::deploy::is_applied(&self.state_dir, dep) {
                continue;
            }
            {
                let mut busy = self
                    .deploying
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if !busy.insert(dep.id.clone()) {
                    continue;
                }
            }
            let (fetcher, dep) = (fetcher.clone(), dep.clone());
            let state_dir = self.state_dir.clone();
            let tree = self.hub.tree_path(&dep.domain);
            let preserve = self
                .applied
                .as_ref()
                .and_then(|p| p.site_options.get(&dep.domain))
                .map(crate::plan::SiteOptions::preserved)
                .unwrap_or_default();
            let hub = self.hub.clone();
            let (busy, error) = (self.deploying.clone(), self.deploy_error.clone());
            tokio::spawn(async move {
                let mut delay = Duration::from_secs(1);
                loop {
                    match agent::deploy::apply(&fetcher, &state_dir, &tree, &dep, &preserve).await {
                        Ok(_) => {
                            // the new tree into the log, so every web server gets it
                            let (h, domain) = (hub.clone(), dep.domain.clone());
                            let adopted = tokio::task::spawn_blocking(move || {
                                h.observe_local(&domain, &[Seen::Rescan])
                            })
                            .await;
                            if let Ok(Err(e)) = adopted {
                                tracing::warn!(domain = %dep.domain, error = %e, "the deployment is not in the site's log yet");
                            }
                            *error
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
                            break;
                        }
                        Err(e @ agent::deploy::DeployError::Refused { .. })
                        | Err(e @ agent::deploy::DeployError::Corrupt(_)) => {
                            tracing::error!(domain = %dep.domain, error = %e, "deployment refused");
                            *error
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner) =
                                Some(format!("{}: {e}", dep.domain));
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(domain = %dep.domain, error = %e, "deployment failed; retrying");
                            *error
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner) =
                                Some(format!("{}: {e}", dep.domain));
                            tokio::time::sleep(delay).await;
                            delay = (delay * 2).min(Duration::from_secs(60));
                        }
                    }
                }
                busy.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .remove(&dep.id);
            });
        }
    }

    /// Converge on `cfg` object by object ([`render`] against the plan applied so
    /// far); the objects not applied are kept in `self.rejected`. A server
    /// certificate that does not load keeps the previous one.
    async fn apply_files(&mut self, cfg: &proto::agent_v1::FilesConfig) -> Result<(), FilesError> {
        let previous = self.applied.clone().unwrap_or_default();
        let (mut plan, mut rejected) = render(cfg, &previous);
        let ck = match &plan.tls {
            Some(t) => match certified_key(&t.cert_pem, &t.key_pem) {
                Ok(ck) => Some(ck),
                Err(e) => {
                    rejected.push(RejectedObject::new("files server certificate", e));
                    plan.tls = previous.tls.clone();
                    match &plan.tls {
                        Some(t) => Some(certified_key(&t.cert_pem, &t.key_pem)?),
                        None => None,
                    }
                }
            },
            None => None,
        };
        self.rejected = rejected;
        if self.applied.as_ref() == Some(&plan) {
            return Ok(());
        }
        let (hub, p) = (self.hub.clone(), plan.clone());
        tokio::task::spawn_blocking(move || prepare_dirs(&hub, &p))
            .await
            .map_err(|_| FilesError::Io(std::io::Error::other("blocking task failed")))??;
        self.cert.set(ck);
        self.accounts.set(plan.accounts.clone());
        self.hub.set_grants(plan.sync_clients.clone());
        self.hub.set_quotas(
            plan.site_options
                .iter()
                .filter(|(_, o)| o.quota_bytes > 0)
                .map(|(d, o)| (d.clone(), o.quota_bytes))
                .collect::<HashMap<_, _>>(),
        );
        self.hub.set_local_paths(
            plan.site_options
                .iter()
                .map(|(d, o)| (d.clone(), o.local_paths.clone()))
                .collect::<HashMap<_, _>>(),
        );
        self.hub.set_versions_days(plan.versions_days);
        *self
            .served
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(plan.sites.clone());
        self.update_watches(&plan);
        // No account or web server reaches a removed domain any more: move its
        // folder away.
        self.retire_removed(&plan).await;
        self.applied = Some(plan);
        Ok(())
    }

    /// Watch every held site's tree with its current local paths; unwatch the others.
    fn update_watches(&mut self, plan: &FilesPlan) {
        let gone: Vec<String> = self
            .watched
            .keys()
            .filter(|d| !plan.sites.contains(*d))
            .cloned()
            .collect();
        for d in gone {
            self.watched.remove(&d);
            let _ = self.watch.send(WatchCmd::Unwatch(d));
        }
        for d in &plan.sites {
            let local = plan
                .site_options
                .get(d)
                .map(|o| o.local_paths.clone())
                .unwrap_or_default();
            if self.watched.get(d) != Some(&local) {
                self.watched.insert(d.clone(), local.clone());
                let _ = self.watch.send(WatchCmd::Watch {
                    site: d.clone(),
                    local,
                });
            }
        }
    }

    /// Apply the API restores not done yet (each id once).
    async fn apply_restores(&self, wanted: &[proto::agent_v1::FileRestore]) {
        let held: BTreeSet<String> = self
            .applied
            .as_ref()
            .map(|p| p.sites.clone())
            .unwrap_or_default();
        let (hub, book, wanted) = (self.hub.clone(), self.restores.clone(), wanted.to_vec());
        let done = tokio::task::spawn_blocking(move || {
            book.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .apply(&hub, &held, &wanted)
        })
        .await;
        if let Ok(Err(e)) = done {
            tracing::warn!(error = %e, "cannot record restores");
        }
    }
}

impl RoleEngine for FilesEngine {
    fn name(&self) -> &str {
        "files"
    }

    fn apply<'a>(&'a mut self, cfg: &'a RoleConfig) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(async move {
            let RoleConfig::Files(files) = cfg else {
                return Err(EngineError::Invalid(format!(
                    "a files engine got a {} config",
                    cfg.role()
                )));
            };
            match self.apply_files(files).await {
                Ok(()) => {
                    self.start_deployments(&files.deployments);
                    self.apply_restores(&files.restores).await;
                    self.refresh_status(None);
                    Ok(())
                }
                Err(e) => {
                    self.refresh_status(Some(format!("kept the previous config: {e}")));
                    Err(e.into())
                }
            }
        })
    }

    fn rejected(&self) -> Vec<RejectedObject> {
        self.rejected.clone()
    }

    /// Every site's usage, log position, conflicts and SQLite databases (refreshed in
    /// the background), and the results of the restores asked.
    fn report(&self) -> Option<RoleReport> {
        let sites = self
            .site_report
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let restores = self
            .restores
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .results();
        Some(RoleReport::Files(FilesReport { sites, restores }))
    }

    fn health(&self) -> EngineHealth {
        let (state, detail) = self
            .status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let c = self.logins.login_counts();
        EngineHealth {
            name: "files".into(),
            state,
            detail: format!(
                "{detail}; logins: {} wrong, {} throttled",
                c.failures, c.refused
            ),
        }
    }

    /// The FTP control port as bound (21, or 10021 without the right to bind 21).
    fn service_port(&self) -> Option<u16> {
        Some(self.ftp_addr.port())
    }

    fn shutdown(&mut self) -> BoxFuture<'_, ()> {
        let _ = self.stop.send(true);
        Box::pin(async {})
    }
}
