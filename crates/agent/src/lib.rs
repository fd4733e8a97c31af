//! The hostplane agent: one per server. It joins the cluster (key + CSR + join token →
//! certificate from the controller CA), then over mutual TLS watches its desired
//! config with blocking queries, keeps it on disk, hands it to its role engine, and
//! reports health with heartbeats.
//!
//! The data plane never waits for the control plane: on start, a cached desired
//! config is handed to the role engine before any controller is contacted, and the
//! engine keeps serving whatever it last applied while controllers are unreachable.
//! What it serves (applied revision, engine health) is in `state_dir/status.json`
//! ([`status`]), readable while no controller answers.
//!
//! Entry points: [`run`] (every role [`NotBuilt`]) and [`run_with_engines`] (role
//! crates register their engines in an [`EngineRegistry`]).

#![forbid(unsafe_code)]

pub mod cache;
pub mod client;
pub mod config;
pub mod delta;
pub mod deploy;
pub mod fsutil;
pub mod identity;
pub mod lease;
pub mod limits;
pub mod ops;
pub mod peer_tls;
pub mod rehash;
pub mod status;
pub mod supervisor;

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proto::agent_v1::{DesiredConfig, EngineHealth, Heartbeat, JoinRequest, CONFIG_FORMAT};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

pub use client::{AgentClient, Backoff, ClientError, Controllers};
pub use config::{AgentConfig, ConfigError};
pub use identity::{Identity, IdentityError, JoinInfo};
pub use supervisor::{
    BoxFuture, EngineContext, EngineError, EngineFactory, EngineRegistry, NotBuilt, RoleEngine,
    Supervisor,
};

/// The agent's version, sent in heartbeats.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Why the agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A file or directory could not be read or created.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The identity in the state directory (or the one a join returned) is unusable.
    #[error("identity: {0}")]
    Identity(#[from] IdentityError),
    /// The agent has not joined and no join token is configured.
    #[error(
        "not joined yet and no join token: set join_token, join_token_file or ${}",
        config::JOIN_TOKEN_ENV
    )]
    NoJoinToken,
    /// The agent has not joined and no `ca_file` is configured to verify the controller.
    #[error("not joined yet and no ca_file to verify the controller with")]
    NoCaFile,
    /// The controller refused the join token (used, expired or unknown).
    #[error("join refused: {0}")]
    JoinRefused(String),
    /// The HTTPS client could not be built.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// What the heartbeat reports: shared between the supervisor and the heartbeat loop.
#[derive(Debug, Clone, Default)]
struct Status {
    applied_revision: i64,
    engines: Vec<EngineHealth>,
    /// The engine's report (database sizes, mail queue), if it makes one.
    report: Option<proto::agent_v1::RoleReport>,
    /// The engine's service port, if it knows it.
    service_port: Option<u16>,
    /// Objects of the desired config the engine could not apply.
    rejected: Vec<proto::agent_v1::RejectedObject>,
}

/// How often an unchanged engine report is sent again.
const REPORT_REFRESH: Duration = Duration::from_secs(30);

type SharedStatus = Arc<Mutex<Status>>;
type DesiredTx = watch::Sender<Option<Arc<DesiredConfig>>>;
type DesiredRx = watch::Receiver<Option<Arc<DesiredConfig>>>;

/// Run the agent until `shutdown` completes, with no role engines built (every
/// role reports `not_built`).
pub async fn run(
    config: AgentConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    run_with_engines(config, EngineRegistry::new(), shutdown).await
}

