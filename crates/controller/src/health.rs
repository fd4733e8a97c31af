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

/// Health of every server, in memory.
#[derive(Debug)]
pub struct HealthMonitor {
    config: HealthConfig,
    servers: Mutex<HashMap<Id, ServerHealth>>,
}

impl HealthMonitor {
    /// An empty monitor with these timings.
    pub fn new(config: HealthConfig) -> Self {
        Self {
            config,
            servers: Mutex::new(HashMap::new()),
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
        let window = self.config.suspect_window();
        let mut out = Vec::new();
        for (id, h) in self.lock().iter_mut() {
            if !matches!(h.state, Health::Up | Health::Unknown) {
                continue;
            }
            let since = h.last_seen.unwrap_or(h.watched_since);
            if now.saturating_duration_since(since) > window {
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

/// One monitor tick: watch joined servers, expire silent ones, probe suspects.
pub async fn tick(state: &HealthDeps) {
    let servers = match state.store.all::<Server>().await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "health monitor cannot read servers");
            return;
        }
    };
    let existing: Vec<Id> = servers.iter().map(|s| s.meta.id).collect();
    let joined: Vec<Id> = servers
        .iter()
        .filter(|s| s.data.agent.is_some())
        .map(|s| s.meta.id)
        .collect();
    state.health.sync(&existing, &joined);
    let mut transitions = state.health.expire(Instant::now());
    let by_id: HashMap<Id, &Stored<Server>> = servers.iter().map(|s| (s.meta.id, s)).collect();
    let timeout = state.config.probe_timeout();
    let mut probes = tokio::task::JoinSet::new();
    for (id, port) in state.health.suspects() {
        let Some(s) = by_id.get(&id) else { continue };
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
}

/// The monitor task: a tick every half heartbeat interval until the controller stops.
pub async fn run(state: HealthDeps) {
    let every = (state.config.interval() / 2).max(Duration::from_millis(5));
    let mut stopping = state.stopping.clone();
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => tick(&state).await,
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
