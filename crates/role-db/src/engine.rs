//! The running engine: the reconcile loop (apply, periodic resync, size measurement and quota
//! enforcement), health, and the agent adapter.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent::supervisor::{BoxFuture, EngineContext, EngineError, RoleEngine};
use model::DbEngine;
use proto::agent_v1::{
    DbReport, DbRoleConfig, DbTrashEntry, EngineHealth, EngineState, RejectedObject, RoleConfig,
    RoleReport,
};
use serde::Serialize;
use tokio::sync::watch;

use crate::conn::Admin;
use crate::ident::Name;
use crate::managed::Managed;
pub use crate::options::Options;
use crate::plan::{self, Action, QuotaLevel, QuotaStatus};
use crate::slot::{phase, run_action, serial_key, Conn, Slot, PARALLEL};
use crate::tools::INSTALL_HINT;
use crate::trash::{Trash, TrashEntry};

/// One database as reported to the controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DbStatus {
    /// Database name.
    pub name: String,
    /// Its engine.
    pub engine: DbEngine,
    /// Size in bytes at the last measurement (`None`: not measured yet or the
    /// server is unavailable).
    pub size_bytes: Option<u64>,
    /// Owning customer.
    pub owner: String,
}

#[derive(Debug, Clone, Default, Serialize)]
struct EngineView {
    available: bool,
    detail: String,
    listen: Option<(IpAddr, u16)>,
}

#[derive(Debug, Clone, Default, Serialize)]
struct Status {
    engines: BTreeMap<DbEngine, EngineView>,
    /// Conflicts of the last reconcile.
    problems: Vec<String>,
    /// Invalid entries of the last reconcile (not applied).
    rejected: Vec<RejectedObject>,
    /// Failed actions of the last reconcile.
    failures: Vec<String>,
    dbs: Vec<DbStatus>,
    quotas: Vec<QuotaStatus>,
    frozen: BTreeSet<String>,
    reconciles: u64,
    /// Actions the last reconcile ran (0 when everything was converged).
    last_actions: usize,
    /// The trash as of the last reconcile or measurement.
    trash: Vec<TrashEntry>,
}

struct Shared {
    opts: Options,
    bind: IpAddr,
    managed_dir: PathBuf,
    state_dir: PathBuf,
    trash: Trash,
    desired: Mutex<Option<DbRoleConfig>>,
    work: tokio::sync::Mutex<Vec<Slot>>,
    measuring: tokio::sync::Mutex<()>,
    status: Mutex<Status>,
}

impl Shared {
    fn desired(&self) -> Option<DbRoleConfig> {
        self.desired.lock().ok().and_then(|d| d.clone())
    }

    fn with_status<T>(&self, f: impl FnOnce(&mut Status) -> T) -> Option<T> {
        self.status.lock().ok().map(|mut s| f(&mut s))
    }

    fn view(&self, slot: &Slot, down: Option<String>) -> EngineView {
        let listen = slot.managed.as_ref().map(|m| m.listen);
        let managed = match (&slot.managed, listen) {
            (Some(m), Some((ip, port))) => {
                let i = m.info();
                let mut s = format!(
                    ", managed on {ip}:{port} (data in {}, starts {})",
                    self.managed_dir.display(),
                    i.starts
                );
                if let (None, Some(e)) = (i.pid, i.last_error) {
                    s.push_str(&format!(", last exit: {e}"));
                }
                s
            }
            _ => String::new(),
        };
        match down {
            None => EngineView {
                available: true,
                detail: format!("{} {} ok{managed}", slot.engine, slot.version),
                listen,
            },
            Some(why) => EngineView {
                available: false,
                detail: format!(
                    "{} unavailable: {why}{}{managed}",
                    slot.engine,
                    if why.contains(INSTALL_HINT) {
                        ""
                    } else {
                        slot.hint()
                    }
                ),
                listen,
            },
        }
    }

