//! The agent end to end against a stand-in controller (tests/common) over real
//! HTTPS with mutual TLS: join, identity reuse, watch + persist + apply, cached
//! config with the controller down, heartbeats, the 304 loop, resync, failover
//! between controllers, and the mTLS requirement itself.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent::{AgentConfig, AgentError, BoxFuture, EngineError, EngineRegistry, RoleEngine};
use common::{dead_url, TestController};
use proto::agent_v1::{
    DesiredConfig, DnsConfig, EngineHealth, EngineState, RoleConfig, ServerIdentity, WebConfig,
    WebSite, ZoneAssignment, CONFIG_FORMAT,
};

// ---------------------------------------------------------------- helpers

/// A per-test loopback source address: 127.77.<pid>.<counter>.
fn test_addr() -> IpAddr {
    static N: AtomicU32 = AtomicU32::new(1);
    let n = N.fetch_add(1, Ordering::Relaxed) % 250 + 1;
    let p = std::process::id() % 250 + 1;
    format!("127.77.{p}.{n}").parse().unwrap()
}

fn web_cfg(server: &str, revision: i64, domains: &[&str]) -> DesiredConfig {
    DesiredConfig {
        format: CONFIG_FORMAT,
        revision,
        server: ServerIdentity {
            name: server.into(),
            role: "web".into(),
            cluster: "web-eu".into(),
            rank: 0,
            addresses: vec![],
            hostname: format!("{server}.hosting.example"),
        },
        role: RoleConfig::Web(WebConfig {
            sites: domains
                .iter()
                .map(|d| WebSite {
                    docroot: None,
                    hsts: false,
                    php_version: None,
                    php_ini: Default::default(),
                    mail: None,
                    cron: None,
                    domain: d.to_string(),
                    aliases: vec![],
                    php: false,
                    mode: model::PlacementMode::All,
                    active: true,
                    https_redirect: false,
                    tls: None,
                    files_origin: None,
                    local_paths: Vec::new(),
                    quota_mb: 0,
                })
                .map(std::sync::Arc::new)
                .collect(),
            files_origin: None,
            peers: Vec::new(),
            acme_challenges: Vec::new(),
        }),
    }
}

fn dns_cfg(server: &str, revision: i64, zones: &[&str]) -> DesiredConfig {
    DesiredConfig {
        format: CONFIG_FORMAT,
        revision,
        server: ServerIdentity {
            name: server.into(),
            role: "dns".into(),
            cluster: "dns-eu".into(),
            rank: 0,
            addresses: vec![],
            hostname: format!("{server}.hosting.example"),
        },
        role: RoleConfig::Dns(DnsConfig {
            zones: zones
                .iter()
                .map(|z| ZoneAssignment {
                    domain: z.to_string(),
                    primary: true,
                    primary_addresses: vec![],
                    secondaries: vec![],
                    zone: None,
                    primary_endpoints: vec![],
                    notify: vec![],
                    tsig: None,
                })
                .collect(),
        }),
    }
}

/// What the recording engine saw at each apply.
#[derive(Debug, Clone)]
struct Applied {
    /// Site domains of the applied config.
    sites: Vec<String>,
    /// Revision in `desired.json` at the moment of the apply.
    cached_revision: Option<i64>,
    at: Instant,
}

type Log = Arc<Mutex<Vec<Applied>>>;

/// A web engine that records every apply (and what was on disk then).
struct Recorder {
    log: Log,
    agent_state: PathBuf,
}

impl RoleEngine for Recorder {
    fn name(&self) -> &str {
        "web"
    }

    fn apply<'a>(&'a mut self, cfg: &'a RoleConfig) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(async move {
            let RoleConfig::Web(web) = cfg else {
                return Err(EngineError::Invalid("not a web config".into()));
            };
            let cached_revision = std::fs::read(self.agent_state.join("desired.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<DesiredConfig>(&b).ok())
                .map(|c| c.revision);
            self.log.lock().unwrap().push(Applied {
                sites: web.sites.iter().map(|s| s.domain.clone()).collect(),
                cached_revision,
                at: Instant::now(),
            });
            Ok(())
        })
    }

    fn health(&self) -> EngineHealth {
        EngineHealth {
            name: "web".into(),
            state: EngineState::Ok,
            detail: format!("{} applies", self.log.lock().unwrap().len()),
        }
    }
}

fn recording_registry(log: &Log) -> EngineRegistry {
    let log = log.clone();
    let mut reg = EngineRegistry::new();
    reg.register("web", move |ctx| {
        let agent_state = ctx
            .state_dir
            .parent()
            .and_then(Path::parent)
            .unwrap()
            .to_path_buf();
        Ok(Box::new(Recorder {
            log: log.clone(),
            agent_state,
        }))
    });
    reg
}

struct Setup {
    dir: tempfile::TempDir,
    ca_file: PathBuf,
}

