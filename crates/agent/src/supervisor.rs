//! The role supervisor: runs the one role engine of this server and hands it each
//! new desired config.
//!
//! Role crates plug their engine in through an [`EngineRegistry`]; a role without a
//! registered engine gets [`NotBuilt`], which accepts every config and reports the
//! state `not_built`.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use proto::agent_v1::{
    DesiredConfig, EngineHealth, EngineState, RejectedObject, RoleConfig, RoleReport,
};

/// Most rejected objects a supervisor passes on (the heartbeat stays small; the
/// count in the health detail is the whole number).
pub const MAX_REJECTED: usize = 64;
/// Rejected objects named in the health detail.
const DETAIL_REJECTED: usize = 5;
/// Longest health detail (the controller refuses longer ones).
const MAX_DETAIL: usize = 4000;

/// A boxed, sendable future (what [`RoleEngine`] methods return).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A role engine could not start or apply a config.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The config is not valid for this engine (e.g. the wrong role).
    #[error("invalid config: {0}")]
    Invalid(String),
    /// Applying failed; the engine keeps serving its previous config.
    #[error("apply failed: {0}")]
    Apply(String),
    /// A file or socket operation failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// One role's data-plane engine (web server, DNS server, …).
///
/// `apply` is level-triggered and idempotent: it converges the engine on the whole
/// config it is given, object by object. An object it cannot apply keeps its last
/// applied version (or stays absent when it is new) and is listed by
/// [`RoleEngine::rejected`], while every other object converges; `apply` returns an
/// error only for a config that is unusable as a whole (wrong role, a port that
/// cannot be bound …), and then the engine keeps serving its previous config.
pub trait RoleEngine: Send {
    /// Engine name, reported in heartbeats (usually the role).
    fn name(&self) -> &str;

    /// Converge on `cfg`.
    fn apply<'a>(&'a mut self, cfg: &'a RoleConfig) -> BoxFuture<'a, Result<(), EngineError>>;

    /// The objects of the last config applied that the engine could not apply,
    /// with the reason. Cheap; called after every apply. Default: none.
    fn rejected(&self) -> Vec<RejectedObject> {
        Vec::new()
    }

    /// Take the cron lease the heartbeat loop extends ([`crate::lease`]); the
    /// supervisor hands it to every engine it builds. Only engines that run cron
    /// jobs (web) keep it.
    fn set_cron_lease(&mut self, _lease: crate::lease::CronLease) {}

    /// Take the mail writer lease the heartbeat loop extends ([`crate::lease`]).
    /// Only the mail engine keeps it: it accepts writes to its cluster's mailboxes
    /// only while its desired config names it the writer and this lease is valid.
    fn set_mail_lease(&mut self, _lease: crate::lease::MailLease) {}

    /// Current health (cheap; called every heartbeat interval).
    fn health(&self) -> EngineHealth;

    /// What the engine reports beyond health (database sizes, mail queue); cheap,
    /// called every heartbeat interval. Default: nothing.
    fn report(&self) -> Option<RoleReport> {
        None
    }

    /// The TCP port of the role's service as bound (e.g. 10025 when 25 was not
    /// permitted), which the controller probes and tells peers. Default: unknown
    /// (the controller assumes its configured port).
    fn service_port(&self) -> Option<u16> {
        None
    }

    /// Stop serving (the agent is shutting down or the role changed). Default: nothing.
    fn shutdown(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// What an engine factory gets to build its engine.
#[derive(Debug, Clone)]
pub struct EngineContext {
    /// This server's name.
    pub server: String,
    /// The role to serve.
    pub role: String,
    /// The address engines listen on (and bind outgoing connections to).
    pub bind: IpAddr,
    /// A private directory for the engine's own state (`state_dir/engines/<role>`);
    /// the engine creates it when it needs it.
    pub state_dir: PathBuf,
    /// The agent's own mTLS identity (PEM files), for engines that talk to other
    /// agents (site-file replication): the client certificate and key the controller CA
    /// signed at join, and that CA. `None` in tests that run without a controller.
    pub identity: Option<AgentTlsPaths>,
    /// Engine options from the agent config's `[engine]` table (e.g.
    /// `resolver = "127.0.0.21:53"` for mail, `passive_ports = "30000-30100"` for FTP).
    /// Each engine documents the keys it reads and rejects values it cannot parse.
    pub options: BTreeMap<String, String>,
    /// The controllers' base URLs (for engines that fetch from them, e.g. site
    /// deployments on files servers).
    pub controllers: Vec<String>,
}

/// Paths of the agent's mTLS identity files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentTlsPaths {
    /// The agent's client certificate (PEM), common name = server name.
    pub cert: PathBuf,
    /// Its private key (PEM, 0600).
    pub key: PathBuf,
    /// The controller CA certificate (PEM): the root every agent certificate chains to.
    pub ca: PathBuf,
}

/// The engine of a role that has no engine in this build: accepts every config
/// of its role and reports `not_built`.
#[derive(Debug, Clone)]
pub struct NotBuilt {
    role: String,
}

impl NotBuilt {
    /// A placeholder engine for `role`.
    pub fn new(role: impl Into<String>) -> Self {
        Self { role: role.into() }
    }
}

impl RoleEngine for NotBuilt {
    fn name(&self) -> &str {
        &self.role
    }

