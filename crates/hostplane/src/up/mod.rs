//! `hostplane up`: a whole platform on this machine. The controller runs as its own
//! OS process (`hostplane controller run`), then one `hostplane agent` process per
//! server of the demo topology ([`topology`]), each on its own 127.0.0.x address with
//! its own state dir under the data dir. `up` stays their supervisor: it waits until
//! every agent heartbeats, prints a summary, serves `server stop/start NAME` on a
//! control socket ([`control`]), restarts the controller (with backoff) when it
//! exits while the agents keep serving, and stops every child on Ctrl-C, SIGTERM or
//! SIGHUP. Each child leads its own process group, which also holds what its engines
//! start ([`groups`]): a stopped server takes its php-fpm and database daemons with
//! it, and what an `up` killed with SIGKILL left is stopped by the next `up`
//! ([`runstate`]).
//!
//! Data dir layout: `controller.toml`, `ca.pem`, the store (from `controller init`),
//! `admin.token`, `up.toml` (what `up` created), `controller-up.toml` (the config the
//! controller runs with: the health timings of this run), `agents/NAME/` (agent.toml,
//! join-token, state/), `logs/` (one log per process), `up-run.toml` (pids while
//! running) and `up.sock`.

pub mod control;
pub mod groups;
mod platform;
pub mod procs;
pub mod runstate;
mod summary;
pub mod topology;

use anyhow::{bail, Context};
use controller::config::ControllerConfig;
use controller::init::InitOptions;
use proto::v1::{
    CreateCluster, CreateJoinToken, CreateServer, ListParams, ServerView, UpdateCluster,
};
use serde::{Deserialize, Serialize};
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc;

use crate::cli::UpArgs;
use crate::login::{self, write_private, SavedLogin};
use crate::output::{print_json, Output};
use control::{Action, Request};
use procs::Proc;
use runstate::{ProcState, RunState, RUN_STATE_FILE};
use summary::Summary;
use topology::PlannedServer;

/// Name of the admin token file inside the data dir.
pub const TOKEN_FILE: &str = "admin.token";
/// Name of the file recording what `up` created.
pub const STATE_FILE: &str = "up.toml";
/// Name of the controller config `up` runs the controller with.
pub const RUN_CONFIG_FILE: &str = "controller-up.toml";

/// What `up` created in its data dir (the paths `init` chose).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct UpState {
    /// Controller config file.
    config: PathBuf,
    /// CA certificate.
    ca: PathBuf,
}

/// Ctrl-C, SIGTERM and SIGHUP (the terminal closed), installed before any child
/// starts.
struct Signals {
    int: Signal,
    term: Signal,
    hup: Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        Ok(Signals {
            int: signal(SignalKind::interrupt()).context("cannot handle Ctrl-C")?,
            term: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
            hup: signal(SignalKind::hangup()).context("cannot handle SIGHUP")?,
        })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
            _ = self.hup.recv() => {}
        }
    }
}

