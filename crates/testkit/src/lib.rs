//! Test support for hostplane: a controller and agents as **real OS processes**
//! of the `hostplane` binary, on addresses no other test uses.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use std::time::Duration;
//! // In an integration test of the hostplane crate: env!("CARGO_BIN_EXE_hostplane").
//! let bin = "target/debug/hostplane";
//! let mut c = testkit::TestCluster::start(bin, testkit::Options::default()).await?;
//! c.add_cluster("web-a", "web", true).await?;
//! c.add_agent("web-1", "web-a", "GB").await?;
//! c.wait_until("web-1 up", Duration::from_secs(10), async |c| {
//!     Ok(c.server("web-1").await?.health == "up")
//! })
//! .await?;
//! # Ok(()) }
//! ```
//!
//! Every test gets a temporary directory (controller data dir, agent state dirs,
//! logs) and its own block of loopback addresses `127.A.B.0/24` ([`AddrBlock`]),
//! derived from a process-wide counter and the process id, so tests running in
//! parallel (threads or processes) never share an address (or, with [`NET_ENV`] set,
//! the next hosts of one range chosen by whoever runs the tests); the controller listens
//! on port 0. Every process is killed and reaped when the [`TestCluster`] is dropped,
//! also when a test panics; a panicking test prints the tail of each process log.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

pub mod acme;
mod addr;
mod api;

use addr::SHARED_HOST;
pub use addr::{AddrBlock, NET_ENV};
pub use agent::status::AgentStatus;
pub use proto::agent_v1::DesiredConfig;
pub use reqwest;
use std::sync::atomic::Ordering;

/// Timings of a [`TestCluster`]; the defaults are fast (failures are detected in
/// about a second).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Heartbeat interval of controller and agents (ms). Default 200.
    pub heartbeat_interval_ms: u64,
    /// Missed heartbeats before `suspect`. Default 3.
    pub suspect_after: u32,
    /// Connect timeout of the controller's active probe (ms). Default 200.
    pub probe_timeout_ms: u64,
    /// Longest wait of a blocking config query (ms). Default 2000.
    pub config_wait_ms: u64,
    /// How often the controller polls the store revision (ms). Default 200.
    pub resync_interval_ms: u64,
    /// The cron lease heartbeats grant (s; `[health] cron_lease_s`). Default 120.
    pub cron_lease_s: u64,
    /// Every agent's `[engine]` options (each engine documents its keys), e.g.
    /// the web engine's `mail_retry_secs`. Default none.
    pub engine_options: BTreeMap<String, String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            heartbeat_interval_ms: 200,
            suspect_after: 3,
            probe_timeout_ms: 200,
            config_wait_ms: 2000,
            resync_interval_ms: 200,
            cron_lease_s: 120,
            engine_options: BTreeMap::new(),
        }
    }
}

/// One agent of a [`TestCluster`].
#[derive(Debug)]
pub struct AgentHandle {
    /// Server name.
    pub name: String,
    /// Its own loopback address (`bind` in its agent.toml).
    pub bind: IpAddr,
    /// Its `agent.toml`.
    pub config_path: PathBuf,
    /// Its state directory (identity, `desired.json`, `status.json`).
    pub state_dir: PathBuf,
    /// Its log file (stdout and stderr).
    pub log_path: PathBuf,
    child: Mutex<Option<Child>>,
}

