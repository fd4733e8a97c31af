//! The agent adapter: [`start_engine`] builds the `dns` role engine the supervisor
//! runs. It binds UDP+TCP on the server's own address, answers from a live
//! [`ZoneSet`], and converges on each [`DnsConfig`]:
//!
//! - **primary** zones (`primary = true`) are served from the controller-built
//!   `zone` content; every serial change keeps the previous version in a journal (for
//!   IXFR) and sends NOTIFY, with retries, to every `notify` target; those targets'
//!   addresses may transfer the zone (TSIG-signed when the zone has a key);
//! - **secondary** zones come only from the primary (`primary_endpoints`): NOTIFY or
//!   the SOA refresh/retry timers trigger an SOA check, then IXFR with AXFR fallback;
//!   transferred zones are persisted under `<state_dir>/zones/` and loaded at start;
//!   after SOA expire without contact the zone answers SERVFAIL.
//!
//! Engine options (agent config `[engine]`): `dns_port` — listen on exactly this port
//! (default: 53, or 10053 when 53 is not permitted); `dns_udp_workers` — UDP receive
//! tasks on the socket (1..=64, default 1).
//!
//! All zone state lives in one manager task; the socket layer only reads the
//! published `Arc<ZoneSet>`, so changes never drop queries.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent::supervisor::{BoxFuture, EngineContext, EngineError, RoleEngine};
use hickory_proto::rr::Name;
use proto::agent_v1::{DnsConfig, EngineHealth, EngineState, RejectedObject, RoleConfig};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::client::{self, Refreshed, Upstream};
use crate::persist;
use crate::plan::{self, Digest, Plan, Planned, Served};
use crate::server::{Notified, ServerOptions};
use crate::tsig::{self, Key};
use crate::zone::{Zone, ZoneMeta, ZoneSet};

/// Versions kept per primary zone for IXFR (each a whole parsed zone). Secondaries
/// are notified of every change, so they lag by one or two versions; one further
/// behind takes a full transfer.
const JOURNAL_DEPTH: usize = 8;
/// NOTIFY attempts per target and change.
const NOTIFY_ATTEMPTS: u32 = 5;
/// Secondary refreshes running at once.
const MAX_CONCURRENT_REFRESHES: usize = 64;
/// Timeout of one outgoing step (SOA query, transfer read, NOTIFY answer).
const STEP_TIMEOUT: Duration = Duration::from_secs(3);

/// Builds the DNS engine for the agent's supervisor.
pub fn start_engine(ctx: &EngineContext) -> Result<Box<dyn RoleEngine>, EngineError> {
    Ok(Box::new(DnsEngine::start(ctx)?))
}

/// Transfer counters, for health detail and tests.
#[derive(Debug, Default)]
pub struct Stats {
    /// Secondary refreshes that applied an IXFR difference.
    pub ixfr: AtomicU64,
    /// Secondary refreshes that took a full copy (AXFR or AXFR-style IXFR).
    pub axfr: AtomicU64,
    /// NOTIFY messages answered by a target.
    pub notifies_acked: AtomicU64,
}

/// The running DNS role engine.
pub struct DnsEngine {
    commands: mpsc::Sender<Command>,
    stop: Option<oneshot::Sender<()>>,
    addr: SocketAddr,
    status: Arc<Mutex<(EngineState, String)>>,
    stats: Arc<Stats>,
    /// What the last successful applies converged on (digests and parsed zones;
    /// never the zone text).
    served: tokio::sync::Mutex<Served>,
    /// Zones of the last config not applied (each keeps its previous version).
    rejected: Mutex<Vec<RejectedObject>>,
}

impl std::fmt::Debug for DnsEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsEngine")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

enum Command {
    /// A planned change set (see [`plan::plan`]); the plan comes back with the result
    /// so that the caller can record it as served.
    Apply(Plan, oneshot::Sender<(Plan, Result<String, String>)>),
    Transferred {
        zone: Name,
        generation: u64,
        new: Arc<Zone>,
        incremental: bool,
    },
    Expired {
        zone: Name,
        generation: u64,
    },
    Shutdown,
}