impl Setup {
    fn new(ctl: &TestController) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("controller-ca.pem");
        std::fs::write(&ca_file, ctl.ca_pem()).unwrap();
        Setup { dir, ca_file }
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn config(&self, name: &str, controllers: Vec<String>, token: Option<String>) -> AgentConfig {
        let text = format!(
            r#"
            name = "{name}"
            controllers = []
            state_dir = "/"
            bind = "127.0.0.1"
            hostname = "{name}.hosting.example"
            country = "GB"
            region = "eu-west"
            heartbeat_interval_ms = 100
            resync_interval_s = 60
            watch_timeout_s = 10
            "#
        );
        let mut cfg = AgentConfig::from_toml_str(&text).unwrap();
        cfg.controllers = controllers;
        cfg.state_dir = self.state_dir();
        cfg.ca_file = Some(self.ca_file.clone());
        cfg.join_token = token;
        cfg.bind = test_addr();
        cfg.validate().unwrap();
        cfg
    }
}

/// An agent running in a task until stopped.
struct RunningAgent {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<Result<(), AgentError>>>,
}

fn spawn_agent(cfg: AgentConfig, registry: EngineRegistry) -> RunningAgent {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(agent::run_with_engines(cfg, registry, async move {
        let _ = rx.await;
    }));
    RunningAgent {
        stop: Some(tx),
        handle: Some(handle),
    }
}

impl RunningAgent {
    async fn stop(mut self) -> Result<(), AgentError> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let handle = self.handle.take().unwrap();
        tokio::time::timeout(Duration::from_secs(10), handle)
            .await
            .expect("agent stops within 10 s")
            .expect("agent task does not panic")
    }

    fn is_running(&self) -> bool {
        self.handle.as_ref().is_some_and(|h| !h.is_finished())
    }
}

impl Drop for RunningAgent {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.abort();
        }
    }
}

