//! Child processes of `hostplane up`: the controller and one agent per server.
//! Spawned from this same binary, each the leader of its own process group
//! ([`groups`]), with their logs in `<data_dir>/logs/`; stopped with SIGTERM and,
//! after a grace period, SIGKILL to whatever is left of the group.

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use super::groups::{self, Group, Stat};

/// How long a child gets between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(10);
/// How long the controller gets to say where it listens.
const CONTROLLER_START: Duration = Duration::from_secs(60);

/// How long what is left of a group gets between SIGTERM and SIGKILL once its
/// leader has exited.
pub const LEFTOVER_GRACE: Duration = Duration::from_secs(5);

/// One supervised process: the leader of its own process group, which holds every
/// process it starts ([`groups`]).
#[derive(Debug)]
pub struct Proc {
    /// `controller` or the server name.
    pub name: String,
    /// Arguments after the binary.
    pub args: Vec<String>,
    /// Log file (stdout and stderr, appended).
    pub log: PathBuf,
    /// The running process, if any.
    pub child: Option<Child>,
    /// Its process group while it runs (and until what it left is stopped).
    pub group: Option<Group>,
    /// A path that names its daemons (an agent's state dir), see [`Group`].
    pub marker: Option<String>,
}

/// The command for a child of `up`: this binary, leading a new process group (so a
/// terminal's Ctrl-C reaches `up` alone, and `up` can stop a server's processes as
/// one), stopping by itself when `up` is gone.
fn command(args: &[String]) -> anyhow::Result<Command> {
    let exe = std::env::current_exe().context("cannot find the hostplane binary")?;
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .env(crate::EXIT_WITH_PARENT_ENV, "1")
        .stdin(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    Ok(cmd)
}

impl Proc {
    /// A process that is not started yet.
    pub fn new(name: &str, args: Vec<String>, log: PathBuf) -> Proc {
        Proc {
            name: name.to_owned(),
            args,
            log,
            child: None,
            group: None,
            marker: None,
        }
    }

    fn started(&mut self, child: Child) -> u32 {
        let pid = child.id().unwrap_or(0);
        self.group = Group::of(pid, self.marker.clone());
        self.child = Some(child);
        pid
    }

    /// The process id while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Start it (output appended to its log). No-op when it runs.
    pub fn spawn(&mut self) -> anyhow::Result<u32> {
        if let Some(pid) = self.pid() {
            return Ok(pid);
        }
        let log = open_log(&self.log)?;
        let log2 = log
            .try_clone()
            .with_context(|| format!("cannot reuse {}", self.log.display()))?;
        let child = command(&self.args)?
            .stdout(log)
            .stderr(log2)
            .spawn()
            .with_context(|| format!("cannot start the process of {}", self.name))?;
        Ok(self.started(child))
    }

    /// If it has exited since the last look: its status (and it is forgotten; what
    /// it started may still run: [`Proc::stop_leftovers`]).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok().flatten()?;
        self.child = None;
        Some(status)
    }

    /// Stop what an exited leader left in its group (SIGTERM, then SIGKILL);
    /// returns those processes.
    pub async fn stop_leftovers(&mut self) -> Vec<Stat> {
        match self.group.take() {
            Some(g) => g.stop(LEFTOVER_GRACE).await,
            None => Vec::new(),
        }
    }

    /// The server's death: SIGKILL its whole group at once (the process and all it
    /// runs) and reap it. Returns the pid it had and the other processes killed.
    pub async fn kill(&mut self) -> Option<(u32, Vec<Stat>)> {
        let mut child = self.child.take()?;
        let pid = child.id();
        let killed = match self.group.take() {
            Some(g) => g.kill().await,
            None => Vec::new(),
        };
        child.kill().await.ok();
        let pid = pid?;
        let others = killed
            .into_iter()
            .filter(|p| u32::try_from(p.pid) != Ok(pid))
            .collect();
        Some((pid, others))
    }

    /// SIGTERM to the process, wait up to `grace` (it stops what it runs), then
    /// SIGTERM and SIGKILL to whatever is left in its group; reaps it.
    pub async fn terminate(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            self.stop_leftovers().await;
            return;
        };
        if let Some(pid) = child.id() {
            let pid = i32::try_from(pid)
                .ok()
                .and_then(rustix::process::Pid::from_raw);
            if let Some(pid) = pid {
                rustix::process::kill_process(pid, rustix::process::Signal::TERM).ok();
            }
        }
        if tokio::time::timeout(grace, child.wait()).await.is_err() {
            tracing::warn!("{} did not stop within {grace:?}; killing it", self.name);
        }
        let left = self.stop_leftovers().await;
        if !left.is_empty() {
            tracing::warn!(
                "{} left processes behind ({}); stopped them",
                self.name,
                groups::describe(&left)
            );
        }
        child.kill().await.ok();
    }
}