/// Run the agent until `shutdown` completes, serving its role with the engine
/// `registry` provides.
///
/// Returns `Ok(())` after `shutdown`, or an error when the agent cannot work at
/// all (invalid config, unusable identity, join refused). Controller outages and
/// bad controller responses are logged and retried, never fatal.
pub async fn run_with_engines(
    config: AgentConfig,
    registry: EngineRegistry,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    config.validate()?;
    // before any engine opens its sites' files
    limits::raise_nofile();
    let state_dir = config.state_dir.clone();
    fsutil::create_private_dir(&state_dir).map_err(|source| AgentError::Io {
        path: state_dir.display().to_string(),
        source,
    })?;
    let existing = identity::load(&state_dir)?;
    let server_name = existing
        .as_ref()
        .map(|id| id.info.server.clone())
        .unwrap_or_else(|| config.name.clone());
    // One parsed copy of the config is shared (by `Arc`) between the watch loop and
    // the supervisor; the supervisor itself keeps only a digest of what it applied.
    let cached = load_cache(&state_dir, &server_name).map(Arc::new);

    // The data plane first: the cached config goes to the engine before any
    // controller is contacted.
    let (desired_tx, desired_rx) = watch::channel(cached.clone());
    let status: SharedStatus = Arc::default();
    let (stop_tx, stop_rx) = watch::channel(false);
    let file = StatusFile {
        state_dir: state_dir.clone(),
        server: server_name.clone(),
        written: None,
    };
    // The identity files exist once the agent has joined (possibly after the engine
    // starts); engines that need them read them when they connect.
    let id_paths = identity::IdentityPaths::new(&state_dir);
    let leases = lease::Leases::default();
    let supervisor = Supervisor::new(registry, server_name, config.bind, state_dir.clone())
        .with_engine_env(
            Some(supervisor::AgentTlsPaths {
                cert: id_paths.cert(),
                key: id_paths.key(),
                ca: id_paths.ca(),
            }),
            engine_options(&config),
            config.controllers.clone(),
        )
        .with_cron_lease(leases.cron.clone())
        .with_mail_lease(leases.mail.clone());
    let initial_role = existing.as_ref().map(|id| id.info.role.clone());
    let sup_task = tokio::spawn(supervise(
        supervisor,
        initial_role,
        desired_rx,
        status.clone(),
        stop_rx,
        config.heartbeat_interval(),
        file,
    ));

    let controllers = Arc::new(Controllers::new(&config.controllers));
    let result = tokio::select! {
        () = shutdown => Ok(()),
        r = control_plane(&config, existing, controllers, desired_tx, cached, status, leases) => r,
    };
    let _ = stop_tx.send(true);
    if let Err(e) = sup_task.await {
        tracing::error!("role supervisor task failed: {e}");
    }
    result
}

fn load_cache(state_dir: &Path, server: &str) -> Option<DesiredConfig> {
    match cache::load(state_dir) {
        Ok(Some(cfg)) if cfg.server.name == server && cfg.format == CONFIG_FORMAT => {
            tracing::info!(revision = cfg.revision, "serving the cached desired config");
            Some(cfg)
        }
        Ok(Some(cfg)) => {
            tracing::warn!(
                cached_server = %cfg.server.name,
                format = cfg.format,
                "ignoring a cached desired config of another server or format"
            );
            None
        }
        Ok(None) => None,
        Err(e) => {
            tracing::warn!("ignoring the desired-config cache: {e}");
            None
        }
    }
}

/// Everything that talks to controllers: join if needed, then the watch and
/// heartbeat loops (which run until the future is dropped).
async fn control_plane(
    config: &AgentConfig,
    existing: Option<Identity>,
    controllers: Arc<Controllers>,
    desired_tx: DesiredTx,
    cached: Option<Arc<DesiredConfig>>,
    status: SharedStatus,
    leases: lease::Leases,
) -> Result<(), AgentError> {
    let id = match existing {
        Some(id) => id,
        None => join(config, &controllers).await?,
    };
    let client = AgentClient::for_identity(&id, config.bind)?;
    tokio::join!(
        watch_loop(config, &id, &client, &controllers, desired_tx, cached),
        heartbeat_loop(config, &client, &controllers, &status, &leases),
    );
    Ok(())
}