async fn eventually(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn last_sites(log: &Log) -> Option<Vec<String>> {
    log.lock().unwrap().last().map(|a| a.sites.clone())
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn first_start_joins_restart_reuses_identity_and_tokens_are_one_time() {
    let ctl = TestController::start(Duration::from_millis(500)).await;
    let setup = Setup::new(&ctl);
    let token = ctl.token("web-eu", "web");
    ctl.set_config("web-1", web_cfg("web-1", 1, &["one.example"]));
    // The first controller URL is dead: the agent fails over to the second.
    let cfg = setup.config(
        "web-1",
        vec![dead_url(), ctl.url.clone()],
        Some(token.clone()),
    );
    let log = Log::default();

    let agent = spawn_agent(cfg.clone(), recording_registry(&log));
    eventually("first config applied", Duration::from_secs(15), || {
        last_sites(&log) == Some(vec!["one.example".into()])
    })
    .await;
    assert_eq!(ctl.joins(), 1);
    let req = &ctl.join_requests()[0];
    assert_eq!(
        (req.name.as_str(), req.country.as_str(), req.region.as_str()),
        ("web-1", "GB", "eu-west")
    );
    assert_eq!(req.addresses, vec![cfg.bind.to_string()]);

    let state = setup.state_dir();
    let id_dir = state.join("identity");
    let key = std::fs::read(id_dir.join("key.pem")).unwrap();
    assert!(String::from_utf8_lossy(&key).contains("PRIVATE KEY"));
    assert!(std::fs::read_to_string(id_dir.join("cert.pem"))
        .unwrap()
        .starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(
        std::fs::read_to_string(id_dir.join("ca.pem")).unwrap(),
        ctl.ca_pem()
    );
    #[cfg(unix)]
    {
        assert_eq!(mode(&id_dir.join("key.pem")), 0o600);
        assert_eq!(mode(&state), 0o700);
        assert_eq!(mode(&state.join("desired.json")), 0o600);
    }
    agent.stop().await.unwrap();

    // Restart with neither token nor CA file: the stored identity is enough.
    let mut again = cfg.clone();
    again.join_token = None;
    again.ca_file = None;
    let hb_before = ctl.heartbeats().len();
    let agent = spawn_agent(again, recording_registry(&log));
    eventually("heartbeats after restart", Duration::from_secs(15), || {
        ctl.heartbeats().len() > hb_before + 2
    })
    .await;
    assert_eq!(ctl.joins(), 1, "a restarted agent must not join again");
    assert_eq!(std::fs::read(id_dir.join("key.pem")).unwrap(), key);
    assert!(agent.is_running());
    agent.stop().await.unwrap();

    // The used token is refused: a second agent fails with JoinRefused.
    let other = Setup::new(&ctl);
    let reuse = other.config("web-2", vec![ctl.url.clone()], Some(token));
    let err = tokio::time::timeout(
        Duration::from_secs(15),
        agent::run(reuse, std::future::pending()),
    )
    .await
    .expect("a refused join ends the agent")
    .unwrap_err();
    assert!(matches!(err, AgentError::JoinRefused(_)), "{err}");

    // And an agent without a token cannot start unjoined.
    let none = Setup::new(&ctl);
    let mut no_token = none.config("web-3", vec![ctl.url.clone()], None);
    no_token.join_token_file = Some(none.dir.path().join("missing-token"));
    let err = agent::run(no_token, std::future::pending())
        .await
        .unwrap_err();
    assert!(matches!(err, AgentError::Config(_)), "{err}");
    ctl.stop().await;
}

#[tokio::test]
async fn changes_are_persisted_before_apply_and_idle_polls_get_304() {
    let ctl = TestController::start(Duration::from_millis(300)).await;
    let setup = Setup::new(&ctl);
    ctl.set_config("web-1", web_cfg("web-1", 1, &["one.example"]));
    let cfg = setup.config(
        "web-1",
        vec![ctl.url.clone()],
        Some(ctl.token("web-eu", "web")),
    );
    let log = Log::default();
    let agent = spawn_agent(cfg, recording_registry(&log));
    eventually("revision 1 applied", Duration::from_secs(15), || {
        log.lock().unwrap().len() == 1
    })
    .await;

    // Idle: the agent keeps long-polling with after=1 and gets 304s.
    eventually("two 304s", Duration::from_secs(10), || {
        ctl.config_calls()
            .iter()
            .filter(|c| c.server == "web-1" && c.after == 1 && c.status == 304)
            .count()
            >= 2
    })
    .await;
    assert_eq!(log.lock().unwrap().len(), 1, "a 304 applies nothing");

    // A change wakes the blocking query at once and is on disk before the apply.
    let changed = Instant::now();
    ctl.set_config(
        "web-1",
        web_cfg("web-1", 2, &["one.example", "two.example"]),
    );
    eventually("revision 2 applied", Duration::from_secs(5), || {
        log.lock().unwrap().len() == 2
    })
    .await;
    let applied = log.lock().unwrap()[1].clone();
    assert_eq!(applied.sites, vec!["one.example", "two.example"]);
    assert_eq!(applied.cached_revision, Some(2), "persisted before applied");
    assert!(
        applied.at.duration_since(changed) < Duration::from_secs(2),
        "blocking query must return on change, took {:?}",
        applied.at.duration_since(changed)
    );
    let on_disk: DesiredConfig =
        serde_json::from_slice(&std::fs::read(setup.state_dir().join("desired.json")).unwrap())
            .unwrap();
    assert_eq!(
        on_disk,
        web_cfg("web-1", 2, &["one.example", "two.example"])
    );
    // No temporary files are left next to the cache.
    let leftovers: Vec<_> = std::fs::read_dir(setup.state_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    eventually(
        "heartbeat reports revision 2",
        Duration::from_secs(5),
        || {
            ctl.heartbeats()
                .iter()
                .any(|h| h.server == "web-1" && h.heartbeat.applied_revision == 2)
        },
    )
    .await;
    agent.stop().await.unwrap();
    ctl.stop().await;
}

#[tokio::test]
async fn restart_with_controller_down_serves_the_cached_config_at_once() {
    let ctl = TestController::start(Duration::from_millis(300)).await;
    let setup = Setup::new(&ctl);
    ctl.set_config("web-1", web_cfg("web-1", 3, &["cached.example"]));
    let cfg = setup.config(
        "web-1",
        vec![ctl.url.clone()],
        Some(ctl.token("web-eu", "web")),
    );
    let log = Log::default();
    let agent = spawn_agent(cfg.clone(), recording_registry(&log));
    eventually("revision 3 applied", Duration::from_secs(15), || {
        !log.lock().unwrap().is_empty()
    })
    .await;
    agent.stop().await.unwrap();
    ctl.stop().await;

    // The controller is gone; a fresh engine must get the cached config anyway.
    let log2 = Log::default();
    let started = Instant::now();
    let agent = spawn_agent(cfg, recording_registry(&log2));
    eventually("cached config applied", Duration::from_secs(2), || {
        last_sites(&log2) == Some(vec!["cached.example".into()])
    })
    .await;
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert_eq!(log2.lock().unwrap()[0].cached_revision, Some(3));
    // It keeps running (retrying the controller) instead of failing.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(agent.is_running());
    agent.stop().await.unwrap();
}

#[tokio::test]
async fn heartbeats_carry_revision_and_health_from_the_bind_address() {
    let ctl = TestController::start(Duration::from_millis(300)).await;
    let setup = Setup::new(&ctl);
    ctl.set_config("ns1", dns_cfg("ns1", 7, &["example.com"]));
    let cfg = setup.config(
        "ns1",
        vec![ctl.url.clone()],
        Some(ctl.token("dns-eu", "dns")),
    );
    let bind = cfg.bind;
    // No engine registered: the dns role is not built.
    let agent = spawn_agent(cfg, EngineRegistry::new());
    eventually("heartbeat with revision 7", Duration::from_secs(15), || {
        ctl.heartbeats()
            .iter()
            .any(|h| h.heartbeat.applied_revision == 7)
    })
    .await;
    let hbs = ctl.heartbeats();
    let hb = hbs
        .iter()
        .find(|h| h.heartbeat.applied_revision == 7)
        .unwrap();
    assert_eq!(hb.server, "ns1");
    assert_eq!(
        hb.peer.ip(),
        bind,
        "outgoing connections bind the server address"
    );
    assert_eq!(hb.heartbeat.agent_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(
        hb.heartbeat.engines,
        vec![EngineHealth {
            name: "dns".into(),
            state: EngineState::NotBuilt,
            detail: "engine for role dns is not built yet".into(),
        }]
    );
    // About one per heartbeat_interval (100 ms): several within a second.
    let count = |c: &TestController| c.heartbeats().len();
    let before = count(&ctl);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let sent = count(&ctl) - before;
    assert!((3..=20).contains(&sent), "{sent} heartbeats in 1 s");
    agent.stop().await.unwrap();
    ctl.stop().await;
}

#[tokio::test]
async fn resync_repairs_a_config_the_long_poll_cannot_see() {
    let ctl = TestController::start(Duration::from_millis(200)).await;
    let setup = Setup::new(&ctl);
    ctl.set_config("web-1", web_cfg("web-1", 5, &["five.example"]));
    let mut cfg = setup.config(
        "web-1",
        vec![ctl.url.clone()],
        Some(ctl.token("web-eu", "web")),
    );
    cfg.resync_interval_s = 1;
    let log = Log::default();
    let agent = spawn_agent(cfg, recording_registry(&log));
    eventually("revision 5 applied", Duration::from_secs(15), || {
        !log.lock().unwrap().is_empty()
    })
    .await;
    // The controller's revision went back (e.g. restored from a backup): a blocking
    // query with after=5 never returns it; the periodic after=0 resync does.
    ctl.set_config("web-1", web_cfg("web-1", 2, &["restored.example"]));
    eventually("restored config applied", Duration::from_secs(5), || {
        last_sites(&log) == Some(vec!["restored.example".into()])
    })
    .await;
    let applies = log.lock().unwrap().len();
    // Unchanged resyncs apply nothing.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(log.lock().unwrap().len(), applies);
    assert!(
        ctl.config_calls()
            .iter()
            .filter(|c| c.after == 0 && c.status == 200)
            .count()
            >= 3
    );
    agent.stop().await.unwrap();
    ctl.stop().await;
}

#[tokio::test]
async fn agent_endpoints_require_a_client_certificate_of_the_controller_ca() {
    let ctl = TestController::start(Duration::from_millis(200)).await;
    let ca = reqwest::Certificate::from_pem(ctl.ca_pem().as_bytes()).unwrap();
    let builder = || {
        reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca.clone())
    };

    // No certificate: TLS works, the agent endpoints answer 401.
    let anon = builder().build().unwrap();
    let r = anon
        .get(format!("{}/v1/agent/config?after=0", ctl.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = anon
        .post(format!("{}/v1/agent/heartbeat", ctl.url))
        .json(&serde_json::json!({"applied_revision": 0, "engines": [], "agent_version": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Join needs no certificate, but a valid token.
    let r = anon
        .post(format!("{}/v1/agent/join", ctl.url))
        .json(
            &serde_json::json!({"token": "nope", "csr_pem": "", "name": "x", "hostname": "x",
            "addresses": [], "country": "GB", "region": "", "hardware": ""}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Control: a certificate of the controller CA passes TLS (it was never issued
    // through join, so the stand-in does not know the server: 401, not a TLS error).
    let (cert, _, key, _) = ctl
        .ca()
        .leaf(&["web-9"], rcgen::ExtendedKeyUsagePurpose::ClientAuth);
    let same_ca = builder()
        .identity(reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap())
        .build()
        .unwrap();
    let r = same_ca
        .get(format!("{}/v1/agent/config?after=0", ctl.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // A certificate from another CA: the handshake is refused.
    let other = common::TestCa::new("rogue CA");
    let (cert, _, key, _) = other.leaf(&["web-1"], rcgen::ExtendedKeyUsagePurpose::ClientAuth);
    let rogue = builder()
        .identity(reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap())
        .build()
        .unwrap();
    let r = rogue
        .get(format!("{}/v1/agent/config?after=0", ctl.url))
        .send()
        .await;
    assert!(
        r.is_err(),
        "a foreign client certificate must fail TLS: {r:?}"
    );
    ctl.stop().await;
}