    fn apply<'a>(&'a mut self, cfg: &'a RoleConfig) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(async move {
            if cfg.role() == self.role {
                Ok(())
            } else {
                Err(EngineError::Invalid(format!(
                    "a {} config for the {} engine",
                    cfg.role(),
                    self.role
                )))
            }
        })
    }

    fn health(&self) -> EngineHealth {
        EngineHealth {
            name: self.role.clone(),
            state: EngineState::NotBuilt,
            detail: format!("engine for role {} is not built yet", self.role),
        }
    }
}

/// Builds the engine of one role.
pub type EngineFactory =
    Arc<dyn Fn(&EngineContext) -> Result<Box<dyn RoleEngine>, EngineError> + Send + Sync>;

/// Which engine serves which role. Roles not registered get [`NotBuilt`].
#[derive(Clone, Default)]
pub struct EngineRegistry {
    factories: BTreeMap<String, EngineFactory>,
}

impl std::fmt::Debug for EngineRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineRegistry")
            .field("roles", &self.factories.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl EngineRegistry {
    /// A registry with no engines: every role is [`NotBuilt`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Serve `role` (`web`, `dns`, `mail`, `files`, `db`) with engines `factory`
    /// builds. Replaces an earlier registration.
    pub fn register<F>(&mut self, role: &str, factory: F) -> &mut Self
    where
        F: Fn(&EngineContext) -> Result<Box<dyn RoleEngine>, EngineError> + Send + Sync + 'static,
    {
        self.factories.insert(role.to_string(), Arc::new(factory));
        self
    }

    /// Whether `role` has a real engine.
    pub fn is_built(&self, role: &str) -> bool {
        self.factories.contains_key(role)
    }

    /// Build the engine for `ctx.role`.
    pub fn create(&self, ctx: &EngineContext) -> Result<Box<dyn RoleEngine>, EngineError> {
        match self.factories.get(&ctx.role) {
            Some(f) => f(ctx),
            None => Ok(Box::new(NotBuilt::new(ctx.role.clone()))),
        }
    }
}

/// What the supervisor remembers of the config last applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Applied {
    revision: i64,
    /// `None` when the config could not be serialised: equal to nothing.
    digest: Option<[u8; 32]>,
}

/// The BLAKE3 digest of a config (what [`Supervisor::apply`] compares), fed
/// field by field through `Hash`: no JSON text, whose escaping of every PEM of
/// every site was a whole-document cost on every change. Stable within the
/// process, which is all the comparison needs. Always `Some`.
fn config_digest(cfg: &DesiredConfig) -> Option<[u8; 32]> {
    use std::hash::Hash as _;
    let mut h = DigestHasher::default();
    cfg.format.hash(&mut h);
    cfg.revision.hash(&mut h);
    cfg.server.hash(&mut h);
    cfg.role.hash(&mut h);
    h.flush();
    Some(*h.hasher.finalize().as_bytes())
}

/// `std::hash::Hasher` over BLAKE3 that feeds it in chunks (a `Hash` walk makes
/// many tiny writes, each a costly BLAKE3 update on its own).
#[derive(Default)]
struct DigestHasher {
    hasher: blake3::Hasher,
    buf: Vec<u8>,
}

impl DigestHasher {
    const CHUNK: usize = 64 * 1024;

    fn flush(&mut self) {
        self.hasher.update(&self.buf);
        self.buf.clear();
    }
}

impl std::hash::Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        // Not used: the digest is read from `hasher` after `flush`.
        0
    }

    fn write(&mut self, bytes: &[u8]) {
        if self.buf.len() + bytes.len() > Self::CHUNK {
            self.flush();
        }
        if bytes.len() >= Self::CHUNK {
            self.hasher.update(bytes);
        } else {
            self.buf.extend_from_slice(bytes);
        }
    }
}