impl AgentHandle {
    fn take_child(&mut self) -> Option<Child> {
        self.child
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    fn set_child(&mut self, child: Child) {
        *self
            .child
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(child);
    }
}

/// A controller and its agents as real processes of the `hostplane` binary.
#[derive(Debug)]
pub struct TestCluster {
    bin: PathBuf,
    opts: Options,
    dir: tempfile::TempDir,
    data_dir: PathBuf,
    config_path: PathBuf,
    ca_path: PathBuf,
    ca_pem: Vec<u8>,
    url: String,
    listen_port: u16,
    admin_token: String,
    admin: client::Client,
    raw: reqwest::Client,
    controller: Option<Child>,
    controller_starts: u32,
    block: AddrBlock,
    next_host: u8,
    agents: BTreeMap<String, AgentHandle>,
}

/// Poll every 50 ms.
const POLL: Duration = Duration::from_millis(50);

impl TestCluster {
    /// Initialise a controller in a temporary directory (port 0, fast health
    /// timings from `opts` written into its `controller.toml`), start it, and
    /// connect an admin client. `bin` is the `hostplane` binary, e.g.
    /// `env!("CARGO_BIN_EXE_hostplane")`.
    pub async fn start(bin: impl AsRef<Path>, opts: Options) -> Result<Self> {
        let bin = bin.as_ref().to_owned();
        let dir = tempfile::Builder::new()
            .prefix("hostplane-test")
            .tempdir()?;
        let data_dir = dir.path().join("controller");
        let out = Command::new(&bin)
            .args(["controller", "init", "--json", "--listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(&data_dir)
            .stdin(Stdio::null())
            .output()
            .context("cannot run `hostplane controller init`")?;
        if !out.status.success() {
            bail!(
                "`hostplane controller init` failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let init: Value = serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "controller init printed no JSON: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })?;
        let field = |k: &str| -> Result<String> {
            init[k]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| anyhow!("controller init JSON lacks `{k}`: {init}"))
        };
        let config_path = PathBuf::from(field("config")?);
        let ca_path = PathBuf::from(field("ca")?);
        let admin_token = field("admin_token")?;

        let mut config = controller::config::ControllerConfig::load(&config_path)?;
        config.health.heartbeat_interval_ms = opts.heartbeat_interval_ms;
        config.health.suspect_after = opts.suspect_after;
        config.health.probe_timeout_ms = opts.probe_timeout_ms;
        config.agents.config_wait_ms = opts.config_wait_ms;
        config.agents.resync_interval_ms = opts.resync_interval_ms;
        config.health.cron_lease_s = opts.cron_lease_s;
        // Never the machine's resolver (tests send traffic to loopback only): a
        // test that needs answers sets `[names] resolver` to a DNS server of its own.
        if config.names.resolver.is_none() {
            config.names.resolver = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 9)));
        }
        std::fs::write(&config_path, config.to_toml()?)?;

