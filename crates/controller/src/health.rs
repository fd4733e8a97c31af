//! Server health: heartbeats and active probes → `unknown` / `up` / `suspect` /
//! `down`, kept in memory; every transition is recorded as a `server.health` event.
//!
//! State machine (per server):
//! - a heartbeat makes it `up` (from any state);
//! - `up` (or a joined server never heard from since the controller started) with no
//!   heartbeat for `suspect_after × heartbeat_interval` becomes `suspect`;
//! - `suspect` is probed every tick: a TCP connect to the role's service port on the
//!   server's first address (`health.probe_ports`, or the `probe_port` of its last
//!   heartbeat), within `probe_timeout_ms`. A failed probe makes it `down`; a
//!   successful one keeps it `suspect` (the engine serves, the agent is silent).
//!
//! Silence is judged only when the controller could have heard (see
//! [`scheduler::disruption`]): time its runtime could not run ([`watch_lag`]) is
//! excused, and where most servers of the platform or of a cluster fall silent at
//! once, their servers keep their state (no `suspect`, no `down`, no failover) until
//! that passes: a busy or partitioned controller never fails healthy servers over.
//!
//! Servers that never joined (created through the API, no agent) stay `unknown`.
//! Every tick re-checks placement ([`crate::placement::tick`]): going `down` and
//! coming back `up` move sites until converged.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use model::entity::{Kind, Server};
use model::Id;
use proto::agent_v1::{EngineHealth, Heartbeat};
use scheduler::disruption::{Hold, Watched};
use scheduler::Health;
use store::{Actor, Stored};
use time::OffsetDateTime;

use crate::config::HealthConfig;
use crate::configs::ChangeNotifier;

/// The placement check run at the end of every tick ([`crate::placement::tick`]):
/// failover is level-triggered, so it is re-evaluated until converged.
pub type PlacementTick = std::sync::Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send + Sync,
>;

/// What the health monitor task and the recording of transitions need.
#[derive(Clone)]
pub struct HealthDeps {
    /// Servers are read from it, events written to it.
    pub store: store::Store,
    /// The in-memory health of every server.
    pub health: std::sync::Arc<HealthMonitor>,
    /// `[health]` of the controller's configuration.
    pub config: HealthConfig,
    /// Told about transitions (health feeds the zones).
    pub changes: ChangeNotifier,
    /// Turns true when the controller stops.
    pub stopping: tokio::sync::watch::Receiver<bool>,
    /// The placement check of every tick.
    pub placement_tick: PlacementTick,
}

impl std::fmt::Debug for HealthDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthDeps").finish_non_exhaustive()
    }
}

/// The wire spelling of a health state.
pub fn health_str(h: Health) -> &'static str {
    match h {
        Health::Unknown => "unknown",
        Health::Up => "up",
        Health::Suspect => "suspect",
        Health::Down => "down",
    }
}

/// What the controller knows about one server's health.
#[derive(Debug, Clone)]
pub struct ServerHealth {
    /// Current state.
    pub state: Health,
    /// Wall-clock time of the last heartbeat.
    pub last_heartbeat: Option<OffsetDateTime>,
    /// Monotonic time of the last heartbeat.
    last_seen: Option<Instant>,
    /// Since when the controller expects heartbeats (start or first sight).
    watched_since: Instant,
    /// Revision the agent last applied.
    pub applied_revision: Option<i64>,
    /// Its engines' health.
    pub engines: Vec<EngineHealth>,
    /// Port to probe, as the agent reported.
    pub probe_port: Option<u16>,
    /// Agent version.
    pub agent_version: Option<String>,
    /// The engine's last report (database sizes, mail queue).
    pub report: Option<std::sync::Arc<proto::agent_v1::RoleReport>>,
    /// Objects its engine could not apply, as the last heartbeat listed them.
    pub rejected: Vec<proto::agent_v1::RejectedObject>,
}