    /// Start the managed instances not running yet (first run of the background
    /// task, then retried while one could not be started).
    async fn start_managed(&self) {
        if !self.opts.managed {
            return;
        }
        let mut slots = self.work.lock().await;
        for slot in slots.iter_mut().filter(|s| s.managed.is_none()) {
            match Managed::start(slot.engine, &self.managed_dir, self.bind).await {
                Ok(m) => {
                    slot.admin = Ok(m.admin.clone());
                    slot.managed = Some(m);
                }
                Err(e) => {
                    tracing::warn!(engine = %slot.engine, "managed instance not started: {e}");
                    slot.admin = Err(format!("managed instance not started: {e}"));
                }
            }
        }
    }

    /// Converge every reachable server on the desired config. Unreachable servers
    /// are reported in health, not as an error; failed actions are the error.
    async fn reconcile(&self) -> Result<(), String> {
        // Inputs are read under the lock, so a reconcile that waited for another
        // one never applies an older config or quota state after a newer one.
        let mut slots = self.work.lock().await;
        let cfg = self.desired();
        let frozen = self.with_status(|s| s.frozen.clone()).unwrap_or_default();
        let mut problems = Vec::new();
        let mut rejected = Vec::new();
        let mut failures = Vec::new();
        let mut views = BTreeMap::new();
        let mut ran = 0;
        for slot in slots.iter_mut() {
            let down = self
                .reconcile_slot(
                    slot,
                    cfg.as_ref(),
                    &frozen,
                    (&mut problems, &mut rejected),
                    &mut failures,
                )
                .await
                .map(|n| ran += n)
                .err();
            if down.is_some() {
                slot.disconnect().await;
            }
            views.insert(slot.engine, self.view(slot, down));
        }
        drop(slots);
        if let Some(cfg) = &cfg {
            self.trash.expire(if cfg.trash_days == 0 {
                7
            } else {
                cfg.trash_days
            });
        }
        let result = if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("; "))
        };
        self.with_status(|s| {
            s.engines = views;
            s.problems = problems;
            s.rejected = rejected;
            s.failures = failures;
            s.reconciles += 1;
            s.last_actions = ran;
            s.trash = self.trash.list();
        });
        self.write_status();
        result
    }

    /// Reconcile one server; returns how many actions ran; `Err` means the server
    /// is unreachable.
    async fn reconcile_slot(
        &self,
        slot: &mut Slot,
        cfg: Option<&DbRoleConfig>,
        frozen: &BTreeSet<String>,
        (problems, rejected): (&mut Vec<String>, &mut Vec<RejectedObject>),
        failures: &mut Vec<String>,
    ) -> Result<usize, String> {
        slot.ensure_connected(&self.opts.scope).await?;
        let Some(cfg) = cfg else { return Ok(0) };
        let (want, r) = plan::render(cfg, slot.engine, frozen);
        rejected.extend(r);
        let have = slot.existing().await?;
        let (actions, p) = plan::diff(&want, &have);
        problems.extend(p);
        let owners: Arc<BTreeMap<Name, String>> = Arc::new(
            want.dbs
                .iter()
                .map(|(n, s)| (n.clone(), s.owner.clone()))
                .collect(),
        );
        let conn = slot.conn.clone().ok_or("not connected")?;
        for phase in actions.chunk_by(|a, b| phase(a) == phase(b)) {
            for e in self.run_phase(&conn, phase, &owners).await {
                tracing::warn!(engine = %slot.engine, "{e}");
                failures.push(e);
            }
        }
        if !actions.is_empty() {
            tracing::info!(engine = %slot.engine, actions = actions.len(), "reconciled");
        }
        Ok(actions.len())
    }

    /// Run the actions of one phase: actions on the same object (see
    /// [`serial_key`]) one after the other, different objects up to [`PARALLEL`]
    /// at a time; returns the failures.
    async fn run_phase(
        &self,
        conn: &Conn,
        actions: &[Action],
        owners: &Arc<BTreeMap<Name, String>>,
    ) -> Vec<String> {
        let mut groups: BTreeMap<String, Vec<Action>> = BTreeMap::new();
        for a in actions {
            groups.entry(serial_key(a)).or_default().push(a.clone());
        }
        let mut failures = Vec::new();
        let mut set = tokio::task::JoinSet::new();
        let mut collect = |r: Result<Vec<String>, tokio::task::JoinError>| match r {
            Ok(errors) => failures.extend(errors),
            Err(e) => failures.push(format!("action task failed: {e}")),
        };
        for group in groups.into_values() {
            if set.len() >= PARALLEL {
                if let Some(r) = set.join_next().await {
                    collect(r);
                }
            }
            let (conn, owners, trash) = (conn.clone(), owners.clone(), self.trash.clone());
            set.spawn(async move {
                let mut errors = Vec::new();
                for a in &group {
                    if let Err(e) = run_action(&conn, a, &owners, &trash).await {
                        errors.push(e);
                    }
                }
                errors
            });
        }
        while let Some(r) = set.join_next().await {
            collect(r);
        }
        failures
    }

    /// Measure database sizes, update quota states and, when the set of customers
    /// over quota changed, reconcile (which switches their writes off or on).
    async fn refresh_sizes(&self) -> Result<(), String> {
        // One measurement at a time, each with the config current when it starts.
        let _one = self.measuring.lock().await;
        let cfg = self.desired().unwrap_or_default();
        let mut measured: BTreeMap<DbEngine, BTreeMap<String, u64>> = BTreeMap::new();
        let mut errors = Vec::new();
        {
            let mut slots = self.work.lock().await;
            for slot in slots.iter_mut() {
                if slot.ensure_connected(&self.opts.scope).await.is_err() {
                    continue;
                }
                let names: Vec<String> = cfg
                    .databases
                    .iter()
                    .filter(|d| d.engine == slot.engine)
                    .map(|d| d.name.clone())
                    .collect();
                match slot.sizes(&names).await {
                    Ok(s) => {
                        measured.insert(slot.engine, s);
                    }
                    Err(e) => {
                        tracing::warn!(engine = %slot.engine, "size measurement failed: {e}");
                        errors.push(e);
                    }
                }
            }
        }
        // A database not measured now keeps its last known size, so a failed
        // measurement never lifts (or imposes) a write stop by itself.
        let previous: BTreeMap<(DbEngine, String), Option<u64>> = self
            .with_status(|s| {
                s.dbs
                    .iter()
                    .map(|d| ((d.engine, d.name.clone()), d.size_bytes))
                    .collect()
            })
            .unwrap_or_default();
        let dbs: Vec<DbStatus> = cfg
            .databases
            .iter()
            .map(|d| DbStatus {
                name: d.name.clone(),
                engine: d.engine,
                size_bytes: match measured.get(&d.engine) {
                    Some(m) => Some(m.get(&d.name).copied().unwrap_or(0)),
                    None => previous.get(&(d.engine, d.name.clone())).copied().flatten(),
                },
                owner: d.owner.clone(),
            })
            .collect();
        let sizes: Vec<(String, u64)> = dbs
            .iter()
            .map(|d| (d.owner.clone(), d.size_bytes.unwrap_or(0)))
            .collect();
        let quotas = plan::quota_states(&sizes, &cfg.quotas);
        let frozen: BTreeSet<String> = quotas
            .iter()
            .filter(|q| q.level == QuotaLevel::Exceeded)
            .map(|q| q.customer.clone())
            .collect();
        let changed = self
            .with_status(|s| {
                let changed = s.frozen != frozen;
                s.dbs = dbs;
                s.quotas = quotas;
                s.frozen = frozen.clone();
                s.trash = self.trash.list();
                changed
            })
            .unwrap_or(false);
        let result = if changed {
            tracing::info!(over_quota = ?frozen, "quota state changed; reconciling");
            self.reconcile().await
        } else {
            self.write_status();
            Ok(())
        };
        match (result, errors.is_empty()) {
            (Err(e), _) => Err(e),
            (Ok(()), true) => Ok(()),
            (Ok(()), false) => Err(format!("size measurement failed: {}", errors.join("; "))),
        }
    }

    fn write_status(&self) {
        let Some(status) = self.with_status(|s| s.clone()) else {
            return;
        };
        if let Ok(json) = serde_json::to_vec_pretty(&status) {
            if let Err(e) = durable::write_atomic(&self.state_dir.join("status.json"), &json, 0o600)
            {
                tracing::warn!("writing status.json: {e}");
            }
        }
    }

    fn health(&self) -> EngineHealth {
        let status = self.with_status(|s| s.clone()).unwrap_or_default();
        let wanted = self.opts.engines.len();
        let up = status.engines.values().filter(|v| v.available).count();
        let mut parts: Vec<String> = Vec::new();
        if status.reconciles == 0 {
            parts.push("starting".into());
        }
        for (engine, v) in &status.engines {
            let (n, bytes) = status
                .dbs
                .iter()
                .filter(|d| d.engine == *engine)
                .fold((0usize, 0u64), |(n, b), d| {
                    (n + 1, b + d.size_bytes.unwrap_or(0))
                });
            let size = if v.available {
                format!(" [{n} dbs, {:.1} MiB]", bytes as f64 / 1_048_576.0)
            } else {
                String::new()
            };
            parts.push(format!("{}{size}", v.detail));
        }
        for q in status.quotas.iter().filter(|q| q.level != QuotaLevel::Ok) {
            parts.push(format!("quota {}: {}", q.customer, quota_note(q)));
        }
        let issues: Vec<&String> = status.problems.iter().chain(&status.failures).collect();
        if !issues.is_empty() {
            let shown: Vec<&str> = issues.iter().take(3).map(|s| s.as_str()).collect();
            parts.push(format!("{} problem(s): {}", issues.len(), shown.join("; ")));
        }
        let state = if status.reconciles == 0 {
            EngineState::Degraded
        } else if up == 0 {
            EngineState::Failed
        } else if up < wanted || !issues.is_empty() {
            EngineState::Degraded
        } else {
            EngineState::Ok
        };
        EngineHealth {
            name: "db".into(),
            state,
            detail: parts.join("; "),
        }
    }
}

fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// `EXCEEDED: 3.4 of 2 MiB, writes stopped` / `warning: 1.9 of 2 MiB`.
fn quota_note(q: &QuotaStatus) -> String {
    let used = q.used_bytes as f64 / 1_048_576.0;
    let limit = q.limit_bytes / 1_048_576;
    match q.level {
        QuotaLevel::Exceeded => format!("EXCEEDED: {used:.1} of {limit} MiB, writes stopped"),
        QuotaLevel::Warning => format!("warning: {used:.1} of {limit} MiB (90 % or more)"),
        QuotaLevel::Ok => format!("{used:.1} of {limit} MiB"),
    }
}

async fn background(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    shared.start_managed().await;
    let _ = shared.reconcile().await;
    let mut next_sizes = Instant::now();
    let mut next_resync = Instant::now() + shared.opts.resync_interval;
    let mut next_retry = Instant::now() + Duration::from_secs(2);
    let mut next_managed = Instant::now() + Duration::from_secs(10);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stop.changed() => return,
        }
        let now = Instant::now();
        let retry = shared
            .with_status(|s| !s.failures.is_empty() || s.engines.values().any(|v| !v.available))
            .unwrap_or(false);
        if now >= next_resync || (retry && now >= next_retry) {
            if now >= next_managed {
                // A managed server that could not be set up is tried again, slowly.
                shared.start_managed().await;
                next_managed = now + Duration::from_secs(10);
            }
            let _ = shared.reconcile().await;
            next_resync = now + shared.opts.resync_interval;
            next_retry = now + Duration::from_secs(2);
        }
        if now >= next_sizes {
            if let Err(e) = shared.refresh_sizes().await {
                tracing::warn!("quota reconcile: {e}");
            }
            next_sizes = now + shared.opts.size_interval;
        }
    }
}