        let ca_pem = std::fs::read(&ca_path)?;
        let raw = reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca_pem)?)
            .timeout(Duration::from_secs(10))
            .build()?;
        let admin = client::Client::new("https://127.0.0.1:1", None, None)?;
        let mut cluster = Self {
            bin,
            opts,
            dir,
            data_dir,
            config_path,
            ca_path,
            ca_pem,
            url: String::new(),
            listen_port: 0,
            admin_token,
            admin,
            raw,
            controller: None,
            controller_starts: 0,
            block: AddrBlock::from_env()?,
            next_host: 1,
            agents: BTreeMap::new(),
        };
        cluster.start_controller().await?;
        Ok(cluster)
    }

    /// Start the controller process (again). After the first start it listens on
    /// the same port as before, so agents and clients find it where it was.
    pub async fn start_controller(&mut self) -> Result<()> {
        if self.controller.is_some() {
            bail!("the controller is already running");
        }
        let url_file = self.data_dir.join("controller.url");
        let _ = std::fs::remove_file(&url_file);
        self.controller_starts += 1;
        let log = self
            .dir
            .path()
            .join(format!("controller.{}.log", self.controller_starts));
        let mut cmd = Command::new(&self.bin);
        cmd.args(["controller", "run", "--config"])
            .arg(&self.config_path);
        if self.listen_port != 0 {
            cmd.arg("--listen")
                .arg(format!("127.0.0.1:{}", self.listen_port));
        }
        let child = spawn_logged(cmd, &log)?;
        self.controller = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        let url = loop {
            if let Ok(text) = std::fs::read_to_string(&url_file) {
                if text.ends_with('\n') {
                    break text.trim().to_owned();
                }
            }
            if let Some(c) = self.controller.as_mut() {
                if let Some(status) = c.try_wait()? {
                    self.controller = None;
                    bail!(
                        "the controller exited ({status}) before listening:\n{}",
                        tail(&log, 40)
                    );
                }
            }
            if Instant::now() > deadline {
                bail!("the controller did not listen in 20 s:\n{}", tail(&log, 40));
            }
            tokio::time::sleep(POLL).await;
        };
        let port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse::<u16>().ok())
            .ok_or_else(|| anyhow!("controller URL without a port: {url}"))?;
        self.listen_port = port;
        self.url = url;
        self.admin = client::Client::new(
            &self.url,
            Some(self.admin_token.clone()),
            Some(&self.ca_pem),
        )?;
        // Ready when the API answers.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.admin.status().await {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() > deadline => {
                    bail!("the controller API does not answer: {e}")
                }
                Err(_) => tokio::time::sleep(POLL).await,
            }
        }
    }

    /// Kill the controller process (SIGKILL) and reap it. Agents keep running.
    pub fn stop_controller(&mut self) -> Result<()> {
        match self.controller.take() {
            Some(mut c) => kill(&mut c),
            None => bail!("the controller is not running"),
        }
    }

    /// The controller's process id, to stop and continue it (`SIGSTOP`/`SIGCONT`).
    pub fn controller_pid(&self) -> Option<u32> {
        self.controller.as_ref().map(Child::id)
    }

    /// Whether the controller process is running.
    pub fn controller_running(&mut self) -> bool {
        match self.controller.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The controller's base URL (`https://127.0.0.1:PORT`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// PEM of the controller's CA (its TLS and agent certificates chain to it).
    pub fn ca_pem(&self) -> &[u8] {
        &self.ca_pem
    }

    /// The controller's `controller.toml` (a test may edit it between
    /// [`TestCluster::stop_controller`] and [`TestCluster::start_controller`]).
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The controller's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The typed API client, acting as the admin.
    pub fn admin(&self) -> &client::Client {
        &self.admin
    }

    /// The admin's API token.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// This test's address block.
    pub fn block(&self) -> AddrBlock {
        self.block
    }

    /// An HTTPS client trusting the controller CA (no client certificate, no token).
    pub fn http(&self) -> &reqwest::Client {
        &self.raw
    }

    /// An HTTPS client trusting the controller CA and presenting the client
    /// certificate `cert_pem` with its key `key_pem` (mutual TLS).
    pub fn mtls_client(&self, cert_pem: &str, key_pem: &str) -> Result<reqwest::Client> {
        let identity = reqwest::Identity::from_pem(format!("{cert_pem}{key_pem}").as_bytes())?;
        Ok(reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(reqwest::Certificate::from_pem(&self.ca_pem)?)
            .identity(identity)
            .timeout(Duration::from_secs(10))
            .build()?)
    }

    /// Create a join token for `cluster` and start an agent that joins with it:
    /// writes its agent.toml (`bind` = the next address of this test's block) and
    /// spawns `hostplane agent`.
    pub async fn add_agent(&mut self, name: &str, cluster: &str, country: &str) -> Result<IpAddr> {
        let token = self.join_token(cluster).await?.token;
        self.add_agent_with_token(name, &token, country)
    }

    /// Start an agent that joins with `token` (which may be bad: tests of refusals).
    pub fn add_agent_with_token(
        &mut self,
        name: &str,
        token: &str,
        country: &str,
    ) -> Result<IpAddr> {
        if self.agents.contains_key(name) {
            bail!("agent {name} exists already");
        }
        let host = if self.block.shared {
            match u8::try_from(SHARED_HOST.fetch_add(1, Ordering::Relaxed)) {
                Ok(h) if h < 255 => h,
                _ => bail!("the addresses of {NET_ENV} are used up (254 agents per process)"),
            }
        } else {
            if self.next_host == 255 {
                bail!("the address block is used up");
            }
            self.next_host += 1;
            self.next_host - 1
        };
        let bind = self.block.addr(host);
        let dir = self.dir.path().join("agents").join(name);
        std::fs::create_dir_all(&dir)?;
        let state_dir = dir.join("state");
        let config = agent::AgentConfig {
            name: name.to_owned(),
            controllers: vec![self.url.clone()],
            ca_file: Some(self.ca_path.clone()),
            join_token: Some(token.to_owned()),
            join_token_file: None,
            state_dir: state_dir.clone(),
            bind,
            hostname: format!("{name}.hosting.test"),
            addresses: Vec::new(),
            country: country.to_owned(),
            region: "test".to_owned(),
            hardware: String::new(),
            heartbeat_interval_ms: self.opts.heartbeat_interval_ms,
            resync_interval_s: 60,
            watch_timeout_s: (self.opts.config_wait_ms / 1000 + 5).max(2),
            engine: self.opts.engine_options.clone(),
        };
        let config_path = dir.join("agent.toml");
        std::fs::write(&config_path, toml::to_string(&config)?)?;
        let mut handle = AgentHandle {
            name: name.to_owned(),
            bind,
            config_path,
            state_dir,
            log_path: dir.join("agent.log"),
            child: Mutex::new(None),
        };
        let child = spawn_agent(&self.bin, &handle)?;
        handle.set_child(child);
        self.agents.insert(name.to_owned(), handle);
        Ok(bind)
    }

    /// The agent called `name`.
    pub fn agent(&self, name: &str) -> Result<&AgentHandle> {
        self.agents
            .get(name)
            .ok_or_else(|| anyhow!("no agent {name} in this test"))
    }

    fn agent_mut(&mut self, name: &str) -> Result<&mut AgentHandle> {
        self.agents
            .get_mut(name)
            .ok_or_else(|| anyhow!("no agent {name} in this test"))
    }

    /// Kill agent `name` (SIGKILL: no goodbye to the controller) with what it
    /// started (its php-fpm masters and their workers, see [`kill_agent_tree`]), as a
    /// crash of the server would, and reap it.
    pub fn kill_agent(&mut self, name: &str) -> Result<()> {
        let handle = self.agent_mut(name)?;
        let state_dir = handle.state_dir.clone();
        match handle.take_child() {
            Some(mut c) => kill_agent_tree(&mut c, &state_dir),
            None => bail!("agent {name} is not running"),
        }
    }

    /// The process id of agent `name` while it runs (e.g. to stop it with SIGSTOP
    /// and see what piles up meanwhile).
    pub fn agent_pid(&self, name: &str) -> Result<u32> {
        let handle = self.agent(name)?;
        let child = handle
            .child
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match child.as_ref() {
            Some(c) => Ok(c.id()),
            None => bail!("agent {name} is not running"),
        }
    }

    /// Start agent `name` again with its agent.toml and state dir.
    pub fn restart_agent(&mut self, name: &str) -> Result<()> {
        let bin = self.bin.clone();
        let handle = self.agent_mut(name)?;
        let state_dir = handle.state_dir.clone();
        if let Some(mut c) = handle.take_child() {
            kill_agent_tree(&mut c, &state_dir)?;
        }
        let child = spawn_agent(&bin, handle)?;
        handle.set_child(child);
        Ok(())
    }

    /// The exit status of agent `name` if its process has ended, `None` while it runs.
    pub fn agent_exit(&self, name: &str) -> Result<Option<std::process::ExitStatus>> {
        let handle = self.agent(name)?;
        let mut child = handle
            .child
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match child.as_mut() {
            Some(c) => Ok(c.try_wait()?),
            None => bail!("agent {name} was killed"),
        }
    }

    /// The log of agent `name` so far.
    pub fn agent_log(&self, name: &str) -> Result<String> {
        Ok(std::fs::read_to_string(&self.agent(name)?.log_path).unwrap_or_default())
    }

    /// The status file agent `name` wrote (`state_dir/status.json`), if any.
    pub fn agent_status(&self, name: &str) -> Result<Option<AgentStatus>> {
        Ok(agent::status::load(&self.agent(name)?.state_dir)?)
    }

    /// Remove agent `name`'s status file (to see the next process write it afresh).
    pub fn clear_agent_status(&self, name: &str) -> Result<()> {
        let path = agent::status::path(&self.agent(name)?.state_dir);
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// The desired config agent `name` received and cached (`desired.json`), if any.
    pub fn agent_desired(&self, name: &str) -> Result<Option<DesiredConfig>> {
        Ok(agent::cache::load(&self.agent(name)?.state_dir)?)
    }

    fn logs_hint(&self, name: &str) -> String {
        match self.agents.get(name) {
            Some(a) => tail(&a.log_path, 15),
            None => String::new(),
        }
    }

    fn print_logs(&self) {
        for i in 1..=self.controller_starts {
            let log = self.dir.path().join(format!("controller.{i}.log"));
            eprintln!("---- controller (start {i}) ----\n{}", tail(&log, 30));
        }
        for a in self.agents.values() {
            eprintln!("---- agent {} ----\n{}", a.name, tail(&a.log_path, 30));
        }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for a in self.agents.values_mut() {
            let state_dir = a.state_dir.clone();
            if let Some(mut c) = a.take_child() {
                let _ = kill_agent_tree(&mut c, &state_dir);
            }
        }
        if let Some(mut c) = self.controller.take() {
            let _ = kill(&mut c);
        }
        if std::thread::panicking() {
            self.print_logs();
        }
    }
}

fn spawn_logged(mut cmd: Command, log: &Path) -> Result<Child> {
    let out = std::fs::File::create(log)?;
    let err = out.try_clone()?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .env_remove(agent::config::JOIN_TOKEN_ENV);
    cmd.spawn()
        .with_context(|| format!("cannot start {:?}", cmd.get_program()))
}

fn spawn_agent(bin: &Path, handle: &AgentHandle) -> Result<Child> {
    // Append: a restarted agent keeps the earlier log.
    let mut cmd = Command::new(bin);
    cmd.arg("agent").arg("--config").arg(&handle.config_path);
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&handle.log_path)?;
    let err = out.try_clone()?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .env_remove(agent::config::JOIN_TOKEN_ENV);
    cmd.spawn()
        .with_context(|| format!("cannot start agent {}", handle.name))
}