/// Runs the engine of this server's role and tracks what it applied.
pub struct Supervisor {
    registry: EngineRegistry,
    server: String,
    bind: IpAddr,
    state_dir: PathBuf,
    identity: Option<AgentTlsPaths>,
    options: BTreeMap<String, String>,
    controllers: Vec<String>,
    cron_lease: crate::lease::CronLease,
    mail_lease: crate::lease::MailLease,
    engine: Option<Box<dyn RoleEngine>>,
    /// Role the engine (or the failed attempt to build it) is for.
    role: Option<String>,
    /// Revision and digest of the config last applied: enough to skip a config equal
    /// to it. Not the config itself: a DNS server's is tens of megabytes parsed, and
    /// the agent already holds one copy.
    applied: Option<Applied>,
    last_error: Option<(i64, String)>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("role", &self.role)
            .field("applied_revision", &self.applied_revision())
            .field("last_error", &self.last_error)
            .finish_non_exhaustive()
    }
}

impl Supervisor {
    /// A supervisor with no engine yet; `state_dir` is the agent's state directory.
    pub fn new(registry: EngineRegistry, server: String, bind: IpAddr, state_dir: PathBuf) -> Self {
        Self {
            registry,
            server,
            bind,
            state_dir,
            identity: None,
            options: BTreeMap::new(),
            controllers: Vec::new(),
            cron_lease: crate::lease::CronLease::default(),
            mail_lease: crate::lease::MailLease::default(),
            engine: None,
            role: None,
            applied: None,
            last_error: None,
        }
    }

    /// Give engines built from now on this cron lease (the one the heartbeat loop
    /// extends).
    pub fn with_cron_lease(mut self, lease: crate::lease::CronLease) -> Self {
        self.cron_lease = lease;
        self
    }

    /// Give engines built from now on this mail writer lease (the one the
    /// heartbeat loop extends).
    pub fn with_mail_lease(mut self, lease: crate::lease::MailLease) -> Self {
        self.mail_lease = lease;
        self
    }

    /// Give engines built from now on the agent's identity and engine options.
    pub fn with_engine_env(
        mut self,
        identity: Option<AgentTlsPaths>,
        options: BTreeMap<String, String>,
        controllers: Vec<String>,
    ) -> Self {
        self.identity = identity;
        self.options = options;
        self.controllers = controllers;
        self
    }

    /// Make sure the engine of `role` runs (replacing an engine of another role).
    pub async fn ensure_role(&mut self, role: &str) -> Result<(), EngineError> {
        if self.role.as_deref() == Some(role) && self.engine.is_some() {
            return Ok(());
        }
        if let Some(mut old) = self.engine.take() {
            tracing::info!(
                from = old.name(),
                to = role,
                "role changed; stopping engine"
            );
            old.shutdown().await;
            self.applied = None;
        }
        self.role = Some(role.to_string());
        let ctx = EngineContext {
            server: self.server.clone(),
            role: role.to_string(),
            bind: self.bind,
            state_dir: self.state_dir.join("engines").join(role),
            identity: self.identity.clone(),
            options: self.options.clone(),
            controllers: self.controllers.clone(),
        };
        let mut engine = self.registry.create(&ctx)?;
        engine.set_cron_lease(self.cron_lease.clone());
        engine.set_mail_lease(self.mail_lease.clone());
        self.engine = Some(engine);
        Ok(())
    }

    /// Apply `desired` unless it equals what was last applied (same revision and
    /// digest). Returns whether the engine was called.
    pub async fn apply(&mut self, desired: &DesiredConfig) -> Result<bool, EngineError> {
        let digest = config_digest(desired);
        let same = |a: &Applied| {
            a.revision == desired.revision && a.digest.is_some() && a.digest == digest
        };
        if self.applied.as_ref().is_some_and(same) {
            return Ok(false);
        }
        let result = self.apply_inner(desired).await;
        match &result {
            Ok(()) => {
                self.applied = Some(Applied {
                    revision: desired.revision,
                    digest,
                });
                self.last_error = None;
            }
            Err(e) => self.last_error = Some((desired.revision, e.to_string())),
        }
        result.map(|()| true)
    }

    async fn apply_inner(&mut self, desired: &DesiredConfig) -> Result<(), EngineError> {
        self.ensure_role(desired.role.role()).await?;
        match self.engine.as_mut() {
            Some(engine) => engine.apply(&desired.role).await,
            None => Err(EngineError::Apply("no engine".into())),
        }
    }

    /// Whether the last apply failed (so the same config should be retried).
    pub fn needs_retry(&self) -> bool {
        self.last_error.is_some()
    }