/// Print a progress line: on stdout, or on stderr under `--json` (stdout is JSON).
fn say(out: Output, line: &str) {
    if out.json {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
}

/// Everything `up` supervises.
struct Fleet {
    data_dir: PathBuf,
    url: String,
    /// The controller's config of this run and the address it listens on (the
    /// port it bound first, for restarts).
    run_config: PathBuf,
    listen: SocketAddr,
    controller: Proc,
    agents: Vec<(PlannedServer, Proc)>,
}

impl Fleet {
    fn agent(&mut self, name: &str) -> Option<&mut Proc> {
        self.agents
            .iter_mut()
            .find(|(s, _)| s.name == name)
            .map(|(_, p)| p)
    }

    /// Stop the agents (in parallel), then the controller: SIGTERM, then SIGKILL.
    async fn shutdown(&mut self) {
        let waits = self
            .agents
            .iter_mut()
            .map(|(_, p)| p.terminate(procs::GRACE));
        futures_join_all(waits).await;
        self.controller.terminate(procs::GRACE).await;
        std::fs::remove_file(self.data_dir.join(RUN_STATE_FILE)).ok();
    }

    fn write_run_state(&self) {
        let state = RunState {
            up_pid: std::process::id(),
            up_start: groups::stat(std::process::id()).map(|s| s.start),
            boot_id: groups::boot_id(),
            url: self.url.clone(),
            control_socket: control::socket_path(&self.data_dir),
            controller: ProcState::of(&self.controller, None),
            servers: self
                .agents
                .iter()
                .map(|(s, p)| {
                    let config = agent_dir(&self.data_dir, &s.name).join("agent.toml");
                    (s.name.clone(), ProcState::of(p, Some(config)))
                })
                .collect(),
        };
        runstate::write(&self.data_dir, &state);
    }
}

/// Await every future (they run concurrently on this task).
async fn futures_join_all<F: std::future::Future<Output = ()>>(futs: impl Iterator<Item = F>) {
    let mut set = Vec::new();
    for f in futs {
        set.push(Box::pin(f));
    }
    // Poll all of them together.
    std::future::poll_fn(|cx| {
        set.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if set.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}

fn agent_dir(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join("agents").join(name)
}

/// Run `hostplane up`.
pub async fn run(out: Output, args: UpArgs) -> anyhow::Result<()> {
    crate::init_tracing("warn");
    let mut signals = Signals::install()?;
    let data_dir = std::path::absolute(&args.data_dir)
        .with_context(|| format!("bad data dir {}", args.data_dir.display()))?;
    control::ensure_not_running(&data_dir).await?;
    runstate::stop_leftovers(&data_dir, |line| say(out, &line)).await?;
    if args.listen.port() != 0 {
        // Say plainly that the port is taken before starting anything.
        drop(crate::controller_cmd::bind(args.listen).await?);
    }
    let (state, token, fresh) = prepare(&data_dir, &args).await?;
    let run_config = write_run_config(&data_dir, &state, &args)?;
    let logs = data_dir.join("logs");
    let (controller, url) =
        procs::start_controller(&run_config, args.listen, logs.join("controller.log")).await?;
    let mut fleet = Fleet {
        data_dir: data_dir.clone(),
        url: url.clone(),
        run_config,
        listen: procs::restart_listen(args.listen, &url),
        controller,
        agents: Vec::new(),
    };
    fleet.write_run_state();
    // From here on every error still stops the children below.
    let result = supervise(out, &args, &mut fleet, &state, &token, fresh, &mut signals).await;
    if !out.json {
        println!("hostplane up: stopping every process ...");
    }
    fleet.shutdown().await;
    std::fs::remove_file(control::socket_path(&data_dir)).ok();
    if !out.json {
        println!(
            "hostplane up: stopped (data kept in {})",
            data_dir.display()
        );
    }
    result
}

/// Everything after the controller started; returns when `up` should stop.
async fn supervise(
    out: Output,
    args: &UpArgs,
    fleet: &mut Fleet,
    state: &UpState,
    token: &str,
    fresh: bool,
    signals: &mut Signals,
) -> anyhow::Result<()> {
    let url = fleet.url.clone();
    let data_dir = fleet.data_dir.clone();
    let ca_pem = std::fs::read(&state.ca)
        .with_context(|| format!("cannot read the CA {}", state.ca.display()))?;
    let api = client::Client::new(&url, Some(token.to_owned()), Some(&ca_pem))?;
    let saved = SavedLogin {
        server: url.clone(),
        token: token.to_owned(),
        ca: Some(state.ca.clone()),
        revoke_on_logout: false,
        up_data_dir: Some(data_dir.clone()),
    };
    let login_path = login::save(&saved)?;

    // The topology: clusters, servers, agent configs, agent processes.
    let plan = topology::servers(args.web, args.address_base);
    let setup = async {
        ensure_clusters(&api).await?;
        platform::ensure_domain(&api).await?;
        let mut agents = Vec::new();
        for server in &plan {
            let options = topology::engine_options(server, &plan, topology::privileged());
            let config =
                prepare_agent(&api, &data_dir, &state.ca, &url, server, options, args).await?;
            let mut proc = Proc::new(
                &server.name,
                vec![
                    "agent".into(),
                    "--config".into(),
                    config.display().to_string(),
                ],
                data_dir.join("logs").join(format!("{}.log", server.name)),
            );
            // php-fpm's title names its config file in the agent's state dir.
            let state = agent_dir(&data_dir, &server.name).join("state");
            proc.marker = Some(format!("{}/", state.display()));
            agents.push((server.clone(), proc));
        }
        anyhow::Ok(agents)
    };
    let agents = tokio::select! {
        biased;
        _ = signals.recv() => return Ok(()),
        r = setup => r?,
    };
    fleet.agents = agents;
    for i in 0..fleet.agents.len() {
        // Recorded one by one: an `up` killed now leaves nothing unrecorded.
        let spawned = fleet.agents[i].1.spawn();
        fleet.write_run_state();
        spawned?;
    }
    let (tx, mut requests) = mpsc::channel::<Request>(16);
    control::listen(&data_dir, tx)?;

    // Wait for every agent to heartbeat.
    // Biased: Ctrl-C during start-up is no failure.
    let servers = tokio::select! {
        biased;
        _ = signals.recv() => return Ok(()),
        r = wait_until_up(out, &api, fleet, Duration::from_secs(args.wait_secs)) => r?,
    };
    let summary = Summary {
        url: &url,
        token,
        ca: &state.ca,
        data_dir: &data_dir,
        login_path: &login_path,
        fresh,
        fleet,
        servers: &servers,
    };
    if out.json {
        print_json(&summary.json())?;
    } else {
        summary.print()?;
    }

    // Supervise until Ctrl-C / SIGTERM / SIGHUP.
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut controller = ControllerWatch::default();
    loop {
        tokio::select! {
            biased;
            _ = signals.recv() => return Ok(()),
            Some(req) = requests.recv() => {
                let answer = handle(fleet, &req.action, &req.server).await;
                if !out.json {
                    match &answer {
                        Ok(m) => println!("{m}"),
                        Err(m) => println!("refused: {m}"),
                    }
                }
                fleet.write_run_state();
                req.reply.send(answer).ok();
            }
            started = controller.started() => controller.restarted(out, fleet, started),
            _ = tick.tick() => {
                controller.check(out, fleet).await;
                let mut changed = false;
                for (server, proc) in &mut fleet.agents {
                    if let Some(status) = proc.exited() {
                        changed = true;
                        let left = proc.stop_leftovers().await;
                        let left = if left.is_empty() {
                            String::new()
                        } else {
                            format!(" (stopped what it left running: {})", groups::describe(&left))
                        };
                        say(
                            out,
                            &format!(
                                "{}: agent exited ({status}){left}; log: {}; `hostplane server start {}` starts it again",
                                server.name,
                                proc.log.display(),
                                server.name
                            ),
                        );
                    }
                }
                if changed {
                    fleet.write_run_state();
                }
            }
        }
    }
}

/// A controller being started: the process and the URL it announced.
type Starting =
    std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<(Proc, String)>> + Send>>;

/// Keeps the controller running: when it exits, the agents (the data plane) keep
/// serving their last config while it is restarted with backoff.
#[derive(Default)]
struct ControllerWatch {
    /// Exits (and failed restarts) in a row.
    failures: u32,
    /// When the running controller started.
    since: Option<Instant>,
    /// When to start it again.
    restart_at: Option<Instant>,
    /// A start under way.
    starting: Option<Starting>,
}

impl ControllerWatch {
    /// Completes when a start under way is done (never when none is).
    async fn started(&mut self) -> anyhow::Result<(Proc, String)> {
        match self.starting.as_mut() {
            Some(f) => f.await,
            None => std::future::pending().await,
        }
    }

    fn schedule(&mut self, out: Output, why: &str) {
        let delay = procs::restart_delay(self.failures);
        say(
            out,
            &format!(
                "hostplane up: {why}; the agents keep serving their last config; restarting the controller in {}s (attempt {})",
                delay.as_secs(),
                self.failures
            ),
        );
        self.restart_at = Some(Instant::now() + delay);
    }

    /// Every tick: notice an exit, start again when due.
    async fn check(&mut self, out: Output, fleet: &mut Fleet) {
        if let Some(status) = fleet.controller.exited() {
            fleet.controller.stop_leftovers().await;
            if self.since.is_some_and(|t| t.elapsed() >= procs::STABLE_RUN) {
                self.failures = 0;
            }
            self.failures += 1;
            self.since = None;
            fleet.write_run_state();
            let why = format!(
                "the controller exited ({status}; its log: {})",
                fleet.controller.log.display()
            );
            self.schedule(out, &why);
        }
        if self.restart_at.is_some_and(|t| Instant::now() >= t) {
            self.restart_at = None;
            let (config, listen) = (fleet.run_config.clone(), fleet.listen);
            let log = fleet.controller.log.clone();
            self.starting = Some(Box::pin(async move {
                procs::start_controller(&config, listen, log).await
            }));
        }
    }

    /// A start finished.
    fn restarted(&mut self, out: Output, fleet: &mut Fleet, r: anyhow::Result<(Proc, String)>) {
        self.starting = None;
        match r {
            Ok((proc, url)) => {
                fleet.controller = proc;
                self.since = Some(Instant::now());
                fleet.write_run_state();
                let pid = fleet.controller.pid().unwrap_or(0);
                say(
                    out,
                    &format!("hostplane up: the controller runs again (pid {pid}) on {url}"),
                );
                if url != fleet.url {
                    say(
                        out,
                        &format!(
                            "warning: the controller moved from {} to {url}; the agents still use the old URL",
                            fleet.url
                        ),
                    );
                }
            }
            Err(e) => {
                self.failures += 1;
                self.schedule(out, &format!("the controller did not start again: {e:#}"));
            }
        }
    }
}

/// Carry out `stop NAME` / `start NAME`.
async fn handle(fleet: &mut Fleet, action: &Action, name: &str) -> Result<String, String> {
    let known: Vec<String> = fleet.agents.iter().map(|(s, _)| s.name.clone()).collect();
    let Some(proc) = fleet.agent(name) else {
        return Err(format!(
            "no server `{name}` in this `hostplane up` (servers: {})",
            known.join(", ")
        ));
    };
    match action {
        Action::Stop => match proc.kill().await {
            Some((pid, others)) => {
                let others = if others.is_empty() {
                    String::new()
                } else {
                    format!(" and all it ran ({})", groups::describe(&others))
                };
                Ok(format!(
                    "stopped {name}: killed its agent (pid {pid}){others}; the controller marks it suspect, then down"
                ))
            }
            None => Err(format!("{name} is already stopped")),
        },
        Action::Start => {
            if let Some(pid) = proc.pid() {
                return Err(format!("{name} is already running (pid {pid})"));
            }
            match proc.spawn() {
                Ok(pid) => Ok(format!("started {name} (agent pid {pid})")),
                Err(e) => Err(format!("cannot start {name}: {e:#}")),
            }
        }
    }
}

/// Create the data dir on the first run; on later runs read what the first made.
async fn prepare(data_dir: &Path, args: &UpArgs) -> anyhow::Result<(UpState, String, bool)> {
    let token_path = data_dir.join(TOKEN_FILE);
    let state_path = data_dir.join(STATE_FILE);
    if token_path.exists() && state_path.exists() {
        let token = std::fs::read_to_string(&token_path)
            .with_context(|| format!("cannot read {}", token_path.display()))?
            .trim()
            .to_owned();
        let text = std::fs::read_to_string(&state_path)
            .with_context(|| format!("cannot read {}", state_path.display()))?;
        let state: UpState = toml::from_str(&text).with_context(|| {
            format!(
                "{} is damaged; move the data dir away to start afresh",
                state_path.display()
            )
        })?;
        return Ok((state, token, false));
    }
    let occupied = std::fs::read_dir(data_dir)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    if occupied {
        bail!(
            "{} exists but was not made by `hostplane up` (no {TOKEN_FILE}); choose another --data-dir or empty it",
            data_dir.display()
        );
    }
    let opts = InitOptions {
        data_dir: data_dir.to_path_buf(),
        listen: args.listen,
        store_url: None,
        extra_names: Vec::new(),
        admin_name: "admin".into(),
        plain_http: false,
    };
    let created = controller::init::init(opts)
        .await
        .context("cannot create the controller data dir")?;
    let state = UpState {
        config: std::path::absolute(&created.config_path)?,
        ca: std::path::absolute(&created.ca_path)?,
    };
    write_private(&token_path, format!("{}\n", created.admin_token).as_bytes())?;
    write_private(&state_path, toml::to_string(&state)?.as_bytes())?;
    Ok((state, created.admin_token, true))
}

/// The controller config of this run: `controller.toml` with this run's listen
/// address, heartbeat interval and probe ports.
fn write_run_config(data_dir: &Path, state: &UpState, args: &UpArgs) -> anyhow::Result<PathBuf> {
    let mut config = ControllerConfig::load(&state.config)
        .with_context(|| format!("cannot load {}", state.config.display()))?;
    config.listen = args.listen;
    if let Some(dir) = &args.acme_directory {
        let ca_file = match &args.acme_ca_file {
            Some(p) => Some(std::path::absolute(p)?),
            None => None,
        };
        config.acme = Some(controller::acme::AcmeConfig {
            ca_file,
            ..controller::acme::AcmeConfig::new(dir.clone())
        });
    }
    config.health.heartbeat_interval_ms = args.health_interval_ms;
    config.health.probe_timeout_ms = (args.health_interval_ms / 2).clamp(50, 500);
    let privileged = topology::privileged();
    let port = |role: &str| {
        topology::ports(role, privileged)
            .first()
            .map(|&(_, p)| p)
            .unwrap_or(1)
    };
    config.health.probe_ports.web = port("web");
    config.health.probe_ports.dns = port("dns");
    config.health.probe_ports.mail = port("mail");
    config.health.probe_ports.files = port("files");
    config.health.probe_ports.db = port("db");
    // TXT proofs of name ownership and `mail check` ask the platform's own DNS
    // primary (ns1): the demo's names exist nowhere else, and the machine's
    // resolver is not this platform's.
    if config.names.resolver.is_none() {
        let ns1 = topology::servers(args.web, args.address_base)
            .into_iter()
            .find(|s| s.role == "dns" && s.rank == 0);
        if let Some(ns1) = ns1 {
            config.names.resolver = Some(std::net::SocketAddr::new(ns1.ip.into(), port("dns")));
        }
    }
    let path = data_dir.join(RUN_CONFIG_FILE);
    write_private(&path, config.to_toml()?.as_bytes())?;
    Ok(path)
}

/// Create the planned clusters that do not exist yet.
async fn ensure_clusters(api: &client::Client) -> anyhow::Result<()> {
    let existing = api.list_all_clusters(&ListParams::default()).await?;
    for c in topology::clusters() {
        match existing.iter().find(|e| e.name == c.name) {
            Some(e) if e.role != c.role => bail!(
                "cluster `{}` exists with role {} but `up` needs it for {}; use a fresh --data-dir",
                c.name,
                e.role,
                c.role
            ),
            Some(e) => {
                // A data dir made before mail clusters had a host name.
                if c.role == "mail" && e.hostname.is_none() {
                    api.update_cluster(
                        c.name,
                        &UpdateCluster {
                            hostname: Some(topology::MAIL_HOSTNAME.into()),
                            ..UpdateCluster::default()
                        },
                    )
                    .await
                    .with_context(|| format!("cannot name the cluster {}", c.name))?;
                }
            }
            None => {
                let has_default = existing.iter().any(|e| e.role == c.role && e.default);
                api.create_cluster(&CreateCluster {
                    name: c.name.to_owned(),
                    role: c.role.to_owned(),
                    description: Some("made by hostplane up".into()),
                    default: (c.default && !has_default).then_some(true),
                    web_ttl: None,
                    ttl: None,
                    external_secondaries: None,
                    hostname: (c.role == "mail").then(|| topology::MAIL_HOSTNAME.into()),
                })
                .await
                .with_context(|| format!("cannot create the cluster {}", c.name))?;
            }
        }
    }
    Ok(())
}

/// Register the server if needed, make a join token unless its agent has joined,
/// and write its agent.toml. Returns the config path.
async fn prepare_agent(
    api: &client::Client,
    data_dir: &Path,
    ca: &Path,
    url: &str,
    server: &PlannedServer,
    engine: std::collections::BTreeMap<String, String>,
    args: &UpArgs,
) -> anyhow::Result<PathBuf> {
    let dir = agent_dir(data_dir, &server.name);
    let state_dir = dir.join("state");
    let token_file = dir.join("join-token");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let joined = matches!(agent::identity::load(&state_dir), Ok(Some(_)));
    let existing = match api.get_server(&server.name).await {
        Ok(s) => Some(s),
        Err(e) if e.status() == Some(404) => None,
        Err(e) => return Err(e.into()),
    };
    if let Some(s) = &existing {
        if s.cluster != server.cluster {
            bail!(
                "server `{}` exists in cluster {} but this topology puts it in {} \
                 (was the data dir made with another --web?): use the same options as before, or a fresh --data-dir",
                server.name,
                s.cluster,
                server.cluster
            );
        }
    }
    let join_token_file = if joined {
        std::fs::remove_file(&token_file).ok();
        None
    } else {
        match existing {
            // Registered but this agent has no identity (first run cut short, or
            // the state dir was removed): let a new agent join under the name.
            Some(_) => {
                api.reset_agent(&server.name).await?;
            }
            None => {
                api.create_server(&CreateServer {
                    name: server.name.clone(),
                    cluster: server.cluster.to_owned(),
                    rank: Some(server.rank),
                    hostname: server.hostname(),
                    addresses: vec![server.ip.to_string()],
                    region: Some(server.region.to_owned()),
                    country: server.country.to_owned(),
                    hardware: None,
                    force: None,
                })
                .await
                .with_context(|| format!("cannot register the server {}", server.name))?;
            }
        }
        let created = api
            .create_join_token(&CreateJoinToken {
                cluster: server.cluster.to_owned(),
                expires_in_minutes: Some(60),
            })
            .await
            .with_context(|| format!("cannot make a join token for {}", server.name))?;
        write_private(&token_file, format!("{}\n", created.token).as_bytes())?;
        Some(token_file)
    };
    let config = agent::AgentConfig {
        name: server.name.clone(),
        controllers: vec![url.to_owned()],
        ca_file: Some(ca.to_path_buf()),
        join_token: None,
        join_token_file,
        state_dir,
        bind: std::net::IpAddr::V4(server.ip),
        hostname: server.hostname(),
        addresses: vec![server.ip.to_string()],
        country: server.country.to_owned(),
        region: server.region.to_owned(),
        hardware: String::new(),
        heartbeat_interval_ms: args.health_interval_ms,
        resync_interval_s: agent::config::DEFAULT_RESYNC_INTERVAL_S,
        watch_timeout_s: agent::config::DEFAULT_WATCH_TIMEOUT_S,
        engine,
    };
    config
        .validate()
        .with_context(|| format!("agent config of {}", server.name))?;
    let path = dir.join("agent.toml");
    write_private(&path, toml::to_string(&config)?.as_bytes())?;
    Ok(path)
}

/// Poll the servers until every planned one is `up` (or `wait` passes), showing
/// progress. Returns the last listing.
async fn wait_until_up(
    out: Output,
    api: &client::Client,
    fleet: &mut Fleet,
    wait: Duration,
) -> anyhow::Result<Vec<ServerView>> {
    let deadline = Instant::now() + wait;
    let tty = !out.json && std::io::stdout().is_terminal();
    let total = fleet.agents.len();
    let mut last_shown = None;
    let mut servers = Vec::new();
    loop {
        if let Some(status) = fleet.controller.exited() {
            bail!(
                "the controller exited ({status}); the end of its log ({}):\n{}",
                fleet.controller.log.display(),
                procs::log_tail(&fleet.controller.log, 15)
            );
        }
        let mut dead = Vec::new();
        for (server, proc) in &mut fleet.agents {
            if let Some(status) = proc.exited() {
                dead.push(format!(
                    "{} exited ({status}); the end of {}:\n{}",
                    server.name,
                    proc.log.display(),
                    procs::log_tail(&proc.log, 8)
                ));
            }
        }
        if !dead.is_empty() {
            bail!("an agent stopped during start-up:\n{}", dead.join("\n"));
        }
        if let Ok(list) = api.list_all_servers(&ListParams::default()).await {
            servers = list;
        }
        let health = |name: &str| {
            servers
                .iter()
                .find(|s| s.name == name)
                .map(|s| s.health.as_str())
                .unwrap_or("unregistered")
        };
        let waiting: Vec<String> = fleet
            .agents
            .iter()
            .filter(|(s, _)| health(&s.name) != "up")
            .map(|(s, _)| format!("{} ({})", s.name, health(&s.name)))
            .collect();
        let up = total - waiting.len();
        if !out.json && last_shown != Some(up) {
            let line = format!(
                "waiting for the agents to join and heartbeat: {up}/{total} up{}",
                if waiting.is_empty() {
                    String::new()
                } else {
                    format!("; waiting for {}", waiting.join(", "))
                }
            );
            let mut o = std::io::stdout().lock();
            if tty {
                write!(o, "\r\x1b[2K{line}")?;
            } else {
                writeln!(o, "{line}")?;
            }
            o.flush()?;
            last_shown = Some(up);
        }
        if waiting.is_empty() {
            if tty {
                println!();
            }
            return Ok(servers);
        }
        if Instant::now() >= deadline {
            if tty {
                println!();
            }
            eprintln!(
                "warning: not every agent is up after {}s: {} (their logs are in {}); continuing",
                wait.as_secs(),
                waiting.join(", "),
                fleet.data_dir.join("logs").display()
            );
            return Ok(servers);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