/// SIGKILL and reap (an already ended process is just reaped).
fn kill(child: &mut Child) -> Result<()> {
    match child.kill() {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {}
        Err(e) => return Err(e.into()),
    }
    child.wait()?;
    Ok(())
}

/// SIGKILL an agent and the processes it left behind, then reap it. php-fpm masters
/// `setsid` themselves (so neither the agent's process group nor its death reaches
/// them); each names its config under the agent's state dir in its command line, and
/// its workers share its session. Without this every test with PHP sites would leave
/// php-fpm running, and a "killed" web server would keep answering PHP requests.
fn kill_agent_tree(child: &mut Child, state_dir: &Path) -> Result<()> {
    let marker = state_dir.as_os_str().as_encoded_bytes();
    let procs = processes();
    let leaders: Vec<i32> = procs
        .iter()
        .filter(|p| p.session == p.pid)
        .filter(|p| {
            std::fs::read(format!("/proc/{}/cmdline", p.pid))
                .is_ok_and(|c| c.windows(marker.len()).any(|w| w == marker))
        })
        .map(|p| p.pid)
        .collect();
    let result = kill(child);
    for p in procs.iter().filter(|p| leaders.contains(&p.session)) {
        if let Some(pid) = rustix::process::Pid::from_raw(p.pid) {
            rustix::process::kill_process(pid, rustix::process::Signal::KILL).ok();
        }
    }
    result
}

/// A process seen in `/proc`: its id and session.
struct Proc {
    pid: i32,
    session: i32,
}

/// Every process of the machine now (those that vanish meanwhile are skipped).
fn processes() -> Vec<Proc> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `pid (comm) state ppid pgrp session …`; comm may hold spaces and ')'.
            let rest = &stat[stat.rfind(')')? + 1..];
            let session = rest.split_whitespace().nth(3)?.parse().ok()?;
            Some(Proc { pid, session })
        })
        .collect()
}

/// The last `lines` lines of a file.
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A client certificate and key (PEM) for `name` from a freshly made CA that the
/// controller has never seen.
pub fn foreign_client_cert(name: &str) -> Result<(String, String)> {
    let other = controller::ca::Ca::generate("someone else")?;
    let issued = other.sign_client_cert(&[name.to_owned()])?;
    Ok((issued.cert_pem, issued.key_pem))
}