/// The database role engine. Build it with [`start`] (or [`start_engine`] for the
/// agent); [`DbRole::handle`] gives the status calls.
pub struct DbRole {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// A cheap, cloneable view of a running [`DbRole`]: reports and on-demand work.
#[derive(Clone)]
pub struct DbHandle {
    shared: Arc<Shared>,
}

impl DbHandle {
    /// Every desired database with its last measured size and owner.
    pub fn report(&self) -> Vec<DbStatus> {
        self.shared
            .with_status(|s| s.dbs.clone())
            .unwrap_or_default()
    }

    /// Quota state of every customer with a quota.
    pub fn quotas(&self) -> Vec<QuotaStatus> {
        self.shared
            .with_status(|s| s.quotas.clone())
            .unwrap_or_default()
    }

    /// Dumps in the trash (what `restore_from` accepts), oldest first.
    pub fn trash_list(&self) -> Vec<TrashEntry> {
        self.shared.trash.list()
    }

    /// Invalid entries, conflicts and failed actions of the last reconcile.
    pub fn problems(&self) -> Vec<String> {
        self.shared
            .with_status(|s| {
                s.rejected
                    .iter()
                    .map(|r| format!("{}: {}", r.object, r.reason))
                    .chain(s.problems.iter().chain(&s.failures).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Entries of the last reconcile that were not applied.
    pub fn rejected(&self) -> Vec<RejectedObject> {
        self.shared
            .with_status(|s| s.rejected.clone())
            .unwrap_or_default()
    }

    /// The report the agent sends the controller: databases with sizes and
    /// read-only state, the trash, and quota notes.
    pub fn wire_report(&self) -> DbReport {
        let s = self.shared.with_status(|s| s.clone()).unwrap_or_default();
        DbReport {
            databases: s
                .dbs
                .iter()
                .map(|d| proto::agent_v1::DbStatus {
                    name: d.name.clone(),
                    engine: d.engine,
                    size_bytes: d.size_bytes.unwrap_or(0),
                    owner: d.owner.clone(),
                    read_only: s.frozen.contains(&d.owner),
                })
                .collect(),
            trash: s
                .trash
                .iter()
                .map(|t| DbTrashEntry {
                    name: t.name.clone(),
                    database: t.db.clone(),
                    engine: t.engine,
                    owner: t.owner.clone(),
                    dropped_at: rfc3339(t.created_unix),
                    size_bytes: t.size_bytes,
                })
                .collect(),
            quota_notes: s
                .quotas
                .iter()
                .filter(|q| q.level != QuotaLevel::Ok)
                .map(|q| (q.customer.clone(), quota_note(q)))
                .collect(),
        }
    }

    /// How many actions the last reconcile ran (0: it found everything converged).
    pub fn last_actions(&self) -> usize {
        self.shared.with_status(|s| s.last_actions).unwrap_or(0)
    }

    /// Where each managed instance listens.
    pub fn listen(&self) -> BTreeMap<DbEngine, (IpAddr, u16)> {
        self.shared
            .with_status(|s| {
                s.engines
                    .iter()
                    .filter_map(|(e, v)| v.listen.map(|l| (*e, l)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether the server of `engine` was reachable at the last reconcile.
    pub fn available(&self, engine: DbEngine) -> bool {
        self.shared
            .with_status(|s| s.engines.get(&engine).map(|v| v.available))
            .flatten()
            .unwrap_or(false)
    }

    /// Measure sizes and enforce quotas now (normally every `size_interval_secs`).
    pub async fn refresh(&self) -> Result<(), String> {
        self.shared.refresh_sizes().await
    }

    /// Reconcile now with the last applied config.
    pub async fn reconcile(&self) -> Result<(), String> {
        self.shared.reconcile().await
    }

    /// The engine's health.
    pub fn health(&self) -> EngineHealth {
        self.shared.health()
    }
}

/// Start the engine: read the options, start managed instances (in the
/// background) and the measurement loop. Needs a Tokio runtime.
pub fn start(ctx: &EngineContext) -> Result<DbRole, EngineError> {
    let opts = Options::from_context(ctx)?;
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|e| EngineError::Apply(format!("the db engine needs a Tokio runtime: {e}")))?;
    durable::create_private_dir(&ctx.state_dir)?;
    let managed_dir = managed_dir(&opts, ctx)?;
    let slots = opts
        .engines
        .iter()
        .map(|&engine| Slot {
            engine,
            admin: if opts.managed {
                Err("managed instance starting".into())
            } else {
                match engine {
                    DbEngine::Mariadb => Admin::mariadb_url(&opts.mariadb_url),
                    DbEngine::Postgres => Admin::postgres_url(&opts.postgres_url),
                }
            },
            managed: None,
            conn: None,
            version: String::new(),
        })
        .collect();
    let shared = Arc::new(Shared {
        managed_dir,
        opts,
        bind: ctx.bind,
        state_dir: ctx.state_dir.clone(),
        trash: Trash::new(&ctx.state_dir),
        desired: Mutex::new(None),
        work: tokio::sync::Mutex::new(slots),
        measuring: tokio::sync::Mutex::new(()),
        status: Mutex::new(Status::default()),
    });
    let (stop, rx) = watch::channel(false);
    let task = runtime.spawn(background(shared.clone(), rx));
    Ok(DbRole {
        shared,
        stop,
        task: Some(task),
    })
}

/// Where managed instances keep their data: `managed_dir`, else the state dir.
/// As root the servers run as `mysql`/`postgres`, which must traverse every parent:
/// when a parent of the state dir is private (the agent's state dir is 0700), the
/// data goes to [`crate::managed::fallback_dir`] instead.
fn managed_dir(opts: &Options, ctx: &EngineContext) -> Result<PathBuf, EngineError> {
    use std::os::unix::fs::PermissionsExt;
    let root = rustix::process::geteuid().is_root();
    let dir = match &opts.managed_dir {
        Some(d) => d.clone(),
        None if !opts.managed || !root => ctx.state_dir.clone(),
        None => {
            let reachable = ctx.state_dir.ancestors().skip(1).all(|p| {
                std::fs::metadata(p)
                    .map(|m| m.permissions().mode() & 0o001 != 0)
                    .unwrap_or(false)
            });
            if reachable {
                ctx.state_dir.clone()
            } else {
                crate::managed::collect_stale_fallbacks();
                let dir = crate::managed::fallback_dir(&ctx.server, &ctx.state_dir);
                crate::managed::claim_fallback(&dir, &ctx.state_dir)?;
                dir
            }
        }
    };
    if opts.managed && root {
        std::fs::create_dir_all(&dir)?;
        // Traverse-only for the service users; the data dirs below are theirs, 0700.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711))?;
    }
    Ok(dir)
}

/// The agent adapter: the db engine as a [`RoleEngine`].
pub fn start_engine(ctx: &EngineContext) -> Result<Box<dyn RoleEngine>, EngineError> {
    Ok(Box::new(start(ctx)?))
}

impl DbRole {
    /// The status view.
    pub fn handle(&self) -> DbHandle {
        DbHandle {
            shared: self.shared.clone(),
        }
    }

    /// Converge on `cfg` (what [`RoleEngine::apply`] does for a `db` config).
    pub async fn apply_db(&self, cfg: &DbRoleConfig) -> Result<(), EngineError> {
        if let Ok(mut d) = self.shared.desired.lock() {
            *d = Some(cfg.clone());
        }
        self.shared.reconcile().await.map_err(EngineError::Apply)
    }

    /// Stop the background loop, close connections and stop managed servers.
    pub async fn stop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        let mut slots = self.shared.work.lock().await;
        for slot in slots.iter_mut() {
            slot.disconnect().await;
            if let Some(m) = slot.managed.as_mut() {
                m.stop().await;
            }
        }
    }
}

impl Drop for DbRole {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl RoleEngine for DbRole {
    fn name(&self) -> &str {
        "db"
    }

    fn apply<'a>(&'a mut self, cfg: &'a RoleConfig) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(async move {
            match cfg {
                RoleConfig::Db(db) => self.apply_db(db).await,
                other => Err(EngineError::Invalid(format!(
                    "a {} config for the db engine",
                    other.role()
                ))),
            }
        })
    }

    fn health(&self) -> EngineHealth {
        self.shared.health()
    }

    fn rejected(&self) -> Vec<RejectedObject> {
        self.handle().rejected()
    }

    fn report(&self) -> Option<RoleReport> {
        Some(RoleReport::Db(self.handle().wire_report()))
    }

    fn service_port(&self) -> Option<u16> {
        let listen = self.handle().listen();
        listen
            .get(&DbEngine::Mariadb)
            .or_else(|| listen.get(&DbEngine::Postgres))
            .map(|(_, port)| *port)
    }

    fn shutdown(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(self.stop())
    }
}