fn bind(
    ip: IpAddr,
    port: Option<u16>,
) -> Result<(std::net::UdpSocket, std::net::TcpListener), EngineError> {
    let ports: Vec<u16> = match port {
        Some(p) => vec![p],
        None => vec![53, 10053],
    };
    let mut last = None;
    for port in ports {
        let addr = SocketAddr::new(ip, port);
        match (
            std::net::TcpListener::bind(addr),
            std::net::UdpSocket::bind(addr),
        ) {
            (Ok(t), Ok(u)) => return Ok((u, t)),
            (Err(e), _) | (_, Err(e)) => last = Some(e),
        }
    }
    Err(EngineError::Io(last.unwrap_or_else(|| {
        std::io::Error::other("no port to bind")
    })))
}

impl DnsEngine {
    /// Binds the sockets, loads persisted secondary zones and starts serving.
    pub fn start(ctx: &EngineContext) -> Result<Self, EngineError> {
        let port = match ctx.options.get("dns_port") {
            Some(p) => Some(p.parse::<u16>().map_err(|_| {
                EngineError::Invalid(format!("dns_port {p:?} is not a port number"))
            })?),
            None => None,
        };
        let (udp, tcp) = bind(ctx.bind, port)?;
        let addr = tcp.local_addr()?;
        udp.set_nonblocking(true)?;
        tcp.set_nonblocking(true)?;
        let udp = tokio::net::UdpSocket::from_std(udp)?;
        let tcp = tokio::net::TcpListener::from_std(tcp)?;
        let (tx, rx) = watch::channel(Arc::new(ZoneSet::new()));
        let (stop, stopped) = oneshot::channel::<()>();
        let (notify_tx, notify_rx) = mpsc::channel(1024);
        let udp_workers = match ctx.options.get("dns_udp_workers") {
            Some(n) => n
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=64).contains(n))
                .ok_or_else(|| {
                    EngineError::Invalid(format!("dns_udp_workers {n:?} is not 1..=64"))
                })?,
            None => 1,
        };
        let options = ServerOptions {
            notify_events: Some(notify_tx),
            udp_workers,
            ..ServerOptions::default()
        };
        tokio::spawn(crate::server::run_with_options(
            udp,
            tcp,
            rx,
            async move {
                let _ = stopped.await;
            },
            options,
        ));
        let zones_dir = ctx.state_dir.join("zones");
        let stored = persist::load_all(&zones_dir)
            .into_iter()
            .map(|l| (l.zone.origin().clone(), l))
            .collect();
        let (commands, command_rx) = mpsc::channel(256);
        let stats = Arc::new(Stats::default());
        let manager = Manager {
            bind: ctx.bind,
            zones_dir,
            set: ZoneSet::new(),
            publish: tx,
            primaries: HashMap::new(),
            secondaries: HashMap::new(),
            stored,
            commands: commands.clone(),
            stats: Arc::clone(&stats),
            generation: 0,
            zone_keys: HashMap::new(),
            refresh_limit: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_REFRESHES)),
        };
        tokio::spawn(manager.run(command_rx, notify_rx));
        tracing::info!(%addr, "dns engine listening");
        Ok(Self {
            commands,
            stop: Some(stop),
            addr,
            status: Arc::new(Mutex::new((
                EngineState::Ok,
                format!("serving 0 zones on {addr}"),
            ))),
            stats,
            served: tokio::sync::Mutex::new(Served::new()),
            rejected: Mutex::new(Vec::new()),
        })
    }

    /// The address (UDP and TCP) the engine answers on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Transfer counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Converges on `cfg` (what [`RoleEngine::apply`] does for a DNS config), zone by
    /// zone: a zone that cannot be served as configured keeps its previous version
    /// (or stays absent when new) and is listed by [`DnsEngine::rejected`].
    pub async fn apply_dns(&self, cfg: &DnsConfig) -> Result<(), EngineError> {
        // Plan here (pure, on the caller's task); the manager only converges.
        let mut served = self.served.lock().await;
        let (planned, rejected) = plan::plan(cfg, &served);
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Apply(planned, reply))
            .await
            .map_err(|_| EngineError::Apply("dns engine stopped".into()))?;
        let (planned, result) = answer
            .await
            .map_err(|_| EngineError::Apply("dns engine stopped".into()))?;
        match result {
            Ok(detail) => {
                // Remember what is served now, touching only what changed.
                served.commit(planned);
                self.set_status(EngineState::Ok, format!("{detail} on {}", self.addr));
                *self
                    .rejected
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = rejected;
                Ok(())
            }
            Err(e) => {
                self.set_status(
                    EngineState::Degraded,
                    format!("kept the previous zones: {e}"),
                );
                Err(EngineError::Apply(e))
            }
        }
    }

    fn set_status(&self, state: EngineState, detail: String) {
        *self
            .status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = (state, detail);
    }

    fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
            let _ = self.commands.try_send(Command::Shutdown);
        }
    }
}