impl ServerHealth {
    fn new(now: Instant) -> Self {
        Self {
            state: Health::Unknown,
            last_heartbeat: None,
            last_seen: None,
            watched_since: now,
            applied_revision: None,
            engines: Vec::new(),
            probe_port: None,
            agent_version: None,
            report: None,
            rejected: Vec::new(),
        }
    }
}

/// A change of a server's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// Server id.
    pub server: Id,
    /// Previous state.
    pub from: Health,
    /// New state.
    pub to: Health,
}

/// The monitor's account of its own blindness.
#[derive(Debug, Default)]
struct BlindClock {
    /// End of the last span excused.
    excused_until: Option<Instant>,
    /// When [`watch_lag`] last ran.
    watcher_ran: Option<Instant>,
}

/// Health of every server, in memory.
#[derive(Debug)]
pub struct HealthMonitor {
    config: HealthConfig,
    servers: Mutex<HashMap<Id, ServerHealth>>,
    /// What was excused as blind time, and when [`watch_lag`] last ran.
    blind: Mutex<BlindClock>,
    /// The joined agents' identities, refreshed every tick: heartbeats are
    /// authenticated from memory ([`crate::identities`]).
    pub identities: crate::identities::Identities,
    /// Followers of the platform map's changes ([`crate::live`]).
    pub live: crate::live::Live,
}