    /// Revision of the config last applied successfully (0 before the first).
    pub fn applied_revision(&self) -> i64 {
        self.applied.as_ref().map(|c| c.revision).unwrap_or(0)
    }

    /// The engine's report, if it makes one.
    pub fn report(&self) -> Option<RoleReport> {
        self.engine.as_ref().and_then(|e| e.report())
    }

    /// The engine's service port, if it knows it.
    pub fn service_port(&self) -> Option<u16> {
        self.engine.as_ref().and_then(|e| e.service_port())
    }

    /// Objects of the config last applied that the engine could not apply (at most
    /// [`MAX_REJECTED`], sorted).
    pub fn rejected(&self) -> Vec<RejectedObject> {
        let mut list = self
            .engine
            .as_ref()
            .map(|e| e.rejected())
            .unwrap_or_default();
        list.sort();
        list.dedup();
        list.truncate(MAX_REJECTED);
        list
    }

    /// Health of the engine: its own report, made `degraded` when the last apply
    /// failed or some objects were not applied (they are named in the detail), or
    /// `failed` when the engine could not be built.
    pub fn health(&self) -> Vec<EngineHealth> {
        match (&self.engine, &self.role) {
            (Some(engine), _) => {
                let mut h = engine.health();
                let rejected = engine.rejected();
                if !rejected.is_empty() {
                    if h.state == EngineState::Ok {
                        h.state = EngineState::Degraded;
                    }
                    h.detail = format!("{}; {}", rejected_detail(&rejected), h.detail);
                }
                if let Some((rev, err)) = &self.last_error {
                    if h.state == EngineState::Ok {
                        h.state = EngineState::Degraded;
                    }
                    h.detail = format!("applying revision {rev} failed: {err}; {}", h.detail);
                }
                h.detail = truncate(h.detail, MAX_DETAIL);
                vec![h]
            }
            (None, Some(role)) => vec![EngineHealth {
                name: role.clone(),
                state: EngineState::Failed,
                detail: self
                    .last_error
                    .as_ref()
                    .map(|(_, e)| e.clone())
                    .unwrap_or_else(|| "engine not started".into()),
            }],
            (None, None) => Vec::new(),
        }
    }

    /// Stop the engine.
    pub async fn shutdown(&mut self) {
        if let Some(mut engine) = self.engine.take() {
            engine.shutdown().await;
        }
    }
}

/// `2 objects not applied: mailbox a/b@example.com (reason); zone x.test (reason)`.
pub fn rejected_detail(rejected: &[RejectedObject]) -> String {
    let mut sorted = rejected.to_vec();
    sorted.sort();
    let named: Vec<String> = sorted
        .iter()
        .take(DETAIL_REJECTED)
        .map(|r| truncate(format!("{} ({})", r.object, r.reason), 300))
        .collect();
    let more = sorted.len().saturating_sub(DETAIL_REJECTED);
    format!(
        "{} object{} not applied: {}{}",
        sorted.len(),
        if sorted.len() == 1 { "" } else { "s" },
        named.join("; "),
        if more > 0 {
            format!("; and {more} more")
        } else {
            String::new()
        }
    )
}