impl Drop for DnsEngine {
    fn drop(&mut self) {
        self.stop_now();
    }
}

impl RoleEngine for DnsEngine {
    fn name(&self) -> &str {
        "dns"
    }

    fn apply<'a>(&'a mut self, cfg: &'a RoleConfig) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(async move {
            let RoleConfig::Dns(dns) = cfg else {
                return Err(EngineError::Invalid(format!(
                    "a dns engine got a {} config",
                    cfg.role()
                )));
            };
            self.apply_dns(dns).await
        })
    }

    fn health(&self) -> EngineHealth {
        let (state, detail) = self
            .status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let s = &self.stats;
        EngineHealth {
            name: "dns".into(),
            state,
            detail: format!(
                "{detail}; transfers in: {} ixfr, {} full",
                s.ixfr.load(Ordering::Relaxed),
                s.axfr.load(Ordering::Relaxed)
            ),
        }
    }

    fn rejected(&self) -> Vec<RejectedObject> {
        self.rejected
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn service_port(&self) -> Option<u16> {
        Some(self.addr.port())
    }

    fn shutdown(&mut self) -> BoxFuture<'_, ()> {
        self.stop_now();
        Box::pin(async {})
    }
}

struct PrimaryState {
    current: Arc<Zone>,
    history: VecDeque<Arc<Zone>>,
    notify: Vec<SocketAddr>,
    key: Option<Arc<Key>>,
    notifier: Option<JoinHandle<()>>,
    /// Identity of the transfer settings (notify targets, key) last applied.
    settings: Digest,
}

struct SecondaryState {
    generation: u64,
    settings: Digest,
    task: JoinHandle<()>,
    kick: mpsc::Sender<()>,
}

struct Manager {
    bind: IpAddr,
    zones_dir: PathBuf,
    set: ZoneSet,
    publish: watch::Sender<Arc<ZoneSet>>,
    primaries: HashMap<Name, PrimaryState>,
    secondaries: HashMap<Name, SecondaryState>,
    stored: HashMap<Name, persist::Loaded>,
    commands: mpsc::Sender<Command>,
    stats: Arc<Stats>,
    generation: u64,
    zone_keys: HashMap<Name, Arc<Key>>,
    refresh_limit: Arc<tokio::sync::Semaphore>,
}

fn unix_now() -> u64 {
    tsig::now()
}