impl HealthMonitor {
    /// An empty monitor with these timings.
    pub fn new(config: HealthConfig) -> Self {
        Self {
            config,
            servers: Mutex::new(HashMap::new()),
            blind: Mutex::new(BlindClock::default()),
            identities: crate::identities::Identities::default(),
            live: crate::live::Live::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Id, ServerHealth>> {
        self.servers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The state of a server (`unknown` if never heard of).
    pub fn state(&self, server: Id) -> Health {
        self.lock()
            .get(&server)
            .map(|h| h.state)
            .unwrap_or(Health::Unknown)
    }

    /// Everything known about a server.
    pub fn get(&self, server: Id) -> Option<ServerHealth> {
        self.lock().get(&server).cloned()
    }

    /// Record a heartbeat; returns the transition to `up`, if it is one.
    pub fn heartbeat(&self, server: Id, hb: &Heartbeat) -> Option<Transition> {
        let now = Instant::now();
        let mut map = self.lock();
        let h = map.entry(server).or_insert_with(|| ServerHealth::new(now));
        h.last_seen = Some(now);
        h.last_heartbeat = Some(OffsetDateTime::now_utc());
        h.applied_revision = Some(hb.applied_revision);
        h.engines = hb.engines.clone();
        h.probe_port = hb.probe_port.filter(|p| *p != 0);
        h.agent_version = Some(hb.agent_version.clone());
        if let Some(r) = &hb.report {
            h.report = Some(std::sync::Arc::new(r.clone()));
        }
        let from = h.state;
        h.state = Health::Up;
        (from != Health::Up).then_some(Transition {
            server,
            from,
            to: Health::Up,
        })
    }

    /// Keep only `existing` servers; start watching `joined` ones not yet watched.
    pub fn sync(&self, existing: &[Id], joined: &[Id]) {
        let now = Instant::now();
        let mut map = self.lock();
        map.retain(|id, _| existing.contains(id));
        for id in joined {
            map.entry(*id).or_insert_with(|| ServerHealth::new(now));
        }
    }

    /// Move silent servers to `suspect`; returns those transitions.
    pub fn expire(&self, now: Instant) -> Vec<Transition> {
        let overdue = self.overdue(now);
        self.suspect(&overdue, now)
    }

    /// Whether `h` has been silent longer than `window` at `now`.
    fn is_overdue(h: &ServerHealth, window: Duration, now: Instant) -> bool {
        matches!(h.state, Health::Up | Health::Unknown)
            && now.saturating_duration_since(h.last_seen.unwrap_or(h.watched_since)) > window
    }

    /// Servers still `up` (or `unknown`) whose silence outlived the window at `now`:
    /// the ones [`HealthMonitor::suspect`] would move.
    pub fn overdue(&self, now: Instant) -> Vec<Id> {
        let window = self.config.suspect_window();
        self.lock()
            .iter()
            .filter(|(_, h)| Self::is_overdue(h, window, now))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Move those of `servers` still overdue at `now` (no heartbeat came meanwhile)
    /// to `suspect`; returns those transitions.
    pub fn suspect(&self, servers: &[Id], now: Instant) -> Vec<Transition> {
        let window = self.config.suspect_window();
        let mut map = self.lock();
        let mut out = Vec::new();
        for id in servers {
            let Some(h) = map.get_mut(id) else { continue };
            if Self::is_overdue(h, window, now) {
                out.push(Transition {
                    server: *id,
                    from: h.state,
                    to: Health::Suspect,
                });
                h.state = Health::Suspect;
            }
        }
        out
    }

    /// A task of the controller due at `due` ran only at `ran`: the part of that
    /// span beyond [`JITTER`] not excused yet is time the controller could neither
    /// receive nor judge heartbeats ([`scheduler::disruption::newly_blind`]); it is
    /// not counted as any server's silence. Returns the time excused.
    pub fn ran_late(&self, due: Instant, ran: Instant) -> Duration {
        let blind = {
            let mut b = self.blind.lock().unwrap_or_else(|p| p.into_inner());
            let d = scheduler::disruption::newly_blind(due, ran, JITTER, b.excused_until);
            if !d.is_zero() {
                b.excused_until = Some(ran);
            }
            d
        };
        self.excuse(blind, ran);
        blind
    }

    /// Before judging at `now`: if [`watch_lag`] has not run when it should have,
    /// the runtime is (or just was) unable to run it; that time is excused too (the
    /// judgement may come first after a stall).
    pub fn catch_up(&self, now: Instant) -> Duration {
        let ran = self
            .blind
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .watcher_ran;
        match ran {
            Some(ran) => self.ran_late(ran + LAG_PROBE, now),
            None => Duration::ZERO,
        }
    }

    /// Shift every server's silence baseline by `blind` (never past `now`).
    fn excuse(&self, blind: Duration, now: Instant) {
        if blind.is_zero() {
            return;
        }
        let shift = |t: Instant| t.checked_add(blind).map_or(now, |t| t.min(now));
        for h in self.lock().values_mut() {
            h.watched_since = shift(h.watched_since);
            h.last_seen = h.last_seen.map(shift);
        }
    }

    /// Every watched server's current state.
    pub fn states(&self) -> HashMap<Id, Health> {
        self.lock().iter().map(|(id, h)| (*id, h.state)).collect()
    }

    /// Record the objects a server's engine could not apply; returns what changed
    /// since its last heartbeat (see [`crate::rejections`]).
    pub fn set_rejected(
        &self,
        server: Id,
        now: &[proto::agent_v1::RejectedObject],
    ) -> crate::rejections::Change {
        let mut map = self.lock();
        let h = map
            .entry(server)
            .or_insert_with(|| ServerHealth::new(Instant::now()));
        let change = crate::rejections::diff(&h.rejected, now);
        if !change.is_empty() {
            h.rejected = now.to_vec();
        }
        change
    }

    /// The last report of a server's engine, if it sent one.
    pub fn report(&self, server: Id) -> Option<std::sync::Arc<proto::agent_v1::RoleReport>> {
        self.lock().get(&server).and_then(|h| h.report.clone())
    }

    /// The service port a server's last heartbeat reported, if any.
    pub fn reported_port(&self, server: Id) -> Option<u16> {
        self.lock().get(&server).and_then(|h| h.probe_port)
    }

    /// Servers to probe: every `suspect` one, with the port override it reported.
    pub fn suspects(&self) -> Vec<(Id, Option<u16>)> {
        self.lock()
            .iter()
            .filter(|(_, h)| h.state == Health::Suspect)
            .map(|(id, h)| (*id, h.probe_port))
            .collect()
    }

    /// The probe of a suspect failed: `down`, unless a heartbeat arrived meanwhile.
    pub fn confirm_down(&self, server: Id) -> Option<Transition> {
        let mut map = self.lock();
        let h = map.get_mut(&server)?;
        (h.state == Health::Suspect).then(|| {
            h.state = Health::Down;
            Transition {
                server,
                from: Health::Suspect,
                to: Health::Down,
            }
        })
    }
}

/// Mailboxes whose outgoing-limit refusals grew between two mail reports (an engine
/// restart starts its counts again: any other count counts as grown).
pub fn newly_limited(
    before: Option<&proto::agent_v1::RoleReport>,
    now: Option<&proto::agent_v1::RoleReport>,
) -> Vec<proto::agent_v1::LimitedSender> {
    use proto::agent_v1::RoleReport;
    let Some(RoleReport::Mail(now)) = now else {
        return Vec::new();
    };
    let before: HashMap<&str, u64> = match before {
        Some(RoleReport::Mail(b)) => b
            .limited
            .iter()
            .map(|l| (l.mailbox.as_str(), l.refused))
            .collect(),
        _ => HashMap::new(),
    };
    now.limited
        .iter()
        .filter(|l| l.refused > 0 && before.get(l.mailbox.as_str()) != Some(&l.refused))
        .cloned()
        .collect()
}

/// Record `mail.limit` events: a mail server refused submissions over the outgoing
/// limits.
pub async fn record_limited(
    store: &store::Store,
    server: &Stored<Server>,
    limited: &[proto::agent_v1::LimitedSender],
) {
    let events = limited
        .iter()
        .map(|l| {
            tracing::warn!(server = %server.meta.name, mailbox = %l.mailbox, refused = l.refused,
                "outgoing mail limit reached");
            (
                "mail.limit",
                serde_json::json!({"mailbox": l.mailbox, "refused_since_start": l.refused}),
            )
        })
        .collect();
    record_server_events(store, server, events, "outgoing limit").await;
}

/// Record `events` (type, details) about `server` in one transaction of the
/// health actor; a store error is logged (naming `what`), never returned: the
/// events of a report are lost at worst, the report itself is not.
pub async fn record_server_events(
    store: &store::Store,
    server: &Stored<Server>,
    events: Vec<(&'static str, serde_json::Value)>,
    what: &str,
) {
    if events.is_empty() {
        return;
    }
    let result = async {
        let mut tx = store
            .begin(Actor {
                account: None,
                label: "health".into(),
            })
            .await?;
        for (kind, details) in events {
            tx.event(
                kind,
                Kind::Server,
                Some((server.meta.id, &server.meta.name)),
                None,
                details,
            )
            .await?;
        }
        tx.commit().await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "cannot record {what} events");
    }
}

/// TCP-connect probe of `addr` within `timeout`.
pub async fn probe(addr: SocketAddr, timeout: Duration) -> bool {
    matches!(
        tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

/// Record transitions as `server.health` events (one transaction); the next
/// [`tick`] re-places what they affect.
pub async fn record(state: &HealthDeps, transitions: &[Transition]) {
    if transitions.is_empty() {
        return;
    }
    state.health.live.transitions(transitions);
    let servers: HashMap<Id, Stored<Server>> = match state.store.all::<Server>().await {
        Ok(list) => list.into_iter().map(|s| (s.meta.id, s)).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read servers to record health transitions");
            return;
        }
    };
    let result = async {
        let mut tx = state
            .store
            .begin(Actor {
                account: None,
                label: "health".into(),
            })
            .await?;
        for t in transitions {
            let Some(s) = servers.get(&t.server) else {
                continue;
            };
            tracing::info!(server = %s.meta.name, from = health_str(t.from), to = health_str(t.to), "server health changed");
            tx.event(
                "server.health",
                Kind::Server,
                Some((s.meta.id, &s.meta.name)),
                None,
                serde_json::json!({
                    "from": health_str(t.from),
                    "to": health_str(t.to),
                    "cluster": s.data.cluster,
                }),
            )
            .await?;
        }
        tx.commit().await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "cannot record health transitions");
    }
    // Health feeds the zones (web records follow healthy servers): rebuild now rather
    // than at the next store poll, so failover reaches DNS within a second.
    state.changes.changed();
}

/// Timer slack of the monitor's own tasks that is not excused as blindness.
const JITTER: Duration = Duration::from_millis(20);

/// One monitor tick: watch joined servers, expire silent ones, probe suspects —
/// except in the scopes where [`scheduler::disruption::judge`] finds most servers
/// silent at once (those keep their state); returns that hold.
pub async fn tick(state: &HealthDeps) -> Hold {
    let read = state.health.identities.generation();
    let servers = match state.store.all::<Server>().await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "health monitor cannot read servers");
            return Hold::default();
        }
    };
    let existing: Vec<Id> = servers.iter().map(|s| s.meta.id).collect();
    let joined: Vec<Id> = servers
        .iter()
        .filter(|s| s.data.agent.is_some())
        .map(|s| s.meta.id)
        .collect();
    state.health.sync(&existing, &joined);
    state.health.identities.refresh(read, &servers);
    let now = Instant::now();
    state.health.catch_up(now);
    let overdue = state.health.overdue(now);
    let cluster_of: HashMap<Id, Id> = servers
        .iter()
        .map(|s| (s.meta.id, s.data.cluster))
        .collect();
    let hold = judge(&state.health.states(), &overdue, &cluster_of, &joined);
    let held = |id: &Id| cluster_of.get(id).is_some_and(|c| hold.holds(*c));
    let due: Vec<Id> = overdue.into_iter().filter(|id| !held(id)).collect();
    let mut transitions = state.health.suspect(&due, now);
    let by_id: HashMap<Id, &Stored<Server>> = servers.iter().map(|s| (s.meta.id, s)).collect();
    let timeout = state.config.probe_timeout();
    let mut probes = tokio::task::JoinSet::new();
    for (id, port) in state.health.suspects() {
        let Some(s) = by_id.get(&id) else { continue };
        if held(&id) {
            // Held suspects are not probed into `down`: nothing fails over.
            continue;
        }
        let port = port.unwrap_or_else(|| state.config.probe_ports.of(s.data.role));
        let Some(ip) = s.data.addresses.first() else {
            // Nothing to probe: the silence is all there is.
            probes.spawn(async move { (id, false) });
            continue;
        };
        let addr = SocketAddr::new(*ip, port);
        probes.spawn(async move { (id, probe(addr, timeout).await) });
    }
    while let Some(done) = probes.join_next().await {
        if let Ok((id, false)) = done {
            if let Some(t) = state.health.confirm_down(id) {
                transitions.push(t);
            }
        }
    }
    record(state, &transitions).await;
    // Failover is level-triggered: every tick re-checks placement until converged.
    (state.placement_tick)().await;
    hold
}

/// The judgement of [`scheduler::disruption::judge`] over the joined servers, with
/// the `overdue` ones counted as `suspect`.
fn judge(
    states: &HashMap<Id, Health>,
    overdue: &[Id],
    cluster_of: &HashMap<Id, Id>,
    joined: &[Id],
) -> Hold {
    let watched: Vec<Watched> = joined
        .iter()
        .filter_map(|id| {
            let health = if overdue.contains(id) {
                Health::Suspect
            } else {
                states.get(id).copied().unwrap_or(Health::Unknown)
            };
            Some(Watched {
                cluster: *cluster_of.get(id)?,
                health,
            })
        })
        .collect();
    scheduler::disruption::judge(&watched)
}

/// Log when a hold begins, changes or ends (not on every tick).
fn log_hold(before: &Hold, now: &Hold) {
    if before == now {
        return;
    }
    if now.is_empty() {
        tracing::info!("silent servers are judged one by one again");
    } else if now.everywhere {
        tracing::warn!(
            "most servers are silent at once: treating it as the controller's own trouble or a network partition; no server is marked suspect or down, nothing fails over"
        );
    } else {
        tracing::warn!(
            clusters = ?now.clusters,
            "most servers of these clusters are silent at once: treating it as a partition; their servers keep their state, nothing fails over"
        );
    }
}

/// The monitor task: a tick every half heartbeat interval until the controller
/// stops, and beside it [`watch_lag`].
pub async fn run(state: HealthDeps) {
    let every = (state.config.interval() / 2).max(Duration::from_millis(5));
    let lag = tokio::spawn(watch_lag(
        std::sync::Arc::clone(&state.health),
        state.config.interval(),
        state.stopping.clone(),
    ));
    let mut stopping = state.stopping.clone();
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut hold = Hold::default();
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let now = tick(&state).await;
                log_hold(&hold, &now);
                crate::health_hold::record(&state, &crate::health_hold::changes(&hold, &now)).await;
                hold = now;
            }
            r = stopping.changed() => {
                if r.is_err() || *stopping.borrow() { break; }
            }
        }
    }
    lag.abort();
}

