//! The agents' web engines in the benchmark: a recording engine (serves nothing,
//! notes each apply) for most agents, and the real `role_web` engine wrapped so
//! that it notes when each apply finished and how long the engine took.

use proto::agent_v1::{EngineHealth, EngineState, RoleConfig};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// What one agent's engine has applied.
#[derive(Debug, Default, Clone)]
pub struct AgentStats {
    /// Whether the agent runs the real web engine.
    pub real: bool,
    /// Number of `apply` calls.
    pub applies: u64,
    /// Failed `apply` calls (real engine only).
    pub failures: u64,
    /// Sites in the last applied config.
    pub sites: usize,
    /// Active sites in the last applied config.
    pub active: usize,
    /// The write whose effect it applied last, and when.
    pub reached: Option<(u64, Instant)>,
    /// How long the engine's `apply` of that write took (real engine only).
    pub engine_took: Option<Duration>,
    /// The engine's health detail after its last apply.
    pub detail: String,
}

/// Which field of a site each write toggles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Toggle {
    /// `https_redirect`: every engine applies it without side effects.
    HttpsRedirect,
    /// `php`: a real web engine would start php-fpm pools (and, as root, create a
    /// system user per site), so only allowed with recording engines.
    Php,
}

/// The effect the current write must have: site `domain` with the toggled field
/// set to `value`.
#[derive(Debug, Clone)]
pub struct Target {
    /// The write's number (from 1).
    pub write: u64,
    /// The site written.
    pub domain: String,
    /// The field toggled.
    pub toggle: Toggle,
    /// Its new value.
    pub value: bool,
}

/// Shared between the engines of all agents and the measuring loop.
pub struct Shared {
    /// Per agent (server name).
    pub agents: Mutex<HashMap<String, AgentStats>>,
    /// The write being measured.
    pub target: Mutex<Option<Target>>,
    /// Bumped after every apply, so waiters wake without missing one.
    pub applied: watch::Sender<u64>,
}

/// Lock, ignoring poisoning (a panicked engine task must not stop the report).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    /// A copy of every agent's stats.
    pub fn snapshot(&self) -> HashMap<String, AgentStats> {
        lock(&self.agents).clone()
    }

    /// Note an apply of `cfg` by `server`, finished at `now` after `took` (real
    /// engines), successful or not.
    fn record(
        &self,
        server: &str,
        cfg: &RoleConfig,
        now: Instant,
        real: Option<(Duration, bool, String)>,
    ) {
        let RoleConfig::Web(web) = cfg else { return };
        let hit = lock(&self.target).as_ref().and_then(|t| {
            web.sites
                .iter()
                .any(|s| {
                    s.domain == t.domain
                        && match t.toggle {
                            Toggle::HttpsRedirect => s.https_redirect == t.value,
                            Toggle::Php => s.php == t.value,
                        }
                })
                .then_some(t.write)
        });
        {
            let mut agents = lock(&self.agents);
            let e = agents.entry(server.to_owned()).or_default();
            e.applies += 1;
            e.sites = web.sites.len();
            e.active = web.sites.iter().filter(|s| s.active).count();
            let mut took = None;
            if let Some((d, ok, detail)) = real {
                e.real = true;
                e.detail = detail;
                if !ok {
                    e.failures += 1;
                }
                took = Some(d);
            }
            if let Some(w) = hit {
                if e.reached.map(|(rw, _)| rw) != Some(w) {
                    e.reached = Some((w, now));
                    e.engine_took = took;
                }
            }
        }
        self.applied.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// A web engine that serves nothing and records each apply in [`Shared`].
pub struct RecordingEngine {
    /// The agent's server name.
    pub server: String,
    /// Where applies are noted.
    pub shared: Arc<Shared>,
}

impl agent::RoleEngine for RecordingEngine {
    fn name(&self) -> &str {
        "web"
    }

    fn apply<'a>(
        &'a mut self,
        cfg: &'a RoleConfig,
    ) -> agent::BoxFuture<'a, Result<(), agent::EngineError>> {
        Box::pin(async move {
            let now = Instant::now();
            if !matches!(cfg, RoleConfig::Web(_)) {
                return Err(agent::EngineError::Invalid(format!(
                    "a {} config for the web engine",
                    cfg.role()
                )));
            }
            self.shared.record(&self.server, cfg, now, None);
            Ok(())
        })
    }

    fn health(&self) -> EngineHealth {
        EngineHealth {
            name: "web".into(),
            state: EngineState::Ok,
            detail: "propagation benchmark engine (records applies)".into(),
        }
    }
}

/// The real web engine (`role_web`: binds HTTP and HTTPS on the agent's
/// address, renders the plan, loads every site's certificate), noting in
/// [`Shared`] when each of its applies finished and how long it took.
pub struct RealWebEngine {
    server: String,
    shared: Arc<Shared>,
    inner: Box<dyn agent::RoleEngine>,
}

impl RealWebEngine {
    /// Start `role_web`'s engine for `ctx`.
    pub fn start(
        ctx: &agent::supervisor::EngineContext,
        shared: Arc<Shared>,
    ) -> Result<Self, agent::EngineError> {
        Ok(Self {
            server: ctx.server.clone(),
            shared,
            inner: role_web::start_engine(ctx)?,
        })
    }
}

impl agent::RoleEngine for RealWebEngine {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn apply<'a>(
        &'a mut self,
        cfg: &'a RoleConfig,
    ) -> agent::BoxFuture<'a, Result<(), agent::EngineError>> {
        Box::pin(async move {
            let t0 = Instant::now();
            let r = self.inner.apply(cfg).await;
            let now = Instant::now();
            let detail = self.inner.health().detail;
            self.shared
                .record(&self.server, cfg, now, Some((now - t0, r.is_ok(), detail)));
            r
        })
    }

    fn health(&self) -> EngineHealth {
        self.inner.health()
    }

    fn rejected(&self) -> Vec<proto::agent_v1::RejectedObject> {
        self.inner.rejected()
    }

    fn service_port(&self) -> Option<u16> {
        self.inner.service_port()
    }

    fn shutdown(&mut self) -> agent::BoxFuture<'_, ()> {
        self.inner.shutdown()
    }
}