impl Manager {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut notified: mpsc::Receiver<Notified>,
    ) {
        loop {
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    None | Some(Command::Shutdown) => break,
                    Some(cmd) => self.command(cmd).await,
                },
                Some(n) = notified.recv() => {
                    if let Some(s) = self.secondaries.get(&n.zone.to_lowercase()) {
                        let _ = s.kick.try_send(());
                    }
                }
            }
        }
        for p in self.primaries.values_mut() {
            if let Some(t) = p.notifier.take() {
                t.abort();
            }
        }
        for s in self.secondaries.values() {
            s.task.abort();
        }
    }

    fn publish(&self) {
        self.publish.send_replace(Arc::new(self.set.clone()));
    }

    async fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Apply(planned, reply) => {
                let result = self.apply(&planned);
                if result.is_ok() {
                    self.publish();
                }
                let _ = reply.send((planned, result));
            }
            Command::Transferred {
                zone,
                generation,
                new,
                incremental,
            } => {
                if !self.current_generation(&zone, generation) {
                    return;
                }
                let counter = if incremental {
                    &self.stats.ixfr
                } else {
                    &self.stats.axfr
                };
                counter.fetch_add(1, Ordering::Relaxed);
                self.set.replace_shared(new);
                self.set_unavailable(&zone, false);
                self.publish();
            }
            Command::Expired { zone, generation } => {
                if self.current_generation(&zone, generation) {
                    tracing::warn!(zone = %zone, "secondary zone expired; answering SERVFAIL");
                    self.set.remove_content(&zone);
                    self.set_unavailable(&zone, true);
                    self.publish();
                }
            }
            Command::Shutdown => {}
        }
    }

    fn current_generation(&self, zone: &Name, generation: u64) -> bool {
        self.secondaries
            .get(zone)
            .is_some_and(|s| s.generation == generation)
    }

    fn set_unavailable(&mut self, zone: &Name, unavailable: bool) {
        if let Some(meta) = self.set.meta(zone) {
            let mut m = (**meta).clone();
            m.unavailable = unavailable;
            self.set.set_meta(zone.clone(), Arc::new(m));
        }
    }

    /// Converges on a planned change set; returns a status line.
    fn apply(&mut self, plan: &Plan) -> Result<String, String> {
        for (_, z) in &plan.removed {
            self.drop_zone(z);
        }
        for p in &plan.changed {
            match &p.key {
                Some(k) => self.zone_keys.insert(p.origin.clone(), Arc::clone(k)),
                None => self.zone_keys.remove(&p.origin),
            };
            if p.primary {
                if self.secondaries.contains_key(&p.origin) {
                    self.drop_zone(&p.origin);
                }
                self.apply_primary(p);
            } else {
                if self.primaries.contains_key(&p.origin) {
                    self.drop_zone(&p.origin);
                }
                self.apply_secondary(p);
            }
        }
        self.set.set_keys(self.zone_keys.values().cloned());
        // Stored copies not picked up by the first config are no longer assigned.
        for (z, _) in std::mem::take(&mut self.stored) {
            if !self.secondaries.contains_key(&z) {
                if let Err(e) = persist::remove(&self.zones_dir, &z) {
                    tracing::warn!(zone = %z, error = %e, "could not remove the stored zone");
                }
            }
        }
        Ok(format!(
            "serving {} zones ({} primary, {} secondary)",
            self.set.len(),
            self.primaries.len(),
            self.secondaries.len()
        ))
    }

    fn drop_zone(&mut self, zone: &Name) {
        self.zone_keys.remove(zone);
        if let Some(mut p) = self.primaries.remove(zone) {
            if let Some(t) = p.notifier.take() {
                t.abort();
            }
        }
        if let Some(s) = self.secondaries.remove(zone) {
            s.task.abort();
            if let Err(e) = persist::remove(&self.zones_dir, zone) {
                tracing::warn!(zone = %zone, error = %e, "could not remove the stored zone");
            }
        }
        self.set.remove(zone);
    }

    fn apply_primary(&mut self, p: &Planned) {
        let Some((_, new)) = &p.content else {
            return;
        };
        let new = Arc::clone(new);
        let is_new = !self.primaries.contains_key(&p.origin);
        let state = self
            .primaries
            .entry(p.origin.clone())
            .or_insert_with(|| PrimaryState {
                current: Arc::clone(&new),
                history: VecDeque::new(),
                notify: Vec::new(),
                key: None,
                notifier: None,
                settings: [0; 32],
            });
        if !is_new && Arc::ptr_eq(&state.current, &new) && state.settings == p.settings {
            return; // nothing changed: keep the published zone and metadata
        }
        state.settings = p.settings;
        // Notify on a new zone, a new serial, or new targets.
        let changed = is_new || state.current.serial() != new.serial() || state.notify != p.notify;
        if state.current.serial() != new.serial() {
            let old = std::mem::replace(&mut state.current, Arc::clone(&new));
            state.history.push_back(old);
            while state.history.len() > JOURNAL_DEPTH {
                state.history.pop_front();
            }
        }
        if p.notify.is_empty() {
            // Only notify targets may transfer: with none, nobody can ask for IXFR.
            state.history.clear();
        }
        state.notify = p.notify.clone();
        state.key = p.key.clone();
        let meta = ZoneMeta {
            transfer_acl: p.notify.iter().map(SocketAddr::ip).collect(),
            notify_from: Vec::new(),
            tsig: p.key.clone(),
            history: state.history.iter().cloned().collect(),
            unavailable: false,
        };
        self.set.replace_shared(Arc::clone(&state.current));
        self.set.set_meta(p.origin.clone(), Arc::new(meta));
        if changed && !state.notify.is_empty() {
            if let Some(t) = state.notifier.take() {
                t.abort();
            }
            state.notifier = Some(tokio::spawn(send_notifies(
                self.bind,
                state.notify.clone(),
                Arc::clone(&state.current),
                state.key.clone(),
                Arc::clone(&self.stats),
            )));
        }
    }

    fn apply_secondary(&mut self, p: &Planned) {
        let meta = ZoneMeta {
            transfer_acl: Vec::new(),
            notify_from: p.endpoints.iter().map(SocketAddr::ip).collect(),
            tsig: p.key.clone(),
            history: Vec::new(),
            unavailable: self.set.get(&p.origin).is_none(),
        };
        if let Some(s) = self.secondaries.get(&p.origin) {
            if s.settings == p.settings {
                return;
            }
            s.task.abort();
        }
        let mut have = self.set.get_shared(&p.origin).cloned();
        let mut refreshed_at = unix_now();
        if have.is_none() {
            if let Some(stored) = self.stored.remove(&p.origin) {
                let (_, _, expire) = stored.zone.timers();
                if stored.refreshed_at + u64::from(expire) > unix_now() {
                    refreshed_at = stored.refreshed_at;
                    let z = Arc::new(stored.zone);
                    self.set.replace_shared(Arc::clone(&z));
                    have = Some(z);
                }
            }
        }
        let meta = ZoneMeta {
            unavailable: have.is_none(),
            ..meta
        };
        self.set.set_meta(p.origin.clone(), Arc::new(meta));
        self.generation += 1;
        let (kick, kicked) = mpsc::channel(1);
        let task = tokio::spawn(secondary_loop(SecondaryTask {
            zone: p.origin.clone(),
            generation: self.generation,
            bind: self.bind,
            endpoints: p.endpoints.clone(),
            key: p.key.clone(),
            have,
            refreshed_at,
            kicked,
            manager: self.commands.clone(),
            limit: Arc::clone(&self.refresh_limit),
            zones_dir: self.zones_dir.clone(),
        }));
        self.secondaries.insert(
            p.origin.clone(),
            SecondaryState {
                generation: self.generation,
                settings: p.settings,
                task,
                kick,
            },
        );
    }
}