fn open_log(path: &Path) -> anyhow::Result<std::fs::File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open the log {}", path.display()))
}

/// The last lines of a log, for error messages.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Start `hostplane controller run --config CONFIG --listen LISTEN` and return the
/// process and the URL it announces. Its stdout and stderr go to `log`.
pub async fn start_controller(
    config: &Path,
    listen: std::net::SocketAddr,
    log: PathBuf,
) -> anyhow::Result<(Proc, String)> {
    let args = vec![
        "controller".to_owned(),
        "run".to_owned(),
        "--config".to_owned(),
        config.display().to_string(),
        "--listen".to_owned(),
        listen.to_string(),
    ];
    let log_file = open_log(&log)?;
    let mut child = command(&args)?
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .context("cannot start the controller process")?;
    let stdout = child.stdout.take().context("no controller stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut proc = Proc::new("controller", args, log.clone());
    proc.started(child);
    let announced = tokio::time::timeout(CONTROLLER_START, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(url) = line
                .trim()
                .strip_prefix("hostplane controller listening on ")
            {
                return Some(url.trim().to_owned());
            }
        }
        None
    })
    .await;
    let url = match announced {
        Ok(Some(url)) => url,
        Ok(None) | Err(_) => {
            proc.terminate(Duration::from_secs(2)).await;
            bail!(
                "the controller did not start; the end of its log ({}):\n{}",
                log.display(),
                log_tail(&log, 15)
            );
        }
    };
    // Keep draining its stdout into the log so it never blocks on a full pipe.
    tokio::spawn(async move {
        let Ok(file) = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .await
        else {
            return;
        };
        let mut file = file;
        while let Ok(Some(line)) = lines.next_line().await {
            if file
                .write_all(format!("{line}\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
    });
    Ok((proc, url))
}

/// A controller that ran this long before it exited is restarted after the shortest
/// delay again.
pub const STABLE_RUN: Duration = Duration::from_secs(60);

/// How long to wait before restarting the controller after its `failures`-th exit
/// in a row (pure): 1 s, 2 s, 4 s, 8 s, 16 s, then 30 s.
pub fn restart_delay(failures: u32) -> Duration {
    let secs = 1u64 << failures.saturating_sub(1).min(5);
    Duration::from_secs(secs.min(30))
}

/// The address to restart the controller on: the port it bound first (`url` is
/// `https://HOST:PORT`), so agents and saved logins keep working.
pub fn restart_listen(listen: std::net::SocketAddr, url: &str) -> std::net::SocketAddr {
    let port = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|authority| authority.rsplit_once(':'))
        .and_then(|(_, port)| port.parse::<u16>().ok());
    match port {
        Some(p) if listen.port() == 0 => std::net::SocketAddr::new(listen.ip(), p),
        _ => listen,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_back_off_to_30_seconds() {
        let d: Vec<u64> = (1..=8).map(|n| restart_delay(n).as_secs()).collect();
        assert_eq!(d, vec![1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(restart_delay(0).as_secs(), 1);
        assert_eq!(restart_delay(u32::MAX).as_secs(), 30);
    }

    #[test]
    fn a_restart_keeps_the_bound_port() {
        let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
        assert_eq!(
            restart_listen(any, "https://127.0.0.1:43117").to_string(),
            "127.0.0.1:43117"
        );
        assert_eq!(
            restart_listen("[::1]:0".parse().unwrap(), "https://[::1]:9443/").to_string(),
            "[::1]:9443"
        );
        let fixed: std::net::SocketAddr = "127.0.0.1:8443".parse().unwrap();
        assert_eq!(restart_listen(fixed, "https://localhost:8443"), fixed);
        assert_eq!(restart_listen(any, "garbage"), any);
    }
}