/// How often [`watch_lag`] checks that the controller's runtime runs on time.
const LAG_PROBE: Duration = Duration::from_millis(25);

/// Measure how late the controller's runtime wakes a task that only sleeps: when it
/// wakes later than [`LAG_PROBE`] plus [`JITTER`], the controller could neither
/// receive nor judge heartbeats that long (the process was stopped, CPU-heavy work
/// held every worker), and [`HealthMonitor::ran_late`] excuses it. A task of its
/// own, so a stall in the middle of a tick (a slow store read) is measured too.
async fn watch_lag(
    health: std::sync::Arc<HealthMonitor>,
    interval: Duration,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let due = Instant::now() + LAG_PROBE;
        tokio::select! {
            () = tokio::time::sleep_until(due.into()) => {
                let woke = Instant::now();
                let blind = health.ran_late(due, woke);
                health.blind.lock().unwrap_or_else(|p| p.into_inner()).watcher_ran = Some(woke);
                if blind > interval {
                    tracing::warn!(?blind, "the controller could not run for a while; that time is not counted as any server's silence");
                }
            }
            r = stopping.changed() => {
                if r.is_err() || *stopping.borrow() { return; }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::agent_v1::EngineState;

    #[test]
    fn limited_mailboxes_are_new_when_their_count_changes() {
        use proto::agent_v1::{LimitedSender, MailReport, RoleReport};
        let report = |l: &[(&str, u64)]| {
            RoleReport::Mail(MailReport {
                queue: Vec::new(),
                limited: l
                    .iter()
                    .map(|(m, n)| LimitedSender {
                        mailbox: (*m).into(),
                        refused: *n,
                    })
                    .collect(),
                caught_up_epoch: None,
            })
        };
        let names = |v: Vec<LimitedSender>| v.into_iter().map(|l| l.mailbox).collect::<Vec<_>>();
        let a = report(&[("a@x", 1)]);
        assert_eq!(names(newly_limited(None, Some(&a))), ["a@x"]);
        assert!(newly_limited(Some(&a), Some(&a)).is_empty());
        let b = report(&[("a@x", 1), ("b@x", 2)]);
        assert_eq!(names(newly_limited(Some(&a), Some(&b))), ["b@x"]);
        let c = report(&[("a@x", 3)]);
        assert_eq!(names(newly_limited(Some(&b), Some(&c))), ["a@x"]);
        assert!(newly_limited(Some(&c), None).is_empty());
    }

    fn hb(rev: i64) -> Heartbeat {
        Heartbeat {
            applied_revision: rev,
            engines: vec![EngineHealth {
                name: "web".into(),
                state: EngineState::Ok,
                detail: String::new(),
            }],
            agent_version: "test".into(),
            probe_port: Some(8080),
            report: None,
            rejected: Vec::new(),
        }
    }

    fn monitor() -> HealthMonitor {
        HealthMonitor::new(HealthConfig {
            heartbeat_interval_ms: 100,
            suspect_after: 3,
            ..HealthConfig::default()
        })
    }

    #[test]
    fn blind_time_is_not_silence_and_is_excused_once() {
        let ms = Duration::from_millis;
        let m = monitor();
        m.sync(&[1], &[1]);
        m.heartbeat(1, &hb(1));
        let t0 = Instant::now();
        // The controller stalled for 5 s right after the beat (window: 300 ms).
        assert_eq!(m.ran_late(t0, t0 + ms(5000)), ms(5000) - JITTER);
        assert!(m.expire(t0 + ms(5000)).is_empty());
        // A second observer of the same stall excuses nothing more.
        assert_eq!(m.ran_late(t0, t0 + ms(5000)), Duration::ZERO);
        // After the stall, silence counts again.
        let t = m.expire(t0 + ms(5301));
        assert_eq!(t.iter().map(|t| t.server).collect::<Vec<_>>(), [1]);
    }

    #[test]
    fn a_judgement_before_the_lag_watcher_woke_catches_up() {
        let ms = Duration::from_millis;
        let m = monitor();
        m.sync(&[1], &[1]);
        m.heartbeat(1, &hb(1));
        let t0 = Instant::now();
        m.blind.lock().unwrap().watcher_ran = Some(t0);
        // The tick runs first after a 2 s stall: the watcher is overdue.
        assert_eq!(m.catch_up(t0 + ms(2000)), ms(2000) - LAG_PROBE - JITTER);
        assert!(m.expire(t0 + ms(2000)).is_empty());
        // The watcher then reports the same stall: not excused twice.
        assert_eq!(m.ran_late(t0 + LAG_PROBE, t0 + ms(2000)), Duration::ZERO);
        // On time, nothing is excused and a silent server still goes suspect.
        m.blind.lock().unwrap().watcher_ran = Some(t0 + ms(2400));
        assert_eq!(m.catch_up(t0 + ms(2410)), Duration::ZERO);
        assert_eq!(m.expire(t0 + ms(2400)).len(), 1);
    }

    #[test]
    fn state_machine() {
        let m = HealthMonitor::new(HealthConfig {
            heartbeat_interval_ms: 100,
            suspect_after: 3,
            ..HealthConfig::default()
        });
        let t0 = Instant::now();
        m.sync(&[1, 2, 3], &[1, 2]);
        assert_eq!(m.state(1), Health::Unknown);
        assert_eq!(
            m.heartbeat(1, &hb(5)),
            Some(Transition {
                server: 1,
                from: Health::Unknown,
                to: Health::Up
            })
        );
        assert_eq!(m.heartbeat(1, &hb(6)), None);
        assert_eq!(m.get(1).unwrap().applied_revision, Some(6));
        assert!(m.expire(t0 + Duration::from_millis(250)).is_empty());
        // Joined server 2 was never heard from; 3 never joined and is not watched.
        let t = m.expire(Instant::now() + Duration::from_millis(301));
        assert_eq!(t.len(), 2);
        assert!(t.iter().all(|t| t.to == Health::Suspect));
        assert_eq!(m.state(3), Health::Unknown);
        assert_eq!(m.suspects().len(), 2);
        assert!(m.suspects().contains(&(1, Some(8080))));
        assert!(m.confirm_down(1).is_some());
        assert!(m.confirm_down(1).is_none(), "only suspects go down");
        assert_eq!(m.state(1), Health::Down);
        assert_eq!(m.heartbeat(1, &hb(7)).map(|t| t.from), Some(Health::Down));
        m.sync(&[1], &[]);
        assert!(m.get(2).is_none());
    }
}