/// `s` cut to at most `max` bytes (on a character boundary, with `…`).
fn truncate(mut s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let mut end = max.saturating_sub(3);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push('…');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::agent_v1::{DnsConfig, ServerIdentity, WebConfig, CONFIG_FORMAT};

    fn desired(rev: i64, role: RoleConfig) -> DesiredConfig {
        DesiredConfig {
            format: CONFIG_FORMAT,
            revision: rev,
            server: ServerIdentity {
                name: "s".into(),
                role: role.role().into(),
                cluster: "c".into(),
                rank: 0,
                addresses: vec![],
                hostname: "s.example.net".into(),
            },
            role,
        }
    }

    struct Flaky {
        fail: bool,
        applied: usize,
    }

    impl RoleEngine for Flaky {
        fn name(&self) -> &str {
            "web"
        }
        fn apply<'a>(&'a mut self, _: &'a RoleConfig) -> BoxFuture<'a, Result<(), EngineError>> {
            Box::pin(async move {
                if self.fail {
                    self.fail = false;
                    return Err(EngineError::Apply("port in use".into()));
                }
                self.applied += 1;
                Ok(())
            })
        }
        fn health(&self) -> EngineHealth {
            EngineHealth {
                name: "web".into(),
                state: EngineState::Ok,
                detail: format!("{} applies", self.applied),
            }
        }
    }

    struct Picky;

    impl RoleEngine for Picky {
        fn name(&self) -> &str {
            "mail"
        }
        fn apply<'a>(&'a mut self, _: &'a RoleConfig) -> BoxFuture<'a, Result<(), EngineError>> {
            Box::pin(async { Ok(()) })
        }
        fn rejected(&self) -> Vec<RejectedObject> {
            (0..7)
                .map(|i| RejectedObject::new(format!("mailbox {i}/x@a.test"), "has a /"))
                .collect()
        }
        fn health(&self) -> EngineHealth {
            EngineHealth {
                name: "mail".into(),
                state: EngineState::Ok,
                detail: "serving".into(),
            }
        }
    }

    #[tokio::test]
    async fn rejected_objects_degrade_health_and_are_named() {
        let mut reg = EngineRegistry::new();
        reg.register("mail", |_| Ok(Box::new(Picky)));
        let mut s = Supervisor::new(reg, "s".into(), "127.0.0.1".parse().unwrap(), "/x".into());
        let d = desired(3, RoleConfig::Mail(Default::default()));
        assert!(s.apply(&d).await.unwrap());
        assert!(!s.needs_retry());
        assert_eq!(s.applied_revision(), 3);
        assert_eq!(s.rejected().len(), 7);
        let h = &s.health()[0];
        assert_eq!(h.state, EngineState::Degraded);
        assert_eq!(
            h.detail,
            "7 objects not applied: mailbox 0/x@a.test (has a /); mailbox 1/x@a.test (has a /); \
             mailbox 2/x@a.test (has a /); mailbox 3/x@a.test (has a /); mailbox 4/x@a.test \
             (has a /); and 2 more; serving"
        );
        assert_eq!(truncate("ééé".into(), 5), "é…");
    }

    #[tokio::test]
    async fn not_built_engine_reports_itself() {
        let mut s = Supervisor::new(
            EngineRegistry::new(),
            "s".into(),
            "127.0.0.1".parse().unwrap(),
            "/nonexistent".into(),
        );
        assert!(s.health().is_empty());
        assert!(s
            .apply(&desired(4, RoleConfig::Dns(DnsConfig::default())))
            .await
            .unwrap());
        assert_eq!(s.applied_revision(), 4);
        let h = s.health();
        assert_eq!(h[0].state, EngineState::NotBuilt);
        assert_eq!(h[0].detail, "engine for role dns is not built yet");
        // the same config again is not re-applied
        assert!(!s
            .apply(&desired(4, RoleConfig::Dns(DnsConfig::default())))
            .await
            .unwrap());
    }

    /// Only a config equal to the last applied one is skipped: the supervisor keeps
    /// its digest, not a copy, and any change of content is applied.
    #[tokio::test]
    async fn skips_only_an_identical_config() {
        let mut reg = EngineRegistry::new();
        reg.register("web", |_| {
            Ok(Box::new(Flaky {
                fail: false,
                applied: 0,
            }))
        });
        let mut s = Supervisor::new(reg, "s".into(), "127.0.0.1".parse().unwrap(), "/x".into());
        let a = desired(5, RoleConfig::Web(WebConfig::default()));
        assert!(s.apply(&a).await.unwrap());
        assert!(!s.apply(&a.clone()).await.unwrap());
        let mut b = a.clone();
        b.server.hostname = "t.example.net".into();
        assert!(s.apply(&b).await.unwrap(), "same revision, other content");
        assert!(s.apply(&a).await.unwrap(), "back to the first content");
        assert_eq!(s.applied_revision(), 5);
        assert_eq!(s.health()[0].detail, "3 applies");
    }

    #[tokio::test]
    async fn failed_apply_degrades_then_recovers_on_retry() {
        let mut reg = EngineRegistry::new();
        reg.register("web", |_| {
            Ok(Box::new(Flaky {
                fail: true,
                applied: 0,
            }))
        });
        assert!(reg.is_built("web") && !reg.is_built("dns"));
        let mut s = Supervisor::new(reg, "s".into(), "127.0.0.1".parse().unwrap(), "/x".into());
        let d = desired(2, RoleConfig::Web(WebConfig::default()));
        assert!(s.apply(&d).await.is_err());
        assert!(s.needs_retry());
        assert_eq!(s.applied_revision(), 0);
        assert_eq!(s.health()[0].state, EngineState::Degraded);
        assert!(s.apply(&d).await.unwrap());
        assert!(!s.needs_retry());
        assert_eq!(s.applied_revision(), 2);
        assert_eq!(s.health()[0].state, EngineState::Ok);
    }
}