/// Join with the token: generate (or reuse) the key, send the CSR, store the result.
async fn join(config: &AgentConfig, controllers: &Controllers) -> Result<Identity, AgentError> {
    let state_dir = &config.state_dir;
    let token = config
        .resolve_join_token()?
        .ok_or(AgentError::NoJoinToken)?;
    let ca_file = config.ca_file.as_ref().ok_or(AgentError::NoCaFile)?;
    let ca_pem = std::fs::read(ca_file).map_err(|source| AgentError::Io {
        path: ca_file.display().to_string(),
        source,
    })?;
    let key_pem = identity::load_or_create_key(state_dir)?;
    let req = JoinRequest {
        token,
        csr_pem: identity::make_csr(&key_pem, &config.name)?,
        name: config.name.clone(),
        hostname: config.hostname.clone(),
        addresses: config.public_addresses(),
        country: config.country.clone(),
        region: config.region.clone(),
        hardware: config.hardware.clone(),
    };
    let client = AgentClient::for_join(&ca_pem, config.bind)?;
    let mut backoff = Backoff::default();
    loop {
        let (index, base) = controllers.current();
        match client.join(base, &req).await {
            Ok(resp) => {
                let id = identity::store_join(state_dir, &key_pem, &resp)?;
                tracing::info!(
                    server = %id.info.server,
                    cluster = %id.info.cluster,
                    role = %id.info.role,
                    "joined"
                );
                return Ok(id);
            }
            Err(e) if e.is_refused() => return Err(AgentError::JoinRefused(e.to_string())),
            Err(e) => {
                tracing::warn!("join failed, retrying: {e}");
                controllers.failed(index);
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
}

/// Long-poll the desired config; persist and hand on every change; resync every
/// `resync_interval_s`.
///
/// Once the agent holds a whole config it asks for deltas (`delta=1`): only the
/// items changed since its revision, large material fetched by hash when it lacks
/// it ([`delta`]). It rebuilds the whole document and handles it exactly like one
/// it received whole. Any failure on that path makes the next query a snapshot
/// (`after=0&delta=1`); a controller that does not know `delta` (400) is asked for
/// whole documents from then on.
///
/// A resync of an agent holding items asks for the delta from its own revision,
/// answered at once (`resync=1`): usually empty, and its digest proves the items
/// equal the controller's; a mismatch (or a revision the controller does not know)
/// brings a snapshot. A controller that does not know `resync` (400) gets
/// `after=0` resyncs from then on.
async fn watch_loop(
    config: &AgentConfig,
    id: &Identity,
    client: &AgentClient,
    controllers: &Controllers,
    desired_tx: DesiredTx,
    mut current: Option<Arc<DesiredConfig>>,
) {
    let mut backoff = Backoff::default();
    let mut after = current.as_ref().map(|c| c.revision).unwrap_or(0);
    // The first query is a full resync: it repairs whatever changed while down.
    let mut next_resync = Instant::now();
    let mut items = current.as_ref().and_then(delta::ItemState::from_config);
    let mut deltas = true;
    let mut need_snapshot = false;
    let mut resync_by_revision = true;
    loop {
        let resync = Instant::now() >= next_resync;
        let use_delta = deltas && items.is_some();
        let by_revision = resync && use_delta && resync_by_revision && !need_snapshot && after > 0;
        let query = if (resync && !by_revision) || (use_delta && need_snapshot) {
            0
        } else {
            after
        };
        let (index, base) = controllers.current();
        let outcome = if use_delta {
            let (items, server) = (&mut items, &id.info.server);
            via_delta(config, client, base, query, by_revision, items, server).await
        } else {
            client
                .fetch_config(base, query, config.watch_timeout())
                .await
                .and_then(|cfg| match cfg {
                    Some(cfg) => {
                        check_config(&cfg, &id.info.server, base).map(|()| Some(Arc::new(cfg)))
                    }
                    None => Ok(None),
                })
        };
        match outcome {
            Ok(got) => {
                backoff.reset();
                if resync {
                    next_resync = Instant::now() + config.resync_interval();
                }
                let Some(cfg) = got else { continue };
                need_snapshot = false;
                after = cfg.revision;
                if deltas && !use_delta {
                    items = delta::ItemState::from_config(&cfg);
                }
                if current.as_deref() == Some(&*cfg) {
                    continue;
                }
                tracing::info!(revision = cfg.revision, resync, "new desired config");
                if let Err(e) = persist(&config.state_dir, &cfg).await {
                    // Still apply it: serving the newest config matters more; the
                    // next resync after a restart repairs the stale cache.
                    tracing::error!("cannot persist the desired config: {e}");
                }
                current = Some(Arc::clone(&cfg));
                desired_tx.send_replace(Some(cfg));
            }
            Err(ClientError::Status { status, url, .. })
                if by_revision && status == reqwest::StatusCode::BAD_REQUEST =>
            {
                tracing::info!(url, "the controller does not answer resyncs by revision");
                resync_by_revision = false;
            }
            Err(ClientError::Status { status, url, .. })
                if use_delta && status == reqwest::StatusCode::BAD_REQUEST =>
            {
                tracing::warn!(
                    url,
                    "the controller does not make delta configs; asking for whole ones"
                );
                deltas = false;
                items = None;
            }
            Err(e) => {
                tracing::warn!("desired-config watch failed: {e}");
                need_snapshot = use_delta;
                controllers.failed(index);
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
}

/// Write `cfg` to the cache ([`cache::store`]) on the blocking pool, before it is
/// applied. A web server's config with thousands of sites is megabytes of JSON
/// and an fsync: on the async workers that stalled the agent's heartbeats (and,
/// where agents share a runtime, every other agent) for as long.
async fn persist(state_dir: &Path, cfg: &Arc<DesiredConfig>) -> Result<(), String> {
    let (dir, cfg) = (state_dir.to_path_buf(), Arc::clone(cfg));
    match tokio::task::spawn_blocking(move || cache::store(&dir, &cfg)).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(e) => Err(format!("the cache write failed: {e}")),
    }
}

/// One delta query: apply the answer to `items`, fetch the blobs it lacks, and
/// rebuild the whole config (`None` on 304), shared with `items`.
async fn via_delta(
    config: &AgentConfig,
    client: &AgentClient,
    base: &str,
    after: i64,
    resync: bool,
    items: &mut Option<delta::ItemState>,
    server: &str,
) -> Result<Option<Arc<DesiredConfig>>, ClientError> {
    let body = |message: String| ClientError::Body {
        url: base.to_string(),
        message,
    };
    let d = match client
        .fetch_delta(base, after, resync, config.watch_timeout())
        .await?
    {
        None => return Ok(None),
        Some(client::DeltaAnswer::Full(cfg)) => {
            check_config(&cfg, server, base)?;
            let cfg = Arc::new(cfg);
            *items = delta::ItemState::from_config(&cfg);
            return Ok(Some(cfg));
        }
        Some(client::DeltaAnswer::Delta(d)) => d,
    };
    if d.format != CONFIG_FORMAT || d.server.name != server {
        return Err(body(format!(
            "delta config of format {} for server {} (this agent reads {CONFIG_FORMAT} for {server})",
            d.format, d.server.name
        )));
    }
    let Some(state) = items.as_mut() else {
        return Err(body("no items to apply a delta to".into()));
    };
    let (from, to, n) = (d.from, d.to, d.upserts.len() + d.removals.len());
    let missing = state.apply(d).map_err(|e| body(e.to_string()))?;
    for hash in &missing {
        let bytes = client
            .fetch_blob(base, hash, config.watch_timeout())
            .await?;
        state.add_blob(hash.clone(), bytes.into());
    }
    tracing::info!(
        from,
        to,
        items = n,
        blobs = missing.len(),
        "delta config applied"
    );
    state.build().map(Some).map_err(|e| body(e.to_string()))
}

fn check_config(cfg: &DesiredConfig, server: &str, base: &str) -> Result<(), ClientError> {
    let problem = if cfg.format != CONFIG_FORMAT {
        format!(
            "desired config format {} (this agent reads {CONFIG_FORMAT})",
            cfg.format
        )
    } else if cfg.server.name != server {
        format!(
            "desired config for server {} (this is {server})",
            cfg.server.name
        )
    } else {
        return Ok(());
    };
    Err(ClientError::Body {
        url: base.to_string(),
        message: problem,
    })
}

/// Send a heartbeat every `heartbeat_interval_ms`.
async fn heartbeat_loop(
    config: &AgentConfig,
    client: &AgentClient,
    controllers: &Controllers,
    status: &SharedStatus,
    leases: &lease::Leases,
) {
    let every = config.heartbeat_interval();
    // A slow answer is worth waiting for as long as the controller's default suspect
    // window (3 intervals): a beat cancelled at the client is lost even if the busy
    // controller was about to record it, and the next one queues behind the same load.
    let timeout = every
        .saturating_mul(3)
        .clamp(Duration::from_secs(2), Duration::from_secs(10));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut failing = false;
    let mut skew_warned = false;
    // The report last delivered, and when: sent again only when it changed or
    // REPORT_REFRESH passed, so a large report does not ride every heartbeat.
    let mut report_sent: Option<(proto::agent_v1::RoleReport, Instant)> = None;
    loop {
        tick.tick().await;
        let snapshot = status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let report = snapshot.report.filter(|r| match &report_sent {
            Some((last, at)) => last != r || at.elapsed() >= REPORT_REFRESH,
            None => true,
        });
        let hb = Heartbeat {
            applied_revision: snapshot.applied_revision,
            engines: snapshot.engines,
            agent_version: AGENT_VERSION.to_string(),
            // Engines that know their bound port tell it; otherwise the controller
            // probes the role's configured port.
            probe_port: snapshot.service_port,
            report: report.clone(),
            rejected: snapshot.rejected,
        };
        let (index, base) = controllers.current();
        // A lease counts from the send: the controller granted it later.
        let sent = std::time::Instant::now();
        match client.heartbeat(base, &hb, timeout).await {
            Ok(ack) => {
                if let Some(secs) = ack.cron_lease_secs {
                    leases.cron.extend(sent + Duration::from_secs(secs));
                }
                if let Some(secs) = ack.mail_lease_secs {
                    leases.mail.extend(sent + Duration::from_secs(secs));
                }
                if let Some(r) = report {
                    report_sent = Some((r, Instant::now()));
                }
                if failing {
                    tracing::info!(controller = base, "heartbeats delivered again");
                }
                failing = false;
                if !skew_warned {
                    if let Some(skew) = clock_skew(&ack.server_time) {
                        if skew > Duration::from_secs(30) {
                            tracing::warn!(?skew, "clock differs from the controller's");
                            skew_warned = true;
                        }
                    }
                }
            }
            Err(e) => {
                if failing {
                    tracing::debug!("heartbeat failed: {e}");
                } else {
                    tracing::warn!("heartbeat failed: {e}");
                }
                failing = true;
                controllers.failed(index);
            }
        }
    }
}

fn clock_skew(server_time: &str) -> Option<Duration> {
    let theirs =
        time::OffsetDateTime::parse(server_time, &time::format_description::well_known::Rfc3339)
            .ok()?;
    let diff = time::OffsetDateTime::now_utc() - theirs;
    Duration::try_from(diff.abs()).ok()
}

/// Share the supervisor's state with the heartbeat loop and, when it changed,
/// write it to the status file (`state_dir/status.json`).
fn publish(sup: &Supervisor, status: &SharedStatus, file: &mut StatusFile) {
    let next = Status {
        applied_revision: sup.applied_revision(),
        engines: sup.health(),
        report: sup.report(),
        service_port: sup.service_port(),
        rejected: sup.rejected(),
    };
    file.update(&next);
    *status
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = next;
}

/// The status file and what was last written to it.
struct StatusFile {
    state_dir: std::path::PathBuf,
    server: String,
    written: Option<status::AgentStatus>,
}

impl StatusFile {
    fn update(&mut self, now: &Status) {
        let next = status::AgentStatus {
            server: self.server.clone(),
            applied_revision: now.applied_revision,
            engines: now.engines.clone(),
        };
        if self.written.as_ref() == Some(&next) {
            return;
        }
        match status::store(&self.state_dir, &next) {
            Ok(()) => self.written = Some(next),
            Err(e) => tracing::warn!("cannot write the status file: {e}"),
        }
    }
}

async fn apply_logged(sup: &mut Supervisor, cfg: &DesiredConfig) -> bool {
    match sup.apply(cfg).await {
        Ok(true) => {
            tracing::info!(revision = cfg.revision, "desired config applied");
            true
        }
        Ok(false) => true,
        Err(e) => {
            tracing::error!(
                revision = cfg.revision,
                "applying the desired config failed: {e}"
            );
            false
        }
    }
}

/// The role supervisor task: applies each new desired config, retries failed
/// applies with backoff, refreshes the health the heartbeat reports.
async fn supervise(
    mut sup: Supervisor,
    initial_role: Option<String>,
    mut desired_rx: DesiredRx,
    status: SharedStatus,
    mut stop: watch::Receiver<bool>,
    health_every: Duration,
    mut file: StatusFile,
) {
    let mut latest = desired_rx.borrow_and_update().clone();
    if latest.is_none() {
        if let Some(role) = initial_role {
            if let Err(e) = sup.ensure_role(&role).await {
                tracing::error!(role, "cannot start the role engine: {e}");
            }
        }
    }
    let mut retry = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    let mut retry_at: Option<Instant> = None;
    if let Some(cfg) = &latest {
        if !apply_logged(&mut sup, cfg).await {
            retry_at = Some(Instant::now() + retry.next_delay());
        }
    }
    publish(&sup, &status, &mut file);
    let mut health = tokio::time::interval(health_every);
    health.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut feed_open = true;
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            changed = desired_rx.changed(), if feed_open => {
                if changed.is_err() {
                    feed_open = false;
                    continue;
                }
                latest = desired_rx.borrow_and_update().clone();
                if let Some(cfg) = &latest {
                    if apply_logged(&mut sup, cfg).await {
                        retry.reset();
                        retry_at = None;
                    } else {
                        retry_at = Some(Instant::now() + retry.next_delay());
                    }
                }
            }
            _ = health.tick() => {
                if let (Some(at), Some(cfg)) = (retry_at, &latest) {
                    if Instant::now() >= at {
                        if apply_logged(&mut sup, cfg).await {
                            retry.reset();
                            retry_at = None;
                        } else {
                            retry_at = Some(Instant::now() + retry.next_delay());
                        }
                    }
                }
            }
        }
        publish(&sup, &status, &mut file);
    }
    sup.shutdown().await;
}

/// The `[engine]` options handed to the engine, with `hostname` defaulting to the
/// server's host name (the mail engine greets with it: receivers check that the
/// HELO name is a fully qualified name resolving to the server).
fn engine_options(config: &AgentConfig) -> std::collections::BTreeMap<String, String> {
    let mut options = config.engine.clone();
    options
        .entry("hostname".to_owned())
        .or_insert_with(|| config.hostname.clone());
    options
}