/// Sends NOTIFY for `zone` to every target, each retried with backoff until answered.
async fn send_notifies(
    bind: IpAddr,
    targets: Vec<SocketAddr>,
    zone: Arc<Zone>,
    key: Option<Arc<Key>>,
    stats: Arc<Stats>,
) {
    let mut tasks = tokio::task::JoinSet::new();
    for target in targets {
        let zone = Arc::clone(&zone);
        let key = key.clone();
        let stats = Arc::clone(&stats);
        tasks.spawn(async move {
            let mut delay = Duration::from_millis(250);
            for attempt in 1..=NOTIFY_ATTEMPTS {
                // During a key rotation's grace period a secondary may still hold
                // the previous secret: refused with the current one, try that.
                let previous = key.as_deref().and_then(|k| k.previous(tsig::now()));
                let keys = std::iter::once(key.as_deref()).chain(previous.map(Some));
                for k in keys {
                    match client::notify_once(bind, target, zone.soa(), k, Duration::from_secs(1)).await {
                        Ok(()) => {
                            stats.notifies_acked.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                        Err(e) => tracing::debug!(%target, attempt, error = %e, "notify not answered"),
                    }
                }
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            tracing::info!(%target, zone = %zone.origin(), "notify never answered; the secondary's refresh timer will catch up");
        });
    }
    while tasks.join_next().await.is_some() {}
}

struct SecondaryTask {
    zone: Name,
    generation: u64,
    bind: IpAddr,
    endpoints: Vec<SocketAddr>,
    key: Option<Arc<Key>>,
    have: Option<Arc<Zone>>,
    refreshed_at: u64,
    kicked: mpsc::Receiver<()>,
    manager: mpsc::Sender<Command>,
    /// Shared limit on concurrent refreshes (thousands of zones start at once).
    limit: Arc<tokio::sync::Semaphore>,
    /// Where transferred copies are stored.
    zones_dir: PathBuf,
}

/// Writes the zone durably on the blocking pool (fsyncs of many zones run in
/// parallel, one per refresh task).
async fn persist_in_background(dir: &std::path::Path, zone: &Arc<Zone>, refreshed_at: u64) {
    let (dir, z) = (dir.to_path_buf(), Arc::clone(zone));
    match tokio::task::spawn_blocking(move || persist::save(&dir, &z, refreshed_at)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(zone = %zone.origin(), error = %e, "could not persist the zone")
        }
        Err(e) => tracing::warn!(zone = %zone.origin(), error = %e, "persisting the zone failed"),
    }
}

/// Keeps one secondary zone fresh: refresh on NOTIFY or timer, retry on failure,
/// expire after the SOA expire time without contact.
async fn secondary_loop(mut t: SecondaryTask) {
    let mut failures: u32 = 0;
    loop {
        let mut ok = false;
        let permit = Arc::clone(&t.limit).acquire_owned().await;
        for endpoint in &t.endpoints {
            let up = Upstream {
                addr: *endpoint,
                bind: t.bind,
                key: t.key.as_deref(),
                timeout: STEP_TIMEOUT,
            };
            match client::refresh(&up, &t.zone, t.have.as_deref()).await {
                Ok(Refreshed::Current(_)) => {
                    ok = true;
                    t.refreshed_at = unix_now();
                    if let Some(z) = &t.have {
                        persist_in_background(&t.zones_dir, z, t.refreshed_at).await;
                    }
                }
                Ok(Refreshed::Updated { zone, incremental }) => {
                    ok = true;
                    t.refreshed_at = unix_now();
                    let zone: Arc<Zone> = Arc::from(zone);
                    // On disk before it is served (a restart answers the same).
                    persist_in_background(&t.zones_dir, &zone, t.refreshed_at).await;
                    t.have = Some(Arc::clone(&zone));
                    let _ = t
                        .manager
                        .send(Command::Transferred {
                            zone: t.zone.clone(),
                            generation: t.generation,
                            new: zone,
                            incremental,
                        })
                        .await;
                }
                Err(e) => {
                    tracing::debug!(zone = %t.zone, %endpoint, error = %e, "refresh failed");
                    continue;
                }
            }
            break;
        }
        drop(permit);
        failures = if ok { 0 } else { failures.saturating_add(1) };
        let (refresh, retry, expire) = t.have.as_ref().map(|z| z.timers()).unwrap_or((0, 0, 0));
        let wait = if ok {
            Duration::from_secs(u64::from(refresh.max(1)))
        } else if t.have.is_some() {
            Duration::from_secs(u64::from(retry.max(1)))
        } else {
            // Nothing yet: back off 1 s, 2 s, 4 s … up to a minute.
            Duration::from_secs(1u64 << failures.min(6)).min(Duration::from_secs(60))
        };
        let expires_in = t
            .have
            .as_ref()
            .map(|_| (t.refreshed_at + u64::from(expire)).saturating_sub(unix_now()));
        if expires_in == Some(0) {
            let _ = t
                .manager
                .send(Command::Expired {
                    zone: t.zone.clone(),
                    generation: t.generation,
                })
                .await;
            t.have = None;
        }
        let wait = match expires_in {
            Some(s) if s > 0 => wait.min(Duration::from_secs(s)),
            _ => wait,
        };
        tokio::select! {
            _ = t.kicked.recv() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}
